//! The demo's fleet: three example agents on the reference runtime (`sightline-runtime`), and
//! the clients that drive them.
//!
//! - `SupportAgent` (`ticket-N`): chat sessions over connections, each message a turn with a
//!   model call; order lookups through MCP (our stdio server, `sightline mcp-server`, started
//!   as a child process); refunds that wait for a human's approval (granted, denied, or left
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

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use fastrand::Rng;
use serde_json::{json, Value};
use sightline_runtime::{
    Agent, Ctx, Decision, Email, McpTarget, Recovered, RpcError, Runtime, StoreError, When,
};

/// The classes, in the order agents are assigned to them.
pub const CLASSES: [&str; 3] = ["SupportAgent", "ReminderAgent", "ResearchAgent"];

/// The instance name of the `n`th agent of `class`.
pub fn instance(class: &str, n: usize) -> String {
    match class {
        "SupportAgent" => format!("ticket-{}", 4000 + n),
        "ReminderAgent" => format!("tenant-{n}"),
        _ => format!("research-{n}"),
    }
}

fn store_err(e: StoreError) -> RpcError {
    RpcError::new("StoreError", e.to_string())
}

/// Adds `state[key] += 1` (and any `extra` fields) to the state and persists it.
fn bump(ctx: &mut Ctx, key: &str, extra: Value) -> Result<u64, RpcError> {
    let mut state = ctx.state().clone();
    let n = state[key].as_u64().unwrap_or(0) + 1;
    state[key] = json!(n);
    if let (Some(s), Value::Object(extra)) = (state.as_object_mut(), extra) {
        s.extend(extra);
    }
    ctx.set_state(state)
        .map_err(|e| RpcError::new("StateError", e.to_string()))?;
    Ok(n)
}

/// Where the agents find our MCP server: this very binary, `sightline mcp-server`.
#[derive(Clone)]
pub struct Tools {
    /// The program.
    pub command: String,
}

impl Tools {
    fn target(&self) -> McpTarget {
        McpTarget::Stdio {
            command: self.command.clone(),
            args: vec!["mcp-server".into()],
        }
    }
}

/// Connects `server` once (it is persisted: later starts restore it); returns its id.
async fn tools_server(ctx: &mut Ctx, tools: &Tools) -> Result<String, RpcError> {
    let id = "srv_support-tools";
    if ctx.mcp_tools(id).is_empty() {
        return ctx.add_mcp_server("support-tools", tools.target()).await;
    }
    Ok(id.to_owned())
}

// ===== SupportAgent =====

/// Chat, MCP lookups, refunds behind approvals, email.
pub struct Support {
    /// Our MCP server.
    pub tools: Tools,
}

impl Agent for Support {
    async fn on_rpc(
        &mut self,
        ctx: &mut Ctx,
        method: &str,
        args: Value,
    ) -> Result<Value, RpcError> {
        match method {
            "request_refund" => {
                let order = args["order"].as_str().unwrap_or("A-1").to_owned();
                let id = ctx.request_approval(
                    "refund",
                    &format!("Refund order {order}?"),
                    Duration::from_millis(args["expires_ms"].as_u64().unwrap_or(1500)),
                )?;
                bump(ctx, "refunds_requested", json!({ "pending_refund": order }))?;
                Ok(json!(id))
            }
            "decide_refund" => {
                let id = args["approval_id"].as_str().unwrap_or_default().to_owned();
                let approve = args["approve"].as_bool().unwrap_or(false);
                let decision = if approve {
                    Decision::Granted
                } else {
                    Decision::Denied
                };
                ctx.decide_approval(&id, decision, "agent@support.example", None)?;
                if approve {
                    let server = tools_server(ctx, &self.tools).await?;
                    let order = ctx.state()["pending_refund"]
                        .as_str()
                        .unwrap_or("A-1")
                        .to_owned();
                    let refund = json!({ "order_id": order, "amount_cents": 4999 });
                    ctx.call_mcp_tool(&server, "issue_refund", refund).await?;
                    bump(ctx, "refunds", Value::Null)?;
                }
                Ok(Value::Null)
            }
            "connect_crm" => {
                // A CRM server whose program is missing: the connect fails, evented.
                let target = McpTarget::Stdio {
                    command: "/nonexistent/crm-mcp-server".into(),
                    args: Vec::new(),
                };
                ctx.add_mcp_server("crm", target).await.map(|_| Value::Null)
            }
            other => Err(RpcError::new("NotFound", format!("no method {other}"))),
        }
    }

