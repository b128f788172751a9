//! The build catalog (SPEC §3): which sources (breaches) exist, their metadata, and the
//! dump files of each. Loading validates everything a build needs before any work
//! starts: a bad catalog or a missing file is an error here, never half-way through.
//!
//! STUB: interface fixed, implementation pending.

use crate::date::Date;
use crate::severity::Severity;
use std::path::{Path, PathBuf};

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

/// One source (breach) of the catalog.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceSpec {
    /// Unique numeric id.
    pub id: u32,
    /// Unique slug.
    pub name: String,
    /// Human title.
    pub title: String,
    /// Breach date.
    pub date: Date,
    /// Description.
    pub description: String,
    /// Severity override for every record of the source.
    pub severity: Option<Severity>,
    /// When the source was added; the build date when absent.
    pub publish_date: Option<Date>,
    /// The dump files.
    pub files: Vec<DumpFile>,
}

/// A validated catalog.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Catalog {
    /// The catalog file.
    pub path: PathBuf,
    /// Sources in catalog order.
    pub sources: Vec<SourceSpec>,
}

/// Why a catalog cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CatalogError {
    /// Placeholder until implemented.
    #[error("catalog {path}: {reason}")]
    Invalid {
        /// The catalog file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

impl Catalog {
    /// Reads and validates a catalog file, and checks that every dump file exists, is a
    /// readable regular file, and (for CSV) has a usable header.
    pub fn load(path: &Path) -> Result<Catalog, CatalogError> {
        let _ = path;
        unimplemented!()
    }
}
