//! `records.hot` (format version 2): one narrow row per record, indexed by row id,
//! holding all that `check` reads: the record's asset bits, its severity and its source.
//!
//! A row is `meta u16 LE` (bits 0-11 the asset bits, bits 12-13 the severity code,
//! bits 14-15 zero) then the **source slot**, the position of the record's source in
//! the manifest's sources sorted by id: a u16 when the index has at most
//! [`NARROW_SOURCE_LIMIT`] sources (a 4-byte row), else a u32 (a 6-byte row). The
//! source id and the publish date come from that source. The rest of a record (its
//! values, and the document id where it cannot be recomputed) lives in `records.store`.
//!
//! Header parameters: `[row_count, row_width, source_count, 0]`.

use super::{FileSummary, FileView, FileWriter, FormatError, Kind};
use crate::asset::AssetSet;
use crate::format::rows::RowId;
use crate::severity::Severity;
use std::io::{self, Write};
use std::path::Path;

/// Kind tag of `records.hot`.
pub const KIND: Kind = *b"HOT2";
/// File name inside the index directory.
pub const FILE_NAME: &str = "records.hot";
/// Most sources an index may have for 4-byte rows (a u16 slot); more take 6 bytes.
pub const NARROW_SOURCE_LIMIT: u64 = 1 << 16;

const ASSET_MASK: u16 = 0x0FFF;
const SEVERITY_SHIFT: u16 = 12;
const RESERVED_MASK: u16 = 0xC000;

/// The row width (4 or 6 bytes) of an index with `source_count` sources.
pub fn row_width(source_count: u64) -> usize {
    if source_count <= NARROW_SOURCE_LIMIT { 4 } else { 6 }
}

/// The severity code of a hot row (0 to 3, by ascending severity).
fn severity_code(severity: Severity) -> u16 {
    match severity {
        Severity::Low => 0,
        Severity::Medium => 1,
        Severity::High => 2,
        Severity::Critical => 3,
    }
}

fn severity_of_code(code: u16) -> Severity {
    match code & 3 {
        0 => Severity::Low,
        1 => Severity::Medium,
        2 => Severity::High,
        _ => Severity::Critical,
    }
}

/// One hot row.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct HotRow {
    /// Assets the record holds (stored or not).
    pub assets: AssetSet,
    /// The record's severity.
    pub severity: Severity,
    /// Position of the record's source in the manifest's sources (ascending by id).
    pub slot: u32,
}

impl HotRow {
    /// Encodes the row into `out`, which is [`row_width`] bytes long (4 or 6).
    fn encode(&self, out: &mut [u8]) {
        let meta = (self.assets.bits() & ASSET_MASK) | (severity_code(self.severity) << SEVERITY_SHIFT);
        let slot = self.slot.to_le_bytes();
        let [m0, m1] = meta.to_le_bytes();
        let bytes = [m0, m1, slot[0], slot[1], slot[2], slot[3]];
        let n = out.len().min(bytes.len());
        out[..n].copy_from_slice(&bytes[..n]);
    }

    /// Decodes a 4-byte row (a u16 slot); the reserved meta bits are ignored.
    #[inline(always)]
    pub fn decode_narrow(b: [u8; 4]) -> HotRow {
        let meta = u16::from_le_bytes([b[0], b[1]]);
        HotRow {
            assets: AssetSet::from_bits_truncate(meta & ASSET_MASK),
            severity: severity_of_code(meta >> SEVERITY_SHIFT),
            slot: u16::from_le_bytes([b[2], b[3]]) as u32,
        }
    }

    /// Decodes a row of 4 or 6 bytes; the reserved meta bits are ignored (see
    /// [`HotReader::verify`]).
    #[inline]
    fn decode(b: &[u8]) -> Option<HotRow> {
        let meta = u16::from_le_bytes([*b.first()?, *b.get(1)?]);
        let slot = match b.len() {
            4 => u16::from_le_bytes([b[2], b[3]]) as u32,
            6 => u32::from_le_bytes([b[2], b[3], b[4], b[5]]),
            _ => return None,
        };
        Some(HotRow {
            assets: AssetSet::from_bits_truncate(meta & ASSET_MASK),
            severity: severity_of_code(meta >> SEVERITY_SHIFT),
            slot,
        })
    }
}

