//! Under a steady load, the OTLP receiver goes away for longer than the exporter's buffer
//! holds, then comes back. The agents never wait (during the outage they keep their pace and
//! their emits stay as quick as before it; the excess is shed at the sink's queue and counted), `emitted = delivered + dropped` holds exactly, what
//! the exporter held during the outage arrives after recovery, and the receiver got exactly
//! what the exporter reports as delivered.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use sightline_event::{Outcome, Rpc};
use sightline_otlp::receiver::Receiver;
use sightline_otlp::{OtlpConfig, Protocol};
use sightline_sink::{OverflowPolicy, RunnerConfig};
use sightline_tests::otlp::{lossless_runner, otlp_pipeline, OtlpPipeline};

const RATE: u64 = 20_000;

fn percentile(mut v: Vec<Duration>, p: f64) -> Duration {
    v.sort();
    v.get(((v.len() as f64 - 1.0) * p) as usize)
        .copied()
        .unwrap_or_default()
}

#[test]
fn an_otlp_collector_outage_loses_nothing_uncounted() {
    let mut receiver = Receiver::start(false).unwrap();
    let config = OtlpConfig {
        endpoint: Some(receiver.grpc_url()),
        protocol: Some(Protocol::Grpc),
        queue_max_events: 16_384,
        batch_max_events: 1024,
        batch_linger_ms: 50,
        retry_initial_backoff_ms: 20,
        retry_max_backoff_ms: 200,
        retry_max_elapsed_ms: 120_000,
        timeout_ms: Some(2_000),
        ..Default::default()
    };
    // What agents get by default: a bounded queue that sheds (and counts) what does not fit.
    let runner = RunnerConfig {
        queue_capacity: 8192,
        overflow: OverflowPolicy::DropNewest,
        batch_max_events: 1024,
        max_retries: 3,
        retry_backoff_ms: 20,
        ..lossless_runner()
    };
    let OtlpPipeline {
        bus,
        pipeline,
        stats,
    } = otlp_pipeline(&config, &BTreeMap::new(), runner);
    let agents: Vec<_> = (0..16)
        .map(|i| bus.emitter("Support", format!("ticket-{i}")))
        .collect();

    // 1.5 s up, 3 s down (60k events offered: more than buffer and queue hold), 2 s up.
    let start = Instant::now();
    let (outage_from, outage_to) = (Duration::from_millis(1500), Duration::from_millis(4500));
    let end = Duration::from_millis(6500);
    let mut emitted = 0u64;
    let mut before = Vec::new();
    let mut during = Vec::new();
    let mut held_at_recovery = None;
    let mut down = false;
    loop {
        let t = start.elapsed();
        if t >= end {
            break;
        }
        if !down && t >= outage_from && t < outage_to {
            receiver.pause();
            down = true;
        }
        if down && t >= outage_to {
            held_at_recovery = Some(stats.stats().held_events);
            receiver.resume().unwrap();
            down = false;
        }
        // Emit what is due by now, timing each emit.
        let due = t.as_micros() as u64 * RATE / 1_000_000;
        while emitted < due {
            let a = &agents[(emitted % 16) as usize];
            let t0 = Instant::now();
            a.emit_with(|m| {
                m.outcome = Some(Outcome::Ok);
                m.duration_ns = Some(1_000_000);
                Rpc {
                    method: "getTicket".into(),
                    ..Default::default()
                }
            });
            let took = t0.elapsed();
            if down {
                during.push(took);
            } else if t < outage_from {
                before.push(took);
            }
            emitted += 1;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let reports = pipeline.shutdown(Duration::from_secs(30));
    assert!(
        stats.wait_idle(Duration::from_secs(30)),
        "{:?}",
        stats.stats()
    );
    let s = stats.stats();
    let r = &reports[0];
    let queue_dropped = r.stats.dropped.total();
    let runner_failed: u64 = r.stats.failed.iter().sum();
    println!(
        "emitted {emitted}; delivered {}; dropped at the queue {queue_dropped}; failed at the runner {runner_failed}; exporter {s:?}",
        s.delivered
    );
    println!(
        "emit p50/p99/max before the outage: {:?} / {:?} / {:?}; during: {:?} / {:?} / {:?}",
        percentile(before.clone(), 0.5),
        percentile(before.clone(), 0.99),
        percentile(before.clone(), 1.0),
        percentile(during.clone(), 0.5),
        percentile(during.clone(), 0.99),
        percentile(during.clone(), 1.0),
    );

    // The agents never waited. An emit that waited for the collector would take the
    // outage's length (seconds); one that does not takes what an emit takes before the
    // outage (microseconds). Judged against the same run: during the outage the agents kept
    // their pace, the time they spent inside emit is a small part of the outage, and the
    // slow tail of emits stays near the tail before it (a generous factor, with a floor of a
    // hundredth of the outage so a preempted thread on a loaded machine does not count).
    let outage = outage_to - outage_from;
    assert!(!before.is_empty() && !during.is_empty());
    let (p99_before, p99_during) = (
        percentile(before.clone(), 0.99),
        percentile(during.clone(), 0.99),
    );
    let in_emit: Duration = during.iter().sum();
    assert!(
        during.len() as u64 >= RATE * outage.as_millis() as u64 / 1000 / 2,
        "only {} emits during a {outage:?} outage at {RATE}/s: the agents were held up",
        during.len()
    );
    assert!(
        in_emit < outage / 2,
        "agents spent {in_emit:?} inside emit during a {outage:?} outage"
    );
    assert!(
        p99_during <= (p99_before * 20).max(outage / 100),
        "emit p99 during the outage {p99_during:?} against {p99_before:?} before it"
    );

    // Every event is accounted for, exactly.
    assert_eq!(
        emitted,
        s.delivered + s.lost() + queue_dropped + runner_failed + r.undelivered,
        "emitted = delivered + dropped must hold"
    );
    // The outage was longer than the buffer: something was shed, at the queue, not by
    // making agents wait.
    assert!(
        queue_dropped + runner_failed > 0,
        "the outage never filled the buffer"
    );
    assert!(s.retries > 0 && s.requests_failed_retryable > 0);
    // What the exporter held when the receiver came back arrived: nothing it took was given
    // up, rejected or left at shutdown.
    let held = held_at_recovery.unwrap();
    assert!(held > 0, "nothing was held during the outage");
    assert_eq!(
        (s.gave_up, s.rejected, s.dropped_shutdown, s.held_events),
        (0, 0, 0, 0)
    );
    assert_eq!(s.received, s.delivered);
    // The receiver got exactly that: one span per RPC.
    assert_eq!(receiver.spans(), s.delivered);
    assert_eq!(receiver.log_records(), 0);
}
