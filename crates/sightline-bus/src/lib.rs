//! # sightline-bus: free when nobody listens
//!
//! Agents emit a lot of events and most of the time nobody is looking. The bus makes an emit
//! that no subscriber wants cost **one relaxed atomic load and a branch**: the payload is built
//! by a closure that only runs after that check, so an uninteresting emit allocates nothing,
//! reads no clock and generates no id. When somebody *is* interested, the event is built once
//! and offered to each matching subscriber's own bounded queue, and the emitting agent is never
//! blocked unless that subscriber explicitly chose [`Overflow::Block`]. Every event a queue
//! could not take is counted, per subscriber and [`DropReason`], readable at any moment.
//!
//! The pieces:
//! - [`Bus`]: the interest mask and the registry of subscriptions. Cheap to clone.
//! - [`Emitter`]: one per agent. Stamps agent, per-agent sequence number, time, id and trace
//!   context. `Send` but not `Sync`: like the Durable Object it stands for, one agent emits
//!   from one place at a time, which is what makes per-agent order hold.
//! - [`Subscription`]: a filtered, bounded queue with sync and async batch receive. Dropping
//!   it unsubscribes and the interest mask is recomputed.
//!
//! ```
//! use std::time::Duration;
//! use sightline_bus::{Bus, Filter, SubscribeOptions};
//! use sightline_event::{Kind, KindSet, ScheduleExecute};
//!
//! let bus = Bus::new();
//! let agent = bus.emitter("Support", "ticket-4411");
//!
//! // Nobody listens: the closure never runs.
//! agent.emit(|| -> ScheduleExecute { unreachable!() });
//!
//! let sub = bus.subscribe(SubscribeOptions::new("example")
//!     .filter(Filter::kinds(KindSet::parse("schedule").unwrap())));
//! agent.emit(|| ScheduleExecute { callback: "digest".into(), id: "s1".into(), attempt: 1, lateness_ms: 3 });
//! let event = sub.recv_timeout(Duration::from_secs(1)).unwrap();
//! assert_eq!(event.kind(), Kind::ScheduleExecute);
//! assert_eq!(event.seq, 1);
//! ```
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod queue;
mod sync;

use std::cell::{Cell, RefCell};
use std::fmt;
use std::time::{Duration, Instant};

use smol_str::SmolStr;

pub use sightline_event as event;
use sightline_event::{
    now_unix_ns, AgentRef, Event, EventId, EventPayload, Kind, KindSet, Outcome, Payload, Severity,
    TraceContext, KIND_WORDS, SCHEMA_VERSION,
};

use queue::Queue;
use sync::{Arc, AtomicBool, AtomicU64, AtomicUsize, Mutex, MutexGuard, Ordering};

/// Default queue capacity of a subscription, in events.
pub const DEFAULT_CAPACITY: usize = 8192;

// ===== Filter =====

/// What a subscriber wants: kinds, agent classes, minimum severity. All must match.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    /// The kinds wanted. This is also what the bus's interest mask is made of.
    pub kinds: KindSet,
    /// Agent classes wanted; empty means every class.
    pub classes: Vec<SmolStr>,
    /// The lowest severity wanted.
    pub min_severity: Severity,
}

impl Default for Filter {
    fn default() -> Self {
        Self::all()
    }
}

impl Filter {
    /// Every event.
    pub fn all() -> Self {
        Self {
            kinds: KindSet::all(),
            classes: Vec::new(),
            min_severity: Severity::Trace,
        }
    }

    /// Every event of these kinds.
    pub fn kinds(kinds: KindSet) -> Self {
        Self {
            kinds,
            ..Self::all()
        }
    }

