//! # sightline-demo: the demo as a library
//!
//! `sightline demo` shows the whole of Sightline at work: a fleet of real agents on the
//! reference runtime (SQLite per agent, schedules, fibers, MCP, approvals, workflows,
//! connections and email; see [`fleet`]), played by simulated clients with injected failures,
//! through the configured pipeline (tally, recent failures, archive, Prometheus, OTLP), with
//! the runtime restarted halfway as a deploy would. This crate runs it and returns what it
//! counted as data ([`DemoSummary`]), reporting as it goes ([`Progress`]); the binary only
//! parses flags and renders. Tests and embedders run the same demo without a subprocess.
//!
//! ```no_run
//! use std::path::Path;
//! use sightline_demo::{fleet::Tools, run, DemoOptions, Progress};
//! use sightline_pipeline::Config;
//!
//! let mut options = DemoOptions::new(Tools { command: "sightline".into() });
//! options.duration_secs = Some(3);
//! options.agents = Some(30);
//! let summary = run(Config::default(), &options, Path::new("demo-data"), |p| {
//!     if let Progress::Tick(t) = p {
//!         eprintln!("{:.0} ev/s, {} emitted", t.rate, t.emitted);
//!     }
//! })?;
//! assert_eq!(summary.tally.total, summary.events_emitted);
//! # Ok::<(), sightline_demo::DemoError>(())
//! ```

mod error;
pub mod fleet;
mod progress;
mod run;
mod summary;

pub use error::DemoError;
pub use progress::{Progress, Tick};
pub use run::{run, DemoOptions, SUMMARY_FILE};
pub use summary::{safe_detail, ArchiveSummary, DemoSummary, Failure};
