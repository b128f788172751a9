//! `breachdex compact`: every segment of the current generation merged into one, with
//! removed sources and deleted rows left out, published as the next generation. The
//! answers do not change (so cursors stay valid); the removed data is gone from disk
//! once the old segments are collected.
//!
//! The merge reads the segments' rows in the build's sort order and feeds the build's
//! writer (no dumps, no re-parsing), so the new segment is what one `build` of the
//! effective data writes. Its per-source counts must equal the generation's, which
//! every earlier writer kept; a difference stops the compaction before it publishes.

use super::UpdateError;
use super::layer::{open_generation_file, open_subtractions};
use super::manifest::ChangeEntry;
use super::update::{DELETES_DIR, Update, failpoint};
use crate::build::merge::{MergeInput, MergeOptions, merge_indexes};
use crate::build::{BuildProgress, BuildSummary, DEFAULT_MEMORY_BUDGET};
use crate::format::deletes::{self, DeletesReader};
use crate::index::{Index, OpenOptions};
use crate::keymode::Salt;
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

/// Options of [`compact_index`].
#[derive(Clone, Default)]
pub struct CompactOptions {
    /// The index's salt (hashed modes).
    pub salt: Option<Salt>,
    /// Peak memory budget (as a build's); 0 takes the build's default.
    pub memory_budget: u64,
    /// Worker threads; `None` uses every core.
    pub threads: Option<usize>,
    /// Time as Unix seconds, for reproducible output (`SOURCE_DATE_EPOCH`).
    pub source_date_epoch: Option<i64>,
    /// Progress receiver of the merge.
    pub progress: Option<Arc<dyn BuildProgress>>,
}

impl std::fmt::Debug for CompactOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompactOptions")
            .field("salt", &self.salt)
            .field("memory_budget", &self.memory_budget)
            .field("threads", &self.threads)
            .field("source_date_epoch", &self.source_date_epoch)
            .finish_non_exhaustive()
    }
}

/// What [`compact_index`] did.
#[derive(Clone, Debug)]
pub struct CompactReport {
    /// The generation it published; `None` when the index was compact already (one
    /// segment, nothing hidden).
    pub generation: Option<u64>,
    /// Segments merged.
    pub segments_merged: usize,
    /// Records hidden before (deleted or of removed sources) and gone now.
    pub records_dropped: u64,
    /// The merge's summary (`None` when nothing was merged).
    pub summary: Option<BuildSummary>,
}

/// Merges every segment of the index at `index_dir` into one and publishes the next
/// generation. Readers keep reading the previous generation meanwhile; another writer
/// waits for the lock (`add` and `remove` fail at once while a compaction runs).
pub fn compact_index(index_dir: &Path, options: &CompactOptions) -> Result<CompactReport, UpdateError> {
    let update = Update::begin(index_dir, options.salt.as_ref())?;
    let current = update.current.clone();
    let hides = |e: &super::manifest::SegmentEntry| e.deletes.is_some();
    if current.segments.len() == 1 && !current.segments.iter().any(hides) && current.removed_sources.is_empty() {
        return Ok(CompactReport { generation: None, segments_merged: 1, records_dropped: 0, summary: None });
    }
    let salt = options.salt.clone().filter(|_| update.index.hash_mode().is_hashed());
    let open_options = OpenOptions { salt: salt.clone(), populate: false };
    let removed: BTreeSet<u32> = current.removed_sources.iter().map(|r| r.id).collect();
    // Each segment alone, its deleted rows and its password subtractions.
    let mut segments = Vec::with_capacity(current.segments.len());
    for entry in &current.segments {
        let index = super::layer::open_segment_alone(&update.root, &current, entry, &open_options)?;
        let mut deleted = Vec::new();
        let mut subtractions = None;
        if let Some(d) = &entry.deletes {
            if let Some(rows) = &d.rows {
                let view = open_generation_file(&update.root, &current, rows, deletes::KIND)?;
                let reader = DeletesReader::new(view, index.len())?;
                deleted.reserve(reader.len() as usize);
                for i in 0..reader.len() {
                    deleted.push(reader.get(i)?);
                }
            }
            if let Some(names) = &d.passwords {
                subtractions = Some(open_subtractions(&update.root, &current, names)?);
            }
        }
        segments.push((index, deleted, subtractions));
    }
    let inputs: Vec<MergeInput<'_>> = segments
        .iter()
        .map(|(index, deleted, subtractions)| MergeInput {
            index,
            deleted_rows: deleted,
            removed_sources: &removed,
            password_subtractions: subtractions.as_ref(),
        })
        .collect();
    let store = super::update::store_request(&current)?;
    let accelerator = segments.first().is_some_and(|(index, _, _)| index.has_accelerator());
    let merge_options = MergeOptions {
        sources: current.sources.clone(),
        store,
        salt,
        accelerator,
        memory_budget: if options.memory_budget == 0 { DEFAULT_MEMORY_BUDGET } else { options.memory_budget },
        threads: options.threads,
        source_date_epoch: options.source_date_epoch,
        replace: false,
        progress: options.progress.clone(),
    };
    let (name, dir) = update.new_segment()?;
    let summary = merge_indexes(&inputs, &dir, &merge_options)?;
    drop(inputs);
    failpoint("compact:after-segment");
    let (entry, manifest) = update.segment_entry(&name, &dir)?;
    // Every earlier writer kept the generation's counts exact: the merge recounted them.
    for s in &current.sources {
        let merged = manifest.sources.iter().find(|m| m.id == s.id);
        let same = merged.is_some_and(|m| m.records == s.records && m.pwn_count == s.pwn_count && m.assets == s.assets);
        if !same {
            return Err(UpdateError::Invalid(format!(
                "compaction stopped before publishing: source '{}' counts {} records / {:?} identities in the generation, {:?} / {:?} after the merge; run `breachdex verify` on the index",
                s.name,
                s.records,
                s.pwn_count,
                merged.map(|m| m.records),
                merged.and_then(|m| m.pwn_count)
            )));
        }
    }
    let records_before: u64 = current.segments.iter().map(|e| e.rows).sum();
    let created = options.source_date_epoch.unwrap_or_else(crate::date::now_unix_seconds);
    let mut next = update.next_manifest("compact", created);
    let generation = next.generation;
    next.segments = vec![entry];
    let deletes_prefix = format!("{DELETES_DIR}/");
    next.files.retain(|f| !f.name.starts_with(&deletes_prefix));
    super::filters::drop_filters(&mut next);
    next.changes.push(ChangeEntry { generation, file: None, entries: 0 });
    let dropped = records_before.saturating_sub(manifest.counts.records);
    if let Some(h) = next.history.last_mut() {
        h.records_removed = dropped;
    }
    failpoint("compact:before-publish");
    let published = update.publish(next, false)?;
    Ok(CompactReport {
        generation: Some(published.generation),
        segments_merged: current.segments.len(),
        records_dropped: dropped,
        summary: Some(summary),
    })
}

impl Index {
    /// Whether this segment has the plain key maps' accelerator files.
    pub(crate) fn has_accelerator(&self) -> bool {
        self.manifest().files.iter().any(|f| f.name.ends_with(".fpt"))
    }
}
