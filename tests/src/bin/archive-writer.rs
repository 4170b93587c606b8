//! A process that writes the archive under load until it is killed: the subject of
//! `tests/tests/the_archive_survives_sigkill_at_random_moments.rs`.
//!
//! `archive-writer <dir> <agents> <batch>` opens the archive (recovering what the previous,
//! killed, run left), prints `ready <recovery counters as JSON>`, then appends batches with
//! `fsync = "always"`, each agent continuing its own sequence from what the archive holds.
//! After every batch it prints `durable <n>`: every agent's events up to sequence `n` are on
//! disk. `archive-writer <dir> 0 0` only recovers and exits.

use std::collections::HashMap;
use std::io::Write;

use anyhow::Context;
use sightline_archive::{Archive, ArchiveConfig, ArchiveWriter, FsyncPolicy};
use sightline_event::{AgentRef, Event, ScheduleRetry, StateUpdate};
use sightline_sink::Sink;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    anyhow::ensure!(
        args.len() == 4,
        "usage: archive-writer <dir> <agents> <batch>"
    );
    let dir = &args[1];
    let agents: u64 = args[2].parse().context("agents")?;
    let batch: u64 = args[3].parse().context("batch")?;
    let cfg = ArchiveConfig {
        fsync: FsyncPolicy::Always,
        segment_max_bytes: 512 * 1024,
        index_block_bytes: 4096,
        retention_max_age_secs: 0,
        retention_max_bytes: 0,
        ..ArchiveConfig::default()
    };
    let mut writer = ArchiveWriter::open(dir, cfg)?;
    let recovered = writer.stats();
    let mut out = std::io::stdout().lock();
    writeln!(out, "ready {}", serde_json::to_string(&recovered)?)?;
    out.flush()?;
    if agents == 0 {
        writer.shutdown()?;
        return Ok(());
    }
    // Continue every agent's sequence from what survived.
    let last: HashMap<AgentRef, u64> = Archive::open(dir)?.last_seqs()?;
    let refs: Vec<AgentRef> = (0..agents)
        .map(|i| {
            AgentRef::new(
                ["Support", "Reminder", "Research"][i as usize % 3],
                format!("agent-{i}"),
            )
        })
        .collect();
    let mut seq: Vec<u64> = refs
        .iter()
        .map(|a| last.get(a).copied().unwrap_or(0))
        .collect();
    loop {
        let mut events = Vec::with_capacity(batch as usize);
        for i in 0..batch {
            let a = (i % agents) as usize;
            seq[a] += 1;
            let s = seq[a];
            events.push(if s.is_multiple_of(5) {
                Event::new(
                    refs[a].clone(),
                    s,
                    ScheduleRetry {
                        callback: "sendDigest".into(),
                        id: format!("sch-{s}").into(),
                        attempt: 1,
                        max_attempts: 3,
                        backoff_ms: 100,
                        ..Default::default()
                    },
                )
            } else {
                Event::new(
                    refs[a].clone(),
                    s,
                    StateUpdate {
                        version: s,
                        changed_paths: vec!["/status".into(), "/history".into()],
                        size_bytes: 2048 + s,
                        ..Default::default()
                    },
                )
            });
        }
        writer.write(&events)?;
        writeln!(out, "durable {}", seq.iter().min().copied().unwrap_or(0))?;
        out.flush()?;
    }
}
