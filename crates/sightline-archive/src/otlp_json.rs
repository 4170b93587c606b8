//! The `otlp_json` line format: one OTLP `LogsData` per line, in the OTLP/JSON encoding
//! (hex trace ids, string nanosecond timestamps, camelCase keys), as the OpenTelemetry
//! Collector's `otlpjsonfile` receiver reads it. The message types and their JSON encoding
//! are `opentelemetry-proto`'s.
//!
//! Each event becomes the log record the OTLP exporter sends for it (`sightline_otlp::map`):
//! `eventName` is the kind, the severity number is OpenTelemetry's, the attributes identify
//! the agent (`gen_ai.agent.name` = class, `session.id` / `gen_ai.conversation.id` =
//! instance) and the event (`sightline.event.id`, `sightline.seq`, `sightline.outcome`,
//! `sightline.duration_ns`, `error.type` on failures) with the semantic conventions' keys, and
//! the body holds the payload's other fields.

use opentelemetry_proto::tonic::common::v1::any_value;
use opentelemetry_proto::tonic::logs::v1::{LogRecord, LogsData, ResourceLogs, ScopeLogs};
use sightline_event::{AgentRef, Event};
use sightline_otlp::map::{self, Mapper};

use crate::segment::LineEvent;

/// The attribute holding the agent class.
pub const ATTR_CLASS: &str = "gen_ai.agent.name";
/// The attribute holding the agent instance.
pub const ATTR_INSTANCE: &str = "session.id";
/// The attribute holding the per-agent sequence number.
pub const ATTR_SEQ: &str = "sightline.seq";

/// One event as a log record: the OTLP exporter's mapping (`sightline_otlp::map`), with every
/// field the archive's policy kept (content capture on: the archive is redacted already).
pub fn log_record(e: &Event) -> LogRecord {
    Mapper {
        traces_enabled: false,
        capture_content: true,
    }
    .log(e)
}

/// A batch of events as one `LogsData`, under `service.name`.
pub fn logs_data(service_name: &str, events: &[Event]) -> LogsData {
    LogsData {
        resource_logs: vec![ResourceLogs {
            resource: Some(map::resource(&[(
                "service.name".to_owned(),
                service_name.to_owned(),
            )])),
            scope_logs: vec![ScopeLogs {
                scope: Some(map::scope()),
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
    use sightline_event::{AgentRef, Outcome, Rpc, TraceContext};

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
