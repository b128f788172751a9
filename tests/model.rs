//! Invariant: for random record sets, every hash mode returns exactly what a simple HashMap model built from the same records returns, for present and absent keys and for other spellings of present keys.
//!
//! The model is built in this file from the generated records alone: records are
//! attributed to pool identities by construction (not by the library's normalizer), exact
//! duplicates inside a source are removed the way SPEC §2 defines them (same source, same
//! identifiers, same trimmed other assets: the first in input order is kept), severities
//! and risk follow SPEC §6 and the documented formula of `query::check`.

use breachdex::Catalog;
use breachdex::{Asset, AssetSet, HashMode, Salt};
use breachdex::{BuildOptions, BuildSummary, MIN_MEMORY_BUDGET, build_index};
use breachdex::{Date, UnixTime};
use breachdex::{IdentifierKind, Index, OpenOptions, Query};
use breachdex::{KeyDeriver, to_hex};
use breachdex::{normalize_email, normalize_username};
use proptest::prelude::*;
use proptest::sample::Index as PIndex;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use unicode_normalization::UnicodeNormalization;

// ---------------------------------------------------------------------------------------
// Pools
// ---------------------------------------------------------------------------------------

/// E-mail identities. Records only use the first `PRESENT_EMAILS`; the rest are near
/// misses that must never match (prefixes, missing accents, other tags, other TLDs).
const EMAILS: &[&str] = &[
    "alice@example.com",
    "alice+news@example.com",
    "Bob.Smith@Example.org",
    "josé@bücher.de",
    "müller@xn--bcher-kva.de",
    "иван@пример.рф",
    "zoë@example.com",
    "carol@sub.example.net",
    // never in any record:
    "alice@example.co",
    "alice+news2@example.com",
    "jose@bücher.de",
    "josé@bucher.de",
    "alic@example.com",
    "иван@пример.ру",
];
const PRESENT_EMAILS: usize = 8;

/// Username identities; records only use the first `PRESENT_USERNAMES`.
const USERNAMES: &[&str] = &[
    "alice",
    "Bob_99",
    "jürgen",
    "José",
    "john doe",
    "ИВАН",
    "zoë",
    // never in any record:
    "alic",
    "bob_9",
    "jurgen",
    "jose",
    "john  doe",
];
const PRESENT_USERNAMES: usize = 7;

/// E-mails that fail SPEC §4: the field is dropped, the record lives on by its username.
const BAD_EMAILS: &[&str] = &["not-an-email", "two@@example.com", "sp ace@example.com", "@example.com", "alice@"];

const PASSWORDS: &[&str] =
    &["hunter2", "p@ss:word", "  spaced out  ", "Pässwört", "comma,\"quote\";semi|pipe\ttab", "123456"];
/// (hash, declared type)
const HASHES: &[(&str, Option<&str>)] = &[
    ("5f4dcc3b5aa765d61d8327deb882cf99", Some("md5")),
    ("$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW", Some("bcrypt")),
    ("5f4dcc3b5aa765d61d8327deb882cf99", None),
    ("$2y$10$abcdefghijklmnopqrstuv", None),
    ("e38ad214943daad1d64c102faec29de4afe9da3d", Some("SHA1")),
    ("$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW", Some(" BCrypt ")),
];
const NAMES: &[&str] = &["Alice Liddell", "Smith, Bob", "José \"Pepe\" García", "Multi\nLine", "Ann\tLee", "Ζωή"];
const PHONES: &[&str] = &["+1 555 0100", "+49 151 2345678", "5550100"];
const URLS: &[&str] = &["https://example.com/login", "http://bücher.de/", "android://app@com.example/"];
const DATES: &[&str] = &["2019-05-01", "2021-07-15", "2023-01-01", "2025-12-31"];
const SOURCE_IDS: &[u32] = &[1, 7, 42, 4_000_000_000, u32::MAX];
const SOURCE_NAMES: &[&str] = &["alpha-leak", "beta.breach", "gamma_2023"];
const SEVERITY_LABELS: &[(&str, u8)] = &[("low", 2), ("medium", 5), ("high", 20), ("critical", 25)];

const BUILD_EPOCH: i64 = 1_700_000_000;
const NOW: i64 = 1_780_000_000;
const TEST_SALT: [u8; 32] = *b"breachdex-model-test-salt-32byte";

const CSV_ALIASES: &[(Asset, &[&str])] = &[
    (Asset::Email, &["email", "E-Mail", "mail"]),
    (Asset::Username, &["username", "login", "user"]),
    (Asset::PasswordPlaintext, &["password_plaintext", "password", "pwd"]),
    (Asset::PasswordHash, &["password_hash", "hash"]),
    (Asset::PasswordType, &["password_type", "hash_type"]),
    (Asset::FullName, &["full_name", "name"]),
    (Asset::Phone, &["phone", "telephone"]),
    (Asset::TargetUrl, &["target_url", "url"]),
];

fn salt() -> Salt {
    Salt::new(TEST_SALT.to_vec()).unwrap()
}

// ---------------------------------------------------------------------------------------
// Spellings
// ---------------------------------------------------------------------------------------

