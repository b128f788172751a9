//! `username.postings`: for each username key ordinal, the ascending list of row ids
//! holding its records (rows are sorted by e-mail, so a username's rows are scattered).
//!
//! Body: the row ids of every list back to back, then the `key_count + 1` list offsets;
//! key `k` owns `row_ids[offsets[k] .. offsets[k + 1]]`. Two layouts (docs/FORMAT.md
//! §3.5), told apart by the `offset_width` header parameter: row ids bit-packed at
//! `id_width` bits (enough for the largest row id) and the offsets as an Elias-Fano
//! sequence up to `posting_count` (`offset_width` 0, what builds write), or the flat
//! layout of earlier builds, `row_ids[posting_count × id_width]` then
//! `offsets[(key_count + 1) × offset_width]` (widths of 4 or 8 bytes).
//! Header parameters: `[key_count, offset_width, posting_count, id_width]`.

use super::elias_fano::{BitWriter, EliasFano, SpilledValues, bit_packed_len, bits_for, read_bits};
use super::{FileView, FileWriter, FormatError, Kind, read_uint, section_end};
use crate::mmap::Bytes;
use std::io;
use std::path::Path;

/// Kind tag of `username.postings`.
pub const KIND: Kind = *b"UPST";
/// File name inside the index directory.
pub const FILE_NAME: &str = "username.postings";

/// The `offset_width` header parameter of the bit-packed, Elias-Fano layout.
const ELIAS_FANO: u64 = 0;

/// Streams postings lists: row ids go straight to the file, bit-packed; the list
/// starts to a temporary file, encoded at the end, so memory stays constant.
pub struct PostingsWriter {
    ids: BitWriter<FileWriter>,
    starts: SpilledValues,
    id_width: u32,
    row_count: u64,
    postings: u64,
    last_row: Option<u64>,
}

impl PostingsWriter {
    /// Creates the file. Row ids are below `row_count`; `temp_dir` receives the
    /// spilled list starts.
    pub fn create(dir: &Path, temp_dir: &Path, row_count: u64) -> io::Result<PostingsWriter> {
        Ok(PostingsWriter {
            ids: BitWriter::new(FileWriter::create(&dir.join(FILE_NAME), KIND)?),
            starts: SpilledValues::new(temp_dir)?,
            id_width: bits_for(row_count.saturating_sub(1)),
            row_count,
            postings: 0,
            last_row: None,
        })
    }

    /// Adds a row to the current key's list (ascending within a key, below the row
    /// count).
    pub fn push_row(&mut self, row: u64) -> io::Result<()> {
        if row >= self.row_count {
            return Err(io::Error::other(format!("row id {row} is past the {} rows", self.row_count)));
        }
        match self.last_row {
            Some(l) if l >= row => return Err(io::Error::other("row ids of one key must be strictly ascending")),
            Some(_) => {}
            None => self.starts.push(self.postings)?,
        }
        self.ids.push(row, self.id_width)?;
        self.last_row = Some(row);
        self.postings += 1;
        Ok(())
    }

    /// Closes the current key's list (it must not be empty); returns its ordinal.
    pub fn end_key(&mut self) -> io::Result<u64> {
        if self.last_row.take().is_none() {
            return Err(io::Error::other("empty postings list"));
        }
        Ok(self.starts.len() - 1)
    }

    /// Encodes the offsets after the row ids and finishes the file.
    pub fn finish(self) -> io::Result<super::FileSummary> {
        if self.last_row.is_some() {
            return Err(io::Error::other("the last postings list was not closed"));
        }
        let keys = self.starts.len();
        let (mut out, _) = self.ids.finish()?;
        self.starts.encode(self.postings, self.postings, &mut out)?;
        out.finish([keys, ELIAS_FANO, self.postings, self.id_width as u64])
    }
}

/// How the list offsets are stored.
#[derive(Clone, Debug)]
enum Offsets {
    /// Flat little-endian integers of `width` bytes at body offset `at`.
    Flat { width: usize, at: usize },
    /// An Elias-Fano sequence.
    EliasFano(EliasFano<Bytes>),
}

