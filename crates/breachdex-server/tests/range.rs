//! `GET /range/{prefix}` over a real socket answers exactly the library's range of the
//! served index as Pwned Passwords formats it (`SUFFIX:COUNT\r\n`, ascending, SHA-1 or
//! `mode=ntlm`), pads to 800-1,000 lines with count-0 lines that leave every real line
//! intact, refuses bad prefixes and modes with a plain-text 400, and under
//! `--passwords-require-key` needs a key (401/403 plain text) and limits each client
//! address (429 with HIBP's JSON body and `retry-after`).

mod common;

use breachdex::{Index, OpenOptions, PasswordHash, PasswordHashKind, PasswordPrefix};
use breachdex_server::keys::NewKey;
use common::*;
use std::collections::BTreeSet;

/// The library's answer: (suffix, count) of every hash of `kind` under `prefix`.
fn library_range(kind: PasswordHashKind, prefix: &str) -> Vec<(String, u64)> {
    let index = Index::open(index(), &OpenOptions::default()).unwrap();
    let passwords = index.passwords().expect("a password index");
    let prefix = PasswordPrefix::from_hex(prefix).unwrap();
    passwords.range(kind, prefix).unwrap().map(|e| e.unwrap()).map(|e| (e.suffix_hex(), e.count())).collect()
}

/// Parses a range body, checking its form: CRLF lines `SUFFIX:COUNT`, upper-case hex
/// suffixes of the kind's length, strictly ascending.
fn lines(r: &Response, kind: PasswordHashKind) -> Vec<(String, u64)> {
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("content-type"), Some("text/plain"));
    let text = std::str::from_utf8(&r.body).unwrap();
    assert!(text.is_empty() || text.ends_with("\r\n"), "CRLF line ends");
    let out: Vec<(String, u64)> = text
        .split_terminator("\r\n")
        .map(|line| {
            let (suffix, count) = line.split_once(':').unwrap_or_else(|| panic!("no colon in {line:?}"));
            assert_eq!(suffix.len(), kind.hex_len() - 5, "{line}");
            assert!(suffix.bytes().all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b)), "{line}");
            (suffix.to_string(), count.parse().unwrap())
        })
        .collect();
    assert!(out.windows(2).all(|w| w[0].0 < w[1].0), "strictly ascending");
    out
}

fn get(server: &TestServer, path: &str, headers: &[(&str, &str)]) -> Response {
    request(server.addr, "GET", path, headers, b"")
}

fn open_server() -> (tempfile::TempDir, TestServer) {
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::start(config(index(), data.path()));
    (data, server)
}

#[test]
fn ranges_equal_the_library_in_both_modes() {
    let (_data, server) = open_server();
    let mut prefixes: BTreeSet<String> = BTreeSet::new();
    for p in ["hunter2", "password", "never-seen-anywhere"] {
        prefixes.insert(PasswordHash::sha1_of(p).prefix().to_string());
        prefixes.insert(PasswordHash::ntlm_of(p).prefix().to_string());
    }
    for i in (0..BULK_HIGH).step_by(97) {
        prefixes.insert(PasswordHash::sha1_of(&format!("secret-{i}")).prefix().to_string());
        prefixes.insert(PasswordHash::ntlm_of(&format!("secret-{i}")).prefix().to_string());
    }
    prefixes.extend(["00000".into(), "FFFFF".into()]);
    let mut nonempty = 0;
    for prefix in &prefixes {
        let sha1 = library_range(PasswordHashKind::Sha1, prefix);
        let ntlm = library_range(PasswordHashKind::Ntlm, prefix);
        nonempty += usize::from(!sha1.is_empty()) + usize::from(!ntlm.is_empty());
        assert_eq!(lines(&get(&server, &format!("/range/{prefix}"), &[]), PasswordHashKind::Sha1), sha1, "{prefix}");
        let lower = prefix.to_lowercase();
        assert_eq!(lines(&get(&server, &format!("/range/{lower}?mode=sha1"), &[]), PasswordHashKind::Sha1), sha1);
        assert_eq!(lines(&get(&server, &format!("/range/{prefix}?mode=ntlm"), &[]), PasswordHashKind::Ntlm), ntlm);
        assert_eq!(lines(&get(&server, &format!("/range/{lower}?mode=NTLM"), &[]), PasswordHashKind::Ntlm), ntlm);
    }
    assert!(nonempty > 20, "the prefixes hit real hashes ({nonempty})");

    // The count of one password is the count on its line.
    let hunter2 = PasswordHash::sha1_of("hunter2").to_hex();
    let r = get(&server, &format!("/range/{}", &hunter2[..5]), &[]);
    let found = lines(&r, PasswordHashKind::Sha1).into_iter().find(|(s, _)| *s == hunter2[5..]);
    let index = Index::open(index(), &OpenOptions::default()).unwrap();
    let count = index.passwords().unwrap().count(&PasswordHash::sha1_of("hunter2")).unwrap();
    assert!(count >= 1, "hunter2 is in the sample");
    assert_eq!(found.map(|(_, c)| c), Some(count));
    assert_eq!(r.header("cache-control"), Some("public, max-age=3600"));
    assert!(r.header("x-ratelimit-limit").is_none(), "no key, no limit");
}

