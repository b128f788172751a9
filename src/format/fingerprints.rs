//! `email.fpt` / `username.fpt`: the optional accelerator of a `plain` index's key maps.
//! A table of 128-bit keyed fingerprints of the normalized keys, each with the ordinal
//! the FST gives that key, so that a lookup costs two memory reads (a directory entry,
//! then one or two cache lines of entries) instead of one dependent read per FST node.
//!
//! The fingerprint of a key is `h = XXH3-128(key, seed)` with the file's `seed`. Its top
//! `radix_bits` bits pick a bucket; its low 64 bits are the entry's tag. Entries are
//! sorted by (bucket, tag); `directory[b]` is the index of the first entry of bucket `b`
//! or later. A key absent from the table is absent from the index (no false negatives);
//! a key found in it is taken to be the key stored with that fingerprint, which is wrong
//! only if a key not in the index shares `radix_bits + 64` bits of fingerprint with one
//! that is: at most `n / 2^(radix_bits + 64)` per lookup for `n` keys (below 2^-64
//! whatever `n`, since buckets grow with `n`: see docs/FORMAT.md). Two keys of the index
//! that share bucket and tag (as likely as that, squared) get one entry whose ordinal is
//! every bit set ("ask the FST"): lookups of that fingerprint walk the FST.
//!
//! Body: `entries[entry_count × (8 + ordinal_width)]` (tag u64 LE, then the ordinal, LE)
//! then `directory[(2^radix_bits + 1) × directory_width]`.
//! Header parameters: `[key_count, entry_count, radix_bits | ordinal_width << 8 |
//! directory_width << 16, seed]`.
//!
//! The builder writes the table while it builds the FST: each key's fingerprint and
//! ordinal go to one of 256 spill files by their top 8 bits, and each spill file is
//! sorted in memory at the end, so memory stays small whatever the key count.

use super::keymap::KeyMapRole;
use super::keys::radix_bits;
use super::{FileView, FileWriter, FormatError, Kind, read_u64, read_uint, section_end, uint_width, write_uint};
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::Path;
use xxhash_rust::xxh3::xxh3_128_with_seed;

/// Kind tag of `email.fpt`.
pub const EMAIL_KIND: Kind = *b"EFPT";
/// Kind tag of `username.fpt`.
pub const USERNAME_KIND: Kind = *b"UFPT";
/// Bytes of an entry's tag (the fingerprint's low 64 bits).
pub const TAG_LEN: usize = 8;

/// Spill files of the builder: the fingerprint's top 8 bits.
const PARTITION_BITS: u32 = 8;
/// One spilled entry: the fingerprint (u128 LE) and the ordinal (u64 LE).
const SPILL_ENTRY: usize = 24;

/// The file name of the `role` accelerator.
pub fn file_name(role: KeyMapRole) -> &'static str {
    match role {
        KeyMapRole::Email => "email.fpt",
        KeyMapRole::Username => "username.fpt",
    }
}

/// The kind tag of the `role` accelerator.
pub fn kind(role: KeyMapRole) -> Kind {
    match role {
        KeyMapRole::Email => EMAIL_KIND,
        KeyMapRole::Username => USERNAME_KIND,
    }
}