/// How an identity is spelled in a record or a query: all of these are the same key by
/// SPEC §4.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Spelling {
    upper: bool,
    case_seed: u32,
    nfd: bool,
    swap_domain: bool,
    pad: u8,
}

impl Spelling {
    const PLAIN: Spelling = Spelling { upper: false, case_seed: 0, nfd: false, swap_domain: false, pad: 0 };
}

fn spelling() -> impl Strategy<Value = Spelling> {
    (prop::bool::weighted(0.2), prop_oneof![2 => Just(0u32), 1 => any::<u32>()], any::<bool>(), any::<bool>(), 0u8..3)
        .prop_map(|(upper, case_seed, nfd, swap_domain, pad)| Spelling { upper, case_seed, nfd, swap_domain, pad })
}

fn toggle_case(s: &str, seed: u32) -> String {
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if seed & (1 << (i % 32)) == 0 {
            out.push(c);
            continue;
        }
        let flipped: Vec<char> = if c.is_lowercase() { c.to_uppercase().collect() } else { c.to_lowercase().collect() };
        if flipped.len() == 1 {
            out.push(flipped[0]);
        } else {
            out.push(c);
        }
    }
    out
}

/// The domain in its other form: punycode for a Unicode domain, Unicode for punycode.
fn swap_domain(domain: &str) -> String {
    if domain.is_ascii() {
        let (uni, res) = idna::domain_to_unicode(domain);
        res.unwrap();
        uni
    } else {
        idna::domain_to_ascii(domain).unwrap()
    }
}

/// Spells `canon`. `pads` are the surrounding white space choices (index `pad - 1`).
fn spell(canon: &str, sp: &Spelling, is_email: bool, pads: &[(&str, &str)]) -> String {
    let mut s = canon.to_string();
    if is_email && sp.swap_domain {
        let (local, domain) = s.split_once('@').unwrap();
        s = format!("{local}@{}", swap_domain(domain));
    }
    if sp.upper {
        s = s.to_uppercase();
    }
    s = toggle_case(&s, sp.case_seed);
    if sp.nfd {
        s = s.nfd().collect();
    }
    if sp.pad > 0 {
        let (l, r) = pads[(sp.pad as usize - 1) % pads.len()];
        s = format!("{l}{s}{r}");
    }
    s
}

/// White space usable in dump files (no line ends: combo lines and unquoted CSV).
const FILE_PADS: &[(&str, &str)] = &[(" ", "  "), ("\t ", " \t")];
/// White space for queries.
const QUERY_PADS: &[(&str, &str)] = &[("  ", "\n"), ("\u{3000}", "\t\r\n"), (" ", "")];

/// Spellings every query is tried with.
fn query_spellings(canon: &str, is_email: bool) -> Vec<String> {
    let sp = |upper, case_seed, nfd, swap_domain, pad| Spelling { upper, case_seed, nfd, swap_domain, pad };
    let mut out = vec![
        spell(canon, &Spelling::PLAIN, is_email, QUERY_PADS),
        spell(canon, &sp(true, 0, false, false, 0), is_email, QUERY_PADS),
        spell(canon, &sp(false, 0x5555_5555, false, false, 1), is_email, QUERY_PADS),
        spell(canon, &sp(false, 0, true, false, 2), is_email, QUERY_PADS),
        spell(canon, &sp(true, 0, true, false, 3), is_email, QUERY_PADS),
        canon.nfc().collect(),
    ];
    if is_email {
        out.push(spell(canon, &sp(false, 0, false, true, 0), is_email, QUERY_PADS));
        out.push(spell(canon, &sp(true, 0xaaaa_aaaa, true, true, 1), is_email, QUERY_PADS));
    }
    out.sort();
    out.dedup();
    out
}

// ---------------------------------------------------------------------------------------
// Generated records and files
// ---------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
struct GenRec {
    email: Option<(usize, Spelling)>,
    /// An invalid e-mail written when `email` is `None`.
    bad_email: Option<usize>,
    username: Option<(usize, Spelling)>,
    password: Option<usize>,
    hash: Option<usize>,
    full_name: Option<usize>,
    phone: Option<usize>,
    url: Option<usize>,
    /// 0 csv, 1 jsonl, 2 combo (combo only when the record fits a combo line).
    format: u8,
}

impl GenRec {
    /// Raw values as written in the dump (before trimming), by asset.
    fn raw(&self) -> BTreeMap<Asset, String> {
        let mut m = BTreeMap::new();
        if let Some((i, sp)) = &self.email {
            m.insert(Asset::Email, spell(EMAILS[*i], sp, true, FILE_PADS));
        } else if let Some(i) = self.bad_email {
            m.insert(Asset::Email, BAD_EMAILS[i].to_string());
        }
        if let Some((i, sp)) = &self.username {
            m.insert(Asset::Username, spell(USERNAMES[*i], sp, false, FILE_PADS));
        }
        if let Some(i) = self.password {
            m.insert(Asset::PasswordPlaintext, PASSWORDS[i].to_string());
        }
        if let Some(i) = self.hash {
            m.insert(Asset::PasswordHash, HASHES[i].0.to_string());
            if let Some(t) = HASHES[i].1 {
                m.insert(Asset::PasswordType, t.to_string());
            }
        }
        if let Some(i) = self.full_name {
            m.insert(Asset::FullName, NAMES[i].to_string());
        }
        if let Some(i) = self.phone {
            m.insert(Asset::Phone, PHONES[i].to_string());
        }
        if let Some(i) = self.url {
            m.insert(Asset::TargetUrl, URLS[i].to_string());
        }
        m
    }

