//! The redaction stage: one per policy, in front of the sinks that use it; and the fan-out in
//! front of the stages.
//!
//! The stage holds the policy's subscription (the union of its sinks' filters), redacts each
//! event once, and republishes it on a private bus where every sink of the policy has its own
//! filtered, bounded queue. So an event is redacted once per policy, before it fans out, and
//! no sink ever sees it unredacted.
//!
//! When sinks started together use several policies whose stages take the same events, one
//! fan-out ([`Pump::fanout`]) holds their only subscription on the agents' bus and
//! republishes each event, shared, to the stages' queues on a bus of its own. An agent then
//! offers each event to one queue, whatever the number of policies: the copies to the stages
//! are made on the fan-out's thread, not the agent's.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use sightline_bus::{Bus, DropCounts, Filter, Overflow, Probe, SubscribeOptions, Subscription};
use sightline_event::{Event, KindSet, Severity};
use sightline_redact::Redactor;
use smol_str::SmolStr;

use crate::runner::{ShutdownReport, SinkHandle, SinkSpec, SinkStats, SinkView, SpawnError};
use crate::{OverflowPolicy, RunnerConfig};

#[derive(Default)]
struct Counters {
    received: AtomicU64,
    events_redacted: AtomicU64,
    redactions: Mutex<BTreeMap<(SmolStr, SmolStr), u64>>,
}

enum Control {
    Drain(flume::Sender<()>),
    Stop(flume::Sender<()>),
}

pub(crate) struct Stage {
    // Declared (so dropped) first: a stage dropped without `shutdown` stops its thread, which
    // hands what it held to the sinks, before the sinks stop.
    pump: Pump,
    sinks: Vec<SinkHandle>,
    /// The fan-out's subscription in front of this stage, if any: what it dropped never
    /// reached this stage either.
    upstream: Option<Probe>,
    counters: Arc<Counters>,
}

/// Reads a stage's sinks' counters, with the stage's share, from any thread.
#[derive(Clone)]
pub(crate) struct StageView {
    sinks: Vec<SinkView>,
    probe: Probe,
    upstream: Option<Probe>,
    counters: Arc<Counters>,
}

impl StageView {
    pub(crate) fn stats(&self) -> Vec<SinkStats> {
        self.sinks
            .iter()
            .map(|s| self.decorate(s.stats()))
            .collect()
    }

    /// A sink's stats with its stage's share: redaction counts, and drops at the stage's queue
    /// and the fan-out's (an event either could not take never reached any of its sinks).
    fn decorate(&self, mut s: SinkStats) -> SinkStats {
        for probe in std::iter::once(&self.probe).chain(&self.upstream) {
            let up = probe.stats();
            s.dropped = DropCounts(std::array::from_fn(|i| s.dropped.0[i] + up.dropped.0[i]));
        }
        s.events_redacted = self.counters.events_redacted.load(Ordering::Relaxed);
        s.redactions = self
            .counters
            .redactions
            .lock()
            .map(|m| {
                m.iter()
                    .map(|((r, a), n)| (r.clone(), a.clone(), *n))
                    .collect()
            })
            .unwrap_or_default();
        s
    }
}

impl Stage {
    /// A stage for `group` (sinks sharing `redactor`'s policy), subscribed to `bus`: the
    /// agents' bus, or a fan-out's (`upstream` is then the fan-out's subscription).
    pub(crate) fn spawn(
        bus: &Bus,
        redactor: Arc<Redactor>,
        group: Vec<SinkSpec>,
        upstream: Option<Probe>,
    ) -> Result<Self, SpawnError> {
        let policy = SmolStr::new(redactor.name());
        let feed = Feed::of(group.iter().map(|(name, _, cfg)| (name.as_str(), cfg)))?;
        let stage_bus = Bus::new();
        let sinks = group
            .into_iter()
            .map(|(name, sink, cfg)| {
                SinkHandle::spawn_with_policy(&stage_bus, &name, sink, cfg, policy.clone())
            })
            .collect::<Result<Vec<_>, _>>()?;
        let sub = bus.subscribe(feed.options(format!("policy:{policy}")));
        let counters = Arc::new(Counters::default());
        let worker = Worker {
            stage_bus,
            redactor,
            counters: counters.clone(),
        };
        let pump = Pump::start(
            sub,
            &feed,
            format!("stage-{policy}"),
            format!("policy stage {policy}"),
            move |b| worker.forward(b),
        )?;
        Ok(Self {
            pump,
            sinks,
            upstream,
            counters,
        })
    }

    pub(crate) fn view(&self) -> StageView {
        StageView {
            sinks: self.sinks.iter().map(SinkHandle::view).collect(),
            probe: self.pump.probe(),
            upstream: self.upstream.clone(),
            counters: self.counters.clone(),
        }
    }

    pub(crate) fn stats(&self) -> Vec<SinkStats> {
        self.view().stats()
    }

