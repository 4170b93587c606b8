//! A workload whose scheduled callbacks fail repeatedly (the demo's fleet, where schedules
//! exhaust their retries) makes the real Prometheus, evaluating `config/alerts/`, put
//! `SightlineScheduleRetriesExhausted` into pending and then firing; and the real Alertmanager
//! receives it.

use std::time::Duration;

use sightline_tests::real::{self, http_get, query, wait_until};
use sightline_tests::scratch_dir;

const ALERT: &str = "SightlineScheduleRetriesExhausted";

fn alert_states(prometheus: &str) -> anyhow::Result<Vec<String>> {
    let d = query(prometheus, &format!("ALERTS{{alertname=\"{ALERT}\"}}"))?;
    Ok(d["result"]
        .as_array()
        .map(|r| {
            r.iter()
                .filter_map(|s| s["metric"]["alertstate"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default())
}

#[test]
fn a_failing_schedule_fires_its_alert_through_prometheus_to_alertmanager() {
    let dir = scratch_dir("alert-firing").unwrap();
    let am = real::alertmanager(&dir).unwrap();
    let demo = real::demo(
        &dir,
        &[
            "--duration",
            "10",
            "--agents",
            "60",
            "--rate",
            "3000",
            "--serve-after-secs",
            "170",
        ],
    )
    .unwrap();
    let prom = real::prometheus(&dir, &demo.addr, Some(&am.addr)).unwrap();

    // Some schedule exhausted its retries: the alert is pending before its `for: 1m` passes.
    wait_until(Duration::from_secs(60), || {
        Ok(alert_states(&prom.addr)?.iter().any(|s| s == "pending"))
    })
    .expect("the alert never went pending");
    // Then firing.
    wait_until(Duration::from_secs(100), || {
        Ok(alert_states(&prom.addr)?.iter().any(|s| s == "firing"))
    })
    .expect("the alert never fired");
    // And Alertmanager has it, with its labels and annotations.
    wait_until(Duration::from_secs(60), || {
        let (status, body) = http_get(&am.addr, "/api/v2/alerts")?;
        let alerts: serde_json::Value = serde_json::from_str(&body)?;
        Ok(status == 200
            && alerts.as_array().is_some_and(|a| {
                a.iter().any(|x| {
                    x["labels"]["alertname"] == ALERT
                        && x["labels"]["severity"] == "critical"
                        && x["labels"]["callback"].is_string()
                        && x["annotations"]["runbook_url"]
                            .as_str()
                            .is_some_and(|u| u.contains("RUNBOOK.md#"))
                })
            }))
    })
    .expect("Alertmanager never received the alert");
}
