//! Any bytes in any file of an index (SPEC §9): opening returns an error or an index
//! whose lookups, checks and record reads return results or errors, never a panic, a
//! hang or an out-of-bounds read; `verify` flags every raw change to a data file; and
//! `Index::open` on disk agrees with `Index::from_files` in memory.
//!
//! Input layout: `[index, file, op, rest…]`.
//! - `index` picks the sample built in `plain` or `xxh3-64` mode (fixed salt);
//! - `file` picks one file of that index, `manifest.json` included;
//! - `op & 3`: 0 overwrite bytes, 1 truncate then overwrite, 2 replace the whole file
//!   with `rest`, 3 append `rest`; overwrites are 5-byte records
//!   `[offset u32 LE, value]`, offset modulo the length, counted from the end when its
//!   top bit is set;
//! - `op & 0x80` (fixup): make the change consistent where a checksum would reject it
//!   at once: a changed data file gets its new size and XXH3 in a resealed manifest; a
//!   changed manifest gets its own checksum recomputed. This lets the fuzzer reach the
//!   file readers instead of stopping at the size check.
//!
//! Every [`VERIFY_EVERY`]-th run also writes the mutated files to a temporary
//! directory and runs `verify` and `Index::open` there (too slow for every run).

#![no_main]

use breachdex::build::{BuildOptions, MIN_MEMORY_BUDGET, build_index};
use breachdex::catalog::Catalog;
use breachdex::format::manifest::{self, Manifest};
use breachdex::index::{IdentifierKind, Index, OpenError, OpenOptions, Query, verify};
use breachdex::keymode::{KeyDeriver, to_hex};
use breachdex::normalize::{normalize_email, normalize_username};
use breachdex::{Asset, HashMode, Salt};
use libfuzzer_sys::fuzz_target;
use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// Fixed salt of the hashed sample.
const SALT: &[u8] = b"breachdex-fuzz-salt-0123456789";
/// Build time and check time: 2026-11-23T12:00:00Z.
const NOW: i64 = 1_795_435_200;
/// One run in this many also checks on disk (verify, Index::open).
const VERIFY_EVERY: u64 = 16;
/// Rows read per lookup at most (a damaged range may name many).
const MAX_ROWS_READ: usize = 256;

/// Identities of the bundled sample: hits in several spellings and misses.
const EMAILS: &[&str] = &[
    "user@example.com",
    "müller@bücher.de",
    "MÜLLER@xn--bcher-kva.de",
    "John.Doe@Example.COM",
    "josé.núñez@example.com",
    "shopper+deals@gmail.com",
    "alice@example.net",
    "bob.smith@example.com",
    "shopper@gmail.com",
    "nobody@absent.invalid",
    "zzzz@zzzz.zz",
    "a@b",
];
const USERNAMES: &[&str] =
    &["darkstar99", "alice", "jdoe", "gamer_girl", "retro_gamer", "Retro_Gamer", "nobody-here", "a"];

struct BuiltIndex {
    salt: Option<Salt>,
    files: BTreeMap<String, Vec<u8>>,
    names: Vec<String>,
    manifest: Manifest,
    /// `--key` queries: every sample identity's stored key, hex.
    key_hex: Vec<String>,
}

fn build(mode: HashMode) -> BuiltIndex {
    let catalog_path = concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata/sample/catalog.json");
    let catalog = Catalog::load(catalog_path.as_ref()).expect("load the bundled sample catalog");
    let tmp = tempfile::tempdir().expect("temp dir");
    let out = tmp.path().join("index");
    let salt = mode.is_hashed().then(|| Salt::new(SALT.to_vec()).expect("salt"));
    let options = BuildOptions {
        hash_mode: mode,
        salt: salt.clone(),
        memory_budget: MIN_MEMORY_BUDGET,
        threads: Some(1),
        rejects_path: Some(tmp.path().join("rejects.jsonl")),
        source_date_epoch: Some(NOW),
        ..BuildOptions::default()
    };
    build_index(&catalog, &out, &options).expect("build the sample index");
    let mut files = BTreeMap::new();
    for entry in std::fs::read_dir(&out).expect("read index dir").flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        files.insert(name, std::fs::read(entry.path()).expect("read index file"));
    }
    let names = files.keys().cloned().collect();
    let manifest = Manifest::read(&out).expect("manifest");
    let deriver = KeyDeriver::new(mode, salt.as_ref()).expect("deriver");
    let mut key_hex = Vec::new();
    for e in EMAILS {
        if let Ok(n) = normalize_email(e) {
            key_hex.push(to_hex(deriver.derive(n.as_bytes()).as_bytes()));
        }
    }
    for u in USERNAMES {
        if let Ok(n) = normalize_username(u) {
            key_hex.push(to_hex(deriver.derive(n.as_bytes()).as_bytes()));
        }
    }
    let index = Index::from_files(files.clone(), &OpenOptions { salt: salt.clone(), populate: false })
        .expect("the intact sample opens");
    assert!(!index.lookup_email("user@example.com").expect("lookup").is_empty(), "sample hit missing");
    BuiltIndex { salt, files, names, manifest, key_hex }
}

