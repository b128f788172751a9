//! `email.ranges`: for each e-mail key ordinal, the run of rows holding its records.
//!
//! Rows are sorted by e-mail key, so key `k` owns rows `starts[k] .. starts[k + 1]`:
//! `key_count + 1` strictly ascending starts, `starts[0] = 0`, `starts[key_count]` =
//! number of rows that have an e-mail. Two layouts (docs/FORMAT.md §3.4), told apart by
//! the `width` header parameter: an Elias-Fano sequence of the starts up to
//! `email_rows` (`width` 0, what builds write: about 3 bits per key instead of 32), or
//! the flat layout of earlier builds, `starts[(key_count + 1) × width]` (`width` 4 or 8).
//! Header parameters: `[key_count, width, email_rows, 0]`.

use super::elias_fano::{EliasFano, SpilledValues};
use super::{FileView, FileWriter, FormatError, Kind, read_uint, section_end};
use crate::mmap::Bytes;
use std::io;
use std::path::Path;

/// Kind tag of `email.ranges`.
pub const KIND: Kind = *b"ERNG";
/// File name inside the index directory.
pub const FILE_NAME: &str = "email.ranges";

/// The `width` header parameter of the Elias-Fano layout.
const ELIAS_FANO: u64 = 0;

/// Streams row starts into `email.ranges`: the starts are spilled to a temporary file
/// (the key count is only known at the end) and encoded by [`finish`](Self::finish).
pub struct RangesWriter {
    out: FileWriter,
    starts: SpilledValues,
    last: Option<u64>,
}

impl RangesWriter {
    /// Creates the file in `dir`; `temp_dir` receives the spilled starts.
    pub fn create(dir: &Path, temp_dir: &Path) -> io::Result<RangesWriter> {
        Ok(RangesWriter {
            out: FileWriter::create(&dir.join(FILE_NAME), KIND)?,
            starts: SpilledValues::new(temp_dir)?,
            last: None,
        })
    }

    /// Starts the run of the next key at row `start`.
    pub fn push_start(&mut self, start: u64) -> io::Result<()> {
        if self.last.is_some_and(|l| l >= start) {
            return Err(io::Error::other("row starts must be strictly ascending"));
        }
        self.starts.push(start)?;
        self.last = Some(start);
        Ok(())
    }

    /// Closes the last run at `email_rows` and finishes the file.
    pub fn finish(mut self, email_rows: u64) -> io::Result<super::FileSummary> {
        if self.last.is_some_and(|l| l >= email_rows) {
            return Err(io::Error::other("the last run must end after its start"));
        }
        let count = self.starts.len();
        self.starts.encode(email_rows, email_rows, &mut self.out)?;
        self.out.finish([count, ELIAS_FANO, email_rows, 0])
    }
}

/// How the starts are stored.
#[derive(Clone, Debug)]
enum Starts {
    /// Flat little-endian integers of `width` bytes.
    Flat { width: usize },
    /// An Elias-Fano sequence.
    EliasFano(EliasFano<Bytes>),
}

/// Reads row runs by key ordinal.
#[derive(Clone, Debug)]
pub struct RangesReader {
    view: FileView,
    count: u64,
    starts: Starts,
    email_rows: u64,
}

impl RangesReader {
    /// Checks the header against the body (constant time).
    pub fn new(view: FileView) -> Result<RangesReader, FormatError> {
        let [count, width, email_rows, _] = view.params();
        let starts = match width {
            ELIAS_FANO => {
                let n = count.checked_add(1).ok_or_else(|| view.damaged(format!("{count} keys is too many")))?;
                let seq = EliasFano::new(view.body().clone(), n, email_rows)
                    .map_err(|e| view.damaged(format!("row starts: {e}")))?;
                Starts::EliasFano(seq)
            }
            4 | 8 => {
                let end = section_end(&view, 0, count.saturating_add(1), width, "row starts")?;
                if end != view.body().len() as u64 {
                    return Err(view.damaged("trailing bytes after the row starts"));
                }
                Starts::Flat { width: width as usize }
            }
            _ => return Err(view.damaged(format!("entry width {width} is not 0 (Elias-Fano), 4 or 8"))),
        };
        Ok(RangesReader { view, count, starts, email_rows })
    }

    /// Number of keys.
    pub fn len(&self) -> u64 {
        self.count
    }

    /// Rows that have an e-mail (the end of the last run).
    pub fn email_rows(&self) -> u64 {
        self.email_rows
    }

    /// Whether the starts are an Elias-Fano sequence (what builds write) rather than
    /// flat integers.
    #[cfg(test)]
    pub fn is_elias_fano(&self) -> bool {
        matches!(self.starts, Starts::EliasFano(_))
    }

