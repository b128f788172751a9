//! The Have I Been Pwned v3 routes (SPEC §12) over a real socket: HIBP's field names,
//! formats, defaults and status codes, the catalog fields stored in the index, keys and
//! plans on the keyed routes, per-address limits on the keyless ones, and a request log
//! that holds route templates only.

mod common;

use breachdex_server::keys::NewKey;
use breachdex_server::store::SqliteStore;
use common::*;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

const UA: (&str, &str) = ("user-agent", "breachdex-tests/1.0");

/// Four sources with every kind of catalog field:
/// - `acme-2024`: verified, domain `acme.example`; alice twice (one identity) and bob;
/// - `rumour-2025`: unverified, the latest added; alice by e-mail, `darkstar` twice and
///   `night` by username only (three identities);
/// - `forum-2019`: a spam list with catalog data classes and a domain written in capitals;
/// - `old-2010`: retired.
fn write_catalog(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let files = [
        (
            "acme.csv",
            "email,password,full_name\nalice@acme.example,pw1,Alice\nALICE@acme.example,pw2,Alice\nbob@acme.example,pw3,Bob\n",
        ),
        (
            "rumour.csv",
            "email,username,ip_address\nalice@acme.example,,203.0.113.1\n,darkstar,203.0.113.2\n,DarkStar,203.0.113.3\n,night,203.0.113.4\n",
        ),
        ("forum.csv", "email,password\nalice@acme.example,x\n"),
        ("old.csv", "email,password\nalice@acme.example,y\n"),
    ];
    for (name, text) in files {
        std::fs::write(dir.join(name), text).unwrap();
    }
    let catalog = json!({"sources": [
        {"id": 1, "name": "acme-2024", "title": "Acme 2024", "date": "2024-03-15", "description": "Acme's users",
         "publish_date": "2024-04-01", "domain": "acme.example", "logo_path": "https://logos.example/acme.png",
         "files": [{"path": "acme.csv"}]},
        {"id": 2, "name": "rumour-2025", "title": "Rumour 2025", "date": "2025-05-01", "description": "Unconfirmed",
         "publish_date": "2025-05-20", "added_date": "2025-06-01", "modified_date": "2025-07-02",
         "verified": false, "domain": "rumour.example", "files": [{"path": "rumour.csv"}]},
        {"id": 3, "name": "forum-2019", "title": "Forum 2019", "date": "2019-07-04", "description": "Spam",
         "publish_date": "2019-08-01", "domain": "Forum.EXAMPLE", "spam_list": true, "sensitive": true,
         "data_classes": ["Usernames", "Passwords", "Forum posts"], "files": [{"path": "forum.csv"}]},
        {"id": 4, "name": "old-2010", "title": "Old 2010", "date": "2010-01-01", "description": "Retired",
         "publish_date": "2011-01-01", "retired": true, "fabricated": true, "malware": true, "stealer_log": true,
         "files": [{"path": "old.csv"}]}
    ]});
    let path = dir.join("catalog.json");
    std::fs::write(&path, serde_json::to_vec(&catalog).unwrap()).unwrap();
    path
}

fn index() -> &'static Path {
    static INDEX: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    let (_, path) = INDEX.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let catalog = breachdex::Catalog::load(&write_catalog(&dir.path().join("work"))).unwrap();
        let out = dir.path().join("index");
        let options = breachdex::BuildOptions {
            threads: Some(1),
            rejects_path: Some(dir.path().join("rejects.jsonl")),
            ..Default::default()
        };
        breachdex::build_index(&catalog, &out, &options).unwrap();
        (dir, out)
    });
    path
}

fn server() -> (tempfile::TempDir, TestServer) {
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::start(config(index(), data.path()));
    (data, server)
}

fn key(data: &Path, new: NewKey) -> String {
    create(data, new).1
}

fn enterprise(data: &Path) -> String {
    key(data, NewKey { plan: Some("enterprise".into()), ..Default::default() })
}

