//! Invariant: the batch API (`lookup_batch`, `check_batch`, `check_batch_par`) returns
//! exactly what `lookup` / `check` return on each query in turn, in every hash mode,
//! for random mixes of hits, misses, other spellings, prefixes and extensions of stored
//! identifiers, usernames, precomputed keys and invalid input, at every batch length
//! (group boundaries included).

use breachdex::Catalog;
use breachdex::CheckResult;
use breachdex::UnixTime;
use breachdex::{BuildOptions, MIN_MEMORY_BUDGET, build_index};
use breachdex::{HashMode, Salt};
use breachdex::{IdentifierKind, Index, LookupError, Matches, OpenOptions, Query};
use breachdex::{KeyDeriver, to_hex};
use breachdex::{normalize_email, normalize_username};
use breachdex_gen::{GenConfig, catalog_path, generate, identity_email, identity_username, miss_email};
use proptest::prelude::*;
use std::sync::OnceLock;

const SEED: u64 = 7;
const RECORDS: u64 = 3000;
const NOW: i64 = 1_800_000_000;

struct Fixture {
    _dir: tempfile::TempDir,
    indexes: Vec<Index>,
    /// Query texts: hits, other spellings, misses, usernames, invalid input.
    texts: Vec<String>,
    /// Precomputed keys per index (hex, hits and misses), plus malformed hex.
    keys: Vec<Vec<String>>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let gen_dir = dir.path().join("gen");
        let config = GenConfig { seed: SEED, threads: 1, ..GenConfig::new(RECORDS, &gen_dir) };
        let summary = generate(&config).unwrap();
        let catalog = Catalog::load(&catalog_path(&gen_dir)).unwrap();
        let salt = Salt::new(b"batch-test-salt-0123456789".to_vec()).unwrap();
        let mut indexes = Vec::new();
        for mode in HashMode::ALL {
            let out = dir.path().join(format!("index-{}", mode.name()));
            let salt = mode.is_hashed().then(|| salt.clone());
            let options = BuildOptions {
                hash_mode: mode,
                salt: salt.clone(),
                memory_budget: MIN_MEMORY_BUDGET,
                threads: Some(1),
                rejects_path: Some(dir.path().join(format!("rejects-{}.jsonl", mode.name()))),
                source_date_epoch: Some(NOW),
                ..BuildOptions::default()
            };
            build_index(&catalog, &out, &options).unwrap();
            indexes.push(Index::open(&out, &OpenOptions { salt, populate: false }).unwrap());
        }
        // Plain mode with the key maps' accelerators: the batch path reads them in steps.
        let out = dir.path().join("index-plain-accelerated");
        let options = BuildOptions {
            memory_budget: MIN_MEMORY_BUDGET,
            threads: Some(1),
            rejects_path: Some(dir.path().join("rejects-accelerated.jsonl")),
            source_date_epoch: Some(NOW),
            accelerator: true,
            ..BuildOptions::default()
        };
        build_index(&catalog, &out, &options).unwrap();
        indexes.push(Index::open(&out, &OpenOptions::default()).unwrap());
        let n = summary.distinct_identities;
        let mut texts = Vec::new();
        for id in (0..n).step_by((n / 60).max(1) as usize) {
            let email = identity_email(SEED, id);
            texts.push(format!("  {}  ", email.to_uppercase()));
            // Keys that a plain index's FST walk follows far: a stored key's proper
            // prefix and a key extending it.
            let mut prefix = email.clone();
            prefix.pop();
            texts.push(prefix);
            texts.push(format!("{email}x"));
            texts.push(email);
            if let Some(u) = identity_username(SEED, id) {
                texts.push(u.to_uppercase());
                let mut prefix = u.clone();
                prefix.pop();
                texts.push(prefix);
                texts.push(format!("{u}0"));
                texts.push(u);
            }
            texts.push(miss_email(id));
        }
        for bad in ["", " ", "@", "no-at-sign", "a@", "@b.c", "a b@c.d", "bob\u{7}", "x@y@z", "josé@bücher.de", "zoë"]
        {
            texts.push(bad.to_string());
        }
        texts.push("u".repeat(200));
        let keys = indexes
            .iter()
            .map(|index| {
                let mode = index.hash_mode();
                let salt = mode.is_hashed().then(|| salt.clone());
                let deriver = KeyDeriver::new(mode, salt.as_ref()).unwrap();
                let mut keys: Vec<String> = texts
                    .iter()
                    .filter_map(|t| normalize_email(t).ok().or_else(|| normalize_username(t).ok()))
                    .map(|n| to_hex(deriver.derive(n.as_bytes()).as_bytes()))
                    .collect();
                keys.extend(["", "0", "zz", "00", "0011223344556677", &"ab".repeat(32)].map(String::from));
                keys
            })
            .collect();
        Fixture { _dir: dir, indexes, texts, keys }
    })
}

