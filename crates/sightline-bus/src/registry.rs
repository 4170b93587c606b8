//! The registry every handle on one bus shares: the interest mask an emit checks first, and
//! the list of live subscriptions, published as immutable snapshots so an emitter can keep
//! one cached and only re-read it when the generation changes. [`Bus`](crate::Bus),
//! [`Emitter`](crate::Emitter) and [`Subscription`](crate::Subscription) each hold an `Arc`
//! of it; it knows none of them.

use std::cell::RefCell;

use sightline_event::{Event, Kind, KindSet, KIND_WORDS};

use crate::inbox::{Queued, SubShared};
use crate::options::SubscribeOptions;
use crate::sync::{Arc, AtomicU64, Mutex, MutexGuard, Ordering};

/// The interest mask and the subscriptions of one bus.
pub(crate) struct Shared {
    /// One bit per kind: is any subscriber interested?
    interest: [AtomicU64; KIND_WORDS],
    /// Bumped (under the registry lock) whenever the set of subscriptions changes.
    generation: AtomicU64,
    registry: Mutex<Registry>,
}

/// The mutable part, under the lock.
struct Registry {
    next_id: u64,
    subs: Arc<Vec<Arc<SubShared>>>,
}

/// The live subscriptions at one moment.
pub(crate) type Snapshot = Arc<Vec<Arc<SubShared>>>;

impl Shared {
    /// A registry with no subscriptions.
    pub(crate) fn new() -> Self {
        Self {
            interest: std::array::from_fn(|_| AtomicU64::new(0)),
            generation: AtomicU64::new(0),
            registry: Mutex::new(Registry {
                next_id: 0,
                subs: Arc::new(Vec::new()),
            }),
        }
    }

    /// Whether any subscriber wants events of this kind: one relaxed load and a bit test.
    #[inline(always)]
    pub(crate) fn interested(&self, kind: Kind) -> bool {
        let i = kind.index();
        self.interest[i / 64].load(Ordering::Relaxed) & (1 << (i % 64)) != 0
    }

    /// Adds a subscription; it sees every matching event offered after this returns.
    pub(crate) fn subscribe(&self, opts: SubscribeOptions) -> Arc<SubShared> {
        let mut reg = self.lock();
        reg.next_id += 1;
        let sub = Arc::new(SubShared::new(reg.next_id, opts));
        let mut subs: Vec<_> = reg.subs.iter().cloned().collect();
        subs.push(sub.clone());
        self.install(&mut reg, subs);
        sub
    }

    /// The live subscriptions now.
    pub(crate) fn snapshot(&self) -> Snapshot {
        self.lock().subs.clone()
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

    /// Removes the subscription `id`, if it is still there.
    pub(crate) fn unsubscribe(&self, id: u64) {
        let mut reg = self.lock();
        let subs: Vec<_> = reg.subs.iter().filter(|s| s.id != id).cloned().collect();
        if subs.len() != reg.subs.len() {
            self.install(&mut reg, subs);
        }
    }

    /// Refreshes an emitter's cached snapshot if subscriptions changed since it was taken.
    #[inline(always)]
    pub(crate) fn refresh(&self, cache: &RefCell<(u64, Snapshot)>) {
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
/// allocation, a reference count each) among several, as [`Emitter`](crate::Emitter) does.
pub(crate) fn deliver(subs: &[Arc<SubShared>], event: Event) {
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
