//! The `open_index` check (SPEC §9): any bytes in any file of an index give an error at
//! open, or an index whose lookups, checks, record reads and `records` pages (in a
//! version 2 index: every block they reach decompressed and parsed) return results or
//! errors, never a panic, a hang or an out-of-bounds read; the same for the password index
//! (counts, ranges, Pwned Passwords text).

use crate::Asset;
use crate::build::{BuildOptions, MIN_MEMORY_BUDGET, build_index};
use crate::catalog::Catalog;
use crate::date::UnixTime;
use crate::format::manifest::{self, Manifest};
use crate::index::{IdentifierKind, Index, OpenError, OpenOptions, Query, VerifyReport, verify};
use crate::keymode::{KeyDeriver, to_hex};
use crate::normalize::{normalize_email, normalize_username};
use crate::query::{AssetPolicy, RecordsRequest};
use crate::{HashMode, PasswordHash, PasswordHashKind, PasswordPrefix, Salt};
use std::collections::BTreeMap;
use std::sync::OnceLock;

/// Fixed salt of the hashed sample.
const SALT: &[u8] = b"breachdex-fuzz-salt-0123456789";
/// Build time and check time: 2026-11-23T12:00:00Z.
const NOW_SECONDS: i64 = 1_795_435_200;
const NOW: UnixTime = UnixTime::from_seconds(NOW_SECONDS);
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
/// Passwords whose SHA-1 and NTLM hashes are counted and whose ranges are read (present
/// in the sample or not: a damaged password file must give errors either way).
const PASSWORDS: &[&str] = &["password", "123456", "hunter2", "Summer2024!", "qwerty", "letmein", "not-in-the-sample"];
/// Range text answers built per run at most (each reads one range).
const RANGE_TEXT_PREFIXES: [u32; 3] = [0, 0x5BAA6, PasswordPrefix::MAX];

struct BuiltIndex {
    salt: Option<Salt>,
    files: BTreeMap<String, Vec<u8>>,
    names: Vec<String>,
    manifest: Manifest,
    /// `--key` queries: every sample identity's stored key, hex.
    key_hex: Vec<String>,
}

fn build(mode: HashMode) -> BuiltIndex {
    let catalog_path = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/sample/catalog.json");
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
        source_date_epoch: Some(NOW_SECONDS),
        // The plain sample carries the key maps' accelerators, so inputs reach them.
        accelerator: !mode.is_hashed(),
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

/// The first page of `records` of `query` and the page its cursor points to: in a
/// version 2 index, every block holding one of the matches is decompressed and parsed.
fn read_records(index: &Index, query: Query<'_>) {
    let policy = AssetPolicy::default();
    let first = RecordsRequest { query, policy: &policy, cursor: None, limit: Some(2), output_salt: None };
    if let Ok(page) = index.records(&first) {
        std::hint::black_box(page.results.len());
        let next = RecordsRequest { cursor: Some(page.cursor.as_str()), ..first };
        let _ = std::hint::black_box(index.records(&next).map(|p| p.results.len()));
    }
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
        read_records(index, Query::Email(e));
    }
    for u in USERNAMES {
        if let Ok(m) = index.lookup_username(u) {
            read_rows(index, m);
        }
        let _ = std::hint::black_box(index.check(&Query::Username(u), NOW).map(|r| r.total_breaches));
        read_records(index, Query::Username(u));
    }
    exercise_passwords(index);
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

/// The password index (SPEC §12): counts, ranges (every entry) and Pwned Passwords text,
/// padded and not, for hashes in and out of the sample.
fn exercise_passwords(index: &Index) {
    let Some(passwords) = index.passwords() else { return };
    std::hint::black_box((passwords.len(PasswordHashKind::Sha1), passwords.len(PasswordHashKind::Ntlm)));
    let mut text = Vec::new();
    for password in PASSWORDS {
        for hash in [PasswordHash::sha1_of(password), PasswordHash::ntlm_of(password)] {
            let _ = std::hint::black_box(passwords.count(&hash));
            if let Ok(range) = passwords.range(hash.kind(), hash.prefix()) {
                for entry in range {
                    let _ = std::hint::black_box(entry.map(|e| e.count()));
                }
            }
        }
    }
    for kind in [PasswordHashKind::Sha1, PasswordHashKind::Ntlm] {
        for prefix in RANGE_TEXT_PREFIXES.into_iter().filter_map(PasswordPrefix::from_value) {
            for seed in [None, Some(7)] {
                text.clear();
                let _ = std::hint::black_box(passwords.write_range_text(kind, prefix, seed, &mut text));
            }
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
    // A directory without a manifest is not an index: as damning as any problem.
    let report = verify(tmp.path())
        .unwrap_or_else(|e| VerifyReport { files_checked: Vec::new(), problems: vec![e.to_string()] });
    if let Some(name) = raw_data_change {
        assert!(!report.is_ok(), "verify missed a changed byte in {name}");
    }
    if report.is_ok() {
        let salt_problem =
            matches!(on_disk, Err(OpenError::WrongSalt | OpenError::SaltRequired(_) | OpenError::SaltUnused));
        assert!(on_disk.is_ok() || salt_problem, "verify passes an index that does not open: {:?}", on_disk.err());
    }
}

/// The `open_index` check: applies the mutation `data` describes to one file of a
/// sample index and asserts that opening and querying it returns results or errors,
/// never panics; with `on_disk`, also that `Index::open` agrees with
/// `Index::from_files` and that `verify` flags every raw change to a data file.
///
/// Input layout: `[index, file, op, rest…]`.
/// - `index` picks the sample built in `plain` or `xxh3-64` mode (fixed salt);
/// - `file` picks one file of that index, `manifest.json` included;
/// - `op & 3`: 0 overwrite bytes, 1 truncate then overwrite, 2 replace the whole file
///   with `rest`, 3 append `rest`; overwrites are 5-byte records
///   `[offset u32 LE, value]`, offset modulo the length, counted from the end when its
///   top bit is set;
/// - `op & 0x80` (fixup): make the change consistent where a checksum would reject it
///   at once: a changed data file gets its new size and XXH3 in a resealed manifest; a
///   changed manifest gets its own checksum recomputed, so mutations reach the file
///   readers instead of stopping at the size check.
pub fn check_open_index(data: &[u8], on_disk: bool) {
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
    let on_disk_files = on_disk.then(|| files.clone());
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
