//! The reference agents the demo, the tests and the benchmarks share.
//!
//! They are written once, here, against the public API only (nothing in this module reaches
//! inside `Ctx`), so they double as examples of what an agent looks like:
//!
//! - [`Counter`]: a counter in its state (the crate's smallest agent; the benchmarks' and the
//!   runtime tests' one);
//! - [`Support`]: chat sessions whose turns call the model, order lookups and refunds over
//!   MCP, refunds behind a human's approval, email answered by email;
//! - [`Reminder`]: a cron digest and an interval poll, delayed reminders (failing ones
//!   retried), digests queued and mailed;
//! - [`Research`]: long fibers checkpointing every step (a model call, a local tool, a
//!   knowledge-base search over MCP) and recovered from their last checkpoint; a publish
//!   workflow that pauses for review;
//! - [`McpClient`]: connects to any MCP server and calls its tools on request.
//!
//! [`Tools`] says where the MCP server of [`Support`] and [`Research`] is (ours,
//! `sightline-mcp-server` or `sightline mcp-server`, see [`crate::mcp_server`]), and
//! [`register`] registers the demo's three classes.

use std::time::Duration;

use serde_json::{json, Value};

use crate::{
    Agent, Ctx, Decision, Email, Fiber, McpTarget, Recovered, RpcError, Runtime,
    ScheduleCreateError, StateError, StoreError, When,
};

fn store_err(e: StoreError) -> RpcError {
    RpcError::new("StoreError", e.to_string())
}

fn state_err(e: StateError) -> RpcError {
    RpcError::new("StateError", e.to_string())
}

fn schedule_err(e: ScheduleCreateError) -> RpcError {
    RpcError::new("ScheduleError", e.to_string())
}

/// Adds `state[key] += 1` (and any `extra` fields) to the state and persists it.
fn bump(ctx: &mut Ctx, key: &str, extra: Value) -> Result<u64, RpcError> {
    let mut state = ctx.state().clone();
    let n = state[key].as_u64().unwrap_or(0) + 1;
    state[key] = json!(n);
    if let (Some(s), Value::Object(extra)) = (state.as_object_mut(), extra) {
        s.extend(extra);
    }
    ctx.set_state(state).map_err(state_err)?;
    Ok(n)
}

// ===== Counter =====

/// A counter in its state.
///
/// - `increment` (`{"by": ...}` optional): adds one and returns the new count, storing
///   `{"n": n, "by": by}`; it yields half-way, so a test sees that inputs still never
///   interleave;
/// - `get`: the state; `set`: replaces the state with the arguments (refused when not an
///   object or too large), returning the new version;
/// - `slow`: answers after 200 ms (for mailbox, backlog and dispatch tests).
#[derive(Debug, Clone, Copy, Default)]
pub struct Counter;

impl Agent for Counter {
    async fn on_rpc(
        &mut self,
        ctx: &mut Ctx,
        method: &str,
        args: Value,
    ) -> Result<Value, RpcError> {
        match method {
            "increment" => {
                let n = ctx.state()["n"].as_u64().unwrap_or(0);
                // Yield in the middle: another input must still not interleave.
                tokio::task::yield_now().await;
                ctx.set_state(json!({ "n": n + 1, "by": args["by"] }))
                    .map_err(state_err)?;
                Ok(json!(n + 1))
            }
            "get" => Ok(ctx.state().clone()),
            "set" => ctx.set_state(args).map(|v| json!(v)).map_err(state_err),
            "slow" => {
                tokio::time::sleep(Duration::from_millis(200)).await;
                Ok(Value::Null)
            }
            other => Err(RpcError::new("NotFound", format!("no method {other}"))),
        }
    }
}

// ===== Tools =====

/// Where [`Support`] and [`Research`] find their MCP server (the tools `lookup_order`,
/// `search_kb` and `issue_refund` of [`crate::mcp_server`]), started as a child process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tools {
    /// The program.
    pub command: String,
    /// Its arguments (`["mcp-server"]` for the `sightline` binary, none for
    /// `sightline-mcp-server`).
    pub args: Vec<String>,
}

