//! The reading phase: a reader thread frames each dump file into batches, the worker
//! threads parse, validate, normalize, hash and encode the records of each batch, and
//! the encoded records go into the record sorter while the next batch is parsed.
//! Rejects are written in input order.

use super::entry;
use super::filter::{FilterVerdict, RecordFilter};
use super::passwords;
use super::sort::{self, ExternalSorter};
use super::{BuildError, WorkerPool, error_chain, io_err};
use crate::asset::{ASSET_COUNT, Asset, AssetSet};
use crate::catalog::SourceSpec;
use crate::date::Date;
use crate::ingest::{self, DumpFile, DumpReader, Frame, FrameBatch, FrameKind, RecordParser, Reject, RejectsWriter};
use crate::keymode::KeyDeriver;
use crate::severity::Severity;
use rayon::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;

/// Target size of one framed batch.
const BATCH_BYTES: usize = 2 << 20;
/// Framed batches queued between the reader thread and the workers.
const BATCHES_IN_FLIGHT: usize = 2;
/// Records per parallel work item.
const CHUNK_RECORDS: usize = 256;
/// Bytes of a record's sort entry besides its values and keys, rounded up (length
/// fields, group, terminator, source id, document id, sequence, date, assets,
/// severity).
const ENTRY_FIXED_BYTES: usize = 64;
/// Distinct unknown JSON Lines keys reported per file (a hostile file could hold millions).
const MAX_UNKNOWN_KEYS: usize = 32;
/// Characters of an unknown JSON Lines key kept for the report.
const MAX_UNKNOWN_KEY_CHARS: usize = 64;

/// What the reading phase needs.
pub(super) struct ReadingInputs<'a> {
    /// Every dump file with its source, in catalog order.
    pub files: &'a [(&'a SourceSpec, &'a DumpFile)],
    /// Sources in catalog order (per-source counts follow this order).
    pub sources: &'a [SourceSpec],
    /// Derives keys from normalized identifiers.
    pub deriver: &'a KeyDeriver,
    /// The salt's bytes, in hashed modes (document ids depend on it).
    pub salt: Option<&'a [u8]>,
    /// Assets whose values the sort entries carry.
    pub stored_filter: AssetSet,
    /// Publish date of sources that give none.
    pub build_date: Date,
    /// Whether rejects keep the raw bytes of the rejected line or field.
    pub keep_raw: bool,
    /// The rejects file (created at the first reject).
    pub rejects_path: &'a Path,
    /// The record sorter's buffer and spill folder.
    pub sort_buffer: usize,
    /// The password sorter's buffer, `None` when the build makes no password index.
    pub password_sort_buffer: Option<usize>,
    /// Where sorted runs go.
    pub spill_dir: &'a Path,
    /// Told how many input bytes were read.
    pub progress: Option<Arc<dyn super::BuildProgress>>,
    /// Drops records already in an older segment or holding a suppressed key (a
    /// segment build); `None` keeps every valid record.
    pub filter: Option<&'a dyn RecordFilter>,
}

/// Counts added up over every record read.
#[derive(Default)]
pub(super) struct ReadTotals {
    /// Records framed.
    pub records_read: u64,
    /// Records rejected as a whole.
    pub rejected_records: u64,
    /// Fields removed from kept records.
    pub rejected_fields: u64,
    /// Valid records the filter dropped as live in an older segment.
    pub duplicates_across_segments: u64,
    /// Valid records the filter dropped for a suppressed key.
    pub suppressed: u64,
    /// Assets present in any record that went into the sort.
    pub assets_seen: AssetSet,
}

/// What the reading phase leaves for the writing phase and the summary.
pub(super) struct ReadOutcome {
    /// Every encoded record, sorted or spilled.
    pub sorter: ExternalSorter,
    /// The password hashes of every kept record, when the build makes a password index.
    pub passwords: Option<ExternalSorter>,
    /// Counts.
    pub totals: ReadTotals,
    /// Counts per source, in catalog order.
    pub per_source: Vec<ReadTotals>,
    /// Files whose reading stopped early.
    pub file_errors: u64,
    /// Columns (CSV) or keys (JSON Lines) naming no asset, per dump file.
    pub unknown_columns: Vec<(String, Vec<String>)>,
    /// The rejects file, when anything was rejected.
    pub rejects_path: Option<PathBuf>,
}

/// Everything a worker needs to turn a frame of one file into a sort entry.
struct FileContext<'a> {
    display: &'a str,
    file_index: u64,
    source: &'a SourceSpec,
    publish_date: Date,
    parser: RecordParser,
    /// The record filter, when it applies to this file's source.
    filter: Option<&'a dyn RecordFilter>,
}

