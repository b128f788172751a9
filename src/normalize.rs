//! Key normalization (SPEC §4), shared by the builder and the reader so that any
//! spelling of an identifier finds its records. The rules are documented on
//! [`KeyError`], which is public (re-exported at the crate root).

use std::borrow::Cow;

use idna::uts46::{AsciiDenyList, DnsLength, Hyphens, Uts46};
use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfc_quick};

/// Longest accepted normalized e-mail, in bytes.
pub const MAX_EMAIL_BYTES: usize = 254;
/// Longest accepted normalized username, in bytes.
pub const MAX_USERNAME_BYTES: usize = 128;

/// Why an identifier is not a valid key. The normalization rules (SPEC §4) of
/// [`normalize_email`] and [`normalize_username`] follow.
///
/// # E-mail rules, in the order they are checked
///
/// 1. Leading and trailing white space is trimmed (Unicode `White_Space`, as
///    [`str::trim`]); nothing left → [`KeyError::Empty`].
/// 2. The trimmed text is scanned once, left to right; the first offending character
///    decides: white space → [`KeyError::Whitespace`], a control character (general
///    category `Cc`, [`char::is_control`]) → [`KeyError::Control`]. White space wins
///    for characters that are both (tab, line feed, ...).
/// 3. No `@` → [`KeyError::MissingAt`]; more than one → [`KeyError::MultipleAt`].
/// 4. Nothing before the `@` → [`KeyError::EmptyLocal`]; nothing after it →
///    [`KeyError::EmptyDomain`].
/// 5. Unicode NFC, then full Unicode lower-casing ([`str::to_lowercase`], which is
///    language-independent), then NFC again if lower-casing broke it (so that the
///    result is a fixed point).
/// 6. The domain is converted by UTS #46 ToASCII, non-transitional, without the STD3
///    rules (the WHATWG URL behaviour: `_` and other ASCII punctuation is kept), with
///    a hyphen first or last in a label refused (in the Unicode and the ASCII form) and
///    DNS lengths and other hyphen positions (`ab--c`) unchecked (real-world dumps
///    contain such names). Failure → [`KeyError::InvalidDomain`] carrying the domain as
///    given.
///    UTS #46 mapping may turn a non-ASCII character into white space, a control
///    character or `@` (e.g. U+FF20 FULLWIDTH COMMERCIAL AT): these are refused as
///    an invalid domain too. A domain made only of characters that UTS #46 ignores
///    (e.g. U+00AD SOFT HYPHEN) → [`KeyError::EmptyDomain`].
/// 7. More than [`MAX_EMAIL_BYTES`] bytes → [`KeyError::TooLong`].
///
/// Steps 2 to 4 look at the trimmed input rather than the normalized text: NFC and
/// lower-casing never create nor remove white space, control characters or `@`, and
/// never empty a non-empty string, so the outcome is the same and bad input is refused
/// before any work is done.
///
/// 8. The ASCII domain loses one trailing root dot (`example.com.` is the same key as
///    `example.com`: DNS names them alike); nothing left → [`KeyError::EmptyDomain`].
///    Then every label must be non-empty (no `..`, no leading dot) and must not start
///    or end with a hyphen (`-bad-.com`), else [`KeyError::InvalidDomain`]. Hyphens
///    elsewhere (`a--b`, `xn--`) are allowed.
///
/// These are the only e-mail rules: the builder (`ingest`) and the reader call this same
/// function, so an address refused at query time was refused at build time and any
/// spelling accepted at one finds the other.
///
/// No provider-specific rewriting: dots and `+tags` in the local part are kept.
///
/// # Username rules
///
/// Trim, then a control character anywhere → [`KeyError::Control`] (inner white space
/// such as a space is allowed; a tab, being a control character, is not); NFC,
/// lower-case, NFC; then 1 to [`MAX_USERNAME_BYTES`] bytes (empty input →
/// [`KeyError::Empty`]).
///
/// # Lower-casing notes
///
/// Lower-casing follows the Unicode default (locale-independent) mapping:
/// `ÄÖÜ` → `äöü`; Greek `Σ` becomes final `ς` at the end of a word and `σ`
/// elsewhere; Turkish `I` becomes `i` (not dotless `ı`), dotted `İ` (U+0130) becomes
/// `i` followed by U+0307 COMBINING DOT ABOVE (two characters, three bytes), and
/// dotless `ı` stays as it is. So `İ` and `i` are *different* keys in the local part
/// and in usernames; in a domain, UTS #46 applies its own mapping on top.
///
/// # Performance
///
/// ASCII input (the vast majority) takes a byte-level fast path: an already normalized
/// identifier is returned borrowed (no allocation), and one that only needs ASCII
/// lower-casing costs one allocation. A domain made of lower-case letters, digits,
/// hyphens and dots, with no label starting with `xn--`, is its own UTS #46 form and
/// skips IDNA processing. The fast path is checked against a straightforward reference
/// implementation by property tests.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// Nothing left after trimming.
    #[error("is empty")]
    Empty,
    /// Longer than the limit after normalization.
    #[error("is {len} bytes long, more than the {max} allowed")]
    TooLong {
        /// Normalized length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// An e-mail without `@`.
    #[error("has no '@'")]
    MissingAt,
    /// An e-mail with more than one `@`.
    #[error("has more than one '@'")]
    MultipleAt,
    /// Nothing before the `@`.
    #[error("has an empty local part")]
    EmptyLocal,
    /// Nothing after the `@`.
    #[error("has an empty domain")]
    EmptyDomain,
    /// White space inside an e-mail.
    #[error("contains white space")]
    Whitespace,
    /// A control character.
    #[error("contains a control character")]
    Control,
    /// The domain fails UTS #46 processing.
    #[error("has an invalid domain '{0}'")]
    InvalidDomain(String),
}

