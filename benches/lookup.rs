//! Lookup latency of every hash mode, side by side with an in-memory `HashMap` baseline
//! measured in the same run (SPEC §10).
//!
//! Setup (once, reused by later runs): a synthetic dataset from `breachdex_gen` and one
//! index per hash mode under `target/bench-data/`. Each index is opened once (mmap)
//! and its files are read through once so the page cache is warm. Every benchmark
//! iteration is exactly one lookup (or one open), cycling through 4096 prepared keys so
//! the timings are not one hot cache line; the batch groups (`check_batch_1thread`,
//! `check_batch_2threads`) check one batch of 16,384 e-mails per iteration, drawn from a
//! pool of 262,144 so the batches do not run from the CPU caches.
//!
//! `BREACHDEX_BENCH_RECORDS` changes the record count (default 1,000,000).
//! Quick run: `cargo bench --bench lookup -- --quick`; one group: `-- lookup_hit`.

use breachdex::Catalog;
use breachdex::CheckResult;
use breachdex::KeyDeriver;
use breachdex::UnixTime;
use breachdex::normalize_email;
use breachdex::{BuildOptions, BuildSummary, build_index};
use breachdex::{HashMode, Salt};
use breachdex::{IdentifierKind, Index, LookupError, OpenOptions, Query};
use breachdex_gen::bench::{NOW, SALT, SEED};
use breachdex_gen::{GenConfig, catalog_path, generate_cached, identity_email, identity_username, miss_email};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rayon::prelude::*;
use std::collections::HashMap;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Default number of records (`BREACHDEX_BENCH_RECORDS` overrides it).
const DEFAULT_RECORDS: u64 = 1_000_000;
/// Number of prepared keys per list; a power of two so the cursor is a mask.
const KEYS: usize = 4096;

struct Dataset {
    records: u64,
    dir: PathBuf,
    distinct_identities: u64,
}

fn bench_data_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target").join("bench-data")
}

fn record_count() -> u64 {
    match std::env::var("BREACHDEX_BENCH_RECORDS") {
        Ok(v) => v.replace('_', "").parse().unwrap_or_else(|_| panic!("BREACHDEX_BENCH_RECORDS='{v}' is not a number")),
        Err(_) => DEFAULT_RECORDS,
    }
}

/// Generates the dataset unless a complete one (marker file) is already there.
fn dataset(records: u64) -> Dataset {
    let dir = bench_data_root().join(format!("gen-{records}-seed{SEED}"));
    let config = GenConfig { seed: SEED, ..GenConfig::new(records, &dir) };
    let started = Instant::now();
    let cached = generate_cached(&config).expect("generate dataset");
    match &cached.generated {
        Some(summary) => eprintln!(
            "bench: generated {} records in {:.1} s into {}",
            summary.records,
            started.elapsed().as_secs_f64(),
            dir.display()
        ),
        None => eprintln!("bench: reusing dataset {}", dir.display()),
    }
    Dataset { records, dir, distinct_identities: cached.distinct_identities }
}

fn salt_for(mode: HashMode) -> Option<Salt> {
    mode.is_hashed().then(|| Salt::new(SALT.to_vec()).expect("salt"))
}

fn summary_line(s: &BuildSummary) -> String {
    format!(
        "built {} in {:.2} s ({:.0} records/s, hash mode {}); read {}, kept {}, rejected {}, duplicates {}, \
         keys {} email / {} username, index {} bytes, input {} bytes, spilled runs {}\n",
        s.out_dir.display(),
        s.elapsed.as_secs_f64(),
        s.records_per_second(),
        s.hash_mode,
        s.records_read,
        s.kept,
        s.rejected_records,
        s.duplicates,
        s.email_keys,
        s.username_keys,
        s.index_bytes,
        s.input_bytes,
        s.spilled_runs
    )
}

