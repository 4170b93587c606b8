//! # sightline-sink: sinks that live and die well
//!
//! A sink is where events go: an archive, a metrics registry, an OTLP exporter, a test's
//! memory. This crate holds the [`Sink`] trait and the runner that gives every sink its own
//! subscription (bounded queue, overflow policy) and its own worker thread, so that a sink that
//! is slow, failing or panicking never slows the agents or the other sinks. The runner batches,
//! retries transient errors with backoff, flushes on an interval and on request, shuts down
//! within a deadline (draining what it can and reporting what it could not deliver), and keeps
//! counters of everything: received, written, failed by reason, retries, panics, latency.
//!
//! ```
//! use std::time::Duration;
//! use sightline_bus::Bus;
//! use sightline_event::Rpc;
//! use sightline_sink::{MemorySink, Pipeline, RunnerConfig};
//!
//! let bus = Bus::new();
//! let mut pipeline = Pipeline::new(bus.clone()).unwrap();
//! let (sink, memory) = MemorySink::new(1000);
//! pipeline.add("memory", Box::new(sink), RunnerConfig::default()).unwrap();
//!
//! let agent = bus.emitter("Support", "ticket-4411");
//! agent.emit(|| Rpc { method: "getTicket".into(), ..Default::default() });
//!
//! let reports = pipeline.shutdown(Duration::from_secs(5));
//! assert_eq!(reports[0].undelivered, 0);
//! assert_eq!(memory.events().len(), 1);
//! ```
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod config;
mod memory;
mod runner;
mod stage;
mod tally;

pub use config::{ConfigError, OverflowPolicy, RunnerConfig};
pub use memory::{MemoryHandle, MemorySink};
pub use runner::{
    FailReason, Pipeline, ShutdownReport, SinkHandle, SinkSpec, SinkState, SinkStats, SpawnError,
    StatsView,
};
pub use tally::{Tally, TallyHandle, TallySink};

use sightline_event::Event;

/// Why a sink could not take a batch.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// Worth trying again (a timeout, a full disk that may drain, a collector restarting):
    /// the runner retries the batch with backoff.
    #[error("transient: {0}")]
    Transient(String),
    /// Retrying will not help (bad configuration, a rejected payload): the batch is counted
    /// as failed.
    #[error("{0}")]
    Permanent(String),
    /// An I/O error; retried when its kind suggests it may pass.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

impl SinkError {
    /// Whether the runner should retry.
    pub fn is_transient(&self) -> bool {
        match self {
            SinkError::Transient(_) => true,
            SinkError::Permanent(_) => false,
            SinkError::Io(e) => matches!(
                e.kind(),
                std::io::ErrorKind::Interrupted
                    | std::io::ErrorKind::TimedOut
                    | std::io::ErrorKind::WouldBlock
                    | std::io::ErrorKind::ConnectionRefused
                    | std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::StorageFull
            ),
        }
    }
}

/// Something events are delivered to. Its methods run on the sink's own worker thread, one at
/// a time, so a sink needs no locking of its own.
pub trait Sink: Send + 'static {
    /// Takes a batch, in emit order per agent. `Ok` means every event in it is delivered.
    fn write(&mut self, batch: &[Event]) -> Result<(), SinkError>;

    /// Pushes buffered data out (fsync, send). Called on the flush interval, on request, and
    /// before shutdown.
    fn flush(&mut self) -> Result<(), SinkError> {
        Ok(())
    }

    /// Releases resources after the last batch. The default flushes.
    fn shutdown(&mut self) -> Result<(), SinkError> {
        self.flush()
    }
}
