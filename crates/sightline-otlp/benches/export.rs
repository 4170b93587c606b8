//! Group `otlp`: events delivered over OTLP/gRPC to a receiver on loopback (this crate's
//! `receiver` in its counting mode: it parses each request down to its records and counts them
//! without building them, so that the receiver, which shares this machine's two cores, is not
//! what is measured), by Sightline's pipeline (`export_grpc`)
//! and by the OpenTelemetry SDK's path (`sdk_batch_log_processor`: `tracing` events through
//! `opentelemetry-appender-tracing` into `opentelemetry_sdk`'s `BatchLogProcessor` with its
//! default settings and `opentelemetry-otlp`'s tonic exporter), in the same run, same
//! receiver, same events (agent, kind, model, tokens, outcome, duration: 6 attributes; the
//! SDK's field names use `_` for `.`, which `tracing`'s macros cannot take after `name:`).
//!
//! Two measurements per path:
//! - `offered_200k`: 200,000 events/s offered for 5 s from one thread, paced in 1 ms bursts;
//!   delivered and dropped are read off the receiver (for the SDK, which does not count its
//!   drops where a program can read them, dropped = emitted - delivered).
//! - `saturated`: 1,000,000 events offered as fast as one thread can; delivered events per
//!   second from the first emit to the last record arriving. Sightline's sink runs lossless
//!   here (`overflow = "block"`), the SDK has no such mode and drops what its queue cannot
//!   hold.
//!
//! Run: `cargo bench -p sightline-otlp --bench export` (prints the figures; `-- --test` runs a
//! short smoke version). Sightline's path includes the bus, the `otlp` redaction policy, the
//! mapping to spans and logs with semantic conventions and the encoding.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sightline_bus::Bus;
use sightline_event::Outcome;
use sightline_otlp::receiver::Receiver;
use sightline_otlp::{OtlpConfig, OtlpSink, Protocol};
use sightline_sink::{OverflowPolicy, Pipeline, RunnerConfig};

const MODELS: [&str; 4] = ["gpt-4o-mini", "claude-sonnet", "llama-3.1-8b", "gpt-4.1"];

struct Figures {
    emitted: u64,
    delivered: u64,
    secs: f64,
    /// Time spent inside the emit calls, per event.
    emit_ns: f64,
}

impl Figures {
    fn dropped(&self) -> u64 {
        self.emitted - self.delivered
    }
    fn rate(&self) -> f64 {
        self.delivered as f64 / self.secs
    }
}

/// Calls `emit(i)` `total` times at `per_sec` (0: as fast as possible); returns the time
/// spent inside the calls, per call, in nanoseconds.
fn offer(total: u64, per_sec: u64, mut emit: impl FnMut(u64)) -> f64 {
    let start = Instant::now();
    let burst = (per_sec / 1000).max(1);
    let mut i = 0;
    let mut busy = Duration::ZERO;
    while i < total {
        if let Some(us) = (i * 1_000_000).checked_div(per_sec) {
            let due = start + Duration::from_micros(us);
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
            let t = Instant::now();
            for _ in 0..burst.min(total - i) {
                emit(i);
                i += 1;
            }
            busy += t.elapsed();
        } else {
            emit(i);
            i += 1;
        }
    }
    if per_sec == 0 {
        busy = start.elapsed();
    }
    busy.as_nanos() as f64 / total.max(1) as f64
}

fn wait_for(receiver: &Receiver, base: u64, want: u64, quiet: Duration) -> Instant {
    let mut last = receiver.log_records() + receiver.spans();
    let mut last_change = Instant::now();
    loop {
        let n = receiver.log_records() + receiver.spans() - base;
        if n >= want {
            return Instant::now();
        }
        std::thread::sleep(Duration::from_millis(2));
        let now_n = receiver.log_records() + receiver.spans();
        if now_n != last {
            last = now_n;
            last_change = Instant::now();
        } else if last_change.elapsed() > quiet {
            return last_change;
        }
    }
}

