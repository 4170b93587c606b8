//! A writer process appending to the archive under load (fsync after every batch, segments
//! rotating and compressing in the background) is SIGKILLed at random moments, 25 times, and
//! restarted each time. Afterwards `sightline verify` finds nothing wrong, and an independent
//! JSON parser (Python's `json`, over lines decompressed by the reference zstd library) finds
//! every line whole, every agent's sequence contiguous from 1 with no duplicate, and every
//! event the writer reported durable before each kill.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use sightline_tests::{scratch_dir, sightline};

const TRIALS: usize = 25;
const AGENTS: u64 = 12;

/// Every line of every segment, in segment order, as the reference zstd library and the
/// plain file system give them.
fn all_lines(dir: &Path) -> Vec<u8> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".jsonl") || n.ends_with(".jsonl.zst"))
        .collect();
    names.sort();
    let mut out = Vec::new();
    for n in names {
        let bytes = std::fs::read(dir.join(&n)).unwrap();
        if n.ends_with(".zst") {
            out.extend(zstd::stream::decode_all(&bytes[..]).unwrap());
        } else {
            out.extend(bytes);
        }
    }
    out
}

const CHECK: &str = r#"
import json, sys
seqs = {}
lines = 0
for n, raw in enumerate(sys.stdin.buffer.read().split(b"\n")[:-1], 1):
    e = json.loads(raw)  # raises on a torn or corrupt line
    lines += 1
    key = e["agent"]["class"] + "/" + e["agent"]["name"]
    seqs.setdefault(key, []).append(e["seq"])
problems = []
for key, s in seqs.items():
    if s != list(range(1, len(s) + 1)):
        problems.append(key)
print(json.dumps({"lines": lines, "max": {k: max(v) for k, v in seqs.items()}, "bad": problems}))
"#;

#[test]
fn the_archive_survives_sigkill_at_random_moments() {
    let dir = scratch_dir("sigkill").unwrap();
    let archive = dir.join("archive");
    let archive_s = archive.to_str().unwrap();
    let writer = env!("CARGO_BIN_EXE_archive-writer");
    let mut rng = fastrand::Rng::with_seed(0x5167_4b11);
    let mut durable_before_kill = Vec::new();
    let mut torn = 0u64;
    for trial in 0..TRIALS {
        let mut child = Command::new(writer)
            .args([archive_s, &AGENTS.to_string(), "900"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let (tx, rx) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let ready = rx.recv_timeout(Duration::from_secs(60)).unwrap();
        let stats: serde_json::Value =
            serde_json::from_str(ready.strip_prefix("ready ").unwrap()).unwrap();
        torn += stats["torn_lines_truncated"].as_u64().unwrap();
        // Let it get a random number of batches down (waiting for it to say so, however
        // slow the machine), then kill it without warning a random moment into the next
        // batch (the delay is the randomness of the kill, not a wait for readiness).
        let durable_of = |l: &str| {
            l.strip_prefix("durable ")
                .map(|n| n.parse::<u64>().unwrap())
        };
        let mut durable = 0;
        for _ in 0..rng.u64(1..=12) {
            let line = rx.recv_timeout(Duration::from_secs(60)).unwrap();
            durable = durable.max(durable_of(&line).unwrap());
        }
        std::thread::sleep(Duration::from_micros(rng.u64(0..20_000)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        reader.join().unwrap();
        let durable = rx
            .try_iter()
            .filter_map(|l| durable_of(&l))
            .fold(durable, u64::max);
        assert!(
            durable > 0,
            "trial {trial}: killed before a batch was durable"
        );
        eprintln!("trial {trial}: killed with every agent durable up to seq {durable}");
        durable_before_kill.push(durable);
    }
    // A last start recovers what the last kill left.
    let out = Command::new(writer)
        .args([archive_s, "0", "0"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let stats: serde_json::Value = serde_json::from_str(
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .strip_prefix("ready ")
            .unwrap(),
    )
    .unwrap();
    torn += stats["torn_lines_truncated"].as_u64().unwrap();
    eprintln!("torn lines truncated by recovery over all restarts: {torn}");

    let verify = sightline(&["verify", "--archive", archive_s]).unwrap();
    let report = String::from_utf8_lossy(&verify.stdout);
    assert!(
        verify.status.success(),
        "verify found problems:\n{report}\n{}",
        String::from_utf8_lossy(&verify.stderr)
    );
    assert!(report.contains("0 problems, 0 warnings"), "{report}");

    let mut python = Command::new("python3")
        .args(["-c", CHECK])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 is needed as the independent JSON parser");
    python
        .stdin
        .take()
        .unwrap()
        .write_all(&all_lines(&archive))
        .unwrap();
    let out = python.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "a line is not valid JSON: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        result["bad"],
        serde_json::json!([]),
        "sequences with holes or duplicates"
    );
    let max: BTreeMap<String, u64> = serde_json::from_value(result["max"].clone()).unwrap();
    assert_eq!(max.len() as u64, AGENTS);
    let highest_durable = durable_before_kill.iter().max().copied().unwrap();
    assert!(highest_durable > 0, "the writer never got a batch down");
    for (agent, m) in &max {
        assert!(
            *m >= highest_durable,
            "{agent}: archive ends at seq {m}, but seq {highest_durable} was reported durable"
        );
    }
    eprintln!(
        "{} lines, every agent contiguous, highest durable seq {highest_durable}",
        result["lines"]
    );
}