/// What a worker needs for every record, whatever its file.
struct RecordContext<'a> {
    deriver: &'a KeyDeriver,
    salt: Option<&'a [u8]>,
    stored_filter: AssetSet,
    keep_raw: bool,
    /// Whether password hashes are collected for the password index.
    passwords: bool,
}

#[derive(Default)]
struct ChunkOutput {
    entries: sort::SortBlock,
    passwords: sort::SortBlock,
    rejects: Vec<Reject>,
    counts: ReadTotals,
    unknown_keys: Vec<String>,
}

impl ReadTotals {
    fn add(&mut self, other: &ReadTotals) {
        self.records_read += other.records_read;
        self.rejected_records += other.rejected_records;
        self.rejected_fields += other.rejected_fields;
        self.duplicates_across_segments += other.duplicates_across_segments;
        self.suppressed += other.suppressed;
        self.assets_seen = self.assets_seen.union(other.assets_seen);
    }
}

/// Adds `key` to a file's distinct unknown keys (first seen first, at most [`MAX_UNKNOWN_KEYS`]).
fn note_unknown_key(keys: &mut Vec<String>, key: &str) {
    let key: String = key.chars().take(MAX_UNKNOWN_KEY_CHARS).collect();
    if keys.len() < MAX_UNKNOWN_KEYS && !keys.contains(&key) {
        keys.push(key);
    }
}

fn process_chunk(file: &FileContext<'_>, rec: &RecordContext<'_>, data: &[u8], frames: &[Frame]) -> ChunkOutput {
    // Size the blocks once: growing them copies what they hold. An entry holds its
    // record's values, the key again and about 50 bytes of fixed fields; a record gives
    // at most three password entries, usually two.
    let input_bytes: usize = frames.iter().map(|f| f.end.saturating_sub(f.start)).sum();
    let records = frames.len();
    let mut out = ChunkOutput {
        entries: sort::SortBlock::with_capacity_for(2 * input_bytes + ENTRY_FIXED_BYTES * records, records),
        passwords: if rec.passwords {
            sort::SortBlock::with_capacity_for(2 * passwords::ENTRY_BYTES * records, 2 * records)
        } else {
            sort::SortBlock::default()
        },
        ..Default::default()
    };
    let mut scratch = Vec::new();
    for frame in frames {
        out.counts.records_read += 1;
        let bytes = data.get(frame.start..frame.end).unwrap_or_default();
        let reject = |reason: String, field: Option<Asset>, raw: &[u8], raw_len: u64| Reject {
            file: file.display.to_string(),
            line: frame.line,
            lines: frame.lines,
            reason,
            field,
            raw: if rec.keep_raw {
                raw.get(..ingest::MAX_REJECT_RAW_BYTES).unwrap_or(raw).to_vec()
            } else {
                Vec::new()
            },
            raw_len,
        };
        if let FrameKind::TooLong { total_len } = frame.kind {
            out.counts.rejected_records += 1;
            let reason =
                format!("record is {total_len} bytes long, more than the {} byte limit", ingest::MAX_RECORD_BYTES);
            out.rejects.push(reject(reason, None, bytes, total_len));
            continue;
        }
        let mut fields = match file.parser.parse(bytes) {
            Ok(fields) => fields,
            Err(reason) => {
                out.counts.rejected_records += 1;
                out.rejects.push(reject(reason, None, bytes, bytes.len() as u64));
                continue;
            }
        };
        for key in std::mem::take(&mut fields.unknown_keys) {
            note_unknown_key(&mut out.unknown_keys, &key);
        }
        let (result, field_rejects) = ingest::validate(fields);
        let valid = match result {
            Ok(valid) => valid,
            Err(reason) => {
                // The record's reason already names each identifier's problem; the
                // whole line goes to the rejects file once.
                out.counts.rejected_records += 1;
                out.rejects.push(reject(reason, None, bytes, bytes.len() as u64));
                continue;
            }
        };
        for fr in field_rejects {
            out.counts.rejected_fields += 1;
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
        let (group, key) = match (email_key, ukey.as_ref()) {
            (Some(e), _) => (entry::GROUP_EMAIL, rec.deriver.derive(e.as_bytes())),
            (None, Some(u)) => (entry::GROUP_USERNAME, u.clone()),
            (None, None) => continue,
        };
        if let Some(filter) = file.filter {
            let email_key = (group == entry::GROUP_EMAIL).then(|| key.as_bytes());
            match filter.verdict(file.source.id, email_key, ukey.as_ref().map(|k| k.as_bytes()), &document_id) {
                FilterVerdict::Keep => {}
                FilterVerdict::Duplicate => {
                    out.counts.duplicates_across_segments += 1;
                    continue;
                }
                FilterVerdict::Suppressed => {
                    out.counts.suppressed += 1;
                    continue;
                }
            }
        }
        // Sort key and payload are encoded straight into the block.
        out.entries.push_with(
            |sort_key| entry::record_sort_key(sort_key, group, key.as_bytes(), file.source.id, &document_id, seq),
            |payload| {
                entry::record_payload(
                    payload,
                    file.publish_date,
                    assets,
                    severity,
                    ukey.as_ref().map(|k| k.as_bytes()),
                    rec.stored_filter,
                    &values,
                )
            },
        );
        if rec.passwords {
            passwords::collect(&mut out.passwords, &values, &document_id);
        }
        out.counts.assets_seen = out.counts.assets_seen.union(assets);
    }
    out
}

enum ReaderMessage {
    FileStart { file_index: usize, parser: RecordParser, unknown_columns: Vec<String> },
    Batch { file_index: usize, batch: FrameBatch },
    FileError { file_index: usize, message: String },
}

/// The rejects file, created at the first reject so a clean build leaves none.
struct RejectsSink<'a> {
    path: &'a Path,
    keep_raw: bool,
    writer: Option<RejectsWriter>,
}

