//! Assembling the configured sinks into a pipeline: one place for demo, ingest and replay.

use std::path::{Path, PathBuf};

use anyhow::Context;
use sightline_archive::{ArchiveStatsHandle, ArchiveWriter};
use sightline_bus::Bus;
use sightline_sink::{
    MemoryHandle, MemorySink, OverflowPolicy, Pipeline, RunnerConfig, ShutdownReport, Sink,
    TallyHandle, TallySink,
};

use crate::config::Config;
use crate::render::thousands;

/// The sinks of this build, by the name their `[sinks.<name>]` table has.
pub const SINK_NAMES: [&str; 5] = ["tally", "recent_failures", "archive", "prometheus", "otlp"];

/// A running pipeline and handles on what its sinks hold.
pub struct Assembled {
    /// The pipeline.
    pub pipeline: Pipeline,
    /// The tally sink's counts, when it runs.
    pub tally: Option<TallyHandle>,
    /// The latest failures, when that sink runs.
    pub failures: Option<MemoryHandle>,
    /// The archive's directory and counters, when it runs.
    pub archive: Option<(PathBuf, ArchiveStatsHandle)>,
    /// The metrics registry (event metrics and pipeline health), when the Prometheus sink
    /// runs; serve it with [`sightline_prometheus::MetricsServer`].
    pub metrics: Option<prometheus::Registry>,
    /// The OTLP exporter's counters, when it runs.
    pub otlp: Option<sightline_otlp::OtlpStatsHandle>,
}

/// Which sinks to run.
pub enum Select<'a> {
    /// Every configured sink (the archive when `[archive] enabled`).
    All,
    /// Every configured sink, made lossless (`overflow = "block"`): for reading files, where
    /// waiting costs no agent anything.
    AllLossless,
    /// One sink, made lossless (`overflow = "block"`): replay's target.
    Only(&'a str),
}

/// Builds the pipeline on `bus` from `config`.
pub fn assemble(
    config: &Config,
    data_dir: &Path,
    bus: &Bus,
    select: Select<'_>,
) -> anyhow::Result<Assembled> {
    if let Select::Only(name) = select {
        anyhow::ensure!(
            SINK_NAMES.contains(&name),
            "unknown sink {name:?} (this build has: {})",
            SINK_NAMES.join(", ")
        );
    }
    let wanted = |name: &str| match select {
        Select::All => match name {
            "archive" => config.archive.enabled,
            "prometheus" => config.prometheus.enabled,
            "otlp" => config.otlp.enabled,
            _ => true,
        },
        // Reading a file: metrics of a one-off run are not worth an endpoint.
        Select::AllLossless => match name {
            "archive" => config.archive.enabled,
            "prometheus" => false,
            "otlp" => config.otlp.enabled,
            _ => true,
        },
        Select::Only(only) => only == name,
    };
    let lossless = !matches!(select, Select::All);
    let runner = |cfg: &RunnerConfig| match select {
        Select::All => cfg.clone(),
        // A backfill must not drop: wait for room instead, and keep retrying a sink that
        // is slow to take a batch (the shutdown deadline still bounds it).
        Select::Only(_) | Select::AllLossless => RunnerConfig {
            overflow: OverflowPolicy::Block,
            block_timeout_ms: 60_000,
            max_retries: cfg.max_retries.max(1000),
            ..cfg.clone()
        },
    };
    let mut specs: Vec<(String, Box<dyn Sink>, RunnerConfig)> = Vec::new();
    let mut out = Assembled {
        pipeline: Pipeline::with_policies(bus.clone(), config.redactors()?),
        tally: None,
        failures: None,
        archive: None,
        metrics: None,
        otlp: None,
    };
    if wanted("tally") {
        let (sink, handle) = TallySink::new();
        specs.push(("tally".into(), Box::new(sink), runner(&config.sinks.tally)));
        out.tally = Some(handle);
    }
    if wanted("recent_failures") {
        let (sink, handle) = MemorySink::new(8);
        specs.push((
            "recent_failures".into(),
            Box::new(sink),
            runner(&config.sinks.recent_failures),
        ));
        out.failures = Some(handle);
    }
    if wanted("archive") {
        let dir = config.archive_dir(data_dir);
        let writer = ArchiveWriter::open(&dir, config.archive.clone())
            .with_context(|| format!("cannot open the archive in {}", dir.display()))?;
        out.archive = Some((dir, writer.stats_handle()));
        specs.push((
            "archive".into(),
            Box::new(writer),
            runner(&config.sinks.archive),
        ));
    }
    if wanted("prometheus") {
        let registry = prometheus::Registry::new();
        let p = &config.prometheus;
        let metrics = sightline_prometheus::EventMetrics::new(
            &registry,
            p.max_series_per_metric,
            p.max_tracked_agents,
        )?;
        specs.push((
            "prometheus".into(),
            Box::new(metrics),
            runner(&config.sinks.prometheus),
        ));
        out.metrics = Some(registry);
    }
    if wanted("otlp") {
        let mut otlp = config.otlp.clone();
        if lossless {
            // A backfill waits for the collector at the end too, within shutdown's deadline.
            otlp.drain_timeout_ms = otlp.drain_timeout_ms.max(50_000);
        }
        let sink =
            sightline_otlp::OtlpSink::new(&otlp).context("cannot start the OTLP exporter")?;
        out.otlp = Some(sink.stats_handle());
        specs.push(("otlp".into(), Box::new(sink), runner(&config.sinks.otlp)));
    }
    // Sinks naming the same policy share one redaction stage.
    out.pipeline.add_group(specs)?;
    if let Some(registry) = &out.metrics {
        let health = sightline_prometheus::HealthCollector::new(out.pipeline.stats_view())?;
        registry.register(Box::new(health))?;
        if let Some(otlp) = &out.otlp {
            registry.register(Box::new(crate::otlp_metrics::OtlpCollector::new(
                otlp.clone(),
            )?))?;
        }
    }
    Ok(out)
}

