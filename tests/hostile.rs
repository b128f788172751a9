//! Hostile dumps (SPEC §3): the dirtiest input there is never crashes a build and is never
//! lost. Line-level problems (a 100 MB line, NUL bytes, invalid UTF-8 in any field, an
//! unclosed quote, JSON nested 10,000 deep, mixed line ends) are kept or rejected with a
//! reason, and the summary plus the rejects file account for every input line;
//! file-level problems (UTF-16, a missing file, a directory, `/dev/zero`) stop the build
//! before any work with an error naming the file. Files are written at test time. The
//! tests that run the `breachdex` binary are in crates/breachdex-cli/tests/hostile.rs.

use breachdex::Catalog;
use breachdex::{Asset, MAX_RECORD_BYTES, MAX_REJECT_RAW_BYTES};
use breachdex::{BuildOptions, BuildSummary, MIN_MEMORY_BUDGET, build_index};
use breachdex::{Index, OpenOptions};
use std::path::{Path, PathBuf};

/// A catalog of one source per `(file name, format)`, written into `dir`.
fn catalog(dir: &Path, files: &[(&str, &str)]) -> PathBuf {
    let sources: Vec<_> = files
        .iter()
        .enumerate()
        .map(|(i, (name, format))| {
            serde_json::json!({"id": i + 1, "name": format!("s{i}"), "date": "2024-01-01",
                "files": [{"path": name, "format": format}]})
        })
        .collect();
    let path = dir.join("catalog.json");
    std::fs::write(&path, serde_json::json!({ "sources": sources }).to_string()).unwrap();
    path
}

#[derive(Debug, serde::Deserialize)]
struct RejectLine {
    file: String,
    line: u64,
    lines: u32,
    reason: String,
    field: Option<String>,
    raw: String,
    raw_len: u64,
    truncated: bool,
}

struct Built {
    summary: BuildSummary,
    rejects: Vec<RejectLine>,
    index: Index,
}

