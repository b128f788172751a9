//! [`UpdateError`]: why `add`, `remove`, `compact` or `changes` failed.

use crate::build::BuildError;
use crate::format::FormatError;
use crate::index::{LookupError, OpenError};
use std::path::PathBuf;

/// Why an update of an index (or a read of its change feed) failed. Nothing was
/// published: the index still answers as its previous generation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UpdateError {
    /// The index cannot be opened.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// Building the new segment failed.
    #[error(transparent)]
    Build(#[from] BuildError),
    /// Reading the index failed (damage).
    #[error(transparent)]
    Lookup(#[from] LookupError),
    /// A generation-level file is damaged.
    #[error(transparent)]
    Format(#[from] FormatError),
    /// A file or directory cannot be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// Another process is updating the index.
    #[error(
        "{}: another process (pid {holder}) is updating this index; wait for it to finish and try again",
        path.display()
    )]
    Locked {
        /// The index.
        path: PathBuf,
        /// The pid the lock file names (or `unknown`).
        holder: String,
    },
    /// The request does not fit the index (a catalog that changes a source, a source
    /// name that is not in the index, an index of format version 1, ...).
    #[error("{0}")]
    Invalid(String),
}

impl UpdateError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> UpdateError {
        UpdateError::Io { path: path.into(), source }
    }
}
