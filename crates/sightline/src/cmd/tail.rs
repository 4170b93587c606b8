//! `sightline tail`: the latest matching events, then (with -f) new ones as they are written.

use std::collections::HashSet;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use sightline_archive::Follower;
use sightline_pipeline::Config;
use sightline_query::session;

use super::read::{print_event, ReadArgs};

/// Flags of `sightline tail`.
#[derive(Debug, clap::Args)]
pub struct TailArgs {
    #[command(flatten)]
    read: ReadArgs,
    /// Keep following: print events as they are written.
    #[arg(short, long)]
    follow: bool,
    /// How many of the latest matching events to print first.
    #[arg(short = 'n', long, default_value_t = 10)]
    lines: usize,
    /// With --follow: how often to look for new events, in milliseconds.
    #[arg(long, default_value_t = 250, value_name = "MS")]
    poll_ms: u64,
}

/// `sightline tail`: the latest matching events, then (with -f) new ones as they are written.
pub fn run(config: &Config, data_dir: &Path, args: TailArgs) -> anyhow::Result<ExitCode> {
    let query = args.read.query()?;
    let dir = args.read.dir(config, data_dir);
    let (format, paint) = (args.read.format, args.read.paint());
    let mut out = std::io::stdout().lock();
    // Start following before reading the backlog, so nothing written in between is missed;
    // events printed from the backlog are skipped when the follower sees them again.
    let mut follower = if args.follow {
        Some(Follower::at_end(&dir)?)
    } else {
        None
    };
    let (_, archive) = args.read.open(config, data_dir)?;
    let last = session::latest(&archive, &query, args.lines)?;
    let printed: HashSet<_> = last.iter().map(|e| e.id).collect();
    for e in &last {
        print_event(&mut out, e, format, paint)?;
    }
    out.flush()?;
    let Some(follower) = follower.as_mut() else {
        return Ok(ExitCode::SUCCESS);
    };
    loop {
        let mut failed = None;
        follower.poll(&query, |e| {
            if !printed.contains(&e.id) && failed.is_none() {
                failed = print_event(&mut out, &e, format, paint).err();
            }
        })?;
        if let Some(e) = failed {
            // A closed pipe (`| head`) ends the follow quietly.
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                return Ok(ExitCode::SUCCESS);
            }
            return Err(e.into());
        }
        out.flush()?;
        std::thread::sleep(Duration::from_millis(args.poll_ms.max(10)));
    }
}