    /// Restricts to these agent classes.
    pub fn classes<I, S>(mut self, classes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<SmolStr>,
    {
        self.classes = classes.into_iter().map(Into::into).collect();
        self
    }

    /// Restricts to this severity and above.
    pub fn min_severity(mut self, severity: Severity) -> Self {
        self.min_severity = severity;
        self
    }

    /// Whether an event matches.
    #[inline]
    pub fn matches(&self, event: &Event) -> bool {
        self.matches_parts(event.kind(), event.severity, &event.agent.class)
    }

    /// Whether an event with this kind, severity and agent class would match.
    #[inline(always)]
    pub fn matches_parts(&self, kind: Kind, severity: Severity, class: &str) -> bool {
        self.kinds.contains(kind)
            && severity >= self.min_severity
            && (self.classes.is_empty() || self.classes.iter().any(|c| c == class))
    }
}

// ===== Overflow / drops =====

/// What happens when a subscriber's queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Overflow {
    /// Refuse the new event (counted as [`DropReason::QueueFull`]). The agent never waits.
    #[default]
    DropNewest,
    /// Evict the oldest queued event to make room (counted as [`DropReason::Overwritten`]).
    /// The agent never waits.
    DropOldest,
    /// Make the emitting agent wait for room, up to `timeout`, then drop the new event
    /// (counted as [`DropReason::BlockTimeout`]). Only for subscribers that must not lose
    /// events and accept slowing agents down.
    Block {
        /// The longest an emit may wait.
        timeout: Duration,
    },
}

/// Why an event did not reach a subscriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DropReason {
    /// The queue was full and the policy is [`Overflow::DropNewest`].
    QueueFull,
    /// The event was evicted by a newer one under [`Overflow::DropOldest`].
    Overwritten,
    /// The queue stayed full for the whole [`Overflow::Block`] timeout.
    BlockTimeout,
    /// The subscription was closed while the event was on its way.
    Closed,
}

impl DropReason {
    /// Every reason.
    pub const ALL: [DropReason; 4] = [
        DropReason::QueueFull,
        DropReason::Overwritten,
        DropReason::BlockTimeout,
        DropReason::Closed,
    ];

    /// The label value used in metrics and reports.
    pub const fn name(self) -> &'static str {
        match self {
            DropReason::QueueFull => "queue_full",
            DropReason::Overwritten => "overwritten",
            DropReason::BlockTimeout => "block_timeout",
            DropReason::Closed => "closed",
        }
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Events dropped by one subscription, by reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DropCounts(pub [u64; 4]);

impl DropCounts {
    /// The count for one reason.
    pub fn get(&self, reason: DropReason) -> u64 {
        self.0[reason as usize]
    }

    /// All drops.
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    /// `(reason, count)` pairs.
    pub fn iter(&self) -> impl Iterator<Item = (DropReason, u64)> + '_ {
        DropReason::ALL.iter().map(|r| (*r, self.get(*r)))
    }
}

/// A subscription's counters at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct SubscriptionStats {
    /// The subscriber's name (a sink name).
    pub name: SmolStr,
    /// Events taken out of the queue by the subscriber.
    pub received: u64,
    /// Events waiting in the queue.
    pub queued: usize,
    /// The queue's capacity.
    pub capacity: usize,
    /// Events that never reached the queue, or were evicted from it.
    pub dropped: DropCounts,
}

// ===== SubscribeOptions =====

/// How to subscribe: name, filter, queue capacity, overflow policy, wake threshold.
#[derive(Debug, Clone)]
pub struct SubscribeOptions {
    name: SmolStr,
    filter: Filter,
    capacity: usize,
    overflow: Overflow,
    wake_threshold: usize,
}

impl SubscribeOptions {
    /// Every event, [`DEFAULT_CAPACITY`], [`Overflow::DropNewest`], woken on every event.
    pub fn new(name: impl Into<SmolStr>) -> Self {
        Self {
            name: name.into(),
            filter: Filter::all(),
            capacity: DEFAULT_CAPACITY,
            overflow: Overflow::DropNewest,
            wake_threshold: 1,
        }
    }

