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

mod ids;
mod kinds;
mod patch;
mod sensitive;

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use schemars::JsonSchema;
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize};
use smol_str::SmolStr;

pub use ids::{EventId, IdError, SpanId, TraceContext, TraceId};
pub use kinds::*;
pub use patch::StatePatch;
pub use sensitive::{Classify, Sensitive};

/// The version of the JSON form this crate writes. Readers accept this version and older.
pub const SCHEMA_VERSION: u16 = 1;

// ===== Family =====

/// A group of related kinds; Cloudflare publishes each on its own `agents:<family>` channel.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    /// Callable methods.
    Rpc,
    /// Agent state.
    State,
    /// Connections, hibernation, destruction, the job dispatcher.
    Lifecycle,
    /// Scheduled callbacks.
    Schedule,
    /// Queued callbacks.
    Queue,
    /// Durable fibers, their runs and recovery.
    Fiber,
    /// MCP client connections.
    Mcp,
    /// Workflows.
    Workflow,
    /// Email.
    Email,
    /// Chat protocol messages.
    Message,
    /// Tool calls.
    Tool,
    /// Model calls.
    Model,
    /// Chat turns and streams.
    Chat,
    /// Human approvals.
    Approval,
}

impl Family {
    /// Every family.
    pub const ALL: &'static [Family] = &[
        Family::Rpc,
        Family::State,
        Family::Lifecycle,
        Family::Schedule,
        Family::Queue,
        Family::Fiber,
        Family::Mcp,
        Family::Workflow,
        Family::Email,
        Family::Message,
        Family::Tool,
        Family::Model,
        Family::Chat,
        Family::Approval,
    ];

    /// The family's name (`"schedule"`).
    pub const fn name(self) -> &'static str {
        match self {
            Family::Rpc => "rpc",
            Family::State => "state",
            Family::Lifecycle => "lifecycle",
            Family::Schedule => "schedule",
            Family::Queue => "queue",
            Family::Fiber => "fiber",
            Family::Mcp => "mcp",
            Family::Workflow => "workflow",
            Family::Email => "email",
            Family::Message => "message",
            Family::Tool => "tool",
            Family::Model => "model",
            Family::Chat => "chat",
            Family::Approval => "approval",
        }
    }

    /// Looks a family up by name.
    pub fn from_name(name: &str) -> Option<Family> {
        Family::ALL.iter().copied().find(|f| f.name() == name)
    }

    /// The kinds in this family.
    pub fn kinds(self) -> impl Iterator<Item = Kind> {
        Kind::ALL
            .iter()
            .copied()
            .filter(move |k| k.family() == self)
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

// ===== Severity / Outcome =====

/// How much an operator should care, on OpenTelemetry's scale.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Default,
    Serialize,
    Deserialize,
    JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Fine-grained detail.
    Trace,
    /// Diagnostic detail.
    Debug,
    /// Normal operation.
    #[default]
    Info,
    /// Something went wrong but was handled (a retry, a rejection).
    Warn,
    /// An operation failed.
    Error,
    /// The agent cannot continue.
    Fatal,
}

impl Severity {
    /// The OpenTelemetry severity number (9 INFO, 13 WARN, 17 ERROR).
    pub const fn otel_number(self) -> i32 {
        match self {
            Severity::Trace => 1,
            Severity::Debug => 5,
            Severity::Info => 9,
            Severity::Warn => 13,
            Severity::Error => 17,
            Severity::Fatal => 21,
        }
    }

