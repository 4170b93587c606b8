//! The host: the public [`Runtime`] handle, the agents' mailboxes, starting instances on
//! first use, eviction, alarms and shutdown.
//!
//! Every input (an RPC, a connection, a chat message, an email, an alarm) becomes a [`Msg`]
//! in the bounded mailbox of one instance; the host starts that instance when it is not in
//! memory. Everything an instance does with its inputs is in `instance.rs`, which also holds
//! `Runtime::register` (the one place that names the instance loop), so that this module
//! needs nothing above it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use serde_json::Value;
use sightline_bus::Bus;
use sightline_event::{AgentRef, Name, TraceContext};
use tokio::sync::{mpsc, oneshot};

use crate::channels::{self, ChannelMsg};
use crate::clock::now_ms;
use crate::config::RuntimeConfig;
use crate::ctx_state::{CallFuture, Caller, Email};
use crate::error::RpcError;
use crate::model::{LocalModel, ModelClient};
use crate::store::{Store, StoreError};

/// An input to one instance.
pub(crate) enum Msg {
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
    pub(crate) fn job(&self) -> Name {
        match self {
            Msg::Rpc { method, .. } => method.as_str().into(),
            Msg::Alarm => Name::new_static("alarm"),
            Msg::Channel(channels::ChannelMsg::Connect { .. }) => Name::new_static("connect"),
            Msg::Channel(channels::ChannelMsg::Message { .. }) => Name::new_static("message"),
            Msg::Channel(channels::ChannelMsg::Disconnect { .. }) => Name::new_static("disconnect"),
            Msg::Channel(channels::ChannelMsg::Email { .. }) => Name::new_static("email"),
        }
    }

