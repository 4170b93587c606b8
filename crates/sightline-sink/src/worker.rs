//! The sink worker: the one thread that owns a sink, and the last hop of an event.
//!
//! A worker takes batches from the sink's queue (a subscription with the sink's own filter,
//! capacity and overflow policy), applies the sink's redaction policy when no redaction stage
//! sits in front of it, and hands each batch to the sink: retrying transient errors with
//! backoff, isolating panics (a sink that panics too often is declared dead), flushing on an
//! interval and on request, and shutting down within a deadline, counting everything it could
//! not deliver. [`SinkHandle`] is its owner's side: stats, flush, shutdown.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use sightline_bus::{Bus, DropCounts, Probe, Subscription};
use sightline_event::Event;
use smol_str::SmolStr;

use crate::error::SpawnError;
use crate::redaction::Redaction;
use crate::stats::{FailReason, ReadStats, ShutdownReport, SinkState, SinkStats};
use crate::{RunnerConfig, Sink};

/// A sink to start: its name, the sink, and how it is fed.
pub type SinkSpec = (String, Box<dyn Sink>, RunnerConfig);

/// Where a sink's redaction policy runs.
#[derive(Clone)]
pub(crate) enum PolicyAt {
    /// Nowhere: the sink sees events as emitted (reported as policy `none`).
    Nowhere,
    /// On a redaction stage's thread, in front of the sink's queue (shared by the policy's
    /// sinks, so each event is redacted once for all of them).
    Stage(Redaction),
    /// On the sink's own worker thread, just before each batch is first written: the policy
    /// has no other sink, so this is still once per event, without a thread hop.
    Worker(Redaction),
}

/// Where a sink sits: where its policy runs, and the queues in front of its own (a redaction
/// stage's, a fan-out's) whose drops never reached it either.
#[derive(Clone)]
pub(crate) struct Placement {
    /// Where the policy runs.
    pub(crate) policy: PolicyAt,
    /// The queues in front of the sink's own.
    pub(crate) upstream: Vec<Probe>,
}

#[derive(Default)]
struct Counters {
    state: AtomicU8,
    received: AtomicU64,
    written: AtomicU64,
    failed: [AtomicU64; 4],
    batches: AtomicU64,
    retries: AtomicU64,
    write_errors: AtomicU64,
    panics: AtomicU64,
    flushes: AtomicU64,
    flush_errors: AtomicU64,
    write_nanos: AtomicU64,
    write_max_nanos: AtomicU64,
    last_error: Mutex<Option<String>>,
}

impl Counters {
    fn fail(&self, reason: FailReason, n: usize) {
        self.failed[reason as usize].fetch_add(n as u64, Ordering::Relaxed);
    }

    fn set_error(&self, message: String) {
        if let Ok(mut e) = self.last_error.lock() {
            *e = Some(message);
        }
    }

    fn set_state(&self, s: SinkState) {
        self.state.store(s as u8, Ordering::Relaxed);
    }
}

enum Control {
    Flush(flume::Sender<Result<(), String>>),
    Shutdown(Instant, flume::Sender<u64>),
}

/// The owner's handle on a running sink: stats, flush, shutdown.
pub struct SinkHandle {
    view: SinkView,
    control: flume::Sender<Control>,
    shutdown_timeout: Duration,
    thread: Option<thread::JoinHandle<()>>,
}

impl std::fmt::Debug for SinkHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SinkHandle")
            .field("name", &self.view.name)
            .finish()
    }
}

impl SinkHandle {
    /// Subscribes `sink` to `bus` under `cfg` and starts its worker thread. The sink sees
    /// events as they were emitted: redaction is the job of the policy a
    /// [`Pipeline`](crate::Pipeline) applies for its sinks.
    pub fn spawn(
        bus: &Bus,
        name: &str,
        sink: Box<dyn Sink>,
        cfg: RunnerConfig,
    ) -> Result<Self, SpawnError> {
        let placement = Placement {
            policy: PolicyAt::Nowhere,
            upstream: Vec::new(),
        };
        Self::spawn_at(bus, name, sink, cfg, placement)
    }