    /// The OpenTelemetry severity text (`INFO`, `WARN`, ...).
    pub const fn otel_text(self) -> &'static str {
        match self {
            Severity::Trace => "TRACE",
            Severity::Debug => "DEBUG",
            Severity::Info => "INFO",
            Severity::Warn => "WARN",
            Severity::Error => "ERROR",
            Severity::Fatal => "FATAL",
        }
    }

    /// The name used in the JSON form.
    pub const fn name(self) -> &'static str {
        match self {
            Severity::Trace => "trace",
            Severity::Debug => "debug",
            Severity::Info => "info",
            Severity::Warn => "warn",
            Severity::Error => "error",
            Severity::Fatal => "fatal",
        }
    }

    /// Parses a severity name (`warn` or `warning`, case-insensitive).
    pub fn from_name(name: &str) -> Option<Severity> {
        Some(match name.to_ascii_lowercase().as_str() {
            "trace" => Severity::Trace,
            "debug" => Severity::Debug,
            "info" => Severity::Info,
            "warn" | "warning" => Severity::Warn,
            "error" => Severity::Error,
            "fatal" => Severity::Fatal,
            _ => return None,
        })
    }
}

/// How an operation ended.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// It succeeded.
    Ok,
    /// It failed.
    Error,
    /// It ran out of time.
    Timeout,
    /// It was cancelled.
    Cancelled,
    /// It was refused before running.
    Rejected,
}

impl Outcome {
    /// The name used in the JSON form and in metric labels.
    pub const fn name(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Error => "error",
            Outcome::Timeout => "timeout",
            Outcome::Cancelled => "cancelled",
            Outcome::Rejected => "rejected",
        }
    }

    /// Whether this outcome is a failure.
    pub const fn is_failure(self) -> bool {
        !matches!(self, Outcome::Ok | Outcome::Cancelled)
    }
}

// ===== AgentRef =====

/// Which agent emitted an event: its Durable Object class and its stable instance name.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize, JsonSchema,
)]
#[serde(deny_unknown_fields)]
pub struct AgentRef {
    /// The agent class (a bounded set: a metric label).
    pub class: SmolStr,
    /// The instance name (unbounded: never a metric label).
    pub name: SmolStr,
}

impl AgentRef {
    /// An agent reference.
    pub fn new(class: impl Into<SmolStr>, name: impl Into<SmolStr>) -> Self {
        Self {
            class: class.into(),
            name: name.into(),
        }
    }

    /// Parses `class/name` (the name may itself contain `/`).
    pub fn parse(text: &str) -> Option<Self> {
        let (class, name) = text.split_once('/')?;
        (!class.is_empty() && !name.is_empty()).then(|| Self::new(class, name))
    }
}

impl fmt::Display for AgentRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.class, self.name)
    }
}

// ===== Event =====

/// One event: the envelope plus a typed payload.
#[derive(Debug, Clone, PartialEq, JsonSchema)]
#[schemars(
    title = "Sightline event",
    description = "One Sightline event; one per line in JSONL."
)]
pub struct Event {
    /// Schema version of the JSON form.
    #[serde(rename = "v")]
    pub schema_version: u16,
    /// Unique, time-ordered id.
    pub id: EventId,
    /// When it happened, Unix nanoseconds.
    pub ts_ns: u64,
    /// Who emitted it.
    pub agent: AgentRef,
    /// Per-agent sequence number, from 1; a gap means events were lost.
    pub seq: u64,
    /// W3C trace id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<TraceId>,
    /// W3C span id: the operation's own span for span-shaped kinds, the enclosing span for points.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub span_id: Option<SpanId>,
    /// The parent of `span_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_span_id: Option<SpanId>,
    /// How much an operator should care.
    pub severity: Severity,
    /// How the operation ended, for operations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    /// How long the operation took, for operations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ns: Option<u64>,
    /// What the redaction stage did to this event, when it did anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redaction: Option<Box<RedactionSummary>>,
    /// The kind (`type`) and its fields (`payload`).
    #[serde(flatten)]
    pub payload: Payload,
}

/// Why a line could not be read as an event.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// Not JSON, or the envelope or payload has the wrong shape.
    #[error("{0}")]
    Json(#[from] serde_json::Error),
    /// The `type` is not a kind this version knows.
    #[error("unknown event type {0:?}")]
    UnknownType(String),
    /// Written by a newer Sightline.
    #[error("schema version {0} is newer than this reader ({SCHEMA_VERSION})")]
    NewerSchema(u16),
}

