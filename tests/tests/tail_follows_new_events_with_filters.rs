//! `sightline tail -f --kind ... --agent ...` prints the latest matching events, then follows
//! the archive as another process writes it, printing only new matching events (and nothing
//! that does not match: the line after the last match is the next match).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use sightline_event::*;
use sightline_tests::{scratch_dir, sightline_bin, sightline_with_stdin};

fn ingest(data_dir: &str, events: &[Event]) {
    let input: String = events.iter().map(|e| e.to_json_line() + "\n").collect();
    let out = sightline_with_stdin(&["--data-dir", data_dir, "ingest"], &[], input.as_bytes());
    assert!(out.unwrap().status.success());
}

fn batch(from: u64, to: u64) -> Vec<Event> {
    let a = AgentRef::new("Support", "t-1");
    let b = AgentRef::new("Support", "t-2");
    (from..=to)
        .flat_map(|seq| {
            [
                Event::new(
                    a.clone(),
                    seq,
                    Rpc {
                        method: format!("m{seq}").into(),
                        ..Default::default()
                    },
                ),
                Event::new(
                    b.clone(),
                    seq,
                    Rpc {
                        method: format!("m{seq}").into(),
                        ..Default::default()
                    },
                ),
                Event::new(a.clone(), seq + 1000, AgentWake::default()),
            ]
        })
        .collect()
}

#[test]
fn tail_follows_new_events_with_filters() {
    let dir = scratch_dir("tail").unwrap();
    let data_dir = dir.to_str().unwrap();
    ingest(data_dir, &batch(1, 5));
    let mut tail = Command::new(sightline_bin().unwrap())
        .args([
            "--data-dir",
            data_dir,
            "tail",
            "-f",
            "-n",
            "2",
            "--kind",
            "rpc",
            "--agent",
            "Support/t-1",
            "--format",
            "json",
            "--poll-ms",
            "50",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let stdout = tail.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut seen = Vec::new();
    let next = |seen: &mut Vec<u64>| {
        let line = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("tail printed nothing");
        let e = Event::from_json_line(&line).unwrap();
        assert_eq!(
            (e.kind(), e.agent.name.as_str()),
            (Kind::Rpc, "t-1"),
            "{line}"
        );
        seen.push(e.seq);
    };
    for _ in 0..2 {
        next(&mut seen);
    }
    assert_eq!(seen, [4, 5], "the latest two first");
    ingest(data_dir, &batch(6, 8));
    for _ in 0..3 {
        next(&mut seen);
    }
    assert_eq!(seen, [4, 5, 6, 7, 8]);
    // Nothing else matched: the next line tail prints is the next matching event written,
    // not one of the other agent's or another kind's written before it.
    ingest(data_dir, &batch(9, 9));
    next(&mut seen);
    assert_eq!(seen, [4, 5, 6, 7, 8, 9], "nothing else matches");
    tail.kill().unwrap();
    tail.wait().unwrap();
}
