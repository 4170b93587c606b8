//! `sightline.toml`: the configuration file, and the embedded defaults used without one.
//!
//! Every section and key is optional and unknown keys are refused, so a typo fails loudly
//! instead of silently keeping a default. The checks serde cannot make (ranges, each sink's
//! runner settings, policy names) are in [`Config::validate`], with errors naming the key as
//! written in the file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sightline_redact::{PolicyConfig, Redactor};
use sightline_sink::{OverflowPolicy, RunnerConfig};

use crate::error::ConfigError;

/// The sinks of this build, by the name their `[sinks.<name>]` table has.
pub const SINK_NAMES: [&str; 5] = ["tally", "recent_failures", "archive", "prometheus", "otlp"];

/// The whole configuration. Every section and key is optional.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The fleet of `sightline demo`.
    pub demo: DemoConfig,
    /// The sinks and how each is fed.
    pub sinks: SinksConfig,
    /// The JSONL archive.
    pub archive: sightline_archive::ArchiveConfig,
    /// The Prometheus metrics and their `/metrics` endpoint.
    pub prometheus: sightline_prometheus::PrometheusConfig,
    /// OTLP export (spans and log records to a collector).
    pub otlp: sightline_otlp::OtlpConfig,
    /// Redaction policies by name; each replaces the built-in policy of the same name
    /// (`default`, `archive`, `otlp`, `metrics`, `none`) or adds a new one.
    pub policies: BTreeMap<String, PolicyConfig>,
}

/// The fleet of `sightline demo`: example agents on the reference runtime, driven by clients.
/// Only the demo reads it; it lives here because it is the `[demo]` table of the same file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DemoConfig {
    /// Agents in the fleet (split evenly over the three classes).
    pub agents: usize,
    /// Most events per second across the fleet (the clients pause above it).
    pub rate_per_sec: u64,
    /// How long the demo runs, in seconds.
    pub duration_secs: u64,
    /// Seed of the clients' choices.
    pub seed: u64,
    /// Tokio worker threads the agents and clients run on.
    pub threads: usize,
    /// Fraction of client interactions given a failure, 0.0 to 1.0.
    pub failure_ratio: f64,
    /// How often the progress line is refreshed, in milliseconds.
    pub progress_interval_ms: u64,
    /// An agent idle this long hibernates, in milliseconds.
    pub hibernate_after_ms: u64,
    /// Client interactions in flight at once.
    pub max_in_flight: usize,
}

impl Default for DemoConfig {
    fn default() -> Self {
        Self {
            agents: 300,
            rate_per_sec: 20_000,
            duration_secs: 15,
            seed: 42,
            threads: 2,
            failure_ratio: 0.05,
            progress_interval_ms: 1000,
            hibernate_after_ms: 1500,
            max_in_flight: 256,
        }
    }
}

/// The sinks this build has, each with its runner settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SinksConfig {
    /// Counts every event; the demo's summary comes from it.
    pub tally: RunnerConfig,
    /// Keeps the latest failures for the summary.
    pub recent_failures: RunnerConfig,
    /// Writes the archive (settings in `[archive]`).
    pub archive: RunnerConfig,
    /// Keeps the Prometheus metrics (settings in `[prometheus]`).
    pub prometheus: RunnerConfig,
    /// Exports over OTLP (settings in `[otlp]`).
    pub otlp: RunnerConfig,
}

