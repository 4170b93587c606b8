//! The [`Pipeline`]: the top of the crate's stack, what a program holds. It takes sinks with
//! their runner configurations, groups them by policy and by filter, and starts the hops each
//! group needs (a fan-out, redaction stages, sink workers); then it reads their counters,
//! flushes and shuts them down as one.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use sightline_bus::{Bus, Filter, Probe};
use sightline_redact::{PolicyError, Redactor};

use crate::error::SpawnError;
use crate::fanout::{FanOut, Group};
use crate::pump::Feed;
use crate::stage::Stage;
use crate::stats::{ReadStats, ShutdownReport, SinkStats, StatsView};
use crate::worker::SinkSpec;
use crate::{RunnerConfig, Sink};

/// A policy's name and the sinks that named it.
type PolicySinks = (String, Vec<SinkSpec>);

/// A bus and the sinks running on it.
pub struct Pipeline {
    bus: Bus,
    policies: BTreeMap<String, Arc<Redactor>>,
    groups: Vec<Group>,
    views: StatsView,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field(
                "stages",
                &self.groups.iter().map(|g| g.stages().len()).sum::<usize>(),
            )
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
            views: StatsView::default(),
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

    /// Starts one sink, with its policy applied on its own worker.
    pub fn add(
        &mut self,
        name: &str,
        sink: Box<dyn Sink>,
        cfg: RunnerConfig,
    ) -> Result<(), SpawnError> {
        self.add_group(vec![(name.to_owned(), sink, cfg)])
    }

    /// Starts sinks together: sinks naming the same policy share one redaction stage, so each
    /// event is redacted once per policy, before it fans out to those sinks' own queues (a
    /// policy with one sink is applied on that sink's worker). The stages of several policies
    /// that take the same events (and whose sinks never block) are fed by one subscription on
    /// the agents' bus, so an emitting agent offers each event to one queue, and a fan-out
    /// thread shares each event among them.
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
            let fanout = FanOut::start(&self.bus, front.clone(), &feed)?;
            let stages = self.spawn_stages(&front, policies, Some(fanout.probe()))?;
            self.push(Group::behind(fanout, stages));
        }
        if !alone.is_empty() {
            let bus = self.bus.clone();
            let stages = self.spawn_stages(&bus, alone, None)?;
            self.push(Group::alone(stages));
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
        policies
            .into_iter()
            .map(|(policy, group)| {
                let redactor = self.policies[&policy].clone();
                Stage::spawn(bus, redactor, group, upstream.clone())
            })
            .collect()
    }

    fn push(&mut self, group: Group) {
        self.views.extend(
            group
                .views()
                .map(|v| Box::new(v) as Box<dyn ReadStats>)
                .collect::<Vec<_>>(),
        );
        self.groups.push(group);
    }

    /// Every sink's counters (drops at its policy stage, and at the fan-out in front of it,
    /// included in `dropped`).
    pub fn stats(&self) -> Vec<SinkStats> {
        self.groups.iter().flat_map(Group::stats).collect()
    }

    /// A cloneable, thread-safe reader of every sink's counters — those added so far and
    /// later — that stays valid after shutdown (a metrics endpoint holds one).
    pub fn stats_view(&self) -> StatsView {
        self.views.clone()
    }

    /// Moves everything queued at the fan-outs and stages into the sinks and flushes every
    /// sink, each within `timeout`; returns the failures by sink name.
    pub fn flush(&self, timeout: Duration) -> Vec<(String, String)> {
        self.groups.iter().flat_map(|g| g.flush(timeout)).collect()
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
