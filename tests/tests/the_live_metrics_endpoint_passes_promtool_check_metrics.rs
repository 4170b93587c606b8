//! While `sightline demo` runs, its `/metrics` endpoint serves metrics that the real
//! `promtool check metrics` finds clean (no parse error, no lint warning), that carry no agent
//! instance name as a label, and that include the pipeline's own health per sink.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};

use sightline_tests::{scratch_dir, sightline_bin};

fn get(addr: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let body = out.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    body.to_owned()
}

#[test]
fn the_live_metrics_endpoint_passes_promtool_check_metrics() {
    let promtool = which("promtool")
        .expect("promtool is needed (Debian package `prometheus`; scripts/test installs it)");
    let dir = scratch_dir("promtool-metrics").unwrap();
    let mut demo = Command::new(sightline_bin().unwrap())
        .args([
            "--data-dir",
            dir.to_str().unwrap(),
            "demo",
            "--duration",
            "2",
            "--agents",
            "60",
        ])
        .args([
            "--rate",
            "4000",
            "--metrics-addr",
            "127.0.0.1:0",
            "--serve-after-secs",
            "5",
        ])
        .env_remove("SIGHTLINE_CONFIG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(demo.stderr.take().unwrap());
    let mut addr = None;
    for line in stderr.lines().map_while(Result::ok) {
        if let Some(url) = line.strip_prefix("metrics: http://") {
            addr = Some(url.trim_end_matches("/metrics").to_owned());
        }
        if line.starts_with("fleet stopped") {
            break;
        }
    }
    let addr = addr.expect("the demo printed no metrics URL");
    let body = get(&addr);
    demo.wait().unwrap();

    let mut check = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    check
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = check.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics (exit {:?}):\n{}{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for needle in [
        "sightline_rpc_calls_total{",
        "sightline_schedule_retries_exhausted_total{",
        "sightline_model_tokens_total{",
        "sightline_sink_events_delivered_total{sink=\"archive\"}",
        "sightline_sink_queue_capacity{sink=\"prometheus\"}",
        "sightline_redactions_total{",
    ] {
        assert!(body.contains(needle), "no {needle} in:\n{body}");
    }
    // Instance names (ticket-4001, user-7, tenant-3, research-12) never become labels.
    for instance in ["\"ticket-", "\"user-", "\"tenant-", "\"research-"] {
        assert!(
            !body.contains(instance),
            "an instance name is a label value: {instance}"
        );
    }
}

fn which(cmd: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(cmd))
            .find(|p| p.is_file())
    })
}
