//! `sightline verify`: every segment read and checked against its manifest and index, and
//! every agent's sequence numbers checked across segments.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::ops::ControlFlow;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use serde::Serialize;
use sightline_event::{AgentRef, Event};

use crate::config::LineFormat;
use crate::reader::{for_each_line, Archive, ReadError, SealedSegment};
use crate::segment::{Manifest, RAW_SUFFIX};
use crate::writer::{line_events, line_format_of};

/// One thing wrong, and where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The file.
    pub file: String,
    /// The line (from 1), when it is about a line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(l) => write!(f, "{} line {l}: {}", self.file, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

/// What `verify` found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct VerifyReport {
    /// Segments checked.
    pub segments: u64,
    /// Of which open (being written, or left open by a crash).
    pub open_segments: u64,
    /// Compressed segments.
    pub compressed_segments: u64,
    /// Lines read.
    pub lines: u64,
    /// Events read.
    pub events: u64,
    /// Distinct agents.
    pub agents: u64,
    /// Sequence gaps (a jump by more than one): events not in the archive, possibly lost.
    pub seq_gaps: u64,
    /// Events the gaps leave out.
    pub seq_gap_events: u64,
    /// Times an agent's sequence restarted at 1 (a new process without persisted sequences).
    pub seq_restarts: u64,
    /// Torn lines truncated by recovery, from the manifests.
    pub torn_lines_truncated: u64,
    /// Errors: the archive is not what it should be.
    pub problems: Vec<Problem>,
    /// Worth knowing, not wrong (an open segment's incomplete last line, loose permissions).
    pub warnings: Vec<Problem>,
}

impl VerifyReport {
    /// Whether no problem was found.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

const MAX_PROBLEMS: usize = 1000;

/// Per agent (class, name): events, first seq, last seq, blocks.
type AgentBlocks = BTreeMap<(String, String), (u64, u64, u64, Vec<u32>)>;

struct Checker {
    report: VerifyReport,
    last_seq: HashMap<AgentRef, u64>,
}

impl Checker {
    fn problem(&mut self, file: &str, line: Option<u64>, message: String) {
        if self.report.problems.len() < MAX_PROBLEMS {
            self.report.problems.push(Problem {
                file: file.to_owned(),
                line,
                message,
            });
        }
    }

    fn warn(&mut self, file: &str, line: Option<u64>, message: String) {
        self.report.warnings.push(Problem {
            file: file.to_owned(),
            line,
            message,
        });
    }

    fn sequence(&mut self, file: &str, line: u64, agent: &AgentRef, seq: u64) {
        match self.last_seq.get(agent).copied() {
            None => {}
            Some(prev) if seq == prev.saturating_add(1) => {}
            Some(prev) if seq > prev => {
                self.report.seq_gaps += 1;
                self.report.seq_gap_events =
                    self.report.seq_gap_events.saturating_add(seq - prev - 1);
            }
            Some(_) if seq == 1 => self.report.seq_restarts += 1,
            Some(prev) => self.problem(
                file,
                Some(line),
                format!("{agent}: sequence {seq} after {prev} (not increasing)"),
            ),
        }
        self.last_seq.insert(agent.clone(), seq);
    }

    /// Checks one line; returns its events' (agent, seq, ts) for the index check.
    fn line(
        &mut self,
        file: &str,
        format: LineFormat,
        line: &[u8],
        line_no: u64,
    ) -> Vec<(AgentRef, u64, u64)> {
        self.report.lines += 1;
        match format {
            LineFormat::Jsonl => {
                let parsed = std::str::from_utf8(line)
                    .map_err(|e| e.to_string())
                    .and_then(|t| Event::from_json_line(t).map_err(|e| e.to_string()));
                match parsed {
                    Ok(e) => {
                        self.report.events += 1;
                        self.sequence(file, line_no, &e.agent, e.seq);
                        vec![(e.agent, e.seq, e.ts_ns)]
                    }
                    Err(e) => {
                        self.problem(file, Some(line_no), format!("not a valid event: {e}"));
                        Vec::new()
                    }
                }
            }
            LineFormat::OtlpJson => match line_events(format, line) {
                Some(events) => events
                    .into_iter()
                    .map(|e| {
                        self.report.events += 1;
                        self.sequence(file, line_no, &e.agent, e.seq);
                        (e.agent, e.seq, e.ts_ns)
                    })
                    .collect(),
                None => {
                    self.problem(file, Some(line_no), "not a valid OTLP LogsData line".into());
                    Vec::new()
                }
            },
        }
    }

