//! The oracle of a merge is a build: merging indexes built from disjoint parts of a
//! catalog gives every file of one build of the whole catalog byte for byte, and with
//! deletions, of a build of the catalog without the deleted records.

use super::*;
use crate::asset::Asset;
use crate::build::{BuildOptions, MIN_MEMORY_BUDGET, build_index, catalog_source_meta};
use crate::catalog::{Catalog, SourceSpec};
use crate::date::Date;
use crate::format::{FileView, passwords as password_format, store};
use crate::index::OpenOptions;
use proptest::prelude::*;

const EPOCH: i64 = 1_700_000_000;

/// Which files of which sources go to the first part (source id, file position).
type Split = fn(u32, usize) -> bool;

fn salt_for(mode: HashMode) -> Option<Salt> {
    mode.is_hashed().then(|| Salt::new(b"merge test salt, 32 bytes long!!".to_vec()).unwrap())
}

fn sample() -> Catalog {
    Catalog::load(concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/sample/catalog.json").as_ref()).unwrap()
}

/// `catalog` with only the sources and files `keep(source id, file position)` accepts
/// (a source left without files is dropped).
fn part(catalog: &Catalog, keep: impl Fn(u32, usize) -> bool) -> Catalog {
    let sources: Vec<SourceSpec> = catalog
        .sources
        .iter()
        .filter_map(|s| {
            let files: Vec<_> =
                s.files.iter().enumerate().filter(|(i, _)| keep(s.id, *i)).map(|(_, f)| f.clone()).collect();
            (!files.is_empty()).then(|| SourceSpec { files, ..s.clone() })
        })
        .collect();
    Catalog { path: catalog.path.clone(), sources }
}

fn build(catalog: &Catalog, out: &Path, mode: HashMode, store: Option<AssetSet>) -> Index {
    let options = BuildOptions {
        hash_mode: mode,
        salt: salt_for(mode),
        store,
        memory_budget: MIN_MEMORY_BUDGET,
        threads: Some(1),
        rejects_path: Some(out.with_extension("rejects.jsonl")),
        source_date_epoch: Some(EPOCH),
        ..BuildOptions::default()
    };
    build_index(catalog, out, &options).unwrap();
    Index::open(out, &OpenOptions { salt: salt_for(mode), populate: false }).unwrap()
}

fn merge_options(catalog: &Catalog, mode: HashMode, store: Option<AssetSet>) -> MergeOptions {
    let build_date = Date::from_unix_seconds(EPOCH);
    MergeOptions {
        sources: catalog.sources.iter().map(|s| catalog_source_meta(s, build_date)).collect(),
        store,
        salt: salt_for(mode),
        memory_budget: MIN_MEMORY_BUDGET,
        threads: Some(1),
        source_date_epoch: Some(EPOCH),
        ..MergeOptions::default()
    }
}

/// Every file of `expected` but the manifest is byte-identical in `actual`, and the
/// manifests agree on everything but the build id and the build statistics.
fn assert_same_index(actual: &Path, expected: &Path) {
    let (a, e) = (Manifest::read(actual).unwrap(), Manifest::read(expected).unwrap());
    let names = |m: &Manifest| m.files.iter().map(|f| f.name.clone()).collect::<Vec<_>>();
    assert_eq!(names(&a), names(&e), "the same files");
    for f in &e.files {
        let (x, y) = (std::fs::read(actual.join(&f.name)).unwrap(), std::fs::read(expected.join(&f.name)).unwrap());
        assert!(x == y, "{} differs from the build's ({} against {} bytes)", f.name, x.len(), y.len());
    }
    assert_eq!(a.counts, e.counts);
    assert_eq!(a.sources, e.sources);
    assert_eq!((a.hash_mode, a.stored_assets, a.created), (e.hash_mode, e.stored_assets, e.created));
}

/// The password counts that the records of `index` chosen by `deleted` hold (as the
/// build counts them: once per record and distinct hash), as a pair of password files
/// written into `dir`; `values_from` reads the records' values (an index that stores
/// the passwords, row for row the same as `index`).
fn subtractions(values_from: &Index, deleted: impl Fn(u64, u32) -> bool, dir: &Path) -> PasswordFiles {
    let mut hashes = Vec::new();
    for row in 0..values_from.len() {
        let record = values_from.record(row).unwrap();
        if deleted(row, record.row().source_id) {
            let values = record.into_values();
            let texts: [Option<&str>; ASSET_COUNT] = std::array::from_fn(|i| values[i].as_deref());
            hashes.extend(crate::build::passwords::record_hashes(&texts));
        }
    }
    std::fs::create_dir_all(dir).unwrap();
    let path = |kind: PasswordHashKind| dir.join(file_name(kind));
    password_format::write_subtraction_files(&path(PasswordHashKind::Sha1), &path(PasswordHashKind::Ntlm), hashes)
        .unwrap();
    let open = |kind: PasswordHashKind| {
        let bytes = Bytes::map_path(&path(kind), Access::Random, false).unwrap();
        PasswordFileReader::new(
            FileView::parse(file_name(kind), bytes, password_format::file_kind(kind)).unwrap(),
            kind,
        )
        .unwrap()
    };
    PasswordFiles { sha1: open(PasswordHashKind::Sha1), ntlm: open(PasswordHashKind::Ntlm) }
}

fn input<'a>(index: &'a Index, removed: &'a BTreeSet<u32>) -> MergeInput<'a> {
    MergeInput { index, deleted_rows: &[], removed_sources: removed, password_subtractions: None }
}

#[test]
fn merging_the_sample_split_by_source_or_by_file_gives_the_build_of_the_whole() {
    let whole = sample();
    let none = BTreeSet::new();
    for mode in [HashMode::Plain, HashMode::Xxh3_64] {
        let tmp = tempfile::tempdir().unwrap();
        let expected = tmp.path().join("whole");
        build(&whole, &expected, mode, None);
        // Split by source, and one source's two files split between the parts.
        let splits: [(&str, Split); 2] =
            [("sources", |id, _| id % 2 == 1), ("files", |id, file| id == 1 || (id == 4 && file == 0))];
        for (name, first) in splits {
            let a = build(&part(&whole, first), &tmp.path().join(format!("{name}-a")), mode, None);
            let b = build(&part(&whole, |id, f| !first(id, f)), &tmp.path().join(format!("{name}-b")), mode, None);
            let out = tmp.path().join(format!("{name}-merged"));
            let summary =
                merge_indexes(&[input(&a, &none), input(&b, &none)], &out, &merge_options(&whole, mode, None)).unwrap();
            assert_same_index(&out, &expected);
            assert_eq!(summary.kept, a.len() + b.len());
        }
    }
}

#[test]
fn merging_without_a_removed_source_gives_the_build_without_it() {
    let whole = sample();
    let removed = BTreeSet::from([2u32]);
    let none = BTreeSet::new();
    for mode in [HashMode::Plain, HashMode::Sha256_128] {
        let tmp = tempfile::tempdir().unwrap();
        let expected = tmp.path().join("expected");
        build(&part(&whole, |id, _| id != 2), &expected, mode, None);
        let a = build(&part(&whole, |id, _| id <= 2), &tmp.path().join("a"), mode, None);
        let b = build(&part(&whole, |id, _| id > 2), &tmp.path().join("b"), mode, None);
        let minus = subtractions(&a, |_, source| source == 2, &tmp.path().join("minus"));
        let inputs = [
            MergeInput { index: &a, deleted_rows: &[], removed_sources: &removed, password_subtractions: Some(&minus) },
            input(&b, &none),
        ];
        let out = tmp.path().join("merged");
        merge_indexes(&inputs, &out, &merge_options(&part(&whole, |id, _| id != 2), mode, None)).unwrap();
        assert_same_index(&out, &expected);
    }
}

#[test]
fn a_privacy_store_merges_as_it_builds() {
    // No password stored: the subtractions come from a twin index that stores them.
    let whole = sample();
    let store = Some(AssetSet::from_iter([Asset::Email, Asset::Username]));
    let removed = BTreeSet::from([4u32]);
    let none = BTreeSet::new();
    let mode = HashMode::Plain;
    let tmp = tempfile::tempdir().unwrap();
    let expected = tmp.path().join("expected");
    build(&part(&whole, |id, _| id != 4), &expected, mode, store);
    let a_part = part(&whole, |id, _| id % 2 == 0);
    let a = build(&a_part, &tmp.path().join("a"), mode, store);
    let twin = build(&a_part, &tmp.path().join("twin"), mode, None);
    let b = build(&part(&whole, |id, _| id % 2 == 1), &tmp.path().join("b"), mode, store);
    let minus = subtractions(&twin, |_, source| source == 4, &tmp.path().join("minus"));
    let inputs = [
        MergeInput { index: &a, deleted_rows: &[], removed_sources: &removed, password_subtractions: Some(&minus) },
        input(&b, &none),
    ];
    let out = tmp.path().join("merged");
    merge_indexes(&inputs, &out, &merge_options(&part(&whole, |id, _| id != 4), mode, store)).unwrap();
    assert_same_index(&out, &expected);
    // Asking for an asset the inputs do not store is refused before anything is written.
    let err =
        merge_indexes(&[input(&a, &none)], &tmp.path().join("more"), &merge_options(&a_part, mode, None)).unwrap_err();
    assert!(err.to_string().contains("does not store"), "{err}");
    assert!(!tmp.path().join("more").exists());
}

#[test]
fn inputs_sharing_a_record_are_refused() {
    let whole = sample();
    let none = BTreeSet::new();
    let tmp = tempfile::tempdir().unwrap();
    let a = build(&whole, &tmp.path().join("a"), HashMode::Plain, None);
    let b = build(&part(&whole, |id, _| id == 3), &tmp.path().join("b"), HashMode::Plain, None);
    let out = tmp.path().join("merged");
    let err = merge_indexes(&[input(&a, &none), input(&b, &none)], &out, &merge_options(&whole, HashMode::Plain, None))
        .unwrap_err();
    assert!(err.to_string().contains("must not share records"), "{err}");
    assert!(!out.exists());
}

/// One generated record: every field optional but one identifier; `n` makes records
/// distinct (inputs of a merge never share a record).
#[derive(Clone, Debug)]
struct GenRecord {
    email: Option<u8>,
    username: Option<u8>,
    password: Option<u8>,
    n: u32,
}

impl GenRecord {
    fn email(&self) -> Option<String> {
        self.email.map(|e| format!("user{e}@x{}.org", e % 3))
    }
    fn username(&self) -> Option<String> {
        self.username.map(|u| format!("name{u}"))
    }
    fn line(&self) -> String {
        let mut o = serde_json::Map::new();
        if let Some(e) = self.email() {
            o.insert("email".into(), e.into());
        }
        if let Some(u) = self.username() {
            o.insert("username".into(), u.into());
        }
        if let Some(p) = self.password {
            o.insert("password".into(), format!("pw{p}").into());
        }
        o.insert("name".into(), format!("person {}", self.n).into());
        serde_json::Value::Object(o).to_string()
    }
}

fn gen_record() -> impl Strategy<Value = GenRecord> {
    (proptest::option::of(0u8..12), proptest::option::of(0u8..12), proptest::option::of(0u8..6))
        .prop_filter("an identifier", |(e, u, _)| e.is_some() || u.is_some())
        .prop_map(|(email, username, password)| GenRecord { email, username, password, n: 0 })
}

/// Sources of 1 or 2 files of records, each file going to part A or B.
fn gen_catalog() -> impl Strategy<Value = Vec<Vec<(bool, Vec<GenRecord>)>>> {
    proptest::collection::vec(
        proptest::collection::vec((any::<bool>(), proptest::collection::vec(gen_record(), 1..8)), 1..3),
        1..4,
    )
}

/// Writes the catalog, keeping the records `keep` accepts; `part` picks the files.
fn write_catalog(
    dir: &Path,
    sources: &[Vec<(bool, Vec<GenRecord>)>],
    part: Option<bool>,
    keep: &dyn Fn(&GenRecord) -> bool,
) -> Option<Catalog> {
    std::fs::create_dir_all(dir).unwrap();
    let mut json = Vec::new();
    for (s, files) in sources.iter().enumerate() {
        let mut entries = Vec::new();
        for (f, (side, records)) in files.iter().enumerate() {
            if part.is_some_and(|p| p != *side) {
                continue;
            }
            let name = format!("s{s}f{f}.jsonl");
            let text: String = records.iter().filter(|r| keep(r)).map(|r| r.line() + "\n").collect();
            std::fs::write(dir.join(&name), text).unwrap();
            entries.push(serde_json::json!({"path": name, "format": "jsonl"}));
        }
        if !entries.is_empty() {
            json.push(serde_json::json!({
                "id": s + 1, "name": format!("source-{s}"), "date": "2024-01-01", "files": entries,
            }));
        }
    }
    if json.is_empty() {
        return None;
    }
    let path = dir.join("catalog.json");
    std::fs::write(&path, serde_json::json!({ "sources": json }).to_string()).unwrap();
    Some(Catalog::load(&path).unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    /// Random small catalogs split file by file into two indexes; some identities
    /// deleted from both (their rows, and their passwords subtracted): the merge gives
    /// the build of the catalog without those records.
    #[test]
    fn merges_equal_builds_of_what_is_live(
        mut sources in gen_catalog(),
        deleted_emails in proptest::collection::btree_set(0u8..12, 0..3),
        deleted_names in proptest::collection::btree_set(0u8..12, 0..2),
        hashed in any::<bool>(),
    ) {
        for (n, r) in sources.iter_mut().flatten().flat_map(|(_, rs)| rs.iter_mut()).enumerate() {
            r.n = n as u32;
        }
        let mode = if hashed { HashMode::Xxh3_64 } else { HashMode::Plain };
        let is_deleted = |r: &GenRecord| {
            r.email.is_some_and(|e| deleted_emails.contains(&e)) || r.username.is_some_and(|u| deleted_names.contains(&u))
        };
        let tmp = tempfile::tempdir().unwrap();
        let all = write_catalog(&tmp.path().join("all"), &sources, None, &|_| true).unwrap();
        let live = write_catalog(&tmp.path().join("live"), &sources, None, &|r| !is_deleted(r)).unwrap();
        let expected = tmp.path().join("expected");
        build(&live, &expected, mode, None);
        let none = BTreeSet::new();
        let mut indexes = Vec::new();
        for side in [true, false] {
            let Some(catalog) = write_catalog(&tmp.path().join(format!("part-{side}")), &sources, Some(side), &|_| true)
            else {
                continue;
            };
            indexes.push(build(&catalog, &tmp.path().join(format!("index-{side}")), mode, None));
        }
        let deleted_ids: BTreeSet<String> = deleted_emails
            .iter()
            .filter_map(|e| GenRecord { email: Some(*e), username: None, password: None, n: 0 }.email())
            .chain(deleted_names.iter().map(|u| format!("name{u}")))
            .collect();
        let deleted_of = |index: &Index| -> Vec<u64> {
            (0..index.len())
                .filter(|row| {
                    let record = index.record(*row).unwrap();
                    [Asset::Email, Asset::Username]
                        .into_iter()
                        .any(|a| record.get(a).unwrap().is_some_and(|v| deleted_ids.contains(v)))
                })
                .collect()
        };
        let deleted: Vec<Vec<u64>> = indexes.iter().map(deleted_of).collect();
        let minus: Vec<PasswordFiles> = indexes
            .iter()
            .zip(&deleted)
            .enumerate()
            .map(|(i, (index, rows))| subtractions(index, |row, _| rows.binary_search(&row).is_ok(), &tmp.path().join(format!("minus-{i}"))))
            .collect();
        let inputs: Vec<MergeInput<'_>> = indexes
            .iter()
            .zip(&deleted)
            .zip(&minus)
            .map(|((index, rows), minus)| MergeInput {
                index,
                deleted_rows: rows,
                removed_sources: &none,
                password_subtractions: Some(minus),
            })
            .collect();
        let out = tmp.path().join("merged");
        merge_indexes(&inputs, &out, &merge_options(&all, mode, None)).unwrap();
        // The merged source table lists every source of the catalog, as the build of
        // the live records does (with 0 records where all were deleted).
        assert_same_index(&out, &expected);
    }
}

#[test]
fn damaged_or_inconsistent_inputs_are_errors_naming_the_problem() {
    let whole = sample();
    let none = BTreeSet::new();
    let tmp = tempfile::tempdir().unwrap();
    let a = build(&part(&whole, |id, _| id % 2 == 1), &tmp.path().join("a"), HashMode::Plain, None);
    let out = tmp.path().join("merged");
    let options = merge_options(&whole, HashMode::Plain, None);
    let merge_err = |inputs: &[MergeInput<'_>]| {
        let err = merge_indexes(inputs, &out, &options).unwrap_err().to_string();
        assert!(!out.exists(), "nothing is left at the output after: {err}");
        err
    };
    // Deleted rows out of order, or past the last row.
    for rows in [vec![2, 1], vec![a.len()]] {
        let err = merge_err(&[MergeInput { deleted_rows: &rows, ..input(&a, &none) }]);
        assert!(err.contains("deleted rows are not strictly ascending"), "{err}");
    }
    // A live row whose source the merged table lacks.
    let err =
        merge_indexes(&[input(&a, &none)], &out, &merge_options(&part(&whole, |id, _| id == 1), HashMode::Plain, None))
            .unwrap_err()
            .to_string();
    assert!(err.contains("which the merged source table lacks"), "{err}");
    // Another hash mode.
    let b = build(&part(&whole, |id, _| id % 2 == 0), &tmp.path().join("b"), HashMode::Xxh3_64, None);
    let err = merge_err(&[input(&a, &none), input(&b, &none)]);
    assert!(err.contains("hash mode"), "{err}");
    // Damaged record store blocks (open checks sizes only, so the merge finds them).
    let damaged_dir = tmp.path().join("damaged");
    std::fs::create_dir(&damaged_dir).unwrap();
    for f in std::fs::read_dir(a.dir()).unwrap() {
        let f = f.unwrap();
        std::fs::copy(f.path(), damaged_dir.join(f.file_name())).unwrap();
    }
    let store_path = damaged_dir.join(store::FILE_NAME);
    let mut bytes = std::fs::read(&store_path).unwrap();
    let middle = bytes.len() / 2;
    for b in &mut bytes[middle - 64..middle + 64] {
        *b ^= 0x5a;
    }
    std::fs::write(&store_path, bytes).unwrap();
    let damaged = Index::open(&damaged_dir, &OpenOptions::default()).unwrap();
    let err = merge_err(&[input(&damaged, &none)]);
    assert!(err.contains("records.store") && err.contains("verify"), "{err}");
}
