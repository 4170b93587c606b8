//! # sightline: the command line
//!
//! `sightline demo` runs a synthetic fleet of agents through the whole pipeline on embedded
//! defaults, archive included; `tail`, `session`, `stats`, `verify` and `replay` read the
//! archive; `ingest` runs stdin (Sightline JSONL or Cloudflare Tail Worker events) through the
//! pipeline; `schema` prints the JSON Schema of the event form; `check-config` validates a
//! configuration file; `redact` applies a policy to JSONL. Global flags every subcommand
//! shares: `--config <file>` (or `SIGHTLINE_CONFIG`) and `--data-dir <dir>` (or
//! `SIGHTLINE_DATA_DIR`).
//!
//! ```text
//! sightline demo --duration 10 --agents 200 --rate 20000
//! sightline session SupportAgent/ticket-4411 --since 1h
//! sightline session SupportAgent/ticket-4411 --at 120
//! sightline tail -f --kind schedule:error
//! sightline stats --format json
//! sightline verify
//! sightline replay --to archive --since 2026-11-23T22:00:00Z
//! sightline ingest --skip-invalid < tail-worker-events.jsonl
//! sightline schema > config/event.schema.json
//! sightline check-config --config config/sightline.toml
//! sightline redact --policy archive < events.jsonl > shareable.jsonl
//! ```

mod cmd;
mod render;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use sightline_pipeline::Config;

use cmd::{
    check_config, demo, ingest, mcp_server, redact, replay, schema, session, stats, tail, verify,
};

/// Observability for stateful AI agents.
#[derive(Debug, Parser)]
#[command(name = "sightline", version, about, propagate_version = true)]
struct Cli {
    /// Configuration file (TOML). Without it, the embedded defaults apply.
    #[arg(long, global = true, env = "SIGHTLINE_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,

    /// Where the archive and agent state live.
    #[arg(
        long,
        global = true,
        env = "SIGHTLINE_DATA_DIR",
        value_name = "DIR",
        default_value = "sightline-data"
    )]
    data_dir: PathBuf,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a fleet of agents on the reference runtime through the pipeline and summarize
    /// what it saw.
    Demo(demo::DemoArgs),
    /// Serve the demo's support tools as an MCP server on stdin/stdout (the demo's agents
    /// start it as a child process).
    McpServer,
    /// Print the JSON Schema of one event line.
    Schema,
    /// Validate the configuration and print the effective settings.
    CheckConfig,
    /// Redact Sightline JSONL (stdin or a file) under a named policy, to stdout.
    Redact(redact::RedactArgs),
    /// Print the latest archived events, and with -f follow new ones.
    Tail(tail::TailArgs),
    /// One agent's timeline from the archive (or, with --at, its state as of an event).
    Session(session::SessionArgs),
    /// Counts by family, outcome and agent class; error rate; top failing schedules.
    Stats(stats::StatsArgs),
    /// Check every archive segment: lines, sequences, manifests, indexes.
    Verify(verify::VerifyArgs),
    /// Re-send archived events through one configured sink (backfill after an outage).
    Replay(replay::ReplayArgs),
    /// Read events from stdin (Sightline JSONL, or Cloudflare Agents observability events as
    /// a Tail Worker receives them) and run them through the configured pipeline.
    Ingest(ingest::IngestArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        // A closed pipe (`sightline session ... | head`) is not an error.
        Err(e)
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) =>
        {
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let config = || Config::load(cli.config.as_deref());
    match cli.command {
        Command::Schema => schema::run(),
        Command::CheckConfig => check_config::run(cli.config.as_deref()),
        Command::Redact(args) => redact::run(config()?, args),
        Command::Demo(args) => demo::run(config()?, args, &cli.data_dir),
        Command::McpServer => mcp_server::run(),
        Command::Tail(args) => tail::run(&config()?, &cli.data_dir, args),
        Command::Session(args) => session::run(&config()?, &cli.data_dir, args),
        Command::Stats(args) => stats::run(&config()?, &cli.data_dir, args),
        Command::Verify(args) => verify::run(&config()?, &cli.data_dir, args),
        Command::Replay(args) => replay::run(&config()?, &cli.data_dir, args),
        Command::Ingest(args) => ingest::run(&config()?, &cli.data_dir, args),
    }
}
