//! What every runtime test starts from: a fresh data directory, a tokio runtime, a bus with a
//! subscription that sees every event, and a `Runtime` on them.

#![allow(dead_code)]

use std::path::PathBuf;

use sightline_bus::{Bus, SubscribeOptions, Subscription};
use sightline_event::Event;
use sightline_runtime::{Runtime, RuntimeConfig};

/// A data directory no other test uses.
pub fn data_dir(name: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    std::env::temp_dir().join(format!(
        "sightline-runtime-{name}-{}-{nanos}",
        std::process::id()
    ))
}

/// A tokio runtime (2 workers), a subscription to every event, and a `Runtime` with `cfg`.
pub fn setup(cfg: RuntimeConfig) -> (tokio::runtime::Runtime, Subscription, Runtime) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let bus = Bus::new();
    let sub = bus.subscribe(SubscribeOptions::new("test").capacity(1 << 16));
    let runtime = Runtime::new(bus, cfg, rt.handle().clone());
    (rt, sub, runtime)
}

/// Every event waiting in `sub`.
pub fn drain(sub: &Subscription) -> Vec<Event> {
    let mut out = Vec::new();
    while let Some(e) = sub.try_recv() {
        out.push(e);
    }
    out
}

/// Collects events from `sub` into `seen` until `done` holds; fails naming `what` (with the
/// kinds seen) after 10 s.
pub fn collect_until(
    sub: &Subscription,
    seen: &mut Vec<Event>,
    what: &str,
    done: impl Fn(&[Event]) -> bool,
) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        seen.extend(drain(sub));
        if done(seen) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: {:?}",
            seen.iter().map(|e| e.kind().name()).collect::<Vec<_>>()
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}
