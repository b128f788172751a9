//! Indexes built before incremental updates existed (the committed v2 fixtures) are
//! generation 1 as they stand, take updates, and keep their cursors: a cursor stays valid
//! across a `compact` (it changes no answer) and ends with an `add` (answers changed).

use breachdex::{
    AddOptions, AssetPolicy, Catalog, CompactOptions, Index, OpenOptions, Query, RecordsError, RecordsRequest, Salt,
    UnixTime, add_to_index, build_index, compact_index,
};
use std::path::{Path, PathBuf};

const EPOCH: i64 = 1_700_000_000;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

/// The sample catalog and the week-2 catalog as one, with absolute paths.
fn combined_catalog(dir: &Path) -> Catalog {
    let load = |p: &Path| -> serde_json::Value { serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap() };
    let absolute = |mut v: serde_json::Value, base: &Path| {
        for s in v["sources"].as_array_mut().unwrap() {
            for f in s["files"].as_array_mut().unwrap() {
                let p = base.join(f["path"].as_str().unwrap());
                f["path"] = p.to_string_lossy().into_owned().into();
            }
        }
        v
    };
    let sample = absolute(load(&repo().join("testdata/sample/catalog.json")), &repo().join("testdata/sample"));
    let week2 =
        absolute(load(&repo().join("testdata/sample/week2/catalog.json")), &repo().join("testdata/sample/week2"));
    let mut sources = sample["sources"].as_array().unwrap().clone();
    for s in week2["sources"].as_array().unwrap() {
        match sources.iter_mut().find(|k| k["id"] == s["id"]) {
            Some(known) => {
                let files = s["files"].as_array().unwrap().clone();
                known["files"].as_array_mut().unwrap().extend(files);
            }
            None => sources.push(s.clone()),
        }
    }
    let path = dir.join("combined.json");
    std::fs::write(&path, serde_json::json!({ "sources": sources }).to_string()).unwrap();
    Catalog::load(&path).unwrap()
}

fn all_records(index: &Index, text: &str) -> Vec<String> {
    let policy = AssetPolicy::default();
    let page = index.records(&RecordsRequest::new(Query::auto(text), &policy)).unwrap();
    page.results.iter().map(|r| serde_json::to_string(r).unwrap()).collect()
}

fn legacy(fixture: &str, salt: Option<Salt>) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("index");
    copy_dir(&repo().join("testdata/fixtures").join(fixture), &dir);
    let options = OpenOptions { salt: salt.clone(), populate: false };
    let before = Index::open(&dir, &options).unwrap();
    assert_eq!(before.generation(), 1);
    assert_eq!(before.generation_id(), before.manifest().build_id, "generation 1 is identified by its build id");
    assert_eq!(before.content_id(), before.manifest().build_id, "cursors of generation 1 bind to the build id");

    // A cursor of generation 1 survives a compaction that has nothing to do, and ends
    // with an add.
    let policy = AssetPolicy::default();
    let query = Query::Email("user@example.com");
    let first = before.records(&RecordsRequest::new(query, &policy).limit(1)).unwrap();
    assert!(!first.cursor.is_empty(), "user@example.com has more than one record in the sample");
    let compact = CompactOptions { salt: salt.clone(), source_date_epoch: Some(EPOCH), ..Default::default() };
    assert_eq!(compact_index(&dir, &compact).unwrap().generation, None, "a build is compact already");
    let add = AddOptions {
        salt: salt.clone(),
        source_date_epoch: Some(EPOCH),
        rejects_path: Some(tmp.path().join("add.rejects")),
        ..Default::default()
    };
    let report =
        add_to_index(&dir, &Catalog::load(&repo().join("testdata/sample/week2/catalog.json")).unwrap(), &add).unwrap();
    assert_eq!(report.generation, 2);
    assert_eq!(report.summary.duplicates_across_segments, 1, "the week-2 stealer log repeats one record");
    let after = Index::open(&dir, &options).unwrap();
    assert_eq!(after.generation(), 2);
    let err = after.records(&RecordsRequest::new(query, &policy).limit(1).cursor(&first.cursor)).unwrap_err();
    assert!(matches!(err, RecordsError::InvalidCursor(_)), "{err}");
    // A cursor of generation 2 survives its compaction.
    let second = after.records(&RecordsRequest::new(query, &policy).limit(1)).unwrap();
    assert_eq!(compact_index(&dir, &compact).unwrap().generation, Some(3));
    let compacted = Index::open(&dir, &options).unwrap();
    let next = compacted.records(&RecordsRequest::new(query, &policy).limit(1).cursor(&second.cursor)).unwrap();
    let again = after.records(&RecordsRequest::new(query, &policy).limit(1).cursor(&second.cursor)).unwrap();
    assert_eq!(next.results, again.results, "the same page before and after the compaction");

    // Every answer equals a fresh build of the sample and the week-2 dumps together.
    let fresh_dir = tmp.path().join("fresh");
    let mode = before.hash_mode();
    let build = breachdex::BuildOptions {
        hash_mode: mode,
        salt,
        threads: Some(1),
        source_date_epoch: Some(EPOCH),
        rejects_path: Some(tmp.path().join("fresh.rejects")),
        ..Default::default()
    };
    build_index(&combined_catalog(tmp.path()), &fresh_dir, &build).unwrap();
    let fresh = Index::open(&fresh_dir, &options).unwrap();
    assert_eq!(compacted.sources(), fresh.sources());
    let now = UnixTime::from_seconds(1_780_000_000);
    for text in [
        "user@example.com",
        "optout@example.net",
        "traveller@example.org",
        "globetrotter",
        "darkstar99",
        "jdoe",
        "nobody@x.org",
    ] {
        for index in [&after, &compacted] {
            let a = serde_json::to_value(index.check(&Query::auto(text), now).unwrap()).unwrap();
            let b = serde_json::to_value(fresh.check(&Query::auto(text), now).unwrap()).unwrap();
            assert_eq!(a, b, "{fixture}: check {text}");
            assert_eq!(all_records(index, text), all_records(&fresh, text), "{fixture}: records {text}");
        }
    }
    assert!(breachdex::verify(&dir).unwrap().is_ok());
}

#[test]
fn the_plain_v2_fixture_takes_updates() {
    legacy("v2-plain", None);
}

#[test]
fn the_hashed_v2_fixture_takes_updates() {
    let salt = Salt::from_file(&repo().join("testdata/fixtures/v1-sha256.salt")).unwrap();
    legacy("v2-sha256", Some(salt));
}
