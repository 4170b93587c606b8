//! The alert rules in `config/alerts/` pass the real `promtool check rules`, their unit tests
//! pass `promtool test rules` (every alert, firing and not firing), and every rule has a
//! summary, a description and a runbook section that exists.

use std::process::Command;

use sightline_tests::workspace_root;

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
    let tests = std::fs::read_to_string(dir.join("sightline.rules.test.yml")).unwrap();
    let runbook = std::fs::read_to_string(dir.join("RUNBOOK.md")).unwrap();
    let alerts: Vec<&str> = rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert: "))
        .collect();
    assert!(alerts.len() >= 9, "{alerts:?}");
    for alert in alerts {
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
        assert!(
            tests.matches(&format!("alertname: {alert}\n")).count() >= 2,
            "{alert} is not tested both firing and not firing"
        );
    }
}
