//! The offline builder: catalog and dumps in, a finished index directory out.
//!
//! [`build_index`] runs these phases, one function or type each (docs/FORMAT.md
//! describes the result):
//! 1. **check** the options (`BuildSettings`, [`MemoryBudget`]) and the output
//!    ([`output`]: what may be replaced, where the rejects go), before any work;
//! 2. **stage**: a fresh hidden folder beside the output receives the index ([`output`]);
//! 3. **read** (`reading`): a reader thread frames each dump file into batches
//!    ([`crate::ingest`]); worker threads parse, validate, normalize, hash and encode the
//!    records of each batch in parallel; rejects go to the rejects file in input order;
//!    encoded records enter a memory-bounded external sort ([`sort`]) that spills sorted
//!    runs when its share of the memory budget is full;
//! 4. **write** (`write_index`): the merged stream is deduplicated and written as rows,
//!    asset columns and the e-mail key map; (username key, row) pairs go through a second
//!    external sort into the username key map and postings ([`writer`]);
//! 5. **passwords** ([`passwords`]): the password hashes collected while reading are
//!    merged and counted into the password index (unless turned off), the SHA-1 and
//!    NTLM files on two threads at once (one key range of the sort each). With more
//!    than one worker thread this phase starts with `usernames` and runs beside it;
//!    its time is then what it takes after the usernames are done;
//! 6. **manifest**: assembled by [`Manifest::assemble`] and written last;
//! 7. **publish**: the staged folder is renamed into place ([`output`]).
//!
//! Everything is ordered by content and input position, never by thread timing, so
//! with `SOURCE_DATE_EPOCH` the same inputs and options give byte-identical files.

pub mod entry;
#[allow(dead_code)] // wired up by the generation layer
pub(crate) mod filter;
pub mod memory;
#[allow(dead_code)] // wired up by the generation layer
pub(crate) mod merge;
pub mod output;
pub(crate) mod passwords;
mod reading;
pub mod sort;
pub mod writer;

pub use memory::{DEFAULT_MEMORY_BUDGET, MIN_MEMORY_BUDGET, MemoryBudget, MemoryBudgetError};
pub use output::UnsafeOutput;

