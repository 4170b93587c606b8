//! A tool call's arguments (a field the event model marks sensitive) reach the collector as
//! `gen_ai.tool.call.arguments` only when the exporter's `capture_content` is on: the same
//! event, exported to a receiver on loopback with the flag off and on, arrives without and
//! with them. (The redaction policy in front of the sink is the other half of the opt-in; it
//! is not in this picture: the sink is fed directly.)

use std::collections::BTreeMap;
use std::time::Duration;

use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::trace::v1::Span;
use sightline_event::{AgentRef, Event, Outcome, Sensitive, ToolCall};
use sightline_otlp::receiver::Receiver;
use sightline_otlp::{OtlpConfig, OtlpSink, Protocol};
use sightline_sink::Sink;

const ARGUMENTS: &str = r#"{"query":"refund policy","user":"jane.doe@example.com"}"#;

/// Exports one tool call with `capture_content` as given; returns the span that arrived.
fn export(capture_content: bool) -> Span {
    let receiver = Receiver::start(true).unwrap();
    let config = OtlpConfig {
        endpoint: Some(receiver.grpc_url()),
        protocol: Some(Protocol::Grpc),
        capture_content,
        ..Default::default()
    };
    let mut sink = OtlpSink::with_env(&config, &BTreeMap::new()).unwrap();
    let stats = sink.stats_handle();
    let e = Event::new(
        AgentRef::new("Support", "ticket-7"),
        1,
        ToolCall {
            tool_call_id: "call-1".into(),
            tool_name: "web_search".into(),
            arguments: Some(Sensitive(serde_json::from_str(ARGUMENTS).unwrap())),
            ..Default::default()
        },
    )
    .with_outcome(Outcome::Ok)
    .with_duration_ns(2_000_000);
    sink.write(&[e]).unwrap();
    sink.flush().unwrap();
    assert!(
        stats.wait_idle(Duration::from_secs(20)),
        "{:?}",
        stats.stats()
    );
    sink.shutdown().unwrap();
    assert_eq!(stats.stats().delivered, 1, "{:?}", stats.stats());
    let spans: Vec<Span> = receiver
        .take()
        .traces
        .into_iter()
        .flat_map(|r| r.resource_spans)
        .flat_map(|rs| rs.scope_spans)
        .flat_map(|ss| ss.spans)
        .collect();
    assert_eq!(spans.len(), 1, "{spans:?}");
    spans.into_iter().next().unwrap()
}

fn attribute(span: &Span, key: &str) -> Option<Any> {
    span.attributes
        .iter()
        .find(|a| a.key == key)
        .and_then(|a| a.value.clone())
        .and_then(|v| v.value)
}

#[test]
fn tool_arguments_are_exported_only_with_capture_content() {
    let off = export(false);
    // The span is there, named by its tool, just without the arguments.
    assert_eq!(
        attribute(&off, "gen_ai.tool.name"),
        Some(Any::StringValue("web_search".into()))
    );
    assert_eq!(attribute(&off, "gen_ai.tool.call.arguments"), None);
    assert!(
        !format!("{off:?}").contains("jane.doe@example.com"),
        "{off:?}"
    );

    let on = export(true);
    let Some(Any::StringValue(args)) = attribute(&on, "gen_ai.tool.call.arguments") else {
        panic!("no arguments with capture_content = true: {on:?}");
    };
    let args: serde_json::Value = serde_json::from_str(&args).unwrap();
    assert_eq!(
        args,
        serde_json::from_str::<serde_json::Value>(ARGUMENTS).unwrap()
    );
}