    /// The names of the stage's sinks.
    pub(crate) fn sink_names(&self) -> impl Iterator<Item = String> + '_ {
        self.sinks.iter().map(|s| s.name().to_owned())
    }

    pub(crate) fn flush(&self, timeout: Duration) -> Vec<(String, String)> {
        let drained = self.pump.drain(timeout);
        let mut errors: Vec<(String, String)> = self
            .sinks
            .iter()
            .filter_map(|s| s.flush(timeout).err().map(|e| (s.name().to_owned(), e)))
            .collect();
        if !drained {
            for s in &self.sinks {
                errors.push((
                    s.name().to_owned(),
                    "the policy stage did not drain in time".to_owned(),
                ));
            }
        }
        errors
    }

    pub(crate) fn shutdown(mut self, timeout: Duration) -> Vec<ShutdownReport> {
        let deadline = Instant::now() + timeout;
        let (stopped, stuck) = self.pump.stop(deadline);
        let remaining = deadline.saturating_duration_since(Instant::now());
        let view = self.view();
        let sinks = std::mem::take(&mut self.sinks);
        shut_down_behind(sinks, move |s| vec![s.shutdown(remaining)], stopped, stuck)
            .into_iter()
            .map(|mut r| {
                r.stats = view.decorate(r.stats);
                r
            })
            .collect()
    }
}

struct Worker {
    stage_bus: Bus,
    redactor: Arc<Redactor>,
    counters: Arc<Counters>,
}

impl Worker {
    /// Redacts each event once, then offers it to the policy's sinks.
    fn forward(&self, batch: &mut Vec<Event>) {
        if batch.is_empty() {
            return;
        }
        self.counters
            .received
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        let mut redacted = 0u64;
        let mut counts: BTreeMap<(SmolStr, SmolStr), u64> = BTreeMap::new();
        for e in batch.iter_mut() {
            self.redactor.redact_event(e);
            if let Some(summary) = &e.redaction {
                redacted += 1;
                for (rule, actions) in &summary.counts {
                    for (action, n) in actions {
                        *counts.entry((rule.clone(), action.clone())).or_default() += *n as u64;
                    }
                }
            }
        }
        if redacted > 0 {
            self.counters
                .events_redacted
                .fetch_add(redacted, Ordering::Relaxed);
            if let Ok(mut m) = self.counters.redactions.lock() {
                for (k, n) in counts {
                    *m.entry(k).or_default() += n;
                }
            }
        }
        self.stage_bus.publish_batch(batch.drain(..));
    }
}

/// Moves events from `sub` to `forward` in batches until told to stop: a stage's loop and a
/// fan-out's. `Drain` forwards everything queued now and answers; `Stop` (or the controller
/// going away) closes the subscription, forwards what it held and ends.
fn pump(
    sub: &Subscription,
    batch: usize,
    wait: Duration,
    control: &flume::Receiver<Control>,
    forward: &mut impl FnMut(&mut Vec<Event>),
) {
    let mut buf: Vec<Event> = Vec::with_capacity(batch);
    loop {
        match control.try_recv() {
            Ok(Control::Drain(reply)) => {
                loop {
                    buf.clear();
                    if sub.drain(&mut buf, batch) == 0 {
                        break;
                    }
                    forward(&mut buf);
                }
                let _ = reply.send(());
                continue;
            }
            Ok(Control::Stop(reply)) => {
                let mut rest = sub.close();
                forward(&mut rest);
                let _ = reply.send(());
                return;
            }
            Err(flume::TryRecvError::Disconnected) => {
                let mut rest = sub.close();
                forward(&mut rest);
                return;
            }
            Err(flume::TryRecvError::Empty) => {}
        }
        buf.clear();
        if sub.recv_batch(&mut buf, batch, wait) > 0 {
            forward(&mut buf);
        }
    }
}

/// What a set of sinks needs from the subscription that feeds them: the union of their
/// filters, the largest queue and batch, the shortest linger, and blocking (for the longest
/// timeout) only if one of them chose to block.
pub(crate) struct Feed {
    filter: Filter,
    capacity: usize,
    batch: usize,
    wait: Duration,
    overflow: Overflow,
}

