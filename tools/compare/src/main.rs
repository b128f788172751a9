//! Side-by-side comparison (SPEC §10): breachdex in each hash mode, SQLite with an index,
//! an in-memory `HashMap` and a sorted flat file with `look`-style binary search, all on
//! one generated dataset, in one run. Every system answers the same question per query:
//! "which breaches is this raw e-mail in, and what is its risk score" (breachdex:
//! `Index::check`; the others: normalize, fetch (source, severity, assets) of every
//! matching record, group by source, `risk_score`). The answers are cross-checked.
//!
//! Usage: `compare --records N --out DIR [--modes plain,xxh3-64,...] [--lookups K]
//!         [--dataset DIR] [--batch-secs S] [--no-cold]`
//!
//! Or, on existing plain indexes of the generator's data (seed 42):
//! `compare --indexes DIR[,DIR...] --identities N --out DIR [--twins] [--rounds R]`
//! measures them side by side, `check` and `records` (see [`indexes_ab`]);
//! `--accelerated-index DIR` is `--indexes DIR --twins` (with and without the
//! accelerator).

use breachdex::Asset;
use breachdex::Catalog;
use breachdex::Date;
use breachdex::Severity;
use breachdex::risk_score;
use breachdex::{AssetPolicy, RecordsRequest};
use breachdex::{BuildOptions, build_index};
use breachdex::{HashMode, Salt};
use breachdex::{Index, OpenOptions, Query};
use breachdex::{normalize_email, normalize_username};
use breachdex_gen::bench::{NOW, SALT, SEED};
use breachdex_gen::{GenConfig, catalog_path, generate_cached, identity_email, miss_email};
use rusqlite::{Connection, OpenFlags, params};
use serde_json::json;
use std::collections::HashMap;
use std::hint::black_box;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Barrier;
use std::time::{Duration, Instant};

struct Args {
    records: u64,
    out: PathBuf,
    modes: Vec<HashMode>,
    lookups: usize,
    dataset: Option<PathBuf>,
    batch_secs: f64,
    cold: bool,
    /// `--memory` of the breachdex builds (default: the library default).
    memory: Option<u64>,
    /// Measure breachdex only (no read-back, SQLite, flat file or HashMap): for sizes
    /// where the baselines would not fit the machine or the time.
    breachdex_only: bool,
    /// Existing plain indexes of one dataset, measured side by side.
    indexes: Vec<PathBuf>,
    /// Also measure each of `indexes` that holds accelerators as its FST-walk twin.
    twins: bool,
    /// Distinct identities of the indexes' dataset.
    identities: Option<u64>,
    /// Alternating measurement rounds of `--indexes`.
    rounds: usize,
    /// `--indexes` without the `records` measurement (checks only).
    records_off: bool,
    /// `--indexes`: hits also taken from other generator seeds' identity pools (`SEED:N`,
    /// N distinct identities), e.g. the dumps of small segments added to a base.
    segment_hits: Vec<(u64, u64)>,
    /// `--indexes`: skip the batch measurement.
    batch_off: bool,
}

fn parse_args() -> Args {
    let mut a = Args {
        records: 1_000_000,
        out: PathBuf::from("target/compare"),
        modes: HashMode::ALL.to_vec(),
        lookups: 100_000,
        dataset: None,
        batch_secs: 2.0,
        cold: true,
        memory: None,
        breachdex_only: false,
        indexes: Vec::new(),
        twins: false,
        identities: None,
        rounds: 3,
        records_off: false,
        segment_hits: Vec::new(),
        batch_off: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--records" => a.records = val().replace('_', "").parse().expect("--records N"),
            "--out" => a.out = PathBuf::from(val()),
            "--modes" => {
                a.modes =
                    val().split(',').map(|m| m.trim().parse().unwrap_or_else(|e| panic!("mode {m}: {e}"))).collect()
            }
            "--lookups" => a.lookups = val().replace('_', "").parse().expect("--lookups K"),
            "--dataset" => a.dataset = Some(PathBuf::from(val())),
            "--batch-secs" => a.batch_secs = val().parse().expect("--batch-secs S"),
            "--no-cold" => a.cold = false,
            "--memory" => a.memory = Some(parse_size(&val())),
            "--breachdex-only" => a.breachdex_only = true,
            "--accelerated-index" => {
                a.indexes = vec![PathBuf::from(val())];
                a.twins = true;
            }
            "--indexes" => a.indexes = val().split(',').map(PathBuf::from).collect(),
            "--twins" => a.twins = true,
            "--no-records" => a.records_off = true,
            "--no-batch" => a.batch_off = true,
            "--segment-hits" => {
                a.segment_hits = val()
                    .split(',')
                    .map(|p| {
                        let (seed, n) = p.split_once(':').expect("--segment-hits SEED:N[,SEED:N...]");
                        (seed.parse().expect("seed"), n.replace('_', "").parse().expect("identities"))
                    })
                    .collect()
            }
            "--identities" => a.identities = Some(val().replace('_', "").parse().expect("--identities N")),
            "--rounds" => a.rounds = val().parse().expect("--rounds R"),
            "-h" | "--help" => {
                eprintln!(
                    "compare --records N --out DIR [--modes plain,xxh3-64,...] [--lookups K] [--dataset DIR] \
                     [--batch-secs S] [--no-cold] [--memory SIZE] [--breachdex-only]\n       \
                     compare --indexes DIR[,DIR...] --identities N --out DIR [--twins] [--no-records] \
                     [--no-batch] [--segment-hits SEED:N,...] [--lookups K] [--rounds R] [--batch-secs S]\n       \
                     compare --accelerated-index DIR ... (= --indexes DIR --twins)"
                );
                std::process::exit(0);
            }
            other => panic!("unknown argument {other}"),
        }
    }
    assert!(!a.modes.is_empty(), "--modes is empty");
    a
}

// ---------------------------------------------------------------------------------
// helpers

/// `512M`, `4G`, or a number of bytes.
fn parse_size(text: &str) -> u64 {
    let t = text.trim();
    let (num, mult) = match t.char_indices().last() {
        Some((i, 'K' | 'k')) => (&t[..i], 1u64 << 10),
        Some((i, 'M' | 'm')) => (&t[..i], 1 << 20),
        Some((i, 'G' | 'g')) => (&t[..i], 1 << 30),
        _ => (t, 1),
    };
    num.parse::<u64>().expect("--memory SIZE") * mult
}

/// Resets the process's peak RSS (Linux `clear_refs` 5), so the next
/// [`peak_rss_bytes`] covers only what follows.
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5\n");
}

