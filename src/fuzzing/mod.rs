//! Check functions shared by the fuzz targets (`fuzz/`) and their regression replay
//! (`tests/fuzz_regressions.rs`), so a crash input kept under `fuzz/regressions/` runs
//! exactly the code the fuzzer ran. Not part of the API: every function panics when
//! an invariant is broken.

#![doc(hidden)]

mod changes_file;
mod open_index;
mod store_block;
pub use changes_file::{changes_file_seeds, check_changes_file};
pub use open_index::check_open_index;
pub use store_block::{
    StoreBlockMode, check_store_block, encode_store_block_input, fixed_dictionary, store_block_seeds,
};

use crate::asset::Asset;
use crate::build::{BuildOptions, MIN_MEMORY_BUDGET, build_index};
use crate::catalog::Catalog;
use crate::index::{Index, OpenOptions, Query};
use crate::ingest::{Compression, DumpFile, DumpFormat, DumpReader, FrameKind, IngestError, validate};
use crate::normalize::{
    MAX_EMAIL_BYTES, MAX_USERNAME_BYTES, normalize_email, normalize_email_slow, normalize_username,
    normalize_username_slow,
};
use crate::{HashMode, Salt};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// What [`check_dump`] saw: every physical line is blank, part of the CSV header, or in
/// exactly one frame, and every frame is kept or rejected with a reason.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DumpAccount {
    /// Physical lines of the input.
    pub lines: u64,
    /// Blank lines (only white space that framing drops: nothing, `\r`, a BOM).
    pub blank: u64,
    /// Lines of the CSV header row.
    pub header: u64,
    /// Frames (records).
    pub frames: u64,
    /// Lines covered by frames.
    pub frame_lines: u64,
    /// Frames with at least one valid identifier.
    pub kept: u64,
    /// Frames rejected (with a reason).
    pub rejected: u64,
    /// `DumpReader::open` refused the file (UTF-16, bad header): nothing else checked.
    pub open_error: Option<String>,
}

/// The physical lines of `data` (split at `\n`; a last line without a line end counts).
fn physical_lines(data: &[u8]) -> Vec<&[u8]> {
    let mut lines: Vec<&[u8]> = data.split(|&b| b == b'\n').collect();
    if data.is_empty() || data.ends_with(b"\n") {
        lines.pop();
    }
    lines
}

fn is_blank(line_no: usize, line: &[u8]) -> bool {
    let line = if line_no == 1 { line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line) } else { line };
    line.is_empty() || line == b"\r"
}

