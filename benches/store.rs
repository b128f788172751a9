//! The record store of format v2 (`records.store`, docs/FORMAT.md §3.10) on realistic
//! data: reading one block (decompress + parse) with the per-thread cache defeated
//! (cold: every call a different block) and hit (warm: the same block again), parsing
//! alone, and writing the whole store (1 and 2 compression threads).
//!
//! Setup (once, reused by later runs, under `target/bench-data/`): a 200,000-record
//! `breachdex-gen --profile realistic` dataset built into a `plain` v1 index; its records
//! (rows, values, keys, runs) are read back and written into a `records.store` with the
//! default options. Run: `cargo bench --bench store`.

use breachdex::internals::store::{
    self, BlockRows, KeyAsset, KeyRule, StoreOptions, StoreReader, StoreRecord, StoreWriter, parse_block,
};
use breachdex::internals::{Bytes, FORMAT_VERSION, FileView};
use breachdex::{ASSET_COUNT, Asset, AssetSet, BuildOptions, Catalog, Index, OpenOptions, build_index};
use breachdex::{normalize_email, normalize_username};
use breachdex_gen::bench::{NOW, SEED};
use breachdex_gen::{GenConfig, Profile, catalog_path, generate_cached};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Duration;

const RECORDS: u64 = 200_000;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target").join("bench-data")
}

/// One record of the source index, owned.
struct Record {
    assets: AssetSet,
    values: [Option<String>; ASSET_COUNT],
    key_asset: KeyAsset,
    key: String,
    document_id: [u8; 16],
    run_start: bool,
}

/// The realistic v1 index, generated and built unless present.
fn source_index() -> PathBuf {
    let out = root().join(format!("store-realistic-index-{RECORDS}"));
    if out.join("manifest.json").exists() {
        return out;
    }
    let data = root().join(format!("gen-realistic-{RECORDS}-seed{SEED}"));
    let config = GenConfig { seed: SEED, profile: Profile::Realistic, ..GenConfig::new(RECORDS, &data) };
    generate_cached(&config).expect("generate dataset");
    let options = BuildOptions { force: true, source_date_epoch: Some(NOW), ..BuildOptions::default() };
    build_index(&Catalog::load(&catalog_path(&data)).expect("catalog"), &out, &options).expect("build index");
    out
}

/// Every record of the index, in row order, with its key and run boundaries.
fn records() -> (Vec<Record>, AssetSet, KeyRule) {
    let index = Index::open(&source_index(), &OpenOptions::default()).expect("open");
    let counts = &index.manifest().counts;
    let keys = KeyRule { plain: true, email_rows: counts.email_rows };
    let mut out: Vec<Record> = Vec::with_capacity(counts.records as usize);
    for row in 0..counts.records {
        let rec = index.record(row).expect("record");
        let values = Asset::ALL.map(|a| rec.get(a).expect("value").map(str::to_owned));
        let key_asset = keys.key_asset(row);
        let key = match (key_asset, &values[Asset::Email.index()], &values[Asset::Username.index()]) {
            (Some(Asset::Email), Some(e), _) => normalize_email(e).map(|k| k.into_owned()).unwrap_or_default(),
            (Some(Asset::Username), _, Some(u)) => normalize_username(u).map(|k| k.into_owned()).unwrap_or_default(),
            _ => String::new(),
        };
        let run_start = out.last().is_none_or(|p| p.key != key || p.key_asset != key_asset);
        out.push(Record {
            assets: rec.assets(),
            values,
            key_asset,
            key,
            document_id: rec.row().document_id,
            run_start,
        });
    }
    (out, index.stored_assets(), keys)
}

