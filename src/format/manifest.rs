//! `manifest.json`: written last, it lists the build options, the counts, the sources
//! and every other file of the index with its size and XXH3 checksum, and carries a
//! checksum of its own. An index directory without a valid manifest is not an index.
//!
//! Layout: `{"manifest": <body>, "checksum": "xxh3:<16 hex digits>"}` where the
//! checksum is XXH3-64 of the exact bytes of `<body>` as they stand in the file.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::path::Path;

/// File name inside the index directory.
pub const FILE_NAME: &str = "manifest.json";
/// Value of the `format` field.
pub const FORMAT_NAME: &str = "breachdex-index";
/// Largest manifest accepted when opening (a hostile file must not exhaust memory).
pub const MAX_MANIFEST_BYTES: u64 = 64 << 20;

/// Record and key counts of an index.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Counts {
    /// Rows in `records.rows`.
    pub records: u64,
    /// Rows that have an e-mail key (they come first).
    pub email_rows: u64,
    /// Distinct e-mail keys.
    pub email_keys: u64,
    /// Distinct username keys.
    pub username_keys: u64,
    /// Row ids in `username.postings`.
    pub username_postings: u64,
    /// Distinct hashes in `passwords.sha1`; absent when the index has no password
    /// index (built before it existed, or with it turned off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_sha1: Option<u64>,
    /// Distinct hashes in `passwords.ntlm`; absent with `password_sha1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_ntlm: Option<u64>,
}

/// What the build read and dropped, kept for `info`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildStats {
    /// Records framed from the dumps (valid or not).
    pub records_read: u64,
    /// Lines rejected as a whole.
    pub rejected_records: u64,
    /// Fields removed from otherwise kept records.
    pub rejected_fields: u64,
    /// Identical records removed within a source.
    pub duplicates: u64,
    /// Records dropped because the same record (source and document id) was already
    /// live in an older segment of the index (`add`); absent when 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub duplicates_across_segments: u64,
    /// Records dropped because their e-mail or username key is suppressed (`add` after
    /// a `remove`); absent when 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub suppressed: u64,
}

// serde's `skip_serializing_if` passes a reference.
#[allow(clippy::trivially_copy_pass_by_ref)]
fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// One source (breach) as recorded in the index.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceMeta {
    /// Numeric id (rows refer to it).
    pub id: u32,
    /// Unique slug.
    pub name: String,
    /// Title.
    pub title: String,
    /// Breach date, `YYYY-MM-DD`.
    pub date: String,
    /// Description.
    pub description: String,
    /// Severity override score, if the catalog gave one.
    pub severity: Option<u8>,
    /// Publish date, `YYYY-MM-DD`.
    pub publish_date: String,
    /// Records of this source in the index (after deduplication).
    pub records: u64,
    /// Distinct identities of this source in the index (SPEC §12 `PwnCount`): one per
    /// distinct e-mail key, plus one per distinct username key among its records without
    /// an e-mail. Absent in indexes built before it was counted (readers then use
    /// `records`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pwn_count: Option<u64>,
    /// Assets present in this source's records (canonical names, asset order), whether
    /// or not `--store` kept their columns. Absent in indexes built before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assets: Option<Vec<String>>,
    /// The breached site's domain (catalog `domain`, normalized).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// When the breach was added, `YYYY-MM-DD` (catalog `added_date`; readers default to
    /// `publish_date`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub added_date: Option<String>,
    /// When the breach was last modified, `YYYY-MM-DD` (catalog `modified_date`; readers
    /// default to the added date).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified_date: Option<String>,
    /// Whether the breach is verified (default `true`).
    #[serde(default = "default_true", skip_serializing_if = "is_true")]
    pub verified: bool,
    /// Whether the breach is sensitive.
    #[serde(default, skip_serializing_if = "is_false")]
    pub sensitive: bool,
    /// Whether the breach is fabricated.
    #[serde(default, skip_serializing_if = "is_false")]
    pub fabricated: bool,
    /// Whether the breach is retired.
    #[serde(default, skip_serializing_if = "is_false")]
    pub retired: bool,
    /// Whether the source is a spam list.
    #[serde(default, skip_serializing_if = "is_false")]
    pub spam_list: bool,
    /// Whether the data came from malware.
    #[serde(default, skip_serializing_if = "is_false")]
    pub malware: bool,
    /// Whether the source is a stealer log.
    #[serde(default, skip_serializing_if = "is_false")]
    pub stealer_log: bool,
    /// URL or path of the breach's logo.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo_path: Option<String>,
    /// Data class names given by the catalog (they replace the derived ones).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_classes: Option<Vec<String>>,
}

