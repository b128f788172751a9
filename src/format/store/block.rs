//! The block codec of `records.store` (docs/FORMAT.md §3.10 "Block" and "Block
//! contents"): encoding the rows of one block into raw bytes, parsing raw bytes back
//! against the rows' asset bits, and the bounded zstd decoder. Pure functions of their
//! inputs (the fuzz target `store_block` calls them directly).

use super::{FILE_NAME, MAX_BLOCK_RAW};
use crate::asset::{Asset, AssetSet};
use crate::format::FormatError;
use std::ops::Range;
use zstd::zstd_safe::{self, DCtx, DDict, DParameter};

/// Magic number opening a zstd frame (RFC 8878 §3.1.1).
const ZSTD_MAGIC: u32 = 0xFD2F_B528;
/// Largest window a block frame may ask for: `MAX_BLOCK_RAW` is `1 << 21`.
const MAX_WINDOW_LOG: u32 = 21;
/// Bytes of a stored document id.
pub(crate) const DOC_ID_LEN: usize = 16;

/// Which identifier a row's key is, for the `v = 0` rule (§3.10): plain mode only;
/// [`Asset::Email`] for rows with an e-mail key (row `< email_rows`), [`Asset::Username`]
/// for username-only rows; always `None` in hashed modes.
pub type KeyAsset = Option<Asset>;

/// Which rows have a key usable for `v = 0`: plain mode, rows `< email_rows` →
/// [`Asset::Email`], rows `≥ email_rows` → [`Asset::Username`]; hashed modes: none.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyRule {
    /// Whether the index is in plain mode (keys are the normalized identifiers).
    pub plain: bool,
    /// Rows below this have an e-mail key; the rows from it on are username-only.
    pub email_rows: u64,
}

impl KeyRule {
    /// The identifier that is the key of row `row`, if the key is usable for `v = 0`.
    pub fn key_asset(&self, row: u64) -> KeyAsset {
        match (self.plain, row < self.email_rows) {
            (false, _) => None,
            (true, true) => Some(Asset::Email),
            (true, false) => Some(Asset::Username),
        }
    }
}

/// What the decoder needs to know of the rows of one block, from `records.hot` and the
/// manifest: the asset bits of each row, the stored set, and each row's key asset.
#[derive(Clone, Copy, Debug)]
pub struct BlockRows<'a> {
    /// Row id of the block's first row.
    pub first_row: u64,
    /// Asset bits of each row of the block (every asset the record holds, stored or not).
    pub bits: &'a [AssetSet],
    /// The index's stored assets (`manifest.stored_assets`).
    pub stored: AssetSet,
    /// Which rows have a key usable for `v = 0`.
    pub keys: KeyRule,
}