    /// Like [`spawn`](Self::spawn), for a sink placed as `placement` says.
    pub(crate) fn spawn_at(
        bus: &Bus,
        name: &str,
        sink: Box<dyn Sink>,
        cfg: RunnerConfig,
        placement: Placement,
    ) -> Result<Self, SpawnError> {
        let opts = cfg
            .subscribe_options(name)
            .map_err(|source| SpawnError::Config {
                sink: name.to_owned(),
                source,
            })?;
        let sub = bus.subscribe(opts);
        let probe = sub.probe();
        let counters = Arc::new(Counters::default());
        let (control, control_rx) = flume::unbounded();
        let shutdown_timeout = Duration::from_millis(cfg.shutdown_timeout_ms);
        let worker = Worker {
            sink,
            sub,
            cfg,
            redaction: match &placement.policy {
                PolicyAt::Worker(r) => Some(r.clone()),
                PolicyAt::Nowhere | PolicyAt::Stage(_) => None,
            },
            counters: counters.clone(),
            control: control_rx,
            consecutive_panics: 0,
        };
        let thread = thread::Builder::new()
            .name(format!("sink-{name}"))
            .spawn(move || worker.run())
            .map_err(|source| SpawnError::Thread {
                sink: name.to_owned(),
                source,
            })?;
        Ok(Self {
            view: SinkView {
                name: name.into(),
                counters,
                probe,
                placement,
            },
            control,
            shutdown_timeout,
            thread: Some(thread),
        })
    }

    /// The sink's name.
    pub fn name(&self) -> &str {
        &self.view.name
    }

    /// Counters at this moment.
    pub fn stats(&self) -> SinkStats {
        self.view.read()
    }

    /// A handle that reads this sink's counters from any thread, for as long as it is kept.
    pub(crate) fn view(&self) -> SinkView {
        self.view.clone()
    }
}

/// Reads one sink's counters from any thread, with what the queues and the policy in front of
/// it did to its events.
#[derive(Clone)]
pub(crate) struct SinkView {
    name: SmolStr,
    counters: Arc<Counters>,
    probe: Probe,
    placement: Placement,
}

impl SinkView {
    fn read(&self) -> SinkStats {
        let c = &self.counters;
        let sub = self.probe.stats();
        let mut dropped = sub.dropped;
        for probe in &self.placement.upstream {
            let up = probe.stats().dropped;
            dropped = DropCounts(std::array::from_fn(|i| dropped.0[i] + up.0[i]));
        }
        let mut stats = SinkStats {
            name: self.name.clone(),
            state: SinkState::from_u8(c.state.load(Ordering::Relaxed)),
            received: c.received.load(Ordering::Relaxed),
            written: c.written.load(Ordering::Relaxed),
            failed: std::array::from_fn(|i| c.failed[i].load(Ordering::Relaxed)),
            batches: c.batches.load(Ordering::Relaxed),
            retries: c.retries.load(Ordering::Relaxed),
            write_errors: c.write_errors.load(Ordering::Relaxed),
            panics: c.panics.load(Ordering::Relaxed),
            flushes: c.flushes.load(Ordering::Relaxed),
            flush_errors: c.flush_errors.load(Ordering::Relaxed),
            write_nanos: c.write_nanos.load(Ordering::Relaxed),
            write_max_nanos: c.write_max_nanos.load(Ordering::Relaxed),
            queued: sub.queued,
            capacity: sub.capacity,
            dropped,
            last_error: c.last_error.lock().ok().and_then(|e| e.clone()),
            policy: SmolStr::new_static("none"),
            events_redacted: 0,
            redactions: Vec::new(),
        };
        match &self.placement.policy {
            PolicyAt::Nowhere => {}
            PolicyAt::Stage(r) | PolicyAt::Worker(r) => r.fill(&mut stats),
        }
        stats
    }
}

impl ReadStats for SinkView {
    fn stats(&self) -> Vec<SinkStats> {
        vec![self.read()]
    }
}

impl SinkHandle {
    /// Asks the worker to write what is queued and flush the sink; waits up to `timeout`.
    pub fn flush(&self, timeout: Duration) -> Result<(), String> {
        let (tx, rx) = flume::bounded(1);
        self.control
            .send(Control::Flush(tx))
            .map_err(|_| "sink worker has stopped".to_owned())?;
        rx.recv_timeout(timeout)
            .map_err(|_| format!("flush did not finish within {timeout:?}"))?
    }

