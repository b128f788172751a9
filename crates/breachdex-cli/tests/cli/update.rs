//! The incremental update commands against the real binary: `add`, `remove` (by source,
//! identity, identities file and key), `compact`, `changes` and `info` of an updated
//! index answer as the design says, and every refusal names the file or flag and says
//! what to do, leaving the index as it was.

use super::*;

fn week2_dir() -> PathBuf {
    repo().join("testdata/sample/week2")
}

fn week2_catalog() -> PathBuf {
    week2_dir().join("catalog.json")
}

/// Runs `--json ARGS`, expects success, parses the one JSON object printed.
#[track_caller]
fn json(args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    serde_json::from_str(&ok(&run(&all))).expect("one JSON object")
}

/// Runs ARGS, expects exit 1 and returns stderr.
#[track_caller]
fn fails(args: &[&str]) -> String {
    let o = run(args);
    assert_eq!(code(&o), 1, "{args:?} must fail with exit 1\nstdout: {}\nstderr: {}", stdout(&o), stderr(&o));
    stderr(&o)
}

/// The breach source names `check` gives for an e-mail.
fn sources_of(index: &Path, email: &str, salt: Option<&Path>) -> Vec<String> {
    let mut args = vec!["--index", p(index), "--email", email];
    if let Some(salt) = salt {
        args.extend(["--salt-file", p(salt)]);
    }
    let mut n = names(&check_json(&args));
    n.sort();
    n
}

/// The JSON lines of `changes --since G`.
fn changes(index: &Path, since: u64, salt: Option<&Path>) -> Vec<Value> {
    let since = since.to_string();
    let mut args = vec!["changes", "--index", p(index), "--since", &since];
    if let Some(salt) = salt {
        args.extend(["--salt-file", p(salt)]);
    }
    ok(&run(&args)).lines().map(|l| serde_json::from_str(l).expect("one JSON object a line")).collect()
}

/// The e-mails of a JSON-lines dump of week 2.
fn week2_emails(file: &str) -> Vec<String> {
    std::fs::read_to_string(week2_dir().join(file))
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok()?["email"].as_str().map(str::to_string))
        .collect()
}

/// An edit of the week-2 catalog's JSON.
type CatalogEdit = fn(&mut Value);

/// The week-2 catalog with its dumps copied into `dir/name`, edited by `edit`.
fn edited_week2(dir: &Path, name: &str, edit: impl FnOnce(&mut Value)) -> PathBuf {
    let to = dir.join(name);
    std::fs::create_dir(&to).unwrap();
    for entry in std::fs::read_dir(week2_dir()).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
    let mut catalog: Value = serde_json::from_str(&std::fs::read_to_string(week2_catalog()).unwrap()).unwrap();
    edit(&mut catalog);
    let path = to.join("catalog.json");
    std::fs::write(&path, serde_json::to_string(&catalog).unwrap()).unwrap();
    path
}