/// One stored identifier (e-mail or username) as the block holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdentValue<'a> {
    /// `v = 0`: byte for byte the row's key; the caller supplies the key.
    EqualsKey,
    /// `v` odd: already normalized (its own key).
    Normalized(&'a str),
    /// `v` even: as given, differs from its normalized form.
    AsGiven(&'a str),
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum CellKind {
    /// Not filled (never left so by a successful parse).
    #[default]
    Missing,
    /// A non-identifier value.
    Value,
    EqualsKey,
    Normalized,
    AsGiven,
}

/// Where one stored value of one row lies in the raw block.
#[derive(Clone, Copy, Debug, Default)]
struct Cell {
    start: u32,
    len: u32,
    kind: CellKind,
}

#[derive(Clone, Copy, Debug)]
struct RowCells {
    /// The row's stored assets (its bits ∩ the stored set): one cell each, in index order.
    held: AssetSet,
    /// Index of the row's first cell.
    cell_start: u32,
    /// Offset of the row's stored document id, if it has one.
    doc: Option<u32>,
}

/// A decompressed, parsed block (shared as `Arc<Block>`): every stored value of every
/// row located and checked (lengths in bounds, UTF-8), so the accessors are lookups.
#[derive(Debug)]
pub struct Block {
    raw: Vec<u8>,
    first_row: u64,
    rows: Vec<RowCells>,
    cells: Vec<Cell>,
}

impl Block {
    /// The row ids the block holds.
    pub fn rows(&self) -> Range<u64> {
        self.first_row..self.first_row.saturating_add(self.rows.len() as u64)
    }

    fn row(&self, row: u64) -> Result<&RowCells, FormatError> {
        row.checked_sub(self.first_row).and_then(|i| usize::try_from(i).ok()).and_then(|i| self.rows.get(i)).ok_or_else(
            || {
                let r = self.rows();
                FormatError::damaged(FILE_NAME, format!("row {row} is not in the block of rows {}", span(&r)))
            },
        )
    }

    /// The cell of `asset` in row `row`, `None` when the row holds no stored `asset`.
    fn cell(&self, row: u64, asset: Asset) -> Result<Option<(Cell, &str)>, FormatError> {
        let r = self.row(row)?;
        if !r.held.contains(asset) {
            return Ok(None);
        }
        let rank = (r.held.bits() & ((1u16 << asset.index()) - 1)).count_ones();
        let cell = self.cells.get(r.cell_start as usize + rank as usize).copied();
        let text = cell.and_then(|c| {
            let start = c.start as usize;
            std::str::from_utf8(self.raw.get(start..start + c.len as usize)?).ok()
        });
        match (cell, text) {
            (Some(c), Some(text)) if c.kind != CellKind::Missing => Ok(Some((c, text))),
            _ => Err(FormatError::damaged(FILE_NAME, format!("row {row}: no readable {asset} value"))),
        }
    }

    /// Stored value of a non-identifier asset of row `row` (`None`: absent or not
    /// stored). An identifier (`email`, `username`) is an error: read it with
    /// [`Block::ident`].
    pub fn value(&self, row: u64, asset: Asset) -> Result<Option<&str>, FormatError> {
        if asset.is_identifier() {
            return Err(FormatError::damaged(
                FILE_NAME,
                format!("{asset} is an identifier: read it with Block::ident"),
            ));
        }
        Ok(self.cell(row, asset)?.map(|(_, text)| text))
    }

    /// Stored e-mail / username of row `row` (`None`: absent or not stored). Any other
    /// asset is an error: read it with [`Block::value`].
    pub fn ident(&self, row: u64, asset: Asset) -> Result<Option<IdentValue<'_>>, FormatError> {
        if !asset.is_identifier() {
            return Err(FormatError::damaged(
                FILE_NAME,
                format!("{asset} is not an identifier: read it with Block::value"),
            ));
        }
        Ok(self.cell(row, asset)?.map(|(cell, text)| match cell.kind {
            CellKind::EqualsKey => IdentValue::EqualsKey,
            CellKind::Normalized => IdentValue::Normalized(text),
            _ => IdentValue::AsGiven(text),
        }))
    }

    /// The stored document id (rows whose assets are not all stored), else `None`.
    pub fn document_id(&self, row: u64) -> Result<Option<[u8; 16]>, FormatError> {
        let Some(at) = self.row(row)?.doc else { return Ok(None) };
        let at = at as usize;
        self.raw
            .get(at..at + DOC_ID_LEN)
            .and_then(|b| b.try_into().ok())
            .map(Some)
            .ok_or_else(|| FormatError::damaged(FILE_NAME, format!("row {row}: document id out of the block")))
    }

    /// The decompressed block size in bytes.
    pub fn raw_len(&self) -> usize {
        self.raw.len()
    }

    /// The decompressed block bytes.
    pub fn raw_bytes(&self) -> &[u8] {
        &self.raw
    }
}

/// `first-last` of a non-empty row range (inclusive, as error messages print it).
pub(crate) fn span(rows: &Range<u64>) -> String {
    format!("{}-{}", rows.start, rows.end.saturating_sub(1))
}

/// Parses decompressed block bytes (§3.10 "Block contents") against the rows' asset
/// bits. The bytes must be consumed exactly: a length past the end, trailing bytes, a
/// value that is not UTF-8, a non-minimal or longer than 5-byte varint, a `0` where
/// [`KeyRule`] gives no key for that asset, or a zero length for a non-identifier asset
/// is an error naming `records.store` and the rows. Never panics; allocates in
/// proportion to `raw` and `rows.bits` only.
pub fn parse_block(raw: Vec<u8>, rows: &BlockRows<'_>) -> Result<Block, FormatError> {
    let span = span(&(rows.first_row..rows.first_row.saturating_add(rows.bits.len() as u64)));
    parse(raw, rows).map_err(|reason| FormatError::damaged(FILE_NAME, format!("block of rows {span}: {reason}")))
}

/// [`parse_block`] with the reason alone, for callers that name the block themselves.
pub(crate) fn parse(raw: Vec<u8>, rows: &BlockRows<'_>) -> Result<Block, String> {
    if rows.bits.is_empty() {
        return Err("a block holds at least one row".into());
    }
    if raw.len() > MAX_BLOCK_RAW {
        return Err(format!("{} bytes is more than a block may hold ({MAX_BLOCK_RAW})", raw.len()));
    }
    let mut cells_total = 0usize;
    let mut row_cells = Vec::with_capacity(rows.bits.len().min(raw.len()));
    for bits in rows.bits {
        let held = bits.intersection(rows.stored);
        row_cells.push(RowCells { held, cell_start: cells_total as u32, doc: None });
        cells_total += held.len();
        // Every cell takes at least one byte (its varint): more cells than bytes is damage,
        // caught before allocating for them.
        if cells_total > raw.len() {
            return Err(format!("its {} bytes cannot hold the values of its rows", raw.len()));
        }
    }
    let mut cells = vec![Cell::default(); cells_total];
    let mut pos = 0usize;
    // Cells of the current asset, in row order: (row index, cell index).
    let mut section: Vec<(usize, usize)> = Vec::with_capacity(row_cells.len());
    let present = row_cells.iter().fold(AssetSet::EMPTY, |all, r| all.union(r.held));
    for asset in present.iter() {
        let below = (1u16 << asset.index()) - 1;
        section.clear();
        for (i, r) in row_cells.iter().enumerate() {
            if !r.held.contains(asset) {
                continue;
            }
            let c = r.cell_start as usize + (r.held.bits() & below).count_ones() as usize;
            let row = rows.first_row.saturating_add(i as u64);
            let at = pos;
            let v = read_varint(&raw, &mut pos).map_err(|e| format!("row {row}, {asset} length at byte {at}: {e}"))?;
            let (kind, len) = interpret(asset, v, rows.keys.key_asset(row)).map_err(|e| format!("row {row}: {e}"))?;
            *cells.get_mut(c).ok_or("cell index out of range")? = Cell { start: pos as u32, len, kind };
            section.push((i, c));
        }
        // The values of the asset lie back to back: check their bounds, then their UTF-8
        // in one pass over the section and a char boundary at each value's start.
        let values_start = pos;
        for &(i, c) in &section {
            let cell = cells.get_mut(c).ok_or("cell index out of range")?;
            let end = pos.checked_add(cell.len as usize).filter(|e| *e <= raw.len()).ok_or_else(|| {
                let row = rows.first_row.saturating_add(i as u64);
                format!(
                    "row {row}: {asset} value of {} bytes at byte {pos} runs past the end ({} bytes)",
                    cell.len,
                    raw.len()
                )
            })?;
            cell.start = pos as u32;
            pos = end;
        }
        let text = std::str::from_utf8(raw.get(values_start..pos).unwrap_or_default());
        for &(i, c) in &section {
            let start = cells.get(c).map_or(0, |cell| cell.start as usize);
            if !text.is_ok_and(|t| t.is_char_boundary(start - values_start)) {
                let row = rows.first_row.saturating_add(i as u64);
                return Err(format!("row {row}: {asset} value at byte {start} is not UTF-8"));
            }
        }
    }
    for (i, (bits, r)) in rows.bits.iter().zip(row_cells.iter_mut()).enumerate() {
        if bits.intersection(rows.stored) != *bits {
            if pos + DOC_ID_LEN > raw.len() {
                let row = rows.first_row.saturating_add(i as u64);
                return Err(format!("row {row}: document id at byte {pos} runs past the end ({} bytes)", raw.len()));
            }
            r.doc = Some(pos as u32);
            pos += DOC_ID_LEN;
        }
    }
    if pos != raw.len() {
        return Err(format!("{} trailing bytes after the last section (at byte {pos})", raw.len() - pos));
    }
    Ok(Block { raw, first_row: rows.first_row, rows: row_cells, cells })
}

/// The meaning of a row's `v` for `asset` (§3.10): the cell kind and the stored length.
fn interpret(asset: Asset, v: u32, key: KeyAsset) -> Result<(CellKind, u32), String> {
    if !asset.is_identifier() {
        return if v == 0 { Err(format!("zero length for {asset}")) } else { Ok((CellKind::Value, v)) };
    }
    match v {
        0 if key == Some(asset) => Ok((CellKind::EqualsKey, 0)),
        0 => Err(format!("{asset} marked as equal to the key, but the row has no {asset} key")),
        1 => Err(format!("empty {asset} value")),
        v if v % 2 == 1 => Ok((CellKind::Normalized, v / 2)),
        v => Ok((CellKind::AsGiven, v / 2)),
    }
}

/// Reads an unsigned LEB128 varint of at most 5 bytes, minimal, at most `u32::MAX`.
fn read_varint(raw: &[u8], pos: &mut usize) -> Result<u32, &'static str> {
    let mut value = 0u64;
    for i in 0..5 {
        let Some(&b) = raw.get(*pos + i) else { return Err("runs past the end of the block") };
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            if i > 0 && b == 0 {
                return Err("non-minimal varint");
            }
            *pos += i + 1;
            return u32::try_from(value).map_err(|_| "varint larger than 2^32 - 1");
        }
    }
    Err("varint longer than 5 bytes")
}

