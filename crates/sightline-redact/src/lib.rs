//! # sightline-redact: no secret leaves the process
//!
//! Agents' payloads carry user text, tool arguments, OAuth URLs, email addresses, error
//! messages and state diffs; a token leaked through logged props is a real incident in this
//! field. This crate is the one place that decides what of an event may leave: a [`Redactor`]
//! compiled from a [`PolicyConfig`] rewrites an [`Event`] in place before any sink sees it.
//!
//! A policy combines, in this order of precedence, for every value at a dotted path
//! (`payload.args.token`, `agent.name`):
//! 1. **key rules** with globs (`payload.**.password`, `**.authorization`) and an action:
//!    `drop`, `mask` (optionally keeping the first/last characters), `hash` (HMAC-SHA256 with a
//!    key from an environment variable or a file, never from the config), `truncate`, `keep`
//!    or `scan`;
//! 2. the **allow-list** (in `allowlist` mode only listed fields, and optionally the fields the
//!    event model marks safe, pass);
//! 3. the **sensitive-field default**: fields whose type is `Sensitive<T>` get the policy's
//!    `sensitive_fields` action even with no rule;
//! 4. **value detectors** on every string not explicitly kept: email, payment cards (Luhn and
//!    issuer checked), JWTs, `Bearer`/`Basic` credentials, AWS keys, OpenAI/Anthropic/GitHub/
//!    Slack/Google/Stripe tokens, PEM private keys, IPv4/IPv6, E.164 phones, US SSNs, IBANs and
//!    custom regexes — also inside object keys, URL query strings (decoded) and JSON that was
//!    stringified into a string.
//!
//! Payloads deeper than `max_depth` or with more than `max_bytes` of strings are cut with a
//! marker and counted. Every redacted event carries a [`RedactionSummary`] (counts by rule and
//! action, never values), and the redactor keeps running totals for metrics.
//!
//! ```
//! use sightline_event::{AgentRef, Event, RpcError};
//! use sightline_redact::{PolicyConfig, Redactor};
//!
//! let redactor = Redactor::new("default", &PolicyConfig::default()).unwrap();
//! let mut event = Event::new(AgentRef::new("Support", "t1"), 1, RpcError {
//!     method: "refund".into(),
//!     error: "card 4111 1111 1111 1111 declined for jane@example.com".into(),
//!     ..Default::default()
//! });
//! redactor.redact_event(&mut event);
//! let line = event.to_json_line();
//! assert!(!line.contains("4111") && !line.contains("jane@example.com"));
//! assert!(line.contains("\"redaction\""));
//! ```
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod config;
mod detect;
mod path;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Map, Value};
use sightline_event::{Event, Kind, Payload, RawPayload, RedactionSummary};
use smol_str::SmolStr;

pub use config::{Action, ActionKind, CustomDetector, Mode, PolicyConfig, Rule};
pub use detect::{DetectorError, Detectors, Found, BUILTIN as BUILTIN_DETECTORS};
pub use path::PathGlob;

type HmacSha256 = Hmac<sha2::Sha256>;

/// Query parameters whose values are secrets whatever they look like.
const SECRET_PARAMS: &[&str] = &[
    "token",
    "access_token",
    "refresh_token",
    "id_token",
    "api_key",
    "apikey",
    "key",
    "secret",
    "client_secret",
    "password",
    "passwd",
    "pwd",
    "code",
    "state",
    "sig",
    "signature",
    "auth",
    "session",
    "sessionid",
    "jwt",
    "credential",
    "x-amz-signature",
    "x-amz-credential",
];

const MARKER: &str = "[REDACTED]";

/// A policy that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("policy {policy:?}: {key}: {message}")]
pub struct PolicyError {
    /// The policy.
    pub policy: String,
    /// The offending key (`rules[2].path`, `detectors`, `hash_key_env`).
    pub key: String,
    /// What is wrong.
    pub message: String,
}

/// Where a policy's HMAC key came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// The policy never hashes, so it has no key.
    NotNeeded,
    /// Read from this environment variable.
    Env(String),
    /// Read from this file.
    File(std::path::PathBuf),
    /// None was configured: a random key for this process; hashes do not correlate across runs.
    Ephemeral,
}

/// The HMAC key. Its `Debug` never shows it.
#[derive(Clone)]
struct HashKey(HmacSha256);

