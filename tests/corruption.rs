//! No damage to any file of an index (truncation, flipped bytes, wrong magic or version, deletion, a stray file, a file swapped in from another index, a broken manifest) may make the reader panic: `Index::open` fails naming the file, or lookups, checks and `records` return `Ok`/`Err` safely, and `verify` always names the damaged file. A damaged block of the record store is named (file and block) by `records` and `verify`.

use breachdex::Catalog;
use breachdex::UnixTime;
use breachdex::internals::HEADER_LEN;
use breachdex::{Asset, AssetSet};
use breachdex::{AssetPolicy, RecordsRequest};
use breachdex::{BuildOptions, build_index};
use breachdex::{HashMode, Salt};
use breachdex::{Index, OpenError, OpenOptions, Query, verify};
use breachdex::{PasswordHash, PasswordHashKind, PasswordPrefix};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const NOW: i64 = 1_763_856_000; // 2025-11-23

fn salt() -> Salt {
    Salt::new(b"corruption-test-only-salt-0123456789".to_vec()).unwrap()
}

fn options(mode: HashMode) -> OpenOptions {
    OpenOptions { salt: mode.is_hashed().then(salt), populate: false }
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn build(catalog: &Path, out: &Path, mode: HashMode, store: Option<AssetSet>) {
    let catalog = Catalog::load(catalog).unwrap();
    let opts = BuildOptions {
        hash_mode: mode,
        store,
        salt: mode.is_hashed().then(salt),
        threads: Some(1),
        source_date_epoch: Some(1_700_000_000),
        rejects_path: Some(out.with_extension("rejects")),
        // Plain indexes carry the key maps' accelerators, so every case covers them too.
        accelerator: !mode.is_hashed(),
        ..BuildOptions::default()
    };
    build_index(&catalog, out, &opts).unwrap();
}

/// The sample index (pristine) and, for swaps, one built from the examplecorp dump alone.
struct Fixture {
    _tmp: tempfile::TempDir,
    mode: HashMode,
    /// The `--store` of both builds (`None`: every asset).
    store: Option<AssetSet>,
    good: PathBuf,
    other: PathBuf,
    scratch_root: PathBuf,
    counter: std::cell::Cell<u32>,
}

impl Fixture {
    fn new(mode: HashMode) -> Fixture {
        Fixture::with_store(mode, None)
    }

    /// Builds that keep only `store` (a privacy build, with `passwords.rowrefs`, when it
    /// lacks a password asset).
    fn with_store(mode: HashMode, store: Option<AssetSet>) -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let good = tmp.path().join("good");
        let other = tmp.path().join("other");
        build(&repo().join("testdata/sample/catalog.json"), &good, mode, store);
        build(&repo().join("testdata/sample-gz/catalog.json"), &other, mode, store);
        assert!(verify(&good).unwrap().is_ok());
        assert!(verify(&other).unwrap().is_ok());
        let scratch_root = tmp.path().join("scratch");
        std::fs::create_dir(&scratch_root).unwrap();
        Fixture { mode, store, good, other, scratch_root, _tmp: tmp, counter: std::cell::Cell::new(0) }
    }

    fn file_names(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.good)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n != "manifest.json")
            .collect();
        names.sort();
        let accelerators = if self.mode.is_hashed() { 0 } else { 2 };
        let rowrefs = usize::from(self.store.is_some());
        assert_eq!(names.len(), 8 + accelerators + rowrefs, "{names:?}");
        names
    }

    /// A fresh copy of the good index.
    fn copy(&self) -> PathBuf {
        let n = self.counter.get();
        self.counter.set(n + 1);
        let dir = self.scratch_root.join(format!("c{n}"));
        std::fs::create_dir(&dir).unwrap();
        for e in std::fs::read_dir(&self.good).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), dir.join(e.file_name())).unwrap();
        }
        dir
    }
}

