//! When the collector is unreachable for a whole run, `sightline demo --otlp` counts every
//! event it could not deliver (here: all of them, left when the drain time ran out) while the
//! archive keeps them; `sightline replay --to otlp`, pointed at the collector by the standard
//! `OTEL_EXPORTER_OTLP_ENDPOINT`, then backfills exactly those events: the collector receives
//! every archived event once (by its `sightline.event.id`), as the spans and log records the
//! OTLP mapping makes of it, and nothing else.

use std::collections::BTreeMap;
use std::ops::ControlFlow;

use opentelemetry_proto::tonic::common::v1::{any_value::Value as Any, KeyValue};
use sightline_archive::{Archive, Query};
use sightline_otlp::map::signals;
use sightline_otlp::receiver::Receiver;
use sightline_tests::real::free_port;
use sightline_tests::{demo_run, scratch_dir, sightline_with_stdin};

#[test]
fn what_an_otlp_outage_lost_is_backfilled_from_the_archive() {
    let dir = scratch_dir("otlp-backfill").unwrap();
    let data_dir = dir.to_str().unwrap();
    // Nothing listens there.
    let dead = format!("http://127.0.0.1:{}", free_port().unwrap());
    let summary = demo_run(
        &dir,
        &[],
        &[
            "--duration",
            "2",
            "--agents",
            "30",
            "--rate",
            "1000",
            "--otlp",
            &dead,
        ],
    )
    .unwrap()
    .summary;
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

    // What the outage lost, by event id: every archived event, and the spans and log records
    // each becomes.
    let mut lost = BTreeMap::new();
    Archive::open(dir.join("archive"))
        .unwrap()
        .scan(&Query::default(), |e| {
            let s = signals(&e, true);
            let id = e.id.to_string();
            assert!(lost
                .insert(id, (u64::from(s.span), u64::from(s.log)))
                .is_none());
            ControlFlow::Continue(())
        })
        .unwrap();
    assert_eq!(lost.len() as u64, emitted);

    // The collector is back: backfill from the archive.
    let receiver = Receiver::start(true).unwrap();
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

    // The receiver's own count: each lost event arrived once, as its spans and log records.
    let got = receiver.take();
    let mut arrived: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let spans = got
        .traces
        .iter()
        .flat_map(|r| &r.resource_spans)
        .flat_map(|rs| &rs.scope_spans)
        .flat_map(|ss| &ss.spans);
    for span in spans {
        arrived.entry(event_id(&span.attributes)).or_default().0 += 1;
    }
    let logs = got
        .logs
        .iter()
        .flat_map(|r| &r.resource_logs)
        .flat_map(|rl| &rl.scope_logs)
        .flat_map(|sl| &sl.log_records);
    for log in logs {
        arrived.entry(event_id(&log.attributes)).or_default().1 += 1;
    }
    assert_eq!(arrived.len() as u64, emitted, "events that arrived");
    let (spans, logs) = lost
        .values()
        .fold((0, 0), |(s, l), (ds, dl)| (s + ds, l + dl));
    assert!(spans > 0 && logs > 0);
    assert_eq!((receiver.spans(), receiver.log_records()), (spans, logs));
    assert!(
        arrived == lost,
        "the collector got other events than the outage lost"
    );
}

/// The `sightline.event.id` attribute of a span or log record.
fn event_id(attributes: &[KeyValue]) -> String {
    match attributes
        .iter()
        .find(|a| a.key == "sightline.event.id")
        .and_then(|a| a.value.as_ref())
        .and_then(|v| v.value.as_ref())
    {
        Some(Any::StringValue(id)) => id.clone(),
        other => panic!("a record without its event id: {other:?}"),
    }
}
