//! `verify` of an updated index: every segment as an index of its own (its manifest
//! checked against the generation's), then every generation-level file (size, checksum,
//! frame, structure).

use super::filters::segment_filter_name;
use super::manifest::{GenerationManifest, ROOT_MANIFEST, ROOT_SEGMENT, xxh3_hex};
use super::update::{CHANGES_DIR, DELETES_DIR, LOCK_FILE, SEGMENTS_DIR, TOMBSTONES_DIR};
use crate::format::manifest::{self as im, Manifest};
use crate::format::{FileView, Kind, changes, deletes, filter, passwords, tombstones};
use crate::index::{VerifyReport, verify_segment};
use crate::keymode::HashMode;
use crate::mmap::{Access, Bytes};
use crate::password::PasswordHashKind;
use std::path::Path;

/// Entries of the index root that belong to the generation layer, not to the base. An
/// index as `build` wrote it may hold them too: what a first `add`, `remove` or
/// `compact` killed before it published left behind (the next writer removes it).
pub(crate) const LAYER: &[&str] =
    &[ROOT_MANIFEST, SEGMENTS_DIR, DELETES_DIR, TOMBSTONES_DIR, CHANGES_DIR, "filters", LOCK_FILE, ".tmp-*"];

/// Adds to `report` everything wrong with generation `g` of the index at `root`.
pub(crate) fn verify_generation(root: &Path, g: &GenerationManifest, report: &mut VerifyReport) {
    let mut rows_of = Vec::with_capacity(g.segments.len());
    // Each key of a segment after the base must be in its own filter and in the union
    // (the files themselves are checked with the other layer files below).
    let union =
        g.union_filter.as_deref().and_then(|name| Some((name, filter_reader(root, g, name, filter::UNION_KIND)?)));
    for (s, entry) in g.segments.iter().enumerate() {
        let prefix = if entry.name == ROOT_SEGMENT { String::new() } else { format!("{}/", entry.name) };
        let Ok(rel) = super::layer::relative(&entry.manifest) else {
            report
                .problems
                .push(format!("manifest.json: segment manifest '{}' is not inside the index", entry.manifest));
            continue;
        };
        let text = match im::read_text(&root.join(rel)) {
            Ok(t) => t,
            Err(e) => {
                report.problems.push(format!("{}: {e}", entry.manifest));
                continue;
            }
        };
        if xxh3_hex(text.as_bytes()) != entry.manifest_xxh3 {
            report.problems.push(format!(
                "{}: checksum differs from the generation manifest's: the segment was replaced or damaged",
                entry.manifest
            ));
            continue;
        }
        let manifest = match Manifest::from_file_text(&text) {
            Ok(m) => m,
            Err(e) => {
                report.problems.push(format!("{}: {e}", entry.manifest));
                continue;
            }
        };
        if manifest.build_id != entry.build_id || manifest.counts.records != entry.rows {
            report.problems.push(format!("{}: not the segment the generation manifest names", entry.manifest));
            continue;
        }
        rows_of.push((entry.name.clone(), manifest.counts.records));
        let dir = if entry.name == ROOT_SEGMENT { root.to_path_buf() } else { root.join(&entry.name) };
        // A segment's key filter is a file of the generation (its checksum is in the
        // generation manifest's `files`), not of the segment's own manifest.
        let ignore: &[&str] = match (entry.name == ROOT_SEGMENT, entry.filter) {
            (true, _) => LAYER,
            (false, true) => &[filter::SEGMENT_FILE_NAME],
            (false, false) => &[],
        };
        let own_name = segment_filter_name(&entry.name);
        let own = entry.filter.then(|| filter_reader(root, g, &own_name, filter::SEGMENT_KIND)).flatten();
        let mut filters: Vec<(&str, &filter::FilterReader)> = Vec::new();
        if s > 0 {
            // The first segment is the base: in no filter.
            filters.extend(own.as_ref().map(|f| (own_name.as_str(), f)));
            filters.extend(union.as_ref().map(|(name, f)| (*name, f)));
        }
        if let Err(e) = verify_segment(&dir, manifest, &prefix, ignore, &filters, report) {
            report.problems.push(format!("{prefix}{e}"));
        }
    }
    let mode: Option<HashMode> = g.hash_mode.parse().ok();
    let key_width = mode.and_then(HashMode::key_width);
    for file in &g.files {
        let Ok(rel) = super::layer::relative(&file.name) else {
            report.problems.push(format!("manifest.json: '{}' is not a file inside the index", file.name));
            continue;
        };
        let bytes = match Bytes::map_path(&root.join(rel), Access::Sequential, false) {
            Ok(b) => b,
            Err(e) => {
                report.problems.push(format!("{}: cannot read: {e}", file.name));
                continue;
            }
        };
        report.files_checked.push((file.name.clone(), bytes.len() as u64));
        if bytes.len() as u64 != file.size {
            report.problems.push(format!("{}: {} bytes, but the manifest says {}", file.name, bytes.len(), file.size));
            continue;
        }
        let sum = xxh3_hex(&bytes);
        if sum != file.xxh3 {
            report.problems.push(format!(
                "{}: checksum {sum} differs from the manifest's {}: the file is damaged",
                file.name, file.xxh3
            ));
            continue;
        }
        if let Err(e) = check_generation_file(g, &file.name, bytes, key_width) {
            report.problems.push(e.to_string());
        }
    }
}