#[test]
fn add_remove_compact_and_info_of_the_weekly_routine() {
    let tmp = tempfile::tempdir().unwrap();
    let (index, _) = build_sample(tmp.path(), "index", &[]);
    let week2 = week2_catalog();
    let traveller = "traveller@example.org";
    assert!(week2_emails("travelsite.jsonl").iter().any(|e| e == traveller), "the dump holds {traveller}");
    assert!(sources_of(&index, traveller, None).is_empty(), "{traveller} is new in week 2");

    // add: every record read is accounted for, and the new source answers at once.
    let a = json(&["add", "--index", p(&index), "--catalog", p(&week2), "--quiet"]);
    assert_eq!(a["generation"], 2, "{a}");
    assert_eq!(a["index"], p(&index), "{a}");
    assert!(a["segment"].as_str().is_some_and(|s| s.starts_with("segments/")), "{a}");
    let counted: u64 = ["added", "rejected_records", "duplicates", "duplicates_across_segments", "suppressed"]
        .iter()
        .map(|k| a[*k].as_u64().unwrap_or_else(|| panic!("{k} is a count: {a}")))
        .sum();
    assert_eq!(a["records_read"].as_u64(), Some(counted), "every record read is counted once: {a}");
    assert!(a["gained"].as_u64().unwrap() >= a["added"].as_u64().unwrap().min(1), "{a}");
    assert_eq!(sources_of(&index, traveller, None), ["travelsite-2026"]);
    let gained = changes(&index, 1, None);
    assert!(
        gained.iter().any(|c| c["change"] == "gained"
            && c["key"] == traveller
            && c["kind"] == "email"
            && c["source"] == "travelsite-2026"
            && c["generation"] == 2
            && c["source_id"] == 5),
        "{gained:?}"
    );
    assert_eq!(gained.len() as u64, a["gained"].as_u64().unwrap(), "one line per gained pair");

    // remove an identity: its records stop being answered; the text says compact drops them.
    let o = run(&["remove", "--index", p(&index), "--identity", traveller]);
    let text = ok(&o);
    assert!(text.starts_with("removed in generation 3: "), "{text}");
    assert!(text.contains("breachdex compact"), "{text}");
    assert!(sources_of(&index, traveller, None).is_empty());
    let lost: Vec<Value> = changes(&index, 2, None);
    assert!(lost.iter().all(|c| c["generation"] == 3 && c["change"] == "lost"), "{lost:?}");
    assert!(lost.iter().any(|c| c["key"] == traveller), "{lost:?}");

    // info of the updated index: generation, two segments, history of three steps.
    let info = json(&["info", p(&index)]);
    assert_eq!(info["format"], "breachdex-generation", "{info}");
    assert_eq!(info["generation"], 3);
    assert_eq!(info["operation"], "remove");
    assert_eq!(info["segments"].as_array().map(Vec::len), Some(2), "{info}");
    let ops: Vec<&str> = info["history"].as_array().unwrap().iter().map(|h| h["operation"].as_str().unwrap()).collect();
    assert_eq!(ops, ["add", "remove"], "the history of the updates");
    let text = ok(&run(&["info", p(&index)]));
    for label in ["generation     3 (remove", "segments       2", "travelsite-2026", "history"] {
        assert!(text.contains(label), "info text has '{label}': {text}");
    }

    // compact: one segment, the same answers, the removed records gone from disk.
    let before: Vec<Vec<String>> =
        ["user@example.com", traveller, "optout@example.net"].iter().map(|e| sources_of(&index, e, None)).collect();
    let c = json(&["compact", "--index", p(&index), "--quiet"]);
    assert_eq!(c["generation"], 4, "{c}");
    assert_eq!(c["segments_merged"], 2, "{c}");
    assert!(c["records_dropped"].as_u64().unwrap() >= 1, "the removed record leaves the disk: {c}");
    let after: Vec<Vec<String>> =
        ["user@example.com", traveller, "optout@example.net"].iter().map(|e| sources_of(&index, e, None)).collect();
    assert_eq!(before, after, "compaction changes no answer");
    assert_eq!(json(&["info", p(&index)])["segments"].as_array().map(Vec::len), Some(1));
    ok(&run(&["verify", p(&index)]));
    let text = ok(&run(&["compact", "--index", p(&index), "--quiet"]));
    assert!(text.contains("already compact"), "{text}");
    let again = json(&["compact", "--index", p(&index), "--quiet"]);
    assert!(again["generation"].is_null(), "nothing to compact publishes nothing: {again}");
}

