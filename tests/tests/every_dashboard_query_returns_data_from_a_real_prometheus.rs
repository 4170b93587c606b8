//! A real Prometheus scrapes a running `sightline demo`; then every PromQL expression of every
//! panel and variable of every dashboard in `dashboards/` (with the dashboard variables
//! substituted) parses and returns data through Prometheus's HTTP API: all 55 of them, counted
//! apart from the walk that collects them (every `expr` anywhere in a dashboard's panels, rows
//! included, and every query variable), so a query the walk missed fails. The dashboards also
//! keep their promises: a title, a description and a unit on every panel, the `datasource`,
//! `job`, `instance` and `agent_class` variables, `$__rate_interval` in every range, and the
//! committed JSON is what `dashboards/build.py` writes.

use std::time::Duration;

use serde_json::Value;

use sightline_tests::real::{self, query, wait_until};
use sightline_tests::{scratch_dir, workspace_root};

fn substitute(expr: &str) -> String {
    expr.replace("$__rate_interval", "1m")
        .replace("$job", ".*")
        .replace("$instance", ".*")
        .replace("$agent_class", ".*")
}

/// Grafana's `label_values(selector, label)` as PromQL: the series it would list.
fn variable_query(q: &str) -> String {
    let inner = q
        .strip_prefix("label_values(")
        .and_then(|r| r.strip_suffix(')'))
        .unwrap_or(q);
    let (selector, label) = inner.rsplit_once(',').unwrap_or((inner, "job"));
    format!(
        "count by ({}) ({})",
        label.trim(),
        substitute(selector.trim())
    )
}

/// The dashboards' queries: panels' and query variables' (README says so; change both together).
const QUERIES: usize = 55;

/// Every PromQL expression under `v`, wherever it sits: the `expr` of each target, at any
/// depth (a row's nested panels included).
fn exprs_in(v: &Value) -> usize {
    match v {
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| {
                if k == "expr" && v.is_string() {
                    1
                } else {
                    exprs_in(v)
                }
            })
            .sum(),
        Value::Array(a) => a.iter().map(exprs_in).sum(),
        _ => 0,
    }
}

#[test]
fn every_dashboard_query_returns_data_from_a_real_prometheus() {
    // The committed JSON is the generator's output.
    let dir = scratch_dir("dashboards-prometheus").unwrap();
    let fresh = dir.join("generated");
    std::fs::create_dir_all(&fresh).unwrap();
    let status = std::process::Command::new("python3")
        .arg(workspace_root().join("dashboards/build.py"))
        .arg(&fresh)
        .status()
        .unwrap();
    assert!(status.success());
    let dashboards = real::dashboards().unwrap();
    assert_eq!(dashboards.len(), 4);
    let mut queries = Vec::new();
    let mut expected = 0;
    for (path, d) in &dashboards {
        expected += exprs_in(&d["panels"])
            + d["templating"]["list"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|v| v["type"] == "query")
                .count();
        let name = path.file_name().unwrap();
        let generated: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(fresh.join(name)).unwrap()).unwrap();
        assert_eq!(
            &generated, d,
            "{name:?} is stale: run python3 dashboards/build.py"
        );
        let vars: Vec<&str> = d["templating"]["list"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            vars,
            ["datasource", "job", "instance", "agent_class"],
            "{name:?}"
        );
        for v in d["templating"]["list"].as_array().unwrap().iter().skip(1) {
            queries.push((
                format!("{name:?} variable {}", v["name"]),
                variable_query(v["query"]["query"].as_str().unwrap()),
            ));
        }
        for panel in d["panels"].as_array().unwrap() {
            let title = panel["title"].as_str().unwrap_or("");
            assert!(!title.is_empty(), "{name:?}: a panel without a title");
            assert!(
                !panel["description"].as_str().unwrap_or("").is_empty(),
                "{name:?} {title}: no description"
            );
            assert!(
                !panel["fieldConfig"]["defaults"]["unit"]
                    .as_str()
                    .unwrap_or("")
                    .is_empty(),
                "{name:?} {title}: no unit"
            );
            for t in panel["targets"].as_array().unwrap() {
                let expr = t["expr"].as_str().unwrap();
                if expr.contains("rate(") || expr.contains("increase(") {
                    assert!(expr.contains("$__rate_interval"), "{title}: {expr}");
                }
                queries.push((format!("{name:?} panel {title:?}"), substitute(expr)));
            }
        }
    }

    // The walk above took every query there is, and there are as many as the README says.
    assert_eq!(queries.len(), expected, "queries the walk collected");
    assert_eq!(queries.len(), QUERIES, "the dashboards' queries");

    let receiver = sightline_otlp::receiver::Receiver::start(false).unwrap();
    let demo = real::demo(
        &dir,
        &[
            "--duration",
            "20",
            "--agents",
            "80",
            "--rate",
            "3000",
            "--serve-after-secs",
            "90",
            // The OTLP panels need an exporter running.
            "--otlp",
            &receiver.grpc_url(),
        ],
    )
    .unwrap();
    let prom = real::prometheus(&dir, &demo.addr, None).unwrap();
    // Wait for several scrapes, so one-minute rates have samples to work with, and past the
    // demo's mid-run restart (at 10 s), whose missed cron runs one panel shows.
    wait_until(Duration::from_secs(60), || {
        let d = query(&prom.addr, "count_over_time(up{job=\"sightline\"}[1m])")?;
        Ok(d["result"][0]["value"][1]
            .as_str()
            .and_then(|v| v.parse::<f64>().ok())
            .is_some_and(|n| n >= 16.0))
    })
    .unwrap();
    let mut failures = Vec::new();
    for (what, expr) in &queries {
        match query(&prom.addr, expr) {
            Ok(d) if d["result"].as_array().is_some_and(|r| !r.is_empty()) => {}
            Ok(_) => failures.push(format!("{what}: no data for {expr}")),
            Err(e) => failures.push(format!("{what}: {e}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} queries failed:\n{}",
        failures.len(),
        queries.len(),
        failures.join("\n")
    );
}
