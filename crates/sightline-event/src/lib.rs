//! # sightline-event: the typed event model
//!
//! Everything a Durable-Object-style agent runtime does (RPC, state, connections, schedules,
//! queues, fibers, MCP, workflows, tools, models, approvals, email) is described here as one
//! [`Event`]: an envelope every sink understands, plus a typed [`Payload`] whose variant is the
//! event's [`Kind`]. Kind names are those of Cloudflare's Agents SDK (`schedule:error`,
//! `fiber:recovery:failed`, `mcp:client:connect`) so people who know it need no dictionary;
//! the envelope adds what that SDK lacks: a time-ordered id, a nanosecond timestamp, a
//! per-agent sequence number that exposes loss, W3C trace context, severity, outcome and
//! duration.
//!
//! This crate exists so that emitters (the runtime) and consumers (sinks, the CLI) share one
//! vocabulary without depending on each other. It depends on serde and little else.
//!
//! Every payload field is either *safe* (ids, names, counts, durations, states) or
//! [`Sensitive`]; the type says which, [`Kind::fields`] lists it, and the JSON Schema marks it
//! with `"x-sensitive": true`, so the redaction stage never guesses.
//!
//! ## The JSON form (schema version 1)
//! One event is one JSON object on one line; keys appear in this order, optional keys are
//! omitted when absent:
//!
//! | key | type | meaning |
//! |---|---|---|
//! | `v` | integer | schema version ([`SCHEMA_VERSION`]) |
//! | `type` | string | the kind's name, e.g. `"schedule:error"` |
//! | `id` | string | UUIDv7, time-ordered |
//! | `ts_ns` | integer | Unix time in nanoseconds |
//! | `agent` | object | `{"class": .., "name": ..}`: Durable Object class and instance name |
//! | `seq` | integer | per-agent sequence number, from 1, no gaps at the source |
//! | `trace_id`, `span_id`, `parent_span_id` | string? | W3C trace context, lowercase hex |
//! | `severity` | string | `trace`, `debug`, `info`, `warn`, `error`, `fatal` |
//! | `outcome` | string? | `ok`, `error`, `timeout`, `cancelled`, `rejected` |
//! | `duration_ns` | integer? | for operations |
//! | `payload` | object | the kind's fields |
//!
//! `sightline schema` prints the JSON Schema (committed as `config/event.schema.json`).
//!
//! ```
//! use sightline_event::{AgentRef, Event, Outcome, ScheduleError, Severity};
//!
//! let event = Event::new(
//!     AgentRef::new("Support", "ticket-4411"),
//!     7,
//!     ScheduleError {
//!         callback: "sendDigest".into(),
//!         id: "sch_12".into(),
//!         error: "SMTP 550".into(),
//!         attempts: 3,
//!         error_type: None,
//!     },
//! )
//! .with_outcome(Outcome::Error)
//! .with_duration_ns(1_500_000);
//! assert_eq!(event.kind().name(), "schedule:error");
//! assert_eq!(event.severity, Severity::Error);
//!
//! let line = event.to_json_line();
//! let back = Event::from_json_line(&line).unwrap();
//! assert_eq!(back, event);
//! ```
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod agent;
mod clock;
mod event;
mod family;
mod ids;
mod kind_set;
mod kinds;
mod patch;
mod redaction;
mod sensitive;
mod severity;

pub use agent::AgentRef;
pub use clock::{now_unix_ns, system_unix_ns};
pub use event::{json_schema_text, Event, ParseError, SCHEMA_VERSION};
pub use family::Family;
pub use ids::{EventId, IdError, SpanId, TraceContext, TraceId};
pub use kind_set::{KindSet, UnknownKind};
pub use kinds::*;
pub use patch::StatePatch;
pub use redaction::RedactionSummary;
pub use sensitive::{Classify, Sensitive};
pub use severity::{Outcome, Severity};
