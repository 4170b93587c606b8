//! One instance's loop: what happens between an agent starting (or waking) and leaving
//! memory.
//!
//! An instance opens its database, reports its wake, restores its MCP connections and
//! interrupted fibers, then takes one input at a time from its mailbox, multiplexing every
//! schedule, fiber recovery and approval expiry on one timer. It hibernates when idle (state
//! is on disk already; its alarm is set for its next schedule), is evicted on the host's
//! word, and is reset after a panic in the agent's code. Registering a class
//! (`Runtime::register`) is here too: it is where the host learns how to start this loop.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sightline_event::{
    AgentHibernate, AgentRef, AgentWake, JobBacklogWarning, JobSlowDispatch, Name, Outcome, Rpc,
    RpcError as RpcErrorEvent, Sensitive, TraceContext,
};
use tokio::sync::mpsc;

use crate::agent::{Agent, Ctx, SEQ_BLOCK};
use crate::calls;
use crate::channels;
use crate::clock::{now_ms, now_ns};
use crate::error::RpcError;
use crate::fiber;
use crate::host::{set_alarm, Envelope, Inner, Msg, Runtime, Spawner};
use crate::schedule;
use crate::store::Store;

impl Runtime {
    /// Registers an agent class; `make` builds an instance for a name (at start and wake).
    pub fn register<A, F>(&self, class: &str, make: F)
    where
        A: Agent,
        F: Fn(&AgentRef) -> A + Send + Sync + 'static,
    {
        let make = Arc::new(make);
        let spawner: Arc<Spawner> =
            Arc::new(move |inner: Arc<Inner>, agent, rx, evict, trigger| {
                let make = make.clone();
                let handle = inner.handle.clone();
                handle.spawn(run_instance(
                    inner,
                    agent,
                    rx,
                    evict,
                    trigger,
                    move |a: &AgentRef| make(a),
                ))
            });
        if let Ok(mut classes) = self.inner.classes.write() {
            classes.insert(class.to_owned(), spawner);
        }
    }
}

/// Fails every waiting input of an instance that could not start or was evicted.
fn refuse_all(rx: &mut mpsc::Receiver<Envelope>, e: &RpcError) {
    rx.close();
    while let Ok((_, msg)) = rx.try_recv() {
        msg.refuse(e);
    }
}

/// How a piece of an instance's work ended.
enum Ended {
    Done,
    Evicted,
    /// The agent's code panicked, with this message.
    Panicked(String),
}

/// Runs `work` unless the instance is evicted first, catching a panic in the agent's code.
async fn unless_evicted(
    work: impl std::future::Future<Output = ()>,
    evict: &tokio::sync::Notify,
) -> Ended {
    use futures_util::FutureExt;
    // The instance is reset after a panic (it never runs again with what the panic left
    // half-done), so observing its state across the unwind is fine.
    let work = std::panic::AssertUnwindSafe(work).catch_unwind();
    tokio::select! {
        biased;
        r = work => match r {
            Ok(()) => Ended::Done,
            Err(p) => Ended::Panicked(
                p.downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| p.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "panic".to_owned()),
            ),
        },
        _ = evict.notified() => Ended::Evicted,
    }
}

/// After a panic in a timer pass: the timer waits 1 s, doubling with each panic in a row up
/// to a minute, persisted so the successor instance waits too.
fn hold_timer(ctx: &mut Ctx) {
    let n = ctx.store.meta("timer_panics").ok().flatten().unwrap_or(0) + 1;
    let wait_ms = (1000u64 << (n - 1).min(6)).min(60_000);
    ctx.timer_hold_until = now_ms() + wait_ms;
    let _ = ctx.store.set_meta("timer_panics", n);
    let _ = ctx
        .store
        .set_meta("timer_hold_until_ms", ctx.timer_hold_until);
    ctx.refresh_next_due();
}

/// Reports a panic in the agent's code as a failed input (`rpc:error`, type `Panic`); the
/// instance is then reset like an evicted one: it starts again from what it stored.
fn panicked(ctx: &Ctx, job: Name, why: &str) {
    ctx.emitter.emit_with(|m| {
        m.outcome = Some(Outcome::Error);
        RpcErrorEvent {
            method: job,
            error: Sensitive(why.to_owned()),
            error_type: Some(Name::new_static("Panic")),
            caller: None,
        }
    });
}

