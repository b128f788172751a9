//! The jsonl dump parser on arbitrary bytes (a dump file's whole content): framing, parsing
//! and validation never panic; every physical line is blank, the CSV header, or in
//! exactly one frame holding exactly its bytes; every frame is kept or rejected with a
//! reason. The checks live in `breachdex::internals::fuzzing::check_dump`, shared with
//! `tests/fuzz_regressions.rs`.

#![no_main]

use breachdex::DumpFormat;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn dir() -> &'static std::path::Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("temp dir")).path()
}

fuzz_target!(|data: &[u8]| breachdex::internals::fuzzing::check_dump_all(dir(), DumpFormat::Jsonl, data));
