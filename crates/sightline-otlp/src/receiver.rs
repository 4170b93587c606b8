//! A loopback OTLP receiver, gRPC and HTTP/protobuf, for tests, benchmarks and debugging.
//! The decoding is OpenTelemetry's: the gRPC side is `opentelemetry-proto`'s generated
//! `LogsServiceServer` / `TraceServiceServer`, the HTTP side decodes the same generated
//! message types. It can be told to answer with a retryable or a permanent error, and stopped
//! and started again on the same ports, to play a collector's outage.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;
use tonic::codec::CompressionEncoding;

/// How the receiver answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Accepts everything.
    Accept,
    /// Answers `UNAVAILABLE` / HTTP 503, with a `RetryInfo` / `Retry-After` when set.
    Unavailable(Option<Duration>),
    /// Answers `INVALID_ARGUMENT` / HTTP 400: a permanent error.
    Reject,
}

/// What arrived.
#[derive(Debug, Default)]
pub struct Received {
    /// Log export requests, decoded (when kept).
    pub logs: Vec<ExportLogsServiceRequest>,
    /// Trace export requests, decoded (when kept).
    pub traces: Vec<ExportTraceServiceRequest>,
}

#[derive(Default)]
struct State {
    mode: Mutex<Option<Mode>>,
    keep: bool,
    counting: bool,
    /// (certificate, key) PEM: serve gRPC over TLS.
    tls: Option<(Vec<u8>, Vec<u8>)>,
    /// The metadata (headers) of the latest gRPC request.
    last_metadata: Mutex<Vec<(String, String)>>,
    received: Mutex<Received>,
    log_records: AtomicU64,
    spans: AtomicU64,
    requests: AtomicU64,
    refused: AtomicU64,
}

impl State {
    fn mode(&self) -> Mode {
        self.mode
            .lock()
            .map(|m| m.unwrap_or(Mode::Accept))
            .unwrap_or(Mode::Accept)
    }

    fn logs(&self, req: ExportLogsServiceRequest) {
        let n: usize = req
            .resource_logs
            .iter()
            .flat_map(|r| &r.scope_logs)
            .map(|s| s.log_records.len())
            .sum();
        self.log_records.fetch_add(n as u64, Ordering::Relaxed);
        self.requests.fetch_add(1, Ordering::Relaxed);
        if self.keep {
            if let Ok(mut r) = self.received.lock() {
                r.logs.push(req);
            }
        }
    }

    fn traces(&self, req: ExportTraceServiceRequest) {
        let n: usize = req
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .map(|s| s.spans.len())
            .sum();
        self.spans.fetch_add(n as u64, Ordering::Relaxed);
        self.requests.fetch_add(1, Ordering::Relaxed);
        if self.keep {
            if let Ok(mut r) = self.received.lock() {
                r.traces.push(req);
            }
        }
    }

    fn note_metadata(&self, m: &tonic::metadata::MetadataMap) {
        let headers = m
            .clone()
            .into_headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        if let Ok(mut last) = self.last_metadata.lock() {
            *last = headers;
        }
    }

    fn grpc_refusal(&self) -> Option<tonic::Status> {
        let status = match self.mode() {
            Mode::Accept => return None,
            Mode::Reject => tonic::Status::invalid_argument("rejected by the test receiver"),
            Mode::Unavailable(None) => tonic::Status::unavailable("test receiver unavailable"),
            Mode::Unavailable(Some(d)) => {
                <tonic::Status as tonic_types::StatusExt>::with_error_details(
                    tonic::Code::Unavailable,
                    "test receiver unavailable",
                    tonic_types::ErrorDetails::with_retry_info(Some(d)),
                )
            }
        };
        self.refused.fetch_add(1, Ordering::Relaxed);
        Some(status)
    }
}

#[derive(Clone)]
struct Svc(Arc<State>);