/// Frames, parses and validates `data` as a dump of `format` (CSV: with a header row, or
/// with `columns` from the catalog) through the dump reader, from a file in `dir`.
///
/// Checks: no panic; frames are in order, never overlap, and hold exactly the bytes of
/// their lines (line ends and a final `\r` removed); every line no frame covers is blank
/// or the CSV header; every frame is kept or rejected with a non-empty reason.
pub fn check_dump(dir: &Path, format: DumpFormat, columns: Option<Vec<String>>, data: &[u8]) -> DumpAccount {
    let path = dir.join("dump");
    std::fs::write(&path, data).expect("write the dump");
    let file =
        DumpFile { display: "dump".into(), path, format, compression: Compression::None, delimiter: b',', columns };
    let mut account = DumpAccount::default();
    let lines = physical_lines(data);
    account.lines = lines.len() as u64;
    let mut reader = match DumpReader::open(&file) {
        Ok(reader) => reader,
        Err(e) => {
            match &e {
                IngestError::Utf16 { .. } => assert!(data.starts_with(b"\xFF\xFE") || data.starts_with(b"\xFE\xFF")),
                IngestError::BadHeader { .. }
                | IngestError::NoIdentifierColumn { .. }
                | IngestError::WrongDelimiter { .. }
                | IngestError::DuplicateColumn { .. } => assert_eq!(format, DumpFormat::Csv, "{e}"),
                other => panic!("unexpected open error: {other}"),
            }
            assert!(!e.to_string().is_empty());
            account.open_error = Some(e.to_string());
            return account;
        }
    };
    let parser = reader.parser();
    let mut covered = vec![false; lines.len()];
    let mut first_frame_line = None;
    let mut next_line = 1u64;
    // A small target cuts many batches: batch boundaries must not change frames.
    while let Some(batch) = reader.next_batch(64).expect("reading a regular file") {
        assert!(!batch.frames.is_empty());
        for frame in &batch.frames {
            assert!(frame.line >= next_line, "frames out of order: {frame:?} before line {next_line}");
            assert!(frame.lines >= 1);
            let first = usize::try_from(frame.line - 1).expect("line");
            let end = first + frame.lines as usize;
            assert!(end <= lines.len(), "frame {frame:?} past the last line {}", lines.len());
            first_frame_line.get_or_insert(frame.line);
            covered[first..end].iter_mut().for_each(|c| *c = true);
            next_line = frame.line + u64::from(frame.lines);
            account.frames += 1;
            account.frame_lines += u64::from(frame.lines);
            let bytes = batch.bytes(frame);
            let mut expected = lines[first..end].join(&b'\n');
            if frame.line == 1 && expected.starts_with(b"\xEF\xBB\xBF") {
                expected.drain(..3);
            }
            if expected.ends_with(b"\r") {
                expected.pop();
            }
            match frame.kind {
                FrameKind::Record => assert_eq!(bytes, expected.as_slice(), "frame {frame:?} bytes"),
                FrameKind::TooLong { total_len } => {
                    assert_eq!(total_len, expected.len() as u64);
                    assert!(expected.starts_with(bytes));
                }
            }
            let rejected = match frame.kind.reject_reason() {
                Some(reason) => Some(reason),
                None => match parser.parse(bytes) {
                    Err(reason) => Some(reason),
                    Ok(fields) => {
                        let (result, field_rejects) = validate(fields);
                        for f in &field_rejects {
                            assert!(!f.reason.is_empty());
                        }
                        match result {
                            Ok(record) => {
                                assert!(record.email_key.is_some() || record.username_key.is_some());
                                None
                            }
                            Err(reason) => Some(reason),
                        }
                    }
                },
            };
            match rejected {
                Some(reason) => {
                    assert!(!reason.is_empty());
                    account.rejected += 1;
                }
                None => account.kept += 1,
            }
        }
    }
    assert!(reader.next_batch(64).expect("after the end").is_none());
    let header_end = match (format, &file.columns) {
        (DumpFormat::Csv, None) => first_frame_line.map_or(lines.len(), |l| l as usize - 1),
        _ => 0,
    };
    let mut header_seen = false;
    for (i, line) in lines.iter().enumerate() {
        if covered[i] {
            continue;
        }
        if is_blank(i + 1, line) {
            account.blank += 1;
        } else {
            // Only the CSV header (one record, possibly spanning lines) may be unframed.
            assert!(i < header_end, "line {} is neither blank nor framed: {:?}", i + 1, String::from_utf8_lossy(line));
            header_seen = true;
            account.header += 1;
        }
    }
    if header_seen {
        // The header's span may include blank lines inside quotes; count them as header.
        let first = lines.iter().enumerate().position(|(i, l)| i < header_end && !is_blank(i + 1, l));
        let last = lines.iter().enumerate().rposition(|(i, l)| i < header_end && !is_blank(i + 1, l));
        if let (Some(first), Some(last)) = (first, last) {
            let inner_blank = (first..=last).filter(|&i| is_blank(i + 1, lines[i])).count() as u64;
            account.blank -= inner_blank;
            account.header += inner_blank;
        }
    }
    assert_eq!(account.frame_lines + account.blank + account.header, account.lines, "{account:?}");
    assert_eq!(account.kept + account.rejected, account.frames);
    account
}

/// [`check_dump`] for every way `format` can read the bytes: CSV both with a header row
/// and with catalog `columns` (every line a record).
pub fn check_dump_all(dir: &Path, format: DumpFormat, data: &[u8]) {
    check_dump(dir, format, None, data);
    if format == DumpFormat::Csv {
        let columns = ["email", "username", "password"].map(String::from).to_vec();
        let account = check_dump(dir, format, Some(columns), data);
        assert_eq!(account.header, 0);
    }
}

/// Key normalization of any text: no panic; a key normalizes to itself (idempotent),
/// matches the reference implementation, and obeys the SPEC §4 limits.
pub fn check_normalize(text: &str) {
    let email = normalize_email(text);
    assert_eq!(email.as_deref(), normalize_email_slow(text).as_deref(), "email {text:?}");
    if let Ok(key) = &email {
        assert_eq!(normalize_email(key).as_deref(), Ok(key.as_ref()), "email key {key:?} of {text:?}");
        assert!(key.len() <= MAX_EMAIL_BYTES && !key.is_empty());
        assert_eq!(key.matches('@').count(), 1);
        assert!(!key.chars().any(|c| c.is_whitespace() || c.is_control()), "{key:?}");
    }
    let username = normalize_username(text);
    assert_eq!(username.as_deref(), normalize_username_slow(text).as_deref(), "username {text:?}");
    if let Ok(key) = &username {
        assert_eq!(normalize_username(key).as_deref(), Ok(key.as_ref()), "username key {key:?} of {text:?}");
        assert!((1..=MAX_USERNAME_BYTES).contains(&key.len()));
        assert!(!key.chars().any(char::is_control), "{key:?}");
        assert_eq!(key.trim(), key.as_ref());
    }
}

