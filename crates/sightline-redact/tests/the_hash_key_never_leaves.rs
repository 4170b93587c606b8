//! The HMAC key is read from a file (or an environment variable), used, and never shown: not
//! in any redacted output, not in `Debug` of the policy or the redactor. Equal values hash
//! equal under one key, so sessions stay correlatable; another key gives other hashes.

use sightline_event::{AgentRef, Event, RpcError};
use sightline_redact::{Action, ActionKind, KeySource, PolicyConfig, Redactor};

const KEY: &str = "K3y-that-must-never-leak-0123456789";

fn policy(key_file: &std::path::Path) -> PolicyConfig {
    PolicyConfig {
        sensitive_fields: Action::new(ActionKind::Hash),
        detector_action: ActionKind::Hash,
        hash_key_env: None,
        hash_key_file: Some(key_file.to_owned()),
        require_hash_key: true,
        ..PolicyConfig::default()
    }
}

fn event(text: &str) -> Event {
    Event::new(
        AgentRef::new("Support", "jane@example.com"),
        1,
        RpcError {
            method: "refund".into(),
            error: text.into(),
            ..Default::default()
        },
    )
}

#[test]
fn the_hash_key_never_leaves() {
    let dir = std::env::temp_dir().join(format!("sightline-key-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key_file = dir.join("key");
    std::fs::write(&key_file, format!("{KEY}\n")).unwrap();

    let cfg = policy(&key_file);
    let r = Redactor::new("archive", &cfg).unwrap();
    assert_eq!(r.key_source(), &KeySource::File(key_file.clone()));
    assert!(!format!("{cfg:?}").contains(KEY));
    assert!(!format!("{r:?}").contains(KEY));

    let mut a = event("declined for bob@example.com");
    let mut b = event("declined for bob@example.com");
    r.redact_event(&mut a);
    r.redact_event(&mut b);
    let (la, lb) = (a.to_json_line(), b.to_json_line());
    for line in [&la, &lb] {
        assert!(!line.contains(KEY), "{line}");
        assert!(
            !line.contains("bob@example.com") && !line.contains("jane@example.com"),
            "{line}"
        );
        assert!(line.contains("hmac:"), "{line}");
    }
    assert_eq!(
        a.payload.to_json(),
        b.payload.to_json(),
        "equal values must hash equal"
    );
    assert_eq!(a.agent.name, b.agent.name);

    // Another key: other hashes.
    let other_file = dir.join("other");
    std::fs::write(&other_file, "another-key-of-enough-length-42").unwrap();
    let r2 = Redactor::new("archive", &policy(&other_file)).unwrap();
    let mut c = event("declined for bob@example.com");
    r2.redact_event(&mut c);
    assert_ne!(a.payload.to_json(), c.payload.to_json());

    // A required key that is missing is an error naming the key setting.
    let missing = PolicyConfig {
        hash_key_file: None,
        ..policy(&key_file)
    };
    let err = Redactor::new("archive", &missing).unwrap_err();
    assert_eq!(err.key, "hash_key_env");
    let _ = std::fs::remove_dir_all(&dir);
}