use crate::asset::AssetSet;
use crate::catalog::{Catalog, CatalogError, SourceSpec};
use crate::date::{self, Date};
use crate::format::manifest::{self, BuildStats, Counts, Manifest, ManifestInputs, SourceMeta};
use crate::ingest::DumpFile;
use crate::keymode::{DeriverError, HashMode, KeyDeriver, Salt};
use crate::severity::Severity;
use filter::RecordFilter;
use output::{OutputPlan, Staging};
use reading::{ReadOutcome, ReadingInputs};
use sort::ExternalSorter;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use writer::{IndexWriter, WrittenIndex};

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
    /// A new phase starts (`"reading"`, `"writing"`, `"usernames"`, `"passwords"`,
    /// `"finishing"`).
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
    /// Peak memory budget in bytes: at least [`MIN_MEMORY_BUDGET`] and, where the
    /// machine's memory is known, no more than it (checked before any work).
    pub memory_budget: u64,
    /// Worker threads; `None` uses every core.
    pub threads: Option<usize>,
    /// Where rejects go; default `<out>.rejects.jsonl` beside the index.
    pub rejects_path: Option<PathBuf>,
    /// Replace an existing output directory. Only a breachdex index is ever replaced
    /// (a directory holding a manifest); anything else at the output is an error, see
    /// [`UnsafeOutput`].
    pub force: bool,
    /// In hashed modes, keep the raw bytes of rejected lines and fields in the rejects
    /// file. Off by default: a hashed index is meant to hold no identifier in the clear,
    /// and the rejects file then keeps file, line and reason only. Plain builds always
    /// keep them.
    pub rejects_raw: bool,
    /// Build time as Unix seconds, for reproducible builds (`SOURCE_DATE_EPOCH`);
    /// `None` uses the clock.
    pub source_date_epoch: Option<i64>,
    /// Make the password index (SPEC §12): the SHA-1 and NTLM hashes of every plaintext
    /// password and of every `password_hash` typed `sha1` or `ntlm`, with the number of
    /// records holding each. On by default; it holds no plaintext, so hashed builds
    /// keep it whatever `store` says.
    pub password_index: bool,
    /// Make the key maps' accelerators (`plain` mode only; an error in hashed modes):
    /// a table of keyed 128-bit fingerprints of the keys beside each FST, so that a
    /// lookup costs two memory reads instead of one per FST node. About 13 bytes per key
    /// more on disk (docs/FORMAT.md); worth it on large indexes, where the FST walk
    /// misses the caches. Off by default.
    pub accelerator: bool,
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
            rejects_raw: false,
            source_date_epoch: None,
            password_index: true,
            accelerator: false,
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
            .field("rejects_raw", &self.rejects_raw)
            .field("source_date_epoch", &self.source_date_epoch)
            .field("password_index", &self.password_index)
            .field("accelerator", &self.accelerator)
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
    /// Records dropped as live in an older segment (`add`).
    pub duplicates_across_segments: u64,
    /// Records dropped for a suppressed key (`add`).
    pub suppressed: u64,
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
    /// Records dropped because the same record was already live in an older segment
    /// (a segment built by `add`; 0 for a build).
    pub duplicates_across_segments: u64,
    /// Records dropped because their e-mail or username key is suppressed (a segment
    /// built by `add`; 0 for a build).
    pub suppressed: u64,
    /// Distinct e-mail keys.
    pub email_keys: u64,
    /// Distinct username keys.
    pub username_keys: u64,
    /// Distinct SHA-1 and NTLM hashes in the password index; `None` when the build made
    /// none ([`BuildOptions::password_index`]).
    pub password_hashes: Option<PasswordHashCounts>,
    /// Per-source counts, by source id.
    pub sources: Vec<SourceSummary>,
    /// Columns (CSV) or keys (JSON Lines) naming no asset, ignored, per dump file.
    pub unknown_columns: Vec<(String, Vec<String>)>,
    /// Total size of the index files.
    pub index_bytes: u64,
    /// Input bytes (dump files as stored).
    pub input_bytes: u64,
    /// Sorted runs spilled to disk (0 when everything fit in memory).
    pub spilled_runs: usize,
    /// The rejects file, when anything was rejected.
    pub rejects_path: Option<PathBuf>,
    /// Whether the rejects file holds the raw bytes of rejected lines and fields (always
    /// in plain mode; in hashed modes only when [`BuildOptions::rejects_raw`] asked).
    pub rejects_raw: bool,
    /// Wall time.
    pub elapsed: Duration,
    /// Wall time per phase (`reading`, `writing`, `usernames`, `passwords`, `finishing`),
    /// one after the other: `passwords` runs beside `usernames` when the build has more
    /// than one worker thread, and its time is then what it adds after `usernames`.
    pub phases: Vec<(&'static str, Duration)>,
}

