//! Invariant: the reader and the query layer do not depend on the builder. Nothing under
//! `src/index*`, `src/query/`, `src/format/` or `src/handle.rs` imports from `build`, so
//! an embedder that only reads indexes reads code that knows nothing of building them.

use std::path::{Path, PathBuf};

fn rust_files(path: &Path, out: &mut Vec<PathBuf>) {
    if path.is_dir() {
        let mut entries: Vec<_> = std::fs::read_dir(path).unwrap().map(|e| e.unwrap().path()).collect();
        entries.sort();
        for entry in entries {
            rust_files(&entry, out);
        }
    } else if path.is_file() && path.extension().is_some_and(|e| e == "rs") {
        out.push(path.to_path_buf());
    }
}

#[test]
fn reader_and_query_code_never_import_the_builder() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    for part in ["index", "index.rs", "query", "format", "handle.rs"] {
        rust_files(&src.join(part), &mut files);
    }
    assert!(files.iter().any(|f| f.ends_with("index/mod.rs")), "the reader's files were not found: {files:?}");
    let mut offenders = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            if code.contains("crate::build") || code.contains("build::") || code.contains("breachdex::build") {
                offenders.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(offenders.is_empty(), "reader/query code imports the builder:\n{}", offenders.join("\n"));
}

/// The public surface is deliberate: the crate root re-exports what embedders use, and the
/// only public modules are the small `manifest` re-export module and the hidden,
/// explicitly unstable `internals`.
#[test]
fn the_only_public_modules_are_manifest_and_internals() {
    let lib = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs")).unwrap();
    let public: Vec<&str> = lib
        .lines()
        .filter_map(|l| l.trim().strip_prefix("pub mod "))
        .map(|rest| rest.trim_end_matches([';', '{', ' ']))
        .collect();
    assert_eq!(public, ["internals", "manifest"], "public modules of src/lib.rs");
    let hidden = lib
        .lines()
        .zip(lib.lines().skip(1))
        .any(|(a, b)| a.trim() == "#[doc(hidden)]" && b.trim() == "pub mod internals;");
    assert!(hidden, "internals must stay #[doc(hidden)]");
}

/// Embedders reach the whole workflow through root paths alone.
#[test]
fn an_embedder_needs_only_root_paths() {
    use breachdex::{
        AssetPolicy, BuildOptions, Catalog, CheckResult, HashMode, Index, IndexHandle, OpenOptions, Query,
        RecordsRequest, UnixTime, build_index, verify,
    };
    let dir = tempfile::tempdir().unwrap();
    let catalog = Catalog::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/sample/catalog.json")).unwrap();
    let out = dir.path().join("idx");
    let options =
        BuildOptions { hash_mode: HashMode::Plain, source_date_epoch: Some(1_700_000_000), ..BuildOptions::default() };
    build_index(&catalog, &out, &options).unwrap();
    assert!(verify(&out).unwrap().is_ok());
    let index = Index::open(&out, &OpenOptions::default()).unwrap();
    let result: CheckResult<'_> =
        index.check(&Query::Email("USER@Example.com"), UnixTime::from_seconds(1_800_000_000)).unwrap();
    assert_eq!(result.breaches.len(), 4);
    let policy = AssetPolicy::builder().build().unwrap();
    let page = index.records(&RecordsRequest::new(Query::Email("user@example.com"), &policy)).unwrap();
    assert_eq!(page.results.len(), 5);
    let handle = IndexHandle::open(&out, OpenOptions::default()).unwrap();
    assert!(handle.current().lookup_email("user@example.com").unwrap().next().is_some());
}
