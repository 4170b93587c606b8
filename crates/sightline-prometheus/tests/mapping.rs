//! Events map onto the right series: folds are counted on every path, destroyed agents leave
//! the gauges, the tools gauge ignores prompt and resource discovery, lateness is observed
//! once per run.

use prometheus::Registry;
use sightline_event::*;
use sightline_prometheus::{render_text, EventMetrics};

fn line_value(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[test]
fn folds_are_counted_on_the_cached_path_too() {
    let registry = Registry::new();
    let mut m = EventMetrics::new(&registry, 2, 100).unwrap();
    for _ in 0..2 {
        for i in 0..5 {
            let rpc = Rpc {
                method: format!("m{i}").into(),
                ..Default::default()
            };
            m.record(&Event::new(AgentRef::new("A", "a"), 1, rpc).with_outcome(Outcome::Ok));
        }
    }
    let text = render_text(&registry);
    let folded = line_value(
        &text,
        "sightline_metric_series_overflow_total{metric=\"sightline_rpc_calls_total\"}",
    );
    assert_eq!(folded, Some(6.0), "{text}");
    let overflow = line_value(
        &text,
        "sightline_rpc_calls_total{agent_class=\"__overflow__\",method=\"__overflow__\",outcome=\"__overflow__\"}",
    );
    assert_eq!(overflow, Some(6.0), "{text}");
}

#[test]
fn lifecycle_discovery_and_lateness_update_the_right_series() {
    let registry = Registry::new();
    let mut m = EventMetrics::new(&registry, 100, 100).unwrap();
    let a = AgentRef::new("Support", "t-1");
    m.record(&Event::new(a.clone(), 1, AgentWake::default()));
    m.record(&Event::new(a.clone(), 2, AgentHibernate::default()));
    let text = render_text(&registry);
    assert_eq!(
        line_value(
            &text,
            "sightline_agents_hibernated{agent_class=\"Support\"}"
        ),
        Some(1.0)
    );
    m.record(&Event::new(a.clone(), 3, Destroy::default()));
    let text = render_text(&registry);
    assert_eq!(
        line_value(
            &text,
            "sightline_agents_hibernated{agent_class=\"Support\"}"
        ),
        Some(0.0)
    );
    assert_eq!(
        line_value(&text, "sightline_agents_active{agent_class=\"Support\"}"),
        Some(0.0)
    );

    for (capability, count) in [(Some("tools"), 7), (Some("prompts"), 2), (None, 9)] {
        m.record(&Event::new(
            a.clone(),
            4,
            McpClientDiscover {
                server_id: "s".into(),
                server_name: "orders".into(),
                capability: capability.map(Into::into),
                count: Some(count),
                ..Default::default()
            },
        ));
        if capability == Some("prompts") {
            let text = render_text(&registry);
            assert_eq!(
                line_value(
                    &text,
                    "sightline_mcp_tools_discovered{agent_class=\"Support\",server=\"orders\"}"
                ),
                Some(7.0)
            );
        }
    }
    for attempt in 1..=3 {
        m.record(&Event::new(
            a.clone(),
            5,
            ScheduleExecute {
                callback: "digest".into(),
                id: "s1".into(),
                attempt,
                lateness_ms: 1500,
            },
        ));
    }
    let text = render_text(&registry);
    assert_eq!(
        line_value(
            &text,
            "sightline_schedule_lateness_seconds_count{agent_class=\"Support\"}"
        ),
        Some(1.0)
    );
}
