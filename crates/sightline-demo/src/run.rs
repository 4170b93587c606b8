//! Running the demo: the configuration with the caller's options applied, the pipeline
//! assembled from it, the fleet driven at the configured rate (with a deploy halfway), then
//! the pipeline drained and everything counted into a [`DemoSummary`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fastrand::Rng;
use sightline_bus::Bus;
use sightline_event::now_unix_ns;
use sightline_otlp::Protocol;
use sightline_pipeline::{assemble, final_otlp_stats, serve_metrics, Assembled, Config, Select};
use sightline_runtime::{ModelClient, OpenAiModel, Runtime, RuntimeConfig, Store};
use sightline_sink::Pipeline;

use crate::error::DemoError;
use crate::fleet::{self, Driver, Tools};
use crate::progress::{Progress, Tick};
use crate::summary::{ArchiveSummary, DemoSummary, Failure};

/// The file under the data directory the summary is written to.
pub const SUMMARY_FILE: &str = "demo-summary.json";

/// How the runtime goes down at the deploy, and how long it stays down (past a cron tick).
const DEPLOY_GRACE: Duration = Duration::from_millis(300);
const DEPLOY_DOWNTIME: Duration = Duration::from_millis(1100);
/// At the end: how long interactions under way get, then the agents' shutdown grace.
const FINISH_INTERACTIONS: Duration = Duration::from_secs(1);
const FINAL_GRACE: Duration = Duration::from_secs(1);
/// Before serving `/metrics` after the fleet: how long the sinks get to catch up.
const CATCH_UP: Duration = Duration::from_secs(5);
/// How long the sinks get to drain at the end.
const SHUTDOWN: Duration = Duration::from_secs(10);
/// How often the driver loop wakes.
const TICK: Duration = Duration::from_millis(2);
/// Interactions started per wake, at most.
const BURST: usize = 16;
/// How many of the latest failures the summary keeps.
const LATEST_FAILURES: usize = 5;

/// What a caller may change about a demo; each `Some` overrides the `[demo]` (or `[otlp]`,
/// `[prometheus]`) setting of the configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct DemoOptions {
    /// How long to run, in seconds.
    pub duration_secs: Option<u64>,
    /// Agents in the fleet.
    pub agents: Option<usize>,
    /// Most events per second across the fleet.
    pub rate_per_sec: Option<u64>,
    /// Seed of the clients' choices.
    pub seed: Option<u64>,
    /// Fraction of client interactions given a failure, 0.0 to 1.0.
    pub fail_rate: Option<f64>,
    /// Where `/metrics` listens (port 0 picks one).
    pub metrics_addr: Option<String>,
    /// Keep serving `/metrics` this long after the fleet stops (0: not at all).
    pub serve_after_secs: u64,
    /// Answer the agents' model calls with the OpenAI-compatible client configured by the
    /// environment ([`OpenAiModel::from_env`]) instead of the deterministic local model.
    pub openai: bool,
    /// Export over OTLP to this collector (turns `[otlp]` on and sets its endpoint).
    pub otlp: Option<String>,
    /// The OTLP protocol.
    pub otlp_protocol: Option<Protocol>,
    /// Where the agents find the demo's MCP server.
    pub tools: Tools,
}

impl DemoOptions {
    /// The configuration's settings as they are, the MCP server started from `tools`.
    pub fn new(tools: Tools) -> Self {
        Self {
            duration_secs: None,
            agents: None,
            rate_per_sec: None,
            seed: None,
            fail_rate: None,
            metrics_addr: None,
            serve_after_secs: 0,
            openai: false,
            otlp: None,
            otlp_protocol: None,
            tools,
        }
    }

    /// `config` with these options applied.
    fn apply(&self, mut config: Config) -> Config {
        let d = &mut config.demo;
        d.duration_secs = self.duration_secs.unwrap_or(d.duration_secs);
        d.agents = self.agents.unwrap_or(d.agents);
        d.rate_per_sec = self.rate_per_sec.unwrap_or(d.rate_per_sec);
        d.seed = self.seed.unwrap_or(d.seed);
        d.failure_ratio = self.fail_rate.unwrap_or(d.failure_ratio);
        if let Some(url) = &self.otlp {
            config.otlp.enabled = true;
            config.otlp.endpoint = Some(url.clone());
        }
        if let Some(p) = self.otlp_protocol {
            config.otlp.protocol = Some(p);
        }
        config
    }
}

