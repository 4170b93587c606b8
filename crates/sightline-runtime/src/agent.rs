//! What an agent is ([`Agent`]) and what it can do while it handles an input ([`Ctx`]): the
//! bottom layer of the runtime.
//!
//! Here are only the trait, `Ctx` with its core (identity, state, emitter, the sequence
//! reservation) and `set_state`. Each feature builds on it from its own module with an
//! `impl Ctx` block — schedules (`schedule.rs`), fibers (`fiber.rs`), MCP (`mcp.rs`), calls
//! to agents, models, tools and humans (`calls.rs`), connections and email (`channels.rs`),
//! workflows (`workflow.rs`) — and the state `Ctx` keeps for them is of plain types from
//! `ctx_state.rs`, below this module. The host and the instance loop (`host.rs`,
//! `instance.rs`) sit on top of all of them.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use serde_json::Value;
use sightline_bus::Emitter;
use sightline_event::{
    AgentRef, Kind, Name, Sensitive, StatePatch, StateRejected, StateUpdate, TraceContext,
};

use crate::ctx_state::{Caller, Email, McpConn, OpenTurn, Recovered};
use crate::error::{RpcError, NO_HANDLER};
use crate::model::ModelClient;
use crate::store::{Store, StoreError};

/// Sequence numbers reserved ahead in the agent's database: after a crash the agent resumes
/// past the reservation, so no number is ever used twice (a crash leaves a gap, the sign of
/// possibly lost events).
pub(crate) const SEQ_BLOCK: u64 = 4096;

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
        _email: Email,
    ) -> impl Future<Output = Result<(), RpcError>> + Send {
        async { Err(RpcError::new(NO_HANDLER, "this agent takes no email")) }
    }

    /// Takes over a fiber interrupted by a crash, with its last checkpoint: typically goes on
    /// from there (`ctx.stash`, `ctx.complete_fiber`). An error is retried later with backoff.
    /// The default has no handler: the fiber is skipped (`fiber:recovery:skipped`).
    fn on_fiber_recovered(
        &mut self,
        _ctx: &mut Ctx,
        _fiber: Recovered,
    ) -> impl Future<Output = Result<(), RpcError>> + Send {
        async {
            Err(RpcError::new(
                NO_HANDLER,
                "this agent does not recover fibers",
            ))
        }
    }
}

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
    /// Shared with the `state:update` event that diffs it (a reference count, not a copy).
    pub(crate) state: Arc<Value>,
    pub(crate) version: u64,
    pub(crate) state_max_bytes: u64,
    /// When the next schedule is due (Unix ms), as last read from the store.
    pub(crate) next_due: Option<u64>,
    /// Sequence numbers reserved up to (stored in the agent's database).
    pub(crate) reserved: u64,
    /// MCP connections, by server id.
    pub(crate) mcp: HashMap<String, McpConn>,
    /// The host, for calls to other agents.
    pub(crate) host: Option<Arc<dyn Caller>>,
    /// The model client.
    pub(crate) model: Option<Arc<dyn ModelClient>>,
    /// After the agent's code panicked in a timer pass (a schedule or a fiber recovery), its
    /// timer waits until this Unix ms time, backing off, so a callback that always panics
    /// does not restart the agent in a loop (stored as meta `timer_hold_until_ms`).
    pub(crate) timer_hold_until: u64,
    /// The chat turn under way, so one that never returns (evicted, panicked) is still
    /// closed with `chat:turn:finish` and `message:error`.
    pub(crate) open_turn: Option<OpenTurn>,
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
        let new = Arc::new(new);
        let old = std::mem::replace(&mut self.state, new.clone());
        if self.emitter.enabled(Kind::StateUpdate) {
            let changed = changed_paths(&old, &new);
            self.emitter.emit(|| StateUpdate {
                version,
                changed_paths: changed,
                size_bytes: size,
                // Diffed off this thread, by the first consumer that reads it. The old state
                // is counted at the new one's size: an estimate, for the pending budget.
                diff: Some(Sensitive(StatePatch::between(old, new, 2 * size))),
                source: Some(Name::new_static("server")),
            });
        }
        self.version = version;
        self.keep_reserved();
        Ok(version)
    }

    /// Keeps the sequence reservation ahead of the numbers in use (called after anything that
    /// may have emitted many events, and by the storage-writing calls themselves). The
    /// in-memory mark moves only once the new reservation is stored.
    pub(crate) fn keep_reserved(&mut self) {
        let last = self.emitter.last_seq();
        if last + SEQ_BLOCK / 2 > self.reserved {
            let next = last + SEQ_BLOCK;
            if self.store.set_meta("seq_reserved", next).is_ok() {
                self.reserved = next;
            }
        }
    }
}

/// The top-level JSON pointers whose values differ between two states, in the order a
/// JSON-Patch between them lists them (the new state's changed and added keys, then the
/// removed ones), found by comparing values: no allocation but the paths. A state that is
/// not an object changes as a whole (`/`).
fn changed_paths(old: &Value, new: &Value) -> Vec<Name> {
    let (Value::Object(a), Value::Object(b)) = (old, new) else {
        return if old == new {
            Vec::new()
        } else {
            vec![Name::new_static("/")]
        };
    };
    b.iter()
        .filter(|(k, v)| a.get(k.as_str()) != Some(*v))
        .chain(a.iter().filter(|(k, _)| !b.contains_key(k.as_str())))
        .map(|(k, _)| {
            let mut path = String::with_capacity(k.len() + 1);
            path.push('/');
            // RFC 6901: `~` is written `~0` and `/` is written `~1`.
            for c in k.chars() {
                match c {
                    '~' => path.push_str("~0"),
                    '/' => path.push_str("~1"),
                    c => path.push(c),
                }
            }
            Name::from(path)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn changed_paths_are_what_a_json_patch_touches_at_the_top_level() {
        let old = json!({"same": [1, 2], "n": 1, "gone": true, "a/b~c": {"x": 1}});
        let new = json!({"same": [1, 2], "n": 2, "added": null, "a/b~c": {"x": 2}});
        let patch = json_patch::diff(&old, &new);
        let mut tops: Vec<String> = Vec::new();
        for op in patch.iter() {
            let path = serde_json::to_value(op).unwrap()["path"]
                .as_str()
                .unwrap()
                .to_owned();
            let top = format!("/{}", path.split('/').nth(1).unwrap());
            if !tops.contains(&top) {
                tops.push(top);
            }
        }
        // The same paths, in the same order, as the JSON-Patch.
        assert_eq!(changed_paths(&old, &new), tops);
        assert_eq!(
            changed_paths(&old, &new),
            vec!["/a~1b~0c", "/added", "/n", "/gone"]
        );
        assert!(changed_paths(&new, &new).is_empty());
        assert_eq!(changed_paths(&Value::Null, &new), vec!["/"]);
    }
}
