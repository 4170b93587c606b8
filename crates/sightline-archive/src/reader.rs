//! Reading an archive: segments in time order, closed or open, plain or compressed, pruned by
//! their manifests (time range) and indexes (agent), with errors that say where.

use std::fs::{self, File};
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::ops::ControlFlow;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use sightline_event::{AgentRef, Event, KindSet};

use crate::config::{Compression, LineFormat};
use crate::segment::{stem_of, Block, Index, Manifest, MANIFEST_SUFFIX, RAW_SUFFIX};

/// Largest block a reader accepts (a corrupt index must not make it allocate gigabytes).
const MAX_BLOCK_BYTES: u64 = 64 * 1024 * 1024;

/// Where reading went wrong, precisely.
#[derive(Debug, thiserror::Error)]
#[error("{file}{}: {message}", location(.line, .offset))]
pub struct ReadError {
    /// The file (segment data, manifest or index) in the archive directory.
    pub file: String,
    /// Line number in the segment, from 1, when known.
    pub line: Option<u64>,
    /// Byte offset in the uncompressed lines, when known.
    pub offset: Option<u64>,
    /// What is wrong.
    pub message: String,
}

fn location(line: &Option<u64>, offset: &Option<u64>) -> String {
    match (line, offset) {
        (Some(l), Some(o)) => format!(" line {l} (byte {o})"),
        (Some(l), None) => format!(" line {l}"),
        (None, Some(o)) => format!(" byte {o}"),
        (None, None) => String::new(),
    }
}

impl ReadError {
    fn file(file: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            file: file.into(),
            line: None,
            offset: None,
            message: message.into(),
        }
    }
}

/// Which events a scan yields.
#[derive(Debug, Clone, Default)]
pub struct Query {
    /// Events at or after this time (Unix ns).
    pub since_ns: Option<u64>,
    /// Events before this time (Unix ns).
    pub until_ns: Option<u64>,
    /// Only these kinds.
    pub kinds: Option<KindSet>,
    /// Only this agent class, or this exact agent.
    pub agent: Option<AgentFilter>,
}

/// An agent filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentFilter {
    /// Every instance of a class.
    Class(String),
    /// One instance.
    Exact(AgentRef),
}

impl AgentFilter {
    /// `Class/name` is one agent; `Class` (or `Class/*`) every instance of it.
    pub fn parse(text: &str) -> Self {
        match text.split_once('/') {
            Some((class, "*")) | Some((class, "")) => AgentFilter::Class(class.to_owned()),
            Some((class, name)) => AgentFilter::Exact(AgentRef::new(class, name)),
            None => AgentFilter::Class(text.to_owned()),
        }
    }
}

impl Query {
    /// Whether an event passes every filter.
    pub fn matches(&self, e: &Event) -> bool {
        self.since_ns.is_none_or(|s| e.ts_ns >= s)
            && self.until_ns.is_none_or(|u| e.ts_ns < u)
            && self.kinds.as_ref().is_none_or(|k| k.contains(e.kind()))
            && match &self.agent {
                None => true,
                Some(AgentFilter::Class(c)) => e.agent.class == c.as_str(),
                Some(AgentFilter::Exact(a)) => &e.agent == a,
            }
    }

    fn overlaps(&self, first_ts: u64, last_ts: u64) -> bool {
        self.since_ns.is_none_or(|s| last_ts >= s) && self.until_ns.is_none_or(|u| first_ts < u)
    }

    /// The bytes every line of the wanted agent contains (the JSON form writes the agent
    /// object exactly so), for skipping other lines without parsing them.
    fn agent_needle(&self) -> Option<Vec<u8>> {
        match &self.agent {
            Some(AgentFilter::Exact(a)) => serde_json::to_vec(a)
                .ok()
                .map(|v| [b"\"agent\":".as_slice(), &v].concat()),
            Some(AgentFilter::Class(c)) => serde_json::to_vec(c)
                .ok()
                .map(|v| [b"\"agent\":{\"class\":".as_slice(), &v].concat()),
            None => None,
        }
    }
}

/// One segment of an archive.
#[derive(Debug, Clone)]
pub struct Segment {
    /// Its stem.
    pub stem: String,
    /// Its manifest, once closed. `None`: open (being written) or left open by a crash.
    pub manifest: Option<Manifest>,
    /// Why its manifest could not be read, if it could not (readers report it; `verify`
    /// lists it with the rest).
    pub broken: Option<String>,
}

