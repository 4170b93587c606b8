//! An agent of the reference runtime connects over stdio to an MCP server nobody here wrote —
//! `@modelcontextprotocol/server-everything` from npm (installed under `tests/.node` by
//! `scripts/test`) — discovers its tools, calls `echo`, and every step shows up as an event.

use serde_json::{json, Value};
use sightline_bus::{Bus, SubscribeOptions};
use sightline_event::{Kind, McpState, Outcome, Payload};
use sightline_runtime::{Agent, Ctx, McpTarget, RpcError, Runtime, RuntimeConfig};
use sightline_tests::{scratch_dir, workspace_root};

struct Client;

impl Agent for Client {
    async fn on_rpc(
        &mut self,
        ctx: &mut Ctx,
        method: &str,
        args: Value,
    ) -> Result<Value, RpcError> {
        match method {
            "connect" => {
                let script = workspace_root()
                    .join("tests/.node/node_modules/@modelcontextprotocol/server-everything/dist/index.js");
                assert!(
                    script.exists(),
                    "server-everything is not installed: run scripts/test, or npm install --prefix tests/.node @modelcontextprotocol/server-everything"
                );
                let id = ctx
                    .add_mcp_server(
                        "everything",
                        McpTarget::Stdio {
                            command: "node".into(),
                            args: vec![script.display().to_string(), "stdio".into()],
                        },
                    )
                    .await?;
                Ok(json!(ctx.mcp_tools(&id)))
            }
            "echo" => ctx.call_mcp_tool("srv_everything", "echo", args).await,
            other => Err(RpcError::new("NotFound", other)),
        }
    }
}

#[test]
fn an_agent_uses_the_reference_mcp_server_everything() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let bus = Bus::new();
    let sub = bus.subscribe(SubscribeOptions::new("test").capacity(1 << 16));
    let runtime = Runtime::new(
        bus,
        RuntimeConfig {
            data_dir: scratch_dir("mcp-everything").unwrap(),
            ..Default::default()
        },
        rt.handle().clone(),
    );
    runtime.register("Client", |_| Client);
    let tools: Vec<String> = serde_json::from_value(
        rt.block_on(runtime.rpc("Client", "c-1", "connect", Value::Null, None))
            .unwrap(),
    )
    .unwrap();
    assert!(tools.len() >= 10, "{tools:?}");
    assert!(tools.iter().any(|t| t == "echo"), "{tools:?}");
    let out = rt
        .block_on(runtime.rpc(
            "Client",
            "c-1",
            "echo",
            json!({"message": "hello from sightline"}),
            None,
        ))
        .unwrap();
    assert!(out.to_string().contains("hello from sightline"), "{out}");

    let mut events = Vec::new();
    while let Some(e) = sub.try_recv() {
        events.push(e);
    }
    let discover = events
        .iter()
        .find_map(|e| match &e.payload {
            Payload::McpClientDiscover(d) => Some(d.clone()),
            _ => None,
        })
        .expect("no mcp:client:discover");
    assert_eq!(discover.count, Some(tools.len() as u32));
    assert_eq!(discover.state, Some(McpState::Ready));
    let call = events.iter().find(|e| e.kind() == Kind::ToolCall).unwrap();
    assert_eq!(call.outcome, Some(Outcome::Ok));
    match &call.payload {
        Payload::ToolCall(t) => {
            assert_eq!(t.tool_name, "echo");
            assert_eq!(t.source.as_deref(), Some("everything"));
        }
        p => panic!("{p:?}"),
    }
    assert!(events.iter().any(|e| e.kind() == Kind::McpRequest));
}
