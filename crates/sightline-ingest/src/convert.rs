//! The converter: recognises which of the accepted shapes an input is, walks it, and numbers
//! the resulting events per agent. One input converts whole or not at all, so a rejected
//! line leaves no gap in any agent's sequence.

use std::collections::HashMap;

use serde_json::Value;
use sightline_event::{AgentRef, Event};

use crate::cloudflare::{self, Mapped};
use crate::error::{ConvertError, LineError};

/// What one input held.
#[derive(Debug, Default)]
pub struct Converted {
    /// Events ready for the pipeline, in input order.
    pub events: Vec<Event>,
    /// Cloudflare types the event model does not have, one entry per skipped event.
    pub unknown_types: Vec<String>,
    /// Payload keys that have no field in the model (dropped).
    pub dropped_keys: u64,
}

/// Turns input lines into Sightline events, numbering each agent's converted Cloudflare
/// events in arrival order (Sightline events keep the numbers they carry).
#[derive(Debug, Default)]
pub struct Converter {
    seq: HashMap<AgentRef, u64>,
}

/// An event found while walking an input, before numbering.
enum Found {
    /// A Sightline event: numbered already.
    Sightline(Event),
    /// A converted Cloudflare event: to be numbered.
    Converted(Event),
}

impl Converter {
    /// A converter numbering every agent from 1.
    pub fn new() -> Self {
        Self::default()
    }

    /// A converter continuing each agent's sequence from `last` (what an archive holds), so
    /// a second ingest of the same agents does not reuse numbers.
    pub fn continuing(last: HashMap<AgentRef, u64>) -> Self {
        Self { seq: last }
    }

    /// The last sequence number given to each agent so far.
    pub fn last_seqs(&self) -> &HashMap<AgentRef, u64> {
        &self.seq
    }

    /// Converts input line number `number` (counting from 1), its end of line stripped or
    /// not. The error names the line.
    pub fn line(&mut self, number: u64, line: &[u8]) -> Result<Converted, LineError> {
        self.convert(line).map_err(|error| LineError {
            line: number,
            error,
        })
    }

    /// Converts one input: a line's bytes (its end of line may stay), or a whole JSON
    /// document. Bytes that are not UTF-8 are [`ConvertError::NotUtf8`].
    pub fn convert(&mut self, input: &[u8]) -> Result<Converted, ConvertError> {
        let text = std::str::from_utf8(input).map_err(|e| ConvertError::NotUtf8 {
            valid_up_to: e.valid_up_to(),
        })?;
        self.convert_str(text)
    }

    /// Converts one input given as text.
    pub fn convert_str(&mut self, input: &str) -> Result<Converted, ConvertError> {
        let value: Value = serde_json::from_str(input).map_err(ConvertError::NotJson)?;
        self.convert_value(value)
    }

    /// Converts one input already parsed as JSON: a Sightline event, a Tail Worker
    /// `TraceItem` or an array of them, one `diagnosticsChannelEvents` entry, or one
    /// `ObservabilityEvent`.
    pub fn convert_value(&mut self, value: Value) -> Result<Converted, ConvertError> {
        let mut found = Vec::new();
        let mut out = Converted::default();
        walk(value, &mut found, &mut out)?;
        // Numbers are given only once the whole input converted.
        out.events.reserve(found.len());
        for f in found {
            out.events.push(match f {
                Found::Sightline(event) => event,
                Found::Converted(mut event) => {
                    let seq = self.seq.entry(event.agent.clone()).or_insert(0);
                    *seq += 1;
                    event.seq = *seq;
                    event
                }
            });
        }
        Ok(out)
    }
}

/// Whether a line holds nothing but whitespace (such lines are not inputs).
pub fn is_blank(line: &[u8]) -> bool {
    std::str::from_utf8(line).is_ok_and(|s| s.trim().is_empty())
}

