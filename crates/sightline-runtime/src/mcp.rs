//! MCP client connections (rmcp, over stdio to a child process or streamable HTTP): an agent
//! adds servers, which are persisted in its database
//! and connected again when it starts or wakes; each connection goes through its states
//! (connecting, connected, discovering, ready, or failed) with events, and each tool call is
//! an `mcp:request` and a `tool:call` with its duration. A call on a connection that broke
//! reconnects first, with backoff.

use std::process::Stdio;
use std::time::{Duration, Instant};

use rmcp::model::CallToolRequestParams;
use rmcp::service::RunningService;
use rmcp::transport::{ConfigureCommandExt, StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{RoleClient, ServiceExt};
use serde_json::Value;
use sightline_event::{
    McpClientAuthorize, McpClientClose, McpClientConnect, McpClientDiscover, McpClientPreconnect,
    McpRequest, McpState, McpTransport, Name, Outcome, Sensitive, ToolCall, TraceContext,
};

use crate::agent::Ctx;
use crate::ctx_state::{McpConn, McpTarget};
use crate::error::RpcError;
use crate::store::McpServerRow;

impl McpTarget {
    fn describe(&self) -> String {
        match self {
            McpTarget::Stdio { command, args } => std::iter::once(command.as_str())
                .chain(args.iter().map(String::as_str))
                .collect::<Vec<_>>()
                .join(" "),
            McpTarget::Http { url } => url.clone(),
        }
    }

    fn transport(&self) -> McpTransport {
        match self {
            McpTarget::Stdio { .. } => McpTransport::Stdio,
            McpTarget::Http { .. } => McpTransport::StreamableHttp,
        }
    }

    /// The row that persists it.
    fn to_row(&self, id: &str, name: &str) -> McpServerRow {
        let (command, args, transport) = match self {
            McpTarget::Stdio { command, args } => (
                command.clone(),
                serde_json::to_string(args).unwrap_or_else(|_| "[]".into()),
                "stdio",
            ),
            McpTarget::Http { url } => (url.clone(), "[]".into(), "streamable_http"),
        };
        McpServerRow {
            id: id.to_owned(),
            name: name.to_owned(),
            command,
            args,
            transport: transport.into(),
        }
    }

    /// Back from its row.
    fn from_row(r: &McpServerRow) -> Self {
        match r.transport.as_str() {
            "streamable_http" => McpTarget::Http {
                url: r.command.clone(),
            },
            _ => McpTarget::Stdio {
                command: r.command.clone(),
                args: serde_json::from_str(&r.args).unwrap_or_default(),
            },
        }
    }
}

/// Whether a failed connect was the server asking for authorization (HTTP 401/403). rmcp's
/// worker transport boxes the HTTP client's error into a message, so besides the typed
/// errors the texts of those two variants are recognised.
fn auth_required(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        let text = err.to_string();
        if text.contains("Auth required")
            || text.contains("Insufficient scope")
            || err
                .downcast_ref::<rmcp::transport::streamable_http_client::AuthRequiredError>()
                .is_some()
            || err
                .downcast_ref::<rmcp::transport::streamable_http_client::InsufficientScopeError>()
                .is_some()
        {
            return true;
        }
        cur = err.source();
    }
    false
}

/// The longest a connection, a discovery or a call may take.
const MCP_TIMEOUT: Duration = Duration::from_secs(10);

/// Connection attempts per call on a broken connection, and the backoff between them.
const RECONNECT_ATTEMPTS: u32 = 3;
const RECONNECT_BACKOFF_MS: u64 = 200;

impl Ctx {
    /// Adds an MCP server (persisted: it is connected again after a restart) and connects
    /// to it. Returns its id in this agent.
    pub async fn add_mcp_server(
        &mut self,
        name: &str,
        target: McpTarget,
    ) -> Result<String, RpcError> {
        let id = format!("srv_{name}");
        self.store
            .put_mcp_server(&target.to_row(&id, name))
            .map_err(|e| RpcError::new("StoreError", e.to_string()))?;
        self.mcp.insert(
            id.clone(),
            McpConn {
                name: name.to_owned(),
                target,
                client: None,
                tools: Vec::new(),
            },
        );
        self.connect_mcp(&id).await?;
        Ok(id)
    }

    /// The tools a connected server offers.
    pub fn mcp_tools(&self, server_id: &str) -> Vec<String> {
        self.mcp
            .get(server_id)
            .map(|c| c.tools.clone())
            .unwrap_or_default()
    }