/// Runs a demo: assembles the pipeline of `config` (with `options` applied) on a new bus, its
/// data (archive, agents' databases) under `data_dir`; drives the fleet for the configured
/// duration, restarting the runtime halfway as a deploy would; drains the pipeline; writes
/// the summary to `<data_dir>/demo-summary.json` and returns it. `on_progress` hears of each
/// step and, every `[demo] progress_interval_ms`, the live numbers.
///
/// The agents start afresh: `<data_dir>/agents` is cleared first.
pub fn run(
    config: Config,
    options: &DemoOptions,
    data_dir: &Path,
    mut on_progress: impl FnMut(&Progress),
) -> Result<DemoSummary, DemoError> {
    let config = options.apply(config);
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
    } = assemble(&config, data_dir, &bus, Select::All)?;
    if otlp.is_some() {
        let r = config.otlp.resolve(&sightline_otlp::config::ProcessEnv)?;
        on_progress(&Progress::Exporting {
            url: r.logs.url,
            protocol: r.protocol,
        });
    }
    let server = match metrics {
        Some(registry) => {
            let server = serve_metrics(
                &config.prometheus,
                registry,
                options.metrics_addr.as_deref(),
            )?;
            on_progress(&Progress::Metrics {
                addr: server.local_addr(),
            });
            Some(server)
        }
        None => None,
    };
    let tally = tally.ok_or(DemoError::MissingSink("tally"))?;
    let failures = failures.ok_or(DemoError::MissingSink("recent_failures"))?;
    // The clock calibrates on first use; do it before the fleet starts.
    now_unix_ns();

    on_progress(&Progress::Started {
        agents: demo.agents,
        rate_per_sec: demo.rate_per_sec,
        duration_secs: demo.duration_secs,
        failure_ratio: demo.failure_ratio,
        seed: demo.seed,
    });
    let agents_dir = data_dir.join("agents");
    // The demo's agents start afresh each run (their events are counted from sequence 1).
    match std::fs::remove_dir_all(&agents_dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(DemoError::Io {
                action: "clear",
                path: agents_dir,
                source,
            })
        }
    }
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(demo.threads.max(1))
        .thread_name("fleet")
        .enable_all()
        .build()
        .map_err(DemoError::Tokio)?;
    let model: Option<Arc<dyn ModelClient>> = if options.openai {
        let m = OpenAiModel::from_env()?;
        on_progress(&Progress::Model {
            endpoint: m.endpoint(),
        });
        Some(Arc::new(m))
    } else {
        None
    };
    let fleet = Fleet {
        bus,
        runtime: RuntimeConfig {
            data_dir: agents_dir.clone(),
            idle_hibernate_ms: demo.hibernate_after_ms,
            state_max_bytes: 64 * 1024,
            ..Default::default()
        },
        model,
        tools: options.tools.clone(),
    };
    let start = Instant::now();
    fleet.drive(tokio, &config, &pipeline, start, &mut on_progress);
    on_progress(&Progress::FleetStopped);
    // Every agent stopped with its exact last sequence number stored: their sum is what the
    // fleet emitted (counted apart from the sinks).
    let events_emitted: u64 = fleet::databases(&agents_dir)
        .iter()
        .filter_map(|p| Store::open(p).ok()?.meta("seq_reserved").ok()?)
        .sum();
    let elapsed = start.elapsed();
    if let Some(server) = &server {
        if options.serve_after_secs > 0 {
            // Let the sinks catch up, then keep the final numbers up for scrapers.
            pipeline.flush(CATCH_UP);
            on_progress(&Progress::ServingAfter {
                addr: server.local_addr(),
                secs: options.serve_after_secs,
            });
            std::thread::sleep(Duration::from_secs(options.serve_after_secs));
        }
    }
    let sinks = pipeline.shutdown(SHUTDOWN);
    let otlp = otlp.as_ref().map(final_otlp_stats);
    let metrics_addr: Option<SocketAddr> = server.as_ref().map(|s| s.local_addr());
    drop(server);

    std::fs::create_dir_all(data_dir).map_err(|source| DemoError::Io {
        action: "create data dir",
        path: data_dir.to_owned(),
        source,
    })?;
    let summary = DemoSummary {
        agents: demo.agents,
        classes: fleet::CLASSES.len(),
        elapsed,
        events_emitted,
        tally: tally.snapshot(),
        latest_failures: failures
            .events()
            .iter()
            .rev()
            .take(LATEST_FAILURES)
            .map(Failure::new)
            .collect(),
        sinks,
        otlp,
        archive: archive.map(|(dir, stats)| ArchiveSummary {
            dir,
            stats: stats.snapshot(),
        }),
        metrics_addr,
        summary_path: data_dir.join(SUMMARY_FILE),
    };
    write_summary(&summary)?;
    Ok(summary)
}

/// Writes `summary` as pretty JSON to its `summary_path`.
fn write_summary(summary: &DemoSummary) -> Result<(), DemoError> {
    let path: &PathBuf = &summary.summary_path;
    // Serialising a `Value` to a string cannot fail (its keys are strings).
    let text = serde_json::to_string_pretty(&summary.to_json()).unwrap_or_default() + "\n";
    std::fs::write(path, text).map_err(|source| DemoError::Io {
        action: "write",
        path: path.clone(),
        source,
    })
}

/// What starting (and restarting) the fleet's runtime takes.
struct Fleet {
    bus: Bus,
    runtime: RuntimeConfig,
    model: Option<Arc<dyn ModelClient>>,
    tools: Tools,
}

