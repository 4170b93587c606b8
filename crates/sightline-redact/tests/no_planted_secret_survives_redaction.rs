//! Property: a secret of any detector type, planted anywhere in a payload — at a random depth,
//! under a random key, as an object key, in an array, inside a URL's query string
//! (percent-encoded), or inside JSON stringified into a string — never appears in the
//! redacted output, whatever the action.

use proptest::prelude::*;
use serde_json::{json, Map, Value};
use sightline_event::{AgentRef, Event, Sensitive, ToolCall};
use sightline_redact::{Action, ActionKind, PolicyConfig, Redactor};

mod common;
use common::{plant, Place};

// ---- secrets, one strategy per detector ----

fn luhn_complete(prefix: &str, len: usize, body: &[u8]) -> String {
    let mut digits: Vec<u32> = prefix.chars().filter_map(|c| c.to_digit(10)).collect();
    let mut i = 0;
    while digits.len() < len - 1 {
        digits.push(body[i % body.len()] as u32 % 10);
        i += 1;
    }
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| {
            if i % 2 == 0 {
                let x = d * 2;
                if x > 9 {
                    x - 9
                } else {
                    x
                }
            } else {
                *d
            }
        })
        .sum();
    digits.push((10 - sum % 10) % 10);
    digits
        .iter()
        .map(|d| char::from_digit(*d, 10).unwrap())
        .collect()
}

fn iban_de(body: &[u8]) -> String {
    let bban: String = (0..18)
        .map(|i| char::from_digit(body[i % body.len()] as u32 % 10, 10).unwrap())
        .collect();
    // check = 98 - (BBAN + "DE00" as digits) mod 97
    let numeric = format!("{bban}131400");
    let rem = numeric
        .chars()
        .fold(0u64, |r, c| (r * 10 + c.to_digit(10).unwrap() as u64) % 97);
    format!("DE{:02}{bban}", 98 - rem)
}

fn secret() -> impl Strategy<Value = (&'static str, String)> {
    prop_oneof![
        "[a-z]{3,8}\\.[a-z]{2,6}@[a-z]{3,8}\\.(com|org|io)".prop_map(|s| ("email", s)),
        (prop::collection::vec(any::<u8>(), 16), any::<bool>()).prop_map(|(b, spaced)| {
            let n = luhn_complete("4", 16, &b);
            let s = if spaced {
                n.as_bytes()
                    .chunks(4)
                    .map(|c| std::str::from_utf8(c).unwrap())
                    .collect::<Vec<_>>()
                    .join(" ")
            } else {
                n
            };
            ("credit_card", s)
        }),
        (prop::collection::vec(any::<u8>(), 16))
            .prop_map(|b| ("credit_card", luhn_complete("37", 15, &b))),
        (
            "[A-Za-z0-9_-]{8,20}",
            "[A-Za-z0-9_-]{8,30}",
            "[A-Za-z0-9_-]{16,43}"
        )
            .prop_map(|(a, b, c)| ("jwt", format!("eyJ{a}.eyJ{b}.{c}"))),
        "[A-Za-z0-9]{16,32}".prop_map(|t| ("auth_header", format!("Bearer {t}"))),
        "[A-Z0-9]{16}".prop_map(|t| ("aws_access_key_id", format!("AKIA{t}"))),
        "[A-Za-z0-9/+]{37}".prop_map(|t| ("aws_secret_key", format!("aB3{t}"))),
        "[A-Za-z0-9]{24,40}".prop_map(|t| ("openai_key", format!("sk-proj-{t}"))),
        "[A-Za-z0-9]{24,40}".prop_map(|t| ("anthropic_key", format!("sk-ant-api03-{t}"))),
        "[A-Za-z0-9]{36}".prop_map(|t| ("github_token", format!("ghp_{t}"))),
        "[0-9]{10,12}-[A-Za-z0-9]{12,24}".prop_map(|t| ("slack_token", format!("xoxb-{t}"))),
        "[0-9A-Za-z_-]{35}".prop_map(|t| ("google_api_key", format!("AIza{t}"))),
        "[0-9A-Za-z]{24}".prop_map(|t| ("stripe_key", format!("sk_live_{t}"))),
        "[A-Za-z0-9+/]{40,80}".prop_map(|b| (
            "pem_private_key",
            format!("-----BEGIN PRIVATE KEY-----\n{b}\n-----END PRIVATE KEY-----")
        )),
        (1u8..=223, any::<u8>(), any::<u8>(), 1u8..=254)
            .prop_map(|(a, b, c, d)| ("ipv4", format!("{a}.{b}.{c}.{d}"))),
        prop::collection::vec(1u16..=0xffff, 8).prop_map(|g| (
            "ipv6",
            g.iter()
                .map(|x| format!("{x:x}"))
                .collect::<Vec<_>>()
                .join(":")
        )),
        "[1-9][0-9]{9,12}".prop_map(|n| ("phone_e164", format!("+{n}"))),
        (1u16..=665, 1u8..=99, 1u16..=9999)
            .prop_map(|(a, g, s)| ("us_ssn", format!("{a:03}-{g:02}-{s:04}"))),
        prop::collection::vec(any::<u8>(), 18).prop_map(|b| ("iban", iban_de(&b))),
    ]
}

