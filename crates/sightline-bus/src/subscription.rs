//! The subscriber's side of the bus: [`Subscription`] takes events out of its inbox (one at a
//! time, in batches, blocking with a deadline or, with the `async` feature, awaiting) and
//! unsubscribes when closed or dropped; [`Probe`] reads its counters from elsewhere.

use std::fmt;
use std::time::{Duration, Instant};

use sightline_event::Event;

use crate::filter::Filter;
use crate::inbox::SubShared;
use crate::overflow::SubscriptionStats;
use crate::registry::Shared;
use crate::sync::{Arc, Ordering};

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
/// [`recv_batch`](Self::recv_batch) or, with the `async` feature, `recv_batch_async`. Several
/// threads may receive from one subscription; per-agent order then holds only within each
/// receiver's batches, so sinks use one receiver. Dropping it unsubscribes.
pub struct Subscription {
    sub: Arc<SubShared>,
    /// The bus's registry, to unsubscribe from.
    registry: Arc<Shared>,
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("name", &self.sub.name)
            .finish()
    }
}

impl Subscription {
    /// The handle on `sub`, which `registry` already lists.
    pub(crate) fn new(sub: Arc<SubShared>, registry: Arc<Shared>) -> Self {
        Self { sub, registry }
    }

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

    /// The async twin of [`recv_batch`](Self::recv_batch); needs a tokio runtime with time
    /// (and the crate's `async` feature).
    #[cfg(feature = "async")]
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
        self.registry.unsubscribe(self.sub.id);
        self.sub.space.ring();
        let mut rest = Vec::new();
        self.drain(&mut rest, usize::MAX);
        rest
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.sub.closed.store(true, Ordering::SeqCst);
        self.registry.unsubscribe(self.sub.id);
        self.sub.space.ring();
        // Free queued events now; emitters holding an old snapshot keep only the empty queue.
        while self.sub.queue.pop().is_some() {}
    }
}
