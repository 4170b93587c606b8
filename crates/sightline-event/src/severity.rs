//! How much an event matters ([`Severity`], on OpenTelemetry's scale) and how an operation
//! ended ([`Outcome`]): the two envelope fields every sink maps to its own vocabulary (OTLP
//! severity numbers, metric labels), so they are defined once here.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How much an operator should care, on OpenTelemetry's scale.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Default,
    Serialize,
    Deserialize,
    JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Fine-grained detail.
    Trace,
    /// Diagnostic detail.
    Debug,
    /// Normal operation.
    #[default]
    Info,
    /// Something went wrong but was handled (a retry, a rejection).
    Warn,
    /// An operation failed.
    Error,
    /// The agent cannot continue.
    Fatal,
}

impl Severity {
    /// The OpenTelemetry severity number (9 INFO, 13 WARN, 17 ERROR).
    pub const fn otel_number(self) -> i32 {
        match self {
            Severity::Trace => 1,
            Severity::Debug => 5,
            Severity::Info => 9,
            Severity::Warn => 13,
            Severity::Error => 17,
            Severity::Fatal => 21,
        }
    }

    /// The OpenTelemetry severity text (`INFO`, `WARN`, ...).
    pub const fn otel_text(self) -> &'static str {
        match self {
            Severity::Trace => "TRACE",
            Severity::Debug => "DEBUG",
            Severity::Info => "INFO",
            Severity::Warn => "WARN",
            Severity::Error => "ERROR",
            Severity::Fatal => "FATAL",
        }
    }

    /// The name used in the JSON form.
    pub const fn name(self) -> &'static str {
        match self {
            Severity::Trace => "trace",
            Severity::Debug => "debug",
            Severity::Info => "info",
            Severity::Warn => "warn",
            Severity::Error => "error",
            Severity::Fatal => "fatal",
        }
    }

    /// Parses a severity name (`warn` or `warning`, case-insensitive).
    pub fn from_name(name: &str) -> Option<Severity> {
        Some(match name.to_ascii_lowercase().as_str() {
            "trace" => Severity::Trace,
            "debug" => Severity::Debug,
            "info" => Severity::Info,
            "warn" | "warning" => Severity::Warn,
            "error" => Severity::Error,
            "fatal" => Severity::Fatal,
            _ => return None,
        })
    }
}

/// How an operation ended.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// It succeeded.
    Ok,
    /// It failed.
    Error,
    /// It ran out of time.
    Timeout,
    /// It was cancelled.
    Cancelled,
    /// It was refused before running.
    Rejected,
}

impl Outcome {
    /// The name used in the JSON form and in metric labels.
    pub const fn name(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Error => "error",
            Outcome::Timeout => "timeout",
            Outcome::Cancelled => "cancelled",
            Outcome::Rejected => "rejected",
        }
    }

    /// Whether this outcome is a failure.
    pub const fn is_failure(self) -> bool {
        !matches!(self, Outcome::Ok | Outcome::Cancelled)
    }
}
