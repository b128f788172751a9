//! Build throughput of every hash mode on a small generated dataset (SPEC §10: build
//! ≥ 1M records/s end to end), reported as records read per second.
//!
//! Setup (once, reused by later runs): `BREACHDEX_BENCH_BUILD_RECORDS` records
//! (default 150,000) from `breachdex_gen` with seed 42 under
//! `target/bench-data/gen-<records>-seed42/`. One iteration = one complete
//! `build_index` (default options: all cores, 1 GiB memory budget) into a temporary
//! directory, replaced on every iteration; the input files stay in the page cache.
//!
//! Run: `cargo bench --bench build -- --quick`; one mode: `-- build/xxh3-64`.

use breachdex::Catalog;
use breachdex::{BuildOptions, build_index};
use breachdex::{HashMode, Salt};
use breachdex_gen::bench::{NOW, SALT, SEED};
use breachdex_gen::{GenConfig, catalog_path, generate_cached};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Default number of records (`BREACHDEX_BENCH_BUILD_RECORDS` overrides it).
const DEFAULT_RECORDS: u64 = 150_000;

fn record_count() -> u64 {
    match std::env::var("BREACHDEX_BENCH_BUILD_RECORDS") {
        Ok(v) => {
            v.replace('_', "").parse().unwrap_or_else(|_| panic!("BREACHDEX_BENCH_BUILD_RECORDS='{v}' is not a number"))
        }
        Err(_) => DEFAULT_RECORDS,
    }
}

/// Generates the dataset unless a complete one (marker file) is already there; the
/// same directory and marker as `benches/lookup.rs` uses for the same record count.
fn dataset(records: u64) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join("bench-data")
        .join(format!("gen-{records}-seed{SEED}"));
    let config = GenConfig { seed: SEED, ..GenConfig::new(records, &dir) };
    generate_cached(&config).expect("generate dataset");
    dir
}

fn builds(c: &mut Criterion) {
    let data = dataset(record_count());
    let catalog = Catalog::load(&catalog_path(&data)).expect("load generated catalog");
    let scratch = tempfile::tempdir().expect("scratch dir");
    let mut g = c.benchmark_group("build");
    g.sample_size(10);
    for mode in HashMode::ALL {
        let out = scratch.path().join(mode.name());
        let options = BuildOptions {
            hash_mode: mode,
            salt: mode.is_hashed().then(|| Salt::new(SALT.to_vec()).expect("salt")),
            force: true,
            source_date_epoch: Some(NOW),
            rejects_path: Some(scratch.path().join(format!("{}.rejects.jsonl", mode.name()))),
            ..BuildOptions::default()
        };
        // One untimed build: warms the page cache and gives the record count.
        let first = build_index(&catalog, &out, &options).expect("build index");
        eprintln!(
            "bench: {} build of {} records read: {:.2} s",
            mode.name(),
            first.records_read,
            first.elapsed.as_secs_f64()
        );
        g.throughput(Throughput::Elements(first.records_read));
        g.bench_function(mode.name(), |b| b.iter(|| build_index(&catalog, &out, &options).expect("build index").kept));
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(5));
    targets = builds
}
criterion_main!(benches);
