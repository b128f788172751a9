//! Writes the index files from the sorted stream of records: the record files (hot rows
//! and the compressed record store) and the e-mail key map as records arrive, then the
//! username map and postings from a second external sort of (username key, row) pairs.

use super::entry::{self, GROUP_EMAIL};
use super::sort::{self, ExternalSorter};
use crate::asset::AssetSet;
use crate::format::FileSummary;
use crate::format::fingerprints::{self, FingerprintWriter};
use crate::format::hot::HotRow;
use crate::format::keymap::{KeyMapRole, KeyMapWriter};
use crate::format::postings::PostingsWriter;
use crate::format::ranges::RangesWriter;
use crate::format::recordfiles::{RecordFilesWriter, RecordIn};
use crate::format::store::StoreOptions;
use crate::keymode::HashMode;
use crate::severity::Severity;
use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::mpsc;

/// Builds a key map on its own thread: building an FST is sequential and costs about
/// a microsecond per key, so it runs beside the row and column writing instead of
/// after it. Keys travel in batches to keep channel overhead negligible.
struct KeyMapThread {
    tx: Option<mpsc::SyncSender<Vec<u8>>>,
    batch: Vec<u8>,
    count: u64,
    handle: Option<std::thread::JoinHandle<io::Result<KeyMapFiles>>>,
}

const KEY_BATCH_BYTES: usize = 64 << 10;

/// What a key map thread wrote: the key map, its accelerator if asked for, the key count.
type KeyMapFiles = (FileSummary, Option<FileSummary>, u64);

impl KeyMapThread {
    /// Starts the thread building the `role` key map in `dir`, and its accelerator
    /// ([`fingerprints`]) with `accelerator_seed` when given (spilling to `spill_dir`).
    fn spawn(
        dir: &Path,
        spill_dir: &Path,
        mode: HashMode,
        role: KeyMapRole,
        accelerator_seed: Option<u64>,
    ) -> io::Result<KeyMapThread> {
        let mut writer = KeyMapWriter::create(dir, mode, role)?;
        let mut table = match accelerator_seed {
            Some(seed) => Some(FingerprintWriter::create(
                &dir.join(fingerprints::file_name(role)),
                fingerprints::kind(role),
                spill_dir,
                seed,
            )?),
            None => None,
        };
        let (tx, rx) = mpsc::sync_channel::<Vec<u8>>(16);
        let handle = std::thread::Builder::new().name("breachdex-keys".into()).spawn(move || {
            for batch in rx {
                let mut rest = batch.as_slice();
                while let Some((len, tail)) = rest.split_first_chunk::<2>() {
                    let len = u16::from_le_bytes(*len) as usize;
                    let (key, tail) = tail.split_at_checked(len).ok_or_else(|| io::Error::other("bad key batch"))?;
                    let ordinal = writer.push(key)?;
                    if let Some(table) = &mut table {
                        table.push(key, ordinal)?;
                    }
                    rest = tail;
                }
            }
            let count = writer.count();
            let map = writer.finish()?;
            let table = table.map(|t| t.finish(count)).transpose()?;
            Ok((map, table, count))
        })?;
        Ok(KeyMapThread { tx: Some(tx), batch: Vec::with_capacity(KEY_BATCH_BYTES), count: 0, handle: Some(handle) })
    }

    fn push(&mut self, key: &[u8]) -> io::Result<u64> {
        let len = u16::try_from(key.len()).map_err(|_| io::Error::other("key longer than 64 KiB"))?;
        self.batch.extend_from_slice(&len.to_le_bytes());
        self.batch.extend_from_slice(key);
        if self.batch.len() >= KEY_BATCH_BYTES {
            self.flush()?;
        }
        self.count += 1;
        Ok(self.count - 1)
    }

    fn flush(&mut self) -> io::Result<()> {
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(KEY_BATCH_BYTES));
        if let Some(tx) = &self.tx
            && tx.send(batch).is_err()
        {
            // The thread stopped early: its error comes out of finish().
            return self.finish_inner().and_then(|_| Err(io::Error::other("key map thread stopped")));
        }
        Ok(())
    }

    fn finish_inner(&mut self) -> io::Result<KeyMapFiles> {
        self.tx = None;
        match self.handle.take() {
            Some(h) => h.join().map_err(|_| io::Error::other("key map thread panicked"))?,
            None => Err(io::Error::other("key map thread already finished")),
        }
    }

    fn finish(mut self) -> io::Result<KeyMapFiles> {
        if !self.batch.is_empty() {
            self.flush()?;
        }
        self.finish_inner()
    }
}