/// UTS #46 without STD3 rules, but refusing what mapping could turn into characters
/// that an e-mail key must not contain (white space, controls, `@`): the input was
/// already checked for those, so only mapped characters can hit this list.
const DOMAIN_DENY_LIST: AsciiDenyList = AsciiDenyList::new(true, "@");

/// Normalizes an e-mail key: trim, NFC, full Unicode lower-case, domain to ASCII by
/// UTS #46 non-transitional processing, then validation. Borrows the input when it is
/// already normalized (the common ASCII case allocates nothing).
///
/// See [`KeyError`] for the exact rules and the order of checks.
pub fn normalize_email(input: &str) -> Result<Cow<'_, str>, KeyError> {
    if input.is_ascii() { normalize_email_ascii(input) } else { normalize_email_unicode(input) }
}

/// Normalizes a username key: trim, NFC, lower-case, 1 to 128 bytes, no control
/// characters. Borrows the input when it is already normalized.
///
/// See [`KeyError`] for the exact rules.
pub fn normalize_username(input: &str) -> Result<Cow<'_, str>, KeyError> {
    if input.is_ascii() { normalize_username_ascii(input) } else { normalize_username_unicode(input) }
}

/// Normalizes a domain name by the e-mail domain rule: the domain of `x@DOMAIN` as
/// [`normalize_email`] keys it (trimmed, lower-cased, UTS #46 to ASCII, one root dot
/// dropped, labels checked). `Bücher.DE.` and `xn--bcher-kva.de` give the same text.
/// A domain containing `@` is [`KeyError::MultipleAt`].
///
/// ```
/// assert_eq!(breachdex::normalize_domain(" Bücher.DE. ").unwrap(), "xn--bcher-kva.de");
/// assert!(breachdex::normalize_domain("-bad-.com").is_err());
/// ```
pub fn normalize_domain(input: &str) -> Result<String, KeyError> {
    let trimmed = input.trim();
    if trimmed.is_empty() {
        return Err(KeyError::EmptyDomain);
    }
    let email = format!("x@{trimmed}");
    let key = normalize_email(&email)?;
    match key.split_once('@') {
        Some((_, domain)) => Ok(domain.to_owned()),
        None => Err(KeyError::MissingAt),
    }
}

/// Reference implementation of [`normalize_email`]: every step done the plain way,
/// with no fast path. Exposed for tests and benchmarks only.
#[doc(hidden)]
pub fn normalize_email_slow(input: &str) -> Result<String, KeyError> {
    let trimmed = input.trim();
    let (_, domain) = check_email_shape(trimmed)?;
    let folded = nfc_lower_nfc_slow(trimmed);
    let at = folded.find('@').ok_or(KeyError::MissingAt)?;
    let (local, folded_domain) = (&folded[..at], &folded[at + 1..]);
    let ascii_domain = domain_to_ascii(folded_domain, domain)?;
    let key = format!("{local}@{ascii_domain}");
    check_len(key.len(), MAX_EMAIL_BYTES)?;
    Ok(key)
}