    fn fits_combo(&self) -> bool {
        self.email.is_some() != self.username.is_some()
            && (self.email.is_some() || self.bad_email.is_none())
            && self.hash.is_none()
            && self.full_name.is_none()
            && self.phone.is_none()
            && self.url.is_none()
    }

    fn file_format(&self) -> u8 {
        if self.format == 2 && !self.fits_combo() { 0 } else { self.format }
    }
}

fn gen_rec() -> impl Strategy<Value = GenRec> {
    let opt = |n: usize, p: f64| prop::option::weighted(p, 0..n);
    (
        prop::option::weighted(0.8, (0..PRESENT_EMAILS, spelling())),
        prop::option::weighted(0.5, (0..PRESENT_USERNAMES, spelling())),
        (opt(BAD_EMAILS.len(), 0.2), opt(PASSWORDS.len(), 0.5)),
        opt(HASHES.len(), 0.3),
        opt(NAMES.len(), 0.3),
        opt(PHONES.len(), 0.25),
        opt(URLS.len(), 0.25),
        prop_oneof![2 => Just(0u8), 2 => Just(1u8), 3 => Just(2u8)],
    )
        .prop_map(|(email, username, (bad_email, password), hash, full_name, phone, url, format)| GenRec {
            email,
            bad_email,
            username,
            password,
            hash,
            full_name,
            phone,
            url,
            format,
        })
}

#[derive(Clone, Debug)]
struct GenSource {
    records: Vec<GenRec>,
    date: usize,
    severity: Option<usize>,
    publish_date: bool,
    delimiter: u8,
    quote_all: bool,
    crlf: bool,
    bom: bool,
    column_seed: u64,
    alias_seed: u64,
    extra_column: bool,
}

fn gen_source() -> impl Strategy<Value = GenSource> {
    (
        prop::collection::vec(gen_rec(), 0..=40),
        prop::collection::vec((any::<PIndex>(), any::<PIndex>()), 0..5),
        0..DATES.len(),
        prop::option::weighted(0.15, 0..SEVERITY_LABELS.len()),
        any::<bool>(),
        prop::sample::select(vec![b',', b';', b'\t', b'|']),
        (any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>()),
        (any::<u64>(), any::<u64>()),
    )
        .prop_map(
            |(mut records, dups, date, severity, publish_date, delimiter, (quote_all, crlf, bom, extra), seeds)| {
                // Exact duplicates: copy a record to another position (its file format may
                // differ; it is still the same record).
                for (from, to) in dups {
                    if records.is_empty() {
                        break;
                    }
                    let r = records[from.index(records.len())].clone();
                    let at = to.index(records.len() + 1);
                    records.insert(at, r);
                }
                GenSource {
                    records,
                    date,
                    severity,
                    publish_date,
                    delimiter,
                    quote_all,
                    crlf,
                    bom,
                    column_seed: seeds.0,
                    alias_seed: seeds.1,
                    extra_column: extra,
                }
            },
        )
}

#[derive(Clone, Debug)]
struct GenSet {
    sources: Vec<GenSource>,
    /// Permutations of source ids and names.
    id_seed: u64,
    name_seed: u64,
    threads: usize,
}

fn gen_set() -> impl Strategy<Value = GenSet> {
    (prop::collection::vec(gen_source(), 1..=3), any::<u64>(), any::<u64>(), 1usize..=2)
        .prop_map(|(sources, id_seed, name_seed, threads)| GenSet { sources, id_seed, name_seed, threads })
}

/// A deterministic permutation of `0..n` from a seed.
fn permutation(n: usize, mut seed: u64) -> Vec<usize> {
    let mut v: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let j = ((seed >> 33) as usize) % (i + 1);
        v.swap(i, j);
    }
    v
}

fn csv_field(value: &str, delimiter: u8, quote_all: bool) -> String {
    let d = delimiter as char;
    let needs = value.contains(d) || value.contains('"') || value.contains('\n') || value.contains('\r');
    if needs || (quote_all && !value.is_empty()) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_string()
    }
}

struct SourceMeta {
    id: u32,
    name: String,
    title: String,
    description: String,
    date: String,
    severity: Option<u8>,
    publish: Date,
}

