//! `tombstones/g<G>.keys` (kind `TOMB`): the suppressed derived keys as of one
//! generation (docs/FORMAT.md, "Generation-level files"; design §3.1), cumulative.
//!
//! Body: the entries, strictly ascending by (kind, key): `kind u8` (0 e-mail, 1
//! username) then the key: `key_width` bytes in hashed modes, `len u16 LE` and `len`
//! bytes in `plain` mode. In `plain` mode `offsets[entry_count + 1]` (`offset_width`
//! bytes each, LE) follow: the start of every entry in the entries section, and its
//! length last, for binary search.
//! Header parameters: `[entry_count, key_width, data_len, offset_width]`, `key_width` 0
//! and `offset_width` 4 or 8 in `plain` mode, `offset_width` 0 in hashed modes.
//!
//! [`write_cumulative`] writes a generation's file from the previous one and the keys
//! a `remove` names; [`TombstonesReader::contains`] answers for one key.

// Wired up by the generation layer.
#![allow(dead_code)]

use super::{
    FileSummary, FileView, FileWriter, FormatError, Kind, identifier_code, identifier_of_code, read_uint, section_end,
    uint_width, write_uint,
};
use crate::index::IdentifierKind;
use std::cmp::Ordering;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

/// Kind tag of a suppressed-key file.
pub(crate) const KIND: Kind = *b"TOMB";

/// Streams (kind, key) entries in ascending order into a suppressed-key file.
pub(crate) struct TombstonesWriter {
    out: FileWriter,
    /// The mode's key width; `None` in `plain` mode.
    key_width: Option<usize>,
    /// `plain` mode: the entry offsets (u64 LE), spooled until the end.
    offsets: Option<BufWriter<File>>,
    count: u64,
    data_len: u64,
    last: Option<(u8, Vec<u8>)>,
}

impl TombstonesWriter {
    /// Creates `path` for keys of `key_width` bytes (the hash mode's), or of any length
    /// up to 65,535 bytes in `plain` mode (`None`).
    pub(crate) fn create(path: &Path, key_width: Option<usize>) -> io::Result<TombstonesWriter> {
        let offsets = match key_width {
            None => Some(BufWriter::new(tempfile::tempfile()?)),
            Some(_) => None,
        };
        Ok(TombstonesWriter {
            out: FileWriter::create(path, KIND)?,
            key_width,
            offsets,
            count: 0,
            data_len: 0,
            last: None,
        })
    }

    /// Appends the next key; entries must arrive strictly ascending by (kind, key).
    pub(crate) fn push(&mut self, kind: IdentifierKind, key: &[u8]) -> io::Result<()> {
        let code = identifier_code(kind);
        if let Some((last_code, last_key)) = &self.last
            && (*last_code, last_key.as_slice()) >= (code, key)
        {
            return Err(io::Error::other("suppressed keys must be pushed strictly ascending by (kind, key)"));
        }
        let start = self.data_len;
        self.out.write_all(&[code])?;
        match self.key_width {
            Some(width) if key.len() != width => {
                return Err(io::Error::other(format!("a {}-byte key in a file of {width}-byte keys", key.len())));
            }
            Some(_) => {}
            None => {
                let len = u16::try_from(key.len())
                    .map_err(|_| io::Error::other(format!("a {}-byte key is longer than 65,535 bytes", key.len())))?;
                self.out.write_all(&len.to_le_bytes())?;
            }
        }
        self.out.write_all(key)?;
        if let Some(offsets) = &mut self.offsets {
            offsets.write_all(&start.to_le_bytes())?;
        }
        self.data_len += 1 + key.len() as u64 + if self.key_width.is_none() { 2 } else { 0 };
        self.count += 1;
        match &mut self.last {
            Some((last_code, last_key)) => {
                *last_code = code;
                last_key.clear();
                last_key.extend_from_slice(key);
            }
            None => self.last = Some((code, key.to_vec())),
        }
        Ok(())
    }