/// Reference implementation of [`normalize_username`], with no fast path. Exposed for
/// tests and benchmarks only.
#[doc(hidden)]
pub fn normalize_username_slow(input: &str) -> Result<String, KeyError> {
    let trimmed = input.trim();
    if trimmed.is_empty() {
        return Err(KeyError::Empty);
    }
    if trimmed.chars().any(char::is_control) {
        return Err(KeyError::Control);
    }
    let key = nfc_lower_nfc_slow(trimmed);
    check_len(key.len(), MAX_USERNAME_BYTES)?;
    Ok(key)
}

/// White space as [`char::is_whitespace`] sees it, restricted to ASCII. Not
/// `u8::is_ascii_whitespace`, which leaves out U+000B VERTICAL TAB.
#[inline]
fn is_ascii_ws(b: u8) -> bool {
    matches!(b, b'\t'..=b'\r' | b' ')
}

/// Control characters as [`char::is_control`] sees them, restricted to ASCII.
#[inline]
fn is_ascii_ctl(b: u8) -> bool {
    b < 0x20 || b == 0x7f
}

#[inline]
fn trim_ascii_ws(s: &str) -> &str {
    // Slicing at ASCII bytes keeps the `str` valid without re-checking.
    let bytes = s.as_bytes();
    let start = bytes.iter().position(|&b| !is_ascii_ws(b)).unwrap_or(bytes.len());
    let end = bytes.iter().rposition(|&b| !is_ascii_ws(b)).map_or(start, |i| i + 1);
    s.get(start..end).unwrap_or("")
}

#[inline]
fn check_len(len: usize, max: usize) -> Result<(), KeyError> {
    if len > max { Err(KeyError::TooLong { len, max }) } else { Ok(()) }
}

/// Steps 1 to 4 of the e-mail rules on already trimmed text; returns the local part
/// and the domain as given.
fn check_email_shape(trimmed: &str) -> Result<(&str, &str), KeyError> {
    if trimmed.is_empty() {
        return Err(KeyError::Empty);
    }
    let mut at = None;
    let mut many = false;
    for (i, c) in trimmed.char_indices() {
        if c.is_whitespace() {
            return Err(KeyError::Whitespace);
        }
        if c.is_control() {
            return Err(KeyError::Control);
        }
        if c == '@' {
            many |= at.is_some();
            at = Some(i);
        }
    }
    split_at_sign(trimmed, at, many)
}

/// Byte-level twin of [`check_email_shape`] for ASCII text; also reports whether any
/// upper-case letter was seen.
#[inline]
fn check_email_shape_ascii(trimmed: &str) -> Result<(&str, &str, bool), KeyError> {
    if trimmed.is_empty() {
        return Err(KeyError::Empty);
    }
    let mut at = None;
    let mut many = false;
    let mut upper = false;
    for (i, &b) in trimmed.as_bytes().iter().enumerate() {
        if is_ascii_ws(b) {
            return Err(KeyError::Whitespace);
        }
        if is_ascii_ctl(b) {
            return Err(KeyError::Control);
        }
        upper |= b.is_ascii_uppercase();
        if b == b'@' {
            many |= at.is_some();
            at = Some(i);
        }
    }
    let (local, domain) = split_at_sign(trimmed, at, many)?;
    Ok((local, domain, upper))
}

#[inline]
fn split_at_sign(s: &str, at: Option<usize>, many: bool) -> Result<(&str, &str), KeyError> {
    let at = at.ok_or(KeyError::MissingAt)?;
    if many {
        return Err(KeyError::MultipleAt);
    }
    let local = s.get(..at).unwrap_or("");
    let domain = s.get(at + 1..).unwrap_or("");
    if local.is_empty() {
        return Err(KeyError::EmptyLocal);
    }
    if domain.is_empty() {
        return Err(KeyError::EmptyDomain);
    }
    Ok((local, domain))
}

/// Steps 6 and 8 in one pass for an ASCII domain that, once lower-cased, is its own
/// UTS #46 ToASCII form (only letters, digits, hyphens and dots, and no label that
/// UTS #46 would decode as Punycode): `Some` with what [`check_labels`] gives for it.
/// `None` when the domain is not of that kind and needs UTS #46 processing.
#[inline]
fn plain_ldh_domain(domain: &str) -> Option<Result<&str, KeyError>> {
    let bytes = domain.as_bytes();
    // Step 8 drops one root dot before checking labels; the UTS #46 test looks at
    // every label, and the empty one after a root dot cannot be Punycode.
    let kept = bytes.strip_suffix(b".").unwrap_or(bytes);
    let mut bad_label = false;
    let mut check = |label: &[u8]| -> bool {
        if label.len() >= 4 && label.get(..4).is_some_and(|p| p.eq_ignore_ascii_case(b"xn--")) {
            return false;
        }
        bad_label |= label.is_empty() || label.first() == Some(&b'-') || label.last() == Some(&b'-');
        true
    };
    let mut start = 0;
    for (i, &b) in kept.iter().enumerate() {
        if b == b'.' {
            if !check(kept.get(start..i).unwrap_or_default()) {
                return None;
            }
            start = i + 1;
        } else if !(b.is_ascii_alphanumeric() || b == b'-') {
            return None;
        }
    }
    if !check(kept.get(start..).unwrap_or_default()) {
        return None;
    }
    Some(match domain.get(..kept.len()) {
        Some("") => Err(KeyError::EmptyDomain),
        Some(kept) if !bad_label => Ok(kept),
        _ => Err(KeyError::InvalidDomain(domain.to_owned())),
    })
}