fn default_true() -> bool {
    true
}

// serde's `skip_serializing_if` passes a reference.
#[allow(clippy::trivially_copy_pass_by_ref)]
fn is_true(value: &bool) -> bool {
    *value
}

#[allow(clippy::trivially_copy_pass_by_ref)]
fn is_false(value: &bool) -> bool {
    !*value
}

/// One file of the index.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    /// File name inside the directory.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// XXH3-64 of the whole file, 16 lowercase hex digits.
    pub xxh3: String,
}

/// The manifest body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Always `breachdex-index`.
    pub format: String,
    /// Index format version.
    pub format_version: u32,
    /// Identifies this build: XXH3-128 over the options and every file checksum.
    pub build_id: String,
    /// Build time, RFC 3339 UTC (from `SOURCE_DATE_EPOCH` when set).
    pub created: String,
    /// The software that wrote the index.
    pub builder: String,
    /// Key hash mode name.
    pub hash_mode: String,
    /// Fingerprint of the salt of a hashed index.
    pub salt_fingerprint: Option<String>,
    /// Assets with a column file, canonical names.
    pub stored_assets: Vec<String>,
    /// The `--store` request of the build, canonical names in asset order (absent:
    /// every asset, or an index written before the field existed). `stored_assets` is
    /// this ∩ the assets present in the input; updates keep applying the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_request: Option<Vec<String>>,
    /// Counts.
    pub counts: Counts,
    /// What the build read and dropped.
    pub build_stats: BuildStats,
    /// Sources, ascending by id.
    pub sources: Vec<SourceMeta>,
    /// Every other file of the index.
    pub files: Vec<FileEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope<'a> {
    #[serde(borrow)]
    manifest: &'a RawValue,
    checksum: String,
}

/// Why a manifest cannot be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    /// Not readable.
    #[error("manifest.json: {0}")]
    Io(#[from] std::io::Error),
    /// Larger than the 64 MiB a manifest may have.
    #[error("manifest.json: {0} bytes is larger than any real manifest: not an index")]
    TooLarge(u64),
    /// Not the expected JSON.
    #[error("manifest.json: not a breachdex manifest: {0}")]
    Syntax(String),
    /// Its checksum does not match.
    #[error("manifest.json: checksum mismatch: the manifest is damaged")]
    Checksum,
    /// Another format or version.
    #[error("manifest.json: {0}")]
    Unsupported(String),
}

fn checksum_text(body: &str) -> String {
    format!("xxh3:{:016x}", xxhash_rust::xxh3::xxh3_64(body.as_bytes()))
}

/// `body` serialized inside the checksummed envelope, as `manifest.json` holds it (the
/// index manifest and the generation manifest share it).
pub(crate) fn envelope_text<T: Serialize>(body: &T) -> Result<String, serde_json::Error> {
    let body = serde_json::to_string_pretty(body)?;
    Ok(format!("{{\"manifest\": {body},\n\"checksum\": \"{}\"}}\n", checksum_text(&body)))
}

/// The body of checksummed envelope text, once its checksum matched.
pub(crate) fn envelope_body(text: &str) -> Result<&str, ManifestError> {
    let envelope: Envelope<'_> = serde_json::from_str(text).map_err(|e| ManifestError::Syntax(e.to_string()))?;
    if checksum_text(envelope.manifest.get()) != envelope.checksum {
        return Err(ManifestError::Checksum);
    }
    Ok(envelope.manifest.get())
}

