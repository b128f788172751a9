//! `email.fst` / `username.fst`: plaintext keys (`plain` mode) in an FST map from the
//! normalized identifier to its ordinal. FSTs share prefixes and suffixes, which
//! e-mail addresses have plenty of (`@gmail.com`), and allow prefix and domain scans.
//!
//! Body: the `fst` crate's map bytes, as its builder writes them.
//! Header parameters: `[key_count, 0, 0, 0]`.

use super::{FileView, FileWriter, FormatError, Kind};
use crate::mmap::Bytes;
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

/// Looks plaintext keys up.
#[derive(Clone)]
pub struct FstReader {
    view: FileView,
    map: fst::Map<Bytes>,
}

impl std::fmt::Debug for FstReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FstReader({} keys)", self.map.len())
    }
}

impl FstReader {
    /// Opens the FST (the `fst` crate checks its own header and footer in constant
    /// time) and checks the key count.
    pub fn new(view: FileView) -> Result<FstReader, FormatError> {
        let map = fst::Map::new(view.body().clone()).map_err(|e| view.damaged(format!("not a valid FST: {e}")))?;
        let [count, ..] = view.params();
        if map.len() as u64 != count {
            return Err(view.damaged(format!("FST holds {} keys, header says {count}", map.len())));
        }
        Ok(FstReader { view, map })
    }

    /// Number of keys.
    pub fn len(&self) -> u64 {
        self.map.len() as u64
    }

    /// Whether there are no keys.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The ordinal of `key`. The `fst` crate indexes its bytes with bounds checks, so a
    /// damaged FST cannot read out of bounds; a panic it raises on damaged bytes is
    /// turned into an error here rather than taking the process down.
    #[inline]
    pub fn lookup(&self, key: &[u8]) -> Result<Option<u64>, FormatError> {
        let found = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.map.get(key)))
            .map_err(|_| self.view.damaged("the FST is damaged (lookup failed)"))?;
        match found {
            Some(ord) if ord >= self.len() => Err(self.view.damaged(format!("FST value {ord} is not a key ordinal"))),
            other => Ok(other),
        }
    }

    /// The underlying map, for scans.
    pub fn map(&self) -> &fst::Map<Bytes> {
        &self.map
    }

    /// Full structure check: the FST's own checksum, then every key in order with
    /// ordinals 0, 1, 2, ...
    pub fn verify(&self) -> Result<(), FormatError> {
        self.map.as_fst().verify().map_err(|e| self.view.damaged(format!("FST checksum: {e}")))?;
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            use fst::Streamer;
            let mut stream = self.map.stream();
            let mut expected = 0u64;
            while let Some((_, ord)) = stream.next() {
                if ord != expected {
                    return Err(format!("key {expected} has ordinal {ord}"));
                }
                expected += 1;
            }
            if expected != self.len() {
                Err(format!("{expected} keys streamed, {} expected", self.len()))
            } else {
                Ok(())
            }
        }));
        match result {
            Ok(Ok(())) => Ok(()),
            Ok(Err(reason)) => Err(self.view.damaged(reason)),
            Err(_) => Err(self.view.damaged("the FST is damaged (scan failed)")),
        }
    }

    /// The file view (for verification).
    pub fn view(&self) -> &FileView {
        &self.view
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        }
        assert_eq!(r.lookup(b"carol@example.com").unwrap(), None);
        r.verify().unwrap();
    }
}
