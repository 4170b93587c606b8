//! Property: any event, whatever its strings, serializes to one line and parses back equal.

use proptest::prelude::*;
use sightline_event::*;

fn any_kind() -> impl Strategy<Value = Kind> {
    (0..Kind::ALL.len()).prop_map(|i| Kind::ALL[i])
}

proptest! {
    #[test]
    fn events_round_trip_through_json(
        kind in any_kind(),
        class in "\\PC{0,30}",
        name in "\\PC{0,40}",
        seq in any::<u64>(),
        ts in any::<u64>(),
        dur in proptest::option::of(any::<u64>()),
        text in "\\PC{0,60}",
    ) {
        let mut payload = Payload::default_for(kind);
        // Put arbitrary text into a sensitive field where the kind has a plain `error`.
        if let Payload::RpcError(p) = &mut payload { p.error = Sensitive(text.clone()); p.method = text.as_str().into(); }
        if let Payload::ScheduleError(p) = &mut payload { p.error = Sensitive(text.clone()); }
        let mut e = Event::new(AgentRef::new(class, name), seq, payload);
        e.ts_ns = ts;
        e.id = EventId::from_parts(ts, seq);
        e.duration_ns = dur;
        let line = e.to_json_line();
        prop_assert!(!line.contains('\n'));
        prop_assert_eq!(Event::from_json_line(&line).unwrap(), e);
    }
}