/// A GET with a User-Agent and, when given, the key in `hibp-api-key`.
fn get(server: &TestServer, path: &str, api_key: Option<&str>) -> Response {
    match api_key {
        Some(k) => request(server.addr, "GET", path, &[UA, ("hibp-api-key", k)], b""),
        None => request(server.addr, "GET", path, &[UA], b""),
    }
}

fn names(v: &Value) -> Vec<&str> {
    v.as_array().unwrap().iter().map(|b| b["Name"].as_str().unwrap()).collect()
}

fn text(r: &Response) -> &str {
    std::str::from_utf8(&r.body).unwrap()
}

#[track_caller]
fn assert_plain(r: &Response, status: u16, needle: &str) {
    assert_eq!(r.status, status, "{}", text(r));
    assert!(r.header("content-type").unwrap().starts_with("text/plain"), "{:?}", r.headers);
    assert!(text(r).contains(needle), "{}", text(r));
}

#[test]
fn breach_objects_carry_every_field_in_hibp_formats() {
    let (_data, server) = server();
    let r = get(&server, "/api/v3/breach/acme-2024", None);
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().starts_with("application/json"));
    let expected = json!({
        "Name": "acme-2024", "Title": "Acme 2024", "Domain": "acme.example", "BreachDate": "2024-03-15",
        "AddedDate": "2024-04-01T00:00:00Z", "ModifiedDate": "2024-04-01T00:00:00Z", "PwnCount": 2,
        "Description": "Acme's users", "DataClasses": ["Email addresses", "Names", "Passwords"],
        "IsVerified": true, "IsFabricated": false, "IsSensitive": false, "IsRetired": false,
        "IsSpamList": false, "IsMalware": false, "IsSubscriptionFree": false, "IsStealerLog": false,
        "LogoPath": "https://logos.example/acme.png"
    });
    assert_eq!(r.json(), expected);

    // Added and modified dates from the catalog; PwnCount counts identities (alice by
    // e-mail, darkstar in two spellings and night by username): 3 of 4 records.
    let v = get(&server, "/api/v3/breach/rumour-2025", None).json();
    assert_eq!(
        (v["AddedDate"].as_str(), v["ModifiedDate"].as_str()),
        (Some("2025-06-01T00:00:00Z"), Some("2025-07-02T00:00:00Z"))
    );
    assert_eq!(v["PwnCount"], 3);
    assert_eq!(v["IsVerified"], false);
    assert_eq!(v["DataClasses"], json!(["Email addresses", "IP addresses", "Usernames"]));
    assert_eq!(v["LogoPath"], "");

    // The catalog's data classes replace the derived ones; the domain is normalized.
    let v = get(&server, "/api/v3/breach/Forum-2019", None).json();
    assert_eq!(v["DataClasses"], json!(["Usernames", "Passwords", "Forum posts"]));
    assert_eq!(v["Domain"], "forum.example");
    assert_eq!((v["IsSpamList"].as_bool(), v["IsSensitive"].as_bool()), (Some(true), Some(true)));
    let v = get(&server, "/api/v3/breach/old-2010", None).json();
    assert_eq!(v["Domain"], "");
    for flag in ["IsRetired", "IsFabricated", "IsMalware", "IsStealerLog"] {
        assert_eq!(v[flag], true, "{flag}");
    }

    // Unknown breach: 404 with an empty body (HIBP clients read it as null).
    let r = get(&server, "/api/v3/breach/nothing-here", None);
    assert_eq!((r.status, r.body.len()), (404, 0));
}

