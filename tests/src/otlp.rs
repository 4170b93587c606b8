//! A fixed, fully deterministic event sequence for the OTLP tests: one user request that
//! crosses an agent turn, an RPC, a schedule, a fiber, an MCP tool call and a model call (one
//! trace), plus one event of every kind, with secrets planted in the sensitive fields.

use std::collections::BTreeMap;

use sightline_bus::Bus;
use sightline_event::{
    AgentRef, Event, EventId, Kind, Outcome, Payload, Shape, SpanId, TraceContext, TraceId,
};
use sightline_otlp::{OtlpConfig, OtlpSink, OtlpStatsHandle};
use sightline_sink::{OverflowPolicy, Pipeline, RunnerConfig};

/// A bus with one pipeline holding one OTLP sink (under the `otlp` policy), and the
/// exporter's counters.
pub struct OtlpPipeline {
    /// Where the test emits.
    pub bus: Bus,
    /// The pipeline; shut it down to drain.
    pub pipeline: Pipeline,
    /// The exporter's counters.
    pub stats: OtlpStatsHandle,
}

/// The runner settings of the tests' OTLP sink: the `otlp` policy, lossless (`block`).
pub fn lossless_runner() -> RunnerConfig {
    RunnerConfig {
        policy: "otlp".into(),
        overflow: OverflowPolicy::Block,
        ..Default::default()
    }
}

/// Starts an OTLP sink for `config`, reading `OTEL_*` variables from `env` only, on a new
/// pipeline with `runner` settings.
pub fn otlp_pipeline(
    config: &OtlpConfig,
    env: &BTreeMap<String, String>,
    runner: RunnerConfig,
) -> OtlpPipeline {
    let bus = Bus::new();
    let mut pipeline = Pipeline::new(bus.clone()).expect("pipeline");
    let sink = OtlpSink::with_env(config, env).expect("otlp sink");
    let stats = sink.stats_handle();
    pipeline
        .add("otlp", Box::new(sink), runner)
        .expect("add the otlp sink");
    OtlpPipeline {
        bus,
        pipeline,
        stats,
    }
}

/// Secrets planted in sensitive fields; none may reach a collector.
pub const SECRETS: &[&str] = &[
    "sk-proj-Zx8Qw2Er4Ty6Ui8Op0As2Df4Gh",
    "jane.doe@example.com",
    "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
    "4111 1111 1111 1111",
];

/// The first event's timestamp (2026-11-24T00:00:00Z).
pub const T0: u64 = 1_795_478_400_000_000_000;

fn span(n: u64) -> SpanId {
    SpanId::new(0x5157_0000_0000_0000 | n).unwrap_or_else(SpanId::random)
}

/// The trace of the user request.
pub fn trace_id() -> TraceId {
    TraceId::new(0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736).unwrap_or_else(TraceId::random)
}

fn ctx(own: u64, parent: Option<u64>) -> TraceContext {
    TraceContext {
        trace_id: trace_id(),
        span_id: span(own),
        parent_span_id: parent.map(span),
    }
}

struct Builder {
    agent: AgentRef,
    /// Event ids are `id_base | seq`.
    id_base: u128,
    seq: u64,
    out: Vec<Event>,
}

impl Builder {
    fn push(
        &mut self,
        kind: Kind,
        fields: serde_json::Value,
        trace: Option<TraceContext>,
        op: Option<(Outcome, u64)>,
    ) {
        let map = match fields {
            serde_json::Value::Object(m) => m,
            _ => serde_json::Map::new(),
        };
        let payload = Payload::from_partial_json(kind, &map)
            .unwrap_or_else(|e| panic!("scenario payload of {}: {e}", kind.name()));
        self.seq += 1;
        let mut e = Event::new(self.agent.clone(), self.seq, payload);
        e.id = EventId(self.id_base | u128::from(self.seq));
        e.ts_ns = T0 + self.seq * 1_000_000;
        if let Some(t) = trace {
            e.set_trace(t);
        }
        if let Some((outcome, d)) = op {
            e.set_outcome(outcome);
            e.duration_ns = Some(d);
        }
        self.out.push(e);
    }
}

