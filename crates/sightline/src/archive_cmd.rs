//! Reading the archive: `tail`, `session`, `stats`, `verify`, `replay`.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::io::{IsTerminal, Write};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use serde_json::{json, Value};
use sightline_archive::{verify, AgentFilter, Archive, Compression, Follower, Query};
use sightline_bus::Bus;
use sightline_event::{AgentRef, Event, Family, KindSet, Outcome};

use crate::config::Config;
use crate::pipeline::{self, Select};
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
    archive: Option<PathBuf>,
    /// Events at or after this time: RFC 3339 (`2026-11-23T22:15:00Z`), a duration ago
    /// (`15m`, `2h`), or Unix nanoseconds.
    #[arg(long, value_name = "TIME")]
    since: Option<String>,
    /// Events before this time (same forms as --since).
    #[arg(long, value_name = "TIME")]
    until: Option<String>,
    /// Event kinds: names (`schedule:error`), families (`schedule`), prefixes (`fiber:*`);
    /// comma-separated or repeated.
    #[arg(long, value_name = "KINDS")]
    kind: Vec<String>,
    /// An agent class (`SupportAgent`) or one agent (`SupportAgent/ticket-4411`).
    #[arg(long, value_name = "AGENT")]
    agent: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Colour in text output.
    #[arg(long, value_enum, default_value_t = Color::Auto)]
    color: Color,
}

impl ReadArgs {
    fn dir(&self, config: &Config, data_dir: &Path) -> PathBuf {
        self.archive
            .clone()
            .unwrap_or_else(|| config.archive_dir(data_dir))
    }

    fn open(&self, config: &Config, data_dir: &Path) -> anyhow::Result<(PathBuf, Archive)> {
        let dir = self.dir(config, data_dir);
        anyhow::ensure!(
            dir.is_dir(),
            "no archive at {} (run `sightline demo`, or pass --archive DIR / --data-dir DIR)",
            dir.display()
        );
        let archive = Archive::open(&dir)?;
        Ok((dir, archive))
    }

    fn query(&self) -> anyhow::Result<Query> {
        let kinds = if self.kind.is_empty() {
            None
        } else {
            Some(KindSet::parse(&self.kind.join(",")).map_err(|e| anyhow::anyhow!("--kind: {e}"))?)
        };
        Ok(Query {
            since_ns: self
                .since
                .as_deref()
                .map(|t| parse_time(t).context("--since"))
                .transpose()?,
            until_ns: self
                .until
                .as_deref()
                .map(|t| parse_time(t).context("--until"))
                .transpose()?,
            kinds,
            agent: self.agent.as_deref().map(AgentFilter::parse),
        })
    }

    fn paint(&self) -> Paint {
        Paint(match self.color {
            Color::Always => true,
            Color::Never => false,
            Color::Auto => std::io::stdout().is_terminal(),
        })
    }
}

/// RFC 3339, a duration ago, or Unix nanoseconds.
pub fn parse_time(text: &str) -> anyhow::Result<u64> {
    if let Ok(ns) = text.parse::<u64>() {
        return Ok(ns);
    }
    if let Ok(t) = humantime::parse_rfc3339_weak(text) {
        return Ok(sightline_archive::segment::unix_ns(t));
    }
    if let Ok(ago) = humantime::parse_duration(text) {
        let t = SystemTime::now()
            .checked_sub(ago)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        return Ok(sightline_archive::segment::unix_ns(t));
    }
    anyhow::bail!(
        "{text:?} is not a time: use RFC 3339 (2026-11-23T22:15:00Z), a duration ago (15m), or Unix nanoseconds"
    )
}

fn event_line(e: &Event, paint: Paint) -> String {
    let line = format!(
        "{} {} {:<32} #{:<6} {:<24} {}",
        render::timestamp(e.ts_ns),
        render::marker(e),
        e.agent.to_string(),
        e.seq,
        e.kind().name(),
        render::detail(e)
    );
    render::paint_line(e, line, paint)
}

