//! Elias-Fano sequences and bit-packed arrays: compact monotone integer sequences with
//! constant-time access, stored as little-endian u64 words inside a file body
//! (docs/FORMAT.md §9.8).
//!
//! An Elias-Fano sequence holds `n` non-decreasing values `v[0] ≤ … ≤ v[n-1] ≤ universe`
//! in about `2 + log2(universe / n)` bits each. Each value is split into `l` low bits
//! (`l = floor(log2(universe / n))`, 0 when `universe < n`) and its high part `v >> l`.
//! The low bits are bit-packed; the high parts are stored in unary: value `i` sets bit
//! `(v[i] >> l) + i` of the high bit vector, whose `(universe >> l) + 1` zeros close
//! the buckets (the zero number `h` follows the ones of every value whose high part is
//! `h`). Select samples (the position of every `2^s`-th one and of every `2^s`-th
//! zero) make [`EliasFano::get`] and [`EliasFano::predecessor`] a bounded scan of a few
//! words from a sample.
//!
//! Byte layout of one sequence (all words little-endian u64):
//!
//! ```text
//! descriptor (1 word: bits 0..8 = l, bits 8..16 = s, the rest zero)
//! low bits   (ceil(n × l / 64) words; value i at bit i × l, zero padding)
//! high bits  (ceil((n + (universe >> l) + 1) / 64) words, zero padding)
//! one samples  (ceil(n / 2^s) words: sample j = bit position of the one number j × 2^s)
//! zero samples (ceil(((universe >> l) + 1) / 2^s) words: position of zero number j × 2^s)
//! ```
//!
//! `n` and `universe` are not stored: the file holding a sequence keeps them (in its
//! header parameters) and hands them to [`EliasFano::new`], which checks the byte
//! length against them in constant time, so a sequence can sit anywhere in a body and
//! several can follow each other ([`EliasFano::byte_len_at`]).
//!
//! Reading hostile bytes: every word read is bounds-checked, and a scan from a sample
//! stops at the next sample's position (or the end of the high bits): more words than
//! the samples allow is damage. Damage is an [`EliasFanoError`], which the file's reader
//! turns into a [`FormatError`](super::FormatError) naming its file.
//!
//! A bit-packed array ([`read_bits`], [`BitWriter`]) stores values of `width` bits back to
//! back in little-endian u64 words; a packed array of little-endian u32 (u64) values is
//! the same as a bit-packed array of width 32 (64), so readers of older flat layouts read
//! through it too.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::ops::Deref;
use std::path::Path;

/// Sampling rate of the sequences that builds write: a select sample every
/// `2^DEFAULT_SAMPLE_SHIFT` ones and zeros (readers take the rate from the descriptor).
pub const DEFAULT_SAMPLE_SHIFT: u32 = 8;
/// The sampling shifts readers accept.
pub const SAMPLE_SHIFTS: std::ops::RangeInclusive<u32> = 4..=20;

/// A damaged Elias-Fano sequence or bit-packed array: what disagrees.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct EliasFanoError(String);

impl EliasFanoError {
    fn new(reason: impl Into<String>) -> EliasFanoError {
        EliasFanoError(reason.into())
    }
}

type Result<T> = std::result::Result<T, EliasFanoError>;

/// Reads word `j` of a little-endian u64 array; a last word shorter than 8 bytes reads
/// as if padded with zero bytes. `None` past the end.
#[inline]
fn word(bytes: &[u8], j: u64) -> Option<u64> {
    let start = usize::try_from(j).ok()?.checked_mul(8)?;
    if let Some(b) = bytes.get(start..start.checked_add(8)?) {
        return Some(u64::from_le_bytes(b.try_into().ok()?));
    }
    let rest = bytes.get(start..).filter(|r| !r.is_empty())?;
    let mut buf = [0u8; 8];
    buf.get_mut(..rest.len())?.copy_from_slice(rest);
    Some(u64::from_le_bytes(buf))
}

/// Reads the `width`-bit value (0 to 64 bits) at bit position `pos` of a bit-packed
/// array in `bytes`; `None` when it runs past the end.
#[inline]
pub fn read_bits(bytes: &[u8], pos: u64, width: u32) -> Option<u64> {
    if width == 0 {
        return Some(0);
    }
    let (j, off) = (pos / 64, (pos % 64) as u32);
    let mut v = word(bytes, j)? >> off;
    if off + width > 64 {
        v |= word(bytes, j + 1)? << (64 - off);
    }
    Some(if width >= 64 { v } else { v & ((1u64 << width) - 1) })
}

/// The bits a bit-packed array of `len` values of `width` bits takes, in whole words,
/// as bytes; `None` on overflow.
pub fn bit_packed_len(len: u64, width: u32) -> Option<u64> {
    len.checked_mul(width as u64)?.div_ceil(64).checked_mul(8)
}

/// The number of bits that holds every value up to `max` (0 for 0).
pub fn bits_for(max: u64) -> u32 {
    64 - max.leading_zeros()
}

/// Streams values of a given bit width into little-endian u64 words.
pub struct BitWriter<W: Write> {
    out: W,
    word: u64,
    used: u32,
    words: u64,
}

