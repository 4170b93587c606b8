//! What every archive-reading command shares: where the archive is, what to select
//! (`--since/--until`, `--kind`, `--agent`, turned into an archive query by
//! `sightline-query`), the output format and colour, and one event as a line.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use sightline_archive::{Archive, Query};
use sightline_event::Event;
use sightline_pipeline::Config;
use sightline_query::{detail::detail, Filter};

use crate::render::{self, Paint};

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// For people.
    Text,
    /// For programs: events as JSONL, reports as JSON.
    Json,
}

/// When to colour text output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Color {
    /// When stdout is a terminal.
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

/// Where to read and what to select; shared by every reading command.
#[derive(Debug, clap::Args)]
pub struct ReadArgs {
    /// Archive directory (default: the `[archive] dir` under the data directory).
    #[arg(long, value_name = "DIR")]
    pub archive: Option<PathBuf>,
    /// Events at or after this time: RFC 3339 (`2026-11-23T22:15:00Z`), a duration ago
    /// (`15m`, `2h`), or Unix nanoseconds.
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Events before this time (same forms as --since).
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// Event kinds: names (`schedule:error`), families (`schedule`), prefixes (`fiber:*`);
    /// comma-separated or repeated.
    #[arg(long, value_name = "KINDS")]
    pub kind: Vec<String>,
    /// An agent class (`SupportAgent`) or one agent (`SupportAgent/ticket-4411`).
    #[arg(long, value_name = "AGENT")]
    pub agent: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Colour in text output.
    #[arg(long, value_enum, default_value_t = Color::Auto)]
    pub color: Color,
}

impl ReadArgs {
    pub fn dir(&self, config: &Config, data_dir: &Path) -> PathBuf {
        self.archive
            .clone()
            .unwrap_or_else(|| config.archive_dir(data_dir))
    }

    pub fn open(&self, config: &Config, data_dir: &Path) -> anyhow::Result<(PathBuf, Archive)> {
        let dir = self.dir(config, data_dir);
        anyhow::ensure!(
            dir.is_dir(),
            "no archive at {} (run `sightline demo`, or pass --archive DIR / --data-dir DIR)",
            dir.display()
        );
        let archive = Archive::open(&dir)?;
        Ok((dir, archive))
    }

    pub fn query(&self) -> anyhow::Result<Query> {
        let filter = Filter {
            since: self.since.clone(),
            until: self.until.clone(),
            kinds: self.kind.clone(),
            agent: self.agent.clone(),
        };
        // The library names the part (`since: …`); the flag is `--since`.
        filter.query().map_err(|e| anyhow::anyhow!("--{e}"))
    }

    pub fn paint(&self) -> Paint {
        Paint(match self.color {
            Color::Always => true,
            Color::Never => false,
            Color::Auto => std::io::stdout().is_terminal(),
        })
    }
}

fn event_line(e: &Event, paint: Paint) -> String {
    let mark = sightline_query::Mark::of(e);
    let line = format!(
        "{} {} {:<32} #{:<6} {:<24} {}",
        render::timestamp(e.ts_ns),
        render::mark_char(mark),
        e.agent.to_string(),
        e.seq,
        e.kind().name(),
        detail(e)
    );
    render::paint_mark(mark, line, paint)
}

/// One event as `--format` says: its JSON line, or a line for people.
pub fn print_event(
    out: &mut impl Write,
    e: &Event,
    format: Format,
    paint: Paint,
) -> std::io::Result<()> {
    match format {
        Format::Json => writeln!(out, "{}", e.to_json_line()),
        Format::Text => writeln!(out, "{}", event_line(e, paint)),
    }
}
