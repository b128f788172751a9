//! Webhooks (SPEC §14) against the real server on 127.0.0.1 and a real local receiver:
//! URL refusals (SSRF), registration, listing and deletion, organization isolation,
//! signatures verified here with an independent HMAC, retries with their log, and a
//! restart in the middle of the retries.

mod common;

use breachdex_server::keys::{NewKey, open_store};
use breachdex_server::store::{OutgoingEvent, StateStore};
use common::{Receiver, Response, TestServer, config, create, index, open_webhooks_config, request, verify};
use serde_json::{Value, json};
use std::time::Duration;

fn key(data: &std::path::Path, org: &str, plan: &str) -> String {
    create(data, NewKey { org: org.into(), plan: Some(plan.into()), rpm: Some(100_000), ..NewKey::default() }).1
}

fn register(server: &TestServer, key: &str, url: &str, events: &[&str]) -> Response {
    server.post_json("/api/v1/webhooks/", key, &json!({"url": url, "events": events}).to_string())
}

/// Queues an event for `org` as the server's own events are queued (the running
/// dispatcher finds it within a refresh interval).
fn queue(data: &std::path::Path, org: &str, event: &str, data_value: Value) -> usize {
    let store = open_store(data).unwrap();
    let event = OutgoingEvent {
        org: org.into(),
        event: event.into(),
        timestamp: breachdex_server::engine::now_unix(),
        data: data_value,
    };
    store.enqueue_event(&event, None, breachdex_server::engine::now_unix_millis()).unwrap()
}

fn field_of(r: &Response) -> String {
    r.json()["details"]["field"].as_str().unwrap_or_default().to_string()
}

#[test]
fn urls_to_private_loopback_and_metadata_addresses_and_plain_http_are_refused() {
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::start(config(index(), data.path()));
    let k = key(data.path(), "acme", "professional");
    for (url, reason) in [
        ("https://127.0.0.1/hook", "loopback"),
        ("https://10.0.0.1/hook", "private"),
        ("https://10.200.3.4:8443/hook", "private"),
        ("https://169.254.169.254/latest/meta-data/", "metadata"),
        ("https://[::ffff:127.0.0.1]/hook", "IPv4-mapped"),
        ("https://localhost/hook", "'localhost' resolves to"),
        ("http://hooks.example.com/in", "--allow-http-webhooks"),
        ("ftp://hooks.example.com/in", "not https"),
    ] {
        let r = register(&server, &k, url, &["breach.detected"]);
        assert_eq!((r.status, r.error_code().as_str()), (400, "validation_error"), "{url}");
        assert_eq!(field_of(&r), "url", "{url}");
        let message = r.json()["error"].as_str().unwrap().to_string();
        assert!(message.contains(reason), "{url}: {message}");
    }
    assert_eq!(server.get("/api/v1/webhooks/", &k).json()["count"], 0, "nothing registered");
    server.stop();

    // --allow-private-webhooks alone still wants https.
    let mut c = config(index(), data.path());
    c.webhook_policy.allow_private = true;
    let server = TestServer::start(c);
    let receiver = Receiver::start(&[]);
    let r = register(&server, &k, &receiver.url("in"), &["breach.detected"]);
    assert_eq!((r.status, field_of(&r).as_str()), (400, "url"));
    assert_eq!(register(&server, &k, &format!("https://{}/in", receiver.addr), &["scan.completed"]).status, 201);
}

