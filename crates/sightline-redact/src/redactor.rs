//! The [`Redactor`]: the handle sinks share. It applies its compiled policy to events (the
//! fast path first, the full walk when in doubt), turns a changed payload into a raw one with
//! a [`RedactionSummary`], and keeps the running totals metrics read.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value};
use sightline_event::{Event, Payload, RawPayload, RedactionSummary};
use smol_str::SmolStr;

use crate::config::{Mode, PolicyConfig};
use crate::error::PolicyError;
use crate::key::KeySource;
use crate::policy::{Policy, MARKER};
use crate::walk::Walk;

/// A compiled policy. Cheap to share (`Arc`) between the sinks that use it.
pub struct Redactor {
    policy: Policy,
    counts: Mutex<HashMap<(SmolStr, &'static str), u64>>,
    events_seen: AtomicU64,
    events_redacted: AtomicU64,
    events_truncated: AtomicU64,
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = &self.policy;
        f.debug_struct("Redactor")
            .field("name", &p.name)
            .field("mode", &p.mode)
            .field("rules", &p.rules.len())
            .field("detectors", &p.detectors.names())
            .field("key", &p.key)
            .field("key_source", &p.key_source)
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

impl Redactor {
    /// Compiles a policy; reads its HMAC key if it hashes anything.
    pub fn new(name: &str, cfg: &PolicyConfig) -> Result<Self, PolicyError> {
        Ok(Self {
            policy: Policy::compile(name, cfg)?,
            counts: Mutex::new(HashMap::new()),
            events_seen: AtomicU64::new(0),
            events_redacted: AtomicU64::new(0),
            events_truncated: AtomicU64::new(0),
        })
    }

    /// The policy's name.
    pub fn name(&self) -> &str {
        &self.policy.name
    }

    /// Where the HMAC key came from.
    pub fn key_source(&self) -> &KeySource {
        &self.policy.key_source
    }

    /// Turns the clean-event fast path on or off (it is on wherever the policy allows it);
    /// for tests that compare both paths.
    #[doc(hidden)]
    pub fn set_fast_path(&mut self, on: bool) {
        self.policy.fast_path = on && self.policy.fast_path;
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
        if self.policy.mode == Mode::Passthrough {
            return;
        }
        thread_local! {
            static BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        let clean = BUF.with(|b| {
            b.try_borrow_mut()
                .is_ok_and(|mut buf| self.policy.is_clean(event, &mut buf))
        });
        if clean {
            return;
        }
        let kind = event.kind();
        let mut payload = event.payload.to_json();
        let mut w = Walk::new(&self.policy, Some(kind));
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
        if self.policy.mode == Mode::Passthrough {
            return RedactionSummary {
                policy: self.policy.name.clone(),
                ..RedactionSummary::default()
            };
        }
        let mut w = Walk::new(&self.policy, None);
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
