//! `changes/g<G>.chg` (kind `CHGS`): the change feed of one generation
//! (docs/FORMAT.md §10.3, design §5.5): one entry per (key, source) pair whose presence
//! changed in that generation, sorted by (kind, key, source id).
//!
//! Body: the blocks back to back, then `block_offset[block_count + 1]` (u64 LE, body
//! offsets; the last one is where the offsets start). A block is stored as the record
//! store stores its blocks (docs/FORMAT.md §3.10): `raw_len u32 LE ‖ zstd frame` (no
//! dictionary), at most [`MAX_BLOCK_RAW`] raw bytes, read with the same bounded decoder.
//! Raw entries: `kind u8` (0 e-mail, 1 username), the key (`key_width` bytes in hashed
//! modes; in `plain` mode front-coded against the previous key of the block:
//! `shared u16 LE ‖ suffix_len u16 LE ‖ suffix`, the first entry of a block with
//! `shared = 0`), `source_id u32 LE`, `change u8` (1 gained, 2 lost).
//! Header parameters: `[entry_count, key_width (0 in plain mode), block_count, raw_len]`.
//!
//! [`ChangesReader::iter`] streams the entries block by block (one block decoded at a
//! time), checking their order as it goes.

// Wired up by the generation layer (the fuzz target uses it already).
#![allow(dead_code)]

use super::store::block::{Framing, compress_block, decompress, new_compressor};
use super::{FileSummary, FileView, FileWriter, FormatError, Kind, identifier_code, identifier_of_code, read_u64};
use crate::index::IdentifierKind;
use std::io::{self, Write};
use std::path::Path;

/// Kind tag of a change feed file.
pub const KIND: Kind = *b"CHGS";
/// Largest raw (decompressed) block.
pub const MAX_BLOCK_RAW: usize = 64 * 1024;
/// Longest key of a `plain` change file (normalized identifiers are far shorter:
/// 254 bytes for an e-mail).
pub const MAX_PLAIN_KEY: usize = 4096;
/// zstd level of the blocks.
const LEVEL: i32 = 9;

/// How a (key, source) pair's presence changed in a generation.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ChangeKind {
    /// The key has records of the source now, and had none before.
    Gained,
    /// The key had records of the source before, and has none now.
    Lost,
}

impl ChangeKind {
    /// `gained` or `lost`, as `breachdex changes` prints it.
    pub fn name(self) -> &'static str {
        match self {
            ChangeKind::Gained => "gained",
            ChangeKind::Lost => "lost",
        }
    }

    /// The byte on disk: 1 gained, 2 lost.
    pub fn code(self) -> u8 {
        match self {
            ChangeKind::Gained => 1,
            ChangeKind::Lost => 2,
        }
    }

    /// The change of a byte on disk; `None` for any other than 1 and 2.
    pub fn from_code(code: u8) -> Option<ChangeKind> {
        match code {
            1 => Some(ChangeKind::Gained),
            2 => Some(ChangeKind::Lost),
            _ => None,
        }
    }
}

/// One entry of a change feed (ordered as the file holds them: kind, key, source id).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Change {
    /// E-mail or username.
    pub kind: IdentifierKind,
    /// The derived key (docs/FORMAT.md §6): the normalized identifier in `plain` mode.
    pub key: Vec<u8>,
    /// The source whose records of the key appeared or disappeared.
    pub source_id: u32,
    /// Gained or lost.
    pub change: ChangeKind,
}

/// Streams entries, ascending by (kind, key, source id), into a change feed file.
pub struct ChangesWriter {
    out: FileWriter,
    key_width: Option<usize>,
    block_limit: usize,
    compressor: zstd::bulk::Compressor<'static>,
    /// The raw entries of the block being filled.
    raw: Vec<u8>,
    /// The previous key of the block (`plain` front coding) and of the file (order).
    prev_key: Vec<u8>,
    prev: Option<(u8, u32)>,
    offsets: Vec<u64>,
    count: u64,
    raw_len: u64,
}

impl ChangesWriter {
    /// Creates `path` for keys of `key_width` bytes (the hash mode's), or of up to
    /// [`MAX_PLAIN_KEY`] bytes in `plain` mode (`None`).
    pub fn create(path: &Path, key_width: Option<usize>) -> io::Result<ChangesWriter> {
        ChangesWriter::with_block_limit(path, key_width, MAX_BLOCK_RAW)
    }

