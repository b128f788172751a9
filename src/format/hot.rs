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
//! The file has one of two layouts (docs/FORMAT.md §3.9):
//! - **raw**: the rows one after the other;
//! - **palette**: the distinct rows, ascending bytewise, then one code per row (a u8
//!   when there are at most [`BYTE_CODE_LIMIT`] distinct rows, else a u16), the
//!   position of its row in the palette. A real index has a few dozen distinct rows, so
//!   this takes 1 byte per record instead of 4.
//!
//! The writer picks the palette when it is smaller (there are at most
//! [`MAX_PALETTE_LEN`] distinct rows); the reader opens both.
//!
//! Header parameters: `[row_count, width, source_count, palette_len]`: `width` is the
//! row width (4 or 6) and `palette_len` 0 in the raw layout; `width` is the code width
//! (1 or 2) and `palette_len` the number of palette rows in the palette layout.

use super::{FileSummary, FileView, FileWriter, FormatError, Kind};
use crate::asset::AssetSet;
use crate::format::rows::RowId;
use crate::severity::Severity;
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::hash::{BuildHasherDefault, Hasher};
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Kind tag of `records.hot`.
pub const KIND: Kind = *b"HOT2";
/// File name inside the index directory.
pub const FILE_NAME: &str = "records.hot";
/// Most sources an index may have for 4-byte rows (a u16 slot); more take 6 bytes.
pub const NARROW_SOURCE_LIMIT: u64 = 1 << 16;
/// Most palette rows that 1-byte codes address; a larger palette takes 2-byte codes.
pub const BYTE_CODE_LIMIT: u64 = 1 << 8;
/// Most rows a palette holds (2-byte codes); with more distinct rows the file is raw.
pub const MAX_PALETTE_LEN: u64 = 1 << 16;

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

/// The code width (1 or 2 bytes) of a palette of `palette_len` rows.
pub fn code_width(palette_len: u64) -> usize {
    if palette_len <= BYTE_CODE_LIMIT { 1 } else { 2 }
}

/// Whether the palette layout of `row_count` rows of `width` bytes with `palette_len`
/// distinct rows is smaller than the raw layout (the writer's choice).
fn palette_is_smaller(row_count: u64, width: usize, palette_len: u64) -> bool {
    let palette = (palette_len as u128) * (width as u128) + (row_count as u128) * (code_width(palette_len) as u128);
    palette_len <= MAX_PALETTE_LEN && palette < (row_count as u128) * (width as u128)
}

/// The row bytes (4 or 6, zero-padded) as one integer, the key of the writer's sets.
fn row_key(bytes: &[u8]) -> u64 {
    let mut key = [0u8; 8];
    let n = bytes.len().min(8);
    key[..n].copy_from_slice(&bytes[..n]);
    u64::from_le_bytes(key)
}

/// Hashes a row key (a u64) with the SplitMix64 mixer ([`crate::splitmix::mix`]): a bijection whose low bits
/// depend on every input bit, at a few cycles per row (the writer hashes every row).
#[derive(Default)]
struct RowKeyHasher(u64);

impl Hasher for RowKeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(self.0 ^ b as u64);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = crate::splitmix::mix(value);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

type RowKeys = BuildHasherDefault<RowKeyHasher>;

/// Rows transcoded per read of the spilled raw rows.
const TRANSCODE_ROWS: usize = 1 << 16;

/// Streams hot rows into `records.hot`.
///
/// The rows go to a temporary file in their raw layout while the writer collects the
/// distinct ones (until there are more than [`MAX_PALETTE_LEN`]: at most 64 Ki keys in
/// memory); [`HotWriter::finish`] then writes the file in the smaller layout, in one
/// sequential pass over the temporary file.
pub struct HotWriter {
    path: PathBuf,
    spill: BufWriter<File>,
    width: usize,
    source_count: u64,
    count: u64,
    /// The distinct rows so far; `None` once there are more than [`MAX_PALETTE_LEN`].
    distinct: Option<HashSet<u64, RowKeys>>,
}

