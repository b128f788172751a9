//! Reading records: the part `check` reads ([`RowMeta`], from the v1 row or the v2 hot
//! row alone) and the whole record ([`RecordView`]: the row, the document id and the
//! stored values; from the v1 columns in place, or from one decompressed block of the
//! v2 record store).

use super::{Index, LookupError, Matches, RecordFiles, SourceInfo};
use crate::asset::{ASSET_COUNT, Asset, AssetSet};
use crate::date::Date;
use crate::format::hot;
use crate::format::rows::{self, Row, RowId};
use crate::format::store::{self, Block, BlockRows, IdentValue};
use crate::format::{FormatError, docid};
use crate::severity::Severity;
use std::borrow::Cow;
use std::sync::Arc;

/// The part of a record that `check` reads: in a version 2 index, the hot row and its
/// source, without touching the record store.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct RowMeta {
    /// The source (breach) the record belongs to.
    pub source_id: u32,
    /// When the record was published (its source's publish date).
    pub publish_date: Date,
    /// Assets the record holds (whether or not they are stored).
    pub assets: AssetSet,
    /// The record's severity.
    pub severity: Severity,
}

/// The keys a caller already knows for the records it reads (plain mode): an e-mail
/// stored as "equals the key" (§3.10, `v = 0`) is then rendered without the reverse
/// walk of the key map.
#[derive(Copy, Clone, Debug, Default)]
pub(crate) struct KnownKeys<'k> {
    /// The e-mail key of the rows read (a lookup by e-mail: every row of its run).
    pub email: Option<&'k [u8]>,
    /// The username key of the rows read (a lookup by username).
    pub username: Option<&'k [u8]>,
}

/// One whole record: its row, document id and stored values. In a version 1 index the
/// values are read in place from the mapped columns; in a version 2 index from the
/// decompressed block that holds the record.
#[derive(Clone, Debug)]
pub struct RecordView<'a> {
    row_id: RowId,
    row: Row,
    values: [Option<Cow<'a, str>>; ASSET_COUNT],
}

impl<'a> RecordView<'a> {
    /// Row id.
    pub fn row_id(&self) -> RowId {
        self.row_id
    }

    /// The fixed-width part (in a version 2 index: the hot row, its source's id and
    /// publish date, and the stored or recomputed document id).
    pub fn row(&self) -> &Row {
        &self.row
    }

    /// Document id as a UUID string.
    pub fn document_id(&self) -> String {
        rows::document_id_string(&self.row.document_id)
    }

    /// Assets the record holds (stored or not).
    pub fn assets(&self) -> AssetSet {
        self.row.assets
    }

    /// The value of `asset`: `None` when the record lacks it or the index does not
    /// store it (see [`Index::stored_assets`]). Every value was read (and checked) when
    /// the record was ([`Index::record`]); the `Result` is kept for callers written
    /// when values were read one at a time.
    pub fn get(&self, asset: Asset) -> Result<Option<&str>, LookupError> {
        Ok(self.values[asset.index()].as_deref())
    }

    /// Every value, by [`Asset::index`] (`None`: absent or not stored).
    pub fn into_values(self) -> [Option<Cow<'a, str>>; ASSET_COUNT] {
        self.values
    }
}

fn damaged(file: &str, reason: String) -> LookupError {
    LookupError::Damaged(FormatError::damaged(file, reason))
}

impl Index {
    /// What `check` reads of record `id`, with its source: the v1 row, or the v2 hot
    /// row (its slot names the source directly).
    /// `check` calls this once per matched row (millions for the largest identities): it
    /// is inlined into the loop, the errors built out of line.
    #[inline(always)]
    pub(crate) fn row_source(&self, id: RowId) -> Result<(&SourceInfo, AssetSet, Severity), LookupError> {
        if self.merged().is_some() {
            let (seg, row) = self.resolve_row(id)?;
            return seg.row_source_local(row);
        }
        self.row_source_local(id)
    }

