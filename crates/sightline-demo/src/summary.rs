//! What a finished demo adds up to, as data: the fleet's own count of what it emitted, what
//! each sink made of it, what the OTLP exporter and the archive did. `sightline demo` renders
//! it as text; [`DemoSummary::to_json`] is the form written to `demo-summary.json`, which
//! scripts and tests read.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::{json, Value};
use sightline_archive::ArchiveStats;
use sightline_event::{Event, Kind};
use sightline_otlp::OtlpStats;
use sightline_sink::{ShutdownReport, Tally};

/// The agent whose session the summary suggests when no failure was seen.
const DEFAULT_SESSION: &str = "SupportAgent/ticket-0";

/// Everything a finished demo counted.
#[derive(Debug, Clone, PartialEq)]
pub struct DemoSummary {
    /// Agents in the fleet.
    pub agents: usize,
    /// Agent classes they were spread over.
    pub classes: usize,
    /// How long the fleet ran (to the moment every agent had stopped).
    pub elapsed: Duration,
    /// Events the fleet emitted, from the agents' own stored sequence numbers (counted apart
    /// from the sinks).
    pub events_emitted: u64,
    /// What the tally sink counted.
    pub tally: Tally,
    /// The latest failures the `recent_failures` sink kept, newest first (at most 5).
    pub latest_failures: Vec<Failure>,
    /// Each sink's shutdown report (its final stats and what it left undelivered).
    pub sinks: Vec<ShutdownReport>,
    /// The OTLP exporter's final counters, when it ran.
    pub otlp: Option<OtlpStats>,
    /// The archive's directory and counters, when it ran.
    pub archive: Option<ArchiveSummary>,
    /// Where `/metrics` was served, when it was.
    pub metrics_addr: Option<SocketAddr>,
    /// Where [`to_json`](Self::to_json) was written: `<data-dir>/demo-summary.json`.
    pub summary_path: PathBuf,
}

/// The archive a demo wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveSummary {
    /// Its directory.
    pub dir: PathBuf,
    /// The writer's counters at the end.
    pub stats: ArchiveStats,
}

/// A failure as the summary shows it: only fields the event model marks safe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The event's kind.
    pub kind: Kind,
    /// The agent, `Class/name`.
    pub agent: String,
    /// The event's sequence number.
    pub seq: u64,
    /// A short description from its safe fields (or its outcome), see [`safe_detail`].
    pub detail: String,
}

impl Failure {
    /// The summary's view of `event`.
    pub fn new(event: &Event) -> Self {
        Self {
            kind: event.kind(),
            agent: event.agent.to_string(),
            seq: event.seq,
            detail: safe_detail(event),
        }
    }
}

// ===== impl DemoSummary =====

impl DemoSummary {
    /// Events dropped at the sinks' queues, all sinks and reasons together.
    pub fn dropped(&self) -> u64 {
        self.sinks.iter().map(|r| r.stats.dropped.total()).sum()
    }

    /// Events left undelivered at shutdown, all sinks together.
    pub fn undelivered(&self) -> u64 {
        self.sinks.iter().map(|r| r.undelivered).sum()
    }

    /// The agent whose session is worth a look: that of the latest failure.
    pub fn session_to_try(&self) -> &str {
        self.latest_failures
            .first()
            .map_or(DEFAULT_SESSION, |f| f.agent.as_str())
    }

    /// The summary as `demo-summary.json` holds it.
    pub fn to_json(&self) -> Value {
        let t = &self.tally;
        json!({
            "agents": self.agents,
            "duration_secs": self.elapsed.as_secs_f64(),
            "events_emitted": self.events_emitted,
            "events_counted": t.total,
            "by_family": t.by_family().iter().map(|(f, n)| (f.name(), *n)).collect::<BTreeMap<_, _>>(),
            "by_kind": Kind::ALL.iter().filter(|k| t.kind(**k) > 0).map(|k| (k.name(), t.kind(*k))).collect::<BTreeMap<_, _>>(),
            "by_outcome": t.by_outcome,
            "errors": t.errors,
            "warnings": t.warnings,
            "failing_schedules": t.failing_schedules,
            "seq_gaps": t.seq_gaps,
            "undelivered": self.undelivered(),
            "otlp": self.otlp,
            "archive": self.archive.as_ref().map(|a| json!({
                "dir": a.dir.display().to_string(),
                "stats": a.stats,
            })),
            "sinks": self.sinks.iter().map(|r| {
                let s = &r.stats;
                json!({
                    "name": s.name.as_str(),
                    "received": s.received,
                    "written": s.written,
                    "dropped": s.dropped.iter().map(|(r, n)| (r.name(), n)).collect::<BTreeMap<_, _>>(),
                    "failed": s.failed.iter().sum::<u64>(),
                    "state": s.state.name(),
                    "policy": s.policy.as_str(),
                    "events_redacted": s.events_redacted,
                    "redactions": s.redactions.iter().map(|(r, a, n)| json!({"rule": r.as_str(), "action": a.as_str(), "count": n})).collect::<Vec<_>>(),
                })
            }).collect::<Vec<_>>(),
        })
    }
}

/// A short description of a failure for the summary, from the fields the event model marks
/// safe (the events arrive redacted, so their payloads may be plain JSON): up to three
/// non-sensitive, non-id fields, else the outcome.
pub fn safe_detail(e: &Event) -> String {
    let payload = e.payload.to_json();
    let safe: Vec<String> = e
        .kind()
        .fields()
        .iter()
        .filter(|f| !f.sensitive && !f.name.ends_with("_id") && f.name != "id")
        .filter_map(|f| match payload.get(f.name)? {
            Value::String(s) => Some(format!("{}={s}", f.name)),
            Value::Number(n) => Some(format!("{}={n}", f.name)),
            _ => None,
        })
        .take(3)
        .collect();
    if safe.is_empty() {
        e.outcome
            .map_or(String::new(), |o| format!("outcome={}", o.name()))
    } else {
        safe.join(" ")
    }
}
