//! Every kind of event, defined once.
//!
//! [`define_events!`] turns each entry into a payload struct, a [`Kind`] variant with its
//! Cloudflare-compatible name, family, default severity and shape, a [`Payload`] variant, and
//! the per-field sensitivity table. Adding an event is one entry here.

use std::borrow::Cow;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};
use smol_str::SmolStr;

use crate::family::Family;
use crate::patch::StatePatch;
use crate::sensitive::{Classify, Sensitive};
use crate::severity::Severity;

/// A safe, low-to-moderate cardinality string: ids, names, methods, states. Strings of up to 23
/// bytes are stored inline, so building such a field never allocates.
pub type Name = SmolStr;

/// Free text that may carry user data (error messages, reasons, prompts).
pub type Text = Sensitive<String>;

/// Whether an event kind describes an operation with a duration (exported as an OTLP span) or
/// a point in time (exported as an OTLP log record).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Shape {
    /// An operation that has a duration and an outcome.
    Span,
    /// Something that happened at one instant.
    Point,
}

/// One payload field and whether the event model marks it sensitive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldSpec {
    /// The field's key in the JSON `payload` object.
    pub name: &'static str,
    /// `true` when the field may carry user data (its type is [`Sensitive`]).
    pub sensitive: bool,
}

/// How a schedule was created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ScheduleType {
    /// Runs once after a delay.
    #[default]
    Delay,
    /// Runs once at a given time.
    At,
    /// Runs on a cron expression.
    Cron,
    /// Runs every fixed interval.
    Interval,
}

/// The transport of an MCP client connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum McpTransport {
    /// A child process speaking over stdin/stdout.
    #[default]
    Stdio,
    /// Streamable HTTP.
    StreamableHttp,
    /// Legacy HTTP + server-sent events.
    Sse,
}

/// The state of an MCP client connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum McpState {
    /// Opening the transport.
    #[default]
    Connecting,
    /// Waiting for the user to complete OAuth.
    Authenticating,
    /// Transport open, initialize done.
    Connected,
    /// Listing tools, prompts and resources.
    Discovering,
    /// Usable.
    Ready,
    /// Gave up; see the error.
    Failed,
    /// Closed on purpose.
    Closed,
}

impl McpState {
    /// The name used in the JSON form and as a metric label.
    pub const fn name(self) -> &'static str {
        match self {
            McpState::Connecting => "connecting",
            McpState::Authenticating => "authenticating",
            McpState::Connected => "connected",
            McpState::Discovering => "discovering",
            McpState::Ready => "ready",
            McpState::Failed => "failed",
            McpState::Closed => "closed",
        }
    }
}

impl Classify for ScheduleType {
    const SENSITIVE: bool = false;
}
impl Classify for McpTransport {
    const SENSITIVE: bool = false;
}
impl Classify for McpState {
    const SENSITIVE: bool = false;
}

/// A payload the redaction stage rewrote: its kind and its fields as a JSON object.
#[derive(Debug, Clone, PartialEq)]
pub struct RawPayload {
    /// The event's kind (the payload's `type`).
    pub kind: Kind,
    /// The payload's fields after redaction.
    pub fields: serde_json::Map<String, serde_json::Value>,
}

/// A payload type: knows its [`Kind`] at compile time, which is what lets the bus check
/// interest before the payload is built.
pub trait EventPayload: Into<Payload> {
    /// The kind of event this payload makes.
    const KIND: Kind;
}

