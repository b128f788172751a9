//! Hostile dumps (SPEC §3) through the `breachdex` binary: file-level problems stop `build`
//! before any work (no index, no rejects file), and a 100 MB single line is rejected with a
//! reason while the build stays within its memory budget. Files are written at test time.

use breachdex::{Index, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// A catalog of one source per `(file name, format)`, written into `dir`.
fn catalog(dir: &Path, files: &[(&str, &str)]) -> PathBuf {
    let sources: Vec<_> = files
        .iter()
        .enumerate()
        .map(|(i, (name, format))| {
            serde_json::json!({"id": i + 1, "name": format!("s{i}"), "date": "2024-01-01",
                "files": [{"path": name, "format": format}]})
        })
        .collect();
    let path = dir.join("catalog.json");
    std::fs::write(&path, serde_json::json!({ "sources": sources }).to_string()).unwrap();
    path
}

/// The fields of a rejects-file line that these tests look at.
#[derive(Debug, serde::Deserialize)]
struct RejectLine {
    line: u64,
    reason: String,
    raw: String,
    raw_len: u64,
    truncated: bool,
}

/// The catalog-level problems stop `build` before any work: an error naming the file, no
/// index, no rejects file.
#[test]
fn file_level_problems_stop_the_cli_build_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("good.txt"), b"a@b.c:pw\n").unwrap();
    std::fs::write(dir.path().join("utf16.txt"), b"\xFF\xFEa\0@\0b\0:\0x\0\n\0").unwrap();
    std::fs::write(dir.path().join("utf16be.csv"), b"\xFE\xFF\0e\0m").unwrap();
    std::fs::create_dir(dir.path().join("adir.txt")).unwrap();
    let mut cases = vec!["missing.txt", "adir.txt", "utf16.txt", "utf16be.csv"];
    if Path::new("/dev/zero").exists() {
        cases.push("/dev/zero");
    }
    for bad in cases {
        let path = catalog(dir.path(), &[("good.txt", "combo"), (bad, "combo")]);
        // The CLI stops with the catalog error code and creates nothing.
        let out = dir.path().join("never");
        let status = std::process::Command::new(env!("CARGO_BIN_EXE_breachdex"))
            .args(["build", "--quiet", "--catalog"])
            .arg(&path)
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        assert!(!status.status.success());
        assert!(String::from_utf8_lossy(&status.stderr).contains(bad));
        assert!(!out.exists() && !dir.path().join("never.rejects.jsonl").exists());
    }
}

/// Peak resident memory of a child, from `/usr/bin/time -v`, in bytes.
fn max_rss(stderr: &str) -> Option<u64> {
    let line = stderr.lines().find(|l| l.contains("Maximum resident set size"))?;
    line.rsplit(':').next()?.trim().parse::<u64>().ok().map(|kib| kib * 1024)
}

#[test]
fn a_100_mb_single_line_within_the_memory_budget() {
    let dir = tempfile::tempdir().unwrap();
    let len: u64 = 100 << 20;
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(dir.path().join("huge.txt")).unwrap());
        f.write_all(b"before@b.c:1\nhuge@b.c:").unwrap();
        let chunk = vec![b'x'; 1 << 20];
        let mut written = "huge@b.c:".len() as u64;
        while written < len {
            let n = (len - written).min(chunk.len() as u64) as usize;
            f.write_all(&chunk[..n]).unwrap();
            written += n as u64;
        }
        f.write_all(b"\r\nafter@b.c:2\n").unwrap();
    }
    let path = catalog(dir.path(), &[("huge.txt", "combo")]);
    let out = dir.path().join("index");
    let rejects = dir.path().join("rejects.jsonl");
    let time = Path::new("/usr/bin/time");
    let mut cmd = if time.exists() {
        let mut c = std::process::Command::new(time);
        c.arg("-v").arg(env!("CARGO_BIN_EXE_breachdex"));
        c
    } else {
        std::process::Command::new(env!("CARGO_BIN_EXE_breachdex"))
    };
    let output = cmd
        .args(["build", "--quiet", "--json", "--memory", "128M", "--catalog"])
        .arg(&path)
        .arg("--out")
        .arg(&out)
        .arg("--rejects")
        .arg(&rejects)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(summary["records_read"], 3);
    assert_eq!(summary["kept"], 2);
    assert_eq!(summary["rejected_records"], 1);
    let lines: Vec<RejectLine> =
        std::fs::read_to_string(&rejects).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0].line, 2);
    assert_eq!(lines[0].raw_len, len);
    assert!(lines[0].truncated && lines[0].raw.starts_with("huge@b.c:xxx"));
    assert_eq!(lines[0].reason, format!("record is {len} bytes long, more than the 1048576 byte limit"));
    match max_rss(&stderr) {
        Some(rss) => {
            eprintln!("peak RSS {} MiB for a {} MiB line with --memory 128M", rss >> 20, len >> 20);
            assert!(rss < 128 << 20, "peak RSS {rss} bytes is over the 128 MiB budget");
        }
        None => eprintln!("note: /usr/bin/time -v not available; peak memory not measured"),
    }
    let index = Index::open(&out, &OpenOptions::default()).unwrap();
    assert!(index.lookup_email("after@b.c").unwrap().next().is_some());
    assert!(index.lookup_email("huge@b.c").unwrap().next().is_none());
}
