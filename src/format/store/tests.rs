use super::*;
use crate::mmap::Bytes;
use proptest::prelude::*;

/// One record of the model: its assets, values, run, and document id.
#[derive(Clone, Debug)]
struct ModelRow {
    assets: AssetSet,
    values: [Option<String>; ASSET_COUNT],
    key: String,
    doc: [u8; 16],
}

/// A store's input: runs of rows, the stored set, the key rule.
#[derive(Clone, Debug)]
struct Model {
    runs: Vec<Vec<ModelRow>>,
    stored: AssetSet,
    keys: KeyRule,
}

impl Model {
    fn rows(&self) -> impl Iterator<Item = &ModelRow> {
        self.runs.iter().flatten()
    }

    fn bits(&self) -> Vec<AssetSet> {
        self.rows().map(|r| r.assets).collect()
    }
}

fn write(model: &Model, dir: &Path, options: StoreOptions) -> std::path::PathBuf {
    let path = dir.join(FILE_NAME);
    let mut w = StoreWriter::create(&path, dir, model.stored, options).unwrap();
    for run in &model.runs {
        for r in run {
            let values: [Option<&[u8]>; ASSET_COUNT] =
                std::array::from_fn(|i| r.values[i].as_deref().map(str::as_bytes));
            let row = w.rows();
            let key_asset = model.keys.key_asset(row);
            let key = if key_asset.is_some() { r.key.as_bytes() } else { b"" };
            w.push(&StoreRecord { assets: r.assets, values: &values, key_asset, key, document_id: &r.doc }).unwrap();
        }
        w.end_run().unwrap();
    }
    assert_eq!(w.rows(), model.rows().count() as u64);
    w.finish().unwrap();
    path
}

fn open(path: &Path, rows: u64) -> Result<StoreReader, FormatError> {
    let bytes = Bytes::from_vec(std::fs::read(path).unwrap());
    StoreReader::new(FileView::parse(FILE_NAME, bytes, KIND)?, rows)
}

/// The store written to `path` (Elias-Fano directory) re-encoded with the flat
/// directory of the first version 2 builds (what their writer wrote: `first_row` and
/// `block_offset` as u64 arrays, `row_block` as u32), written to `flat_path`.
fn to_flat(path: &Path, flat_path: &Path) {
    let view = FileView::parse(FILE_NAME, Bytes::from_vec(std::fs::read(path).unwrap()), KIND).unwrap();
    let params = view.params();
    let reader = StoreReader::new(view.clone(), params[0]).unwrap();
    assert_eq!(reader.directory_layout(), DIRECTORY_ELIAS_FANO);
    let mut body = view.body()[..reader.data.end].to_vec();
    body[DIRECTORY_AT] = DIRECTORY_FLAT;
    for b in 0..=reader.blocks {
        body.extend_from_slice(&reader.first_row(b).unwrap().to_le_bytes());
    }
    for b in 0..=reader.blocks {
        body.extend_from_slice(&reader.block_offset(b).unwrap().to_le_bytes());
    }
    for i in 0..params[0].div_ceil(64) {
        body.extend_from_slice(&(reader.block_of(i * 64).unwrap() as u32).to_le_bytes());
    }
    let mut out = FileWriter::create(flat_path, KIND).unwrap();
    out.write_all(&body).unwrap();
    out.finish(params).unwrap();
}

