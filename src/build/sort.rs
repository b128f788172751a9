//! External sort: entries accumulate in a memory-bounded buffer, are sorted and
//! spilled to run files when the buffer is full, and come back out through a k-way
//! merge. Peak memory is the buffer budget plus one read buffer per run, whatever the
//! input size.
//!
//! An entry is `[u16 LE sort_key_len][sort_key][u32 LE payload_len][payload]`
//! ([`encode_entry`]); entries are ordered by the bytes of `sort_key` alone (callers
//! encode keys so that byte order is the order they need). Run files hold
//! `[u32 LE entry_len][entry]` back to back.

use super::memory::SorterShares;
use crate::mmap::Arena;
use rayon::iter::{IntoParallelIterator, ParallelIterator};
use rayon::slice::ParallelSliceMut;
use std::cmp::Ordering;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Bytes of bookkeeping per buffered entry (its prefix and location).
pub(crate) const SLOT_BYTES: usize = std::mem::size_of::<Slot>();

/// The first 16 sort-key bytes, as two big-endian words (byte order = numeric order).
/// Sixteen bytes, not eight: plain-mode keys are e-mail addresses, which often share
/// their first eight bytes, and every tie costs a full-key comparison (two cache misses).
type Prefix = (u64, u64);

/// An index slot of the sorter: key prefix, then the entry's offset in the arena.
type Slot = (Prefix, u64);
/// How many entries ahead the in-memory run prefetches while being merged.
const MERGE_PREFETCH_DISTANCE: usize = 16;

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
fn prefix(sort_key: &[u8]) -> Prefix {
    let mut b = [0u8; 16];
    for (d, s) in b.iter_mut().zip(sort_key) {
        *d = *s;
    }
    let (hi, lo) = b.split_at(8);
    (u64::from_be_bytes(hi.try_into().unwrap_or_default()), u64::from_be_bytes(lo.try_into().unwrap_or_default()))
}

/// Encoded entries produced by one worker, with each entry's sort prefix and offset:
/// handed to the sorter whole ([`ExternalSorter::push_block`]), which copies the bytes
/// into its arena in one piece and extends its index from the block's, instead of
/// decoding and copying entry by entry.
#[derive(Default)]
pub struct SortBlock {
    data: Vec<u8>,
    /// (sort-key prefix, offset of the entry in `data`)
    index: Vec<(Prefix, u32)>,
}

impl SortBlock {
    /// An empty block with room for `bytes` bytes of entries.
    pub fn with_capacity(bytes: usize) -> SortBlock {
        SortBlock::with_capacity_for(bytes, 0)
    }

    /// An empty block with room for `bytes` bytes of entries and the index of `entries`
    /// entries, so that filling it up to that size never reallocates.
    pub fn with_capacity_for(bytes: usize, entries: usize) -> SortBlock {
        SortBlock { data: Vec::with_capacity(bytes), index: Vec::with_capacity(entries) }
    }

    /// Appends an entry (see [`encode_entry`]).
    pub fn push(&mut self, sort_key: &[u8], payload: &[u8]) {
        self.push_with(|out| out.extend_from_slice(sort_key), |out| out.extend_from_slice(payload));
    }

    /// Appends an entry whose sort key and payload are written in place: `sort_key`
    /// and then `payload` append their bytes to the block's buffer, and the length
    /// fields of [`encode_entry`] are filled in afterwards. The result is the same as
    /// [`SortBlock::push`] of the same bytes, without building them elsewhere first.
    pub fn push_with(&mut self, sort_key: impl FnOnce(&mut Vec<u8>), payload: impl FnOnce(&mut Vec<u8>)) {
        let offset = self.data.len();
        self.data.extend_from_slice(&[0; 2]);
        sort_key(&mut self.data);
        let key_end = self.data.len();
        let key_len = key_end - offset - 2;
        self.data.extend_from_slice(&[0; 4]);
        payload(&mut self.data);
        let payload_len = self.data.len() - key_end - 4;
        // The same truncating casts as `encode_entry` (keys are far below 64 KiB).
        if let Some(field) = self.data.get_mut(offset..offset + 2) {
            field.copy_from_slice(&(key_len as u16).to_le_bytes());
        }
        if let Some(field) = self.data.get_mut(key_end..key_end + 4) {
            field.copy_from_slice(&(payload_len as u32).to_le_bytes());
        }
        let key_prefix = prefix(self.data.get(offset + 2..key_end).unwrap_or_default());
        match u32::try_from(offset) {
            Ok(offset) => self.index.push((key_prefix, offset)),
            // Blocks are small (one worker chunk); a block past 4 GiB keeps its bytes
            // and is split entry by entry when pushed (see `push_block`).
            Err(_) => self.index.clear(),
        }
    }

