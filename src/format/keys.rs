//! `email.keys` / `username.keys`: hashed keys as a sorted fixed-width column with a
//! radix bucket directory. Maps a key to its ordinal (its position in the column).
//!
//! Hashed keys are uniformly random bytes, so an FST finds no shared prefixes or
//! suffixes to compress; a sorted column with a directory indexed by the top
//! `radix_bits` bits of the key takes `key_width` bytes per key plus at most 2 bytes
//! per key of directory, and a lookup is one directory read plus a search inside a
//! bucket of 2 to 4 keys on average (one or two cache lines).
//!
//! Body: `keys[count × key_width]` then `directory[(2^radix_bits + 1) × entry_width]`,
//! where `directory[p]` is the ordinal of the first key whose top bits are ≥ `p`.
//! Header parameters: `[count, key_width, radix_bits, entry_width]`.

use super::{FileView, FileWriter, FormatError, Kind, read_uint, section_end, uint_width, write_uint};
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Kind tag of `email.keys`.
pub const EMAIL_KIND: Kind = *b"EKEY";
/// Kind tag of `username.keys`.
pub const USERNAME_KIND: Kind = *b"UKEY";
/// Largest directory: 2^24 buckets (64 MiB of entries), reached at 2^25 keys.
pub const MAX_RADIX_BITS: u32 = 24;

/// The directory size for `count` keys: the largest `b` with `2^b ≤ count / 2`, so the
/// directory costs at most 2 bytes per key (4-byte entries) and a bucket holds 2 to 4
/// keys on average.
pub fn radix_bits(count: u64) -> u32 {
    if count < 4 { 0 } else { (63 - count.leading_zeros() - 1).min(MAX_RADIX_BITS) }
}

/// The bucket of `key`: its first `bits` bits (keys are at least 4 bytes).
#[inline]
fn bucket(key: &[u8], bits: u32) -> u64 {
    if bits == 0 {
        return 0;
    }
    let mut top = [0u8; 4];
    for (dst, src) in top.iter_mut().zip(key) {
        *dst = *src;
    }
    (u32::from_be_bytes(top) >> (32 - bits)) as u64
}

/// Streams sorted keys into a key file, then appends the directory.
pub struct SortedKeysWriter {
    out: FileWriter,
    path: PathBuf,
    width: usize,
    count: u64,
    last: Vec<u8>,
}

impl SortedKeysWriter {
    /// Creates `path` for keys of `width` bytes (at least 4).
    pub fn create(path: &Path, kind: Kind, width: usize) -> io::Result<SortedKeysWriter> {
        if !(4..=32).contains(&width) {
            return Err(io::Error::other(format!("key width {width} outside 4..=32")));
        }
        Ok(SortedKeysWriter {
            out: FileWriter::create(path, kind)?,
            path: path.to_path_buf(),
            width,
            count: 0,
            last: Vec::new(),
        })
    }

    /// Appends the next key; keys must arrive strictly ascending; returns its ordinal.
    pub fn push(&mut self, key: &[u8]) -> io::Result<u64> {
        if key.len() != self.width {
            return Err(io::Error::other(format!("key of {} bytes in a {}-byte column", key.len(), self.width)));
        }
        if self.count > 0 && key <= self.last.as_slice() {
            return Err(io::Error::other("keys out of order: the builder must push strictly ascending keys"));
        }
        self.out.write_all(key)?;
        self.last.clear();
        self.last.extend_from_slice(key);
        self.count += 1;
        Ok(self.count - 1)
    }

    /// Keys written so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Builds the directory from the keys written (read back sequentially, so memory
    /// stays constant whatever the key count) and finishes the file.
    pub fn finish(mut self) -> io::Result<super::FileSummary> {
        let bits = radix_bits(self.count);
        let entry_width = uint_width(self.count);
        self.out.flush()?;
        let mut file = File::open(&self.path)?;
        file.seek(SeekFrom::Start(super::HEADER_LEN as u64))?;
        let mut reader = BufReader::with_capacity(1 << 20, file);
        let mut key = vec![0u8; self.width];
        let mut next_bucket = 0u64;
        for ordinal in 0..self.count {
            reader.read_exact(&mut key)?;
            let b = bucket(&key, bits);
            while next_bucket <= b {
                write_uint(&mut self.out, ordinal, entry_width)?;
                next_bucket += 1;
            }
        }
        while next_bucket <= 1u64 << bits {
            write_uint(&mut self.out, self.count, entry_width)?;
            next_bucket += 1;
        }
        self.out.finish([self.count, self.width as u64, bits as u64, entry_width as u64])
    }
}

/// The ordinals of one radix bucket, checked against the key count (only
/// [`SortedKeysReader::bucket_span`] makes one).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct BucketSpan {
    lo: u64,
    hi: u64,
}

/// Looks keys up in a key file.
#[derive(Clone, Debug)]
pub struct SortedKeysReader {
    view: FileView,
    count: u64,
    width: usize,
    bits: u32,
    entry_width: usize,
    dir_offset: usize,
}