impl Fleet {
    /// A runtime on the fleet's directory with the example agents registered.
    fn new_runtime(&self, tokio: &tokio::runtime::Runtime) -> Runtime {
        let r = Runtime::new(
            self.bus.clone(),
            self.runtime.clone(),
            tokio.handle().clone(),
        );
        if let Some(m) = &self.model {
            r.set_model(m.clone());
        }
        fleet::register(&r, &self.tools);
        r
    }

    /// Drives the fleet on `tokio` from `start` for `[demo] duration_secs`, restarting the
    /// runtime halfway, and stops every agent (and `tokio`) at the end.
    fn drive(
        &self,
        tokio: tokio::runtime::Runtime,
        config: &Config,
        pipeline: &Pipeline,
        start: Instant,
        on_progress: &mut impl FnMut(&Progress),
    ) {
        let demo = &config.demo;
        // What the fleet has emitted so far, as the tally sink's queue has been offered it.
        let offered = || {
            pipeline
                .stats()
                .iter()
                .find(|s| s.name == "tally")
                .map_or(0, |s| s.received + s.queued as u64 + s.dropped.total())
        };
        let deadline = start + Duration::from_secs(demo.duration_secs);
        let interval = Duration::from_millis(demo.progress_interval_ms.max(50));
        let rate = demo.rate_per_sec.max(1) as f64;
        let next_id = Arc::new(AtomicU64::new(1));
        tokio.block_on(async {
            let in_flight = Arc::new(tokio::sync::Semaphore::new(demo.max_in_flight.max(1)));
            let mut rng = Rng::with_seed(demo.seed);
            let mut driver = Arc::new(Driver {
                runtime: self.new_runtime(&tokio),
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
                    let secs = now.duration_since(last_t).as_secs_f64().max(1e-9);
                    let r = n.saturating_sub(last_n) as f64 / secs;
                    (last_n, last_t, next_line) = (n, now, now + interval);
                    on_progress(&Progress::Tick(Tick::new(
                        start.elapsed(),
                        r,
                        n,
                        &pipeline.stats(),
                    )));
                }
                if !restarted && now >= restart_at {
                    restarted = true;
                    // A deploy: stop gracefully (what does not finish in time is evicted),
                    // stay down past a cron tick, start again on the same directory.
                    on_progress(&Progress::DeployStopping);
                    driver.runtime.shutdown(DEPLOY_GRACE).await;
                    tokio::time::sleep(DEPLOY_DOWNTIME).await;
                    let runtime = self.new_runtime(&tokio);
                    let resumed = runtime.resume().unwrap_or(0);
                    on_progress(&Progress::DeployBack { resumed });
                    driver = Arc::new(Driver {
                        runtime,
                        per_class: driver.per_class,
                        fail_rate: driver.fail_rate,
                        next_id: next_id.clone(),
                    });
                    continue;
                }
                // Under the rate: start a few interactions (as many as there is room for).
                if (offered() as f64) < rate * start.elapsed().as_secs_f64() {
                    for _ in 0..BURST {
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
                tokio::time::sleep(TICK).await;
            }
            // Give the interactions under way a moment, then stop the agents: what is still
            // queued runs within the grace period, the rest is evicted; all hibernate.
            let all = u32::try_from(demo.max_in_flight.max(1)).unwrap_or(u32::MAX);
            let _ = tokio::time::timeout(FINISH_INTERACTIONS, in_flight.acquire_many(all)).await;
            driver.runtime.shutdown(FINAL_GRACE).await;
        });
        drop(tokio);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_override_the_configuration_only_where_given() {
        let base = Config::default();
        let mut options = DemoOptions::new(Tools {
            command: "sightline".into(),
        });
        assert_eq!(options.apply(base.clone()), base);

        options.agents = Some(7);
        options.fail_rate = Some(0.5);
        options.otlp = Some("http://127.0.0.1:4317".into());
        options.otlp_protocol = Some(Protocol::Grpc);
        let c = options.apply(base.clone());
        assert_eq!(c.demo.agents, 7);
        assert_eq!(c.demo.failure_ratio, 0.5);
        assert_eq!(c.demo.duration_secs, base.demo.duration_secs);
        assert_eq!(c.demo.seed, base.demo.seed);
        assert!(c.otlp.enabled);
        assert_eq!(c.otlp.endpoint.as_deref(), Some("http://127.0.0.1:4317"));
        assert_eq!(c.otlp.protocol, Some(Protocol::Grpc));
    }

    #[test]
    fn an_invalid_option_is_a_config_error_before_anything_starts() {
        let dir =
            std::env::temp_dir().join(format!("sightline-demo-invalid-{}", std::process::id()));
        let mut options = DemoOptions::new(Tools {
            command: "sightline".into(),
        });
        options.fail_rate = Some(2.0);
        let mut heard = 0;
        let e = run(Config::default(), &options, &dir, |_| heard += 1).unwrap_err();
        assert!(matches!(e, DemoError::Config(_)), "{e:?}");
        assert_eq!(heard, 0);
        assert!(!dir.exists(), "the data dir was touched");
    }
}
