//! An agent of the reference runtime connects over streamable HTTP to
//! `@modelcontextprotocol/server-everything` (npm; `node dist/index.js streamableHttp` on a
//! free loopback port), discovers its tools, calls `echo`, and every step shows up as an
//! event with the `streamable_http` transport.

use serde_json::{json, Value};
use sightline_bus::{Bus, SubscribeOptions};
use sightline_event::McpTransport;
use sightline_runtime::{McpTarget, Runtime, RuntimeConfig};
use sightline_tests::everything::{check_events, EverythingClient, HttpEverything};
use sightline_tests::scratch_dir;

#[test]
fn an_agent_uses_server_everything_over_streamable_http() {
    let server = HttpEverything::start().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let bus = Bus::new();
    let sub = bus.subscribe(SubscribeOptions::new("test").capacity(1 << 16));
    let runtime = Runtime::new(
        bus,
        RuntimeConfig {
            data_dir: scratch_dir("mcp-everything-http").unwrap(),
            ..Default::default()
        },
        rt.handle().clone(),
    );
    let target = McpTarget::Http {
        url: server.url.clone(),
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
    let out = rt
        .block_on(runtime.rpc(
            "Client",
            "c-1",
            "echo",
            json!({"message": "hello over http"}),
            None,
        ))
        .unwrap();
    assert!(out.to_string().contains("hello over http"), "{out}");
    let mut events = Vec::new();
    while let Some(e) = sub.try_recv() {
        events.push(e);
    }
    check_events(&events, &tools, McpTransport::StreamableHttp);
}