    /// As [`create`](Self::create), with blocks of at most `block_limit` raw bytes (at
    /// most [`MAX_BLOCK_RAW`]): small blocks let tests and the fuzz target cross block
    /// boundaries with few entries.
    pub fn with_block_limit(path: &Path, key_width: Option<usize>, block_limit: usize) -> io::Result<ChangesWriter> {
        if key_width == Some(0) {
            return Err(io::Error::other("a key width of 0: plain mode is key_width None"));
        }
        Ok(ChangesWriter {
            out: FileWriter::create(path, KIND)?,
            key_width,
            block_limit: block_limit.min(MAX_BLOCK_RAW),
            compressor: new_compressor(LEVEL, &[], Framing::Prefixed)?,
            raw: Vec::new(),
            prev_key: Vec::new(),
            prev: None,
            offsets: vec![0],
            count: 0,
            raw_len: 0,
        })
    }

    /// Appends the next entry; entries must arrive strictly ascending by (kind, key,
    /// source id).
    pub fn push(&mut self, kind: IdentifierKind, key: &[u8], source_id: u32, change: ChangeKind) -> io::Result<()> {
        let code = identifier_code(kind);
        match self.key_width {
            Some(width) if key.len() != width => {
                return Err(io::Error::other(format!("a {}-byte key in a file of {width}-byte keys", key.len())));
            }
            None if key.len() > MAX_PLAIN_KEY => {
                return Err(io::Error::other(format!("a {}-byte key (at most {MAX_PLAIN_KEY})", key.len())));
            }
            _ => {}
        }
        if let Some((prev_code, prev_source)) = self.prev
            && (prev_code, self.prev_key.as_slice(), prev_source) >= (code, key, source_id)
        {
            return Err(io::Error::other("changes must be pushed strictly ascending by (kind, key, source id)"));
        }
        let full_len = 1 + key.len() + if self.key_width.is_none() { 4 } else { 0 } + 5;
        if !self.raw.is_empty() && self.raw.len() + full_len > self.block_limit {
            self.flush_block()?;
        }
        self.raw.push(code);
        match self.key_width {
            Some(_) => self.raw.extend_from_slice(key),
            None => {
                // The first entry of a block is whole: the block decodes on its own.
                let shared = if self.raw.len() == 1 {
                    0
                } else {
                    self.prev_key.iter().zip(key).take_while(|(a, b)| a == b).count()
                };
                let suffix = key.get(shared..).unwrap_or_default();
                self.raw.extend_from_slice(&(shared as u16).to_le_bytes());
                self.raw.extend_from_slice(&(suffix.len() as u16).to_le_bytes());
                self.raw.extend_from_slice(suffix);
            }
        }
        self.raw.extend_from_slice(&source_id.to_le_bytes());
        self.raw.push(change.code());
        self.prev_key.clear();
        self.prev_key.extend_from_slice(key);
        self.prev = Some((code, source_id));
        self.count += 1;
        Ok(())
    }

    fn flush_block(&mut self) -> io::Result<()> {
        let block = compress_block(&mut self.compressor, &self.raw, Framing::Prefixed)?;
        self.out.write_all(&block)?;
        self.raw_len += self.raw.len() as u64;
        let end = self.offsets.last().copied().unwrap_or(0) + block.len() as u64;
        self.offsets.push(end);
        self.raw.clear();
        Ok(())
    }

    /// Entries written so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Writes the last block, the block offsets, the header and the footer.
    pub fn finish(mut self) -> io::Result<FileSummary> {
        if !self.raw.is_empty() {
            self.flush_block()?;
        }
        for offset in &self.offsets {
            self.out.write_all(&offset.to_le_bytes())?;
        }
        let block_count = self.offsets.len() as u64 - 1;
        let key_width = self.key_width.unwrap_or(0) as u64;
        self.out.finish([self.count, key_width, block_count, self.raw_len])
    }
}

/// Reads a change feed file.
#[derive(Clone, Debug)]
pub struct ChangesReader {
    view: FileView,
    key_width: Option<usize>,
    count: u64,
    block_count: u64,
    raw_len: u64,
    /// Body offset of `block_offset[0]`: the end of the blocks.
    offsets_at: usize,
}

