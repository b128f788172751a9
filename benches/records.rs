//! Cost of a `records` call (SPEC §7): one record, and a full 1,000-record page, under
//! the default policy (everything allowed, values borrowed from the map) and under a
//! masking + SHA-256 output-hashing policy (one digest per hashed asset).
//!
//! Setup (once, reused by later runs, under `target/bench-data/`): a 100,000-record
//! `breachdex_gen` dataset plus one extra source holding 1,500 records of a single
//! e-mail (the generator's heaviest identities hold far fewer than 1,000), built into a
//! `plain` index. Run: `cargo bench --bench records`.

use breachdex::Catalog;
use breachdex::{AssetPolicy, RecordsRequest, SaltPosition};
use breachdex::{BuildOptions, build_index};
use breachdex::{Index, OpenOptions, Query};
use breachdex_gen::{GenConfig, catalog_path, generate, identity_email};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Duration;

const SEED: u64 = 42;
const RECORDS: u64 = 100_000;
const HEAVY_EMAIL: &str = "heavy.user@records-bench.example";
const HEAVY_RECORDS: usize = 1_500;
/// `SOURCE_DATE_EPOCH` of the build: 2026-11-23T12:00:00Z.
const NOW: i64 = 1_795_435_200;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target").join("bench-data")
}

/// Generates the dataset and the heavy source, and builds the index, unless present.
fn index_dir() -> PathBuf {
    let out = root().join(format!("records-index-{RECORDS}"));
    if out.join("manifest.json").exists() {
        return out;
    }
    let data = root().join(format!("records-gen-{RECORDS}-seed{SEED}"));
    if data.exists() {
        std::fs::remove_dir_all(&data).expect("remove old dataset");
    }
    generate(&GenConfig { seed: SEED, ..GenConfig::new(RECORDS, &data) }).expect("generate dataset");
    let mut catalog: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(catalog_path(&data)).expect("read catalog")).expect("catalog");
    let sources = catalog["sources"].as_array_mut().expect("sources");
    let id = sources.iter().filter_map(|s| s["id"].as_u64()).max().unwrap_or(0) + 1;
    let mut csv = String::from("email,password,full_name,phone,ip\n");
    for n in 0..HEAVY_RECORDS {
        csv.push_str(&format!("{HEAVY_EMAIL},pw-{n},Heavy User {n},+1 555 {n:04},10.1.{}.{}\n", n / 256, n % 256));
    }
    std::fs::write(data.join("heavy.csv"), csv).expect("write heavy source");
    sources.push(serde_json::json!({"id": id, "name": "records-bench-heavy", "title": "Heavy identity",
        "date": "2025-01-01", "description": "one e-mail in many records", "files": [{"path": "heavy.csv"}]}));
    let path = data.join("catalog-records.json");
    std::fs::write(&path, catalog.to_string()).expect("write catalog");
    let options = BuildOptions {
        force: true,
        source_date_epoch: Some(NOW),
        rejects_path: Some(root().join("records-index.rejects.jsonl")),
        ..BuildOptions::default()
    };
    build_index(&Catalog::load(&path).expect("load catalog"), &out, &options).expect("build index");
    out
}

fn records(c: &mut Criterion) {
    let dir = index_dir();
    for entry in std::fs::read_dir(&dir).expect("index dir").flatten() {
        black_box(std::fs::read(entry.path()).expect("warm page cache").len());
    }
    let index = Index::open(&dir, &OpenOptions::default()).expect("open");
    let single = (0..10_000)
        .map(|i| identity_email(SEED, i))
        .find(|e| index.lookup_email(e).map(|m| m.len() == 1).unwrap_or(false))
        .expect("an identity with exactly one record");
    let default = AssetPolicy::default();
    let hashing = AssetPolicy::parse(
        Some("email,password_hash,password_type,target_url"),
        Some("email=sha256"),
        Some("bench-salt-2026"),
        SaltPosition::Right,
    )
    .expect("policy");
    let heavy = Query::Email(HEAVY_EMAIL);
    assert_eq!(index.records(&RecordsRequest::new(heavy, &default)).expect("records").results.len(), 1000);

    let mut g = c.benchmark_group("records");
    g.throughput(Throughput::Elements(1));
    g.bench_function("one_record/allow_all", |b| {
        b.iter(|| index.records(&RecordsRequest::new(Query::Email(&single), &default)).expect("records").hits)
    });
    g.bench_function("one_record/mask_sha256", |b| {
        b.iter(|| index.records(&RecordsRequest::new(Query::Email(&single), &hashing)).expect("records").hits)
    });
    g.throughput(Throughput::Elements(1000));
    g.bench_function("page_1000/allow_all", |b| {
        b.iter(|| index.records(&RecordsRequest::new(heavy, &default)).expect("records").results.len())
    });
    g.bench_function("page_1000/mask_sha256", |b| {
        b.iter(|| index.records(&RecordsRequest::new(heavy, &hashing)).expect("records").results.len())
    });
    g.bench_function("page_1000/allow_all_json", |b| {
        b.iter(|| {
            let page = index.records(&RecordsRequest::new(heavy, &default)).expect("records");
            serde_json::to_vec(&page).expect("json").len()
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    targets = records
}
criterion_main!(benches);
