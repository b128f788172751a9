//! The `store_block` check (docs/FORMAT.md §3.10): any bytes as a record-store block,
//! raw or compressed, with or without a dictionary (a trained one, or hostile bytes),
//! against any rows' asset bits, stored set and key rule: the bounded decoder and
//! [`parse_block`] return a block or an error, never a panic; a decoded block is never
//! longer than the bound it was given; every accessor of a parsed block answers.
//!
//! Input layout (all integers little-endian):
//!
//! ```text
//! 0        mode: bits 0-1: 0 raw block bytes, 1 stored block without dictionary,
//!          2 stored block with the fixed trained dictionary, 3 dictionary from the input;
//!          bit 2: plain key rule; bits 3-4: max_raw_len 256, 4096, 65536 or 2 MiB;
//!          bit 5: stored blocks trimmed (no `raw_len`, no magic, no dictionary id)
//! 1..3     stored assets (u16)
//! 3        rows: n = byte % 64 + 1
//! 4        email_rows
//! 5..5+2n  asset bits of each row (u16)
//! rest     mode 0: raw block; 1 and 2: stored block (`raw_len u32 ‖ zstd frame`, or
//!          trimmed: the frame without its magic); 3: dict_len u16 ‖ dictionary ‖ stored block
//! ```

use crate::asset::{Asset, AssetSet};
use crate::format::store::Framing;
use crate::format::store::block::{compress_block, decompress, new_compressor};
use crate::format::store::{
    BlockRows, DICT_TARGET_LEN, KeyRule, MAX_BLOCK_RAW, StoreOptions, StoreReader, StoreRecord, StoreWriter,
    parse_block,
};
use crate::format::{FORMAT_VERSION, FileView, store};
use crate::mmap::Bytes;
use std::sync::OnceLock;
use zstd::zstd_safe::DDict;

const MAX_RAW: [usize; 4] = [256, 4096, 1 << 16, MAX_BLOCK_RAW];

/// How the block bytes of an input are read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreBlockMode {
    /// The bytes are a decompressed block.
    Raw,
    /// A stored block compressed without a dictionary.
    Plain,
    /// A stored block compressed with [`fixed_dictionary`].
    FixedDict,
    /// A dictionary from the input, then a stored block.
    InputDict,
}

/// The fixed dictionary of mode 2: trained by zstd's trainer on
/// sample blocks written by the store writer (deterministic).
pub fn fixed_dictionary() -> &'static [u8] {
    static DICT: OnceLock<Vec<u8>> = OnceLock::new();
    DICT.get_or_init(|| {
        let blocks: Vec<Vec<u8>> = (0..64).map(|i| sample_blocks(i).0).collect();
        zstd::dict::from_samples(&blocks, DICT_TARGET_LEN / 8).unwrap_or_default()
    })
}

fn fixed_ddict() -> Option<&'static DDict<'static>> {
    static DDICT: OnceLock<Option<DDict<'static>>> = OnceLock::new();
    DDICT.get_or_init(|| DDict::try_create(fixed_dictionary())).as_ref()
}