fn samples() -> &'static [BuiltIndex] {
    static SAMPLES: OnceLock<Vec<BuiltIndex>> = OnceLock::new();
    SAMPLES.get_or_init(|| vec![build(HashMode::Plain), build(HashMode::Xxh3_64)])
}

fn overwrite(file: &mut [u8], records: &[u8]) {
    if file.is_empty() {
        return;
    }
    for rec in records.chunks_exact(5) {
        let raw = u32::from_le_bytes([rec[0], rec[1], rec[2], rec[3]]);
        let off = (raw & 0x7fff_ffff) as usize % file.len();
        let pos = if raw & 0x8000_0000 != 0 { file.len() - 1 - off } else { off };
        file[pos] = rec[4];
    }
}

/// Recomputes the manifest's own checksum over whatever its body now holds.
fn reseal_manifest(text: &[u8]) -> Vec<u8> {
    const HEAD: &[u8] = b"{\"manifest\": ";
    const TAIL: &[u8] = b",\n\"checksum\": \"";
    let Some(end) = text.windows(TAIL.len()).rposition(|w| w == TAIL) else { return text.to_vec() };
    if !text.starts_with(HEAD) || end < HEAD.len() {
        return text.to_vec();
    }
    let body = &text[HEAD.len()..end];
    let mut out = Vec::with_capacity(text.len());
    out.extend_from_slice(HEAD);
    out.extend_from_slice(body);
    out.extend_from_slice(
        format!(",\n\"checksum\": \"xxh3:{:016x}\"}}\n", xxhash_rust::xxh3::xxh3_64(body)).as_bytes(),
    );
    out
}

/// Reads every part of up to [`MAX_ROWS_READ`] matched records.
fn read_rows(index: &Index, rows: impl Iterator<Item = u64>) {
    for id in rows.take(MAX_ROWS_READ) {
        if let Ok(record) = index.record(id) {
            std::hint::black_box(record.document_id());
            for asset in Asset::ALL {
                let _ = std::hint::black_box(record.get(asset));
            }
        }
    }
}

fn exercise(index: &Index, sample: &BuiltIndex, extra_key: &[u8]) {
    std::hint::black_box((index.len(), index.sources().len(), index.hash_mode(), index.stored_assets()));
    for e in EMAILS {
        if let Ok(m) = index.lookup_email(e) {
            read_rows(index, m);
        }
        if let Ok(result) = index.check(&Query::Email(e), NOW) {
            std::hint::black_box(result.risk_score);
        }
    }
    for u in USERNAMES {
        if let Ok(m) = index.lookup_username(u) {
            read_rows(index, m);
        }
        let _ = std::hint::black_box(index.check(&Query::Username(u), NOW).map(|r| r.total_breaches));
    }
    let extra_hex = to_hex(extra_key);
    for hex in sample.key_hex.iter().map(String::as_str).chain([extra_hex.as_str()]) {
        for kind in [None, Some(IdentifierKind::Email), Some(IdentifierKind::Username)] {
            let query = Query::Key { hex, kind };
            if let Ok(m) = index.lookup(&query) {
                read_rows(index, m);
            }
            let _ = std::hint::black_box(index.check(&query, NOW).map(|r| r.risk_level));
        }
    }
}

