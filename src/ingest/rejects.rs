//! The rejects file: one JSON line per line or field that could not be used, so bad
//! input is never lost silently (SPEC §3).
//!
//! Each line is
//! `{"file": "...", "line": N, "reason": "...", "field": "email"|null, "raw": "...",
//! "raw_len": N, "truncated": bool}`. `raw` holds at most [`MAX_REJECT_RAW_BYTES`] bytes
//! of the rejected line (or the rejected field's value), escaped by [`escape_raw`];
//! `raw_len` is the full length in bytes and `truncated` tells whether `raw` is cut.
//! A writer made by [`RejectsWriter::create_without_raw`] (the default for hashed
//! builds) writes `"raw": null` and `"truncated": false`: the file then holds no byte of
//! the input's values.

use super::MAX_REJECT_RAW_BYTES;
#[cfg(test)]
use super::{FieldReject, Frame, FrameBatch};
use crate::asset::Asset;
use serde::Serialize;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;

/// One entry of the rejects file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reject {
    /// The dump file, as written in the catalog.
    pub file: String,
    /// 1-based line number where the record starts.
    pub line: u64,
    /// Physical lines the record spans (a CSV record with quoted line ends spans
    /// several; 0 for a file-level reject). Summed over the whole-record rejects
    /// (`field` is `None`) and added to the kept records' lines, it accounts for every
    /// non-blank line.
    pub lines: u32,
    /// Why.
    pub reason: String,
    /// The rejected field, for a field-level reject.
    pub field: Option<Asset>,
    /// The raw bytes (at most [`MAX_REJECT_RAW_BYTES`]; longer input is cut on write).
    pub raw: Vec<u8>,
    /// Full length of the raw line in bytes.
    pub raw_len: u64,
}

impl Reject {
    #[cfg(test)]
    /// A whole-record reject: a frame that could not be framed, parsed or validated.
    pub fn for_frame(file: &str, batch: &FrameBatch, frame: &Frame, reason: String) -> Reject {
        let bytes = batch.bytes(frame);
        Reject {
            file: file.to_owned(),
            line: frame.line,
            lines: frame.lines,
            reason,
            field: None,
            raw: bytes.get(..MAX_REJECT_RAW_BYTES).unwrap_or(bytes).to_vec(),
            raw_len: frame.raw_len(),
        }
    }

    #[cfg(test)]
    /// A field-level reject of the record starting at `line` and spanning `lines`
    /// lines; `raw` is the field's value.
    pub fn for_field(file: &str, line: u64, lines: u32, field: &FieldReject) -> Reject {
        let bytes = field.value.as_bytes();
        Reject {
            file: file.to_owned(),
            line,
            lines,
            reason: field.reason.clone(),
            field: Some(field.asset),
            raw: bytes.get(..MAX_REJECT_RAW_BYTES).unwrap_or(bytes).to_vec(),
            raw_len: bytes.len() as u64,
        }
    }
}

/// Renders raw bytes as text for the rejects file: valid UTF-8 is kept as is and each
/// byte that is not part of valid UTF-8 becomes the four characters `\xNN` (upper-case
/// hex). The result is then JSON-escaped like any string. A literal `\x..` already in the
/// input is not escaped, so the rendering is for reading, not for restoring exact bytes
/// (`raw_len` still gives the exact length).
pub fn escape_raw(raw: &[u8]) -> String {
    let mut out = String::with_capacity(raw.len());
    for chunk in raw.utf8_chunks() {
        out.push_str(chunk.valid());
        for byte in chunk.invalid() {
            // Writing to a String cannot fail.
            let _ = write!(out, "\\x{byte:02X}");
        }
    }
    out
}

/// The JSON shape of one line; borrowed so writing allocates only the escaped raw text.
#[derive(Serialize)]
struct RejectLine<'a> {
    file: &'a str,
    line: u64,
    lines: u32,
    reason: &'a str,
    field: Option<&'static str>,
    raw: Option<String>,
    raw_len: u64,
    truncated: bool,
}

/// Writes the rejects file (JSON Lines).
pub struct RejectsWriter {
    out: BufWriter<File>,
    count: u64,
    keep_raw: bool,
}

impl RejectsWriter {
    /// Creates (truncates) the rejects file; each line keeps the raw bytes.
    pub fn create(path: PathBuf) -> io::Result<RejectsWriter> {
        Ok(RejectsWriter { out: BufWriter::new(File::create(path)?), count: 0, keep_raw: true })
    }

    /// Creates (truncates) a rejects file whose lines keep file, line, reason and
    /// length but never the raw bytes (`"raw": null`).
    pub fn create_without_raw(path: PathBuf) -> io::Result<RejectsWriter> {
        Ok(RejectsWriter { keep_raw: false, ..RejectsWriter::create(path)? })
    }