fn write_store(path: &Path, records: &[Record], stored: AssetSet, threads: usize) {
    let options = StoreOptions { threads, ..StoreOptions::default() };
    let mut w = StoreWriter::create(path, path.parent().expect("dir"), stored, options).expect("create");
    for (i, r) in records.iter().enumerate() {
        if r.run_start && i > 0 {
            w.end_run().expect("end run");
        }
        let values: [Option<&[u8]>; ASSET_COUNT] = std::array::from_fn(|a| r.values[a].as_deref().map(str::as_bytes));
        let rec = StoreRecord {
            assets: r.assets,
            values: &values,
            key_asset: r.key_asset,
            key: r.key.as_bytes(),
            document_id: &r.document_id,
        };
        w.push(&rec).expect("push");
    }
    w.finish().expect("finish");
}

fn store_bench(c: &mut Criterion) {
    let (records, stored, keys) = records();
    let dir = root().join("store-bench");
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join(store::FILE_NAME);
    write_store(&path, &records, stored, 2);
    let bytes = Bytes::from_vec(std::fs::read(&path).expect("read store"));
    let size = bytes.len();
    let reader = StoreReader::new(
        FileView::parse_version(store::FILE_NAME, bytes, store::KIND, FORMAT_VERSION).expect("frame"),
        records.len() as u64,
    )
    .expect("open");
    let bits: Vec<AssetSet> = records.iter().map(|r| r.assets).collect();
    let blocks = reader.block_count();
    let raw: usize = (0..blocks)
        .map(|b| {
            let range = reader.block_rows(b).expect("rows");
            let rows = BlockRows {
                first_row: range.start,
                bits: &bits[range.start as usize..range.end as usize],
                stored,
                keys,
            };
            reader.block(b, &rows).expect("block").raw_len()
        })
        .sum();
    eprintln!(
        "records.store: {} records, {blocks} blocks, {raw} raw bytes, file {size} bytes ({:.1} B/record), dictionary {} bytes",
        records.len(),
        size as f64 / records.len() as f64,
        reader.dict_len()
    );
    let rows_of = |b: u64| {
        let range = reader.block_rows(b).expect("rows");
        BlockRows { first_row: range.start, bits: &bits[range.start as usize..range.end as usize], stored, keys }
    };
    // Blocks visited in a scattered order (a stride coprime with the count), so
    // consecutive calls never hit the per-thread cache.
    let stride = (blocks / 2 + 1..).find(|s| gcd(*s, blocks) == 1).unwrap_or(1);

    let mut g = c.benchmark_group("store");
    g.throughput(Throughput::Elements(1));
    let mut b = 0u64;
    g.bench_function("block_cold", |bench| {
        bench.iter(|| {
            b = (b + stride) % blocks;
            black_box(reader.block(b, &rows_of(b)).expect("block"))
        })
    });
    let hot = blocks / 3;
    g.bench_function("block_warm", |bench| bench.iter(|| black_box(reader.block(hot, &rows_of(hot)).expect("block"))));
    let decoded: Vec<(u64, Vec<u8>)> =
        (0..blocks).step_by((blocks / 1000).max(1) as usize).map(|b| (b, raw_block(&reader, b, &rows_of(b)))).collect();
    let mut i = 0;
    g.bench_function("parse", |bench| {
        bench.iter_batched(
            || {
                i = (i + 1) % decoded.len();
                decoded[i].clone()
            },
            |(b, raw)| black_box(parse_block(raw, &rows_of(b)).expect("parse")),
            BatchSize::SmallInput,
        )
    });
    g.finish();

    let mut g = c.benchmark_group("store_write");
    g.sample_size(10).measurement_time(Duration::from_secs(20)).throughput(Throughput::Bytes(raw as u64));
    for threads in [1, 2] {
        g.bench_function(format!("threads_{threads}"), |bench| {
            bench.iter(|| write_store(&path, &records, stored, threads))
        });
    }
    g.finish();
}

/// The raw bytes of block `b` (a parsed block keeps them; parse again from a copy).
fn raw_block(reader: &StoreReader, b: u64, rows: &BlockRows<'_>) -> Vec<u8> {
    reader.block(b, rows).expect("block").raw_bytes().to_vec()
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

criterion_group!(benches, store_bench);
criterion_main!(benches);