    /// Connects (again) to a known server and lists its tools, with events for each state.
    pub(crate) async fn connect_mcp(&mut self, id: &str) -> Result<(), RpcError> {
        let Some(conn) = self.mcp.get_mut(id) else {
            return Err(RpcError::new("NotFound", format!("no MCP server {id}")));
        };
        if let Some(old) = conn.client.take() {
            let _ = old.cancel().await;
        }
        let (name, target) = (conn.name.clone(), conn.target.clone());
        let server_id: Name = id.into();
        let server_name: Name = name.as_str().into();
        self.emitter.emit(|| McpClientPreconnect {
            server_id: server_id.clone(),
        });
        let started = Instant::now();
        // Err((message, the server wants authorization)).
        let connected: Result<RunningService<RoleClient, ()>, (String, bool)> = async {
            let init = match &target {
                McpTarget::Stdio { command, args } => {
                    let (transport, _stderr) = TokioChildProcess::builder(
                        tokio::process::Command::new(command).configure(|c| {
                            c.args(args);
                        }),
                    )
                    .stderr(Stdio::null())
                    .spawn()
                    .map_err(|e| (e.to_string(), false))?;
                    tokio::time::timeout(MCP_TIMEOUT, ().serve(transport)).await
                }
                McpTarget::Http { url } => {
                    crate::tls::install_provider();
                    let transport = StreamableHttpClientTransport::from_uri(url.as_str());
                    tokio::time::timeout(MCP_TIMEOUT, ().serve(transport)).await
                }
            };
            match init {
                Ok(Ok(client)) => Ok(client),
                Ok(Err(e)) => Err((e.to_string(), auth_required(&e))),
                Err(_) => Err((
                    format!("no answer to initialize within {MCP_TIMEOUT:?}"),
                    false,
                )),
            }
        }
        .await;
        let url = Sensitive(target.describe());
        let took = started.elapsed().as_nanos() as u64;
        if let Err((_, true)) = &connected {
            // The server wants an OAuth authorization first: the host has to get it.
            self.emitter.emit(|| McpClientAuthorize {
                server_id: server_id.clone(),
                auth_url: url.clone(),
            });
        }
        let (outcome, state, error) = match &connected {
            Ok(_) => (Outcome::Ok, McpState::Connected, None),
            Err((e, true)) => (
                Outcome::Error,
                McpState::Authenticating,
                Some(Sensitive(e.clone())),
            ),
            Err((e, false)) => (Outcome::Error, McpState::Failed, Some(Sensitive(e.clone()))),
        };
        self.emitter.emit_with(|m| {
            m.outcome = Some(outcome);
            m.duration_ns = Some(took);
            McpClientConnect {
                server_id: server_id.clone(),
                server_name: server_name.clone(),
                url,
                transport: target.transport(),
                state,
                error,
            }
        });
        let client = connected.map_err(|(e, auth)| {
            RpcError::new(
                if auth {
                    "McpAuthRequired"
                } else {
                    "McpConnectFailed"
                },
                e,
            )
        })?;
        let started = Instant::now();
        let listed = match tokio::time::timeout(MCP_TIMEOUT, client.list_all_tools()).await {
            Ok(r) => r.map_err(|e| e.to_string()),
            Err(_) => Err(format!("no tool list within {MCP_TIMEOUT:?}")),
        };
        let tools = match listed {
            Ok(tools) => {
                let names: Vec<String> = tools.iter().map(|t| t.name.to_string()).collect();
                self.emitter.emit_with(|m| {
                    m.outcome = Some(Outcome::Ok);
                    m.duration_ns = Some(started.elapsed().as_nanos() as u64);
                    McpClientDiscover {
                        server_id: server_id.clone(),
                        server_name: server_name.clone(),
                        capability: Some(Name::new_static("tools")),
                        count: Some(names.len() as u32),
                        state: Some(McpState::Ready),
                        error: None,
                    }
                });
                names
            }
            Err(e) => {
                self.emitter.emit_with(|m| {
                    m.outcome = Some(Outcome::Error);
                    m.duration_ns = Some(started.elapsed().as_nanos() as u64);
                    McpClientDiscover {
                        server_id: server_id.clone(),
                        server_name: server_name.clone(),
                        capability: Some(Name::new_static("tools")),
                        count: None,
                        state: Some(McpState::Failed),
                        error: Some(Sensitive(e.clone())),
                    }
                });
                Vec::new()
            }
        };
        if let Some(conn) = self.mcp.get_mut(id) {
            conn.client = Some(client);
            conn.tools = tools;
        }
        Ok(())
    }

