//! `sightline ingest` reads Cloudflare Agents observability events as a Tail Worker receives
//! them (TraceItems with `diagnosticsChannelEvents`, one or an array per line) alongside
//! Sightline JSONL, and runs them through the configured pipeline into the archive. A
//! malformed line stops it with the line number, or with `--skip-invalid` is counted and
//! skipped.

use std::process::Output;

use sightline_tests::{scratch_dir, sightline, sightline_with_stdin};

fn ingest(data_dir: &str, flags: &[&str], input: &str) -> Output {
    let mut args = vec!["--data-dir", data_dir, "ingest"];
    args.extend_from_slice(flags);
    sightline_with_stdin(&args, &[], input.as_bytes()).unwrap()
}

fn cf(kind: &str, ts: u64, payload: serde_json::Value) -> serde_json::Value {
    serde_json::json!({
        "channel": format!("agents:{}", kind.split(':').next().unwrap()),
        "timestamp": ts,
        "message": {"type": kind, "agent": "ReminderAgent", "name": "user-42", "timestamp": ts, "payload": payload}
    })
}

#[test]
fn ingest_feeds_cloudflare_tail_worker_events_through_the_pipeline() {
    let dir = scratch_dir("ingest-cf").unwrap();
    let data_dir = dir.to_str().unwrap();
    let t = 1_763_936_129_000u64;
    let item = |events: Vec<serde_json::Value>| {
        serde_json::json!({"scriptName": "agents-worker", "outcome": "ok", "eventTimestamp": t,
                           "diagnosticsChannelEvents": events, "logs": [], "exceptions": []})
    };
    let first = item(vec![
        cf(
            "schedule:create",
            t,
            serde_json::json!({"callback": "remind", "id": "s1"}),
        ),
        cf(
            "schedule:execute",
            t + 10,
            serde_json::json!({"callback": "remind", "id": "s1"}),
        ),
        cf(
            "schedule:retry",
            t + 20,
            serde_json::json!({"callback": "remind", "id": "s1", "attempt": 1, "maxAttempts": 3}),
        ),
    ]);
    let second = serde_json::json!([item(vec![
        cf(
            "schedule:error",
            t + 500,
            serde_json::json!({"callback": "remind", "id": "s1", "error": "push service down", "attempts": 3})
        ),
        cf(
            "mcp:client:connect",
            t + 600,
            serde_json::json!({"url": "https://mcp.example.com/x?token=abc", "transport": "sse", "state": "failed", "error": "401"})
        ),
        cf(
            "rpc",
            t + 700,
            serde_json::json!({"method": "getReminders", "streaming": false})
        ),
    ])]);
    let good = format!("{first}\n{second}\n");

    // A malformed line stops ingest, naming the line.
    let bad = format!("{first}\n{{\"oops\": \n{second}\n");
    let failing = scratch_dir("ingest-cf-fail").unwrap();
    let out = ingest(failing.to_str().unwrap(), &[], &bad);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("stdin line 2"), "{stderr}");

    // With --skip-invalid it is counted and the rest goes in.
    let dir2 = scratch_dir("ingest-cf-skip").unwrap();
    let out = ingest(dir2.to_str().unwrap(), &["--skip-invalid"], &bad);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("1 invalid lines skipped"), "{stderr}");
    assert!(stderr.contains("skipped line 2"), "{stderr}");

    let out = ingest(data_dir, &[], &good);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let session = sightline(&[
        "--data-dir",
        data_dir,
        "session",
        "ReminderAgent/user-42",
        "--format",
        "json",
    ])
    .unwrap();
    assert!(session.status.success());
    let events: Vec<serde_json::Value> = String::from_utf8_lossy(&session.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "schedule:create",
            "schedule:execute",
            "schedule:retry",
            "schedule:error",
            "mcp:client:connect",
            "rpc"
        ]
    );
    // Sightline fills what the anchor lacks: ids, per-agent sequence numbers, outcome.
    let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5, 6]);
    assert_eq!(events[1]["ts_ns"], 1_763_936_129_010_000_000u64);
    assert_eq!(events[2]["payload"]["max_attempts"], 3);
    assert_eq!(events[3]["outcome"], "error");
    // A second ingest continues each agent's sequence from what the archive holds.
    let out = ingest(data_dir, &[], &format!("{first}\n"));
    assert!(out.status.success());
    let again = sightline(&[
        "--data-dir",
        data_dir,
        "session",
        "ReminderAgent/user-42",
        "--format",
        "json",
    ])
    .unwrap();
    let seqs: Vec<u64> = String::from_utf8_lossy(&again.stdout)
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["seq"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(seqs, (1..=9).collect::<Vec<_>>());
    // And the archive policy redacted the URL's token on the way in.
    let all = String::from_utf8_lossy(&session.stdout);
    assert!(!all.contains("token=abc"), "{all}");
}
