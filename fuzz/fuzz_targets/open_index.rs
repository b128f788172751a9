//! Any bytes in any file of an index (SPEC §9): opening returns an error or an index
//! whose lookups, checks and record reads return results or errors, never a panic, a
//! hang or an out-of-bounds read; `verify` flags every raw change to a data file; and
//! `Index::open` on disk agrees with `Index::from_files` in memory.
//!
//! The check and its input layout live in the library
//! (`breachdex::internals::fuzzing::check_open_index`), so `tests/fuzz_regressions.rs` replays kept
//! inputs through the same code. Every [`VERIFY_EVERY`]-th run also checks on disk
//! (too slow for every run).

#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::atomic::{AtomicU64, Ordering};

/// One run in this many also checks on disk (verify, Index::open).
const VERIFY_EVERY: u64 = 16;

fuzz_target!(|data: &[u8]| {
    static RUNS: AtomicU64 = AtomicU64::new(0);
    let on_disk = RUNS.fetch_add(1, Ordering::Relaxed) % VERIFY_EVERY == 0;
    breachdex::internals::fuzzing::check_open_index(data, on_disk);
});