/// Both accelerator files with their kinds (optional files of a `plain` index).
pub fn files() -> [(&'static str, Kind); 2] {
    [(file_name(KeyMapRole::Email), EMAIL_KIND), (file_name(KeyMapRole::Username), USERNAME_KIND)]
}

/// The seed a build derives from its build time: fixed for a reproducible build
/// (`SOURCE_DATE_EPOCH`), different from one build to the next otherwise.
pub fn seed_for_build(build_unix: i64) -> u64 {
    xxhash_rust::xxh3::xxh3_64_with_seed(&build_unix.to_le_bytes(), 0x6270_7466_7365_6564)
}

/// The fingerprint of `key` under `seed`.
#[inline]
fn fingerprint(key: &[u8], seed: u64) -> u128 {
    xxh3_128_with_seed(key, seed)
}

/// The bucket of fingerprint `h`: its top `bits` bits.
#[inline]
fn bucket(h: u128, bits: u32) -> u64 {
    if bits == 0 { 0 } else { (h >> (128 - bits)) as u64 }
}

/// The tag of fingerprint `h`: its low 64 bits.
#[inline]
fn tag(h: u128) -> u64 {
    h as u64
}

/// The all-ones value of an ordinal field of `width` bytes: "ask the FST", the
/// ordinal of an entry two keys share. Never a real ordinal (the width holds the key count).
fn ask_fst_at(width: usize) -> u64 {
    if width >= 8 { u64::MAX } else { (1u64 << (8 * width)) - 1 }
}

/// Builds an accelerator from (key, ordinal) pairs in any order.
pub struct FingerprintWriter {
    path: std::path::PathBuf,
    spill_dir: std::path::PathBuf,
    kind: Kind,
    seed: u64,
    partitions: Vec<BufWriter<File>>,
    count: u64,
}

impl FingerprintWriter {
    /// Prepares `path` (written by [`finish`](Self::finish)); spill files go to
    /// `spill_dir` and are removed when the writer is done or dropped.
    pub fn create(path: &Path, kind: Kind, spill_dir: &Path, seed: u64) -> io::Result<FingerprintWriter> {
        let mut partitions = Vec::with_capacity(1 << PARTITION_BITS);
        for _ in 0..1 << PARTITION_BITS {
            partitions.push(BufWriter::with_capacity(16 << 10, tempfile::tempfile_in(spill_dir)?));
        }
        Ok(FingerprintWriter {
            path: path.to_path_buf(),
            spill_dir: spill_dir.to_path_buf(),
            kind,
            seed,
            partitions,
            count: 0,
        })
    }

    /// Adds `key` with its FST ordinal.
    pub fn push(&mut self, key: &[u8], ordinal: u64) -> io::Result<()> {
        let h = fingerprint(key, self.seed);
        let p = (h >> (128 - PARTITION_BITS)) as usize;
        let out = self.partitions.get_mut(p).ok_or_else(|| io::Error::other("fingerprint partition out of range"))?;
        let mut entry = [0u8; SPILL_ENTRY];
        entry[..16].copy_from_slice(&h.to_le_bytes());
        entry[16..].copy_from_slice(&ordinal.to_le_bytes());
        out.write_all(&entry)?;
        self.count += 1;
        Ok(())
    }

    /// Sorts the entries, writes the table and its directory for `key_count` keys (the
    /// FST's count; every ordinal pushed must be below it) and finishes the file.
    pub fn finish(self, key_count: u64) -> io::Result<super::FileSummary> {
        if self.count != key_count {
            return Err(io::Error::other(format!(
                "{} fingerprints for {key_count} keys in {}",
                self.count,
                self.path.display()
            )));
        }
        let bits = radix_bits(key_count);
        let ordinal_width = uint_width(key_count);
        let dir_width = uint_width(key_count);
        let ask_fst = ask_fst_at(ordinal_width);
        let mut out = FileWriter::create(&self.path, self.kind)?;
        let mut directory = BufWriter::with_capacity(1 << 20, tempfile::tempfile_in(&self.spill_dir)?);
        let mut written = 0u64;
        let mut next_bucket = 0u64;
        // Below 2^PARTITION_BITS buckets a bucket spans several partitions: sort them together.
        let group = 1usize << PARTITION_BITS.saturating_sub(bits);
        let mut partitions = self.partitions.into_iter();
        let mut entries: Vec<(u64, u64, u64)> = Vec::new();
        loop {
            entries.clear();
            let mut taken = 0;
            for part in partitions.by_ref().take(group) {
                read_partition(part, bits, &mut entries)?;
                taken += 1;
            }
            if taken == 0 {
                break;
            }
            entries.sort_unstable();
            let mut i = 0;
            while let Some(&(b, t, ordinal)) = entries.get(i) {
                let mut run = 1;
                while entries.get(i + run).is_some_and(|&(b2, t2, _)| (b2, t2) == (b, t)) {
                    run += 1;
                }
                if ordinal >= key_count {
                    return Err(io::Error::other(format!("ordinal {ordinal} of {key_count} keys")));
                }
                while next_bucket <= b {
                    write_uint(&mut directory, written, dir_width)?;
                    next_bucket += 1;
                }
                out.write_all(&t.to_le_bytes())?;
                write_uint(&mut out, if run == 1 { ordinal } else { ask_fst }, ordinal_width)?;
                written += 1;
                i += run;
            }
        }
        while next_bucket <= 1u64 << bits {
            write_uint(&mut directory, written, dir_width)?;
            next_bucket += 1;
        }
        let mut directory = directory.into_inner().map_err(|e| e.into_error())?;
        out.append_file(&mut directory)?;
        let packed = bits as u64 | (ordinal_width as u64) << 8 | (dir_width as u64) << 16;
        out.finish([key_count, written, packed, self.seed])
    }
}

/// Appends the (bucket, tag, ordinal) entries of one spill file.
fn read_partition(part: BufWriter<File>, bits: u32, entries: &mut Vec<(u64, u64, u64)>) -> io::Result<()> {
    let mut file = part.into_inner().map_err(|e| e.into_error())?;
    io::Seek::seek(&mut file, io::SeekFrom::Start(0))?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut entry = [0u8; SPILL_ENTRY];
    loop {
        match reader.read_exact(&mut entry) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        }
        let (h, ordinal) = entry.split_at(16);
        let h = u128::from_le_bytes(h.try_into().map_err(|_| io::Error::other("spill entry"))?);
        let ordinal = u64::from_le_bytes(ordinal.try_into().map_err(|_| io::Error::other("spill entry"))?);
        entries.push((bucket(h, bits), tag(h), ordinal));
    }
}

