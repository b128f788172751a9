//! `passwords.rowrefs` (kind `PWRF`): for each row of an index that counts passwords it
//! does not store (a "privacy" build: `--store` without `password_plaintext`,
//! `password_hash` or `password_type`, password index on), the entries of its
//! `passwords.sha1` / `passwords.ntlm` the row counted in. `remove` subtracts the removed
//! rows' hashes through it, since their values are not in the store
//! (docs/design/incremental-updates.md §3.4; bytes in docs/FORMAT.md §3.11).
//!
//! Body: `chunk_offset[chunks + 1]` (u64 LE, `chunks = ⌈row_count / 64⌉`: byte offset,
//! in the row section that follows, of row `64 × i`; the last one is the section's
//! length), then the row section: per row, ascending, `n u8` (at most
//! [`MAX_REFS_PER_ROW`]) and `n` references `kind u8 (0 SHA-1, 1 NTLM) ‖ ordinal`
//! (`width` bytes LE, the entry's position in that password file), each reference of a
//! row distinct. Header parameters: `[row_count, ref_count, width, 0]`, `width` 4 or 8.
//!
//! The row section is exactly `row_count + ref_count × (1 + width)` bytes. Reading one
//! row costs one directory read and a walk over at most 63 earlier rows of its chunk.

use super::passwords::PasswordFiles;
use super::{FileSummary, FileView, FileWriter, FormatError, Kind, read_u64, read_uint, uint_width, write_uint};
use crate::password::{PasswordHash, PasswordHashKind};
use std::io::{self, Write};
use std::path::Path;

/// File name of the row references.
pub const FILE_NAME: &str = "passwords.rowrefs";
/// Kind tag of `passwords.rowrefs`.
pub const KIND: Kind = *b"PWRF";
/// Rows per chunk of the offset directory.
pub const CHUNK_ROWS: u64 = 64;
/// Most references of one row: a record counts in the SHA-1 and NTLM of its plaintext
/// and in its typed `password_hash`, each once.
pub const MAX_REFS_PER_ROW: usize = 3;

/// One reference: an entry of the password file of `kind`, by position.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct RowRef {
    /// Which password file.
    pub kind: PasswordHashKind,
    /// The entry's position among that file's sorted entries.
    pub ordinal: u64,
}

/// The byte that stands for a password hash kind: 0 SHA-1, 1 NTLM (here and in the
/// build's password sort keys).
pub(crate) fn kind_code(kind: PasswordHashKind) -> u8 {
    match kind {
        PasswordHashKind::Sha1 => 0,
        PasswordHashKind::Ntlm => 1,
    }
}

/// The kind of a byte written by [`kind_code`]; `None` for any other.
pub(crate) fn kind_of_code(code: u8) -> Option<PasswordHashKind> {
    match code {
        0 => Some(PasswordHashKind::Sha1),
        1 => Some(PasswordHashKind::Ntlm),
        _ => None,
    }
}

/// Whether an index whose `--store` request is `store` (`None`: every asset) and that
/// makes a password index counts passwords it does not store, and so gets
/// `passwords.rowrefs`.
pub fn needed(password_index: bool, store: Option<crate::asset::AssetSet>) -> bool {
    use crate::asset::Asset;
    password_index
        && store.is_some_and(|s| {
            ![Asset::PasswordPlaintext, Asset::PasswordHash, Asset::PasswordType].iter().all(|a| s.contains(*a))
        })
}

fn chunk_count(row_count: u64) -> u64 {
    row_count.div_ceil(CHUNK_ROWS)
}

/// Streams (row, reference) pairs, rows ascending, into `passwords.rowrefs`.
pub struct RowRefsWriter {
    out: FileWriter,
    row_count: u64,
    width: usize,
    offsets: Vec<u64>,
    section_len: u64,
    /// The next row not yet written.
    next_row: u64,
    ref_count: u64,
    /// The row being collected and its references.
    current: Option<(u64, Vec<RowRef>)>,
}

