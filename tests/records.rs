//! `records` must return exactly the matched records under the asset policy: allowed assets as stored, others (and unstored ones) as eight asterisks, absent ones omitted, hashed ones as the independently computed salted digest; pages of at most 1,000 in (source, document id) order return every record once, and a cursor only works for the query, policy and index build it came from. The `records`
//! command itself is tested in crates/breachdex-cli/tests/records.rs.

use breachdex::Catalog;
use breachdex::to_hex;
use breachdex::{Asset, AssetSet, HashMode, Salt};
use breachdex::{AssetPolicy, HashAlgorithm, PolicyError, RecordsError, RecordsPage, RecordsRequest, SaltPosition};
use breachdex::{BuildOptions, build_index};
use breachdex::{Index, OpenOptions, Query};
use proptest::prelude::*;
use serde_json::Value;
use sha2::Digest;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const MASK: &str = "********";
const OUTPUT_SALT: &str = "pepper-2026";
const INDEX_SALT: &[u8] = b"records-test-only-salt-0123456789";

/// One record of a generated dump: asset → value.
type Rec = BTreeMap<Asset, String>;

fn csv_field(v: &str) -> String {
    format!("\"{}\"", v.replace('"', "\"\""))
}

/// Writes one CSV per source (every asset a column) and a catalog; returns its path.
fn write_catalog(dir: &Path, sources: &[Vec<Rec>]) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let header = Asset::ALL.map(Asset::name).join(",");
    let mut entries = Vec::new();
    for (i, recs) in sources.iter().enumerate() {
        let mut text = format!("{header}\n");
        for r in recs {
            let row: Vec<String> =
                Asset::ALL.iter().map(|a| r.get(a).map(|v| csv_field(v)).unwrap_or_default()).collect();
            text.push_str(&row.join(","));
            text.push('\n');
        }
        let file = format!("source{}.csv", i + 1);
        std::fs::write(dir.join(&file), text).unwrap();
        entries.push(serde_json::json!({"id": i + 1, "name": format!("source-{}", i + 1),
            "title": format!("Source {}", i + 1), "date": "2024-01-01", "description": "test",
            "publish_date": format!("2024-02-{:02}", i + 1), "files": [{"path": file}]}));
    }
    let path = dir.join("catalog.json");
    std::fs::write(&path, serde_json::json!({ "sources": entries }).to_string()).unwrap();
    path
}

fn build(catalog: &Path, out: &Path, mode: HashMode, store: Option<AssetSet>) -> Index {
    let salt = mode.is_hashed().then(|| Salt::new(INDEX_SALT.to_vec()).unwrap());
    let options = BuildOptions {
        hash_mode: mode,
        salt: salt.clone(),
        store,
        threads: Some(1),
        force: true,
        source_date_epoch: Some(1_795_435_200),
        rejects_path: Some(out.with_extension("rejects.jsonl")),
        ..BuildOptions::default()
    };
    build_index(&Catalog::load(catalog).unwrap(), out, &options).unwrap();
    Index::open(out, &OpenOptions { salt, populate: false }).unwrap()
}

/// A record holding every asset, with values that validate.
fn full_record(email: &str, n: usize) -> Rec {
    let values = [
        email.to_string(),
        format!("user{n}"),
        format!("pw-{n}"),
        format!("{n:032x}"),
        // Every value carries `n`, so records with different `n` are never duplicates
        // (even a record holding only these two assets).
        format!("md5-{n}"),
        format!("salt{n}"),
        format!("Name {n}"),
        format!("+1 555 {n:04}"),
        format!("{}-01-01", 1900 + n % 100),
        format!("{n} Main Street"),
        format!("10.0.{}.{}", n / 256 % 256, n % 256),
        format!("https://example.com/{n}"),
    ];
    Asset::ALL.into_iter().zip(values).collect()
}

fn to_json(page: &RecordsPage<'_>) -> Value {
    serde_json::to_value(page).unwrap()
}

