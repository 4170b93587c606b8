//! Schedules: run once, retried then given up, intervals with overlaps skipped, cancelled,
//! surviving a crash, missed cron runs reported, the creating trace continued.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::count;
use serde_json::{json, Value};
use sightline_bus::Subscription;
use sightline_event::{Event, Kind, Outcome, Payload, TraceContext};
use sightline_runtime::examples::Reminder;
use sightline_runtime::{Agent, Ctx, RpcError, Runtime, RuntimeConfig, When};

/// Exercises the schedule API's corners the example `Reminder` does not: intervals (slow
/// ones overlapping themselves, one cancelling itself), queues with a failing item, absurd
/// times.
struct Scheduler;

impl Agent for Scheduler {
    async fn on_rpc(
        &mut self,
        ctx: &mut Ctx,
        method: &str,
        args: Value,
    ) -> Result<Value, RpcError> {
        let err = |e: String| RpcError::new("ScheduleError", e);
        match method {
            "every" => {
                let ms = args["ms"].as_u64().unwrap_or(0);
                let cb = args["callback"].as_str().unwrap_or("ping").to_owned();
                let id = ctx
                    .schedule(When::Interval(Duration::from_millis(ms)), &cb, Value::Null)
                    .map_err(|e| err(e.to_string()))?;
                Ok(json!(id))
            }
            "cancel" => {
                let ok = ctx
                    .cancel_schedule(args.as_str().unwrap_or(""))
                    .map_err(|e| err(e.to_string()))?;
                Ok(json!(ok))
            }
            "count" => Ok(json!(ctx.schedules().map(|s| s.len()).unwrap_or(0))),
            "enqueue" => {
                for cb in ["ping", "fail", "ping"] {
                    ctx.queue(cb, json!({"n": 1}))
                        .map_err(|e| err(e.to_string()))?;
                }
                Ok(Value::Null)
            }
            "ping" => Ok(Value::Null),
            "huge" => ctx
                .schedule(When::Interval(Duration::MAX), "ping", Value::Null)
                .map(|id| json!(id))
                .map_err(|e| err(e.to_string())),
            "every_then_stop" => {
                let id = ctx
                    .schedule(
                        When::Interval(Duration::from_millis(30)),
                        "stop_self",
                        Value::Null,
                    )
                    .map_err(|e| err(e.to_string()))?;
                ctx.set_state(json!({ "self_id": id }))
                    .map_err(|e| err(e.to_string()))?;
                Ok(Value::Null)
            }
            "stop_self" => {
                let id = ctx.state()["self_id"].as_str().unwrap_or("").to_owned();
                ctx.cancel_schedule(&id).map_err(|e| err(e.to_string()))?;
                Ok(Value::Null)
            }
            "slow" => {
                tokio::time::sleep(Duration::from_millis(120)).await;
                Ok(Value::Null)
            }
            "fail" => Err(RpcError::new("SmtpDown", "550 mailbox unavailable")),
            other => Err(RpcError::new("NotFound", other)),
        }
    }
}

fn dir(name: &str) -> PathBuf {
    common::data_dir(name)
}

struct Env {
    rt: tokio::runtime::Runtime,
    sub: Subscription,
    runtime: Runtime,
    seen: Vec<Event>,
}

impl Env {
    fn new(data_dir: PathBuf) -> Env {
        let (rt, sub, runtime) = common::setup(RuntimeConfig {
            data_dir,
            idle_hibernate_ms: 60_000,
            ..Default::default()
        });
        runtime.register("Reminder", |_| Reminder { poll_max_ms: 0 });
        runtime.register("Scheduler", |_| Scheduler);
        Env {
            rt,
            sub,
            runtime,
            seen: Vec::new(),
        }
    }

    /// Calls the `Scheduler` agent.
    fn call(&self, method: &str, args: Value, trace: Option<TraceContext>) -> Value {
        self.call_on("Scheduler", method, args, trace)
    }

