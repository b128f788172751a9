//! Hash modes (SPEC §5): how a normalized identifier becomes the key stored in the
//! index, the secret salt, and the salt fingerprint recorded in the manifest.
//!
//! Callers that compute keys themselves (for `--key HEX` queries) find the exact
//! definitions on the [`HashMode`] variants; [`to_hex`] and [`parse_hex_key`] convert
//! keys to and from the hex form used on the command line.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use sha2::{Digest, Sha256};

/// Longest derived key, in bytes (SHA-256).
pub const MAX_HASHED_KEY_BYTES: usize = 32;

/// The key derivation chosen at build time.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum HashMode {
    /// The normalized identifier bytes themselves (UTF-8), no salt.
    Plain,
    /// `SHA-256(salt ‖ normalized)`: the salt bytes immediately followed by the
    /// normalized identifier's UTF-8 bytes, no separator; the 32-byte digest.
    Sha256,
    /// The first 16 bytes of `SHA-256(salt ‖ normalized)` (as for [`HashMode::Sha256`]).
    Sha256_128,
    /// `XXH3-128(normalized)` computed with a custom 192-byte secret (XXH3's
    /// `XXH3_128bits_withSecret`, no seed), the 128-bit result stored big-endian in
    /// 16 bytes. The secret is `S0 ‖ S1 ‖ … ‖ S5` where
    /// `Si = SHA-256(b"breachdex xxh3 secret v1\0" ‖ salt ‖ [i])`, `[i]` being the
    /// single byte `i` (0 to 5) and `\0` a NUL byte.
    Xxh3_128,
    /// `XXH3-64(normalized)` with the same 192-byte secret as [`HashMode::Xxh3_128`]
    /// (`XXH3_64bits_withSecret`, no seed), stored big-endian in 8 bytes.
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
        HashMode::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| format!("unknown hash mode '{s}' (known: plain, sha256, sha256-128, xxh3-128, xxh3-64)"))
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
        if bytes.len() < Salt::MIN_LEN {
            return Err(SaltError::TooShort { len: bytes.len() });
        }
        Ok(Salt(bytes))
    }

    /// Reads a salt file: its bytes less one trailing line end (`\n` or `\r\n`),
    /// which editors and `echo` add; then at least [`Salt::MIN_LEN`] bytes must remain.
    /// Only one line end is removed, and nothing else (no white space trimming), so
    /// binary salts are kept as they are.
    pub fn from_file(path: &Path) -> Result<Salt, SaltError> {
        let mut bytes = std::fs::read(path).map_err(|source| SaltError::Read { path: path.to_path_buf(), source })?;
        if bytes.ends_with(b"\r\n") {
            bytes.truncate(bytes.len() - 2);
        } else if bytes.ends_with(b"\n") {
            bytes.truncate(bytes.len() - 1);
        }
        Salt::new(bytes)
    }

    /// The salt bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// A 16-byte fingerprint, hex-encoded, that identifies the salt without revealing
    /// it: SHA-256 of a domain-separation label and the salt, truncated.
    ///
    /// Exactly: the lower-case hex (32 digits) of the first 16 bytes of
    /// `SHA-256(b"breachdex salt fingerprint v1\0" ‖ salt)`.
    pub fn fingerprint(&self) -> String {
        let digest: [u8; 32] = Sha256::new().chain_update(FINGERPRINT_LABEL).chain_update(&self.0).finalize().into();
        to_hex(&digest[..16])
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
///
/// Everything that depends only on the salt is computed once, in [`KeyDeriver::new`],
/// so that [`KeyDeriver::derive`] neither allocates nor re-reads the salt.
#[derive(Clone)]
pub struct KeyDeriver {
    mode: HashMode,
    state: DeriverState,
}

/// Salt-derived material. Kept out of `Debug` output: the SHA-256 state holds the
/// salt itself in its block buffer when the salt is shorter than a block.
#[derive(Clone)]
enum DeriverState {
    Plain,
    /// SHA-256 state after absorbing the salt; cloned for every key.
    Sha256(Sha256),
    Xxh3(Box<[u8; XXH3_SECRET_LEN]>),
}

impl fmt::Debug for KeyDeriver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyDeriver").field("mode", &self.mode).finish_non_exhaustive()
    }
}