/// Peak RSS of the process (`VmHWM`).
fn peak_rss_bytes() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn rss_bytes() -> i64 {
    let s = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: i64 = s.split_whitespace().nth(1).and_then(|v| v.parse().ok()).unwrap_or(0);
    pages * 4096
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir).map(|rd| rd.flatten().filter_map(|e| e.metadata().ok()).map(|m| m.len()).sum()).unwrap_or(0)
}

fn warm_file(path: &Path) {
    if path.is_dir() {
        for e in std::fs::read_dir(path).expect("read dir").flatten() {
            warm_file(&e.path());
        }
    } else {
        black_box(std::fs::read(path).expect("read file").len());
    }
}

fn drop_caches() -> Result<(), String> {
    unsafe extern "C" {
        fn sync();
    }
    unsafe { sync() };
    std::fs::write("/proc/sys/vm/drop_caches", "3\n").map_err(|e| e.to_string())
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// The index's open options: the bench salt for a hashed index.
fn open_options(dir: &Path) -> OpenOptions {
    let mode = match breachdex::read_root_manifest(dir).expect("manifest") {
        breachdex::RootManifest::Index(m) => m.hash_mode,
        breachdex::RootManifest::Generation(g) => g.hash_mode,
    };
    match mode.as_str() {
        "plain" => OpenOptions::default(),
        _ => OpenOptions::with_salt(Salt::new(SALT.to_vec()).expect("bench salt")),
    }
}

/// `k` hit keys spread evenly over the identity pools of `pools` (`(seed, identities)`:
/// the generator's identities of another seed, e.g. the dumps of added segments),
/// shuffled.
fn segment_hit_keys(k: usize, pools: &[(u64, u64)]) -> Vec<String> {
    if pools.is_empty() {
        return Vec::new();
    }
    let per = k.div_ceil(pools.len()) as u64;
    let mut keys: Vec<String> = pools
        .iter()
        .flat_map(|&(seed, n)| (0..per.min(n)).map(move |i| identity_email(seed, i * n / per.min(n).max(1) % n.max(1))))
        .take(k)
        .collect();
    shuffle(&mut keys, 0x6A09_E667_F3BC_C908);
    keys
}

/// The lookup keys of a run: `k` hits spread over the identity pool, `k` misses, and
/// both mixed; each list shuffled with its own fixed seed.
fn lookup_keys(k: usize, identities: u64) -> (Vec<String>, Vec<String>, Vec<String>) {
    let mut hits: Vec<String> =
        (0..k as u64).map(|i| identity_email(SEED, (i * identities / k as u64) % identities)).collect();
    let mut misses: Vec<String> = (0..k as u64).map(miss_email).collect();
    shuffle(&mut hits, 0x9E37_79B9_7F4A_7C15);
    shuffle(&mut misses, 0xD1B5_4A32_D192_ED03);
    let mut mixed: Vec<String> = hits.iter().chain(&misses).cloned().collect();
    shuffle(&mut mixed, 0x2545_F491_4F6C_DD1D);
    (hits, misses, mixed)
}

/// Deterministic shuffle (xorshift Fisher-Yates) so key order is not id order.
fn shuffle<T>(v: &mut [T], mut s: u64) {
    for i in (1..v.len()).rev() {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        v.swap(i, (s % (i as u64 + 1)) as usize);
    }
}

/// Source table every non-breachdex system holds in RAM (10 entries: id → date).
#[derive(Clone)]
struct Sources {
    date: HashMap<u32, Date>,
}

/// One normalized record as the other systems store it.
struct Rec {
    email: Option<String>,
    username: Option<String>,
    source_id: u32,
    severity: u8,
    assets: u16,
}

/// `check` for the non-breachdex systems: group the matches by source (max severity),
/// then the library's `risk_score`. Returns (risk score, breaches).
fn aggregate(matches: &[(u32, u8, u16)], sources: &Sources, now: Date) -> (u8, usize) {
    let mut per: Vec<(u32, Severity, Date)> = Vec::new();
    for &(src, sev, _assets) in matches {
        let sev = Severity::from_score(sev).expect("severity");
        match per.iter_mut().find(|p| p.0 == src) {
            Some(p) => p.1 = p.1.max(sev),
            None => per.push((src, sev, *sources.date.get(&src).expect("source"))),
        }
    }
    (risk_score(per.iter().map(|p| (p.1, p.2)), now), per.len())
}

type Checker<'a> = Box<dyn FnMut(&str) -> (u8, usize) + 'a>;
/// Checks many keys, returns the sum of their risk scores.
type BatchChecker<'a> = Box<dyn FnMut(&[String]) -> u64 + 'a>;

trait System: Sync {
    /// A per-thread checker (SQLite: its own connection and prepared statement).
    fn checker(&self) -> Checker<'_>;

    /// A per-thread checker of many keys at once, returning the sum of risk scores: a
    /// loop over [`System::checker`] unless the system has a batch API.
    fn batch_checker(&self) -> BatchChecker<'_> {
        let mut c = self.checker();
        Box::new(move |keys| keys.iter().map(|k| c(k).0 as u64).sum())
    }
}

// ---------------------------------------------------------------------------------
// the systems

struct Bdx(Index);
impl System for Bdx {
    fn checker(&self) -> Checker<'_> {
        Box::new(move |e| {
            let r = self.0.check(&Query::Email(e), breachdex::UnixTime::from_seconds(NOW)).expect("check");
            (r.risk_score, r.total_breaches)
        })
    }

    /// `Index::check_batch`, the library's batch API (prefetches across 16 queries).
    fn batch_checker(&self) -> BatchChecker<'_> {
        Box::new(move |keys| {
            let queries: Vec<Query<'_>> = keys.iter().map(|k| Query::Email(k)).collect();
            self.0
                .check_batch(&queries, breachdex::UnixTime::from_seconds(NOW))
                .into_iter()
                .map(|r| r.expect("check").risk_score as u64)
                .sum()
        })
    }
}