impl fmt::Debug for HashKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HashKey(**REDACTED**)")
    }
}

/// A compiled policy. Cheap to share (`Arc`) between the sinks that use it.
pub struct Redactor {
    name: SmolStr,
    mode: Mode,
    allow: Vec<PathGlob>,
    allow_safe_fields: bool,
    rules: Vec<(SmolStr, PathGlob, Action)>,
    sensitive: Action,
    detectors: Detectors,
    detector_action: ActionKind,
    max_depth: usize,
    max_bytes: usize,
    key: Option<HashKey>,
    key_source: KeySource,
    /// Whether [`Redactor::is_clean`] may vouch for an event (see there).
    fast_path: bool,
    counts: Mutex<HashMap<(SmolStr, &'static str), u64>>,
    events_seen: AtomicU64,
    events_redacted: AtomicU64,
    events_truncated: AtomicU64,
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Redactor")
            .field("name", &self.name)
            .field("mode", &self.mode)
            .field("rules", &self.rules.len())
            .field("detectors", &self.detectors.names())
            .field("key", &self.key)
            .field("key_source", &self.key_source)
            .finish()
    }
}

/// Running totals of one redactor, for metrics.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RedactorStats {
    /// Events the policy was applied to.
    pub events_seen: u64,
    /// Events that had something redacted.
    pub events_redacted: u64,
    /// Events cut short by the depth or size limit or invalid UTF-8.
    pub events_truncated: u64,
    /// Redactions by (rule or detector, action).
    pub by_rule: Vec<(SmolStr, &'static str, u64)>,
}

fn err(policy: &str, key: impl Into<String>, message: impl fmt::Display) -> PolicyError {
    PolicyError {
        policy: policy.to_owned(),
        key: key.into(),
        message: message.to_string(),
    }
}

