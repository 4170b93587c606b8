//! A collector that answers with a non-retryable status (gRPC `INVALID_ARGUMENT`, HTTP 400)
//! gets each request once: the events are counted as rejected, nothing is retried, and the
//! pipeline moves on. A retryable status with a `RetryInfo` delay (gRPC) or a `Retry-After`
//! header (HTTP 503) is, by contrast, retried no sooner than asked and then delivered.

use std::time::{Duration, Instant};

use sightline_bus::Bus;
use sightline_event::StateUpdate;
use sightline_otlp::receiver::{Mode, Receiver};
use sightline_otlp::{OtlpConfig, OtlpSink, OtlpStatsHandle, Protocol};
use sightline_sink::{OverflowPolicy, Pipeline, RunnerConfig};

fn run(receiver: &Receiver, protocol: Protocol, n: u64) -> (OtlpStatsHandle, Pipeline) {
    let bus = Bus::new();
    let mut pipeline = Pipeline::new(bus.clone()).unwrap();
    let config = OtlpConfig {
        endpoint: Some(match protocol {
            Protocol::Grpc => receiver.grpc_url(),
            Protocol::HttpProtobuf => receiver.http_url(),
        }),
        protocol: Some(protocol),
        batch_max_events: 100,
        retry_initial_backoff_ms: 10,
        ..Default::default()
    };
    let sink = OtlpSink::new(&config).unwrap();
    let stats = sink.stats_handle();
    let runner = RunnerConfig {
        policy: "otlp".into(),
        overflow: OverflowPolicy::Block,
        ..Default::default()
    };
    pipeline.add("otlp", Box::new(sink), runner).unwrap();
    let agent = bus.emitter("Support", "t-1");
    for v in 0..n {
        agent.emit(|| StateUpdate {
            version: v,
            ..Default::default()
        });
    }
    pipeline.flush(Duration::from_secs(10));
    (stats, pipeline)
}

#[test]
fn a_permanent_otlp_error_is_counted_as_rejected_not_retried() {
    for protocol in [Protocol::Grpc, Protocol::HttpProtobuf] {
        let receiver = Receiver::start(false).unwrap();
        receiver.set_mode(Mode::Reject);
        let (stats, pipeline) = run(&receiver, protocol, 1000);
        assert!(stats.wait_idle(Duration::from_secs(20)));
        let s = stats.stats();
        assert_eq!(
            (s.received, s.rejected, s.delivered),
            (1000, 1000, 0),
            "{s:?}"
        );
        assert_eq!(s.retries, 0, "a permanent error was retried: {s:?}");
        assert_eq!(s.requests_failed_permanent, receiver.refused());
        assert!(s.requests_failed_permanent >= 10);
        assert!(s
            .last_error
            .as_deref()
            .unwrap_or("")
            .contains("logs export"));
        // Nothing is left to retry later either.
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(receiver.refused(), s.requests_failed_permanent);
        pipeline.shutdown(Duration::from_secs(5));
    }

    // Retryable, with the server asking for 600 ms: retried after that, then delivered.
    let receiver = Receiver::start(false).unwrap();
    receiver.set_mode(Mode::Unavailable(Some(Duration::from_millis(600))));
    let started = Instant::now();
    let (stats, pipeline) = run(&receiver, Protocol::Grpc, 50);
    while receiver.refused() == 0 {
        std::thread::sleep(Duration::from_millis(5));
    }
    receiver.set_mode(Mode::Accept);
    assert!(stats.wait_idle(Duration::from_secs(20)));
    let s = stats.stats();
    assert_eq!((s.delivered, s.rejected, s.gave_up), (50, 0, 0), "{s:?}");
    assert!(s.retries >= 1);
    assert!(
        started.elapsed() >= Duration::from_millis(600),
        "the retry came sooner than RetryInfo asked"
    );
    assert_eq!(receiver.log_records(), 50);
    pipeline.shutdown(Duration::from_secs(5));

    // The same over HTTP: 503 with Retry-After: 1.
    let receiver = Receiver::start(false).unwrap();
    receiver.set_mode(Mode::Unavailable(Some(Duration::from_secs(1))));
    let started = Instant::now();
    let (stats, pipeline) = run(&receiver, Protocol::HttpProtobuf, 50);
    while receiver.refused() == 0 {
        std::thread::sleep(Duration::from_millis(5));
    }
    receiver.set_mode(Mode::Accept);
    assert!(stats.wait_idle(Duration::from_secs(20)));
    let s = stats.stats();
    assert_eq!((s.delivered, s.rejected, s.gave_up), (50, 0, 0), "{s:?}");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "the retry came sooner than Retry-After asked"
    );
    pipeline.shutdown(Duration::from_secs(5));
}