const EMAILS: &[&str] = &[
    "user@example.com",
    "müller@bücher.de",
    "john.doe@example.com",
    "josé.núñez@example.com",
    "shopper+deals@gmail.com",
    "alice@example.net",
    "bob.smith@example.com",
    "gamergirl@example.com",
    "old.timer@example.org",
    "maria.garcia@example.org",
    "absent@nowhere.example",
    "a@b.c",
];
const PASSWORDS: &[&str] = &["hunter2", "password", "123456", "correct horse battery staple", ""];
const USERNAMES: &[&str] = &["darkstar99", "alice", "jdoe", "gamer_girl", "retro_gamer", "pixelpete", "nobody", "z"];

/// Runs every lookup and reads every matched record; errors are fine, panics are not.
/// Returns how many queries returned an error (for information only).
fn exercise(index: &Index) -> usize {
    let mut errors = 0;
    let queries = EMAILS.iter().map(|e| Query::Email(e)).chain(USERNAMES.iter().map(|u| Query::Username(u)));
    for q in queries {
        match index.lookup(&q) {
            Ok(rows) => {
                for id in rows.take(1000) {
                    match index.record(id) {
                        Ok(rec) => {
                            let _ = rec.document_id();
                            for asset in Asset::ALL {
                                if rec.get(asset).is_err() {
                                    errors += 1;
                                }
                            }
                        }
                        Err(_) => errors += 1,
                    }
                }
            }
            Err(_) => errors += 1,
        }
        match index.check(&q, UnixTime::from_seconds(NOW)) {
            Ok(r) => {
                let _ = serde_json::to_string(&r).unwrap();
            }
            Err(_) => errors += 1,
        }
        // The records themselves: every block holding one is decompressed and parsed.
        let policy = AssetPolicy::default();
        match index.records(&RecordsRequest::new(q, &policy)) {
            Ok(page) => {
                let _ = serde_json::to_string(&page).unwrap();
            }
            Err(_) => errors += 1,
        }
    }
    // Password counts and ranges: of passwords in the sample and of absent ones.
    if let Some(passwords) = index.passwords() {
        for password in PASSWORDS {
            for hash in [PasswordHash::sha1_of(password), PasswordHash::ntlm_of(password)] {
                if passwords.count(&hash).is_err() {
                    errors += 1;
                }
                match passwords.range(hash.kind(), hash.prefix()) {
                    Ok(range) => errors += range.filter(Result::is_err).count(),
                    Err(_) => errors += 1,
                }
            }
        }
        for kind in PasswordHashKind::ALL {
            for prefix in [0, 0x7FFFF, PasswordPrefix::MAX] {
                let prefix = PasswordPrefix::from_value(prefix).unwrap();
                match passwords.range(kind, prefix) {
                    Ok(range) => errors += range.filter(Result::is_err).count(),
                    Err(_) => errors += 1,
                }
            }
        }
    }
    // Out-of-range rows are errors, not panics.
    assert!(index.record(u64::MAX).is_err());
    assert!(index.record(index.len()).is_err());
    errors
}

/// What broke the contract in one run over many cases.
#[derive(Default)]
struct Findings {
    /// Any violation except the known one below.
    failures: Vec<String>,
    /// Known bug: `OpenError::Inconsistent` (a header count disagreeing with the
    /// manifest) does not name the file.
    unnamed_inconsistent: Vec<String>,
}

/// The contract for damage to `name` inside `dir`. Records violations (not panics),
/// so one run reports every broken case.
fn judge(fx: &Fixture, dir: &Path, name: &str, what: &str, findings: &mut Findings) {
    if let Some(f) = judge_inner(fx, dir, name, what, findings) {
        findings.failures.push(f);
    }
}

fn judge_inner(fx: &Fixture, dir: &Path, name: &str, what: &str, findings: &mut Findings) -> Option<String> {
    let opened = Index::open(dir, &options(fx.mode));
    match &opened {
        Err(e) => {
            let msg = e.to_string();
            if !msg.contains(name) {
                if matches!(e, OpenError::Inconsistent(_)) {
                    findings.unnamed_inconsistent.push(format!("{what}: {msg}"));
                } else {
                    return Some(format!("{what}: open error does not name {name}: {msg}"));
                }
            }
        }
        Ok(index) => {
            exercise(index);
        }
    }
    let report = verify(dir).unwrap();
    if report.is_ok() {
        return Some(format!(
            "{what}: verify found nothing (open: {:?})",
            opened.as_ref().err().map(|e| e.to_string())
        ));
    }
    if !report.problems.iter().any(|p| p.contains(name)) {
        return Some(format!("{what}: verify does not name {name}: {:?}", report.problems));
    }
    None
}

