//! A collector that answers with a non-retryable status (gRPC `INVALID_ARGUMENT`, HTTP 400)
//! gets each request once: the events are counted as rejected, nothing is retried, and the
//! pipeline moves on. A retryable status with a `RetryInfo` delay (gRPC) or a `Retry-After`
//! header (HTTP 503) is, by contrast, retried no sooner than asked and then delivered.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use sightline_event::StateUpdate;
use sightline_otlp::receiver::{Mode, Receiver};
use sightline_otlp::{OtlpConfig, OtlpStatsHandle, Protocol};
use sightline_sink::Pipeline;
use sightline_tests::otlp::{lossless_runner, otlp_pipeline};

fn run(receiver: &Receiver, protocol: Protocol, n: u64) -> (OtlpStatsHandle, Pipeline) {
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
    let p = otlp_pipeline(&config, &BTreeMap::new(), lossless_runner());
    let agent = p.bus.emitter("Support", "t-1");
    for v in 0..n {
        agent.emit(|| StateUpdate {
            version: v,
            ..Default::default()
        });
    }
    p.pipeline.flush(Duration::from_secs(10));
    (p.stats, p.pipeline)
}

/// The receiver refuses with a retryable status asking for `delay`, then accepts: the
/// events are delivered, no sooner than asked.
fn retried_no_sooner_than_asked(protocol: Protocol, delay: Duration) {
    let receiver = Receiver::start(false).unwrap();
    receiver.set_mode(Mode::Unavailable(Some(delay)));
    let started = Instant::now();
    let (stats, pipeline) = run(&receiver, protocol, 50);
    while receiver.refused() == 0 {
        std::thread::sleep(Duration::from_millis(5));
    }
    receiver.set_mode(Mode::Accept);
    assert!(stats.wait_idle(Duration::from_secs(20)));
    let s = stats.stats();
    assert_eq!((s.delivered, s.rejected, s.gave_up), (50, 0, 0), "{s:?}");
    assert!(s.retries >= 1);
    assert!(
        started.elapsed() >= delay,
        "{protocol:?}: the retry came sooner than the receiver asked"
    );
    assert_eq!(receiver.log_records(), 50);
    pipeline.shutdown(Duration::from_secs(5));
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

    // gRPC UNAVAILABLE with RetryInfo (600 ms); HTTP 503 with Retry-After: 1.
    retried_no_sooner_than_asked(Protocol::Grpc, Duration::from_millis(600));
    retried_no_sooner_than_asked(Protocol::HttpProtobuf, Duration::from_secs(1));
}
