//! Segment files, their manifest and their index.
//!
//! A segment `seg-20261123T221529.123456789Z` is, on disk:
//! - `<stem>.jsonl` while it is open (and after closing when compression is off), or
//!   `<stem>.jsonl.zst` once compressed: one zstd frame per index block;
//! - `<stem>.manifest.json`, written atomically when the segment closes: its time range,
//!   counts, format, compression, and the names of its data and index files. The manifest
//!   is the source of truth: files of a stem that it does not name are leftovers of an
//!   interrupted step and are removed on the next start;
//! - `<stem>.idx` (or `<stem>.zst.idx` for the compressed file), a postcard-encoded
//!   [`Index`]: the blocks (byte ranges holding whole lines, with their time range) and, per
//!   agent, its event count, sequence range and the blocks holding its events.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sightline_event::AgentRef;
use smol_str::SmolStr;

use crate::config::{Compression, LineFormat};

/// Suffix of an open (or uncompressed) segment's data file.
pub const RAW_SUFFIX: &str = ".jsonl";
/// Suffix of a compressed segment's data file.
pub const ZST_SUFFIX: &str = ".jsonl.zst";
/// Suffix of a segment's manifest.
pub const MANIFEST_SUFFIX: &str = ".manifest.json";
/// Suffix of an uncompressed segment's index.
pub const INDEX_SUFFIX: &str = ".idx";
/// Suffix of a compressed segment's index.
pub const ZST_INDEX_SUFFIX: &str = ".zst.idx";
/// Suffix of files being written; removed on start.
pub const TMP_SUFFIX: &str = ".tmp";
/// Version of the manifest and index layout.
pub const LAYOUT_VERSION: u32 = 1;

/// The stem of a segment opened at `t`: names sort by time.
pub fn stem_for(t: SystemTime) -> String {
    let text = humantime::format_rfc3339_nanos(t).to_string();
    format!("seg-{}", text.replace([':', '-'], ""))
}

/// The time a stem was named after (Unix ns).
pub fn parse_stem_time(stem: &str) -> Option<u64> {
    let t = stem.strip_prefix("seg-")?;
    // 20261123T221529.123456789Z -> 2026-11-23T22:15:29.123456789Z
    let (date, time) = t.split_once('T')?;
    if date.len() != 8 || time.len() < 7 {
        return None;
    }
    let text = format!(
        "{}-{}-{}T{}:{}:{}",
        date.get(0..4)?,
        date.get(4..6)?,
        date.get(6..8)?,
        time.get(0..2)?,
        time.get(2..4)?,
        time.get(4..)?
    );
    humantime::parse_rfc3339(&text).ok().map(unix_ns)
}

/// The segment stem of a file name in an archive directory, if it is one of ours.
pub fn stem_of(file_name: &str) -> Option<&str> {
    if !file_name.starts_with("seg-") {
        return None;
    }
    [
        TMP_SUFFIX,
        MANIFEST_SUFFIX,
        ZST_INDEX_SUFFIX,
        INDEX_SUFFIX,
        ZST_SUFFIX,
        RAW_SUFFIX,
    ]
    .iter()
    .find_map(|suffix| file_name.strip_suffix(suffix))
    .map(|rest| {
        // `<stem>.<anything>.tmp`: the stem ends at the first dot after the timestamp.
        rest.find(".jsonl")
            .or_else(|| rest.find(".manifest"))
            .or_else(|| rest.find(".zst"))
            .or_else(|| rest.find(".idx"))
            .map_or(rest, |i| &rest[..i])
    })
}

/// What a closed segment holds: written atomically when it closes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Layout version.
    pub v: u32,
    /// The segment's stem.
    pub segment: String,
    /// Its data file (in the same directory).
    pub file: String,
    /// Its index file (in the same directory).
    pub index_file: String,
    /// What each line holds.
    pub format: LineFormat,
    /// Whether the data file is zstd frames.
    pub compression: Compression,
    /// Events in the segment.
    pub events: u64,
    /// Lines in the segment.
    pub lines: u64,
    /// Distinct agents in the segment.
    pub agents: u64,
    /// Index blocks.
    pub blocks: u64,
    /// Earliest event timestamp (Unix ns); 0 when empty.
    pub first_ts_ns: u64,
    /// Latest event timestamp (Unix ns); 0 when empty.
    pub last_ts_ns: u64,
    /// Uncompressed size of the lines, in bytes.
    pub raw_bytes: u64,
    /// Size of the data file, in bytes.
    pub stored_bytes: u64,
    /// When the segment was opened (Unix ns).
    pub opened_unix_ns: u64,
    /// When it was closed (Unix ns).
    pub sealed_unix_ns: u64,
    /// Whether it was closed by crash recovery rather than by its writer.
    pub recovered: bool,
    /// Bytes of a torn last line cut off by recovery.
    pub torn_bytes_truncated: u64,
    /// Lines recovery found unparseable (kept in place, reported by `sightline verify`).
    pub invalid_lines: u64,
}

