//! The agent's side of the bus: [`Emitter`] checks interest before anything is built, then
//! stamps the envelope (sequence number, time, id, trace context) and offers the event to each
//! matching inbox. It is the hot path the crate exists for, so it lives alone where its
//! inlining and copies can be read as a whole.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::time::Duration;

use sightline_event::{
    now_unix_ns, AgentRef, Event, EventId, EventPayload, Kind, Outcome, Payload, Severity,
    TraceContext, SCHEMA_VERSION,
};

use crate::inbox::Queued;
use crate::registry::{Shared, Snapshot};
use crate::sync::Arc;

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
    /// An emitter for `agent` on the bus `shared`, continuing after `last_seq`.
    pub(crate) fn new(shared: Arc<Shared>, agent: AgentRef, last_seq: u64) -> Self {
        Self {
            shared,
            agent,
            seq: Cell::new(last_seq),
            cache: RefCell::new((u64::MAX, Arc::new(Vec::new()))),
            trace: Cell::new(None),
        }
    }

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
