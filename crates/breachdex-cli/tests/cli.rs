//! The `breachdex` binary must build the bundled sample with the exact counts of testdata/sample/README.md, answer `check` (single, key and batch) with the README's breaches for every spelling of an identity, describe and verify indexes, and fail clearly (exit codes, messages, JSON error objects) on bad input.

use breachdex::{HashMode, Salt};
use breachdex::{KeyDeriver, to_hex};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const SALT: &[u8] = b"cli-test-only-salt-not-a-secret-0123456789";

/// The repository root (this crate lives in crates/breachdex-cli).
fn repo() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

fn sample_catalog() -> PathBuf {
    repo().join("testdata/sample/catalog.json")
}

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_breachdex"));
    c.env_remove("SOURCE_DATE_EPOCH");
    c
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("run breachdex")
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).expect("stdout is UTF-8")
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).expect("stderr is UTF-8")
}

fn code(o: &Output) -> i32 {
    o.status.code().expect("exited normally (not by signal)")
}

#[track_caller]
fn ok(o: &Output) -> String {
    assert_eq!(code(o), 0, "expected success\nstdout: {}\nstderr: {}", stdout(o), stderr(o));
    stdout(o)
}

fn p(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}

fn write_salt(dir: &Path) -> PathBuf {
    let path = dir.join("salt.txt");
    let mut bytes = SALT.to_vec();
    bytes.push(b'\n'); // one trailing line end is dropped by the reader
    std::fs::write(&path, bytes).unwrap();
    path
}

/// Builds the sample into `dir/name` (`--json`), returns the index path and the summary.
fn build_sample(dir: &Path, name: &str, extra: &[&str]) -> (PathBuf, Value) {
    let out = dir.join(name);
    let catalog = sample_catalog();
    let mut args = vec!["--json", "build", "--catalog", p(&catalog), "--out", p(&out), "--quiet"];
    args.extend_from_slice(extra);
    let o = run(&args);
    let summary: Value = serde_json::from_str(&ok(&o)).expect("build --json prints one JSON object");
    (out, summary)
}

fn check_json(args: &[&str]) -> Value {
    let mut all = vec!["check"];
    all.extend_from_slice(args);
    let o = run(&all);
    serde_json::from_str(&ok(&o)).expect("check prints one JSON object")
}

/// (source, severity, severity_score, records, data_types)
type Breach = (&'static str, &'static str, u64, u64, &'static [&'static str]);

const USER_AT_EXAMPLE: &[Breach] = &[
    ("infostealer-2025", "critical", 25, 1, &["email", "password_plaintext", "ip_address", "target_url"]),
    ("examplecorp-2024", "high", 20, 1, &["email", "password_hash", "password_type", "full_name"]),
    ("gamerforum-2019", "medium", 5, 1, &["email", "username", "password_hash", "password_type", "ip_address"]),
    ("oldshop-2012", "medium", 5, 2, &["email", "password_plaintext", "password_hash", "password_type", "full_name"]),
];

const MUELLER: &[Breach] = &[
    ("infostealer-2025", "critical", 25, 1, &["email", "password_plaintext", "target_url"]),
    ("examplecorp-2024", "high", 20, 1, &["email", "password_hash", "password_type", "full_name", "phone"]),
    ("gamerforum-2019", "medium", 5, 1, &["email", "username", "password_hash", "password_type", "dob", "ip_address"]),
];

const DARKSTAR: &[Breach] = &[
    ("infostealer-2025", "critical", 25, 1, &["username", "password_plaintext", "ip_address", "target_url"]),
    ("gamerforum-2019", "medium", 5, 1, &["username", "password_hash", "password_type", "dob", "ip_address"]),
    ("oldshop-2012", "medium", 5, 1, &["username", "password_plaintext"]),
];

#[track_caller]
fn assert_breaches(result: &Value, checked: &str, kind: &str, expected: &[Breach]) {
    assert_eq!(result["checked"], checked, "{result}");
    assert_eq!(result["kind"], kind, "{result}");
    assert_eq!(result["total_breaches"], expected.len() as u64, "{result}");
    let breaches = result["breaches"].as_array().expect("breaches array");
    assert_eq!(breaches.len(), expected.len(), "{result}");
    for (b, (source, sev, score, records, types)) in breaches.iter().zip(expected) {
        assert_eq!(b["source"], *source, "{result}");
        assert_eq!(b["severity"], *sev, "{source}: {b}");
        assert_eq!(b["severity_score"], *score, "{source}: {b}");
        assert_eq!(b["records"], *records, "{source}: {b}");
        let got: Vec<&str> = b["data_types"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
        assert_eq!(got, *types, "{source}: data_types");
    }
    if expected.is_empty() {
        assert_eq!(result["risk_level"], "none");
        assert_eq!(result["risk_score"], 0);
    } else {
        assert_ne!(result["risk_level"], "none");
        assert!(result["risk_score"].as_u64().unwrap() > 0);
    }
    let at = result["checked_at"].as_str().expect("checked_at string");
    assert!(at.ends_with('Z') && at.len() == 20, "checked_at is RFC 3339 UTC: {at}");
}

fn names(result: &Value) -> Vec<String> {
    result["breaches"].as_array().unwrap().iter().map(|b| b["source"].as_str().unwrap().to_string()).collect()
}

#[track_caller]
fn assert_sample_summary(s: &Value, mode: &str) {
    assert_eq!(s["hash_mode"], mode);
    assert_eq!(s["records_read"], 56);
    assert_eq!(s["kept"], 32);
    assert_eq!(s["rejected_records"], 21);
    assert_eq!(s["rejected_fields"], 0);
    assert_eq!(s["duplicates"], 3);
    assert_eq!(s["file_errors"], 0);
    assert_eq!(s["email_keys"], 10);
    assert_eq!(s["username_keys"], 7);
    // The stealer log's `id` key names no asset: reported like an unknown CSV column.
    assert_eq!(s["unknown_columns"], serde_json::json!([{"file": "stealer-logs.jsonl", "columns": ["id"]}]));
    let sources: Vec<(u64, &str, u64, u64, u64, u64)> = s["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["id"].as_u64().unwrap(),
                x["name"].as_str().unwrap(),
                x["records_read"].as_u64().unwrap(),
                x["kept"].as_u64().unwrap(),
                x["rejected"].as_u64().unwrap(),
                x["duplicates"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        sources,
        vec![
            (1, "examplecorp-2024", 14, 8, 5, 1),
            (2, "infostealer-2025", 13, 8, 4, 1),
            (3, "gamerforum-2019", 11, 6, 5, 0),
            (4, "oldshop-2012", 18, 10, 7, 1),
        ]
    );
    assert!(s["index_bytes"].as_u64().unwrap() > 0);
    assert_eq!(s["input_bytes"].as_u64().unwrap(), sample_input_bytes());
}

fn sample_input_bytes() -> u64 {
    ["examplecorp.csv", "stealer-logs.jsonl", "gamerforum.csv", "oldshop-users.jsonl", "oldshop-cracked.txt"]
        .iter()
        .map(|f| std::fs::metadata(repo().join("testdata/sample").join(f)).unwrap().len())
        .sum()
}

#[test]
fn build_plain_sample_json_summary_has_exact_counts() {
    let tmp = tempfile::tempdir().unwrap();
    let (out, s) = build_sample(tmp.path(), "idx", &[]);
    assert_sample_summary(&s, "plain");
    assert_eq!(s["spilled_runs"], 0);
    assert!(out.join("manifest.json").is_file());
    // Default rejects file beside the index.
    let rejects = tmp.path().join("idx.rejects.jsonl");
    assert!(rejects.is_file());
    assert_eq!(Path::new(s["rejects"].as_str().unwrap()).file_name().unwrap(), "idx.rejects.jsonl");
    // No temporary directories left behind.
    let leftovers: Vec<String> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "idx" && n != "idx.rejects.jsonl")
        .collect();
    assert!(leftovers.is_empty(), "left behind: {leftovers:?}");
}

#[test]
fn build_text_summary_names_counts() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("idx");
    let o = run(&["build", "--catalog", p(&sample_catalog()), "--out", p(&out)]);
    let text = ok(&o);
    assert!(text.contains("records read   56"), "{text}");
    assert!(text.contains("kept           32"), "{text}");
    assert!(text.contains("rejected       21 records, 0 fields"), "{text}");
    assert!(text.contains("duplicates     3"), "{text}");
    assert!(text.contains("hash mode plain"), "{text}");
    for name in ["examplecorp-2024", "infostealer-2025", "gamerforum-2019", "oldshop-2012"] {
        assert!(text.contains(name), "{name} missing: {text}");
    }
}