fn sightline(receiver: &Receiver, total: u64, per_sec: u64, lossless: bool) -> Figures {
    let bus = Bus::new();
    let mut pipeline = Pipeline::new(bus.clone()).expect("pipeline");
    let config = OtlpConfig {
        endpoint: Some(receiver.grpc_url()),
        protocol: Some(Protocol::Grpc),
        service_name: Some("bench".into()),
        // Every event a log record: the same signal as the SDK path.
        traces_enabled: false,
        ..Default::default()
    };
    let sink = OtlpSink::new(&config).expect("sink");
    let stats = sink.stats_handle();
    let runner = RunnerConfig {
        policy: "otlp".into(),
        queue_capacity: 65_536,
        batch_max_events: 4096,
        overflow: if lossless {
            OverflowPolicy::Block
        } else {
            OverflowPolicy::DropNewest
        },
        block_timeout_ms: 60_000,
        ..Default::default()
    };
    pipeline.add("otlp", Box::new(sink), runner).expect("add");
    let agents: Vec<_> = (0..64)
        .map(|i| bus.emitter("ResearchAgent", format!("agent-{i}")))
        .collect();
    let base = receiver.log_records() + receiver.spans();
    let start = Instant::now();
    let emit_ns = offer(total, per_sec, |i| {
        let a = &agents[(i % 64) as usize];
        a.emit_with(|m| {
            m.outcome = Some(Outcome::Ok);
            m.duration_ns = Some(400_000_000 + (i & 1023));
            sightline_event::ModelCall {
                model: MODELS[(i % 4) as usize].into(),
                provider: "openai".into(),
                input_tokens: 812 + (i & 63),
                output_tokens: 164,
                finish_reason: None,
                error: None,
            }
        });
    });
    let end = wait_for(receiver, base, total, Duration::from_secs(3));
    let reports = pipeline.shutdown(Duration::from_secs(30));
    stats.wait_idle(Duration::from_secs(10));
    let s = stats.stats();
    let bus_dropped: u64 = reports.iter().map(|r| r.stats.dropped.total()).sum();
    let delivered = receiver.log_records() + receiver.spans() - base;
    assert_eq!(
        s.delivered, delivered,
        "the exporter's count and the receiver's differ"
    );
    assert_eq!(
        total,
        s.delivered + s.lost() + bus_dropped,
        "emitted = delivered + dropped must hold: {s:?}, bus dropped {bus_dropped}"
    );
    Figures {
        emitted: total,
        delivered,
        secs: (end - start).as_secs_f64(),
        emit_ns,
    }
}

fn sdk(rt: &tokio::runtime::Runtime, receiver: &Receiver, total: u64, per_sec: u64) -> Figures {
    use opentelemetry_appender_tracing::layer::OpenTelemetryTracingBridge;
    use opentelemetry_otlp::WithExportConfig;
    use tracing_subscriber::prelude::*;
    let exporter = {
        let _g = rt.enter();
        opentelemetry_otlp::LogExporter::builder()
            .with_tonic()
            .with_endpoint(receiver.grpc_url())
            .build()
            .expect("otlp exporter")
    };
    let provider = opentelemetry_sdk::logs::SdkLoggerProvider::builder()
        .with_resource(
            opentelemetry_sdk::Resource::builder()
                .with_service_name("bench")
                .build(),
        )
        .with_batch_exporter(exporter)
        .build();
    let subscriber =
        tracing_subscriber::registry().with(OpenTelemetryTracingBridge::new(&provider));
    let base = receiver.log_records() + receiver.spans();
    let start = Instant::now();
    let emit_ns = tracing::subscriber::with_default(subscriber, || {
        offer(total, per_sec, |i| {
            tracing::info!(
                name: "model:call",
                target: "sightline",
                gen_ai_agent_name = "ResearchAgent",
                session_id = (i % 64),
                gen_ai_request_model = MODELS[(i % 4) as usize],
                gen_ai_usage_input_tokens = 812 + (i & 63),
                sightline_outcome = "ok",
                sightline_duration_ns = 400_000_000 + (i & 1023),
            );
        })
    });
    let end = wait_for(receiver, base, total, Duration::from_secs(3));
    let _ = provider.shutdown();
    let delivered = receiver.log_records() + receiver.spans() - base;
    Figures {
        emitted: total,
        delivered,
        secs: (end - start).as_secs_f64(),
        emit_ns,
    }
}

