//! The JSON-Patch of a state update, computed by whoever first reads it.
//!
//! Diffing two states costs the agent microseconds (allocations for every operation and
//! path), more than the rest of an observed `set_state`. An agent therefore hands the event
//! its previous and new state (two reference counts: it keeps the new one anyway, and would
//! have dropped the old one) and the patch is computed off the agent's thread, once, by the
//! first consumer that serializes or reads it; every other consumer of the same event reuses
//! it. Read back from JSON, a patch is simply the value that was stored.

use std::borrow::Cow;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// A JSON Patch (RFC 6902) from one state to the next, as a JSON array of operations.
///
/// Until it is first read it holds the two states (shared with the agent, not copied), so
/// an event waiting in a queue keeps them alive; once read it holds only the patch. What
/// unread patches keep alive is bounded: past [`PENDING_BUDGET_BYTES`] (all patches of the
/// process together), [`between`](Self::between) diffs at once instead, on the caller's
/// thread, so a backlog of events behind a slow sink holds patches, not whole states.
///
/// ```
/// use std::sync::Arc;
/// use serde_json::json;
/// use sightline_event::StatePatch;
///
/// let before = Arc::new(json!({"n": 1, "by": "a"}));
/// let after = Arc::new(json!({"n": 2, "by": "a"}));
/// let patch = StatePatch::between(before, after, 30); // nothing computed yet
/// assert_eq!(patch.value(), &json!([{"op": "replace", "path": "/n", "value": 2}]));
/// assert_eq!(serde_json::to_string(&patch).unwrap(),
///            r#"[{"op":"replace","path":"/n","value":2}]"#);
/// // A patch read back (or written by hand) is the value itself.
/// assert_eq!(StatePatch::from(json!([])).value(), &json!([]));
/// ```
#[derive(Clone)]
pub struct StatePatch(Arc<Inner>);

/// What unread patches may keep alive, in bytes of serialized state (counted as reported to
/// [`StatePatch::between`]), across the process.
pub const PENDING_BUDGET_BYTES: u64 = 64 << 20;

/// Bytes of state unread patches keep alive now.
static PENDING_BYTES: AtomicU64 = AtomicU64::new(0);

/// Two states waiting to be diffed, and their share of [`PENDING_BYTES`].
struct Pending {
    states: Mutex<Option<(Arc<Value>, Arc<Value>)>>,
    bytes: u64,
}

impl Pending {
    /// The states, once: their bytes leave the pending count.
    fn take(&self) -> Option<(Arc<Value>, Arc<Value>)> {
        let taken = self.states.lock().ok().and_then(|mut s| s.take());
        if taken.is_some() {
            PENDING_BYTES.fetch_sub(self.bytes, Ordering::Relaxed);
        }
        taken
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        // Never read: release the states' share.
        self.take();
    }
}

enum Inner {
    /// Two states, diffed on first read, then released (so an event waiting in a queue holds
    /// the patch, not two whole states).
    Between {
        pending: Pending,
        patch: OnceLock<Value>,
    },
    /// A patch already in JSON form.
    Value(Value),
}

impl StatePatch {
    /// The patch from `from` to `to`, computed when first read. `bytes` is what the two
    /// states take (their serialized sizes, or an estimate); when unread patches already
    /// keep [`PENDING_BUDGET_BYTES`] alive, the patch is computed now instead.
    pub fn between(from: Arc<Value>, to: Arc<Value>, bytes: u64) -> Self {
        let before = PENDING_BYTES.fetch_add(bytes, Ordering::Relaxed);
        if before.saturating_add(bytes) > PENDING_BUDGET_BYTES {
            PENDING_BYTES.fetch_sub(bytes, Ordering::Relaxed);
            return Self::from(diff(&from, &to));
        }
        Self(Arc::new(Inner::Between {
            pending: Pending {
                states: Mutex::new(Some((from, to))),
                bytes,
            },
            patch: OnceLock::new(),
        }))
    }

    /// Bytes of state that unread patches keep alive now, across the process.
    pub fn pending_bytes() -> u64 {
        PENDING_BYTES.load(Ordering::Relaxed)
    }

    /// The patch as a JSON array of operations (computing it on the first call).
    pub fn value(&self) -> &Value {
        match &*self.0 {
            Inner::Value(v) => v,
            // `get_or_init` runs this once, so the states are there to take.
            Inner::Between { pending, patch } => patch.get_or_init(|| {
                pending
                    .take()
                    .map_or(Value::Null, |(from, to)| diff(&from, &to))
            }),
        }
    }
}

fn diff(from: &Value, to: &Value) -> Value {
    serde_json::to_value(json_patch::diff(from, to)).unwrap_or(Value::Null)
}

impl From<Value> for StatePatch {
    fn from(value: Value) -> Self {
        Self(Arc::new(Inner::Value(value)))
    }
}

impl Default for StatePatch {
    fn default() -> Self {
        Self::from(Value::Array(Vec::new()))
    }
}

impl PartialEq for StatePatch {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.value() == other.value()
    }
}

impl fmt::Debug for StatePatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.value(), f)
    }
}

impl Serialize for StatePatch {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.value().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for StatePatch {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Value::deserialize(deserializer).map(Self::from)
    }
}

impl JsonSchema for StatePatch {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        "StatePatch".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        Value::json_schema(generator)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn clones_share_one_computation_and_equal_a_patch_read_back() {
        let to = Arc::new(json!({"b": 2}));
        let p = StatePatch::between(Arc::new(json!({"a": 1})), to.clone(), 14);
        let q = p.clone();
        assert_eq!(Arc::strong_count(&to), 2);
        let first: *const Value = p.value();
        assert!(std::ptr::eq(first, q.value()));
        assert_eq!(
            Arc::strong_count(&to),
            1,
            "the states are released once diffed"
        );
        let back: StatePatch = serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
        assert_eq!(back, p);
        assert_eq!(
            back.value(),
            &json!([{"op": "add", "path": "/b", "value": 2}, {"op": "remove", "path": "/a"}])
        );
    }

    #[test]
    fn past_the_budget_a_patch_is_computed_at_once_and_holds_no_state() {
        let to = Arc::new(json!({"n": 2}));
        let p = StatePatch::between(
            Arc::new(json!({"n": 1})),
            to.clone(),
            PENDING_BUDGET_BYTES + 1,
        );
        assert_eq!(Arc::strong_count(&to), 1, "diffed at once");
        assert_eq!(
            p.value(),
            &json!([{"op": "replace", "path": "/n", "value": 2}])
        );
        // An unread patch holds its states until it is dropped.
        let q = StatePatch::between(Arc::new(json!({})), to.clone(), 1000);
        assert_eq!(Arc::strong_count(&to), 2);
        drop(q);
        assert_eq!(Arc::strong_count(&to), 1);
    }
}
