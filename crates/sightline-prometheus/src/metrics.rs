//! Events to metrics: the families the Prometheus sink keeps, and how each event updates them.
//! Labels come only from bounded sets (agent class, method, callback, fiber, server, tool,
//! model, outcome, state), never from instance names, ids, URLs or users; and every labelled
//! family is capped by the [cardinality guard](crate::guard).

use prometheus::core::{AtomicU64, GenericCounter};
use prometheus::{exponential_buckets, HistogramVec, IntCounterVec, IntGaugeVec, Registry};
use std::hash::{Hash, Hasher};

use prometheus::{Histogram, IntCounter};
use sightline_event::{AgentRef, Event, Kind, Outcome, Payload};
use sightline_sink::{Sink, SinkError};
use smol_str::SmolStr;

use crate::family::{counter, gauge, histogram};
use crate::guard::{Guarded, LabelledVec};

type Counters = Guarded<IntCounterVec>;
type Gauges = Guarded<IntGaugeVec>;
type Histograms = Guarded<HistogramVec>;

/// Latency buckets, in seconds: 1 ms to 60 s.
const LATENCY: [f64; 14] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];
/// Schedule lateness buckets, in seconds: 10 ms to 10 min.
const LATENESS: [f64; 10] = [0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 600.0];

fn outcome(o: Option<Outcome>, default: &'static str) -> &'static str {
    o.map_or(default, |o| o.name())
}

fn secs(ns: Option<u64>) -> Option<f64> {
    ns.map(|n| n as f64 / 1e9)
}

/// Every event-derived family. Build with [`EventMetrics::new`]; feed with
/// [`EventMetrics::record`] (or run it as a [`Sink`]).
pub struct EventMetrics {
    events: Counters,
    rpc_calls: Counters,
    rpc_duration: Histograms,
    schedule_executions: Counters,
    schedule_retries: Counters,
    schedule_retries_exhausted: Counters,
    schedule_lateness: Histograms,
    schedule_missed_runs: Counters,
    schedule_duration: Histograms,
    fiber_runs: Counters,
    fiber_recoveries: Counters,
    mcp_connections: Counters,
    mcp_connect_failures: Counters,
    mcp_tools_discovered: Gauges,
    state_updates: Counters,
    state_rejected: Counters,
    state_size: Histograms,
    tool_calls: Counters,
    tool_duration: Histograms,
    model_calls: Counters,
    model_tokens: Counters,
    model_duration: Histograms,
    approvals: Counters,
    connections_open: Gauges,
    agents_active: Gauges,
    agents_hibernated: Gauges,
    queue_jobs: Counters,
    workflows: Counters,
    /// Handles of the hot operations (RPC, tool and model calls), resolved once per
    /// (kind, outcome, class, name): one lookup per event instead of one per family.
    bundles: hashbrown::HashMap<BundleKey, usize, rustc_hash::FxBuildHasher>,
    bundle_handles: Vec<Bundle>,
    max_bundles: usize,
    /// Per agent: hibernated or not, for the agent gauges; bounded by `max_tracked_agents`.
    agents: rustc_hash::FxHashMap<AgentRef, bool>,
    max_agents: usize,
    untracked_agents: GenericCounter<AtomicU64>,
}

impl std::fmt::Debug for EventMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventMetrics")
            .field("agents", &self.agents.len())
            .finish_non_exhaustive()
    }
}

/// Registers families capped by the guard: each at `cap` series, folds counted in `overflow`.
struct Capped<'a> {
    registry: &'a Registry,
    cap: usize,
    overflow: &'a IntCounterVec,
}

impl Capped<'_> {
    /// Registers `vec` (from one of the [`crate::family`] helpers) under the guard.
    fn add<V: LabelledVec>(&self, vec: prometheus::Result<V>) -> prometheus::Result<Guarded<V>> {
        let vec = vec?;
        let labels = vec.desc().first().map_or(0, |d| d.variable_labels.len());
        Guarded::register(self.registry, vec, labels, self.cap, self.overflow)
    }
}

