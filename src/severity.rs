//! Record severity (SPEC §6): a numeric score like the breach-intelligence APIs and a
//! label like the identity-protection APIs, derived from the assets a record holds.

use crate::asset::{Asset, AssetSet};
use serde::Serialize;
use std::fmt;

/// Severity of a record or a match. The discriminant is the numeric score and is stored
/// in index rows.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
#[repr(u8)]
pub enum Severity {
    /// Identifiers and name only.
    Low = 2,
    /// Only a slow password hash, or sensitive PII without any password.
    Medium = 5,
    /// A plaintext password, or a fast / crackable / unknown password hash.
    High = 20,
    /// A plaintext password together with the site it is for.
    Critical = 25,
}

impl Severity {
    /// The numeric score (2, 5, 20 or 25).
    pub const fn score(self) -> u8 {
        self as u8
    }

    /// The label (`low`, `medium`, `high`, `critical`).
    pub const fn label(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// The severity with this score, if it is one of 2, 5, 20, 25.
    pub const fn from_score(score: u8) -> Option<Severity> {
        match score {
            2 => Some(Severity::Low),
            5 => Some(Severity::Medium),
            20 => Some(Severity::High),
            25 => Some(Severity::Critical),
            _ => None,
        }
    }

    /// Parses a label (`high`) or a score (`20`), as a catalog's `severity` override.
    pub fn parse(text: &str) -> Option<Severity> {
        let t = text.trim();
        [Severity::Low, Severity::Medium, Severity::High, Severity::Critical]
            .into_iter()
            .find(|s| t.eq_ignore_ascii_case(s.label()) || t.parse::<u8>().ok() == Some(s.score()))
    }

    /// Computes a record's severity from the assets it holds (SPEC §6).
    ///
    /// `password_type` is the record's declared hash type, if any; when it is absent the
    /// type is inferred from the hash itself (modular-crypt prefixes such as `$2b$`), and
    /// a hash of unknown type counts as crackable.
    pub fn of_record(assets: AssetSet, password_type: Option<&str>, password_hash: Option<&str>) -> Severity {
        let has = |a| assets.contains(a);
        if has(Asset::PasswordPlaintext) {
            return if has(Asset::TargetUrl) { Severity::Critical } else { Severity::High };
        }
        if has(Asset::PasswordHash) {
            let slow = match password_type {
                Some(t) if !t.trim().is_empty() => is_slow_hash_type(t),
                _ => password_hash.is_some_and(looks_like_slow_hash),
            };
            return if slow { Severity::Medium } else { Severity::High };
        }
        if [Asset::Phone, Asset::Dob, Asset::Address, Asset::IpAddress].into_iter().any(has) {
            return Severity::Medium;
        }
        Severity::Low
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// Whether a declared password type names a slow, salted key-derivation function.
pub fn is_slow_hash_type(password_type: &str) -> bool {
    // Case-insensitive and allocation-free: this runs for every record that declares a
    // password type.
    let t = password_type.trim().as_bytes();
    let at = |i: usize, name: &str| t.get(i..i + name.len()).is_some_and(|w| w.eq_ignore_ascii_case(name.as_bytes()));
    ["bcrypt", "scrypt", "argon2", "pbkdf2", "yescrypt", "sha512crypt", "sha256crypt"]
        .iter()
        .any(|slow| at(0, slow) || t.iter().enumerate().any(|(i, b)| *b == b'-' && at(i + 1, slow)))
}

/// Whether a hash string carries a modular-crypt prefix of a slow function.
pub fn looks_like_slow_hash(hash: &str) -> bool {
    let h = hash.trim();
    ["$2a$", "$2b$", "$2x$", "$2y$", "$argon2", "$scrypt$", "$7$", "$pbkdf2", "$y$", "$6$", "$5$"]
        .iter()
        .any(|p| h.starts_with(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(list: &str) -> AssetSet {
        AssetSet::parse_list(list).unwrap()
    }

    #[test]
    fn spec_table() {
        assert_eq!(Severity::of_record(set("email,password,url"), None, None), Severity::Critical);
        assert_eq!(Severity::of_record(set("email,password"), None, None), Severity::High);
        assert_eq!(Severity::of_record(set("email,hash,password_type"), Some("md5"), Some("x")), Severity::High);
        assert_eq!(Severity::of_record(set("email,hash"), None, Some("5f4dcc3b")), Severity::High);
        assert_eq!(Severity::of_record(set("email,hash,password_type"), Some("bcrypt"), Some("x")), Severity::Medium);
        assert_eq!(Severity::of_record(set("email,hash"), None, Some("$2b$12$abc")), Severity::Medium);
        assert_eq!(Severity::of_record(set("email,phone"), None, None), Severity::Medium);
        assert_eq!(Severity::of_record(set("username,ip"), None, None), Severity::Medium);
        assert_eq!(Severity::of_record(set("email,name"), None, None), Severity::Low);
    }

    #[test]
    fn parses_labels_and_scores() {
        assert_eq!(Severity::parse("HIGH"), Some(Severity::High));
        assert_eq!(Severity::parse("25"), Some(Severity::Critical));
        assert_eq!(Severity::parse("7"), None);
        assert_eq!(Severity::from_score(5), Some(Severity::Medium));
    }

    #[test]
    fn slow_hash_types_case_insensitive_prefix_or_after_dash() {
        for t in ["bcrypt", "BCrypt", " argon2id ", "pbkdf2-sha256", "django-PBKDF2", "md5-sha512crypt", "yescrypt"] {
            assert!(is_slow_hash_type(t), "{t}");
        }
        for t in ["md5", "sha1", "xbcrypt", "bcryp", "", "-", "sha512", "é-bcrypt-"] {
            assert_eq!(is_slow_hash_type(t), t == "é-bcrypt-", "{t}");
        }
    }
}
