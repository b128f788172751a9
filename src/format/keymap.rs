//! The key maps (`email.fst` / `username.fst` in `plain` mode, `email.keys` /
//! `username.keys` in hashed modes): a key to its ordinal. One file kind with two
//! encodings chosen by the hash mode; this module picks the file name and the encoding,
//! and holds the writer and the reader side by side. The encodings themselves live in
//! [`super::fstmap`] (an FST of normalized identifiers) and [`super::keys`] (sorted
//! fixed-width hashes with a radix directory).

use super::fstmap::{self, FstReader, FstWriter};
use super::keys::{self, SortedKeysReader, SortedKeysWriter};
use super::{FileSummary, FileView, FormatError, Kind};
use crate::keymode::HashMode;
use std::io;
use std::path::Path;

/// Which identifier a key map holds.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum KeyMapRole {
    /// The e-mail map: an ordinal is a run of rows in `email.ranges`.
    Email,
    /// The username map: an ordinal is a list in `username.postings`.
    Username,
}

/// The file name of the `role` key map of an index in hash mode `mode`.
pub fn file_name(mode: HashMode, role: KeyMapRole) -> &'static str {
    match (mode.is_hashed(), role) {
        (false, KeyMapRole::Email) => "email.fst",
        (false, KeyMapRole::Username) => "username.fst",
        (true, KeyMapRole::Email) => "email.keys",
        (true, KeyMapRole::Username) => "username.keys",
    }
}

/// The kind tag of the `role` key map of an index in hash mode `mode`.
pub fn kind(mode: HashMode, role: KeyMapRole) -> Kind {
    match (mode.is_hashed(), role) {
        (false, KeyMapRole::Email) => fstmap::EMAIL_KIND,
        (false, KeyMapRole::Username) => fstmap::USERNAME_KIND,
        (true, KeyMapRole::Email) => keys::EMAIL_KIND,
        (true, KeyMapRole::Username) => keys::USERNAME_KIND,
    }
}

/// Writes a key map: keys pushed in ascending order get ordinals 0, 1, 2, ...
pub enum KeyMapWriter {
    /// `plain` mode.
    Fst(FstWriter),
    /// Hashed modes.
    Sorted(SortedKeysWriter),
}

impl KeyMapWriter {
    /// Creates the `role` key map of a `mode` index in `dir`.
    pub fn create(dir: &Path, mode: HashMode, role: KeyMapRole) -> io::Result<KeyMapWriter> {
        let path = dir.join(file_name(mode, role));
        Ok(match mode.key_width() {
            None => KeyMapWriter::Fst(FstWriter::create(&path, kind(mode, role))?),
            Some(width) => KeyMapWriter::Sorted(SortedKeysWriter::create(&path, kind(mode, role), width)?),
        })
    }

    /// Appends the next key (ascending); returns its ordinal.
    pub fn push(&mut self, key: &[u8]) -> io::Result<u64> {
        match self {
            KeyMapWriter::Fst(w) => w.push(key),
            KeyMapWriter::Sorted(w) => w.push(key),
        }
    }

    /// Keys pushed so far.
    pub fn count(&self) -> u64 {
        match self {
            KeyMapWriter::Fst(w) => w.count(),
            KeyMapWriter::Sorted(w) => w.count(),
        }
    }

    /// Writes the footer and closes the file.
    pub fn finish(self) -> io::Result<FileSummary> {
        match self {
            KeyMapWriter::Fst(w) => w.finish(),
            KeyMapWriter::Sorted(w) => w.finish(),
        }
    }
}

/// The keys of a key map in ordinal order (which is ascending key order), streamed:
/// the bounded FST walk in `plain` mode, the sorted key column in hashed modes.
/// From [`KeyMapReader::ordered_keys`].
pub enum OrderedKeys<'a> {
    /// `plain` mode: the FST stream.
    Fst(&'a FstReader, super::fst_safe::Stream<'a>),
    /// Hashed modes: the sorted keys, read by ordinal.
    Sorted(&'a SortedKeysReader),
}