/// Distinct hashes of each kind in a password index.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PasswordHashCounts {
    /// Distinct SHA-1 hashes.
    pub sha1: u64,
    /// Distinct NTLM hashes.
    pub ntlm: u64,
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
    /// The output or rejects path may not be written (it exists, is not an index, holds
    /// an input, ...).
    #[error(transparent)]
    Output(#[from] UnsafeOutput),
    /// The memory budget is too small or more than the machine has.
    #[error(transparent)]
    Memory(#[from] MemoryBudgetError),
    /// No worker thread was asked for.
    #[error("the number of worker threads must be at least 1")]
    NoThreads,
    /// An option is out of range.
    #[error("{0}")]
    InvalidOption(String),
    /// An index given as input (to a merge) is damaged or does not fit the others.
    #[error("cannot merge {dir}: {reason}")]
    Input {
        /// The input index.
        dir: PathBuf,
        /// What is wrong with it, naming the file and row where damaged.
        reason: String,
    },
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

/// The checked options of a build: what [`build_index`] validates before touching
/// anything on disk.
struct BuildSettings {
    deriver: KeyDeriver,
    memory: MemoryBudget,
    threads: usize,
    /// Whether rejects keep raw bytes (plain mode, or asked for).
    keep_raw: bool,
    /// Build time, Unix seconds.
    build_unix: i64,
}

impl BuildSettings {
    fn check(options: &BuildOptions) -> Result<BuildSettings, BuildError> {
        let deriver = KeyDeriver::new(options.hash_mode, options.salt.as_ref())?;
        let mut memory = MemoryBudget::new(options.memory_budget)?;
        if options.password_index {
            memory = memory.with_password_index();
        }
        if crate::format::rowrefs::needed(options.password_index, options.store) {
            memory = memory.with_row_refs();
        }
        if options.threads == Some(0) {
            return Err(BuildError::NoThreads);
        }
        if options.accelerator && options.hash_mode.is_hashed() {
            return Err(BuildError::InvalidOption(format!(
                "the key map accelerator is for plain indexes; a {} index's key maps are hash tables already",
                options.hash_mode
            )));
        }
        let threads = options.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        Ok(BuildSettings {
            deriver,
            memory,
            threads,
            keep_raw: !options.hash_mode.is_hashed() || options.rejects_raw,
            build_unix: options.source_date_epoch.unwrap_or_else(date::now_unix_seconds),
        })
    }
}

/// Builds an index from `catalog` into `out_dir`.
///
/// Nothing is written before the options and the output are checked; a failed build
/// leaves no folder behind, and an existing index at `out_dir` (replaced only with
/// [`BuildOptions::force`]) stays in place until the new one is complete.
pub fn build_index(catalog: &Catalog, out_dir: &Path, options: &BuildOptions) -> Result<BuildSummary, BuildError> {
    build(catalog, out_dir, options, None)
}

/// Builds one segment of an index (`add`): [`build_index`] whose reading phase asks
/// `filter`, per valid record, whether to keep it. A dropped record reaches neither the
/// rows nor the counts nor the password files; the summary and the manifest's build
/// stats count it (`duplicates_across_segments`, `suppressed`).
#[allow(dead_code)] // wired up by the generation layer
pub(crate) fn build_segment(
    catalog: &Catalog,
    out_dir: &Path,
    options: &BuildOptions,
    filter: &dyn RecordFilter,
) -> Result<BuildSummary, BuildError> {
    build(catalog, out_dir, options, Some(filter))
}

/// [`build_index`] and [`build_segment`]: every phase, with an optional record filter.
fn build(
    catalog: &Catalog,
    out_dir: &Path,
    options: &BuildOptions,
    filter: Option<&dyn RecordFilter>,
) -> Result<BuildSummary, BuildError> {
    let started = Instant::now();
    let settings = BuildSettings::check(options)?;
    let (plan, rejects_path) = OutputPlan::check(catalog, out_dir, options.rejects_path.as_deref(), options.force)?;
    let staging = Staging::create(&plan)?;
    let pool = WorkerPool::new(settings.threads)
        .map_err(|e| BuildError::InvalidOption(format!("cannot start {} threads: {e}", settings.threads)))?;

    let build_date = Date::from_unix_seconds(settings.build_unix);
    let files: Vec<(&SourceSpec, &DumpFile)> =
        catalog.sources.iter().flat_map(|s| s.files.iter().map(move |f| (s, f))).collect();
    let input_bytes: u64 = files.iter().filter_map(|(_, f)| std::fs::metadata(&f.path).ok()).map(|m| m.len()).sum();
    if let Some(p) = &options.progress {
        p.begin(input_bytes);
    }
    let mut phases = PhaseClock::new(options.progress.clone());

    phases.start("reading");
    let stored_filter = options.store.unwrap_or(AssetSet::ALL);
    let read = reading::read_and_sort(
        &ReadingInputs {
            files: &files,
            sources: &catalog.sources,
            deriver: &settings.deriver,
            salt: options.salt.as_ref().filter(|_| options.hash_mode.is_hashed()).map(|s| s.as_bytes()),
            stored_filter,
            build_date,
            keep_raw: settings.keep_raw,
            rejects_path: &rejects_path,
            sort_buffer: settings.memory.record_sort,
            password_sort_buffer: options.password_index.then_some(settings.memory.password_sort),
            spill_dir: staging.spill_dir(),
            progress: options.progress.clone(),
            filter,
        },
        &pool,
    )?;

    phases.start("writing");
    let ReadOutcome {
        sorter,
        passwords: password_sorter,
        totals,
        per_source,
        file_errors,
        unknown_columns,
        rejects_path,
    } = read;
    let stored_columns = stored_filter.intersection(totals.assets_seen);
    let dir = staging.index_dir();
    let merge_read = settings.memory.merge_read;
    let pool_ref = &pool;
    let passwords_job = password_sorter.map(|sorter| -> PasswordJob<'_> {
        Box::new(move |document_rows| {
            passwords::write_password_files(sorter, dir, merge_read, pool_ref, document_rows)
                .map_err(io_err(format!("writing the password index in {}", dir.display())))
        })
    });
    let (mut written, spilled_records, pw) = write_index(
        sorter,
        &WriteInputs {
            dir,
            spill_dir: staging.spill_dir(),
            hash_mode: options.hash_mode,
            stored_filter,
            stored_columns,
            source_ids: &catalog.sources.iter().map(|s| s.id).collect::<Vec<_>>(),
            threads: settings.threads,
            memory: &settings.memory,
            accelerator_seed: options
                .accelerator
                .then(|| crate::format::fingerprints::seed_for_build(settings.build_unix)),
            document_rows: crate::format::rowrefs::needed(options.password_index, options.store)
                .then_some(settings.memory.rowref_sort),
        },
        &pool,
        &mut phases,
        passwords_job,
    )?;

    let mut password_hashes = None;
    let mut password_runs = 0;
    if let Some(pw) = pw {
        written.files.extend(pw.files);
        if let Some(joined) = written.document_rows.take() {
            let file = passwords::write_row_refs(
                joined,
                dir,
                staging.spill_dir(),
                written.rows,
                pw.sha1.max(pw.ntlm),
                settings.memory.merge_read,
                settings.memory.password_sort,
            )
            .map_err(io_err(format!("writing the password row references in {}", dir.display())))?;
            written.files.push(file);
        }
        password_hashes = Some(PasswordHashCounts { sha1: pw.sha1, ntlm: pw.ntlm });
        password_runs = pw.spilled_runs;
    }

    phases.start("finishing");
    let duplicates: u64 = written.duplicates.values().sum();
    let manifest = Manifest::assemble(ManifestInputs {
        hash_mode: options.hash_mode.name().to_string(),
        salt_fingerprint: options.salt.as_ref().filter(|_| options.hash_mode.is_hashed()).map(Salt::fingerprint),
        stored_assets: stored_columns.names(),
        store_request: options.store.map(AssetSet::names),
        created_unix: settings.build_unix,
        counts: Counts {
            records: written.rows,
            email_rows: written.email_rows,
            email_keys: written.email_keys,
            username_keys: written.username_keys,
            username_postings: written.username_postings,
            password_sha1: password_hashes.map(|p| p.sha1),
            password_ntlm: password_hashes.map(|p| p.ntlm),
        },
        build_stats: BuildStats {
            records_read: totals.records_read,
            rejected_records: totals.rejected_records,
            rejected_fields: totals.rejected_fields,
            duplicates,
            duplicates_across_segments: totals.duplicates_across_segments,
            suppressed: totals.suppressed,
        },
        sources: catalog.sources.iter().map(|s| source_meta(s, build_date, &written)).collect(),
        files: written.files.clone(),
    });
    let manifest_bytes = write_manifest(&manifest, staging.index_dir())?;

    staging.publish(&plan)?;

    let sources = catalog
        .sources
        .iter()
        .zip(&per_source)
        .map(|(s, read)| SourceSummary {
            id: s.id,
            name: s.name.clone(),
            records_read: read.records_read,
            kept: written.per_source.get(&s.id).copied().unwrap_or(0),
            rejected: read.rejected_records,
            duplicates: written.duplicates.get(&s.id).copied().unwrap_or(0),
            duplicates_across_segments: read.duplicates_across_segments,
            suppressed: read.suppressed,
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
        duplicates_across_segments: totals.duplicates_across_segments,
        suppressed: totals.suppressed,
        email_keys: written.email_keys,
        username_keys: written.username_keys,
        password_hashes,
        sources,
        unknown_columns,
        index_bytes: written.files.iter().map(|f| f.size).sum::<u64>() + manifest_bytes,
        input_bytes,
        spilled_runs: spilled_records + written.spilled_runs + password_runs,
        rejects_path,
        rejects_raw: settings.keep_raw,
        elapsed: started.elapsed(),
        phases: phases.finish(),
    })
}

/// What the writing phase needs besides the sorted records.
struct WriteInputs<'a> {
    dir: &'a Path,
    spill_dir: &'a Path,
    hash_mode: HashMode,
    stored_filter: AssetSet,
    stored_columns: AssetSet,
    source_ids: &'a [u32],
    threads: usize,
    memory: &'a MemoryBudget,
    accelerator_seed: Option<u64>,
    /// The budget of the writer's (document id, row) join sort, when the build writes
    /// `passwords.rowrefs`.
    document_rows: Option<usize>,
}