fn flip_offsets(len: usize) -> Vec<usize> {
    let mut v = vec![0, 8, 12, 14, 16, 24, 32, 40, 48, 56, 63];
    if len > HEADER_LEN + 16 {
        let body = len - HEADER_LEN - 16;
        v.extend([HEADER_LEN, HEADER_LEN + body / 2, HEADER_LEN + body - 1]);
    }
    v.extend([len.saturating_sub(16), len.saturating_sub(9), len.saturating_sub(8), len.saturating_sub(1)]);
    v.retain(|&o| o < len);
    v.sort_unstable();
    v.dedup();
    v
}

fn damage_every_file(mode: HashMode) -> Findings {
    damage_every_file_of(Fixture::new(mode))
}

fn damage_every_file_of(fx: Fixture) -> Findings {
    let mode = fx.mode;
    let mut findings = Findings::default();
    let mut cases = 0;
    for name in fx.file_names() {
        let good = std::fs::read(fx.good.join(&name)).unwrap();
        let len = good.len();
        let mut variants: Vec<(String, Option<Vec<u8>>)> = vec![
            ("truncate to 0".into(), Some(Vec::new())),
            ("truncate to 10 (inside the header)".into(), Some(good[..10].to_vec())),
            ("truncate inside the body".into(), Some(good[..HEADER_LEN + (len - HEADER_LEN) / 2].to_vec())),
            ("one byte short".into(), Some(good[..len - 1].to_vec())),
            ("one byte longer".into(), Some([&good[..], &[0]].concat())),
            ("delete".into(), None),
        ];
        for off in flip_offsets(len) {
            for mask in [0x01u8, 0x80] {
                let mut b = good.clone();
                b[off] ^= mask;
                variants.push((format!("flip {mask:#04x} at {off}"), Some(b)));
            }
        }
        let mut b = good.clone();
        b[..8].copy_from_slice(b"NOTMAGIC");
        variants.push(("wrong magic".into(), Some(b)));
        for version in [0u16, 1, 3, 0xffff] {
            let mut b = good.clone();
            b[12..14].copy_from_slice(&version.to_le_bytes());
            variants.push((format!("version {version}"), Some(b)));
        }
        let mut b = good.clone();
        b[8..12].copy_from_slice(b"ROWS");
        if name != "records.rows" {
            variants.push(("wrong kind".into(), Some(b)));
        }
        if let Ok(other) = std::fs::read(fx.other.join(&name)) {
            assert_ne!(other, good, "{name}: the other index must differ");
            variants.push(("swapped with the other index's file".into(), Some(other)));
        }
        // The whole body zeroed, header and footer intact.
        let mut b = good.clone();
        b[HEADER_LEN..len - 16].fill(0);
        variants.push(("body zeroed".into(), Some(b)));

        for (what, bytes) in variants {
            cases += 1;
            let dir = fx.copy();
            let path = dir.join(&name);
            match bytes {
                Some(b) => std::fs::write(&path, b).unwrap(),
                None => std::fs::remove_file(&path).unwrap(),
            }
            judge(&fx, &dir, &name, &format!("{mode} {name}: {what}"), &mut findings);
            std::fs::remove_dir_all(&dir).unwrap();
        }
    }
    assert!(cases > 18 * 20, "{cases}");
    let f = &findings.failures;
    assert!(f.is_empty(), "{} of {cases} cases broke the contract:\n{}", f.len(), f.join("\n"));
    findings
}

#[test]
fn damage_to_every_file_plain() {
    damage_every_file(HashMode::Plain);
}

#[test]
fn damage_to_every_file_xxh3_64() {
    damage_every_file(HashMode::Xxh3_64);
}

