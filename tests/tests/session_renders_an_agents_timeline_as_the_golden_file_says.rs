//! `sightline session <class>/<name>` renders one agent's timeline from the archive exactly
//! as `tests/golden/session.txt` says: RPCs with durations, state changes with their diffs,
//! the schedule lifecycle, fiber runs and recovery, MCP connections, tool and model calls
//! with tokens, failures marked, a sequence gap reported as possible loss; and `--at <seq>`
//! rebuilds the agent's state from its diffs. The events go in through `sightline ingest`
//! (so through the archive policy, with a fixed hash key) next to another agent's.
//! Run with `SIGHTLINE_BLESS=1` to rewrite the golden file after a deliberate change.

use sightline_event::*;
use sightline_tests::{assert_golden, scratch_dir, sightline_with_stdin};

const T0: u64 = 1_763_936_129_000_000_000;

fn at(i: u64, agent: &AgentRef, seq: u64, payload: impl Into<Payload>) -> Event {
    let mut e = Event::new(agent.clone(), seq, payload);
    e.ts_ns = T0 + i * 250_000_000;
    e.id = EventId(0x0192_f5a0_0000_7000_8000_0000_0000_0000 + u128::from(i));
    e
}

fn session_events() -> Vec<Event> {
    let me = AgentRef::new("SupportAgent", "ticket-4411");
    let other = AgentRef::new("SupportAgent", "ticket-9000");
    let patch = |ops: serde_json::Value| Some(Sensitive(ops.into()));
    let mut v = vec![
        at(
            0,
            &me,
            1,
            Rpc {
                method: "openTicket".into(),
                ..Default::default()
            },
        )
        .with_outcome(Outcome::Ok)
        .with_duration_ns(12_300_000),
        at(
            1,
            &me,
            2,
            StateUpdate {
                version: 1,
                changed_paths: vec!["/status".into(), "/customer".into()],
                size_bytes: 96,
                diff: patch(serde_json::json!([
                    {"op": "add", "path": "/status", "value": "open"},
                    {"op": "add", "path": "/customer", "value": {"tier": "gold", "orders": 3}}
                ])),
                source: Some("rpc".into()),
            },
        ),
        at(
            2,
            &other,
            1,
            Rpc {
                method: "ping".into(),
                ..Default::default()
            },
        ),
        at(
            3,
            &me,
            3,
            ScheduleCreate {
                callback: "sendDigest".into(),
                id: "sch-1".into(),
                schedule_type: ScheduleType::Delay,
                interval_ms: Some(60_000),
                ..Default::default()
            },
        ),
        at(
            4,
            &me,
            4,
            McpClientConnect {
                server_id: "srv-1".into(),
                server_name: "orders".into(),
                url: Sensitive("https://mcp.example.com/orders".into()),
                transport: McpTransport::StreamableHttp,
                state: McpState::Failed,
                error: Some("connection refused".into()),
            },
        )
        .with_outcome(Outcome::Error)
        .with_duration_ns(5_000_000_000),
        at(
            5,
            &me,
            5,
            McpClientConnect {
                server_id: "srv-1".into(),
                server_name: "orders".into(),
                url: Sensitive("https://mcp.example.com/orders".into()),
                transport: McpTransport::StreamableHttp,
                state: McpState::Ready,
                error: None,
            },
        )
        .with_outcome(Outcome::Ok)
        .with_duration_ns(180_000_000),
        at(
            6,
            &me,
            6,
            ToolCall {
                tool_call_id: "call-7".into(),
                tool_name: "lookup_order".into(),
                source: Some("orders".into()),
                ..Default::default()
            },
        )
        .with_outcome(Outcome::Ok)
        .with_duration_ns(48_000_000),
        at(
            7,
            &me,
            7,
            ModelCall {
                model: "gpt-4.1-mini".into(),
                provider: "openai".into(),
                input_tokens: 1200,
                output_tokens: 340,
                finish_reason: Some("stop".into()),
                ..Default::default()
            },
        )
        .with_outcome(Outcome::Ok)
        .with_duration_ns(1_450_000_000),
        at(
            8,
            &me,
            8,
            StateUpdate {
                version: 2,
                changed_paths: vec!["/status".into()],
                size_bytes: 98,
                diff: patch(
                    serde_json::json!([{"op": "replace", "path": "/status", "value": "waiting"}]),
                ),
                source: Some("tool".into()),
            },
        ),
        at(
            9,
            &me,
            9,
            ScheduleExecute {
                callback: "sendDigest".into(),
                id: "sch-1".into(),
                attempt: 1,
                lateness_ms: 40,
            },
        ),
        at(
            10,
            &me,
            10,
            ScheduleRetry {
                callback: "sendDigest".into(),
                id: "sch-1".into(),
                attempt: 1,
                max_attempts: 3,
                backoff_ms: 200,
                error: Some("smtp timeout".into()),
            },
        ),
        // Seq 11 and 12 never reach the archive: a gap.
        at(
            11,
            &me,
            13,
            ScheduleError {
                callback: "sendDigest".into(),
                id: "sch-1".into(),
                error: "smtp timeout".into(),
                attempts: 3,
                error_type: Some("Timeout".into()),
            },
        )
        .with_outcome(Outcome::Error)
        .with_duration_ns(3_100_000_000),
        at(
            12,
            &me,
            14,
            FiberRunStarted {
                fiber_id: "fib-1".into(),
                fiber_name: "refund".into(),
            },
        ),
        at(
            13,
            &me,
            15,
            FiberStash {
                fiber_id: "fib-1".into(),
                fiber_name: "refund".into(),
                step: 1,
                size_bytes: 310,
            },
        ),
        at(
            14,
            &me,
            16,
            FiberRunInterrupted {
                fiber_id: "fib-1".into(),
                fiber_name: "refund".into(),
                reason: Some("evicted".into()),
                steps: 1,
            },
        ),
        at(
            15,
            &me,
            17,
            FiberRecoveryDetected {
                fiber_id: "fib-1".into(),
                fiber_name: "refund".into(),
                age_ms: 2_500,
                last_step: 1,
            },
        ),
        at(
            16,
            &me,
            18,
            FiberRecoveryHandled {
                fiber_id: "fib-1".into(),
                fiber_name: "refund".into(),
                attempt: 1,
            },
        )
        .with_outcome(Outcome::Ok)
        .with_duration_ns(90_000_000),
        at(
            17,
            &me,
            19,
            StateRejected {
                version: 2,
                reason: "state over the size limit".into(),
                size_bytes: Some(2_000_000),
                limit_bytes: Some(1_048_576),
            },
        ),
        at(
            18,
            &me,
            20,
            StateUpdate {
                version: 3,
                changed_paths: vec!["/status".into(), "/customer/orders".into()],
                size_bytes: 99,
                diff: patch(serde_json::json!([
                    {"op": "replace", "path": "/status", "value": "refunded"},
                    {"op": "replace", "path": "/customer/orders", "value": 4}
                ])),
                source: Some("fiber".into()),
            },
        ),
        at(
            19,
            &me,
            21,
            RpcError {
                method: "closeTicket".into(),
                error: "ticket locked by jane.doe@example.com".into(),
                ..Default::default()
            },
        )
        .with_outcome(Outcome::Error)
        .with_duration_ns(8_000_000),
    ];
    v.push(at(
        20,
        &other,
        2,
        Rpc {
            method: "ping".into(),
            ..Default::default()
        },
    ));
    v
}

