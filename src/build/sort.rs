//! External sort: entries accumulate in a memory-bounded buffer, are sorted and
//! spilled to run files when the buffer is full, and come back out through a k-way
//! merge. Peak memory is the buffer budget plus one read buffer per run, whatever the
//! input size.
//!
//! An entry is `[u16 LE sort_key_len][sort_key][u32 LE payload_len][payload]`
//! ([`encode_entry`]); entries are ordered by the bytes of `sort_key` alone (callers
//! encode keys so that byte order is the order they need). Run files hold
//! `[u32 LE entry_len][entry]` back to back.

use rayon::slice::ParallelSliceMut;
use std::cmp::Ordering;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

/// Bytes of bookkeeping per buffered entry (its prefix and offset).
const INDEX_ENTRY_BYTES: usize = 16;

/// The sort key of an encoded entry (empty for a malformed entry).
#[inline]
pub fn sort_key(entry: &[u8]) -> &[u8] {
    let len = match entry.get(..2) {
        Some(b) => u16::from_le_bytes([b[0], b[1]]) as usize,
        None => return &[],
    };
    entry.get(2..2 + len).unwrap_or_default()
}

/// The payload of an encoded entry.
#[inline]
pub fn payload(entry: &[u8]) -> &[u8] {
    let len = sort_key(entry).len();
    entry.get(2 + len + 4..).unwrap_or_default()
}

#[inline]
fn prefix(sort_key: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    for (d, s) in b.iter_mut().zip(sort_key) {
        *d = *s;
    }
    u64::from_be_bytes(b)
}

/// A memory-bounded sorter that spills sorted runs to files.
pub struct ExternalSorter {
    arena: Vec<u8>,
    /// (first 8 sort-key bytes, offset of the entry in `arena`)
    index: Vec<(u64, u64)>,
    arena_cap: usize,
    index_cap: usize,
    spill_dir: PathBuf,
    runs: Vec<File>,
    spilled_bytes: u64,
    entries: u64,
}

impl ExternalSorter {
    /// A sorter holding at most about `budget` bytes in memory, spilling to `spill_dir`.
    pub fn new(budget: usize, spill_dir: &Path) -> ExternalSorter {
        let budget = budget.max(1 << 20);
        ExternalSorter {
            arena: Vec::new(),
            index: Vec::new(),
            arena_cap: budget / 8 * 7,
            index_cap: (budget / 8 / INDEX_ENTRY_BYTES).max(1),
            spill_dir: spill_dir.to_path_buf(),
            runs: Vec::new(),
            spilled_bytes: 0,
            entries: 0,
        }
    }

    /// Entries pushed so far.
    pub fn len(&self) -> u64 {
        self.entries
    }