    /// Sets the filter.
    pub fn filter(mut self, filter: Filter) -> Self {
        self.filter = filter;
        self
    }

    /// Sets the queue capacity (at least 1).
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity.max(1);
        self
    }

    /// Sets the overflow policy.
    pub fn overflow(mut self, overflow: Overflow) -> Self {
        self.overflow = overflow;
        self
    }

    /// A waiting receiver is woken once this many events are queued (or its timeout passes).
    /// 1 (the default) means "as soon as anything arrives"; a batching sink sets it near its
    /// batch size so that producers almost never pay for a wake-up.
    pub fn wake_threshold(mut self, events: usize) -> Self {
        self.wake_threshold = events.max(1);
        self
    }
}

// ===== Bus =====

/// The event bus. Clones share one bus.
#[derive(Clone)]
pub struct Bus {
    shared: Arc<Shared>,
}

struct Shared {
    /// One bit per kind: is any subscriber interested?
    interest: [AtomicU64; KIND_WORDS],
    /// Bumped (under the registry lock) whenever the set of subscriptions changes.
    generation: AtomicU64,
    registry: Mutex<Registry>,
}

struct Registry {
    next_id: u64,
    subs: Arc<Vec<Arc<SubShared>>>,
}

type Snapshot = Arc<Vec<Arc<SubShared>>>;

impl Default for Bus {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Bus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bus")
            .field("subscriptions", &self.snapshot().len())
            .finish()
    }
}

impl Bus {
    /// A bus with no subscribers.
    pub fn new() -> Self {
        Self {
            shared: Arc::new(Shared {
                interest: std::array::from_fn(|_| AtomicU64::new(0)),
                generation: AtomicU64::new(0),
                registry: Mutex::new(Registry {
                    next_id: 0,
                    subs: Arc::new(Vec::new()),
                }),
            }),
        }
    }

    /// Whether any subscriber wants events of this kind: one relaxed load and a bit test.
    #[inline(always)]
    pub fn interested(&self, kind: Kind) -> bool {
        self.shared.interested(kind)
    }

    /// An emitter for one agent instance. Its sequence numbers start at 1.
    pub fn emitter(&self, class: impl Into<SmolStr>, name: impl Into<SmolStr>) -> Emitter {
        self.emitter_for(AgentRef::new(class, name), 0)
    }

    /// An emitter for an agent that already emitted `last_seq` events (a restarted agent
    /// continuing its sequence).
    pub fn emitter_for(&self, agent: AgentRef, last_seq: u64) -> Emitter {
        Emitter {
            shared: self.shared.clone(),
            agent,
            seq: Cell::new(last_seq),
            cache: RefCell::new((u64::MAX, Arc::new(Vec::new()))),
            trace: Cell::new(None),
        }
    }

    /// Subscribes. The returned handle receives every matching event emitted after this call
    /// returns (or counts it as dropped); dropping it unsubscribes.
    pub fn subscribe(&self, opts: SubscribeOptions) -> Subscription {
        let mut reg = self.shared.lock();
        reg.next_id += 1;
        let sub = Arc::new(SubShared {
            id: reg.next_id,
            name: opts.name,
            filter: opts.filter,
            overflow: opts.overflow,
            wake_threshold: opts.wake_threshold,
            queue: Queue::new(opts.capacity),
            closed: AtomicBool::new(false),
            consumer_waiting: AtomicBool::new(false),
            producers_waiting: AtomicUsize::new(0),
            received: AtomicU64::new(0),
            dropped: std::array::from_fn(|_| AtomicU64::new(0)),
            wake: Bell::new(),
            space: Bell::new(),
        });
        let mut subs: Vec<_> = reg.subs.iter().cloned().collect();
        subs.push(sub.clone());
        self.shared.install(&mut reg, subs);
        drop(reg);
        Subscription {
            sub,
            bus: self.clone(),
        }
    }

