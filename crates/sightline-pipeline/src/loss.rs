//! What a finished pipeline lost, as data: every event dropped at a queue, failed by a sink,
//! left undelivered at shutdown, or lost by the OTLP exporter, per sink. Commands render it
//! and turn it into their exit code; embedders can assert on it.

use std::time::Duration;

use sightline_otlp::{OtlpStats, OtlpStatsHandle};
use sightline_sink::ShutdownReport;

/// How long [`final_otlp_stats`] waits for the exporter to finish.
const OTLP_IDLE_WAIT: Duration = Duration::from_secs(60);

/// One sink's counts at shutdown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkLoss {
    /// The sink's name.
    pub name: String,
    /// Events its queue took.
    pub received: u64,
    /// Events it wrote.
    pub written: u64,
    /// Events dropped at its queue, all reasons together.
    pub dropped: u64,
    /// Events it failed to write, all reasons together.
    pub failed: u64,
    /// Events still queued or in an unfinished batch when its shutdown deadline passed.
    pub undelivered: u64,
}

impl SinkLoss {
    /// The sink's counts from its shutdown report.
    pub fn from_report(report: &ShutdownReport) -> Self {
        let s = &report.stats;
        Self {
            name: s.name.to_string(),
            received: s.received,
            written: s.written,
            dropped: s.dropped.total(),
            failed: s.failed.iter().sum(),
            undelivered: report.undelivered,
        }
    }

    /// Events this sink lost: dropped, failed or undelivered.
    pub fn lost(&self) -> u64 {
        self.dropped + self.failed + self.undelivered
    }
}

/// Every event a finished pipeline lost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LossSummary {
    /// Each sink's counts, in the order of the shutdown reports.
    pub sinks: Vec<SinkLoss>,
    /// The OTLP exporter's final counters, when it ran.
    pub otlp: Option<OtlpStats>,
}

impl LossSummary {
    /// The loss across `reports`, and, when the OTLP exporter ran, its final counters (this
    /// waits for it to finish, see [`final_otlp_stats`]).
    pub fn new(reports: &[ShutdownReport], otlp: Option<&OtlpStatsHandle>) -> Self {
        Self {
            sinks: reports.iter().map(SinkLoss::from_report).collect(),
            otlp: otlp.map(final_otlp_stats),
        }
    }

    /// Events the sinks lost (dropped, failed or undelivered), summed over them.
    pub fn sinks_lost(&self) -> u64 {
        self.sinks.iter().map(SinkLoss::lost).sum()
    }

    /// Events the OTLP exporter lost, see [`otlp_lost`]; 0 when it did not run.
    pub fn otlp_lost(&self) -> u64 {
        self.otlp.as_ref().map_or(0, otlp_lost)
    }

    /// Every event lost, by the sinks and by the OTLP exporter.
    pub fn lost(&self) -> u64 {
        self.sinks_lost() + self.otlp_lost()
    }
}

/// The exporter's counters once it is done: the sink's shutdown may return while the
/// exporter still drains (its own deadline), so this waits for that, bounded.
pub fn final_otlp_stats(handle: &OtlpStatsHandle) -> OtlpStats {
    handle.wait_idle(OTLP_IDLE_WAIT);
    handle.stats()
}

/// Events the OTLP exporter lost: rejected, given up, left at shutdown, too many for its
/// buffer, and any it still held when it was done (those were never delivered).
pub fn otlp_lost(stats: &OtlpStats) -> u64 {
    stats.lost() + stats.held_events
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sink(name: &str, dropped: u64, failed: u64, undelivered: u64) -> SinkLoss {
        SinkLoss {
            name: name.into(),
            received: 10,
            written: 10 - dropped - failed,
            dropped,
            failed,
            undelivered,
        }
    }

    #[test]
    fn loss_adds_every_way_an_event_can_be_lost() {
        let mut summary = LossSummary {
            sinks: vec![sink("tally", 0, 0, 0), sink("archive", 2, 1, 4)],
            otlp: None,
        };
        assert_eq!(summary.sinks_lost(), 7);
        assert_eq!(summary.lost(), 7);
        summary.otlp = Some(OtlpStats {
            rejected: 1,
            gave_up: 2,
            dropped_shutdown: 3,
            dropped_queue_full: 4,
            held_events: 5,
            delivered: 100,
            ..OtlpStats::default()
        });
        assert_eq!(summary.otlp_lost(), 15);
        assert_eq!(summary.lost(), 22);
    }
}