    /// The rows of key `ordinal`; damage (an ordinal out of range, runs out of order)
    /// is an error.
    #[inline]
    pub fn rows(&self, ordinal: u64) -> Result<std::ops::Range<u64>, FormatError> {
        let bounds = match &self.starts {
            Starts::Flat { width } => {
                let body = self.view.body();
                read_uint(body, ordinal, *width).zip(read_uint(body, ordinal.wrapping_add(1), *width))
            }
            Starts::EliasFano(seq) => seq.get_pair(ordinal).ok(),
        };
        match bounds {
            Some((start, end)) if ordinal < self.count && start < end && end <= self.email_rows => Ok(start..end),
            _ => Err(self.view.damaged(format!("no valid row run for key ordinal {ordinal}"))),
        }
    }

    /// The key ordinal whose run holds `row` (a row below [`email_rows`](Self::email_rows)):
    /// the predecessor of `row` among the starts. Damage (starts out of order, a row
    /// outside every run) is an error.
    pub fn ordinal_of_row(&self, row: u64) -> Result<u64, FormatError> {
        if row >= self.email_rows {
            return Err(self.view.damaged(format!("row {row} is past the {} e-mail rows", self.email_rows)));
        }
        let ordinal = match &self.starts {
            Starts::Flat { width } => {
                let body = self.view.body();
                let start =
                    |k: u64| read_uint(body, k, *width).ok_or_else(|| self.view.damaged("truncated row starts"));
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
                lo
            }
            Starts::EliasFano(seq) => {
                seq.predecessor(row).map_err(|e| self.view.damaged(format!("row starts: {e}")))?.unwrap_or(u64::MAX)
            }
        };
        match self.rows(ordinal) {
            Ok(run) if run.contains(&row) => Ok(ordinal),
            _ => Err(self.view.damaged(format!("no key run holds row {row}"))),
        }
    }

    /// Hints the CPU to fetch the run bounds of key `ordinal` (see [`rows`](Self::rows)).
    #[inline]
    pub fn prefetch(&self, ordinal: u64) {
        match &self.starts {
            Starts::Flat { width } => {
                if let Ok(i) = usize::try_from(ordinal) {
                    let body = self.view.body();
                    crate::mmap::prefetch(body, i.saturating_mul(*width));
                    crate::mmap::prefetch(body, i.saturating_add(1).saturating_mul(*width));
                }
            }
            Starts::EliasFano(seq) => seq.prefetch(ordinal),
        }
    }

    /// The step after [`prefetch`](Self::prefetch) in a batch: with the Elias-Fano
    /// layout, fetches the high bits that [`rows`](Self::rows) scans (their place is
    /// in the line `prefetch` fetched); the flat layout has nothing more to fetch.
    #[inline]
    pub fn prefetch_more(&self, ordinal: u64) {
        if let Starts::EliasFano(seq) = &self.starts {
            seq.prefetch_high(ordinal);
        }
    }

