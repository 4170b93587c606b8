//! Sightline's OTLP export goes through a collector nobody here wrote — Rotel, the Rust
//! OpenTelemetry collector, installed from PyPI (`pip install --pre rotel`) — over gRPC and
//! over HTTP/protobuf on loopback. Rotel forwards with its own OTLP exporter to a decoder
//! written with Python's `opentelemetry-proto` package (`tests/otlp_decoder.py`), and every
//! record arrives intact: the same names, kinds, ids, parents, times, severities, bodies and
//! attributes Sightline mapped, and no planted secret.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use opentelemetry_proto::tonic::common::v1::{any_value::Value as Any, AnyValue, KeyValue};
use serde_json::{json, Value};
use sightline_otlp::map::{signals, Mapper};
use sightline_otlp::{OtlpConfig, Protocol};
use sightline_tests::otlp::{every_kind, lossless_runner, otlp_pipeline, request_trace, SECRETS};
use sightline_tests::real::{free_port, wait_until};
use sightline_tests::{scratch_dir, workspace_root};

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn rotel_agent() -> anyhow::Result<String> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import rotel, os; print(os.path.join(os.path.dirname(rotel.__file__), 'rotel-agent'))",
        ])
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "Rotel is not installed (pip install --pre rotel; scripts/test does it)"
    );
    Ok(String::from_utf8(out.stdout)?.trim().to_owned())
}

fn any(v: Option<&AnyValue>) -> Value {
    match v.and_then(|v| v.value.as_ref()) {
        None => Value::Null,
        Some(Any::StringValue(s)) => json!(s),
        Some(Any::BoolValue(b)) => json!(b),
        Some(Any::IntValue(i)) => json!(i),
        Some(Any::DoubleValue(d)) => json!(d),
        Some(Any::BytesValue(b)) => json!(b.iter().map(|x| format!("{x:02x}")).collect::<String>()),
        Some(Any::ArrayValue(a)) => Value::Array(a.values.iter().map(|v| any(Some(v))).collect()),
        Some(Any::KvlistValue(l)) => attrs(&l.values),
        Some(_) => Value::Null,
    }
}