    /// Offers an already built event (ingest, replay) to every matching subscriber, keeping its
    /// id, sequence number and timestamp.
    pub fn publish(&self, event: Event) {
        if self.interested(event.kind()) {
            let snapshot = self.snapshot();
            deliver(&snapshot, event);
        }
    }

    /// Offers a batch of already built events, taking the subscription snapshot once.
    pub fn publish_batch(&self, events: impl IntoIterator<Item = Event>) {
        let snapshot = self.snapshot();
        for event in events {
            if self.interested(event.kind()) {
                deliver(&snapshot, event);
            }
        }
    }

    /// Counters of every live subscription.
    pub fn stats(&self) -> Vec<SubscriptionStats> {
        self.snapshot().iter().map(|s| s.stats()).collect()
    }

    fn snapshot(&self) -> Snapshot {
        self.shared.lock().subs.clone()
    }
}

impl Shared {
    #[inline(always)]
    fn interested(&self, kind: Kind) -> bool {
        let i = kind.index();
        self.interest[i / 64].load(Ordering::Relaxed) & (1 << (i % 64)) != 0
    }

    fn lock(&self) -> MutexGuard<'_, Registry> {
        // The registry holds no invariant a panicking holder could break half-way.
        self.registry.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Publishes a new set of subscriptions: snapshot, then generation, then interest, all
    /// under the registry lock, so concurrent (un)subscribes cannot interleave their masks.
    fn install(&self, reg: &mut Registry, subs: Vec<Arc<SubShared>>) {
        let mut mask = KindSet::EMPTY;
        for s in &subs {
            mask = mask.union(s.filter.kinds);
        }
        reg.subs = Arc::new(subs);
        self.generation.fetch_add(1, Ordering::Release);
        for (word, bits) in self.interest.iter().zip(mask.0) {
            word.store(bits, Ordering::Release);
        }
    }

    fn unsubscribe(&self, id: u64) {
        let mut reg = self.lock();
        let subs: Vec<_> = reg.subs.iter().filter(|s| s.id != id).cloned().collect();
        if subs.len() != reg.subs.len() {
            self.install(&mut reg, subs);
        }
    }

    /// Refreshes an emitter's cached snapshot if subscriptions changed since it was taken.
    #[inline(always)]
    fn refresh(&self, cache: &RefCell<(u64, Snapshot)>) {
        let generation = self.generation.load(Ordering::Acquire);
        if cache.borrow().0 != generation {
            self.refresh_slow(cache);
        }
    }

    #[cold]
    fn refresh_slow(&self, cache: &RefCell<(u64, Snapshot)>) {
        let reg = self.lock();
        *cache.borrow_mut() = (self.generation.load(Ordering::Acquire), reg.subs.clone());
    }
}

/// Offers an event to every matching subscription: moved into the only one, or shared (one
/// allocation, a reference count each) among several, as [`Emitter`] does.
fn deliver(subs: &[Arc<SubShared>], event: Event) {
    let mut matching = subs.iter().filter(|s| s.filter.matches(&event));
    let Some(first) = matching.next() else {
        return;
    };
    if matching.next().is_none() {
        first.offer(event);
        return;
    }
    let shared = std::sync::Arc::new(event);
    for sub in subs.iter().filter(|s| s.filter.matches(&shared)) {
        sub.offer_with(|| Queued::Shared(shared.clone()));
    }
}

// ===== Emitter =====

/// Extra envelope fields for one emit: severity override, outcome, duration, trace context.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Meta {
    /// Overrides the kind's default severity.
    pub severity: Option<Severity>,
    /// How the operation ended; a failure raises the severity to at least `error`.
    pub outcome: Option<Outcome>,
    /// How long the operation took.
    pub duration_ns: Option<u64>,
    /// The trace context; defaults to the emitter's current one.
    pub trace: Option<TraceContext>,
}

