//! A counting global allocator proves the zero-allocation claims:
//! - an emit nobody is interested in allocates nothing (and never runs the closure);
//! - an emit of a typical event (agent, method, ids, counts; no free text) to a subscriber
//!   allocates nothing on the producer side once the subscriber's snapshot is cached.
#![allow(unsafe_code)] // a GlobalAlloc impl is unsafe by definition

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use sightline_bus::{Bus, Filter, SubscribeOptions};
use sightline_event::{Family, KindSet, Outcome, Rpc, ScheduleExecute};

struct Counting;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.with(|a| a.set(a.get() + 1));
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.with(|a| a.set(a.get() + 1));
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations_during(f: impl FnOnce()) -> u64 {
    let before = ALLOCS.with(Cell::get);
    f();
    ALLOCS.with(Cell::get) - before
}

fn typical(e: &sightline_bus::Emitter) {
    e.emit_with(|m| {
        m.outcome = Some(Outcome::Ok);
        m.duration_ns = Some(1_234);
        Rpc {
            method: "getTicket".into(),
            streaming: false,
            caller: Some("client-7".into()),
        }
    });
}

#[test]
fn an_unsubscribed_emit_does_not_allocate() {
    let bus = Bus::new();
    let e = bus.emitter("Support", "ticket-4411");
    let mut ran = false;
    let n = allocations_during(|| {
        for _ in 0..10_000 {
            typical(&e);
            e.emit(|| {
                ran = true;
                ScheduleExecute::default()
            });
        }
    });
    assert_eq!(n, 0, "unsubscribed emits allocated");
    assert!(!ran, "the payload closure ran with nobody listening");
    assert_eq!(
        e.last_seq(),
        0,
        "no sequence number is taken when nothing is built"
    );

    // A subscriber for another kind does not change that.
    let _s = bus.subscribe(
        SubscribeOptions::new("schedules").filter(Filter::kinds(KindSet::family(Family::Schedule))),
    );
    let n = allocations_during(|| {
        for _ in 0..10_000 {
            typical(&e);
        }
    });
    assert_eq!(n, 0, "emits of a kind nobody wants allocated");
    assert_eq!(e.last_seq(), 0);
}

#[test]
fn a_subscribed_typical_emit_does_not_allocate_on_the_producer_side() {
    let bus = Bus::new();
    let e = bus.emitter("Support", "ticket-4411");
    let sub = bus.subscribe(SubscribeOptions::new("all").capacity(1024));
    typical(&e); // caches the subscriber snapshot
    let mut buf = Vec::with_capacity(1024);
    sub.drain(&mut buf, usize::MAX);
    buf.clear();
    let mut produced = 0;
    let n = allocations_during(|| {
        for _ in 0..1_000 {
            typical(&e);
            produced += 1;
        }
    });
    assert_eq!(n, 0, "subscribed typical emits allocated {n} times");
    sub.drain(&mut buf, usize::MAX);
    assert_eq!(buf.len(), produced);
    assert!(buf.windows(2).all(|w| w[1].seq == w[0].seq + 1));
}