    /// Whether nothing was pushed.
    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }

    /// Number of runs spilled to disk so far.
    pub fn spilled_runs(&self) -> usize {
        self.runs.len()
    }

    /// Bytes written to run files so far.
    pub fn spilled_bytes(&self) -> u64 {
        self.spilled_bytes
    }

    /// Memory held by the buffer now.
    pub fn buffered_bytes(&self) -> usize {
        self.arena.len() + self.index.len() * INDEX_ENTRY_BYTES
    }

    /// Adds an encoded entry, spilling a run first when the buffer is full.
    pub fn push(&mut self, entry: &[u8]) -> io::Result<()> {
        if !self.index.is_empty()
            && (self.arena.len() + entry.len() > self.arena_cap || self.index.len() >= self.index_cap)
        {
            self.spill()?;
        }
        if self.arena.capacity() == 0 {
            // Reserve once so the arena never reallocates (a doubling copy would briefly
            // need twice the memory); untouched capacity costs no resident memory.
            self.arena.reserve_exact(self.arena_cap.max(entry.len()));
            self.index.reserve_exact(self.index_cap);
        }
        self.index.push((prefix(sort_key(entry)), self.arena.len() as u64));
        self.arena.extend_from_slice(entry);
        self.entries += 1;
        Ok(())
    }

    fn sort_buffer(&mut self) {
        let arena = &self.arena;
        self.index.par_sort_unstable_by(|a, b| {
            a.0.cmp(&b.0).then_with(|| sort_key(entry_at(arena, a.1)).cmp(sort_key(entry_at(arena, b.1))))
        });
    }

    fn spill(&mut self) -> io::Result<()> {
        self.sort_buffer();
        let file = tempfile::tempfile_in(&self.spill_dir)?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        for (_, off) in &self.index {
            let entry = entry_at(&self.arena, *off);
            out.write_all(&(entry.len() as u32).to_le_bytes())?;
            out.write_all(entry)?;
            self.spilled_bytes += 4 + entry.len() as u64;
        }
        let mut file = out.into_inner().map_err(|e| e.into_error())?;
        io::Seek::rewind(&mut file)?;
        self.runs.push(file);
        self.arena.clear();
        self.index.clear();
        Ok(())
    }

    /// Finishes: sorts what is buffered and returns the merged stream of every entry in
    /// order. When nothing was spilled the buffer is streamed from memory; otherwise
    /// the buffer is spilled too and freed, so the merge holds only read buffers
    /// (`read_budget` bytes split over the runs).
    pub fn finish(mut self, read_budget: usize) -> io::Result<SortedStream> {
        let mut sources = Vec::new();
        if self.runs.is_empty() {
            self.sort_buffer();
            sources.push(Run::Memory { arena: self.arena, index: self.index, pos: 0, started: false });
        } else {
            if !self.index.is_empty() {
                self.spill()?;
            }
            self.arena = Vec::new();
            self.index = Vec::new();
            let per_run = (read_budget / self.runs.len().max(1)).clamp(16 << 10, 4 << 20);
            for file in self.runs.drain(..) {
                sources.push(Run::File { reader: BufReader::with_capacity(per_run, file), buf: Vec::new() });
            }
        }
        SortedStream::new(sources)
    }
}

#[inline]
fn entry_at(arena: &[u8], off: u64) -> &[u8] {
    let rest = arena.get(off as usize..).unwrap_or_default();
    let total = entry_len(rest).unwrap_or(0);
    rest.get(..total).unwrap_or_default()
}

/// Total length of the entry at the start of `bytes`, from its two length prefixes.
#[inline]
fn entry_len(bytes: &[u8]) -> Option<usize> {
    let sk = u16::from_le_bytes(bytes.get(..2)?.try_into().ok()?) as usize;
    let pl = u32::from_le_bytes(bytes.get(2 + sk..2 + sk + 4)?.try_into().ok()?) as usize;
    Some(2 + sk + 4 + pl)
}

/// Splits back-to-back encoded entries (stops at a malformed tail).
pub fn entries(mut bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    std::iter::from_fn(move || {
        let len = entry_len(bytes).filter(|l| *l <= bytes.len())?;
        let (entry, rest) = bytes.split_at(len);
        bytes = rest;
        Some(entry)
    })
}

/// Encodes an entry: `[u16 sort_key_len][sort_key][u32 payload_len][payload]`.
pub fn encode_entry(out: &mut Vec<u8>, sort_key: &[u8], payload: &[u8]) {
    out.extend_from_slice(&(sort_key.len() as u16).to_le_bytes());
    out.extend_from_slice(sort_key);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(payload);
}

enum Run {
    Memory { arena: Vec<u8>, index: Vec<(u64, u64)>, pos: usize, started: bool },
    File { reader: BufReader<File>, buf: Vec<u8> },
}

impl Run {
    /// Moves to the next entry; `false` at the end.
    fn advance(&mut self) -> io::Result<bool> {
        match self {
            Run::Memory { index, pos, started, .. } => {
                if *started {
                    *pos += 1;
                }
                *started = true;
                Ok(*pos < index.len())
            }
            Run::File { reader, buf } => {
                let mut len = [0u8; 4];
                match reader.read_exact(&mut len) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(false),
                    Err(e) => return Err(e),
                }
                buf.resize(u32::from_le_bytes(len) as usize, 0);
                reader.read_exact(buf)?;
                Ok(true)
            }
        }
    }

    fn current(&self) -> &[u8] {
        match self {
            Run::Memory { arena, index, pos, .. } => {
                index.get(*pos).map(|(_, off)| entry_at(arena, *off)).unwrap_or_default()
            }
            Run::File { buf, .. } => buf,
        }
    }
}

