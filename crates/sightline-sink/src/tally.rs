//! A sink that counts: by kind, family, outcome, agent class and severity, plus per-agent
//! sequence gaps and the schedules that fail most. The demo's summary is read from it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use sightline_event::{Event, Kind, Payload, Severity, KIND_COUNT};
use smol_str::SmolStr;

use crate::{Sink, SinkError};

/// Most distinct agent classes and failing callbacks tracked; the rest fold into `"other"`.
const MAX_KEYS: usize = 1000;
/// Most agents whose sequence numbers are tracked for gap detection.
const MAX_AGENTS: usize = 100_000;

/// Counts at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tally {
    /// Events counted.
    pub total: u64,
    /// By kind, indexed by `Kind::index()`.
    pub by_kind: Vec<u64>,
    /// By outcome name (`ok`, `error`, ...); events without an outcome are not counted here.
    pub by_outcome: HashMap<&'static str, u64>,
    /// By agent class (bounded; excess folded into `"other"`).
    pub by_class: HashMap<SmolStr, u64>,
    /// Events at `warn` and above.
    pub warnings: u64,
    /// Events at `error` and above.
    pub errors: u64,
    /// Terminal schedule failures (`schedule:error`) by callback (bounded).
    pub failing_schedules: HashMap<SmolStr, u64>,
    /// Missing sequence numbers seen across agents: events lost before this sink.
    pub seq_gaps: u64,
    /// Distinct agents seen (up to the tracking bound).
    pub agents: usize,
}

impl Tally {
    /// Count for one kind.
    pub fn kind(&self, kind: Kind) -> u64 {
        self.by_kind.get(kind.index()).copied().unwrap_or(0)
    }

    /// Counts per family, in family order.
    pub fn by_family(&self) -> Vec<(sightline_event::Family, u64)> {
        sightline_event::Family::ALL
            .iter()
            .map(|f| (*f, f.kinds().map(|k| self.kind(k)).sum()))
            .collect()
    }
}

struct State {
    tally: Tally,
    last_seq: HashMap<(SmolStr, SmolStr), u64>,
}

/// Counts every event it is given.
pub struct TallySink {
    shared: Arc<Mutex<State>>,
}

/// Reads a [`TallySink`]'s counts from any thread.
#[derive(Clone)]
pub struct TallyHandle {
    shared: Arc<Mutex<State>>,
}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn bump(map: &mut HashMap<SmolStr, u64>, key: &SmolStr) {
    if let Some(v) = map.get_mut(key) {
        *v += 1;
    } else if map.len() < MAX_KEYS {
        map.insert(key.clone(), 1);
    } else {
        *map.entry(SmolStr::new_static("other")).or_default() += 1;
    }
}

impl TallySink {
    /// A counting sink and the handle to read it.
    pub fn new() -> (TallySink, TallyHandle) {
        let shared = Arc::new(Mutex::new(State {
            tally: Tally {
                by_kind: vec![0; KIND_COUNT],
                ..Tally::default()
            },
            last_seq: HashMap::new(),
        }));
        (
            TallySink {
                shared: shared.clone(),
            },
            TallyHandle { shared },
        )
    }
}

impl Sink for TallySink {
    fn write(&mut self, batch: &[Event]) -> Result<(), SinkError> {
        let mut s = lock(&self.shared);
        let State { tally, last_seq } = &mut *s;
        for e in batch {
            tally.total += 1;
            tally.by_kind[e.kind().index()] += 1;
            if let Some(o) = e.outcome {
                *tally.by_outcome.entry(o.name()).or_default() += 1;
            }
            bump(&mut tally.by_class, &e.agent.class);
            if e.severity >= Severity::Warn {
                tally.warnings += 1;
            }
            if e.severity >= Severity::Error {
                tally.errors += 1;
            }
            if let Payload::ScheduleError(p) = &e.payload {
                bump(&mut tally.failing_schedules, &p.callback);
            }
            let key = (e.agent.class.clone(), e.agent.name.clone());
            let tracked = last_seq.len();
            match last_seq.get_mut(&key) {
                Some(last) => {
                    if e.seq > *last + 1 {
                        tally.seq_gaps += e.seq - *last - 1;
                    }
                    *last = (*last).max(e.seq);
                }
                None if tracked < MAX_AGENTS => {
                    // The first event seen from an agent starts its sequence; an agent's
                    // first event is seq 1, so anything above that was lost before us.
                    tally.seq_gaps += e.seq.saturating_sub(1);
                    last_seq.insert(key, e.seq);
                }
                None => {}
            }
        }
        tally.agents = last_seq.len();
        Ok(())
    }
}

impl TallyHandle {
    /// The counts now.
    pub fn snapshot(&self) -> Tally {
        lock(&self.shared).tally.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sightline_event::{AgentRef, Outcome, ScheduleError};

    #[test]
    fn counts_kinds_outcomes_and_gaps() {
        let (mut sink, handle) = TallySink::new();
        let a = AgentRef::new("Support", "t1");
        let err = |seq| {
            Event::new(
                a.clone(),
                seq,
                ScheduleError {
                    callback: "digest".into(),
                    ..Default::default()
                },
            )
            .with_outcome(Outcome::Error)
        };
        sink.write(&[err(1), err(2), err(5)]).unwrap();
        let t = handle.snapshot();
        assert_eq!(t.total, 3);
        assert_eq!(t.kind(Kind::ScheduleError), 3);
        assert_eq!(t.by_outcome["error"], 3);
        assert_eq!(t.failing_schedules["digest"], 3);
        assert_eq!(t.seq_gaps, 2);
        assert_eq!(t.errors, 3);
        assert_eq!(t.agents, 1);
    }
}