    /// Stops taking new events, drains the queue into the sink, flushes and shuts it down,
    /// all within `timeout`; what could not be delivered by then is counted and reported.
    pub fn shutdown(mut self, timeout: Duration) -> ShutdownReport {
        self.stop(timeout)
    }

    fn stop(&mut self, timeout: Duration) -> ShutdownReport {
        let deadline = Instant::now() + timeout;
        let (tx, rx) = flume::bounded(1);
        let sent = self.control.send(Control::Shutdown(deadline, tx)).is_ok();
        // Grace for the worker to report after its own deadline checks.
        let reply = if sent {
            rx.recv_deadline(deadline + Duration::from_millis(250)).ok()
        } else {
            None
        };
        let finished = reply.is_some();
        let undelivered = match reply {
            Some(n) => n,
            None => {
                // The worker is stuck inside the sink: count what is still queued for it.
                let queued = self.view.probe.stats().queued as u64;
                self.view
                    .counters
                    .fail(FailReason::ShutdownTimeout, queued as usize);
                queued
            }
        };
        // Either way the thread is done with here: joined, or (stuck inside the sink) detached
        // to end with the process, rather than waited for again when the handle drops.
        let thread = self.thread.take();
        if finished {
            if let Some(t) = thread {
                let _ = t.join();
            }
        }
        ShutdownReport {
            name: self.view.name.clone(),
            undelivered,
            finished,
            stats: self.stats(),
        }
    }
}

impl Drop for SinkHandle {
    fn drop(&mut self) {
        if self.thread.is_some() {
            let timeout = self.shutdown_timeout;
            let _ = self.stop(timeout);
        }
    }
}

struct Worker {
    sink: Box<dyn Sink>,
    sub: Subscription,
    cfg: RunnerConfig,
    /// The sink's policy, when this worker applies it (see [`PolicyAt::Worker`]).
    redaction: Option<Redaction>,
    counters: Arc<Counters>,
    control: flume::Receiver<Control>,
    consecutive_panics: u32,
}

/// How often the worker looks at its control channel while idle.
const CONTROL_POLL: Duration = Duration::from_millis(50);

impl Worker {
    fn run(mut self) {
        let flush_every = Duration::from_millis(self.cfg.flush_interval_ms);
        let mut next_flush = Instant::now() + flush_every;
        let mut buf: Vec<Event> = Vec::with_capacity(self.cfg.batch_max_events);
        let mut dirty = false;
        loop {
            match self.control.try_recv() {
                Ok(Control::Flush(reply)) => {
                    self.drain_available(&mut buf);
                    let _ = reply.send(self.flush());
                    dirty = false;
                    next_flush = Instant::now() + flush_every;
                    continue;
                }
                Ok(Control::Shutdown(deadline, reply)) => {
                    let undelivered = self.shutdown(deadline, &mut buf);
                    let _ = reply.send(undelivered);
                    return;
                }
                Err(flume::TryRecvError::Disconnected) => {
                    // The handle is gone without a shutdown: drain with the configured deadline.
                    let deadline =
                        Instant::now() + Duration::from_millis(self.cfg.shutdown_timeout_ms);
                    self.shutdown(deadline, &mut buf);
                    return;
                }
                Err(flume::TryRecvError::Empty) => {}
            }
            let now = Instant::now();
            let wait = next_flush.saturating_duration_since(now).min(CONTROL_POLL);
            buf.clear();
            if self
                .sub
                .recv_batch(&mut buf, self.cfg.batch_max_events, wait)
                > 0
            {
                self.deliver(&mut buf, None);
                dirty = true;
            }
            if Instant::now() >= next_flush {
                if dirty {
                    let _ = self.flush();
                    dirty = false;
                }
                next_flush = Instant::now() + flush_every;
            }
        }
    }

    /// Writes everything queued right now.
    fn drain_available(&mut self, buf: &mut Vec<Event>) {
        loop {
            buf.clear();
            if self.sub.drain(buf, self.cfg.batch_max_events) == 0 {
                return;
            }
            self.deliver(buf, None);
        }
    }