impl Event {
    /// Builds an event stamped now with a fresh id, the kind's default severity and no trace
    /// context. The bus does this for you; use it for tests, ingest and replay.
    pub fn new(agent: AgentRef, seq: u64, payload: impl Into<Payload>) -> Self {
        let ts_ns = now_unix_ns();
        let payload = payload.into();
        Self {
            schema_version: SCHEMA_VERSION,
            id: EventId::generate(ts_ns),
            ts_ns,
            agent,
            seq,
            trace_id: None,
            span_id: None,
            parent_span_id: None,
            severity: payload.kind().default_severity(),
            outcome: None,
            duration_ns: None,
            redaction: None,
            payload,
        }
    }

    /// The event's kind.
    #[inline]
    pub fn kind(&self) -> Kind {
        self.payload.kind()
    }

    /// Sets the outcome; a failure raises the severity to at least `error`.
    pub fn with_outcome(mut self, outcome: Outcome) -> Self {
        self.set_outcome(outcome);
        self
    }

    /// Sets the outcome in place; a failure raises the severity to at least `error`.
    pub fn set_outcome(&mut self, outcome: Outcome) {
        self.outcome = Some(outcome);
        if outcome.is_failure() && self.severity < Severity::Error {
            self.severity = Severity::Error;
        }
    }

    /// Sets the duration.
    pub fn with_duration_ns(mut self, duration_ns: u64) -> Self {
        self.duration_ns = Some(duration_ns);
        self
    }

    /// Sets the trace context.
    pub fn with_trace(mut self, trace: TraceContext) -> Self {
        self.set_trace(trace);
        self
    }

    /// Sets the trace context in place.
    pub fn set_trace(&mut self, trace: TraceContext) {
        self.trace_id = Some(trace.trace_id);
        self.span_id = Some(trace.span_id);
        self.parent_span_id = trace.parent_span_id;
    }

    /// The trace context, when the event has one.
    pub fn trace(&self) -> Option<TraceContext> {
        Some(TraceContext {
            trace_id: self.trace_id?,
            span_id: self.span_id?,
            parent_span_id: self.parent_span_id,
        })
    }

    /// The event as one line of JSON, without the newline.
    pub fn to_json_line(&self) -> String {
        // Serializing this type cannot fail: every map key is a string and no value is a
        // float that could be NaN.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Appends the event as one line of JSON plus `\n` to `buf`.
    pub fn write_json_line(&self, buf: &mut Vec<u8>) {
        if serde_json::to_writer(&mut *buf, self).is_ok() {
            buf.push(b'\n');
        }
    }

    /// Parses one line of the JSON form.
    pub fn from_json_line(line: &str) -> Result<Self, ParseError> {
        Self::from_json_value(serde_json::from_str(line)?)
    }

    /// Converts a parsed JSON value in the JSON form.
    pub fn from_json_value(value: serde_json::Value) -> Result<Self, ParseError> {
        let wire: Wire = serde_json::from_value(value)?;
        if wire.v > SCHEMA_VERSION {
            return Err(ParseError::NewerSchema(wire.v));
        }
        let kind = Kind::from_name(&wire.kind).ok_or(ParseError::UnknownType(wire.kind))?;
        let payload = match Payload::from_json(kind, wire.payload.clone()) {
            Ok(p) => p,
            // A redacted payload may no longer fit its type (a dropped field, a hash in place
            // of a number): keep it as JSON. Unredacted events must fit.
            Err(_) if wire.redaction.is_some() => match wire.payload {
                serde_json::Value::Object(fields) => Payload::Raw(RawPayload { kind, fields }),
                other => Payload::from_json(kind, other)?,
            },
            Err(e) => return Err(e.into()),
        };
        Ok(Self {
            schema_version: wire.v,
            id: wire.id,
            ts_ns: wire.ts_ns,
            agent: wire.agent,
            seq: wire.seq,
            trace_id: wire.trace_id,
            span_id: wire.span_id,
            parent_span_id: wire.parent_span_id,
            severity: wire.severity,
            outcome: wire.outcome,
            duration_ns: wire.duration_ns,
            redaction: wire.redaction,
            payload,
        })
    }
}

/// The envelope as read from JSON, before the payload is typed.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    v: u16,
    #[serde(rename = "type")]
    kind: String,
    id: EventId,
    ts_ns: u64,
    agent: AgentRef,
    seq: u64,
    #[serde(default)]
    trace_id: Option<TraceId>,
    #[serde(default)]
    span_id: Option<SpanId>,
    #[serde(default)]
    parent_span_id: Option<SpanId>,
    severity: Severity,
    #[serde(default)]
    outcome: Option<Outcome>,
    #[serde(default)]
    duration_ns: Option<u64>,
    #[serde(default)]
    redaction: Option<Box<RedactionSummary>>,
    #[serde(default = "empty_object")]
    payload: serde_json::Value,
}

