//! `breach.detected` (SPEC §14) end to end: a server watching identities, the real
//! `breachdex add` publishing a dump that holds a watched e-mail (and an unwatched
//! one), and a local receiver that gets one signed event per identity and breach, in
//! the plain mode and a hashed one; a restart repeats nothing.

#[path = "../../breachdex-server/tests/common/mod.rs"]
mod common;

use breachdex_server::keys::{NewKey, open_store};
use breachdex_server::store::StateStore;
use common::{Receiver, TestServer, create, open_webhooks_config, verify};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const SALT: &[u8] = b"monitor-test-only-salt-not-a-secret-0123";

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_breachdex"))
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{:?}: {}", cmd, String::from_utf8_lossy(&out.stderr));
}

/// A catalog of one source `id` with one CSV dump of `emails`.
fn catalog(dir: &Path, id: u32, name: &str, emails: &[&str]) -> PathBuf {
    let dump = dir.join(format!("{name}.csv"));
    let mut text = String::from("email,password\n");
    for e in emails {
        text.push_str(&format!("{e},pw-{name}\n"));
    }
    std::fs::write(&dump, text).unwrap();
    let path = dir.join(format!("{name}.json"));
    let c = json!({"sources": [{"id": id, "name": name, "title": format!("Title of {name}"),
        "date": "2026-11-01", "description": "test dump", "publish_date": "2026-12-01",
        "files": [{"path": dump.display().to_string(), "format": "csv"}]}]});
    std::fs::write(&path, c.to_string()).unwrap();
    path
}

fn with_salt<'a>(cmd: &'a mut Command, salt: Option<&Path>) -> &'a mut Command {
    if let Some(s) = salt {
        cmd.arg("--salt-file").arg(s);
    }
    cmd
}

