//! Password hashes as Pwned Passwords knows them: SHA-1 of the UTF-8 password and NTLM
//! (MD4 of the UTF-16LE password), their hex forms, the 5-hex-digit k-anonymity range
//! prefixes, and the errors of password queries. Shared by the builder (which derives
//! the hashes of every password it reads) and the reader (`crate::format::passwords`).

use crate::format::FormatError;
use std::fmt;

/// Which password hash a value is.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PasswordHashKind {
    /// SHA-1 of the password's UTF-8 bytes (20 bytes): Pwned Passwords' default mode.
    Sha1,
    /// NTLM: MD4 of the password's UTF-16LE code units (16 bytes): Pwned Passwords'
    /// `mode=ntlm`.
    Ntlm,
}

impl PasswordHashKind {
    /// Both kinds, in the order the index stores them.
    pub const ALL: [PasswordHashKind; 2] = [PasswordHashKind::Sha1, PasswordHashKind::Ntlm];

    /// Bytes of a hash of this kind: 20 (SHA-1) or 16 (NTLM).
    pub const fn width(self) -> usize {
        match self {
            PasswordHashKind::Sha1 => 20,
            PasswordHashKind::Ntlm => 16,
        }
    }

    /// Hex digits of a hash of this kind: 40 (SHA-1) or 32 (NTLM).
    pub const fn hex_len(self) -> usize {
        self.width() * 2
    }

    /// The lower-case name: `sha1` or `ntlm` (the `password_type` values the builder
    /// takes hashes of, and Pwned Passwords' mode names).
    pub const fn name(self) -> &'static str {
        match self {
            PasswordHashKind::Sha1 => "sha1",
            PasswordHashKind::Ntlm => "ntlm",
        }
    }

    /// The kind a record's `password_type` names, if it is one the password index takes:
    /// `sha1`/`sha-1` or `ntlm`, in any case, surrounding white space ignored.
    pub fn from_password_type(password_type: &str) -> Option<PasswordHashKind> {
        let t = password_type.trim();
        if t.eq_ignore_ascii_case("sha1") || t.eq_ignore_ascii_case("sha-1") {
            Some(PasswordHashKind::Sha1)
        } else if t.eq_ignore_ascii_case("ntlm") {
            Some(PasswordHashKind::Ntlm)
        } else {
            None
        }
    }
}

impl fmt::Display for PasswordHashKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Longest hash of any kind, in bytes.
const MAX_WIDTH: usize = 20;

/// One password hash: SHA-1 (20 bytes) or NTLM (16 bytes, MD4 of the UTF-16LE password).
#[derive(Copy, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PasswordHash {
    kind: PasswordHashKind,
    /// The hash, left-aligned; bytes past the kind's width are zero.
    bytes: [u8; MAX_WIDTH],
}

impl PasswordHash {
    /// SHA-1 of the password's UTF-8 bytes, as Pwned Passwords hashes it.
    pub fn sha1_of(password: &str) -> PasswordHash {
        use sha1::Digest;
        let digest = sha1::Sha1::digest(password.as_bytes());
        let mut bytes = [0u8; MAX_WIDTH];
        bytes.copy_from_slice(&digest);
        PasswordHash { kind: PasswordHashKind::Sha1, bytes }
    }

    /// NTLM of the password: MD4 of its UTF-16LE code units.
    pub fn ntlm_of(password: &str) -> PasswordHash {
        use md4::Digest;
        let mut hasher = md4::Md4::new();
        for unit in password.encode_utf16() {
            hasher.update(unit.to_le_bytes());
        }
        let mut bytes = [0u8; MAX_WIDTH];
        bytes[..16].copy_from_slice(&hasher.finalize());
        PasswordHash { kind: PasswordHashKind::Ntlm, bytes }
    }

    /// A hash of `kind` from its hex digits: exactly 40 (SHA-1) or 32 (NTLM), any case.
    pub fn from_hex(kind: PasswordHashKind, hex: &str) -> Result<PasswordHash, PasswordError> {
        let invalid = |reason: String| PasswordError::InvalidHash { kind, reason };
        if hex.len() != kind.hex_len() {
            return Err(invalid(format!(
                "a {} hash is {} hex digits, got {} characters",
                kind.name().to_uppercase(),
                kind.hex_len(),
                hex.chars().count()
            )));
        }
        let mut bytes = [0u8; MAX_WIDTH];
        for (i, pair) in hex.as_bytes().chunks_exact(2).enumerate() {
            let (Some(hi), Some(lo)) = (hex_value(pair[0]), hex_value(pair[1])) else {
                return Err(invalid("only the hex digits 0-9, a-f and A-F are allowed".to_string()));
            };
            bytes[i] = (hi << 4) | lo;
        }
        Ok(PasswordHash { kind, bytes })
    }