fn empty_object() -> serde_json::Value {
    serde_json::Value::Object(serde_json::Map::new())
}

impl Serialize for Event {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        struct Content<'a>(&'a Payload);
        impl Serialize for Content<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                self.0.serialize_content(s)
            }
        }
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("v", &self.schema_version)?;
        m.serialize_entry("type", self.kind().name())?;
        m.serialize_entry("id", &self.id)?;
        m.serialize_entry("ts_ns", &self.ts_ns)?;
        m.serialize_entry("agent", &self.agent)?;
        m.serialize_entry("seq", &self.seq)?;
        if let Some(t) = &self.trace_id {
            m.serialize_entry("trace_id", t)?;
        }
        if let Some(t) = &self.span_id {
            m.serialize_entry("span_id", t)?;
        }
        if let Some(t) = &self.parent_span_id {
            m.serialize_entry("parent_span_id", t)?;
        }
        m.serialize_entry("severity", &self.severity)?;
        if let Some(o) = &self.outcome {
            m.serialize_entry("outcome", o)?;
        }
        if let Some(d) = &self.duration_ns {
            m.serialize_entry("duration_ns", d)?;
        }
        if let Some(r) = &self.redaction {
            m.serialize_entry("redaction", r)?;
        }
        m.serialize_entry("payload", &Content(&self.payload))?;
        m.end()
    }
}

impl<'de> Deserialize<'de> for Event {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(d)?;
        Event::from_json_value(value).map_err(serde::de::Error::custom)
    }
}

// ===== RedactionSummary =====

/// What the redaction stage did to one event: counts by rule and action. It never holds the
/// values, nor the contents of the keys that matched.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RedactionSummary {
    /// The policy applied.
    pub policy: SmolStr,
    /// Redactions by rule name (or detector name), then by action (`drop`, `mask`, `hash`,
    /// `truncate`).
    #[serde(default)]
    pub counts: std::collections::BTreeMap<SmolStr, std::collections::BTreeMap<SmolStr, u32>>,
    /// Whether the payload was cut short (too deep, too large, or not valid UTF-8).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
}

impl RedactionSummary {
    /// Total redactions.
    pub fn total(&self) -> u64 {
        self.counts
            .values()
            .flat_map(|m| m.values())
            .map(|n| *n as u64)
            .sum()
    }
}

// ===== KindSet =====

/// A set of kinds as a bit mask: what a subscriber wants, and what the bus is interested in.
///
/// ```
/// use sightline_event::{Family, Kind, KindSet};
/// let set = KindSet::family(Family::Schedule);
/// assert!(set.contains(Kind::ScheduleError));
/// assert!(!set.contains(Kind::Rpc));
/// assert!(KindSet::parse("schedule:*,rpc").unwrap().contains(Kind::Rpc));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct KindSet(pub [u64; KIND_WORDS]);

impl KindSet {
    /// No kinds.
    pub const EMPTY: KindSet = KindSet([0; KIND_WORDS]);

    /// Every kind.
    pub fn all() -> Self {
        Kind::ALL.iter().copied().collect()
    }

