//! Sending one encoded request over OTLP/gRPC (tonic) or OTLP/HTTP (reqwest), and sorting
//! what comes back into delivered, retryable (with the server's requested delay) or
//! permanent, as the OTLP specification says.

use std::str::FromStr;
use std::time::Duration;

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceResponse;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message;
use tonic::codec::CompressionEncoding;
use tonic::metadata::{MetadataKey, MetadataMap, MetadataValue};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

use crate::config::{Compression, Protocol, Resolved};
use crate::wire::Encoded;

/// The two OTLP signals Sightline sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// Log records.
    Logs,
    /// Spans.
    Traces,
}

impl Signal {
    /// `logs` or `traces`.
    pub const fn name(self) -> &'static str {
        match self {
            Signal::Logs => "logs",
            Signal::Traces => "traces",
        }
    }
}

/// Why a request was not accepted.
#[derive(Debug, Clone)]
pub struct SendError {
    /// Whether OTLP says to retry.
    pub retryable: bool,
    /// The delay the server asked for (gRPC `RetryInfo`, HTTP `Retry-After`).
    pub throttle: Option<Duration>,
    /// What went wrong.
    pub message: String,
}

/// A transport building error.
#[derive(Debug, thiserror::Error)]
#[error("otlp transport: {0}")]
pub struct TransportError(pub String);

/// A connection to a collector.
pub enum Transport {
    /// OTLP/gRPC.
    Grpc {
        /// Channel to the logs endpoint.
        logs: Channel,
        /// Channel to the traces endpoint (the same channel when they share an endpoint).
        traces: Channel,
        /// Headers as metadata.
        metadata: MetadataMap,
        /// gzip.
        gzip: bool,
        /// Per-request deadline.
        timeout: Duration,
    },
    /// OTLP/HTTP with protobuf bodies.
    Http {
        /// The client.
        client: reqwest::Client,
        /// The logs URL.
        logs: String,
        /// The traces URL.
        traces: String,
        /// gzip.
        gzip: bool,
    },
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Transport::Grpc { .. } => f.write_str("Transport::Grpc"),
            Transport::Http { logs, .. } => write!(f, "Transport::Http({logs})"),
        }
    }
}

fn channel(url: &str, r: &Resolved) -> Result<Channel, TransportError> {
    let mut ep = Endpoint::from_shared(url.to_owned())
        .map_err(|e| TransportError(format!("endpoint {url:?}: {e}")))?
        .timeout(r.timeout)
        .connect_timeout(r.timeout.min(Duration::from_secs(5)))
        .tcp_nodelay(true);
    if url.starts_with("https://") {
        let mut tls = ClientTlsConfig::new().with_native_roots();
        if let Some(pem) = &r.ca_cert_pem {
            tls = tls.ca_certificate(Certificate::from_pem(pem));
        }
        ep = ep
            .tls_config(tls)
            .map_err(|e| TransportError(format!("tls: {e}")))?;
    }
    // Connects on first use and reconnects after a collector restarts.
    Ok(ep.connect_lazy())
}

impl Transport {
    /// Builds the transport; call inside a tokio runtime.
    pub fn new(r: &Resolved) -> Result<Self, TransportError> {
        let gzip = r.compression == Compression::Gzip;
        match r.protocol {
            Protocol::Grpc => {
                let logs = channel(&r.logs.url, r)?;
                let traces = if r.traces.url == r.logs.url {
                    logs.clone()
                } else {
                    channel(&r.traces.url, r)?
                };
                let mut metadata = MetadataMap::new();
                for (k, v) in &r.headers {
                    let key = MetadataKey::from_str(k)
                        .map_err(|e| TransportError(format!("header {k:?}: {e}")))?;
                    let value = MetadataValue::from_str(v)
                        .map_err(|e| TransportError(format!("header {k:?}: {e}")))?;
                    metadata.insert(key, value);
                }
                Ok(Transport::Grpc {
                    logs,
                    traces,
                    metadata,
                    gzip,
                    timeout: r.timeout,
                })
            }
            Protocol::HttpProtobuf => {
                let mut headers = reqwest::header::HeaderMap::new();
                for (k, v) in &r.headers {
                    let name = reqwest::header::HeaderName::from_str(k)
                        .map_err(|e| TransportError(format!("header {k:?}: {e}")))?;
                    let value = reqwest::header::HeaderValue::from_str(v)
                        .map_err(|e| TransportError(format!("header {k:?}: {e}")))?;
                    headers.insert(name, value);
                }
                // reqwest brings no rustls provider of its own: ring, as for gRPC, unless the
                // process installed one already.
                let _ = rustls::crypto::ring::default_provider().install_default();
                let mut b = reqwest::Client::builder()
                    .default_headers(headers)
                    .timeout(r.timeout)
                    .connect_timeout(r.timeout.min(Duration::from_secs(5)))
                    .tcp_nodelay(true);
                if let Some(pem) = &r.ca_cert_pem {
                    let cert = reqwest::Certificate::from_pem(pem)
                        .map_err(|e| TransportError(format!("ca_cert_path: {e}")))?;
                    b = b.tls_certs_merge([cert]);
                }
                let client = b
                    .build()
                    .map_err(|e| TransportError(format!("http client: {e}")))?;
                Ok(Transport::Http {
                    client,
                    logs: r.logs.url.clone(),
                    traces: r.traces.url.clone(),
                    gzip,
                })
            }
        }
    }