    /// A hash of `kind` from its raw bytes (`kind.width()` of them).
    pub fn from_bytes(kind: PasswordHashKind, raw: &[u8]) -> Result<PasswordHash, PasswordError> {
        if raw.len() != kind.width() {
            return Err(PasswordError::InvalidHash {
                kind,
                reason: format!("a {} hash is {} bytes, got {}", kind.name().to_uppercase(), kind.width(), raw.len()),
            });
        }
        let mut bytes = [0u8; MAX_WIDTH];
        bytes[..raw.len()].copy_from_slice(raw);
        Ok(PasswordHash { kind, bytes })
    }

    /// Which kind of hash this is.
    pub fn kind(&self) -> PasswordHashKind {
        self.kind
    }

    /// The hash bytes: 20 (SHA-1) or 16 (NTLM).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.kind.width()]
    }

    /// The range prefix of this hash: its first 5 hex digits.
    pub fn prefix(&self) -> PasswordPrefix {
        PasswordPrefix(top_20_bits(&self.bytes))
    }

    /// The hash in upper-case hex, as Pwned Passwords prints it.
    pub fn to_hex(&self) -> String {
        let mut out = String::with_capacity(self.kind.hex_len());
        push_upper_hex(&mut out, self.as_bytes(), 0);
        out
    }
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind.name(), self.to_hex())
    }
}

impl fmt::Display for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// Digits in a range prefix.
pub const PREFIX_HEX_DIGITS: usize = 5;

/// A k-anonymity range prefix: exactly 5 hex digits (20 bits), any case.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PasswordPrefix(u32);

impl PasswordPrefix {
    /// The largest prefix value (`FFFFF`).
    pub const MAX: u32 = (1 << 20) - 1;

    /// A prefix from exactly 5 hex digits, any case.
    pub fn from_hex(hex: &str) -> Result<PasswordPrefix, PasswordError> {
        if hex.len() != PREFIX_HEX_DIGITS {
            return Err(PasswordError::InvalidPrefix(format!(
                "a range prefix is {PREFIX_HEX_DIGITS} hex digits, got {} characters",
                hex.chars().count()
            )));
        }
        let mut value = 0u32;
        for b in hex.bytes() {
            let d = hex_value(b).ok_or_else(|| {
                PasswordError::InvalidPrefix("only the hex digits 0-9, a-f and A-F are allowed".to_string())
            })?;
            value = (value << 4) | u32::from(d);
        }
        Ok(PasswordPrefix(value))
    }

    /// A prefix from its numeric value (`0..=0xFFFFF`); `None` above that.
    pub fn from_value(value: u32) -> Option<PasswordPrefix> {
        (value <= PasswordPrefix::MAX).then_some(PasswordPrefix(value))
    }

    /// The numeric value, `0..=0xFFFFF`.
    pub fn value(self) -> u32 {
        self.0
    }
}

impl fmt::Display for PasswordPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:05X}", self.0)
    }
}

/// Why a password query failed: the caller's input (`validation_error`) or a damaged
/// password file (`index_damaged`, naming the file).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PasswordError {
    /// A hash that is not the hex (or bytes) of a hash of its kind.
    #[error("invalid {kind} hash: {reason}")]
    InvalidHash {
        /// The kind asked for.
        kind: PasswordHashKind,
        /// Why.
        reason: String,
    },
    /// A range prefix that is not 5 hex digits.
    #[error("invalid range prefix: {0}")]
    InvalidPrefix(String),
    /// A password file is damaged (the message names it).
    #[error(transparent)]
    Damaged(#[from] FormatError),
}

impl PasswordError {
    /// A short machine-readable code: `validation_error` (the caller's input; HTTP 400)
    /// or `index_damaged` (HTTP 500).
    pub fn code(&self) -> &'static str {
        match self {
            PasswordError::Damaged(_) => "index_damaged",
            _ => "validation_error",
        }
    }

    /// Whether the caller's input is at fault (as opposed to the index).
    pub fn is_client_error(&self) -> bool {
        !matches!(self, PasswordError::Damaged(_))
    }
}

