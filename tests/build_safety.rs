//! A build writes only its own output: it replaces nothing but an earlier breachdex index,
//! never the catalog, a dump or a user's file (as output or as rejects file); it checks
//! the memory budget and the output's parent before any work; a hashed build's rejects
//! file holds no input bytes unless asked; and ingest reports what it ignored.

use breachdex::Catalog;
use breachdex::{
    BuildError, BuildOptions, BuildSummary, MIN_MEMORY_BUDGET, MemoryBudgetError, UnsafeOutput, build_index,
};
use breachdex::{HashMode, Salt};
use std::path::{Path, PathBuf};

const DUMP: &str = "email,password\nalice@example.com,hunter2\nbob@example.com,swordfish\n";

/// A catalog of one source with the given `(file name, contents)` dumps, in `dir`.
fn catalog_with(dir: &Path, files: &[(&str, &str)]) -> Catalog {
    let mut entries = Vec::new();
    for (name, contents) in files {
        std::fs::write(dir.join(name), contents).unwrap();
        entries.push(serde_json::json!({ "path": name }));
    }
    let catalog = serde_json::json!({"sources": [{"id": 1, "name": "s1", "date": "2024-01-01", "files": entries}]});
    let path = dir.join("catalog.json");
    std::fs::write(&path, catalog.to_string()).unwrap();
    Catalog::load(&path).unwrap()
}

fn options() -> BuildOptions {
    BuildOptions {
        memory_budget: MIN_MEMORY_BUDGET,
        threads: Some(2),
        source_date_epoch: Some(1_700_000_000),
        ..BuildOptions::default()
    }
}

fn forced() -> BuildOptions {
    BuildOptions { force: true, ..options() }
}

fn build(catalog: &Catalog, out: &Path, options: &BuildOptions) -> Result<BuildSummary, BuildError> {
    build_index(catalog, out, options)
}

/// Every file below `dir` (recursively) with its contents.
fn tree(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let path = e.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push((path.clone(), std::fs::read(&path).unwrap_or_default()));
            }
        }
    }
    out.sort();
    out
}

#[track_caller]
fn assert_refused(err: BuildError, expected: &str) {
    let text = err.to_string();
    assert!(matches!(err, BuildError::Output(_)), "{err:?}");
    assert!(text.contains(expected), "message '{text}' should contain '{expected}'");
    assert!(!text.contains("--"), "library messages name no CLI flag: {text}");
}

#[test]
fn force_refuses_a_folder_of_user_files() {
    let tmp = tempfile::tempdir().unwrap();
    let catalog = catalog_with(tmp.path(), &[("d.csv", DUMP)]);
    let out = tmp.path().join("photos");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("holiday.jpg"), b"precious").unwrap();
    let err = build(&catalog, &out, &forced()).unwrap_err();
    assert_refused(err, "not a breachdex index");
    assert_eq!(std::fs::read(out.join("holiday.jpg")).unwrap(), b"precious");
}

#[test]
fn force_refuses_a_regular_file_and_a_symlink_to_one() {
    let tmp = tempfile::tempdir().unwrap();
    let catalog = catalog_with(tmp.path(), &[("d.csv", DUMP)]);
    let file = tmp.path().join("notes.txt");
    std::fs::write(&file, b"mine").unwrap();
    assert_refused(build(&catalog, &file, &forced()).unwrap_err(), "is a regular file, not a breachdex index");
    assert_eq!(std::fs::read(&file).unwrap(), b"mine");
    #[cfg(unix)]
    {
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        assert_refused(build(&catalog, &link, &forced()).unwrap_err(), "not a breachdex index");
        assert_eq!(std::fs::read(&file).unwrap(), b"mine");
        let dangling = tmp.path().join("dangling");
        std::os::unix::fs::symlink(tmp.path().join("nothing"), &dangling).unwrap();
        assert_refused(build(&catalog, &dangling, &forced()).unwrap_err(), "symbolic link to nothing");
    }
}