fn print_event(
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

// ---------------------------------------------------------------- tail

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

pub fn tail(config: &Config, data_dir: &Path, args: TailArgs) -> anyhow::Result<ExitCode> {
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
    let mut last: VecDeque<Event> = VecDeque::with_capacity(args.lines + 1);
    if args.lines > 0 {
        archive.scan(&query, |e| {
            last.push_back(e);
            if last.len() > args.lines {
                last.pop_front();
            }
            ControlFlow::Continue(())
        })?;
    }
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

// ---------------------------------------------------------------- session

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

pub fn session(
    config: &Config,
    data_dir: &Path,
    mut args: SessionArgs,
) -> anyhow::Result<ExitCode> {
    let agent = match AgentFilter::parse(&args.who) {
        AgentFilter::Exact(a) => a,
        AgentFilter::Class(_) => anyhow::bail!(
            "session needs one agent as <class>/<name> (e.g. SupportAgent/ticket-4411), got {:?}",
            args.who
        ),
    };
    anyhow::ensure!(
        args.read.agent.is_none(),
        "session takes the agent as its argument; drop --agent"
    );
    args.read.agent = Some(args.who.clone());
    let query = args.read.query()?;
    let (_, archive) = args.read.open(config, data_dir)?;
    let mut events = Vec::new();
    let scan = archive.scan(&query, |e| {
        events.push(e);
        ControlFlow::Continue(())
    })?;
    anyhow::ensure!(
        !events.is_empty(),
        "no events of {agent} in {} with these filters ({} segments)",
        archive.dir().display(),
        archive.segments().len()
    );
    let mut out = std::io::stdout().lock();
    if let Some(at) = args.at {
        let state = reconstruct(&events, at)?;
        match args.read.format {
            Format::Json => writeln!(out, "{}", serde_json::to_string_pretty(&state.to_json())?)?,
            Format::Text => write!(out, "{}", state.to_text(&agent))?,
        }
        return Ok(ExitCode::SUCCESS);
    }
    match args.read.format {
        Format::Json => {
            for e in &events {
                writeln!(out, "{}", e.to_json_line())?;
            }
        }
        Format::Text => {
            let filtered = query.kinds.is_some();
            write!(
                out,
                "{}",
                timeline(&agent, &events, filtered, args.read.paint())
            )?;
            writeln!(
                out,
                "\n(read {} of {} segments, {} blocks, {})",
                scan.segments - scan.segments_pruned,
                scan.segments,
                scan.blocks_read,
                render::bytes(scan.bytes_read)
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// One agent's timeline, as text. `filtered`: kinds were selected, so gaps are expected.
pub fn timeline(agent: &AgentRef, events: &[Event], filtered: bool, paint: Paint) -> String {
    let mut s = String::new();
    let (first, last) = (&events[0], &events[events.len() - 1]);
    s += &format!("Session {agent}\n");
    s += &format!(
        "  {} events, seq {}..{}, {} → {} ({})\n\n",
        events.len(),
        first.seq,
        last.seq,
        render::timestamp(first.ts_ns),
        render::timestamp(last.ts_ns),
        render::duration(last.ts_ns.saturating_sub(first.ts_ns))
    );
    s += &format!(
        "  {:<15}   {:>6}  {:<24} {}\n",
        "TIME (UTC)", "SEQ", "EVENT", "DETAIL"
    );
    let (mut failures, mut gaps, mut missing, mut restarts) = (0u64, 0u64, 0u64, 0u64);
    let mut rpc_durations = Vec::new();
    let (mut tokens_in, mut tokens_out, mut model_calls) = (0u64, 0u64, 0u64);
    let mut prev: Option<u64> = None;
    for e in events {
        if let Some(p) = prev {
            if e.seq > p.saturating_add(1) && !filtered {
                gaps += 1;
                missing = missing.saturating_add(e.seq - p - 1);
                s += &paint.warn(&format!(
                    "  {:<15}   ······  gap: seq {} → {}, {} events not in the archive (possible loss)\n",
                    "",
                    p,
                    e.seq,
                    e.seq - p - 1
                ));
            } else if e.seq <= p {
                if e.seq == 1 {
                    restarts += 1;
                    s += &paint.dim(&format!(
                        "  {:<15}   ······  sequence restarted at 1 (a new process)\n",
                        ""
                    ));
                } else {
                    s += &paint.warn(&format!(
                        "  {:<15}   ······  sequence went back from {p} to {} (duplicate or reordered)\n",
                        "", e.seq
                    ));
                }
            }
        }
        prev = Some(e.seq);
        let fail = render::is_failure(e);
        failures += u64::from(fail);
        if e.kind().family() == Family::Rpc {
            if let Some(d) = e.duration_ns {
                rpc_durations.push(d);
            }
        }
        if let sightline_event::Payload::ModelCall(m) = &e.payload {
            model_calls += 1;
            tokens_in += m.input_tokens;
            tokens_out += m.output_tokens;
        }
        let line = format!(
            "{} {:<15}   {:>6}  {:<24} {}",
            render::marker(e),
            render::time_of_day(e.ts_ns),
            e.seq,
            e.kind().name(),
            render::detail(e)
        );
        s += &render::paint_line(e, line, paint);
        s.push('\n');
    }
    rpc_durations.sort_unstable();
    s += "\nSummary (! failure, ~ warning)\n";
    s += &format!(
        "  failures: {failures}   sequence gaps: {gaps} ({missing} events)   restarts: {restarts}\n"
    );
    if !rpc_durations.is_empty() {
        let p = |q: f64| rpc_durations[((rpc_durations.len() - 1) as f64 * q) as usize];
        s += &format!(
            "  rpc: {} calls, p50 {}, p99 {}, max {}\n",
            rpc_durations.len(),
            render::duration(p(0.5)),
            render::duration(p(0.99)),
            render::duration(rpc_durations[rpc_durations.len() - 1])
        );
    }
    if model_calls > 0 {
        s += &format!(
            "  model: {model_calls} calls, {tokens_in} input tokens, {tokens_out} output tokens\n"
        );
    }
    let mut by_family: BTreeMap<&str, u64> = BTreeMap::new();
    for e in events {
        *by_family.entry(e.kind().family().name()).or_default() += 1;
    }
    s += &format!(
        "  by family: {}\n",
        by_family
            .iter()
            .map(|(f, n)| format!("{f} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    s
}

/// An agent's state rebuilt from its state diffs.
#[derive(Debug)]
pub struct Reconstructed {
    seq: u64,
    version: Option<u64>,
    diffs_applied: u64,
    first_version: Option<u64>,
    unusable: Vec<(u64, String)>,
    /// Versions skipped between consecutive diffs: (seq, from, to).
    version_gaps: Vec<(u64, u64, u64)>,
    /// Other events with this sequence number (a restarted emitter): the latest is used.
    earlier_occurrences: usize,
    state: Value,
}

impl Reconstructed {
    fn to_json(&self) -> Value {
        json!({
            "seq": self.seq,
            "version": self.version,
            "diffs_applied": self.diffs_applied,
            "complete": self.complete(),
            "version_gaps": self.version_gaps.iter().map(|(s, a, b)| json!({"seq": s, "from": a, "to": b})).collect::<Vec<_>>(),
            "unusable_diffs": self.unusable.iter().map(|(s, why)| json!({"seq": s, "reason": why})).collect::<Vec<_>>(),
            "state": self.state,
        })
    }

    fn complete(&self) -> bool {
        self.version.is_some()
            && self.unusable.is_empty()
            && self.version_gaps.is_empty()
            && self.first_version.is_none_or(|v| v <= 1)
    }

    fn to_text(&self, agent: &AgentRef) -> String {
        let mut s = format!(
            "State of {agent} as of seq {}: version {}, from {} diffs\n",
            self.seq,
            self.version.map_or("none".to_owned(), |v| v.to_string()),
            self.diffs_applied
        );
        if let Some(v) = self.first_version.filter(|v| *v > 1) {
            s += &format!(
                "  incomplete: the earliest diff in the archive is version {v}; earlier ones were retired or never archived\n"
            );
        }
        for (seq, why) in &self.unusable {
            s += &format!("  incomplete: the diff at seq {seq} could not be applied: {why}\n");
        }
        for (seq, from, to) in &self.version_gaps {
            s += &format!(
                "  incomplete: versions {} to {} are not in the archive (before seq {seq})\n",
                from + 1,
                to - 1
            );
        }
        if self.version.is_none() {
            s += &format!("  no state update up to seq {} in the archive\n", self.seq);
        }
        if self.earlier_occurrences > 0 {
            s += &format!(
                "  seq {} occurs {} times (the agent restarted); this is the latest\n",
                self.seq,
                self.earlier_occurrences + 1
            );
        }
        s += &serde_json::to_string_pretty(&self.state).unwrap_or_default();
        s.push('\n');
        s
    }
}

/// Applies the state diffs of `events` up to and including sequence number `at`.
pub fn reconstruct(events: &[Event], at: u64) -> anyhow::Result<Reconstructed> {
    // After a restart a sequence number can recur: take the latest, and only the diffs of
    // that run (from the restart before it).
    let Some(stop) = events.iter().rposition(|e| e.seq == at) else {
        let (lo, hi) = (events[0].seq, events[events.len() - 1].seq);
        anyhow::bail!("seq {at} is not in the archive for this agent (it holds {lo}..{hi})");
    };
    let run_start = events[..=stop]
        .windows(2)
        .rposition(|w| w[1].seq <= w[0].seq)
        .map_or(0, |i| i + 1);
    let mut r = Reconstructed {
        seq: at,
        version: None,
        diffs_applied: 0,
        first_version: None,
        unusable: Vec::new(),
        version_gaps: Vec::new(),
        earlier_occurrences: events[..stop].iter().filter(|e| e.seq == at).count(),
        state: json!({}),
    };
    for e in &events[run_start..=stop] {
        let sightline_event::Payload::StateUpdate(u) = &e.payload else {
            continue;
        };
        r.first_version.get_or_insert(u.version);
        if let Some(prev) = r.version {
            if u.version > prev.saturating_add(1) {
                r.version_gaps.push((e.seq, prev, u.version));
            }
        }
        r.version = Some(u.version);
        let Some(diff) = &u.diff else {
            r.unusable.push((e.seq, "no diff recorded".into()));
            continue;
        };
        match apply_diff(&mut r.state, diff.0.value()) {
            Ok(()) => r.diffs_applied += 1,
            Err(why) => r.unusable.push((e.seq, why)),
        }
    }
    Ok(r)
}

/// Applies a JSON Patch leniently: `add`/`replace` create missing parent objects, and a
/// `replace` of a missing member adds it (a diff recorded against state we do not have).
pub fn apply_diff(state: &mut Value, diff: &Value) -> Result<(), String> {
    let Some(ops) = diff.as_array() else {
        return Err(format!(
            "not a JSON Patch (redacted?): {}",
            render::cut(&diff.to_string(), 40)
        ));
    };
    for op in ops {
        let mut op = op.clone();
        let kind = op
            .get("op")
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_owned();
        let path = op
            .get("path")
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_owned();
        if kind == "add" || kind == "replace" {
            ensure_parents(state, &path);
            if kind == "replace" && state.pointer(&path).is_none() {
                op["op"] = json!("add");
            }
        }
        let patch: json_patch::Patch =
            serde_json::from_value(Value::Array(vec![op])).map_err(|e| e.to_string())?;
        json_patch::patch(state, &patch).map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn ensure_parents(state: &mut Value, path: &str) {
    let tokens: Vec<String> = path
        .split('/')
        .skip(1)
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect();
    let mut cur = state;
    for t in tokens.iter().take(tokens.len().saturating_sub(1)) {
        if !cur.is_object() && !cur.is_array() {
            *cur = json!({});
        }
        cur = match cur {
            Value::Object(map) => map.entry(t.clone()).or_insert_with(|| json!({})),
            Value::Array(items) => match t.parse::<usize>().ok().filter(|i| *i < items.len()) {
                Some(i) => &mut items[i],
                None => return,
            },
            _ => return,
        };
    }
}

// ---------------------------------------------------------------- stats

/// Flags of `sightline stats`.
#[derive(Debug, clap::Args)]
pub struct StatsArgs {
    #[command(flatten)]
    read: ReadArgs,
    /// How many failing schedules to list.
    #[arg(long, default_value_t = 10)]
    top: usize,
}

#[derive(Default)]
struct ClassStats {
    events: u64,
    operations: u64,
    failed: u64,
    agents: HashSet<smol_str::SmolStr>,
}

pub fn stats(config: &Config, data_dir: &Path, args: StatsArgs) -> anyhow::Result<ExitCode> {
    let query = args.read.query()?;
    let (dir, archive) = args.read.open(config, data_dir)?;
    let mut by_family: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut by_kind: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut by_outcome: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut by_class: BTreeMap<smol_str::SmolStr, ClassStats> = BTreeMap::new();
    // callback -> (terminal errors, retries, completions)
    let mut schedules: HashMap<String, (u64, u64, u64)> = HashMap::new();
    let mut last_seq: HashMap<AgentRef, u64> = HashMap::new();
    let (mut total, mut gaps, mut gap_events, mut first_ts, mut last_ts) =
        (0u64, 0u64, 0u64, u64::MAX, 0u64);
    let scan = archive.scan(&query, |e| {
        total += 1;
        first_ts = first_ts.min(e.ts_ns);
        last_ts = last_ts.max(e.ts_ns);
        *by_family.entry(e.kind().family().name()).or_default() += 1;
        *by_kind.entry(e.kind().name()).or_default() += 1;
        let class = by_class.entry(e.agent.class.clone()).or_default();
        class.events += 1;
        if class.agents.len() < 1_000_000 {
            class.agents.insert(e.agent.name.clone());
        }
        if let Some(o) = e.outcome {
            *by_outcome.entry(o.name()).or_default() += 1;
            class.operations += 1;
            class.failed += u64::from(o != Outcome::Ok);
        }
        match &e.payload {
            sightline_event::Payload::ScheduleError(p) => {
                schedules.entry(p.callback.to_string()).or_default().0 += 1
            }
            sightline_event::Payload::ScheduleRetry(p) => {
                schedules.entry(p.callback.to_string()).or_default().1 += 1
            }
            sightline_event::Payload::ScheduleComplete(p) => {
                schedules.entry(p.callback.to_string()).or_default().2 += 1
            }
            _ => {}
        }
        if query.kinds.is_none() {
            if let Some(prev) = last_seq.insert(e.agent.clone(), e.seq) {
                if e.seq > prev.saturating_add(1) {
                    gaps += 1;
                    gap_events = gap_events.saturating_add(e.seq - prev - 1);
                }
            }
        }
        ControlFlow::Continue(())
    })?;
    let mut failing: Vec<(String, (u64, u64, u64))> = schedules
        .into_iter()
        .filter(|(_, (err, retry, _))| err + retry > 0)
        .collect();
    failing.sort_by(|a, b| {
        b.1 .0
            .cmp(&a.1 .0)
            .then(b.1 .1.cmp(&a.1 .1))
            .then(a.0.cmp(&b.0))
    });
    failing.truncate(args.top);
    let operations: u64 = by_outcome.values().sum();
    let failed_ops = operations - by_outcome.get("ok").copied().unwrap_or(0);
    let error_rate = if operations > 0 {
        failed_ops as f64 / operations as f64
    } else {
        0.0
    };
    // The archive itself: from the manifests.
    let segs = archive.segments();
    let closed: Vec<_> = segs.iter().filter_map(|s| s.manifest.as_ref()).collect();
    let compressed = closed
        .iter()
        .filter(|m| m.compression == Compression::Zstd)
        .count();
    let stored: u64 = closed.iter().map(|m| m.stored_bytes).sum();
    let raw: u64 = closed.iter().map(|m| m.raw_bytes).sum();
    let torn: u64 = closed.iter().filter(|m| m.torn_bytes_truncated > 0).count() as u64;
    let recovered: u64 = closed.iter().filter(|m| m.recovered).count() as u64;
    let mut out = std::io::stdout().lock();
    if args.read.format == Format::Json {
        let report = json!({
            "archive": dir.display().to_string(),
            "segments": {"total": segs.len(), "closed": closed.len(), "compressed": compressed,
                         "open": segs.len() - closed.len(), "stored_bytes": stored, "raw_bytes": raw,
                         "recovered": recovered, "torn_lines_truncated": torn},
            "events": total,
            "first_ts_ns": (total > 0).then_some(first_ts),
            "last_ts_ns": (total > 0).then_some(last_ts),
            "by_family": by_family,
            "by_kind": by_kind,
            "by_outcome": by_outcome,
            "operations": operations,
            "failed_operations": failed_ops,
            "error_rate": error_rate,
            "by_agent_class": by_class.iter().map(|(c, s)| (c.to_string(), json!({
                "events": s.events, "agents": s.agents.len(), "operations": s.operations,
                "failed": s.failed,
                "error_rate": if s.operations > 0 { s.failed as f64 / s.operations as f64 } else { 0.0 },
            }))).collect::<BTreeMap<_, _>>(),
            "top_failing_schedules": failing.iter().map(|(cb, (e, r, c))| json!({
                "callback": cb, "errors": e, "retries": r, "completed": c})).collect::<Vec<_>>(),
            "seq_gaps": gaps,
            "seq_gap_events": gap_events,
            "scan": {"blocks_read": scan.blocks_read, "bytes_read": scan.bytes_read},
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    let t = render::thousands;
    let mut s = format!(
        "Archive {}: {} segments ({} closed, {} compressed, {} open), {} stored, {} uncompressed\n",
        dir.display(),
        segs.len(),
        closed.len(),
        compressed,
        segs.len() - closed.len(),
        render::bytes(stored),
        render::bytes(raw)
    );
    if total == 0 {
        s += "No events match.\n";
        write!(out, "{s}")?;
        return Ok(ExitCode::SUCCESS);
    }
    s += &format!(
        "Events: {} from {} to {} ({})\n",
        t(total),
        render::timestamp(first_ts),
        render::timestamp(last_ts),
        render::duration(last_ts - first_ts)
    );
    s += "\nBy family\n";
    for (f, n) in &by_family {
        s += &format!("  {f:<12} {:>12}\n", t(*n));
    }
    s += &format!(
        "\nOutcomes: {}\nError rate: {:.2}% of {} operations failed\n",
        by_outcome
            .iter()
            .map(|(o, n)| format!("{o} {}", t(*n)))
            .collect::<Vec<_>>()
            .join(", "),
        error_rate * 100.0,
        t(operations)
    );
    s += &format!(
        "\n{:<20} {:>8} {:>12} {:>12} {:>8} {:>8}\n",
        "By agent class", "agents", "events", "operations", "failed", "rate"
    );
    for (c, cs) in &by_class {
        let rate = if cs.operations > 0 {
            cs.failed as f64 * 100.0 / cs.operations as f64
        } else {
            0.0
        };
        s += &format!(
            "  {:<18} {:>8} {:>12} {:>12} {:>8} {:>7.2}%\n",
            c.as_str(),
            t(cs.agents.len() as u64),
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
    for (cb, (e, r, c)) in &failing {
        s += &format!("  {cb:<18} {:>8} {:>8} {:>10}\n", t(*e), t(*r), t(*c));
    }
    if failing.is_empty() {
        s += "  (none)\n";
    }
    s += &format!(
        "\nLoss and recovery: {} sequence gaps ({} events not in the archive){}, {} segments recovered after a crash, {} torn lines truncated\n",
        t(gaps),
        t(gap_events),
        if query.kinds.is_some() { " [not counted: --kind filters events]" } else { "" },
        recovered,
        torn
    );
    write!(out, "{s}")?;
    Ok(ExitCode::SUCCESS)
}

// ---------------------------------------------------------------- verify

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

pub fn verify_cmd(config: &Config, data_dir: &Path, args: VerifyArgs) -> anyhow::Result<ExitCode> {
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

// ---------------------------------------------------------------- replay

/// Flags of `sightline replay`.
#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// The sink to send to, by its `[sinks.<name>]` table.
    #[arg(long, value_name = "SINK")]
    to: String,
    #[command(flatten)]
    read: ReadArgs,
}

pub fn replay(config: &Config, data_dir: &Path, args: ReplayArgs) -> anyhow::Result<ExitCode> {
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
    let assembled = pipeline::assemble(config, data_dir, &bus, Select::Only(&args.to))?;
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
    let reports = assembled.pipeline.shutdown(Duration::from_secs(60));
    eprintln!(
        "replay: {} events read from {}",
        render::thousands(read),
        dir.display()
    );
    let lost = pipeline::report_sinks(&reports) + pipeline::report_otlp(assembled.otlp.as_ref());
    Ok(pipeline::exit_code(lost))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sightline_event::{Sensitive, StateUpdate};

    fn update(seq: u64, version: u64, ops: Value) -> Event {
        Event::new(
            AgentRef::new("A", "a"),
            seq,
            StateUpdate {
                version,
                diff: Some(Sensitive(ops.into())),
                ..Default::default()
            },
        )
    }

    #[test]
    fn state_is_rebuilt_from_diffs_and_a_missing_version_makes_it_incomplete() {
        let events = vec![
            update(1, 1, json!([{"op": "add", "path": "/a/b", "value": 1}])),
            update(2, 2, json!([{"op": "replace", "path": "/c", "value": "x"}])),
            update(3, 4, json!([{"op": "remove", "path": "/c"}])),
        ];
        let r = reconstruct(&events, 2).unwrap();
        assert!(r.complete());
        assert_eq!(r.state, json!({"a": {"b": 1}, "c": "x"}));
        let r = reconstruct(&events, 3).unwrap();
        assert!(!r.complete());
        assert_eq!(r.version_gaps, vec![(3, 2, 4)]);
        assert_eq!(r.state, json!({"a": {"b": 1}}));
        assert!(reconstruct(&events, 9).is_err());
    }

    #[test]
    fn after_a_restart_the_latest_run_is_used() {
        let events = vec![
            update(1, 1, json!([{"op": "add", "path": "/run", "value": 1}])),
            update(2, 2, json!([{"op": "add", "path": "/old", "value": true}])),
            update(1, 1, json!([{"op": "add", "path": "/run", "value": 2}])),
        ];
        let r = reconstruct(&events, 1).unwrap();
        assert_eq!(r.earlier_occurrences, 1);
        assert_eq!(r.state, json!({"run": 2}));
    }
}
