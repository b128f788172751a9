//! Shared test support: indexes built from the sample dumps and a generated bulk
//! identity, a real server on 127.0.0.1 port 0 in its own runtime, a raw HTTP/1.1
//! client (raw, so hostile requests can be sent byte for byte), and key creation.

#![allow(dead_code)]

use breachdex_server::keys::{NewKey, create_key, open_store};
use breachdex_server::{AppState, CancellationToken, ServerConfig};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

/// The e-mail with 2,500 records in the bulk sources.
pub const BULK_EMAIL: &str = "bulk.owner@example.net";
/// Records of [`BULK_EMAIL`] in source 10 (plaintext passwords, published 2020-06-01).
pub const BULK_HIGH: usize = 1500;
/// Records of [`BULK_EMAIL`] in source 11 (phone only, published 2024-01-01).
pub const BULK_MEDIUM: usize = 1000;

/// Writes the bulk dumps and a catalog holding them and the sample sources; `extra`
/// adds one more small source (a different build for swap tests).
pub fn write_catalog(dir: &Path, extra: bool) -> PathBuf {
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/sample");
    let sample = sample.canonicalize().expect("testdata/sample");
    std::fs::create_dir_all(dir).unwrap();
    let mut high = String::from("email,password,full_name\n");
    for i in 0..BULK_HIGH {
        high.push_str(&format!("{BULK_EMAIL},secret-{i},Owner Number {i}\n"));
    }
    std::fs::write(dir.join("bulk-high.csv"), high).unwrap();
    let mut medium = String::from("email,phone\n");
    for i in 0..BULK_MEDIUM {
        medium.push_str(&format!("{BULK_EMAIL},+1 555 {i:07}\n"));
    }
    std::fs::write(dir.join("bulk-medium.csv"), medium).unwrap();
    std::fs::write(dir.join("extra.csv"), "email,password\nnew.person@example.org,brand-new\n").unwrap();
    let s = |name: &str| sample.join(name).display().to_string();
    let mut sources = vec![
        serde_json::json!({"id": 1, "name": "examplecorp-2024", "title": "ExampleCorp Data Breach 2024",
            "date": "2024-03-15", "description": "Database exposed via misconfigured server",
            "publish_date": "2024-04-01",
            "files": [{"path": s("examplecorp.csv"), "format": "csv"}]}),
        serde_json::json!({"id": 2, "name": "infostealer-2025", "title": "Infostealer Logs 2025",
            "date": "2025-01-20", "description": "Browser credentials harvested by infostealer malware",
            "publish_date": "2025-02-01",
            "files": [{"path": s("stealer-logs.jsonl"), "format": "jsonl"}]}),
        serde_json::json!({"id": 3, "name": "gamerforum-2019", "title": "GamerForum Breach 2019",
            "date": "2019-07-04", "description": "Forum user table",
            "publish_date": "2019-08-01",
            "files": [{"path": s("gamerforum.csv"), "format": "csv", "delimiter": ";"}]}),
        serde_json::json!({"id": 10, "name": "bulk-high", "title": "Bulk High", "date": "2020-05-01",
            "description": "generated", "publish_date": "2020-06-01",
            "files": [{"path": "bulk-high.csv", "format": "csv"}]}),
        serde_json::json!({"id": 11, "name": "bulk-medium", "title": "Bulk Medium", "date": "2023-12-01",
            "description": "generated", "publish_date": "2024-01-01",
            "files": [{"path": "bulk-medium.csv", "format": "csv"}]}),
    ];
    if extra {
        sources.push(serde_json::json!({"id": 12, "name": "extra", "title": "Extra", "date": "2026-01-01",
            "description": "added later", "publish_date": "2026-01-02",
            "files": [{"path": "extra.csv", "format": "csv"}]}));
    }
    let path = dir.join("catalog.json");
    std::fs::write(&path, serde_json::to_vec(&serde_json::json!({ "sources": sources })).unwrap()).unwrap();
    path
}

/// Builds an index from [`write_catalog`] into `out`.
pub fn build(work: &Path, out: &Path, extra: bool) {
    let catalog_path = write_catalog(work, extra);
    let catalog = breachdex::Catalog::load(&catalog_path).expect("catalog");
    let options = breachdex::BuildOptions {
        threads: Some(1),
        rejects_path: Some(work.join(format!("rejects-{extra}.jsonl"))),
        ..Default::default()
    };
    breachdex::build_index(&catalog, out, &options).expect("build");
}

/// One index of [`build`] for the whole test binary (built once), in a directory kept
/// until exit.
pub fn index() -> &'static Path {
    static INDEX: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    let (_, path) = INDEX.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let out = dir.path().join("index");
        build(&dir.path().join("work"), &out, false);
        (dir, out)
    });
    path
}

/// Atomically points `link` at `target`.
pub fn publish(target: &Path, link: &Path) {
    breachdex::publish_symlink(target, link).expect("publish");
}

