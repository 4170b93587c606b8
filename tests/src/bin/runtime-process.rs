//! A reference-runtime process for the crash test
//! (`tests/tests/a_killed_runtime_restarts_with_its_schedules_fibers_and_sequences.rs`).
//!
//! `runtime-process <data-dir> setup|resume`: runs the runtime over `<data-dir>/agents` with
//! every event archived to `<data-dir>/archive` (`fsync = "always"`). `setup` gives the agent
//! `Worker/w-1` an MCP server (our `sightline-mcp-server`, over stdio), an every-second cron
//! whose ticks call one of its tools, and starts its long fiber (40 checkpoints, 100 ms apart);
//! `resume` only resumes what the agents' databases hold. Then it prints `ready` and runs
//! until it is killed.

use std::io::Write;
use std::time::Duration;

use anyhow::Context;
use serde_json::{json, Value};
use sightline_archive::{ArchiveConfig, ArchiveWriter, FsyncPolicy};
use sightline_bus::Bus;
use sightline_runtime::{
    Agent, Ctx, Fiber, McpTarget, Recovered, RpcError, Runtime, RuntimeConfig, When,
};
use sightline_sink::{Pipeline, RunnerConfig};

/// Checkpoints of the long fiber.
const STEPS: u64 = 40;

struct Worker;

async fn crunch(ctx: &mut Ctx, mut fiber: Fiber, from: u64) -> Result<(), RpcError> {
    let err = |e: sightline_runtime::StoreError| RpcError::new("StoreError", e.to_string());
    for step in from..=STEPS {
        tokio::time::sleep(Duration::from_millis(100)).await;
        ctx.stash(&mut fiber, &json!({ "done": step }))
            .map_err(err)?;
    }
    ctx.complete_fiber(fiber).map_err(err)
}

impl Agent for Worker {
    async fn on_rpc(
        &mut self,
        ctx: &mut Ctx,
        method: &str,
        _args: Value,
    ) -> Result<Value, RpcError> {
        let err = |e: String| RpcError::new("Error", e);
        match method {
            "setup" => {
                // The MCP server binary sits next to this one (both built by cargo).
                let exe = std::env::current_exe().map_err(|e| err(e.to_string()))?;
                let server = exe.with_file_name("sightline-mcp-server");
                let target = McpTarget::Stdio {
                    command: server.display().to_string(),
                    args: Vec::new(),
                };
                ctx.add_mcp_server("tools", target).await?;
                ctx.schedule(When::Cron("* * * * * *".into()), "tick", Value::Null)
                    .map_err(|e| err(e.to_string()))?;
                let fiber = ctx.start_fiber("crunch").map_err(|e| err(e.to_string()))?;
                crunch(ctx, fiber, 1).await?;
                Ok(Value::Null)
            }
            "tick" => {
                // On the connection restored after a restart.
                ctx.call_mcp_tool("srv_tools", "search_kb", json!({ "query": "tick" }))
                    .await?;
                let n = ctx.state()["ticks"].as_u64().unwrap_or(0) + 1;
                ctx.set_state(json!({ "ticks": n }))
                    .map_err(|e| err(e.to_string()))?;
                Ok(Value::Null)
            }
            other => Err(RpcError::new("NotFound", other)),
        }
    }

    async fn on_fiber_recovered(&mut self, ctx: &mut Ctx, r: Recovered) -> Result<(), RpcError> {
        let done = r
            .stash
            .as_ref()
            .and_then(|s| s["done"].as_u64())
            .unwrap_or(0);
        crunch(ctx, r.fiber, done + 1).await
    }
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    anyhow::ensure!(
        args.len() == 3,
        "usage: runtime-process <data-dir> setup|resume"
    );
    let data = std::path::PathBuf::from(&args[1]);
    let bus = Bus::new();
    let mut pipeline = Pipeline::new(bus.clone())?;
    let archive = ArchiveWriter::open(
        data.join("archive"),
        ArchiveConfig {
            fsync: FsyncPolicy::Always,
            ..ArchiveConfig::default()
        },
    )?;
    pipeline.add(
        "archive",
        Box::new(archive),
        RunnerConfig {
            policy: "none".into(),
            flush_interval_ms: 20,
            ..RunnerConfig::default()
        },
    )?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let runtime = Runtime::new(
        bus,
        RuntimeConfig {
            data_dir: data.join("agents"),
            ..RuntimeConfig::default()
        },
        rt.handle().clone(),
    );
    runtime.register("Worker", |_| Worker);
    runtime.resume().context("resume")?;
    if args[2] == "setup" {
        let r = runtime.clone();
        rt.spawn(async move { r.rpc("Worker", "w-1", "setup", Value::Null, None).await });
    }
    println!("ready");
    std::io::stdout().flush()?;
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}
