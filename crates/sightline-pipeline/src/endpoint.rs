//! Starting the `/metrics` endpoint over an assembled pipeline's registry, with the bearer
//! token the configuration asks for: a configured token that is missing must not silently
//! turn auth off, so that is an error here rather than in each command.

use prometheus::Registry;
use sightline_prometheus::{MetricsServer, PrometheusConfig};

use crate::error::PipelineError;

/// The bearer token `/metrics` requires: the value of `[prometheus] bearer_token_env` when
/// that key is set (an unset or empty variable is an error), none otherwise.
pub fn bearer_token(config: &PrometheusConfig) -> Result<Option<String>, PipelineError> {
    match config.bearer_token_env.as_deref() {
        Some(var) => match std::env::var(var) {
            Ok(t) if !t.is_empty() => Ok(Some(t)),
            _ => Err(PipelineError::MissingToken {
                var: var.to_owned(),
            }),
        },
        None => Ok(None),
    }
}

/// Serves `registry` on `/metrics` at `addr` (`[prometheus] listen_addr` when `None`; port
/// 0 picks one, see [`MetricsServer::local_addr`]). The server stops when dropped.
pub fn serve_metrics(
    config: &PrometheusConfig,
    registry: Registry,
    addr: Option<&str>,
) -> Result<MetricsServer, PipelineError> {
    let addr = addr.unwrap_or(&config.listen_addr);
    let token = bearer_token(config)?;
    Ok(MetricsServer::start(addr, registry, token)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_configured_token_that_is_missing_is_an_error_naming_the_variable() {
        let config = PrometheusConfig {
            bearer_token_env: Some("SIGHTLINE_PIPELINE_TEST_TOKEN_NEVER_SET".into()),
            ..PrometheusConfig::default()
        };
        let e = bearer_token(&config).unwrap_err();
        assert!(
            matches!(&e, PipelineError::MissingToken { var } if var == "SIGHTLINE_PIPELINE_TEST_TOKEN_NEVER_SET"),
            "{e:?}"
        );
        assert_eq!(bearer_token(&PrometheusConfig::default()).unwrap(), None);
    }

    #[test]
    fn the_endpoint_serves_the_registry_on_the_address_given() {
        let registry = Registry::new();
        let counter =
            prometheus::IntCounter::new("pipeline_test_total", "A test counter.").unwrap();
        counter.inc_by(3);
        registry.register(Box::new(counter)).unwrap();
        let server =
            serve_metrics(&PrometheusConfig::default(), registry, Some("127.0.0.1:0")).unwrap();
        let addr = server.local_addr();
        assert_ne!(addr.port(), 0);
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut body = String::new();
        stream.read_to_string(&mut body).unwrap();
        assert!(body.contains("pipeline_test_total 3"), "{body}");
    }
}