/// A privacy build (no password asset stored, password index on) has
/// `passwords.rowrefs`: the same matrix covers it.
#[test]
fn damage_to_every_file_privacy() {
    let store: AssetSet =
        [Asset::Email, Asset::Username, Asset::PasswordHash, Asset::PasswordType].into_iter().collect();
    let fx = Fixture::with_store(HashMode::Xxh3_64, Some(store));
    assert!(fx.file_names().iter().any(|n| n == "passwords.rowrefs"));
    let u = damage_every_file_of(fx).unnamed_inconsistent;
    assert!(u.is_empty(), "{}", u.join("\n"));
}

#[test]
fn open_errors_always_name_the_damaged_file() {
    // Repro: flip byte 40 (a header parameter) of email.ranges, then Index::open says
    // "the index is inconsistent: e-mail row count disagrees with the manifest".
    for mode in [HashMode::Plain, HashMode::Xxh3_64] {
        let u = damage_every_file(mode).unnamed_inconsistent;
        assert!(u.is_empty(), "{}", u.join("\n"));
        let u = every_byte(mode).unnamed_inconsistent;
        assert!(u.is_empty(), "{} cases, e.g.:\n{}", u.len(), u[..u.len().min(10)].join("\n"));
    }
}

fn extra_file(mode: HashMode) {
    let fx = Fixture::new(mode);
    for (name, contents) in [("extra.bin", &b"hello"[..]), ("asset.email.col.bak", &b""[..]), (".hidden", &b"x"[..])] {
        let dir = fx.copy();
        std::fs::write(dir.join(name), contents).unwrap();
        // Opening may accept it (it is not read), lookups keep working.
        if let Ok(index) = Index::open(&dir, &options(mode)) {
            assert_eq!(exercise(&index), 0, "{name}: a stray file must not disturb lookups");
            let r = index.check(&Query::Email("user@example.com"), UnixTime::from_seconds(NOW)).unwrap();
            assert_eq!(r.total_breaches, 4);
        }
        let report = verify(&dir).unwrap();
        assert!(!report.is_ok(), "{mode}: verify accepts a stray {name}");
        assert!(report.problems.iter().any(|p| p.contains(name)), "{name}: {:?}", report.problems);
    }
    // A stray sub-directory too.
    let dir = fx.copy();
    std::fs::create_dir(dir.join("subdir")).unwrap();
    let report = verify(&dir).unwrap();
    assert!(report.problems.iter().any(|p| p.contains("subdir")), "{:?}", report.problems);
}

#[test]
fn extra_file_is_named_by_verify_plain() {
    extra_file(HashMode::Plain);
}

#[test]
fn extra_file_is_named_by_verify_xxh3_64() {
    extra_file(HashMode::Xxh3_64);
}

fn manifest_damage(mode: HashMode) {
    let fx = Fixture::new(mode);
    let good = std::fs::read(fx.good.join("manifest.json")).unwrap();
    let text = String::from_utf8(good.clone()).unwrap();
    let digit = text.find("\"records\": 32").expect("records count in the manifest") + "\"records\": ".len();
    let mut cases: Vec<(String, Option<Vec<u8>>)> = vec![
        ("truncate to 0".into(), Some(Vec::new())),
        ("truncate to half".into(), Some(good[..good.len() / 2].to_vec())),
        ("one byte short".into(), Some(good[..good.len() - 2].to_vec())),
        ("invalid JSON".into(), Some(b"{\"manifest\": {".to_vec())),
        ("not an object".into(), Some(b"[1, 2, 3]\n".to_vec())),
        ("not UTF-8".into(), Some([&good[..20], &[0xff, 0xfe], &good[22..]].concat())),
        ("empty object".into(), Some(b"{}".to_vec())),
        ("delete".into(), None),
    ];
    for off in [10, good.len() / 3, good.len() / 2, digit, good.len() - 30] {
        let mut b = good.clone();
        b[off] ^= 0x01;
        cases.push((format!("flip at {off}"), Some(b)));
    }
    // A changed count with the old checksum.
    let mut b = good.clone();
    b[digit] = b'4';
    cases.push(("records 42 instead of 32".into(), Some(b)));
    for (what, bytes) in cases {
        let dir = fx.copy();
        match bytes {
            Some(b) => std::fs::write(dir.join("manifest.json"), b).unwrap(),
            None => std::fs::remove_file(dir.join("manifest.json")).unwrap(),
        }
        let err = Index::open(&dir, &options(mode)).expect_err(&what);
        assert!(err.to_string().contains("manifest.json"), "{what}: {err}");
        if what == "delete" {
            // Without a manifest the folder is not an index at all, for open and verify.
            assert!(matches!(err, OpenError::NotAnIndex { .. }), "{what}: {err:?}");
            let err = verify(&dir).expect_err(&what);
            assert!(err.to_string().contains("not a breachdex index (no manifest.json in it)"), "{err}");
            continue;
        }
        assert!(matches!(err, OpenError::Manifest { .. }), "{what}: not a manifest error: {err:?}");
        let report = verify(&dir).unwrap();
        assert!(!report.is_ok(), "{what}");
        assert!(report.problems.iter().any(|p| p.contains("manifest.json")), "{what}: {:?}", report.problems);
    }
}

