//! `passwords.sha1` / `passwords.ntlm`: the password index, one file per hash kind
//! (optional: indexes built without it open fine and report none). Maps a password
//! hash to the number of records holding it, and a 5-hex-digit range prefix to every
//! hash starting with it.
//!
//! Body: `entries[count × entry_width]` then `directory[(2^radix_bits + 1) × dir_width]`.
//! An entry is `hash[hash_width] | count (count_width bytes, LE)`, entries strictly
//! ascending by hash; hash and count sit side by side so a count lookup touches one
//! cache line and a range is one contiguous slice. `directory[p]` is the ordinal of the
//! first entry whose top `radix_bits` bits are ≥ `p` (as in `email.keys`).
//! Header parameters: `[count, radix_bits, dir_width, count_width]`; `hash_width` is
//! the kind's (20 for SHA-1, 16 for NTLM).
//!
//! A range prefix is 20 bits. With `radix_bits ≥ 20` its entries are
//! `directory[p << (radix_bits - 20)] .. directory[(p + 1) << (radix_bits - 20)]`;
//! with fewer bits the prefix's bucket is searched for the range's two ends.

use super::{FileSummary, FileView, FileWriter, FormatError, Kind, read_uint, section_end, uint_width, write_uint};
use crate::password::{PasswordError, PasswordHash, PasswordHashKind, PasswordPrefix, push_upper_hex, top_20_bits};
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// File name of the SHA-1 password file.
pub const SHA1_FILE_NAME: &str = "passwords.sha1";
/// File name of the NTLM password file.
pub const NTLM_FILE_NAME: &str = "passwords.ntlm";
/// Kind tag of `passwords.sha1`.
pub const SHA1_KIND: Kind = *b"PWS1";
/// Kind tag of `passwords.ntlm`.
pub const NTLM_KIND: Kind = *b"PWNT";
/// Largest directory: 2^24 buckets, reached at 2^25 hashes.
pub const MAX_RADIX_BITS: u32 = 24;
/// Bits of a range prefix (5 hex digits).
const PREFIX_BITS: u32 = 20;

/// File name of the password file of `kind`.
pub fn file_name(kind: PasswordHashKind) -> &'static str {
    match kind {
        PasswordHashKind::Sha1 => SHA1_FILE_NAME,
        PasswordHashKind::Ntlm => NTLM_FILE_NAME,
    }
}

/// Kind tag of the password file of `kind`.
pub fn file_kind(kind: PasswordHashKind) -> Kind {
    match kind {
        PasswordHashKind::Sha1 => SHA1_KIND,
        PasswordHashKind::Ntlm => NTLM_KIND,
    }
}

