//! The record store's block decoder (docs/FORMAT.md §3.10) on arbitrary bytes: raw blocks
//! through `parse_block`, stored blocks (prefixed by `raw_len` or trimmed) through the
//! bounded zstd decoder without a dictionary, with a fixed trained dictionary or with dictionary bytes from the input,
//! against arbitrary asset bits, stored set and key rule. Must return a block or an
//! error, never panic or decode past its bound
//! (`breachdex::internals::fuzzing::check_store_block`, shared with
//! `tests/fuzz_regressions.rs`, which documents the input layout).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    breachdex::internals::fuzzing::check_store_block(data);
});