/// The request's events, in emit order: every span's parent is in the same trace.
pub fn request_trace() -> Vec<Event> {
    use serde_json::json;
    let mut b = Builder {
        agent: AgentRef::new("ResearchAgent", "user-42"),
        id_base: 0x0190_0000_0000_7000_8000_0000_0000_0000,
        seq: 0,
        out: Vec::new(),
    };
    let ok = |ms: u64| Some((Outcome::Ok, ms * 1_000_000));
    // span 1: the agent turn (root); 2: the RPC it made; 3: the schedule; 4: the fiber;
    // 5: the MCP request; 6: the tool call; 7: the model call.
    b.push(
        Kind::ChatTurnStart,
        json!({"request_id": "req-1"}),
        Some(ctx(1, None)),
        None,
    );
    b.push(
        Kind::StateUpdate,
        json!({"version": 2, "changed_paths": ["/topic"], "size_bytes": 120,
               "diff": [{"op": "replace", "path": "/topic", "value": SECRETS[1]}]}),
        Some(ctx(2, Some(1))),
        None,
    );
    b.push(
        Kind::ScheduleCreate,
        json!({"callback": "runResearch", "id": "sch-1", "schedule_type": "delay", "fire_at_ms": 5}),
        Some(ctx(2, Some(1))),
        None,
    );
    b.push(
        Kind::Rpc,
        json!({"method": "startResearch", "caller": "client:c-1"}),
        Some(ctx(2, Some(1))),
        ok(4),
    );
    b.push(
        Kind::ScheduleRetry,
        json!({"callback": "runResearch", "id": "sch-1", "attempt": 1, "max_attempts": 3,
               "backoff_ms": 200, "error": format!("upstream said {}", SECRETS[0])}),
        Some(ctx(3, Some(2))),
        None,
    );
    b.push(
        Kind::FiberRunStarted,
        json!({"fiber_id": "f-1", "fiber_name": "research"}),
        Some(ctx(4, Some(3))),
        None,
    );
    b.push(
        Kind::McpRequest,
        json!({"server_id": "srv-1", "server_name": "search", "method": "tools/call", "tool_name": "web_search"}),
        Some(ctx(5, Some(4))),
        ok(30),
    );
    b.push(
        Kind::ToolCall,
        json!({"tool_call_id": "call-1", "tool_name": "web_search", "source": "search",
               "arguments": {"query": "refund policy", "api_key": SECRETS[2]}}),
        Some(ctx(6, Some(4))),
        ok(32),
    );
    b.push(
        Kind::ModelCall,
        json!({"model": "gpt-4o-mini", "provider": "openai", "input_tokens": 812,
               "output_tokens": 164, "finish_reason": "stop"}),
        Some(ctx(7, Some(4))),
        ok(410),
    );
    b.push(
        Kind::FiberRunCompleted,
        json!({"fiber_id": "f-1", "fiber_name": "research", "steps": 3}),
        Some(ctx(4, Some(3))),
        ok(480),
    );
    b.push(
        Kind::ScheduleComplete,
        json!({"callback": "runResearch", "id": "sch-1", "attempts": 2, "lateness_ms": 12}),
        Some(ctx(3, Some(2))),
        ok(700),
    );
    b.push(
        Kind::ApprovalRequested,
        json!({"approval_id": "ap-1", "action": "refund", "prompt": format!("refund card {}", SECRETS[3])}),
        Some(ctx(8, Some(1))),
        None,
    );
    b.push(
        Kind::ApprovalDenied,
        json!({"approval_id": "ap-1", "action": "refund", "decided_by": SECRETS[1], "reason": "policy"}),
        Some(ctx(8, Some(1))),
        ok(9),
    );
    b.push(
        Kind::RpcError,
        json!({"method": "issueRefund", "error": format!("card {} declined", SECRETS[3]), "error_type": "CardDeclined"}),
        Some(ctx(9, Some(1))),
        Some((Outcome::Error, 2_000_000)),
    );
    b.push(
        Kind::McpClientConnect,
        json!({"server_id": "srv-1", "server_name": "search", "url": format!("https://mcp.example/?token={}", SECRETS[0]),
               "transport": "streamable_http", "state": "connected"}),
        Some(ctx(10, Some(1))),
        ok(15),
    );
    b.push(
        Kind::FiberRecoveryDetected,
        json!({"fiber_id": "f-0", "fiber_name": "research", "age_ms": 60000}),
        Some(ctx(11, Some(1))),
        None,
    );
    b.push(
        Kind::ScheduleError,
        json!({"callback": "sendDigest", "id": "sch-2", "attempts": 3, "error": "smtp down", "error_type": "Timeout"}),
        Some(ctx(12, Some(1))),
        Some((Outcome::Error, 50_000_000)),
    );
    b.push(
        Kind::ChatTurnFinish,
        json!({"request_id": "req-1", "status": "completed"}),
        Some(ctx(1, None)),
        ok(1_200),
    );
    b.out
}

/// One event of every kind, for a separate agent; operations get an outcome and a duration.
pub fn every_kind() -> Vec<Event> {
    let mut b = Builder {
        agent: AgentRef::new("EveryKind", "all-1"),
        id_base: 0x0190_0000_0000_7000_8000_0001_0000_0000,
        seq: 0,
        out: Vec::new(),
    };
    for kind in Kind::ALL.iter().copied() {
        let op = (kind.shape() == Shape::Span).then_some((Outcome::Ok, 1_000_000));
        let t = TraceContext {
            trace_id: trace_id(),
            span_id: span(100 + b.seq),
            parent_span_id: None,
        };
        b.push(kind, serde_json::json!({}), Some(t), op);
    }
    b.out
}
