//! What the crate reports about its sinks: plain data (counters, states, failure reasons,
//! shutdown reports) and [`StatsView`], the reader a metrics endpoint keeps. It is the bottom
//! of the runner's stack: every layer above (worker, stage, fan-out, pipeline) fills these
//! types, none of them is needed to read them.

use std::sync::{Arc, Mutex};

use sightline_bus::DropCounts;
use smol_str::SmolStr;

/// Why events handed to a sink were not delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FailReason {
    /// The sink returned an error (after retries, for transient ones).
    Error,
    /// The sink panicked on the batch.
    Panic,
    /// The sink had panicked too often and is no longer called.
    SinkDead,
    /// Shutdown's deadline passed before the sink took them.
    ShutdownTimeout,
}

impl FailReason {
    /// Every reason.
    pub const ALL: [FailReason; 4] = [
        FailReason::Error,
        FailReason::Panic,
        FailReason::SinkDead,
        FailReason::ShutdownTimeout,
    ];

    /// The label value used in metrics and reports.
    pub const fn name(self) -> &'static str {
        match self {
            FailReason::Error => "error",
            FailReason::Panic => "panic",
            FailReason::SinkDead => "sink_dead",
            FailReason::ShutdownTimeout => "shutdown_timeout",
        }
    }
}

/// Where a sink's worker is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinkState {
    /// Taking batches.
    Running,
    /// Shutting down: draining what is queued.
    Draining,
    /// Stopped cleanly.
    Stopped,
    /// Panicked `max_consecutive_panics` times in a row; its events are counted as failed.
    Dead,
}

impl SinkState {
    /// The state stored as `self as u8` (in an atomic).
    pub(crate) fn from_u8(v: u8) -> Self {
        match v {
            0 => SinkState::Running,
            1 => SinkState::Draining,
            2 => SinkState::Stopped,
            _ => SinkState::Dead,
        }
    }

    /// The name used in reports.
    pub const fn name(self) -> &'static str {
        match self {
            SinkState::Running => "running",
            SinkState::Draining => "draining",
            SinkState::Stopped => "stopped",
            SinkState::Dead => "dead",
        }
    }
}

/// A sink's counters at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct SinkStats {
    /// The sink's name.
    pub name: SmolStr,
    /// Its worker's state.
    pub state: SinkState,
    /// Events taken from the queue.
    pub received: u64,
    /// Events the sink accepted.
    pub written: u64,
    /// Events not delivered, by reason (index by `FailReason as usize`).
    pub failed: [u64; 4],
    /// Batches handed to the sink (first tries).
    pub batches: u64,
    /// Retries of failed batches.
    pub retries: u64,
    /// Write calls that returned an error.
    pub write_errors: u64,
    /// Calls that panicked.
    pub panics: u64,
    /// Flushes that succeeded.
    pub flushes: u64,
    /// Flushes that failed.
    pub flush_errors: u64,
    /// Total time spent in `write`, in nanoseconds.
    pub write_nanos: u64,
    /// The longest single `write`, in nanoseconds.
    pub write_max_nanos: u64,
    /// Events waiting in the sink's queue.
    pub queued: usize,
    /// The queue's capacity.
    pub capacity: usize,
    /// Events that never reached the sink's worker because a queue on their way was full, by
    /// reason: the sink's own queue's drops, plus those of the redaction stage's queue and the
    /// fan-out's queue in front of it, if any.
    pub dropped: DropCounts,
    /// The last error or panic message, if any.
    pub last_error: Option<String>,
    /// The redaction policy this sink's events pass through.
    pub policy: SmolStr,
    /// Events the policy changed.
    pub events_redacted: u64,
    /// Redactions by (rule or detector, action) for this sink.
    pub redactions: Vec<(SmolStr, SmolStr, u64)>,
}

impl SinkStats {
    /// Events failed for one reason.
    pub fn failed(&self, reason: FailReason) -> u64 {
        self.failed[reason as usize]
    }

    /// Every event that did not reach the sink: dropped before the queue or failed after it.
    pub fn lost(&self) -> u64 {
        self.dropped.total() + self.failed.iter().sum::<u64>()
    }
}

/// What a sink's shutdown achieved.
#[derive(Debug, Clone, PartialEq)]
pub struct ShutdownReport {
    /// The sink's name.
    pub name: SmolStr,
    /// Events not delivered by the deadline: still queued, or taken by a worker that ran out
    /// of time before handing them to the sink (counted as failed, `shutdown_timeout`). A
    /// batch a stuck sink never returned from is not in here: it shows as `received`, neither
    /// written nor failed.
    pub undelivered: u64,
    /// Whether the worker finished (drained, flushed and shut the sink down) in time.
    pub finished: bool,
    /// Final counters.
    pub stats: SinkStats,
}

/// Something that reads the counters of one or more sinks, from any thread.
pub(crate) trait ReadStats: Send + Sync {
    /// The counters now.
    fn stats(&self) -> Vec<SinkStats>;
}

/// Reads every sink's counters from any thread (see [`Pipeline::stats_view`](crate::Pipeline::stats_view)).
#[derive(Clone, Default)]
pub struct StatsView(Arc<Mutex<Vec<Box<dyn ReadStats>>>>);

impl std::fmt::Debug for StatsView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatsView").finish_non_exhaustive()
    }
}

impl StatsView {
    /// Every sink's counters now, as [`Pipeline::stats`](crate::Pipeline::stats) gives them.
    pub fn stats(&self) -> Vec<SinkStats> {
        self.0
            .lock()
            .map(|readers| readers.iter().flat_map(|r| r.stats()).collect())
            .unwrap_or_default()
    }

    /// Adds readers of sinks just started.
    pub(crate) fn extend(&self, readers: impl IntoIterator<Item = Box<dyn ReadStats>>) {
        if let Ok(mut all) = self.0.lock() {
            all.extend(readers);
        }
    }
}
