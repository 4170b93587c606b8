//! The plain types the agent layer shares with the feature modules built on it.
//!
//! `Ctx` (in `agent.rs`) holds a little state for several features — the MCP connections,
//! the chat turn under way, a way to call other agents — and the `Agent` trait hands the agent
//! an email or a recovered fiber. Those types live here, below `agent.rs`, and the behaviour
//! that uses them lives in the feature modules (`mcp.rs`, `channels.rs`, `fiber.rs`,
//! `calls.rs`) as `impl Ctx` blocks: every arrow points down, feature -> agent -> this module,
//! and nothing points back up.

use std::future::Future;
use std::pin::Pin;
use std::time::Instant;

use rmcp::service::RunningService;
use rmcp::RoleClient;
use serde_json::Value;
use sightline_event::{Name, TraceContext};

use crate::error::RpcError;

// ===== MCP =====

/// How to reach an MCP server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum McpTarget {
    /// A child process speaking MCP on stdio.
    Stdio {
        /// The program.
        command: String,
        /// Its arguments.
        args: Vec<String>,
    },
    /// A server speaking streamable HTTP at this URL (e.g. `http://127.0.0.1:3001/mcp`).
    Http {
        /// The endpoint.
        url: String,
    },
}

/// A live connection to an MCP server, kept in `Ctx` by server id.
pub(crate) struct McpConn {
    pub(crate) name: String,
    pub(crate) target: McpTarget,
    pub(crate) client: Option<RunningService<RoleClient, ()>>,
    pub(crate) tools: Vec<String>,
}

// ===== channels =====

/// An email, as an agent receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    /// Sender address.
    pub from: String,
    /// Recipient address (the agent's).
    pub to: String,
    /// Subject line.
    pub subject: String,
    /// Body text.
    pub body: String,
}

/// A chat turn under way: what closing it needs (so one that never returns, evicted or
/// panicked, is still closed with `chat:turn:finish` and `message:error`).
pub(crate) struct OpenTurn {
    pub(crate) request_id: Name,
    pub(crate) span: TraceContext,
    pub(crate) turn: TraceContext,
    pub(crate) started: Instant,
}

// ===== fibers =====

/// A running fiber: what `stash`, `complete_fiber` and `fail_fiber` act on.
#[derive(Debug)]
pub struct Fiber {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) step: u32,
    pub(crate) started: Instant,
    pub(crate) span: TraceContext,
}

/// An interrupted fiber handed back to its agent, with its last checkpoint.
#[derive(Debug)]
pub struct Recovered {
    /// The fiber, to go on with: `stash` and `complete_fiber` continue it.
    pub fiber: Fiber,
    /// The last checkpoint, if it wrote one.
    pub stash: Option<Value>,
}

// ===== calls to other agents =====

/// A boxed future of another agent's answer.
pub(crate) type CallFuture<'a> = Pin<Box<dyn Future<Output = Result<Value, RpcError>> + Send + 'a>>;

/// What `Ctx` calls other agents through: the host (`Runtime`) implements it. A trait, so
/// that the agent layer needs nothing of the host above it.
pub(crate) trait Caller: Send + Sync {
    /// Calls `method` on `class/name`, continuing `trace`, naming `caller`.
    fn call<'a>(
        &'a self,
        class: &'a str,
        name: &'a str,
        method: &'a str,
        args: Value,
        trace: Option<TraceContext>,
        caller: String,
    ) -> CallFuture<'a>;
}