    fn shutdown(&mut self, deadline: Instant, buf: &mut Vec<Event>) -> u64 {
        self.counters.set_state(SinkState::Draining);
        buf.clear();
        // Unsubscribe and take everything still queued.
        let mut rest = self.sub.close();
        let mut undelivered = 0u64;
        for chunk in rest.chunks_mut(self.cfg.batch_max_events.max(1)) {
            if Instant::now() >= deadline {
                undelivered += chunk.len() as u64;
                self.counters
                    .received
                    .fetch_add(chunk.len() as u64, Ordering::Relaxed);
                self.counters.fail(FailReason::ShutdownTimeout, chunk.len());
                continue;
            }
            self.deliver(chunk, Some(deadline));
        }
        let dead = self.counters.state.load(Ordering::Relaxed) == SinkState::Dead as u8;
        if !dead {
            let _ = self.call("shutdown", |s| s.shutdown());
            self.counters.set_state(SinkState::Stopped);
        }
        undelivered
    }

    fn flush(&mut self) -> Result<(), String> {
        match self.call("flush", |s| s.flush()) {
            Some(Ok(())) => {
                self.counters.flushes.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Some(Err(e)) => {
                self.counters.flush_errors.fetch_add(1, Ordering::Relaxed);
                let msg = format!("flush failed: {e}");
                self.counters.set_error(msg.clone());
                Err(msg)
            }
            None => Err("sink is dead or panicked while flushing".to_owned()),
        }
    }

    /// Calls into the sink, isolating panics. `None` when it panicked or is dead.
    fn call<T>(&mut self, what: &str, f: impl FnOnce(&mut dyn Sink) -> T) -> Option<T> {
        if self.counters.state.load(Ordering::Relaxed) == SinkState::Dead as u8 {
            return None;
        }
        let sink = &mut self.sink;
        match catch_unwind(AssertUnwindSafe(|| f(sink.as_mut()))) {
            Ok(v) => {
                self.consecutive_panics = 0;
                Some(v)
            }
            Err(payload) => {
                self.consecutive_panics += 1;
                self.counters.panics.fetch_add(1, Ordering::Relaxed);
                let msg = payload
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "non-string panic".to_owned());
                self.counters
                    .set_error(format!("panicked in {what}: {msg}"));
                if self.consecutive_panics >= self.cfg.max_consecutive_panics {
                    self.counters.set_state(SinkState::Dead);
                }
                None
            }
        }
    }

    /// Hands one batch to the sink with retries, redacting it first if this worker applies the
    /// sink's policy (every path to the sink goes through here); counts the outcome.
    fn deliver(&mut self, batch: &mut [Event], deadline: Option<Instant>) {
        if let Some(r) = &self.redaction {
            r.apply(batch);
        }
        let batch: &[Event] = batch;
        let n = batch.len();
        self.counters
            .received
            .fetch_add(n as u64, Ordering::Relaxed);
        self.counters.batches.fetch_add(1, Ordering::Relaxed);
        let mut backoff = Duration::from_millis(self.cfg.retry_backoff_ms);
        let mut attempt = 0u32;
        loop {
            if self.counters.state.load(Ordering::Relaxed) == SinkState::Dead as u8 {
                self.counters.fail(FailReason::SinkDead, n);
                return;
            }
            let start = Instant::now();
            let result = self.call("write", |s| s.write(batch));
            let nanos = start.elapsed().as_nanos().min(u64::MAX as u128) as u64;
            self.counters
                .write_nanos
                .fetch_add(nanos, Ordering::Relaxed);
            self.counters
                .write_max_nanos
                .fetch_max(nanos, Ordering::Relaxed);
            match result {
                Some(Ok(())) => {
                    self.counters.written.fetch_add(n as u64, Ordering::Relaxed);
                    return;
                }
                None => {
                    let dead = self.counters.state.load(Ordering::Relaxed) == SinkState::Dead as u8;
                    self.counters.fail(
                        if dead {
                            FailReason::SinkDead
                        } else {
                            FailReason::Panic
                        },
                        n,
                    );
                    return;
                }
                Some(Err(e)) => {
                    self.counters.write_errors.fetch_add(1, Ordering::Relaxed);
                    self.counters.set_error(e.to_string());
                    let out_of_time = deadline.is_some_and(|d| Instant::now() + backoff >= d);
                    if !e.is_transient() || attempt >= self.cfg.max_retries || out_of_time {
                        self.counters.fail(FailReason::Error, n);
                        return;
                    }
                    attempt += 1;
                    self.counters.retries.fetch_add(1, Ordering::Relaxed);
                    thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
            }
        }
    }
}