impl Default for SinksConfig {
    fn default() -> Self {
        Self {
            tally: RunnerConfig {
                // Counts only; it runs in-process and keeps no payload.
                policy: "none".into(),
                ..RunnerConfig::default()
            },
            recent_failures: RunnerConfig {
                min_severity: "error".into(),
                queue_capacity: 1024,
                overflow: OverflowPolicy::DropOldest,
                ..RunnerConfig::default()
            },
            archive: RunnerConfig {
                policy: "archive".into(),
                queue_capacity: 65536,
                batch_max_events: 4096,
                flush_interval_ms: 200,
                max_retries: 10,
                shutdown_timeout_ms: 10_000,
                ..RunnerConfig::default()
            },
            prometheus: RunnerConfig {
                policy: "metrics".into(),
                queue_capacity: 65536,
                batch_max_events: 4096,
                flush_interval_ms: 200,
                ..RunnerConfig::default()
            },
            otlp: RunnerConfig {
                policy: "otlp".into(),
                queue_capacity: 65536,
                batch_max_events: 4096,
                flush_interval_ms: 200,
                max_retries: 5,
                shutdown_timeout_ms: 10_000,
                ..RunnerConfig::default()
            },
        }
    }
}

impl Config {
    /// Reads `path`, or returns the embedded defaults when `path` is `None`.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let Some(path) = path else {
            return Ok(Config::default());
        };
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text).map_err(|e| ConfigError::InFile {
            path: path.to_owned(),
            source: Box::new(e),
        })
    }

    /// Parses TOML text and checks the values.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        // toml's errors name the line, column and key.
        let config: Config = toml::from_str(text)?;
        config.validate()?;
        Ok(config)
    }

    /// Checks values serde cannot: ranges and each sink's runner settings.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let d = &self.demo;
        let positive = |key: &str, v: u64| {
            if v > 0 {
                Ok(())
            } else {
                Err(ConfigError::invalid(
                    format!("demo.{key}"),
                    "must be at least 1",
                ))
            }
        };
        positive("agents", d.agents as u64)?;
        positive("rate_per_sec", d.rate_per_sec)?;
        positive("threads", d.threads as u64)?;
        positive("progress_interval_ms", d.progress_interval_ms)?;
        if !(0.0..=1.0).contains(&d.failure_ratio) {
            return Err(ConfigError::invalid(
                "demo.failure_ratio",
                format!("must be between 0.0 and 1.0, got {}", d.failure_ratio),
            ));
        }
        self.archive.validate().map_err(|e| match e {
            sightline_archive::ArchiveError::Config { key, message } => {
                ConfigError::invalid(format!("archive.{key}"), message)
            }
            other => ConfigError::invalid("archive", other.to_string()),
        })?;
        if self.prometheus.max_series_per_metric == 0 {
            return Err(ConfigError::invalid(
                "prometheus.max_series_per_metric",
                "must be at least 1",
            ));
        }
        if self.otlp.enabled {
            self.otlp
                .resolve(&sightline_otlp::config::ProcessEnv)
                .map_err(|e| {
                    // An environment variable is named as it is; a key under `[otlp]`.
                    if e.key.starts_with("OTEL_") {
                        ConfigError::invalid(e.key, e.message)
                    } else {
                        ConfigError::invalid(format!("otlp.{}", e.key), e.message)
                    }
                })?;
        }
        if self.otlp.queue_max_events < self.sinks.otlp.batch_max_events {
            return Err(ConfigError::invalid(
                "otlp.queue_max_events",
                format!(
                    "{} is smaller than sinks.otlp.batch_max_events ({}): no batch from the sink's queue would fit",
                    self.otlp.queue_max_events, self.sinks.otlp.batch_max_events
                ),
            ));
        }
        let policies = self.redactors()?;
        for (name, sink) in self.sinks() {
            sink.subscribe_options(name)
                .map_err(|e| ConfigError::invalid(format!("sinks.{name}.{}", e.key), e.message))?;
            if !policies.contains_key(&sink.policy) {
                return Err(ConfigError::invalid(
                    format!("sinks.{name}.policy"),
                    format!(
                        "unknown policy {:?} (known: {})",
                        sink.policy,
                        policies.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Compiles every redaction policy (built-ins plus `[policies.*]`).
    pub fn redactors(&self) -> Result<BTreeMap<String, Arc<Redactor>>, ConfigError> {
        sightline_redact::build_policies(&self.policies).map_err(|e| {
            ConfigError::invalid(format!("policies.{}.{}", e.policy, e.key), e.message)
        })
    }

    /// `(name, runner settings)` of every sink, in the order of [`SINK_NAMES`].
    pub fn sinks(&self) -> [(&'static str, &RunnerConfig); 5] {
        let s = &self.sinks;
        [
            ("tally", &s.tally),
            ("recent_failures", &s.recent_failures),
            ("archive", &s.archive),
            ("prometheus", &s.prometheus),
            ("otlp", &s.otlp),
        ]
    }

    /// The archive directory: `[archive] dir`, under `data_dir` when relative.
    pub fn archive_dir(&self, data_dir: &Path) -> PathBuf {
        data_dir.join(&self.archive.dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHIPPED: &str = include_str!("../../../config/sightline.toml");

    #[test]
    fn the_shipped_config_file_states_the_embedded_defaults() {
        assert_eq!(Config::parse(SHIPPED).unwrap(), Config::default());
    }

    #[test]
    fn the_example_policy_in_the_shipped_file_is_valid() {
        let start = SHIPPED.find("# --- example policy ---").unwrap();
        let end = SHIPPED.find("# --- end ---").unwrap();
        let example: String = SHIPPED[start..end]
            .lines()
            .skip(1)
            .map(|l| {
                l.strip_prefix("# ")
                    .or_else(|| l.strip_prefix('#'))
                    .unwrap_or(l)
            })
            .collect::<Vec<_>>()
            .join("\n");
        let example = example.replace("require_hash_key = true", "require_hash_key = false");
        let config = Config::parse(&example).unwrap();
        assert_eq!(config.policies["support"].rules.len(), 3);
    }

    #[test]
    fn an_empty_file_means_defaults() {
        assert_eq!(Config::parse("").unwrap(), Config::default());
    }

    #[test]
    fn errors_name_the_offending_key() {
        let e = Config::parse("[demo]\nagent = 3\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("agent") && e.contains("line 2"), "{e}");
        let e = Config::parse("[sinks.tally]\nkinds = \"nope\"\n").unwrap_err();
        assert_eq!(e.key(), Some("sinks.tally.kinds"));
        assert!(e.to_string().contains("sinks.tally.kinds"), "{e}");
        let e = Config::parse("[demo]\nfailure_ratio = 2.0\n").unwrap_err();
        assert_eq!(e.key(), Some("demo.failure_ratio"));
        assert!(e.to_string().contains("demo.failure_ratio"), "{e}");
        let e = Config::parse("[demo]\nagents = -1\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("agents"), "{e}");
        let e = Config::parse("[sinks.archive]\npolicy = \"secret\"\n").unwrap_err();
        assert_eq!(e.key(), Some("sinks.archive.policy"));
        assert!(e.to_string().contains("unknown policy \"secret\""), "{e}");
    }

    #[test]
    fn a_file_error_names_the_file_and_keeps_the_key() {
        let dir =
            std::env::temp_dir().join(format!("sightline-pipeline-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bad.toml");
        std::fs::write(&path, "[demo]\nthreads = 0\n").unwrap();
        let e = Config::load(Some(&path)).unwrap_err();
        assert!(matches!(e, ConfigError::InFile { .. }), "{e:?}");
        assert_eq!(e.key(), Some("demo.threads"));
        assert!(e.to_string().contains("bad.toml"), "{e}");
        let e = Config::load(Some(&dir.join("missing.toml"))).unwrap_err();
        assert!(matches!(e, ConfigError::Read { .. }), "{e:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn sinks_are_listed_under_their_table_names() {
        let config = Config::default();
        let names: Vec<&str> = config.sinks().iter().map(|(n, _)| *n).collect();
        assert_eq!(names, SINK_NAMES);
        assert_eq!(config.sinks()[2].1, &config.sinks.archive);
    }
}
