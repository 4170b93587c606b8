//! Secrets planted in every kind of field an agent fills — error texts, tool arguments, OAuth
//! and MCP URLs, email addresses, state diffs, approval prompts, the agent's own instance
//! name — never reach a sink running under a redacting policy (`default`, `archive`, `otlp`,
//! `metrics`), and the archive policy's HMAC key reaches none either.

use std::collections::BTreeMap;
use std::time::Duration;

use sightline_bus::Bus;
use sightline_event::*;
use sightline_redact::{build_policies, PolicyConfig};
use sightline_sink::{MemorySink, Pipeline, RunnerConfig};

const KEY: &str = "e2e-hmac-key-never-in-output-7f3a9c";

const SECRETS: &[&str] = &[
    "jane.doe@example.com",
    "4111 1111 1111 1111",
    "sk-proj-Zx8Qw2Er4Ty6Ui8Op0As2Df4Gh",
    "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
    "AKIAIOSFODNN7EXAMPLE",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    "xoxb-123456789012-abcdefghijkl",
    "+14155552671",
    "123-45-6789",
    "DE89370400440532013000",
    "10.1.2.3",
    "oauth-state-Q29kZVZlcmlmaWVy",
];

fn emit_everything(bus: &Bus) {
    let agent = bus.emitter("SupportAgent", "user-jane.doe@example.com");
    let all = SECRETS.join(" | ");
    agent.emit(|| RpcError {
        method: "refund".into(),
        error: format!("failed: {all}").into(),
        ..Default::default()
    });
    agent.emit(|| ToolCall {
        tool_call_id: "c1".into(),
        tool_name: "lookup_order".into(),
        arguments: Some(Sensitive(serde_json::json!({
            "email": SECRETS[0],
            "card": SECRETS[1],
            "headers": {"Authorization": format!("Bearer {}", SECRETS[2])},
            "nested": [{"token": SECRETS[3]}, format!("aws {}", SECRETS[4])],
            "stringified": serde_json::json!({"jwt": SECRETS[5]}).to_string(),
        }))),
        ..Default::default()
    });
    agent.emit(|| McpClientAuthorize {
        server_id: "srv_1".into(),
        auth_url: format!(
            "https://auth.example/authorize?client_id=a&state={}&login_hint={}",
            SECRETS[11], SECRETS[0]
        )
        .into(),
    });
    agent.emit(|| McpClientConnect {
        server_id: "srv_1".into(),
        server_name: "slack".into(),
        url: format!("https://mcp.example/sse?token={}", SECRETS[6]).into(),
        transport: McpTransport::StreamableHttp,
        state: McpState::Failed,
        error: Some(format!("connect {} refused", SECRETS[10]).into()),
    });
    agent.emit(|| EmailReceive {
        from: SECRETS[0].into(),
        to: "support@agents.example".into(),
        subject: Some(format!("call me at {}", SECRETS[7]).into()),
    });
    agent.emit(|| StateUpdate {
        version: 3,
        changed_paths: vec!["/profile".into()],
        size_bytes: 100,
        diff: Some(Sensitive(
            serde_json::json!([{"op": "add", "path": "/profile/ssn", "value": SECRETS[8]}]).into(),
        )),
        source: Some("server".into()),
    });
    agent.emit(|| ApprovalRequested {
        approval_id: "apr_1".into(),
        action: "refund".into(),
        prompt: Some(format!("Refund to IBAN {}?", SECRETS[9]).into()),
        ..Default::default()
    });
}

#[test]
fn no_planted_secret_reaches_any_sink() {
    let dir = std::env::temp_dir().join(format!("sightline-e2e-key-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key_file = dir.join("key");
    std::fs::write(&key_file, KEY).unwrap();
    let mut configured = BTreeMap::new();
    let mut archive = PolicyConfig::builtin()
        .into_iter()
        .find(|(n, _)| *n == "archive")
        .unwrap()
        .1;
    archive.hash_key_file = Some(key_file.clone());
    archive.require_hash_key = true;
    configured.insert("archive".to_owned(), archive);

    let bus = Bus::new();
    let mut pipeline = Pipeline::with_policies(bus.clone(), build_policies(&configured).unwrap());
    let mut handles = Vec::new();
    for policy in ["default", "archive", "otlp", "metrics"] {
        let (sink, handle) = MemorySink::new(1000);
        let cfg = RunnerConfig {
            policy: policy.into(),
            ..RunnerConfig::default()
        };
        pipeline.add(policy, Box::new(sink), cfg).unwrap();
        handles.push((policy, handle));
    }
    emit_everything(&bus);
    let reports = pipeline.shutdown(Duration::from_secs(10));
    assert!(reports.iter().all(|r| r.finished && r.undelivered == 0));

    for (policy, handle) in handles {
        let events = handle.events();
        assert_eq!(events.len(), 7, "{policy}");
        let text: String = events.iter().map(|e| e.to_json_line() + "\n").collect();
        for secret in SECRETS {
            assert!(
                !text.contains(secret),
                "{policy} leaked {secret:?}:\n{text}"
            );
            let pct: String = form_urlencoded_encode(secret);
            assert!(!text.contains(&pct), "{policy} leaked {pct:?}:\n{text}");
        }
        assert!(!text.contains(KEY), "{policy} leaked the HMAC key");
        assert!(
            events.iter().all(|e| e.redaction.is_some()),
            "{policy}: every event here had something to redact"
        );
        let stats = reports.iter().find(|r| r.name == policy).unwrap();
        assert_eq!(stats.stats.events_redacted, 7, "{policy}");
        assert!(!stats.stats.redactions.is_empty());
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn form_urlencoded_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                (b as char).to_string()
            }
            b' ' => "+".to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
