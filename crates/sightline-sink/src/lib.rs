//! # sightline-sink: sinks that live and die well
//!
//! A sink is where events go: an archive, a metrics registry, an OTLP exporter, a test's
//! memory. This crate holds the [`Sink`] trait and the runner that gives every sink its own
//! bounded queue (with its overflow policy) and its own worker thread, so that a sink that is
//! slow, failing or panicking never slows the agents or the other sinks. The runner batches,
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
//!
//! ## The hops an event takes
//!
//! An event leaves the agent's thread through a queue (a subscription on a bus) and reaches
//! the sink on the sink's worker thread; in between there may be a fan-out thread and a
//! redaction stage thread, each behind a queue of its own. Which hops exist depends on how
//! the sinks were started ([`Pipeline::add`], [`Pipeline::add_group`]):
//!
//! ```text
//! A. a policy with one sink (every `Pipeline::add`): 1 thread hop
//!    agent ──▶ [sink queue "<sink>"] ──▶ sink worker "sink-<sink>": redact, batch, write
//!
//! B. a policy with several sinks: 2 thread hops
//!    agent ──▶ [stage queue "policy:<p>"] ──▶ stage "stage-<p>": redact once
//!          ──▶ [sink queue "<sink>"] per sink ──▶ sink worker: batch, write
//!
//! C. several policies started together taking the same events, none with a blocking sink
//!    agent ──▶ [fan-out queue "fanout"] ──▶ fan-out "stage-fanout": share each event
//!          ──▶ then, per policy, A (2 thread hops) or B (3 thread hops) on the fan-out's bus
//!    (a policy with a blocking sink, or a narrower filter, keeps its own queue: A or B)
//! ```
//!
//! | queue | on | capacity | when full |
//! |---|---|---|---|
//! | `fanout` | the agents' bus | the largest of its sinks' `queue_capacity` | `drop_newest` (sinks that block never share one) |
//! | `policy:<p>` | the agents' bus, or the fan-out's | the largest of the policy's sinks' | `drop_newest`, or `block` for the longest `block_timeout_ms` if one of them blocks |
//! | `<sink>` | the agents' bus, the fan-out's, or the stage's | the sink's `queue_capacity` | the sink's `overflow` |
//!
//! An agent only ever touches the first queue of its path. Whatever any queue drops is
//! counted, by reason, against every sink behind it ([`SinkStats::dropped`]). Each event is
//! redacted once per policy before any sink of that policy sees it: on the stage's thread
//! when the policy has several sinks, on the sink's worker when it has one (no stage thread
//! then: one hop fewer, the same guarantee).
//!
//! ## Layers
//!
//! Arrows point one way, from the top: [`Pipeline`] (`pipeline`) → fan-out (`fanout`) →
//! redaction stage (`stage`) → queue-draining thread (`pump`) and sink worker (`worker`) →
//! policy application (`redaction`) → reported data (`stats`); beneath them the runner
//! configuration (`config`), start-up errors (`error`) and the [`Sink`] trait (`sink`). The
//! sinks this crate ships (`memory`, `tally`) depend only on the trait.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod config;
mod error;
mod fanout;
mod memory;
mod pipeline;
mod pump;
mod redaction;
mod sink;
mod stage;
mod stats;
mod tally;
mod worker;

pub use config::{ConfigError, OverflowPolicy, RunnerConfig};
pub use error::SpawnError;
pub use memory::{MemoryHandle, MemorySink};
pub use pipeline::Pipeline;
pub use sink::{Sink, SinkError};
pub use stats::{FailReason, ShutdownReport, SinkState, SinkStats, StatsView};
pub use tally::{Tally, TallyHandle, TallySink};
pub use worker::{SinkHandle, SinkSpec};