/// Appends `v` as an unsigned LEB128 varint.
pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u32) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Bytes [`put_varint`] writes for `v`.
pub(crate) fn varint_len(v: u32) -> usize {
    match v {
        0..0x80 => 1,
        0x80..0x4000 => 2,
        0x4000..0x20_0000 => 3,
        0x20_0000..0x1000_0000 => 4,
        _ => 5,
    }
}

/// The fields of a zstd frame header (RFC 8878 §3.1.1.1) that the decoder bounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FrameHeader {
    /// The declared decompressed size, if present.
    pub content_size: Option<u64>,
    /// The window the decoder would need.
    pub window_size: u64,
    /// Whether a content checksum follows the frame.
    pub checksum: bool,
    /// Whether the header names a dictionary id.
    pub dict_id: bool,
}

/// Parses the header of a zstd frame (not a skippable frame).
pub(crate) fn frame_header(frame: &[u8]) -> Result<FrameHeader, String> {
    let byte = |i: usize| frame.get(i).copied().ok_or_else(|| "the zstd frame header is truncated".to_string());
    let magic = frame.get(..4).and_then(|b| b.try_into().ok()).map(u32::from_le_bytes);
    if magic != Some(ZSTD_MAGIC) {
        return Err("not a zstd frame (bad magic)".into());
    }
    let fhd = byte(4)?;
    if fhd & 0x08 != 0 {
        return Err("zstd frame header has its reserved bit set".into());
    }
    let single_segment = fhd & 0x20 != 0;
    let mut pos = 5;
    let mut window_size = 0;
    if !single_segment {
        let wd = byte(pos)?;
        pos += 1;
        let log = 10 + u32::from(wd >> 3);
        let base = 1u64 << log;
        window_size = base + (base / 8) * u64::from(wd & 7);
    }
    pos += [0, 1, 2, 4][usize::from(fhd & 3)];
    let fcs_len = match fhd >> 6 {
        0 => usize::from(single_segment),
        1 => 2,
        2 => 4,
        _ => 8,
    };
    let content_size = if fcs_len == 0 {
        None
    } else {
        let mut buf = [0u8; 8];
        for (i, b) in buf.iter_mut().take(fcs_len).enumerate() {
            *b = byte(pos + i)?;
        }
        let v = u64::from_le_bytes(buf);
        Some(if fcs_len == 2 { v + 256 } else { v })
    };
    if single_segment {
        window_size = content_size.unwrap_or(0);
    }
    Ok(FrameHeader { content_size, window_size, checksum: fhd & 0x04 != 0, dict_id: fhd & 3 != 0 })
}