#[tonic::async_trait]
impl LogsService for Svc {
    async fn export(
        &self,
        request: tonic::Request<ExportLogsServiceRequest>,
    ) -> Result<tonic::Response<ExportLogsServiceResponse>, tonic::Status> {
        self.0.note_metadata(request.metadata());
        if let Some(s) = self.0.grpc_refusal() {
            return Err(s);
        }
        self.0.logs(request.into_inner());
        Ok(tonic::Response::new(ExportLogsServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl TraceService for Svc {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.0.note_metadata(request.metadata());
        if let Some(s) = self.0.grpc_refusal() {
            return Err(s);
        }
        self.0.traces(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

fn gunzip(body: &[u8]) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(body).read_to_end(&mut out)?;
    Ok(out)
}

async fn http_export(
    state: Arc<State>,
    traces: bool,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    match state.mode() {
        Mode::Accept => {}
        Mode::Reject => {
            state.refused.fetch_add(1, Ordering::Relaxed);
            return (StatusCode::BAD_REQUEST, "rejected by the test receiver").into_response();
        }
        Mode::Unavailable(after) => {
            state.refused.fetch_add(1, Ordering::Relaxed);
            let mut r = (StatusCode::SERVICE_UNAVAILABLE, "unavailable").into_response();
            if let Some(d) = after {
                if let Ok(v) = d.as_secs().max(1).to_string().parse() {
                    r.headers_mut().insert(axum::http::header::RETRY_AFTER, v);
                }
            }
            return r;
        }
    }
    let gz = headers
        .get(axum::http::header::CONTENT_ENCODING)
        .is_some_and(|v| v.as_bytes() == b"gzip");
    let raw = if gz {
        match gunzip(&body) {
            Ok(b) => Bytes::from(b),
            Err(e) => return (StatusCode::BAD_REQUEST, format!("gzip: {e}")).into_response(),
        }
    } else {
        body
    };
    let ok = if traces {
        ExportTraceServiceRequest::decode(raw).map(|r| state.traces(r))
    } else {
        ExportLogsServiceRequest::decode(raw).map(|r| state.logs(r))
    };
    match ok {
        Ok(()) => {
            let body = if traces {
                ExportTraceServiceResponse::default().encode_to_vec()
            } else {
                ExportLogsServiceResponse::default().encode_to_vec()
            };
            (
                [(axum::http::header::CONTENT_TYPE, "application/x-protobuf")],
                body,
            )
                .into_response()
        }
        Err(e) => (StatusCode::BAD_REQUEST, format!("decode: {e}")).into_response(),
    }
}

/// A running receiver.
pub struct Receiver {
    state: Arc<State>,
    grpc_addr: SocketAddr,
    http_addr: SocketAddr,
    stop: Option<(
        tokio::sync::watch::Sender<bool>,
        std::thread::JoinHandle<()>,
    )>,
}

impl std::fmt::Debug for Receiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver")
            .field("grpc_addr", &self.grpc_addr)
            .field("http_addr", &self.http_addr)
            .finish_non_exhaustive()
    }
}

impl Receiver {
    /// Starts on free loopback ports; `keep` keeps every decoded request.
    pub fn start(keep: bool) -> std::io::Result<Self> {
        let any: SocketAddr = ([127, 0, 0, 1], 0).into();
        Self::start_on(any, any, keep)
    }

    /// Starts a gRPC receiver for benchmarks on a free loopback port: it parses each request
    /// down to its records (with prost) and counts them without building them, so that the
    /// receiver is not what a benchmark measures. Every path measured against it pays the
    /// same.
    pub fn start_counting() -> std::io::Result<Self> {
        let any: SocketAddr = ([127, 0, 0, 1], 0).into();
        Self::start_with(any, any, false, true, None)
    }

    /// Starts on the given addresses (port 0: any free port).
    pub fn start_on(grpc: SocketAddr, http: SocketAddr, keep: bool) -> std::io::Result<Self> {
        Self::start_with(grpc, http, keep, false, None)
    }

    /// Starts with gRPC over TLS, with this certificate and key (PEM), on free loopback ports;
    /// [`Receiver::grpc_url`] is then `https://`.
    pub fn start_tls(cert_pem: Vec<u8>, key_pem: Vec<u8>, keep: bool) -> std::io::Result<Self> {
        let any: SocketAddr = ([127, 0, 0, 1], 0).into();
        Self::start_with(any, any, keep, false, Some((cert_pem, key_pem)))
    }

    fn start_with(
        grpc: SocketAddr,
        http: SocketAddr,
        keep: bool,
        counting: bool,
        tls: Option<(Vec<u8>, Vec<u8>)>,
    ) -> std::io::Result<Self> {
        let state = Arc::new(State {
            keep,
            counting,
            tls,
            ..Default::default()
        });
        let mut r = Self {
            state,
            grpc_addr: grpc,
            http_addr: http,
            stop: None,
        };
        r.resume()?;
        Ok(r)
    }

    /// The gRPC endpoint URL.
    pub fn grpc_url(&self) -> String {
        let scheme = if self.state.tls.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.grpc_addr)
    }

    /// The headers (gRPC metadata) of the latest gRPC request, names in lowercase.
    pub fn last_metadata(&self) -> Vec<(String, String)> {
        self.state
            .last_metadata
            .lock()
            .map(|m| m.clone())
            .unwrap_or_default()
    }

    /// The HTTP base URL (`/v1/logs` and `/v1/traces` below it).
    pub fn http_url(&self) -> String {
        format!("http://{}", self.http_addr)
    }

    /// Sets how it answers from now on.
    pub fn set_mode(&self, mode: Mode) {
        if let Ok(mut m) = self.state.mode.lock() {
            *m = Some(mode);
        }
    }

    /// Log records accepted so far.
    pub fn log_records(&self) -> u64 {
        self.state.log_records.load(Ordering::Relaxed)
    }

    /// Spans accepted so far.
    pub fn spans(&self) -> u64 {
        self.state.spans.load(Ordering::Relaxed)
    }

    /// Requests accepted so far.
    pub fn requests(&self) -> u64 {
        self.state.requests.load(Ordering::Relaxed)
    }

    /// Requests refused (by mode) so far.
    pub fn refused(&self) -> u64 {
        self.state.refused.load(Ordering::Relaxed)
    }

    /// Takes what was kept.
    pub fn take(&self) -> Received {
        self.state
            .received
            .lock()
            .map(|mut r| std::mem::take(&mut *r))
            .unwrap_or_default()
    }

    /// Stops listening (connections are closed); [`Receiver::resume`] starts again.
    pub fn pause(&mut self) {
        if let Some((tx, thread)) = self.stop.take() {
            let _ = tx.send(true);
            let _ = thread.join();
        }
    }

    /// Listens again on the same ports.
    pub fn resume(&mut self) -> std::io::Result<()> {
        if self.stop.is_some() {
            return Ok(());
        }
        let grpc = std::net::TcpListener::bind(self.grpc_addr)?;
        let http = std::net::TcpListener::bind(self.http_addr)?;
        grpc.set_nonblocking(true)?;
        http.set_nonblocking(true)?;
        self.grpc_addr = grpc.local_addr()?;
        self.http_addr = http.local_addr()?;
        let (tx, rx) = tokio::sync::watch::channel(false);
        let state = self.state.clone();
        let thread = std::thread::Builder::new()
            .name("otlp-receiver".into())
            .spawn(move || {
                let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    return;
                };
                rt.block_on(serve(state, grpc, http, rx));
            })?;
        self.stop = Some((tx, thread));
        Ok(())
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.pause();
    }
}

async fn serve(
    state: Arc<State>,
    grpc: std::net::TcpListener,
    http: std::net::TcpListener,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    let (Ok(grpc), Ok(http)) = (
        tokio::net::TcpListener::from_std(grpc),
        tokio::net::TcpListener::from_std(http),
    ) else {
        return;
    };
    let svc = Svc(state.clone());
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let mut builder = tonic::transport::Server::builder();
    if let Some((cert, key)) = &state.tls {
        let identity = tonic::transport::Identity::from_pem(cert, key);
        builder =
            match builder.tls_config(tonic::transport::ServerTlsConfig::new().identity(identity)) {
                Ok(b) => b,
                Err(_) => return,
            };
    }
    let mut router = builder;
    let router = if state.counting {
        router
            .add_service(counting::Counting::<counting::Logs>::new(state.clone()))
            .add_service(counting::Counting::<counting::Traces>::new(state.clone()))
    } else {
        router
            .add_service(
                LogsServiceServer::new(svc.clone())
                    .accept_compressed(CompressionEncoding::Gzip)
                    .max_decoding_message_size(64 * 1024 * 1024),
            )
            .add_service(
                TraceServiceServer::new(svc)
                    .accept_compressed(CompressionEncoding::Gzip)
                    .max_decoding_message_size(64 * 1024 * 1024),
            )
    };
    let grpc_server =
        router.serve_with_incoming_shutdown(tokio_stream_incoming(grpc), stopped(stop.clone()));
    let (s1, s2) = (state.clone(), state);
    let app = axum::Router::new()
        .route(
            "/v1/logs",
            axum::routing::post(move |h: axum::http::HeaderMap, b: Bytes| {
                http_export(s1.clone(), false, h, b)
            }),
        )
        .route(
            "/v1/traces",
            axum::routing::post(move |h: axum::http::HeaderMap, b: Bytes| {
                http_export(s2.clone(), true, h, b)
            }),
        )
        .layer(axum::extract::DefaultBodyLimit::max(64 * 1024 * 1024));
    let http_server = axum::serve(http, app).with_graceful_shutdown(stopped(stop.clone()));
    // Graceful shutdown waits for open connections; an outage closes them at once.
    let mut hard = stop;
    tokio::select! {
        _ = async { let _ = tokio::join!(grpc_server, http_server); } => {}
        _ = async { let _ = hard.wait_for(|s| *s).await; tokio::time::sleep(Duration::from_millis(50)).await; } => {}
    }
}

fn tokio_stream_incoming(
    l: tokio::net::TcpListener,
) -> impl tokio_stream::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    tokio_stream::wrappers::TcpListenerStream::new(l)
}

