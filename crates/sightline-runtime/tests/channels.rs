//! Connections, chat messages as turns, email, slow dispatch; eviction mid-fiber and a
//! graceful shutdown followed by a restart on the same directory.

mod common;

use std::time::Duration;

use common::kinds;
use serde_json::{json, Value};
use sightline_event::{Event, Kind, Payload};
use sightline_runtime::examples::{Counter, Reminder, Research, Support};
use sightline_runtime::{Agent, Ctx, Email, RpcError, RuntimeConfig, When};

#[test]
fn a_chat_message_is_a_turn_between_request_and_response_and_email_is_evented() {
    let (rt, sub, runtime) = common::setup(common::config("channels", |_| {}));
    runtime.register("Support", |_| Support {
        tools: common::tools(),
    });
    rt.block_on(async {
        runtime.connect("Support", "t-1", "conn-1").await.unwrap();
        let reply = runtime
            .message(
                "Support",
                "t-1",
                "conn-1",
                "req-1",
                "how do I reset my password",
                None,
            )
            .await
            .unwrap();
        assert!(reply.starts_with("Answer about"), "{reply}");
        let err = runtime
            .message("Support", "t-1", "conn-1", "req-2", "FAIL please", None)
            .await
            .unwrap_err();
        assert_eq!(err.error_type, "RateLimited");
        runtime
            .disconnect("Support", "t-1", "conn-1", 1000, None)
            .unwrap();
        runtime
            .email(
                "Support",
                "t-1",
                Email {
                    from: "ann@example.com".into(),
                    to: "support@example.com".into(),
                    subject: "order".into(),
                    body: "hello".into(),
                },
            )
            .await
            .unwrap();
    });
    let mut seen = Vec::new();
    common::collect_until(&sub, &mut seen, "gave up", |ev| {
        ev.iter().any(|e| e.kind() == Kind::EmailReply)
    });
    let k = kinds(&seen);
    let first: Vec<_> = k
        .iter()
        .copied()
        .filter(|k| !k.starts_with("state") && !k.starts_with("agent"))
        .collect();
    assert_eq!(
        first,
        [
            "connect",
            "message:request",
            "chat:turn:start",
            "model:call",
            "chat:turn:finish",
            "message:response",
            "message:request",
            "chat:turn:start",
            "model:call",
            "chat:turn:finish",
            "message:error",
            "disconnect",
            "email:receive",
            "model:call",
            "email:reply",
        ]
    );
    // The model call nests in the turn, the turn in the message.
    let by = |kind: Kind| seen.iter().find(|e| e.kind() == kind).unwrap();
    let (msg, turn, model) = (
        by(Kind::MessageResponse).trace().unwrap(),
        by(Kind::ChatTurnFinish).trace().unwrap(),
        by(Kind::ModelCall).trace().unwrap(),
    );
    assert_eq!(turn.parent_span_id, Some(msg.span_id));
    assert_eq!(model.parent_span_id, Some(turn.span_id));
    assert_eq!(model.trace_id, msg.trace_id);
    let failed = seen.iter().find(|e| {
        e.kind() == Kind::ChatTurnFinish && e.outcome == Some(sightline_event::Outcome::Error)
    });
    assert!(failed.is_some(), "{k:?}");
}

#[test]
fn an_input_that_waited_too_long_is_reported_as_slow_dispatch() {
    let (rt, sub, runtime) = common::setup(common::config("slow", |c| {
        c.slow_dispatch_ms = 50;
        c.backlog_warning_inputs = 2;
    }));
    runtime.register("Counter", |_| Counter);
    rt.block_on(async {
        let calls: Vec<_> = (0..4)
            .map(|_| {
                let r = runtime.clone();
                tokio::spawn(
                    async move { r.rpc("Counter", "t-1", "slow", Value::Null, None).await },
                )
            })
            .collect();
        for c in calls {
            c.await.unwrap().unwrap();
        }
    });
    let seen = common::drain(&sub);
    let slow: Vec<_> = seen
        .iter()
        .filter_map(|e| match &e.payload {
            Payload::JobSlowDispatch(p) => Some((p.job.as_str().to_owned(), p.waited_ms)),
            _ => None,
        })
        .collect();
    assert!(slow.len() >= 2, "{:?}", kinds(&seen));
    assert!(slow
        .iter()
        .all(|(job, waited)| job == "slow" && *waited >= 50));
    assert_eq!(
        seen.iter()
            .filter(|e| e.kind() == Kind::JobBacklogWarning)
            .count(),
        1
    );
}

