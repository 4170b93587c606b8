//! `sightline demo` at a rate its archive cannot keep up with (the archive sink's queue cut to
//! 8 events, an fsync after every batch): nothing is lost uncounted. For every sink that takes
//! every event, what it received plus what it dropped is what the fleet emitted; the archive
//! sink did drop; and the drops are visible in the archive itself, as per-agent sequence gaps
//! that `sightline stats` and `sightline verify` report (never more events than were dropped).

use sightline_tests::{demo_run, scratch_dir, sightline, workspace_root};

/// The committed config, with the archive sink's queue and batches cut to 8 events and the
/// archive syncing every batch.
fn overload_config() -> String {
    let text = std::fs::read_to_string(workspace_root().join("config/sightline.toml")).unwrap();
    let (head, rest) = text.split_once("[sinks.archive]\n").unwrap();
    let (section, tail) = rest.split_once("\n\n").unwrap();
    let section = section
        .replace("queue_capacity = 65536", "queue_capacity = 8")
        .replace("batch_max_events = 4096", "batch_max_events = 8");
    assert!(
        section.contains("queue_capacity = 8\n") && section.contains("overflow = \"drop_newest\"")
    );
    let tail = tail.replace("fsync = \"interval\"", "fsync = \"always\"");
    assert!(tail.contains("fsync = \"always\""));
    format!("{head}[sinks.archive]\n{section}\n\n{tail}")
}

#[test]
fn an_overloaded_demo_counts_every_drop_and_the_archive_shows_them_as_gaps() {
    let dir = scratch_dir("demo-overload").unwrap();
    let data_dir = dir.to_str().unwrap();
    let config = dir.join("overload.toml");
    std::fs::write(&config, overload_config()).unwrap();
    let summary = demo_run(
        &dir,
        &["--config", config.to_str().unwrap()],
        &["--duration", "3", "--agents", "60", "--rate", "20000"],
    )
    .unwrap()
    .summary;
    let emitted = summary["events_emitted"].as_u64().unwrap();
    assert!(emitted > 1_000, "only {emitted} events");
    assert_eq!(summary["undelivered"], 0, "{summary:#}");

    // received + dropped = emitted, per sink that takes every event.
    let sinks = summary["sinks"].as_array().unwrap();
    let dropped = |s: &serde_json::Value| -> u64 {
        s["dropped"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_u64().unwrap())
            .sum()
    };
    let mut checked = Vec::new();
    for s in sinks {
        let name = s["name"].as_str().unwrap();
        if !["tally", "archive", "prometheus"].contains(&name) {
            continue;
        }
        assert_eq!(
            s["received"].as_u64().unwrap() + dropped(s),
            emitted,
            "{name}: received + dropped != emitted: {s}"
        );
        assert_eq!(s["failed"], 0, "{s}");
        checked.push(name);
    }
    checked.sort_unstable();
    assert_eq!(checked, ["archive", "prometheus", "tally"]);
    let archive = sinks.iter().find(|s| s["name"] == "archive").unwrap();
    let archive_dropped = dropped(archive);
    assert!(archive_dropped > 0, "the archive kept up: {archive}");
    let written = archive["written"].as_u64().unwrap();
    assert_eq!(written + archive_dropped, emitted, "{archive}");
    assert_eq!(
        summary["archive"]["stats"]["events_written"].as_u64(),
        Some(written)
    );

    // The drops show in the archive as sequence gaps: `stats`...
    let out = sightline(&["stats", "--format", "json", "--data-dir", data_dir]).unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(stats["events"].as_u64(), Some(written), "{stats:#}");
    let gaps = stats["seq_gaps"].as_u64().unwrap();
    let gap_events = stats["seq_gap_events"].as_u64().unwrap();
    assert!(gaps > 0 && gap_events >= gaps, "{stats:#}");
    // (A drop at the very end of an agent's run leaves no later event to show the gap.)
    assert!(
        gap_events <= archive_dropped,
        "{gap_events} > {archive_dropped}"
    );

    // ... and `verify`, which counts the same gaps.
    let out = sightline(&["verify", "--format", "json", "--data-dir", data_dir]).unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["seq_gaps"].as_u64(), Some(gaps), "{report:#}");
    assert_eq!(
        report["seq_gap_events"].as_u64(),
        Some(gap_events),
        "{report:#}"
    );
}