    /// Calls the agent `class/r-1`.
    fn call_on(
        &self,
        class: &str,
        method: &str,
        args: Value,
        trace: Option<TraceContext>,
    ) -> Value {
        self.rt
            .block_on(self.runtime.rpc(class, "r-1", method, args, trace))
            .unwrap()
    }

    /// Collects events until `done` holds for them, or fails after [`common::DEADLINE`].
    fn wait(&mut self, what: &str, done: impl Fn(&[Event]) -> bool) -> &[Event] {
        common::collect_until(&self.sub, &mut self.seen, what, done);
        &self.seen
    }
}

#[test]
fn a_delayed_schedule_runs_once_and_continues_the_creating_trace() {
    let mut env = Env::new(dir("delay"));
    let caller = TraceContext::new_root();
    env.call_on(
        "Reminder",
        "remind_later",
        json!({"delay_ms": 50}),
        Some(caller),
    );
    let events = env.wait("no completion", |ev| count(ev, Kind::ScheduleComplete) == 1);
    let create = events
        .iter()
        .find(|e| e.kind() == Kind::ScheduleCreate)
        .unwrap();
    let complete = events
        .iter()
        .find(|e| e.kind() == Kind::ScheduleComplete)
        .unwrap();
    assert_eq!(complete.outcome, Some(Outcome::Ok));
    assert!(complete.duration_ns.is_some());
    assert_eq!(
        complete.trace_id,
        Some(caller.trace_id),
        "the schedule left the trace"
    );
    assert_eq!(create.trace_id, Some(caller.trace_id));
    match &complete.payload {
        Payload::ScheduleComplete(c) => {
            assert_eq!((c.callback.as_str(), c.attempts), ("remind", 1));
        }
        p => panic!("{p:?}"),
    }
    assert_eq!(count(events, Kind::ScheduleExecute), 1);
    assert_eq!(
        env.call_on("Reminder", "pending", Value::Null, None),
        json!(0),
        "a one-off stayed"
    );
}

#[test]
fn a_failing_callback_is_retried_then_given_up_with_schedule_error() {
    let mut env = Env::new(dir("fail"));
    env.call_on(
        "Reminder",
        "remind_later",
        json!({"delay_ms": 10, "fail": true}),
        None,
    );
    let events = env.wait("no schedule:error", |ev| {
        count(ev, Kind::ScheduleError) == 1
    });
    assert_eq!(count(events, Kind::ScheduleExecute), 3);
    let retries: Vec<_> = events
        .iter()
        .filter_map(|e| match &e.payload {
            Payload::ScheduleRetry(r) => Some((r.attempt, r.max_attempts, r.backoff_ms)),
            _ => None,
        })
        .collect();
    assert_eq!(retries.len(), 2);
    assert_eq!((retries[0].0, retries[0].1), (1, 3));
    assert!(retries[0].2 <= 100 && retries[1].2 <= 200, "{retries:?}");
    let error = events
        .iter()
        .find(|e| e.kind() == Kind::ScheduleError)
        .unwrap();
    assert_eq!(error.outcome, Some(Outcome::Error));
    match &error.payload {
        Payload::ScheduleError(e) => {
            assert_eq!(e.attempts, 3);
            assert_eq!(e.error_type.as_deref(), Some("UpstreamError"));
        }
        p => panic!("{p:?}"),
    }
}

#[test]
fn an_interval_repeats_skips_overlapping_runs_and_stops_when_cancelled() {
    let mut env = Env::new(dir("interval"));
    let id = env.call("every", json!({"ms": 40}), None);
    env.wait("interval did not repeat", |ev| {
        count(ev, Kind::ScheduleComplete) >= 3
    });
    assert_eq!(env.call("cancel", id, None), json!(true));
    let after_cancel = env
        .wait("no cancel event", |ev| count(ev, Kind::ScheduleCancel) == 1)
        .len();
    std::thread::sleep(Duration::from_millis(200));
    let events = env.wait("", |_| true);
    assert_eq!(
        count(&events[after_cancel..], Kind::ScheduleExecute),
        0,
        "a cancelled schedule ran"
    );

    // A callback slower than its interval: the runs that fell due meanwhile are skipped.
    env.call("every", json!({"ms": 50, "callback": "slow"}), None);
    env.wait("no overlap skipped", |ev| {
        count(ev, Kind::ScheduleSkipped) >= 1
    });
}

