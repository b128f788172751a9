//! Key filters: a segment's `keys.filter` (kind `KFLT`) and the union filter
//! `filters/g<G>.union` (kind `UFLT`, the same layout); docs/FORMAT.md §10.4, design
//! §4.5. They let a lookup over several segments skip the segments that cannot hold a
//! key, so that a miss costs one filter block instead of one key map lookup per segment.
//!
//! A split-block Bloom filter: blocks of 64 bytes (one cache line, eight u64 words);
//! each key sets one bit in each word of one block. A key's hash is computed once per
//! query ([`hash`]) and probed in every filter of the index ([`FilterReader::may_contain`]):
//! the block is the top `log2(blocks)` bits of the hash, the bit of word `i` is
//! `(u32(h) × SALT[i]) >> 26` with the eight odd constants of Parquet's split-block
//! filter ([`SALT`]).
//!
//! Body: the e-mail blocks, then the username blocks, each block eight u64 LE words.
//! Header parameters: `[email_blocks_log2, username_blocks_log2, seed, keys]`.

use super::{FileSummary, FileView, FileWriter, FormatError, Kind, identifier_code, read_u64};
use crate::index::IdentifierKind;
use std::io::{self, Write};
use std::path::Path;

/// Kind tag of a segment's filter (`keys.filter`).
pub const SEGMENT_KIND: Kind = *b"KFLT";
/// Kind tag of the union filter of a generation (`filters/g<G>.union`).
pub const UNION_KIND: Kind = *b"UFLT";
/// File name of a segment's filter inside its directory.
pub const SEGMENT_FILE_NAME: &str = "keys.filter";
/// Bytes of a block: one cache line.
pub const BLOCK_BYTES: usize = 64;
/// Words of a block; a key sets one bit in each.
const WORDS: usize = 8;
/// Bits per key the sizing aims at: a section has the fewest blocks that give each key
/// at least this many bits, so 12 to 24.
pub const MIN_BITS_PER_KEY: u64 = 12;
/// Largest section: 2^32 blocks (256 GiB); the block index then uses the top 32 bits of
/// the hash and the bit positions the low 32, independent of each other.
pub const MAX_BLOCKS_LOG2: u32 = 32;
/// The eight odd 32-bit multipliers of the Parquet split-block Bloom filter: word `i`
/// gets bit `(u32(h) × SALT[i]) >> 26`.
pub const SALT: [u32; WORDS] =
    [0x47b6_137b, 0x4497_4d91, 0x8824_ad5b, 0xa2b7_289d, 0x7054_95c7, 0x2df1_424b, 0x9efc_4947, 0x5c6b_fb31];

/// The hash of `key` (a derived key, docs/FORMAT.md §6) of `kind` under the index's
/// filter `seed`: XXH3-64 of the key with seed `seed ^ kind` (0 e-mail, 1 username).
/// Computed once per query and probed in every filter of the index.
#[inline]
pub fn hash(kind: IdentifierKind, key: &[u8], seed: u64) -> u64 {
    xxhash_rust::xxh3::xxh3_64_with_seed(key, seed ^ u64::from(identifier_code(kind)))
}

/// The section size for `keys` keys: the smallest `a` with `512 × 2^a ≥ 12 × keys`
/// (12 to 24 bits per key), at most [`MAX_BLOCKS_LOG2`].
pub fn blocks_log2(keys: u64) -> u32 {
    let blocks = keys.saturating_mul(MIN_BITS_PER_KEY).div_ceil(8 * BLOCK_BYTES as u64).max(1);
    blocks.next_power_of_two().trailing_zeros().min(MAX_BLOCKS_LOG2)
}

/// The block of hash `h` in a section of `2^log2` blocks: the top `log2` bits.
#[inline]
fn block_of(h: u64, log2: u32) -> usize {
    h.checked_shr(64 - log2).map_or(0, |b| b as usize)
}

/// The bit each of the eight words of `h`'s block holds for it.
#[inline]
fn word_masks(h: u64) -> [u64; WORDS] {
    let x = h as u32;
    SALT.map(|salt| 1u64 << (x.wrapping_mul(salt) >> 26))
}

/// The first block of `kind`'s section and the section's size (log2 of its blocks).
#[inline]
fn section(kind: IdentifierKind, email_log2: u32, username_log2: u32) -> (usize, u32) {
    match kind {
        IdentifierKind::Email => (0, email_log2),
        IdentifierKind::Username => (1usize << email_log2, username_log2),
    }
}

/// A filter being filled in memory: sized for a number of keys per kind, then written
/// once. [`FilterBuilder::from_reader`] copies a written filter to insert more keys
/// (the union filter grows that way, generation after generation).
#[derive(Clone, Debug)]
pub struct FilterBuilder {
    seed: u64,
    email_log2: u32,
    username_log2: u32,
    /// The e-mail blocks, then the username blocks.
    words: Vec<u64>,
    keys: u64,
}

