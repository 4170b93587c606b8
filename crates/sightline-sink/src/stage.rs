//! The redaction stage: one per policy, in front of the sinks that use it.
//!
//! The stage holds the policy's subscription on the agents' bus (the union of its sinks'
//! filters), redacts each event once, and republishes it on a private bus where every sink of
//! the policy has its own filtered, bounded queue. So an event is redacted once per policy,
//! before it fans out, and no sink ever sees it unredacted.

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
use crate::OverflowPolicy;

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
    sinks: Vec<SinkHandle>,
    probe: Probe,
    counters: Arc<Counters>,
    control: flume::Sender<Control>,
    thread: Option<thread::JoinHandle<()>>,
}

/// Reads a stage's sinks' counters, with the stage's share, from any thread.
#[derive(Clone)]
pub(crate) struct StageView {
    sinks: Vec<SinkView>,
    probe: Probe,
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
    /// (an event the stage could not take never reached any of its sinks).
    fn decorate(&self, mut s: SinkStats) -> SinkStats {
        let stage = self.probe.stats();
        s.dropped = DropCounts(std::array::from_fn(|i| s.dropped.0[i] + stage.dropped.0[i]));
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
    pub(crate) fn spawn(
        bus: &Bus,
        redactor: Arc<Redactor>,
        group: Vec<SinkSpec>,
    ) -> Result<Self, SpawnError> {
        let policy = SmolStr::new(redactor.name());
        // The stage's subscription: the union of its sinks' filters, the largest queue and
        // batch, blocking only if a sink chose to block.
        let mut kinds = KindSet::EMPTY;
        let mut classes: Option<Vec<SmolStr>> = Some(Vec::new());
        let (mut min_severity, mut capacity, mut batch) = (Severity::Fatal, 1usize, 1usize);
        let (mut block, mut linger_ms) = (None::<u64>, u64::MAX);
        for (name, _, cfg) in &group {
            let config_err = |source| SpawnError::Config {
                sink: name.clone(),
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
        let stage_bus = Bus::new();
        let sinks = group
            .into_iter()
            .map(|(name, sink, cfg)| {
                SinkHandle::spawn_with_policy(&stage_bus, &name, sink, cfg, policy.clone())
            })
            .collect::<Result<Vec<_>, _>>()?;
        let filter = Filter::kinds(kinds)
            .classes(classes.unwrap_or_default())
            .min_severity(min_severity);
        let overflow = block.map_or(Overflow::DropNewest, |ms| Overflow::Block {
            timeout: Duration::from_millis(ms),
        });
        let sub = bus.subscribe(
            SubscribeOptions::new(format!("policy:{policy}"))
                .filter(filter)
                .capacity(capacity)
                .overflow(overflow)
                .wake_threshold((batch / 2).clamp(1, capacity)),
        );
        let probe = sub.probe();
        let counters = Arc::new(Counters::default());
        let (control, control_rx) = flume::unbounded();
        let worker = Worker {
            sub,
            stage_bus,
            redactor,
            counters: counters.clone(),
            batch,
            wait: Duration::from_millis(linger_ms.clamp(1, 50)),
        };
        let thread = thread::Builder::new()
            .name(format!("stage-{policy}"))
            .spawn(move || worker.run(control_rx))
            .map_err(|source| SpawnError::Thread {
                sink: format!("policy stage {policy}"),
                source,
            })?;
        Ok(Self {
            sinks,
            probe,
            counters,
            control,
            thread: Some(thread),
        })
    }

    pub(crate) fn view(&self) -> StageView {
        StageView {
            sinks: self.sinks.iter().map(SinkHandle::view).collect(),
            probe: self.probe.clone(),
            counters: self.counters.clone(),
        }
    }

    pub(crate) fn stats(&self) -> Vec<SinkStats> {
        self.view().stats()
    }

    pub(crate) fn flush(&self, timeout: Duration) -> Vec<(String, String)> {
        let (tx, rx) = flume::bounded(1);
        let drained =
            self.control.send(Control::Drain(tx)).is_ok() && rx.recv_timeout(timeout).is_ok();
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
        let (tx, rx) = flume::bounded(1);
        let stopped =
            self.control.send(Control::Stop(tx)).is_ok() && rx.recv_deadline(deadline).is_ok();
        let stuck_at_stage = if stopped {
            if let Some(t) = self.thread.take() {
                let _ = t.join();
            }
            0
        } else {
            self.probe.stats().queued as u64
        };
        let remaining = deadline.saturating_duration_since(Instant::now());
        let view = self.view();
        let sinks = std::mem::take(&mut self.sinks);
        let handles: Vec<_> = sinks
            .into_iter()
            .map(|s| thread::spawn(move || s.shutdown(remaining)))
            .collect();
        handles
            .into_iter()
            .filter_map(|h| h.join().ok())
            .map(|mut r| {
                r.undelivered += stuck_at_stage;
                r.finished &= stopped;
                r.stats = view.decorate(r.stats);
                r
            })
            .collect()
    }
}

impl Drop for Stage {
    fn drop(&mut self) {
        if self.thread.is_some() {
            let (tx, rx) = flume::bounded(1);
            if self.control.send(Control::Stop(tx)).is_ok() {
                let _ = rx.recv_timeout(Duration::from_secs(5));
            }
        }
    }
}

struct Worker {
    sub: Subscription,
    stage_bus: Bus,
    redactor: Arc<Redactor>,
    counters: Arc<Counters>,
    batch: usize,
    wait: Duration,
}

impl Worker {
    fn run(self, control: flume::Receiver<Control>) {
        let mut buf: Vec<Event> = Vec::with_capacity(self.batch);
        loop {
            match control.try_recv() {
                Ok(Control::Drain(reply)) => {
                    loop {
                        buf.clear();
                        if self.sub.drain(&mut buf, self.batch) == 0 {
                            break;
                        }
                        self.forward(&mut buf);
                    }
                    let _ = reply.send(());
                    continue;
                }
                Ok(Control::Stop(reply)) => {
                    let mut rest = self.sub.close();
                    self.forward(&mut rest);
                    let _ = reply.send(());
                    return;
                }
                Err(flume::TryRecvError::Disconnected) => {
                    let mut rest = self.sub.close();
                    self.forward(&mut rest);
                    return;
                }
                Err(flume::TryRecvError::Empty) => {}
            }
            buf.clear();
            if self.sub.recv_batch(&mut buf, self.batch, self.wait) > 0 {
                self.forward(&mut buf);
            }
        }
    }

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