    /// [`Index::row_source`] of row `id` of this segment alone.
    #[inline(always)]
    pub(crate) fn row_source_local(&self, id: RowId) -> Result<(&SourceInfo, AssetSet, Severity), LookupError> {
        let files = &self.inner.files;
        match &files.records {
            RecordFiles::V2 { hot, .. } => {
                if let Some(row) = hot.get(id)
                    && let Some(source) = files.sources.get(row.slot as usize)
                {
                    return Ok((source, row.assets, row.severity));
                }
            }
            RecordFiles::V1 { rows, .. } => {
                if let Some(row) = rows.get(id)
                    && let Some(severity) = Severity::from_score(row.severity)
                    && let Some(source) = files.source(row.source_id)
                {
                    return Ok((source, row.assets, severity));
                }
            }
        }
        Err(self.row_damage(id))
    }

    /// Calls `each` with the source, assets and severity of every row of `matches`, in
    /// order: what `check` reads. The hot rows of a run (an e-mail's) are read as one
    /// slice.
    #[inline]
    pub(crate) fn for_each_row_source<'a>(
        &'a self,
        matches: Matches<'_>,
        mut each: impl FnMut(&'a SourceInfo, AssetSet, Severity),
    ) -> Result<(), LookupError> {
        let files = &self.inner.files;
        if let (RecordFiles::V2 { hot, .. }, Some(run)) = (&files.records, matches.as_range()) {
            return hot.try_for_each(run, |id, row| match files.sources.get(row.slot as usize) {
                Some(source) => {
                    each(source, row.assets, row.severity);
                    Ok(())
                }
                None => Err(self.row_damage(id)),
            });
        }
        for id in matches {
            let (source, assets, severity) = self.row_source(id)?;
            each(source, assets, severity);
        }
        Ok(())
    }

    /// Why row `id` cannot be read (the slow path of [`Index::row_source`]).
    #[cold]
    #[inline(never)]
    fn row_damage(&self, id: RowId) -> LookupError {
        let files = &self.inner.files;
        match &files.records {
            RecordFiles::V1 { rows, .. } => match rows.get(id) {
                None => damaged(rows::FILE_NAME, format!("row {id} does not exist")),
                Some(row) if Severity::from_score(row.severity).is_none() => {
                    damaged(rows::FILE_NAME, format!("row {id} has a bad severity"))
                }
                Some(row) => damaged(rows::FILE_NAME, format!("row {id} names unknown source {}", row.source_id)),
            },
            RecordFiles::V2 { hot, .. } => match hot.get(id) {
                None => LookupError::Damaged(hot.row_error(id)),
                Some(row) => damaged(hot::FILE_NAME, format!("row {id}: source slot {} has no source", row.slot)),
            },
        }
    }

    /// What `check` reads of record `id` (cheap in every format version: a version 2
    /// index reads only its hot row).
    pub fn row_meta(&self, id: RowId) -> Result<RowMeta, LookupError> {
        let (source, assets, severity) = self.row_source(id)?;
        Ok(RowMeta { source_id: source.id, publish_date: source.publish_date, assets, severity })
    }

    /// The fixed-width row `id`. In a version 2 index this reads the whole record (its
    /// document id may have to be recomputed from the values); [`Index::row_meta`] is
    /// the cheap part.
    pub fn row(&self, id: RowId) -> Result<Row, LookupError> {
        match &self.inner.files.records {
            RecordFiles::V1 { rows, .. } => {
                rows.get(id).ok_or_else(|| damaged(rows::FILE_NAME, format!("row {id} does not exist")))
            }
            RecordFiles::V2 { .. } => Ok(self.record(id)?.row),
        }
    }