#[test]
fn breaches_latest_breach_and_data_classes_need_no_key() {
    let (_data, server) = server();
    let all = get(&server, "/api/v3/breaches", None);
    assert_eq!(all.status, 200);
    assert_eq!(names(&all.json()), ["acme-2024", "rumour-2025", "forum-2019", "old-2010"]);
    // The domain filter compares normalized domains, whatever the case.
    assert_eq!(names(&get(&server, "/api/v3/breaches?domain=FORUM.example", None).json()), ["forum-2019"]);
    assert_eq!(names(&get(&server, "/api/v3/breaches?domain=acme.example.", None).json()), ["acme-2024"]);
    assert!(names(&get(&server, "/api/v3/breaches?domain=nowhere.example", None).json()).is_empty());
    assert_eq!(names(&get(&server, "/api/v3/breaches?domain=", None).json()).len(), 4, "empty: no filter");
    assert_eq!(names(&get(&server, "/api/v3/breaches?isSpamList=TRUE", None).json()), ["forum-2019"]);
    assert_eq!(names(&get(&server, "/api/v3/breaches?isSpamList=false", None).json()).len(), 3);
    assert_eq!(get(&server, "/api/v3/breaches?isSpamList=maybe", None).status, 400);

    let latest = get(&server, "/api/v3/latestbreach", None);
    assert_eq!(latest.status, 200);
    assert_eq!(latest.json()["Name"], "rumour-2025", "the greatest AddedDate");

    let classes = get(&server, "/api/v3/dataclasses", None);
    assert_eq!(classes.status, 200);
    assert_eq!(
        classes.json(),
        json!(["Email addresses", "Forum posts", "IP addresses", "Names", "Passwords", "Usernames"])
    );
}

#[test]
fn breached_account_truncates_filters_and_says_404_when_not_pwned() {
    let (data, server) = server();
    let k = enterprise(data.path());
    let path = |q: &str| format!("/api/v3/breachedaccount/alice%40acme.example{q}");

    // Truncated by default: names only, retired breaches left out.
    let r = get(&server, &path(""), Some(&k));
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!([{"Name": "acme-2024"}, {"Name": "forum-2019"}, {"Name": "rumour-2025"}]));
    assert!(r.header("x-ratelimit-limit").is_some(), "an authenticated response");
    // Any spelling of the address finds the same breaches.
    assert_eq!(get(&server, "/api/v3/breachedaccount/ALICE@Acme.Example", Some(&k)).json(), r.json());

    // Full objects, in any case of the boolean.
    for value in ["false", "False", "FALSE"] {
        let full = get(&server, &path(&format!("?truncateResponse={value}")), Some(&k)).json();
        assert_eq!(names(&full), ["acme-2024", "forum-2019", "rumour-2025"]);
        assert_eq!(full[0], get(&server, "/api/v3/breach/acme-2024", None).json());
    }
    assert_eq!(get(&server, &path("?truncateResponse=TRUE"), Some(&k)).json(), r.json());

    // Unverified sources dropped on request; kept by default and with true.
    assert_eq!(names(&get(&server, &path("?includeUnverified=false"), Some(&k)).json()), ["acme-2024", "forum-2019"]);
    assert_eq!(names(&get(&server, &path("?includeUnverified=True"), Some(&k)).json()).len(), 3);

    // The domain filter, case-insensitive, combined with the others.
    let v = get(&server, &path("?domain=ACME.Example&truncateResponse=false"), Some(&k)).json();
    assert_eq!(names(&v), ["acme-2024"]);
    assert_eq!(v[0]["PwnCount"], 2);
    let r = get(&server, &path("?domain=rumour.example&includeUnverified=false"), Some(&k));
    assert_eq!((r.status, r.body.len()), (404, 0), "filtered down to nothing: not pwned");

    // Usernames too (no '@'); any case.
    assert_eq!(names(&get(&server, "/api/v3/breachedaccount/DARKSTAR", Some(&k)).json()), ["rumour-2025"]);

    // Not pwned: 404 with an empty body.
    for account in ["nobody%40acme.example", "nobody"] {
        let r = get(&server, &format!("/api/v3/breachedaccount/{account}"), Some(&k));
        assert_eq!((r.status, r.body.len()), (404, 0), "{account}");
    }

    // Invalid account or boolean: 400.
    assert_plain(&get(&server, "/api/v3/breachedaccount/bad%40", Some(&k)), 400, "not a valid e-mail address");
    assert_plain(&get(&server, &path("?truncateResponse=yes"), Some(&k)), 400, "truncateResponse");
    assert_plain(&get(&server, &path("?includeUnverified=1"), Some(&k)), 400, "includeUnverified");
}

