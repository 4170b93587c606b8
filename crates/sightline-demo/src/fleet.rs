//! The demo's fleet: the clients that drive the three example agents of the reference
//! runtime (`sightline_runtime::examples`, where the agents themselves are written):
//!
//! - `SupportAgent` (`ticket-N`): chat sessions over connections, each message a turn with a
//!   model call; order lookups through MCP (a stdio server started as a child process: see
//!   [`Tools`]); refunds that wait for a human's approval (granted, denied, or left
//!   to expire); email answered by email.
//! - `ReminderAgent` (`tenant-N`): a cron digest every second and an interval poll (which
//!   overlaps itself when slow), delayed reminders (some failing until their retries run
//!   out), digests queued and mailed.
//! - `ResearchAgent` (`research-N`): long fibers checkpointing every step (a model call, a
//!   local tool, a knowledge-base search over MCP), some evicted mid-run and recovered from
//!   their last checkpoint; a publish workflow that pauses for review.
//!
//! `fail_rate` injects failures everywhere a real fleet has them: model refusals, failing
//! callbacks, evictions, oversized state, unknown methods, an MCP server that cannot start.
//!
//! It lives in the demo's library rather than in the binary so that anything can run the
//! fleet (the `sightline demo` command, tests, an embedder) and get its numbers as data.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use fastrand::Rng;
use serde_json::{json, Value};
use sightline_runtime::{examples, Email, Runtime};

/// The classes, in the order agents are assigned to them.
pub use sightline_runtime::examples::CLASSES;

/// The instance name of the `n`th agent of `class`.
pub fn instance(class: &str, n: usize) -> String {
    match class {
        "SupportAgent" => format!("ticket-{}", 4000 + n),
        "ReminderAgent" => format!("tenant-{n}"),
        _ => format!("research-{n}"),
    }
}

/// Where the agents find the demo's MCP server: `<command> mcp-server` (for `sightline demo`,
/// the `sightline` binary itself). A command that cannot start is one of the failures the
/// agents event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tools {
    /// The program, started as `<command> mcp-server`.
    pub command: String,
}

impl Tools {
    /// As the example agents take it: `<command> mcp-server`.
    fn examples(&self) -> examples::Tools {
        examples::Tools {
            command: self.command.clone(),
            args: vec!["mcp-server".into()],
        }
    }
}

/// Registers the three classes on `runtime`.
pub fn register(runtime: &Runtime, tools: &Tools) {
    examples::register(runtime, &tools.examples());
}

// ===== the clients =====

/// What drives the fleet: picks an agent (a few are busy, most are quiet, so some hibernate)
/// and runs one client interaction with it.
pub struct Driver {
    /// The runtime.
    pub runtime: Runtime,
    /// Agents per class.
    pub per_class: usize,
    /// Probability of injecting a failure into an interaction.
    pub fail_rate: f64,
    /// Ids for connections and requests.
    pub next_id: Arc<AtomicU64>,
}

impl Driver {
    fn pick(&self, rng: &mut Rng) -> (usize, usize) {
        let class = rng.usize(..CLASSES.len());
        // Skewed: a fifth of the agents get most of the traffic.
        let hot = (self.per_class / 5).max(1);
        let n = if rng.f64() < 0.8 {
            rng.usize(..hot)
        } else {
            rng.usize(..self.per_class.max(1))
        };
        (class, n)
    }