impl EventMetrics {
    /// Registers every family in `registry`, each capped at `max_series` series; agent gauges
    /// track at most `max_agents` agents (more are counted in
    /// `sightline_agents_untracked_total`).
    pub fn new(
        registry: &Registry,
        max_series: usize,
        max_agents: usize,
    ) -> prometheus::Result<Self> {
        let ov = counter(
            "sightline_metric_series_overflow_total",
            "Updates folded into a metric's __overflow__ series because it reached its series cap.",
            &["metric"],
        )?;
        registry.register(Box::new(ov.clone()))?;
        let untracked = GenericCounter::new(
            "sightline_agents_untracked_total",
            "Agents seen after the agent gauges reached their tracking limit (not counted in them).",
        )?;
        registry.register(Box::new(untracked.clone()))?;
        let g = Capped {
            registry,
            cap: max_series,
            overflow: &ov,
        };
        Ok(Self {
            events: g.add(counter("sightline_events_total", "Events seen, by agent class and family.", &["agent_class", "family"]))?,
            rpc_calls: g.add(counter("sightline_rpc_calls_total", "RPC calls handled, by agent class, method and outcome.", &["agent_class", "method", "outcome"]))?,
            rpc_duration: g.add(histogram("sightline_rpc_duration_seconds", "RPC call latency.", LATENCY.to_vec(), &["agent_class", "method"]))?,
            schedule_executions: g.add(counter("sightline_schedule_executions_total", "Scheduled callback runs that ended, by agent class, callback and outcome (error: retries exhausted).", &["agent_class", "callback", "outcome"]))?,
            schedule_retries: g.add(counter("sightline_schedule_retries_total", "Retries of scheduled callbacks after a failed attempt.", &["agent_class", "callback"]))?,
            schedule_retries_exhausted: g.add(counter("sightline_schedule_retries_exhausted_total", "Scheduled callbacks that failed every attempt (schedule:error).", &["agent_class", "callback"]))?,
            schedule_lateness: g.add(histogram("sightline_schedule_lateness_seconds", "How late scheduled callbacks started.", LATENESS.to_vec(), &["agent_class"]))?,
            schedule_missed_runs: g.add(counter("sightline_schedule_missed_runs_total", "Cron runs that should have fired while the agent was down.", &["agent_class", "callback"]))?,
            schedule_duration: g.add(histogram("sightline_schedule_duration_seconds", "Scheduled callback run time, retries included.", LATENCY.to_vec(), &["agent_class", "callback"]))?,
            fiber_runs: g.add(counter("sightline_fiber_runs_total", "Fiber runs that ended, by outcome (ok, error, interrupted).", &["agent_class", "fiber", "outcome"]))?,
            fiber_recoveries: g.add(counter("sightline_fiber_recoveries_total", "Fiber recoveries after eviction, by outcome (handled, failed, skipped).", &["agent_class", "fiber", "outcome"]))?,
            mcp_connections: g.add(counter("sightline_mcp_connections_total", "MCP connection attempts, by server and the state they reached.", &["agent_class", "server", "state"]))?,
            mcp_connect_failures: g.add(counter("sightline_mcp_connect_failures_total", "MCP connection attempts that failed.", &["agent_class", "server"]))?,
            mcp_tools_discovered: g.add(gauge("sightline_mcp_tools_discovered", "Tools the last discovery on each server found.", &["agent_class", "server"]))?,
            state_updates: g.add(counter("sightline_state_updates_total", "State updates persisted.", &["agent_class"]))?,
            state_rejected: g.add(counter("sightline_state_rejected_total", "State updates rejected (invalid, or over the size limit).", &["agent_class"]))?,
            state_size: g.add(histogram("sightline_state_size_bytes", "Agent state size after an update.", exponential_buckets(256.0, 4.0, 10)?, &["agent_class"]))?,
            tool_calls: g.add(counter("sightline_tool_calls_total", "Tool calls, by tool and outcome.", &["agent_class", "tool", "outcome"]))?,
            tool_duration: g.add(histogram("sightline_tool_call_duration_seconds", "Tool call latency.", LATENCY.to_vec(), &["agent_class", "tool"]))?,
            model_calls: g.add(counter("sightline_model_calls_total", "Model calls, by model and outcome.", &["agent_class", "model", "outcome"]))?,
            model_tokens: g.add(counter("sightline_model_tokens_total", "Model tokens, by model and direction (input, output).", &["agent_class", "model", "direction"]))?,
            model_duration: g.add(histogram("sightline_model_call_duration_seconds", "Model call latency.", LATENCY.to_vec(), &["agent_class", "model"]))?,
            approvals: g.add(counter("sightline_approvals_total", "Human approvals, by outcome (requested, granted, denied, expired).", &["agent_class", "outcome"]))?,
            connections_open: g.add(gauge("sightline_connections_open", "Client connections (WebSockets) open.", &["agent_class"]))?,
            agents_active: g.add(gauge("sightline_agents_active", "Agents in memory (seen and not hibernated).", &["agent_class"]))?,
            agents_hibernated: g.add(gauge("sightline_agents_hibernated", "Agents hibernated (state kept, memory released).", &["agent_class"]))?,
            queue_jobs: g.add(counter("sightline_queue_jobs_total", "Queued jobs that ended, by outcome.", &["agent_class", "callback", "outcome"]))?,
            workflows: g.add(counter("sightline_workflows_total", "Workflows that ended, by outcome.", &["agent_class", "workflow", "outcome"]))?,
            bundles: hashbrown::HashMap::default(),
            bundle_handles: Vec::new(),
            max_bundles: max_series.saturating_mul(4),
            agents: rustc_hash::FxHashMap::default(),
            max_agents,
            untracked_agents: untracked,
        })
    }