// ---- placement ----

fn place() -> impl Strategy<Value = Place> {
    proptest::sample::select(Place::ALL.to_vec())
}

fn plant_object(secret: &str, place: Place, key: &str) -> Value {
    let (k, v) = plant(secret, place, key);
    json!({ k: v })
}

fn bury(mut v: Value, path: &[String]) -> Value {
    for k in path.iter().rev() {
        let mut m = Map::new();
        m.insert(k.clone(), v);
        m.insert("noise".into(), json!("ordinary text 42"));
        v = Value::Object(m);
    }
    v
}

fn forms(secret: &str) -> Vec<String> {
    let json_escaped = serde_json::to_string(secret).unwrap();
    let json_escaped = json_escaped[1..json_escaped.len() - 1].to_owned();
    let pct: String = form_urlencoded::byte_serialize(secret.as_bytes()).collect();
    // Stringified JSON inside a JSON string escapes twice.
    let twice = serde_json::to_string(&json_escaped).unwrap();
    let twice = twice[1..twice.len() - 1].to_owned();
    vec![secret.to_owned(), json_escaped, pct, twice]
}

fn policy(detector_action: ActionKind) -> PolicyConfig {
    PolicyConfig {
        detector_action,
        hash_key_env: None,
        ..PolicyConfig::default()
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn no_planted_secret_survives_the_detectors(
        (kind, s) in secret(),
        place in place(),
        key in "[a-z]{1,8}",
        path in prop::collection::vec("[a-z]{1,6}", 0..6),
        action in prop_oneof![Just(ActionKind::Mask), Just(ActionKind::Hash), Just(ActionKind::Drop)],
    ) {
        let r = Redactor::new("p", &policy(action)).unwrap();
        let mut v = bury(plant_object(&s, place, &key), &path);
        let summary = r.redact_value(&mut v);
        let out = v.to_string();
        for f in forms(&s) {
            prop_assert!(!out.contains(&f), "{kind} secret {s:?} survived ({place:?}): {out}");
        }
        prop_assert!(summary.total() > 0);
    }

    #[test]
    fn no_planted_secret_reaches_an_event_line_under_any_field_action(
        (_kind, s) in secret(),
        place in place(),
        key in "[a-z]{1,8}",
        path in prop::collection::vec("[a-z]{1,6}", 0..4),
        action in prop_oneof![
            Just(ActionKind::Mask), Just(ActionKind::Hash), Just(ActionKind::Drop),
            Just(ActionKind::Truncate), Just(ActionKind::Scan)
        ],
    ) {
        let cfg = PolicyConfig {
            sensitive_fields: Action { max_chars: 12, ..Action::new(action) },
            hash_key_env: None,
            ..PolicyConfig::default()
        };
        let r = Redactor::new("p", &cfg).unwrap();
        let mut e = Event::new(
            AgentRef::new("Support", "t1"),
            1,
            ToolCall {
                tool_call_id: "c1".into(),
                tool_name: "lookup".into(),
                arguments: Some(Sensitive(bury(plant_object(&s, place, &key), &path))),
                error: Some(format!("failed for {s}").into()),
                ..Default::default()
            },
        );
        r.redact_event(&mut e);
        let line = e.to_json_line();
        for f in forms(&s) {
            prop_assert!(!line.contains(&f), "secret {s:?} survived ({place:?}, {action:?}): {line}");
        }
    }
}
