//! `breachdex add`: a new segment from new dumps (new sources, or new files of sources
//! the index has), published as the next generation, in time proportional to the new
//! data.
//!
//! The segment is built by the build pipeline with a record filter that drops records
//! already live in the index (same source and document id) and records holding a
//! suppressed key, so that segments stay disjoint and an opted-out identity never comes
//! back. Then one walk over the new segment's keys lists the (key, source) pairs it
//! brings that the index did not have: the generation's change feed, and the exact
//! increments of each source's identity count (`pwn_count`).

use super::UpdateError;
use super::changes::{ChangeKind, ChangeRecord, write_change_file};
use super::manifest::{ChangeEntry, GenerationManifest};
use super::update::{Update, failpoint};
use crate::asset::Asset;
use crate::build::filter::{FilterVerdict, RecordFilter};
use crate::build::{BuildOptions, BuildProgress, BuildSummary, build_segment};
use crate::catalog::Catalog;
use crate::format::manifest::SourceMeta;
use crate::format::tombstones::TombstonesReader;
use crate::index::{IdentifierKind, Index};
use crate::keymode::{HashMode, Salt};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Options of [`add_to_index`].
#[derive(Clone, Default)]
pub struct AddOptions {
    /// The index's salt (hashed modes).
    pub salt: Option<Salt>,
    /// Peak memory budget of the segment build (see [`BuildOptions::memory_budget`]);
    /// 0 takes the build's default.
    pub memory_budget: u64,
    /// Worker threads; `None` uses every core.
    pub threads: Option<usize>,
    /// Where rejects go; default `<INDEX>.gNNNNNNNN.rejects.jsonl` beside the index.
    pub rejects_path: Option<PathBuf>,
    /// See [`BuildOptions::rejects_raw`].
    pub rejects_raw: bool,
    /// Time as Unix seconds, for reproducible output (`SOURCE_DATE_EPOCH`).
    pub source_date_epoch: Option<i64>,
    /// Progress receiver of the segment build.
    pub progress: Option<Arc<dyn BuildProgress>>,
}

impl std::fmt::Debug for AddOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AddOptions")
            .field("salt", &self.salt)
            .field("memory_budget", &self.memory_budget)
            .field("threads", &self.threads)
            .field("rejects_path", &self.rejects_path)
            .field("source_date_epoch", &self.source_date_epoch)
            .finish_non_exhaustive()
    }
}

/// What [`add_to_index`] did.
#[derive(Clone, Debug)]
pub struct AddReport {
    /// The generation it published.
    pub generation: u64,
    /// The segment it wrote (`None` when every record was already in the index).
    pub segment: Option<String>,
    /// The segment build's summary (records read, kept, rejected, dropped as already
    /// live, dropped as suppressed).
    pub summary: BuildSummary,
    /// (key, source) pairs the index gained.
    pub gained: u64,
}

