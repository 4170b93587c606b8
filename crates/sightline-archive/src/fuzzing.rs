//! The reader under corruption, and what it must still say: the one oracle behind the fuzzer
//! (`fuzz/fuzz_targets/read_archive.rs`) and the property test
//! (`tests/a_damaged_archive_reads_back_only_written_events_in_order_or_a_located_error.rs`).
//!
//! A small, valid archive (one compressed segment, one plain closed segment, one open segment
//! ending in a torn line) is damaged as the input says — bytes overwritten, the file truncated
//! (a truncated zstd frame, a cut index, half a manifest), or bytes spliced in — and then read
//! every way the commands read it. Errors are expected; what the reader says must be true:
//!
//! - A scan yields events that were written, each once, every agent's in the order written.
//!   Lines the damage itself rewrote can still parse (the archive keeps no checksums), so the
//!   events nobody wrote number at most the lines the damage touched; where the damage cannot
//!   rewrite a line (a cut, a manifest, an index) there are none.
//! - A scan that fails names a file of the archive, and its message says where.
//! - `verify` names a file of the archive for every problem it reports.
//! - An undamaged archive reads back every event written, and `verify` finds no problem.
//!
//! [`check`] **panics** when one of these is violated (and a panic or a hang in the reader is
//! a bug too): a panic is what a fuzzer looks for, and what fails a test.

// This module is an oracle: asserting, and panicking with a clear message, is its job (the
// crate denies these elsewhere because there they would be panics on user data).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{HashMap, HashSet};
use std::fs;
use std::ops::ControlFlow;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use sightline_event::{AgentRef, Event, Rpc, StateUpdate};
use sightline_sink::Sink;

use crate::segment::{INDEX_SUFFIX, MANIFEST_SUFFIX};
use crate::{
    verify, AgentFilter, Archive, ArchiveConfig, ArchiveWriter, Compression, Follower, Query,
    ReadError, LOCK_FILE,
};

const AGENTS: u64 = 3;

/// Events `from..from + n`, round-robin over the agents, each agent's seqs contiguous.
fn events(from: u64, n: u64) -> Vec<Event> {
    (from..from + n)
        .map(|i| {
            let agent = AgentRef::new("Support", format!("t-{}", i % AGENTS));
            let seq = i / AGENTS + 1;
            if i % 2 == 0 {
                Event::new(
                    agent,
                    seq,
                    Rpc {
                        method: "get".into(),
                        ..Default::default()
                    },
                )
            } else {
                Event::new(
                    agent,
                    seq,
                    StateUpdate {
                        version: i,
                        changed_paths: vec!["/a".into()],
                        size_bytes: 10,
                        ..Default::default()
                    },
                )
            }
        })
        .collect()
}

/// The pristine archive: its files by name, and every event written to it.
struct Pristine {
    files: Vec<(String, Vec<u8>)>,
    written: Vec<Event>,
}

fn pristine() -> &'static Pristine {
    static P: OnceLock<Pristine> = OnceLock::new();
    P.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!(
            "sightline-archive-damage-base-{}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&dir);
        let mut written = Vec::new();
        for (compression, from) in [(Compression::Zstd, 0), (Compression::None, 30)] {
            let mut w = ArchiveWriter::open(
                &dir,
                ArchiveConfig {
                    compression,
                    index_block_bytes: 512,
                    retention_max_bytes: 0,
                    retention_max_age_secs: 0,
                    ..ArchiveConfig::default()
                },
            )
            .expect("open the pristine archive");
            let batch = events(from, 30);
            w.write(&batch).expect("write the pristine archive");
            w.shutdown().expect("close the pristine archive");
            written.extend(batch);
        }
        // An open segment, as a crashed writer leaves it: whole lines, then half of one.
        let open_events = events(60, 12);
        let mut open: Vec<u8> = open_events
            .iter()
            .flat_map(|e| e.to_json_line().into_bytes().into_iter().chain([b'\n']))
            .collect();
        open.extend_from_slice(br#"{"v":1,"type":"rpc","#);
        fs::write(dir.join("seg-29991231T000000.000000000Z.jsonl"), open)
            .expect("write the open segment");
        written.extend(open_events);
        let mut files: Vec<(String, Vec<u8>)> = fs::read_dir(&dir)
            .expect("list the pristine archive")
            .map(|e| e.expect("list the pristine archive"))
            .filter(|e| e.file_name() != LOCK_FILE)
            .map(|e| {
                (
                    e.file_name().to_string_lossy().into_owned(),
                    fs::read(e.path()).expect("read the pristine archive"),
                )
            })
            .collect();
        files.sort();
        let _ = fs::remove_dir_all(&dir);
        Pristine { files, written }
    })
}

