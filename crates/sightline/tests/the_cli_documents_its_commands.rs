//! `sightline --help` lists the commands and the global flags with their environment variables.

use std::process::Command;

#[test]
fn the_cli_documents_its_commands() {
    let out = Command::new(env!("CARGO_BIN_EXE_sightline"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "demo",
        "schema",
        "check-config",
        "--config",
        "SIGHTLINE_CONFIG",
        "--data-dir",
        "SIGHTLINE_DATA_DIR",
    ] {
        assert!(help.contains(needle), "help lacks {needle}:\n{help}");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_sightline"))
        .args(["demo", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    for needle in ["--duration", "--agents", "--rate"] {
        assert!(help.contains(needle), "demo help lacks {needle}:\n{help}");
    }
}
