//! `sightline ingest`: events from stdin through the configured pipeline — Sightline JSONL,
//! or Cloudflare Agents observability events as a Tail Worker receives them (see
//! `sightline-ingest` for the forms accepted and how they map). This module reads the lines,
//! counts and reports; the conversion is the library's.

use std::collections::{BTreeMap, HashMap};
use std::io::BufRead;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use sightline_bus::Bus;
use sightline_ingest::{is_blank, Converter};
use sightline_pipeline::{assemble, Config, Select};

use crate::cmd::report;
use crate::render;

/// Flags of `sightline ingest`.
#[derive(Debug, clap::Args)]
pub struct IngestArgs {
    /// Count malformed lines (not JSON, not UTF-8, not an accepted form) and go on, instead
    /// of stopping at the first one.
    #[arg(long)]
    skip_invalid: bool,
}

/// Invalid lines named in the report under `--skip-invalid`.
const INVALID_SHOWN: usize = 5;

/// Runs `sightline ingest`.
pub fn run(config: &Config, data_dir: &Path, args: IngestArgs) -> anyhow::Result<ExitCode> {
    let bus = Bus::new();
    // Reading a file is not an agent: wait for room rather than drop.
    let assembled = assemble(config, data_dir, &bus, Select::AllLossless)?;
    // Continue sequence numbers from what the archive already holds.
    let archive_dir = config.archive_dir(data_dir);
    let last = if config.archive.enabled && archive_dir.is_dir() {
        sightline_archive::Archive::open(&archive_dir)?.last_seqs()?
    } else {
        HashMap::new()
    };
    let mut converter = Converter::continuing(last);
    let mut stdin = std::io::stdin().lock();
    let (mut lines, mut events, mut invalid, mut dropped_keys) = (0u64, 0u64, 0u64, 0u64);
    let mut unknown: BTreeMap<String, u64> = BTreeMap::new();
    let mut first_invalid: Vec<String> = Vec::new();
    let mut failure = None;
    let mut read_error = None;
    let mut raw = Vec::new();
    let mut line_no = 0u64;
    loop {
        raw.clear();
        // Bytes, not text: a line that is not UTF-8 is one invalid line, not the end.
        match stdin.read_until(b'\n', &mut raw) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => {
                read_error = Some(
                    anyhow::Error::new(e)
                        .context(format!("cannot read stdin after line {line_no}")),
                );
                break;
            }
        }
        line_no += 1;
        let line = raw.strip_suffix(b"\n").unwrap_or(&raw);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if is_blank(line) {
            continue;
        }
        lines += 1;
        match converter.line(line_no, line) {
            Ok(c) => {
                events += c.events.len() as u64;
                dropped_keys += c.dropped_keys;
                for t in c.unknown_types {
                    *unknown.entry(t).or_default() += 1;
                }
                bus.publish_batch(c.events);
            }
            Err(e) if args.skip_invalid => {
                invalid += 1;
                if first_invalid.len() < INVALID_SHOWN {
                    first_invalid.push(e.to_string());
                }
            }
            Err(e) => {
                failure = Some(format!(
                    "stdin {e} (use --skip-invalid to count and skip malformed lines)"
                ));
                break;
            }
        }
    }
    let archive = assembled.archive.as_ref().map(|(dir, _)| dir.clone());
    let finished = assembled.finish(Duration::from_secs(60));
    eprintln!(
        "ingest: {} lines, {} events into the pipeline, {} invalid lines skipped, {} unknown-type events skipped, {} payload keys without a model field dropped",
        render::thousands(lines),
        render::thousands(events),
        invalid,
        unknown.values().sum::<u64>(),
        dropped_keys
    );
    for e in &first_invalid {
        eprintln!("  skipped {e}");
    }
    if !unknown.is_empty() {
        eprintln!(
            "  unknown types: {}",
            unknown
                .iter()
                .map(|(t, n)| format!("{t} ({n})"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    report::print_loss(&finished.loss);
    if let Some(dir) = &archive {
        eprintln!("  archive: {}", dir.display());
    }
    if let Some(e) = read_error {
        return Err(e);
    }
    if let Some(f) = failure {
        anyhow::bail!(f);
    }
    Ok(report::exit_code(finished.loss.lost()))
}
