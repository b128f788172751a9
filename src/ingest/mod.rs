//! Dump ingestion (SPEC §3): reading dump files of every format into framed raw records
//! (sequential, in a reader thread), parsing each framed record into asset fields and
//! validating them (parallel, in the workers), and the rejects file that receives every
//! line or field that could not be used.
//!
//! The split matters for speed and for bounded memory: framing is the only sequential
//! step and never holds more than one record of at most [`MAX_RECORD_BYTES`]; everything
//! costly runs in parallel on batches.
//!
//! STUB: interface fixed, implementation pending.

use crate::asset::{Asset, ASSET_COUNT};
use crate::catalog::DumpFile;
use std::borrow::Cow;
use std::path::PathBuf;

/// Longest accepted record (a physical line, or a CSV record spanning lines), in bytes.
pub const MAX_RECORD_BYTES: usize = 1 << 20;
/// How many bytes of a rejected line are kept in the rejects file.
pub const MAX_REJECT_RAW_BYTES: usize = 4096;

/// What a frame holds.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum FrameKind {
    /// A complete record (line ends removed).
    Record,
    /// A record longer than [`MAX_RECORD_BYTES`]: the frame holds only its first bytes.
    TooLong {
        /// Full length in bytes.
        total_len: u64,
    },
}

/// One framed record inside a [`FrameBatch`].
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// 1-based physical line number where the record starts.
    pub line: u64,
    /// Number of physical lines the record spans (≥ 1).
    pub lines: u32,
    /// Byte range in [`FrameBatch::data`].
    pub start: usize,
    /// End of the byte range (exclusive).
    pub end: usize,
    /// Complete or cut.
    pub kind: FrameKind,
}

/// A batch of framed records of one file.
#[derive(Clone, Debug, Default)]
pub struct FrameBatch {
    /// Record bytes, back to back.
    pub data: Vec<u8>,
    /// The records, in file order.
    pub frames: Vec<Frame>,
}

/// Why a dump file cannot be read at all.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IngestError {
    /// An I/O error while reading.
    #[error("{path}: {source}")]
    Io {
        /// The file (as written in the catalog).
        path: String,
        /// The error.
        source: std::io::Error,
    },
}

/// Raw asset values of one record, as parsed, before validation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RawFields<'a> {
    /// Value per asset (index = `Asset::index()`); `None` when absent or empty.
    pub values: [Option<Cow<'a, str>>; ASSET_COUNT],
}

/// Parses framed records of one file into asset fields. Cheap to clone and share.
#[derive(Clone, Debug)]
pub struct RecordParser {
    _private: (),
}

impl RecordParser {
    /// Parses one framed record; `Err` carries the reason the line is rejected.
    pub fn parse<'a>(&self, record: &'a [u8]) -> Result<RawFields<'a>, String> {
        let _ = record;
        unimplemented!()
    }
}

/// Reads one dump file as batches of framed records.
pub struct DumpReader {
    _private: (),
}

impl DumpReader {
    /// Opens a dump file (through gzip when compressed), skips a UTF-8 BOM and, for CSV
    /// with a header row, reads and maps the header.
    pub fn open(file: &DumpFile) -> Result<DumpReader, IngestError> {
        let _ = file;
        unimplemented!()
    }

    /// The parser for this file's records.
    pub fn parser(&self) -> RecordParser {
        unimplemented!()
    }

    /// Columns (CSV) of this file that name no asset, to report once.
    pub fn unknown_columns(&self) -> &[String] {
        unimplemented!()
    }

    /// Bytes of the file consumed so far (compressed bytes for `.gz`), for progress.
    pub fn bytes_read(&self) -> u64 {
        unimplemented!()
    }

    /// The next batch of about `target_bytes` of records, `None` at the end.
    pub fn next_batch(&mut self, target_bytes: usize) -> Result<Option<FrameBatch>, IngestError> {
        let _ = target_bytes;
        unimplemented!()
    }
}

/// A record that passed validation: trimmed values and normalized keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidRecord<'a> {
    /// Trimmed value per asset; invalid fields removed.
    pub values: [Option<Cow<'a, str>>; ASSET_COUNT],
    /// Normalized e-mail key, when the record has a valid e-mail.
    pub email_key: Option<Cow<'a, str>>,
    /// Normalized username key, when the record has a valid username.
    pub username_key: Option<Cow<'a, str>>,
}

/// A field removed from a record by validation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldReject {
    /// Which asset.
    pub asset: Asset,
    /// Why.
    pub reason: String,
    /// The value as given.
    pub value: String,
}

/// Validates parsed fields. `Ok` when at least one identifier is valid (with the fields
/// that were removed); `Err` with the reason when no valid identifier remains.
pub fn validate<'a>(fields: RawFields<'a>) -> (Result<ValidRecord<'a>, String>, Vec<FieldReject>) {
    let _ = fields;
    unimplemented!()
}

/// One entry of the rejects file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reject {
    /// The dump file, as written in the catalog.
    pub file: String,
    /// 1-based line number where the record starts.
    pub line: u64,
    /// Why.
    pub reason: String,
    /// The rejected field, for a field-level reject.
    pub field: Option<Asset>,
    /// The raw bytes (at most [`MAX_REJECT_RAW_BYTES`]).
    pub raw: Vec<u8>,
    /// Full length of the raw line in bytes.
    pub raw_len: u64,
}

/// Writes the rejects file (JSON Lines).
pub struct RejectsWriter {
    _private: (),
}

impl RejectsWriter {
    /// Creates (truncates) the rejects file.
    pub fn create(path: PathBuf) -> std::io::Result<RejectsWriter> {
        let _ = path;
        unimplemented!()
    }

    /// Appends one reject.
    pub fn write(&mut self, reject: &Reject) -> std::io::Result<()> {
        let _ = reject;
        unimplemented!()
    }

    /// Flushes and closes; returns how many rejects were written.
    pub fn finish(self) -> std::io::Result<u64> {
        unimplemented!()
    }
}