/// Reads postings lists.
#[derive(Clone, Debug)]
pub struct PostingsReader {
    view: FileView,
    keys: u64,
    postings: u64,
    /// Bits per row id (32 or 64 in the flat layout).
    id_width: u32,
    /// Body bytes of the row ids.
    ids_len: usize,
    offsets: Offsets,
}

/// The row ids of one key: an iterator over a bit-packed slice.
#[derive(Clone, Debug)]
pub struct PostingList<'a> {
    ids: &'a [u8],
    width: u32,
    next: u64,
    end: u64,
}

impl PostingList<'_> {
    /// Number of rows.
    pub fn len(&self) -> usize {
        usize::try_from(self.end.saturating_sub(self.next)).unwrap_or(usize::MAX)
    }

    /// Hints the CPU to fetch the row ids of the list (at most `max_lines` cache lines).
    #[inline]
    pub fn prefetch(&self, max_lines: usize) {
        let byte = |i: u64| usize::try_from(i.saturating_mul(self.width as u64) / 8).unwrap_or(usize::MAX);
        crate::mmap::prefetch_range(self.ids, byte(self.next)..byte(self.end).saturating_add(8), max_lines);
    }
}

impl Iterator for PostingList<'_> {
    type Item = u64;
    #[inline]
    fn next(&mut self) -> Option<u64> {
        if self.next >= self.end {
            return None;
        }
        let v = read_bits(self.ids, self.next.saturating_mul(self.width as u64), self.width)?;
        self.next += 1;
        Some(v)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.len(), Some(self.len()))
    }
}

impl PostingsReader {
    /// Checks the header against the body (constant time).
    pub fn new(view: FileView) -> Result<PostingsReader, FormatError> {
        let [keys, offset_width, postings, id_width] = view.params();
        let body_len = view.body().len() as u64;
        let (id_width, ids_len, offsets) = if offset_width == ELIAS_FANO {
            let ids_len = u32::try_from(id_width)
                .ok()
                .filter(|w| *w <= 64)
                .and_then(|w| bit_packed_len(postings, w))
                .filter(|len| *len <= body_len)
                .ok_or_else(|| {
                    view.damaged(format!("{postings} row ids of {id_width} bits run past the end of the file"))
                })?;
            let n = keys.checked_add(1).ok_or_else(|| view.damaged(format!("{keys} keys is too many")))?;
            let rest =
                view.body().slice(ids_len as usize..view.body().len()).unwrap_or_else(|| Bytes::from_vec(Vec::new()));
            let seq = EliasFano::new(rest, n, postings).map_err(|e| view.damaged(format!("list offsets: {e}")))?;
            (id_width as u32, ids_len, Offsets::EliasFano(seq))
        } else {
            for (what, w) in [("offset", offset_width), ("row id", id_width)] {
                if w != 4 && w != 8 {
                    return Err(view.damaged(format!("{what} width {w} is not 4 or 8 (or 0: Elias-Fano offsets)")));
                }
            }
            let offsets_at = section_end(&view, 0, postings, id_width, "row ids")?;
            let end = section_end(&view, offsets_at, keys.saturating_add(1), offset_width, "offsets")?;
            if end != body_len {
                return Err(view.damaged("trailing bytes after the offsets"));
            }
            let offsets = Offsets::Flat { width: offset_width as usize, at: offsets_at as usize };
            (id_width as u32 * 8, offsets_at, offsets)
        };
        Ok(PostingsReader { view, keys, postings, id_width, ids_len: ids_len as usize, offsets })
    }

    /// Number of keys.
    pub fn len(&self) -> u64 {
        self.keys
    }

    /// Total row ids over all keys.
    pub fn posting_count(&self) -> u64 {
        self.postings
    }

    /// Whether the layout is the bit-packed, Elias-Fano one (what builds write) rather
    /// than flat integers.
    #[cfg(test)]
    pub fn is_elias_fano(&self) -> bool {
        matches!(self.offsets, Offsets::EliasFano(_))
    }