/// Writes the dumps and catalog into `dir`; returns the catalog path, the source metadata
/// and, per source, its records in input order (file order, then line order).
fn write_inputs(set: &GenSet, dir: &Path) -> (std::path::PathBuf, Vec<SourceMeta>, Vec<Vec<GenRec>>) {
    let ids = permutation(SOURCE_IDS.len(), set.id_seed);
    let names = permutation(SOURCE_NAMES.len(), set.name_seed);
    let mut catalog_sources = Vec::new();
    let mut metas = Vec::new();
    let mut ordered = Vec::new();
    for (si, src) in set.sources.iter().enumerate() {
        let id = SOURCE_IDS[ids[si]];
        let name = SOURCE_NAMES[names[si]].to_string();
        let nl = if src.crlf { "\r\n" } else { "\n" };
        let bom = if src.bom { "\u{feff}" } else { "" };
        let by_fmt = |f: u8| src.records.iter().filter(move |r| r.file_format() == f).cloned().collect::<Vec<_>>();
        let (csv_recs, json_recs, combo_recs) = (by_fmt(0), by_fmt(1), by_fmt(2));
        let mut files = Vec::new();
        let mut in_order = Vec::new();

        if !csv_recs.is_empty() || src.records.is_empty() {
            // Header: every asset column with a random alias, in a random order, plus
            // maybe a column naming no asset.
            let mut cols: Vec<(Option<Asset>, String)> = CSV_ALIASES
                .iter()
                .enumerate()
                .map(|(k, (asset, aliases))| {
                    let pick = ((src.alias_seed >> (k * 3)) as usize) % aliases.len();
                    (Some(*asset), aliases[pick].to_string())
                })
                .collect();
            if src.extra_column {
                cols.push((None, "favourite_colour".into()));
            }
            let perm = permutation(cols.len(), src.column_seed);
            let cols: Vec<_> = perm.iter().map(|&i| cols[i].clone()).collect();
            let mut text = String::from(bom);
            let header: Vec<String> = cols.iter().map(|(_, h)| csv_field(h, src.delimiter, src.quote_all)).collect();
            text.push_str(&header.join(&(src.delimiter as char).to_string()));
            text.push_str(nl);
            for r in &csv_recs {
                let raw = r.raw();
                let fields: Vec<String> = cols
                    .iter()
                    .map(|(asset, _)| match asset {
                        Some(a) => {
                            csv_field(raw.get(a).map(String::as_str).unwrap_or(""), src.delimiter, src.quote_all)
                        }
                        None => csv_field("blue, \"dark\"", src.delimiter, src.quote_all),
                    })
                    .collect();
                text.push_str(&fields.join(&(src.delimiter as char).to_string()));
                text.push_str(nl);
            }
            let path = format!("{name}.csv");
            std::fs::write(dir.join(&path), text).unwrap();
            let delim = match src.delimiter {
                b'\t' => "tab".to_string(),
                d => (d as char).to_string(),
            };
            files.push(serde_json::json!({"path": path, "delimiter": delim}));
            in_order.extend(csv_recs);
        }
        if !json_recs.is_empty() {
            let mut text = String::from(bom);
            for (k, r) in json_recs.iter().enumerate() {
                let mut obj = serde_json::Map::new();
                for (asset, value) in r.raw() {
                    let aliases = CSV_ALIASES.iter().find(|(a, _)| *a == asset).unwrap().1;
                    let key = aliases[((src.alias_seed as usize) + k) % aliases.len()];
                    // All-digit phones sometimes as JSON numbers: kept digit for digit.
                    let v = if asset == Asset::Phone && value.bytes().all(|b| b.is_ascii_digit()) && k % 2 == 0 {
                        serde_json::Value::Number(value.parse::<u64>().unwrap().into())
                    } else {
                        serde_json::Value::String(value)
                    };
                    obj.insert(key.to_string(), v);
                }
                if src.extra_column {
                    obj.insert("dob".into(), serde_json::Value::Null);
                    obj.insert("extra".into(), serde_json::json!({"nested": [1, {"x": "y"}]}));
                }
                text.push_str(&serde_json::Value::Object(obj).to_string());
                text.push_str(nl);
            }
            let path = format!("{name}.jsonl");
            std::fs::write(dir.join(&path), text).unwrap();
            files.push(serde_json::json!({"path": path}));
            in_order.extend(json_recs);
        }
        if !combo_recs.is_empty() {
            let mut text = String::from(bom);
            for r in &combo_recs {
                let raw = r.raw();
                let id = raw.get(&Asset::Email).or_else(|| raw.get(&Asset::Username)).unwrap();
                let pw = raw.get(&Asset::PasswordPlaintext).map(String::as_str).unwrap_or("");
                text.push_str(&format!("{id}:{pw}{nl}"));
            }
            let path = format!("{name}-combo.txt");
            std::fs::write(dir.join(&path), text).unwrap();
            files.push(serde_json::json!({"path": path, "format": "combo"}));
            in_order.extend(combo_recs);
        }

        let title = format!("Breach {name}");
        let description = format!("Records of {name}, \"quoted\" and ünïcödé");
        let mut s = serde_json::json!({
            "id": id, "name": name, "title": title, "date": DATES[src.date],
            "description": description, "files": files,
        });
        let severity = src.severity.map(|k| {
            s["severity"] = serde_json::json!(SEVERITY_LABELS[k].0);
            SEVERITY_LABELS[k].1
        });
        let publish = if src.publish_date {
            s["publish_date"] = serde_json::json!("2024-05-01");
            "2024-05-01".parse().unwrap()
        } else {
            Date::from_unix_seconds(BUILD_EPOCH)
        };
        catalog_sources.push(s);
        metas.push(SourceMeta { id, name, title, description, date: DATES[src.date].into(), severity, publish });
        ordered.push(in_order);
    }
    let path = dir.join("catalog.json");
    std::fs::write(&path, serde_json::json!({ "sources": catalog_sources }).to_string()).unwrap();
    (path, metas, ordered)
}