/// Builds the index of `mode` unless it exists (a build renames a complete directory
/// into place, so a present manifest means a complete index).
fn index_dir(data: &Dataset, mode: HashMode) -> PathBuf {
    let root = bench_data_root();
    let dir = root.join(format!("index-{}-{}", data.records, mode.name()));
    if dir.join("manifest.json").exists() {
        return dir;
    }
    let catalog = Catalog::load(&catalog_path(&data.dir)).expect("load generated catalog");
    let options = BuildOptions {
        hash_mode: mode,
        salt: salt_for(mode),
        force: true,
        source_date_epoch: Some(NOW),
        rejects_path: Some(root.join(format!("index-{}-{}.rejects.jsonl", data.records, mode.name()))),
        ..BuildOptions::default()
    };
    let summary = build_index(&catalog, &dir, &options).expect("build index");
    let line = summary_line(&summary);
    eprint!("bench: {line}");
    std::fs::write(root.join(format!("index-{}-{}.build.txt", data.records, mode.name())), line).expect("write log");
    dir
}

/// Reads every file once so the page cache is warm before timing.
fn warm_page_cache(dir: &Path) {
    for entry in std::fs::read_dir(dir).expect("read index dir").flatten() {
        black_box(std::fs::read(entry.path()).expect("read index file").len());
    }
}

struct Opened {
    mode: HashMode,
    dir: PathBuf,
    index: Index,
    /// Raw e-mail keys of `Keys::hits` as this mode stores them.
    hit_keys: Vec<Vec<u8>>,
}

struct Keys {
    hits: Vec<String>,
    misses: Vec<String>,
    usernames: Vec<String>,
    normalized_hits: Vec<String>,
}

/// 4096 known-hit e-mails spread over the identity pool, 4096 misses, and 4096
/// usernames confirmed present (a generated username is not a guaranteed hit).
fn prepare_keys(data: &Dataset, plain: &Index) -> Keys {
    let n = data.distinct_identities.max(1);
    let hits: Vec<String> = (0..KEYS as u64).map(|i| identity_email(SEED, (i * n / KEYS as u64) % n)).collect();
    let misses: Vec<String> = (0..KEYS as u64).map(miss_email).collect();
    let normalized_hits: Vec<String> = hits.iter().map(|e| normalize_email(e).expect("valid").into_owned()).collect();
    for e in &hits {
        assert!(!plain.lookup_email(e).expect("lookup").is_empty(), "identity e-mail {e} is not in the index");
    }
    let mut usernames = Vec::with_capacity(KEYS);
    let step = (n / (4 * KEYS as u64)).max(1);
    let mut id = 0;
    while usernames.len() < KEYS && id < n {
        if let Some(u) = identity_username(SEED, id)
            && !plain.lookup_username(&u).expect("lookup").is_empty()
        {
            usernames.push(u);
        }
        id += step;
    }
    assert!(!usernames.is_empty(), "no username of the dataset is in the index");
    let found = usernames.len();
    usernames = usernames.iter().cycle().take(KEYS).cloned().collect();
    eprintln!("bench: {KEYS} hit e-mails, {KEYS} misses, {found} distinct hit usernames");
    Keys { hits, misses, usernames, normalized_hits }
}

/// The baseline: every normalized e-mail of the dataset → its row ids, in RAM. Loading
/// it is the step an index does not need; its time and approximate size are printed.
fn hashmap_baseline(data: &Dataset, plain: &Index) -> HashMap<String, Vec<u32>> {
    let started = Instant::now();
    let mut map = HashMap::with_capacity(data.distinct_identities as usize);
    for id in 0..data.distinct_identities {
        let key = normalize_email(&identity_email(SEED, id)).expect("valid").into_owned();
        let rows: Vec<u32> = plain.lookup_email(&key).expect("lookup").map(|r| r as u32).collect();
        map.insert(key, rows);
    }
    let heap: usize = map.iter().map(|(k, v)| k.capacity() + v.capacity() * 4).sum::<usize>()
        + map.capacity() * (std::mem::size_of::<(String, Vec<u32>)>() + 1);
    eprintln!(
        "bench: HashMap baseline: {} keys loaded in {:.2} s, ~{:.1} MiB",
        map.len(),
        started.elapsed().as_secs_f64(),
        heap as f64 / (1 << 20) as f64
    );
    map
}

