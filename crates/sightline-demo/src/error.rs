//! Why a demo could not run: one error type for the demo's `run`, so that the command
//! renders it and an embedder can match on it, and every cause keeps its source.

use std::path::PathBuf;

/// Why a demo could not run (or could not write its summary).
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The configuration, with the demo's options applied, is not valid.
    #[error(transparent)]
    Config(#[from] sightline_pipeline::ConfigError),
    /// The pipeline or its metrics endpoint could not start.
    #[error(transparent)]
    Pipeline(#[from] sightline_pipeline::PipelineError),
    /// The OTLP exporter's settings do not resolve (endpoint, protocol, environment).
    #[error(transparent)]
    OtlpConfig(#[from] sightline_otlp::config::ConfigError),
    /// A sink the demo reads its summary from is not running.
    #[error("the demo needs its {0} sink")]
    MissingSink(&'static str),
    /// `--openai`: the OpenAI-compatible client is not configured.
    #[error(transparent)]
    Model(#[from] sightline_runtime::OpenAiConfigError),
    /// The tokio runtime the fleet runs on could not start.
    #[error("cannot start the fleet's tokio runtime")]
    Tokio(#[source] std::io::Error),
    /// A file or directory of the data directory could not be cleared, created or written.
    #[error("cannot {action} {}", path.display())]
    Io {
        /// What was tried: `clear`, `create data dir`, `write`.
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}