#[test]
fn force_refuses_the_catalog_folder_and_any_folder_holding_a_dump() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir_all(data.join("dumps")).unwrap();
    std::fs::write(data.join("dumps/d.csv"), DUMP).unwrap();
    let catalog_json = serde_json::json!({"sources": [{"id": 1, "name": "s1", "date": "2024-01-01",
        "files": [{"path": "data/dumps/d.csv"}]}]});
    std::fs::write(tmp.path().join("catalog.json"), catalog_json.to_string()).unwrap();
    let catalog = Catalog::load(&tmp.path().join("catalog.json")).unwrap();
    let before = tree(tmp.path());
    // The catalog's own folder, a folder holding a dump, and the dump file itself.
    for out in [tmp.path().to_path_buf(), data.clone(), data.join("dumps"), data.join("dumps/d.csv")] {
        let err = build(&catalog, &out, &forced()).unwrap_err();
        assert_refused(err, "holds the build's input");
    }
    // Also through a path that is not canonical.
    let err = build(&catalog, &data.join("dumps/../dumps"), &forced()).unwrap_err();
    assert_refused(err, "holds the build's input");
    assert_eq!(tree(tmp.path()), before, "nothing was touched");
}

#[test]
fn force_refuses_an_index_folder_holding_other_files() {
    let tmp = tempfile::tempdir().unwrap();
    let catalog = catalog_with(tmp.path(), &[("d.csv", DUMP)]);
    let out = tmp.path().join("idx");
    build(&catalog, &out, &options()).unwrap();
    std::fs::write(out.join("my-notes.txt"), b"keep me").unwrap();
    let err = build(&catalog, &out, &forced()).unwrap_err();
    assert_refused(err, "my-notes.txt");
    assert_eq!(std::fs::read(out.join("my-notes.txt")).unwrap(), b"keep me");
    // A folder whose manifest.json is someone else's is not an index either.
    let web = tmp.path().join("web");
    std::fs::create_dir(&web).unwrap();
    std::fs::write(web.join("manifest.json"), br#"{"name": "my app", "icons": []}"#).unwrap();
    assert_refused(build(&catalog, &web, &forced()).unwrap_err(), "without a breachdex manifest");
    assert!(web.join("manifest.json").exists());
}

#[test]
fn force_replaces_an_index_and_a_link_to_one() {
    let tmp = tempfile::tempdir().unwrap();
    let catalog = catalog_with(tmp.path(), &[("d.csv", DUMP)]);
    let out = tmp.path().join("idx");
    build(&catalog, &out, &options()).unwrap();
    let err = build(&catalog, &out, &options()).unwrap_err();
    assert!(matches!(err, BuildError::Output(UnsafeOutput::Exists(_))), "{err:?}");
    assert!(!err.to_string().contains("--"), "{err}");
    let salt = Salt::new(b"build-safety-test-salt-0123456789".to_vec()).unwrap();
    let hashed = BuildOptions { hash_mode: HashMode::Sha256, salt: Some(salt), ..forced() };
    let summary = build(&catalog, &out, &hashed).unwrap();
    assert_eq!(summary.kept, 2);
    let manifest = breachdex::manifest::Manifest::read(&out).unwrap();
    assert_eq!(manifest.hash_mode, "sha256");
    // Nothing is left beside it: no staging, spill or moved-aside folder.
    let names: Vec<String> =
        std::fs::read_dir(tmp.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert!(names.iter().all(|n| !n.starts_with('.')), "{names:?}");
    #[cfg(unix)]
    {
        let link = tmp.path().join("current");
        std::os::unix::fs::symlink(&out, &link).unwrap();
        build(&catalog, &link, &forced()).unwrap();
        assert!(link.is_dir() && !link.is_symlink(), "the link is replaced by the new index");
        assert!(out.join("manifest.json").exists(), "the index the link pointed to is untouched");
    }
}

#[test]
fn rejects_never_overwrite_a_user_file_or_an_input() {
    let tmp = tempfile::tempdir().unwrap();
    let catalog = catalog_with(tmp.path(), &[("d.csv", "email,password\nnot-an-email,x\nalice@example.com,pw\n")]);
    let out = tmp.path().join("idx");
    // The default rejects path is taken by a user's file.
    let default_rejects = tmp.path().join("idx.rejects.jsonl");
    std::fs::write(&default_rejects, b"my own notes\n").unwrap();
    let err = build(&catalog, &out, &options()).unwrap_err();
    assert_refused(err, "is not a rejects file");
    assert_eq!(std::fs::read(&default_rejects).unwrap(), b"my own notes\n");
    assert!(!out.exists());
    // The catalog or a dump as rejects path.
    for input in [tmp.path().join("catalog.json"), tmp.path().join("d.csv")] {
        let before = std::fs::read(&input).unwrap();
        let opts = BuildOptions { rejects_path: Some(input.clone()), ..options() };
        assert_refused(build(&catalog, &out, &opts).unwrap_err(), "holds the build's input");
        assert_eq!(std::fs::read(&input).unwrap(), before);
    }
    // A previous rejects file is replaced.
    std::fs::remove_file(&default_rejects).unwrap();
    let summary = build(&catalog, &out, &options()).unwrap();
    assert_eq!(summary.rejects_path.as_deref(), Some(default_rejects.as_path()));
    build(&catalog, &out, &forced()).unwrap();
}

#[test]
fn a_memory_budget_beyond_the_machine_is_refused_before_any_work() {
    let tmp = tempfile::tempdir().unwrap();
    let catalog = catalog_with(tmp.path(), &[("d.csv", DUMP)]);
    let out = tmp.path().join("idx");
    let opts = BuildOptions { memory_budget: 100 << 40, ..options() };
    let err = build(&catalog, &out, &opts).unwrap_err();
    if breachdex::internals::machine_memory().is_some() {
        assert!(matches!(err, BuildError::Memory(MemoryBudgetError::MoreThanMachine { .. })), "{err:?}");
        let text = err.to_string();
        assert!(text.contains("100 TiB") && text.contains("this machine's"), "{text}");
        assert!(!out.exists());
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 2, "only the catalog and the dump");
    }
    let opts = BuildOptions { memory_budget: 1 << 20, ..options() };
    let err = build(&catalog, &out, &opts).unwrap_err();
    assert_eq!(err.to_string(), "a memory budget of 1 MiB is below the minimum of 128 MiB");
}

#[test]
fn a_missing_parent_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let catalog = catalog_with(tmp.path(), &[("d.csv", DUMP)]);
    let out = tmp.path().join("missing/parent/dir");
    let err = build(&catalog, &out, &options()).unwrap_err();
    let text = err.to_string();
    let parent = tmp.path().join("missing/parent");
    assert!(text.contains(&format!("its parent folder {} does not exist", parent.display())), "{text}");
    assert!(!text.contains(".tmp-"), "{text}");
}

