//! Dump ingestion (SPEC §3): reading dump files of every format into framed raw records
//! (sequential, in a reader thread), parsing each framed record into asset fields and
//! validating them (parallel, in the workers), and the rejects file that receives every
//! line or field that could not be used.
//!
//! The split matters for speed and for bounded memory: framing is the only sequential
//! step and never holds more than one record of at most [`MAX_RECORD_BYTES`]; everything
//! costly runs in parallel on batches.
//!
//! The stages, one module each:
//! - `dump`: what a dump file is ([`DumpFile`], [`DumpFormat`], [`Compression`]), as the
//!   catalog names it;
//! - `framing`: bytes → [`Frame`]s (physical lines; CSV records across quoted newlines);
//! - `reader`: opening a [`DumpFile`] (gzip, BOM, CSV header) and batching frames
//!   ([`DumpReader`]);
//! - `csv`, `jsonl`, `combo`: one parser per format behind [`RecordParser`];
//! - `validate`: trimming, key normalization and field checks ([`validate`]);
//! - `rejects`: the rejects file ([`RejectsWriter`], [`escape_raw`]).

mod combo;
mod csv;
mod dump;
mod framing;
mod jsonl;
mod parse;
mod reader;
mod rejects;
mod validate;

pub use dump::{Compression, DumpFile, DumpFormat};
pub use parse::RecordParser;
pub use reader::DumpReader;
pub use rejects::{Reject, RejectsWriter};
#[cfg(test)]
use validate::FieldReject;
pub use validate::validate;

use crate::asset::{ASSET_COUNT, Asset};
use std::borrow::Cow;

/// Longest accepted record (a physical line, or a CSV record spanning lines), in bytes,
/// line end excluded.
pub const MAX_RECORD_BYTES: usize = 1 << 20;
/// Unknown JSON Lines keys noted per record (the rest are skipped unnoted).
pub const MAX_UNKNOWN_KEYS_PER_RECORD: usize = 8;
/// How many bytes of a rejected line are kept in the rejects file.
pub const MAX_REJECT_RAW_BYTES: usize = 4096;

/// What a frame holds.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum FrameKind {
    /// A complete record (line ends removed).
    Record,
    /// A record longer than [`MAX_RECORD_BYTES`]: the frame holds only its first
    /// [`MAX_REJECT_RAW_BYTES`] bytes. It is never parsed: it goes to the rejects file
    /// with [`FrameKind::reject_reason`].
    TooLong {
        /// Full length in bytes (line end excluded).
        total_len: u64,
    },
}

