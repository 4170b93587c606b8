//! The Prometheus sink's cost: one typical event turned into its metric updates, and a scrape
//! of `/metrics` with 10,000 series.
//!
//! `cargo bench -p sightline-prometheus --bench record`. Targets: `record_event` ≤ 50 ns,
//! `scrape_10k_series` ≤ 10 ms. Anchors printed in the same run: an increment through a cached
//! `prometheus` handle, and one through a label lookup per call.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use prometheus::{IntCounterVec, Opts, Registry};
use sightline_event::*;
use sightline_prometheus::{openmetrics, EventMetrics};

fn typical() -> Event {
    Event::new(
        AgentRef::new("SupportAgent", "ticket-4411"),
        42,
        Rpc {
            method: "getTicket".into(),
            ..Default::default()
        },
    )
    .with_outcome(Outcome::Ok)
    .with_duration_ns(12_300_000)
}

fn record(c: &mut Criterion) {
    let mut group = c.benchmark_group("prometheus");
    group.measurement_time(Duration::from_secs(4));

    let registry = Registry::new();
    let mut metrics = EventMetrics::new(&registry, 2000, 100_000).unwrap();
    let event = typical();
    metrics.record(&event);
    group.bench_function("record_event", |b| {
        b.iter(|| metrics.record(black_box(&event)))
    });

    let vec = IntCounterVec::new(Opts::new("anchor_total", "Anchor."), &["a", "b"]).unwrap();
    let cached = vec.with_label_values(&["SupportAgent", "getTicket"]);
    group.bench_function("anchor_cached_handle_inc", |b| {
        b.iter(|| black_box(&cached).inc())
    });
    group.bench_function("anchor_label_lookup_inc", |b| {
        b.iter(|| {
            vec.with_label_values(black_box(&["SupportAgent", "getTicket"]))
                .inc()
        })
    });

    // 10,000 series: 100 methods x 25 classes x 4 outcomes of the RPC counter.
    let big = Registry::new();
    let mut metrics = EventMetrics::new(&big, 20_000, 100_000).unwrap();
    for class in 0..25 {
        for method in 0..100 {
            for outcome in [
                Outcome::Ok,
                Outcome::Error,
                Outcome::Timeout,
                Outcome::Cancelled,
            ] {
                let e = Event::new(
                    AgentRef::new(format!("Class{class}"), "a"),
                    1,
                    Rpc {
                        method: format!("method{method}").into(),
                        ..Default::default()
                    },
                )
                .with_outcome(outcome);
                metrics.record(&e);
            }
        }
    }
    let series = big
        .gather()
        .iter()
        .filter(|f| f.name() == "sightline_rpc_calls_total")
        .map(|f| f.get_metric().len())
        .sum::<usize>();
    assert_eq!(series, 10_000);
    group.bench_function("scrape_10k_series", |b| {
        b.iter(|| black_box(sightline_prometheus::render_text(&big)))
    });
    group.bench_function("scrape_10k_series_openmetrics", |b| {
        b.iter(|| black_box(openmetrics::encode(&big.gather())))
    });
    group.finish();
}

criterion_group!(benches, record);
criterion_main!(benches);
