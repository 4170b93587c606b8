//! Events as OTLP spans and log records, with OpenTelemetry's semantic conventions. The
//! table in the crate docs is the contract; [`Mapper`] is its implementation.

use std::borrow::Cow;

use opentelemetry_proto::tonic::common::v1::{
    any_value, AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList,
};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{span::SpanKind, status::StatusCode, Span, Status};
use serde_json::{Map, Value};
use sightline_event::{Event, Kind, Outcome, Payload, Shape};

/// The instrumentation scope every record is exported under.
pub const SCOPE_NAME: &str = "sightline";

/// How one event is exported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signals {
    /// As a span.
    pub span: bool,
    /// As a log record.
    pub log: bool,
}

/// Span-shaped kinds that are also exported as log records, whatever their outcome: the
/// moments an operator looks for in logs (a schedule given up, a recovery, an MCP connection,
/// a human decision).
pub const LOGGED_SPAN_KINDS: &[Kind] = &[
    Kind::ScheduleError,
    Kind::FiberRecoveryHandled,
    Kind::FiberRecoveryFailed,
    Kind::McpClientConnect,
    Kind::ApprovalGranted,
    Kind::ApprovalDenied,
    Kind::ApprovalExpired,
];

/// Decides how an event is exported: operations with a duration become spans (when traces
/// are enabled); point events, failures and [`LOGGED_SPAN_KINDS`] become log records.
pub fn signals(e: &Event, traces_enabled: bool) -> Signals {
    let kind = e.kind();
    let span = traces_enabled && kind.shape() == Shape::Span && e.duration_ns.is_some();
    let log =
        !span || LOGGED_SPAN_KINDS.contains(&kind) || e.outcome.is_some_and(|o| o.is_failure());
    Signals { span, log }
}

/// The span's name and kind for an operation.
pub fn span_name_kind(e: &Event, fields: &Map<String, Value>) -> (String, SpanKind) {
    let s = |k: &str| fields.get(k).and_then(Value::as_str).unwrap_or("");
    let with = |op: &str, target: &str| {
        if target.is_empty() {
            op.to_owned()
        } else {
            format!("{op} {target}")
        }
    };
    match e.kind() {
        Kind::ChatTurnFinish => (
            with("invoke_agent", e.agent.class.as_str()),
            SpanKind::Internal,
        ),
        Kind::ModelCall => (with("chat", s("model")), SpanKind::Client),
        Kind::ToolCall => (with("execute_tool", s("tool_name")), SpanKind::Internal),
        Kind::Rpc | Kind::RpcError => (
            if s("method").is_empty() {
                "rpc".to_owned()
            } else {
                s("method").to_owned()
            },
            SpanKind::Server,
        ),
        Kind::McpRequest => (with(s("method"), s("tool_name")), SpanKind::Client),
        Kind::McpClientConnect => (with("mcp connect", s("server_name")), SpanKind::Client),
        Kind::McpClientDiscover => (with("mcp discover", s("server_name")), SpanKind::Client),
        Kind::ScheduleComplete | Kind::ScheduleError => {
            (with("schedule", s("callback")), SpanKind::Internal)
        }
        Kind::QueueComplete | Kind::QueueError => {
            (with("queue", s("callback")), SpanKind::Consumer)
        }
        Kind::FiberRunCompleted | Kind::FiberRunFailed | Kind::FiberRunInterrupted => {
            (with("fiber", s("fiber_name")), SpanKind::Internal)
        }
        Kind::FiberRecoveryHandled | Kind::FiberRecoveryFailed => {
            (with("fiber recovery", s("fiber_name")), SpanKind::Internal)
        }
        Kind::WorkflowComplete | Kind::WorkflowError => {
            (with("workflow", s("workflow_name")), SpanKind::Internal)
        }
        Kind::ApprovalGranted | Kind::ApprovalDenied | Kind::ApprovalExpired => {
            (with("approval", s("action")), SpanKind::Internal)
        }
        Kind::AgentWake => (with("wake", e.agent.class.as_str()), SpanKind::Internal),
        k => (k.name().to_owned(), SpanKind::Internal),
    }
}

/// Converts a JSON value into an OTLP `AnyValue`.
pub fn any_value(v: &Value) -> AnyValue {
    let value = match v {
        Value::Null => None,
        Value::Bool(b) => Some(any_value::Value::BoolValue(*b)),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Some(any_value::Value::IntValue(i)),
            None => Some(any_value::Value::DoubleValue(n.as_f64().unwrap_or(0.0))),
        },
        Value::String(s) => Some(any_value::Value::StringValue(s.clone())),
        Value::Array(items) => Some(any_value::Value::ArrayValue(ArrayValue {
            values: items.iter().map(any_value).collect(),
        })),
        Value::Object(map) => Some(any_value::Value::KvlistValue(KeyValueList {
            values: map
                .iter()
                .map(|(k, v)| KeyValue {
                    key: k.clone(),
                    value: Some(any_value(v)),
                    ..Default::default()
                })
                .collect(),
        })),
    };
    AnyValue { value }
}

