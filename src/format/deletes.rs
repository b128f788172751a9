//! `deletes/<segment>.g<G>.rows` (kind `DELR`): the deleted row ids of one segment, as of
//! one generation (docs/FORMAT.md, "Generation-level files"; design §3.2).
//!
//! Body: `row_ids[deleted × width]`, strictly ascending, each `< row_count`.
//! Header parameters: `[row_count, deleted, width, 0]`, `width` 4 when
//! `row_count ≤ 2^32`, else 8.
//!
//! Cumulative: a `remove` that touches a segment writes a new file holding the old ids
//! and the new ones ([`write_union`]). Reads ask whether one row is deleted
//! ([`DeletesReader::contains`], a binary search), walk ascending rows against the list
//! ([`DeleteCursor`]: one binary search, then a merge walk), or split a run of rows into
//! its live sub-runs ([`DeletesReader::live_runs`]).

// Wired up by the generation layer.
#![allow(dead_code)]

use super::{FileSummary, FileView, FileWriter, FormatError, Kind, read_uint, section_end, write_uint};
use std::io;
use std::ops::Range;
use std::path::Path;

/// Kind tag of a row deletion file.
pub(crate) const KIND: Kind = *b"DELR";

/// The id width for a segment of `row_count` rows: 4 when every id `< row_count` fits a
/// u32.
pub(crate) fn id_width(row_count: u64) -> usize {
    if row_count <= 1u64 << 32 { 4 } else { 8 }
}

/// Streams ascending row ids into a row deletion file.
pub(crate) struct DeletesWriter {
    out: FileWriter,
    row_count: u64,
    width: usize,
    count: u64,
    last: Option<u64>,
}

impl DeletesWriter {
    /// Creates `path` for the deletions of a segment of `row_count` rows.
    pub(crate) fn create(path: &Path, row_count: u64) -> io::Result<DeletesWriter> {
        Ok(DeletesWriter {
            out: FileWriter::create(path, KIND)?,
            row_count,
            width: id_width(row_count),
            count: 0,
            last: None,
        })
    }

    /// Appends the next deleted row; rows must arrive strictly ascending and be below the
    /// segment's row count.
    pub(crate) fn push(&mut self, row: u64) -> io::Result<()> {
        if row >= self.row_count {
            return Err(io::Error::other(format!(
                "row {row} deleted in a segment of {} rows: the caller resolved a row of another segment",
                self.row_count
            )));
        }
        if self.last.is_some_and(|last| last >= row) {
            return Err(io::Error::other("deleted rows must be pushed strictly ascending"));
        }
        write_uint(&mut self.out, row, self.width)?;
        self.last = Some(row);
        self.count += 1;
        Ok(())
    }

    /// Rows written so far.
    pub(crate) fn count(&self) -> u64 {
        self.count
    }

    /// Writes the header and footer.
    pub(crate) fn finish(self) -> io::Result<FileSummary> {
        self.out.finish([self.row_count, self.count, self.width as u64, 0])
    }
}

