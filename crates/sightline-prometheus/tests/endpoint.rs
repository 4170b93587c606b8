//! The `/metrics` endpoint: text format by default, OpenMetrics when asked, the bearer token
//! enforced when configured, and a clear error when the port is taken.

use std::io::{Read, Write};
use std::net::TcpStream;

use prometheus::Registry;
use sightline_event::{AgentRef, Event, Outcome, Rpc};
use sightline_prometheus::{EventMetrics, MetricsServer, PrometheusError};

fn get(addr: std::net::SocketAddr, headers: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{headers}\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

fn registry() -> Registry {
    let registry = Registry::new();
    let mut m = EventMetrics::new(&registry, 100, 100).unwrap();
    let rpc = Rpc {
        method: "getTicket".into(),
        ..Default::default()
    };
    m.record(&Event::new(AgentRef::new("Support", "t"), 1, rpc).with_outcome(Outcome::Ok));
    registry
}

#[test]
fn the_endpoint_negotiates_the_format_and_enforces_the_token() {
    let server = MetricsServer::start("127.0.0.1:0", registry(), Some("s3cret".into())).unwrap();
    let addr = server.local_addr();
    assert!(get(addr, "").starts_with("HTTP/1.1 401"));
    assert!(get(addr, "Authorization: Bearer nope\r\n").starts_with("HTTP/1.1 401"));
    let text = get(addr, "Authorization: Bearer s3cret\r\n");
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("text/plain; version=0.0.4"), "{text}");
    assert!(text.contains(
        "sightline_rpc_calls_total{agent_class=\"Support\",method=\"getTicket\",outcome=\"ok\"} 1"
    ));
    let om = get(
        addr,
        "Authorization: Bearer s3cret\r\nAccept: application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5\r\n",
    );
    assert!(
        om.contains("application/openmetrics-text; version=1.0.0"),
        "{om}"
    );
    assert!(om.contains("# TYPE sightline_rpc_calls counter"), "{om}");
    assert!(om.trim_end().ends_with("# EOF"), "{om}");
}

#[test]
fn a_taken_port_is_a_clear_error() {
    let first = MetricsServer::start("127.0.0.1:0", Registry::new(), None).unwrap();
    let taken = first.local_addr().to_string();
    let err = MetricsServer::start(&taken, Registry::new(), None).unwrap_err();
    assert!(matches!(err, PrometheusError::Bind { .. }));
    let text = err.to_string();
    assert!(
        text.contains(&taken) && text.contains("listen_addr"),
        "{text}"
    );
}

#[test]
fn redacted_events_still_count_by_their_safe_fields() {
    use sightline_event::{Payload, RawPayload, ScheduleError};
    let registry = Registry::new();
    let mut m = EventMetrics::new(&registry, 100, 100).unwrap();
    // The metrics policy drops the sensitive `error`, so the payload arrives as JSON.
    let full = ScheduleError {
        callback: "sendDigest".into(),
        id: "s1".into(),
        error: "smtp down".into(),
        attempts: 3,
        error_type: None,
    };
    let mut fields = match Payload::from(full).to_json() {
        serde_json::Value::Object(m) => m,
        _ => unreachable!(),
    };
    fields.remove("error");
    let mut e = Event::new(
        AgentRef::new("Reminder", "r-1"),
        1,
        ScheduleError::default(),
    );
    e.payload = Payload::Raw(RawPayload {
        kind: sightline_event::Kind::ScheduleError,
        fields,
    });
    m.record(&e);
    let text = sightline_prometheus::render_text(&registry);
    assert!(
        text.contains("sightline_schedule_retries_exhausted_total{agent_class=\"Reminder\",callback=\"sendDigest\"} 1"),
        "{text}"
    );
}

#[test]
fn the_cached_path_and_the_redacted_path_count_alike() {
    use sightline_event::{Payload, RawPayload};
    let registry = Registry::new();
    let mut m = EventMetrics::new(&registry, 100, 100).unwrap();
    let typed = Event::new(
        AgentRef::new("Support", "t"),
        1,
        Rpc {
            method: "refund".into(),
            ..Default::default()
        },
    )
    .with_outcome(Outcome::Timeout)
    .with_duration_ns(2_000_000);
    let mut raw = typed.clone();
    let fields = match typed.payload.to_json() {
        serde_json::Value::Object(f) => f,
        _ => unreachable!(),
    };
    raw.payload = Payload::Raw(RawPayload {
        kind: sightline_event::Kind::Rpc,
        fields,
    });
    for e in [&typed, &raw, &typed] {
        m.record(e);
    }
    let text = sightline_prometheus::render_text(&registry);
    for line in [
        "sightline_rpc_calls_total{agent_class=\"Support\",method=\"refund\",outcome=\"timeout\"} 3",
        "sightline_rpc_duration_seconds_count{agent_class=\"Support\",method=\"refund\"} 3",
        "sightline_events_total{agent_class=\"Support\",family=\"rpc\"} 3",
        "sightline_agents_active{agent_class=\"Support\"} 1",
    ] {
        assert!(text.contains(line), "no {line} in\n{text}");
    }
}
