//! Calls out of an agent: to another agent (trace and caller carried), to the model, to a
//! local tool, and to a human (approvals granted, denied and expired), each evented.

mod common;

use common::drain;
use serde_json::{json, Value};
use sightline_bus::Subscription;
use sightline_event::{Kind, Outcome, Payload, TraceContext};
use sightline_runtime::examples::{Research, Support};
use sightline_runtime::{Agent, Ctx, RpcError, Runtime};

/// Calls out of one input: to another agent (and to itself), to the model, to a local tool.
/// Approvals and workflows are the example agents' (`Support`, `Research`).
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
            other => Err(RpcError::new("NotFound", other)),
        }
    }
}

fn start() -> (tokio::runtime::Runtime, Subscription, Runtime) {
    let (rt, sub, runtime) = common::setup(common::config("calls", |_| {}));
    runtime.register("Desk", |_| Desk);
    runtime.register("Support", |_| Support {
        tools: common::tools(),
    });
    runtime.register("Research", |_| Research {
        tools: common::tools(),
        freeze_after: None,
    });
    (rt, sub, runtime)
}

/// Calls `method` of the one agent of `class` these tests use.
fn call_on(
    rt: &tokio::runtime::Runtime,
    runtime: &Runtime,
    class: &str,
    method: &str,
    args: Value,
) -> Result<Value, RpcError> {
    rt.block_on(runtime.rpc(class, "a-1", method, args, None))
}

fn call(
    rt: &tokio::runtime::Runtime,
    runtime: &Runtime,
    method: &str,
    args: Value,
) -> Result<Value, RpcError> {
    call_on(rt, runtime, "Desk", method, args)
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
    let ask = |expires_ms: u64| {
        let args = json!({"order": "A-7", "expires_ms": expires_ms});
        call_on(&rt, &runtime, "Support", "request_refund", args).unwrap()
    };
    let decide = |id: &Value, approve: bool| {
        let args = json!({"approval_id": id, "approve": approve});
        call_on(&rt, &runtime, "Support", "decide_refund", args)
    };
    let granted = ask(60_000);
    let denied = ask(60_000);
    let expiring = ask(100);
    decide(&granted, true).unwrap();
    decide(&denied, false).unwrap();
    let mut events = Vec::new();
    common::collect_until(&sub, &mut events, "no approval:expired", |ev| {
        common::count(ev, Kind::ApprovalExpired) == 1
    });
    let late = decide(&expiring, true).unwrap_err();
    assert_eq!(late.error_type, "NotPending");
    let count = |k: Kind| common::count(&events, k);
    // Only the granted refund was issued (over MCP).
    let refunds: Vec<_> = events
        .iter()
        .filter_map(|e| match &e.payload {
            Payload::ToolCall(t) => Some((t.tool_name.to_string(), e.outcome)),
            _ => None,
        })
        .collect();
    assert_eq!(refunds, [("issue_refund".to_owned(), Some(Outcome::Ok))]);
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
    let review = |args: Value| call_on(&rt, &runtime, "Research", "review", args);
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(call_on(&rt, &runtime, "Research", "publish", Value::Null).unwrap());
    }
    review(json!({"workflow_id": ids[0], "approve": true})).unwrap();
    let failed = review(json!({"workflow_id": ids[1], "approve": true, "fail": true})).unwrap_err();
    assert_eq!(failed.error_type, "PublishError");
    review(json!({"workflow_id": ids[2], "approve": false})).unwrap();
    let again = review(json!({"workflow_id": ids[0], "approve": true})).unwrap_err();
    assert_eq!(
        again.error_type, "NotFound",
        "an ended workflow was answered"
    );
    let events = drain(&sub);
    let count = |k: Kind| common::count(&events, k);
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
