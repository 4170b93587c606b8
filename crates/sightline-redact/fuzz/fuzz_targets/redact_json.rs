//! Fuzzes the redactor on arbitrary JSON: `cargo fuzz run redact_json` from
//! `crates/sightline-redact` (see `scripts/test` for the bounded run CI does).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    sightline_redact::fuzzing::check(data);
});