impl Tools {
    fn target(&self) -> McpTarget {
        McpTarget::Stdio {
            command: self.command.clone(),
            args: self.args.clone(),
        }
    }
}

/// Connects the tools server once (it is persisted: later starts restore it); returns its id.
async fn tools_server(ctx: &mut Ctx, tools: &Tools) -> Result<String, RpcError> {
    let id = "srv_support-tools";
    if ctx.mcp_tools(id).is_empty() {
        return ctx.add_mcp_server("support-tools", tools.target()).await;
    }
    Ok(id.to_owned())
}

// ===== Support =====

/// Chat, MCP lookups, refunds behind approvals, email.
///
/// - a chat message is a turn: a model call, an MCP `lookup_order` when the text mentions an
///   order, the message count stored; a prompt with `FAIL` fails (the local model refuses);
/// - `request_refund` (`{"order", "expires_ms"}`, 1500 ms by default): asks a human,
///   answering the approval's id; `decide_refund` (`{"approval_id", "approve"}`): records
///   the decision and, when granted, refunds over MCP;
/// - `connect_crm`: adds an MCP server whose program is missing (the connect fails, evented);
/// - an email is answered by email after a model call.
#[derive(Debug, Clone)]
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

// ===== Reminder =====

/// Cron digests, an interval poll, delayed reminders, queued mail.
///
/// - `setup` (once): a digest every second (cron) and a poll every second (interval);
/// - `remind_later` (`{"delay_ms", "fail"}`, 200 ms by default): a one-off reminder,
///   answering its schedule's id; with `fail` its callback fails every attempt (retried,
///   then given up with `schedule:error`); `cancel` (`{"id"}`): cancels a schedule,
///   answering whether it existed; `pending`: how many schedules are stored;
/// - the callbacks: `remind` (counts `reminders_sent`), `digest` (queues `send_digest`,
///   which mails it), `poll` (takes up to `poll_max_ms`).
#[derive(Debug, Clone, Copy)]
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
        match method {
            "setup" => {
                if ctx.state()["setup"].as_bool() == Some(true) {
                    return Ok(Value::Null);
                }
                ctx.schedule(When::Cron("* * * * * *".into()), "digest", Value::Null)
                    .map_err(schedule_err)?;
                ctx.schedule(
                    When::Interval(Duration::from_millis(1000)),
                    "poll",
                    Value::Null,
                )
                .map_err(schedule_err)?;
                bump(ctx, "setups", json!({ "setup": true }))?;
                Ok(Value::Null)
            }
            "remind_later" => {
                let delay = Duration::from_millis(args["delay_ms"].as_u64().unwrap_or(200));
                let id = ctx
                    .schedule(When::Delay(delay), "remind", args)
                    .map_err(schedule_err)?;
                Ok(json!(id))
            }
            "cancel" => {
                let id = args["id"].as_str().unwrap_or_default().to_owned();
                Ok(json!(ctx.cancel_schedule(&id).map_err(store_err)?))
            }
            "pending" => Ok(json!(ctx.schedules().map_err(store_err)?.len())),
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

// ===== Research =====

/// Long fibers with checkpoints, a publish workflow.
///
/// - `research` (`{"topic"}`): a fiber of [`RESEARCH_STEPS`] steps, each a model call, a
///   local tool and a checkpoint (`{"done": step, ...}`), a knowledge-base search over MCP
///   on step 3; an interrupted one goes on from the step after its last checkpoint;
///   `research_later`: the same, scheduled 50 ms later (in the request's trace);
/// - `publish`: a workflow that drafts, then pauses for review, answering its id;
///   `review` (`{"workflow_id", "approve", "fail"}`): resumes and publishes it (or fails to),
///   or rejects it;
/// - `save_notes` (`{"words"}`): stores that many words of notes (past the state limit the
///   update is refused).
#[derive(Debug, Clone)]
pub struct Research {
    /// Our MCP server.
    pub tools: Tools,
    /// A fiber's first run (not a recovered one) stops making progress after this
    /// checkpoint, as if its process froze there: crash and eviction tests take the agent
    /// away at a known step. `None` in the demo.
    pub freeze_after: Option<u64>,
}

/// Checkpoints of a research fiber.
pub const RESEARCH_STEPS: u64 = 6;

impl Research {
    /// The research loop from step `from`: each step a model call, a local tool, on step 3 a
    /// knowledge-base search over MCP, then a checkpoint.
    async fn research(
        &self,
        ctx: &mut Ctx,
        mut fiber: Fiber,
        from: u64,
        topic: &str,
        freeze_after: Option<u64>,
    ) -> Result<(), RpcError> {
        for step in from..=RESEARCH_STEPS {
            let prompt = format!("step {step} of research on {topic}");
            let answer = match ctx.model("local-large", &prompt).await {
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
                let server = tools_server(ctx, &self.tools).await?;
                ctx.call_mcp_tool(&server, "search_kb", json!({ "query": topic }))
                    .await?;
            }
            tokio::time::sleep(Duration::from_millis(15)).await;
            ctx.stash(
                &mut fiber,
                &json!({ "done": step, "topic": topic, "tokens": answer.output_tokens }),
            )
            .map_err(store_err)?;
            if freeze_after == Some(step) {
                std::future::pending::<()>().await;
            }
        }
        ctx.complete_fiber(fiber).map_err(store_err)?;
        bump(ctx, "reports", Value::Null)?;
        Ok(())
    }
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
                    .map_err(schedule_err)?;
                Ok(Value::Null)
            }
            "research" => {
                let topic = args["topic"].as_str().unwrap_or("agents").to_owned();
                let fiber = ctx.start_fiber("research").map_err(store_err)?;
                self.research(ctx, fiber, 1, &topic, self.freeze_after)
                    .await?;
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
        self.research(ctx, r.fiber, done + 1, &topic, None).await
    }
}

