//! The only unsafe code of the crate: mapping index files into memory, and the
//! software prefetch hint ([`prefetch`]) used by the builder and batch lookups.
//!
//! # Safety contract
//!
//! A memory map is only sound while nobody changes the mapped file. breachdex never
//! writes to a published index (builds write a new directory and rename it into place),
//! but another process could: truncating a mapped file makes later reads of the lost
//! pages raise `SIGBUS`, and rewriting it in place changes bytes under the reader's
//! feet. Treat index directories as immutable: publish new builds under a new name and
//! switch readers over, never edit or truncate files of an open index.
//!
//! Everything above this module works on [`Bytes`], which is either a map or an owned
//! buffer, so tests and fuzzers run the same reader on `Vec<u8>`.

#![allow(unsafe_code)]

use std::fs::File;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

/// How the pages of a mapped file are expected to be read.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Default)]
pub enum Access {
    /// Point lookups: ask the kernel not to read ahead (`MADV_RANDOM`).
    #[default]
    Random,
    /// Whole-file scans such as `verify`: read ahead aggressively.
    Sequential,
}

enum Backing {
    Map(memmap2::Mmap),
    Heap(Vec<u8>),
}

impl Backing {
    fn as_slice(&self) -> &[u8] {
        match self {
            Backing::Map(map) => map,
            Backing::Heap(vec) => vec,
        }
    }
}

/// An immutable, cheaply clonable byte buffer: a whole mapped file or owned bytes, or a
/// sub-range of either.
#[derive(Clone)]
pub struct Bytes {
    backing: Arc<Backing>,
    range: Range<usize>,
}

impl std::fmt::Debug for Bytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Bytes({} bytes)", self.range.len())
    }
}

impl Bytes {
    /// Owned bytes (tests, fuzzing, small files).
    pub fn from_vec(vec: Vec<u8>) -> Bytes {
        let len = vec.len();
        Bytes { backing: Arc::new(Backing::Heap(vec)), range: 0..len }
    }

    /// Maps a whole file read-only.
    ///
    /// An empty file is returned as an empty owned buffer (mapping zero bytes fails on
    /// some systems). `populate` asks the kernel to fault every page in now, trading
    /// open time for first-lookup latency.
    pub fn map_file(file: &File, access: Access, populate: bool) -> std::io::Result<Bytes> {
        let len = file.metadata()?.len();
        if len == 0 {
            return Ok(Bytes::from_vec(Vec::new()));
        }
        let mut options = memmap2::MmapOptions::new();
        if populate {
            options.populate();
        }
        // SAFETY: the map is read-only and we hand out only shared slices of it. The
        // remaining hazard, another process truncating or rewriting the file while it
        // is mapped, cannot be ruled out by any code here; it is documented at the
        // module level and in the README as a rule for index directories (immutable
        // once published), the same contract every mmap-based reader has.
        let map = unsafe { options.map(file)? };
        let advice = match access {
            Access::Random => memmap2::Advice::Random,
            Access::Sequential => memmap2::Advice::Sequential,
        };
        // Advice is a hint: a kernel that refuses it serves the same bytes.
        let _ = map.advise(advice);
        let len = map.len();
        Ok(Bytes { backing: Arc::new(Backing::Map(map)), range: 0..len })
    }

    /// Opens and maps the file at `path`.
    pub fn map_path(path: &Path, access: Access, populate: bool) -> std::io::Result<Bytes> {
        let file = File::open(path)?;
        Bytes::map_file(&file, access, populate)
    }

    /// A sub-range of this buffer, or `None` when it is out of bounds.
    pub fn slice(&self, range: Range<usize>) -> Option<Bytes> {
        if range.start > range.end || range.end > self.range.len() {
            return None;
        }
        Some(Bytes {
            backing: Arc::clone(&self.backing),
            range: self.range.start + range.start..self.range.start + range.end,
        })
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.range.len()
    }

    /// Whether the buffer is empty.
    pub fn is_empty(&self) -> bool {
        self.range.is_empty()
    }

    /// Whether the bytes come from a memory map.
    pub fn is_mapped(&self) -> bool {
        matches!(*self.backing, Backing::Map(_))
    }
}

impl AsRef<[u8]> for Bytes {
    fn as_ref(&self) -> &[u8] {
        // The range was checked against the backing when this value was made.
        self.backing.as_slice().get(self.range.clone()).unwrap_or(&[])
    }
}

impl std::ops::Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_ref()
    }
}