/// Adds the dumps of `catalog` to the index at `index_dir` as a new segment and
/// publishes the next generation.
///
/// The catalog may name new sources and sources the index has (new files of theirs);
/// a source it has must keep its name and metadata (the catalog may leave out
/// `publish_date`, which then stays as it is), and a removed source's id or name
/// cannot come back. The hash mode, salt, `--store` request and password index of the
/// index apply to the new segment.
pub fn add_to_index(index_dir: &Path, catalog: &Catalog, options: &AddOptions) -> Result<AddReport, UpdateError> {
    let update = Update::begin(index_dir, options.salt.as_ref())?;
    let current = update.current.clone();
    let mode: HashMode = current.hash_mode.parse().map_err(UpdateError::Invalid)?;
    let catalog = check_catalog(&current, catalog)?;
    let generation = update.next_generation();
    let (segment_name, segment_dir) = update.new_segment()?;
    let rejects =
        options.rejects_path.clone().unwrap_or_else(|| beside(index_dir, &format!("g{generation:08}.rejects.jsonl")));
    let store = super::update::store_request(&current)?;
    let build_options = BuildOptions {
        hash_mode: mode,
        salt: options.salt.clone().filter(|_| mode.is_hashed()),
        store,
        memory_budget: if options.memory_budget == 0 {
            crate::build::DEFAULT_MEMORY_BUDGET
        } else {
            options.memory_budget
        },
        threads: options.threads,
        rejects_path: Some(rejects),
        force: false,
        rejects_raw: options.rejects_raw,
        source_date_epoch: options.source_date_epoch,
        password_index: current.passwords,
        // As the base: a segment of an accelerated index gets accelerators too, so that
        // its lookups cost what the base's do.
        accelerator: update.index.has_accelerator(),
        progress: options.progress.clone(),
    };
    let tombstones = update.tombstones()?;
    let filter = AddFilter::new(&update.index, tombstones);
    let summary = build_segment(&catalog, &segment_dir, &build_options, &filter)?;
    filter.result()?;
    failpoint("add:after-segment");

    let (entry, segment_manifest) = update.segment_entry(&segment_name, &segment_dir)?;
    check_segment_sources(&catalog.path, &current, &segment_manifest.sources)?;
    let created = options.source_date_epoch.unwrap_or_else(crate::date::now_unix_seconds);
    let mut next = update.next_manifest("add", created);
    let mut gained = 0;
    let keep_segment = entry.rows > 0;
    if keep_segment {
        let segment = Index::open_segment(
            &segment_dir,
            segment_manifest.clone(),
            &crate::OpenOptions { salt: options.salt.clone().filter(|_| mode.is_hashed()), populate: false },
        )?;
        let walk = walk_new_keys(&update.index, &segment)?;
        gained = walk.changes.len() as u64;
        merge_sources(&mut next, &segment_manifest.sources, &walk.pwn_gained);
        let file = write_change_file(&update, generation, mode, &walk.changes)?;
        next.changes.push(ChangeEntry { generation, file: file.as_ref().map(|f| f.name.clone()), entries: gained });
        next.files.extend(file);
        next.segments.push(entry);
        super::filters::write_add_filters(&update, &mut next, &segment_name, &segment)?;
    } else {
        // Every record was dropped: no segment, but new sources are listed (with no
        // records), as a build of a catalog naming them would list them.
        merge_sources(&mut next, &segment_manifest.sources, &BTreeMap::new());
        next.changes.push(ChangeEntry { generation, file: None, entries: 0 });
    }
    if let Some(h) = next.history.last_mut() {
        h.records_read = summary.records_read;
        h.rejected_records = summary.rejected_records;
        h.duplicates = summary.duplicates;
        h.duplicates_across_segments = summary.duplicates_across_segments;
        h.suppressed = summary.suppressed;
        h.records_added = summary.kept;
    }
    failpoint("add:before-publish");
    let published = update.publish(next, keep_segment)?;
    Ok(AddReport { generation: published.generation, segment: keep_segment.then_some(segment_name), summary, gained })
}

/// `<index>.<suffix>` beside the index directory.
fn beside(index_dir: &Path, suffix: &str) -> PathBuf {
    let name = index_dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "index".into());
    index_dir.with_file_name(format!("{name}.{suffix}"))
}

/// Checks the catalog against the index: no removed source comes back, a known id keeps
/// its name, a known name keeps its id. Fills in the `publish_date` of known sources
/// the catalog leaves out.
fn check_catalog(current: &GenerationManifest, catalog: &Catalog) -> Result<Catalog, UpdateError> {
    let mut catalog = catalog.clone();
    for spec in &mut catalog.sources {
        if let Some(r) = current.removed_sources.iter().find(|r| r.id == spec.id || r.name == spec.name) {
            return Err(UpdateError::Invalid(format!(
                "{}: source '{}' (id {}) was removed in generation {}; give the new dump a new name and id",
                catalog.path.display(),
                r.name,
                r.id,
                r.generation
            )));
        }
        let by_id = current.sources.iter().find(|s| s.id == spec.id);
        let by_name = current.sources.iter().find(|s| s.name == spec.name);
        match (by_id, by_name) {
            (Some(a), _) if a.name != spec.name => {
                return Err(UpdateError::Invalid(format!(
                    "{}: source id {} is '{}' in the index, the catalog calls it '{}': a source keeps its id and name (give a new source an id the index does not have)",
                    catalog.path.display(),
                    spec.id,
                    a.name,
                    spec.name
                )));
            }
            (None, Some(b)) => {
                return Err(UpdateError::Invalid(format!(
                    "{}: source '{}' has id {} in the index, the catalog gives {}: a source keeps its id and name (give a new source a name the index does not have)",
                    catalog.path.display(),
                    spec.name,
                    b.id,
                    spec.id
                )));
            }
            (Some(a), _) if spec.publish_date.is_none() => {
                spec.publish_date = a.publish_date.parse().ok();
            }
            _ => {}
        }
    }
    Ok(catalog)
}

