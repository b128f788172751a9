//! Converting a format version 1 index into a version 2 index without the dumps
//! ([`upgrade_index`], `breachdex upgrade OLD NEW`).
//!
//! The rows and asset columns of the old index are streamed in row order into the
//! version 2 record files (`records.hot`, `records.store`) with the same run boundaries
//! as a build of the same dumps (one run per e-mail key, then one per username key of
//! the username-only rows), so the store has the same blocks. The document ids the new
//! index recomputes on read are recomputed now and compared with the stored ones. The
//! e-mail runs and username postings are rewritten by their writers, in the layouts
//! builds write (so the upgraded index is the one a build of the same dumps makes); every
//! other file keeps its layout and is copied with the new version in its header. The new
//! index is written beside the output and renamed into place when complete; the old
//! index is only read.

use crate::asset::{ASSET_COUNT, Asset};
use crate::build::output::{OutputPlan, Staging, UnsafeOutput};
use crate::build::{BuildError, BuildProgress, write_manifest};
use crate::format::hot::HotRow;
use crate::format::keymap::OrderedKeys;
use crate::format::manifest::{Manifest, ManifestInputs};
use crate::format::recordfiles::{RecordFilesWriter, RecordIn};
use crate::format::store::StoreOptions;
use crate::format::{
    FORMAT_VERSION, FileSummary, FileView, FormatError, docid, hot, index_files, optional_index_files, postings,
    ranges, rewrite_version, store,
};
use crate::index::{Index, OpenError, OpenOptions, V1Parts};
use crate::keymode::Salt;
use crate::mmap::{Access, Bytes};
use crate::severity::Severity;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Options of [`upgrade_index`].
#[derive(Clone, Default)]
pub struct UpgradeOptions {
    /// The salt of a hashed index (required: the document ids are checked with it).
    pub salt: Option<Salt>,
    /// Threads compressing the record store's blocks (default: every core).
    pub threads: Option<usize>,
    /// Replace an existing index at the output (anything else there is never replaced).
    pub force: bool,
    /// Progress: `begin` with the row count, `advance` by rows converted, `phase` names.
    pub progress: Option<Arc<dyn BuildProgress>>,
}

impl std::fmt::Debug for UpgradeOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpgradeOptions")
            .field("salt", &self.salt.as_ref().map(|_| "<redacted>"))
            .field("threads", &self.threads)
            .field("force", &self.force)
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

/// What an upgrade did.
#[derive(Clone, Debug)]
pub struct UpgradeReport {
    /// The new index.
    pub out_dir: PathBuf,
    /// Records converted.
    pub rows: u64,
    /// Document ids recomputed and found equal to the stored ones.
    pub checked_ids: u64,
    /// Bytes of the old index (its files and manifest).
    pub bytes_before: u64,
    /// Bytes of the new index (its files and manifest).
    pub bytes_after: u64,
    /// Wall time.
    pub elapsed: Duration,
}