    /// Calls `tool` on server `server_id` with JSON object `args`; emits `mcp:request` and
    /// `tool:call` with duration and outcome. A broken connection is reconnected first.
    pub async fn call_mcp_tool(
        &mut self,
        server_id: &str,
        tool: &str,
        args: Value,
    ) -> Result<Value, RpcError> {
        let healthy = self
            .mcp
            .get(server_id)
            .and_then(|c| c.client.as_ref())
            .is_some_and(|c| !c.is_closed());
        if !healthy {
            let mut last = RpcError::new("NotFound", format!("no MCP server {server_id}"));
            let mut ok = false;
            for attempt in 0..RECONNECT_ATTEMPTS {
                if !self.mcp.contains_key(server_id) {
                    break;
                }
                if attempt > 0 {
                    let ceiling = RECONNECT_BACKOFF_MS << attempt;
                    tokio::time::sleep(Duration::from_millis(fastrand::u64(0..=ceiling))).await;
                }
                match self.connect_mcp(server_id).await {
                    Ok(()) => {
                        ok = true;
                        break;
                    }
                    Err(e) => last = e,
                }
            }
            if !ok {
                // The call never reached the server: still a failed tool call, counted as one.
                let name: Name = self
                    .mcp
                    .get(server_id)
                    .map_or(server_id, |c| c.name.as_str())
                    .into();
                let span = self.trace().unwrap_or_else(TraceContext::new_root).child();
                let call_id = format!("call_{:012x}", fastrand::u64(..) & 0xffff_ffff_ffff);
                self.emitter.emit_with(|m| {
                    m.outcome = Some(Outcome::Error);
                    m.duration_ns = Some(0);
                    m.trace = Some(span);
                    ToolCall {
                        tool_call_id: call_id.as_str().into(),
                        tool_name: tool.into(),
                        source: Some(name),
                        arguments: Some(Sensitive(args.clone())),
                        error: Some(Sensitive(last.to_string())),
                    }
                });
                return Err(last);
            }
        }
        let Some(conn) = self.mcp.get(server_id) else {
            return Err(RpcError::new(
                "NotFound",
                format!("no MCP server {server_id}"),
            ));
        };
        let Some(client) = conn.client.as_ref() else {
            return Err(RpcError::new("McpNotConnected", server_id.to_owned()));
        };
        let server_name: Name = conn.name.as_str().into();
        let parent = self.trace().unwrap_or_else(TraceContext::new_root);
        let tool_span = parent.child();
        let request_span = tool_span.child();
        let arguments = match &args {
            Value::Object(m) => m.clone(),
            Value::Null => serde_json::Map::new(),
            other => {
                let mut m = serde_json::Map::new();
                m.insert("value".into(), other.clone());
                m
            }
        };
        let started = Instant::now();
        let result = match tokio::time::timeout(
            MCP_TIMEOUT,
            client.call_tool(CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments)),
        )
        .await
        {
            Ok(r) => r.map_err(|e| e.to_string()),
            Err(_) => Err(format!("{tool} did not answer within {MCP_TIMEOUT:?}")),
        };
        let took = started.elapsed().as_nanos() as u64;
        let (outcome, error, value) = match result {
            Ok(r) if r.is_error == Some(true) => (
                Outcome::Error,
                Some(format!("{tool} reported an error")),
                serde_json::to_value(&r).ok(),
            ),
            Ok(r) => (Outcome::Ok, None, serde_json::to_value(&r).ok()),
            Err(e) => (Outcome::Error, Some(e), None),
        };
        let call_id = format!("call_{:012x}", fastrand::u64(..) & 0xffff_ffff_ffff);
        self.emitter.emit_with(|m| {
            m.outcome = Some(outcome);
            m.duration_ns = Some(took);
            m.trace = Some(request_span);
            McpRequest {
                server_id: server_id.into(),
                server_name: server_name.clone(),
                method: Name::new_static("tools/call"),
                tool_name: Some(tool.into()),
                error: error.clone().map(Sensitive),
            }
        });
        self.emitter.emit_with(|m| {
            m.outcome = Some(outcome);
            m.duration_ns = Some(took);
            m.trace = Some(tool_span);
            ToolCall {
                tool_call_id: call_id.as_str().into(),
                tool_name: tool.into(),
                source: Some(server_name.clone()),
                arguments: Some(Sensitive(args.clone())),
                error: error.clone().map(Sensitive),
            }
        });
        match (value, error) {
            (Some(v), None) => Ok(v),
            (_, Some(e)) => Err(RpcError::new("ToolError", e)),
            (None, None) => Ok(Value::Null),
        }
    }

    /// Reconnects every persisted server (at start and wake).
    pub(crate) async fn restore_mcp(&mut self) {
        let Ok(rows) = self.store.mcp_servers() else {
            return;
        };
        for r in rows {
            self.mcp.insert(
                r.id.clone(),
                McpConn {
                    name: r.name.clone(),
                    target: McpTarget::from_row(&r),
                    client: None,
                    tools: Vec::new(),
                },
            );
            let _ = self.connect_mcp(&r.id).await;
        }
    }

    /// Closes every connection (at hibernation), with `mcp:client:close`.
    pub(crate) async fn close_mcp(&mut self) {
        let ids: Vec<String> = self.mcp.keys().cloned().collect();
        for id in ids {
            let Some(conn) = self.mcp.get_mut(&id) else {
                continue;
            };
            if let Some(client) = conn.client.take() {
                let name = conn.name.clone();
                let url = conn.target.describe();
                let _ = client.cancel().await;
                self.emitter.emit(|| McpClientClose {
                    server_id: id.as_str().into(),
                    server_name: name.as_str().into(),
                    url: Some(Sensitive(url)),
                    state: McpState::Closed,
                    phase: Some(Name::new_static("hibernate")),
                    error: None,
                });
            }
        }
    }
}
