//! Events as OTLP spans and log records, with OpenTelemetry's semantic conventions. The
//! table in the crate docs is the contract; [`Mapper`] is its implementation.

use std::borrow::Cow;

use opentelemetry_proto::tonic::common::v1::{
    any_value, AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList,
};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{span::SpanKind, status::StatusCode, Span, Status};
use serde_json::Value;
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
pub fn span_name_kind(e: &Event, fields: &Fields<'_>) -> (String, SpanKind) {
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

/// A payload's fields, sorted by name (the order of the JSON form): borrowed from a redacted
/// payload's map, or collected from a typed payload's struct without building a map.
#[derive(Debug, Clone, Default)]
pub struct Fields<'a>(Vec<(&'a str, Cow<'a, Value>)>);

impl<'a> Fields<'a> {
    /// The fields of `p`.
    pub fn of(p: &'a Payload) -> Self {
        if let Payload::Raw(raw) = p {
            return Fields(
                raw.fields
                    .iter()
                    .map(|(k, v)| (k.as_str(), Cow::Borrowed(v)))
                    .collect(),
            );
        }
        let mut out = Vec::with_capacity(8);
        if p.serialize_content(collect::Collect(&mut out)).is_err() {
            // Not a struct of fields (never for the event model's kinds): the JSON form.
            out.clear();
            if let Value::Object(m) = p.to_json() {
                out.extend(m.into_iter().map(|(k, v)| (Cow::Owned(k), v)));
            }
        }
        let mut fields: Vec<(&'a str, Cow<'a, Value>)> = Vec::with_capacity(out.len());
        for (k, v) in out {
            // Struct field names are 'static; a fallback's keys are leaked into nothing: they
            // are owned, so re-borrow them from a static table when known, else skip.
            let key: &'a str = match k {
                Cow::Borrowed(k) => k,
                Cow::Owned(k) => match p.kind().fields().iter().find(|f| f.name == k) {
                    Some(f) => f.name,
                    None => continue,
                },
            };
            fields.push((key, Cow::Owned(v)));
        }
        fields.sort_by(|a, b| a.0.cmp(b.0));
        Fields(fields)
    }

    /// The value of field `k`.
    pub fn get(&self, k: &str) -> Option<&Value> {
        self.0
            .iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| v.as_ref())
    }

    /// The fields in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> + '_ {
        self.0.iter().map(|(k, v)| (*k, v.as_ref()))
    }

    fn retain(&mut self, mut keep: impl FnMut(&str) -> bool) {
        self.0.retain(|(k, _)| keep(k));
    }
}

/// A serializer that collects a struct's fields as (name, JSON value) pairs.
mod collect {
    use std::borrow::Cow;

    use serde::ser::{Error as _, Impossible, Serialize, SerializeStruct, Serializer};
    use serde_json::{Error, Value};

    pub struct Collect<'v>(pub &'v mut Vec<(Cow<'static, str>, Value)>);

    impl SerializeStruct for Collect<'_> {
        type Ok = ();
        type Error = Error;
        fn serialize_field<T: ?Sized + Serialize>(
            &mut self,
            key: &'static str,
            value: &T,
        ) -> Result<(), Error> {
            self.0
                .push((Cow::Borrowed(key), serde_json::to_value(value)?));
            Ok(())
        }
        fn end(self) -> Result<(), Error> {
            Ok(())
        }
    }

    macro_rules! not_a_struct {
        ($($name:ident($($arg:ty),*)),* $(,)?) => {
            $(fn $name(self, $(_: $arg),*) -> Result<(), Error> {
                Err(Error::custom("not a struct"))
            })*
        };
    }

    impl<'v> Serializer for Collect<'v> {
        type Ok = ();
        type Error = Error;
        type SerializeSeq = Impossible<(), Error>;
        type SerializeTuple = Impossible<(), Error>;
        type SerializeTupleStruct = Impossible<(), Error>;
        type SerializeTupleVariant = Impossible<(), Error>;
        type SerializeMap = Impossible<(), Error>;
        type SerializeStruct = Collect<'v>;
        type SerializeStructVariant = Impossible<(), Error>;

        fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self, Error> {
            Ok(self)
        }

