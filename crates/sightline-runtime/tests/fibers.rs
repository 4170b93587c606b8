//! Fibers: checkpoints persisted step by step; after a crash the interrupted fiber is found,
//! reported, handed back with its last checkpoint, resumed from there and completed once;
//! one too old is given up; an agent without a handler skips it.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{json, Value};
use sightline_bus::Subscription;
use sightline_event::{Event, Kind, Payload};
use sightline_runtime::{Agent, Ctx, Recovered, RpcError, Runtime, RuntimeConfig};

const STEPS: u64 = 6;

struct Research {
    /// Stop making progress (as if the process froze) after this step.
    hang_after: Option<u64>,
    recovers: bool,
}

async fn work(
    ctx: &mut Ctx,
    mut fiber: sightline_runtime::Fiber,
    from: u64,
    hang_after: Option<u64>,
) -> Result<(), RpcError> {
    let err = |e: sightline_runtime::StoreError| RpcError::new("StoreError", e.to_string());
    for step in from..=STEPS {
        tokio::time::sleep(Duration::from_millis(5)).await;
        ctx.stash(&mut fiber, &json!({ "done": step }))
            .map_err(err)?;
        if hang_after == Some(step) {
            std::future::pending::<()>().await;
        }
    }
    ctx.complete_fiber(fiber).map_err(err)
}

impl Agent for Research {
    async fn on_rpc(
        &mut self,
        ctx: &mut Ctx,
        method: &str,
        _args: Value,
    ) -> Result<Value, RpcError> {
        match method {
            "research" => {
                let fiber = ctx
                    .start_fiber("research")
                    .map_err(|e| RpcError::new("StoreError", e.to_string()))?;
                work(ctx, fiber, 1, self.hang_after).await?;
                Ok(Value::Null)
            }
            other => Err(RpcError::new("NotFound", other)),
        }
    }

    async fn on_fiber_recovered(&mut self, ctx: &mut Ctx, r: Recovered) -> Result<(), RpcError> {
        if !self.recovers {
            return Err(RpcError::new(sightline_runtime::NO_HANDLER, "none"));
        }
        let done = r
            .stash
            .as_ref()
            .and_then(|s| s["done"].as_u64())
            .unwrap_or(0);
        work(ctx, r.fiber, done + 1, None).await
    }
}

fn dir(name: &str) -> PathBuf {
    common::data_dir(name)
}

fn start(
    data_dir: PathBuf,
    hang_after: Option<u64>,
    recovers: bool,
    max_age_ms: u64,
) -> (tokio::runtime::Runtime, Subscription, Runtime) {
    let (rt, sub, runtime) = common::setup(RuntimeConfig {
        data_dir,
        fiber_max_age_ms: max_age_ms,
        ..Default::default()
    });
    runtime.register("Research", move |_| Research {
        hang_after,
        recovers,
    });
    (rt, sub, runtime)
}

fn count(events: &[Event], kind: Kind) -> usize {
    events.iter().filter(|e| e.kind() == kind).count()
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

/// Runs a fiber that hangs after step 3, then kills the process (drops its runtime).
fn crash_mid_fiber(data: &std::path::Path, recovers: bool) -> Vec<Event> {
    let (rt, sub, runtime) = start(data.to_path_buf(), Some(3), recovers, 3_600_000);
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
    let before = crash_mid_fiber(&data, true);
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
        crash_mid_fiber(&data, recovers);
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
