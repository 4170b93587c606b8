//! The archive's writer and reader together: rotation, compression, the index, recovery from
//! every crash point, retention, permissions, error handling.

use std::fs;
use std::io::Write;
use std::ops::ControlFlow;
use std::os::unix::fs::PermissionsExt;

use std::path::{Path, PathBuf};

use sightline_archive::segment::{Manifest, MANIFEST_SUFFIX, RAW_SUFFIX, ZST_SUFFIX};
use sightline_archive::*;
use sightline_event::{AgentRef, Event, ScheduleError, StateUpdate};
use sightline_sink::Sink;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "sightline-archive-{name}-{}-{}",
        std::process::id(),
        fastrand_u64()
    ));
    let _ = fs::remove_dir_all(&dir);
    dir
}

fn fastrand_u64() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(0u8)
}

fn events(agents: usize, per_agent: u64) -> Vec<Event> {
    let mut out = Vec::new();
    for seq in 1..=per_agent {
        for a in 0..agents {
            let agent = AgentRef::new(["Support", "Reminder"][a % 2], format!("agent-{a}"));
            out.push(if seq.is_multiple_of(7) {
                Event::new(
                    agent,
                    seq,
                    ScheduleError {
                        callback: "sendDigest".into(),
                        id: format!("s-{seq}").into(),
                        error: "upstream timed out".into(),
                        attempts: 3,
                        ..Default::default()
                    },
                )
            } else {
                Event::new(
                    agent,
                    seq,
                    StateUpdate {
                        version: seq,
                        changed_paths: vec!["/status".into()],
                        size_bytes: 120,
                        ..Default::default()
                    },
                )
            });
        }
    }
    out
}

fn small(compression: Compression) -> ArchiveConfig {
    ArchiveConfig {
        segment_max_bytes: 64 * 1024,
        index_block_bytes: 2048,
        compression,
        retention_max_age_secs: 0,
        retention_max_bytes: 0,
        ..ArchiveConfig::default()
    }
}

fn write_all(dir: &Path, cfg: ArchiveConfig, events: &[Event]) -> ArchiveStats {
    let mut w = ArchiveWriter::open(dir, cfg).unwrap();
    for batch in events.chunks(100) {
        w.write(batch).unwrap();
    }
    w.shutdown().unwrap();
    w.stats()
}

fn read(dir: &Path, query: &Query) -> (Vec<Event>, ScanStats) {
    let mut out = Vec::new();
    let stats = Archive::open(dir)
        .unwrap()
        .scan(query, |e| {
            out.push(e);
            ControlFlow::Continue(())
        })
        .unwrap();
    (out, stats)
}

fn agent_query(class: &str, name: &str) -> Query {
    Query {
        agent: Some(AgentFilter::Exact(AgentRef::new(class, name))),
        ..Default::default()
    }
}

