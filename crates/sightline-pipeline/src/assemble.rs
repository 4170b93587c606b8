//! Assembling the configured sinks into a running pipeline: one place for every command
//! that feeds events (demo, ingest, replay) and for embedders, so that each runs the same
//! sinks with the same policies and the same health metrics.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sightline_archive::{ArchiveStatsHandle, ArchiveWriter};
use sightline_bus::Bus;
use sightline_sink::{
    MemoryHandle, MemorySink, OverflowPolicy, Pipeline, RunnerConfig, ShutdownReport, Sink,
    TallyHandle, TallySink,
};

use crate::config::{Config, SINK_NAMES};
use crate::error::PipelineError;
use crate::loss::LossSummary;
use crate::otlp_metrics::OtlpCollector;

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
    /// The metrics registry (event metrics, pipeline health and the OTLP exporter's
    /// counters), when the Prometheus sink runs; serve it with
    /// [`serve_metrics`](crate::serve_metrics).
    pub metrics: Option<prometheus::Registry>,
    /// The OTLP exporter's counters, when it runs.
    pub otlp: Option<sightline_otlp::OtlpStatsHandle>,
}

/// A pipeline shut down: each sink's report, and what was lost across them.
#[derive(Debug)]
pub struct Finished {
    /// One report per sink, as [`Pipeline::shutdown`] returned them.
    pub reports: Vec<ShutdownReport>,
    /// Every event lost, by sink and in the OTLP exporter.
    pub loss: LossSummary,
}

/// Which sinks to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Select<'a> {
    /// Every configured sink (the archive when `[archive] enabled`).
    All,
    /// Every configured sink but the Prometheus one, made lossless (`overflow = "block"`):
    /// for reading files, where waiting costs no agent anything.
    AllLossless,
    /// One sink, made lossless (`overflow = "block"`): replay's target.
    Only(&'a str),
}

/// Builds the pipeline on `bus` from `config`; relative paths (the archive's) are under
/// `data_dir`. The sinks start at once and take what `bus` publishes from now on.
pub fn assemble(
    config: &Config,
    data_dir: &Path,
    bus: &Bus,
    select: Select<'_>,
) -> Result<Assembled, PipelineError> {
    if let Select::Only(name) = select {
        if !SINK_NAMES.contains(&name) {
            return Err(PipelineError::UnknownSink {
                name: name.to_owned(),
                known: &SINK_NAMES,
            });
        }
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
        let writer = ArchiveWriter::open(&dir, config.archive.clone()).map_err(|source| {
            PipelineError::Archive {
                dir: dir.clone(),
                source,
            }
        })?;
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
        let sink = sightline_otlp::OtlpSink::new(&otlp).map_err(PipelineError::Otlp)?;
        out.otlp = Some(sink.stats_handle());
        specs.push(("otlp".into(), Box::new(sink), runner(&config.sinks.otlp)));
    }
    // Sinks naming the same policy share one redaction stage.
    out.pipeline.add_group(specs)?;
    if let Some(registry) = &out.metrics {
        let health = sightline_prometheus::HealthCollector::new(out.pipeline.stats_view())?;
        registry.register(Box::new(health))?;
        if let Some(otlp) = &out.otlp {
            registry.register(Box::new(OtlpCollector::new(otlp.clone())?))?;
        }
    }
    Ok(out)
}

impl Assembled {
    /// Stops the pipeline: each sink gets up to `timeout` to write what it holds (see
    /// [`Pipeline::shutdown`]); then waits (bounded) for the OTLP exporter to finish, and
    /// accounts for every event lost.
    pub fn finish(self, timeout: Duration) -> Finished {
        let reports = self.pipeline.shutdown(timeout);
        let loss = LossSummary::new(&reports, self.otlp.as_ref());
        Finished { reports, loss }
    }
}
