//! Key normalization (SPEC §4), shared by the builder and the reader so that any
//! spelling of an identifier finds its records.
//!
//! STUB: interface fixed, implementation pending.

use std::borrow::Cow;

/// Longest accepted normalized e-mail, in bytes.
pub const MAX_EMAIL_BYTES: usize = 254;
/// Longest accepted normalized username, in bytes.
pub const MAX_USERNAME_BYTES: usize = 128;

/// Why an identifier is not a valid key.
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

/// Normalizes an e-mail key: trim, NFC, full Unicode lower-case, domain to ASCII by
/// UTS #46 non-transitional processing, then validation. Borrows the input when it is
/// already normalized (the common ASCII case allocates nothing).
pub fn normalize_email(input: &str) -> Result<Cow<'_, str>, KeyError> {
    let _ = input;
    unimplemented!("normalize_email")
}

/// Normalizes a username key: trim, NFC, lower-case, 1 to 128 bytes, no control
/// characters. Borrows the input when it is already normalized.
pub fn normalize_username(input: &str) -> Result<Cow<'_, str>, KeyError> {
    let _ = input;
    unimplemented!("normalize_username")
}