fn run(data_dir: &str, args: &[&str], stdin: Option<&[u8]>) -> String {
    let mut all = vec!["--data-dir", data_dir];
    all.extend_from_slice(args);
    let env = [("SIGHTLINE_HASH_KEY", "golden-session-hash-key-0123456789")];
    let out = sightline_with_stdin(&all, &env, stdin.unwrap_or_default()).unwrap();
    assert!(
        out.status.success(),
        "sightline {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn session_renders_an_agents_timeline_as_the_golden_file_says() {
    let dir = scratch_dir("session-golden").unwrap();
    let data_dir = dir.to_str().unwrap();
    let input: String = session_events()
        .iter()
        .map(|e| e.to_json_line() + "\n")
        .collect();
    run(data_dir, &["ingest"], Some(input.as_bytes()));

    let agent = "SupportAgent/ticket-4411";
    let timeline = run(data_dir, &["session", agent, "--color", "never"], None);
    let state = run(data_dir, &["session", agent, "--at", "20"], None);
    let early = run(data_dir, &["session", agent, "--at", "9"], None);
    let rendered = format!(
        "$ sightline session {agent}\n{timeline}\n$ sightline session {agent} --at 20\n{state}\n$ sightline session {agent} --at 9\n{early}"
    );
    assert_golden("tests/golden/session.txt", &rendered);

    // The machine form: that agent's events only, in order, parseable.
    let json = run(data_dir, &["session", agent, "--format", "json"], None);
    let seqs: Vec<u64> = json
        .lines()
        .map(|l| Event::from_json_line(l).unwrap())
        .inspect(|e| assert_eq!(e.agent.to_string(), agent))
        .map(|e| e.seq)
        .collect();
    assert_eq!(seqs, (1..=10).chain(13..=21).collect::<Vec<_>>());
    // No secret in any of it.
    assert!(!rendered.contains("jane.doe") && !json.contains("jane.doe"));
}
