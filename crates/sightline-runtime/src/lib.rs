//! # sightline-runtime: a Durable-Object-style agent runtime that emits every event
//!
//! Sightline needs a real emitter, and its users need a picture of what an agent runtime
//! instrumented with Sightline looks like. This crate is a compact, real one in the model of
//! Cloudflare's Agents SDK on Durable Objects, in one process:
//!
//! - an agent is addressed by class and stable name; the same name always reaches the same
//!   instance and its state;
//! - one instance handles one input at a time (a bounded mailbox on tokio);
//! - instances start on first use, hibernate after an idle timeout (memory released, state
//!   kept) and wake on the next input — each transition evented;
//! - each agent has its own SQLite database (rusqlite) holding its state (JSON, size-limited),
//!   persisted on every `set_state`, which emits `state:update` with version, changed paths,
//!   size and a JSON-Patch;
//! - RPCs are evented (`rpc`, `rpc:error`) with duration and the caller's trace context
//!   continued;
//! - per-agent sequence numbers continue across hibernation and restarts, never reused.
//!
//! It depends on the event model and the bus only, never on a sink.
//!
//! ```
//! use serde_json::{json, Value};
//! use sightline_bus::Bus;
//! use sightline_runtime::{Agent, Ctx, RpcError, Runtime, RuntimeConfig};
//!
//! struct Counter;
//! impl Agent for Counter {
//!     async fn on_rpc(&mut self, ctx: &mut Ctx, method: &str, _args: Value) -> Result<Value, RpcError> {
//!         match method {
//!             "increment" => {
//!                 let n = ctx.state()["n"].as_u64().unwrap_or(0) + 1;
//!                 ctx.set_state(json!({ "n": n })).map_err(|e| RpcError::new("StateError", e.to_string()))?;
//!                 Ok(json!(n))
//!             }
//!             other => Err(RpcError::new("NotFound", format!("no method {other}"))),
//!         }
//!     }
//! }
//!
//! # let dir = std::env::temp_dir().join(format!("sightline-runtime-doc-{}", std::process::id()));
//! let rt = tokio::runtime::Runtime::new().unwrap();
//! let runtime = Runtime::new(Bus::new(), RuntimeConfig { data_dir: dir.clone(), ..Default::default() }, rt.handle().clone());
//! runtime.register("Counter", |_| Counter);
//! let n = rt.block_on(runtime.rpc("Counter", "c-1", "increment", json!({}), None)).unwrap();
//! assert_eq!(n, json!(1));
//! # std::fs::remove_dir_all(dir).ok();
//! ```
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod agent;
mod calls;
mod channels;
mod fiber;
mod mcp;
pub mod mcp_server;
mod openai;
mod schedule;
mod store;
mod tls;
mod workflow;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sightline_bus::Bus;
use sightline_event::{
    AgentHibernate, AgentRef, AgentWake, JobBacklogWarning, JobSlowDispatch, Name, Outcome, Rpc,
    RpcError as RpcErrorEvent, Sensitive, TraceContext,
};
use tokio::sync::{mpsc, oneshot};

pub use agent::{Agent, Ctx, RpcError, StateError, NO_HANDLER};
pub use calls::{Decision, LocalModel, ModelClient, ModelFuture, ModelRequest, ModelResponse};
pub use channels::Email;
pub use fiber::{Fiber, Recovered};
pub use mcp::McpTarget;
pub use openai::{OpenAiConfigError, OpenAiModel};
pub use schedule::{ScheduleCreateError, When, MAX_ATTEMPTS};
pub use store::{ApprovalRow, FiberRow, McpServerRow, ScheduleRow, Store, StoreError, WorkflowRow};

