//! Replays every input kept under `fuzz/regressions/<target>/` through the same check
//! functions the fuzz targets run (`breachdex::internals::fuzzing`), as ordinary tests: fuzzing
//! itself stays out of CI, the bugs it found stay fixed. `build_and_query` inputs are
//! kept as decoded JSON cases (`*.json`; see `fuzz/README.md`).

use breachdex::DumpFormat;
use breachdex::internals::fuzzing::{
    BuildCase, changes_file_seeds, check_build_and_query, check_changes_file, check_dump_all, check_normalize,
    check_store_block, fixed_dictionary, store_block_seeds,
};
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

/// `open_index` inputs: the same check the target runs, on disk every time.
#[test]
fn open_index() {
    for (path, data) in inputs("open_index") {
        eprintln!("replaying {}", path.display());
        breachdex::internals::fuzzing::check_open_index(&data, true);
    }
}

/// `store_block`: the seeds (sample blocks written by the store writer, in every mode)
/// must parse; every single-byte change and every truncation of them must give a block
/// or an error; then every kept input.
#[test]
fn store_block() {
    assert!(!fixed_dictionary().is_empty(), "the trainer made no dictionary from the sample blocks");
    for (name, seed) in store_block_seeds() {
        assert!(check_store_block(&seed), "seed {name} does not parse");
        for i in 0..seed.len() {
            for flip in [0x01u8, 0x80] {
                let mut bad = seed.clone();
                bad[i] ^= flip;
                check_store_block(&bad);
            }
        }
        for len in 0..seed.len() {
            check_store_block(&seed[..len]);
        }
    }
    for (path, data) in inputs("store_block") {
        eprintln!("replaying {}", path.display());
        check_store_block(&data);
    }
}

/// `changes_file`: the seeds (change files written by the writer, plain and hashed, one
/// and several blocks) must read; every single-byte change and every truncation of them
/// must give entries or an error; then every kept input.
#[test]
fn changes_file() {
    for (name, seed) in changes_file_seeds() {
        assert!(check_changes_file(&seed), "seed {name} does not read");
        for i in 0..seed.len() {
            for flip in [0x01u8, 0x80] {
                let mut bad = seed.clone();
                bad[i] ^= flip;
                check_changes_file(&bad);
            }
        }
        for len in 0..seed.len() {
            check_changes_file(&seed[..len]);
        }
    }
    for (path, data) in inputs("changes_file") {
        eprintln!("replaying {}", path.display());
        check_changes_file(&data);
    }
}

/// Writes the `changes_file` seeds into `$BREACHDEX_SEED_DIR` (run by `fuzz/seeds.sh`).
#[test]
#[ignore = "writes the changes_file seed corpus; fuzz/seeds.sh runs it"]
fn write_changes_file_seeds() {
    let dir = PathBuf::from(std::env::var_os("BREACHDEX_SEED_DIR").expect("set BREACHDEX_SEED_DIR"));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, seed) in changes_file_seeds() {
        std::fs::write(dir.join(name), seed).unwrap();
    }
}

/// Writes the `store_block` seeds into `$BREACHDEX_SEED_DIR` (run by `fuzz/seeds.sh`).
#[test]
#[ignore = "writes the store_block seed corpus; fuzz/seeds.sh runs it"]
fn write_store_block_seeds() {
    let dir = PathBuf::from(std::env::var_os("BREACHDEX_SEED_DIR").expect("set BREACHDEX_SEED_DIR"));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, seed) in store_block_seeds() {
        std::fs::write(dir.join(name), seed).unwrap();
    }
}
