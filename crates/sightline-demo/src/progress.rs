//! What a running demo reports as it goes, as data: the library decides *when* something
//! happened (the exporter's target, a tick of the live line, the mid-run deploy), the caller
//! decides how to show it (`sightline demo` draws a line on stderr).

use std::net::SocketAddr;
use std::time::Duration;

use sightline_otlp::Protocol;
use sightline_sink::SinkStats;

/// One thing a running demo reports, in the order they happen.
#[derive(Debug, Clone, PartialEq)]
pub enum Progress {
    /// The OTLP exporter runs and sends to `url`.
    Exporting {
        /// Where logs go.
        url: String,
        /// Over what.
        protocol: Protocol,
    },
    /// `/metrics` is served at `addr`.
    Metrics {
        /// The address it listens on.
        addr: SocketAddr,
    },
    /// The fleet is about to start, with these settings.
    Started {
        /// Agents in the fleet.
        agents: usize,
        /// Most events per second across the fleet.
        rate_per_sec: u64,
        /// How long it runs, in seconds.
        duration_secs: u64,
        /// Fraction of interactions given a failure.
        failure_ratio: f64,
        /// Seed of the clients' choices.
        seed: u64,
    },
    /// The agents' model calls go to this OpenAI-compatible endpoint.
    Model {
        /// The endpoint.
        endpoint: String,
    },
    /// The live numbers, every `[demo] progress_interval_ms`.
    Tick(Tick),
    /// Halfway: the runtime stops as a deploy would (agents hibernate, cron runs are missed).
    DeployStopping,
    /// The runtime is back on the same directory.
    DeployBack {
        /// Agents that have schedules (resumed from their databases).
        resumed: usize,
    },
    /// The fleet stopped (the clients and the agents); the pipeline drains next.
    FleetStopped,
    /// `/metrics` stays up this long after the fleet, for scrapers.
    ServingAfter {
        /// The address it listens on.
        addr: SocketAddr,
        /// How long.
        secs: u64,
    },
}

/// The live numbers of a running demo.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tick {
    /// Since the fleet started.
    pub elapsed: Duration,
    /// Events per second offered since the previous tick.
    pub rate: f64,
    /// Events the fleet has emitted so far (as the tally sink's queue has been offered them).
    pub emitted: u64,
    /// Events the tally sink has written.
    pub tally_written: u64,
    /// Events queued across the sinks.
    pub queued: usize,
    /// Events dropped at the sinks' queues, all sinks and reasons together.
    pub dropped: u64,
    /// Events the sinks failed to write, all together.
    pub failed: u64,
}

impl Tick {
    /// The numbers from the sinks' stats at `elapsed`, at `rate` events per second.
    pub fn new(elapsed: Duration, rate: f64, emitted: u64, sinks: &[SinkStats]) -> Self {
        Self {
            elapsed,
            rate,
            emitted,
            tally_written: sinks
                .iter()
                .find(|s| s.name == "tally")
                .map_or(0, |s| s.written),
            queued: sinks.iter().map(|s| s.queued).sum(),
            dropped: sinks.iter().map(|s| s.dropped.total()).sum(),
            failed: sinks.iter().map(|s| s.failed.iter().sum::<u64>()).sum(),
        }
    }
}
