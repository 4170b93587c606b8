//! `sightline verify` exits 0 on a whole archive and 1 once a line of it is corrupted, naming
//! the segment and the line it found wrong (a script or a cron job can rely on the code).

use std::process::Output;

use sightline_archive::segment::{Manifest, MANIFEST_SUFFIX, RAW_SUFFIX};
use sightline_archive::{ArchiveConfig, ArchiveWriter, Compression};
use sightline_event::{AgentRef, Event, StateUpdate};
use sightline_sink::Sink;
use sightline_tests::{scratch_dir, sightline};

fn verify(archive: &str) -> (Output, String) {
    let out = sightline(&["verify", "--archive", archive]).unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    (out, stdout)
}

#[test]
fn verify_exits_1_on_a_corrupted_archive() {
    let dir = scratch_dir("verify-exit").unwrap();
    let archive = dir.join("archive");
    let archive_s = archive.to_str().unwrap();
    // One closed, uncompressed segment of 3 agents x 10 events.
    let mut w = ArchiveWriter::open(
        &archive,
        ArchiveConfig {
            compression: Compression::None,
            retention_max_age_secs: 0,
            retention_max_bytes: 0,
            ..ArchiveConfig::default()
        },
    )
    .unwrap();
    let events: Vec<Event> = (1..=10)
        .flat_map(|seq| {
            (0..3).map(move |a| {
                Event::new(
                    AgentRef::new("Support", format!("t-{a}")),
                    seq,
                    StateUpdate {
                        version: seq,
                        changed_paths: vec!["/status".into()],
                        size_bytes: 100,
                        ..Default::default()
                    },
                )
            })
        })
        .collect();
    w.write(&events).unwrap();
    w.shutdown().unwrap();
    drop(w);

    let (out, stdout) = verify(archive_s);
    assert_eq!(out.status.code(), Some(0), "a whole archive:\n{stdout}");
    assert!(stdout.contains("30 events"), "{stdout}");
    assert!(stdout.contains("0 problems"), "{stdout}");

    // Corrupt the fifth line of the segment: its JSON no longer parses.
    let manifest = std::fs::read_dir(&archive)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(MANIFEST_SUFFIX))
        .expect("a closed segment's manifest");
    let segment = archive.join(Manifest::read(&manifest).unwrap().file);
    let mut data = std::fs::read(&segment).unwrap();
    let fifth = data
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'\n')
        .nth(3)
        .unwrap()
        .0
        + 1;
    data[fifth] = b'#';
    std::fs::write(&segment, &data).unwrap();

    let (out, stdout) = verify(archive_s);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a corrupted archive:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let file = segment.file_name().unwrap().to_string_lossy().into_owned();
    let name = file.strip_suffix(RAW_SUFFIX).unwrap_or(&file);
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("error: ") && l.contains(name) && l.contains("line 5")),
        "no error naming {name} line 5:\n{stdout}"
    );
}
