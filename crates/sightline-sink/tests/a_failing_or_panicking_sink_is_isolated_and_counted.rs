//! A sink that panics or errors is isolated: the other sinks and the agents keep going, and
//! every event it did not take is counted by reason.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sightline_bus::Bus;
use sightline_event::{Event, Rpc};
use sightline_sink::{FailReason, MemorySink, Pipeline, RunnerConfig, Sink, SinkError, SinkState};

mod common;
use common::{wait_until, Gate};

struct Panicker;
impl Sink for Panicker {
    fn write(&mut self, _: &[Event]) -> Result<(), SinkError> {
        panic!("boom");
    }
}

struct Flaky {
    failures_left: Arc<AtomicU32>,
}
impl Sink for Flaky {
    fn write(&mut self, _: &[Event]) -> Result<(), SinkError> {
        if self.failures_left.load(Ordering::SeqCst) > 0 {
            self.failures_left.fetch_sub(1, Ordering::SeqCst);
            return Err(SinkError::Transient("collector restarting".into()));
        }
        Ok(())
    }
}

struct Rejecting;
impl Sink for Rejecting {
    fn write(&mut self, _: &[Event]) -> Result<(), SinkError> {
        Err(SinkError::Permanent("schema rejected".into()))
    }
}

fn fast() -> RunnerConfig {
    RunnerConfig {
        flush_interval_ms: 10,
        retry_backoff_ms: 1,
        batch_max_events: 10,
        ..RunnerConfig::default()
    }
}

fn emit(bus: &Bus, n: usize) {
    let e = bus.emitter("Support", "t1");
    for _ in 0..n {
        e.emit(|| Rpc {
            method: "m".into(),
            ..Default::default()
        });
    }
}

#[test]
fn a_panicking_sink_dies_alone_and_its_events_are_counted() {
    let prev = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {})); // keep the test output readable
    let bus = Bus::new();
    let mut p = Pipeline::new(bus.clone()).unwrap();
    let (mem, memory) = MemorySink::new(10_000);
    p.add("memory", Box::new(mem), fast()).unwrap();
    p.add("panicker", Box::new(Panicker), fast()).unwrap();
    emit(&bus, 100);
    let panicker = || {
        p.stats()
            .into_iter()
            .find(|s| s.name == "panicker")
            .unwrap()
    };
    wait_until(|| memory.len() == 100);
    // Received first, counted as failed right after: wait for both (and for the death).
    wait_until(|| {
        let s = panicker();
        s.state == SinkState::Dead
            && s.failed(FailReason::Panic) + s.failed(FailReason::SinkDead) == 100
    });
    let s = panicker();
    assert_eq!(s.received, 100);
    assert_eq!(s.state, SinkState::Dead);
    assert_eq!(s.panics, 3);
    assert_eq!(s.written, 0);
    assert_eq!(
        s.failed(FailReason::Panic) + s.failed(FailReason::SinkDead),
        100
    );
    assert!(s.last_error.unwrap().contains("boom"));
    let reports = p.shutdown(Duration::from_secs(5));
    assert_eq!(reports.len(), 2);
    assert!(reports.iter().all(|r| r.finished), "{reports:?}");
    std::panic::set_hook(prev);
}

#[test]
fn transient_errors_are_retried_and_permanent_ones_counted() {
    let bus = Bus::new();
    let mut p = Pipeline::new(bus.clone()).unwrap();
    let left = Arc::new(AtomicU32::new(2));
    p.add(
        "flaky",
        Box::new(Flaky {
            failures_left: left.clone(),
        }),
        fast(),
    )
    .unwrap();
    p.add("rejecting", Box::new(Rejecting), fast()).unwrap();
    emit(&bus, 10);
    let reports = p.shutdown(Duration::from_secs(5));
    let flaky = &reports.iter().find(|r| r.name == "flaky").unwrap().stats;
    assert_eq!(flaky.written, 10);
    assert_eq!(flaky.retries, 2);
    assert_eq!(flaky.lost(), 0);
    let rejecting = &reports
        .iter()
        .find(|r| r.name == "rejecting")
        .unwrap()
        .stats;
    assert_eq!(rejecting.written, 0);
    assert_eq!(rejecting.failed(FailReason::Error), 10);
    assert_eq!(rejecting.retries, 0);
}

