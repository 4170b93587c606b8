//! `sightline demo`: a synthetic fleet of agents driven through the pipeline.
//!
//! Until the reference runtime lands, the fleet is simulated: hundreds of agents of four
//! classes, each running the scenarios such an agent runs (RPCs, state updates, schedules with
//! retries and terminal failures, queues, durable fibers that get interrupted and recovered,
//! MCP connections that fail or need OAuth, chat turns with model and tool calls, approvals,
//! workflows, email, connections and hibernation), each scenario one trace.

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Context;
use fastrand::Rng;
use sightline_bus::{Bus, Emitter};
use sightline_event::*;
use sightline_sink::SinkStats;

use crate::config::{Config, DemoConfig};
use crate::pipeline::{self, Assembled, Select};
use crate::render::thousands;

/// Flags of `sightline demo`; each overrides the `[demo]` section of the config.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// How long to run, in seconds.
    #[arg(long, value_name = "SECS")]
    duration: Option<u64>,
    /// Agents in the fleet.
    #[arg(long, value_name = "N")]
    agents: Option<usize>,
    /// Target events per second across the fleet.
    #[arg(long, value_name = "EVENTS_PER_SEC")]
    rate: Option<u64>,
    /// Seed of the scenario generator.
    #[arg(long)]
    seed: Option<u64>,
    /// Where `/metrics` listens (overrides `[prometheus] listen_addr`; port 0 picks one).
    #[arg(long, value_name = "HOST:PORT")]
    metrics_addr: Option<String>,
    /// Keep serving `/metrics` this long after the fleet stops, so a scraper sees the end.
    #[arg(long, value_name = "SECS", default_value_t = 0)]
    serve_after_secs: u64,
    /// Export over OTLP to this collector while the fleet runs (turns `[otlp]` on and sets
    /// its endpoint), e.g. http://127.0.0.1:4317.
    #[arg(long, value_name = "URL")]
    otlp: Option<String>,
    /// The OTLP protocol with `--otlp` (default: `[otlp] protocol`, then
    /// OTEL_EXPORTER_OTLP_PROTOCOL, then grpc).
    #[arg(long, value_name = "grpc|http/protobuf", value_parser = parse_protocol)]
    otlp_protocol: Option<sightline_otlp::Protocol>,
}

fn parse_protocol(v: &str) -> Result<sightline_otlp::Protocol, String> {
    sightline_otlp::Protocol::from_env_value(v)
        .ok_or_else(|| format!("{v:?} is not grpc or http/protobuf"))
}

