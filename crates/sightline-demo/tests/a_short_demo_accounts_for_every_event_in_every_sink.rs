//! A short demo (two seconds, a few agents, the archive in a scratch directory) returns a
//! summary whose numbers add up: every event the fleet emitted (that a sink's filter lets
//! through) is, in every sink, either written, dropped or failed; the tally counts them all; the archive holds them; the live
//! progress was reported; and `demo-summary.json` is the summary's JSON.

use std::path::PathBuf;

use sightline_demo::{fleet::Tools, run, DemoOptions, Progress, SUMMARY_FILE};
use sightline_pipeline::Config;

/// A fresh directory under the system's temp dir, unique to this process.
fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sightline-demo-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn a_short_demo_accounts_for_every_event_in_every_sink() {
    let dir = scratch();
    let mut config = Config::default();
    config.demo.progress_interval_ms = 100;
    let mut options = DemoOptions::new(Tools {
        // No MCP server here: the agents event their failure to start it, as the demo's
        // failure injection does.
        command: dir.join("no-such-mcp-server").display().to_string(),
    });
    options.duration_secs = Some(2);
    options.agents = Some(9);
    options.rate_per_sec = Some(1000);
    options.metrics_addr = Some("127.0.0.1:0".into());

    let mut ticks = Vec::new();
    let mut steps = Vec::new();
    let summary = run(config, &options, &dir, |p| match p {
        Progress::Tick(t) => ticks.push(*t),
        other => steps.push(other.clone()),
    })
    .unwrap();

    let emitted = summary.events_emitted;
    assert!(emitted > 0, "the fleet emitted nothing");
    assert_eq!(summary.agents, 9);
    assert_eq!(summary.tally.total, emitted, "the tally counted otherwise");
    assert_eq!(summary.tally.seq_gaps, 0);
    assert!(!summary.sinks.is_empty());
    assert!(summary.tally.errors > 0, "no failure in the mix");
    for r in &summary.sinks {
        let s = &r.stats;
        // `recent_failures` takes events at `error` and above (its `min_severity`); every
        // other sink takes them all.
        let offered = if s.name == "recent_failures" {
            summary.tally.errors
        } else {
            emitted
        };
        let (dropped, failed) = (s.dropped.total(), s.failed.iter().sum::<u64>());
        assert_eq!(r.undelivered, 0, "{s:?}");
        assert_eq!(
            s.received + dropped,
            offered,
            "offered to {}: {s:?}",
            s.name
        );
        assert_eq!(
            s.written + dropped + failed,
            offered,
            "{} does not account for every event: {s:?}",
            s.name
        );
    }
    let archive = summary.archive.as_ref().expect("the archive ran");
    assert!(archive.dir.starts_with(&dir));
    assert_eq!(archive.stats.events_written, emitted);

    // The live numbers were reported, rising, and the steps in their order.
    assert!(!ticks.is_empty(), "no progress tick");
    assert!(ticks.windows(2).all(|w| w[0].emitted <= w[1].emitted));
    assert!(ticks.iter().all(|t| t.emitted <= emitted));
    let names: Vec<&str> = steps
        .iter()
        .map(|p| match p {
            Progress::Metrics { .. } => "metrics",
            Progress::Started { .. } => "started",
            Progress::DeployStopping => "deploy stopping",
            Progress::DeployBack { .. } => "deploy back",
            Progress::FleetStopped => "fleet stopped",
            _ => "other",
        })
        .collect();
    assert_eq!(
        names,
        [
            "metrics",
            "started",
            "deploy stopping",
            "deploy back",
            "fleet stopped"
        ]
    );
    assert_eq!(
        steps.iter().find(|p| matches!(p, Progress::Metrics { .. })),
        summary
            .metrics_addr
            .map(|addr| Progress::Metrics { addr })
            .as_ref()
    );

    // The file is the summary's JSON.
    assert_eq!(summary.summary_path, dir.join(SUMMARY_FILE));
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&summary.summary_path).unwrap()).unwrap();
    assert_eq!(written, summary.to_json());
    assert_eq!(written["events_emitted"].as_u64(), Some(emitted));
    assert_eq!(written["undelivered"], 0);

    let _ = std::fs::remove_dir_all(&dir);
}