/// Why a deriver could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DeriverError {
    /// A hashed mode without a salt.
    #[error("hash mode {0} needs a salt")]
    SaltRequired(HashMode),
    /// `plain` with a salt: the salt would silently do nothing.
    #[error("hash mode plain does not use a salt; give none or choose a hashed mode")]
    SaltUnused,
}

impl KeyDeriver {
    /// A deriver for `mode`; hashed modes need a salt, `plain` refuses one.
    pub fn new(mode: HashMode, salt: Option<&Salt>) -> Result<KeyDeriver, DeriverError> {
        let state = match (mode, salt) {
            (HashMode::Plain, None) => DeriverState::Plain,
            (HashMode::Plain, Some(_)) => return Err(DeriverError::SaltUnused),
            (_, None) => return Err(DeriverError::SaltRequired(mode)),
            (HashMode::Sha256 | HashMode::Sha256_128, Some(salt)) => {
                DeriverState::Sha256(Sha256::new().chain_update(salt.as_bytes()))
            }
            (HashMode::Xxh3_128 | HashMode::Xxh3_64, Some(salt)) => DeriverState::Xxh3(Box::new(xxh3_secret(salt))),
        };
        Ok(KeyDeriver { mode, state })
    }

    /// The hash mode.
    pub fn mode(&self) -> HashMode {
        self.mode
    }

    /// Derives the key of a normalized identifier, as defined on [`HashMode`].
    /// Never allocates.
    pub fn derive<'a>(&self, normalized: &'a [u8]) -> Key<'a> {
        let mut bytes = [0u8; MAX_HASHED_KEY_BYTES];
        let len = match &self.state {
            DeriverState::Plain => return Key::Plain(normalized),
            DeriverState::Sha256(prefixed) => {
                let digest: [u8; 32] = prefixed.clone().chain_update(normalized).finalize().into();
                bytes = digest;
                if self.mode == HashMode::Sha256 { 32 } else { 16 }
            }
            DeriverState::Xxh3(secret) => {
                if self.mode == HashMode::Xxh3_128 {
                    let h = xxhash_rust::xxh3::xxh3_128_with_secret(normalized, &secret[..]);
                    bytes[..16].copy_from_slice(&h.to_be_bytes());
                    16
                } else {
                    let h = xxhash_rust::xxh3::xxh3_64_with_secret(normalized, &secret[..]);
                    bytes[..8].copy_from_slice(&h.to_be_bytes());
                    8
                }
            }
        };
        Key::Hashed { bytes, len }
    }
}

const FINGERPRINT_LABEL: &[u8] = b"breachdex salt fingerprint v1\0";
const XXH3_SECRET_LABEL: &[u8] = b"breachdex xxh3 secret v1\0";

/// Length of the XXH3 secret derived from the salt (XXH3 needs at least 136 bytes).
pub const XXH3_SECRET_LEN: usize = 192;

/// The XXH3 secret of the `xxh3-128` and `xxh3-64` modes, as defined on
/// [`HashMode::Xxh3_128`]: six SHA-256 digests of a label, the salt and a counter byte.
pub fn xxh3_secret(salt: &Salt) -> [u8; XXH3_SECRET_LEN] {
    let prefixed = Sha256::new().chain_update(XXH3_SECRET_LABEL).chain_update(salt.as_bytes());
    let mut secret = [0u8; XXH3_SECRET_LEN];
    for (i, chunk) in (0u8..).zip(secret.chunks_exact_mut(32)) {
        let digest: [u8; 32] = prefixed.clone().chain_update([i]).finalize().into();
        chunk.copy_from_slice(&digest);
    }
    secret
}