    /// Appends the offset table (`plain` mode) and writes the header and footer.
    pub(crate) fn finish(mut self) -> io::Result<FileSummary> {
        let mut offset_width = 0;
        if let Some(offsets) = self.offsets.take() {
            offset_width = uint_width(self.data_len);
            let mut spool = offsets.into_inner().map_err(|e| e.into_error())?;
            // Re-encode the spooled u64 offsets at the final width.
            let mut raw = Vec::new();
            io::Seek::seek(&mut spool, io::SeekFrom::Start(0))?;
            io::Read::read_to_end(&mut spool, &mut raw)?;
            for chunk in raw.chunks_exact(8) {
                let offset = u64::from_le_bytes(chunk.try_into().map_err(io::Error::other)?);
                write_uint(&mut self.out, offset, offset_width)?;
            }
            write_uint(&mut self.out, self.data_len, offset_width)?;
        }
        let key_width = self.key_width.unwrap_or(0) as u64;
        self.out.finish([self.count, key_width, self.data_len, offset_width as u64])
    }
}

/// Writes to `path` the suppressed keys of a new generation: every entry of `old` (the
/// previous generation's file, if any) and every key of `added` (any order, duplicates
/// allowed), each once. `key_width` is the hash mode's (`None` in `plain` mode). Returns
/// the file's summary and its number of entries.
pub(crate) fn write_cumulative(
    path: &Path,
    key_width: Option<usize>,
    old: Option<&TombstonesReader>,
    mut added: Vec<(IdentifierKind, Vec<u8>)>,
) -> Result<(FileSummary, u64), TombstonesWriteError> {
    added.sort_by(|a, b| (identifier_code(a.0), &a.1).cmp(&(identifier_code(b.0), &b.1)));
    added.dedup();
    let mut writer = TombstonesWriter::create(path, key_width)?;
    let mut old_entries = old.map(TombstonesReader::iter).into_iter().flatten().peekable();
    let mut added = added.into_iter().peekable();
    loop {
        let take_old = match (old_entries.peek(), added.peek()) {
            (None, None) => break,
            (Some(Err(_)), _) => {
                if let Some(Err(e)) = old_entries.next() {
                    return Err(e.into());
                }
                continue;
            }
            (Some(Ok(o)), Some(a)) => match (identifier_code(o.0), o.1).cmp(&(identifier_code(a.0), a.1.as_slice())) {
                Ordering::Less => true,
                Ordering::Equal => {
                    added.next();
                    true
                }
                Ordering::Greater => false,
            },
            (Some(Ok(_)), None) => true,
            (None, Some(_)) => false,
        };
        if take_old {
            if let (Some(Ok((kind, key))), Some(old)) = (old_entries.next(), old) {
                if let Some((last_code, last_key)) = &writer.last
                    && (*last_code, last_key.as_slice()) >= (identifier_code(kind), key)
                {
                    return Err(old.view.damaged("suppressed keys out of order").into());
                }
                writer.push(kind, key)?;
            }
        } else if let Some((kind, key)) = added.next() {
            writer.push(kind, &key)?;
        }
    }
    let count = writer.count;
    Ok((writer.finish()?, count))
}