/// Leaves memory at once (see [`Runtime::evict`]): the exact sequence number is kept (the
/// process lives on, so nothing is skipped), the instance marked evicted, waiting inputs
/// handed to its successor, and the alarm set for its schedules.
fn evicted(
    inner: &Arc<Inner>,
    agent: &AgentRef,
    ctx: &mut Ctx,
    rx: &mut mpsc::Receiver<Envelope>,
    evict: &Arc<tokio::sync::Notify>,
) {
    // A chat turn cut short still ends, as aborted.
    channels::abort_turn(ctx, "the agent was evicted or reset mid-turn");
    let _ = ctx.store.set_meta("seq_reserved", ctx.emitter.last_seq());
    let _ = ctx.store.set_meta("evicted_at_ns", now_ns());
    let runtime = Runtime {
        inner: inner.clone(),
    };
    let mut refused = Vec::new();
    {
        // All under the lock every sender takes: the waiting inputs reach the successor
        // before anything sent later.
        let mut map = inner.instances();
        // Only our own slot: a successor may already be registered.
        if map.get(agent).is_some_and(|s| Arc::ptr_eq(&s.evict, evict)) {
            map.remove(agent);
        }
        rx.close();
        let mut waiting = Vec::new();
        while let Ok(m) = rx.try_recv() {
            waiting.push(m);
        }
        if !waiting.is_empty() {
            match runtime.mailbox(&mut map, agent, "input") {
                Ok(tx) => {
                    for (at, msg) in waiting {
                        if let Err(e) = tx.try_send((at, msg)) {
                            let (_, msg) = match e {
                                mpsc::error::TrySendError::Full(m)
                                | mpsc::error::TrySendError::Closed(m) => m,
                            };
                            refused.push((RpcError::new("Overloaded", "mailbox full"), msg));
                        }
                    }
                }
                Err(e) => refused.extend(waiting.into_iter().map(|(_, m)| (e.clone(), m))),
            }
        }
    }
    for (e, msg) in refused {
        msg.refuse(&e);
    }
    if let Some(due) = ctx.next_due {
        set_alarm(inner, agent.clone(), due);
    }
}

