//! Invariant (SPEC §13): whatever the history of `add`, `remove` and `compact`, the
//! index answers exactly what one fresh `build` of the same effective data answers:
//! `check`, `records` (all pages), the source table (records, identities, assets), the
//! password counts and ranges; and the change feed lists exactly the (key, source) pairs
//! each generation gained or lost.
//!
//! The model is the effective data itself: every record ever added, less the sources
//! removed, less every record holding a removed identity's key. After every step it is
//! written out as a catalog and built fresh: the oracle is that build, never a
//! hard-coded value.
//!
//! Three kinds of index go through it: plain, hashed, and a hashed "privacy" build that
//! counts passwords it does not store (`--store` without the password assets), whose
//! removals subtract password counts through `passwords.rowrefs`.

use breachdex::{
    AddOptions, Asset, AssetPolicy, AssetSet, Catalog, ChangeKind, CompactOptions, HashMode, IdentifierKind, Index,
    KeyDeriver, OpenOptions, PasswordHash, PasswordPrefix, Query, RecordsRequest, RemoveOptions, RemoveTarget, Salt,
    UnixTime, add_to_index, build_index, compact_index, normalize_email, normalize_username, remove_from_index,
};
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

const EMAILS: &[&str] = &[
    "alice@example.com",
    "Bob@Example.org",
    "josé@bücher.de",
    "carol@sub.example.net",
    "dave@example.com",
    "eve@example.com",
];
const USERNAMES: &[&str] = &["alice", "Bob_99", "jürgen", "carol", "dave"];
const MISSES: &[&str] = &["nobody@example.com", "alic@example.com", "zed", "bob_9"];
const PASSWORDS: &[&str] = &["hunter2", "123456", "Pässwört", "correct horse"];
const NAMES: &[&str] = &["Alice Liddell", "Bob Smith", "Ζωή"];
const SOURCES: u32 = 6;
const EPOCH: i64 = 1_700_000_000;
const SALT: &[u8; 32] = b"breachdex-incremental-test-salt!";

/// One record of a dump, by pool indexes.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Rec {
    email: Option<usize>,
    username: Option<usize>,
    password: Option<usize>,
    name: Option<usize>,
}

impl Rec {
    fn line(&self) -> String {
        let mut obj = serde_json::Map::new();
        if let Some(e) = self.email {
            obj.insert("email".into(), EMAILS[e].into());
        }
        if let Some(u) = self.username {
            obj.insert("username".into(), USERNAMES[u].into());
        }
        if let Some(p) = self.password {
            obj.insert("password".into(), PASSWORDS[p].into());
        }
        if let Some(n) = self.name {
            obj.insert("full_name".into(), NAMES[n].into());
        }
        serde_json::Value::Object(obj).to_string()
    }
}

fn rec() -> impl Strategy<Value = Rec> {
    (
        prop::option::weighted(0.8, 0..EMAILS.len()),
        prop::option::weighted(0.5, 0..USERNAMES.len()),
        prop::option::of(0..PASSWORDS.len()),
        prop::option::of(0..NAMES.len()),
    )
        .prop_map(|(email, username, password, name)| {
            let username = if email.is_none() && username.is_none() { Some(0) } else { username };
            Rec { email, username, password, name }
        })
}

#[derive(Clone, Debug)]
enum Op {
    /// A dump of a source (new, or a new file of a source the index has, with some
    /// records it had already).
    Add {
        source: u32,
        records: Vec<Rec>,
        repeat: usize,
    },
    RemoveSource(u32),
    RemoveEmail(usize),
    RemoveUsername(usize),
    Compact,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (1..=SOURCES, prop::collection::vec(rec(), 1..8), 0usize..4)
            .prop_map(|(source, records, repeat)| Op::Add { source, records, repeat }),
        1 => (1..=SOURCES).prop_map(Op::RemoveSource),
        1 => (0..EMAILS.len()).prop_map(Op::RemoveEmail),
        1 => (0..USERNAMES.len()).prop_map(Op::RemoveUsername),
        1 => Just(Op::Compact),
    ]
}

/// The effective data.
#[derive(Default)]
struct Model {
    /// By source: its files, in the order they were added.
    files: BTreeMap<u32, Vec<Vec<Rec>>>,
    removed: BTreeSet<u32>,
    emails: BTreeSet<String>,
    usernames: BTreeSet<String>,
}

fn norm_email(i: usize) -> String {
    normalize_email(EMAILS[i]).unwrap().into_owned()
}

fn norm_username(i: usize) -> String {
    normalize_username(USERNAMES[i]).unwrap().into_owned()
}