    #[cfg(test)]
    /// Entries in the block.
    pub fn len(&self) -> usize {
        entries(&self.data).count()
    }

    #[cfg(test)]
    /// Bytes of encoded entries.
    pub fn data_len(&self) -> usize {
        self.data.len()
    }

    #[cfg(test)]
    /// The encoded entries, back to back.
    pub fn data(&self) -> &[u8] {
        &self.data
    }
}

/// A memory-bounded sorter that spills sorted runs to files.
///
/// Entries are copied block by block into one arena (huge pages where available, so
/// the random reads of sorting and merging rarely miss the TLB); an index of (16-byte
/// key prefix, arena offset) is what gets sorted, and ties on the prefix compare the
/// full keys.
pub struct ExternalSorter {
    /// Reserved at the first push.
    arena: Option<Arena>,
    /// Entries pushed one by one ([`ExternalSorter::push`]) collect here.
    open: SortBlock,
    index: Vec<Slot>,
    /// Bytes of the arena in use.
    block_bytes: usize,
    /// Capacity of the block of single pushes.
    open_block_bytes: usize,
    block_cap: usize,
    index_cap: usize,
    spill_dir: PathBuf,
    runs: Vec<SpilledRun>,
    spilled_bytes: u64,
    entries: u64,
}

impl ExternalSorter {
    /// A sorter holding at most about `budget` bytes in memory, spilling to `spill_dir`
    /// (the split of `budget` is [`SorterShares::of`]).
    pub fn new(budget: usize, spill_dir: &Path) -> ExternalSorter {
        let shares = SorterShares::of(budget);
        ExternalSorter {
            arena: None,
            open: SortBlock::default(),
            index: Vec::new(),
            block_bytes: 0,
            open_block_bytes: shares.open_block,
            block_cap: shares.arena,
            index_cap: shares.index_slots,
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

    /// Number of runs spilled to disk so far.
    pub fn spilled_runs(&self) -> usize {
        self.runs.len()
    }

    /// Memory held by the buffer now.
    pub fn buffered_bytes(&self) -> usize {
        self.block_bytes + self.open.data.capacity() + self.index.len() * SLOT_BYTES
    }

    /// Adds an encoded entry, spilling a run first when the buffer is full.
    pub fn push(&mut self, entry: &[u8]) -> io::Result<()> {
        if self.open.data.capacity() == 0 {
            self.open.data.reserve_exact(self.open_block_bytes.max(entry.len()));
        }
        if self.open.data.len() + entry.len() > self.open.data.capacity() {
            let fresh = SortBlock::with_capacity(self.open_block_bytes.max(entry.len()));
            let full = std::mem::replace(&mut self.open, fresh);
            self.add_block(full, false)?;
        }
        let (sk, pl) = (sort_key(entry), payload(entry));
        self.open.push(sk, pl);
        self.entries += 1;
        Ok(())
    }

    /// Adds every entry of `block` (one copy of its bytes into the arena), spilling a
    /// run first when the buffer is full.
    pub fn push_block(&mut self, block: SortBlock) -> io::Result<()> {
        self.add_block(block, true)
    }

    fn add_block(&mut self, block: SortBlock, count_entries: bool) -> io::Result<()> {
        if block.data.is_empty() {
            return Ok(());
        }
        let count = block.index.len();
        let consistent = count > 0 && block.data.len() <= u32::MAX as usize;
        if !consistent {
            // Only a block past 4 GiB gets here: copy its entries one by one.
            let before = self.entries;
            for entry in entries(&block.data) {
                self.push(entry)?;
            }
            if !count_entries {
                self.entries = before;
            }
            return Ok(());
        }
        if !self.index.is_empty()
            && (self.block_bytes + block.data.len() > self.block_cap || self.index.len() + count > self.index_cap)
        {
            self.spill()?;
        }
        if self.index.capacity() == 0 {
            // Reserve once so the index never reallocates (a doubling copy would briefly
            // need twice the memory); untouched capacity costs no resident memory.
            self.index.reserve_exact(self.index_cap.max(count));
        }
        let needed = self.block_cap.max(block.data.len());
        if self.arena.as_ref().is_none_or(|a| a.len() < needed) {
            self.arena = Some(Arena::new(needed)?);
        }
        let base = self.block_bytes;
        let dest = self
            .arena
            .as_mut()
            .and_then(|a| a.as_mut_slice().get_mut(base..base + block.data.len()))
            .ok_or_else(|| io::Error::other("sort arena too small"))?;
        dest.copy_from_slice(&block.data);
        self.index.extend(block.index.iter().map(|&(p, off)| (p, (base + off as usize) as u64)));
        self.block_bytes += block.data.len();
        if count_entries {
            self.entries += count as u64;
        }
        Ok(())
    }

    /// Moves the block of single pushes into the buffer.
    fn close_open_block(&mut self) -> io::Result<()> {
        if self.open.data.is_empty() {
            return Ok(());
        }
        let open = std::mem::take(&mut self.open);
        self.add_block(open, false)
    }

    /// Sorts the index in two passes: by prefix alone (integer comparisons, no entry
    /// bytes touched), then each run of equal prefixes by full key. A tie then costs
    /// one look at each entry of its run instead of two cache misses per comparison.
    fn sort_buffer(&mut self) {
        // One 128-bit comparison per pair instead of two 64-bit ones with a branch
        // between them: the same order.
        self.index.par_sort_unstable_by_key(|&((hi, lo), _)| (u128::from(hi) << 64) | u128::from(lo));
        let arena = self.arena.as_ref().map(Arena::as_slice).unwrap_or_default();
        // Pieces of at least 64 Ki slots, cut at prefix boundaries, fixed in parallel.
        let mut pieces = Vec::new();
        let mut rest = self.index.as_mut_slice();
        while rest.len() > TIE_PIECE_SLOTS {
            let mut cut = TIE_PIECE_SLOTS;
            while cut < rest.len() && rest[cut].0 == rest[cut - 1].0 {
                cut += 1;
            }
            let (piece, tail) = rest.split_at_mut(cut);
            pieces.push(piece);
            rest = tail;
        }
        pieces.push(rest);
        pieces.into_par_iter().for_each(|piece| sort_ties(arena, piece));
    }

    fn spill(&mut self) -> io::Result<()> {
        self.sort_buffer();
        let file = tempfile::tempfile_in(&self.spill_dir)?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        let arena = self.arena.as_ref().map(Arena::as_slice).unwrap_or_default();
        let mut samples = Vec::with_capacity(self.index.len() / RUN_SAMPLE_ENTRIES + 1);
        let mut written = 0u64;
        for (i, (_, loc)) in self.index.iter().enumerate() {
            if let Some((_, ahead)) = self.index.get(i + MERGE_PREFETCH_DISTANCE) {
                prefetch_entry(arena, *ahead);
            }
            let entry = entry_at(arena, *loc);
            if i % RUN_SAMPLE_ENTRIES == 0 {
                samples.push((written, sort_key(entry).to_vec()));
            }
            out.write_all(&(entry.len() as u32).to_le_bytes())?;
            out.write_all(entry)?;
            written += 4 + entry.len() as u64;
        }
        self.spilled_bytes += written;
        let file = out.into_inner().map_err(|e| e.into_error())?;
        self.runs.push(SpilledRun { file: Arc::new(file), len: written, samples });
        self.block_bytes = 0;
        self.index.clear();
        Ok(())
    }

    /// Finishes: sorts what is buffered and returns the merged stream of every entry in
    /// order. When nothing was spilled the buffer is streamed from memory; otherwise
    /// the buffer is spilled too and freed, so the merge holds only read buffers
    /// (`read_budget` bytes split over the runs).
    pub fn finish(self, read_budget: usize) -> io::Result<SortedStream> {
        let mut streams = self.finish_partitioned(read_budget, &[])?;
        streams.pop().ok_or_else(|| io::Error::other("a sort finished without a stream"))
    }

    /// [`ExternalSorter::finish`] into key ranges that can be merged independently (on
    /// separate threads): `split_keys` (ascending) cut the key space into
    /// `split_keys.len() + 1` ranges, and stream `i` yields, in order, the entries whose
    /// sort key is at least `split_keys[i - 1]` (for `i > 0`) and below `split_keys[i]`
    /// (for `i < split_keys.len()`). The streams together yield exactly what
    /// [`ExternalSorter::finish`] does, range after range. Each stream reads its own
    /// byte range of every spilled run by positional reads, with `read_budget` bytes of
    /// read buffers split over all streams' runs.
    pub fn finish_partitioned(mut self, read_budget: usize, split_keys: &[&[u8]]) -> io::Result<Vec<SortedStream>> {
        if split_keys.windows(2).any(|w| w[0] > w[1]) {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "the split keys of a sort must be ascending"));
        }
        self.close_open_block()?;
        let ranges = split_keys.len() + 1;
        let mut sources: Vec<Vec<Run>> = (0..ranges).map(|_| Vec::new()).collect();
        if self.runs.is_empty() {
            self.sort_buffer();
            let memory = Arc::new(MemoryRun { arena: self.arena.take(), index: std::mem::take(&mut self.index) });
            let arena = memory.arena.as_ref().map(Arena::as_slice).unwrap_or_default();
            let mut bounds = vec![0];
            bounds.extend(
                split_keys.iter().map(|k| memory.index.partition_point(|s| sort_key(entry_at(arena, s.1)) < *k)),
            );
            bounds.push(memory.index.len());
            for (range, b) in sources.iter_mut().zip(bounds.windows(2)) {
                range.push(Run::Memory { run: Arc::clone(&memory), pos: b[0], end: b[1], started: false });
            }
        } else {
            if !self.index.is_empty() {
                self.spill()?;
            }
            self.arena = None;
            self.index = Vec::new();
            let readers = self.runs.len().saturating_mul(ranges).max(1);
            let per_run = (read_budget / readers).clamp(16 << 10, 4 << 20);
            for run in self.runs.drain(..) {
                let mut bounds = vec![0];
                for key in split_keys {
                    bounds.push(run.offset_of(key)?);
                }
                bounds.push(run.len);
                for (range, b) in sources.iter_mut().zip(bounds.windows(2)) {
                    let bytes = RunBytes { file: Arc::clone(&run.file), pos: b[0], end: b[1] };
                    range.push(Run::File { reader: BufReader::with_capacity(per_run, bytes), buf: Vec::new() });
                }
            }
        }
        sources.into_iter().map(SortedStream::new).collect()
    }
}