/// How a stored block is framed (docs/FORMAT.md §3.10 "Block"): the store header's
/// `layout` byte says which.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// `raw_len u32 LE ‖ zstd frame`: the store layouts 0 and 1 (the first version 2
    /// builds) and the blocks of the change feed.
    Prefixed,
    /// The zstd frame without its 4-byte magic number and without a dictionary id (the
    /// store's dictionary is the only one); the raw length is the frame's mandatory
    /// content size. 12 bytes less per block than [`Framing::Prefixed`].
    Trimmed,
}

/// Compresses one raw block into its stored form under `framing`, with a compressor
/// made by [`new_compressor`] for the same framing.
pub(crate) fn compress_block(
    compressor: &mut zstd::bulk::Compressor<'static>,
    raw: &[u8],
    framing: Framing,
) -> std::io::Result<Vec<u8>> {
    let frame = compressor.compress(raw)?;
    match framing {
        Framing::Prefixed => {
            let mut block = Vec::with_capacity(4 + frame.len());
            block.extend_from_slice(&(raw.len() as u32).to_le_bytes());
            block.extend_from_slice(&frame);
            Ok(block)
        }
        Framing::Trimmed => match frame.strip_prefix(&ZSTD_MAGIC.to_le_bytes()[..]) {
            Some(rest) => Ok(rest.to_vec()),
            None => Err(std::io::Error::other("zstd wrote a frame without its magic number")),
        },
    }
}

