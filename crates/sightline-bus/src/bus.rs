//! The public entry point: a [`Bus`] is a cheap, clonable handle on one registry that hands
//! out emitters and subscriptions and republishes already built events. It is the top layer:
//! it builds on the registry, the emitter and the subscription, and none of them on it.

use std::fmt;

use smol_str::SmolStr;

use sightline_event::{AgentRef, Event, Kind};

use crate::emitter::Emitter;
use crate::options::SubscribeOptions;
use crate::overflow::SubscriptionStats;
use crate::registry::{deliver, Shared, Snapshot};
use crate::subscription::Subscription;
use crate::sync::Arc;

/// The event bus. Clones share one bus.
#[derive(Clone)]
pub struct Bus {
    shared: Arc<Shared>,
}

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
            shared: Arc::new(Shared::new()),
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
        Emitter::new(self.shared.clone(), agent, last_seq)
    }

    /// Subscribes. The returned handle receives every matching event emitted after this call
    /// returns (or counts it as dropped); dropping it unsubscribes.
    pub fn subscribe(&self, opts: SubscribeOptions) -> Subscription {
        let sub = self.shared.subscribe(opts);
        Subscription::new(sub, self.shared.clone())
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
        self.shared.snapshot()
    }
}