// ---------------------------------------------------------------------------------------
// The model
// ---------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
struct ModelRecord {
    source: usize,
    email: Option<usize>,
    username: Option<usize>,
    /// Trimmed values; `None` when absent or empty after trimming.
    values: BTreeMap<Asset, String>,
}

/// What a record looks like from outside: compared between model and index.
type Observed = (u32, u8, String, Vec<(Asset, String)>, u16);

struct Model {
    sources: Vec<SourceMeta>,
    records: Vec<ModelRecord>,
    by_email: HashMap<String, Vec<usize>>,
    by_username: HashMap<String, Vec<usize>>,
}

/// SPEC §6, computed from the assets.
fn record_severity(values: &BTreeMap<Asset, String>) -> u8 {
    let has = |a| values.contains_key(&a);
    if has(Asset::PasswordPlaintext) {
        return if has(Asset::TargetUrl) { 25 } else { 20 };
    }
    if let Some(hash) = values.get(&Asset::PasswordHash) {
        let slow = match values.get(&Asset::PasswordType) {
            Some(t) => t.trim().eq_ignore_ascii_case("bcrypt"),
            // No declared type: a modular-crypt bcrypt prefix names the type.
            None => hash.starts_with("$2"),
        };
        return if slow { 5 } else { 20 };
    }
    if has(Asset::Phone) {
        return 5;
    }
    2
}

impl Model {
    fn new(sources: Vec<SourceMeta>, per_source: &[Vec<GenRec>]) -> Model {
        let mut records: Vec<ModelRecord> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (si, recs) in per_source.iter().enumerate() {
            for r in recs {
                let values: BTreeMap<Asset, String> = r
                    .raw()
                    .into_iter()
                    .map(|(a, v)| (a, v.trim().to_string()))
                    .filter(|(a, v)| !v.is_empty() && (*a != Asset::Email || r.email.is_some()))
                    .collect();
                if r.email.is_none() && r.username.is_none() {
                    continue; // no identifier: rejected
                }
                let others: Vec<(Asset, String)> =
                    values.iter().filter(|(a, _)| !a.is_identifier()).map(|(a, v)| (*a, v.clone())).collect();
                let identity = (si, r.email.as_ref().map(|e| e.0), r.username.as_ref().map(|u| u.0), others);
                if !seen.insert(identity) {
                    continue; // exact duplicate: the first in input order is kept
                }
                records.push(ModelRecord {
                    source: si,
                    email: r.email.as_ref().map(|e| e.0),
                    username: r.username.as_ref().map(|u| u.0),
                    values,
                });
            }
        }
        let mut by_email: HashMap<String, Vec<usize>> = HashMap::new();
        let mut by_username: HashMap<String, Vec<usize>> = HashMap::new();
        for (k, r) in records.iter().enumerate() {
            if let Some(e) = r.email {
                by_email.entry(normalize_email(EMAILS[e]).unwrap().into_owned()).or_default().push(k);
            }
            if let Some(u) = r.username {
                by_username.entry(normalize_username(USERNAMES[u]).unwrap().into_owned()).or_default().push(k);
            }
        }
        Model { sources, records, by_email, by_username }
    }

    fn observed(&self, r: &ModelRecord) -> Observed {
        let s = &self.sources[r.source];
        let severity = s.severity.unwrap_or_else(|| record_severity(&r.values));
        let assets: AssetSet = r.values.keys().copied().collect();
        let values = r.values.iter().map(|(a, v)| (*a, v.clone())).collect();
        (s.id, severity, s.publish.to_string(), values, assets.bits())
    }

    fn lookup(&self, canon: &str, is_email: bool) -> Vec<&ModelRecord> {
        let hits = if is_email {
            self.by_email.get(normalize_email(canon).unwrap().as_ref())
        } else {
            self.by_username.get(normalize_username(canon).unwrap().as_ref())
        };
        hits.map(|v| v.iter().map(|&k| &self.records[k]).collect()).unwrap_or_default()
    }

    fn expected_observed(&self, canon: &str, is_email: bool) -> Vec<Observed> {
        let mut v: Vec<Observed> = self.lookup(canon, is_email).into_iter().map(|r| self.observed(r)).collect();
        v.sort();
        v
    }

