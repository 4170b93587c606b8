//! `--since` and `--until` select exactly the events in the window, `since` inclusive and
//! `until` exclusive, in each form they accept (RFC 3339, Unix nanoseconds, a duration ago),
//! for `sightline tail` and `sightline session` alike; a time that is none of these is an
//! error that names the flag and the input.

use sightline_event::*;
use sightline_tests::{scratch_dir, sightline_with_stdin};

const T0: u64 = 1_763_936_129_000_000_000; // 2025-11-23T22:15:29Z
const SECOND: u64 = 1_000_000_000;

fn event(agent: &AgentRef, seq: u64, ts_ns: u64) -> Event {
    let mut e = Event::new(
        agent.clone(),
        seq,
        Rpc {
            method: format!("m{seq}").into(),
            ..Default::default()
        },
    );
    e.ts_ns = ts_ns;
    e
}

fn run(data_dir: &str, args: &[&str], stdin: &str) -> std::process::Output {
    let mut all = vec!["--data-dir", data_dir];
    all.extend_from_slice(args);
    sightline_with_stdin(&all, &[], stdin.as_bytes()).unwrap()
}

/// The events (agent name, seq) a reading command prints as JSON lines.
fn selected(data_dir: &str, args: &[&str]) -> Vec<(String, u64)> {
    let out = run(data_dir, args, "");
    assert!(
        out.status.success(),
        "sightline {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let e = Event::from_json_line(l).unwrap();
            (e.agent.name.to_string(), e.seq)
        })
        .collect()
}

fn ingest(data_dir: &str, events: &[Event]) {
    let input: String = events.iter().map(|e| e.to_json_line() + "\n").collect();
    let out = run(data_dir, &["ingest"], &input);
    assert!(
        out.status.success(),
        "ingest failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn tail_and_session_select_exactly_the_events_between_since_and_until() {
    let dir = scratch_dir("since-until").unwrap();
    let data_dir = dir.to_str().unwrap();
    let (a, b) = (AgentRef::new("Support", "a"), AgentRef::new("Support", "b"));
    // Seq i of each agent at T0 + i seconds (b half a second later), i = 1..=10.
    let events: Vec<Event> = (1..=10)
        .flat_map(|i| {
            [
                event(&a, i, T0 + i * SECOND),
                event(&b, i, T0 + i * SECOND + SECOND / 2),
            ]
        })
        .collect();
    ingest(data_dir, &events);
    let expect = |from: u64, to: u64, who: &[&str]| -> Vec<(String, u64)> {
        events
            .iter()
            .filter(|e| e.ts_ns >= from && e.ts_ns < to)
            .filter(|e| who.contains(&e.agent.name.as_str()))
            .map(|e| (e.agent.name.to_string(), e.seq))
            .collect()
    };

    // RFC 3339 since (inclusive: a's seq 3 is exactly at it), Unix ns until (exclusive: a's
    // seq 7 is exactly at it).
    let since = "2025-11-23T22:15:32Z";
    let until = (T0 + 7 * SECOND).to_string();
    let window = expect(T0 + 3 * SECOND, T0 + 7 * SECOND, &["a", "b"]);
    assert_eq!(window.first(), Some(&("a".to_owned(), 3)));
    assert_eq!(window.last(), Some(&("b".to_owned(), 6)));
    let tail = selected(
        data_dir,
        &[
            "tail", "-n", "1000", "--since", since, "--until", &until, "--format", "json",
        ],
    );
    assert_eq!(tail, window);
    let session = selected(
        data_dir,
        &[
            "session",
            "Support/a",
            "--since",
            since,
            "--until",
            &until,
            "--format",
            "json",
        ],
    );
    assert_eq!(session, expect(T0 + 3 * SECOND, T0 + 7 * SECOND, &["a"]));
    assert_eq!(session.len(), 4);

    // Only one bound: everything on its side of it.
    let since_ns = (T0 + 9 * SECOND).to_string();
    assert_eq!(
        selected(
            data_dir,
            &["tail", "-n", "1000", "--since", &since_ns, "--format", "json"]
        ),
        expect(T0 + 9 * SECOND, u64::MAX, &["a", "b"])
    );
    assert_eq!(
        selected(
            data_dir,
            &[
                "session",
                "Support/b",
                "--until",
                "2025-11-23T22:15:31Z",
                "--format",
                "json"
            ]
        ),
        expect(0, T0 + 2 * SECOND, &["b"])
    );

    // A duration ago: events an hour, half an hour and a minute old; `--since 45m` takes the
    // last two, `--until 10m` the first two (margins of minutes around the test's own run).
    let now = now_unix_ns();
    let minute = 60 * SECOND;
    let c = AgentRef::new("Recent", "c");
    let recent = [
        event(&c, 1, now - 60 * minute),
        event(&c, 2, now - 30 * minute),
        event(&c, 3, now - minute),
    ];
    ingest(data_dir, &recent);
    let seqs = |v: Vec<(String, u64)>| v.into_iter().map(|(_, s)| s).collect::<Vec<_>>();
    assert_eq!(
        seqs(selected(
            data_dir,
            &["tail", "-n", "1000", "--agent", "Recent", "--since", "45m", "--format", "json"]
        )),
        [2, 3]
    );
    assert_eq!(
        seqs(selected(
            data_dir,
            &["session", "Recent/c", "--until", "10m", "--format", "json"]
        )),
        [1, 2]
    );
    assert_eq!(
        seqs(selected(
            data_dir,
            &["session", "Recent/c", "--since", "2h", "--until", "45m", "--format", "json"]
        )),
        [1]
    );

    // A time that is none of the forms: exit 2, naming the flag and what was given.
    for (flag, command) in [("--since", "tail"), ("--until", "session")] {
        let mut args = vec![command];
        if command == "session" {
            args.push("Support/a");
        }
        args.extend([flag, "yesterday"]);
        let out = run(data_dir, &args, "");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!("{flag}: \"yesterday\" is not a time")),
            "{args:?}: {err}"
        );
    }
}
