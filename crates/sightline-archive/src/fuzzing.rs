//! The reader under corruption, for the fuzzer (`fuzz/`) and the property test: a small,
//! valid archive (one compressed segment, one plain closed segment, one open segment) is
//! damaged as the input says — bytes overwritten, the file truncated (a truncated zstd frame,
//! a cut index, half a manifest), or bytes inserted — and then read every way the commands
//! read it. Errors are expected; a panic or a hang is the bug.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use sightline_event::{AgentRef, Event, Rpc, StateUpdate};
use sightline_sink::Sink;

use crate::{
    verify, AgentFilter, Archive, ArchiveConfig, ArchiveWriter, Compression, Follower, Query,
};

fn events(from: u64, n: u64) -> Vec<Event> {
    (from..from + n)
        .map(|i| {
            let agent = AgentRef::new("Support", format!("t-{}", i % 3));
            if i % 2 == 0 {
                Event::new(
                    agent,
                    i / 3 + 1,
                    Rpc {
                        method: "get".into(),
                        ..Default::default()
                    },
                )
            } else {
                Event::new(
                    agent,
                    i / 3 + 1,
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

/// The pristine archive: files by name.
fn base() -> &'static Vec<(String, Vec<u8>)> {
    static BASE: OnceLock<Vec<(String, Vec<u8>)>> = OnceLock::new();
    BASE.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("sightline-fuzz-base-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let small = |compression| ArchiveConfig {
            compression,
            index_block_bytes: 512,
            retention_max_bytes: 0,
            retention_max_age_secs: 0,
            ..ArchiveConfig::default()
        };
        for (compression, from) in [(Compression::Zstd, 0), (Compression::None, 30)] {
            // Without a base archive there is nothing to damage; the reads below then see an
            // empty directory.
            if let Ok(mut w) = ArchiveWriter::open(&dir, small(compression)) {
                let _ = w.write(&events(from, 30));
                let _ = w.shutdown();
            }
        }
        // An open segment, as a writer leaves it mid-line.
        let mut open: Vec<u8> = events(60, 10)
            .iter()
            .flat_map(|e| e.to_json_line().into_bytes().into_iter().chain([b'\n']))
            .collect();
        open.extend_from_slice(br#"{"v":1,"type":"rpc","#);
        let _ = std::fs::write(dir.join("seg-29991231T000000.000000000Z.jsonl"), open);
        let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_name() != crate::LOCK_FILE)
            .map(|e| {
                (
                    e.file_name().to_string_lossy().into_owned(),
                    std::fs::read(e.path()).unwrap_or_default(),
                )
            })
            .collect();
        files.sort();
        files
    })
}

fn work_dir() -> PathBuf {
    std::env::temp_dir().join(format!("sightline-fuzz-work-{}", std::process::id()))
}

/// Damages a copy of the pristine archive as `data` says, then reads it every way.
pub fn check(data: &[u8]) {
    let files = base();
    let dir = work_dir();
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::create_dir_all(&dir);
    let (target, mode, offset, payload) = match data {
        [t, m, a, b, c, rest @ ..] => (
            *t as usize % files.len().max(1),
            *m % 3,
            u32::from_le_bytes([*a, *b, *c, 0]) as usize,
            rest,
        ),
        _ => (0, 0, 0, data),
    };
    for (i, (name, bytes)) in files.iter().enumerate() {
        let mut bytes = bytes.clone();
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
        }
        let _ = std::fs::write(dir.join(name), bytes);
    }
    read_every_way(&dir);
}

fn read_every_way(dir: &Path) {
    let _ = verify(dir);
    if let Ok(archive) = Archive::open(dir) {
        let _ = archive.scan(&Query::default(), |_| ControlFlow::Continue(()));
        let one = Query {
            agent: Some(AgentFilter::Exact(AgentRef::new("Support", "t-1"))),
            ..Default::default()
        };
        let _ = archive.scan(&one, |_| ControlFlow::Continue(()));
        let _ = archive.last_seqs();
    }
    if let Ok(mut f) = Follower::at_end(dir) {
        let _ = f.poll(&Query::default(), |_| {});
    }
}