/// The `format` field of a manifest body, read leniently (to tell an index manifest from
/// a generation manifest before parsing either).
pub(crate) fn body_format(body: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Probe {
        format: String,
    }
    serde_json::from_str::<Probe>(body).ok().map(|p| p.format)
}

/// Reads a manifest-sized text file (at most [`MAX_MANIFEST_BYTES`]).
pub(crate) fn read_text(path: &Path) -> Result<String, ManifestError> {
    use std::io::Read;
    let file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    if len > MAX_MANIFEST_BYTES {
        return Err(ManifestError::TooLarge(len));
    }
    let mut text = String::with_capacity(len as usize);
    file.take(MAX_MANIFEST_BYTES)
        .read_to_string(&mut text)
        .map_err(|e| ManifestError::Syntax(format!("not UTF-8 text ({e})")))?;
    Ok(text)
}

impl Manifest {
    /// Serializes the manifest with its checksum.
    pub fn to_file_text(&self) -> Result<String, serde_json::Error> {
        envelope_text(self)
    }

    /// Parses and checks manifest text: checksum, format name and version.
    pub fn from_file_text(text: &str) -> Result<Manifest, ManifestError> {
        let body = envelope_body(text)?;
        let manifest: Manifest = serde_json::from_str(body).map_err(|e| match body_format(body) {
            Some(f) if f == crate::generation::FORMAT_NAME => ManifestError::Unsupported(
                "this is the generation manifest of an index updated by `breachdex add`, `remove` or `compact`, \
                     not the manifest of one segment"
                    .to_string(),
            ),
            _ => ManifestError::Syntax(e.to_string()),
        })?;
        if manifest.format != FORMAT_NAME {
            return Err(ManifestError::Unsupported(format!("format '{}' is not {FORMAT_NAME}", manifest.format)));
        }
        if !super::is_readable_version(manifest.format_version as u64) {
            return Err(ManifestError::Unsupported(format!(
                "index format version {} is not supported (this build reads versions {})",
                manifest.format_version,
                super::readable_versions()
            )));
        }
        Ok(manifest)
    }

    /// Reads `manifest.json` from an index directory.
    pub fn read(dir: &Path) -> Result<Manifest, ManifestError> {
        Manifest::from_file_text(&read_text(&dir.join(FILE_NAME))?)
    }

    /// The entry of file `name`.
    pub fn file(&self, name: &str) -> Option<&FileEntry> {
        self.files.iter().find(|f| f.name == name)
    }
}

/// What a build knows when it writes the manifest; [`Manifest::assemble`] turns it into
/// the manifest body (the build id, the sorted sources and files, the format fields).
#[derive(Clone, Debug)]
pub struct ManifestInputs {
    /// Key hash mode name.
    pub hash_mode: String,
    /// Fingerprint of the salt of a hashed index.
    pub salt_fingerprint: Option<String>,
    /// Assets with a column file, canonical names, in asset order.
    pub stored_assets: Vec<String>,
    /// The `--store` request, canonical names in asset order (`None`: every asset).
    pub store_request: Option<Vec<String>>,
    /// Build time as Unix seconds.
    pub created_unix: i64,
    /// Counts.
    pub counts: Counts,
    /// What the build read and dropped.
    pub build_stats: BuildStats,
    /// Sources, in any order.
    pub sources: Vec<SourceMeta>,
    /// Every other file of the index, in any order.
    pub files: Vec<crate::format::FileSummary>,
}

