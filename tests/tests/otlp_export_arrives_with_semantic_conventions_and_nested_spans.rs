//! A fixed event sequence goes through the pipeline's `otlp` redaction policy and the OTLP
//! sink to a receiver on loopback built from `opentelemetry-proto`'s generated server types,
//! over gRPC and over HTTP/protobuf with gzip. What the receiver decoded is the same for both,
//! matches the golden file `tests/golden/otlp_request_trace.json`, nests as the events' trace
//! context says (turn > RPC > schedule > fiber > MCP request, tool call, model call), carries
//! the semantic conventions' attributes, holds every event family, and holds no planted secret.
//! Run with `SIGHTLINE_BLESS=1` to rewrite the golden file after a deliberate change.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use opentelemetry_proto::tonic::common::v1::{any_value::Value as Any, KeyValue};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::trace::v1::{span::SpanKind, Span};
use sightline_event::{Family, Kind};
use sightline_otlp::receiver::Receiver;
use sightline_otlp::{Compression, OtlpConfig, Protocol};
use sightline_tests::assert_golden;
use sightline_tests::otlp::{every_kind, lossless_runner, otlp_pipeline, request_trace, SECRETS};

struct Got {
    resource: Vec<KeyValue>,
    spans: Vec<Span>,
    logs: Vec<LogRecord>,
}

fn export(protocol: Protocol) -> Got {
    let receiver = Receiver::start(true).unwrap();
    let env: BTreeMap<String, String> = [(
        "OTEL_RESOURCE_ATTRIBUTES".to_string(),
        "deployment.environment.name=test".to_string(),
    )]
    .into();
    let config = OtlpConfig {
        endpoint: Some(match protocol {
            Protocol::Grpc => receiver.grpc_url(),
            Protocol::HttpProtobuf => receiver.http_url(),
        }),
        protocol: Some(protocol),
        compression: Some(match protocol {
            Protocol::Grpc => Compression::None,
            Protocol::HttpProtobuf => Compression::Gzip,
        }),
        service_name: Some("sightline-e2e".into()),
        service_instance_id: Some("golden-instance".into()),
        batch_max_events: 7,
        ..Default::default()
    };
    let p = otlp_pipeline(&config, &env, lossless_runner());
    let events: Vec<_> = request_trace().into_iter().chain(every_kind()).collect();
    let n = events.len() as u64;
    p.bus.publish_batch(events);
    let reports = p.pipeline.shutdown(Duration::from_secs(20));
    assert_eq!(reports[0].undelivered, 0);
    let s = p.stats.stats();
    assert_eq!((s.received, s.delivered, s.lost()), (n, n, 0), "{s:?}");
    let got = receiver.take();
    let mut resource = None;
    let mut spans = Vec::new();
    let mut logs = Vec::new();
    for r in got.traces {
        for rs in r.resource_spans {
            resource = rs.resource.map(|r| r.attributes);
            for ss in rs.scope_spans {
                assert_eq!(ss.scope.unwrap().name, "sightline");
                spans.extend(ss.spans);
            }
        }
    }
    for r in got.logs {
        for rl in r.resource_logs {
            for sl in rl.scope_logs {
                logs.extend(sl.log_records);
            }
        }
    }
    spans.sort_by_key(|s| (s.end_time_unix_nano, s.span_id.clone()));
    logs.sort_by_key(|l| l.time_unix_nano);
    Got {
        resource: resource.expect("no spans arrived"),
        spans,
        logs,
    }
}

fn attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a Any> {
    attrs
        .iter()
        .find(|a| a.key == key)
        .and_then(|a| a.value.as_ref())
        .and_then(|v| v.value.as_ref())
}

fn s(attrs: &[KeyValue], key: &str) -> String {
    match attr(attrs, key) {
        Some(Any::StringValue(v)) => v.clone(),
        other => panic!("{key}: {other:?}"),
    }
}

fn i(attrs: &[KeyValue], key: &str) -> i64 {
    match attr(attrs, key) {
        Some(Any::IntValue(v)) => *v,
        other => panic!("{key}: {other:?}"),
    }
}

fn agent_of(attrs: &[KeyValue]) -> String {
    s(attrs, "gen_ai.agent.name")
}