/// Both password files with their kinds (the optional files of an index).
pub fn files() -> [(&'static str, Kind); 2] {
    PasswordHashKind::ALL.map(|k| (file_name(k), file_kind(k)))
}

/// The directory size for `count` hashes: the largest `b` with `2^b ≤ count / 2` (at
/// most 2 bytes of directory per hash with 4-byte entries, 2 to 4 hashes per bucket).
pub fn radix_bits(count: u64) -> u32 {
    if count < 4 { 0 } else { (63 - count.leading_zeros() - 1).min(MAX_RADIX_BITS) }
}

/// The bucket of `hash`: its first `bits` bits (hashes are at least 16 bytes).
#[inline]
fn bucket(hash: &[u8], bits: u32) -> u64 {
    if bits == 0 {
        return 0;
    }
    let mut top = [0u8; 4];
    for (dst, src) in top.iter_mut().zip(hash) {
        *dst = *src;
    }
    (u32::from_be_bytes(top) >> (32 - bits)) as u64
}

/// Streams (hash, count) pairs in ascending hash order into a password file, then
/// appends the directory.
pub struct PasswordFileWriter {
    out: FileWriter,
    path: PathBuf,
    kind: PasswordHashKind,
    count_width: usize,
    count: u64,
    last: Vec<u8>,
}

impl PasswordFileWriter {
    /// Creates `path` for hashes of `kind`; `max_count` bounds every count (sizes the
    /// count field).
    pub fn create(path: &Path, kind: PasswordHashKind, max_count: u64) -> io::Result<PasswordFileWriter> {
        Ok(PasswordFileWriter {
            out: FileWriter::create(path, file_kind(kind))?,
            path: path.to_path_buf(),
            kind,
            count_width: uint_width(max_count),
            count: 0,
            last: Vec::new(),
        })
    }

    /// Appends the next hash with its count; hashes must arrive strictly ascending and
    /// counts be at least 1.
    pub fn push(&mut self, hash: &[u8], count: u64) -> io::Result<()> {
        if hash.len() != self.kind.width() {
            return Err(io::Error::other(format!("{}-byte hash in a {} password file", hash.len(), self.kind)));
        }
        if self.count > 0 && hash <= self.last.as_slice() {
            return Err(io::Error::other("password hashes out of order: the builder must push them ascending"));
        }
        if count == 0 {
            return Err(io::Error::other("a password hash with a count of 0"));
        }
        self.out.write_all(hash)?;
        write_uint(&mut self.out, count, self.count_width)?;
        self.last.clear();
        self.last.extend_from_slice(hash);
        self.count += 1;
        Ok(())
    }

    /// Hashes written so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Builds the directory from the entries written (read back sequentially, so
    /// memory stays constant whatever the count) and finishes the file.
    pub fn finish(mut self) -> io::Result<FileSummary> {
        let bits = radix_bits(self.count);
        let dir_width = uint_width(self.count);
        let entry_width = self.kind.width() + self.count_width;
        self.out.flush()?;
        let mut file = File::open(&self.path)?;
        file.seek(SeekFrom::Start(super::HEADER_LEN as u64))?;
        let mut reader = BufReader::with_capacity(1 << 20, file);
        let mut entry = vec![0u8; entry_width];
        let mut next_bucket = 0u64;
        for ordinal in 0..self.count {
            reader.read_exact(&mut entry)?;
            let b = bucket(&entry, bits);
            while next_bucket <= b {
                write_uint(&mut self.out, ordinal, dir_width)?;
                next_bucket += 1;
            }
        }
        while next_bucket <= 1u64 << bits {
            write_uint(&mut self.out, self.count, dir_width)?;
            next_bucket += 1;
        }
        self.out.finish([self.count, bits as u64, dir_width as u64, self.count_width as u64])
    }
}

/// Writes the subtraction files of a segment (docs/design/incremental-updates.md §3.4):
/// `hashes` are the password hashes of its deleted records, each record giving each of
/// its hashes once ([`crate::build::passwords::record_hashes`]); a hash's count is the
/// number of times it is given. Both files are written, in the layout of
/// `passwords.sha1` (at `sha1_path`) and `passwords.ntlm` (at `ntlm_path`), empty when
/// no hash of the kind is given. Memory: about 32 bytes per hash given.
#[allow(dead_code)] // wired up by the generation layer
pub(crate) fn write_subtraction_files(
    sha1_path: &Path,
    ntlm_path: &Path,
    hashes: impl IntoIterator<Item = PasswordHash>,
) -> io::Result<[FileSummary; 2]> {
    extend_subtraction_files(sha1_path, ntlm_path, None, hashes)
}

/// [`write_subtraction_files`], cumulative: every count of `previous` (the segment's
/// subtraction files so far, if any) plus those of `hashes`, the records newly deleted.
/// Memory: about 32 bytes per hash given and per entry of `previous`.
pub(crate) fn extend_subtraction_files(
    sha1_path: &Path,
    ntlm_path: &Path,
    previous: Option<&PasswordFiles>,
    hashes: impl IntoIterator<Item = PasswordHash>,
) -> io::Result<[FileSummary; 2]> {
    let mut counts: Vec<(PasswordHash, u64)> = hashes.into_iter().map(|h| (h, 1)).collect();
    for file in previous.iter().flat_map(|p| [&p.sha1, &p.ntlm]) {
        for i in 0..file.len() {
            let entry =
                file.entry(i).and_then(|(hash, count)| Some((PasswordHash::from_bytes(file.kind, hash).ok()?, count)));
            let entry = entry.ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidData, file.damaged(format!("entry {i} cannot be read")))
            })?;
            counts.push(entry);
        }
    }
    // By kind, then by bytes: each kind's hashes ascending, equal hashes together.
    counts.sort_unstable_by_key(|&(hash, _)| hash);
    let write = |kind: PasswordHashKind, path: &Path| -> io::Result<FileSummary> {
        let of_kind = counts.get(counts.partition_point(|(h, _)| h.kind() < kind)..).unwrap_or_default();
        let of_kind = of_kind.get(..of_kind.partition_point(|(h, _)| h.kind() == kind)).unwrap_or_default();
        let runs = || {
            of_kind.chunk_by(|a, b| a.0 == b.0).filter_map(|run| {
                let total = run.iter().fold(0u64, |sum, &(_, n)| sum.saturating_add(n));
                Some((run.first()?.0, total))
            })
        };
        let max_count = runs().map(|(_, n)| n).max().unwrap_or(0);
        let mut writer = PasswordFileWriter::create(path, kind, max_count)?;
        for (hash, count) in runs() {
            writer.push(hash.as_bytes(), count)?;
        }
        writer.finish()
    };
    Ok([write(PasswordHashKind::Sha1, sha1_path)?, write(PasswordHashKind::Ntlm, ntlm_path)?])
}

/// Reads one password file.
#[derive(Clone, Debug)]
pub struct PasswordFileReader {
    view: FileView,
    kind: PasswordHashKind,
    count: u64,
    bits: u32,
    dir_width: usize,
    count_width: usize,
    entry_width: usize,
    dir_offset: usize,
}

impl PasswordFileReader {
    /// Checks the header against the body (constant time).
    pub fn new(view: FileView, kind: PasswordHashKind) -> Result<PasswordFileReader, FormatError> {
        let [count, bits, dir_width, count_width] = view.params();
        if bits > MAX_RADIX_BITS as u64 {
            return Err(view.damaged(format!("radix bits {bits} above the maximum {MAX_RADIX_BITS}")));
        }
        if dir_width != 4 && dir_width != 8 {
            return Err(view.damaged(format!("directory entry width {dir_width} is not 4 or 8")));
        }
        if count_width != 4 && count_width != 8 {
            return Err(view.damaged(format!("count width {count_width} is not 4 or 8")));
        }
        let entry_width = kind.width() as u64 + count_width;
        let dir_offset = section_end(&view, 0, count, entry_width, "hash entries")?;
        let end = section_end(&view, dir_offset, (1u64 << bits) + 1, dir_width, "prefix directory")?;
        if end != view.body().len() as u64 {
            return Err(view.damaged("trailing bytes after the prefix directory"));
        }
        Ok(PasswordFileReader {
            kind,
            count,
            bits: bits as u32,
            dir_width: dir_width as usize,
            count_width: count_width as usize,
            entry_width: entry_width as usize,
            dir_offset: dir_offset as usize,
            view,
        })
    }

