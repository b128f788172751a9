//! `records.store` (kind `RST2`, docs/FORMAT.md §3.10): the stored assets of every
//! record and, where needed, its document id, in zstd-compressed blocks of whole rows
//! (about 1 KiB raw each) with a dictionary trained at build time and a constant-time
//! block directory.
//!
//! Body: `store header (32) ‖ dictionary (dict_len) ‖ blocks (data_len) ‖ directory`.
//! Header parameters: `[row_count, block_count, dict_len, data_len]`. The store
//! header's `directory` byte names the directory's layout:
//! [`DIRECTORY_ELIAS_FANO`] (what builds write): `first_row[block_count + 1]` and
//! `block_offset[block_count + 1]` as two Elias-Fano sequences
//! (docs/FORMAT.md §9.8); [`DIRECTORY_FLAT`] (the first version 2 builds,
//! still read): `first_row` u64 ‖ `block_offset` u64 ‖ `row_block[⌈row_count / 64⌉]`
//! u32.
//!
//! A block is a zstd frame without its magic number or dictionary id, its content size
//! the raw length ([`Framing::Trimmed`], what builds write; the store header's framing
//! byte says so), or `raw_len u32 ‖ zstd frame` ([`Framing::Prefixed`], the first
//! version 2 builds).
//!
//! [`StoreWriter`] cuts the rows into blocks at run boundaries, trains the dictionary on
//! the first raw blocks, compresses blocks on worker threads and writes them in order
//! (the output depends on the input alone, not on the thread count). Its memory is
//! bounded: the current block and run, the raw blocks held for training (8 MiB), and a
//! bounded number of blocks in flight; the directory streams to temporary files and is
//! encoded at the end.
//!
//! [`StoreReader`] checks the sizes at open, finds a row's block in constant time,
//! decompresses blocks with a bounded decoder (output exactly the raw length, window at
//! most 2 MiB) and parses them ([`parse_block`]); the last block read is cached per thread.

pub(crate) mod block;

pub use block::{Block, BlockRows, Framing, IdentValue, KeyAsset, KeyRule, parse_block};

use super::elias_fano::{EliasFano, SpilledValues};
use super::{FileSummary, FileView, FileWriter, FormatError, Kind, read_u64, section_end};
use crate::asset::{ASSET_COUNT, Asset, AssetSet};
use crate::mmap::Bytes;
use crate::normalize::{normalize_email, normalize_username};
use block::{DOC_ID_LEN, compress_block, new_compressor, put_varint, span, varint_len};
use std::collections::BTreeMap;
use std::io::{self, Write};
use std::ops::Range;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::{Arc, Mutex, OnceLock};
use zstd::zstd_safe::DDict;

/// File name inside the index directory.
pub const FILE_NAME: &str = "records.store";
/// Kind tag of `records.store`.
pub const KIND: Kind = *b"RST2";
/// Largest decompressed block (2 MiB): the bound of `max_raw_len` and of the decoder's
/// window.
pub const MAX_BLOCK_RAW: usize = 2 << 20;
/// The builder's target raw block size: 1 KiB blocks make `records` of a small identity
/// about 30% faster than 2 KiB blocks for a 6% larger store (docs/FORMAT.md §9.6).
pub const TARGET_RAW_LEN: usize = 1024;
/// The zstd level blocks are compressed at.
pub const DEFAULT_LEVEL: i32 = 2;
/// The codec tag of the store header.
pub const CODEC: [u8; 4] = *b"ZSTD";
/// Length of the store header at the start of the body.
pub const STORE_HEADER_LEN: usize = 32;
/// Offset in the store header of the byte naming the directory's layout.
pub const DIRECTORY_AT: usize = 16;
/// Directory layout of the first version 2 builds: `first_row` and `block_offset` as
/// u64 arrays, then `row_block` (u32 per 64 rows). Still read, no longer written.
pub const DIRECTORY_FLAT: u8 = 0;
/// Directory layout that builds write: `first_row` and `block_offset` as two
/// Elias-Fano sequences. A reader that predates it refuses it (the byte was reserved,
/// zero).
pub const DIRECTORY_ELIAS_FANO: u8 = 1;
/// Target size of the trained dictionary.
pub const DICT_TARGET_LEN: usize = 64 << 10;
/// Raw bytes of the first blocks the dictionary is trained on.
pub const DICT_SAMPLE_RAW: usize = 8 << 20;
/// Fewer blocks than this in the training sample: no dictionary.
pub const DICT_MIN_BLOCKS: usize = 16;
/// Offset in the store header of the byte naming how blocks are framed.
pub const FRAMING_AT: usize = 17;
/// Framing byte of every build before trimmed blocks (a reserved zero byte then):
/// [`Framing::Prefixed`]. Still read, no longer written.
pub const FRAMING_PREFIXED: u8 = 0;
/// Framing byte that builds write: [`Framing::Trimmed`]. A reader that predates it
/// refuses it (the byte was reserved, zero).
pub const FRAMING_TRIMMED: u8 = 1;
/// How the writer frames its blocks.
const WRITE_FRAMING: Framing = Framing::Trimmed;
/// Compressed blocks waiting to be written, at most, per worker thread.
const IN_FLIGHT_PER_THREAD: usize = 64;

