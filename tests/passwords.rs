//! The password index answers exactly as a HashMap model of the input says, in every hash mode: the count of every SHA-1 and NTLM hash (a record counts once per distinct hash, duplicates of a record not at all) and every range (the model filtered by prefix, ascending; as text, padded or not); privacy builds keep it without storing any password, and a build without it opens and says so.

use breachdex::{
    BuildOptions, Catalog, HashMode, Index, OpenOptions, PasswordHash, PasswordHashKind, PasswordPrefix, Salt,
    build_index, verify,
};
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

fn salt() -> Salt {
    Salt::new(b"password-index-test-salt-0123456789".to_vec()).unwrap()
}

fn build(catalog: &Path, out: &Path, mode: HashMode, tweak: impl FnOnce(&mut BuildOptions)) -> Index {
    let catalog = Catalog::load(catalog).unwrap();
    let mut options = BuildOptions {
        hash_mode: mode,
        salt: mode.is_hashed().then(salt),
        threads: Some(2),
        source_date_epoch: Some(1_700_000_000),
        rejects_path: Some(out.with_extension("rejects")),
        ..BuildOptions::default()
    };
    tweak(&mut options);
    build_index(&catalog, out, &options).unwrap();
    let report = verify(out).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    Index::open(out, &OpenOptions { salt: mode.is_hashed().then(salt), populate: false }).unwrap()
}

fn sample() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/sample/catalog.json")
}

/// One generated record: which source, which e-mail, an optional plaintext password
/// and an optional typed hash (type name, password it hashes, upper-case hex or not).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Rec {
    source: u32,
    email: u8,
    plain: Option<&'static str>,
    typed: Option<(&'static str, &'static str, bool)>,
}

const POOL: &[&str] = &["hunter2", "password", "123456", "Ünïcödé pässwörd", "a:b", "correct horse"];
const TYPES: &[&str] = &["sha1", "NTLM", "md5", "SHA-1"];

fn typed_hex(ty: &str, password: &str, upper: bool) -> String {
    let hex = match PasswordHashKind::from_password_type(ty) {
        Some(PasswordHashKind::Sha1) => PasswordHash::sha1_of(password).to_hex(),
        Some(PasswordHashKind::Ntlm) => PasswordHash::ntlm_of(password).to_hex(),
        // An MD5-typed value: any 32 hex digits, never a hash the index takes.
        None => PasswordHash::ntlm_of(password).to_hex(),
    };
    if upper { hex } else { hex.to_lowercase() }
}

fn rec() -> impl Strategy<Value = Rec> {
    (
        1u32..=2,
        0u8..12,
        proptest::option::of(proptest::sample::select(POOL)),
        proptest::option::of((proptest::sample::select(TYPES), proptest::sample::select(POOL), any::<bool>())),
    )
        .prop_map(|(source, email, plain, typed)| Rec { source, email, plain, typed })
}

