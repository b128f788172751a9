//! What a dump file is: its path, format, compression and CSV options. The catalog
//! describes dump files with these types; the reader opens them.

use std::path::PathBuf;

/// Format of one dump file.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum DumpFormat {
    /// RFC 4180 CSV with a header row (or catalog-given `columns`).
    Csv,
    /// One JSON object per line.
    Jsonl,
    /// `identifier:password` per line.
    Combo,
}

impl DumpFormat {
    /// The catalog name (`csv`, `jsonl`, `combo`).
    pub const fn name(self) -> &'static str {
        match self {
            DumpFormat::Csv => "csv",
            DumpFormat::Jsonl => "jsonl",
            DumpFormat::Combo => "combo",
        }
    }

    /// Parses a catalog `format` value (case-insensitive; `ndjson` = `jsonl`).
    pub fn parse(text: &str) -> Option<DumpFormat> {
        match text.to_ascii_lowercase().as_str() {
            "csv" => Some(DumpFormat::Csv),
            "jsonl" | "ndjson" => Some(DumpFormat::Jsonl),
            "combo" => Some(DumpFormat::Combo),
            _ => None,
        }
    }
}

/// Compression of one dump file, from its name.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Compression {
    /// Read as is.
    None,
    /// `.gz`: read through gzip, streaming.
    Gzip,
}

/// One dump file of a source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DumpFile {
    /// The path as written in the catalog (used in messages and rejects).
    pub display: String,
    /// The path resolved against the catalog's directory.
    pub path: PathBuf,
    /// Format, given or inferred from the extension.
    pub format: DumpFormat,
    /// Compression, inferred from the extension.
    pub compression: Compression,
    /// CSV field delimiter (`,` by default; `;`, tab or `|`).
    pub delimiter: u8,
    /// Column names for a CSV without a header row.
    pub columns: Option<Vec<String>>,
}