#[test]
fn webhooks_are_registered_listed_deleted_and_scoped_to_their_organization() {
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::start(open_webhooks_config(index(), data.path()));
    let k = key(data.path(), "acme", "starter");
    let other = key(data.path(), "globex", "starter");
    let receiver = Receiver::start(&[]);

    let r = register(&server, &k, &receiver.url("a"), &["breach.detected", "scan.completed"]);
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let created = r.json();
    let id = created["id"].as_str().unwrap().to_string();
    let secret = created["secret"].as_str().unwrap().to_string();
    assert!(id.starts_with("whk_") && secret.starts_with("whsec_") && secret.len() == 6 + 64, "{created}");
    assert_eq!(created["events"], json!(["breach.detected", "scan.completed"]));
    assert_eq!(created["url"], receiver.url("a"));
    assert_eq!(created["is_active"], true);

    let list = server.get("/api/v1/webhooks/", &k);
    assert_eq!(list.status, 200);
    let list = list.json();
    assert_eq!(list["count"], 1);
    let mut shown = created.clone();
    shown.as_object_mut().unwrap().remove("secret");
    assert_eq!(list["webhooks"][0], shown, "listed without its secret");
    assert!(!String::from_utf8_lossy(&server.get("/api/v1/webhooks/", &k).body).contains(&secret));

    // Validation: events and url.
    for (body, field) in [
        (json!({"url": receiver.url("b")}), "events"),
        (json!({"url": receiver.url("b"), "events": []}), "events"),
        (json!({"url": receiver.url("b"), "events": ["breach.detected", "scan.exploded"]}), "events"),
        (json!({"events": ["breach.detected"]}), "url"),
        (json!({"url": "not a url", "events": ["breach.detected"]}), "url"),
    ] {
        let r = server.post_json("/api/v1/webhooks/", &k, &body.to_string());
        assert_eq!(
            (r.status, r.error_code().as_str(), field_of(&r).as_str()),
            (400, "validation_error", field),
            "{body}"
        );
    }
    let r = server.post_json("/api/v1/webhooks/", &k, r#"{"url": "x", "events": [], "extra": 1}"#);
    assert_eq!(r.status, 400, "unknown fields are refused");

    // The starter plan allows two.
    assert_eq!(register(&server, &k, &receiver.url("b"), &["finding.new"]).status, 201);
    let r = register(&server, &k, &receiver.url("c"), &["alert.triggered"]);
    assert_eq!((r.status, r.error_code().as_str()), (403, "limit_exceeded"));

    // Another organization sees none of it.
    assert_eq!(server.get("/api/v1/webhooks/", &other).json()["count"], 0);
    let path = format!("/api/v1/webhooks/{id}/");
    let r = request(server.addr, "DELETE", &path, &[("x-api-key", &other)], b"");
    assert_eq!((r.status, r.error_code().as_str()), (404, "not_found"));
    let r = server.get(&format!("/api/v1/webhooks/{id}/deliveries/"), &other);
    assert_eq!((r.status, r.error_code().as_str()), (404, "not_found"));
    let r = server.get(&format!("/api/v1/webhooks/{id}/deliveries/"), &k);
    assert_eq!((r.status, r.json()["count"].as_u64()), (200, Some(0)));

    let r = request(server.addr, "DELETE", &path, &[("x-api-key", &k)], b"");
    assert_eq!((r.status, r.body.len()), (204, 0));
    let r = request(server.addr, "DELETE", &path, &[("x-api-key", &k)], b"");
    assert_eq!(r.status, 404, "deleted once");
    assert_eq!(server.get("/api/v1/webhooks/", &k).json()["count"], 1);

    // Removal on the collection's path: the id in the query or in a JSON body.
    let b = server.get("/api/v1/webhooks/", &k).json()["webhooks"][0]["id"].as_str().unwrap().to_string();
    let r = request(server.addr, "DELETE", "/api/v1/webhooks/", &[("x-api-key", &k)], b"");
    assert_eq!((r.status, r.error_code().as_str(), field_of(&r).as_str()), (400, "validation_error", "id"));
    let r = request(server.addr, "DELETE", &format!("/api/v1/webhooks/?id={b}"), &[("x-api-key", &other)], b"");
    assert_eq!((r.status, r.error_code().as_str()), (404, "not_found"), "another organization's");
    let body = json!({"id": b}).to_string();
    let json_headers = [("x-api-key", k.as_str()), ("content-type", "application/json")];
    let r = request(server.addr, "DELETE", "/api/v1/webhooks/", &json_headers, body.as_bytes());
    assert_eq!((r.status, r.body.len()), (204, 0));
    assert_eq!(server.get("/api/v1/webhooks/", &k).json()["count"], 0);
    let c = register(&server, &k, &receiver.url("c"), &["alert.triggered"]).json()["id"].as_str().unwrap().to_string();
    let r = request(server.addr, "DELETE", &format!("/api/v1/webhooks?id={c}"), &[("x-api-key", &k)], b"");
    assert_eq!(r.status, 204);
    let r = request(server.addr, "DELETE", &format!("/api/v1/webhooks/?id={c}"), &[("x-api-key", &k)], b"");
    assert_eq!(r.status, 404, "deleted once");
    assert_eq!(server.get("/api/v1/webhooks/", &k).json()["count"], 0);

    // The function allow-list knows `webhooks`.
    let limited =
        create(data.path(), NewKey { org: "acme".into(), functions: Some("identities".into()), ..NewKey::default() }).1;
    let r = server.get("/api/v1/webhooks/", &limited);
    assert_eq!((r.status, r.error_code().as_str()), (403, "function_not_allowed"));
}

#[test]
fn an_event_reaches_only_subscribed_webhooks_of_its_organization_signed() {
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::start(open_webhooks_config(index(), data.path()));
    let k = key(data.path(), "acme", "professional");
    let other = key(data.path(), "globex", "professional");
    let (subscribed, unsubscribed, foreign) = (Receiver::start(&[]), Receiver::start(&[]), Receiver::start(&[]));
    let secret = register(&server, &k, &subscribed.url("in?t=1"), &["scan.completed"]).json()["secret"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(register(&server, &k, &unsubscribed.url("in"), &["finding.new"]).status, 201);
    assert_eq!(register(&server, &other, &foreign.url("in"), &["scan.completed"]).status, 201);

    assert_eq!(queue(data.path(), "acme", "scan.completed", json!({"scan_id": "scn_1", "findings_count": 3})), 1);
    let got = subscribed.wait_for(1, Duration::from_secs(30));
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].path, "/in?t=1");
    assert_eq!(got[0].header("x-breachdex-event"), Some("scan.completed"));
    let payload = verify(&got[0], &secret);
    assert_eq!(payload["event"], "scan.completed");
    assert_eq!(payload["data"], json!({"scan_id": "scn_1", "findings_count": 3}));
    std::thread::sleep(Duration::from_millis(800));
    assert!(unsubscribed.received().is_empty() && foreign.received().is_empty());
    assert_eq!(subscribed.received().len(), 1, "delivered once");
}