/// Writes to `path` the deletions of a segment of `row_count` rows: every row of `old`
/// (the segment's previous file, if any) and of `added` (ascending; duplicates, and rows
/// already in `old`, are allowed and written once). Returns the file's summary and its
/// number of deleted rows.
pub(crate) fn write_union(
    path: &Path,
    row_count: u64,
    old: Option<&DeletesReader>,
    added: impl IntoIterator<Item = u64>,
) -> Result<(FileSummary, u64), DeletesWriteError> {
    if let Some(old) = old
        && old.row_count() != row_count
    {
        return Err(DeletesWriteError::Format(
            old.view.damaged(format!("holds deletions of {} rows, the segment has {row_count}", old.row_count())),
        ));
    }
    let mut writer = DeletesWriter::create(path, row_count)?;
    let old_at = |i: u64| match old {
        Some(o) if i < o.len() => o.get(i).map(Some),
        _ => Ok(None),
    };
    let mut next_old = 0u64;
    let mut added = added.into_iter().peekable();
    let mut last_added = None;
    loop {
        let o = old_at(next_old)?;
        let a = added.peek().copied();
        if let (Some(a), Some(prev)) = (a, last_added)
            && a < prev
        {
            return Err(io::Error::other("added rows must be ascending").into());
        }
        let (row, from_old) = match (o, a) {
            (None, None) => break,
            (Some(o), Some(a)) if a < o => (a, false),
            (Some(o), _) => (o, true),
            (None, Some(a)) => (a, false),
        };
        if from_old {
            next_old += 1;
        } else {
            added.next();
            last_added = Some(row);
        }
        match writer.last {
            Some(last) if last == row => {}
            Some(last) if last > row => {
                // Added rows are checked ascending above, so only the old file can go back.
                return Err(old.map_or_else(
                    || io::Error::other("rows out of order").into(),
                    |o| o.out_of_order(next_old - 1).into(),
                ));
            }
            _ => writer.push(row)?,
        }
    }
    let count = writer.count();
    Ok((writer.finish()?, count))
}

/// Why [`write_union`] failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DeletesWriteError {
    /// Writing the new file.
    #[error(transparent)]
    Io(#[from] io::Error),
    /// The old file is damaged (an id out of order or out of range).
    #[error(transparent)]
    Format(#[from] FormatError),
}

/// Reads the deleted row ids of a segment.
#[derive(Clone, Debug)]
pub(crate) struct DeletesReader {
    view: FileView,
    row_count: u64,
    count: u64,
    width: usize,
}

impl DeletesReader {
    /// Checks the header against the body and against the segment's `row_count`
    /// (constant time).
    pub(crate) fn new(view: FileView, row_count: u64) -> Result<DeletesReader, FormatError> {
        let [file_rows, count, width, _] = view.params();
        if file_rows != row_count {
            return Err(view.damaged(format!(
                "holds deletions of a segment of {file_rows} rows, but the segment has {row_count} rows: \
                 the file belongs to another segment or generation"
            )));
        }
        if width != 4 && width != 8 {
            return Err(view.damaged(format!("row id width {width} is not 4 or 8")));
        }
        if count > row_count {
            return Err(view.damaged(format!("{count} deleted rows in a segment of {row_count} rows")));
        }
        let end = section_end(&view, 0, count, width, "deleted row ids")?;
        if end != view.body().len() as u64 {
            return Err(view.damaged("trailing bytes after the deleted row ids"));
        }
        Ok(DeletesReader { view, row_count, count, width: width as usize })
    }

    /// Number of deleted rows.
    pub(crate) fn len(&self) -> u64 {
        self.count
    }

    /// Whether no row is deleted.
    pub(crate) fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The segment's row count.
    pub(crate) fn row_count(&self) -> u64 {
        self.row_count
    }

    /// The `i`-th deleted row id (`i < len`); an id out of range is damage.
    #[inline]
    pub(crate) fn get(&self, i: u64) -> Result<u64, FormatError> {
        match read_uint(self.view.body(), i, self.width) {
            Some(row) if i < self.count && row < self.row_count => Ok(row),
            Some(row) if i < self.count => Err(self
                .view
                .damaged(format!("deleted row id {i} is {row}, past the segment's {} rows", self.row_count))),
            _ => Err(self.view.damaged(format!("no deleted row id {i} (the file holds {})", self.count))),
        }
    }

    /// The position of the first deleted id `≥ row` (`len` if none): a binary search.
    fn lower_bound(&self, row: u64) -> Result<u64, FormatError> {
        let (mut lo, mut hi) = (0u64, self.count);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.get(mid)? < row {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        Ok(lo)
    }

    /// Whether `row` is deleted (a binary search).
    pub(crate) fn contains(&self, row: u64) -> Result<bool, FormatError> {
        let at = self.lower_bound(row)?;
        Ok(at < self.count && self.get(at)? == row)
    }

    /// A cursor answering [`DeleteCursor::is_deleted`] for ascending rows: the first
    /// question pays one binary search, later ones walk forward.
    pub(crate) fn cursor(&self) -> DeleteCursor<'_> {
        DeleteCursor { reader: self, at: None }
    }

    /// The live sub-runs of `rows`, ascending: `rows` minus the deleted ids, as maximal
    /// ranges. One binary search finds the first deleted id in `rows`, then the ids are
    /// walked in order.
    pub(crate) fn live_runs(&self, rows: Range<u64>) -> Result<LiveRuns<'_>, FormatError> {
        let at = if rows.is_empty() { self.count } else { self.lower_bound(rows.start)? };
        Ok(LiveRuns { reader: self, next_id: at, rows, failed: false })
    }

    /// Full check: the checksum, then every id ascending and below the row count.
    pub(crate) fn verify(&self) -> Result<(), FormatError> {
        self.view.verify_checksum()?;
        let mut prev = None;
        for i in 0..self.count {
            let row = self.get(i)?;
            if prev.is_some_and(|p| p >= row) {
                return Err(self.view.damaged(format!("deleted row id {i} ({row}) is out of order")));
            }
            prev = Some(row);
        }
        Ok(())
    }

    /// An out-of-order error found by a read.
    fn out_of_order(&self, i: u64) -> FormatError {
        self.view.damaged(format!("deleted row id {i} is out of order"))
    }
}

