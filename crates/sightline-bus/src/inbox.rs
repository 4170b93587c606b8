//! A subscriber's inbox: the half of a subscription that emitters touch. It holds the bounded
//! queue, the overflow policy, the drop counters and the doorbells that wake a waiting
//! receiver or a blocked producer. It sits below both the [`Emitter`](crate::Emitter), which
//! offers events into it, and the [`Subscription`](crate::Subscription), which takes them
//! out, so neither needs the other.

use std::time::{Duration, Instant};

use smol_str::SmolStr;

use sightline_event::Event;

use crate::filter::Filter;
use crate::options::SubscribeOptions;
use crate::overflow::{DropCounts, DropReason, Overflow, SubscriptionStats};
use crate::queue::Queue;
use crate::sync::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

/// One subscription's shared state, behind an `Arc` held by the subscription, by every
/// emitter's snapshot of the registry and by each [`Probe`](crate::Probe).
pub(crate) struct SubShared {
    pub(crate) id: u64,
    pub(crate) name: SmolStr,
    pub(crate) filter: Filter,
    overflow: Overflow,
    pub(crate) wake_threshold: usize,
    pub(crate) queue: Queue<Queued>,
    pub(crate) closed: AtomicBool,
    pub(crate) consumer_waiting: AtomicBool,
    pub(crate) producers_waiting: AtomicUsize,
    pub(crate) received: AtomicU64,
    dropped: [AtomicU64; 4],
    /// Rung by producers when the waiting consumer should wake.
    pub(crate) wake: Bell,
    /// Rung by the consumer when blocked producers may find room.
    pub(crate) space: Bell,
}

/// An event in a subscription's queue: owned when one subscription took it, shared when
/// several did — the emitting agent then pays one allocation and a reference count per
/// subscription instead of a deep copy each, and the copies (if any) are made on the
/// consuming threads, the last of them taking the original. `Own` stays inline on purpose:
/// the one-subscription path builds the event straight into the queue's slot, allocating
/// nothing.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Queued {
    Own(Event),
    Shared(std::sync::Arc<Event>),
}

impl Queued {
    #[inline]
    pub(crate) fn into_event(self) -> Event {
        match self {
            Queued::Own(e) => e,
            Queued::Shared(a) => std::sync::Arc::try_unwrap(a).unwrap_or_else(|a| (*a).clone()),
        }
    }
}

impl SubShared {
    /// A fresh, open inbox for the subscription `id` described by `opts`.
    pub(crate) fn new(id: u64, opts: SubscribeOptions) -> Self {
        Self {
            id,
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
        }
    }

    #[inline]
    fn count(&self, reason: DropReason) {
        self.dropped[reason as usize].fetch_add(1, Ordering::Relaxed);
    }

    #[inline(always)]
    pub(crate) fn offer(&self, event: Event) {
        self.offer_with(|| Queued::Own(event));
    }

    /// Offers the event `build` makes; `build` runs only if the queue has room (or, under
    /// [`Overflow::Block`], once room is awaited).
    #[inline(always)]
    pub(crate) fn offer_with(&self, build: impl FnOnce() -> Queued) {
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

    pub(crate) fn stats(&self) -> SubscriptionStats {
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
pub(crate) struct Bell {
    tx: flume::Sender<()>,
    rx: flume::Receiver<()>,
}

impl Bell {
    fn new() -> Self {
        let (tx, rx) = flume::bounded(1);
        Self { tx, rx }
    }

    #[inline]
    pub(crate) fn ring(&self) {
        let _ = self.tx.try_send(());
    }

    pub(crate) fn wait_until(&self, deadline: Instant) {
        let _ = self.rx.recv_deadline(deadline);
    }

    /// Waits for a ring without blocking the thread; needs a tokio runtime with time.
    #[cfg(feature = "async")]
    pub(crate) async fn wait_until_async(&self, deadline: Instant) {
        let _ = tokio::time::timeout_at(deadline.into(), self.rx.recv_async()).await;
    }
}