impl Redactor {
    /// Compiles a policy; reads its HMAC key if it hashes anything.
    pub fn new(name: &str, cfg: &PolicyConfig) -> Result<Self, PolicyError> {
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
            let (bytes, source) = load_key(name, cfg)?;
            let mac = HmacSha256::new_from_slice(&bytes).map_err(|e| err(name, "hash_key", e))?;
            (Some(HashKey(mac)), source)
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
            counts: Mutex::new(HashMap::new()),
            events_seen: AtomicU64::new(0),
            events_redacted: AtomicU64::new(0),
            events_truncated: AtomicU64::new(0),
        })
    }

    /// The policy's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where the HMAC key came from.
    pub fn key_source(&self) -> &KeySource {
        &self.key_source
    }

    /// Turns the clean-event fast path on or off (it is on wherever the policy allows it);
    /// for tests that compare both paths.
    #[doc(hidden)]
    pub fn set_fast_path(&mut self, on: bool) {
        self.fast_path = on && self.fast_path;
    }

    /// Whether the full walk would leave this event untouched, decided from the payload's JSON
    /// text in one pass plus one detector search, instead of building and walking a JSON tree.
    ///
    /// Conservative: any doubt sends the event to the full walk. Doubt is an escape sequence
    /// (detectors on raw text could miss an escaped secret), a URL (query strings are decoded
    /// by the walk), a string that starts like JSON (the walk parses it), nesting or size near
    /// the limits, a field the model marks sensitive that no keep/scan rule covers, or any
    /// detector match anywhere in the text or the agent's name.
    fn is_clean(&self, event: &Event, buf: &mut Vec<u8>) -> bool {
        if !self.fast_path || matches!(event.payload, Payload::Raw(_)) || event.redaction.is_some()
        {
            return false;
        }
        buf.clear();
        event.payload.write_json(buf);
        if buf.len() > self.max_bytes {
            return false;
        }
        let kind = event.kind();
        let (mut depth, mut max_depth) = (0usize, 0usize);
        let (mut in_str, mut str_start) = (false, 0usize);
        let mut expect_key = false;
        for (i, &b) in buf.iter().enumerate() {
            if in_str {
                match b {
                    b'\\' => return false,
                    b'"' => {
                        in_str = false;
                        if expect_key && depth == 1 {
                            let key = &buf[str_start..i];
                            if !self.sensitive_key_ok(kind, key) {
                                return false;
                            }
                            expect_key = false;
                        }
                    }
                    b'{' | b'[' | b' ' | b'\t' if i == str_start => return false,
                    _ => {}
                }
                continue;
            }
            match b {
                b'"' => {
                    in_str = true;
                    str_start = i + 1;
                }
                b'{' | b'[' => {
                    depth += 1;
                    max_depth = max_depth.max(depth);
                    expect_key = b == b'{' && depth == 1;
                }
                b'}' | b']' => depth = depth.saturating_sub(1),
                b',' if depth == 1 => expect_key = true,
                _ => {}
            }
        }
        if max_depth + 1 >= self.max_depth {
            return false;
        }
        let Ok(text) = std::str::from_utf8(buf) else {
            return false;
        };
        if text.contains("://") {
            return false;
        }
        !self.detectors.any(text)
            && !self.detectors.any(&event.agent.name)
            && !event.agent.name.contains("://")
    }

    /// Whether a top-level payload key is harmless: not a sensitive field, or one a keep/scan
    /// rule covers (the fast path only runs for policies whose rules are keep or scan). In
    /// allowlist mode a key the model does not know, or a sensitive one no rule covers, is
    /// dropped by the walk, so it is not harmless.
    fn sensitive_key_ok(&self, kind: Kind, key: &[u8]) -> bool {
        let allowlist = self.mode == Mode::Allowlist;
        let Some(spec) = kind.fields().iter().find(|f| f.name.as_bytes() == key) else {
            return !allowlist;
        };
        if !spec.sensitive
            || (!allowlist && matches!(self.sensitive.action, ActionKind::Keep | ActionKind::Scan))
        {
            return true;
        }
        let path = [SmolStr::new_static("payload"), SmolStr::new(spec.name)];
        self.rules.iter().any(|(_, g, _)| g.matches(&path))
    }

    /// Running totals.
    pub fn stats(&self) -> RedactorStats {
        let mut by_rule: Vec<_> = self
            .counts
            .lock()
            .map(|c| c.iter().map(|((r, a), n)| (r.clone(), *a, *n)).collect())
            .unwrap_or_default();
        by_rule.sort();
        RedactorStats {
            events_seen: self.events_seen.load(Ordering::Relaxed),
            events_redacted: self.events_redacted.load(Ordering::Relaxed),
            events_truncated: self.events_truncated.load(Ordering::Relaxed),
            by_rule,
        }
    }

    /// Applies the policy to an event in place. An event with nothing to redact keeps its
    /// typed payload; otherwise the payload becomes [`Payload::Raw`] and the event carries a
    /// [`RedactionSummary`].
    pub fn redact_event(&self, event: &mut Event) {
        self.events_seen.fetch_add(1, Ordering::Relaxed);
        if self.mode == Mode::Passthrough {
            return;
        }
        thread_local! {
            static BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        let clean = BUF.with(|b| {
            b.try_borrow_mut()
                .is_ok_and(|mut buf| self.is_clean(event, &mut buf))
        });
        if clean {
            return;
        }
        let kind = event.kind();
        let mut payload = event.payload.to_json();
        let mut w = Walk::new(self, Some(kind));
        let mut path = vec![SmolStr::new_static("payload")];
        w.visit_container_root(&mut payload, &mut path);
        // The instance name is often a user id or an email address.
        let mut name = Value::String(event.agent.name.to_string());
        let mut name_path = vec![SmolStr::new_static("agent"), SmolStr::new_static("name")];
        let name_keep = w.visit(&mut name, &mut name_path, 1, true);
        let mut summary = w.finish();
        if let Some(prior) = event.redaction.take() {
            // Redacting again (replay under another policy): keep the earlier counts too.
            summary.truncated |= prior.truncated;
            for (rule, actions) in prior.counts {
                let slot = summary.counts.entry(rule).or_default();
                for (a, n) in actions {
                    *slot.entry(a).or_default() += n;
                }
            }
        }
        if summary.counts.is_empty() && !summary.truncated {
            return;
        }
        match (name_keep, name) {
            (true, Value::String(s)) => event.agent.name = s.into(),
            (false, _) => event.agent.name = SmolStr::new_static(MARKER),
            (true, other) => event.agent.name = other.to_string().into(),
        }
        let fields = match payload {
            Value::Object(m) => m,
            other => {
                let mut m = Map::new();
                m.insert("value".into(), other);
                m
            }
        };
        event.payload = Payload::Raw(RawPayload { kind, fields });
        self.record(&summary);
        event.redaction = Some(Box::new(summary));
    }

    /// Applies the policy to a bare JSON value (no event kind, so no sensitive-field defaults
    /// and no safe-field allow-list); returns what was done.
    pub fn redact_value(&self, value: &mut Value) -> RedactionSummary {
        if self.mode == Mode::Passthrough {
            return RedactionSummary {
                policy: self.name.clone(),
                ..RedactionSummary::default()
            };
        }
        let mut w = Walk::new(self, None);
        let mut path = vec![SmolStr::new_static("payload")];
        w.visit_container_root(value, &mut path);
        let summary = w.finish();
        self.record(&summary);
        summary
    }

    fn record(&self, summary: &RedactionSummary) {
        if summary.counts.is_empty() && !summary.truncated {
            return;
        }
        self.events_redacted.fetch_add(1, Ordering::Relaxed);
        if summary.truncated {
            self.events_truncated.fetch_add(1, Ordering::Relaxed);
        }
        if let Ok(mut c) = self.counts.lock() {
            for (rule, actions) in &summary.counts {
                for (action, n) in actions {
                    let action = action_name(action);
                    *c.entry((rule.clone(), action)).or_default() += *n as u64;
                }
            }
        }
    }

    fn hash(&self, bytes: &[u8]) -> String {
        let Some(key) = &self.key else {
            return MARKER.to_owned();
        };
        let mut mac = key.0.clone();
        mac.update(bytes);
        let out = mac.finalize().into_bytes();
        let mut s = String::with_capacity(5 + 32);
        s.push_str("hmac:");
        for b in &out[..16] {
            s.push_str(&format!("{b:02x}"));
        }
        s
    }
}

