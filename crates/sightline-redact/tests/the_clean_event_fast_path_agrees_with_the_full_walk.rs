//! The fast path that vouches for clean events from their JSON text must agree with the full
//! walk on every event: same output line, byte for byte. Payloads mix benign values with
//! secrets, escapes, URLs, stringified JSON and deep nesting, in safe and sensitive fields.

use proptest::prelude::*;
use serde_json::{json, Value};
use sightline_event::{AgentRef, Event, Rpc, Sensitive, ToolCall};
use sightline_redact::{Action, ActionKind, Mode, PolicyConfig, Redactor, Rule};

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => "[a-z ]{0,12}".prop_map(Value::from),
        1 => Just(json!("jane.doe@example.com")),
        1 => Just(json!("4111 1111 1111 1111")),
        1 => Just(json!("line one\nline two")),
        1 => Just(json!("https://x.example/cb?token=abc")),
        1 => Just(json!("{\"a\":\"b@c.io\"}")),
        1 => Just(json!("[1,2]")),
        1 => Just(json!(" {not json")),
        1 => Just(json!("sk-proj-abcdefghijklmnopqrstuvwx")),
        2 => any::<i64>().prop_map(Value::from),
        1 => Just(json!(4111111111111111u64)),
        1 => Just(Value::Null),
        1 => any::<bool>().prop_map(Value::from),
    ]
}

fn tree() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(6, 40, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map("[a-z@.]{1,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn key_file() -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("sightline-fastpath-key-{}", std::process::id()));
    std::fs::write(&path, "a-fixed-key-for-both-redactors").unwrap();
    path
}

fn policies() -> Vec<PolicyConfig> {
    let key = Some(key_file());
    let scan_args = Rule {
        name: None,
        path: "payload.arguments".into(),
        action: Action::new(ActionKind::Scan),
    };
    vec![
        PolicyConfig {
            hash_key_env: None,
            hash_key_file: key.clone(),
            ..PolicyConfig::default()
        },
        PolicyConfig {
            rules: vec![scan_args.clone()],
            hash_key_env: None,
            hash_key_file: key.clone(),
            ..PolicyConfig::default()
        },
        PolicyConfig {
            sensitive_fields: Action::new(ActionKind::Scan),
            max_depth: 4,
            max_bytes: 300,
            hash_key_env: None,
            hash_key_file: key.clone(),
            ..PolicyConfig::default()
        },
        PolicyConfig {
            rules: vec![scan_args.clone()],
            detector_action: ActionKind::Hash,
            hash_key_env: None,
            hash_key_file: key.clone(),
            ..PolicyConfig::default()
        },
        // The allow-list policies (the built-in `otlp` and `metrics` are this one).
        PolicyConfig {
            mode: Mode::Allowlist,
            hash_key_env: None,
            hash_key_file: key.clone(),
            ..PolicyConfig::default()
        },
        PolicyConfig {
            mode: Mode::Allowlist,
            rules: vec![scan_args],
            sensitive_fields: Action::new(ActionKind::Keep),
            hash_key_env: None,
            hash_key_file: key.clone(),
            ..PolicyConfig::default()
        },
        // Not eligible for the fast path (allow globs): still agrees, trivially.
        PolicyConfig {
            mode: Mode::Allowlist,
            allow: vec!["payload.arguments.*".into()],
            hash_key_env: None,
            hash_key_file: key.clone(),
            ..PolicyConfig::default()
        },
    ]
}

fn redactors() -> &'static [(Redactor, Redactor)] {
    static R: std::sync::OnceLock<Vec<(Redactor, Redactor)>> = std::sync::OnceLock::new();
    R.get_or_init(|| {
        policies()
            .iter()
            .map(|p| {
                let fast = Redactor::new("p", p).unwrap();
                let mut slow = Redactor::new("p", p).unwrap();
                slow.set_fast_path(false);
                (fast, slow)
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn the_clean_event_fast_path_agrees_with_the_full_walk(
        args in tree(),
        tool in prop_oneof!["[a-z_]{1,10}", Just("jane@example.com".to_owned())],
        name in prop_oneof!["[a-z0-9-]{1,10}", Just("bob@example.org".to_owned())],
        with_args in any::<bool>(),
    ) {
        let events = [
            Event::new(AgentRef::new("A", name.clone()), 1, ToolCall {
                tool_call_id: "c".into(),
                tool_name: tool.as_str().into(),
                arguments: with_args.then(|| Sensitive(args.clone())),
                ..Default::default()
            }),
            Event::new(AgentRef::new("A", name), 2, Rpc {
                method: tool.as_str().into(),
                ..Default::default()
            }),
        ];
        for (i, (fast, slow)) in redactors().iter().enumerate() {
            for e in &events {
                let (mut a, mut b) = (e.clone(), e.clone());
                fast.redact_event(&mut a);
                slow.redact_event(&mut b);
                prop_assert_eq!(a.to_json_line(), b.to_json_line(), "policy {}", i);
            }
        }
    }
}