fn sha(alg: HashAlgorithm, input: &[u8]) -> String {
    match alg {
        HashAlgorithm::Sha1 => to_hex(&sha1::Sha1::digest(input)),
        HashAlgorithm::Sha224 => to_hex(&sha2::Sha224::digest(input)),
        HashAlgorithm::Sha256 => to_hex(&sha2::Sha256::digest(input)),
        HashAlgorithm::Sha384 => to_hex(&sha2::Sha384::digest(input)),
        HashAlgorithm::Sha512 => to_hex(&sha2::Sha512::digest(input)),
    }
}

#[test]
fn masking_every_asset_kind_and_always_shown_fields() {
    let tmp = tempfile::tempdir().unwrap();
    let mut sparse = Rec::new();
    sparse.insert(Asset::Email, "Mixed.Case@Example.com".into());
    sparse.insert(Asset::Phone, "+44 20 7946 0000".into());
    let catalog = write_catalog(&tmp.path().join("in"), &[vec![full_record("mixed.case@example.com", 7), sparse]]);
    let index = build(&catalog, &tmp.path().join("idx"), HashMode::Plain, None);
    let query = Query::Email("MIXED.case@example.com");
    for allowed in Asset::ALL {
        let policy = AssetPolicy::builder().allow([allowed].into_iter().collect()).build().unwrap();
        let page = index.records(&RecordsRequest::new(query, &policy)).unwrap();
        assert_eq!((page.hits, page.results.len(), page.cursor.as_str()), (2, 2, ""));
        for (record, out) in page.results.iter().zip(to_json(&page)["results"].as_array().unwrap()) {
            let obj = out.as_object().unwrap();
            // serde_json::Value sorts keys: read the order off the serialized text.
            let text = serde_json::to_string(record).unwrap();
            let mut keys: Vec<(usize, &str)> =
                obj.keys().map(|k| (text.find(&format!("\"{k}\":")).unwrap(), k.as_str())).collect();
            keys.sort();
            let keys: Vec<&str> = keys.into_iter().map(|(_, k)| k).collect();
            assert_eq!(&keys[..3], ["document_id", "source_id", "publish_date"], "always shown, first");
            assert_eq!(obj["source_id"], 1);
            assert_eq!(obj["publish_date"], "2024-02-01");
            assert_eq!(obj["document_id"].as_str().unwrap().len(), 36);
            let holds: Vec<Asset> = Asset::ALL.into_iter().filter(|a| record.get(*a).is_some()).collect();
            assert_eq!(keys[3..], holds.iter().map(|a| a.name()).collect::<Vec<_>>()[..], "canonical order");
            for a in Asset::ALL {
                match record.get(a) {
                    None => assert!(!obj.contains_key(a.name()), "absent {a} omitted"),
                    Some(v) if a == allowed => assert_ne!(v, MASK, "allowed {a} shown"),
                    Some(v) => assert_eq!(v, MASK, "{a} outside the allow-list masked"),
                }
            }
        }
    }
    // Default policy: everything as stored.
    let page = index.records(&RecordsRequest::new(query, &AssetPolicy::default())).unwrap();
    let full = page.results.iter().find(|r| r.get(Asset::Username).is_some()).unwrap();
    assert_eq!(full.get(Asset::PasswordPlaintext), Some("pw-7"));
    assert_eq!(full.get(Asset::TargetUrl), Some("https://example.com/7"));
    let sparse = page.results.iter().find(|r| r.get(Asset::Username).is_none()).unwrap();
    assert_eq!(sparse.values.iter().flatten().count(), 2);
    assert_eq!(sparse.get(Asset::Email), Some("Mixed.Case@Example.com"), "original spelling kept");

    // An index that does not store an asset masks it even when allowed.
    let store = AssetSet::parse_list("email,password_hash").unwrap();
    let narrow = build(&catalog, &tmp.path().join("narrow"), HashMode::Plain, Some(store));
    let page = narrow.records(&RecordsRequest::new(query, &AssetPolicy::default())).unwrap();
    let full = page.results.iter().find(|r| r.get(Asset::Username).is_some()).unwrap();
    assert_eq!(full.get(Asset::PasswordHash), Some(format!("{:032x}", 7).as_str()));
    assert_eq!(full.get(Asset::Username), Some(MASK));
    assert_eq!(full.get(Asset::PasswordPlaintext), Some(MASK));
}

