//! A reference-runtime process (`src/bin/runtime-process.rs`: an agent with an MCP server, an
//! every-second cron calling one of its tools and a long checkpointing fiber, every event
//! archived) is SIGKILLed mid-fiber, left
//! down for a while, restarted (and killed again mid-recovery), and restarted once more; each
//! kill waits for what the archive shows, read while the process writes it. From the archive:
//! the cron fired after the restarts and the runs missed while down were reported; the
//! fiber resumed from its last checkpoint, never repeated a step, and completed exactly once;
//! the MCP connection was restored by each restart and served the ticks; the agent's sequence
//! numbers never repeated or went back.

use std::io::{BufRead, BufReader};
use std::ops::ControlFlow;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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

/// The agent's events archived so far, in archive order. The archive is read while the
/// process writes it (a reader sees the complete lines of an open segment); `None` while it
/// cannot be read yet.
fn archived(dir: &Path) -> Option<Vec<Event>> {
    let mut events = Vec::new();
    Archive::open(dir.join("archive"))
        .ok()?
        .scan(&Query::default(), |e| {
            if e.agent.to_string() == "Worker/w-1" {
                events.push(e);
            }
            ControlFlow::Continue(())
        })
        .ok()?;
    Some(events)
}

/// Waits until the archive shows what `done` looks for, polling it; fails naming `what` after
/// a minute.
fn wait_archived(dir: &Path, what: &str, done: impl Fn(&[Event]) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let events = archived(dir).unwrap_or_default();
        if done(&events) {
            return;
        }
        let names: Vec<&str> = events.iter().map(|e| e.kind().name()).collect();
        assert!(Instant::now() < deadline, "{what}: {names:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn count_of(events: &[Event], kind: Kind) -> usize {
    events.iter().filter(|e| e.kind() == kind).count()
}

fn ok(e: &Event, kind: Kind) -> bool {
    e.kind() == kind && e.outcome == Some(sightline_event::Outcome::Ok)
}

/// The events since the `n`th `agent:wake` (all of them for 0): what the `n`th restart did.
fn since_wake(events: &[Event], n: usize) -> &[Event] {
    if n == 0 {
        return events;
    }
    let at = events
        .iter()
        .enumerate()
        .filter(|(_, e)| e.kind() == Kind::AgentWake)
        .nth(n - 1)
        .map_or(events.len(), |(i, _)| i);
    &events[at..]
}

fn stash_steps(events: &[Event]) -> Vec<u32> {
    events
        .iter()
        .filter_map(|e| match &e.payload {
            Payload::FiberStash(s) => Some(s.step),
            _ => None,
        })
        .collect()
}

#[test]
fn a_killed_runtime_restarts_with_its_schedules_fibers_and_sequences() {
    let dir = scratch_dir("runtime-crash").unwrap();
    // Killed mid-fiber (10 of its 40 checkpoints stored), its MCP server connected.
    let p = start(&dir, "setup");
    wait_archived(&dir, "the fiber did not get to step 10", |ev| {
        ev.iter().any(|e| ok(e, Kind::McpClientConnect))
            && stash_steps(ev).last().is_some_and(|&s| s >= 10)
    });
    kill(p);
    // Down long enough for the every-second cron to miss runs (the downtime is what is
    // tested, not a stand-in for a condition).
    std::thread::sleep(Duration::from_millis(2500));
    // Restarted, and killed again once the fiber's recovery has stored two checkpoints on the
    // restored MCP connection's process.
    let p = start(&dir, "resume");
    wait_archived(&dir, "the first restart did not resume the fiber", |ev| {
        let after = since_wake(ev, 1);
        count_of(ev, Kind::AgentWake) == 1
            && after.iter().any(|e| ok(e, Kind::McpClientConnect))
            && stash_steps(after).len() >= 2
    });
    kill(p);
    // Restarted once more: runs until the fiber completed and two ticks called the tool.
    let p = start(&dir, "resume");
    wait_archived(&dir, "the second restart did not finish", |ev| {
        let after = since_wake(ev, 2);
        count_of(ev, Kind::AgentWake) == 2
            && count_of(after, Kind::FiberRunCompleted) == 1
            && count_of(after, Kind::ScheduleComplete) >= 2
            && after.iter().filter(|e| ok(e, Kind::McpRequest)).count() >= 2
    });
    kill(p);

    // Recover the archive the last kill left open, then read everything.
    drop(ArchiveWriter::open(dir.join("archive"), ArchiveConfig::default()).unwrap());
    let events = archived(&dir).expect("the archive cannot be read");
    let count = |k: Kind| count_of(&events, k);
    let names: Vec<&str> = events.iter().map(|e| e.kind().name()).collect();

    // Sequence numbers: strictly increasing in archive order, across three processes.
    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "a sequence number repeated or went back: {seqs:?}"
    );

    // The fiber: checkpoints only ever move forward, and it completed once.
    let steps = stash_steps(&events);
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
