//! The reference runtime depends on the event model and the bus only: no sink crate (and no
//! redaction stage) appears anywhere in its dependency tree, as `cargo tree` prints it.

use std::process::Command;

use sightline_tests::workspace_root;

#[test]
fn the_runtime_depends_on_no_sink() {
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args([
            "tree",
            "--offline",
            "-p",
            "sightline-runtime",
            "-e",
            "normal,build",
        ])
        .args(["--prefix", "none", "--format", "{p}"])
        .current_dir(workspace_root())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8(out.stdout).unwrap();
    let crates: Vec<&str> = tree
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(crates.contains(&"sightline-bus"), "{tree}");
    assert!(crates.contains(&"sightline-event"), "{tree}");
    for forbidden in [
        "sightline-sink",
        "sightline-redact",
        "sightline-archive",
        "sightline-prometheus",
        "sightline-otlp",
    ] {
        assert!(
            !crates.contains(&forbidden),
            "the runtime depends on {forbidden}:\n{tree}"
        );
    }
}
