//! The record of what the redaction stage did to one event. It lives in the event model, not
//! in the redactor, because it travels with the event to every sink and into the archive.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use smol_str::SmolStr;

/// What the redaction stage did to one event: counts by rule and action. It never holds the
/// values, nor the contents of the keys that matched.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RedactionSummary {
    /// The policy applied.
    pub policy: SmolStr,
    /// Redactions by rule name (or detector name), then by action (`drop`, `mask`, `hash`,
    /// `truncate`).
    #[serde(default)]
    pub counts: std::collections::BTreeMap<SmolStr, std::collections::BTreeMap<SmolStr, u32>>,
    /// Whether the payload was cut short (too deep, too large, or not valid UTF-8).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
}

impl RedactionSummary {
    /// Total redactions.
    pub fn total(&self) -> u64 {
        self.counts
            .values()
            .flat_map(|m| m.values())
            .map(|n| *n as u64)
            .sum()
    }
}