/// One instance's life: open its database, report the wake, start the agent, then handle its
/// inputs and its timer one at a time until it hibernates, is evicted or the host stops.
/// `trigger` is what started it, reported by `agent:wake` when it was hibernated.
async fn run_instance<A: Agent>(
    inner: Arc<Inner>,
    agent: AgentRef,
    mut rx: mpsc::Receiver<Envelope>,
    evict: Arc<tokio::sync::Notify>,
    trigger: &'static str,
    make: impl Fn(&AgentRef) -> A,
) {
    let started = Instant::now();
    let path = inner.db_path(&agent);
    let existed = path.exists();
    let opened = Store::open(&path).and_then(|store| {
        let (version, state) = store.load_state()?;
        store.set_agent(&agent.class, &agent.name)?;
        let seq = store.meta("seq_reserved")?.unwrap_or(0);
        // Set at hibernation (or eviction), cleared while running: 0 on a start after a crash.
        let hibernated_at = store.meta("hibernated_at_ns")?.unwrap_or(0);
        let evicted_at = store.meta("evicted_at_ns")?.unwrap_or(0);
        store.set_meta("hibernated_at_ns", 0)?;
        store.set_meta("evicted_at_ns", 0)?;
        store.set_meta("seq_reserved", seq + SEQ_BLOCK)?;
        Ok((store, version, state, seq, hibernated_at, evicted_at))
    });
    let (store, version, state, seq, hibernated_at, evicted_at) = match opened {
        Ok(x) => x,
        Err(e) => {
            inner.instances().remove(&agent);
            refuse_all(&mut rx, &RpcError::new("StorageError", e.to_string()));
            return;
        }
    };
    let emitter = inner.bus.emitter_for(agent.clone(), seq);
    if existed {
        // Woken from hibernation by an input, or started again after the process died.
        let (trigger, hibernated_ms) = if hibernated_at > 0 {
            (trigger, now_ns().saturating_sub(hibernated_at) / 1_000_000)
        } else if evicted_at > 0 {
            ("evicted", now_ns().saturating_sub(evicted_at) / 1_000_000)
        } else {
            ("restart", 0)
        };
        let took = started.elapsed();
        emitter.emit_with(|m| {
            m.outcome = Some(Outcome::Ok);
            m.duration_ns = Some(took.as_nanos() as u64);
            AgentWake {
                trigger: Name::new_static(trigger),
                hibernated_ms,
            }
        });
    }
    let mut ctx = Ctx {
        agent: agent.clone(),
        emitter,
        store,
        state: Arc::new(state),
        version,
        state_max_bytes: inner.cfg.state_max_bytes,
        next_due: None,
        reserved: seq + SEQ_BLOCK,
        mcp: HashMap::new(),
        host: Some(Arc::new(Runtime {
            inner: inner.clone(),
        })),
        model: inner.model.read().ok().and_then(|m| m.clone()),
        timer_hold_until: 0,
        open_turn: None,
    };
    ctx.timer_hold_until = ctx
        .store
        .meta("timer_hold_until_ms")
        .ok()
        .flatten()
        .unwrap_or(0);
    ctx.refresh_next_due();
    if existed {
        schedule::report_missed(&ctx);
        fiber::detect_interrupted(&mut ctx);
        ctx.keep_reserved();
    }
    let mut instance = make(&agent);
    // Starting (MCP servers restored, the agent's own start) can be slow: evictable too.
    let start = async {
        if existed {
            ctx.restore_mcp().await;
        }
        instance.on_start(&mut ctx).await;
    };
    match unless_evicted(start, &evict).await {
        Ended::Done => {}
        Ended::Evicted => {
            evicted(&inner, &agent, &mut ctx, &mut rx, &evict);
            return;
        }
        Ended::Panicked(why) => {
            panicked(&ctx, Name::new_static("start"), &why);
            evicted(&inner, &agent, &mut ctx, &mut rx, &evict);
            return;
        }
    }
    ctx.keep_reserved();
    let idle = Duration::from_millis(inner.cfg.idle_hibernate_ms.max(1));
    let max_fiber_age = Duration::from_millis(inner.cfg.fiber_max_age_ms);
    let mut last_input = Instant::now();
    let slow_dispatch = Duration::from_millis(inner.cfg.slow_dispatch_ms);
    let backlog_warning = inner.cfg.backlog_warning_inputs.max(1);
    let mut backlog_warned = false;
    loop {
        // One timer multiplexes every schedule: the soonest one's.
        let due_at = ctx.next_due.map(|due| {
            tokio::time::Instant::now() + Duration::from_millis(due.saturating_sub(now_ms()))
        });
        let msg = tokio::select! {
            // Eviction first, then inputs: a due timer or the idle deadline never starves them.
            biased;
            _ = evict.notified() => {
                evicted(&inner, &agent, &mut ctx, &mut rx, &evict);
                return;
            }
            m = rx.recv() => m,
            _ = async { if let Some(at) = due_at { tokio::time::sleep_until(at).await } }, if due_at.is_some() => {
                let work = async {
                    calls::expire_approvals(&mut ctx);
                    schedule::run_due(&mut instance, &mut ctx).await;
                    fiber::run_recoveries(&mut instance, &mut ctx, max_fiber_age).await;
                };
                match unless_evicted(work, &evict).await {
                    Ended::Done => {
                        if ctx.timer_hold_until > 0 {
                            ctx.timer_hold_until = 0;
                            let _ = ctx.store.set_meta("timer_hold_until_ms", 0);
                            let _ = ctx.store.set_meta("timer_panics", 0);
                        }
                    }
                    Ended::Evicted => {
                        evicted(&inner, &agent, &mut ctx, &mut rx, &evict);
                        return;
                    }
                    Ended::Panicked(why) => {
                        panicked(&ctx, Name::new_static("alarm"), &why);
                        hold_timer(&mut ctx);
                        evicted(&inner, &agent, &mut ctx, &mut rx, &evict);
                        return;
                    }
                }
                last_input = Instant::now();
                ctx.keep_reserved();
                continue;
            }
            _ = tokio::time::sleep_until((last_input + idle).into()) => {
                // MCP connections close first (they reconnect on the next call if an input
                // arrives after all).
                if !ctx.mcp.is_empty() && rx.is_empty() {
                    close_mcp_bounded(&mut ctx).await;
                }
                // Hibernate unless an input arrived meanwhile. The bookkeeping (SQLite writes)
                // is done first, outside the lock every sender takes, so a new instance of
                // the same agent starts from it; under the lock, only the check and removal.
                if rx.is_empty() {
                    hibernate(&ctx, last_input);
                    let mut map = inner.instances();
                    if rx.is_empty() {
                        map.remove(&agent);
                        rx.close();
                        drop(map);
                        if let Some(due) = ctx.next_due {
                            set_alarm(&inner, agent.clone(), due);
                        }
                        return;
                    }
                    drop(map);
                    // An input came while it wrote: awake again at once.
                    unhibernate(&mut ctx);
                }
                last_input = Instant::now();
                continue;
            }
        };
        let Some((sent_at, msg)) = msg else { break };
        // What the input is: named in a slow-dispatch report and in a panic's.
        let job = msg.job();
        let waited = sent_at.elapsed();
        if waited >= slow_dispatch {
            ctx.emitter.emit(|| JobSlowDispatch {
                job: job.clone(),
                waited_ms: waited.as_millis() as u64,
            });
        }
        let backlog = rx.len();
        if backlog >= backlog_warning && !backlog_warned {
            backlog_warned = true;
            ctx.emitter.emit(|| JobBacklogWarning {
                backlog: backlog as u64,
                threshold: backlog_warning as u64,
            });
        } else if backlog < backlog_warning / 2 {
            backlog_warned = false;
        }
        match unless_evicted(handle_input(&mut instance, &mut ctx, msg), &evict).await {
            Ended::Done => {}
            Ended::Evicted => {
                evicted(&inner, &agent, &mut ctx, &mut rx, &evict);
                return;
            }
            Ended::Panicked(why) => {
                panicked(&ctx, job, &why);
                evicted(&inner, &agent, &mut ctx, &mut rx, &evict);
                return;
            }
        }
        last_input = Instant::now();
        ctx.keep_reserved();
    }
    // Every sender is gone (the runtime shut down, or was dropped).
    if !ctx.mcp.is_empty() {
        close_mcp_bounded(&mut ctx).await;
    }
    hibernate(&ctx, last_input);
}