#[test]
fn a_schedule_survives_a_crash_and_missed_cron_runs_are_reported() {
    let data = dir("crash");
    {
        let env = Env::new(data.clone());
        env.call_on("Reminder", "remind_later", json!({"delay_ms": 300}), None);
        // A digest every second (cron) and a poll every second (interval).
        env.call_on("Reminder", "setup", Value::Null, None);
        // The process dies: no hibernation, no clean shutdown.
        let Env { rt, runtime, .. } = env;
        drop(runtime);
        rt.shutdown_timeout(Duration::from_millis(50));
    }
    // Down for a while: the delay falls due and the every-second cron misses runs.
    std::thread::sleep(Duration::from_millis(2600));
    let mut env = Env::new(data);
    assert_eq!(env.runtime.resume().unwrap(), 1);
    // No input: the alarm wakes the agent.
    let events = env.wait("schedules did not fire after the restart", |ev| {
        count(ev, Kind::ScheduleComplete) >= 2 && count(ev, Kind::ScheduleMissed) >= 1
    });
    let missed = events
        .iter()
        .find_map(|e| match &e.payload {
            Payload::ScheduleMissed(m) => Some(m.clone()),
            _ => None,
        })
        .unwrap();
    assert!(missed.missed_runs >= 1, "{missed:?}");
    assert!(missed.downtime_ms >= 1000, "{missed:?}");
    let wake = events.iter().find(|e| e.kind() == Kind::AgentWake).unwrap();
    match &wake.payload {
        Payload::AgentWake(w) => assert_eq!(w.trigger, "restart"),
        p => panic!("{p:?}"),
    }
    let late = events
        .iter()
        .filter_map(|e| match &e.payload {
            Payload::ScheduleComplete(c) => Some(c.lateness_ms),
            _ => None,
        })
        .max()
        .unwrap();
    assert!(late >= 1000, "the overdue run's lateness is {late} ms");
}

#[test]
fn queued_callbacks_run_in_order_after_the_input_with_retries() {
    let mut env = Env::new(dir("queue"));
    env.call("enqueue", Value::Null, None);
    let events = env.wait("queue did not drain", |ev| {
        count(ev, Kind::QueueComplete) == 2 && count(ev, Kind::QueueError) == 1
    });
    assert_eq!(count(events, Kind::QueueCreate), 3);
    assert_eq!(count(events, Kind::QueueRetry), 2);
    // In order: the first ping completes before the failing item's first retry.
    let first_complete = events
        .iter()
        .position(|e| e.kind() == Kind::QueueComplete)
        .unwrap();
    let first_retry = events
        .iter()
        .position(|e| e.kind() == Kind::QueueRetry)
        .unwrap();
    assert!(first_complete < first_retry);
    assert_eq!(
        count(events, Kind::ScheduleExecute),
        0,
        "queue items are not schedules"
    );
}

#[test]
fn a_callback_that_cancels_its_own_interval_stops_it_and_absurd_times_are_refused() {
    let mut env = Env::new(dir("self-cancel"));
    let e = env
        .rt
        .block_on(
            env.runtime
                .rpc("Scheduler", "r-1", "huge", Value::Null, None),
        )
        .unwrap_err();
    assert!(e.message.contains("too far"), "{e}");
    env.call("every_then_stop", Value::Null, None);
    env.wait("the interval never ran", |ev| {
        count(ev, Kind::ScheduleComplete) >= 1
    });
    std::thread::sleep(Duration::from_millis(300));
    let events = env.wait("", |_| true);
    assert_eq!(
        count(events, Kind::ScheduleComplete),
        1,
        "a schedule that cancelled itself ran again"
    );
    assert_eq!(env.call("count", Value::Null, None), json!(0));
}