#[test]
fn an_evicted_agent_recovers_its_fiber_on_the_next_input_without_a_sequence_gap() {
    let (rt, sub, runtime) = common::setup(common::config("evict", |_| {}));
    // Its first run stops making progress after the second checkpoint: evicted mid-fiber.
    runtime.register("Research", |_| Research {
        tools: common::tools(),
        freeze_after: Some(2),
    });
    let r = runtime.clone();
    let call = rt.spawn(async move {
        r.rpc("Research", "r-1", "research", Value::Null, None)
            .await
    });
    let mut seen = Vec::new();
    common::collect_until(&sub, &mut seen, "gave up", |ev| {
        ev.iter().filter(|e| e.kind() == Kind::FiberStash).count() >= 2
    });
    assert!(runtime.evict("Research", "r-1"));
    let err = rt.block_on(call).unwrap().unwrap_err();
    assert_eq!(err.error_type, "Internal", "{err}");
    rt.block_on(runtime.rpc("Research", "r-1", "save_notes", Value::Null, None))
        .unwrap();
    common::collect_until(&sub, &mut seen, "gave up", |ev| {
        ev.iter().any(|e| e.kind() == Kind::FiberRecoveryHandled)
    });
    let wake = seen.iter().find_map(|e| match &e.payload {
        Payload::AgentWake(w) => Some(w.trigger.as_str().to_owned()),
        _ => None,
    });
    assert_eq!(wake.as_deref(), Some("evicted"));
    // Completed once, by the recovery, going on after the last checkpoint.
    assert_eq!(
        seen.iter()
            .filter(|e| e.kind() == Kind::FiberRunCompleted)
            .count(),
        1
    );
    let steps: Vec<u32> = seen
        .iter()
        .filter_map(|e| match &e.payload {
            Payload::FiberStash(s) => Some(s.step),
            _ => None,
        })
        .collect();
    assert_eq!(steps, [1, 2, 3, 4, 5, 6], "{:?}", kinds(&seen));
    let seqs: Vec<u64> = seen.iter().map(|e| e.seq).collect();
    let expected: Vec<u64> = (1..=seqs.len() as u64).collect();
    assert_eq!(seqs, expected, "{:?}", kinds(&seen));
}

#[test]
fn after_a_graceful_shutdown_a_new_runtime_resumes_schedules_and_reports_missed_cron_runs() {
    let data_dir = common::data_dir("restart");
    let cfg = RuntimeConfig {
        data_dir: data_dir.clone(),
        ..Default::default()
    };
    let (rt, sub, runtime) = common::setup(cfg.clone());
    runtime.register("Reminder", |_| Reminder { poll_max_ms: 0 });
    rt.block_on(async {
        runtime
            .rpc("Reminder", "w-1", "setup", Value::Null, None)
            .await
            .unwrap();
        runtime.shutdown(Duration::from_secs(5)).await;
        let refused = runtime
            .rpc("Reminder", "w-1", "setup", Value::Null, None)
            .await;
        assert_eq!(refused.unwrap_err().error_type, "ShuttingDown");
    });
    let before = common::drain(&sub);
    assert!(
        before.iter().any(|e| e.kind() == Kind::AgentHibernate),
        "{:?}",
        kinds(&before)
    );
    std::thread::sleep(Duration::from_millis(2500));
    let (rt2, sub2, runtime2) = common::setup(cfg);
    runtime2.register("Reminder", |_| Reminder { poll_max_ms: 0 });
    assert_eq!(runtime2.resume().unwrap(), 1);
    let mut seen = Vec::new();
    common::collect_until(&sub2, &mut seen, "gave up", |ev| {
        ev.iter().any(|e| e.kind() == Kind::ScheduleMissed)
            && ev.iter().any(|e| e.kind() == Kind::ScheduleComplete)
    });
    // Sequence numbers continue exactly where the first runtime stopped.
    let last = before.iter().map(|e| e.seq).max().unwrap();
    assert_eq!(seen.iter().map(|e| e.seq).min(), Some(last + 1));
    drop(rt2);
    drop(rt);
    let _ = std::fs::remove_dir_all(data_dir);
}

