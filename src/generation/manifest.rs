//! The generation manifest: `manifest.json` of an index that `breachdex add`, `remove`
//! or `compact` has updated. It lists the segments (each a complete index directory with
//! its own manifest), the per-segment row deletions, the merged source table, the removed
//! sources, the suppressed keys and the change feed of every generation. Same envelope as
//! the index manifest (`{"manifest": BODY, "checksum": "xxh3:…"}`), replaced by
//! `rename(2)` so that readers see one generation or the next, whole.

use crate::format::manifest::{self, FileEntry, ManifestError, SourceMeta};
use serde::{Deserialize, Serialize};

/// Value of the `format` field of a generation manifest.
pub const FORMAT_NAME: &str = "breachdex-generation";
/// Version of the generation manifest layout.
pub const FORMAT_VERSION: u32 = 1;
/// Where the base segment's own manifest goes once a generation manifest has taken over
/// `manifest.json`.
pub const ROOT_MANIFEST: &str = "root.manifest.json";
/// The name of the base segment (the index root).
pub const ROOT_SEGMENT: &str = ".";

/// A generation manifest body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenerationManifest {
    /// Always `breachdex-generation`.
    pub format: String,
    /// Always 1 (the layout of docs/FORMAT.md §11).
    pub format_version: u32,
    /// The generation number: 1 is the build, each `add`, `remove` and `compact` adds 1.
    pub generation: u64,
    /// Identifies this generation (XXH3-128 over its parent, number, segments, files and
    /// sources).
    pub generation_id: String,
    /// The `generation_id` of the latest generation that changed answers (a `compact`
    /// keeps its parent's); the build id for generation 1. Cursors bind to it.
    pub content_id: String,
    /// The `generation_id` (or, for generation 1, the build id) of the parent.
    pub parent_id: String,
    /// `add`, `remove` or `compact`.
    pub operation: String,
    /// When it was published, RFC 3339 UTC.
    pub created: String,
    /// The software that wrote it.
    pub builder: String,
    /// Key hash mode name (every segment has it).
    pub hash_mode: String,
    /// Fingerprint of the salt of a hashed index (every segment has it).
    pub salt_fingerprint: Option<String>,
    /// The `--store` request of the build (`None`: every asset), applied to every
    /// segment so that each stores what one build of everything would.
    pub store: Option<Vec<String>>,
    /// Whether segments carry password files.
    pub passwords: bool,
    /// The seed of every key filter of the index (16 hex digits; docs/FORMAT.md §10.4),
    /// set by the first `add` that writes filters. `None`: no filter (an index updated
    /// before filters existed, or never added to).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter_seed: Option<String>,
    /// The union filter (`filters/gNNNNNNNN.union`) over the keys of every segment but
    /// the base, if there is one. A lookup whose key it does not hold reads the base only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub union_filter: Option<String>,
    /// The live sources: catalog metadata with `records`, `pwn_count` and `assets` over
    /// every live record; ascending by id.
    pub sources: Vec<SourceMeta>,
    /// Sources retired by `remove --source`: their ids and names are never reused.
    pub removed_sources: Vec<RemovedSource>,
    /// The segments, oldest first; the first is the base.
    pub segments: Vec<SegmentEntry>,
    /// The suppressed keys file (opted-out identities), if any identity was removed.
    pub tombstones: Option<String>,
    /// Every generation-level file (deletions, subtractions, tombstones, changes) with
    /// its size and checksum.
    pub files: Vec<FileEntry>,
    /// The change feed: one entry per generation after the build, oldest first.
    pub changes: Vec<ChangeEntry>,
    /// What each generation did, oldest first.
    pub history: Vec<HistoryEntry>,
}

/// A source retired by `remove --source`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemovedSource {
    /// Its id.
    pub id: u32,
    /// Its name.
    pub name: String,
    /// The generation that removed it.
    pub generation: u64,
}

/// One segment of a generation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SegmentEntry {
    /// Its directory relative to the index root: `.` (the base) or `segments/gNNNNNNNN`.
    pub name: String,
    /// Its manifest, relative to the index root.
    pub manifest: String,
    /// XXH3-64 of that manifest file, 16 hex digits: a segment cannot be swapped under
    /// the generation.
    pub manifest_xxh3: String,
    /// Its build id.
    pub build_id: String,
    /// Its row count.
    pub rows: u64,
    /// Whether it has a key filter, `<name>/keys.filter` (listed in
    /// [`GenerationManifest::files`]): every segment written by `add` has one, the base
    /// none.
    #[serde(default, skip_serializing_if = "is_false")]
    pub filter: bool,
    /// Its deleted rows, if any.
    pub deletes: Option<SegmentDeletes>,
}

/// The deletions of one segment as of a generation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SegmentDeletes {
    /// The row deletion file (relative to the index root), if rows were deleted (a
    /// removed source hides its rows without one).
    pub rows: Option<String>,
    /// Rows it deletes.
    pub deleted: u64,
    /// Password counts to subtract: the SHA-1 and NTLM files, when the segment has a
    /// password index.
    pub passwords: Option<[String; 2]>,
}

/// The change feed entry of one generation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeEntry {
    /// The generation.
    pub generation: u64,
    /// Its change file (`None`: nothing changed, as after a `compact`).
    pub file: Option<String>,
    /// Entries in it.
    pub entries: u64,
}