#[test]
fn remove_by_source_identities_file_and_key() {
    let tmp = tempfile::tempdir().unwrap();
    let (index, _) = build_sample(tmp.path(), "index", &[]);

    // --source: the source stops answering, and the generation lists it as removed.
    assert!(sources_of(&index, "user@example.com", None).contains(&"gamerforum-2019".to_string()));
    let r = json(&["remove", "--index", p(&index), "--source", "gamerforum-2019"]);
    assert_eq!(r["generation"], 2, "{r}");
    assert!(r["records_removed"].as_u64().unwrap() > 0, "{r}");
    assert!(!sources_of(&index, "user@example.com", None).contains(&"gamerforum-2019".to_string()));
    let info = json(&["info", p(&index)]);
    assert_eq!(info["removed_sources"][0]["name"], "gamerforum-2019", "{info}");

    // --identities FILE: one a line, blank lines skipped, CRLF accepted.
    let file = tmp.path().join("optouts.txt");
    std::fs::write(&file, "user@example.com\r\n\n  darkstar99  \n").unwrap();
    assert!(!sources_of(&index, "user@example.com", None).is_empty());
    let r = json(&["remove", "--index", p(&index), "--identities", p(&file)]);
    assert_eq!(r["generation"], 3, "{r}");
    assert_eq!(r["keys_suppressed"], 2, "one key per identity: {r}");
    assert!(sources_of(&index, "user@example.com", None).is_empty());
    let r = check_json(&["--index", p(&index), "--username", "darkstar99"]);
    assert_eq!(r["total_breaches"], 0, "{r}");

    // --key with --kind email: in plain mode, the normalized e-mail's bytes.
    let mueller = "müller@xn--bcher-kva.de";
    assert!(!sources_of(&index, mueller, None).is_empty());
    let hex = to_hex(mueller.as_bytes());
    let r = check_json(&["--index", p(&index), "--key", &hex, "--kind", "username"]);
    assert_eq!(r["total_breaches"], 0, "not a username key: {r}");
    let r = json(&["remove", "--index", p(&index), "--key", &hex, "--kind", "email"]);
    assert_eq!(r["generation"], 4, "{r}");
    assert!(sources_of(&index, mueller, None).is_empty());

    // nothing to remove: exit 0, says so, publishes nothing.
    let o = run(&["remove", "--index", p(&index), "--identity", "user@example.com"]);
    let text = ok(&o);
    assert!(text.contains("nothing to remove"), "{text}");
    let r = json(&["remove", "--index", p(&index), "--identities", p(&file)]);
    assert!(r["generation"].is_null(), "{r}");
    assert_eq!(json(&["info", p(&index)])["generation"], 4);
}

#[test]
fn hashed_index_needs_its_salt_for_every_update_command() {
    let tmp = tempfile::tempdir().unwrap();
    let salt = write_salt(tmp.path());
    let (index, _) = build_sample(tmp.path(), "hashed", &["--hash", "sha256", "--salt-file", p(&salt)]);
    let wrong = tmp.path().join("wrong-salt.txt");
    std::fs::write(&wrong, b"another-salt-that-is-long-enough-0123").unwrap();
    let week2 = week2_catalog();
    let commands: [Vec<&str>; 4] = [
        vec!["add", "--index", p(&index), "--catalog", p(&week2), "--quiet"],
        vec!["remove", "--index", p(&index), "--identity", "user@example.com"],
        vec!["compact", "--index", p(&index), "--quiet"],
        vec!["changes", "--index", p(&index), "--since", "1"],
    ];
    for args in &commands {
        let err = fails(args);
        assert!(err.contains(p(&index)), "{args:?} names the index: {err}");
        assert!(err.contains("--salt-file"), "{args:?} names the flag: {err}");
        let mut with_wrong = args.clone();
        with_wrong.extend(["--salt-file", p(&wrong)]);
        let err = fails(&with_wrong);
        assert!(err.contains("salt does not match"), "{args:?}: {err}");
        assert!(err.contains("--salt-file"), "{args:?} names the flag: {err}");
        let mut json_args = vec!["--json"];
        json_args.extend(&with_wrong);
        let o = run(&json_args);
        let obj: Value = serde_json::from_str(stderr(&o).trim()).expect("JSON error object");
        assert_eq!(obj["code"], "index_error", "{obj}");
    }
    assert_eq!(json(&["info", p(&index)])["generation"], Value::Null, "still the build");

    // with the salt: the derived key of an identity removes it; changes show no identifier.
    let r = json(&["remove", "--index", p(&index), "--salt-file", p(&salt), "--identity", "user@example.com"]);
    assert_eq!(r["generation"], 2, "{r}");
    assert!(sources_of(&index, "user@example.com", Some(&salt)).is_empty());
    let lost = changes(&index, 1, Some(&salt));
    assert!(!lost.is_empty());
    assert!(lost.iter().all(|c| !c.to_string().contains("user@example.com")), "{lost:?}");

    // a plain index takes no salt.
    let (plain, _) = build_sample(tmp.path(), "plain", &[]);
    let err = fails(&["add", "--index", p(&plain), "--catalog", p(&week2), "--salt-file", p(&salt), "--quiet"]);
    assert!(err.contains("takes no salt") && err.contains("drop --salt-file"), "{err}");
}

