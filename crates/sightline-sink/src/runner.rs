//! The runner: one worker thread per sink, fed by its own subscription.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use std::collections::BTreeMap;

use sightline_bus::{Bus, DropCounts, Filter, Probe, Subscription};
use sightline_event::Event;
use sightline_redact::{PolicyError, Redactor};
use smol_str::SmolStr;

use crate::stage::{shut_down_behind, Feed, Pump, Stage, StageView};
use crate::{ConfigError, RunnerConfig, Sink};

/// Why events handed to a sink were not delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FailReason {
    /// The sink returned an error (after retries, for transient ones).
    Error,
    /// The sink panicked on the batch.
    Panic,
    /// The sink had panicked too often and is no longer called.
    SinkDead,
    /// Shutdown's deadline passed before the sink took them.
    ShutdownTimeout,
}

impl FailReason {
    /// Every reason.
    pub const ALL: [FailReason; 4] = [
        FailReason::Error,
        FailReason::Panic,
        FailReason::SinkDead,
        FailReason::ShutdownTimeout,
    ];

    /// The label value used in metrics and reports.
    pub const fn name(self) -> &'static str {
        match self {
            FailReason::Error => "error",
            FailReason::Panic => "panic",
            FailReason::SinkDead => "sink_dead",
            FailReason::ShutdownTimeout => "shutdown_timeout",
        }
    }
}

/// Where a sink's worker is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinkState {
    /// Taking batches.
    Running,
    /// Shutting down: draining what is queued.
    Draining,
    /// Stopped cleanly.
    Stopped,
    /// Panicked `max_consecutive_panics` times in a row; its events are counted as failed.
    Dead,
}

impl SinkState {
    fn from_u8(v: u8) -> Self {
        match v {
            0 => SinkState::Running,
            1 => SinkState::Draining,
            2 => SinkState::Stopped,
            _ => SinkState::Dead,
        }
    }

    /// The name used in reports.
    pub const fn name(self) -> &'static str {
        match self {
            SinkState::Running => "running",
            SinkState::Draining => "draining",
            SinkState::Stopped => "stopped",
            SinkState::Dead => "dead",
        }
    }
}

/// A sink's counters at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct SinkStats {
    /// The sink's name.
    pub name: SmolStr,
    /// Its worker's state.
    pub state: SinkState,
    /// Events taken from the queue.
    pub received: u64,
    /// Events the sink accepted.
    pub written: u64,
    /// Events not delivered, by reason (index by `FailReason as usize`).
    pub failed: [u64; 4],
    /// Batches handed to the sink (first tries).
    pub batches: u64,
    /// Retries of failed batches.
    pub retries: u64,
    /// Write calls that returned an error.
    pub write_errors: u64,
    /// Calls that panicked.
    pub panics: u64,
    /// Flushes that succeeded.
    pub flushes: u64,
    /// Flushes that failed.
    pub flush_errors: u64,
    /// Total time spent in `write`, in nanoseconds.
    pub write_nanos: u64,
    /// The longest single `write`, in nanoseconds.
    pub write_max_nanos: u64,
    /// Events waiting in the sink's queue.
    pub queued: usize,
    /// The queue's capacity.
    pub capacity: usize,
    /// Events the queue could not take, by reason.
    pub dropped: DropCounts,
    /// The last error or panic message, if any.
    pub last_error: Option<String>,
    /// The redaction policy this sink's events pass through.
    pub policy: SmolStr,
    /// Events the policy changed.
    pub events_redacted: u64,
    /// Redactions by (rule or detector, action) for this sink.
    pub redactions: Vec<(SmolStr, SmolStr, u64)>,
}

impl SinkStats {
    /// Events failed for one reason.
    pub fn failed(&self, reason: FailReason) -> u64 {
        self.failed[reason as usize]
    }

    /// Every event that did not reach the sink: dropped before the queue or failed after it.
    pub fn lost(&self) -> u64 {
        self.dropped.total() + self.failed.iter().sum::<u64>()
    }
}

