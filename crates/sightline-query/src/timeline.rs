//! A session as a timeline: one entry per event (time, sequence number, kind, mark, outcome,
//! duration, detail text, trace ids for nesting), with the sequence's breaks between them —
//! gaps (possible loss), restarts (a new process), going back (duplicates or reordering) — and
//! a summary (failures, gaps, RPC latency percentiles, model tokens, counts by family).

use std::collections::BTreeMap;

use serde::Serialize;
use sightline_event::{Event, Family, Payload};

use crate::detail::{detail, Mark};
use crate::session::Session;

/// One agent's timeline.
#[derive(Debug, Clone, Serialize)]
pub struct Timeline {
    /// The agent, `Class/name`.
    pub agent: String,
    /// Events and sequence breaks, in archive order.
    pub entries: Vec<Entry>,
    /// Figures over the whole timeline.
    pub summary: Summary,
}

/// A line of a timeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "entry", rename_all = "snake_case")]
pub enum Entry {
    /// An event.
    Event(EventEntry),
    /// Sequence numbers skipped: events not in the archive (possible loss). Not reported when
    /// kinds were selected.
    Gap {
        /// The sequence number before the gap.
        after: u64,
        /// The one after it.
        next: u64,
        /// Events missing.
        missing: u64,
    },
    /// The sequence started again at 1: the agent runs in a new process.
    Restart,
    /// The sequence went back (a duplicate, or events out of order).
    WentBack {
        /// The sequence number before.
        from: u64,
        /// The one after.
        to: u64,
    },
}

/// An event in a timeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventEntry {
    /// When (Unix ns).
    pub ts_ns: u64,
    /// The agent's sequence number.
    pub seq: u64,
    /// The kind's name (`schedule:error`).
    pub kind: &'static str,
    /// The kind's family (`schedule`).
    pub family: &'static str,
    /// Failure, warning or plain.
    pub mark: Mark,
    /// How the operation ended, for operations.
    pub outcome: Option<&'static str>,
    /// How long the operation took, for operations.
    pub duration_ns: Option<u64>,
    /// The one-line description (see [`crate::detail::detail`]).
    pub detail: String,
    /// The event's span (W3C, hex), for nesting.
    pub span_id: Option<String>,
    /// Its parent span (W3C, hex), for nesting.
    pub parent_span_id: Option<String>,
}

impl EventEntry {
    /// The entry of one event.
    pub fn of(e: &Event) -> Self {
        EventEntry {
            ts_ns: e.ts_ns,
            seq: e.seq,
            kind: e.kind().name(),
            family: e.kind().family().name(),
            mark: Mark::of(e),
            outcome: e.outcome.map(|o| o.name()),
            duration_ns: e.duration_ns,
            detail: detail(e),
            span_id: e.span_id.map(|s| s.to_string()),
            parent_span_id: e.parent_span_id.map(|s| s.to_string()),
        }
    }
}

/// Figures over a timeline.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Summary {
    /// Events.
    pub events: u64,
    /// Sequence number of the first event.
    pub first_seq: u64,
    /// Sequence number of the last event.
    pub last_seq: u64,
    /// Time of the first event (Unix ns).
    pub first_ts_ns: u64,
    /// Time of the last event (Unix ns).
    pub last_ts_ns: u64,
    /// Events marked as failures.
    pub failures: u64,
    /// Sequence gaps.
    pub gaps: u64,
    /// Events missing in those gaps.
    pub missing: u64,
    /// Times the sequence restarted at 1.
    pub restarts: u64,
    /// RPC latency, when any RPC has a duration.
    pub rpc: Option<Latency>,
    /// Model calls and their tokens, when there were any.
    pub model: Option<ModelUse>,
    /// Events by family name.
    pub by_family: BTreeMap<&'static str, u64>,
}

/// Latency percentiles (nearest rank, see [`percentile`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Latency {
    /// Operations measured.
    pub calls: u64,
    /// Median (ns).
    pub p50_ns: u64,
    /// 99th percentile (ns).
    pub p99_ns: u64,
    /// Slowest (ns).
    pub max_ns: u64,
}

impl Latency {
    /// The percentiles of `durations` (any order); `None` when empty.
    pub fn of(mut durations: Vec<u64>) -> Option<Latency> {
        durations.sort_unstable();
        Some(Latency {
            calls: durations.len() as u64,
            p50_ns: percentile(&durations, 0.5)?,
            p99_ns: percentile(&durations, 0.99)?,
            max_ns: *durations.last()?,
        })
    }
}

/// Model calls and tokens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ModelUse {
    /// Calls.
    pub calls: u64,
    /// Input tokens.
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
}

/// The nearest-rank percentile `p` (0..=1) of `sorted` (ascending): the smallest value with
/// at least `p` of the values at or below it, i.e. the value at rank `ceil(p * n)` (index
/// `ceil(p * n) - 1`, at least the first). `None` when empty.
pub fn percentile(sorted: &[u64], p: f64) -> Option<u64> {
    let n = sorted.len();
    if n == 0 {
        return None;
    }
    // A hair below the exact product, so that float noise (0.29 * 100 = 28.999…96 or
    // 29.000…04) cannot move the rank past a whole number it should land on.
    let rank = (p.clamp(0.0, 1.0) * n as f64 - 1e-9).ceil();
    let index = (rank as usize).clamp(1, n) - 1;
    Some(sorted[index])
}