/// What the table says about a key.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Probe {
    /// No key of the index has this fingerprint: the key is absent.
    Absent,
    /// The key's ordinal.
    Found(u64),
    /// Two keys of the index share this fingerprint: ask the FST.
    AskFst,
}

/// A key's bucket in the table (entries `lo..hi`) and its tag, between the steps of a
/// batch lookup.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct FingerprintSpan {
    lo: u64,
    hi: u64,
    tag: u64,
}

/// Reads an accelerator. Every read is bounds-checked: damaged bytes give a wrong
/// answer or an error naming the file, never a panic or a read outside the file.
#[derive(Clone, Debug)]
pub struct FingerprintReader {
    view: FileView,
    key_count: u64,
    entry_count: u64,
    bits: u32,
    ordinal_width: usize,
    entry_width: usize,
    dir_width: usize,
    dir_offset: usize,
    seed: u64,
}

impl FingerprintReader {
    /// Checks the header against the body and against `key_count`, the key count of
    /// the FST it accelerates (constant time).
    pub fn new(view: FileView, key_count: u64) -> Result<FingerprintReader, FormatError> {
        let [keys, entry_count, packed, seed] = view.params();
        if keys != key_count {
            return Err(view.damaged(format!("made for {keys} keys, the key map holds {key_count}")));
        }
        if entry_count > key_count {
            return Err(view.damaged(format!("{entry_count} entries for {key_count} keys")));
        }
        let bits = packed & 0xff;
        let ordinal_width = (packed >> 8) & 0xff;
        let dir_width = (packed >> 16) & 0xff;
        if packed >> 24 != 0 {
            return Err(view.damaged(format!("unknown layout parameter {packed:#x}")));
        }
        if bits > super::keys::MAX_RADIX_BITS as u64 {
            return Err(view.damaged(format!("radix bits {bits} above the maximum {}", super::keys::MAX_RADIX_BITS)));
        }
        for (what, width) in [("ordinal", ordinal_width), ("directory entry", dir_width)] {
            if width != 4 && width != 8 {
                return Err(view.damaged(format!("{what} width {width} is not 4 or 8")));
            }
        }
        let entry_width = TAG_LEN as u64 + ordinal_width;
        let dir_offset = section_end(&view, 0, entry_count, entry_width, "entries")?;
        let end = section_end(&view, dir_offset, (1u64 << bits) + 1, dir_width, "radix directory")?;
        if end != view.body().len() as u64 {
            return Err(view.damaged("trailing bytes after the radix directory"));
        }
        Ok(FingerprintReader {
            key_count,
            entry_count,
            bits: bits as u32,
            ordinal_width: ordinal_width as usize,
            entry_width: entry_width as usize,
            dir_width: dir_width as usize,
            dir_offset: dir_offset as usize,
            seed,
            view,
        })
    }