/// A running server.
pub struct TestServer {
    pub addr: SocketAddr,
    pub data: PathBuf,
    shutdown: CancellationToken,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestServer {
    /// Starts a server over `config` on 127.0.0.1 port 0.
    pub fn start(config: ServerConfig) -> TestServer {
        TestServer::start_with(config, None)
    }

    /// Starts a server, over TLS when `tls` is given.
    pub fn start_with(config: ServerConfig, tls: Option<breachdex_server::tls::TlsAcceptor>) -> TestServer {
        let data = config.data.clone();
        let shutdown = CancellationToken::new();
        let token = shutdown.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
            rt.block_on(async move {
                let state = AppState::open(config).expect("state");
                let listener = breachdex_server::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
                tx.send(listener.local_addr().unwrap()).unwrap();
                breachdex_server::serve(listener, state, tls, token).await.unwrap();
            });
        });
        let addr = rx.recv_timeout(Duration::from_secs(60)).expect("server started");
        TestServer { addr, data, shutdown, thread: Some(thread) }
    }

    /// Starts the graceful shutdown without waiting for it.
    pub fn begin_shutdown(&self) {
        self.shutdown.cancel();
    }

    /// Whether the server thread has ended.
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(std::thread::JoinHandle::is_finished)
    }

    /// Stops the server (graceful: drains and flushes) and waits for it.
    pub fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(t) = self.thread.take() {
            t.join().expect("server thread");
        }
    }

    /// A request with a key in `x-api-key`.
    pub fn get(&self, path: &str, key: &str) -> Response {
        request(self.addr, "GET", path, &[("x-api-key", key)], b"")
    }

    /// A JSON POST with a key in `Authorization: Bearer`.
    pub fn post_json(&self, path: &str, key: &str, body: &str) -> Response {
        let auth = format!("Bearer {key}");
        request(
            self.addr,
            "POST",
            path,
            &[("authorization", &auth), ("content-type", "application/json")],
            body.as_bytes(),
        )
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A server config over `index` with `data`, fast refresh and flush.
pub fn config(index: &Path, data: &Path) -> ServerConfig {
    let mut c = ServerConfig::new(index, data);
    c.refresh_interval = Duration::from_millis(200);
    c.flush_interval = Duration::from_millis(200);
    c
}

/// Creates a key with `new` (org defaults to `acme`); returns (id, key).
pub fn create(data: &Path, new: NewKey) -> (String, String) {
    let store = open_store(data).expect("store");
    let mut new = new;
    if new.org.is_empty() {
        new.org = "acme".into();
    }
    let out = create_key(&store, &new, breachdex_server::engine::now_unix()).expect("create key");
    (out["id"].as_str().unwrap().to_string(), out["key"].as_str().unwrap().to_string())
}

/// An HTTP response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    /// Asserts the error shape and returns the code.
    pub fn error_code(&self) -> String {
        let v = self.json();
        assert!(v["error"].is_string(), "error message in {v}");
        assert!(v["details"].is_object(), "details object in {v}");
        v["code"].as_str().expect("code").to_string()
    }
}

/// Sends one request (`Connection: close`) and reads the whole response.
pub fn request(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
    let mut head = format!("{method} {path} HTTP/1.1\r\nhost: test\r\nconnection: close\r\n").into_bytes();
    for (n, v) in headers {
        head.extend_from_slice(format!("{n}: {v}\r\n").as_bytes());
    }
    if !body.is_empty() || method == "POST" {
        head.extend_from_slice(format!("content-length: {}\r\n", body.len()).as_bytes());
    }
    head.extend_from_slice(b"\r\n");
    raw(addr, &head, body)
}

/// Sends a raw request head and body and reads the response.
pub fn raw(addr: SocketAddr, head: &[u8], body: &[u8]) -> Response {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    stream.write_all(head).expect("write head");
    if !body.is_empty() {
        // The server may answer (and close) before reading a large body: write from
        // another thread and ignore its errors.
        let mut writer = stream.try_clone().unwrap();
        let body = body.to_vec();
        std::thread::spawn(move || {
            let _ = writer.write_all(&body);
        });
    }
    let mut bytes = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                bytes.extend_from_slice(&buf[..n]);
                if complete(&bytes) {
                    break;
                }
            }
            Err(e) if !bytes.is_empty() => {
                let _ = e;
                break;
            }
            Err(e) => panic!("read: {e}"),
        }
    }
    parse(&bytes)
}

fn split_head(bytes: &[u8]) -> Option<usize> {
    bytes.windows(4).position(|w| w == b"\r\n\r\n")
}

fn complete(bytes: &[u8]) -> bool {
    let Some(end) = split_head(bytes) else { return false };
    let head = String::from_utf8_lossy(&bytes[..end]).to_ascii_lowercase();
    let body = &bytes[end + 4..];
    if let Some(len) = head.lines().find_map(|l| l.strip_prefix("content-length:")) {
        return body.len() >= len.trim().parse::<usize>().unwrap_or(0);
    }
    if head.contains("transfer-encoding: chunked") {
        return body.ends_with(b"0\r\n\r\n");
    }
    false
}

