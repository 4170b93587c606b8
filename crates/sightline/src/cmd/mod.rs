//! One module per subcommand: each parses its own flags (a `clap::Args` struct) and renders
//! what the libraries return; the work itself is in the crates (`sightline-pipeline`,
//! `sightline-ingest`, `sightline-runtime`, ...). `report` renders what a finished pipeline
//! lost, for every command that feeds one.
//!
//! `read` holds what the archive-reading commands (`tail`, `session`, `stats`, `replay`)
//! share.

pub mod check_config;
pub mod demo;
pub mod ingest;
pub mod mcp_server;
pub mod read;
pub mod redact;
pub mod replay;
pub mod report;
pub mod schema;
pub mod session;
pub mod stats;
pub mod tail;
pub mod verify;
