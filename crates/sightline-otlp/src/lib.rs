//! # sightline-otlp: events to every tracing and logging backend
//!
//! OTLP is how Sightline reaches the backends a team already runs (an OpenTelemetry Collector
//! in front of Tempo, Loki, ClickHouse, Datadog, Honeycomb, Langfuse, Phoenix). This crate is
//! a [`Sink`](sightline_sink::Sink) that maps events to spans and log records with
//! OpenTelemetry's semantic conventions and exports them over OTLP/gRPC or OTLP/HTTP
//! (protobuf), from a bounded buffer that never makes an agent wait, with every event that is
//! not delivered counted by reason ([`OtlpStats`]).
//!
//! The message types and their encoding are `opentelemetry-proto`'s (prost); the transports are
//! tonic and reqwest (feature `export`, on by default; without it the crate is the mapping
//! alone, which the archive's `otlp_json` format shares). Records are encoded once, when the event arrives, and requests are
//! assembled around those bytes ([`wire`]), so the buffer's byte bound is exact and retries
//! resend the same bytes.
//!
//! ## Mapping
//!
//! An operation with a duration (a span-shaped kind) becomes a **span**; its trace context
//! gives the trace id, its own span id and its parent, so a request that crosses an RPC, a
//! schedule and a fiber is one trace. A point event becomes a **log record** with `EventName`
//! set to the kind. Failures and the kinds in [`map::LOGGED_SPAN_KINDS`] are also log records.
//! With `traces_enabled = false` every event is a log record.
//!
//! | event | signal | name | span kind | attributes |
//! |---|---|---|---|---|
//! | `chat:turn:finish` | span | `invoke_agent {gen_ai.agent.name}` | INTERNAL | `gen_ai.operation.name=invoke_agent` |
//! | `model:call` | span | `chat {gen_ai.request.model}` | CLIENT | `gen_ai.operation.name=chat`, `gen_ai.request.model`, `gen_ai.provider.name`, `gen_ai.usage.input_tokens`, `gen_ai.usage.output_tokens`, `gen_ai.response.finish_reasons` |
//! | `tool:call` | span | `execute_tool {gen_ai.tool.name}` | INTERNAL | `gen_ai.operation.name=execute_tool`, `gen_ai.tool.name`, `gen_ai.tool.call.id`, `gen_ai.tool.type`; `gen_ai.tool.call.arguments` only with `capture_content` |
//! | `rpc`, `rpc:error` | span | `{rpc.method}` | SERVER | `rpc.system=cloudflare_agents`, `rpc.service` (class), `rpc.method` |
//! | `mcp:request` | span | `{mcp.method.name} {gen_ai.tool.name}` | CLIENT | `mcp.method.name`, `gen_ai.tool.name` |
//! | `mcp:client:connect` | span + log | `mcp connect {server_name}` | CLIENT | `sightline.mcp.*` |
//! | `mcp:client:discover` | span | `mcp discover {server_name}` | CLIENT | `sightline.mcp.*` |
//! | `schedule:complete`, `schedule:error` | span (+ log for `error`) | `schedule {callback}` | INTERNAL | `sightline.schedule.*` |
//! | `queue:complete`, `queue:error` | span | `queue {callback}` | CONSUMER | `sightline.queue.*` |
//! | `fiber:run:completed`, `:failed`, `:interrupted` | span | `fiber {fiber_name}` | INTERNAL | `sightline.fiber.*` |
//! | `fiber:recovery:handled`, `:failed` | span + log | `fiber recovery {fiber_name}` | INTERNAL | `sightline.fiber.*` |
//! | `workflow:complete`, `workflow:error` | span | `workflow {workflow_name}` | INTERNAL | `sightline.workflow.*` |
//! | `approval:granted`, `:denied`, `:expired` | span + log | `approval {action}` | INTERNAL | `sightline.approval.*` |
//! | `agent:wake` | span | `wake {class}` | INTERNAL | |
//! | other span-shaped kinds | span | the kind | INTERNAL | `sightline.{family}.*` |
//! | point events (`state:update`, `schedule:retry`, `fiber:recovery:detected`, `approval:requested`, ...) | log | `EventName` = the kind | | severity number and text; body = the payload's other fields |
//!
//! Every span and log record carries `gen_ai.agent.name` (the class), `gen_ai.conversation.id`
//! and `session.id` (the instance), `sightline.event.id` and `sightline.seq`, and
//! `sightline.outcome` when there is one. Failures carry `error.type` (the payload's bounded
//! `error_type`, else the outcome) and spans an ERROR status. A span-shaped event without a
//! duration (ingested from elsewhere) is a log record; one without a trace context gets ids
//! derived from its event id. The resource has `service.name`, `service.instance.id` and the
//! attributes of `OTEL_RESOURCE_ATTRIBUTES` and `resource_attributes`.
//!
//! Payloads reach this sink through its redaction policy (`otlp`: an allow-list of the fields
//! the event model marks safe). Fields the model marks sensitive are exported only with
//! `capture_content = true` and a policy that lets them through: content capture is opt-in
//! twice.
//!
//! ## Delivery
//!
//! Batches are cut by size (`batch_max_events`, `batch_max_bytes`) and by time
//! (`batch_linger_ms`); up to `max_concurrent_exports` requests are in flight. Retryable
//! failures (gRPC `UNAVAILABLE` and friends, HTTP 429/502/503/504, connection errors) are
//! retried with full-jitter exponential backoff, waiting as long as a `RetryInfo` or
//! `Retry-After` asks, for up to `retry_max_elapsed_ms`; permanent failures are counted as
//! rejected at once. The buffer is bounded in events and bytes (`queue_max_events`,
//! `queue_max_bytes`, counting what waits and what is in flight). When it is full the sink
//! refuses the next batch as a transient error: the sink runner retries it with backoff, and
//! its bounded queue in front of the agents applies the sink's overflow policy, dropping and
//! counting (`drop_newest`, the default: agents never wait) or, for a backfill, waiting. Every
//! event ends delivered, or counted: dropped at the queue, failed at the runner, or
//! rejected / given up / left at shutdown here ([`OtlpStats`]). What was lost during an
//! outage can be backfilled from the archive with `sightline replay --to otlp --since ...`.
//!
//! ```no_run
//! use std::time::Duration;
//! use sightline_bus::Bus;
//! use sightline_otlp::{OtlpConfig, OtlpSink};
//! use sightline_sink::{Pipeline, RunnerConfig};
//!
//! let bus = Bus::new();
//! let mut pipeline = Pipeline::new(bus.clone()).unwrap();
//! let config = OtlpConfig {
//!     endpoint: Some("http://127.0.0.1:4317".into()),
//!     ..Default::default()
//! };
//! let sink = OtlpSink::new(&config).unwrap();
//! let stats = sink.stats_handle();
//! let runner = RunnerConfig { policy: "otlp".into(), ..Default::default() };
//! pipeline.add("otlp", Box::new(sink), runner).unwrap();
//! // ... agents emit ...
//! pipeline.shutdown(Duration::from_secs(5));
//! println!("delivered {} lost {}", stats.stats().delivered, stats.stats().lost());
//! ```
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod config;
#[cfg(feature = "export")]
mod export;
pub mod map;
#[cfg(feature = "receiver")]
pub mod receiver;
#[cfg(feature = "export")]
mod sink;
#[cfg(feature = "export")]
pub mod transport;
pub mod wire;

pub use config::{Compression, OtlpConfig, Protocol};
#[cfg(feature = "export")]
pub use export::{Item, OtlpStats, OtlpStatsHandle};
#[cfg(feature = "export")]
pub use sink::{OtlpError, OtlpSink};
