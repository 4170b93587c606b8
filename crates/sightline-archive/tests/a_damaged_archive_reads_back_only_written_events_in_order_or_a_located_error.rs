//! The reader on a damaged archive (one compressed segment, one plain closed segment, one open
//! segment ending in a torn line; one of their files overwritten, truncated or spliced as the
//! input says) does not only avoid panicking: what it says is true.
//!
//! The archive, the damage and the assertions live in `sightline_archive::fuzzing`, the one
//! oracle the fuzzer (`fuzz/fuzz_targets/read_archive.rs`) uses too; its module doc lists
//! what `check` asserts. In short:
//!
//! - A scan yields events that were written, each once, every agent's in the order written;
//!   events nobody wrote number at most the lines the damage touched (none where the damage
//!   cannot rewrite a line).
//! - A scan (or any other read) that fails names a file of the archive, and says where.
//! - `verify` names a file of the archive for every problem it reports.

use sightline_archive::fuzzing;

#[test]
fn the_pristine_archive_reads_back_every_event_written() {
    fuzzing::check_pristine();
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]
    #[test]
    fn a_damaged_archive_reads_back_only_written_events_in_order_or_a_located_error(
        data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64)
    ) {
        fuzzing::check(&data);
    }
}
