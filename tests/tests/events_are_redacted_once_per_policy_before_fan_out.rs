//! Sinks that name the same policy share one redaction stage: each event is redacted once for
//! that policy, then fans out to each sink's own queue, already redacted.

use std::time::Duration;

use sightline_bus::Bus;
use sightline_event::{Family, KindSet, RpcError};
use sightline_sink::{MemorySink, Pipeline, RunnerConfig};

#[test]
fn events_are_redacted_once_per_policy_before_fan_out() {
    let bus = Bus::new();
    let mut pipeline = Pipeline::new(bus.clone()).unwrap();
    let (a, a_events) = MemorySink::new(100);
    let (b, b_events) = MemorySink::new(100);
    let rpc_only = RunnerConfig {
        kinds: "rpc:error".into(),
        ..RunnerConfig::default()
    };
    pipeline
        .add_group(vec![
            ("a".to_owned(), Box::new(a), RunnerConfig::default()),
            ("b".to_owned(), Box::new(b), rpc_only),
        ])
        .unwrap();
    let redactor = pipeline.policies()["default"].clone();

    let agent = bus.emitter("Support", "t1");
    for _ in 0..10 {
        agent.emit(|| RpcError {
            method: "refund".into(),
            error: "declined for jane@example.com".into(),
            ..Default::default()
        });
    }
    agent.emit(|| sightline_event::QueueCreate {
        callback: "cb".into(),
        id: "q1".into(),
    });
    assert!(pipeline.flush(Duration::from_secs(5)).is_empty());

    // Eleven events, one policy, two sinks: the policy ran eleven times, not twenty-one.
    assert_eq!(redactor.stats().events_seen, 11);
    assert_eq!(a_events.len(), 11);
    assert_eq!(b_events.len(), 10, "b filters to rpc:error only");
    for e in a_events.events().iter().chain(b_events.events().iter()) {
        assert!(!e.to_json_line().contains("jane@example.com"));
        if KindSet::family(Family::Rpc).contains(e.kind()) {
            assert!(e.redaction.is_some());
        }
    }
    let stats = pipeline.stats();
    assert_eq!(stats.len(), 2, "one entry per sink");
    assert!(stats
        .iter()
        .all(|s| s.policy == "default" && s.events_redacted == 10));
    let reports = pipeline.shutdown(Duration::from_secs(5));
    assert_eq!(reports.len(), 2);
    assert!(reports.iter().all(|r| r.finished && r.undelivered == 0));
}
