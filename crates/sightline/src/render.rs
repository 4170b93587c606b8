//! Rendering events for people: one-line details, durations, sizes, times, colour.

use std::fmt::Write as _;
use std::time::{Duration, UNIX_EPOCH};

use sightline_event::{Event, Kind, Outcome, Severity};

/// Whether an event is a failure worth highlighting.
pub fn is_failure(e: &Event) -> bool {
    e.severity >= Severity::Error
        || matches!(
            e.outcome,
            Some(Outcome::Error | Outcome::Timeout | Outcome::Rejected)
        )
}

/// The margin marker of an event line: `!` a failure, `~` a warning (a retry, a rejection),
/// blank otherwise.
pub fn marker(e: &Event) -> &'static str {
    if is_failure(e) {
        "!"
    } else if e.severity == Severity::Warn {
        "~"
    } else {
        " "
    }
}

/// A rendered line, coloured by what [`marker`] says.
pub fn paint_line(e: &Event, line: String, paint: Paint) -> String {
    match marker(e) {
        "!" => paint.fail(&line),
        "~" => paint.warn(&line),
        _ => line,
    }
}

/// `850µs`, `12.3ms`, `1.20s`, `3m05s`.
pub fn duration(ns: u64) -> String {
    if ns < 1_000 {
        format!("{ns}ns")
    } else if ns < 1_000_000 {
        format!("{}µs", ns / 1_000)
    } else if ns < 1_000_000_000 {
        format!("{:.1}ms", ns as f64 / 1e6)
    } else if ns < 60_000_000_000 {
        format!("{:.2}s", ns as f64 / 1e9)
    } else {
        let s = ns / 1_000_000_000;
        format!("{}m{:02}s", s / 60, s % 60)
    }
}

/// `512 B`, `1.2 KiB`, `3.4 MiB`, `1.1 GiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = UNITS[0];
    for u in &UNITS[1..] {
        if v < 1024.0 {
            break;
        }
        v /= 1024.0;
        unit = u;
    }
    format!("{v:.1} {unit}")
}

/// `1,234,567`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// RFC 3339 with microseconds, UTC.
pub fn timestamp(ts_ns: u64) -> String {
    humantime::format_rfc3339_micros(UNIX_EPOCH + Duration::from_nanos(ts_ns)).to_string()
}

/// `22:15:29.123456` (the time of day of [`timestamp`]).
pub fn time_of_day(ts_ns: u64) -> String {
    let t = timestamp(ts_ns);
    t.get(11..26).unwrap_or(&t).to_owned()
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

/// `text` cut to `max` characters with an ellipsis.
pub fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut s: String = text.chars().take(max.saturating_sub(1)).collect();
    s.push('…');
    s
}

/// ANSI colour, only when asked.
#[derive(Debug, Clone, Copy)]
pub struct Paint(pub bool);

impl Paint {
    /// Red, bold.
    pub fn fail(self, s: &str) -> String {
        if self.0 {
            format!("\x1b[1;31m{s}\x1b[0m")
        } else {
            s.to_owned()
        }
    }

    /// Yellow.
    pub fn warn(self, s: &str) -> String {
        if self.0 {
            format!("\x1b[33m{s}\x1b[0m")
        } else {
            s.to_owned()
        }
    }

    /// Dim.
    pub fn dim(self, s: &str) -> String {
        if self.0 {
            format!("\x1b[2m{s}\x1b[0m")
        } else {
            s.to_owned()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_read_well() {
        assert_eq!(duration(850_000), "850µs");
        assert_eq!(duration(12_340_000), "12.3ms");
        assert_eq!(duration(1_200_000_000), "1.20s");
        assert_eq!(duration(185_000_000_000), "3m05s");
        assert_eq!(bytes(1300), "1.3 KiB");
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(cut("abcdef", 4), "abc…");
        assert_eq!(time_of_day(1_763_936_129_123_456_789), "22:15:29.123456");
    }
}
