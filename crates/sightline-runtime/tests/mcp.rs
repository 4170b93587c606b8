//! MCP: an agent connects to our MCP server (rmcp's server side) over stdio and over
//! streamable HTTP, discovers its tools and calls one, every step evented; after a crash the
//! connection is restored from the agent's database and the next call works; a server that
//! wants OAuth shows as `authenticating` with `mcp:client:authorize`.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::drain;
use serde_json::{json, Value};
use sightline_bus::Subscription;
use sightline_event::{Kind, McpState, Outcome, Payload, TraceContext};
use sightline_runtime::examples::McpClient;
use sightline_runtime::{McpTarget, Runtime, RuntimeConfig};

fn stdio() -> McpTarget {
    McpTarget::Stdio {
        command: env!("CARGO_BIN_EXE_sightline-mcp-server").into(),
        args: vec![],
    }
}

/// `lookup_order` of the server, as the `call` of the example `McpClient` asks for it.
fn lookup(order_id: &str) -> Value {
    json!({"tool": "lookup_order", "args": {"order_id": order_id}})
}

fn client(target: McpTarget) -> McpClient {
    McpClient {
        server: "support".into(),
        target,
    }
}

fn start(data_dir: PathBuf) -> (tokio::runtime::Runtime, Subscription, Runtime) {
    start_with(data_dir, stdio())
}

fn start_with(
    data_dir: PathBuf,
    target: McpTarget,
) -> (tokio::runtime::Runtime, Subscription, Runtime) {
    let (rt, sub, runtime) = common::setup(RuntimeConfig {
        data_dir,
        ..Default::default()
    });
    runtime.register("Support", move |_| client(target.clone()));
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
            .block_on(runtime.rpc("Support", "t-1", "call", lookup("88412"), Some(caller)))
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
        .block_on(runtime.rpc("Support", "t-1", "call", lookup("1"), None))
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

#[test]
fn an_agent_uses_an_mcp_server_over_streamable_http_and_reconnects_when_it_comes_back() {
    // The server runs on its own tokio runtime, so that stopping it drops every connection.
    let server_rt = || tokio::runtime::Runtime::new().unwrap();
    let rt = server_rt();
    let server = rt
        .block_on(sightline_runtime::mcp_server::serve_http("127.0.0.1:0"))
        .unwrap();
    let (addr, url) = (server.addr, server.url());
    let (rt2, sub, runtime) = start_with(
        common::data_dir("mcp-http"),
        McpTarget::Http { url: url.clone() },
    );
    let tools = rt2
        .block_on(runtime.rpc("Support", "t-1", "connect", Value::Null, None))
        .unwrap();
    assert_eq!(tools.as_array().map(Vec::len), Some(3), "{tools}");
    let out = rt2
        .block_on(runtime.rpc("Support", "t-1", "call", lookup("7"), None))
        .unwrap();
    assert!(out.to_string().contains(r#"\"order_id\":\"7\""#), "{out}");
    let events = drain(&sub);
    let connect = events
        .iter()
        .find_map(|e| match &e.payload {
            Payload::McpClientConnect(c) => Some(c.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        connect.transport,
        sightline_event::McpTransport::StreamableHttp
    );
    assert_eq!(connect.state, McpState::Connected);
    assert_eq!(connect.url.0, url);

    // The server goes away: the call fails (evented), and once it is back on the same port
    // the next call reconnects on its own.
    drop(server);
    rt.shutdown_timeout(Duration::from_millis(100));
    let down = rt2.block_on(runtime.rpc("Support", "t-1", "call", lookup("8"), None));
    assert!(down.is_err(), "{down:?}");
    let rt = server_rt();
    let server = rt
        .block_on(sightline_runtime::mcp_server::serve_http(&addr.to_string()))
        .unwrap();
    let out = rt2
        .block_on(runtime.rpc("Support", "t-1", "call", lookup("9"), None))
        .unwrap();
    assert!(out.to_string().contains(r#"\"order_id\":\"9\""#), "{out}");
    // The call made while it was down is a failed tool call (whether the request failed or
    // the reconnection did); the one after it (on a new session, which either rmcp's client
    // or a reconnection starts) is fine.
    let calls: Vec<Option<Outcome>> = drain(&sub)
        .iter()
        .filter(|e| e.kind() == Kind::ToolCall)
        .map(|e| e.outcome)
        .collect();
    assert_eq!(calls, [Some(Outcome::Error), Some(Outcome::Ok)]);
    drop(server);
}

#[test]
fn an_mcp_server_that_wants_oauth_shows_as_authenticating() {
    let (rt, sub, runtime) = start_with(common::data_dir("mcp-auth"), stdio());
    let url = rt.block_on(async {
        let app = axum::Router::new().route(
            "/mcp",
            axum::routing::any(|| async {
                (
                    axum::http::StatusCode::UNAUTHORIZED,
                    [(
                        "www-authenticate",
                        "Bearer resource_metadata=\"http://127.0.0.1/.well-known/oauth-protected-resource\"",
                    )],
                )
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}/mcp")
    });
    runtime.register("Locked", move |_| {
        client(McpTarget::Http { url: url.clone() })
    });
    let err = rt
        .block_on(runtime.rpc("Locked", "l-1", "connect", Value::Null, None))
        .unwrap_err();
    assert_eq!(err.error_type, "McpAuthRequired", "{err}");
    let events = drain(&sub);
    assert!(events.iter().any(|e| e.kind() == Kind::McpClientAuthorize));
    let state = events.iter().find_map(|e| match &e.payload {
        Payload::McpClientConnect(c) => Some(c.state),
        _ => None,
    });
    assert_eq!(state, Some(McpState::Authenticating));
}
