//! The `[otlp]` table and the OpenTelemetry environment variables it falls back on.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The wire protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    /// OTLP/gRPC (port 4317).
    Grpc,
    /// OTLP/HTTP with protobuf bodies (port 4318, paths `/v1/logs` and `/v1/traces`).
    HttpProtobuf,
}

impl Protocol {
    /// Parses `OTEL_EXPORTER_OTLP_PROTOCOL` spellings (`grpc`, `http/protobuf`).
    pub fn from_env_value(v: &str) -> Option<Protocol> {
        match v.trim() {
            "grpc" => Some(Protocol::Grpc),
            "http/protobuf" | "http_protobuf" => Some(Protocol::HttpProtobuf),
            _ => None,
        }
    }

    /// The default endpoint of the protocol.
    pub const fn default_endpoint(self) -> &'static str {
        match self {
            Protocol::Grpc => "http://localhost:4317",
            Protocol::HttpProtobuf => "http://localhost:4318",
        }
    }
}

/// Request body compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Compression {
    /// gzip.
    Gzip,
    /// None.
    None,
}

/// The OTLP exporter's configuration. Connection keys left unset fall back on the standard
/// `OTEL_EXPORTER_OTLP_*` variables, then on OTLP's defaults; see [`OtlpConfig::resolve`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OtlpConfig {
    /// Whether the pipeline exports over OTLP (`demo --otlp URL` turns it on).
    pub enabled: bool,
    /// Collector URL, e.g. `http://127.0.0.1:4317`; `https://` turns TLS on. Unset:
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`, else the protocol's default on localhost. With HTTP,
    /// `/v1/logs` and `/v1/traces` are appended (per-signal variables are used as given).
    pub endpoint: Option<String>,
    /// `grpc` or `http_protobuf`. Unset: `OTEL_EXPORTER_OTLP_PROTOCOL`, else `grpc`.
    pub protocol: Option<Protocol>,
    /// `gzip` or `none`. Unset: `OTEL_EXPORTER_OTLP_COMPRESSION`, else `none`.
    pub compression: Option<Compression>,
    /// Headers sent with every export (auth tokens); added to those of
    /// `OTEL_EXPORTER_OTLP_HEADERS`, winning on conflicts.
    pub headers: BTreeMap<String, String>,
    /// Deadline of one export request, in milliseconds. Unset: `OTEL_EXPORTER_OTLP_TIMEOUT`,
    /// else 10000.
    pub timeout_ms: Option<u64>,
    /// PEM file of a CA to trust for TLS. Unset: `OTEL_EXPORTER_OTLP_CERTIFICATE`, else the
    /// system roots.
    pub ca_cert_path: Option<String>,
    /// `service.name`. Unset: `OTEL_SERVICE_NAME`, else `service.name` in
    /// `OTEL_RESOURCE_ATTRIBUTES`, else `sightline`.
    pub service_name: Option<String>,
    /// `service.instance.id`. Unset: a fresh UUID per process.
    pub service_instance_id: Option<String>,
    /// More resource attributes, added to (and winning over) `OTEL_RESOURCE_ATTRIBUTES`.
    pub resource_attributes: BTreeMap<String, String>,
    /// Whether operations with a duration are exported as spans (`false`: every event becomes
    /// a log record, for backends without traces).
    pub traces_enabled: bool,
    /// Whether spans carry content attributes (tool arguments) when the redaction policy let
    /// them through. Off by default: content capture is opt-in.
    pub capture_content: bool,
    /// Largest batch, in events: a batch is sent when it reaches this size...
    pub batch_max_events: usize,
    /// ... or this many encoded bytes ...
    pub batch_max_bytes: usize,
    /// ... or when its oldest event has waited this long, in milliseconds.
    pub batch_linger_ms: u64,
    /// Events the exporter buffers (waiting or being retried); past it new events are dropped
    /// and counted (`queue_full`).
    pub queue_max_events: usize,
    /// Encoded bytes the exporter buffers; past it new events are dropped and counted.
    pub queue_max_bytes: usize,
    /// Export requests in flight at once.
    pub max_concurrent_exports: usize,
    /// First retry backoff, in milliseconds; doubles per attempt with full jitter.
    pub retry_initial_backoff_ms: u64,
    /// Largest retry backoff, in milliseconds.
    pub retry_max_backoff_ms: u64,
    /// How long a batch is retried before it is given up (counted `gave_up`), in
    /// milliseconds. A collector's `RetryInfo` or `Retry-After` is honoured within it.
    pub retry_max_elapsed_ms: u64,
    /// At shutdown, how long the exporter may keep sending what it holds, in milliseconds;
    /// what is left is counted (`shutdown`).
    pub drain_timeout_ms: u64,
}

impl Default for OtlpConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            endpoint: None,
            protocol: None,
            compression: None,
            headers: BTreeMap::new(),
            timeout_ms: None,
            ca_cert_path: None,
            service_name: None,
            service_instance_id: None,
            resource_attributes: BTreeMap::new(),
            traces_enabled: true,
            capture_content: false,
            batch_max_events: 2048,
            batch_max_bytes: 2 * 1024 * 1024,
            batch_linger_ms: 200,
            queue_max_events: 262_144,
            queue_max_bytes: 128 * 1024 * 1024,
            max_concurrent_exports: 4,
            retry_initial_backoff_ms: 100,
            retry_max_backoff_ms: 5_000,
            retry_max_elapsed_ms: 300_000,
            drain_timeout_ms: 5_000,
        }
    }
}

/// A configuration error, naming the key (or environment variable) at fault.
#[derive(Debug, thiserror::Error)]
#[error("{key}: {message}")]
pub struct ConfigError {
    /// The key or variable.
    pub key: String,
    /// What is wrong with it.
    pub message: String,
}

fn err(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        key: key.to_owned(),
        message: message.into(),
    }
}

/// Where one signal is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The URL: the gRPC server's origin, or the full HTTP URL of the signal.
    pub url: String,
}

/// A configuration with the environment applied and checked: what the exporter runs on.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The protocol.
    pub protocol: Protocol,
    /// Where logs go.
    pub logs: Target,
    /// Where spans go.
    pub traces: Target,
    /// Compression.
    pub compression: Compression,
    /// Headers (lowercase names for gRPC metadata).
    pub headers: Vec<(String, String)>,
    /// Deadline of one request.
    pub timeout: Duration,
    /// PEM of a CA to trust.
    pub ca_cert_pem: Option<Vec<u8>>,
    /// Resource attributes, `service.name` and `service.instance.id` first.
    pub resource: Vec<(String, String)>,
    /// The validated configuration.
    pub config: OtlpConfig,
}

/// Reads environment variables (a seam for tests).
pub trait Env {
    /// The variable's value, when set and not empty.
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.trim().is_empty())
    }
}

impl Env for BTreeMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned().filter(|v| !v.trim().is_empty())
    }
}

/// Parses a W3C-baggage-style `k=v,k2=v2` list (percent-decoded), as used by
/// `OTEL_EXPORTER_OTLP_HEADERS` and `OTEL_RESOURCE_ATTRIBUTES`.
pub fn parse_kv_list(key: &str, text: &str) -> Result<Vec<(String, String)>, ConfigError> {
    let mut out = Vec::new();
    for (i, item) in text.split(',').enumerate() {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        let Some((k, v)) = item.split_once('=') else {
            return Err(err(
                key,
                format!("item {} ({item:?}) is not key=value", i + 1),
            ));
        };
        // Percent-decoding only (W3C baggage): `+` and `&` are themselves.
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s.trim())
                .decode_utf8_lossy()
                .into_owned()
        };
        let k = decode(k);
        if k.is_empty() {
            return Err(err(key, format!("item {} has an empty key", i + 1)));
        }
        out.push((k, decode(v)));
    }
    Ok(out)
}

impl OtlpConfig {
    /// Applies the environment and checks the values.
    pub fn resolve(&self, env: &dyn Env) -> Result<Resolved, ConfigError> {
        let c = self;
        for (key, v) in [
            ("batch_max_events", c.batch_max_events),
            ("batch_max_bytes", c.batch_max_bytes),
            ("queue_max_events", c.queue_max_events),
            ("queue_max_bytes", c.queue_max_bytes),
            ("max_concurrent_exports", c.max_concurrent_exports),
        ] {
            if v == 0 {
                return Err(err(key, "must be at least 1"));
            }
        }
        if c.queue_max_events < c.batch_max_events {
            return Err(err(
                "queue_max_events",
                format!(
                    "{} is smaller than batch_max_events ({})",
                    c.queue_max_events, c.batch_max_events
                ),
            ));
        }
        if c.retry_initial_backoff_ms == 0 || c.retry_max_backoff_ms < c.retry_initial_backoff_ms {
            return Err(err(
                "retry_initial_backoff_ms",
                "must be at least 1 and at most retry_max_backoff_ms",
            ));
        }
        let protocol = match c.protocol {
            Some(p) => p,
            None => match env.var("OTEL_EXPORTER_OTLP_PROTOCOL") {
                Some(v) => Protocol::from_env_value(&v).ok_or_else(|| {
                    err(
                        "OTEL_EXPORTER_OTLP_PROTOCOL",
                        format!("{v:?} is not grpc or http/protobuf"),
                    )
                })?,
                None => Protocol::Grpc,
            },
        };
        let check_url = |key: &str, url: &str| -> Result<String, ConfigError> {
            let url = url.trim();
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(err(
                    key,
                    format!("{url:?} is not an http:// or https:// URL"),
                ));
            }
            Ok(url.to_owned())
        };
        let base = match &c.endpoint {
            Some(e) => check_url("endpoint", e)?,
            None => match env.var("OTEL_EXPORTER_OTLP_ENDPOINT") {
                Some(e) => check_url("OTEL_EXPORTER_OTLP_ENDPOINT", &e)?,
                None => protocol.default_endpoint().to_owned(),
            },
        };
        let signal = |var: &str, path: &str| -> Result<Target, ConfigError> {
            // A per-signal variable is used as given; the configured endpoint wins over it.
            if c.endpoint.is_none() {
                if let Some(e) = env.var(var) {
                    return Ok(Target {
                        url: check_url(var, &e)?,
                    });
                }
            }
            Ok(Target {
                url: match protocol {
                    Protocol::Grpc => base.clone(),
                    Protocol::HttpProtobuf => format!("{}{path}", base.trim_end_matches('/')),
                },
            })
        };
        let logs = signal("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "/v1/logs")?;
        let traces = signal("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "/v1/traces")?;
        let compression = match c.compression {
            Some(x) => x,
            None => match env.var("OTEL_EXPORTER_OTLP_COMPRESSION").as_deref() {
                Some("gzip") => Compression::Gzip,
                Some("none") | None => Compression::None,
                Some(v) => {
                    return Err(err(
                        "OTEL_EXPORTER_OTLP_COMPRESSION",
                        format!("{v:?} is not gzip or none"),
                    ))
                }
            },
        };
        // Header names are case-insensitive: merge them lowercased, the config winning.
        let mut headers: BTreeMap<String, String> = BTreeMap::new();
        let check_header = |key: &str, k: &str, v: &str| -> Result<String, ConfigError> {
            let name = k.to_ascii_lowercase();
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            {
                return Err(err(key, format!("{k:?} is not a valid header name")));
            }
            // What both gRPC metadata and HTTP accept: visible ASCII, spaces and tabs.
            if !v.bytes().all(|b| (0x20..0x7f).contains(&b) || b == b'\t') {
                return Err(err(
                    key,
                    format!("the value of {k:?} must be printable ASCII"),
                ));
            }
            Ok(name)
        };
        if let Some(h) = env.var("OTEL_EXPORTER_OTLP_HEADERS") {
            for (k, v) in parse_kv_list("OTEL_EXPORTER_OTLP_HEADERS", &h)? {
                headers.insert(check_header("OTEL_EXPORTER_OTLP_HEADERS", &k, &v)?, v);
            }
        }
        for (k, v) in &c.headers {
            headers.insert(check_header("headers", k, v)?, v.clone());
        }
        let checked: Vec<(String, String)> = headers.into_iter().collect();
        let (timeout_key, timeout_ms) = match c.timeout_ms {
            Some(t) => ("timeout_ms", t),
            None => match env.var("OTEL_EXPORTER_OTLP_TIMEOUT") {
                Some(v) => (
                    "OTEL_EXPORTER_OTLP_TIMEOUT",
                    v.trim().parse().map_err(|_| {
                        err(
                            "OTEL_EXPORTER_OTLP_TIMEOUT",
                            format!("{v:?} is not milliseconds"),
                        )
                    })?,
                ),
                None => ("timeout_ms", 10_000),
            },
        };
        if timeout_ms == 0 {
            return Err(err(timeout_key, "must be at least 1"));
        }
        let ca_path = c
            .ca_cert_path
            .clone()
            .map(|p| ("ca_cert_path", p))
            .or_else(|| {
                env.var("OTEL_EXPORTER_OTLP_CERTIFICATE")
                    .map(|p| ("OTEL_EXPORTER_OTLP_CERTIFICATE", p))
            });
        let ca_cert_pem = match ca_path {
            Some((key, p)) => {
                Some(std::fs::read(&p).map_err(|e| err(key, format!("cannot read {p:?}: {e}")))?)
            }
            None => None,
        };
        let mut attrs: BTreeMap<String, String> = BTreeMap::new();
        if let Some(r) = env.var("OTEL_RESOURCE_ATTRIBUTES") {
            attrs.extend(parse_kv_list("OTEL_RESOURCE_ATTRIBUTES", &r)?);
        }
        attrs.extend(
            c.resource_attributes
                .iter()
                .map(|(k, v)| (k.clone(), v.clone())),
        );
        let service_name = c
            .service_name
            .clone()
            .or_else(|| env.var("OTEL_SERVICE_NAME"))
            .or_else(|| attrs.get("service.name").cloned())
            .unwrap_or_else(|| "sightline".to_owned());
        let instance = c
            .service_instance_id
            .clone()
            .or_else(|| attrs.get("service.instance.id").cloned())
            .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
        attrs.remove("service.name");
        attrs.remove("service.instance.id");
        let mut resource = vec![
            ("service.name".to_owned(), service_name),
            ("service.instance.id".to_owned(), instance),
        ];
        resource.extend(attrs);
        Ok(Resolved {
            protocol,
            logs,
            traces,
            compression,
            headers: checked,
            timeout: Duration::from_millis(timeout_ms),
            ca_cert_pem,
            resource,
            config: c.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_standard_variables_fill_what_the_config_leaves_unset() {
        let e = env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            (
                "OTEL_EXPORTER_OTLP_HEADERS",
                "Authorization=Bearer%20abc,x-tenant=t1",
            ),
            ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "2500"),
            (
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "http://tempo:4318/v1/traces",
            ),
            ("OTEL_SERVICE_NAME", "support-bot"),
            (
                "OTEL_RESOURCE_ATTRIBUTES",
                "deployment.environment.name=prod,service.name=x",
            ),
        ]);
        let r = OtlpConfig::default().resolve(&e).unwrap();
        assert_eq!(r.protocol, Protocol::HttpProtobuf);
        assert_eq!(r.logs.url, "http://collector:4318/v1/logs");
        assert_eq!(r.traces.url, "http://tempo:4318/v1/traces");
        assert_eq!(r.compression, Compression::Gzip);
        assert_eq!(r.timeout, Duration::from_millis(2500));
        assert!(r
            .headers
            .contains(&("authorization".into(), "Bearer abc".into())));
        assert_eq!(r.resource[0], ("service.name".into(), "support-bot".into()));
        assert_eq!(r.resource[1].0, "service.instance.id");
        assert!(r
            .resource
            .contains(&("deployment.environment.name".into(), "prod".into())));
    }

    #[test]
    fn header_values_keep_plus_and_ampersand_and_names_merge_case_insensitively() {
        let e = env(&[(
            "OTEL_EXPORTER_OTLP_HEADERS",
            "api-key=ab%26cd+ef&gh,authorization=from-env",
        )]);
        let c = OtlpConfig {
            headers: [("Authorization".to_owned(), "from-config".to_owned())].into(),
            ..Default::default()
        };
        let r = c.resolve(&e).unwrap();
        assert_eq!(
            r.headers,
            vec![
                ("api-key".to_owned(), "ab&cd+ef&gh".to_owned()),
                ("authorization".to_owned(), "from-config".to_owned()),
            ]
        );
        let bad = env(&[("OTEL_EXPORTER_OTLP_HEADERS", "x=caf%C3%A9")]);
        assert_eq!(
            OtlpConfig::default().resolve(&bad).unwrap_err().key,
            "OTEL_EXPORTER_OTLP_HEADERS"
        );
        let zero = env(&[("OTEL_EXPORTER_OTLP_TIMEOUT", "0")]);
        assert_eq!(
            OtlpConfig::default().resolve(&zero).unwrap_err().key,
            "OTEL_EXPORTER_OTLP_TIMEOUT"
        );
    }

    #[test]
    fn the_config_wins_over_the_environment() {
        let e = env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://elsewhere:4317"),
            ("OTEL_SERVICE_NAME", "env-name"),
        ]);
        let c = OtlpConfig {
            endpoint: Some("http://127.0.0.1:14317".into()),
            service_name: Some("cfg-name".into()),
            ..Default::default()
        };
        let r = c.resolve(&e).unwrap();
        assert_eq!(r.logs.url, "http://127.0.0.1:14317");
        assert_eq!(r.resource[0].1, "cfg-name");
    }

    #[test]
    fn bad_values_name_their_key() {
        let e = env(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")]);
        let x = OtlpConfig::default().resolve(&e).unwrap_err();
        assert_eq!(x.key, "OTEL_EXPORTER_OTLP_PROTOCOL");
        let c = OtlpConfig {
            endpoint: Some("collector:4317".into()),
            ..Default::default()
        };
        assert_eq!(c.resolve(&env(&[])).unwrap_err().key, "endpoint");
        let c = OtlpConfig {
            queue_max_events: 10,
            ..Default::default()
        };
        assert_eq!(c.resolve(&env(&[])).unwrap_err().key, "queue_max_events");
        // A misspelt key in the file: serde's own message names it (nothing of the input is
        // copied into the text checked), and the key spelt right is accepted.
        let x = deserialize_err(serde_json::json!({"batch_max_event": 3}));
        assert!(x.starts_with("unknown field `batch_max_event`"), "{x}");
        let ok: OtlpConfig =
            serde_json::from_value(serde_json::json!({"batch_max_events": 3})).unwrap();
        assert_eq!(ok.batch_max_events, 3);
    }

    /// The error of reading `value` as a config: the deserialiser's message only.
    fn deserialize_err(value: serde_json::Value) -> String {
        match serde_json::from_value::<OtlpConfig>(value) {
            Ok(c) => panic!("accepted: {c:?}"),
            Err(e) => e.to_string(),
        }
    }
}
