//! `config/event.schema.json` is what `sightline schema` prints. When the event model changes,
//! this fails until the file is regenerated:
//! `cargo run -p sightline -- schema > config/event.schema.json`.

use sightline_tests::{sightline, workspace_root};

#[test]
fn the_committed_event_schema_is_current() {
    let out = sightline(&["schema"]).unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8(out.stdout).unwrap();
    let committed = std::fs::read_to_string(workspace_root().join("config/event.schema.json"))
        .expect("config/event.schema.json is missing");
    assert!(
        printed == committed,
        "config/event.schema.json is stale: run `cargo run -p sightline -- schema > config/event.schema.json`"
    );
    // It is a JSON Schema that knows every kind and marks sensitive fields.
    let schema: serde_json::Value = serde_json::from_str(&committed).unwrap();
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    for kind in sightline_event::Kind::ALL {
        assert!(
            committed.contains(&format!("\"{}\"", kind.name())),
            "{} missing",
            kind.name()
        );
    }
    assert!(committed.contains("\"x-sensitive\": true"));
}