/// On disk: `Index::open` agrees with `from_files`; `verify` finds every raw change
/// to a data file, and an index it passes also opens.
fn check_on_disk(
    files: &BTreeMap<String, Vec<u8>>,
    options: &OpenOptions,
    in_memory: &Result<Index, OpenError>,
    raw_data_change: Option<&str>,
) {
    let tmp = tempfile::tempdir().expect("temp dir");
    for (name, bytes) in files {
        std::fs::write(tmp.path().join(name), bytes).expect("write index file");
    }
    let on_disk = Index::open(tmp.path(), options);
    assert_eq!(
        on_disk.is_ok(),
        in_memory.is_ok(),
        "Index::open and Index::from_files disagree: {:?} vs {:?}",
        on_disk.as_ref().err(),
        in_memory.as_ref().err()
    );
    let report = verify(tmp.path());
    if let Some(name) = raw_data_change {
        assert!(!report.is_ok(), "verify missed a changed byte in {name}");
    }
    if report.is_ok() {
        let salt_problem =
            matches!(on_disk, Err(OpenError::WrongSalt | OpenError::SaltRequired(_) | OpenError::SaltUnused));
        assert!(on_disk.is_ok() || salt_problem, "verify passes an index that does not open: {:?}", on_disk.err());
    }
}

/// The library catches the panics the `fst` crate raises on damaged bytes and returns an
/// error (`format::fstmap`); libfuzzer-sys's panic hook would abort on them before the
/// library's `catch_unwind` runs. So the hook only records the message, and a panic
/// that escapes to this target aborts here with the message printed.
fn quiet_panics() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        std::panic::set_hook(Box::new(|info| {
            LAST_PANIC.with(|p| *p.borrow_mut() = info.to_string());
        }))
    });
}

thread_local! {
    static LAST_PANIC: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

fuzz_target!(|data: &[u8]| {
    quiet_panics();
    if std::panic::catch_unwind(|| run(data)).is_err() {
        LAST_PANIC.with(|p| eprintln!("panic escaped the library: {}", p.borrow()));
        std::process::abort();
    }
});

fn run(data: &[u8]) {
    static RUNS: AtomicU64 = AtomicU64::new(0);
    let [which, file_pick, op, rest @ ..] = data else { return };
    let all = samples();
    let sample = &all[*which as usize % all.len()];
    let name = &sample.names[*file_pick as usize % sample.names.len()];
    let original = &sample.files[name];
    let mut bytes = original.clone();
    match op & 3 {
        0 => overwrite(&mut bytes, rest),
        1 => {
            let (len, records) = rest.split_at(rest.len().min(4));
            let mut le = [0u8; 4];
            le[..len.len()].copy_from_slice(len);
            bytes.truncate(u32::from_le_bytes(le) as usize % (bytes.len() + 1));
            overwrite(&mut bytes, records);
        }
        2 => bytes = rest.to_vec(),
        _ => bytes.extend_from_slice(rest),
    }
    let fixup = op & 0x80 != 0;
    let is_manifest = name == manifest::FILE_NAME;
    let mut files = sample.files.clone();
    if fixup && is_manifest {
        bytes = reseal_manifest(&bytes);
    } else if fixup {
        let mut m = sample.manifest.clone();
        if let Some(entry) = m.files.iter_mut().find(|f| f.name == *name) {
            entry.size = bytes.len() as u64;
            entry.xxh3 = format!("{:016x}", xxhash_rust::xxh3::xxh3_64(&bytes));
        }
        files.insert(manifest::FILE_NAME.to_string(), m.to_file_text().expect("manifest text").into_bytes());
    }
    let changed = bytes != *original;
    files.insert(name.clone(), bytes);

    let options = OpenOptions { salt: sample.salt.clone(), populate: false };
    let on_disk_files = (RUNS.fetch_add(1, Ordering::Relaxed) % VERIFY_EVERY == 0).then(|| files.clone());
    let opened = Index::from_files(files, &options);
    if let Ok(index) = &opened {
        let key_len = rest.len().min(40);
        exercise(index, sample, &rest[..key_len]);
    }
    if let Some(files) = on_disk_files {
        let raw_data_change = (changed && !fixup && !is_manifest).then_some(name.as_str());
        check_on_disk(&files, &options, &opened, raw_data_change);
    }
}