/// One record handed to the writer, in row order.
#[derive(Clone, Copy, Debug)]
pub struct StoreRecord<'a> {
    /// Every asset the record holds (the hot row's bits), stored or not.
    pub assets: AssetSet,
    /// The values (as given, trimmed), by asset index; only stored assets are read.
    pub values: &'a [Option<&'a [u8]>; ASSET_COUNT],
    /// Which identifier the row's key is (plain mode), for the `v = 0` rule.
    pub key_asset: KeyAsset,
    /// Plain mode: the row's key (its normalized identifier); empty otherwise.
    pub key: &'a [u8],
    /// Written only when `assets` is not a subset of the stored set.
    pub document_id: &'a [u8; 16],
}

/// How the writer compresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreOptions {
    /// zstd level ([`DEFAULT_LEVEL`]).
    pub level: i32,
    /// Target raw block size ([`TARGET_RAW_LEN`]).
    pub target_raw_len: usize,
    /// Compression threads (at least 1; 1 compresses on the caller's thread).
    pub threads: usize,
}

impl Default for StoreOptions {
    fn default() -> StoreOptions {
        StoreOptions { level: DEFAULT_LEVEL, target_raw_len: TARGET_RAW_LEN, threads: 1 }
    }
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

/// One stored value of a pending row: its `v` and its length (0 for `v = 0`).
#[derive(Clone, Copy, Debug, Default)]
struct PendingCell {
    v: u32,
    len: u32,
}

/// A row waiting in the current block or run; its values are `bytes[start..]`,
/// back to back in asset order.
#[derive(Clone, Copy, Debug)]
struct PendingRow {
    assets: AssetSet,
    cells: [PendingCell; ASSET_COUNT],
    doc: Option<[u8; 16]>,
    start: usize,
    raw_len: usize,
}

/// Streams `records.store`. Rows arrive with [`push`](Self::push) in row order, runs
/// end with [`end_run`](Self::end_run); [`finish`](Self::finish) writes the rest.
pub struct StoreWriter {
    out: FileWriter,
    stored: AssetSet,
    options: StoreOptions,
    rows_pushed: u64,
    /// Rows of the current block (`..in_block`) then of the current run.
    pending: Vec<PendingRow>,
    values: Vec<u8>,
    in_block: usize,
    /// Scratch of `close_block`: where each row's next value starts.
    cursors: Vec<usize>,
    block_raw: usize,
    run_raw: usize,
    /// The run outgrew the target: its rows go to blocks as they arrive.
    run_placing: bool,
    block_first_row: u64,
    blocks: u64,
    /// Raw blocks kept for training until the dictionary exists.
    held: Option<Vec<Vec<u8>>>,
    held_raw: usize,
    compressor: Option<Pipeline>,
    /// `first_row` of every block (the row count follows at the end).
    first_rows: SpilledValues,
    /// `block_offset` of every block (the data length follows at the end).
    offsets: SpilledValues,
    data_len: u64,
    max_raw_len: usize,
    dict_len: u64,
}

impl StoreWriter {
    /// Creates `path`. `stored`: the index's stored assets (`manifest.stored_assets`).
    /// `spill_dir`: temporary files for the directory (never the index directory).
    pub fn create(path: &Path, spill_dir: &Path, stored: AssetSet, options: StoreOptions) -> io::Result<StoreWriter> {
        if options.threads == 0 {
            return Err(invalid("the record store needs at least 1 compression thread".into()));
        }
        let mut out = FileWriter::create(path, KIND)?;
        let mut header = [0u8; STORE_HEADER_LEN];
        header[..4].copy_from_slice(&CODEC);
        let target = u32::try_from(options.target_raw_len).unwrap_or(u32::MAX);
        header[8..12].copy_from_slice(&target.to_le_bytes());
        header[12..16].copy_from_slice(&(options.level as u32).to_le_bytes());
        header[DIRECTORY_AT] = DIRECTORY_ELIAS_FANO;
        header[FRAMING_AT] = FRAMING_TRIMMED;
        out.write_all(&header)?;
        Ok(StoreWriter {
            out,
            stored,
            options,
            rows_pushed: 0,
            pending: Vec::new(),
            values: Vec::new(),
            in_block: 0,
            cursors: Vec::new(),
            block_raw: 0,
            run_raw: 0,
            run_placing: false,
            block_first_row: 0,
            blocks: 0,
            held: Some(Vec::new()),
            held_raw: 0,
            compressor: None,
            first_rows: SpilledValues::new(spill_dir)?,
            offsets: SpilledValues::new(spill_dir)?,
            data_len: 0,
            max_raw_len: 0,
            dict_len: 0,
        })
    }

    /// Rows pushed so far.
    pub fn rows(&self) -> u64 {
        self.rows_pushed
    }