impl HotWriter {
    /// Creates the file at `path` for an index of `source_count` sources; the rows are
    /// spilled to a temporary file in `spill_dir` until [`HotWriter::finish`].
    pub fn create(path: &Path, spill_dir: &Path, source_count: u64) -> io::Result<HotWriter> {
        if source_count > u32::MAX as u64 {
            return Err(io::Error::other(format!(
                "{source_count} sources do not fit a hot row (at most {})",
                u32::MAX
            )));
        }
        Ok(HotWriter {
            path: path.to_path_buf(),
            spill: BufWriter::with_capacity(1 << 20, tempfile::tempfile_in(spill_dir)?),
            width: row_width(source_count),
            source_count,
            count: 0,
            distinct: Some(HashSet::default()),
        })
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
        self.spill.write_all(b)?;
        if let Some(distinct) = &mut self.distinct
            && distinct.insert(row_key(b))
            && distinct.len() as u64 > MAX_PALETTE_LEN
        {
            self.distinct = None;
        }
        self.count += 1;
        Ok(self.count - 1)
    }

    /// Rows written so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Writes the file in the smaller layout (the palette one when it is smaller than
    /// the raw rows) and finishes it.
    pub fn finish(self) -> io::Result<FileSummary> {
        let HotWriter { path, spill, width, source_count, count, distinct } = self;
        let mut spill = spill.into_inner().map_err(|e| e.into_error())?;
        let mut out = FileWriter::create(&path, KIND)?;
        let palette = distinct.filter(|d| palette_is_smaller(count, width, d.len() as u64));
        let Some(palette) = palette else {
            out.append_file(&mut spill)?;
            return out.finish([count, width as u64, source_count, 0]);
        };
        let mut palette: Vec<[u8; 8]> = palette.into_iter().map(u64::to_le_bytes).collect();
        palette.sort_unstable_by(|a, b| a[..width].cmp(&b[..width]));
        let mut codes: HashMap<u64, u16, RowKeys> = HashMap::default();
        for (code, row) in palette.iter().enumerate() {
            out.write_all(&row[..width])?;
            // At most MAX_PALETTE_LEN rows: every code fits a u16.
            codes.insert(u64::from_le_bytes(*row), code as u16);
        }
        let code_width = code_width(palette.len() as u64);
        spill.seek(SeekFrom::Start(0))?;
        let mut raw = BufReader::with_capacity(1 << 20, spill);
        let mut rows = vec![0u8; TRANSCODE_ROWS * width];
        let mut encoded = Vec::with_capacity(TRANSCODE_ROWS * code_width);
        let mut left = count;
        while left > 0 {
            let n = left.min(TRANSCODE_ROWS as u64) as usize;
            let chunk = rows.get_mut(..n * width).unwrap_or_default();
            raw.read_exact(chunk)?;
            encoded.clear();
            for row in chunk.chunks_exact(width) {
                let code = codes
                    .get(&row_key(row))
                    .ok_or_else(|| io::Error::other("records.hot: a spilled row changed while it was transcoded"))?;
                encoded.extend_from_slice(&code.to_le_bytes()[..code_width]);
            }
            out.write_all(&encoded)?;
            left -= n as u64;
        }
        out.finish([count, code_width as u64, source_count, palette.len() as u64])
    }
}

/// How the rows are laid out in the body.
#[derive(Clone, Debug)]
enum Layout {
    /// One raw row of this many bytes (4 or 6) per record.
    Raw(usize),
    /// One code of `width` bytes (1 or 2) per record, from body offset `codes_at`: the
    /// position of its row in `rows`, the palette (decoded and checked at open).
    Palette { width: usize, codes_at: usize, rows: Arc<[HotRow]> },
}

/// Reads hot rows by id.
#[derive(Clone, Debug)]
pub struct HotReader {
    view: FileView,
    count: u64,
    layout: Layout,
    source_count: u64,
}

