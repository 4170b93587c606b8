//! Sinks started together under several redaction policies are fed by one subscription on the
//! agents' bus (an agent offers each event to one queue, not one per policy); what that
//! subscription drops is counted against every sink behind it, so each sink's accounting
//! stays exact.

use std::time::Duration;

use sightline_bus::Bus;
use sightline_event::{Event, Rpc};
use sightline_sink::{MemorySink, OverflowPolicy, Pipeline, RunnerConfig, Sink, SinkError};

mod common;
use common::{wait_until, Gate};

fn emit(bus: &Bus, n: usize) {
    let e = bus.emitter("Support", "t1");
    for i in 0..n {
        e.emit(|| Rpc {
            method: format!("m{i}").into(),
            ..Default::default()
        });
    }
}

fn runner(policy: &str, queue_capacity: usize) -> RunnerConfig {
    RunnerConfig {
        policy: policy.into(),
        queue_capacity,
        batch_max_events: 8,
        flush_interval_ms: 5,
        ..RunnerConfig::default()
    }
}

#[test]
fn one_subscription_feeds_every_policy_and_every_sink_gets_everything() {
    let bus = Bus::new();
    let mut p = Pipeline::new(bus.clone()).unwrap();
    let (a, a_events) = MemorySink::new(10_000);
    let (b, b_events) = MemorySink::new(10_000);
    let (c, c_events) = MemorySink::new(10_000);
    p.add_group(vec![
        ("raw".into(), Box::new(a), runner("none", 4096)),
        ("archive".into(), Box::new(b), runner("archive", 4096)),
        ("otlp".into(), Box::new(c), runner("otlp", 4096)),
    ])
    .unwrap();
    let on_agents_bus = bus.stats();
    assert_eq!(on_agents_bus.len(), 1, "{on_agents_bus:?}");
    assert_eq!(on_agents_bus[0].name, "fanout");
    emit(&bus, 1000);
    assert!(p.flush(Duration::from_secs(10)).is_empty());
    for events in [&a_events, &b_events, &c_events] {
        let got = events.events();
        assert_eq!(got.len(), 1000);
        // Per-agent order survives the extra hop.
        assert!(got.windows(2).all(|w| w[0].seq + 1 == w[1].seq));
    }
    let reports = p.shutdown(Duration::from_secs(10));
    assert_eq!(reports.len(), 3);
    for r in reports {
        assert!(r.finished && r.undelivered == 0, "{r:?}");
        assert_eq!(
            (r.stats.written, r.stats.dropped.total()),
            (1000, 0),
            "{r:?}"
        );
    }
}

/// A sink that takes its time, so queues fill.
struct Slow;
impl Sink for Slow {
    fn write(&mut self, _: &[Event]) -> Result<(), SinkError> {
        std::thread::sleep(Duration::from_millis(2));
        Ok(())
    }
}

#[test]
fn what_the_shared_subscription_drops_is_counted_for_every_sink_behind_it() {
    let bus = Bus::new();
    let mut p = Pipeline::new(bus.clone()).unwrap();
    p.add_group(vec![
        ("slow-raw".into(), Box::new(Slow), runner("none", 16)),
        ("slow-archive".into(), Box::new(Slow), runner("archive", 16)),
    ])
    .unwrap();
    let emitted = 20_000u64;
    emit(&bus, emitted as usize);
    let fanout_dropped = bus.stats()[0].dropped.total();
    assert!(fanout_dropped > 0, "the burst overflows the shared queue");
    let reports = p.shutdown(Duration::from_secs(30));
    assert_eq!(reports.len(), 2);
    for r in reports {
        let s = &r.stats;
        let accounted =
            s.written + s.failed.iter().sum::<u64>() + s.dropped.total() + r.undelivered;
        assert_eq!(accounted, emitted, "{r:?}");
        assert!(s.dropped.total() >= fanout_dropped, "{r:?}");
    }
}