/// What a sink's shutdown achieved.
#[derive(Debug, Clone, PartialEq)]
pub struct ShutdownReport {
    /// The sink's name.
    pub name: SmolStr,
    /// Events still queued, or in a batch the sink never finished, when the deadline passed.
    pub undelivered: u64,
    /// Whether the worker finished (drained, flushed and shut the sink down) in time.
    pub finished: bool,
    /// Final counters.
    pub stats: SinkStats,
}

/// A sink that could not be started.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    /// Its runner configuration is invalid.
    #[error("sink {sink:?}: {source}")]
    Config {
        /// The sink.
        sink: String,
        /// The offending key and why.
        source: ConfigError,
    },
    /// Its redaction policy does not exist or cannot be built.
    #[error("sink {sink:?}: policy: {message}")]
    Policy {
        /// The sink.
        sink: String,
        /// What is wrong.
        message: String,
    },
    /// The worker thread could not be started.
    #[error("sink {sink:?}: cannot start its worker thread: {source}")]
    Thread {
        /// The sink.
        sink: String,
        /// The OS error.
        source: std::io::Error,
    },
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
    name: SmolStr,
    policy: SmolStr,
    counters: Arc<Counters>,
    probe: Probe,
    control: flume::Sender<Control>,
    shutdown_timeout: Duration,
    thread: Option<thread::JoinHandle<()>>,
}

impl std::fmt::Debug for SinkHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SinkHandle")
            .field("name", &self.name)
            .finish()
    }
}

impl SinkHandle {
    /// Subscribes `sink` to `bus` under `cfg` and starts its worker thread. The sink sees
    /// events as they were emitted: redaction is the job of the policy stage a [`Pipeline`]
    /// puts in front of its sinks.
    pub fn spawn(
        bus: &Bus,
        name: &str,
        sink: Box<dyn Sink>,
        cfg: RunnerConfig,
    ) -> Result<Self, SpawnError> {
        Self::spawn_with_policy(bus, name, sink, cfg, SmolStr::new_static("none"))
    }

    /// Like [`spawn`](Self::spawn), for a sink behind the stage of `policy`.
    pub(crate) fn spawn_with_policy(
        bus: &Bus,
        name: &str,
        sink: Box<dyn Sink>,
        cfg: RunnerConfig,
        policy: SmolStr,
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
            name: name.into(),
            policy,
            counters,
            probe,
            control,
            shutdown_timeout,
            thread: Some(thread),
        })
    }

    /// The sink's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Counters at this moment.
    pub fn stats(&self) -> SinkStats {
        self.view().stats()
    }

    /// A handle that reads this sink's counters from any thread, for as long as it is kept.
    pub(crate) fn view(&self) -> SinkView {
        SinkView {
            name: self.name.clone(),
            policy: self.policy.clone(),
            counters: self.counters.clone(),
            probe: self.probe.clone(),
        }
    }
}

/// Reads one sink's counters from any thread.
#[derive(Clone)]
pub(crate) struct SinkView {
    name: SmolStr,
    policy: SmolStr,
    counters: Arc<Counters>,
    probe: Probe,
}

