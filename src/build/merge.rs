//! Merging indexes (`compact`, docs/design/incremental-updates.md §5.3): the live rows
//! of several version 2 indexes (segments) into one new index, through the build's own
//! [`IndexWriter`], without the dumps.
//!
//! Each input is read in row order, which is the build's sort order (docs/FORMAT.md
//! §3.1): the e-mail keys by streaming the key map in ordinal order beside
//! `email.ranges`, the keys of the username-only rows from the username map and the
//! postings, the values and document ids by decoding `records.store` block after block.
//! Deleted rows and rows of removed sources are skipped. A k-way merge by sort key gives
//! the entry stream a build's external sort would give, and the writer turns it into
//! the same files. The username postings are rebuilt as in a build: each input's row
//! numbers are translated to the new ones by a map written while merging (one `u64` per
//! input row, in a temporary file), then its postings go through the writer's username
//! sort. The password files are merged as sorted streams, counts summed, the
//! subtractions of deleted records applied, zero counts dropped.
//!
//! With the same `SOURCE_DATE_EPOCH`, merging indexes built from disjoint parts of a
//! catalog gives every file (but `manifest.json`) byte for byte as one build of the
//! whole catalog, and with deletions as a build without the deleted records.
//!
//! Inputs must be disjoint in live records (the writers of a generation keep them so):
//! the same record live in two inputs would count twice in the password files, so it
//! stops the merge.
//!
//! One reader thread per input decodes its rows into sort entries, sent in batches of
//! 256 KiB (at most 4 waiting per input); the calling thread merges them into the
//! writer, whose key map and record store have their own threads.
//!
//! Memory: one decoded store block and a few batches per input, the writer's username
//! sort within the budget, and the row maps (mapped files, read back one input at a
//! time). At 10M records and `--memory 1G`, the peak resident set was 753 MB.

use super::entry::{self, GROUP_EMAIL, GROUP_USERNAME};
use super::memory::MemoryBudget;
use super::output::{OutputPlan, Staging};
use super::passwords::RowRefSort;
use super::writer::{IndexWriter, WrittenIndex};
use super::{
    BuildError, BuildProgress, BuildSummary, PasswordHashCounts, PhaseClock, SourceSummary, WorkerPool, io_err,
    write_manifest,
};
use crate::asset::{ASSET_COUNT, AssetSet};
use crate::date;
use crate::format::manifest::{BuildStats, Counts, Manifest, ManifestInputs, SourceMeta};
use crate::format::passwords::{PasswordFileReader, PasswordFileWriter, PasswordFiles, file_name};
use crate::format::ranges::{self, RangesReader};
use crate::format::rowrefs::RowRef;
use crate::format::store::Block;
use crate::format::{FileSummary, FormatError, keymap::OrderedKeys, postings::PostingsReader};
use crate::index::{Index, KnownKeys, LookupError, SegmentParts, SourceInfo};
use crate::keymode::{HashMode, Salt};
use crate::mmap::{Access, Bytes};
use crate::password::PasswordHashKind;
use std::collections::BTreeSet;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender};
use std::time::Instant;

/// One index to merge, with what is no longer live in it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct MergeInput<'a> {
    /// The open index (a version 2 index; a hashed one opened with its salt).
    pub index: &'a Index,
    /// Row ids deleted from it, strictly ascending (a generation's `DELR` list).
    pub deleted_rows: &'a [u64],
    /// Ids of the sources removed from the generation: their rows are skipped.
    pub removed_sources: &'a BTreeSet<u32>,
    /// Password counts to subtract from its password files (the deleted and removed
    /// records' hashes, in the layout of `passwords.sha1` / `passwords.ntlm`).
    pub password_subtractions: Option<&'a PasswordFiles>,
}

/// Options of [`merge_indexes`].
#[derive(Clone, Default)]
pub(crate) struct MergeOptions {
    /// The source table of the merged index, in catalog order: the metadata of every
    /// live source (a build's catalog). Records, `pwn_count` and assets are recounted.
    pub sources: Vec<SourceMeta>,
    /// The assets to keep (a build's `--store`); `None` keeps every asset present.
    pub store: Option<AssetSet>,
    /// The salt of a hashed index (the inputs are opened with it).
    pub salt: Option<Salt>,
    /// Make the plain key maps' accelerators.
    pub accelerator: bool,
    /// Peak memory budget in bytes, as a build's.
    pub memory_budget: u64,
    /// Worker threads; `None` uses every core.
    pub threads: Option<usize>,
    /// Build time as Unix seconds (`SOURCE_DATE_EPOCH`); `None` uses the clock.
    pub source_date_epoch: Option<i64>,
    /// Replace an existing index at the output.
    pub replace: bool,
    /// Progress receiver (`begin` with the input rows, `advance` by rows read).
    pub progress: Option<Arc<dyn BuildProgress>>,
}

