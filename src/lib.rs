//! # breachdex
//!
//! An embedded breach-lookup engine: an offline builder turns breach dumps into a
//! compact immutable index directory, and a zero-copy reader answers e-mail and
//! username lookups from memory-mapped files in about a microsecond.
//!
//! Data flows one way: dump files → records → sorted runs → index files → reader →
//! results. See the README for a tour and `docs/FORMAT.md` for the byte layout.
//!
//! Everything an embedder uses is exported at the crate root: opening and querying
//! ([`Index`], [`Query`], [`Index::check`], [`Index::records`] with an [`AssetPolicy`]),
//! following published builds ([`IndexHandle`]), checking integrity ([`verify`]), building
//! ([`build_index`] from a [`Catalog`]), keys ([`HashMode`], [`Salt`], [`KeyDeriver`]) and
//! the manifest ([`read_manifest`], [`manifest`]). The modules themselves are private; the
//! hidden `internals` module is for the project's own benchmarks, fuzz targets and tools and
//! is not a stable API.
//!
//! ```no_run
//! use breachdex::{BuildOptions, Catalog, Index, OpenOptions, Query, UnixTime, build_index};
//! use std::path::Path;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let catalog = Catalog::load(Path::new("testdata/sample/catalog.json"))?;
//! let summary = build_index(&catalog, Path::new("sample-index"), &BuildOptions::default())?;
//! println!("{} records kept, {} rejected", summary.kept, summary.rejected_records);
//!
//! let index = Index::open(Path::new("sample-index"), &OpenOptions::default())?;
//! let result = index.check(&Query::Email("USER@Example.com"), UnixTime::now())?;
//! for breach in &result.breaches {
//!     println!("{} {} ({} records)", breach.source, breach.severity, breach.records);
//! }
//! // Records are read in place from the mapped files.
//! for row in index.lookup_email("user@example.com")? {
//!     let record = index.record(row)?;
//!     let password: Option<&str> = record.get(breachdex::Asset::PasswordPlaintext)?;
//!     println!("{} {:?}", record.document_id(), password);
//! }
//! # Ok(())
//! # }
//! ```

#![deny(unsafe_code)]
#![warn(missing_docs)]
#![warn(unnameable_types)]

mod asset;
mod build;
mod catalog;
mod date;
mod format;
mod fuzzing;
mod generation;
mod handle;
mod index;
mod ingest;
mod keymode;
mod mmap;
mod monitor;
mod normalize;
mod password;
mod query;
mod severity;
mod splitmix;
mod upgrade;

#[doc(hidden)]
pub mod internals;

// Assets, dates, severity.
pub use asset::{ASSET_COUNT, Asset, AssetSet, UnknownAssetError, data_classes_of};
pub use date::{Date, DateParseError, UnixTime, now_unix_seconds, rfc3339_utc};
pub use severity::Severity;

// Keys: normalization and hash modes.
pub use keymode::{DeriverError, HashMode, Key, KeyDeriver, Salt, SaltError, to_hex};
pub use normalize::{
    KeyError, MAX_EMAIL_BYTES, MAX_USERNAME_BYTES, normalize_domain, normalize_email, normalize_username,
};

// Reading: open, look up, verify.
pub use format::FormatError;
pub use format::rows::{Row, RowId};
pub use index::{
    IdentifierKind, Index, LookupError, Matches, OpenError, OpenOptions, Query, RecordView, RowMeta, SourceInfo,
    VerifyReport, read_manifest, verify,
};

// Passwords: the Pwned Passwords-style index of password hashes.
pub use format::passwords::{PasswordEntry, PasswordRange, Passwords};
pub use password::{PasswordError, PasswordHash, PasswordHashKind, PasswordPrefix};
pub use query::{PADDED_RANGE_MAX_LINES, PADDED_RANGE_MIN_LINES, RangeTextSummary};

// Querying: breach checks and records under an asset policy.
pub use query::{
    AssetPolicy, AssetPolicyBuilder, BreachMatch, CheckResult, HashAlgorithm, MASK, MAX_PAGE, MAX_SALT_CHARS,
    MIN_SALT_CHARS, PolicyError, RecordOut, RecordsError, RecordsPage, RecordsRequest, RiskLevel, SaltPosition,
    risk_score,
};

// Incremental updates: generations of segments.
pub use generation::{
    AddOptions, AddReport, Change, ChangeEntry, ChangeKind, CompactOptions, CompactReport, GenerationManifest,
    HistoryEntry, RemoveOptions, RemoveReport, RemoveTarget, RemovedSource, RootManifest, SegmentDeletes, SegmentEntry,
    UpdateError, WatchHit, WatchList, add_to_index, compact_index, read_generation_id, read_root_manifest,
    remove_from_index,
};

// Monitoring: findings of checks, remediation, risk of identities and organizations.
pub use monitor::{
    Finding, FindingCategory, RiskAssessment, RiskCategories, TREND_POINTS, Trend, assess, combine, findings_of_check,
    recommendations, remediation_steps,
};

// Serving: follow a published path, publish a build.
pub use handle::{IndexHandle, Watcher, publish_symlink};

// Building.
pub use build::{
    BuildError, BuildOptions, BuildProgress, BuildSummary, DEFAULT_MEMORY_BUDGET, MIN_MEMORY_BUDGET, MemoryBudgetError,
    PasswordHashCounts, SourceSummary, UnsafeOutput, build_index,
};
pub use catalog::{Catalog, CatalogError, SourceSpec};
pub use ingest::{Compression, DumpFile, DumpFormat, IngestError, MAX_RECORD_BYTES, MAX_REJECT_RAW_BYTES};

pub use format::manifest::{Manifest, ManifestError};

// Upgrading an index of an older format version.
pub use upgrade::{UpgradeError, UpgradeOptions, UpgradeReport, upgrade_index};

/// The manifest of an index (`manifest.json`, written last): format version, build
/// options, counts, every file with its size and checksum, and the sources. Read it with
/// [`read_manifest`]; `breachdex info` prints it.
pub mod manifest {
    pub use crate::format::manifest::{BuildStats, Counts, FILE_NAME, FileEntry, Manifest, ManifestError, SourceMeta};
}

/// The README's Rust examples, compiled by `cargo test --doc` so they stay correct.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