struct Slow;
impl Sink for Slow {
    fn write(&mut self, _: &[Event]) -> Result<(), SinkError> {
        std::thread::sleep(Duration::from_millis(100));
        Ok(())
    }
}

#[test]
fn shutdown_respects_its_deadline_and_reports_what_was_not_delivered() {
    let bus = Bus::new();
    let mut p = Pipeline::new(bus.clone()).unwrap();
    let (mem, memory) = MemorySink::new(10_000);
    p.add("memory", Box::new(mem), fast()).unwrap();
    p.add("slow", Box::new(Slow), fast()).unwrap();
    emit(&bus, 500); // 50 batches of 10 at 100 ms each: 5 s of work for the slow sink
                     // The agent finished emitting while the slow sink had barely started.
    assert!(p.stats()[1].written < 500);
    let deadline = Duration::from_millis(1000);
    let started = Instant::now();
    let reports = p.shutdown(deadline);
    let took = started.elapsed();
    // It returned in about its deadline (one write of 100 ms may overrun it), far from the
    // 4 s of work the slow sink still had.
    assert!(
        took < deadline * 2,
        "shutdown took {took:?} for a deadline of {deadline:?}"
    );
    let slow = reports.iter().find(|r| r.name == "slow").unwrap();
    assert!(slow.undelivered > 0);
    assert_eq!(
        slow.stats.written + slow.undelivered,
        500,
        "every event is either written or reported undelivered: {slow:?}"
    );
    assert_eq!(
        slow.stats.failed(FailReason::ShutdownTimeout),
        slow.undelivered
    );
    assert_eq!(memory.len(), 500);
}

#[test]
fn shutdown_does_not_wait_for_a_stuck_sink_and_reports_what_it_still_held() {
    let bus = Bus::new();
    let mut p = Pipeline::new(bus.clone()).unwrap();
    let (mem, memory) = MemorySink::new(10_000);
    let gate = Gate::closed();
    p.add("memory", Box::new(mem), fast()).unwrap();
    p.add("stuck", gate.sink(), fast()).unwrap();
    emit(&bus, 100);
    // The stuck sink's worker is inside its first write, and will not come out.
    wait_until(|| gate.writes_started() == 1);
    let deadline = Duration::from_millis(1000);
    let started = Instant::now();
    let reports = p.shutdown(deadline);
    let took = started.elapsed();
    assert!(
        took < deadline * 2,
        "shutdown took {took:?} for a deadline of {deadline:?}: it waited for the stuck sink"
    );
    assert_eq!(reports.len(), 2);
    let stuck = reports.iter().find(|r| r.name == "stuck").unwrap();
    assert!(!stuck.finished, "{stuck:?}");
    assert_eq!(stuck.stats.written, 0, "{stuck:?}");
    assert!(stuck.undelivered > 0, "{stuck:?}");
    // The batch stuck inside the sink was taken from the queue (received); everything behind
    // it is reported undelivered, and counted as failed by the shutdown's deadline.
    assert_eq!(stuck.stats.received + stuck.undelivered, 100, "{stuck:?}");
    assert_eq!(
        stuck.stats.failed(FailReason::ShutdownTimeout),
        stuck.undelivered
    );
    let healthy = reports.iter().find(|r| r.name == "memory").unwrap();
    assert!(healthy.finished && healthy.undelivered == 0, "{healthy:?}");
    assert_eq!(memory.len(), 100);
    gate.open();
}

#[test]
fn flush_on_request_reaches_the_sink() {
    let bus = Bus::new();
    let mut p = Pipeline::new(bus.clone()).unwrap();
    let (mem, memory) = MemorySink::new(100);
    p.add(
        "memory",
        Box::new(mem),
        RunnerConfig {
            flush_interval_ms: 60_000,
            ..RunnerConfig::default()
        },
    )
    .unwrap();
    emit(&bus, 3);
    assert!(p.flush(Duration::from_secs(5)).is_empty());
    assert_eq!(memory.len(), 3);
    assert!(memory.flushes() >= 1);
}
