//! The HTTP API over a real socket answers every endpoint of SPEC §11 with its JSON
//! shape, every error as `{"error", "code", "details"}` with the documented status and
//! code, and enforces keys, plans, quotas, allow-lists and asset policies.

mod common;

use breachdex_server::keys::NewKey;
use breachdex_server::store::{KeyLimits, SqliteStore, StateStore, StoredKey};
use common::*;
use sha2::{Digest, Sha256, Sha512};
use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

fn server() -> (tempfile::TempDir, TestServer) {
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::start(config(index(), data.path()));
    (data, server)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn enterprise(data: &Path) -> String {
    create(data, NewKey { plan: Some("enterprise".into()), ..Default::default() }).1
}

#[test]
fn healthz_needs_no_key_and_health_describes_the_key_and_index() {
    let (data, server) = server();
    let r = request(server.addr, "GET", "/healthz", &[], b"");
    assert_eq!((r.status, r.body.as_slice()), (200, b"ok".as_slice()));

    let key = enterprise(data.path());
    let r = server.get("/api/v1/health/", &key);
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v["status"], "ok");
    assert_eq!(v["api_version"], "v1");
    assert_eq!(v["authenticated"], true);
    assert_eq!(v["user"], "acme");
    assert!(v["timestamp"].as_str().unwrap().ends_with('Z'));
    assert_eq!(v["index"]["hash_mode"], "plain");
    assert!(v["index"]["records"].as_u64().unwrap() > 2500);
    assert!(!v["index"]["build_id"].as_str().unwrap().is_empty());
    for h in ["x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"] {
        assert!(r.header(h).is_some(), "{h} on an authenticated response");
    }
    // /metrics is off unless asked for.
    assert_eq!(request(server.addr, "GET", "/metrics", &[], b"").status, 404);
}

#[test]
fn metrics_are_served_when_enabled() {
    let data = tempfile::tempdir().unwrap();
    let mut c = config(index(), data.path());
    c.metrics = true;
    let server = TestServer::start(c);
    request(server.addr, "GET", "/nope", &[], b"");
    let r = request(server.addr, "GET", "/metrics", &[], b"");
    assert_eq!(r.status, 200);
    let text = String::from_utf8(r.body).unwrap();
    assert!(text.contains("breachdex_responses_total{class=\"4xx\"} 1"), "{text}");
    assert!(text.contains("breachdex_log_rows_dropped_total 0"), "{text}");
}

#[test]
fn keys_are_read_from_all_three_headers_and_bad_keys_get_401() {
    let (data, server) = server();
    let key = enterprise(data.path());
    let bearer = format!("Bearer {key}");
    for (h, v) in [("authorization", bearer.as_str()), ("x-api-key", key.as_str()), ("hibp-api-key", key.as_str())] {
        let r = request(server.addr, "GET", "/api/v1/usage/", &[(h, v)], b"");
        assert_eq!(r.status, 200, "{h}");
    }
    let r = request(server.addr, "GET", "/api/v1/usage/", &[], b"");
    assert_eq!((r.status, r.error_code().as_str()), (401, "authentication_error"));
    assert!(r.header("x-ratelimit-limit").is_none());
    let wrong = format!("bdx_{}", "0".repeat(64));
    let r = server.get("/api/v1/usage/", &wrong);
    assert_eq!((r.status, r.error_code().as_str()), (401, "authentication_error"));
}

#[test]
fn a_key_revoked_or_expired_gets_401_and_a_new_key_works_at_once() {
    let (data, server) = server();
    // Created while the server runs: found on first use.
    let (id, key) = create(data.path(), NewKey { plan: Some("enterprise".into()), ..Default::default() });
    assert_eq!(server.get("/api/v1/usage/", &key).status, 200);
    let store = SqliteStore::open(data.path()).unwrap();
    breachdex_server::keys::revoke_key(&store, &id, breachdex_server::engine::now_unix()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r = server.get("/api/v1/usage/", &key);
        if r.status == 401 {
            assert_eq!(r.error_code(), "authentication_error");
            break;
        }
        assert!(Instant::now() < deadline, "revocation not seen within 5 s");
        std::thread::sleep(Duration::from_millis(100));
    }
    // An expired key (inserted as if created two days ago, valid through yesterday).
    let now = breachdex_server::engine::now_unix();
    let expired = "bdx_expired-key-for-the-test-0123456789abcdef0123456789";
    let stored = StoredKey {
        id: "key_expired".into(),
        org: "acme".into(),
        name: None,
        key_hash: breachdex_server::keys::key_hash(expired),
        plan: "starter".into(),
        rpm: 10,
        monthly: Some(1000),
        expires: Some("2000-01-01".into()),
        expires_at: Some(now - 86_400),
        allow_ip: None,
        functions: None,
        allow: None,
        hash_assets: None,
        output_salt: None,
        salt_position: "right".into(),
        created_at: now - 2 * 86_400,
        revoked_at: None,
        identities: None,
    };
    store.insert_key(&stored, KeyLimits::default(), now - 2 * 86_400).unwrap();
    let r = server.get("/api/v1/usage/", expired);
    assert_eq!((r.status, r.error_code().as_str()), (401, "authentication_error"));
}