/// Steps 6 and 8: UTS #46 ToASCII of a folded domain, then the label rules; `given` is
/// the domain as the caller wrote it, for the error message.
fn domain_to_ascii<'a>(folded: &'a str, given: &str) -> Result<Cow<'a, str>, KeyError> {
    let ascii = Uts46::new()
        .to_ascii(folded.as_bytes(), DOMAIN_DENY_LIST, Hyphens::CheckFirstLast, DnsLength::Ignore)
        .map_err(|_| KeyError::InvalidDomain(given.to_owned()))?;
    Ok(match ascii {
        Cow::Borrowed(domain) => Cow::Borrowed(check_labels(domain, given)?),
        Cow::Owned(domain) => Cow::Owned(check_labels(&domain, given)?.to_owned()),
    })
}

/// Step 8 on an ASCII domain: drops one trailing root dot, then checks every label
/// (non-empty, no hyphen first or last). Returns the domain without the root dot.
#[inline]
fn check_labels<'a>(ascii: &'a str, given: &str) -> Result<&'a str, KeyError> {
    let domain = ascii.strip_suffix('.').unwrap_or(ascii);
    if domain.is_empty() {
        return Err(KeyError::EmptyDomain);
    }
    let bad = |label: &str| label.is_empty() || label.starts_with('-') || label.ends_with('-');
    if domain.split('.').any(bad) {
        return Err(KeyError::InvalidDomain(given.to_owned()));
    }
    Ok(domain)
}

fn normalize_email_ascii(input: &str) -> Result<Cow<'_, str>, KeyError> {
    let trimmed = trim_ascii_ws(input);
    let (local, domain, upper) = check_email_shape_ascii(trimmed)?;
    if let Some(kept) = plain_ldh_domain(domain) {
        // ASCII lower-casing keeps the length, and such a domain is its own ToASCII; the
        // key is the trimmed input less any root dot.
        let kept = kept?;
        let key = trimmed.get(..local.len() + 1 + kept.len()).unwrap_or(trimmed);
        check_len(key.len(), MAX_EMAIL_BYTES)?;
        return Ok(if upper { Cow::Owned(key.to_ascii_lowercase()) } else { Cow::Borrowed(key) });
    }
    let lower_domain: Cow<'_, str> = if domain.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(domain.to_ascii_lowercase())
    } else {
        Cow::Borrowed(domain)
    };
    let ascii_domain = domain_to_ascii(&lower_domain, domain)?;
    let len = local.len() + 1 + ascii_domain.len();
    check_len(len, MAX_EMAIL_BYTES)?;
    if !upper && *ascii_domain == *domain {
        return Ok(Cow::Borrowed(trimmed));
    }
    let mut key = String::with_capacity(len);
    key.push_str(local);
    key.make_ascii_lowercase();
    key.push('@');
    key.push_str(&ascii_domain);
    Ok(Cow::Owned(key))
}

fn normalize_email_unicode(input: &str) -> Result<Cow<'_, str>, KeyError> {
    let trimmed = input.trim();
    let (local, domain) = check_email_shape(trimmed)?;
    let folded_local = nfc_lower_nfc(local);
    let folded_domain = nfc_lower_nfc(domain);
    let ascii_domain = domain_to_ascii(&folded_domain, domain)?;
    let len = folded_local.len() + 1 + ascii_domain.len();
    check_len(len, MAX_EMAIL_BYTES)?;
    if matches!(folded_local, Cow::Borrowed(_)) && *ascii_domain == *domain {
        // Both halves unchanged: the key is the trimmed input itself.
        return Ok(Cow::Borrowed(trimmed));
    }
    let mut key = String::with_capacity(len);
    key.push_str(&folded_local);
    key.push('@');
    key.push_str(&ascii_domain);
    Ok(Cow::Owned(key))
}

