//! # sightline-prometheus: how operators see a fleet of agents
//!
//! A sink that turns events into Prometheus metrics, and the endpoint that serves them.
//!
//! - [`EventMetrics`]: RPC calls and latency, schedule runs, retries, exhausted retries,
//!   lateness and missed cron runs, fiber runs and recoveries, MCP connections and failures
//!   and discovered tools, state updates and size, tool and model calls with tokens,
//!   approvals, open connections, active and hibernated agents. Named by Prometheus
//!   conventions (base units, `_total`, `_seconds`, `_bytes`), labelled only by bounded sets
//!   (agent class, method, callback, server, tool, model, outcome), never by instance names,
//!   ids, URLs or users.
//! - The [cardinality guard](guard): every labelled family caches its label handles (one hash
//!   lookup per update) and caps its series; the excess folds into one `__overflow__` series,
//!   and each fold is counted.
//! - [`HealthCollector`]: the pipeline's own health per sink, read at scrape time.
//! - [`family`]: the one way families are made here, and [`family::ScrapeCollector`] for
//!   metrics read from counters at scrape time (the health collector, the OTLP exporter's).
//! - [`MetricsServer`]: `/metrics` on `127.0.0.1:9464` by default, text format 0.0.4 or
//!   OpenMetrics by content negotiation, optional bearer token.
//!
//! ```
//! use prometheus::Registry;
//! use sightline_event::{AgentRef, Event, Outcome, Rpc};
//! use sightline_prometheus::EventMetrics;
//!
//! let registry = Registry::new();
//! let mut metrics = EventMetrics::new(&registry, 2000, 100_000).unwrap();
//! let rpc = Rpc { method: "getTicket".into(), ..Default::default() };
//! metrics.record(&Event::new(AgentRef::new("Support", "t-1"), 1, rpc).with_outcome(Outcome::Ok));
//! let text = sightline_prometheus::render_text(&registry);
//! assert!(text.contains(r#"sightline_rpc_calls_total{agent_class="Support",method="getTicket",outcome="ok"} 1"#));
//! ```
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod config;
pub mod family;
pub mod guard;
mod health;
mod metrics;
pub mod openmetrics;
mod server;

pub use config::PrometheusConfig;
pub use health::HealthCollector;
pub use metrics::EventMetrics;
pub use server::MetricsServer;

/// Why the endpoint or the metrics could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum PrometheusError {
    /// The listen address could not be bound (most often: the port is taken).
    #[error("cannot listen on {addr} for /metrics: {source} (is another process using it? set [prometheus] listen_addr, or --metrics-addr)")]
    Bind {
        /// The address.
        addr: String,
        /// The error.
        source: std::io::Error,
    },
    /// The server's thread or runtime could not start.
    #[error("cannot start the metrics server: {0}")]
    Runtime(std::io::Error),
    /// A metric could not be registered.
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

/// The registry's metrics in the 0.0.4 text format.
pub fn render_text(registry: &prometheus::Registry) -> String {
    use prometheus::Encoder;
    let mut buf = Vec::with_capacity(1 << 20);
    let _ = prometheus::TextEncoder::new().encode(&registry.gather(), &mut buf);
    String::from_utf8(buf).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}
