//! The false-positive rate of the detectors on a benign corpus: timestamps, UUIDs, version
//! strings, hex hashes, prices, durations, ids and counts — the values agent events are full
//! of. Run with `--nocapture` to see the rate per category.

use sightline_redact::{Detectors, Found};

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
fn benign_values_are_rarely_flagged() {
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
    let rate = flagged as f64 / corpus.len() as f64;
    eprintln!(
        "false positives on the benign corpus: {flagged} of {} ({:.3}%)",
        corpus.len(),
        rate * 100.0
    );
    for (cat, (n, f, examples)) in &per {
        eprintln!("  {cat:<10} {f:>5} of {n:<5} {examples:?}");
    }
    assert!(
        rate < 0.01,
        "false-positive rate {:.3}% is over 1%",
        rate * 100.0
    );
}