    /// Full structure check against the row count of `records.rows`.
    pub fn verify(&self, total_rows: u64) -> Result<(), FormatError> {
        if self.email_rows > total_rows {
            return Err(self.view.damaged(format!("{} e-mail rows but only {total_rows} rows", self.email_rows)));
        }
        let first_and_last = match &self.starts {
            Starts::Flat { width } => {
                let body = self.view.body();
                let mut prev = None;
                for i in 0..=self.count {
                    let v = read_uint(body, i, *width).ok_or_else(|| self.view.damaged("truncated"))?;
                    if prev.is_some_and(|p| v <= p) {
                        return Err(self.view.damaged(format!("row start {i} ({v}) is out of order")));
                    }
                    prev = Some(v);
                }
                read_uint(body, 0, *width).zip(prev)
            }
            Starts::EliasFano(seq) => {
                seq.verify(true).map_err(|e| self.view.damaged(format!("row starts: {e}")))?;
                seq.get(0).ok().zip(seq.get(self.count).ok())
            }
        };
        match first_and_last {
            Some((0, last)) if last == self.email_rows => Ok(()),
            Some((first, _)) if first != 0 => Err(self.view.damaged(format!("row start 0 ({first}) is not 0"))),
            _ => Err(self.view.damaged("the last run does not end at the e-mail row count")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::framed_bytes;
    use proptest::prelude::*;

    /// The readers of one list of run starts in every layout: what the writer makes
    /// (Elias-Fano), then flat 4-byte and 8-byte starts as earlier builds wrote them.
    fn readers(starts: &[u64], email_rows: u64) -> Vec<RangesReader> {
        let dir = tempfile::tempdir().unwrap();
        let mut w = RangesWriter::create(dir.path(), dir.path()).unwrap();
        for s in starts {
            w.push_start(*s).unwrap();
        }
        w.finish(email_rows).unwrap();
        let written = std::fs::read(dir.path().join(FILE_NAME)).unwrap();
        let count = starts.len() as u64;
        let mut files = vec![written];
        for width in [4usize, 8] {
            let mut body = Vec::new();
            for v in starts.iter().chain([&email_rows]) {
                super::super::write_uint(&mut body, *v, width).unwrap();
            }
            files.push(framed_bytes(KIND, [count, width as u64, email_rows, 0], &body));
        }
        files
            .into_iter()
            .map(|f| RangesReader::new(FileView::parse(FILE_NAME, Bytes::from_vec(f), KIND).unwrap()).unwrap())
            .collect()
    }

    #[test]
    fn runs_round_trip() {
        let all = readers(&[0, 3, 4, 10], 12);
        assert!(all[0].is_elias_fano() && !all[1].is_elias_fano());
        for r in all {
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
        let dir = tempfile::tempdir().unwrap();
        let mut w = RangesWriter::create(dir.path(), dir.path()).unwrap();
        w.push_start(0).unwrap();
        assert!(w.push_start(0).is_err());
        assert!(w.finish(0).is_err());
    }

    #[test]
    fn an_index_without_e_mails_has_no_runs() {
        for r in readers(&[], 0) {
            assert_eq!(r.len(), 0);
            assert!(r.rows(0).is_err());
            assert!(r.ordinal_of_row(0).is_err());
            r.verify(5).unwrap();
        }
    }

    #[test]
    fn a_damaged_header_or_body_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = RangesWriter::create(dir.path(), dir.path()).unwrap();
        for s in [0, 3, 4, 10] {
            w.push_start(s).unwrap();
        }
        w.finish(12).unwrap();
        let good =
            FileView::parse(FILE_NAME, Bytes::from_vec(std::fs::read(dir.path().join(FILE_NAME)).unwrap()), KIND)
                .unwrap();
        let body = good.body().to_vec();
        let open = |params: [u64; 4], body: &[u8]| {
            RangesReader::new(FileView::parse(FILE_NAME, Bytes::from_vec(framed_bytes(KIND, params, body)), KIND)?)
        };
        assert!(open([4, 0, 12, 0], &body).is_ok());
        for params in [[500, 0, 12, 0], [4, 0, 1 << 40, 0], [4, 1, 12, 0], [u64::MAX, 0, 12, 0]] {
            let err = open(params, &body).unwrap_err().to_string();
            assert!(err.starts_with("email.ranges: damaged"), "{err}");
        }
        assert!(open([4, 0, 12, 0], &body[..body.len() - 8]).is_err());
        // A start moved out of order passes the constant-time open and fails verify:
        // starts 0, 3, 4, 10, 12 have 1 low bit and high parts 0, 1, 2, 5, 6, so the
        // ones of the high bits are at 0, 2, 4, 8, 10; moving the third one from bit 4
        // to bit 3 makes the third start 2.
        let mut bad = body.clone();
        bad[16] ^= 0b1_1000;
        let r = open([4, 0, 12, 0], &bad).unwrap();
        assert_eq!(r.rows(1).ok(), None, "run 1 would be 3..2");
        let err = r.verify(12).unwrap_err().to_string();
        assert!(err.contains("email.ranges: damaged: row starts: value 2 (2) is out of order"), "{err}");
    }

    proptest! {
        /// Whatever the runs, every layout answers like the list of starts.
        #[test]
        fn layouts_answer_like_the_starts(lengths in proptest::collection::vec(1u64..40, 0..300), tail in 0u64..3) {
            let mut starts = Vec::new();
            let mut at = 0;
            for len in &lengths {
                starts.push(at);
                at += len;
            }
            let email_rows = at;
            for r in readers(&starts, email_rows) {
                prop_assert_eq!(r.len(), starts.len() as u64);
                prop_assert!(r.verify(email_rows + tail).is_ok());
                for (k, s) in starts.iter().enumerate() {
                    let end = starts.get(k + 1).copied().unwrap_or(email_rows);
                    prop_assert_eq!(r.rows(k as u64).unwrap(), *s..end);
                    prop_assert_eq!(r.ordinal_of_row(*s).unwrap(), k as u64);
                    prop_assert_eq!(r.ordinal_of_row(end - 1).unwrap(), k as u64);
                }
                prop_assert!(r.ordinal_of_row(email_rows).is_err());
            }
        }
    }
}