#[test]
fn hashed_outputs_match_independent_digests() {
    let tmp = tempfile::tempdir().unwrap();
    let catalog = write_catalog(&tmp.path().join("in"), &[vec![full_record("Hash.Me@Example.COM", 3)]]);
    let index = build(&catalog, &tmp.path().join("idx"), HashMode::Sha256, None);
    let query = Query::Email("hash.me@example.com");
    for alg in HashAlgorithm::ALL {
        for position in [SaltPosition::Right, SaltPosition::Left] {
            let spec = format!("email={alg},password_plaintext={alg},full_name={}", alg.name().to_uppercase());
            let policy = AssetPolicy::parse(None, Some(&spec), Some(OUTPUT_SALT), position).unwrap();
            let page = index.records(&RecordsRequest::new(query, &policy)).unwrap();
            let r = &page.results[0];
            let salted = |v: &str| match position {
                SaltPosition::Right => format!("{v}{OUTPUT_SALT}"),
                _ => format!("{OUTPUT_SALT}{v}"),
            };
            // The stored e-mail keeps its capitals; the digest is of its lower case.
            assert_eq!(r.get(Asset::Email).unwrap(), sha(alg, salted("hash.me@example.com").as_bytes()));
            assert_eq!(r.get(Asset::PasswordPlaintext).unwrap(), sha(alg, salted("pw-3").as_bytes()));
            assert_eq!(r.get(Asset::FullName).unwrap(), sha(alg, salted("Name 3").as_bytes()), "no lower-casing");
            assert_eq!(r.get(Asset::Username), Some("user3"), "not hashed");
            // A per-call salt overrides the policy's.
            let other = index.records(&RecordsRequest::new(query, &policy).output_salt("another-salt-1")).unwrap();
            let expect = match position {
                SaltPosition::Right => sha(alg, b"pw-3another-salt-1"),
                _ => sha(alg, b"another-salt-1pw-3"),
            };
            assert_eq!(other.results[0].get(Asset::PasswordPlaintext).unwrap(), expect);
        }
    }
    // Known vectors, written out: SHA-1 and SHA-256 of "user@example.com" ‖ "pepper-2026".
    assert_eq!(sha(HashAlgorithm::Sha1, b"abc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
    let policy =
        AssetPolicy::parse(Some("email"), Some("email=sha256"), Some(OUTPUT_SALT), SaltPosition::Right).unwrap();
    let catalog = write_catalog(&tmp.path().join("in2"), &[vec![full_record("USER@example.com", 1)]]);
    let index = build(&catalog, &tmp.path().join("idx2"), HashMode::Plain, None);
    let page = index.records(&RecordsRequest::new(Query::Email("user@example.com"), &policy)).unwrap();
    assert_eq!(
        page.results[0].get(Asset::Email).unwrap(),
        "1c1ffc5c6c1f7ac253048b026aeaf5dbee345e8436a26e8e4dc31d17e559457f"
    );
}

#[test]
fn invalid_policies_say_which_part_is_wrong() {
    let err = |allow: Option<&str>, hash: Option<&str>, salt: Option<&str>| {
        AssetPolicy::parse(allow, hash, salt, SaltPosition::Right).unwrap_err()
    };
    assert_eq!(
        err(Some("email,shoe_size"), None, None),
        PolicyError::UnknownAsset { list: "allow-list", name: "shoe_size".into() }
    );
    assert!(err(None, Some("shoe_size=sha1"), None).to_string().contains("'shoe_size' in the hash list"));
    assert!(err(None, Some("phone=md5"), None).to_string().contains("unknown hash algorithm 'md5' for asset phone"));
    assert!(err(None, None, Some("123456789")).to_string().contains("9 characters long; it must be 10 to 24"));
    assert!(err(None, None, Some("1234567890123456789012345")).to_string().contains("25 characters long"));
    assert!(AssetPolicy::parse(None, None, Some("1234567890"), SaltPosition::Right).is_ok());
    assert!(AssetPolicy::parse(None, None, Some(&"y".repeat(24)), SaltPosition::Right).is_ok());
    // Hashing without any salt fails at the call, naming the assets.
    let tmp = tempfile::tempdir().unwrap();
    let catalog = write_catalog(&tmp.path().join("in"), &[vec![full_record("a@b.example", 1)]]);
    let index = build(&catalog, &tmp.path().join("idx"), HashMode::Plain, None);
    let policy = AssetPolicy::parse(None, Some("phone=sha1"), None, SaltPosition::Right).unwrap();
    let e = index.records(&RecordsRequest::new(Query::Email("a@b.example"), &policy)).unwrap_err();
    assert!(e.to_string().contains("hashing assets (phone) needs an output salt"), "{e}");
    assert_eq!(e.code(), "validation_error");
    let e = index.records(&RecordsRequest::new(Query::Email("a@b.example"), &policy).output_salt("short")).unwrap_err();
    assert!(e.to_string().contains("5 characters long"), "{e}");
    for limit in [0, 1001] {
        let e = index.records(&RecordsRequest::new(Query::Email("a@b.example"), &AssetPolicy::default()).limit(limit));
        assert!(matches!(e, Err(RecordsError::InvalidLimit(l)) if l == limit));
    }
}

/// Every record of a query, following cursors with `limit`; checks each page's size.
fn all_pages(index: &Index, query: &Query<'_>, policy: &AssetPolicy, limit: Option<usize>) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = index
            .records(&RecordsRequest { cursor: Some(&cursor), limit, ..RecordsRequest::new(*query, policy) })
            .unwrap();
        let per_page = limit.unwrap_or(1000) as u64;
        let expected = (page.hits - out.len() as u64).min(per_page);
        assert_eq!(page.results.len() as u64, expected, "full pages until the last");
        out.extend(to_json(&page)["results"].as_array().unwrap().iter().cloned());
        if page.cursor.is_empty() {
            assert_eq!(out.len() as u64, page.hits, "the last cursor is empty exactly at the end");
            return out;
        }
        cursor = page.cursor;
    }
}

fn order_key(v: &Value) -> (u64, String) {
    (v["source_id"].as_u64().unwrap(), v["document_id"].as_str().unwrap().to_string())
}

#[test]
fn pagination_over_thousands_of_records_and_cursor_binding() {
    let tmp = tempfile::tempdir().unwrap();
    let mut sources = vec![Vec::new(), Vec::new(), Vec::new()];
    for n in 0..3500usize {
        let mut r = Rec::new();
        // Interleave sources so neither order is the input order.
        if n % 5 == 0 {
            r.insert(Asset::Username, "PagedUser".into());
        } else {
            r.insert(Asset::Email, "many@example.com".into());
            if n % 2 == 0 {
                r.insert(Asset::Username, "pageduser".into());
            }
        }
        r.insert(Asset::PasswordPlaintext, format!("pw-{n}"));
        sources[n % 3].push(r);
    }
    sources[0].push(full_record("other@example.com", 1));
    let catalog = write_catalog(&tmp.path().join("in"), &sources);
    let index = build(&catalog, &tmp.path().join("idx"), HashMode::Sha256, None);
    let policy = AssetPolicy::parse(Some("password_plaintext"), None, None, SaltPosition::Right).unwrap();

    let email = Query::Email("Many@Example.com");
    let user = Query::Username("pageduser");
    for (query, expected) in [(email, 2800usize), (user, 700 + 1400)] {
        let records = all_pages(&index, &query, &policy, None);
        assert_eq!(records.len(), expected);
        let keys: Vec<(u64, String)> = records.iter().map(order_key).collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]), "sorted by source, then document id, no repeats");
        let passwords: BTreeSet<&str> = records.iter().map(|r| r["password_plaintext"].as_str().unwrap()).collect();
        assert_eq!(passwords.len(), expected, "every record exactly once");
        // Other page sizes give the same sequence.
        assert_eq!(all_pages(&index, &query, &policy, Some(333)), records);
    }

    let first = index.records(&RecordsRequest::new(email, &policy)).unwrap();
    assert_eq!((first.hits, first.results.len()), (2800, 1000));
    let cursor = first.cursor.clone();
    assert_eq!(cursor.len(), 34);
    assert!(cursor.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()), "URL-safe lowercase hex");
    // Another spelling of the same e-mail is the same query.
    let again =
        index.records(&RecordsRequest::new(Query::Email(" MANY@example.COM "), &policy).cursor(&cursor)).unwrap();
    assert_eq!(again.results.len(), 1000);
    let cursor_error = |r: Result<RecordsPage<'_>, RecordsError>| {
        let e = r.unwrap_err();
        assert_eq!(e.code(), "cursor_error", "{e}");
        e.to_string()
    };
    // Another query, another policy, another salt position, another output salt.
    let msg = cursor_error(index.records(&RecordsRequest::new(user, &policy).cursor(&cursor)));
    assert!(msg.contains("another query, policy, output salt or index build"), "{msg}");
    cursor_error(index.records(&RecordsRequest::new(Query::Email("other@example.com"), &policy).cursor(&cursor)));
    cursor_error(index.records(&RecordsRequest::new(email, &AssetPolicy::default()).cursor(&cursor)));
    let left = AssetPolicy::parse(Some("password_plaintext"), None, None, SaltPosition::Left).unwrap();
    cursor_error(index.records(&RecordsRequest::new(email, &left).cursor(&cursor)));
    cursor_error(index.records(&RecordsRequest::new(email, &policy).cursor(&cursor).output_salt("some-salt-123")));
    // Another build of other data.
    sources[1].push(full_record("many@example.com", 99));
    let catalog2 = write_catalog(&tmp.path().join("in2"), &sources);
    let index2 = build(&catalog2, &tmp.path().join("idx2"), HashMode::Sha256, None);
    cursor_error(index2.records(&RecordsRequest::new(email, &policy).cursor(&cursor)));
    // Tampered and malformed cursors.
    let mut tampered = cursor.clone().into_bytes();
    tampered[3] = if tampered[3] == b'1' { b'2' } else { b'1' };
    cursor_error(index.records(&RecordsRequest::new(email, &policy).cursor(std::str::from_utf8(&tampered).unwrap())));
    cursor_error(index.records(&RecordsRequest::new(email, &policy).cursor("not a cursor")));
    // The cursor holds no identifier, neither as text nor as the index key.
    let key_hex = to_hex(&index.query_key(&email).unwrap().1);
    assert!(!cursor.contains(&key_hex[..16]) && !cursor.contains(&to_hex(b"many")));
}

