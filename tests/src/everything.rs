//! `@modelcontextprotocol/server-everything` (from npm, installed under `tests/.node` by
//! `scripts/test`): an MCP server nobody here wrote, and an agent that uses it.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::{json, Value};
use sightline_event::{Event, Kind, McpState, McpTransport, Outcome, Payload};
use sightline_runtime::examples::McpClient;
use sightline_runtime::McpTarget;

use crate::real::{free_port, Running};
use crate::workspace_root;

/// The server's entry point; panics with the install command when it is missing.
pub fn script() -> PathBuf {
    let script = workspace_root()
        .join("tests/.node/node_modules/@modelcontextprotocol/server-everything/dist/index.js");
    assert!(
        script.exists(),
        "server-everything is not installed: run scripts/test, or npm install --prefix tests/.node @modelcontextprotocol/server-everything"
    );
    script
}

/// server-everything serving streamable HTTP on a free port; killed when dropped.
pub struct HttpEverything {
    _server: Running,
    /// Its MCP endpoint.
    pub url: String,
}

impl HttpEverything {
    /// Starts it and waits until it listens.
    pub fn start() -> anyhow::Result<Self> {
        let port = free_port()?;
        let mut child = Command::new("node")
            .arg(script())
            .arg("streamableHttp")
            .env("PORT", port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        let stderr = child
            .stderr
            .take()
            .ok_or_else(|| anyhow::anyhow!("no stderr"))?;
        // Read its stderr on a thread (which keeps draining it), waiting at most 60 s.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let mut said = Vec::new();
        while let Ok(line) =
            rx.recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()))
        {
            if line.contains("listening on port") {
                let addr = format!("127.0.0.1:{port}");
                return Ok(Self {
                    url: format!("http://{addr}/mcp"),
                    _server: Running { child, addr },
                });
            }
            said.push(line);
        }
        let _ = child.kill();
        let _ = child.wait();
        anyhow::bail!("server-everything did not start within 60 s: {said:?}")
    }
}

/// An agent of the reference runtime (the example `McpClient`) connects to server-everything
/// at `target`, discovers its tools and calls `echo` with `message`; returns the tools, the
/// answer and every event.
pub fn connect_and_echo(
    target: McpTarget,
    data_dir: &std::path::Path,
    message: &str,
) -> (Vec<String>, Value, Vec<Event>) {
    let rt = tokio::runtime::Runtime::new().expect("tokio");
    let bus = sightline_bus::Bus::new();
    let sub = bus.subscribe(sightline_bus::SubscribeOptions::new("test").capacity(1 << 16));
    let runtime = sightline_runtime::Runtime::new(
        bus,
        sightline_runtime::RuntimeConfig {
            data_dir: data_dir.to_path_buf(),
            ..Default::default()
        },
        rt.handle().clone(),
    );
    runtime.register("Client", move |_| McpClient {
        server: "everything".into(),
        target: target.clone(),
    });
    let tools: Vec<String> = serde_json::from_value(
        rt.block_on(runtime.rpc("Client", "c-1", "connect", Value::Null, None))
            .expect("connect"),
    )
    .expect("a list of tools");
    let out = rt
        .block_on(runtime.rpc(
            "Client",
            "c-1",
            "call",
            json!({ "tool": "echo", "args": { "message": message } }),
            None,
        ))
        .expect("echo");
    let events = std::iter::from_fn(|| sub.try_recv()).collect();
    (tools, out, events)
}

/// Checks what a connect, a discovery of `tools` and one `echo` call emitted.
pub fn check_events(events: &[Event], tools: &[String], transport: McpTransport) {
    let connect = events
        .iter()
        .find_map(|e| match &e.payload {
            Payload::McpClientConnect(c) => Some(c.clone()),
            _ => None,
        })
        .expect("no mcp:client:connect");
    assert_eq!(connect.state, McpState::Connected);
    assert_eq!(connect.transport, transport);
    let discover = events
        .iter()
        .find_map(|e| match &e.payload {
            Payload::McpClientDiscover(d) => Some(d.clone()),
            _ => None,
        })
        .expect("no mcp:client:discover");
    assert_eq!(discover.count, Some(tools.len() as u32));
    assert_eq!(discover.state, Some(McpState::Ready));
    let call = events
        .iter()
        .find(|e| e.kind() == Kind::ToolCall)
        .expect("no tool:call");
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