        not_a_struct!(
            serialize_bool(bool),
            serialize_i8(i8),
            serialize_i16(i16),
            serialize_i32(i32),
            serialize_i64(i64),
            serialize_u8(u8),
            serialize_u16(u16),
            serialize_u32(u32),
            serialize_u64(u64),
            serialize_f32(f32),
            serialize_f64(f64),
            serialize_char(char),
            serialize_str(&str),
            serialize_bytes(&[u8]),
            serialize_none(),
            serialize_unit(),
            serialize_unit_struct(&'static str),
            serialize_unit_variant(&'static str, u32, &'static str),
        );

        fn serialize_some<T: ?Sized + Serialize>(self, _: &T) -> Result<(), Error> {
            Err(Error::custom("not a struct"))
        }
        fn serialize_newtype_struct<T: ?Sized + Serialize>(
            self,
            _: &'static str,
            _: &T,
        ) -> Result<(), Error> {
            Err(Error::custom("not a struct"))
        }
        fn serialize_newtype_variant<T: ?Sized + Serialize>(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: &T,
        ) -> Result<(), Error> {
            Err(Error::custom("not a struct"))
        }
        fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, Error> {
            Err(Error::custom("not a struct"))
        }
        fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, Error> {
            Err(Error::custom("not a struct"))
        }
        fn serialize_tuple_struct(
            self,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeTupleStruct, Error> {
            Err(Error::custom("not a struct"))
        }
        fn serialize_tuple_variant(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeTupleVariant, Error> {
            Err(Error::custom("not a struct"))
        }
        fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, Error> {
            Err(Error::custom("not a struct"))
        }
        fn serialize_struct_variant(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeStructVariant, Error> {
            Err(Error::custom("not a struct"))
        }
    }
}

/// An attribute (or body) value, borrowed: what the mapping hands to an [`Out`].
#[derive(Debug, Clone, Copy)]
pub enum Val<'a> {
    /// A string.
    Str(&'a str),
    /// An integer.
    Int(i64),
    /// A JSON value (arrays and objects become OTLP arrays and key-value lists).
    Json(&'a Value),
    /// An array of strings.
    Strs(&'a [&'a str]),
}

/// Where the mapping writes attributes: OTLP structs ([`Mapper::log`], [`Mapper::span`], the
/// reference) or protobuf bytes straight away ([`Mapper::encode_log`],
/// [`Mapper::encode_span`], what the exporter sends).
pub trait Out {
    /// One attribute.
    fn attr(&mut self, key: &str, value: Val<'_>);
}

impl Out for Vec<KeyValue> {
    fn attr(&mut self, key: &str, value: Val<'_>) {
        self.push(KeyValue {
            key: key.to_owned(),
            value: Some(val_to_any(value)),
            ..Default::default()
        });
    }
}

fn val_to_any(v: Val<'_>) -> AnyValue {
    match v {
        Val::Str(s) => AnyValue {
            value: Some(text(s)),
        },
        Val::Int(i) => AnyValue {
            value: Some(any_value::Value::IntValue(i)),
        },
        Val::Json(j) => any_value(j),
        Val::Strs(items) => AnyValue {
            value: Some(any_value::Value::ArrayValue(ArrayValue {
                values: items
                    .iter()
                    .map(|s| AnyValue {
                        value: Some(text(*s)),
                    })
                    .collect(),
            })),
        },
    }
}

fn clamp(i: u64) -> i64 {
    i.min(i64::MAX as u64) as i64
}

/// What the attribute routine found out.
struct Mapped {
    error_type: Option<String>,
    /// Payload fields the semantic conventions consumed (not repeated in a log's body).
    used: &'static [&'static str],
}

impl Mapper {
    /// The fields exported for this event: all of them, less the sensitive ones unless content
    /// capture is on.
    fn exported_fields<'a>(&self, e: &'a Event) -> Fields<'a> {
        let mut fields = Fields::of(&e.payload);
        if !self.capture_content {
            let mut sensitive = e.kind().fields().iter().filter(|f| f.sensitive).peekable();
            if sensitive.peek().is_some() {
                let sensitive: Vec<&str> = sensitive.map(|f| f.name).collect();
                fields.retain(|k| !sensitive.contains(&k));
            }
        }
        fields
    }

    /// `error.type` for a failure: the payload's bounded `error_type`, else the outcome.
    fn error_type(e: &Event, fields: &Fields<'_>) -> Option<String> {
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

    /// Every attribute of the event's span (`span`) or log record, in order: the agent and
    /// the event, the semantic conventions, `error.type`, then (spans) the payload's other
    /// fields as `sightline.<family>.<field>` or (logs) the duration.
    fn attributes(&self, e: &Event, fields: &Fields<'_>, span: bool, out: &mut impl Out) -> Mapped {
        let mut id_buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
        let id = uuid::Uuid::from_u128(e.id.0)
            .hyphenated()
            .encode_lower(&mut id_buf);
        out.attr("gen_ai.agent.name", Val::Str(e.agent.class.as_str()));
        out.attr("gen_ai.conversation.id", Val::Str(e.agent.name.as_str()));
        out.attr("session.id", Val::Str(e.agent.name.as_str()));
        out.attr("sightline.event.id", Val::Str(id));
        out.attr("sightline.seq", Val::Int(clamp(e.seq)));
        if let Some(o) = e.outcome {
            out.attr("sightline.outcome", Val::Str(o.name()));
        }
        if span {
            out.attr("sightline.event.name", Val::Str(e.kind().name()));
        }
        let used = Self::semconv(e, fields, out);
        let error_type = Self::error_type(e, fields);
        if let Some(t) = &error_type {
            out.attr("error.type", Val::Str(t));
        }
        if span {
            let family = e.kind().family().name();
            let mut key = String::with_capacity(48);
            for (k, v) in fields.iter() {
                if used.contains(&k) || v.is_null() {
                    continue;
                }
                key.clear();
                key.push_str("sightline.");
                key.push_str(family);
                key.push('.');
                key.push_str(k);
                match v {
                    Value::Object(_) | Value::Array(_) => {
                        out.attr(&key, Val::Str(&v.to_string()));
                    }
                    v => out.attr(&key, Val::Json(v)),
                }
            }
        } else if let Some(d) = e.duration_ns {
            out.attr("sightline.duration_ns", Val::Int(clamp(d)));
        }
        Mapped { error_type, used }
    }

    /// Semantic-convention attributes from the payload; returns the fields it consumed.
    fn semconv(e: &Event, fields: &Fields<'_>, out: &mut impl Out) -> &'static [&'static str] {
        let s = |k: &str| fields.get(k).and_then(Value::as_str);
        let n = |k: &str| fields.get(k).and_then(Value::as_u64);
        match e.kind() {
            Kind::ModelCall => {
                out.attr("gen_ai.operation.name", Val::Str("chat"));
                if let Some(m) = s("model") {
                    out.attr("gen_ai.request.model", Val::Str(m));
                }
                if let Some(p) = s("provider") {
                    out.attr("gen_ai.provider.name", Val::Str(p));
                }
                if let Some(t) = n("input_tokens") {
                    out.attr("gen_ai.usage.input_tokens", Val::Int(clamp(t)));
                }
                if let Some(t) = n("output_tokens") {
                    out.attr("gen_ai.usage.output_tokens", Val::Int(clamp(t)));
                }
                if let Some(r) = s("finish_reason") {
                    out.attr("gen_ai.response.finish_reasons", Val::Strs(&[r]));
                }
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
                    out.attr("gen_ai.operation.name", Val::Str("execute_tool"));
                    let kind = match s("source") {
                        None | Some("local") => "function",
                        Some(_) => "extension",
                    };
                    out.attr("gen_ai.tool.type", Val::Str(kind));
                }
                if let Some(t) = s("tool_name") {
                    out.attr("gen_ai.tool.name", Val::Str(t));
                }
                if let Some(t) = s("tool_call_id") {
                    out.attr("gen_ai.tool.call.id", Val::Str(t));
                }
                if let Some(a) = fields.get("arguments") {
                    out.attr("gen_ai.tool.call.arguments", Val::Str(&a.to_string()));
                }
                &["tool_name", "tool_call_id", "arguments"]
            }
            Kind::ChatTurnFinish => {
                out.attr("gen_ai.operation.name", Val::Str("invoke_agent"));
                &[]
            }
            Kind::Rpc | Kind::RpcError => {
                out.attr("rpc.system", Val::Str("cloudflare_agents"));
                out.attr("rpc.service", Val::Str(e.agent.class.as_str()));
                if let Some(m) = s("method") {
                    out.attr("rpc.method", Val::Str(m));
                }
                &["method"]
            }
            Kind::McpRequest => {
                if let Some(m) = s("method") {
                    out.attr("mcp.method.name", Val::Str(m));
                }
                if let Some(t) = s("tool_name") {
                    out.attr("gen_ai.tool.name", Val::Str(t));
                }
                &["method", "tool_name"]
            }
            _ => &[],
        }
    }

    /// The event as a span (for operations with a duration), as OTLP structs.
    pub fn span(&self, e: &Event) -> Span {
        let fields = self.exported_fields(e);
        let (name, kind) = span_name_kind(e, &fields);
        let (trace_id, span_id, parent) = span_ids(e);
        let mut attributes = Vec::with_capacity(16);
        let m = self.attributes(e, &fields, true, &mut attributes);
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
            status: Some(match m.error_type {
                Some(t) => Status {
                    code: StatusCode::Error as i32,
                    message: t,
                },
                None => Status::default(),
            }),
            ..Default::default()
        }
    }

    /// The event as a log record (`EventName` = the kind), as OTLP structs.
    pub fn log(&self, e: &Event) -> LogRecord {
        let fields = self.exported_fields(e);
        let mut attributes = Vec::with_capacity(12);
        let m = self.attributes(e, &fields, false, &mut attributes);
        let body: Vec<KeyValue> = body_fields(&fields, m.used)
            .map(|(k, v)| KeyValue {
                key: k.to_owned(),
                value: Some(any_value(v)),
                ..Default::default()
            })
            .collect();
        LogRecord {
            time_unix_nano: e.ts_ns,
            observed_time_unix_nano: e.ts_ns,
            severity_number: e.severity.otel_number(),
            severity_text: e.severity.otel_text().to_owned(),
            event_name: e.kind().name().to_owned(),
            body: (!body.is_empty()).then_some(AnyValue {
                value: Some(any_value::Value::KvlistValue(KeyValueList { values: body })),
            }),
            attributes,
            trace_id: e
                .trace_id
                .map(|t| t.to_bytes().to_vec())
                .unwrap_or_default(),
            span_id: e.span_id.map(|s| s.to_bytes().to_vec()).unwrap_or_default(),
            ..Default::default()
        }
    }

    /// The event as an encoded `Span`, appended to `buf`: the same record as
    /// [`Mapper::span`], without building it.
    pub fn encode_span(&self, e: &Event, buf: &mut Vec<u8>) {
        use pb::*;
        let fields = self.exported_fields(e);
        let (name, kind) = span_name_kind(e, &fields);
        let (trace_id, span_id, parent) = span_ids(e);
        put_bytes(1, &trace_id, buf);
        put_bytes(2, &span_id, buf);
        if let Some(p) = parent {
            put_bytes(4, &p, buf);
        }
        put_bytes(5, name.as_bytes(), buf);
        put_varint(6, kind as i32 as u64, buf);
        put_fixed64(7, e.ts_ns.saturating_sub(e.duration_ns.unwrap_or(0)), buf);
        put_fixed64(8, e.ts_ns, buf);
        let m = self.attributes(e, &fields, true, &mut Wire { tag: 9, buf });
        // Status: always present, as Mapper::span writes it.
        match m.error_type {
            Some(t) => {
                let len = field_len(2, t.len()) + varint_field_len(3, StatusCode::Error as u64);
                put_len(15, len, buf);
                put_bytes(2, t.as_bytes(), buf);
                put_varint(3, StatusCode::Error as u64, buf);
            }
            None => put_len(15, 0, buf),
        }
    }

    /// The event as an encoded `LogRecord`, appended to `buf`: the same record as
    /// [`Mapper::log`], without building it.
    pub fn encode_log(&self, e: &Event, buf: &mut Vec<u8>) {
        use pb::*;
        let fields = self.exported_fields(e);
        put_fixed64(1, e.ts_ns, buf);
        let severity = e.severity.otel_number();
        if severity != 0 {
            put_varint(2, severity as u64, buf);
        }
        put_bytes(3, e.severity.otel_text().as_bytes(), buf);
        let m = self.attributes(e, &fields, false, &mut Wire { tag: 6, buf });
        let kvl: usize = body_fields(&fields, m.used)
            .map(|(k, v)| field_len(1, kv_len(k, json_len(v))))
            .sum();
        if kvl > 0 {
            put_len(5, field_len(6, kvl), buf);
            put_len(6, kvl, buf);
            for (k, v) in body_fields(&fields, m.used) {
                put_kv(1, k, Val::Json(v), buf);
            }
        }
        if let Some(t) = e.trace_id {
            put_bytes(9, &t.to_bytes(), buf);
        }
        if let Some(s) = e.span_id {
            put_bytes(10, &s.to_bytes(), buf);
        }
        put_fixed64(11, e.ts_ns, buf);
        put_bytes(12, e.kind().name().as_bytes(), buf);
    }
}

/// The payload fields a log record's body holds: those the conventions did not consume.
fn body_fields<'a>(
    fields: &'a Fields<'_>,
    used: &'static [&'static str],
) -> impl Iterator<Item = (&'a str, &'a Value)> + 'a {
    fields.iter().filter(move |(k, _)| !used.contains(k))
}