/// Rows of a sample block (varied like breach records), written with the real
/// [`StoreWriter`] into one block: `(raw block, asset bits, stored set, key rule)`.
fn sample_blocks(seed: usize) -> (Vec<u8>, Vec<AssetSet>, AssetSet, KeyRule) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join(store::FILE_NAME);
    let mut stored = AssetSet::ALL;
    if seed.is_multiple_of(3) {
        stored.remove(Asset::Salt);
    }
    let keys = KeyRule { plain: seed.is_multiple_of(2), email_rows: 5 };
    let options = StoreOptions { target_raw_len: MAX_BLOCK_RAW, ..StoreOptions::default() };
    let mut w = StoreWriter::create(&path, dir.path(), stored, options).expect("create");
    let mut bits = Vec::new();
    for row in 0..8u64 {
        let n = seed * 8 + row as usize;
        let email = if row % 3 == 2 {
            format!("User{n}@Mail{}.example", n % 5)
        } else {
            format!("user{n}@mail{}.example", n % 5)
        };
        let name = format!("name{}", n % 11);
        let password = format!("pass{}word{}", n * 7 % 13, n);
        let salt = format!("{:08x}", n * 2_654_435_761 % 4_294_967_291);
        let key_asset = keys.key_asset(row);
        let key = match key_asset {
            Some(Asset::Email) => email.to_lowercase(),
            Some(_) => name.clone(),
            None => String::new(),
        };
        let mut values: [Option<&[u8]>; crate::asset::ASSET_COUNT] = Default::default();
        let mut assets = AssetSet::EMPTY;
        let fields: [(Asset, &String); 4] = [
            (Asset::Email, &email),
            (Asset::Username, &name),
            (Asset::PasswordPlaintext, &password),
            (Asset::Salt, &salt),
        ];
        for (asset, value) in fields {
            // E-mail rows hold a username every other row; username rows hold no e-mail.
            if row < 5 && asset == Asset::Username && n.is_multiple_of(2) {
                continue;
            }
            if row >= 5 && asset == Asset::Email {
                continue;
            }
            values[asset.index()] = Some(value.as_bytes());
            assets.insert(asset);
        }
        let doc = [n as u8; 16];
        w.push(&StoreRecord { assets, values: &values, key_asset, key: key.as_bytes(), document_id: &doc })
            .expect("push");
        w.end_run().expect("end run");
        bits.push(assets);
    }
    w.finish().expect("finish");
    let bytes = Bytes::from_vec(std::fs::read(&path).expect("read the store"));
    let view = FileView::parse_version(store::FILE_NAME, bytes, store::KIND, FORMAT_VERSION).expect("frame");
    let reader = StoreReader::new(view, 8).expect("open");
    let stored_block = reader.stored_block(0).expect("one block");
    let raw = decompress(stored_block, reader.framing(), MAX_BLOCK_RAW, None).expect("decompress");
    (raw, bits, stored, keys)
}

/// Builds a `store_block` input (the layout at the top of this module).
pub fn encode_store_block_input(
    mode: StoreBlockMode,
    framing: Framing,
    keys: KeyRule,
    stored: AssetSet,
    bits: &[AssetSet],
    payload: &[u8],
) -> Vec<u8> {
    let mode_bits = match mode {
        StoreBlockMode::Raw => 0,
        StoreBlockMode::Plain => 1,
        StoreBlockMode::FixedDict => 2,
        StoreBlockMode::InputDict => 3,
    };
    let trimmed = u8::from(framing == Framing::Trimmed) << 5;
    let mut out = vec![mode_bits | (u8::from(keys.plain) << 2) | (3 << 3) | trimmed];
    out.extend_from_slice(&stored.bits().to_le_bytes());
    out.push((bits.len().clamp(1, 64) - 1) as u8);
    out.push(keys.email_rows.min(255) as u8);
    for b in bits.iter().take(64) {
        out.extend_from_slice(&b.bits().to_le_bytes());
    }
    out.extend_from_slice(payload);
    out
}

/// Seed inputs: sample blocks in every mode and framing, valid and well formed.
pub fn store_block_seeds() -> Vec<(String, Vec<u8>)> {
    let mut seeds = Vec::new();
    for (seed, framing) in (0..6).map(|i| (i / 2, [Framing::Prefixed, Framing::Trimmed][i % 2])) {
        let (raw, bits, stored, keys) = sample_blocks(seed);
        let compress = |dict: &[u8]| {
            let mut c = new_compressor(store::DEFAULT_LEVEL, dict, framing).expect("compressor");
            compress_block(&mut c, &raw, framing).expect("compress")
        };
        let plain = compress(&[]);
        let with_dict = compress(fixed_dictionary());
        let mut input_dict = (fixed_dictionary().len() as u16).to_le_bytes().to_vec();
        input_dict.extend_from_slice(fixed_dictionary());
        input_dict.extend_from_slice(&with_dict);
        for (name, mode, payload) in [
            ("raw", StoreBlockMode::Raw, &raw),
            ("plain", StoreBlockMode::Plain, &plain),
            ("fixed-dict", StoreBlockMode::FixedDict, &with_dict),
            ("input-dict", StoreBlockMode::InputDict, &input_dict),
        ] {
            let name = match framing {
                Framing::Prefixed => format!("{name}-{seed}"),
                Framing::Trimmed => format!("{name}-trimmed-{seed}"),
            };
            seeds.push((name, encode_store_block_input(mode, framing, keys, stored, &bits, payload)));
        }
    }
    seeds
}

