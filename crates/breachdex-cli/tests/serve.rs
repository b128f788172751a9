//! `breachdex keys create` and `breachdex serve` work as real processes: a created key
//! gets a check result, a sixth key in an hour fails with `limit_exceeded`, and SIGTERM
//! stops the server cleanly with its request log written. A server keeps answering while
//! `add`, `remove` and `compact` publish generations under it (SPEC §11, §13): every
//! answer is one generation's whole answer, never an error, never an older generation
//! after a newer one, and it ends on the last generation.

use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

mod common;
use common::{bin, build, copy_dir, ok, repo};

fn create_key(data: &Path) -> std::process::Output {
    bin().args(["keys", "create", "--data"]).arg(data).args(["--org", "acme"]).output().unwrap()
}

/// Sends one HTTP/1.1 request (`connection: close`) and returns the status and the body.
fn request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(String, String)],
    body: &str,
) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut head =
        format!("{method} {path} HTTP/1.1\r\nhost: t\r\nconnection: close\r\ncontent-length: {}\r\n", body.len());
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes())?;
    s.write_all(body.as_bytes())?;
    let mut text = String::new();
    s.read_to_string(&mut text)?;
    let malformed = || std::io::Error::other(format!("malformed response to {method} {path}: {text:?}"));
    let (head, body) = text.split_once("\r\n\r\n").ok_or_else(malformed)?;
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).ok_or_else(malformed)?;
    Ok((status, body.to_string()))
}

fn post(addr: &str, path: &str, key: &str, body: &str) -> (u16, Value) {
    let headers = [
        ("authorization".to_string(), format!("Bearer {key}")),
        ("content-type".to_string(), "application/json".to_string()),
    ];
    let (status, body) = request(addr, "POST", path, &headers, body).unwrap();
    (status, if body.is_empty() { Value::Null } else { serde_json::from_str(&body).unwrap() })
}