#[test]
fn keys_user_agents_and_allow_lists_give_hibp_status_codes() {
    let (data, server) = server();
    let k = enterprise(data.path());
    let account = "/api/v3/breachedaccount/alice%40acme.example";

    // No User-Agent: 403 in plain text, on keyed and keyless routes alike.
    for path in [account, "/api/v3/breaches", "/api/v3/subscription/status"] {
        let r = request(server.addr, "GET", path, &[("hibp-api-key", &k)], b"");
        assert_plain(&r, 403, "User-Agent");
    }
    let r = request(server.addr, "GET", "/api/v3/breaches", &[("user-agent", "  ")], b"");
    assert_eq!(r.status, 403, "a blank User-Agent is none");

    // Missing or unknown key: 401 with a plain-text reason.
    assert_plain(&get(&server, account, None), 401, "hibp-api-key");
    assert_plain(&get(&server, "/api/v3/subscription/status", None), 401, "no API key");
    assert_plain(&get(&server, account, Some("bdx_not-a-key")), 401, "does not hold a valid API key");
    // The other key headers of the service work too.
    let bearer = format!("Bearer {k}");
    let r = request(server.addr, "GET", account, &[UA, ("authorization", &bearer)], b"");
    assert_eq!(r.status, 200);

    // A revoked key.
    let (id, revoked) = create(data.path(), NewKey::default());
    let store = breachdex_server::keys::open_store(data.path()).unwrap();
    breachdex_server::keys::revoke_key(&store, &id, breachdex_server::engine::now_unix()).unwrap();
    drop(store);
    let mut status = 0;
    for _ in 0..100 {
        status = get(&server, account, Some(&revoked)).status;
        if status == 401 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(status, 401, "a revoked key is refused");

    // Function allow-list: the v3 routes are `hibp`.
    let no_hibp = key(data.path(), NewKey { functions: Some("breach-check,usage".into()), ..Default::default() });
    assert_plain(&get(&server, account, Some(&no_hibp)), 403, "function hibp");
    assert_plain(&get(&server, "/api/v3/subscription/status", Some(&no_hibp)), 403, "function hibp");
    let only_hibp = key(data.path(), NewKey { functions: Some("hibp".into()), ..Default::default() });
    assert_eq!(get(&server, account, Some(&only_hibp)).status, 200);
    assert_eq!(server.get("/api/v1/usage/", &only_hibp).status, 403, "and nothing else");

    // IP allow-list.
    let elsewhere = key(data.path(), NewKey { allow_ip: Some("10.0.0.0/8".into()), ..Default::default() });
    assert_plain(&get(&server, account, Some(&elsewhere)), 403, "address");
}

#[test]
fn subscription_status_describes_the_keys_plan() {
    let (data, server) = server();
    let starter = key(data.path(), NewKey { expires: Some("2099-12-31".into()), ..Default::default() });
    let r = get(&server, "/api/v3/subscription/status", Some(&starter));
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v["SubscriptionName"], "Starter");
    assert_eq!(v["Rpm"], 10);
    assert_eq!(v["DomainSearchMaxBreachedAccounts"], 0);
    assert_eq!(v["IncludesStealerLogs"], true);
    assert!(v["Description"].as_str().unwrap().contains("1000 requests per calendar month"), "{v}");
    let until = v["SubscribedUntil"].as_str().unwrap();
    assert!(until.starts_with("2099-12-31T") || until.starts_with("2100-01-01T"), "{until}");
    assert!(!until.ends_with('Z'), "HIBP's form has no zone: {until}");

    let custom = key(data.path(), NewKey { plan: Some("enterprise".into()), rpm: Some(42), ..Default::default() });
    let v = get(&server, "/api/v3/subscription/status", Some(&custom)).json();
    assert_eq!((v["SubscriptionName"].as_str(), v["Rpm"].as_u64()), (Some("Enterprise"), Some(42)));
    assert!(v["SubscribedUntil"].is_null(), "a key that never expires");
    assert!(v["Description"].as_str().unwrap().contains("no monthly limit"));
}