pub fn run(mut config: Config, args: DemoArgs, data_dir: &Path) -> anyhow::Result<ExitCode> {
    let d = &mut config.demo;
    d.duration_secs = args.duration.unwrap_or(d.duration_secs);
    d.agents = args.agents.unwrap_or(d.agents);
    d.rate_per_sec = args.rate.unwrap_or(d.rate_per_sec);
    d.seed = args.seed.unwrap_or(d.seed);
    if let Some(url) = &args.otlp {
        config.otlp.enabled = true;
        config.otlp.endpoint = Some(url.clone());
    }
    if let Some(p) = args.otlp_protocol {
        config.otlp.protocol = Some(p);
    }
    config.validate()?;
    let demo = config.demo.clone();

    let bus = Bus::new();
    let Assembled {
        pipeline,
        tally,
        failures,
        archive,
        metrics,
        otlp,
    } = pipeline::assemble(&config, data_dir, &bus, Select::All)?;
    if otlp.is_some() {
        let r = config.otlp.resolve(&sightline_otlp::config::ProcessEnv)?;
        eprintln!("otlp: exporting to {} ({:?})", r.logs.url, r.protocol);
    }
    let server = match metrics {
        Some(registry) => {
            let addr = args
                .metrics_addr
                .clone()
                .unwrap_or_else(|| config.prometheus.listen_addr.clone());
            // A configured token that is missing must not silently turn auth off.
            let token = match config.prometheus.bearer_token_env.as_deref() {
                Some(var) => match std::env::var(var) {
                    Ok(t) if !t.is_empty() => Some(t),
                    _ => anyhow::bail!(
                        "prometheus.bearer_token_env names ${var}, which is unset or empty: set it, or remove the key to serve /metrics without auth"
                    ),
                },
                None => None,
            };
            let server = sightline_prometheus::MetricsServer::start(&addr, registry, token)?;
            eprintln!("metrics: http://{}/metrics", server.local_addr());
            Some(server)
        }
        None => None,
    };
    let tally = tally.context("the demo needs its tally sink")?;
    let failures = failures.context("the demo needs its recent_failures sink")?;
    // The clock calibrates on first use; do it before the fleet starts.
    now_unix_ns();

    eprintln!(
        "sightline demo: {} agents, {} events/s target, {} s (seed {})",
        demo.agents, demo.rate_per_sec, demo.duration_secs, demo.seed
    );
    let emitted = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + Duration::from_secs(demo.duration_secs);
    let workers = spawn_fleet(&bus, &demo, deadline, emitted.clone())?;

    // Live progress until the fleet is done.
    let tty = std::io::stderr().is_terminal();
    let interval = Duration::from_millis(demo.progress_interval_ms);
    let (mut last_n, mut last_t) = (0u64, Instant::now());
    loop {
        thread::sleep(
            interval
                .min(deadline.saturating_duration_since(Instant::now()))
                .max(Duration::from_millis(20)),
        );
        if workers.iter().all(|w| w.is_finished()) {
            break;
        }
        let now = Instant::now();
        let n = emitted.load(Ordering::Relaxed);
        let rate = (n - last_n) as f64 / now.duration_since(last_t).as_secs_f64().max(1e-9);
        (last_n, last_t) = (n, now);
        let line = progress_line(start.elapsed(), rate, n, &pipeline.stats());
        if tty {
            eprint!("\r{line}\x1b[K");
        } else {
            eprintln!("{line}");
        }
    }
    if tty {
        eprintln!();
    }
    let mut fleet_events = 0;
    for w in workers {
        fleet_events += w
            .join()
            .map_err(|_| anyhow::anyhow!("a fleet thread panicked"))?;
    }
    let elapsed = start.elapsed();
    if let Some(server) = &server {
        if args.serve_after_secs > 0 {
            // Let the sinks catch up, then keep the final numbers up for scrapers.
            pipeline.flush(Duration::from_secs(5));
            eprintln!(
                "fleet stopped; serving http://{}/metrics for {} s more",
                server.local_addr(),
                args.serve_after_secs
            );
            thread::sleep(Duration::from_secs(args.serve_after_secs));
        }
    }
    let reports = pipeline.shutdown(Duration::from_secs(10));
    let otlp_stats = otlp.as_ref().map(pipeline::final_otlp_stats);
    let metrics_addr = server.as_ref().map(|s| s.local_addr());
    drop(server);
    let t = tally.snapshot();
    let sinks: Vec<SinkStats> = reports.iter().map(|r| r.stats.clone()).collect();
    let undelivered: u64 = reports.iter().map(|r| r.undelivered).sum();

    // ---- summary ----
    let mut out = String::new();
    let secs = elapsed.as_secs_f64();
    out += &format!(
        "\nSightline demo: {} agents in {} classes, {:.1} s, {} events emitted ({}/s)\n",
        demo.agents,
        CLASSES.len(),
        secs,
        thousands(fleet_events),
        thousands((fleet_events as f64 / secs) as u64)
    );
    out += "\nEvents by family (as the tally sink counted them)\n";
    for (family, n) in t.by_family() {
        let kinds = family.kinds().filter(|k| t.kind(*k) > 0).count();
        out += &format!(
            "  {:<10} {:>12}   kinds seen: {kinds}\n",
            family.name(),
            thousands(n)
        );
    }
    let mut outcomes: Vec<_> = t.by_outcome.iter().collect();
    outcomes.sort();
    out += &format!(
        "\nOutcomes: {}\nSeverity: {} warnings, {} errors\n",
        outcomes
            .iter()
            .map(|(k, v)| format!("{k} {}", thousands(**v)))
            .collect::<Vec<_>>()
            .join(", "),
        thousands(t.warnings),
        thousands(t.errors)
    );
    let mut failing: Vec<_> = t.failing_schedules.iter().collect();
    failing.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    out += "\nTop failing schedules (schedule:error, retries exhausted)\n";
    for (cb, n) in failing.iter().take(5) {
        out += &format!("  {cb:<18} {:>8}\n", thousands(**n));
    }
    out += "\nLatest failures (recent_failures sink; sensitive fields not shown)\n";
    for e in failures.events().iter().rev().take(5) {
        out += &format!(
            "  {:<24} {:<32} seq {:<7} {}\n",
            e.kind().name(),
            e.agent.to_string(),
            e.seq,
            safe_detail(e)
        );
    }
    out += "\nSinks\n";
    for s in &sinks {
        out += &format!(
            "  {:<16} received {:>10}  written {:>10}  dropped {:>6}  failed {:>6}  state {:<8} policy {} ({} events redacted)\n",
            s.name,
            thousands(s.received),
            thousands(s.written),
            thousands(s.dropped.total()),
            thousands(s.failed.iter().sum()),
            s.state.name(),
            s.policy,
            thousands(s.events_redacted)
        );
    }
    if let Some(o) = otlp_stats.clone() {
        out += &format!(
            "\nOTLP export: {} events delivered ({} spans, {} log records, {} requests); lost: {} rejected, {} given up, {} left at shutdown, {} too big for the buffer; {} retries{}\n",
            thousands(o.delivered),
            thousands(o.spans_exported),
            thousands(o.log_records_exported),
            thousands(o.requests_ok),
            thousands(o.rejected),
            thousands(o.gave_up),
            thousands(o.dropped_shutdown),
            thousands(o.dropped_queue_full),
            thousands(o.retries),
            o.last_error.map(|e| format!(" (last error: {e})")).unwrap_or_default()
        );
    }
    let dropped: u64 = sinks.iter().map(|s| s.dropped.total()).sum();
    out += &format!(
        "\nLoss: {} dropped at queues, {} undelivered at shutdown, {} sequence gaps seen by tally\n",
        thousands(dropped),
        thousands(undelivered),
        thousands(t.seq_gaps)
    );
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create data dir {}", data_dir.display()))?;
    let summary_path = data_dir.join("demo-summary.json");
    let summary = serde_json::json!({
        "agents": demo.agents,
        "duration_secs": secs,
        "events_emitted": fleet_events,
        "events_counted": t.total,
        "by_family": t.by_family().iter().map(|(f, n)| (f.name(), *n)).collect::<std::collections::BTreeMap<_, _>>(),
        "by_kind": Kind::ALL.iter().filter(|k| t.kind(**k) > 0).map(|k| (k.name(), t.kind(*k))).collect::<std::collections::BTreeMap<_, _>>(),
        "by_outcome": t.by_outcome,
        "errors": t.errors,
        "warnings": t.warnings,
        "failing_schedules": t.failing_schedules,
        "seq_gaps": t.seq_gaps,
        "undelivered": undelivered,
        "otlp": otlp_stats,
        "archive": archive.as_ref().map(|(dir, stats)| serde_json::json!({
            "dir": dir.display().to_string(),
            "stats": stats.snapshot(),
        })),
        "sinks": sinks.iter().map(|s| serde_json::json!({
            "name": s.name.as_str(),
            "received": s.received,
            "written": s.written,
            "dropped": s.dropped.iter().map(|(r, n)| (r.name(), n)).collect::<std::collections::BTreeMap<_, _>>(),
            "failed": s.failed.iter().sum::<u64>(),
            "state": s.state.name(),
            "policy": s.policy.as_str(),
            "events_redacted": s.events_redacted,
            "redactions": s.redactions.iter().map(|(r, a, n)| serde_json::json!({"rule": r.as_str(), "action": a.as_str(), "count": n})).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    });
    std::fs::write(
        &summary_path,
        serde_json::to_string_pretty(&summary)? + "\n",
    )
    .with_context(|| format!("cannot write {}", summary_path.display()))?;
    out += &format!("\nSummary as JSON: {}\n", summary_path.display());
    if let Some(addr) = metrics_addr {
        out += &format!(
            "\nMetrics: served at http://{addr}/metrics while the fleet ran (--serve-after-secs N keeps them up after it;\n  config/prometheus.yml scrapes 127.0.0.1:9464 with the alert rules in config/alerts/, dashboards/ has the Grafana dashboards)\n"
        );
    }
    if let Some((dir, stats)) = &archive {
        let a = stats.snapshot();
        out += &format!(
            "\nArchive: {} events in {} ({} segments closed, {} compressed, {} write errors)\n",
            thousands(a.events_written),
            dir.display(),
            a.segments_sealed,
            a.segments_compressed,
            a.write_errors
        );
        // Suggest the agent of the latest failure: its session has something to show.
        let agent = failures.events().last().map_or_else(
            || "SupportAgent/ticket-0".to_owned(),
            |e| e.agent.to_string(),
        );
        let data = data_dir.display();
        out += &format!(
            "Try:\n  sightline --data-dir {data} session {agent}\n  sightline --data-dir {data} stats\n  sightline --data-dir {data} verify\n  sightline --data-dir {data} tail -n 20 --kind schedule:error\n"
        );
    }
    print!("{out}");
    Ok(ExitCode::SUCCESS)
}

fn progress_line(elapsed: Duration, rate: f64, emitted: u64, sinks: &[SinkStats]) -> String {
    let written: u64 = sinks
        .iter()
        .find(|s| s.name == "tally")
        .map_or(0, |s| s.written);
    let dropped: u64 = sinks.iter().map(|s| s.dropped.total()).sum();
    let failed: u64 = sinks.iter().map(|s| s.failed.iter().sum::<u64>()).sum();
    let queued: usize = sinks.iter().map(|s| s.queued).sum();
    format!(
        "[{:>4.0}s] {:>9} ev/s  emitted {:>11}  tally wrote {:>11}  queued {:>6}  dropped {}  failed {}",
        elapsed.as_secs_f64(),
        thousands(rate as u64),
        thousands(emitted),
        thousands(written),
        queued,
        thousands(dropped),
        thousands(failed)
    )
}

/// A short description of a failure for the summary, from the fields the event model marks
/// safe (the events arrive redacted, so their payloads may be plain JSON).
fn safe_detail(e: &Event) -> String {
    let payload = e.payload.to_json();
    let safe: Vec<String> = e
        .kind()
        .fields()
        .iter()
        .filter(|f| !f.sensitive && !f.name.ends_with("_id") && f.name != "id")
        .filter_map(|f| match payload.get(f.name)? {
            serde_json::Value::String(s) => Some(format!("{}={s}", f.name)),
            serde_json::Value::Number(n) => Some(format!("{}={n}", f.name)),
            _ => None,
        })
        .take(3)
        .collect();
    if safe.is_empty() {
        e.outcome
            .map_or(String::new(), |o| format!("outcome={}", o.name()))
    } else {
        safe.join(" ")
    }
}

// ===== the fleet =====

#[derive(Clone, Copy)]
enum Class {
    Support,
    Research,
    Scheduler,
    Chat,
}

const CLASSES: [Class; 4] = [
    Class::Support,
    Class::Research,
    Class::Scheduler,
    Class::Chat,
];

#[derive(Clone, Copy)]
enum Scenario {
    Rpc,
    State,
    Schedule,
    Queue,
    Fiber,
    Mcp,
    ChatTurn,
    Approval,
    Workflow,
    Email,
    Connection,
    Hibernation,
    Dispatcher,
}

impl Class {
    fn name(self) -> &'static str {
        match self {
            Class::Support => "SupportAgent",
            Class::Research => "ResearchAgent",
            Class::Scheduler => "SchedulerAgent",
            Class::Chat => "ChatAgent",
        }
    }

    fn instance(self, n: usize) -> String {
        match self {
            Class::Support => format!("ticket-{}", 4000 + n),
            Class::Research => format!("research-{n}"),
            Class::Scheduler => format!("tenant-{n}"),
            Class::Chat => format!("user-{n}"),
        }
    }

    fn mix(self) -> &'static [(Scenario, u32)] {
        use Scenario::*;
        match self {
            Class::Support => &[
                (Rpc, 20),
                (State, 15),
                (ChatTurn, 15),
                (Approval, 8),
                (Email, 8),
                (Schedule, 10),
                (Queue, 5),
                (Connection, 8),
                (Hibernation, 5),
                (Mcp, 4),
                (Dispatcher, 2),
            ],
            Class::Research => &[
                (Fiber, 22),
                (Mcp, 18),
                (ChatTurn, 15),
                (Workflow, 12),
                (Rpc, 10),
                (State, 10),
                (Schedule, 5),
                (Hibernation, 5),
                (Dispatcher, 3),
            ],
            Class::Scheduler => &[
                (Schedule, 40),
                (Queue, 22),
                (Rpc, 10),
                (State, 10),
                (Workflow, 6),
                (Fiber, 5),
                (Hibernation, 4),
                (Dispatcher, 3),
            ],
            Class::Chat => &[
                (ChatTurn, 30),
                (Connection, 22),
                (Rpc, 15),
                (State, 15),
                (Hibernation, 10),
                (Approval, 4),
                (Email, 2),
                (Mcp, 2),
            ],
        }
    }
}

fn spawn_fleet(
    bus: &Bus,
    demo: &DemoConfig,
    deadline: Instant,
    emitted: Arc<AtomicU64>,
) -> anyhow::Result<Vec<thread::JoinHandle<u64>>> {
    let threads = demo.threads.min(demo.agents).max(1);
    let mut shares: Vec<Vec<Agent>> = (0..threads).map(|_| Vec::new()).collect();
    for n in 0..demo.agents {
        let class = CLASSES[n % CLASSES.len()];
        let emitter = bus.emitter(class.name(), class.instance(n / CLASSES.len()));
        shares[n % threads].push(Agent::new(class, emitter));
    }
    let per_thread = demo.rate_per_sec as f64 / threads as f64;
    let mut handles = Vec::new();
    for (i, agents) in shares.into_iter().enumerate() {
        let emitted = emitted.clone();
        let mut sim = Sim {
            rng: Rng::with_seed(demo.seed.wrapping_add(i as u64 * 0x9E37_79B9)),
            failure: demo.failure_ratio,
            next_id: 0,
        };
        let handle = thread::Builder::new()
            .name(format!("fleet-{i}"))
            .spawn(move || {
                let mut agents = agents;
                let start = Instant::now();
                let mut produced = 0u64;
                while Instant::now() < deadline {
                    let allowed = (start.elapsed().as_secs_f64() * per_thread) as u64;
                    if produced >= allowed {
                        thread::sleep(Duration::from_millis(1));
                        continue;
                    }
                    let idx = sim.rng.usize(..agents.len());
                    let agent = &mut agents[idx];
                    let before = agent.emitter.last_seq();
                    sim.step(agent);
                    let n = agent.emitter.last_seq() - before;
                    produced += n;
                    emitted.fetch_add(n, Ordering::Relaxed);
                }
                produced
            })
            .context("cannot start a fleet thread")?;
        handles.push(handle);
    }
    Ok(handles)
}

struct Agent {
    class: Class,
    emitter: Emitter,
    state_version: u64,
    state_size: u64,
    connections: Vec<Name>,
    hibernating_since: Option<Instant>,
    mcp_ready: bool,
}

impl Agent {
    fn new(class: Class, emitter: Emitter) -> Self {
        Self {
            class,
            emitter,
            state_version: 0,
            state_size: 512,
            connections: Vec::new(),
            hibernating_since: None,
            mcp_ready: false,
        }
    }
}

struct Sim {
    rng: Rng,
    failure: f64,
    next_id: u64,
}

/// Emits an operation: outcome, duration and the span it ran in.
fn op<P: EventPayload>(
    e: &Emitter,
    outcome: Outcome,
    duration_ns: u64,
    span: TraceContext,
    build: impl FnOnce() -> P,
) {
    e.emit_with(|m| {
        m.outcome = Some(outcome);
        m.duration_ns = Some(duration_ns);
        m.trace = Some(span);
        build()
    });
}

/// Emits a point event that happened inside `span`.
fn in_span<P: EventPayload>(e: &Emitter, span: TraceContext, build: impl FnOnce() -> P) {
    e.emit_with(|m| {
        m.trace = Some(span);
        build()
    });
}

fn pick<T: Copy>(rng: &mut Rng, items: &[T]) -> T {
    items[rng.usize(..items.len())]
}

fn ms(d: u64) -> u64 {
    d * 1_000_000
}

impl Sim {
    fn fails(&mut self) -> bool {
        self.rng.f64() < self.failure
    }

    fn chance(&mut self, p: f64) -> bool {
        self.rng.f64() < p
    }

    /// A duration around `median_ms`, with a long tail.
    fn dur_ns(&mut self, median_ms: u64) -> u64 {
        let base = ms(median_ms) as f64 * (0.3 + 1.4 * self.rng.f64());
        let tail = if self.chance(0.05) {
            3.0 + 7.0 * self.rng.f64()
        } else {
            1.0
        };
        (base * tail) as u64
    }

    fn id(&mut self, prefix: &str) -> Name {
        self.next_id += 1;
        Name::from(format!("{prefix}_{:x}", self.next_id))
    }

    fn step(&mut self, a: &mut Agent) {
        let mix = a.class.mix();
        let total: u32 = mix.iter().map(|(_, w)| w).sum();
        let mut roll = self.rng.u32(..total);
        let mut scenario = mix[0].0;
        for (s, w) in mix {
            if roll < *w {
                scenario = *s;
                break;
            }
            roll -= w;
        }
        // A hibernating agent wakes for whatever comes next.
        if let Some(since) = a.hibernating_since.take() {
            let hibernated_ms = since.elapsed().as_millis() as u64;
            let trigger = match scenario {
                Scenario::Schedule | Scenario::Queue => "alarm",
                Scenario::Connection => "connect",
                _ => "rpc",
            };
            let d = self.dur_ns(4);
            a.emitter.emit_with(|m| {
                m.outcome = Some(Outcome::Ok);
                m.duration_ns = Some(d);
                AgentWake {
                    trigger: Name::new_static(trigger),
                    hibernated_ms,
                }
            });
        }
        let root = TraceContext::new_root();
        a.emitter.set_trace(Some(root));
        match scenario {
            Scenario::Rpc => self.rpc(a, root),
            Scenario::State => self.state(a),
            Scenario::Schedule => self.schedule(a, root),
            Scenario::Queue => self.queue(a, root),
            Scenario::Fiber => self.fiber(a, root),
            Scenario::Mcp => self.mcp(a, root),
            Scenario::ChatTurn => self.chat_turn(a, root),
            Scenario::Approval => self.approval(a, root),
            Scenario::Workflow => self.workflow(a, root),
            Scenario::Email => self.email(a),
            Scenario::Connection => self.connection(a),
            Scenario::Hibernation => self.hibernate(a),
            Scenario::Dispatcher => self.dispatcher(a),
        }
        a.emitter.set_trace(None);
    }

    fn rpc(&mut self, a: &mut Agent, root: TraceContext) {
        const METHODS: [&str; 6] = [
            "getTicket",
            "updateTicket",
            "search",
            "summarize",
            "listItems",
            "setPreference",
        ];
        let method = Name::new_static(pick(&mut self.rng, &METHODS));
        let caller = a.connections.first().cloned();
        let d = self.dur_ns(12);
        if self.fails() {
            let timeout = self.chance(0.3);
            a.emitter.emit_with(|m| {
                m.outcome = Some(if timeout {
                    Outcome::Timeout
                } else {
                    Outcome::Error
                });
                m.duration_ns = Some(if timeout { ms(30_000) } else { d });
                m.trace = Some(root);
                RpcError {
                    method,
                    error: if timeout {
                        "request timed out after 30000 ms".into()
                    } else {
                        "TypeError: cannot read properties of undefined (reading 'assignee')".into()
                    },
                    error_type: Some(Name::new_static(if timeout {
                        "timeout"
                    } else {
                        "TypeError"
                    })),
                    caller,
                }
            });
        } else {
            let streaming = self.chance(0.1);
            op(&a.emitter, Outcome::Ok, d, root, || Rpc {
                method,
                streaming,
                caller,
            });
        }
        if self.chance(0.4) {
            self.state(a);
        }
    }

    fn state(&mut self, a: &mut Agent) {
        const PATHS: [&str; 6] = [
            "/messages",
            "/status",
            "/preferences",
            "/tickets",
            "/cursor",
            "/summary",
        ];
        let grow = self.rng.u64(0..4096);
        if self.chance(self.failure / 2.0) {
            let size = 1_048_576 + grow * 64;
            a.emitter.emit(|| StateRejected {
                version: a.state_version,
                reason: format!("state is {size} bytes, over the 1048576-byte limit").into(),
                size_bytes: Some(size),
                limit_bytes: Some(1_048_576),
            });
            return;
        }
        a.state_version += 1;
        a.state_size = (a.state_size + grow).min(900_000);
        let path = pick(&mut self.rng, &PATHS);
        let value = self.rng.u32(..1000);
        let (version, size) = (a.state_version, a.state_size);
        let source = a
            .connections
            .first()
            .cloned()
            .unwrap_or(Name::new_static("server"));
        a.emitter.emit(|| StateUpdate {
            version,
            changed_paths: vec![Name::new_static(path)],
            size_bytes: size,
            diff: Some(Sensitive(
                serde_json::json!([{"op": "replace", "path": path, "value": value}]),
            )),
            source: Some(source),
        });
    }

    fn schedule(&mut self, a: &mut Agent, root: TraceContext) {
        const CALLBACKS: [&str; 6] = [
            "sendDigest",
            "syncTickets",
            "refreshIndex",
            "billingRollup",
            "cleanupSessions",
            "pollInbox",
        ];
        let callback = Name::new_static(pick(&mut self.rng, &CALLBACKS));
        let id = self.id("sch");
        let schedule_type = pick(
            &mut self.rng,
            &[
                ScheduleType::Delay,
                ScheduleType::Cron,
                ScheduleType::Interval,
                ScheduleType::At,
            ],
        );
        let cron = (schedule_type == ScheduleType::Cron).then(|| Name::new_static("*/5 * * * *"));
        let interval_ms = matches!(schedule_type, ScheduleType::Delay | ScheduleType::Interval)
            .then(|| self.rng.u64(1_000..600_000));
        let fire_at_ms = Some(now_unix_ns() / 1_000_000 + interval_ms.unwrap_or(300_000));
        a.emitter.emit(|| ScheduleCreate {
            callback: callback.clone(),
            id: id.clone(),
            schedule_type,
            cron,
            interval_ms,
            fire_at_ms,
        });
        if self.chance(0.03) {
            a.emitter.emit(|| ScheduleDuplicateWarning {
                callback: callback.clone(),
                count: 12,
                schedule_type,
            });
        }
        if self.chance(0.05) {
            a.emitter.emit(|| ScheduleCancel {
                callback: callback.clone(),
                id: id.clone(),
            });
            return;
        }
        if schedule_type == ScheduleType::Cron && self.chance(0.04) {
            let missed_runs = self.rng.u32(1..6);
            a.emitter.emit(|| ScheduleMissed {
                callback: callback.clone(),
                id: id.clone(),
                missed_runs,
                downtime_ms: missed_runs as u64 * 300_000,
            });
        }
        if schedule_type == ScheduleType::Interval && self.chance(0.04) {
            a.emitter.emit(|| ScheduleSkipped {
                callback: callback.clone(),
                id: id.clone(),
                reason: Name::new_static("overlap"),
            });
        }
        // Billing rollups fail more: the "top failing schedule" has a culprit.
        let fail_p = if &*callback == "billingRollup" {
            self.failure * 4.0
        } else {
            self.failure
        };
        let lateness_ms = self.rng.u64(0..250);
        let span = root.child();
        let max_attempts = 3;
        let mut total = 0;
        for attempt in 1..=max_attempts {
            in_span(&a.emitter, span, || ScheduleExecute {
                callback: callback.clone(),
                id: id.clone(),
                attempt,
                lateness_ms,
            });
            total += self.dur_ns(40);
            // A callback that failed once usually fails again (a bad deploy, a dead upstream).
            let p = if attempt == 1 { fail_p } else { 0.6 };
            if !self.chance(p) {
                op(&a.emitter, Outcome::Ok, total, span, || ScheduleComplete {
                    callback: callback.clone(),
                    id: id.clone(),
                    attempts: attempt,
                    lateness_ms,
                });
                if self.chance(0.3) {
                    self.fiber(a, span);
                }
                return;
            }
            let error = format!(
                "upstream 503 from billing.internal while processing invoice for customer {}",
                self.rng.u32(1000..9999)
            );
            if attempt < max_attempts {
                let backoff_ms = self.rng.u64(0..(100u64 << attempt).min(3_000));
                total += ms(backoff_ms);
                in_span(&a.emitter, span, || ScheduleRetry {
                    callback: callback.clone(),
                    id: id.clone(),
                    attempt,
                    max_attempts,
                    backoff_ms,
                    error: Some(error.into()),
                });
            } else {
                op(&a.emitter, Outcome::Error, total, span, || ScheduleError {
                    callback: callback.clone(),
                    id: id.clone(),
                    error: error.into(),
                    attempts: attempt,
                    error_type: Some(Name::new_static("UpstreamUnavailable")),
                });
            }
        }
    }

    fn queue(&mut self, a: &mut Agent, root: TraceContext) {
        const CALLBACKS: [&str; 4] = [
            "indexDocument",
            "sendNotification",
            "resizeImage",
            "syncContact",
        ];
        let callback = Name::new_static(pick(&mut self.rng, &CALLBACKS));
        let id = self.id("q");
        a.emitter.emit(|| QueueCreate {
            callback: callback.clone(),
            id: id.clone(),
        });
        let wait_ms = self.rng.u64(0..2_000);
        let span = root.child();
        let mut total = 0;
        for attempt in 1..=3 {
            total += self.dur_ns(25);
            if !self.fails() {
                op(&a.emitter, Outcome::Ok, total, span, || QueueComplete {
                    callback: callback.clone(),
                    id: id.clone(),
                    attempts: attempt,
                    wait_ms,
                });
                return;
            }
            if attempt < 3 {
                in_span(&a.emitter, span, || QueueRetry {
                    callback: callback.clone(),
                    id: id.clone(),
                    attempt,
                    max_attempts: 3,
                    backoff_ms: 100 << attempt,
                    error: Some("ECONNRESET".into()),
                });
            } else {
                op(&a.emitter, Outcome::Error, total, span, || QueueError {
                    callback: callback.clone(),
                    id: id.clone(),
                    error: "ECONNRESET after 3 attempts".into(),
                    attempts: 3,
                });
            }
        }
    }

    fn fiber(&mut self, a: &mut Agent, parent: TraceContext) {
        const FIBERS: [&str; 4] = [
            "researchReport",
            "importMailbox",
            "reindexCorpus",
            "planTrip",
        ];
        let fiber_name = Name::new_static(pick(&mut self.rng, &FIBERS));
        let fiber_id = self.id("fib");
        let span = parent.child();
        in_span(&a.emitter, span, || FiberRunStarted {
            fiber_id: fiber_id.clone(),
            fiber_name: fiber_name.clone(),
        });
        let steps = self.rng.u32(1..5);
        for step in 1..=steps {
            let size_bytes = self.rng.u64(200..20_000);
            in_span(&a.emitter, span, || FiberStash {
                fiber_id: fiber_id.clone(),
                fiber_name: fiber_name.clone(),
                step,
                size_bytes,
            });
        }
        let d = self.dur_ns(800);
        if self.chance(self.failure * 1.5) {
            // Evicted mid-run; found again on the next start.
            op(&a.emitter, Outcome::Cancelled, d, span, || {
                FiberRunInterrupted {
                    fiber_id: fiber_id.clone(),
                    fiber_name: fiber_name.clone(),
                    reason: Some(Name::new_static("eviction")),
                    steps,
                }
            });
            let age_ms = self.rng.u64(1_000..90_000_000);
            a.emitter.emit(|| FiberRecoveryDetected {
                fiber_id: fiber_id.clone(),
                fiber_name: fiber_name.clone(),
                age_ms,
                last_step: steps,
            });
            if age_ms > 86_400_000 {
                a.emitter.emit(|| FiberRecoverySkipped {
                    fiber_id: fiber_id.clone(),
                    fiber_name: fiber_name.clone(),
                    reason: Name::new_static("max_age_exceeded"),
                });
                return;
            }
            let rec = span.child();
            for attempt in 1..=2 {
                in_span(&a.emitter, rec, || FiberRecoveryAttempt {
                    fiber_id: fiber_id.clone(),
                    fiber_name: fiber_name.clone(),
                    attempt,
                });
                let d = self.dur_ns(50);
                if !self.chance(0.3) {
                    op(&a.emitter, Outcome::Ok, d, rec, || FiberRecoveryHandled {
                        fiber_id: fiber_id.clone(),
                        fiber_name: fiber_name.clone(),
                        attempt,
                    });
                    return;
                }
                op(&a.emitter, Outcome::Error, d, rec, || FiberRecoveryFailed {
                    fiber_id: fiber_id.clone(),
                    fiber_name: fiber_name.clone(),
                    error: "onFiberRecovered threw: stash schema v2 expected, found v1".into(),
                    attempt,
                });
            }
        } else if self.fails() {
            op(&a.emitter, Outcome::Error, d, span, || FiberRunFailed {
                fiber_id: fiber_id.clone(),
                fiber_name: fiber_name.clone(),
                error: "RangeError: maximum call stack size exceeded".into(),
                steps,
            });
        } else {
            op(&a.emitter, Outcome::Ok, d, span, || FiberRunCompleted {
                fiber_id: fiber_id.clone(),
                fiber_name: fiber_name.clone(),
                steps,
            });
        }
    }

    fn mcp(&mut self, a: &mut Agent, root: TraceContext) {
        const SERVERS: [(&str, &str); 4] = [
            ("github", "https://mcp.github.example/mcp"),
            ("linear", "https://mcp.linear.example/sse"),
            (
                "search",
                "https://search.example/mcp?api_key=sk-demo-not-a-real-key",
            ),
            (
                "filesystem",
                "npx @modelcontextprotocol/server-filesystem /srv/data",
            ),
        ];
        let (server, url) = pick(&mut self.rng, &SERVERS);
        let server_name = Name::new_static(server);
        let server_id = Name::from(format!("srv_{server}"));
        let transport = if url.starts_with("npx") {
            McpTransport::Stdio
        } else {
            McpTransport::StreamableHttp
        };
        if !a.mcp_ready || self.chance(0.1) {
            a.emitter.emit(|| McpClientPreconnect {
                server_id: server_id.clone(),
            });
            let d = self.dur_ns(120);
            let span = root.child();
            if self.chance(self.failure * 2.0) {
                let refused = self.chance(0.5);
                op(&a.emitter, Outcome::Error, d, span, || McpClientConnect {
                    server_id: server_id.clone(),
                    server_name: server_name.clone(),
                    url: url.into(),
                    transport,
                    state: McpState::Failed,
                    error: Some(if refused {
                        "connect ECONNREFUSED 10.0.3.7:443".into()
                    } else {
                        "401 Unauthorized: token expired".into()
                    }),
                });
                a.mcp_ready = false;
                return;
            }
            if transport != McpTransport::Stdio && self.chance(0.03) {
                op(&a.emitter, Outcome::Ok, d, span, || McpClientConnect {
                    server_id: server_id.clone(),
                    server_name: server_name.clone(),
                    url: url.into(),
                    transport,
                    state: McpState::Authenticating,
                    error: None,
                });
                let state = self.rng.u64(..u64::MAX);
                a.emitter.emit(|| McpClientAuthorize {
                    server_id: server_id.clone(),
                    auth_url: format!("https://auth.example/authorize?client_id=agents&state={state:x}&code_challenge=E9Melhoa2Owv").into(),
                });
                return;
            }
            op(&a.emitter, Outcome::Ok, d, span, || McpClientConnect {
                server_id: server_id.clone(),
                server_name: server_name.clone(),
                url: url.into(),
                transport,
                state: McpState::Connected,
                error: None,
            });
            let count = self.rng.u32(3..25);
            let d = self.dur_ns(30);
            op(&a.emitter, Outcome::Ok, d, span.child(), || {
                McpClientDiscover {
                    server_id: server_id.clone(),
                    server_name: server_name.clone(),
                    capability: Some(Name::new_static("tools")),
                    count: Some(count),
                    state: Some(McpState::Ready),
                    error: None,
                }
            });
            a.mcp_ready = true;
        }
        // A tool call through the server.
        const TOOLS: [&str; 4] = ["search_issues", "create_comment", "web_search", "read_file"];
        let tool = Name::new_static(pick(&mut self.rng, &TOOLS));
        let call = root.child();
        let d = self.dur_ns(200);
        let failed = self.fails();
        let tool_call_id = self.id("call");
        a.emitter.emit_with(|m| {
            m.op(
                if failed { Outcome::Error } else { Outcome::Ok },
                Duration::from_nanos(d),
            );
            m.trace = Some(call.child());
            McpRequest {
                server_id: server_id.clone(),
                server_name: server_name.clone(),
                method: Name::new_static("tools/call"),
                tool_name: Some(tool.clone()),
                error: failed.then(|| "MCP error -32603: internal error".into()),
            }
        });
        a.emitter.emit_with(|m| {
            m.op(
                if failed { Outcome::Error } else { Outcome::Ok },
                Duration::from_nanos(d + ms(2)),
            );
            m.trace = Some(call);
            ToolCall {
                tool_call_id,
                tool_name: tool,
                source: Some(server_name.clone()),
                arguments: Some(Sensitive(
                    serde_json::json!({"query": "refund policy for order 88412"}),
                )),
                error: failed.then(|| "tool failed: MCP error -32603".into()),
            }
        });
        if self.chance(0.05) {
            a.emitter.emit(|| McpClientClose {
                server_id,
                server_name,
                url: Some(url.into()),
                state: McpState::Closed,
                phase: Some(Name::new_static("idle")),
                error: None,
            });
            a.mcp_ready = false;
        }
    }

    fn model_call(&mut self, a: &Agent, parent: TraceContext, request_id: &Name) -> bool {
        const MODELS: [(&str, &str); 4] = [
            ("gpt-4.1-mini", "openai"),
            ("claude-sonnet-4-5", "anthropic"),
            ("llama-3.3-70b", "workers-ai"),
            ("local-echo", "local"),
        ];
        let (model, provider) = pick(&mut self.rng, &MODELS);
        let failed = self.fails();
        let input_tokens = self.rng.u64(200..6_000);
        let output_tokens = if failed { 0 } else { self.rng.u64(20..900) };
        let d = self.dur_ns(900);
        let _ = request_id;
        a.emitter.emit_with(|m| {
            m.op(
                if failed { Outcome::Error } else { Outcome::Ok },
                Duration::from_nanos(d),
            );
            m.trace = Some(parent.child());
            ModelCall {
                model: Name::new_static(model),
                provider: Name::new_static(provider),
                input_tokens,
                output_tokens,
                finish_reason: (!failed).then(|| Name::new_static("stop")),
                error: failed
                    .then(|| "429 Too Many Requests: rate limit reached for requests".into()),
            }
        });
        !failed
    }

    fn chat_turn(&mut self, a: &mut Agent, root: TraceContext) {
        let request_id = self.id("req");
        a.emitter.emit(|| ChatTurnStart {
            request_id: request_id.clone(),
        });
        a.emitter.emit(|| MessageRequest {
            request_id: request_id.clone(),
        });
        let turn = root.child();
        let mut ok = self.model_call(a, turn, &request_id);
        if ok && self.chance(0.4) {
            let tool_call_id = self.id("call");
            let tool = Name::new_static(pick(
                &mut self.rng,
                &["lookup_order", "get_weather", "create_ticket"],
            ));
            let d = self.dur_ns(60);
            op(&a.emitter, Outcome::Ok, d, turn.child(), || ToolCall {
                tool_call_id: tool_call_id.clone(),
                tool_name: tool.clone(),
                source: Some(Name::new_static("local")),
                arguments: Some(Sensitive(
                    serde_json::json!({"order_id": "88412", "email": "jane.doe@example.com"}),
                )),
                error: None,
            });
            a.emitter.emit(|| ToolResult {
                tool_call_id,
                tool_name: tool,
            });
            ok = self.model_call(a, turn, &request_id);
        }
        if ok && self.chance(0.03) {
            let stalled_ms = self.rng.u64(5_000..30_000);
            a.emitter.emit(|| ChatStreamStalled {
                request_id: request_id.clone(),
                stalled_ms,
            });
            a.emitter.emit(|| ChatRecoveryStarted {
                request_id: request_id.clone(),
            });
            let d = self.dur_ns(300);
            a.emitter.emit_with(|m| {
                m.op(Outcome::Ok, Duration::from_nanos(d));
                ChatRecoveryCompleted {
                    request_id: request_id.clone(),
                }
            });
        }
        let d = self.dur_ns(1500);
        if ok {
            a.emitter.emit_with(|m| {
                m.op(Outcome::Ok, Duration::from_nanos(d));
                MessageResponse {
                    request_id: request_id.clone(),
                }
            });
        } else {
            a.emitter.emit_with(|m| {
                m.op(Outcome::Error, Duration::from_nanos(d));
                MessageError {
                    request_id: request_id.clone(),
                    error: "model call failed: 429 Too Many Requests".into(),
                }
            });
        }
        a.emitter.emit_with(|m| {
            m.op(
                if ok { Outcome::Ok } else { Outcome::Error },
                Duration::from_nanos(d + ms(3)),
            );
            m.trace = Some(turn);
            ChatTurnFinish {
                request_id,
                status: Name::new_static(if ok { "completed" } else { "error" }),
            }
        });
    }

    fn approval(&mut self, a: &mut Agent, root: TraceContext) {
        let approval_id = self.id("apr");
        let tool_call_id = self.id("call");
        let action = Name::new_static(pick(
            &mut self.rng,
            &["refund", "delete_account", "send_contract"],
        ));
        a.emitter.emit(|| ApprovalRequested {
            approval_id: approval_id.clone(),
            action: action.clone(),
            tool_call_id: Some(tool_call_id.clone()),
            prompt: Some("Refund $240.00 to card ending 4242 for order 88412?".into()),
            expires_in_ms: Some(3_600_000),
        });
        let wait = self.dur_ns(45_000);
        let roll = self.rng.f64();
        let span = root.child();
        let approved = roll < 0.75;
        if roll < 0.75 {
            op(&a.emitter, Outcome::Ok, wait, span, || ApprovalGranted {
                approval_id,
                action,
                decided_by: Some("ops-lead@example.com".into()),
            });
        } else if roll < 0.92 {
            op(&a.emitter, Outcome::Rejected, wait, span, || {
                ApprovalDenied {
                    approval_id,
                    action,
                    decided_by: Some("ops-lead@example.com".into()),
                    reason: Some("amount over policy".into()),
                }
            });
        } else {
            op(&a.emitter, Outcome::Timeout, ms(3_600_000), span, || {
                ApprovalExpired {
                    approval_id,
                    action,
                }
            });
        }
        a.emitter.emit(|| ToolApproval {
            tool_call_id,
            approved,
        });
    }

    fn workflow(&mut self, a: &mut Agent, root: TraceContext) {
        let workflow_id = self.id("wf");
        let workflow_name = Some(Name::new_static(pick(
            &mut self.rng,
            &["onboarding", "quarterly-report", "vendor-review"],
        )));
        a.emitter.emit(|| WorkflowStart {
            workflow_id: workflow_id.clone(),
            workflow_name: workflow_name.clone(),
        });
        a.emitter.emit(|| WorkflowEvent {
            workflow_id: workflow_id.clone(),
            workflow_name: workflow_name.clone(),
            event_type: Some(Name::new_static("document_uploaded")),
        });
        if self.chance(0.4) {
            a.emitter.emit(|| WorkflowPaused {
                workflow_id: workflow_id.clone(),
                workflow_name: workflow_name.clone(),
                reason: Some(Name::new_static("awaiting_approval")),
            });
            if self.chance(0.85) {
                a.emitter.emit(|| WorkflowApproved {
                    workflow_id: workflow_id.clone(),
                    workflow_name: workflow_name.clone(),
                    reason: Some("looks good".into()),
                });
                a.emitter.emit(|| WorkflowResumed {
                    workflow_id: workflow_id.clone(),
                    workflow_name: workflow_name.clone(),
                });
            } else {
                a.emitter.emit(|| WorkflowRejected {
                    workflow_id: workflow_id.clone(),
                    workflow_name: workflow_name.clone(),
                    reason: Some("missing tax form".into()),
                });
                a.emitter.emit(|| WorkflowTerminated {
                    workflow_id: workflow_id.clone(),
                    workflow_name: workflow_name.clone(),
                    reason: Some("rejected by reviewer".into()),
                });
                return;
            }
        }
        if self.chance(0.02) {
            a.emitter.emit(|| WorkflowRestarted {
                workflow_id: workflow_id.clone(),
                workflow_name: workflow_name.clone(),
            });
        }
        let d = self.dur_ns(5_000);
        let span = root.child();
        if self.fails() {
            op(&a.emitter, Outcome::Error, d, span, || WorkflowError {
                workflow_id,
                workflow_name,
                step: Some(Name::new_static("generate-pdf")),
                error: "step generate-pdf: out of memory".into(),
            });
        } else {
            let steps = self.rng.u32(2..9);
            op(&a.emitter, Outcome::Ok, d, span, || WorkflowComplete {
                workflow_id,
                workflow_name,
                steps,
            });
        }
    }

    fn email(&mut self, a: &mut Agent) {
        let n = self.rng.u32(1..500);
        a.emitter.emit(|| EmailReceive {
            from: format!("customer{n}@example.com").into(),
            to: "support@agents.example".into(),
            subject: Some(format!("Order #{} arrived damaged", 88_000 + n).into()),
        });
        if self.chance(0.8) {
            a.emitter.emit(|| EmailReply {
                from: "support@agents.example".into(),
                to: format!("customer{n}@example.com").into(),
                subject: Some(format!("Re: Order #{} arrived damaged", 88_000 + n).into()),
            });
        }
    }

    fn connection(&mut self, a: &mut Agent) {
        if a.connections.len() < 3 && (a.connections.is_empty() || self.chance(0.6)) {
            let id = self.id("conn");
            a.emitter.emit(|| Connect {
                connection_id: id.clone(),
            });
            a.connections.push(id);
        } else if let Some(id) = a.connections.pop() {
            let (code, reason) = if self.chance(0.1) {
                (1011, Some("internal error".into()))
            } else {
                (1000, None)
            };
            a.emitter.emit(|| Disconnect {
                connection_id: id,
                code,
                reason,
            });
        }
    }

    fn hibernate(&mut self, a: &mut Agent) {
        if a.connections.is_empty() {
            let idle_ms = self.rng.u64(10_000..120_000);
            a.emitter.emit(|| AgentHibernate { idle_ms });
            a.hibernating_since = Some(Instant::now());
        }
    }

    fn dispatcher(&mut self, a: &mut Agent) {
        let roll = self.rng.f64();
        if roll < 0.6 {
            let waited_ms = self.rng.u64(500..5_000);
            a.emitter.emit(|| JobSlowDispatch {
                job: Name::new_static("alarm"),
                waited_ms,
            });
        } else if roll < 0.95 {
            let backlog = self.rng.u64(100..1_000);
            a.emitter.emit(|| JobBacklogWarning {
                backlog,
                threshold: 100,
            });
        } else {
            let strikes = self.rng.u32(1..4);
            a.emitter.emit(|| AlarmMemoryLimitReset {
                strikes,
                limit: 3,
                sealed: strikes >= 3,
                error: Some("Exceeded memory limit of 128 MB".into()),
            });
        }
    }
}
