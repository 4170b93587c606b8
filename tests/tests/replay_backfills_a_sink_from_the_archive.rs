//! `sightline replay --to <sink>` re-sends archived events through one configured sink — here
//! a second archive standing in for a backend that was down — with the filters selecting
//! what to backfill, losing nothing (the replayed sink waits for room instead of dropping).

use sightline_tests::{demo_run, scratch_dir, sightline};

#[test]
fn replay_backfills_a_sink_from_the_archive() {
    let dir = scratch_dir("replay").unwrap();
    let data_dir = dir.to_str().unwrap();
    demo_run(
        &dir,
        &[],
        &["--duration", "2", "--agents", "40", "--rate", "5000"],
    )
    .unwrap();
    let stats = |args: &[&str]| -> serde_json::Value {
        let mut all = vec!["stats", "--format", "json", "--data-dir", data_dir];
        all.extend_from_slice(args);
        let out = sightline(&all).unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let schedule_events = stats(&["--kind", "schedule"])["events"].as_u64().unwrap();
    assert!(schedule_events > 0);

    // The target: an archive elsewhere, named by a config file.
    let backfill = dir.join("backfill");
    let config = dir.join("replay.toml");
    std::fs::write(
        &config,
        format!("[archive]\ndir = {:?}\n", backfill.to_str().unwrap()),
    )
    .unwrap();
    let source = dir.join("archive");
    let out = sightline(&[
        "replay",
        "--to",
        "archive",
        "--kind",
        "schedule",
        "--archive",
        source.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
        "--data-dir",
        data_dir,
    ])
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("dropped 0  failed 0  undelivered 0"),
        "{stderr}"
    );

    let out = sightline(&[
        "stats",
        "--format",
        "json",
        "--archive",
        backfill.to_str().unwrap(),
    ])
    .unwrap();
    let replayed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(replayed["events"].as_u64(), Some(schedule_events));
    assert_eq!(replayed["by_family"].as_object().unwrap().len(), 1);

    // Replaying an archive into itself is refused.
    let out = sightline(&["replay", "--to", "archive", "--data-dir", data_dir]).unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("into itself"));
}
