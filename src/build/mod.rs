//! The offline builder: catalog and dumps in, a finished index directory out.
//!
//! Pipeline (docs/FORMAT.md describes the result):
//! 1. a reader thread frames each dump file into batches ([`crate::ingest`]);
//! 2. worker threads parse, validate, normalize, hash and encode the records of each
//!    batch in parallel; rejects go to the rejects file in input order;
//! 3. encoded records enter a memory-bounded external sort ([`sort`]), spilling sorted
//!    runs when the `--memory` budget is full;
//! 4. the merged stream is deduplicated and written as rows, asset columns and the
//!    e-mail key map; (username key, row) pairs go through a second external sort
//!    into the username key map and postings ([`writer`]);
//! 5. the manifest is written last and the directory is renamed into place.
//!
//! Everything is ordered by content and input position, never by thread timing, so
//! with `SOURCE_DATE_EPOCH` the same inputs and options give byte-identical files.

pub mod entry;
pub mod sort;
pub mod writer;

use crate::asset::{ASSET_COUNT, Asset, AssetSet};
use crate::catalog::{Catalog, CatalogError, SourceSpec};
use crate::date::{self, Date};
use crate::format::FileSummary;
use crate::format::manifest::{self, BuildStats, Counts, FileEntry, Manifest, SourceMeta};
use crate::ingest::{self, DumpReader, Frame, FrameBatch, FrameKind, RecordParser, Reject, RejectsWriter};
use crate::keymode::{DeriverError, HashMode, KeyDeriver, Salt};
use crate::severity::Severity;
use rayon::prelude::*;
use sort::ExternalSorter;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};
use writer::IndexWriter;

/// Default memory budget: suits a laptop.
pub const DEFAULT_MEMORY_BUDGET: u64 = 1 << 30;
/// Smallest memory budget accepted.
pub const MIN_MEMORY_BUDGET: u64 = 128 << 20;
/// Memory kept outside the sort buffers: framed batches in flight and being parsed,
/// worker output waiting for the sorter, reader and writer buffers (about 30 files of
/// 1 MiB each, 3 MiB more per file while it is checksummed), allocator caches, thread
/// stacks and the program itself. 48 MiB was measured too little at 100M records
/// (peak RSS 18 MiB over a 4 GiB budget while the sort arena was full).
const FIXED_RESERVE: u64 = 96 << 20;
/// Target size of one framed batch.
const BATCH_BYTES: usize = 2 << 20;
/// Framed batches queued between the reader thread and the workers.
const BATCHES_IN_FLIGHT: usize = 2;
/// Records per parallel work item.
const CHUNK_RECORDS: usize = 256;

/// Receives build progress; implemented by the CLI with a progress bar.
pub trait BuildProgress: Send + Sync {
    /// The build starts reading `total_bytes` bytes of dump files (as stored on disk).
    fn begin(&self, total_bytes: u64) {
        let _ = total_bytes;
    }
    /// `bytes` more input bytes were read.
    fn advance(&self, bytes: u64) {
        let _ = bytes;
    }
    /// A new phase starts (`"reading"`, `"writing"`, `"usernames"`, `"finishing"`).
    fn phase(&self, name: &'static str) {
        let _ = name;
    }
}

/// Options of a build.
#[derive(Clone)]
pub struct BuildOptions {
    /// Key hash mode.
    pub hash_mode: HashMode,
    /// The salt (required by hashed modes, refused by `plain`).
    pub salt: Option<Salt>,
    /// Assets to keep in columns; `None` keeps every asset present in the input.
    pub store: Option<AssetSet>,
    /// Peak memory budget in bytes (at least [`MIN_MEMORY_BUDGET`]).
    pub memory_budget: u64,
    /// Worker threads; `None` uses every core.
    pub threads: Option<usize>,
    /// Where rejects go; default `<out>.rejects.jsonl` beside the index.
    pub rejects_path: Option<PathBuf>,
    /// Replace an existing output directory.
    pub force: bool,
    /// Build time as Unix seconds, for reproducible builds (`SOURCE_DATE_EPOCH`);
    /// `None` uses the clock.
    pub source_date_epoch: Option<i64>,
    /// Progress receiver.
    pub progress: Option<Arc<dyn BuildProgress>>,
}

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions {
            hash_mode: HashMode::Plain,
            salt: None,
            store: None,
            memory_budget: DEFAULT_MEMORY_BUDGET,
            threads: None,
            rejects_path: None,
            force: false,
            source_date_epoch: None,
            progress: None,
        }
    }
}

