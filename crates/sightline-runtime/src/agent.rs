//! What an agent is ([`Agent`]) and what it can do while it handles an input ([`Ctx`]).

use std::future::Future;

use serde_json::Value;
use sightline_bus::Emitter;
use sightline_event::{AgentRef, Kind, Name, Sensitive, StateRejected, StateUpdate, TraceContext};

use crate::store::{Store, StoreError};

/// Why an RPC failed, as its caller sees it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error_type}: {message}")]
pub struct RpcError {
    /// A short, bounded class (`NotFound`, `Overloaded`, `TypeError`): a metric label.
    pub error_type: String,
    /// What happened (may carry user data: sensitive in events).
    pub message: String,
}

impl RpcError {
    /// An error of class `error_type`.
    pub fn new(error_type: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            error_type: error_type.into(),
            message: message.into(),
        }
    }
}

/// An agent class. One instance per stable name; the runtime feeds it one input at a time,
/// so it needs no locking.
pub trait Agent: Send + 'static {
    /// Handles one RPC: `method` with JSON `args`, returning a JSON result.
    fn on_rpc(
        &mut self,
        ctx: &mut Ctx,
        method: &str,
        args: Value,
    ) -> impl Future<Output = Result<Value, RpcError>> + Send;

    /// Runs when the instance starts or wakes, before its first input.
    fn on_start(&mut self, _ctx: &mut Ctx) -> impl Future<Output = ()> + Send {
        async {}
    }

    /// A client opened a connection; an error refuses it. The default accepts.
    fn on_connect(
        &mut self,
        _ctx: &mut Ctx,
        _connection: &str,
    ) -> impl Future<Output = Result<(), RpcError>> + Send {
        async { Ok(()) }
    }

    /// A chat message arrived on `connection`: one agent turn (model and tool calls inside
    /// it nest in the turn's span), answering with the reply. The default does not chat.
    fn on_message(
        &mut self,
        _ctx: &mut Ctx,
        _connection: &str,
        _text: String,
    ) -> impl Future<Output = Result<String, RpcError>> + Send {
        async { Err(RpcError::new(NO_HANDLER, "this agent does not chat")) }
    }

    /// A client connection closed.
    fn on_disconnect(
        &mut self,
        _ctx: &mut Ctx,
        _connection: &str,
    ) -> impl Future<Output = ()> + Send {
        async {}
    }

    /// An email arrived. The default refuses it.
    fn on_email(
        &mut self,
        _ctx: &mut Ctx,
        _email: crate::channels::Email,
    ) -> impl Future<Output = Result<(), RpcError>> + Send {
        async { Err(RpcError::new(NO_HANDLER, "this agent takes no email")) }
    }

    /// Takes over a fiber interrupted by a crash, with its last checkpoint: typically goes on
    /// from there (`ctx.stash`, `ctx.complete_fiber`). An error is retried later with backoff.
    /// The default has no handler: the fiber is skipped (`fiber:recovery:skipped`).
    fn on_fiber_recovered(
        &mut self,
        _ctx: &mut Ctx,
        _fiber: crate::fiber::Recovered,
    ) -> impl Future<Output = Result<(), RpcError>> + Send {
        async {
            Err(RpcError::new(
                NO_HANDLER,
                "this agent does not recover fibers",
            ))
        }
    }
}

/// The error type of the default [`Agent::on_fiber_recovered`].
pub const NO_HANDLER: &str = "NoHandler";