    /// Adds the next row (row ids are consecutive from 0). Every stored asset in
    /// `rec.assets` needs a non-empty UTF-8 value; a row of more than
    /// [`MAX_BLOCK_RAW`] bytes is refused.
    pub fn push(&mut self, rec: &StoreRecord<'_>) -> io::Result<()> {
        let row = self.rows_pushed;
        if rec.assets.is_empty() {
            return Err(invalid(format!("row {row} holds no asset")));
        }
        let start = self.values.len();
        let mut cells = [PendingCell::default(); ASSET_COUNT];
        let mut raw_len = 0usize;
        for asset in rec.assets.intersection(self.stored).iter() {
            let value = rec.values.get(asset.index()).copied().flatten().unwrap_or_default();
            let text = std::str::from_utf8(value).map_err(|_| invalid(format!("row {row}: {asset} is not UTF-8")))?;
            if text.is_empty() {
                self.values.truncate(start);
                return Err(invalid(format!("row {row} holds {asset} but has no {asset} value")));
            }
            let len = u32::try_from(text.len()).unwrap_or(u32::MAX);
            let v = match asset {
                Asset::Email | Asset::Username if rec.key_asset == Some(asset) && value == rec.key => 0,
                Asset::Email | Asset::Username => {
                    let normalized = match asset {
                        Asset::Email => normalize_email(text).is_ok_and(|n| n == text),
                        _ => normalize_username(text).is_ok_and(|n| n == text),
                    };
                    len.saturating_mul(2).saturating_add(u32::from(normalized))
                }
                _ => len,
            };
            let stored_len = if v == 0 { 0 } else { len };
            if stored_len > 0 {
                self.values.extend_from_slice(value);
            }
            if let Some(c) = cells.get_mut(asset.index()) {
                *c = PendingCell { v, len: stored_len };
            }
            raw_len += varint_len(v) + stored_len as usize;
        }
        let doc = (rec.assets.intersection(self.stored) != rec.assets).then_some(*rec.document_id);
        raw_len += if doc.is_some() { DOC_ID_LEN } else { 0 };
        if raw_len > MAX_BLOCK_RAW {
            self.values.truncate(start);
            return Err(invalid(format!(
                "row {row} takes {raw_len} bytes, more than a block may hold ({MAX_BLOCK_RAW})"
            )));
        }
        self.pending.push(PendingRow { assets: rec.assets, cells, doc, start, raw_len });
        self.rows_pushed += 1;
        self.run_raw += raw_len;
        if !self.run_placing && self.run_raw > self.options.target_raw_len {
            // The run alone passes the target: it starts a block of its own and is split.
            self.run_placing = true;
            if self.in_block > 0 {
                self.close_block()?;
            }
        }
        if self.run_placing { self.place_run() } else { Ok(()) }
    }

    /// Closes the current run (all rows of one key): a block boundary may fall only
    /// here, or inside a run larger than the target.
    pub fn end_run(&mut self) -> io::Result<()> {
        if !self.run_placing && self.in_block > 0 && self.block_raw + self.run_raw > self.options.target_raw_len {
            self.close_block()?;
        }
        self.place_run()?;
        self.run_placing = false;
        Ok(())
    }

    /// Moves the run's rows into the current block, closing it before a row that would
    /// take it past the target (a row is never split).
    fn place_run(&mut self) -> io::Result<()> {
        while let Some(row) = self.pending.get(self.in_block) {
            let len = row.raw_len;
            if self.in_block > 0 && self.block_raw + len > self.options.target_raw_len {
                self.close_block()?;
            }
            self.in_block += 1;
            self.block_raw += len;
            self.run_raw -= len;
        }
        Ok(())
    }

    /// Encodes the rows of the current block (§3.10 "Block contents") and hands the raw
    /// block on: held for training, or compressed.
    fn close_block(&mut self) -> io::Result<()> {
        let rows = self.pending.get(..self.in_block).unwrap_or_default();
        let mut raw = Vec::with_capacity(self.block_raw);
        // Each row's values lie back to back in asset order from `start`: going through
        // the assets in that order, a row's next value starts where its last one ended.
        self.cursors.clear();
        self.cursors.extend(rows.iter().map(|r| r.start));
        for asset in self.stored.iter() {
            let held = rows.iter().filter(|r| r.assets.contains(asset));
            for r in held {
                put_varint(&mut raw, r.cells.get(asset.index()).map_or(0, |c| c.v));
            }
            for (r, at) in rows.iter().zip(self.cursors.iter_mut()) {
                if !r.assets.contains(asset) {
                    continue;
                }
                let len = r.cells.get(asset.index()).map_or(0, |c| c.len as usize);
                raw.extend_from_slice(self.values.get(*at..*at + len).unwrap_or_default());
                *at += len;
            }
        }
        for r in rows {
            if let Some(doc) = &r.doc {
                raw.extend_from_slice(doc);
            }
        }
        debug_assert_eq!(raw.len(), self.block_raw);
        let n = self.in_block;
        let first = self.block_first_row;
        let end = first + n as u64;
        if self.blocks >= u64::from(u32::MAX) {
            return Err(io::Error::other("more than 2^32 - 1 blocks: the record store cannot address them"));
        }
        self.first_rows.push(first)?;
        self.blocks += 1;
        self.block_first_row = end;
        self.max_raw_len = self.max_raw_len.max(raw.len());
        // Drop the block's rows and their values.
        let keep_from = self.pending.get(n).map_or(self.values.len(), |r| r.start);
        self.pending.drain(..n);
        self.values.drain(..keep_from);
        for r in &mut self.pending {
            r.start -= keep_from;
        }
        self.in_block = 0;
        self.block_raw = 0;
        match &mut self.held {
            Some(held) => {
                self.held_raw += raw.len();
                held.push(raw);
                if self.held_raw >= DICT_SAMPLE_RAW {
                    self.start_compression()?;
                }
                Ok(())
            }
            None => self.compress(raw),
        }
    }

    /// Trains the dictionary on the held blocks (when there are enough), writes it, and
    /// compresses the held blocks.
    fn start_compression(&mut self) -> io::Result<()> {
        let held = self.held.take().unwrap_or_default();
        let dict = train_dictionary(&held);
        self.out.write_all(&dict)?;
        self.dict_len = dict.len() as u64;
        self.compressor = Some(Pipeline::start(self.options, Arc::new(dict))?);
        for raw in held {
            self.compress(raw)?;
        }
        Ok(())
    }