impl Model {
    fn live(&self, r: &Rec) -> bool {
        !r.email.is_some_and(|e| self.emails.contains(&norm_email(e)))
            && !r.username.is_some_and(|u| self.usernames.contains(&norm_username(u)))
    }

    /// The (kind, key, source) pairs of the effective data (plain keys).
    fn pairs(&self) -> BTreeSet<(IdentifierKind, String, u32)> {
        let mut out = BTreeSet::new();
        for (source, files) in self.files.iter().filter(|(s, _)| !self.removed.contains(*s)) {
            for r in files.iter().flatten().filter(|r| self.live(r)) {
                if let Some(e) = r.email {
                    out.insert((IdentifierKind::Email, norm_email(e), *source));
                }
                if let Some(u) = r.username {
                    out.insert((IdentifierKind::Username, norm_username(u), *source));
                }
            }
        }
        out
    }
}

fn source_json(id: u32, files: Vec<String>) -> serde_json::Value {
    serde_json::json!({
        "id": id, "name": format!("source-{id}"), "title": format!("Source {id}"),
        "date": format!("20{:02}-0{}-15", 10 + id, 1 + id % 9), "description": "test dump",
        "publish_date": "2024-01-01", "files": files.into_iter().map(|p| serde_json::json!({"path": p, "format": "jsonl"})).collect::<Vec<_>>()
    })
}

/// Writes `records` as a dump file `name` in `dir`.
fn write_dump(dir: &Path, name: &str, records: &[Rec]) -> String {
    let text: String = records.iter().map(|r| r.line() + "\n").collect();
    std::fs::write(dir.join(name), text).unwrap();
    name.to_string()
}

fn write_catalog(dir: &Path, name: &str, sources: Vec<serde_json::Value>) -> Catalog {
    let path = dir.join(name);
    std::fs::write(&path, serde_json::json!({ "sources": sources }).to_string()).unwrap();
    Catalog::load(&path).unwrap()
}

fn options(mode: HashMode) -> OpenOptions {
    OpenOptions { salt: mode.is_hashed().then(|| Salt::new(SALT.to_vec()).unwrap()), populate: false }
}

/// The `--store` of a privacy build: no password asset.
fn privacy_store() -> AssetSet {
    [Asset::Email, Asset::Username, Asset::FullName].into_iter().collect()
}

fn build_options(mode: HashMode, store: Option<AssetSet>) -> breachdex::BuildOptions {
    breachdex::BuildOptions {
        hash_mode: mode,
        store,
        salt: options(mode).salt,
        threads: Some(1),
        memory_budget: breachdex::MIN_MEMORY_BUDGET,
        source_date_epoch: Some(EPOCH),
        ..Default::default()
    }
}

/// A fresh build of the model's effective data; `None` when no source is left (a
/// catalog needs one).
fn fresh(model: &Model, dir: &Path, mode: HashMode, store: Option<AssetSet>, step: usize) -> Option<Index> {
    let data = dir.join(format!("fresh-{step}"));
    std::fs::create_dir_all(&data).unwrap();
    let mut sources = Vec::new();
    for (source, files) in &model.files {
        if model.removed.contains(source) {
            continue;
        }
        let names = files
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let kept: Vec<Rec> = f.iter().filter(|r| model.live(r)).cloned().collect();
                write_dump(&data, &format!("s{source}-{i}.jsonl"), &kept)
            })
            .collect();
        sources.push(source_json(*source, names));
    }
    if sources.is_empty() {
        return None;
    }
    let catalog = write_catalog(&data, "catalog.json", sources);
    let out = data.join("index");
    let mut o = build_options(mode, store);
    o.rejects_path = Some(data.join("rejects.jsonl"));
    build_index(&catalog, &out, &o).unwrap();
    Some(Index::open(&out, &options(mode)).unwrap())
}

/// Every answer of `index` is "nothing": every source was removed.
fn assert_empty(index: &Index, context: &str) {
    assert_eq!(index.len(), 0, "{context}: record count");
    assert!(index.sources().is_empty(), "{context}: sources");
    let now = UnixTime::from_seconds(1_780_000_000);
    for text in EMAILS.iter().chain(USERNAMES) {
        assert_eq!(index.check(&Query::auto(text), now).unwrap().total_breaches, 0, "{context}: check {text}");
    }
    if let Some(p) = index.passwords() {
        for pw in PASSWORDS {
            assert_eq!(p.count(&PasswordHash::sha1_of(pw)).unwrap(), 0, "{context}: count of {pw}");
        }
    }
}