struct Sql {
    path: PathBuf,
    sources: Sources,
    now: Date,
}
const SQL_QUERY: &str = "SELECT source_id, severity, assets FROM records WHERE email_key = ?1";
impl Sql {
    fn connect(path: &Path) -> Connection {
        let conn =
            Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
                .expect("open sqlite");
        // Let SQLite read through a memory map as breachdex does (default: pread into
        // its own page cache); the bundled build caps it at 2 GiB.
        conn.pragma_update(None, "mmap_size", 1i64 << 40).expect("mmap_size");
        conn
    }
}
impl System for Sql {
    fn checker(&self) -> Checker<'_> {
        // Leaked so the prepared statement can live in the closure (a few per run).
        let conn: &'static Connection = Box::leak(Box::new(Sql::connect(&self.path)));
        let mut stmt = conn.prepare(SQL_QUERY).expect("prepare");
        let mut buf = Vec::new();
        Box::new(move |e| {
            buf.clear();
            let Ok(key) = normalize_email(e) else { return (0, 0) };
            let mut rows = stmt.query(params![key.as_ref()]).expect("query");
            while let Some(r) = rows.next().expect("row") {
                buf.push((r.get::<_, u32>(0).unwrap(), r.get::<_, u8>(1).unwrap(), r.get::<_, u16>(2).unwrap()));
            }
            aggregate(&buf, &self.sources, self.now)
        })
    }
}

struct Map {
    map: HashMap<String, Vec<u32>>,
    sources: Sources,
    now: Date,
}
fn pack(src: u32, sev: u8, assets: u16) -> u32 {
    assert!(src < 256, "source id {src} does not fit the packed HashMap value");
    (src << 24) | ((sev as u32) << 16) | assets as u32
}
fn unpack(v: u32) -> (u32, u8, u16) {
    (v >> 24, (v >> 16) as u8, v as u16)
}
impl System for Map {
    fn checker(&self) -> Checker<'_> {
        let mut buf = Vec::new();
        Box::new(move |e| {
            let Ok(key) = normalize_email(e) else { return (0, 0) };
            buf.clear();
            if let Some(v) = self.map.get(key.as_ref()) {
                buf.extend(v.iter().map(|&x| unpack(x)));
            }
            aggregate(&buf, &self.sources, self.now)
        })
    }
}

struct Flat {
    mmap: breachdex::internals::Bytes,
    sources: Sources,
    now: Date,
}

/// Start of the first line at or after byte `pos` (`pos` itself if a line starts there).
fn line_start(data: &[u8], pos: usize) -> usize {
    if pos == 0 {
        return 0;
    }
    match data[pos - 1..].iter().position(|&b| b == b'\n') {
        Some(i) => pos + i,
        None => data.len(),
    }
}
fn line_key(data: &[u8], start: usize) -> &[u8] {
    let rest = &data[start..];
    let end = rest.iter().position(|&b| b == b'\t' || b == b'\n').unwrap_or(rest.len());
    &rest[..end]
}

/// `look(1)`-style search: binary search on byte offsets, each probe scans to the next
/// newline; then scan the equal lines. No offsets array.
fn flat_lookup(data: &[u8], key: &[u8], out: &mut Vec<(u32, u8, u16)>) {
    let (mut lo, mut hi) = (0usize, data.len());
    // smallest pos with line_start(pos) == len || key_at(line_start(pos)) >= key
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        let s = line_start(data, mid);
        if s < data.len() && line_key(data, s) < key {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    let mut p = line_start(data, lo);
    while p < data.len() {
        let line_end = data[p..].iter().position(|&b| b == b'\n').map_or(data.len(), |i| p + i);
        let line = &data[p..line_end];
        let tab = line.iter().position(|&b| b == b'\t').expect("tab");
        if &line[..tab] != key {
            break;
        }
        let mut f = line[tab + 1..].split(|&b| b == b',');
        let mut num = || std::str::from_utf8(f.next().unwrap()).unwrap().parse::<u32>().unwrap();
        out.push((num(), num() as u8, num() as u16));
        p = line_end + 1;
    }
}
impl System for Flat {
    fn checker(&self) -> Checker<'_> {
        let mut buf = Vec::new();
        Box::new(move |e| {
            let Ok(key) = normalize_email(e) else { return (0, 0) };
            buf.clear();
            flat_lookup(&self.mmap, key.as_bytes(), &mut buf);
            aggregate(&buf, &self.sources, self.now)
        })
    }
}

// ---------------------------------------------------------------------------------
// measurements

#[derive(Default, Clone)]
struct M {
    name: String,
    build_s: Option<f64>,
    build_rps: Option<f64>,
    size: Option<u64>,
    size_core: Option<u64>,
    open_ns: Option<f64>,
    rss_delta: Option<i64>,
    build_peak_rss: Option<u64>,
    hit_med: f64,
    hit_p99: f64,
    miss_med: f64,
    miss_p99: f64,
    batch1: f64,
    batch2: f64,
    cold_open_ns: Option<f64>,
    cold_med: Option<f64>,
    cold_p99: Option<f64>,
    checksum: (u64, u64),
}

fn time_each(check: &mut Checker<'_>, keys: &[String]) -> (Vec<u64>, (u64, u64)) {
    let mut t = Vec::with_capacity(keys.len());
    let mut sum = (0u64, 0u64);
    for k in keys {
        let s = Instant::now();
        let r = black_box(check(black_box(k)));
        t.push(s.elapsed().as_nanos() as u64);
        sum.0 += r.0 as u64;
        sum.1 += r.1 as u64;
    }
    t.sort_unstable();
    (t, sum)
}

fn latency(sys: &dyn System, hits: &[String], misses: &[String], m: &mut M) {
    let mut c = sys.checker();
    for k in hits.iter().chain(misses) {
        black_box(c(k)); // warm-up pass
    }
    let (th, sum) = time_each(&mut c, hits);
    let (tm, sum_m) = time_each(&mut c, misses);
    assert_eq!(sum_m, (0, 0), "{}: a miss key matched", m.name);
    m.hit_med = percentile(&th, 0.5) as f64;
    m.hit_p99 = percentile(&th, 0.99) as f64;
    m.miss_med = percentile(&tm, 0.5) as f64;
    m.miss_p99 = percentile(&tm, 0.99) as f64;
    m.checksum = sum;
}

/// Checks/s with `threads` threads, each looping over its share of `keys` for `secs`.
/// Keys per batch call (breachdex: one `check_batch` call).
const BATCH_CALL: usize = 1024;