/// The sources of the new segment must describe known sources exactly as the index does
/// (apart from their counts): rows take their source's metadata from it.
fn check_segment_sources(
    catalog: &Path,
    current: &GenerationManifest,
    segment: &[SourceMeta],
) -> Result<(), UpdateError> {
    for s in segment {
        let Some(known) = current.sources.iter().find(|k| k.id == s.id) else { continue };
        let strip = |m: &SourceMeta| {
            let mut m = m.clone();
            m.records = 0;
            m.pwn_count = None;
            m.assets = None;
            serde_json::to_value(m).unwrap_or_default()
        };
        let (a, b) = (strip(known), strip(s));
        if a != b {
            let fields: Vec<String> = match (a.as_object(), b.as_object()) {
                (Some(a), Some(b)) => {
                    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
                    keys.sort();
                    keys.dedup();
                    keys.into_iter().filter(|k| a.get(*k) != b.get(*k)).cloned().collect()
                }
                _ => vec![],
            };
            return Err(UpdateError::Invalid(format!(
                "{}: source '{}' (id {}): the catalog changes {} of the source the index has; an add keeps a source's metadata as it is (write the source as `breachdex info` shows it)",
                catalog.display(),
                s.name,
                s.id,
                fields.join(", ")
            )));
        }
    }
    Ok(())
}

/// The record filter of `add`.
struct AddFilter<'a> {
    index: &'a Index,
    tombstones: Option<TombstonesReader>,
    /// The first error met (a damaged index): the add fails with it after the build.
    error: Mutex<Option<UpdateError>>,
}

