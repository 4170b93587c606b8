//! With nothing but the standard environment variables — `OTEL_EXPORTER_OTLP_ENDPOINT`
//! (`https://`), `OTEL_EXPORTER_OTLP_CERTIFICATE`, `OTEL_EXPORTER_OTLP_HEADERS` and
//! `OTEL_EXPORTER_OTLP_COMPRESSION` — the OTLP sink exports over TLS to a receiver whose
//! certificate only that CA file vouches for, sends the auth headers, and compresses with
//! gzip. Without the CA file the same receiver is not trusted: nothing is delivered, and the
//! events are counted as given up.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use sightline_event::Rpc;
use sightline_otlp::receiver::Receiver;
use sightline_otlp::{OtlpConfig, OtlpStats};
use sightline_tests::otlp::{lossless_runner, otlp_pipeline};
use sightline_tests::scratch_dir;

fn export(env: &BTreeMap<String, String>, config: &OtlpConfig, n: u64) -> OtlpStats {
    let p = otlp_pipeline(config, env, lossless_runner());
    let agent = p.bus.emitter("Support", "t-1");
    for _ in 0..n {
        agent.emit_with(|m| {
            m.duration_ns = Some(1000);
            Rpc {
                method: "getTicket".into(),
                ..Default::default()
            }
        });
    }
    p.pipeline.flush(Duration::from_secs(10));
    assert!(
        p.stats.wait_idle(Duration::from_secs(20)),
        "{:?}",
        p.stats.stats()
    );
    p.pipeline.shutdown(Duration::from_secs(5));
    p.stats.stats()
}

#[test]
fn otlp_export_honours_tls_auth_headers_and_gzip_from_the_environment() {
    let dir = scratch_dir("otlp-tls").unwrap();
    // A test CA, and a server certificate for 127.0.0.1 it signed.
    let (ca, cert, key) = (
        dir.join("ca.pem"),
        dir.join("cert.pem"),
        dir.join("key.pem"),
    );
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(&dir)
            .output()
            .expect("openssl (scripts/test installs it)");
        assert!(out.status.success(), "openssl {args:?}: {out:?}");
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=sightline-test-ca",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=localhost",
        "-keyout",
        "key.pem",
        "-out",
        "server.csr",
    ]);
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        "ext.cnf",
        "-out",
        "cert.pem",
    ]);
    let receiver = Receiver::start_tls(
        std::fs::read(&cert).unwrap(),
        std::fs::read(&key).unwrap(),
        false,
    )
    .unwrap();
    assert!(receiver.grpc_url().starts_with("https://"));

    let mut env: BTreeMap<String, String> = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.grpc_url()),
        (
            "OTEL_EXPORTER_OTLP_HEADERS",
            "Authorization=Bearer%20s3cr3t-token,X-Tenant=acme".to_owned(),
        ),
        ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip".to_owned()),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let untrusted = OtlpConfig {
        retry_initial_backoff_ms: 20,
        retry_max_backoff_ms: 50,
        retry_max_elapsed_ms: 300,
        ..Default::default()
    };

    // Without the CA: refused, counted as given up, never delivered.
    let s = export(&env, &untrusted, 20);
    assert_eq!((s.delivered, s.gave_up), (0, 20), "{s:?}");
    assert_eq!(receiver.spans(), 0);

    // With it: delivered, with the headers, gzip-compressed.
    env.insert(
        "OTEL_EXPORTER_OTLP_CERTIFICATE".into(),
        ca.display().to_string(),
    );
    let s = export(&env, &OtlpConfig::default(), 100);
    assert_eq!((s.delivered, s.lost()), (100, 0), "{s:?}");
    assert_eq!(receiver.spans(), 100);
    let meta = receiver.last_metadata();
    let get = |k: &str| {
        meta.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("no {k} header in {meta:?}"))
    };
    assert_eq!(get("authorization"), "Bearer s3cr3t-token");
    assert_eq!(get("x-tenant"), "acme");
    assert_eq!(get("grpc-encoding"), "gzip");
}
