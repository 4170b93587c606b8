//! `sightline demo`: a fleet of agents on the reference runtime, driven through the pipeline.
//!
//! The agents are real (`sightline-runtime`: SQLite per agent, schedules, fibers, MCP over
//! stdio to our own server, approvals, workflows, connections and email; see `fleet`), and
//! so are their failures (`--fail-rate`). Halfway through, the runtime is restarted as a
//! deploy would: it stops gracefully, stays down for a moment, and starts again on the same
//! directory, so missed cron runs, interrupted fibers and restored MCP connections show.

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Context;
use fastrand::Rng;
use sightline_bus::Bus;
use sightline_event::*;
use sightline_runtime::{Runtime, RuntimeConfig, Store};
use sightline_sink::SinkStats;

use crate::config::Config;
use crate::fleet;
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
    /// Most events per second across the fleet.
    #[arg(long, value_name = "EVENTS_PER_SEC")]
    rate: Option<u64>,
    /// Seed of the clients' choices.
    #[arg(long)]
    seed: Option<u64>,
    /// Fraction of client interactions given a failure, 0.0 to 1.0 (overrides
    /// `[demo] failure_ratio`).
    #[arg(long, value_name = "RATIO")]
    fail_rate: Option<f64>,
    /// Where `/metrics` listens (overrides `[prometheus] listen_addr`; port 0 picks one).
    #[arg(long, value_name = "HOST:PORT")]
    metrics_addr: Option<String>,
    /// Keep serving `/metrics` this long after the fleet stops, so a scraper sees the end.
    #[arg(long, value_name = "SECS", default_value_t = 0)]
    serve_after_secs: u64,
    /// Answer the agents' model calls with the OpenAI-compatible client configured by
    /// OPENAI_BASE_URL, OPENAI_API_KEY and SIGHTLINE_MODEL, instead of the deterministic
    /// local model (the fleet's prompts are made up: point it at a cheap model).
    #[arg(long)]
    openai: bool,
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
    d.failure_ratio = args.fail_rate.unwrap_or(d.failure_ratio);
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
        "sightline demo: {} agents on the reference runtime, at most {} events/s, {} s, fail rate {} (seed {})",
        demo.agents, demo.rate_per_sec, demo.duration_secs, demo.failure_ratio, demo.seed
    );
    let agents_dir = data_dir.join("agents");
    // The demo's agents start afresh each run (their events are counted from sequence 1).
    match std::fs::remove_dir_all(&agents_dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot clear {}", agents_dir.display())),
    }
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(demo.threads.max(1))
        .thread_name("fleet")
        .enable_all()
        .build()
        .context("cannot start the fleet's tokio runtime")?;
    let tools = fleet::Tools {
        command: std::env::current_exe()
            .context("cannot find this program, to start its MCP server")?
            .display()
            .to_string(),
    };
    let runtime_cfg = RuntimeConfig {
        data_dir: agents_dir.clone(),
        idle_hibernate_ms: demo.hibernate_after_ms,
        state_max_bytes: 64 * 1024,
        ..Default::default()
    };
    let model: Option<Arc<dyn sightline_runtime::ModelClient>> = if args.openai {
        let m = sightline_runtime::OpenAiModel::from_env()?;
        eprintln!("model: {}", m.endpoint());
        Some(Arc::new(m))
    } else {
        None
    };
    let new_runtime = || {
        let r = Runtime::new(bus.clone(), runtime_cfg.clone(), tokio.handle().clone());
        if let Some(m) = &model {
            r.set_model(m.clone());
        }
        fleet::register(&r, &tools);
        r
    };
    // What the fleet has emitted so far, as the tally sink's queue has been offered it.
    let offered = || {
        pipeline
            .stats()
            .iter()
            .find(|s| s.name == "tally")
            .map_or(0, |s| s.received + s.queued as u64 + s.dropped.total())
    };
    let start = Instant::now();
    let deadline = start + Duration::from_secs(demo.duration_secs);
    let tty = std::io::stderr().is_terminal();
    let interval = Duration::from_millis(demo.progress_interval_ms.max(50));
    let rate = demo.rate_per_sec.max(1) as f64;
    let next_id = Arc::new(AtomicU64::new(1));
    tokio.block_on(async {
        let in_flight = Arc::new(tokio::sync::Semaphore::new(demo.max_in_flight.max(1)));
        let mut rng = Rng::with_seed(demo.seed);
        let mut driver = Arc::new(fleet::Driver {
            runtime: new_runtime(),
            per_class: demo.agents.div_ceil(fleet::CLASSES.len()).max(1),
            fail_rate: demo.failure_ratio,
            next_id: next_id.clone(),
        });
        let restart_at = start + Duration::from_secs(demo.duration_secs) / 2;
        let mut restarted = false;
        let (mut last_n, mut last_t, mut next_line) =
            (0u64, Instant::now(), Instant::now() + interval);
        loop {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            if now >= next_line {
                let n = offered();
                let r = (n - last_n) as f64 / now.duration_since(last_t).as_secs_f64().max(1e-9);
                (last_n, last_t, next_line) = (n, now, now + interval);
                let line = progress_line(start.elapsed(), r, n, &pipeline.stats());
                if tty {
                    eprint!("\r{line}\x1b[K");
                } else {
                    eprintln!("{line}");
                }
            }
            if !restarted && now >= restart_at {
                restarted = true;
                // A deploy: stop gracefully (what does not finish in time is evicted), stay
                // down past a cron tick, start again on the same directory.
                if tty {
                    eprintln!();
                }
                eprintln!(
                    "deploy: restarting the runtime (agents hibernate; cron runs will be missed)"
                );
                driver.runtime.shutdown(Duration::from_millis(300)).await;
                tokio::time::sleep(Duration::from_millis(1100)).await;
                let runtime = new_runtime();
                let resumed = runtime.resume().unwrap_or(0);
                eprintln!("deploy: runtime back; {resumed} agents have schedules");
                driver = Arc::new(fleet::Driver {
                    runtime,
                    per_class: driver.per_class,
                    fail_rate: driver.fail_rate,
                    next_id: next_id.clone(),
                });
                continue;
            }
            // Under the rate: start a few interactions (as many as there is room for).
            if (offered() as f64) < rate * start.elapsed().as_secs_f64() {
                for _ in 0..16 {
                    let Ok(permit) = in_flight.clone().try_acquire_owned() else {
                        break;
                    };
                    let (d, seed) = (driver.clone(), rng.u64(..));
                    tokio::spawn(async move {
                        d.interact(seed).await;
                        drop(permit);
                    });
                }
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        // Give the interactions under way a moment, then stop the agents: what is still
        // queued runs within the grace period, the rest is evicted; all hibernate.
        let all = u32::try_from(demo.max_in_flight.max(1)).unwrap_or(u32::MAX);
        let _ = tokio::time::timeout(Duration::from_secs(1), in_flight.acquire_many(all)).await;
        driver.runtime.shutdown(Duration::from_secs(1)).await;
    });
    if tty {
        eprintln!();
    }
    drop(tokio);
    // Every agent stopped with its exact last sequence number stored: their sum is what the
    // fleet emitted (counted apart from the sinks).
    let fleet_events: u64 = fleet::databases(&agents_dir)
        .iter()
        .filter_map(|p| Store::open(p).ok()?.meta("seq_reserved").ok()?)
        .sum();
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
        fleet::CLASSES.len(),
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