impl ChangesReader {
    /// Checks the header against the body and against the index's hash mode
    /// (`key_width`, `None` in `plain` mode), in constant time.
    pub fn new(view: FileView, key_width: Option<usize>) -> Result<ChangesReader, FormatError> {
        let [count, file_width, block_count, raw_len] = view.params();
        let expected = key_width.unwrap_or(0) as u64;
        if file_width != expected {
            return Err(view.damaged(format!(
                "holds keys of width {file_width}, but the index's keys have width {expected} (0 = plain): \
                 the file belongs to another index"
            )));
        }
        let body_len = view.body().len() as u64;
        let offsets_len = block_count.checked_add(1).and_then(|n| n.checked_mul(8)).filter(|len| *len <= body_len);
        let Some(offsets_len) = offsets_len else {
            return Err(view.damaged(format!("{block_count} block offsets do not fit the {body_len} body bytes")));
        };
        let offsets_at = body_len - offsets_len;
        let body = view.body();
        if read_u64(body, offsets_at as usize) != Some(0) || read_u64(body, (body_len - 8) as usize) != Some(offsets_at)
        {
            return Err(view.damaged("the block offsets do not span the blocks"));
        }
        if raw_len > block_count.saturating_mul(MAX_BLOCK_RAW as u64) || (raw_len == 0) != (block_count == 0) {
            return Err(view.damaged(format!("{raw_len} raw bytes in {block_count} blocks")));
        }
        let min_entry = 1 + key_width.unwrap_or(4) as u64 + 5;
        if count > raw_len / min_entry || (count == 0) != (raw_len == 0) {
            return Err(view.damaged(format!("{count} entries in {raw_len} raw bytes")));
        }
        Ok(ChangesReader { view, key_width, count, block_count, raw_len, offsets_at: offsets_at as usize })
    }

    /// Number of entries.
    pub fn len(&self) -> u64 {
        self.count
    }

    /// Whether the generation changed nothing.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Number of blocks.
    pub fn blocks(&self) -> u64 {
        self.block_count
    }

    /// The entries in order, decoded one block at a time. Damage (a block that does
    /// not decode, an entry out of order or cut short, counts that disagree with the
    /// header) is an error naming the file and the block, after which the iterator
    /// ends.
    pub fn iter(&self) -> ChangesIter<'_> {
        ChangesIter {
            reader: self,
            next_block: 0,
            raw: Vec::new(),
            pos: 0,
            key: Vec::new(),
            prev: None,
            entries: 0,
            raw_len: 0,
            done: false,
        }
    }

    /// Full check: the checksum, then every entry decoded and checked ([`iter`](Self::iter)).
    pub fn verify(&self) -> Result<(), FormatError> {
        self.view.verify_checksum()?;
        self.iter().try_for_each(|entry| entry.map(drop))
    }

    /// The stored bytes of block `b`.
    fn block(&self, b: u64) -> Result<&[u8], FormatError> {
        let body = self.view.body();
        let at = |i: u64| {
            usize::try_from(i)
                .ok()
                .and_then(|i| i.checked_mul(8))
                .and_then(|off| read_u64(body, self.offsets_at.checked_add(off)?))
                .and_then(|o| usize::try_from(o).ok())
        };
        match (at(b), at(b + 1)) {
            (Some(start), Some(end)) if start <= end && end <= self.offsets_at => {
                body.get(start..end).ok_or_else(|| self.view.damaged(format!("block {b} is out of bounds")))
            }
            _ => Err(self.view.damaged(format!("block {b}: its offsets are out of order or out of bounds"))),
        }
    }
}

/// Decodes the raw entry at `pos` of `raw`: its kind and change bytes (unchecked), its
/// source and the end of the entry. `key` holds the previous key of the block (empty at
/// the block's start) and receives the entry's key.
fn decode_entry(
    raw: &[u8],
    pos: usize,
    key_width: Option<usize>,
    key: &mut Vec<u8>,
) -> Result<(u8, u32, u8, usize), String> {
    let mut at = pos;
    let mut take = |n: usize| {
        let bytes = at.checked_add(n).and_then(|end| raw.get(at..end));
        at = at.saturating_add(n);
        bytes.ok_or_else(|| format!("the entry at raw offset {pos} is cut short"))
    };
    let code = take(1)?.first().copied().unwrap_or(u8::MAX);
    match key_width {
        Some(width) => {
            key.clear();
            key.extend_from_slice(take(width)?);
        }
        None => {
            let Some(&[s0, s1, l0, l1]) = take(4)?.first_chunk::<4>() else { unreachable_cut()? };
            let shared = u16::from_le_bytes([s0, s1]) as usize;
            let suffix_len = u16::from_le_bytes([l0, l1]) as usize;
            if shared > key.len() || (pos == 0 && shared > 0) {
                return Err(format!("the key at raw offset {pos} shares {shared} bytes with a {}-byte key", key.len()));
            }
            key.truncate(shared);
            key.extend_from_slice(take(suffix_len)?);
        }
    }
    let Some(&[a, b, c, d, change]) = take(5)?.first_chunk::<5>() else { unreachable_cut()? };
    Ok((code, u32::from_le_bytes([a, b, c, d]), change, at))
}