/// A query chosen by three random numbers from the fixture's pools.
fn query<'a>(f: &'a Fixture, index: usize, (kind, a, b): (u8, usize, u8)) -> Query<'a> {
    let text = &f.texts[a % f.texts.len()];
    match kind % 6 {
        0 | 1 => Query::auto(text),
        2 => Query::Email(text),
        3 => Query::Username(text),
        _ => {
            let keys = &f.keys[index];
            let kind = [None, Some(IdentifierKind::Email), Some(IdentifierKind::Username)][b as usize % 3];
            Query::Key { hex: &keys[a % keys.len()], kind }
        }
    }
}

fn error_text(e: &LookupError) -> String {
    format!("{}: {e} ({e:?})", e.code())
}

fn same_checks(single: &Result<CheckResult<'_>, LookupError>, batch: &Result<CheckResult<'_>, LookupError>) -> bool {
    match (single, batch) {
        (Ok(a), Ok(b)) => a == b,
        (Err(a), Err(b)) => error_text(a) == error_text(b),
        _ => false,
    }
}

fn rows(result: Result<Matches<'_>, LookupError>) -> Result<(bool, Vec<u64>), String> {
    result.map(|m| (m.is_contiguous(), m.collect())).map_err(|e| error_text(&e))
}

fn assert_batch_matches_single(index: &Index, queries: &[Query<'_>]) {
    let single: Vec<_> = queries.iter().map(|q| index.check(q, UnixTime::from_seconds(NOW))).collect();
    let batch = index.check_batch(queries, UnixTime::from_seconds(NOW));
    let par = index.check_batch_par(queries, UnixTime::from_seconds(NOW));
    assert_eq!(batch.len(), queries.len());
    assert_eq!(par.len(), queries.len());
    for (i, q) in queries.iter().enumerate() {
        assert!(
            same_checks(&single[i], &batch[i]),
            "{}: check {q:?}: {:?} vs batch {:?}",
            index.hash_mode(),
            single[i],
            batch[i]
        );
        assert!(
            same_checks(&single[i], &par[i]),
            "{}: check {q:?}: {:?} vs par {:?}",
            index.hash_mode(),
            single[i],
            par[i]
        );
    }
    let looked: Vec<_> = index.lookup_batch(queries).into_iter().map(rows).collect();
    assert_eq!(looked.len(), queries.len());
    for (q, batch) in queries.iter().zip(looked) {
        assert_eq!(rows(index.lookup(q)), batch, "{}: lookup {q:?}", index.hash_mode());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn batch_equals_one_by_one(picks in prop::collection::vec((any::<u8>(), any::<usize>(), any::<u8>()), 0..70)) {
        let f = fixture();
        for (i, index) in f.indexes.iter().enumerate() {
            let queries: Vec<Query<'_>> = picks.iter().map(|p| query(f, i, *p)).collect();
            assert_batch_matches_single(index, &queries);
        }
    }
}

/// Every pool entry in every role, in one batch larger than the parallel chunk.
#[test]
fn every_query_of_the_pools_in_one_large_batch() {
    let f = fixture();
    for (i, index) in f.indexes.iter().enumerate() {
        let mut queries = Vec::new();
        for kind in 0..6u8 {
            for a in 0..f.texts.len().max(f.keys[i].len()) {
                for b in 0..3u8 {
                    queries.push(query(f, i, (kind, a, b)));
                }
            }
        }
        assert!(queries.len() > 1000, "{}", queries.len());
        let hits = queries.iter().filter(|q| index.lookup(q).is_ok_and(|m| !m.is_empty())).count();
        let usernames = queries
            .iter()
            .filter(|q| matches!(q, Query::Username(_)) && index.lookup(q).is_ok_and(|m| !m.is_empty()))
            .count();
        let errors = queries.iter().filter(|q| index.lookup(q).is_err()).count();
        assert!(hits > 100 && usernames > 10 && errors > 50, "{hits} hits, {usernames} usernames, {errors} errors");
        assert_batch_matches_single(index, &queries);
    }
}

/// All queries of the pools for index `i`, in every role.
fn all_queries(f: &Fixture, i: usize) -> Vec<Query<'_>> {
    let mut queries = Vec::new();
    for kind in 0..6u8 {
        for a in 0..f.texts.len().max(f.keys[i].len()) {
            queries.push(query(f, i, (kind, a, a as u8)));
        }
    }
    queries
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Damaged bytes give the batch path the same errors (or the same wrong but
    /// in-bounds answers) as single lookups, and never a panic.
    #[test]
    fn batch_equals_one_by_one_on_damaged_bytes(
        mode in 0..HashMode::ALL.len(),
        file in 0..6usize,
        at in any::<prop::sample::Index>(),
        span in 1..8usize,
        flip in 1..=255u8,
    ) {
        let f = fixture();
        let index = &f.indexes[mode];
        let dir = index.dir();
        let mut files = std::collections::BTreeMap::new();
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            files.insert(entry.file_name().to_string_lossy().into_owned(), std::fs::read(entry.path()).unwrap());
        }
        let hashed = index.hash_mode().is_hashed();
        let (email_map, username_map) =
            if hashed { ("email.keys", "username.keys") } else { ("email.fst", "username.fst") };
        // Which file, and which share of its body (the tail of a key file is the radix
        // directory in hashed modes).
        let (name, from) = match file {
            0 => (email_map, 0.0),
            1 => (email_map, 0.8),
            2 => (username_map, 0.8),
            3 => ("email.ranges", 0.0),
            4 => ("username.postings", 0.0),
            _ => ("records.hot", 0.0),
        };
        let bytes = files.get_mut(name).unwrap_or_else(|| panic!("{name} missing"));
        // Damage the body only: header damage is caught at open.
        let (start, end) = (64, bytes.len().saturating_sub(16));
        prop_assume!(start < end);
        let start = start + ((end - start) as f64 * from) as usize;
        let pos = start + at.index(end - start);
        for b in &mut bytes[pos..(pos + span).min(end)] {
            *b ^= flip;
        }
        let salt = hashed.then(|| Salt::new(b"batch-test-salt-0123456789".to_vec()).unwrap());
        let Ok(damaged) = Index::from_files(files, &OpenOptions { salt, populate: false }) else {
            return Ok(());
        };
        assert_batch_matches_single(&damaged, &all_queries(f, mode));
    }
}

/// The accelerated plain index (the fixture's last) answers every query, one by one
/// and in batches, exactly as the plain index without accelerator.
#[test]
fn the_accelerator_changes_no_answer() {
    let f = fixture();
    let plain = &f.indexes[0];
    let accelerated = f.indexes.last().unwrap();
    assert_eq!(plain.hash_mode(), HashMode::Plain);
    assert_eq!(accelerated.hash_mode(), HashMode::Plain);
    let mut queries = Vec::new();
    for kind in 0..6u8 {
        for a in 0..f.texts.len().max(f.keys[0].len()) {
            for b in 0..3u8 {
                queries.push(query(f, 0, (kind, a, b)));
            }
        }
    }
    let now = UnixTime::from_seconds(NOW);
    for q in &queries {
        assert_eq!(rows(plain.lookup(q)), rows(accelerated.lookup(q)), "lookup {q:?}");
    }
    let a = plain.check_batch(&queries, now);
    let b = accelerated.check_batch(&queries, now);
    for ((q, a), b) in queries.iter().zip(&a).zip(&b) {
        assert!(same_checks(a, b), "check {q:?}: {a:?} vs {b:?}");
    }
}