    fn id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// One interaction; errors are part of the show (they are evented), so none is returned.
    pub async fn interact(&self, seed: u64) {
        let mut rng = Rng::with_seed(seed);
        let (class, n) = self.pick(&mut rng);
        let (class, name) = (CLASSES[class], instance(CLASSES[class], n));
        let fails = rng.f64() < self.fail_rate;
        let rt = &self.runtime;
        match class {
            "SupportAgent" => {
                let roll = rng.f64();
                if roll < 0.55 {
                    let conn = format!("conn-{}", self.id());
                    if rt.connect(class, &name, &conn).await.is_err() {
                        return;
                    }
                    for _ in 0..rng.usize(1..=3) {
                        let text = if fails {
                            "FAIL: the model is overloaded"
                        } else if rng.bool() {
                            "where is my order A-1042"
                        } else {
                            "how do I reset my password"
                        };
                        let req = format!("req-{}", self.id());
                        let _ = rt.message(class, &name, &conn, &req, text, None).await;
                    }
                    let code = if fails { 1006 } else { 1000 };
                    let _ = rt.disconnect(class, &name, &conn, code, None);
                } else if roll < 0.75 {
                    let order = format!("A-{}", rng.u32(1000..9999));
                    let expires_ms = if fails { 300 } else { 3000 };
                    let Ok(id) = rt
                        .rpc(
                            class,
                            &name,
                            "request_refund",
                            json!({ "order": order, "expires_ms": expires_ms }),
                            None,
                        )
                        .await
                    else {
                        return;
                    };
                    // A human looks at it a little later (or, on a failure roll, too late).
                    let wait = if fails { 600 } else { rng.u64(20..400) };
                    tokio::time::sleep(Duration::from_millis(wait)).await;
                    let approve = rng.f64() < 0.7;
                    let _ = rt
                        .rpc(
                            class,
                            &name,
                            "decide_refund",
                            json!({ "approval_id": id, "approve": approve }),
                            None,
                        )
                        .await;
                } else if roll < 0.9 {
                    let email = Email {
                        from: format!("customer{}@mail.example", rng.u32(1..500)),
                        to: format!("{name}@support.example"),
                        subject: "My order".into(),
                        body: if fails {
                            "FAIL to parse".into()
                        } else {
                            "Where is my parcel".into()
                        },
                    };
                    let _ = rt.email(class, &name, email).await;
                } else if fails {
                    let _ = rt.rpc(class, &name, "connect_crm", Value::Null, None).await;
                } else {
                    let _ = rt
                        .rpc(class, &name, "export_tickets", Value::Null, None)
                        .await;
                }
            }
            "ReminderAgent" => {
                let _ = rt.rpc(class, &name, "setup", Value::Null, None).await;
                let delay_ms = rng.u64(50..800);
                let id = rt
                    .rpc(
                        class,
                        &name,
                        "remind_later",
                        json!({ "delay_ms": delay_ms, "fail": fails }),
                        None,
                    )
                    .await;
                if let (Ok(id), true) = (id, rng.f64() < 0.1) {
                    let _ = rt
                        .rpc(class, &name, "cancel", json!({ "id": id }), None)
                        .await;
                }
            }
            _ => {
                let roll = rng.f64();
                if roll < 0.5 {
                    let topic = if fails {
                        "FAIL-prone topic"
                    } else {
                        "durable agents"
                    };
                    let call = rt.rpc(
                        class,
                        &name,
                        "research_later",
                        json!({ "topic": topic }),
                        None,
                    );
                    let _ = call.await;
                    if fails {
                        // The host moves the agent while its fiber runs.
                        tokio::time::sleep(Duration::from_millis(rng.u64(60..200))).await;
                        rt.evict(class, &name);
                    }
                } else if roll < 0.8 {
                    let Ok(id) = rt.rpc(class, &name, "publish", Value::Null, None).await else {
                        return;
                    };
                    tokio::time::sleep(Duration::from_millis(rng.u64(20..300))).await;
                    let approve = rng.f64() < 0.75;
                    let _ = rt
                        .rpc(
                            class,
                            &name,
                            "review",
                            json!({ "workflow_id": id, "approve": approve, "fail": fails }),
                            None,
                        )
                        .await;
                } else {
                    let words = if fails { 20_000 } else { 50 };
                    let _ = rt
                        .rpc(class, &name, "save_notes", json!({ "words": words }), None)
                        .await;
                }
            }
        }
    }
}

/// The agents' databases under `dir` (`<dir>/<class>/<name>.sqlite`).
pub fn databases(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for class in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        for f in std::fs::read_dir(class.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            if f.path().extension().is_some_and(|e| e == "sqlite") {
                out.push(f.path());
            }
        }
    }
    out
}
