//! An agent of the reference runtime connects over streamable HTTP to
//! `@modelcontextprotocol/server-everything` (npm; `node dist/index.js streamableHttp` on a
//! free loopback port), discovers its tools, calls `echo`, and every step shows up as an
//! event with the `streamable_http` transport.

use sightline_event::McpTransport;
use sightline_runtime::McpTarget;
use sightline_tests::everything::{check_events, connect_and_echo, HttpEverything};
use sightline_tests::scratch_dir;

#[test]
fn an_agent_uses_server_everything_over_streamable_http() {
    let server = HttpEverything::start().unwrap();
    let target = McpTarget::Http {
        url: server.url.clone(),
    };
    let dir = scratch_dir("mcp-everything-http").unwrap();
    let (tools, out, events) = connect_and_echo(target, &dir, "hello over http");
    assert!(tools.len() >= 10, "{tools:?}");
    assert!(out.to_string().contains("hello over http"), "{out}");
    check_events(&events, &tools, McpTransport::StreamableHttp);
}