fn build(dir: &Path, files: &[(&str, &[u8])], formats: &[&str]) -> Built {
    for (name, bytes) in files {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
    let pairs: Vec<(&str, &str)> = files.iter().zip(formats).map(|((n, _), f)| (*n, *f)).collect();
    let catalog = Catalog::load(&catalog(dir, &pairs)).unwrap();
    let out = dir.join("index");
    let rejects_path = dir.join("rejects.jsonl");
    let options = BuildOptions {
        memory_budget: MIN_MEMORY_BUDGET,
        threads: Some(2),
        rejects_path: Some(rejects_path.clone()),
        source_date_epoch: Some(1_700_000_000),
        ..BuildOptions::default()
    };
    let summary = build_index(&catalog, &out, &options).unwrap();
    let rejects: Vec<RejectLine> = match std::fs::read_to_string(&rejects_path) {
        Ok(text) => text.lines().map(|l| serde_json::from_str(l).unwrap()).collect(),
        Err(_) => Vec::new(),
    };
    // The accounting identities every build must satisfy.
    assert_eq!(summary.kept + summary.rejected_records + summary.duplicates, summary.records_read, "{summary:?}");
    assert_eq!(rejects.len() as u64, summary.rejected_records + summary.rejected_fields + summary.file_errors);
    assert_eq!(rejects.iter().filter(|r| r.field.is_none() && r.line > 0).count() as u64, summary.rejected_records);
    for r in &rejects {
        assert!(!r.reason.is_empty() && !r.file.is_empty());
        assert_eq!(r.truncated, r.raw_len > MAX_REJECT_RAW_BYTES as u64, "{r:?}");
    }
    let index = Index::open(&out, &OpenOptions::default()).unwrap();
    assert_eq!(index.len(), summary.kept);
    Built { summary, rejects, index }
}

/// (line, reason) of every whole-record reject.
fn record_rejects(rejects: &[RejectLine]) -> Vec<(u64, &str)> {
    rejects.iter().filter(|r| r.field.is_none()).map(|r| (r.line, r.reason.as_str())).collect()
}

fn password_of(index: &Index, email: &str) -> Option<String> {
    let row = index.lookup_email(email).unwrap().next()?;
    index.record(row).unwrap().get(Asset::PasswordPlaintext).unwrap().map(String::from)
}

#[test]
fn nul_bytes_and_invalid_utf8_in_every_field_position() {
    let dir = tempfile::tempdir().unwrap();
    let csv: &[u8] = b"email,username,password\n\
        \xFFa@b.c,u1,p1\n\
        a2@b.c,\xC3,p2\n\
        a3@b.c,u3,p3\xE2\x82\n\
        a4\0@b.c,u4,p4\n\
        a5@b.c,u\x005,p5\n\
        a6@b.c,u6,p\x006\n\
        \0,\0,\0\n\
        ok@b.c,ok,fine\n";
    let jsonl: &[u8] = b"{\"em\xFFail\":\"j1@b.c\"}\n\
        {\"email\":\"j2@b.c\xFF\"}\n\
        {\"email\":\"j3@b.c\",\"pw\":\"\xFF\"}\n\
        {\"email\":\"j4@b.c\\u0000\",\"username\":\"j4\"}\n\
        {\"email\":\"j5@b.c\",\"password\":\"nul\\u0000inside\"}\n\
        {\"email\":\"j6@b.c\"\0}\n";
    let combo: &[u8] = b"\xFFc1@b.c:pw\nc2@b.c:\xFF\nc3\0@b.c:pw\nc4@b.c:p\0w\n\0:\0\nc6@b.c:ok\n";
    let built = build(dir.path(), &[("d.csv", csv), ("d.jsonl", jsonl), ("d.txt", combo)], &["csv", "jsonl", "combo"]);
    let s = &built.summary;
    assert_eq!(s.records_read, 8 + 6 + 6);
    let by_file = |file: &str| -> Vec<(u64, &str)> {
        built
            .rejects
            .iter()
            .filter(|r| r.file == file && r.field.is_none())
            .map(|r| (r.line, r.reason.as_str()))
            .collect()
    };
    // Invalid UTF-8 anywhere in a line rejects the line, naming the byte.
    assert_eq!(
        by_file("d.csv"),
        [
            (2, "invalid UTF-8 at byte 0"),
            (3, "invalid UTF-8 at byte 7"),
            (4, "invalid UTF-8 at byte 12"),
            (
                8,
                "no valid identifier (email: contains a control character (U+0000), username: contains a control character (U+0000))"
            ),
        ]
    );
    assert_eq!(
        by_file("d.jsonl")[..3],
        [(1, "invalid UTF-8 at byte 4"), (2, "invalid UTF-8 at byte 16"), (3, "invalid UTF-8 at byte 24")]
    );
    assert!(by_file("d.jsonl")[3].1.starts_with("invalid JSON"), "{:?}", by_file("d.jsonl"));
    assert_eq!(by_file("d.jsonl").len(), 4);
    assert_eq!(
        by_file("d.txt"),
        [
            (1, "invalid UTF-8 at byte 0"),
            (2, "invalid UTF-8 at byte 7"),
            (3, "no valid identifier (email: contains a control character (U+0000), username: absent)"),
            (5, "no valid identifier (email: absent, username: contains a control character (U+0000))"),
        ]
    );
    // A NUL in one field costs that field only, when an identifier remains.
    let field_rejects: Vec<(&str, u64, &str)> =
        built.rejects.iter().filter_map(|r| r.field.as_deref().map(|f| (r.file.as_str(), r.line, f))).collect();
    for expected in [
        ("d.csv", 5, "email"),
        ("d.csv", 6, "username"),
        ("d.csv", 7, "password_plaintext"),
        ("d.jsonl", 4, "email"),
        ("d.jsonl", 5, "password_plaintext"),
        ("d.txt", 4, "password_plaintext"),
    ] {
        assert!(field_rejects.contains(&expected), "{expected:?} not in {field_rejects:?}");
    }
    let index = &built.index;
    assert!(index.lookup_username("u4").unwrap().next().is_some(), "a bad e-mail keeps the username");
    assert_eq!(password_of(index, "a6@b.c"), None);
    assert_eq!(password_of(index, "ok@b.c").as_deref(), Some("fine"));
    assert_eq!(password_of(index, "c6@b.c").as_deref(), Some("ok"));
    assert!(index.lookup_email("c4@b.c").unwrap().next().is_some());
    // The escaped raw bytes show what was wrong.
    assert!(built.rejects.iter().any(|r| r.raw.contains("\\xff") || r.raw.contains("\\xFF")), "raw bytes escaped");
}

#[test]
fn mixed_line_ends_and_empty_files() {
    let dir = tempfile::tempdir().unwrap();
    // LF, CRLF, a lone CR (old Mac: not a line end, it stays inside the value), blank
    // lines of both kinds, no final line end.
    let combo: &[u8] = b"\xEF\xBB\xBFa@b.c:1\r\nb@b.c:2\n\r\n\nc@b.c:3\rd@b.c:4\ne@b.c:5";
    let csv: &[u8] = b"email,password\r\nx@y.z,\"multi\r\nline\"\r\n\r\ny@y.z,2";
    let built = build(
        dir.path(),
        &[("m.txt", combo), ("m.csv", csv), ("empty.txt", b""), ("empty.csv", b""), ("bom.jsonl", b"\xEF\xBB\xBF")],
        &["combo", "csv", "combo", "csv", "jsonl"],
    );
    assert_eq!(built.summary.records_read, 4 + 2);
    assert_eq!(built.summary.kept, 6);
    assert!(built.rejects.is_empty());
    let index = &built.index;
    assert_eq!(password_of(index, "a@b.c").as_deref(), Some("1"));
    assert_eq!(password_of(index, "c@b.c").as_deref(), Some("3\rd@b.c:4"));
    assert_eq!(password_of(index, "e@b.c").as_deref(), Some("5"));
    assert_eq!(password_of(index, "x@y.z").as_deref(), Some("multi\r\nline"));
    assert!(index.lookup_email("d@b.c").unwrap().next().is_none());
}

#[test]
fn csv_quote_that_never_closes() {
    let dir = tempfile::tempdir().unwrap();
    // Short: the open quote swallows the rest of the file as one rejected record.
    let short: &[u8] = b"email,pw\nkept@b.c,1\n\"open@b.c,2\nlost1@b.c,3\n\nlost2@b.c,4\n";
    // Long: the swallowed record passes the 1 MiB limit, framing resyncs at the next
    // line end, and the lines after it are read again.
    let mut long = b"email,pw\n\"open@b.c,x\n".to_vec();
    let filler = b"filler@b.c,pw\n";
    let swallowed = MAX_RECORD_BYTES / filler.len() + 1;
    for _ in 0..swallowed + 100 {
        long.extend_from_slice(filler);
    }
    long.extend_from_slice(b"last@b.c,9\n");
    let built = build(dir.path(), &[("s.csv", short), ("l.csv", &long)], &["csv", "csv"]);
    let rejects = record_rejects(&built.rejects);
    assert_eq!(rejects[0], (3, "unclosed quote in field 1"));
    // The swallowed record names every line it took: lines 3 to 6 of s.csv.
    assert_eq!(built.rejects.iter().find(|r| r.file == "s.csv").map(|r| r.lines), Some(4));
    let long_reject = built.rejects.iter().find(|r| r.file == "l.csv").unwrap();
    assert_eq!(long_reject.line, 2);
    assert!(long_reject.lines > 1000, "the cut record spans the lines it swallowed: {}", long_reject.lines);
    assert!(long_reject.reason.contains("more than the 1048576 byte limit"), "{}", long_reject.reason);
    assert!(long_reject.truncated);
    assert_eq!(rejects.len(), 2);
    let s = &built.summary;
    // short: 2 records (one kept, one swallowing 4 lines); long: 1 rejected + the rest.
    let long_read = s.sources[1].records_read;
    assert_eq!(s.sources[0].records_read, 2);
    // l.csv: the swallowed record holds its first line (`"open@b.c,x`, 11 bytes) and
    // `m` filler lines; every other line is a record of its own.
    let first = "\"open@b.c,x\n".len() as u64;
    let per_line = filler.len() as u64;
    assert_eq!((long_reject.raw_len + 1 - first) % per_line, 0);
    let m = (long_reject.raw_len + 1 - first) / per_line;
    assert_eq!(u64::from(long_reject.lines), 1 + m, "the rejects file names every swallowed line");
    let fillers = (swallowed + 100) as u64;
    assert_eq!(long_read, 1 + (fillers - m) + 1);
    let total_lines = 1 + 1 + fillers + 1;
    assert_eq!(1 + (1 + m) + (fillers - m) + 1, total_lines, "every line is accounted for");
    assert_eq!(s.sources[1].duplicates, fillers - m - 1, "identical filler lines are stored once");
    assert!(built.index.lookup_email("last@b.c").unwrap().next().is_some());
    assert!(built.index.lookup_email("lost1@b.c").unwrap().next().is_none());
}

#[test]
fn json_nested_ten_thousand_deep() {
    let dir = tempfile::tempdir().unwrap();
    let depth = 10_000;
    let arrays = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    let objects = format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth));
    let lines = [
        format!("{{\"email\":\"deep1@b.c\",\"junk\":{arrays}}}"),
        format!("{{\"email\":\"deep2@b.c\",\"junk\":{objects}}}"),
        format!("{{\"email\":{arrays}}}"),
        arrays.clone(),
        objects,
        "[".repeat(depth),
        "{\"email\":\"after@b.c\"}".to_owned(),
    ];
    let text = lines.join("\n");
    let built = build(dir.path(), &[("deep.jsonl", text.as_bytes())], &["jsonl"]);
    assert_eq!(built.summary.records_read, 7);
    assert_eq!(built.summary.kept, 3);
    let rejects = record_rejects(&built.rejects);
    assert_eq!(rejects.iter().map(|r| r.0).collect::<Vec<_>>(), [3, 4, 5, 6]);
    assert_eq!(rejects[0].1, "key 'email' holds an array; expected a string or a number");
    for (_, reason) in &rejects[1..] {
        assert!(reason.starts_with("invalid JSON") || reason.contains("no valid identifier"), "{reason}");
    }
    for e in ["deep1@b.c", "deep2@b.c", "after@b.c"] {
        assert!(built.index.lookup_email(e).unwrap().next().is_some(), "{e}");
    }
}