#[test]
fn a_hashed_build_keeps_no_raw_bytes_of_rejects_unless_asked() {
    const SECRETS: [&str; 4] = ["victim@@example.com", "Tr0ub4dor&3", "second.victim@", "correct-horse"];
    let dump = format!(
        "email,password,phone\n{},{}\n{},{}\nok@example.com,x,\"zebra-secret\n",
        SECRETS[0], SECRETS[1], SECRETS[2], SECRETS[3]
    );
    let jsonl = format!("{{\"email\": \"{}\", \"password\": [\"{}\"]}}\n", "third@victim.example", "array-secret");
    let tmp = tempfile::tempdir().unwrap();
    let catalog = catalog_with(tmp.path(), &[("d.csv", &dump), ("d.jsonl", &jsonl)]);
    let salt = Salt::new(b"build-safety-test-salt-0123456789".to_vec()).unwrap();
    let hashed = BuildOptions {
        hash_mode: HashMode::Sha256,
        salt: Some(salt),
        store: Some(breachdex::AssetSet::parse_list("password_hash,password_type").unwrap()),
        ..options()
    };
    let out = tmp.path().join("idx");
    let summary = build(&catalog, &out, &hashed).unwrap();
    assert!(!summary.rejects_raw);
    let rejects_path = summary.rejects_path.clone().expect("bad lines were rejected");
    let rejects = std::fs::read_to_string(&rejects_path).unwrap();
    assert_eq!(rejects.lines().count(), 4, "{rejects}");
    for line in rejects.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(v["file"].is_string() && v["line"].as_u64().unwrap() > 0 && v["reason"].is_string(), "{v}");
        assert!(v["raw"].is_null(), "{v}");
    }
    let secrets = SECRETS.iter().chain(&["third@victim.example", "array-secret", "zebra-secret"]);
    let mut files = tree(&out);
    files.push((rejects_path.clone(), rejects.into_bytes()));
    for secret in secrets.clone() {
        for (path, bytes) in &files {
            let found = bytes.windows(secret.len()).any(|w| w == secret.as_bytes());
            assert!(!found, "{} holds '{secret}'", path.display());
        }
    }
    // Asked for, the raw bytes are kept.
    let raw = BuildOptions { rejects_raw: true, ..hashed };
    let summary = build(&catalog, &out, &BuildOptions { force: true, ..raw }).unwrap();
    assert!(summary.rejects_raw);
    let rejects = std::fs::read_to_string(summary.rejects_path.unwrap()).unwrap();
    assert!(rejects.contains("Tr0ub4dor&3"), "{rejects}");
    // Plain builds keep them, as before.
    let plain = build(&catalog, &tmp.path().join("plain"), &options()).unwrap();
    assert!(plain.rejects_raw);
    assert!(std::fs::read_to_string(plain.rejects_path.unwrap()).unwrap().contains("Tr0ub4dor&3"));
}