/// Reads every row back and compares it with the model; checks the block boundaries.
fn check_against_model(model: &Model, reader: &StoreReader, target: usize) {
    let bits = model.bits();
    let bits_of = |r: Range<u64>| Ok(bits[r.start as usize..r.end as usize].to_vec());
    reader.verify(&bits_of, model.stored, model.keys).unwrap();
    let mut run_start = Vec::new();
    for run in &model.runs {
        run_start.push(true);
        run_start.extend(std::iter::repeat_n(false, run.len() - 1));
    }
    let mut prev: Option<Arc<Block>> = None;
    for (row, m) in model.rows().enumerate() {
        let row = row as u64;
        let b = reader.block_of(row).unwrap();
        let range = reader.block_rows(b).unwrap();
        assert!(range.contains(&row));
        let rows = BlockRows {
            first_row: range.start,
            bits: &bits[range.start as usize..range.end as usize],
            stored: model.stored,
            keys: model.keys,
        };
        let block = reader.block(b, &rows).unwrap();
        assert_eq!(block.rows(), range);
        if range.end - range.start > 1 {
            assert!(block.raw_len() <= target, "a block of several rows stays within the target");
        }
        if row == range.start && row > 0 {
            let p = prev.as_ref().unwrap();
            // A boundary inside a run only where the run does not fit the target.
            assert!(run_start[row as usize] || p.raw_len() + block.raw_len() > target, "row {row}");
        }
        for asset in Asset::ALL {
            let expected =
                m.values[asset.index()].as_deref().filter(|_| m.assets.contains(asset) && model.stored.contains(asset));
            if asset.is_identifier() {
                let got = block.ident(row, asset).unwrap();
                match (got, expected) {
                    (None, None) => {}
                    (Some(IdentValue::EqualsKey), Some(v)) => {
                        assert_eq!(model.keys.key_asset(row), Some(asset));
                        assert_eq!(v, m.key);
                    }
                    (Some(IdentValue::Normalized(s)), Some(v)) => {
                        assert_eq!(s, v);
                        let n = if asset == Asset::Email { normalize_email(s) } else { normalize_username(s) };
                        assert_eq!(n.unwrap(), s);
                    }
                    (Some(IdentValue::AsGiven(s)), Some(v)) => assert_eq!(s, v),
                    other => panic!("row {row} {asset}: {other:?}"),
                }
            } else {
                assert_eq!(block.value(row, asset).unwrap(), expected, "row {row} {asset}");
            }
        }
        let doc = (m.assets.intersection(model.stored) != m.assets).then_some(m.doc);
        assert_eq!(block.document_id(row).unwrap(), doc);
        prev = Some(block);
    }
}

fn value_strategy() -> impl Strategy<Value = String> {
    prop_oneof!["[a-z0-9]{1,12}", "\\PC{1,20}", Just("Ünïcödé wert".to_string()), "[a-f0-9]{40}", "[ -~]{100,400}",]
}

/// Rows of one run: the identifier of the run's key (or not), other assets at random.
fn run_strategy() -> impl Strategy<Value = Vec<(u16, [String; ASSET_COUNT], u8, [u8; 16])>> {
    prop::collection::vec((any::<u16>(), prop::array::uniform12(value_strategy()), 0u8..3, any::<[u8; 16]>()), 1..12)
}