/// Writes one CSV per source and a catalog naming them.
fn write_input(dir: &Path, records: &[Rec]) -> PathBuf {
    let mut sources = Vec::new();
    for source in 1..=2u32 {
        let mut csv = String::from("email,password,password_hash,password_type\n");
        for r in records.iter().filter(|r| r.source == source) {
            let plain = r.plain.map(|p| format!("\"{p}\"")).unwrap_or_default();
            let (hash, ty) = r.typed.map(|(t, p, up)| (typed_hex(t, p, up), t.to_string())).unwrap_or_default();
            csv.push_str(&format!("u{}@example.com,{plain},{hash},{ty}\n", r.email));
        }
        std::fs::write(dir.join(format!("s{source}.csv")), csv).unwrap();
        sources.push(format!(
            r#"{{"id": {source}, "name": "source-{source}", "title": "Source {source}", "date": "2024-01-0{source}",
                "description": "test", "files": [{{"path": "s{source}.csv", "format": "csv"}}]}}"#
        ));
    }
    let catalog = dir.join("catalog.json");
    std::fs::write(&catalog, format!(r#"{{"sources": [{}]}}"#, sources.join(","))).unwrap();
    catalog
}

/// The model: each distinct record (identical lines of one source are one record)
/// holds a set of hashes; a hash's count is the number of records holding it.
fn model(records: &[Rec]) -> HashMap<PasswordHash, u64> {
    let distinct: BTreeSet<&Rec> = records.iter().collect();
    let mut counts = HashMap::new();
    for r in distinct {
        let mut hashes = BTreeSet::new();
        if let Some(p) = r.plain {
            hashes.insert(PasswordHash::sha1_of(p));
            hashes.insert(PasswordHash::ntlm_of(p));
        }
        if let Some((ty, p, _)) = r.typed {
            match PasswordHashKind::from_password_type(ty) {
                Some(PasswordHashKind::Sha1) => hashes.insert(PasswordHash::sha1_of(p)),
                Some(PasswordHashKind::Ntlm) => hashes.insert(PasswordHash::ntlm_of(p)),
                None => false,
            };
        }
        for h in hashes {
            *counts.entry(h).or_insert(0) += 1;
        }
    }
    counts
}

fn check_against_model(index: &Index, model: &HashMap<PasswordHash, u64>) {
    let passwords = index.passwords().expect("the build makes a password index");
    for (hash, count) in model {
        assert_eq!(passwords.count(hash).unwrap(), *count, "{hash:?}");
    }
    for p in POOL.iter().chain(&["never used", ""]) {
        for hash in [PasswordHash::sha1_of(p), PasswordHash::ntlm_of(p)] {
            assert_eq!(passwords.count(&hash).unwrap(), model.get(&hash).copied().unwrap_or(0), "{p}");
        }
    }
    for kind in PasswordHashKind::ALL {
        let of_kind: BTreeMap<PasswordHash, u64> =
            model.iter().filter(|(h, _)| h.kind() == kind).map(|(h, c)| (*h, *c)).collect();
        assert_eq!(passwords.len(kind), of_kind.len() as u64);
        let mut prefixes: BTreeSet<PasswordPrefix> = of_kind.keys().map(PasswordHash::prefix).collect();
        prefixes.extend([0, 0xFFFFF, 0x5BAA6].map(|v| PasswordPrefix::from_value(v).unwrap()));
        for prefix in prefixes {
            let range = passwords.range(kind, prefix).unwrap();
            let want: Vec<(PasswordHash, u64)> =
                of_kind.iter().filter(|(h, _)| h.prefix() == prefix).map(|(h, c)| (*h, *c)).collect();
            assert_eq!(range.len(), want.len());
            let got: Vec<(PasswordHash, u64)> = range.map(|e| e.unwrap()).map(|e| (*e.hash(), e.count())).collect();
            assert_eq!(got, want, "{kind} {prefix}");
            check_range_text(&passwords, kind, prefix, &want);
        }
    }
}

/// The range as text: exactly the model's lines, `SUFFIX:COUNT\r\n`, ascending; padded,
/// 800 to 1,000 lines where the extra ones have count 0, fresh suffixes under the prefix
/// and every real line intact.
fn check_range_text(
    passwords: &breachdex::Passwords<'_>,
    kind: PasswordHashKind,
    prefix: PasswordPrefix,
    want: &[(PasswordHash, u64)],
) {
    let parse = |body: &[u8]| -> Vec<(PasswordHash, u64)> {
        let text = std::str::from_utf8(body).unwrap();
        assert!(text.is_empty() || text.ends_with("\r\n"), "CRLF-terminated: {text:?}");
        text.split_terminator("\r\n")
            .map(|line| {
                let (suffix, count) = line.split_once(':').unwrap();
                assert_eq!(suffix.len(), kind.hex_len() - 5, "{line}");
                assert_eq!(suffix, suffix.to_uppercase(), "{line}");
                (PasswordHash::from_hex(kind, &format!("{prefix}{suffix}")).unwrap(), count.parse().unwrap())
            })
            .collect()
    };
    let mut body = b"kept".to_vec();
    let summary = passwords.write_range_text(kind, prefix, None, &mut body).unwrap();
    assert_eq!(&body[..4], b"kept", "appends");
    assert_eq!((summary.real_lines, summary.padding_lines), (want.len(), 0));
    assert_eq!(parse(&body[4..]), want);

    let mut padded = Vec::new();
    let seed = u64::from(prefix.value()) * 31 + want.len() as u64;
    let summary = passwords.write_range_text(kind, prefix, Some(seed), &mut padded).unwrap();
    let lines = parse(&padded);
    assert_eq!(lines.len(), summary.real_lines + summary.padding_lines);
    assert!((800..=1000).contains(&lines.len()), "{} lines", lines.len());
    assert!(lines.windows(2).all(|w| w[0].0 < w[1].0), "ascending, no repeated suffix");
    let real: Vec<(PasswordHash, u64)> = lines.iter().filter(|(_, c)| *c > 0).copied().collect();
    assert_eq!(real, want, "real lines intact");
    assert_eq!(lines.len() - real.len(), summary.padding_lines);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn counts_and_ranges_equal_the_model_in_every_hash_mode(records in proptest::collection::vec(rec(), 0..40)) {
        let tmp = tempfile::tempdir().unwrap();
        let catalog = write_input(tmp.path(), &records);
        let model = model(&records);
        for mode in HashMode::ALL {
            let index = build(&catalog, &tmp.path().join(mode.name()), mode, |_| {});
            check_against_model(&index, &model);
        }
    }
}

#[test]
fn the_sample_counts_what_its_dumps_hold() {
    let tmp = tempfile::tempdir().unwrap();
    let index = build(&sample(), &tmp.path().join("plain"), HashMode::Plain, |_| {});
    let passwords = index.passwords().unwrap();
    // `hunter2` is darkstar99's plaintext in the combo list and in the stealer log.
    assert_eq!(passwords.count(&PasswordHash::sha1_of("hunter2")).unwrap(), 2);
    assert_eq!(passwords.count(&PasswordHash::ntlm_of("hunter2")).unwrap(), 2);
    // examplecorp holds SHA-1("password") typed sha1: no NTLM for it.
    assert!(passwords.count(&PasswordHash::sha1_of("password")).unwrap() >= 1);
    let range: Vec<String> = passwords
        .range(PasswordHashKind::Sha1, PasswordPrefix::from_hex("5baa6").unwrap())
        .unwrap()
        .map(|e| e.unwrap().suffix_hex())
        .collect();
    assert!(range.contains(&"1E4C9B93F3F0682250B6CF8331B7EE68FD8".to_string()), "{range:?}");
    let hex = PasswordHash::from_hex(PasswordHashKind::Sha1, "5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD8").unwrap();
    assert_eq!(passwords.count(&hex).unwrap(), passwords.count(&PasswordHash::sha1_of("password")).unwrap());
    let m = index.manifest();
    assert_eq!(m.counts.password_sha1, Some(passwords.len(PasswordHashKind::Sha1)));
    assert_eq!(m.counts.password_ntlm, Some(passwords.len(PasswordHashKind::Ntlm)));
}

#[test]
fn a_privacy_build_keeps_the_password_index_and_no_password() {
    let tmp = tempfile::tempdir().unwrap();
    let plain = build(&sample(), &tmp.path().join("plain"), HashMode::Plain, |_| {});
    let out = tmp.path().join("private");
    let private = build(&sample(), &out, HashMode::Sha256, |o| {
        o.store = Some(breachdex::AssetSet::parse_list("password_hash,password_type").unwrap());
    });
    let (a, b) = (plain.passwords().unwrap(), private.passwords().unwrap());
    for kind in PasswordHashKind::ALL {
        assert_eq!(a.len(kind), b.len(kind));
        for v in 0..=PasswordPrefix::MAX {
            let prefix = PasswordPrefix::from_value(v).unwrap();
            let (ra, rb) = (a.range(kind, prefix).unwrap(), b.range(kind, prefix).unwrap());
            if ra.len() + rb.len() > 0 {
                let ea: Vec<_> = ra.map(|e| e.unwrap()).collect();
                let eb: Vec<_> = rb.map(|e| e.unwrap()).collect();
                assert_eq!(ea, eb);
            }
        }
    }
    for entry in std::fs::read_dir(&out).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        for password in ["hunter2", "password123", "Summer2024!", "nintendo64"] {
            assert!(!bytes.windows(password.len()).any(|w| w == password.as_bytes()), "{password} on disk");
        }
    }
}

#[test]
fn a_build_without_it_opens_and_reports_none() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("off");
    let index = build(&sample(), &out, HashMode::Plain, |o| o.password_index = false);
    assert!(index.passwords().is_none());
    assert_eq!(index.manifest().counts.password_sha1, None);
    assert!(!out.join("passwords.sha1").exists() && !out.join("passwords.ntlm").exists());
    // Everything else is the same build.
    let on = build(&sample(), &tmp.path().join("on"), HashMode::Plain, |_| {});
    assert_eq!(on.len(), index.len());
}

#[test]
fn hashes_and_prefixes_from_callers_are_validated() {
    let err = PasswordHash::from_hex(PasswordHashKind::Sha1, "5BAA6").unwrap_err();
    assert_eq!(err.code(), "validation_error");
    assert!(PasswordPrefix::from_hex("5BAA").is_err());
    assert!(PasswordPrefix::from_hex("XYZ12").is_err());
}