fn parse(bytes: &[u8]) -> Response {
    let end = split_head(bytes).unwrap_or_else(|| panic!("no response head in {:?}", String::from_utf8_lossy(bytes)));
    let head = String::from_utf8_lossy(&bytes[..end]).to_string();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let status: u16 = status_line.split(' ').nth(1).unwrap().parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = bytes[end + 4..].to_vec();
    if headers.iter().any(|(n, v)| n == "transfer-encoding" && v.contains("chunked")) {
        let mut out = Vec::new();
        let mut rest = &body[..];
        while let Some(pos) = rest.windows(2).position(|w| w == b"\r\n") {
            let size = usize::from_str_radix(String::from_utf8_lossy(&rest[..pos]).trim(), 16).unwrap_or(0);
            if size == 0 {
                break;
            }
            out.extend_from_slice(&rest[pos + 2..pos + 2 + size]);
            rest = &rest[pos + 2 + size + 2..];
        }
        body = out;
    }
    Response { status, headers, body }
}

/// Every file under `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() { stack.push(p) } else { out.push(p) }
        }
    }
    out
}

/// A request a [`Receiver`] got.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    /// Lowercase names.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The status it was answered with.
    pub answered: u16,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

/// A webhook receiver on 127.0.0.1 port 0: records every request and answers with
/// the next status of its script (200 once the script is used up).
pub struct Receiver {
    pub addr: SocketAddr,
    received: std::sync::Arc<std::sync::Mutex<Vec<Received>>>,
}

impl Receiver {
    pub fn start(script: &[u16]) -> Receiver {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::<Received>::new()));
        let script = std::sync::Arc::new(std::sync::Mutex::new(std::collections::VecDeque::from(script.to_vec())));
        let log = received.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                let mut bytes = Vec::new();
                let mut buf = [0u8; 16384];
                while !complete(&bytes) {
                    match stream.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => bytes.extend_from_slice(&buf[..n]),
                    }
                }
                let Some(end) = split_head(&bytes) else { continue };
                let head = String::from_utf8_lossy(&bytes[..end]).to_string();
                let mut lines = head.split("\r\n");
                let path = lines.next().and_then(|l| l.split(' ').nth(1)).unwrap_or("").to_string();
                let headers = lines
                    .filter_map(|l| l.split_once(':'))
                    .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
                    .collect();
                let answered = script.lock().unwrap().pop_front().unwrap_or(200);
                let body = bytes[end + 4..].to_vec();
                log.lock().unwrap().push(Received { path, headers, body, answered });
                let _ = stream.write_all(
                    format!("HTTP/1.1 {answered} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").as_bytes(),
                );
            }
        });
        Receiver { addr, received }
    }

    /// `http://127.0.0.1:PORT/PATH`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}/{path}", self.addr)
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Waits (up to `timeout`) until `n` requests have arrived; returns them all.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let start = std::time::Instant::now();
        loop {
            let got = self.received();
            if got.len() >= n || start.elapsed() > timeout {
                return got;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// [`config`] accepting `http` and private webhook URLs (the receiver is on 127.0.0.1).
pub fn open_webhooks_config(index: &Path, data: &Path) -> ServerConfig {
    let mut c = config(index, data);
    c.webhook_policy = breachdex_server::ssrf::UrlPolicy { allow_http: true, allow_private: true };
    c
}

/// `sha256=<hex>` computed here with the `hmac` crate.
pub fn hmac_hex(secret: &str, message: &[u8]) -> String {
    let mut mac = <hmac::Hmac<sha2::Sha256> as hmac::KeyInit>::new_from_slice(secret.as_bytes()).unwrap();
    hmac::Mac::update(&mut mac, message);
    let tag = hmac::Mac::finalize(mac).into_bytes();
    format!("sha256={}", tag.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

/// Checks both signatures of a received delivery against `secret`; returns the payload.
pub fn verify(r: &Received, secret: &str) -> serde_json::Value {
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("x-breachdex-signature"), Some(hmac_hex(secret, &r.body).as_str()), "header signature");
    let payload: serde_json::Value = r.json();
    let signature = payload["signature"].as_str().expect("signature in the body").to_string();
    // The body without its signature member: `{"event":…,"timestamp":…,"data":…}`.
    let text = std::str::from_utf8(&r.body).unwrap();
    let member = format!(",\"signature\":\"{signature}\"}}");
    let unsigned = format!("{}}}", text.strip_suffix(member.as_str()).expect("signature is the last member"));
    assert_eq!(signature, hmac_hex(secret, unsigned.as_bytes()), "body signature");
    let mut without = payload.clone();
    without.as_object_mut().unwrap().remove("signature");
    assert_eq!(serde_json::from_str::<serde_json::Value>(&unsigned).unwrap(), without);
    assert!(payload["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')));
    payload
}