    /// Updates the families an event touches.
    pub fn record(&mut self, e: &Event) {
        if self.record_hot(e) {
            return;
        }
        let class = e.agent.class.as_str();
        let kind = e.kind();
        self.events.get([class, kind.family().name(), ""]).inc();
        self.track_agent(e);
        // A redacted payload whose sensitive fields were dropped arrives as JSON; the safe
        // fields metrics read are still there.
        let retyped;
        let payload = match &e.payload {
            Payload::Raw(raw) => match Payload::from_partial_json(raw.kind, &raw.fields) {
                Ok(p) => {
                    retyped = p;
                    &retyped
                }
                Err(_) => return,
            },
            typed => typed,
        };
        match payload {
            Payload::Rpc(p) => self.rpc(class, &p.method, e),
            Payload::RpcError(p) => self.rpc(class, &p.method, e),
            // Retries repeat the first attempt's lateness: observe it once per run.
            Payload::ScheduleExecute(p) if p.attempt <= 1 => {
                self.schedule_lateness
                    .get([class, "", ""])
                    .observe(p.lateness_ms as f64 / 1e3);
            }
            Payload::ScheduleComplete(p) => {
                self.schedule_executions
                    .get([class, &p.callback, "ok"])
                    .inc();
                if let Some(s) = secs(e.duration_ns) {
                    self.schedule_duration
                        .get([class, &p.callback, ""])
                        .observe(s);
                }
            }
            Payload::ScheduleRetry(p) => self.schedule_retries.get([class, &p.callback, ""]).inc(),
            Payload::ScheduleError(p) => {
                self.schedule_executions
                    .get([class, &p.callback, "error"])
                    .inc();
                self.schedule_retries_exhausted
                    .get([class, &p.callback, ""])
                    .inc();
                if let Some(s) = secs(e.duration_ns) {
                    self.schedule_duration
                        .get([class, &p.callback, ""])
                        .observe(s);
                }
            }
            Payload::ScheduleMissed(p) => self
                .schedule_missed_runs
                .get([class, &p.callback, ""])
                .inc_by(u64::from(p.missed_runs)),
            Payload::FiberRunCompleted(p) => {
                self.fiber_runs.get([class, &p.fiber_name, "ok"]).inc()
            }
            Payload::FiberRunFailed(p) => {
                self.fiber_runs.get([class, &p.fiber_name, "error"]).inc()
            }
            Payload::FiberRunInterrupted(p) => self
                .fiber_runs
                .get([class, &p.fiber_name, "interrupted"])
                .inc(),
            Payload::FiberRecoveryHandled(p) => self
                .fiber_recoveries
                .get([class, &p.fiber_name, "handled"])
                .inc(),
            Payload::FiberRecoveryFailed(p) => self
                .fiber_recoveries
                .get([class, &p.fiber_name, "failed"])
                .inc(),
            Payload::FiberRecoverySkipped(p) => self
                .fiber_recoveries
                .get([class, &p.fiber_name, "skipped"])
                .inc(),
            Payload::McpClientConnect(p) => {
                let state = p.state.name();
                self.mcp_connections
                    .get([class, &p.server_name, state])
                    .inc();
                if e.outcome.is_some_and(Outcome::is_failure) || p.error.is_some() {
                    self.mcp_connect_failures
                        .get([class, &p.server_name, ""])
                        .inc();
                }
            }
            // Prompts and resources are discovered too; the gauge is about tools.
            Payload::McpClientDiscover(p)
                if p.capability.as_deref().is_none_or(|c| c == "tools") =>
            {
                if let Some(n) = p.count {
                    self.mcp_tools_discovered
                        .get([class, &p.server_name, ""])
                        .set(i64::from(n));
                }
            }
            Payload::StateUpdate(p) => {
                self.state_updates.get([class, "", ""]).inc();
                self.state_size
                    .get([class, "", ""])
                    .observe(p.size_bytes as f64);
            }
            Payload::StateRejected(_) => self.state_rejected.get([class, "", ""]).inc(),
            Payload::ToolCall(p) => {
                self.tool_calls
                    .get([class, &p.tool_name, outcome(e.outcome, "ok")])
                    .inc();
                if let Some(s) = secs(e.duration_ns) {
                    self.tool_duration.get([class, &p.tool_name, ""]).observe(s);
                }
            }
            Payload::ModelCall(p) => {
                self.model_calls
                    .get([class, &p.model, outcome(e.outcome, "ok")])
                    .inc();
                self.model_tokens
                    .get([class, &p.model, "input"])
                    .inc_by(p.input_tokens);
                self.model_tokens
                    .get([class, &p.model, "output"])
                    .inc_by(p.output_tokens);
                if let Some(s) = secs(e.duration_ns) {
                    self.model_duration.get([class, &p.model, ""]).observe(s);
                }
            }
            Payload::ApprovalRequested(_) => self.approvals.get([class, "requested", ""]).inc(),
            Payload::ApprovalGranted(_) => self.approvals.get([class, "granted", ""]).inc(),
            Payload::ApprovalDenied(_) => self.approvals.get([class, "denied", ""]).inc(),
            Payload::ApprovalExpired(_) => self.approvals.get([class, "expired", ""]).inc(),
            Payload::Connect(_) => self.connections_open.get([class, "", ""]).inc(),
            Payload::Disconnect(_) => self.connections_open.get([class, "", ""]).dec(),
            Payload::QueueComplete(p) => self.queue_jobs.get([class, &p.callback, "ok"]).inc(),
            Payload::QueueError(p) => self.queue_jobs.get([class, &p.callback, "error"]).inc(),
            Payload::WorkflowComplete(p) => {
                let name = p.workflow_name.as_deref().unwrap_or("");
                self.workflows.get([class, name, "ok"]).inc()
            }
            Payload::WorkflowError(p) => {
                let name = p.workflow_name.as_deref().unwrap_or("");
                self.workflows.get([class, name, "error"]).inc()
            }
            Payload::WorkflowTerminated(p) => {
                let name = p.workflow_name.as_deref().unwrap_or("");
                self.workflows.get([class, name, "terminated"]).inc()
            }
            _ => {}
        }
    }