#[test]
fn manifest_damage_is_a_manifest_error_plain() {
    manifest_damage(HashMode::Plain);
}

#[test]
fn manifest_damage_is_a_manifest_error_xxh3_64() {
    manifest_damage(HashMode::Xxh3_64);
}

#[test]
fn manifest_swapped_from_another_index_is_refused() {
    for mode in [HashMode::Plain, HashMode::Xxh3_64] {
        let fx = Fixture::new(mode);
        let dir = fx.copy();
        std::fs::copy(fx.other.join("manifest.json"), dir.join("manifest.json")).unwrap();
        let err = Index::open(&dir, &options(mode)).expect_err("another index's manifest");
        let msg = err.to_string();
        assert!(!msg.is_empty());
        assert!(!verify(&dir).unwrap().is_ok());
    }
}

/// Every single byte of every file, flipped, in memory: open and lookups never panic.
fn every_byte(mode: HashMode) -> Findings {
    let fx = Fixture::new(mode);
    let mut findings = Findings::default();
    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for e in std::fs::read_dir(&fx.good).unwrap() {
        let e = e.unwrap();
        files.insert(e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap());
    }
    let good = Index::from_files(files.clone(), &options(mode)).expect("pristine files open");
    assert_eq!(exercise(&good), 0);
    let mut opened = 0;
    let mut refused = 0;
    for name in files.keys().filter(|n| *n != "manifest.json") {
        let len = files[name].len();
        for off in 0..len {
            for mask in [0xffu8, 0x01] {
                let mut damaged = files.clone();
                damaged.get_mut(name).unwrap()[off] ^= mask;
                match Index::from_files(damaged, &options(mode)) {
                    Ok(index) => {
                        opened += 1;
                        exercise(&index);
                    }
                    Err(e) => {
                        refused += 1;
                        // <memory> indexes have no directory; the file must still be named.
                        let msg = e.to_string();
                        if !msg.contains(name.as_str()) {
                            let line = format!("{mode} {name} @ {off} ^ {mask:#04x}: {msg}");
                            if matches!(e, OpenError::Inconsistent(_)) {
                                findings.unnamed_inconsistent.push(line);
                            } else {
                                findings.failures.push(line);
                            }
                        }
                    }
                }
            }
        }
    }
    assert!(opened > 0 && refused > 0, "opened {opened}, refused {refused}");
    let f = &findings.failures;
    assert!(f.is_empty(), "{} cases:\n{}", f.len(), f[..f.len().min(20)].join("\n"));
    findings
}

#[test]
fn every_byte_flipped_never_panics_plain() {
    every_byte(HashMode::Plain);
}

#[test]
fn every_byte_flipped_never_panics_xxh3_64() {
    every_byte(HashMode::Xxh3_64);
}

#[test]
fn damaged_fst_does_not_panic_even_inside_the_library() {
    // Repro: flip byte 0xff at most offsets of email.fst's body, Index::from_files, then
    // lookup_email("user@example.com"): fst-0.4.7/src/raw/node.rs:302 panics "index out
    // of bounds"; FstReader::lookup catches it. A service built with panic = "abort"
    // (or one whose panic hook alerts) crashes instead of getting an error.
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let count = Arc::new(AtomicUsize::new(0));
    let me = std::thread::current().id();
    let c = count.clone();
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if std::thread::current().id() == me {
            c.fetch_add(1, Ordering::SeqCst);
        } else {
            previous(info);
        }
    }));
    let result = every_byte(HashMode::Plain);
    let _ = std::panic::take_hook();
    assert!(result.failures.is_empty());
    assert_eq!(count.load(Ordering::SeqCst), 0, "panics raised (and caught) inside the reader");
}