/// Entries between two samples of a spilled run (see [`SpilledRun::samples`]).
const RUN_SAMPLE_ENTRIES: usize = 1024;

/// A sorted run spilled to a file.
struct SpilledRun {
    /// Shared by the streams of [`ExternalSorter::finish_partitioned`], which read it
    /// by position.
    file: Arc<File>,
    /// Bytes written.
    len: u64,
    /// The offset and sort key of every [`RUN_SAMPLE_ENTRIES`]th entry, from the first:
    /// where a key range starts is found from these without reading the whole run.
    samples: Vec<(u64, Vec<u8>)>,
}

impl SpilledRun {
    /// The offset of the first entry whose sort key is at least `key` (the run's length
    /// when there is none): from the last sample below `key`, at most
    /// [`RUN_SAMPLE_ENTRIES`] entries are read.
    fn offset_of(&self, key: &[u8]) -> io::Result<u64> {
        let after = self.samples.partition_point(|(_, k)| k.as_slice() < key);
        let Some(start) = after.checked_sub(1).and_then(|i| self.samples.get(i)).map(|s| s.0) else {
            return Ok(0);
        };
        let end = self.samples.get(after).map_or(self.len, |s| s.0);
        let mut bytes = BufReader::with_capacity(64 << 10, RunBytes { file: Arc::clone(&self.file), pos: start, end });
        let mut at = start;
        let mut buf = Vec::new();
        while read_run_entry(&mut bytes, &mut buf)? {
            if sort_key(&buf) >= key {
                return Ok(at);
            }
            at += 4 + buf.len() as u64;
        }
        Ok(end)
    }
}

