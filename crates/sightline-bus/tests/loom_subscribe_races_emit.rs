//! Model-checks the interest protocol with loom: subscribe, unsubscribe and emit racing on
//! different threads. An event emitted after `subscribe` returned (in the happens-before
//! sense) must be delivered to that subscription or counted as dropped — never silently lost —
//! even while another subscription for the same kind is being dropped.
//!
//! Run: `cargo test -p sightline-bus --features loom --release --test loom_subscribe_races_emit`
#![cfg(feature = "loom")]

use loom::sync::atomic::{AtomicBool, Ordering};
use loom::sync::Arc;
use sightline_bus::{Bus, Filter, SubscribeOptions};
use sightline_event::{Family, KindSet, Rpc};

fn rpc() -> Rpc {
    Rpc {
        method: "m".into(),
        ..Default::default()
    }
}

fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(3);
    builder.check(f);
}

#[test]
fn an_event_emitted_after_subscribe_returned_is_delivered() {
    model(|| {
        let bus = Bus::new();
        let other = bus.subscribe(
            SubscribeOptions::new("other").filter(Filter::kinds(KindSet::family(Family::Rpc))),
        );
        let ready = Arc::new(AtomicBool::new(false));
        let emitter = bus.emitter("A", "a");

        let (b1, r1) = (bus.clone(), ready.clone());
        let subscriber = loom::thread::spawn(move || {
            let sub = b1.subscribe(SubscribeOptions::new("late").capacity(8));
            r1.store(true, Ordering::Release);
            sub
        });
        let r2 = ready.clone();
        let producer = loom::thread::spawn(move || {
            emitter.emit(rpc); // concurrent with subscribe: may or may not arrive
            let after = r2.load(Ordering::Acquire);
            if after {
                emitter.emit(rpc); // after subscribe returned: must arrive
            }
            after.then_some(emitter.last_seq())
        });
        let unsubscriber = loom::thread::spawn(move || drop(other));

        let sub = subscriber.join().unwrap();
        let must_have = producer.join().unwrap();
        unsubscriber.join().unwrap();
        let mut seqs = Vec::new();
        while let Some(e) = sub.try_recv() {
            seqs.push(e.seq);
        }
        assert_eq!(sub.stats().dropped.total(), 0);
        if let Some(seq) = must_have {
            assert!(seqs.contains(&seq), "event {seq} lost; got {seqs:?}");
        }
        // Per-agent order holds on the queue.
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    });
}

#[test]
fn events_after_subscribe_that_do_not_fit_are_counted() {
    model(|| {
        let bus = Bus::new();
        let ready = Arc::new(AtomicBool::new(false));
        let emitter = bus.emitter("A", "a");

        let (b1, r1) = (bus.clone(), ready.clone());
        let subscriber = loom::thread::spawn(move || {
            let sub = b1.subscribe(SubscribeOptions::new("tiny").capacity(1));
            r1.store(true, Ordering::Release);
            sub
        });
        let r2 = ready.clone();
        let producer = loom::thread::spawn(move || {
            if r2.load(Ordering::Acquire) {
                emitter.emit(rpc);
                emitter.emit(rpc);
                true
            } else {
                false
            }
        });
        let sub = subscriber.join().unwrap();
        if producer.join().unwrap() {
            let delivered = std::iter::from_fn(|| sub.try_recv()).count() as u64;
            assert_eq!(delivered + sub.stats().dropped.total(), 2);
            assert_eq!(delivered, 1);
        }
    });
}

#[test]
fn unsubscribing_one_subscription_keeps_the_others_interest() {
    model(|| {
        let bus = Bus::new();
        let a = bus.subscribe(SubscribeOptions::new("a"));
        let b = bus.subscribe(SubscribeOptions::new("b"));
        let b2 = bus.clone();
        let t = loom::thread::spawn(move || {
            let c = b2.subscribe(SubscribeOptions::new("c"));
            drop(c);
        });
        drop(b);
        t.join().unwrap();
        let emitter = bus.emitter("A", "a");
        emitter.emit(rpc);
        assert_eq!(a.try_recv().map(|e| e.seq), Some(1));
    });
}