/// Merges the live rows of `inputs` into a new index at `out_dir` (staged beside it and
/// renamed into place when complete, as a build). See the module documentation.
pub(crate) fn merge_indexes(
    inputs: &[MergeInput<'_>],
    out_dir: &Path,
    options: &MergeOptions,
) -> Result<BuildSummary, BuildError> {
    let started = Instant::now();
    let memory = MemoryBudget::new(options.memory_budget)?;
    let threads = match options.threads {
        Some(0) => return Err(BuildError::NoThreads),
        Some(n) => n,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let checked = check_inputs(inputs, options)?;
    if options.accelerator && checked.mode.is_hashed() {
        return Err(BuildError::InvalidOption(format!(
            "the key map accelerator is for plain indexes; a {} index's key maps are hash tables already",
            checked.mode
        )));
    }
    let input_dirs: Vec<PathBuf> =
        inputs.iter().map(|i| i.index.dir().canonicalize().unwrap_or_else(|_| i.index.dir().to_path_buf())).collect();
    let plan = OutputPlan::check_index_dir(out_dir, &input_dirs, options.replace)?;
    let staging = Staging::create(&plan)?;
    let pool = WorkerPool::new(threads)
        .map_err(|e| BuildError::InvalidOption(format!("cannot start {threads} threads: {e}")))?;
    let build_unix = options.source_date_epoch.unwrap_or_else(date::now_unix_seconds);
    let total_rows: u64 = inputs.iter().map(|i| i.index.len()).sum();
    if let Some(p) = &options.progress {
        p.begin(total_rows);
    }
    let mut phases = PhaseClock::new(options.progress.clone());

    phases.start("merging");
    let dir = staging.index_dir();
    let write_err = |e| io_err(format!("writing index files in {}", dir.display()))(e);
    let source_ids: Vec<u32> = options.sources.iter().map(|s| s.id).collect();
    let mut writer = IndexWriter::create(
        dir,
        staging.spill_dir(),
        checked.mode,
        checked.stored,
        checked.stored,
        &source_ids,
        memory.username_sort(false, 0),
        threads,
        options.accelerator.then(|| crate::format::fingerprints::seed_for_build(build_unix)),
    )
    .map_err(write_err)?;
    // The merged index gets `passwords.rowrefs` when it counts passwords it does not
    // store and every input has its own to derive it from (an input built before the
    // file existed has none: the merged index then has none either).
    let rowrefs = checked.passwords
        && crate::format::rowrefs::needed(true, options.store)
        && checked.parts.iter().all(|p| p.rowrefs.is_some());
    // One reader thread per input decodes its rows into sort entries; this thread
    // merges them into the writer and writes the row maps (kept for the row
    // references).
    let row_maps = std::thread::scope(|scope| -> Result<Vec<Bytes>, BuildError> {
        let mut feeds = Vec::with_capacity(inputs.len());
        for (n, (input, parts)) in inputs.iter().zip(&checked.parts).enumerate() {
            let (tx, rx) = std::sync::mpsc::sync_channel(BATCHES_IN_FLIGHT);
            let mut cursor = SegmentCursor::new(input, parts, checked.stored);
            std::thread::Builder::new()
                .name(format!("breachdex-merge-{n}"))
                .spawn_scoped(scope, move || cursor.send_batches(&tx))
                .map_err(io_err("starting a merge reader thread"))?;
            let map = RowMapWriter::create(staging.spill_dir().join(format!("rowmap-{n}")))
                .map_err(io_err(format!("creating a row map in {}", staging.spill_dir().display())))?;
            feeds.push(Feed::new(input, rx, map)?);
        }
        let mut merged = 0u64;
        loop {
            let mut best: Option<usize> = None;
            for (i, f) in feeds.iter().enumerate() {
                if let Some(key) = f.head_key()
                    && best.is_none_or(|b| feeds.get(b).and_then(Feed::head_key).is_some_and(|b| key < b))
                {
                    best = Some(i);
                }
            }
            let Some(f) = best.and_then(|b| feeds.get_mut(b)) else { break };
            let (entry, old_row) = f.head().ok_or_else(|| f.lost())?;
            let row = writer.rows();
            writer.push(entry).map_err(write_err)?;
            if writer.rows() == row {
                return Err(input_error(
                    f.input.index,
                    format!(
                        "row {old_row} is a record that another input also holds; the inputs of a merge must not share records"
                    ),
                ));
            }
            f.map_row(old_row, row)?;
            f.next()?;
            merged += 1;
            if let Some(p) = &options.progress
                && merged.is_multiple_of(1 << 16)
            {
                p.advance(1 << 16);
            }
        }
        phases.start("usernames");
        let mut maps = Vec::new();
        for (f, parts) in feeds.into_iter().zip(&checked.parts) {
            let (input, map) = f.finish()?;
            translate_postings(input, parts, &map, &mut writer)?;
            if rowrefs {
                maps.push(map);
            }
        }
        Ok(maps)
    })?;
    let mut written = pool.install(|| writer.finish(memory.merge_read)).map_err(write_err)?;

    let mut password_hashes = None;
    if checked.passwords {
        phases.start("passwords");
        let (files, counts) = merge_passwords(inputs, &checked.parts, dir)?;
        written.files.extend(files);
        password_hashes = Some(counts);
        if rowrefs {
            let mut sort = RowRefSort::new(memory.record_sort / 2, staging.spill_dir());
            merge_row_refs(inputs, &checked.parts, &row_maps, dir, &mut sort)?;
            let file = sort
                .write(dir, written.rows, counts.sha1.max(counts.ntlm), memory.merge_read)
                .map_err(io_err(format!("writing the password row references in {}", dir.display())))?;
            written.files.push(file);
        }
    }
    drop(row_maps);

    phases.start("finishing");
    let manifest = merged_manifest(inputs, options, &checked, &written, password_hashes, build_unix);
    let manifest_bytes = write_manifest(&manifest, dir)?;
    staging.publish(&plan)?;
    let kept = written.rows;
    Ok(BuildSummary {
        out_dir: out_dir.to_path_buf(),
        hash_mode: checked.mode,
        records_read: kept,
        kept,
        rejected_records: 0,
        rejected_fields: 0,
        file_errors: 0,
        duplicates: 0,
        duplicates_across_segments: 0,
        suppressed: 0,
        email_keys: written.email_keys,
        username_keys: written.username_keys,
        password_hashes,
        sources: options
            .sources
            .iter()
            .map(|s| {
                let kept = written.per_source.get(&s.id).copied().unwrap_or(0);
                SourceSummary { id: s.id, name: s.name.clone(), records_read: kept, kept, ..SourceSummary::default() }
            })
            .collect(),
        unknown_columns: Vec::new(),
        index_bytes: written.files.iter().map(|f| f.size).sum::<u64>() + manifest_bytes,
        input_bytes: inputs.iter().flat_map(|i| &i.index.manifest().files).map(|f| f.size).sum(),
        spilled_runs: written.spilled_runs,
        rejects_path: None,
        rejects_raw: false,
        elapsed: started.elapsed(),
        phases: phases.finish(),
    })
}

/// What [`check_inputs`] found: the inputs' common hash mode, the assets the merged
/// index stores, and each input's parts.
struct CheckedInputs<'a> {
    mode: HashMode,
    stored: AssetSet,
    passwords: bool,
    parts: Vec<SegmentParts<'a>>,
}

fn input_error(index: &Index, reason: impl Into<String>) -> BuildError {
    BuildError::Input { dir: index.dir().to_path_buf(), reason: reason.into() }
}

fn damaged(index: &Index) -> impl Fn(FormatError) -> BuildError + '_ {
    move |e| input_error(index, format!("{e}; run `breachdex verify` on it"))
}