/// Lower-case hex of `bytes`, two digits per byte (the form [`Query::Key`](crate::Query::Key) reads
/// and the command line shows).
pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    s
}

/// Parses a key given in hex (`--key HEX`): upper- or lower-case digits, two per byte,
/// nothing else (no `0x` prefix, no separators, no white space). The error message
/// says what is wrong and where; it does not check the width against a hash mode.
pub fn parse_hex_key(hex: &str) -> Result<Vec<u8>, String> {
    if hex.is_empty() {
        return Err("the hex key is empty".to_owned());
    }
    if let Some((i, c)) = hex.char_indices().find(|(_, c)| !c.is_ascii_hexdigit()) {
        return Err(format!(
            "the hex key has an invalid character {c:?} at byte {i}; only 0-9, a-f and A-F are allowed"
        ));
    }
    if !hex.len().is_multiple_of(2) {
        return Err(format!("the hex key has an odd number of digits ({}); two digits are needed per byte", hex.len()));
    }
    Ok(hex.as_bytes().chunks_exact(2).map(|pair| (hex_val(pair[0]) << 4) | hex_val(pair[1])).collect())
}

/// Value of an ASCII hex digit already checked by the caller.
fn hex_val(b: u8) -> u8 {
    match b {
        b'0'..=b'9' => b - b'0',
        b'a'..=b'f' => b - b'a' + 10,
        b'A'..=b'F' => b - b'A' + 10,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn salt() -> Salt {
        Salt::new(b"0123456789abcdef-test-salt".to_vec()).unwrap()
    }

    fn sha256(parts: &[&[u8]]) -> [u8; 32] {
        let mut h = Sha256::new();
        for p in parts {
            h.update(p);
        }
        h.finalize().into()
    }

    /// The documented secret, built independently of [`xxh3_secret`].
    fn documented_secret(salt: &[u8]) -> Vec<u8> {
        let mut secret = Vec::new();
        for i in 0u8..6 {
            secret.extend_from_slice(&sha256(&[b"breachdex xxh3 secret v1\0", salt, &[i]]));
        }
        secret
    }

    fn salt_file(contents: &[u8]) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(contents).unwrap();
        f.flush().unwrap();
        f
    }

    #[test]
    fn deriver_is_send_sync_clone() {
        fn check<T: Send + Sync + Clone>() {}
        check::<KeyDeriver>();
        check::<Salt>();
    }

    #[test]
    fn salt_length() {
        assert!(matches!(Salt::new(vec![7; 15]), Err(SaltError::TooShort { len: 15 })));
        assert!(matches!(Salt::new(Vec::new()), Err(SaltError::TooShort { len: 0 })));
        assert_eq!(Salt::new(vec![7; 16]).unwrap().as_bytes(), &[7; 16]);
    }

    #[test]
    fn salt_debug_hides_the_bytes() {
        let s = format!("{:?}", salt());
        assert!(!s.contains("0123"), "{s}");
        let d = format!("{:?}", KeyDeriver::new(HashMode::Sha256, Some(&salt())).unwrap());
        assert!(!d.contains("0123") && !d.contains("48, 49"), "{d}");
    }

    #[test]
    fn salt_file_trimming() {
        let body = b"0123456789abcdef";
        for (contents, expected) in [
            (&b"0123456789abcdef"[..], &body[..]),
            (b"0123456789abcdef\n", body),
            (b"0123456789abcdef\r\n", body),
            (b"0123456789abcdef\n\n", b"0123456789abcdef\n"),
            (b"0123456789abcdef\r\n\r\n", b"0123456789abcdef\r\n"),
            (b"0123456789abcdef\r", b"0123456789abcdef\r"),
            (b" 0123456789abcdef \n", b" 0123456789abcdef "),
        ] {
            let f = salt_file(contents);
            assert_eq!(Salt::from_file(f.path()).unwrap().as_bytes(), expected, "{contents:?}");
        }
        // 16 bytes including the line end: too short once it is removed.
        let f = salt_file(b"0123456789abcde\n");
        assert!(matches!(Salt::from_file(f.path()), Err(SaltError::TooShort { len: 15 })));
        let f = salt_file(b"0123456789abcd\r\n");
        assert!(matches!(Salt::from_file(f.path()), Err(SaltError::TooShort { len: 14 })));
        let f = salt_file(b"");
        assert!(matches!(Salt::from_file(f.path()), Err(SaltError::TooShort { len: 0 })));
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing");
        assert!(matches!(Salt::from_file(&missing), Err(SaltError::Read { path, .. }) if path == missing));
    }

    #[test]
    fn fingerprint() {
        let s = salt();
        let fp = s.fingerprint();
        assert_eq!(fp.len(), 32);
        assert!(fp.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        let expected = sha256(&[b"breachdex salt fingerprint v1\0", s.as_bytes()]);
        assert_eq!(fp, to_hex(&expected[..16]));
        assert_eq!(fp, salt().fingerprint());
        let other = Salt::new(b"0123456789abcdef-test-salu".to_vec()).unwrap();
        assert_ne!(fp, other.fingerprint());
        // The fingerprint is not the plain hash of the salt.
        assert_ne!(fp, to_hex(&sha256(&[s.as_bytes()])[..16]));
    }

    #[test]
    fn deriver_errors() {
        for mode in HashMode::ALL {
            let with = KeyDeriver::new(mode, Some(&salt()));
            let without = KeyDeriver::new(mode, None);
            if mode.is_hashed() {
                assert_eq!(without.unwrap_err(), DeriverError::SaltRequired(mode));
                assert_eq!(with.unwrap().mode(), mode);
            } else {
                assert_eq!(with.unwrap_err(), DeriverError::SaltUnused);
                assert_eq!(without.unwrap().mode(), mode);
            }
        }
    }

    #[test]
    fn key_widths() {
        for mode in HashMode::ALL {
            let salt = salt();
            let d = KeyDeriver::new(mode, mode.is_hashed().then_some(&salt)).unwrap();
            for input in [&b""[..], b"a", b"user@example.com", &[b'x'; 300]] {
                let key = d.derive(input);
                match mode.key_width() {
                    Some(w) => {
                        assert_eq!(key.as_bytes().len(), w, "{mode}");
                        assert!(matches!(key, Key::Hashed { .. }));
                    }
                    None => assert_eq!(key, Key::Plain(input)),
                }
            }
        }
    }

    #[test]
    fn sha256_known_answers() {
        let s = salt();
        let d256 = KeyDeriver::new(HashMode::Sha256, Some(&s)).unwrap();
        let d128 = KeyDeriver::new(HashMode::Sha256_128, Some(&s)).unwrap();
        for input in [&b""[..], b"user@example.com", &[0xab; 1000]] {
            let expected = sha256(&[s.as_bytes(), input]);
            assert_eq!(d256.derive(input).as_bytes(), &expected);
            assert_eq!(d128.derive(input).as_bytes(), &expected[..16]);
            // A clone derives the same keys (the prefixed state is not consumed).
            assert_eq!(d256.clone().derive(input), d256.derive(input));
        }
    }

    /// Digests computed outside Rust (`printf ... | sha256sum`), so that a change of
    /// the definitions is caught even if the test helpers changed with them.
    #[test]
    fn external_known_answers() {
        let fixed = Salt::new(b"0123456789abcdef".to_vec()).unwrap();
        let d = KeyDeriver::new(HashMode::Sha256, Some(&fixed)).unwrap();
        assert_eq!(
            to_hex(d.derive(b"abc").as_bytes()),
            "ac3897f0ee12bf2590264376fd11d08e1248218af61f5a1fb08ed0fcd8a66557"
        );
        let d = KeyDeriver::new(HashMode::Sha256_128, Some(&fixed)).unwrap();
        assert_eq!(to_hex(d.derive(b"abc").as_bytes()), "ac3897f0ee12bf2590264376fd11d08e");
        assert_eq!(fixed.fingerprint(), "3793046fbf54dc2d24ce8b28cff6d6d7");
        assert_eq!(
            to_hex(&xxh3_secret(&fixed)[160..]),
            "0af2a8a4a3d350395d528386f40d589aaccf84a0efe4d28bfce6bb8dddfc5044"
        );
    }

    #[test]
    fn xxh3_known_answers() {
        let s = salt();
        let secret = documented_secret(s.as_bytes());
        assert_eq!(secret.len(), XXH3_SECRET_LEN);
        assert_eq!(&xxh3_secret(&s)[..], &secret[..]);
        let d128 = KeyDeriver::new(HashMode::Xxh3_128, Some(&s)).unwrap();
        let d64 = KeyDeriver::new(HashMode::Xxh3_64, Some(&s)).unwrap();
        // Lengths around XXH3's internal branches (0, 1-3, 4-8, 9-16, 17-128, 129-240, long).
        for len in [0, 1, 3, 4, 8, 9, 16, 17, 128, 129, 240, 241, 1024, 5000] {
            let input: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            let h128 = xxhash_rust::xxh3::xxh3_128_with_secret(&input, &secret);
            let h64 = xxhash_rust::xxh3::xxh3_64_with_secret(&input, &secret);
            assert_eq!(d128.derive(&input).as_bytes(), &h128.to_be_bytes());
            assert_eq!(d64.derive(&input).as_bytes(), &h64.to_be_bytes());
        }
    }

    #[test]
    fn different_salts_give_different_keys() {
        let a = salt();
        let b = Salt::new(b"another salt, 16+ bytes".to_vec()).unwrap();
        for mode in HashMode::ALL.into_iter().filter(|m| m.is_hashed()) {
            let ka = KeyDeriver::new(mode, Some(&a)).unwrap();
            let kb = KeyDeriver::new(mode, Some(&b)).unwrap();
            assert_ne!(ka.derive(b"user@example.com"), kb.derive(b"user@example.com"), "{mode}");
            assert_ne!(ka.derive(b"user@example.com"), ka.derive(b"user@example.org"), "{mode}");
        }
    }

    #[test]
    fn hex_round_trip() {
        assert_eq!(to_hex(&[]), "");
        assert_eq!(to_hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
        assert_eq!(parse_hex_key("000fa5ff").unwrap(), vec![0x00, 0x0f, 0xa5, 0xff]);
        assert_eq!(parse_hex_key("000FA5Ff").unwrap(), vec![0x00, 0x0f, 0xa5, 0xff]);
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(parse_hex_key(&to_hex(&all)).unwrap(), all);
        assert_eq!(parse_hex_key(&to_hex(&all).to_uppercase()).unwrap(), all);
    }

    #[test]
    fn hex_errors() {
        assert!(parse_hex_key("").unwrap_err().contains("empty"));
        assert!(parse_hex_key("abc").unwrap_err().contains("odd number of digits (3)"));
        let e = parse_hex_key("abzd").unwrap_err();
        assert!(e.contains("'z'") && e.contains("byte 2"), "{e}");
        assert!(parse_hex_key("0xab").is_err());
        assert!(parse_hex_key(" ab").is_err());
        assert!(parse_hex_key("aé").unwrap_err().contains("'é'"));
    }

    #[test]
    fn mode_names_round_trip() {
        for mode in HashMode::ALL {
            assert_eq!(mode.name().parse::<HashMode>().unwrap(), mode);
            assert_eq!(mode.to_string(), mode.name());
        }
        assert!("sha1".parse::<HashMode>().unwrap_err().contains("sha1"));
    }
}
