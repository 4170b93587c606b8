//! `sightline demo`: a fleet of agents on the reference runtime, driven through the pipeline.
//!
//! The agents are real (`sightline-runtime`: SQLite per agent, schedules, fibers, MCP over
//! stdio to our own server, approvals, workflows, connections and email), and so are their
//! failures (`--fail-rate`). Halfway through, the runtime is restarted as a deploy would: it
//! stops gracefully, stays down for a moment, and starts again on the same directory, so
//! missed cron runs, interrupted fibers and restored MCP connections show. The run itself is
//! `sightline_demo::run`; this module turns the flags into its options and renders its
//! progress (a live line on stderr) and its summary (text on stdout).

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use sightline_demo::{fleet::Tools, DemoOptions, DemoSummary, Progress, Tick};
use sightline_pipeline::Config;

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

/// Runs `sightline demo`.
pub fn run(config: Config, args: DemoArgs, data_dir: &Path) -> anyhow::Result<ExitCode> {
    let options = DemoOptions {
        duration_secs: args.duration,
        agents: args.agents,
        rate_per_sec: args.rate,
        seed: args.seed,
        fail_rate: args.fail_rate,
        metrics_addr: args.metrics_addr,
        serve_after_secs: args.serve_after_secs,
        openai: args.openai,
        otlp: args.otlp,
        otlp_protocol: args.otlp_protocol,
        // The agents' MCP server is this very binary: `sightline mcp-server`.
        tools: Tools {
            command: std::env::current_exe()
                .context("cannot find this program, to start its MCP server")?
                .display()
                .to_string(),
        },
    };
    let tty = std::io::stderr().is_terminal();
    let summary = sightline_demo::run(config, &options, data_dir, |p| show(p, tty))?;
    print!("{}", render_summary(&summary, data_dir));
    Ok(ExitCode::SUCCESS)
}

/// Shows one step of a running demo on stderr: on a terminal the live line redraws itself.
fn show(p: &Progress, tty: bool) {
    match p {
        Progress::Exporting { url, protocol } => {
            eprintln!("otlp: exporting to {url} ({protocol:?})");
        }
        Progress::Metrics { addr } => eprintln!("metrics: http://{addr}/metrics"),
        Progress::Started {
            agents,
            rate_per_sec,
            duration_secs,
            failure_ratio,
            seed,
        } => eprintln!(
            "sightline demo: {agents} agents on the reference runtime, at most {rate_per_sec} events/s, {duration_secs} s, fail rate {failure_ratio} (seed {seed})"
        ),
        Progress::Model { endpoint } => eprintln!("model: {endpoint}"),
        Progress::Tick(t) => {
            let line = progress_line(t);
            if tty {
                eprint!("\r{line}\x1b[K");
            } else {
                eprintln!("{line}");
            }
        }
        Progress::DeployStopping => {
            if tty {
                eprintln!();
            }
            eprintln!("deploy: restarting the runtime (agents hibernate; cron runs will be missed)");
        }
        Progress::DeployBack { resumed } => {
            eprintln!("deploy: runtime back; {resumed} agents have schedules");
        }
        Progress::FleetStopped => {
            if tty {
                eprintln!();
            }
        }
        Progress::ServingAfter { addr, secs } => {
            eprintln!("fleet stopped; serving http://{addr}/metrics for {secs} s more");
        }
    }
}

/// The summary as text, for stdout.
fn render_summary(s: &DemoSummary, data_dir: &Path) -> String {
    let t = &s.tally;
    let mut out = String::new();
    let secs = s.elapsed.as_secs_f64();
    out += &format!(
        "\nSightline demo: {} agents in {} classes, {:.1} s, {} events emitted ({}/s)\n",
        s.agents,
        s.classes,
        secs,
        thousands(s.events_emitted),
        thousands((s.events_emitted as f64 / secs) as u64)
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
    for f in &s.latest_failures {
        out += &format!(
            "  {:<24} {:<32} seq {:<7} {}\n",
            f.kind.name(),
            f.agent,
            f.seq,
            f.detail
        );
    }
    out += "\nSinks\n";
    for r in &s.sinks {
        let s = &r.stats;
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
    if let Some(o) = s.otlp.clone() {
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
    out += &format!(
        "\nLoss: {} dropped at queues, {} undelivered at shutdown, {} sequence gaps seen by tally\n",
        thousands(s.dropped()),
        thousands(s.undelivered()),
        thousands(t.seq_gaps)
    );
    out += &format!("\nSummary as JSON: {}\n", s.summary_path.display());
    if let Some(addr) = s.metrics_addr {
        out += &format!(
            "\nMetrics: served at http://{addr}/metrics while the fleet ran (--serve-after-secs N keeps them up after it;\n  config/prometheus.yml scrapes 127.0.0.1:9464 with the alert rules in config/alerts/, dashboards/ has the Grafana dashboards)\n"
        );
    }
    if let Some(a) = &s.archive {
        out += &format!(
            "\nArchive: {} events in {} ({} segments closed, {} compressed, {} write errors)\n",
            thousands(a.stats.events_written),
            a.dir.display(),
            a.stats.segments_sealed,
            a.stats.segments_compressed,
            a.stats.write_errors
        );
        // Suggest the agent of the latest failure: its session has something to show.
        let agent = s.session_to_try();
        let data = data_dir.display();
        out += &format!(
            "Try:\n  sightline --data-dir {data} session {agent}\n  sightline --data-dir {data} stats\n  sightline --data-dir {data} verify\n  sightline --data-dir {data} tail -n 20 --kind schedule:error\n"
        );
    }
    out
}

/// The live line: rate, emitted, what tally wrote, what is queued, dropped and failed.
fn progress_line(t: &Tick) -> String {
    format!(
        "[{:>4.0}s] {:>9} ev/s  emitted {:>11}  tally wrote {:>11}  queued {:>6}  dropped {}  failed {}",
        t.elapsed.as_secs_f64(),
        thousands(t.rate as u64),
        thousands(t.emitted),
        thousands(t.tally_written),
        t.queued,
        thousands(t.dropped),
        thousands(t.failed)
    )
}