/// Hands out the prepared keys in turn, one per call, wrapping around: every
/// benchmark iteration looks up the next key, so timings are not one hot cache line.
fn cycle<'a, T>(keys: &'a [T]) -> impl FnMut() -> &'a T {
    let mask = keys.len() - 1;
    debug_assert!(keys.len().is_power_of_two());
    let mut i = 0usize;
    move || {
        let key = &keys[i & mask];
        i = i.wrapping_add(1);
        key
    }
}

/// Queries in the batch pool: 262,144 hit e-mails spread over every identity, so that
/// the memory a batch touches (tens of MiB at 1M records) does not stay in the CPU
/// caches between two visits of the same key, as it would with 4096 keys.
const BATCH_POOL: usize = 1 << 18;
/// Queries per batch iteration: a window of the pool, the next one each iteration.
const BATCH: usize = 1 << 14;

/// Batch throughput, one iteration = one batch of `BATCH` hit e-mails, on 1 thread and
/// on 2 (a persistent rayon pool of 2 threads, the development machine's cores):
/// `check_loop` calls `Index::check` on each query in turn (no prefetching, the
/// reference), `check_batch` / `check_batch_par` are the batch API (groups of
/// `BATCH_GROUP` queries with software prefetching). Both collect the results into a
/// `Vec` and sum the risk scores.
fn batches(c: &mut Criterion, data: &Dataset, opened: &[Opened]) {
    let n = data.distinct_identities.max(1);
    // A multiplicative stride coprime with n visits the identities in a scattered order.
    let stride = (0x9E37_79B9u64 % n).max(1);
    let stride = (stride..).find(|s| gcd(*s, n) == 1).unwrap_or(1);
    let pool: Vec<String> =
        (0..BATCH_POOL as u64).map(|i| identity_email(SEED, (i % n).wrapping_mul(stride) % n)).collect();
    let queries: Vec<Query<'_>> = pool.iter().map(|e| Query::Email(e)).collect();
    let windows: Vec<&[Query<'_>]> = queries.chunks(BATCH).collect();
    let two = rayon::ThreadPoolBuilder::new().num_threads(2).build().expect("rayon pool");
    let score = |results: Vec<Result<CheckResult<'_>, LookupError>>| -> u64 {
        results.iter().map(|r| r.as_ref().expect("check").risk_score as u64).sum()
    };

    let mut g = c.benchmark_group("check_batch_1thread");
    g.throughput(Throughput::Elements(BATCH as u64));
    for o in opened {
        let mut next = cycle(&windows);
        g.bench_function(BenchmarkId::new("check_loop", o.mode.name()), |b| {
            b.iter(|| score(next().iter().map(|q| o.index.check(q, UnixTime::from_seconds(NOW))).collect()))
        });
        let mut next = cycle(&windows);
        g.bench_function(BenchmarkId::new("check_batch", o.mode.name()), |b| {
            b.iter(|| score(o.index.check_batch(next(), UnixTime::from_seconds(NOW))))
        });
    }
    g.finish();

    let mut g = c.benchmark_group("check_batch_2threads");
    g.throughput(Throughput::Elements(BATCH as u64));
    for o in opened {
        let mut next = cycle(&windows);
        g.bench_function(BenchmarkId::new("check_loop", o.mode.name()), |b| {
            b.iter(|| {
                let window = next();
                two.install(|| {
                    window
                        .par_chunks(256)
                        .map(|chunk| {
                            score(chunk.iter().map(|q| o.index.check(q, UnixTime::from_seconds(NOW))).collect())
                        })
                        .sum::<u64>()
                })
            })
        });
        let mut next = cycle(&windows);
        g.bench_function(BenchmarkId::new("check_batch_par", o.mode.name()), |b| {
            b.iter(|| {
                let window = next();
                two.install(|| score(o.index.check_batch_par(window, UnixTime::from_seconds(NOW))))
            })
        });
    }
    g.finish();
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

fn config() -> Criterion {
    Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3))
}

