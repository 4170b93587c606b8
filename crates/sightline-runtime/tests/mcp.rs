//! MCP: an agent connects to our stdio MCP server (rmcp's server side), discovers its tools
//! and calls one, every step evented; after a crash the connection is restored from the
//! agent's database and the next call works.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::drain;
use serde_json::{json, Value};
use sightline_bus::Subscription;
use sightline_event::{Kind, McpState, Outcome, Payload, TraceContext};
use sightline_runtime::{Agent, Ctx, McpTarget, RpcError, Runtime, RuntimeConfig};

struct Support;

impl Agent for Support {
    async fn on_rpc(
        &mut self,
        ctx: &mut Ctx,
        method: &str,
        args: Value,
    ) -> Result<Value, RpcError> {
        match method {
            "connect" => {
                let id = ctx
                    .add_mcp_server(
                        "support",
                        McpTarget::Stdio {
                            command: env!("CARGO_BIN_EXE_sightline-mcp-server").into(),
                            args: vec![],
                        },
                    )
                    .await?;
                Ok(json!(ctx.mcp_tools(&id)))
            }
            "lookup" => ctx.call_mcp_tool("srv_support", "lookup_order", args).await,
            other => Err(RpcError::new("NotFound", other)),
        }
    }
}

fn start(data_dir: PathBuf) -> (tokio::runtime::Runtime, Subscription, Runtime) {
    let (rt, sub, runtime) = common::setup(RuntimeConfig {
        data_dir,
        ..Default::default()
    });
    runtime.register("Support", |_| Support);
    (rt, sub, runtime)
}

#[test]
fn an_agent_connects_discovers_and_calls_an_mcp_tool_and_reconnects_after_a_crash() {
    let data = common::data_dir("mcp");
    {
        let (rt, sub, runtime) = start(data.clone());
        let tools = rt
            .block_on(runtime.rpc("Support", "t-1", "connect", Value::Null, None))
            .unwrap();
        let mut tools: Vec<String> = serde_json::from_value(tools).unwrap();
        tools.sort();
        assert_eq!(tools, vec!["issue_refund", "lookup_order", "search_kb"]);
        let caller = TraceContext::new_root();
        let out = rt
            .block_on(runtime.rpc(
                "Support",
                "t-1",
                "lookup",
                json!({"order_id": "88412"}),
                Some(caller),
            ))
            .unwrap();
        assert!(out.to_string().contains("88412"), "{out}");
        let events = drain(&sub);
        let kinds: Vec<Kind> = events.iter().map(|e| e.kind()).collect();
        for k in [
            Kind::McpClientPreconnect,
            Kind::McpClientConnect,
            Kind::McpClientDiscover,
            Kind::McpRequest,
            Kind::ToolCall,
        ] {
            assert!(kinds.contains(&k), "no {} in {kinds:?}", k.name());
        }
        let connect = events
            .iter()
            .find(|e| e.kind() == Kind::McpClientConnect)
            .unwrap();
        match &connect.payload {
            Payload::McpClientConnect(c) => assert_eq!(c.state, McpState::Connected),
            p => panic!("{p:?}"),
        }
        let discover = events
            .iter()
            .find(|e| e.kind() == Kind::McpClientDiscover)
            .unwrap();
        match &discover.payload {
            Payload::McpClientDiscover(d) => {
                assert_eq!((d.count, d.state), (Some(3), Some(McpState::Ready)));
            }
            p => panic!("{p:?}"),
        }
        // The tool call is in the caller's trace, the MCP request under it.
        let tool = events.iter().find(|e| e.kind() == Kind::ToolCall).unwrap();
        let request = events
            .iter()
            .find(|e| e.kind() == Kind::McpRequest)
            .unwrap();
        assert_eq!(tool.trace_id, Some(caller.trace_id));
        assert_eq!(request.parent_span_id, tool.span_id);
        assert_eq!(tool.outcome, Some(Outcome::Ok));
        assert!(tool.duration_ns.is_some());
        // The process dies.
        drop(runtime);
        rt.shutdown_timeout(Duration::from_millis(100));
    }
    let (rt, sub, runtime) = start(data);
    let out = rt
        .block_on(runtime.rpc("Support", "t-1", "lookup", json!({"order_id": "1"}), None))
        .unwrap();
    assert!(out.to_string().contains("order_id"), "{out}");
    let kinds: Vec<Kind> = drain(&sub).iter().map(|e| e.kind()).collect();
    let connect = kinds.iter().position(|k| *k == Kind::McpClientConnect);
    let call = kinds.iter().position(|k| *k == Kind::McpRequest);
    assert!(
        matches!((connect, call), (Some(c), Some(r)) if c < r),
        "the connection was not restored before the call: {kinds:?}"
    );
}
