//! The `changes_file` fuzz target's check: the change feed reader
//! (`format::changes`, docs/FORMAT.md §10.3) on arbitrary files, and the writer and
//! reader against a model on arbitrary entries.
//!
//! Input layout: byte 0 picks the path (bit 0) and the key width (bits 1-2: plain,
//! 8, 16 or 32 bytes).
//! - Path 0, a file: bytes 1..33 are the four header parameters (u64 LE); the rest is
//!   the body, framed with a valid checksum so every input reaches the reader. Opening
//!   and reading every entry must give entries or an error, never a panic, never more
//!   entries than the header says; `verify` passes exactly when reading does.
//! - Path 1, entries: byte 1 is the block limit (raw bytes, 12 to 267); then entries
//!   of `kind (bit 0) ‖ change (bit 1) ‖ source (bits 2-7) ‖ key_len u8 ‖ key bytes`
//!   (hashed widths: the key padded or cut to the width). The distinct (kind, key,
//!   source) pairs, the last change winning, are written sorted and read back: the
//!   reader must return exactly them.

use crate::format::changes::{Change, ChangeKind, ChangesReader, ChangesWriter, KIND};
use crate::format::{FileView, FormatError, identifier_of_code};
use crate::mmap::Bytes;
use std::collections::BTreeMap;

const NAME: &str = "changes/g00000002.chg";

/// The key width of selector bits `bits` (0 to 3).
fn key_width(bits: u8) -> Option<usize> {
    [None, Some(8), Some(16), Some(32)].get(usize::from(bits & 3)).copied().flatten()
}

/// Runs one input (layout above); panics when an invariant is broken. Returns whether
/// the input was a file that opened and read without error, or a set of entries.
pub fn check_changes_file(data: &[u8]) -> bool {
    let Some((&selector, rest)) = data.split_first() else { return false };
    let width = key_width(selector >> 1);
    if selector & 1 == 0 {
        check_file(rest, width)
    } else {
        check_entries(rest, width);
        true
    }
}

fn check_file(data: &[u8], width: Option<usize>) -> bool {
    let Some((header, body)) = data.split_at_checked(32) else { return false };
    let mut params = [0u64; 4];
    for (p, chunk) in params.iter_mut().zip(header.chunks_exact(8)) {
        *p = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
    }
    let file = crate::format::framed_bytes(KIND, params, body);
    let view = FileView::parse_version(NAME, Bytes::from_vec(file), KIND, crate::format::FORMAT_VERSION)
        .expect("a framed file parses");
    let Ok(reader) = ChangesReader::new(view, width) else { return false };
    let mut entries = 0u64;
    let mut failed: Option<FormatError> = None;
    for entry in reader.iter() {
        match entry {
            Ok(change) => {
                entries += 1;
                assert!(entries <= reader.len(), "more entries than the header says");
                if let Some(w) = width {
                    assert_eq!(change.key.len(), w);
                }
            }
            Err(e) => {
                assert!(e.to_string().starts_with(NAME), "{e}");
                failed = Some(e);
            }
        }
    }
    match (reader.verify(), failed) {
        (Ok(()), None) => {
            assert_eq!(entries, reader.len());
            true
        }
        (Err(_), Some(_)) => false,
        (verified, read) => panic!("verify says {verified:?}, reading says {read:?}"),
    }
}

fn check_entries(data: &[u8], width: Option<usize>) {
    let Some((&limit, mut rest)) = data.split_first() else { return };
    let mut model = BTreeMap::new();
    while let Some((&head, tail)) = rest.split_first() {
        let Some((&len, tail)) = tail.split_first() else { break };
        let len = usize::from(len).min(tail.len());
        let (key, tail) = tail.split_at(len);
        rest = tail;
        let mut key = key.to_vec();
        if let Some(w) = width {
            key.resize(w, 0);
        }
        let change = if head & 2 == 0 { ChangeKind::Gained } else { ChangeKind::Lost };
        model.insert((head & 1, key, u32::from(head >> 2)), change);
    }
    let want: Vec<Change> = model
        .into_iter()
        .map(|((kind, key, source_id), change)| Change {
            kind: identifier_of_code(kind).expect("0 or 1"),
            key,
            source_id,
            change,
        })
        .collect();
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("c.chg");
    let mut writer =
        ChangesWriter::with_block_limit(&path, width, 12 + usize::from(limit)).expect("create the change file");
    for c in &want {
        writer.push(c.kind, &c.key, c.source_id, c.change).expect("sorted entries are accepted");
    }
    writer.finish().expect("finish");
    let bytes = std::fs::read(&path).expect("read back");
    let view = FileView::parse_version(NAME, Bytes::from_vec(bytes), KIND, crate::format::FORMAT_VERSION)
        .expect("the written file parses");
    let reader = ChangesReader::new(view, width).expect("the written file opens");
    reader.verify().expect("the written file verifies");
    let got: Vec<Change> = reader.iter().collect::<Result<_, _>>().expect("the written file reads");
    assert_eq!(got, want);
}

/// Seed inputs for path 0: change files written by the writer (plain and hashed, one
/// and several blocks), as `(name, input)`.
pub fn changes_file_seeds() -> Vec<(String, Vec<u8>)> {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut seeds = Vec::new();
    for (selector, limit) in [(0u8, 65_536usize), (0, 40), (2, 65_536), (2, 60)] {
        let width = key_width(selector >> 1);
        let path = dir.path().join("seed.chg");
        let mut writer = ChangesWriter::with_block_limit(&path, width, limit).expect("create");
        for i in 0..12u32 {
            let mut key = format!("user{:02}@example.org", i / 2).into_bytes();
            if let Some(w) = width {
                key.resize(w, b'#');
            }
            let kind = identifier_of_code(u8::from(i >= 8)).expect("kind");
            let change = if i % 3 == 0 { ChangeKind::Lost } else { ChangeKind::Gained };
            writer.push(kind, &key, i % 2 + 1, change).expect("push");
        }
        writer.finish().expect("finish");
        let bytes = std::fs::read(&path).expect("read");
        let view =
            FileView::parse_version(NAME, Bytes::from_vec(bytes), KIND, crate::format::FORMAT_VERSION).expect("parse");
        let mut input = vec![selector];
        for p in view.params() {
            input.extend_from_slice(&p.to_le_bytes());
        }
        input.extend_from_slice(view.body());
        seeds.push((format!("written-{selector}-{limit}"), input));
    }
    seeds
}