impl FilterBuilder {
    /// An empty filter sized for `email_keys` e-mail keys and `username_keys` username
    /// keys (for a union filter: the capacities), for hashes made with `seed`.
    pub fn new(email_keys: u64, username_keys: u64, seed: u64) -> FilterBuilder {
        let (email_log2, username_log2) = (blocks_log2(email_keys), blocks_log2(username_keys));
        let blocks = (1usize << email_log2) + (1usize << username_log2);
        FilterBuilder { seed, email_log2, username_log2, words: vec![0; blocks * WORDS], keys: 0 }
    }

    /// A copy of a written filter, to insert more keys into (same geometry and seed).
    pub fn from_reader(reader: &FilterReader) -> FilterBuilder {
        let words = reader.view.body().chunks_exact(8).map(|w| read_u64(w, 0).unwrap_or(0)).collect();
        FilterBuilder {
            seed: reader.seed,
            email_log2: reader.email_log2,
            username_log2: reader.username_log2,
            words,
            keys: reader.keys,
        }
    }

    /// The seed the hashes must be made with.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Keys inserted so far (a key inserted twice counts twice).
    pub fn keys(&self) -> u64 {
        self.keys
    }

    /// Inserts the key of `kind` whose [`hash`] is `h`.
    #[inline]
    pub fn insert(&mut self, kind: IdentifierKind, h: u64) {
        let (first, log2) = section(kind, self.email_log2, self.username_log2);
        let start = (first + block_of(h, log2)) * WORDS;
        if let Some(block) = self.words.get_mut(start..start + WORDS) {
            for (word, mask) in block.iter_mut().zip(word_masks(h)) {
                *word |= mask;
            }
        }
        self.keys += 1;
    }

    /// Whether the key of `kind` whose hash is `h` may have been inserted.
    pub fn may_contain(&self, kind: IdentifierKind, h: u64) -> bool {
        let (first, log2) = section(kind, self.email_log2, self.username_log2);
        let start = (first + block_of(h, log2)) * WORDS;
        self.words
            .get(start..start + WORDS)
            .is_none_or(|block| block.iter().zip(word_masks(h)).all(|(word, mask)| word & mask != 0))
    }

    /// Writes the filter to `path` as a file of `kind` ([`SEGMENT_KIND`] or
    /// [`UNION_KIND`]).
    pub fn write(&self, path: &Path, kind: Kind) -> io::Result<FileSummary> {
        let mut out = FileWriter::create(path, kind)?;
        let mut buf = Vec::with_capacity(1 << 16);
        for chunk in self.words.chunks(1 << 13) {
            buf.clear();
            buf.extend(chunk.iter().flat_map(|w| w.to_le_bytes()));
            out.write_all(&buf)?;
        }
        out.finish([self.email_log2 as u64, self.username_log2 as u64, self.seed, self.keys])
    }
}

/// Reads a filter file.
#[derive(Clone, Debug)]
pub struct FilterReader {
    view: FileView,
    seed: u64,
    email_log2: u32,
    username_log2: u32,
    keys: u64,
}

impl FilterReader {
    /// Checks the header against the body and the seed against the index's filter
    /// `seed` (constant time).
    pub fn new(view: FileView, seed: u64) -> Result<FilterReader, FormatError> {
        let [email_log2, username_log2, file_seed, keys] = view.params();
        for (what, log2) in [("e-mail", email_log2), ("username", username_log2)] {
            if log2 > MAX_BLOCKS_LOG2 as u64 {
                return Err(view.damaged(format!("{what} section of 2^{log2} blocks (at most 2^{MAX_BLOCKS_LOG2})")));
            }
        }
        if file_seed != seed {
            return Err(view.damaged(format!(
                "filter seed {file_seed:#018x}, but the index's is {seed:#018x}: the file belongs to another index"
            )));
        }
        let blocks = (1u64 << email_log2) + (1u64 << username_log2);
        if Some(view.body().len() as u64) != blocks.checked_mul(BLOCK_BYTES as u64) {
            return Err(view.damaged(format!(
                "{} body bytes, but 2^{email_log2} + 2^{username_log2} blocks of {BLOCK_BYTES} bytes",
                view.body().len()
            )));
        }
        Ok(FilterReader { view, seed, email_log2: email_log2 as u32, username_log2: username_log2 as u32, keys })
    }

    /// Keys inserted (both sections; a union filter counts every insertion).
    pub fn keys(&self) -> u64 {
        self.keys
    }

    /// The seed of the hashes.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Number of blocks of `kind`'s section.
    pub fn blocks(&self, kind: IdentifierKind) -> u64 {
        1u64 << self.blocks_log2(kind)
    }

