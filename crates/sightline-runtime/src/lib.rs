//! # sightline-runtime: a Durable-Object-style agent runtime that emits every event
//!
//! Sightline needs a real emitter, and its users need a picture of what an agent runtime
//! instrumented with Sightline looks like. This crate is a compact, real one in the model of
//! Cloudflare's Agents SDK on Durable Objects, in one process:
//!
//! - an agent is addressed by class and stable name; the same name always reaches the same
//!   instance and its state;
//! - one instance handles one input at a time (a bounded mailbox on tokio);
//! - instances start on first use, hibernate after an idle timeout (memory released, state
//!   kept) and wake on the next input — each transition evented;
//! - each agent has its own SQLite database (rusqlite) holding its state (JSON, size-limited),
//!   persisted on every `set_state`, which emits `state:update` with version, changed paths,
//!   size and a JSON-Patch;
//! - RPCs are evented (`rpc`, `rpc:error`) with duration and the caller's trace context
//!   continued;
//! - per-agent sequence numbers continue across hibernation and restarts, never reused.
//!
//! It depends on the event model and the bus only, never on a sink.
//!
//! ## Layers
//!
//! From the bottom up, every arrow pointing down:
//!
//! - `error`, `clock`, `config`, `store`, `tls`: the leaves ([`RpcError`], the wall clock,
//!   [`RuntimeConfig`], each agent's SQLite, TLS set-up);
//! - `model` ([`ModelClient`], [`LocalModel`]) and `ctx_state`: the plain types [`Ctx`]
//!   holds for the features and the [`Agent`] trait hands to agents;
//! - `agent`: the [`Agent`] trait and [`Ctx`] with its core (state, emitter, sequence
//!   reservation);
//! - the features, each adding its methods to `Ctx` from its own module: `schedule`,
//!   `fiber`, `mcp`, `calls`, `channels`, `workflow`; `openai` ([`OpenAiModel`]);
//! - `host` ([`Runtime`]: mailboxes, starting, eviction, alarms, shutdown) and `instance`
//!   (one instance's loop, and [`Runtime::register`]);
//! - [`examples`]: the reference agents the demo, the tests and the benchmarks share.
//!
//! ```
//! use serde_json::{json, Value};
//! use sightline_bus::Bus;
//! use sightline_runtime::{Agent, Ctx, RpcError, Runtime, RuntimeConfig};
//!
//! struct Counter;
//! impl Agent for Counter {
//!     async fn on_rpc(&mut self, ctx: &mut Ctx, method: &str, _args: Value) -> Result<Value, RpcError> {
//!         match method {
//!             "increment" => {
//!                 let n = ctx.state()["n"].as_u64().unwrap_or(0) + 1;
//!                 ctx.set_state(json!({ "n": n })).map_err(|e| RpcError::new("StateError", e.to_string()))?;
//!                 Ok(json!(n))
//!             }
//!             other => Err(RpcError::new("NotFound", format!("no method {other}"))),
//!         }
//!     }
//! }
//!
//! # let dir = std::env::temp_dir().join(format!("sightline-runtime-doc-{}", std::process::id()));
//! let rt = tokio::runtime::Runtime::new().unwrap();
//! let runtime = Runtime::new(Bus::new(), RuntimeConfig { data_dir: dir.clone(), ..Default::default() }, rt.handle().clone());
//! runtime.register("Counter", |_| Counter);
//! let n = rt.block_on(runtime.rpc("Counter", "c-1", "increment", json!({}), None)).unwrap();
//! assert_eq!(n, json!(1));
//! # std::fs::remove_dir_all(dir).ok();
//! ```
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod agent;
mod calls;
mod channels;
mod clock;
mod config;
mod ctx_state;
mod error;
pub mod examples;
mod fiber;
mod host;
mod instance;
mod mcp;
pub mod mcp_server;
mod model;
mod openai;
mod schedule;
mod store;
mod tls;
mod workflow;

pub use agent::{Agent, Ctx, StateError};
pub use calls::Decision;
pub use config::RuntimeConfig;
pub use ctx_state::{Email, Fiber, McpTarget, Recovered};
pub use error::{RpcError, NO_HANDLER};
pub use host::Runtime;
pub use model::{LocalModel, ModelClient, ModelFuture, ModelRequest, ModelResponse};
pub use openai::{OpenAiConfigError, OpenAiModel};
pub use schedule::{ScheduleCreateError, When, MAX_ATTEMPTS};
pub use store::{ApprovalRow, FiberRow, McpServerRow, ScheduleRow, Store, StoreError, WorkflowRow};
