//! What an archive holds, over a selection: counts by family, kind, outcome and agent class,
//! error rates, the schedules that fail most, sequence gaps (loss), and the state of the
//! archive itself from its manifests (compression, crash recoveries, torn lines).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::ControlFlow;

use serde::Serialize;
use sightline_archive::{Archive, Compression, Query, ReadError};
use sightline_event::{AgentRef, Outcome, Payload};
use smol_str::SmolStr;

/// The archive's segments, from their manifests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Segments {
    /// Segments.
    pub total: u64,
    /// Closed (with a manifest).
    pub closed: u64,
    /// Closed and zstd-compressed.
    pub compressed: u64,
    /// Open (being written, or left open by a crash).
    pub open: u64,
    /// Bytes stored by the closed segments.
    pub stored_bytes: u64,
    /// Their uncompressed size.
    pub raw_bytes: u64,
    /// Closed by crash recovery.
    pub recovered: u64,
    /// Segments in which recovery cut off a torn last line.
    pub torn_lines_truncated: u64,
}

/// One agent class.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ClassStats {
    /// Events.
    pub events: u64,
    /// Distinct agents (counted up to a million).
    pub agents: u64,
    /// Operations (events with an outcome).
    pub operations: u64,
    /// Operations that did not end `ok`.
    pub failed: u64,
    /// `failed / operations`, 0 without operations.
    pub error_rate: f64,
}

/// A schedule callback that errored or retried.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailingSchedule {
    /// The callback.
    pub callback: String,
    /// Terminal errors.
    pub errors: u64,
    /// Retries.
    pub retries: u64,
    /// Completions.
    pub completed: u64,
}

/// What the scan read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Scanned {
    /// Index blocks read.
    pub blocks_read: u64,
    /// Bytes read from disk.
    pub bytes_read: u64,
}

/// The figures of `sightline stats`. Its JSON form is the command's `--format json` report.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Stats {
    /// The archive directory.
    pub archive: String,
    /// Its segments.
    pub segments: Segments,
    /// Events selected.
    pub events: u64,
    /// The earliest one's time (Unix ns).
    pub first_ts_ns: Option<u64>,
    /// The latest one's time (Unix ns).
    pub last_ts_ns: Option<u64>,
    /// Events by family name.
    pub by_family: BTreeMap<&'static str, u64>,
    /// Events by kind name.
    pub by_kind: BTreeMap<&'static str, u64>,
    /// Operations by outcome name.
    pub by_outcome: BTreeMap<&'static str, u64>,
    /// Operations (events with an outcome).
    pub operations: u64,
    /// Operations that did not end `ok`.
    pub failed_operations: u64,
    /// `failed_operations / operations`, 0 without operations.
    pub error_rate: f64,
    /// Per agent class.
    pub by_agent_class: BTreeMap<String, ClassStats>,
    /// Schedules with errors or retries, most errors first.
    pub top_failing_schedules: Vec<FailingSchedule>,
    /// Sequence gaps (0, not counted, when kinds were selected).
    pub seq_gaps: u64,
    /// Events missing in those gaps.
    pub seq_gap_events: u64,
    /// Whether gaps were counted (they are not when kinds were selected).
    #[serde(skip)]
    pub gaps_counted: bool,
    /// What the scan read.
    pub scan: Scanned,
}

fn rate(failed: u64, operations: u64) -> f64 {
    if operations > 0 {
        failed as f64 / operations as f64
    } else {
        0.0
    }
}

#[derive(Default)]
struct Class {
    events: u64,
    operations: u64,
    failed: u64,
    agents: HashSet<SmolStr>,
}

