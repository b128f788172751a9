//! Scans, findings and risk scores (SPEC §14) against the real server on 127.0.0.1: a
//! scan runs to completion in the background, its findings are the breach checks of the
//! identity's identifiers, pages and filters, organization isolation, risk per identity
//! and per organization, a repeated scan gives the same findings, and scans left pending
//! or running by a stopped server complete after a restart.

mod common;

use breachdex_server::keys::NewKey;
use breachdex_server::store::DB_FILE;
use common::{Received, Receiver, Response, TestServer, config, create, open_webhooks_config};
use hmac::{KeyInit, Mac};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The e-mail found in every generated source.
const MANY: &str = "many@example.org";
/// Generated sources.
const SOURCES: u32 = 31;

/// An index of [`SOURCES`] generated sources, all holding [`MANY`], with different assets
/// (so that categories and severities vary), some also `other@example.org` and the
/// username `shadow_fox`; built once per test binary.
fn scan_index() -> &'static Path {
    static INDEX: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    let (_, path) = INDEX.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut sources = Vec::new();
        for id in 1..=SOURCES {
            let (header, row) = match id % 4 {
                0 => ("email,password,url", format!("{MANY},pw-{id},https://site{id}.example/login")),
                1 => ("email,password", format!("{MANY},pw-{id}")),
                2 => ("email,phone", format!("{MANY},+1 555 {id:07}")),
                _ => ("email,username", format!("{MANY},")),
            };
            let mut text = format!("{header}\n{row}\n");
            if id % 5 == 0 {
                text.push_str(&match id % 4 {
                    0 | 1 => "other@example.org,secret\n".to_string(),
                    2 => "other@example.org,+1 555 0000000\n".to_string(),
                    _ => "other@example.org,shadow_fox\n".to_string(),
                });
            }
            let file = dir.path().join(format!("s{id}.csv"));
            std::fs::write(&file, text).unwrap();
            sources.push(json!({"id": id, "name": format!("source-{id:02}"), "title": format!("Source {id}"),
                "date": format!("20{:02}-0{}-1{}", 10 + id % 15, 1 + id % 9, id % 10),
                "description": format!("generated source {id}"), "publish_date": "2026-01-01",
                "files": [{"path": file.display().to_string(), "format": "csv"}]}));
        }
        let catalog_path = dir.path().join("catalog.json");
        std::fs::write(&catalog_path, json!({ "sources": sources }).to_string()).unwrap();
        let catalog = breachdex::Catalog::load(&catalog_path).expect("catalog");
        let out = dir.path().join("index");
        let options = breachdex::BuildOptions {
            threads: Some(1),
            rejects_path: Some(dir.path().join("rejects.jsonl")),
            ..Default::default()
        };
        breachdex::build_index(&catalog, &out, &options).expect("build");
        (dir, out)
    });
    path
}

fn key(data: &Path, org: &str) -> String {
    let new = NewKey { org: org.into(), plan: Some("enterprise".into()), rpm: Some(100_000), ..NewKey::default() };
    create(data, new).1
}

fn ok(r: Response, status: u16) -> Value {
    assert_eq!(r.status, status, "{}", String::from_utf8_lossy(&r.body));
    r.json()
}

fn new_identity(server: &TestServer, key: &str, body: Value) -> String {
    let created = ok(server.post_json("/api/v1/identities/", key, &body.to_string()), 201);
    created["id"].as_str().unwrap().to_string()
}

fn start_scan(server: &TestServer, key: &str, body: Value) -> Value {
    ok(server.post_json("/api/v1/scans/", key, &body.to_string()), 201)
}

