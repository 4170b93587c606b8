//! The [`Event`] itself: the envelope, its builder methods and its JSON form (schema version
//! 1, keys in a fixed order, written by hand so that the order holds and the payload is
//! typed by `type` when read back), plus the JSON Schema of one line.

use schemars::JsonSchema;
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize};

use crate::agent::AgentRef;
use crate::clock::now_unix_ns;
use crate::ids::{EventId, SpanId, TraceContext, TraceId};
use crate::kinds::{Kind, Payload, RawPayload};
use crate::redaction::RedactionSummary;
use crate::severity::{Outcome, Severity};

/// The version of the JSON form this crate writes. Readers accept this version and older.
pub const SCHEMA_VERSION: u16 = 1;

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
    use crate::kinds::Rpc;

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
}