/// Attributes written as protobuf `KeyValue`s under `tag`.
struct Wire<'b> {
    tag: u32,
    buf: &'b mut Vec<u8>,
}

impl Out for Wire<'_> {
    fn attr(&mut self, key: &str, value: Val<'_>) {
        pb::put_kv(self.tag, key, value, self.buf);
    }
}

/// Protobuf writing with prost's encoding primitives, for the few OTLP messages the exporter
/// writes directly. Lengths are computed before each nested message, as prost does.
mod pb {
    use prost::encoding::{encoded_len_varint, key_len, WireType};
    use serde_json::Value;

    use super::Val;

    /// prost's varint encoding, with the one-byte case (most tags and lengths here) inline.
    #[inline]
    fn encode_varint(v: u64, buf: &mut Vec<u8>) {
        if v < 0x80 {
            buf.push(v as u8);
        } else {
            prost::encoding::encode_varint(v, buf);
        }
    }

    #[inline]
    fn encode_key(tag: u32, wire_type: WireType, buf: &mut Vec<u8>) {
        encode_varint(u64::from(tag << 3 | wire_type as u32), buf);
    }

    pub fn field_len(tag: u32, len: usize) -> usize {
        key_len(tag) + encoded_len_varint(len as u64) + len
    }

    pub fn varint_field_len(tag: u32, v: u64) -> usize {
        key_len(tag) + encoded_len_varint(v)
    }