#[test]
fn otlp_export_arrives_with_semantic_conventions_and_nested_spans() {
    let grpc = export(Protocol::Grpc);
    let http = export(Protocol::HttpProtobuf);

    // The resource.
    assert_eq!(s(&grpc.resource, "service.name"), "sightline-e2e");
    assert_eq!(s(&grpc.resource, "service.instance.id"), "golden-instance");
    assert_eq!(s(&grpc.resource, "deployment.environment.name"), "test");

    // Golden: the request's records, as OpenTelemetry's JSON encoding writes them.
    let golden_json = |g: &Got| {
        let spans: Vec<_> = g
            .spans
            .iter()
            .filter(|s| agent_of(&s.attributes) == "ResearchAgent")
            .collect();
        let logs: Vec<_> = g
            .logs
            .iter()
            .filter(|l| agent_of(&l.attributes) == "ResearchAgent")
            .collect();
        let v = serde_json::json!({"resource": g.resource, "spans": spans, "logs": logs});
        serde_json::to_string_pretty(&v).unwrap() + "\n"
    };
    let rendered = golden_json(&grpc);
    assert_eq!(rendered, golden_json(&http), "gRPC and HTTP exports differ");
    assert_golden("tests/golden/otlp_request_trace.json", &rendered);

    // No secret, anywhere, over either protocol.
    for g in [&grpc, &http] {
        let all = serde_json::to_string(&serde_json::json!({"s": g.spans, "l": g.logs})).unwrap();
        for secret in SECRETS {
            assert!(!all.contains(secret), "{secret} reached the collector");
        }
    }

    // Nesting: turn > rpc > schedule > fiber > {mcp request, tool call, model call}.
    let by_name: BTreeMap<&str, &Span> = grpc
        .spans
        .iter()
        .filter(|s| agent_of(&s.attributes) == "ResearchAgent")
        .map(|s| (s.name.as_str(), s))
        .collect();
    let chain = [
        "invoke_agent ResearchAgent",
        "startResearch",
        "schedule runResearch",
        "fiber research",
    ];
    let root = by_name[chain[0]];
    assert!(root.parent_span_id.is_empty());
    for pair in chain.windows(2) {
        assert_eq!(
            by_name[pair[1]].parent_span_id, by_name[pair[0]].span_id,
            "{} is not a child of {}",
            pair[1], pair[0]
        );
    }
    for leaf in [
        "tools/call web_search",
        "execute_tool web_search",
        "chat gpt-4o-mini",
    ] {
        assert_eq!(
            by_name[leaf].parent_span_id,
            by_name["fiber research"].span_id
        );
    }
    assert!(by_name.values().all(|s| s.trace_id == root.trace_id));
    // Every span's parent is exported too (one trace, no dangling parents).
    let ids: BTreeSet<&Vec<u8>> = by_name.values().map(|s| &s.span_id).collect();
    for s in by_name.values() {
        assert!(
            s.parent_span_id.is_empty() || ids.contains(&s.parent_span_id),
            "{}",
            s.name
        );
    }

    // Semantic conventions.
    let model = by_name["chat gpt-4o-mini"];
    assert_eq!(model.kind, SpanKind::Client as i32);
    assert_eq!(s(&model.attributes, "gen_ai.operation.name"), "chat");
    assert_eq!(s(&model.attributes, "gen_ai.request.model"), "gpt-4o-mini");
    assert_eq!(s(&model.attributes, "gen_ai.provider.name"), "openai");
    assert_eq!(i(&model.attributes, "gen_ai.usage.input_tokens"), 812);
    assert_eq!(i(&model.attributes, "gen_ai.usage.output_tokens"), 164);
    assert_eq!(
        model.end_time_unix_nano - model.start_time_unix_nano,
        410_000_000
    );
    let tool = by_name["execute_tool web_search"];
    assert_eq!(s(&tool.attributes, "gen_ai.tool.name"), "web_search");
    assert_eq!(s(&tool.attributes, "gen_ai.tool.call.id"), "call-1");
    assert!(attr(&tool.attributes, "gen_ai.tool.call.arguments").is_none());
    let rpc = by_name["startResearch"];
    assert_eq!(rpc.kind, SpanKind::Server as i32);
    assert_eq!(s(&rpc.attributes, "rpc.method"), "startResearch");
    assert_eq!(s(&root.attributes, "gen_ai.operation.name"), "invoke_agent");
    let failed = by_name["issueRefund"];
    assert_eq!(s(&failed.attributes, "error.type"), "CardDeclined");
    assert_eq!(failed.status.as_ref().unwrap().code, 2);
    for sp in by_name.values() {
        assert_eq!(s(&sp.attributes, "gen_ai.conversation.id"), "user-42");
        assert_eq!(s(&sp.attributes, "session.id"), "user-42");
        assert!(i(&sp.attributes, "sightline.seq") >= 1);
        assert!(!s(&sp.attributes, "sightline.event.id").is_empty());
    }

    // Point events are log records with EventName, severity and error.type on failures.
    let log = |name: &str| {
        grpc.logs
            .iter()
            .find(|l| l.event_name == name && agent_of(&l.attributes) == "ResearchAgent")
            .unwrap_or_else(|| panic!("no {name} log record"))
    };
    assert_eq!(log("state:update").severity_number, 9);
    assert_eq!(log("schedule:retry").severity_number, 13);
    let schedule_error = log("schedule:error");
    assert_eq!(schedule_error.severity_number, 17);
    assert_eq!(s(&schedule_error.attributes, "error.type"), "Timeout");
    assert_eq!(schedule_error.trace_id, root.trace_id);
    for name in [
        "fiber:recovery:detected",
        "mcp:client:connect",
        "approval:requested",
        "approval:denied",
    ] {
        log(name);
    }

    // Every event family arrives, as a span or a log record.
    let mut families = BTreeSet::new();
    for a in grpc
        .spans
        .iter()
        .map(|s| &s.attributes)
        .chain(grpc.logs.iter().map(|l| &l.attributes))
    {
        if agent_of(a) != "EveryKind" {
            continue;
        }
        let name = match attr(a, "sightline.event.name") {
            Some(Any::StringValue(n)) => n.clone(),
            _ => String::new(),
        };
        if let Some(k) = Kind::from_name(&name) {
            families.insert(k.family());
        }
    }
    for l in grpc
        .logs
        .iter()
        .filter(|l| agent_of(&l.attributes) == "EveryKind")
    {
        families.insert(Kind::from_name(&l.event_name).unwrap().family());
    }
    for f in Family::ALL {
        assert!(families.contains(f), "family {} did not arrive", f.name());
    }
}
