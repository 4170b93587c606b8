//! An agent's state as of one of its events, rebuilt from the JSON-Patch diffs its
//! `state:update` events carry, and an honest account of what is missing: versions not in the
//! archive, diffs that could not be applied (redacted, or not a patch), a first diff later than
//! version 1 (earlier ones retired), or a sequence number that occurs more than once (a
//! restarted emitter: the latest run is used).

use serde::{Serialize, Serializer};
use serde_json::{json, Value};
use sightline_event::{Event, Payload};

use crate::units::cut;

/// Why no state could be rebuilt.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    /// There are no events to rebuild from.
    #[error("no events to rebuild the state from")]
    NoEvents,
    /// The sequence number is not among the events.
    #[error("seq {seq} is not in the archive for this agent (it holds {first}..{last})")]
    SeqNotFound {
        /// The sequence number asked for.
        seq: u64,
        /// The first event's sequence number.
        first: u64,
        /// The last event's.
        last: u64,
    },
}

/// A diff that could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DiffError(pub String);

/// A diff at `seq` that could not be applied, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnusableDiff {
    /// The event's sequence number.
    pub seq: u64,
    /// Why.
    pub reason: String,
}

/// Versions skipped between consecutive diffs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct VersionGap {
    /// The sequence number of the diff after the gap.
    pub seq: u64,
    /// The version before the gap.
    pub from: u64,
    /// The version after it.
    pub to: u64,
}

/// An agent's state rebuilt from its state diffs.
#[derive(Debug, Clone, PartialEq)]
pub struct Reconstructed {
    /// The sequence number it is the state as of.
    pub seq: u64,
    /// The version of the last state update applied; `None`: there was none.
    pub version: Option<u64>,
    /// Diffs applied.
    pub diffs_applied: u64,
    /// The version of the first state update seen.
    pub first_version: Option<u64>,
    /// Diffs that could not be applied.
    pub unusable: Vec<UnusableDiff>,
    /// Versions skipped between consecutive diffs.
    pub version_gaps: Vec<VersionGap>,
    /// Other events with this sequence number (a restarted emitter): the latest is used.
    pub earlier_occurrences: usize,
    /// The state.
    pub state: Value,
}

impl Reconstructed {
    /// Whether the state is complete: every version from 1 on applied.
    pub fn complete(&self) -> bool {
        self.version.is_some()
            && self.unusable.is_empty()
            && self.version_gaps.is_empty()
            && self.first_version.is_none_or(|v| v <= 1)
    }

    /// The JSON form: `seq`, `version`, `diffs_applied`, `complete`, `version_gaps`,
    /// `unusable_diffs`, `state`.
    pub fn to_json(&self) -> Value {
        json!({
            "seq": self.seq,
            "version": self.version,
            "diffs_applied": self.diffs_applied,
            "complete": self.complete(),
            "version_gaps": self.version_gaps,
            "unusable_diffs": self.unusable,
            "state": self.state,
        })
    }
}