impl SortedKeysReader {
    /// Checks the header against the body (constant time). `width` is the key width
    /// the manifest's hash mode implies.
    pub fn new(view: FileView, width: usize) -> Result<SortedKeysReader, FormatError> {
        let [count, key_width, bits, entry_width] = view.params();
        if key_width != width as u64 {
            return Err(view.damaged(format!("key width {key_width}, but the hash mode gives {width}")));
        }
        if bits > MAX_RADIX_BITS as u64 {
            return Err(view.damaged(format!("radix bits {bits} above the maximum {MAX_RADIX_BITS}")));
        }
        if entry_width != 4 && entry_width != 8 {
            return Err(view.damaged(format!("directory entry width {entry_width} is not 4 or 8")));
        }
        let dir_offset = section_end(&view, 0, count, key_width, "key column")?;
        let end = section_end(&view, dir_offset, (1u64 << bits) + 1, entry_width, "radix directory")?;
        if end != view.body().len() as u64 {
            return Err(view.damaged("trailing bytes after the radix directory"));
        }
        Ok(SortedKeysReader {
            count,
            width,
            bits: bits as u32,
            entry_width: entry_width as usize,
            dir_offset: dir_offset as usize,
            view,
        })
    }

    /// Number of keys.
    pub fn len(&self) -> u64 {
        self.count
    }

    /// The key with ordinal `i`.
    pub fn key(&self, i: u64) -> Option<&[u8]> {
        let start = usize::try_from(i).ok()?.checked_mul(self.width)?;
        if i >= self.count {
            return None;
        }
        self.view.body().get(start..start + self.width)
    }

    fn dir(&self) -> &[u8] {
        self.view.body().get(self.dir_offset..).unwrap_or_default()
    }

    /// The ordinal of `key`, `None` when absent. A directory entry that points outside
    /// the column is reported as damage rather than followed.
    #[inline]
    pub fn lookup(&self, key: &[u8]) -> Result<Option<u64>, FormatError> {
        Ok(match self.bucket_span(key)? {
            Some(span) => self.search_span(key, span),
            None => None,
        })
    }

    /// First step of [`lookup`](Self::lookup) in a batch: hints the CPU to fetch the
    /// directory entries of `key`'s bucket (see [`crate::mmap::prefetch`]).
    #[inline]
    pub fn prefetch_bucket(&self, key: &[u8]) {
        if key.len() != self.width {
            return;
        }
        let b = bucket(key, self.bits) as usize;
        let dir = self.dir();
        crate::mmap::prefetch(dir, b * self.entry_width);
        crate::mmap::prefetch(dir, (b + 1) * self.entry_width);
    }

    /// Second step: the ordinals `lo..hi` of `key`'s bucket (read from the directory
    /// and checked against the key count), `None` when `key` has the wrong width.
    #[inline]
    pub fn bucket_span(&self, key: &[u8]) -> Result<Option<BucketSpan>, FormatError> {
        if key.len() != self.width {
            return Ok(None);
        }
        let b = bucket(key, self.bits);
        let dir = self.dir();
        let (Some(lo), Some(hi)) = (read_uint(dir, b, self.entry_width), read_uint(dir, b + 1, self.entry_width))
        else {
            return Err(self.view.damaged("radix directory shorter than its header says"));
        };
        if lo > hi || hi > self.count {
            return Err(self.view.damaged(format!("radix bucket {b} spans ordinals {lo}..{hi} of {}", self.count)));
        }
        Ok(Some(BucketSpan { lo, hi }))
    }

    /// Hints the CPU to fetch the keys of a bucket (at most 4 cache lines).
    #[inline]
    pub fn prefetch_span(&self, span: BucketSpan) {
        let (start, end) = (span.lo as usize * self.width, span.hi as usize * self.width);
        crate::mmap::prefetch_range(self.view.body(), start..end, 4);
    }

    /// Last step: the ordinal of `key` inside its bucket (from [`bucket_span`](Self::bucket_span)
    /// with the same key), `None` when absent.
    #[inline]
    pub fn search_span(&self, key: &[u8], span: BucketSpan) -> Option<u64> {
        let BucketSpan { lo, hi } = span;
        let keys = self.view.body().get(lo as usize * self.width..hi as usize * self.width).unwrap_or_default();
        // Binary search over the bucket; a damaged (unsorted) bucket gives a wrong but
        // in-bounds answer, which only `verify` can tell.
        let (mut left, mut right) = (0usize, (hi - lo) as usize);
        while left < right {
            let mid = left + (right - left) / 2;
            let candidate = keys.get(mid * self.width..(mid + 1) * self.width).unwrap_or_default();
            match candidate.cmp(key) {
                std::cmp::Ordering::Less => left = mid + 1,
                std::cmp::Ordering::Greater => right = mid,
                std::cmp::Ordering::Equal => return Some(lo + mid as u64),
            }
        }
        None
    }

