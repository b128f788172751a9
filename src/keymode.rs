//! Hash modes (SPEC §5): how a normalized identifier becomes the key stored in the
//! index, the secret salt, and the salt fingerprint recorded in the manifest.
//!
//! STUB: interface fixed, implementation pending.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

/// Longest derived key, in bytes (SHA-256).
pub const MAX_HASHED_KEY_BYTES: usize = 32;

/// The key derivation chosen at build time.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum HashMode {
    /// The normalized identifier bytes themselves.
    Plain,
    /// SHA-256(salt ‖ normalized), 32 bytes.
    Sha256,
    /// The first 16 bytes of SHA-256(salt ‖ normalized).
    Sha256_128,
    /// XXH3-128 keyed by the salt, 16 bytes (big-endian).
    Xxh3_128,
    /// XXH3-64 keyed by the salt, 8 bytes (big-endian).
    Xxh3_64,
}

impl HashMode {
    /// Every mode, in documentation order.
    pub const ALL: [HashMode; 5] =
        [HashMode::Plain, HashMode::Sha256, HashMode::Sha256_128, HashMode::Xxh3_128, HashMode::Xxh3_64];

    /// The name used on the command line and in the manifest (`sha256-128`, ...).
    pub const fn name(self) -> &'static str {
        match self {
            HashMode::Plain => "plain",
            HashMode::Sha256 => "sha256",
            HashMode::Sha256_128 => "sha256-128",
            HashMode::Xxh3_128 => "xxh3-128",
            HashMode::Xxh3_64 => "xxh3-64",
        }
    }

    /// Width of a derived key in bytes; `None` for `plain` (variable width).
    pub const fn key_width(self) -> Option<usize> {
        match self {
            HashMode::Plain => None,
            HashMode::Sha256 => Some(32),
            HashMode::Sha256_128 | HashMode::Xxh3_128 => Some(16),
            HashMode::Xxh3_64 => Some(8),
        }
    }

    /// Whether this mode needs a salt.
    pub const fn is_hashed(self) -> bool {
        !matches!(self, HashMode::Plain)
    }
}

impl fmt::Display for HashMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for HashMode {
    type Err = String;
    fn from_str(s: &str) -> Result<HashMode, String> {
        HashMode::ALL.into_iter().find(|m| m.name() == s).ok_or_else(|| {
            format!("unknown hash mode '{s}' (known: plain, sha256, sha256-128, xxh3-128, xxh3-64)")
        })
    }
}

/// Why a salt was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SaltError {
    /// The salt file could not be read.
    #[error("cannot read salt file {path}: {source}")]
    Read {
        /// The file.
        path: std::path::PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Fewer than 16 bytes.
    #[error("the salt is {len} bytes long; at least 16 are needed")]
    TooShort {
        /// Bytes given.
        len: usize,
    },
}

/// The secret salt of a hashed index. Never stored in the index.
#[derive(Clone)]
pub struct Salt(Vec<u8>);

impl fmt::Debug for Salt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Salt(<{} bytes>)", self.0.len())
    }
}

impl Salt {
    /// Minimum salt length in bytes.
    pub const MIN_LEN: usize = 16;

    /// A salt from bytes; at least [`Salt::MIN_LEN`] bytes.
    pub fn new(bytes: Vec<u8>) -> Result<Salt, SaltError> {
        let _ = bytes;
        unimplemented!()
    }

    /// Reads a salt file: its bytes less one trailing line end (`\n` or `\r\n`).
    pub fn from_file(path: &Path) -> Result<Salt, SaltError> {
        let _ = path;
        unimplemented!()
    }

    /// The salt bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// A 16-byte fingerprint, hex-encoded, that identifies the salt without revealing
    /// it: SHA-256 of a domain-separation label and the salt, truncated.
    pub fn fingerprint(&self) -> String {
        unimplemented!()
    }
}

/// A derived key. Hashed keys live inline (no allocation); plain keys borrow the
/// normalized identifier.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Key<'a> {
    /// The normalized identifier bytes (`plain` mode).
    Plain(&'a [u8]),
    /// A hashed key of `len` bytes stored in `bytes[..len]`.
    Hashed {
        /// Storage; only the first `len` bytes are meaningful.
        bytes: [u8; MAX_HASHED_KEY_BYTES],
        /// Key width in bytes.
        len: u8,
    },
}

impl Key<'_> {
    /// The key bytes as stored in the index.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Key::Plain(b) => b,
            Key::Hashed { bytes, len } => &bytes[..*len as usize],
        }
    }
}

/// Derives keys for one hash mode and salt. Cheap to share across threads.
#[derive(Clone, Debug)]
pub struct KeyDeriver {
    mode: HashMode,
}

/// Why a deriver could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DeriverError {
    /// A hashed mode without a salt.
    #[error("hash mode {0} needs a salt (--salt-file)")]
    SaltRequired(HashMode),
    /// `plain` with a salt: the salt would silently do nothing.
    #[error("hash mode plain does not use a salt; drop --salt-file or choose a hashed mode")]
    SaltUnused,
}

impl KeyDeriver {
    /// A deriver for `mode`; hashed modes need a salt, `plain` refuses one.
    pub fn new(mode: HashMode, salt: Option<&Salt>) -> Result<KeyDeriver, DeriverError> {
        let _ = (mode, salt);
        unimplemented!()
    }

    /// The hash mode.
    pub fn mode(&self) -> HashMode {
        self.mode
    }

    /// Derives the key of a normalized identifier.
    pub fn derive<'a>(&self, normalized: &'a [u8]) -> Key<'a> {
        let _ = normalized;
        unimplemented!()
    }
}