fn lookup_damaged(index: &Index) -> impl Fn(LookupError) -> BuildError + '_ {
    move |e| input_error(index, format!("{e}; run `breachdex verify` on it"))
}

/// Checks that the inputs fit together and with the options, before anything is
/// written: format version 2, one hash mode and salt, password files in all or none,
/// sorted deletion lists within the row counts, every live row's source in the merged
/// source table, and every asset to store stored by the inputs that hold it. One scan of
/// the hot rows gives the assets the merged index stores (as a build: the `store`
/// request ∩ the assets present in its records).
fn check_inputs<'a>(inputs: &[MergeInput<'a>], options: &MergeOptions) -> Result<CheckedInputs<'a>, BuildError> {
    let first = inputs.first().ok_or_else(|| BuildError::InvalidOption("there is no index to merge".into()))?;
    let mode = first.index.hash_mode();
    let fingerprint = options.salt.as_ref().filter(|_| mode.is_hashed()).map(Salt::fingerprint);
    let mut ids: Vec<u32> = options.sources.iter().map(|s| s.id).collect();
    ids.sort_unstable();
    if ids.windows(2).any(|w| w[0] == w[1]) {
        return Err(BuildError::InvalidOption("the merged source table names a source id twice".into()));
    }
    let filter = options.store.unwrap_or(AssetSet::ALL);
    let mut stored = AssetSet::EMPTY;
    let mut parts = Vec::with_capacity(inputs.len());
    let mut with_passwords = 0;
    for input in inputs {
        let index = input.index;
        let p = index
            .segment_parts()
            .ok_or_else(|| input_error(index, "it is a format version 1 index; run `breachdex upgrade` on it first"))?;
        if index.hash_mode() != mode {
            return Err(input_error(index, format!("its hash mode is {}, another input's {mode}", index.hash_mode())));
        }
        if index.manifest().salt_fingerprint != fingerprint {
            return Err(input_error(index, "it was built with another salt than the one given"));
        }
        with_passwords += usize::from(p.passwords.is_some());
        if input.password_subtractions.is_some() && p.passwords.is_none() {
            return Err(input_error(index, "password counts to subtract were given, but it has no password index"));
        }
        let rows = index.len();
        if input.deleted_rows.windows(2).any(|w| w[0] >= w[1]) || input.deleted_rows.last().is_some_and(|r| *r >= rows)
        {
            return Err(input_error(
                index,
                format!("its deleted rows are not strictly ascending row ids below its {rows} rows"),
            ));
        }
        let mut live = Liveness::new(input);
        let mut assets = AssetSet::EMPTY;
        for row in 0..rows {
            let (source, row_assets, _) = index.row_source(row).map_err(lookup_damaged(index))?;
            if live.is_live(row, source) {
                if ids.binary_search(&source.id).is_err() {
                    return Err(input_error(
                        index,
                        format!(
                            "row {row} belongs to source {} ({}), which the merged source table lacks",
                            source.id, source.name
                        ),
                    ));
                }
                assets = assets.union(row_assets);
            }
        }
        let wanted = filter.intersection(assets);
        if let Some(missing) = wanted.iter().find(|a| !index.stored_assets().contains(*a)) {
            return Err(input_error(
                index,
                format!("its records hold {missing} values, which it does not store but the merged index is to store"),
            ));
        }
        stored = stored.union(wanted);
        parts.push(p);
    }
    if with_passwords != 0 && with_passwords != inputs.len() {
        return Err(BuildError::InvalidOption(
            "some inputs have a password index and others not: merge indexes built alike".into(),
        ));
    }
    Ok(CheckedInputs { mode, stored, passwords: with_passwords != 0, parts })
}