    async fn on_message(
        &mut self,
        ctx: &mut Ctx,
        _connection: &str,
        text: String,
    ) -> Result<String, RpcError> {
        let answer = ctx.model("local-small", &text).await?;
        if text.contains("order") {
            let server = tools_server(ctx, &self.tools).await?;
            ctx.call_mcp_tool(&server, "lookup_order", json!({ "order_id": "A-1042" }))
                .await?;
        }
        bump(
            ctx,
            "messages",
            json!({ "last_topic": text.split_whitespace().next() }),
        )?;
        Ok(answer.text)
    }

    async fn on_email(&mut self, ctx: &mut Ctx, email: Email) -> Result<(), RpcError> {
        let answer = ctx.model("local-small", &email.body).await?;
        ctx.reply_email(&email, &format!("Re: {}", email.subject));
        bump(
            ctx,
            "emails",
            json!({ "last_answer_words": answer.output_tokens }),
        )?;
        Ok(())
    }
}

// ===== ReminderAgent =====

/// Cron digests, an interval poll, delayed reminders, queued mail.
pub struct Reminder {
    /// How slow a poll may be, in milliseconds (past 1000 it overlaps the next one).
    pub poll_max_ms: u64,
}

impl Agent for Reminder {
    async fn on_rpc(
        &mut self,
        ctx: &mut Ctx,
        method: &str,
        args: Value,
    ) -> Result<Value, RpcError> {
        let sched = |e: sightline_runtime::ScheduleCreateError| {
            RpcError::new("ScheduleError", e.to_string())
        };
        match method {
            "setup" => {
                if ctx.state()["setup"].as_bool() == Some(true) {
                    return Ok(Value::Null);
                }
                ctx.schedule(When::Cron("* * * * * *".into()), "digest", Value::Null)
                    .map_err(sched)?;
                ctx.schedule(
                    When::Interval(Duration::from_millis(1000)),
                    "poll",
                    Value::Null,
                )
                .map_err(sched)?;
                bump(ctx, "setups", json!({ "setup": true }))?;
                Ok(Value::Null)
            }
            "remind_later" => {
                let delay = Duration::from_millis(args["delay_ms"].as_u64().unwrap_or(200));
                let id = ctx
                    .schedule(When::Delay(delay), "remind", args)
                    .map_err(sched)?;
                Ok(json!(id))
            }
            "cancel" => {
                let id = args["id"].as_str().unwrap_or_default().to_owned();
                Ok(json!(ctx.cancel_schedule(&id).map_err(store_err)?))
            }
            // Scheduled callbacks.
            "remind" => {
                if args["fail"].as_bool() == Some(true) {
                    return Err(RpcError::new(
                        "UpstreamError",
                        "the notification service answered 503",
                    ));
                }
                bump(ctx, "reminders_sent", Value::Null)?;
                Ok(Value::Null)
            }
            "digest" => {
                let n = bump(ctx, "digests", Value::Null)?;
                ctx.queue("send_digest", json!({ "digest": n, "fail": args["fail"] }))
                    .map_err(store_err)?;
                Ok(Value::Null)
            }
            "send_digest" => {
                let to = format!("{}@tenants.example", ctx.agent().name);
                ctx.send_email("digest@reminders.example", &to, "Your daily digest");
                Ok(Value::Null)
            }
            "poll" => {
                let ms = fastrand::u64(0..=self.poll_max_ms);
                tokio::time::sleep(Duration::from_millis(ms)).await;
                Ok(Value::Null)
            }
            other => Err(RpcError::new("NotFound", format!("no method {other}"))),
        }
    }
}

// ===== ResearchAgent =====

/// Long fibers with checkpoints, a publish workflow.
pub struct Research {
    /// Our MCP server.
    pub tools: Tools,
}

const RESEARCH_STEPS: u64 = 6;