impl<W: Write> BitWriter<W> {
    /// A writer appending to `out`.
    pub fn new(out: W) -> BitWriter<W> {
        BitWriter { out, word: 0, used: 0, words: 0 }
    }

    /// Appends the low `width` bits (0 to 64) of `value`, which must fit them.
    #[inline]
    pub fn push(&mut self, value: u64, width: u32) -> io::Result<()> {
        if width > 64 || (width < 64 && value >> width != 0) {
            return Err(io::Error::other(format!("{value} does not fit {width} bits")));
        }
        if width == 0 {
            return Ok(());
        }
        self.word |= value << self.used;
        let total = self.used + width;
        if total >= 64 {
            self.out.write_all(&self.word.to_le_bytes())?;
            self.words += 1;
            self.word = if self.used == 0 { 0 } else { value >> (64 - self.used) };
            self.used = total - 64;
        } else {
            self.used = total;
        }
        Ok(())
    }

    /// Writes the last partial word (zero padded); returns the writer and the number of
    /// words written.
    pub fn finish(mut self) -> io::Result<(W, u64)> {
        if self.used > 0 {
            self.out.write_all(&self.word.to_le_bytes())?;
            self.words += 1;
        }
        Ok((self.out, self.words))
    }
}

/// The section sizes of an Elias-Fano sequence, from `(n, universe)` and the sampling
/// shift: what a file needs to lay out its body before encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    n: u64,
    universe: u64,
    low_width: u32,
    shift: u32,
    low_words: u64,
    high_bits: u64,
    high_words: u64,
    one_samples: u64,
    zero_samples: u64,
}

impl Layout {
    /// The layout builds write ([`DEFAULT_SAMPLE_SHIFT`]); `None` when the sizes
    /// overflow.
    #[allow(dead_code)] // for files that lay out several sections (the store's block directory)
    pub fn new(n: u64, universe: u64) -> Option<Layout> {
        Layout::with_shift(n, universe, DEFAULT_SAMPLE_SHIFT)
    }

    /// The layout with a select sample every `2^shift` ones and zeros; `None` when the
    /// sizes overflow or `shift` is outside [`SAMPLE_SHIFTS`].
    pub fn with_shift(n: u64, universe: u64, shift: u32) -> Option<Layout> {
        if !SAMPLE_SHIFTS.contains(&shift) {
            return None;
        }
        let low_width = match universe.checked_div(n) {
            Some(q) if q > 0 => 63 - q.leading_zeros(),
            _ => 0,
        };
        let zeros = (universe >> low_width).checked_add(1)?;
        let high_bits = n.checked_add(zeros)?;
        let per_sample = 1u64 << shift;
        Some(Layout {
            n,
            universe,
            low_width,
            shift,
            low_words: n.checked_mul(low_width as u64)?.div_ceil(64),
            high_bits,
            high_words: high_bits.div_ceil(64),
            one_samples: n.div_ceil(per_sample),
            zero_samples: zeros.div_ceil(per_sample),
        })
    }

    /// Total bytes of the sequence.
    pub fn byte_len(&self) -> u64 {
        // Cannot overflow: every count is at most 2^64 / 64 words.
        8u64.saturating_mul(
            1u64.saturating_add(self.low_words)
                .saturating_add(self.high_words)
                .saturating_add(self.one_samples)
                .saturating_add(self.zero_samples),
        )
    }

    /// Bits of each value stored in the low bits.
    #[cfg(test)]
    pub fn low_width(&self) -> u32 {
        self.low_width
    }

    fn zeros(&self) -> u64 {
        self.high_bits - self.n
    }

    fn descriptor(&self) -> u64 {
        self.low_width as u64 | (self.shift as u64) << 8
    }
}

/// Encodes `n` non-decreasing values, each at most `universe`, as an Elias-Fano
/// sequence written to `out`, sampled every `2^`[`DEFAULT_SAMPLE_SHIFT`]. `source` is
/// called once per section (twice) and must give the same values each time: values
/// stream from it, only the samples (one word per `2^shift` values) are held in
/// memory. Values out of order, above `universe` or not `n` of them are an error.
pub fn encode<F, I>(n: u64, universe: u64, source: F, out: &mut impl Write) -> io::Result<Layout>
where
    F: FnMut() -> io::Result<I>,
    I: IntoIterator<Item = io::Result<u64>>,
{
    encode_with_shift(n, universe, DEFAULT_SAMPLE_SHIFT, source, out)
}