fn action_name(a: &str) -> &'static str {
    match a {
        "drop" => "drop",
        "mask" => "mask",
        "hash" => "hash",
        "truncate" => "truncate",
        "keep" => "keep",
        _ => "scan",
    }
}

fn load_key(policy: &str, cfg: &PolicyConfig) -> Result<(Vec<u8>, KeySource), PolicyError> {
    if let Some(path) = &cfg.hash_key_file {
        let bytes = std::fs::read(path).map_err(|e| {
            err(
                policy,
                "hash_key_file",
                format!("cannot read {}: {e}", path.display()),
            )
        })?;
        let trimmed = bytes.trim_ascii_end().to_vec();
        if trimmed.len() < 16 {
            return Err(err(
                policy,
                "hash_key_file",
                "the key must be at least 16 bytes",
            ));
        }
        return Ok((trimmed, KeySource::File(path.clone())));
    }
    if let Some(var) = &cfg.hash_key_env {
        if let Some(v) = std::env::var_os(var).filter(|v| !v.is_empty()) {
            let bytes = v.into_encoded_bytes();
            if bytes.len() < 16 {
                return Err(err(
                    policy,
                    "hash_key_env",
                    format!("${var} must hold at least 16 bytes"),
                ));
            }
            return Ok((bytes, KeySource::Env(var.clone())));
        }
    }
    if cfg.require_hash_key {
        return Err(err(
            policy,
            "hash_key_env",
            "the policy hashes values but no key is set (hash_key_env or hash_key_file)",
        ));
    }
    let mut rng = fastrand::Rng::new();
    Ok(((0..32).map(|_| rng.u8(..)).collect(), KeySource::Ephemeral))
}

// ===== the walk =====

struct Walk<'a> {
    r: &'a Redactor,
    kind: Option<Kind>,
    counts: BTreeMap<SmolStr, BTreeMap<SmolStr, u32>>,
    truncated: bool,
    bytes: usize,
    found: Vec<Found>,
}

/// What to do with a node after visiting it.
type Keep = bool;

impl<'a> Walk<'a> {
    fn new(r: &'a Redactor, kind: Option<Kind>) -> Self {
        Self {
            r,
            kind,
            counts: BTreeMap::new(),
            truncated: false,
            bytes: 0,
            found: Vec::new(),
        }
    }

    fn finish(self) -> RedactionSummary {
        RedactionSummary {
            policy: self.r.name.clone(),
            counts: self.counts,
            truncated: self.truncated,
        }
    }

    fn count(&mut self, rule: &str, action: &str) {
        *self
            .counts
            .entry(SmolStr::new(rule))
            .or_default()
            .entry(SmolStr::new(action))
            .or_default() += 1;
    }