    /// The expected breaches of a check: (name, id, title, date, data types, severity,
    /// records, description), in SPEC §7 order, and the risk score.
    fn expected_check(&self, canon: &str, is_email: bool) -> (Vec<BreachRow>, u8) {
        let mut per: BTreeMap<usize, (u16, u8, u64)> = BTreeMap::new();
        for r in self.lookup(canon, is_email) {
            let (_, sev, _, _, assets) = self.observed(r);
            let e = per.entry(r.source).or_insert((0, 0, 0));
            e.0 |= assets;
            e.1 = e.1.max(sev);
            e.2 += 1;
        }
        let mut rows: Vec<BreachRow> = per
            .into_iter()
            .map(|(si, (types, sev, n))| {
                let s = &self.sources[si];
                (s.name.clone(), s.id, s.title.clone(), s.date.clone(), types, sev, n, s.description.clone())
            })
            .collect();
        rows.sort_by(|a, b| b.5.cmp(&a.5).then(b.3.cmp(&a.3)).then(a.0.cmp(&b.0)));
        let as_of = Date::from_unix_seconds(NOW);
        let mut clean = 1.0f64;
        for r in &rows {
            let date: Date = r.3.parse().unwrap();
            let age = (date.days_until(as_of).max(0) as f64) / 365.25;
            let recency = 0.5 + 0.5 * (-age / 4.0).exp();
            clean *= 1.0 - 0.7 * (r.5 as f64 / 25.0) * recency;
        }
        let score = (100.0 * (1.0 - clean)).round() as u8;
        (rows, score)
    }
}

type BreachRow = (String, u32, String, String, u16, u8, u64, String);

fn risk_level(score: u8, matched: bool) -> &'static str {
    match (matched, score) {
        (false, _) => "none",
        (_, 0..=24) => "low",
        (_, 25..=49) => "medium",
        (_, 50..=74) => "high",
        _ => "critical",
    }
}

fn severity_label(score: u8) -> &'static str {
    match score {
        2 => "low",
        5 => "medium",
        20 => "high",
        25 => "critical",
        _ => "?",
    }
}

// ---------------------------------------------------------------------------------------
// Building and checking
// ---------------------------------------------------------------------------------------

fn build(catalog: &Catalog, out: &Path, mode: HashMode, threads: usize) -> (Index, BuildSummary) {
    build_with(catalog, out, mode, threads, false)
}

/// [`build`], with the key map accelerator when `accelerator` (plain mode).
fn build_with(
    catalog: &Catalog,
    out: &Path,
    mode: HashMode,
    threads: usize,
    accelerator: bool,
) -> (Index, BuildSummary) {
    let options = BuildOptions {
        hash_mode: mode,
        salt: mode.is_hashed().then(salt),
        memory_budget: MIN_MEMORY_BUDGET,
        threads: Some(threads),
        source_date_epoch: Some(BUILD_EPOCH),
        accelerator,
        ..BuildOptions::default()
    };
    let summary = build_index(catalog, out, &options).unwrap_or_else(|e| panic!("build {mode}: {e}"));
    let open = if mode.is_hashed() { OpenOptions::with_salt(salt()) } else { OpenOptions::default() };
    (Index::open(out, &open).unwrap_or_else(|e| panic!("open {mode}: {e}")), summary)
}

fn observe_rows(index: &Index, rows: &[u64]) -> Vec<Observed> {
    let mut v: Vec<Observed> = rows
        .iter()
        .map(|&row| {
            let rec = index.record(row).unwrap();
            let values: Vec<(Asset, String)> =
                Asset::ALL.iter().filter_map(|&a| rec.get(a).unwrap().map(|v| (a, v.to_string()))).collect();
            let r = rec.row();
            (r.source_id, r.severity, r.publish_date.to_string(), values, rec.assets().bits())
        })
        .collect();
    v.sort();
    v
}

fn lookup_rows(index: &Index, query: &str, is_email: bool) -> Vec<u64> {
    let m = if is_email { index.lookup_email(query) } else { index.lookup_username(query) };
    let m = m.unwrap_or_else(|e| panic!("lookup {query:?}: {e}"));
    let len = m.len();
    let rows: Vec<u64> = m.collect();
    assert_eq!(rows.len(), len, "Matches::len disagrees with iteration for {query:?}");
    rows
}

fn check_rows(index: &Index, query: &Query<'_>) -> (Vec<BreachRow>, usize, u8, String) {
    let c = index.check(query, UnixTime::from_seconds(NOW)).unwrap_or_else(|e| panic!("check {query:?}: {e}"));
    assert_eq!(c.checked, query.text());
    assert_eq!(c.checked_at, UnixTime::from_seconds(NOW));
    let rows: Vec<BreachRow> = c
        .breaches
        .iter()
        .map(|b| {
            assert_eq!(b.severity.score(), b.severity_score);
            (
                b.source.to_string(),
                b.source_id,
                b.title.to_string(),
                b.date.to_string(),
                b.data_types.bits(),
                b.severity_score,
                b.records,
                b.description.to_string(),
            )
        })
        .collect();
    let level = serde_json::to_value(c.risk_level).unwrap().as_str().unwrap().to_string();
    (rows, c.total_breaches, c.risk_score, level)
}