/// Key filter `name` of generation `g`, if it reads as one (a damaged one is reported
/// with the other layer files).
fn filter_reader(root: &Path, g: &GenerationManifest, name: &str, kind: Kind) -> Option<filter::FilterReader> {
    let seed = g.filter_seed().ok()??;
    let bytes = Bytes::map_path(&root.join(super::layer::relative(name).ok()?), Access::Random, false).ok()?;
    let view = FileView::parse_version(name, bytes, kind, crate::format::FORMAT_VERSION).ok()?;
    filter::FilterReader::new(view, seed).ok()
}

/// The frame, footer checksum and structure of generation-level file `name`.
fn check_generation_file(
    g: &GenerationManifest,
    name: &str,
    bytes: Bytes,
    key_width: Option<usize>,
) -> Result<(), crate::format::FormatError> {
    let kind: Kind = if name.ends_with(".rows") {
        deletes::KIND
    } else if name.ends_with(".pws1") {
        passwords::file_kind(PasswordHashKind::Sha1)
    } else if name.ends_with(".pwnt") {
        passwords::file_kind(PasswordHashKind::Ntlm)
    } else if name.ends_with(".keys") {
        tombstones::KIND
    } else if name.ends_with(".chg") {
        changes::KIND
    } else if name.ends_with(&format!("/{}", filter::SEGMENT_FILE_NAME)) {
        filter::SEGMENT_KIND
    } else if name.ends_with(".union") {
        filter::UNION_KIND
    } else {
        return Err(crate::format::FormatError::damaged(name, "not a file kind of the generation layer"));
    };
    let view = FileView::parse_version(name, bytes, kind, crate::format::FORMAT_VERSION)?;
    view.verify_checksum()?;
    if kind == deletes::KIND {
        let rows = g
            .segments
            .iter()
            .find(|s| s.deletes.as_ref().and_then(|d| d.rows.as_deref()) == Some(name))
            .map(|s| s.rows)
            .ok_or_else(|| crate::format::FormatError::damaged(name, "no segment of the generation names it"))?;
        deletes::DeletesReader::new(view, rows)?.verify()
    } else if kind == tombstones::KIND {
        tombstones::TombstonesReader::new(view, key_width)?.verify()
    } else if kind == changes::KIND {
        changes::ChangesReader::new(view, key_width)?.verify()
    } else if kind == filter::SEGMENT_KIND || kind == filter::UNION_KIND {
        let seed = g.filter_seed().ok().flatten().ok_or_else(|| {
            crate::format::FormatError::damaged(name, "a key filter, but manifest.json has no valid filter_seed")
        })?;
        filter::FilterReader::new(view, seed)?.verify()
    } else {
        let k = if name.ends_with(".pws1") { PasswordHashKind::Sha1 } else { PasswordHashKind::Ntlm };
        passwords::PasswordFileReader::new(view, k)?.verify()
    }
}
