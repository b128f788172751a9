//! # breachdex
//!
//! An embedded breach-lookup engine: an offline builder turns breach dumps into a
//! compact immutable index directory, and a zero-copy reader answers e-mail and
//! username lookups from memory-mapped files in about a microsecond.
//!
//! Data flows one way: dump files → records → sorted runs → index files → reader →
//! results. See the README for a tour and `docs/FORMAT.md` for the byte layout.
//!
//! ```no_run
//! use breachdex::build::{BuildOptions, build_index};
//! use breachdex::catalog::Catalog;
//! use breachdex::index::{Index, OpenOptions, Query};
//! use std::path::Path;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let catalog = Catalog::load(Path::new("testdata/sample/catalog.json"))?;
//! let summary = build_index(&catalog, Path::new("sample-index"), &BuildOptions::default())?;
//! println!("{} records kept, {} rejected", summary.kept, summary.rejected_records);
//!
//! let index = Index::open(Path::new("sample-index"), &OpenOptions::default())?;
//! let result = index.check(&Query::Email("USER@Example.com"), breachdex::date::UnixTime::now())?;
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

pub mod asset;
pub mod build;
pub mod catalog;
pub mod date;
pub mod format;
pub mod fuzzing;
pub mod handle;
pub mod index;
pub mod ingest;
pub mod keymode;
pub mod mmap;
pub mod normalize;
pub mod query;
pub mod severity;

pub use asset::{Asset, AssetSet, UnknownAssetError};

/// The README's Rust examples, compiled by `cargo test --doc` so they stay correct.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
pub use date::Date;
pub use keymode::{HashMode, Salt};
pub use severity::Severity;
