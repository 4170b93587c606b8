//! `sightline demo` with no config file drives a fleet covering every event family through the
//! runner into the sinks, prints a summary, and (at a rate the sinks keep up with) loses
//! nothing: every emitted event is counted and archived, no drops, no sequence gaps, and the
//! archive it leaves verifies clean.

use sightline_event::Family;
use sightline_tests::{scratch_dir, sightline};

#[test]
fn the_demo_runs_on_embedded_defaults_and_loses_nothing() {
    let dir = scratch_dir("demo").unwrap();
    let data_dir = dir.to_str().unwrap();
    let out = sightline(&[
        "demo",
        "--duration",
        "3",
        "--agents",
        "120",
        "--rate",
        "4000",
        "--data-dir",
        data_dir,
        // Any free port: the default 9464 may be taken on a shared machine.
        "--metrics-addr",
        "127.0.0.1:0",
    ])
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "demo failed:\n{stdout}\n{stderr}");
    assert!(stderr.contains("ev/s"), "no progress line:\n{stderr}");
    for needle in [
        "Events by family",
        "Top failing schedules",
        "Sinks",
        "Loss:",
        "Archive:",
        " session ",
    ] {
        assert!(
            stdout.contains(needle),
            "summary lacks {needle:?}:\n{stdout}"
        );
    }

    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("demo-summary.json")).unwrap())
            .unwrap();
    let emitted = summary["events_emitted"].as_u64().unwrap();
    assert!(emitted > 1_000, "only {emitted} events");
    assert_eq!(
        summary["events_counted"].as_u64(),
        Some(emitted),
        "{summary:#}"
    );
    assert_eq!(summary["seq_gaps"], 0);
    assert_eq!(
        summary["archive"]["stats"]["events_written"].as_u64(),
        Some(emitted),
        "{summary:#}"
    );
    let verify = sightline(&["verify", "--data-dir", data_dir]).unwrap();
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
    assert_eq!(summary["undelivered"], 0);
    for sink in summary["sinks"].as_array().unwrap() {
        assert_eq!(sink["failed"], 0, "{sink}");
        assert!(
            sink["dropped"]
                .as_object()
                .unwrap()
                .values()
                .all(|v| v == 0),
            "{sink}"
        );
    }
    for family in Family::ALL {
        let n = summary["by_family"][family.name()].as_u64().unwrap_or(0);
        assert!(n > 0, "family {} never appeared", family.name());
    }
    // Failures are part of the mix.
    for kind in [
        "schedule:error",
        "mcp:client:connect",
        "fiber:recovery:detected",
        "rpc:error",
    ] {
        assert!(
            summary["by_kind"][kind].as_u64().unwrap_or(0) > 0,
            "no {kind}"
        );
    }
    assert!(summary["errors"].as_u64().unwrap() > 0);
}
