//! `sightline replay`: archived events re-sent through one configured sink (a backfill after
//! an outage), losslessly, with what the sink lost reported like every pipeline's.

use std::ops::ControlFlow;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use sightline_bus::Bus;
use sightline_pipeline::{assemble, Config, Select};

use super::read::ReadArgs;
use super::report;
use crate::render;

/// Flags of `sightline replay`.
#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// The sink to send to, by its `[sinks.<name>]` table.
    #[arg(long, value_name = "SINK")]
    to: String,
    #[command(flatten)]
    read: ReadArgs,
}

/// `sightline replay --to SINK`: reads the selection and publishes it to that sink alone.
pub fn run(config: &Config, data_dir: &Path, args: ReplayArgs) -> anyhow::Result<ExitCode> {
    let query = args.read.query()?;
    let (dir, archive) = args.read.open(config, data_dir)?;
    if args.to == "archive" {
        let target = config.archive_dir(data_dir);
        anyhow::ensure!(
            std::fs::canonicalize(&target).ok() != std::fs::canonicalize(&dir).ok(),
            "replaying {} into itself: point --archive (source) or [archive] dir (target) elsewhere",
            dir.display()
        );
    }
    let bus = Bus::new();
    let assembled = assemble(config, data_dir, &bus, Select::Only(&args.to))?;
    let mut batch = Vec::with_capacity(1024);
    let mut read = 0u64;
    archive.scan(&query, |e| {
        read += 1;
        batch.push(e);
        if batch.len() == 1024 {
            bus.publish_batch(batch.drain(..));
        }
        ControlFlow::Continue(())
    })?;
    bus.publish_batch(batch.drain(..));
    let finished = assembled.finish(Duration::from_secs(60));
    eprintln!(
        "replay: {} events read from {}",
        render::thousands(read),
        dir.display()
    );
    report::print_loss(&finished.loss);
    Ok(report::exit_code(finished.loss.lost()))
}
