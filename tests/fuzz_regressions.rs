//! Replays every input kept under `fuzz/regressions/<target>/` through the same check
//! functions the fuzz targets run (`breachdex::fuzzing`), as ordinary tests: fuzzing
//! itself stays out of CI, the bugs it found stay fixed. `build_and_query` inputs are
//! kept as decoded JSON cases (`*.json`; see `fuzz/README.md`).

use breachdex::catalog::DumpFormat;
use breachdex::fuzzing::{BuildCase, check_build_and_query, check_dump_all, check_normalize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions").join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else { return Vec::new() };
    let mut files: Vec<PathBuf> = entries.flatten().map(|e| e.path()).filter(|p| p.is_file() && !is_note(p)).collect();
    files.sort();
    files.into_iter().map(|p| (p.clone(), std::fs::read(&p).unwrap())).collect()
}

fn is_note(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "md")
}

fn replay_dump(target: &str, format: DumpFormat) {
    let dir = tempfile::tempdir().unwrap();
    for (path, data) in inputs(target) {
        eprintln!("replaying {}", path.display());
        check_dump_all(dir.path(), format, &data);
    }
}

#[test]
fn parse_csv() {
    replay_dump("parse_csv", DumpFormat::Csv);
}

#[test]
fn parse_jsonl() {
    replay_dump("parse_jsonl", DumpFormat::Jsonl);
}

#[test]
fn parse_combo() {
    replay_dump("parse_combo", DumpFormat::Combo);
}

#[test]
fn normalize() {
    for (path, data) in inputs("normalize") {
        eprintln!("replaying {}", path.display());
        check_normalize(&String::from_utf8_lossy(&data));
    }
}

#[test]
fn build_and_query() {
    let dir = tempfile::tempdir().unwrap();
    for (path, data) in inputs("build_and_query") {
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        eprintln!("replaying {}", path.display());
        let case: BuildCase = serde_json::from_slice(&data).unwrap();
        check_build_and_query(dir.path(), &case);
    }
}

/// The checks themselves, on inputs every target must handle (so the replay is not
/// vacuous while a target has no kept regression yet).
#[test]
fn checks_accept_known_hostile_inputs() {
    let dir = tempfile::tempdir().unwrap();
    for format in [DumpFormat::Csv, DumpFormat::Jsonl, DumpFormat::Combo] {
        for data in [
            &b""[..],
            b"\xEF\xBB\xBF",
            b"\xFF\xFEe\0",
            b"email,user,pw\r\na@b.c,,x\r\n\n\"q\nq\",\xFF,\0\r",
            b"{\"email\":\"a@b.c\"}\n\r\n{\"mail\":[[[]]]}\nx:y\rz",
            b"email\n\"never closed\nand more\n\n",
        ] {
            check_dump_all(dir.path(), format, data);
        }
    }
    for text in ["User@Bücher.DE", "İ@x.tr", "ǅ", " \u{3000}", "a@b@c", "x@\u{ad}"] {
        check_normalize(text);
    }
    let case: BuildCase = serde_json::from_str(
        r#"{"mode": 1, "records": [
            {"source": 0, "email": "Alice@Example.com", "username": "Bob", "password": "pw\n2"},
            {"source": 1, "email": " alice@example.com ", "username": null, "password": "p\"w"},
            {"source": 1, "email": " alice@example.com ", "username": null, "password": "p\"w"},
            {"source": 2, "email": "bad@@x", "username": "x\u0000", "password": null},
            {"source": 2, "email": null, "username": "BOB", "password": null}],
          "queries": ["ALICE@example.com", "nobody@x.y", "bob"]}"#,
    )
    .unwrap();
    check_build_and_query(dir.path(), &case);
}

