//! The change feed of incremental updates (`changes/g<G>.chg`, docs/FORMAT.md §10.3):
//! arbitrary header parameters and bodies, framed with a valid checksum, through the
//! streaming reader; and arbitrary entries through the writer and back, against a model
//! (`breachdex::internals::fuzzing::check_changes_file`, shared with
//! `tests/fuzz_regressions.rs`; the input layout is documented there).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = breachdex::internals::fuzzing::check_changes_file(data);
});