impl Serialize for Reconstructed {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

/// Applies the state diffs of `events` (one agent's, in archive order) up to and including
/// sequence number `at`.
pub fn reconstruct(events: &[Event], at: u64) -> Result<Reconstructed, StateError> {
    let (Some(first), Some(last)) = (events.first(), events.last()) else {
        return Err(StateError::NoEvents);
    };
    // After a restart a sequence number can recur: take the latest, and only the diffs of
    // that run (from the restart before it).
    let Some(stop) = events.iter().rposition(|e| e.seq == at) else {
        return Err(StateError::SeqNotFound {
            seq: at,
            first: first.seq,
            last: last.seq,
        });
    };
    let run_start = events[..=stop]
        .windows(2)
        .rposition(|w| w[1].seq <= w[0].seq)
        .map_or(0, |i| i + 1);
    let mut r = Reconstructed {
        seq: at,
        version: None,
        diffs_applied: 0,
        first_version: None,
        unusable: Vec::new(),
        version_gaps: Vec::new(),
        earlier_occurrences: events[..stop].iter().filter(|e| e.seq == at).count(),
        state: json!({}),
    };
    for e in &events[run_start..=stop] {
        let Payload::StateUpdate(u) = &e.payload else {
            continue;
        };
        r.first_version.get_or_insert(u.version);
        if let Some(prev) = r.version {
            if u.version > prev.saturating_add(1) {
                r.version_gaps.push(VersionGap {
                    seq: e.seq,
                    from: prev,
                    to: u.version,
                });
            }
        }
        r.version = Some(u.version);
        let Some(diff) = &u.diff else {
            r.unusable.push(UnusableDiff {
                seq: e.seq,
                reason: "no diff recorded".into(),
            });
            continue;
        };
        match apply_diff(&mut r.state, diff.0.value()) {
            Ok(()) => r.diffs_applied += 1,
            Err(why) => r.unusable.push(UnusableDiff {
                seq: e.seq,
                reason: why.to_string(),
            }),
        }
    }
    Ok(r)
}

/// Applies a JSON Patch leniently: `add`/`replace` create missing parent objects, and a
/// `replace` of a missing member adds it (a diff recorded against state we do not have).
pub fn apply_diff(state: &mut Value, diff: &Value) -> Result<(), DiffError> {
    let Some(ops) = diff.as_array() else {
        return Err(DiffError(format!(
            "not a JSON Patch (redacted?): {}",
            cut(&diff.to_string(), 40)
        )));
    };
    for op in ops {
        let mut op = op.clone();
        let kind = op
            .get("op")
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_owned();
        let path = op
            .get("path")
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_owned();
        if kind == "add" || kind == "replace" {
            ensure_parents(state, &path);
            if kind == "replace" && state.pointer(&path).is_none() {
                op["op"] = json!("add");
            }
        }
        let patch: json_patch::Patch =
            serde_json::from_value(Value::Array(vec![op])).map_err(|e| DiffError(e.to_string()))?;
        json_patch::patch(state, &patch).map_err(|e| DiffError(e.to_string()))?;
    }
    Ok(())
}

fn ensure_parents(state: &mut Value, path: &str) {
    let tokens: Vec<String> = path
        .split('/')
        .skip(1)
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect();
    let mut cur = state;
    for t in tokens.iter().take(tokens.len().saturating_sub(1)) {
        if !cur.is_object() && !cur.is_array() {
            *cur = json!({});
        }
        cur = match cur {
            Value::Object(map) => map.entry(t.clone()).or_insert_with(|| json!({})),
            Value::Array(items) => match t.parse::<usize>().ok().filter(|i| *i < items.len()) {
                Some(i) => &mut items[i],
                None => return,
            },
            _ => return,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sightline_event::{AgentRef, Sensitive, StateUpdate};

    fn update(seq: u64, version: u64, ops: Value) -> Event {
        Event::new(
            AgentRef::new("A", "a"),
            seq,
            StateUpdate {
                version,
                diff: Some(Sensitive(ops.into())),
                ..Default::default()
            },
        )
    }

    #[test]
    fn state_is_rebuilt_from_diffs_and_a_missing_version_makes_it_incomplete() {
        let events = vec![
            update(1, 1, json!([{"op": "add", "path": "/a/b", "value": 1}])),
            update(2, 2, json!([{"op": "replace", "path": "/c", "value": "x"}])),
            update(3, 4, json!([{"op": "remove", "path": "/c"}])),
        ];
        let r = reconstruct(&events, 2).unwrap();
        assert!(r.complete());
        assert_eq!(r.state, json!({"a": {"b": 1}, "c": "x"}));
        let r = reconstruct(&events, 3).unwrap();
        assert!(!r.complete());
        assert_eq!(
            r.version_gaps,
            vec![VersionGap {
                seq: 3,
                from: 2,
                to: 4
            }]
        );
        assert_eq!(r.state, json!({"a": {"b": 1}}));
        assert_eq!(
            r.to_json()["version_gaps"],
            json!([{"seq": 3, "from": 2, "to": 4}])
        );
        assert_eq!(
            reconstruct(&events, 9),
            Err(StateError::SeqNotFound {
                seq: 9,
                first: 1,
                last: 3
            })
        );
        assert_eq!(reconstruct(&[], 1), Err(StateError::NoEvents));
    }

    #[test]
    fn after_a_restart_the_latest_run_is_used() {
        let events = vec![
            update(1, 1, json!([{"op": "add", "path": "/run", "value": 1}])),
            update(2, 2, json!([{"op": "add", "path": "/old", "value": true}])),
            update(1, 1, json!([{"op": "add", "path": "/run", "value": 2}])),
        ];
        let r = reconstruct(&events, 1).unwrap();
        assert_eq!(r.earlier_occurrences, 1);
        assert_eq!(r.state, json!({"run": 2}));
    }

    #[test]
    fn a_diff_that_is_no_patch_is_reported_not_applied() {
        let events = vec![
            update(1, 1, json!([{"op": "add", "path": "/a", "value": 1}])),
            update(2, 2, json!("hmac:0123")),
        ];
        let r = reconstruct(&events, 2).unwrap();
        assert!(!r.complete());
        assert_eq!(r.diffs_applied, 1);
        assert_eq!(r.unusable.len(), 1);
        assert_eq!(r.unusable[0].seq, 2);
        assert!(
            r.unusable[0].reason.starts_with("not a JSON Patch"),
            "{}",
            r.unusable[0].reason
        );
        assert_eq!(r.state, json!({"a": 1}));
    }
}