fn model_strategy() -> impl Strategy<Value = Model> {
    (any::<u16>(), any::<bool>(), prop::collection::vec((run_strategy(), 0u32..1000), 1..14), 0usize..14).prop_map(
        |(stored, plain, runs, email_runs)| {
            let stored = AssetSet::from_bits_truncate(stored);
            let email_runs = email_runs.min(runs.len());
            let mut model_runs = Vec::new();
            let mut email_rows = 0u64;
            for (k, (rows, n)) in runs.into_iter().enumerate() {
                let is_email = k < email_runs;
                let (ident, key) = if is_email {
                    (Asset::Email, format!("user{n}@example.org"))
                } else {
                    (Asset::Username, format!("name{n}"))
                };
                let mut run = Vec::new();
                for (bits, values, spelling, doc) in rows {
                    let mut assets = AssetSet::from_bits_truncate(bits);
                    assets.insert(ident);
                    let mut values: [Option<String>; ASSET_COUNT] = values.map(Some);
                    values[ident.index()] = Some(match spelling {
                        0 => key.clone(),
                        1 => key.to_uppercase(),
                        _ => format!("other{n}"),
                    });
                    for a in Asset::ALL {
                        if !assets.contains(a) {
                            values[a.index()] = None;
                        }
                    }
                    run.push(ModelRow { assets, values, key: key.clone(), doc });
                }
                if is_email {
                    email_rows += run.len() as u64;
                }
                model_runs.push(run);
            }
            Model { runs: model_runs, stored, keys: KeyRule { plain, email_rows } }
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn store_round_trips_against_the_model(model in model_strategy(), small in any::<bool>(), threads in 1usize..3) {
        let dir = tempfile::tempdir().unwrap();
        let target = if small { 64 } else { TARGET_RAW_LEN };
        let options = StoreOptions { target_raw_len: target, threads, ..StoreOptions::default() };
        let path = write(&model, dir.path(), options);
        let rows = model.rows().count() as u64;
        let reader = open(&path, rows).unwrap();
        prop_assert_eq!(reader.directory_layout(), DIRECTORY_ELIAS_FANO);
        check_against_model(&model, &reader, target);
        // The flat directory of the first version 2 builds reads the same.
        let flat = dir.path().join("flat.store");
        to_flat(&path, &flat);
        let flat_reader = open(&flat, rows).unwrap();
        prop_assert_eq!(flat_reader.directory_layout(), DIRECTORY_FLAT);
        check_against_model(&model, &flat_reader, target);
        for row in 0..rows {
            prop_assert_eq!(flat_reader.block_of(row).unwrap(), reader.block_of(row).unwrap());
        }
    }
}

/// The Elias-Fano directory takes a fraction of the flat one's 16 bytes per block and
/// 4 bytes per 64 rows.
#[test]
fn the_elias_fano_directory_is_smaller_than_the_flat_one() {
    let dir = tempfile::tempdir().unwrap();
    let model = many_rows(20_000);
    let path = write(&model, dir.path(), StoreOptions { target_raw_len: 256, threads: 1, ..StoreOptions::default() });
    let flat = dir.path().join("flat.store");
    to_flat(&path, &flat);
    let reader = open(&path, 20_000).unwrap();
    let blocks = reader.block_count();
    assert!(blocks > 1000, "{blocks} blocks");
    let directory = |path: &Path| {
        let view = FileView::parse(FILE_NAME, Bytes::from_vec(std::fs::read(path).unwrap()), KIND).unwrap();
        view.body().len() - reader.data.end
    };
    let (ef, flat) = (directory(&path), directory(&flat));
    assert_eq!(flat as u64, 16 * (blocks + 1) + 4 * 20_000u64.div_ceil(64));
    assert!(ef * 4 < flat, "Elias-Fano directory {ef} bytes, flat {flat} bytes");
}

/// The store header's directory byte: a layout this reader does not know is refused as
/// written by a newer version, and the bytes after the framing byte that follows it
/// stay reserved (zero).
#[test]
fn unknown_directory_layouts_and_reserved_bytes_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (model, good) = small_store(dir.path());
    let at = crate::format::HEADER_LEN + DIRECTORY_AT;
    assert_eq!(good[at], DIRECTORY_ELIAS_FANO);
    let mut newer = good.clone();
    newer[at] = 2;
    let err = read_all(newer, &model).unwrap_err().to_string();
    assert!(err.starts_with("records.store: damaged: unknown block directory layout 2"), "{err}");
    assert!(err.contains("newer"), "{err}");
    let mut reserved = good.clone();
    reserved[crate::format::HEADER_LEN + FRAMING_AT + 1] = 1;
    let err = read_all(reserved, &model).unwrap_err().to_string();
    assert!(err.contains("reserved store header bytes"), "{err}");
    // Read as flat, the Elias-Fano bytes do not add up to the flat sections.
    let mut flat = good;
    flat[at] = DIRECTORY_FLAT;
    assert!(read_all(flat, &model).is_err());
}

/// `n` rows of realistic shape in runs of 1 to 4 rows, plain mode, every asset but
/// `salt` stored (so rows holding a salt store their document id).
fn many_rows(n: usize) -> Model {
    let mut runs = Vec::new();
    let mut i = 0;
    while i < n {
        let len = (i % 4 + 1).min(n - i);
        let key = format!("person{}@mail{}.example", i, i % 7);
        let run = (0..len)
            .map(|j| {
                let mut values: [Option<String>; ASSET_COUNT] = Default::default();
                values[Asset::Email.index()] = Some(if j % 3 == 2 { key.to_uppercase() } else { key.clone() });
                values[Asset::PasswordPlaintext.index()] = Some(format!("hunter{}", (i * 31 + j) % 1000));
                values[Asset::FullName.index()] = Some(format!("Person {} Example", i));
                if j % 2 == 1 {
                    values[Asset::Salt.index()] = Some(format!("{:08x}", i * 7919));
                }
                let mut assets = AssetSet::EMPTY;
                for a in Asset::ALL {
                    if values[a.index()].is_some() {
                        assets.insert(a);
                    }
                }
                ModelRow { assets, values, key: key.clone(), doc: [(i + j) as u8; 16] }
            })
            .collect::<Vec<_>>();
        i += run.len();
        runs.push(run);
    }
    let mut stored = AssetSet::ALL;
    stored.remove(Asset::Salt);
    Model { runs, stored, keys: KeyRule { plain: true, email_rows: n as u64 } }
}

#[test]
fn output_does_not_depend_on_the_thread_count() {
    let model = many_rows(3000);
    let mut files = Vec::new();
    for threads in [1, 2, 3] {
        let dir = tempfile::tempdir().unwrap();
        let options = StoreOptions { target_raw_len: 256, threads, ..StoreOptions::default() };
        files.push(std::fs::read(write(&model, dir.path(), options)).unwrap());
    }
    assert_eq!(files[0], files[1]);
    assert_eq!(files[0], files[2]);
}

#[test]
fn dictionary_from_sixteen_blocks_on() {
    let dir = tempfile::tempdir().unwrap();
    let model = many_rows(2000);
    let path = write(&model, dir.path(), StoreOptions { target_raw_len: 256, threads: 2, ..StoreOptions::default() });
    let reader = open(&path, 2000).unwrap();
    assert!(reader.block_count() >= DICT_MIN_BLOCKS as u64);
    assert!(reader.dict_len() > 0, "{} blocks, no dictionary", reader.block_count());
    check_against_model(&model, &reader, 256);

    let few = many_rows(40);
    let path = write(&few, dir.path(), StoreOptions::default());
    let reader = open(&path, 40).unwrap();
    assert!(reader.block_count() < DICT_MIN_BLOCKS as u64);
    assert_eq!(reader.dict_len(), 0);
    check_against_model(&few, &reader, TARGET_RAW_LEN);
}

#[test]
fn empty_store() {
    let dir = tempfile::tempdir().unwrap();
    let model = Model { runs: Vec::new(), stored: AssetSet::ALL, keys: KeyRule { plain: false, email_rows: 0 } };
    let path = write(&model, dir.path(), StoreOptions::default());
    let reader = open(&path, 0).unwrap();
    assert_eq!(reader.block_count(), 0);
    assert!(reader.block_of(0).is_err());
    reader.verify(&|_| Ok(Vec::new()), AssetSet::ALL, model.keys).unwrap();
    assert!(open(&path, 1).is_err());
}

#[test]
fn writer_refuses_bad_rows() {
    let dir = tempfile::tempdir().unwrap();
    let mut w =
        StoreWriter::create(&dir.path().join(FILE_NAME), dir.path(), AssetSet::ALL, StoreOptions::default()).unwrap();
    let email = AssetSet::parse_list("email").unwrap();
    let push = |w: &mut StoreWriter, assets, value: Option<&[u8]>| {
        let mut values: [Option<&[u8]>; ASSET_COUNT] = [None; ASSET_COUNT];
        values[0] = value;
        w.push(&StoreRecord { assets, values: &values, key_asset: None, key: b"", document_id: &[0; 16] })
    };
    assert!(push(&mut w, email, None).is_err(), "a held asset without a value");
    assert!(push(&mut w, email, Some(b"\xff@x")).is_err(), "not UTF-8");
    assert!(push(&mut w, AssetSet::EMPTY, Some(b"a@b.c")).is_err(), "no asset");
    push(&mut w, email, Some(b"a@b.c")).unwrap();
    assert_eq!(w.rows(), 1);
    w.finish().unwrap();
}

/// A small store file: 3 blocks, a stored document id, every kind of `v`.
fn small_store(dir: &Path) -> (Model, Vec<u8>) {
    let mut model = many_rows(12);
    model.runs[1][0].values[Asset::Email.index()] = Some("Mixed@Case.example".into());
    let path = write(&model, dir, StoreOptions { target_raw_len: 128, threads: 1, ..StoreOptions::default() });
    (model, std::fs::read(path).unwrap())
}

/// Opens, verifies and reads every row of possibly damaged store bytes: errors are
/// fine, panics are not.
fn read_all(bytes: Vec<u8>, model: &Model) -> Result<(), FormatError> {
    let view = FileView::parse(FILE_NAME, Bytes::from_vec(bytes), KIND)?;
    let reader = StoreReader::new(view, model.rows().count() as u64)?;
    let bits = model.bits();
    let bits_of = |r: Range<u64>| {
        bits.get(r.start as usize..r.end as usize).map(<[_]>::to_vec).ok_or_else(|| FormatError::damaged("x", "range"))
    };
    let verified = reader.verify(&bits_of, model.stored, model.keys);
    for row in 0..bits.len() as u64 {
        let Ok(b) = reader.block_of(row) else { continue };
        let Ok(range) = reader.block_rows(b) else { continue };
        let Ok(bits) = bits_of(range.clone()) else { continue };
        let rows = BlockRows { first_row: range.start, bits: &bits, stored: model.stored, keys: model.keys };
        if let Ok(block) = reader.block(b, &rows) {
            for asset in Asset::ALL {
                let _ = if asset.is_identifier() {
                    block.ident(row, asset).map(|_| ())
                } else {
                    block.value(row, asset).map(|_| ())
                };
            }
            let _ = block.document_id(row);
        }
    }
    verified
}

#[test]
fn every_byte_flip_and_truncation_is_an_error_or_a_value() {
    let dir = tempfile::tempdir().unwrap();
    let (model, good) = small_store(dir.path());
    let flat = dir.path().join("flat.store");
    to_flat(&dir.path().join(FILE_NAME), &flat);
    for good in [good, std::fs::read(&flat).unwrap()] {
        flips_and_truncations(good, &model);
    }
}

/// Every byte of `good` flipped three ways and every truncation: read as a store, an
/// error or a value, never a panic; most flips are errors.
fn flips_and_truncations(good: Vec<u8>, model: &Model) {
    read_all(good.clone(), model).unwrap();
    let mut detected = 0;
    for i in 0..good.len() {
        for flip in [0x01u8, 0x80, 0xff] {
            let mut bad = good.clone();
            bad[i] ^= flip;
            detected += usize::from(read_all(bad, model).is_err());
        }
    }
    for len in 0..good.len() {
        assert!(read_all(good[..len].to_vec(), model).is_err());
    }
    // The checksum (not read here) catches the rest; most flips are caught by the reader itself.
    assert!(detected > good.len(), "{detected} of {} flips detected", 3 * good.len());
}

/// Builds write trimmed blocks and say so in the store header's framing byte; a reader
/// refuses a framing byte it does not know, and a non-zero reserved byte, at open; a
/// trimmed store whose byte is turned back to prefixed is damage, never a misread.
#[test]
fn the_framing_byte_names_the_block_layout() {
    let dir = tempfile::tempdir().unwrap();
    let (model, good) = small_store(dir.path());
    let at = crate::format::HEADER_LEN + FRAMING_AT;
    assert_eq!(good[at], FRAMING_TRIMMED);
    let reader = open(&dir.path().join(FILE_NAME), 12).unwrap();
    assert_eq!(reader.framing(), Framing::Trimmed);
    // Every block is a frame without its magic number, its content size the raw length.
    for b in 0..reader.block_count() {
        let stored = reader.stored_block(b).unwrap();
        assert_ne!(stored.get(..4), Some(&0xFD2F_B528u32.to_le_bytes()[..]), "block {b}");
        assert!(block::decompress(stored, Framing::Trimmed, MAX_BLOCK_RAW, None).is_ok(), "block {b}");
    }
    let with = |i: usize, v: u8| {
        let mut bad = good.clone();
        bad[i] = v;
        read_all(bad, &model).unwrap_err().to_string()
    };
    let err = with(at, 2);
    assert!(err.contains("unknown block framing 2") && err.contains("newer breachdex"), "{err}");
    for i in [at + 1, crate::format::HEADER_LEN + STORE_HEADER_LEN - 1] {
        assert!(with(i, 1).contains("reserved store header bytes are not zero"), "byte {i}");
    }
    let err = with(at, FRAMING_PREFIXED);
    assert!(err.contains("records.store: damaged: block 0"), "{err}");
}

#[test]
fn errors_name_the_file_and_the_block() {
    let dir = tempfile::tempdir().unwrap();
    let (model, good) = small_store(dir.path());
    let reader = open(&dir.path().join(FILE_NAME), 12).unwrap();
    assert!(reader.block_count() >= 3);
    // Damage the last block's frame.
    let [_, _, dict_len, data_len] = FileView::parse(FILE_NAME, Bytes::from_vec(good.clone()), KIND).unwrap().params();
    let last = crate::format::HEADER_LEN + STORE_HEADER_LEN + (dict_len + data_len) as usize - 2;
    let mut bad = good.clone();
    bad[last] ^= 0x55;
    let err = read_all(bad, &model).unwrap_err().to_string();
    let b = reader.block_count() - 1;
    let rows = reader.block_rows(b).unwrap();
    let expected = format!("records.store: damaged: block {b} (rows {}-{}): ", rows.start, rows.end - 1);
    assert!(err.starts_with(&expected), "{err}");
}

fn decompress_prefixed(block: &[u8], max_raw_len: usize, dict: Option<&DDict<'_>>) -> Result<Vec<u8>, String> {
    block::decompress(block, Framing::Prefixed, max_raw_len, dict)
}

fn block_with(raw_len: u32, frame: &[u8]) -> Vec<u8> {
    let mut b = raw_len.to_le_bytes().to_vec();
    b.extend_from_slice(frame);
    b
}

#[test]
fn hostile_frames_are_refused() {
    // Declares 2^40 bytes of content (a decompression bomb).
    let mut bomb = vec![0x28, 0xb5, 0x2f, 0xfd, 0xe0];
    bomb.extend_from_slice(&(1u64 << 40).to_le_bytes());
    bomb.extend_from_slice(&[0; 8]);
    let err = decompress_prefixed(&block_with(100, &bomb), MAX_BLOCK_RAW, None).unwrap_err();
    assert!(err.contains("declares"), "{err}");
    // No content size.
    let mut c = zstd::bulk::Compressor::new(2).unwrap();
    c.set_parameter(zstd::zstd_safe::CParameter::ContentSizeFlag(false)).unwrap();
    let frame = c.compress(b"no size in the header").unwrap();
    let err = decompress_prefixed(&block_with(21, &frame), MAX_BLOCK_RAW, None).unwrap_err();
    assert!(err.contains("content size"), "{err}");
    // A 128 MiB window (log 27) for a 300-byte block.
    let mut wide = vec![0x28, 0xb5, 0x2f, 0xfd, 0x40, (27 - 10) << 3];
    wide.extend_from_slice(&(300u16 - 256).to_le_bytes());
    wide.extend_from_slice(&[1, 0, 0]);
    let err = decompress_prefixed(&block_with(300, &wide), MAX_BLOCK_RAW, None).unwrap_err();
    assert!(err.contains("window"), "{err}");
    // A raw length above the file's maximum.
    let frame = zstd::bulk::compress(&[7u8; 5000], 2).unwrap();
    assert!(decompress_prefixed(&block_with(5000, &frame), 4096, None).unwrap_err().contains("outside"));
    assert_eq!(decompress_prefixed(&block_with(5000, &frame), 5000, None).unwrap(), vec![7u8; 5000]);
    // A frame with a checksum.
    let mut c = zstd::bulk::Compressor::new(2).unwrap();
    c.set_parameter(zstd::zstd_safe::CParameter::ChecksumFlag(true)).unwrap();
    let frame = c.compress(&[1u8; 64]).unwrap();
    assert!(decompress_prefixed(&block_with(64, &frame), MAX_BLOCK_RAW, None).unwrap_err().contains("checksum"));
}