fn json<T: serde::Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).unwrap()
}

/// Every answer of `index` equals `oracle`'s.
fn assert_same(index: &Index, oracle: &Index, context: &str) {
    assert_eq!(index.len(), oracle.len(), "{context}: record count");
    assert_eq!(index.sources(), oracle.sources(), "{context}: sources");
    let now = UnixTime::from_seconds(1_780_000_000);
    let policy = AssetPolicy::default();
    let queries: Vec<&str> = EMAILS.iter().chain(USERNAMES).chain(MISSES).copied().collect();
    // The batch path (all segments' lookups in steps) answers as `check` does.
    let all: Vec<Query<'_>> = queries.iter().map(|t| Query::auto(t)).collect();
    let batch = index.check_batch(&all, now);
    for (q, b) in all.iter().zip(&batch) {
        let a = index.check(q, now).map(|r| json(&r)).map_err(|e| e.to_string());
        let b = b.as_ref().map(json).map_err(|e| e.to_string());
        assert_eq!(a, b, "{context}: check_batch {q:?}");
    }
    for text in queries {
        let q = Query::auto(text);
        let a = index.check(&q, now).map(|r| json(&r)).map_err(|e| e.to_string());
        let b = oracle.check(&q, now).map(|r| json(&r)).map_err(|e| e.to_string());
        assert_eq!(a, b, "{context}: check {text}");
        for limit in [1usize, 3] {
            let pages = |ix: &Index| {
                let mut out: Vec<(u64, Vec<String>)> = Vec::new();
                let mut cursor = String::new();
                loop {
                    let req = RecordsRequest::new(q, &policy).limit(limit).cursor(&cursor);
                    let page = ix.records(&req).unwrap_or_else(|e| panic!("{context}: records {text}: {e}"));
                    out.push((page.hits, page.results.iter().map(|r| json(r).to_string()).collect()));
                    if page.cursor.is_empty() {
                        break;
                    }
                    cursor = page.cursor.clone();
                }
                out
            };
            assert_eq!(pages(index), pages(oracle), "{context}: records {text} by pages of {limit}");
        }
    }
    match (index.passwords(), oracle.passwords()) {
        (Some(a), Some(b)) => {
            for p in PASSWORDS {
                for hash in [PasswordHash::sha1_of(p), PasswordHash::ntlm_of(p)] {
                    assert_eq!(a.count(&hash).unwrap(), b.count(&hash).unwrap(), "{context}: count of {p}");
                    let prefix = PasswordPrefix::from_hex(&hash.to_hex()[..5]).unwrap();
                    let range = |x: &breachdex::Passwords<'_>| -> Vec<(String, u64)> {
                        x.range(hash.kind(), prefix)
                            .unwrap()
                            .map(|e| e.unwrap())
                            .map(|e| (e.suffix_hex(), e.count()))
                            .collect()
                    };
                    assert_eq!(range(&a), range(&b), "{context}: range of {p}");
                }
            }
        }
        (a, b) => assert_eq!(a.is_some(), b.is_some(), "{context}: password index"),
    }
}

