//! Every overflow policy counts what it drops, readable at any moment, and per-agent order
//! holds for what is delivered.

use std::time::{Duration, Instant};

use sightline_bus::{Bus, DropReason, Filter, Overflow, SubscribeOptions};
use sightline_event::{Family, KindSet, Rpc, Severity};

fn rpc() -> Rpc {
    Rpc {
        method: "m".into(),
        ..Default::default()
    }
}

#[test]
fn drop_newest_keeps_the_first_events_and_counts_the_rest() {
    let bus = Bus::new();
    let sub = bus.subscribe(SubscribeOptions::new("newest").capacity(4));
    let e = bus.emitter("A", "a");
    for _ in 0..10 {
        e.emit(rpc);
    }
    let stats = sub.stats();
    assert_eq!(stats.dropped.get(DropReason::QueueFull), 6);
    assert_eq!(stats.queued, 4);
    let seqs: Vec<u64> = std::iter::from_fn(|| sub.try_recv())
        .map(|e| e.seq)
        .collect();
    assert_eq!(seqs, vec![1, 2, 3, 4]);
    assert_eq!(sub.stats().received, 4);
}

#[test]
fn drop_oldest_keeps_the_last_events_and_counts_the_evicted() {
    let bus = Bus::new();
    let sub = bus.subscribe(
        SubscribeOptions::new("oldest")
            .capacity(4)
            .overflow(Overflow::DropOldest),
    );
    let e = bus.emitter("A", "a");
    for _ in 0..10 {
        e.emit(rpc);
    }
    assert_eq!(sub.stats().dropped.get(DropReason::Overwritten), 6);
    let seqs: Vec<u64> = std::iter::from_fn(|| sub.try_recv())
        .map(|e| e.seq)
        .collect();
    assert_eq!(seqs, vec![7, 8, 9, 10]);
}

#[test]
fn block_waits_for_room_then_times_out_and_counts() {
    // Nobody drains: the third emit waits out its whole timeout, then is dropped and counted.
    let bus = Bus::new();
    let sub = bus.subscribe(
        SubscribeOptions::new("block")
            .capacity(2)
            .overflow(Overflow::Block {
                timeout: Duration::from_millis(30),
            }),
    );
    let e = bus.emitter("A", "a");
    e.emit(rpc);
    e.emit(rpc);
    let started = Instant::now();
    e.emit(rpc);
    assert!(
        started.elapsed() >= Duration::from_millis(30),
        "the emit gave up after {:?}, before its 30 ms timeout",
        started.elapsed()
    );
    let stats = sub.stats();
    assert_eq!(stats.dropped.get(DropReason::BlockTimeout), 1);
    assert_eq!(stats.dropped.total(), 1);
    assert_eq!(stats.queued, 2);

    // With a consumer draining, a blocked producer gets through without loss. The timeout is
    // far longer than the test may run, so no scheduling delay can turn a wait into a drop;
    // the consumer gives up (and closes, which releases the producer) only at its deadline,
    // so a failure is reported instead of hanging.
    let bus = Bus::new();
    let sub = bus.subscribe(
        SubscribeOptions::new("block")
            .capacity(2)
            .overflow(Overflow::Block {
                timeout: Duration::from_secs(600),
            }),
    );
    let e = bus.emitter("A", "a");
    const N: usize = 200;
    let got = std::thread::scope(|s| {
        let consumer = s.spawn(|| {
            let deadline = Instant::now() + Duration::from_secs(60);
            let mut got = Vec::new();
            while got.len() < N && Instant::now() < deadline {
                sub.recv_batch(&mut got, 64, Duration::from_millis(100));
            }
            if got.len() < N {
                sub.close();
            }
            got
        });
        for _ in 0..N {
            e.emit(rpc);
        }
        consumer.join().unwrap()
    });
    assert_eq!(
        got.len(),
        N,
        "the consumer received {} of {N} events in 60 s; drops: {:?}",
        got.len(),
        sub.stats().dropped
    );
    let seqs: Vec<u64> = got.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=N as u64).collect::<Vec<_>>(), "order or loss");
    assert_eq!(sub.stats().dropped.total(), 0);
}

#[test]
fn filters_select_kinds_classes_and_severity_without_counting_drops() {
    let bus = Bus::new();
    let warn_support = bus.subscribe(
        SubscribeOptions::new("warn").filter(
            Filter::kinds(KindSet::family(Family::Rpc))
                .classes(["Support"])
                .min_severity(Severity::Warn),
        ),
    );
    let support = bus.emitter("Support", "s1");
    let billing = bus.emitter("Billing", "b1");
    support.emit(rpc); // info: filtered
    billing.emit_with(|m| {
        m.severity = Some(Severity::Error);
        rpc()
    }); // other class: filtered
    support.emit_with(|m| {
        m.severity = Some(Severity::Error);
        rpc()
    });
    let got: Vec<_> = std::iter::from_fn(|| warn_support.try_recv()).collect();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].agent.class, "Support");
    assert_eq!(warn_support.stats().dropped.total(), 0);
}

#[test]
fn dropping_a_subscription_recomputes_interest() {
    let bus = Bus::new();
    let kind = sightline_event::Kind::Rpc;
    assert!(!bus.interested(kind));
    let a = bus.subscribe(SubscribeOptions::new("a"));
    let b = bus
        .subscribe(SubscribeOptions::new("b").filter(Filter::kinds(KindSet::family(Family::Rpc))));
    assert!(bus.interested(kind));
    drop(a);
    assert!(bus.interested(kind));
    assert!(!bus.interested(sightline_event::Kind::ScheduleError));
    drop(b);
    assert!(!bus.interested(kind));
    assert!(bus.stats().is_empty());
}