/// Every property of the module doc, for one built index.
fn check_against_model(index: &Index, dir: &Path, mode: HashMode, model: &Model) {
    let ctx = |what: &str, q: &str| format!("[{mode}] {what} {q:?}");
    assert_eq!(index.hash_mode(), mode);
    assert_eq!(index.len(), model.records.len() as u64, "[{mode}] record count");
    for (si, s) in model.sources.iter().enumerate() {
        let info = index.source(s.id).unwrap_or_else(|| panic!("[{mode}] source {} missing", s.id));
        let n = model.records.iter().filter(|r| r.source == si).count() as u64;
        assert_eq!(info.records, n, "[{mode}] records of source {}", s.name);
        assert_eq!(info.name, s.name);
        // PwnCount (SPEC §12): one per distinct e-mail, plus one per distinct username
        // among the records without an e-mail.
        let records: Vec<&ModelRecord> = model.records.iter().filter(|r| r.source == si).collect();
        let emails: std::collections::BTreeSet<usize> = records.iter().filter_map(|r| r.email).collect();
        let usernames: std::collections::BTreeSet<usize> =
            records.iter().filter(|r| r.email.is_none()).filter_map(|r| r.username).collect();
        assert_eq!(info.pwn_count, (emails.len() + usernames.len()) as u64, "[{mode}] PwnCount of {}", s.name);
        // Data classes: derived from the assets present in the source's records.
        let assets: AssetSet = records.iter().flat_map(|r| r.values.keys().copied()).collect();
        assert_eq!(info.assets, Some(assets), "[{mode}] assets of {}", s.name);
        let classes: Vec<String> = breachdex::data_classes_of(assets).into_iter().map(String::from).collect();
        assert_eq!(info.data_classes.as_ref(), Some(&classes), "[{mode}] data classes of {}", s.name);
    }
    let deriver = KeyDeriver::new(mode, mode.is_hashed().then(salt).as_ref()).unwrap();
    for (is_email, pool) in [(true, EMAILS), (false, USERNAMES)] {
        for canon in pool.iter().copied() {
            let expected = model.expected_observed(canon, is_email);
            let (exp_breaches, exp_score) = model.expected_check(canon, is_email);
            let mut first_rows: Option<Vec<u64>> = None;
            for q in query_spellings(canon, is_email) {
                // 1 and 3: matched records equal the model's, for every spelling.
                let rows = lookup_rows(index, &q, is_email);
                assert_eq!(observe_rows(index, &rows), expected, "{}", ctx("records of", &q));
                match &first_rows {
                    None => first_rows = Some(rows),
                    Some(f) => assert_eq!(&rows, f, "{}", ctx("rows differ between spellings", &q)),
                }
                // 2: check.
                let query = if is_email { Query::Email(&q) } else { Query::Username(&q) };
                let (breaches, total, score, level) = check_rows(index, &query);
                assert_eq!(breaches, exp_breaches, "{}", ctx("check breaches of", &q));
                assert_eq!(total, exp_breaches.len(), "{}", ctx("total_breaches of", &q));
                assert_eq!(score, exp_score, "{}", ctx("risk_score of", &q));
                assert_eq!(level, risk_level(exp_score, !exp_breaches.is_empty()), "{}", ctx("risk_level of", &q));
                for b in &breaches {
                    assert_ne!(severity_label(b.5), "?");
                }
            }
            // 4: the precomputed key finds the same rows, in either map restriction.
            let rows = first_rows.unwrap();
            let normalized = if is_email {
                normalize_email(canon).unwrap().into_owned()
            } else {
                normalize_username(canon).unwrap().into_owned()
            };
            let key = deriver.derive(normalized.as_bytes());
            let kind = if is_email { IdentifierKind::Email } else { IdentifierKind::Username };
            let by_key: Vec<u64> = index.lookup_key(key.as_bytes(), Some(kind)).unwrap().collect();
            assert_eq!(by_key, rows, "{}", ctx("lookup_key (kind given) of", canon));
            let by_key_any: Vec<u64> = index.lookup_key(key.as_bytes(), None).unwrap().collect();
            assert_eq!(by_key_any, rows, "{}", ctx("lookup_key (any kind) of", canon));
            let hex = to_hex(key.as_bytes());
            let (breaches, total, score, _) = check_rows(index, &Query::Key { hex: &hex, kind: Some(kind) });
            assert_eq!((breaches, total, score), (exp_breaches.clone(), exp_breaches.len(), exp_score));
            let (breaches, _, _, _) = check_rows(index, &Query::Key { hex: &hex.to_uppercase(), kind: None });
            assert_eq!(breaches, exp_breaches, "{}", ctx("check by upper-case hex key of", canon));
        }
    }
    // 5: verify is clean.
    let report = breachdex::verify(dir).unwrap();
    assert!(report.is_ok(), "[{mode}] verify: {:?}", report.problems);
}