/// Why [`write_cumulative`] failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TombstonesWriteError {
    /// Writing the new file, or a key of the wrong width.
    #[error(transparent)]
    Io(#[from] io::Error),
    /// The old file is damaged.
    #[error(transparent)]
    Format(#[from] FormatError),
}

/// Reads a suppressed-key file.
#[derive(Clone, Debug)]
pub(crate) struct TombstonesReader {
    view: FileView,
    count: u64,
    /// Hashed modes: the key width; `None` in `plain` mode.
    key_width: Option<usize>,
    data_len: usize,
    offset_width: usize,
}

impl TombstonesReader {
    /// Checks the header against the body and against the index's hash mode
    /// (`key_width`, `None` in `plain` mode), in constant time.
    pub(crate) fn new(view: FileView, key_width: Option<usize>) -> Result<TombstonesReader, FormatError> {
        let [count, file_width, data_len, offset_width] = view.params();
        let expected = key_width.unwrap_or(0) as u64;
        if file_width != expected {
            return Err(view.damaged(format!(
                "holds keys of width {file_width}, but the index's keys have width {expected} (0 = plain): \
                 the file belongs to another index"
            )));
        }
        let offset_end = match key_width {
            Some(width) => {
                if offset_width != 0 {
                    return Err(view.damaged(format!("offset width {offset_width} in a file of fixed-width keys")));
                }
                let end = section_end(&view, 0, count, 1 + width as u64, "suppressed keys")?;
                if end != data_len {
                    return Err(view.damaged(format!("{count} keys of {width} bytes do not fill {data_len} bytes")));
                }
                end
            }
            None => {
                if offset_width != 4 && offset_width != 8 {
                    return Err(view.damaged(format!("offset width {offset_width} is not 4 or 8")));
                }
                if count.checked_mul(3).is_none_or(|min| min > data_len) {
                    return Err(view.damaged(format!("{count} keys cannot fit {data_len} bytes")));
                }
                section_end(&view, data_len, count.saturating_add(1), offset_width, "key offsets")?
            }
        };
        if offset_end != view.body().len() as u64 {
            return Err(view.damaged("trailing bytes after the suppressed keys"));
        }
        let data_len =
            usize::try_from(data_len).map_err(|_| view.damaged(format!("{data_len} bytes of keys is too large")))?;
        Ok(TombstonesReader { view, count, key_width, data_len, offset_width: offset_width as usize })
    }

    /// Number of suppressed keys.
    pub(crate) fn len(&self) -> u64 {
        self.count
    }

    /// Whether no key is suppressed.
    pub(crate) fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Entry `i` (`i < len`): its kind and key. Damage (a bad kind byte, a key past its
    /// bounds) is an error.
    pub(crate) fn get(&self, i: u64) -> Result<(IdentifierKind, &[u8]), FormatError> {
        let body = self.view.body();
        let data = body.get(..self.data_len).unwrap_or_default();
        let bad = |what: &str| self.view.damaged(format!("suppressed key {i}: {what}"));
        if i >= self.count {
            return Err(bad("past the last entry"));
        }
        let (kind_at, key) = match self.key_width {
            Some(width) => {
                let start =
                    usize::try_from(i).ok().and_then(|i| i.checked_mul(1 + width)).ok_or_else(|| bad("offset"))?;
                (start, data.get(start + 1..start + 1 + width).ok_or_else(|| bad("runs past the keys"))?)
            }
            None => {
                let offsets = body.get(self.data_len..).unwrap_or_default();
                let start = read_uint(offsets, i, self.offset_width).ok_or_else(|| bad("no offset"))?;
                let end = read_uint(offsets, i + 1, self.offset_width).ok_or_else(|| bad("no end offset"))?;
                let start = usize::try_from(start).map_err(|_| bad("offset"))?;
                let end = usize::try_from(end).map_err(|_| bad("offset"))?;
                let entry = data.get(start..end).ok_or_else(|| bad("offsets out of order or past the keys"))?;
                let len = match entry.get(1..3) {
                    Some(&[a, b]) => u16::from_le_bytes([a, b]) as usize,
                    _ => return Err(bad("shorter than its header")),
                };
                if entry.len() != 3 + len {
                    return Err(bad("its length disagrees with the offsets"));
                }
                (start, entry.get(3..).unwrap_or_default())
            }
        };
        let code = data.get(kind_at).copied().ok_or_else(|| bad("past the keys"))?;
        let kind = identifier_of_code(code).ok_or_else(|| bad(&format!("kind byte {code} is not 0 or 1")))?;
        Ok((kind, key))
    }

    /// Whether `key` of `kind` is suppressed (a binary search).
    pub(crate) fn contains(&self, kind: IdentifierKind, key: &[u8]) -> Result<bool, FormatError> {
        let wanted = (identifier_code(kind), key);
        let (mut lo, mut hi) = (0u64, self.count);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let (k, entry) = self.get(mid)?;
            match (identifier_code(k), entry).cmp(&wanted) {
                Ordering::Less => lo = mid + 1,
                Ordering::Greater => hi = mid,
                Ordering::Equal => return Ok(true),
            }
        }
        Ok(false)
    }

    /// Every entry in order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = Result<(IdentifierKind, &[u8]), FormatError>> {
        (0..self.count).map(|i| self.get(i))
    }

    /// Full check: the checksum, every entry decodes, entries strictly ascending, and in
    /// `plain` mode the offsets start at 0 and tile the entries.
    pub(crate) fn verify(&self) -> Result<(), FormatError> {
        self.view.verify_checksum()?;
        if self.key_width.is_none() {
            let offsets = self.view.body().get(self.data_len..).unwrap_or_default();
            if read_uint(offsets, 0, self.offset_width) != Some(0) {
                return Err(self.view.damaged("the first key offset is not 0"));
            }
            if read_uint(offsets, self.count, self.offset_width) != Some(self.data_len as u64) {
                return Err(self.view.damaged("the last key offset is not the length of the keys"));
            }
        }
        let mut prev: Option<(u8, &[u8])> = None;
        for i in 0..self.count {
            let (kind, key) = self.get(i)?;
            let entry = (identifier_code(kind), key);
            if prev.is_some_and(|p| p >= entry) {
                return Err(self.view.damaged(format!("suppressed key {i} is out of order")));
            }
            prev = Some(entry);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::framed_bytes;
    use crate::mmap::Bytes;
    use IdentifierKind::{Email, Username};
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    const NAME: &str = "tombstones/g00000004.keys";

    fn open(bytes: Vec<u8>, key_width: Option<usize>) -> Result<TombstonesReader, FormatError> {
        TombstonesReader::new(FileView::parse(NAME, Bytes::from_vec(bytes), KIND)?, key_width)
    }

    fn write(dir: &Path, key_width: Option<usize>, keys: &[(IdentifierKind, &[u8])]) -> Vec<u8> {
        let path = dir.join("t.keys");
        let mut w = TombstonesWriter::create(&path, key_width).unwrap();
        for (kind, key) in keys {
            w.push(*kind, key).unwrap();
        }
        w.finish().unwrap();
        std::fs::read(&path).unwrap()
    }

    #[test]
    fn plain_and_hashed_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let plain: [(IdentifierKind, &[u8]); 4] =
            [(Email, b"a@x.org"), (Email, b"b@x.org"), (Username, b""), (Username, b"a@x.org")];
        let r = open(write(dir.path(), None, &plain), None).unwrap();
        r.verify().unwrap();
        assert_eq!(r.len(), 4);
        for (kind, key) in plain {
            assert!(r.contains(kind, key).unwrap());
        }
        assert!(!r.contains(Username, b"b@x.org").unwrap());
        assert!(!r.contains(Email, b"").unwrap());
        let listed: Vec<_> = r.iter().map(Result::unwrap).collect();
        assert_eq!(listed, plain.to_vec());

        let hashed: [(IdentifierKind, &[u8]); 3] = [(Email, &[1; 8]), (Email, &[2; 8]), (Username, &[1; 8])];
        let r = open(write(dir.path(), Some(8), &hashed), Some(8)).unwrap();
        r.verify().unwrap();
        assert!(r.contains(Username, &[1; 8]).unwrap() && !r.contains(Username, &[2; 8]).unwrap());
        // A file of another mode does not open.
        assert!(open(write(dir.path(), Some(8), &hashed), Some(16)).is_err());
        assert!(open(write(dir.path(), Some(8), &hashed), None).is_err());
        let empty = open(write(dir.path(), None, &[]), None).unwrap();
        empty.verify().unwrap();
        assert!(empty.is_empty() && !empty.contains(Email, b"a").unwrap());
    }

    #[test]
    fn writer_refuses_bad_keys() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = TombstonesWriter::create(&dir.path().join("t"), Some(8)).unwrap();
        assert!(w.push(Email, &[0; 7]).is_err(), "wrong width");
        w.push(Username, &[0; 8]).unwrap();
        assert!(w.push(Email, &[9; 8]).is_err(), "e-mail after username");
        assert!(w.push(Username, &[0; 8]).is_err(), "duplicate");
        let mut w = TombstonesWriter::create(&dir.path().join("t"), None).unwrap();
        assert!(w.push(Email, &vec![b'a'; 70_000]).is_err(), "too long");
    }

    #[test]
    fn cumulative_files_keep_old_keys() {
        let dir = tempfile::tempdir().unwrap();
        for width in [None, Some(8)] {
            let key = |b: u8| match width {
                None => vec![b; (b % 5) as usize + 1],
                Some(w) => vec![b; w],
            };
            let first = dir.path().join("g2.keys");
            let (_, n) =
                write_cumulative(&first, width, None, vec![(Email, key(5)), (Username, key(1)), (Email, key(5))])
                    .unwrap();
            assert_eq!(n, 2);
            let old = open(std::fs::read(&first).unwrap(), width).unwrap();
            let second = dir.path().join("g3.keys");
            let (_, n) = write_cumulative(
                &second,
                width,
                Some(&old),
                vec![(Email, key(9)), (Username, key(1)), (Email, key(2))],
            )
            .unwrap();
            assert_eq!(n, 4);
            let new = open(std::fs::read(&second).unwrap(), width).unwrap();
            new.verify().unwrap();
            let listed: Vec<_> = new.iter().map(|e| e.map(|(k, v)| (k, v.to_vec()))).collect::<Result<_, _>>().unwrap();
            assert_eq!(listed, [(Email, key(2)), (Email, key(5)), (Email, key(9)), (Username, key(1))]);
        }
    }

    #[test]
    fn damage_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let named = |e: FormatError| assert!(e.to_string().starts_with(NAME), "{e}");
        for width in [None, Some(8)] {
            let keys: Vec<(IdentifierKind, Vec<u8>)> =
                vec![(Email, vec![3; 8]), (Email, vec![4; 8]), (Username, vec![1; 8])];
            let refs: Vec<(IdentifierKind, &[u8])> = keys.iter().map(|(k, v)| (*k, v.as_slice())).collect();
            let good = write(dir.path(), width, &refs);
            for len in [0, 30, good.len() - 1] {
                named(open(good[..len].to_vec(), width).unwrap_err());
            }
            for i in 0..good.len() {
                let mut bad = good.clone();
                bad[i] ^= 0x21;
                match open(bad, width) {
                    Err(e) => named(e),
                    Ok(r) => named(r.verify().unwrap_err()),
                }
            }
            // Valid checksums over damaged bodies: every byte changed in turn, then
            // reseal the frame; open, verify and every read must not panic.
            let view = FileView::parse(NAME, Bytes::from_vec(good.clone()), KIND).unwrap();
            let body = view.body().to_vec();
            for i in 0..body.len() {
                for value in [0u8, 2, 0x80, 0xff] {
                    let mut bad = body.clone();
                    bad[i] = value;
                    if let Ok(r) = open(framed_bytes(KIND, view.params(), &bad), width) {
                        let verified = r.verify();
                        for (kind, key) in &refs {
                            let _ = r.contains(*kind, key);
                        }
                        if let Err(e) = verified {
                            named(e);
                        }
                    }
                }
            }
        }
        // Entries out of order with a valid checksum.
        let mut body = vec![1u8];
        body.extend([2; 8]);
        body.push(0);
        body.extend([1; 8]);
        let r = open(framed_bytes(KIND, [2, 8, 18, 0], &body), Some(8)).unwrap();
        named(r.verify().unwrap_err());
        // A bad kind byte.
        body[0] = 7;
        let r = open(framed_bytes(KIND, [2, 8, 18, 0], &body), Some(8)).unwrap();
        named(r.contains(Email, &[0; 8]).unwrap_err());
    }

    proptest! {
        #[test]
        fn contains_matches_a_set(
            plain in any::<bool>(),
            keys in proptest::collection::vec((any::<bool>(), proptest::collection::vec(0u8..4, 0..4)), 0..40),
            probes in proptest::collection::vec((any::<bool>(), proptest::collection::vec(0u8..4, 0..4)), 0..40),
        ) {
            let width = if plain { None } else { Some(3) };
            let fit = |k: Vec<u8>| if plain { k } else { let mut k = k; k.resize(3, 0); k };
            let kind = |b: bool| if b { Username } else { Email };
            let set: BTreeSet<(u8, Vec<u8>)> =
                keys.into_iter().map(|(b, k)| (identifier_code(kind(b)), fit(k))).collect();
            let added: Vec<_> = set.iter().map(|(c, k)| (identifier_of_code(*c).unwrap(), k.clone())).rev().collect();
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("t.keys");
            write_cumulative(&path, width, None, added).unwrap();
            let r = open(std::fs::read(&path).unwrap(), width).unwrap();
            r.verify().unwrap();
            prop_assert_eq!(r.len(), set.len() as u64);
            for (b, k) in probes {
                let k = fit(k);
                prop_assert_eq!(r.contains(kind(b), &k).unwrap(), set.contains(&(identifier_code(kind(b)), k.clone())));
            }
        }
    }
}
