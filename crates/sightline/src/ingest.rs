//! `sightline ingest`: events from stdin through the configured pipeline — Sightline JSONL,
//! or Cloudflare Agents observability events as a Tail Worker receives them.
//!
//! Each stdin line may be:
//! - a Sightline event (the event model's JSON form), kept as it is;
//! - a Tail Worker `TraceItem` (`{"diagnosticsChannelEvents": [...], ...}`), or an array of
//!   them (what a Tail Worker's `tail(events)` handler receives);
//! - one `diagnosticsChannelEvents` entry (`{"channel", "timestamp", "message"}`);
//! - one Cloudflare `ObservabilityEvent` (`{"type", "agent", "name", "payload", "timestamp"}`).
//!
//! Cloudflare events are mapped onto the event model: `type` is the kind (the names are the
//! same), `agent`/`name` the agent, `timestamp` (ms) the time; camelCase payload keys become
//! the model's snake_case fields, `elapsedMs`/`durationMs` the duration, an `error` the
//! outcome. What the anchor lacks is filled in here: a time-ordered id, and a per-agent
//! sequence number in the order events arrive. Types Sightline does not model are counted and
//! skipped.

use std::collections::{BTreeMap, HashMap};
use std::io::BufRead;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use serde_json::{Map, Value};
use sightline_bus::Bus;
use sightline_event::{AgentRef, Event, EventId, Kind, Outcome, Payload, SCHEMA_VERSION};

use crate::config::Config;
use crate::pipeline::{self, Select};
use crate::render;

/// Flags of `sightline ingest`.
#[derive(Debug, clap::Args)]
pub struct IngestArgs {
    /// Count malformed lines and go on, instead of stopping at the first one.
    #[arg(long)]
    skip_invalid: bool,
}

/// What one input line held.
#[derive(Debug, Default)]
pub struct Converted {
    /// Events ready for the pipeline.
    pub events: Vec<Event>,
    /// Cloudflare types the event model does not have.
    pub unknown_types: Vec<String>,
    /// Payload keys that have no field in the model (dropped).
    pub dropped_keys: u64,
}

/// Turns Cloudflare observability events into Sightline events, numbering each agent's
/// events in arrival order.
#[derive(Debug, Default)]
pub struct Converter {
    seq: HashMap<AgentRef, u64>,
}

impl Converter {
    /// A converter continuing each agent's sequence from `last` (what the archive holds), so
    /// a second ingest of the same agents does not reuse numbers.
    pub fn continuing(last: HashMap<AgentRef, u64>) -> Self {
        Self { seq: last }
    }

    /// Converts one input line.
    pub fn line(&mut self, line: &str) -> Result<Converted, String> {
        let value: Value = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
        let mut out = Converted::default();
        self.value(value, &mut out)?;
        Ok(out)
    }

    fn value(&mut self, value: Value, out: &mut Converted) -> Result<(), String> {
        match value {
            Value::Array(items) => {
                for item in items {
                    self.value(item, out)?;
                }
                Ok(())
            }
            Value::Object(obj) => {
                if obj.contains_key("v") && obj.contains_key("id") && obj.contains_key("seq") {
                    let event = Event::from_json_value(Value::Object(obj))
                        .map_err(|e| format!("invalid Sightline event: {e}"))?;
                    out.events.push(event);
                    Ok(())
                } else if let Some(entries) = obj.get("diagnosticsChannelEvents") {
                    let entries = entries
                        .as_array()
                        .ok_or("diagnosticsChannelEvents is not an array")?;
                    for entry in entries {
                        self.channel_entry(entry, out)?;
                    }
                    Ok(())
                } else if obj.contains_key("channel") && obj.contains_key("message") {
                    self.channel_entry(&Value::Object(obj), out)
                } else if obj.contains_key("type") {
                    self.observability_event(&obj, None, out)
                } else {
                    Err("neither a Sightline event, a Tail Worker TraceItem, a diagnostics channel entry, nor an observability event (no \"type\")".into())
                }
            }
            _ => Err("expected a JSON object or array".into()),
        }
    }

