//! How to subscribe. A builder of its own so that [`Bus::subscribe`](crate::Bus::subscribe)
//! takes one value and new knobs do not change its signature.

use smol_str::SmolStr;

use crate::filter::Filter;
use crate::overflow::Overflow;

/// Default queue capacity of a subscription, in events.
pub const DEFAULT_CAPACITY: usize = 8192;

/// How to subscribe: name, filter, queue capacity, overflow policy, wake threshold.
#[derive(Debug, Clone)]
pub struct SubscribeOptions {
    pub(crate) name: SmolStr,
    pub(crate) filter: Filter,
    pub(crate) capacity: usize,
    pub(crate) overflow: Overflow,
    pub(crate) wake_threshold: usize,
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