#[test]
fn build_hashed_sample_and_check_with_salt() {
    let tmp = tempfile::tempdir().unwrap();
    let salt = write_salt(tmp.path());
    for mode in ["sha256", "xxh3-128", "xxh3-64"] {
        let (out, s) = build_sample(tmp.path(), mode, &["--hash", mode, "--salt-file", p(&salt)]);
        assert_sample_summary(&s, mode);
        let r = check_json(&["--index", p(&out), "--salt-file", p(&salt), "--email", "user@example.com"]);
        assert_breaches(&r, "user@example.com", "email", USER_AT_EXAMPLE);
        let r = check_json(&["--index", p(&out), "--salt-file", p(&salt), "--username", "DarkStar99"]);
        assert_breaches(&r, "DarkStar99", "username", DARKSTAR);
        let r = check_json(&["--index", p(&out), "--salt-file", p(&salt), "--email", "shopper@gmail.com"]);
        assert_breaches(&r, "shopper@gmail.com", "email", &[]);
        // A privacy claim of hashed modes: no key file holds an identifier in clear.
        for entry in std::fs::read_dir(&out).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with("email.") || name.starts_with("username.") {
                let bytes = std::fs::read(entry.path()).unwrap();
                assert!(
                    !bytes.windows(b"darkstar99".len()).any(|w| w == b"darkstar99"),
                    "{mode}: {name} holds a username in clear"
                );
            }
        }
    }
}

#[test]
fn check_email_every_spelling_gives_the_same_breaches() {
    let tmp = tempfile::tempdir().unwrap();
    let (idx, _) = build_sample(tmp.path(), "idx", &[]);
    let idx = p(&idx);
    for spelling in ["user@example.com", "USER@Example.COM", " user@example.com ", "\tUser@EXAMPLE.com\n"] {
        let r = check_json(&["--index", idx, "--email", spelling]);
        assert_breaches(&r, spelling, "email", USER_AT_EXAMPLE);
    }
    for spelling in [
        "müller@bücher.de",
        "müller@xn--bcher-kva.de",
        "MÜLLER@xn--bcher-kva.de",
        "MÜLLER@BÜCHER.DE",
        "mu\u{308}ller@bu\u{308}cher.de", // NFD
    ] {
        let r = check_json(&["--index", idx, "--email", spelling]);
        assert_breaches(&r, spelling, "email", MUELLER);
    }
    // Other identities from the README.
    let r = check_json(&["--index", idx, "--email", "john.doe@example.com"]);
    assert_eq!(names(&r), ["infostealer-2025", "examplecorp-2024", "gamerforum-2019"]);
    for spelling in ["josé.núñez@example.com", "jose\u{301}.nu\u{301}n\u{303}ez@example.com", "JOSÉ.NÚÑEZ@EXAMPLE.COM"]
    {
        let r = check_json(&["--index", idx, "--email", spelling]);
        assert_eq!(names(&r), ["infostealer-2025", "examplecorp-2024"], "{spelling}");
    }
    let r = check_json(&["--index", idx, "--email", "shopper+deals@gmail.com"]);
    assert_eq!(names(&r), ["infostealer-2025", "examplecorp-2024", "oldshop-2012"]);
    let r = check_json(&["--index", idx, "--email", "bob.smith@example.com"]);
    assert_eq!(names(&r), ["examplecorp-2024", "oldshop-2012"]);
    assert_eq!(r["breaches"][1]["records"], 2, "Bob is in both oldshop files: {r}");
    let r = check_json(&["--index", idx, "--email", "alice@example.net"]);
    assert_eq!(names(&r), ["infostealer-2025", "examplecorp-2024", "oldshop-2012"]);
}

#[test]
fn check_username_and_misses() {
    let tmp = tempfile::tempdir().unwrap();
    let (idx, _) = build_sample(tmp.path(), "idx", &[]);
    let idx = p(&idx);
    for spelling in ["darkstar99", "DARKSTAR99", "  darkstar99 "] {
        let r = check_json(&["--index", idx, "--username", spelling]);
        assert_breaches(&r, spelling, "username", DARKSTAR);
    }
    let r = check_json(&["--index", idx, "--username", "retro_gamer"]);
    assert_breaches(
        &r,
        "retro_gamer",
        "username",
        &[("oldshop-2012", "medium", 5, 2, &["username", "password_plaintext", "password_hash", "password_type"])],
    );
    assert_eq!(names(&check_json(&["--index", idx, "--username", "alice"])), ["examplecorp-2024", "gamerforum-2019"]);
    assert_eq!(names(&check_json(&["--index", idx, "--username", "jdoe"])), ["examplecorp-2024", "gamerforum-2019"]);
    assert_eq!(
        names(&check_json(&["--index", idx, "--username", "Gamer_Girl"])),
        ["infostealer-2025", "gamerforum-2019"]
    );
    // Misses: +tags are kept, so the bare address is in no breach; an unknown username too.
    for (flag, q) in [("--email", "shopper@gmail.com"), ("--email", "nobody@nowhere.example"), ("--username", "nobody")]
    {
        let r = check_json(&["--index", idx, flag, q]);
        let kind = if flag == "--email" { "email" } else { "username" };
        assert_breaches(&r, q, kind, &[]);
        assert_eq!(r["breaches"], serde_json::json!([]));
    }
    // An e-mail is not a username: no match across maps.
    let r = check_json(&["--index", idx, "--username", "user@example.com"]);
    assert_eq!(r["total_breaches"], 0, "{r}");
}

#[test]
fn check_invalid_query_is_a_validation_error() {
    let tmp = tempfile::tempdir().unwrap();
    let (idx, _) = build_sample(tmp.path(), "idx", &[]);
    let o = run(&["--json", "check", "--index", p(&idx), "--email", "a@@b.com"]);
    assert_eq!(code(&o), 1);
    assert!(o.stdout.is_empty());
    let err: Value = serde_json::from_str(stderr(&o).trim()).expect("JSON error object");
    assert_eq!(err["code"], "validation_error");
    assert!(err["error"].as_str().unwrap().contains("a@@b.com"), "{err}");
    let o = run(&["check", "--index", p(&idx), "--email", "no-at-sign"]);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).starts_with("error: "), "{}", stderr(&o));
    assert!(stderr(&o).contains("invalid email 'no-at-sign'"), "{}", stderr(&o));
}

