//! Group `pipeline`: what observing an agent with every sink costs the agent.
//!
//! It lives here, not in the runtime crate, because it needs the sinks and the assembly that
//! runs them: the runtime never depends on a sink, and [`assemble`] is what every command
//! runs, so this measures the pipeline a user gets.
//!
//! The agent is the runtime's example `Counter`: one agent, sequential RPCs that each change
//! and persist its state (SQLite, WAL), run with their caller on one thread (a current-thread
//! tokio runtime, as a Durable Object's isolate runs an agent); the sinks run on their own
//! threads.
//!
//! - `rpc_roundtrip_unsubscribed`: the RPCs with nobody listening (the baseline, same run).
//! - `rpc_roundtrip_all_sinks`: the same RPCs with [`assemble`] running every sink of the
//!   embedded default configuration (tally, recent failures, archive, Prometheus metrics)
//!   and OTLP switched on and sent to a loopback receiver; the archive is written to a
//!   temporary directory removed at the end.
//!
//! Run: `cargo bench -p sightline-pipeline --bench agent_all_sinks` (criterion keeps results
//! under `target/criterion/pipeline/`). At the end it prints what observing costs the agent,
//! two ways: requests per second (wall clock: on a small machine the sinks' threads compete
//! with the agent for the same cores), and the CPU time the agent side spends per request
//! (the calling thread, which runs the agent, read from its thread CPU clock: the work the
//! agent does itself, emitting included, without the sinks' own threads).
//!
//! Results (2 vCPU AMD EPYC shared with other builds, 2026-12-07, two runs; noisy):
//!
//! | case | figure |
//! |---|---|
//! | `rpc_roundtrip_unsubscribed` | 42–45 k req/s; agent CPU 17.8–20.4 µs per request |
//! | `rpc_roundtrip_all_sinks` | 26–33 k req/s; agent CPU 19.2–23.5 µs per request |
//! | what observing costs the agent | +7.8–15.3% agent CPU, +43–53% wall clock |

// One libc call reads the calling thread's CPU clock (clock_gettime); std has no safe way to
// do it. Bench code only.
#![allow(unsafe_code)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use serde_json::Value;
use sightline_bus::Bus;
use sightline_pipeline::{assemble, Assembled, Config, Select};
use sightline_runtime::examples::Counter;
use sightline_runtime::{Runtime, RuntimeConfig};

/// The bench's data directories live under one per-process root, removed when it ends.
fn scratch_root() -> PathBuf {
    std::env::temp_dir().join(format!("sightline-pipeline-bench-{}", std::process::id()))
}

fn scratch(name: &str) -> PathBuf {
    let d = scratch_root().join(name);
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn runtime(bus: &Bus, dir: PathBuf, rt: &tokio::runtime::Runtime) -> Runtime {
    let runtime = Runtime::new(
        bus.clone(),
        RuntimeConfig {
            data_dir: dir,
            idle_hibernate_ms: 600_000,
            ..Default::default()
        },
        rt.handle().clone(),
    );
    runtime.register("Counter", |_| Counter);
    runtime
}

/// `iters` sequential RPCs to one agent, adding their wall and agent CPU time to `total`.
fn measured(
    rt: &tokio::runtime::Runtime,
    runtime: &Runtime,
    iters: u64,
    total: &mut Totals,
) -> Duration {
    let cpu0 = thread_cpu();
    let d = rt.block_on(async {
        let start = Instant::now();
        for _ in 0..iters {
            runtime
                .rpc("Counter", "bench", "increment", Value::Null, None)
                .await
                .expect("rpc");
        }
        start.elapsed()
    });
    total.wall += d;
    total.cpu += thread_cpu().saturating_sub(cpu0);
    total.requests += iters;
    d
}

/// Every sink of the embedded default configuration, OTLP included (to `receiver`), on
/// `bus`; the archive under `dir`.
fn all_sinks(bus: &Bus, dir: &Path, receiver: &sightline_otlp::receiver::Receiver) -> Assembled {
    let mut config = Config::load(None).expect("embedded defaults");
    config.archive.enabled = true;
    config.prometheus.enabled = true;
    config.otlp.enabled = true;
    config.otlp.endpoint = Some(receiver.grpc_url());
    let assembled = assemble(&config, dir, bus, Select::All).expect("assemble");
    assert!(
        assembled.tally.is_some()
            && assembled.failures.is_some()
            && assembled.archive.is_some()
            && assembled.metrics.is_some()
            && assembled.otlp.is_some(),
        "every sink runs"
    );
    assembled
}

/// CPU time so far of the calling thread, which runs the agent (a current-thread runtime).
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid out-pointer; CLOCK_THREAD_CPUTIME_ID always exists on Linux.
    if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) } != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Wall time, agent CPU time and requests, summed over a case's iterations.
#[derive(Default, Clone, Copy)]
struct Totals {
    wall: Duration,
    cpu: Duration,
    requests: u64,
}

fn bench(c: &mut Criterion) {
    // The agent and its caller on one thread, as a Durable Object's isolate runs an agent:
    // what is measured is the agent's work, not the hand-offs between two threads (on a
    // 2-core machine those dominate, and any other busy thread, a sink's included, stretches
    // them).
    let local = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio");
    let mut g = c.benchmark_group("pipeline");
    g.throughput(Throughput::Elements(1));

    let unsubscribed = {
        let bus = Bus::new();
        let runtime = runtime(&bus, scratch("unsubscribed"), &local);
        let mut total = Totals::default();
        g.bench_function("rpc_roundtrip_unsubscribed", |b| {
            b.iter_custom(|iters| measured(&local, &runtime, iters, &mut total))
        });
        total
    };
    let (with_sinks, lost) = {
        let bus = Bus::new();
        let dir = scratch("all-sinks");
        let receiver = sightline_otlp::receiver::Receiver::start_counting().expect("receiver");
        let assembled = all_sinks(&bus, &dir, &receiver);
        let runtime = runtime(&bus, dir.join("agents"), &local);
        let mut total = Totals::default();
        g.bench_function("rpc_roundtrip_all_sinks", |b| {
            b.iter_custom(|iters| measured(&local, &runtime, iters, &mut total))
        });
        let finished = assembled.finish(Duration::from_secs(30));
        (total, finished.loss.lost())
    };
    g.finish();
    let _ = std::fs::remove_dir_all(scratch_root());

    if unsubscribed.requests < 1000 || with_sinks.requests < 1000 {
        // `--test`: one iteration each, no figure worth printing.
        return;
    }
    let per = |d: Duration, n: u64| d.as_secs_f64() / n.max(1) as f64;
    let (u, a) = (
        per(unsubscribed.wall, unsubscribed.requests),
        per(with_sinks.wall, with_sinks.requests),
    );
    println!(
        "pipeline: wall clock: rpc_roundtrip_unsubscribed {:.0} req/s, rpc_roundtrip_all_sinks {:.0} req/s ({:+.1}% time per request)",
        1.0 / u,
        1.0 / a,
        (a / u - 1.0) * 100.0
    );
    let (u, a) = (
        per(unsubscribed.cpu, unsubscribed.requests),
        per(with_sinks.cpu, with_sinks.requests),
    );
    println!(
        "pipeline: agent CPU per request: unsubscribed {:.2} µs, all sinks {:.2} µs: observability costs the agent {:+.1}%",
        u * 1e6,
        a * 1e6,
        (a / u - 1.0) * 100.0
    );
    if lost > 0 {
        // The figure flatters the sinks if they dropped events to keep up.
        println!("pipeline: the sinks lost {lost} events (their figure counts less work)");
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