// ---------------------------------------------------------------------------------------
// Property: random records and policies against a model
// ---------------------------------------------------------------------------------------

const POOL: &[&str] = &["alice@example.com", "Bob@Example.org"];

#[derive(Clone, Debug)]
struct GenRecord {
    source: usize,
    email: usize,
    assets: Vec<Asset>,
}

#[derive(Clone, Debug)]
struct GenPolicy {
    allow: Option<Vec<Asset>>,
    hash: Vec<(Asset, HashAlgorithm)>,
    left: bool,
}

fn non_identifier_assets() -> Vec<Asset> {
    Asset::ALL.into_iter().filter(|a| !a.is_identifier()).collect()
}

fn gen_record() -> impl Strategy<Value = GenRecord> {
    (0..3usize, 0..POOL.len(), proptest::sample::subsequence(non_identifier_assets(), 1..=10), any::<bool>()).prop_map(
        |(source, email, mut assets, with_username)| {
            if with_username {
                assets.push(Asset::Username);
            }
            GenRecord { source, email, assets }
        },
    )
}

fn gen_policy() -> impl Strategy<Value = GenPolicy> {
    let alg = proptest::sample::select(HashAlgorithm::ALL.to_vec());
    (
        proptest::option::of(proptest::sample::subsequence(Asset::ALL.to_vec(), 0..=12)),
        proptest::collection::vec((proptest::sample::select(Asset::ALL.to_vec()), alg), 0..4),
        any::<bool>(),
    )
        .prop_map(|(allow, hash, left)| {
            let mut seen = BTreeSet::new();
            let hash = hash
                .into_iter()
                .filter(|(a, _)| allow.as_ref().is_none_or(|l| l.contains(a)) && seen.insert(*a))
                .collect();
            GenPolicy { allow, hash, left }
        })
}

