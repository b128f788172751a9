//! `username.postings`: for each username key ordinal, the ascending list of row ids
//! holding its records (rows are sorted by e-mail, so a username's rows are scattered).
//!
//! Body: `row_ids[posting_count × id_width]` then `offsets[(key_count + 1) × offset_width]`;
//! key `k` owns `row_ids[offsets[k] .. offsets[k + 1]]`.
//! Header parameters: `[key_count, offset_width, posting_count, id_width]`.

use super::{FileView, FileWriter, FormatError, Kind, read_uint, section_end, uint_width, write_uint};
use std::fs::File;
use std::io::{self, BufWriter};
use std::path::Path;

/// Kind tag of `username.postings`.
pub const KIND: Kind = *b"UPST";
/// File name inside the index directory.
pub const FILE_NAME: &str = "username.postings";

/// Streams postings lists: row ids go straight to the file, offsets to a temporary
/// side file appended at the end, so memory stays constant.
pub struct PostingsWriter {
    out: FileWriter,
    offsets: BufWriter<File>,
    id_width: usize,
    offset_width: usize,
    keys: u64,
    postings: u64,
    last_row: Option<u64>,
}

impl PostingsWriter {
    /// Creates the file. `max_row` and `max_postings` bound the values to size the
    /// integer widths; `temp_dir` receives the side file.
    pub fn create(dir: &Path, temp_dir: &Path, max_row: u64, max_postings: u64) -> io::Result<PostingsWriter> {
        let offset_width = uint_width(max_postings);
        let mut offsets = BufWriter::with_capacity(1 << 20, tempfile::tempfile_in(temp_dir)?);
        write_uint(&mut offsets, 0, offset_width)?;
        Ok(PostingsWriter {
            out: FileWriter::create(&dir.join(FILE_NAME), KIND)?,
            offsets,
            id_width: uint_width(max_row),
            offset_width,
            keys: 0,
            postings: 0,
            last_row: None,
        })
    }

    /// Adds a row to the current key's list (ascending within a key).
    pub fn push_row(&mut self, row: u64) -> io::Result<()> {
        if self.last_row.is_some_and(|l| l >= row) {
            return Err(io::Error::other("row ids of one key must be strictly ascending"));
        }
        write_uint(&mut self.out, row, self.id_width)?;
        self.last_row = Some(row);
        self.postings += 1;
        Ok(())
    }

    /// Closes the current key's list (it must not be empty); returns its ordinal.
    pub fn end_key(&mut self) -> io::Result<u64> {
        if self.last_row.is_none() {
            return Err(io::Error::other("empty postings list"));
        }
        write_uint(&mut self.offsets, self.postings, self.offset_width)?;
        self.last_row = None;
        self.keys += 1;
        Ok(self.keys - 1)
    }

    /// Appends the offsets and finishes the file.
    pub fn finish(mut self) -> io::Result<super::FileSummary> {
        let mut side = self.offsets.into_inner().map_err(|e| e.into_error())?;
        self.out.append_file(&mut side)?;
        self.out.finish([self.keys, self.offset_width as u64, self.postings, self.id_width as u64])
    }
}

/// Reads postings lists.
#[derive(Clone, Debug)]
pub struct PostingsReader {
    view: FileView,
    keys: u64,
    offset_width: usize,
    postings: u64,
    id_width: usize,
    offsets_at: usize,
}

/// The row ids of one key: an iterator over a packed slice.
#[derive(Clone, Debug)]
pub struct PostingList<'a> {
    ids: &'a [u8],
    width: usize,
}

impl PostingList<'_> {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.ids.len() / self.width
    }

    /// Hints the CPU to fetch the row ids of the list (at most `max_lines` cache lines).
    #[inline]
    pub fn prefetch(&self, max_lines: usize) {
        crate::mmap::prefetch_range(self.ids, 0..self.ids.len(), max_lines);
    }
}

impl Iterator for PostingList<'_> {
    type Item = u64;
    #[inline]
    fn next(&mut self) -> Option<u64> {
        let v = read_uint(self.ids, 0, self.width)?;
        self.ids = self.ids.get(self.width..).unwrap_or_default();
        Some(v)
    }
}

