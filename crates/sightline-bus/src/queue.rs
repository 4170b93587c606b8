//! The bounded per-subscriber queue: a lock-free ring that builds values in place, or a
//! mutex-guarded deque under loom (where the bus's subscribe/emit protocol is being checked).

#[cfg(not(feature = "loom"))]
pub(crate) use ring::Queue;

/// A bounded MPMC ring (Dmitry Vyukov's algorithm, as in crossbeam's `ArrayQueue`) with one
/// addition crossbeam lacks: [`Queue::push_with`] claims a slot *before* the value exists and
/// builds it in place. An `Event` is ~270 bytes; building it on the stack and moving it through
/// `ArrayQueue::push` cost four to six `memcpy` calls per emit, most of the emit's time in a
/// profile (each copy reads bytes just written, defeating store forwarding).
///
/// Safety argument, in short: a slot's `stamp` says who owns it. A producer that wins the CAS
/// on `tail` for position `p` owns slot `p & mask` until it stores `stamp = p + 1` (Release);
/// a consumer that wins the CAS on `head` for `p` (having seen `stamp == p + 1`, Acquire) owns
/// it until it stores `stamp = p + capacity`. Only the owner touches `value`.
#[cfg(not(feature = "loom"))]
#[allow(unsafe_code)]
mod ring {
    use std::cell::UnsafeCell;
    use std::mem::MaybeUninit;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use crossbeam_utils::CachePadded;

    struct Slot<T> {
        stamp: AtomicUsize,
        value: UnsafeCell<MaybeUninit<T>>,
    }

    pub(crate) struct Queue<T> {
        head: CachePadded<AtomicUsize>,
        tail: CachePadded<AtomicUsize>,
        slots: Box<[Slot<T>]>,
        mask: usize,
    }

    // SAFETY: values move between threads through the queue (T: Send); slots are only touched
    // by their current owner as argued above.
    unsafe impl<T: Send> Send for Queue<T> {}
    unsafe impl<T: Send> Sync for Queue<T> {}

    impl<T> Queue<T> {
        /// A queue of `capacity` rounded up to a power of two, at least 2 (the algorithm needs
        /// two slots to tell a full ring from an empty one).
        pub(crate) fn new(capacity: usize) -> Self {
            let ring = capacity.max(2).next_power_of_two();
            let slots = (0..ring)
                .map(|i| Slot {
                    stamp: AtomicUsize::new(i),
                    value: UnsafeCell::new(MaybeUninit::uninit()),
                })
                .collect();
            Self {
                head: CachePadded::new(AtomicUsize::new(0)),
                tail: CachePadded::new(AtomicUsize::new(0)),
                slots,
                mask: ring - 1,
            }
        }

        /// Claims the slot at the tail for this producer; `None` when full.
        #[inline(always)]
        fn claim(&self) -> Option<usize> {
            let mut pos = self.tail.load(Ordering::Relaxed);
            loop {
                let slot = &self.slots[pos & self.mask];
                let stamp = slot.stamp.load(Ordering::Acquire);
                let diff = stamp as isize - pos as isize;
                if diff == 0 {
                    match self.tail.compare_exchange_weak(
                        pos,
                        pos.wrapping_add(1),
                        Ordering::SeqCst,
                        Ordering::Relaxed,
                    ) {
                        Ok(_) => return Some(pos),
                        Err(current) => pos = current,
                    }
                } else if diff < 0 {
                    return None; // the slot still holds last lap's value: full
                } else {
                    pos = self.tail.load(Ordering::Relaxed);
                }
            }
        }

        /// Writes the value of a claimed slot and publishes it to consumers.
        #[inline(always)]
        fn publish(&self, pos: usize, value: T) {
            let slot = &self.slots[pos & self.mask];
            // SAFETY: `claim` returned `pos`, so this producer won the CAS for it while
            // `stamp == pos`: it is the slot's only owner and the slot holds no value.
            unsafe { (*slot.value.get()).write(value) };
            slot.stamp.store(pos.wrapping_add(1), Ordering::Release);
        }

        /// Claims a slot, then writes `build()` straight into it. `Err(build)` when full.
        /// `build` must not panic (a claimed slot that is never published would stall
        /// consumers); event construction only moves and clones plain data.
        #[inline(always)]
        pub(crate) fn push_with<F: FnOnce() -> T>(&self, build: F) -> Result<(), F> {
            match self.claim() {
                Some(pos) => {
                    self.publish(pos, build());
                    Ok(())
                }
                None => Err(build),
            }
        }

        #[inline(always)]
        pub(crate) fn push(&self, value: T) -> Result<(), T> {
            match self.claim() {
                Some(pos) => {
                    self.publish(pos, value);
                    Ok(())
                }
                None => Err(value),
            }
        }

        #[inline]
        pub(crate) fn pop(&self) -> Option<T> {
            let mut pos = self.head.load(Ordering::Relaxed);
            loop {
                let slot = &self.slots[pos & self.mask];
                let stamp = slot.stamp.load(Ordering::Acquire);
                let diff = stamp as isize - pos.wrapping_add(1) as isize;
                if diff == 0 {
                    match self.head.compare_exchange_weak(
                        pos,
                        pos.wrapping_add(1),
                        Ordering::SeqCst,
                        Ordering::Relaxed,
                    ) {
                        Ok(_) => {
                            // SAFETY: `stamp == pos + 1` means a producer published a value
                            // here, and winning the CAS makes this consumer its only owner.
                            let value = unsafe { (*slot.value.get()).assume_init_read() };
                            slot.stamp
                                .store(pos.wrapping_add(self.mask + 1), Ordering::Release);
                            return Some(value);
                        }
                        Err(current) => pos = current,
                    }
                } else if diff < 0 {
                    return None; // empty (or the producer of this slot has not published yet)
                } else {
                    pos = self.head.load(Ordering::Relaxed);
                }
            }
        }

        #[inline]
        pub(crate) fn len(&self) -> usize {
            loop {
                let tail = self.tail.load(Ordering::SeqCst);
                let head = self.head.load(Ordering::SeqCst);
                if self.tail.load(Ordering::SeqCst) == tail {
                    return tail.wrapping_sub(head).min(self.mask + 1);
                }
            }
        }

        pub(crate) fn capacity(&self) -> usize {
            self.mask + 1
        }
    }

    impl<T> Drop for Queue<T> {
        fn drop(&mut self) {
            while self.pop().is_some() {}
        }
    }
}

#[cfg(feature = "loom")]
pub(crate) struct Queue<T> {
    inner: crate::sync::Mutex<std::collections::VecDeque<T>>,
    capacity: usize,
}

#[cfg(feature = "loom")]
impl<T> Queue<T> {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            inner: crate::sync::Mutex::new(std::collections::VecDeque::new()),
            capacity: capacity.max(1),
        }
    }
    fn lock(&self) -> crate::sync::MutexGuard<'_, std::collections::VecDeque<T>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
    pub(crate) fn push(&self, v: T) -> Result<(), T> {
        let mut q = self.lock();
        if q.len() >= self.capacity {
            return Err(v);
        }
        q.push_back(v);
        Ok(())
    }
    pub(crate) fn push_with<F: FnOnce() -> T>(&self, build: F) -> Result<(), F> {
        let mut q = self.lock();
        if q.len() >= self.capacity {
            return Err(build);
        }
        q.push_back(build());
        Ok(())
    }
    pub(crate) fn pop(&self) -> Option<T> {
        self.lock().pop_front()
    }
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }
}
