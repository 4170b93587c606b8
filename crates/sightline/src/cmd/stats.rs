//! `sightline stats`: the counts `sightline-query` computes over a selection, as text or JSON.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use sightline_pipeline::Config;
use sightline_query::stats::Stats;

use super::read::{Format, ReadArgs};
use crate::render;

/// Flags of `sightline stats`.
#[derive(Debug, clap::Args)]
pub struct StatsArgs {
    #[command(flatten)]
    read: ReadArgs,
    /// How many failing schedules to list.
    #[arg(long, default_value_t = 10)]
    top: usize,
}

/// `sightline stats`: counts, error rates, failing schedules and loss over the selection.
pub fn run(config: &Config, data_dir: &Path, args: StatsArgs) -> anyhow::Result<ExitCode> {
    let query = args.read.query()?;
    let (_, archive) = args.read.open(config, data_dir)?;
    let stats = sightline_query::stats::stats(&archive, &query, args.top)?;
    let mut out = std::io::stdout().lock();
    match args.read.format {
        // Through a JSON value, so keys come out sorted as they always have.
        Format::Json => writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&serde_json::to_value(&stats)?)?
        )?,
        Format::Text => write!(out, "{}", stats_text(&stats))?,
    }
    Ok(ExitCode::SUCCESS)
}

/// The stats report, as text.
fn stats_text(st: &Stats) -> String {
    let t = render::thousands;
    let seg = &st.segments;
    let mut s = format!(
        "Archive {}: {} segments ({} closed, {} compressed, {} open), {} stored, {} uncompressed\n",
        st.archive,
        seg.total,
        seg.closed,
        seg.compressed,
        seg.open,
        render::bytes(seg.stored_bytes),
        render::bytes(seg.raw_bytes)
    );
    let (Some(first_ts), Some(last_ts)) = (st.first_ts_ns, st.last_ts_ns) else {
        s += "No events match.\n";
        return s;
    };
    s += &format!(
        "Events: {} from {} to {} ({})\n",
        t(st.events),
        render::timestamp(first_ts),
        render::timestamp(last_ts),
        render::duration(last_ts - first_ts)
    );
    s += "\nBy family\n";
    for (f, n) in &st.by_family {
        s += &format!("  {f:<12} {:>12}\n", t(*n));
    }
    s += &format!(
        "\nOutcomes: {}\nError rate: {:.2}% of {} operations failed\n",
        st.by_outcome
            .iter()
            .map(|(o, n)| format!("{o} {}", t(*n)))
            .collect::<Vec<_>>()
            .join(", "),
        st.error_rate * 100.0,
        t(st.operations)
    );
    s += &format!(
        "\n{:<20} {:>8} {:>12} {:>12} {:>8} {:>8}\n",
        "By agent class", "agents", "events", "operations", "failed", "rate"
    );
    for (c, cs) in &st.by_agent_class {
        // Scaled before dividing, as this line always was (the rounding of ties depends on it).
        let rate = if cs.operations > 0 {
            cs.failed as f64 * 100.0 / cs.operations as f64
        } else {
            0.0
        };
        s += &format!(
            "  {:<18} {:>8} {:>12} {:>12} {:>8} {:>7.2}%\n",
            c,
            t(cs.agents),
            t(cs.events),
            t(cs.operations),
            t(cs.failed),
            rate
        );
    }
    s += &format!(
        "\n{:<20} {:>8} {:>8} {:>10}\n",
        "Top failing schedules", "errors", "retries", "completed"
    );
    for f in &st.top_failing_schedules {
        s += &format!(
            "  {:<18} {:>8} {:>8} {:>10}\n",
            f.callback,
            t(f.errors),
            t(f.retries),
            t(f.completed)
        );
    }
    if st.top_failing_schedules.is_empty() {
        s += "  (none)\n";
    }
    s += &format!(
        "\nLoss and recovery: {} sequence gaps ({} events not in the archive){}, {} segments recovered after a crash, {} torn lines truncated\n",
        t(st.seq_gaps),
        t(st.seq_gap_events),
        if st.gaps_counted { "" } else { " [not counted: --kind filters events]" },
        seg.recovered,
        seg.torn_lines_truncated
    );
    s
}
