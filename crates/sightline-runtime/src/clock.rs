//! The one clock the runtime persists: wall-clock Unix time. Schedules, approvals, fibers and
//! hibernation all store times from it, so every module reads it through these two functions.

use std::time::{SystemTime, UNIX_EPOCH};

/// The wall clock, Unix nanoseconds (0 before 1970).
pub(crate) fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// The wall clock, Unix milliseconds (the unit schedules and approvals are stored in).
pub(crate) fn now_ms() -> u64 {
    now_ns() / 1_000_000
}
