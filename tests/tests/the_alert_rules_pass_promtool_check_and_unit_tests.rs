//! The alert rules in `config/alerts/` pass the real `promtool check rules`, their unit tests
//! pass `promtool test rules`, and every one of the 11 alert rules has a unit test case where it
//! fires (`exp_alerts` not empty) and one where it does not (`exp_alerts: []`), read from the
//! YAML itself (parsed by Python's PyYAML); every rule has a summary, a description and a
//! runbook section that exists.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};

use sightline_tests::workspace_root;

/// The alert rules in `sightline.rules.yml`.
const ALERTS: usize = 11;

/// Prints, as JSON, the alert rules' names (in file order) and, per alert name, how many unit
/// test cases expect it to fire and how many expect silence (`[fires, silent]`).
const PARSE: &str = r#"
import json, sys, yaml
rules = yaml.safe_load(open("sightline.rules.yml"))
tests = yaml.safe_load(open("sightline.rules.test.yml"))
alerts = [r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r]
cases = {}
for t in tests["tests"]:
    for case in t.get("alert_rule_test") or []:
        c = cases.setdefault(case["alertname"], [0, 0])
        c[0 if case.get("exp_alerts") else 1] += 1
print(json.dumps({"alerts": alerts, "cases": cases}))
"#;

#[test]
fn the_alert_rules_pass_promtool_check_and_unit_tests() {
    let dir = workspace_root().join("config/alerts");
    for args in [
        vec!["check", "rules", "sightline.rules.yml"],
        vec!["test", "rules", "sightline.rules.test.yml"],
    ] {
        let out = Command::new("promtool")
            .args(&args)
            .current_dir(&dir)
            .output()
            .expect("promtool is needed (Debian package `prometheus`; scripts/test installs it)");
        assert!(
            out.status.success(),
            "promtool {args:?}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let rules = std::fs::read_to_string(dir.join("sightline.rules.yml")).unwrap();
    let runbook = std::fs::read_to_string(dir.join("RUNBOOK.md")).unwrap();
    let parse = Command::new("python3")
        .args(["-c", PARSE])
        .current_dir(&dir)
        .stderr(Stdio::piped())
        .output()
        .expect("python3 is needed (with PyYAML: Debian python3-yaml) to read the rule files");
    assert!(
        parse.status.success(),
        "parsing the rule files: {}",
        String::from_utf8_lossy(&parse.stderr)
    );
    let parsed: serde_json::Value = serde_json::from_slice(&parse.stdout).unwrap();
    let alerts: Vec<String> = serde_json::from_value(parsed["alerts"].clone()).unwrap();
    let cases: BTreeMap<String, [u64; 2]> =
        serde_json::from_value(parsed["cases"].clone()).unwrap();
    assert_eq!(alerts.len(), ALERTS, "{alerts:?}");
    // The line-level view agrees with the parser's: no rule hidden from either.
    assert_eq!(
        rules
            .lines()
            .filter(|l| l.trim().starts_with("- alert: "))
            .count(),
        ALERTS
    );
    // Every case tests a rule that exists.
    for name in cases.keys() {
        assert!(alerts.contains(name), "a unit test of no rule: {name}");
    }
    for alert in &alerts {
        let section = &rules[rules.find(&format!("- alert: {alert}")).unwrap()..];
        let section = &section[..section[1..]
            .find("- alert:")
            .map_or(section.len(), |i| i + 1)];
        for key in ["summary:", "description:", "runbook_url:"] {
            assert!(section.contains(key), "{alert} has no {key}");
        }
        let anchor = format!("RUNBOOK.md#{}", alert.to_lowercase());
        assert!(
            section.contains(&anchor),
            "{alert}'s runbook_url is not {anchor}"
        );
        assert!(
            runbook.contains(&format!("## {alert}\n")),
            "no runbook section for {alert}"
        );
        let [fires, silent] = cases
            .get(alert.as_str())
            .copied()
            .unwrap_or_else(|| panic!("{alert} has no unit test"));
        assert!(fires > 0, "{alert} is never tested firing");
        assert!(silent > 0, "{alert} is never tested not firing");
    }
}
