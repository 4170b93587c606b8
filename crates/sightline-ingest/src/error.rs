//! What can be wrong with one input, and where: the converter's errors are data a reader can
//! count, skip or report, never a panic and never a bare string.

/// Why one input (a line, or a JSON document) could not be converted.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    /// The bytes are not UTF-8.
    #[error("not UTF-8 (an invalid byte follows the first {valid_up_to} bytes)")]
    NotUtf8 {
        /// How many bytes from the start are valid UTF-8.
        valid_up_to: usize,
    },
    /// The text is not JSON.
    #[error("not JSON: {0}")]
    NotJson(serde_json::Error),
    /// JSON, but neither an object nor an array.
    #[error("expected a JSON object or array")]
    NotObjectOrArray,
    /// An object none of the accepted forms matches.
    #[error("neither a Sightline event, a Tail Worker TraceItem, a diagnostics channel entry, nor an observability event (no \"type\")")]
    Unrecognised,
    /// It looks like a Sightline event (`v`, `id`, `seq`) but does not parse as one.
    #[error("invalid Sightline event: {0}")]
    InvalidEvent(sightline_event::ParseError),
    /// A TraceItem whose `diagnosticsChannelEvents` is not an array.
    #[error("diagnosticsChannelEvents is not an array")]
    ChannelEventsNotArray,
    /// A diagnostics channel entry without a `message` object.
    #[error("diagnostics channel entry without a message object")]
    ChannelEntryWithoutMessage,
    /// An observability event without a string `type`.
    #[error("observability event without a string \"type\"")]
    NoType,
    /// An observability event without a `timestamp` (its own or its channel entry's).
    #[error("observability event without a timestamp")]
    NoTimestamp,
    /// The payload's fields do not fit the event model's payload of that type.
    #[error("{type_name}: payload does not fit the event model: {error}")]
    PayloadMismatch {
        /// The Cloudflare `type` of the event.
        type_name: String,
        /// What did not fit.
        error: serde_json::Error,
    },
}

/// A [`ConvertError`] with the (1-based) number of the input line it happened on.
#[derive(Debug, thiserror::Error)]
#[error("line {line}: {error}")]
pub struct LineError {
    /// The line number, counting from 1 (blank lines included).
    pub line: u64,
    /// What is wrong with the line.
    pub error: ConvertError,
}