    /// The payload root: an object whose fields are visited; the root itself is never dropped.
    fn visit_container_root(&mut self, v: &mut Value, path: &mut Vec<SmolStr>) {
        if !self.visit(v, path, 0, false) {
            *v = Value::Object(Map::new());
        }
    }

    /// Visits a value at `path`; returns false when it must be removed. `allowed` is true once
    /// an ancestor passed the allow-list.
    fn visit(
        &mut self,
        v: &mut Value,
        path: &mut Vec<SmolStr>,
        depth: usize,
        allowed: bool,
    ) -> Keep {
        if depth > self.r.max_depth {
            *v = Value::String("[TRUNCATED: too deep]".into());
            self.truncated = true;
            self.count("limits", "truncate");
            return true;
        }
        // 1. key rules
        if path.len() > 1 {
            if let Some((name, _, action)) = self.r.rules.iter().find(|(_, g, _)| g.matches(path)) {
                let (name, action) = (name.clone(), action.clone());
                return self.apply(&name, &action, v, path, depth);
            }
        }
        // 2. allow-list
        let mut allowed = allowed;
        let in_payload = path.first().is_some_and(|p| p == "payload");
        if self.r.mode == Mode::Allowlist && in_payload && path.len() > 1 && !allowed {
            if self.r.allow.iter().any(|g| g.matches(path)) || self.safe_field(path) {
                allowed = true;
            } else if v.is_object() || v.is_array() {
                if !self.r.allow.iter().any(|g| g.may_match_below(path)) {
                    self.count("allowlist", "drop");
                    return false;
                }
            } else {
                self.count("allowlist", "drop");
                return false;
            }
        }
        // 3. fields the model marks sensitive
        if in_payload && path.len() == 2 && self.sensitive_field(path) {
            let action = self.r.sensitive.clone();
            return self.apply("sensitive_field", &action, v, path, depth);
        }
        // 4. detectors and descent
        self.descend(v, path, depth, allowed)
    }

    fn descend(
        &mut self,
        v: &mut Value,
        path: &mut Vec<SmolStr>,
        depth: usize,
        allowed: bool,
    ) -> Keep {
        match v {
            Value::String(s) => {
                self.scan_string(s, path, depth);
                true
            }
            Value::Number(n) => {
                let text = n.to_string();
                if text.len() >= 8 {
                    let mut s = text.clone();
                    self.scan_text(&mut s);
                    if s != text {
                        *v = Value::String(s);
                    }
                }
                true
            }
            Value::Object(map) => {
                // Visit values in place; rebuild the map only when a key must change or a
                // value must go (rare), so a clean object costs no re-insertion.
                let mut drops: Vec<String> = Vec::new();
                let mut renames: Vec<(String, String)> = Vec::new();
                for (key, child) in map.iter_mut() {
                    if let Some(new_key) = self.scan_key(key) {
                        renames.push((key.clone(), new_key));
                    }
                    path.push(SmolStr::new(key));
                    let keep = self.visit(child, path, depth + 1, allowed);
                    path.pop();
                    if !keep {
                        drops.push(key.clone());
                    }
                }
                for k in drops {
                    map.remove(&k);
                }
                for (old, new) in renames {
                    if let Some(v) = map.remove(&old) {
                        let mut unique = new.clone();
                        let mut n = 1;
                        while map.contains_key(&unique) {
                            n += 1;
                            unique = format!("{new}#{n}");
                        }
                        map.insert(unique, v);
                    }
                }
                true
            }
            Value::Array(items) => {
                let mut i = 0;
                let mut index = 0usize;
                while i < items.len() {
                    path.push(smol_str::format_smolstr!("{index}"));
                    let keep = self.visit(&mut items[i], path, depth + 1, allowed);
                    path.pop();
                    index += 1;
                    if keep {
                        i += 1;
                    } else {
                        items.remove(i);
                    }
                }
                true
            }
            Value::Bool(_) | Value::Null => true,
        }
    }

    fn field_spec(&self, path: &[SmolStr]) -> Option<bool> {
        let kind = self.kind?;
        let field = path.get(1)?;
        kind.fields()
            .iter()
            .find(|f| f.name == field.as_str())
            .map(|f| f.sensitive)
    }

    fn sensitive_field(&self, path: &[SmolStr]) -> bool {
        self.field_spec(path) == Some(true)
    }