/// Which rows of an input are live: not in its deletion list (walked in step with the
/// rows, which are asked for in ascending order), not of a removed source.
struct Liveness<'a> {
    deleted: &'a [u64],
    removed: &'a BTreeSet<u32>,
}

impl<'a> Liveness<'a> {
    fn new(input: &MergeInput<'a>) -> Liveness<'a> {
        Liveness { deleted: input.deleted_rows, removed: input.removed_sources }
    }

    /// Whether `row` (ascending from call to call) of `source` is live.
    fn is_live(&mut self, row: u64, source: &SourceInfo) -> bool {
        while let Some((&first, rest)) = self.deleted.split_first()
            && first < row
        {
            self.deleted = rest;
        }
        self.deleted.first() != Some(&row) && !self.removed.contains(&source.id)
    }
}

/// Where a row is in the merged index: `u64` little-endian per input row, in row order
/// ([`DEAD_ROW`] for rows not carried over), written to a temporary file.
struct RowMapWriter {
    path: PathBuf,
    out: BufWriter<std::fs::File>,
}

/// Row map entry of a row that is not in the merged index.
const DEAD_ROW: u64 = u64::MAX;

impl RowMapWriter {
    fn create(path: PathBuf) -> io::Result<RowMapWriter> {
        let out = BufWriter::with_capacity(1 << 20, std::fs::File::create(&path)?);
        Ok(RowMapWriter { path, out })
    }

    fn push(&mut self, new_row: u64) -> io::Result<()> {
        self.out.write_all(&new_row.to_le_bytes())
    }

    fn finish(mut self) -> io::Result<Bytes> {
        self.out.flush()?;
        drop(self.out);
        let bytes = Bytes::map_path(&self.path, Access::Random, false)?;
        let _ = std::fs::remove_file(&self.path);
        Ok(bytes)
    }
}

/// One input read in row order: the key of each row's run, its liveness, and the sort
/// entry of the current live row (the head).
struct SegmentCursor<'a> {
    input: &'a MergeInput<'a>,
    live: Liveness<'a>,
    rows: u64,
    email_rows: u64,
    ranges: &'a RangesReader,
    postings: &'a PostingsReader,
    email_keys: OrderedKeys<'a>,
    email_ordinal: u64,
    /// End of the current e-mail run.
    email_end: u64,
    username_keys: OrderedKeys<'a>,
    username_ordinal: u64,
    /// End of the current username-only run.
    username_end: u64,
    /// The key of the current run.
    key: Vec<u8>,
    /// The next row to read.
    next_row: u64,
    /// The assets the merged index stores.
    stored: AssetSet,
    /// The record store block of the rows being read.
    block: Option<Arc<Block>>,
    /// Whether `sort_key` and `payload` hold a live row not merged yet.
    head: bool,
    sort_key: Vec<u8>,
    payload: Vec<u8>,
}

