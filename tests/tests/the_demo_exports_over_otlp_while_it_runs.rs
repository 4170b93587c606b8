//! `sightline demo --otlp URL` exports the fleet's events over OTLP while it runs: a receiver on
//! loopback (OpenTelemetry's generated server types) gets spans and log records of the fleet,
//! every emitted event is delivered (nothing rejected, given up or dropped at this rate), the
//! receiver's record count is what the exporter reports, the exporter's counters are on
//! `/metrics` while the fleet runs, and the same works over HTTP/protobuf.

use sightline_otlp::receiver::Receiver;
use sightline_tests::{real, scratch_dir, sightline};

#[test]
fn the_demo_exports_over_otlp_while_it_runs() {
    for (protocol, grpc) in [("grpc", true), ("http/protobuf", false)] {
        let receiver = Receiver::start(false).unwrap();
        let url = if grpc {
            receiver.grpc_url()
        } else {
            receiver.http_url()
        };
        let dir = scratch_dir("demo-otlp").unwrap();
        let data_dir = dir.to_str().unwrap();
        let out = sightline(&[
            "demo",
            "--duration",
            "3",
            "--agents",
            "80",
            "--rate",
            "4000",
            "--data-dir",
            data_dir,
            "--metrics-addr",
            "127.0.0.1:0",
            "--otlp",
            &url,
            "--otlp-protocol",
            protocol,
        ])
        .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "demo failed:\n{stdout}\n{stderr}");
        assert!(stderr.contains("otlp: exporting to"), "{stderr}");
        assert!(stdout.contains("OTLP export:"), "{stdout}");
        let summary: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("demo-summary.json")).unwrap())
                .unwrap();
        let emitted = summary["events_emitted"].as_u64().unwrap();
        let o = &summary["otlp"];
        assert!(emitted > 1000);
        assert_eq!(o["received"].as_u64(), Some(emitted), "{o:#}");
        assert_eq!(o["delivered"].as_u64(), Some(emitted), "{o:#}");
        for lost in [
            "rejected",
            "gave_up",
            "dropped_shutdown",
            "dropped_queue_full",
        ] {
            assert_eq!(o[lost], 0, "{lost}: {o:#}");
        }
        assert!(receiver.spans() > 0 && receiver.log_records() > 0);
        assert_eq!(
            receiver.spans(),
            o["spans_exported"].as_u64().unwrap(),
            "{o:#}"
        );
        assert_eq!(
            receiver.log_records(),
            o["log_records_exported"].as_u64().unwrap()
        );
    }

    // The exporter's counters are scrapeable while the fleet runs.
    let receiver = Receiver::start(false).unwrap();
    let dir = scratch_dir("demo-otlp-metrics").unwrap();
    let running = real::demo(
        &dir,
        &[
            "--duration",
            "6",
            "--agents",
            "40",
            "--rate",
            "2000",
            "--otlp",
            &receiver.grpc_url(),
        ],
    )
    .unwrap();
    real::wait_until(std::time::Duration::from_secs(20), || {
        let (code, body) = real::http_get(&running.addr, "/metrics")?;
        Ok(code == 200
            && body
                .lines()
                .filter(|l| l.starts_with("sightline_otlp_events_total{outcome=\"delivered\"}"))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .any(|v| v > 0.0))
    })
    .expect("no delivered OTLP events on /metrics");
}