fn normalize_username_ascii(input: &str) -> Result<Cow<'_, str>, KeyError> {
    let trimmed = trim_ascii_ws(input);
    if trimmed.is_empty() {
        return Err(KeyError::Empty);
    }
    let mut upper = false;
    for &b in trimmed.as_bytes() {
        if is_ascii_ctl(b) {
            return Err(KeyError::Control);
        }
        upper |= b.is_ascii_uppercase();
    }
    check_len(trimmed.len(), MAX_USERNAME_BYTES)?;
    Ok(if upper { Cow::Owned(trimmed.to_ascii_lowercase()) } else { Cow::Borrowed(trimmed) })
}

fn normalize_username_unicode(input: &str) -> Result<Cow<'_, str>, KeyError> {
    let trimmed = input.trim();
    if trimmed.is_empty() {
        return Err(KeyError::Empty);
    }
    if trimmed.chars().any(char::is_control) {
        return Err(KeyError::Control);
    }
    let key = nfc_lower_nfc(trimmed);
    check_len(key.len(), MAX_USERNAME_BYTES)?;
    Ok(key)
}

/// Whether lower-casing leaves every character as it is. Not `!is_uppercase()`:
/// title-case letters such as `ǅ` and some symbols also change.
#[inline]
fn is_lowercase_stable(s: &str) -> bool {
    s.chars().all(|c| {
        if c.is_ascii() {
            return !c.is_ascii_uppercase();
        }
        let mut lower = c.to_lowercase();
        lower.next() == Some(c) && lower.next().is_none()
    })
}

/// NFC, lower-case, then NFC again only when lower-casing produced a non-NFC string
/// (e.g. `İ` → `i` + U+0307 next to other marks); borrows when nothing changes.
fn nfc_lower_nfc(s: &str) -> Cow<'_, str> {
    let nfc: Cow<'_, str> = match is_nfc_quick(s.chars()) {
        IsNormalized::Yes => Cow::Borrowed(s),
        IsNormalized::No | IsNormalized::Maybe => {
            let n: String = s.nfc().collect();
            if n == s { Cow::Borrowed(s) } else { Cow::Owned(n) }
        }
    };
    if is_lowercase_stable(&nfc) {
        return nfc;
    }
    let lower = nfc.to_lowercase();
    match is_nfc_quick(lower.chars()) {
        IsNormalized::Yes => Cow::Owned(lower),
        IsNormalized::No | IsNormalized::Maybe => Cow::Owned(lower.nfc().collect()),
    }
}