impl Meta {
    /// Sets the outcome and duration of an operation.
    pub fn op(&mut self, outcome: Outcome, duration: Duration) -> &mut Self {
        self.outcome = Some(outcome);
        self.duration_ns = Some(duration.as_nanos().min(u64::MAX as u128) as u64);
        self
    }
}

/// One agent's handle on the bus.
///
/// It stamps every event it builds with the agent's class and name, the next per-agent
/// sequence number, the time, a fresh id and the current trace context. Sequence numbers are
/// taken only when an event is built, so at the source they have no gaps; a gap seen
/// downstream means loss. It is `Send` but not `Sync` and not `Clone`: one agent emits from one
/// place at a time, which is what makes per-agent order hold on every queue.
pub struct Emitter {
    shared: Arc<Shared>,
    agent: AgentRef,
    seq: Cell<u64>,
    cache: RefCell<(u64, Snapshot)>,
    trace: Cell<Option<TraceContext>>,
}

impl fmt::Debug for Emitter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Emitter")
            .field("agent", &self.agent)
            .field("seq", &self.seq.get())
            .finish()
    }
}

impl Emitter {
    /// Emits the event `build` returns, if anybody wants this kind. Nobody does: one relaxed
    /// load and a branch, and `build` never runs.
    #[inline(always)]
    pub fn emit<P: EventPayload>(&self, build: impl FnOnce() -> P) {
        if self.shared.interested(P::KIND) {
            self.build_and_dispatch(Meta::default(), |_| build().into());
        }
    }

    /// Like [`emit`](Self::emit), with envelope extras set by the closure through [`Meta`].
    #[inline(always)]
    pub fn emit_with<P: EventPayload>(&self, build: impl FnOnce(&mut Meta) -> P) {
        if self.shared.interested(P::KIND) {
            self.build_and_dispatch(Meta::default(), |m| build(m).into());
        }
    }

    /// Whether anybody wants this kind (for callers that must prepare something costly
    /// before they can even write the closure).
    #[inline(always)]
    pub fn enabled(&self, kind: Kind) -> bool {
        self.shared.interested(kind)
    }

    /// Builds and delivers an event, whoever listens. Prefer [`emit`](Self::emit), which skips
    /// all of this when nobody does.
    pub fn emit_payload(&self, payload: Payload, meta: Meta) {
        self.build_and_dispatch(meta, |_| payload);
    }

    #[inline(always)]
    fn build_and_dispatch(&self, mut meta: Meta, build: impl FnOnce(&mut Meta) -> Payload) {
        let payload = build(&mut meta);
        self.dispatch(payload, &meta);
    }

    /// Stamps the envelope and offers the event to every matching subscriber. The event is
    /// built straight into each queue's slot (cloning the payload for all but the last), which
    /// saves several copies of a ~270-byte value on the hot path.
    #[inline(never)]
    fn dispatch(&self, payload: Payload, meta: &Meta) {
        let kind = payload.kind();
        let mut severity = meta.severity.unwrap_or(kind.default_severity());
        if meta.outcome.is_some_and(Outcome::is_failure) && severity < Severity::Error {
            severity = Severity::Error;
        }
        self.shared.refresh(&self.cache);
        let cache = self.cache.borrow();
        let mut matching = cache
            .1
            .iter()
            .filter(|s| s.filter.matches_parts(kind, severity, &self.agent.class));
        let Some(last) = matching.next() else {
            return;
        };
        let ts_ns = now_unix_ns();
        let seq = self.seq.get() + 1;
        self.seq.set(seq);
        let id = EventId::generate(ts_ns);
        let trace = meta.trace.or_else(|| self.trace.get());
        let make = |payload: &mut Option<Payload>| Event {
            schema_version: SCHEMA_VERSION,
            id,
            ts_ns,
            agent: self.agent.clone(),
            seq,
            trace_id: trace.map(|t| t.trace_id),
            span_id: trace.map(|t| t.span_id),
            parent_span_id: trace.and_then(|t| t.parent_span_id),
            severity,
            outcome: meta.outcome,
            duration_ns: meta.duration_ns,
            redaction: None,
            // `offer_with` calls its builder at most once, and each builder below owns a
            // fresh `Some`; the fallback is never taken.
            payload: payload.take().unwrap_or_else(|| Payload::default_for(kind)),
        };
        // The closures capture the payload by reference, so it is moved once: into the slot.
        let mut payload = Some(payload);
        let Some(second) = matching.next() else {
            // One subscription (the common case): built straight into its queue, no
            // allocation.
            last.offer_with(|| Queued::Own(make(&mut payload)));
            return;
        };
        // Several: one shared event, built once.
        let shared = std::sync::Arc::new(make(&mut payload));
        last.offer_with(|| Queued::Shared(shared.clone()));
        second.offer_with(|| Queued::Shared(shared.clone()));
        for next in matching {
            next.offer_with(|| Queued::Shared(shared.clone()));
        }
    }