/// [`encode`] with a select sample every `2^shift` ones and zeros (`shift` in
/// [`SAMPLE_SHIFTS`]).
pub fn encode_with_shift<F, I>(
    n: u64,
    universe: u64,
    shift: u32,
    mut source: F,
    out: &mut impl Write,
) -> io::Result<Layout>
where
    F: FnMut() -> io::Result<I>,
    I: IntoIterator<Item = io::Result<u64>>,
{
    let layout = Layout::with_shift(n, universe, shift).ok_or_else(|| {
        io::Error::other(format!("no Elias-Fano layout for {n} values up to {universe}, shift {shift}"))
    })?;
    let l = layout.low_width;
    let low_mask = if l == 0 { 0 } else { u64::MAX >> (64 - l) };
    out.write_all(&layout.descriptor().to_le_bytes())?;

    // Checks one value of a pass: in order, within the universe, not past `n`.
    let check = |i: u64, v: u64, prev: &mut Option<u64>| -> io::Result<()> {
        if i >= n || v > universe || prev.is_some_and(|p| p > v) {
            return Err(io::Error::other(format!(
                "Elias-Fano value {i} ({v}) is out of order, above the universe {universe} or past the {n} values"
            )));
        }
        *prev = Some(v);
        Ok(())
    };
    let count_error = |got: u64| io::Error::other(format!("Elias-Fano source gave {got} values, {n} expected"));

    // Pass 1: the low bits.
    let mut bits = BitWriter::new(&mut *out);
    let (mut i, mut prev) = (0u64, None);
    for v in source()? {
        let v = v?;
        check(i, v, &mut prev)?;
        bits.push(v & low_mask, l)?;
        i += 1;
    }
    if i != n {
        return Err(count_error(i));
    }
    let (_, low_words) = bits.finish()?;
    debug_assert_eq!(low_words, layout.low_words);

    // Pass 2: the high bits, sampling ones and zeros on the way.
    let per_sample_mask = (1u64 << shift) - 1;
    let mut one_samples = Vec::with_capacity(usize::try_from(layout.one_samples).unwrap_or(0));
    let mut zero_samples = Vec::with_capacity(usize::try_from(layout.zero_samples).unwrap_or(0));
    let (mut cur, mut cur_index) = (0u64, 0u64);
    let mut next_zero = 0u64;
    let (mut i, mut prev) = (0u64, None);
    for v in source()? {
        let v = v?;
        check(i, v, &mut prev)?;
        let high = v >> l;
        // Zeros closing the buckets below `high` come before this one: `i` ones
        // precede each of them.
        while next_zero < high {
            if next_zero & per_sample_mask == 0 {
                zero_samples.push(next_zero + i);
            }
            next_zero += 1;
        }
        let pos = high + i;
        if i & per_sample_mask == 0 {
            one_samples.push(pos);
        }
        while cur_index < pos / 64 {
            out.write_all(&cur.to_le_bytes())?;
            cur = 0;
            cur_index += 1;
        }
        cur |= 1u64 << (pos % 64);
        i += 1;
    }
    if i != n {
        return Err(count_error(i));
    }
    while next_zero < layout.zeros() {
        if next_zero & per_sample_mask == 0 {
            zero_samples.push(next_zero + n);
        }
        next_zero += 1;
    }
    while cur_index < layout.high_words {
        out.write_all(&cur.to_le_bytes())?;
        cur = 0;
        cur_index += 1;
    }
    for s in one_samples.iter().chain(&zero_samples) {
        out.write_all(&s.to_le_bytes())?;
    }
    Ok(layout)
}

/// Values spilled to a temporary file until their count and universe are known, then
/// encoded as an Elias-Fano sequence: for writers that stream values whose count only
/// the end tells (memory stays constant).
pub struct SpilledValues {
    out: BufWriter<File>,
    count: u64,
}

impl SpilledValues {
    /// Spills to a new temporary file in `temp_dir` (never the index directory).
    pub fn new(temp_dir: &Path) -> io::Result<SpilledValues> {
        Ok(SpilledValues { out: BufWriter::with_capacity(1 << 20, tempfile::tempfile_in(temp_dir)?), count: 0 })
    }

    /// Appends the next value.
    #[inline]
    pub fn push(&mut self, value: u64) -> io::Result<()> {
        self.out.write_all(&value.to_le_bytes())?;
        self.count += 1;
        Ok(())
    }

    /// Values pushed so far.
    pub fn len(&self) -> u64 {
        self.count
    }

    /// Encodes the values pushed, then `last`, as a sequence up to `universe` into `out`
    /// (two sequential reads of the temporary file, which is then deleted).
    pub fn encode(self, last: u64, universe: u64, out: &mut impl Write) -> io::Result<Layout> {
        let count = self.count;
        let file = self.out.into_inner().map_err(|e| e.into_error())?;
        let source = || -> io::Result<_> {
            let mut file = file.try_clone()?;
            file.seek(SeekFrom::Start(0))?;
            let mut reader = BufReader::with_capacity(1 << 20, file);
            let spilled = (0..count).map(move |_| {
                let mut b = [0u8; 8];
                reader.read_exact(&mut b)?;
                Ok(u64::from_le_bytes(b))
            });
            Ok(spilled.chain(std::iter::once(Ok(last))))
        };
        encode(count.saturating_add(1), universe, source, out)
    }
}

/// The position (0 to 63) of the one bit number `r` (from 0) of `w`, which has more
/// than `r` ones.
#[inline]
fn select_in_word(mut w: u64, mut r: u32) -> u64 {
    let mut base = 0u64;
    for half in [32u32, 16, 8] {
        let low = w & ((1u64 << half) - 1);
        let c = low.count_ones();
        if r >= c {
            r -= c;
            w >>= half;
            base += half as u64;
        } else {
            w = low;
        }
    }
    for _ in 0..r {
        w &= w.wrapping_sub(1);
    }
    base + w.trailing_zeros() as u64
}

