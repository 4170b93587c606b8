//! `sightline session`: one agent's timeline as `sightline-query` builds it, rendered as
//! text (or JSONL), or with `--at` the agent's state rebuilt as of one event.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use sightline_pipeline::Config;
use sightline_query::timeline::{Entry, Timeline};
use sightline_query::{session, Reconstructed};

use super::read::{Format, ReadArgs};
use crate::render::{self, Paint};

/// Flags of `sightline session`.
#[derive(Debug, clap::Args)]
pub struct SessionArgs {
    /// The agent: `<class>/<name>`, e.g. `SupportAgent/ticket-4411`.
    #[arg(value_name = "CLASS/NAME")]
    who: String,
    #[command(flatten)]
    read: ReadArgs,
    /// Reconstruct the agent's state as of this sequence number from its state diffs.
    #[arg(long, value_name = "SEQ")]
    at: Option<u64>,
}

/// `sightline session`: one agent's timeline, or (with --at) its state as of an event.
pub fn run(config: &Config, data_dir: &Path, args: SessionArgs) -> anyhow::Result<ExitCode> {
    let agent = session::one_agent(&args.who)?;
    anyhow::ensure!(
        args.read.agent.is_none(),
        "session takes the agent as its argument; drop --agent"
    );
    let query = args.read.query()?;
    let (_, archive) = args.read.open(config, data_dir)?;
    let session = session::read(&archive, &agent, query)?;
    let mut out = std::io::stdout().lock();
    if let Some(at) = args.at {
        let state = sightline_query::reconstruct(&session.events, at)?;
        match args.read.format {
            Format::Json => writeln!(out, "{}", serde_json::to_string_pretty(&state)?)?,
            Format::Text => write!(out, "{}", state_text(&state, &session.agent.to_string()))?,
        }
        return Ok(ExitCode::SUCCESS);
    }
    match args.read.format {
        Format::Json => {
            for e in &session.events {
                writeln!(out, "{}", e.to_json_line())?;
            }
        }
        Format::Text => {
            write!(
                out,
                "{}",
                timeline_text(&Timeline::of(&session), args.read.paint())
            )?;
            let cost = session.cost;
            writeln!(
                out,
                "\n(read {} of {} segments, {} blocks, {})",
                cost.segments_read,
                cost.segments,
                cost.blocks_read,
                render::bytes(cost.bytes_read)
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// One agent's timeline, as text.
pub fn timeline_text(t: &Timeline, paint: Paint) -> String {
    let m = &t.summary;
    let mut s = String::new();
    s += &format!("Session {}\n", t.agent);
    s += &format!(
        "  {} events, seq {}..{}, {} → {} ({})\n\n",
        m.events,
        m.first_seq,
        m.last_seq,
        render::timestamp(m.first_ts_ns),
        render::timestamp(m.last_ts_ns),
        render::duration(m.last_ts_ns.saturating_sub(m.first_ts_ns))
    );
    s += &format!(
        "  {:<15}   {:>6}  {:<24} {}\n",
        "TIME (UTC)", "SEQ", "EVENT", "DETAIL"
    );
    for entry in &t.entries {
        match entry {
            Entry::Gap {
                after,
                next,
                missing,
            } => {
                s += &paint.warn(&format!(
                    "  {:<15}   ······  gap: seq {after} → {next}, {missing} events not in the archive (possible loss)\n",
                    ""
                ));
            }
            Entry::Restart => {
                s += &paint.dim(&format!(
                    "  {:<15}   ······  sequence restarted at 1 (a new process)\n",
                    ""
                ));
            }
            Entry::WentBack { from, to } => {
                s += &paint.warn(&format!(
                    "  {:<15}   ······  sequence went back from {from} to {to} (duplicate or reordered)\n",
                    ""
                ));
            }
            Entry::Event(e) => {
                let line = format!(
                    "{} {:<15}   {:>6}  {:<24} {}",
                    render::mark_char(e.mark),
                    render::time_of_day(e.ts_ns),
                    e.seq,
                    e.kind,
                    e.detail
                );
                s += &render::paint_mark(e.mark, line, paint);
                s.push('\n');
            }
        }
    }
    s += "\nSummary (! failure, ~ warning)\n";
    s += &format!(
        "  failures: {}   sequence gaps: {} ({} events)   restarts: {}\n",
        m.failures, m.gaps, m.missing, m.restarts
    );
    if let Some(rpc) = &m.rpc {
        s += &format!(
            "  rpc: {} calls, p50 {}, p99 {}, max {}\n",
            rpc.calls,
            render::duration(rpc.p50_ns),
            render::duration(rpc.p99_ns),
            render::duration(rpc.max_ns)
        );
    }
    if let Some(model) = &m.model {
        s += &format!(
            "  model: {} calls, {} input tokens, {} output tokens\n",
            model.calls, model.input_tokens, model.output_tokens
        );
    }
    s += &format!(
        "  by family: {}\n",
        m.by_family
            .iter()
            .map(|(f, n)| format!("{f} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    s
}

/// A rebuilt state, as text: what it is as of, what is missing, then the state.
fn state_text(r: &Reconstructed, agent: &str) -> String {
    let mut s = format!(
        "State of {agent} as of seq {}: version {}, from {} diffs\n",
        r.seq,
        r.version.map_or("none".to_owned(), |v| v.to_string()),
        r.diffs_applied
    );
    if let Some(v) = r.first_version.filter(|v| *v > 1) {
        s += &format!(
            "  incomplete: the earliest diff in the archive is version {v}; earlier ones were retired or never archived\n"
        );
    }
    for u in &r.unusable {
        s += &format!(
            "  incomplete: the diff at seq {} could not be applied: {}\n",
            u.seq, u.reason
        );
    }
    for g in &r.version_gaps {
        s += &format!(
            "  incomplete: versions {} to {} are not in the archive (before seq {})\n",
            g.from + 1,
            g.to - 1,
            g.seq
        );
    }
    if r.version.is_none() {
        s += &format!("  no state update up to seq {} in the archive\n", r.seq);
    }
    if r.earlier_occurrences > 0 {
        s += &format!(
            "  seq {} occurs {} times (the agent restarted); this is the latest\n",
            r.seq,
            r.earlier_occurrences + 1
        );
    }
    s += &serde_json::to_string_pretty(&r.state).unwrap_or_default();
    s.push('\n');
    s
}
