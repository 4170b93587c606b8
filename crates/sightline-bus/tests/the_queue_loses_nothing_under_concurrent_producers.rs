//! Stress test of the lock-free queue through the public API: several producer threads, one
//! consumer, a small queue and the blocking policy, so the ring wraps thousands of times while
//! full and empty states race. Every event must arrive exactly once, in per-agent order.

use std::collections::HashMap;
use std::time::Duration;

use sightline_bus::{Bus, Overflow, SubscribeOptions};
use sightline_event::Rpc;

#[test]
fn the_queue_loses_nothing_under_concurrent_producers() {
    const PRODUCERS: usize = 4;
    const PER_PRODUCER: u64 = 50_000;
    let bus = Bus::new();
    let sub = bus.subscribe(SubscribeOptions::new("stress").capacity(16).overflow(
        Overflow::Block {
            timeout: Duration::from_secs(30),
        },
    ));
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let e = bus.emitter("Load", format!("agent-{p}"));
            std::thread::spawn(move || {
                for _ in 0..PER_PRODUCER {
                    e.emit(|| Rpc {
                        method: "m".into(),
                        ..Default::default()
                    });
                }
            })
        })
        .collect();
    let mut last: HashMap<String, u64> = HashMap::new();
    let mut got = 0u64;
    let mut buf = Vec::new();
    while got < PRODUCERS as u64 * PER_PRODUCER {
        buf.clear();
        sub.recv_batch(&mut buf, 7, Duration::from_secs(5));
        for e in &buf {
            let prev = last.insert(e.agent.name.to_string(), e.seq).unwrap_or(0);
            assert_eq!(
                e.seq,
                prev + 1,
                "agent {} out of order or duplicated",
                e.agent.name
            );
        }
        got += buf.len() as u64;
        assert!(!buf.is_empty(), "stalled after {got} events");
    }
    for p in producers {
        p.join().unwrap();
    }
    assert_eq!(sub.stats().dropped.total(), 0);
    assert!(sub.try_recv().is_none());
}

#[test]
fn drop_oldest_under_concurrency_counts_every_eviction() {
    let bus = Bus::new();
    let sub = bus.subscribe(
        SubscribeOptions::new("oldest")
            .capacity(8)
            .overflow(Overflow::DropOldest),
    );
    let producers: Vec<_> = (0..3)
        .map(|p| {
            let e = bus.emitter("Load", format!("agent-{p}"));
            std::thread::spawn(move || {
                for _ in 0..20_000 {
                    e.emit(Rpc::default);
                }
            })
        })
        .collect();
    let mut received = 0u64;
    let mut buf = Vec::new();
    for _ in 0..2_000 {
        buf.clear();
        received += sub.drain(&mut buf, 3) as u64;
    }
    for p in producers {
        p.join().unwrap();
    }
    buf.clear();
    received += sub.drain(&mut buf, usize::MAX) as u64;
    let stats = sub.stats();
    assert_eq!(received + stats.dropped.total(), 60_000, "{stats:?}");
}