/// Reads an Elias-Fano sequence from `bytes` (a sub-slice of a file body, or a mapped
/// body itself: anything that derefs to `[u8]`).
#[derive(Clone, Debug)]
pub struct EliasFano<B> {
    bytes: B,
    layout: Layout,
    high_at: usize,
    ones_at: usize,
    zeros_at: usize,
}

impl<B: Deref<Target = [u8]>> EliasFano<B> {
    /// Checks the descriptor and the length of `bytes` against `(n, universe)`
    /// (constant time). `bytes` must hold exactly the sequence.
    pub fn new(bytes: B, n: u64, universe: u64) -> Result<EliasFano<B>> {
        let layout = Self::layout_at(&bytes, n, universe)?;
        if layout.byte_len() != bytes.len() as u64 {
            return Err(EliasFanoError::new(format!(
                "Elias-Fano sequence of {n} values up to {universe} takes {} bytes, found {}",
                layout.byte_len(),
                bytes.len()
            )));
        }
        let at = |words: u64| usize::try_from(words.saturating_mul(8)).unwrap_or(usize::MAX);
        let high_at = at(1 + layout.low_words);
        let ones_at = high_at.saturating_add(at(layout.high_words));
        let zeros_at = ones_at.saturating_add(at(layout.one_samples));
        Ok(EliasFano { bytes, layout, high_at, ones_at, zeros_at })
    }

    /// The length in bytes of the sequence of `(n, universe)` at the start of `bytes`
    /// (which may go on with other data), from its descriptor: where the next section
    /// of a body starts. An error when the descriptor is damaged or the sequence runs
    /// past the end of `bytes`.
    #[allow(dead_code)] // for files with several sequences (the store's block directory)
    pub fn byte_len_at(bytes: &[u8], n: u64, universe: u64) -> Result<u64> {
        let len = Self::layout_at(bytes, n, universe)?.byte_len();
        if len > bytes.len() as u64 {
            return Err(EliasFanoError::new(format!(
                "Elias-Fano sequence of {n} values up to {universe} ({len} bytes) runs past the end ({} bytes)",
                bytes.len()
            )));
        }
        Ok(len)
    }

    fn layout_at(bytes: &[u8], n: u64, universe: u64) -> Result<Layout> {
        let descriptor = word(bytes, 0)
            .filter(|_| bytes.len() >= 8)
            .ok_or_else(|| EliasFanoError::new("Elias-Fano descriptor missing"))?;
        let shift = ((descriptor >> 8) & 0xff) as u32;
        let layout = Layout::with_shift(n, universe, shift).ok_or_else(|| {
            EliasFanoError::new(format!(
                "no Elias-Fano layout for {n} values up to {universe} with sampling shift {shift}"
            ))
        })?;
        if descriptor != layout.descriptor() {
            return Err(EliasFanoError::new(format!(
                "Elias-Fano descriptor {descriptor:#x} does not match {n} values up to {universe} (expected {:#x})",
                layout.descriptor()
            )));
        }
        Ok(layout)
    }

    /// Number of values.
    #[cfg(test)]
    pub fn len(&self) -> u64 {
        self.layout.n
    }

    #[inline]
    fn section(&self, from: usize, to: usize) -> &[u8] {
        self.bytes.get(from..to).unwrap_or_default()
    }

    #[inline]
    fn low(&self) -> &[u8] {
        self.section(8, self.high_at)
    }

    #[inline]
    fn high(&self) -> &[u8] {
        self.section(self.high_at, self.ones_at)
    }

    #[inline]
    fn low_bits(&self, i: u64) -> Result<u64> {
        let l = self.layout.low_width;
        read_bits(self.low(), i.wrapping_mul(l as u64), l)
            .ok_or_else(|| EliasFanoError::new(format!("low bits of value {i} out of bounds")))
    }

    /// Sample `b` of the ones (`ones`) or the zeros, and the last position the scan from
    /// it may reach (before the next sample, or the end of the high bits).
    #[inline]
    fn sample(&self, ones: bool, b: u64) -> Result<(u64, u64)> {
        let (section, count) = if ones {
            (self.section(self.ones_at, self.zeros_at), self.layout.one_samples)
        } else {
            (self.section(self.zeros_at, self.bytes.len()), self.layout.zero_samples)
        };
        let what = if ones { "one" } else { "zero" };
        let pos = word(section, b).filter(|_| b < count);
        let pos = pos.ok_or_else(|| EliasFanoError::new(format!("{what} sample {b} out of bounds")))?;
        let limit = if b + 1 < count {
            let next = word(section, b + 1).unwrap_or(0);
            next.checked_sub(1).ok_or_else(|| EliasFanoError::new(format!("{what} samples out of order at {b}")))?
        } else {
            self.layout.high_bits - 1
        };
        Ok((pos, limit))
    }

