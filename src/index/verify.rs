//! [`verify`]: the explicit, read-everything check of an index directory (open is
//! constant time and checks only frames and counts). It needs no salt and builds no
//! [`super::Index`]: it reads the files into the same readers lookups use and walks
//! every structure.

use super::{IndexFiles, OpenError, RecordFiles, parse_manifest_meta, read_manifest};
use crate::asset::AssetSet;
use crate::format::column::ColumnReader;
use crate::format::filter::FilterReader;
use crate::format::manifest::Manifest;
use crate::format::rows::RowsReader;
use crate::format::{FileView, FormatError, index_files, manifest, optional_index_files};
use crate::generation::RootManifest;
use crate::mmap::{Access, Bytes};
use std::collections::BTreeMap;
use std::path::Path;

/// What [`verify`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Files whose checksums were read, with their sizes.
    pub files_checked: Vec<(String, u64)>,
    /// Every problem found, one sentence each, naming the file. Empty: the index is
    /// intact.
    pub problems: Vec<String>,
}

impl VerifyReport {
    /// Whether no problem was found.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Checks an index directory completely: the manifest, every file's size, frame and
/// checksums (the manifest's whole-file XXH3 and the file's own footer), files that do
/// not belong, and the structure of every file (sorted keys, consistent directories,
/// runs and postings in range, readable columns, rows that name known sources). Needs
/// no salt. Reads every byte.
///
/// A path that is not an index at all (nothing there, a file, a folder without
/// `manifest.json`) is an error ([`OpenError::NotAnIndex`]), as is a directory that
/// cannot be read; damage, including a damaged manifest, is reported in the
/// [`VerifyReport`].
pub fn verify(dir: &Path) -> Result<VerifyReport, OpenError> {
    let mut report = VerifyReport::default();
    let manifest = match read_manifest(dir) {
        Ok(m) => m,
        Err(OpenError::Manifest { source: manifest::ManifestError::Unsupported(_), .. })
            if matches!(crate::generation::read_root_at(dir), Ok(RootManifest::Generation(_))) =>
        {
            if let Ok(RootManifest::Generation(g)) = crate::generation::read_root_at(dir) {
                crate::generation::verify_generation(dir, &g, &mut report);
            }
            return Ok(report);
        }
        Err(e @ OpenError::Manifest { .. }) => {
            report.problems.push(e.to_string());
            return Ok(report);
        }
        Err(e) => return Err(e),
    };
    // The writer lock of `add`, `remove` and `compact`, and what one of them killed
    // before its first publish left behind: the update layer, not the index.
    verify_segment(dir, manifest, "", crate::generation::VERIFY_LAYER, &[], &mut report)?;
    Ok(report)
}

/// Checks one index directory (a whole index, or one segment of an updated index)
/// against `manifest`, adding its findings to `report` with `prefix` before each file
/// name. `ignore` names entries of the directory that belong to the generation layer.
/// `filters` (file name, reader): key filters that must hold every key of the segment.
pub(crate) fn verify_segment(
    dir: &Path,
    manifest: Manifest,
    prefix: &str,
    ignore: &[&str],
    filters: &[(&str, &FilterReader)],
    report: &mut VerifyReport,
) -> Result<(), OpenError> {
    let problems_before = report.problems.len();
    let entries = std::fs::read_dir(dir).map_err(|source| OpenError::Io { path: dir.to_path_buf(), source })?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let layer =
            ignore.iter().any(|i| *i == name || (i.ends_with('*') && name.starts_with(i.trim_end_matches('*'))));
        if name != manifest::FILE_NAME && manifest.file(&name).is_none() && !layer {
            report.problems.push(format!("{prefix}{name}: not part of this index (not in the manifest)"));
        }
    }
    let version = manifest.format_version;
    let kinds: BTreeMap<String, _> = match parse_manifest_meta(&manifest) {
        Ok((mode, stored, _)) => index_files(version, mode, stored).into_iter().chain(optional_index_files()).collect(),
        Err(e) => {
            report.problems.push(format!("{prefix}{e}"));
            return Ok(());
        }
    };
    let mut files = BTreeMap::new();
    for entry in &manifest.files {
        let bytes = match Bytes::map_path(&dir.join(&entry.name), Access::Sequential, false) {
            Ok(b) => b,
            Err(e) => {
                report.problems.push(format!("{prefix}{}: cannot read: {e}", entry.name));
                continue;
            }
        };
        report.files_checked.push((format!("{prefix}{}", entry.name), bytes.len() as u64));
        if let Err(problem) = check_file(&entry.name, &bytes, entry, kinds.get(&entry.name), version) {
            report.problems.push(format!("{prefix}{problem}"));
            continue;
        }
        files.insert(entry.name.clone(), bytes);
    }
    if report.problems.len() > problems_before {
        return Ok(());
    }
    match IndexFiles::new(dir.to_path_buf(), manifest, files) {
        Ok(index) => {
            if let Err(e) = verify_structure(&index) {
                report.problems.push(format!("{prefix}{e}"));
                return Ok(());
            }
            for (name, filter) in filters {
                if let Err(e) = keys_in_filter(&index, name, filter) {
                    report.problems.push(e.to_string());
                }
            }
        }
        Err(e) => report.problems.push(format!("{prefix}{e}")),
    }
    Ok(())
}