    fn channel_entry(&mut self, entry: &Value, out: &mut Converted) -> Result<(), String> {
        let message = entry
            .get("message")
            .and_then(Value::as_object)
            .ok_or("diagnostics channel entry without a message object")?;
        let fallback_ts = entry.get("timestamp").and_then(Value::as_f64);
        self.observability_event(message, fallback_ts, out)
    }

    fn observability_event(
        &mut self,
        obj: &Map<String, Value>,
        fallback_ts_ms: Option<f64>,
        out: &mut Converted,
    ) -> Result<(), String> {
        let type_name = obj
            .get("type")
            .and_then(Value::as_str)
            .ok_or("observability event without a string \"type\"")?;
        let Some(kind) = Kind::from_name(type_name) else {
            out.unknown_types.push(type_name.to_owned());
            return Ok(());
        };
        let ts_ms = obj
            .get("timestamp")
            .and_then(Value::as_f64)
            .or(fallback_ts_ms)
            .ok_or("observability event without a timestamp")?;
        let ts_ns = ms_to_ns(ts_ms);
        let text = |key: &str, default: &str| {
            obj.get(key)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .unwrap_or(default)
                .to_owned()
        };
        let agent = AgentRef::new(text("agent", "unknown"), text("name", "-"));
        let empty = Map::new();
        let given = obj
            .get("payload")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        let mut payload = match Payload::default_for(kind).to_json() {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        let fields: Vec<&str> = kind.fields().iter().map(|f| f.name).collect();
        let mut duration_ns = None;
        let mut failed = false;
        for (key, value) in given {
            let snake = snake_case(key);
            match snake.as_str() {
                "elapsed_ms" | "duration_ms" => {
                    duration_ns = value.as_f64().map(ms_to_ns);
                    continue;
                }
                "error" if !value.is_null() && value != "" => failed = true,
                _ => {}
            }
            // The anchor's `type` (of a schedule) is our `schedule_type`.
            let name = if snake == "type" && fields.contains(&"schedule_type") {
                "schedule_type".to_owned()
            } else {
                snake
            };
            if fields.contains(&name.as_str()) {
                payload.insert(name, stringify_error(value));
            } else {
                out.dropped_keys += 1;
            }
        }
        let payload = Payload::from_json(kind, Value::Object(payload))
            .map_err(|e| format!("{type_name}: payload does not fit the event model: {e}"))?;
        let seq = self.seq.entry(agent.clone()).or_insert(0);
        *seq += 1;
        let mut event = Event::new(agent, *seq, payload);
        event.schema_version = SCHEMA_VERSION;
        event.ts_ns = ts_ns;
        event.id = EventId::generate(ts_ns);
        event.duration_ns = duration_ns;
        if failed {
            // Also raises the severity to error.
            event.set_outcome(Outcome::Error);
        } else if duration_ns.is_some() {
            event.set_outcome(Outcome::Ok);
        }
        out.events.push(event);
        Ok(())
    }
}

/// Milliseconds (possibly fractional) to nanoseconds, without losing the whole part to
/// floating point (epoch milliseconds times 10^6 exceed f64's exact integers).
fn ms_to_ns(ms: f64) -> u64 {
    let ms = ms.max(0.0);
    let whole = ms.trunc();
    (whole as u64)
        .saturating_mul(1_000_000)
        .saturating_add(((ms - whole) * 1e6).round() as u64)
}

/// Errors arrive as strings or as `{message, ...}` objects; the model holds text.
fn stringify_error(v: &Value) -> Value {
    match v {
        Value::Object(o) => o
            .get("message")
            .cloned()
            .unwrap_or_else(|| Value::String(v.to_string())),
        other => other.clone(),
    }
}

/// `maxAttempts` → `max_attempts`, `fiberId` → `fiber_id`.
fn snake_case(key: &str) -> String {
    let mut out = String::with_capacity(key.len() + 4);
    for (i, c) in key.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

pub fn run(config: &Config, data_dir: &Path, args: IngestArgs) -> anyhow::Result<ExitCode> {
    let bus = Bus::new();
    // Reading a file is not an agent: wait for room rather than drop.
    let assembled = pipeline::assemble(config, data_dir, &bus, Select::AllLossless)?;
    // Continue sequence numbers from what the archive already holds.
    let archive_dir = config.archive_dir(data_dir);
    let last = if config.archive.enabled && archive_dir.is_dir() {
        sightline_archive::Archive::open(&archive_dir)?.last_seqs()?
    } else {
        HashMap::new()
    };
    let mut converter = Converter::continuing(last);
    let stdin = std::io::stdin().lock();
    let (mut lines, mut events, mut invalid, mut dropped_keys) = (0u64, 0u64, 0u64, 0u64);
    let mut unknown: BTreeMap<String, u64> = BTreeMap::new();
    let mut first_invalid: Vec<String> = Vec::new();
    let mut failure = None;
    for (n, line) in stdin.lines().enumerate() {
        let line_no = n + 1;
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        lines += 1;
        match converter.line(&line) {
            Ok(c) => {
                events += c.events.len() as u64;
                dropped_keys += c.dropped_keys;
                for t in c.unknown_types {
                    *unknown.entry(t).or_default() += 1;
                }
                bus.publish_batch(c.events);
            }
            Err(e) if args.skip_invalid => {
                invalid += 1;
                if first_invalid.len() < 5 {
                    first_invalid.push(format!("line {line_no}: {e}"));
                }
            }
            Err(e) => {
                failure = Some(format!("stdin line {line_no}: {e} (use --skip-invalid to count and skip malformed lines)"));
                break;
            }
        }
    }
    let reports = assembled.pipeline.shutdown(Duration::from_secs(60));
    eprintln!(
        "ingest: {} lines, {} events into the pipeline, {} invalid lines skipped, {} unknown-type events skipped, {} payload keys without a model field dropped",
        render::thousands(lines),
        render::thousands(events),
        invalid,
        unknown.values().sum::<u64>(),
        dropped_keys
    );
    for e in &first_invalid {
        eprintln!("  skipped {e}");
    }
    if !unknown.is_empty() {
        eprintln!(
            "  unknown types: {}",
            unknown
                .iter()
                .map(|(t, n)| format!("{t} ({n})"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let lost = pipeline::report_sinks(&reports) + pipeline::report_otlp(assembled.otlp.as_ref());
    if let Some((dir, _)) = &assembled.archive {
        eprintln!("  archive: {}", dir.display());
    }
    if let Some(f) = failure {
        anyhow::bail!(f);
    }
    Ok(pipeline::exit_code(lost))
}

#[cfg(test)]
mod tests {
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
        let out = c.line(&item).unwrap();
        assert_eq!(out.events.len(), 3);
        assert_eq!(out.unknown_types, vec!["chat:recovery:brand_new"]);
        let retry = &out.events[0];
        assert_eq!(retry.kind(), Kind::ScheduleRetry);
        assert_eq!(retry.agent, AgentRef::new("ReminderAgent", "u-1"));
        assert_eq!(retry.ts_ns, 1_763_936_129_001_000_000);
        assert_eq!(retry.payload.to_json()["max_attempts"], 3);
        let error = &out.events[1];
        assert_eq!(error.outcome, Some(Outcome::Error));
        assert_eq!(error.seq, 2);
        let fiber = &out.events[2];
        assert_eq!(fiber.duration_ns, Some(12_500_000));
        assert_eq!(fiber.payload.to_json()["fiber_name"], "digest");
        // Lines round-trip through the event model's JSON form.
        for e in &out.events {
            assert_eq!(&Event::from_json_line(&e.to_json_line()).unwrap(), e);
        }
    }

    #[test]
    fn malformed_input_says_what_is_wrong() {
        let mut c = Converter::default();
        assert!(c.line("{").unwrap_err().contains("not JSON"));
        assert!(c.line("42").unwrap_err().contains("object"));
        assert!(c.line(r#"{"hello":1}"#).unwrap_err().contains("type"));
        let e = c
            .line(r#"{"type":"rpc","timestamp":1,"payload":{"method":7}}"#)
            .unwrap_err();
        assert!(e.contains("rpc"), "{e}");
    }
}