impl Segment {
    /// Whether it is still open.
    pub fn is_open(&self) -> bool {
        self.manifest.is_none() && self.broken.is_none()
    }

    fn check(&self) -> Result<(), ReadError> {
        match &self.broken {
            Some(why) => Err(ReadError::file(
                format!("{}{MANIFEST_SUFFIX}", self.stem),
                why.clone(),
            )),
            None => Ok(()),
        }
    }
}

/// What a scan read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScanStats {
    /// Segments considered.
    pub segments: u64,
    /// Segments skipped by their time range.
    pub segments_pruned: u64,
    /// Blocks read.
    pub blocks_read: u64,
    /// Bytes read from disk (compressed when compressed).
    pub bytes_read: u64,
    /// Lines parsed.
    pub lines_parsed: u64,
    /// Events yielded.
    pub events: u64,
    /// Whether the callback stopped the scan.
    pub stopped: bool,
}

/// An archive directory opened for reading. Readers need no lock: they see closed segments
/// and the complete lines of open ones.
#[derive(Debug, Clone)]
pub struct Archive {
    dir: PathBuf,
    segments: Vec<Segment>,
}

impl Archive {
    /// Lists the segments of `dir`, oldest first.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, ReadError> {
        let dir = dir.into();
        let mut archive = Self {
            dir,
            segments: Vec::new(),
        };
        archive.refresh()?;
        Ok(archive)
    }

    /// Lists the segments again (new ones, closed ones, compressed ones).
    pub fn refresh(&mut self) -> Result<(), ReadError> {
        let shown = self.dir.display().to_string();
        let entries = fs::read_dir(&self.dir)
            .map_err(|e| ReadError::file(&shown, format!("cannot read archive directory: {e}")))?;
        let mut stems = std::collections::BTreeMap::<String, (bool, bool)>::new();
        for entry in entries {
            let entry = entry.map_err(|e| ReadError::file(&shown, e.to_string()))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(stem) = stem_of(&name) {
                let slot = stems.entry(stem.to_owned()).or_default();
                if name.ends_with(MANIFEST_SUFFIX) {
                    slot.0 = true;
                } else if name.ends_with(RAW_SUFFIX) {
                    slot.1 = true;
                }
            }
        }
        let mut segments = Vec::new();
        for (stem, (has_manifest, has_raw)) in stems {
            if has_manifest {
                let name = format!("{stem}{MANIFEST_SUFFIX}");
                // One unreadable manifest must not hide the rest of the archive: the segment
                // is listed as broken, and reading it reports why.
                let (manifest, broken) = match Manifest::read(&self.dir.join(&name)) {
                    Ok(m) => (Some(m), None),
                    Err(e) => (None, Some(e.to_string())),
                };
                segments.push(Segment {
                    stem,
                    manifest,
                    broken,
                });
            } else if has_raw {
                segments.push(Segment {
                    stem,
                    manifest: None,
                    broken: None,
                });
            }
        }
        self.segments = segments;
        Ok(())
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Its segments, oldest first.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// Each agent's highest sequence number in the archive, from the closed segments' indexes
    /// (no line is parsed) and the open segments' lines: where a restarted emitter continues.
    pub fn last_seqs(&self) -> Result<std::collections::HashMap<AgentRef, u64>, ReadError> {
        let mut last = std::collections::HashMap::<AgentRef, u64>::new();
        let mut note = |agent: AgentRef, seq: u64| {
            let slot = last.entry(agent).or_insert(0);
            *slot = (*slot).max(seq);
        };
        for segment in &self.segments {
            match &segment.manifest {
                Some(m) => {
                    let sealed = SealedSegment::open_current(&self.dir, m)?;
                    for a in &sealed.index.agents {
                        note(AgentRef::new(a.class.clone(), a.name.clone()), a.last_seq);
                    }
                }
                None => {
                    let mut only = self.clone();
                    only.segments = vec![segment.clone()];
                    only.scan(&Query::default(), |e| {
                        note(e.agent, e.seq);
                        ControlFlow::Continue(())
                    })?;
                }
            }
        }
        Ok(last)
    }

    /// Calls `f` with every event the query selects, in archive order (per agent, emit order).
    pub fn scan(
        &self,
        query: &Query,
        mut f: impl FnMut(Event) -> ControlFlow<()>,
    ) -> Result<ScanStats, ReadError> {
        self.scan_dyn(query, &mut f)
    }

    fn scan_dyn(
        &self,
        query: &Query,
        f: &mut dyn FnMut(Event) -> ControlFlow<()>,
    ) -> Result<ScanStats, ReadError> {
        let mut stats = ScanStats::default();
        let needle = query.agent_needle();
        let finder = needle.as_deref().map(memchr::memmem::Finder::new);
        for segment in &self.segments {
            stats.segments += 1;
            segment.check()?;
            let mut visit =
                |line: &[u8], line_no: u64, offset: u64| -> Result<ControlFlow<()>, ReadError> {
                    if let Some(finder) = &finder {
                        if finder.find(line).is_none() {
                            return Ok(ControlFlow::Continue(()));
                        }
                    }
                    stats.lines_parsed += 1;
                    let text = std::str::from_utf8(line).map_err(|e| ReadError {
                        file: segment.stem.clone(),
                        line: Some(line_no),
                        offset: Some(offset),
                        message: format!("not UTF-8: {e}"),
                    })?;
                    let event = Event::from_json_line(text).map_err(|e| ReadError {
                        file: segment.stem.clone(),
                        line: Some(line_no),
                        offset: Some(offset),
                        message: e.to_string(),
                    })?;
                    if query.matches(&event) {
                        stats.events += 1;
                        return Ok(f(event));
                    }
                    Ok(ControlFlow::Continue(()))
                };
            let flow = match &segment.manifest {
                Some(m) => {
                    if m.events > 0 && !query.overlaps(m.first_ts_ns, m.last_ts_ns) {
                        stats.segments_pruned += 1;
                        continue;
                    }
                    if m.format != LineFormat::Jsonl {
                        return Err(ReadError::file(
                            &m.file,
                            "segment is in the otlp_json format; session, tail, stats and replay read jsonl segments",
                        ));
                    }
                    let sealed = SealedSegment::open_current(&self.dir, m)?;
                    let blocks = sealed.select(query);
                    let mut flow = ControlFlow::Continue(());
                    for block in blocks {
                        let data = sealed.read_block(&block)?;
                        stats.blocks_read += 1;
                        stats.bytes_read += block.stored_len;
                        flow =
                            for_each_line(&data, block.first_line, block.raw_offset, &mut visit)?;
                        if flow.is_break() {
                            break;
                        }
                    }
                    flow
                }
                None => {
                    let path = self.dir.join(format!("{}{RAW_SUFFIX}", segment.stem));
                    match fs::read(&path) {
                        Ok(data) => {
                            stats.bytes_read += data.len() as u64;
                            let complete = memchr::memrchr(b'\n', &data).map_or(0, |i| i + 1);
                            for_each_line(&data[..complete], 1, 0, &mut visit)?
                        }
                        // Closed and compressed since we listed it: read it as closed.
                        Err(e) if e.kind() == io::ErrorKind::NotFound => {
                            let mut again = Archive::open(&self.dir)?;
                            again.segments.retain(|s| s.stem == segment.stem);
                            let more = again.scan_dyn(query, f)?;
                            stats.blocks_read += more.blocks_read;
                            stats.bytes_read += more.bytes_read;
                            stats.lines_parsed += more.lines_parsed;
                            stats.events += more.events;
                            if more.stopped {
                                ControlFlow::Break(())
                            } else {
                                ControlFlow::Continue(())
                            }
                        }
                        Err(e) => {
                            return Err(ReadError::file(path.display().to_string(), e.to_string()))
                        }
                    }
                }
            };
            if flow.is_break() {
                stats.stopped = true;
                break;
            }
        }
        Ok(stats)
    }
}