/// A 429 as HIBP sends it: `retry-after` and the JSON body naming the same seconds.
#[track_caller]
fn assert_hibp_429(r: &Response) -> u64 {
    assert_eq!(r.status, 429, "{}", text(r));
    let seconds: u64 = r.header("retry-after").expect("retry-after").parse().unwrap();
    assert!(seconds >= 1);
    assert_eq!(
        r.json(),
        json!({"statusCode": 429, "message": format!("Rate limit is exceeded. Try again in {seconds} seconds.")})
    );
    seconds
}

#[test]
fn plans_monthly_quotas_and_the_per_address_limit_answer_429_as_hibp_does() {
    let data = tempfile::tempdir().unwrap();
    let mut c = config(index(), data.path());
    c.public_rpm = 3;
    let server = TestServer::start(c);
    let account = "/api/v3/breachedaccount/alice%40acme.example";

    // A starter key: 10 a minute. The window is the wall-clock minute, so at most 21
    // requests reach a refusal even if a minute ends meanwhile.
    let starter = key(data.path(), NewKey::default());
    let refused = (0..21).map(|_| get(&server, account, Some(&starter))).find(|r| r.status != 200);
    let refused = refused.expect("a starter key is refused within 21 requests");
    assert!(assert_hibp_429(&refused) <= 60);
    assert_eq!(refused.header("x-ratelimit-remaining"), Some("0"));

    // The monthly quota gives the same answer, with the seconds to the next month.
    let monthly = key(data.path(), NewKey { monthly: Some(1), ..Default::default() });
    assert_eq!(get(&server, account, Some(&monthly)).status, 200);
    let r = get(&server, "/api/v3/subscription/status", Some(&monthly));
    assert!(assert_hibp_429(&r) <= 31 * 86_400);

    // Keyless routes: 3 a minute per address here.
    let refused = (0..7).map(|_| get(&server, "/api/v3/breaches", None)).find(|r| r.status != 200);
    let refused = refused.expect("the per-address limit refuses within 7 requests");
    assert!(assert_hibp_429(&refused) <= 60);
}

#[test]
fn the_request_log_holds_route_templates_not_accounts() {
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::start(config(index(), data.path()));
    let k = enterprise(data.path());
    assert_eq!(get(&server, "/api/v3/breachedaccount/alice%40acme.example", Some(&k)).status, 200);
    assert_eq!(get(&server, "/api/v3/breachedaccount/secret.person", Some(&k)).status, 404);
    assert_eq!(get(&server, "/api/v3/breach/forum-2019", None).status, 200);
    assert_eq!(request(server.addr, "GET", "/api/v3/dataclasses", &[], b"").status, 403);
    server.stop();

    let store = SqliteStore::open(data.path()).unwrap();
    let mut rows = Vec::new();
    breachdex_server::keys::logs(&store, None, None, &mut |row| rows.push(row)).unwrap();
    let routes: Vec<(&str, u64)> =
        rows.iter().map(|r| (r["route"].as_str().unwrap(), r["status"].as_u64().unwrap())).collect();
    assert_eq!(
        routes,
        [
            ("/api/v3/breachedaccount/{account}", 200),
            ("/api/v3/breachedaccount/{account}", 404),
            ("/api/v3/breach/{name}", 200),
            ("/api/v3/dataclasses", 403),
        ]
    );
    assert!(rows[0]["key_id"].as_str().unwrap().starts_with("key_"));
    assert!(rows[2]["key_id"].is_null(), "a keyless route has no key");
    drop(store);
    for file in files_under(data.path()) {
        let bytes = std::fs::read(&file).unwrap();
        for needle in [b"alice".as_slice(), b"secret.person".as_slice(), k.as_bytes()] {
            assert!(!bytes.windows(needle.len()).any(|w| w == needle), "{} holds {needle:?}", file.display());
        }
    }
}
