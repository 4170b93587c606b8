//! Archive write throughput: typical events (379 bytes of JSON each) through the archive sink
//! into a real file, against `tracing`'s JSON layer writing the same events through
//! `tracing-appender`'s non-blocking file writer, in the same run.
//!
//! `cargo bench -p sightline-archive --bench write` prints, after criterion's own report, a
//! table of events/s, MB/s and the ratio against tracing-appender. Target: at least 1 M
//! events/s with `fsync = "interval"`, and at least 3x tracing-appender.

use std::path::PathBuf;
use std::time::Duration;

use criterion::{criterion_group, BenchmarkId, Criterion, Throughput};
use sightline_archive::{ArchiveConfig, ArchiveWriter, FsyncPolicy};
use sightline_event::*;
use sightline_sink::Sink;

const BATCH: usize = 4096;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sightline-bench-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// A typical event: a completed schedule run with trace context, outcome and duration.
fn typical(i: u64) -> Event {
    let agent = AgentRef::new("Reminder", format!("t-{:05}", i % 5000));
    let trace = TraceContext::new_root();
    Event::new(
        agent,
        100_000 + i,
        ScheduleComplete {
            callback: "digest".into(),
            id: format!("sch_{:08x}", i * 2654435761 % 0xffff_ffff).into(),
            attempts: 1,
            lateness_ms: 12,
        },
    )
    .with_outcome(Outcome::Ok)
    .with_duration_ns(41_250_000 + i % 1000)
    .with_trace(trace)
}

fn batch(start: u64) -> Vec<Event> {
    (start..start + BATCH as u64).map(typical).collect()
}

fn archive(c: &mut Criterion) {
    let events = batch(0);
    for e in &events {
        let line = e.to_json_line();
        assert_eq!(
            line.len() + 1,
            379,
            "the typical event is 379 bytes: {line}"
        );
    }
    let mut group = c.benchmark_group("archive");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.sample_size(30);
    group.measurement_time(Duration::from_secs(6));
    for (case, fsync) in [
        ("write_fsync_interval", FsyncPolicy::Interval),
        ("write_fsync_never", FsyncPolicy::Never),
    ] {
        let dir = scratch(case);
        let cfg = ArchiveConfig {
            fsync,
            // Keep the disk use of a long run bounded; rotation, compression and retention
            // all run, as they would in production.
            retention_max_bytes: 512 * 1024 * 1024,
            ..ArchiveConfig::default()
        };
        let mut writer = ArchiveWriter::open(&dir, cfg).unwrap();
        group.bench_function(BenchmarkId::from_parameter(case), |b| {
            b.iter(|| writer.write(&events).unwrap())
        });
        writer.shutdown().unwrap();
        drop(writer);
        let _ = std::fs::remove_dir_all(&dir);
    }

    // The peer: the same events as tracing events, JSON-formatted by tracing-subscriber and
    // written by tracing-appender's non-blocking writer (lossless, so it measures writing).
    let dir = scratch("tracing");
    std::fs::create_dir_all(&dir).unwrap();
    let appender = tracing_appender::rolling::never(&dir, "events.json");
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .finish(appender);
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_writer(writer)
        .with_max_level(tracing::Level::INFO)
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        group.bench_function(BenchmarkId::from_parameter("tracing_appender_json"), |b| {
            b.iter(|| {
                for e in &events {
                    let Payload::ScheduleComplete(p) = &e.payload else {
                        continue;
                    };
                    tracing::info!(
                        event_id = %e.id,
                        kind = "schedule:complete",
                        agent_class = %e.agent.class,
                        agent_name = %e.agent.name,
                        seq = e.seq,
                        trace_id = %e.trace_id.map(|t| t.to_string()).unwrap_or_default(),
                        span_id = %e.span_id.map(|t| t.to_string()).unwrap_or_default(),
                        outcome = "ok",
                        duration_ns = e.duration_ns.unwrap_or(0),
                        callback = %p.callback,
                        id = %p.id,
                        attempts = p.attempts,
                        lateness_ms = p.lateness_ms,
                    );
                }
            })
        });
    });
    drop(guard);
    let _ = std::fs::remove_dir_all(&dir);
    group.finish();
}

criterion_group!(benches, archive);

fn median_ns(case: &str) -> Option<f64> {
    let root = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let path = root.join(format!("criterion/archive/{case}/new/estimates.json"));
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
    v["median"]["point_estimate"].as_f64()
}

fn main() {
    benches();
    criterion::Criterion::default()
        .configure_from_args()
        .final_summary();
    if std::env::args().any(|a| a == "--test" || a == "--list") {
        return;
    }
    let peer = median_ns("tracing_appender_json");
    println!("\narchive write throughput ({BATCH}-event batches of 379-byte events; medians)");
    for case in [
        "write_fsync_interval",
        "write_fsync_never",
        "tracing_appender_json",
    ] {
        let Some(ns) = median_ns(case) else { continue };
        let eps = BATCH as f64 / (ns / 1e9);
        let ratio = peer.map_or(String::new(), |p| {
            format!("  {:.2}x tracing-appender", p / ns)
        });
        println!(
            "  {case:<24} {:>6.2} M events/s  {:>7.1} MB/s{ratio}",
            eps / 1e6,
            eps * 379.0 / 1e6
        );
    }
    println!("  target: >= 1 M events/s with fsync_interval, >= 3x tracing-appender");
}