/// A zero-filled anonymous memory region for large scratch buffers (the builder's sort
/// arena), advised to use transparent huge pages where the kernel offers them: random
/// reads over gigabytes then miss the TLB far less often. Pages cost memory only once
/// touched.
pub struct Arena {
    map: memmap2::MmapMut,
}

impl Arena {
    /// Reserves `len` bytes (at least one).
    pub fn new(len: usize) -> std::io::Result<Arena> {
        let map = memmap2::MmapMut::map_anon(len.max(1))?;
        #[cfg(target_os = "linux")]
        {
            // Only a hint: kernels without THP refuse it, which changes nothing else.
            let _ = map.advise(memmap2::Advice::HugePage);
        }
        Ok(Arena { map })
    }

    /// The whole region.
    pub fn as_slice(&self) -> &[u8] {
        &self.map
    }

    /// The whole region, writable.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut self.map
    }

    /// Size of the region.
    pub fn len(&self) -> usize {
        self.map.len()
    }
}

/// Hints the CPU to load the cache line holding `data[offset]` (no effect when
/// `offset` is out of bounds or on targets without a prefetch instruction). Used to
/// overlap memory misses: start the loads of the next few items, then work on the
/// current one.
#[inline(always)]
pub fn prefetch(data: &[u8], offset: usize) {
    #[cfg(target_arch = "x86_64")]
    if let Some(byte) = data.get(offset) {
        // SAFETY: `_mm_prefetch` only needs SSE, which every x86_64 CPU has; a prefetch
        // never faults and never changes memory, and the address is inside `data`.
        unsafe {
            core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(std::ptr::from_ref(byte).cast());
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (data, offset);
}

/// Cache line size assumed by [`prefetch_range`].
pub const CACHE_LINE: usize = 64;

/// [`prefetch`] of every cache line that `bytes[range]` touches, at most `max_lines`
/// of them (the hardware prefetcher follows longer sequential reads by itself).
/// Out-of-bounds parts are ignored.
#[inline]
pub fn prefetch_range(bytes: &[u8], range: Range<usize>, max_lines: usize) {
    let end = range.end.min(bytes.len());
    let mut at = range.start;
    let mut lines = 0;
    while at < end && lines < max_lines {
        prefetch(bytes, at);
        // The next line boundary after `at`.
        at = (at | (CACHE_LINE - 1)).saturating_add(1);
        lines += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn maps_and_slices() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(b"hello, mapped world").unwrap();
        let bytes = Bytes::map_path(file.path(), Access::Random, false).unwrap();
        assert!(bytes.is_mapped());
        assert_eq!(&*bytes, b"hello, mapped world");
        let sub = bytes.slice(7..13).unwrap();
        assert_eq!(&*sub, b"mapped");
        assert_eq!(&*sub.slice(1..3).unwrap(), b"ap");
        assert!(sub.slice(2..7).is_none());
        #[allow(clippy::reversed_empty_ranges)]
        let reversed = 5..4;
        assert!(bytes.slice(reversed).is_none());
    }

    #[test]
    fn arena_is_zeroed_and_writable() {
        let mut arena = Arena::new(3 << 20).unwrap();
        assert_eq!(arena.len(), 3 << 20);
        assert!(arena.as_slice().iter().all(|b| *b == 0));
        arena.as_mut_slice()[12345] = 9;
        assert_eq!(arena.as_slice()[12345], 9);
        assert_eq!(Arena::new(0).unwrap().len(), 1);
    }

    #[test]
    fn prefetch_accepts_any_offset() {
        let data = vec![7u8; 100];
        for offset in [0, 50, 99, 100, usize::MAX] {
            prefetch(&data, offset);
        }
        prefetch(&[], 0);
        assert_eq!(data[99], 7);
    }

    #[test]
    fn prefetch_range_accepts_any_range() {
        let bytes = vec![7u8; 1000];
        prefetch_range(&bytes, 10..900, 4);
        prefetch_range(&bytes, 900..usize::MAX, usize::MAX);
        #[allow(clippy::reversed_empty_ranges)]
        prefetch_range(&bytes, 500..20, 8);
        assert_eq!(bytes, vec![7u8; 1000]);
    }

    #[test]
    fn empty_file_is_an_empty_buffer() {
        let file = tempfile::NamedTempFile::new().unwrap();
        let bytes = Bytes::map_path(file.path(), Access::Sequential, true).unwrap();
        assert!(bytes.is_empty());
    }
}
