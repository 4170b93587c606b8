//! The archive reader on corrupted and truncated segments, indexes and manifests (including
//! truncated zstd frames): clear errors, never a panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sightline_archive::fuzzing::check(data);
});