#[test]
fn breach_check_answers_the_spec_shape_and_rejects_bad_bodies() {
    let (data, server) = server();
    let key = enterprise(data.path());
    let r = server.post_json("/api/v1/breach-check/", &key, r#"{"email": "USER@Example.com"}"#);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let v = r.json();
    assert_eq!(v["checked"], "USER@Example.com");
    assert_eq!(v["kind"], "email");
    assert!(v["total_breaches"].as_u64().unwrap() >= 2);
    let b = &v["breaches"][0];
    for f in
        ["source", "source_id", "title", "date", "data_types", "severity", "severity_score", "records", "description"]
    {
        assert!(!b[f].is_null(), "breach field {f} in {b}");
    }
    for f in ["risk_level", "risk_score", "checked_at"] {
        assert!(!v[f].is_null(), "{f}");
    }
    let r = server.post_json("/api/v1/breach-check/", &key, r#"{"username": "darkstar99"}"#);
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["kind"], "username");
    let r = server.post_json("/api/v1/breach-check/", &key, r#"{"email": "nobody@nowhere.example"}"#);
    assert_eq!(r.json()["risk_level"], "none");

    for bad in [
        r#"{}"#,
        r#"{"email": "a@b.com", "username": "x"}"#,
        r#"{"email": "not-an-email@"}"#,
        r#"{"email": 5}"#,
        r#"{"email": "a@b.com", "extra": 1}"#,
        r#"{"email": "#,
        "[]",
    ] {
        let r = server.post_json("/api/v1/breach-check/", &key, bad);
        assert_eq!((r.status, r.error_code().as_str()), (400, "validation_error"), "{bad}");
    }
    // Not JSON content type.
    let auth = format!("Bearer {key}");
    let r = request(server.addr, "POST", "/api/v1/breach-check/", &[("authorization", &auth)], br#"{"email":"a@b.c"}"#);
    assert_eq!((r.status, r.error_code().as_str()), (400, "validation_error"));
    // Wrong method.
    let r = server.get("/api/v1/breach-check/", &key);
    assert_eq!((r.status, r.error_code().as_str()), (405, "validation_error"));
}

#[test]
fn unknown_routes_are_404_json_with_or_without_a_key() {
    let (data, server) = server();
    let key = enterprise(data.path());
    for path in ["/", "/api/v2/health/", "/api/v1/nothing", "/api/v1/breach/data/emails/"] {
        let r = request(server.addr, "GET", path, &[], b"");
        assert_eq!((r.status, r.error_code().as_str()), (404, "not_found"), "{path}");
        let r = server.get(path, &key);
        assert_eq!((r.status, r.error_code().as_str()), (404, "not_found"), "{path}");
    }
}

#[test]
fn catalog_and_usage_answer_their_shapes() {
    let (data, server) = server();
    let key = create(data.path(), NewKey { plan: Some("professional".into()), ..Default::default() }).1;
    let r = server.get("/api/v1/breach/catalog", &key);
    assert_eq!(r.status, 200);
    let v = r.json();
    let sources = v["sources"].as_array().unwrap();
    assert_eq!(sources.len(), 5);
    let bulk = sources.iter().find(|s| s["id"] == 10).unwrap();
    assert_eq!(bulk["name"], "bulk-high");
    assert_eq!(bulk["title"], "Bulk High");
    assert_eq!(bulk["date"], "2020-05-01");
    assert_eq!(bulk["publish_date"], "2020-06-01");
    assert_eq!(bulk["record_count"], BULK_HIGH as u64);
    assert_eq!(bulk["description"], "generated");
    let types: Vec<&str> = bulk["data_types"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
    assert_eq!(types, ["email", "password_plaintext", "full_name"]);

    let r = server.get("/api/v1/breach/catalog/11", &key);
    assert_eq!((r.status, r.json()["name"].as_str()), (200, Some("bulk-medium")));
    let r = server.get("/api/v1/breach/catalog/99", &key);
    assert_eq!((r.status, r.error_code().as_str()), (404, "not_found"));
    let r = server.get("/api/v1/breach/catalog/abc", &key);
    assert_eq!((r.status, r.error_code().as_str()), (400, "validation_error"));

    let r = server.get("/api/v1/usage/", &key);
    let v = r.json();
    assert_eq!(v["plan"], "professional");
    assert_eq!(v["requests_used"], 5, "the four calls above and this one");
    assert_eq!(v["requests_limit"], 10_000);
    assert_eq!(v["requests_remaining"], 9_995);
    assert_eq!(v["rate_limit_per_minute"], 60);
    assert_eq!(v["is_active"], true);
    let reset = v["usage_reset_date"].as_str().unwrap();
    assert!(reset.ends_with("-01") && reset.len() == 10, "{reset}");
}

#[test]
fn a_plan_of_n_per_minute_gives_n_answers_then_429_with_retry_after() {
    let (data, server) = server();
    let key = create(data.path(), NewKey { rpm: Some(3), ..Default::default() }).1;
    // Stay inside one wall-clock minute.
    let secs = breachdex_server::engine::now_unix().rem_euclid(60);
    if secs > 50 {
        std::thread::sleep(Duration::from_secs((61 - secs) as u64));
    }
    for expected_remaining in ["2", "1", "0"] {
        let r = server.get("/api/v1/usage/", &key);
        assert_eq!(r.status, 200);
        assert_eq!(r.header("x-ratelimit-limit"), Some("3"));
        assert_eq!(r.header("x-ratelimit-remaining"), Some(expected_remaining));
        let reset: i64 = r.header("x-ratelimit-reset").unwrap().parse().unwrap();
        assert_eq!(reset.rem_euclid(60), 0, "the window ends on a minute");
    }
    let r = server.get("/api/v1/usage/", &key);
    assert_eq!((r.status, r.error_code().as_str()), (429, "rate_limited"));
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(r.header("x-ratelimit-remaining"), Some("0"));
}

#[test]
fn a_monthly_quota_is_enforced_with_quota_exceeded() {
    let (data, server) = server();
    let key = create(data.path(), NewKey { monthly: Some(2), rpm: Some(100), ..Default::default() }).1;
    assert_eq!(server.get("/api/v1/health/", &key).status, 200);
    assert_eq!(server.get("/api/v1/health/", &key).status, 200);
    let r = server.get("/api/v1/health/", &key);
    assert_eq!((r.status, r.error_code().as_str()), (429, "quota_exceeded"));
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=31 * 86_400).contains(&retry));
    assert_eq!(r.header("x-ratelimit-limit"), Some("2"));
}

#[test]
fn ip_and_function_allow_lists_refuse_with_403() {
    let data = tempfile::tempdir().unwrap();
    let mut c = config(index(), data.path());
    c.trust_proxy = vec!["127.0.0.1/32".parse().unwrap()];
    let server = TestServer::start(c);
    let key = create(
        data.path(),
        NewKey {
            plan: Some("enterprise".into()),
            allow_ip: Some("10.1.0.0/16,2001:db8::/32".into()),
            functions: Some("usage,catalog".into()),
            ..Default::default()
        },
    )
    .1;
    let get = |xff: Option<&str>, path: &str| {
        let mut headers = vec![("x-api-key", key.as_str())];
        if let Some(x) = xff {
            headers.push(("x-forwarded-for", x));
        }
        request(server.addr, "GET", path, &headers, b"")
    };
    // From 127.0.0.1 itself: not allowed.
    let r = get(None, "/api/v1/usage/");
    assert_eq!((r.status, r.error_code().as_str()), (403, "ip_not_allowed"));
    assert_eq!(get(Some("10.1.2.3"), "/api/v1/usage/").status, 200);
    assert_eq!(get(Some("2001:db8::7"), "/api/v1/usage/").status, 200);
    // The right-most untrusted hop counts, not a spoofed left-most one.
    assert_eq!(get(Some("10.1.2.3, 192.0.2.1"), "/api/v1/usage/").status, 403);
    assert_eq!(get(Some("192.0.2.1, 10.1.9.9"), "/api/v1/usage/").status, 200);
    // Function allow-list.
    let r = get(Some("10.1.2.3"), "/api/v1/health/");
    assert_eq!((r.status, r.error_code().as_str()), (403, "function_not_allowed"));
    assert_eq!(r.json()["details"]["function"], "health");
    assert_eq!(get(Some("10.1.2.3"), "/api/v1/breach/catalog").status, 200);

    // Without --trust-proxy, X-Forwarded-For is ignored.
    let data2 = tempfile::tempdir().unwrap();
    let untrusting = TestServer::start(config(index(), data2.path()));
    let key2 = create(
        data2.path(),
        NewKey { plan: Some("enterprise".into()), allow_ip: Some("10.1.0.0/16".into()), ..Default::default() },
    )
    .1;
    let r = request(
        untrusting.addr,
        "GET",
        "/api/v1/usage/",
        &[("x-api-key", &key2), ("x-forwarded-for", "10.1.2.3")],
        b"",
    );
    assert_eq!((r.status, r.error_code().as_str()), (403, "ip_not_allowed"));
}

fn records(server: &TestServer, key: &str, path_and_query: &str) -> serde_json::Value {
    let r = server.get(path_and_query, key);
    assert_eq!(r.status, 200, "{path_and_query}: {}", String::from_utf8_lossy(&r.body));
    r.json()
}

#[test]
fn breach_data_applies_the_key_policy_and_a_per_request_salt() {
    let (data, server) = server();
    let salt = "pepper-salt-01";
    let key = create(
        data.path(),
        NewKey {
            plan: Some("enterprise".into()),
            allow: Some("email,password_plaintext".into()),
            hash_assets: Some("email=sha256,password_plaintext=sha512".into()),
            output_salt: Some(salt.into()),
            salt_position: Some("left".into()),
            ..Default::default()
        },
    )
    .1;
    let email_digest = |salt: &str| hex(&Sha256::digest(format!("{salt}{BULK_EMAIL}")));
    let passwords: HashSet<String> =
        (0..BULK_HIGH).map(|i| hex(&Sha512::digest(format!("{salt}secret-{i}")))).collect();
    let v = records(&server, &key, &format!("/api/v1/breach/data/emails/{BULK_EMAIL}?source_id=10"));
    assert_eq!(v["hits"], BULK_HIGH as u64);
    for r in v["results"].as_array().unwrap() {
        assert_eq!(r["email"], email_digest(salt).as_str());
        assert!(passwords.contains(r["password_plaintext"].as_str().unwrap()), "{r}");
        assert_eq!(r["full_name"], "********");
        assert_eq!(r["source_id"], 10);
        assert_eq!(r["publish_date"], "2020-06-01");
        assert!(r["document_id"].as_str().unwrap().len() == 36);
    }
    let v = records(&server, &key, &format!("/api/v1/breach/data/emails/{BULK_EMAIL}?source_id=11"));
    let first = &v["results"][0];
    assert_eq!(first["phone"], "********");
    assert!(first.get("password_plaintext").is_none(), "absent assets are omitted");

    // A per-request salt replaces the key's.
    let other = "another-salt-2026";
    let v = records(&server, &key, &format!("/api/v1/breach/data/emails/{BULK_EMAIL}?source_id=11&salt={other}"));
    assert_eq!(v["results"][0]["email"], email_digest(other).as_str());
    for bad in ["short", "this-salt-is-far-too-long-for-it"] {
        let r = server.get(&format!("/api/v1/breach/data/emails/{BULK_EMAIL}?salt={bad}"), &key);
        assert_eq!((r.status, r.error_code().as_str()), (400, "validation_error"));
        assert_eq!(r.json()["details"]["field"], "salt");
    }
}

#[test]
fn paging_2500_records_returns_each_once_and_filters_hold() {
    let (data, server) = server();
    let key = enterprise(data.path());
    let base = format!("/api/v1/breach/data/emails/{BULK_EMAIL}");
    let walk = |query: &str| -> (u64, Vec<serde_json::Value>) {
        let mut all = Vec::new();
        let mut cursor = String::new();
        let mut hits = None;
        let mut pages = 0;
        loop {
            let url = match (query.is_empty(), cursor.is_empty()) {
                (_, true) => format!("{base}?{query}"),
                (true, false) => format!("{base}?cursor={cursor}"),
                (false, false) => format!("{base}?{query}&cursor={cursor}"),
            };
            let v = records(&server, &key, &url);
            let page = v["results"].as_array().unwrap();
            assert!(page.len() <= 1000);
            assert_eq!(*hits.get_or_insert(v["hits"].as_u64().unwrap()), v["hits"].as_u64().unwrap());
            all.extend(page.iter().cloned());
            cursor = v["cursor"].as_str().unwrap().to_string();
            pages += 1;
            assert!(pages < 10);
            if cursor.is_empty() {
                return (hits.unwrap(), all);
            }
        }
    };
    let (hits, all) = walk("");
    assert_eq!(hits, (BULK_HIGH + BULK_MEDIUM) as u64);
    let ids: HashSet<&str> = all.iter().map(|r| r["document_id"].as_str().unwrap()).collect();
    assert_eq!((all.len(), ids.len()), (BULK_HIGH + BULK_MEDIUM, BULK_HIGH + BULK_MEDIUM), "each record once");

    let count = |query: &str, source: u64| {
        let (hits, all) = walk(query);
        assert_eq!(hits as usize, all.len(), "{query}");
        assert!(all.iter().all(|r| r["source_id"] == source), "{query}");
        let ids: HashSet<&str> = all.iter().map(|r| r["document_id"].as_str().unwrap()).collect();
        assert_eq!(ids.len(), all.len());
        all.len()
    };
    assert_eq!(count("source_id=10", 10), BULK_HIGH);
    assert_eq!(count("source_id=11,99", 11), BULK_MEDIUM);
    assert_eq!(count("severity=20", 10), BULK_HIGH);
    assert_eq!(count("severity=5,2", 11), BULK_MEDIUM);
    assert_eq!(count("since=2023-01-01", 11), BULK_MEDIUM);
    assert_eq!(count("until=2021-01-01", 10), BULK_HIGH);
    assert_eq!(count("since=2020-06-01&until=2020-06-01", 10), BULK_HIGH);
    let (hits, all) = walk("since=2025-01-01");
    assert_eq!((hits, all.len()), (0, 0));

    // Cursors are bound to their request.
    let v = records(&server, &key, &base);
    let cursor = v["cursor"].as_str().unwrap().to_string();
    for url in [
        format!("{base}?cursor={cursor}&source_id=10"),
        format!("/api/v1/breach/data/emails/other@example.com?cursor={cursor}"),
        format!("{base}?cursor=garbage"),
        format!("{base}?cursor=0.ffff.0011223344556677"),
    ] {
        let r = server.get(&url, &key);
        assert_eq!((r.status, r.error_code().as_str()), (400, "cursor_error"), "{url}");
    }
    // Invalid filters name their field.
    for (query, field) in [
        ("since=2024-13-01", "since"),
        ("until=yesterday", "until"),
        ("severity=3", "severity"),
        ("source_id=x", "source_id"),
    ] {
        let r = server.get(&format!("{base}?{query}"), &key);
        assert_eq!((r.status, r.error_code().as_str()), (400, "validation_error"), "{query}");
        assert_eq!(r.json()["details"]["field"], field, "{query}");
    }
    let r = server.get(&format!("{base}?colour=red"), &key);
    assert_eq!((r.status, r.error_code().as_str()), (400, "validation_error"));
}

#[test]
fn several_emails_are_answered_in_one_page_and_usernames_have_their_route() {
    let (data, server) = server();
    let key = enterprise(data.path());
    let v = records(&server, &key, "/api/v1/breach/data/emails/user@example.com,John.Doe@Example.COM,nobody@x.example");
    let hits = v["hits"].as_u64().unwrap();
    let results = v["results"].as_array().unwrap();
    assert_eq!(hits as usize, results.len());
    let emails: HashSet<String> = results.iter().filter_map(|r| r["email"].as_str()).map(str::to_lowercase).collect();
    assert!(emails.contains("user@example.com") && emails.contains("john.doe@example.com"), "{emails:?}");
    // Each alone adds up to the same.
    let one = |e: &str| records(&server, &key, &format!("/api/v1/breach/data/emails/{e}"))["hits"].as_u64().unwrap();
    assert_eq!(hits, one("user@example.com") + one("John.Doe@Example.COM"));
    // Paging across identities: the bulk identity after a small one.
    let v = records(&server, &key, &format!("/api/v1/breach/data/emails/user@example.com,{BULK_EMAIL}"));
    let total = v["hits"].as_u64().unwrap();
    let mut seen = v["results"].as_array().unwrap().len();
    let mut cursor = v["cursor"].as_str().unwrap().to_string();
    while !cursor.is_empty() {
        let v = records(
            &server,
            &key,
            &format!("/api/v1/breach/data/emails/user@example.com,{BULK_EMAIL}?cursor={cursor}"),
        );
        seen += v["results"].as_array().unwrap().len();
        cursor = v["cursor"].as_str().unwrap().to_string();
    }
    assert_eq!(seen as u64, total);

    let eleven = (0..11).map(|i| format!("u{i}@example.com")).collect::<Vec<_>>().join(",");
    let r = server.get(&format!("/api/v1/breach/data/emails/{eleven}"), &key);
    assert_eq!((r.status, r.error_code().as_str()), (400, "validation_error"));
    let r = server.get("/api/v1/breach/data/emails/a@b.com,,c@d.com", &key);
    assert_eq!((r.status, r.error_code().as_str()), (400, "validation_error"));
    let r = server.get("/api/v1/breach/data/emails/not-an-email", &key);
    assert_eq!((r.status, r.error_code().as_str()), (400, "validation_error"));

    let v = records(&server, &key, "/api/v1/breach/data/usernames/darkstar99");
    assert!(v["hits"].as_u64().unwrap() >= 1);
}

#[test]
fn hostile_requests_get_4xx_json_and_the_server_stays_up() {
    let (data, server) = server();
    let key = enterprise(data.path());
    let cases: Vec<(String, u16)> = vec![
        ("/api/v1/breach/data/emails/%FF%FE@example.com".into(), 400),
        ("/api/v1/breach/data/emails/a%00b@example.com".into(), 400),
        ("/api/v1/breach/data/usernames/%00".into(), 400),
        (format!("/api/v1/breach/data/emails/{}@example.com", "a".repeat(60 * 1024)), 400),
        (format!("/{}", "x".repeat(60 * 1024)), 404),
        ("/api/v1/breach/catalog/%FF".into(), 400),
    ];
    for (path, status) in &cases {
        let r = server.get(path, &key);
        assert_eq!(r.status, *status, "{}", &path[..path.len().min(60)]);
        let code = r.error_code();
        assert!(code == "validation_error" || code == "not_found", "{code}");
    }
    // Past 65,534 bytes the HTTP parser itself answers 414 (no body of ours) and
    // the connection closes; the server goes on.
    let r = server.get(&format!("/api/v1/breach/data/emails/{}@example.com", "a".repeat(64 * 1024)), &key);
    assert_eq!(r.status, 414);
    // A 5 MiB body.
    let big = vec![b'x'; 5 << 20];
    let auth = format!("Bearer {key}");
    let r = request(
        server.addr,
        "POST",
        "/api/v1/breach-check/",
        &[("authorization", &auth), ("content-type", "application/json")],
        &big,
    );
    assert_eq!((r.status, r.error_code().as_str()), (413, "validation_error"));
    // Wrong methods.
    for (method, path) in [("DELETE", "/api/v1/usage/"), ("PUT", "/api/v1/breach-check/"), ("POST", "/healthz")] {
        let r = request(server.addr, method, path, &[("x-api-key", &key)], b"");
        assert_eq!((r.status, r.error_code().as_str()), (405, "validation_error"), "{method} {path}");
    }
    // Raw bytes that are not even HTTP: the connection is refused politely and the
    // server goes on.
    let _ = std::panic::catch_unwind(|| raw(server.addr, b"\xff\xfe GARBAGE\r\n\r\n", b""));
    let r = request(server.addr, "GET", "/healthz", &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(server.get("/api/v1/usage/", &key).status, 200);
}

#[test]
fn a_publication_under_load_causes_no_failed_request() {
    let dir = tempfile::tempdir().unwrap();
    let builds = dir.path().join("builds");
    std::fs::create_dir_all(&builds).unwrap();
    build(&dir.path().join("work-a"), &builds.join("a"), false);
    build(&dir.path().join("work-b"), &builds.join("b"), true);
    let current = dir.path().join("current");
    publish(&builds.join("a"), &current);
    let data = dir.path().join("data");
    let mut c = config(&current, &data);
    c.refresh_interval = Duration::from_millis(50);
    let server = TestServer::start(c);
    let key = create(&data, NewKey { plan: Some("enterprise".into()), rpm: Some(1_000_000), ..Default::default() }).1;
    let before = server.get("/api/v1/health/", &key).json()["index"]["build_id"].clone();

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let clients: Vec<_> = (0..2)
        .map(|_| {
            let (addr, key, stop) = (server.addr, key.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut n = 0;
                let body = r#"{"email": "new.person@example.org"}"#;
                let auth = format!("Bearer {key}");
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let r = request(
                        addr,
                        "POST",
                        "/api/v1/breach-check/",
                        &[("authorization", &auth), ("content-type", "application/json")],
                        body.as_bytes(),
                    );
                    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
                    n += 1;
                }
                n
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    publish(&builds.join("b"), &current);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = server.post_json("/api/v1/breach-check/", &key, r#"{"email": "new.person@example.org"}"#);
        assert_eq!(r.status, 200);
        if r.json()["total_breaches"] == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "the new build was not picked up");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let total: usize = clients.into_iter().map(|c| c.join().expect("no failed request")).sum();
    assert!(total > 0);
    let after = server.get("/api/v1/health/", &key).json()["index"]["build_id"].clone();
    assert_ne!(before, after);
}

#[test]
fn usage_survives_a_restart_and_data_holds_no_identifier_or_key() {
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::start(config(index(), data.path()));
    let (_, key) = create(data.path(), NewKey { plan: Some("professional".into()), ..Default::default() });
    let queried = ["user@example.com", "darkstar99", BULK_EMAIL, "secret.person@hidden.example"];
    let r = server.post_json("/api/v1/breach-check/", &key, &format!(r#"{{"email": "{}"}}"#, queried[0]));
    assert_eq!(r.status, 200);
    let r = server.post_json("/api/v1/breach-check/", &key, &format!(r#"{{"username": "{}"}}"#, queried[1]));
    assert_eq!(r.status, 200);
    assert_eq!(server.get(&format!("/api/v1/breach/data/emails/{}?source_id=11", queried[2]), &key).status, 200);
    assert_eq!(server.get(&format!("/api/v1/breach/data/emails/{}", queried[3]), &key).status, 200);
    assert_eq!(server.get("/api/v1/breach/data/emails/bad%00value@x.com", &key).status, 400);
    assert_eq!(server.get("/api/v1/usage/", &key).json()["requests_used"], 6);
    server.stop();

    let server = TestServer::start(config(index(), data.path()));
    assert_eq!(server.get("/api/v1/usage/", &key).json()["requests_used"], 7, "usage kept across the restart");
    server.stop();

    // The request log holds route templates, never identifiers.
    let store = SqliteStore::open(data.path()).unwrap();
    let mut routes = Vec::new();
    breachdex_server::keys::logs(&store, None, Some("acme"), &mut |row| {
        routes.push(row["route"].as_str().unwrap().to_string());
        assert_eq!(row["org"], "acme");
        assert!(row["key_id"].as_str().unwrap().starts_with("key_"));
        assert!(row["client"].as_str().unwrap() == "127.0.0.1");
    })
    .unwrap();
    assert_eq!(routes.len(), 7, "{routes:?}");
    assert!(routes.contains(&"/api/v1/breach/data/emails/{email}".to_string()), "{routes:?}");
    drop(store);

    // No file under --data holds a queried identifier or the key.
    let mut needles: Vec<Vec<u8>> = queried.iter().map(|q| q.as_bytes().to_vec()).collect();
    needles.push(b"bad\0value".to_vec());
    needles.push(key.as_bytes().to_vec());
    needles.push(key.as_bytes()["bdx_".len()..].to_vec());
    for file in files_under(data.path()) {
        let bytes = std::fs::read(&file).unwrap();
        for needle in &needles {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle.as_slice()),
                "{} holds {:?}",
                file.display(),
                String::from_utf8_lossy(needle)
            );
        }
    }
}

#[test]
fn keys_create_enforces_limits_and_validates_options() {
    let data = tempfile::tempdir().unwrap();
    let store = breachdex_server::keys::open_store(data.path()).unwrap();
    let now = breachdex_server::engine::now_unix();
    let new = |org: &str| NewKey { org: org.into(), ..Default::default() };
    let created = breachdex_server::keys::create_key(&store, &new("acme"), now).unwrap();
    let key = created["key"].as_str().unwrap();
    assert!(key.starts_with("bdx_") && key.len() >= 4 + 64, "{key}");
    assert_eq!(created["plan"], "starter");
    assert_eq!(created["rate_limit_per_minute"], 10);
    assert_eq!(created["monthly_limit"], 1000);
    for _ in 0..4 {
        breachdex_server::keys::create_key(&store, &new("acme"), now).unwrap();
    }
    let sixth = breachdex_server::keys::create_key(&store, &new("acme"), now).unwrap_err();
    assert_eq!(sixth.code(), "limit_exceeded");
    let listed = breachdex_server::keys::list_keys(&store, Some("acme"), now).unwrap();
    assert_eq!(listed.len(), 5);
    assert!(listed.iter().all(|k| k.get("key").is_none()), "list never shows the key");
    for bad in [
        NewKey { plan: Some("gold".into()), ..new("x") },
        NewKey { allow_ip: Some("10.0.0.0/33".into()), ..new("x") },
        NewKey { functions: Some("everything".into()), ..new("x") },
        NewKey { allow: Some("email".into()), hash_assets: Some("phone=sha256".into()), ..new("x") },
        NewKey { hash_assets: Some("email=md4".into()), ..new("x") },
        NewKey { output_salt: Some("short".into()), ..new("x") },
        NewKey { expires: Some("2001-01-01".into()), ..new("x") },
        NewKey { salt_position: Some("middle".into()), ..new("x") },
        new(""),
    ] {
        let e = breachdex_server::keys::create_key(&store, &bad, now).unwrap_err();
        assert_eq!(e.code(), "validation_error", "{e}");
    }
    let e = breachdex_server::keys::revoke_key(&store, "key_missing", now).unwrap_err();
    assert_eq!(e.code(), "not_found");
}

#[test]
fn cors_answers_preflights_for_allowed_origins_only() {
    let data = tempfile::tempdir().unwrap();
    let mut c = config(index(), data.path());
    c.cors_origins = vec!["https://app.example".into()];
    let server = TestServer::start(c);
    let preflight = |origin: &str| {
        request(
            server.addr,
            "OPTIONS",
            "/api/v1/breach-check/",
            &[
                ("origin", origin),
                ("access-control-request-method", "POST"),
                ("access-control-request-headers", "x-api-key,content-type"),
            ],
            b"",
        )
    };
    let r = preflight("https://app.example");
    assert_eq!(r.header("access-control-allow-origin"), Some("https://app.example"));
    assert!(preflight("https://evil.example").header("access-control-allow-origin").is_none());
    let key = enterprise(data.path());
    let r =
        request(server.addr, "GET", "/api/v1/usage/", &[("x-api-key", &key), ("origin", "https://app.example")], b"");
    assert_eq!(r.status, 200);
    let exposed = r.header("access-control-expose-headers").unwrap_or("").to_ascii_lowercase();
    assert!(exposed.contains("x-ratelimit-remaining") && exposed.contains("retry-after"), "{exposed}");
}

#[test]
fn log_rows_past_the_retention_are_deleted() {
    let data = tempfile::tempdir().unwrap();
    let count = || {
        let store = SqliteStore::open(data.path()).unwrap();
        let mut rows = 0;
        breachdex_server::keys::logs(&store, None, None, &mut |_| rows += 1).unwrap();
        rows
    };
    // Kept under the default retention (30 days); written at the latest by the final flush.
    let server = TestServer::start(config(index(), data.path()));
    let key = enterprise(data.path());
    assert_eq!(server.get("/api/v1/usage/", &key).status, 200);
    server.stop();
    assert_eq!(count(), 1);
    // A server with a retention of 0 days deletes it (the writer prunes on its first run).
    let mut c = config(index(), data.path());
    c.log_retention_days = 0;
    c.prune_interval = Duration::from_millis(100);
    let server = TestServer::start(c);
    let deadline = Instant::now() + Duration::from_secs(10);
    while count() > 0 {
        assert!(Instant::now() < deadline, "a retention of 0 days keeps nothing once pruned");
        std::thread::sleep(Duration::from_millis(50));
    }
    server.stop();
    assert_eq!(count(), 0);
    let store = SqliteStore::open(data.path()).unwrap();
    assert_eq!(store.usage(&chrono_month()).unwrap().len(), 1, "usage is not part of the log");
}

fn chrono_month() -> String {
    let (ym, _) = breachdex_server::engine::month_of(breachdex_server::engine::now_unix());
    format!("{:04}-{:02}", ym.0, ym.1)
}

#[test]
fn an_unknown_key_is_remembered_until_the_key_table_changes() {
    let (data, server) = server();
    let store = SqliteStore::open(data.path()).unwrap();
    let key = "bdx_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    for _ in 0..3 {
        assert_eq!(server.get("/api/v1/usage/", key).status, 401);
    }
    // Now the key is created (as `breachdex keys create` would, from another connection).
    let now = breachdex_server::engine::now_unix();
    let stored = StoredKey {
        id: "key_late".into(),
        org: "acme".into(),
        name: None,
        key_hash: breachdex_server::keys::key_hash(key),
        plan: "starter".into(),
        rpm: 10,
        monthly: Some(1000),
        expires: None,
        expires_at: None,
        allow_ip: None,
        functions: None,
        allow: None,
        hash_assets: None,
        output_salt: None,
        salt_position: "right".into(),
        created_at: now,
        revoked_at: None,
        identities: None,
    };
    store.insert_key(&stored, KeyLimits::default(), now).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.get("/api/v1/usage/", key).status != 200 {
        assert!(Instant::now() < deadline, "the new key was not accepted within 5 s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn shutdown_finishes_a_request_in_flight_and_refuses_new_connections() {
    use std::io::{Read, Write};
    let (data, server) = server();
    let key = enterprise(data.path());
    let body = br#"{"email": "user@example.com"}"#;
    // A request whose body is still arriving when shutdown begins.
    let mut conn = std::net::TcpStream::connect(server.addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        conn,
        "POST /api/v1/breach-check/ HTTP/1.1\r\nhost: t\r\nx-api-key: {key}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    conn.write_all(&body[..5]).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let addr = server.addr;
    server.begin_shutdown();
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(addr).is_ok() {
        assert!(Instant::now() < deadline, "new connections still accepted 10 s after shutdown began");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(200));
    assert!(!server.is_finished(), "shutdown waits for the request in flight");
    conn.write_all(&body[5..]).unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("\"checked\":\"user@example.com\""), "{answer}");
    server.stop();
}
