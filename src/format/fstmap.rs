//! `email.fst` / `username.fst`: plaintext keys (`plain` mode) in an FST map from the
//! normalized identifier to its ordinal. FSTs share prefixes and suffixes, which
//! e-mail addresses have plenty of (`@gmail.com`), and allow prefix and domain scans.
//!
//! Body: the `fst` crate's map bytes, as its builder writes them.
//! Header parameters: `[key_count, 0, 0, 0]`.

use super::fingerprints::{FingerprintReader, FingerprintSpan, Probe};
use super::fst_safe::{Damaged, FstMeta, Walk};
use super::{FileView, FileWriter, FormatError, Kind};
use std::io;
use std::path::Path;

/// Kind tag of `email.fst`.
pub const EMAIL_KIND: Kind = *b"EFST";
/// Kind tag of `username.fst`.
pub const USERNAME_KIND: Kind = *b"UFST";

/// Streams sorted keys into an FST file.
pub struct FstWriter {
    builder: fst::MapBuilder<FileWriter>,
    count: u64,
}

fn fst_io(e: fst::Error) -> io::Error {
    match e {
        fst::Error::Io(e) => e,
        other => io::Error::other(other.to_string()),
    }
}

impl FstWriter {
    /// Creates `path`.
    pub fn create(path: &Path, kind: Kind) -> io::Result<FstWriter> {
        let out = FileWriter::create(path, kind)?;
        Ok(FstWriter { builder: fst::MapBuilder::new(out).map_err(fst_io)?, count: 0 })
    }

    /// Appends the next key (strictly ascending); returns its ordinal.
    pub fn push(&mut self, key: &[u8]) -> io::Result<u64> {
        self.builder.insert(key, self.count).map_err(fst_io)?;
        self.count += 1;
        Ok(self.count - 1)
    }

    /// Keys written so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Finishes the FST and the file.
    pub fn finish(self) -> io::Result<super::FileSummary> {
        let out = self.builder.into_inner().map_err(fst_io)?;
        out.finish([self.count, 0, 0, 0])
    }
}

/// Looks plaintext keys up, with the bounds-checked decoder of [`super::fst_safe`]: no
/// bytes of a damaged or hostile FST make a lookup or `verify` panic, hang or read out
/// of bounds; they are reported as [`FormatError::Damaged`]. With an accelerator
/// ([`super::fingerprints`]) attached, lookups ask it first.
#[derive(Clone)]
pub struct FstReader {
    view: FileView,
    meta: FstMeta,
    fingerprints: Option<FingerprintReader>,
}

impl std::fmt::Debug for FstReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FstReader({} keys, accelerator: {})", self.meta.len(), self.fingerprints.is_some())
    }
}

impl FstReader {
    /// Opens the FST: checks its version, trailer and root address in constant time,
    /// and its key count against the header.
    pub fn new(view: FileView) -> Result<FstReader, FormatError> {
        let meta = FstMeta::parse(view.body()).map_err(|e| view.damaged(format!("not a valid FST: {e}")))?;
        let [count, ..] = view.params();
        if meta.len() != count {
            return Err(view.damaged(format!("FST holds {} keys, header says {count}", meta.len())));
        }
        Ok(FstReader { view, meta, fingerprints: None })
    }

    /// Attaches the accelerator in `view` (checked against this FST's key count).
    pub fn with_fingerprints(mut self, view: FileView) -> Result<FstReader, FormatError> {
        self.fingerprints = Some(FingerprintReader::new(view, self.len())?);
        Ok(self)
    }

    /// Number of keys.
    pub fn len(&self) -> u64 {
        self.meta.len()
    }

    /// The ordinal of `key`. Damaged FST bytes on the key's path (or a value that is
    /// not a key ordinal) are an error.
    #[inline]
    pub fn lookup(&self, key: &[u8]) -> Result<Option<u64>, FormatError> {
        match &self.fingerprints {
            Some(table) => self.resolve(table.probe(key)?, key),
            None => self.walk_answer(self.start_walk(key).finish()),
        }
    }

    /// The key of ordinal `ordinal`: the reverse walk of [`FstMeta::key_of`]. An ordinal
    /// that is not a key's, or damaged bytes on the way, is an error.
    pub fn key_of(&self, ordinal: u64) -> Result<Vec<u8>, FormatError> {
        let found = self.meta.key_of(self.view.body(), ordinal).map_err(|e| self.view.damaged(format!("{e}")))?;
        found.filter(|_| ordinal < self.len()).ok_or_else(|| self.view.damaged(format!("no key has ordinal {ordinal}")))
    }

