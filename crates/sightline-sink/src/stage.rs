//! The redaction stage: the hop where a sink's policy is applied, once per event, before any
//! sink of the policy sees the event.
//!
//! A policy used by several sinks started together gets a stage thread of its own
//! ([`Stage::Thread`]): it holds one queue (the union of its sinks' filters), redacts each
//! event once, and republishes it on a private bus where every sink of the policy has its own
//! filtered, bounded queue. A policy used by one sink needs no such thread
//! ([`Stage::OnWorker`]): that sink's queue takes the events directly and its worker redacts
//! each batch before the first write, which is still once per event, one thread hop fewer.
//! Either way no sink ever sees an event unredacted.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sightline_bus::{Bus, Probe};
use sightline_event::Event;
use sightline_redact::Redactor;

use crate::error::SpawnError;
use crate::pump::{shut_down_behind, Feed, Pump};
use crate::redaction::Redaction;
use crate::stats::{ShutdownReport, SinkStats};
use crate::worker::{Placement, PolicyAt, SinkHandle, SinkSpec, SinkView};

/// One policy in front of the sinks that use it.
pub(crate) enum Stage {
    /// Several sinks: a thread redacts each event once and offers it to each sink's queue.
    Thread(StageThread),
    /// One sink: its worker redacts; there is no stage thread or stage queue.
    OnWorker(SinkHandle),
}

/// The stage thread of a policy with several sinks, and those sinks.
pub(crate) struct StageThread {
    // Declared (so dropped) first: a stage dropped without `shutdown` stops its thread, which
    // hands what it held to the sinks, before the sinks stop.
    pump: Pump,
    sinks: Vec<SinkHandle>,
}

impl Stage {
    /// The stage of `redactor`'s policy for `group` (the sinks that name it), taking its
    /// events from `bus`: the agents' bus, or a fan-out's (`upstream` is then the fan-out's
    /// queue, whose drops are counted against every sink behind it).
    pub(crate) fn spawn(
        bus: &Bus,
        redactor: Arc<Redactor>,
        mut group: Vec<SinkSpec>,
        upstream: Option<Probe>,
    ) -> Result<Self, SpawnError> {
        let redaction = Redaction::new(redactor);
        if group.len() == 1 {
            if let Some((name, sink, cfg)) = group.pop() {
                let placement = Placement {
                    policy: PolicyAt::Worker(redaction),
                    upstream: upstream.into_iter().collect(),
                };
                return SinkHandle::spawn_at(bus, &name, sink, cfg, placement).map(Stage::OnWorker);
            }
        }
        let policy = redaction.policy();
        let feed = Feed::of(group.iter().map(|(name, _, cfg)| (name.as_str(), cfg)))?;
        let sub = bus.subscribe(feed.options(format!("policy:{policy}")));
        let stage_bus = Bus::new();
        let placement = Placement {
            policy: PolicyAt::Stage(redaction.clone()),
            upstream: std::iter::once(sub.probe()).chain(upstream).collect(),
        };
        let sinks = group
            .into_iter()
            .map(|(name, sink, cfg)| {
                SinkHandle::spawn_at(&stage_bus, &name, sink, cfg, placement.clone())
            })
            .collect::<Result<Vec<_>, _>>()?;
        let pump = Pump::start(
            sub,
            &feed,
            format!("stage-{policy}"),
            format!("policy stage {policy}"),
            move |batch: &mut Vec<Event>| {
                if batch.is_empty() {
                    return;
                }
                redaction.apply(batch);
                stage_bus.publish_batch(batch.drain(..));
            },
        )?;
        Ok(Stage::Thread(StageThread { pump, sinks }))
    }

    /// The stage's sinks.
    fn sinks(&self) -> &[SinkHandle] {
        match self {
            Stage::Thread(t) => &t.sinks,
            Stage::OnWorker(s) => std::slice::from_ref(s),
        }
    }

    /// Readers of the stage's sinks' counters.
    pub(crate) fn views(&self) -> impl Iterator<Item = SinkView> + '_ {
        self.sinks().iter().map(SinkHandle::view)
    }

    /// The stage's sinks' counters.
    pub(crate) fn stats(&self) -> impl Iterator<Item = SinkStats> + '_ {
        self.sinks().iter().map(SinkHandle::stats)
    }

    /// The names of the stage's sinks.
    pub(crate) fn sink_names(&self) -> impl Iterator<Item = String> + '_ {
        self.sinks().iter().map(|s| s.name().to_owned())
    }

    /// Moves what the stage holds into its sinks' queues, then flushes each sink, each step
    /// within `timeout`; returns the failures by sink name.
    pub(crate) fn flush(&self, timeout: Duration) -> Vec<(String, String)> {
        let drained = match self {
            Stage::Thread(t) => t.pump.drain(timeout),
            Stage::OnWorker(_) => true,
        };
        let mut errors: Vec<(String, String)> = self
            .sinks()
            .iter()
            .filter_map(|s| s.flush(timeout).err().map(|e| (s.name().to_owned(), e)))
            .collect();
        if !drained {
            errors.extend(
                self.sink_names()
                    .map(|n| (n, "the policy stage did not drain in time".to_owned())),
            );
        }
        errors
    }

    /// Stops the stage thread (handing what it held to the sinks), then shuts the sinks down
    /// in parallel, all within `timeout`.
    pub(crate) fn shutdown(self, timeout: Duration) -> Vec<ShutdownReport> {
        match self {
            Stage::OnWorker(s) => vec![s.shutdown(timeout)],
            Stage::Thread(mut t) => {
                let deadline = Instant::now() + timeout;
                let (stopped, stuck) = t.pump.stop(deadline);
                let remaining = deadline.saturating_duration_since(Instant::now());
                let sinks = std::mem::take(&mut t.sinks);
                shut_down_behind(sinks, move |s| vec![s.shutdown(remaining)], stopped, stuck)
            }
        }
    }
}