#[test]
fn unknown_jsonl_keys_are_reported_once_per_file_like_unknown_csv_columns() {
    let tmp = tempfile::tempdir().unwrap();
    let jsonl = "{\"email\": \"a@example.com\", \"colour\": \"red\", \"pw\": \"x\"}\n\
                 {\"email\": \"b@example.com\", \"colour\": \"blue\", \"shoe_size\": 9}\n";
    let csv = "email,colour,pw\nc@example.com,green,y\n";
    let catalog = catalog_with(tmp.path(), &[("a.jsonl", jsonl), ("b.csv", csv)]);
    let summary = build(&catalog, &tmp.path().join("idx"), &options()).unwrap();
    assert_eq!(
        summary.unknown_columns,
        vec![
            ("a.jsonl".to_string(), vec!["colour".to_string(), "shoe_size".to_string()]),
            ("b.csv".to_string(), vec!["colour".to_string()]),
        ]
    );
    assert_eq!(summary.kept, 3);
    let manifest = breachdex::manifest::Manifest::read(&tmp.path().join("idx")).unwrap();
    assert!(manifest.stored_assets.contains(&"password_plaintext".to_string()), "pw is a password alias");
}

#[test]
fn a_header_joined_by_another_delimiter_suggests_the_delimiter_option() {
    let tmp = tempfile::tempdir().unwrap();
    for (header, delimiter) in [("mail;pass", ";"), ("email|pw", "|"), ("email\tpassword", "tab")] {
        let dump = format!("{header}\na@example.com\n");
        std::fs::write(tmp.path().join("d.csv"), &dump).unwrap();
        let catalog_json = serde_json::json!({"sources": [{"id": 1, "name": "s1", "date": "2024-01-01",
            "files": [{"path": "d.csv"}]}]});
        std::fs::write(tmp.path().join("catalog.json"), catalog_json.to_string()).unwrap();
        let err = Catalog::load(&tmp.path().join("catalog.json")).map(|_| ()).unwrap_err();
        let mut text = err.to_string();
        let mut source = std::error::Error::source(&err);
        while let Some(s) = source {
            text.push_str(&format!(": {s}"));
            source = s.source();
        }
        assert!(text.contains(&format!("\"delimiter\": \"{delimiter}\"")), "{header}: {text}");
    }
}

#[test]
fn option_errors_name_no_cli_flag() {
    let tmp = tempfile::tempdir().unwrap();
    let catalog = catalog_with(tmp.path(), &[("d.csv", DUMP)]);
    let out = tmp.path().join("idx");
    for opts in [
        BuildOptions { threads: Some(0), ..options() },
        BuildOptions { memory_budget: 1, ..options() },
        BuildOptions { hash_mode: HashMode::Sha256, ..options() },
    ] {
        let err = build(&catalog, &out, &opts).unwrap_err();
        assert!(!err.to_string().contains("--"), "{err}");
    }
    assert!(matches!(
        build(&catalog, &out, &BuildOptions { threads: Some(0), ..options() }),
        Err(BuildError::NoThreads)
    ));
}