/// Closes the agent's MCP connections, giving them at most two seconds together (a server
/// that does not answer its close must not hold a hibernation or a shutdown).
async fn close_mcp_bounded(ctx: &mut Ctx) {
    let _ = tokio::time::timeout(Duration::from_secs(2), ctx.close_mcp()).await;
}

/// Handles one input.
async fn handle_input<A: Agent>(instance: &mut A, ctx: &mut Ctx, msg: Msg) {
    let (method, args, caller, trace, reply) = match msg {
        Msg::Rpc {
            method,
            args,
            caller,
            trace,
            reply,
        } => (method, args, caller, trace, reply),
        // Woken for a schedule: the timer runs it.
        Msg::Alarm => return,
        Msg::Channel(c) => return channels::handle(instance, ctx, c).await,
    };
    let span = match trace {
        Some(t) => t.child(),
        None => TraceContext::new_root(),
    };
    ctx.emitter.set_trace(Some(span));
    let t0 = Instant::now();
    let result = instance.on_rpc(ctx, &method, args).await;
    let took = t0.elapsed().as_nanos() as u64;
    match &result {
        Ok(_) => ctx.emitter.emit_with(|m| {
            m.outcome = Some(Outcome::Ok);
            m.duration_ns = Some(took);
            m.trace = Some(span);
            Rpc {
                method: method.as_str().into(),
                streaming: false,
                caller: caller.clone(),
            }
        }),
        Err(e) => ctx.emitter.emit_with(|m| {
            m.outcome = Some(Outcome::Error);
            m.duration_ns = Some(took);
            m.trace = Some(span);
            RpcErrorEvent {
                method: method.as_str().into(),
                error: Sensitive(e.message.clone()),
                error_type: Some(e.error_type.as_str().into()),
                caller: caller.clone(),
            }
        }),
    }
    ctx.emitter.set_trace(None);
    let _ = reply.send(result);
}

/// Undoes the hibernation bookkeeping when an input arrived during it.
fn unhibernate(ctx: &mut Ctx) {
    let _ = ctx.store.set_meta("hibernated_at_ns", 0);
    ctx.reserved = 0;
    ctx.keep_reserved();
    ctx.emitter.emit_with(|m| {
        m.outcome = Some(Outcome::Ok);
        m.duration_ns = Some(0);
        AgentWake {
            trigger: Name::new_static("input"),
            hibernated_ms: 0,
        }
    });
}

/// State is on disk already: keep the exact sequence number and the time, and say so.
fn hibernate(ctx: &Ctx, last_input: Instant) {
    let idle_ms = last_input.elapsed().as_millis() as u64;
    ctx.emitter.emit(|| AgentHibernate { idle_ms });
    let _ = ctx.store.set_meta("seq_reserved", ctx.emitter.last_seq());
    let _ = ctx.store.set_meta("hibernated_at_ns", now_ns());
}
