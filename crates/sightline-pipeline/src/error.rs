//! The errors of loading a configuration and starting a pipeline from it: each names what it
//! is about (the config key, the file, the sink, the directory), so that a command can print
//! it as it is and an embedder can match on it.

use std::path::PathBuf;

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file was read but its content is not a valid configuration.
    #[error("invalid config file {}", path.display())]
    InFile {
        /// The file.
        path: PathBuf,
        /// What is wrong in it.
        #[source]
        source: Box<ConfigError>,
    },
    /// Not TOML, an unknown key or a value of the wrong type; the message names the line,
    /// the column and the key.
    #[error(transparent)]
    Syntax(#[from] toml::de::Error),
    /// A value serde accepts but that makes no sense (out of range, inconsistent with
    /// another, naming an unknown policy).
    #[error("{key}: {message}")]
    Invalid {
        /// The offending key as written in the file (`demo.failure_ratio`,
        /// `sinks.tally.kinds`), or the environment variable.
        key: String,
        /// What is wrong with it.
        message: String,
    },
}

impl ConfigError {
    /// An [`Invalid`](ConfigError::Invalid) error.
    pub(crate) fn invalid(key: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError::Invalid {
            key: key.into(),
            message: message.into(),
        }
    }

    /// The offending key when the error is about a value ([`ConfigError::Invalid`], also
    /// inside a file).
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::Invalid { key, .. } => Some(key),
            ConfigError::InFile { source, .. } => source.key(),
            ConfigError::Read { .. } | ConfigError::Syntax(_) => None,
        }
    }
}

/// Why a pipeline (or its metrics endpoint) could not be started.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The configuration is not valid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// [`Select::Only`](crate::Select::Only) named a sink this build does not have.
    #[error("unknown sink {name:?} (this build has: {})", known.join(", "))]
    UnknownSink {
        /// The name asked for.
        name: String,
        /// The sinks this build has.
        known: &'static [&'static str],
    },
    /// The archive directory could not be opened for writing.
    #[error("cannot open the archive in {}", dir.display())]
    Archive {
        /// The archive directory.
        dir: PathBuf,
        /// Why.
        #[source]
        source: sightline_archive::ArchiveError,
    },
    /// The OTLP exporter could not start.
    #[error("cannot start the OTLP exporter")]
    Otlp(#[source] sightline_otlp::OtlpError),
    /// A metric could not be created or registered.
    #[error("cannot set up the Prometheus metrics")]
    Metrics(#[from] prometheus::Error),
    /// A sink's worker could not be started.
    #[error(transparent)]
    Spawn(#[from] sightline_sink::SpawnError),
    /// `[prometheus] bearer_token_env` names a variable that is unset or empty.
    #[error("prometheus.bearer_token_env names ${var}, which is unset or empty: set it, or remove the key to serve /metrics without auth")]
    MissingToken {
        /// The environment variable.
        var: String,
    },
    /// The `/metrics` endpoint could not start (a taken port, for one).
    #[error(transparent)]
    MetricsServer(#[from] sightline_prometheus::PrometheusError),
}
