//! [`RecordView`]: one record read in place from the mapped row and column files.

use super::{Index, LookupError};
use crate::asset::{Asset, AssetSet};
use crate::format::rows::{self, Row, RowId};

/// One record, read in place from the mapped files.
#[derive(Clone, Debug)]
pub struct RecordView<'a> {
    index: &'a Index,
    row_id: RowId,
    row: Row,
}

impl<'a> RecordView<'a> {
    /// Row id.
    pub fn row_id(&self) -> RowId {
        self.row_id
    }

    /// The fixed-width part.
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
    /// store it (see [`Index::stored_assets`]).
    pub fn get(&self, asset: Asset) -> Result<Option<&'a str>, LookupError> {
        if !self.row.assets.contains(asset) {
            return Ok(None);
        }
        match &self.index.inner.files.columns[asset.index()] {
            Some(col) => Ok(col.get(self.row_id)?),
            None => Ok(None),
        }
    }
}

impl Index {
    /// The record `id`, read in place.
    pub fn record(&self, id: RowId) -> Result<RecordView<'_>, LookupError> {
        Ok(RecordView { index: self, row_id: id, row: self.row(id)? })
    }
}
