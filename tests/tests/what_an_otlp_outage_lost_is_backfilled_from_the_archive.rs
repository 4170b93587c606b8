//! When the collector is unreachable for a whole run, `sightline demo --otlp` counts every
//! event it could not deliver (here: all of them, left when the drain time ran out) while the
//! archive keeps them; `sightline replay --to otlp`, pointed at the collector by the standard
//! `OTEL_EXPORTER_OTLP_ENDPOINT`, then backfills exactly those events.

use sightline_otlp::receiver::Receiver;
use sightline_tests::real::free_port;
use sightline_tests::{scratch_dir, sightline, sightline_with_stdin};

#[test]
fn what_an_otlp_outage_lost_is_backfilled_from_the_archive() {
    let dir = scratch_dir("otlp-backfill").unwrap();
    let data_dir = dir.to_str().unwrap();
    // Nothing listens there.
    let dead = format!("http://127.0.0.1:{}", free_port().unwrap());
    let out = sightline(&[
        "demo",
        "--duration",
        "2",
        "--agents",
        "30",
        "--rate",
        "1000",
        "--data-dir",
        data_dir,
        "--metrics-addr",
        "127.0.0.1:0",
        "--otlp",
        &dead,
    ])
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("demo-summary.json")).unwrap())
            .unwrap();
    let emitted = summary["events_emitted"].as_u64().unwrap();
    let o = &summary["otlp"];
    assert_eq!(o["delivered"], 0, "{o:#}");
    assert_eq!(o["received"].as_u64(), Some(emitted), "{o:#}");
    assert_eq!(o["dropped_shutdown"].as_u64(), Some(emitted), "{o:#}");
    assert!(o["retries"].as_u64().unwrap() > 0);
    assert!(
        o["last_error"]
            .as_str()
            .unwrap_or("")
            .contains("Unavailable"),
        "{o:#}"
    );
    assert_eq!(
        summary["archive"]["stats"]["events_written"].as_u64(),
        Some(emitted)
    );

    // The collector is back: backfill from the archive.
    let receiver = Receiver::start(false).unwrap();
    let out = sightline_with_stdin(
        &["--data-dir", data_dir, "replay", "--to", "otlp"],
        &[("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.grpc_url().as_str())],
        b"",
    )
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "replay failed:\n{stderr}");
    let line = stderr
        .lines()
        .find(|l| l.contains("otlp export"))
        .unwrap_or_else(|| panic!("no otlp line:\n{stderr}"));
    let delivered: u64 = line
        .split_whitespace()
        .skip_while(|w| *w != "delivered")
        .nth(1)
        .unwrap()
        .replace(',', "")
        .parse()
        .unwrap();
    assert_eq!(delivered, emitted, "{stderr}");
    assert!(receiver.spans() > 0 && receiver.log_records() > 0);
}
