//! The change feed (SPEC §13): per generation, the (key, source) pairs that gained or
//! lost a breach. Keys are the index's derived keys, so nothing readable is listed in
//! hashed modes. Written by `add` and `remove` (`changes/gNNNNNNNN.chg`); read by
//! [`Index::changes`] and `breachdex changes`.

use super::UpdateError;
use super::update::{CHANGES_DIR, Update};
use crate::format::changes::{ChangesReader, ChangesWriter};
use crate::format::manifest::FileEntry;
use crate::index::{IdentifierKind, Index};
use crate::keymode::{HashMode, to_hex};

pub use crate::format::changes::ChangeKind;

/// One entry of a generation's change file, before it is written (sorted by kind, key,
/// source id).
pub(crate) use crate::format::changes::Change as ChangeRecord;

/// One entry of the change feed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// The generation that made the change.
    pub generation: u64,
    /// Gained or lost.
    pub change: ChangeKind,
    /// E-mail or username key.
    pub kind: IdentifierKind,
    /// The derived key: the normalized identifier in `plain` mode, the hash otherwise.
    pub key: Vec<u8>,
    /// The source's id.
    pub source_id: u32,
}

impl Change {
    /// The key as `check --key` takes it: the identifier in `plain` mode, hex otherwise.
    pub fn key_text(&self, mode: HashMode) -> String {
        match mode {
            HashMode::Plain => String::from_utf8_lossy(&self.key).into_owned(),
            _ => to_hex(&self.key),
        }
    }
}

/// Writes the change file of generation `generation` (`None`: nothing changed, no
/// file). `records` must be sorted by (kind, key, source id).
pub(crate) fn write_change_file(
    update: &Update,
    generation: u64,
    mode: HashMode,
    records: &[ChangeRecord],
) -> Result<Option<FileEntry>, UpdateError> {
    if records.is_empty() {
        return Ok(None);
    }
    let name = format!("{CHANGES_DIR}/g{generation:08}.chg");
    let dir = update.root.join(CHANGES_DIR);
    std::fs::create_dir_all(&dir).map_err(|e| UpdateError::io(&dir, e))?;
    let path = update.root.join(&name);
    let mut writer = ChangesWriter::create(&path, mode.key_width()).map_err(|e| UpdateError::io(&path, e))?;
    for r in records {
        writer.push(r.kind, &r.key, r.source_id, r.change).map_err(|e| UpdateError::io(&path, e))?;
    }
    let summary = writer.finish().map_err(|e| UpdateError::io(&path, e))?;
    super::update::sync_dir(&dir)?;
    Ok(Some(FileEntry { name, size: summary.size, xxh3: format!("{:016x}", summary.xxh3) }))
}

impl Index {
    /// The change feed since generation `since`: for each later generation in order,
    /// the (key, source) pairs that gained or lost a breach in it, sorted by kind, key
    /// and source within a generation. `since` at or past the current generation gives
    /// nothing; 0 is an error (generation 1 is the build: list its keys from the index
    /// itself).
    pub fn changes(&self, since: u64) -> Result<Vec<Change>, UpdateError> {
        if since == 0 {
            return Err(UpdateError::Invalid(
                "changes since generation 0: generation 1 is the build itself; give 1 or later".into(),
            ));
        }
        let Some(layer) = self.layer() else { return Ok(Vec::new()) };
        let g = &layer.manifest;
        let mode = self.hash_mode();
        let mut out = Vec::new();
        for entry in g.changes.iter().filter(|c| c.generation > since) {
            let Some(name) = &entry.file else { continue };
            let view = super::layer::open_generation_file(&layer.root, g, name, crate::format::changes::KIND)?;
            let reader = ChangesReader::new(view, mode.key_width())?;
            if reader.len() != entry.entries {
                return Err(UpdateError::Invalid(format!(
                    "{name}: {} entries, the manifest says {}: the index is damaged",
                    reader.len(),
                    entry.entries
                )));
            }
            for item in reader.iter() {
                let c = item?;
                out.push(Change {
                    generation: entry.generation,
                    change: c.change,
                    kind: c.kind,
                    key: c.key,
                    source_id: c.source_id,
                });
            }
        }
        Ok(out)
    }

    /// The name of source `id`, live or removed (a "lost" change can name a removed
    /// source).
    pub fn source_name(&self, id: u32) -> Option<&str> {
        if let Some(s) = self.source(id) {
            return Some(&s.name);
        }
        let layer = self.layer()?;
        layer.manifest.removed_sources.iter().find(|r| r.id == id).map(|r| r.name.as_str())
    }
}
