//! An agent of the reference runtime connects over stdio to an MCP server nobody here wrote —
//! `@modelcontextprotocol/server-everything` from npm (installed under `tests/.node` by
//! `scripts/test`) — discovers its tools, calls `echo`, and every step shows up as an event.

use sightline_event::McpTransport;
use sightline_runtime::McpTarget;
use sightline_tests::everything::{check_events, connect_and_echo, script};
use sightline_tests::scratch_dir;

#[test]
fn an_agent_uses_the_reference_mcp_server_everything() {
    let target = McpTarget::Stdio {
        command: "node".into(),
        args: vec![script().display().to_string(), "stdio".into()],
    };
    let dir = scratch_dir("mcp-everything").unwrap();
    let (tools, out, events) = connect_and_echo(target, &dir, "hello from sightline");
    assert!(tools.len() >= 10, "{tools:?}");
    assert!(tools.iter().any(|t| t == "echo"), "{tools:?}");
    assert!(out.to_string().contains("hello from sightline"), "{out}");
    check_events(&events, &tools, McpTransport::Stdio);
}
