//! Group `runtime`: what an agent costs.
//!
//! The agent is the crate's example [`Counter`]; nobody is subscribed to the bus, so this is
//! the runtime alone. What observing an agent costs it (every sink on, against this baseline
//! in the same run) is measured next to the assembly that runs the sinks:
//! `cargo bench -p sightline-pipeline --bench agent_all_sinks`.
//!
//! - `rpc_roundtrip`: one agent, sequential RPCs that each change and persist its state
//!   (SQLite, WAL); requests per second.
//! - `rpc_many_agents`: 1,000 agents called in parallel (one RPC each per iteration).
//! - `wake_from_hibernation`: an RPC to a hibernated agent (open its database, load its state,
//!   answer).
//!
//! `rpc_roundtrip` runs the agent and its caller on one thread (a current-thread tokio
//! runtime, as a Durable Object's isolate runs an agent); `rpc_many_agents` and
//! `wake_from_hibernation` (which needs the agent's idle timer to run between calls) use a
//! 2-worker runtime.
//!
//! Run: `cargo bench -p sightline-runtime --bench agent` (criterion keeps results under
//! `target/criterion/runtime/`).
//!
//! Results (2 vCPU AMD EPYC shared with other builds, 2026-12-07, two runs; noisy):
//!
//! | case | figure |
//! |---|---|
//! | `rpc_roundtrip` | 41–44 k req/s |
//! | `rpc_many_agents` | 42–58 k req/s (disk-bound) |
//! | `wake_from_hibernation` | 3.0–5.5 ms |

use std::path::PathBuf;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use serde_json::Value;
use sightline_bus::Bus;
use sightline_runtime::examples::Counter;
use sightline_runtime::{Runtime, RuntimeConfig};

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

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio");
    // The sequential case runs the agent and its caller on one thread, as a Durable Object's
    // isolate runs an agent: what is measured is the agent's work, not the hand-offs between
    // two threads (on a 2-core machine those dominate, and any other busy thread stretches
    // them).
    let local = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio");
    let mut g = c.benchmark_group("runtime");
    g.throughput(Throughput::Elements(1));

    // One agent, nobody subscribed.
    {
        let bus = Bus::new();
        let runtime = runtime(&bus, scratch("roundtrip"), 600_000, &local);
        g.bench_function("rpc_roundtrip", |b| {
            b.iter_custom(|iters| sequential(&local, &runtime, iters))
        });
    }
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
}

criterion_group!(benches, bench);
criterion_main!(benches);