    /// The agent this emitter stands for.
    pub fn agent(&self) -> &AgentRef {
        &self.agent
    }

    /// The last sequence number used (0 before the first event).
    pub fn last_seq(&self) -> u64 {
        self.seq.get()
    }

    /// Sets the trace context later events default to (the request being handled).
    pub fn set_trace(&self, trace: Option<TraceContext>) {
        self.trace.set(trace);
    }

    /// The current trace context.
    pub fn trace(&self) -> Option<TraceContext> {
        self.trace.get()
    }
}

// ===== Subscription =====

struct SubShared {
    id: u64,
    name: SmolStr,
    filter: Filter,
    overflow: Overflow,
    wake_threshold: usize,
    queue: Queue<Queued>,
    closed: AtomicBool,
    consumer_waiting: AtomicBool,
    producers_waiting: AtomicUsize,
    received: AtomicU64,
    dropped: [AtomicU64; 4],
    /// Rung by producers when the waiting consumer should wake.
    wake: Bell,
    /// Rung by the consumer when blocked producers may find room.
    space: Bell,
}

/// An event in a subscription's queue: owned when one subscription took it, shared when
/// several did — the emitting agent then pays one allocation and a reference count per
/// subscription instead of a deep copy each, and the copies (if any) are made on the
/// consuming threads, the last of them taking the original. `Own` stays inline on purpose:
/// the one-subscription path builds the event straight into the queue's slot, allocating
/// nothing.
#[allow(clippy::large_enum_variant)]
enum Queued {
    Own(Event),
    Shared(std::sync::Arc<Event>),
}

impl Queued {
    #[inline]
    fn into_event(self) -> Event {
        match self {
            Queued::Own(e) => e,
            Queued::Shared(a) => std::sync::Arc::try_unwrap(a).unwrap_or_else(|a| (*a).clone()),
        }
    }
}

impl SubShared {
    #[inline]
    fn count(&self, reason: DropReason) {
        self.dropped[reason as usize].fetch_add(1, Ordering::Relaxed);
    }

    #[inline(always)]
    fn offer(&self, event: Event) {
        self.offer_with(|| Queued::Own(event));
    }

    /// Offers the event `build` makes; `build` runs only if the queue has room (or, under
    /// [`Overflow::Block`], once room is awaited).
    #[inline(always)]
    fn offer_with(&self, build: impl FnOnce() -> Queued) {
        if self.closed.load(Ordering::Relaxed) {
            self.count(DropReason::Closed);
            return;
        }
        match self.overflow {
            Overflow::DropNewest => {
                if self.queue.push_with(build).is_err() {
                    self.full();
                    return;
                }
            }
            Overflow::DropOldest => {
                let mut build = build;
                loop {
                    match self.queue.push_with(build) {
                        Ok(()) => break,
                        Err(back) => build = back,
                    }
                    if self.queue.pop().is_some() {
                        self.count(DropReason::Overwritten);
                    }
                }
            }
            Overflow::Block { timeout } => {
                if !self.push_blocking(build(), timeout) {
                    return;
                }
            }
        }
        // SeqCst pairs with the consumer's SeqCst store before it re-checks the queue, so a
        // consumer about to sleep either sees this event or is woken (and it never sleeps past
        // its own timeout in any case).
        if self.consumer_waiting.load(Ordering::SeqCst) && self.queue.len() >= self.wake_threshold {
            self.wake.ring();
        }
    }