    /// Every kind of one family.
    pub fn family(family: Family) -> Self {
        family.kinds().collect()
    }

    /// Adds a kind.
    pub fn insert(&mut self, kind: Kind) {
        self.0[kind.index() / 64] |= 1 << (kind.index() % 64);
    }

    /// Whether the set has the kind.
    #[inline(always)]
    pub const fn contains(&self, kind: Kind) -> bool {
        self.0[kind.index() / 64] & (1 << (kind.index() % 64)) != 0
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|w| *w == 0)
    }

    /// The union of two sets.
    pub fn union(mut self, other: KindSet) -> Self {
        for (a, b) in self.0.iter_mut().zip(other.0) {
            *a |= b;
        }
        self
    }

    /// The kinds in the set.
    pub fn iter(&self) -> impl Iterator<Item = Kind> + '_ {
        Kind::ALL.iter().copied().filter(|k| self.contains(*k))
    }

    /// Parses a comma-separated list of kind names (`schedule:error`), family names
    /// (`schedule`), prefixes ending in `*` (`fiber:recovery:*`) or `*` for everything.
    pub fn parse(list: &str) -> Result<Self, UnknownKind> {
        let mut set = KindSet::EMPTY;
        for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let selected = if item == "*" {
                KindSet::all()
            } else if let Some(prefix) = item.strip_suffix('*') {
                Kind::ALL
                    .iter()
                    .copied()
                    .filter(|k| k.name().starts_with(prefix))
                    .collect()
            } else if let Some(kind) = Kind::from_name(item) {
                std::iter::once(kind).collect()
            } else if let Some(family) = Family::from_name(item) {
                KindSet::family(family)
            } else {
                KindSet::EMPTY
            };
            if selected.is_empty() {
                return Err(UnknownKind(item.to_owned()));
            }
            set = set.union(selected);
        }
        Ok(set)
    }
}

impl FromIterator<Kind> for KindSet {
    fn from_iter<I: IntoIterator<Item = Kind>>(iter: I) -> Self {
        let mut set = KindSet::EMPTY;
        iter.into_iter().for_each(|k| set.insert(k));
        set
    }
}

/// A name in a kind list that is no kind, family or prefix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown event kind or family {0:?} (try `schedule:error`, `schedule`, `fiber:recovery:*`)"
)]
pub struct UnknownKind(pub String);

// ===== clock and schema =====

/// The system's wall clock, in Unix nanoseconds (a `clock_gettime` call: ~35-70 ns here).
pub fn system_unix_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos().min(u64::MAX as u128) as u64)
        .unwrap_or(0)
}

/// Now, in Unix nanoseconds: the one clock every event timestamp comes from.
///
/// Reading the system clock costs 35-70 ns on this project's machines, more than the whole
/// emit budget, so this reads the CPU's invariant TSC through `quanta` (~10 ns) and adds it to
/// a wall-clock anchor taken from the system clock. The anchor is refreshed once a second, so
/// drift against NTP-disciplined time stays far below a millisecond; at a refresh the clock may
/// step by that drift, which is why per-agent order is carried by `seq`, not by `ts_ns`.
/// Where the TSC is unusable, quanta falls back to the OS monotonic clock.
#[inline]
pub fn now_unix_ns() -> u64 {
    clock::now()
}

mod clock {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::OnceLock;

    /// The TSC, anchored to the system clock. Its rate is *measured* against the system clock
    /// at every re-anchor rather than trusted from quanta's start-up calibration, which a
    /// loaded machine can skew by tens of percent (seen here: 23%).
    struct Wall {
        clock: quanta::Clock,
        anchor_raw: AtomicU64,
        anchor_unix: AtomicU64,
        /// Nanoseconds per raw tick, as `f64` bits.
        ns_per_tick: AtomicU64,
        /// Raw ticks after the anchor at which to re-anchor.
        reanchor_ticks: AtomicU64,
    }

    static WALL: OnceLock<Wall> = OnceLock::new();