/// The `passwords` phase, given the writer's (document id, row) join sort when the
/// build writes `passwords.rowrefs`.
type PasswordJob<'a> =
    Box<dyn FnOnce(Option<&mut ExternalSorter>) -> Result<passwords::WrittenPasswords, BuildError> + Send + 'a>;

/// The writing phase (`writing`, then `usernames`) and the `passwords` phase when
/// given: merges the sorted records into the index files. Returns what was written,
/// how many record runs were spilled, and what the `passwords` phase wrote.
///
/// With more than one worker thread, `passwords` runs on its own thread beside
/// `usernames` (each needs about one core there; the username and password merges
/// each hold at most `merge_read` bytes of read buffers, within the record sort's
/// share, and the password sort's buffer is held during `usernames` in any case); the
/// `passwords` phase then times what it adds after the usernames are done.
fn write_index(
    sorter: ExternalSorter,
    inputs: &WriteInputs<'_>,
    pool: &WorkerPool,
    phases: &mut PhaseClock,
    passwords: Option<PasswordJob<'_>>,
) -> Result<(WrittenIndex, usize, Option<passwords::WrittenPasswords>), BuildError> {
    let dir = inputs.dir;
    // Called only on an error: formatting the context costs more than pushing a record.
    let write_err = |e| io_err(format!("writing index files in {}", dir.display()))(e);
    // The sorter spills its last buffer too once it has spilled anything.
    let spilled = match sorter.spilled_runs() {
        0 => 0,
        n => n + usize::from(sorter.buffered_bytes() > 0),
    };
    let memory = inputs.memory;
    let mut writer = IndexWriter::create(
        dir,
        inputs.spill_dir,
        inputs.hash_mode,
        inputs.stored_filter,
        inputs.stored_columns,
        inputs.source_ids,
        memory.username_sort(spilled > 0, sorter.buffered_bytes()),
        inputs.threads,
        inputs.accelerator_seed,
    )
    .map_err(io_err(format!("creating index files in {}", dir.display())))?;
    if let Some(budget) = inputs.document_rows {
        writer.collect_document_rows(budget);
    }
    let mut stream = pool.install(|| sorter.finish(memory.merge_read)).map_err(io_err("merging sorted runs"))?;
    while let Some(e) = stream.next().map_err(io_err("merging sorted runs"))? {
        writer.push(e).map_err(write_err)?;
    }
    drop(stream);
    phases.start("usernames");
    let mut document_rows = writer.take_document_rows();
    let finish_writer = |writer: IndexWriter| pool.install(|| writer.finish(memory.merge_read)).map_err(write_err);
    let (written, passwords) = match passwords {
        Some(job) if pool.threads() > 1 => std::thread::scope(|scope| {
            let rows = document_rows.as_mut();
            let side = std::thread::Builder::new()
                .name("breachdex-passwords".into())
                .spawn_scoped(scope, move || job(rows))
                .map_err(io_err("starting the password thread"))?;
            let written = finish_writer(writer);
            phases.start("passwords");
            let passwords = side
                .join()
                .map_err(|_| io_err("writing the password index")(std::io::Error::other("the thread panicked")))?;
            Ok::<_, BuildError>((written?, Some(passwords?)))
        })?,
        Some(job) => {
            let written = finish_writer(writer)?;
            phases.start("passwords");
            (written, Some(job(document_rows.as_mut())?))
        }
        None => (finish_writer(writer)?, None),
    };
    let mut written = written;
    written.document_rows = document_rows;
    Ok((written, spilled, passwords))
}

