//! The synchronization primitives the bus's interest protocol uses: std's, or loom's when the
//! `loom` feature model-checks that protocol.

#[cfg(feature = "loom")]
pub(crate) use loom::sync::{
    atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    Arc, Mutex, MutexGuard,
};
#[cfg(not(feature = "loom"))]
pub(crate) use std::sync::{
    atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    Arc, Mutex, MutexGuard,
};