impl RowRefsWriter {
    /// Creates `path` for an index of `row_count` rows whose password files hold at most
    /// `max_entries` entries each (sizes the ordinals).
    pub fn create(path: &Path, row_count: u64, max_entries: u64) -> io::Result<RowRefsWriter> {
        let mut out = FileWriter::create(path, KIND)?;
        let chunks = chunk_count(row_count);
        // The directory, patched in by `finish`.
        let zeros = [0u8; 8 * 1024];
        let mut left = (chunks + 1) * 8;
        while left > 0 {
            let n = left.min(zeros.len() as u64) as usize;
            out.write_all(zeros.get(..n).unwrap_or_default())?;
            left -= n as u64;
        }
        Ok(RowRefsWriter {
            out,
            row_count,
            width: uint_width(max_entries),
            offsets: Vec::with_capacity(usize::try_from(chunks + 1).unwrap_or(0)),
            section_len: 0,
            next_row: 0,
            ref_count: 0,
            current: None,
        })
    }

    /// Adds a reference of `row`; rows must arrive ascending (a row's references
    /// together, in any order, each once).
    pub fn push(&mut self, row: u64, r: RowRef) -> io::Result<()> {
        if row >= self.row_count {
            return Err(io::Error::other(format!("row {row} in an index of {} rows", self.row_count)));
        }
        match &mut self.current {
            Some((current, refs)) if *current == row => {
                if refs.contains(&r) {
                    return Err(io::Error::other(format!("row {row} refers to the same password entry twice")));
                }
                if refs.len() >= MAX_REFS_PER_ROW {
                    return Err(io::Error::other(format!(
                        "row {row} counts in more than {MAX_REFS_PER_ROW} password hashes"
                    )));
                }
                refs.push(r);
            }
            Some((current, _)) if *current > row => {
                return Err(io::Error::other("password row references must be pushed by ascending row"));
            }
            _ => {
                self.flush_current()?;
                self.current = Some((row, vec![r]));
            }
        }
        Ok(())
    }

    /// Writes the collected row and the rows without references before it.
    fn flush_current(&mut self) -> io::Result<()> {
        let Some((row, mut refs)) = self.current.take() else { return Ok(()) };
        while self.next_row < row {
            self.write_row(&[])?;
        }
        refs.sort_unstable();
        self.write_row(&refs)
    }

    fn write_row(&mut self, refs: &[RowRef]) -> io::Result<()> {
        if self.next_row.is_multiple_of(CHUNK_ROWS) {
            self.offsets.push(self.section_len);
        }
        self.out.write_all(&[refs.len() as u8])?;
        for r in refs {
            self.out.write_all(&[kind_code(r.kind)])?;
            write_uint(&mut self.out, r.ordinal, self.width)?;
        }
        self.section_len += 1 + refs.len() as u64 * (1 + self.width as u64);
        self.ref_count += refs.len() as u64;
        self.next_row += 1;
        Ok(())
    }

    /// Writes the rows left (without references), the directory, header and footer.
    pub fn finish(mut self) -> io::Result<FileSummary> {
        self.flush_current()?;
        while self.next_row < self.row_count {
            self.write_row(&[])?;
        }
        self.offsets.push(self.section_len);
        let mut dir = Vec::with_capacity(self.offsets.len() * 8);
        for o in &self.offsets {
            dir.extend_from_slice(&o.to_le_bytes());
        }
        self.out.patch_body(0, &dir)?;
        self.out.finish([self.row_count, self.ref_count, self.width as u64, 0])
    }
}

/// Reads `passwords.rowrefs`: the references of one row, checked against the password
/// files' entry counts.
#[derive(Clone, Debug)]
pub struct RowRefsReader {
    view: FileView,
    row_count: u64,
    ref_count: u64,
    width: usize,
    chunks: u64,
    /// Entries of `passwords.sha1` and `passwords.ntlm`.
    entries: [u64; 2],
}

/// The references of one row (at most [`MAX_REFS_PER_ROW`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RowRefs {
    refs: [Option<RowRef>; MAX_REFS_PER_ROW],
}

impl RowRefs {
    /// The references, in file order.
    pub fn iter(&self) -> impl Iterator<Item = RowRef> + '_ {
        self.refs.iter().flatten().copied()
    }
}