/// Calls `visit(line, line_no, offset)` for each newline-terminated line of `data`.
pub(crate) fn for_each_line<E>(
    data: &[u8],
    first_line: u64,
    base_offset: u64,
    visit: &mut impl FnMut(&[u8], u64, u64) -> Result<ControlFlow<()>, E>,
) -> Result<ControlFlow<()>, E> {
    let mut start = 0usize;
    for (line_no, end) in (first_line..).zip(memchr::memchr_iter(b'\n', data)) {
        let line = &data[start..end];
        if let ControlFlow::Break(()) =
            visit(line, line_no, base_offset.saturating_add(start as u64))?
        {
            return Ok(ControlFlow::Break(()));
        }
        start = end + 1;
    }
    Ok(ControlFlow::Continue(()))
}

/// A closed segment's data file and index, for block reads.
pub struct SealedSegment {
    manifest: Manifest,
    file: File,
    file_len: u64,
    /// The index.
    pub index: Index,
}

impl SealedSegment {
    /// Opens the segment `manifest` describes; if the writer compressed it since the manifest
    /// was read (its files renamed), reads the manifest again and opens what it names now.
    /// Once open, the files stay readable even if they are renamed or removed.
    pub fn open_current(dir: &Path, manifest: &Manifest) -> Result<Self, ReadError> {
        let mut m = manifest.clone();
        for _ in 0..3 {
            match Self::open(dir, m.clone()) {
                Err(e) if e.message.contains("No such file") => {
                    let path = dir.join(format!("{}{MANIFEST_SUFFIX}", m.segment));
                    m = Manifest::read(&path)
                        .map_err(|e| ReadError::file(&m.segment, e.to_string()))?;
                }
                other => return other,
            }
        }
        Self::open(dir, m)
    }