fn batch(sys: &dyn System, keys: &[String], threads: usize, secs: f64) -> f64 {
    let barrier = Barrier::new(threads);
    let chunk = keys.len().div_ceil(threads);
    let results: Vec<(u64, Duration)> = std::thread::scope(|s| {
        let hs: Vec<_> = keys
            .chunks(chunk)
            .map(|part| {
                let barrier = &barrier;
                s.spawn(move || {
                    let mut c = sys.batch_checker();
                    barrier.wait();
                    let start = Instant::now();
                    let mut n = 0u64;
                    let mut acc = 0u64;
                    loop {
                        for keys in part.chunks(BATCH_CALL) {
                            acc += c(keys);
                        }
                        n += part.len() as u64;
                        if start.elapsed().as_secs_f64() >= secs {
                            break;
                        }
                    }
                    black_box(acc);
                    (n, start.elapsed())
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().expect("worker")).collect()
    });
    let total: u64 = results.iter().map(|r| r.0).sum();
    let longest = results.iter().map(|r| r.1).max().unwrap();
    total as f64 / longest.as_secs_f64()
}

fn median_open<T>(mut f: impl FnMut() -> T) -> f64 {
    let mut t: Vec<u64> = (0..21)
        .map(|_| {
            let s = Instant::now();
            black_box(f());
            s.elapsed().as_nanos() as u64
        })
        .collect();
    t.sort_unstable();
    t[t.len() / 2] as f64
}

/// Cold: drop the page cache, open, then time the first `n` hit lookups individually.
fn cold<T>(
    open: impl FnOnce() -> T,
    as_sys: impl Fn(&T) -> &dyn System,
    hits: &[String],
    m: &mut M,
) -> Result<(), String> {
    drop_caches()?;
    let s = Instant::now();
    let sys = open();
    m.cold_open_ns = Some(s.elapsed().as_nanos() as f64);
    let sys = as_sys(&sys);
    let mut c = sys.checker();
    let (t, _) = time_each(&mut c, hits);
    m.cold_med = Some(percentile(&t, 0.5) as f64);
    m.cold_p99 = Some(percentile(&t, 0.99) as f64);
    Ok(())
}

// ---------------------------------------------------------------------------------

fn dataset(args: &Args) -> (PathBuf, u64) {
    let dir = args.dataset.clone().unwrap_or_else(|| args.out.join(format!("gen-{}-seed{SEED}", args.records)));
    let config = GenConfig { seed: SEED, ..GenConfig::new(args.records, &dir) };
    let started = Instant::now();
    let cached = generate_cached(&config).expect("generate");
    match &cached.generated {
        Some(summary) => {
            eprintln!("compare: generated {} records in {:.1} s", summary.records, started.elapsed().as_secs_f64())
        }
        None => eprintln!("compare: reusing dataset {}", dir.display()),
    }
    (dir, cached.distinct_identities)
}

/// Reads a file through once in 1 MiB chunks (page cache warm, no big allocation).
fn warm_pages(path: &Path) {
    use std::io::Read;
    if path.is_dir() {
        for e in std::fs::read_dir(path).expect("read dir for warming").flatten() {
            warm_pages(&e.path());
        }
        return;
    }
    let mut f = std::fs::File::open(path).expect("open for warming");
    let mut buf = vec![0u8; 1 << 20];
    while f.read(&mut buf).expect("read for warming") > 0 {}
}

/// Sorted `records` latencies of one run: every hit key, the identities with at most 10
/// records, and the identities whose first page is full (1,000 records).
#[derive(Default)]
struct RecordsTimes {
    all: Vec<u64>,
    small: Vec<u64>,
    full_pages: Vec<u64>,
}

/// `records` of every hit key (first page, every asset allowed, nothing hashed), timed
/// one by one after a warm-up pass over the same keys: the latencies, the records
/// returned and a checksum of every document id and value returned.
fn records_latency(index: &Index, hits: &[String]) -> (RecordsTimes, u64, u64) {
    use std::hash::{Hash, Hasher};
    let policy = AssetPolicy::default();
    let mut times = RecordsTimes { all: Vec::with_capacity(hits.len()), ..RecordsTimes::default() };
    let mut returned = 0u64;
    let mut sum = std::collections::hash_map::DefaultHasher::new();
    for k in hits {
        // Warm-up pass, as for the checks: the timed pass reads mapped pages already faulted in.
        black_box(index.records(&RecordsRequest::new(Query::Email(k), &policy)).expect("records").hits);
    }
    for k in hits {
        let request = RecordsRequest::new(Query::Email(k), &policy);
        let s = Instant::now();
        let page = black_box(index.records(black_box(&request)).expect("records"));
        let t = s.elapsed().as_nanos() as u64;
        times.all.push(t);
        if page.hits <= 10 {
            times.small.push(t);
        }
        if page.results.len() == breachdex::MAX_PAGE {
            times.full_pages.push(t);
        }
        returned += page.results.len() as u64;
        for r in &page.results {
            r.document_id.hash(&mut sum);
            r.values.hash(&mut sum);
        }
    }
    for t in [&mut times.all, &mut times.small, &mut times.full_pages] {
        t.sort_unstable();
    }
    (times, returned, sum.finish())
}

/// Existing plain indexes of the generator's data (seed 42, `--identities` distinct
/// identities), e.g. the same dumps in two format versions, measured side by side on the
/// same hit and miss keys in `--rounds` alternating rounds (medians over the rounds):
/// open, `check` hit and miss, batch checks, and `records` of the hit keys. With
/// `--twins`, an index holding accelerators (`.fpt`) is also measured as its twin
/// without them (hard links to the same files, a manifest that lists no `.fpt` file, so
/// lookups walk the FST). Every index must give the same `check` answers and the same
/// records (document ids and values), or the run aborts.
fn indexes_ab(args: &Args) {
    let identities = args.identities.expect("--identities N (the dataset's distinct identities)");
    let mut systems: Vec<(String, PathBuf)> = Vec::new();
    let mut twins = Vec::new();
    for (i, dir) in args.indexes.iter().enumerate() {
        let manifest = match breachdex::read_root_manifest(dir).expect("manifest") {
            breachdex::RootManifest::Index(m) => *m,
            breachdex::RootManifest::Generation(g) => {
                let label = format!("{} (generation {}, {} segments)", dir.display(), g.generation, g.segments.len());
                systems.push((label, dir.clone()));
                continue;
            }
        };
        let accelerated = manifest.files.iter().any(|f| f.name.ends_with(".fpt"));
        let label = format!(
            "{} (v{}{})",
            dir.display(),
            manifest.format_version,
            if accelerated { ", accelerator" } else { "" }
        );
        systems.push((label, dir.clone()));
        if !(args.twins && accelerated) {
            continue;
        }
        let twin = args.out.join(format!("fst-only-twin-{i}"));
        let _ = std::fs::remove_dir_all(&twin);
        std::fs::create_dir_all(&twin).expect("create the twin");
        for e in std::fs::read_dir(dir).expect("read index").flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name != "manifest.json" && !name.ends_with(".fpt") {
                std::fs::hard_link(e.path(), twin.join(&name)).expect("hard link");
            }
        }
        let mut manifest = manifest;
        manifest.files.retain(|f| !f.name.ends_with(".fpt"));
        std::fs::write(twin.join("manifest.json"), manifest.to_file_text().expect("manifest text")).expect("write");
        systems.push((format!("{} (v{}, FST walk)", dir.display(), manifest.format_version), twin.clone()));
        twins.push(twin);
    }

    let k = args.lookups;
    let (hits, misses, mixed) = lookup_keys(k, identities);
    let segment_hits = segment_hit_keys(k, &args.segment_hits);
    for (_, dir) in &systems {
        warm_pages(dir);
    }
    let opened: Vec<Bdx> = systems.iter().map(|(_, d)| Bdx(Index::open(d, &open_options(d)).expect("open"))).collect();
    #[derive(Default, Clone)]
    struct R {
        med: f64,
        p99: f64,
        small_med: f64,
        small_n: usize,
        page_med: f64,
        page_n: usize,
        returned: u64,
        checksum: u64,
    }
    let mut runs: Vec<Vec<(M, R)>> = vec![Vec::new(); systems.len()];
    // Per index and round: segment hits (median, p99, checksum).
    let mut seg_runs: Vec<Vec<(f64, f64, (u64, u64))>> = vec![Vec::new(); systems.len()];
    for round in 0..args.rounds {
        for (i, (name, d)) in systems.iter().enumerate() {
            let mut m = M { name: name.to_string(), ..M::default() };
            m.open_ns = Some(median_open(|| Index::open(d, &open_options(d)).expect("open").len()));
            latency(&opened[i], &hits, &misses, &mut m);
            if !segment_hits.is_empty() {
                let mut c = opened[i].checker();
                for key in &segment_hits {
                    black_box(c(key));
                }
                let (t, sum) = time_each(&mut c, &segment_hits);
                let found = segment_hits.iter().filter(|key| c(key).1 > 0).count();
                assert_eq!(found, segment_hits.len(), "{name}: a segment hit key is not in the index");
                seg_runs[i].push((percentile(&t, 0.5) as f64, percentile(&t, 0.99) as f64, sum));
            }
            if !args.batch_off {
                m.batch1 = batch(&opened[i], &mixed, 1, args.batch_secs);
                m.batch2 = batch(&opened[i], &mixed, 2, args.batch_secs);
            }
            let r = if args.records_off {
                R::default()
            } else {
                let (t, returned, checksum) = records_latency(&opened[i].0, &hits);
                R {
                    med: percentile(&t.all, 0.5) as f64,
                    p99: percentile(&t.all, 0.99) as f64,
                    small_med: percentile(&t.small, 0.5) as f64,
                    small_n: t.small.len(),
                    page_med: percentile(&t.full_pages, 0.5) as f64,
                    page_n: t.full_pages.len(),
                    returned,
                    checksum,
                }
            };
            eprintln!(
                "compare: round {round} {name}: hit {:.0} ns (p99 {:.0}), segment hit {:.0} ns, miss {:.0} ns (p99 {:.0}), batch {:.0}/{:.0} checks/s, records {:.0} ns (p99 {:.0})",
                m.hit_med,
                m.hit_p99,
                seg_runs[i].last().map_or(0.0, |x| x.0),
                m.miss_med,
                m.miss_p99,
                m.batch1,
                m.batch2,
                r.med,
                r.p99
            );
            runs[i].push((m, r));
        }
    }
    let reference = (runs[0][0].0.checksum, runs[0][0].1.checksum, runs[0][0].1.returned);
    for (m, r) in runs.iter().flatten() {
        assert_eq!((m.checksum, r.checksum, r.returned), reference, "{} disagrees on the hit keys", m.name);
    }
    for (i, per_round) in seg_runs.iter().enumerate() {
        for x in per_round {
            assert_eq!(x.2, seg_runs[0][0].2, "{} disagrees on the segment hit keys", systems[i].0);
        }
    }
    let med = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    let mut out = String::new();
    out.push_str(&format!(
        "{} records, {} identities, {} hit and {} miss keys ({} records returned for the hits; of the hit identities, {} hold at most 10 records and {} fill a first page of {}), {} alternating rounds, medians over the rounds\n\n",
        opened[0].0.len(),
        identities,
        k,
        k,
        runs[0][0].1.returned,
        runs[0][0].1.small_n,
        runs[0][0].1.page_n,
        breachdex::MAX_PAGE,
        args.rounds
    ));
    out.push_str("| index | open | check hit, median | hit p99 | check segment hit, median | segment hit p99 | check miss, median | miss p99 | batch, 1 thread | batch, 2 threads | records, median | records p99 | records (≤ 10 records), median | records, full page, median |\n");
    out.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (i, (name, _)) in systems.iter().enumerate() {
        let r = &runs[i];
        let col = |f: &dyn Fn(&(M, R)) -> f64| med(&mut r.iter().map(f).collect());
        let seg = |f: &dyn Fn(&(f64, f64, (u64, u64))) -> f64| match seg_runs[i].is_empty() {
            true => 0.0,
            false => med(&mut seg_runs[i].iter().map(f).collect()),
        };
        out.push_str(&format!(
            "| {name} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            fmt_ns(col(&|x| x.0.open_ns.unwrap_or(0.0))),
            fmt_ns(col(&|x| x.0.hit_med)),
            fmt_ns(col(&|x| x.0.hit_p99)),
            fmt_ns(seg(&|x| x.0)),
            fmt_ns(seg(&|x| x.1)),
            fmt_ns(col(&|x| x.0.miss_med)),
            fmt_ns(col(&|x| x.0.miss_p99)),
            fmt_rate(col(&|x| x.0.batch1)),
            fmt_rate(col(&|x| x.0.batch2)),
            fmt_ns(col(&|x| x.1.med)),
            fmt_ns(col(&|x| x.1.p99)),
            fmt_ns(col(&|x| x.1.small_med)),
            fmt_ns(col(&|x| x.1.page_med)),
        ));
    }
    print!("{out}");
    std::fs::write(args.out.join("indexes-ab.md"), &out).expect("write the table");
    drop(opened);
    for twin in twins {
        let _ = std::fs::remove_dir_all(&twin);
    }
}

fn main() {
    let args = parse_args();
    let run_started = Instant::now();
    std::fs::create_dir_all(&args.out).expect("create --out");
    if !args.indexes.is_empty() {
        indexes_ab(&args);
        return;
    }
    let (data_dir, identities) = dataset(&args);
    let input_bytes = dir_bytes(&data_dir);
    let catalog = Catalog::load(&catalog_path(&data_dir)).expect("catalog");
    let now = Date::from_unix_seconds(NOW);
    let salt = |m: HashMode| m.is_hashed().then(|| Salt::new(SALT.to_vec()).expect("salt"));

    // Keys: K hits spread over the identity pool, K misses; shuffled.
    let k = args.lookups;
    let (hits, misses, mixed) = lookup_keys(k, identities);
    let n_cold = k.min(1000);

    let cold_state: Result<(), String> = if args.cold { drop_caches() } else { Err("--no-cold".into()) };
    if let Err(e) = &cold_state {
        eprintln!("compare: cold-cache measurements skipped: cannot drop caches ({e})");
    }
    let cold_ok = cold_state.is_ok();

    let mut results: Vec<M> = Vec::new();
    let mut kept = 0u64;
    let mut plain_dir: Option<PathBuf> = None;

    // ---- breachdex, each mode
    let mut modes = args.modes.clone();
    if !modes.contains(&HashMode::Plain) && !args.breachdex_only {
        modes.insert(0, HashMode::Plain); // the other systems are filled from the plain index
    }
    for &mode in &modes {
        let dir = args.out.join(format!("index-{}-{}", args.records, mode.name()));
        let options = BuildOptions {
            hash_mode: mode,
            salt: salt(mode),
            force: true,
            source_date_epoch: Some(NOW),
            rejects_path: Some(args.out.join(format!("index-{}-{}.rejects.jsonl", args.records, mode.name()))),
            memory_budget: args.memory.unwrap_or(breachdex::DEFAULT_MEMORY_BUDGET),
            ..BuildOptions::default()
        };
        reset_peak_rss();
        let s = build_index(&catalog, &dir, &options).expect("build");
        let build_peak_rss = peak_rss_bytes();
        eprintln!(
            "compare: built {} in {:.2} s ({:.0} records/s), {} bytes",
            mode.name(),
            s.elapsed.as_secs_f64(),
            s.records_per_second(),
            s.index_bytes
        );
        kept = s.kept;
        if mode == HashMode::Plain {
            plain_dir = Some(dir.clone());
        }
        if !args.modes.contains(&mode) {
            continue;
        }
        let oo = OpenOptions { salt: salt(mode), populate: false };
        let mut m = M { name: format!("breachdex {}", mode.name()), ..M::default() };
        m.build_s = Some(s.elapsed.as_secs_f64());
        m.build_rps = Some(s.kept as f64 / s.elapsed.as_secs_f64());
        m.build_peak_rss = build_peak_rss;
        m.size = Some(dir_bytes(&dir));
        let values = std::fs::metadata(dir.join(breachdex::internals::RECORD_STORE_FILE)).map_or(0, |md| md.len());
        m.size_core = Some(m.size.unwrap() - values);
        if cold_ok {
            cold(|| Bdx(Index::open(&dir, &oo).expect("open")), |b| b as &dyn System, &hits[..n_cold], &mut m).ok();
        }
        warm_file(&dir);
        m.open_ns = Some(median_open(|| Index::open(&dir, &oo).expect("open").len()));
        let rss0 = rss_bytes();
        let sys = Bdx(Index::open(&dir, &oo).expect("open"));
        latency(&sys, &hits, &misses, &mut m);
        m.rss_delta = Some(rss_bytes() - rss0);
        m.batch1 = batch(&sys, &mixed, 1, args.batch_secs);
        m.batch2 = batch(&sys, &mixed, 2, args.batch_secs);
        eprintln!("compare: measured {}", m.name);
        results.push(m);
    }

    if args.breachdex_only {
        let reference = results[0].checksum;
        for r in &results {
            assert_eq!(r.checksum, reference, "{} disagrees with {} on the hit keys", r.name, results[0].name);
        }
        finish(
            &args,
            &results,
            kept,
            input_bytes,
            identities,
            cold_ok,
            cold_state.as_ref().err(),
            run_started,
            k,
            n_cold,
        );
        return;
    }

    // ---- the normalized records, read back from the plain index
    let plain_dir = plain_dir.unwrap();
    let plain = Index::open(&plain_dir, &OpenOptions::default()).expect("open plain");
    let sources = Sources { date: plain.sources().iter().map(|s| (s.id, s.date)).collect() };
    let started = Instant::now();
    let recs: Vec<Rec> = (0..plain.len())
        .map(|row| {
            let r = plain.record(row).expect("record");
            let email =
                r.get(Asset::Email).expect("email").and_then(|e| normalize_email(e).ok()).map(|c| c.into_owned());
            let username = r
                .get(Asset::Username)
                .expect("username")
                .and_then(|u| normalize_username(u).ok())
                .map(|c| c.into_owned());
            Rec { email, username, source_id: r.row().source_id, severity: r.row().severity, assets: r.assets().bits() }
        })
        .collect();
    drop(plain);
    eprintln!(
        "compare: {} records read back from the plain index in {:.2} s",
        recs.len(),
        started.elapsed().as_secs_f64()
    );

    // ---- SQLite
    let db = args.out.join(format!("sqlite-{}.db", args.records));
    let _ = std::fs::remove_file(&db);
    let mut m = M { name: "SQLite".into(), ..M::default() };
    let started = Instant::now();
    {
        let mut conn = Connection::open(&db).expect("create db");
        conn.execute_batch(
            "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;
             CREATE TABLE records(email_key TEXT, username_key TEXT, source_id INTEGER NOT NULL,
                                  severity INTEGER NOT NULL, assets INTEGER NOT NULL);",
        )
        .expect("schema");
        let tx = conn.transaction().expect("tx");
        {
            let mut ins = tx.prepare("INSERT INTO records VALUES (?1, ?2, ?3, ?4, ?5)").expect("prepare insert");
            for r in &recs {
                ins.execute(params![r.email, r.username, r.source_id, r.severity, r.assets]).expect("insert");
            }
        }
        tx.commit().expect("commit");
        conn.execute_batch(
            "CREATE INDEX records_email ON records(email_key);
             CREATE INDEX records_username ON records(username_key);",
        )
        .expect("index");
    }
    let el = started.elapsed().as_secs_f64();
    m.build_s = Some(el);
    m.build_rps = Some(recs.len() as f64 / el);
    m.size = std::fs::metadata(&db).ok().map(|md| md.len());
    m.size_core = m.size;
    eprintln!("compare: SQLite import {:.2} s", el);
    let mk_sql = || Sql { path: db.clone(), sources: sources.clone(), now };
    if cold_ok {
        cold(
            || {
                let s = mk_sql();
                // open = connection + prepared statement, as `open_ns` below
                let c = Sql::connect(&s.path);
                black_box(c.prepare(SQL_QUERY).expect("prepare").column_count());
                drop(c);
                s
            },
            |s| s as &dyn System,
            &hits[..n_cold],
            &mut m,
        )
        .ok();
    }
    warm_file(&db);
    m.open_ns = Some(median_open(|| {
        let c = Sql::connect(&db);
        black_box(c.prepare(SQL_QUERY).expect("prepare").column_count());
    }));
    let rss0 = rss_bytes();
    let sql = mk_sql();
    latency(&sql, &hits, &misses, &mut m);
    m.rss_delta = Some(rss_bytes() - rss0);
    m.batch1 = batch(&sql, &mixed, 1, args.batch_secs);
    m.batch2 = batch(&sql, &mixed, 2, args.batch_secs);
    results.push(m);
    eprintln!("compare: measured SQLite");

    // ---- sorted flat file
    let flat_path = args.out.join(format!("flat-{}.tsv", args.records));
    let mut m = M { name: "sorted flat file".into(), ..M::default() };
    let started = Instant::now();
    {
        let mut lines: Vec<String> = recs
            .iter()
            .filter_map(|r| r.email.as_ref().map(|e| format!("{e}\t{},{},{}\n", r.source_id, r.severity, r.assets)))
            .collect();
        lines.sort_unstable();
        let mut w = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&flat_path).expect("create flat"));
        for l in &lines {
            w.write_all(l.as_bytes()).expect("write flat");
        }
        w.into_inner().expect("flush").sync_all().ok();
    }
    let el = started.elapsed().as_secs_f64();
    m.build_s = Some(el);
    m.build_rps = Some(recs.len() as f64 / el);
    m.size = std::fs::metadata(&flat_path).ok().map(|md| md.len());
    m.size_core = m.size;
    let mk_flat = || {
        let f = std::fs::File::open(&flat_path).expect("open flat");
        Flat {
            mmap: breachdex::internals::Bytes::map_file(&f, breachdex::internals::Access::Random, false).expect("mmap"),
            sources: sources.clone(),
            now,
        }
    };
    if cold_ok {
        cold(mk_flat, |s| s as &dyn System, &hits[..n_cold], &mut m).ok();
    }
    warm_file(&flat_path);
    m.open_ns = Some(median_open(|| mk_flat().mmap.len()));
    let rss0 = rss_bytes();
    let flat = mk_flat();
    latency(&flat, &hits, &misses, &mut m);
    m.rss_delta = Some(rss_bytes() - rss0);
    m.batch1 = batch(&flat, &mixed, 1, args.batch_secs);
    m.batch2 = batch(&flat, &mixed, 2, args.batch_secs);
    drop(flat);
    results.push(m);
    eprintln!("compare: measured flat file");

    // ---- HashMap, loaded from the flat file (warm cache)
    drop(recs);
    unsafe extern "C" {
        fn malloc_trim(pad: usize) -> i32;
    }
    unsafe { malloc_trim(0) }; // so the freed records do not hide the map's RSS
    let mut m = M { name: "HashMap".into(), ..M::default() };
    let rss0 = rss_bytes();
    let started = Instant::now();
    let mut map: HashMap<String, Vec<u32>> = HashMap::new();
    {
        let mut rd = BufReader::with_capacity(1 << 20, std::fs::File::open(&flat_path).expect("open flat"));
        let mut line = Vec::new();
        while rd.read_until(b'\n', &mut line).expect("read") > 0 {
            let l = line.strip_suffix(b"\n").unwrap_or(&line);
            let tab = l.iter().position(|&b| b == b'\t').expect("tab");
            let mut f = std::str::from_utf8(&l[tab + 1..]).unwrap().split(',').map(|x| x.parse::<u32>().unwrap());
            let v = pack(f.next().unwrap(), f.next().unwrap() as u8, f.next().unwrap() as u16);
            let key = std::str::from_utf8(&l[..tab]).unwrap();
            match map.get_mut(key) {
                Some(vs) => vs.push(v),
                None => {
                    map.insert(key.to_owned(), vec![v]);
                }
            }
            line.clear();
        }
    }
    let el = started.elapsed().as_secs_f64();
    m.rss_delta = Some(rss_bytes() - rss0);
    m.build_s = Some(el);
    m.build_rps = Some(kept as f64 / el);
    m.open_ns = Some(el * 1e9);
    let heap: usize = map.iter().map(|(k, v)| k.capacity() + v.capacity() * 4).sum::<usize>()
        + map.capacity() * (std::mem::size_of::<(String, Vec<u32>)>() + 1);
    eprintln!("compare: HashMap {} keys, heap estimate {heap} bytes, RSS delta {:?}", map.len(), m.rss_delta);
    let sys = Map { map, sources: sources.clone(), now };
    latency(&sys, &hits, &misses, &mut m);
    m.batch1 = batch(&sys, &mixed, 1, args.batch_secs);
    m.batch2 = batch(&sys, &mixed, 2, args.batch_secs);
    results.push(m);
    eprintln!("compare: measured HashMap");

    // ---- cross-check: every system gave the same answers on the hit keys
    let reference = results[0].checksum;
    for r in &results {
        assert_eq!(r.checksum, reference, "{} disagrees with {} on the hit keys", r.name, results[0].name);
    }

    finish(&args, &results, kept, input_bytes, identities, cold_ok, cold_state.as_ref().err(), run_started, k, n_cold);
}