#[test]
fn check_key_plain_and_hashed() {
    let tmp = tempfile::tempdir().unwrap();
    let (plain, _) = build_sample(tmp.path(), "plain", &[]);
    let salt_path = write_salt(tmp.path());
    let (hashed, _) = build_sample(tmp.path(), "xxh3", &["--hash", "xxh3-128", "--salt-file", p(&salt_path)]);

    // plain: the key is the normalized identifier's bytes.
    let hex = to_hex("user@example.com".as_bytes());
    for kind in ["auto", "email"] {
        let r = check_json(&["--index", p(&plain), "--key", &hex, "--kind", kind]);
        assert_breaches(&r, &hex, "key", USER_AT_EXAMPLE);
    }
    let r = check_json(&["--index", p(&plain), "--key", &hex, "--kind", "username"]);
    assert_eq!(r["total_breaches"], 0, "an e-mail key is not in the username map: {r}");
    let hex_upper = to_hex("müller@xn--bcher-kva.de".as_bytes()).to_uppercase();
    let r = check_json(&["--index", p(&plain), "--key", &hex_upper]);
    assert_breaches(&r, &hex_upper, "key", MUELLER);
    let hex_user = to_hex(b"darkstar99");
    let r = check_json(&["--index", p(&plain), "--key", &hex_user]);
    assert_breaches(&r, &hex_user, "key", DARKSTAR);

    // xxh3-128: derive with the library.
    let salt = Salt::new(SALT.to_vec()).unwrap();
    let deriver = KeyDeriver::new(HashMode::Xxh3_128, Some(&salt)).unwrap();
    let key = to_hex(deriver.derive(b"user@example.com").as_bytes());
    assert_eq!(key.len(), 32);
    let r = check_json(&["--index", p(&hashed), "--salt-file", p(&salt_path), "--key", &key]);
    assert_breaches(&r, &key, "key", USER_AT_EXAMPLE);
    let ukey = to_hex(deriver.derive(b"darkstar99").as_bytes());
    let r = check_json(&["--index", p(&hashed), "--salt-file", p(&salt_path), "--key", &ukey, "--kind", "username"]);
    assert_breaches(&r, &ukey, "key", DARKSTAR);
    // A key derived with another salt misses (not an error).
    let other =
        KeyDeriver::new(HashMode::Xxh3_128, Some(&Salt::new(b"some-other-salt-0123456789".to_vec()).unwrap())).unwrap();
    let miss = to_hex(other.derive(b"user@example.com").as_bytes());
    let r = check_json(&["--index", p(&hashed), "--salt-file", p(&salt_path), "--key", &miss]);
    assert_eq!(r["total_breaches"], 0);
    assert_eq!(r["risk_level"], "none");

    // Malformed keys.
    for (bad, fragment) in [
        (&key[..30], "16 bytes"),        // wrong width for xxh3-128
        ("zz", "invalid character"),     // not hex
        ("abc", "odd number of digits"), // odd
    ] {
        let o = run(&["--json", "check", "--index", p(&hashed), "--salt-file", p(&salt_path), "--key", bad]);
        assert_eq!(code(&o), 1, "{bad}");
        let err: Value = serde_json::from_str(stderr(&o).trim()).unwrap();
        assert_eq!(err["code"], "validation_error", "{bad}: {err}");
        assert!(err["error"].as_str().unwrap().contains(fragment), "{bad}: {err}");
    }
}

#[test]
fn check_batch_one_line_per_input_line_in_order() {
    let tmp = tempfile::tempdir().unwrap();
    let (idx, _) = build_sample(tmp.path(), "idx", &[]);
    let batch = tmp.path().join("batch.txt");
    let lines = [
        "user@example.com",
        "darkstar99",
        "",
        "a@@b.com",
        "MÜLLER@xn--bcher-kva.de",
        "shopper@gmail.com",
        "   ",
        "retro_gamer",
        "@example.com",
    ];
    // CRLF on one line: the \r is not part of the identifier.
    let mut text = lines.join("\n");
    text = text.replacen("darkstar99\n", "darkstar99\r\n", 1);
    text.push('\n');
    std::fs::write(&batch, text).unwrap();

    let out = ok(&run(&["check", "--index", p(&idx), "--batch", p(&batch), "--kind", "auto"]));
    let got: Vec<Value> = out.lines().map(|l| serde_json::from_str(l).expect("each line is JSON")).collect();
    assert_eq!(got.len(), lines.len(), "{out}");
    for (i, (line, r)) in lines.iter().zip(&got).enumerate() {
        assert_eq!(r["checked"], *line, "line {i}: {r}");
    }
    assert_breaches(&got[0], "user@example.com", "email", USER_AT_EXAMPLE);
    assert_breaches(&got[1], "darkstar99", "username", DARKSTAR);
    assert_breaches(&got[4], "MÜLLER@xn--bcher-kva.de", "email", MUELLER);
    assert_breaches(&got[5], "shopper@gmail.com", "email", &[]);
    assert_eq!(names(&got[7]), ["oldshop-2012"]);
    for i in [2, 3, 6, 8] {
        assert_eq!(got[i]["code"], "validation_error", "line {i}: {}", got[i]);
        assert!(got[i]["error"].as_str().is_some_and(|e| !e.is_empty()), "line {i}: {}", got[i]);
        assert!(got[i].get("breaches").is_none(), "line {i}");
    }
    for i in [2, 3, 6, 8] {
        assert_eq!(got[i]["details"]["line"], i + 1, "error objects name their line: {}", got[i]);
    }
    assert!(got[3]["error"].as_str().unwrap().contains("invalid email"), "{}", got[3]);
    assert!(got[2]["error"].as_str().unwrap().contains("invalid username"), "blank line under auto: {}", got[2]);

    // --kind email: a username line is an invalid e-mail.
    let out = ok(&run(&["check", "--index", p(&idx), "--batch", p(&batch), "--kind", "email"]));
    let got: Vec<Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(got.len(), lines.len());
    assert_eq!(got[0]["kind"], "email");
    assert_eq!(got[0]["total_breaches"], 4);
    assert_eq!(got[1]["code"], "validation_error", "{}", got[1]);
    assert_eq!(got[7]["code"], "validation_error", "{}", got[7]);
    assert_eq!(got[4]["total_breaches"], 3);

    // --kind username: everything is a username; e-mails are valid usernames that miss.
    let out = ok(&run(&["check", "--index", p(&idx), "--batch", p(&batch), "--kind", "username"]));
    let got: Vec<Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(got.len(), lines.len());
    assert_eq!(got[0]["kind"], "username");
    assert_eq!(got[0]["total_breaches"], 0, "{}", got[0]);
    assert_breaches(&got[1], "darkstar99", "username", DARKSTAR);
    assert_eq!(got[2]["code"], "validation_error");

    // stdin works the same.
    let mut child = bin()
        .args(["check", "--index", p(&idx), "--batch", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"darkstar99\nuser@example.com\n").unwrap();
    }
    let o = child.wait_with_output().unwrap();
    let got: Vec<Value> = ok(&o).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0]["total_breaches"], 3);
    assert_eq!(got[1]["total_breaches"], 4);
}

#[test]
fn check_batch_keeps_order_over_many_lines() {
    // More than one chunk of parallel work: order must be the input order.
    let tmp = tempfile::tempdir().unwrap();
    let (idx, _) = build_sample(tmp.path(), "idx", &[]);
    let batch = tmp.path().join("batch.txt");
    let pool = ["user@example.com", "darkstar99", "nobody", "bad@@x", "alice", "bob.smith@example.com"];
    let expected: Vec<String> = (0..20_000).map(|i| pool[(i * 7 + i / 3) % pool.len()].to_string()).collect();
    std::fs::write(&batch, expected.join("\n")).unwrap();
    let out = ok(&run(&["check", "--index", p(&idx), "--batch", p(&batch)]));
    let got: Vec<&str> = out.lines().collect();
    assert_eq!(got.len(), expected.len());
    for (i, (line, want)) in got.iter().zip(&expected).enumerate() {
        let r: Value = serde_json::from_str(line).unwrap();
        assert_eq!(r["checked"], want.as_str(), "line {i}");
        let total = match want.as_str() {
            "user@example.com" => 4,
            "darkstar99" => 3,
            "alice" | "bob.smith@example.com" => 2,
            "nobody" => 0,
            _ => {
                assert_eq!(r["code"], "validation_error", "line {i}");
                continue;
            }
        };
        assert_eq!(r["total_breaches"], total, "line {i}: {r}");
    }
}