fn nfc_lower_nfc_slow(s: &str) -> String {
    let nfc: String = s.nfc().collect();
    nfc.to_lowercase().nfc().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn email(s: &str) -> Result<String, KeyError> {
        normalize_email(s).map(Cow::into_owned)
    }

    fn username(s: &str) -> Result<String, KeyError> {
        normalize_username(s).map(Cow::into_owned)
    }

    #[test]
    fn already_normalized_ascii_is_borrowed() {
        let s = "john.doe+news@example.com";
        assert!(matches!(normalize_email(s), Ok(Cow::Borrowed(b)) if b == s));
        let padded = "  john@example.com\r\n";
        assert!(matches!(normalize_email(padded), Ok(Cow::Borrowed("john@example.com"))));
        assert!(matches!(normalize_username(" john_doe "), Ok(Cow::Borrowed("john_doe"))));
        // Non-LDH ASCII domains go through IDNA but still need no allocation.
        assert!(matches!(normalize_email("a@my_host.example"), Ok(Cow::Borrowed(_))));
        assert!(matches!(normalize_email("a@xn--bcher-kva.de"), Ok(Cow::Borrowed(_))));
        // Already normalized non-ASCII input is borrowed as well.
        assert!(matches!(normalize_email("jürgen@example.com"), Ok(Cow::Borrowed(_))));
    }

    #[test]
    fn case_folding() {
        assert_eq!(email("User@Example.COM").unwrap(), "user@example.com");
        assert_eq!(email("ÄÖÜ@example.com").unwrap(), "äöü@example.com");
        assert_eq!(username("JohnDoe").unwrap(), "johndoe");
        assert_eq!(username("ÄÖÜß").unwrap(), "äöüß");
        // Greek: final sigma at the end of a word, medial sigma elsewhere.
        assert_eq!(username("ΟΔΥΣΣΕΥΣ").unwrap(), "οδυσσευς");
        assert_eq!(email("ΣΑΣ@example.com").unwrap(), "σας@example.com");
    }

    #[test]
    fn turkish_i() {
        // Locale-independent: I → i, İ → i + U+0307, ı unchanged.
        assert_eq!(username("I").unwrap(), "i");
        assert_eq!(username("İ").unwrap(), "i\u{307}");
        assert_eq!(username("ı").unwrap(), "ı");
        assert_ne!(username("İ").unwrap(), username("i").unwrap());
        assert_eq!(email("İrem@example.com").unwrap(), "i\u{307}rem@example.com");
        let key = email("İrem@example.com").unwrap();
        assert_eq!(email(&key).unwrap(), key);
    }

    #[test]
    fn nfd_and_nfc_give_the_same_key() {
        let nfd = email("re\u{301}ne@example.com").unwrap();
        let nfc = email("r\u{e9}ne@example.com").unwrap();
        assert_eq!(nfd, nfc);
        assert_eq!(nfc, "r\u{e9}ne@example.com");
        assert_eq!(username("E\u{301}lise").unwrap(), "\u{e9}lise");
    }

    #[test]
    fn idn_domains() {
        let expected = "user@xn--bcher-kva.de";
        assert_eq!(email("user@bücher.de").unwrap(), expected);
        assert_eq!(email("user@xn--bcher-kva.de").unwrap(), expected);
        assert_eq!(email("user@BÜCHER.de").unwrap(), expected);
        assert_eq!(email("user@XN--BCHER-KVA.DE").unwrap(), expected);
        assert_eq!(email("user@bu\u{308}cher.de").unwrap(), expected);
        // Ideographic full stop is a dot for UTS #46.
        assert_eq!(email("user@bücher\u{3002}de").unwrap(), expected);
        // Non-transitional: ß is kept (punycoded), not mapped to "ss".
        assert_eq!(email("a@faß.de").unwrap(), "a@xn--fa-hia.de");
        // The local part is not IDNA-processed.
        assert_eq!(email("Jürgen@Bücher.de").unwrap(), "jürgen@xn--bcher-kva.de");
    }

    #[test]
    fn root_dot_dropped_empty_labels_and_edge_hyphens_refused() {
        for (input, key) in [
            ("user@example.com.", "user@example.com"),
            ("User@Example.COM.", "user@example.com"),
            ("user@bücher.de.", "user@xn--bcher-kva.de"),
            ("user@bücher\u{3002}de\u{3002}", "user@xn--bcher-kva.de"),
            ("user@a--b.com", "user@a--b.com"),
            ("user@xn--bcher-kva.de.", "user@xn--bcher-kva.de"),
        ] {
            assert_eq!(email(input).as_deref(), Ok(key), "{input}");
        }
        for bad in [
            "user@example..com",
            "user@.example.com",
            "user@example.com..",
            "user@-bad-.com",
            "user@bad-.com",
            "user@-bad.com",
            "user@ex.-bad",
            "user@bü..de",
            "user@-bü.de",
        ] {
            assert!(matches!(email(bad), Err(KeyError::InvalidDomain(_))), "{bad}: {:?}", email(bad));
        }
        assert_eq!(email("user@."), Err(KeyError::EmptyDomain));
    }

    #[test]
    fn invalid_domains() {
        assert_eq!(email("a@xn--a.com"), Err(KeyError::InvalidDomain("xn--a.com".into())));
        assert_eq!(email("a@XN--ZZZ\u{fc}.de"), Err(KeyError::InvalidDomain("XN--ZZZ\u{fc}.de".into())));
        // Fullwidth @ maps to '@' under UTS #46: refused rather than a second '@'.
        assert!(matches!(email("a@b\u{ff20}c.com"), Err(KeyError::InvalidDomain(_))));
        // Only ignored characters in the domain.
        assert_eq!(email("a@\u{ad}"), Err(KeyError::EmptyDomain));
    }

    #[test]
    fn whitespace_trimmed_around_rejected_inside() {
        assert_eq!(email("  \t user@example.com \n").unwrap(), "user@example.com");
        assert_eq!(email("\u{3000}user@example.com\u{a0}").unwrap(), "user@example.com");
        assert_eq!(email("us er@example.com"), Err(KeyError::Whitespace));
        assert_eq!(email("user@exa mple.com"), Err(KeyError::Whitespace));
        assert_eq!(email("user@exa\u{3000}mple.com"), Err(KeyError::Whitespace));
        assert_eq!(email("user\t@example.com"), Err(KeyError::Whitespace));
        assert_eq!(email("us\u{b}er@example.com"), Err(KeyError::Whitespace));
        assert_eq!(username("  john doe \r\n").unwrap(), "john doe");
        assert_eq!(username("john\tdoe"), Err(KeyError::Control));
    }

    #[test]
    fn every_error_variant() {
        assert_eq!(email(""), Err(KeyError::Empty));
        assert_eq!(email(" \t\n "), Err(KeyError::Empty));
        assert_eq!(email("userexample.com"), Err(KeyError::MissingAt));
        assert_eq!(email("a@b@c.com"), Err(KeyError::MultipleAt));
        assert_eq!(email("@example.com"), Err(KeyError::EmptyLocal));
        assert_eq!(email("user@"), Err(KeyError::EmptyDomain));
        assert_eq!(email("@"), Err(KeyError::EmptyLocal));
        assert_eq!(email("us er@x.com"), Err(KeyError::Whitespace));
        assert_eq!(email("us\u{0}er@x.com"), Err(KeyError::Control));
        assert_eq!(email("us\u{7f}er@x.com"), Err(KeyError::Control));
        assert_eq!(email("us\u{85}er@x.com"), Err(KeyError::Whitespace)); // NEL is both
        assert_eq!(email("us\u{9f}er@x.com"), Err(KeyError::Control));
        // The first offending character decides.
        assert_eq!(email("a\u{1}b c"), Err(KeyError::Control));
        assert_eq!(email("a b\u{1}c"), Err(KeyError::Whitespace));
        // Character checks come before '@' checks.
        assert_eq!(email("a b"), Err(KeyError::Whitespace));
        assert!(matches!(email("a@-\u{5d0}.com"), Err(KeyError::InvalidDomain(_))));
        let long = format!("{}@example.com", "a".repeat(300));
        assert_eq!(email(&long), Err(KeyError::TooLong { len: 312, max: MAX_EMAIL_BYTES }));
        assert_eq!(username(""), Err(KeyError::Empty));
        assert_eq!(username("\u{3000}"), Err(KeyError::Empty));
        assert_eq!(username("a\u{0}"), Err(KeyError::Control));
        assert_eq!(username("é\u{1b}"), Err(KeyError::Control));
        assert_eq!(username(&"x".repeat(200)), Err(KeyError::TooLong { len: 200, max: MAX_USERNAME_BYTES }));
    }

    #[test]
    fn length_limits() {
        let domain = "@example.com"; // 12 bytes
        let ok = format!("{}{domain}", "a".repeat(254 - 12));
        assert_eq!(ok.len(), 254);
        assert_eq!(email(&ok).unwrap(), ok);
        let upper = ok.to_ascii_uppercase();
        assert_eq!(email(&upper).unwrap(), ok);
        let long = format!("{}{domain}", "a".repeat(255 - 12));
        assert_eq!(email(&long), Err(KeyError::TooLong { len: 255, max: 254 }));
        // The limit applies after normalization: the IDN domain grows when punycoded.
        let idn = format!("{}@bücher.de", "a".repeat(254 - 17)); // "@xn--bcher-kva.de": 17
        assert_eq!(email(&idn).unwrap().len(), 254);
        let idn = format!("{}@bücher.de", "a".repeat(255 - 17));
        assert_eq!(idn.len(), 249);
        assert_eq!(email(&idn), Err(KeyError::TooLong { len: 255, max: 254 }));
        // And lower-casing can shrink: KELVIN SIGN (3 bytes) → k (1 byte).
        let kelvin = format!("{}\u{212a}{domain}", "a".repeat(254 - 12 - 1));
        assert_eq!(email(&kelvin).unwrap().len(), 254);

        let u128 = "u".repeat(128);
        assert_eq!(username(&u128).unwrap(), u128);
        assert_eq!(username(&"U".repeat(128)).unwrap(), u128);
        assert_eq!(username(&"u".repeat(129)), Err(KeyError::TooLong { len: 129, max: 128 }));
        // Bytes, not characters: 64 × 'é' is 128 bytes, 65 is 130.
        assert_eq!(username(&"É".repeat(64)).unwrap(), "é".repeat(64));
        assert_eq!(username(&"é".repeat(65)), Err(KeyError::TooLong { len: 130, max: 128 }));
        assert_eq!(username("a").unwrap(), "a");
    }

    #[test]
    fn tags_and_dots_preserved() {
        assert_eq!(email("John.Doe+Spam@GMail.com").unwrap(), "john.doe+spam@gmail.com");
        assert_eq!(email("j.o.h.n@googlemail.com").unwrap(), "j.o.h.n@googlemail.com");
        assert_eq!(email("a@example.com.").unwrap(), "a@example.com", "the root dot is dropped");
    }

    #[test]
    fn ascii_non_ldh_domains() {
        assert_eq!(email("a@My_Host.Example").unwrap(), "a@my_host.example");
        assert_eq!(email("a@[192.168.0.1]").unwrap(), "a@[192.168.0.1]");
    }

    /// Characters chosen to exercise composition, casing and IDNA corner cases.
    fn tricky_char() -> impl Strategy<Value = char> {
        prop::sample::select(vec![
            'a', 'Z', 'i', 'I', '.', '-', '@', '+', '_', ' ', '\t', '\u{0}', 'x', 'n', '\u{301}', '\u{308}', '\u{307}',
            '\u{323}', '\u{345}', '\u{130}', '\u{131}', 'Σ', 'σ', 'ς', 'ß', '\u{1e9e}', '\u{212a}', '\u{2126}', 'Å',
            '\u{212b}', 'ǅ', 'Ǆ', 'é', 'É', 'ü', 'Ü', '\u{ad}', '\u{200d}', '\u{3002}', '\u{ff0e}', '\u{ff20}',
            '\u{5d0}', '\u{627}', '1', 'ｶ', '\u{3000}', '\u{a0}', '\u{85}', 'ﬁ', 'ᾼ', 'ᾳ', '\u{1f88}',
        ])
    }

    fn tricky_string() -> impl Strategy<Value = String> {
        prop::collection::vec(tricky_char(), 0..24).prop_map(|v| v.into_iter().collect())
    }

    fn email_shaped_ascii() -> impl Strategy<Value = String> {
        (
            "[ \t]{0,2}",
            "[a-zA-Z0-9.+_-]{0,12}",
            prop::sample::select(vec!["@", "@", "@", "", "@@"]),
            prop::collection::vec(
                prop_oneof![
                    "[a-zA-Z0-9-]{0,8}",
                    "[xX][nN]--[a-z0-9-]{0,8}",
                    Just("xn--bcher-kva".to_owned()),
                    Just("XN--BCHER-KVA".to_owned()),
                    "[a-z0-9_!#%\\[\\]]{1,4}",
                ],
                0..4,
            ),
            "[ \r\n]{0,2}",
        )
            .prop_map(|(pre, local, at, labels, post)| format!("{pre}{local}{at}{}{post}", labels.join(".")))
    }

    fn email_shaped_unicode() -> impl Strategy<Value = String> {
        (tricky_string(), tricky_string(), "\\PC{0,6}").prop_map(|(l, d, tld)| format!("{l}@{d}.{tld}"))
    }

    fn check_fast_equals_slow(s: &str) -> Result<(), TestCaseError> {
        prop_assert_eq!(email(s), normalize_email_slow(s), "email {:?}", s);
        prop_assert_eq!(username(s), normalize_username_slow(s), "username {:?}", s);
        Ok(())
    }

    fn check_idempotent(s: &str) -> Result<(), TestCaseError> {
        if let Ok(key) = email(s) {
            prop_assert_eq!(email(&key), Ok(key.clone()), "email {:?}", s);
            prop_assert!(key.len() <= MAX_EMAIL_BYTES);
        }
        if let Ok(key) = username(s) {
            prop_assert_eq!(username(&key), Ok(key.clone()), "username {:?}", s);
            prop_assert!(!key.is_empty() && key.len() <= MAX_USERNAME_BYTES);
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn fast_path_matches_slow_on_ascii(s in "[\\x00-\\x7f]{0,40}") {
            check_fast_equals_slow(&s)?;
        }

        #[test]
        fn fast_path_matches_slow_on_email_shaped_ascii(s in email_shaped_ascii()) {
            check_fast_equals_slow(&s)?;
            check_idempotent(&s)?;
        }

        #[test]
        fn unicode_path_matches_slow(s in email_shaped_unicode()) {
            check_fast_equals_slow(&s)?;
        }

        #[test]
        fn idempotent_on_arbitrary_unicode(s in "\\PC{0,40}|.{0,40}") {
            check_idempotent(&s)?;
            check_fast_equals_slow(&s)?;
        }

        #[test]
        fn idempotent_on_tricky_text(s in tricky_string(), t in email_shaped_unicode()) {
            check_idempotent(&s)?;
            check_idempotent(&t)?;
        }

        #[test]
        fn never_panics(s in any::<String>()) {
            let _ = normalize_email(&s);
            let _ = normalize_username(&s);
            let _ = normalize_email_slow(&s);
        }
    }
}
