//! Incremental updates (SPEC §13): an index is a set of immutable segments plus a
//! generation manifest, written last and renamed into place atomically.
//!
//! - [`manifest`]: the generation manifest (`manifest.json` of an updated index).
//! - [`layer`]: opening a generation and reading over all its segments as one index.
//! - [`WatchList`]: matching the change feed against watched keys (monitoring).
//!
//! What `build` writes is generation 1: one segment (the index root) and its own
//! manifest. The first `add`, `remove` or `compact` moves that manifest to
//! `root.manifest.json` and writes a generation manifest in its place. See
//! `docs/design/incremental-updates.md` for the design and docs/FORMAT.md for the bytes.

mod add;
mod changes;
mod compact;
mod error;
pub(crate) mod filters;
pub(crate) mod layer;
pub mod manifest;
mod remove;
mod update;
mod verify;
mod watch;

pub use add::{AddOptions, AddReport, add_to_index};
pub use changes::{Change, ChangeKind};
pub use compact::{CompactOptions, CompactReport, compact_index};
pub use error::UpdateError;
pub(crate) use layer::{Layer, open_generation};
pub use manifest::{
    ChangeEntry, FORMAT_NAME, GenerationManifest, HistoryEntry, RemovedSource, RootManifest, SegmentDeletes,
    SegmentEntry,
};
pub use remove::{RemoveOptions, RemoveReport, RemoveTarget, remove_from_index};
pub(crate) use verify::{LAYER as VERIFY_LAYER, verify_generation};
pub use watch::{WatchHit, WatchList};

use crate::format::manifest::ManifestError;
use crate::index::{OpenError, check_index_dir};
use std::path::Path;

/// Reads `manifest.json` of the index directory `dir`, either kind; a path that is not
/// an index is [`OpenError::NotAnIndex`].
pub(crate) fn read_root_at(dir: &Path) -> Result<RootManifest, OpenError> {
    check_index_dir(dir)?;
    manifest::read_root(dir).map_err(|source| match source {
        ManifestError::Io(e) if e.kind() == std::io::ErrorKind::NotFound => {
            OpenError::NotAnIndex { path: dir.to_path_buf(), reason: "no manifest.json in it" }
        }
        source => OpenError::Manifest { dir: dir.to_path_buf(), source },
    })
}

/// Reads `manifest.json` of the index directory `dir`: an index manifest (generation 1,
/// as `build` wrote it) or a generation manifest (an index updated by `add`, `remove` or
/// `compact`). `breachdex info` prints either.
pub fn read_root_manifest(dir: &Path) -> Result<RootManifest, OpenError> {
    read_root_at(dir)
}

/// The id of the generation published at `dir` (the build id of an index as `build`
/// wrote it), read from its manifest alone: how a reader tells, cheaply, whether the
/// index changed since it opened it (see [`crate::Index::generation_id`]).
pub fn read_generation_id(dir: &Path) -> Result<String, OpenError> {
    Ok(match read_root_at(dir)? {
        RootManifest::Index(m) => m.build_id,
        RootManifest::Generation(g) => g.generation_id,
    })
}