impl Timeline {
    /// The timeline of a session.
    pub fn of(session: &Session) -> Timeline {
        Timeline::build(
            &session.agent.to_string(),
            &session.events,
            session.kinds_filtered,
        )
    }

    /// The timeline of `events` (one agent's, in archive order). `kinds_filtered`: kinds
    /// were selected, so sequence gaps are expected and not reported.
    pub fn build(agent: &str, events: &[Event], kinds_filtered: bool) -> Timeline {
        let mut entries = Vec::with_capacity(events.len() + 4);
        let mut summary = Summary {
            events: events.len() as u64,
            first_seq: events.first().map_or(0, |e| e.seq),
            last_seq: events.last().map_or(0, |e| e.seq),
            first_ts_ns: events.first().map_or(0, |e| e.ts_ns),
            last_ts_ns: events.last().map_or(0, |e| e.ts_ns),
            ..Summary::default()
        };
        let mut rpc_durations = Vec::new();
        let mut model = ModelUse::default();
        let mut prev: Option<u64> = None;
        for e in events {
            if let Some(p) = prev {
                if e.seq > p.saturating_add(1) && !kinds_filtered {
                    summary.gaps += 1;
                    summary.missing = summary.missing.saturating_add(e.seq - p - 1);
                    entries.push(Entry::Gap {
                        after: p,
                        next: e.seq,
                        missing: e.seq - p - 1,
                    });
                } else if e.seq <= p {
                    if e.seq == 1 {
                        summary.restarts += 1;
                        entries.push(Entry::Restart);
                    } else {
                        entries.push(Entry::WentBack { from: p, to: e.seq });
                    }
                }
            }
            prev = Some(e.seq);
            let entry = EventEntry::of(e);
            summary.failures += u64::from(entry.mark == Mark::Failure);
            if e.kind().family() == Family::Rpc {
                if let Some(d) = e.duration_ns {
                    rpc_durations.push(d);
                }
            }
            if let Payload::ModelCall(m) = &e.payload {
                model.calls += 1;
                model.input_tokens += m.input_tokens;
                model.output_tokens += m.output_tokens;
            }
            *summary.by_family.entry(entry.family).or_default() += 1;
            entries.push(Entry::Event(entry));
        }
        summary.rpc = Latency::of(rpc_durations);
        summary.model = (model.calls > 0).then_some(model);
        Timeline {
            agent: agent.to_owned(),
            entries,
            summary,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sightline_event::{AgentRef, Outcome, Rpc, RpcError};

    #[test]
    fn percentiles_are_nearest_rank() {
        // Two values: the p99 is the larger one, not the smaller (rank ceil(1.98) = 2).
        let two = [8_000_000, 12_300_000];
        assert_eq!(percentile(&two, 0.5), Some(8_000_000));
        assert_eq!(percentile(&two, 0.99), Some(12_300_000));
        let hundred: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&hundred, 0.5), Some(50));
        assert_eq!(percentile(&hundred, 0.99), Some(99));
        assert_eq!(percentile(&hundred, 0.29), Some(29));
        assert_eq!(percentile(&hundred, 1.0), Some(100));
        assert_eq!(percentile(&hundred, 0.0), Some(1));
        let ten: Vec<u64> = (1..=10).collect();
        assert_eq!(percentile(&ten, 0.5), Some(5));
        assert_eq!(percentile(&ten, 0.51), Some(6));
        assert_eq!(percentile(&ten, 0.99), Some(10));
        assert_eq!(percentile(&[7], 0.99), Some(7));
        assert_eq!(percentile(&[], 0.5), None);
    }

    fn rpc(seq: u64, ms: u64, fail: bool) -> Event {
        let a = AgentRef::new("A", "a");
        if fail {
            Event::new(a, seq, RpcError::default())
                .with_outcome(Outcome::Error)
                .with_duration_ns(ms * 1_000_000)
        } else {
            Event::new(a, seq, Rpc::default())
                .with_outcome(Outcome::Ok)
                .with_duration_ns(ms * 1_000_000)
        }
    }

    #[test]
    fn breaks_in_the_sequence_become_entries() {
        let events = [
            rpc(1, 5, false),
            rpc(4, 7, true),
            rpc(3, 1, false),
            rpc(1, 2, false),
        ];
        let t = Timeline::build("A/a", &events, false);
        let shape: Vec<String> = t
            .entries
            .iter()
            .map(|e| match e {
                Entry::Event(e) => format!("{}", e.seq),
                Entry::Gap {
                    after,
                    next,
                    missing,
                } => format!("gap {after}-{next}:{missing}"),
                Entry::Restart => "restart".into(),
                Entry::WentBack { from, to } => format!("back {from}-{to}"),
            })
            .collect();
        assert_eq!(
            shape,
            ["1", "gap 1-4:2", "4", "back 4-3", "3", "restart", "1"]
        );
        let s = &t.summary;
        assert_eq!(
            (s.events, s.failures, s.gaps, s.missing, s.restarts),
            (4, 1, 1, 2, 1)
        );
        assert_eq!(
            s.rpc,
            Some(Latency {
                calls: 4,
                p50_ns: 2_000_000,
                p99_ns: 7_000_000,
                max_ns: 7_000_000
            })
        );
        assert_eq!(s.by_family.get("rpc"), Some(&4));
        assert_eq!(s.model, None);
        // With kinds selected a gap is expected: not reported, not counted.
        let t = Timeline::build("A/a", &events[..2], true);
        assert_eq!(t.entries.len(), 2);
        assert_eq!(t.summary.gaps, 0);
    }
}