    /// The file view.
    #[cfg(test)]
    pub fn view(&self) -> &FileView {
        &self.view
    }

    fn dir(&self) -> &[u8] {
        self.view.body().get(self.dir_offset..).unwrap_or_default()
    }

    /// What the table says about `key`.
    #[inline]
    pub fn probe(&self, key: &[u8]) -> Result<Probe, FormatError> {
        let span = self.span(key)?;
        Ok(self.search(span))
    }

    /// First step of a batch lookup: hints the CPU to fetch `key`'s directory entries.
    #[inline]
    pub fn prefetch_bucket(&self, key: &[u8]) {
        let b = bucket(fingerprint(key, self.seed), self.bits) as usize;
        let dir = self.dir();
        crate::mmap::prefetch(dir, b * self.dir_width);
        crate::mmap::prefetch(dir, (b + 1) * self.dir_width);
    }

    /// Second step: reads `key`'s directory entries (checked against the entry count).
    #[inline]
    pub fn span(&self, key: &[u8]) -> Result<FingerprintSpan, FormatError> {
        let h = fingerprint(key, self.seed);
        let b = bucket(h, self.bits);
        let dir = self.dir();
        let (Some(lo), Some(hi)) = (read_uint(dir, b, self.dir_width), read_uint(dir, b + 1, self.dir_width)) else {
            return Err(self.view.damaged("radix directory shorter than its header says"));
        };
        if lo > hi || hi > self.entry_count {
            return Err(self
                .view
                .damaged(format!("radix bucket {b} spans entries {lo}..{hi} of {}", self.entry_count)));
        }
        Ok(FingerprintSpan { lo, hi, tag: tag(h) })
    }

    /// Hints the CPU to fetch the entries of a bucket (at most 4 cache lines).
    #[inline]
    pub fn prefetch_span(&self, span: FingerprintSpan) {
        let w = self.entry_width;
        crate::mmap::prefetch_range(self.view.body(), span.lo as usize * w..span.hi as usize * w, 4);
    }

    /// Last step: the entry of the span's tag. An ordinal outside the key count (not
    /// "ask the FST") is treated as [`Probe::AskFst`] so that damage never yields an
    /// impossible ordinal; `verify` reports it.
    #[inline]
    pub fn search(&self, span: FingerprintSpan) -> Probe {
        let body: &[u8] = self.view.body();
        let w = self.entry_width;
        for i in span.lo..span.hi {
            let at = i as usize * w;
            if read_u64(body, at) == Some(span.tag) {
                return match read_uint(body.get(at + TAG_LEN..).unwrap_or_default(), 0, self.ordinal_width) {
                    Some(ordinal) if ordinal < self.key_count => Probe::Found(ordinal),
                    _ => Probe::AskFst,
                };
            }
        }
        Probe::Absent
    }

    /// Full check of the table itself: the directory ascends and ends at the entry
    /// count, tags ascend strictly within each bucket, every ordinal is below the key
    /// count or "ask the FST". Returns how many entries hold an ordinal: the caller then
    /// checks every key with [`verify_key`](Self::verify_key) and that as many keys
    /// found their own ordinal.
    pub fn verify_table(&self) -> Result<u64, FormatError> {
        let body: &[u8] = self.view.body();
        let dir = self.dir();
        let ask_fst = ask_fst_at(self.ordinal_width);
        let mut prev_end = 0u64;
        let mut real = 0u64;
        for b in 0..1u64 << self.bits {
            let (Some(lo), Some(hi)) = (read_uint(dir, b, self.dir_width), read_uint(dir, b + 1, self.dir_width))
            else {
                return Err(self.view.damaged("radix directory shorter than its header says"));
            };
            if lo != prev_end || hi < lo || hi > self.entry_count {
                return Err(self.view.damaged(format!("radix directory entry {b} is wrong")));
            }
            let mut prev_tag = None;
            for i in lo..hi {
                let at = i as usize * self.entry_width;
                let t = read_u64(body, at).ok_or_else(|| self.view.damaged("entries truncated"))?;
                if prev_tag.is_some_and(|p| p >= t) {
                    return Err(self.view.damaged(format!("entries {} and {i} are not in ascending order", i - 1)));
                }
                prev_tag = Some(t);
                let ordinal = read_uint(body.get(at + TAG_LEN..).unwrap_or_default(), 0, self.ordinal_width)
                    .ok_or_else(|| self.view.damaged("entries truncated"))?;
                if ordinal < self.key_count {
                    real += 1;
                } else if ordinal != ask_fst {
                    return Err(self.view.damaged(format!("entry {i} holds ordinal {ordinal} of {}", self.key_count)));
                }
            }
            prev_end = hi;
        }
        if prev_end != self.entry_count {
            return Err(self.view.damaged(format!("the directory ends at {prev_end} of {} entries", self.entry_count)));
        }
        Ok(real)
    }