impl std::fmt::Debug for BuildOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BuildOptions")
            .field("hash_mode", &self.hash_mode)
            .field("salt", &self.salt)
            .field("store", &self.store)
            .field("memory_budget", &self.memory_budget)
            .field("threads", &self.threads)
            .field("rejects_path", &self.rejects_path)
            .field("force", &self.force)
            .field("source_date_epoch", &self.source_date_epoch)
            .finish_non_exhaustive()
    }
}

/// Per-source counts of a build.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SourceSummary {
    /// Source id.
    pub id: u32,
    /// Source name.
    pub name: String,
    /// Records framed from its files.
    pub records_read: u64,
    /// Records in the index.
    pub kept: u64,
    /// Records rejected as a whole.
    pub rejected: u64,
    /// Identical records removed.
    pub duplicates: u64,
}

/// What a build did.
#[derive(Clone, Debug)]
pub struct BuildSummary {
    /// The index directory.
    pub out_dir: PathBuf,
    /// Hash mode.
    pub hash_mode: HashMode,
    /// Records framed from the dumps (valid or not).
    pub records_read: u64,
    /// Records in the index.
    pub kept: u64,
    /// Records rejected as a whole (unparsable, or no valid identifier).
    pub rejected_records: u64,
    /// Fields removed from kept records.
    pub rejected_fields: u64,
    /// Files whose reading stopped early on an I/O or decompression error.
    pub file_errors: u64,
    /// Identical records removed within a source.
    pub duplicates: u64,
    /// Distinct e-mail keys.
    pub email_keys: u64,
    /// Distinct username keys.
    pub username_keys: u64,
    /// Per-source counts, by source id.
    pub sources: Vec<SourceSummary>,
    /// Columns (per dump file) that name no asset and were ignored.
    pub unknown_columns: Vec<(String, Vec<String>)>,
    /// Total size of the index files.
    pub index_bytes: u64,
    /// Input bytes (dump files as stored).
    pub input_bytes: u64,
    /// Sorted runs spilled to disk (0 when everything fit in memory).
    pub spilled_runs: usize,
    /// The rejects file, when anything was rejected.
    pub rejects_path: Option<PathBuf>,
    /// Wall time.
    pub elapsed: Duration,
    /// Wall time per phase (`reading`, `writing`, `usernames`, `finishing`).
    pub phases: Vec<(&'static str, Duration)>,
}

impl BuildSummary {
    /// Input records per second of wall time.
    pub fn records_per_second(&self) -> f64 {
        self.records_read as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Why a build failed. Bad lines never fail a build; these are problems with the
/// options, the catalog, or the machine.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The catalog or one of its files is unusable.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// The hash mode and salt do not fit together.
    #[error(transparent)]
    Key(#[from] DeriverError),
    /// The output exists and `force` was not given.
    #[error("{0} already exists; choose another output directory or pass --force to replace it")]
    OutputExists(PathBuf),
    /// An option is out of range.
    #[error("{0}")]
    InvalidOption(String),
    /// An I/O error while building.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        source: std::io::Error,
    },
}

fn io_err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> BuildError {
    let context = context.into();
    move |source| BuildError::Io { context, source }
}

/// Removes a half-written directory unless disarmed.
struct DirGuard(Option<PathBuf>);

impl Drop for DirGuard {
    fn drop(&mut self) {
        if let Some(dir) = self.0.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Everything a worker needs to turn a frame into a sort entry.
struct FileContext<'a> {
    display: &'a str,
    file_index: u64,
    source: &'a SourceSpec,
    publish_date: Date,
    parser: RecordParser,
}

struct RecordContext<'a> {
    deriver: &'a KeyDeriver,
    salt: Option<&'a [u8]>,
    stored_filter: AssetSet,
}

#[derive(Default)]
struct ChunkOutput {
    entries: sort::SortBlock,
    rejects: Vec<Reject>,
    records_read: u64,
    rejected_records: u64,
    rejected_fields: u64,
    column_bytes: [u64; ASSET_COUNT],
    assets_seen: AssetSet,
}

impl ChunkOutput {
    fn merge_counts(&mut self, other: &ChunkOutput) {
        self.records_read += other.records_read;
        self.rejected_records += other.rejected_records;
        self.rejected_fields += other.rejected_fields;
        for (a, b) in self.column_bytes.iter_mut().zip(other.column_bytes) {
            *a += b;
        }
        self.assets_seen = self.assets_seen.union(other.assets_seen);
    }
}

fn reject_raw(bytes: &[u8]) -> Vec<u8> {
    bytes.get(..ingest::MAX_REJECT_RAW_BYTES).unwrap_or(bytes).to_vec()
}

fn process_chunk(file: &FileContext<'_>, rec: &RecordContext<'_>, data: &[u8], frames: &[Frame]) -> ChunkOutput {
    // Entries are about as long as the input they come from: size the block once.
    let input_bytes: usize = frames.iter().map(|f| f.end.saturating_sub(f.start)).sum();
    let mut out =
        ChunkOutput { entries: sort::SortBlock::with_capacity(input_bytes + input_bytes / 2), ..Default::default() };
    let (mut sort_key, mut payload, mut scratch) = (Vec::new(), Vec::new(), Vec::new());
    for frame in frames {
        out.records_read += 1;
        let bytes = data.get(frame.start..frame.end).unwrap_or_default();
        let reject = |reason: String, field: Option<Asset>, raw: &[u8], raw_len: u64| Reject {
            file: file.display.to_string(),
            line: frame.line,
            lines: frame.lines,
            reason,
            field,
            raw: reject_raw(raw),
            raw_len,
        };
        if let FrameKind::TooLong { total_len } = frame.kind {
            out.rejected_records += 1;
            let reason =
                format!("record is {total_len} bytes long, more than the {} byte limit", ingest::MAX_RECORD_BYTES);
            out.rejects.push(reject(reason, None, bytes, total_len));
            continue;
        }
        let fields = match file.parser.parse(bytes) {
            Ok(fields) => fields,
            Err(reason) => {
                out.rejected_records += 1;
                out.rejects.push(reject(reason, None, bytes, bytes.len() as u64));
                continue;
            }
        };
        let (result, field_rejects) = ingest::validate(fields);
        let valid = match result {
            Ok(valid) => valid,
            Err(reason) => {
                // The record's reason already names each identifier's problem; the
                // whole line goes to the rejects file once.
                out.rejected_records += 1;
                out.rejects.push(reject(reason, None, bytes, bytes.len() as u64));
                continue;
            }
        };
        for fr in field_rejects {
            out.rejected_fields += 1;
            let raw = fr.value.as_bytes();
            out.rejects.push(reject(fr.reason, Some(fr.asset), raw, raw.len() as u64));
        }
        let mut values: [Option<&str>; ASSET_COUNT] = [None; ASSET_COUNT];
        let mut assets = AssetSet::EMPTY;
        for asset in Asset::ALL {
            if let Some(v) = valid.values[asset.index()].as_deref().filter(|v| !v.is_empty()) {
                values[asset.index()] = Some(v);
                assets.insert(asset);
            }
        }
        let email_key = valid.email_key.as_deref();
        let username_key = valid.username_key.as_deref();
        let severity = file
            .source
            .severity
            .unwrap_or_else(|| {
                Severity::of_record(assets, values[Asset::PasswordType.index()], values[Asset::PasswordHash.index()])
            })
            .score();
        let document_id = entry::document_id(&mut scratch, rec.salt, file.source.id, &values, email_key, username_key);
        let seq = (file.file_index << 40) | (frame.line & ((1 << 40) - 1));
        let ukey = username_key.map(|u| rec.deriver.derive(u.as_bytes()));
        match email_key {
            Some(e) => {
                let ekey = rec.deriver.derive(e.as_bytes());
                entry::record_sort_key(
                    &mut sort_key,
                    entry::GROUP_EMAIL,
                    ekey.as_bytes(),
                    file.source.id,
                    &document_id,
                    seq,
                );
            }
            None => {
                let Some(u) = ukey.as_ref() else { continue };
                entry::record_sort_key(
                    &mut sort_key,
                    entry::GROUP_USERNAME,
                    u.as_bytes(),
                    file.source.id,
                    &document_id,
                    seq,
                );
            }
        }
        entry::record_payload(
            &mut payload,
            file.publish_date,
            assets,
            severity,
            ukey.as_ref().map(|k| k.as_bytes()),
            rec.stored_filter,
            &values,
        );
        out.entries.push(&sort_key, &payload);
        for asset in assets.intersection(rec.stored_filter).iter() {
            out.column_bytes[asset.index()] += values[asset.index()].map_or(0, |v| v.len() as u64);
        }
        out.assets_seen = out.assets_seen.union(assets);
    }
    out
}

enum ReaderMessage {
    FileStart { file_index: usize, parser: RecordParser, unknown_columns: Vec<String> },
    Batch { file_index: usize, batch: FrameBatch },
    FileError { file_index: usize, message: String },
}

/// Builds an index from `catalog` into `out_dir`.
pub fn build_index(catalog: &Catalog, out_dir: &Path, options: &BuildOptions) -> Result<BuildSummary, BuildError> {
    let started = Instant::now();
    let deriver = KeyDeriver::new(options.hash_mode, options.salt.as_ref())?;
    if options.memory_budget < MIN_MEMORY_BUDGET {
        return Err(BuildError::InvalidOption(format!(
            "--memory {} is below the minimum of {} bytes (128 MiB)",
            options.memory_budget, MIN_MEMORY_BUDGET
        )));
    }
    if options.threads == Some(0) {
        return Err(BuildError::InvalidOption("--threads must be at least 1".into()));
    }
    if out_dir.exists() && !options.force {
        return Err(BuildError::OutputExists(out_dir.to_path_buf()));
    }
    let name = out_dir
        .file_name()
        .ok_or_else(|| BuildError::InvalidOption(format!("{} is not a usable directory name", out_dir.display())))?
        .to_string_lossy()
        .into_owned();
    let parent = match out_dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let tmp_dir = parent.join(format!(".{name}.tmp-{}", std::process::id()));
    if tmp_dir.exists() {
        std::fs::remove_dir_all(&tmp_dir).map_err(io_err(format!("removing stale {}", tmp_dir.display())))?;
    }
    std::fs::create_dir(&tmp_dir).map_err(io_err(format!("creating {}", tmp_dir.display())))?;
    let mut guard = DirGuard(Some(tmp_dir.clone()));
    let spill = tempfile::Builder::new()
        .prefix(".breachdex-spill-")
        .tempdir_in(&parent)
        .map_err(io_err(format!("creating a spill directory in {}", parent.display())))?;

    let threads = options.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let pool = WorkerPool::new(threads)
        .map_err(|e| BuildError::InvalidOption(format!("cannot start {threads} threads: {e}")))?;

    let build_unix = options.source_date_epoch.unwrap_or_else(date::now_unix_seconds);
    let build_date = Date::from_unix_seconds(build_unix);
    let rejects_path = options.rejects_path.clone().unwrap_or_else(|| parent.join(format!("{name}.rejects.jsonl")));
    let progress = options.progress.clone();

    let files: Vec<(&SourceSpec, &crate::ingest::DumpFile)> =
        catalog.sources.iter().flat_map(|s| s.files.iter().map(move |f| (s, f))).collect();
    let input_bytes: u64 = files.iter().filter_map(|(_, f)| std::fs::metadata(&f.path).ok()).map(|m| m.len()).sum();
    if let Some(p) = &progress {
        p.begin(input_bytes);
    }
    let mut phases = PhaseClock::new(progress.clone());
    phases.start("reading");

    let budget = options.memory_budget - FIXED_RESERVE;
    let stored_filter = options.store.unwrap_or(AssetSet::ALL);
    let mut sorter = ExternalSorter::new(budget as usize, spill.path());
    // Blocks of the last parsed batch, pushed while the next batch is parsed.
    let mut pending_blocks: Vec<sort::SortBlock> = Vec::new();
    let mut totals = ChunkOutput::default();
    let mut per_source_read: Vec<(u64, u64)> = vec![(0, 0); catalog.sources.len()];
    let mut rejects: Option<RejectsWriter> = None;
    let mut rejects_written = 0u64;
    let mut file_errors = 0u64;
    let mut unknown_columns = Vec::new();
    let salt_bytes = options.salt.as_ref().filter(|_| options.hash_mode.is_hashed()).map(|s| s.as_bytes());
    let record_ctx = RecordContext { deriver: &deriver, salt: salt_bytes, stored_filter };

    let mut write_rejects = |list: &[Reject], rejects: &mut Option<RejectsWriter>| -> Result<(), BuildError> {
        if list.is_empty() {
            return Ok(());
        }
        if rejects.is_none() {
            *rejects = Some(
                RejectsWriter::create(rejects_path.clone())
                    .map_err(io_err(format!("creating rejects file {}", rejects_path.display())))?,
            );
        }
        if let Some(w) = rejects.as_mut() {
            for r in list {
                w.write(r).map_err(io_err(format!("writing {}", rejects_path.display())))?;
                rejects_written += 1;
            }
        }
        Ok(())
    };

    let ingest_result: Result<(), BuildError> = std::thread::scope(|scope| {
        let (tx, rx) = mpsc::sync_channel::<ReaderMessage>(BATCHES_IN_FLIGHT);
        let reader_files = &files;
        let reader_progress = progress.clone();
        let reader = std::thread::Builder::new().name("breachdex-read".into()).spawn_scoped(scope, move || {
            for (file_index, (_, file)) in reader_files.iter().enumerate() {
                let mut reader = match DumpReader::open(file) {
                    Ok(r) => r,
                    Err(e) => {
                        let _ = tx.send(ReaderMessage::FileError { file_index, message: error_chain(&e) });
                        continue;
                    }
                };
                let start = ReaderMessage::FileStart {
                    file_index,
                    parser: reader.parser(),
                    unknown_columns: reader.unknown_columns().to_vec(),
                };
                if tx.send(start).is_err() {
                    return;
                }
                let mut reported = 0u64;
                loop {
                    match reader.next_batch(BATCH_BYTES) {
                        Ok(Some(batch)) => {
                            if let Some(p) = &reader_progress {
                                let now = reader.bytes_read();
                                p.advance(now.saturating_sub(reported));
                                reported = now;
                            }
                            if tx.send(ReaderMessage::Batch { file_index, batch }).is_err() {
                                return;
                            }
                        }
                        Ok(None) => break,
                        Err(e) => {
                            let _ = tx.send(ReaderMessage::FileError { file_index, message: error_chain(&e) });
                            break;
                        }
                    }
                }
            }
        });
        if let Err(e) = reader {
            return Err(BuildError::Io { context: "starting the reader thread".into(), source: e });
        }

        let mut current: Option<FileContext<'_>> = None;
        for message in rx {
            match message {
                ReaderMessage::FileStart { file_index, parser, unknown_columns: unknown } => {
                    let (source, file) = files[file_index];
                    if !unknown.is_empty() {
                        unknown_columns.push((file.display.clone(), unknown));
                    }
                    current = Some(FileContext {
                        display: &file.display,
                        file_index: file_index as u64,
                        source,
                        publish_date: source.publish_date.unwrap_or(build_date),
                        parser,
                    });
                }
                ReaderMessage::Batch { file_index, batch } => {
                    let Some(ctx) = current.as_ref().filter(|c| c.file_index == file_index as u64) else {
                        continue;
                    };
                    // Parse this batch while the previous batch's blocks go into the
                    // sorter (a copy into the arena, or a spill) on another worker.
                    let previous = std::mem::take(&mut pending_blocks);
                    let sorter = &mut sorter;
                    let (outputs, pushed) = pool.install(|| {
                        rayon::join(
                            || {
                                batch
                                    .frames
                                    .par_chunks(CHUNK_RECORDS)
                                    .map(|frames| process_chunk(ctx, &record_ctx, &batch.data, frames))
                                    .collect::<Vec<ChunkOutput>>()
                            },
                            || previous.into_iter().try_for_each(|block| sorter.push_block(block)),
                        )
                    });
                    pushed.map_err(io_err("spilling a sorted run"))?;
                    let source_pos = catalog.sources.iter().position(|s| s.id == ctx.source.id).unwrap_or(0);
                    for mut out in outputs {
                        pending_blocks.push(std::mem::take(&mut out.entries));
                        write_rejects(&out.rejects, &mut rejects)?;
                        totals.merge_counts(&out);
                        if let Some(s) = per_source_read.get_mut(source_pos) {
                            s.0 += out.records_read;
                            s.1 += out.rejected_records;
                        }
                    }
                }
                ReaderMessage::FileError { file_index, message } => {
                    file_errors += 1;
                    let (_, file) = files[file_index];
                    let reject = Reject {
                        file: file.display.clone(),
                        line: 0,
                        lines: 0,
                        reason: format!("reading stopped early: {message}"),
                        field: None,
                        raw: Vec::new(),
                        raw_len: 0,
                    };
                    write_rejects(std::slice::from_ref(&reject), &mut rejects)?;
                }
            }
        }
        let last = std::mem::take(&mut pending_blocks);
        pool.install(|| last.into_iter().try_for_each(|block| sorter.push_block(block)))
            .map_err(io_err("spilling a sorted run"))?;
        Ok(())
    });
    ingest_result?;
    if let Some(w) = rejects.take() {
        w.finish().map_err(io_err(format!("writing {}", rejects_path.display())))?;
    }

    // Merge and write.
    phases.start("writing");
    let stored_columns = stored_filter.intersection(totals.assets_seen);
    // The sorter spills its last buffer too once it has spilled anything.
    let spilled_main = match sorter.spilled_runs() {
        0 => 0,
        n => n + usize::from(sorter.buffered_bytes() > 0),
    };
    let read_budget = (budget / 4) as usize;
    let username_budget = if spilled_main > 0 {
        (budget as usize).saturating_sub(read_budget)
    } else {
        (budget as usize).saturating_sub(sorter.buffered_bytes())
    }
    .max(16 << 20);
    let max_rows = sorter.len();
    let mut writer = IndexWriter::create(
        &tmp_dir,
        spill.path(),
        options.hash_mode,
        stored_filter,
        stored_columns,
        &totals.column_bytes,
        max_rows,
        username_budget,
    )
    .map_err(io_err(format!("creating index files in {}", tmp_dir.display())))?;
    let mut stream = pool.install(|| sorter.finish(read_budget)).map_err(io_err("merging sorted runs"))?;
    while let Some(e) = stream.next().map_err(io_err("merging sorted runs"))? {
        writer.push(e).map_err(io_err(format!("writing index files in {}", tmp_dir.display())))?;
    }
    drop(stream);
    phases.start("usernames");
    let written = pool
        .install(|| writer.finish(read_budget))
        .map_err(io_err(format!("writing index files in {}", tmp_dir.display())))?;

    phases.start("finishing");
    let duplicates: u64 = written.duplicates.values().sum();
    let mut sources_meta: Vec<SourceMeta> = catalog
        .sources
        .iter()
        .map(|s| SourceMeta {
            id: s.id,
            name: s.name.clone(),
            title: s.title.clone(),
            date: s.date.to_string(),
            description: s.description.clone(),
            severity: s.severity.map(Severity::score),
            publish_date: s.publish_date.unwrap_or(build_date).to_string(),
            records: written.per_source.get(&s.id).copied().unwrap_or(0),
        })
        .collect();
    sources_meta.sort_by_key(|s| s.id);
    let mut files_meta: Vec<FileSummary> = written.files.clone();
    files_meta.sort_by(|a, b| a.name.cmp(&b.name));
    let stored_names: Vec<String> = stored_columns.iter().map(|a| a.name().to_string()).collect();
    let mut id_input = format!("{}|{}", options.hash_mode.name(), stored_names.join(","));
    for f in &files_meta {
        id_input.push_str(&format!("|{}:{}:{:016x}", f.name, f.size, f.xxh3));
    }
    let manifest = Manifest {
        format: manifest::FORMAT_NAME.to_string(),
        format_version: crate::format::FORMAT_VERSION as u32,
        build_id: format!("{:032x}", xxhash_rust::xxh3::xxh3_128(id_input.as_bytes())),
        created: date::rfc3339_utc(build_unix),
        builder: format!("breachdex {}", env!("CARGO_PKG_VERSION")),
        hash_mode: options.hash_mode.name().to_string(),
        salt_fingerprint: options.salt.as_ref().filter(|_| options.hash_mode.is_hashed()).map(Salt::fingerprint),
        stored_assets: stored_names,
        counts: Counts {
            records: written.rows,
            email_rows: written.email_rows,
            email_keys: written.email_keys,
            username_keys: written.username_keys,
            username_postings: written.username_postings,
        },
        build_stats: BuildStats {
            records_read: totals.records_read,
            rejected_records: totals.rejected_records,
            rejected_fields: totals.rejected_fields,
            duplicates,
        },
        sources: sources_meta,
        files: files_meta
            .iter()
            .map(|f| FileEntry { name: f.name.clone(), size: f.size, xxh3: format!("{:016x}", f.xxh3) })
            .collect(),
    };
    let text = manifest
        .to_file_text()
        .map_err(|e| BuildError::Io { context: "serializing the manifest".into(), source: std::io::Error::other(e) })?;
    write_synced(&tmp_dir.join(manifest::FILE_NAME), text.as_bytes())
        .map_err(io_err(format!("writing {}", manifest::FILE_NAME)))?;
    sync_dir(&tmp_dir).map_err(io_err(format!("syncing {}", tmp_dir.display())))?;

    // Publish: rename into place; with --force the old directory is moved aside first.
    if out_dir.exists() {
        let old = parent.join(format!(".{name}.old-{}", std::process::id()));
        std::fs::rename(out_dir, &old).map_err(io_err(format!("moving the old {} aside", out_dir.display())))?;
        std::fs::rename(&tmp_dir, out_dir)
            .map_err(io_err(format!("renaming the new index to {}", out_dir.display())))?;
        let _ = std::fs::remove_dir_all(&old);
    } else {
        std::fs::rename(&tmp_dir, out_dir)
            .map_err(io_err(format!("renaming the new index to {}", out_dir.display())))?;
    }
    guard.0 = None;
    let _ = sync_dir(&parent);

    let sources = catalog
        .sources
        .iter()
        .zip(&per_source_read)
        .map(|(s, (read, rejected))| SourceSummary {
            id: s.id,
            name: s.name.clone(),
            records_read: *read,
            kept: written.per_source.get(&s.id).copied().unwrap_or(0),
            rejected: *rejected,
            duplicates: written.duplicates.get(&s.id).copied().unwrap_or(0),
        })
        .collect();
    Ok(BuildSummary {
        out_dir: out_dir.to_path_buf(),
        hash_mode: options.hash_mode,
        records_read: totals.records_read,
        kept: written.rows,
        rejected_records: totals.rejected_records,
        rejected_fields: totals.rejected_fields,
        file_errors,
        duplicates,
        email_keys: written.email_keys,
        username_keys: written.username_keys,
        sources,
        unknown_columns,
        index_bytes: files_meta.iter().map(|f| f.size).sum::<u64>() + text.len() as u64,
        input_bytes,
        spilled_runs: spilled_main + written.spilled_runs,
        rejects_path: (rejects_written > 0).then_some(rejects_path),
        elapsed: started.elapsed(),
        phases: phases.finish(),
    })
}

/// The build's worker threads. Dropping it stops them and joins every one, so a
/// finished build leaves no thread behind (a plain `rayon::ThreadPool` lets its threads
/// exit in the background after the pool is dropped).
struct WorkerPool {
    pool: Option<rayon::ThreadPool>,
    handles: Vec<std::thread::JoinHandle<()>>,
}

impl WorkerPool {
    fn new(threads: usize) -> Result<WorkerPool, rayon::ThreadPoolBuildError> {
        let mut handles = Vec::with_capacity(threads);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .spawn_handler(|thread| {
                let name = format!("breachdex-work-{}", thread.index());
                handles.push(std::thread::Builder::new().name(name).spawn(|| thread.run())?);
                Ok(())
            })
            .build()?;
        Ok(WorkerPool { pool: Some(pool), handles })
    }