/// Prints and writes the Markdown table and the JSON figures.
#[allow(clippy::too_many_arguments)]
fn finish(
    args: &Args,
    results: &[M],
    kept: u64,
    input_bytes: u64,
    identities: u64,
    cold_ok: bool,
    cold_err: Option<&String>,
    run_started: Instant,
    k: usize,
    n_cold: usize,
) {
    let reference = results[0].checksum;
    let total_s = run_started.elapsed().as_secs_f64();
    let md = table(args, results, kept, input_bytes, identities, cold_ok, cold_err, total_s);
    println!("{md}");
    std::fs::write(args.out.join(format!("compare-{}.md", args.records)), &md).expect("write md");
    let j = json!({
        "records_generated": args.records, "records_kept": kept, "input_bytes": input_bytes,
        "distinct_identities": identities, "lookups": k, "cold_lookups": if cold_ok { n_cold } else { 0 },
        "cold_measured": cold_ok, "batch_secs": args.batch_secs, "run_seconds": total_s,
        "hit_checksum": { "risk_sum": reference.0, "breaches_sum": reference.1 },
        "systems": results.iter().map(|m| json!({
            "name": m.name, "build_seconds": m.build_s, "build_records_per_second": m.build_rps,
            "size_bytes": m.size, "size_bytes_without_stored_values": m.size_core, "open_ns": m.open_ns,
            "rss_delta_bytes": m.rss_delta, "build_peak_rss_bytes": m.build_peak_rss,
            "hit_median_ns": m.hit_med, "hit_p99_ns": m.hit_p99, "miss_median_ns": m.miss_med, "miss_p99_ns": m.miss_p99,
            "batch_1_thread_checks_per_second": m.batch1, "batch_2_threads_checks_per_second": m.batch2,
            "cold_open_ns": m.cold_open_ns, "cold_hit_median_ns": m.cold_med, "cold_hit_p99_ns": m.cold_p99,
        })).collect::<Vec<_>>(),
    });
    std::fs::write(args.out.join(format!("compare-{}.json", args.records)), serde_json::to_string_pretty(&j).unwrap())
        .expect("write json");
    eprintln!("compare: done in {total_s:.1} s; wrote {}", args.out.display());
}