fn value_of(asset: Asset, n: usize, email: &str) -> String {
    if asset == Asset::Email { email.to_string() } else { full_record(email, n)[&asset].clone() }
}

/// The model's output of one record: asset name → expected output (no document id).
fn model_output(rec: &GenRecord, n: usize, policy: &GenPolicy) -> BTreeMap<String, String> {
    let email = POOL[rec.email];
    let mut out = BTreeMap::new();
    out.insert("source_id".to_string(), (rec.source + 1).to_string());
    out.insert("publish_date".to_string(), format!("2024-02-{:02}", rec.source + 1));
    for a in rec.assets.iter().copied().chain([Asset::Email]) {
        let value = value_of(a, n, email);
        let allowed = policy.allow.as_ref().is_none_or(|l| l.contains(&a));
        let shown = match policy.hash.iter().find(|(h, _)| *h == a) {
            _ if !allowed => MASK.to_string(),
            None => value,
            Some((_, alg)) => {
                let v = if a == Asset::Email { value.to_lowercase() } else { value };
                let input = if policy.left { format!("{OUTPUT_SALT}{v}") } else { format!("{v}{OUTPUT_SALT}") };
                sha(*alg, input.as_bytes())
            }
        };
        out.insert(a.name().to_string(), shown);
    }
    out
}

