//! The Have I Been Pwned fields of a source (SPEC §12) travel from the catalog into the
//! manifest and back out of the reader unchanged, and a manifest whose per-source assets
//! disagree with the rows is damage: `verify` reports it, and an unknown asset name stops
//! the open with an error naming the source.

use breachdex::manifest::Manifest;
use breachdex::{BuildOptions, Catalog, Index, OpenOptions, build_index, verify};
use std::path::{Path, PathBuf};

fn sample_index(dir: &Path) -> PathBuf {
    let catalog =
        Catalog::load(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/sample/catalog.json")).unwrap();
    let out = dir.join("index");
    let options = BuildOptions {
        threads: Some(1),
        rejects_path: Some(dir.join("rejects.jsonl")),
        source_date_epoch: Some(1_700_000_000),
        ..Default::default()
    };
    build_index(&catalog, &out, &options).unwrap();
    out
}

/// Rewrites the manifest with `edit` applied and a fresh checksum.
fn rewrite(index: &Path, edit: impl FnOnce(&mut Manifest)) {
    let mut manifest = Manifest::read(index).unwrap();
    edit(&mut manifest);
    std::fs::write(index.join("manifest.json"), manifest.to_file_text().unwrap()).unwrap();
}

#[test]
fn catalog_fields_reach_the_reader() {
    let tmp = tempfile::tempdir().unwrap();
    let out = sample_index(tmp.path());
    let index = Index::open(&out, &OpenOptions::default()).unwrap();
    let by_name = |name: &str| index.sources().iter().find(|s| s.name == name).unwrap();

    let corp = by_name("examplecorp-2024");
    assert_eq!(corp.domain.as_deref(), Some("examplecorp.example"));
    assert_eq!(corp.added_date.to_string(), "2024-04-02");
    assert_eq!(corp.modified_date, corp.added_date, "defaults to the added date");
    assert_eq!(corp.logo_path.as_deref(), Some("https://examplecorp.example/logo.png"));
    assert!(corp.verified);
    let stealer = by_name("infostealer-2025");
    assert!(stealer.malware && stealer.stealer_log && !stealer.retired);
    assert_eq!(stealer.added_date, stealer.publish_date, "defaults to the publish date");
    assert_eq!(
        stealer.data_classes.as_deref(),
        Some(&["Email addresses", "IP addresses", "Passwords", "URLs", "Usernames"].map(String::from)[..])
    );
    let forum = by_name("gamerforum-2019");
    assert_eq!(
        (forum.added_date.to_string(), forum.modified_date.to_string()),
        ("2019-08-01".into(), "2019-09-15".into())
    );
    assert!(!by_name("oldshop-2012").verified);
    for s in index.sources() {
        assert!(s.pwn_count >= 1 && s.pwn_count <= s.records, "{}: {} of {}", s.name, s.pwn_count, s.records);
    }
    // oldshop: user@example.com twice (JSON Lines and combo) counts once.
    assert!(by_name("oldshop-2012").pwn_count < by_name("oldshop-2012").records);
    assert!(verify(&out).unwrap().is_ok());
}

#[test]
fn assets_that_disagree_with_the_rows_are_damage() {
    let tmp = tempfile::tempdir().unwrap();
    let out = sample_index(tmp.path());
    rewrite(&out, |m| {
        let assets = m.sources[0].assets.as_mut().unwrap();
        assets.pop();
    });
    let index = Index::open(&out, &OpenOptions::default()).unwrap();
    assert_ne!(index.sources()[0].assets, None);
    let report = verify(&out).unwrap();
    assert!(!report.is_ok());
    let problems = format!("{:?}", report.problems);
    assert!(problems.contains("the assets listed are not those of its records"), "{problems}");

    rewrite(&out, |m| m.sources[1].assets = Some(vec!["email".into(), "shoe_size".into()]));
    let err = Index::open(&out, &OpenOptions::default()).unwrap_err().to_string();
    assert!(err.contains("source infostealer-2025: unknown asset 'shoe_size'"), "{err}");

    rewrite(&out, |m| m.sources[1].added_date = Some("2025-02-30".into()));
    let err = Index::open(&out, &OpenOptions::default()).unwrap_err().to_string();
    assert!(err.contains("source infostealer-2025"), "{err}");
}