    /// The position of the one (`ones`) or zero number `r` (from 0) at or after bit
    /// `from` of the high bits; it must be at most `limit`.
    #[inline]
    fn scan(&self, from: u64, mut r: u64, ones: bool, limit: u64) -> Result<u64> {
        let high = self.high();
        let damaged = || {
            EliasFanoError::new(format!(
                "high bits: no {} where the select samples place it (from bit {from})",
                if ones { "one" } else { "zero" }
            ))
        };
        let fetch = |j: u64| word(high, j).map(|w| if ones { w } else { !w });
        if from > limit {
            return Err(damaged());
        }
        let mut j = from / 64;
        let mut w = fetch(j).ok_or_else(damaged)? & (u64::MAX << (from % 64));
        loop {
            let c = w.count_ones() as u64;
            if r < c {
                let pos = j * 64 + select_in_word(w, r as u32);
                return if pos <= limit { Ok(pos) } else { Err(damaged()) };
            }
            r -= c;
            j += 1;
            if j.saturating_mul(64) > limit {
                return Err(damaged());
            }
            w = fetch(j).ok_or_else(damaged)?;
        }
    }

    /// Position of the one (`ones`) or zero number `i` in the high bits.
    #[inline]
    fn select(&self, ones: bool, i: u64) -> Result<u64> {
        let shift = self.layout.shift;
        let (pos, limit) = self.sample(ones, i >> shift)?;
        self.scan(pos, i & ((1u64 << shift) - 1), ones, limit)
    }

    /// The value number `i` whose one is at bit `pos` of the high bits.
    #[inline]
    fn value_at(&self, i: u64, pos: u64) -> Result<u64> {
        let l = self.layout.low_width;
        let high = pos.checked_sub(i).filter(|h| *h <= self.layout.universe >> l);
        let high = high.ok_or_else(|| EliasFanoError::new(format!("value {i}: high bits out of range")))?;
        let v = (high << l) | self.low_bits(i)?;
        if v > self.layout.universe {
            return Err(EliasFanoError::new(format!("value {i} ({v}) is above the universe {}", self.layout.universe)));
        }
        Ok(v)
    }

    /// Value number `i` (from 0).
    #[inline]
    pub fn get(&self, i: u64) -> Result<u64> {
        if i >= self.layout.n {
            return Err(EliasFanoError::new(format!("value {i} past the {} values", self.layout.n)));
        }
        let pos = self.select(true, i)?;
        self.value_at(i, pos)
    }

    /// Values `i` and `i + 1` (one select, then the next one bit): the bounds of run
    /// `i` of a sequence of run starts.
    #[inline]
    pub fn get_pair(&self, i: u64) -> Result<(u64, u64)> {
        if i.checked_add(1).is_none_or(|j| j >= self.layout.n) {
            return Err(EliasFanoError::new(format!("value pair {i} past the {} values", self.layout.n)));
        }
        let pos = self.select(true, i)?;
        let (_, limit) = self.sample(true, (i + 1) >> self.layout.shift)?;
        let next = self.scan(pos + 1, 0, true, limit)?;
        Ok((self.value_at(i, pos)?, self.value_at(i + 1, next)?))
    }

    /// The largest `i` with `v[i] ≤ x`, `None` when every value is above `x`: one zero
    /// select (the bucket of `x`), then a binary search of that bucket's low bits.
    pub fn predecessor(&self, x: u64) -> Result<Option<u64>> {
        if self.layout.n == 0 {
            return Ok(None);
        }
        let l = self.layout.low_width;
        let x = x.min(self.layout.universe);
        let (hx, xl) = (x >> l, if l == 0 { 0 } else { x & (u64::MAX >> (64 - l)) });
        // The bucket of `hx` starts after zero `hx - 1` and ends at zero `hx`.
        let start = if hx == 0 { 0 } else { self.select(false, hx - 1)? + 1 };
        let (_, limit) = self.sample(false, hx >> self.layout.shift)?;
        let end = self.scan(start, 0, false, limit)?;
        let (lo, hi) = match (start.checked_sub(hx), end.checked_sub(hx)) {
            (Some(lo), Some(hi)) if lo <= hi && hi <= self.layout.n => (lo, hi),
            _ => return Err(EliasFanoError::new(format!("bucket {hx} out of range"))),
        };
        // The first index in the bucket whose low bits are above those of `x`.
        let (mut lo, mut hi) = (lo, hi);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.low_bits(mid)? <= xl {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        Ok(lo.checked_sub(1))
    }

    /// Hints the CPU to fetch what [`get`](Self::get) of value `i` reads first: its one
    /// sample and its low bits.
    #[inline]
    pub fn prefetch(&self, i: u64) {
        let sample = usize::try_from(i >> self.layout.shift).unwrap_or(usize::MAX);
        crate::mmap::prefetch(&self.bytes, self.ones_at.saturating_add(sample.saturating_mul(8)));
        let low = usize::try_from(i.saturating_mul(self.layout.low_width as u64) / 8).unwrap_or(usize::MAX);
        crate::mmap::prefetch(&self.bytes, low.saturating_add(8));
    }

    /// Hints the CPU to fetch the high bits that [`get`](Self::get) of value `i` scans
    /// first: reads its one sample (fetched by [`prefetch`](Self::prefetch) a step
    /// before) and fetches two cache lines from the bit it names. A batch calls it
    /// between the two, so that the scan's read of the high bits is not a miss of its
    /// own. Damaged bytes make it fetch nothing (the read that follows reports them).
    #[inline]
    pub fn prefetch_high(&self, i: u64) {
        let ones = self.section(self.ones_at, self.zeros_at);
        if let Some(pos) = word(ones, i >> self.layout.shift) {
            let byte = usize::try_from(pos / 8).unwrap_or(usize::MAX);
            let high = self.high();
            crate::mmap::prefetch(high, byte);
            crate::mmap::prefetch(high, byte.saturating_add(64));
        }
    }

    /// The values in order; a damaged sequence ends with an error.
    #[allow(dead_code)] // for sequential readers; the tests read with it
    pub fn iter(&self) -> Iter<'_, B> {
        Iter { seq: self, i: 0, j: 0, cur: word(self.high(), 0).unwrap_or(0), failed: false }
    }