impl SinkView {
    pub(crate) fn stats(&self) -> SinkStats {
        let c = &self.counters;
        let sub = self.probe.stats();
        SinkStats {
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
            dropped: sub.dropped,
            last_error: c.last_error.lock().ok().and_then(|e| e.clone()),
            policy: self.policy.clone(),
            // Filled in by the policy stage in front of the sink.
            events_redacted: 0,
            redactions: Vec::new(),
        }
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
                // The worker is stuck inside the sink: count what it still holds.
                let queued = self.probe.stats().queued as u64;
                self.counters
                    .fail(FailReason::ShutdownTimeout, queued as usize);
                queued
            }
        };
        if finished {
            if let Some(t) = self.thread.take() {
                let _ = t.join();
            }
        } // else: detach the stuck thread; it ends with the process.
        ShutdownReport {
            name: self.name.clone(),
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
                self.deliver(&buf, None);
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
        let rest = self.sub.close();
        let mut undelivered = 0u64;
        for chunk in rest.chunks(self.cfg.batch_max_events.max(1)) {
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

    /// Hands one batch to the sink with retries; counts the outcome.
    fn deliver(&mut self, batch: &[Event], deadline: Option<Instant>) {
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

// ===== Pipeline =====

/// A sink to start: its name, the sink, and how it is fed.
pub type SinkSpec = (String, Box<dyn Sink>, RunnerConfig);

/// A policy's name and the sinks that named it.
type PolicySinks = (String, Vec<SinkSpec>);

/// A bus and the sinks running on it.
pub struct Pipeline {
    bus: Bus,
    policies: BTreeMap<String, Arc<Redactor>>,
    groups: Vec<Group>,
    views: Arc<Mutex<Vec<StageView>>>,
}

/// Stages started together: behind one fan-out, or each on its own subscription.
struct Group {
    // Declared (so dropped) first: a group dropped without `shutdown` hands what the fan-out
    // held to the stages before they stop.
    fanout: Option<Pump>,
    stages: Vec<Stage>,
}

impl Group {
    fn shutdown(mut self, timeout: Duration) -> Vec<ShutdownReport> {
        let deadline = Instant::now() + timeout;
        // The fan-out first, so what it holds reaches the stages before they close.
        let (stopped, stuck) = match &mut self.fanout {
            Some(f) => f.stop(deadline),
            None => (true, 0),
        };
        let remaining = deadline.saturating_duration_since(Instant::now());
        let stages = std::mem::take(&mut self.stages);
        shut_down_behind(stages, move |s| s.shutdown(remaining), stopped, stuck)
    }
}

/// Reads every sink's counters from any thread (see [`Pipeline::stats_view`]).
#[derive(Clone, Default)]
pub struct StatsView(Arc<Mutex<Vec<StageView>>>);

impl std::fmt::Debug for StatsView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatsView").finish_non_exhaustive()
    }
}

impl StatsView {
    /// Every sink's counters now, as [`Pipeline::stats`] gives them.
    pub fn stats(&self) -> Vec<SinkStats> {
        self.0
            .lock()
            .map(|stages| stages.iter().flat_map(StageView::stats).collect())
            .unwrap_or_default()
    }
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("stages", &self.stages().count())
            .finish()
    }
}

impl Pipeline {
    /// A pipeline with no sinks and the built-in redaction policies.
    pub fn new(bus: Bus) -> Result<Self, PolicyError> {
        Ok(Self::with_policies(
            bus,
            sightline_redact::build_policies(&BTreeMap::new())?,
        ))
    }

    /// A pipeline with no sinks and these redaction policies (see
    /// [`sightline_redact::build_policies`]).
    pub fn with_policies(bus: Bus, policies: BTreeMap<String, Arc<Redactor>>) -> Self {
        Self {
            bus,
            policies,
            groups: Vec::new(),
            views: Arc::default(),
        }
    }

    /// The redaction policies sinks can name.
    pub fn policies(&self) -> &BTreeMap<String, Arc<Redactor>> {
        &self.policies
    }

    /// The bus agents emit on.
    pub fn bus(&self) -> &Bus {
        &self.bus
    }

    /// Starts one sink, with a redaction stage of its own.
    pub fn add(
        &mut self,
        name: &str,
        sink: Box<dyn Sink>,
        cfg: RunnerConfig,
    ) -> Result<(), SpawnError> {
        self.add_group(vec![(name.to_owned(), sink, cfg)])
    }

