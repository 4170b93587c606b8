//! The OTLP exporter's counters as Prometheus metrics, read at scrape time: what was
//! delivered, and every event lost by reason, at all times (not only at shutdown).

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{IntCounterVec, IntGaugeVec};
use sightline_otlp::OtlpStatsHandle;
use sightline_prometheus::family::{counter, gauge, ScrapeCollector, ScrapeFamilies};

/// A collector over the exporter's [`OtlpStatsHandle`].
#[derive(Debug)]
pub struct OtlpCollector(ScrapeCollector<Families>);

/// The exporter's families, built afresh at every scrape.
struct Families {
    events: IntCounterVec,
    held_events: IntGaugeVec,
    held_bytes: IntGaugeVec,
    requests: IntCounterVec,
    retries: IntCounterVec,
    records: IntCounterVec,
    records_rejected: IntCounterVec,
    bytes: IntCounterVec,
}

impl ScrapeFamilies for Families {
    fn new() -> prometheus::Result<Self> {
        Ok(Self {
            events: counter(
                "sightline_otlp_events_total",
                "Events the OTLP exporter took, by how they ended: delivered, rejected (permanent error or partial success), gave_up (retried past retry_max_elapsed_ms), shutdown (left when the drain time ran out), queue_full (a batch larger than the whole buffer).",
                &["outcome"],
            )?,
            held_events: gauge(
                "sightline_otlp_held_events",
                "Events the OTLP exporter holds now (waiting or in flight).",
                &[],
            )?,
            held_bytes: gauge(
                "sightline_otlp_held_bytes",
                "Encoded bytes the OTLP exporter holds now.",
                &[],
            )?,
            requests: counter(
                "sightline_otlp_requests_total",
                "OTLP export requests by result: ok, retryable_error (each attempt), permanent_error.",
                &["result"],
            )?,
            retries: counter(
                "sightline_otlp_retries_total",
                "OTLP export requests sent again after a retryable error.",
                &[],
            )?,
            records: counter(
                "sightline_otlp_records_exported_total",
                "Records a collector accepted, by signal (logs, traces).",
                &["signal"],
            )?,
            records_rejected: counter(
                "sightline_otlp_records_rejected_total",
                "Records a collector rejected in partial successes.",
                &[],
            )?,
            bytes: counter(
                "sightline_otlp_exported_bytes_total",
                "Bytes of accepted OTLP requests, before compression.",
                &[],
            )?,
        })
    }

    fn all(&self) -> Vec<&dyn Collector> {
        vec![
            &self.events,
            &self.held_events,
            &self.held_bytes,
            &self.requests,
            &self.retries,
            &self.records,
            &self.records_rejected,
            &self.bytes,
        ]
    }
}

impl OtlpCollector {
    /// A collector reading `stats` at every scrape.
    pub fn new(stats: OtlpStatsHandle) -> prometheus::Result<Self> {
        ScrapeCollector::new(move |f: &Families| fill(&stats, f)).map(Self)
    }
}

fn fill(stats: &OtlpStatsHandle, f: &Families) {
    let s = stats.stats();
    for (outcome, n) in [
        ("delivered", s.delivered),
        ("rejected", s.rejected),
        ("gave_up", s.gave_up),
        ("shutdown", s.dropped_shutdown),
        ("queue_full", s.dropped_queue_full),
    ] {
        f.events.with_label_values(&[outcome]).inc_by(n);
    }
    f.held_events
        .with_label_values(&[] as &[&str])
        .set(s.held_events as i64);
    f.held_bytes
        .with_label_values(&[] as &[&str])
        .set(s.held_bytes as i64);
    for (result, n) in [
        ("ok", s.requests_ok),
        ("retryable_error", s.requests_failed_retryable),
        ("permanent_error", s.requests_failed_permanent),
    ] {
        f.requests.with_label_values(&[result]).inc_by(n);
    }
    f.retries
        .with_label_values(&[] as &[&str])
        .inc_by(s.retries);
    f.records
        .with_label_values(&["logs"])
        .inc_by(s.log_records_exported);
    f.records
        .with_label_values(&["traces"])
        .inc_by(s.spans_exported);
    f.records_rejected
        .with_label_values(&[] as &[&str])
        .inc_by(s.records_rejected_partial);
    f.bytes
        .with_label_values(&[] as &[&str])
        .inc_by(s.bytes_exported);
}

impl Collector for OtlpCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.0.desc()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        self.0.collect()
    }
}