    /// The record `id`: its row, document id and stored values.
    pub fn record(&self, id: RowId) -> Result<RecordView<'_>, LookupError> {
        self.record_with(id, KnownKeys::default())
    }

    /// [`Index::record`], with the keys the caller knows (see [`KnownKeys`]).
    pub(crate) fn record_with(&self, id: RowId, known: KnownKeys<'_>) -> Result<RecordView<'_>, LookupError> {
        if self.merged().is_some() {
            let (seg, row) = self.resolve_row(id)?;
            let mut view = seg.record_with_local(row, known)?;
            view.row_id = id;
            return Ok(view);
        }
        self.record_with_local(id, known)
    }

    /// The source slot of row `id` of this segment (its source's position in the
    /// segment's source table).
    pub(crate) fn slot_of(&self, id: RowId) -> Result<usize, LookupError> {
        let files = &self.inner.files;
        match &files.records {
            RecordFiles::V2 { hot, .. } => match hot.get(id) {
                Some(row) => Ok(row.slot as usize),
                None => Err(self.row_damage(id)),
            },
            RecordFiles::V1 { rows, .. } => rows
                .get(id)
                .and_then(|row| files.sources.binary_search_by_key(&row.source_id, |s| s.id).ok())
                .ok_or_else(|| self.row_damage(id)),
        }
    }

    /// Whether record `id` has an e-mail (rows with one come first in each segment).
    pub(crate) fn row_has_email(&self, id: RowId) -> Result<bool, LookupError> {
        let (seg, row) = if self.merged().is_some() { self.resolve_row(id)? } else { (self, id) };
        Ok(row < seg.inner.files.manifest.counts.email_rows)
    }

    /// [`Index::row_meta`] of row `id` of this segment alone.
    pub(crate) fn row_meta_local(&self, id: RowId) -> Result<RowMeta, LookupError> {
        let (source, assets, severity) = self.row_source_local(id)?;
        Ok(RowMeta { source_id: source.id, publish_date: source.publish_date, assets, severity })
    }

    /// Rows of this segment alone (live or not).
    pub(crate) fn len_local(&self) -> u64 {
        self.inner.files.records.len()
    }

    /// The sources of this segment alone, ascending by id (a v2 row's source slot is a
    /// position in it).
    pub(crate) fn segment_sources(&self) -> &[SourceInfo] {
        &self.inner.files.sources
    }

    /// [`Index::record_with`] of row `id` of this segment alone.
    pub(crate) fn record_with_local(&self, id: RowId, known: KnownKeys<'_>) -> Result<RecordView<'_>, LookupError> {
        let files = &self.inner.files;
        match &files.records {
            RecordFiles::V1 { rows, columns } => {
                let row = rows.get(id).ok_or_else(|| damaged(rows::FILE_NAME, format!("row {id} does not exist")))?;
                let mut values: [Option<Cow<'_, str>>; ASSET_COUNT] = Default::default();
                for asset in row.assets.intersection(files.stored).iter() {
                    if let Some(col) = &columns[asset.index()] {
                        values[asset.index()] = col.get(id)?.map(Cow::Borrowed);
                    }
                }
                Ok(RecordView { row_id: id, row, values })
            }
            RecordFiles::V2 { .. } => {
                let block = self.record_block(id)?;
                self.record_in_block(id, &block, known)
            }
        }
    }

    /// The block of the version 2 record store holding row `id`, decompressed and
    /// parsed (a reader walking the rows in order keeps it while its rows last). A
    /// version 1 index has no record store: an error.
    pub(crate) fn record_block(&self, id: RowId) -> Result<Arc<Block>, LookupError> {
        let files = &self.inner.files;
        let RecordFiles::V2 { hot, store, keys } = &files.records else {
            return Err(damaged(rows::FILE_NAME, "a format version 1 index has no record store".into()));
        };
        let (b, block_rows) = store.locate(id)?;
        if block_rows.end > hot.len() {
            return Err(damaged(
                store::FILE_NAME,
                format!("block {b} (rows {}-{}) is past the hot rows", block_rows.start, block_rows.end),
            ));
        }
        let mut bits = Vec::with_capacity(64);
        hot.assets_into(block_rows.clone(), &mut bits)?;
        Ok(store
            .block(b, &BlockRows { first_row: block_rows.start, bits: &bits, stored: files.stored, keys: *keys })?)
    }

    /// The record `id` of a version 2 index read from `block`, the record store block
    /// holding it ([`Index::record_block`]).
    pub(crate) fn record_in_block(
        &self,
        id: RowId,
        block: &Block,
        known: KnownKeys<'_>,
    ) -> Result<RecordView<'_>, LookupError> {
        let files = &self.inner.files;
        let (source, assets, severity) = self.row_source(id)?;
        let mut values: [Option<Cow<'_, str>>; ASSET_COUNT] = Default::default();
        // The normalized e-mail and username, for a recomputed document id.
        let mut normalized: [Option<String>; 2] = Default::default();
        for asset in assets.intersection(files.stored).iter() {
            let slot = match asset {
                Asset::Email => 0,
                Asset::Username => 1,
                _ => {
                    values[asset.index()] = block.value(id, asset)?.map(|v| Cow::Owned(v.to_owned()));
                    continue;
                }
            };
            let (value, norm) = match block.ident(id, asset)? {
                None => continue,
                Some(IdentValue::EqualsKey) => {
                    let key = self.plain_key_of(id, asset, known)?;
                    (key.clone(), key)
                }
                Some(IdentValue::Normalized(v)) => (v.to_owned(), v.to_owned()),
                Some(IdentValue::AsGiven(v)) => {
                    let norm = normalize_identifier(asset, v).ok_or_else(|| {
                        damaged(store::FILE_NAME, format!("row {id}: the stored {asset} is not a valid {asset}"))
                    })?;
                    (v.to_owned(), norm)
                }
            };
            values[asset.index()] = Some(Cow::Owned(value));
            normalized[slot] = Some(norm);
        }
        let document_id = match block.document_id(id)? {
            Some(stored) => stored,
            None => {
                let texts: [Option<&str>; ASSET_COUNT] = std::array::from_fn(|i| values[i].as_deref());
                let salt = self.inner.salt.as_ref().map(|s| s.as_bytes());
                let [email, username] = &normalized;
                docid::document_id(
                    &mut Vec::with_capacity(256),
                    salt,
                    source.id,
                    &texts,
                    email.as_deref(),
                    username.as_deref(),
                )
            }
        };
        let row = Row {
            document_id,
            source_id: source.id,
            publish_date: source.publish_date,
            assets,
            severity: severity.score(),
        };
        Ok(RecordView { row_id: id, row, values })
    }

    /// The key of row `id` for an identifier stored as "equals the key" (plain mode):
    /// the e-mail key of the row's run (known, or found by the row's ordinal in
    /// `email.ranges` and the reverse walk of `email.fst`), or the username key the
    /// caller looked the row up by.
    fn plain_key_of(&self, id: RowId, asset: Asset, known: KnownKeys<'_>) -> Result<String, LookupError> {
        let files = &self.inner.files;
        let key = match (asset, known) {
            (Asset::Email, KnownKeys { email: Some(key), .. }) => key.to_vec(),
            (Asset::Email, _) => files.email_map.plain_key(files.email_ranges.ordinal_of_row(id)?)?,
            (_, KnownKeys { username: Some(key), .. }) => key.to_vec(),
            _ => {
                return Err(damaged(
                    store::FILE_NAME,
                    format!("row {id}: its {asset} is stored as its key, but the row was not looked up by it"),
                ));
            }
        };
        String::from_utf8(key)
            .map_err(|_| damaged(store::FILE_NAME, format!("row {id}: the {asset} key of the row is not UTF-8")))
    }
}

/// The normalized form of a stored e-mail or username (`None`: not a valid one).
fn normalize_identifier(asset: Asset, value: &str) -> Option<String> {
    let normalized = match asset {
        Asset::Email => crate::normalize::normalize_email(value).ok()?,
        _ => crate::normalize::normalize_username(value).ok()?,
    };
    Some(normalized.into_owned())
}