/// Damages `records.store` of a copy of the fixture in `mode` (`damage` edits the file's
/// bytes; the file's frame and sizes stay intact, so it opens), then: `records` of the
/// identity of row 0 fails naming the file and `what`, `check` (which reads hot rows
/// only) still answers, and `verify` names the file.
fn assert_store_damage_is_named(mode: HashMode, what: &str, damage: impl Fn(&mut Vec<u8>)) {
    let fx = Fixture::new(mode);
    let good = Index::open(&fx.good, &options(mode)).unwrap();
    let email = good.record(0).unwrap().get(Asset::Email).unwrap().expect("row 0 has an e-mail").to_owned();
    let dir = fx.copy();
    let path = dir.join("records.store");
    let mut bytes = std::fs::read(&path).unwrap();
    damage(&mut bytes);
    std::fs::write(&path, &bytes).unwrap();

    let index = Index::open(&dir, &options(mode)).unwrap();
    let policy = AssetPolicy::default();
    let err = index.records(&RecordsRequest::new(Query::Email(&email), &policy)).unwrap_err().to_string();
    assert!(err.contains("records.store") && err.contains(what), "{mode}: {err}");
    let check = index.check(&Query::Email(&email), UnixTime::from_seconds(NOW)).unwrap();
    assert!(check.total_breaches > 0, "{mode}: check reads no block and no directory");
    let report = verify(&dir).unwrap();
    assert!(report.problems.iter().any(|p| p.starts_with("records.store")), "{mode}: {:?}", report.problems);
}

/// A damaged block of the record store (its first 4 bytes zeroed: the frame header then
/// declares no content size) is named by `records` and `verify`.
#[test]
fn a_damaged_block_is_named_by_records_and_verify() {
    for mode in [HashMode::Plain, HashMode::Sha256] {
        assert_store_damage_is_named(mode, "block 0", |bytes| {
            // Header param 2 (offset 40) is the dictionary length; block 0 starts after
            // the 32-byte store header and the dictionary, with its frame header descriptor.
            let dict_len = u64::from_le_bytes(bytes[40..48].try_into().unwrap()) as usize;
            let block0 = HEADER_LEN + 32 + dict_len;
            bytes[block0..block0 + 4].copy_from_slice(&0u32.to_le_bytes());
        });
    }
}

/// A damaged block directory of the record store (the first word of the high bits of
/// its `first_row` Elias-Fano sequence zeroed, docs/FORMAT.md §3.10 and §9.8) is named
/// by `records` and `verify`.
#[test]
fn a_damaged_block_directory_is_named_by_records_and_verify() {
    for mode in [HashMode::Plain, HashMode::Sha256] {
        assert_store_damage_is_named(mode, "block directory", |bytes| {
            let param = |i: usize| u64::from_le_bytes(bytes[24 + 8 * i..32 + 8 * i].try_into().unwrap());
            let (blocks, dict_len, data_len) = (param(1), param(2) as usize, param(3) as usize);
            assert_eq!(bytes[HEADER_LEN + 16], 1, "{mode}: the Elias-Fano directory");
            // The directory follows the blocks: the `first_row` sequence's descriptor
            // (its low-bit width in the first byte), its low bits (`block_count + 1`
            // values), then its high bits.
            let first_rows = HEADER_LEN + 32 + dict_len + data_len;
            let low_width = u64::from(bytes[first_rows]);
            let high = first_rows + 8 + 8 * ((blocks + 1) * low_width).div_ceil(64) as usize;
            bytes[high..high + 8].fill(0);
        });
    }
}