impl PostingsReader {
    /// Checks the header against the body (constant time).
    pub fn new(view: FileView) -> Result<PostingsReader, FormatError> {
        let [keys, offset_width, postings, id_width] = view.params();
        for (what, w) in [("offset", offset_width), ("row id", id_width)] {
            if w != 4 && w != 8 {
                return Err(view.damaged(format!("{what} width {w} is not 4 or 8")));
            }
        }
        let offsets_at = section_end(&view, 0, postings, id_width, "row ids")?;
        let end = section_end(&view, offsets_at, keys.saturating_add(1), offset_width, "offsets")?;
        if end != view.body().len() as u64 {
            return Err(view.damaged("trailing bytes after the offsets"));
        }
        Ok(PostingsReader {
            view,
            keys,
            offset_width: offset_width as usize,
            postings,
            id_width: id_width as usize,
            offsets_at: offsets_at as usize,
        })
    }

    /// Number of keys.
    pub fn len(&self) -> u64 {
        self.keys
    }

    /// Total row ids over all keys.
    pub fn posting_count(&self) -> u64 {
        self.postings
    }

    /// The rows of key `ordinal`.
    #[inline]
    pub fn rows(&self, ordinal: u64) -> Result<PostingList<'_>, FormatError> {
        let body = self.view.body();
        let offsets = body.get(self.offsets_at..).unwrap_or_default();
        match (
            read_uint(offsets, ordinal, self.offset_width),
            read_uint(offsets, ordinal.wrapping_add(1), self.offset_width),
        ) {
            (Some(start), Some(end)) if ordinal < self.keys && start < end && end <= self.postings => {
                let ids = body.get(start as usize * self.id_width..end as usize * self.id_width).unwrap_or_default();
                Ok(PostingList { ids, width: self.id_width })
            }
            _ => Err(self.view.damaged(format!("no valid postings list for key ordinal {ordinal}"))),
        }
    }

    /// Hints the CPU to fetch the list bounds of key `ordinal` (see [`rows`](Self::rows)).
    #[inline]
    pub fn prefetch(&self, ordinal: u64) {
        let offsets = self.view.body().get(self.offsets_at..).unwrap_or_default();
        if let Ok(i) = usize::try_from(ordinal) {
            crate::mmap::prefetch(offsets, i.saturating_mul(self.offset_width));
            crate::mmap::prefetch(offsets, i.saturating_add(1).saturating_mul(self.offset_width));
        }
    }

    /// Full structure check: offsets ascending, each list non-empty and strictly
    /// ascending, every row id below `total_rows`.
    pub fn verify(&self, total_rows: u64) -> Result<(), FormatError> {
        let offsets = self.view.body().get(self.offsets_at..).unwrap_or_default();
        if read_uint(offsets, 0, self.offset_width) != Some(0)
            || read_uint(offsets, self.keys, self.offset_width) != Some(self.postings)
        {
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
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mmap::Bytes;

    #[test]
    fn lists_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = PostingsWriter::create(dir.path(), dir.path(), 100, 10).unwrap();
        let lists: Vec<Vec<u64>> = vec![vec![1, 5, 9], vec![0], vec![2, 3, 99]];
        for list in &lists {
            for r in list {
                w.push_row(*r).unwrap();
            }
            w.end_key().unwrap();
        }
        assert!(w.end_key().is_err());
        w.finish().unwrap();
        let bytes = Bytes::from_vec(std::fs::read(dir.path().join(FILE_NAME)).unwrap());
        let r = PostingsReader::new(FileView::parse(FILE_NAME, bytes, KIND).unwrap()).unwrap();
        assert_eq!(r.len(), 3);
        for (k, list) in lists.iter().enumerate() {
            assert_eq!(&r.rows(k as u64).unwrap().collect::<Vec<_>>(), list);
        }
        assert!(r.rows(3).is_err());
        r.verify(100).unwrap();
        assert!(r.verify(99).is_err());
    }
}