/// A source as the manifest records it.
fn source_meta(s: &SourceSpec, build_date: Date, written: &WrittenIndex) -> SourceMeta {
    let tally = written.source_tallies.get(&s.id).copied().unwrap_or_default();
    SourceMeta {
        records: written.per_source.get(&s.id).copied().unwrap_or(0),
        pwn_count: Some(tally.identities),
        assets: Some(tally.assets.iter().map(|a| a.name().to_string()).collect()),
        ..catalog_source_meta(s, build_date)
    }
}

/// The catalog's metadata of source `s` as a manifest records it, with no records
/// counted yet (`records` 0, no `pwn_count` or `assets`); `build_date` is the publish
/// date when the catalog gives none.
pub(crate) fn catalog_source_meta(s: &SourceSpec, build_date: Date) -> SourceMeta {
    SourceMeta {
        id: s.id,
        name: s.name.clone(),
        title: s.title.clone(),
        date: s.date.to_string(),
        description: s.description.clone(),
        severity: s.severity.map(Severity::score),
        publish_date: s.publish_date.unwrap_or(build_date).to_string(),
        records: 0,
        pwn_count: None,
        assets: None,
        domain: s.domain.clone(),
        added_date: s.added_date.map(|d| d.to_string()),
        modified_date: s.modified_date.map(|d| d.to_string()),
        verified: s.verified,
        sensitive: s.sensitive,
        fabricated: s.fabricated,
        retired: s.retired,
        spam_list: s.spam_list,
        malware: s.malware,
        stealer_log: s.stealer_log,
        logo_path: s.logo_path.clone(),
        data_classes: s.data_classes.clone(),
    }
}

/// Writes `manifest.json` into `dir` and syncs it; returns its size in bytes.
pub(crate) fn write_manifest(manifest: &Manifest, dir: &Path) -> Result<u64, BuildError> {
    let text = manifest
        .to_file_text()
        .map_err(|e| BuildError::Io { context: "serializing the manifest".into(), source: std::io::Error::other(e) })?;
    write_synced(&dir.join(manifest::FILE_NAME), text.as_bytes())
        .map_err(io_err(format!("writing {}", manifest::FILE_NAME)))?;
    output::sync_dir(dir).map_err(io_err(format!("syncing {}", dir.display())))?;
    Ok(text.len() as u64)
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

    /// Worker threads of the pool.
    fn threads(&self) -> usize {
        self.pool.as_ref().map_or(1, rayon::ThreadPool::current_num_threads)
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