/// The bytes `pos..end` of a run file, read by position (`read_at`), so that several
/// readers share one file without sharing an offset.
struct RunBytes {
    file: Arc<File>,
    pos: u64,
    end: u64,
}

impl Read for RunBytes {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let left = usize::try_from(self.end.saturating_sub(self.pos)).unwrap_or(usize::MAX);
        let want = out.len().min(left);
        let Some(out) = out.get_mut(..want).filter(|o| !o.is_empty()) else {
            return Ok(0);
        };
        let n = self.file.read_at(out, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// Reads the next `[u32 LE entry_len][entry]` of a run into `buf`; `false` at the end.
fn read_run_entry(reader: &mut impl Read, buf: &mut Vec<u8>) -> io::Result<bool> {
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

/// The sorted buffer of a sorter that never spilled, shared by the streams of
/// [`ExternalSorter::finish_partitioned`].
struct MemoryRun {
    arena: Option<Arena>,
    index: Vec<Slot>,
}

/// Slots per piece of the tie-fixing pass.
const TIE_PIECE_SLOTS: usize = 1 << 16;

/// Sorts each run of equal prefixes in `slots` (sorted by prefix) by full key. The
/// entries of tied slots a few steps ahead are prefetched, so their misses overlap.
fn sort_ties(arena: &[u8], slots: &mut [Slot]) {
    let tied = |slots: &[Slot], i: usize| {
        let p = slots.get(i).map(|s| s.0);
        (i > 0 && slots.get(i - 1).map(|s| s.0) == p) || (p.is_some() && slots.get(i + 1).map(|s| s.0) == p)
    };
    let mut i = 0;
    let mut ahead = 0;
    while i < slots.len() {
        let mut end = i + 1;
        while end < slots.len() && slots[end].0 == slots[i].0 {
            end += 1;
        }
        while ahead < (end + TIE_PREFETCH_SLOTS).min(slots.len()) {
            if tied(slots, ahead) {
                prefetch_entry(arena, slots[ahead].1);
            }
            ahead += 1;
        }
        if end - i > 1 {
            slots[i..end].sort_unstable_by(|a, b| sort_key(entry_at(arena, a.1)).cmp(sort_key(entry_at(arena, b.1))));
        }
        i = end;
    }
}

/// How far ahead the tie-fixing pass prefetches.
const TIE_PREFETCH_SLOTS: usize = 32;

#[inline]
fn entry_at(arena: &[u8], loc: u64) -> &[u8] {
    let rest = arena.get(loc as usize..).unwrap_or_default();
    let total = entry_len(rest).unwrap_or(0);
    rest.get(..total).unwrap_or_default()
}

#[inline]
fn prefetch_entry(arena: &[u8], loc: u64) {
    crate::mmap::prefetch(arena, loc as usize);
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
    /// Slots `pos..end` of a sorted buffer.
    Memory {
        run: Arc<MemoryRun>,
        pos: usize,
        end: usize,
        started: bool,
    },
    File {
        reader: BufReader<RunBytes>,
        buf: Vec<u8>,
    },
}

impl Run {
    /// Moves to the next entry; `false` at the end.
    fn advance(&mut self) -> io::Result<bool> {
        match self {
            Run::Memory { run, pos, end, started } => {
                if *started {
                    *pos += 1;
                }
                *started = true;
                // The sorted index visits the arena in random order: start loading the
                // entry a few steps ahead so its cache miss overlaps this one's work.
                if let (Some((_, loc)), Some(arena)) = (run.index.get(*pos + MERGE_PREFETCH_DISTANCE), &run.arena) {
                    prefetch_entry(arena.as_slice(), *loc);
                }
                Ok(*pos < *end)
            }
            Run::File { reader, buf } => read_run_entry(reader, buf),
        }
    }

    fn current(&self) -> &[u8] {
        match self {
            Run::Memory { run, pos, end, .. } => run
                .index
                .get(*pos)
                .filter(|_| pos < end)
                .zip(run.arena.as_ref())
                .map(|((_, loc), arena)| entry_at(arena.as_slice(), *loc))
                .unwrap_or_default(),
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
    use proptest::prelude::*;

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
    fn blocks_and_single_pushes_sort_together() {
        let dir = tempfile::tempdir().unwrap();
        for budget in [1 << 20, 64 << 20] {
            let mut sorter = ExternalSorter::new(budget, dir.path());
            let mut model = Vec::new();
            let mut block = SortBlock::with_capacity(100);
            for i in 0..40_000u64 {
                let h = xxhash_rust::xxh3::xxh3_64(&i.to_le_bytes());
                // Keys that tie on the 16-byte prefix, so full keys decide.
                let mut sk = b"same-prefix-16-b".to_vec();
                sk.extend_from_slice(&h.to_be_bytes()[..(i % 9) as usize]);
                let payload = i.to_le_bytes().to_vec();
                if i % 3 == 0 {
                    sorter.push(&entry(&sk, &payload)).unwrap();
                } else {
                    block.push(&sk, &payload);
                    if block.data_len() > 3000 {
                        sorter.push_block(std::mem::take(&mut block)).unwrap();
                    }
                }
                model.push((sk, payload));
            }
            assert_eq!(block.len(), entries(block.data()).count());
            sorter.push_block(block).unwrap();
            sorter.push_block(SortBlock::default()).unwrap();
            assert_eq!(sorter.len(), 40_000);
            assert_eq!(sorter.spilled_runs() > 0, budget == 1 << 20);
            model.sort();
            let got = drain(sorter.finish(1 << 20).unwrap());
            assert_eq!(got.len(), model.len());
            // Entries with equal sort keys may come in any order: compare keys, then
            // the multiset of payloads.
            let keys = |v: &[(Vec<u8>, Vec<u8>)]| v.iter().map(|e| e.0.clone()).collect::<Vec<_>>();
            assert_eq!(keys(&got), keys(&model));
            let mut got_sorted = got;
            got_sorted.sort();
            assert_eq!(got_sorted, model);
        }
    }

    proptest! {
        /// An entry written in place encodes exactly as [`encode_entry`] of its parts,
        /// and the block's index holds each key's prefix and the entry's offset.
        #[test]
        fn push_with_encodes_as_encode_entry(
            parts in prop::collection::vec((prop::collection::vec(any::<u8>(), 0..40), prop::collection::vec(any::<u8>(), 0..70)), 0..20)
        ) {
            let mut block = SortBlock::with_capacity_for(8, 1);
            let (mut model, mut model_index) = (Vec::new(), Vec::new());
            for (key, payload) in &parts {
                block.push_with(|out| out.extend_from_slice(key), |out| out.extend_from_slice(payload));
                model_index.push((prefix(key), model.len() as u32));
                encode_entry(&mut model, key, payload);
            }
            prop_assert_eq!(&block.data, &model);
            prop_assert_eq!(&block.index, &model_index);
            let keys: Vec<_> = entries(&block.data).map(sort_key).collect();
            prop_assert_eq!(keys, parts.iter().map(|p| &p.0[..]).collect::<Vec<_>>());
        }
    }

    /// `n` entries of a seeded pseudo-random set: short keys over a small alphabet (so
    /// that keys tie and ranges are empty or hold everything), payloads telling the
    /// entries apart.
    fn seeded_entries(seed: u64, n: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
        (0..n as u64)
            .map(|i| {
                let h = xxhash_rust::xxh3::xxh3_64_with_seed(&i.to_le_bytes(), seed);
                let key = h.to_be_bytes()[..(h % 7) as usize].iter().map(|b| b % 4).collect();
                (key, i.to_le_bytes()[..(h >> 60) as usize % 5].to_vec())
            })
            .collect()
    }

    fn sorter_of(dir: &Path, budget: usize, model: &[(Vec<u8>, Vec<u8>)]) -> ExternalSorter {
        let mut sorter = ExternalSorter::new(budget, dir);
        let mut block = SortBlock::default();
        for (i, (key, payload)) in model.iter().enumerate() {
            if i % 2 == 0 {
                sorter.push(&entry(key, payload)).unwrap();
            } else {
                block.push(key, payload);
            }
            if i % 1000 == 999 {
                sorter.push_block(std::mem::take(&mut block)).unwrap();
            }
        }
        sorter.push_block(block).unwrap();
        sorter
    }

    /// Keys in order, then everything as a multiset: entries with equal keys may come in
    /// any order.
    fn same_entries(got: &[(Vec<u8>, Vec<u8>)], want: &[(Vec<u8>, Vec<u8>)]) -> bool {
        let keys = |v: &[(Vec<u8>, Vec<u8>)]| v.iter().map(|e| e.0.clone()).collect::<Vec<_>>();
        let sorted = |v: &[(Vec<u8>, Vec<u8>)]| {
            let mut v = v.to_vec();
            v.sort();
            v
        };
        keys(got) == keys(want) && sorted(got) == sorted(want)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        /// The ranges of a partitioned finish hold, in order, exactly the entries of the
        /// single merge whose keys fall in them, in memory and across spilled runs
        /// (whose split offsets come from samples every `RUN_SAMPLE_ENTRIES` entries),
        /// empty ranges and split keys past every entry included.
        #[test]
        fn partitioned_finish_splits_the_single_merge(
            seed in any::<u64>(),
            n in prop_oneof![0usize..50, 0usize..20_000],
            mut splits in prop::collection::vec(prop::collection::vec(0u8..5, 0..4), 0..4),
            spill in any::<bool>(),
        ) {
            splits.sort();
            let dir = tempfile::tempdir().unwrap();
            let model = seeded_entries(seed, n);
            let budget = if spill { 1 << 20 } else { 64 << 20 };
            let single = drain(sorter_of(dir.path(), budget, &model).finish(1 << 20).unwrap());
            let sorter = sorter_of(dir.path(), budget, &model);
            // A 1 MiB sorter holds about 5,000 slots; 64 MiB never spills here.
            let spilled_as_expected =
                if spill && n >= 12_000 { sorter.spilled_runs() > 0 } else { spill || sorter.spilled_runs() == 0 };
            prop_assert!(spilled_as_expected);
            let split_refs: Vec<&[u8]> = splits.iter().map(Vec::as_slice).collect();
            let streams = sorter.finish_partitioned(1 << 20, &split_refs).unwrap();
            prop_assert_eq!(streams.len(), splits.len() + 1);
            let mut joined = Vec::new();
            for (i, stream) in streams.into_iter().enumerate() {
                let part = drain(stream);
                let low = i.checked_sub(1).map(|j| splits[j].as_slice());
                let high = splits.get(i).map(Vec::as_slice);
                let want: Vec<_> = single
                    .iter()
                    .filter(|e| low.is_none_or(|l| e.0.as_slice() >= l) && high.is_none_or(|h| e.0.as_slice() < h))
                    .cloned()
                    .collect();
                prop_assert!(same_entries(&part, &want), "range {} of {:?}", i, splits);
                joined.extend(part);
            }
            prop_assert!(same_entries(&joined, &single));
        }
    }

    #[test]
    fn partitioned_streams_merge_on_their_own_threads() {
        let dir = tempfile::tempdir().unwrap();
        let model = seeded_entries(7, 30_000);
        let single = drain(sorter_of(dir.path(), 1 << 20, &model).finish(1 << 20).unwrap());
        let sorter = sorter_of(dir.path(), 1 << 20, &model);
        assert!(sorter.spilled_runs() > 1);
        let streams = sorter.finish_partitioned(1 << 20, &[&[1], &[2, 2]]).unwrap();
        let parts: Vec<_> = std::thread::scope(|scope| {
            let handles: Vec<_> = streams.into_iter().map(|s| scope.spawn(move || drain(s))).collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(parts.iter().all(|p| !p.is_empty()));
        assert!(same_entries(&parts.concat(), &single));
    }

    #[test]
    fn split_keys_out_of_order_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let sorter = sorter_of(dir.path(), 1 << 20, &seeded_entries(1, 10));
        let err = sorter.finish_partitioned(1 << 20, &[&[2], &[1]]).err().unwrap();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn empty_sorter_yields_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let sorter = ExternalSorter::new(1 << 20, dir.path());
        assert!(drain(sorter.finish(1 << 20).unwrap()).is_empty());
    }
}