impl<'a> AddFilter<'a> {
    fn new(index: &'a Index, tombstones: Option<TombstonesReader>) -> AddFilter<'a> {
        AddFilter { index, tombstones: tombstones.filter(|t| !t.is_empty()), error: Mutex::new(None) }
    }

    fn result(self) -> Result<(), UpdateError> {
        match self.error.into_inner().unwrap_or_else(|e| e.into_inner()) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn fail(&self, e: UpdateError) {
        let mut slot = self.error.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_none() {
            *slot = Some(e);
        }
    }

    fn verdict_or_error(
        &self,
        source_id: u32,
        email_key: Option<&[u8]>,
        username_key: Option<&[u8]>,
        document_id: &[u8; 16],
    ) -> Result<FilterVerdict, UpdateError> {
        if let Some(t) = &self.tombstones {
            let suppressed = match (email_key, username_key) {
                (Some(e), _) if t.contains(IdentifierKind::Email, e)? => true,
                (_, Some(u)) => t.contains(IdentifierKind::Username, u)?,
                _ => false,
            };
            if suppressed {
                return Ok(FilterVerdict::Suppressed);
            }
        }
        if self.index.source(source_id).is_none() {
            return Ok(FilterVerdict::Keep);
        }
        let rows = match (email_key, username_key) {
            (Some(e), _) => self.index.lookup_key(e, Some(IdentifierKind::Email))?,
            (None, Some(u)) => self.index.lookup_key(u, Some(IdentifierKind::Username))?,
            (None, None) => return Ok(FilterVerdict::Keep),
        };
        for row in rows {
            if self.index.row_meta(row)?.source_id == source_id
                && self.index.record(row)?.row().document_id == *document_id
            {
                return Ok(FilterVerdict::Duplicate);
            }
        }
        Ok(FilterVerdict::Keep)
    }
}

impl RecordFilter for AddFilter<'_> {
    fn applies_to(&self, source_id: u32) -> bool {
        self.tombstones.is_some() || self.index.source(source_id).is_some()
    }

    fn verdict(
        &self,
        source_id: u32,
        email_key: Option<&[u8]>,
        username_key: Option<&[u8]>,
        document_id: &[u8; 16],
    ) -> FilterVerdict {
        match self.verdict_or_error(source_id, email_key, username_key, document_id) {
            Ok(v) => v,
            Err(e) => {
                self.fail(e);
                FilterVerdict::Keep
            }
        }
    }
}

/// What the walk over a new segment's keys found.
struct NewKeys {
    /// (key, source) pairs the index did not have, sorted by (kind, key, source).
    changes: Vec<ChangeRecord>,
    /// By source id: identities the source gains (SPEC §12 `PwnCount`).
    pwn_gained: BTreeMap<u32, u64>,
}

/// Lists the (key, source) pairs `segment` brings that `index` (the current generation)
/// has no live row for, and the identities each source gains: an e-mail key new to the
/// source, or a username key new among the source's records without an e-mail.
fn walk_new_keys(index: &Index, segment: &Index) -> Result<NewKeys, UpdateError> {
    let parts = segment.segment_parts().ok_or_else(super::update::not_v2)?;
    let email_rows = segment.email_rows_count();
    let mut changes = Vec::new();
    let mut pwn_gained: BTreeMap<u32, u64> = BTreeMap::new();
    let known = |id: u32| index.source(id).is_some();
    let mut run_sources: Vec<u32> = Vec::new();
    let mut old_sources: Vec<(u32, bool)> = Vec::new();
    let mut keys = parts.email_map.ordered_keys();
    for ordinal in 0..parts.email_map.len() {
        let key = keys.key(ordinal)?;
        run_sources.clear();
        for row in parts.email_ranges.rows(ordinal)? {
            let id = segment.row_meta(row)?.source_id;
            if run_sources.last() != Some(&id) {
                run_sources.push(id);
            }
        }
        run_sources.dedup();
        old_sources.clear();
        if run_sources.iter().any(|id| known(*id)) {
            for row in index.lookup_key(key, Some(IdentifierKind::Email))? {
                old_sources.push((index.row_meta(row)?.source_id, true));
            }
        }
        for &id in &run_sources {
            if !old_sources.iter().any(|(s, _)| *s == id) {
                changes.push(ChangeRecord {
                    kind: IdentifierKind::Email,
                    key: key.to_vec(),
                    source_id: id,
                    change: ChangeKind::Gained,
                });
                *pwn_gained.entry(id).or_default() += 1;
            }
        }
    }
    let mut keys = parts.username_map.ordered_keys();
    let mut sources: Vec<(u32, bool)> = Vec::new();
    for ordinal in 0..parts.username_map.len() {
        let key = keys.key(ordinal)?;
        sources.clear();
        for row in parts.username_postings.rows(ordinal)? {
            sources.push((segment.row_meta(row)?.source_id, row >= email_rows));
        }
        sources.sort_unstable();
        old_sources.clear();
        if sources.iter().any(|(id, _)| known(*id)) {
            for row in index.lookup_key(key, Some(IdentifierKind::Username))? {
                old_sources.push((index.row_meta(row)?.source_id, !index.row_has_email(row)?));
            }
        }
        let mut last = None;
        for &(id, _) in &sources {
            if last != Some(id) && !old_sources.iter().any(|(s, _)| *s == id) {
                changes.push(ChangeRecord {
                    kind: IdentifierKind::Username,
                    key: key.to_vec(),
                    source_id: id,
                    change: ChangeKind::Gained,
                });
            }
            last = Some(id);
        }
        // Identities: one per source with a username-only record of this key, unless
        // the index already counted it.
        let mut counted: Vec<u32> = Vec::new();
        for &(id, username_only) in &sources {
            if username_only && !counted.contains(&id) {
                counted.push(id);
                if !old_sources.iter().any(|(s, only)| *s == id && *only) {
                    *pwn_gained.entry(id).or_default() += 1;
                }
            }
        }
    }
    Ok(NewKeys { changes, pwn_gained })
}

/// The source table of the next generation: known sources gain the segment's records,
/// identities and assets; new sources come in as the segment describes them.
fn merge_sources(next: &mut GenerationManifest, segment: &[SourceMeta], pwn_gained: &BTreeMap<u32, u64>) {
    for s in segment {
        let gained = pwn_gained.get(&s.id).copied().unwrap_or(0);
        match next.sources.iter_mut().find(|k| k.id == s.id) {
            Some(known) => {
                known.records += s.records;
                known.pwn_count = Some(known.pwn_count.unwrap_or(known.records - s.records) + gained);
                let mut assets: Vec<String> = known.assets.clone().unwrap_or_default();
                for a in s.assets.iter().flatten() {
                    if !assets.contains(a) {
                        assets.push(a.clone());
                    }
                }
                assets.sort_by_key(|n| Asset::from_name(n).map(|a| a.index()).unwrap_or(usize::MAX));
                known.assets = Some(assets);
            }
            None => next.sources.push(s.clone()),
        }
    }
}