    fn compress(&mut self, raw: Vec<u8>) -> io::Result<()> {
        let pipeline = self.compressor.as_mut().ok_or_else(|| io::Error::other("no compressor"))?;
        let ready = pipeline.submit(raw)?;
        self.write_blocks(ready)
    }

    fn write_blocks(&mut self, blocks: Vec<Vec<u8>>) -> io::Result<()> {
        for block in blocks {
            self.offsets.push(self.data_len)?;
            self.out.write_all(&block)?;
            self.data_len += block.len() as u64;
        }
        Ok(())
    }

    /// Ends the open run, writes the last block, the directory and the frame; returns
    /// the summary for the manifest.
    pub fn finish(mut self) -> io::Result<FileSummary> {
        self.end_run()?;
        if self.in_block > 0 {
            self.close_block()?;
        }
        if self.held.is_some() {
            self.start_compression()?;
        }
        if let Some(pipeline) = self.compressor.take() {
            let rest = pipeline.finish()?;
            self.write_blocks(rest)?;
        }
        // The directory (§3.10): `first_row` then `block_offset`, each with its end.
        let rows = self.rows_pushed;
        self.first_rows.encode(rows, rows, &mut self.out)?;
        self.offsets.encode(self.data_len, self.data_len, &mut self.out)?;
        self.out.patch_body(4, &(self.max_raw_len as u32).to_le_bytes())?;
        self.out.finish([self.rows_pushed, self.blocks, self.dict_len, self.data_len])
    }
}

/// The dictionary for `blocks` (the raw blocks of the first [`DICT_SAMPLE_RAW`] bytes):
/// zstd's trainer with a [`DICT_TARGET_LEN`] target; empty (no dictionary) with fewer
/// than [`DICT_MIN_BLOCKS`] blocks or when the trainer finds nothing to learn (too
/// little or too uniform data).
fn train_dictionary(blocks: &[Vec<u8>]) -> Vec<u8> {
    if blocks.len() < DICT_MIN_BLOCKS {
        return Vec::new();
    }
    zstd::dict::from_samples(blocks, DICT_TARGET_LEN).unwrap_or_default()
}

/// A batch of raw blocks and its sequence number.
type Job = (u64, Vec<Vec<u8>>);
/// A batch's compressed blocks, in the batch's order.
type Done = (u64, io::Result<Vec<Vec<u8>>>);

/// Raw blocks handed to a compression thread at once. One block (about 1 KiB) takes a
/// few microseconds to compress, about what passing it through the queues and waking a
/// thread costs; a batch of them pays that once.
const BATCH_BLOCKS: usize = 32;

/// Block compression: on the caller's thread (1 thread), or on worker threads fed
/// batches of [`BATCH_BLOCKS`] blocks through a bounded queue, with the results put back
/// in submission order. Dropping it stops and joins the workers.
struct Pipeline {
    inline: Option<zstd::bulk::Compressor<'static>>,
    /// Raw blocks of the batch not yet sent.
    batch: Vec<Vec<u8>>,
    jobs: Option<SyncSender<Job>>,
    results: Option<Receiver<Done>>,
    workers: Vec<std::thread::JoinHandle<()>>,
    /// Batches sent and batches whose blocks were returned.
    submitted: u64,
    returned: u64,
    done: BTreeMap<u64, Vec<Vec<u8>>>,
    /// Batches in flight, at most.
    max_in_flight: u64,
}

impl Pipeline {
    fn start(options: StoreOptions, dict: Arc<Vec<u8>>) -> io::Result<Pipeline> {
        let mut p = Pipeline {
            inline: None,
            batch: Vec::new(),
            jobs: None,
            results: None,
            workers: Vec::new(),
            submitted: 0,
            returned: 0,
            done: BTreeMap::new(),
            max_in_flight: (options.threads * IN_FLIGHT_PER_THREAD).div_ceil(BATCH_BLOCKS) as u64,
        };
        if options.threads <= 1 {
            p.inline = Some(new_compressor(options.level, &dict, WRITE_FRAMING)?);
            return Ok(p);
        }
        let (job_tx, job_rx) = std::sync::mpsc::sync_channel::<Job>(options.threads * 2);
        let (done_tx, done_rx) = std::sync::mpsc::channel::<Done>();
        let job_rx = Arc::new(Mutex::new(job_rx));
        for i in 0..options.threads {
            let (job_rx, done_tx, dict) = (Arc::clone(&job_rx), done_tx.clone(), Arc::clone(&dict));
            let level = options.level;
            let handle = std::thread::Builder::new().name(format!("breachdex-store-{i}")).spawn(move || {
                let mut compressor = new_compressor(level, &dict, WRITE_FRAMING);
                loop {
                    let job = match job_rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => return,
                    };
                    let Ok((seq, raws)) = job else { return };
                    let result = match &mut compressor {
                        Ok(c) => raws.iter().map(|raw| compress_block(c, raw, WRITE_FRAMING)).collect(),
                        Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
                    };
                    if done_tx.send((seq, result)).is_err() {
                        return;
                    }
                }
            })?;
            p.workers.push(handle);
        }
        p.jobs = Some(job_tx);
        p.results = Some(done_rx);
        Ok(p)
    }

    /// Queues `raw`; returns the compressed blocks that are next in order.
    fn submit(&mut self, raw: Vec<u8>) -> io::Result<Vec<Vec<u8>>> {
        if let Some(c) = &mut self.inline {
            return Ok(vec![compress_block(c, &raw, WRITE_FRAMING)?]);
        }
        self.batch.push(raw);
        if self.batch.len() < BATCH_BLOCKS {
            return Ok(Vec::new());
        }
        self.send_batch()
    }