/// What one generation did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryEntry {
    /// The generation.
    pub generation: u64,
    /// `add`, `remove` or `compact`.
    pub operation: String,
    /// When, RFC 3339 UTC.
    pub created: String,
    /// Records framed from the new dumps (`add`).
    pub records_read: u64,
    /// Lines rejected (`add`).
    pub rejected_records: u64,
    /// Identical records dropped within a source (`add`).
    pub duplicates: u64,
    /// Records dropped because they were already live in an older segment (`add`).
    pub duplicates_across_segments: u64,
    /// Records dropped because they hold a suppressed key (`add`).
    pub suppressed: u64,
    /// Records added.
    pub records_added: u64,
    /// Records removed (rows deleted, or records of removed sources).
    pub records_removed: u64,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl GenerationManifest {
    /// The filter seed, if the index has filters; a seed that is not 16 hex digits is
    /// damage.
    pub(crate) fn filter_seed(&self) -> Result<Option<u64>, String> {
        let Some(text) = &self.filter_seed else { return Ok(None) };
        match u64::from_str_radix(text, 16) {
            Ok(seed) if text.len() == 16 => Ok(Some(seed)),
            _ => Err(format!("filter_seed '{text}' is not 16 hex digits")),
        }
    }

    /// Serializes the manifest with its checksum.
    pub fn to_file_text(&self) -> Result<String, serde_json::Error> {
        manifest::envelope_text(self)
    }

    /// Parses and checks generation manifest text: checksum, format name and version.
    pub fn from_file_text(text: &str) -> Result<GenerationManifest, ManifestError> {
        let body = manifest::envelope_body(text)?;
        GenerationManifest::from_body(body)
    }

    /// Parses a checked body.
    pub(crate) fn from_body(body: &str) -> Result<GenerationManifest, ManifestError> {
        let m: GenerationManifest = serde_json::from_str(body).map_err(|e| ManifestError::Syntax(e.to_string()))?;
        if m.format != FORMAT_NAME {
            return Err(ManifestError::Unsupported(format!("format '{}' is not {FORMAT_NAME}", m.format)));
        }
        if m.format_version != FORMAT_VERSION {
            return Err(ManifestError::Unsupported(format!(
                "generation manifest version {} is not supported (this build reads version {FORMAT_VERSION})",
                m.format_version
            )));
        }
        Ok(m)
    }

    /// The entry of generation-level file `name`.
    pub fn file(&self, name: &str) -> Option<&FileEntry> {
        self.files.iter().find(|f| f.name == name)
    }

    /// Live records over every segment.
    pub fn records(&self) -> u64 {
        self.sources.iter().map(|s| s.records).sum()
    }
}

/// What `manifest.json` of an index directory holds.
#[derive(Clone, Debug)]
pub enum RootManifest {
    /// An index as `build` (or `upgrade`) wrote it: generation 1, one segment.
    Index(Box<manifest::Manifest>),
    /// An updated index.
    Generation(Box<GenerationManifest>),
}

/// Reads `manifest.json` of `dir`, telling the two kinds apart by their `format`.
pub fn read_root(dir: &std::path::Path) -> Result<RootManifest, ManifestError> {
    let text = manifest::read_text(&dir.join(manifest::FILE_NAME))?;
    let body = manifest::envelope_body(&text)?;
    if manifest::body_format(body).as_deref() == Some(FORMAT_NAME) {
        return Ok(RootManifest::Generation(Box::new(GenerationManifest::from_body(body)?)));
    }
    manifest::Manifest::from_file_text(&text).map(|m| RootManifest::Index(Box::new(m)))
}

/// XXH3-64 of `bytes` as 16 lowercase hex digits (the form of every file checksum).
pub(crate) fn xxh3_hex(bytes: &[u8]) -> String {
    format!("{:016x}", xxhash_rust::xxh3::xxh3_64(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> GenerationManifest {
        GenerationManifest {
            format: FORMAT_NAME.into(),
            format_version: FORMAT_VERSION,
            generation: 2,
            generation_id: "11".repeat(16),
            content_id: "11".repeat(16),
            parent_id: "22".repeat(16),
            operation: "add".into(),
            created: "2026-12-07T00:00:00Z".into(),
            builder: "breachdex test".into(),
            hash_mode: "plain".into(),
            salt_fingerprint: None,
            store: None,
            passwords: true,
            filter_seed: None,
            union_filter: None,
            sources: vec![],
            removed_sources: vec![],
            segments: vec![SegmentEntry {
                name: ROOT_SEGMENT.into(),
                manifest: ROOT_MANIFEST.into(),
                manifest_xxh3: "0".repeat(16),
                build_id: "33".repeat(16),
                rows: 10,
                filter: false,
                deletes: None,
            }],
            tombstones: None,
            files: vec![],
            changes: vec![ChangeEntry { generation: 2, file: None, entries: 0 }],
            history: vec![HistoryEntry { generation: 2, operation: "add".into(), ..Default::default() }],
        }
    }

    #[test]
    fn round_trips_and_detects_any_change() {
        let m = sample();
        let text = m.to_file_text().unwrap();
        assert_eq!(GenerationManifest::from_file_text(&text).unwrap(), m);
        let tampered = text.replacen("\"rows\": 10", "\"rows\": 11", 1);
        assert!(matches!(GenerationManifest::from_file_text(&tampered), Err(ManifestError::Checksum)));
    }

    #[test]
    fn an_index_manifest_reader_refuses_a_generation_manifest_by_name() {
        let text = sample().to_file_text().unwrap();
        let err = manifest::Manifest::from_file_text(&text).unwrap_err().to_string();
        assert!(err.contains("generation manifest"), "{err}");
    }

    #[test]
    fn unknown_fields_and_versions_are_refused() {
        let mut m = sample();
        m.format_version = 9;
        let err = GenerationManifest::from_file_text(&m.to_file_text().unwrap()).unwrap_err().to_string();
        assert!(err.contains("version 9"), "{err}");
        let body = serde_json::to_string(&sample()).unwrap().replacen('{', "{\"extra\":1,", 1);
        assert!(GenerationManifest::from_body(&body).is_err());
    }
}