/// The value of one ASCII hex digit.
#[inline]
fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// The first 20 bits of a hash (its range prefix), from at least 3 bytes.
#[inline]
pub(crate) fn top_20_bits(hash: &[u8]) -> u32 {
    let mut top = [0u8; 4];
    for (d, s) in top.iter_mut().zip(hash) {
        *d = *s;
    }
    u32::from_be_bytes(top) >> 12
}

/// Appends the upper-case hex digits of `bytes` to `out`, skipping the first `skip`
/// digits.
#[inline]
pub(crate) fn push_upper_hex(out: &mut String, bytes: &[u8], skip: usize) {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    for (i, b) in bytes.iter().enumerate() {
        for (j, nibble) in [b >> 4, b & 0x0f].into_iter().enumerate() {
            if 2 * i + j >= skip {
                out.push(DIGITS[nibble as usize] as char);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_match_pwned_passwords() {
        // Published values: SHA-1("password") and NTLM("password").
        assert_eq!(PasswordHash::sha1_of("password").to_hex(), "5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD8");
        assert_eq!(PasswordHash::ntlm_of("password").to_hex(), "8846F7EAEE8FB117AD06BDD830B7586C");
        // The empty password: MD4 of no bytes.
        assert_eq!(PasswordHash::ntlm_of("").to_hex(), "31D6CFE0D16AE931B73C59D7E0C089C0");
        assert_eq!(PasswordHash::sha1_of("password").prefix().to_string(), "5BAA6");
    }

    #[test]
    fn hex_round_trips_in_any_case() {
        for kind in PasswordHashKind::ALL {
            let h = match kind {
                PasswordHashKind::Sha1 => PasswordHash::sha1_of("hunter2"),
                PasswordHashKind::Ntlm => PasswordHash::ntlm_of("hunter2"),
            };
            assert_eq!(PasswordHash::from_hex(kind, &h.to_hex()).unwrap(), h);
            assert_eq!(PasswordHash::from_hex(kind, &h.to_hex().to_lowercase()).unwrap(), h);
            assert_eq!(PasswordHash::from_bytes(kind, h.as_bytes()).unwrap(), h);
            assert_eq!(h.as_bytes().len(), kind.width());
        }
    }

    #[test]
    fn bad_hex_and_prefixes_are_client_errors() {
        let err = PasswordHash::from_hex(PasswordHashKind::Sha1, "abc").unwrap_err();
        assert_eq!(err.to_string(), "invalid sha1 hash: a SHA1 hash is 40 hex digits, got 3 characters");
        assert_eq!(err.code(), "validation_error");
        assert!(err.is_client_error());
        let err = PasswordHash::from_hex(PasswordHashKind::Ntlm, &"g".repeat(32)).unwrap_err();
        assert!(err.to_string().contains("only the hex digits"), "{err}");
        // A multi-byte character never slices a UTF-8 sequence.
        assert!(PasswordHash::from_hex(PasswordHashKind::Ntlm, &format!("é{}", "a".repeat(30))).is_err());
        assert!(PasswordHash::from_bytes(PasswordHashKind::Ntlm, &[0; 20]).is_err());
        assert_eq!(PasswordPrefix::from_hex("5baa6").unwrap().value(), 0x5BAA6);
        assert_eq!(PasswordPrefix::from_hex("FFFFF").unwrap().to_string(), "FFFFF");
        for bad in ["", "5BAA", "5BAA61", "5BAAG", "ééé"] {
            let err = PasswordPrefix::from_hex(bad).unwrap_err();
            assert_eq!(err.code(), "validation_error", "{bad}");
        }
        assert_eq!(PasswordPrefix::from_value(1 << 20), None);
    }

    #[test]
    fn password_types_name_the_kinds() {
        assert_eq!(PasswordHashKind::from_password_type(" SHA1 "), Some(PasswordHashKind::Sha1));
        assert_eq!(PasswordHashKind::from_password_type("sha-1"), Some(PasswordHashKind::Sha1));
        assert_eq!(PasswordHashKind::from_password_type("NTLM"), Some(PasswordHashKind::Ntlm));
        assert_eq!(PasswordHashKind::from_password_type("md5"), None);
        assert_eq!(PasswordHashKind::from_password_type("sha256"), None);
    }

    #[test]
    fn suffix_digits_skip_the_prefix() {
        let mut s = String::new();
        push_upper_hex(&mut s, &[0xab, 0xcd, 0xef], 5);
        assert_eq!(s, "F");
        assert_eq!(top_20_bits(&[0xab, 0xcd, 0xef, 0x12]), 0xABCDE);
    }
}