#[test]
fn a_catalog_may_not_change_a_known_source_nor_bring_back_a_removed_one() {
    let tmp = tempfile::tempdir().unwrap();
    let (index, _) = build_sample(tmp.path(), "index", &[]);
    // week 2's second source is a known one (infostealer-2025, id 2).
    let edits: [(&str, CatalogEdit, &str); 3] = [
        ("title", |c| c["sources"][1]["title"] = "Renamed".into(), "changes title"),
        ("id", |c| c["sources"][1]["id"] = 9.into(), "keeps its id and name"),
        ("name", |c| c["sources"][1]["name"] = "infostealer-x".into(), "keeps its id and name"),
    ];
    for (name, edit, message) in edits {
        let catalog = edited_week2(tmp.path(), name, edit);
        let err = fails(&["add", "--index", p(&index), "--catalog", p(&catalog), "--quiet"]);
        assert!(err.contains(p(&catalog)), "{name}: names the catalog: {err}");
        assert!(err.contains("infostealer-2025") && err.contains(message), "{name}: {err}");
        assert!(err.contains('('), "{name}: says what to do: {err}");
    }
    assert!(json(&["info", p(&index)])["generation"].is_null(), "nothing was published");

    ok(&run(&["remove", "--index", p(&index), "--source", "gamerforum-2019"]));
    let reuse: [(&str, CatalogEdit); 2] = [
        ("reuse-id", |c| c["sources"][0]["id"] = 3.into()),
        ("reuse-name", |c| c["sources"][0]["name"] = "gamerforum-2019".into()),
    ];
    for (name, edit) in reuse {
        let catalog = edited_week2(tmp.path(), name, edit);
        let err = fails(&["add", "--index", p(&index), "--catalog", p(&catalog), "--quiet"]);
        assert!(err.contains(p(&catalog)), "{name}: names the catalog: {err}");
        assert!(err.contains("removed in generation 2") && err.contains("new name and id"), "{name}: {err}");
    }
    let err = fails(&["remove", "--index", p(&index), "--source", "gamerforum-2019"]);
    assert!(err.contains("already removed in generation 2"), "{err}");
    let err = fails(&["remove", "--index", p(&index), "--source", "no-such-source"]);
    assert!(err.contains("no source named 'no-such-source'") && err.contains("examplecorp-2024"), "{err}");
    let o = run(&["--json", "remove", "--index", p(&index), "--source", "no-such-source"]);
    let obj: Value = serde_json::from_str(stderr(&o).trim()).expect("JSON error object");
    assert_eq!(obj["code"], "update_error", "{obj}");
    assert_eq!(json(&["info", p(&index)])["generation"], 2, "no refusal published a generation");
}

/// Every password the sample's dumps hold, and some they do not.
const SAMPLE_PASSWORDS: &[&str] = &[
    "password",
    "password123",
    "letmein",
    "hunter2",
    "nintendo64",
    "Passwort123",
    "Summer2024!",
    "deals4ever",
    "olé olé",
    "pixel:art:42",
    "pw",
    "secret",
    "wonderland!",
    "x",
    "123456",
];