impl RowRefsReader {
    /// Checks the header and the directory's ends against the body, against the index's
    /// `row_count` and the password files' entry counts `[sha1, ntlm]` (constant time).
    pub fn new(view: FileView, row_count: u64, entries: [u64; 2]) -> Result<RowRefsReader, FormatError> {
        let [rows, ref_count, width, reserved] = view.params();
        if rows != row_count {
            return Err(view
                .damaged(format!("holds the password references of {rows} rows, but the index has {row_count} rows")));
        }
        if width != 4 && width != 8 {
            return Err(view.damaged(format!("ordinal width {width} is not 4 or 8")));
        }
        if reserved != 0 {
            return Err(view.damaged("header parameter 3 is not zero"));
        }
        let chunks = chunk_count(row_count);
        let body = view.body().len() as u64;
        let dir_len = (chunks + 1).checked_mul(8).filter(|l| *l <= body).ok_or_else(|| {
            view.damaged(format!("chunk directory ({} offsets) runs past the end of the file", chunks + 1))
        })?;
        let section = body - dir_len;
        let expected = ref_count.checked_mul(1 + width).and_then(|r| r.checked_add(row_count));
        if expected != Some(section) {
            return Err(view.damaged(format!(
                "row section is {section} bytes, but {row_count} rows with {ref_count} references of {} bytes take {}",
                1 + width,
                expected.map_or_else(|| "more than 2^64".to_string(), |e| e.to_string())
            )));
        }
        let reader = RowRefsReader { view, row_count, ref_count, width: width as usize, chunks, entries };
        if reader.chunk_offset(0)? != 0 || reader.chunk_offset(chunks)? != section {
            return Err(reader
                .view
                .damaged(format!("chunk directory does not span the row section (0 to {section} bytes)")));
        }
        Ok(reader)
    }

    /// References in all.
    #[cfg(test)]
    pub fn ref_count(&self) -> u64 {
        self.ref_count
    }

    fn dir_len(&self) -> usize {
        ((self.chunks + 1) * 8) as usize
    }

    fn section(&self) -> &[u8] {
        self.view.body().get(self.dir_len()..).unwrap_or_default()
    }

    fn chunk_offset(&self, chunk: u64) -> Result<u64, FormatError> {
        let off = usize::try_from(chunk).ok().and_then(|c| c.checked_mul(8));
        off.and_then(|o| read_u64(self.view.body(), o))
            .ok_or_else(|| self.view.damaged(format!("no chunk offset {chunk}")))
    }

    /// Decodes the row starting at byte `pos` of the row section (row `row`, for
    /// messages); returns its references and the next row's position.
    fn decode_at(&self, row: u64, pos: u64) -> Result<(RowRefs, u64), FormatError> {
        let section = self.section();
        let bad = |what: String| self.view.damaged(format!("row {row} (section byte {pos}): {what}"));
        let at = usize::try_from(pos).map_err(|_| bad("offset out of range".into()))?;
        let n = *section.get(at).ok_or_else(|| bad("past the end of the row section".into()))? as usize;
        if n > MAX_REFS_PER_ROW {
            return Err(bad(format!("{n} references, at most {MAX_REFS_PER_ROW}")));
        }
        let mut out = RowRefs::default();
        let mut p = at + 1;
        for slot in out.refs.iter_mut().take(n) {
            let code = *section.get(p).ok_or_else(|| bad("references run past the end of the file".into()))?;
            let kind = kind_of_code(code).ok_or_else(|| bad(format!("password kind byte {code} is not 0 or 1")))?;
            let ordinal = read_uint(section.get(p + 1..).unwrap_or_default(), 0, self.width)
                .ok_or_else(|| bad("references run past the end of the file".into()))?;
            let entries = self.entries[kind_code(kind) as usize];
            if ordinal >= entries {
                return Err(bad(format!(
                    "refers to {} entry {ordinal}, but the file has {entries} entries",
                    super::passwords::file_name(kind)
                )));
            }
            *slot = Some(RowRef { kind, ordinal });
            p += 1 + self.width;
        }
        Ok((out, p as u64))
    }

    /// The references of row `row`.
    pub fn refs(&self, row: u64) -> Result<RowRefs, FormatError> {
        if row >= self.row_count {
            return Err(self.view.damaged(format!("no row {row}: the file covers {} rows", self.row_count)));
        }
        let chunk = row / CHUNK_ROWS;
        let (start, end) = (self.chunk_offset(chunk)?, self.chunk_offset(chunk + 1)?);
        if start > end || end > self.section().len() as u64 {
            return Err(self.view.damaged(format!(
                "chunk {chunk} spans bytes {start}..{end} of a {}-byte row section",
                self.section().len()
            )));
        }
        let mut pos = start;
        for r in chunk * CHUNK_ROWS..row {
            pos = self.decode_at(r, pos)?.1;
            if pos > end {
                return Err(self.view.damaged(format!("row {r} runs past the end of chunk {chunk}")));
            }
        }
        let (refs, next) = self.decode_at(row, pos)?;
        if next > end {
            return Err(self.view.damaged(format!("row {row} runs past the end of chunk {chunk}")));
        }
        Ok(refs)
    }