impl<'a> SegmentCursor<'a> {
    fn new(input: &'a MergeInput<'a>, parts: &SegmentParts<'a>, stored: AssetSet) -> SegmentCursor<'a> {
        let email_rows = parts.email_ranges.email_rows();
        SegmentCursor {
            input,
            live: Liveness::new(input),
            rows: input.index.len(),
            email_rows,
            ranges: parts.email_ranges,
            postings: parts.username_postings,
            email_keys: parts.email_map.ordered_keys(),
            email_ordinal: 0,
            email_end: 0,
            username_keys: parts.username_map.ordered_keys(),
            username_ordinal: 0,
            username_end: email_rows,
            key: Vec::new(),
            next_row: 0,
            stored,
            block: None,
            head: false,
            sort_key: Vec::with_capacity(128),
            payload: Vec::with_capacity(1024),
        }
    }

    /// Reads every live row and sends their sort entries in batches; an error ends
    /// the batches (the receiver reports it).
    fn send_batches(&mut self, tx: &SyncSender<Result<Batch, BuildError>>) {
        let mut batch = Batch::default();
        loop {
            if let Err(e) = self.advance() {
                let _ = tx.send(Err(e));
                return;
            }
            if !self.head {
                break;
            }
            batch.rows.push(self.next_row - 1);
            super::sort::encode_entry(&mut batch.entries, &self.sort_key, &self.payload);
            if batch.entries.len() >= BATCH_BYTES && tx.send(Ok(std::mem::take(&mut batch))).is_err() {
                return;
            }
        }
        if !batch.rows.is_empty() {
            let _ = tx.send(Ok(batch));
        }
    }

    /// Moves the key of the current run to the run holding `row` (called for every row
    /// in order).
    fn enter_run(&mut self, row: u64) -> Result<(), FormatError> {
        if row < self.email_rows {
            while row >= self.email_end {
                let ordinal = self.email_ordinal;
                let run = self.ranges.rows(ordinal)?;
                if run.start != self.email_end || run.is_empty() {
                    return Err(FormatError::damaged(
                        ranges::FILE_NAME,
                        format!("the run of key ordinal {ordinal} is rows {run:?}, not from row {}", self.email_end),
                    ));
                }
                let key = self.email_keys.key(ordinal)?;
                self.key.clear();
                self.key.extend_from_slice(key);
                self.email_ordinal += 1;
                self.email_end = run.end;
            }
        } else {
            let postings = crate::format::postings::FILE_NAME;
            while row >= self.username_end {
                let ordinal = self.username_ordinal;
                if ordinal >= self.postings.len() {
                    return Err(FormatError::damaged(
                        postings,
                        format!("row {row}, a username-only row, is in no username's postings"),
                    ));
                }
                let mut n = 0u64;
                for r in self.postings.rows(ordinal)?.filter(|r| *r >= self.email_rows) {
                    if r != self.username_end + n {
                        return Err(FormatError::damaged(
                            postings,
                            format!("username-only rows are not in key order (key ordinal {ordinal}, row {r})"),
                        ));
                    }
                    n += 1;
                }
                let key = self.username_keys.key(ordinal)?;
                if n > 0 {
                    self.key.clear();
                    self.key.extend_from_slice(key);
                }
                self.username_ordinal += 1;
                self.username_end += n;
            }
        }
        Ok(())
    }

    /// Reads rows up to the next live one and makes it the head (or ends the input).
    fn advance(&mut self) -> Result<(), BuildError> {
        let index = self.input.index;
        self.head = false;
        while self.next_row < self.rows {
            let row = self.next_row;
            self.next_row += 1;
            self.enter_run(row).map_err(damaged(index))?;
            let (source, _, _) = index.row_source(row).map_err(lookup_damaged(index))?;
            if !self.live.is_live(row, source) {
                continue;
            }
            let group = if row < self.email_rows { GROUP_EMAIL } else { GROUP_USERNAME };
            let known = match group {
                GROUP_EMAIL => KnownKeys { email: Some(&self.key), username: None },
                _ => KnownKeys { email: None, username: Some(&self.key) },
            };
            // The cursor keeps its block: inputs take turns, and the store's own cache
            // holds one block per thread.
            let block = match self.block.take() {
                Some(b) if b.rows().contains(&row) => b,
                _ => index.record_block(row).map_err(lookup_damaged(index))?,
            };
            let record = index.record_in_block(row, &block, known).map_err(lookup_damaged(index))?;
            self.block = Some(block);
            let r = *record.row();
            let values = record.into_values();
            let texts: [Option<&str>; ASSET_COUNT] = std::array::from_fn(|i| values[i].as_deref());
            self.sort_key.clear();
            entry::record_sort_key(&mut self.sort_key, group, &self.key, r.source_id, &r.document_id, 0);
            self.payload.clear();
            entry::record_payload(
                &mut self.payload,
                source.publish_date,
                r.assets,
                r.severity,
                None,
                self.stored,
                &texts,
            );
            self.head = true;
            return Ok(());
        }
        Ok(())
    }
}

/// Bytes of sort entries a reader thread sends at once (tests: a few entries, so that
/// their small indexes go through many batches).
#[cfg(not(test))]
const BATCH_BYTES: usize = 256 << 10;
#[cfg(test)]
const BATCH_BYTES: usize = 256;
/// Batches waiting per input, at most.
const BATCHES_IN_FLIGHT: usize = 4;

/// Sort entries of consecutive live rows of one input, with their row ids.
#[derive(Default)]
struct Batch {
    rows: Vec<u64>,
    /// Encoded entries ([`super::sort::encode_entry`]) back to back, one per row.
    entries: Vec<u8>,
}

/// The merging side of one input: the batches its reader thread sends, the current
/// entry (the head), and its row map.
struct Feed<'a> {
    input: &'a MergeInput<'a>,
    rx: Receiver<Result<Batch, BuildError>>,
    batch: Batch,
    /// The head: `batch.rows[row_at]`, whose entry starts at `batch.entries[byte_at..]`.
    row_at: usize,
    byte_at: usize,
    map: RowMapWriter,
    /// The next input row the map has no entry for.
    mapped: u64,
}

