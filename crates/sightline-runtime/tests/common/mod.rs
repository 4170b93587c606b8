//! What every runtime test starts from: a fresh data directory, a tokio runtime, a bus with a
//! subscription that sees every event, and a `Runtime` on them; waiting on a condition with
//! a deadline; counting what was emitted. The agents themselves are the crate's reference
//! agents (`sightline_runtime::examples`) unless a test exercises something particular.

#![allow(dead_code)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use sightline_bus::{Bus, SubscribeOptions, Subscription};
use sightline_event::{Event, Kind};
use sightline_runtime::examples::Tools;
use sightline_runtime::{Runtime, RuntimeConfig};

/// How long any condition a test waits for may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(10);

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

/// A runtime with defaults but for `data_dir` (named `name`) and what `cfg` changes.
pub fn config(name: &str, cfg: impl FnOnce(&mut RuntimeConfig)) -> RuntimeConfig {
    let mut c = RuntimeConfig {
        data_dir: data_dir(name),
        ..Default::default()
    };
    cfg(&mut c);
    c
}

/// Our MCP server (`sightline-mcp-server`, built with these tests), for the example agents.
pub fn tools() -> Tools {
    Tools {
        command: env!("CARGO_BIN_EXE_sightline-mcp-server").into(),
        args: Vec::new(),
    }
}

/// Waits until `done` holds, polling; fails naming `what` after [`DEADLINE`].
pub fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !done() {
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Waits until `class/name` has left memory (hibernated, evicted or stopped).
pub fn wait_hibernated(runtime: &Runtime, class: &str, name: &str) {
    wait_until(&format!("{class}/{name} did not hibernate"), || {
        !runtime.is_resident(class, name)
    });
}

/// The kinds of `events`, by name (for failure messages).
pub fn kinds(events: &[Event]) -> Vec<&'static str> {
    events.iter().map(|e| e.kind().name()).collect()
}

/// How many of `events` are of `kind`.
pub fn count(events: &[Event], kind: Kind) -> usize {
    events.iter().filter(|e| e.kind() == kind).count()
}

/// Collects events from `sub` into `seen` until `done` holds; fails naming `what` (with the
/// kinds seen) after [`DEADLINE`].
pub fn collect_until(
    sub: &Subscription,
    seen: &mut Vec<Event>,
    what: &str,
    done: impl Fn(&[Event]) -> bool,
) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        seen.extend(drain(sub));
        if done(seen) {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: {:?}", kinds(seen));
        std::thread::sleep(Duration::from_millis(10));
    }
}