impl Manifest {
    /// Reads and parses a manifest file.
    pub fn read(path: &Path) -> io::Result<Manifest> {
        let bytes = fs::read(path)?;
        serde_json::from_slice(&bytes).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: invalid manifest: {e}", path.display()),
            )
        })
    }
}

/// A byte range of whole lines: the unit a lookup reads (and decompresses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    /// Offset of the block in the data file.
    pub stored_offset: u64,
    /// Length of the block in the data file (a zstd frame when compressed).
    pub stored_len: u64,
    /// Offset of the block's first line in the uncompressed lines.
    pub raw_offset: u64,
    /// Length of the block's lines, uncompressed.
    pub raw_len: u64,
    /// Line number (from 1) of the block's first line in the segment.
    pub first_line: u64,
    /// Events in the block.
    pub events: u32,
    /// Earliest timestamp in the block (Unix ns).
    pub first_ts_ns: u64,
    /// Latest timestamp in the block (Unix ns).
    pub last_ts_ns: u64,
}

/// One agent's entry in a segment's index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentEntry {
    /// Agent class.
    pub class: SmolStr,
    /// Agent instance name.
    pub name: SmolStr,
    /// Its events in the segment.
    pub events: u64,
    /// Lowest sequence number.
    pub first_seq: u64,
    /// Highest sequence number.
    pub last_seq: u64,
    /// Blocks holding its events, delta-encoded (first id, then differences).
    pub block_deltas: Vec<u32>,
}

impl AgentEntry {
    /// The ids of the blocks holding this agent's events, ascending.
    pub fn blocks(&self) -> impl Iterator<Item = u32> + '_ {
        self.block_deltas.iter().scan(0u32, |acc, d| {
            *acc = acc.saturating_add(*d);
            Some(*acc)
        })
    }
}

/// A segment's index: its blocks and, per agent (sorted by class then name), where it is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Index {
    /// Layout version.
    pub v: u32,
    /// The blocks, in file order.
    pub blocks: Vec<Block>,
    /// The agents, sorted by (class, name).
    pub agents: Vec<AgentEntry>,
}

impl Index {
    /// Encodes the index.
    pub fn encode(&self) -> io::Result<Vec<u8>> {
        postcard::to_stdvec(self).map_err(|e| io::Error::other(format!("index encoding: {e}")))
    }

    /// Decodes an index file's bytes.
    pub fn decode(bytes: &[u8]) -> io::Result<Index> {
        let index: Index = postcard::from_bytes(bytes).map_err(|e| {
            io::Error::new(io::ErrorKind::InvalidData, format!("invalid index: {e}"))
        })?;
        if index.v != LAYOUT_VERSION {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("index layout version {} is not {LAYOUT_VERSION}", index.v),
            ));
        }
        Ok(index)
    }

    /// The entry of one agent.
    pub fn agent(&self, class: &str, name: &str) -> Option<&AgentEntry> {
        self.agents
            .binary_search_by(|a| (a.class.as_str(), a.name.as_str()).cmp(&(class, name)))
            .ok()
            .and_then(|i| self.agents.get(i))
    }
}

/// Where one event sits in a line, for the index.
#[derive(Debug, Clone)]
pub struct LineEvent {
    /// Its agent.
    pub agent: AgentRef,
    /// Its sequence number.
    pub seq: u64,
    /// Its timestamp.
    pub ts_ns: u64,
}

#[derive(Debug)]
struct AgentAcc {
    events: u64,
    first_seq: u64,
    last_seq: u64,
    blocks: Vec<u32>,
}

/// Builds a segment's index as lines are appended.
#[derive(Debug)]
pub struct IndexBuilder {
    target: u64,
    blocks: Vec<Block>,
    current: Option<Block>,
    agents: HashMap<AgentRef, AgentAcc>,
    /// Events so far.
    pub events: u64,
    /// Lines so far.
    pub lines: u64,
    /// Bytes so far.
    pub raw_bytes: u64,
    /// Earliest timestamp so far.
    pub first_ts_ns: u64,
    /// Latest timestamp so far.
    pub last_ts_ns: u64,
}

impl IndexBuilder {
    /// A builder closing blocks once they reach `block_bytes`.
    pub fn new(block_bytes: u32) -> Self {
        Self {
            target: u64::from(block_bytes.max(1)),
            blocks: Vec::new(),
            current: None,
            agents: HashMap::new(),
            events: 0,
            lines: 0,
            raw_bytes: 0,
            first_ts_ns: 0,
            last_ts_ns: 0,
        }
    }