impl OrderedKeys<'_> {
    /// The key of ordinal `ordinal`, which must be the ordinal after the previous call's
    /// (0 first); a key missing from the stream or out of order is damage naming the
    /// file.
    pub fn key(&mut self, ordinal: u64) -> Result<&[u8], FormatError> {
        match self {
            OrderedKeys::Fst(map, stream) => match stream.next() {
                Ok(Some((key, value))) if value == ordinal => Ok(key),
                Ok(_) => Err(map.damaged(format!("key ordinal {ordinal} is missing from the key stream"))),
                Err(e) => Err(map.damaged(format!("{e}"))),
            },
            OrderedKeys::Sorted(map) => {
                map.key(ordinal).ok_or_else(|| map.view().damaged(format!("no key has ordinal {ordinal}")))
            }
        }
    }
}

/// Reads a key map written by [`KeyMapWriter`].
#[derive(Clone, Debug)]
pub enum KeyMapReader {
    /// `plain` mode.
    Fst(FstReader),
    /// Hashed modes.
    Sorted(SortedKeysReader),
}

impl KeyMapReader {
    /// Reads the key map in `view`, in the encoding of hash mode `mode`.
    pub fn new(view: FileView, mode: HashMode) -> Result<KeyMapReader, FormatError> {
        Ok(match mode.key_width() {
            None => KeyMapReader::Fst(FstReader::new(view)?),
            Some(width) => KeyMapReader::Sorted(SortedKeysReader::new(view, width)?),
        })
    }

    /// Attaches a plain key map's accelerator (`email.fpt` / `username.fpt`); a hashed
    /// key map has none, so `view` is then an error naming the file.
    pub fn with_fingerprints(self, view: FileView) -> Result<KeyMapReader, FormatError> {
        match self {
            KeyMapReader::Fst(m) => Ok(KeyMapReader::Fst(m.with_fingerprints(view)?)),
            KeyMapReader::Sorted(_) => Err(view.damaged("an accelerator belongs to a plain index only")),
        }
    }

    /// The ordinal of `key`, if present.
    pub fn lookup(&self, key: &[u8]) -> Result<Option<u64>, FormatError> {
        match self {
            KeyMapReader::Fst(m) => m.lookup(key),
            KeyMapReader::Sorted(m) => m.lookup(key),
        }
    }

    /// The identifier of key ordinal `ordinal` of a plain key map (its normalized text,
    /// by the reverse FST walk); a hashed key map holds no identifiers, so it is an error.
    pub fn plain_key(&self, ordinal: u64) -> Result<Vec<u8>, FormatError> {
        match self {
            KeyMapReader::Fst(m) => m.key_of(ordinal),
            KeyMapReader::Sorted(m) => Err(m.view().damaged("a hashed key map holds no identifiers")),
        }
    }

    /// Streams the keys in ordinal order ([`OrderedKeys`]).
    pub fn ordered_keys(&self) -> OrderedKeys<'_> {
        match self {
            KeyMapReader::Fst(m) => OrderedKeys::Fst(m, m.stream()),
            KeyMapReader::Sorted(m) => OrderedKeys::Sorted(m),
        }
    }

    /// The key (as stored: the normalized identifier, or the derived hash) of ordinal
    /// `ordinal`.
    pub fn key_at(&self, ordinal: u64) -> Result<Vec<u8>, FormatError> {
        match self {
            KeyMapReader::Fst(m) => m.key_of(ordinal),
            KeyMapReader::Sorted(m) => m
                .key(ordinal)
                .map(<[u8]>::to_vec)
                .ok_or_else(|| m.view().damaged(format!("no key has ordinal {ordinal}"))),
        }
    }

    /// Number of keys.
    pub fn len(&self) -> u64 {
        match self {
            KeyMapReader::Fst(m) => m.len(),
            KeyMapReader::Sorted(m) => m.len(),
        }
    }

    /// Checks the whole structure (keys strictly ascending, directories consistent).
    pub fn verify(&self) -> Result<(), FormatError> {
        match self {
            KeyMapReader::Fst(m) => m.verify(),
            KeyMapReader::Sorted(m) => m.verify(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_kinds_follow_the_mode() {
        let hashed: HashMode = "sha256".parse().unwrap();
        assert_eq!(file_name(HashMode::Plain, KeyMapRole::Email), "email.fst");
        assert_eq!(file_name(hashed, KeyMapRole::Username), "username.keys");
        assert_eq!(kind(HashMode::Plain, KeyMapRole::Username), fstmap::USERNAME_KIND);
        assert_eq!(kind(hashed, KeyMapRole::Email), keys::EMAIL_KIND);
    }
}