/// Runs one input (see the module docs for the layout); returns whether a block parsed.
pub fn check_store_block(data: &[u8]) -> bool {
    let (Some(&mode), Some(stored), Some(&n), Some(&email_rows)) =
        (data.first(), data.get(1..3), data.get(3), data.get(4))
    else {
        return false;
    };
    let stored = AssetSet::from_bits_truncate(u16::from_le_bytes([stored[0], stored[1]]));
    let n = usize::from(n % 64) + 1;
    let Some(bit_bytes) = data.get(5..5 + 2 * n) else { return false };
    let bits: Vec<AssetSet> =
        bit_bytes.chunks_exact(2).map(|b| AssetSet::from_bits_truncate(u16::from_le_bytes([b[0], b[1]]))).collect();
    let payload = data.get(5 + 2 * n..).unwrap_or_default();
    let keys = KeyRule { plain: mode & 4 != 0, email_rows: u64::from(email_rows) };
    let max_raw = MAX_RAW[usize::from((mode >> 3) & 3)];
    let framing = if mode & 0x20 != 0 { Framing::Trimmed } else { Framing::Prefixed };
    let raw = match mode & 3 {
        0 => payload.to_vec(),
        1 => match decompress(payload, framing, max_raw, None) {
            Ok(raw) => raw,
            Err(reason) => return reject(&reason),
        },
        2 => match decompress(payload, framing, max_raw, fixed_ddict()) {
            Ok(raw) => raw,
            Err(reason) => return reject(&reason),
        },
        _ => {
            let Some(len) = payload.get(..2).map(|b| usize::from(u16::from_le_bytes([b[0], b[1]]))) else {
                return false;
            };
            let (Some(dict), Some(block)) = (payload.get(2..2 + len), payload.get(2 + len..)) else { return false };
            let Some(ddict) = DDict::try_create(dict) else { return false };
            match decompress(block, framing, max_raw, Some(&ddict)) {
                Ok(raw) => raw,
                Err(reason) => return reject(&reason),
            }
        }
    };
    if mode & 3 != 0 {
        assert!(!raw.is_empty() && raw.len() <= max_raw, "decoded {} bytes with a bound of {max_raw}", raw.len());
    }
    let raw_len = raw.len();
    let rows = BlockRows { first_row: 0, bits: &bits, stored, keys };
    let block = match parse_block(raw, &rows) {
        Ok(block) => block,
        Err(e) => return reject(&e.to_string()),
    };
    assert_eq!(block.rows(), 0..n as u64);
    assert_eq!(block.raw_len(), raw_len);
    for (row, b) in bits.iter().enumerate() {
        let row = row as u64;
        for asset in Asset::ALL {
            let expected = b.contains(asset) && stored.contains(asset);
            let present = if asset.is_identifier() {
                assert!(block.value(row, asset).is_err());
                block.ident(row, asset).expect("a parsed block answers").is_some()
            } else {
                assert!(block.ident(row, asset).is_err());
                block.value(row, asset).expect("a parsed block answers").is_some()
            };
            assert_eq!(present, expected, "row {row} {asset}");
        }
        let has_doc = block.document_id(row).expect("a parsed block answers").is_some();
        assert_eq!(has_doc, b.intersection(stored) != *b);
    }
    assert!(block.value(n as u64, Asset::Phone).is_err());
    true
}

fn reject(reason: &str) -> bool {
    assert!(!reason.is_empty());
    false
}
