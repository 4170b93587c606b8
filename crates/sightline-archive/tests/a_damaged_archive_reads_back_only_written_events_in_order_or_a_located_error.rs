//! The reader on a damaged archive (one compressed segment, one plain closed segment, one open
//! segment ending in a torn line; one of their files overwritten, truncated or spliced as the
//! input says) does not only avoid panicking: what it says is true.
//!
//! - A scan yields events that were written, each once, every agent's in the order written.
//!   Lines the damage itself rewrote can still parse (the archive keeps no checksums), so the
//!   events nobody wrote number at most the lines the damage touched; where the damage cannot
//!   rewrite a line (a cut, a manifest, an index) there are none.
//! - A scan that fails names a file of the archive, and its message says where.
//! - `verify` names a file of the archive for every problem it reports.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::ops::ControlFlow;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use sightline_archive::segment::{INDEX_SUFFIX, MANIFEST_SUFFIX};
use sightline_archive::{
    verify, AgentFilter, Archive, ArchiveConfig, ArchiveWriter, Compression, Query, LOCK_FILE,
};
use sightline_event::{AgentRef, Event, Rpc, StateUpdate};
use sightline_sink::Sink;

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
            .unwrap();
            let batch = events(from, 30);
            w.write(&batch).unwrap();
            w.shutdown().unwrap();
            written.extend(batch);
        }
        // An open segment, as a crashed writer leaves it: whole lines, then half of one.
        let open_events = events(60, 12);
        let mut open: Vec<u8> = open_events
            .iter()
            .flat_map(|e| e.to_json_line().into_bytes().into_iter().chain([b'\n']))
            .collect();
        open.extend_from_slice(br#"{"v":1,"type":"rpc","#);
        fs::write(dir.join("seg-29991231T000000.000000000Z.jsonl"), open).unwrap();
        written.extend(open_events);
        let mut files: Vec<(String, Vec<u8>)> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap())
            .filter(|e| e.file_name() != LOCK_FILE)
            .map(|e| {
                (
                    e.file_name().to_string_lossy().into_owned(),
                    fs::read(e.path()).unwrap(),
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
    fs::create_dir_all(dir).unwrap();
    // Private, as the writer makes it (verify warns otherwise).
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).unwrap();
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
        fs::write(dir.join(name), bytes).unwrap();
    }
    let name = &files[target].0;
    let data_file = !name.ends_with(MANIFEST_SUFFIX) && !name.ends_with(INDEX_SUFFIX);
    Damage {
        file: name.clone(),
        rewrites_lines: data_file && mode != 1 && !payload.is_empty(),
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
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
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

/// Scans with `query`; checks what came back against what was written.
fn check_scan(dir: &Path, query: &Query, how: &Damage) {
    let p = pristine();
    let written: HashSet<String> = p.written.iter().map(Event::to_json_line).collect();
    let mut seen = HashSet::new();
    let mut last_seq: HashMap<AgentRef, u64> = HashMap::new();
    let mut unwritten = 0usize;
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
    if let Err(e) = result {
        assert!(names_a_file_of(dir, &e.file), "{e:?} ({how:?})");
        assert!(e.to_string().starts_with(&e.file), "{e} ({how:?})");
        assert!(!e.message.is_empty(), "{e:?}");
    }
}

fn check(data: &[u8]) {
    let dir: PathBuf =
        std::env::temp_dir().join(format!("sightline-archive-damage-{}", std::process::id()));
    let how = damage(&dir, data);
    check_scan(&dir, &Query::default(), &how);
    let one = Query {
        agent: Some(AgentFilter::Exact(AgentRef::new("Support", "t-1"))),
        ..Default::default()
    };
    check_scan(&dir, &one, &how);
    if let Ok(report) = verify(&dir) {
        for p in report.problems.iter().chain(&report.warnings) {
            assert!(names_a_file_of(&dir, &p.file), "{p:?} ({how:?})");
        }
    }
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn the_pristine_archive_reads_back_every_event_written() {
    let dir = std::env::temp_dir().join(format!(
        "sightline-archive-damage-none-{}",
        std::process::id()
    ));
    // A splice of nothing at the start of the first file: the archive as written.
    let how = damage(&dir, &[0, 2, 0, 0, 0]);
    assert!(!how.rewrites_lines);
    let mut back = Vec::new();
    Archive::open(&dir)
        .unwrap()
        .scan(&Query::default(), |e| {
            back.push(e);
            ControlFlow::Continue(())
        })
        .unwrap();
    let written = &pristine().written;
    assert_eq!(back.len(), written.len());
    for e in written {
        assert!(back.contains(e), "{e:?} did not come back");
    }
    let report = verify(&dir).unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    let _ = fs::remove_dir_all(&dir);
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]
    #[test]
    fn a_damaged_archive_reads_back_only_written_events_in_order_or_a_located_error(
        data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64)
    ) {
        check(&data);
    }
}