    /// The kind of hashes it holds.
    pub fn kind(&self) -> PasswordHashKind {
        self.kind
    }

    /// Number of distinct hashes.
    pub fn len(&self) -> u64 {
        self.count
    }

    /// Whether the file holds no hash.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    fn dir(&self) -> &[u8] {
        self.view.body().get(self.dir_offset..).unwrap_or_default()
    }

    /// Directory entries `b` and `b + 1`: the ordinals of bucket `b`, checked against
    /// the hash count.
    #[inline]
    fn bucket_span(&self, b: u64, b_end: u64) -> Result<(u64, u64), FormatError> {
        let dir = self.dir();
        let (Some(lo), Some(hi)) = (read_uint(dir, b, self.dir_width), read_uint(dir, b_end, self.dir_width)) else {
            return Err(self.view.damaged("prefix directory shorter than its header says"));
        };
        if lo > hi || hi > self.count {
            return Err(self.view.damaged(format!("prefix directory entry {b} spans {lo}..{hi} of {}", self.count)));
        }
        Ok((lo, hi))
    }

    /// The entries `lo..hi` as one slice.
    #[inline]
    fn entries(&self, lo: u64, hi: u64) -> &[u8] {
        let (start, end) = (lo as usize * self.entry_width, hi as usize * self.entry_width);
        self.view.body().get(start..end).unwrap_or_default()
    }

    #[inline]
    fn count_of(&self, entry: &[u8]) -> u64 {
        read_uint(entry.get(self.kind.width()..).unwrap_or_default(), 0, self.count_width).unwrap_or(0)
    }

    /// The number of records holding `hash` (`kind().width()` bytes); 0 when absent.
    /// A directory entry that points outside the entries is damage, not followed.
    #[inline]
    pub fn count(&self, hash: &[u8]) -> Result<u64, FormatError> {
        Ok(self.find(hash)?.map_or(0, |(_, count)| count))
    }

    /// The ordinal (position among the sorted entries) and count of `hash`; `None` when
    /// absent. A directory entry that points outside the entries is damage, not followed.
    #[inline]
    pub fn find(&self, hash: &[u8]) -> Result<Option<(u64, u64)>, FormatError> {
        if hash.len() != self.kind.width() {
            return Ok(None);
        }
        let b = bucket(hash, self.bits);
        let (lo, hi) = self.bucket_span(b, b + 1)?;
        let entries = self.entries(lo, hi);
        let w = self.entry_width;
        let width = self.kind.width();
        // Binary search inside the bucket (2 to 4 entries on average); a damaged,
        // unsorted bucket gives a wrong but in-bounds answer, which `verify` reports.
        let (mut left, mut right) = (0usize, entries.len() / w);
        while left < right {
            let mid = left + (right - left) / 2;
            let entry = entries.get(mid * w..(mid + 1) * w).unwrap_or_default();
            match entry.get(..width).unwrap_or_default().cmp(hash) {
                std::cmp::Ordering::Less => left = mid + 1,
                std::cmp::Ordering::Greater => right = mid,
                std::cmp::Ordering::Equal => return Ok(Some((lo + mid as u64, self.count_of(entry)))),
            }
        }
        Ok(None)
    }

    /// The entries whose hash starts with the 20-bit `prefix`, as one contiguous slice
    /// of `entry_width()`-byte entries.
    pub fn range(&self, prefix: u32) -> Result<&[u8], FormatError> {
        let prefix = u64::from(prefix & PasswordPrefix::MAX);
        if self.bits >= PREFIX_BITS {
            let shift = self.bits - PREFIX_BITS;
            let (lo, hi) = self.bucket_span(prefix << shift, (prefix + 1) << shift)?;
            return Ok(self.entries(lo, hi));
        }
        let shift = PREFIX_BITS - self.bits;
        let b = prefix >> shift;
        let (lo, hi) = self.bucket_span(b, b + 1)?;
        let bucket = self.entries(lo, hi);
        let w = self.entry_width;
        let n = bucket.len() / w;
        let prefix_of = |i: usize| u64::from(top_20_bits(bucket.get(i * w..).unwrap_or_default()));
        let start = partition_point(n, |i| prefix_of(i) < prefix);
        let end = partition_point(n, |i| prefix_of(i) <= prefix);
        Ok(bucket.get(start * w..end.max(start) * w).unwrap_or_default())
    }

    /// Bytes of one entry (hash and count).
    pub fn entry_width(&self) -> usize {
        self.entry_width
    }

    /// The hash and count of entry `i`.
    pub fn entry(&self, i: u64) -> Option<(&[u8], u64)> {
        if i >= self.count {
            return None;
        }
        let entry = self.entries(i, i + 1);
        Some((entry.get(..self.kind.width())?, self.count_of(entry)))
    }

    /// Decodes one entry of a slice returned by [`range`](Self::range).
    pub fn decode(&self, entry: &[u8]) -> Option<(PasswordHash, u64)> {
        let hash = PasswordHash::from_bytes(self.kind, entry.get(..self.kind.width())?).ok()?;
        Some((hash, self.count_of(entry)))
    }

    /// Full structure check: hashes strictly ascending, counts at least 1, directory
    /// consistent with the hashes.
    pub fn verify(&self) -> Result<(), FormatError> {
        let dir = self.dir();
        let mut next_bucket = 0u64;
        let mut prev: Option<&[u8]> = None;
        for i in 0..self.count {
            let (hash, count) = self.entry(i).ok_or_else(|| self.view.damaged("hash entries truncated"))?;
            if prev.is_some_and(|p| p >= hash) {
                return Err(self.view.damaged(format!("hashes {} and {i} are not in strictly ascending order", i - 1)));
            }
            if count == 0 {
                return Err(self.view.damaged(format!("hash {i} has a count of 0")));
            }
            prev = Some(hash);
            let b = bucket(hash, self.bits);
            while next_bucket <= b {
                if read_uint(dir, next_bucket, self.dir_width) != Some(i) {
                    return Err(self.view.damaged(format!("prefix directory entry {next_bucket} is wrong")));
                }
                next_bucket += 1;
            }
        }
        while next_bucket <= 1u64 << self.bits {
            if read_uint(dir, next_bucket, self.dir_width) != Some(self.count) {
                return Err(self.view.damaged(format!("prefix directory entry {next_bucket} is wrong")));
            }
            next_bucket += 1;
        }
        Ok(())
    }

    /// A damaged-file error for this file.
    fn damaged(&self, reason: impl Into<String>) -> FormatError {
        self.view.damaged(reason)
    }
}

