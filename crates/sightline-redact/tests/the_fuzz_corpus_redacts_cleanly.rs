//! Replays the committed fuzz corpus (`fuzz/corpus/redact_json`) through the fuzz target's
//! body, so every test run covers it even without `cargo fuzz`.

#[test]
fn the_fuzz_corpus_redacts_cleanly() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/corpus/redact_json");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let data = std::fs::read(entry.unwrap().path()).unwrap();
        sightline_redact::fuzzing::check(&data);
        n += 1;
    }
    assert!(n >= 5, "corpus has only {n} inputs");
}