fn walk(value: Value, found: &mut Vec<Found>, out: &mut Converted) -> Result<(), ConvertError> {
    match value {
        Value::Array(items) => {
            for item in items {
                walk(item, found, out)?;
            }
            Ok(())
        }
        Value::Object(obj) => {
            if obj.contains_key("v") && obj.contains_key("id") && obj.contains_key("seq") {
                let event = Event::from_json_value(Value::Object(obj))
                    .map_err(ConvertError::InvalidEvent)?;
                found.push(Found::Sightline(event));
                Ok(())
            } else if let Some(entries) = obj.get("diagnosticsChannelEvents") {
                let entries = entries
                    .as_array()
                    .ok_or(ConvertError::ChannelEventsNotArray)?;
                for entry in entries {
                    channel_entry(entry, found, out)?;
                }
                Ok(())
            } else if obj.contains_key("channel") && obj.contains_key("message") {
                channel_entry(&Value::Object(obj), found, out)
            } else if obj.contains_key("type") {
                observability_event(&obj, None, found, out)
            } else {
                Err(ConvertError::Unrecognised)
            }
        }
        _ => Err(ConvertError::NotObjectOrArray),
    }
}

fn channel_entry(
    entry: &Value,
    found: &mut Vec<Found>,
    out: &mut Converted,
) -> Result<(), ConvertError> {
    let message = entry
        .get("message")
        .and_then(Value::as_object)
        .ok_or(ConvertError::ChannelEntryWithoutMessage)?;
    let fallback_ts = entry.get("timestamp").and_then(Value::as_f64);
    observability_event(message, fallback_ts, found, out)
}