/// Lines that are not UTF-8 never stop a batch: each gets its own error object naming its
/// line, like any other invalid line, and every other line is answered, in a short file and
/// across the chunks of a long one.
#[test]
fn check_batch_answers_every_line_when_some_are_not_utf8() {
    let tmp = tempfile::tempdir().unwrap();
    let (idx, _) = build_sample(tmp.path(), "idx", &[]);
    let batch = tmp.path().join("batch.txt");
    let check = |bytes: &[u8]| -> Vec<Value> {
        std::fs::write(&batch, bytes).unwrap();
        let out = ok(&run(&["check", "--index", p(&idx), "--batch", p(&batch)]));
        out.lines().map(|l| serde_json::from_str(l).expect("each line is JSON")).collect()
    };

    // Short: valid, not UTF-8, invalid, valid, and a last line that is not UTF-8 either.
    let got = check(b"user@example.com\nm\xFCller@b\xFCcher.de\r\nbad@@x\ndarkstar99\n\xFF\xFE");
    assert_eq!(got.len(), 5, "{got:?}");
    assert_breaches(&got[0], "user@example.com", "email", USER_AT_EXAMPLE);
    assert_eq!(got[1]["code"], "validation_error", "{}", got[1]);
    assert_eq!(got[1]["error"], "line 2 is not valid UTF-8");
    assert_eq!(got[1]["checked"], "m\u{FFFD}ller@b\u{FFFD}cher.de");
    assert_eq!(got[1]["details"]["line"], 2);
    assert_eq!(got[2]["code"], "validation_error");
    assert!(got[2]["error"].as_str().unwrap().contains("invalid email"), "{}", got[2]);
    assert_eq!(got[2]["details"]["line"], 3);
    assert_breaches(&got[3], "darkstar99", "username", DARKSTAR);
    assert_eq!(got[4]["error"], "line 5 is not valid UTF-8");
    assert_eq!(got[4]["details"]["line"], 5);

    // Long: more lines than one chunk, a bad line every 997 lines.
    let mut text = Vec::new();
    for i in 1..=20_000u64 {
        if i % 997 == 0 {
            text.extend_from_slice(b"\xC3\x28@example.com\n");
        } else if i % 1009 == 0 {
            text.extend_from_slice(b"@example.com\n");
        } else {
            text.extend_from_slice(b"darkstar99\n");
        }
    }
    let got = check(&text);
    assert_eq!(got.len(), 20_000);
    for (i, r) in (1..).zip(&got) {
        if i % 997 == 0 {
            assert_eq!(r["error"], format!("line {i} is not valid UTF-8"), "{r}");
            assert_eq!(r["details"]["line"], i);
        } else if i % 1009 == 0 {
            assert_eq!(r["code"], "validation_error", "{r}");
            assert_eq!(r["details"]["line"], i);
        } else {
            assert_eq!(r["total_breaches"], 3, "line {i}: {r}");
        }
    }
}

/// The exact byte count in a text line `... LABEL  12.3 KiB (N bytes ...`.
fn bytes_after(text: &str, label: &str) -> u64 {
    let line = text.lines().find(|l| l.trim_start().starts_with(label)).unwrap_or_else(|| panic!("{label}: {text}"));
    let inner = line.split('(').nth(1).unwrap_or_else(|| panic!("{line}"));
    inner.split(" bytes").next().unwrap().parse().unwrap_or_else(|_| panic!("{line}"))
}

/// The build summary (text and JSON) and `info` give the same index size: every file in the
/// index directory, the manifest included.
#[test]
fn build_summary_and_info_agree_on_the_index_size() {
    let tmp = tempfile::tempdir().unwrap();
    let (idx, summary) = build_sample(tmp.path(), "idx", &[]);
    let on_disk: u64 = std::fs::read_dir(&idx).unwrap().map(|e| e.unwrap().metadata().unwrap().len()).sum();
    assert_eq!(summary["index_bytes"], on_disk, "build --json");
    let info = ok(&run(&["info", p(&idx)]));
    assert_eq!(bytes_after(&info, "index size"), on_disk, "info:\n{info}");

    let text_idx = tmp.path().join("text");
    let text = ok(&run(&["build", "--quiet", "--catalog", p(&sample_catalog()), "--out", p(&text_idx)]));
    let info = ok(&run(&["info", p(&text_idx)]));
    assert_eq!(bytes_after(&text, "index size"), bytes_after(&info, "index size"), "{text}\n{info}");
}

#[test]
fn info_text_and_json() {
    let tmp = tempfile::tempdir().unwrap();
    let salt = write_salt(tmp.path());
    for mode in ["plain", "xxh3-64"] {
        let extra: Vec<&str> = if mode == "plain" { vec![] } else { vec!["--hash", mode, "--salt-file", p(&salt)] };
        let (idx, _) = build_sample(tmp.path(), mode, &extra);
        let files: BTreeSet<String> =
            std::fs::read_dir(&idx).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        let text = ok(&run(&["info", p(&idx)]));
        assert!(text.contains(&format!("hash mode      {mode}")), "{text}");
        assert!(text.contains("version 2"), "{text}");
        assert!(text.contains("records        32 "), "{text}");
        assert!(text.contains("10 email keys, 7 username keys"), "{text}");
        assert!(text.contains("56 records read, 21 rejected, 0 fields rejected, 3 duplicates"), "{text}");
        assert!(text.contains("sources        4"), "{text}");
        // oldshop-2012: 10 records of 7 identities (user@example.com and others twice).
        assert!(text.contains("10 records           7 identities  OldShop Breach 2012"), "{text}");
        for f in files.iter().filter(|f| *f != "manifest.json") {
            assert!(text.contains(f.as_str()), "info does not list {f}: {text}");
        }
        if mode == "plain" {
            assert!(text.contains("salt           none"), "{text}");
        } else {
            let fp = Salt::new(SALT.to_vec()).unwrap().fingerprint();
            assert!(text.contains(&fp), "{text}");
            assert!(text.contains("false matches"), "xxh3-64 reports its false-match rate: {text}");
            assert!(!text.contains(std::str::from_utf8(SALT).unwrap()), "info must not show the salt");
        }

        let j: Value = serde_json::from_str(&ok(&run(&["info", "--json", p(&idx)]))).unwrap();
        assert_eq!(j["format"], "breachdex-index");
        assert_eq!(j["format_version"], 2);
        assert_eq!(j["hash_mode"], mode);
        assert_eq!(j["counts"]["records"], 32);
        assert_eq!(j["counts"]["email_rows"], 25);
        assert_eq!(j["counts"]["email_keys"], 10);
        assert_eq!(j["counts"]["username_keys"], 7);
        assert_eq!(j["counts"]["username_postings"], 13);
        assert_eq!(j["build_stats"]["records_read"], 56);
        assert_eq!(j["build_stats"]["rejected_records"], 21);
        assert_eq!(j["build_stats"]["rejected_fields"], 0);
        assert_eq!(j["build_stats"]["duplicates"], 3);
        let per_source: Vec<(String, u64)> = j["sources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| (s["name"].as_str().unwrap().to_string(), s["records"].as_u64().unwrap()))
            .collect();
        assert_eq!(
            per_source,
            [("examplecorp-2024", 8), ("infostealer-2025", 8), ("gamerforum-2019", 6), ("oldshop-2012", 10)]
                .map(|(n, c)| (n.to_string(), c))
        );
        let listed: BTreeSet<String> =
            j["files"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap().to_string()).collect();
        let on_disk: BTreeSet<String> = files.iter().filter(|f| *f != "manifest.json").cloned().collect();
        assert_eq!(listed, on_disk);
        for f in j["files"].as_array().unwrap() {
            let size = std::fs::metadata(idx.join(f["name"].as_str().unwrap())).unwrap().len();
            assert_eq!(f["size"], size, "{f}");
        }
    }
}

#[test]
fn verify_ok_then_every_flipped_file_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let (idx, _) = build_sample(tmp.path(), "idx", &[]);
    let o = run(&["verify", p(&idx)]);
    assert!(ok(&o).contains(": ok (8 files"), "{}", stdout(&o));
    let j: Value = serde_json::from_str(&ok(&run(&["--json", "verify", p(&idx)]))).unwrap();
    assert_eq!(j["ok"], true);
    assert_eq!(j["problems"], serde_json::json!([]));

    let names: Vec<String> =
        std::fs::read_dir(&idx).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(names.len(), 9, "8 index files and the manifest: {names:?}");
    for name in &names {
        let path = idx.join(name);
        let good = std::fs::read(&path).unwrap();
        for offset in [0, good.len() / 2, good.len() - 1] {
            let mut bad = good.clone();
            bad[offset] ^= 0x01;
            std::fs::write(&path, &bad).unwrap();
            let o = run(&["verify", p(&idx)]);
            assert_eq!(code(&o), 3, "{name} @ {offset}: {}", stdout(&o));
            let err = stderr(&o);
            assert!(err.contains(name.as_str()), "{name} @ {offset}: message does not name the file: {err}");
            let o = run(&["--json", "verify", p(&idx)]);
            assert_eq!(code(&o), 3);
            let j: Value = serde_json::from_str(&stdout(&o)).unwrap();
            assert_eq!(j["ok"], false);
            assert!(
                j["problems"].as_array().unwrap().iter().any(|p| p.as_str().unwrap().contains(name.as_str())),
                "{name}: {j}"
            );
        }
        std::fs::write(&path, &good).unwrap();
    }
    ok(&run(&["verify", p(&idx)]));
    // An extra file is named too.
    std::fs::write(idx.join("stray.bin"), b"x").unwrap();
    let o = run(&["verify", p(&idx)]);
    assert_eq!(code(&o), 3);
    assert!(stderr(&o).contains("stray.bin"), "{}", stderr(&o));
}