fn observed(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| *k != "document_id")
        .map(|(k, v)| (k.clone(), v.as_str().map_or_else(|| v.to_string(), str::to_string)))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, .. ProptestConfig::default() })]

    #[test]
    fn records_equal_the_model(
        recs in proptest::collection::vec(gen_record(), 1..40),
        policy in gen_policy(),
        hashed_index in any::<bool>(),
        limit in 1usize..12,
    ) {
        let tmp = tempfile::tempdir().unwrap();
        let mut sources = vec![Vec::new(), Vec::new(), Vec::new()];
        for (n, r) in recs.iter().enumerate() {
            // Values carry the record number, so no two records are duplicates.
            let mut rec: Rec = r.assets.iter().map(|a| (*a, value_of(*a, n, POOL[r.email]))).collect();
            rec.insert(Asset::Email, POOL[r.email].to_string());
            sources[r.source].push(rec);
        }
        let catalog = write_catalog(&tmp.path().join("in"), &sources);
        let mode = if hashed_index { HashMode::Xxh3_128 } else { HashMode::Plain };
        let index = build(&catalog, &tmp.path().join("idx"), mode, None);
        let mut builder = AssetPolicy::builder().salt(OUTPUT_SALT);
        if let Some(allow) = &policy.allow {
            builder = builder.allow(allow.iter().copied().collect());
        }
        for (a, alg) in &policy.hash {
            builder = builder.hash(*a, *alg);
        }
        if policy.left {
            builder = builder.salt_position(SaltPosition::Left);
        }
        let asset_policy = builder.build().unwrap();
        for (e, email) in POOL.iter().enumerate() {
            let mut expected: Vec<BTreeMap<String, String>> = recs
                .iter()
                .enumerate()
                .filter(|(_, r)| r.email == e)
                .map(|(n, r)| model_output(r, n, &policy))
                .collect();
            let got = all_pages(&index, &Query::Email(email), &asset_policy, Some(limit));
            let keys: Vec<(u64, String)> = got.iter().map(order_key).collect();
            prop_assert!(keys.windows(2).all(|w| w[0] < w[1]));
            let mut got: Vec<BTreeMap<String, String>> = got.iter().map(observed).collect();
            expected.sort();
            got.sort();
            prop_assert_eq!(got, expected);
        }
    }
}