// ---------------------------------------------------------------------------------
// report

fn fmt_ns(ns: f64) -> String {
    if ns < 1e3 {
        format!("{ns:.0} ns")
    } else if ns < 1e6 {
        format!("{:.2} µs", ns / 1e3)
    } else if ns < 1e9 {
        format!("{:.2} ms", ns / 1e6)
    } else {
        format!("{:.2} s", ns / 1e9)
    }
}
fn fmt_bytes(b: f64) -> String {
    if b.abs() >= (1u64 << 30) as f64 {
        format!("{:.2} GiB", b / (1u64 << 30) as f64)
    } else if b.abs() >= (1 << 20) as f64 {
        format!("{:.1} MiB", b / (1 << 20) as f64)
    } else if b.abs() >= 1024.0 {
        format!("{:.1} KiB", b / 1024.0)
    } else {
        format!("{b:.0} B")
    }
}
fn fmt_rate(r: f64) -> String {
    if r >= 1e6 { format!("{:.2} M/s", r / 1e6) } else { format!("{:.0} k/s", r / 1e3) }
}

#[allow(clippy::too_many_arguments)]
fn table(
    args: &Args,
    rs: &[M],
    kept: u64,
    input: u64,
    identities: u64,
    cold_ok: bool,
    cold_err: Option<&String>,
    total_s: f64,
) -> String {
    let mut out = String::new();
    out += &format!(
        "{} records generated (seed {SEED}), {kept} kept, {identities} distinct e-mail keys, input {} ({input} bytes); \
         {} hit + {} miss lookups; batch {} s per thread count; breachdex builds with --memory {}; run {:.0} s.\n\n",
        args.records,
        fmt_bytes(input as f64),
        args.lookups,
        args.lookups,
        args.batch_secs,
        fmt_bytes(args.memory.unwrap_or(breachdex::DEFAULT_MEMORY_BUDGET) as f64),
        total_s
    );
    out += "| figure |";
    for r in rs {
        out += &format!(" {} |", r.name);
    }
    out += "\n|---|";
    for _ in rs {
        out += "---:|";
    }
    out += "\n";
    let nb = rs.iter().filter(|r| r.name.starts_with("breachdex")).count();
    // (label, value, lower is better, formatter)
    type Row<'a> = (&'a str, Box<dyn Fn(&M) -> Option<f64>>, bool, fn(f64) -> String);
    let rows: Vec<Row> = vec![
        ("build / import time", Box::new(|m| m.build_s.map(|s| s * 1e9)), true, fmt_ns),
        ("build / import records/s", Box::new(|m| m.build_rps), false, fmt_rate),
        (
            "build peak RSS (breachdex: VmHWM of the build)",
            Box::new(|m| m.build_peak_rss.map(|v| v as f64)),
            true,
            fmt_bytes,
        ),
        ("size on disk", Box::new(|m| m.size.map(|v| v as f64)), true, fmt_bytes),
        ("bytes / record", Box::new(move |m| m.size.map(|v| v as f64 / kept as f64)), true, |v| format!("{v:.1}")),
        ("size without stored values", Box::new(|m| m.size_core.map(|v| v as f64)), true, fmt_bytes),
        ("… bytes / record", Box::new(move |m| m.size_core.map(|v| v as f64 / kept as f64)), true, |v| {
            format!("{v:.1}")
        }),
        ("open (warm; HashMap: load)", Box::new(|m| m.open_ns), true, fmt_ns),
        ("RSS delta (open + lookups; HashMap: load)", Box::new(|m| m.rss_delta.map(|v| v as f64)), true, fmt_bytes),
        ("check hit, median", Box::new(|m| Some(m.hit_med)), true, fmt_ns),
        ("check hit, p99", Box::new(|m| Some(m.hit_p99)), true, fmt_ns),
        ("check miss, median", Box::new(|m| Some(m.miss_med)), true, fmt_ns),
        ("check miss, p99", Box::new(|m| Some(m.miss_p99)), true, fmt_ns),
        ("batch, 1 thread (checks/s)", Box::new(|m| Some(m.batch1)), false, fmt_rate),
        ("batch, 2 threads (checks/s)", Box::new(|m| Some(m.batch2)), false, fmt_rate),
    ];
    let mut rows = rows;
    if cold_ok {
        rows.push(("cold open", Box::new(|m| m.cold_open_ns), true, fmt_ns));
        rows.push(("cold check hit, median", Box::new(|m| m.cold_med), true, fmt_ns));
        rows.push(("cold check hit, p99", Box::new(|m| m.cold_p99), true, fmt_ns));
    }
    for (label, f, lower, fmt) in &rows {
        let best = rs[..nb]
            .iter()
            .filter_map(f)
            .fold(None, |acc: Option<f64>, v| Some(acc.map_or(v, |a| if *lower { a.min(v) } else { a.max(v) })));
        out += &format!("| {label} |");
        for m in rs {
            match (f(m), best) {
                (Some(v), Some(b))
                    if (m.name.starts_with("breachdex") || !label.starts_with("size without")) && b != 0.0 =>
                {
                    let ratio = if *lower { v / b } else { b / v };
                    out += &format!(" {} ({:.2}×) |", fmt(v), ratio)
                }
                (Some(v), _) => out += &format!(" {} |", fmt(v)),
                (None, _) => out += " — |",
            }
        }
        out += "\n";
    }
    out += "\nRatios: this system's cost against the best breachdex mode in the row (1.00× = as good; \
            2.00× = twice the time/bytes, or half the throughput).\n";
    if !cold_ok {
        out += &format!("\nCold-cache figures not measured: {}.\n", cold_err.map_or("—", |s| s.as_str()));
    }
    out
}
