//! # breachdex
//!
//! An embedded breach-lookup engine: an offline builder turns breach dumps into a
//! compact immutable index directory, and a zero-copy reader answers e-mail and
//! username lookups from memory-mapped files in about a microsecond.
//!
//! Data flows one way: dump files → records → sorted runs → index files → reader →
//! results. See the README for a tour and `docs/FORMAT.md` for the byte layout.

#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod asset;
pub mod build;
pub mod catalog;
pub mod date;
pub mod format;
pub mod index;
pub mod ingest;
pub mod keymode;
pub mod mmap;
pub mod normalize;
pub mod query;
pub mod severity;

pub use asset::{Asset, AssetSet};
pub use date::Date;
pub use keymode::{HashMode, Salt};
pub use severity::Severity;
