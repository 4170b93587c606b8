//! # sightline-query: the archive as data
//!
//! What a person asks of an archive — one agent's session, its timeline, its state as of an
//! event, counts and error rates over a time window — answered as plain data that the CLI
//! renders as text and the web view as HTML. Nothing here prints or colours: the types are
//! `serde::Serialize` so that any front end can show them, and the per-event
//! [`detail`](detail::detail) text lives here because every front end shows the same one.
//!
//! Layers, bottom up (each module only uses the ones above it in this list):
//! - [`units`]: durations, sizes and cut text as people read them;
//! - [`time`]: `--since`/`--until` forms (RFC 3339, a duration ago, Unix nanoseconds);
//! - [`filter`]: a time window, kinds and an agent as an archive [`Query`];
//! - [`detail`]: the one-line description and the failure/warning mark of an event;
//! - [`session`]: one agent's events, read through the archive's index;
//! - [`timeline`]: a session as entries with gaps, restarts and a summary;
//! - [`state`]: an agent's state rebuilt from its state diffs as of an event;
//! - [`stats`]: counts by family, outcome and class, error rates, failing schedules, loss.
//!
//! ```no_run
//! use sightline_archive::Archive;
//! use sightline_query::{filter::Filter, session, timeline};
//!
//! let archive = Archive::open("sightline-data/archive")?;
//! let agent = session::one_agent("SupportAgent/ticket-4411")?;
//! let query = Filter { since: Some("1h".into()), ..Filter::default() }.query()?;
//! let session = session::read(&archive, &agent, query)?;
//! let timeline = timeline::Timeline::of(&session);
//! println!("{} failures", timeline.summary.failures);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod detail;
pub mod filter;
pub mod session;
pub mod state;
pub mod stats;
pub mod time;
pub mod timeline;
pub mod units;

pub use sightline_archive::{AgentFilter, Query};

pub use detail::Mark;
pub use filter::{Filter, FilterError};
pub use session::{Session, SessionError};
pub use state::{apply_diff, reconstruct, DiffError, Reconstructed, StateError};
pub use stats::Stats;
pub use time::{parse_time, TimeError};
pub use timeline::{Entry, EventEntry, Summary, Timeline};