    fn sealed(&mut self, dir: &Path, m: &Manifest) {
        let segment = match SealedSegment::open_current(dir, m) {
            Ok(s) => s,
            Err(e) => return self.problem(&e.file, e.line, e.message),
        };
        // Compressed since listed: check against the manifest that names these files.
        let m = &segment.manifest().clone();
        let stored = fs::metadata(dir.join(&m.file)).map_or(0, |md| md.len());
        if stored != m.stored_bytes {
            self.problem(
                &m.file,
                None,
                format!(
                    "data file is {stored} bytes, the manifest says {}",
                    m.stored_bytes
                ),
            );
        }
        let index = segment.index.clone();
        if index.blocks.len() as u64 != m.blocks {
            self.problem(
                &m.index_file,
                None,
                format!(
                    "index has {} blocks, the manifest says {}",
                    index.blocks.len(),
                    m.blocks
                ),
            );
        }
        let (mut raw_end, mut stored_end, mut next_line) = (0u64, 0u64, 1u64);
        // After a block that could not be read, the next one cannot be checked for continuity.
        let mut after_failed = false;
        let (mut events, mut lines) = (0u64, 0u64);
        let (mut first_ts, mut last_ts) = (u64::MAX, 0u64);
        // Per agent: events, first/last seq, blocks.
        let mut agents: AgentBlocks = BTreeMap::new();
        for (id, block) in index.blocks.iter().enumerate() {
            if !after_failed
                && (block.raw_offset != raw_end
                    || block.stored_offset != stored_end
                    || block.first_line != next_line)
            {
                self.problem(
                    &m.index_file,
                    None,
                    format!("block {id} does not follow the previous one"),
                );
            }
            raw_end = block.raw_offset.saturating_add(block.raw_len);
            stored_end = block.stored_offset.saturating_add(block.stored_len);
            let data = match segment.read_block(block) {
                Ok(d) => d,
                Err(e) => {
                    self.problem(&e.file, e.line, e.message);
                    after_failed = true;
                    continue;
                }
            };
            after_failed = false;
            let mut block_events = 0u64;
            let mut visit = |line: &[u8], line_no: u64, _offset: u64| {
                lines += 1;
                next_line = line_no.saturating_add(1);
                for (agent, seq, ts) in self.line(&m.file, m.format, line, line_no) {
                    block_events += 1;
                    first_ts = first_ts.min(ts);
                    last_ts = last_ts.max(ts);
                    if ts < block.first_ts_ns || ts > block.last_ts_ns {
                        self.problem(
                            &m.file,
                            Some(line_no),
                            format!("timestamp {ts} is outside its index block's range"),
                        );
                    }
                    let slot = agents
                        .entry((agent.class.to_string(), agent.name.to_string()))
                        .or_insert((0, seq, seq, Vec::new()));
                    slot.0 += 1;
                    slot.1 = slot.1.min(seq);
                    slot.2 = slot.2.max(seq);
                    if slot.3.last() != Some(&(id as u32)) {
                        slot.3.push(id as u32);
                    }
                }
                Ok::<_, ReadError>(ControlFlow::Continue(()))
            };
            let _ = for_each_line(&data, block.first_line, block.raw_offset, &mut visit);
            if block_events != u64::from(block.events) {
                self.problem(
                    &m.index_file,
                    None,
                    format!(
                        "block {id} holds {block_events} events, the index says {}",
                        block.events
                    ),
                );
            }
            events += block_events;
        }
        let checks = [
            ("events", events, m.events),
            ("lines", lines, m.lines),
            ("raw_bytes", raw_end, m.raw_bytes),
            ("stored_bytes", stored_end, m.stored_bytes),
            ("agents", agents.len() as u64, m.agents),
        ];
        for (key, found, claimed) in checks {
            if found != claimed {
                self.problem(
                    &m.segment,
                    None,
                    format!("manifest {key} = {claimed}, the segment holds {found}"),
                );
            }
        }
        if events > 0 && (first_ts != m.first_ts_ns || last_ts != m.last_ts_ns) {
            self.problem(
                &m.segment,
                None,
                "manifest time range does not match the events".into(),
            );
        }
        let indexed: AgentBlocks = index
            .agents
            .iter()
            .map(|a| {
                (
                    (a.class.to_string(), a.name.to_string()),
                    (a.events, a.first_seq, a.last_seq, a.blocks().collect()),
                )
            })
            .collect();
        if indexed != agents {
            let wrong = agents
                .iter()
                .filter(|(k, v)| indexed.get(*k) != Some(v))
                .map(|(k, _)| format!("{}/{}", k.0, k.1))
                .chain(
                    indexed
                        .keys()
                        .filter(|k| !agents.contains_key(*k))
                        .map(|k| format!("{}/{}", k.0, k.1)),
                )
                .take(5)
                .collect::<Vec<_>>();
            self.problem(
                &m.index_file,
                None,
                format!(
                    "agent index does not match the lines (e.g. {})",
                    wrong.join(", ")
                ),
            );
        }
    }

