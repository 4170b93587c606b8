//! `sightline verify`: the archive's own check of every segment, manifest and index, rendered;
//! exit 1 on any problem.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use sightline_archive::verify;
use sightline_pipeline::Config;

use super::read::Format;
use crate::render;

/// Flags of `sightline verify`.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// Archive directory (default: the `[archive] dir` under the data directory).
    #[arg(long, value_name = "DIR")]
    archive: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

/// `sightline verify`: every problem and warning, then a one-line summary.
pub fn run(config: &Config, data_dir: &Path, args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let dir = args
        .archive
        .clone()
        .unwrap_or_else(|| config.archive_dir(data_dir));
    anyhow::ensure!(dir.is_dir(), "no archive at {}", dir.display());
    let report = verify(&dir)?;
    let mut out = std::io::stdout().lock();
    match args.format {
        Format::Json => writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?,
        Format::Text => {
            for p in &report.problems {
                writeln!(out, "error: {p}")?;
            }
            for w in &report.warnings {
                writeln!(out, "warning: {w}")?;
            }
            writeln!(
                out,
                "{}: {} segments ({} compressed, {} open), {} lines, {} events, {} agents; {} sequence gaps ({} events), {} restarts, {} torn lines truncated by recovery; {} problems, {} warnings",
                dir.display(),
                report.segments,
                report.compressed_segments,
                report.open_segments,
                render::thousands(report.lines),
                render::thousands(report.events),
                render::thousands(report.agents),
                report.seq_gaps,
                report.seq_gap_events,
                report.seq_restarts,
                report.torn_lines_truncated,
                report.problems.len(),
                report.warnings.len()
            )?;
        }
    }
    Ok(if report.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