/// The research loop from step `from`: each step a model call, a local tool, on step 3 a
/// knowledge-base search over MCP, then a checkpoint.
async fn research(
    ctx: &mut Ctx,
    tools: &Tools,
    mut fiber: sightline_runtime::Fiber,
    from: u64,
    topic: &str,
) -> Result<(), RpcError> {
    for step in from..=RESEARCH_STEPS {
        let prompt = format!("step {step} of research on {topic}");
        let answer = ctx.model("local-large", &prompt).await;
        let answer = match answer {
            Ok(a) => a,
            Err(e) => {
                ctx.fail_fiber(fiber, &e).map_err(store_err)?;
                return Err(e);
            }
        };
        ctx.tool("summarize", json!({ "step": step }), |_| async {
            tokio::time::sleep(Duration::from_millis(3)).await;
            Ok(json!("summary"))
        })
        .await?;
        if step == 3 {
            let server = tools_server(ctx, tools).await?;
            ctx.call_mcp_tool(&server, "search_kb", json!({ "query": topic }))
                .await?;
        }
        tokio::time::sleep(Duration::from_millis(15)).await;
        ctx.stash(
            &mut fiber,
            &json!({ "done": step, "topic": topic, "tokens": answer.output_tokens }),
        )
        .map_err(store_err)?;
    }
    ctx.complete_fiber(fiber).map_err(store_err)?;
    bump(ctx, "reports", Value::Null)?;
    Ok(())
}

impl Agent for Research {
    async fn on_rpc(
        &mut self,
        ctx: &mut Ctx,
        method: &str,
        args: Value,
    ) -> Result<Value, RpcError> {
        match method {
            // Work scheduled from a request runs later in the same trace.
            "research_later" => {
                ctx.schedule(When::Delay(Duration::from_millis(50)), "research", args)
                    .map_err(|e| RpcError::new("ScheduleError", e.to_string()))?;
                Ok(Value::Null)
            }
            "research" => {
                let topic = args["topic"].as_str().unwrap_or("agents").to_owned();
                let fiber = ctx.start_fiber("research").map_err(store_err)?;
                research(ctx, &self.tools, fiber, 1, &topic).await?;
                Ok(Value::Null)
            }
            "publish" => {
                let id = ctx.start_workflow("publish-report")?;
                ctx.workflow_step(&id, "draft", &Value::Null)?;
                ctx.pause_workflow(&id)?;
                Ok(json!(id))
            }
            "review" => {
                let id = args["workflow_id"].as_str().unwrap_or_default().to_owned();
                let approved = args["approve"].as_bool().unwrap_or(false);
                ctx.answer_workflow(&id, approved, None)?;
                if approved {
                    if args["fail"].as_bool() == Some(true) {
                        let e = RpcError::new("PublishError", "the CMS refused the report");
                        ctx.end_workflow(&id, Some(("publish", &e)))?;
                        return Err(e);
                    }
                    ctx.workflow_step(&id, "publish", &Value::Null)?;
                    ctx.end_workflow(&id, None)?;
                }
                Ok(Value::Null)
            }
            "save_notes" => {
                // Notes can be huge: past the state limit the update is refused.
                let words = args["words"].as_u64().unwrap_or(10) as usize;
                let notes = "lorem ".repeat(words);
                bump(ctx, "notes_saved", json!({ "notes": notes }))?;
                Ok(Value::Null)
            }
            other => Err(RpcError::new("NotFound", format!("no method {other}"))),
        }
    }

    async fn on_fiber_recovered(&mut self, ctx: &mut Ctx, r: Recovered) -> Result<(), RpcError> {
        let (done, topic) = match &r.stash {
            Some(s) => (
                s["done"].as_u64().unwrap_or(0),
                s["topic"].as_str().unwrap_or("agents").to_owned(),
            ),
            None => (0, "agents".to_owned()),
        };
        research(ctx, &self.tools, r.fiber, done + 1, &topic).await
    }
}

/// Registers the three classes on `runtime`.
pub fn register(runtime: &Runtime, tools: &Tools) {
    let t = tools.clone();
    runtime.register("SupportAgent", move |_| Support { tools: t.clone() });
    runtime.register("ReminderAgent", |_| Reminder { poll_max_ms: 1400 });
    let t = tools.clone();
    runtime.register("ResearchAgent", move |_| Research { tools: t.clone() });
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

/// The agents' databases under `dir`: (class, name, path).
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
