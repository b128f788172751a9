//! Support shared by the tests that drive the real binary as separate processes (crash
//! safety, serving during updates): the repository root, the binary with a clean
//! environment, exit checks, a build of a catalog and a copy of an index directory.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root (the sample dumps are under `testdata/sample`).
pub fn repo() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

/// The real `breachdex` binary, without the environment variables that change what it
/// writes (`SOURCE_DATE_EPOCH`) or make it kill itself (`BREACHDEX_FAILPOINT`).
pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_breachdex"));
    c.env_remove("SOURCE_DATE_EPOCH").env_remove("BREACHDEX_FAILPOINT");
    c
}

/// Fails the test, showing the output, unless the process exited with success.
#[track_caller]
pub fn ok(o: &Output, what: &str) {
    assert!(
        o.status.success(),
        "{what}: expected success, got {:?}\nstdout: {}\nstderr: {}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Builds `catalog` into `out` with the real binary.
pub fn build(catalog: &Path, out: &Path) {
    let o = bin().args(["build", "--quiet", "--threads", "1", "--catalog"]).arg(catalog).arg("--out").arg(out).output();
    ok(&o.unwrap(), "build");
}

/// Copies the directory tree `from` to `to`.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}