    /// Log2 of the number of blocks of `kind`'s section.
    pub fn blocks_log2(&self, kind: IdentifierKind) -> u32 {
        section(kind, self.email_log2, self.username_log2).1
    }

    /// The 64 bytes of `h`'s block in `kind`'s section.
    #[inline]
    fn block(&self, kind: IdentifierKind, h: u64) -> Option<&[u8]> {
        let (first, log2) = section(kind, self.email_log2, self.username_log2);
        let start = (first + block_of(h, log2)) * BLOCK_BYTES;
        self.view.body().get(start..start + BLOCK_BYTES)
    }

    /// Whether the key of `kind` whose [`hash`] is `h` may be in the filter: `false`
    /// means it is certainly not; `true` is wrong with the false-positive rate of the
    /// filter's load (0.4% at 12 bits per key).
    #[inline]
    pub fn may_contain(&self, kind: IdentifierKind, h: u64) -> bool {
        // The sections' sizes were checked at open, so the block is always there.
        self.block(kind, h).is_none_or(|block| {
            block.chunks_exact(8).zip(word_masks(h)).all(|(word, mask)| read_u64(word, 0).unwrap_or(!0) & mask != 0)
        })
    }

    /// Hints the CPU to fetch `h`'s block (probing several filters: prefetch all,
    /// then probe).
    #[inline]
    pub fn prefetch(&self, kind: IdentifierKind, h: u64) {
        let (first, log2) = section(kind, self.email_log2, self.username_log2);
        crate::mmap::prefetch(self.view.body(), (first + block_of(h, log2)) * BLOCK_BYTES);
    }

    /// The checksum of the whole file (a lost bit would turn hits into misses; open
    /// pays for this check, [`FilterReader::verify`] does more).
    pub fn verify_checksum(&self) -> Result<(), FormatError> {
        self.view.verify_checksum()
    }