/// Answers "is this row deleted?" for ascending rows with one binary search and a merge
/// walk (see [`DeletesReader::cursor`]).
#[derive(Clone, Debug)]
pub(crate) struct DeleteCursor<'a> {
    reader: &'a DeletesReader,
    /// Position of the first deleted id `≥` the last row asked, once asked.
    at: Option<(u64, u64)>,
}

impl DeleteCursor<'_> {
    /// Whether `row` is deleted. Rows must be asked in ascending order (asking a smaller
    /// row than the previous one restarts with a binary search).
    #[inline]
    pub(crate) fn is_deleted(&mut self, row: u64) -> Result<bool, FormatError> {
        let reader = self.reader;
        let mut at = match self.at {
            Some((last_row, at)) if last_row <= row => at,
            _ => reader.lower_bound(row)?,
        };
        while at < reader.count {
            let id = reader.get(at)?;
            if id >= row {
                self.at = Some((row, at));
                return Ok(id == row);
            }
            at += 1;
        }
        self.at = Some((row, at));
        Ok(false)
    }
}

/// The live sub-runs of a run of rows (see [`DeletesReader::live_runs`]). Yields
/// non-empty ascending ranges; a damaged id is an error, after which it stops.
#[derive(Clone, Debug)]
pub(crate) struct LiveRuns<'a> {
    reader: &'a DeletesReader,
    next_id: u64,
    rows: Range<u64>,
    failed: bool,
}