/// `breachdex password --stdin` of every sample password: (SHA-1 count, NTLM count).
fn password_counts(index: &Path) -> Vec<(u64, u64)> {
    SAMPLE_PASSWORDS
        .iter()
        .map(|pw| {
            let o = bin()
                .args(["password", "--index", p(index), "--stdin"])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .and_then(|mut child| {
                    use std::io::Write;
                    child.stdin.take().expect("stdin").write_all(format!("{pw}\n").as_bytes())?;
                    child.wait_with_output()
                })
                .expect("runs breachdex password");
            let v: Value = serde_json::from_str(&ok(&o)).expect("one JSON object");
            (v["sha1"]["count"].as_u64().expect("a count"), v["ntlm"]["count"].as_u64().expect("a count"))
        })
        .collect()
}

/// The sample with source `source` left out of its catalog and every dump line naming
/// one of `emails` (lowercase) dropped, in `dir/name`: the effective data once they are
/// removed.
fn sample_without(dir: &Path, name: &str, source: &str, emails: &[&str]) -> PathBuf {
    let from = sample_catalog().parent().unwrap().to_path_buf();
    let to = dir.join(name);
    std::fs::create_dir(&to).unwrap();
    for entry in std::fs::read_dir(&from).unwrap().flatten() {
        if entry.path().is_file() {
            let bytes = std::fs::read(entry.path()).unwrap();
            let kept: Vec<&[u8]> = bytes
                .split_inclusive(|b| *b == b'\n')
                .filter(|line| {
                    let line = String::from_utf8_lossy(line).to_lowercase();
                    !emails.iter().any(|e| line.contains(e))
                })
                .collect();
            std::fs::write(to.join(entry.file_name()), kept.concat()).unwrap();
        }
    }
    let catalog = to.join("catalog.json");
    let mut value: Value = serde_json::from_str(&std::fs::read_to_string(&catalog).unwrap()).unwrap();
    value["sources"].as_array_mut().unwrap().retain(|s| s["name"] != source);
    std::fs::write(&catalog, value.to_string()).unwrap();
    catalog
}

#[test]
fn an_index_counting_passwords_it_does_not_store_takes_removals_and_answers_as_a_fresh_build() {
    let tmp = tempfile::tempdir().unwrap();
    let store = ["--store", "email,username,password_hash,password_type"];
    let (index, _) = build_sample(tmp.path(), "index", &store);
    assert!(index.join("passwords.rowrefs").is_file(), "the build keeps the rows' password references");
    let before = password_counts(&index);
    ok(&run(&["remove", "--index", p(&index), "--identity", "user@example.com"]));
    ok(&run(&["remove", "--index", p(&index), "--source", "oldshop-2012"]));
    ok(&run(&["verify", p(&index)]));

    let catalog = sample_without(tmp.path(), "effective", "oldshop-2012", &["user@example.com"]);
    let fresh = tmp.path().join("fresh");
    let mut args = vec!["build", "--catalog", p(&catalog), "--out", p(&fresh), "--quiet"];
    args.extend_from_slice(&store);
    ok(&run(&args));
    let after = password_counts(&index);
    assert_ne!(after, before, "the removed records held counted passwords");
    assert_eq!(after, password_counts(&fresh), "password counts equal a fresh build of what is left");
    for email in ["user@example.com", "bob.smith@example.com", "John.Doe@Example.COM"] {
        assert_eq!(sources_of(&index, email, None), sources_of(&fresh, email, None), "{email}");
    }

    // Compacted, it still takes removals and answers as a fresh build.
    ok(&run(&["compact", "--index", p(&index), "--quiet"]));
    ok(&run(&["remove", "--index", p(&index), "--identity", "bob.smith@example.com"]));
    ok(&run(&["verify", p(&index)]));
    let catalog =
        sample_without(tmp.path(), "effective2", "oldshop-2012", &["user@example.com", "bob.smith@example.com"]);
    let fresh2 = tmp.path().join("fresh2");
    let mut args = vec!["build", "--catalog", p(&catalog), "--out", p(&fresh2), "--quiet"];
    args.extend_from_slice(&store);
    ok(&run(&args));
    assert_eq!(password_counts(&index), password_counts(&fresh2), "after compact and a removal");
}