    /// RPC, tool and model calls through their bundle: `false` for other events.
    #[inline]
    fn record_hot(&mut self, e: &Event) -> bool {
        let (name, default) = match &e.payload {
            Payload::Rpc(p) => (p.method.as_str(), "ok"),
            Payload::RpcError(p) => (p.method.as_str(), "error"),
            Payload::ToolCall(p) => (p.tool_name.as_str(), "ok"),
            Payload::ModelCall(p) => (p.model.as_str(), "ok"),
            _ => return false,
        };
        let outcome_name = outcome(e.outcome, default);
        let tag = ((e.kind().index() as u16) << 8) | e.outcome.map_or(0xff, |o| o as u16);
        let class = e.agent.class.as_str();
        let key = BundleRef { tag, class, name };
        let i = match self.bundles.get(&key) {
            Some(&i) => i,
            None => {
                let kind = e.kind();
                let family = kind.family().name();
                let (calls, latency) = match kind {
                    Kind::ToolCall => (&mut self.tool_calls, &mut self.tool_duration),
                    Kind::ModelCall => (&mut self.model_calls, &mut self.model_duration),
                    _ => (&mut self.rpc_calls, &mut self.rpc_duration),
                };
                // The latency series exists once an event brings a duration.
                let folds_before = calls.folds() + latency.folds() + self.events.folds();
                let bundle = Bundle {
                    events: self.events.get([class, family, ""]).clone(),
                    calls: calls.get([class, name, outcome_name]).clone(),
                    latency: e
                        .duration_ns
                        .map(|_| latency.get([class, name, ""]).clone()),
                };
                let folded = calls.folds() + latency.folds() + self.events.folds() > folds_before;
                // A bundle holding an __overflow__ handle is not cached: every later update
                // must go through the guard, which counts the fold.
                if folded || self.bundle_handles.len() >= self.max_bundles {
                    // Past the limit, stay correct without caching (memory stays bounded).
                    bundle.apply(e);
                    self.model_tokens(e);
                    self.track_agent(e);
                    return true;
                }
                self.bundles.insert(
                    BundleKey {
                        tag,
                        class: SmolStr::new(class),
                        name: SmolStr::new(name),
                    },
                    self.bundle_handles.len(),
                );
                self.bundle_handles.push(bundle);
                self.bundle_handles.len() - 1
            }
        };
        if e.duration_ns.is_some() && self.bundle_handles[i].latency.is_none() {
            let latency = match e.kind() {
                Kind::ToolCall => &mut self.tool_duration,
                Kind::ModelCall => &mut self.model_duration,
                _ => &mut self.rpc_duration,
            };
            self.bundle_handles[i].latency = Some(latency.get([class, name, ""]).clone());
        }
        self.bundle_handles[i].apply(e);
        self.model_tokens(e);
        self.track_agent(e);
        true
    }