    /// Checks one key of the FST against the table: `Ok(true)` when it finds its own
    /// ordinal, `Ok(false)` when its entry sends lookups to the FST, an error naming the
    /// file otherwise.
    pub fn verify_key(&self, key: &[u8], ordinal: u64) -> Result<bool, FormatError> {
        match self.probe(key)? {
            Probe::Found(o) if o == ordinal => Ok(true),
            Probe::AskFst => Ok(false),
            Probe::Found(o) => Err(self.view.damaged(format!("key {ordinal} finds ordinal {o}"))),
            Probe::Absent => Err(self.view.damaged(format!("key {ordinal} is missing"))),
        }
    }

    /// The whole check for keys given in order with their ordinals: [`verify_table`](Self::verify_table),
    /// then every key, then the count of entries holding an ordinal.
    #[cfg(test)]
    pub fn verify<'k>(&self, keys: impl IntoIterator<Item = (&'k [u8], u64)>) -> Result<(), FormatError> {
        let real = self.verify_table()?;
        let mut found = 0u64;
        for (key, ordinal) in keys {
            found += u64::from(self.verify_key(key, ordinal)?);
        }
        self.check_found(real, found)
    }

    /// Fails unless `found` keys found their own ordinal in a table where `real` entries
    /// hold one (an entry no key found is damage).
    pub fn check_found(&self, real: u64, found: u64) -> Result<(), FormatError> {
        if found != real {
            return Err(self.view.damaged(format!("{real} entries hold an ordinal, {found} keys found theirs")));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mmap::Bytes;
    use proptest::prelude::*;
    use std::collections::HashMap;

    fn build(keys: &[Vec<u8>], seed: u64) -> (FingerprintReader, Vec<u8>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("email.fpt");
        let mut w = FingerprintWriter::create(&path, EMAIL_KIND, dir.path(), seed).unwrap();
        for (i, k) in keys.iter().enumerate() {
            w.push(k, i as u64).unwrap();
        }
        w.finish(keys.len() as u64).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let view = FileView::parse("email.fpt", Bytes::from_vec(bytes.clone()), EMAIL_KIND).unwrap();
        view.verify_checksum().unwrap();
        (FingerprintReader::new(view, keys.len() as u64).unwrap(), bytes)
    }

    fn verify_with(reader: &FingerprintReader, keys: &[Vec<u8>]) -> Result<(), FormatError> {
        reader.verify(keys.iter().enumerate().map(|(i, k)| (k.as_slice(), i as u64)))
    }

    fn distinct(keys: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
        let mut keys = keys;
        keys.sort();
        keys.dedup();
        keys
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        /// Against a HashMap model: every key finds its ordinal, other keys are absent
        /// (their chance of a false positive is far below anything a test can meet).
        #[test]
        fn agrees_with_a_hash_map(
            keys in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..12), 0..700),
            others in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..12), 0..50),
            seed in any::<u64>(),
        ) {
            let keys = distinct(keys);
            let model: HashMap<&[u8], u64> = keys.iter().enumerate().map(|(i, k)| (k.as_slice(), i as u64)).collect();
            let (reader, _) = build(&keys, seed);
            for k in keys.iter().chain(&others) {
                let expected = model.get(k.as_slice()).map_or(Probe::Absent, |&o| Probe::Found(o));
                prop_assert_eq!(reader.probe(k).unwrap(), expected);
            }
            prop_assert!(verify_with(&reader, &keys).is_ok());
        }
    }

    #[test]
    fn sizes_follow_the_key_count() {
        for n in [0usize, 1, 511, 512, 5000] {
            let keys: Vec<Vec<u8>> = (0..n).map(|i| format!("user{i}@example.com").into_bytes()).collect();
            let (reader, bytes) = build(&distinct(keys.clone()), 7);
            let bits = radix_bits(n as u64);
            assert_eq!(bytes.len(), 64 + n * 12 + ((1usize << bits) + 1) * 4 + 16, "{n}");
            assert!(verify_with(&reader, &distinct(keys)).is_ok());
        }
    }

    #[test]
    fn shared_fingerprints_ask_the_fst() {
        // Two keys cannot be made to collide; write the table by hand instead: bucket
        // bits 0, two entries, the second shared.
        let mut body = Vec::new();
        for (tag, ordinal) in [(5u64, 0u32), (9, u32::MAX)] {
            body.extend_from_slice(&tag.to_le_bytes());
            body.extend_from_slice(&ordinal.to_le_bytes());
        }
        for d in [0u32, 2] {
            body.extend_from_slice(&d.to_le_bytes());
        }
        let view = view_of(&body, [3, 2, 4 << 8 | 4 << 16, 0]);
        let reader = FingerprintReader::new(view, 3).unwrap();
        assert_eq!(reader.search(FingerprintSpan { lo: 0, hi: 2, tag: 9 }), Probe::AskFst);
        assert_eq!(reader.search(FingerprintSpan { lo: 0, hi: 2, tag: 5 }), Probe::Found(0));
        assert_eq!(reader.search(FingerprintSpan { lo: 0, hi: 2, tag: 6 }), Probe::Absent);
    }

    fn view_of(body: &[u8], params: [u64; 4]) -> FileView {
        let mut file = super::super::encode_header(EMAIL_KIND, body.len() as u64, params).to_vec();
        file.extend_from_slice(body);
        file.extend_from_slice(&[0u8; 8]);
        file.extend_from_slice(&super::super::FOOTER_MAGIC);
        FileView::parse("email.fpt", Bytes::from_vec(file), EMAIL_KIND).unwrap()
    }

    #[test]
    fn damaged_headers_and_directories_are_errors_naming_the_file() {
        let keys: Vec<Vec<u8>> = distinct((0..300).map(|i| format!("k{i}").into_bytes()).collect());
        let (good, bytes) = build(&keys, 1);
        let body = &bytes[64..bytes.len() - 16];
        let params = good.view().params();
        // Wrong key count, widths, radix bits, trailing bytes.
        assert!(FingerprintReader::new(view_of(body, params), 299).unwrap_err().to_string().contains("email.fpt"));
        for packed in [params[2] | 1 << 24, (params[2] & !0xff) | 30, params[2] & !0xff00 | 3 << 8] {
            let err = FingerprintReader::new(view_of(body, [params[0], params[1], packed, params[3]]), 300);
            assert!(err.unwrap_err().to_string().contains("email.fpt: damaged"));
        }
        let mut longer = body.to_vec();
        longer.push(0);
        assert!(FingerprintReader::new(view_of(&longer, params), 300).is_err());
        // A directory entry pointing past the entries: lookups are errors, not panics.
        let mut bad = body.to_vec();
        let dir_at = 300 * 12;
        bad[dir_at..].fill(0xff);
        let reader = FingerprintReader::new(view_of(&bad, params), 300).unwrap();
        for k in &keys {
            assert!(reader.probe(k).unwrap_err().to_string().contains("email.fpt: damaged: radix bucket"));
        }
        assert!(verify_with(&reader, &keys).is_err());
        // A flipped tag or ordinal: lookups stay in bounds, verify names the damage.
        for at in [0usize, 8, 12 * 150 + 3, 12 * 299 + 9] {
            let mut bad = body.to_vec();
            bad[at] ^= 0x40;
            let reader = FingerprintReader::new(view_of(&bad, params), 300).unwrap();
            for k in &keys {
                if let Ok(Probe::Found(o)) = reader.probe(k) {
                    assert!(o < 300);
                }
            }
            assert!(verify_with(&reader, &keys).is_err(), "flip at {at}");
        }
    }
}
