//! Invariant: one e-mail rule at build time and at query time (src/normalize.rs). An
//! address the builder refuses (`user@example..com`, `user@-bad-.com`) is refused as a
//! query too, and a root dot (`example.com.`) is dropped on both sides, so a record
//! written either way is found by either spelling.

use breachdex::Catalog;
use breachdex::KeyError;
use breachdex::{BuildOptions, build_index};
use breachdex::{Index, LookupError, OpenOptions};

const REFUSED: [&str; 4] = ["user@example..com", "user@-bad-.com", "user@.example.com", "user@example.com.."];

#[test]
fn build_and_query_apply_the_same_email_rule() {
    let tmp = tempfile::tempdir().unwrap();
    let mut dump = String::from("email,password\n");
    for (i, bad) in REFUSED.iter().enumerate() {
        dump.push_str(&format!("{bad},refused{i}\n"));
    }
    dump.push_str("dot@example.com.,kept1\nplain@example.com,kept2\n");
    std::fs::write(tmp.path().join("dump.csv"), dump).unwrap();
    std::fs::write(
        tmp.path().join("catalog.json"),
        r#"{"sources": [{"id": 1, "name": "a-2024", "title": "A", "date": "2024-01-01",
            "description": "d", "files": [{"path": "dump.csv"}]}]}"#,
    )
    .unwrap();
    let catalog = Catalog::load(&tmp.path().join("catalog.json")).unwrap();
    let out = tmp.path().join("idx");
    let summary = build_index(&catalog, &out, &BuildOptions::default()).unwrap();
    assert_eq!((summary.kept, summary.rejected_records), (2, REFUSED.len() as u64), "build refuses every bad domain");

    let index = Index::open(&out, &OpenOptions::default()).unwrap();
    for bad in REFUSED {
        let err = index.lookup_email(bad).unwrap_err();
        assert!(
            matches!(err, LookupError::InvalidEmail { reason: KeyError::InvalidDomain(_), .. }),
            "{bad}: the query is refused like the record: {err}"
        );
    }
    for spelling in ["dot@example.com", "dot@example.com.", "DOT@Example.COM."] {
        assert_eq!(index.lookup_email(spelling).unwrap().len(), 1, "{spelling}: the record written with a root dot");
    }
    for spelling in ["plain@example.com", "plain@example.com."] {
        assert_eq!(index.lookup_email(spelling).unwrap().len(), 1, "{spelling}: the record written without one");
    }
}