    fn model_tokens(&mut self, e: &Event) {
        if let Payload::ModelCall(p) = &e.payload {
            let class = e.agent.class.as_str();
            self.model_tokens
                .get([class, &p.model, "input"])
                .inc_by(p.input_tokens);
            self.model_tokens
                .get([class, &p.model, "output"])
                .inc_by(p.output_tokens);
        }
    }

    fn rpc(&mut self, class: &str, method: &str, e: &Event) {
        let default = if e.kind() == sightline_event::Kind::RpcError {
            "error"
        } else {
            "ok"
        };
        self.rpc_calls
            .get([class, method, outcome(e.outcome, default)])
            .inc();
        if let Some(s) = secs(e.duration_ns) {
            self.rpc_duration.get([class, method, ""]).observe(s);
        }
    }

    /// The agent gauges: an agent counts as active from its first event until it hibernates,
    /// and again when it wakes; `destroy` removes it.
    fn track_agent(&mut self, e: &Event) {
        let hibernate = matches!(e.payload, Payload::AgentHibernate(_));
        let class = e.agent.class.as_str();
        if matches!(e.payload, Payload::Destroy(_)) {
            if let Some(hibernated) = self.agents.remove(&e.agent) {
                let gauge = if hibernated {
                    &mut self.agents_hibernated
                } else {
                    &mut self.agents_active
                };
                gauge.get([class, "", ""]).dec();
            }
            return;
        }
        let full = self.agents.len() >= self.max_agents;
        match self.agents.get_mut(&e.agent) {
            Some(hibernated) => {
                if hibernate && !*hibernated {
                    *hibernated = true;
                    self.agents_active.get([class, "", ""]).dec();
                    self.agents_hibernated.get([class, "", ""]).inc();
                } else if !hibernate && *hibernated {
                    *hibernated = false;
                    self.agents_hibernated.get([class, "", ""]).dec();
                    self.agents_active.get([class, "", ""]).inc();
                }
            }
            None if full => self.untracked_agents.inc(),
            None => {
                self.agents.insert(e.agent.clone(), hibernate);
                let gauge = if hibernate {
                    &mut self.agents_hibernated
                } else {
                    &mut self.agents_active
                };
                gauge.get([class, "", ""]).inc();
            }
        }
    }
}

/// The handles one hot event updates.
struct Bundle {
    events: IntCounter,
    calls: IntCounter,
    latency: Option<Histogram>,
}

impl Bundle {
    #[inline]
    fn apply(&self, e: &Event) {
        self.events.inc();
        self.calls.inc();
        if let (Some(s), Some(h)) = (secs(e.duration_ns), &self.latency) {
            h.observe(s);
        }
    }
}

#[derive(PartialEq, Eq)]
struct BundleKey {
    tag: u16,
    class: SmolStr,
    name: SmolStr,
}

struct BundleRef<'a> {
    tag: u16,
    class: &'a str,
    name: &'a str,
}

impl Hash for BundleKey {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.tag.hash(h);
        self.class.as_str().hash(h);
        self.name.as_str().hash(h);
    }
}

impl Hash for BundleRef<'_> {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.tag.hash(h);
        self.class.hash(h);
        self.name.hash(h);
    }
}

impl hashbrown::Equivalent<BundleKey> for BundleRef<'_> {
    fn equivalent(&self, k: &BundleKey) -> bool {
        self.tag == k.tag
            && crate::guard::eq_short(self.class.as_bytes(), k.class.as_bytes())
            && crate::guard::eq_short(self.name.as_bytes(), k.name.as_bytes())
    }
}

impl Sink for EventMetrics {
    fn write(&mut self, batch: &[Event]) -> Result<(), SinkError> {
        for e in batch {
            self.record(e);
        }
        Ok(())
    }
}