#[test]
fn existing_out_needs_force_and_force_replaces() {
    let tmp = tempfile::tempdir().unwrap();
    let (idx, _) = build_sample(tmp.path(), "idx", &[]);
    std::fs::write(idx.join("marker"), b"old").unwrap();
    let o = run(&["build", "--catalog", p(&sample_catalog()), "--out", p(&idx), "-q"]);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("--force"), "{}", stderr(&o));
    assert!(stderr(&o).contains("already exists"), "{}", stderr(&o));
    assert!(idx.join("marker").exists(), "the old directory is untouched");
    let o = run(&["--json", "build", "--catalog", p(&sample_catalog()), "--out", p(&idx), "-q"]);
    assert_eq!(code(&o), 1);
    let err: Value = serde_json::from_str(stderr(&o).trim()).unwrap();
    assert_eq!(err["code"], "build_error");
    assert!(err["error"].as_str().unwrap().contains("--force"));

    // --force refuses an index folder holding a file that is not part of the index.
    let o = run(&["build", "--catalog", p(&sample_catalog()), "--out", p(&idx), "-q", "--force"]);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("marker"), "{}", stderr(&o));
    assert!(idx.join("marker").exists(), "the old directory is untouched");
    std::fs::remove_file(idx.join("marker")).unwrap();

    // --force replaces an index (here with a hashed build).
    let salt = write_salt(tmp.path());
    let (_, s) = build_sample(tmp.path(), "idx", &["--force", "--hash", "sha256-128", "--salt-file", p(&salt)]);
    assert_sample_summary(&s, "sha256-128");
    let j: Value = serde_json::from_str(&ok(&run(&["info", "--json", p(&idx)]))).unwrap();
    assert_eq!(j["hash_mode"], "sha256-128");
    ok(&run(&["verify", p(&idx)]));
}

#[test]
fn catalog_errors_come_before_any_work() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("never");
    // Missing catalog.
    let o = run(&["build", "--catalog", p(&tmp.path().join("nope.json")), "--out", p(&out)]);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("nope.json"), "{}", stderr(&o));
    assert!(!out.exists());
    // A catalog pointing at a missing dump.
    let cat = tmp.path().join("cat");
    std::fs::create_dir(&cat).unwrap();
    std::fs::write(
        cat.join("catalog.json"),
        r#"{"sources": [{"id": 1, "name": "a-2024", "title": "A", "date": "2024-01-01",
            "description": "d", "files": [{"path": "missing-dump.csv"}]}]}"#,
    )
    .unwrap();
    let o = run(&["--json", "build", "--catalog", p(&cat.join("catalog.json")), "--out", p(&out)]);
    assert_eq!(code(&o), 1);
    let err: Value = serde_json::from_str(stderr(&o).trim()).expect("JSON error");
    assert!(err["error"].as_str().unwrap().contains("missing-dump.csv"), "{err}");
    assert!(err["code"].is_string());
    assert_eq!(err["details"], serde_json::json!({}));
    assert!(!out.exists(), "no output directory for a failed catalog");
    assert!(!tmp.path().join("never.rejects.jsonl").exists());
    let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left.len(), 1, "only the catalog dir: {left:?}");
    // Invalid catalog JSON.
    std::fs::write(cat.join("catalog.json"), "{not json").unwrap();
    let o = run(&["build", "--catalog", p(&cat.join("catalog.json")), "--out", p(&out)]);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("catalog.json"), "{}", stderr(&o));
    assert!(!out.exists());
}