    /// Sends one request; `Ok` carries the records the collector rejected in a partial
    /// success.
    pub async fn send(&self, signal: Signal, body: Encoded) -> Result<u64, SendError> {
        match self {
            Transport::Grpc {
                logs,
                traces,
                metadata,
                gzip,
                timeout,
            } => {
                let channel = match signal {
                    Signal::Logs => logs.clone(),
                    Signal::Traces => traces.clone(),
                };
                let mut grpc = tonic::client::Grpc::new(channel);
                if *gzip {
                    grpc = grpc.send_compressed(CompressionEncoding::Gzip);
                }
                grpc.ready().await.map_err(|e| SendError {
                    retryable: true,
                    throttle: None,
                    message: format!("grpc channel not ready: {e}"),
                })?;
                let mut req = tonic::Request::new(body);
                *req.metadata_mut() = metadata.clone();
                req.set_timeout(*timeout);
                let result = match signal {
                    Signal::Logs => grpc
                        .unary::<Encoded, ExportLogsServiceResponse, _>(
                            req,
                            tonic::codegen::http::uri::PathAndQuery::from_static(
                                "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
                            ),
                            tonic_prost::ProstCodec::default(),
                        )
                        .await
                        .map(|r| {
                            r.into_inner()
                                .partial_success
                                .map_or(0, |p| p.rejected_log_records.max(0) as u64)
                        }),
                    Signal::Traces => grpc
                        .unary::<Encoded, ExportTraceServiceResponse, _>(
                            req,
                            tonic::codegen::http::uri::PathAndQuery::from_static(
                                "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
                            ),
                            tonic_prost::ProstCodec::default(),
                        )
                        .await
                        .map(|r| {
                            r.into_inner()
                                .partial_success
                                .map_or(0, |p| p.rejected_spans.max(0) as u64)
                        }),
                };
                result.map_err(|s| classify_grpc(&s))
            }
            Transport::Http {
                client,
                logs,
                traces,
                gzip,
            } => {
                let url = match signal {
                    Signal::Logs => logs,
                    Signal::Traces => traces,
                };
                let mut rb = client
                    .post(url)
                    .header(reqwest::header::CONTENT_TYPE, "application/x-protobuf");
                let body = body.to_bytes();
                let body = if *gzip {
                    rb = rb.header(reqwest::header::CONTENT_ENCODING, "gzip");
                    gzip_bytes(&body).map_err(|e| SendError {
                        retryable: false,
                        throttle: None,
                        message: format!("gzip: {e}"),
                    })?
                } else {
                    body
                };
                let mut resp = rb.body(body).send().await.map_err(|e| SendError {
                    retryable: true,
                    throttle: None,
                    message: format!("http: {e}"),
                })?;
                let status = resp.status().as_u16();
                let throttle = resp
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs);
                // The response is small (a partial success at most): read at most 1 MiB of it.
                let mut bytes = Vec::new();
                while let Ok(Some(chunk)) = resp.chunk().await {
                    if bytes.len() + chunk.len() > 1 << 20 {
                        break;
                    }
                    bytes.extend_from_slice(&chunk);
                }
                let bytes = Bytes::from(bytes);
                if (200..300).contains(&status) {
                    return Ok(match signal {
                        Signal::Logs => ExportLogsServiceResponse::decode(bytes)
                            .ok()
                            .and_then(|r| r.partial_success)
                            .map_or(0, |p| p.rejected_log_records.max(0) as u64),
                        Signal::Traces => ExportTraceServiceResponse::decode(bytes)
                            .ok()
                            .and_then(|r| r.partial_success)
                            .map_or(0, |p| p.rejected_spans.max(0) as u64),
                    });
                }
                Err(SendError {
                    retryable: matches!(status, 429 | 502 | 503 | 504),
                    throttle,
                    message: format!("http status {status}"),
                })
            }
        }
    }
}

fn gzip_bytes(body: &[u8]) -> std::io::Result<Bytes> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 4),
        flate2::Compression::fast(),
    );
    enc.write_all(body)?;
    Ok(enc.finish()?.into())
}

/// Sorts a gRPC status as the OTLP specification does: `UNAVAILABLE` and friends are retried,
/// `RESOURCE_EXHAUSTED` only when the server sent `RetryInfo`, everything else is permanent.
pub fn classify_grpc(s: &tonic::Status) -> SendError {
    use tonic::Code;
    use tonic_types::StatusExt;
    let throttle = s.get_details_retry_info().and_then(|r| r.retry_delay);
    let retryable = match s.code() {
        Code::Cancelled
        | Code::DeadlineExceeded
        | Code::Aborted
        | Code::OutOfRange
        | Code::Unavailable
        | Code::DataLoss => true,
        Code::ResourceExhausted => throttle.is_some(),
        _ => false,
    };
    SendError {
        retryable,
        throttle,
        message: format!("grpc status {:?}: {}", s.code(), s.message()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_statuses_are_sorted_as_otlp_says() {
        assert!(classify_grpc(&tonic::Status::unavailable("down")).retryable);
        assert!(!classify_grpc(&tonic::Status::invalid_argument("bad")).retryable);
        assert!(!classify_grpc(&tonic::Status::resource_exhausted("full")).retryable);
        let with_info = <tonic::Status as tonic_types::StatusExt>::with_error_details(
            tonic::Code::ResourceExhausted,
            "slow down",
            tonic_types::ErrorDetails::with_retry_info(Some(Duration::from_millis(1500))),
        );
        let e = classify_grpc(&with_info);
        assert!(e.retryable);
        assert_eq!(e.throttle, Some(Duration::from_millis(1500)));
    }
}