/// How a file was damaged.
#[derive(Debug)]
struct Damage {
    /// The damaged file (read through `Debug`, in failure messages).
    #[allow(dead_code)]
    file: String,
    /// Whether the file is byte for byte as written (e.g. a splice of nothing).
    #[allow(dead_code)]
    unchanged: bool,
    /// Whether the damage can leave a rewritten line that still parses: bytes overwritten or
    /// spliced into segment data (a cut only shortens; manifests and indexes hold no events).
    rewrites_lines: bool,
    /// The most lines it can have touched.
    lines_touched: usize,
}

/// Writes the pristine archive into `dir`, damaging one file as `data` says.
fn damage(dir: &Path, data: &[u8]) -> Damage {
    let files = &pristine().files;
    let (target, mode, offset, payload) = match data {
        [t, m, a, b, c, rest @ ..] => (
            *t as usize % files.len(),
            *m % 3,
            u32::from_le_bytes([*a, *b, *c, 0]) as usize,
            rest,
        ),
        _ => (0, 0, 0, data),
    };
    let _ = fs::remove_dir_all(dir);
    fs::create_dir_all(dir).expect("create the damaged archive's directory");
    // Private, as the writer makes it (verify warns otherwise).
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
        .expect("make the damaged archive's directory private");
    let mut unchanged = true;
    for (i, (name, pristine_bytes)) in files.iter().enumerate() {
        let mut bytes = pristine_bytes.clone();
        if i == target {
            let at = offset % (bytes.len() + 1);
            match mode {
                0 => {
                    for (j, b) in payload.iter().enumerate() {
                        if let Some(slot) = bytes.get_mut(at + j) {
                            *slot = *b;
                        }
                    }
                }
                1 => bytes.truncate(at),
                _ => {
                    let tail = bytes.split_off(at);
                    bytes.extend_from_slice(payload);
                    bytes.extend_from_slice(&tail);
                }
            }
            unchanged = bytes == *pristine_bytes;
        }
        fs::write(dir.join(name), bytes).expect("write the damaged archive");
    }
    let name = &files[target].0;
    let data_file = !name.ends_with(MANIFEST_SUFFIX) && !name.ends_with(INDEX_SUFFIX);
    Damage {
        file: name.clone(),
        unchanged,
        rewrites_lines: data_file && mode != 1 && !payload.is_empty() && !unchanged,
        // Each damaged byte sits in one line; a splice adds a line per newline it carries.
        lines_touched: payload.len() + 1,
    }
}