/// Hostile frames in place of block 0 of the record store (a trimmed zstd frame,
/// docs/FORMAT.md §3.10), same length, checksums made right so that only the block
/// decoder can find them: no content size, a content size of 0 or above `max_raw_len`,
/// a checksum, a 128 MiB window, bytes after the frame. The index opens (open decodes no
/// block), `records` of the identity in block 0 fails naming the file, the block and
/// the reason, `check` answers, `verify` names the file and the block; nothing panics.
#[test]
fn hostile_block_frames_are_named() {
    let fx = Fixture::new(HashMode::Plain);
    let good = Index::open(&fx.good, &options(HashMode::Plain)).unwrap();
    let email = good.record(0).unwrap().get(Asset::Email).unwrap().expect("row 0 has an e-mail").to_owned();
    let file = std::fs::read(fx.good.join("records.store")).unwrap();
    let param = |i: usize| u64::from_le_bytes(file[24 + 8 * i..32 + 8 * i].try_into().unwrap());
    let params = [param(0), param(1), param(2), param(3)];
    let body = &file[HEADER_LEN..file.len() - 16];
    assert_eq!(body[17], 1, "builds write trimmed blocks (framing byte 1)");
    let max_raw_len = u32::from_le_bytes(body[4..8].try_into().unwrap());
    assert!(max_raw_len >= 256, "the sample's largest block is {max_raw_len} bytes");
    // Block 0: after the store header and the dictionary; its length is its frame's.
    let block0 = 32 + params[2] as usize;
    let mut framed = 0xFD2F_B528u32.to_le_bytes().to_vec();
    framed.extend_from_slice(&body[block0..]);
    let len = zstd::zstd_safe::find_frame_compressed_size(&framed).unwrap() - 4;
    let mut small = zstd::bulk::Compressor::new(1).unwrap();
    small.set_parameter(zstd::zstd_safe::CParameter::DictIdFlag(false)).unwrap();
    let small = small.compress(b"x").unwrap()[4..].to_vec();
    assert!(small.len() < len);
    // (what, the bytes written at the start of block 0, the reason expected)
    let cases: [(&str, Vec<u8>, &str); 6] = [
        ("no content size", vec![0x00], "does not declare its content size"),
        ("content size 0", vec![0x20, 0x00], "content size 0 is outside"),
        ("content size above max_raw_len", vec![0x60, 0xff, 0xff], "is outside 1..="),
        ("a checksum", vec![body[block0] | 0x04], "checksum"),
        ("a 128 MiB window", vec![0x40, (27 - 10) << 3, 0, 0], "window"),
        ("bytes after the frame", small, "bytes after the zstd frame"),
    ];
    for (what, bytes, reason) in cases {
        let mut bad = body.to_vec();
        bad[block0..block0 + bytes.len()].copy_from_slice(&bytes);
        let dir = fx.copy();
        reseal(&dir, "records.store", params, &bad);
        let index = Index::open(&dir, &options(HashMode::Plain)).unwrap();
        let policy = AssetPolicy::default();
        let err = index.records(&RecordsRequest::new(Query::Email(&email), &policy)).unwrap_err().to_string();
        assert!(err.starts_with("records.store: damaged: block 0 (rows 0-") && err.contains(reason), "{what}: {err}");
        let check = index.check(&Query::Email(&email), UnixTime::from_seconds(NOW)).unwrap();
        assert!(check.total_breaches > 0, "{what}: check reads no block");
        let report = verify(&dir).unwrap();
        let named = report.problems.iter().any(|p| p.starts_with("records.store") && p.contains("block 0"));
        assert!(named, "{what}: {:?}", report.problems);
    }
}

/// Replaces the framed file `name` of the index at `dir` by `params` and `body` (header
/// otherwise kept), with a correct footer and manifest entry: damage that only the
/// file's own reader can find.
fn reseal(dir: &Path, name: &str, params: [u64; 4], body: &[u8]) {
    let path = dir.join(name);
    let old = std::fs::read(&path).unwrap();
    let mut file = old[..HEADER_LEN].to_vec();
    file[16..24].copy_from_slice(&(body.len() as u64).to_le_bytes());
    for (i, p) in params.iter().enumerate() {
        file[24 + 8 * i..32 + 8 * i].copy_from_slice(&p.to_le_bytes());
    }
    file.extend_from_slice(body);
    let footer = xxhash_rust::xxh3::xxh3_64(&file);
    file.extend_from_slice(&footer.to_le_bytes());
    file.extend_from_slice(&old[old.len() - 8..]);
    std::fs::write(&path, &file).unwrap();
    let mut m = breachdex::read_manifest(dir).unwrap();
    let entry = m.files.iter_mut().find(|f| f.name == name).unwrap();
    entry.size = file.len() as u64;
    entry.xxh3 = format!("{:016x}", xxhash_rust::xxh3::xxh3_64(&file));
    std::fs::write(dir.join("manifest.json"), m.to_file_text().unwrap()).unwrap();
}

