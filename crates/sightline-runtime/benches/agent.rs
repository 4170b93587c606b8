//! Group `runtime`: what an agent costs, and what observing it costs the agent.
//!
//! - `rpc_roundtrip`: one agent, sequential RPCs that each change and persist its state
//!   (SQLite, WAL), with a tally sink subscribed; requests per second.
//! - `rpc_many_agents`: 1,000 agents called in parallel (one RPC each per iteration).
//! - `wake_from_hibernation`: an RPC to a hibernated agent (open its database, load its state,
//!   answer).
//!
//! The sequential cases run the agent and its caller on one thread (a current-thread tokio
//! runtime, as a Durable Object's isolate runs an agent); the sinks run on their own threads;
//! `rpc_many_agents` and `wake_from_hibernation` (which needs the agent's idle timer to run
//! between calls) use a 2-worker runtime.
//! - `rpc_roundtrip_unsubscribed` vs `rpc_roundtrip_all_sinks`: the same RPCs with nobody
//!   listening, and with the full pipeline (tally, archive, Prometheus metrics, OTLP to a
//!   loopback receiver) subscribed to every event.
//!
//! Run: `cargo bench -p sightline-runtime --bench agent` (criterion keeps results under
//! `target/criterion/runtime/`). At the end it prints what observing costs the agent, two
//! ways: requests per second (wall clock: on a small machine the sinks' threads compete with
//! the agent for the same cores), and the CPU time the agent side spends per request (its
//! tokio workers and the calling thread, read from their thread CPU clocks: the work the
//! agent does itself, emitting included, without the sinks' own threads).

// Two libc calls read other threads' CPU clocks (pthread_getcpuclockid, clock_gettime); std
// has no safe way to do it. Bench code only.
#![allow(unsafe_code)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use serde_json::{json, Value};
use sightline_bus::Bus;
use sightline_runtime::{Agent, Ctx, RpcError, Runtime, RuntimeConfig};
use sightline_sink::{Pipeline, RunnerConfig, TallySink};

struct Counter;

impl Agent for Counter {
    async fn on_rpc(
        &mut self,
        ctx: &mut Ctx,
        method: &str,
        _args: Value,
    ) -> Result<Value, RpcError> {
        match method {
            "increment" => {
                let n = ctx.state()["n"].as_u64().unwrap_or(0) + 1;
                ctx.set_state(json!({ "n": n, "last": "increment" }))
                    .map_err(|e| RpcError::new("StateError", e.to_string()))?;
                Ok(json!(n))
            }
            _ => Err(RpcError::new("NotFound", method)),
        }
    }
}

/// The bench's data directories live under one per-process root, removed when it ends.
fn scratch_root() -> PathBuf {
    std::env::temp_dir().join(format!("sightline-bench-{}", std::process::id()))
}