#[test]
fn rotated_compressed_segments_read_back_whole_and_the_index_narrows_a_lookup() {
    for compression in [Compression::Zstd, Compression::None] {
        let dir = scratch("roundtrip");
        let all = events(50, 40);
        let stats = write_all(&dir, small(compression), &all);
        assert_eq!(stats.events_written, 2000);
        assert!(stats.segments_sealed > 3, "{stats:?}");
        if compression == Compression::Zstd {
            assert_eq!(stats.segments_compressed, stats.segments_sealed);
            assert!(fs::read_dir(&dir).unwrap().all(|e| !e
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(RAW_SUFFIX)));
        }
        let (back, _) = read(&dir, &Query::default());
        assert_eq!(back, all);

        let (one, scan) = read(&dir, &agent_query("Reminder", "agent-7"));
        assert_eq!(one.len(), 40);
        assert!(one.iter().map(|e| e.seq).eq(1..=40));
        let (_, full) = read(&dir, &Query::default());
        assert!(
            scan.bytes_read * 5 < full.bytes_read,
            "lookup read {} of {} bytes",
            scan.bytes_read,
            full.bytes_read
        );
        let report = verify(&dir).unwrap();
        assert!(report.ok(), "{:?}", report.problems);
        assert_eq!((report.events, report.agents), (2000, 50));
        fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn files_are_private_and_a_second_writer_is_refused() {
    let dir = scratch("private");
    let w = ArchiveWriter::open(&dir, small(Compression::None)).unwrap();
    assert_eq!(
        fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
        0o700
    );
    let err = ArchiveWriter::open(&dir, small(Compression::None)).unwrap_err();
    assert!(matches!(err, ArchiveError::Locked { .. }), "{err}");
    drop(w);
    write_all(&dir, small(Compression::Zstd), &events(3, 5));
    for entry in fs::read_dir(&dir).unwrap() {
        let md = entry.unwrap().metadata().unwrap();
        assert_eq!(md.permissions().mode() & 0o777, 0o600);
    }
    fs::remove_dir_all(&dir).unwrap();
}

fn open_segment(dir: &Path) -> PathBuf {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(RAW_SUFFIX))
        .unwrap()
}

#[test]
fn a_torn_last_line_is_cut_and_counted_and_everything_before_it_stays() {
    let dir = scratch("torn");
    let all = events(4, 10);
    let mut w = ArchiveWriter::open(&dir, small(Compression::Zstd)).unwrap();
    w.write(&all).unwrap();
    w.flush().unwrap();
    // Simulate the crash: the writer never closes, and half a line follows the last one.
    std::mem::forget(w);
    let seg = open_segment(&dir);
    let mut f = fs::OpenOptions::new().append(true).open(&seg).unwrap();
    f.write_all(br#"{"v":1,"type":"rpc","id":"0192"#).unwrap();
    drop(f);
    let pre = verify(&dir).unwrap();
    assert!(
        pre.ok()
            && pre
                .warnings
                .iter()
                .any(|w| w.message.contains("incomplete"))
    );
    // The forgotten writer still holds the lock in this process: release it the way a dead
    // process would, by closing every descriptor on the lock file.
    fs::remove_file(dir.join(LOCK_FILE)).unwrap();

    let w = ArchiveWriter::open(&dir, small(Compression::Zstd)).unwrap();
    let stats = w.stats();
    assert_eq!(stats.torn_lines_truncated, 1);
    assert_eq!(stats.torn_bytes_truncated, 30);
    assert_eq!(stats.segments_recovered, 1);
    drop(w);
    let (back, _) = read(&dir, &Query::default());
    assert_eq!(back, all);
    let report = verify(&dir).unwrap();
    assert!(report.ok() && report.warnings.is_empty(), "{report:?}");
    assert_eq!(report.torn_lines_truncated, 1);
    let manifest = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(MANIFEST_SUFFIX))
        .unwrap();
    let m = Manifest::read(&manifest).unwrap();
    assert!(m.recovered && m.torn_bytes_truncated == 30);
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_interrupted_compression_is_undone_and_redone() {
    let dir = scratch("interrupted");
    let all = events(4, 10);
    write_all(&dir, small(Compression::None), &all);
    let manifest = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(MANIFEST_SUFFIX))
        .unwrap();
    let stem = Manifest::read(&manifest).unwrap().segment;
    // A crash mid-compression leaves a partial temporary file, or a complete compressed file
    // the manifest does not name yet.
    fs::write(dir.join(format!("{stem}{ZST_SUFFIX}.tmp")), b"\x28\xb5\x2f").unwrap();
    fs::write(dir.join(format!("{stem}{ZST_SUFFIX}")), b"not yet named").unwrap();
    let w = ArchiveWriter::open(&dir, small(Compression::Zstd)).unwrap();
    assert_eq!(w.stats().stale_files_removed, 2);
    drop(w);
    let (back, _) = read(&dir, &Query::default());
    assert_eq!(back, all);
    let m = Manifest::read(&manifest).unwrap();
    assert_eq!(m.compression, Compression::Zstd);
    assert!(verify(&dir).unwrap().ok());
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn retention_deletes_the_oldest_segments_and_counts_what_it_deleted() {
    let dir = scratch("retention");
    let cfg = ArchiveConfig {
        retention_max_bytes: 150 * 1024,
        ..small(Compression::None)
    };
    let stats = write_all(&dir, cfg, &events(50, 40));
    assert!(stats.segments_retired > 0, "{stats:?}");
    let (back, _) = read(&dir, &Query::default());
    assert_eq!(back.len() as u64 + stats.events_retired, 2000);
    // What is left is the newest.
    assert_eq!(back.last().unwrap().seq, 40);
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_write_that_fails_is_reported_and_leaves_no_partial_line() {
    let dir = scratch("enospc");
    let mut w = ArchiveWriter::open(&dir, small(Compression::None)).unwrap();
    w.write(&events(2, 3)).unwrap();
    // Take the directory away (root ignores permission bits, so put a file in its place):
    // opening the next segment fails.
    w.seal().unwrap();
    let aside = dir.with_extension("aside");
    fs::rename(&dir, &aside).unwrap();
    fs::write(&dir, b"not a directory").unwrap();
    let err = w.write(&events(2, 3)).unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert_eq!(w.stats().write_errors, 1);
    fs::remove_file(&dir).unwrap();
    fs::rename(&aside, &dir).unwrap();
    w.write(&events(2, 3)).unwrap();
    drop(w);
    assert!(verify(&dir).unwrap().ok());
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_otlp_json_format_writes_one_logs_data_per_line_and_verifies() {
    let dir = scratch("otlp");
    let cfg = ArchiveConfig {
        format: LineFormat::OtlpJson,
        ..small(Compression::Zstd)
    };
    write_all(&dir, cfg, &events(5, 20));
    let report = verify(&dir).unwrap();
    assert!(report.ok(), "{:?}", report.problems);
    assert_eq!(report.events, 100);
    let err = Archive::open(&dir)
        .unwrap()
        .scan(&Query::default(), |_| ControlFlow::Continue(()))
        .unwrap_err();
    assert!(err.message.contains("otlp_json"), "{err}");
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_follower_sees_new_events_across_rotation() {
    let dir = scratch("follow");
    let mut w = ArchiveWriter::open(&dir, small(Compression::Zstd)).unwrap();
    w.write(&events(5, 5)).unwrap();
    let mut follower = Follower::at_end(&dir).unwrap();
    assert_eq!(follower.poll(&Query::default(), |_| {}).unwrap(), 0);
    let more = events(50, 40);
    w.write(&more).unwrap();
    w.flush().unwrap();
    let mut seen = Vec::new();
    follower.poll(&Query::default(), |e| seen.push(e)).unwrap();
    w.write(&more[..10]).unwrap();
    follower.poll(&Query::default(), |e| seen.push(e)).unwrap();
    assert_eq!(seen.len(), more.len() + 10);
    assert_eq!(&seen[..more.len()], &more[..]);
    // The writer compresses rotated segments on its own thread: stop it before removing
    // the directory under it.
    drop(w);
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn verify_points_at_a_corrupted_line_and_a_lying_manifest() {
    let dir = scratch("corrupt");
    write_all(&dir, small(Compression::None), &events(4, 10));
    let manifest_path = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(MANIFEST_SUFFIX))
        .unwrap();
    let m = Manifest::read(&manifest_path).unwrap();
    let data_path = dir.join(&m.file);
    let mut data = fs::read(&data_path).unwrap();
    let third_line = data
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'\n')
        .nth(1)
        .unwrap()
        .0
        + 1;
    data[third_line + 2] = b'#';
    fs::write(&data_path, &data).unwrap();
    let report = verify(&dir).unwrap();
    assert!(!report.ok());
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.line == Some(3) && p.message.contains("not a valid event")),
        "{:?}",
        report.problems
    );
    let mut m2 = m.clone();
    m2.events += 1;
    fs::write(&manifest_path, serde_json::to_vec(&m2).unwrap()).unwrap();
    let report = verify(&dir).unwrap();
    assert!(report
        .problems
        .iter()
        .any(|p| p.message.contains("manifest events")));
    fs::remove_dir_all(&dir).unwrap();
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
    /// The fuzz target's check, as a property: corrupted and truncated segments, indexes and
    /// manifests give errors, never panics. (`cargo fuzz run read_archive` explores further.)
    #[test]
    fn corrupted_archives_give_errors_not_panics(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64)) {
        sightline_archive::fuzzing::check(&data);
    }
}

#[test]
fn a_segment_closes_by_age_on_the_flush_that_follows() {
    let dir = scratch("age");
    let cfg = ArchiveConfig {
        segment_max_age_ms: 30,
        ..small(Compression::None)
    };
    let mut w = ArchiveWriter::open(&dir, cfg).unwrap();
    w.write(&events(2, 2)).unwrap();
    w.flush().unwrap();
    assert_eq!(w.stats().segments_sealed, 0);
    std::thread::sleep(std::time::Duration::from_millis(40));
    // No new event needed: the runner's periodic flush closes an old segment.
    w.flush().unwrap();
    assert_eq!(w.stats().segments_sealed, 1);
    w.write(&events(2, 2)).unwrap();
    drop(w);
    let archive = Archive::open(&dir).unwrap();
    assert_eq!(archive.segments().len(), 2);
    assert!(archive.segments().iter().all(|s| !s.is_open()));
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_batch_whose_rotation_failed_is_not_written_twice_when_retried() {
    let dir = scratch("retry");
    let cfg = ArchiveConfig {
        segment_max_bytes: 4096,
        ..small(Compression::None)
    };
    let all = events(4, 12);
    let (a, b) = all.split_at(2);
    let mut w = ArchiveWriter::open(&dir, cfg).unwrap();
    w.write(a).unwrap();
    // Make closing the segment fail: its index cannot be written.
    let stem = open_segment(&dir)
        .file_name()
        .unwrap()
        .to_string_lossy()
        .trim_end_matches(RAW_SUFFIX)
        .to_owned();
    let blocker = dir.join(format!("{stem}.idx.tmp"));
    fs::create_dir(&blocker).unwrap();
    // `b` fills the segment: its lines land, then rotation fails and the batch is reported.
    assert!(w.write(b).is_err());
    // The runner retries the same batch: nothing is appended again.
    fs::remove_dir(&blocker).unwrap();
    w.write(b).unwrap();
    w.flush().unwrap();
    drop(w);
    let (back, _) = read(&dir, &Query::default());
    assert_eq!(back, all);
    let report = verify(&dir).unwrap();
    assert!(report.ok() && report.warnings.is_empty(), "{report:?}");
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_unreadable_manifest_is_reported_without_hiding_the_rest() {
    let dir = scratch("broken-manifest");
    let cfg = ArchiveConfig {
        segment_max_bytes: 4096,
        ..small(Compression::None)
    };
    let mut w = ArchiveWriter::open(&dir, cfg).unwrap();
    for chunk in events(4, 12).chunks(5) {
        w.write(chunk).unwrap();
    }
    drop(w);
    let mut manifests: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(MANIFEST_SUFFIX))
        .collect();
    manifests.sort();
    assert!(manifests.len() >= 2);
    fs::write(&manifests[0], b"{ not json").unwrap();
    let report = verify(&dir).unwrap();
    assert!(!report.ok());
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.message.contains("unreadable manifest")),
        "{report:?}"
    );
    assert!(report.events > 0, "the other segments are still checked");
    let err = Archive::open(&dir)
        .unwrap()
        .scan(&Query::default(), |_| ControlFlow::Continue(()))
        .unwrap_err();
    assert!(err.file.ends_with(MANIFEST_SUFFIX), "{err}");
    fs::remove_dir_all(&dir).unwrap();
}