/// Prints one line per sink of a finished pipeline to stderr; returns the events lost
/// (dropped, failed or undelivered) across them.
pub fn report_sinks(reports: &[ShutdownReport]) -> u64 {
    let mut lost = 0;
    for r in reports {
        let s = &r.stats;
        let failed: u64 = s.failed.iter().sum();
        lost += s.dropped.total() + failed + r.undelivered;
        eprintln!(
            "  sink {:<16} received {:>10}  written {:>10}  dropped {}  failed {}  undelivered {}",
            s.name,
            thousands(s.received),
            thousands(s.written),
            s.dropped.total(),
            failed,
            r.undelivered
        );
    }
    lost
}

/// Prints the OTLP exporter's outcome to stderr (after the pipeline shut down); returns the
/// events it lost (rejected, given up, left at shutdown, or too many for its buffer).
pub fn report_otlp(otlp: Option<&sightline_otlp::OtlpStatsHandle>) -> u64 {
    let Some(h) = otlp else { return 0 };
    let s = final_otlp_stats(h);
    eprintln!(
        "  otlp export      delivered {:>9}  rejected {}  gave up {}  left at shutdown {}  too big for the buffer {}  retries {}{}",
        thousands(s.delivered),
        s.rejected,
        s.gave_up,
        s.dropped_shutdown + s.held_events,
        s.dropped_queue_full,
        s.retries,
        s.last_error
            .as_ref()
            .map(|e| format!("  (last error: {e})"))
            .unwrap_or_default()
    );
    s.lost() + s.held_events
}

/// The exporter's counters once it is done: the sink runner's shutdown may return while the
/// exporter still drains (its own deadline), so wait for that (bounded). Anything still held
/// after it counts as not delivered.
pub fn final_otlp_stats(h: &sightline_otlp::OtlpStatsHandle) -> sightline_otlp::OtlpStats {
    h.wait_idle(std::time::Duration::from_secs(60));
    h.stats()
}

/// Success when nothing was lost, 1 otherwise.
pub fn exit_code(lost: u64) -> std::process::ExitCode {
    if lost == 0 {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::from(1)
    }
}
