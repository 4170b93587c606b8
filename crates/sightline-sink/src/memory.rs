//! An in-memory sink for tests and for in-process consumers.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use sightline_event::Event;

use crate::{Sink, SinkError};

#[derive(Default)]
struct State {
    events: VecDeque<Event>,
    evicted: u64,
    flushes: u64,
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
    capacity: usize,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Keeps the last `capacity` events it was given; older ones are evicted and counted.
pub struct MemorySink {
    shared: Arc<Shared>,
}

/// Reads what a [`MemorySink`] holds, from any thread.
#[derive(Clone)]
pub struct MemoryHandle {
    shared: Arc<Shared>,
}

impl MemorySink {
    /// A sink keeping up to `capacity` events, and the handle to read them.
    pub fn new(capacity: usize) -> (MemorySink, MemoryHandle) {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
            capacity: capacity.max(1),
        });
        (
            MemorySink {
                shared: shared.clone(),
            },
            MemoryHandle { shared },
        )
    }
}

impl Sink for MemorySink {
    fn write(&mut self, batch: &[Event]) -> Result<(), SinkError> {
        let mut s = self.shared.lock();
        for e in batch {
            if s.events.len() == self.shared.capacity {
                s.events.pop_front();
                s.evicted += 1;
            }
            s.events.push_back(e.clone());
        }
        drop(s);
        self.shared.changed.notify_all();
        Ok(())
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        self.shared.lock().flushes += 1;
        Ok(())
    }
}

impl MemoryHandle {
    /// A copy of the events held, oldest first.
    pub fn events(&self) -> Vec<Event> {
        self.shared.lock().events.iter().cloned().collect()
    }

    /// How many events are held.
    pub fn len(&self) -> usize {
        self.shared.lock().events.len()
    }

    /// Whether no event is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Events evicted to respect the capacity.
    pub fn evicted(&self) -> u64 {
        self.shared.lock().evicted
    }

    /// How many times the sink was flushed.
    pub fn flushes(&self) -> u64 {
        self.shared.lock().flushes
    }

    /// Waits until at least `n` events were received (held plus evicted), up to `timeout`.
    /// Returns whether that happened.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut s = self.shared.lock();
        loop {
            if s.events.len() as u64 + s.evicted >= n as u64 {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            s = match self.shared.changed.wait_timeout(s, deadline - now) {
                Ok((g, _)) => g,
                Err(p) => p.into_inner().0,
            };
        }
    }
}