/// The first `i` in `0..n` for which `pred` is false (`pred` true then false).
fn partition_point(n: usize, pred: impl Fn(usize) -> bool) -> usize {
    let (mut left, mut right) = (0, n);
    while left < right {
        let mid = left + (right - left) / 2;
        if pred(mid) {
            left = mid + 1;
        } else {
            right = mid;
        }
    }
    left
}

/// Both password files of an index.
#[derive(Clone, Debug)]
pub struct PasswordFiles {
    /// `passwords.sha1`.
    pub sha1: PasswordFileReader,
    /// `passwords.ntlm`.
    pub ntlm: PasswordFileReader,
}

impl PasswordFiles {
    /// The file of hashes of `kind`.
    pub fn file(&self, kind: PasswordHashKind) -> &PasswordFileReader {
        match kind {
            PasswordHashKind::Sha1 => &self.sha1,
            PasswordHashKind::Ntlm => &self.ntlm,
        }
    }
}

/// One segment's password files with, when records of the segment were deleted, the
/// counts to subtract from them: files of the same layout (kinds `PWS1` / `PWNT`) holding
/// for each hash the number of deleted records that held it
/// (docs/design/incremental-updates.md §3.4).
#[derive(Clone, Debug)]
pub(crate) struct PasswordPart {
    /// The segment's `passwords.sha1` and `passwords.ntlm`.
    pub files: PasswordFiles,
    /// The counts to subtract, if any.
    pub subtract: Option<PasswordFiles>,
}

/// Where the counts come from: one pair of files (an index of one segment, the fast
/// path), or several segments' files with their subtractions.
#[derive(Copy, Clone, Debug)]
enum Parts<'a> {
    One(&'a PasswordFiles),
    Many(&'a [PasswordPart]),
}

/// The password index of an open index: the number of records holding a SHA-1 or NTLM
/// password hash, and k-anonymity ranges. From [`crate::Index::passwords`].
///
/// Over an index of several segments, a hash's count is the sum over the segments of
/// its count less the count of the segment's deleted records holding it, and a range
/// merges the segments' ranges by hash (hashes whose counts come to 0 left out).
#[derive(Copy, Clone, Debug)]
pub struct Passwords<'a> {
    parts: Parts<'a>,
}

