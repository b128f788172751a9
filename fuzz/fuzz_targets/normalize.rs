//! Key normalization (e-mail and username) on arbitrary strings: never panics, is
//! idempotent, agrees with the reference implementation and keeps the SPEC §4 limits
//! (`breachdex::internals::fuzzing::check_normalize`, shared with `tests/fuzz_regressions.rs`).
//! Input that is not UTF-8 is checked after a lossy conversion.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match std::str::from_utf8(data) {
        Ok(text) => breachdex::internals::fuzzing::check_normalize(text),
        Err(_) => breachdex::internals::fuzzing::check_normalize(&String::from_utf8_lossy(data)),
    }
});
