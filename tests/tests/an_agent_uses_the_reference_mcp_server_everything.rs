//! An agent of the reference runtime connects over stdio to an MCP server nobody here wrote —
//! `@modelcontextprotocol/server-everything` from npm (installed under `tests/.node` by
//! `scripts/test`) — discovers its tools, calls `echo`, and every step shows up as an event.

use serde_json::{json, Value};
use sightline_bus::{Bus, SubscribeOptions};
use sightline_event::McpTransport;
use sightline_runtime::{McpTarget, Runtime, RuntimeConfig};
use sightline_tests::everything::{check_events, script, EverythingClient};
use sightline_tests::scratch_dir;

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
    let target = McpTarget::Stdio {
        command: "node".into(),
        args: vec![script().display().to_string(), "stdio".into()],
    };
    runtime.register("Client", move |_| EverythingClient {
        target: target.clone(),
    });
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
    check_events(&events, &tools, McpTransport::Stdio);
}