impl UpgradeReport {
    /// Records converted per second of wall time.
    pub fn records_per_second(&self) -> f64 {
        self.rows as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Why an upgrade failed. Nothing is left at the output, and the old index is unchanged.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UpgradeError {
    /// The old index does not open (not an index, damaged, wrong or missing salt).
    #[error("cannot upgrade {dir}: {source}")]
    Open {
        /// The old index.
        dir: PathBuf,
        /// Why it does not open.
        #[source]
        source: OpenError,
    },
    /// The old index already has the current format.
    #[error("{dir} is already a format version {version} index: there is nothing to upgrade")]
    AlreadyCurrent {
        /// The old index.
        dir: PathBuf,
        /// Its format version.
        version: u32,
    },
    /// The old index is damaged (found while converting it).
    #[error("{dir} is damaged: {reason}; run `breachdex verify` on it, and rebuild it from its dumps")]
    Damaged {
        /// The old index.
        dir: PathBuf,
        /// What is wrong, naming the file and row.
        reason: String,
    },
    /// The output cannot be written (it exists, is not an index, holds the old index,
    /// or an I/O error).
    #[error(transparent)]
    Output(#[from] BuildError),
}

impl From<UnsafeOutput> for UpgradeError {
    fn from(e: UnsafeOutput) -> UpgradeError {
        UpgradeError::Output(BuildError::Output(e))
    }
}

fn io_err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> UpgradeError {
    move |source| UpgradeError::Output(BuildError::Io { context: context.into(), source })
}

/// Converts the version 1 index at `old` into a version 2 index at `new`, without the
/// dumps it was built from.
///
/// `old` is opened (a hashed index needs [`UpgradeOptions::salt`]) and only read. The
/// records are re-encoded into `records.hot` and `records.store`; the document ids the
/// new index will recompute are checked against the stored ones; the e-mail runs and
/// username postings are rewritten in the layouts builds write, and the other files are
/// copied, after their checksums are checked. The new index is staged beside `new` and
/// renamed into place when complete: a failed or killed upgrade leaves nothing at `new`.
/// An existing index at `new` is replaced only with [`UpgradeOptions::force`].
pub fn upgrade_index(old: &Path, new: &Path, options: &UpgradeOptions) -> Result<UpgradeReport, UpgradeError> {
    let started = Instant::now();
    let open_options = OpenOptions { salt: options.salt.clone(), populate: false };
    let index =
        Index::open(old, &open_options).map_err(|source| UpgradeError::Open { dir: old.to_path_buf(), source })?;
    let parts = index
        .v1_parts()
        .ok_or_else(|| UpgradeError::AlreadyCurrent { dir: old.to_path_buf(), version: index.format_version() })?;
    let threads = match options.threads {
        Some(0) => return Err(BuildError::NoThreads.into()),
        Some(n) => n,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let inputs = vec![old.canonicalize().unwrap_or_else(|_| old.to_path_buf())];
    let plan = OutputPlan::check_index_dir(new, &inputs, options.force)?;
    let staging = Staging::create(&plan)?;
    let damaged = |e: FormatError| UpgradeError::Damaged { dir: old.to_path_buf(), reason: e.to_string() };
    let phase = |name: &'static str| {
        if let Some(p) = &options.progress {
            p.phase(name);
        }
    };

    phase("copying");
    let copy_err = |e| match e {
        CopyError::Format(e) => damaged(e),
        CopyError::Io(e) => e,
    };
    let mut files = copy_unchanged_files(&index, staging.index_dir()).map_err(copy_err)?;
    files.extend(rewrite_runs(&index, staging.index_dir(), staging.spill_dir()).map_err(copy_err)?);

    phase("records");
    if let Some(p) = &options.progress {
        p.begin(index.len());
    }
    let converted = convert_records(&index, &parts, &staging, threads, options.progress.as_deref())?;
    files.extend(converted.files);

    phase("checking");
    // The rows and columns were read, not copied: their checksums are checked last, so
    // that damage the id check cannot see still stops the upgrade.
    for view in v1_record_views(&index).map_err(|e| match e {
        CopyError::Format(e) => damaged(e),
        CopyError::Io(e) => e,
    })? {
        view.verify_checksum().map_err(damaged)?;
    }

    phase("finishing");
    let manifest = upgraded_manifest(index.manifest(), files.clone());
    let manifest_bytes = write_manifest(&manifest, staging.index_dir())?;
    staging.publish(&plan)?;
    let bytes_before = index.manifest().files.iter().map(|f| f.size).sum::<u64>()
        + std::fs::metadata(old.join(crate::format::manifest::FILE_NAME)).map_or(0, |m| m.len());
    Ok(UpgradeReport {
        out_dir: new.to_path_buf(),
        rows: converted.rows,
        checked_ids: converted.checked_ids,
        bytes_before,
        bytes_after: files.iter().map(|f| f.size).sum::<u64>() + manifest_bytes,
        elapsed: started.elapsed(),
    })
}

enum CopyError {
    Format(FormatError),
    Io(UpgradeError),
}

impl From<FormatError> for CopyError {
    fn from(e: FormatError) -> CopyError {
        CopyError::Format(e)
    }
}

/// Maps file `name` of the version 1 index and checks its frame.
fn map_v1_file(dir: &Path, name: &str, kind: crate::format::Kind) -> Result<FileView, CopyError> {
    let path = dir.join(name);
    let bytes = Bytes::map_path(&path, Access::Sequential, false)
        .map_err(|e| CopyError::Io(io_err(format!("reading {}", path.display()))(e)))?;
    Ok(FileView::parse_version(name, bytes, kind, 1)?)
}

/// The version 1 record files (`records.rows` and the asset columns), mapped.
fn v1_record_views(index: &Index) -> Result<Vec<FileView>, CopyError> {
    let new_names: Vec<String> =
        index_files(FORMAT_VERSION as u32, index.hash_mode(), index.stored_assets()).into_iter().map(|f| f.0).collect();
    index_files(1, index.hash_mode(), index.stored_assets())
        .into_iter()
        .filter(|(name, _)| !new_names.contains(name))
        .map(|(name, kind)| map_v1_file(index.dir(), &name, kind))
        .collect()
}

/// Copies every file whose layout did not change (key maps, accelerators, password
/// files) into `dir` with the current version, after checking its checksum (a new
/// checksum must not hide old damage).
fn copy_unchanged_files(index: &Index, dir: &Path) -> Result<Vec<FileSummary>, CopyError> {
    let (mode, stored) = (index.hash_mode(), index.stored_assets());
    let v1_names: Vec<String> = index_files(1, mode, stored).into_iter().map(|f| f.0).collect();
    let unchanged = index_files(FORMAT_VERSION as u32, mode, stored)
        .into_iter()
        .filter(|(name, _)| v1_names.contains(name) && name != ranges::FILE_NAME && name != postings::FILE_NAME)
        .chain(optional_index_files().into_iter().filter(|(name, _)| index.manifest().file(name).is_some()));
    let mut files = Vec::new();
    for (name, kind) in unchanged {
        let view = map_v1_file(index.dir(), &name, kind)?;
        view.verify_checksum()?;
        let path = dir.join(&name);
        files.push(
            rewrite_version(&view, kind, &path)
                .map_err(|e| CopyError::Io(io_err(format!("writing {}", path.display()))(e)))?,
        );
    }
    Ok(files)
}

/// Writes `email.ranges` and `username.postings` into `dir` through their writers, in
/// the layouts builds write (Elias-Fano run starts and list offsets, bit-packed row
/// ids), after checking the old files' checksums and structure; `spill_dir` receives
/// the writers' temporary files.
fn rewrite_runs(index: &Index, dir: &Path, spill_dir: &Path) -> Result<Vec<FileSummary>, CopyError> {
    let total_rows = index.len();
    let write_err = |name: &str| {
        let path = dir.join(name);
        move |e| CopyError::Io(io_err(format!("writing {}", path.display()))(e))
    };
    let view = map_v1_file(index.dir(), ranges::FILE_NAME, ranges::KIND)?;
    view.verify_checksum()?;
    let old = ranges::RangesReader::new(view)?;
    old.verify(total_rows)?;
    let mut writer = ranges::RangesWriter::create(dir, spill_dir).map_err(write_err(ranges::FILE_NAME))?;
    for ordinal in 0..old.len() {
        writer.push_start(old.rows(ordinal)?.start).map_err(write_err(ranges::FILE_NAME))?;
    }
    let ranges_file = writer.finish(old.email_rows()).map_err(write_err(ranges::FILE_NAME))?;

    let view = map_v1_file(index.dir(), postings::FILE_NAME, postings::KIND)?;
    view.verify_checksum()?;
    let old = postings::PostingsReader::new(view)?;
    old.verify(total_rows)?;
    let mut writer =
        postings::PostingsWriter::create(dir, spill_dir, total_rows).map_err(write_err(postings::FILE_NAME))?;
    for ordinal in 0..old.len() {
        for row in old.rows(ordinal)? {
            writer.push_row(row).map_err(write_err(postings::FILE_NAME))?;
        }
        writer.end_key().map_err(write_err(postings::FILE_NAME))?;
    }
    let postings_file = writer.finish().map_err(write_err(postings::FILE_NAME))?;
    Ok(vec![ranges_file, postings_file])
}

/// The manifest of the upgraded index: the old one's options, counts, build statistics
/// and sources, the new files, and a build id computed from them as a build computes it.
/// `created` stays the old build's time (the records are the same).
fn upgraded_manifest(old: &Manifest, files: Vec<FileSummary>) -> Manifest {
    let mut manifest = Manifest::assemble(ManifestInputs {
        hash_mode: old.hash_mode.clone(),
        salt_fingerprint: old.salt_fingerprint.clone(),
        stored_assets: old.stored_assets.clone(),
        store_request: old.store_request.clone(),
        created_unix: 0,
        counts: old.counts.clone(),
        build_stats: old.build_stats.clone(),
        sources: old.sources.clone(),
        files,
    });
    manifest.created = old.created.clone();
    manifest
}

/// What the record conversion wrote.
struct Converted {
    files: [FileSummary; 2],
    rows: u64,
    checked_ids: u64,
}

/// Where the runs of the rows begin: the e-mail runs of `email.ranges` (with their keys,
/// walked in order alongside), then one run per username key of the username-only rows
/// (the rows at or after `email_rows` in the key's postings, in key order), exactly as
/// a build starts them.
struct Runs<'a> {
    parts: &'a V1Parts<'a>,
    email_rows: u64,
    email_keys: OrderedKeys<'a>,
    /// The next e-mail key ordinal and the row its run starts at.
    email_ordinal: u64,
    email_next: Option<u64>,
    email_key: Vec<u8>,
    /// The next username key ordinal to look at, and the next username-only run start.
    username_ordinal: u64,
    username_next: Option<u64>,
}

impl<'a> Runs<'a> {
    fn new(parts: &'a V1Parts<'a>) -> Result<Runs<'a>, FormatError> {
        let email_keys = parts.email_map.ordered_keys();
        let mut runs = Runs {
            parts,
            email_rows: parts.email_ranges.email_rows(),
            email_keys,
            email_ordinal: 0,
            email_next: None,
            email_key: Vec::new(),
            username_ordinal: 0,
            username_next: None,
        };
        runs.email_next = runs.email_start(0)?;
        runs.username_next = runs.next_username_start()?;
        Ok(runs)
    }

    fn email_start(&self, ordinal: u64) -> Result<Option<u64>, FormatError> {
        if ordinal >= self.parts.email_ranges.len() {
            return Ok(None);
        }
        Ok(Some(self.parts.email_ranges.rows(ordinal)?.start))
    }

    /// The next key of the e-mail key map, which must have ordinal `ordinal`.
    fn next_email_key(&mut self, ordinal: u64) -> Result<(), FormatError> {
        let key = self.email_keys.key(ordinal)?;
        self.email_key.clear();
        self.email_key.extend_from_slice(key);
        Ok(())
    }

    /// The first row at or after `email_rows` in the postings of the next username key
    /// that has one.
    fn next_username_start(&mut self) -> Result<Option<u64>, FormatError> {
        let postings = self.parts.username_postings;
        while self.username_ordinal < postings.len() {
            let ordinal = self.username_ordinal;
            self.username_ordinal += 1;
            if let Some(row) = postings.rows(ordinal)?.find(|row| *row >= self.email_rows) {
                return Ok(Some(row));
            }
        }
        Ok(None)
    }

    /// Whether row `row` (called for every row in order) starts a run; for a row with an
    /// e-mail key, that key is then [`Runs::email_key`].
    fn starts_run(&mut self, row: u64) -> Result<bool, FormatError> {
        let ranges = crate::format::ranges::FILE_NAME;
        let postings = crate::format::postings::FILE_NAME;
        if row < self.email_rows {
            match self.email_next {
                Some(start) if start == row => {
                    self.next_email_key(self.email_ordinal)?;
                    self.email_ordinal += 1;
                    self.email_next = self.email_start(self.email_ordinal)?;
                    Ok(true)
                }
                Some(start) if start < row => Err(FormatError::damaged(
                    ranges,
                    format!("the run of key ordinal {} starts at row {start}, before row {row}", self.email_ordinal),
                )),
                _ if row == 0 => Err(FormatError::damaged(ranges, "the first run does not start at row 0")),
                _ => Ok(false),
            }
        } else {
            match self.username_next {
                Some(start) if start == row => {
                    self.username_next = self.next_username_start()?;
                    Ok(true)
                }
                Some(start) if start < row => Err(FormatError::damaged(
                    postings,
                    format!("username-only rows are not in key order (row {start} after row {row})"),
                )),
                _ if row == self.email_rows => Err(FormatError::damaged(
                    postings,
                    format!("row {row}, the first username-only row, is in no username's postings"),
                )),
                _ => Ok(false),
            }
        }
    }
}

/// Streams every row into the version 2 record files.
fn convert_records(
    index: &Index,
    parts: &V1Parts<'_>,
    staging: &Staging,
    threads: usize,
    progress: Option<&dyn BuildProgress>,
) -> Result<Converted, UpgradeError> {
    let old = index.dir();
    let damaged = |e: FormatError| UpgradeError::Damaged { dir: old.to_path_buf(), reason: e.to_string() };
    let rows_file = crate::format::rows::FILE_NAME;
    let row_damage = |id: u64, what: String| damaged(FormatError::damaged(rows_file, format!("row {id}: {what}")));
    let stored = index.stored_assets();
    let plain = !index.hash_mode().is_hashed();
    let dir = staging.index_dir();
    let write_err = |e| io_err(format!("writing the record files in {}", dir.display()))(e);
    let mut writer = RecordFilesWriter::create(
        dir,
        staging.spill_dir(),
        parts.sources.len() as u64,
        stored,
        plain,
        StoreOptions { threads, ..StoreOptions::default() },
    )
    .map_err(write_err)?;
    let mut runs = Runs::new(parts).map_err(damaged)?;
    let salt = parts.salt.map(Salt::as_bytes);
    let mut scratch = Vec::with_capacity(256);
    let mut checked_ids = 0u64;
    let total = parts.rows.len();
    for id in 0..total {
        let row = parts.rows.get(id).ok_or_else(|| row_damage(id, "missing".into()))?;
        if runs.starts_run(id).map_err(damaged)? {
            writer.start_run().map_err(write_err)?;
        }
        let slot = parts
            .sources
            .binary_search_by_key(&row.source_id, |s| s.id)
            .map_err(|_| row_damage(id, format!("names unknown source {}", row.source_id)))?;
        let severity = Severity::from_score(row.severity)
            .ok_or_else(|| row_damage(id, format!("severity score {} is not a severity", row.severity)))?;
        let mut texts: [Option<&str>; ASSET_COUNT] = [None; ASSET_COUNT];
        for asset in row.assets.intersection(stored).iter() {
            if let Some(column) = &parts.columns[asset.index()] {
                texts[asset.index()] = column.get(id).map_err(damaged)?;
            }
        }
        if row.assets.intersection(stored) == row.assets {
            check_document_id(&mut scratch, salt, &row, &texts).map_err(|what| row_damage(id, what))?;
            checked_ids += 1;
        }
        let values: [Option<&[u8]>; ASSET_COUNT] = std::array::from_fn(|i| texts[i].map(str::as_bytes));
        let email_key = (id < runs.email_rows).then_some(runs.email_key.as_slice());
        writer
            .push(&RecordIn {
                hot: HotRow { assets: row.assets, severity, slot: slot as u32 },
                values: &values,
                email_key,
                document_id: &row.document_id,
            })
            .map_err(write_err)?;
        if let Some(p) = progress
            && (id + 1) % (1 << 16) == 0
        {
            p.advance(1 << 16);
        }
    }
    if let Some(p) = progress {
        p.advance(total % (1 << 16));
    }
    let files = writer.finish().map_err(write_err)?;
    debug_assert_eq!(files[0].name, hot::FILE_NAME);
    debug_assert_eq!(files[1].name, store::FILE_NAME);
    Ok(Converted { files, rows: total, checked_ids })
}

/// Recomputes the document id of a row whose assets are all stored, as a version 2
/// reader will, and compares it with the stored one.
fn check_document_id(
    scratch: &mut Vec<u8>,
    salt: Option<&[u8]>,
    row: &crate::format::rows::Row,
    texts: &[Option<&str>; ASSET_COUNT],
) -> Result<(), String> {
    let normalized = |asset: Asset| -> Result<Option<String>, String> {
        let Some(value) = texts[asset.index()] else { return Ok(None) };
        let normal = match asset {
            Asset::Email => crate::normalize::normalize_email(value),
            _ => crate::normalize::normalize_username(value),
        };
        normal.map(|n| Some(n.into_owned())).map_err(|e| format!("its stored {asset} is not a valid {asset} ({e})"))
    };
    let email = normalized(Asset::Email)?;
    let username = normalized(Asset::Username)?;
    let id = docid::document_id(scratch, salt, row.source_id, texts, email.as_deref(), username.as_deref());
    if id != row.document_id {
        return Err(format!(
            "its document id {} is not the id of its values ({}): the row or a column is damaged",
            crate::format::rows::document_id_string(&row.document_id),
            crate::format::rows::document_id_string(&id)
        ));
    }
    Ok(())
}
