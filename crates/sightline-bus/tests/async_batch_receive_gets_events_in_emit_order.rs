//! `recv_batch_async` (the `async` feature) wakes on the wake threshold or its timeout and
//! receives every event, in emit order, from a producer on another thread.
//!
//! Run: `cargo test -p sightline-bus --features async --release`
#![cfg(feature = "async")]

use std::time::{Duration, Instant};

use sightline_bus::{Bus, SubscribeOptions};
use sightline_event::Rpc;

fn rpc() -> Rpc {
    Rpc {
        method: "m".into(),
        ..Default::default()
    }
}

#[test]
fn async_batch_receive_gets_events_in_emit_order() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let bus = Bus::new();
    let sub = bus.subscribe(SubscribeOptions::new("async").wake_threshold(8));
    let e = bus.emitter("A", "a");
    let producer = std::thread::spawn(move || {
        for _ in 0..100 {
            e.emit(rpc);
        }
    });
    let got = rt.block_on(async {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut got = Vec::new();
        while got.len() < 100 && Instant::now() < deadline {
            sub.recv_batch_async(&mut got, 16, Duration::from_millis(200))
                .await;
        }
        got
    });
    producer.join().unwrap();
    let seqs: Vec<u64> = got.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=100).collect::<Vec<_>>());
    assert_eq!(sub.stats().dropped.total(), 0);
}