/// The deliveries of the organization's only webhook, as the API lists them.
fn deliveries(server: &TestServer, key: &str) -> Value {
    let hooks = server.get("/api/v1/webhooks/", key).json();
    let id = hooks["webhooks"][0]["id"].as_str().unwrap().to_string();
    let r = server.get(&format!("/api/v1/webhooks/{id}/deliveries/"), key);
    assert_eq!(r.status, 200);
    r.json()
}

fn wait_delivered(server: &TestServer, key: &str) -> Value {
    let start = std::time::Instant::now();
    loop {
        let d = deliveries(server, key);
        if d["deliveries"][0]["status"] == "delivered" || start.elapsed() > Duration::from_secs(60) {
            return d;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_receiver_failing_three_times_gets_the_event_once_in_the_end_with_every_attempt_logged() {
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::start(open_webhooks_config(index(), data.path()));
    let k = key(data.path(), "acme", "professional");
    let receiver = Receiver::start(&[500, 500, 500]);
    let secret =
        register(&server, &k, &receiver.url("in"), &["breach.detected"]).json()["secret"].as_str().unwrap().to_string();
    queue(data.path(), "acme", "breach.detected", json!({"identity_id": "idn_x"}));
    let got = receiver.wait_for(4, Duration::from_secs(60));
    let answered: Vec<u16> = got.iter().map(|r| r.answered).collect();
    assert_eq!(answered, [500, 500, 500, 200]);
    for r in &got {
        verify(r, &secret);
        assert_eq!(r.body, got[0].body, "every attempt sends the same bytes");
        assert_eq!(r.header("x-breachdex-delivery"), got[0].header("x-breachdex-delivery"));
    }
    let d = wait_delivered(&server, &k);
    assert_eq!(d["count"], 1);
    let delivery = &d["deliveries"][0];
    assert_eq!(delivery["status"], "delivered");
    assert_eq!(delivery["event"], "breach.detected");
    assert!(delivery["next_attempt_at"].is_null());
    let attempts: Vec<(u64, u64)> = delivery["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["attempt"].as_u64().unwrap(), a["status_code"].as_u64().unwrap()))
        .collect();
    assert_eq!(attempts, [(1, 500), (2, 500), (3, 500), (4, 200)]);
    assert!(delivery["attempts"][0]["error"].as_str().is_some_and(|e| e.contains("500")));
    assert!(delivery["attempts"][3]["error"].is_null());
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(receiver.received().len(), 4, "nothing more once delivered");
}

#[test]
fn a_restart_in_the_middle_of_the_retries_loses_nothing() {
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::start(open_webhooks_config(index(), data.path()));
    let k = key(data.path(), "acme", "professional");
    let receiver = Receiver::start(&[500, 500, 500]);
    let secret =
        register(&server, &k, &receiver.url("in"), &["breach.detected"]).json()["secret"].as_str().unwrap().to_string();
    queue(data.path(), "acme", "breach.detected", json!({"identity_id": "idn_y"}));
    assert_eq!(receiver.wait_for(2, Duration::from_secs(30)).len(), 2);
    server.stop();
    let server = TestServer::start(open_webhooks_config(index(), data.path()));
    let got = receiver.wait_for(4, Duration::from_secs(60));
    let answered: Vec<u16> = got.iter().map(|r| r.answered).collect();
    assert_eq!(answered, [500, 500, 500, 200]);
    for r in &got {
        verify(r, &secret);
    }
    let d = wait_delivered(&server, &k);
    let attempts: Vec<u64> =
        d["deliveries"][0]["attempts"].as_array().unwrap().iter().map(|a| a["attempt"].as_u64().unwrap()).collect();
    assert_eq!((d["count"].as_u64(), attempts), (Some(1), vec![1, 2, 3, 4]));
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(receiver.received().len(), 4);
}