#[test]
fn salt_errors_at_check() {
    let tmp = tempfile::tempdir().unwrap();
    let salt = write_salt(tmp.path());
    let wrong = tmp.path().join("wrong.salt");
    std::fs::write(&wrong, b"a-different-test-salt-0123456789").unwrap();
    let short = tmp.path().join("short.salt");
    std::fs::write(&short, b"short\n").unwrap();
    let (hashed, _) = build_sample(tmp.path(), "hashed", &["--hash", "sha256", "--salt-file", p(&salt)]);
    let (plain, _) = build_sample(tmp.path(), "plain", &[]);

    let absent = tmp.path().join("absent.salt");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--index", p(&hashed), "--salt-file", p(&wrong)], "salt does not match"),
        (vec!["--index", p(&hashed)], "opens only with the salt it was built with (give it with --salt-file)"),
        (vec!["--index", p(&plain), "--salt-file", p(&salt)], "takes no salt: open it without one (drop --salt-file)"),
        (vec!["--index", p(&hashed), "--salt-file", p(&short)], "at least 16"),
        (vec!["--index", p(&hashed), "--salt-file", p(&absent)], "absent.salt"),
    ];
    for (args, fragment) in cases {
        let mut all = vec!["check"];
        all.extend(&args);
        all.extend(["--email", "user@example.com"]);
        let o = run(&all);
        assert_eq!(code(&o), 1, "{args:?}");
        assert!(o.stdout.is_empty(), "{args:?}: no result on error");
        let err = stderr(&o);
        assert!(err.starts_with("error: ") && err.contains(fragment), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "one sentence: {err}");

        let mut all = vec!["--json", "check"];
        all.extend(&args);
        all.extend(["--email", "user@example.com"]);
        let o = run(&all);
        assert_eq!(code(&o), 1);
        let err: Value = serde_json::from_str(stderr(&o).trim()).expect("JSON error object");
        let obj = err.as_object().unwrap();
        assert_eq!(obj.keys().map(String::as_str).collect::<Vec<_>>(), ["code", "details", "error"]);
        assert!(err["error"].as_str().unwrap().contains(fragment), "{err}");
        assert!(!err["code"].as_str().unwrap().is_empty());
        assert!(err["details"].is_object());
    }
    // Wrong salt is an index error code in JSON.
    let o = run(&["--json", "check", "--index", p(&hashed), "--salt-file", p(&wrong), "--email", "x@y.z"]);
    let err: Value = serde_json::from_str(stderr(&o).trim()).unwrap();
    assert_eq!(err["code"], "index_error");
    // Building a hashed index without a salt, or plain with one, fails before any output.
    let o = run(&["build", "--catalog", p(&sample_catalog()), "--out", p(&tmp.path().join("x1")), "--hash", "xxh3-64"]);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("needs a salt"), "{}", stderr(&o));
    assert!(stderr(&o).contains("--salt-file"), "the CLI names its flag: {}", stderr(&o));
    let o =
        run(&["build", "--catalog", p(&sample_catalog()), "--out", p(&tmp.path().join("x2")), "--salt-file", p(&salt)]);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("does not use a salt"), "{}", stderr(&o));
    assert!(!tmp.path().join("x1").exists() && !tmp.path().join("x2").exists());
}

#[test]
fn usage_errors_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let (idx, _) = build_sample(tmp.path(), "idx", &[]);
    for args in [
        vec!["check", "--index", p(&idx), "--email", "a@b.c", "--username", "x"],
        vec!["build", "--catalog", "c.json"],
        vec!["build", "--catalog", "c.json", "--out", "o", "--hash", "md5"],
        vec!["frobnicate"],
        vec!["check", "--index", p(&idx), "--batch", "f", "--kind", "phone"],
    ] {
        let o = run(&args);
        assert_eq!(code(&o), 2, "{args:?}: {}", stderr(&o));
        assert!(!stderr(&o).is_empty());
    }
}

/// `--kind` says what `--key` or a batch line is; with `--email` or `--username` it would be
/// ignored, so it is a usage error rather than silently dropped.
#[test]
fn kind_with_email_or_username_is_a_usage_error() {
    let tmp = tempfile::tempdir().unwrap();
    let (idx, _) = build_sample(tmp.path(), "idx", &[]);
    for command in ["check", "records"] {
        for (flag, value) in [("--username", "darkstar99"), ("--email", "user@example.com")] {
            let o = run(&[command, "--index", p(&idx), flag, value, "--kind", "email"]);
            assert_eq!(code(&o), 2, "{command} {flag}: {}", stderr(&o));
            assert!(stderr(&o).contains("cannot be used with '--kind"), "{command} {flag}: {}", stderr(&o));
        }
        // Without --kind, and with --kind for a key, the same commands work.
        ok(&run(&[command, "--index", p(&idx), "--username", "darkstar99"]));
        ok(&run(&[command, "--index", p(&idx), "--key", &to_hex(b"darkstar99"), "--kind", "username"]));
    }
}

/// Each command's help describes only flags it has, and `--json` says it switches the output
/// of `build`, `info` and `verify`, not only errors.
#[test]
fn help_texts_describe_what_each_flag_does() {
    let help = |args: &[&str]| ok(&run(args));
    let records = help(&["records", "--help"]);
    assert!(!records.contains("batch"), "records has no --batch:\n{records}");
    assert!(records.contains("--kind"), "{records}");
    let check = help(&["check", "--help"]);
    assert!(check.contains("--batch") && check.contains("--kind"), "{check}");
    for args in [&["--help"][..], &["build", "--help"], &["info", "--help"], &["verify", "--help"]] {
        let text = help(args);
        let json = text.split("--json").nth(1).unwrap_or_default();
        assert!(json.contains("`build`, `info` and `verify` print JSON"), "{args:?}:\n{text}");
    }
}

#[test]
fn check_without_a_query_is_a_usage_error() {
    let tmp = tempfile::tempdir().unwrap();
    let (idx, _) = build_sample(tmp.path(), "idx", &[]);
    let o = run(&["check", "--index", p(&idx)]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
}

/// The README's table of bad lines.
const BAD_LINES: &[(&str, u64)] = &[
    ("examplecorp.csv", 11),
    ("examplecorp.csv", 12),
    ("examplecorp.csv", 13),
    ("examplecorp.csv", 15),
    ("examplecorp.csv", 16),
    ("stealer-logs.jsonl", 9),
    ("stealer-logs.jsonl", 10),
    ("stealer-logs.jsonl", 11),
    ("stealer-logs.jsonl", 13),
    ("gamerforum.csv", 7),
    ("gamerforum.csv", 8),
    ("gamerforum.csv", 9),
    ("gamerforum.csv", 10),
    ("gamerforum.csv", 11),
    ("oldshop-users.jsonl", 5),
    ("oldshop-users.jsonl", 6),
    ("oldshop-cracked.txt", 6),
    ("oldshop-cracked.txt", 7),
    ("oldshop-cracked.txt", 8),
    ("oldshop-cracked.txt", 9),
    ("oldshop-cracked.txt", 13),
];

#[test]
fn rejects_file_lists_every_bad_line() {
    let tmp = tempfile::tempdir().unwrap();
    let rejects = tmp.path().join("custom-rejects.jsonl");
    let (_, s) = build_sample(tmp.path(), "idx", &["--rejects", p(&rejects)]);
    assert_eq!(Path::new(s["rejects"].as_str().unwrap()), rejects);
    assert!(!tmp.path().join("idx.rejects.jsonl").exists());
    let text = std::fs::read_to_string(&rejects).unwrap();
    let rows: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).expect("JSON Lines")).collect();
    let expected_count = s["rejected_records"].as_u64().unwrap() + s["rejected_fields"].as_u64().unwrap();
    assert_eq!(rows.len() as u64, expected_count);
    let mut got: Vec<(String, u64)> = Vec::new();
    for r in &rows {
        assert!(r["reason"].as_str().is_some_and(|x| !x.is_empty()), "{r}");
        assert!(r["raw"].is_string(), "{r}");
        got.push((r["file"].as_str().unwrap().to_string(), r["line"].as_u64().unwrap()));
    }
    let mut want: Vec<(String, u64)> = BAD_LINES.iter().map(|(f, l)| (f.to_string(), *l)).collect();
    got.sort();
    want.sort();
    assert_eq!(got, want);
    let find = |file: &str, line: u64| rows.iter().find(|r| r["file"] == file && r["line"] == line).unwrap();
    // Raw bytes are escaped, invalid UTF-8 included.
    let r = find("examplecorp.csv", 11);
    assert!(r["raw"].as_str().unwrap().contains("\\xFF") || r["raw"].as_str().unwrap().contains("\\xff"), "{r}");
    assert!(r["reason"].as_str().unwrap().contains("UTF-8"), "{r}");
    let r = find("examplecorp.csv", 13);
    assert!(r["reason"].as_str().unwrap().contains("expected 7 fields, found 3"), "{r}");
    let r = find("stealer-logs.jsonl", 10);
    assert!(r["raw"].as_str().unwrap().contains("a@@b.com"), "{r}");
    let r = find("oldshop-cracked.txt", 8);
    assert!(r["raw"].as_str().unwrap().to_ascii_lowercase().contains("\\xe9"), "{r}");
}

