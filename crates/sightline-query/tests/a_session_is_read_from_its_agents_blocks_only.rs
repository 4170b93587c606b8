//! Reading one agent's session goes through the segments' indexes: it reads only the blocks
//! that hold that agent (far fewer than a full scan) and yields exactly that agent's events
//! in the time window, in emit order; stats over the same archive count families, outcomes,
//! failing schedules and the sequence gap that was planted.

use sightline_archive::{Archive, ArchiveConfig, ArchiveWriter, Compression, Query};
use sightline_event::*;
use sightline_query::{session, stats, timeline::Timeline, Filter};
use sightline_sink::Sink;

const T0: u64 = 1_763_936_129_000_000_000;
const AGENTS: u64 = 20;
const ROUNDS: u64 = 50;

fn agent(a: u64) -> AgentRef {
    AgentRef::new("Support", format!("t-{a:02}"))
}

/// Round-robin over the agents, one event each per round, 1 ms apart. Agent 3 skips its
/// seq 10 (a gap); every fifth event of agent 7 is a schedule error.
fn events() -> Vec<Event> {
    let mut v = Vec::new();
    let mut ts = T0;
    for round in 1..=ROUNDS {
        for a in 0..AGENTS {
            ts += 1_000_000;
            if a == 3 && round == 10 {
                continue;
            }
            let mut e = if a == 7 && round % 5 == 0 {
                Event::new(
                    agent(a),
                    round,
                    ScheduleError {
                        callback: "sendDigest".into(),
                        id: "sch-1".into(),
                        error: "smtp timeout".into(),
                        attempts: 3,
                        error_type: None,
                    },
                )
                .with_outcome(Outcome::Error)
            } else {
                Event::new(
                    agent(a),
                    round,
                    Rpc {
                        method: format!("m{round}").into(),
                        ..Default::default()
                    },
                )
                .with_outcome(Outcome::Ok)
                .with_duration_ns(round * 1_000_000)
            };
            e.ts_ns = ts;
            v.push(e);
        }
    }
    v
}

fn archive(name: &str) -> Archive {
    let dir = std::env::temp_dir().join(format!("sightline-query-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let cfg = ArchiveConfig {
        compression: Compression::None,
        retention_max_bytes: 0,
        retention_max_age_secs: 0,
        index_block_bytes: 512,
        ..ArchiveConfig::default()
    };
    let mut writer = ArchiveWriter::open(&dir, cfg).unwrap();
    writer.write(&events()).unwrap();
    writer.shutdown().unwrap();
    let archive = Archive::open(&dir).unwrap();
    assert!(
        archive.segments().iter().all(|s| s.manifest.is_some()) && !archive.segments().is_empty(),
        "the writer's shutdown closes its segment"
    );
    archive
}

#[test]
fn a_session_is_read_from_its_agents_blocks_only() {
    let archive = archive("blocks");
    let full = archive
        .scan(&Query::default(), |_| std::ops::ControlFlow::Continue(()))
        .unwrap();
    assert_eq!(full.events, AGENTS * ROUNDS - 1);

    let who = session::one_agent("Support/t-05").unwrap();
    let s = session::read(&archive, &who, Query::default()).unwrap();
    assert!(s.events.iter().all(|e| e.agent == who));
    let seqs: Vec<u64> = s.events.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=ROUNDS).collect::<Vec<_>>());
    assert!(s.cost.blocks_read > 0);
    assert!(
        s.cost.blocks_read * 4 <= full.blocks_read,
        "the session read {} blocks, a full scan {}",
        s.cost.blocks_read,
        full.blocks_read
    );

    // A window: since is inclusive, until exclusive. Agent 5's event of round r is at
    // T0 + ((r - 1) * AGENTS + 5 + 1) ms.
    let at = |round: u64| T0 + ((round - 1) * AGENTS + 6) * 1_000_000;
    let query = Filter {
        since: Some(at(10).to_string()),
        until: Some(at(20).to_string()),
        ..Filter::default()
    }
    .query()
    .unwrap();
    let s = session::read(&archive, &who, query).unwrap();
    let seqs: Vec<u64> = s.events.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (10..20).collect::<Vec<_>>());

    // An agent that is not there, and a class instead of an agent, are errors that say so.
    let nobody = session::one_agent("Support/t-99").unwrap();
    let err = session::read(&archive, &nobody, Query::default()).unwrap_err();
    assert!(
        err.to_string().starts_with("no events of Support/t-99 in "),
        "{err}"
    );
    let err = session::one_agent("Support").unwrap_err();
    assert!(err.to_string().contains("got \"Support\""), "{err}");

    // The gap in agent 3 shows in its timeline.
    let s = session::read(&archive, &agent(3), Query::default()).unwrap();
    let t = Timeline::of(&s);
    assert_eq!((t.summary.gaps, t.summary.missing), (1, 1));
    assert_eq!(t.summary.events, ROUNDS - 1);
    let _ = std::fs::remove_dir_all(archive.dir());
}

#[test]
fn stats_count_what_the_archive_holds() {
    let archive = archive("stats");
    let st = stats::stats(&archive, &Query::default(), 10).unwrap();
    assert_eq!(st.events, AGENTS * ROUNDS - 1);
    assert_eq!(
        st.by_family.get("rpc"),
        Some(&(AGENTS * ROUNDS - 1 - ROUNDS / 5))
    );
    assert_eq!(st.by_family.get("schedule"), Some(&(ROUNDS / 5)));
    assert_eq!(st.operations, st.events);
    assert_eq!(st.failed_operations, ROUNDS / 5);
    assert_eq!(st.by_outcome.get("error"), Some(&(ROUNDS / 5)));
    assert_eq!(
        st.top_failing_schedules
            .iter()
            .map(|f| (f.callback.as_str(), f.errors))
            .collect::<Vec<_>>(),
        [("sendDigest", ROUNDS / 5)]
    );
    let class = &st.by_agent_class["Support"];
    assert_eq!((class.agents, class.events), (AGENTS, st.events));
    assert_eq!((st.seq_gaps, st.seq_gap_events), (1, 1));
    assert!(st.gaps_counted);
    assert_eq!(
        (st.segments.closed, st.segments.open),
        (st.segments.total, 0)
    );
    assert_eq!(st.first_ts_ns, Some(T0 + 1_000_000));
    assert_eq!(st.last_ts_ns, Some(T0 + AGENTS * ROUNDS * 1_000_000));

    // With kinds selected, gaps are expected and not counted.
    let query = Filter {
        kinds: vec!["schedule".into()],
        ..Filter::default()
    }
    .query()
    .unwrap();
    let st = stats::stats(&archive, &query, 10).unwrap();
    assert_eq!(st.events, ROUNDS / 5);
    assert!(!st.gaps_counted);
    assert_eq!(st.seq_gaps, 0);
    let _ = std::fs::remove_dir_all(archive.dir());
}