/// Why a state update was refused.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The state must be a JSON object.
    #[error("state must be a JSON object, not {0}")]
    NotAnObject(&'static str),
    /// Over `state_max_bytes`.
    #[error("state is {size} bytes, over the limit of {limit}")]
    TooLarge {
        /// Its serialized size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// It could not be stored.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// An agent's view of itself while it handles an input: its state, its storage, its events.
pub struct Ctx {
    pub(crate) agent: AgentRef,
    pub(crate) emitter: Emitter,
    pub(crate) store: Store,
    pub(crate) state: Value,
    pub(crate) version: u64,
    pub(crate) state_max_bytes: u64,
    /// When the next schedule is due (Unix ms), as last read from the store.
    pub(crate) next_due: Option<u64>,
    /// Sequence numbers reserved up to (stored in the agent's database).
    pub(crate) reserved: u64,
    /// MCP connections, by server id.
    pub(crate) mcp: std::collections::HashMap<String, crate::mcp::McpConn>,
    /// The runtime, for calls to other agents.
    pub(crate) runtime: Option<crate::Runtime>,
    /// The model client.
    pub(crate) model: Option<std::sync::Arc<dyn crate::calls::ModelClient>>,
    /// After the agent's code panicked in a timer pass (a schedule or a fiber recovery), its
    /// timer waits until this Unix ms time, backing off, so a callback that always panics
    /// does not restart the agent in a loop (stored as meta `timer_hold_until_ms`).
    pub(crate) timer_hold_until: u64,
    /// The chat turn under way, so one that never returns (evicted, panicked) is still
    /// closed with `chat:turn:finish` and `message:error`.
    pub(crate) open_turn: Option<crate::channels::OpenTurn>,
}

impl std::fmt::Debug for Ctx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ctx")
            .field("agent", &self.agent)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl Ctx {
    /// Which agent this is.
    pub fn agent(&self) -> &AgentRef {
        &self.agent
    }

    /// The current state (a JSON object).
    pub fn state(&self) -> &Value {
        &self.state
    }

    /// The current state version (0 before the first update).
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The agent's emitter, carrying the current input's trace context.
    pub fn emitter(&self) -> &Emitter {
        &self.emitter
    }

    /// The current input's trace context.
    pub fn trace(&self) -> Option<TraceContext> {
        self.emitter.trace()
    }

    /// Replaces the state: checks it, persists it (one SQLite transaction) and emits
    /// `state:update` with the new version, the changed top-level paths, the size and the
    /// JSON-Patch from the previous state. A refused update emits `state:rejected` and
    /// leaves the state as it was.
    pub fn set_state(&mut self, new: Value) -> Result<u64, StateError> {
        let reject = |ctx: &Ctx, e: StateError, size: Option<u64>| {
            let limit = matches!(e, StateError::TooLarge { .. }).then_some(ctx.state_max_bytes);
            ctx.emitter.emit(|| StateRejected {
                version: ctx.version,
                reason: Sensitive(e.to_string()),
                size_bytes: size,
                limit_bytes: limit,
            });
            Err(e)
        };
        if !new.is_object() {
            let e = StateError::NotAnObject(json_type(&new));
            return reject(self, e, None);
        }
        let json = new.to_string();
        let size = json.len() as u64;
        if size > self.state_max_bytes {
            let e = StateError::TooLarge {
                size,
                limit: self.state_max_bytes,
            };
            return reject(self, e, Some(size));
        }
        let version = self.version + 1;
        self.store.save_state(version, &json)?;
        if self.emitter.enabled(Kind::StateUpdate) {
            let patch = json_patch::diff(&self.state, &new);
            let mut changed: Vec<Name> = Vec::new();
            for op in patch.iter() {
                let path = op_path(op);
                let top = path
                    .split('/')
                    .nth(1)
                    .map(|seg| format!("/{seg}"))
                    .unwrap_or_else(|| "/".to_owned());
                if !changed.iter().any(|c| c.as_str() == top) {
                    changed.push(top.into());
                }
            }
            let diff = serde_json::to_value(&patch).unwrap_or(Value::Null);
            self.emitter.emit(|| StateUpdate {
                version,
                changed_paths: changed,
                size_bytes: size,
                diff: Some(Sensitive(diff)),
                source: Some(Name::new_static("server")),
            });
        }
        self.state = new;
        self.version = version;
        self.keep_reserved();
        Ok(version)
    }
}

fn op_path(op: &json_patch::PatchOperation) -> String {
    use json_patch::PatchOperation::*;
    match op {
        Add(o) => o.path.to_string(),
        Remove(o) => o.path.to_string(),
        Replace(o) => o.path.to_string(),
        Move(o) => o.path.to_string(),
        Copy(o) => o.path.to_string(),
        Test(o) => o.path.to_string(),
    }
}