/// The build summary accounts for every record written (SPEC §3, §8): read = kept +
/// rejected + duplicates; an invalid e-mail beside a valid username costs only the field.
fn check_summary(summary: &BuildSummary, mode: HashMode, ordered: &[Vec<GenRec>], model: &Model) {
    let all: Vec<&GenRec> = ordered.iter().flatten().collect();
    let rejected = all.iter().filter(|r| r.email.is_none() && r.username.is_none()).count() as u64;
    let bad_fields =
        all.iter().filter(|r| r.email.is_none() && r.bad_email.is_some() && r.username.is_some()).count() as u64;
    let kept = model.records.len() as u64;
    assert_eq!(summary.records_read, all.len() as u64, "[{mode}] records_read");
    assert_eq!(summary.kept, kept, "[{mode}] kept");
    assert_eq!(summary.rejected_records, rejected, "[{mode}] rejected_records");
    assert_eq!(summary.rejected_fields, bad_fields, "[{mode}] rejected_fields");
    assert_eq!(summary.duplicates, all.len() as u64 - rejected - kept, "[{mode}] duplicates");
    assert_eq!(summary.file_errors, 0, "[{mode}] file_errors");
}

fn run_case(set: &GenSet) {
    let tmp = tempfile::tempdir().unwrap();
    let (catalog_path, metas, ordered) = write_inputs(set, tmp.path());
    let catalog = Catalog::load(&catalog_path).unwrap_or_else(|e| panic!("catalog: {e}"));
    let model = Model::new(metas, &ordered);
    for mode in HashMode::ALL {
        let out = tmp.path().join(format!("index-{mode}"));
        let (index, summary) = build(&catalog, &out, mode, set.threads);
        check_summary(&summary, mode, &ordered, &model);
        check_against_model(&index, &out, mode, &model);
    }
    // Plain mode again with the key maps' accelerators: lookups answer from the
    // fingerprint tables, and must still match the model exactly.
    let out = tmp.path().join("index-plain-accelerated");
    let (index, summary) = build_with(&catalog, &out, HashMode::Plain, set.threads, true);
    assert!(out.join("email.fpt").is_file() && out.join("username.fpt").is_file());
    check_summary(&summary, HashMode::Plain, &ordered, &model);
    check_against_model(&index, &out, HashMode::Plain, &model);
    assert!(breachdex::verify(&out).unwrap().is_ok(), "an accelerated index verifies");
}

// ---------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------

/// The pool is sound: every spelling used normalizes to its identity's key, and distinct
/// identities have distinct keys (so keying the model by identity is the SPEC's rule).
#[test]
fn pool_spellings_are_one_key_per_identity() {
    for (is_email, pool) in [(true, EMAILS), (false, USERNAMES)] {
        let norm = |s: &str| {
            if is_email {
                normalize_email(s).map(|k| k.into_owned())
            } else {
                normalize_username(s).map(|k| k.into_owned())
            }
        };
        let keys: Vec<String> = pool.iter().map(|c| norm(c).unwrap()).collect();
        let mut distinct = keys.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), keys.len(), "two identities share a key: {keys:?}");
        for (canon, key) in pool.iter().zip(&keys) {
            for q in query_spellings(canon, is_email) {
                assert_eq!(&norm(&q).unwrap(), key, "query spelling {q:?} of {canon:?}");
            }
            for seed in [0u32, 1, 0xffff_ffff, 0x1234_5678] {
                for (upper, nfd, swap, pad) in
                    [(false, false, false, 1), (true, true, true, 2), (false, true, false, 0)]
                {
                    let sp = Spelling { upper, case_seed: seed, nfd, swap_domain: swap, pad };
                    let s = spell(canon, &sp, is_email, FILE_PADS);
                    assert_eq!(&norm(&s).unwrap(), key, "file spelling {s:?} of {canon:?}");
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 48,
        max_shrink_iters: 200,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn every_hash_mode_matches_the_model(set in gen_set()) {
        run_case(&set);
    }
}

/// The same record set built in all five modes gives the same check results and the
/// same records for every spelling of every identity.
#[test]
fn all_hash_modes_give_identical_checks() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let tree = gen_set().new_tree(&mut runner).unwrap();
    let mut set = tree.current();
    set.sources.truncate(3);
    let tmp = tempfile::tempdir().unwrap();
    let (catalog_path, _, _) = write_inputs(&set, tmp.path());
    let catalog = Catalog::load(&catalog_path).unwrap();
    let mut reference: Option<Vec<(String, serde_json::Value, Vec<Observed>)>> = None;
    for mode in HashMode::ALL {
        let out = tmp.path().join(format!("index-{mode}"));
        let (index, _) = build(&catalog, &out, mode, 2);
        let mut results = Vec::new();
        for (is_email, pool) in [(true, EMAILS), (false, USERNAMES)] {
            for canon in pool.iter().copied() {
                for q in query_spellings(canon, is_email) {
                    let query = if is_email { Query::Email(&q) } else { Query::Username(&q) };
                    let check =
                        serde_json::to_value(index.check(&query, UnixTime::from_seconds(NOW)).unwrap()).unwrap();
                    let rows = lookup_rows(&index, &q, is_email);
                    results.push((q.clone(), check, observe_rows(&index, &rows)));
                }
            }
        }
        assert!(results.iter().any(|r| r.1["total_breaches"].as_u64() > Some(0)), "the fixed set matches something");
        match &reference {
            None => reference = Some(results),
            Some(r) => {
                for (a, b) in r.iter().zip(&results) {
                    assert_eq!(a, b, "[{mode}] differs from plain");
                }
                assert_eq!(r.len(), results.len());
            }
        }
    }
}