impl FrameKind {
    /// The rejects-file reason for a frame that cannot be parsed at all (`None` for a
    /// complete record, which must go through [`RecordParser::parse`]).
    pub fn reject_reason(self) -> Option<String> {
        match self {
            FrameKind::Record => None,
            FrameKind::TooLong { total_len } => {
                Some(format!("record is {total_len} bytes long, more than the {MAX_RECORD_BYTES} allowed"))
            }
        }
    }
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

#[cfg(test)]
impl Frame {
    /// Full length of the record in bytes, line end excluded (more than the bytes held
    /// for a [`FrameKind::TooLong`] frame).
    pub fn raw_len(&self) -> u64 {
        match self.kind {
            FrameKind::Record => self.end.saturating_sub(self.start) as u64,
            FrameKind::TooLong { total_len } => total_len,
        }
    }
}

/// A batch of framed records of one file.
#[derive(Clone, Debug, Default)]
pub struct FrameBatch {
    /// Record bytes, back to back.
    pub data: Vec<u8>,
    /// The records, in file order.
    pub frames: Vec<Frame>,
}

impl FrameBatch {
    /// The bytes of one frame of this batch (empty when the frame is not from this batch).
    pub fn bytes(&self, frame: &Frame) -> &[u8] {
        self.data.get(frame.start..frame.end).unwrap_or_default()
    }
}

/// Why a dump file cannot be read (at all, or from some line on).
///
/// Messages name the file as written in the catalog; the underlying I/O or gzip error is
/// the [`std::error::Error::source`], so print the whole chain.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IngestError {
    /// The file cannot be opened (missing, no permission, ...).
    #[error("{path}: cannot open the file")]
    Open {
        /// The file (as written in the catalog).
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// The path names a directory, a device or another non-regular file.
    #[error("{path}: is {kind}, not a regular file")]
    NotRegularFile {
        /// The file (as written in the catalog).
        path: String,
        /// What it is instead (`a directory`, `a device, pipe or socket`).
        kind: &'static str,
    },
    /// The file starts with a UTF-16 byte order mark.
    #[error("{path}: starts with a UTF-16 byte order mark; UTF-16 is not supported, convert the file to UTF-8")]
    Utf16 {
        /// The file (as written in the catalog).
        path: String,
    },
    /// An I/O error while reading; nothing from `line` on was read.
    #[error("{path}: read error at line {line}; the rest of the file was not read")]
    Io {
        /// The file (as written in the catalog).
        path: String,
        /// 1-based physical line being read when the error happened.
        line: u64,
        /// The error.
        source: std::io::Error,
    },
    /// Corrupt or truncated gzip data; nothing from `line` on was read.
    #[error("{path}: gzip data is corrupt or truncated at line {line}; the rest of the file was not read")]
    Gzip {
        /// The file (as written in the catalog).
        path: String,
        /// 1-based physical line being read when the error happened.
        line: u64,
        /// The decoder's error.
        source: std::io::Error,
    },
    /// The CSV header row cannot be read.
    #[error("{path}: cannot read the CSV header row (line {line}): {reason}")]
    BadHeader {
        /// The file (as written in the catalog).
        path: String,
        /// 1-based line of the header.
        line: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// Two columns name the same asset.
    #[error("{path}: columns '{first}' and '{second}' both name the asset {asset}; rename or remove one of them")]
    DuplicateColumn {
        /// The file (as written in the catalog).
        path: String,
        /// The asset named twice.
        asset: Asset,
        /// The first column naming it.
        first: String,
        /// The second column naming it.
        second: String,
    },
    /// No column is an identifier, and one column looks like several joined by another
    /// delimiter than the file was read with.
    #[error(
        "{path}: no column names an identifier, but the header column '{column}' looks like several columns separated by {}; add \"delimiter\": \"{}\" to this file in the catalog",
        delimiter_name(*delimiter),
        delimiter_option(*delimiter)
    )]
    WrongDelimiter {
        /// The file (as written in the catalog).
        path: String,
        /// The header column holding the other delimiter.
        column: String,
        /// The delimiter that seems to separate its parts.
        delimiter: char,
    },
    /// No column is an identifier, so no record could ever be kept.
    #[error("{path}: no column names an identifier (email or username); the columns are [{}]; rename a column (e.g. to 'email') or give \"columns\" in the catalog", columns.join(", "))]
    NoIdentifierColumn {
        /// The file (as written in the catalog).
        path: String,
        /// The columns found.
        columns: Vec<String>,
    },
}

/// How a message names a delimiter.
fn delimiter_name(d: char) -> String {
    match d {
        '\t' => "tabs".to_owned(),
        d => format!("'{d}'"),
    }
}

/// The catalog's `"delimiter"` value for a delimiter.
fn delimiter_option(d: char) -> String {
    match d {
        '\t' => "tab".to_owned(),
        d => d.to_string(),
    }
}

impl IngestError {
    /// The 1-based line where reading stopped, for errors that happen mid-file.
    pub fn line(&self) -> Option<u64> {
        match self {
            IngestError::Io { line, .. } | IngestError::Gzip { line, .. } => Some(*line),
            _ => None,
        }
    }
}

/// Raw asset values of one record, as parsed, before validation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RawFields<'a> {
    /// Value per asset (index = `Asset::index()`); `None` when absent or empty.
    pub values: [Option<Cow<'a, str>>; ASSET_COUNT],
    /// JSON Lines keys naming no asset (each at most once per record, at most
    /// [`MAX_UNKNOWN_KEYS_PER_RECORD`]); always empty for CSV, whose unknown columns are
    /// known from the header ([`DumpReader::unknown_columns`]).
    pub unknown_keys: Vec<Cow<'a, str>>,
}

#[cfg(test)]
impl RawFields<'_> {
    /// The value of one asset (tests read parsed fields through it).
    pub fn get(&self, asset: Asset) -> Option<&str> {
        self.values[asset.index()].as_deref()
    }
}

#[cfg(test)]
mod proptests;
