//! No false positive on a benign corpus: timestamps, UUIDs, version strings, hex hashes,
//! prices, durations, ids and counts — the values agent events are full of — are flagged by no
//! detector, and pass the default policy unchanged (as strings, and as JSON numbers where they
//! are numbers). Run with `--nocapture` to see the count per category.

use serde_json::{json, Value};
use sightline_redact::{Detectors, Found, PolicyConfig, Redactor};

fn corpus() -> Vec<(&'static str, String)> {
    let mut rng = fastrand::Rng::with_seed(7);
    let mut out = Vec::new();
    for _ in 0..1000 {
        let ms = rng.u64(946_684_800_000..4_102_444_800_000);
        out.push(("epoch_ms", ms.to_string()));
        out.push((
            "epoch_ns",
            (ms * 1_000_000 + rng.u64(..1_000_000)).to_string(),
        ));
        out.push(("epoch_s", (ms / 1000).to_string()));
        out.push((
            "iso_time",
            format!(
                "20{:02}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
                rng.u8(0..40),
                rng.u8(1..13),
                rng.u8(1..29),
                rng.u8(0..24),
                rng.u8(0..60),
                rng.u8(0..60),
                rng.u16(0..1000)
            ),
        ));
        let u = rng.u128(..);
        let h = format!("{u:032x}");
        out.push((
            "uuid",
            format!(
                "{}-{}-4{}-a{}-{}",
                &h[0..8],
                &h[8..12],
                &h[13..16],
                &h[17..20],
                &h[20..32]
            ),
        ));
        out.push((
            "version",
            match rng.u8(0..4) {
                0 => format!("{}.{}.{}", rng.u8(0..30), rng.u8(0..50), rng.u8(0..100)),
                1 => format!(
                    "v{}.{}.{}-rc.{}",
                    rng.u8(0..10),
                    rng.u8(0..50),
                    rng.u8(0..100),
                    rng.u8(1..9)
                ),
                2 => format!(
                    "{}.{}.{}+build.{}",
                    rng.u8(0..10),
                    rng.u8(0..50),
                    rng.u8(0..100),
                    rng.u16(..)
                ),
                _ => format!(
                    "{}.{}.{}.{}",
                    rng.u8(0..20),
                    rng.u8(0..20),
                    rng.u16(0..30000),
                    rng.u16(0..9999)
                ),
            },
        ));
        let bytes: Vec<u8> = (0..32).map(|_| rng.u8(..)).collect();
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        out.push(("hex_hash", hex[..[32, 40, 64][rng.usize(..3)]].to_owned()));
        out.push((
            "price",
            match rng.u8(0..3) {
                0 => format!(
                    "${},{:03}.{:02}",
                    rng.u16(1..999),
                    rng.u16(0..1000),
                    rng.u8(0..100)
                ),
                1 => format!("{}.{:02} EUR", rng.u32(0..100_000), rng.u8(0..100)),
                _ => format!("{}.{:02}", rng.u32(0..10_000), rng.u8(0..100)),
            },
        ));
        out.push((
            "duration",
            match rng.u8(0..3) {
                0 => format!("{}ms", rng.u32(0..100_000)),
                1 => format!("{}.{}s", rng.u32(0..1000), rng.u8(0..10)),
                _ => format!(
                    "{:02}:{:02}:{:02}",
                    rng.u8(0..24),
                    rng.u8(0..60),
                    rng.u8(0..60)
                ),
            },
        ));
        out.push(("id", format!("sch_{:x}", rng.u64(..))));
        out.push(("count", rng.u64(..).to_string()));
    }
    out
}

#[test]
fn benign_values_are_never_flagged() {
    let d = Detectors::new(&["*".to_owned()], &[]).unwrap();
    let corpus = corpus();
    let mut per: std::collections::BTreeMap<&str, (u32, u32, Vec<String>)> = Default::default();
    let mut found: Vec<Found> = Vec::new();
    for (cat, text) in &corpus {
        found.clear();
        d.find(text, &mut found);
        let e = per.entry(cat).or_default();
        e.0 += 1;
        if !found.is_empty() {
            e.1 += 1;
            if e.2.len() < 3 {
                e.2.push(format!("{text} -> {}", d.names()[found[0].detector]));
            }
        }
    }
    let flagged: u32 = per.values().map(|v| v.1).sum();
    eprintln!(
        "false positives on the benign corpus: {flagged} of {}",
        corpus.len()
    );
    for (cat, (n, f, examples)) in &per {
        eprintln!("  {cat:<10} {f:>5} of {n:<5} {examples:?}");
    }
    assert_eq!(
        flagged, 0,
        "benign values flagged (category: flagged of n, examples): {per:?}"
    );
}

#[test]
fn benign_values_pass_the_default_policy_unchanged() {
    let redactor = Redactor::new("default", &PolicyConfig::default()).unwrap();
    let mut values = 0;
    for (cat, text) in corpus() {
        let mut forms = vec![Value::String(text.clone())];
        if let Ok(n) = text.parse::<u64>() {
            forms.push(json!(n));
        }
        for form in forms {
            let input = json!({ cat: form, "nested": [{ "value": form }] });
            let mut out = input.clone();
            let summary = redactor.redact_value(&mut out);
            assert_eq!(out, input, "{cat} value {text:?} was changed");
            assert!(
                summary.counts.is_empty() && !summary.truncated,
                "{cat} value {text:?} counted as redacted: {summary:?}"
            );
            values += 1;
        }
    }
    assert_eq!(values, 11_000 + 4_000, "string forms plus numeric forms");
    assert_eq!(redactor.stats().events_redacted, 0);
}