// ===== McpClient =====

/// Connects to one MCP server and calls its tools on request.
///
/// - `connect`: adds the server (persisted: it is connected again when the agent starts
///   again) and answers the names of the tools it offers;
/// - `call` (`{"tool": name, "args": {...}}`): calls a tool, answering its result.
#[derive(Debug, Clone)]
pub struct McpClient {
    /// The server's name in this agent (its id is `srv_<name>`).
    pub server: String,
    /// Where it is.
    pub target: McpTarget,
}

impl Agent for McpClient {
    async fn on_rpc(
        &mut self,
        ctx: &mut Ctx,
        method: &str,
        args: Value,
    ) -> Result<Value, RpcError> {
        match method {
            "connect" => {
                let id = ctx
                    .add_mcp_server(&self.server, self.target.clone())
                    .await?;
                Ok(json!(ctx.mcp_tools(&id)))
            }
            "call" => {
                let tool = args["tool"].as_str().unwrap_or_default().to_owned();
                let id = format!("srv_{}", self.server);
                ctx.call_mcp_tool(&id, &tool, args["args"].clone()).await
            }
            other => Err(RpcError::new("NotFound", format!("no method {other}"))),
        }
    }
}

// ===== the demo's classes =====

/// The demo's classes, in the order agents are assigned to them.
pub const CLASSES: [&str; 3] = ["SupportAgent", "ReminderAgent", "ResearchAgent"];

/// Registers the demo's three classes on `runtime` ([`CLASSES`]: [`Support`], [`Reminder`]
/// with polls of up to 1.4 s, [`Research`]), their MCP server at `tools`.
pub fn register(runtime: &Runtime, tools: &Tools) {
    let t = tools.clone();
    runtime.register(CLASSES[0], move |_| Support { tools: t.clone() });
    runtime.register(CLASSES[1], |_| Reminder { poll_max_ms: 1400 });
    let t = tools.clone();
    runtime.register(CLASSES[2], move |_| Research {
        tools: t.clone(),
        freeze_after: None,
    });
}
