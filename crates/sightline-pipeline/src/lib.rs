//! # sightline-pipeline: from a configuration to a running pipeline
//!
//! Everything that feeds events to sinks (`sightline demo`, `ingest`, `replay`, a
//! long-running service, a program embedding Sightline) starts the same way: read
//! `sightline.toml` (or take the embedded defaults), compile the redaction policies, open the
//! configured sinks (tally, recent failures, archive, Prometheus, OTLP) on a bus, register the
//! pipeline's health and the OTLP exporter's counters as metrics, perhaps serve `/metrics`;
//! and at the end, account for every event lost. This crate is that sequence, so each of
//! them runs the same sinks with the same policies. Rendering what it returns is the
//! caller's business.
//!
//! - [`Config`]: the configuration file (unknown keys refused; errors name the key), with
//!   [`Config::load`], [`Config::parse`] and [`Config::validate`].
//! - [`assemble`]: the configured sinks, running on a [`Bus`](sightline_bus::Bus), as an
//!   [`Assembled`] with handles on what they hold; [`Select`] picks the sinks.
//! - [`serve_metrics`]: the `/metrics` endpoint, with the configured bearer token.
//! - [`LossSummary`]: what a finished pipeline lost, per sink and in the OTLP exporter.
//!
//! ```
//! use std::time::Duration;
//!
//! use sightline_bus::Bus;
//! use sightline_event::Rpc;
//! use sightline_pipeline::{assemble, Config, Select};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let data_dir = std::env::temp_dir().join(format!("sightline-pipeline-doc-{}", std::process::id()));
//! let config = Config::parse(
//!     r#"
//!     [archive]
//!     dir = "events"
//!     compression = "none"
//!
//!     [prometheus]
//!     enabled = false
//!     "#,
//! )?;
//! let bus = Bus::new();
//! let running = assemble(&config, &data_dir, &bus, Select::All)?;
//! let tally = running.tally.clone().expect("the tally sink always runs");
//!
//! let agent = bus.emitter("SupportAgent", "ticket-1");
//! for method in ["lookup", "reply", "close"] {
//!     agent.emit(|| Rpc { method: method.into(), ..Rpc::default() });
//! }
//!
//! let finished = running.finish(Duration::from_secs(10));
//! assert_eq!(finished.loss.lost(), 0);
//! assert_eq!(tally.snapshot().total, 3);
//! let archive = sightline_archive::Archive::open(config.archive_dir(&data_dir))?;
//! let last = archive.last_seqs()?;
//! assert_eq!(last.values().copied().collect::<Vec<_>>(), [3]);
//! # std::fs::remove_dir_all(&data_dir)?;
//! # Ok(())
//! # }
//! ```

mod assemble;
mod config;
mod endpoint;
mod error;
mod loss;
mod otlp_metrics;

pub use assemble::{assemble, Assembled, Finished, Select};
pub use config::{Config, DemoConfig, SinksConfig, SINK_NAMES};
pub use endpoint::{bearer_token, serve_metrics};
pub use error::{ConfigError, PipelineError};
pub use loss::{final_otlp_stats, otlp_lost, LossSummary, SinkLoss};
pub use otlp_metrics::OtlpCollector;