    #[cold]
    fn full(&self) {
        self.count(DropReason::QueueFull);
        // A waiting consumer may be waiting for a threshold the queue cannot exceed.
        if self.consumer_waiting.load(Ordering::SeqCst) {
            self.wake.ring();
        }
    }

    #[cold]
    fn push_blocking(&self, mut event: Queued, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            match self.queue.push(event) {
                Ok(()) => return true,
                Err(back) => event = back,
            }
            if self.closed.load(Ordering::Relaxed) {
                self.count(DropReason::Closed);
                return false;
            }
            let now = Instant::now();
            if now >= deadline {
                self.count(DropReason::BlockTimeout);
                return false;
            }
            self.wake.ring();
            self.producers_waiting.fetch_add(1, Ordering::SeqCst);
            // Re-check after announcing ourselves, then wait a bounded slice.
            if self.queue.len() >= self.queue.capacity() {
                self.space
                    .wait_until(deadline.min(now + Duration::from_millis(1)));
            }
            self.producers_waiting.fetch_sub(1, Ordering::SeqCst);
        }
    }

    fn stats(&self) -> SubscriptionStats {
        SubscriptionStats {
            name: self.name.clone(),
            received: self.received.load(Ordering::Relaxed),
            queued: self.queue.len(),
            capacity: self.queue.capacity(),
            dropped: DropCounts(std::array::from_fn(|i| {
                self.dropped[i].load(Ordering::Relaxed)
            })),
        }
    }
}

/// A one-slot doorbell: ringing an already rung bell is free, waiting consumes the ring.
struct Bell {
    tx: flume::Sender<()>,
    rx: flume::Receiver<()>,
}

impl Bell {
    fn new() -> Self {
        let (tx, rx) = flume::bounded(1);
        Self { tx, rx }
    }

    #[inline]
    fn ring(&self) {
        let _ = self.tx.try_send(());
    }

    fn wait_until(&self, deadline: Instant) {
        let _ = self.rx.recv_deadline(deadline);
    }

    async fn wait_until_async(&self, deadline: Instant) {
        let _ = tokio::time::timeout_at(deadline.into(), self.rx.recv_async()).await;
    }
}

/// Reads a subscription's counters from anywhere; see [`Subscription::probe`].
#[derive(Clone)]
pub struct Probe(Arc<SubShared>);

impl Probe {
    /// Counters at this moment.
    pub fn stats(&self) -> SubscriptionStats {
        self.0.stats()
    }
}

impl fmt::Debug for Probe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Probe").field(&self.0.name).finish()
    }
}

/// A subscriber's end: a bounded queue of the events its filter matched.
///
/// Receive with [`try_recv`](Self::try_recv), [`recv_timeout`](Self::recv_timeout),
/// [`recv_batch`](Self::recv_batch) or [`recv_batch_async`](Self::recv_batch_async). Several
/// threads may receive from one subscription; per-agent order then holds only within each
/// receiver's batches, so sinks use one receiver. Dropping it unsubscribes.
pub struct Subscription {
    sub: Arc<SubShared>,
    bus: Bus,
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("name", &self.sub.name)
            .finish()
    }
}

impl Subscription {
    /// The subscriber's name.
    pub fn name(&self) -> &str {
        &self.sub.name
    }

    /// The filter it was created with.
    pub fn filter(&self) -> &Filter {
        &self.sub.filter
    }

    /// Counters at this moment.
    pub fn stats(&self) -> SubscriptionStats {
        self.sub.stats()
    }

