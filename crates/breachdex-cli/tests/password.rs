//! `breachdex password` checks a password locally against the index's password index: by SHA-1 or NTLM hex, or a password read from stdin and hashed here (never echoed or printed), with the record counts of the sample; `info` shows the password index; bad hashes, an index without a password index and a missing salt fail with a clear message and a non-zero exit.

use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn repo() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_breachdex"));
    c.env_remove("SOURCE_DATE_EPOCH");
    c
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("run breachdex")
}

fn run_with_stdin(args: &[&str], input: &[u8]) -> Output {
    let mut child =
        bin().args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[track_caller]
fn ok_json(o: &Output) -> Value {
    assert_eq!(o.status.code(), Some(0), "stdout: {}\nstderr: {}", text(&o.stdout), text(&o.stderr));
    serde_json::from_slice(&o.stdout).expect("one JSON object")
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn build(dir: &Path, name: &str, extra: &[&str]) -> PathBuf {
    let out = dir.join(name);
    let catalog = repo().join("testdata/sample/catalog.json");
    let mut args = vec!["build", "--catalog", p(&catalog), "--out", p(&out), "--quiet"];
    args.extend_from_slice(extra);
    let o = run(&args);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    out
}

// SHA-1 and NTLM of "hunter2", which the sample holds in two records.
const HUNTER2_SHA1: &str = "F3BBBD66A63D4BF1747940578EC3D0103530E21D";
const HUNTER2_NTLM: &str = "6608E4BC7B2B7A5F77CE3573570775AF";

#[test]
fn hashes_and_stdin_passwords_give_the_sample_counts() {
    let tmp = tempfile::tempdir().unwrap();
    let idx = build(tmp.path(), "idx", &[]);
    let j = ok_json(&run(&["password", "--index", p(&idx), "--sha1", &HUNTER2_SHA1.to_lowercase()]));
    assert_eq!(j, serde_json::json!({"sha1": {"hash": HUNTER2_SHA1, "count": 2}, "pwned": true}));
    let j = ok_json(&run(&["password", "--index", p(&idx), "--ntlm", HUNTER2_NTLM]));
    assert_eq!(j, serde_json::json!({"ntlm": {"hash": HUNTER2_NTLM, "count": 2}, "pwned": true}));

    // From stdin (not a terminal here): the first line, line end removed, hashed locally.
    for input in [&b"hunter2\n"[..], b"hunter2\r\n", b"hunter2"] {
        let o = run_with_stdin(&["password", "--index", p(&idx), "--stdin"], input);
        let j = ok_json(&o);
        assert_eq!(j["sha1"], serde_json::json!({"hash": HUNTER2_SHA1, "count": 2}));
        assert_eq!(j["ntlm"], serde_json::json!({"hash": HUNTER2_NTLM, "count": 2}));
        assert_eq!(j["pwned"], true);
        assert!(!text(&o.stdout).contains("hunter2") && !text(&o.stderr).contains("hunter2"));
    }
    let j = ok_json(&run_with_stdin(&["password", "--index", p(&idx), "--stdin"], b"not in any breach\n"));
    assert_eq!(
        (j["sha1"]["count"].as_u64(), j["ntlm"]["count"].as_u64(), &j["pwned"]),
        (Some(0), Some(0), &false.into())
    );

    // A typed SHA-1 hash of examplecorp counts without any plaintext.
    let j = ok_json(&run(&["password", "--index", p(&idx), "--sha1", "5baa61e4c9b93f3f0682250b6cf8331b7ee68fd8"]));
    assert_eq!(j["pwned"], true);

    let info = run(&["info", p(&idx)]);
    assert!(text(&info.stdout).contains("SHA-1 hashes"), "{}", text(&info.stdout));
}

#[test]
fn bad_input_and_missing_password_index_fail_clearly() {
    let tmp = tempfile::tempdir().unwrap();
    let idx = build(tmp.path(), "idx", &[]);
    let o = run(&["password", "--index", p(&idx), "--sha1", "abc"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stderr).contains("invalid sha1 hash: a SHA1 hash is 40 hex digits"), "{}", text(&o.stderr));
    let o = run(&["--json", "password", "--index", p(&idx), "--ntlm", &"z".repeat(32)]);
    assert_eq!(o.status.code(), Some(1));
    let err: Value = serde_json::from_slice(&o.stderr).unwrap();
    assert_eq!(err["code"], "validation_error");
    let o = run_with_stdin(&["password", "--index", p(&idx), "--stdin"], b"");
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stderr).contains("no password on stdin"), "{}", text(&o.stderr));
    // Exactly one of --sha1, --ntlm, --stdin.
    assert_eq!(run(&["password", "--index", p(&idx)]).status.code(), Some(2));
    assert_eq!(
        run(&["password", "--index", p(&idx), "--sha1", HUNTER2_SHA1, "--ntlm", HUNTER2_NTLM]).status.code(),
        Some(2)
    );

    let off = build(tmp.path(), "off", &["--no-password-index"]);
    let o = run(&["password", "--index", p(&off), "--sha1", HUNTER2_SHA1]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stderr).contains("has no password index"), "{}", text(&o.stderr));
    assert!(text(&run(&["info", p(&off)]).stdout).contains("passwords      none"));
}