    /// Longest re-anchor period.
    const REANCHOR_NS: f64 = 1e9;
    /// First re-anchor: after 1 ms, so the measured rate replaces quanta's estimate before its
    /// error can add up; each period is then ten times the last, up to `REANCHOR_NS`.
    const FIRST_REANCHOR_NS: f64 = 1e6;
    /// A clock pair read further apart than this (preemption) re-anchors without measuring.
    const MAX_READ_GAP_NS: f64 = 20_000.0;

    fn wall() -> &'static Wall {
        WALL.get_or_init(|| {
            let clock = quanta::Clock::new();
            let span = 1u64 << 40;
            let estimate = (clock.delta_as_nanos(0, span) as f64 / span as f64).max(1e-6);
            let raw = clock.raw();
            Wall {
                anchor_raw: AtomicU64::new(raw),
                anchor_unix: AtomicU64::new(super::system_unix_ns()),
                ns_per_tick: AtomicU64::new(estimate.to_bits()),
                reanchor_ticks: AtomicU64::new((FIRST_REANCHOR_NS / estimate) as u64),
                clock,
            }
        })
    }

    #[inline]
    pub(super) fn now() -> u64 {
        let wall = wall();
        let raw = wall.clock.raw();
        // A seqlock-style read: the anchor is consistent when anchor_raw did not change around
        // the other reads (a writer parks it at u64::MAX while it updates the rest, and raw
        // values only grow, so there is no ABA).
        let anchor_raw = wall.anchor_raw.load(Ordering::Acquire);
        let anchor_unix = wall.anchor_unix.load(Ordering::Acquire);
        let ns_per_tick = f64::from_bits(wall.ns_per_tick.load(Ordering::Acquire));
        let limit = wall.reanchor_ticks.load(Ordering::Acquire);
        let ticks = raw.wrapping_sub(anchor_raw);
        if raw >= anchor_raw
            && ticks < limit
            && wall.anchor_raw.load(Ordering::Acquire) == anchor_raw
        {
            return anchor_unix + (ticks as f64 * ns_per_tick) as u64;
        }
        reanchor(wall, anchor_raw)
    }

    #[cold]
    fn reanchor(wall: &Wall, seen: u64) -> u64 {
        let old_unix = wall.anchor_unix.load(Ordering::Acquire);
        let old_rate = f64::from_bits(wall.ns_per_tick.load(Ordering::Acquire));
        let raw_before = wall.clock.raw();
        let unix = super::system_unix_ns();
        let raw_after = wall.clock.raw();
        let raw = raw_before + (raw_after.saturating_sub(raw_before)) / 2;
        let read_gap_ns = raw_after.saturating_sub(raw_before) as f64 * old_rate;
        // One thread wins the refresh; the others use the system clock this once.
        if seen != u64::MAX
            && wall
                .anchor_raw
                .compare_exchange(seen, u64::MAX, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        {
            let mut rate = old_rate;
            let elapsed_ns = unix.saturating_sub(old_unix) as f64;
            if raw > seen && unix > old_unix && read_gap_ns < MAX_READ_GAP_NS {
                let measured = elapsed_ns / (raw - seen) as f64;
                // A system clock step (NTP, settimeofday) makes the measurement meaningless.
                if measured > old_rate * 0.5 && measured < old_rate * 2.0 {
                    rate = measured;
                }
            }
            let next_ns = (elapsed_ns * 10.0).clamp(FIRST_REANCHOR_NS, REANCHOR_NS);
            wall.ns_per_tick.store(rate.to_bits(), Ordering::Release);
            wall.reanchor_ticks
                .store((next_ns / rate) as u64, Ordering::Release);
            wall.anchor_unix.store(unix, Ordering::Release);
            wall.anchor_raw.store(raw, Ordering::Release);
        }
        unix
    }

    #[cfg(test)]
    mod tests {
        use super::super::system_unix_ns;

        /// `before <= fast <= after` (within 1 ms), retried when the thread was preempted
        /// between the reads, so machine load cannot fail it.
        fn tracks() -> Result<(), String> {
            let mut last = String::new();
            for _ in 0..20 {
                let before = system_unix_ns();
                let fast = super::now();
                let after = system_unix_ns();
                if after - before > 200_000 {
                    continue; // preempted: no conclusion
                }
                if fast + 1_000_000 >= before && fast <= after + 1_000_000 {
                    return Ok(());
                }
                last = format!("fast {fast} outside [{before}, {after}] by more than 1 ms");
            }
            Err(last)
        }

        #[test]
        fn the_fast_clock_tracks_the_system_clock() {
            tracks().unwrap();
            for wait_ms in [5, 50, 300, 1200] {
                std::thread::sleep(std::time::Duration::from_millis(wait_ms));
                tracks().unwrap();
            }
        }
    }
}

