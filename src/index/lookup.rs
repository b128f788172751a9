//! Lookups: a [`Query`] (any spelling of an e-mail or username, or a precomputed key)
//! to the rows it matches ([`Matches`]), read zero-copy from the key maps, runs and
//! postings.

use super::{Index, LookupError};
use crate::format::postings::PostingList;
use crate::format::rows::RowId;
use crate::keymode;
use crate::normalize;
use std::borrow::Cow;

/// Which identifier a query names.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IdentifierKind {
    /// An e-mail address.
    Email,
    /// A username.
    Username,
}

/// One lookup.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Query<'a> {
    /// Any spelling of an e-mail address.
    Email(&'a str),
    /// Any spelling of a username.
    Username(&'a str),
    /// A precomputed key in hex (the caller derived it; see [`crate::keymode::HashMode`]);
    /// `kind` restricts it to one identifier map, `None` searches both.
    Key {
        /// The key, hex.
        hex: &'a str,
        /// Which map.
        kind: Option<IdentifierKind>,
    },
}

impl<'a> Query<'a> {
    /// The query text as given.
    pub fn text(&self) -> &'a str {
        match self {
            Query::Email(s) | Query::Username(s) => s,
            Query::Key { hex, .. } => hex,
        }
    }

    /// `email`, `username` or `key`.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Query::Email(_) => "email",
            Query::Username(_) => "username",
            Query::Key { .. } => "key",
        }
    }

    /// Picks e-mail or username for a batch line: `auto` treats text with `@` as an
    /// e-mail.
    pub fn auto(text: &'a str) -> Query<'a> {
        if text.contains('@') { Query::Email(text) } else { Query::Username(text) }
    }
}

/// The rows a lookup matched, ascending; iterate to read them.
#[derive(Clone, Debug)]
pub struct Matches<'a>(pub(super) MatchesInner<'a>);

#[derive(Clone, Debug)]
pub(super) enum MatchesInner<'a> {
    Range(std::ops::Range<u64>),
    Postings(PostingList<'a>),
    List(std::vec::IntoIter<u64>),
}

impl Matches<'_> {
    pub(super) fn empty() -> Self {
        Matches(MatchesInner::Range(0..0))
    }

    /// Matches of a list of row ids, in the list's order.
    pub(crate) fn list(ids: Vec<u64>) -> Self {
        Matches(MatchesInner::List(ids.into_iter()))
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        match &self.0 {
            MatchesInner::Range(r) => (r.end - r.start) as usize,
            MatchesInner::Postings(p) => p.len(),
            MatchesInner::List(l) => l.len(),
        }
    }

    /// Whether nothing matched.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The rows as one contiguous run, when they are one (an e-mail lookup).
    pub(crate) fn as_range(&self) -> Option<std::ops::Range<u64>> {
        match &self.0 {
            MatchesInner::Range(r) => Some(r.clone()),
            _ => None,
        }
    }

    /// Whether the rows are one contiguous run sorted by source (an e-mail lookup).
    pub fn is_contiguous(&self) -> bool {
        matches!(self.0, MatchesInner::Range(_))
    }
}

impl Iterator for Matches<'_> {
    type Item = RowId;
    #[inline]
    fn next(&mut self) -> Option<RowId> {
        match &mut self.0 {
            MatchesInner::Range(r) => r.next(),
            MatchesInner::Postings(p) => p.next(),
            MatchesInner::List(l) => l.next(),
        }
    }

    #[inline]
    fn nth(&mut self, n: usize) -> Option<RowId> {
        match &mut self.0 {
            MatchesInner::Range(r) => r.nth(n),
            MatchesInner::Postings(p) => p.nth(n),
            MatchesInner::List(l) => l.nth(n),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.len(), Some(self.len()))
    }
}

/// The normalized e-mail of a query, or the lookup error naming the input: the one
/// place the single and batch lookup paths turn a normalization failure into an error.
pub(crate) fn normalized_email(email: &str) -> Result<Cow<'_, str>, LookupError> {
    normalize::normalize_email(email).map_err(|reason| LookupError::InvalidEmail { input: email.to_string(), reason })
}

/// [`normalized_email`] for usernames.
pub(crate) fn normalized_username(username: &str) -> Result<Cow<'_, str>, LookupError> {
    normalize::normalize_username(username)
        .map_err(|reason| LookupError::InvalidUsername { input: username.to_string(), reason })
}