#[test]
fn gzip_sample_builds_like_the_plain_file() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("gz");
    let cat = repo().join("testdata/sample-gz/catalog.json");
    let s: Value =
        serde_json::from_str(&ok(&run(&["--json", "build", "--catalog", p(&cat), "--out", p(&out), "-q"]))).unwrap();
    assert_eq!(s["records_read"], 14);
    assert_eq!(s["kept"], 8);
    assert_eq!(s["rejected_records"], 5);
    assert_eq!(s["rejected_fields"], 0);
    assert_eq!(s["duplicates"], 1);
    assert_eq!(s["file_errors"], 0);
    assert_eq!(s["sources"][0]["name"], "examplecorp-2024");
    assert_eq!(s["sources"][0]["kept"], 8);
    assert_eq!(
        s["input_bytes"],
        std::fs::metadata(repo().join("testdata/sample-gz/examplecorp.csv.gz")).unwrap().len()
    );
    let r = check_json(&["--index", p(&out), "--email", "USER@example.com"]);
    assert_breaches(
        &r,
        "USER@example.com",
        "email",
        &[("examplecorp-2024", "high", 20, 1, &["email", "password_hash", "password_type", "full_name"])],
    );
    // The rejects name the .gz file, with the same line numbers as the plain file.
    let rejects = std::fs::read_to_string(tmp.path().join("gz.rejects.jsonl")).unwrap();
    let lines: Vec<u64> =
        rejects.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()["line"].as_u64().unwrap()).collect();
    assert_eq!(lines, [11, 12, 13, 15, 16]);
}

/// A catalog of one CSV dump with a bad line, in `dir`.
fn small_catalog(dir: &Path) -> PathBuf {
    std::fs::write(dir.join("d.csv"), "email,password\nalice@example.com,hunter2\nnot-an-email,Secr3tPass\n").unwrap();
    let catalog = serde_json::json!({"sources": [{"id": 1, "name": "s1", "date": "2024-01-01",
        "files": [{"path": "d.csv"}]}]});
    let path = dir.join("catalog.json");
    std::fs::write(&path, catalog.to_string()).unwrap();
    path
}

/// A user's folder (`documents/letter.txt`) and file (`file.txt`) in `dir`: outputs that
/// `--force` must never replace.
fn users_files(dir: &Path) -> (PathBuf, PathBuf) {
    let user = dir.join("documents");
    std::fs::create_dir(&user).unwrap();
    std::fs::write(user.join("letter.txt"), b"dear").unwrap();
    let file = dir.join("file.txt");
    std::fs::write(&file, b"mine").unwrap();
    (user, file)
}

/// The user's folder and file of [`users_files`] are as they were written.
fn assert_users_files_intact(user: &Path, file: &Path) {
    assert_eq!(std::fs::read(user.join("letter.txt")).unwrap(), b"dear");
    assert_eq!(std::fs::read(file).unwrap(), b"mine");
}

#[test]
fn force_replaces_only_an_index() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let catalog = small_catalog(&data);
    let (user, file) = users_files(tmp.path());
    for (out, expected) in [
        (&user, "not a breachdex index"),
        (&file, "is a regular file, not a breachdex index"),
        (&data, "holds the build's input"),
    ] {
        let o = run(&["build", "--catalog", p(&catalog), "--out", p(out), "-q", "--force"]);
        assert_eq!(code(&o), 1, "{}", stderr(&o));
        assert!(stderr(&o).contains(expected), "{}", stderr(&o));
    }
    assert_users_files_intact(&user, &file);
    assert!(data.join("d.csv").exists() && catalog.exists());
    let idx = tmp.path().join("idx");
    ok(&run(&["build", "--catalog", p(&catalog), "--out", p(&idx), "-q"]));
    ok(&run(&["build", "--catalog", p(&catalog), "--out", p(&idx), "-q", "--force"]));
    ok(&run(&["verify", p(&idx)]));
}

#[test]
fn memory_beyond_the_machine_and_a_missing_parent_fail_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let catalog = small_catalog(tmp.path());
    let out = tmp.path().join("idx");
    let o = run(&["build", "--catalog", p(&catalog), "--out", p(&out), "-q", "--memory", "100T"]);
    if Path::new("/proc/meminfo").exists() {
        assert_eq!(code(&o), 1, "{}", stderr(&o));
        let err = stderr(&o);
        assert!(err.contains("100 TiB") && err.contains("this machine's"), "{err}");
        assert!(err.contains("--memory"), "the CLI names its flag: {err}");
        assert!(!out.exists());
    }
    let missing = tmp.path().join("missing/parent/dir");
    let o = run(&["build", "--catalog", p(&catalog), "--out", p(&missing), "-q"]);
    assert_eq!(code(&o), 1);
    let parent = tmp.path().join("missing/parent");
    assert!(stderr(&o).contains(&format!("its parent folder {} does not exist", parent.display())), "{}", stderr(&o));
    assert!(!stderr(&o).contains(".tmp-"), "{}", stderr(&o));
}

#[test]
fn hashed_rejects_leave_out_raw_bytes_unless_rejects_raw() {
    let tmp = tempfile::tempdir().unwrap();
    let catalog = small_catalog(tmp.path());
    let salt = write_salt(tmp.path());
    let out = tmp.path().join("idx");
    let args = ["--json", "build", "--catalog", p(&catalog), "--out", p(&out), "-q", "--hash", "sha256", "--salt-file"];
    let mut hashed = args.to_vec();
    hashed.push(p(&salt));
    let s: Value = serde_json::from_str(&ok(&run(&hashed))).unwrap();
    assert_eq!(s["rejects_raw"], false);
    let rejects = std::fs::read_to_string(s["rejects"].as_str().unwrap()).unwrap();
    assert!(!rejects.contains("not-an-email") && !rejects.contains("Secr3tPass"), "{rejects}");
    hashed.extend(["--force", "--rejects-raw"]);
    let s: Value = serde_json::from_str(&ok(&run(&hashed))).unwrap();
    assert_eq!(s["rejects_raw"], true);
    let rejects = std::fs::read_to_string(s["rejects"].as_str().unwrap()).unwrap();
    assert!(rejects.contains("Secr3tPass"), "{rejects}");
    // The text summary says where the raw bytes went.
    let o = run(&[
        "build",
        "--catalog",
        p(&catalog),
        "--out",
        p(&out),
        "-q",
        "--force",
        "--hash",
        "sha256",
        "--salt-file",
        p(&salt),
    ]);
    assert!(ok(&o).contains("raw bytes left out"), "{}", stdout(&o));
}

#[test]
fn a_path_that_is_not_an_index_is_an_error_for_every_command() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("missing");
    let file = tmp.path().join("a-file");
    std::fs::write(&file, "not an index").unwrap();
    let folder = tmp.path().join("a-folder");
    std::fs::create_dir(&folder).unwrap();
    std::fs::write(folder.join("notes.txt"), "mine").unwrap();
    for path in [&missing, &file, &folder] {
        let commands: [Vec<&str>; 4] = [
            vec!["check", "--index", p(path), "--email", "user@example.com"],
            vec!["records", "--index", p(path), "--email", "user@example.com"],
            vec!["info", p(path)],
            vec!["verify", p(path)],
        ];
        for args in commands {
            let o = run(&args);
            let err = stderr(&o);
            assert_eq!(code(&o), 1, "{args:?}: an error, not damage (exit 3): {err}");
            assert!(err.contains("not a breachdex index"), "{args:?}: {err}");
            assert_eq!(err.matches(p(path)).count(), 1, "{args:?}: the path once: {err}");
            let mut json = vec!["--json"];
            json.extend(&args);
            let o = run(&json);
            assert_eq!(code(&o), 1, "{json:?}");
            let obj: Value = serde_json::from_str(stderr(&o).trim()).expect("JSON error object");
            assert_eq!(obj["code"], "index_error", "{obj}");
        }
    }
    assert_eq!(std::fs::read_to_string(folder.join("notes.txt")).unwrap(), "mine");
}