/// The error of a slice shorter than the length it was taken with (cannot happen).
fn unreachable_cut<T>() -> Result<T, String> {
    Err("an entry is cut short".into())
}

/// Streams the entries of a change feed (see [`ChangesReader::iter`]).
#[derive(Debug)]
pub struct ChangesIter<'a> {
    reader: &'a ChangesReader,
    next_block: u64,
    /// The decoded block, and the position of the next entry in it.
    raw: Vec<u8>,
    pos: usize,
    /// The previous key (front coding, order).
    key: Vec<u8>,
    prev: Option<(u8, u32)>,
    entries: u64,
    raw_len: u64,
    done: bool,
}

impl ChangesIter<'_> {
    fn damaged(&self, what: impl std::fmt::Display) -> FormatError {
        self.reader.view.damaged(format!("block {}: {what}", self.next_block.saturating_sub(1)))
    }

    /// Decodes the entry at `pos` of the current block.
    fn decode(&mut self) -> Result<Change, FormatError> {
        // The previous key stays in `self.key` for the order check.
        let mut key = self.key.clone();
        let decoded = decode_entry(&self.raw, self.pos, self.reader.key_width, &mut key);
        let (code, source_id, change, end) = match decoded {
            Ok(entry) => entry,
            Err(what) => return Err(self.damaged(what)),
        };
        let kind = identifier_of_code(code).ok_or_else(|| self.damaged(format!("kind byte {code} is not 0 or 1")))?;
        let change =
            ChangeKind::from_code(change).ok_or_else(|| self.damaged(format!("change byte {change} is not 1 or 2")))?;
        if let Some((prev_code, prev_source)) = self.prev
            && (prev_code, self.key.as_slice(), prev_source) >= (code, key.as_slice(), source_id)
        {
            return Err(self.damaged(format!("entry {} is out of order", self.entries)));
        }
        self.pos = end;
        self.prev = Some((code, source_id));
        self.key.clone_from(&key);
        Ok(Change { kind, key, source_id, change })
    }

    /// Decodes the next block into `raw`; `false` at the end of the blocks.
    fn load_block(&mut self) -> Result<bool, FormatError> {
        if self.next_block >= self.reader.block_count {
            return Ok(false);
        }
        let b = self.next_block;
        self.next_block += 1;
        let stored = self.reader.block(b)?;
        self.raw = decompress(stored, Framing::Prefixed, MAX_BLOCK_RAW, None).map_err(|e| self.damaged(e))?;
        self.raw_len += self.raw.len() as u64;
        self.pos = 0;
        Ok(true)
    }

    fn step(&mut self) -> Result<Option<Change>, FormatError> {
        while self.pos >= self.raw.len() {
            if !self.load_block()? {
                let r = self.reader;
                if self.entries != r.count || self.raw_len != r.raw_len {
                    return Err(r.view.damaged(format!(
                        "{} entries in {} raw bytes, but the header says {} in {}",
                        self.entries, self.raw_len, r.count, r.raw_len
                    )));
                }
                return Ok(None);
            }
        }
        if self.entries >= self.reader.count {
            return Err(self.damaged(format!("more entries than the {} the header says", self.reader.count)));
        }
        let change = self.decode()?;
        self.entries += 1;
        Ok(Some(change))
    }
}