    pub fn put_len(tag: u32, len: usize, buf: &mut Vec<u8>) {
        encode_key(tag, WireType::LengthDelimited, buf);
        encode_varint(len as u64, buf);
    }

    pub fn put_bytes(tag: u32, b: &[u8], buf: &mut Vec<u8>) {
        put_len(tag, b.len(), buf);
        buf.extend_from_slice(b);
    }

    pub fn put_varint(tag: u32, v: u64, buf: &mut Vec<u8>) {
        encode_key(tag, WireType::Varint, buf);
        encode_varint(v, buf);
    }

    pub fn put_fixed64(tag: u32, v: u64, buf: &mut Vec<u8>) {
        encode_key(tag, WireType::SixtyFourBit, buf);
        buf.extend_from_slice(&v.to_le_bytes());
    }

    /// Length of an `AnyValue` holding `v`.
    pub fn val_len(v: Val<'_>) -> usize {
        match v {
            Val::Str(s) => field_len(1, s.len()),
            Val::Int(i) => varint_field_len(3, i as u64),
            Val::Json(j) => json_len(j),
            Val::Strs(items) => field_len(
                5,
                items
                    .iter()
                    .map(|s| field_len(1, field_len(1, s.len())))
                    .sum(),
            ),
        }
    }

    /// Length of an `AnyValue` holding a JSON value.
    pub fn json_len(v: &Value) -> usize {
        match v {
            Value::Null => 0,
            Value::Bool(_) => key_len(2) + 1,
            Value::Number(n) => match n.as_i64() {
                Some(i) => varint_field_len(3, i as u64),
                None => key_len(4) + 8,
            },
            Value::String(s) => field_len(1, s.len()),
            Value::Array(items) => {
                field_len(5, items.iter().map(|i| field_len(1, json_len(i))).sum())
            }
            Value::Object(m) => field_len(
                6,
                m.iter()
                    .map(|(k, v)| field_len(1, kv_len(k, json_len(v))))
                    .sum(),
            ),
        }
    }