/// The merged, sorted stream of a sorter's entries.
pub struct SortedStream {
    runs: Vec<Run>,
    /// Binary min-heap of run indices, ordered by their current entry.
    heap: Vec<usize>,
    /// The run whose entry was returned last; advanced on the next call.
    pending: Option<usize>,
}

impl SortedStream {
    fn new(mut runs: Vec<Run>) -> io::Result<SortedStream> {
        let mut heap = Vec::with_capacity(runs.len());
        for (i, run) in runs.iter_mut().enumerate() {
            if run.advance()? {
                heap.push(i);
            }
        }
        let mut stream = SortedStream { runs, heap, pending: None };
        for i in (0..stream.heap.len() / 2).rev() {
            stream.sift_down(i);
        }
        Ok(stream)
    }

    fn less(&self, a: usize, b: usize) -> bool {
        let (ea, eb) = (self.runs[a].current(), self.runs[b].current());
        sort_key(ea).cmp(sort_key(eb)) == Ordering::Less
    }

    fn sift_down(&mut self, mut i: usize) {
        loop {
            let (l, r) = (2 * i + 1, 2 * i + 2);
            let mut smallest = i;
            if l < self.heap.len() && self.less(self.heap[l], self.heap[smallest]) {
                smallest = l;
            }
            if r < self.heap.len() && self.less(self.heap[r], self.heap[smallest]) {
                smallest = r;
            }
            if smallest == i {
                return;
            }
            self.heap.swap(i, smallest);
            i = smallest;
        }
    }

    /// The next entry in order, `None` at the end.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> io::Result<Option<&[u8]>> {
        if let Some(run) = self.pending.take() {
            if self.runs[run].advance()? {
                self.sift_down(0);
            } else {
                let last = self.heap.len() - 1;
                self.heap.swap(0, last);
                self.heap.pop();
                if !self.heap.is_empty() {
                    self.sift_down(0);
                }
            }
        }
        match self.heap.first() {
            Some(&run) => {
                self.pending = Some(run);
                Ok(Some(self.runs[run].current()))
            }
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: &[u8], payload: &[u8]) -> Vec<u8> {
        let mut e = Vec::new();
        encode_entry(&mut e, key, payload);
        e
    }

    fn drain(mut s: SortedStream) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut out = Vec::new();
        while let Some(e) = s.next().unwrap() {
            out.push((sort_key(e).to_vec(), payload(e).to_vec()));
        }
        out
    }

    #[test]
    fn sorts_in_memory_and_across_spilled_runs() {
        let dir = tempfile::tempdir().unwrap();
        let mut model = Vec::new();
        for budget in [1 << 20, 64 << 20] {
            let mut sorter = ExternalSorter::new(budget, dir.path());
            model.clear();
            for i in 0..30_000u64 {
                let h = xxhash_rust::xxh3::xxh3_64(&i.to_le_bytes());
                let key = format!("{:x}", h % 5000).into_bytes();
                let mut sk = key.clone();
                sk.push(0);
                sk.extend_from_slice(&i.to_be_bytes());
                let payload = vec![(i % 251) as u8; (i % 40) as usize];
                sorter.push(&entry(&sk, &payload)).unwrap();
                model.push((sk, payload));
            }
            let spilled = sorter.spilled_runs();
            assert_eq!(spilled > 0, budget == 1 << 20);
            model.sort();
            assert_eq!(drain(sorter.finish(1 << 20).unwrap()), model);
        }
    }

    #[test]
    fn empty_sorter_yields_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let sorter = ExternalSorter::new(1 << 20, dir.path());
        assert!(drain(sorter.finish(1 << 20).unwrap()).is_empty());
    }
}