fn lookups(c: &mut Criterion) {
    let data = dataset(record_count());
    let mut opened = Vec::new();
    for mode in HashMode::ALL {
        let dir = index_dir(&data, mode);
        warm_page_cache(&dir);
        let salt = salt_for(mode);
        let index = Index::open(&dir, &OpenOptions { salt: salt.clone(), populate: false }).expect("open index");
        opened.push(Opened { mode, dir, index, hit_keys: Vec::new() });
    }
    let keys = prepare_keys(&data, &opened[0].index);
    for o in &mut opened {
        let deriver = KeyDeriver::new(o.mode, salt_for(o.mode).as_ref()).expect("deriver");
        o.hit_keys = keys.normalized_hits.iter().map(|e| deriver.derive(e.as_bytes()).as_bytes().to_vec()).collect();
    }
    let map = hashmap_baseline(&data, &opened[0].index);

    // Hits and misses: the same work on two key lists.
    for (group, list) in [("lookup_hit", &keys.hits), ("lookup_miss", &keys.misses)] {
        let mut g = c.benchmark_group(group);
        g.throughput(Throughput::Elements(1));
        for o in &opened {
            let mut next = cycle(list);
            g.bench_function(o.mode.name(), |b| b.iter(|| o.index.lookup_email(next()).expect("lookup").count()));
        }
        let mut next = cycle(list);
        g.bench_function("hashmap", |b| {
            b.iter(|| {
                let key = normalize_email(next()).expect("valid");
                map.get(key.as_ref()).map_or(0, |rows| rows.len())
            })
        });
        g.finish();
    }

    // The key structure alone: the caller already holds the stored key (`--key`), so
    // neither normalization nor hashing is timed; the HashMap gets a normalized key.
    let mut g = c.benchmark_group("lookup_key_hit");
    g.throughput(Throughput::Elements(1));
    for o in &opened {
        let mut next = cycle(&o.hit_keys);
        g.bench_function(o.mode.name(), |b| {
            b.iter(|| o.index.lookup_key(next(), Some(IdentifierKind::Email)).expect("lookup").count())
        });
    }
    let mut next = cycle(&keys.normalized_hits);
    g.bench_function("hashmap", |b| b.iter(|| map.get(next().as_str()).map_or(0, |rows| rows.len())));
    g.finish();

    let mut g = c.benchmark_group("check_hit");
    g.throughput(Throughput::Elements(1));
    for o in &opened {
        let mut next = cycle(&keys.hits);
        g.bench_function(o.mode.name(), |b| {
            b.iter(|| {
                let result = o.index.check(&Query::Email(next()), UnixTime::from_seconds(NOW)).expect("check");
                (result.risk_score, result.risk_level, result.total_breaches)
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("lookup_username_hit");
    g.throughput(Throughput::Elements(1));
    for o in &opened {
        let mut next = cycle(&keys.usernames);
        g.bench_function(o.mode.name(), |b| b.iter(|| o.index.lookup_username(next()).expect("lookup").count()));
    }
    g.finish();

    batches(c, &data, &opened);

    let mut g = c.benchmark_group("open");
    for o in &opened {
        let options = OpenOptions { salt: salt_for(o.mode), populate: false };
        g.bench_function(o.mode.name(), |b| b.iter(|| Index::open(&o.dir, &options).expect("open").len()));
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = config();
    targets = lookups
}
criterion_main!(benches);