    /// Length of a `KeyValue` whose value's `AnyValue` is `any_len` long.
    pub fn kv_len(key: &str, any_len: usize) -> usize {
        (if key.is_empty() {
            0
        } else {
            field_len(1, key.len())
        }) + field_len(2, any_len)
    }

    /// A `KeyValue` as field `tag`.
    pub fn put_kv(tag: u32, key: &str, v: Val<'_>, buf: &mut Vec<u8>) {
        let any_len = val_len(v);
        let len = kv_len(key, any_len);
        buf.reserve(len + 8);
        put_len(tag, len, buf);
        if !key.is_empty() {
            put_bytes(1, key.as_bytes(), buf);
        }
        put_len(2, any_len, buf);
        put_val(v, buf);
    }

    fn put_val(v: Val<'_>, buf: &mut Vec<u8>) {
        match v {
            Val::Str(s) => put_bytes(1, s.as_bytes(), buf),
            Val::Int(i) => put_varint(3, i as u64, buf),
            Val::Json(j) => put_json(j, buf),
            Val::Strs(items) => {
                put_len(
                    5,
                    items
                        .iter()
                        .map(|s| field_len(1, field_len(1, s.len())))
                        .sum(),
                    buf,
                );
                for s in items {
                    put_len(1, field_len(1, s.len()), buf);
                    put_bytes(1, s.as_bytes(), buf);
                }
            }
        }
    }

