//! With a certificate and key the server speaks HTTPS: a client trusting the
//! certificate gets the same answers, and a plain-HTTP client gets no answer but does
//! not disturb the server. (tests/data holds a self-signed test-only certificate for
//! localhost and 127.0.0.1 and its key.)

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use tokio_rustls::rustls;

fn data(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name)
}

fn https_get(addr: std::net::SocketAddr, path: &str) -> String {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types::CertificateDer::pem_file_iter(data("test-cert.pem")).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, TcpStream::connect(addr).unwrap());
    write!(tls, "GET {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n").unwrap();
    let mut out = Vec::new();
    // A peer that closes without close_notify ends the read with an error; what was read counts.
    let _ = tls.read_to_end(&mut out);
    String::from_utf8_lossy(&out).to_string()
}

#[test]
fn https_serves_the_api_with_the_given_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let index = dir.path().join("index");
    build(&dir.path().join("work"), &index, false);
    let acceptor = breachdex_server::tls::load(&data("test-cert.pem"), &data("test-key.pem")).unwrap();
    let server = TestServer::start_with(config(&index, &dir.path().join("data")), Some(acceptor));
    let answer = https_get(server.addr, "/healthz");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("ok"), "{answer}");
    let answer = https_get(server.addr, "/api/v1/usage/");
    assert!(answer.starts_with("HTTP/1.1 401") && answer.contains("authentication_error"), "{answer}");

    // Plain HTTP to the TLS port: no HTTP answer, and the server goes on.
    let mut plain = TcpStream::connect(server.addr).unwrap();
    plain.set_read_timeout(Some(std::time::Duration::from_secs(15))).unwrap();
    let _ = plain.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n");
    let mut buf = Vec::new();
    let _ = plain.read_to_end(&mut buf);
    assert!(!buf.starts_with(b"HTTP/1.1 200"));
    assert!(https_get(server.addr, "/healthz").starts_with("HTTP/1.1 200"));
}

#[test]
fn a_missing_or_bad_certificate_is_a_clear_error() {
    let missing = breachdex_server::tls::load(Path::new("/nonexistent/cert.pem"), &data("test-key.pem"));
    let Err(e) = missing else { panic!("a missing certificate loaded") };
    let e = e.to_string();
    assert!(e.contains("/nonexistent/cert.pem"), "{e}");
    let swapped = breachdex_server::tls::load(&data("test-key.pem"), &data("test-cert.pem"));
    assert!(swapped.is_err());
}
