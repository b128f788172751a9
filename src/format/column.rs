//! Format version 1 only (version 2 keeps the values in `records.store`); version 1
//! indexes are still read in place.
//!
//! `asset.<name>.col`: one variable-width string column per stored asset, indexed by
//! row id. An absent value is an empty slot.
//!
//! Body: `data[data_len]` then `offsets[(row_count + 1) × offset_width]`; row `r`'s
//! value is `data[offsets[r] .. offsets[r + 1]]`, UTF-8.
//! Header parameters: `[row_count, offset_width, data_len, asset_index]`.

use super::{FileView, FormatError, Kind, read_uint, section_end};
#[cfg(test)]
use super::{FileWriter, uint_width, write_uint};
use crate::asset::Asset;
#[cfg(test)]
use std::{
    fs::File,
    io::{self, BufWriter, Write},
    path::Path,
};

/// Kind tag of asset columns.
pub const KIND: Kind = *b"ACOL";

/// File name of the column holding `asset`.
pub fn file_name(asset: Asset) -> String {
    format!("asset.{}.col", asset.name())
}

/// Streams one column: values straight to the file, offsets to a temporary side file
/// appended at the end, so memory stays constant. Builds write version 2; this writer
/// makes version 1 files for the reader's tests.
#[cfg(test)]
pub struct ColumnWriter {
    out: FileWriter,
    offsets: BufWriter<File>,
    asset: Asset,
    width: usize,
    rows: u64,
}

#[cfg(test)]
impl ColumnWriter {
    /// Creates the column of `asset` in `dir`; `max_data_len` bounds the total value
    /// bytes (to size offsets); `temp_dir` receives the side file.
    pub fn create(dir: &Path, temp_dir: &Path, asset: Asset, max_data_len: u64) -> io::Result<ColumnWriter> {
        let width = uint_width(max_data_len);
        let mut offsets = BufWriter::with_capacity(1 << 20, tempfile::tempfile_in(temp_dir)?);
        write_uint(&mut offsets, 0, width)?;
        Ok(ColumnWriter { out: FileWriter::create(&dir.join(file_name(asset)), KIND)?, offsets, asset, width, rows: 0 })
    }

    /// Appends the next row's value (`None` or empty: absent).
    pub fn push(&mut self, value: Option<&[u8]>) -> io::Result<()> {
        if let Some(v) = value {
            self.out.write_all(v)?;
        }
        write_uint(&mut self.offsets, self.out.body_len(), self.width)?;
        self.rows += 1;
        Ok(())
    }

    /// Appends the offsets and finishes the file.
    pub fn finish(mut self) -> io::Result<super::FileSummary> {
        let data_len = self.out.body_len();
        let mut side = self.offsets.into_inner().map_err(|e| e.into_error())?;
        self.out.append_file(&mut side)?;
        self.out.finish([self.rows, self.width as u64, data_len, self.asset.index() as u64])
    }
}

/// Reads one asset column.
#[derive(Clone, Debug)]
pub struct ColumnReader {
    view: FileView,
    rows: u64,
    width: usize,
    data_len: u64,
}

impl ColumnReader {
    /// Checks the header against the body and the expected asset and row count
    /// (constant time).
    pub fn new(view: FileView, asset: Asset, rows: u64) -> Result<ColumnReader, FormatError> {
        let [row_count, width, data_len, asset_index] = view.params();
        if asset_index != asset.index() as u64 {
            return Err(view.damaged(format!("holds asset #{asset_index}, expected {asset}")));
        }
        if row_count != rows {
            return Err(view.damaged(format!("{row_count} rows, but records.rows has {rows}")));
        }
        if width != 4 && width != 8 {
            return Err(view.damaged(format!("offset width {width} is not 4 or 8")));
        }
        let end = section_end(&view, data_len, row_count.saturating_add(1), width, "offsets")?;
        if end != view.body().len() as u64 {
            return Err(view.damaged("trailing bytes after the offsets"));
        }
        Ok(ColumnReader { view, rows, width: width as usize, data_len })
    }

    /// The value of row `row`: `None` when absent; damage (offsets out of order or out
    /// of bounds, invalid UTF-8) is an error.
    #[inline]
    pub fn get(&self, row: u64) -> Result<Option<&str>, FormatError> {
        let body = self.view.body();
        let offsets = body.get(self.data_len as usize..).unwrap_or_default();
        let (Some(start), Some(end)) =
            (read_uint(offsets, row, self.width), read_uint(offsets, row.wrapping_add(1), self.width))
        else {
            return Err(self.view.damaged(format!("row {row} is past the end of the column")));
        };
        if row >= self.rows || start > end || end > self.data_len {
            return Err(self.view.damaged(format!("row {row} has offsets {start}..{end} outside the data")));
        }
        if start == end {
            return Ok(None);
        }
        let bytes = body.get(start as usize..end as usize).unwrap_or_default();
        std::str::from_utf8(bytes).map(Some).map_err(|_| self.view.damaged(format!("row {row} is not valid UTF-8")))
    }

    /// Full structure check: every row's value readable.
    pub fn verify(&self) -> Result<(), FormatError> {
        let offsets = self.view.body().get(self.data_len as usize..).unwrap_or_default();
        if read_uint(offsets, 0, self.width) != Some(0)
            || read_uint(offsets, self.rows, self.width) != Some(self.data_len)
        {
            return Err(self.view.damaged("offsets do not start at 0 and end at the data length"));
        }
        for row in 0..self.rows {
            self.get(row)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mmap::Bytes;

    #[test]
    fn values_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let values = [Some("alice@example.com"), None, Some("bücher"), Some(""), Some("x")];
        let mut w = ColumnWriter::create(dir.path(), dir.path(), Asset::Email, 1000).unwrap();
        for v in values {
            w.push(v.map(str::as_bytes)).unwrap();
        }
        w.finish().unwrap();
        let name = file_name(Asset::Email);
        let bytes = Bytes::from_vec(std::fs::read(dir.path().join(&name)).unwrap());
        let view = FileView::parse(&name, bytes, KIND).unwrap();
        assert!(ColumnReader::new(view.clone(), Asset::Username, 5).is_err());
        assert!(ColumnReader::new(view.clone(), Asset::Email, 4).is_err());
        let r = ColumnReader::new(view, Asset::Email, 5).unwrap();
        let got: Vec<_> = (0..5).map(|i| r.get(i).unwrap()).collect();
        assert_eq!(got, vec![Some("alice@example.com"), None, Some("bücher"), None, Some("x")]);
        assert!(r.get(5).is_err());
        r.verify().unwrap();
    }
}
