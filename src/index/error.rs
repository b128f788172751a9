//! The reader's errors: why an index cannot be opened ([`OpenError`]) and why a lookup
//! failed ([`LookupError`]). Each message names the path or file it is about once.

use crate::format::FormatError;
use crate::format::manifest::ManifestError;
use crate::keymode::HashMode;
use crate::normalize::KeyError;
use std::path::PathBuf;

/// Why an index cannot be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The path is not an index directory: nothing is there, it is a file, or it holds
    /// no `manifest.json`.
    #[error("{}: not a breachdex index ({reason})", path.display())]
    NotAnIndex {
        /// The path as given.
        path: PathBuf,
        /// What is there instead.
        reason: &'static str,
    },
    /// The directory or a file cannot be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The manifest is damaged or of another version.
    #[error("{}: {source}", dir.display())]
    Manifest {
        /// The index directory.
        dir: PathBuf,
        /// The problem (its message starts with `manifest.json`).
        source: ManifestError,
    },
    /// A file the manifest implies is missing from it or from the directory.
    #[error("{0}: the index is incomplete (file missing)")]
    MissingFile(String),
    /// A file's size differs from the manifest.
    #[error("{name}: {actual} bytes, but the manifest says {expected}: the index is damaged")]
    SizeMismatch {
        /// File name.
        name: String,
        /// Size in the manifest.
        expected: u64,
        /// Size on disk.
        actual: u64,
    },
    /// A file's frame or header is wrong.
    #[error(transparent)]
    Format(#[from] FormatError),
    /// The files disagree with each other or with the manifest.
    #[error("the index is inconsistent: {0}")]
    Inconsistent(String),
    /// A hashed index opened without a salt.
    #[error("this index uses hash mode {0}: it opens only with the salt it was built with")]
    SaltRequired(HashMode),
    /// The salt does not match the one the index was built with.
    #[error("the salt does not match the one this index was built with (fingerprint differs)")]
    WrongSalt,
    /// A salt given for a `plain` index.
    #[error("this index uses hash mode plain and takes no salt: open it without one")]
    SaltUnused,
    /// A segment of an updated index cannot be opened.
    #[error("segment {segment}: {source}")]
    Segment {
        /// The segment's directory, relative to the index root (`.` for the base).
        segment: String,
        /// Why.
        source: Box<OpenError>,
    },
}

/// Why a lookup (or a read of the records it found) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LookupError {
    /// The e-mail is not valid (SPEC §4).
    #[error("invalid email '{input}': {reason}")]
    InvalidEmail {
        /// The query as given.
        input: String,
        /// Why.
        reason: KeyError,
    },
    /// The username is not valid (SPEC §4).
    #[error("invalid username '{input}': {reason}")]
    InvalidUsername {
        /// The query as given.
        input: String,
        /// Why.
        reason: KeyError,
    },
    /// A precomputed key that cannot be a key of this index.
    #[error("invalid key: {0}")]
    InvalidKey(String),
    /// Damage found while reading.
    #[error(transparent)]
    Damaged(#[from] FormatError),
}

impl LookupError {
    /// A short machine-readable code: `validation_error` or `index_damaged`.
    pub fn code(&self) -> &'static str {
        match self {
            LookupError::Damaged(_) => "index_damaged",
            _ => "validation_error",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keymode::DeriverError;

    #[test]
    fn library_errors_name_no_command_line_flags() {
        let hashed: HashMode = "sha256".parse().unwrap();
        let messages = [
            OpenError::SaltRequired(hashed).to_string(),
            OpenError::SaltUnused.to_string(),
            OpenError::WrongSalt.to_string(),
            DeriverError::SaltRequired(hashed).to_string(),
            DeriverError::SaltUnused.to_string(),
        ];
        for message in messages {
            assert!(!message.contains("--"), "{message}");
        }
    }
}
