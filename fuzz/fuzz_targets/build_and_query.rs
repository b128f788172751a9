//! Structured target: a random list of records (from pools of tricky identities, or any
//! string) in three sources (JSON Lines, CSV, CSV with `;`), built into an index in a
//! random hash mode and queried with every spelling, compared with a model
//! (`breachdex::internals::fuzzing::check_build_and_query`, shared with `tests/fuzz_regressions.rs`).
//!
//! With `BREACHDEX_FUZZ_EXPORT=<file>` set, the decoded case is also written there as
//! JSON: that is the form kept under `regressions/build_and_query/` (the raw input's
//! meaning depends on the `arbitrary` version).

#![no_main]

use arbitrary::Arbitrary;
use breachdex::internals::fuzzing::{BuildCase, CaseRecord, check_build_and_query};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

const EMAILS: &[&str] = &[
    "alice@example.com",
    "Alice@EXAMPLE.com",
    "a.b+tag@example.org",
    "müller@bücher.de",
    "MÜLLER@xn--bcher-kva.de",
    "josé@bücher.de",
    "jose\u{301}@bücher.de",
    "İstanbul@test.tr",
    "ΣΑΣ@greek.gr",
    "иван@пример.рф",
    "x@ｅｘａｍｐｌｅ.com",
    "bad@@x.y",
    "no-at-sign",
    "sp ace@x.y",
    "ctl\u{1}@x.y",
    "@nolocal.com",
    "nodomain@",
    "u@\u{ad}",
];
const USERNAMES: &[&str] = &[
    "alice", "Bob_99", "ǅemo", "straße", "STRASSE", "İ", "i\u{307}", "a b", "tab\there", "x\u{0}y", "ß", "Ω", "Ω",
];

#[derive(Arbitrary, Debug)]
enum Ident {
    Email { idx: u8, upper: bool, pad: bool },
    User { idx: u8, upper: bool, pad: bool },
    Raw(String),
}

impl Ident {
    fn text(&self) -> String {
        let (base, upper, pad) = match self {
            Ident::Email { idx, upper, pad } => (EMAILS[usize::from(*idx) % EMAILS.len()], *upper, *pad),
            Ident::User { idx, upper, pad } => (USERNAMES[usize::from(*idx) % USERNAMES.len()], *upper, *pad),
            Ident::Raw(s) => return s.clone(),
        };
        let text = if upper { base.to_uppercase() } else { base.to_owned() };
        if pad { format!(" {text}\u{3000}") } else { text }
    }
}

#[derive(Arbitrary, Debug)]
struct Rec {
    source: u8,
    email: Option<Ident>,
    username: Option<Ident>,
    password: Option<String>,
}

#[derive(Arbitrary, Debug)]
struct Input {
    mode: u8,
    records: Vec<Rec>,
    queries: Vec<Ident>,
}

fn dir() -> &'static std::path::Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("temp dir")).path()
}

fuzz_target!(|input: Input| {
    let case = BuildCase {
        mode: input.mode,
        records: input
            .records
            .iter()
            .take(64)
            .map(|r| CaseRecord {
                source: r.source,
                email: r.email.as_ref().map(Ident::text),
                username: r.username.as_ref().map(Ident::text),
                password: r.password.clone(),
            })
            .collect(),
        queries: input.queries.iter().take(16).map(Ident::text).collect(),
    };
    if let Some(path) = std::env::var_os("BREACHDEX_FUZZ_EXPORT") {
        let json = serde_json::to_string_pretty(&case).expect("case as JSON");
        std::fs::write(path, json).expect("write the exported case");
    }
    check_build_and_query(dir(), &case);
});
