//! Retention by age (`retention_max_age_secs`, size retention off): a closed segment whose
//! close lies further back than the limit is deleted, with its index and manifest, and counted
//! (segments, events); segments closed more recently stay, and so does the newest closed one.
//! What remains reads back whole.

use std::fs;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sightline_archive::segment::{Manifest, MANIFEST_SUFFIX};
use sightline_archive::{Archive, ArchiveConfig, ArchiveWriter, Compression, Query};
use sightline_event::{AgentRef, Event, StateUpdate};
use sightline_sink::Sink;

/// The age limit, in seconds: long enough that a segment closed just before the check is
/// still young when the maintenance thread gets to it, even on a loaded machine.
const MAX_AGE_SECS: u64 = 3;

fn events(from_seq: u64, n: u64) -> Vec<Event> {
    (from_seq..from_seq + n)
        .map(|seq| {
            Event::new(
                AgentRef::new("Support", "t-1"),
                seq,
                StateUpdate {
                    version: seq,
                    changed_paths: vec!["/status".into()],
                    size_bytes: 100,
                    ..Default::default()
                },
            )
        })
        .collect()
}

fn manifests(dir: &Path) -> Vec<Manifest> {
    let mut out: Vec<Manifest> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(MANIFEST_SUFFIX))
        .map(|p| Manifest::read(&p).unwrap())
        .collect();
    out.sort_by(|a, b| a.segment.cmp(&b.segment));
    out
}

fn unix_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Polls `f` every 20 ms until it holds, for at most `timeout`.
fn wait_for(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    f()
}

fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "sightline-archive-retention-age-{}",
        std::process::id()
    ));
    let _ = fs::remove_dir_all(&dir);
    dir
}

#[test]
fn retention_by_age_deletes_segments_closed_longer_ago_than_the_limit() {
    let dir = scratch();
    let cfg = ArchiveConfig {
        compression: Compression::None,
        retention_max_age_secs: MAX_AGE_SECS,
        retention_max_bytes: 0,
        ..ArchiveConfig::default()
    };
    let mut w = ArchiveWriter::open(&dir, cfg).unwrap();
    // The old segment: closed, then left until it is older than the limit.
    w.write(&events(1, 40)).unwrap();
    w.seal().unwrap();
    let old = manifests(&dir);
    assert_eq!(old.len(), 1);
    let old = old[0].clone();
    let max_age_ns = MAX_AGE_SECS * 1_000_000_000;
    assert!(
        wait_for(Duration::from_secs(MAX_AGE_SECS * 10), || unix_ns()
            .saturating_sub(old.sealed_unix_ns)
            > max_age_ns),
        "the clock never moved past the old segment's age limit"
    );

    // Two young segments; closing each runs retention.
    w.write(&events(41, 30)).unwrap();
    w.seal().unwrap();
    w.write(&events(71, 20)).unwrap();
    w.seal().unwrap();
    assert!(
        wait_for(Duration::from_secs(30), || w.stats().segments_retired > 0),
        "the old segment was never retired: {:?}",
        w.stats()
    );
    let stats = w.stats();
    assert_eq!(
        (stats.segments_retired, stats.events_retired),
        (1, 40),
        "{stats:?}"
    );

    // Gone with its files; the young ones stay and read back whole.
    let left = manifests(&dir);
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(left.iter().all(|m| m.segment != old.segment));
    for f in [&old.file, &old.index_file] {
        assert!(!dir.join(f).exists(), "{f} is still there");
    }
    let mut seqs = Vec::new();
    Archive::open(&dir)
        .unwrap()
        .scan(&Query::default(), |e| {
            seqs.push(e.seq);
            ControlFlow::Continue(())
        })
        .unwrap();
    assert_eq!(seqs, (41..=90).collect::<Vec<u64>>());
    w.shutdown().unwrap();
    drop(w);
    fs::remove_dir_all(&dir).unwrap();
}