fn kv(key: impl Into<String>, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

fn text(s: impl Into<String>) -> any_value::Value {
    any_value::Value::StringValue(s.into())
}

fn int(i: u64) -> any_value::Value {
    any_value::Value::IntValue(i.min(i64::MAX as u64) as i64)
}

/// The OTLP resource for `(key, value)` attributes.
pub fn resource(attributes: &[(String, String)]) -> Resource {
    Resource {
        attributes: attributes
            .iter()
            .map(|(k, v)| kv(k.clone(), text(v.clone())))
            .collect(),
        ..Default::default()
    }
}

/// The instrumentation scope.
pub fn scope() -> InstrumentationScope {
    InstrumentationScope {
        name: SCOPE_NAME.to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        ..Default::default()
    }
}

/// Turns events into spans and log records.
#[derive(Debug, Clone)]
pub struct Mapper {
    /// Export spans (else everything is a log record).
    pub traces_enabled: bool,
    /// Keep the fields the event model marks sensitive when the policy let them through.
    pub capture_content: bool,
}

/// The (trace id, span id, parent span id) of an operation: its trace context, or ids derived
/// from the event id when it has none (a span needs both).
fn span_ids(e: &Event) -> ([u8; 16], [u8; 8], Option<[u8; 8]>) {
    match (e.trace_id, e.span_id) {
        (Some(t), Some(s)) => (
            t.to_bytes(),
            s.to_bytes(),
            e.parent_span_id.map(|p| p.to_bytes()),
        ),
        _ => {
            let id = e.id.0.max(1);
            let span = (id as u64).max(1);
            (id.to_be_bytes(), span.to_be_bytes(), None)
        }
    }
}

/// The payload's fields as a JSON object.
pub fn payload_fields(p: &Payload) -> Cow<'_, Map<String, Value>> {
    match p {
        Payload::Raw(raw) => Cow::Borrowed(&raw.fields),
        p => match p.to_json() {
            Value::Object(m) => Cow::Owned(m),
            _ => Cow::Owned(Map::new()),
        },
    }
}

