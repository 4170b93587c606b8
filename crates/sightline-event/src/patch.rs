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
use std::sync::{Arc, Mutex, OnceLock};

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// A JSON Patch (RFC 6902) from one state to the next, as a JSON array of operations.
///
/// Until it is first read it holds the two states (shared with the agent, not copied), so
/// an event waiting in a bus queue keeps them alive; once read it holds only the patch.
///
/// ```
/// use std::sync::Arc;
/// use serde_json::json;
/// use sightline_event::StatePatch;
///
/// let before = Arc::new(json!({"n": 1, "by": "a"}));
/// let after = Arc::new(json!({"n": 2, "by": "a"}));
/// let patch = StatePatch::between(before, after); // nothing computed yet
/// assert_eq!(patch.value(), &json!([{"op": "replace", "path": "/n", "value": 2}]));
/// assert_eq!(serde_json::to_string(&patch).unwrap(),
///            r#"[{"op":"replace","path":"/n","value":2}]"#);
/// // A patch read back (or written by hand) is the value itself.
/// assert_eq!(StatePatch::from(json!([])).value(), &json!([]));
/// ```
#[derive(Clone)]
pub struct StatePatch(Arc<Inner>);

enum Inner {
    /// Two states, diffed on first read, then released (so an event waiting in a queue holds
    /// the patch, not two whole states).
    Between {
        states: Mutex<Option<(Arc<Value>, Arc<Value>)>>,
        patch: OnceLock<Value>,
    },
    /// A patch already in JSON form.
    Value(Value),
}

impl StatePatch {
    /// The patch from `from` to `to`, computed when first read.
    pub fn between(from: Arc<Value>, to: Arc<Value>) -> Self {
        Self(Arc::new(Inner::Between {
            states: Mutex::new(Some((from, to))),
            patch: OnceLock::new(),
        }))
    }

    /// The patch as a JSON array of operations (computing it on the first call).
    pub fn value(&self) -> &Value {
        match &*self.0 {
            Inner::Value(v) => v,
            // `get_or_init` runs this once, so the states are there to take.
            Inner::Between { states, patch } => patch.get_or_init(|| {
                let taken = states.lock().ok().and_then(|mut s| s.take());
                taken
                    .and_then(|(from, to)| serde_json::to_value(json_patch::diff(&from, &to)).ok())
                    .unwrap_or(Value::Null)
            }),
        }
    }
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
        let p = StatePatch::between(Arc::new(json!({"a": 1})), to.clone());
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
}