/// Nanoseconds per event to map and encode a typical `model:call` as a log record and a span
/// (what the sink's worker does per event), over `n` events.
fn encode_cost(n: u64) -> (f64, f64) {
    let mapper = sightline_otlp::map::Mapper {
        traces_enabled: true,
        capture_content: false,
    };
    let mut e = sightline_event::Event::new(
        sightline_event::AgentRef::new("ResearchAgent", "agent-7"),
        1,
        sightline_event::ModelCall {
            model: "gpt-4o-mini".into(),
            provider: "openai".into(),
            input_tokens: 812,
            output_tokens: 164,
            finish_reason: Some("stop".into()),
            error: None,
        },
    );
    e.set_trace(sightline_event::TraceContext::new_root());
    e.set_outcome(Outcome::Ok);
    e.duration_ns = Some(400_000_000);
    let mut buf = Vec::with_capacity(1024);
    let mut time = |f: &dyn Fn(&mut Vec<u8>)| {
        let start = Instant::now();
        for _ in 0..n {
            buf.clear();
            f(&mut buf);
            std::hint::black_box(&buf);
        }
        start.elapsed().as_nanos() as f64 / n as f64
    };
    let log = time(&|b| mapper.encode_log(&e, b));
    let span = time(&|b| mapper.encode_span(&e, b));
    (log, span)
}

fn main() {
    let test = std::env::args().any(|a| a == "--test");
    let (offered_total, saturated_total) = if test {
        (20_000, 50_000)
    } else {
        (1_000_000, 1_000_000)
    };
    let receiver = Arc::new(Receiver::start_counting().expect("receiver"));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");

    if std::env::var_os("OTLP_BENCH_ENCODE").is_some() {
        let (log_ns, span_ns) = encode_cost(5_000_000);
        println!("otlp/encode: log record {log_ns:.0} ns, span {span_ns:.0} ns");
        return;
    }
    // `OTLP_BENCH_PROFILE=1` runs only Sightline's saturated case (for `perf record`).
    if std::env::var_os("OTLP_BENCH_PROFILE").is_some() {
        let f = sightline(&receiver, saturated_total, 0, true);
        println!(
            "otlp/export_grpc/saturated {:.0} delivered events/s",
            f.rate()
        );
        return;
    }
    let (log_ns, span_ns) = encode_cost(if test { 10_000 } else { 1_000_000 });
    println!(
        "otlp/encode: a model:call mapped and encoded: log record {log_ns:.0} ns, span {span_ns:.0} ns"
    );
    println!("otlp: gRPC to a loopback counting receiver");
    let ours = sightline(&receiver, offered_total, 200_000, false);
    let theirs = sdk(&rt, &receiver, offered_total, 200_000);
    for (name, f) in [
        ("otlp/export_grpc/offered_200k", &ours),
        ("otlp/sdk_batch_log_processor/offered_200k", &theirs),
    ] {
        println!(
            "{name:<44} emitted {:>9}  delivered {:>9}  dropped {:>9}  emit {:>6.0} ns/event",
            f.emitted,
            f.delivered,
            f.dropped(),
            f.emit_ns
        );
    }
    let ours = sightline(&receiver, saturated_total, 0, true);
    let theirs = sdk(&rt, &receiver, saturated_total, 0);
    for (name, f) in [
        ("otlp/export_grpc/saturated", &ours),
        ("otlp/sdk_batch_log_processor/saturated", &theirs),
    ] {
        println!(
            "{name:<44} emitted {:>9}  delivered {:>9}  dropped {:>9}  {:>10.0} delivered events/s",
            f.emitted,
            f.delivered,
            f.dropped(),
            f.rate()
        );
    }
    println!(
        "otlp/export_grpc vs sdk_batch_log_processor: {:.2}x delivered events/s",
        ours.rate() / theirs.rate()
    );
}
