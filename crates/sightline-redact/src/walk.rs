//! The full walk: visits every value of a payload (and the agent's name) at its dotted path
//! and applies, in order of precedence, key rules, the allow-list, the sensitive-field default
//! and the value detectors — inside object keys, URL query strings and stringified JSON too —
//! within the depth and size limits, counting what it did for the summary.

use std::collections::BTreeMap;

use serde_json::{Map, Value};
use sightline_event::{Kind, RedactionSummary};
use smol_str::SmolStr;

use crate::config::{Action, ActionKind, Mode};
use crate::detect::Found;
use crate::policy::{Policy, MARKER};

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

/// One walk over one payload: the policy, what the walk did so far, and its byte budget.
pub(crate) struct Walk<'a> {
    r: &'a Policy,
    kind: Option<Kind>,
    counts: BTreeMap<SmolStr, BTreeMap<SmolStr, u32>>,
    truncated: bool,
    bytes: usize,
    found: Vec<Found>,
}

/// What to do with a node after visiting it.
pub(crate) type Keep = bool;

impl<'a> Walk<'a> {
    pub(crate) fn new(r: &'a Policy, kind: Option<Kind>) -> Self {
        Self {
            r,
            kind,
            counts: BTreeMap::new(),
            truncated: false,
            bytes: 0,
            found: Vec::new(),
        }
    }

    pub(crate) fn finish(self) -> RedactionSummary {
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
    pub(crate) fn visit_container_root(&mut self, v: &mut Value, path: &mut Vec<SmolStr>) {
        if !self.visit(v, path, 0, false) {
            *v = Value::Object(Map::new());
        }
    }

    /// Visits a value at `path`; returns false when it must be removed. `allowed` is true once
    /// an ancestor passed the allow-list.
    pub(crate) fn visit(
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