impl HotReader {
    /// Checks the header against the body and against `source_count`, the number of
    /// sources in the manifest; of a palette file, also decodes and checks the palette
    /// (entries ascending, reserved bits zero, slots below the source count). Constant
    /// time in the number of rows (a palette has at most [`MAX_PALETTE_LEN`] rows).
    pub fn new(view: FileView, source_count: u64) -> Result<HotReader, FormatError> {
        let [count, width, sources, palette_len] = view.params();
        if sources != source_count {
            return Err(view.damaged(format!("made for {sources} sources, the manifest has {source_count}")));
        }
        let row_width = row_width(source_count);
        let body_len = view.body().len() as u64;
        let layout = if width == row_width as u64 {
            if palette_len != 0 {
                return Err(view.damaged(format!("raw rows with a palette of {palette_len} rows (expected 0)")));
            }
            if count.checked_mul(width) != Some(body_len) {
                return Err(view.damaged(format!("{count} rows do not fill a body of {body_len} bytes")));
            }
            Layout::Raw(row_width)
        } else if width == 1 || width == 2 {
            if !(1..=MAX_PALETTE_LEN).contains(&palette_len) {
                return Err(view.damaged(format!("a palette of {palette_len} rows (1 to {MAX_PALETTE_LEN})")));
            }
            let expected = code_width(palette_len) as u64;
            if width != expected {
                return Err(view
                    .damaged(format!("{width}-byte codes for a palette of {palette_len} rows, expected {expected}")));
            }
            let palette_bytes = palette_len * row_width as u64;
            if count.checked_mul(width).and_then(|codes| codes.checked_add(palette_bytes)) != Some(body_len) {
                return Err(view.damaged(format!(
                    "a palette of {palette_len} rows of {row_width} bytes and {count} codes of {width} bytes do not fill a body of {body_len} bytes"
                )));
            }
            let codes_at = palette_bytes as usize;
            let rows = decode_palette(&view, view.body().get(..codes_at).unwrap_or_default(), row_width, source_count)?;
            Layout::Palette { width: width as usize, codes_at, rows }
        } else {
            return Err(view.damaged(format!(
                "row width {width}, expected {row_width} for {source_count} sources (raw rows) or 1 or 2 (palette codes)"
            )));
        };
        Ok(HotReader { view, count, layout, source_count })
    }