    /// The hashes row `row` counted in, read from `files` (the index's password files).
    pub fn hashes(&self, row: u64, files: &PasswordFiles) -> Result<Vec<PasswordHash>, FormatError> {
        let mut out = Vec::with_capacity(MAX_REFS_PER_ROW);
        for r in self.refs(row)?.iter() {
            let file = files.file(r.kind);
            let hash =
                file.entry(r.ordinal).and_then(|(hash, _)| PasswordHash::from_bytes(r.kind, hash).ok()).ok_or_else(
                    || self.view.damaged(format!("row {row}: {} entry {} cannot be read", r.kind, r.ordinal)),
                )?;
            out.push(hash);
        }
        Ok(out)
    }

    /// Full check: the checksum; every chunk offset where its row starts; every row's
    /// references distinct and within the password files; the total the header says;
    /// and, against `files` (the index's password files), each entry referred to by
    /// exactly as many rows as its count. Memory: 4 bytes per password entry.
    pub fn verify(&self, files: &PasswordFiles) -> Result<(), FormatError> {
        self.view.verify_checksum()?;
        let mut per_entry: [Vec<u32>; 2] = [Vec::new(), Vec::new()];
        for kind in PasswordHashKind::ALL {
            let len = files.file(kind).len();
            if len != self.entries[kind_code(kind) as usize] {
                return Err(self.view.damaged(format!(
                    "checked against {} entries of {}, which holds {len}",
                    self.entries[kind_code(kind) as usize],
                    super::passwords::file_name(kind)
                )));
            }
            per_entry[kind_code(kind) as usize] = vec![0u32; usize::try_from(len).unwrap_or(0)];
        }
        let mut pos = 0u64;
        let mut total = 0u64;
        for row in 0..self.row_count {
            if row.is_multiple_of(CHUNK_ROWS) && self.chunk_offset(row / CHUNK_ROWS)? != pos {
                return Err(self.view.damaged(format!(
                    "chunk offset {} is not where row {row} starts (section byte {pos})",
                    row / CHUNK_ROWS
                )));
            }
            let (refs, next) = self.decode_at(row, pos)?;
            let list: Vec<RowRef> = refs.iter().collect();
            for (i, r) in list.iter().enumerate() {
                if list.get(..i).is_some_and(|before| before.contains(r)) {
                    return Err(self.view.damaged(format!("row {row} refers to {} entry {} twice", r.kind, r.ordinal)));
                }
                if let Some(c) = per_entry[kind_code(r.kind) as usize].get_mut(r.ordinal as usize) {
                    *c = c.saturating_add(1);
                }
            }
            total += list.len() as u64;
            pos = next;
        }
        if pos != self.section().len() as u64 || total != self.ref_count {
            return Err(self.view.damaged(format!(
                "rows hold {total} references in {pos} bytes, the header says {} in {}",
                self.ref_count,
                self.section().len()
            )));
        }
        for kind in PasswordHashKind::ALL {
            let file = files.file(kind);
            for (ordinal, refs) in per_entry[kind_code(kind) as usize].iter().enumerate() {
                let count = file.entry(ordinal as u64).map_or(0, |(_, c)| c);
                if u64::from(*refs) != count {
                    return Err(self.view.damaged(format!(
                        "{refs} rows refer to {} entry {ordinal}, whose count is {count}",
                        super::passwords::file_name(kind)
                    )));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mmap::Bytes;
    use PasswordHashKind::{Ntlm, Sha1};

    fn r(kind: PasswordHashKind, ordinal: u64) -> RowRef {
        RowRef { kind, ordinal }
    }

    fn write(dir: &Path, rows: u64, max: u64, refs: &[(u64, RowRef)]) -> Vec<u8> {
        let path = dir.join(FILE_NAME);
        let mut w = RowRefsWriter::create(&path, rows, max).unwrap();
        for (row, rf) in refs {
            w.push(*row, *rf).unwrap();
        }
        let summary = w.finish().unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(summary.size, bytes.len() as u64);
        bytes
    }

    fn open(bytes: Vec<u8>, rows: u64, entries: [u64; 2]) -> Result<RowRefsReader, FormatError> {
        let view = FileView::parse(FILE_NAME, Bytes::from_vec(bytes), KIND)?;
        RowRefsReader::new(view, rows, entries)
    }

    /// A model: per row, a few references, over several chunks.
    fn model(rows: u64) -> Vec<(u64, RowRef)> {
        let mut out = Vec::new();
        for row in 0..rows {
            match row % 5 {
                0 => {}
                1 => out.push((row, r(Sha1, row % 7))),
                2 => {
                    out.push((row, r(Ntlm, row % 3)));
                    out.push((row, r(Sha1, row % 7)));
                }
                _ => {
                    out.push((row, r(Sha1, row % 7)));
                    out.push((row, r(Ntlm, row % 3)));
                    out.push((row, r(Ntlm, 3 + row % 2)));
                }
            }
        }
        out
    }

    #[test]
    fn round_trips_every_row() {
        let dir = tempfile::tempdir().unwrap();
        for rows in [0u64, 1, 63, 64, 65, 200] {
            let refs = model(rows);
            let reader = open(write(dir.path(), rows, 10, &refs), rows, [7, 5]).unwrap();
            assert_eq!(reader.ref_count(), refs.len() as u64);
            for row in 0..rows {
                let mut want: Vec<RowRef> = refs.iter().filter(|(r, _)| *r == row).map(|(_, x)| *x).collect();
                want.sort();
                assert_eq!(reader.refs(row).unwrap().iter().collect::<Vec<_>>(), want, "row {row}");
            }
            assert!(reader.refs(rows).is_err());
        }
    }

    #[test]
    fn wide_ordinals_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let big = (u32::MAX as u64) + 5;
        let bytes = write(dir.path(), 3, big + 1, &[(1, r(Ntlm, big)), (2, r(Sha1, 0))]);
        let reader = open(bytes, 3, [1, big + 1]).unwrap();
        assert_eq!(reader.refs(1).unwrap().iter().collect::<Vec<_>>(), [r(Ntlm, big)]);
        assert_eq!(reader.refs(0).unwrap().iter().count(), 0);
    }

    #[test]
    fn the_writer_refuses_what_the_format_cannot_hold() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        let mut w = RowRefsWriter::create(&path, 4, 10).unwrap();
        assert!(w.push(4, r(Sha1, 0)).is_err(), "row past the end");
        w.push(2, r(Sha1, 0)).unwrap();
        assert!(w.push(2, r(Sha1, 0)).is_err(), "the same reference twice");
        w.push(2, r(Ntlm, 0)).unwrap();
        w.push(2, r(Ntlm, 1)).unwrap();
        assert!(w.push(2, r(Sha1, 1)).is_err(), "a fourth reference");
        assert!(w.push(1, r(Sha1, 1)).is_err(), "rows going back");
    }

    #[test]
    fn every_bound_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let rows = 130;
        let good = write(dir.path(), rows, 10, &model(rows));
        let body = |b: &[u8]| b[super::super::HEADER_LEN..b.len() - super::super::FOOTER_LEN].to_vec();
        let params = |b: &[u8]| {
            let v = FileView::parse(FILE_NAME, Bytes::from_vec(b.to_vec()), KIND).unwrap();
            v.params()
        };
        let reframe = |p: [u64; 4], body: &[u8]| super::super::framed_bytes(KIND, p, body);
        let expect_err = |bytes: Vec<u8>, entries: [u64; 2], what: &str| {
            let err = match open(bytes, rows, entries) {
                Err(e) => e,
                Ok(reader) => {
                    let mut first = None;
                    for row in 0..rows {
                        if let Err(e) = reader.refs(row) {
                            first = Some(e);
                            break;
                        }
                    }
                    first.unwrap_or_else(|| panic!("{what}: no error"))
                }
            };
            assert!(err.to_string().contains(FILE_NAME), "{what}: {err}");
        };
        // Wrong row count, bad width, non-zero reserved parameter, wrong reference count.
        let (p, b) = (params(&good), body(&good));
        expect_err(reframe([rows + 1, p[1], p[2], 0], &b), [7, 5], "row count");
        assert!(open(good.clone(), rows - 1, [7, 5]).is_err());
        expect_err(reframe([p[0], p[1], 5, 0], &b), [7, 5], "width");
        expect_err(reframe([p[0], p[1], p[2], 1], &b), [7, 5], "reserved");
        expect_err(reframe([p[0], p[1] + 1, p[2], 0], &b), [7, 5], "reference count");
        // Truncated body.
        expect_err(reframe(p, &b[..b.len() - 1]), [7, 5], "truncation");
        // Ordinals past the password files.
        expect_err(good.clone(), [6, 5], "sha1 ordinal");
        expect_err(good.clone(), [7, 4], "ntlm ordinal");
        // A chunk offset past the section, and one pointing inside a row.
        let mut bad = b.clone();
        bad[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
        expect_err(reframe(p, &bad), [7, 5], "chunk offset");
        let mut bad = b.clone();
        let off = u64::from_le_bytes(bad[8..16].try_into().unwrap());
        bad[8..16].copy_from_slice(&(off + 1).to_le_bytes());
        let reader = open(reframe(p, &bad), rows, [7, 5]);
        let files = password_files(dir.path(), &model(rows));
        match reader {
            Ok(reader) => {
                let err = reader.verify(&files).unwrap_err();
                assert!(err.to_string().contains(FILE_NAME), "{err}");
            }
            Err(e) => assert!(e.to_string().contains(FILE_NAME)),
        }
        // A count byte above the maximum and a bad kind byte, at the first row.
        let dir_len = ((rows.div_ceil(CHUNK_ROWS) + 1) * 8) as usize;
        let mut bad = b.clone();
        bad[dir_len] = 4;
        expect_err(reframe(p, &bad), [7, 5], "count byte");
        let mut bad = b.clone();
        // Row 1 holds one reference: its kind byte follows its count byte (row 0 is empty).
        bad[dir_len + 2] = 9;
        expect_err(reframe(p, &bad), [7, 5], "kind byte");
        // Bad magic and a flipped byte.
        let mut bad = good.clone();
        bad[0] ^= 1;
        assert!(open(bad, rows, [7, 5]).is_err());
        let mut bad = good.clone();
        let at = bad.len() - super::super::FOOTER_LEN - 1;
        bad[at] ^= 0x10;
        if let Ok(reader) = open(bad, rows, [7, 5]) {
            let err = reader.verify(&files).unwrap_err();
            assert!(err.to_string().contains(FILE_NAME), "{err}");
        }
    }

    /// Password files whose counts are what `refs` refer to (7 SHA-1 and 5 NTLM entries).
    fn password_files(dir: &Path, refs: &[(u64, RowRef)]) -> PasswordFiles {
        use crate::format::passwords::{PasswordFileReader, PasswordFileWriter, file_kind, file_name};
        let open = |kind: PasswordHashKind, n: u64| {
            let path = dir.join(file_name(kind));
            let mut w = PasswordFileWriter::create(&path, kind, 1000).unwrap();
            for i in 0..n {
                let mut hash = vec![0u8; kind.width()];
                hash[0] = i as u8;
                let count = refs.iter().filter(|(_, x)| x.kind == kind && x.ordinal == i).count() as u64;
                w.push(&hash, count.max(1)).unwrap();
            }
            w.finish().unwrap();
            let view =
                FileView::parse(file_name(kind), Bytes::from_vec(std::fs::read(&path).unwrap()), file_kind(kind))
                    .unwrap();
            PasswordFileReader::new(view, kind).unwrap()
        };
        PasswordFiles { sha1: open(Sha1, 7), ntlm: open(Ntlm, 5) }
    }

    #[test]
    fn verify_checks_counts_against_the_password_files() {
        let dir = tempfile::tempdir().unwrap();
        let rows = 130;
        let refs = model(rows);
        let files = password_files(dir.path(), &refs);
        let reader = open(write(dir.path(), rows, 10, &refs), rows, [7, 5]).unwrap();
        reader.verify(&files).unwrap();
        let hashes = reader.hashes(1, &files).unwrap();
        assert_eq!(hashes.len(), 1);
        assert_eq!(files.sha1.find(hashes[0].as_bytes()).unwrap().map(|(o, _)| o), Some(1));
        // One reference less: entry counts no longer match.
        let fewer: Vec<_> = refs.iter().copied().filter(|(row, _)| *row != 1).collect();
        let reader = open(write(dir.path(), rows, 10, &fewer), rows, [7, 5]).unwrap();
        let err = reader.verify(&files).unwrap_err();
        assert!(err.to_string().contains("passwords.sha1 entry 1, whose count is"), "{err}");
    }
}