impl Mapper {
    /// The fields exported for this event: all of them, less the sensitive ones unless content
    /// capture is on.
    fn exported_fields<'a>(&self, e: &'a Event) -> Cow<'a, Map<String, Value>> {
        let mut fields = payload_fields(&e.payload);
        if !self.capture_content {
            let specs = e.kind().fields();
            let sensitive = |k: &str| specs.iter().any(|f| f.name == k && f.sensitive);
            if fields.keys().any(|k| sensitive(k)) {
                fields.to_mut().retain(|k, _| !sensitive(k));
            }
        }
        fields
    }

    /// Attributes every record carries: the agent, the event, the outcome.
    fn common(&self, e: &Event, out: &mut Vec<KeyValue>) {
        out.push(kv("gen_ai.agent.name", text(e.agent.class.as_str())));
        out.push(kv("gen_ai.conversation.id", text(e.agent.name.as_str())));
        out.push(kv("session.id", text(e.agent.name.as_str())));
        out.push(kv("sightline.event.id", text(e.id.to_string())));
        out.push(kv("sightline.seq", int(e.seq)));
        if let Some(o) = e.outcome {
            out.push(kv("sightline.outcome", text(o.name())));
        }
    }

    /// `error.type` for a failure: the payload's bounded `error_type`, else the outcome.
    fn error_type(e: &Event, fields: &Map<String, Value>) -> Option<String> {
        let failed = e.outcome.is_some_and(Outcome::is_failure)
            || e.severity >= sightline_event::Severity::Error;
        if !failed {
            return None;
        }
        Some(
            fields
                .get("error_type")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .unwrap_or_else(|| e.outcome.unwrap_or(Outcome::Error).name().to_owned()),
        )
    }

    /// Semantic-convention attributes from the payload; returns the fields it consumed.
    fn semconv(
        e: &Event,
        fields: &Map<String, Value>,
        out: &mut Vec<KeyValue>,
    ) -> &'static [&'static str] {
        let s = |k: &str| fields.get(k).and_then(Value::as_str);
        let n = |k: &str| fields.get(k).and_then(Value::as_u64);
        let mut put = |key: &'static str, v: Option<any_value::Value>| {
            if let Some(v) = v {
                out.push(kv(key, v));
            }
        };
        match e.kind() {
            Kind::ModelCall => {
                put("gen_ai.operation.name", Some(text("chat")));
                put("gen_ai.request.model", s("model").map(text));
                put("gen_ai.provider.name", s("provider").map(text));
                put("gen_ai.usage.input_tokens", n("input_tokens").map(int));
                put("gen_ai.usage.output_tokens", n("output_tokens").map(int));
                put(
                    "gen_ai.response.finish_reasons",
                    s("finish_reason").map(|r| {
                        any_value::Value::ArrayValue(ArrayValue {
                            values: vec![AnyValue {
                                value: Some(text(r)),
                            }],
                        })
                    }),
                );
                &[
                    "model",
                    "provider",
                    "input_tokens",
                    "output_tokens",
                    "finish_reason",
                ]
            }
            Kind::ToolCall | Kind::ToolResult => {
                if e.kind() == Kind::ToolCall {
                    put("gen_ai.operation.name", Some(text("execute_tool")));
                    put(
                        "gen_ai.tool.type",
                        Some(text(match s("source") {
                            None | Some("local") => "function",
                            Some(_) => "extension",
                        })),
                    );
                }
                put("gen_ai.tool.name", s("tool_name").map(text));
                put("gen_ai.tool.call.id", s("tool_call_id").map(text));
                put(
                    "gen_ai.tool.call.arguments",
                    fields.get("arguments").map(|a| text(a.to_string())),
                );
                &["tool_name", "tool_call_id", "arguments"]
            }
            Kind::ChatTurnFinish => {
                put("gen_ai.operation.name", Some(text("invoke_agent")));
                &[]
            }
            Kind::Rpc | Kind::RpcError => {
                put("rpc.system", Some(text("cloudflare_agents")));
                put("rpc.service", Some(text(e.agent.class.as_str())));
                put("rpc.method", s("method").map(text));
                &["method"]
            }
            Kind::McpRequest => {
                put("mcp.method.name", s("method").map(text));
                put("gen_ai.tool.name", s("tool_name").map(text));
                &["method", "tool_name"]
            }
            _ => &[],
        }
    }

    /// The payload's remaining fields as `sightline.<family>.<field>` attributes.
    fn rest(e: &Event, fields: &Map<String, Value>, used: &[&str], out: &mut Vec<KeyValue>) {
        let family = e.kind().family().name();
        for (k, v) in fields {
            if used.contains(&k.as_str()) || v.is_null() {
                continue;
            }
            let value = match v {
                Value::Object(_) | Value::Array(_) => any_value(&Value::String(v.to_string())),
                v => any_value(v),
            };
            out.push(KeyValue {
                key: format!("sightline.{family}.{k}"),
                value: Some(value),
                ..Default::default()
            });
        }
    }

    /// The event as a span (for operations with a duration).
    pub fn span(&self, e: &Event) -> Span {
        let fields = self.exported_fields(e);
        let (name, kind) = span_name_kind(e, &fields);
        let (trace_id, span_id, parent) = span_ids(e);
        let mut attributes = Vec::with_capacity(16);
        self.common(e, &mut attributes);
        attributes.push(kv("sightline.event.name", text(e.kind().name())));
        let used = Self::semconv(e, &fields, &mut attributes);
        let error_type = Self::error_type(e, &fields);
        if let Some(t) = &error_type {
            attributes.push(kv("error.type", text(t.clone())));
        }
        Self::rest(e, &fields, used, &mut attributes);
        let duration = e.duration_ns.unwrap_or(0);
        Span {
            trace_id: trace_id.to_vec(),
            span_id: span_id.to_vec(),
            parent_span_id: parent.map(|p| p.to_vec()).unwrap_or_default(),
            name,
            kind: kind as i32,
            start_time_unix_nano: e.ts_ns.saturating_sub(duration),
            end_time_unix_nano: e.ts_ns,
            attributes,
            status: Some(match error_type {
                Some(t) => Status {
                    code: StatusCode::Error as i32,
                    message: t,
                },
                None => Status::default(),
            }),
            ..Default::default()
        }
    }

    /// The event as a log record (`EventName` = the kind).
    pub fn log(&self, e: &Event) -> LogRecord {
        let fields = self.exported_fields(e);
        let mut attributes = Vec::with_capacity(12);
        self.common(e, &mut attributes);
        let used = Self::semconv(e, &fields, &mut attributes);
        if let Some(t) = Self::error_type(e, &fields) {
            attributes.push(kv("error.type", text(t)));
        }
        if let Some(d) = e.duration_ns {
            attributes.push(kv("sightline.duration_ns", int(d)));
        }
        let body: Map<String, Value> = fields
            .iter()
            .filter(|(k, _)| !used.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        LogRecord {
            time_unix_nano: e.ts_ns,
            observed_time_unix_nano: e.ts_ns,
            severity_number: e.severity.otel_number(),
            severity_text: e.severity.name().to_uppercase(),
            event_name: e.kind().name().to_owned(),
            body: (!body.is_empty()).then(|| any_value(&Value::Object(body))),
            attributes,
            trace_id: e
                .trace_id
                .map(|t| t.to_bytes().to_vec())
                .unwrap_or_default(),
            span_id: e.span_id.map(|s| s.to_bytes().to_vec()).unwrap_or_default(),
            ..Default::default()
        }
    }
}