    /// Sends the open batch (waiting while too many are in flight); returns the
    /// compressed blocks that are next in order.
    fn send_batch(&mut self) -> io::Result<Vec<Vec<u8>>> {
        let mut ready = self.ready();
        if self.batch.is_empty() {
            return Ok(ready);
        }
        while self.submitted - self.returned >= self.max_in_flight {
            self.receive(true)?;
            ready.extend(self.ready());
        }
        let seq = self.submitted;
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH_BLOCKS));
        let jobs = self.jobs.as_ref().ok_or_else(|| io::Error::other("compression queue closed"))?;
        jobs.send((seq, batch)).map_err(|_| io::Error::other("a compression thread stopped"))?;
        self.submitted += 1;
        while self.receive(false)? {}
        ready.extend(self.ready());
        Ok(ready)
    }

    /// Takes one result (waiting for it when `wait`); false when none was there.
    fn receive(&mut self, wait: bool) -> io::Result<bool> {
        let results = self.results.as_ref().ok_or_else(|| io::Error::other("compression queue closed"))?;
        let got = if wait {
            results.recv().map_err(|_| io::Error::other("a compression thread stopped"))?
        } else {
            match results.try_recv() {
                Ok(done) => done,
                Err(std::sync::mpsc::TryRecvError::Empty) => return Ok(false),
                Err(_) => return Err(io::Error::other("a compression thread stopped")),
            }
        };
        self.done.insert(got.0, got.1?);
        Ok(true)
    }

    /// The compressed blocks of the batches that follow the last one returned, in order.
    fn ready(&mut self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while let Some(blocks) = self.done.remove(&self.returned) {
            out.extend(blocks);
            self.returned += 1;
        }
        out
    }

    /// Sends the open batch, waits for every queued block; returns them in order and
    /// joins the workers.
    fn finish(mut self) -> io::Result<Vec<Vec<u8>>> {
        let mut out = self.send_batch()?;
        self.jobs = None;
        while self.returned < self.submitted {
            self.receive(true)?;
            out.extend(self.ready());
        }
        Ok(out)
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        // Closing the queue stops the workers once they finish their current block.
        self.jobs = None;
        for handle in self.workers.drain(..) {
            let _ = handle.join();
        }
    }
}

static NEXT_READER_ID: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// The last block this thread read: (reader id, block number, block).
    static LAST_BLOCK: std::cell::RefCell<Option<(u64, u64, Arc<Block>)>> = const { std::cell::RefCell::new(None) };
}

/// What clones of one reader share: its id (the cache key) and the decoder dictionary,
/// prepared on first use.
struct Shared {
    id: u64,
    ddict: OnceLock<Result<DDict<'static>, String>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").field("id", &self.id).field("ddict_ready", &self.ddict.get().is_some()).finish()
    }
}

/// The block directory of a store, in the layout its header names (§3.10).
#[derive(Clone, Debug)]
enum Directory {
    /// [`DIRECTORY_FLAT`]: the body offsets of `first_row` (u64), `block_offset` (u64)
    /// and `row_block` (u32).
    Flat { first_row_at: usize, offsets_at: usize, row_block_at: usize },
    /// [`DIRECTORY_ELIAS_FANO`]: `first_row` (values up to `row_count`) and
    /// `block_offset` (up to `data_len`), `block_count + 1` values each.
    EliasFano { first_rows: EliasFano<Bytes>, offsets: EliasFano<Bytes> },
}

/// Reads `records.store`.
#[derive(Clone, Debug)]
pub struct StoreReader {
    view: FileView,
    rows: u64,
    blocks: u64,
    max_raw_len: usize,
    framing: Framing,
    dict: Range<usize>,
    data: Range<usize>,
    directory: Directory,
    shared: Arc<Shared>,
}

