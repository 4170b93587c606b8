//! Model-based property test: any sequence of emits and partial drains on one subscription
//! behaves like a bounded `VecDeque` with the chosen overflow policy — same events received,
//! in the same order, and the same drop counts.

use std::collections::VecDeque;

use proptest::prelude::*;
use sightline_bus::{Bus, DropReason, Overflow, SubscribeOptions};
use sightline_event::Rpc;

#[derive(Debug, Clone)]
enum Op {
    Emit(u8),
    Drain(u8),
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(
        prop_oneof![(1u8..20).prop_map(Op::Emit), (0u8..20).prop_map(Op::Drain)],
        1..60,
    )
}

fn run(capacity: usize, oldest: bool, ops: &[Op]) -> Result<(), TestCaseError> {
    let bus = Bus::new();
    let overflow = if oldest {
        Overflow::DropOldest
    } else {
        Overflow::DropNewest
    };
    let sub = bus.subscribe(
        SubscribeOptions::new("p")
            .capacity(capacity)
            .overflow(overflow),
    );
    let capacity = sub.stats().capacity; // rounded up to a power of two
    let e = bus.emitter("A", "a");
    let mut model: VecDeque<u64> = VecDeque::new();
    let (mut seq, mut dropped) = (0u64, 0u64);
    let mut buf = Vec::new();
    for op in ops {
        match op {
            Op::Emit(n) => {
                for _ in 0..*n {
                    e.emit(Rpc::default);
                    seq += 1;
                    if model.len() < capacity {
                        model.push_back(seq);
                    } else if oldest {
                        model.pop_front();
                        model.push_back(seq);
                        dropped += 1;
                    } else {
                        dropped += 1;
                    }
                }
            }
            Op::Drain(n) => {
                buf.clear();
                sub.drain(&mut buf, *n as usize);
                let want: Vec<u64> = (0..(*n as usize).min(model.len()))
                    .filter_map(|_| model.pop_front())
                    .collect();
                let got: Vec<u64> = buf.iter().map(|e| e.seq).collect();
                prop_assert_eq!(got, want);
            }
        }
        let stats = sub.stats();
        let reason = if oldest {
            DropReason::Overwritten
        } else {
            DropReason::QueueFull
        };
        prop_assert_eq!(stats.dropped.get(reason), dropped);
        prop_assert_eq!(stats.dropped.total(), dropped);
        prop_assert_eq!(stats.queued, model.len());
    }
    Ok(())
}

proptest! {
    #[test]
    fn drop_newest_queues_behave_like_a_bounded_deque(cap in 1usize..20, ops in ops()) {
        run(cap, false, &ops)?;
    }

    #[test]
    fn drop_oldest_queues_behave_like_a_bounded_deque(cap in 1usize..20, ops in ops()) {
        run(cap, true, &ops)?;
    }
}