fn run(ops: Vec<Op>, initial: Vec<Rec>, mode: HashMode, store: Option<AssetSet>) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let salt = options(mode).salt;
    let mut model = Model::default();
    model.files.insert(1, vec![initial.clone()]);
    let name = write_dump(dir, "base.jsonl", &initial);
    let catalog = write_catalog(dir, "base.json", vec![source_json(1, vec![name])]);
    let index_dir = dir.join("index");
    build_index(&catalog, &index_dir, &build_options(mode, store)).unwrap();
    assert_eq!(
        index_dir.join("passwords.rowrefs").exists(),
        store.is_some(),
        "a build that counts passwords it does not store, and only it, has password row references"
    );
    let mut history = vec![model.pairs()];
    for (step, op) in ops.into_iter().enumerate() {
        let context = format!("{mode} step {step} {op:?}");
        match &op {
            Op::Add { source, records, repeat } => {
                if model.removed.contains(source) {
                    continue;
                }
                // Some records the index had already, then the new ones.
                let mut file: Vec<Rec> =
                    model.files.get(source).into_iter().flatten().flatten().take(*repeat).cloned().collect();
                file.extend(records.iter().cloned());
                let name = write_dump(dir, &format!("add-{step}.jsonl"), &file);
                let catalog = write_catalog(dir, &format!("add-{step}.json"), vec![source_json(*source, vec![name])]);
                let options = AddOptions {
                    salt: salt.clone(),
                    threads: Some(1),
                    memory_budget: breachdex::MIN_MEMORY_BUDGET,
                    rejects_path: Some(dir.join(format!("add-{step}.rejects"))),
                    source_date_epoch: Some(EPOCH),
                    ..Default::default()
                };
                add_to_index(&index_dir, &catalog, &options).unwrap_or_else(|e| panic!("{context}: {e}"));
                model.files.entry(*source).or_default().push(file);
            }
            Op::RemoveSource(source) => {
                let known = model.files.contains_key(source) && !model.removed.contains(source);
                let target = RemoveTarget::Source(format!("source-{source}"));
                let result = remove_from_index(
                    &index_dir,
                    &target,
                    &RemoveOptions { salt: salt.clone(), source_date_epoch: Some(EPOCH) },
                );
                if !known {
                    assert!(result.is_err(), "{context}: removing an unknown source must fail");
                    continue;
                }
                result.unwrap_or_else(|e| panic!("{context}: {e}"));
                model.removed.insert(*source);
            }
            Op::RemoveEmail(i) | Op::RemoveUsername(i) => {
                let text = match op {
                    Op::RemoveEmail(_) => EMAILS[*i],
                    _ => USERNAMES[*i],
                };
                let target = RemoveTarget::Identities(vec![text.to_string()]);
                remove_from_index(
                    &index_dir,
                    &target,
                    &RemoveOptions { salt: salt.clone(), source_date_epoch: Some(EPOCH) },
                )
                .unwrap_or_else(|e| panic!("{context}: {e}"));
                match op {
                    Op::RemoveEmail(_) => model.emails.insert(norm_email(*i)),
                    _ => model.usernames.insert(norm_username(*i)),
                };
            }
            Op::Compact => {
                let options = CompactOptions {
                    salt: salt.clone(),
                    threads: Some(1),
                    memory_budget: breachdex::MIN_MEMORY_BUDGET,
                    source_date_epoch: Some(EPOCH),
                    ..Default::default()
                };
                compact_index(&index_dir, &options).unwrap_or_else(|e| panic!("{context}: {e}"));
            }
        }
        let index = Index::open(&index_dir, &options(mode)).unwrap_or_else(|e| panic!("{context}: open: {e}"));
        match fresh(&model, dir, mode, store, step) {
            Some(oracle) => assert_same(&index, &oracle, &context),
            None => assert_empty(&index, &context),
        }
        let report = breachdex::verify(&index_dir).unwrap_or_else(|e| panic!("{context}: verify: {e}"));
        assert!(report.is_ok(), "{context}: verify: {:?}", report.problems);
        // The change feed: what each generation gained and lost.
        let pairs = model.pairs();
        let last = history.last().cloned().unwrap_or_default();
        let generation = index.generation();
        if generation as usize > history.len() {
            let deriver = KeyDeriver::new(mode, salt.as_ref()).unwrap();
            let key = |k: &str| deriver.derive(k.as_bytes()).as_bytes().to_vec();
            let mut expected: Vec<(IdentifierKind, Vec<u8>, u32, ChangeKind)> = Vec::new();
            for (kind, k, s) in pairs.difference(&last) {
                expected.push((*kind, key(k), *s, ChangeKind::Gained));
            }
            for (kind, k, s) in last.difference(&pairs) {
                expected.push((*kind, key(k), *s, ChangeKind::Lost));
            }
            expected.sort();
            let mut got: Vec<(IdentifierKind, Vec<u8>, u32, ChangeKind)> = index
                .changes(generation - 1)
                .unwrap()
                .into_iter()
                .map(|c| {
                    assert_eq!(c.generation, generation);
                    (c.kind, c.key, c.source_id, c.change)
                })
                .collect();
            got.sort();
            assert_eq!(got, expected, "{context}: changes of generation {generation}");
            history.push(pairs);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn every_history_answers_as_a_fresh_build_plain(
        initial in prop::collection::vec(rec(), 1..10),
        ops in prop::collection::vec(op(), 1..7),
    ) {
        run(ops, initial, HashMode::Plain, None);
    }

    #[test]
    fn every_history_answers_as_a_fresh_build_hashed(
        initial in prop::collection::vec(rec(), 1..10),
        ops in prop::collection::vec(op(), 1..5),
    ) {
        run(ops, initial, "sha256".parse().unwrap(), None);
    }

    #[test]
    fn every_history_answers_as_a_fresh_build_privacy(
        initial in prop::collection::vec(rec(), 1..10),
        ops in prop::collection::vec(op(), 1..7),
    ) {
        run(ops, initial, "sha256".parse().unwrap(), Some(privacy_store()));
    }
}