    /// A cheap handle that reads this subscription's counters from another thread (a metrics
    /// endpoint, a progress line) while the subscription itself is busy receiving.
    pub fn probe(&self) -> Probe {
        Probe(self.sub.clone())
    }

    /// Events waiting.
    pub fn len(&self) -> usize {
        self.sub.queue.len()
    }

    /// Whether no event is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Takes one event if one is waiting.
    pub fn try_recv(&self) -> Option<Event> {
        let event = self.sub.queue.pop()?;
        self.after_take(1);
        Some(event.into_event())
    }

    /// Waits up to `timeout` for one event.
    pub fn recv_timeout(&self, timeout: Duration) -> Option<Event> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(e) = self.try_recv() {
                return Some(e);
            }
            if Instant::now() >= deadline {
                return None;
            }
            self.wait(deadline);
        }
    }

    /// Moves up to `max` waiting events into `buf`, waiting up to `timeout` if none is waiting
    /// (and, with a wake threshold above 1, until that many are queued or `timeout` passes).
    /// Returns how many were added; 0 means the timeout passed with nothing to take.
    pub fn recv_batch(&self, buf: &mut Vec<Event>, max: usize, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        loop {
            let n = self.drain(buf, max);
            if n > 0 || Instant::now() >= deadline {
                return n;
            }
            self.wait(deadline);
        }
    }

    /// The async twin of [`recv_batch`](Self::recv_batch); needs a tokio runtime with time.
    pub async fn recv_batch_async(
        &self,
        buf: &mut Vec<Event>,
        max: usize,
        timeout: Duration,
    ) -> usize {
        let deadline = Instant::now() + timeout;
        loop {
            let n = self.drain(buf, max);
            if n > 0 || Instant::now() >= deadline {
                return n;
            }
            self.sub.consumer_waiting.store(true, Ordering::SeqCst);
            if self.sub.queue.len() < self.sub.wake_threshold {
                self.sub.wake.wait_until_async(deadline).await;
            }
            self.sub.consumer_waiting.store(false, Ordering::Relaxed);
        }
    }

    /// Moves up to `max` waiting events into `buf` without waiting.
    pub fn drain(&self, buf: &mut Vec<Event>, max: usize) -> usize {
        let mut n = 0;
        while n < max {
            match self.sub.queue.pop() {
                Some(e) => {
                    buf.push(e.into_event());
                    n += 1;
                }
                None => break,
            }
        }
        if n > 0 {
            self.after_take(n);
        }
        n
    }

    fn after_take(&self, n: usize) {
        // Single logical consumer: a relaxed add is enough for a counter read by stats().
        self.sub.received.fetch_add(n as u64, Ordering::Relaxed);
        if self.sub.producers_waiting.load(Ordering::SeqCst) > 0 {
            self.sub.space.ring();
        }
    }

    fn wait(&self, deadline: Instant) {
        self.sub.consumer_waiting.store(true, Ordering::SeqCst);
        if self.sub.queue.len() < self.sub.wake_threshold {
            self.sub.wake.wait_until(deadline);
        }
        self.sub.consumer_waiting.store(false, Ordering::Relaxed);
    }

    /// Unsubscribes now and returns what was still queued, so a draining sink can deliver or
    /// count it. Events emitted later are not offered to this subscription.
    pub fn close(&self) -> Vec<Event> {
        self.sub.closed.store(true, Ordering::SeqCst);
        self.bus.shared.unsubscribe(self.sub.id);
        self.sub.space.ring();
        let mut rest = Vec::new();
        self.drain(&mut rest, usize::MAX);
        rest
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.sub.closed.store(true, Ordering::SeqCst);
        self.bus.shared.unsubscribe(self.sub.id);
        self.sub.space.ring();
        // Free queued events now; emitters holding an old snapshot keep only the empty queue.
        while self.sub.queue.pop().is_some() {}
    }
}