    /// Full check: the ones and zeros of the high bits are `n` and `(universe >> l) +
    /// 1`, padding bits are zero, every sample is where its one or zero is, and the values are
    /// non-decreasing (`strict`: strictly ascending) and at most `universe`.
    pub fn verify(&self, strict: bool) -> Result<()> {
        let layout = &self.layout;
        let high = self.high();
        let per_sample_mask = (1u64 << layout.shift) - 1;
        let (mut ones, mut zeros) = (0u64, 0u64);
        let mut prev: Option<u64> = None;
        for j in 0..layout.high_words {
            let w = word(high, j).ok_or_else(|| EliasFanoError::new(format!("high bits word {j} out of bounds")))?;
            let valid_bits = (layout.high_bits - j * 64).min(64);
            let valid = if valid_bits == 64 { u64::MAX } else { (1u64 << valid_bits) - 1 };
            if w & !valid != 0 {
                return Err(EliasFanoError::new("high bits: padding bits are set"));
            }
            let mut o = w;
            while o != 0 {
                let pos = j * 64 + o.trailing_zeros() as u64;
                o &= o - 1;
                if ones >= layout.n {
                    return Err(EliasFanoError::new(format!("high bits: more than {} ones", layout.n)));
                }
                if ones & per_sample_mask == 0 && self.sample(true, ones >> layout.shift)?.0 != pos {
                    return Err(EliasFanoError::new(format!("one sample {} is wrong", ones >> layout.shift)));
                }
                let v = self.value_at(ones, pos)?;
                if prev.is_some_and(|p| p > v || (strict && p == v)) {
                    return Err(EliasFanoError::new(format!("value {ones} ({v}) is out of order")));
                }
                prev = Some(v);
                ones += 1;
            }
            let mut z = !w & valid;
            while z != 0 {
                let pos = j * 64 + z.trailing_zeros() as u64;
                z &= z - 1;
                if zeros & per_sample_mask == 0
                    && zeros < layout.zeros()
                    && self.sample(false, zeros >> layout.shift)?.0 != pos
                {
                    return Err(EliasFanoError::new(format!("zero sample {} is wrong", zeros >> layout.shift)));
                }
                zeros += 1;
            }
        }
        if ones != layout.n || zeros != layout.zeros() {
            return Err(EliasFanoError::new(format!(
                "high bits hold {ones} ones and {zeros} zeros, expected {} and {}",
                layout.n,
                layout.zeros()
            )));
        }
        let low_bits = layout.n * layout.low_width as u64;
        if !low_bits.is_multiple_of(64) && read_bits(self.low(), low_bits, 64 - (low_bits % 64) as u32) != Some(0) {
            return Err(EliasFanoError::new("low bits: padding bits are set"));
        }
        Ok(())
    }
}

/// The values of an [`EliasFano`] sequence in order ([`EliasFano::iter`]).
#[derive(Clone, Debug)]
pub struct Iter<'a, B> {
    seq: &'a EliasFano<B>,
    i: u64,
    /// Index of the high bits word in `cur`.
    j: u64,
    /// The bits of word `j` not yet visited.
    cur: u64,
    failed: bool,
}