impl StoreReader {
    /// The constant-time checks of §3.10 "Integrity": `row_count` (from `records.hot`)
    /// equal to the header's, `block_count` below 2^32, 0 exactly when there are no
    /// rows and at most one per row, the store header (codec `ZSTD`, `max_raw_len` at
    /// most [`MAX_BLOCK_RAW`], a known directory layout and block framing, reserved bytes
    /// zero), and the sections adding up to the body length (for the Elias-Fano
    /// directory: each sequence's descriptor and length against its value count and
    /// universe).
    pub fn new(view: FileView, row_count: u64) -> Result<StoreReader, FormatError> {
        let [rows, blocks, dict_len, data_len] = view.params();
        if rows != row_count {
            return Err(view.damaged(format!("{rows} rows, but records.hot has {row_count}")));
        }
        if blocks >= 1 << 32 || (blocks == 0) != (rows == 0) || blocks > rows {
            return Err(view.damaged(format!("{blocks} blocks cannot hold {rows} rows")));
        }
        let body = view.body();
        let header = body.get(..STORE_HEADER_LEN).unwrap_or_default();
        if header.len() < STORE_HEADER_LEN || header.get(..4) != Some(&CODEC[..]) {
            return Err(view.damaged("the store header does not name the ZSTD codec"));
        }
        let max_raw_len = header.get(4..8).and_then(|b| b.try_into().ok()).map_or(0, u32::from_le_bytes) as usize;
        if max_raw_len > MAX_BLOCK_RAW || (max_raw_len == 0) != (blocks == 0) {
            return Err(view.damaged(format!("largest block of {max_raw_len} bytes (at most {MAX_BLOCK_RAW})")));
        }
        let layout = header.get(DIRECTORY_AT).copied().unwrap_or(u8::MAX);
        let framing = match header.get(FRAMING_AT).copied().unwrap_or(u8::MAX) {
            FRAMING_PREFIXED => Framing::Prefixed,
            FRAMING_TRIMMED => Framing::Trimmed,
            other => {
                return Err(view.damaged(format!(
                    "unknown block framing {other} (this version reads {FRAMING_PREFIXED} and {FRAMING_TRIMMED}): \
                     the index was written by a newer breachdex"
                )));
            }
        };
        if header.get(FRAMING_AT + 1..).is_some_and(|r| r.iter().any(|b| *b != 0)) {
            return Err(view.damaged("reserved store header bytes are not zero"));
        }
        let dict_end = section_end(&view, STORE_HEADER_LEN as u64, dict_len, 1, "dictionary")?;
        let data_end = section_end(&view, dict_end, data_len, 1, "block data")?;
        let directory = match layout {
            DIRECTORY_FLAT => {
                let offsets_at = section_end(&view, data_end, blocks + 1, 8, "first rows")?;
                let row_block_at = section_end(&view, offsets_at, blocks + 1, 8, "block offsets")?;
                let end = section_end(&view, row_block_at, rows.div_ceil(64), 4, "row blocks")?;
                if end != body.len() as u64 {
                    return Err(view.damaged("trailing bytes after the row blocks"));
                }
                Directory::Flat {
                    first_row_at: data_end as usize,
                    offsets_at: offsets_at as usize,
                    row_block_at: row_block_at as usize,
                }
            }
            DIRECTORY_ELIAS_FANO => {
                let damaged = |what: &str, e: super::elias_fano::EliasFanoError| {
                    view.damaged(format!("block directory, {what}: {e}"))
                };
                // `data_end` is within the body (checked above).
                let rest = body.get(data_end as usize..).unwrap_or_default();
                let first_len =
                    EliasFano::<&[u8]>::byte_len_at(rest, blocks + 1, rows).map_err(|e| damaged("first rows", e))?;
                let offsets_at = data_end as usize + first_len as usize;
                let section = |range: Range<usize>| {
                    body.slice(range).ok_or_else(|| view.damaged("the block directory runs past the end of the body"))
                };
                let first_rows = EliasFano::new(section(data_end as usize..offsets_at)?, blocks + 1, rows)
                    .map_err(|e| damaged("first rows", e))?;
                let offsets = EliasFano::new(section(offsets_at..body.len())?, blocks + 1, data_len)
                    .map_err(|e| damaged("block offsets", e))?;
                Directory::EliasFano { first_rows, offsets }
            }
            other => {
                return Err(view.damaged(format!(
                    "unknown block directory layout {other} (this version reads {DIRECTORY_FLAT} and \
                     {DIRECTORY_ELIAS_FANO}): the index was written by a newer breachdex"
                )));
            }
        };
        Ok(StoreReader {
            rows,
            blocks,
            max_raw_len,
            framing,
            dict: STORE_HEADER_LEN..dict_end as usize,
            data: dict_end as usize..data_end as usize,
            directory,
            shared: Arc::new(Shared { id: NEXT_READER_ID.fetch_add(1, Ordering::Relaxed), ddict: OnceLock::new() }),
            view,
        })
    }

    /// Number of blocks.
    pub fn block_count(&self) -> u64 {
        self.blocks
    }

    /// How the blocks are framed (the store header's framing byte).
    pub fn framing(&self) -> Framing {
        self.framing
    }

    /// Size of the trained dictionary in bytes (0: none).
    pub fn dict_len(&self) -> usize {
        self.dict.len()
    }

    /// The directory layout ([`DIRECTORY_FLAT`] or [`DIRECTORY_ELIAS_FANO`]).
    pub fn directory_layout(&self) -> u8 {
        match self.directory {
            Directory::Flat { .. } => DIRECTORY_FLAT,
            Directory::EliasFano { .. } => DIRECTORY_ELIAS_FANO,
        }
    }

    /// `first_row[b]` (`Err`: damaged, with the reason when the directory gives one).
    fn first_row(&self, b: u64) -> Result<u64, String> {
        match &self.directory {
            Directory::Flat { first_row_at, .. } => flat_u64(self.view.body(), *first_row_at, b),
            Directory::EliasFano { first_rows, .. } => first_rows.get(b).map_err(|e| e.to_string()),
        }
    }

    /// `block_offset[b]`.
    fn block_offset(&self, b: u64) -> Result<u64, String> {
        match &self.directory {
            Directory::Flat { offsets_at, .. } => flat_u64(self.view.body(), *offsets_at, b),
            Directory::EliasFano { offsets, .. } => offsets.get(b).map_err(|e| e.to_string()),
        }
    }

    /// `first_row[b]` and `first_row[b + 1]`.
    fn first_row_pair(&self, b: u64) -> Result<(u64, u64), String> {
        match &self.directory {
            Directory::Flat { .. } => Ok((self.first_row(b)?, self.first_row(b.saturating_add(1))?)),
            Directory::EliasFano { first_rows, .. } => first_rows.get_pair(b).map_err(|e| e.to_string()),
        }
    }

