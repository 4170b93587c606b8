//! The runtime's contract: addressing, one input at a time, persisted state with its events,
//! RPC events with trace context, hibernation and wake (by an input or by the agent's own
//! alarm), sequence numbers never reused.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::{count, drain, kinds};
use serde_json::{json, Value};
use sightline_bus::Subscription;
use sightline_event::{Kind, Outcome, Payload, TraceContext};
use sightline_runtime::examples::{Counter, Reminder};
use sightline_runtime::{Runtime, RuntimeConfig};

fn dir(name: &str) -> PathBuf {
    common::data_dir(name)
}

fn setup(data_dir: PathBuf, idle_ms: u64) -> (tokio::runtime::Runtime, Subscription, Runtime) {
    let (rt, sub, runtime) = common::setup(RuntimeConfig {
        data_dir,
        idle_hibernate_ms: idle_ms,
        state_max_bytes: 256,
        mailbox_capacity: 4,
        ..Default::default()
    });
    runtime.register("Counter", |_| Counter);
    (rt, sub, runtime)
}

#[test]
fn the_same_name_reaches_the_same_state_one_input_at_a_time() {
    let (rt, sub, runtime) = setup(dir("same"), 60_000);
    let calls: Vec<_> = (0..3)
        .map(|_| {
            let r = runtime.clone();
            rt.spawn(async move {
                r.rpc("Counter", "a", "increment", json!({"by": "x"}), None)
                    .await
            })
        })
        .collect();
    let mut results: Vec<u64> = calls
        .into_iter()
        .map(|h| rt.block_on(h).unwrap().unwrap().as_u64().unwrap())
        .collect();
    results.sort();
    assert_eq!(results, vec![1, 2, 3], "inputs interleaved");
    let other = rt
        .block_on(runtime.rpc("Counter", "b", "increment", json!({}), None))
        .unwrap();
    assert_eq!(other, json!(1), "another name is another agent");
    let events = drain(&sub);
    let updates: Vec<_> = events
        .iter()
        .filter(|e| e.agent.name == "a")
        .filter_map(|e| match &e.payload {
            Payload::StateUpdate(u) => Some(u.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        updates.iter().map(|u| u.version).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert_eq!(updates[0].changed_paths, vec!["/by", "/n"]);
    assert!(updates[0].size_bytes > 0);
    let diff = updates[1].diff.as_ref().unwrap().expose().value();
    assert_eq!(diff[0]["op"], "replace");
    assert_eq!(diff[0]["path"], "/n");
    assert_eq!(runtime.active(), 2);
}

#[test]
fn an_invalid_or_oversized_state_is_rejected_with_an_event() {
    let (rt, sub, runtime) = setup(dir("reject"), 60_000);
    let big = json!({ "blob": "x".repeat(300) });
    let e = rt
        .block_on(runtime.rpc("Counter", "a", "set", big, None))
        .unwrap_err();
    assert_eq!(e.error_type, "StateError");
    assert!(e.message.contains("over the limit of 256"), "{e}");
    let e = rt
        .block_on(runtime.rpc("Counter", "a", "set", json!([1, 2]), None))
        .unwrap_err();
    assert!(e.message.contains("JSON object"), "{e}");
    let state = rt
        .block_on(runtime.rpc("Counter", "a", "get", Value::Null, None))
        .unwrap();
    assert_eq!(state, json!({}), "a refused update changed the state");
    let rejected: Vec<_> = drain(&sub)
        .into_iter()
        .filter(|e| e.kind() == Kind::StateRejected)
        .collect();
    assert_eq!(rejected.len(), 2);
    match &rejected[0].payload {
        Payload::StateRejected(r) => {
            assert_eq!((r.size_bytes, r.limit_bytes), (Some(311), Some(256)));
        }
        p => panic!("{p:?}"),
    }
}

#[test]
fn rpcs_are_evented_with_duration_outcome_and_the_callers_trace() {
    let (rt, sub, runtime) = setup(dir("rpc"), 60_000);
    let caller = TraceContext::new_root();
    rt.block_on(runtime.rpc_from(
        "Counter",
        "a",
        "increment",
        json!({}),
        Some(caller),
        Some("client:c-1"),
    ))
    .unwrap();
    let e = rt
        .block_on(runtime.rpc("Counter", "a", "nope", json!({}), None))
        .unwrap_err();
    assert_eq!(e.error_type, "NotFound");
    let events = drain(&sub);
    let rpc = events.iter().find(|e| e.kind() == Kind::Rpc).unwrap();
    assert_eq!(rpc.outcome, Some(Outcome::Ok));
    assert!(rpc.duration_ns.unwrap() > 0);
    assert_eq!(rpc.trace_id, Some(caller.trace_id));
    assert_eq!(rpc.parent_span_id, Some(caller.span_id));
    match &rpc.payload {
        Payload::Rpc(p) => {
            assert_eq!(p.method, "increment");
            assert_eq!(p.caller.as_deref(), Some("client:c-1"));
        }
        p => panic!("{p:?}"),
    }
    // The state update inside the RPC is in the RPC's span.
    let update = events
        .iter()
        .find(|e| e.kind() == Kind::StateUpdate)
        .unwrap();
    assert_eq!(update.span_id, rpc.span_id);
    let failed = events.iter().find(|e| e.kind() == Kind::RpcError).unwrap();
    assert_eq!(failed.outcome, Some(Outcome::Error));
    match &failed.payload {
        Payload::RpcError(p) => assert_eq!(p.error_type.as_deref(), Some("NotFound")),
        p => panic!("{p:?}"),
    }
    let unknown = rt
        .block_on(runtime.rpc("Nobody", "a", "x", json!({}), None))
        .unwrap_err();
    assert_eq!(unknown.error_type, "NotFound");
}

#[test]
fn an_idle_agent_hibernates_and_wakes_with_its_state_and_sequence() {
    let (rt, sub, runtime) = setup(dir("hibernate"), 100);
    rt.block_on(runtime.rpc("Counter", "a", "increment", json!({}), None))
        .unwrap();
    common::wait_hibernated(&runtime, "Counter", "a");
    assert_eq!(runtime.active(), 0, "the idle agent did not hibernate");
    // It stays hibernated a while (what `agent:wake` reports below).
    std::thread::sleep(Duration::from_millis(100));
    let n = rt
        .block_on(runtime.rpc("Counter", "a", "increment", json!({}), None))
        .unwrap();
    assert_eq!(n, json!(2), "state lost across hibernation");
    let events = drain(&sub);
    let kinds: Vec<Kind> = events.iter().map(|e| e.kind()).collect();
    assert_eq!(
        kinds,
        vec![
            Kind::StateUpdate,
            Kind::Rpc,
            Kind::AgentHibernate,
            Kind::AgentWake,
            Kind::StateUpdate,
            Kind::Rpc
        ]
    );
    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(
        seqs,
        vec![1, 2, 3, 4, 5, 6],
        "sequence numbers did not continue"
    );
    match &events[3].payload {
        Payload::AgentWake(w) => assert!(w.hibernated_ms >= 100, "{w:?}"),
        p => panic!("{p:?}"),
    }
}

#[test]
fn after_a_crash_sequence_numbers_continue_without_reuse() {
    let data = dir("crash");
    let first_last_seq;
    {
        let (rt, sub, runtime) = setup(data.clone(), 60_000);
        for _ in 0..5 {
            rt.block_on(runtime.rpc("Counter", "a", "increment", json!({}), None))
                .unwrap();
        }
        first_last_seq = drain(&sub).last().unwrap().seq;
        // Dropping the tokio runtime cancels the instance: no hibernation bookkeeping, as
        // after a kill.
        drop(runtime);
        rt.shutdown_timeout(Duration::from_millis(100));
    }
    let (rt, sub, runtime) = setup(data, 60_000);
    let n = rt
        .block_on(runtime.rpc("Counter", "a", "increment", json!({}), None))
        .unwrap();
    assert_eq!(n, json!(6), "state lost");
    let events = drain(&sub);
    assert!(!events.is_empty(), "the restarted agent emitted nothing");
    assert!(
        events.iter().all(|e| e.seq > first_last_seq),
        "a sequence number was reused: {:?} after {first_last_seq}",
        events.iter().map(|e| e.seq).collect::<Vec<_>>()
    );
}

#[test]
fn a_full_mailbox_answers_overloaded() {
    let (rt, _sub, runtime) = setup(dir("overload"), 60_000);
    let calls: Vec<_> = (0..12)
        .map(|_| {
            let r = runtime.clone();
            rt.spawn(async move { r.rpc("Counter", "a", "slow", Value::Null, None).await })
        })
        .collect();
    let results: Vec<_> = calls.into_iter().map(|h| rt.block_on(h).unwrap()).collect();
    let overloaded = results
        .iter()
        .filter(|r| matches!(r, Err(e) if e.error_type == "Overloaded"))
        .count();
    assert!(overloaded > 0, "12 inputs fit a mailbox of 4");
    assert!(results.iter().any(Result::is_ok));
}

#[test]
fn a_hibernated_agent_is_woken_by_its_own_alarm() {
    let (rt, sub, runtime) = common::setup(common::config("alarm", |c| {
        c.idle_hibernate_ms = 50;
    }));
    runtime.register("Reminder", |_| Reminder { poll_max_ms: 0 });
    // Due long after the agent hibernates (50 ms idle).
    rt.block_on(runtime.rpc(
        "Reminder",
        "r-1",
        "remind_later",
        json!({ "delay_ms": 1500 }),
        None,
    ))
    .unwrap();
    common::wait_hibernated(&runtime, "Reminder", "r-1");
    let mut seen = Vec::new();
    common::collect_until(&sub, &mut seen, "the reminder never ran", |ev| {
        count(ev, Kind::ScheduleComplete) == 1
    });
    let at = |kind: Kind| seen.iter().position(|e| e.kind() == kind);
    let (hibernate, wake, execute) = (
        at(Kind::AgentHibernate).expect("no agent:hibernate"),
        at(Kind::AgentWake).expect("no agent:wake"),
        at(Kind::ScheduleExecute).expect("no schedule:execute"),
    );
    let k = kinds(&seen);
    assert!(hibernate < wake && wake < execute, "{k:?}");
    // Nothing but the alarm woke it: no input between hibernating and the run.
    assert_eq!(count(&seen[hibernate..], Kind::Rpc), 0, "{k:?}");
    match &seen[wake].payload {
        Payload::AgentWake(w) => {
            assert_eq!(w.trigger, "alarm", "{w:?}");
            assert!(w.hibernated_ms > 0, "{w:?}");
        }
        p => panic!("{p:?}"),
    }
    match &seen[execute].payload {
        Payload::ScheduleExecute(x) => assert_eq!((x.callback.as_str(), x.attempt), ("remind", 1)),
        p => panic!("{p:?}"),
    }
    let state = seen.iter().rev().find_map(|e| match &e.payload {
        Payload::StateUpdate(u) => Some(u.changed_paths.clone()),
        _ => None,
    });
    assert_eq!(state, Some(vec!["/reminders_sent".into()]), "{k:?}");
    let pending = rt
        .block_on(runtime.rpc("Reminder", "r-1", "pending", Value::Null, None))
        .unwrap();
    assert_eq!(pending, json!(0), "the one-off reminder stayed");
}