impl Manifest {
    /// The manifest of a finished build: sources sorted by id, files by name, and the
    /// build id, XXH3-128 over the hash mode, the stored assets and every file's name,
    /// size and checksum.
    pub(crate) fn assemble(inputs: ManifestInputs) -> Manifest {
        let ManifestInputs {
            hash_mode,
            salt_fingerprint,
            stored_assets,
            store_request,
            created_unix,
            counts,
            build_stats,
            mut sources,
            mut files,
        } = inputs;
        sources.sort_by_key(|s| s.id);
        files.sort_by(|a, b| a.name.cmp(&b.name));
        let mut id_input = format!("{}|{}", hash_mode, stored_assets.join(","));
        for f in &files {
            id_input.push_str(&format!("|{}:{}:{:016x}", f.name, f.size, f.xxh3));
        }
        Manifest {
            format: FORMAT_NAME.to_string(),
            format_version: super::FORMAT_VERSION as u32,
            build_id: format!("{:032x}", xxhash_rust::xxh3::xxh3_128(id_input.as_bytes())),
            created: crate::date::rfc3339_utc(created_unix),
            builder: format!("breachdex {}", env!("CARGO_PKG_VERSION")),
            hash_mode,
            salt_fingerprint,
            stored_assets,
            store_request,
            counts,
            build_stats,
            sources,
            files: files
                .iter()
                .map(|f| FileEntry { name: f.name.clone(), size: f.size, xxh3: format!("{:016x}", f.xxh3) })
                .collect(),
        }
    }
}

/// The directories of an updated index's layer (docs/FORMAT.md §11): the only
/// directories an index directory holds.
pub const LAYER_DIRS: [&str; 5] = ["segments", "deletes", "tombstones", "changes", "filters"];

/// The entry names an index directory's manifest claims (itself included, and the writer
/// lock `.lock`), read leniently: `None` unless `dir` holds a `manifest.json` that names
/// itself a breachdex index or generation. A damaged checksum or another format version
/// still counts, so a builder can tell its own earlier output (which it may replace) from
/// anything else (which it must not touch). For an updated index: the base segment's
/// files, `root.manifest.json` and the layer's directories ([`LAYER_DIRS`]).
pub fn claimed_files(dir: &Path) -> Option<Vec<String>> {
    let listed = |path: &Path, format: &str| -> Option<Vec<String>> {
        use std::io::Read;
        let mut text = String::new();
        std::fs::File::open(path).ok()?.take(MAX_MANIFEST_BYTES).read_to_string(&mut text).ok()?;
        let value: serde_json::Value = serde_json::from_str(&text).ok()?;
        let body = value.get("manifest")?;
        if body.get("format")?.as_str()? != format {
            return None;
        }
        Some(body.get("files")?.as_array()?.iter().filter_map(|f| f.get("name")?.as_str().map(str::to_owned)).collect())
    };
    let mut names = match listed(&dir.join(FILE_NAME), FORMAT_NAME) {
        Some(names) => names,
        None => {
            listed(&dir.join(FILE_NAME), crate::generation::FORMAT_NAME)?;
            let root = crate::generation::manifest::ROOT_MANIFEST;
            let mut names: Vec<String> = listed(&dir.join(root), FORMAT_NAME).unwrap_or_default();
            names.push(root.to_owned());
            names.extend(LAYER_DIRS.iter().map(|d| (*d).to_owned()));
            names
        }
    };
    names.push(FILE_NAME.to_owned());
    names.push(".lock".to_owned());
    Some(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Manifest {
        Manifest {
            format: FORMAT_NAME.into(),
            format_version: 1,
            build_id: "00".repeat(16),
            created: "2026-11-23T12:00:00Z".into(),
            builder: "breachdex test".into(),
            hash_mode: "plain".into(),
            salt_fingerprint: None,
            stored_assets: vec!["email".into()],
            store_request: None,
            counts: Counts::default(),
            build_stats: BuildStats::default(),
            sources: vec![],
            files: vec![FileEntry { name: "records.rows".into(), size: 80, xxh3: "0123456789abcdef".into() }],
        }
    }

    #[test]
    fn round_trips_and_detects_any_change() {
        let text = sample().to_file_text().unwrap();
        assert_eq!(Manifest::from_file_text(&text).unwrap(), sample());
        let tampered = text.replace("\"size\": 80", "\"size\": 81");
        assert!(matches!(Manifest::from_file_text(&tampered), Err(ManifestError::Checksum)));
        assert!(matches!(Manifest::from_file_text("{}"), Err(ManifestError::Syntax(_))));
        let mut newer = sample();
        newer.format_version = 99;
        let err = Manifest::from_file_text(&newer.to_file_text().unwrap()).unwrap_err();
        assert!(err.to_string().contains("version 99 is not supported"), "{err}");
    }
}