macro_rules! define_events {
    ( $(
        $(#[doc = $doc:literal])*
        $variant:ident = $name:literal, $family:ident, $sev:ident, $shape:ident {
            $( $(#[$fattr:meta])* $field:ident : $fty:ty ),* $(,)?
        }
    )* ) => {
        $(
            $(#[doc = $doc])*
            #[doc = ""]
            #[doc = concat!("Event type `", $name, "`.")]
            #[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
            #[serde(deny_unknown_fields)]
            #[schemars(title = $name)]
            pub struct $variant {
                $( $(#[$fattr])* pub $field: $fty, )*
            }

            impl EventPayload for $variant {
                const KIND: Kind = Kind::$variant;
            }

            impl From<$variant> for Payload {
                #[inline]
                fn from(p: $variant) -> Payload {
                    Payload::$variant(p)
                }
            }
        )*

        /// The kind of an event: its type name, family, default severity and shape.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u8)]
        pub enum Kind {
            $( $(#[doc = $doc])* $variant, )*
        }

        impl Kind {
            /// Every kind, in definition order (the order of [`Kind::index`]).
            pub const ALL: &'static [Kind] = &[$(Kind::$variant),*];

            /// The event type name, compatible with Cloudflare's Agents SDK where it has one
            /// (`"schedule:error"`).
            pub const fn name(self) -> &'static str {
                match self { $(Kind::$variant => $name,)* }
            }

            /// The family (`schedule`, `fiber`, ...).
            pub const fn family(self) -> Family {
                match self { $(Kind::$variant => Family::$family,)* }
            }

            /// The severity an event of this kind gets unless the emitter says otherwise.
            pub const fn default_severity(self) -> Severity {
                match self { $(Kind::$variant => Severity::$sev,)* }
            }

            /// Whether this kind is an operation with a duration or a point in time.
            pub const fn shape(self) -> Shape {
                match self { $(Kind::$variant => Shape::$shape,)* }
            }

            /// The payload's fields and their sensitivity, derived from the field types.
            pub const fn fields(self) -> &'static [FieldSpec] {
                match self {
                    $(Kind::$variant => {
                        const FIELDS: &[FieldSpec] = &[$(FieldSpec {
                            name: stringify!($field),
                            sensitive: <$fty as Classify>::SENSITIVE,
                        }),*];
                        FIELDS
                    })*
                }
            }

            /// Looks a kind up by its type name.
            pub fn from_name(name: &str) -> Option<Kind> {
                match name {
                    $($name => Some(Kind::$variant),)*
                    _ => None,
                }
            }
        }

        /// The typed payload of an event; its variant decides the event's [`Kind`].
        ///
        /// [`Payload::Raw`] holds a payload as a JSON object after the redaction stage changed
        /// it (a dropped field, a hash where a number was): the kind is kept, the typing is not.
        #[derive(Debug, Clone, PartialEq, JsonSchema)]
        #[serde(tag = "type", content = "payload")]
        pub enum Payload {
            $( $(#[doc = $doc])* #[serde(rename = $name)] $variant($variant), )*
            /// A redacted payload, as JSON.
            #[schemars(skip)]
            Raw(RawPayload),
        }

        impl Payload {
            /// The kind of this payload.
            #[inline]
            pub const fn kind(&self) -> Kind {
                match self {
                    $(Payload::$variant(_) => Kind::$variant,)*
                    Payload::Raw(raw) => raw.kind,
                }
            }

            /// Rebuilds a typed payload from its kind and JSON `payload` object.
            pub fn from_json(kind: Kind, payload: serde_json::Value) -> Result<Payload, serde_json::Error> {
                Ok(match kind {
                    $(Kind::$variant => Payload::$variant(serde_json::from_value(payload)?),)*
                })
            }

            /// A typed payload from some of its fields, the others at their defaults: what a
            /// consumer that reads only safe fields (metrics) makes of a redacted payload whose
            /// sensitive fields were dropped.
            pub fn from_partial_json(
                kind: Kind,
                fields: &serde_json::Map<String, serde_json::Value>,
            ) -> Result<Payload, serde_json::Error> {
                let mut merged = match Payload::default_for(kind).to_json() {
                    serde_json::Value::Object(m) => m,
                    _ => serde_json::Map::new(),
                };
                for (k, v) in fields {
                    merged.insert(k.clone(), v.clone());
                }
                Payload::from_json(kind, serde_json::Value::Object(merged))
            }

            /// A payload of the given kind with every field at its default (empty names,
            /// zero counts): for tests and examples.
            pub fn default_for(kind: Kind) -> Payload {
                match kind { $(Kind::$variant => Payload::$variant($variant::default()),)* }
            }

            /// Appends the payload's fields as compact JSON (an object) to `buf`.
            pub fn write_json(&self, buf: &mut Vec<u8>) {
                let _ = match self {
                    $(Payload::$variant(p) => serde_json::to_writer(&mut *buf, p),)*
                    Payload::Raw(raw) => serde_json::to_writer(&mut *buf, &raw.fields),
                };
            }

            /// The payload's fields as a JSON value (an object), as the JSON form writes them.
            pub fn to_json(&self) -> serde_json::Value {
                match self {
                    $(Payload::$variant(p) => serde_json::to_value(p).unwrap_or_default(),)*
                    Payload::Raw(raw) => serde_json::Value::Object(raw.fields.clone()),
                }
            }

            /// Serializes the payload's fields (the kind's struct, or a raw payload's map) with
            /// any serializer: what `payload` holds in the JSON form.
            pub fn serialize_content<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                match self {
                    $(Payload::$variant(p) => p.serialize(s),)*
                    Payload::Raw(raw) => raw.fields.serialize(s),
                }
            }
        }
    };
}

// Every event Sightline knows. Cloudflare's names are kept verbatim; the kinds Sightline adds
// are marked "(Sightline)". Fields typed `Text`, `Sensitive<..>` are sensitive.
define_events! {
    // ---- rpc ----
    /// A callable method finished successfully (Cloudflare emits it after success).
    Rpc = "rpc", Rpc, Info, Span {
        /// The method called.
        method: Name,
        /// Whether the method streamed its result.
        #[serde(default)]
        streaming: bool,
        /// Who called: a client connection id or `Class/name` of the calling agent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        caller: Option<Name>,
    }
    /// A callable method failed.
    RpcError = "rpc:error", Rpc, Error, Span {
        /// The method called.
        method: Name,
        /// The error message.
        error: Text,
        /// A short, bounded error class (`timeout`, `TypeError`) for grouping.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error_type: Option<Name>,
        /// Who called.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        caller: Option<Name>,
    }

    // ---- state ----
    /// The agent's state changed (Sightline adds version, changed paths, size and the diff).
    StateUpdate = "state:update", State, Info, Point {
        /// State version after the update.
        #[serde(default)]
        version: u64,
        /// JSON pointers of the top-level paths that changed.
        #[serde(default)]
        changed_paths: Vec<Name>,
        /// Serialized size of the new state.
        #[serde(default)]
        size_bytes: u64,
        /// The JSON-Patch (RFC 6902) from the previous state.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        diff: Option<Sensitive<StatePatch>>,
        /// Who changed it: `server` or a connection id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        source: Option<Name>,
    }
    /// A state update was refused (too large, invalid) (Sightline).
    StateRejected = "state:rejected", State, Warn, Point {
        /// The version that stays current.
        version: u64,
        /// Why it was refused.
        reason: Text,
        /// Size of the refused state.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        size_bytes: Option<u64>,
        /// The configured limit, when the size was the reason.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit_bytes: Option<u64>,
    }

    // ---- connections and lifecycle ----
    /// A client connection (WebSocket) opened.
    Connect = "connect", Lifecycle, Info, Point {
        /// The connection.
        connection_id: Name,
    }
    /// A client connection closed.
    Disconnect = "disconnect", Lifecycle, Info, Point {
        /// The connection.
        connection_id: Name,
        /// The WebSocket close code.
        code: u16,
        /// The close reason.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<Text>,
    }
    /// The agent was destroyed and its storage deleted.
    Destroy = "destroy", Lifecycle, Warn, Point {}
    /// The alarm handler hit the memory limit and was reset.
    AlarmMemoryLimitReset = "alarm:memory_limit_reset", Lifecycle, Warn, Point {
        /// Consecutive strikes so far.
        strikes: u32,
        /// Strikes before the alarm is sealed.
        limit: u32,
        /// Whether the alarm is now sealed (stops re-arming).
        sealed: bool,
        /// The error that triggered the reset.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<Text>,
    }
    /// A job waited too long before being dispatched.
    JobSlowDispatch = "job:slow_dispatch", Lifecycle, Warn, Point {
        /// The job's callback.
        job: Name,
        /// How long it waited.
        waited_ms: u64,
    }
    /// The agent's job backlog passed the warning threshold.
    JobBacklogWarning = "job:backlog_warning", Lifecycle, Warn, Point {
        /// Jobs waiting.
        backlog: u64,
        /// The threshold that was passed.
        threshold: u64,
    }
    /// The agent was evicted from memory after being idle; its state stays on disk (Sightline).
    AgentHibernate = "agent:hibernate", Lifecycle, Info, Point {
        /// How long it had been idle.
        idle_ms: u64,
    }
    /// The agent was loaded into memory: first use or wake from hibernation (Sightline).
    AgentWake = "agent:wake", Lifecycle, Info, Span {
        /// What woke it: `rpc`, `alarm`, `connect`, `first_use`, `restart`.
        trigger: Name,
        /// How long it had been hibernating (0 on first use).
        #[serde(default)]
        hibernated_ms: u64,
    }

    // ---- schedules ----
    /// A schedule was created.
    ScheduleCreate = "schedule:create", Schedule, Info, Point {
        /// The method the schedule calls.
        callback: Name,
        /// The schedule id.
        id: Name,
        /// delay, at, cron or interval.
        schedule_type: ScheduleType,
        /// The cron expression, for cron schedules.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cron: Option<Name>,
        /// The delay or interval, for delay and interval schedules.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        interval_ms: Option<u64>,
        /// When it first fires, Unix milliseconds.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fire_at_ms: Option<u64>,
    }
    /// A scheduled callback started running.
    ScheduleExecute = "schedule:execute", Schedule, Info, Point {
        /// The method the schedule calls.
        callback: Name,
        /// The schedule id.
        id: Name,
        /// 1 for the first try.
        attempt: u32,
        /// How late it started compared with when it was due.
        lateness_ms: u64,
    }
    /// A scheduled callback finished successfully (Sightline).
    ScheduleComplete = "schedule:complete", Schedule, Info, Span {
        /// The method the schedule calls.
        callback: Name,
        /// The schedule id.
        id: Name,
        /// Attempts it took.
        attempts: u32,
        /// How late the first attempt started.
        lateness_ms: u64,
    }
    /// A scheduled callback failed and will be retried.
    ScheduleRetry = "schedule:retry", Schedule, Warn, Point {
        /// The method the schedule calls.
        callback: Name,
        /// The schedule id.
        id: Name,
        /// The attempt that failed.
        attempt: u32,
        /// Attempts allowed in all.
        max_attempts: u32,
        /// Wait before the next attempt.
        #[serde(default)]
        backoff_ms: u64,
        /// Why the attempt failed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<Text>,
    }
    /// A scheduled callback failed for good: retries exhausted (terminal).
    ScheduleError = "schedule:error", Schedule, Error, Span {
        /// The method the schedule calls.
        callback: Name,
        /// The schedule id.
        id: Name,
        /// The last error.
        error: Text,
        /// Attempts made.
        attempts: u32,
        /// A short, bounded error class for grouping.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error_type: Option<Name>,
    }
    /// A schedule was cancelled.
    ScheduleCancel = "schedule:cancel", Schedule, Info, Point {
        /// The method the schedule calls.
        callback: Name,
        /// The schedule id.
        id: Name,
    }
    /// The same callback was scheduled many times.
    ScheduleDuplicateWarning = "schedule:duplicate_warning", Schedule, Warn, Point {
        /// The method the schedules call.
        callback: Name,
        /// How many schedules exist for it.
        count: u32,
        /// Their type.
        schedule_type: ScheduleType,
    }
    /// A cron or interval that should have fired while the agent was down (Sightline).
    ScheduleMissed = "schedule:missed", Schedule, Warn, Point {
        /// The method the schedule calls.
        callback: Name,
        /// The schedule id.
        id: Name,
        /// Runs that were due and did not happen.
        missed_runs: u32,
        /// How long the agent was down.
        downtime_ms: u64,
    }
    /// A run was skipped because the previous run of the same interval was still going (Sightline).
    ScheduleSkipped = "schedule:skipped", Schedule, Warn, Point {
        /// The method the schedule calls.
        callback: Name,
        /// The schedule id.
        id: Name,
        /// Why: `overlap`.
        reason: Name,
    }

    // ---- queues ----
    /// A callback was queued.
    QueueCreate = "queue:create", Queue, Info, Point {
        /// The queued method.
        callback: Name,
        /// The queue item id.
        id: Name,
    }
    /// A queued callback failed and will be retried.
    QueueRetry = "queue:retry", Queue, Warn, Point {
        /// The queued method.
        callback: Name,
        /// The queue item id.
        id: Name,
        /// The attempt that failed.
        attempt: u32,
        /// Attempts allowed in all.
        max_attempts: u32,
        /// Wait before the next attempt.
        #[serde(default)]
        backoff_ms: u64,
        /// Why the attempt failed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<Text>,
    }
    /// A queued callback failed for good.
    QueueError = "queue:error", Queue, Error, Span {
        /// The queued method.
        callback: Name,
        /// The queue item id.
        id: Name,
        /// The last error.
        error: Text,
        /// Attempts made.
        attempts: u32,
    }
    /// A queued callback finished successfully (Sightline).
    QueueComplete = "queue:complete", Queue, Info, Span {
        /// The queued method.
        callback: Name,
        /// The queue item id.
        id: Name,
        /// Attempts it took.
        attempts: u32,
        /// How long it waited in the queue.
        wait_ms: u64,
    }

    // ---- fibers ----
    /// A durable fiber started (or resumed) running.
    FiberRunStarted = "fiber:run:started", Fiber, Info, Point {
        /// The fiber.
        fiber_id: Name,
        /// Its name (the function it runs).
        fiber_name: Name,
    }
    /// A fiber finished.
    FiberRunCompleted = "fiber:run:completed", Fiber, Info, Span {
        /// The fiber.
        fiber_id: Name,
        /// Its name.
        fiber_name: Name,
        /// Checkpoints it wrote.
        #[serde(default)]
        steps: u32,
    }
    /// A fiber threw.
    FiberRunFailed = "fiber:run:failed", Fiber, Error, Span {
        /// The fiber.
        fiber_id: Name,
        /// Its name.
        fiber_name: Name,
        /// The error.
        error: Text,
        /// Checkpoints it wrote before failing.
        #[serde(default)]
        steps: u32,
    }
    /// A fiber was interrupted (eviction, restart) before finishing.
    FiberRunInterrupted = "fiber:run:interrupted", Fiber, Warn, Span {
        /// The fiber.
        fiber_id: Name,
        /// Its name.
        fiber_name: Name,
        /// Why: `eviction`, `restart`, `shutdown`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<Name>,
        /// Checkpoints it wrote.
        #[serde(default)]
        steps: u32,
    }
    /// A fiber checkpointed its progress (Sightline).
    FiberStash = "fiber:stash", Fiber, Debug, Point {
        /// The fiber.
        fiber_id: Name,
        /// Its name.
        fiber_name: Name,
        /// The checkpoint number, from 1.
        step: u32,
        /// Size of the stashed value.
        size_bytes: u64,
    }
    /// An unfinished fiber was found after a restart.
    FiberRecoveryDetected = "fiber:recovery:detected", Fiber, Warn, Point {
        /// The fiber.
        fiber_id: Name,
        /// Its name.
        fiber_name: Name,
        /// How old the fiber is.
        #[serde(default)]
        age_ms: u64,
        /// Its last checkpoint.
        #[serde(default)]
        last_step: u32,
    }
    /// Recovery of a fiber is being attempted.
    FiberRecoveryAttempt = "fiber:recovery:attempt", Fiber, Info, Point {
        /// The fiber.
        fiber_id: Name,
        /// Its name.
        fiber_name: Name,
        /// 1 for the first try.
        attempt: u32,
    }
    /// The agent's recovery hook handled the fiber.
    FiberRecoveryHandled = "fiber:recovery:handled", Fiber, Info, Span {
        /// The fiber.
        fiber_id: Name,
        /// Its name.
        fiber_name: Name,
        /// Attempts it took.
        attempt: u32,
    }
    /// Recovery was not attempted (`max_age_exceeded`, `no_handler`).
    FiberRecoverySkipped = "fiber:recovery:skipped", Fiber, Warn, Point {
        /// The fiber.
        fiber_id: Name,
        /// Its name.
        fiber_name: Name,
        /// Why it was skipped.
        reason: Name,
    }
    /// Recovery failed.
    FiberRecoveryFailed = "fiber:recovery:failed", Fiber, Error, Span {
        /// The fiber.
        fiber_id: Name,
        /// Its name.
        fiber_name: Name,
        /// The error.
        error: Text,
        /// The attempt that failed.
        attempt: u32,
    }

    // ---- mcp ----
    /// An MCP server is about to be connected.
    McpClientPreconnect = "mcp:client:preconnect", Mcp, Debug, Point {
        /// The server's id in this agent.
        server_id: Name,
    }
    /// An MCP connection attempt ended (state `connected`, `authenticating` or `failed`).
    McpClientConnect = "mcp:client:connect", Mcp, Info, Span {
        /// The server's id in this agent.
        server_id: Name,
        /// The server's configured name: a bounded label.
        server_name: Name,
        /// The server URL or command.
        url: Sensitive<String>,
        /// How it is reached.
        transport: McpTransport,
        /// The state reached.
        state: McpState,
        /// Why it failed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<Text>,
    }
    /// An MCP server needs the user to authorize (OAuth).
    McpClientAuthorize = "mcp:client:authorize", Mcp, Warn, Point {
        /// The server's id in this agent.
        server_id: Name,
        /// The OAuth authorization URL: carries state and codes, so sensitive.
        auth_url: Sensitive<String>,
    }
    /// Capabilities of an MCP server were listed.
    McpClientDiscover = "mcp:client:discover", Mcp, Info, Span {
        /// The server's id in this agent.
        server_id: Name,
        /// The server's configured name.
        server_name: Name,
        /// `tools`, `prompts` or `resources`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        capability: Option<Name>,
        /// How many were found.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        count: Option<u32>,
        /// The connection state afterwards.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        state: Option<McpState>,
        /// Why discovery failed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<Text>,
    }
    /// An MCP connection closed.
    McpClientClose = "mcp:client:close", Mcp, Info, Point {
        /// The server's id in this agent.
        server_id: Name,
        /// The server's configured name.
        server_name: Name,
        /// The server URL or command.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        url: Option<Sensitive<String>>,
        /// The state it was in.
        state: McpState,
        /// The phase closing happened in (`shutdown`, `reconnect`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        phase: Option<Name>,
        /// The error that closed it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<Text>,
    }
    /// One MCP request (`tools/call`, `tools/list`, ...) (Sightline).
    McpRequest = "mcp:request", Mcp, Info, Span {
        /// The server's id in this agent.
        server_id: Name,
        /// The server's configured name.
        server_name: Name,
        /// The JSON-RPC method.
        method: Name,
        /// The tool, for `tools/call`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tool_name: Option<Name>,
        /// Why it failed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<Text>,
    }

    // ---- workflows ----
    /// A workflow started.
    WorkflowStart = "workflow:start", Workflow, Info, Point {
        /// The workflow instance.
        workflow_id: Name,
        /// The workflow's name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        workflow_name: Option<Name>,
    }
    /// An event was sent to a workflow.
    WorkflowEvent = "workflow:event", Workflow, Info, Point {
        /// The workflow instance.
        workflow_id: Name,
        /// The workflow's name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        workflow_name: Option<Name>,
        /// The event's type.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        event_type: Option<Name>,
    }
    /// A workflow waiting for approval was approved.
    WorkflowApproved = "workflow:approved", Workflow, Info, Point {
        /// The workflow instance.
        workflow_id: Name,
        /// The workflow's name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        workflow_name: Option<Name>,
        /// The approver's note.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<Text>,
    }
    /// A workflow waiting for approval was rejected.
    WorkflowRejected = "workflow:rejected", Workflow, Warn, Point {
        /// The workflow instance.
        workflow_id: Name,
        /// The workflow's name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        workflow_name: Option<Name>,
        /// The approver's note.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<Text>,
    }
    /// A workflow was terminated.
    WorkflowTerminated = "workflow:terminated", Workflow, Warn, Point {
        /// The workflow instance.
        workflow_id: Name,
        /// The workflow's name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        workflow_name: Option<Name>,
        /// Why.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<Text>,
    }
    /// A workflow was paused.
    WorkflowPaused = "workflow:paused", Workflow, Info, Point {
        /// The workflow instance.
        workflow_id: Name,
        /// The workflow's name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        workflow_name: Option<Name>,
        /// Why (`awaiting_approval`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<Name>,
    }
    /// A workflow was resumed.
    WorkflowResumed = "workflow:resumed", Workflow, Info, Point {
        /// The workflow instance.
        workflow_id: Name,
        /// The workflow's name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        workflow_name: Option<Name>,
    }
    /// A workflow was restarted.
    WorkflowRestarted = "workflow:restarted", Workflow, Warn, Point {
        /// The workflow instance.
        workflow_id: Name,
        /// The workflow's name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        workflow_name: Option<Name>,
    }
    /// A workflow finished successfully (Sightline).
    WorkflowComplete = "workflow:complete", Workflow, Info, Span {
        /// The workflow instance.
        workflow_id: Name,
        /// The workflow's name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        workflow_name: Option<Name>,
        /// Steps it ran.
        #[serde(default)]
        steps: u32,
    }
    /// A workflow failed (Sightline).
    WorkflowError = "workflow:error", Workflow, Error, Span {
        /// The workflow instance.
        workflow_id: Name,
        /// The workflow's name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        workflow_name: Option<Name>,
        /// The step that failed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        step: Option<Name>,
        /// The error.
        error: Text,
    }

    // ---- email ----
    /// The agent received an email.
    EmailReceive = "email:receive", Email, Info, Point {
        /// Sender address.
        from: Sensitive<String>,
        /// Recipient address.
        to: Sensitive<String>,
        /// Subject line.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        subject: Option<Text>,
    }
    /// The agent replied to an email.
    EmailReply = "email:reply", Email, Info, Point {
        /// Sender address.
        from: Sensitive<String>,
        /// Recipient address.
        to: Sensitive<String>,
        /// Subject line.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        subject: Option<Text>,
    }
    /// The agent sent an email.
    EmailSend = "email:send", Email, Info, Point {
        /// Sender address.
        from: Sensitive<String>,
        /// Recipient address.
        to: Sensitive<String>,
        /// Subject line.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        subject: Option<Text>,
    }

    // ---- messages (chat protocol) ----
    /// A chat message request arrived.
    MessageRequest = "message:request", Message, Info, Point {
        /// The request.
        request_id: Name,
    }
    /// A chat message response finished.
    MessageResponse = "message:response", Message, Info, Span {
        /// The request.
        request_id: Name,
    }
    /// A chat message request failed.
    MessageError = "message:error", Message, Error, Span {
        /// The request.
        request_id: Name,
        /// The error.
        error: Text,
    }
    /// A chat message request was cancelled by the client.
    MessageCancel = "message:cancel", Message, Info, Point {
        /// The request.
        request_id: Name,
    }

    // ---- tools and models ----
    /// A tool call ran (Sightline; exported as `execute_tool {gen_ai.tool.name}`).
    ToolCall = "tool:call", Tool, Info, Span {
        /// The tool call.
        tool_call_id: Name,
        /// The tool.
        tool_name: Name,
        /// Where the tool lives: `local` or the MCP server's name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        source: Option<Name>,
        /// The call's arguments.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        arguments: Option<Sensitive<serde_json::Value>>,
        /// Why it failed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<Text>,
    }
    /// A tool result was delivered to the model.
    ToolResult = "tool:result", Tool, Info, Point {
        /// The tool call.
        tool_call_id: Name,
        /// The tool.
        tool_name: Name,
    }
    /// A human approved or refused a tool call.
    ToolApproval = "tool:approval", Tool, Info, Point {
        /// The tool call.
        tool_call_id: Name,
        /// The decision.
        approved: bool,
    }
    /// A model was called (Sightline; exported as `chat {gen_ai.request.model}`).
    ModelCall = "model:call", Model, Info, Span {
        /// The model requested.
        model: Name,
        /// The provider (`openai`, `anthropic`, `local`).
        provider: Name,
        /// Prompt tokens.
        #[serde(default)]
        input_tokens: u64,
        /// Completion tokens.
        #[serde(default)]
        output_tokens: u64,
        /// Why generation stopped (`stop`, `length`, `tool_calls`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        finish_reason: Option<Name>,
        /// Why it failed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<Text>,
    }

    // ---- chat ----
    /// An agent turn started.
    ChatTurnStart = "chat:turn:start", Chat, Info, Point {
        /// The request the turn answers.
        request_id: Name,
    }
    /// An agent turn finished (exported as `invoke_agent {gen_ai.agent.name}`).
    ChatTurnFinish = "chat:turn:finish", Chat, Info, Span {
        /// The request the turn answers.
        request_id: Name,
        /// `completed`, `error`, `aborted`.
        status: Name,
    }
    /// A streamed response stopped producing output.
    ChatStreamStalled = "chat:stream:stalled", Chat, Warn, Point {
        /// The request being streamed.
        request_id: Name,
        /// How long no chunk arrived.
        stalled_ms: u64,
    }
    /// Recovery of an interrupted chat stream started.
    ChatRecoveryStarted = "chat:recovery:started", Chat, Warn, Point {
        /// The request being recovered.
        request_id: Name,
    }
    /// An interrupted chat stream was recovered.
    ChatRecoveryCompleted = "chat:recovery:completed", Chat, Info, Span {
        /// The request recovered.
        request_id: Name,
    }
    /// An interrupted chat stream could not be recovered.
    ChatRecoveryFailed = "chat:recovery:failed", Chat, Error, Span {
        /// The request.
        request_id: Name,
        /// The error.
        error: Text,
    }

    // ---- human approvals ----
    /// The agent asked a human to approve an action (Sightline).
    ApprovalRequested = "approval:requested", Approval, Info, Point {
        /// The approval.
        approval_id: Name,
        /// What needs approving (a tool name, `refund`).
        action: Name,
        /// The tool call waiting on it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tool_call_id: Option<Name>,
        /// What the human is shown.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        prompt: Option<Text>,
        /// When it expires.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expires_in_ms: Option<u64>,
    }
    /// A human approved (Sightline).
    ApprovalGranted = "approval:granted", Approval, Info, Span {
        /// The approval.
        approval_id: Name,
        /// What was approved.
        action: Name,
        /// Who decided.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        decided_by: Option<Sensitive<String>>,
    }
    /// A human refused (Sightline).
    ApprovalDenied = "approval:denied", Approval, Warn, Span {
        /// The approval.
        approval_id: Name,
        /// What was refused.
        action: Name,
        /// Who decided.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        decided_by: Option<Sensitive<String>>,
        /// Their reason.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<Text>,
    }
    /// Nobody decided in time (Sightline).
    ApprovalExpired = "approval:expired", Approval, Warn, Span {
        /// The approval.
        approval_id: Name,
        /// What was waiting.
        action: Name,
    }
}

/// Number of kinds; the bus sizes its interest mask from it.
pub const KIND_COUNT: usize = Kind::ALL.len();

/// Words of 64 bits needed for one bit per kind.
pub const KIND_WORDS: usize = KIND_COUNT.div_ceil(64);

impl Kind {
    /// The kind's position in [`Kind::ALL`], used for bit masks.
    #[inline(always)]
    pub const fn index(self) -> usize {
        self as usize
    }
}

impl JsonSchema for Kind {
    fn schema_name() -> Cow<'static, str> {
        "Kind".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let names: Vec<&str> = Kind::ALL.iter().map(|k| k.name()).collect();
        schemars::json_schema!({ "type": "string", "enum": names })
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Family {
    /// The kinds in this family.
    pub fn kinds(self) -> impl Iterator<Item = Kind> {
        Kind::ALL
            .iter()
            .copied()
            .filter(move |k| k.family() == self)
    }
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
}
