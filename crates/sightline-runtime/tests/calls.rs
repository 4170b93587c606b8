//! Calls out of an agent: to another agent (trace and caller carried), to the model, to a
//! local tool, and to a human (approvals granted, denied and expired), each evented.

mod common;

use std::time::{Duration, Instant};

use common::drain;
use serde_json::{json, Value};
use sightline_bus::Subscription;
use sightline_event::{Event, Kind, Outcome, Payload, TraceContext};
use sightline_runtime::{Agent, Ctx, Decision, RpcError, Runtime, RuntimeConfig};

struct Desk;

impl Agent for Desk {
    async fn on_rpc(
        &mut self,
        ctx: &mut Ctx,
        method: &str,
        args: Value,
    ) -> Result<Value, RpcError> {
        match method {
            "ask_other" => {
                ctx.call_agent("Desk", "other", "answer", json!({"q": 1}))
                    .await
            }
            "ask_self" => ctx.call_agent("Desk", "a-1", "answer", Value::Null).await,
            "answer" => Ok(json!("42")),
            "think" => {
                let prompt = args["prompt"].as_str().unwrap_or("").to_owned();
                let r = ctx.model("gpt-4o-mini", &prompt).await?;
                Ok(json!(r.text))
            }
            "lookup" => {
                ctx.tool("lookup_order", args, |a| async move {
                    Ok(json!({"order": a["id"]}))
                })
                .await
            }
            "ask_human" => {
                let ms = args["expires_ms"].as_u64().unwrap_or(60_000);
                let id =
                    ctx.request_approval("refund", "refund $20?", Duration::from_millis(ms))?;
                Ok(json!(id))
            }
            "decide" => {
                let d = if args["grant"].as_bool().unwrap_or(false) {
                    Decision::Granted
                } else {
                    Decision::Denied
                };
                ctx.decide_approval(
                    args["id"].as_str().unwrap_or(""),
                    d,
                    "agent-smith",
                    Some("policy"),
                )?;
                Ok(Value::Null)
            }
            "refund_flow" => {
                let id = ctx.start_workflow("refund")?;
                ctx.workflow_step(&id, "check_order", &Value::Null)?;
                ctx.pause_workflow(&id)?;
                Ok(json!(id))
            }
            "refund_answer" => {
                let id = args["id"].as_str().unwrap_or("").to_owned();
                let approved = args["approved"].as_bool().unwrap_or(false);
                ctx.answer_workflow(&id, approved, Some("checked"))?;
                if approved {
                    ctx.workflow_step(&id, "issue_refund", &Value::Null)?;
                    if args["fail"].as_bool().unwrap_or(false) {
                        let e = RpcError::new("PaymentDown", "gateway timeout");
                        ctx.end_workflow(&id, Some(("issue_refund", &e)))?;
                    } else {
                        ctx.end_workflow(&id, None)?;
                    }
                }
                Ok(Value::Null)
            }
            other => Err(RpcError::new("NotFound", other)),
        }
    }
}

fn start() -> (tokio::runtime::Runtime, Subscription, Runtime) {
    let (rt, sub, runtime) = common::setup(RuntimeConfig {
        data_dir: common::data_dir("calls"),
        ..Default::default()
    });
    runtime.register("Desk", |_| Desk);
    (rt, sub, runtime)
}

fn call(
    rt: &tokio::runtime::Runtime,
    runtime: &Runtime,
    method: &str,
    args: Value,
) -> Result<Value, RpcError> {
    rt.block_on(runtime.rpc("Desk", "a-1", method, args, None))
}

#[test]
fn another_agent_is_called_in_the_same_trace_and_a_self_call_is_refused() {
    let (rt, sub, runtime) = start();
    let caller = TraceContext::new_root();
    let out = rt
        .block_on(runtime.rpc("Desk", "a-1", "ask_other", Value::Null, Some(caller)))
        .unwrap();
    assert_eq!(out, json!("42"));
    let events = drain(&sub);
    let inner = events
        .iter()
        .find(|e| e.agent.name == "other" && e.kind() == Kind::Rpc)
        .unwrap();
    let outer = events
        .iter()
        .find(|e| e.agent.name == "a-1" && e.kind() == Kind::Rpc)
        .unwrap();
    assert_eq!(inner.trace_id, Some(caller.trace_id));
    assert_eq!(
        inner.parent_span_id, outer.span_id,
        "the callee is not under the caller"
    );
    match &inner.payload {
        Payload::Rpc(r) => assert_eq!(r.caller.as_deref(), Some("Desk/a-1")),
        p => panic!("{p:?}"),
    }
    let e = call(&rt, &runtime, "ask_self", Value::Null).unwrap_err();
    assert_eq!(e.error_type, "Deadlock");
}