/// `records.hot` in its palette layout (what a build of the sample writes), damaged with
/// its checksums made right: a code past the palette, palette rows out of order, a body
/// one code short and a wrong palette length. Open names the file for the header and
/// palette damage; a code past the palette fails `check` and `records` of its identity
/// naming the file and the row; `verify` names the file every time; nothing panics.
#[test]
fn damage_to_the_hot_palette_is_named() {
    for mode in [HashMode::Plain, HashMode::Xxh3_64] {
        let fx = Fixture::new(mode);
        let good = std::fs::read(fx.good.join("records.hot")).unwrap();
        let param = |i: usize| u64::from_le_bytes(good[24 + 8 * i..32 + 8 * i].try_into().unwrap());
        let params = [param(0), param(1), param(2), param(3)];
        let [rows, width, _, palette] = params;
        assert_eq!(width, 1, "{mode}: the sample's records.hot has the palette layout");
        let body = &good[HEADER_LEN..good.len() - 16];
        let codes_at = 4 * palette as usize;
        assert_eq!(body.len(), codes_at + rows as usize);
        let index = Index::open(&fx.good, &options(mode)).unwrap();
        let email = index.record(0).unwrap().get(Asset::Email).unwrap().expect("row 0 has an e-mail").to_owned();
        let now = UnixTime::from_seconds(NOW);

        let mut bad_code = body.to_vec();
        bad_code[codes_at] = palette as u8;
        let mut swapped = body.to_vec();
        swapped[..8].rotate_left(4);
        let short = &body[..body.len() - 1];
        // (what, header parameters, body, the open error expected: `None` opens)
        let cases = [
            ("a code past the palette", params, bad_code.as_slice(), None),
            (
                "palette rows swapped",
                params,
                swapped.as_slice(),
                Some("palette rows 0 and 1 are not in strictly ascending order"),
            ),
            ("one code short", params, short, Some("do not fill a body")),
            ("palette one row shorter", [rows, 1, params[2], palette - 1], body, Some("do not fill a body")),
            ("palette of 0 rows", [rows, 1, params[2], 0], body, Some("a palette of 0 rows")),
            ("2-byte codes", [rows, 2, params[2], palette], body, Some("2-byte codes for a palette")),
        ];
        for (what, params, body, open_error) in cases {
            let dir = fx.copy();
            reseal(&dir, "records.hot", params, body);
            match (Index::open(&dir, &options(mode)), open_error) {
                (Err(e), Some(want)) => {
                    let msg = e.to_string();
                    assert!(msg.contains("records.hot: damaged") && msg.contains(want), "{mode} {what}: {msg}");
                }
                (Ok(index), None) => {
                    exercise(&index);
                    let err = index.check(&Query::Email(&email), now).unwrap_err().to_string();
                    let want =
                        format!("records.hot: damaged: row 0: code {palette} is past the palette of {palette} rows");
                    assert!(err.contains(&want), "{mode} {what}: {err}");
                    let policy = AssetPolicy::default();
                    let err = index.records(&RecordsRequest::new(Query::Email(&email), &policy)).unwrap_err();
                    assert!(err.to_string().contains(&want), "{mode} {what}: {err}");
                }
                (opened, _) => panic!("{mode} {what}: open gave {:?}", opened.err()),
            }
            let report = verify(&dir).unwrap();
            assert!(
                report.problems.iter().any(|p| p.starts_with("records.hot")),
                "{mode} {what}: {:?}",
                report.problems
            );
            std::fs::remove_dir_all(&dir).unwrap();
        }
    }
}
