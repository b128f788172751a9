//! The record files of a version 2 index written together: `records.hot` (one hot row
//! per record, [`super::hot`]) and `records.store` (the stored values in compressed
//! blocks, [`super::store`]), from records handed over in row order.
//!
//! The writer knows nothing of how the records were produced: the build drives it from
//! its sorted entries, and a conversion of an older index can drive it from the rows it
//! reads. The caller marks where each run of rows sharing a key begins
//! ([`RecordFilesWriter::start_run`]: one e-mail key, or one username key of the
//! username-only rows), since a block of the store may only end there.

use super::hot::{self, HotRow, HotWriter};
use super::store::{self, StoreOptions, StoreRecord, StoreWriter};
use super::{FileSummary, rows::RowId};
use crate::asset::{ASSET_COUNT, Asset, AssetSet};
use std::io;
use std::path::Path;

/// One record in row order.
#[derive(Clone, Copy, Debug)]
pub struct RecordIn<'a> {
    /// Its hot row: assets, severity, source slot.
    pub hot: HotRow,
    /// The values of its stored assets (as given, trimmed), by [`Asset::index`]; other
    /// entries are not read.
    pub values: &'a [Option<&'a [u8]>; ASSET_COUNT],
    /// The e-mail key of the row's run when the row has one (rows before `email_rows`);
    /// `None` for username-only rows. In `plain` mode it is the normalized e-mail, and an
    /// e-mail equal to it is stored as "equals the key" (§3.10, `v = 0`).
    pub email_key: Option<&'a [u8]>,
    /// Its document id; stored only when some asset it holds is not stored.
    pub document_id: &'a [u8; 16],
}

/// Writes `records.hot` and `records.store` side by side.
pub struct RecordFilesWriter {
    hot: HotWriter,
    store: StoreWriter,
    plain: bool,
    /// Whether rows were pushed since the last run boundary.
    open_run: bool,
}

impl RecordFilesWriter {
    /// Creates both files in `dir` for an index of `source_count` sources storing the
    /// assets `stored`; `plain` says whether the index is in `plain` mode (keys are the
    /// normalized identifiers); `spill_dir` takes both writers' temporary files.
    pub fn create(
        dir: &Path,
        spill_dir: &Path,
        source_count: u64,
        stored: AssetSet,
        plain: bool,
        options: StoreOptions,
    ) -> io::Result<RecordFilesWriter> {
        Ok(RecordFilesWriter {
            hot: HotWriter::create(&dir.join(hot::FILE_NAME), spill_dir, source_count)?,
            store: StoreWriter::create(&dir.join(store::FILE_NAME), spill_dir, stored, options)?,
            plain,
            open_run: false,
        })
    }

    /// Marks the start of a new run: the next row has another key than the row before.
    pub fn start_run(&mut self) -> io::Result<()> {
        if self.open_run {
            self.store.end_run()?;
            self.open_run = false;
        }
        Ok(())
    }

    /// Appends the next record; returns its row id.
    pub fn push(&mut self, record: &RecordIn<'_>) -> io::Result<RowId> {
        let key_asset = record.email_key.filter(|_| self.plain).map(|_| Asset::Email);
        self.store.push(&StoreRecord {
            assets: record.hot.assets,
            values: record.values,
            key_asset,
            key: if key_asset.is_some() { record.email_key.unwrap_or_default() } else { &[] },
            document_id: record.document_id,
        })?;
        self.open_run = true;
        self.hot.push(&record.hot)
    }

    /// Rows written so far.
    pub fn rows(&self) -> u64 {
        self.hot.count()
    }

    /// Closes the last run and finishes both files (side by side: finishing a file reads
    /// it back for its checksum); returns `records.hot`'s summary, then
    /// `records.store`'s.
    pub fn finish(mut self) -> io::Result<[FileSummary; 2]> {
        self.start_run()?;
        let RecordFilesWriter { hot, store, .. } = self;
        std::thread::scope(|scope| {
            let hot = scope.spawn(move || hot.finish());
            let store = store.finish()?;
            let hot = hot.join().map_err(|_| io::Error::other("records.hot writer thread panicked"))??;
            Ok([hot, store])
        })
    }
}