/// Whether `file`, as an error or a problem names it, is the archive, a file of it (its name,
/// or a segment's stem that names its files), or a file one of its manifests names (a
/// damaged manifest can name one that is not there: the error then points at that name).
fn names_a_file_of(dir: &Path, file: &str) -> bool {
    if Path::new(file) == dir {
        return true;
    }
    if file.is_empty() {
        return false;
    }
    let names: Vec<String> = fs::read_dir(dir)
        .expect("list the damaged archive")
        .map(|e| {
            e.expect("list the damaged archive")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    let named_by_manifests = names
        .iter()
        .filter(|n| n.ends_with(MANIFEST_SUFFIX))
        .filter_map(|n| {
            serde_json::from_slice::<serde_json::Value>(&fs::read(dir.join(n)).ok()?).ok()
        })
        .any(|m| {
            ["segment", "file", "index_file"]
                .iter()
                .any(|k| m[*k] == file)
        });
    names.iter().any(|n| n.starts_with(file)) || named_by_manifests
}

/// Scans with `query`; checks what came back against what was written. Returns the written
/// events the scan yielded, or its error.
fn check_scan(dir: &Path, query: &Query, how: &Damage) -> Result<Vec<Event>, ReadError> {
    let p = pristine();
    let written: HashSet<String> = p.written.iter().map(Event::to_json_line).collect();
    let mut seen = HashSet::new();
    let mut last_seq: HashMap<AgentRef, u64> = HashMap::new();
    let mut unwritten = 0usize;
    let mut back = Vec::new();
    let result = Archive::open(dir).and_then(|a| {
        a.scan(query, |e| {
            let line = e.to_json_line();
            if !written.contains(&line) {
                unwritten += 1;
                return ControlFlow::Continue(());
            }
            assert!(seen.insert(line), "read twice: {e:?} ({how:?})");
            if let Some(AgentFilter::Exact(agent)) = &query.agent {
                assert_eq!(&e.agent, agent, "{how:?}");
            }
            let last = last_seq.entry(e.agent.clone()).or_insert(0);
            assert!(
                e.seq > *last,
                "{}: seq {} after {} ({how:?})",
                e.agent,
                e.seq,
                last
            );
            *last = e.seq;
            back.push(e);
            ControlFlow::Continue(())
        })
    });
    if how.rewrites_lines {
        assert!(
            unwritten <= how.lines_touched,
            "{unwritten} events nobody wrote ({how:?})"
        );
    } else {
        assert_eq!(unwritten, 0, "events nobody wrote ({how:?})");
    }
    if let Err(e) = &result {
        assert_located(dir, e, how);
    }
    result.map(|_| back)
}

/// A read error names a file of the archive, and its message says where.
fn assert_located(dir: &Path, e: &ReadError, how: &Damage) {
    assert!(names_a_file_of(dir, &e.file), "{e:?} ({how:?})");
    assert!(e.to_string().starts_with(&e.file), "{e} ({how:?})");
    assert!(!e.message.is_empty(), "{e:?}");
}

/// A fresh directory for one check (checks may run on several threads of one process).
fn work_dir() -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    std::env::temp_dir().join(format!(
        "sightline-archive-damage-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ))
}

/// Damages a copy of the pristine archive as `data` says, reads it every way, and **panics**
/// if what the reader says is not true (see the module doc). Any input is valid.
pub fn check(data: &[u8]) {
    let dir = work_dir();
    let how = damage(&dir, data);
    check_damaged(&dir, &how);
    let _ = fs::remove_dir_all(&dir);
}

/// Checks the pristine archive, undamaged (a splice of nothing at the start of the first
/// file): it reads back every event written, and `verify` finds no problem. **Panics** if not.
pub fn check_pristine() {
    let dir = work_dir();
    let how = damage(&dir, &[0, 2, 0, 0, 0]);
    assert!(how.unchanged && !how.rewrites_lines, "{how:?}");
    check_damaged(&dir, &how);
    let _ = fs::remove_dir_all(&dir);
}

fn check_damaged(dir: &Path, how: &Damage) {
    let all = check_scan(dir, &Query::default(), how);
    let one = Query {
        agent: Some(AgentFilter::Exact(AgentRef::new("Support", "t-1"))),
        ..Default::default()
    };
    let _ = check_scan(dir, &one, how);
    let report = verify(dir);
    if let Ok(report) = &report {
        for p in report.problems.iter().chain(&report.warnings) {
            assert!(names_a_file_of(dir, &p.file), "{p:?} ({how:?})");
        }
    }
    if how.unchanged {
        let back = all.expect("scan an undamaged archive");
        let written = &pristine().written;
        assert_eq!(back.len(), written.len(), "undamaged ({how:?})");
        for e in written {
            assert!(back.contains(e), "{e:?} did not come back ({how:?})");
        }
        let report = report.expect("verify an undamaged archive");
        assert!(report.problems.is_empty(), "{:?}", report.problems);
    }
    // The other ways the commands read: their errors are located too.
    match Archive::open(dir).and_then(|a| a.last_seqs()) {
        Err(e) => assert_located(dir, &e, how),
        Ok(last) if how.unchanged => {
            let mut written_last: HashMap<AgentRef, u64> = HashMap::new();
            for e in &pristine().written {
                let slot = written_last.entry(e.agent.clone()).or_insert(0);
                *slot = (*slot).max(e.seq);
            }
            assert_eq!(last, written_last, "last seqs of an undamaged archive");
        }
        Ok(_) => {}
    }
    if let Err(e) = Follower::at_end(dir).and_then(|mut f| f.poll(&Query::default(), |_| {})) {
        assert_located(dir, &e, how);
    }
}