    /// `block_offset[b]` and `block_offset[b + 1]`.
    fn offset_pair(&self, b: u64) -> Result<(u64, u64), String> {
        match &self.directory {
            Directory::Flat { .. } => Ok((self.block_offset(b)?, self.block_offset(b.saturating_add(1))?)),
            Directory::EliasFano { offsets, .. } => offsets.get_pair(b).map_err(|e| e.to_string()),
        }
    }

    /// Block holding `row`, in constant time ([`locate`](Self::locate)).
    pub fn block_of(&self, row: u64) -> Result<u64, FormatError> {
        self.locate(row).map(|(b, _)| b)
    }

    /// The block of the last [`block`](Self::block) call on this thread, if it is this
    /// reader's and holds `row`: its number and rows.
    fn cached_block_of(&self, row: u64) -> Option<(u64, Range<u64>)> {
        LAST_BLOCK.with(|c| match &*c.borrow() {
            Some((id, b, block)) if *id == self.shared.id && block.rows().contains(&row) => Some((*b, block.rows())),
            _ => None,
        })
    }

    /// Block holding `row` and the block's rows, in constant time. The block of the
    /// last [`block`](Self::block) call on this thread answers without the directory
    /// when it holds `row` (the rows of a page, or of one identity, are mostly in one
    /// block). Elias-Fano directory: the predecessor of `row` among the `first_row`
    /// values (one select in the high bits and a binary search of one bucket). Flat
    /// directory: the `row_block` entry of its group of 64 rows, then at most 63 steps
    /// forward. Either way the block's rows must enclose `row`.
    pub fn locate(&self, row: u64) -> Result<(u64, Range<u64>), FormatError> {
        if row >= self.rows {
            return Err(self.view.damaged(format!("row {row} is past the last row ({})", self.rows)));
        }
        if let Some(found) = self.cached_block_of(row) {
            return Ok(found);
        }
        let lost = |why: String| self.view.damaged(format!("the block directory does not lead to row {row}{why}"));
        let broken = |e: String| lost(format!(": {e}"));
        let b = match &self.directory {
            Directory::Flat { row_block_at, .. } => {
                let first = flat_u32(self.view.body(), *row_block_at, row >> 6).map_err(broken)?;
                // A block holds at least one row, so the block of `row` is at most 63
                // blocks on.
                let last = first.saturating_add(64).min(self.blocks);
                let mut found = None;
                for b in first..last {
                    if row < self.first_row(b.saturating_add(1)).map_err(broken)? {
                        found = Some(b);
                        break;
                    }
                }
                found.ok_or_else(|| lost(String::new()))?
            }
            Directory::EliasFano { first_rows, .. } => {
                first_rows.predecessor(row).map_err(|e| broken(e.to_string()))?.ok_or_else(|| lost(String::new()))?
            }
        };
        match self.first_row_pair(b) {
            Ok((start, end)) if b < self.blocks && start <= row && row < end && end <= self.rows => Ok((b, start..end)),
            Ok(_) => Err(lost(format!(" (it names block {b})"))),
            Err(e) => Err(broken(e)),
        }
    }

    /// Rows of block `b`.
    pub fn block_rows(&self, b: u64) -> Result<Range<u64>, FormatError> {
        if b >= self.blocks {
            return Err(self.view.damaged(format!("block {b} is past the last block ({})", self.blocks)));
        }
        match self.first_row_pair(b) {
            Ok((start, end)) if start < end && end <= self.rows => Ok(start..end),
            Ok((start, end)) => Err(self.view.damaged(format!("block {b} has rows {start}..{end}: not a valid range"))),
            Err(e) => Err(self.view.damaged(format!("block {b}: the block directory is damaged: {e}"))),
        }
    }

    /// The stored bytes of block `b` (framed as [`StoreReader::framing`]), if the
    /// directory is sane.
    pub(crate) fn stored_block(&self, b: u64) -> Option<&[u8]> {
        if b >= self.blocks {
            return None;
        }
        let (start, end) = self.offset_pair(b).ok()?;
        let data = self.view.body().get(self.data.clone())?;
        data.get(usize::try_from(start).ok()?..usize::try_from(end).ok()?)
    }

    fn block_error(&self, b: u64, rows: &Range<u64>, reason: impl std::fmt::Display) -> FormatError {
        self.view.damaged(format!("block {b} (rows {}): {reason}", span(rows)))
    }

