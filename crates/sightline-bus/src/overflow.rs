//! What happens when a subscriber cannot keep up: the overflow policy it chose, why an event
//! was dropped, and the counters that make every drop visible (invariant 3). Kept apart from
//! the queues so that sinks and metrics can name reasons without touching the machinery.

use std::fmt;
use std::time::Duration;

use smol_str::SmolStr;

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
