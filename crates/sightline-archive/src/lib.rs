//! # sightline-archive: the archive an engineer reaches for at 3 a.m.
//!
//! A sink that appends every (redacted) event as one line of JSON to rotating segment files,
//! and the reader behind `sightline tail`, `session`, `stats`, `verify` and `replay`.
//!
//! - **Crash-safe.** Lines are appended whole; a failed write is cut back. After a `kill -9`
//!   the next [`ArchiveWriter::open`] truncates a torn last line (and counts it), closes the
//!   segment the crash left open, and removes leftovers of interrupted steps. What was synced
//!   is never lost; the fsync policy ([`FsyncPolicy`]) says when that is.
//! - **Fast to find things in.** Each closed segment has a manifest (time range, counts) and an
//!   index (blocks of lines; per agent, the blocks holding its events), so one agent's session
//!   reads a few blocks instead of the archive.
//! - **Small.** Closed segments are compressed with zstd, one frame per block (`zstdcat` reads
//!   them whole, the reader decompresses only what it needs); retention by age and size.
//! - **Private.** Files are 0600, directories 0700; one writer per directory (a lock file).
//!
//! ```
//! use std::ops::ControlFlow;
//! use sightline_archive::{Archive, ArchiveConfig, ArchiveWriter, Query, AgentFilter};
//! use sightline_event::{AgentRef, Event, Rpc};
//! use sightline_sink::Sink;
//!
//! let dir = std::env::temp_dir().join(format!("sightline-doc-{}", std::process::id()));
//! let mut writer = ArchiveWriter::open(&dir, ArchiveConfig::default()).unwrap();
//! let agent = AgentRef::new("Support", "ticket-4411");
//! let rpc = Rpc { method: "getTicket".into(), ..Default::default() };
//! writer.write(&[Event::new(agent.clone(), 1, rpc)]).unwrap();
//! writer.shutdown().unwrap();
//!
//! let archive = Archive::open(&dir).unwrap();
//! let query = Query { agent: Some(AgentFilter::Exact(agent)), ..Default::default() };
//! let mut seen = 0;
//! archive.scan(&query, |_event| { seen += 1; ControlFlow::Continue(()) }).unwrap();
//! assert_eq!(seen, 1);
//! # std::fs::remove_dir_all(&dir).unwrap();
//! ```
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod config;
#[doc(hidden)]
pub mod fuzzing;
pub mod otlp_json;
mod reader;
pub mod segment;
mod verify;
mod writer;

use std::path::PathBuf;

pub use config::{ArchiveConfig, Compression, FsyncPolicy, LineFormat};
pub use reader::{
    read_open_from, AgentFilter, Archive, Follower, Query, ReadError, ScanStats, SealedSegment,
    Segment,
};
pub use verify::{verify, Problem, VerifyReport};
pub use writer::{ArchiveStats, ArchiveStatsHandle, ArchiveWriter, LOCK_FILE};

/// Why the archive could not be opened or written.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// A configuration value makes no sense.
    #[error("archive.{key}: {message}")]
    Config {
        /// The offending key under `[archive]`.
        key: String,
        /// What is wrong with it.
        message: String,
    },
    /// Another writer holds the directory.
    #[error("archive directory {dir} is in use by another writer (its LOCK file is held)")]
    Locked {
        /// The directory.
        dir: PathBuf,
    },
    /// A file operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}
