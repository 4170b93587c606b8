//! A reference-runtime process (`src/bin/runtime-process.rs`: an agent with an MCP server, an
//! every-second cron calling one of its tools and a long checkpointing fiber, every event
//! archived) is SIGKILLed mid-fiber, left
//! down for a while, restarted (and killed again), and restarted once more. From the archive:
//! the cron fired after the restarts and the runs missed while down were reported; the
//! fiber resumed from its last checkpoint, never repeated a step, and completed exactly once;
//! the MCP connection was restored by each restart and served the ticks; the agent's sequence
//! numbers never repeated or went back.

use std::io::{BufRead, BufReader};
use std::ops::ControlFlow;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use sightline_archive::{Archive, ArchiveConfig, ArchiveWriter, Query};
use sightline_event::{Event, Kind, Payload};
use sightline_tests::scratch_dir;

fn start(dir: &Path, mode: &str) -> Child {
    let mut child = Command::new(env!("CARGO_BIN_EXE_runtime-process"))
        .arg(dir)
        .arg(mode)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "ready", "the runtime process did not start");
    child
}

fn kill(mut child: Child) {
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
}

#[test]
fn a_killed_runtime_restarts_with_its_schedules_fibers_and_sequences() {
    let dir = scratch_dir("runtime-crash").unwrap();
    // Mid-fiber (about step 14 of 40), with the cron ticking.
    let p = start(&dir, "setup");
    std::thread::sleep(Duration::from_millis(1500));
    kill(p);
    // Down long enough for the every-second cron to miss runs.
    std::thread::sleep(Duration::from_millis(2500));
    let p = start(&dir, "resume");
    std::thread::sleep(Duration::from_millis(1500));
    kill(p);
    let p = start(&dir, "resume");
    std::thread::sleep(Duration::from_millis(4000));
    kill(p);

    // Recover the archive the last kill left open, then read everything.
    drop(ArchiveWriter::open(dir.join("archive"), ArchiveConfig::default()).unwrap());
    let mut events: Vec<Event> = Vec::new();
    Archive::open(dir.join("archive"))
        .unwrap()
        .scan(&Query::default(), |e| {
            events.push(e);
            ControlFlow::Continue(())
        })
        .unwrap();
    let events: Vec<Event> = events
        .into_iter()
        .filter(|e| e.agent.to_string() == "Worker/w-1")
        .collect();
    let count = |k: Kind| events.iter().filter(|e| e.kind() == k).count();
    let names: Vec<&str> = events.iter().map(|e| e.kind().name()).collect();

    // Sequence numbers: strictly increasing in archive order, across three processes.
    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "a sequence number repeated or went back: {seqs:?}"
    );

    // The fiber: checkpoints only ever move forward, and it completed once.
    let steps: Vec<u32> = events
        .iter()
        .filter_map(|e| match &e.payload {
            Payload::FiberStash(s) => Some(s.step),
            _ => None,
        })
        .collect();
    assert!(
        steps.windows(2).all(|w| w[0] < w[1]),
        "a checkpoint step repeated: {steps:?}"
    );
    assert_eq!(steps.last(), Some(&40), "{steps:?}");
    assert_eq!(count(Kind::FiberRunCompleted), 1, "{names:?}");
    assert!(count(Kind::FiberRecoveryDetected) >= 1, "{names:?}");
    assert!(count(Kind::FiberRecoveryHandled) >= 1, "{names:?}");

    // The cron: fired before and after the restarts; the runs missed while down reported.
    assert!(count(Kind::ScheduleMissed) >= 1, "{names:?}");
    let wakes: Vec<usize> = events
        .iter()
        .enumerate()
        .filter(|(_, e)| e.kind() == Kind::AgentWake)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(wakes.len(), 2, "two restarts, two wakes: {names:?}");
    let completes_after_last_restart = events[wakes[1]..]
        .iter()
        .filter(|e| e.kind() == Kind::ScheduleComplete)
        .count();
    // (Before the first kill the fiber held the agent: one input at a time.)
    assert!(completes_after_last_restart >= 2, "{names:?}");

    // MCP: connected at setup, restored by each restart (from the agent's database, before
    // any input asked for it), and used by the ticks after the last one.
    let connects: Vec<usize> = events
        .iter()
        .enumerate()
        .filter(|(_, e)| {
            e.kind() == Kind::McpClientConnect && e.outcome == Some(sightline_event::Outcome::Ok)
        })
        .map(|(i, _)| i)
        .collect();
    assert!(connects.len() >= 3, "{names:?}");
    assert!(connects[0] < wakes[0], "{names:?}");
    assert!(
        connects.iter().any(|&i| i > wakes[0] && i < wakes[1]),
        "{names:?}"
    );
    assert!(connects.iter().any(|&i| i > wakes[1]), "{names:?}");
    let tool_calls_after_last_restart = events[wakes[1]..]
        .iter()
        .filter(|e| e.kind() == Kind::McpRequest && e.outcome == Some(sightline_event::Outcome::Ok))
        .count();
    assert!(tool_calls_after_last_restart >= 2, "{names:?}");
}