#[test]
fn padding_reaches_800_lines_with_count_0_and_keeps_every_real_line() {
    let (_data, server) = open_server();
    let ntlm = PasswordHash::ntlm_of("hunter2").to_hex();
    let sha1 = PasswordHash::sha1_of("hunter2").to_hex();
    for (kind, prefix, query) in [
        (PasswordHashKind::Sha1, &sha1[..5], ""),
        (PasswordHashKind::Ntlm, &ntlm[..5], "?mode=ntlm"),
        (PasswordHashKind::Sha1, "00000", ""),
    ] {
        let real = library_range(kind, prefix);
        let mut seen = BTreeSet::new();
        for value in ["true", "TRUE", "True"] {
            let padded = lines(&get(&server, &format!("/range/{prefix}{query}"), &[("add-padding", value)]), kind);
            assert!((800..=1000).contains(&padded.len()), "{} lines", padded.len());
            let kept: Vec<(String, u64)> = padded.iter().filter(|(_, c)| *c > 0).cloned().collect();
            assert_eq!(kept, real, "real lines intact");
            assert_eq!(padded.len() - real.len(), padded.iter().filter(|(_, c)| *c == 0).count());
            seen.extend(padded.into_iter().filter(|(_, c)| *c == 0).map(|(s, _)| s));
        }
        assert!(seen.len() > 2 * 800, "each answer pads with fresh random suffixes");
        let unpadded = lines(&get(&server, &format!("/range/{prefix}{query}"), &[("add-padding", "false")]), kind);
        assert_eq!(unpadded, real);
    }
}

#[test]
fn bad_prefixes_and_modes_are_plain_text_400s() {
    let (_data, server) = open_server();
    for path in
        ["/range/5BAA", "/range/5BAA61", "/range/5BAAG", "/range/%C3%A9%C3%A9a", "/range/5BA%20A", "/range/-1234"]
    {
        let r = get(&server, path, &[]);
        assert_eq!(r.status, 400, "{path}");
        assert!(r.header("content-type").unwrap().starts_with("text/plain"), "{path}");
        assert_eq!(r.body, b"The hash prefix was not in a valid format", "{path}");
    }
    for query in ["?mode=md5", "?mode=", "?mode=sha256"] {
        let r = get(&server, &format!("/range/5BAA6{query}"), &[]);
        assert_eq!(r.status, 400, "{query}");
        assert!(String::from_utf8_lossy(&r.body).contains("sha1 or ntlm"), "{query}");
    }
    // Other parameters are ignored, as Pwned Passwords does.
    assert_eq!(get(&server, "/range/5BAA6?mode=sha1&x=1", &[]).status, 200);
    assert_eq!(get(&server, "/range/", &[]).status, 404);
}

#[test]
fn an_index_without_a_password_index_answers_404_in_plain_text() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = breachdex::Catalog::load(&write_catalog(&dir.path().join("work"), false)).unwrap();
    let out = dir.path().join("index");
    let options = breachdex::BuildOptions {
        threads: Some(1),
        password_index: false,
        rejects_path: Some(dir.path().join("rejects.jsonl")),
        ..Default::default()
    };
    breachdex::build_index(&catalog, &out, &options).unwrap();
    let server = TestServer::start(config(&out, &dir.path().join("data")));
    let r = get(&server, "/range/5BAA6", &[]);
    assert_eq!(r.status, 404);
    assert!(String::from_utf8_lossy(&r.body).contains("no password index"), "{:?}", r.body);
    assert_eq!(get(&server, "/range/XXXXX", &[]).status, 400, "a bad prefix is still the client's error");
}

#[test]
fn require_key_mode_needs_a_key_and_limits_each_address() {
    let data = tempfile::tempdir().unwrap();
    let mut c = config(index(), data.path());
    c.passwords_require_key = true;
    c.passwords_rpm = 3;
    let (_, key) = create(data.path(), NewKey { plan: Some("starter".into()), ..Default::default() });
    let (_, health_only) = create(data.path(), NewKey { functions: Some("health".into()), ..Default::default() });
    let server = TestServer::start(c);

    let r = get(&server, "/range/5BAA6", &[]);
    assert_eq!(r.status, 401);
    assert!(r.header("content-type").unwrap().starts_with("text/plain"));
    assert!(String::from_utf8_lossy(&r.body).contains("missing hibp-api-key"));
    let r = get(&server, "/range/5BAA6", &[("hibp-api-key", "bdx_not_a_key")]);
    assert_eq!(r.status, 401);
    assert!(String::from_utf8_lossy(&r.body).contains("invalid hibp-api-key"));
    let r = get(&server, "/range/5BAA6", &[("hibp-api-key", &health_only)]);
    assert_eq!(r.status, 403);
    assert!(String::from_utf8_lossy(&r.body).contains("passwords"));

    // Three a minute for this address (refusals above were not counted). Started close
    // to a minute's end, the window could roll over between requests: wait it out.
    let into_minute = breachdex_server::engine::now_unix().rem_euclid(60);
    if into_minute > 50 {
        std::thread::sleep(std::time::Duration::from_secs((61 - into_minute) as u64));
    }
    let real = library_range(PasswordHashKind::Sha1, "5BAA6");
    for _ in 0..3 {
        let r = get(&server, "/range/5BAA6", &[("hibp-api-key", &key)]);
        assert_eq!(lines(&r, PasswordHashKind::Sha1), real);
        assert_eq!(r.header("cache-control"), Some("private, max-age=3600"));
    }
    let r = get(&server, "/range/5BAA6", &[("hibp-api-key", &key)]);
    assert_eq!(r.status, 429);
    let retry: u64 = r.header("retry-after").expect("retry-after").parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    let v = r.json();
    assert_eq!(v["statusCode"], 429);
    assert_eq!(v["message"], format!("Rate limit is exceeded. Try again in {retry} seconds."));
}
