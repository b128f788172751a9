//! Internals for the project's own benchmarks, fuzz targets, tests and tools.
//!
//! **Not a stable API**: anything here may change or disappear in any release. Embedders
//! use the items exported at the crate root.

/// The fuzz targets' checks (also replayed by the tests on kept inputs).
pub mod fuzzing {
    pub use crate::fuzzing::*;
}

/// The bounds-checked FST decoder, for the FST benchmark and fuzz target.
pub use crate::format::fst_safe;

/// Length of the common file header of every index file.
pub use crate::format::HEADER_LEN;

/// The name of the record store file (the stored values of a version 2 index).
pub use crate::format::store::FILE_NAME as RECORD_STORE_FILE;

/// Memory-mapped files, for the side-by-side comparison tool.
pub use crate::mmap::{Access, Bytes};

/// The machine's physical memory, as the build's memory check sees it.
pub use crate::build::memory::machine_memory;

/// The record store of format version 2 (`records.store`): writer, reader and block
/// codec, for its benchmark and fuzz target.
pub use crate::format::store;

/// The framed file reader, the format version builds write and a finished file's
/// summary, for the record store's benchmark and fuzz target.
pub use crate::format::{FORMAT_VERSION, FileSummary, FileView};

/// The key filters of incremental updates (`keys.filter`, the union filter), for their
/// benchmark.
pub use crate::format::filter;