/// `open_index` inputs: the target's logic lives in its own file, so this replays the
/// same input layout (`[index, file, op, rest…]`, see `fuzz_targets/open_index.rs`) on
/// the sample built in `plain` and `xxh3-64` mode, and asserts what the target asserts
/// in every run: opening and querying the damaged index returns, never panics.
#[test]
fn open_index() {
    use breachdex::build::{BuildOptions, MIN_MEMORY_BUDGET, build_index};
    use breachdex::catalog::Catalog;
    use breachdex::format::manifest::{self, Manifest};
    use breachdex::index::{Index, OpenOptions, Query};
    use breachdex::{HashMode, Salt};

    let regressions = inputs("open_index");
    if regressions.is_empty() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let catalog = Catalog::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/sample/catalog.json")).unwrap();
    type Sample = (Option<Salt>, BTreeMap<String, Vec<u8>>, Manifest);
    let samples: Vec<Sample> = [HashMode::Plain, HashMode::Xxh3_64]
        .into_iter()
        .map(|mode| {
            let salt = mode.is_hashed().then(|| Salt::new(b"breachdex-fuzz-salt-0123456789".to_vec()).unwrap());
            let out = tmp.path().join(mode.name());
            let options = BuildOptions {
                hash_mode: mode,
                salt: salt.clone(),
                memory_budget: MIN_MEMORY_BUDGET,
                threads: Some(1),
                rejects_path: Some(tmp.path().join("rejects.jsonl")),
                source_date_epoch: Some(1_795_435_200),
                ..BuildOptions::default()
            };
            build_index(&catalog, &out, &options).unwrap();
            let files = std::fs::read_dir(&out)
                .unwrap()
                .flatten()
                .map(|e| (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap()))
                .collect();
            (salt, files, Manifest::read(&out).unwrap())
        })
        .collect();
    for (path, data) in regressions {
        eprintln!("replaying {}", path.display());
        let [which, file_pick, op, rest @ ..] = data.as_slice() else { continue };
        let (salt, files, manifest) = &samples[usize::from(*which) % samples.len()];
        let names: Vec<&String> = files.keys().collect();
        let name = names[usize::from(*file_pick) % names.len()].clone();
        let mut bytes = files[&name].clone();
        let overwrite = |bytes: &mut Vec<u8>, records: &[u8]| {
            if bytes.is_empty() {
                return;
            }
            for rec in records.chunks_exact(5) {
                let raw = u32::from_le_bytes([rec[0], rec[1], rec[2], rec[3]]);
                let off = (raw & 0x7fff_ffff) as usize % bytes.len();
                let pos = if raw & 0x8000_0000 != 0 { bytes.len() - 1 - off } else { off };
                bytes[pos] = rec[4];
            }
        };
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
        let mut files = files.clone();
        if op & 0x80 != 0 && name != manifest::FILE_NAME {
            let mut m = manifest.clone();
            if let Some(entry) = m.files.iter_mut().find(|f| f.name == name) {
                entry.size = bytes.len() as u64;
                entry.xxh3 = format!("{:016x}", xxhash_rust::xxh3::xxh3_64(&bytes));
            }
            files.insert(manifest::FILE_NAME.to_string(), m.to_file_text().unwrap().into_bytes());
        }
        files.insert(name, bytes);
        if let Ok(index) = Index::from_files(files, &OpenOptions { salt: salt.clone(), populate: false }) {
            for e in ["user@example.com", "müller@bücher.de", "nobody@absent.invalid"] {
                if let Ok(rows) = index.lookup_email(e) {
                    rows.take(256).for_each(|r| drop(index.record(r).map(|v| v.document_id())));
                }
                let _ = index.check(&Query::Email(e), 1_795_435_200);
            }
            for u in ["darkstar99", "alice", "Retro_Gamer", "nobody-here"] {
                if let Ok(rows) = index.lookup_username(u) {
                    rows.take(256).for_each(|r| drop(index.record(r).map(|v| v.document_id())));
                }
                let _ = index.check(&Query::Username(u), 1_795_435_200);
            }
        }
    }
}