    /// The rows of key `ordinal`.
    #[inline]
    pub fn rows(&self, ordinal: u64) -> Result<PostingList<'_>, FormatError> {
        let body = self.view.body();
        let bounds = match &self.offsets {
            Offsets::Flat { width, at } => {
                let offsets = body.get(*at..).unwrap_or_default();
                read_uint(offsets, ordinal, *width).zip(read_uint(offsets, ordinal.wrapping_add(1), *width))
            }
            Offsets::EliasFano(seq) => seq.get_pair(ordinal).ok(),
        };
        match bounds {
            Some((start, end)) if ordinal < self.keys && start < end && end <= self.postings => Ok(PostingList {
                ids: body.get(..self.ids_len).unwrap_or_default(),
                width: self.id_width,
                next: start,
                end,
            }),
            _ => Err(self.view.damaged(format!("no valid postings list for key ordinal {ordinal}"))),
        }
    }

    /// Hints the CPU to fetch the list bounds of key `ordinal` (see [`rows`](Self::rows)).
    #[inline]
    pub fn prefetch(&self, ordinal: u64) {
        match &self.offsets {
            Offsets::Flat { width, at } => {
                let offsets = self.view.body().get(*at..).unwrap_or_default();
                if let Ok(i) = usize::try_from(ordinal) {
                    crate::mmap::prefetch(offsets, i.saturating_mul(*width));
                    crate::mmap::prefetch(offsets, i.saturating_add(1).saturating_mul(*width));
                }
            }
            Offsets::EliasFano(seq) => seq.prefetch(ordinal),
        }
    }

    /// Full structure check: offsets ascending, each list non-empty and strictly
    /// ascending, every row id below `total_rows`, padding bits zero.
    pub fn verify(&self, total_rows: u64) -> Result<(), FormatError> {
        let first_and_last = match &self.offsets {
            Offsets::Flat { width, at } => {
                let offsets = self.view.body().get(*at..).unwrap_or_default();
                read_uint(offsets, 0, *width).zip(read_uint(offsets, self.keys, *width))
            }
            Offsets::EliasFano(seq) => {
                seq.verify(true).map_err(|e| self.view.damaged(format!("list offsets: {e}")))?;
                seq.get(0).ok().zip(seq.get(self.keys).ok())
            }
        };
        if first_and_last != Some((0, self.postings)) {
            return Err(self.view.damaged("offsets do not start at 0 and end at the posting count"));
        }
        for k in 0..self.keys {
            let list = self.rows(k)?;
            let mut prev = None;
            for row in list {
                if row >= total_rows || prev.is_some_and(|p| p >= row) {
                    return Err(self.view.damaged(format!("postings list {k} has a bad row id {row}")));
                }
                prev = Some(row);
            }
        }
        let bits = self.postings.saturating_mul(self.id_width as u64);
        let padding = (self.ids_len as u64 * 8).saturating_sub(bits).min(64) as u32;
        let ids = self.view.body().get(..self.ids_len).unwrap_or_default();
        if padding > 0 && read_bits(ids, bits, padding) != Some(0) {
            return Err(self.view.damaged("row ids: padding bits are set"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{framed_bytes, write_uint};
    use proptest::prelude::*;

    /// The readers of the same lists in every layout: what the writer makes (bit-packed
    /// row ids, Elias-Fano offsets), then flat 4-byte and 8-byte integers as earlier
    /// builds wrote them.
    fn readers(lists: &[Vec<u64>], row_count: u64) -> Vec<PostingsReader> {
        let dir = tempfile::tempdir().unwrap();
        let mut w = PostingsWriter::create(dir.path(), dir.path(), row_count).unwrap();
        for (k, list) in lists.iter().enumerate() {
            for r in list {
                w.push_row(*r).unwrap();
            }
            assert_eq!(w.end_key().unwrap(), k as u64);
        }
        w.finish().unwrap();
        let mut files = vec![std::fs::read(dir.path().join(FILE_NAME)).unwrap()];
        let postings: u64 = lists.iter().map(|l| l.len() as u64).sum();
        for width in [4usize, 8] {
            let mut body = Vec::new();
            for row in lists.iter().flatten() {
                write_uint(&mut body, *row, width).unwrap();
            }
            let mut at = 0;
            write_uint(&mut body, 0, width).unwrap();
            for list in lists {
                at += list.len() as u64;
                write_uint(&mut body, at, width).unwrap();
            }
            let params = [lists.len() as u64, width as u64, postings, width as u64];
            files.push(framed_bytes(KIND, params, &body));
        }
        files
            .into_iter()
            .map(|f| PostingsReader::new(FileView::parse(FILE_NAME, Bytes::from_vec(f), KIND).unwrap()).unwrap())
            .collect()
    }

    #[test]
    fn lists_round_trip() {
        let lists: Vec<Vec<u64>> = vec![vec![1, 5, 9], vec![0], vec![2, 3, 99]];
        let all = readers(&lists, 100);
        assert!(all[0].is_elias_fano() && !all[1].is_elias_fano());
        for r in all {
            assert_eq!(r.len(), 3);
            assert_eq!(r.posting_count(), 7);
            for (k, list) in lists.iter().enumerate() {
                let got = r.rows(k as u64).unwrap();
                assert_eq!(got.len(), list.len());
                assert_eq!(&got.collect::<Vec<_>>(), list);
            }
            assert!(r.rows(3).is_err());
            assert!(r.rows(u64::MAX).is_err());
            r.verify(100).unwrap();
            assert!(r.verify(99).is_err());
        }
        let dir = tempfile::tempdir().unwrap();
        let mut w = PostingsWriter::create(dir.path(), dir.path(), 100).unwrap();
        assert!(w.end_key().is_err(), "empty list");
        w.push_row(5).unwrap();
        assert!(w.push_row(5).is_err(), "repeated row");
        assert!(w.push_row(100).is_err(), "row past the row count");
    }

    #[test]
    fn row_ids_take_the_bits_of_the_largest_row() {
        for (row_count, bits) in [(1u64, 0u64), (2, 1), (1 << 20, 20), ((1 << 20) + 1, 21)] {
            let r = readers(&[vec![row_count - 1]], row_count).remove(0);
            assert_eq!(r.view.params()[3], bits);
            assert_eq!(r.rows(0).unwrap().collect::<Vec<_>>(), [row_count - 1]);
            r.verify(row_count).unwrap();
        }
        let r = readers(&[], 10).remove(0);
        assert_eq!(r.len(), 0);
        r.verify(10).unwrap();
    }

    #[test]
    fn a_damaged_header_or_body_is_an_error() {
        let good = readers(&[vec![1, 5, 9], vec![0], vec![2, 3, 99]], 100).remove(0);
        let body = good.view.body().to_vec();
        let open = |params: [u64; 4], body: &[u8]| {
            PostingsReader::new(FileView::parse(FILE_NAME, Bytes::from_vec(framed_bytes(KIND, params, body)), KIND)?)
        };
        assert!(open([3, 0, 7, 7], &body).is_ok());
        for params in
            [[300, 0, 7, 7], [3, 0, 8, 7], [3, 0, 7, 65], [3, 0, u64::MAX, 64], [3, 2, 7, 7], [u64::MAX, 0, 7, 7]]
        {
            let err = open(params, &body).unwrap_err().to_string();
            assert!(err.starts_with("username.postings: damaged"), "{params:?}: {err}");
        }
        // Padding bits after the row ids: found by verify.
        let mut bad = body.clone();
        bad[7] |= 0x80;
        assert!(open([3, 0, 7, 7], &bad).unwrap().verify(100).is_err());
    }

    proptest! {
        /// Whatever the lists, every layout answers like them.
        #[test]
        fn layouts_answer_like_the_lists(
            raw in proptest::collection::vec(proptest::collection::btree_set(0u64..5000, 1..20), 0..80),
            extra_rows in 0u64..3,
        ) {
            let lists: Vec<Vec<u64>> = raw.into_iter().map(|s| s.into_iter().collect()).collect();
            let row_count = lists.iter().flatten().max().map_or(0, |m| m + 1) + extra_rows;
            for r in readers(&lists, row_count.max(1)) {
                prop_assert_eq!(r.len(), lists.len() as u64);
                prop_assert!(r.verify(row_count.max(1)).is_ok());
                for (k, list) in lists.iter().enumerate() {
                    prop_assert_eq!(&r.rows(k as u64).unwrap().collect::<Vec<_>>(), list);
                }
                prop_assert!(r.rows(lists.len() as u64).is_err());
            }
        }
    }
}