#[test]
fn a_blocking_sink_or_a_narrower_filter_keeps_a_subscription_of_its_own() {
    let bus = Bus::new();
    let mut p = Pipeline::new(bus.clone()).unwrap();
    let (a, _) = MemorySink::new(100);
    let (b, _) = MemorySink::new(100);
    let (c, _) = MemorySink::new(100);
    let (d, _) = MemorySink::new(100);
    let blocking = RunnerConfig {
        overflow: OverflowPolicy::Block,
        ..runner("otlp", 64)
    };
    let failures_only = RunnerConfig {
        min_severity: "error".into(),
        ..runner("metrics", 64)
    };
    p.add_group(vec![
        ("raw".into(), Box::new(a), runner("none", 64)),
        ("archive".into(), Box::new(b), runner("archive", 64)),
        ("otlp".into(), Box::new(c), blocking),
        ("failures".into(), Box::new(d), failures_only),
    ])
    .unwrap();
    // The blocking sink and the failures-only sink each have a queue of their own on the
    // agents' bus (a policy with one sink needs no stage: the queue is the sink's own), so a
    // stalled blocking sink cannot hold up the others (see the next test), and the
    // failures-only sink is not charged for info events the shared subscription drops.
    let mut names: Vec<String> = bus.stats().into_iter().map(|s| s.name.into()).collect();
    names.sort();
    assert_eq!(names, ["failures", "fanout", "otlp"]);
    p.shutdown(Duration::from_secs(10));
}

#[test]
fn a_stalled_blocking_sink_cannot_hold_up_the_others() {
    let bus = Bus::new();
    let mut p = Pipeline::new(bus.clone()).unwrap();
    let (a, a_events) = MemorySink::new(10_000);
    let (b, b_events) = MemorySink::new(10_000);
    let gate = Gate::closed();
    // A short wait, so the agent is not held long by the full queue of the stalled sink.
    let blocking = RunnerConfig {
        overflow: OverflowPolicy::Block,
        block_timeout_ms: 2,
        ..runner("otlp", 16)
    };
    p.add_group(vec![
        ("raw".into(), Box::new(a), runner("none", 4096)),
        ("archive".into(), Box::new(b), runner("archive", 4096)),
        ("stalled".into(), gate.sink(), blocking),
    ])
    .unwrap();
    let emitted = 200;
    emit(&bus, emitted);
    // The stalled sink is inside its first write and stays there until the gate opens; its
    // queue (16) is full, so the agent waited for it, then dropped.
    wait_until(|| gate.writes_started() == 1);
    for events in [&a_events, &b_events] {
        assert!(events.wait_for(emitted, Duration::from_secs(10)));
        assert_eq!(events.len(), emitted);
    }
    let stalled = p.stats().into_iter().find(|s| s.name == "stalled").unwrap();
    assert_eq!(gate.writes_started(), 1, "still in its first write");
    assert_eq!(stalled.written, 0, "{stalled:?}");
    assert!(stalled.dropped.total() > 0, "{stalled:?}");

    gate.open();
    let reports = p.shutdown(Duration::from_secs(10));
    assert_eq!(reports.len(), 3);
    for r in reports {
        let s = &r.stats;
        assert!(r.finished, "{r:?}");
        let accounted =
            s.written + s.failed.iter().sum::<u64>() + s.dropped.total() + r.undelivered;
        assert_eq!(accounted, emitted as u64, "{r:?}");
        if r.name != "stalled" {
            assert_eq!(s.written, emitted as u64, "{r:?}");
        }
    }
}

#[test]
fn a_pipeline_dropped_without_shutdown_still_hands_everything_on() {
    let bus = Bus::new();
    let mut p = Pipeline::new(bus.clone()).unwrap();
    let (a, a_events) = MemorySink::new(10_000);
    let (b, b_events) = MemorySink::new(10_000);
    // A long linger, so events are still at the fan-out and the stages when it is dropped.
    let lingering = |policy: &str| RunnerConfig {
        batch_max_events: 4096,
        flush_interval_ms: 10_000,
        ..runner(policy, 4096)
    };
    p.add_group(vec![
        ("raw".into(), Box::new(a), lingering("none")),
        ("archive".into(), Box::new(b), lingering("archive")),
    ])
    .unwrap();
    emit(&bus, 500);
    drop(p);
    assert_eq!(a_events.len(), 500);
    assert_eq!(b_events.len(), 500);
}