    /// Records a line of `len` bytes (newline included) at `offset`, holding `events`.
    pub fn add_line<'a>(
        &mut self,
        offset: u64,
        len: u64,
        events: impl IntoIterator<Item = (&'a AgentRef, u64, u64)>,
    ) {
        let block_id = self.blocks.len() as u32;
        let block = self.current.get_or_insert(Block {
            stored_offset: offset,
            stored_len: 0,
            raw_offset: offset,
            raw_len: 0,
            first_line: self.lines + 1,
            events: 0,
            first_ts_ns: u64::MAX,
            last_ts_ns: 0,
        });
        block.raw_len += len;
        block.stored_len += len;
        for (agent, seq, ts_ns) in events {
            block.events += 1;
            block.first_ts_ns = block.first_ts_ns.min(ts_ns);
            block.last_ts_ns = block.last_ts_ns.max(ts_ns);
            self.events += 1;
            if self.events == 1 {
                self.first_ts_ns = ts_ns;
            }
            self.first_ts_ns = self.first_ts_ns.min(ts_ns);
            self.last_ts_ns = self.last_ts_ns.max(ts_ns);
            match self.agents.get_mut(agent) {
                Some(acc) => {
                    acc.events += 1;
                    acc.first_seq = acc.first_seq.min(seq);
                    acc.last_seq = acc.last_seq.max(seq);
                    if acc.blocks.last() != Some(&block_id) {
                        acc.blocks.push(block_id);
                    }
                }
                None => {
                    self.agents.insert(
                        agent.clone(),
                        AgentAcc {
                            events: 1,
                            first_seq: seq,
                            last_seq: seq,
                            blocks: vec![block_id],
                        },
                    );
                }
            }
        }
        self.lines += 1;
        self.raw_bytes = offset + len;
        if block.raw_len >= self.target {
            self.close_block();
        }
    }

    fn close_block(&mut self) {
        if let Some(mut block) = self.current.take() {
            if block.events == 0 {
                block.first_ts_ns = 0;
            }
            self.blocks.push(block);
        }
    }

    /// Distinct agents so far.
    pub fn agent_count(&self) -> u64 {
        self.agents.len() as u64
    }

    /// The finished index.
    pub fn finish(mut self) -> Index {
        self.close_block();
        let mut agents: Vec<AgentEntry> = self
            .agents
            .into_iter()
            .map(|(agent, acc)| {
                let mut prev = 0u32;
                let block_deltas = acc
                    .blocks
                    .iter()
                    .map(|&b| {
                        let d = b - prev;
                        prev = b;
                        d
                    })
                    .collect();
                AgentEntry {
                    class: agent.class,
                    name: agent.name,
                    events: acc.events,
                    first_seq: acc.first_seq,
                    last_seq: acc.last_seq,
                    block_deltas,
                }
            })
            .collect();
        agents.sort_by(|a, b| (&a.class, &a.name).cmp(&(&b.class, &b.name)));
        Index {
            v: LAYOUT_VERSION,
            blocks: self.blocks,
            agents,
        }
    }
}

/// Unix nanoseconds of a `SystemTime`.
pub fn unix_ns(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_nanos()
        .min(u128::from(u64::MAX)) as u64
}

/// Creates a new file readable and writable by its owner only.
pub fn create_private(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
}

/// Writes `bytes` to `dir/name` atomically: a synced temporary file renamed into place.
/// The caller syncs the directory.
pub fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    let tmp = dir.join(format!("{name}{TMP_SUFFIX}"));
    let mut file = create_private(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    fs::rename(&tmp, dir.join(name))
}

/// Syncs a directory, so renames and creations in it survive a power failure.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stems_sort_by_time_and_are_found_in_every_file_name() {
        let a = stem_for(UNIX_EPOCH + Duration::from_nanos(1_763_936_129_000_000_001));
        let b = stem_for(UNIX_EPOCH + Duration::from_nanos(1_763_936_129_000_000_010));
        let c = stem_for(UNIX_EPOCH + Duration::from_secs(1_863_936_129));
        assert!(a < b && b < c, "{a} {b} {c}");
        assert_eq!(a, "seg-20251123T221529.000000001Z");
        for suffix in [
            RAW_SUFFIX,
            ZST_SUFFIX,
            MANIFEST_SUFFIX,
            INDEX_SUFFIX,
            ZST_INDEX_SUFFIX,
            ".jsonl.zst.tmp",
            ".manifest.json.tmp",
            ".zst.idx.tmp",
        ] {
            assert_eq!(
                stem_of(&format!("{a}{suffix}")),
                Some(a.as_str()),
                "{suffix}"
            );
        }
        assert_eq!(stem_of("LOCK"), None);
        assert_eq!(parse_stem_time(&a), Some(1_763_936_129_000_000_001));
    }

    #[test]
    fn the_index_finds_an_agents_blocks() {
        let mut b = IndexBuilder::new(100);
        let x = AgentRef::new("Support", "t-1");
        let y = AgentRef::new("Support", "t-2");
        let mut offset = 0;
        for i in 0..10u64 {
            let who = if i % 3 == 0 { &x } else { &y };
            b.add_line(offset, 60, [(who, i + 1, 1000 + i)]);
            offset += 60;
        }
        let index = Index::decode(&b.finish().encode().unwrap()).unwrap();
        assert_eq!(index.blocks.len(), 5);
        let e = index.agent("Support", "t-1").unwrap();
        assert_eq!((e.events, e.first_seq, e.last_seq), (4, 1, 10));
        assert_eq!(e.blocks().collect::<Vec<_>>(), vec![0, 1, 3, 4]);
        assert!(index.agent("Support", "t-3").is_none());
        assert_eq!(index.blocks[4].raw_offset, 480);
    }
}