/// The stats of the events `query` selects, with at most `top` failing schedules.
pub fn stats(archive: &Archive, query: &Query, top: usize) -> Result<Stats, ReadError> {
    let mut s = Stats {
        archive: archive.dir().display().to_string(),
        gaps_counted: query.kinds.is_none(),
        ..Stats::default()
    };
    let mut by_class: BTreeMap<SmolStr, Class> = BTreeMap::new();
    // callback -> (terminal errors, retries, completions)
    let mut schedules: HashMap<String, (u64, u64, u64)> = HashMap::new();
    let mut last_seq: HashMap<AgentRef, u64> = HashMap::new();
    let (mut first_ts, mut last_ts) = (u64::MAX, 0u64);
    let scan = archive.scan(query, |e| {
        s.events += 1;
        first_ts = first_ts.min(e.ts_ns);
        last_ts = last_ts.max(e.ts_ns);
        *s.by_family.entry(e.kind().family().name()).or_default() += 1;
        *s.by_kind.entry(e.kind().name()).or_default() += 1;
        let class = by_class.entry(e.agent.class.clone()).or_default();
        class.events += 1;
        if class.agents.len() < 1_000_000 {
            class.agents.insert(e.agent.name.clone());
        }
        if let Some(o) = e.outcome {
            *s.by_outcome.entry(o.name()).or_default() += 1;
            class.operations += 1;
            class.failed += u64::from(o != Outcome::Ok);
        }
        match &e.payload {
            Payload::ScheduleError(p) => {
                schedules.entry(p.callback.to_string()).or_default().0 += 1
            }
            Payload::ScheduleRetry(p) => {
                schedules.entry(p.callback.to_string()).or_default().1 += 1
            }
            Payload::ScheduleComplete(p) => {
                schedules.entry(p.callback.to_string()).or_default().2 += 1
            }
            _ => {}
        }
        if s.gaps_counted {
            if let Some(prev) = last_seq.insert(e.agent.clone(), e.seq) {
                if e.seq > prev.saturating_add(1) {
                    s.seq_gaps += 1;
                    s.seq_gap_events = s.seq_gap_events.saturating_add(e.seq - prev - 1);
                }
            }
        }
        ControlFlow::Continue(())
    })?;
    s.scan = Scanned {
        blocks_read: scan.blocks_read,
        bytes_read: scan.bytes_read,
    };
    if s.events > 0 {
        s.first_ts_ns = Some(first_ts);
        s.last_ts_ns = Some(last_ts);
    }
    let mut failing: Vec<FailingSchedule> = schedules
        .into_iter()
        .filter(|(_, (err, retry, _))| err + retry > 0)
        .map(|(callback, (errors, retries, completed))| FailingSchedule {
            callback,
            errors,
            retries,
            completed,
        })
        .collect();
    failing.sort_by(|a, b| {
        b.errors
            .cmp(&a.errors)
            .then(b.retries.cmp(&a.retries))
            .then(a.callback.cmp(&b.callback))
    });
    failing.truncate(top);
    s.top_failing_schedules = failing;
    s.operations = s.by_outcome.values().sum();
    s.failed_operations = s.operations - s.by_outcome.get("ok").copied().unwrap_or(0);
    s.error_rate = rate(s.failed_operations, s.operations);
    s.by_agent_class = by_class
        .into_iter()
        .map(|(c, cs)| {
            let stats = ClassStats {
                events: cs.events,
                agents: cs.agents.len() as u64,
                operations: cs.operations,
                failed: cs.failed,
                error_rate: rate(cs.failed, cs.operations),
            };
            (c.to_string(), stats)
        })
        .collect();
    // The archive itself: from the manifests.
    let segs = archive.segments();
    let closed: Vec<_> = segs.iter().filter_map(|s| s.manifest.as_ref()).collect();
    s.segments = Segments {
        total: segs.len() as u64,
        closed: closed.len() as u64,
        compressed: closed
            .iter()
            .filter(|m| m.compression == Compression::Zstd)
            .count() as u64,
        open: (segs.len() - closed.len()) as u64,
        stored_bytes: closed.iter().map(|m| m.stored_bytes).sum(),
        raw_bytes: closed.iter().map(|m| m.raw_bytes).sum(),
        recovered: closed.iter().filter(|m| m.recovered).count() as u64,
        torn_lines_truncated: closed.iter().filter(|m| m.torn_bytes_truncated > 0).count() as u64,
    };
    Ok(s)
}