/// The counting gRPC service: the code tonic-build generates for the two OTLP services, over a
/// message type that keeps each record as bytes.
mod counting {
    use std::marker::PhantomData;
    use std::sync::atomic::Ordering;
    use std::sync::Arc;
    use std::task::{Context, Poll};

    use tonic::codegen::{http, BoxFuture, StdError};

    use super::State;

    /// A request of either signal, down to its records (kept as bytes, not decoded).
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct CountRequest {
        #[prost(message, repeated, tag = "1")]
        blocks: Vec<CountBlock>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    struct CountBlock {
        #[prost(message, repeated, tag = "2")]
        scopes: Vec<CountScope>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    struct CountScope {
        #[prost(bytes = "bytes", repeated, tag = "2")]
        records: Vec<bytes::Bytes>,
    }
    /// The (empty) response of either signal.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct CountResponse {}

    pub trait Signal: Send + Sync + 'static {
        const NAME: &'static str;
        const PATH: &'static str;
        const TRACES: bool;
    }
    pub struct Logs;
    impl Signal for Logs {
        const NAME: &'static str = "opentelemetry.proto.collector.logs.v1.LogsService";
        const PATH: &'static str = "/opentelemetry.proto.collector.logs.v1.LogsService/Export";
        const TRACES: bool = false;
    }
    pub struct Traces;
    impl Signal for Traces {
        const NAME: &'static str = "opentelemetry.proto.collector.trace.v1.TraceService";
        const PATH: &'static str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
        const TRACES: bool = true;
    }

    pub struct Counting<S>(Arc<State>, PhantomData<S>);
    impl<S> Counting<S> {
        pub fn new(state: Arc<State>) -> Self {
            Self(state, PhantomData)
        }
    }
    impl<S> Clone for Counting<S> {
        fn clone(&self) -> Self {
            Self(self.0.clone(), PhantomData)
        }
    }
    impl<S: Signal> tonic::server::NamedService for Counting<S> {
        const NAME: &'static str = S::NAME;
    }

    struct Unary<S>(Arc<State>, PhantomData<S>);
    impl<S: Signal> tonic::server::UnaryService<CountRequest> for Unary<S> {
        type Response = CountResponse;
        type Future = BoxFuture<tonic::Response<CountResponse>, tonic::Status>;
        fn call(&mut self, request: tonic::Request<CountRequest>) -> Self::Future {
            let state = self.0.clone();
            Box::pin(async move {
                if let Some(s) = state.grpc_refusal() {
                    return Err(s);
                }
                let n: usize = request
                    .get_ref()
                    .blocks
                    .iter()
                    .flat_map(|b| &b.scopes)
                    .map(|s| s.records.len())
                    .sum();
                let counter = if S::TRACES {
                    &state.spans
                } else {
                    &state.log_records
                };
                counter.fetch_add(n as u64, Ordering::Relaxed);
                state.requests.fetch_add(1, Ordering::Relaxed);
                Ok(tonic::Response::new(CountResponse {}))
            })
        }
    }

    impl<S, B> tonic::codegen::Service<http::Request<B>> for Counting<S>
    where
        S: Signal,
        B: tonic::codegen::Body + Send + 'static,
        B::Error: Into<StdError> + Send + 'static,
    {
        type Response = http::Response<tonic::body::Body>;
        type Error = std::convert::Infallible;
        type Future = BoxFuture<Self::Response, Self::Error>;
        fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            Poll::Ready(Ok(()))
        }
        fn call(&mut self, req: http::Request<B>) -> Self::Future {
            let state = self.0.clone();
            let known = req.uri().path() == S::PATH;
            Box::pin(async move {
                if !known {
                    let mut response = http::Response::new(tonic::body::Body::default());
                    response.headers_mut().insert(
                        tonic::Status::GRPC_STATUS,
                        (tonic::Code::Unimplemented as i32).into(),
                    );
                    return Ok(response);
                }
                let mut grpc = tonic::server::Grpc::new(tonic_prost::ProstCodec::default())
                    .apply_max_message_size_config(Some(64 * 1024 * 1024), None);
                Ok(grpc.unary(Unary::<S>(state, PhantomData), req).await)
            })
        }
    }
}
