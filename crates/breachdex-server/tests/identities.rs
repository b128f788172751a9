//! Watched identities (SPEC §14) against the real server on 127.0.0.1: CRUD, validation,
//! plan and per-key limits, organization isolation, the function allow-list, and what
//! the state database holds (derived keys, hashed in a hashed index).

mod common;

use breachdex_server::keys::NewKey;
use breachdex_server::store::DB_FILE;
use common::{Response, TestServer, config, create, index, request};
use serde_json::{Value, json};

/// A key of `org` on `plan` with a per-minute limit high enough for a test.
fn key(data: &std::path::Path, org: &str, plan: &str, identities: Option<u64>) -> String {
    let new = NewKey { org: org.into(), plan: Some(plan.into()), rpm: Some(100_000), identities, ..NewKey::default() };
    create(data, new).1
}

fn delete(server: &TestServer, path: &str, key: &str) -> Response {
    request(server.addr, "DELETE", path, &[("x-api-key", key)], b"")
}

fn identity(name: &str, email: &str) -> String {
    json!({"name": name, "emails": [email]}).to_string()
}

fn post(server: &TestServer, key: &str, body: &str) -> Response {
    server.post_json("/api/v1/identities/", key, body)
}

#[test]
fn an_identity_is_created_listed_read_and_soft_deleted() {
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::start(config(index(), data.path()));
    let k = key(data.path(), "acme", "starter", None);

    let body = json!({"name": "Alice", "identity_type": "professional", "full_name": "Alice Example",
        "emails": [" Alice@Example.COM ", "alice@bücher.de"], "usernames": ["Alice99"],
        "phones": ["+1 555 010 2030"], "is_primary": true});
    let r = post(&server, &k, &body.to_string());
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let created = r.json();
    let id = created["id"].as_str().expect("id").to_string();
    assert_eq!(created["name"], "Alice");
    assert_eq!(created["identity_type"], "professional");
    assert_eq!(created["full_name"], "Alice Example");
    assert_eq!(created["emails"], json!(["Alice@Example.COM", "alice@bücher.de"]), "as given, trimmed");
    assert_eq!(created["usernames"], json!(["Alice99"]));
    assert_eq!(created["phones"], json!(["+1 555 010 2030"]));
    assert_eq!((created["is_primary"].as_bool(), created["is_active"].as_bool()), (Some(true), Some(true)));
    assert!(created["last_scanned"].is_null());
    assert!(created["created_at"].as_str().is_some_and(|t| t.ends_with('Z')));

    // Defaults: personal, empty lists, not primary.
    let r = post(&server, &k, r#"{"name": "Bob"}"#);
    assert_eq!(r.status, 201);
    let bob = r.json();
    assert_eq!((bob["identity_type"].as_str(), bob["is_primary"].as_bool()), (Some("personal"), Some(false)));
    assert_eq!(bob["emails"], json!([]));

    let r = server.get("/api/v1/identities/", &k);
    assert_eq!(r.status, 200);
    let list = r.json();
    assert_eq!(list["count"], 2);
    assert_eq!(list["identities"][0], created);
    assert_eq!(list["identities"][1], bob);
    assert!(r.header("x-ratelimit-limit").is_some(), "rate limit headers as on every route");

    let r = server.get(&format!("/api/v1/identities/{id}/"), &k);
    assert_eq!((r.status, r.json()), (200, created.clone()));

    let r = delete(&server, &format!("/api/v1/identities/{id}/"), &k);
    assert_eq!(r.status, 204);
    assert!(r.body.is_empty());
    let r = server.get(&format!("/api/v1/identities/{id}/"), &k);
    assert_eq!((r.status, r.error_code().as_str()), (404, "not_found"));
    let r = delete(&server, &format!("/api/v1/identities/{id}/"), &k);
    assert_eq!((r.status, r.error_code().as_str()), (404, "not_found"), "deleted once");
    let list = server.get("/api/v1/identities/", &k).json();
    assert_eq!(list["count"], 1, "soft-deleted ones are not listed");
    assert_eq!(list["identities"][0]["id"], bob["id"]);
}

#[test]
fn invalid_requests_are_400s_naming_the_field_and_position() {
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::start(config(index(), data.path()));
    let k = key(data.path(), "acme", "starter", None);
    let details = |body: &str| -> (u16, String, Value) {
        let r = post(&server, &k, body);
        let code = r.error_code();
        (r.status, code, r.json()["details"].clone())
    };
    for (body, field, index) in [
        (json!({"name": "x", "emails": ["ok@example.org", "not an address"]}), "emails", 1),
        (json!({"name": "x", "emails": ["a@@example.org"]}), "emails", 0),
        (json!({"name": "x", "emails": ["a@example.org", " A@EXAMPLE.org"]}), "emails", 1),
        (json!({"name": "x", "usernames": ["ok", "", "fine"]}), "usernames", 1),
        (json!({"name": "x", "usernames": ["x".repeat(129)]}), "usernames", 0),
        (json!({"name": "x", "phones": ["+1 555 0100", "555-CALL-NOW"]}), "phones", 1),
    ] {
        let (status, code, d) = details(&body.to_string());
        assert_eq!((status, code.as_str()), (400, "validation_error"), "{body}");
        assert_eq!((d["field"].as_str(), d["index"].as_u64()), (Some(field), Some(index)), "{body}: {d}");
    }
    for (body, field) in [
        (json!({"emails": ["a@example.org"]}), "name"),
        (json!({"name": " "}), "name"),
        (json!({"name": "x", "identity_type": "robot"}), "identity_type"),
        (json!({"name": "x", "nickname": "y"}), "body"),
        (json!({"name": "x", "emails": "a@example.org"}), "body"),
    ] {
        let (status, code, d) = details(&body.to_string());
        assert_eq!((status, code.as_str(), d["field"].as_str()), (400, "validation_error", Some(field)), "{body}");
    }
    let (status, code, _) = details("{not json");
    assert_eq!((status, code.as_str()), (400, "validation_error"));
    assert_eq!(server.get("/api/v1/identities/", &k).json()["count"], 0, "nothing was stored");
}

#[test]
fn the_plan_and_the_key_limit_active_identities() {
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::start(config(index(), data.path()));
    let fill = |key: &str, n: usize| -> Vec<String> {
        (0..n)
            .map(|i| {
                let r = post(&server, key, &identity(&format!("p{i}"), &format!("p{i}@example.org")));
                assert_eq!(r.status, 201, "identity {i}: {}", String::from_utf8_lossy(&r.body));
                r.json()["id"].as_str().unwrap().to_string()
            })
            .collect()
    };
    let refused = |key: &str, limit: u64| {
        let r = post(&server, key, &identity("one more", "more@example.org"));
        assert_eq!((r.status, r.error_code().as_str()), (403, "limit_exceeded"));
        assert_eq!(r.json()["details"]["limit"], limit);
    };

    let starter = key(data.path(), "small", "starter", None);
    let ids = fill(&starter, 5);
    refused(&starter, 5);
    // A deleted identity frees its place.
    assert_eq!(delete(&server, &format!("/api/v1/identities/{}/", ids[0]), &starter).status, 204);
    fill(&starter, 1);
    refused(&starter, 5);

    let professional = key(data.path(), "medium", "professional", None);
    fill(&professional, 50);
    refused(&professional, 50);

    let enterprise = key(data.path(), "large", "enterprise", None);
    fill(&enterprise, 60);
    assert_eq!(server.get("/api/v1/identities/", &enterprise).json()["count"], 60);

    // Per key: `--identities 2` on a professional key; another key of the same
    // organization keeps its plan's limit over the same identities.
    let narrow = key(data.path(), "mixed", "professional", Some(2));
    fill(&narrow, 2);
    refused(&narrow, 2);
    let wide = key(data.path(), "mixed", "professional", None);
    fill(&wide, 1);
    assert_eq!(server.get("/api/v1/identities/", &narrow).json()["count"], 3, "one organization's identities");
}

#[test]
fn another_organizations_identities_are_not_found() {
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::start(config(index(), data.path()));
    let acme = key(data.path(), "acme", "starter", None);
    let other = key(data.path(), "other", "starter", None);
    let r = post(&server, &acme, &identity("secret person", "secret.person@example.org"));
    assert_eq!(r.status, 201);
    let id = r.json()["id"].as_str().unwrap().to_string();
    let path = format!("/api/v1/identities/{id}/");

    let r = server.get(&path, &other);
    assert_eq!((r.status, r.error_code().as_str()), (404, "not_found"));
    assert!(!String::from_utf8_lossy(&r.body).contains("secret"), "nothing of the identity leaks");
    let r = delete(&server, &path, &other);
    assert_eq!((r.status, r.error_code().as_str()), (404, "not_found"));
    assert_eq!(server.get("/api/v1/identities/", &other).json()["count"], 0);
    // Still there for its own organization.
    assert_eq!(server.get(&path, &acme).status, 200);
    let unknown = server.get("/api/v1/identities/idn_000000000000000000000000/", &acme);
    assert_eq!((unknown.status, unknown.error_code().as_str()), (404, "not_found"));
}

#[test]
fn the_function_allow_list_covers_identities() {
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::start(config(index(), data.path()));
    let without =
        create(data.path(), NewKey { org: "acme".into(), functions: Some("health,usage".into()), ..NewKey::default() })
            .1;
    for r in [
        server.get("/api/v1/identities/", &without),
        post(&server, &without, &identity("x", "x@example.org")),
        server.get("/api/v1/identities/idn_1/", &without),
        delete(&server, "/api/v1/identities/idn_1/", &without),
    ] {
        assert_eq!((r.status, r.error_code().as_str()), (403, "function_not_allowed"));
        assert_eq!(r.json()["details"]["function"], "identities");
    }
    let only =
        create(data.path(), NewKey { org: "acme".into(), functions: Some("identities".into()), ..NewKey::default() }).1;
    assert_eq!(post(&server, &only, &identity("x", "x@example.org")).status, 201);
    let r = server.get("/api/v1/usage/", &only);
    assert_eq!((r.status, r.error_code().as_str()), (403, "function_not_allowed"));
    let r = request(server.addr, "GET", "/api/v1/identities/", &[], b"");
    assert_eq!((r.status, r.error_code().as_str()), (401, "authentication_error"));
}

/// The derived keys stored for an identity's e-mails and usernames, as (kind, hex, mode).
fn stored_keys(data: &std::path::Path) -> Vec<(String, String, String)> {
    let conn = rusqlite::Connection::open(data.join(DB_FILE)).unwrap();
    let mut stmt = conn.prepare("SELECT kind, key, hash_mode FROM identity_keys ORDER BY kind, key").unwrap();
    stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, breachdex::to_hex(&r.get::<_, Vec<u8>>(1)?), r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[test]
fn a_hashed_index_stores_salted_keys_never_the_normalized_identifier() {
    let dir = tempfile::tempdir().unwrap();
    let salt_bytes = b"identities-test-salt-0123456789".to_vec();
    let salt_file = dir.path().join("salt");
    std::fs::write(&salt_file, &salt_bytes).unwrap();
    let catalog = breachdex::Catalog::load(&common::write_catalog(&dir.path().join("work"), false)).unwrap();
    let out = dir.path().join("hashed");
    let salt = breachdex::Salt::new(salt_bytes).unwrap();
    let options = breachdex::BuildOptions {
        threads: Some(1),
        hash_mode: breachdex::HashMode::Sha256,
        salt: Some(salt.clone()),
        rejects_path: Some(dir.path().join("rejects.jsonl")),
        ..Default::default()
    };
    breachdex::build_index(&catalog, &out, &options).unwrap();
    let data = dir.path().join("data");
    let mut cfg = config(&out, &data);
    cfg.salt_file = Some(salt_file);
    let server = TestServer::start(cfg);
    let k = key(&data, "acme", "starter", None);
    let body = json!({"name": "Hashed", "emails": [" Watched.Person@Example.ORG "], "usernames": ["Watcher"]});
    let r = post(&server, &k, &body.to_string());
    assert_eq!(r.status, 201);
    let id = r.json()["id"].as_str().unwrap().to_string();
    assert_eq!(r.json()["emails"], json!(["Watched.Person@Example.ORG"]), "shown as given");

    let deriver = breachdex::KeyDeriver::new(breachdex::HashMode::Sha256, Some(&salt)).unwrap();
    let hex = |normalized: &str| breachdex::to_hex(deriver.derive(normalized.as_bytes()).as_bytes());
    let want = vec![
        ("email".to_string(), hex("watched.person@example.org"), "sha256".to_string()),
        ("username".to_string(), hex("watcher"), "sha256".to_string()),
    ];
    assert_eq!(stored_keys(&data), want, "the index's own derived keys");
    // The database and its write-ahead log, byte for byte.
    let mut db = std::fs::read(data.join(DB_FILE)).unwrap();
    db.extend(std::fs::read(data.join(format!("{DB_FILE}-wal"))).unwrap_or_default());
    let contains = |needle: &[u8]| db.windows(needle.len()).any(|w| w == needle);
    assert!(contains(b"Watched.Person@Example.ORG"), "the search sees the stored rows");
    assert!(!contains(b"watched.person@example.org"), "no normalized copy of the e-mail");

    assert_eq!(delete(&server, &format!("/api/v1/identities/{id}/"), &k).status, 204);
    assert!(stored_keys(&data).is_empty(), "a deleted identity's keys are dropped");
}
