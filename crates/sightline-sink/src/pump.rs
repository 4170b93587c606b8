//! A queue-draining thread, shared by the two hops in front of the sinks (the fan-out and a
//! redaction stage): [`Pump`] moves a subscription's events to a forward step in batches and
//! can be drained and stopped; [`Feed`] is the shape of the queue that feeds several sinks'
//! worth of events (the union of their filters, and the overflow policy that respects all of
//! them).

use std::thread;
use std::time::{Duration, Instant};

use sightline_bus::{Filter, Overflow, Probe, SubscribeOptions, Subscription};
use sightline_event::{Event, KindSet, Severity};
use smol_str::SmolStr;

use crate::error::SpawnError;
use crate::stats::ShutdownReport;
use crate::{OverflowPolicy, RunnerConfig};

enum Control {
    Drain(flume::Sender<()>),
    Stop(flume::Sender<()>),
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
    pub(crate) fn options(&self, name: String) -> SubscribeOptions {
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
    pub(crate) fn start(
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