fn scratch(name: &str) -> PathBuf {
    let d = scratch_root().join(name);
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn runtime(bus: &Bus, dir: PathBuf, idle_ms: u64, rt: &tokio::runtime::Runtime) -> Runtime {
    let runtime = Runtime::new(
        bus.clone(),
        RuntimeConfig {
            data_dir: dir,
            idle_hibernate_ms: idle_ms,
            ..Default::default()
        },
        rt.handle().clone(),
    );
    runtime.register("Counter", |_| Counter);
    runtime
}

/// Seconds for `iters` sequential RPCs to one agent.
fn sequential(rt: &tokio::runtime::Runtime, runtime: &Runtime, iters: u64) -> Duration {
    rt.block_on(async {
        let start = Instant::now();
        for _ in 0..iters {
            runtime
                .rpc("Counter", "bench", "increment", Value::Null, None)
                .await
                .expect("rpc");
        }
        start.elapsed()
    })
}

/// `iters` sequential RPCs, adding their wall and agent CPU time to `total`.
fn measured(
    rt: &tokio::runtime::Runtime,
    runtime: &Runtime,
    iters: u64,
    total: &mut Totals,
) -> Duration {
    let cpu0 = agent_cpu();
    let d = sequential(rt, runtime, iters);
    let cpu = agent_cpu().saturating_sub(cpu0);
    total.wall += d;
    total.cpu += cpu;
    total.requests += iters;
    d
}

fn all_sinks(bus: &Bus, dir: &std::path::Path) -> (Pipeline, sightline_otlp::receiver::Receiver) {
    let mut pipeline = Pipeline::new(bus.clone()).expect("pipeline");
    let receiver = sightline_otlp::receiver::Receiver::start_counting().expect("receiver");
    let archive = sightline_archive::ArchiveWriter::open(
        dir.join("archive"),
        sightline_archive::ArchiveConfig::default(),
    )
    .expect("archive");
    let registry = prometheus::Registry::new();
    let metrics =
        sightline_prometheus::EventMetrics::new(&registry, 2000, 100_000).expect("metrics");
    let otlp = sightline_otlp::OtlpSink::new(&sightline_otlp::OtlpConfig {
        endpoint: Some(receiver.grpc_url()),
        ..Default::default()
    })
    .expect("otlp");
    let runner = |policy: &str| RunnerConfig {
        policy: policy.into(),
        queue_capacity: 65536,
        batch_max_events: 4096,
        ..Default::default()
    };
    let (tally, _) = TallySink::new();
    pipeline
        .add_group(vec![
            ("tally".into(), Box::new(tally), runner("none")),
            ("archive".into(), Box::new(archive), runner("archive")),
            ("prometheus".into(), Box::new(metrics), runner("metrics")),
            ("otlp".into(), Box::new(otlp), runner("otlp")),
        ])
        .expect("sinks");
    (pipeline, receiver)
}

/// The CPU clocks of the agent side's threads (the bench's tokio workers).
static AGENT_CLOCKS: std::sync::Mutex<Vec<libc::clockid_t>> = std::sync::Mutex::new(Vec::new());

fn register_cpu_clock() {
    let mut clock: libc::clockid_t = 0;
    // SAFETY: pthread_self is always valid for the calling thread; clock is a valid out-pointer.
    if unsafe { libc::pthread_getcpuclockid(libc::pthread_self(), &mut clock) } == 0 {
        if let Ok(mut clocks) = AGENT_CLOCKS.lock() {
            clocks.push(clock);
        }
    }
}

fn clock_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid out-pointer; an invalid clock only makes the call fail.
    if unsafe { libc::clock_gettime(clock, &mut ts) } != 0 {
        return 0;
    }
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// CPU time so far of the agent side: the tokio workers plus the calling (bench) thread.
fn agent_cpu() -> Duration {
    let workers: u64 = AGENT_CLOCKS
        .lock()
        .map(|c| c.iter().map(|&k| clock_ns(k)).sum())
        .unwrap_or(0);
    Duration::from_nanos(workers + clock_ns(libc::CLOCK_THREAD_CPUTIME_ID))
}

/// Wall time, agent CPU time and requests, summed over a case's iterations.
#[derive(Default, Clone, Copy)]
struct Totals {
    wall: Duration,
    cpu: Duration,
    requests: u64,
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .on_thread_start(register_cpu_clock)
        .enable_all()
        .build()
        .expect("tokio");
    // The sequential cases run the agent and its caller on one thread, as a Durable Object's
    // isolate runs an agent: what is measured is the agent's work, not the hand-offs between
    // two threads (on a 2-core machine those dominate, and any other busy thread, a sink's
    // included, stretches them).
    let local = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio");
    let mut g = c.benchmark_group("runtime");
    g.throughput(Throughput::Elements(1));

    // One agent, a tally subscribed.
    {
        let bus = Bus::new();
        let mut pipeline = Pipeline::new(bus.clone()).expect("pipeline");
        let (tally, _) = TallySink::new();
        pipeline
            .add("tally", Box::new(tally), RunnerConfig::default())
            .expect("tally");
        let runtime = runtime(&bus, scratch("roundtrip"), 600_000, &local);
        g.bench_function("rpc_roundtrip", |b| {
            b.iter_custom(|iters| sequential(&local, &runtime, iters))
        });
        pipeline.shutdown(Duration::from_secs(10));
    }

    // Unsubscribed vs every sink.
    let unsubscribed = {
        let bus = Bus::new();
        let runtime = runtime(&bus, scratch("unsubscribed"), 600_000, &local);
        let mut total = Totals::default();
        g.bench_function("rpc_roundtrip_unsubscribed", |b| {
            b.iter_custom(|iters| measured(&local, &runtime, iters, &mut total))
        });
        total
    };
    let with_sinks = {
        let bus = Bus::new();
        let dir = scratch("all-sinks");
        let (pipeline, _receiver) = all_sinks(&bus, &dir);
        let runtime = runtime(&bus, dir.join("agents"), 600_000, &local);
        let mut total = Totals::default();
        g.bench_function("rpc_roundtrip_all_sinks", |b| {
            b.iter_custom(|iters| measured(&local, &runtime, iters, &mut total))
        });
        pipeline.shutdown(Duration::from_secs(30));
        total
    };

    // 1,000 agents in parallel.
    {
        let bus = Bus::new();
        let runtime = runtime(&bus, scratch("many"), 600_000, &rt);
        g.throughput(Throughput::Elements(1000));
        g.bench_function("rpc_many_agents", |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        let calls: Vec<_> = (0..1000)
                            .map(|i| {
                                let r = runtime.clone();
                                tokio::spawn(async move {
                                    r.rpc(
                                        "Counter",
                                        &format!("agent-{i}"),
                                        "increment",
                                        Value::Null,
                                        None,
                                    )
                                    .await
                                })
                            })
                            .collect();
                        for c in calls {
                            c.await.expect("join").expect("rpc");
                        }
                    }
                    start.elapsed()
                })
            })
        });
        g.throughput(Throughput::Elements(1));
    }

    // Wake from hibernation: the agent hibernates after 1 ms idle, so every call wakes it.
    {
        let bus = Bus::new();
        let runtime = runtime(&bus, scratch("wake"), 1, &rt);
        g.bench_function("wake_from_hibernation", |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    // Wait until it is hibernated.
                    while runtime.active() > 0 {
                        std::thread::sleep(Duration::from_micros(200));
                    }
                    total += sequential(&rt, &runtime, 1);
                }
                total
            })
        });
    }
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
        "runtime: wall clock: rpc_roundtrip_unsubscribed {:.0} req/s, rpc_roundtrip_all_sinks {:.0} req/s ({:+.1}% time per request)",
        1.0 / u,
        1.0 / a,
        (a / u - 1.0) * 100.0
    );
    let (u, a) = (
        per(unsubscribed.cpu, unsubscribed.requests),
        per(with_sinks.cpu, with_sinks.requests),
    );
    println!(
        "runtime: agent CPU per request: unsubscribed {:.2} µs, all sinks {:.2} µs: observability costs the agent {:+.1}%",
        u * 1e6,
        a * 1e6,
        (a / u - 1.0) * 100.0
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
