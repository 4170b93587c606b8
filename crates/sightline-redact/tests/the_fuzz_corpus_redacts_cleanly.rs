//! Replays the committed fuzz corpus (`fuzz/corpus/redact_json`) so every test run covers it
//! even without `cargo fuzz`: each input goes through the fuzz target's body (output within the
//! depth limit, of the input's shape, benign values unchanged), and then, under every detector
//! action, known secrets are planted into it — as a value, inside text, as a key, in an array,
//! in a URL's query string and in stringified JSON, at the top and at the deepest container —
//! and none may survive, while a benign note planted beside each comes out as written.

use serde_json::{json, Value};
use sightline_redact::fuzzing::{self, assert_same_shape, redactors};

mod common;
use common::{plant, Place};

/// One secret per detector family, and the parts of it that must not appear in any output.
const SECRETS: &[(&str, &str, &[&str])] = &[
    (
        "email",
        "planted.secret@example.org",
        &["planted.secret@example.org", "planted.secret%40example.org"],
    ),
    (
        "credit_card",
        "4012 8888 8888 1881",
        &["4012 8888 8888 1881", "4012+8888+8888+1881", "8888 1881"],
    ),
    (
        "aws_access_key_id",
        "AKIAQWERTYUIOPASDFGH",
        &["AKIAQWERTYUIOPASDFGH", "QWERTYUIOPASDFGH"],
    ),
    (
        "jwt",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJwbGFudGVkIn0.c2lnbmF0dXJlLXBsYW50ZWQ",
        &["eyJzdWIiOiJwbGFudGVkIn0", "c2lnbmF0dXJlLXBsYW50ZWQ"],
    ),
    (
        "auth_header",
        "Bearer pl4ntedT0kenValue9876",
        &["pl4ntedT0kenValue9876"],
    ),
    (
        "github_token",
        "ghp_pl4ntedGithubTokenValue0123456789AB",
        &["pl4ntedGithubTokenValue0123456789AB"],
    ),
    ("us_ssn", "219-09-9999", &["219-09-9999"]),
    (
        "iban",
        "GB82WEST12345698765432",
        &["GB82WEST12345698765432", "WEST12345698765432"],
    ),
    (
        "pem_private_key",
        "-----BEGIN PRIVATE KEY-----\nMIIEpl4ntedKeyMaterial\n-----END PRIVATE KEY-----",
        &["MIIEpl4ntedKeyMaterial"],
    ),
];

const NOTE: &str = "the note planted beside the secret stays as written";

/// The entries planted: the secret in its place, and a benign note beside it.
fn planted(secret: &str, place: Place) -> Vec<(String, Value)> {
    vec![
        plant(secret, place, "planted"),
        ("planted_note".to_owned(), json!(NOTE)),
    ]
}

/// Adds the entries to a container (an object gets them as keys, an array as one more
/// object); a scalar becomes an array of itself and them.
fn add(target: &mut Value, entries: Vec<(String, Value)>) {
    match target {
        Value::Object(m) => m.extend(entries),
        Value::Array(a) => a.push(Value::Object(entries.into_iter().collect())),
        scalar => *scalar = json!([scalar.take(), Value::Object(entries.into_iter().collect())]),
    }
}

/// The deepest container at most `limit` levels down (the root if there is none).
fn deepest(v: &mut Value, limit: usize) -> &mut Value {
    fn depth_of(v: &Value, limit: usize) -> usize {
        let children: Box<dyn Iterator<Item = &Value>> = match v {
            Value::Object(m) => Box::new(m.values()),
            Value::Array(a) => Box::new(a.iter()),
            _ => return 0,
        };
        if limit == 0 {
            return 1;
        }
        1 + children
            .filter(|c| c.is_object() || c.is_array())
            .map(|c| depth_of(c, limit - 1))
            .max()
            .unwrap_or(0)
    }
    let best = match &*v {
        Value::Object(m) if limit > 0 => m
            .iter()
            .filter(|(_, c)| c.is_object() || c.is_array())
            .max_by_key(|(_, c)| depth_of(c, limit - 1))
            .map(|(k, _)| Child::Key(k.clone())),
        Value::Array(a) if limit > 0 => a
            .iter()
            .enumerate()
            .filter(|(_, c)| c.is_object() || c.is_array())
            .max_by_key(|(_, c)| depth_of(c, limit - 1))
            .map(|(i, _)| Child::Index(i)),
        _ => None,
    };
    match best {
        Some(Child::Key(k)) => deepest(&mut v[k.as_str()], limit - 1),
        Some(Child::Index(i)) => deepest(&mut v[i], limit - 1),
        None => v,
    }
}

enum Child {
    Key(String),
    Index(usize),
}

fn corpus() -> Vec<(String, Value)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/corpus/redact_json");
    let mut inputs = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        // The fuzz target's own checks, on the input as committed.
        fuzzing::check(&data);
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let value = serde_json::from_slice(&data)
            .unwrap_or_else(|e| panic!("{name} is not JSON, so it exercises nothing: {e}"));
        inputs.push((name, value));
    }
    inputs.sort_by(|a, b| a.0.cmp(&b.0));
    inputs
}

#[test]
fn the_fuzz_corpus_redacts_cleanly() {
    let inputs = corpus();
    assert!(inputs.len() >= 5, "corpus has only {} inputs", inputs.len());
    let mut checked = 0;
    for (name, original) in &inputs {
        for (detector, secret, needles) in SECRETS {
            for place in Place::ALL {
                // At the top, and as deep as the depth limit leaves room for the planted nesting.
                for limit in [0, fuzzing::MAX_DEPTH - 4] {
                    let mut input = original.clone();
                    add(deepest(&mut input, limit), planted(secret, place));
                    for r in redactors() {
                        let mut output = input.clone();
                        let summary = r.redact_value(&mut output);
                        let text = output.to_string();
                        let what = format!("{name}, {detector} {place:?} at depth<={limit}");
                        for needle in *needles {
                            assert!(
                                !text.contains(needle),
                                "{what}: {needle:?} survived {r:?}: {text}"
                            );
                        }
                        assert!(summary.total() > 0, "{what}: nothing counted");
                        assert!(
                            text.contains(NOTE),
                            "{what}: the benign note is gone: {text}"
                        );
                        assert_same_shape(&input, &output);
                        checked += 1;
                    }
                }
            }
        }
    }
    assert_eq!(
        checked,
        inputs.len() * SECRETS.len() * Place::ALL.len() * 2 * 3
    );
}