/// What the writer produced.
pub struct WrittenIndex {
    /// Every file written, for the manifest.
    pub files: Vec<FileSummary>,
    /// Rows written.
    pub rows: u64,
    /// Rows with an e-mail key.
    pub email_rows: u64,
    /// Distinct e-mail keys.
    pub email_keys: u64,
    /// Distinct username keys.
    pub username_keys: u64,
    /// Username postings.
    pub username_postings: u64,
    /// Rows per source id.
    pub per_source: BTreeMap<u32, u64>,
    /// Distinct identities (`PwnCount`) and the assets present, per source id.
    pub source_tallies: BTreeMap<u32, SourceTally>,
    /// Records dropped as identical to an earlier one of the same source.
    pub duplicates: BTreeMap<u32, u64>,
    /// Runs the username sort spilled.
    pub spilled_runs: usize,
    /// The (document id, row) pairs, when [`IndexWriter::collect_document_rows`] asked
    /// for them.
    pub document_rows: Option<ExternalSorter>,
}

/// What the writer learns about one source while the records stream by.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SourceTally {
    /// Rows written.
    pub rows: u64,
    /// Distinct identities: e-mail keys, plus username keys of records without an e-mail.
    pub identities: u64,
    /// Union of the assets present in its records.
    pub assets: AssetSet,
}

/// Streams sorted records into index files.
pub struct IndexWriter {
    dir: PathBuf,
    spill_dir: PathBuf,
    mode: HashMode,
    accelerator_seed: Option<u64>,
    /// The assets whose values the sort entries carry (the `--store` filter).
    entry_assets: AssetSet,
    records: RecordFilesWriter,
    /// Every source id of the index, ascending: a row's source slot is its position.
    source_ids: Vec<u32>,
    /// The group and key of the last row written (a new one starts a run).
    prev_run_group: Option<u8>,
    prev_run_key: Vec<u8>,
    email_map: KeyMapThread,
    ranges: RangesWriter,
    usernames: ExternalSorter,
    prev_identity: Vec<u8>,
    prev_email_key: Option<Vec<u8>>,
    email_rows: Option<u64>,
    tallies: BTreeMap<u32, SourceTally>,
    prev_source_identity: Vec<u8>,
    duplicates: BTreeMap<u32, u64>,
    scratch: Vec<u8>,
    entry_buf: Vec<u8>,
    document_rows: Option<ExternalSorter>,
}

impl IndexWriter {
    /// Creates every file of the e-mail side. `entry_assets` are the assets whose
    /// values the sort entries carry; `stored` those the record store keeps;
    /// `source_ids` every source of the index (rows name theirs by position); `threads`
    /// compress the record store's blocks; `accelerator_seed`, when given, makes the key
    /// maps' accelerators with that seed (plain mode).
    #[allow(clippy::too_many_arguments)]
    pub fn create(
        dir: &Path,
        spill_dir: &Path,
        mode: HashMode,
        entry_assets: AssetSet,
        stored: AssetSet,
        source_ids: &[u32],
        username_budget: usize,
        threads: usize,
        accelerator_seed: Option<u64>,
    ) -> io::Result<IndexWriter> {
        let mut source_ids = source_ids.to_vec();
        source_ids.sort_unstable();
        source_ids.dedup();
        let options = StoreOptions { threads, ..StoreOptions::default() };
        let records =
            RecordFilesWriter::create(dir, spill_dir, source_ids.len() as u64, stored, !mode.is_hashed(), options)?;
        Ok(IndexWriter {
            dir: dir.to_path_buf(),
            spill_dir: spill_dir.to_path_buf(),
            mode,
            accelerator_seed,
            entry_assets,
            records,
            source_ids,
            prev_run_group: None,
            prev_run_key: Vec::new(),
            email_map: KeyMapThread::spawn(dir, spill_dir, mode, KeyMapRole::Email, accelerator_seed)?,
            ranges: RangesWriter::create(dir, spill_dir)?,
            usernames: ExternalSorter::new(username_budget, spill_dir),
            prev_identity: Vec::new(),
            prev_email_key: None,
            email_rows: None,
            tallies: BTreeMap::new(),
            prev_source_identity: Vec::new(),
            duplicates: BTreeMap::new(),
            scratch: Vec::new(),
            entry_buf: Vec::new(),
            document_rows: None,
        })
    }

    /// Also collects each row's (document id, row) pair, in an external sort of
    /// `budget` bytes, into [`WrittenIndex::document_rows`]: the password row references
    /// of a build that counts passwords it does not store join its password entries,
    /// which name records by document id, to rows through it.
    pub fn collect_document_rows(&mut self, budget: usize) {
        self.document_rows = Some(ExternalSorter::new(budget, &self.spill_dir));
    }

    /// Takes the (document id, row) pairs collected so far
    /// ([`IndexWriter::collect_document_rows`]), once every record is pushed: the
    /// `passwords` phase can add its references to them while [`IndexWriter::finish`]
    /// runs ([`WrittenIndex::document_rows`] is then `None`).
    pub fn take_document_rows(&mut self) -> Option<ExternalSorter> {
        self.document_rows.take()
    }

