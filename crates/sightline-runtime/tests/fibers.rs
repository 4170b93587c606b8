//! Fibers: checkpoints persisted step by step; after a crash the interrupted fiber is found,
//! reported, handed back with its last checkpoint, resumed from there and completed once;
//! one too old is given up; an agent without a handler skips it.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::count;
use serde_json::Value;
use sightline_bus::Subscription;
use sightline_event::{Event, Kind, Payload};
use sightline_runtime::examples::{Counter, Research};
use sightline_runtime::{Runtime, RuntimeConfig};

fn dir(name: &str) -> PathBuf {
    common::data_dir(name)
}

/// A runtime whose `Research` class is the example agent, its fibers' first runs frozen after
/// checkpoint `freeze_after`; or, when it `recovers` not, an agent without a recovery
/// handler (the example `Counter`) serving the same databases.
fn start(
    data_dir: PathBuf,
    freeze_after: Option<u64>,
    recovers: bool,
    max_age_ms: u64,
) -> (tokio::runtime::Runtime, Subscription, Runtime) {
    let (rt, sub, runtime) = common::setup(RuntimeConfig {
        data_dir,
        fiber_max_age_ms: max_age_ms,
        ..Default::default()
    });
    if recovers {
        runtime.register("Research", move |_| Research {
            tools: common::tools(),
            freeze_after,
        });
    } else {
        runtime.register("Research", |_| Counter);
    }
    (rt, sub, runtime)
}

fn stash_steps(events: &[Event]) -> Vec<u32> {
    events
        .iter()
        .filter_map(|e| match &e.payload {
            Payload::FiberStash(s) => Some(s.step),
            _ => None,
        })
        .collect()
}

/// Runs a fiber that freezes after step 3, then kills the process (drops its runtime).
fn crash_mid_fiber(data: &std::path::Path) -> Vec<Event> {
    let (rt, sub, runtime) = start(data.to_path_buf(), Some(3), true, 3_600_000);
    let r = runtime.clone();
    rt.spawn(async move {
        r.rpc("Research", "r-1", "research", Value::Null, None)
            .await
    });
    let mut seen = Vec::new();
    common::collect_until(&sub, &mut seen, "no third checkpoint", |ev| {
        stash_steps(ev).len() == 3
    });
    drop(runtime);
    rt.shutdown_timeout(Duration::from_millis(50));
    seen
}

#[test]
fn an_interrupted_fiber_resumes_from_its_last_checkpoint_and_completes_once() {
    let data = dir("resume");
    let before = crash_mid_fiber(&data);
    assert_eq!(stash_steps(&before), vec![1, 2, 3]);
    assert_eq!(count(&before, Kind::FiberRunCompleted), 0);

    let (_rt, sub, runtime) = start(data, None, true, 3_600_000);
    assert_eq!(
        runtime.resume().unwrap(),
        1,
        "the interrupted fiber's agent was not found"
    );
    let mut after = Vec::new();
    common::collect_until(&sub, &mut after, "recovery did not finish", |ev| {
        count(ev, Kind::FiberRecoveryHandled) == 1
    });
    let detected = after
        .iter()
        .find_map(|e| match &e.payload {
            Payload::FiberRecoveryDetected(d) => Some(d.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(detected.last_step, 3);
    assert_eq!(count(&after, Kind::FiberRunInterrupted), 1);
    assert_eq!(count(&after, Kind::FiberRecoveryAttempt), 1);
    // Went on from the checkpoint: steps 4..6, none repeated; completed exactly once.
    assert_eq!(stash_steps(&after), vec![4, 5, 6]);
    assert_eq!(count(&after, Kind::FiberRunCompleted), 1);
    std::thread::sleep(Duration::from_millis(200));
    while let Some(e) = sub.try_recv() {
        after.push(e);
    }
    assert_eq!(count(&after, Kind::FiberRunCompleted), 1, "completed twice");
}

#[test]
fn a_fiber_too_old_or_without_a_handler_is_skipped() {
    for (recovers, max_age_ms, reason) in [
        (true, 1, "max_age_exceeded"),
        (false, 3_600_000, "no_handler"),
    ] {
        let data = dir(reason);
        crash_mid_fiber(&data);
        let (_rt, sub, runtime) = start(data, None, recovers, max_age_ms);
        runtime.resume().unwrap();
        let mut seen = Vec::new();
        common::collect_until(&sub, &mut seen, reason, |ev| {
            count(ev, Kind::FiberRecoverySkipped) == 1
        });
        let skipped = seen
            .iter()
            .find_map(|e| match &e.payload {
                Payload::FiberRecoverySkipped(s) => Some(s.reason.to_string()),
                _ => None,
            })
            .unwrap();
        assert_eq!(skipped, reason);
        assert_eq!(count(&seen, Kind::FiberRunCompleted), 0);
    }
}
