//! Helpers shared by this crate's integration tests: a sink that stalls until the test lets
//! it go, and a bounded wait on a condition.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use sightline_event::Event;
use sightline_sink::{Sink, SinkError};

/// A gate that the writes of [`Gate::sink`]s wait on until it is opened.
#[derive(Default)]
pub struct Gate {
    open: Mutex<bool>,
    opened: Condvar,
    writes_started: AtomicU64,
}

impl Gate {
    /// A closed gate.
    pub fn closed() -> Arc<Gate> {
        Arc::default()
    }

    /// A sink whose every write waits for the gate to open.
    pub fn sink(self: &Arc<Self>) -> Box<dyn Sink> {
        Box::new(Gated(self.clone()))
    }

    /// Writes entered so far (stalled or not).
    pub fn writes_started(&self) -> u64 {
        self.writes_started.load(Ordering::SeqCst)
    }

    /// Lets every waiting and future write through.
    pub fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.opened.notify_all();
    }
}

struct Gated(Arc<Gate>);

impl Sink for Gated {
    fn write(&mut self, _: &[Event]) -> Result<(), SinkError> {
        self.0.writes_started.fetch_add(1, Ordering::SeqCst);
        let mut open = self.0.open.lock().unwrap();
        while !*open {
            open = self.0.opened.wait(open).unwrap();
        }
        Ok(())
    }
}

/// Polls `f` until it holds; fails the test if it does not within 10 s.
pub fn wait_until(mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "condition not reached in 10 s");
        std::thread::sleep(Duration::from_millis(5));
    }
}