    fn safe_field(&self, path: &[SmolStr]) -> bool {
        self.r.allow_safe_fields && path.len() == 2 && self.field_spec(path) == Some(false)
    }

    fn apply(
        &mut self,
        rule: &str,
        action: &Action,
        v: &mut Value,
        path: &mut Vec<SmolStr>,
        depth: usize,
    ) -> Keep {
        match action.action {
            ActionKind::Keep => true,
            ActionKind::Scan => self.descend(v, path, depth, true),
            ActionKind::Drop => {
                self.count(rule, "drop");
                false
            }
            ActionKind::Mask => {
                *v = Value::String(mask(v, action.keep_first, action.keep_last));
                self.count(rule, "mask");
                true
            }
            ActionKind::Hash => {
                let bytes = match &*v {
                    Value::String(s) => s.as_bytes().to_vec(),
                    other => other.to_string().into_bytes(),
                };
                *v = Value::String(self.r.hash(&bytes));
                self.count(rule, "hash");
                true
            }
            ActionKind::Truncate => {
                let mut s = match std::mem::take(v) {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                if s.chars().count() > action.max_chars {
                    let cut = s
                        .char_indices()
                        .nth(action.max_chars)
                        .map_or(s.len(), |(i, _)| i);
                    s.truncate(cut);
                    s.push_str("…[truncated]");
                    self.count(rule, "truncate");
                }
                // What is left is still scanned.
                self.scan_text(&mut s);
                *v = Value::String(s);
                true
            }
        }
    }

    fn budget(&mut self, s: &mut String) -> bool {
        self.bytes += s.len();
        if self.bytes > self.r.max_bytes {
            let over = self.bytes - self.r.max_bytes;
            let keep = s.len().saturating_sub(over);
            let mut cut = keep;
            while cut > 0 && !s.is_char_boundary(cut) {
                cut -= 1;
            }
            s.truncate(cut);
            s.push_str("[TRUNCATED: too large]");
            self.truncated = true;
            self.count("limits", "truncate");
            return false;
        }
        true
    }

    /// A string value: budget, stringified JSON, URLs, then detectors.
    fn scan_string(&mut self, s: &mut String, path: &mut Vec<SmolStr>, depth: usize) {
        self.budget(s);
        let t = s.trim_start();
        if (t.starts_with('{') || t.starts_with('[')) && s.len() > 1 {
            if let Ok(mut inner) = serde_json::from_str::<Value>(s) {
                if inner.is_object() || inner.is_array() {
                    let before = self.counts.clone();
                    let was_truncated = self.truncated;
                    self.descend(&mut inner, path, depth + 1, true);
                    if self.counts != before || self.truncated != was_truncated {
                        *s = inner.to_string();
                    }
                    return;
                }
            }
        }
        self.scan_text(s);
    }

    /// The key's redacted form, when detectors change it.
    fn scan_key(&mut self, key: &str) -> Option<String> {
        self.found.clear();
        self.r.detectors.find(key, &mut self.found);
        if self.found.is_empty() && !(key.contains("://") && key.contains('?')) {
            return None;
        }
        let mut k = key.to_owned();
        self.scan_text(&mut k);
        (k != key).then_some(k)
    }

    /// Free text: URL query strings (decoded), then detectors.
    fn scan_text(&mut self, s: &mut String) {
        if let Some(q) = s.find('?').filter(|_| s.contains("://")) {
            self.scan_url(s, q);
        }
        self.replace_found(s);
    }

    fn scan_url(&mut self, s: &mut String, q: usize) {
        let (base, rest) = s.split_at(q);
        let rest = &rest[1..];
        let (query, fragment) = match rest.find('#') {
            Some(h) => (&rest[..h], Some(&rest[h..])),
            None => (rest, None),
        };
        let mut changed = false;
        let mut out = form_urlencoded::Serializer::new(String::new());
        for (k, v) in form_urlencoded::parse(query.as_bytes()) {
            let mut value = v.into_owned();
            if SECRET_PARAMS.iter().any(|p| k.eq_ignore_ascii_case(p)) && !value.is_empty() {
                value = self.replacement("url_query_secret", &value);
                changed = true;
            } else {
                let before = value.clone();
                self.replace_found(&mut value);
                changed |= value != before;
            }
            out.append_pair(&k, &value);
        }
        if changed {
            let mut new = String::with_capacity(s.len());
            new.push_str(base);
            new.push('?');
            new.push_str(&out.finish());
            if let Some(f) = fragment {
                new.push_str(f);
            }
            *s = new;
        }
    }

    fn replacement(&mut self, detector: &str, matched: &str) -> String {
        let action = self.r.detector_action;
        self.count(detector, action.name());
        match action {
            ActionKind::Hash => format!("[{detector}:{}]", self.r.hash(matched.as_bytes())),
            _ => format!("[REDACTED:{detector}]"),
        }
    }

    fn replace_found(&mut self, s: &mut String) {
        self.found.clear();
        let mut found = std::mem::take(&mut self.found);
        self.r.detectors.find(s, &mut found);
        if !found.is_empty() {
            if self.r.detector_action == ActionKind::Drop {
                for f in &found {
                    self.count(&self.r.detectors.names()[f.detector].clone(), "drop");
                }
                *s = MARKER.to_owned();
            } else {
                let mut out = String::with_capacity(s.len());
                let mut at = 0;
                for f in &found {
                    out.push_str(&s[at..f.start]);
                    let name = self.r.detectors.names()[f.detector].clone();
                    let rep = self.replacement(&name, &s[f.start..f.end]);
                    out.push_str(&rep);
                    at = f.end;
                }
                out.push_str(&s[at..]);
                *s = out;
            }
        }
        self.found = found;
    }
}

fn mask(v: &Value, keep_first: usize, keep_last: usize) -> String {
    let Value::String(s) = v else {
        return MARKER.to_owned();
    };
    let n = s.chars().count();
    if keep_first + keep_last == 0 || n <= (keep_first + keep_last) * 2 {
        return MARKER.to_owned();
    }
    let first: String = s.chars().take(keep_first).collect();
    let last: String = s.chars().skip(n - keep_last).collect();
    format!("{first}{MARKER}{last}")
}

/// Builds the redactors of a configuration: the built-in policies, overridden or extended by
/// `configured` (name → policy).
pub fn build_policies(
    configured: &BTreeMap<String, PolicyConfig>,
) -> Result<BTreeMap<String, Arc<Redactor>>, PolicyError> {
    let mut all: BTreeMap<String, PolicyConfig> = PolicyConfig::builtin()
        .into_iter()
        .map(|(n, p)| (n.to_owned(), p))
        .collect();
    for (n, p) in configured {
        all.insert(n.clone(), p.clone());
    }
    all.into_iter()
        .map(|(n, p)| Redactor::new(&n, &p).map(|r| (n, Arc::new(r))))
        .collect()
}

/// The fuzz target's body, shared with a test that replays the committed corpus so the corpus
/// runs in every test run even where `cargo fuzz` is not installed.
#[doc(hidden)]
pub mod fuzzing {
    use std::sync::OnceLock;

