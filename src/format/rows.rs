//! `records.rows`: one fixed-width row per record, indexed by row id.
//!
//! Format version 1 only (version 2 splits a record into `records.hot` and
//! `records.store`); version 1 indexes are still read in place.
//!
//! Rows are sorted by e-mail key (then source, then document id), so the records of
//! one e-mail are a contiguous run; records without an e-mail follow, sorted by
//! username key. A `check` reads only rows: everything it needs (source, presence
//! bits, severity) is here, and the variable-width assets live in column files.
//!
//! Header parameters: `[row_count, row_width, 0, 0]`.

#[cfg(test)]
use super::FileWriter;
use super::{FileView, FormatError, Kind};
use crate::asset::AssetSet;
use crate::date::Date;
#[cfg(test)]
use std::io::{self, Write};
#[cfg(test)]
use std::path::Path;

/// Kind tag of `records.rows`.
pub const KIND: Kind = *b"ROWS";
/// File name inside the index directory.
pub const FILE_NAME: &str = "records.rows";
/// Width of one row in bytes.
pub const ROW_WIDTH: usize = 32;

// Row field offsets (docs/FORMAT.md, "records.rows").
const OFF_DOCUMENT_ID: usize = 0;
const OFF_SOURCE_ID: usize = 16;
const OFF_PUBLISH_DATE: usize = 20;
const OFF_ASSETS: usize = 24;
const OFF_SEVERITY: usize = 26;

/// Renders a document id as a UUID string (lowercase hex, 8-4-4-4-12).
pub fn document_id_string(id: &[u8; 16]) -> String {
    let hex = crate::keymode::to_hex(id);
    format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])
}

/// Position of a record in `records.rows`.
pub type RowId = u64;

/// The fixed-width part of one record.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct Row {
    /// Stable 128-bit record id (rendered as a UUID).
    pub document_id: [u8; 16],
    /// The source (breach) the record belongs to.
    pub source_id: u32,
    /// When the record was published (added).
    pub publish_date: Date,
    /// Assets the record holds (whether or not they are stored).
    pub assets: AssetSet,
    /// Severity score (2, 5, 20 or 25).
    pub severity: u8,
}

impl Row {
    /// Encodes the row.
    pub fn encode(&self) -> [u8; ROW_WIDTH] {
        let mut b = [0u8; ROW_WIDTH];
        b[OFF_DOCUMENT_ID..OFF_DOCUMENT_ID + 16].copy_from_slice(&self.document_id);
        b[OFF_SOURCE_ID..OFF_SOURCE_ID + 4].copy_from_slice(&self.source_id.to_le_bytes());
        b[OFF_PUBLISH_DATE..OFF_PUBLISH_DATE + 4].copy_from_slice(&self.publish_date.days().to_le_bytes());
        b[OFF_ASSETS..OFF_ASSETS + 2].copy_from_slice(&self.assets.bits().to_le_bytes());
        b[OFF_SEVERITY] = self.severity;
        b
    }

    /// Decodes a row from its fixed-width encoding.
    pub fn decode(b: &[u8; ROW_WIDTH]) -> Row {
        let u32_at = |o: usize| u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
        let mut document_id = [0u8; 16];
        document_id.copy_from_slice(&b[OFF_DOCUMENT_ID..OFF_DOCUMENT_ID + 16]);
        Row {
            document_id,
            source_id: u32_at(OFF_SOURCE_ID),
            publish_date: Date::from_days(u32_at(OFF_PUBLISH_DATE) as i32),
            assets: AssetSet::from_bits_truncate(u16::from_le_bytes([b[OFF_ASSETS], b[OFF_ASSETS + 1]])),
            severity: b[OFF_SEVERITY],
        }
    }
}

/// Streams rows into `records.rows` (builds write version 2; this writer makes version 1
/// files for the reader's tests).
#[cfg(test)]
pub struct RowsWriter {
    out: FileWriter,
    count: u64,
}

#[cfg(test)]
impl RowsWriter {
    /// Creates the file in `dir`.
    pub fn create(dir: &Path) -> io::Result<RowsWriter> {
        Ok(RowsWriter { out: FileWriter::create(&dir.join(FILE_NAME), KIND)?, count: 0 })
    }

    /// Appends a row; returns its id.
    pub fn push(&mut self, row: &Row) -> io::Result<RowId> {
        self.out.write_all(&row.encode())?;
        self.count += 1;
        Ok(self.count - 1)
    }

    /// Finishes the file.
    pub fn finish(self) -> io::Result<super::FileSummary> {
        self.out.finish([self.count, ROW_WIDTH as u64, 0, 0])
    }
}

/// Reads rows by id.
#[derive(Clone, Debug)]
pub struct RowsReader {
    view: FileView,
    count: u64,
}

impl RowsReader {
    /// Checks the header against the body length (constant time).
    pub fn new(view: FileView) -> Result<RowsReader, FormatError> {
        let [count, width, _, _] = view.params();
        if width != ROW_WIDTH as u64 {
            return Err(view.damaged(format!("row width {width}, expected {ROW_WIDTH}")));
        }
        if count.checked_mul(width) != Some(view.body().len() as u64) {
            return Err(view.damaged(format!("{count} rows do not fill a body of {} bytes", view.body().len())));
        }
        Ok(RowsReader { view, count })
    }

    /// Number of rows.
    pub fn len(&self) -> u64 {
        self.count
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The row with id `id`, or `None` past the end.
    #[inline]
    pub fn get(&self, id: RowId) -> Option<Row> {
        let start = usize::try_from(id).ok()?.checked_mul(ROW_WIDTH)?;
        let bytes = self.view.body().get(start..start + ROW_WIDTH)?;
        Some(Row::decode(bytes.try_into().ok()?))
    }

    /// Hints the CPU to fetch the rows `ids` (at most `max_lines` cache lines).
    #[inline]
    pub fn prefetch(&self, ids: std::ops::Range<RowId>, max_lines: usize) {
        let at = |id: RowId| usize::try_from(id).unwrap_or(usize::MAX).saturating_mul(ROW_WIDTH);
        crate::mmap::prefetch_range(self.view.body(), at(ids.start)..at(ids.end), max_lines);
    }

    /// The file view (for verification).
    pub fn view(&self) -> &FileView {
        &self.view
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mmap::Bytes;

    #[test]
    fn rows_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = RowsWriter::create(dir.path()).unwrap();
        let rows: Vec<Row> = (0..5u32)
            .map(|i| Row {
                document_id: [i as u8; 16],
                source_id: i * 7,
                publish_date: Date::from_days(19_000 + i as i32),
                assets: AssetSet::from_bits_truncate(0b101 << i),
                severity: 20,
            })
            .collect();
        for (i, row) in rows.iter().enumerate() {
            assert_eq!(w.push(row).unwrap(), i as u64);
        }
        w.finish().unwrap();
        let bytes = Bytes::from_vec(std::fs::read(dir.path().join(FILE_NAME)).unwrap());
        let reader = RowsReader::new(FileView::parse(FILE_NAME, bytes, KIND).unwrap()).unwrap();
        assert_eq!(reader.len(), 5);
        for (i, row) in rows.iter().enumerate() {
            assert_eq!(reader.get(i as u64).as_ref(), Some(row));
        }
        assert_eq!(reader.get(5), None);
        assert_eq!(reader.get(u64::MAX), None);
    }
}
