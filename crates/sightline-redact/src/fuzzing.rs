//! The fuzz target's body, shared with a test that replays the committed corpus so the corpus
//! runs in every test run even where `cargo fuzz` is not installed. Besides "no panic", it
//! checks what must hold for any JSON under the default detectors: the output keeps the
//! input's shape, stays within the depth limit, and every value no detector flags comes out
//! unchanged.

use std::sync::OnceLock;

use serde_json::Value;

use crate::config::{ActionKind, PolicyConfig};
use crate::detect::Detectors;
use crate::redactor::Redactor;

/// The depth limit of the fuzzed policies.
pub const MAX_DEPTH: usize = 16;

/// The byte budget of the fuzzed policies.
pub const MAX_BYTES: usize = 4096;

/// The default policy with [`MAX_DEPTH`] and [`MAX_BYTES`], once per detector action (mask,
/// hash, drop).
pub fn redactors() -> &'static [Redactor] {
    static R: OnceLock<Vec<Redactor>> = OnceLock::new();
    R.get_or_init(|| {
        [ActionKind::Mask, ActionKind::Hash, ActionKind::Drop]
            .into_iter()
            .filter_map(|a| {
                Redactor::new(
                    "fuzz",
                    &PolicyConfig {
                        detector_action: a,
                        max_depth: MAX_DEPTH,
                        max_bytes: MAX_BYTES,
                        hash_key_env: None,
                        ..PolicyConfig::default()
                    },
                )
                .ok()
            })
            .collect()
    })
}

fn detectors() -> Option<&'static Detectors> {
    static D: OnceLock<Option<Detectors>> = OnceLock::new();
    D.get_or_init(|| Detectors::new(&["*".to_owned()], &[]).ok())
        .as_ref()
}

fn depth(v: &Value) -> usize {
    match v {
        Value::Object(m) => 1 + m.values().map(depth).max().unwrap_or(0),
        Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// Redacts `data` (if it is JSON) under each action; panics if an invariant breaks: the output
/// is no deeper than the limit allows and has the input's shape (see [`assert_same_shape`]).
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
        // Root payload plus max_depth levels, plus one level a marker may add.
        assert!(
            depth(&v) <= MAX_DEPTH + 2,
            "depth {} over the limit",
            depth(&v)
        );
        assert_same_shape(&input, &v);
    }
}

/// Whether the walk would leave this string alone: no detector matches it, it is no URL
/// (query strings are decoded and rewritten) and it does not look like stringified JSON (which
/// is parsed, redacted and written back).
fn benign(s: &str) -> bool {
    let t = s.trim_start();
    detectors().is_some_and(|d| !d.any(s))
        && !s.contains("://")
        && !t.starts_with('{')
        && !t.starts_with('[')
}

fn truncated(v: &Value) -> bool {
    matches!(v, Value::String(s) if s.starts_with("[TRUNCATED") || s.ends_with("[TRUNCATED: too large]"))
}

/// Panics unless `output` (what a policy of [`redactors`] made of `input`) has the input's
/// shape: the same objects with as many keys (a key changes only when a detector flags it or
/// it is a URL), the same arrays with as many items, a scalar where a scalar was (a number a
/// detector flags becomes a string), and every benign string and number unchanged; anything
/// may instead be a truncation marker past the depth limit or once the byte budget is spent.
pub fn assert_same_shape(input: &Value, output: &Value) {
    same_shape(input, output, 0, &mut String::from("payload"));
}

fn same_shape(input: &Value, output: &Value, depth: usize, path: &mut String) {
    if depth > MAX_DEPTH && truncated(output) {
        return;
    }
    match (input, output) {
        (Value::Object(a), Value::Object(b)) => {
            assert_eq!(a.len(), b.len(), "{path}: keys {a:?} became {b:?}");
            for (k, v) in a {
                let len = path.len();
                path.push('.');
                path.push_str(k);
                match b.get(k) {
                    Some(w) => same_shape(v, w, depth + 1, path),
                    None => assert!(!benign(k), "{path}: the benign key {k:?} was renamed"),
                }
                path.truncate(len);
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            assert_eq!(a.len(), b.len(), "{path}: array length changed");
            for (i, (v, w)) in a.iter().zip(b).enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                same_shape(v, w, depth + 1, path);
                path.truncate(len);
            }
        }
        (Value::String(s), Value::String(t)) => {
            assert!(
                !benign(s) || s == t || truncated(output),
                "{path}: benign text {s:?} became {t:?}"
            );
        }
        (Value::Number(n), out) => {
            assert!(
                out == input || (!benign(&n.to_string()) && out.is_string()) || truncated(out),
                "{path}: the number {n} became {out}"
            );
        }
        (Value::Bool(_) | Value::Null, out) => {
            assert!(
                out == input || truncated(out),
                "{path}: {input} became {out}"
            );
        }
        (a, b) => assert!(
            depth > MAX_DEPTH && truncated(b),
            "{path}: {a} became {b}, of another shape"
        ),
    }
}
