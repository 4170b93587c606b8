//! The pipeline's own health, read from the sinks' counters at scrape time: events received,
//! delivered, dropped and failed per sink and reason, queue depth and capacity, write errors,
//! retries and time, redactions per policy, rule and action.

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{CounterVec, GaugeVec, IntCounterVec, IntGaugeVec};
use sightline_bus::DropReason;
use sightline_sink::{FailReason, SinkState, StatsView};

use crate::family::{counter, float_counter, float_gauge, gauge, ScrapeCollector, ScrapeFamilies};

/// A collector over a pipeline's [`StatsView`].
pub struct HealthCollector(ScrapeCollector<Families>);

impl std::fmt::Debug for HealthCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HealthCollector").finish_non_exhaustive()
    }
}

struct Families {
    received: IntCounterVec,
    delivered: IntCounterVec,
    dropped: IntCounterVec,
    failed: IntCounterVec,
    retries: IntCounterVec,
    write_errors: IntCounterVec,
    write_seconds: CounterVec,
    write_max_seconds: GaugeVec,
    queue_depth: IntGaugeVec,
    queue_capacity: IntGaugeVec,
    up: IntGaugeVec,
    redacted: IntCounterVec,
    redactions: IntCounterVec,
}

impl ScrapeFamilies for Families {
    fn new() -> prometheus::Result<Self> {
        let (c, g, f) = (counter, gauge, float_gauge);
        Ok(Self {
            received: c("sightline_sink_events_received_total", "Events a sink's worker took from its queue.", &["sink"])?,
            delivered: c("sightline_sink_events_delivered_total", "Events a sink accepted.", &["sink"])?,
            dropped: c("sightline_sink_events_dropped_total", "Events a sink's queue, or a queue in front of it (its policy's redaction stage, the fan-out), could not take, by reason.", &["sink", "reason"])?,
            failed: c("sightline_sink_events_failed_total", "Events handed to a sink but not delivered, by reason (error, panic, sink_dead, shutdown_timeout).", &["sink", "reason"])?,
            retries: c("sightline_sink_retries_total", "Retries of batches that failed with a transient error.", &["sink"])?,
            write_errors: c("sightline_sink_export_errors_total", "Sink writes (exports) that returned an error.", &["sink"])?,
            write_seconds: float_counter("sightline_sink_export_seconds_total", "Time spent in sink writes (exports).", &["sink"])?,
            write_max_seconds: f("sightline_sink_export_max_seconds", "The longest single sink write (export).", &["sink"])?,
            queue_depth: g("sightline_sink_queue_depth", "Events waiting in a sink's queue.", &["sink"])?,
            queue_capacity: g("sightline_sink_queue_capacity", "Capacity of a sink's queue, in events.", &["sink"])?,
            up: g("sightline_sink_up", "1 while a sink's worker is running, 0 once it stopped or died.", &["sink"])?,
            redacted: c("sightline_redaction_events_total", "Events a redaction policy changed, per sink.", &["sink", "policy"])?,
            redactions: c("sightline_redactions_total", "Redactions, by policy, rule (or detector) and action.", &["policy", "rule", "action"])?,
        })
    }

    fn all(&self) -> Vec<&dyn Collector> {
        vec![
            &self.received,
            &self.delivered,
            &self.dropped,
            &self.failed,
            &self.retries,
            &self.write_errors,
            &self.write_seconds,
            &self.write_max_seconds,
            &self.queue_depth,
            &self.queue_capacity,
            &self.up,
            &self.redacted,
            &self.redactions,
        ]
    }
}

impl HealthCollector {
    /// A collector reading `view` at every scrape.
    pub fn new(view: StatsView) -> prometheus::Result<Self> {
        ScrapeCollector::new(move |f: &Families| fill(&view, f)).map(Self)
    }
}

impl Collector for HealthCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.0.desc()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        self.0.collect()
    }
}

/// Sets the families from what `view` says now.
fn fill(view: &StatsView, f: &Families) {
    // Redactions are per policy: sinks sharing a stage report the same counts once.
    let mut seen_policies = std::collections::BTreeSet::new();
    for s in view.stats() {
        let sink = s.name.as_str();
        f.received.with_label_values(&[sink]).inc_by(s.received);
        f.delivered.with_label_values(&[sink]).inc_by(s.written);
        for reason in DropReason::ALL {
            f.dropped
                .with_label_values(&[sink, reason.name()])
                .inc_by(s.dropped.get(reason));
        }
        for reason in FailReason::ALL {
            f.failed
                .with_label_values(&[sink, reason.name()])
                .inc_by(s.failed(reason));
        }
        f.retries.with_label_values(&[sink]).inc_by(s.retries);
        f.write_errors
            .with_label_values(&[sink])
            .inc_by(s.write_errors);
        f.write_seconds
            .with_label_values(&[sink])
            .inc_by(s.write_nanos as f64 / 1e9);
        f.write_max_seconds
            .with_label_values(&[sink])
            .set(s.write_max_nanos as f64 / 1e9);
        f.queue_depth
            .with_label_values(&[sink])
            .set(s.queued as i64);
        f.queue_capacity
            .with_label_values(&[sink])
            .set(s.capacity as i64);
        f.up.with_label_values(&[sink]).set(i64::from(matches!(
            s.state,
            SinkState::Running | SinkState::Draining
        )));
        f.redacted
            .with_label_values(&[sink, s.policy.as_str()])
            .inc_by(s.events_redacted);
        if seen_policies.insert(s.policy.clone()) {
            for (rule, action, n) in &s.redactions {
                f.redactions
                    .with_label_values(&[s.policy.as_str(), rule.as_str(), action.as_str()])
                    .inc_by(*n);
            }
        }
    }
}