fn attrs(kvs: &[KeyValue]) -> Value {
    Value::Object(
        kvs.iter()
            .map(|kv| (kv.key.clone(), any(kv.value.as_ref())))
            .collect(),
    )
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// What Sightline sends for the scenario, normalized as the Python decoder prints it, keyed by
/// (signal, event id).
fn expected() -> BTreeMap<(String, String), Value> {
    let policies = sightline_redact::build_policies(&BTreeMap::new()).unwrap();
    let mapper = Mapper {
        traces_enabled: true,
        capture_content: false,
    };
    let mut out = BTreeMap::new();
    for mut e in request_trace().into_iter().chain(every_kind()) {
        policies["otlp"].redact_event(&mut e);
        let id = e.id.to_string();
        let s = signals(&e, true);
        if s.log {
            let r = mapper.log(&e);
            out.insert(
                ("logs".into(), id.clone()),
                json!({
                    "event_name": r.event_name,
                    "time_unix_nano": r.time_unix_nano,
                    "severity_number": r.severity_number,
                    "severity_text": r.severity_text,
                    "trace_id": hex(&r.trace_id),
                    "span_id": hex(&r.span_id),
                    "body": any(r.body.as_ref()),
                    "attributes": attrs(&r.attributes),
                }),
            );
        }
        if s.span {
            let sp = mapper.span(&e);
            let status = sp.status.clone().unwrap_or_default();
            out.insert(
                ("traces".into(), id),
                json!({
                    "name": sp.name,
                    "kind": sp.kind,
                    "trace_id": hex(&sp.trace_id),
                    "span_id": hex(&sp.span_id),
                    "parent_span_id": hex(&sp.parent_span_id),
                    "start_time_unix_nano": sp.start_time_unix_nano,
                    "end_time_unix_nano": sp.end_time_unix_nano,
                    "status_code": status.code,
                    "status_message": status.message,
                    "attributes": attrs(&sp.attributes),
                }),
            );
        }
    }
    out
}

fn export(url: String, protocol: Protocol, instance: &str) {
    let config = OtlpConfig {
        endpoint: Some(url),
        protocol: Some(protocol),
        service_name: Some("sightline-rotel-e2e".into()),
        service_instance_id: Some(instance.into()),
        batch_max_events: 16,
        ..Default::default()
    };
    let p = otlp_pipeline(&config, &BTreeMap::new(), lossless_runner());
    let events: Vec<_> = request_trace().into_iter().chain(every_kind()).collect();
    let n = events.len() as u64;
    p.bus.publish_batch(events);
    p.pipeline.shutdown(Duration::from_secs(30));
    let s = p.stats.stats();
    assert_eq!(
        (s.delivered, s.lost()),
        (n, 0),
        "{protocol:?} export: {s:?}"
    );
}

#[test]
fn a_real_collector_forwards_sightlines_otlp_intact() -> anyhow::Result<()> {
    let dir = scratch_dir("rotel")?;
    // The independent decoder.
    let mut decoder = Command::new("python3")
        .arg(workspace_root().join("tests/otlp_decoder.py"))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("python3 with opentelemetry-proto and grpcio (scripts/test installs them)")?;
    let mut lines = BufReader::new(decoder.stdout.take().context("stdout")?).lines();
    let _decoder = Killed(decoder);
    let first = lines.next().context("the decoder exited")??;
    let decoder_port: u16 = first
        .strip_prefix("listening ")
        .context("unexpected decoder output")?
        .parse()?;
    let received: Arc<Mutex<Vec<Value>>> = Arc::default();
    let sink = received.clone();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str::<Value>(&line) {
                sink.lock().unwrap().push(v);
            }
        }
    });

    // The collector, forwarding everything to the decoder.
    let (grpc_port, http_port) = (free_port()?, free_port()?);
    let rotel = Command::new(rotel_agent()?)
        .args([
            "start",
            "--exporter",
            "otlp",
            "--otlp-exporter-protocol",
            "grpc",
        ])
        .arg("--otlp-grpc-endpoint")
        .arg(format!("127.0.0.1:{grpc_port}"))
        .arg("--otlp-http-endpoint")
        .arg(format!("127.0.0.1:{http_port}"))
        .arg("--otlp-exporter-endpoint")
        .arg(format!("http://127.0.0.1:{decoder_port}"))
        .args(["--batch-timeout", "100ms"])
        .arg("--pid-file")
        .arg(dir.join("rotel.pid"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let _rotel = Killed(rotel);
    wait_until(Duration::from_secs(20), || {
        Ok(
            std::net::TcpStream::connect(("127.0.0.1", grpc_port)).is_ok()
                && std::net::TcpStream::connect(("127.0.0.1", http_port)).is_ok(),
        )
    })?;

    export(
        format!("http://127.0.0.1:{grpc_port}"),
        Protocol::Grpc,
        "via-grpc",
    );
    export(
        format!("http://127.0.0.1:{http_port}"),
        Protocol::HttpProtobuf,
        "via-http",
    );

    let want = expected();
    let per_run = want.len();
    wait_until(Duration::from_secs(30), || {
        Ok(received.lock().unwrap().len() >= 2 * per_run)
    })
    .with_context(|| {
        format!(
            "only {} of {} records came through the collector",
            received.lock().unwrap().len(),
            2 * per_run
        )
    })?;
    std::thread::sleep(Duration::from_millis(300));
    let got = received.lock().unwrap().clone();
    assert_eq!(got.len(), 2 * per_run, "duplicates came through");

    for instance in ["via-grpc", "via-http"] {
        let mut seen = BTreeSet::new();
        for v in got
            .iter()
            .filter(|v| v["resource"]["service.instance.id"] == instance)
        {
            assert_eq!(v["resource"]["service.name"], "sightline-rotel-e2e");
            let signal = v["signal"].as_str().unwrap().to_owned();
            let record = &v["record"];
            let id = record["attributes"]["sightline.event.id"]
                .as_str()
                .context("a record without sightline.event.id")?
                .to_owned();
            let key = (signal, id);
            let expected = want
                .get(&key)
                .with_context(|| format!("unexpected record {key:?}: {record}"))?;
            assert_eq!(record, expected, "{instance}: {key:?} changed on the way");
            assert!(seen.insert(key.clone()), "{instance}: {key:?} twice");
        }
        assert_eq!(seen.len(), per_run, "{instance}: records missing");
    }
    let text = serde_json::to_string(&got)?;
    for secret in SECRETS {
        assert!(
            !text.contains(secret),
            "{secret} went through the collector"
        );
    }
    Ok(())
}