impl<'a> Passwords<'a> {
    pub(crate) fn new(files: &'a PasswordFiles) -> Passwords<'a> {
        Passwords { parts: Parts::One(files) }
    }

    /// The password index over several segments' files and their subtractions (the
    /// generation layer's). One part without subtraction reads as [`Passwords::new`].
    #[allow(dead_code)] // wired up by the generation layer
    pub(crate) fn over_parts(parts: &'a [PasswordPart]) -> Passwords<'a> {
        match parts {
            [PasswordPart { files, subtract: None }] => Passwords::new(files),
            _ => Passwords { parts: Parts::Many(parts) },
        }
    }

    /// Number of records holding this hash; 0 when absent.
    #[inline]
    pub fn count(&self, hash: &PasswordHash) -> Result<u64, PasswordError> {
        let kind = hash.kind();
        let parts = match self.parts {
            Parts::One(files) => return Ok(files.file(kind).count(hash.as_bytes())?),
            Parts::Many(parts) => parts,
        };
        let mut total = 0u64;
        for part in parts {
            let count = part.files.file(kind).count(hash.as_bytes())?;
            let net = match &part.subtract {
                Some(subtract) => {
                    let file = subtract.file(kind);
                    let gone = file.count(hash.as_bytes())?;
                    count.checked_sub(gone).ok_or_else(|| over_subtracted(file, gone, count))?
                }
                None => count,
            };
            total = total.saturating_add(net);
        }
        Ok(total)
    }

    /// Every hash of this kind starting with the prefix, ascending: over one segment,
    /// read from one contiguous slice of the password file; over several, their slices
    /// merged.
    pub fn range(&self, kind: PasswordHashKind, prefix: PasswordPrefix) -> Result<PasswordRange<'a>, PasswordError> {
        let parts = match self.parts {
            Parts::One(files) => {
                let file = files.file(kind);
                let entries = file.range(prefix.value())?;
                return Ok(PasswordRange { prefix, inner: RangeInner::Slice { file, entries } });
            }
            Parts::Many(parts) => parts,
        };
        let mut merged: Vec<PasswordEntry> = Vec::new();
        for part in parts {
            let file = part.files.file(kind);
            // Without subtractions the walk is empty (its file is never named).
            let mut subtract = match &part.subtract {
                Some(s) => SubtractionWalk::new(s.file(kind), prefix)?,
                None => SubtractionWalk { file, entries: Vec::new().into_iter().peekable() },
            };
            for (hash, count) in decoded_range(file, prefix)? {
                // Subtractions of hashes below this one have no count to come off.
                if let Some(&(gone_hash, gone)) = subtract.entries.peek()
                    && gone_hash < hash
                {
                    return Err(over_subtracted(subtract.file, gone, 0).into());
                }
                let gone = subtract.entries.next_if(|(h, _)| *h == hash).map_or(0, |(_, gone)| gone);
                let net = count.checked_sub(gone).ok_or_else(|| over_subtracted(subtract.file, gone, count))?;
                if net > 0 {
                    merged.push(PasswordEntry { hash, count: net });
                }
            }
            if let Some((_, gone)) = subtract.entries.next() {
                return Err(over_subtracted(subtract.file, gone, 0).into());
            }
        }
        // Each part's entries are ascending: a stable sort merges the runs.
        merged.sort_by_key(|e| e.hash);
        merged.dedup_by(|later, kept| {
            let same = later.hash == kept.hash;
            if same {
                kept.count = kept.count.saturating_add(later.count);
            }
            same
        });
        Ok(PasswordRange { prefix, inner: RangeInner::Merged(merged.into_iter()) })
    }

    /// Distinct hashes stored per kind: in the password file of an index of one
    /// segment; over several segments, the sum of their files' counts (a hash stored in
    /// two segments counts twice, one whose records were all deleted still counts).
    pub fn len(&self, kind: PasswordHashKind) -> u64 {
        match self.parts {
            Parts::One(files) => files.file(kind).len(),
            Parts::Many(parts) => parts.iter().map(|p| p.files.file(kind).len()).sum(),
        }
    }

    /// Whether no hash of either kind is stored.
    pub fn is_empty(&self) -> bool {
        let empty = |files: &PasswordFiles| files.sha1.is_empty() && files.ntlm.is_empty();
        match self.parts {
            Parts::One(files) => empty(files),
            Parts::Many(parts) => parts.iter().all(|p| empty(&p.files)),
        }
    }
}

/// The damage of a subtraction file that takes more off a hash's count than the
/// segment's file holds.
fn over_subtracted(file: &PasswordFileReader, gone: u64, count: u64) -> FormatError {
    file.damaged(format!(
        "subtracts {gone} from a {} hash that the segment's password file counts {count} times",
        file.kind
    ))
}

/// The (hash, count) entries of one file's range, checked to start with the prefix.
fn decoded_range(file: &PasswordFileReader, prefix: PasswordPrefix) -> Result<Vec<(PasswordHash, u64)>, PasswordError> {
    let range = PasswordRange { prefix, inner: RangeInner::Slice { file, entries: file.range(prefix.value())? } };
    range.map(|e| e.map(|e| (e.hash, e.count))).collect()
}

/// A subtraction range being walked beside its segment's range.
struct SubtractionWalk<'f> {
    file: &'f PasswordFileReader,
    entries: std::iter::Peekable<std::vec::IntoIter<(PasswordHash, u64)>>,
}

impl<'f> SubtractionWalk<'f> {
    fn new(file: &'f PasswordFileReader, prefix: PasswordPrefix) -> Result<SubtractionWalk<'f>, PasswordError> {
        Ok(SubtractionWalk { file, entries: decoded_range(file, prefix)?.into_iter().peekable() })
    }
}

/// The entries of one range, ascending by hash ([`Passwords::range`]). An entry that
/// does not start with the prefix (only a damaged file can hold one) is an error.
#[derive(Clone, Debug)]
pub struct PasswordRange<'a> {
    prefix: PasswordPrefix,
    inner: RangeInner<'a>,
}

/// A range's entries: a slice of one password file, or the merge of several.
#[derive(Clone, Debug)]
enum RangeInner<'a> {
    Slice { file: &'a PasswordFileReader, entries: &'a [u8] },
    Merged(std::vec::IntoIter<PasswordEntry>),
}