    /// Appends one reject.
    pub fn write(&mut self, reject: &Reject) -> io::Result<()> {
        let raw = reject.raw.get(..MAX_REJECT_RAW_BYTES).unwrap_or(&reject.raw);
        let line = RejectLine {
            file: &reject.file,
            line: reject.line,
            lines: reject.lines,
            reason: &reject.reason,
            field: reject.field.map(Asset::name),
            raw: self.keep_raw.then(|| escape_raw(raw)),
            raw_len: reject.raw_len,
            truncated: self.keep_raw && reject.raw_len > raw.len() as u64,
        };
        serde_json::to_writer(&mut self.out, &line)?;
        self.out.write_all(b"\n")?;
        self.count += 1;
        Ok(())
    }

    /// Flushes and closes; returns how many rejects were written.
    pub fn finish(self) -> io::Result<u64> {
        let file = self.out.into_inner().map_err(io::IntoInnerError::into_error)?;
        file.sync_all()?;
        Ok(self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::super::FrameKind;
    use super::*;

    #[test]
    fn escape_raw_keeps_utf8_and_escapes_bad_bytes() {
        assert_eq!(escape_raw(b"plain \xC3\xBC"), "plain ü");
        assert_eq!(escape_raw(b"a\xFFb\xC3"), "a\\xFFb\\xC3");
        assert_eq!(escape_raw(b"\xE2\x82"), "\\xE2\\x82");
        assert_eq!(escape_raw(b""), "");
    }

    #[test]
    fn writes_json_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rejects.jsonl");
        let mut writer = RejectsWriter::create(path.clone()).unwrap();
        let batch = FrameBatch { data: b"bad\xFF\"line".to_vec(), frames: vec![] };
        let frame = Frame { line: 7, lines: 1, start: 0, end: batch.data.len(), kind: FrameKind::Record };
        writer.write(&Reject::for_frame("d/x.csv", &batch, &frame, "invalid UTF-8 at byte 3".into())).unwrap();
        let field =
            FieldReject { asset: Asset::Email, reason: "invalid email: has no '@'".into(), value: "nope".into() };
        writer.write(&Reject::for_field("d/x.csv", 9, 3, &field)).unwrap();
        let cut = Frame { kind: FrameKind::TooLong { total_len: 5_000_000 }, ..frame };
        writer.write(&Reject::for_frame("d/x.csv", &batch, &cut, "too long".into())).unwrap();
        assert_eq!(writer.finish().unwrap(), 3);

        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(
            lines[0],
            serde_json::json!({"file": "d/x.csv", "line": 7, "lines": 1, "reason": "invalid UTF-8 at byte 3",
                "field": null, "raw": "bad\\xFF\"line", "raw_len": 9, "truncated": false})
        );
        assert_eq!(lines[1]["field"], "email");
        assert_eq!(lines[1]["raw"], "nope");
        assert_eq!(lines[1]["lines"], 3);
        assert_eq!(lines[2]["raw_len"], 5_000_000);
        assert_eq!(lines[2]["truncated"], true);
    }

    #[test]
    fn without_raw_writes_no_input_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rejects.jsonl");
        let mut writer = RejectsWriter::create_without_raw(path.clone()).unwrap();
        let field = FieldReject {
            asset: Asset::Email,
            reason: "invalid email: has no '@'".into(),
            value: "secret-mailbox".into(),
        };
        writer.write(&Reject::for_field("d/x.csv", 9, 1, &field)).unwrap();
        writer.finish().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("secret-mailbox"), "{text}");
        let line: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(
            line,
            serde_json::json!({"file": "d/x.csv", "line": 9, "lines": 1, "reason": "invalid email: has no '@'",
                "field": "email", "raw": null, "raw_len": 14, "truncated": false})
        );
    }

    #[test]
    fn long_raw_is_cut_on_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.jsonl");
        let mut writer = RejectsWriter::create(path.clone()).unwrap();
        let reject = Reject {
            file: "f".into(),
            line: 1,
            lines: 1,
            reason: "r".into(),
            field: None,
            raw: vec![b'x'; MAX_REJECT_RAW_BYTES * 2],
            raw_len: (MAX_REJECT_RAW_BYTES * 2) as u64,
        };
        writer.write(&reject).unwrap();
        writer.finish().unwrap();
        let line: serde_json::Value = serde_json::from_str(std::fs::read_to_string(&path).unwrap().trim()).unwrap();
        assert_eq!(line["raw"].as_str().unwrap().len(), MAX_REJECT_RAW_BYTES);
        assert_eq!(line["truncated"], true);
    }
}
