//! `email.ranges`: for each e-mail key ordinal, the run of rows holding its records.
//!
//! Rows are sorted by e-mail key, so key `k` owns rows `starts[k] .. starts[k + 1]`.
//! Body: `starts[(key_count + 1) × width]`, strictly ascending, `starts[0] = 0`,
//! `starts[key_count]` = number of rows that have an e-mail.
//! Header parameters: `[key_count, width, email_rows, 0]`.

use super::{FileView, FileWriter, FormatError, Kind, read_uint, section_end, write_uint};
use std::io;
use std::path::Path;

/// Kind tag of `email.ranges`.
pub const KIND: Kind = *b"ERNG";
/// File name inside the index directory.
pub const FILE_NAME: &str = "email.ranges";

/// Streams row starts into `email.ranges`.
pub struct RangesWriter {
    out: FileWriter,
    width: usize,
    count: u64,
    last: Option<u64>,
}

impl RangesWriter {
    /// Creates the file; `width` (4 or 8) must hold the largest row id.
    pub fn create(dir: &Path, width: usize) -> io::Result<RangesWriter> {
        Ok(RangesWriter { out: FileWriter::create(&dir.join(FILE_NAME), KIND)?, width, count: 0, last: None })
    }

    /// Starts the run of the next key at row `start`.
    pub fn push_start(&mut self, start: u64) -> io::Result<()> {
        if self.last.is_some_and(|l| l >= start) {
            return Err(io::Error::other("row starts must be strictly ascending"));
        }
        write_uint(&mut self.out, start, self.width)?;
        self.last = Some(start);
        self.count += 1;
        Ok(())
    }

    /// Closes the last run at `email_rows` and finishes the file.
    pub fn finish(mut self, email_rows: u64) -> io::Result<super::FileSummary> {
        write_uint(&mut self.out, email_rows, self.width)?;
        self.out.finish([self.count, self.width as u64, email_rows, 0])
    }
}

/// Reads row runs by key ordinal.
#[derive(Clone, Debug)]
pub struct RangesReader {
    view: FileView,
    count: u64,
    width: usize,
    email_rows: u64,
}

impl RangesReader {
    /// Checks the header against the body (constant time).
    pub fn new(view: FileView) -> Result<RangesReader, FormatError> {
        let [count, width, email_rows, _] = view.params();
        if width != 4 && width != 8 {
            return Err(view.damaged(format!("entry width {width} is not 4 or 8")));
        }
        let end = section_end(&view, 0, count.saturating_add(1), width, "row starts")?;
        if end != view.body().len() as u64 {
            return Err(view.damaged("trailing bytes after the row starts"));
        }
        Ok(RangesReader { view, count, width: width as usize, email_rows })
    }

    /// Number of keys.
    pub fn len(&self) -> u64 {
        self.count
    }

    /// Rows that have an e-mail (the end of the last run).
    pub fn email_rows(&self) -> u64 {
        self.email_rows
    }

    /// The rows of key `ordinal`; damage (an ordinal out of range, runs out of order)
    /// is an error.
    #[inline]
    pub fn rows(&self, ordinal: u64) -> Result<std::ops::Range<u64>, FormatError> {
        let body = self.view.body();
        match (read_uint(body, ordinal, self.width), read_uint(body, ordinal.wrapping_add(1), self.width)) {
            (Some(start), Some(end)) if ordinal < self.count && start < end && end <= self.email_rows => Ok(start..end),
            _ => Err(self.view.damaged(format!("no valid row run for key ordinal {ordinal}"))),
        }
    }

    /// The key ordinal whose run holds `row` (a row below [`email_rows`](Self::email_rows)):
    /// a binary search of the row starts. Damage (starts out of order, a row outside
    /// every run) is an error.
    pub fn ordinal_of_row(&self, row: u64) -> Result<u64, FormatError> {
        let body = self.view.body();
        let start = |k: u64| read_uint(body, k, self.width).ok_or_else(|| self.view.damaged("truncated row starts"));
        if row >= self.email_rows {
            return Err(self.view.damaged(format!("row {row} is past the {} e-mail rows", self.email_rows)));
        }
        // The last k in [0, count) with starts[k] <= row.
        let (mut lo, mut hi) = (0u64, self.count);
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if start(mid)? <= row {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        match self.rows(lo) {
            Ok(run) if run.contains(&row) => Ok(lo),
            _ => Err(self.view.damaged(format!("no key run holds row {row}"))),
        }
    }

    /// Hints the CPU to fetch the run bounds of key `ordinal` (see [`rows`](Self::rows)).
    #[inline]
    pub fn prefetch(&self, ordinal: u64) {
        if let Ok(i) = usize::try_from(ordinal) {
            let body = self.view.body();
            crate::mmap::prefetch(body, i.saturating_mul(self.width));
            crate::mmap::prefetch(body, i.saturating_add(1).saturating_mul(self.width));
        }
    }

    /// Full structure check against the row count of `records.rows`.
    pub fn verify(&self, total_rows: u64) -> Result<(), FormatError> {
        if self.email_rows > total_rows {
            return Err(self.view.damaged(format!("{} e-mail rows but only {total_rows} rows", self.email_rows)));
        }
        let body = self.view.body();
        let mut prev = None;
        for i in 0..=self.count {
            let v = read_uint(body, i, self.width).ok_or_else(|| self.view.damaged("truncated"))?;
            let ok = match prev {
                None => v == 0,
                Some(p) => v > p,
            };
            if !ok {
                return Err(self.view.damaged(format!("row start {i} ({v}) is out of order")));
            }
            prev = Some(v);
        }
        if prev != Some(self.email_rows) {
            return Err(self.view.damaged("the last run does not end at the e-mail row count"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mmap::Bytes;

    #[test]
    fn runs_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = RangesWriter::create(dir.path(), 4).unwrap();
        for s in [0, 3, 4, 10] {
            w.push_start(s).unwrap();
        }
        assert!(w.push_start(10).is_err());
        w.finish(12).unwrap();
        let bytes = Bytes::from_vec(std::fs::read(dir.path().join(FILE_NAME)).unwrap());
        let r = RangesReader::new(FileView::parse(FILE_NAME, bytes, KIND).unwrap()).unwrap();
        assert_eq!(r.len(), 4);
        assert_eq!(r.rows(0).unwrap(), 0..3);
        assert_eq!(r.rows(3).unwrap(), 10..12);
        assert!(r.rows(4).is_err());
        assert!(r.rows(u64::MAX).is_err());
        r.verify(12).unwrap();
        assert!(r.verify(11).is_err());
        // Every row finds the run that holds it; rows past the runs are errors.
        let want = [0, 0, 0, 1, 2, 2, 2, 2, 2, 2, 3, 3];
        for (row, ordinal) in want.iter().enumerate() {
            assert_eq!(r.ordinal_of_row(row as u64).unwrap(), *ordinal, "row {row}");
            assert!(r.rows(*ordinal).unwrap().contains(&(row as u64)));
        }
        assert!(r.ordinal_of_row(12).is_err());
        assert!(r.ordinal_of_row(u64::MAX).is_err());
    }
}
