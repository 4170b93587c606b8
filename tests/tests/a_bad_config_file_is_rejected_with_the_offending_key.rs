//! A config file with an unknown key or a bad value is refused with a message naming the key
//! (and, for syntax-level errors, the line), and a non-zero exit code.

use sightline_tests::{scratch_dir, sightline, workspace_root};

fn check(name: &str, text: &str) -> (bool, String) {
    let dir = scratch_dir(name).unwrap();
    let path = dir.join("sightline.toml");
    std::fs::write(&path, text).unwrap();
    let out = sightline(&["check-config", "--config", path.to_str().unwrap()]).unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_bad_config_file_is_rejected_with_the_offending_key() {
    let (ok, err) = check("unknown-key", "[demo]\nagents = 3\nspeed = 9\n");
    assert!(!ok);
    assert!(err.contains("speed") && err.contains("line 3"), "{err}");

    let (ok, err) = check("bad-kind", "[sinks.tally]\nkinds = \"schedule:explode\"\n");
    assert!(!ok);
    assert!(err.contains("sinks.tally.kinds"), "{err}");

    let (ok, err) = check("bad-overflow", "[sinks.tally]\noverflow = \"sometimes\"\n");
    assert!(!ok);
    assert!(err.contains("overflow"), "{err}");
}

#[test]
fn the_shipped_config_file_is_valid() {
    let path = workspace_root().join("config/sightline.toml");
    let out = sightline(&["check-config", "--config", path.to_str().unwrap()]).unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