impl PasswordRange<'_> {
    /// The prefix of this range.
    pub fn prefix(&self) -> PasswordPrefix {
        self.prefix
    }
}

impl Iterator for PasswordRange<'_> {
    type Item = Result<PasswordEntry, PasswordError>;

    fn next(&mut self) -> Option<Self::Item> {
        let (file, entries) = match &mut self.inner {
            RangeInner::Slice { file, entries } => (*file, entries),
            RangeInner::Merged(merged) => return merged.next().map(Ok),
        };
        if entries.is_empty() {
            return None;
        }
        let (entry, rest) = entries.split_at_checked(file.entry_width()).unwrap_or((entries, &[]));
        *entries = rest;
        let decoded = file
            .decode(entry)
            .filter(|(hash, _)| hash.prefix() == self.prefix)
            .map(|(hash, count)| PasswordEntry { hash, count })
            .ok_or_else(|| {
                PasswordError::Damaged(file.damaged(format!("range {} holds a hash of another range", self.prefix)))
            });
        if decoded.is_err() {
            // Stop after reporting the damage once.
            *entries = &[];
        }
        Some(decoded)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = match &self.inner {
            RangeInner::Slice { file, entries } => entries.len().div_ceil(file.entry_width().max(1)),
            RangeInner::Merged(merged) => merged.len(),
        };
        (n, Some(n))
    }
}

impl ExactSizeIterator for PasswordRange<'_> {}

/// One hash of a range with the number of records holding it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct PasswordEntry {
    hash: PasswordHash,
    count: u64,
}

impl PasswordEntry {
    /// The full hash.
    pub fn hash(&self) -> &PasswordHash {
        &self.hash
    }

    /// Number of records holding it (at least 1).
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The hash's hex digits after the 5-digit prefix, upper case (35 for SHA-1, 27 for
    /// NTLM), as Pwned Passwords' range API prints them.
    pub fn suffix_hex(&self) -> String {
        let mut out = String::with_capacity(self.hash.kind().hex_len());
        self.write_suffix_hex(&mut out);
        out
    }

    /// Appends [`suffix_hex`](Self::suffix_hex) to `out` (no allocation when it has room).
    pub fn write_suffix_hex(&self, out: &mut String) {
        push_upper_hex(out, self.hash.as_bytes(), crate::password::PREFIX_HEX_DIGITS);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mmap::Bytes;
    use std::collections::BTreeMap;

    fn build(kind: PasswordHashKind, model: &BTreeMap<Vec<u8>, u64>) -> PasswordFileReader {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(file_name(kind));
        let mut w = PasswordFileWriter::create(&path, kind, model.values().copied().max().unwrap_or(0)).unwrap();
        for (h, c) in model {
            w.push(h, *c).unwrap();
        }
        w.finish().unwrap();
        let view =
            FileView::parse(file_name(kind), Bytes::from_vec(std::fs::read(&path).unwrap()), file_kind(kind)).unwrap();
        PasswordFileReader::new(view, kind).unwrap()
    }

    fn model(n: u64, kind: PasswordHashKind) -> BTreeMap<Vec<u8>, u64> {
        (0..n)
            .map(|i| {
                let h = xxhash_rust::xxh3::xxh3_128(&i.to_le_bytes()).to_be_bytes();
                let mut hash: Vec<u8> = h.iter().cycle().take(kind.width()).copied().collect();
                if i % 7 == 0 {
                    // Crowd a few prefixes so ranges span several buckets.
                    hash[0] = 0x5b;
                    hash[1] = 0xaa;
                    hash[2] &= 0x6f;
                }
                (hash, 1 + i % 5)
            })
            .collect()
    }

    #[test]
    fn counts_and_ranges_match_the_model() {
        for kind in PasswordHashKind::ALL {
            for n in [0u64, 1, 3, 17, 1000, 5000] {
                let model = model(n, kind);
                let reader = build(kind, &model);
                reader.verify().unwrap();
                assert_eq!(reader.len(), model.len() as u64);
                for (h, c) in &model {
                    assert_eq!(reader.count(h).unwrap(), *c);
                    let mut miss = h.clone();
                    miss[kind.width() - 1] ^= 0x55;
                    if !model.contains_key(&miss) {
                        assert_eq!(reader.count(&miss).unwrap(), 0);
                    }
                }
                assert_eq!(reader.count(&[0; 3]).unwrap(), 0);
                let mut prefixes: Vec<u32> = model.keys().map(|h| top_20_bits(h)).collect();
                prefixes.extend([0, 0xFFFFF, 0x5BAA6, 0x12345]);
                for p in prefixes {
                    let got: Vec<(Vec<u8>, u64)> = reader
                        .range(p)
                        .unwrap()
                        .chunks(reader.entry_width())
                        .map(|e| reader.decode(e).map(|(h, c)| (h.as_bytes().to_vec(), c)).unwrap())
                        .collect();
                    let want: Vec<(Vec<u8>, u64)> =
                        model.iter().filter(|(h, _)| top_20_bits(h) == p).map(|(h, c)| (h.clone(), *c)).collect();
                    assert_eq!(got, want, "{kind} n={n} prefix {p:05X}");
                }
            }
        }
    }

    #[test]
    fn writer_refuses_disorder_and_zero_counts() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = PasswordFileWriter::create(&dir.path().join("p"), PasswordHashKind::Ntlm, 10).unwrap();
        w.push(&[2; 16], 1).unwrap();
        assert!(w.push(&[1; 16], 1).is_err());
        assert!(w.push(&[2; 16], 1).is_err());
        assert!(w.push(&[3; 20], 1).is_err());
        assert!(w.push(&[3; 16], 0).is_err());
    }