    /// What an input that starts a hibernated agent reports as its `agent:wake` trigger.
    fn wake_trigger(&self) -> &'static str {
        match self {
            Msg::Alarm => "alarm",
            _ => "input",
        }
    }

    /// Fails an input that will never run.
    pub(crate) fn refuse(self, e: &RpcError) {
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
pub(crate) type Envelope = (Instant, Msg);

/// An instance in memory: its mailbox, its eviction signal, its task.
pub(crate) struct Slot {
    pub(crate) tx: mpsc::Sender<Envelope>,
    pub(crate) evict: Arc<tokio::sync::Notify>,
    task: tokio::task::JoinHandle<()>,
}

/// Starts an instance of one class: its task, given the host, the agent, its mailbox, its
/// eviction signal and what woke it (set by `Runtime::register`, in `instance.rs`).
pub(crate) type Spawner = dyn Fn(
        Arc<Inner>,
        AgentRef,
        mpsc::Receiver<Envelope>,
        Arc<tokio::sync::Notify>,
        &'static str,
    ) -> tokio::task::JoinHandle<()>
    + Send
    + Sync;

/// What the host shares with every instance it runs.
pub(crate) struct Inner {
    pub(crate) bus: Bus,
    pub(crate) cfg: RuntimeConfig,
    pub(crate) handle: tokio::runtime::Handle,
    pub(crate) classes: RwLock<HashMap<String, Arc<Spawner>>>,
    instances: Mutex<HashMap<AgentRef, Slot>>,
    /// Set by [`Runtime::shutdown`]: no new inputs.
    closed: std::sync::atomic::AtomicBool,
    pub(crate) model: RwLock<Option<Arc<dyn ModelClient>>>,
    alarms: Mutex<HashMap<AgentRef, tokio::task::AbortHandle>>,
}

impl Inner {
    pub(crate) fn instances(&self) -> MutexGuard<'_, HashMap<AgentRef, Slot>> {
        self.instances.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn db_path(&self, agent: &AgentRef) -> PathBuf {
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
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("cfg", &self.inner.cfg)
            .finish_non_exhaustive()
    }
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

    /// Whether the agent `class/name` is in memory now (started and not yet hibernated,
    /// evicted or shut down). A hibernating instance stops being resident once it has
    /// stored its bookkeeping and emitted `agent:hibernate`; the next input or its alarm
    /// starts it again.
    pub fn is_resident(&self, class: &str, name: &str) -> bool {
        self.inner
            .instances()
            .get(&AgentRef::new(class, name))
            .is_some_and(|slot| !slot.tx.is_closed())
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

    pub(crate) fn send(&self, agent: AgentRef, msg: Msg) -> Result<(), RpcError> {
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
        let tx = match self.mailbox(&mut map, &agent, msg.wake_trigger()) {
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

    /// The mailbox of `agent`, starting an instance when none is in memory (`trigger`: what
    /// its `agent:wake` reports if it was hibernated). Called with the instances lock held
    /// (`map`).
    pub(crate) fn mailbox(
        &self,
        map: &mut HashMap<AgentRef, Slot>,
        agent: &AgentRef,
        trigger: &'static str,
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
        let task = spawner(
            self.inner.clone(),
            agent.clone(),
            rx,
            evict.clone(),
            trigger,
        );
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

    // ----- connections, chat and email (handled in `channels.rs`) -----

    /// Opens a client connection to `class/name` (started or woken if needed): emits
    /// `connect` and calls the agent's `on_connect`, which may refuse it.
    pub async fn connect(&self, class: &str, name: &str, connection: &str) -> Result<(), RpcError> {
        let (reply, rx) = oneshot::channel();
        let msg = ChannelMsg::Connect {
            connection: connection.into(),
            reply,
        };
        self.send(AgentRef::new(class, name), Msg::Channel(msg))?;
        answer(rx).await
    }

    /// Sends a chat message on `connection`; answers with the agent's reply. Dropping the
    /// future before the agent starts on it cancels the message (`message:cancel`).
    pub async fn message(
        &self,
        class: &str,
        name: &str,
        connection: &str,
        request_id: &str,
        text: &str,
        trace: Option<TraceContext>,
    ) -> Result<String, RpcError> {
        let (reply, rx) = oneshot::channel();
        let msg = ChannelMsg::Message {
            connection: connection.into(),
            request_id: request_id.into(),
            text: text.to_owned(),
            trace,
            reply,
        };
        self.send(AgentRef::new(class, name), Msg::Channel(msg))?;
        answer(rx).await
    }

    /// Closes a client connection (`disconnect` with the WebSocket close `code`).
    pub fn disconnect(
        &self,
        class: &str,
        name: &str,
        connection: &str,
        code: u16,
        reason: Option<&str>,
    ) -> Result<(), RpcError> {
        let msg = ChannelMsg::Disconnect {
            connection: connection.into(),
            code,
            reason: reason.map(str::to_owned),
        };
        self.send(AgentRef::new(class, name), Msg::Channel(msg))
    }

    /// Delivers an email to `class/name`: emits `email:receive` and calls `on_email`.
    pub async fn email(&self, class: &str, name: &str, email: Email) -> Result<(), RpcError> {
        let (reply, rx) = oneshot::channel();
        let msg = ChannelMsg::Email { email, reply };
        self.send(AgentRef::new(class, name), Msg::Channel(msg))?;
        answer(rx).await
    }
}

async fn answer<T>(rx: oneshot::Receiver<Result<T, RpcError>>) -> Result<T, RpcError> {
    rx.await
        .map_err(|_| RpcError::new("Internal", "the agent stopped before answering"))?
}

/// `ctx.call_agent` goes through the host like any other caller.
impl Caller for Runtime {
    fn call<'a>(
        &'a self,
        class: &'a str,
        name: &'a str,
        method: &'a str,
        args: Value,
        trace: Option<TraceContext>,
        caller: String,
    ) -> CallFuture<'a> {
        Box::pin(async move {
            self.rpc_from(class, name, method, args, trace, Some(&caller))
                .await
        })
    }
}

/// Wakes `agent` when its next schedule is due (Unix ms); one alarm per agent, the latest
/// replacing any earlier one.
pub(crate) fn set_alarm(inner: &Arc<Inner>, agent: AgentRef, due_ms: u64) {
    if inner.closed.load(std::sync::atomic::Ordering::SeqCst) {
        // Shut down: the schedule stays stored for the next runtime.
        return;
    }
    let inner2 = inner.clone();
    let target = agent.clone();
    let task = inner.handle.spawn(async move {
        let wait = due_ms.saturating_sub(now_ms());
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