#[test]
fn model_and_tool_calls_are_evented_with_tokens_and_outcomes() {
    let (rt, sub, runtime) = start();
    call(
        &rt,
        &runtime,
        "think",
        json!({"prompt": "what is the refund policy"}),
    )
    .unwrap();
    let e = call(&rt, &runtime, "think", json!({"prompt": "please FAIL"})).unwrap_err();
    assert_eq!(e.error_type, "RateLimited");
    call(&rt, &runtime, "lookup", json!({"id": "88412"})).unwrap();
    let events = drain(&sub);
    let models: Vec<_> = events
        .iter()
        .filter(|e| e.kind() == Kind::ModelCall)
        .collect();
    assert_eq!(models.len(), 2);
    assert_eq!(models[0].outcome, Some(Outcome::Ok));
    assert_eq!(models[1].outcome, Some(Outcome::Error));
    match &models[0].payload {
        Payload::ModelCall(m) => {
            assert_eq!(
                (m.model.as_str(), m.provider.as_str()),
                ("gpt-4o-mini", "local")
            );
            assert!(m.input_tokens >= 5 && m.output_tokens > 0, "{m:?}");
        }
        p => panic!("{p:?}"),
    }
    let tool = events.iter().find(|e| e.kind() == Kind::ToolCall).unwrap();
    assert!(tool.duration_ns.is_some());
    match &tool.payload {
        Payload::ToolCall(t) => assert_eq!(t.source.as_deref(), Some("local")),
        p => panic!("{p:?}"),
    }
}

#[test]
fn approvals_are_granted_denied_or_expire() {
    let (rt, sub, runtime) = start();
    let granted = call(&rt, &runtime, "ask_human", json!({})).unwrap();
    let denied = call(&rt, &runtime, "ask_human", json!({})).unwrap();
    let expiring = call(&rt, &runtime, "ask_human", json!({"expires_ms": 100})).unwrap();
    call(
        &rt,
        &runtime,
        "decide",
        json!({"id": granted, "grant": true}),
    )
    .unwrap();
    call(
        &rt,
        &runtime,
        "decide",
        json!({"id": denied, "grant": false}),
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut events = Vec::new();
    while !events
        .iter()
        .any(|e: &Event| e.kind() == Kind::ApprovalExpired)
    {
        assert!(Instant::now() < deadline, "no approval:expired");
        std::thread::sleep(Duration::from_millis(20));
        events.extend(drain(&sub));
    }
    let late = call(
        &rt,
        &runtime,
        "decide",
        json!({"id": expiring, "grant": true}),
    )
    .unwrap_err();
    assert_eq!(late.error_type, "NotPending");
    let count = |k: Kind| events.iter().filter(|e| e.kind() == k).count();
    assert_eq!(count(Kind::ApprovalRequested), 3);
    assert_eq!(count(Kind::ApprovalGranted), 1);
    assert_eq!(count(Kind::ApprovalDenied), 1);
    assert_eq!(count(Kind::ApprovalExpired), 1);
    let expired = events
        .iter()
        .find(|e| e.kind() == Kind::ApprovalExpired)
        .unwrap();
    assert_eq!(expired.outcome, Some(Outcome::Timeout));
    assert!(expired.duration_ns.unwrap() >= 100_000_000);
}

#[test]
fn a_workflow_pauses_for_approval_then_completes_fails_or_is_rejected() {
    let (rt, sub, runtime) = start();
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(call(&rt, &runtime, "refund_flow", Value::Null).unwrap());
    }
    call(
        &rt,
        &runtime,
        "refund_answer",
        json!({"id": ids[0], "approved": true}),
    )
    .unwrap();
    call(
        &rt,
        &runtime,
        "refund_answer",
        json!({"id": ids[1], "approved": true, "fail": true}),
    )
    .unwrap();
    call(
        &rt,
        &runtime,
        "refund_answer",
        json!({"id": ids[2], "approved": false}),
    )
    .unwrap();
    let again = call(
        &rt,
        &runtime,
        "refund_answer",
        json!({"id": ids[0], "approved": true}),
    )
    .unwrap_err();
    assert_eq!(
        again.error_type, "NotFound",
        "an ended workflow was answered"
    );
    let events = drain(&sub);
    let count = |k: Kind| events.iter().filter(|e| e.kind() == k).count();
    assert_eq!(count(Kind::WorkflowStart), 3);
    assert_eq!(count(Kind::WorkflowPaused), 3);
    assert_eq!(count(Kind::WorkflowApproved), 2);
    assert_eq!(count(Kind::WorkflowResumed), 2);
    assert_eq!(count(Kind::WorkflowRejected), 1);
    assert_eq!(count(Kind::WorkflowComplete), 1);
    assert_eq!(count(Kind::WorkflowError), 1);
    let done = events
        .iter()
        .find(|e| e.kind() == Kind::WorkflowComplete)
        .unwrap();
    match &done.payload {
        Payload::WorkflowComplete(w) => assert_eq!(w.steps, 2),
        p => panic!("{p:?}"),
    }
}