/// The runtime's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RuntimeConfig {
    /// Where the agents' databases live (`<data_dir>/<class>/<name>.sqlite`).
    pub data_dir: PathBuf,
    /// An instance idle this long hibernates (memory released, state kept), in milliseconds.
    pub idle_hibernate_ms: u64,
    /// Largest state, serialized, in bytes; a bigger update is refused (`state:rejected`).
    pub state_max_bytes: u64,
    /// Inputs waiting for one instance; past it callers get an `Overloaded` error.
    pub mailbox_capacity: usize,
    /// An interrupted fiber older than this is given up (`fiber:recovery:skipped`,
    /// `max_age_exceeded`), in milliseconds.
    pub fiber_max_age_ms: u64,
    /// An input that waited in the mailbox this long before its turn is reported
    /// (`job:slow_dispatch`), in milliseconds.
    pub slow_dispatch_ms: u64,
    /// Inputs waiting in one mailbox that trigger `job:backlog_warning` (once, until the
    /// backlog falls below half of it).
    pub backlog_warning_inputs: usize,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("agents"),
            idle_hibernate_ms: 30_000,
            state_max_bytes: 1024 * 1024,
            mailbox_capacity: 1024,
            fiber_max_age_ms: 24 * 3600 * 1000,
            slow_dispatch_ms: 1000,
            backlog_warning_inputs: 256,
        }
    }
}

/// Sequence numbers reserved ahead in the agent's database: after a crash the agent resumes
/// past the reservation, so no number is ever used twice (a crash leaves a gap, the sign of
/// possibly lost events).
const SEQ_BLOCK: u64 = 4096;

enum Msg {
    Rpc {
        method: String,
        args: Value,
        caller: Option<Name>,
        trace: Option<TraceContext>,
        reply: oneshot::Sender<Result<Value, RpcError>>,
    },
    /// A schedule of a hibernated (or not yet started) agent fell due: wake and run it.
    Alarm,
    /// A connection, a chat message or an email.
    Channel(channels::ChannelMsg),
}

impl Msg {
    /// What the input is, for `job:slow_dispatch`.
    fn job(&self) -> Name {
        match self {
            Msg::Rpc { method, .. } => method.as_str().into(),
            Msg::Alarm => Name::new_static("alarm"),
            Msg::Channel(channels::ChannelMsg::Connect { .. }) => Name::new_static("connect"),
            Msg::Channel(channels::ChannelMsg::Message { .. }) => Name::new_static("message"),
            Msg::Channel(channels::ChannelMsg::Disconnect { .. }) => Name::new_static("disconnect"),
            Msg::Channel(channels::ChannelMsg::Email { .. }) => Name::new_static("email"),
        }
    }

    /// Fails an input that will never run.
    fn refuse(self, e: &RpcError) {
        match self {
            Msg::Rpc { reply, .. } => {
                let _ = reply.send(Err(e.clone()));
            }
            Msg::Alarm => {}
            Msg::Channel(c) => channels::refuse(c, e),
        }
    }
}

/// An input and when it was sent.
type Envelope = (Instant, Msg);

/// An instance in memory: its mailbox, its eviction signal, its task.
struct Slot {
    tx: mpsc::Sender<Envelope>,
    evict: Arc<tokio::sync::Notify>,
    task: tokio::task::JoinHandle<()>,
}

type Spawner = dyn Fn(
        Arc<Inner>,
        AgentRef,
        mpsc::Receiver<Envelope>,
        Arc<tokio::sync::Notify>,
    ) -> tokio::task::JoinHandle<()>
    + Send
    + Sync;

struct Inner {
    bus: Bus,
    cfg: RuntimeConfig,
    handle: tokio::runtime::Handle,
    classes: RwLock<HashMap<String, Arc<Spawner>>>,
    instances: Mutex<HashMap<AgentRef, Slot>>,
    /// Set by [`Runtime::shutdown`]: no new inputs.
    closed: std::sync::atomic::AtomicBool,
    model: RwLock<Option<Arc<dyn ModelClient>>>,
    alarms: Mutex<HashMap<AgentRef, tokio::task::AbortHandle>>,
}

impl Inner {
    fn instances(&self) -> MutexGuard<'_, HashMap<AgentRef, Slot>> {
        self.instances.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn db_path(&self, agent: &AgentRef) -> PathBuf {
        let safe = |s: &str| -> String {
            s.chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                        c
                    } else {
                        '_'
                    }
                })
                .collect()
        };
        // The escaped name plus a hash of the real one: distinct names never share a file.
        let hash = agent.name.bytes().fold(0xcbf29ce484222325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
        });
        self.cfg
            .data_dir
            .join(safe(&agent.class))
            .join(format!("{}-{hash:016x}.sqlite", safe(&agent.name)))
    }
}