/// A block compressor at `level` with `dict` (empty: none): content size in every
/// frame, no checksum, and for [`Framing::Trimmed`] no dictionary id.
pub(crate) fn new_compressor(
    level: i32,
    dict: &[u8],
    framing: Framing,
) -> std::io::Result<zstd::bulk::Compressor<'static>> {
    use zstd::zstd_safe::CParameter;
    let mut c = zstd::bulk::Compressor::with_dictionary(level, dict)?;
    c.set_parameter(CParameter::ContentSizeFlag(true))?;
    c.set_parameter(CParameter::ChecksumFlag(false))?;
    c.set_parameter(CParameter::DictIdFlag(framing == Framing::Prefixed))?;
    Ok(c)
}

/// A reader thread's decoding state, reused for every block it reads.
#[derive(Default)]
struct Decoder {
    /// The decompression context, made on the first block.
    dctx: Option<DCtx<'static>>,
    /// A [`Framing::Trimmed`] block with its magic number put back in front.
    framed: Vec<u8>,
}

/// A trimmed block larger than this does not keep its buffer for the next one.
const FRAMED_KEEP: usize = 64 << 10;

thread_local! {
    /// One decoder per thread.
    static DECODER: std::cell::RefCell<Decoder> = std::cell::RefCell::new(Decoder::default());
}

/// Decompresses one stored block framed as `framing` with a bounded decoder: a single
/// frame that ends exactly at the block's end, its content size present and between 1
/// and `max_raw_len` (itself at most `MAX_BLOCK_RAW`) and, prefixed, equal to
/// `raw_len`; a window of at most 2 MiB, no checksum, and trimmed, no dictionary id.
/// The output buffer is exactly the content size, so a frame that wants more output
/// fails. Returns the raw block or why it is damaged.
pub(crate) fn decompress(
    block: &[u8],
    framing: Framing,
    max_raw_len: usize,
    dict: Option<&DDict<'_>>,
) -> Result<Vec<u8>, String> {
    let max = max_raw_len.min(MAX_BLOCK_RAW);
    DECODER.with(|cell| {
        let mut decoder = cell.borrow_mut();
        let Decoder { dctx, framed } = &mut *decoder;
        let frame = match framing {
            Framing::Prefixed => {
                let Some((len, frame)) = block.split_first_chunk::<4>() else {
                    return Err(format!(
                        "{} bytes is too short for a block (a 4-byte length and a zstd frame)",
                        block.len()
                    ));
                };
                let raw_len = u32::from_le_bytes(*len) as usize;
                if raw_len == 0 || raw_len > max {
                    return Err(format!("raw length {raw_len} is outside 1..={max}"));
                }
                let declared = frame_header(frame)?.content_size;
                if declared != Some(raw_len as u64) {
                    return Err(match declared {
                        None => "the zstd frame does not declare its content size".to_string(),
                        Some(n) => format!("the zstd frame declares {n} bytes, the block {raw_len}"),
                    });
                }
                frame
            }
            Framing::Trimmed => {
                framed.clear();
                framed.extend_from_slice(&ZSTD_MAGIC.to_le_bytes());
                framed.extend_from_slice(block);
                &framed[..]
            }
        };
        let raw_len = checked_frame(frame, framing, max)?;
        let mut out = vec![0u8; raw_len];
        if dctx.is_none() {
            let mut new = DCtx::try_create().ok_or("cannot create a zstd decompression context")?;
            new.set_parameter(DParameter::WindowLogMax(MAX_WINDOW_LOG))
                .map_err(|code| format!("zstd: {}", zstd_safe::get_error_name(code)))?;
            *dctx = Some(new);
        }
        let dctx = dctx.as_mut().ok_or("no zstd decompression context")?;
        let done = match dict {
            Some(d) => dctx.decompress_using_ddict(&mut out[..], frame, d),
            None => dctx.decompress(&mut out[..], frame),
        };
        if framed.capacity() > FRAMED_KEEP {
            *framed = Vec::new();
        }
        match done.map_err(|code| format!("zstd: {}", zstd_safe::get_error_name(code)))? {
            n if n == raw_len => Ok(out),
            n => Err(format!("the zstd frame decompressed to {n} bytes, not {raw_len}")),
        }
    })
}

