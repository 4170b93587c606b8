//! What one event says, in one line: the detail text after its kind (`sendDigest#sch-1
//! attempt=1 lateness=40.0ms`) and its mark (a failure, a warning). Every front end shows the
//! same words for the same event, so they are made here, once; colour and columns are the
//! front end's.

use std::fmt::Write as _;

use serde::Serialize;
use sightline_event::{Event, Kind, Outcome, Severity};

use crate::units::{bytes, cut, duration};

/// How much an event stands out in a timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mark {
    /// A failure: severity error or worse, or an operation that ended in error, timeout or
    /// rejection.
    Failure,
    /// A warning (a retry, an interruption, a rejected state).
    Warning,
    /// Nothing to flag.
    Plain,
}

impl Mark {
    /// The mark of an event.
    pub fn of(e: &Event) -> Mark {
        if is_failure(e) {
            Mark::Failure
        } else if e.severity == Severity::Warn {
            Mark::Warning
        } else {
            Mark::Plain
        }
    }
}

/// Whether an event is a failure worth highlighting.
pub fn is_failure(e: &Event) -> bool {
    e.severity >= Severity::Error
        || matches!(
            e.outcome,
            Some(Outcome::Error | Outcome::Timeout | Outcome::Rejected)
        )
}

fn scalar(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        serde_json::Value::Array(items) => {
            let parts: Option<Vec<String>> = items.iter().map(scalar).collect();
            parts.map(|p| p.join(","))
        }
        _ => None,
    }
}

/// The fields that name what an event is about, in the order they lead its detail.
const LEADS: [&str; 14] = [
    "method",
    "callback",
    "fiber_name",
    "server_name",
    "tool_name",
    "workflow_name",
    "action",
    "job",
    "trigger",
    "connection_id",
    "request_id",
    "approval_id",
    "server_id",
    "workflow_id",
];
const IDS: [&str; 4] = ["id", "fiber_id", "tool_call_id", "workflow_id"];
const UNITS_MS: [&str; 7] = [
    "lateness_ms",
    "backoff_ms",
    "downtime_ms",
    "wait_ms",
    "idle_ms",
    "hibernated_ms",
    "age_ms",
];

/// A one-line description of an event's payload, outcome and duration. Long free text is cut
/// to keep lines readable.
pub fn detail(e: &Event) -> String {
    let payload = e.payload.to_json();
    let empty = serde_json::Map::new();
    let obj = payload.as_object().unwrap_or(&empty);
    let mut out = String::new();
    let mut used: Vec<&str> = Vec::new();
    if let Some(lead) = LEADS
        .iter()
        .find(|k| obj.get(**k).and_then(scalar).is_some())
    {
        out += &obj.get(*lead).and_then(scalar).unwrap_or_default();
        used.push(lead);
        if let Some(id) = IDS
            .iter()
            .find(|k| **k != *lead && obj.get(**k).and_then(scalar).is_some())
        {
            let _ = write!(
                out,
                "#{}",
                obj.get(*id).and_then(scalar).unwrap_or_default()
            );
            used.push(id);
        }
    }
    if e.kind() == Kind::StateUpdate {
        let version = obj.get("version").and_then(|v| v.as_u64()).unwrap_or(0);
        let paths = obj
            .get("changed_paths")
            .and_then(scalar)
            .unwrap_or_default();
        let size = obj.get("size_bytes").and_then(|v| v.as_u64()).unwrap_or(0);
        let _ = write!(out, "v{version} {paths} ({})", bytes(size));
        if let Some(diff) = obj.get("diff") {
            let _ = write!(out, "  {}", diff_summary(diff));
        }
        used.extend(["version", "changed_paths", "size_bytes", "diff"]);
    }
    if e.kind() == Kind::ModelCall {
        let get = |k| obj.get(k).and_then(scalar).unwrap_or_default();
        let _ = write!(
            out,
            "{}/{} tokens in {} out {}",
            get("provider"),
            get("model"),
            get("input_tokens"),
            get("output_tokens")
        );
        used.extend(["provider", "model", "input_tokens", "output_tokens"]);
    }
    for (k, v) in obj {
        if used.contains(&k.as_str()) {
            continue;
        }
        let Some(text) = scalar(v) else { continue };
        if !out.is_empty() {
            out.push(' ');
        }
        if UNITS_MS.contains(&k.as_str()) {
            if let Some(ms) = v.as_u64() {
                let name = k.trim_end_matches("_ms");
                let _ = write!(out, "{name}={}", duration(ms.saturating_mul(1_000_000)));
                continue;
            }
        }
        let text = cut(&text, 80);
        if k == "error" || k == "reason" {
            let _ = write!(out, "{k}: {text}");
        } else {
            let _ = write!(out, "{k}={text}");
        }
    }
    if let Some(o) = e.outcome {
        let _ = write!(out, "  [{}", o.name());
        if let Some(d) = e.duration_ns {
            let _ = write!(out, " {}", duration(d));
        }
        out.push(']');
    } else if let Some(d) = e.duration_ns {
        let _ = write!(out, "  [{}]", duration(d));
    }
    out
}

/// `replace /status=412, add /tags/-=…`, or what the redaction left.
pub fn diff_summary(diff: &serde_json::Value) -> String {
    match diff.as_array() {
        Some(ops) => {
            let parts: Vec<String> = ops
                .iter()
                .map(|op| {
                    let name = op.get("op").and_then(|v| v.as_str()).unwrap_or("?");
                    let path = op.get("path").and_then(|v| v.as_str()).unwrap_or("?");
                    match op.get("value") {
                        Some(v) => format!("{name} {path}={}", cut(&v.to_string(), 40)),
                        None => format!("{name} {path}"),
                    }
                })
                .collect();
            cut(&parts.join(", "), 100)
        }
        None => format!("diff {}", cut(&diff.to_string(), 40)),
    }
}