    /// Opens the data file and decodes the index.
    pub fn open(dir: &Path, manifest: Manifest) -> Result<Self, ReadError> {
        let index_bytes = fs::read(dir.join(&manifest.index_file))
            .map_err(|e| ReadError::file(&manifest.index_file, e.to_string()))?;
        let index = Index::decode(&index_bytes)
            .map_err(|e| ReadError::file(&manifest.index_file, e.to_string()))?;
        let file = File::open(dir.join(&manifest.file))
            .map_err(|e| ReadError::file(&manifest.file, e.to_string()))?;
        let file_len = file
            .metadata()
            .map_err(|e| ReadError::file(&manifest.file, e.to_string()))?
            .len();
        Ok(Self {
            manifest,
            file,
            file_len,
            index,
        })
    }

    /// The manifest of what was opened.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The blocks a query needs: those of its agent (when it names one) in its time range.
    pub fn select(&self, query: &Query) -> Vec<Block> {
        let in_range = |b: &Block| b.events == 0 || query.overlaps(b.first_ts_ns, b.last_ts_ns);
        match &query.agent {
            Some(AgentFilter::Exact(a)) => match self.index.agent(&a.class, &a.name) {
                Some(entry) => entry
                    .blocks()
                    .filter_map(|id| self.index.blocks.get(id as usize).copied())
                    .filter(in_range)
                    .collect(),
                None => Vec::new(),
            },
            _ => self.index.blocks.iter().copied().filter(in_range).collect(),
        }
    }

    /// Reads (and decompresses) one block: whole lines, uncompressed.
    pub fn read_block(&self, block: &Block) -> Result<Vec<u8>, ReadError> {
        let name = &self.manifest.file;
        let bad = |message: String| ReadError {
            file: name.clone(),
            line: Some(block.first_line),
            offset: Some(block.raw_offset),
            message,
        };
        if block.stored_len > MAX_BLOCK_BYTES
            || block.raw_len > MAX_BLOCK_BYTES
            || block.raw_len > self.manifest.raw_bytes
            || block.stored_offset.saturating_add(block.stored_len) > self.file_len
        {
            return Err(bad(format!(
                "index block (bytes {}..+{}) is outside the {}-byte data file",
                block.stored_offset, block.stored_len, self.file_len
            )));
        }
        let mut stored = vec![0u8; block.stored_len as usize];
        self.file
            .read_exact_at(&mut stored, block.stored_offset)
            .map_err(|e| bad(e.to_string()))?;
        let data = match self.manifest.compression {
            Compression::None => stored,
            Compression::Zstd => zstd::bulk::decompress(&stored, block.raw_len as usize)
                .map_err(|e| bad(format!("zstd: {e}")))?,
        };
        if data.len() as u64 != block.raw_len {
            return Err(bad(format!(
                "block holds {} bytes, the index says {}",
                data.len(),
                block.raw_len
            )));
        }
        if block.raw_len > 0 && data.last() != Some(&b'\n') {
            return Err(bad("block does not end at a line end".into()));
        }
        Ok(data)
    }
}