/// The runtime: registers agent classes and routes inputs to their instances.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("cfg", &self.inner.cfg)
            .finish_non_exhaustive()
    }
}

/// The wall clock, Unix nanoseconds (0 before 1970): the one clock the runtime persists.
pub(crate) fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

impl Runtime {
    /// A runtime emitting on `bus`, running its instances on `handle`.
    pub fn new(bus: Bus, cfg: RuntimeConfig, handle: tokio::runtime::Handle) -> Self {
        Self {
            inner: Arc::new(Inner {
                bus,
                cfg,
                handle,
                classes: RwLock::new(HashMap::new()),
                instances: Mutex::new(HashMap::new()),
                model: RwLock::new(Some(Arc::new(LocalModel))),
                alarms: Mutex::new(HashMap::new()),
                closed: std::sync::atomic::AtomicBool::new(false),
            }),
        }
    }

    /// Registers an agent class; `make` builds an instance for a name (at start and wake).
    pub fn register<A, F>(&self, class: &str, make: F)
    where
        A: Agent,
        F: Fn(&AgentRef) -> A + Send + Sync + 'static,
    {
        let make = Arc::new(make);
        let spawner: Arc<Spawner> = Arc::new(move |inner: Arc<Inner>, agent, rx, evict| {
            let make = make.clone();
            let handle = inner.handle.clone();
            handle.spawn(run_instance(
                inner,
                agent,
                rx,
                evict,
                move |a: &AgentRef| make(a),
            ))
        });
        if let Ok(mut classes) = self.inner.classes.write() {
            classes.insert(class.to_owned(), spawner);
        }
    }

    /// After a process start: finds every agent in the data directory with a schedule and
    /// sets its alarm, so schedules fire (and missed cron runs are reported) without waiting
    /// for an input. Returns how many agents have alarms.
    pub fn resume(&self) -> Result<usize, StoreError> {
        let mut n = 0;
        let Ok(classes) = std::fs::read_dir(&self.inner.cfg.data_dir) else {
            return Ok(0);
        };
        for class_dir in classes.flatten() {
            let Ok(files) = std::fs::read_dir(class_dir.path()) else {
                continue;
            };
            for f in files.flatten() {
                let path = f.path();
                if path.extension().is_none_or(|e| e != "sqlite") {
                    continue;
                }
                // One unreadable database must not keep the others' schedules from firing.
                let found = Store::open(&path).and_then(|s| s.agent_and_next_due());
                if let Ok(Some((class, name, Some(due)))) = found {
                    set_alarm(&self.inner, AgentRef::new(class, name), due);
                    n += 1;
                }
            }
        }
        Ok(n)
    }

    /// Sets the model client agents' `ctx.model` calls use (default: [`LocalModel`]).
    pub fn set_model(&self, model: Arc<dyn ModelClient>) {
        if let Ok(mut m) = self.inner.model.write() {
            *m = Some(model);
        }
    }

    /// Instances in memory now.
    pub fn active(&self) -> usize {
        self.inner.instances().len()
    }

    /// Calls `method` on the agent `class/name` (started or woken if needed), continuing
    /// `trace` (the caller's context) when given.
    pub async fn rpc(
        &self,
        class: &str,
        name: &str,
        method: &str,
        args: Value,
        trace: Option<TraceContext>,
    ) -> Result<Value, RpcError> {
        self.rpc_from(class, name, method, args, trace, None).await
    }

    /// As [`Runtime::rpc`], naming the caller (a connection id or `Class/name`).
    pub async fn rpc_from(
        &self,
        class: &str,
        name: &str,
        method: &str,
        args: Value,
        trace: Option<TraceContext>,
        caller: Option<&str>,
    ) -> Result<Value, RpcError> {
        let (reply, rx) = oneshot::channel();
        let msg = Msg::Rpc {
            method: method.to_owned(),
            args,
            caller: caller.map(Name::from),
            trace,
            reply,
        };
        self.send(AgentRef::new(class, name), msg)?;
        rx.await
            .map_err(|_| RpcError::new("Internal", "the agent stopped before answering"))?
    }