fn wait_monitored(data: &Path, generation: u64) {
    let start = Instant::now();
    let store = open_store(data).unwrap();
    while store.monitored_generation().unwrap() != Some(generation) {
        assert!(start.elapsed() < Duration::from_secs(60), "generation {generation} never processed");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn breach_detected_after_add(hash: &str) {
    let dir = tempfile::tempdir().unwrap();
    let salt = (hash != "plain").then(|| {
        let p = dir.path().join("salt");
        std::fs::write(&p, SALT).unwrap();
        p
    });
    let index = dir.path().join("index");
    let data = dir.path().join("data");
    let week1 = catalog(dir.path(), 1, "week1", &["already.there@example.org"]);
    let mut build = bin();
    build.args(["build", "--quiet", "--hash", hash, "--catalog"]).arg(&week1).arg("--out").arg(&index);
    run(with_salt(&mut build, salt.as_deref()));

    let mut config = open_webhooks_config(&index, &data);
    config.salt_file = salt.clone();
    let server = TestServer::start(config);
    let key = |org: &str| {
        create(
            &data,
            NewKey { org: org.into(), plan: Some("professional".into()), rpm: Some(100_000), ..NewKey::default() },
        )
        .1
    };
    let (acme, globex) = (key("acme"), key("globex"));
    let (receiver, other_receiver) = (Receiver::start(&[]), Receiver::start(&[]));
    let (receiver, other_receiver, findings_receiver) = (receiver, other_receiver, Receiver::start(&[]));
    let hook_for = |k: &str, url: String, event: &str| {
        let r = server.post_json("/api/v1/webhooks/", k, &json!({"url": url, "events": [event]}).to_string());
        assert_eq!(r.status, 201);
        r.json()["secret"].as_str().unwrap().to_string()
    };
    let hook = |k: &str, url: String| hook_for(k, url, "breach.detected");
    let secret = hook(&acme, receiver.url("acme"));
    hook(&globex, other_receiver.url("globex"));
    let findings_secret = hook_for(&acme, findings_receiver.url("findings"), "finding.new");
    let identity = |k: &str, name: &str, emails: &[&str]| {
        let r = server.post_json("/api/v1/identities/", k, &json!({"name": name, "emails": emails}).to_string());
        assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
        r.json()["id"].as_str().unwrap().to_string()
    };
    let watched = identity(&acme, "Watched", &["Watched.Person@Example.org", "second@example.org"]);
    identity(&acme, "Not in the dump", &["quiet@example.org"]);
    identity(&acme, "Already breached", &["already.there@example.org"]);
    wait_monitored(&data, 1);

    // Week 2: the watched e-mail (another case), an unwatched one, and the one
    // breached before, again, in a new source.
    let week2 = catalog(
        dir.path(),
        2,
        "week2",
        &["watched.person@example.org", "stranger@example.org", "already.there@example.org"],
    );
    let mut add = bin();
    add.args(["add", "--index"]).arg(&index).arg("--catalog").arg(&week2);
    run(with_salt(&mut add, salt.as_deref()));
    wait_monitored(&data, 2);

    let got = receiver.wait_for(2, Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(1500));
    let got_all = receiver.received();
    assert_eq!(got_all.len(), 2, "one per identity and breach: {:?}", got.iter().map(|r| r.json()).collect::<Vec<_>>());
    let mut events: Vec<Value> = got_all.iter().map(|r| verify(r, &secret)).collect();
    events.sort_by_key(|e| e["data"]["identity_name"].as_str().unwrap_or_default().to_string());
    assert_eq!(events[0]["event"], "breach.detected");
    assert_eq!(events[0]["data"]["identity_name"], "Already breached");
    let data0 = &events[1]["data"];
    assert_eq!(data0["identity_id"], watched.as_str());
    assert_eq!(data0["matched"], json!({"type": "email", "value": "Watched.Person@Example.org"}));
    assert_eq!(data0["source"]["id"], 2);
    assert_eq!(data0["source"]["name"], "week2");
    assert_eq!(data0["source"]["title"], "Title of week2");
    assert_eq!(data0["generation"], 2);
    assert!(other_receiver.received().is_empty(), "another organization watches nothing of it");
    // Each detected breach's finding is new to its identity: one finding.new each, outside any scan.
    findings_receiver.wait_for(2, Duration::from_secs(30));
    let mut new_findings: Vec<Value> =
        findings_receiver.received().iter().map(|r| verify(r, &findings_secret)).collect();
    assert_eq!(new_findings.len(), 2, "{new_findings:?}");
    new_findings.sort_by_key(|e| e["data"]["finding"]["identifier"].as_str().unwrap_or_default().to_lowercase());
    for (event, (identity, identifier)) in new_findings.iter().zip([
        (events[0]["data"]["identity_id"].as_str().unwrap(), "already.there@example.org"),
        (watched.as_str(), "Watched.Person@Example.org"),
    ]) {
        assert_eq!(event["event"], "finding.new");
        assert_eq!((event["data"]["identity_id"].as_str(), &event["data"]["scan_id"]), (Some(identity), &Value::Null));
        let finding = &event["data"]["finding"];
        assert_eq!((finding["source"].as_str(), finding["identifier"].as_str()), (Some("week2"), Some(identifier)));
    }

    // The detection recorded the breach's finding: a scan now has it, not new, with the
    // severity and category the event named.
    let r =
        server.post_json("/api/v1/scans/", &acme, &json!({"identity_id": watched, "scan_type": "full"}).to_string());
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let scan_id = r.json()["scan_id"].as_str().unwrap().to_string();
    let start = Instant::now();
    while server.get(&format!("/api/v1/scans/{scan_id}/"), &acme).json()["status"] != "completed" {
        assert!(start.elapsed() < Duration::from_secs(60), "the scan did not complete");
        std::thread::sleep(Duration::from_millis(20));
    }
    let findings = server.get(&format!("/api/v1/scans/{scan_id}/findings/"), &acme).json();
    let found: Vec<&Value> =
        findings["findings"].as_array().unwrap().iter().filter(|f| f["source"] == "week2").collect();
    assert_eq!(found.len(), 1, "{findings}");
    assert_eq!(found[0]["is_new"], false, "recorded when the breach was detected");
    assert_eq!((&found[0]["severity"], &found[0]["category"]), (&data0["severity"], &data0["category"]));
    assert_eq!(data0["category"], "credential", "the dump holds passwords");

    // A restart repeats nothing; a third week brings the watched identity a new breach.
    server.stop();
    let mut config = open_webhooks_config(&index, &data);
    config.salt_file = salt.clone();
    let server = TestServer::start(config);
    let week3 = catalog(dir.path(), 3, "week3", &["SECOND@Example.org", "stranger@example.org"]);
    let mut add = bin();
    add.args(["add", "--index"]).arg(&index).arg("--catalog").arg(&week3);
    run(with_salt(&mut add, salt.as_deref()));
    wait_monitored(&data, 3);
    let got = receiver.wait_for(3, Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(receiver.received().len(), 3, "nothing repeated after the restart");
    let third = verify(&got[2], &secret);
    assert_eq!(third["data"]["identity_id"], watched.as_str());
    assert_eq!(third["data"]["matched"], json!({"type": "email", "value": "second@example.org"}));
    assert_eq!(third["data"]["source"]["name"], "week3");
    drop(server);
}

#[test]
fn breach_detected_after_add_in_plain_mode() {
    breach_detected_after_add("plain");
}

#[test]
fn breach_detected_after_add_in_a_hashed_mode() {
    breach_detected_after_add("sha256");
}