    /// Full structure check: keys strictly ascending, directory consistent with them.
    pub fn verify(&self) -> Result<(), FormatError> {
        let mut next_bucket = 0u64;
        let dir = self.dir();
        let mut prev: Option<&[u8]> = None;
        for i in 0..self.count {
            let key = self.key(i).ok_or_else(|| self.view.damaged("key column truncated"))?;
            if prev.is_some_and(|p| p >= key) {
                return Err(self.view.damaged(format!("keys {} and {i} are not in strictly ascending order", i - 1)));
            }
            prev = Some(key);
            let b = bucket(key, self.bits);
            while next_bucket <= b {
                if read_uint(dir, next_bucket, self.entry_width) != Some(i) {
                    return Err(self.view.damaged(format!("radix directory entry {next_bucket} is wrong")));
                }
                next_bucket += 1;
            }
        }
        while next_bucket <= 1u64 << self.bits {
            if read_uint(dir, next_bucket, self.entry_width) != Some(self.count) {
                return Err(self.view.damaged(format!("radix directory entry {next_bucket} is wrong")));
            }
            next_bucket += 1;
        }
        Ok(())
    }

    /// The file view.
    pub fn view(&self) -> &FileView {
        &self.view
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mmap::Bytes;

    fn build(keys: &[Vec<u8>], width: usize) -> SortedKeysReader {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("email.keys");
        let mut w = SortedKeysWriter::create(&path, EMAIL_KIND, width).unwrap();
        for k in keys {
            w.push(k).unwrap();
        }
        w.finish().unwrap();
        let view = FileView::parse("email.keys", Bytes::from_vec(std::fs::read(&path).unwrap()), EMAIL_KIND).unwrap();
        SortedKeysReader::new(view, width).unwrap()
    }

    fn pseudo_random_keys(n: usize, width: usize) -> Vec<Vec<u8>> {
        let mut keys: Vec<Vec<u8>> = (0..n as u64)
            .map(|i| {
                let h = xxhash_rust::xxh3::xxh3_128(&i.to_le_bytes()).to_be_bytes();
                h.iter().cycle().take(width).copied().collect()
            })
            .collect();
        keys.sort();
        keys.dedup();
        keys
    }

    #[test]
    fn radix_bits_bound_the_directory() {
        assert_eq!(radix_bits(0), 0);
        assert_eq!(radix_bits(3), 0);
        assert_eq!(radix_bits(4), 1);
        assert_eq!(radix_bits(1000), 8);
        assert_eq!(radix_bits(1 << 40), MAX_RADIX_BITS);
        for n in [4u64, 5, 100, 65_536, 1_000_000] {
            assert!((1u64 << radix_bits(n)) * 4 <= 2 * n, "{n}");
        }
    }

    #[test]
    fn finds_every_key_and_no_other() {
        for (n, width) in [(0, 16), (1, 8), (3, 16), (1000, 16), (5000, 32), (777, 8)] {
            let keys = pseudo_random_keys(n, width);
            let reader = build(&keys, width);
            assert_eq!(reader.len(), keys.len() as u64);
            reader.verify().unwrap();
            for (i, k) in keys.iter().enumerate() {
                assert_eq!(reader.lookup(k).unwrap(), Some(i as u64));
                let mut miss = k.clone();
                miss[width - 1] ^= 0x55;
                if keys.binary_search(&miss).is_err() {
                    assert_eq!(reader.lookup(&miss).unwrap(), None);
                }
            }
            assert_eq!(reader.lookup(&[0u8; 3]).unwrap(), None);
        }
    }

    #[test]
    fn rejects_unsorted_input() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = SortedKeysWriter::create(&dir.path().join("k"), EMAIL_KIND, 8).unwrap();
        w.push(&[2; 8]).unwrap();
        assert!(w.push(&[1; 8]).is_err());
        assert!(w.push(&[2; 8]).is_err());
        assert!(w.push(&[3; 4]).is_err());
    }

    #[test]
    fn damaged_directory_is_an_error_not_a_panic() {
        let keys = pseudo_random_keys(100, 16);
        let reader = build(&keys, 16);
        let dir_start = super::super::HEADER_LEN + reader.dir_offset;
        let mut file = Vec::new();
        file.extend_from_slice(&encode_whole(&reader));
        let dir_end = file.len() - super::super::FOOTER_LEN;
        for b in file[dir_start..dir_end].iter_mut() {
            *b = 0xff;
        }
        let view = FileView::parse("email.keys", Bytes::from_vec(file), EMAIL_KIND).unwrap();
        let damaged = SortedKeysReader::new(view, 16).unwrap();
        for k in &keys {
            let err = damaged.lookup(k).unwrap_err();
            assert!(err.to_string().contains("email.keys: damaged: radix bucket"), "{err}");
        }
        assert!(damaged.verify().is_err());
    }

    fn encode_whole(reader: &SortedKeysReader) -> Vec<u8> {
        let [count, width, bits, ew] = reader.view().params();
        let mut file =
            super::super::encode_header(EMAIL_KIND, reader.view().body().len() as u64, [count, width, bits, ew])
                .to_vec();
        file.extend_from_slice(reader.view().body());
        file.extend_from_slice(&[0u8; 8]);
        file.extend_from_slice(&super::super::FOOTER_MAGIC);
        file
    }
}