impl<'a> Feed<'a> {
    fn new(
        input: &'a MergeInput<'a>,
        rx: Receiver<Result<Batch, BuildError>>,
        map: RowMapWriter,
    ) -> Result<Feed<'a>, BuildError> {
        let mut feed = Feed { input, rx, batch: Batch::default(), row_at: 0, byte_at: 0, map, mapped: 0 };
        feed.refill()?;
        Ok(feed)
    }

    /// Receives the next batch when the current one is used up (an empty batch at the
    /// end of the input).
    fn refill(&mut self) -> Result<(), BuildError> {
        if self.row_at < self.batch.rows.len() {
            return Ok(());
        }
        self.batch = match self.rx.recv() {
            Ok(batch) => batch?,
            Err(_) => Batch::default(),
        };
        self.row_at = 0;
        self.byte_at = 0;
        Ok(())
    }

    /// The head entry and its input row; `None` at the end.
    fn head(&self) -> Option<(&[u8], u64)> {
        let row = *self.batch.rows.get(self.row_at)?;
        let entry = super::sort::entries(self.batch.entries.get(self.byte_at..)?).next()?;
        Some((entry, row))
    }

    /// The head's sort key; `None` at the end.
    fn head_key(&self) -> Option<&[u8]> {
        self.head().map(|(entry, _)| super::sort::sort_key(entry))
    }

    fn lost(&self) -> BuildError {
        input_error(self.input.index, "a merge reader thread sent a malformed entry")
    }

    /// Moves past the head.
    fn next(&mut self) -> Result<(), BuildError> {
        let len = self.head().map(|(entry, _)| entry.len()).ok_or_else(|| self.lost())?;
        self.byte_at += len;
        self.row_at += 1;
        self.refill()
    }

    /// Records that input row `old` became row `new` (the rows before it that are not
    /// mapped yet were not carried over).
    fn map_row(&mut self, old: u64, new: u64) -> Result<(), BuildError> {
        while self.mapped < old {
            self.map.push(DEAD_ROW).map_err(io_err("writing a row map"))?;
            self.mapped += 1;
        }
        self.map.push(new).map_err(io_err("writing a row map"))?;
        self.mapped = old + 1;
        Ok(())
    }

    /// The input and its finished row map, once every row was merged.
    fn finish(mut self) -> Result<(&'a MergeInput<'a>, Bytes), BuildError> {
        let rows = self.input.index.len();
        while self.mapped < rows {
            self.map.push(DEAD_ROW).map_err(io_err("writing a row map"))?;
            self.mapped += 1;
        }
        let map = self.map.finish().map_err(io_err("reading back a row map"))?;
        Ok((self.input, map))
    }
}