    /// Number of rows.
    pub fn len(&self) -> u64 {
        self.count
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Whether the file has the palette layout.
    #[cfg(test)]
    pub fn has_palette(&self) -> bool {
        matches!(self.layout, Layout::Palette { .. })
    }

    /// The row with id `id`, or `None` past the end or when its code is past the palette
    /// ([`HotReader::row_error`] says which). Its slot is not checked against the source
    /// count in the raw layout (callers resolve it and report a slot without a source as
    /// damage); palette rows were checked at open.
    #[inline(always)]
    pub fn get(&self, id: RowId) -> Option<HotRow> {
        let body: &[u8] = self.view.body();
        match &self.layout {
            // The common widths, decoded without the general path's length dispatch.
            Layout::Raw(4) => {
                let start = usize::try_from(id).ok()?.checked_mul(4)?;
                Some(HotRow::decode_narrow(body.get(start..start.checked_add(4)?)?.try_into().ok()?))
            }
            Layout::Palette { width: 1, codes_at, rows } => {
                let at = usize::try_from(id).ok()?.checked_add(*codes_at)?;
                rows.get(*body.get(at)? as usize).copied()
            }
            Layout::Raw(width) => {
                let start = usize::try_from(id).ok()?.checked_mul(*width)?;
                HotRow::decode(body.get(start..start.checked_add(*width)?)?)
            }
            Layout::Palette { width, codes_at, rows } => rows.get(code_at(body, *codes_at, *width, id)?).copied(),
        }
    }

    /// Calls `each` with the id and the row of every row of `ids`, in order, stopping at
    /// its first error: `check` reads the run of an e-mail as one slice (raw rows, or
    /// codes and the palette). A row that cannot be read (past the end, or a code past
    /// the palette) is the error [`HotReader::row_error`].
    #[inline]
    pub fn try_for_each<E: From<FormatError>>(
        &self,
        ids: Range<RowId>,
        mut each: impl FnMut(RowId, HotRow) -> Result<(), E>,
    ) -> Result<(), E> {
        let body: &[u8] = self.view.body();
        let span = |width: usize, at: usize| -> Option<&[u8]> {
            let start = usize::try_from(ids.start).ok()?.checked_mul(width)?.checked_add(at)?;
            let end = usize::try_from(ids.end).ok()?.checked_mul(width)?.checked_add(at)?;
            body.get(start..end)
        };
        match &self.layout {
            Layout::Raw(4) => {
                if let Some(bytes) = span(4, 0) {
                    for (id, b) in ids.clone().zip(bytes.as_chunks::<4>().0) {
                        each(id, HotRow::decode_narrow(*b))?;
                    }
                    return Ok(());
                }
            }
            Layout::Palette { width: 1, codes_at, rows } => {
                if let Some(codes) = span(1, *codes_at) {
                    for (id, &code) in ids.clone().zip(codes) {
                        match rows.get(code as usize) {
                            Some(row) => each(id, *row)?,
                            None => return Err(self.row_error(id).into()),
                        }
                    }
                    return Ok(());
                }
            }
            _ => {}
        }
        for id in ids {
            match self.get(id) {
                Some(row) => each(id, row)?,
                None => return Err(self.row_error(id).into()),
            }
        }
        Ok(())
    }

    /// Why row `id` cannot be read ([`HotReader::get`] gave `None`): past the end, or
    /// its code past the palette.
    #[cold]
    #[inline(never)]
    pub fn row_error(&self, id: RowId) -> FormatError {
        if id >= self.count {
            return self.view.damaged(format!("row {id} is past the {} rows", self.count));
        }
        match &self.layout {
            Layout::Palette { width, codes_at, rows } => match code_at(self.view.body(), *codes_at, *width, id) {
                Some(code) => {
                    self.view.damaged(format!("row {id}: code {code} is past the palette of {} rows", rows.len()))
                }
                None => self.view.damaged(format!("row {id}: its code is out of bounds")),
            },
            Layout::Raw(_) => self.view.damaged(format!("row {id} is out of bounds")),
        }
    }

    /// Appends the asset bits of rows `rows` to `out`; a row that cannot be read is the
    /// error [`HotReader::row_error`].
    pub fn assets_into(&self, rows: Range<RowId>, out: &mut Vec<AssetSet>) -> Result<(), FormatError> {
        self.try_for_each(rows, |_, row| {
            out.push(row.assets);
            Ok::<(), FormatError>(())
        })
    }

    /// Hints the CPU to fetch the rows `ids` (at most `max_lines` cache lines).
    #[inline]
    pub fn prefetch(&self, ids: Range<RowId>, max_lines: usize) {
        let (width, from) = match &self.layout {
            Layout::Raw(width) => (*width, 0),
            Layout::Palette { width, codes_at, .. } => (*width, *codes_at),
        };
        let at = |id: RowId| usize::try_from(id).unwrap_or(usize::MAX).saturating_mul(width).saturating_add(from);
        crate::mmap::prefetch_range(self.view.body(), at(ids.start)..at(ids.end), max_lines);
    }

    /// Checks every row (raw rows: slot below the source count, reserved bits zero;
    /// palette codes: below the palette length, and every palette row used) and returns,
    /// for each source slot, its number of rows and the union of their assets.
    pub fn verify(&self) -> Result<Vec<(u64, AssetSet)>, FormatError> {
        let mut per_slot = vec![(0u64, AssetSet::EMPTY); usize::try_from(self.source_count).unwrap_or(0)];
        let body: &[u8] = self.view.body();
        match &self.layout {
            Layout::Raw(width) => {
                for (id, b) in body.chunks_exact(*width).enumerate() {
                    let row = check_row(&self.view, b, self.source_count, || format!("row {id}"))?;
                    if let Some((n, assets)) = per_slot.get_mut(row.slot as usize) {
                        *n += 1;
                        *assets = assets.union(row.assets);
                    }
                }
            }
            Layout::Palette { width, codes_at, rows } => {
                let mut uses = vec![0u64; rows.len()];
                let codes = body.get(*codes_at..).unwrap_or_default();
                let mut count = |id: usize, code: usize| match uses.get_mut(code) {
                    Some(n) => {
                        *n += 1;
                        Ok(())
                    }
                    None => Err(self
                        .view
                        .damaged(format!("row {id}: code {code} is past the palette of {} rows", rows.len()))),
                };
                if *width == 1 {
                    for (id, &code) in codes.iter().enumerate() {
                        count(id, code as usize)?;
                    }
                } else {
                    for (id, code) in codes.as_chunks::<2>().0.iter().enumerate() {
                        count(id, u16::from_le_bytes(*code) as usize)?;
                    }
                }
                for (entry, (row, n)) in rows.iter().zip(uses).enumerate() {
                    if n == 0 {
                        return Err(self.view.damaged(format!("palette row {entry} is the row of no record")));
                    }
                    // Slots were checked at open.
                    if let Some((rows_of_slot, assets)) = per_slot.get_mut(row.slot as usize) {
                        *rows_of_slot += n;
                        *assets = assets.union(row.assets);
                    }
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

/// The code of row `id` (`width` 1 or 2 bytes, from body offset `codes_at`).
#[inline]
fn code_at(body: &[u8], codes_at: usize, width: usize, id: RowId) -> Option<usize> {
    let at = usize::try_from(id).ok()?.checked_mul(width)?.checked_add(codes_at)?;
    match width {
        1 => body.get(at).map(|&c| c as usize),
        _ => Some(u16::from_le_bytes(body.get(at..at.checked_add(2)?)?.try_into().ok()?) as usize),
    }
}

/// Decodes row bytes `b` (4 or 6) and checks them: reserved bits zero, slot below
/// `source_count`. `what` names the row in errors.
fn check_row(view: &FileView, b: &[u8], source_count: u64, what: impl Fn() -> String) -> Result<HotRow, FormatError> {
    let meta = u16::from_le_bytes([*b.first().unwrap_or(&0), *b.get(1).unwrap_or(&0)]);
    if meta & RESERVED_MASK != 0 {
        return Err(view.damaged(format!("{}: reserved bits 14-15 are not zero", what())));
    }
    let row = HotRow::decode(b).ok_or_else(|| view.damaged(format!("{} is truncated", what())))?;
    if row.slot as u64 >= source_count {
        return Err(view.damaged(format!(
            "{}: source slot {} is past the {source_count} sources of the manifest",
            what(),
            row.slot
        )));
    }
    Ok(row)
}

/// Decodes and checks the palette `bytes` (rows of `width` bytes): each row valid
/// ([`check_row`]) and the rows strictly ascending bytewise.
fn decode_palette(
    view: &FileView,
    bytes: &[u8],
    width: usize,
    source_count: u64,
) -> Result<Arc<[HotRow]>, FormatError> {
    let mut rows = Vec::with_capacity(bytes.len() / width.max(1));
    let mut previous: Option<&[u8]> = None;
    for (entry, b) in bytes.chunks_exact(width).enumerate() {
        if previous.is_some_and(|p| p >= b) {
            return Err(view.damaged(format!(
                "palette rows {} and {entry} are not in strictly ascending order",
                entry.saturating_sub(1)
            )));
        }
        previous = Some(b);
        rows.push(check_row(view, b, source_count, || format!("palette row {entry}"))?);
    }
    Ok(rows.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{HEADER_LEN, framed_bytes};
    use crate::mmap::Bytes;
    use proptest::prelude::*;

    fn write(dir: &Path, source_count: u64, rows: &[HotRow]) -> HotReader {
        let path = dir.join(FILE_NAME);
        let mut w = HotWriter::create(&path, dir, source_count).unwrap();
        for (i, row) in rows.iter().enumerate() {
            assert_eq!(w.push(row).unwrap(), i as u64);
        }
        assert_eq!(w.count(), rows.len() as u64);
        let summary = w.finish().unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(summary.size, bytes.len() as u64);
        open(bytes, source_count).unwrap()
    }

    fn open(bytes: Vec<u8>, source_count: u64) -> Result<HotReader, FormatError> {
        HotReader::new(FileView::parse(FILE_NAME, Bytes::from_vec(bytes), KIND)?, source_count)
    }

    /// The raw body of `rows` ([`row_width`] bytes each), as a model of the layout.
    fn raw_body(source_count: u64, rows: &[HotRow]) -> Vec<u8> {
        let width = row_width(source_count);
        let mut body = vec![0u8; rows.len() * width];
        for (row, out) in rows.iter().zip(body.chunks_exact_mut(width)) {
            row.encode(out);
        }
        body
    }

    fn severity() -> impl Strategy<Value = Severity> {
        prop_oneof![Just(Severity::Low), Just(Severity::Medium), Just(Severity::High), Just(Severity::Critical)]
    }

    /// Row `i` of a set of `distinct` distinct rows (distinct slots, then assets).
    fn nth_row(i: u64, source_count: u64) -> HotRow {
        HotRow {
            assets: AssetSet::from_bits_truncate((i / source_count) as u16 & ASSET_MASK),
            severity: Severity::Low,
            slot: (i % source_count) as u32,
        }
    }

    proptest! {
        /// Whatever layout the writer picks, the reader gives back the rows pushed, and
        /// the per-slot counts and assets of a model.
        #[test]
        fn rows_round_trip(
            wide in any::<bool>(),
            kinds in 1u16..40,
            seeds in proptest::collection::vec((0u16..0x1000, severity(), any::<u32>()), 0..300),
        ) {
            let source_count = if wide { NARROW_SOURCE_LIMIT + 5 } else { 300 };
            // Few distinct rows (a palette) or many (raw rows), depending on `kinds`.
            let rows: Vec<HotRow> = seeds
                .iter()
                .map(|&(bits, severity, s)| HotRow {
                    assets: AssetSet::from_bits_truncate(bits % kinds.pow(2)),
                    severity,
                    slot: (s as u64 % source_count.min(kinds as u64 * 3)) as u32,
                })
                .collect();
            let dir = tempfile::tempdir().unwrap();
            let reader = write(dir.path(), source_count, &rows);
            let distinct = rows.iter().map(|r| r.encode_key(source_count)).collect::<HashSet<_>>().len() as u64;
            let width = row_width(source_count);
            prop_assert_eq!(reader.has_palette(), palette_is_smaller(rows.len() as u64, width, distinct));
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
            prop_assert!(reader.assets_into(0..rows.len() as u64, &mut bits).is_ok());
            prop_assert_eq!(bits, rows.iter().map(|r| r.assets).collect::<Vec<_>>());
            prop_assert!(reader.assets_into(0..rows.len() as u64 + 1, &mut Vec::new()).is_err());
            // Every run read as one slice gives the rows of `get`.
            for start in 0..rows.len().min(5) {
                let mut seen = Vec::new();
                reader.try_for_each(start as u64..rows.len() as u64, |id, row| {
                    seen.push((id, row));
                    Ok::<(), FormatError>(())
                }).unwrap();
                let want: Vec<(u64, HotRow)> = rows.iter().enumerate().skip(start).map(|(i, r)| (i as u64, *r)).collect();
                prop_assert_eq!(seen, want);
            }
            // The raw layout of the same rows reads the same.
            let raw = framed_bytes(KIND, [rows.len() as u64, width as u64, source_count, 0], &raw_body(source_count, &rows));
            let raw = open(raw, source_count).unwrap();
            prop_assert!(!raw.has_palette());
            for i in 0..rows.len() as u64 {
                prop_assert_eq!(raw.get(i), reader.get(i));
            }
            prop_assert_eq!(raw.verify().unwrap(), reader.verify().unwrap());
        }
    }

    impl HotRow {
        fn encode_key(&self, source_count: u64) -> u64 {
            let mut b = [0u8; 6];
            let b = &mut b[..row_width(source_count)];
            self.encode(b);
            row_key(b)
        }
    }

    #[test]
    fn the_width_follows_the_source_count() {
        assert_eq!(row_width(0), 4);
        assert_eq!(row_width(NARROW_SOURCE_LIMIT), 4);
        assert_eq!(row_width(NARROW_SOURCE_LIMIT + 1), 6);
    }

    /// Up to 256 distinct rows take 1-byte codes, up to 65,536 2-byte codes, more the
    /// raw layout; so does a file where the palette would not be smaller.
    #[test]
    fn the_layout_follows_the_distinct_rows() {
        let dir = tempfile::tempdir().unwrap();
        let source_count = 1000;
        for (distinct, layout) in [(1, Some(1)), (256, Some(1)), (257, Some(2)), (65_536, Some(2)), (65_537, None)] {
            // Each distinct row three times, so that the palette is smaller when allowed.
            let rows: Vec<HotRow> = (0..3 * distinct).map(|i| nth_row(i % distinct, source_count)).collect();
            let reader = write(dir.path(), source_count, &rows);
            let [count, width, _, palette_len] = reader.view().params();
            assert_eq!(count, rows.len() as u64);
            match layout {
                Some(code_width) => {
                    assert!(reader.has_palette(), "{distinct}");
                    assert_eq!((width, palette_len), (code_width, distinct), "{distinct}");
                    let body = distinct * 4 + rows.len() as u64 * code_width;
                    assert_eq!(reader.view().body().len() as u64, body, "{distinct}");
                }
                None => {
                    assert!(!reader.has_palette(), "{distinct}");
                    assert_eq!((width, palette_len), (4, 0));
                }
            }
            for (i, row) in rows.iter().enumerate().step_by(97) {
                assert_eq!(reader.get(i as u64), Some(*row));
            }
            reader.verify().unwrap();
        }
        // One row: 4 bytes raw against 4 + 1 with a palette.
        let one = write(dir.path(), source_count, &[nth_row(0, source_count)]);
        assert!(!one.has_palette());
        assert!(!write(dir.path(), source_count, &[]).has_palette());
        assert!(write(dir.path(), source_count, &[nth_row(0, source_count); 2]).has_palette());
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
    fn a_palette_file_is_laid_out_as_documented() {
        let dir = tempfile::tempdir().unwrap();
        let a = HotRow { assets: AssetSet::from_bits_truncate(0x005b), severity: Severity::High, slot: 0x0102 };
        let b = HotRow { assets: AssetSet::from_bits_truncate(0x0001), severity: Severity::Low, slot: 0x0003 };
        let reader = write(dir.path(), 1000, &[a, b, a, a]);
        assert_eq!(reader.view().params(), [4, 1, 1000, 2]);
        // Palette ascending bytewise (b's meta 0x0001 before a's 0x205b), then codes.
        assert_eq!(&reader.view().body()[..], &[0x01, 0x00, 0x03, 0x00, 0x5b, 0x20, 0x02, 0x01, 1, 0, 1, 1]);
    }

    #[test]
    fn the_writer_refuses_a_slot_past_the_sources() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = HotWriter::create(&dir.path().join(FILE_NAME), dir.path(), 3).unwrap();
        let err = w.push(&HotRow { assets: AssetSet::EMPTY, severity: Severity::Low, slot: 3 }).unwrap_err();
        assert!(err.to_string().contains("slot 3 is past the 3 sources"), "{err}");
    }

    #[test]
    fn open_checks_width_sources_and_length() {
        let dir = tempfile::tempdir().unwrap();
        let row = HotRow { assets: AssetSet::EMPTY, severity: Severity::Low, slot: 1 };
        let other = HotRow { slot: 0, ..row };
        let good = write(dir.path(), 2, &[row, other]);
        assert!(!good.has_palette());
        let err = HotReader::new(good.view().clone(), 3).unwrap_err().to_string();
        assert!(err.contains("made for 2 sources, the manifest has 3"), "{err}");

        let reparse = |edit: &dyn Fn(&mut Vec<u8>)| {
            let mut bytes = std::fs::read(dir.path().join(FILE_NAME)).unwrap();
            edit(&mut bytes);
            open(bytes, 2).map(|_| ())
        };
        let err = reparse(&|b| b[32] = 6).unwrap_err().to_string(); // width
        assert!(err.contains("row width 6, expected 4"), "{err}");
        let err = reparse(&|b| b[24] = 3).unwrap_err().to_string(); // row_count
        assert!(err.contains("3 rows do not fill a body of 8 bytes"), "{err}");
        let err = reparse(&|b| b[48] = 1).unwrap_err().to_string(); // palette_len
        assert!(err.contains("raw rows with a palette of 1 rows"), "{err}");
        // 1-byte codes over a raw body: the sizes disagree.
        let err = reparse(&|b| {
            b[32] = 1;
            b[48] = 1;
        })
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("a palette of 1 rows of 4 bytes and 2 codes of 1 bytes do not fill a body of 8 bytes"),
            "{err}"
        );
    }

    /// Damage to a palette file: the header (palette length, code width), the palette
    /// (order, reserved bits, slots) at open; codes past the palette on read and by
    /// `verify`.
    #[test]
    fn damage_to_a_palette_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let rows: Vec<HotRow> = [0, 1, 2, 1, 0, 2].iter().map(|&i| nth_row(i, 3)).collect();
        let good = write(dir.path(), 3, &rows);
        assert_eq!(good.view().params(), [6, 1, 3, 3]);
        let body: Vec<u8> = good.view().body().to_vec();
        let with = |params: [u64; 4], edit: &dyn Fn(&mut Vec<u8>)| {
            let mut b = body.clone();
            edit(&mut b);
            open(framed_bytes(KIND, params, &b), 3)
        };
        let params = [6, 1, 3, 3];
        let open_err = |params: [u64; 4], edit: &dyn Fn(&mut Vec<u8>)| with(params, edit).unwrap_err().to_string();
        let err = open_err([6, 1, 3, 2], &|_| {});
        assert!(err.contains("records.hot: damaged: a palette of 2 rows of 4 bytes and 6 codes"), "{err}");
        let err = open_err([6, 1, 3, 0], &|_| {});
        assert!(err.contains("a palette of 0 rows (1 to 65536)"), "{err}");
        let err = open_err([6, 2, 3, 3], &|_| {});
        assert!(err.contains("2-byte codes for a palette of 3 rows, expected 1"), "{err}");
        let err = open_err(params, &|b| b.truncate(b.len() - 1));
        assert!(err.contains("do not fill a body of 17 bytes"), "{err}");
        // Rows 0 and 1 swapped: the palette is no longer ascending.
        let err = open_err(params, &|b| b[..8].copy_from_slice(&[1, 0, 0, 0, 0, 0, 0, 0]));
        assert!(err.contains("palette rows 0 and 1 are not in strictly ascending order"), "{err}");
        let err = open_err(params, &|b| b[9] = 0x40);
        assert!(err.contains("palette row 2: reserved bits 14-15 are not zero"), "{err}");
        let err = open_err(params, &|b| b[10] = 7);
        assert!(err.contains("palette row 2: source slot 7 is past the 3 sources"), "{err}");

        // A code past the palette: opens; reads and verify name the row.
        let bad = with(params, &|b| b[12 + 4] = 3).unwrap();
        assert_eq!(bad.get(3), Some(rows[3]));
        assert_eq!(bad.get(4), None);
        let err = bad.row_error(4).to_string();
        assert!(err.contains("records.hot: damaged: row 4: code 3 is past the palette of 3 rows"), "{err}");
        assert!(bad.row_error(6).to_string().contains("row 6 is past the 6 rows"));
        let err = bad.try_for_each(0..6, |_, _| Ok::<(), FormatError>(())).unwrap_err().to_string();
        assert!(err.contains("row 4: code 3 is past the palette"), "{err}");
        let err = bad.assets_into(2..6, &mut Vec::new()).unwrap_err().to_string();
        assert!(err.contains("row 4: code 3 is past the palette"), "{err}");
        let err = bad.verify().unwrap_err().to_string();
        assert!(err.contains("row 4: code 3 is past the palette of 3 rows"), "{err}");
        // A palette row that no record uses.
        let unused = with(params, &|b| {
            b[12 + 2] = 1;
            b[12 + 5] = 1;
        });
        let err = unused.unwrap().verify().unwrap_err().to_string();
        assert!(err.contains("palette row 2 is the row of no record"), "{err}");
    }

    /// A palette file with 2-byte codes: a damaged code is named too.
    #[test]
    fn a_two_byte_code_past_the_palette_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let rows: Vec<HotRow> = (0..900).map(|i| nth_row(i % 300, 1000)).collect();
        let good = write(dir.path(), 1000, &rows);
        assert_eq!(good.view().params(), [900, 2, 1000, 300]);
        let mut body = good.view().body().to_vec();
        let code_of_row_5 = 300 * 4 + 5 * 2;
        body[code_of_row_5..code_of_row_5 + 2].copy_from_slice(&300u16.to_le_bytes());
        let bad = open(framed_bytes(KIND, [900, 2, 1000, 300], &body), 1000).unwrap();
        assert_eq!(bad.get(4), Some(rows[4]));
        assert_eq!(bad.get(5), None);
        let err = bad.verify().unwrap_err().to_string();
        assert!(err.contains("row 5: code 300 is past the palette of 300 rows"), "{err}");
    }

    #[test]
    fn verify_finds_bad_slots_and_reserved_bits() {
        let dir = tempfile::tempdir().unwrap();
        let row = HotRow { assets: AssetSet::EMPTY, severity: Severity::Low, slot: 1 };
        write(dir.path(), 2, &[row, HotRow { slot: 0, ..row }]);
        let damaged = |at: usize, value: u8| {
            let mut bytes = std::fs::read(dir.path().join(FILE_NAME)).unwrap();
            bytes[HEADER_LEN + at] = value;
            open(bytes, 2).unwrap().verify().unwrap_err().to_string()
        };
        let err = damaged(4 + 2, 2);
        assert!(err.contains("records.hot: damaged: row 1: source slot 2 is past the 2 sources"), "{err}");
        let err = damaged(1, 0x40);
        assert!(err.contains("row 0: reserved bits 14-15 are not zero"), "{err}");
    }

    /// Today's reader of raw files only (before the palette layout) refuses a palette
    /// file by its width: the check it makes is kept here as it was.
    #[test]
    fn a_reader_of_raw_rows_only_refuses_a_palette_file() {
        let dir = tempfile::tempdir().unwrap();
        let reader = write(dir.path(), 3, &[nth_row(0, 3); 8]);
        let [_, width, sources, _] = reader.view().params();
        assert!(reader.has_palette());
        assert_ne!(width, row_width(sources) as u64, "a raw-only reader would accept this width");
    }
}
