//! The runtime's settings ([`RuntimeConfig`]): read by the host (mailboxes, directories) and
//! by each instance (idle timeout, state limit, dispatch reports), so they sit below both.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The runtime's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RuntimeConfig {
    /// Where the agents' databases live (`<data_dir>/<class>/<name>.sqlite`).
    pub data_dir: PathBuf,
    /// An instance idle this long hibernates (memory released, state kept), in milliseconds.
    pub idle_hibernate_ms: u64,
    /// Largest state, serialized, in bytes; a bigger update is refused (`state:rejected`).
    pub state_max_bytes: u64,
    /// Inputs waiting for one instance; past it callers get an `Overloaded` error.
    pub mailbox_capacity: usize,
    /// An interrupted fiber older than this is given up (`fiber:recovery:skipped`,
    /// `max_age_exceeded`), in milliseconds.
    pub fiber_max_age_ms: u64,
    /// An input that waited in the mailbox this long before its turn is reported
    /// (`job:slow_dispatch`), in milliseconds.
    pub slow_dispatch_ms: u64,
    /// Inputs waiting in one mailbox that trigger `job:backlog_warning` (once, until the
    /// backlog falls below half of it).
    pub backlog_warning_inputs: usize,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("agents"),
            idle_hibernate_ms: 30_000,
            state_max_bytes: 1024 * 1024,
            mailbox_capacity: 1024,
            fiber_max_age_ms: 24 * 3600 * 1000,
            slow_dispatch_ms: 1000,
            backlog_warning_inputs: 256,
        }
    }
}