#[test]
fn open_errors_name_the_index_path_once() {
    let tmp = tempfile::tempdir().unwrap();
    let (out, _) = build_sample(tmp.path(), "idx", &[]);
    let manifest = out.join("manifest.json");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, text.replacen("\"records\"", "\"recordz\"", 1)).unwrap();
    for args in [vec!["check", "--index", p(&out), "--email", "user@example.com"], vec!["info", p(&out)]] {
        let o = run(&args);
        assert_eq!(code(&o), 1, "{args:?}");
        let err = stderr(&o);
        assert_eq!(
            err.trim_end(),
            format!("error: {}: manifest.json: checksum mismatch: the manifest is damaged", out.display()),
            "{args:?}"
        );
    }
    let o = run(&["verify", p(&out)]);
    assert_eq!(code(&o), 3, "a damaged manifest is damage: {}", stderr(&o));
}

fn fixture(name: &str) -> PathBuf {
    repo().join("testdata/fixtures").join(name)
}

/// Copies the committed fixture `name` into `dir` (the fixtures are never modified).
fn copy_fixture(name: &str, dir: &Path) -> PathBuf {
    let to = dir.join(name);
    std::fs::create_dir(&to).unwrap();
    for entry in std::fs::read_dir(fixture(name)).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
    to
}

/// Every file of an index folder with its bytes.
fn folder_bytes(dir: &Path) -> Vec<(std::ffi::OsString, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .map(|e| (e.file_name(), std::fs::read(e.path()).unwrap()))
        .collect();
    files.sort();
    files
}

#[test]
fn upgrade_converts_a_v1_index_and_replaces_only_an_index_with_force() {
    let tmp = tempfile::tempdir().unwrap();
    let old = copy_fixture("v1-plain", tmp.path());
    let before = folder_bytes(&old);
    let new = tmp.path().join("new");
    let report: Value =
        serde_json::from_str(&ok(&run(&["--json", "upgrade", p(&old), p(&new), "-q"]))).expect("one JSON object");
    assert_eq!((report["rows"].as_u64(), report["checked_ids"].as_u64()), (Some(32), Some(32)));
    assert!(report["bytes_after"].as_u64() < report["bytes_before"].as_u64(), "{report}");
    ok(&run(&["verify", p(&new)]));
    let info: Value = serde_json::from_str(&ok(&run(&["info", "--json", p(&new)]))).unwrap();
    assert_eq!(info["format_version"], 2, "{info}");
    let old_check = check_json(&["--index", p(&old), "--email", "user@example.com"]);
    let new_check = check_json(&["--index", p(&new), "--email", "user@example.com"]);
    assert_eq!(new_check, old_check);
    assert_eq!(folder_bytes(&old), before, "the old index is only read");

    // An existing index is replaced only with --force.
    let o = run(&["upgrade", p(&old), p(&new), "-q"]);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("already exists") && stderr(&o).contains("--force"), "{}", stderr(&o));
    let text = ok(&run(&["upgrade", p(&old), p(&new), "-q", "--force"]));
    assert!(text.contains("upgraded") && text.contains("32"), "{text}");
    ok(&run(&["verify", p(&new)]));

    // Anything that is not an index is never replaced, nor the old index itself.
    let (user, file) = users_files(tmp.path());
    for (out, expected) in [
        (&user, "not a breachdex index"),
        (&file, "is a regular file, not a breachdex index"),
        (&old, "holds the build's input"),
    ] {
        let o = run(&["--json", "upgrade", p(&old), p(out), "-q", "--force"]);
        assert_eq!(code(&o), 1, "{}", stderr(&o));
        let err: Value = serde_json::from_str(stderr(&o).trim()).unwrap();
        assert!(err["error"].as_str().unwrap().contains(expected), "{err}");
    }
    assert_users_files_intact(&user, &file);
    assert_eq!(folder_bytes(&old), before);
}

#[test]
fn upgrade_refuses_a_v2_index_and_a_hashed_index_without_its_salt() {
    let tmp = tempfile::tempdir().unwrap();
    let new = tmp.path().join("new");
    let o = run(&["upgrade", p(&fixture("v2-plain")), p(&new), "-q"]);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("already a format version 2 index"), "{}", stderr(&o));
    assert!(!new.exists());

    let o = run(&["--json", "upgrade", p(&fixture("v1-sha256")), p(&new), "-q"]);
    assert_eq!(code(&o), 1);
    let err: Value = serde_json::from_str(stderr(&o).trim()).unwrap();
    let message = err["error"].as_str().unwrap();
    assert!(message.contains("salt") && message.contains("--salt-file"), "{message}");
    assert!(!new.exists());
    let salt = fixture("v1-sha256.salt");
    ok(&run(&["upgrade", p(&fixture("v1-sha256")), p(&new), "-q", "--salt-file", p(&salt)]));
    ok(&run(&["verify", p(&new)]));
}

#[test]
fn upgrade_of_a_damaged_v1_index_names_the_row() {
    let tmp = tempfile::tempdir().unwrap();
    let old = copy_fixture("v1-plain", tmp.path());
    // Row 7's document id: rows are 32 bytes after the 64-byte header, the id first.
    let rows = old.join("records.rows");
    let mut bytes = std::fs::read(&rows).unwrap();
    bytes[64 + 32 * 7 + 3] ^= 0x10;
    std::fs::write(&rows, &bytes).unwrap();
    let new = tmp.path().join("new");
    let o = run(&["upgrade", p(&old), p(&new), "-q"]);
    assert_eq!(code(&o), 1);
    let err = stderr(&o);
    assert!(err.contains("records.rows") && err.contains("row 7: its document id"), "{err}");
    assert!(err.contains("verify"), "{err}");
    assert!(!new.exists(), "nothing at the output");
    let leftovers: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(leftovers.len(), 1, "no staging folder left behind: {leftovers:?}");
}

/// An upgrade killed at any moment leaves the old index as it was and, at the output,
/// either nothing or (when the kill came after the rename into place) a complete index
/// that verifies: never a partial one. The kill lands at increasing delays, so some land mid-way.
#[test]
fn a_killed_upgrade_leaves_old_intact_and_no_partial_index() {
    let tmp = tempfile::tempdir().unwrap();
    let old = copy_fixture("v1-plain", tmp.path());
    let before = folder_bytes(&old);
    let (mut killed, mut finished) = (0, 0);
    for step in 0..24u64 {
        let delay_ms = step * 8;
        let new = tmp.path().join(format!("new-{delay_ms}"));
        let mut child = bin().args(["upgrade", p(&old), p(&new), "-q"]).spawn().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill();
        let status = child.wait().unwrap();
        if status.success() {
            finished += 1;
        } else {
            killed += 1;
        }
        // A kill after the rename (while the report is printed) leaves the new index,
        // complete; any earlier kill leaves nothing.
        if status.success() || std::fs::symlink_metadata(&new).is_ok() {
            ok(&run(&["verify", p(&new)]));
        }
        assert_eq!(folder_bytes(&old), before, "the old index is only read");
    }
    eprintln!("{killed} upgrades killed, {finished} finished before the kill");
    assert_eq!(killed + finished, 24);
}

/// `add`, `remove`, `compact`, `changes` and `info` of an updated index.
#[path = "cli/update.rs"]
mod update;
