//! The `otlp_json` line format: one OTLP `LogsData` per line, in the OTLP/JSON encoding
//! (hex trace ids, string nanosecond timestamps, camelCase keys), as the OpenTelemetry
//! Collector's `otlpjsonfile` receiver reads it. The message types and their JSON encoding
//! are `opentelemetry-proto`'s.
//!
//! Each event becomes a log record: `eventName` is the kind, the severity number is
//! OpenTelemetry's, the body is the payload, and the attributes identify the agent
//! (`gen_ai.agent.name` = class, `session.id` / `gen_ai.conversation.id` = instance) and the
//! event (`sightline.event.id`, `sightline.seq`, `sightline.outcome`,
//! `sightline.duration_ns`, `error.type` on failures).

use opentelemetry_proto::tonic::common::v1::{
    any_value, AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList,
};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, LogsData, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use sightline_event::{AgentRef, Event, Outcome};

use crate::segment::LineEvent;

/// The attribute holding the agent class.
pub const ATTR_CLASS: &str = "gen_ai.agent.name";
/// The attribute holding the agent instance.
pub const ATTR_INSTANCE: &str = "session.id";
/// The attribute holding the per-agent sequence number.
pub const ATTR_SEQ: &str = "sightline.seq";

fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

fn string(s: impl Into<String>) -> any_value::Value {
    any_value::Value::StringValue(s.into())
}

/// Converts a JSON value into an OTLP `AnyValue`.
pub fn any_value(v: &serde_json::Value) -> AnyValue {
    use serde_json::Value;
    let value = match v {
        Value::Null => None,
        Value::Bool(b) => Some(any_value::Value::BoolValue(*b)),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Some(any_value::Value::IntValue(i)),
            None => Some(any_value::Value::DoubleValue(n.as_f64().unwrap_or(0.0))),
        },
        Value::String(s) => Some(string(s.clone())),
        Value::Array(items) => Some(any_value::Value::ArrayValue(ArrayValue {
            values: items.iter().map(any_value).collect(),
        })),
        Value::Object(map) => Some(any_value::Value::KvlistValue(KeyValueList {
            values: map
                .iter()
                .map(|(k, v)| KeyValue {
                    key: k.clone(),
                    value: Some(any_value(v)),
                    ..Default::default()
                })
                .collect(),
        })),
    };
    AnyValue { value }
}

/// One event as a log record.
pub fn log_record(e: &Event) -> LogRecord {
    let mut attributes = vec![
        kv(ATTR_CLASS, string(e.agent.class.as_str())),
        kv(ATTR_INSTANCE, string(e.agent.name.as_str())),
        kv("gen_ai.conversation.id", string(e.agent.name.as_str())),
        kv("sightline.event.id", string(e.id.to_string())),
        kv(ATTR_SEQ, any_value::Value::IntValue(e.seq as i64)),
    ];
    if let Some(outcome) = e.outcome {
        attributes.push(kv("sightline.outcome", string(outcome.name())));
        if outcome != Outcome::Ok {
            attributes.push(kv("error.type", string(outcome.name())));
        }
    }
    if let Some(d) = e.duration_ns {
        attributes.push(kv(
            "sightline.duration_ns",
            any_value::Value::IntValue(d.min(i64::MAX as u64) as i64),
        ));
    }
    LogRecord {
        time_unix_nano: e.ts_ns,
        observed_time_unix_nano: e.ts_ns,
        severity_number: e.severity.otel_number(),
        severity_text: e.severity.name().to_uppercase(),
        event_name: e.kind().name().to_owned(),
        body: Some(any_value(&e.payload.to_json())),
        attributes,
        trace_id: e
            .trace_id
            .map(|t| t.to_bytes().to_vec())
            .unwrap_or_default(),
        span_id: e.span_id.map(|s| s.to_bytes().to_vec()).unwrap_or_default(),
        ..Default::default()
    }
}

/// A batch of events as one `LogsData`, under `service.name`.
pub fn logs_data(service_name: &str, events: &[Event]) -> LogsData {
    LogsData {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: vec![kv("service.name", string(service_name))],
                ..Default::default()
            }),
            scope_logs: vec![ScopeLogs {
                scope: Some(InstrumentationScope {
                    name: "sightline".to_owned(),
                    version: env!("CARGO_PKG_VERSION").to_owned(),
                    ..Default::default()
                }),
                log_records: events.iter().map(log_record).collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn attr<'a>(record: &'a LogRecord, key: &str) -> Option<&'a any_value::Value> {
    record
        .attributes
        .iter()
        .find(|a| a.key == key)
        .and_then(|a| a.value.as_ref())
        .and_then(|v| v.value.as_ref())
}

/// The events of one `otlp_json` line, for the index. Errors when the line is not a
/// `LogsData`.
pub fn line_events(line: &[u8]) -> Result<Vec<LineEvent>, serde_json::Error> {
    let data: LogsData = serde_json::from_slice(line)?;
    let mut out = Vec::new();
    for rl in &data.resource_logs {
        for sl in &rl.scope_logs {
            for r in &sl.log_records {
                let text = |key| match attr(r, key) {
                    Some(any_value::Value::StringValue(s)) => s.as_str(),
                    _ => "",
                };
                let seq = match attr(r, ATTR_SEQ) {
                    Some(any_value::Value::IntValue(i)) => *i as u64,
                    _ => 0,
                };
                out.push(LineEvent {
                    agent: AgentRef::new(text(ATTR_CLASS), text(ATTR_INSTANCE)),
                    seq,
                    ts_ns: r.time_unix_nano,
                });
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sightline_event::{AgentRef, Rpc, TraceContext};

    #[test]
    fn a_line_is_otlp_json_with_hex_ids_and_string_timestamps() {
        let trace = TraceContext::new_root();
        let e = Event::new(
            AgentRef::new("Support", "t-1"),
            7,
            Rpc {
                method: "getTicket".into(),
                ..Default::default()
            },
        )
        .with_outcome(Outcome::Ok)
        .with_duration_ns(1500)
        .with_trace(trace);
        let line = serde_json::to_string(&logs_data("svc", std::slice::from_ref(&e))).unwrap();
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        let rec = &v["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0];
        assert_eq!(rec["eventName"], "rpc");
        assert_eq!(rec["severityNumber"], 9);
        assert_eq!(rec["timeUnixNano"], e.ts_ns.to_string());
        assert_eq!(rec["traceId"], trace.trace_id.to_string());
        let back = line_events(line.as_bytes()).unwrap();
        assert_eq!(back.len(), 1);
        assert_eq!((back[0].agent.name.as_str(), back[0].seq), ("t-1", 7));
    }
}