/// The catalog-level problems stop everything before work (the CLI side, no index and no
/// rejects file, is tested in crates/breachdex-cli/tests/hostile.rs).
#[test]
fn file_level_problems_stop_the_build_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("good.txt"), b"a@b.c:pw\n").unwrap();
    std::fs::write(dir.path().join("utf16.txt"), b"\xFF\xFEa\0@\0b\0:\0x\0\n\0").unwrap();
    std::fs::write(dir.path().join("utf16be.csv"), b"\xFE\xFF\0e\0m").unwrap();
    std::fs::create_dir(dir.path().join("adir.txt")).unwrap();
    let mut cases = vec![
        ("missing.txt", "missing.txt: cannot open the file"),
        ("adir.txt", "adir.txt: is a directory, not a regular file"),
        ("utf16.txt", "utf16.txt: starts with a UTF-16 byte order mark; UTF-16 is not supported"),
        ("utf16be.csv", "utf16be.csv: starts with a UTF-16 byte order mark"),
    ];
    if Path::new("/dev/zero").exists() {
        cases.push(("/dev/zero", "/dev/zero: is a device, pipe or socket, not a regular file"));
    }
    for (bad, expected) in cases {
        let path = catalog(dir.path(), &[("good.txt", "combo"), (bad, "combo")]);
        let err = Catalog::load(&path).unwrap_err();
        let chain = format!("{err}: {}", std::error::Error::source(&err).map(|s| s.to_string()).unwrap_or_default());
        assert!(chain.contains(expected), "{bad}: {chain}");
        assert!(chain.contains("source 's1'"), "names the source: {chain}");
    }
}