impl Iterator for ChangesIter<'_> {
    type Item = Result<Change, FormatError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let step = self.step();
        if !matches!(step, Ok(Some(_))) {
            self.done = true;
        }
        step.transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::framed_bytes;
    use crate::mmap::Bytes;
    use ChangeKind::{Gained, Lost};
    use IdentifierKind::{Email, Username};
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    const NAME: &str = "changes/g00000002.chg";

    fn open(bytes: Vec<u8>, key_width: Option<usize>) -> Result<ChangesReader, FormatError> {
        ChangesReader::new(FileView::parse(NAME, Bytes::from_vec(bytes), KIND)?, key_width)
    }

    fn write(key_width: Option<usize>, block_limit: usize, entries: &[Change]) -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.chg");
        let mut w = ChangesWriter::with_block_limit(&path, key_width, block_limit).unwrap();
        for c in entries {
            w.push(c.kind, &c.key, c.source_id, c.change).unwrap();
        }
        w.finish().unwrap();
        std::fs::read(&path).unwrap()
    }

    fn change(kind: IdentifierKind, key: &[u8], source_id: u32, change: ChangeKind) -> Change {
        Change { kind, key: key.to_vec(), source_id, change }
    }

    fn sample() -> Vec<Change> {
        vec![
            change(Email, b"alice@example.com", 3, Gained),
            change(Email, b"alice@example.com", 7, Lost),
            change(Email, b"alice@example.org", 3, Gained),
            change(Email, b"bob@example.com", 1, Gained),
            change(Username, b"alice", 3, Gained),
            change(Username, b"alicia", 3, Lost),
        ]
    }

    #[test]
    fn plain_round_trip_over_blocks() {
        for limit in [MAX_BLOCK_RAW, 40, 1] {
            let r = open(write(None, limit, &sample()), None).unwrap();
            r.verify().unwrap();
            assert_eq!(r.len(), 6);
            let got: Vec<Change> = r.iter().map(Result::unwrap).collect();
            assert_eq!(got, sample(), "block limit {limit}");
            assert!(limit > 100 || r.blocks() > 1);
        }
        let empty = open(write(None, MAX_BLOCK_RAW, &[]), None).unwrap();
        empty.verify().unwrap();
        assert!(empty.is_empty() && empty.iter().next().is_none());
    }

    #[test]
    fn hashed_round_trip() {
        let entries: Vec<Change> =
            (0..2000u32).map(|i| change(Email, &(i as u64 * 7919).to_be_bytes(), i % 5, Gained)).collect();
        let r = open(write(Some(8), MAX_BLOCK_RAW, &entries), Some(8)).unwrap();
        r.verify().unwrap();
        assert_eq!(r.iter().map(Result::unwrap).collect::<Vec<_>>(), entries);
        assert!(open(write(Some(8), MAX_BLOCK_RAW, &entries), Some(16)).is_err(), "another mode");
        assert!(open(write(Some(8), MAX_BLOCK_RAW, &entries), None).is_err(), "another mode");
    }

    #[test]
    fn writer_refuses_bad_entries() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = ChangesWriter::create(&dir.path().join("c"), Some(8)).unwrap();
        assert!(w.push(Email, &[0; 4], 1, Gained).is_err(), "wrong width");
        w.push(Username, &[0; 8], 2, Gained).unwrap();
        assert!(w.push(Username, &[0; 8], 2, Lost).is_err(), "duplicate pair");
        assert!(w.push(Username, &[0; 8], 1, Lost).is_err(), "source out of order");
        assert!(w.push(Email, &[9; 8], 1, Lost).is_err(), "kind out of order");
        let mut w = ChangesWriter::create(&dir.path().join("c"), None).unwrap();
        assert!(w.push(Email, &vec![b'a'; MAX_PLAIN_KEY + 1], 1, Gained).is_err(), "too long");
        w.push(Email, &vec![b'a'; MAX_PLAIN_KEY], 1, Gained).unwrap();
        assert!(ChangesWriter::create(&dir.path().join("c"), Some(0)).is_err());
    }

    #[test]
    fn damage_is_an_error_naming_the_file() {
        let named = |e: FormatError| assert!(e.to_string().starts_with(NAME), "{e}");
        for limit in [MAX_BLOCK_RAW, 40] {
            let good = write(None, limit, &sample());
            for len in [0, 50, good.len() - 1] {
                named(open(good[..len].to_vec(), None).unwrap_err());
            }
            for i in 0..good.len() {
                let mut bad = good.clone();
                bad[i] ^= 0x08;
                match open(bad, None) {
                    Err(e) => named(e),
                    Ok(r) => named(r.verify().unwrap_err()),
                }
            }
            // Every byte of the body changed under a valid checksum: open and read must
            // return entries or an error naming the file, and end.
            let view = FileView::parse(NAME, Bytes::from_vec(good.clone()), KIND).unwrap();
            let body = view.body().to_vec();
            for i in 0..body.len() {
                for value in [0u8, 1, 0x7f, 0xff] {
                    let mut bad = body.clone();
                    bad[i] = value;
                    if let Ok(r) = open(framed_bytes(KIND, view.params(), &bad), None) {
                        let mut n = 0;
                        for entry in r.iter() {
                            n += 1;
                            assert!(n <= r.len() + 1);
                            if let Err(e) = entry {
                                named(e);
                            }
                        }
                    }
                }
            }
        }
        // Raw blocks with valid frames but bad entries.
        let block = |raw: &[u8]| {
            let mut c = new_compressor(3, &[], Framing::Prefixed).unwrap();
            compress_block(&mut c, raw, Framing::Prefixed).unwrap()
        };
        let file = |raw: &[u8], count: u64| {
            let stored = block(raw);
            let mut body = stored.clone();
            body.extend(0u64.to_le_bytes());
            body.extend((stored.len() as u64).to_le_bytes());
            framed_bytes(KIND, [count, 0, 1, raw.len() as u64], &body)
        };
        let entry = |kind: u8, shared: u16, key: &[u8], source: u32, change: u8| {
            let mut e = vec![kind];
            e.extend(shared.to_le_bytes());
            e.extend((key.len() as u16).to_le_bytes());
            e.extend(key);
            e.extend(source.to_le_bytes());
            e.push(change);
            e
        };
        let cases: Vec<Vec<u8>> = vec![
            [entry(0, 0, b"b", 1, 1), entry(0, 0, b"a", 1, 1)].concat(), // out of order
            [entry(0, 0, b"a", 1, 1), entry(0, 1, b"", 1, 1)].concat(),  // duplicate
            entry(0, 1, b"a", 1, 1),                                     // first entry shares
            entry(2, 0, b"a", 1, 1),                                     // bad kind
            entry(0, 0, b"a", 1, 3),                                     // bad change
            entry(0, 0, b"abc", 1, 1)[..8].to_vec(),                     // cut short
        ];
        for (i, raw) in cases.iter().enumerate() {
            let count = (raw.len() / 10).max(1) as u64;
            match open(file(raw, count), None) {
                Ok(r) => named(r.verify().expect_err(&format!("case {i}"))),
                Err(e) => named(e),
            }
        }
        // Counts that disagree with the entries.
        let raw = [entry(0, 0, b"a", 1, 1), entry(0, 0, b"b", 1, 1)].concat();
        named(open(file(&raw, 1), None).unwrap().verify().unwrap_err());
        named(open(file(&raw, 3), None).unwrap_err());
    }

    /// The sizes of a change feed of e-mails, front-coded against whole keys, for the
    /// layout choice in docs/FORMAT.md §10.3.
    #[test]
    fn front_coding_is_smaller_than_whole_keys() {
        let emails: Vec<String> = (0..20_000u32)
            .map(|i| {
                format!(
                    "{}.{}{}@{}",
                    ["anna", "bob", "chris", "dana"][(i % 4) as usize],
                    i * 37 % 1000,
                    i,
                    ["gmail.com", "yahoo.com", "example.org"][(i % 3) as usize]
                )
            })
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let entries: Vec<Change> = emails.iter().map(|e| change(Email, e.as_bytes(), 42, Gained)).collect();
        let front_coded = write(None, MAX_BLOCK_RAW, &entries).len();
        // Whole keys: the same entries as fixed-width keys padded to the longest e-mail.
        let width = emails.iter().map(String::len).max().unwrap();
        let padded: Vec<Change> = emails
            .iter()
            .map(|e| {
                let mut key = e.clone().into_bytes();
                key.resize(width, 0);
                change(Email, &key, 42, Gained)
            })
            .collect();
        let whole = write(Some(width), MAX_BLOCK_RAW, &padded).len();
        assert!(front_coded < whole, "front coded {front_coded} bytes, whole keys {whole}");
    }

    proptest! {
        #[test]
        fn entries_round_trip_against_a_map(
            plain in any::<bool>(),
            limit in 12usize..200,
            entries in proptest::collection::vec(
                (any::<bool>(), proptest::collection::vec(0u8..3, 0..6), 0u32..4, any::<bool>()), 0..60),
        ) {
            let width = if plain { None } else { Some(4) };
            let mut model = BTreeMap::new();
            for (username, mut key, source, lost) in entries {
                if !plain {
                    key.resize(4, 0);
                }
                model.insert((u8::from(username), key, source), if lost { Lost } else { Gained });
            }
            let want: Vec<Change> = model
                .into_iter()
                .map(|((k, key, source), c)| change(identifier_of_code(k).unwrap(), &key, source, c))
                .collect();
            let r = open(write(width, limit, &want), width).unwrap();
            r.verify().unwrap();
            prop_assert_eq!(r.iter().collect::<Result<Vec<_>, _>>().unwrap(), want);
        }
    }
}
