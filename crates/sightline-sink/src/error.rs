//! Why a sink could not be started: shared by every layer that starts threads or queues for
//! sinks (the worker, the redaction stage, the fan-out, the pipeline), so it sits below them.

use crate::ConfigError;

/// A sink that could not be started.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    /// Its runner configuration is invalid.
    #[error("sink {sink:?}: {source}")]
    Config {
        /// The sink.
        sink: String,
        /// The offending key and why.
        source: ConfigError,
    },
    /// Its redaction policy does not exist or cannot be built.
    #[error("sink {sink:?}: policy: {message}")]
    Policy {
        /// The sink.
        sink: String,
        /// What is wrong.
        message: String,
    },
    /// The worker thread could not be started.
    #[error("sink {sink:?}: cannot start its worker thread: {source}")]
    Thread {
        /// The sink.
        sink: String,
        /// The OS error.
        source: std::io::Error,
    },
}
