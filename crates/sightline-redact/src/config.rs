//! Policy configuration: `[policies.<name>]` tables in `sightline.toml`.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// How a policy treats fields no rule mentions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Everything passes except what rules, sensitive-field defaults and detectors catch.
    #[default]
    Denylist,
    /// Only fields listed in `allow` (and, with `allow_safe_fields`, the fields the event model
    /// marks safe) pass; everything else is dropped. Detectors still scan what passes.
    Allowlist,
    /// No redaction at all. Must be chosen explicitly, for trusted local sinks.
    Passthrough,
}

/// What to do with a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    /// Remove the field (or array element).
    Drop,
    /// Replace with a fixed marker, optionally keeping the first/last characters.
    Mask,
    /// Replace with a keyed hash (HMAC-SHA256): equal values hash equal, so sessions stay
    /// correlatable, and without the key a dictionary cannot reverse it.
    Hash,
    /// Cut strings to `max_chars` characters (detectors still scan what is left).
    Truncate,
    /// Let the value through as it is: no detectors.
    Keep,
    /// Let the value through, but run the detectors on it.
    Scan,
}

impl ActionKind {
    /// The name used in summaries and metrics.
    pub const fn name(self) -> &'static str {
        match self {
            ActionKind::Drop => "drop",
            ActionKind::Mask => "mask",
            ActionKind::Hash => "hash",
            ActionKind::Truncate => "truncate",
            ActionKind::Keep => "keep",
            ActionKind::Scan => "scan",
        }
    }
}

/// An action with its parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Action {
    /// drop, mask, hash, truncate, keep or scan.
    pub action: ActionKind,
    /// With `mask`: characters kept at the start.
    #[serde(default)]
    pub keep_first: usize,
    /// With `mask`: characters kept at the end.
    #[serde(default)]
    pub keep_last: usize,
    /// With `truncate`: characters kept.
    #[serde(default = "default_max_chars")]
    pub max_chars: usize,
}

const fn default_max_chars() -> usize {
    64
}

impl Action {
    /// An action with default parameters.
    pub const fn new(action: ActionKind) -> Self {
        Self {
            action,
            keep_first: 0,
            keep_last: 0,
            max_chars: default_max_chars(),
        }
    }
}

/// A key rule: values at paths matching `path` get `action`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Name used in summaries and metrics; defaults to the path.
    #[serde(default)]
    pub name: Option<String>,
    /// A dotted path with globs: `payload.args.*`, `payload.**.password`, `**.authorization`.
    /// `*` is one segment (an object key or array index), `**` any number. Keys match
    /// case-insensitively.
    pub path: String,
    /// What to do.
    #[serde(flatten)]
    pub action: Action,
}

/// A user-defined value detector.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomDetector {
    /// Name used in summaries and metrics.
    pub name: String,
    /// A regular expression (Rust `regex` syntax); every match is redacted.
    pub regex: String,
}

/// One redaction policy. Unknown keys are errors; every key has a default.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    /// denylist (default), allowlist or passthrough.
    pub mode: Mode,
    /// With `allowlist`: paths (globs) that pass, e.g. `payload.callback`.
    pub allow: Vec<String>,
    /// With `allowlist`: whether the payload fields the event model marks safe pass too.
    pub allow_safe_fields: bool,
    /// Key rules, first match wins.
    pub rules: Vec<Rule>,
    /// What happens to fields the event model marks sensitive when no rule matches them.
    pub sensitive_fields: Action,
    /// Built-in detectors to run (names, or `*` for all).
    pub detectors: Vec<String>,
    /// What happens to a detected secret inside a string: `mask` or `hash` replace the match;
    /// `drop` replaces the whole string.
    pub detector_action: ActionKind,
    /// Extra detectors.
    pub custom_detectors: Vec<CustomDetector>,
    /// Deepest nesting kept; deeper values are replaced by a marker and counted.
    pub max_depth: usize,
    /// Most bytes of string data kept per payload; the rest is replaced by a marker and counted.
    pub max_bytes: usize,
    /// Environment variable holding the HMAC key for `hash` (read at start, never logged).
    pub hash_key_env: Option<String>,
    /// File holding the HMAC key for `hash` (read at start, never logged).
    pub hash_key_file: Option<PathBuf>,
    /// Refuse to start when `hash` is used and no key is configured, instead of using a
    /// random per-process key (whose hashes do not correlate across runs).
    pub require_hash_key: bool,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self {
            mode: Mode::Denylist,
            allow: Vec::new(),
            allow_safe_fields: true,
            rules: Vec::new(),
            sensitive_fields: Action::new(ActionKind::Mask),
            detectors: vec!["*".to_owned()],
            detector_action: ActionKind::Mask,
            custom_detectors: Vec::new(),
            max_depth: 32,
            max_bytes: 256 * 1024,
            hash_key_env: Some("SIGHTLINE_HASH_KEY".to_owned()),
            hash_key_file: None,
            require_hash_key: false,
        }
    }
}

impl fmt::Debug for PolicyConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The key's location is configuration, not a secret; the key itself never is here.
        f.debug_struct("PolicyConfig")
            .field("mode", &self.mode)
            .field("allow", &self.allow)
            .field("rules", &self.rules.len())
            .field("sensitive_fields", &self.sensitive_fields)
            .field("detectors", &self.detectors)
            .field("detector_action", &self.detector_action)
            .field("max_depth", &self.max_depth)
            .field("max_bytes", &self.max_bytes)
            .field("hash_key_env", &self.hash_key_env)
            .field("hash_key_file", &self.hash_key_file)
            .finish()
    }
}

impl PolicyConfig {
    /// The built-in policies every configuration starts from (a `[policies.<name>]` table
    /// replaces the one of the same name):
    /// - `default`: denylist; sensitive fields masked; every detector masks.
    /// - `archive`: denylist; sensitive fields and detected secrets hashed, so an archive can be
    ///   searched by equality without holding the values. State diffs are the exception: they
    ///   are kept (with every detector run on them, so secrets in them are still hashed),
    ///   because `sightline session --at` rebuilds an agent's state from them.
    /// - `otlp`: allowlist of the fields the model marks safe; detected secrets masked.
    /// - `metrics`: allowlist of safe fields only, no detectors needed beyond the default.
    /// - `none`: passthrough, for trusted in-process consumers.
    pub fn builtin() -> Vec<(&'static str, PolicyConfig)> {
        vec![
            ("default", PolicyConfig::default()),
            (
                "archive",
                PolicyConfig {
                    sensitive_fields: Action::new(ActionKind::Hash),
                    detector_action: ActionKind::Hash,
                    rules: vec![Rule {
                        name: Some("state_diff".to_owned()),
                        path: "payload.diff".to_owned(),
                        action: Action::new(ActionKind::Scan),
                    }],
                    ..PolicyConfig::default()
                },
            ),
            (
                "otlp",
                PolicyConfig {
                    mode: Mode::Allowlist,
                    ..PolicyConfig::default()
                },
            ),
            (
                "metrics",
                PolicyConfig {
                    mode: Mode::Allowlist,
                    ..PolicyConfig::default()
                },
            ),
            (
                "none",
                PolicyConfig {
                    mode: Mode::Passthrough,
                    ..PolicyConfig::default()
                },
            ),
        ]
    }
}
