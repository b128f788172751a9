//! The password index (SPEC §12): the count of one hash and one range as Pwned Passwords
//! text, side by side with an in-memory `HashMap<[u8; 20], u64>` holding the same SHA-1
//! hashes, measured in the same run.
//!
//! Setup (once, reused by later runs): a CSV of `BREACHDEX_BENCH_PASSWORDS` records
//! (default 1,000,000), each with its own password, so the index holds that many
//! distinct SHA-1 hashes and as many NTLM ones; built into `BREACHDEX_BENCH_PASSWORD_INDEX`
//! (default `target/bench-data/passwords-N`), or opened there if it is already built.
//! The index's password files are read through once so the page cache is warm. Every
//! iteration is one lookup, cycling through 4,096 prepared hashes so the timings are not
//! one hot cache line.
//!
//! Quick run: `cargo bench --bench passwords -- --quick`.

use breachdex::{
    BuildOptions, Catalog, Index, OpenOptions, PasswordHash, PasswordHashKind, PasswordPrefix, build_index,
};
use criterion::{Criterion, criterion_group, criterion_main};
use std::collections::HashMap;
use std::hint::black_box;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Default number of distinct passwords.
const DEFAULT_PASSWORDS: u64 = 1_000_000;
/// Prepared hashes per list; a power of two so the cursor is a mask.
const KEYS: usize = 4096;

fn password_count() -> u64 {
    match std::env::var("BREACHDEX_BENCH_PASSWORDS") {
        Ok(v) => {
            v.replace('_', "").parse().unwrap_or_else(|_| panic!("BREACHDEX_BENCH_PASSWORDS='{v}' is not a number"))
        }
        Err(_) => DEFAULT_PASSWORDS,
    }
}

/// The password of record `i`: distinct for every `i`.
fn password(i: u64) -> String {
    format!("pw-{i}-{:08x}", i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32)
}

/// Builds the index unless a complete one is there.
fn index_dir(n: u64) -> PathBuf {
    let dir = match std::env::var_os("BREACHDEX_BENCH_PASSWORD_INDEX") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-data").join(format!("passwords-{n}")),
    };
    if dir.join("manifest.json").exists() {
        eprintln!("bench: reusing {}", dir.display());
        return dir;
    }
    let work = dir.with_extension("input");
    std::fs::create_dir_all(&work).expect("bench input folder");
    let csv = work.join("passwords.csv");
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&csv).expect("csv"));
    out.write_all(b"email,password\n").expect("write");
    for i in 0..n {
        writeln!(out, "user{i}@bench.example,{}", password(i)).expect("write");
    }
    out.flush().expect("flush");
    drop(out);
    let catalog_path = work.join("catalog.json");
    let catalog = r#"{"sources": [{"id": 1, "name": "bench", "title": "Bench", "date": "2024-01-01",
        "description": "one distinct password per record", "files": [{"path": "passwords.csv", "format": "csv"}]}]}"#;
    std::fs::write(&catalog_path, catalog).expect("catalog");
    let catalog = Catalog::load(&catalog_path).expect("load catalog");
    let started = Instant::now();
    let options = BuildOptions { rejects_path: Some(work.join("rejects.jsonl")), ..BuildOptions::default() };
    build_index(&catalog, &dir, &options).expect("build");
    eprintln!("bench: built {} ({n} passwords) in {:.1} s", dir.display(), started.elapsed().as_secs_f64());
    let _ = std::fs::remove_dir_all(&work);
    dir
}

fn warm(dir: &Path) {
    for name in ["passwords.sha1", "passwords.ntlm"] {
        let _ = std::fs::read(dir.join(name));
    }
}

fn cycle<'a, T>(items: &'a [T]) -> impl FnMut() -> &'a T {
    let mut i = 0usize;
    move || {
        i = (i + 1) & (KEYS - 1);
        &items[i]
    }
}

fn benches(c: &mut Criterion) {
    let n = password_count();
    let dir = index_dir(n);
    warm(&dir);
    let index = Index::open(&dir, &OpenOptions::default()).expect("open");
    let passwords = index.passwords().expect("a password index");
    eprintln!(
        "bench: {} distinct SHA-1 and {} NTLM hashes",
        passwords.len(PasswordHashKind::Sha1),
        passwords.len(PasswordHashKind::Ntlm)
    );
    // Spread over the whole set: every (n / KEYS)-th password.
    let step = (n / KEYS as u64).max(1);
    let hits: Vec<PasswordHash> = (0..KEYS as u64).map(|k| PasswordHash::sha1_of(&password((k * step) % n))).collect();
    let ntlm_hits: Vec<PasswordHash> =
        (0..KEYS as u64).map(|k| PasswordHash::ntlm_of(&password((k * step) % n))).collect();
    let misses: Vec<PasswordHash> = (0..KEYS).map(|k| PasswordHash::sha1_of(&format!("missing-{k}"))).collect();
    let prefixes: Vec<PasswordPrefix> = hits.iter().map(PasswordHash::prefix).collect();
    for h in &hits[..16] {
        assert!(passwords.count(h).expect("count") >= 1, "prepared hits are in the index");
    }

    let mut group = c.benchmark_group("password_count");
    let mut next = cycle(&hits);
    group.bench_function("sha1_hit", |b| b.iter(|| black_box(passwords.count(next()).ok())));
    let mut next = cycle(&ntlm_hits);
    group.bench_function("ntlm_hit", |b| b.iter(|| black_box(passwords.count(next()).ok())));
    let mut next = cycle(&misses);
    group.bench_function("sha1_miss", |b| b.iter(|| black_box(passwords.count(next()).ok())));

    // Baseline: the same SHA-1 hashes in a HashMap (load time and memory not counted).
    let started = Instant::now();
    let mut map: HashMap<[u8; 20], u64> = HashMap::with_capacity(n as usize);
    for i in 0..n {
        let mut key = [0u8; 20];
        key.copy_from_slice(PasswordHash::sha1_of(&password(i)).as_bytes());
        map.insert(key, 1);
    }
    eprintln!("bench: HashMap baseline loaded in {:.1} s", started.elapsed().as_secs_f64());
    let keys: Vec<[u8; 20]> = hits.iter().map(|h| h.as_bytes().try_into().expect("20 bytes")).collect();
    let mut next = cycle(&keys);
    group.bench_function("hashmap_sha1_hit", |b| b.iter(|| black_box(map.get(next()))));
    group.finish();
    drop(map);

    let mut group = c.benchmark_group("password_range_text");
    let mut body = Vec::with_capacity(64 * 1024);
    let mut next = cycle(&prefixes);
    group.bench_function("sha1", |b| {
        b.iter(|| {
            body.clear();
            black_box(passwords.write_range_text(PasswordHashKind::Sha1, *next(), None, &mut body).ok())
        })
    });
    let mut seed = 0u64;
    group.bench_function("sha1_padded", |b| {
        b.iter(|| {
            body.clear();
            seed += 1;
            black_box(passwords.write_range_text(PasswordHashKind::Sha1, *next(), Some(seed), &mut body).ok())
        })
    });
    group.finish();
}

fn config() -> Criterion {
    Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3))
}

criterion_group! { name = passwords; config = config(); targets = benches }
criterion_main!(passwords);
