//! The `/metrics` endpoint: the 0.0.4 text format by default, OpenMetrics when the scraper's
//! `Accept` header asks for it; optional bearer-token auth; its own thread and runtime, so it
//! answers whatever the agents and sinks are doing.

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use prometheus::{Encoder, Registry, TextEncoder};

use crate::{openmetrics, PrometheusError};

struct Shared {
    registry: Registry,
    token: Option<String>,
}

/// A running `/metrics` endpoint. Dropping it stops the server.
pub struct MetricsServer {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl std::fmt::Debug for MetricsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsServer")
            .field("addr", &self.addr)
            .finish()
    }
}

impl MetricsServer {
    /// Binds `addr` and serves `registry` on `/metrics`. A taken port is a clear error.
    pub fn start(
        addr: &str,
        registry: Registry,
        token: Option<String>,
    ) -> Result<Self, PrometheusError> {
        let listener =
            std::net::TcpListener::bind(addr).map_err(|source| PrometheusError::Bind {
                addr: addr.to_owned(),
                source,
            })?;
        listener
            .set_nonblocking(true)
            .map_err(|source| PrometheusError::Bind {
                addr: addr.to_owned(),
                source,
            })?;
        let local = listener
            .local_addr()
            .map_err(|source| PrometheusError::Bind {
                addr: addr.to_owned(),
                source,
            })?;
        let shared = Arc::new(Shared {
            registry,
            token: token.filter(|t| !t.is_empty()),
        });
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(PrometheusError::Runtime)?;
        let thread = thread::Builder::new()
            .name("sightline-metrics".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                        return;
                    };
                    let app = Router::new()
                        .route("/metrics", get(metrics))
                        .route("/", get(index))
                        .with_state(shared);
                    let _ = axum::serve(listener, app)
                        .with_graceful_shutdown(async {
                            let _ = stopped.await;
                        })
                        .await;
                });
            })
            .map_err(PrometheusError::Runtime)?;
        Ok(Self {
            addr: local,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// The address it listens on (with the real port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn index() -> &'static str {
    "Sightline metrics: GET /metrics\n"
}

async fn metrics(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if let Some(token) = &shared.token {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if given != Some(token.as_str()) {
            return (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                "a bearer token is required\n",
            )
                .into_response();
        }
    }
    let families = shared.registry.gather();
    let wants_openmetrics = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/openmetrics-text"));
    if wants_openmetrics {
        return (
            [(header::CONTENT_TYPE, openmetrics::CONTENT_TYPE)],
            openmetrics::encode(&families),
        )
            .into_response();
    }
    let encoder = TextEncoder::new();
    let mut body = Vec::with_capacity(1 << 20);
    match encoder.encode(&families, &mut body) {
        Ok(()) => (
            [(header::CONTENT_TYPE, encoder.format_type().to_owned())],
            body,
        )
            .into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}