    fn put_json(v: &Value, buf: &mut Vec<u8>) {
        match v {
            Value::Null => {}
            Value::Bool(b) => put_varint(2, u64::from(*b), buf),
            Value::Number(n) => match n.as_i64() {
                Some(i) => put_varint(3, i as u64, buf),
                None => {
                    encode_key(4, WireType::SixtyFourBit, buf);
                    buf.extend_from_slice(&n.as_f64().unwrap_or(0.0).to_le_bytes());
                }
            },
            Value::String(s) => put_bytes(1, s.as_bytes(), buf),
            Value::Array(items) => {
                put_len(
                    5,
                    items.iter().map(|i| field_len(1, json_len(i))).sum(),
                    buf,
                );
                for i in items {
                    put_len(1, json_len(i), buf);
                    put_json(i, buf);
                }
            }
            Value::Object(m) => {
                put_len(
                    6,
                    m.iter()
                        .map(|(k, v)| field_len(1, kv_len(k, json_len(v))))
                        .sum(),
                    buf,
                );
                for (k, v) in m {
                    put_kv(1, k, Val::Json(v), buf);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use prost::Message;
    use serde_json::Map;
    use sightline_event::{AgentRef, Payload, TraceContext};

    fn json_leaf() -> impl Strategy<Value = Value> {
        prop_oneof![
            "[a-zé ]{0,8}".prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            (-1e9f64..1e9).prop_map(Value::from),
            any::<bool>().prop_map(Value::from),
            Just(Value::Null),
        ]
    }

    fn json() -> impl Strategy<Value = Value> {
        json_leaf().prop_recursive(4, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                prop::collection::btree_map("[a-z]{0,6}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn event() -> impl Strategy<Value = Event> {
        (
            0..sightline_event::KIND_COUNT,
            prop::collection::btree_map("[a-z_]{1,10}", json(), 0..5),
            any::<bool>(),
            prop::option::of(0u64..u64::MAX),
            prop::option::of(0usize..5),
            any::<u64>(),
        )
            .prop_map(|(k, extra, traced, duration, outcome, seq)| {
                let kind = Kind::ALL[k];
                // A raw payload (as after redaction) with arbitrary fields.
                let mut fields = match Payload::default_for(kind).to_json() {
                    Value::Object(m) => m,
                    _ => Map::new(),
                };
                fields.extend(extra);
                let mut e = Event::new(
                    AgentRef::new("Class", "name-1"),
                    seq,
                    Payload::Raw(sightline_event::RawPayload { kind, fields }),
                );
                if traced {
                    e.set_trace(TraceContext::new_root().child());
                }
                e.duration_ns = duration;
                if let Some(o) = outcome {
                    e.set_outcome(
                        [
                            Outcome::Ok,
                            Outcome::Error,
                            Outcome::Timeout,
                            Outcome::Cancelled,
                            Outcome::Rejected,
                        ][o],
                    );
                }
                e
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        /// The bytes the exporter writes decode, with OpenTelemetry's generated types, to
        /// exactly the records the struct mapping builds.
        #[test]
        fn direct_encoding_decodes_to_the_mapped_records(e in event(), capture in any::<bool>()) {
            let m = Mapper { traces_enabled: true, capture_content: capture };
            let mut buf = Vec::new();
            m.encode_log(&e, &mut buf);
            prop_assert_eq!(LogRecord::decode(buf.as_slice()).unwrap(), m.log(&e));
            buf.clear();
            m.encode_span(&e, &mut buf);
            prop_assert_eq!(Span::decode(buf.as_slice()).unwrap(), m.span(&e));
        }
    }
}