fn observability_event(
    obj: &serde_json::Map<String, Value>,
    fallback_ts_ms: Option<f64>,
    found: &mut Vec<Found>,
    out: &mut Converted,
) -> Result<(), ConvertError> {
    match cloudflare::observability_event(obj, fallback_ts_ms)? {
        Mapped::Event {
            event,
            dropped_keys,
        } => {
            out.dropped_keys += dropped_keys;
            found.push(Found::Converted(event));
        }
        Mapped::UnknownType(t) => out.unknown_types.push(t),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use sightline_event::{Kind, Outcome};

    use super::*;

    #[test]
    fn a_tail_worker_trace_item_becomes_sightline_events() {
        let item = r#"{"scriptName":"agents","outcome":"ok","eventTimestamp":1763936129000,
          "diagnosticsChannelEvents":[
            {"channel":"agents:schedule","timestamp":1763936129001,"message":
              {"type":"schedule:retry","agent":"ReminderAgent","name":"u-1","timestamp":1763936129001,
               "payload":{"callback":"sendDigest","id":"s1","attempt":2,"maxAttempts":3}}},
            {"channel":"agents:schedule","timestamp":1763936129500,"message":
              {"type":"schedule:error","agent":"ReminderAgent","name":"u-1","timestamp":1763936129500,
               "payload":{"callback":"sendDigest","id":"s1","error":"timeout","attempts":3}}},
            {"channel":"agents:fiber","timestamp":1763936129600,"message":
              {"type":"fiber:run:completed","agent":"ReminderAgent","name":"u-1","timestamp":1763936129600,
               "payload":{"fiberId":"f1","fiberName":"digest","elapsedMs":12.5}}},
            {"channel":"agents:chat","timestamp":1763936129700,"message":
              {"type":"chat:recovery:brand_new","agent":"ReminderAgent","name":"u-1","timestamp":1763936129700,"payload":{}}}
          ]}"#
        .replace('\n', " ");
        let mut c = Converter::default();
        let out = c.convert_str(&item).unwrap();
        assert_eq!(out.events.len(), 3);
        assert_eq!(out.unknown_types, vec!["chat:recovery:brand_new"]);
        let retry = &out.events[0];
        assert_eq!(retry.kind(), Kind::ScheduleRetry);
        assert_eq!(retry.agent, AgentRef::new("ReminderAgent", "u-1"));
        assert_eq!(retry.ts_ns, 1_763_936_129_001_000_000);
        assert_eq!(retry.seq, 1);
        assert_eq!(retry.payload.to_json()["max_attempts"], 3);
        let error = &out.events[1];
        assert_eq!(error.outcome, Some(Outcome::Error));
        assert_eq!(error.seq, 2);
        let fiber = &out.events[2];
        assert_eq!(fiber.duration_ns, Some(12_500_000));
        assert_eq!(fiber.payload.to_json()["fiber_name"], "digest");
        assert_eq!(fiber.seq, 3);
        // Lines round-trip through the event model's JSON form.
        for e in &out.events {
            assert_eq!(&Event::from_json_line(&e.to_json_line()).unwrap(), e);
        }
        assert_eq!(c.last_seqs()[&AgentRef::new("ReminderAgent", "u-1")], 3);
    }

    #[test]
    fn malformed_input_says_what_is_wrong() {
        let mut c = Converter::default();
        let e = c.convert_str("{").unwrap_err();
        assert!(matches!(e, ConvertError::NotJson(_)), "{e:?}");
        assert!(e.to_string().contains("not JSON"), "{e}");
        let e = c.convert_str("42").unwrap_err();
        assert!(matches!(e, ConvertError::NotObjectOrArray), "{e:?}");
        assert!(e.to_string().contains("object"), "{e}");
        let e = c.convert_str(r#"{"hello":1}"#).unwrap_err();
        assert!(matches!(e, ConvertError::Unrecognised), "{e:?}");
        assert!(e.to_string().contains("type"), "{e}");
        let e = c
            .convert_str(r#"{"type":"rpc","timestamp":1,"payload":{"method":7}}"#)
            .unwrap_err();
        assert!(
            matches!(&e, ConvertError::PayloadMismatch { type_name, .. } if type_name == "rpc"),
            "{e:?}"
        );
        assert!(e.to_string().starts_with("rpc: "), "{e}");
    }

    #[test]
    fn a_line_that_is_not_utf8_is_an_error_naming_its_line() {
        let mut c = Converter::default();
        let e = c.line(7, b"{\"type\":\"rpc\xff\"}").unwrap_err();
        assert_eq!(e.line, 7);
        assert!(
            matches!(e.error, ConvertError::NotUtf8 { valid_up_to: 12 }),
            "{e:?}"
        );
        let text = e.to_string();
        assert!(
            text.starts_with("line 7: not UTF-8") && text.contains("first 12 bytes"),
            "{text}"
        );
        // The converter goes on with the next line.
        let ok = c
            .line(
                8,
                br#"{"type":"rpc","timestamp":1,"payload":{"method":"m"}}"#,
            )
            .unwrap();
        assert_eq!(ok.events.len(), 1);
    }

    #[test]
    fn a_rejected_input_uses_up_no_sequence_number() {
        let mut c = Converter::default();
        let good =
            r#"{"type":"rpc","agent":"A","name":"a","timestamp":1,"payload":{"method":"m"}}"#;
        let bad = r#"{"type":"rpc","agent":"A","name":"a","timestamp":2,"payload":{"method":7}}"#;
        assert_eq!(c.convert_str(good).unwrap().events[0].seq, 1);
        // The first element converts, the second does not: the whole input is rejected.
        assert!(c.convert_str(&format!("[{good},{bad}]")).is_err());
        assert_eq!(c.convert_str(good).unwrap().events[0].seq, 2);
    }

    #[test]
    fn sightline_events_keep_their_numbers_and_others_continue_from_the_archive() {
        let agent = AgentRef::new("A", "a");
        let mut c = Converter::continuing(HashMap::from([(agent.clone(), 41)]));
        let own = Event::new(
            agent.clone(),
            7,
            sightline_event::Payload::default_for(Kind::Rpc),
        );
        let out = c.convert_str(&own.to_json_line()).unwrap();
        assert_eq!(out.events, vec![own]);
        let cf = r#"{"type":"rpc","agent":"A","name":"a","timestamp":1,"payload":{"method":"m","extraKey":1}}"#;
        let out = c.convert_str(cf).unwrap();
        assert_eq!(out.events[0].seq, 42);
        assert_eq!(out.dropped_keys, 1);
    }

    #[test]
    fn blank_lines_are_whitespace_only_utf8() {
        assert!(is_blank(b""));
        assert!(is_blank(b" \t\r"));
        assert!(!is_blank(b"{}"));
        assert!(!is_blank(b"\xff"));
    }
}
