//! The `records` command pages the matched records under the asset policy given by its
//! flags (allow-list, masking, salted output hashing), exports every page with `--all`, and
//! fails with a JSON error object on a bad cursor or policy.

use serde_json::Value;
use sha2::Digest;
use std::path::PathBuf;
use std::process::Command;

const MASK: &str = "********";
const OUTPUT_SALT: &str = "pepper-2026";

#[test]
fn cli_records_pages_and_exports() {
    let tmp = tempfile::tempdir().unwrap();
    let catalog = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/sample/catalog.json"));
    let idx = tmp.path().join("idx");
    let bin = || {
        let mut c = Command::new(env!("CARGO_BIN_EXE_breachdex"));
        c.env("SOURCE_DATE_EPOCH", "1795435200");
        c
    };
    let o = bin()
        .args(["build", "--quiet", "--catalog", catalog.to_str().unwrap(), "--out", idx.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success());
    let records = |args: &[&str]| {
        let mut c = bin();
        c.args(["records", "--index", idx.to_str().unwrap()]).args(args);
        c.output().unwrap()
    };
    let o = records(&[
        "--email",
        "USER@Example.com",
        "--allow",
        "email,password_hash,target_url",
        "--hash-assets",
        "email=sha256",
        "--output-salt",
        OUTPUT_SALT,
        "--limit",
        "2",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let page: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(page["hits"], 5);
    assert_eq!(page["results"].as_array().unwrap().len(), 2);
    let first = &page["results"][0];
    assert_eq!(first["email"], breachdex::to_hex(&sha2::Sha256::digest(b"user@example.compepper-2026")));
    assert_eq!(first["full_name"], MASK);
    assert_eq!(page["results"][1]["target_url"], "https://accounts.google.com/signin");
    assert_eq!(page["results"][1]["password_plaintext"], MASK);
    let cursor = page["cursor"].as_str().unwrap();
    assert!(!cursor.is_empty());
    // --all: one JSON line per record, every page followed.
    let o = records(&["--email", "user@example.com", "--all", "--limit", "2"]);
    assert!(o.status.success());
    let lines: Vec<Value> =
        String::from_utf8(o.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 5);
    assert!(lines.iter().all(|l| l["document_id"].is_string() && l.get("hits").is_none()));
    // The cursor with another policy: a cursor error, exit 1, JSON error object.
    let o = records(&["--email", "user@example.com", "--cursor", cursor]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("invalid cursor"));
    let mut c = bin();
    c.args(["--json", "records", "--index", idx.to_str().unwrap(), "--email", "a@b.c", "--hash-assets", "email=md4"]);
    let o = c.output().unwrap();
    let err: Value = serde_json::from_slice(&o.stderr).unwrap();
    assert_eq!(err["code"], "validation_error");
    assert!(err["error"].as_str().unwrap().contains("unknown hash algorithm 'md4' for asset email"));
    let o = records(&["--allow", "email"]);
    assert_eq!(o.status.code(), Some(2), "a query is required");
}
