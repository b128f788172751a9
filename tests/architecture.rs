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