    #[test]
    fn damaged_directory_is_an_error_not_a_panic() {
        let model = model(300, PasswordHashKind::Sha1);
        let reader = build(PasswordHashKind::Sha1, &model);
        let mut body = reader.view.body().to_vec();
        for b in body[reader.dir_offset..].iter_mut() {
            *b = 0xff;
        }
        let mut file = super::super::encode_header(SHA1_KIND, body.len() as u64, reader.view.params()).to_vec();
        file.extend_from_slice(&body);
        file.extend_from_slice(&[0u8; 8]);
        file.extend_from_slice(&super::super::FOOTER_MAGIC);
        let view = FileView::parse(SHA1_FILE_NAME, Bytes::from_vec(file), SHA1_KIND).unwrap();
        let damaged = PasswordFileReader::new(view, PasswordHashKind::Sha1).unwrap();
        for h in model.keys() {
            let err = damaged.count(h).unwrap_err();
            assert!(err.to_string().starts_with("passwords.sha1: damaged: prefix directory"), "{err}");
            assert!(damaged.range(top_20_bits(h)).is_err());
        }
        assert!(damaged.verify().is_err());
    }

    /// Both files of a segment from (hash, count) pairs.
    fn files_of(model: &BTreeMap<PasswordHash, u64>) -> PasswordFiles {
        let of =
            |kind| model.iter().filter(|(h, _)| h.kind() == kind).map(|(h, c)| (h.as_bytes().to_vec(), *c)).collect();
        PasswordFiles {
            sha1: build(PasswordHashKind::Sha1, &of(PasswordHashKind::Sha1)),
            ntlm: build(PasswordHashKind::Ntlm, &of(PasswordHashKind::Ntlm)),
        }
    }

    /// Subtraction files written by [`write_subtraction_files`] from `hashes`, read back
    /// under the names the generation layer gives them.
    fn subtraction_of(hashes: &[PasswordHash]) -> PasswordFiles {
        cumulative_subtraction(None, hashes)
    }

    /// Subtraction files holding `previous`'s counts and `hashes`.
    fn cumulative_subtraction(previous: Option<&PasswordFiles>, hashes: &[PasswordHash]) -> PasswordFiles {
        let dir = tempfile::tempdir().unwrap();
        let paths = [dir.path().join("root.g00000002.pws1"), dir.path().join("root.g00000002.pwnt")];
        let written = extend_subtraction_files(&paths[0], &paths[1], previous, hashes.iter().copied()).unwrap();
        let open = |kind: PasswordHashKind, path: &Path, summary: &FileSummary| {
            let bytes = std::fs::read(path).unwrap();
            assert_eq!(bytes.len() as u64, summary.size);
            let name = format!("deletes/{}", path.file_name().unwrap().to_string_lossy());
            let reader =
                PasswordFileReader::new(FileView::parse(&name, Bytes::from_vec(bytes), file_kind(kind)).unwrap(), kind)
                    .unwrap();
            reader.verify().unwrap();
            reader
        };
        PasswordFiles {
            sha1: open(PasswordHashKind::Sha1, &paths[0], &written[0]),
            ntlm: open(PasswordHashKind::Ntlm, &paths[1], &written[1]),
        }
    }

    /// Hash `i` of a small universe; a third of it under the one prefix `5BAA6`.
    fn universe_hash(kind: PasswordHashKind, i: u8) -> PasswordHash {
        let h = xxhash_rust::xxh3::xxh3_128(&[i, kind as u8]).to_be_bytes();
        let mut bytes: Vec<u8> = h.iter().cycle().take(kind.width()).copied().collect();
        if i.is_multiple_of(3) {
            bytes[..2].copy_from_slice(&[0x5b, 0xaa]);
            bytes[2] = 0x60 | (bytes[2] & 0x0f);
        }
        PasswordHash::from_bytes(kind, &bytes).unwrap()
    }

    fn kind_of(sha1: bool) -> PasswordHashKind {
        if sha1 { PasswordHashKind::Sha1 } else { PasswordHashKind::Ntlm }
    }

    /// Every hash of the universe, both kinds.
    fn universe() -> Vec<PasswordHash> {
        PasswordHashKind::ALL.iter().flat_map(|&k| (0..UNIVERSE).map(move |i| universe_hash(k, i))).collect()
    }

    const UNIVERSE: u8 = 40;

    fn range_of(passwords: &Passwords<'_>, kind: PasswordHashKind, prefix: PasswordPrefix) -> Vec<(PasswordHash, u64)> {
        let range = passwords.range(kind, prefix).unwrap();
        let len = range.len();
        let got: Vec<(PasswordHash, u64)> = range.map(|e| e.map(|e| (*e.hash(), e.count())).unwrap()).collect();
        assert_eq!(got.len(), len, "the range's exact size");
        got
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]