    use serde_json::Value;

    use super::{ActionKind, PolicyConfig, Redactor};

    fn redactors() -> &'static [Redactor] {
        static R: OnceLock<Vec<Redactor>> = OnceLock::new();
        R.get_or_init(|| {
            [ActionKind::Mask, ActionKind::Hash, ActionKind::Drop]
                .into_iter()
                .filter_map(|a| {
                    Redactor::new(
                        "fuzz",
                        &PolicyConfig {
                            detector_action: a,
                            max_depth: 16,
                            max_bytes: 4096,
                            hash_key_env: None,
                            ..PolicyConfig::default()
                        },
                    )
                    .ok()
                })
                .collect()
        })
    }

    fn depth(v: &Value) -> usize {
        match v {
            Value::Object(m) => 1 + m.values().map(depth).max().unwrap_or(0),
            Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
            _ => 0,
        }
    }

    /// Redacts `data` (if it is JSON) under each action; panics if an invariant breaks:
    /// the output is valid JSON, no deeper than the limit allows, and its strings stay within
    /// the byte budget plus markers.
    pub fn check(data: &[u8]) {
        let Ok(text) = std::str::from_utf8(data) else {
            return;
        };
        let Ok(input) = serde_json::from_str::<Value>(text) else {
            return;
        };
        for r in redactors() {
            let mut v = input.clone();
            r.redact_value(&mut v);
            let out = v.to_string();
            assert!(serde_json::from_str::<Value>(&out).is_ok());
            // Root payload plus max_depth levels, plus one level a marker may add.
            assert!(depth(&v) <= 16 + 2, "depth {} over the limit", depth(&v));
        }
    }
}
