//! One redaction policy applied to batches, with the counts it reports. Either a redaction
//! stage's thread runs it (once per event for every sink of the policy) or, when the policy
//! has a single sink, that sink's worker does: both go through [`Redaction::apply`], so the
//! counting is the same wherever the policy runs.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use sightline_event::Event;
use sightline_redact::Redactor;
use smol_str::SmolStr;

use crate::stats::SinkStats;

#[derive(Default)]
struct Counters {
    events_redacted: AtomicU64,
    redactions: Mutex<BTreeMap<(SmolStr, SmolStr), u64>>,
}

/// A policy and its counters; clones share both.
#[derive(Clone)]
pub(crate) struct Redaction {
    redactor: Arc<Redactor>,
    counters: Arc<Counters>,
}

impl Redaction {
    /// Starts counting for `redactor`.
    pub(crate) fn new(redactor: Arc<Redactor>) -> Self {
        Self {
            redactor,
            counters: Arc::default(),
        }
    }

    /// The policy's name.
    pub(crate) fn policy(&self) -> SmolStr {
        SmolStr::new(self.redactor.name())
    }

    /// Redacts each event of `batch` in place, and counts what was redacted.
    pub(crate) fn apply(&self, batch: &mut [Event]) {
        let mut redacted = 0u64;
        let mut counts: BTreeMap<(SmolStr, SmolStr), u64> = BTreeMap::new();
        for e in batch.iter_mut() {
            self.redactor.redact_event(e);
            if let Some(summary) = &e.redaction {
                redacted += 1;
                for (rule, actions) in &summary.counts {
                    for (action, n) in actions {
                        *counts.entry((rule.clone(), action.clone())).or_default() += *n as u64;
                    }
                }
            }
        }
        if redacted > 0 {
            self.counters
                .events_redacted
                .fetch_add(redacted, Ordering::Relaxed);
            if let Ok(mut m) = self.counters.redactions.lock() {
                for (k, n) in counts {
                    *m.entry(k).or_default() += n;
                }
            }
        }
    }

    /// Writes the policy's name and counts into a sink's stats.
    pub(crate) fn fill(&self, s: &mut SinkStats) {
        s.policy = self.policy();
        s.events_redacted = self.counters.events_redacted.load(Ordering::Relaxed);
        s.redactions = self
            .counters
            .redactions
            .lock()
            .map(|m| {
                m.iter()
                    .map(|((r, a), n)| (r.clone(), a.clone(), *n))
                    .collect()
            })
            .unwrap_or_default();
    }
}