/// An agent with a bug: `crash` panics (also as a scheduled callback, `arm`).
struct Fragile;

impl Agent for Fragile {
    async fn on_rpc(
        &mut self,
        ctx: &mut Ctx,
        method: &str,
        _args: Value,
    ) -> Result<Value, RpcError> {
        match method {
            "count" => {
                let n = ctx.state()["n"].as_u64().unwrap_or(0) + 1;
                ctx.set_state(json!({ "n": n }))
                    .map_err(|e| RpcError::new("StateError", e.to_string()))?;
                Ok(json!(n))
            }
            "crash" => panic!("the agent's code has a bug"),
            "arm" => {
                ctx.schedule(When::Delay(Duration::from_millis(10)), "crash", Value::Null)
                    .map_err(|e| RpcError::new("Schedule", e.to_string()))?;
                Ok(Value::Null)
            }
            other => Err(RpcError::new("NotFound", other)),
        }
    }
}

#[test]
fn a_panicking_agent_is_reported_and_reset_from_its_stored_state() {
    let (rt, sub, runtime) = common::setup(common::config("panic", |_| {}));
    runtime.register("Fragile", |_| Fragile);
    rt.block_on(async {
        assert_eq!(
            runtime
                .rpc("Fragile", "f-1", "count", Value::Null, None)
                .await
                .unwrap(),
            json!(1)
        );
        let err = runtime
            .rpc("Fragile", "f-1", "crash", Value::Null, None)
            .await
            .unwrap_err();
        assert_eq!(err.error_type, "Internal", "{err}");
        // The next input gets a fresh instance with the stored state.
        assert_eq!(
            runtime
                .rpc("Fragile", "f-1", "count", Value::Null, None)
                .await
                .unwrap(),
            json!(2)
        );
    });
    let seen = common::drain(&sub);
    let panic = seen
        .iter()
        .find_map(|e| match &e.payload {
            Payload::RpcError(p) => Some(p.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(panic.method, "crash");
    assert_eq!(panic.error_type.as_deref(), Some("Panic"));
    assert!(seen.iter().any(|e| e.kind() == Kind::AgentWake));
    let seqs: Vec<u64> = seen.iter().map(|e| e.seq).collect();
    assert_eq!(
        seqs,
        (1..=seqs.len() as u64).collect::<Vec<_>>(),
        "{:?}",
        kinds(&seen)
    );
}

#[test]
fn a_scheduled_callback_that_always_panics_backs_off_instead_of_looping() {
    let (rt, sub, runtime) = common::setup(common::config("panic-loop", |_| {}));
    runtime.register("Fragile", |_| Fragile);
    rt.block_on(runtime.rpc("Fragile", "f-1", "arm", Value::Null, None))
        .unwrap();
    let panics = |events: &[Event]| -> Vec<u64> {
        events
            .iter()
            .filter(|e| {
                matches!(&e.payload, Payload::RpcError(p) if p.error_type.as_deref() == Some("Panic"))
            })
            .map(|e| e.ts_ns)
            .collect()
    };
    let mut seen = Vec::new();
    common::collect_until(&sub, &mut seen, "gave up", |ev| panics(ev).len() >= 2);
    let p = panics(&seen);
    // One second at least between the first and the second (then two, four, ... a minute).
    assert!(p[1] - p[0] >= 900_000_000, "{p:?}");
    std::thread::sleep(Duration::from_millis(500));
    seen.extend(common::drain(&sub));
    assert!(panics(&seen).len() <= 3, "{:?}", kinds(&seen));
}