    /// Evicts `class/name` from memory at once, as a host does to a busy instance it must
    /// move or restart: whatever it is doing stops at its next await point (a fiber keeps its
    /// last checkpoint and is recovered on the next start), and the inputs waiting for it
    /// go to a new instance (`agent:wake`, trigger `evicted`) started from what it stored.
    /// Returns whether it was in memory.
    pub fn evict(&self, class: &str, name: &str) -> bool {
        match self.inner.instances().get(&AgentRef::new(class, name)) {
            Some(slot) => {
                slot.evict.notify_one();
                true
            }
            None => false,
        }
    }

    /// Stops the runtime: refuses new inputs, lets every instance finish what is in its
    /// mailbox, close its MCP connections and hibernate, and cancels the alarms (their
    /// schedules stay stored: a runtime started on the same directory resumes them).
    /// Instances still busy after `grace` are evicted (see [`Runtime::evict`]).
    pub async fn shutdown(&self, grace: Duration) {
        // Under the lock every sender takes: no instance starts after this.
        let slots: Vec<Slot> = {
            let mut map = self.inner.instances();
            self.inner
                .closed
                .store(true, std::sync::atomic::Ordering::SeqCst);
            map.drain().map(|(_, s)| s).collect()
        };
        if let Ok(mut alarms) = self.inner.alarms.lock() {
            for (_, a) in alarms.drain() {
                a.abort();
            }
        }
        // Every mailbox closes at once; then one deadline for all of them.
        let deadline = tokio::time::Instant::now() + grace;
        let waiting: Vec<_> = slots.into_iter().map(|s| (s.task, s.evict)).collect();
        for (mut task, evict) in waiting {
            if tokio::time::timeout_at(deadline, &mut task).await.is_err() {
                evict.notify_one();
                let _ = task.await;
            }
        }
    }

    fn send(&self, agent: AgentRef, msg: Msg) -> Result<(), RpcError> {
        self.send_at(agent, Instant::now(), msg).map_err(|(e, _)| e)
    }

    /// Delivers `msg` (sent at `at`) to the agent's mailbox, starting the instance if
    /// needed; on failure, gives the input back with the reason (a hand-off, not a public
    /// error: its size does not matter).
    #[allow(clippy::result_large_err)]
    fn send_at(&self, agent: AgentRef, at: Instant, msg: Msg) -> Result<(), (RpcError, Msg)> {
        let mut map = self.inner.instances();
        // Held through the send: an instance leaving memory (hibernating, evicted) checks its
        // mailbox and removes itself under this lock, so an input is either in the mailbox
        // it drains or goes to its successor.
        let tx = match self.mailbox(&mut map, &agent) {
            Ok(tx) => tx,
            Err(e) => return Err((e, msg)),
        };
        tx.try_send((at, msg)).map_err(|e| match e {
            mpsc::error::TrySendError::Full((_, msg)) => (
                RpcError::new(
                    "Overloaded",
                    format!(
                        "{agent} has {} inputs waiting",
                        self.inner.cfg.mailbox_capacity
                    ),
                ),
                msg,
            ),
            mpsc::error::TrySendError::Closed((_, msg)) => {
                (RpcError::new("Internal", format!("{agent} stopped")), msg)
            }
        })
    }

