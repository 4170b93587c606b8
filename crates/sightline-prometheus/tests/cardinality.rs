//! A million distinct method names and agent classes (and instance names) do not blow up the
//! metrics: every metric stays within its series cap (the excess folded into one
//! `__overflow__` series and counted), the exposition stays small, and memory stays bounded.

use prometheus::Registry;
use sightline_event::{AgentRef, Event, Outcome, Rpc};
use sightline_prometheus::EventMetrics;

fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<u64>().ok())
        })
        .map_or(0, |pages| pages * 4096)
}

#[test]
fn a_million_distinct_labels_stay_within_the_cap_and_bounded_memory() {
    const CAP: usize = 2000;
    const N: u64 = 1_000_000;
    let registry = Registry::new();
    let mut metrics = EventMetrics::new(&registry, CAP, 10_000).unwrap();
    let before = rss_bytes();
    for i in 0..N {
        let e = Event::new(
            AgentRef::new(format!("Class{i}"), format!("agent-{i}")),
            1,
            Rpc {
                method: format!("method-{i}").into(),
                ..Default::default()
            },
        )
        .with_outcome(Outcome::Ok)
        .with_duration_ns(1_000_000);
        metrics.record(&e);
    }
    let grown = rss_bytes().saturating_sub(before);
    let text = sightline_prometheus::render_text(&registry);
    let mut series: std::collections::BTreeMap<&str, usize> = Default::default();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let name = line.split(['{', ' ']).next().unwrap_or("");
        // A histogram's series are its label sets, not its buckets.
        if name.ends_with("_bucket") || name.ends_with("_sum") {
            continue;
        }
        *series.entry(name).or_default() += 1;
    }
    for (name, n) in &series {
        assert!(*n <= CAP + 1, "{name} exposes {n} series (cap {CAP})");
    }
    assert_eq!(series["sightline_rpc_calls_total"], CAP + 1);
    let folded: u64 = text
        .lines()
        .find(|l| {
            l.starts_with(
                "sightline_metric_series_overflow_total{metric=\"sightline_rpc_calls_total\"}",
            )
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert_eq!(folded, N - CAP as u64);
    assert!(text.contains("method=\"__overflow__\""));
    // Measured (release build, Linux/glibc): exposition 3.4 MiB, memory +8.7 MiB over the
    // million events. The bounds leave a margin for allocators and label lengths, no more:
    // unbounded series would take hundreds of MiB.
    assert!(
        text.len() < 4 << 20,
        "exposition is {} KiB",
        text.len() >> 10
    );
    assert!(grown < 16 << 20, "memory grew by {} KiB", grown >> 10);
    eprintln!(
        "{} events with distinct labels: {} series at most per metric, exposition {} KiB, memory +{} KiB",
        N,
        series.values().max().unwrap(),
        text.len() >> 10,
        grown >> 10
    );
}