    fn install<R: Send>(&self, op: impl FnOnce() -> R + Send) -> R {
        match &self.pool {
            Some(pool) => pool.install(op),
            None => op(),
        }
    }
}

impl Drop for WorkerPool {
    fn drop(&mut self) {
        // Dropping the pool tells its threads to stop once idle; they are idle here.
        drop(self.pool.take());
        for handle in self.handles.drain(..) {
            let _ = handle.join();
        }
    }
}

/// Times the build's phases and tells the progress receiver.
struct PhaseClock {
    progress: Option<Arc<dyn BuildProgress>>,
    current: Option<(&'static str, Instant)>,
    done: Vec<(&'static str, Duration)>,
}

impl PhaseClock {
    fn new(progress: Option<Arc<dyn BuildProgress>>) -> PhaseClock {
        PhaseClock { progress, current: None, done: Vec::new() }
    }

    fn start(&mut self, name: &'static str) {
        if let Some((prev, since)) = self.current.take() {
            self.done.push((prev, since.elapsed()));
        }
        if let Some(p) = &self.progress {
            p.phase(name);
        }
        self.current = Some((name, Instant::now()));
    }

    fn finish(mut self) -> Vec<(&'static str, Duration)> {
        if let Some((prev, since)) = self.current.take() {
            self.done.push((prev, since.elapsed()));
        }
        self.done
    }
}

/// An error and its causes, as one sentence.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut f = std::fs::File::create(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    static EXITED: AtomicUsize = AtomicUsize::new(0);

    struct ExitProbe;
    impl Drop for ExitProbe {
        fn drop(&mut self) {
            EXITED.fetch_add(1, Ordering::SeqCst);
        }
    }

    thread_local! {
        static PROBE: std::cell::RefCell<Option<ExitProbe>> = const { std::cell::RefCell::new(None) };
    }

    #[test]
    fn worker_pool_joins_its_threads_on_drop() {
        let pool = WorkerPool::new(2).unwrap();
        // Plant a probe in each worker's thread-local storage; it drops when the thread ends.
        let planted = AtomicUsize::new(0);
        pool.install(|| {
            rayon::broadcast(|_| {
                PROBE.with(|p| *p.borrow_mut() = Some(ExitProbe));
                planted.fetch_add(1, Ordering::SeqCst);
            })
        });
        assert_eq!(planted.load(Ordering::SeqCst), 2);
        assert_eq!(EXITED.load(Ordering::SeqCst), 0);
        drop(pool);
        // No waiting: the drop joined both threads, so their thread-locals are gone.
        assert_eq!(EXITED.load(Ordering::SeqCst), 2);
    }
}