/// Polls a scan until it is completed or failed.
fn finish(server: &TestServer, key: &str, scan_id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let scan = ok(server.get(&format!("/api/v1/scans/{scan_id}/"), key), 200);
        let status = scan["status"].as_str().unwrap().to_string();
        let progress = scan["progress"].as_u64().unwrap();
        assert!(progress <= 100);
        if status == "completed" || status == "failed" {
            return scan;
        }
        assert!(status == "pending" || status == "running", "{scan}");
        assert!(Instant::now() < deadline, "scan {scan_id} did not finish: {scan}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Every finding of a scan, page by page, with `query` (`&severity=...`).
fn all_findings(server: &TestServer, key: &str, scan_id: &str, query: &str) -> (u64, Vec<Value>) {
    let mut out = Vec::new();
    let mut total = None;
    for page in 1.. {
        let r = ok(server.get(&format!("/api/v1/scans/{scan_id}/findings/?page={page}{query}"), key), 200);
        assert_eq!(
            (r["scan_id"].as_str(), r["page"].as_u64(), r["per_page"].as_u64()),
            (Some(scan_id), Some(page), Some(25))
        );
        let t = r["total_findings"].as_u64().unwrap();
        assert_eq!(*total.get_or_insert(t), t, "the same total on every page");
        let list = r["findings"].as_array().unwrap().clone();
        assert!(list.len() <= 25);
        if list.is_empty() {
            break;
        }
        out.extend(list);
    }
    (total.unwrap_or(0), out)
}

/// The category a finding must have, from a breach's data types (the documented rule).
fn category_of(data_types: &[Value]) -> &'static str {
    let has = |name: &str| data_types.iter().any(|d| d == name);
    if has("password_plaintext") || has("password_hash") {
        "credential"
    } else if ["full_name", "phone", "dob", "address", "ip_address"].iter().any(|a| has(a)) {
        "exposure"
    } else {
        "breach"
    }
}

/// What the findings of an identity must be, from `POST /api/v1/breach-check/` of each of
/// its identifiers: (identifier, source, severity, category), in order.
fn expected_findings(server: &TestServer, key: &str, ids: &[(&str, &str)]) -> Vec<(String, String, String, String)> {
    let mut out = Vec::new();
    for (field, value) in ids {
        let check = ok(server.post_json("/api/v1/breach-check/", key, &json!({ *field: value }).to_string()), 200);
        for b in check["breaches"].as_array().unwrap() {
            out.push((
                value.to_string(),
                b["source"].as_str().unwrap().to_string(),
                b["severity"].as_str().unwrap().to_string(),
                category_of(b["data_types"].as_array().unwrap()).to_string(),
            ));
        }
    }
    out
}

fn summary(findings: &[Value]) -> Vec<(String, String, String, String)> {
    findings
        .iter()
        .map(|f| {
            let s = |k: &str| f[k].as_str().unwrap_or_default().to_string();
            (s("identifier"), s("source"), s("severity"), s("category"))
        })
        .collect()
}

/// A finding without what differs between two scans (its id and time) and its novelty.
fn content(f: &Value) -> Value {
    let mut f = f.clone();
    let map = f.as_object_mut().unwrap();
    for k in ["id", "created_at", "is_new"] {
        map.remove(k);
    }
    f
}

#[test]
fn a_scan_completes_with_the_findings_of_the_identitys_checks() {
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::start(config(scan_index(), data.path()));
    let k = key(data.path(), "acme");
    let id = new_identity(
        &server,
        &k,
        json!({"name": "Many", "emails": [MANY, "Other@Example.org", "nobody@example.org"], "usernames": ["shadow_fox"]}),
    );
    let started = start_scan(&server, &k, json!({"identity_id": id, "scan_type": "full"}));
    assert_eq!((started["status"].as_str(), started["progress"].as_u64()), (Some("pending"), Some(0)));
    assert_eq!((started["scan_type"].as_str(), started["identity"]["id"].as_str()), (Some("full"), Some(id.as_str())));
    assert!(started["created_at"].as_str().is_some_and(|t| t.ends_with('Z')));
    let scan_id = started["scan_id"].as_str().unwrap().to_string();
    assert!(scan_id.starts_with("scn_"));

    let done = finish(&server, &k, &scan_id);
    assert_eq!((done["status"].as_str(), done["progress"].as_u64()), (Some("completed"), Some(100)), "{done}");
    assert!(done["started_at"].is_string() && done["completed_at"].is_string());

    let expected = expected_findings(
        &server,
        &k,
        &[("email", MANY), ("email", "Other@Example.org"), ("email", "nobody@example.org"), ("username", "shadow_fox")],
    );
    assert!(expected.len() > 25, "more than one page: {}", expected.len());
    let (total, findings) = all_findings(&server, &k, &scan_id, "");
    assert_eq!(total as usize, expected.len());
    assert_eq!(summary(&findings), expected, "one finding per breach of each identifier, in the checks' order");
    for f in &findings {
        assert_eq!(f["status"], "open");
        assert_eq!(f["is_new"], true, "the first scan");
        assert!(f["id"].as_str().is_some_and(|i| i.starts_with("fnd_")));
        assert!(f["title"].as_str().is_some_and(|t| t.contains(f["identifier"].as_str().unwrap())));
        assert!(f["remediation_steps"].as_array().is_some_and(|s| !s.is_empty()));
    }
    // Counts per severity.
    assert_eq!(done["findings_count"].as_u64(), Some(total));
    for label in ["critical", "high", "medium", "low"] {
        let n = expected.iter().filter(|e| e.2 == label).count() as u64;
        assert_eq!(done[format!("{label}_count")].as_u64(), Some(n), "{label}");
    }
    let categories: std::collections::BTreeSet<&str> = expected.iter().map(|e| e.3.as_str()).collect();
    assert_eq!(categories.len(), 3, "every category occurs: {categories:?}");

    // Filters: the same findings as filtering the whole list, pages of 25.
    for (query, keep) in [
        ("&severity=high", Box::new(|e: &(String, String, String, String)| e.2 == "high") as Box<dyn Fn(&_) -> bool>),
        ("&severity=critical,5", Box::new(|e: &(String, String, String, String)| e.2 == "critical" || e.2 == "medium")),
        ("&category=credential", Box::new(|e: &(String, String, String, String)| e.3 == "credential")),
        (
            "&category=exposure&severity=medium",
            Box::new(|e: &(String, String, String, String)| e.3 == "exposure" && e.2 == "medium"),
        ),
    ] {
        let want: Vec<_> = expected.iter().filter(|e| keep(e)).cloned().collect();
        let (total, got) = all_findings(&server, &k, &scan_id, query);
        assert_eq!((total as usize, summary(&got)), (want.len(), want), "{query}");
    }
    for (query, field) in
        [("severity=severe", "severity"), ("category=password", "category"), ("page=0", "page"), ("page=x", "page")]
    {
        let r = server.get(&format!("/api/v1/scans/{scan_id}/findings/?{query}"), &k);
        assert_eq!((r.status, r.error_code().as_str()), (400, "validation_error"), "{query}");
        assert_eq!(r.json()["details"]["field"], field, "{query}");
    }

    // The identity's risk: its one e-mail's breaches and more, so at least that e-mail's
    // check score; last_scanned is set.
    let risk = ok(server.get(&format!("/api/v1/risk-score/?identity_id={id}"), &k), 200);
    let check = ok(server.post_json("/api/v1/breach-check/", &k, &json!({"email": MANY}).to_string()), 200);
    assert!(risk["overall_score"].as_u64() >= check["risk_score"].as_u64(), "{risk} {check}");
    assert_eq!(risk["risk_level"], "critical");
    assert_eq!(risk["trend"], "new");
    for c in ["breach", "exposure", "password"] {
        assert!(risk["categories"][c].as_u64().is_some_and(|v| v > 0 && v <= 100), "{risk}");
    }
    assert!(risk["recommendations"].as_array().is_some_and(|r| !r.is_empty()));
    assert!(risk["last_calculated"].is_string());
    let identity = ok(server.get(&format!("/api/v1/identities/{id}/"), &k), 200);
    assert!(identity["last_scanned"].is_string());
}

#[test]
fn a_quick_scan_checks_e_mails_only_and_a_repeated_scan_gives_the_same_findings() {
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::start(config(scan_index(), data.path()));
    let k = key(data.path(), "acme");
    let id = new_identity(
        &server,
        &k,
        json!({"name": "Other", "emails": ["other@example.org"], "usernames": ["shadow_fox"]}),
    );

    let first = start_scan(&server, &k, json!({"identity_id": id}));
    assert_eq!(first["scan_type"], "full", "the default");
    let first_id = first["scan_id"].as_str().unwrap();
    finish(&server, &k, first_id);
    let second_id = start_scan(&server, &k, json!({"identity_id": id}))["scan_id"].as_str().unwrap().to_string();
    finish(&server, &k, &second_id);
    let (_, a) = all_findings(&server, &k, first_id, "");
    let (_, b) = all_findings(&server, &k, &second_id, "");
    assert!(!a.is_empty());
    assert_eq!(a.iter().map(content).collect::<Vec<_>>(), b.iter().map(content).collect::<Vec<_>>());
    assert!(a.iter().all(|f| f["is_new"] == true) && b.iter().all(|f| f["is_new"] == false), "new only the first time");
    let risk = ok(server.get(&format!("/api/v1/risk-score/?identity_id={id}"), &k), 200);
    assert_eq!(risk["trend"], "stable", "the same score twice");

    let quick = start_scan(&server, &k, json!({"identity_id": id, "scan_type": "quick"}));
    let quick_id = quick["scan_id"].as_str().unwrap();
    finish(&server, &k, quick_id);
    let (_, q) = all_findings(&server, &k, quick_id, "");
    let emails_only: Vec<Value> = a.iter().filter(|f| f["identifier_kind"] == "email").map(content).collect();
    assert!(emails_only.len() < a.len(), "the username has findings in a full scan");
    assert_eq!(q.iter().map(content).collect::<Vec<_>>(), emails_only);
}

#[test]
fn scans_and_risk_scores_belong_to_the_organization() {
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::start(config(scan_index(), data.path()));
    let acme = key(data.path(), "acme");
    let other = key(data.path(), "other");
    let a1 = new_identity(&server, &acme, json!({"name": "A1", "emails": [MANY]}));
    let a2 = new_identity(&server, &acme, json!({"name": "A2", "emails": ["nobody@example.org"]}));
    let o1 = new_identity(&server, &other, json!({"name": "O1", "emails": ["other@example.org"]}));

    let scan_a1 = start_scan(&server, &acme, json!({"identity_id": a1}))["scan_id"].as_str().unwrap().to_string();
    let scan_a2 = start_scan(&server, &acme, json!({"identity_id": a2}))["scan_id"].as_str().unwrap().to_string();
    finish(&server, &acme, &scan_a1);
    finish(&server, &acme, &scan_a2);

    for path in [
        format!("/api/v1/scans/{scan_a1}/"),
        format!("/api/v1/scans/{scan_a1}/findings/"),
        format!("/api/v1/risk-score/?identity_id={a1}"),
        "/api/v1/scans/scn_000000000000000000000000/".to_string(),
    ] {
        let r = server.get(&path, &other);
        assert_eq!((r.status, r.error_code().as_str()), (404, "not_found"), "{path}");
        assert!(!String::from_utf8_lossy(&r.body).contains(MANY), "nothing of it is shown");
    }
    let r = server.post_json("/api/v1/scans/", &acme, &json!({"identity_id": o1}).to_string());
    assert_eq!((r.status, r.error_code().as_str()), (404, "not_found"), "another organization's identity");

    // Per identity: one e-mail, so the check's own score; the organization: the blend of
    // its identities (0.6 · max + 0.4 · mean), once the queue is empty.
    let check = ok(server.post_json("/api/v1/breach-check/", &acme, &json!({"email": MANY}).to_string()), 200);
    let r1 = ok(server.get(&format!("/api/v1/risk-score/?identity_id={a1}"), &acme), 200);
    let r2 = ok(server.get(&format!("/api/v1/risk-score/?identity_id={a2}"), &acme), 200);
    assert_eq!(r1["overall_score"], check["risk_score"]);
    assert_eq!(r1["risk_level"], check["risk_level"]);
    assert_eq!((r2["overall_score"].as_u64(), r2["risk_level"].as_str()), (Some(0), Some("none")));
    let (s1, s2) = (r1["overall_score"].as_f64().unwrap(), r2["overall_score"].as_f64().unwrap());
    let blended = (0.6 * s1.max(s2) + 0.4 * (s1 + s2) / 2.0).round() as u64;
    let deadline = Instant::now() + Duration::from_secs(30);
    let org = loop {
        let org = ok(server.get("/api/v1/risk-score/", &acme), 200);
        if org["overall_score"].as_u64() == Some(blended) {
            break org;
        }
        assert!(Instant::now() < deadline, "organization score {org}, expected {blended}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(org["scope"], "organization");
    assert!(org["last_calculated"].is_string());
    let none = ok(server.get("/api/v1/risk-score/", &other), 200);
    assert_eq!((none["overall_score"].as_u64(), none["trend"].as_str()), (Some(0), Some("new")), "nothing scanned");
    assert!(none["last_calculated"].is_null());
}

#[test]
fn bad_scan_requests_name_the_field_and_the_function_allow_list_holds() {
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::start(config(scan_index(), data.path()));
    let k = key(data.path(), "acme");
    let id = new_identity(&server, &k, json!({"name": "X", "emails": [MANY]}));
    for (body, field) in [
        (json!({}), "identity_id"),
        (json!({"identity_id": " "}), "identity_id"),
        (json!({"identity_id": id, "scan_type": "deep"}), "scan_type"),
        (json!({"identity_id": id, "callback_url": "https://127.0.0.1/hook"}), "callback_url"),
        (json!({"identity_id": id, "callback_url": "http://169.254.169.254/latest"}), "callback_url"),
        (json!({"identity_id": id, "extra": 1}), "body"),
    ] {
        let r = server.post_json("/api/v1/scans/", &k, &body.to_string());
        assert_eq!((r.status, r.error_code().as_str()), (400, "validation_error"), "{body}");
        assert_eq!(r.json()["details"]["field"], field, "{body}");
    }
    let r = server.post_json("/api/v1/scans/", &k, &json!({"identity_id": "idn_unknown"}).to_string());
    assert_eq!((r.status, r.error_code().as_str()), (404, "not_found"));
    let r = server.get("/api/v1/risk-score/?identity_id=idn_unknown", &k);
    assert_eq!((r.status, r.error_code().as_str()), (404, "not_found"));

    let limited =
        create(data.path(), NewKey { org: "acme".into(), functions: Some("identities".into()), ..NewKey::default() }).1;
    let r = server.post_json("/api/v1/scans/", &limited, &json!({"identity_id": id}).to_string());
    assert_eq!((r.status, r.error_code().as_str()), (403, "function_not_allowed"));
    let r = server.get("/api/v1/risk-score/", &limited);
    assert_eq!((r.status, r.error_code().as_str()), (403, "function_not_allowed"));
}

#[test]
fn scans_pending_or_running_when_the_server_stops_complete_after_a_restart() {
    let data = tempfile::tempdir().unwrap();
    let mut paused = config(scan_index(), data.path());
    paused.scan_workers = 0;
    let server = TestServer::start(paused);
    let k = key(data.path(), "acme");
    let id = new_identity(&server, &k, json!({"name": "X", "emails": [MANY], "usernames": ["shadow_fox"]}));
    let pending = start_scan(&server, &k, json!({"identity_id": id}))["scan_id"].as_str().unwrap().to_string();
    let running = start_scan(&server, &k, json!({"identity_id": id}))["scan_id"].as_str().unwrap().to_string();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(ok(server.get(&format!("/api/v1/scans/{pending}/"), &k), 200)["status"], "pending", "no worker");
    server.stop();
    // As a server killed in the middle of a scan leaves it.
    let conn = rusqlite::Connection::open(data.path().join(DB_FILE)).unwrap();
    conn.execute("UPDATE scans SET status = 'running', started_at = 1 WHERE id = ?1", [&running]).unwrap();
    drop(conn);

    let server = TestServer::start(config(scan_index(), data.path()));
    let a = finish(&server, &k, &pending);
    let b = finish(&server, &k, &running);
    assert_eq!((a["status"].as_str(), b["status"].as_str()), (Some("completed"), Some("completed")));
    assert_eq!(a["findings_count"], b["findings_count"]);
    let (_, fa) = all_findings(&server, &k, &pending, "");
    let (_, fb) = all_findings(&server, &k, &running, "");
    assert_eq!(fa.iter().map(content).collect::<Vec<_>>(), fb.iter().map(content).collect::<Vec<_>>());

    // A scan whose identity is deleted before it runs fails with the reason.
    server.stop();
    let mut paused = config(scan_index(), data.path());
    paused.scan_workers = 0;
    let server = TestServer::start(paused);
    let doomed = start_scan(&server, &k, json!({"identity_id": id}))["scan_id"].as_str().unwrap().to_string();
    let r = common::request(server.addr, "DELETE", &format!("/api/v1/identities/{id}/"), &[("x-api-key", &k)], b"");
    assert_eq!(r.status, 204);
    server.stop();
    let server = TestServer::start(config(scan_index(), data.path()));
    let failed = finish(&server, &k, &doomed);
    assert_eq!(failed["status"], "failed");
    assert!(failed["error"].as_str().is_some_and(|e| e.contains("deleted")), "{failed}");
}

/// Checks both signatures of a delivery (HMAC-SHA256 computed here with the `hmac`
/// crate); returns the payload.
fn verified(r: &Received, secret: &str) -> Value {
    let hex = |message: &[u8]| {
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(message);
        format!("sha256={}", mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect::<String>())
    };
    assert_eq!(r.header("x-breachdex-signature"), Some(hex(&r.body).as_str()));
    let payload = r.json();
    let signature = payload["signature"].as_str().unwrap();
    let text = std::str::from_utf8(&r.body).unwrap();
    let unsigned = format!("{}}}", text.strip_suffix(&format!(",\"signature\":\"{signature}\"}}")).unwrap());
    assert_eq!(signature, hex(unsigned.as_bytes()));
    payload
}

fn events_of(received: &[Received], secret: &str, event: &str) -> Vec<Value> {
    received.iter().filter(|r| r.header("x-breachdex-event") == Some(event)).map(|r| verified(r, secret)).collect()
}

#[test]
fn a_scan_sends_scan_completed_finding_new_and_alert_triggered_signed() {
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::start(open_webhooks_config(scan_index(), data.path()));
    let k = key(data.path(), "acme");
    let (hooks, callback) = (Receiver::start(&[]), Receiver::start(&[]));
    let r = server.post_json(
        "/api/v1/webhooks/",
        &k,
        &json!({"url": hooks.url("in"), "events": ["scan.completed", "finding.new", "alert.triggered"]}).to_string(),
    );
    let secret = ok(r, 201)["secret"].as_str().unwrap().to_string();
    let id = new_identity(&server, &k, json!({"name": "Many", "emails": [MANY]}));

    let started = start_scan(&server, &k, json!({"identity_id": id, "callback_url": callback.url("cb")}));
    let scan_id = started["scan_id"].as_str().unwrap().to_string();
    let callback_secret = started["callback_secret"].as_str().expect("the callback's secret, shown once").to_string();
    let done = finish(&server, &k, &scan_id);
    let findings = done["findings_count"].as_u64().unwrap() as usize;
    assert!(findings > 0);

    // Every new finding, one alert (the identity's level rose from nothing to critical),
    // one scan.completed; the callback gets scan.completed only, signed with its secret.
    let got = hooks.wait_for(findings + 2, Duration::from_secs(60));
    let new = events_of(&got, &secret, "finding.new");
    assert_eq!(new.len(), findings);
    let (_, listed) = all_findings(&server, &k, &scan_id, "");
    let mut ids: Vec<&str> = new.iter().map(|p| p["data"]["finding"]["id"].as_str().unwrap()).collect();
    let mut want: Vec<&str> = listed.iter().map(|f| f["id"].as_str().unwrap()).collect();
    ids.sort_unstable();
    want.sort_unstable();
    assert_eq!(ids, want, "one finding.new per finding of the first scan");
    let alerts = events_of(&got, &secret, "alert.triggered");
    assert_eq!(alerts.len(), 1);
    assert_eq!(
        (alerts[0]["data"]["risk_level"].as_str(), alerts[0]["data"]["identity_id"].as_str()),
        (Some("critical"), Some(id.as_str()))
    );
    let completed = events_of(&got, &secret, "scan.completed");
    assert_eq!(completed.len(), 1);
    assert_eq!(completed[0]["data"]["scan_id"], scan_id.as_str());
    assert_eq!(completed[0]["data"]["findings_count"].as_u64(), Some(findings as u64));
    let cb = callback.wait_for(1, Duration::from_secs(30));
    assert_eq!(cb.len(), 1);
    assert_eq!(cb[0].path, "/cb");
    assert_eq!(verified(&cb[0], &callback_secret)["event"], "scan.completed");

    // A repeated scan: nothing new, no alert (the level did not rise), scan.completed again.
    let again = start_scan(&server, &k, json!({"identity_id": id}))["scan_id"].as_str().unwrap().to_string();
    finish(&server, &k, &again);
    let got = hooks.wait_for(findings + 3, Duration::from_secs(60));
    std::thread::sleep(Duration::from_millis(500));
    let got_now = hooks.received();
    assert_eq!(got_now.len(), got.len(), "no more than the repeated scan.completed");
    let completed = events_of(&got_now, &secret, "scan.completed");
    assert_eq!(completed.len(), 2);
    assert_eq!(completed[1]["data"]["new_findings_count"].as_u64(), Some(0));
    assert_eq!(events_of(&got_now, &secret, "finding.new").len(), findings);
    assert_eq!(events_of(&got_now, &secret, "alert.triggered").len(), 1);
    assert_eq!(callback.received().len(), 1, "the second scan had no callback");
}
