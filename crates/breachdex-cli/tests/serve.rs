//! `breachdex keys create` and `breachdex serve` work as real processes: a created key
//! gets a check result, a sixth key in an hour fails with `limit_exceeded`, and SIGTERM
//! stops the server cleanly with its request log written.

use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

fn repo() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_breachdex"))
}

fn create_key(data: &Path) -> std::process::Output {
    bin().args(["keys", "create", "--data"]).arg(data).args(["--org", "acme"]).output().unwrap()
}

fn post(addr: &str, path: &str, key: &str, body: &str) -> (u16, Value) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nhost: t\r\nconnection: close\r\nauthorization: Bearer {key}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let status = text.split(' ').nth(1).unwrap().parse().unwrap();
    let json = text.split_once("\r\n\r\n").map_or(Value::Null, |(_, b)| serde_json::from_str(b).unwrap());
    (status, json)
}

#[test]
fn keys_create_and_serve_answer_a_check_and_stop_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let index = dir.path().join("index");
    let data = dir.path().join("data");
    let out = bin()
        .args(["build", "--quiet", "--catalog"])
        .arg(repo().join("testdata/sample/catalog.json"))
        .arg("--out")
        .arg(&index)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let out = create_key(&data);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let created: Value = serde_json::from_slice(&out.stdout).unwrap();
    let key = created["key"].as_str().unwrap().to_string();
    assert!(key.starts_with("bdx_"));
    assert_eq!(created["org"], "acme");
    assert_eq!(created["plan"], "starter");

    let mut child = bin()
        .args(["serve", "--index"])
        .arg(&index)
        .arg("--data")
        .arg(&data)
        .args(["--listen", "127.0.0.1:0"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    let addr = line.rsplit("http://").next().unwrap().trim().to_string();
    assert!(addr.starts_with("127.0.0.1:"), "{line}");

    let (status, v) = post(&addr, "/api/v1/breach-check/", &key, r#"{"email": "USER@Example.com"}"#);
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["checked"], "USER@Example.com");
    assert!(v["total_breaches"].as_u64().unwrap() >= 1);

    // Four more keys fit in the hour; the sixth fails with limit_exceeded.
    for _ in 0..4 {
        assert!(create_key(&data).status.success());
    }
    let sixth = create_key(&data);
    assert_eq!(sixth.status.code(), Some(1));
    let err: Value = serde_json::from_slice(&sixth.stderr).unwrap();
    assert_eq!(err["code"], "limit_exceeded");
    let listed = bin().args(["keys", "list", "--data"]).arg(&data).output().unwrap();
    let listed = String::from_utf8(listed.stdout).unwrap();
    assert_eq!(listed.lines().count(), 5);
    assert!(!listed.contains(&key), "keys list never shows a key");

    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).unwrap();
    assert!(rest.contains("stopped"), "{rest}");

    let logs = bin().args(["logs", "--data"]).arg(&data).args(["--org", "acme"]).output().unwrap();
    let logs = String::from_utf8(logs.stdout).unwrap();
    let rows: Vec<Value> = logs.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.len(), 1, "{logs}");
    assert_eq!(rows[0]["route"], "/api/v1/breach-check/");
    assert_eq!(rows[0]["status"], 200);
    assert!(!logs.contains("USER@Example.com") && !logs.to_lowercase().contains("user@example.com"));
}