    fn open(&mut self, dir: &Path, stem: &str) {
        let name = format!("{stem}{RAW_SUFFIX}");
        let data = match fs::read(dir.join(&name)) {
            Ok(d) => d,
            Err(e) => return self.problem(&name, None, e.to_string()),
        };
        let complete = memchr::memrchr(b'\n', &data).map_or(0, |i| i + 1);
        let mut visit = |line: &[u8], line_no: u64, _offset: u64| {
            let format = line_format_of(line, LineFormat::Jsonl);
            self.line(&name, format, line, line_no);
            Ok::<_, ReadError>(ControlFlow::Continue(()))
        };
        let _ = for_each_line(&data[..complete], 1, 0, &mut visit);
        if complete < data.len() {
            let line = data[..complete].iter().filter(|b| **b == b'\n').count() as u64 + 1;
            self.warn(
                &name,
                Some(line),
                format!(
                    "incomplete last line ({} bytes): being written, or torn by a crash (the writer cuts it on its next start)",
                    data.len() - complete
                ),
            );
        }
    }
}

/// Reads every segment of the archive in `dir` and checks it.
pub fn verify(dir: &Path) -> Result<VerifyReport, ReadError> {
    let archive = Archive::open(dir)?;
    let mut c = Checker {
        report: VerifyReport::default(),
        last_seq: HashMap::new(),
    };
    if let Ok(md) = fs::metadata(dir) {
        if md.permissions().mode() & 0o077 != 0 {
            c.warn(
                &dir.display().to_string(),
                None,
                format!(
                    "directory mode is {:o}, not private (0700)",
                    md.permissions().mode() & 0o777
                ),
            );
        }
    }
    for segment in archive.segments() {
        c.report.segments += 1;
        if let Some(why) = &segment.broken {
            c.problem(
                &format!("{}{}", segment.stem, crate::segment::MANIFEST_SUFFIX),
                None,
                format!("unreadable manifest: {why}"),
            );
            continue;
        }
        match &segment.manifest {
            Some(m) => {
                if m.compression == crate::Compression::Zstd {
                    c.report.compressed_segments += 1;
                }
                c.report.torn_lines_truncated += u64::from(m.torn_bytes_truncated > 0);
                if m.invalid_lines > 0 {
                    c.warn(
                        &m.segment,
                        None,
                        format!("recovery kept {} unparseable lines", m.invalid_lines),
                    );
                }
                c.sealed(dir, m);
            }
            None => {
                c.report.open_segments += 1;
                c.open(dir, &segment.stem);
            }
        }
    }
    c.report.agents = c.last_seq.len() as u64;
    Ok(c.report)
}
