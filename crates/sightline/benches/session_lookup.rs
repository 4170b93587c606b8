//! `session_lookup`: how long `sightline session <one agent>` takes on a large archive,
//! against a full scan of the same files for that agent (`grep -F`, the anchor).
//!
//! Builds an archive of at least 1 GiB (uncompressed JSONL, 5,000 agents writing
//! interleaved), then times, as separate processes and with a warm page cache, the median of
//! five runs of each. Then compresses the segments (zstd, as the default configuration does)
//! and times the session again against `zstdcat | grep -F`. Target: the session takes at most
//! 10% of the full scan.
//!
//! `cargo bench -p sightline --bench session_lookup` prints the figures;
//! `-- --test` runs the same on a 32 MiB archive as a smoke test.
//! `SIGHTLINE_LOOKUP_BYTES` overrides the archive size.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sightline_archive::{ArchiveConfig, ArchiveWriter, Compression};
use sightline_event::*;
use sightline_sink::Sink;

fn event(rng: &mut fastrand::Rng, agents: u64, seqs: &mut [u64], ts: u64) -> Event {
    let a = rng.u64(..agents);
    seqs[a as usize] += 1;
    let agent = AgentRef::new(
        ["Support", "Reminder", "Research", "Chat"][(a % 4) as usize],
        format!("t-{a:05}"),
    );
    let seq = seqs[a as usize];
    let mut e = match rng.u8(..4) {
        0 => Event::new(
            agent,
            seq,
            Rpc {
                method: "getTicket".into(),
                ..Default::default()
            },
        )
        .with_outcome(Outcome::Ok)
        .with_duration_ns(rng.u64(1_000_000..90_000_000)),
        1 => Event::new(
            agent,
            seq,
            ScheduleComplete {
                callback: "sendDigest".into(),
                id: format!("sch_{:08x}", rng.u32(..)).into(),
                attempts: 1,
                lateness_ms: rng.u64(..200),
            },
        )
        .with_outcome(Outcome::Ok)
        .with_duration_ns(rng.u64(1_000_000..900_000_000)),
        2 => Event::new(
            agent,
            seq,
            StateUpdate {
                version: seq,
                changed_paths: vec!["/status".into()],
                size_bytes: rng.u64(100..100_000),
                diff: Some(Sensitive(
                    serde_json::json!([{"op": "replace", "path": "/status", "value": rng.u32(..1000)}]).into(),
                )),
                source: Some("rpc".into()),
            },
        ),
        _ => Event::new(
            agent,
            seq,
            ModelCall {
                model: "gpt-4.1-mini".into(),
                provider: "openai".into(),
                input_tokens: rng.u64(100..8000),
                output_tokens: rng.u64(10..2000),
                finish_reason: Some("stop".into()),
                ..Default::default()
            },
        )
        .with_outcome(Outcome::Ok)
        .with_duration_ns(rng.u64(100_000_000..3_000_000_000)),
    };
    e.ts_ns = ts;
    e.set_trace(TraceContext::new_root());
    e
}

fn build(dir: &Path, bytes: u64, agents: u64) -> u64 {
    let cfg = ArchiveConfig {
        compression: Compression::None,
        retention_max_bytes: 0,
        retention_max_age_secs: 0,
        ..ArchiveConfig::default()
    };
    let mut writer = ArchiveWriter::open(dir, cfg).unwrap();
    let mut rng = fastrand::Rng::with_seed(7);
    let mut seqs = vec![0u64; agents as usize];
    let mut ts = 1_763_936_129_000_000_000u64;
    let mut batch = Vec::with_capacity(4096);
    while writer.stats().bytes_written < bytes {
        batch.clear();
        for _ in 0..4096 {
            ts += 1_000_000;
            batch.push(event(&mut rng, agents, &mut seqs, ts));
        }
        writer.write(&batch).unwrap();
    }
    writer.shutdown().unwrap();
    writer.stats().bytes_written
}

fn files(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    v.sort();
    v
}

/// Median wall time of five runs of `sh -c script` (after one warm-up), and its stdout.
fn time(script: &str) -> (Duration, String) {
    let run = || {
        let start = Instant::now();
        let out = Command::new("sh")
            .args(["-c", script])
            .env("LC_ALL", "C")
            .stderr(Stdio::inherit())
            .output()
            .unwrap();
        (
            start.elapsed(),
            String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        )
    };
    let (_, out) = run();
    let mut times: Vec<Duration> = (0..5).map(|_| run().0).collect();
    times.sort();
    (times[2], out)
}

fn compare(label: &str, scan: &str, session: &str) {
    let (scan_t, scan_out) = time(scan);
    let (session_t, session_out) = time(session);
    assert_eq!(
        scan_out, session_out,
        "the scan and the session found different numbers of events"
    );
    assert_ne!(session_out, "0", "the agent has no events");
    println!(
        "  {label:<34} full scan {:>8.1} ms   session {:>7.1} ms   = {:>5.1}% of the scan ({} events of the agent)",
        scan_t.as_secs_f64() * 1e3,
        session_t.as_secs_f64() * 1e3,
        session_t.as_secs_f64() * 100.0 / scan_t.as_secs_f64(),
        session_out
    );
}

fn main() {
    let quick = std::env::args().any(|a| a == "--test");
    let bytes: u64 = std::env::var("SIGHTLINE_LOOKUP_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if quick { 32 << 20 } else { 1 << 30 });
    let agents = if quick { 500 } else { 5000 };
    let dir = std::env::temp_dir().join(format!("sightline-session-lookup-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let start = Instant::now();
    let written = build(&dir, bytes, agents);
    println!(
        "session_lookup: built {:.2} GiB ({} agents) in {:.1} s at {}",
        written as f64 / (1u64 << 30) as f64,
        agents,
        start.elapsed().as_secs_f64(),
        dir.display()
    );
    let bin = env!("CARGO_BIN_EXE_sightline");
    // An agent of class Reminder (n % 4 == 1) that exists at either size.
    let n = if quick { 233 } else { 1233 };
    let agent = format!("Reminder/t-{n:05}");
    let needle = format!(r#""name":"t-{n:05}""#);
    let d = dir.display();
    let session = format!("{bin} session {agent} --archive {d} --format json | wc -l");
    let plain: Vec<String> = files(&dir, ".jsonl")
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    compare(
        "plain JSONL (grep -F)",
        &format!("grep -F -h -- '{needle}' {} | wc -l", plain.join(" ")),
        &session,
    );
    // Compress every closed segment the way the default configuration does.
    drop(
        ArchiveWriter::open(
            &dir,
            ArchiveConfig {
                retention_max_bytes: 0,
                retention_max_age_secs: 0,
                ..ArchiveConfig::default()
            },
        )
        .unwrap(),
    );
    let zst: Vec<String> = files(&dir, ".jsonl.zst")
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    let stored: u64 = files(&dir, ".jsonl.zst")
        .iter()
        .map(|p| p.metadata().unwrap().len())
        .sum();
    println!(
        "  compressed to {:.1} MiB",
        stored as f64 / (1u64 << 20) as f64
    );
    compare(
        "zstd segments (zstdcat | grep -F)",
        &format!(
            "zstdcat -q {} | grep -F -- '{needle}' | wc -l",
            zst.join(" ")
        ),
        &session,
    );
    println!("  target: session <= 10% of the full scan");
    let _ = std::fs::remove_dir_all(&dir);
}
