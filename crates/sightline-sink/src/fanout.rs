//! The fan-out: the hop that lets several policies share one queue on the agents' bus.
//!
//! When sinks started together use several policies whose stages take the same events (and
//! none of them blocks), one [`FanOut`] holds their only subscription on the agents' bus and
//! republishes each event, shared, on a bus of its own where each policy's stage (or, for a
//! policy with one sink, that sink) has its queue. An agent then offers each event to one
//! queue, whatever the number of policies: the copies are made on the fan-out's thread, not
//! the agent's. A [`Group`] is what one call to start sinks together produced: stages behind
//! one fan-out, or stages each on its own queue on the agents' bus.

use std::time::{Duration, Instant};

use sightline_bus::{Bus, Probe};

use crate::error::SpawnError;
use crate::pump::{shut_down_behind, Feed, Pump};
use crate::stage::Stage;
use crate::stats::{ShutdownReport, SinkStats};
use crate::worker::SinkView;

/// The fan-out thread and its queue on the agents' bus.
pub(crate) struct FanOut {
    pump: Pump,
}

impl FanOut {
    /// Subscribes to `bus` for `feed` (the union of every stage's) and republishes each event
    /// on `front`, where the stages behind it have their queues.
    pub(crate) fn start(bus: &Bus, front: Bus, feed: &Feed) -> Result<Self, SpawnError> {
        let sub = bus.subscribe(feed.options("fanout".to_owned()));
        let pump = Pump::start(
            sub,
            feed,
            "stage-fanout".to_owned(),
            "policy fan-out".to_owned(),
            move |b| front.publish_batch(b.drain(..)),
        )?;
        Ok(Self { pump })
    }

    /// The fan-out's queue's counters.
    pub(crate) fn probe(&self) -> Probe {
        self.pump.probe()
    }
}

/// Stages started together: behind one fan-out, or each on its own queue.
pub(crate) struct Group {
    // Declared (so dropped) first: a group dropped without `shutdown` hands what the fan-out
    // held to the stages before they stop.
    fanout: Option<FanOut>,
    stages: Vec<Stage>,
}

impl Group {
    /// Stages, each on its own queue on the agents' bus.
    pub(crate) fn alone(stages: Vec<Stage>) -> Self {
        Self {
            fanout: None,
            stages,
        }
    }

    /// Stages behind `fanout` (they were started on its bus).
    pub(crate) fn behind(fanout: FanOut, stages: Vec<Stage>) -> Self {
        Self {
            fanout: Some(fanout),
            stages,
        }
    }

    /// The group's stages.
    pub(crate) fn stages(&self) -> &[Stage] {
        &self.stages
    }

    /// Readers of every sink's counters in the group.
    pub(crate) fn views(&self) -> impl Iterator<Item = SinkView> + '_ {
        self.stages.iter().flat_map(Stage::views)
    }

    /// Every sink's counters in the group.
    pub(crate) fn stats(&self) -> impl Iterator<Item = SinkStats> + '_ {
        self.stages.iter().flat_map(Stage::stats)
    }

    /// Moves what the fan-out holds to the stages, then flushes each stage, each step within
    /// `timeout`; returns the failures by sink name.
    pub(crate) fn flush(&self, timeout: Duration) -> Vec<(String, String)> {
        let fanned_out = self.fanout.as_ref().is_none_or(|f| f.pump.drain(timeout));
        let mut errors = Vec::new();
        for s in &self.stages {
            let stage_errors = s.flush(timeout);
            if !fanned_out {
                errors.extend(
                    s.sink_names()
                        .map(|n| (n, "the policy fan-out did not drain in time".to_owned())),
                );
            }
            errors.extend(stage_errors);
        }
        errors
    }

    /// Stops the fan-out first (so what it holds reaches the stages before they close), then
    /// the stages in parallel, all within `timeout`.
    pub(crate) fn shutdown(mut self, timeout: Duration) -> Vec<ShutdownReport> {
        let deadline = Instant::now() + timeout;
        let (stopped, stuck) = match &mut self.fanout {
            Some(f) => f.pump.stop(deadline),
            None => (true, 0),
        };
        let remaining = deadline.saturating_duration_since(Instant::now());
        let stages = std::mem::take(&mut self.stages);
        shut_down_behind(stages, move |s| s.shutdown(remaining), stopped, stuck)
    }
}