        /// Several segments with subtractions answer as the model (per hash, the sum of
        /// count − subtracted) and as one password file built from the summed data.
        #[test]
        fn parts_with_subtractions_match_the_model_and_one_summed_file(
            parts in proptest::collection::vec(
                (proptest::collection::vec((proptest::bool::ANY, 0..UNIVERSE, 1u64..4, 0u64..4), 0..30), proptest::bool::ANY),
                1..4,
            ),
            seed in proptest::num::u64::ANY,
        ) {
            let mut model: BTreeMap<PasswordHash, u64> = BTreeMap::new();
            let mut built = Vec::new();
            for (entries, with_subtraction) in &parts {
                let mut counts = BTreeMap::new();
                let mut gone = BTreeMap::new();
                for &(sha1, i, count, minus) in entries {
                    let hash = universe_hash(kind_of(sha1), i);
                    counts.insert(hash, count);
                    gone.insert(hash, minus.min(count));
                }
                let mut deleted = Vec::new();
                for (hash, count) in &counts {
                    let minus = if *with_subtraction { gone[hash] } else { 0 };
                    deleted.extend(std::iter::repeat_n(*hash, minus as usize));
                    *model.entry(*hash).or_default() += count - minus;
                }
                // Shuffled: the writer sorts and counts. Two removals: the second file
                // holds the first one's counts and its own.
                deleted.reverse();
                let (first, second) = deleted.split_at(deleted.len() / 2);
                let subtract = with_subtraction.then(|| {
                    let earlier = subtraction_of(first);
                    cumulative_subtraction(Some(&earlier), second)
                });
                built.push(PasswordPart { files: files_of(&counts), subtract });
            }
            model.retain(|_, c| *c > 0);
            let passwords = Passwords::over_parts(&built);
            let single_files = files_of(&model);
            let single = Passwords::new(&single_files);
            for hash in universe() {
                let want = model.get(&hash).copied().unwrap_or(0);
                proptest::prop_assert_eq!(passwords.count(&hash).unwrap(), want);
                proptest::prop_assert_eq!(single.count(&hash).unwrap(), want);
            }
            for kind in PasswordHashKind::ALL {
                let want_len: u64 = built.iter().map(|p| p.files.file(kind).len()).sum();
                proptest::prop_assert_eq!(passwords.len(kind), want_len);
                let mut prefixes: Vec<PasswordPrefix> = (0..UNIVERSE).map(|i| universe_hash(kind, i).prefix()).collect();
                prefixes.push(PasswordPrefix::from_hex("00000").unwrap());
                for prefix in prefixes {
                    let want: Vec<(PasswordHash, u64)> =
                        model.iter().filter(|(h, _)| h.kind() == kind && h.prefix() == prefix).map(|(h, c)| (*h, *c)).collect();
                    proptest::prop_assert_eq!(range_of(&passwords, kind, prefix), want.clone());
                    proptest::prop_assert_eq!(range_of(&single, kind, prefix), want);
                    for padding in [None, Some(seed)] {
                        let (mut got, mut one) = (Vec::new(), Vec::new());
                        let a = passwords.write_range_text(kind, prefix, padding, &mut got).unwrap();
                        let b = single.write_range_text(kind, prefix, padding, &mut one).unwrap();
                        proptest::prop_assert_eq!(a, b);
                        proptest::prop_assert!(got == one, "range text of {} differs", prefix);
                    }
                }
            }
        }
    }

    #[test]
    fn one_part_without_subtraction_is_the_single_file_path() {
        let model: BTreeMap<PasswordHash, u64> =
            (0..UNIVERSE).map(|i| (universe_hash(PasswordHashKind::Sha1, i), 2)).collect();
        let parts = [PasswordPart { files: files_of(&model), subtract: None }];
        assert!(matches!(Passwords::over_parts(&parts).parts, Parts::One(_)));
        let with = [PasswordPart { files: files_of(&model), subtract: Some(subtraction_of(&[])) }];
        assert!(matches!(Passwords::over_parts(&with).parts, Parts::Many(_)));
        assert!(!Passwords::over_parts(&with).is_empty());
    }

    #[test]
    fn subtracting_more_than_the_count_is_damage_naming_the_subtraction_file() {
        let kind = PasswordHashKind::Sha1;
        let (held, absent) = (universe_hash(kind, 0), universe_hash(kind, 3));
        assert_eq!(held.prefix(), absent.prefix());
        let files = files_of(&BTreeMap::from([(held, 2)]));
        for (deleted, hash, gone, count) in [(vec![held; 3], held, 3, 2), (vec![absent], absent, 1, 0)] {
            let parts = [PasswordPart { files: files.clone(), subtract: Some(subtraction_of(&deleted)) }];
            let passwords = Passwords::over_parts(&parts);
            let want = format!(
                "deletes/root.g00000002.pws1: damaged: subtracts {gone} from a sha1 hash that the segment's password file counts {count} times"
            );
            assert_eq!(passwords.count(&hash).unwrap_err().to_string(), want);
            assert_eq!(passwords.range(kind, hash.prefix()).unwrap_err().to_string(), want);
            // The other kind and other ranges are unaffected.
            assert_eq!(passwords.count(&universe_hash(PasswordHashKind::Ntlm, 0)).unwrap(), 0);
        }
    }
}