#[test]
fn an_index_counting_passwords_it_does_not_store_without_row_references_refuses_removals() {
    let tmp = tempfile::tempdir().unwrap();
    let store = ["--store", "email,username,password_hash,password_type"];
    let (index, _) = build_sample(tmp.path(), "index", &store);
    // What a build before `passwords.rowrefs` existed wrote: the same files without it.
    std::fs::remove_file(index.join("passwords.rowrefs")).unwrap();
    let mut manifest = breachdex::Manifest::read(&index).unwrap();
    manifest.files.retain(|f| f.name != "passwords.rowrefs");
    std::fs::write(index.join("manifest.json"), manifest.to_file_text().unwrap()).unwrap();
    ok(&run(&["verify", p(&index)]));
    let before = sources_of(&index, "user@example.com", None);
    for target in [["--identity", "user@example.com"], ["--source", "oldshop-2012"]] {
        let err = fails(&["remove", "--index", p(&index), target[0], target[1]]);
        assert!(err.contains(p(&index)), "{target:?}: names the index: {err}");
        assert!(err.contains("does not store") && err.contains("password_plaintext"), "{target:?}: {err}");
        assert!(err.contains("passwords.rowrefs"), "{target:?}: names the missing file: {err}");
        assert!(
            err.contains("rebuild it") && err.contains("--no-password-index"),
            "{target:?}: says what to do: {err}"
        );
        let written: Vec<_> =
            std::fs::read_dir(index.join("deletes")).into_iter().flatten().flatten().map(|e| e.path()).collect();
        assert!(written.is_empty(), "{target:?}: refused before writing anything: {written:?}");
    }
    assert!(json(&["info", p(&index)])["generation"].is_null(), "nothing was published");
    assert_eq!(sources_of(&index, "user@example.com", None), before, "answers as before");
    ok(&run(&["verify", p(&index)]));

    // What the message offers: without a password index the same removal is taken.
    let mut no_passwords = store.to_vec();
    no_passwords.push("--no-password-index");
    let (other, _) = build_sample(tmp.path(), "no-password-index", &no_passwords);
    assert!(!other.join("passwords.rowrefs").exists(), "no password index, no references");
    ok(&run(&["remove", "--index", p(&other), "--identity", "user@example.com"]));
    assert!(sources_of(&other, "user@example.com", None).is_empty(), "the identity is removed");
}

#[test]
fn a_v1_index_is_refused_with_the_upgrade_hint_and_left_as_it_is() {
    let tmp = tempfile::tempdir().unwrap();
    let v1 = copy_fixture("v1-plain", tmp.path());
    let before = folder_bytes(&v1);
    let week2 = week2_catalog();
    for args in [
        vec!["add", "--index", p(&v1), "--catalog", p(&week2), "--quiet"],
        vec!["remove", "--index", p(&v1), "--identity", "user@example.com"],
        vec!["compact", "--index", p(&v1), "--quiet"],
    ] {
        let err = fails(&args);
        assert!(err.contains(p(&v1)) && err.contains("format version 1"), "{args:?}: {err}");
        assert!(err.contains("breachdex upgrade"), "{args:?}: {err}");
    }
    assert_eq!(folder_bytes(&v1), before, "a refused update leaves the index as it was");
}

#[test]
fn changes_since_zero_is_an_error_and_a_fresh_build_has_no_changes() {
    let tmp = tempfile::tempdir().unwrap();
    let (index, _) = build_sample(tmp.path(), "index", &[]);
    let err = fails(&["changes", "--index", p(&index), "--since", "0"]);
    assert!(err.contains("give 1 or later"), "{err}");
    assert!(changes(&index, 1, None).is_empty(), "the build itself is generation 1");
    let o = run(&["changes", "--index", p(&index)]);
    assert_eq!(code(&o), 2, "--since is required: {}", stderr(&o));
}