/// Streams hot rows into `records.hot`.
pub struct HotWriter {
    out: FileWriter,
    width: usize,
    source_count: u64,
    count: u64,
}

impl HotWriter {
    /// Creates the file at `path` for an index of `source_count` sources.
    pub fn create(path: &Path, source_count: u64) -> io::Result<HotWriter> {
        if source_count > u32::MAX as u64 {
            return Err(io::Error::other(format!(
                "{source_count} sources do not fit a hot row (at most {})",
                u32::MAX
            )));
        }
        Ok(HotWriter { out: FileWriter::create(path, KIND)?, width: row_width(source_count), source_count, count: 0 })
    }

    /// Appends a row; returns its id. A slot past the sources is an error.
    pub fn push(&mut self, row: &HotRow) -> io::Result<RowId> {
        if row.slot as u64 >= self.source_count {
            return Err(io::Error::other(format!(
                "source slot {} is past the {} sources of the index",
                row.slot, self.source_count
            )));
        }
        let mut b = [0u8; 6];
        let b = &mut b[..self.width];
        row.encode(b);
        self.out.write_all(b)?;
        self.count += 1;
        Ok(self.count - 1)
    }

    /// Rows written so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Finishes the file.
    pub fn finish(self) -> io::Result<FileSummary> {
        self.out.finish([self.count, self.width as u64, self.source_count, 0])
    }
}

/// Reads hot rows by id.
#[derive(Clone, Debug)]
pub struct HotReader {
    view: FileView,
    count: u64,
    width: usize,
    source_count: u64,
}

impl HotReader {
    /// Checks the header against the body and against `source_count`, the number of
    /// sources in the manifest (constant time).
    pub fn new(view: FileView, source_count: u64) -> Result<HotReader, FormatError> {
        let [count, width, sources, _] = view.params();
        if sources != source_count {
            return Err(view.damaged(format!("made for {sources} sources, the manifest has {source_count}")));
        }
        let expected = row_width(source_count) as u64;
        if width != expected {
            return Err(view.damaged(format!("row width {width}, expected {expected} for {source_count} sources")));
        }
        if count.checked_mul(width) != Some(view.body().len() as u64) {
            return Err(view.damaged(format!("{count} rows do not fill a body of {} bytes", view.body().len())));
        }
        Ok(HotReader { view, count, width: width as usize, source_count })
    }