    /// The mailbox of `agent`, starting an instance when none is in memory. Called with the
    /// instances lock held (`map`).
    fn mailbox(
        &self,
        map: &mut HashMap<AgentRef, Slot>,
        agent: &AgentRef,
    ) -> Result<mpsc::Sender<Envelope>, RpcError> {
        if self.inner.closed.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(RpcError::new(
                "ShuttingDown",
                "the runtime is shutting down",
            ));
        }
        if let Some(slot) = map.get(agent) {
            if !slot.tx.is_closed() {
                return Ok(slot.tx.clone());
            }
        }
        let spawner = self
            .inner
            .classes
            .read()
            .ok()
            .and_then(|c| c.get(agent.class.as_str()).cloned())
            .ok_or_else(|| RpcError::new("NotFound", format!("no agent class {}", agent.class)))?;
        let (tx, rx) = mpsc::channel(self.inner.cfg.mailbox_capacity.max(1));
        let evict = Arc::new(tokio::sync::Notify::new());
        let task = spawner(self.inner.clone(), agent.clone(), rx, evict.clone());
        map.insert(
            agent.clone(),
            Slot {
                tx: tx.clone(),
                evict,
                task,
            },
        );
        Ok(tx)
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
    ctx.timer_hold_until = schedule::now_ms() + wait_ms;
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
            match runtime.mailbox(&mut map, agent) {
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

async fn run_instance<A: Agent>(
    inner: Arc<Inner>,
    agent: AgentRef,
    mut rx: mpsc::Receiver<Envelope>,
    evict: Arc<tokio::sync::Notify>,
    make: impl Fn(&AgentRef) -> A,
) {
    let started = Instant::now();
    let path = inner.db_path(&agent);
    let existed = path.exists();
    let opened = store::Store::open(&path).and_then(|store| {
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
            ("input", now_ns().saturating_sub(hibernated_at) / 1_000_000)
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
        runtime: Some(Runtime {
            inner: inner.clone(),
        }),
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
            tokio::time::Instant::now()
                + Duration::from_millis(due.saturating_sub(schedule::now_ms()))
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
                    ctx.unhibernate();
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

impl Ctx {
    /// Keeps the sequence reservation ahead of the numbers in use (called after anything that
    /// may have emitted many events, and by the storage-writing calls themselves). The
    /// in-memory mark moves only once the new reservation is stored.
    pub(crate) fn keep_reserved(&mut self) {
        let last = self.emitter.last_seq();
        if last + SEQ_BLOCK / 2 > self.reserved {
            let next = last + SEQ_BLOCK;
            if self.store.set_meta("seq_reserved", next).is_ok() {
                self.reserved = next;
            }
        }
    }

    /// Undoes the hibernation bookkeeping when an input arrived during it.
    fn unhibernate(&mut self) {
        let _ = self.store.set_meta("hibernated_at_ns", 0);
        self.reserved = 0;
        self.keep_reserved();
        self.emitter.emit_with(|m| {
            m.outcome = Some(Outcome::Ok);
            m.duration_ns = Some(0);
            AgentWake {
                trigger: Name::new_static("input"),
                hibernated_ms: 0,
            }
        });
    }
}

/// Wakes `agent` when its next schedule is due (Unix ms); one alarm per agent, the latest
/// replacing any earlier one.
fn set_alarm(inner: &Arc<Inner>, agent: AgentRef, due_ms: u64) {
    if inner.closed.load(std::sync::atomic::Ordering::SeqCst) {
        // Shut down: the schedule stays stored for the next runtime.
        return;
    }
    let inner2 = inner.clone();
    let target = agent.clone();
    let task = inner.handle.spawn(async move {
        let wait = due_ms.saturating_sub(schedule::now_ms());
        tokio::time::sleep(Duration::from_millis(wait)).await;
        if let Ok(mut alarms) = inner2.alarms.lock() {
            alarms.remove(&target);
        }
        let _ = Runtime { inner: inner2 }.send(target, Msg::Alarm);
    });
    if let Ok(mut alarms) = inner.alarms.lock() {
        if let Some(old) = alarms.insert(agent, task.abort_handle()) {
            old.abort();
        }
    }
}

/// State is on disk already: keep the exact sequence number and the time, and say so.
fn hibernate(ctx: &Ctx, last_input: Instant) {
    let idle_ms = last_input.elapsed().as_millis() as u64;
    ctx.emitter.emit(|| AgentHibernate { idle_ms });
    let _ = ctx.store.set_meta("seq_reserved", ctx.emitter.last_seq());
    let _ = ctx.store.set_meta("hibernated_at_ns", now_ns());
}