    /// Starts sinks together: sinks naming the same policy share one redaction stage, so each
    /// event is redacted once per policy, before it fans out to those sinks' own queues. The
    /// stages of several policies that take the same events (and whose sinks never block)
    /// are fed by one subscription on the agents' bus, so an emitting agent offers each event
    /// to one queue, and a fan-out thread shares each event among them.
    pub fn add_group(&mut self, sinks: Vec<SinkSpec>) -> Result<(), SpawnError> {
        let mut groups: BTreeMap<String, Vec<SinkSpec>> = BTreeMap::new();
        for (name, sink, cfg) in sinks {
            if !self.policies.contains_key(&cfg.policy) {
                return Err(SpawnError::Policy {
                    sink: name,
                    message: format!(
                        "unknown policy {:?} (known: {})",
                        cfg.policy,
                        self.policies.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                });
            }
            groups
                .entry(cfg.policy.clone())
                .or_default()
                .push((name, sink, cfg));
        }
        // Policies whose stages take the same events, and whose sinks never block, share one
        // fan-out. A stage with a narrower filter keeps its own subscription (so nobody is
        // charged for drops of events it would not have taken), and so does one with a
        // blocking sink (so it cannot stall the others).
        let mut shared: Vec<(Filter, Vec<PolicySinks>)> = Vec::new();
        let mut alone: Vec<PolicySinks> = Vec::new();
        for (policy, group) in groups {
            let feed = Feed::of(group.iter().map(|(name, _, cfg)| (name.as_str(), cfg)))?;
            if feed.blocks() {
                alone.push((policy, group));
            } else if let Some((_, same)) = shared.iter_mut().find(|(f, _)| f == feed.filter()) {
                same.push((policy, group));
            } else {
                shared.push((feed.filter().clone(), vec![(policy, group)]));
            }
        }
        for (_, policies) in shared {
            if policies.len() == 1 {
                alone.extend(policies);
                continue;
            }
            let feed = Feed::of(
                policies
                    .iter()
                    .flat_map(|(_, group)| group)
                    .map(|(name, _, cfg)| (name.as_str(), cfg)),
            )?;
            let front = Bus::new();
            let fanout = Pump::fanout(&self.bus, front.clone(), &feed)?;
            let stages = self.spawn_stages(&front, policies, Some(fanout.probe()))?;
            self.groups.push(Group {
                fanout: Some(fanout),
                stages,
            });
        }
        if !alone.is_empty() {
            let bus = self.bus.clone();
            let stages = self.spawn_stages(&bus, alone, None)?;
            self.groups.push(Group {
                fanout: None,
                stages,
            });
        }
        Ok(())
    }

    /// Starts a stage per policy on `bus` (behind the fan-out `upstream`, if any).
    fn spawn_stages(
        &self,
        bus: &Bus,
        policies: Vec<PolicySinks>,
        upstream: Option<Probe>,
    ) -> Result<Vec<Stage>, SpawnError> {
        let mut stages = Vec::new();
        for (policy, group) in policies {
            let redactor = self.policies[&policy].clone();
            stages.push(Stage::spawn(bus, redactor, group, upstream.clone())?);
        }
        if let Ok(mut views) = self.views.lock() {
            views.extend(stages.iter().map(Stage::view));
        }
        Ok(stages)
    }

    /// Every sink's counters (drops at its policy stage, and at the fan-out in front of it,
    /// included in `dropped`).
    pub fn stats(&self) -> Vec<SinkStats> {
        self.stages().flat_map(Stage::stats).collect()
    }

    fn stages(&self) -> impl Iterator<Item = &Stage> {
        self.groups.iter().flat_map(|g| &g.stages)
    }

    /// A cloneable, thread-safe reader of every sink's counters — those added so far and
    /// later — that stays valid after shutdown (a metrics endpoint holds one).
    pub fn stats_view(&self) -> StatsView {
        StatsView(self.views.clone())
    }

    /// Moves everything queued at the stages into the sinks and flushes every sink, each within
    /// `timeout`; returns the failures by sink name.
    pub fn flush(&self, timeout: Duration) -> Vec<(String, String)> {
        let mut errors = Vec::new();
        for g in &self.groups {
            let fanned_out = g.fanout.as_ref().is_none_or(|f| f.drain(timeout));
            for s in &g.stages {
                let stage_errors = s.flush(timeout);
                if !fanned_out {
                    errors.extend(
                        s.sink_names()
                            .map(|n| (n, "the policy fan-out did not drain in time".to_owned())),
                    );
                }
                errors.extend(stage_errors);
            }
        }
        errors
    }

    /// Shuts every stage and sink down in parallel within `timeout` and reports on each sink.
    pub fn shutdown(self, timeout: Duration) -> Vec<ShutdownReport> {
        let handles: Vec<_> = self
            .groups
            .into_iter()
            .map(|g| thread::spawn(move || g.shutdown(timeout)))
            .collect();
        handles
            .into_iter()
            .filter_map(|h| h.join().ok())
            .flatten()
            .collect()
    }
}
