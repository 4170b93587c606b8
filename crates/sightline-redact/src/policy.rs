//! A policy compiled from its [`PolicyConfig`]: globs parsed, detectors built, the key read,
//! and the decision whether the clean-event fast path may vouch for events under it. It is
//! what the walk and the fast path read; the [`Redactor`](crate::Redactor) wraps it with
//! running totals. Being a plain value below both, it lets them stay apart.

use smol_str::SmolStr;

use crate::config::{Action, ActionKind, Mode, PolicyConfig};
use crate::detect::{DetectorError, Detectors};
use crate::error::{err, PolicyError};
use crate::key::{HashKey, KeySource};
use crate::path::PathGlob;

/// What a removed value, or a value that cannot be hashed, is replaced with.
pub(crate) const MARKER: &str = "[REDACTED]";

/// A compiled policy.
pub(crate) struct Policy {
    pub(crate) name: SmolStr,
    pub(crate) mode: Mode,
    pub(crate) allow: Vec<PathGlob>,
    pub(crate) allow_safe_fields: bool,
    pub(crate) rules: Vec<(SmolStr, PathGlob, Action)>,
    pub(crate) sensitive: Action,
    pub(crate) detectors: Detectors,
    pub(crate) detector_action: ActionKind,
    pub(crate) max_depth: usize,
    pub(crate) max_bytes: usize,
    pub(crate) key: Option<HashKey>,
    pub(crate) key_source: KeySource,
    /// Whether [`Policy::is_clean`] may vouch for an event (see there).
    pub(crate) fast_path: bool,
}

impl Policy {
    /// Compiles a policy; reads its HMAC key if it hashes anything.
    pub(crate) fn compile(name: &str, cfg: &PolicyConfig) -> Result<Self, PolicyError> {
        let allow = cfg
            .allow
            .iter()
            .enumerate()
            .map(|(i, a)| {
                PathGlob::parse(a)
                    .ok_or_else(|| err(name, format!("allow[{i}]"), format!("invalid path {a:?}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut rules = Vec::new();
        for (i, r) in cfg.rules.iter().enumerate() {
            let glob = PathGlob::parse(&r.path).ok_or_else(|| {
                err(
                    name,
                    format!("rules[{i}].path"),
                    format!("invalid path {:?}", r.path),
                )
            })?;
            if r.action.action == ActionKind::Truncate && r.action.max_chars == 0 {
                return Err(err(
                    name,
                    format!("rules[{i}].max_chars"),
                    "must be at least 1",
                ));
            }
            rules.push((
                SmolStr::new(r.name.as_deref().unwrap_or(&r.path)),
                glob,
                r.action.clone(),
            ));
        }
        let custom: Vec<(String, String)> = cfg
            .custom_detectors
            .iter()
            .map(|c| (c.name.clone(), c.regex.clone()))
            .collect();
        let detectors = Detectors::new(&cfg.detectors, &custom).map_err(|e| {
            let key = match e {
                DetectorError::Unknown(_) => "detectors",
                DetectorError::BadRegex { .. } => "custom_detectors",
            };
            err(name, key, e)
        })?;
        if !matches!(
            cfg.detector_action,
            ActionKind::Mask | ActionKind::Hash | ActionKind::Drop
        ) {
            return Err(err(name, "detector_action", "must be mask, hash or drop"));
        }
        if cfg.max_depth == 0 || cfg.max_bytes == 0 {
            return Err(err(name, "max_depth/max_bytes", "must be at least 1"));
        }
        let hashes = cfg.mode != Mode::Passthrough
            && (cfg.detector_action == ActionKind::Hash
                || cfg.sensitive_fields.action == ActionKind::Hash
                || cfg
                    .rules
                    .iter()
                    .any(|r| r.action.action == ActionKind::Hash));
        let (key, key_source) = if hashes {
            let (key, source) = HashKey::load(name, cfg)?;
            (Some(key), source)
        } else {
            (None, KeySource::NotNeeded)
        };
        Ok(Self {
            name: name.into(),
            mode: cfg.mode,
            allow,
            allow_safe_fields: cfg.allow_safe_fields,
            rules,
            sensitive: cfg.sensitive_fields.clone(),
            detectors,
            detector_action: cfg.detector_action,
            max_depth: cfg.max_depth,
            max_bytes: cfg.max_bytes,
            key,
            key_source,
            // Only a policy whose rules never change a value can vouch for an event from its
            // JSON text alone: a denylist, or an allowlist of exactly the fields the model
            // marks safe (no `allow` globs, whose matches would need the walk's path logic).
            fast_path: match cfg.mode {
                Mode::Denylist => true,
                Mode::Allowlist => cfg.allow.is_empty() && cfg.allow_safe_fields,
                Mode::Passthrough => false,
            } && cfg
                .rules
                .iter()
                .all(|r| matches!(r.action.action, ActionKind::Keep | ActionKind::Scan)),
        })
    }

    /// The keyed hash of `bytes`, or the marker when the policy has no key.
    pub(crate) fn hash(&self, bytes: &[u8]) -> String {
        match &self.key {
            Some(key) => key.hash(bytes),
            None => MARKER.to_owned(),
        }
    }
}