/// A `breachdex serve` process on 127.0.0.1 port 0; killed if the test fails first.
struct Server {
    child: Child,
    addr: String,
    /// Reads the server's stderr after the first line (so it never blocks on a full pipe).
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl Server {
    fn start(index: &Path, data: &Path) -> Server {
        let mut child = bin()
            .args(["serve", "--index"])
            .arg(index)
            .arg("--data")
            .arg(data)
            .args(["--listen", "127.0.0.1:0"])
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        stderr.read_line(&mut line).unwrap();
        let addr = line.rsplit("http://").next().unwrap().trim().to_string();
        let stderr = std::thread::spawn(move || {
            let mut rest = String::new();
            stderr.read_to_string(&mut rest).unwrap();
            rest
        });
        let server = Server { child, addr, stderr: Some(stderr) };
        assert!(server.addr.starts_with("127.0.0.1:"), "{line}");
        server
    }

    /// Stops the server with SIGTERM, expects a clean exit and returns what it printed
    /// after the address.
    fn stop(mut self) -> String {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
        let status = self.child.wait().unwrap();
        assert!(status.success(), "{status:?}");
        self.stderr.take().unwrap().join().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.stderr.is_some() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[test]
fn keys_create_and_serve_answer_a_check_and_stop_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let index = dir.path().join("index");
    let data = dir.path().join("data");
    build(&repo().join("testdata/sample/catalog.json"), &index);

    let out = create_key(&data);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let created: Value = serde_json::from_slice(&out.stdout).unwrap();
    let key = created["key"].as_str().unwrap().to_string();
    assert!(key.starts_with("bdx_"));
    assert_eq!(created["org"], "acme");
    assert_eq!(created["plan"], "starter");

    let server = Server::start(&index, &data);
    let addr = server.addr.clone();

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

    let rest = server.stop();
    assert!(rest.contains("stopped"), "{rest}");

    let logs = bin().args(["logs", "--data"]).arg(&data).args(["--org", "acme"]).output().unwrap();
    let logs = String::from_utf8(logs.stdout).unwrap();
    let rows: Vec<Value> = logs.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.len(), 1, "{logs}");
    assert_eq!(rows[0]["route"], "/api/v1/breach-check/");
    assert_eq!(rows[0]["status"], 200);
    assert!(!logs.contains("USER@Example.com") && !logs.to_lowercase().contains("user@example.com"));
}

/// One request of the loop, with the header that carries the key where it needs one.
struct Probe {
    method: &'static str,
    path: String,
    headers: Vec<(String, String)>,
    body: String,
    /// The answer may be `404` by design: HIBP's "in no breach".
    may_be_not_found: bool,
}

/// An answer: the status and the body, minus what names the moment of the request
/// (`checked_at`).
type Answer = (u16, String);

fn send(addr: &str, probe: &Probe) -> Answer {
    let (status, body) = request(addr, probe.method, &probe.path, &probe.headers, &probe.body)
        .unwrap_or_else(|e| panic!("{} {}: {e}", probe.method, probe.path));
    let body = match serde_json::from_str::<Value>(&body) {
        Ok(mut json) => {
            strip_checked_at(&mut json);
            json.to_string()
        }
        Err(_) => body,
    };
    (status, body)
}

fn strip_checked_at(v: &mut Value) {
    match v {
        Value::Object(map) => {
            map.remove("checked_at");
            map.values_mut().for_each(strip_checked_at);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_checked_at),
        _ => {}
    }
}

/// Breach checks of hits, of identities an update adds or removes, and of a miss;
/// records; the catalog; HIBP `breachedaccount`; password ranges.
fn probes(key: &str) -> Vec<Probe> {
    let bearer = || vec![("authorization".to_string(), format!("Bearer {key}"))];
    let check = |field: &str, value: &str| Probe {
        method: "POST",
        path: "/api/v1/breach-check/".into(),
        headers: [bearer(), vec![("content-type".into(), "application/json".into())]].concat(),
        body: serde_json::json!({ field: value }).to_string(),
        may_be_not_found: false,
    };
    let get = |path: String, headers: Vec<(String, String)>, may_be_not_found| Probe {
        method: "GET",
        path,
        headers,
        body: String::new(),
        may_be_not_found,
    };
    let hibp = || vec![("hibp-api-key".to_string(), key.to_string()), ("user-agent".into(), "serve-test".into())];
    vec![
        check("email", "user@example.com"),
        check("email", "optout@example.net"),
        check("email", "bob.smith@example.com"),
        check("username", "darkstar99"),
        check("email", "nobody@example.com"),
        get("/api/v1/breach/data/emails/user@example.com,optout@example.net".into(), bearer(), false),
        get("/api/v1/breach/data/usernames/globetrotter".into(), bearer(), false),
        get("/api/v1/breach/catalog".into(), bearer(), false),
        get("/api/v3/breachedaccount/user@example.com?truncateResponse=false".into(), hibp(), true),
        get("/api/v3/breachedaccount/optout@example.net".into(), hibp(), true),
        get("/api/v3/breachedaccount/nobody@example.com".into(), hibp(), true),
        get("/range/5BAA6".into(), Vec::new(), false),
        get("/range/B1B37".into(), Vec::new(), false),
    ]
}

/// The generation `/api/v1/health/` reports.
fn health_generation(addr: &str, key: &str) -> u64 {
    let headers = [("authorization".to_string(), format!("Bearer {key}"))];
    let (status, body) =
        request(addr, "GET", "/api/v1/health/", &headers, "").unwrap_or_else(|e| panic!("health: {e}"));
    assert_eq!(status, 200, "health: {body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    v["index"]["generation"].as_u64().unwrap_or_else(|| panic!("health without index.generation: {body}"))
}

/// One catalog per source of the week-2 sample, its dump named by an absolute path: two
/// dumps to add one after the other.
fn week2_catalogs(dir: &Path) -> Vec<PathBuf> {
    let week2 = repo().join("testdata/sample/week2").canonicalize().unwrap();
    let catalog: Value = serde_json::from_str(&std::fs::read_to_string(week2.join("catalog.json")).unwrap()).unwrap();
    let mut out = Vec::new();
    for (i, source) in catalog["sources"].as_array().unwrap().iter().enumerate() {
        let mut source = source.clone();
        for file in source["files"].as_array_mut().unwrap() {
            file["path"] = week2.join(file["path"].as_str().unwrap()).display().to_string().into();
        }
        let path = dir.join(format!("week2-{i}.json"));
        std::fs::write(&path, serde_json::json!({ "sources": [source] }).to_string()).unwrap();
        out.push(path);
    }
    out
}

#[test]
fn serve_answers_whole_generations_while_add_remove_and_compact_publish_them() {
    // Answers carry a risk score with a recency term (days since a breach): a run that
    // crosses midnight UTC between the live answers and the reference ones cannot
    // compare them, and runs again.
    let day = || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() / 86_400;
    for attempt in 1..=2 {
        let first_day = day();
        let dir = tempfile::tempdir().unwrap();
        let index = dir.path().join("index");
        let data = dir.path().join("data");
        build(&repo().join("testdata/sample/catalog.json"), &index);
        let created = bin()
            .args(["keys", "create", "--data"])
            .arg(&data)
            .args(["--org", "acme", "--rpm", "1000000", "--monthly", "1000000000"])
            .output()
            .unwrap();
        ok(&created, "keys create");
        let key = serde_json::from_slice::<Value>(&created.stdout).unwrap()["key"].as_str().unwrap().to_string();
        let catalogs = week2_catalogs(dir.path());
        let steps: Vec<Vec<std::ffi::OsString>> = vec![
            vec!["add".into(), "--quiet".into(), "--catalog".into(), catalogs[0].clone().into()],
            vec!["add".into(), "--quiet".into(), "--catalog".into(), catalogs[1].clone().into()],
            vec!["remove".into(), "--source".into(), "oldshop-2012".into()],
            vec!["remove".into(), "--identity".into(), "optout@example.net".into()],
            vec!["compact".into(), "--quiet".into()],
        ];
        let last = steps.len() as u64 + 1;
        let compaction = last;

        // The live run: clients loop over the probes while the steps publish generations;
        // a byte copy of the index after each step is that generation's reference.
        let server = Server::start(&index, &data);
        let clients = 2;
        let started = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(AtomicBool::new(false));
        let threads: Vec<_> = (0..clients)
            .map(|t| {
                let (addr, key, started, done) = (server.addr.clone(), key.clone(), started.clone(), done.clone());
                std::thread::spawn(move || {
                    let probes = probes(&key);
                    let deadline = Instant::now() + Duration::from_secs(120);
                    // (probe, answer) in the order received, and the health generations.
                    let (mut answers, mut generations) = (Vec::new(), Vec::new());
                    let mut first = true;
                    loop {
                        // Once told the server serves the last generation, one more whole round.
                        let last_round = done.load(Ordering::SeqCst) || Instant::now() > deadline;
                        for i in (0..probes.len()).map(|i| (i + t) % probes.len()) {
                            answers.push((i, send(&addr, &probes[i])));
                        }
                        generations.push(health_generation(&addr, &key));
                        if first {
                            started.fetch_add(1, Ordering::SeqCst);
                            first = false;
                        }
                        if last_round {
                            return (answers, generations);
                        }
                    }
                })
            })
            .collect();
        // Every client has had an answer of generation 1 (or failed: its panic is shown at join).
        while started.load(Ordering::SeqCst) < clients && !threads.iter().any(|t| t.is_finished()) {
            std::thread::sleep(Duration::from_millis(5));
        }
        let snapshots = dir.path().join("generations");
        copy_dir(&index, &snapshots.join("1"));
        for (n, args) in steps.iter().enumerate() {
            let o = bin().args(args).arg("--index").arg(&index).output().unwrap();
            ok(&o, &format!("{args:?}"));
            let generation = breachdex::Index::open(&index, &breachdex::OpenOptions::default()).unwrap().generation();
            assert_eq!(generation, n as u64 + 2, "{args:?} publishes the next generation");
            copy_dir(&index, &snapshots.join(generation.to_string()));
            // Served for a while before the next step replaces it (and deletes its files).
            let deadline = Instant::now() + Duration::from_secs(60);
            while health_generation(&server.addr, &key) != generation {
                assert!(
                    Instant::now() < deadline,
                    "the server did not pick up generation {generation} within a minute"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        done.store(true, Ordering::SeqCst);
        let runs: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        server.stop();

        // Each generation's answers, from a server on its copy.
        let probes = probes(&key);
        let expected: Vec<Vec<Answer>> = (1..=last)
            .map(|generation| {
                let server = Server::start(&snapshots.join(generation.to_string()), &data);
                assert_eq!(health_generation(&server.addr, &key), generation);
                let answers: Vec<Answer> = probes.iter().map(|p| send(&server.addr, p)).collect();
                server.stop();
                for (p, (status, body)) in probes.iter().zip(&answers) {
                    let expected_status = *status == 200 || (*status == 404 && p.may_be_not_found);
                    assert!(
                        expected_status,
                        "generation {generation}: {} {} answered {status}: {body}",
                        p.method, p.path
                    );
                }
                answers
            })
            .collect();
        if day() != first_day {
            eprintln!("attempt {attempt} crossed midnight UTC: running again");
            continue;
        }
        for generation in 2..=last {
            let (before, after) = (&expected[generation as usize - 2], &expected[generation as usize - 1]);
            if generation == compaction {
                assert_eq!(before, after, "a compaction changes no answer");
            } else {
                assert_ne!(before, after, "generation {generation} changes some answer: the probes would miss a mix");
            }
        }

        let mut seen = std::collections::BTreeSet::new();
        for (t, (answers, generations)) in runs.iter().enumerate() {
            assert!(
                generations.windows(2).all(|w| w[0] <= w[1]),
                "client {t}: health generations go back: {generations:?}"
            );
            assert_eq!(generations.last(), Some(&last), "client {t} ends on the last generation");
            seen.extend(generations.iter().copied());
            // The earliest generation each answer can come from, never below the previous
            // answer's: an answer of no generation, or an older one after a newer one, fails.
            let mut at = 1;
            for (i, answer) in answers {
                let (method, path) = (probes[*i].method, &probes[*i].path);
                let Some(g) = (at..=last).find(|g| &expected[*g as usize - 1][*i] == answer) else {
                    let of = |g: u64| &expected[g as usize - 1][*i];
                    let older = (1..at).find(|g| of(*g) == answer);
                    panic!(
                        "client {t}: {method} {path} answered {answer:?}, {}; expected from generation {at} on: {:?}",
                        older.map_or("the answer of no generation".to_string(), |g| format!(
                            "generation {g}'s after a later one"
                        )),
                        (at..=last).map(of).collect::<Vec<_>>()
                    );
                };
                at = g;
            }
            let final_round = &answers[answers.len() - probes.len()..];
            for (i, answer) in final_round {
                assert_eq!(
                    answer,
                    &expected[last as usize - 1][*i],
                    "client {t}: the last round answers as the last generation"
                );
            }
        }
        assert!(seen.contains(&1) && seen.contains(&last), "the clients saw generations {seen:?}");
        eprintln!(
            "clients saw generations {seen:?}; {} answers checked",
            runs.iter().map(|r| r.0.len()).sum::<usize>()
        );
        return;
    }
    panic!("two runs in a row crossed midnight UTC");
}
