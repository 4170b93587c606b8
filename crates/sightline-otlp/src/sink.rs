//! The OTLP sink: maps and encodes each event on the sink's worker, then hands the encoded
//! records to the exporter's bounded buffer without waiting for the network.

use sightline_event::Event;
use sightline_sink::{Sink, SinkError};

use crate::config::{Env, OtlpConfig, ProcessEnv};
use crate::export::{Exporter, Item, OtlpStatsHandle};
use crate::map::{signals, Mapper};

/// Why the OTLP sink could not start.
#[derive(Debug, thiserror::Error)]
pub enum OtlpError {
    /// A configuration key or environment variable is wrong.
    #[error("otlp config: {0}")]
    Config(#[from] crate::config::ConfigError),
    /// The transport could not be built (bad endpoint, TLS, headers).
    #[error(transparent)]
    Transport(#[from] crate::transport::TransportError),
}

/// A [`Sink`] exporting events over OTLP.
pub struct OtlpSink {
    mapper: Mapper,
    exporter: Exporter,
}

impl std::fmt::Debug for OtlpSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtlpSink")
            .field("mapper", &self.mapper)
            .finish_non_exhaustive()
    }
}

impl OtlpSink {
    /// Starts an exporter for `config`, with the process environment's `OTEL_*` variables.
    pub fn new(config: &OtlpConfig) -> Result<Self, OtlpError> {
        Self::with_env(config, &ProcessEnv)
    }

    /// Starts an exporter for `config`, reading `OTEL_*` variables from `env`.
    pub fn with_env(config: &OtlpConfig, env: &dyn Env) -> Result<Self, OtlpError> {
        let resolved = config.resolve(env)?;
        let mapper = Mapper {
            traces_enabled: config.traces_enabled,
            capture_content: config.capture_content,
        };
        Ok(Self {
            mapper,
            exporter: Exporter::start(resolved)?,
        })
    }

    /// A handle on the exporter's counters, usable from any thread.
    pub fn stats_handle(&self) -> OtlpStatsHandle {
        self.exporter.stats_handle()
    }

    /// Maps and encodes one event.
    pub fn encode(&self, e: &Event) -> Item {
        let s = signals(e, self.mapper.traces_enabled);
        let encode = |f: fn(&Mapper, &Event, &mut Vec<u8>)| {
            let mut buf = Vec::with_capacity(512);
            f(&self.mapper, e, &mut buf);
            bytes::Bytes::from(buf)
        };
        Item {
            log: s.log.then(|| encode(Mapper::encode_log)),
            span: s.span.then(|| encode(Mapper::encode_span)),
        }
    }
}

impl Sink for OtlpSink {
    fn write(&mut self, batch: &[Event]) -> Result<(), SinkError> {
        let items = batch.iter().map(|e| self.encode(e)).collect();
        self.exporter.offer(items).map_err(SinkError::Transient)
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        self.exporter.flush();
        Ok(())
    }

    fn shutdown(&mut self) -> Result<(), SinkError> {
        self.exporter.shutdown();
        Ok(())
    }
}