    /// Adds the next record entry of the sorted stream.
    pub fn push(&mut self, encoded: &[u8]) -> io::Result<()> {
        let sort_key = sort::sort_key(encoded);
        let identity = entry::record_identity(sort_key);
        if !self.prev_identity.is_empty() && identity == self.prev_identity.as_slice() {
            let rec = entry::decode_record(sort_key, sort::payload(encoded), self.entry_assets)?;
            *self.duplicates.entry(rec.source_id).or_default() += 1;
            return Ok(());
        }
        self.prev_identity.clear();
        self.prev_identity.extend_from_slice(identity);
        let rec = entry::decode_record(sort_key, sort::payload(encoded), self.entry_assets)?;
        let row_id = self.records.rows();
        if self.prev_run_group != Some(rec.group) || self.prev_run_key.as_slice() != rec.key {
            self.records.start_run()?;
            self.prev_run_group = Some(rec.group);
            self.prev_run_key.clear();
            self.prev_run_key.extend_from_slice(rec.key);
        }
        if rec.group == GROUP_EMAIL {
            if self.prev_email_key.as_deref() != Some(rec.key) {
                self.email_map.push(rec.key)?;
                self.ranges.push_start(row_id)?;
                self.prev_email_key = Some(rec.key.to_vec());
            }
        } else if self.email_rows.is_none() {
            self.email_rows = Some(row_id);
        }
        let slot = self.source_ids.binary_search(&rec.source_id).map_err(|_| {
            io::Error::other(format!("a record names source {}, which is not in the catalog", rec.source_id))
        })?;
        let severity = Severity::from_score(rec.severity)
            .ok_or_else(|| io::Error::other(format!("a record has severity score {}", rec.severity)))?;
        self.records.push(&RecordIn {
            hot: HotRow { assets: rec.assets, severity, slot: slot as u32 },
            values: &rec.values,
            email_key: (rec.group == GROUP_EMAIL).then_some(rec.key),
            document_id: &rec.document_id,
        })?;
        if let Some(ukey) = rec.username_key {
            self.push_posting(ukey, row_id)?;
        }
        if let Some(sorter) = &mut self.document_rows {
            super::passwords::document_row_entry(&mut self.entry_buf, &rec.document_id, row_id);
            sorter.push(&self.entry_buf)?;
        }
        let tally = self.tallies.entry(rec.source_id).or_default();
        tally.rows += 1;
        tally.assets = tally.assets.union(rec.assets);
        // Records without any identifier are never kept, so every row has a key here.
        let source_identity = entry::source_identity(sort_key);
        if source_identity != self.prev_source_identity.as_slice() {
            tally.identities += 1;
            self.prev_source_identity.clear();
            self.prev_source_identity.extend_from_slice(source_identity);
        }
        Ok(())
    }

    /// Rows written so far (the row id the next new record gets).
    pub fn rows(&self) -> u64 {
        self.records.rows()
    }

    /// Adds the username posting (`username_key`, `row`) directly, for a caller whose
    /// record entries carry no username key (a merge of indexes, which translates the
    /// postings of its inputs to the new rows instead).
    pub fn push_posting(&mut self, username_key: &[u8], row: u64) -> io::Result<()> {
        entry::posting_sort_key(&mut self.scratch, username_key, row);
        self.entry_buf.clear();
        sort::encode_entry(&mut self.entry_buf, &self.scratch, &[]);
        self.usernames.push(&self.entry_buf)
    }

    /// Finishes the e-mail side, sorts the username postings and writes their files.
    pub fn finish(self, read_budget: usize) -> io::Result<WrittenIndex> {
        let rows = self.records.rows();
        let email_rows = self.email_rows.unwrap_or(rows);
        let mut files = self.records.finish()?.to_vec();
        let (email_map_file, email_table, email_keys) = self.email_map.finish()?;
        files.push(email_map_file);
        files.extend(email_table);
        files.push(self.ranges.finish(email_rows)?);

        let postings_total = self.usernames.len();
        let spilled_runs = self.usernames.spilled_runs();
        let mut stream = self.usernames.finish(read_budget)?;
        let mut map =
            KeyMapThread::spawn(&self.dir, &self.spill_dir, self.mode, KeyMapRole::Username, self.accelerator_seed)?;
        let mut postings = PostingsWriter::create(&self.dir, &self.spill_dir, rows)?;
        let mut prev: Option<Vec<u8>> = None;
        let mut username_keys = 0u64;
        while let Some(e) = stream.next()? {
            let (ukey, row) = entry::decode_posting(sort::sort_key(e))?;
            if prev.as_deref() != Some(ukey) {
                if prev.is_some() {
                    postings.end_key()?;
                }
                map.push(ukey)?;
                username_keys += 1;
                prev = Some(ukey.to_vec());
            }
            postings.push_row(row)?;
        }
        if prev.is_some() {
            postings.end_key()?;
        }
        let (username_map_file, username_table, _) = map.finish()?;
        files.push(username_map_file);
        files.extend(username_table);
        files.push(postings.finish()?);
        Ok(WrittenIndex {
            files,
            rows,
            email_rows,
            email_keys,
            username_keys,
            username_postings: postings_total,
            per_source: self.tallies.iter().map(|(id, t)| (*id, t.rows)).collect(),
            source_tallies: self.tallies,
            duplicates: self.duplicates,
            spilled_runs,
            document_rows: self.document_rows,
        })
    }
}