/// Where input row `row` is in the merged index, by its row map: `Some(None)` when it
/// was not carried over, `None` when the map has no such row.
fn mapped_row(map: &Bytes, row: u64) -> Option<Option<u64>> {
    let at = usize::try_from(row).ok()?.checked_mul(8)?;
    let new = u64::from_le_bytes(map.get(at..at.checked_add(8)?)?.try_into().ok()?);
    Some((new != DEAD_ROW).then_some(new))
}

/// Adds to `sort` the password references of every carried-over row of `inputs`: each
/// input row's references (its `passwords.rowrefs`) name entries of its password files,
/// whose hashes are found in the merged files just written to `dir`.
fn merge_row_refs(
    inputs: &[MergeInput<'_>],
    parts: &[SegmentParts<'_>],
    maps: &[Bytes],
    dir: &Path,
    sort: &mut RowRefSort,
) -> Result<(), BuildError> {
    let open = |kind: PasswordHashKind| -> Result<PasswordFileReader, BuildError> {
        let name = file_name(kind);
        let path = dir.join(name);
        let bytes =
            Bytes::map_path(&path, Access::Random, false).map_err(io_err(format!("reading {}", path.display())))?;
        let view = crate::format::FileView::parse_version(
            name,
            bytes,
            crate::format::passwords::file_kind(kind),
            crate::format::FORMAT_VERSION,
        )
        .map_err(|e| io_err(format!("reading {}", path.display()))(io::Error::other(e)))?;
        PasswordFileReader::new(view, kind)
            .map_err(|e| io_err(format!("reading {}", path.display()))(io::Error::other(e)))
    };
    let merged = PasswordFiles { sha1: open(PasswordHashKind::Sha1)?, ntlm: open(PasswordHashKind::Ntlm)? };
    for ((input, p), map) in inputs.iter().zip(parts).zip(maps) {
        let index = input.index;
        let (Some(refs), Some(files)) = (p.rowrefs, p.passwords) else { continue };
        for row in 0..index.len() {
            let new =
                mapped_row(map, row).ok_or_else(|| input_error(index, format!("row {row} is not in its row map")))?;
            let Some(new) = new else { continue };
            for hash in refs.hashes(row, files).map_err(damaged(index))? {
                let found = merged.file(hash.kind()).find(hash.as_bytes()).map_err(damaged(index))?;
                let (ordinal, _) = found.ok_or_else(|| {
                    input_error(
                        index,
                        format!(
                            "row {row} counts in a {} hash whose merged count is 0: its password counts to subtract include a live row",
                            hash.kind()
                        ),
                    )
                })?;
                sort.push(new, RowRef { kind: hash.kind(), ordinal })
                    .map_err(io_err("sorting the password row references"))?;
            }
        }
    }
    Ok(())
}

/// Feeds the username postings of `input`, translated to the merged rows by `map`, to
/// the writer's username sort.
fn translate_postings(
    input: &MergeInput<'_>,
    parts: &SegmentParts<'_>,
    map: &Bytes,
    writer: &mut IndexWriter,
) -> Result<(), BuildError> {
    let index = input.index;
    let postings = parts.username_postings;
    let mut keys = parts.username_map.ordered_keys();
    for ordinal in 0..postings.len() {
        let key = keys.key(ordinal).map_err(damaged(index))?;
        for row in postings.rows(ordinal).map_err(damaged(index))? {
            let new = mapped_row(map, row).ok_or_else(|| {
                damaged(index)(FormatError::damaged(
                    crate::format::postings::FILE_NAME,
                    format!("key ordinal {ordinal} lists row {row}, past the last row"),
                ))
            })?;
            if let Some(new) = new {
                writer.push_posting(key, new).map_err(io_err("sorting the username postings"))?;
            }
        }
    }
    Ok(())
}

/// One input's password file of one kind, read in hash order, with its subtractions.
struct PasswordCursor<'a> {
    index: &'a Index,
    file: &'a PasswordFileReader,
    at: u64,
    minus: Option<(&'a PasswordFileReader, u64)>,
}

impl PasswordCursor<'_> {
    fn head(&self) -> Option<(&[u8], u64)> {
        self.file.entry(self.at)
    }

    /// The count of `hash` (the head) less its subtraction; moves past it.
    fn take(&mut self, hash: &[u8], count: u64) -> Result<u64, BuildError> {
        self.at += 1;
        let Some((minus, at)) = &mut self.minus else { return Ok(count) };
        let name = minus.kind().to_string();
        match minus.entry(*at) {
            Some((h, _)) if h < hash => Err(input_error(
                self.index,
                format!("its {name} password counts to subtract name a hash its password file lacks"),
            )),
            Some((h, sub)) if h == hash => {
                *at += 1;
                count.checked_sub(sub).ok_or_else(|| {
                    input_error(self.index, format!("a {name} count to subtract is larger than the count"))
                })
            }
            _ => Ok(count),
        }
    }

    /// Checks that every subtraction was applied.
    fn finish(&self) -> Result<(), BuildError> {
        match &self.minus {
            Some((minus, at)) if *at < minus.len() => Err(input_error(
                self.index,
                format!("its {} password counts to subtract name a hash its password file lacks", minus.kind()),
            )),
            _ => Ok(()),
        }
    }
}

/// Merges the password files of the inputs into `dir`: per hash, the sum of the
/// inputs' counts less their subtractions, hashes whose count falls to 0 dropped.
fn merge_passwords(
    inputs: &[MergeInput<'_>],
    parts: &[SegmentParts<'_>],
    dir: &Path,
) -> Result<(Vec<FileSummary>, PasswordHashCounts), BuildError> {
    let mut files = Vec::with_capacity(2);
    let mut counts = PasswordHashCounts::default();
    for kind in PasswordHashKind::ALL {
        let mut cursors = Vec::with_capacity(inputs.len());
        for (input, p) in inputs.iter().zip(parts) {
            let Some(files) = p.passwords else { continue };
            let file = files.file(kind);
            let minus = input.password_subtractions.map(|s| (s.file(kind), 0));
            cursors.push(PasswordCursor { index: input.index, file, at: 0, minus });
        }
        // Bounds every merged count (sizes the count field as a build's entry count does).
        let max_count = cursors
            .iter()
            .flat_map(|c| (0..c.file.len()).filter_map(|i| c.file.entry(i)))
            .fold(0u64, |sum, (_, count)| sum.saturating_add(count));
        let path = dir.join(file_name(kind));
        let write_err = |e| io_err(format!("writing {}", path.display()))(e);
        let mut out = PasswordFileWriter::create(&path, kind, max_count).map_err(write_err)?;
        let mut hash = Vec::with_capacity(kind.width());
        loop {
            let min = cursors.iter().filter_map(|c| c.head().map(|(h, _)| h)).min();
            let Some(min) = min else { break };
            hash.clear();
            hash.extend_from_slice(min);
            let mut total = 0u64;
            for c in &mut cursors {
                if let Some((h, count)) = c.head()
                    && h == hash.as_slice()
                {
                    total = total.saturating_add(c.take(&hash, count)?);
                }
            }
            if total > 0 {
                out.push(&hash, total).map_err(write_err)?;
            }
        }
        for c in &cursors {
            c.finish()?;
        }
        match kind {
            PasswordHashKind::Sha1 => counts.sha1 = out.count(),
            PasswordHashKind::Ntlm => counts.ntlm = out.count(),
        }
        files.push(out.finish().map_err(write_err)?);
    }
    Ok((files, counts))
}

/// The merged index's manifest: the inputs' options, the counts written, the given
/// source table with records, `pwn_count` and assets as the writer counted them.
fn merged_manifest(
    inputs: &[MergeInput<'_>],
    options: &MergeOptions,
    checked: &CheckedInputs<'_>,
    written: &WrittenIndex,
    passwords: Option<PasswordHashCounts>,
    build_unix: i64,
) -> Manifest {
    let mut build_stats = BuildStats::default();
    for input in inputs {
        let s = &input.index.manifest().build_stats;
        build_stats.records_read += s.records_read;
        build_stats.rejected_records += s.rejected_records;
        build_stats.rejected_fields += s.rejected_fields;
        build_stats.duplicates += s.duplicates;
        build_stats.duplicates_across_segments += s.duplicates_across_segments;
        build_stats.suppressed += s.suppressed;
    }
    let sources = options
        .sources
        .iter()
        .map(|s| {
            let tally = written.source_tallies.get(&s.id).copied().unwrap_or_default();
            SourceMeta {
                records: tally.rows,
                pwn_count: Some(tally.identities),
                assets: Some(tally.assets.iter().map(|a| a.name().to_string()).collect()),
                ..s.clone()
            }
        })
        .collect();
    Manifest::assemble(ManifestInputs {
        hash_mode: checked.mode.name().to_string(),
        salt_fingerprint: options.salt.as_ref().filter(|_| checked.mode.is_hashed()).map(Salt::fingerprint),
        stored_assets: checked.stored.names(),
        store_request: options.store.map(AssetSet::names),
        created_unix: build_unix,
        counts: Counts {
            records: written.rows,
            email_rows: written.email_rows,
            email_keys: written.email_keys,
            username_keys: written.username_keys,
            username_postings: written.username_postings,
            password_sha1: passwords.map(|p| p.sha1),
            password_ntlm: passwords.map(|p| p.ntlm),
        },
        build_stats,
        sources,
        files: written.files.clone(),
    })
}

#[cfg(test)]
mod tests;