impl Index {
    /// Rows of an e-mail (any spelling).
    pub fn lookup_email(&self, email: &str) -> Result<Matches<'_>, LookupError> {
        let normalized = normalized_email(email)?;
        let key = self.inner.deriver.derive(normalized.as_bytes());
        self.email_rows(key.as_bytes())
    }

    /// Rows of a username (any spelling).
    pub fn lookup_username(&self, username: &str) -> Result<Matches<'_>, LookupError> {
        let normalized = normalized_username(username)?;
        let key = self.inner.deriver.derive(normalized.as_bytes());
        self.username_rows(key.as_bytes())
    }

    /// Rows of a precomputed key (raw bytes as stored: the derived hash, or the
    /// normalized identifier in `plain` mode); `kind` `None` searches both maps.
    pub fn lookup_key(&self, key: &[u8], kind: Option<IdentifierKind>) -> Result<Matches<'_>, LookupError> {
        let mode = self.hash_mode();
        if let Some(width) = mode.key_width()
            && key.len() != width
        {
            return Err(LookupError::InvalidKey(format!(
                "a {mode} key is {width} bytes ({} hex digits), this one is {}",
                width * 2,
                key.len()
            )));
        }
        match kind {
            Some(IdentifierKind::Email) => self.email_rows(key),
            Some(IdentifierKind::Username) => self.username_rows(key),
            None => {
                let email = self.email_rows(key)?;
                let user = self.username_rows(key)?;
                if user.is_empty() {
                    return Ok(email);
                }
                if email.is_empty() {
                    return Ok(user);
                }
                let mut all: Vec<u64> = email.chain(user).collect();
                all.sort_unstable();
                all.dedup();
                Ok(Matches(MatchesInner::List(all.into_iter())))
            }
        }
    }

    /// The stored key a query looks up (derived: hashed in a hashed index, never the
    /// identifier as given) and the map it searches (`None`: both).
    pub fn query_key(&self, query: &Query<'_>) -> Result<(Option<IdentifierKind>, Vec<u8>), LookupError> {
        let deriver = &self.inner.deriver;
        Ok(match *query {
            Query::Email(email) => {
                let normalized = normalized_email(email)?;
                (Some(IdentifierKind::Email), deriver.derive(normalized.as_bytes()).as_bytes().to_vec())
            }
            Query::Username(username) => {
                let normalized = normalized_username(username)?;
                (Some(IdentifierKind::Username), deriver.derive(normalized.as_bytes()).as_bytes().to_vec())
            }
            Query::Key { hex, kind } => (kind, keymode::parse_hex_key(hex).map_err(LookupError::InvalidKey)?),
        })
    }

    /// Rows matching a [`Query`].
    pub fn lookup(&self, query: &Query<'_>) -> Result<Matches<'_>, LookupError> {
        match *query {
            Query::Email(e) => self.lookup_email(e),
            Query::Username(u) => self.lookup_username(u),
            Query::Key { hex, kind } => {
                let key = keymode::parse_hex_key(hex).map_err(LookupError::InvalidKey)?;
                self.lookup_key(&key, kind)
            }
        }
    }

    /// The live rows of e-mail key `key` over every segment.
    #[inline]
    pub(super) fn email_rows(&self, key: &[u8]) -> Result<Matches<'_>, LookupError> {
        match self.merged() {
            Some(layer) => self.merged_rows(layer, IdentifierKind::Email, key),
            None => self.email_rows_local(key),
        }
    }

    /// The live rows of username key `key` over every segment.
    #[inline]
    pub(super) fn username_rows(&self, key: &[u8]) -> Result<Matches<'_>, LookupError> {
        match self.merged() {
            Some(layer) => self.merged_rows(layer, IdentifierKind::Username, key),
            None => self.username_rows_local(key),
        }
    }

    /// The rows of e-mail key `key` in this segment alone.
    #[inline]
    pub(crate) fn email_rows_local(&self, key: &[u8]) -> Result<Matches<'_>, LookupError> {
        let files = &self.inner.files;
        match files.email_map.lookup(key)? {
            Some(ordinal) => Ok(Matches(MatchesInner::Range(files.email_ranges.rows(ordinal)?))),
            None => Ok(Matches::empty()),
        }
    }

    /// The rows of username key `key` in this segment alone.
    #[inline]
    pub(crate) fn username_rows_local(&self, key: &[u8]) -> Result<Matches<'_>, LookupError> {
        let files = &self.inner.files;
        match files.username_map.lookup(key)? {
            Some(ordinal) => Ok(Matches(MatchesInner::Postings(files.username_postings.rows(ordinal)?))),
            None => Ok(Matches::empty()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_name_their_kind() {
        assert_eq!(Query::auto("a@b.c"), Query::Email("a@b.c"));
        assert_eq!(Query::auto("bob"), Query::Username("bob"));
        assert_eq!(Query::Key { hex: "00", kind: None }.kind_name(), "key");
    }
}