/// One record of a [`BuildCase`].
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CaseRecord {
    /// Source, modulo the number of sources (3).
    pub source: u8,
    /// E-mail as written in the dump.
    pub email: Option<String>,
    /// Username as written in the dump.
    pub username: Option<String>,
    /// Password as written in the dump.
    pub password: Option<String>,
}

/// Input of [`check_build_and_query`]: records of three sources, each source written as
/// JSON Lines (source 0), CSV (source 1) or combo-free CSV with `;` (source 2).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BuildCase {
    /// Hash mode, modulo the number of modes.
    pub mode: u8,
    /// The records.
    pub records: Vec<CaseRecord>,
    /// Extra spellings to query (hits or misses).
    pub queries: Vec<String>,
}

const SOURCES: u8 = 3;

/// A record as the model sees it: trimmed values that pass validation, and its keys.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct ModelRecord {
    source: u32,
    email: Option<String>,
    username: Option<String>,
    password: Option<String>,
}

fn trimmed(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

fn csv_quote(value: Option<&str>, out: &mut String) {
    if let Some(v) = value {
        out.push('"');
        out.push_str(&v.replace('"', "\"\""));
        out.push('"');
    }
}

/// Builds `case` into an index in a directory under `dir` and checks every identity
/// against a model computed from the records alone: the rows found by every spelling,
/// the values read back, the counts of the build summary, and `check`'s breach count.
pub fn check_build_and_query(dir: &Path, case: &BuildCase) {
    let mode = HashMode::ALL[usize::from(case.mode) % HashMode::ALL.len()];
    let salt = mode.is_hashed().then(|| Salt::new(b"fuzz-build-and-query-salt".to_vec()).expect("salt"));
    let work = tempfile::tempdir_in(dir).expect("temp dir");
    let mut dumps: Vec<String> = vec![String::new(); usize::from(SOURCES)];
    // Records are identical (stored once, the first kept) when their source, normalized
    // identifiers and other trimmed values are (SPEC §2, `build::entry::document_id`).
    let mut model = BTreeMap::new();
    let mut per_source_read = [0u64; SOURCES as usize];
    for (i, r) in case.records.iter().enumerate() {
        let source = r.source % SOURCES;
        let dump = &mut dumps[usize::from(source)];
        // Values that would change the framing are out of this target's scope (the
        // dump parsers have their own targets): JSON escapes everything, CSV quotes.
        let (email, username, password) = (r.email.as_deref(), r.username.as_deref(), r.password.as_deref());
        match source {
            0 => {
                let line = serde_json::json!({"email": email, "username": username, "password": password});
                dump.push_str(&line.to_string());
            }
            _ => {
                if dump.is_empty() {
                    dump.push_str(if source == 1 { "email,username,password\n" } else { "email;username;password\n" });
                }
                let sep = if source == 1 { "," } else { ";" };
                csv_quote(email, dump);
                dump.push_str(sep);
                csv_quote(username, dump);
                dump.push_str(sep);
                csv_quote(password, dump);
            }
        }
        dump.push_str(if i % 2 == 0 { "\n" } else { "\r\n" });
        per_source_read[usize::from(source)] += 1;
        let no_ctl = |v: &&str, line_ends_ok: bool| {
            !v.chars().any(|c| c.is_control() && c != '\t' && !(line_ends_ok && matches!(c, '\n' | '\r')))
        };
        let email = trimmed(&r.email).filter(|v| no_ctl(v, false) && normalize_email(v).is_ok());
        let username = trimmed(&r.username).filter(|v| no_ctl(v, false) && normalize_username(v).is_ok());
        if email.is_none() && username.is_none() {
            continue;
        }
        let password = trimmed(&r.password).filter(|v| no_ctl(v, true));
        let email_key = email.and_then(|e| normalize_email(e).ok()).map(|k| k.into_owned());
        let username_key = username.and_then(|u| normalize_username(u).ok()).map(|k| k.into_owned());
        let identity = (u32::from(source) + 1, email_key, username_key, password.map(String::from));
        model.entry(identity).or_insert_with(|| ModelRecord {
            source: u32::from(source) + 1,
            email: email.map(String::from),
            username: username.map(String::from),
            password: password.map(String::from),
        });
    }
    let model: BTreeSet<ModelRecord> = model.into_values().collect();
    let mut sources = Vec::new();
    for (i, dump) in dumps.iter().enumerate() {
        if dump.is_empty() {
            continue;
        }
        let (name, format, delimiter) = match i {
            0 => ("s0.jsonl", "jsonl", None),
            1 => ("s1.csv", "csv", None),
            _ => ("s2.csv", "csv", Some(";")),
        };
        std::fs::write(work.path().join(name), dump).expect("write dump");
        let mut file = serde_json::json!({"path": name, "format": format});
        if let Some(d) = delimiter {
            file["delimiter"] = d.into();
        }
        sources.push(serde_json::json!({
            "id": i + 1, "name": format!("source-{i}"), "date": "2024-01-0".to_string() + &(i + 1).to_string(),
            "files": [file],
        }));
    }
    if sources.is_empty() {
        return;
    }
    let catalog_path = work.path().join("catalog.json");
    std::fs::write(&catalog_path, serde_json::json!({ "sources": sources }).to_string()).expect("catalog");
    let catalog = Catalog::load(&catalog_path).expect("the catalog is valid");
    let out = work.path().join("index");
    let options = BuildOptions {
        hash_mode: mode,
        salt: salt.clone(),
        memory_budget: MIN_MEMORY_BUDGET,
        threads: Some(1),
        rejects_path: Some(work.path().join("rejects.jsonl")),
        source_date_epoch: Some(1_700_000_000),
        ..BuildOptions::default()
    };
    let summary = build_index(&catalog, &out, &options).expect("the build succeeds");
    let read: u64 = per_source_read.iter().sum();
    assert_eq!(summary.records_read, read);
    assert_eq!(summary.kept, model.len() as u64, "kept");
    assert_eq!(summary.kept + summary.rejected_records + summary.duplicates, summary.records_read);

    let index = Index::open(&out, &OpenOptions { salt, populate: false }).expect("the new index opens");
    assert_eq!(index.len(), model.len() as u64);
    let read_back = |rows: Vec<u64>| -> Vec<ModelRecord> {
        let mut got: Vec<ModelRecord> = rows
            .into_iter()
            .map(|row| {
                let r = index.record(row).expect("row");
                let get = |a: Asset| r.get(a).expect("value").map(String::from);
                ModelRecord {
                    source: r.row().source_id,
                    email: get(Asset::Email),
                    username: get(Asset::Username),
                    password: get(Asset::PasswordPlaintext),
                }
            })
            .collect();
        got.sort();
        got
    };
    // Every spelling in the input, plus the extra queries, against the model.
    let mut spellings: BTreeSet<&str> = case.queries.iter().map(String::as_str).collect();
    for r in &case.records {
        spellings.extend(r.email.as_deref());
        spellings.extend(r.username.as_deref());
    }
    for text in spellings {
        if let Ok(key) = normalize_email(text) {
            let expected: Vec<ModelRecord> = model
                .iter()
                .filter(|m| m.email.as_deref().and_then(|e| normalize_email(e).ok()).as_deref() == Some(&*key))
                .cloned()
                .collect();
            let rows: Vec<u64> = index.lookup_email(text).expect("lookup_email").collect();
            assert_eq!(read_back(rows), expected, "email {text:?}");
            let sources: BTreeSet<u32> = expected.iter().map(|m| m.source).collect();
            let result =
                index.check(&Query::Email(text), crate::date::UnixTime::from_seconds(1_800_000_000)).expect("check");
            assert_eq!(result.total_breaches, sources.len(), "check email {text:?}");
        } else {
            assert!(index.lookup_email(text).is_err(), "an invalid e-mail is an error: {text:?}");
        }
        if let Ok(key) = normalize_username(text) {
            let expected: Vec<ModelRecord> = model
                .iter()
                .filter(|m| m.username.as_deref().and_then(|u| normalize_username(u).ok()).as_deref() == Some(&*key))
                .cloned()
                .collect();
            let rows: Vec<u64> = index.lookup_username(text).expect("lookup_username").collect();
            assert_eq!(read_back(rows), expected, "username {text:?}");
        }
    }
    // Every row is some model record, and the model has no record the index lacks.
    let all = read_back((0..index.len()).collect());
    let model_sorted: Vec<ModelRecord> = model.iter().cloned().collect();
    assert_eq!(all, model_sorted);
    let per_source: BTreeMap<u32, u64> = model.iter().fold(BTreeMap::new(), |mut m, r| {
        *m.entry(r.source).or_default() += 1;
        m
    });
    for s in index.sources() {
        assert_eq!(s.records, per_source.get(&s.id).copied().unwrap_or(0), "source {}", s.name);
    }
}
