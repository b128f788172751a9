//! Generator invariants: same config, same bytes; the bad-line share is respected; every
//! format appears; the catalog is well-formed JSON with the SPEC §3 fields.

use super::*;
use std::collections::BTreeMap;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("breachdex-gen-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn read_all(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        out.insert(entry.file_name().to_string_lossy().into_owned(), std::fs::read(entry.path()).unwrap());
    }
    out
}

#[test]
fn same_config_same_bytes_whatever_the_threads() {
    let a = temp_dir("det-a");
    let b = temp_dir("det-b");
    let mut config = GenConfig::new(20_000, &a);
    config.sources = 9;
    config.seed = 7;
    config.threads = 1;
    let sa = generate(&config).unwrap();
    config.out_dir = b.clone();
    config.threads = 3;
    let sb = generate(&config).unwrap();
    assert_eq!(sa.files, sb.files);
    assert_eq!(read_all(&a), read_all(&b));
    config.seed = 8;
    let c = temp_dir("det-c");
    config.out_dir = c.clone();
    generate(&config).unwrap();
    assert_ne!(read_all(&a), read_all(&c));
    for d in [a, b, c] {
        std::fs::remove_dir_all(d).unwrap();
    }
}

#[test]
fn counts_and_bad_share_are_respected() {
    let dir = temp_dir("bad");
    let mut config = GenConfig::new(50_000, &dir);
    config.bad_line_ratio = 0.05;
    let s = generate(&config).unwrap();
    assert_eq!(s.records, 50_000);
    assert_eq!(s.records_per_source().iter().map(|r| r.2).sum::<u64>(), 50_000);
    let share = s.bad_lines as f64 / (s.bad_lines + s.records) as f64;
    assert!((0.045..0.055).contains(&share), "bad share {share}");
    assert!(s.duplicates > 0 && s.blank_lines > 0);
    assert_eq!(s.distinct_identities, 25_000);
    let bytes: u64 = read_all(&dir).iter().filter(|(k, _)| *k != "catalog.json").map(|(_, v)| v.len() as u64).sum();
    assert_eq!(bytes, s.bytes);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn every_format_and_quirk_appears() {
    let dir = temp_dir("formats");
    let mut config = GenConfig::new(30_000, &dir);
    config.sources = 12;
    let s = generate(&config).unwrap();
    for f in Format::ALL {
        assert!(s.files.iter().any(|x| x.format == f && x.records > 0), "{f} missing");
    }
    let files = read_all(&dir);
    let all: Vec<u8> = files.iter().filter(|(k, _)| *k != "catalog.json").flat_map(|(_, v)| v.clone()).collect();
    let text = String::from_utf8_lossy(&all);
    assert!(files.values().any(|v| v.starts_with(b"\xEF\xBB\xBF")), "no BOM");
    assert!(all.windows(2).any(|w| w == b"\r\n"), "no CRLF");
    assert!(text.contains("xn--"), "no punycode domain");
    assert!(text.contains('+'), "no plus tag");
    assert!(text.contains('\u{301}') || text.contains('\u{308}'), "no NFD");
    assert!(text.contains("$2b$") || text.contains("$2a$"), "no bcrypt");
    assert!(std::str::from_utf8(&all).is_err(), "no invalid UTF-8");
    let catalog = String::from_utf8(files["catalog.json"].clone()).unwrap();
    assert!(catalog.contains("\"delimiter\": \";\""));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn known_hits_appear_and_misses_do_not() {
    let dir = temp_dir("hits");
    let mut config = GenConfig::new(2_000, &dir);
    config.seed = 99;
    config.bad_line_ratio = 0.0;
    let s = generate(&config).unwrap();
    let files = read_all(&dir);
    let text: String = files
        .iter()
        .filter(|(k, _)| *k != "catalog.json")
        .map(|(_, v)| String::from_utf8_lossy(v).to_lowercase())
        .collect();
    // Every identity is present by e-mail; the spelling may vary (NFD, punycode), so
    // check the part that never varies: the lower-cased local part's ASCII tail.
    for i in 0..s.distinct_identities {
        let email = identity_email(99, i);
        let local = &email[..email.find('@').unwrap()];
        let tail: String =
            local.chars().rev().take_while(|c| c.is_ascii()).collect::<Vec<_>>().into_iter().rev().collect();
        assert!(text.contains(&tail), "identity {i} ({email}) not found");
    }
    assert!(!text.contains("absent.invalid"));
    assert!(!text.contains(&miss_username(1)));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn gzip_output_is_readable() {
    let dir = temp_dir("gz");
    let mut config = GenConfig::new(3_000, &dir);
    config.gzip = true;
    config.sources = 3;
    let s = generate(&config).unwrap();
    for f in &s.files {
        assert!(f.path.ends_with(".gz"));
        let out = match std::process::Command::new("gzip").arg("-t").arg(dir.join(&f.path)).output() {
            Ok(out) => out,
            Err(_) => return,
        };
        assert!(out.status.success(), "{}", f.path);
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn invalid_configs_are_errors() {
    let mut config = GenConfig::new(10, temp_dir("invalid"));
    config.bad_line_ratio = 1.5;
    assert_eq!(generate(&config).unwrap_err().kind(), io::ErrorKind::InvalidInput);
    config.bad_line_ratio = 0.0;
    config.formats.clear();
    assert!(generate(&config).is_err());
    config.formats = vec![Format::Jsonl];
    config.sources = 0;
    assert!(generate(&config).is_err());
}

/// A minimal JSON reader, enough to check the catalog's structure.
#[derive(Debug, PartialEq)]
enum Json {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl Json {
    fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Obj(fields) => fields.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
    fn str(&self) -> &str {
        match self {
            Json::Str(s) => s,
            other => panic!("not a string: {other:?}"),
        }
    }
}

fn parse_json(text: &str) -> Json {
    fn ws(b: &[u8], i: &mut usize) {
        while *i < b.len() && b[*i].is_ascii_whitespace() {
            *i += 1;
        }
    }
    fn string(b: &[u8], i: &mut usize) -> String {
        assert_eq!(b[*i], b'"');
        *i += 1;
        let mut out = Vec::new();
        while b[*i] != b'"' {
            if b[*i] == b'\\' {
                *i += 1;
                match b[*i] {
                    b'n' => out.push(b'\n'),
                    b't' => out.push(b'\t'),
                    b'r' => out.push(b'\r'),
                    b'u' => {
                        let hex = std::str::from_utf8(&b[*i + 1..*i + 5]).unwrap();
                        let c = char::from_u32(u32::from_str_radix(hex, 16).unwrap()).unwrap();
                        out.extend_from_slice(c.to_string().as_bytes());
                        *i += 4;
                    }
                    c => out.push(c),
                }
            } else {
                out.push(b[*i]);
            }
            *i += 1;
        }
        *i += 1;
        String::from_utf8(out).unwrap()
    }
    fn value(b: &[u8], i: &mut usize) -> Json {
        ws(b, i);
        match b[*i] {
            b'{' => {
                *i += 1;
                let mut fields = Vec::new();
                ws(b, i);
                if b[*i] == b'}' {
                    *i += 1;
                    return Json::Obj(fields);
                }
                loop {
                    ws(b, i);
                    let k = string(b, i);
                    ws(b, i);
                    assert_eq!(b[*i], b':');
                    *i += 1;
                    fields.push((k, value(b, i)));
                    ws(b, i);
                    *i += 1;
                    if b[*i - 1] == b'}' {
                        return Json::Obj(fields);
                    }
                    assert_eq!(b[*i - 1], b',');
                }
            }
            b'[' => {
                *i += 1;
                let mut items = Vec::new();
                ws(b, i);
                if b[*i] == b']' {
                    *i += 1;
                    return Json::Arr(items);
                }
                loop {
                    items.push(value(b, i));
                    ws(b, i);
                    *i += 1;
                    if b[*i - 1] == b']' {
                        return Json::Arr(items);
                    }
                    assert_eq!(b[*i - 1], b',');
                }
            }
            b'"' => Json::Str(string(b, i)),
            b't' => {
                *i += 4;
                Json::Bool(true)
            }
            b'f' => {
                *i += 5;
                Json::Bool(false)
            }
            b'n' => {
                *i += 4;
                Json::Null
            }
            _ => {
                let start = *i;
                while *i < b.len() && matches!(b[*i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9') {
                    *i += 1;
                }
                Json::Num(std::str::from_utf8(&b[start..*i]).unwrap().parse().unwrap())
            }
        }
    }
    let b = text.as_bytes();
    let mut i = 0;
    let v = value(b, &mut i);
    ws(b, &mut i);
    assert_eq!(i, b.len(), "trailing bytes");
    v
}

fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter().enumerate().all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
}

/// Checks a catalog against SPEC §3 and returns `(source names, file paths)`.
pub(crate) fn check_catalog(text: &str) -> (Vec<String>, Vec<String>) {
    let json = parse_json(text);
    let Some(Json::Arr(sources)) = json.get("sources") else { panic!("no sources array") };
    let mut names = Vec::new();
    let mut ids = Vec::new();
    let mut paths = Vec::new();
    for s in sources {
        let Some(Json::Num(id)) = s.get("id") else { panic!("no id") };
        ids.push(*id as u32);
        let name = s.get("name").unwrap().str();
        assert!(
            !name.is_empty() && name.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-'),
            "{name}"
        );
        names.push(name.to_string());
        assert!(!s.get("title").unwrap().str().is_empty());
        assert!(is_date(s.get("date").unwrap().str()));
        assert!(!s.get("description").unwrap().str().is_empty());
        if let Some(sev) = s.get("severity") {
            assert!(["low", "medium", "high", "critical"].contains(&sev.str()));
        }
        if let Some(p) = s.get("publish_date") {
            assert!(is_date(p.str()));
        }
        let Some(Json::Arr(files)) = s.get("files") else { panic!("no files") };
        assert!(!files.is_empty());
        for f in files {
            let path = f.get("path").unwrap().str();
            paths.push(path.to_string());
            match f.get("format") {
                Some(format) => assert!(["csv", "jsonl", "combo"].contains(&format.str())),
                // SPEC §3: the extension may tell the format.
                None => assert!(
                    [".csv", ".jsonl", ".ndjson", ".txt"].iter().any(|e| path.trim_end_matches(".gz").ends_with(e))
                ),
            }
            if let Some(d) = f.get("delimiter") {
                assert!([",", ";", "\t", "|"].contains(&d.str()));
            }
        }
    }
    let mut unique = names.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), names.len(), "duplicate source names");
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), sources.len(), "duplicate ids");
    (names, paths)
}

#[test]
fn catalog_has_the_spec_fields_and_lists_every_file() {
    let dir = temp_dir("catalog");
    let mut config = GenConfig::new(5_000, &dir);
    config.sources = 30;
    let s = generate(&config).unwrap();
    let text = std::fs::read_to_string(dir.join("catalog.json")).unwrap();
    let (names, paths) = check_catalog(&text);
    assert_eq!(names.len(), 30);
    assert_eq!(paths, s.files.iter().map(|f| f.path.clone()).collect::<Vec<_>>());
    for p in paths {
        assert!(dir.join(p).is_file());
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn bundled_sample_catalog_is_well_formed() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata");
    for catalog in ["sample/catalog.json", "sample-gz/catalog.json"] {
        let path = dir.join(catalog);
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let (_, paths) = check_catalog(&text);
        for p in paths {
            assert!(path.parent().unwrap().join(&p).is_file(), "{p}");
        }
    }
}

#[test]
fn generate_cached_reuses_a_complete_dataset_and_redoes_an_incomplete_one() {
    let dir = temp_dir("cached");
    let config = GenConfig { seed: 5, ..GenConfig::new(300, &dir) };
    let first = generate_cached(&config).unwrap();
    let summary = first.generated.expect("first call generates");
    assert_eq!(first.distinct_identities, summary.distinct_identities);
    let files = read_all(&dir);
    assert!(files.contains_key(GENERATED_MARKER));

    let again = generate_cached(&config).unwrap();
    assert!(again.generated.is_none(), "a complete dataset is reused");
    assert_eq!(again.distinct_identities, summary.distinct_identities);
    assert_eq!(read_all(&dir), files);

    // An interrupted run leaves no marker and a stray file: both are redone.
    std::fs::remove_file(dir.join(GENERATED_MARKER)).unwrap();
    std::fs::write(dir.join("stray.tmp"), b"x").unwrap();
    let redone = generate_cached(&config).unwrap();
    assert!(redone.generated.is_some());
    assert_eq!(read_all(&dir), files);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn realistic_profile_is_deterministic_and_its_identities_are_hits() {
    let a = temp_dir("real-a");
    let b = temp_dir("real-b");
    let mut config = GenConfig::new(4_000, &a);
    config.profile = Profile::Realistic;
    config.bad_line_ratio = 0.0;
    config.threads = 1;
    let s = generate(&config).unwrap();
    config.out_dir = b.clone();
    config.threads = 3;
    generate(&config).unwrap();
    let files = read_all(&a);
    assert_eq!(files, read_all(&b));
    let text: String = files
        .iter()
        .filter(|(k, _)| *k != "catalog.json")
        .map(|(_, v)| String::from_utf8_lossy(v).to_lowercase())
        .collect();
    // Known hits: the realistic identity's e-mail domain (company domains included).
    for i in 0..s.distinct_identities {
        let email = identity_in(Profile::Realistic, 42, i).email;
        let at = email.find('@').unwrap();
        let domain = &email[at..];
        let local = &email[..at];
        let tail: String =
            local.chars().rev().take_while(|c| c.is_ascii()).collect::<Vec<_>>().into_iter().rev().collect();
        let found = domain.is_ascii() && text.contains(&format!("{tail}{domain}"));
        assert!(found || !domain.is_ascii(), "identity {i} ({email}) not found");
    }
    // Unsalted hashes are computed from the password: a SHA-1 of `123456` appears, and
    // hashes repeat (which the synthetic profile's random hex never does).
    assert!(text.contains("7c4a8d09ca3762af61e59520943dc26494f8941b"), "no sha1 of 123456");
    // Company domains and long-tail login pages are present next to free-mail.
    assert!(text.contains("@gmail.com"));
    assert!(text.contains("https://www.") || text.contains("https://login."));
    // The synthetic profile of the same config differs.
    let c = temp_dir("real-c");
    config.out_dir = c.clone();
    config.profile = Profile::Synthetic;
    generate(&config).unwrap();
    assert_ne!(files, read_all(&c));
    for d in [a, b, c] {
        std::fs::remove_dir_all(d).unwrap();
    }
}

#[test]
fn profile_names_parse() {
    assert_eq!(Profile::parse("Realistic"), Some(Profile::Realistic));
    assert_eq!(Profile::parse("synthetic"), Some(Profile::Synthetic));
    assert_eq!(Profile::parse("real"), None);
    assert_eq!(identity_in(Profile::Synthetic, 42, 7), identity(42, 7));
}