    /// Number of rows.
    pub fn len(&self) -> u64 {
        self.count
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The row with id `id`, or `None` past the end. Its slot is not checked against the
    /// source count (callers resolve it and report a slot without a source as damage).
    #[inline(always)]
    pub fn get(&self, id: RowId) -> Option<HotRow> {
        let body: &[u8] = self.view.body();
        if self.width == 4 {
            // The common width, decoded without the general path's length dispatch.
            let start = usize::try_from(id).ok()?.checked_mul(4)?;
            return Some(HotRow::decode_narrow(body.get(start..start.checked_add(4)?)?.try_into().ok()?));
        }
        let start = usize::try_from(id).ok()?.checked_mul(self.width)?;
        HotRow::decode(body.get(start..start.checked_add(self.width)?)?)
    }

    /// The bytes of rows `ids` when rows are 4 bytes wide (decode each with
    /// [`HotRow::decode_narrow`]): `check` reads a run of rows as one slice. `None` for
    /// 6-byte rows or rows past the end.
    #[inline]
    pub fn narrow_rows(&self, ids: std::ops::Range<RowId>) -> Option<&[u8]> {
        if self.width != 4 {
            return None;
        }
        let start = usize::try_from(ids.start).ok()?.checked_mul(4)?;
        let end = usize::try_from(ids.end).ok()?.checked_mul(4)?;
        self.view.body().get(start..end)
    }

    /// Appends the asset bits of rows `rows` to `out`; `None` when a row is past the end.
    pub fn assets_into(&self, rows: std::ops::Range<RowId>, out: &mut Vec<AssetSet>) -> Option<()> {
        for id in rows {
            out.push(self.get(id)?.assets);
        }
        Some(())
    }

    /// Hints the CPU to fetch the rows `ids` (at most `max_lines` cache lines).
    #[inline]
    pub fn prefetch(&self, ids: std::ops::Range<RowId>, max_lines: usize) {
        let at = |id: RowId| usize::try_from(id).unwrap_or(usize::MAX).saturating_mul(self.width);
        crate::mmap::prefetch_range(self.view.body(), at(ids.start)..at(ids.end), max_lines);
    }

    /// Checks every row (slot below the source count, reserved bits zero) and returns,
    /// for each source slot, its number of rows and the union of their assets.
    pub fn verify(&self) -> Result<Vec<(u64, AssetSet)>, FormatError> {
        let mut per_slot = vec![(0u64, AssetSet::EMPTY); usize::try_from(self.source_count).unwrap_or(0)];
        for (id, b) in self.view.body().chunks_exact(self.width).enumerate() {
            let meta = u16::from_le_bytes([b[0], b[1]]);
            if meta & RESERVED_MASK != 0 {
                return Err(self.view.damaged(format!("row {id}: reserved bits 14-15 are not zero")));
            }
            let row = HotRow::decode(b).ok_or_else(|| self.view.damaged(format!("row {id} is truncated")))?;
            match per_slot.get_mut(row.slot as usize) {
                Some((n, assets)) => {
                    *n += 1;
                    *assets = assets.union(row.assets);
                }
                None => {
                    return Err(self.view.damaged(format!(
                        "row {id}: source slot {} is past the {} sources of the manifest",
                        row.slot, self.source_count
                    )));
                }
            }
        }
        Ok(per_slot)
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
    use proptest::prelude::*;

    fn write(dir: &Path, source_count: u64, rows: &[HotRow]) -> HotReader {
        let path = dir.join(FILE_NAME);
        let mut w = HotWriter::create(&path, source_count).unwrap();
        for (i, row) in rows.iter().enumerate() {
            assert_eq!(w.push(row).unwrap(), i as u64);
        }
        assert_eq!(w.count(), rows.len() as u64);
        let summary = w.finish().unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(summary.size, bytes.len() as u64);
        HotReader::new(FileView::parse(FILE_NAME, Bytes::from_vec(bytes), KIND).unwrap(), source_count).unwrap()
    }

    fn severity() -> impl Strategy<Value = Severity> {
        prop_oneof![Just(Severity::Low), Just(Severity::Medium), Just(Severity::High), Just(Severity::Critical)]
    }

    proptest! {
        #[test]
        fn rows_round_trip(
            wide in any::<bool>(),
            seeds in proptest::collection::vec((0u16..0x1000, severity(), any::<u32>()), 0..200),
        ) {
            let source_count = if wide { NARROW_SOURCE_LIMIT + 5 } else { 300 };
            let rows: Vec<HotRow> = seeds
                .iter()
                .map(|&(bits, severity, s)| HotRow {
                    assets: AssetSet::from_bits_truncate(bits),
                    severity,
                    slot: (s as u64 % source_count) as u32,
                })
                .collect();
            let dir = tempfile::tempdir().unwrap();
            let reader = write(dir.path(), source_count, &rows);
            prop_assert_eq!(reader.width, if wide { 6 } else { 4 });
            prop_assert_eq!(reader.len(), rows.len() as u64);
            for (i, row) in rows.iter().enumerate() {
                prop_assert_eq!(reader.get(i as u64), Some(*row));
            }
            prop_assert_eq!(reader.get(rows.len() as u64), None);
            prop_assert_eq!(reader.get(u64::MAX), None);
            let per_slot = reader.verify().unwrap();
            prop_assert_eq!(per_slot.len() as u64, source_count);
            for (slot, (n, assets)) in per_slot.iter().enumerate() {
                let of_slot: Vec<&HotRow> = rows.iter().filter(|r| r.slot as usize == slot).collect();
                prop_assert_eq!(*n, of_slot.len() as u64);
                prop_assert_eq!(*assets, of_slot.iter().fold(AssetSet::EMPTY, |a, r| a.union(r.assets)));
            }
            let mut bits = Vec::new();
            prop_assert!(reader.assets_into(0..rows.len() as u64, &mut bits).is_some());
            prop_assert_eq!(bits, rows.iter().map(|r| r.assets).collect::<Vec<_>>());
            prop_assert!(reader.assets_into(0..rows.len() as u64 + 1, &mut Vec::new()).is_none());
        }
    }

    #[test]
    fn the_width_follows_the_source_count() {
        assert_eq!(row_width(0), 4);
        assert_eq!(row_width(NARROW_SOURCE_LIMIT), 4);
        assert_eq!(row_width(NARROW_SOURCE_LIMIT + 1), 6);
    }

    #[test]
    fn a_row_is_laid_out_as_documented() {
        let dir = tempfile::tempdir().unwrap();
        let row = HotRow { assets: AssetSet::from_bits_truncate(0x005b), severity: Severity::High, slot: 0x0102 };
        let reader = write(dir.path(), 1000, &[row]);
        // meta 0x005b | 2 << 12 = 0x205b, slot 0x0102, little-endian.
        assert_eq!(&reader.view().body()[..], &[0x5b, 0x20, 0x02, 0x01]);
    }

    #[test]
    fn the_writer_refuses_a_slot_past_the_sources() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = HotWriter::create(&dir.path().join(FILE_NAME), 3).unwrap();
        let err = w.push(&HotRow { assets: AssetSet::EMPTY, severity: Severity::Low, slot: 3 }).unwrap_err();
        assert!(err.to_string().contains("slot 3 is past the 3 sources"), "{err}");
    }

    #[test]
    fn open_checks_width_sources_and_length() {
        let dir = tempfile::tempdir().unwrap();
        let row = HotRow { assets: AssetSet::EMPTY, severity: Severity::Low, slot: 1 };
        let good = write(dir.path(), 2, &[row, row]);
        let view = good.view().clone();
        let err = HotReader::new(view.clone(), 3).unwrap_err().to_string();
        assert!(err.contains("made for 2 sources, the manifest has 3"), "{err}");

        let reparse = |edit: &dyn Fn(&mut Vec<u8>)| {
            let mut bytes = std::fs::read(dir.path().join(FILE_NAME)).unwrap();
            edit(&mut bytes);
            let view = FileView::parse(FILE_NAME, Bytes::from_vec(bytes), KIND)?;
            HotReader::new(view, 2).map(|_| ())
        };
        let err = reparse(&|b| b[32] = 6).unwrap_err().to_string(); // row_width
        assert!(err.contains("row width 6, expected 4"), "{err}");
        let err = reparse(&|b| b[24] = 3).unwrap_err().to_string(); // row_count
        assert!(err.contains("3 rows do not fill a body of 8 bytes"), "{err}");
    }

    #[test]
    fn verify_finds_bad_slots_and_reserved_bits() {
        let dir = tempfile::tempdir().unwrap();
        let row = HotRow { assets: AssetSet::EMPTY, severity: Severity::Low, slot: 1 };
        write(dir.path(), 2, &[row, row]);
        let damaged = |at: usize, value: u8| {
            let mut bytes = std::fs::read(dir.path().join(FILE_NAME)).unwrap();
            bytes[super::super::HEADER_LEN + at] = value;
            let view = FileView::parse(FILE_NAME, Bytes::from_vec(bytes), KIND).unwrap();
            HotReader::new(view, 2).unwrap().verify().unwrap_err().to_string()
        };
        let err = damaged(4 + 2, 2);
        assert!(err.contains("records.hot: damaged: row 1: source slot 2 is past the 2 sources"), "{err}");
        let err = damaged(1, 0x40);
        assert!(err.contains("row 0: reserved bits 14-15 are not zero"), "{err}");
    }
}