/// One file against its manifest entry: size, whole-file checksum, frame, footer
/// checksum. The problem, one sentence naming the file.
fn check_file(
    name: &str,
    bytes: &Bytes,
    entry: &manifest::FileEntry,
    kind: Option<&crate::format::Kind>,
    version: u32,
) -> Result<(), String> {
    if bytes.len() as u64 != entry.size {
        return Err(format!("{name}: {} bytes, but the manifest says {}", bytes.len(), entry.size));
    }
    let sum = format!("{:016x}", xxhash_rust::xxh3::xxh3_64(bytes));
    if sum != entry.xxh3 {
        return Err(format!("{name}: checksum {sum} differs from the manifest's {}: the file is damaged", entry.xxh3));
    }
    let kind = kind.ok_or_else(|| format!("{name}: listed in the manifest but not a file of this index"))?;
    let version = u16::try_from(version).unwrap_or(u16::MAX);
    let view = FileView::parse_version(name, bytes.clone(), *kind, version).map_err(|e| e.to_string())?;
    view.verify_checksum().map_err(|e| e.to_string())
}

/// Every key of the segment `files` must be in `filter` (file `name`): a filter that
/// lost a key's bits would turn its hits into misses.
fn keys_in_filter(files: &IndexFiles, name: &str, filter: &FilterReader) -> Result<(), FormatError> {
    use crate::index::IdentifierKind::{Email, Username};
    for (kind, what, map) in [(Email, "e-mail", &files.email_map), (Username, "username", &files.username_map)] {
        let mut keys = map.ordered_keys();
        for ordinal in 0..map.len() {
            if !filter.may_contain(kind, crate::format::filter::hash(kind, keys.key(ordinal)?, filter.seed())) {
                return Err(FormatError::damaged(
                    name,
                    format!(
                        "{what} key {ordinal} of segment {} is not in the filter: the filter is damaged",
                        files.dir.display()
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn verify_structure(files: &IndexFiles) -> Result<(), FormatError> {
    let total = files.records.len();
    files.email_map.verify()?;
    files.username_map.verify()?;
    files.email_ranges.verify(total)?;
    files.username_postings.verify(total)?;
    if let Some(passwords) = &files.passwords {
        passwords.sha1.verify()?;
        passwords.ntlm.verify()?;
        if let Some(rowrefs) = &files.rowrefs {
            rowrefs.verify(passwords)?;
        }
    }
    let per_source = match &files.records {
        RecordFiles::V1 { rows, columns } => verify_v1_rows(files, rows, columns)?,
        RecordFiles::V2 { hot, store, keys } => {
            let per_slot = hot.verify()?;
            let bits_of = |rows: std::ops::Range<u64>| -> Result<Vec<AssetSet>, FormatError> {
                if rows.end > hot.len() {
                    return Err(hot.view().damaged(format!(
                        "rows {}-{} of the record store are past the hot rows",
                        rows.start, rows.end
                    )));
                }
                let mut bits = Vec::new();
                hot.assets_into(rows, &mut bits)?;
                Ok(bits)
            };
            store.verify(&bits_of, files.stored, *keys)?;
            // Slot i is the i-th source by id (the hot file's source count is the
            // manifest's, checked at open).
            files.sources.iter().zip(per_slot).map(|(source, seen)| (source.id, seen)).collect()
        }
    };
    for s in &files.sources {
        let (records, assets) = per_source.get(&s.id).copied().unwrap_or((0, AssetSet::EMPTY));
        if records != s.records {
            return Err(FormatError::damaged(
                manifest::FILE_NAME,
                format!("source {} should have {} records", s.name, s.records),
            ));
        }
        if s.assets.is_some_and(|listed| listed != assets) {
            return Err(FormatError::damaged(
                manifest::FILE_NAME,
                format!("source {}: the assets listed are not those of its records", s.name),
            ));
        }
    }
    Ok(())
}

/// The version 1 rows and columns: every row names a known source and a valid severity,
/// and has a value in the column of every stored asset it holds. Returns each source's
/// row count and assets.
fn verify_v1_rows(
    files: &IndexFiles,
    rows: &RowsReader,
    columns: &[Option<ColumnReader>; crate::asset::ASSET_COUNT],
) -> Result<BTreeMap<u32, (u64, AssetSet)>, FormatError> {
    for col in columns.iter().flatten() {
        col.verify()?;
    }
    let mut per_source: BTreeMap<u32, (u64, AssetSet)> = BTreeMap::new();
    for id in 0..rows.len() {
        let row = rows.get(id).ok_or_else(|| rows.view().damaged("row missing"))?;
        if files.source(row.source_id).is_none() {
            return Err(rows.view().damaged(format!("row {id} names unknown source {}", row.source_id)));
        }
        if crate::severity::Severity::from_score(row.severity).is_none() {
            return Err(rows.view().damaged(format!("row {id} has invalid severity {}", row.severity)));
        }
        for asset in row.assets.intersection(files.stored).iter() {
            let col = columns[asset.index()].as_ref();
            if col.map(|c| c.get(id)).transpose()?.flatten().is_none() {
                return Err(rows.view().damaged(format!("row {id} holds {asset} but its column is empty")));
            }
        }
        let seen = per_source.entry(row.source_id).or_insert((0, AssetSet::EMPTY));
        seen.0 += 1;
        seen.1 = seen.1.union(row.assets);
    }
    Ok(per_source)
}