    fn ddict(&self) -> Result<Option<&DDict<'static>>, FormatError> {
        if self.dict.is_empty() {
            return Ok(None);
        }
        let prepared = self.shared.ddict.get_or_init(|| {
            let bytes = self.view.body().get(self.dict.clone()).unwrap_or_default();
            DDict::try_create(bytes).ok_or_else(|| format!("the zstd dictionary ({} bytes) does not load", bytes.len()))
        });
        match prepared {
            Ok(d) => Ok(Some(d)),
            Err(reason) => Err(self.view.damaged(reason.clone())),
        }
    }

    /// Decompresses block `b` (holding `rows`) with the bounded decoder.
    fn decompress(&self, b: u64, rows: &Range<u64>) -> Result<Vec<u8>, FormatError> {
        let (start, end) = match self.offset_pair(b) {
            Ok((s, e)) if s < e && e <= self.data.len() as u64 => (s as usize, e as usize),
            Ok((s, e)) => return Err(self.block_error(b, rows, format!("bytes {s}..{e} are outside the block data"))),
            Err(e) => return Err(self.block_error(b, rows, format!("the block directory is damaged: {e}"))),
        };
        let data = self.view.body().get(self.data.clone()).unwrap_or_default();
        let bytes = data.get(start..end).unwrap_or_default();
        block::decompress(bytes, self.framing, self.max_raw_len, self.ddict()?)
            .map_err(|r| self.block_error(b, rows, r))
    }

    fn load(&self, b: u64, rows: &BlockRows<'_>) -> Result<(Range<u64>, Block), FormatError> {
        let range = self.block_rows(b)?;
        if rows.first_row != range.start || rows.bits.len() as u64 != range.end - range.start {
            return Err(self.block_error(
                b,
                &range,
                format!("asset bits were given for {} rows from row {}", rows.bits.len(), rows.first_row),
            ));
        }
        let raw = self.decompress(b, &range)?;
        let parsed = block::parse(raw, rows).map_err(|r| self.block_error(b, &range, r))?;
        Ok((range, parsed))
    }

    /// Decompresses (bounded: output exactly `raw_len` ≤ `max_raw_len`, window ≤
    /// [`MAX_BLOCK_RAW`]) and parses block `b`; `rows` are its rows' asset bits. The last
    /// block read is cached per thread (a page of one identity decompresses once).
    /// Errors name `records.store` and the block:
    /// `records.store: damaged: block 812 (rows 20133-20151): …`.
    pub fn block(&self, b: u64, rows: &BlockRows<'_>) -> Result<Arc<Block>, FormatError> {
        let id = self.shared.id;
        let cached = LAST_BLOCK.with(|c| match &*c.borrow() {
            Some((rid, cb, block)) if *rid == id && *cb == b => Some(Arc::clone(block)),
            _ => None,
        });
        if let Some(block) = cached {
            return Ok(block);
        }
        let (_, parsed) = self.load(b, rows)?;
        let block = Arc::new(parsed);
        LAST_BLOCK.with(|c| *c.borrow_mut() = Some((id, b, Arc::clone(&block))));
        Ok(block)
    }

    /// Everything `verify` checks of the store given the hot rows: the directory
    /// (`first_row` and `block_offset` start at 0, strictly ascend and end at the row
    /// count and the data length; Elias-Fano: every bit and select sample of both
    /// sequences; flat: every `row_block` entry names the block holding its row), the
    /// dictionary, and every block (decompresses to exactly `raw_len` bytes and parses
    /// against the rows' asset bits from `bits_of`).
    pub fn verify(
        &self,
        bits_of: &dyn Fn(Range<u64>) -> Result<Vec<AssetSet>, FormatError>,
        stored: AssetSet,
        keys: KeyRule,
    ) -> Result<(), FormatError> {
        let ends = |what: &str, at: &dyn Fn(u64) -> Result<u64, String>, last: u64| {
            if at(0) != Ok(0) || at(self.blocks) != Ok(last) {
                return Err(self.view.damaged(format!("{what} do not start at 0 and end at {last}")));
            }
            Ok(())
        };
        ends("first rows", &|b| self.first_row(b), self.rows)?;
        ends("block offsets", &|b| self.block_offset(b), self.data.len() as u64)?;
        match &self.directory {
            Directory::EliasFano { first_rows, offsets } => {
                let check = |what: &str, seq: &EliasFano<Bytes>| {
                    seq.verify(true).map_err(|e| self.view.damaged(format!("block directory, {what}: {e}")))
                };
                check("first rows", first_rows)?;
                check("block offsets", offsets)?;
            }
            Directory::Flat { row_block_at, .. } => {
                for (what, at) in [("first rows", &|b| self.first_row(b)), ("block offsets", &|b| self.block_offset(b))]
                    as [(&str, &dyn Fn(u64) -> Result<u64, String>); 2]
                {
                    for b in 0..self.blocks {
                        if !matches!((at(b), at(b + 1)), (Ok(x), Ok(y)) if x < y) {
                            return Err(self.view.damaged(format!("{what} do not ascend at block {b}")));
                        }
                    }
                }
                for i in 0..self.rows.div_ceil(64) {
                    let row = i * 64;
                    let named = flat_u32(self.view.body(), *row_block_at, i).unwrap_or(u64::MAX);
                    let holds = self.block_rows(named).is_ok_and(|r| r.contains(&row));
                    if !holds {
                        return Err(self
                            .view
                            .damaged(format!("row_block entry {i} names block {named}, not the block of row {row}")));
                    }
                }
            }
        }
        self.ddict()?;
        for b in 0..self.blocks {
            let range = self.block_rows(b)?;
            let bits = bits_of(range.clone())?;
            self.load(b, &BlockRows { first_row: range.start, bits: &bits, stored, keys })?;
        }
        Ok(())
    }
}

/// Entry `i` of a flat u64 array at body offset `at`.
fn flat_u64(body: &[u8], at: usize, i: u64) -> Result<u64, String> {
    usize::try_from(i)
        .ok()
        .and_then(|i| read_u64(body, at.checked_add(i.checked_mul(8)?)?))
        .ok_or_else(|| format!("directory entry {i} is past the end of the body"))
}

/// Entry `i` of a flat u32 array at body offset `at`.
fn flat_u32(body: &[u8], at: usize, i: u64) -> Result<u64, String> {
    let entry = || {
        let at = at.checked_add(usize::try_from(i).ok()?.checked_mul(4)?)?;
        let b = body.get(at..at.checked_add(4)?)?;
        Some(u64::from(u32::from_le_bytes(b.try_into().ok()?)))
    };
    entry().ok_or_else(|| format!("row_block entry {i} is past the end of the body"))
}

#[cfg(test)]
mod tests;