/// Checks a whole zstd frame (magic included) before decoding it: the content size
/// present and in `1..=max`, the window at most 2 MiB, no checksum, no dictionary id
/// when trimmed, and the frame ending exactly at the end of `frame`. Returns the
/// content size.
fn checked_frame(frame: &[u8], framing: Framing, max: usize) -> Result<usize, String> {
    let header = frame_header(frame)?;
    let raw_len = match header.content_size {
        None => return Err("the zstd frame does not declare its content size".into()),
        Some(n) if n == 0 || n > max as u64 => return Err(format!("content size {n} is outside 1..={max}")),
        Some(n) => n as usize,
    };
    if header.window_size > 1 << MAX_WINDOW_LOG {
        return Err(format!(
            "the zstd frame asks for a {} byte window (at most {})",
            header.window_size,
            1 << MAX_WINDOW_LOG
        ));
    }
    if header.checksum {
        return Err("the zstd frame carries a checksum (the format has none)".into());
    }
    if header.dict_id && framing == Framing::Trimmed {
        return Err("the zstd frame names a dictionary id (a trimmed block has none)".into());
    }
    match zstd_safe::find_frame_compressed_size(frame) {
        Ok(n) if n == frame.len() => Ok(raw_len),
        Ok(n) => Err(format!("{} bytes after the zstd frame ({n} bytes)", frame.len() - n)),
        Err(code) => Err(format!("damaged zstd frame ({})", zstd_safe::get_error_name(code))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(list: &str) -> AssetSet {
        AssetSet::parse_list(list).unwrap()
    }

    #[test]
    fn varints_round_trip_and_reject_bad_encodings() {
        for v in [0u32, 1, 127, 128, 300, 16_383, 16_384, 1 << 21, (1 << 28) - 1, 1 << 28, u32::MAX] {
            let mut buf = Vec::new();
            put_varint(&mut buf, v);
            assert_eq!(buf.len(), varint_len(v), "{v}");
            let mut pos = 0;
            assert_eq!(read_varint(&buf, &mut pos), Ok(v));
            assert_eq!(pos, buf.len());
        }
        for bad in
            [&[0x80u8, 0x00][..], &[0xff, 0xff, 0xff, 0xff, 0xff, 0x01], &[0xff, 0xff, 0xff, 0xff, 0x1f], &[0x80]]
        {
            assert!(read_varint(bad, &mut 0).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn parse_reads_sections_and_rejects_damage() {
        let stored = set("email,password_plaintext");
        let bits = [set("email,password_plaintext"), set("email,username")];
        let keys = KeyRule { plain: true, email_rows: 10 };
        let rows = BlockRows { first_row: 4, bits: &bits, stored, keys };
        // email: row 4 equals the key (0), row 5 "A@b" as given (6); values "A@b";
        // password: row 4 "pw" (2); then row 5's document id (username not stored).
        let mut raw = vec![0, 6];
        raw.extend_from_slice(b"A@b");
        raw.push(2);
        raw.extend_from_slice(b"pw");
        raw.extend_from_slice(&[7; 16]);
        let block = parse_block(raw.clone(), &rows).unwrap();
        assert_eq!(block.rows(), 4..6);
        assert_eq!(block.ident(4, Asset::Email).unwrap(), Some(IdentValue::EqualsKey));
        assert_eq!(block.ident(5, Asset::Email).unwrap(), Some(IdentValue::AsGiven("A@b")));
        assert_eq!(block.ident(5, Asset::Username).unwrap(), None);
        assert_eq!(block.value(4, Asset::PasswordPlaintext).unwrap(), Some("pw"));
        assert_eq!(block.value(5, Asset::PasswordPlaintext).unwrap(), None);
        assert_eq!(block.document_id(4).unwrap(), None);
        assert_eq!(block.document_id(5).unwrap(), Some([7; 16]));
        assert!(block.value(6, Asset::Phone).is_err());
        assert!(block.value(4, Asset::Email).is_err());

        let mut trailing = raw.clone();
        trailing.push(0);
        let err = parse_block(trailing, &rows).unwrap_err().to_string();
        assert!(err.contains("records.store") && err.contains("rows 4-5") && err.contains("trailing"), "{err}");
        assert!(parse_block(raw[..raw.len() - 1].to_vec(), &rows).is_err());
        let hashed = BlockRows { keys: KeyRule { plain: false, email_rows: 10 }, ..rows };
        assert!(parse_block(raw.clone(), &hashed).unwrap_err().to_string().contains("no email key"));
        let username_rows = BlockRows { keys: KeyRule { plain: true, email_rows: 0 }, ..rows };
        assert!(parse_block(raw.clone(), &username_rows).is_err());
        let mut zero_len = raw.clone();
        zero_len[5] = 0;
        assert!(parse_block(zero_len, &rows).unwrap_err().to_string().contains("zero length"));
        let mut not_utf8 = raw.clone();
        not_utf8[2] = 0xff;
        assert!(parse_block(not_utf8, &rows).unwrap_err().to_string().contains("UTF-8"));
        assert!(parse_block(raw, &BlockRows { bits: &[], ..rows }).is_err());
    }

    #[test]
    fn frame_header_fields() {
        let frame = zstd::bulk::compress(b"hello hello hello", 2).unwrap();
        let h = frame_header(&frame).unwrap();
        assert_eq!(h.content_size, Some(17));
        assert!(!h.checksum);
        assert!(frame_header(&frame[..4]).is_err());
        assert!(frame_header(b"\x50\x2a\x4d\x18\0\0\0\0").is_err());
    }

    #[test]
    fn decompress_is_bounded() {
        let raw = b"some block bytes, some block bytes".to_vec();
        let frame = zstd::bulk::compress(&raw, 2).unwrap();
        let mut block = (raw.len() as u32).to_le_bytes().to_vec();
        block.extend_from_slice(&frame);
        let prefixed = |b: &[u8], max: usize| decompress(b, Framing::Prefixed, max, None);
        assert_eq!(prefixed(&block, MAX_BLOCK_RAW).unwrap(), raw);
        // raw_len above the file's maximum, zero, or different from the frame's size.
        assert!(prefixed(&block, raw.len() - 1).unwrap_err().contains("outside"));
        let mut other = block.clone();
        other[..4].copy_from_slice(&5u32.to_le_bytes());
        assert!(prefixed(&other, MAX_BLOCK_RAW).unwrap_err().contains("declares"));
        other[..4].copy_from_slice(&0u32.to_le_bytes());
        assert!(prefixed(&other, MAX_BLOCK_RAW).is_err());
        // Bytes after the frame.
        let mut trailing = block.clone();
        trailing.extend_from_slice(&frame);
        assert!(prefixed(&trailing, MAX_BLOCK_RAW).unwrap_err().contains("after the zstd frame"));
        assert!(prefixed(&block[..3], MAX_BLOCK_RAW).is_err());
    }

    /// A dictionary trained on blocks like `sample(i)`.
    fn sample(i: usize) -> Vec<u8> {
        format!("user{i}@mail{}.example pass{}word{} name{}", i % 7, i * 13 % 17, i, i % 11)
            .repeat(1 + i % 3)
            .into_bytes()
    }

    #[test]
    fn both_framings_round_trip_with_and_without_a_dictionary() {
        let samples: Vec<Vec<u8>> = (0..200).map(sample).collect();
        let dict = zstd::dict::from_samples(&samples, 4096).unwrap();
        let ddict = DDict::try_create(&dict).unwrap();
        let long = sample(1).repeat(40);
        for (dict, ddict) in [(&[][..], None), (&dict[..], Some(&ddict))] {
            for raw in [sample(3), sample(500), vec![b'x'], long.clone()] {
                let mut sizes = Vec::new();
                for framing in [Framing::Prefixed, Framing::Trimmed] {
                    let mut c = new_compressor(2, dict, framing).unwrap();
                    let stored = compress_block(&mut c, &raw, framing).unwrap();
                    assert_eq!(decompress(&stored, framing, raw.len(), ddict).unwrap(), raw);
                    // The other framing does not read it.
                    let other = [Framing::Trimmed, Framing::Prefixed][usize::from(framing == Framing::Trimmed)];
                    assert!(decompress(&stored, other, MAX_BLOCK_RAW, ddict).is_err());
                    sizes.push(stored.len());
                }
                // raw_len (4), the magic (4) and, with a dictionary, its id (4) are gone.
                let saved = if dict.is_empty() { 8 } else { 12 };
                assert_eq!(sizes[0] - sizes[1], saved, "{} raw bytes", raw.len());
            }
        }
    }

    /// `raw` compressed by zstd's own defaults with `params`, as a trimmed block.
    fn trimmed_with(raw: &[u8], params: &[zstd_safe::CParameter]) -> Vec<u8> {
        let mut c = zstd::bulk::Compressor::new(2).unwrap();
        for p in params {
            c.set_parameter(*p).unwrap();
        }
        c.compress(raw).unwrap()[4..].to_vec()
    }

    #[test]
    fn trimmed_blocks_refuse_damage() {
        use zstd_safe::CParameter;
        let raw = sample(7).repeat(3);
        let good = trimmed_with(&raw, &[CParameter::DictIdFlag(false)]);
        let trimmed = |b: &[u8], max: usize| decompress(b, Framing::Trimmed, max, None);
        assert_eq!(trimmed(&good, raw.len()).unwrap(), raw);
        // Truncated frame header, and an empty block.
        for cut in 0..3 {
            let err = trimmed(&good[..cut], MAX_BLOCK_RAW).unwrap_err();
            assert!(err.contains("truncated") || err.contains("damaged zstd frame"), "{cut}: {err}");
        }
        // Content size above max_raw_len, and the frame cut short or followed by bytes.
        assert!(trimmed(&good, raw.len() - 1).unwrap_err().contains("outside"));
        assert!(trimmed(&good[..good.len() - 1], MAX_BLOCK_RAW).unwrap_err().contains("damaged zstd frame"));
        let mut trailing = good.clone();
        trailing.push(0);
        assert!(trimmed(&trailing, MAX_BLOCK_RAW).unwrap_err().contains("after the zstd frame"));
        // No content size.
        let no_size = trimmed_with(&raw, &[CParameter::ContentSizeFlag(false)]);
        assert!(trimmed(&no_size, MAX_BLOCK_RAW).unwrap_err().contains("does not declare its content size"));
        // Content size 0 (an empty frame).
        let empty = trimmed_with(&[], &[]);
        assert!(trimmed(&empty, MAX_BLOCK_RAW).unwrap_err().contains("content size 0"));
        // A checksum.
        let summed = trimmed_with(&raw, &[CParameter::ChecksumFlag(true)]);
        assert!(trimmed(&summed, MAX_BLOCK_RAW).unwrap_err().contains("checksum"));
        // A dictionary id (what a prefixed writer puts in): refused, never looked up.
        let samples: Vec<Vec<u8>> = (0..200).map(sample).collect();
        let dict = zstd::dict::from_samples(&samples, 4096).unwrap();
        let mut c = new_compressor(2, &dict, Framing::Prefixed).unwrap();
        let with_id = c.compress(&raw).unwrap()[4..].to_vec();
        let ddict = DDict::try_create(&dict).unwrap();
        let err = decompress(&with_id, Framing::Trimmed, MAX_BLOCK_RAW, Some(&ddict)).unwrap_err();
        assert!(err.contains("dictionary id"), "{err}");
        // A 128 MiB window (log 27) for a 300-byte block: header 0x40 (2-byte content
        // size, no single segment), window descriptor, content size, then a raw block.
        let mut wide = vec![0x40, (27 - 10) << 3];
        wide.extend_from_slice(&(300u16 - 256).to_le_bytes());
        wide.extend_from_slice(&[1, 0, 0]);
        assert!(trimmed(&wide, MAX_BLOCK_RAW).unwrap_err().contains("window"));
        // A decompression bomb: 2^40 bytes declared.
        let mut bomb = vec![0xe0];
        bomb.extend_from_slice(&(1u64 << 40).to_le_bytes());
        bomb.extend_from_slice(&[0; 8]);
        assert!(trimmed(&bomb, MAX_BLOCK_RAW).unwrap_err().contains("outside"));
        // A magic number kept in front is not a trimmed block.
        let mut with_magic = ZSTD_MAGIC.to_le_bytes().to_vec();
        with_magic.extend_from_slice(&good);
        assert!(trimmed(&with_magic, MAX_BLOCK_RAW).is_err());
    }
}