/// Follows an archive as it grows (`sightline tail -f`): each poll yields the events appended
/// since the previous one, across rotation and compression.
#[derive(Debug)]
pub struct Follower {
    dir: PathBuf,
    consumed: std::collections::HashMap<String, u64>,
}

impl Follower {
    /// A follower that starts at the archive's current end.
    pub fn at_end(dir: impl Into<PathBuf>) -> Result<Self, ReadError> {
        let dir = dir.into();
        let archive = Archive::open(&dir)?;
        let mut consumed = std::collections::HashMap::new();
        for s in archive.segments() {
            let end = match &s.manifest {
                Some(m) => m.raw_bytes,
                None => {
                    let path = dir.join(format!("{}{RAW_SUFFIX}", s.stem));
                    // Gone since listed: closed and compressed, so all of it is in the past.
                    read_open_from(&path, 0).map_or(u64::MAX, |(_, end)| end)
                }
            };
            consumed.insert(s.stem.clone(), end);
        }
        Ok(Self { dir, consumed })
    }

    /// Calls `f` with every matching event appended since the last poll; returns how many.
    pub fn poll(&mut self, query: &Query, mut f: impl FnMut(Event)) -> Result<u64, ReadError> {
        let archive = Archive::open(&self.dir)?;
        let mut seen = 0u64;
        let mut live = std::collections::HashSet::new();
        for s in archive.segments() {
            s.check()?;
            live.insert(s.stem.clone());
            let from = self.consumed.get(&s.stem).copied().unwrap_or(0);
            let mut visit = |line: &[u8], line_no: u64, offset: u64| {
                if offset < from {
                    return Ok(ControlFlow::Continue(()));
                }
                let text = String::from_utf8_lossy(line);
                let event = Event::from_json_line(&text).map_err(|e| ReadError {
                    file: s.stem.clone(),
                    // 0: read from the middle of an open segment, line unknown.
                    line: (line_no > 0).then_some(line_no),
                    offset: Some(offset),
                    message: e.to_string(),
                })?;
                if query.matches(&event) {
                    seen += 1;
                    f(event);
                }
                Ok::<_, ReadError>(ControlFlow::Continue(()))
            };
            let end = match &s.manifest {
                Some(m) if m.raw_bytes <= from => continue,
                Some(m) => {
                    if m.format != LineFormat::Jsonl {
                        continue;
                    }
                    let sealed = SealedSegment::open_current(&self.dir, m)?;
                    for block in sealed
                        .index
                        .blocks
                        .iter()
                        .filter(|b| b.raw_offset.saturating_add(b.raw_len) > from)
                    {
                        let data = sealed.read_block(block)?;
                        let _ =
                            for_each_line(&data, block.first_line, block.raw_offset, &mut visit)?;
                    }
                    m.raw_bytes
                }
                None => {
                    let path = self.dir.join(format!("{}{RAW_SUFFIX}", s.stem));
                    match read_open_from(&path, from) {
                        Ok((data, end)) => {
                            // Line numbers are unknown mid-file; offsets locate errors.
                            let first_line = u64::from(from == 0);
                            let _ = for_each_line(&data, first_line, from, &mut visit)?;
                            end
                        }
                        // Closed since listed: the next poll reads it as closed.
                        Err(e) if e.kind() == io::ErrorKind::NotFound => from,
                        Err(e) => {
                            return Err(ReadError::file(path.display().to_string(), e.to_string()))
                        }
                    }
                }
            };
            self.consumed.insert(s.stem.clone(), end);
        }
        self.consumed.retain(|stem, _| live.contains(stem));
        Ok(seen)
    }
}

/// Reads an open segment's complete lines from `offset` on; returns them and the offset
/// after the last complete line.
pub fn read_open_from(path: &Path, offset: u64) -> io::Result<(Vec<u8>, u64)> {
    let mut file = File::open(path)?;
    file.seek(SeekFrom::Start(offset))?;
    let mut data = Vec::new();
    BufReader::new(file).read_to_end(&mut data)?;
    let complete = memchr::memrchr(b'\n', &data).map_or(0, |i| i + 1);
    data.truncate(complete);
    let end = offset + complete as u64;
    Ok((data, end))
}