impl<B: Deref<Target = [u8]>> Iterator for Iter<'_, B> {
    type Item = Result<u64>;

    fn next(&mut self) -> Option<Result<u64>> {
        if self.failed || self.i >= self.seq.layout.n {
            return None;
        }
        while self.cur == 0 {
            self.j += 1;
            match word(self.seq.high(), self.j) {
                Some(w) => self.cur = w,
                None => {
                    self.failed = true;
                    return Some(Err(EliasFanoError::new(format!("high bits end before value {}", self.i))));
                }
            }
        }
        let pos = self.j * 64 + self.cur.trailing_zeros() as u64;
        self.cur &= self.cur - 1;
        let v = self.seq.value_at(self.i, pos);
        self.failed = v.is_err();
        self.i += 1;
        Some(v)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = usize::try_from(self.seq.layout.n - self.i.min(self.seq.layout.n)).unwrap_or(usize::MAX);
        (0, Some(left))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn encode_vec(values: &[u64], universe: u64, shift: u32) -> Vec<u8> {
        let mut out = Vec::new();
        let layout =
            encode_with_shift(values.len() as u64, universe, shift, || Ok(values.iter().map(|v| Ok(*v))), &mut out)
                .unwrap();
        assert_eq!(layout.byte_len(), out.len() as u64);
        out
    }

    /// Checks every operation of the sequence against the sorted `values`.
    fn check_model(values: &[u64], universe: u64, shift: u32) -> std::result::Result<(), TestCaseError> {
        let bytes = encode_vec(values, universe, shift);
        let n = values.len() as u64;
        let ef = EliasFano::new(&bytes[..], n, universe).unwrap();
        prop_assert_eq!(ef.len(), n);
        for (i, v) in values.iter().enumerate() {
            prop_assert_eq!(ef.get(i as u64), Ok(*v));
            if i + 1 < values.len() {
                prop_assert_eq!(ef.get_pair(i as u64), Ok((*v, values[i + 1])));
            }
        }
        prop_assert!(ef.get(n).is_err());
        prop_assert!(ef.get(u64::MAX).is_err());
        prop_assert!(ef.get_pair(n.saturating_sub(1)).is_err());
        prop_assert!(ef.get_pair(u64::MAX).is_err());
        let got: Vec<u64> = ef.iter().collect::<Result<_>>().unwrap();
        prop_assert_eq!(&got, &values.to_vec());
        // Predecessor at every value, around it, and past the universe.
        let mut probes: Vec<u64> = values.iter().flat_map(|v| [v.saturating_sub(1), *v, v.saturating_add(1)]).collect();
        probes.extend([0, universe, universe.saturating_add(1), u64::MAX]);
        for x in probes {
            let want = values.partition_point(|v| *v <= x).checked_sub(1).map(|i| i as u64);
            prop_assert_eq!(ef.predecessor(x), Ok(want), "predecessor({})", x);
        }
        let strict = values.windows(2).all(|w| w[0] < w[1]);
        prop_assert!(ef.verify(false).is_ok());
        prop_assert_eq!(ef.verify(true).is_ok(), strict);
        // The same sequence followed by other bytes: its length is found from the start.
        let mut longer = bytes.clone();
        longer.extend_from_slice(&[0xAB; 9]);
        prop_assert_eq!(EliasFano::<&[u8]>::byte_len_at(&longer, n, universe), Ok(bytes.len() as u64));
        prop_assert!(EliasFano::new(&longer[..], n, universe).is_err());
        prop_assert!(EliasFano::new(&bytes[..bytes.len() - 8], n, universe).is_err());
        // Another count may have the same length, never the same content.
        if let Ok(other) = EliasFano::new(&bytes[..], n + 1, universe) {
            prop_assert!(other.verify(false).is_err());
        }
        Ok(())
    }

    fn sorted(mut values: Vec<u64>, dedup: bool) -> Vec<u64> {
        values.sort_unstable();
        if dedup {
            values.dedup();
        }
        values
    }

    proptest! {
        /// Dense and sparse, strict and with repeats, at the smallest sampling rate and
        /// at the one builds use: every operation answers like a sorted vector.
        #[test]
        fn answers_like_a_sorted_vector(
            raw in proptest::collection::vec(0u64..5000, 0..700),
            dedup in any::<bool>(),
            spread in prop_oneof![Just(1u64), Just(3), Just(1000), Just(1 << 40)],
            slack in 0u64..100,
            small_samples in any::<bool>(),
        ) {
            let values = sorted(raw.iter().map(|v| v * spread).collect(), dedup);
            let universe = values.last().copied().unwrap_or(0) + slack;
            let shift = if small_samples { *SAMPLE_SHIFTS.start() } else { DEFAULT_SAMPLE_SHIFT };
            check_model(&values, universe, shift)?;
        }

        /// A damaged sequence never panics or hangs: every operation answers or fails.
        #[test]
        fn damage_is_an_error_not_a_panic(
            raw in proptest::collection::vec(0u64..3000, 1..300),
            flips in proptest::collection::vec((any::<prop::sample::Index>(), 0u8..8), 1..4),
        ) {
            let values = sorted(raw, true);
            let universe = values.last().copied().unwrap_or(0) + 7;
            let mut bytes = encode_vec(&values, universe, *SAMPLE_SHIFTS.start());
            for (at, bit) in &flips {
                let at = at.index(bytes.len());
                bytes[at] ^= 1 << bit;
            }
            let n = values.len() as u64;
            if let Ok(ef) = EliasFano::new(&bytes[..], n, universe) {
                for i in 0..=n {
                    let _ = ef.get(i);
                    let _ = ef.get_pair(i);
                }
                for x in (0..=universe + 1).step_by(7) {
                    let _ = ef.predecessor(x);
                }
                let _ = ef.iter().take(n as usize + 1).count();
                if ef.verify(true).is_ok() {
                    // A sequence that passes verify answers consistently.
                    let got: Vec<u64> = ef.iter().collect::<Result<_>>().unwrap();
                    for (i, v) in got.iter().enumerate() {
                        prop_assert_eq!(ef.get(i as u64), Ok(*v));
                    }
                }
            }
        }

        /// Bit-packed values read back at every width.
        #[test]
        fn bit_packed_round_trip(width in 0u32..=64, raw in proptest::collection::vec(any::<u64>(), 0..200)) {
            let mask = if width == 64 { u64::MAX } else { (1u64 << width) - 1 };
            let values: Vec<u64> = raw.iter().map(|v| v & mask).collect();
            let mut w = BitWriter::new(Vec::new());
            for v in &values {
                w.push(*v, width).unwrap();
            }
            let (bytes, words) = w.finish().unwrap();
            prop_assert_eq!(bytes.len() as u64, words * 8);
            prop_assert_eq!(bit_packed_len(values.len() as u64, width), Some(bytes.len() as u64));
            for (i, v) in values.iter().enumerate() {
                prop_assert_eq!(read_bits(&bytes, i as u64 * width as u64, width), Some(*v));
            }
            if width > 0 {
                prop_assert_eq!(read_bits(&bytes, bytes.len() as u64 * 8, width), None);
            }
        }
    }

    #[test]
    fn sizes_follow_the_universe() {
        // 500,001 ascending starts up to 805,135: about 2.7 bits each, plus samples.
        let layout = Layout::new(500_001, 805_135).unwrap();
        assert_eq!(layout.low_width(), 0);
        assert!(layout.byte_len() < 500_001 * 3 / 8 + 40_000, "{layout:?}");
        let layout = Layout::new(1000, 1 << 30).unwrap();
        assert_eq!(layout.low_width(), 20);
        assert_eq!(Layout::new(0, 0).unwrap().byte_len(), 8 * 3);
        assert!(Layout::new(u64::MAX, u64::MAX).is_none());
        assert!(Layout::with_shift(10, 10, 3).is_none());
    }

    #[test]
    fn bad_sources_are_errors() {
        let enc = |n: u64, universe: u64, values: &[u64]| {
            encode(n, universe, || Ok(values.iter().map(|v| Ok(*v))), &mut Vec::new()).map(|_| ())
        };
        assert!(enc(3, 10, &[1, 2, 3]).is_ok());
        assert!(enc(3, 10, &[1, 3, 2]).is_err());
        assert!(enc(3, 2, &[1, 2, 3]).is_err());
        assert!(enc(2, 10, &[1, 2, 3]).is_err());
        assert!(enc(4, 10, &[1, 2, 3]).is_err());
        let mut w = BitWriter::new(Vec::new());
        assert!(w.push(4, 2).is_err());
        assert!(w.push(1, 65).is_err());
    }

    #[test]
    fn a_flat_u32_array_reads_as_32_bit_values() {
        let values = [7u32, 1 << 31, 3];
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        for (i, v) in values.iter().enumerate() {
            assert_eq!(read_bits(&bytes, i as u64 * 32, 32), Some(*v as u64));
        }
        // Past the last word: nothing to read.
        assert_eq!(read_bits(&bytes, 4 * 32, 32), None);
    }

    #[test]
    fn spilled_values_encode_with_their_last_value() {
        let dir = tempfile::tempdir().unwrap();
        let mut spill = SpilledValues::new(dir.path()).unwrap();
        for v in [1, 5, 9] {
            spill.push(v).unwrap();
        }
        assert_eq!(spill.len(), 3);
        let mut out = Vec::new();
        spill.encode(12, 12, &mut out).unwrap();
        let ef = EliasFano::new(&out[..], 4, 12).unwrap();
        assert_eq!(ef.iter().collect::<Result<Vec<_>>>().unwrap(), [1, 5, 9, 12]);
        let mut spill = SpilledValues::new(dir.path()).unwrap();
        spill.push(5).unwrap();
        assert!(spill.encode(4, 12, &mut Vec::new()).is_err(), "out of order");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "the temporary files are gone");
    }

    #[test]
    fn select_in_word_finds_every_one() {
        let w = 0x8000_0100_0F00_0001u64;
        let ones: Vec<u64> = (0..64).filter(|b| w >> b & 1 == 1).collect();
        for (r, pos) in ones.iter().enumerate() {
            assert_eq!(select_in_word(w, r as u32), *pos);
        }
    }

    #[test]
    fn a_scan_stops_at_the_next_sample() {
        // 600 values, 2 per bucket; move the second one sample far forward: the scan
        // for values of the first block must not go past it silently.
        let values: Vec<u64> = (0..600).collect();
        let mut bytes = encode_vec(&values, 599, 4);
        let ef = EliasFano::new(&bytes[..], 600, 599).unwrap();
        let ones_at = ef.ones_at;
        bytes[ones_at + 8..ones_at + 16].copy_from_slice(&3u64.to_le_bytes());
        let ef = EliasFano::new(&bytes[..], 600, 599).unwrap();
        assert!(ef.get(10).is_err());
        assert!(ef.verify(true).is_err());
    }
}
