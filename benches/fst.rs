//! Plain-mode key lookups: the `fst` crate's `Map::get` against breachdex's
//! bounds-checked decoder (`format::fst_safe`) on the same in-memory FST.
//!
//! Setup: 1,000,000 generated e-mail addresses (`breachdex_gen::identity_email`, seed
//! 42), sorted and deduplicated, in an FST map from key to ordinal, as `email.fst` holds
//! them. Every iteration is one lookup, cycling through 4096 prepared keys: hits, and
//! near misses (a hit with one byte inserted before the `@`, so the walk goes deep).
//!
//! Run: `cargo bench --bench fst`; medians are in
//! `target/criterion/fst_get_*/*/new/estimates.json`.

use breachdex::internals::fst_safe::FstMeta;
use breachdex_gen::identity_email;
use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;

/// Generated addresses (before deduplication).
const KEYS_IN_MAP: u64 = 1_000_000;
/// Prepared probe keys per list; a power of two so the cursor is a mask.
const PROBES: usize = 4096;

fn setup() -> (Vec<u8>, Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let mut keys: Vec<String> = (0..KEYS_IN_MAP).map(|i| identity_email(42, i).to_lowercase()).collect();
    keys.sort_unstable();
    keys.dedup();
    let mut builder = fst::MapBuilder::memory();
    for (i, k) in keys.iter().enumerate() {
        builder.insert(k, i as u64).unwrap();
    }
    let bytes = builder.into_inner().unwrap();
    let step = keys.len() / PROBES;
    let hits: Vec<Vec<u8>> = (0..PROBES).map(|i| keys[i * step].clone().into_bytes()).collect();
    let misses: Vec<Vec<u8>> = hits
        .iter()
        .map(|k| {
            let at = k.iter().position(|&b| b == b'@').unwrap_or(k.len());
            let mut m = k.clone();
            m.insert(at, b'~');
            m
        })
        .collect();
    (bytes, hits, misses)
}

fn bench(c: &mut Criterion) {
    let (bytes, hits, misses) = setup();
    let map = fst::Map::new(bytes.clone()).unwrap();
    let meta = FstMeta::parse(&bytes).unwrap();
    for k in &hits {
        assert_eq!(meta.get(&bytes, k).unwrap(), map.get(k));
        assert!(map.get(k).is_some());
    }
    for k in &misses {
        assert_eq!(meta.get(&bytes, k).unwrap(), None);
        assert_eq!(map.get(k), None);
    }
    for (name, probes) in [("hit", &hits), ("miss", &misses)] {
        let mut group = c.benchmark_group(format!("fst_get_{name}"));
        let mut i = 0usize;
        group.bench_function("fst_crate", |b| {
            b.iter(|| {
                i = (i + 1) & (PROBES - 1);
                black_box(map.get(black_box(&probes[i])))
            })
        });
        let mut i = 0usize;
        group.bench_function("safe", |b| {
            b.iter(|| {
                i = (i + 1) & (PROBES - 1);
                black_box(meta.get(&bytes, black_box(&probes[i])))
            })
        });
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
