//! `sightline redact` turns JSONL with secrets into JSONL without them, line for line; a
//! malformed line stops it with the line number unless `--skip-invalid`, which counts it;
//! a line that is not UTF-8 is redacted and marked, never passed through.

use std::io::Write;
use std::process::{Command, Stdio};

use sightline_event::{AgentRef, Event, RpcError, Sensitive, ToolCall};
use sightline_tests::sightline_bin;

fn lines() -> Vec<String> {
    let a = AgentRef::new("Support", "t-1");
    vec![
        Event::new(
            a.clone(),
            1,
            RpcError {
                method: "refund".into(),
                error: "card 5555 5555 5555 4444 declined for ann@example.org".into(),
                ..Default::default()
            },
        )
        .to_json_line(),
        Event::new(
            a,
            2,
            ToolCall {
                tool_call_id: "c".into(),
                tool_name: "search".into(),
                arguments: Some(Sensitive(
                    serde_json::json!({"q": "x", "key": "sk-ant-api03-abcdefghijklmnopqrstuv"}),
                )),
                ..Default::default()
            },
        )
        .to_json_line(),
    ]
}

fn run(args: &[&str], input: &[u8]) -> (i32, String, String) {
    let mut child = Command::new(sightline_bin().unwrap())
        .arg("redact")
        .args(args)
        .env_remove("SIGHTLINE_CONFIG")
        .env("SIGHTLINE_HASH_KEY", "cli-test-key-0123456789abcdef")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn sightline_redact_makes_an_archive_safe_to_share() {
    let input = lines().join("\n") + "\n";
    for policy in ["default", "archive", "otlp"] {
        let (code, out, err) = run(&["--policy", policy], input.as_bytes());
        assert_eq!(code, 0, "{err}");
        assert_eq!(out.lines().count(), 2);
        for secret in ["5555 5555 5555 4444", "ann@example.org", "sk-ant-api03"] {
            assert!(!out.contains(secret), "{policy}: {secret} in {out}");
        }
        for line in out.lines() {
            let e = Event::from_json_line(line).expect("output lines are events");
            assert!(e.redaction.is_some());
        }
        assert!(err.contains("2 events written"), "{err}");
    }
    assert!(!run(&["--policy", "archive"], input.as_bytes())
        .1
        .contains("cli-test-key"));
}

#[test]
fn malformed_lines_stop_it_unless_skipped() {
    let l = lines();
    let input = format!("{}\n{{not json\n{}\n", l[0], l[1]);
    let (code, out, err) = run(&[], input.as_bytes());
    assert_ne!(code, 0);
    assert!(err.contains("line 2"), "{err}");
    assert!(!out.contains("ann@example.org"));

    let (code, out, err) = run(&["--skip-invalid"], input.as_bytes());
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 2);
    assert!(err.contains("1 invalid lines skipped"), "{err}");

    let (code, _, err) = run(&["--policy", "nope"], input.as_bytes());
    assert_ne!(code, 0);
    assert!(err.contains("unknown policy"), "{err}");
}

#[test]
fn lines_that_are_not_utf8_are_redacted_and_marked() {
    let mut input = lines()[0].clone().into_bytes();
    // Put an invalid byte inside the error text.
    let at = input.windows(4).position(|w| w == b"card").unwrap();
    input.insert(at, 0xff);
    input.push(b'\n');
    let (code, out, err) = run(&[], &input);
    assert_eq!(code, 0, "{err}");
    let e = Event::from_json_line(out.trim()).unwrap();
    let r = e.redaction.unwrap();
    assert!(r.truncated);
    assert!(r.counts.contains_key("invalid_utf8"));
    assert!(!out.contains("ann@example.org"));
    assert!(err.contains("1 lines not UTF-8"), "{err}");
}
