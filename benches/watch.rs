//! Monitoring (SPEC §14's `breach.detected`): a new generation with 1M changed keys
//! matched against 100,000 watched identities, in the `sha256` mode (32-byte keys).
//!
//! Setup (once per run, about a minute): an index built from one small source, then
//! `add_to_index` of a dump of 1,000,000 new e-mails (generation 2, whose change file
//! lists 1M gained (key, source) pairs); 100,000 watched e-mails, 10,000 of them in
//! the dump, their keys derived by the index (`query_key`).
//!
//! - `watch/changes(1)`: reading the change feed (`Index::changes`): 1M entries.
//! - `watch/match`: `WatchList::match_changes` of those 1M changes (10,000 hits).
//! - `watch/changes+match`: both, what the server does per new generation (plus
//!   building the list, `watch/build list`).
//!
//! Baseline in the same run: `watch/scan`, one pass over the 1M changes summing a
//! byte of each key (the least any matcher must do).
//!
//! Run: `cargo bench --bench watch`.

use breachdex::{
    AddOptions, BuildOptions, Catalog, HashMode, Index, OpenOptions, Query, Salt, WatchList, add_to_index, build_index,
};
use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::io::Write;
use std::path::Path;

const CHANGED: u64 = 1_000_000;
const WATCHED: u64 = 100_000;
/// Every WATCHED / HIT_EVERY-th watched e-mail is in the dump.
const HIT_EVERY: u64 = 10;
const SALT: &[u8] = b"bench-only-salt-not-a-secret-0123456789";

fn email(i: u64) -> String {
    format!("user.{i}@example-{}.org", i % 1000)
}

fn catalog(dir: &Path, id: u32, name: &str, file: &str) -> Catalog {
    let path = dir.join(format!("{name}.json"));
    let json = serde_json::json!({"sources": [{"id": id, "name": name, "title": name, "date": "2026-01-01",
        "description": "bench", "publish_date": "2026-02-01", "files": [{"path": file, "format": "csv"}]}]});
    std::fs::write(&path, json.to_string()).expect("catalog");
    Catalog::load(&path).expect("load catalog")
}

fn setup(dir: &Path) -> (Index, Vec<Vec<u8>>) {
    let salt = Salt::new(SALT.to_vec()).expect("salt");
    std::fs::write(dir.join("base.csv"), "email,password\nbase@example.org,x\n").expect("base dump");
    let mut dump = std::io::BufWriter::new(std::fs::File::create(dir.join("new.csv")).expect("dump"));
    writeln!(dump, "email,password").expect("write");
    for i in 0..CHANGED {
        writeln!(dump, "{},pw{i}", email(i)).expect("write");
    }
    dump.into_inner().expect("flush");
    let index_dir = dir.join("index");
    let options = BuildOptions {
        hash_mode: HashMode::Sha256,
        salt: Some(salt.clone()),
        rejects_path: Some(dir.join("rejects-1.jsonl")),
        ..BuildOptions::default()
    };
    build_index(&catalog(dir, 1, "base", "base.csv"), &index_dir, &options).expect("build");
    let add = AddOptions {
        salt: Some(salt.clone()),
        rejects_path: Some(dir.join("rejects-2.jsonl")),
        ..AddOptions::default()
    };
    add_to_index(&index_dir, &catalog(dir, 2, "new", "new.csv"), &add).expect("add");
    let index = Index::open(&index_dir, &OpenOptions::with_salt(salt)).expect("open");
    // Watched e-mails: every HIT_EVERY-th is in the dump, the others are not.
    let keys = (0..WATCHED)
        .map(|w| {
            let i = if w % HIT_EVERY == 0 { w * (CHANGED / WATCHED) } else { CHANGED + w };
            index.query_key(&Query::Email(&email(i))).expect("key").1
        })
        .collect();
    (index, keys)
}

fn list(keys: &[Vec<u8>]) -> WatchList {
    let mut w = WatchList::new();
    for (n, k) in keys.iter().enumerate() {
        w.insert(breachdex::IdentifierKind::Email, k, n as u32);
    }
    w
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let (index, keys) = setup(dir.path());
    let changes = index.changes(1).expect("changes");
    assert_eq!(changes.len() as u64, CHANGED);
    let watch = list(&keys);
    assert_eq!(watch.match_changes(&changes).len() as u64, WATCHED / HIT_EVERY);
    let mut g = c.benchmark_group("watch");
    g.sample_size(10);
    g.bench_function("scan", |b| b.iter(|| changes.iter().map(|c| u64::from(c.key[0])).sum::<u64>()));
    g.bench_function("build list", |b| b.iter(|| list(black_box(&keys))));
    g.bench_function("match", |b| b.iter(|| watch.match_changes(black_box(&changes))));
    g.bench_function("changes(1)", |b| b.iter(|| index.changes(1).expect("changes").len()));
    g.bench_function("changes+match", |b| b.iter(|| watch.match_changes(&index.changes(1).expect("changes")).len()));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