impl Iterator for LiveRuns<'_> {
    type Item = Result<Range<u64>, FormatError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.failed && !self.rows.is_empty() {
            let deleted = if self.next_id < self.reader.count {
                match self.reader.get(self.next_id) {
                    Ok(id) => Some(id),
                    Err(e) => {
                        self.failed = true;
                        return Some(Err(e));
                    }
                }
            } else {
                None
            };
            match deleted {
                Some(id) if id < self.rows.start => {
                    // Only damage puts an id below the start: the ids are ascending and
                    // the walk began at the first id ≥ the run's start.
                    self.failed = true;
                    return Some(Err(self.reader.out_of_order(self.next_id)));
                }
                Some(id) if id < self.rows.end => {
                    self.next_id += 1;
                    let live = self.rows.start..id;
                    self.rows.start = id + 1;
                    if !live.is_empty() {
                        return Some(Ok(live));
                    }
                }
                _ => {
                    let live = self.rows.clone();
                    self.rows.start = self.rows.end;
                    return Some(Ok(live));
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::framed_bytes;
    use crate::mmap::Bytes;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    const NAME: &str = "deletes/root.g00000004.rows";

    fn write(dir: &Path, row_count: u64, rows: &[u64]) -> Vec<u8> {
        let path = dir.join("d.rows");
        let mut w = DeletesWriter::create(&path, row_count).unwrap();
        for &r in rows {
            w.push(r).unwrap();
        }
        w.finish().unwrap();
        std::fs::read(&path).unwrap()
    }

    fn open(bytes: Vec<u8>, row_count: u64) -> Result<DeletesReader, FormatError> {
        DeletesReader::new(FileView::parse(NAME, Bytes::from_vec(bytes), KIND)?, row_count)
    }

    /// The live runs of `rows` as the model sees them: maximal ranges of rows not in
    /// `deleted`.
    fn model_runs(deleted: &BTreeSet<u64>, rows: Range<u64>) -> Vec<Range<u64>> {
        let mut runs: Vec<Range<u64>> = Vec::new();
        for r in rows.filter(|r| !deleted.contains(r)) {
            match runs.last_mut() {
                Some(last) if last.end == r => last.end = r + 1,
                _ => runs.push(r..r + 1),
            }
        }
        runs
    }

    #[test]
    fn round_trip_and_queries() {
        let dir = tempfile::tempdir().unwrap();
        let reader = open(write(dir.path(), 20, &[0, 3, 4, 5, 19]), 20).unwrap();
        reader.verify().unwrap();
        assert_eq!(reader.len(), 5);
        let deleted: Vec<u64> = (0..20).filter(|&r| reader.contains(r).unwrap()).collect();
        assert_eq!(deleted, [0, 3, 4, 5, 19]);
        assert!(!reader.contains(20).unwrap());
        let runs: Vec<_> = reader.live_runs(0..20).unwrap().map(Result::unwrap).collect();
        assert_eq!(runs, [1..3, 6..19]);
        let runs: Vec<_> = reader.live_runs(4..7).unwrap().map(Result::unwrap).collect();
        assert_eq!(runs, vec![6..7]);
        assert_eq!(reader.live_runs(3..6).unwrap().count(), 0);
        let mut cursor = reader.cursor();
        let walked: Vec<u64> = (0..25).filter(|&r| cursor.is_deleted(r).unwrap()).collect();
        assert_eq!(walked, [0, 3, 4, 5, 19]);
        // Asking a smaller row restarts.
        assert!(cursor.is_deleted(3).unwrap());

        let empty = open(write(dir.path(), 0, &[]), 0).unwrap();
        empty.verify().unwrap();
        assert!(empty.is_empty() && !empty.contains(0).unwrap());
        assert_eq!(empty.live_runs(0..0).unwrap().count(), 0);
    }

    #[test]
    fn writer_refuses_bad_rows() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = DeletesWriter::create(&dir.path().join("d"), 10).unwrap();
        assert!(w.push(10).is_err(), "out of range");
        w.push(4).unwrap();
        assert!(w.push(4).is_err(), "duplicate");
        assert!(w.push(3).is_err(), "descending");
        assert_eq!(id_width(1 << 32), 4);
        assert_eq!(id_width((1 << 32) + 1), 8);
    }

    #[test]
    fn union_keeps_old_and_new() {
        let dir = tempfile::tempdir().unwrap();
        let old = open(write(dir.path(), 100, &[2, 50, 99]), 100).unwrap();
        let path = dir.path().join("new.rows");
        let (_, count) = write_union(&path, 100, Some(&old), [1, 2, 2, 60]).unwrap();
        assert_eq!(count, 5);
        let new = open(std::fs::read(&path).unwrap(), 100).unwrap();
        new.verify().unwrap();
        let ids: Vec<u64> = (0..new.len()).map(|i| new.get(i).unwrap()).collect();
        assert_eq!(ids, [1, 2, 50, 60, 99]);
        assert!(write_union(&path, 100, Some(&old), [5, 4]).is_err(), "unsorted added rows");
        assert!(write_union(&path, 100, None, [100]).is_err(), "row out of range");
        assert!(write_union(&path, 101, Some(&old), [1]).is_err(), "old file of another row count");
    }

    #[test]
    fn damage_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let good = write(dir.path(), 50, &[1, 7, 30]);
        let named = |e: FormatError| assert!(e.to_string().starts_with(NAME), "{e}");

        // Truncation, bad magic, another segment's row count.
        for len in [0, 10, good.len() - 1] {
            named(open(good[..len].to_vec(), 50).unwrap_err());
        }
        let mut bad = good.clone();
        bad[0] ^= 1;
        named(open(bad, 50).unwrap_err());
        named(open(good.clone(), 51).unwrap_err());
        // Every flipped byte is caught by open or verify.
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x10;
            match open(bad, 50) {
                Err(e) => named(e),
                Ok(r) => named(r.verify().unwrap_err()),
            }
        }
        // Valid checksums over bad contents: unsorted, duplicate, out of range, a bad width.
        let body = |ids: &[u32]| ids.iter().flat_map(|i| i.to_le_bytes()).collect::<Vec<u8>>();
        for ids in [&[7u32, 1, 30][..], &[1, 7, 7], &[1, 7, 50]] {
            let r = open(framed_bytes(KIND, [50, 3, 4, 0], &body(ids)), 50).unwrap();
            named(r.verify().unwrap_err());
            // Reads never panic; a row they find out of place is an error or a plain answer.
            for row in 0..60 {
                let _ = r.contains(row);
            }
            for start in 0..55 {
                match r.live_runs(start..start + 10) {
                    Err(e) => named(e),
                    Ok(runs) => {
                        for run in runs {
                            if let Err(e) = run {
                                named(e);
                            }
                        }
                    }
                }
            }
            let mut cursor = r.cursor();
            for row in 0..60 {
                let _ = cursor.is_deleted(row);
            }
        }
        let bad_width = framed_bytes(KIND, [50, 3, 5, 0], &[0; 15]);
        named(open(bad_width, 50).unwrap_err());
        let too_many = framed_bytes(KIND, [2, 3, 4, 0], &body(&[0, 1, 1]));
        named(open(too_many, 2).unwrap_err());
        let out_of_range = open(framed_bytes(KIND, [50, 1, 4, 0], &body(&[50])), 50).unwrap();
        named(out_of_range.contains(50).unwrap_err());
    }

    proptest! {
        #[test]
        fn reads_match_a_set(
            row_count in 1u64..300,
            picks in proptest::collection::vec(any::<u64>(), 0..80),
            ranges in proptest::collection::vec((any::<u64>(), 0u64..40), 1..10),
        ) {
            let deleted: BTreeSet<u64> = picks.iter().map(|p| p % row_count).collect();
            let ids: Vec<u64> = deleted.iter().copied().collect();
            let dir = tempfile::tempdir().unwrap();
            let reader = open(write(dir.path(), row_count, &ids), row_count).unwrap();
            reader.verify().unwrap();
            let mut cursor = reader.cursor();
            for row in 0..row_count + 2 {
                prop_assert_eq!(reader.contains(row).unwrap(), deleted.contains(&row));
                prop_assert_eq!(cursor.is_deleted(row).unwrap(), deleted.contains(&row));
            }
            for (start, len) in ranges {
                let start = start % row_count;
                let rows = start..(start + len).min(row_count);
                let got: Vec<_> = reader.live_runs(rows.clone()).unwrap().map(Result::unwrap).collect();
                prop_assert_eq!(got, model_runs(&deleted, rows));
            }
        }
    }
}