    /// Full check: the checksum, and no more bits set than the keys inserted can set
    /// (eight each).
    pub fn verify(&self) -> Result<(), FormatError> {
        self.view.verify_checksum()?;
        let set: u64 =
            self.view.body().chunks_exact(8).map(|w| u64::from(read_u64(w, 0).unwrap_or(0).count_ones())).sum();
        if set > self.keys.saturating_mul(WORDS as u64) {
            return Err(self.view.damaged(format!(
                "{set} bits set, more than the {} keys inserted can set ({} each)",
                self.keys, WORDS
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::framed_bytes;
    use crate::mmap::Bytes;
    use IdentifierKind::{Email, Username};

    const SEED: u64 = 0x5eed_1234_abcd_0001;
    const NAME: &str = "segments/g00000002/keys.filter";

    fn open(bytes: Vec<u8>, seed: u64) -> Result<FilterReader, FormatError> {
        FilterReader::new(FileView::parse(NAME, Bytes::from_vec(bytes), SEGMENT_KIND)?, seed)
    }

    fn written(builder: &FilterBuilder) -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(SEGMENT_FILE_NAME);
        builder.write(&path, SEGMENT_KIND).unwrap();
        std::fs::read(&path).unwrap()
    }

    fn email(i: u64) -> String {
        format!("user{i}@example.org")
    }

    /// The false-positive rate of a split-block filter of eight 64-bit words whose
    /// blocks hold a Poisson number of keys with mean `load`: a probe is positive when
    /// each of its eight bits is set, and one word holds `j` keys' bits.
    fn model_rate(load: f64) -> f64 {
        let mut rate = 0.0;
        let mut poisson = (-load).exp();
        for j in 0..2000 {
            if j > 0 {
                poisson *= load / j as f64;
            }
            rate += poisson * (1.0 - (1.0 - 1.0 / 64.0f64).powi(j)).powi(WORDS as i32);
        }
        rate
    }

    #[test]
    fn sizing_gives_12_to_24_bits_per_key() {
        assert_eq!(blocks_log2(0), 0);
        assert_eq!(blocks_log2(1), 0);
        assert_eq!(blocks_log2(42), 0);
        assert_eq!(blocks_log2(43), 1);
        for keys in [100u64, 1000, 12_345, 1 << 20, 3_000_001] {
            let bits = 512u64 << blocks_log2(keys);
            assert!(bits >= 12 * keys && bits < 24 * keys, "{keys} keys: {bits} bits");
        }
        assert_eq!(blocks_log2(u64::MAX), MAX_BLOCKS_LOG2);
    }

    #[test]
    fn inserted_keys_are_found_after_a_round_trip() {
        let mut builder = FilterBuilder::new(500, 100, SEED);
        for i in 0..500 {
            builder.insert(Email, hash(Email, email(i).as_bytes(), SEED));
        }
        for i in 0..100 {
            builder.insert(Username, hash(Username, format!("user{i}").as_bytes(), SEED));
        }
        let reader = open(written(&builder), SEED).unwrap();
        reader.verify().unwrap();
        assert_eq!(reader.keys(), 600);
        assert_eq!(reader.blocks(Email), 16);
        assert_eq!(reader.blocks(Username), 4);
        for i in 0..500 {
            let h = hash(Email, email(i).as_bytes(), SEED);
            assert!(reader.may_contain(Email, h) && builder.may_contain(Email, h));
        }
        for i in 0..100 {
            assert!(reader.may_contain(Username, hash(Username, format!("user{i}").as_bytes(), SEED)));
        }
        // The kind is part of the hash: the same bytes hash differently per kind.
        assert_ne!(hash(Email, b"a", SEED), hash(Username, b"a", SEED));
        // A copy keeps every key and takes more (the union filter).
        let mut more = FilterBuilder::from_reader(&reader);
        more.insert(Email, hash(Email, b"new@example.org", SEED));
        let grown = open(written(&more), SEED).unwrap();
        grown.verify().unwrap();
        assert_eq!(grown.keys(), 601);
        assert!(grown.may_contain(Email, hash(Email, b"new@example.org", SEED)));
        assert!((0..500).all(|i| grown.may_contain(Email, hash(Email, email(i).as_bytes(), SEED))));
        // An empty filter holds nothing.
        let empty = open(written(&FilterBuilder::new(0, 0, SEED)), SEED).unwrap();
        empty.verify().unwrap();
        assert!(!empty.may_contain(Email, hash(Email, b"a@b.c", SEED)));
    }

    #[test]
    fn false_positive_rate_is_within_the_model() {
        // 100,000 e-mail keys (2^12 blocks: 21 bits per key, the top of the range) and
        // 140,000 (2^12 blocks: 15 bits per key): the measured rate over 400,000 absent
        // keys must be within the model's rate plus four standard deviations.
        for keys in [100_000u64, 140_000] {
            let mut builder = FilterBuilder::new(keys, 0, SEED);
            for i in 0..keys {
                builder.insert(Email, hash(Email, email(i).as_bytes(), SEED));
            }
            let reader = open(written(&builder), SEED).unwrap();
            let probes = 400_000u64;
            let positives = (keys..keys + probes)
                .filter(|&i| reader.may_contain(Email, hash(Email, email(i).as_bytes(), SEED)))
                .count();
            let measured = positives as f64 / probes as f64;
            let load = keys as f64 / reader.blocks(Email) as f64;
            let model = model_rate(load);
            let sigma = (model * (1.0 - model) / probes as f64).sqrt();
            let bits_per_key = 512.0 / load;
            assert!(
                measured <= model + 4.0 * sigma,
                "{keys} keys, {bits_per_key:.1} bits per key: measured {measured:.5}, model {model:.5}"
            );
            // And the filter is not trivially empty: the model's order of magnitude.
            assert!(measured >= model / 2.0, "measured {measured:.5}, model {model:.5}");
        }
        // The design's figures (§4.5): 0.42% at 12 bits per key, 0.006% at 24.
        assert!((model_rate(512.0 / 12.0) - 0.0042).abs() < 0.0003, "{}", model_rate(512.0 / 12.0));
        assert!(model_rate(512.0 / 24.0) < 0.0001);
    }

    #[test]
    fn damage_is_an_error_naming_the_file() {
        let named = |e: FormatError| assert!(e.to_string().starts_with(NAME), "{e}");
        let mut builder = FilterBuilder::new(40, 10, SEED);
        for i in 0..40 {
            builder.insert(Email, hash(Email, email(i).as_bytes(), SEED));
        }
        let good = written(&builder);
        named(open(good.clone(), SEED ^ 1).unwrap_err());
        for len in [0, 70, good.len() - 1] {
            named(open(good[..len].to_vec(), SEED).unwrap_err());
        }
        let mut bad = good.clone();
        bad[3] ^= 1;
        named(open(bad, SEED).unwrap_err());
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x04;
            match open(bad, SEED) {
                Err(e) => named(e),
                Ok(r) => named(r.verify().unwrap_err()),
            }
        }
        // Sections larger than the body, or past the maximum.
        named(open(framed_bytes(SEGMENT_KIND, [1, 0, SEED, 0], &[0; 64]), SEED).unwrap_err());
        named(open(framed_bytes(SEGMENT_KIND, [64, 0, SEED, 0], &[0; 64]), SEED).unwrap_err());
        // More bits than the keys can set, under a valid checksum.
        let r = open(framed_bytes(SEGMENT_KIND, [0, 0, SEED, 1], &[0xff; 128]), SEED).unwrap();
        named(r.verify().unwrap_err());
        // Probing a damaged filter answers without panicking.
        assert!(r.may_contain(Username, u64::MAX));
    }
}
