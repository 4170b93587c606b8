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
//! - [`Subscription`]: a filtered, bounded queue with sync batch receive (and async batch
//!   receive with the `async` feature, which is what brings in tokio). Dropping it
//!   unsubscribes and the interest mask is recomputed.
//!
//! The modules, bottom to top: [`Filter`], the overflow policy and drop counters, and
//! [`SubscribeOptions`] are plain values; `inbox` is a subscription's queue and counters as
//! emitters see them; `registry` is the interest mask and subscription list every handle
//! shares; `emitter` and `subscription` are the two ends built on those; `bus` hands them
//! out. No module uses one above it.
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

mod bus;
mod emitter;
mod filter;
mod inbox;
mod options;
mod overflow;
mod queue;
mod registry;
mod subscription;
mod sync;

pub use sightline_event as event;

pub use bus::Bus;
pub use emitter::{Emitter, Meta};
pub use filter::Filter;
pub use options::{SubscribeOptions, DEFAULT_CAPACITY};
pub use overflow::{DropCounts, DropReason, Overflow, SubscriptionStats};
pub use subscription::{Probe, Subscription};
