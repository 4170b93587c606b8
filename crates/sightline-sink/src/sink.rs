//! The [`Sink`] trait and its error: the one thing a sink author implements. It sits at the
//! bottom of the crate so that sinks (here and in other crates) depend on nothing else of it.

use sightline_event::Event;

/// Why a sink could not take a batch.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// Worth trying again (a timeout, a full disk that may drain, a collector restarting):
    /// the runner retries the batch with backoff.
    #[error("transient: {0}")]
    Transient(String),
    /// Retrying will not help (bad configuration, a rejected payload): the batch is counted
    /// as failed.
    #[error("{0}")]
    Permanent(String),
    /// An I/O error; retried when its kind suggests it may pass.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

impl SinkError {
    /// Whether the runner should retry.
    pub fn is_transient(&self) -> bool {
        match self {
            SinkError::Transient(_) => true,
            SinkError::Permanent(_) => false,
            SinkError::Io(e) => matches!(
                e.kind(),
                std::io::ErrorKind::Interrupted
                    | std::io::ErrorKind::TimedOut
                    | std::io::ErrorKind::WouldBlock
                    | std::io::ErrorKind::ConnectionRefused
                    | std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::StorageFull
            ),
        }
    }
}

/// Something events are delivered to. Its methods run on the sink's own worker thread, one at
/// a time, so a sink needs no locking of its own.
pub trait Sink: Send + 'static {
    /// Takes a batch, in emit order per agent. `Ok` means every event in it is delivered.
    fn write(&mut self, batch: &[Event]) -> Result<(), SinkError>;

    /// Pushes buffered data out (fsync, send). Called on the flush interval, on request, and
    /// before shutdown.
    fn flush(&mut self) -> Result<(), SinkError> {
        Ok(())
    }

    /// Releases resources after the last batch. The default flushes.
    fn shutdown(&mut self) -> Result<(), SinkError> {
        self.flush()
    }
}