/// The JSON Schema (draft 2020-12) of one event line, as pretty JSON text with a final newline.
pub fn json_schema_text() -> String {
    let schema = schemars::schema_for!(Event);
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_names_are_unique_and_round_trip() {
        let mut names = std::collections::HashSet::new();
        for k in Kind::ALL {
            assert!(names.insert(k.name()), "duplicate {}", k.name());
            assert_eq!(Kind::from_name(k.name()), Some(*k));
            assert_eq!(Kind::ALL[k.index()], *k);
        }
        const { assert!(KIND_COUNT <= 64 * KIND_WORDS) };
    }

    #[test]
    fn every_family_has_kinds() {
        for f in Family::ALL {
            assert!(f.kinds().count() > 0, "{f} is empty");
            assert_eq!(Family::from_name(f.name()), Some(*f));
        }
    }

    #[test]
    fn sensitivity_follows_the_field_type() {
        let fields = Kind::ScheduleError.fields();
        let error = fields.iter().find(|f| f.name == "error").unwrap();
        let callback = fields.iter().find(|f| f.name == "callback").unwrap();
        assert!(error.sensitive);
        assert!(!callback.sensitive);
        let url = Kind::McpClientConnect
            .fields()
            .iter()
            .find(|f| f.name == "url")
            .unwrap();
        assert!(url.sensitive);
        let diff = Kind::StateUpdate
            .fields()
            .iter()
            .find(|f| f.name == "diff")
            .unwrap();
        assert!(diff.sensitive);
    }

    #[test]
    fn failure_outcome_raises_severity() {
        let e = Event::new(AgentRef::new("A", "a"), 1, Rpc::default()).with_outcome(Outcome::Error);
        assert_eq!(e.severity, Severity::Error);
        let e = Event::new(AgentRef::new("A", "a"), 1, Rpc::default()).with_outcome(Outcome::Ok);
        assert_eq!(e.severity, Severity::Info);
    }

    #[test]
    fn parse_errors_are_precise() {
        let bad = r#"{"v":1,"type":"nope","id":"0190c5d2-0000-7000-8000-000000000000","ts_ns":1,"agent":{"class":"A","name":"a"},"seq":1,"severity":"info","payload":{}}"#;
        assert!(
            matches!(Event::from_json_line(bad), Err(ParseError::UnknownType(t)) if t == "nope")
        );
        let newer = bad.replace("\"v\":1", "\"v\":99").replace("nope", "rpc");
        assert!(matches!(
            Event::from_json_line(&newer),
            Err(ParseError::NewerSchema(99))
        ));
        assert!(Event::from_json_line("{").is_err());
    }

    #[test]
    fn kind_set_parsing() {
        let set = KindSet::parse("fiber:recovery:*").unwrap();
        assert_eq!(set.iter().count(), 5);
        assert!(KindSet::parse("bogus").is_err());
        assert!(KindSet::parse("bogus:*").is_err());
        assert_eq!(KindSet::parse("*").unwrap(), KindSet::all());
        assert_eq!(
            KindSet::parse("schedule").unwrap(),
            KindSet::family(Family::Schedule)
        );
    }
}