    /// Every key with its ordinal, in key order (a bounded walk, [`super::fst_safe::Stream`]).
    pub fn stream(&self) -> super::fst_safe::Stream<'_> {
        self.meta.stream(self.view.body())
    }

    /// A damaged-file error for this FST.
    pub fn damaged(&self, reason: impl Into<String>) -> FormatError {
        self.view.damaged(reason)
    }

    /// The ordinal of `key` after the accelerator's answer `probe` for it.
    #[inline]
    pub fn resolve(&self, probe: Probe, key: &[u8]) -> Result<Option<u64>, FormatError> {
        match probe {
            Probe::Absent => Ok(None),
            Probe::Found(ordinal) => Ok(Some(ordinal)),
            Probe::AskFst => self.walk_answer(self.start_walk(key).finish()),
        }
    }

    /// Batch step 1: prefetch the accelerator's directory entry for `key` (nothing
    /// without an accelerator: the batch path then walks the FST with
    /// [`start_walk`](Self::start_walk)).
    #[inline]
    pub fn prefetch_start(&self, key: &[u8]) {
        if let Some(table) = &self.fingerprints {
            table.prefetch_bucket(key);
        }
    }

    /// Batch step 2: the accelerator's bucket for `key`, its entries prefetched
    /// (`None` without an accelerator).
    #[inline]
    pub fn locate(&self, key: &[u8]) -> Result<Option<FingerprintSpan>, FormatError> {
        match &self.fingerprints {
            Some(table) => {
                let span = table.span(key)?;
                table.prefetch_span(span);
                Ok(Some(span))
            }
            None => Ok(None),
        }
    }

    /// Batch step 3: the ordinal of `key` from its bucket (see [`locate`](Self::locate)).
    #[inline]
    pub fn finish_span(&self, key: &[u8], span: Option<FingerprintSpan>) -> Result<Option<u64>, FormatError> {
        match (&self.fingerprints, span) {
            (Some(table), Some(span)) => self.resolve(table.search(span), key),
            _ => self.lookup(key),
        }
    }

    /// The FST walk of `key`, not started: to be run together with others by
    /// [`walk_interleaved`](super::fst_safe::walk_interleaved), its answer then read by
    /// [`walk_answer`](Self::walk_answer). Without an accelerator, the batch path's
    /// replacement for [`lookup`](Self::lookup).
    #[inline]
    pub fn start_walk<'a>(&'a self, key: &'a [u8]) -> Walk<'a> {
        self.meta.walk(self.view.body(), key)
    }

    /// The ordinal of a key whose walk of this FST answered `found` (the same answer,
    /// or error, as [`lookup`](Self::lookup) without an accelerator): a damaged FST, or
    /// a value that is not a key ordinal, is an error naming the file.
    #[inline]
    pub fn walk_answer(&self, found: Result<Option<u64>, Damaged>) -> Result<Option<u64>, FormatError> {
        let found = found.map_err(|e| self.view.damaged(format!("the FST is damaged: {e}")))?;
        match found {
            Some(ord) if ord >= self.len() => Err(self.view.damaged(format!("FST value {ord} is not a key ordinal"))),
            other => Ok(other),
        }
    }

    /// Full structure check: the FST's own checksum (CRC32C), then every key in order
    /// with ordinals 0, 1, 2, ... (a bounded walk, see [`super::fst_safe::Stream`]).
    pub fn verify(&self) -> Result<(), FormatError> {
        let body: &[u8] = self.view.body();
        fst::raw::Fst::new(body)
            .and_then(|f| f.verify())
            .map_err(|e| self.view.damaged(format!("FST checksum: {e}")))?;
        let mut stream = self.meta.stream(body);
        let mut expected = 0u64;
        loop {
            match stream.next() {
                Ok(Some((_, ord))) if ord != expected => {
                    return Err(self.view.damaged(format!("key {expected} has ordinal {ord}")));
                }
                Ok(Some(_)) => expected += 1,
                Ok(None) => break,
                Err(e) => return Err(self.view.damaged(format!("the FST is damaged: {e}"))),
            }
        }
        if expected != self.len() {
            return Err(self.view.damaged(format!("{expected} keys streamed, {} expected", self.len())));
        }
        if let Some(table) = &self.fingerprints {
            let real = table.verify_table()?;
            let mut stream = self.meta.stream(body);
            let mut found = 0u64;
            while let Some((key, ordinal)) =
                stream.next().map_err(|e| self.view.damaged(format!("the FST is damaged: {e}")))?
            {
                found += u64::from(table.verify_key(key, ordinal)?);
            }
            table.check_found(real, found)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mmap::Bytes;

    #[test]
    fn fst_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("email.fst");
        let mut w = FstWriter::create(&path, EMAIL_KIND).unwrap();
        let keys = ["a@x.org", "alice@example.com", "bob@example.com"];
        for k in keys {
            w.push(k.as_bytes()).unwrap();
        }
        assert!(w.push(b"aaa").is_err());
        w.finish().unwrap();
        let view = FileView::parse("email.fst", Bytes::from_vec(std::fs::read(&path).unwrap()), EMAIL_KIND).unwrap();
        view.verify_checksum().unwrap();
        let r = FstReader::new(view).unwrap();
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(r.lookup(k.as_bytes()).unwrap(), Some(i as u64));
            assert_eq!(r.key_of(i as u64).unwrap(), k.as_bytes());
        }
        let err = r.key_of(keys.len() as u64).unwrap_err().to_string();
        assert!(err.contains("email.fst: damaged: no key has ordinal 3"), "{err}");
        assert_eq!(r.lookup(b"carol@example.com").unwrap(), None);
        r.verify().unwrap();
    }
}