impl Feed {
    /// The feed of these sinks; an invalid configuration is reported against its sink.
    pub(crate) fn of<'a>(
        sinks: impl IntoIterator<Item = (&'a str, &'a RunnerConfig)>,
    ) -> Result<Self, SpawnError> {
        let mut kinds = KindSet::EMPTY;
        let mut classes: Option<Vec<SmolStr>> = Some(Vec::new());
        let (mut min_severity, mut capacity, mut batch) = (Severity::Fatal, 1usize, 1usize);
        let (mut block, mut linger_ms) = (None::<u64>, u64::MAX);
        for (name, cfg) in sinks {
            let config_err = |source| SpawnError::Config {
                sink: name.to_owned(),
                source,
            };
            cfg.subscribe_options(name).map_err(config_err)?;
            let f = cfg.filter().map_err(config_err)?;
            kinds = kinds.union(f.kinds);
            match (&mut classes, f.classes.is_empty()) {
                (_, true) => classes = None,
                (Some(c), false) => c.extend(f.classes),
                (None, false) => {}
            }
            min_severity = min_severity.min(f.min_severity);
            capacity = capacity.max(cfg.queue_capacity);
            batch = batch.max(cfg.batch_max_events);
            linger_ms = linger_ms.min(cfg.flush_interval_ms);
            if cfg.overflow == OverflowPolicy::Block {
                block = Some(block.unwrap_or(0).max(cfg.block_timeout_ms));
            }
        }
        Ok(Self {
            filter: Filter::kinds(kinds)
                .classes(classes.unwrap_or_default())
                .min_severity(min_severity),
            capacity,
            batch,
            wait: Duration::from_millis(linger_ms.clamp(1, 50)),
            overflow: block.map_or(Overflow::DropNewest, |ms| Overflow::Block {
                timeout: Duration::from_millis(ms),
            }),
        })
    }

    /// The union of the sinks' filters.
    pub(crate) fn filter(&self) -> &Filter {
        &self.filter
    }

    /// Whether one of the sinks blocks rather than drops when its queue is full.
    pub(crate) fn blocks(&self) -> bool {
        matches!(self.overflow, Overflow::Block { .. })
    }

    /// The subscription's options, named `name`.
    fn options(&self, name: String) -> SubscribeOptions {
        SubscribeOptions::new(name)
            .filter(self.filter.clone())
            .capacity(self.capacity)
            .overflow(self.overflow)
            .wake_threshold((self.batch / 2).clamp(1, self.capacity))
    }
}

/// A thread moving a subscription's events to a `forward` step in batches (a stage's, a
/// fan-out's), and the controls to drain and stop it.
pub(crate) struct Pump {
    probe: Probe,
    control: flume::Sender<Control>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Pump {
    /// Starts the thread `name` that pumps `sub` (batched and lingering as `feed` says) into
    /// `forward`; `what` names it in an error.
    fn start(
        sub: Subscription,
        feed: &Feed,
        name: String,
        what: String,
        mut forward: impl FnMut(&mut Vec<Event>) + Send + 'static,
    ) -> Result<Self, SpawnError> {
        let probe = sub.probe();
        let (control, control_rx) = flume::unbounded();
        let (batch, wait) = (feed.batch, feed.wait);
        let thread = thread::Builder::new()
            .name(name)
            .spawn(move || pump(&sub, batch, wait, &control_rx, &mut forward))
            .map_err(|source| SpawnError::Thread { sink: what, source })?;
        Ok(Self {
            probe,
            control,
            thread: Some(thread),
        })
    }

    /// The one subscription on the agents' bus of sinks started together under several
    /// policies: it republishes each event on `front`, where each policy's stage has its
    /// queue. `feed` is the union of every stage's.
    pub(crate) fn fanout(bus: &Bus, front: Bus, feed: &Feed) -> Result<Self, SpawnError> {
        let sub = bus.subscribe(feed.options("fanout".to_owned()));
        Self::start(
            sub,
            feed,
            "stage-fanout".to_owned(),
            "policy fan-out".to_owned(),
            move |b| front.publish_batch(b.drain(..)),
        )
    }

    /// The subscription's counters.
    pub(crate) fn probe(&self) -> Probe {
        self.probe.clone()
    }

    /// Forwards everything queued now; `false` if that took longer than `timeout`.
    pub(crate) fn drain(&self, timeout: Duration) -> bool {
        let (tx, rx) = flume::bounded(1);
        self.control.send(Control::Drain(tx)).is_ok() && rx.recv_timeout(timeout).is_ok()
    }

    /// Stops taking events and forwards what it held, by `deadline`. Returns whether it
    /// did, and how many events were still queued if it did not.
    pub(crate) fn stop(&mut self, deadline: Instant) -> (bool, u64) {
        let (tx, rx) = flume::bounded(1);
        let stopped =
            self.control.send(Control::Stop(tx)).is_ok() && rx.recv_deadline(deadline).is_ok();
        // Either way the thread is done with here: joined, or (told to stop, and late)
        // left to finish on its own rather than waited for again on drop.
        let thread = self.thread.take();
        if stopped {
            if let Some(t) = thread {
                let _ = t.join();
            }
            (true, 0)
        } else {
            (false, self.probe.stats().queued as u64)
        }
    }
}

impl Drop for Pump {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.stop(Instant::now() + Duration::from_secs(5));
        }
    }
}

/// Shuts `parts` down at once, each on its own thread, and collects their reports, marked
/// with what the step in front of them left behind (`stopped`, `stuck`).
pub(crate) fn shut_down_behind<T: Send + 'static>(
    parts: Vec<T>,
    shutdown: impl Fn(T) -> Vec<ShutdownReport> + Send + Copy + 'static,
    stopped: bool,
    stuck: u64,
) -> Vec<ShutdownReport> {
    let handles: Vec<_> = parts
        .into_iter()
        .map(|p| thread::spawn(move || shutdown(p)))
        .collect();
    handles
        .into_iter()
        .filter_map(|h| h.join().ok())
        .flatten()
        .map(|mut r| {
            r.undelivered += stuck;
            r.finished &= stopped;
            r
        })
        .collect()
}