impl RejectsSink<'_> {
    fn write(&mut self, list: &[Reject]) -> Result<(), BuildError> {
        if list.is_empty() {
            return Ok(());
        }
        let writer = match &mut self.writer {
            Some(w) => w,
            None => {
                let create = if self.keep_raw { RejectsWriter::create } else { RejectsWriter::create_without_raw };
                let w = create(self.path.to_path_buf())
                    .map_err(io_err(format!("creating rejects file {}", self.path.display())))?;
                self.writer.insert(w)
            }
        };
        for r in list {
            writer.write(r).map_err(|e| io_err(format!("writing {}", self.path.display()))(e))?;
        }
        Ok(())
    }

    /// Flushes the file; returns its path when anything was written.
    fn finish(self) -> Result<Option<PathBuf>, BuildError> {
        match self.writer {
            Some(w) => {
                let written = w.finish().map_err(io_err(format!("writing {}", self.path.display())))?;
                Ok((written > 0).then(|| self.path.to_path_buf()))
            }
            None => Ok(None),
        }
    }
}

/// The reader thread: frames every file in catalog order and sends batches.
fn read_files(
    files: &[(&SourceSpec, &DumpFile)],
    tx: mpsc::SyncSender<ReaderMessage>,
    progress: Option<Arc<dyn super::BuildProgress>>,
) {
    for (file_index, (_, file)) in files.iter().enumerate() {
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
                    if let Some(p) = &progress {
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
}

/// Moves the blocks of a parsed batch into the record sorter and, when the build makes
/// a password index, its password blocks into the password sorter.
fn push_blocks(
    sorter: &mut ExternalSorter,
    password_sorter: &mut Option<ExternalSorter>,
    blocks: Vec<sort::SortBlock>,
    password_blocks: Vec<sort::SortBlock>,
) -> std::io::Result<()> {
    blocks.into_iter().try_for_each(|block| sorter.push_block(block))?;
    if let Some(p) = password_sorter {
        password_blocks.into_iter().try_for_each(|block| p.push_block(block))?;
    }
    Ok(())
}

/// Runs the reading phase: every dump file is read, every record is either encoded
/// into the sorter or written to the rejects file.
pub(super) fn read_and_sort(inputs: &ReadingInputs<'_>, pool: &WorkerPool) -> Result<ReadOutcome, BuildError> {
    let ReadingInputs { files, sources, build_date, .. } = *inputs;
    let record_ctx = RecordContext {
        deriver: inputs.deriver,
        salt: inputs.salt,
        stored_filter: inputs.stored_filter,
        keep_raw: inputs.keep_raw,
        passwords: inputs.password_sort_buffer.is_some(),
    };
    let mut sorter = ExternalSorter::new(inputs.sort_buffer, inputs.spill_dir);
    let mut password_sorter = inputs.password_sort_buffer.map(|buffer| ExternalSorter::new(buffer, inputs.spill_dir));
    // Blocks of the last parsed batch, pushed while the next batch is parsed.
    let mut pending_blocks: Vec<sort::SortBlock> = Vec::new();
    let mut pending_passwords: Vec<sort::SortBlock> = Vec::new();
    let mut totals = ReadTotals::default();
    let mut per_source: Vec<ReadTotals> = sources.iter().map(|_| ReadTotals::default()).collect();
    let mut rejects = RejectsSink { path: inputs.rejects_path, keep_raw: inputs.keep_raw, writer: None };
    let mut file_errors = 0u64;
    let mut unknown_columns: Vec<(String, Vec<String>)> = Vec::new();
    // Unknown JSON Lines keys of the current file, reported when the file is done.
    let mut unknown_keys: Vec<String> = Vec::new();

    std::thread::scope(|scope| -> Result<(), BuildError> {
        let (tx, rx) = mpsc::sync_channel::<ReaderMessage>(BATCHES_IN_FLIGHT);
        let progress = inputs.progress.clone();
        std::thread::Builder::new()
            .name("breachdex-read".into())
            .spawn_scoped(scope, move || read_files(files, tx, progress))
            .map_err(io_err("starting the reader thread"))?;

        let mut current: Option<FileContext<'_>> = None;
        let flush_keys = |current: &Option<FileContext<'_>>, keys: &mut Vec<String>, report: &mut Vec<_>| {
            if let Some(ctx) = current.as_ref().filter(|_| !keys.is_empty()) {
                report.push((ctx.display.to_owned(), std::mem::take(keys)));
            }
        };
        for message in rx {
            match message {
                ReaderMessage::FileStart { file_index, parser, unknown_columns: unknown } => {
                    flush_keys(&current, &mut unknown_keys, &mut unknown_columns);
                    let Some(&(source, file)) = files.get(file_index) else { continue };
                    if !unknown.is_empty() {
                        unknown_columns.push((file.display.clone(), unknown));
                    }
                    current = Some(FileContext {
                        display: &file.display,
                        file_index: file_index as u64,
                        source,
                        publish_date: source.publish_date.unwrap_or(build_date),
                        parser,
                        filter: inputs.filter.filter(|f| f.applies_to(source.id)),
                    });
                }
                ReaderMessage::Batch { file_index, batch } => {
                    let Some(ctx) = current.as_ref().filter(|c| c.file_index == file_index as u64) else {
                        continue;
                    };
                    // Parse this batch while the previous batch's blocks go into the
                    // sorter (a copy into the arena, or a spill) on another worker.
                    let previous = std::mem::take(&mut pending_blocks);
                    let previous_passwords = std::mem::take(&mut pending_passwords);
                    let sorter = &mut sorter;
                    let password_sorter = &mut password_sorter;
                    let (outputs, pushed) = pool.install(|| {
                        rayon::join(
                            || {
                                batch
                                    .frames
                                    .par_chunks(CHUNK_RECORDS)
                                    .map(|frames| process_chunk(ctx, &record_ctx, &batch.data, frames))
                                    .collect::<Vec<ChunkOutput>>()
                            },
                            || push_blocks(sorter, password_sorter, previous, previous_passwords),
                        )
                    });
                    pushed.map_err(io_err("spilling a sorted run"))?;
                    let source_pos = sources.iter().position(|s| s.id == ctx.source.id).unwrap_or(0);
                    for mut out in outputs {
                        pending_blocks.push(std::mem::take(&mut out.entries));
                        pending_passwords.push(std::mem::take(&mut out.passwords));
                        rejects.write(&out.rejects)?;
                        totals.add(&out.counts);
                        for key in &out.unknown_keys {
                            note_unknown_key(&mut unknown_keys, key);
                        }
                        if let Some(s) = per_source.get_mut(source_pos) {
                            s.add(&out.counts);
                        }
                    }
                }
                ReaderMessage::FileError { file_index, message } => {
                    file_errors += 1;
                    let Some(&(_, file)) = files.get(file_index) else { continue };
                    let reject = Reject {
                        file: file.display.clone(),
                        line: 0,
                        lines: 0,
                        reason: format!("reading stopped early: {message}"),
                        field: None,
                        raw: Vec::new(),
                        raw_len: 0,
                    };
                    rejects.write(std::slice::from_ref(&reject))?;
                }
            }
        }
        flush_keys(&current, &mut unknown_keys, &mut unknown_columns);
        let last = std::mem::take(&mut pending_blocks);
        let last_passwords = std::mem::take(&mut pending_passwords);
        pool.install(|| push_blocks(&mut sorter, &mut password_sorter, last, last_passwords))
            .map_err(io_err("spilling a sorted run"))?;
        Ok(())
    })?;
    let rejects_path = rejects.finish()?;
    Ok(ReadOutcome {
        sorter,
        passwords: password_sorter,
        totals,
        per_source,
        file_errors,
        unknown_columns,
        rejects_path,
    })
}
