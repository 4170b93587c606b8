//! The JSON form is a wire format: these lines are what archives on disk hold, so any change
//! to them must be deliberate. Run with `SIGHTLINE_BLESS=1` to rewrite the golden file after a
//! deliberate change (and bump `SCHEMA_VERSION` if old readers would break).

use sightline_event::*;

fn fixed(seq: u64, payload: Payload) -> Event {
    let mut e = Event::new(AgentRef::new("Support", "ticket-4411"), seq, payload);
    e.ts_ns = 1_763_900_000_000_000_000 + seq * 1_000;
    e.id = EventId::from_parts(e.ts_ns, seq.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    e
}

fn golden_events() -> Vec<Event> {
    let trace = TraceContext {
        trace_id: TraceId::new(0x4bf92f3577b34da6a3ce929d0e0e4736).unwrap(),
        span_id: SpanId::new(0x00f067aa0ba902b7).unwrap(),
        parent_span_id: SpanId::new(0x53995c3f42cd8ad8),
    };
    let mut events = vec![
        fixed(
            1,
            ScheduleError {
                callback: "sendDigest".into(),
                id: "sch_12".into(),
                error: "SMTP 550 mailbox unavailable for bob@example.com".into(),
                attempts: 3,
                error_type: Some("SmtpError".into()),
            }
            .into(),
        )
        .with_outcome(Outcome::Error)
        .with_duration_ns(1_250_000)
        .with_trace(trace),
        fixed(
            2,
            StateUpdate {
                version: 42,
                changed_paths: vec!["/tickets".into(), "/status".into()],
                size_bytes: 1834,
                diff: Some(Sensitive(
                    serde_json::json!([
                        {"op": "replace", "path": "/status", "value": "escalated"}
                    ])
                    .into(),
                )),
                source: Some("server".into()),
            }
            .into(),
        ),
        fixed(
            3,
            ModelCall {
                model: "gpt-4.1-mini".into(),
                provider: "openai".into(),
                input_tokens: 812,
                output_tokens: 96,
                finish_reason: Some("stop".into()),
                error: None,
            }
            .into(),
        )
        .with_outcome(Outcome::Ok)
        .with_duration_ns(640_000_000)
        .with_trace(trace.child()),
        fixed(
            4,
            McpClientConnect {
                server_id: "srv_1".into(),
                server_name: "github".into(),
                url: "https://mcp.example.com/sse?token=abc".into(),
                transport: McpTransport::StreamableHttp,
                state: McpState::Failed,
                error: Some("401 Unauthorized".into()),
            }
            .into(),
        )
        .with_outcome(Outcome::Error),
    ];
    // Then one event of every kind, with default fields, so every kind's shape is pinned.
    for (i, kind) in Kind::ALL.iter().enumerate() {
        events.push(fixed(100 + i as u64, Payload::default_for(*kind)));
    }
    // Trace ids in the golden file must be stable, so pin the random child span.
    events[2].span_id = SpanId::new(0x1111_2222_3333_4444);
    events
}

#[test]
fn json_form_matches_the_golden_file() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/events.jsonl");
    let mut text = String::new();
    for e in golden_events() {
        text.push_str(&e.to_json_line());
        text.push('\n');
    }
    if std::env::var_os("SIGHTLINE_BLESS").is_some() {
        std::fs::write(path, &text).unwrap();
    }
    let golden =
        std::fs::read_to_string(path).expect("golden file missing: run with SIGHTLINE_BLESS=1");
    for (i, (got, want)) in text.lines().zip(golden.lines()).enumerate() {
        assert_eq!(got, want, "line {} differs", i + 1);
    }
    assert_eq!(
        text.lines().count(),
        golden.lines().count(),
        "line count differs"
    );
}

#[test]
fn golden_lines_parse_back_to_the_same_events() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/events.jsonl");
    let golden = std::fs::read_to_string(path).unwrap();
    for (line, want) in golden.lines().zip(golden_events()) {
        let got = Event::from_json_line(line).unwrap();
        assert_eq!(got, want);
        assert_eq!(
            got.to_json_line(),
            line,
            "re-serialization is byte-identical"
        );
    }
}
