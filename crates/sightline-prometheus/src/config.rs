//! `[prometheus]` in `sightline.toml`.

use serde::{Deserialize, Serialize};

/// The Prometheus sink's and endpoint's settings. Every key has a default; unknown keys are
/// errors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PrometheusConfig {
    /// Whether `sightline demo` keeps metrics and serves `/metrics`.
    pub enabled: bool,
    /// Where `/metrics` listens. Loopback by default: exposing it is a deliberate choice.
    pub listen_addr: String,
    /// Name of an environment variable holding a bearer token; when set (and non-empty),
    /// scrapes must send `Authorization: Bearer <token>`. The token never goes in this file.
    pub bearer_token_env: Option<String>,
    /// Most series any one metric may have; label combinations past it are folded into one
    /// `__overflow__` series (and counted in `sightline_metric_series_overflow_total`).
    pub max_series_per_metric: usize,
    /// Most agents the `sightline_agents_active` / `_hibernated` gauges track individually.
    pub max_tracked_agents: usize,
}

impl Default for PrometheusConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            listen_addr: "127.0.0.1:9464".into(),
            bearer_token_env: None,
            max_series_per_metric: 2000,
            max_tracked_agents: 100_000,
        }
    }
}
