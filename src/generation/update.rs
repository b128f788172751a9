//! What every writer (`add`, `remove`, `compact`) shares: the writer lock, the current
//! generation, publishing the next one (docs/design/incremental-updates.md §2.3) and
//! garbage collection (§2.4).
//!
//! Publishing order: new segments and generation-level files are written under names
//! no manifest references yet and fsynced; on the first update the build's manifest is
//! copied to `root.manifest.json`; then the new generation manifest is written to a
//! temporary file, fsynced and renamed over `manifest.json`, and the directory fsynced.
//! A process killed at any point leaves the previous generation or the new one, whole,
//! plus garbage that the next writer removes.

use super::UpdateError;
use super::manifest::{
    self as gm, ChangeEntry, GenerationManifest, HistoryEntry, ROOT_MANIFEST, ROOT_SEGMENT, RootManifest, SegmentEntry,
};
use crate::format::manifest::{self as im, Manifest};
use crate::format::tombstones::{self, TombstonesReader};
use crate::index::{Index, OpenOptions};
use crate::keymode::Salt;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Directory of the segments written by updates.
pub(crate) const SEGMENTS_DIR: &str = "segments";
/// Directory of row deletions and password subtractions.
pub(crate) const DELETES_DIR: &str = "deletes";
/// Directory of suppressed keys.
pub(crate) const TOMBSTONES_DIR: &str = "tombstones";
/// Directory of the change feed.
pub(crate) const CHANGES_DIR: &str = "changes";
/// The writer lock file.
pub(crate) const LOCK_FILE: &str = ".lock";

/// The name of the segment written by generation `g`.
pub(crate) fn segment_name(g: u64) -> String {
    format!("{SEGMENTS_DIR}/g{g:08}")
}

/// An update in progress: holds the writer lock and the current generation.
pub(crate) struct Update {
    /// The index root.
    pub root: PathBuf,
    /// The current generation (for an index as `build` wrote it, the equivalent
    /// generation 1 manifest).
    pub current: GenerationManifest,
    /// The current generation, open.
    pub index: Index,
    /// `manifest.json` of an index as `build` wrote it (copied to
    /// `root.manifest.json` at the first publish).
    plain_text: Option<String>,
    /// The lock, released when the update is dropped.
    _lock: File,
}

impl Update {
    /// Takes the writer lock on `root`, reads and opens the current generation, and
    /// removes the garbage of interrupted writers.
    pub fn begin(root: &Path, salt: Option<&Salt>) -> Result<Update, UpdateError> {
        // An index of format version 1 is refused before the lock file is written into it.
        refuse_format_v1(root, &super::read_root_at(root)?)?;
        let lock = take_lock(root)?;
        let manifest = super::read_root_at(root)?;
        refuse_format_v1(root, &manifest)?;
        let (current, plain_text) = match manifest {
            RootManifest::Index(m) => {
                let text = im::read_text(&root.join(im::FILE_NAME))
                    .map_err(|source| crate::index::OpenError::Manifest { dir: root.to_path_buf(), source })?;
                (generation_one(&m, &text), Some(text))
            }
            RootManifest::Generation(g) => (*g, None),
        };
        let options = OpenOptions { salt: salt.cloned(), populate: false };
        let index = Index::open(root, &options)?;
        if index.generation_id() != current.generation_id {
            return Err(UpdateError::Invalid(format!(
                "{}: the index changed while it opened; try again",
                root.display()
            )));
        }
        let update = Update { root: root.to_path_buf(), current, index, plain_text, _lock: lock };
        update.collect_garbage()?;
        Ok(update)
    }

    /// The suppressed keys of the current generation, if any identity was removed.
    pub fn tombstones(&self) -> Result<Option<TombstonesReader>, UpdateError> {
        let Some(name) = &self.current.tombstones else { return Ok(None) };
        let view = super::layer::open_generation_file(&self.root, &self.current, name, tombstones::KIND)?;
        Ok(Some(TombstonesReader::new(view, self.index.hash_mode().key_width())?))
    }

    /// The number of the generation this update publishes.
    pub fn next_generation(&self) -> u64 {
        self.current.generation + 1
    }

    /// The next generation's manifest, to fill in: a copy of the current one with the
    /// number, operation, time and history entry of the next.
    pub fn next_manifest(&self, operation: &str, created_unix: i64) -> GenerationManifest {
        let mut next = self.current.clone();
        next.generation = self.next_generation();
        next.parent_id = self.current.generation_id.clone();
        next.operation = operation.to_string();
        next.created = crate::date::rfc3339_utc(created_unix);
        next.builder = format!("breachdex {}", env!("CARGO_PKG_VERSION"));
        next.history.push(HistoryEntry {
            generation: next.generation,
            operation: operation.to_string(),
            created: next.created.clone(),
            ..Default::default()
        });
        next
    }

    /// The name and directory of the segment this update writes (`segments/gNNNNNNNN`;
    /// the build stages it beside and renames it into place, and garbage collection
    /// removes it if the generation that names it is never published).
    pub fn new_segment(&self) -> Result<(String, PathBuf), UpdateError> {
        let dir = self.root.join(SEGMENTS_DIR);
        std::fs::create_dir_all(&dir).map_err(|e| UpdateError::io(&dir, e))?;
        let name = segment_name(self.next_generation());
        let path = self.root.join(&name);
        Ok((name, path))
    }

    /// The manifest entry of the finished segment at `dir` (already renamed to its
    /// final name `name`).
    pub fn segment_entry(&self, name: &str, dir: &Path) -> Result<(SegmentEntry, Manifest), UpdateError> {
        let path = dir.join(im::FILE_NAME);
        let text = im::read_text(&path)
            .map_err(|source| crate::index::OpenError::Manifest { dir: dir.to_path_buf(), source })?;
        let manifest = Manifest::from_file_text(&text)
            .map_err(|source| crate::index::OpenError::Manifest { dir: dir.to_path_buf(), source })?;
        Ok((
            SegmentEntry {
                name: name.to_string(),
                manifest: format!("{name}/{}", im::FILE_NAME),
                manifest_xxh3: gm::xxh3_hex(text.as_bytes()),
                build_id: manifest.build_id.clone(),
                rows: manifest.counts.records,
                filter: false,
                deletes: None,
            },
            manifest,
        ))
    }

    /// Publishes `next`: fills in its ids, copies the build's manifest aside on the first
    /// update, replaces `manifest.json` atomically, then removes what no longer belongs
    /// to the index. `changed_answers`: whether the generation changes any answer (a
    /// compaction does not, so cursors stay valid).
    pub fn publish(
        mut self,
        mut next: GenerationManifest,
        changed_answers: bool,
    ) -> Result<GenerationManifest, UpdateError> {
        next.sources.sort_by_key(|s| s.id);
        next.files.sort_by(|a, b| a.name.cmp(&b.name));
        next.generation_id = generation_id(&next);
        next.content_id = if changed_answers { next.generation_id.clone() } else { self.current.content_id.clone() };
        failpoint("before-root-manifest");
        if let Some(text) = self.plain_text.take() {
            write_synced(&self.root.join(ROOT_MANIFEST), text.as_bytes())?;
        }
        let text =
            next.to_file_text().map_err(|e| UpdateError::Invalid(format!("cannot serialize the manifest: {e}")))?;
        let tmp = self.root.join(format!(".tmp-manifest-{}", std::process::id()));
        write_synced(&tmp, text.as_bytes())?;
        failpoint("before-publish");
        let target = self.root.join(im::FILE_NAME);
        std::fs::rename(&tmp, &target).map_err(|e| UpdateError::io(&target, e))?;
        sync_dir(&self.root)?;
        failpoint("after-publish");
        self.current = next.clone();
        self.collect_garbage()?;
        Ok(next)
    }

    /// Removes every entry of the update layout that the current generation does not
    /// reference (interrupted writers' work, segments merged away, old deletion and
    /// change files). Never touches a name outside the layout.
    pub fn collect_garbage(&self) -> Result<(), UpdateError> {
        let g = &self.current;
        let referenced_segment = |name: &str| g.segments.iter().any(|s| s.name == name);
        let referenced_file = |name: &str| g.files.iter().any(|f| f.name == name);
        let segments = self.root.join(SEGMENTS_DIR);
        for (name, is_dir) in list(&segments)? {
            let full = format!("{SEGMENTS_DIR}/{name}");
            // Segments, and the staging and spill folders a killed build left beside one.
            let ours = is_segment_name(&name)
                || (name.starts_with(".g") && name.contains(".tmp-"))
                || name.starts_with(".breachdex-spill-");
            if ours && is_dir && !referenced_segment(&full) {
                remove_segment_dir(&segments.join(&name))?;
            }
        }
        for dir in [DELETES_DIR, TOMBSTONES_DIR, CHANGES_DIR, super::filters::FILTERS_DIR] {
            let path = self.root.join(dir);
            for (name, is_dir) in list(&path)? {
                let full = format!("{dir}/{name}");
                if !is_dir && !referenced_file(&full) {
                    std::fs::remove_file(path.join(&name)).map_err(|e| UpdateError::io(path.join(&name), e))?;
                }
            }
        }
        for (name, is_dir) in list(&self.root)? {
            if !is_dir && name.starts_with(".tmp-manifest-") {
                let p = self.root.join(&name);
                std::fs::remove_file(&p).map_err(|e| UpdateError::io(&p, e))?;
            }
        }
        if g.generation > 1 && !referenced_segment(ROOT_SEGMENT) {
            // The base was merged away: its files go, its manifest last.
            let manifest_path = self.root.join(ROOT_MANIFEST);
            if let Some(files) = claimed_root_files(&manifest_path) {
                for name in files {
                    let p = self.root.join(&name);
                    match std::fs::remove_file(&p) {
                        Ok(()) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => return Err(UpdateError::io(&p, e)),
                    }
                }
                match std::fs::remove_file(&manifest_path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(UpdateError::io(&manifest_path, e)),
                }
            }
        }
        Ok(())
    }
}

/// The files a segment manifest at `path` lists (not itself), read leniently.
fn claimed_root_files(path: &Path) -> Option<Vec<String>> {
    let text = im::read_text(path).ok()?;
    let manifest = Manifest::from_file_text(&text).ok()?;
    Some(manifest.files.into_iter().map(|f| f.name).filter(|n| n != im::FILE_NAME && !n.contains('/')).collect())
}

/// Whether `name` is a segment directory name (`g` and 8 digits).
fn is_segment_name(name: &str) -> bool {
    name.len() == 9 && name.starts_with('g') && name[1..].bytes().all(|b| b.is_ascii_digit())
}

/// Removes a segment directory: its manifest first, so that a half-removed segment is
/// never mistaken for a whole one.
fn remove_segment_dir(dir: &Path) -> Result<(), UpdateError> {
    match std::fs::remove_file(dir.join(im::FILE_NAME)) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(UpdateError::io(dir.join(im::FILE_NAME), e)),
    }
    std::fs::remove_dir_all(dir).map_err(|e| UpdateError::io(dir, e))
}

/// The entries of `dir` (name, is a directory); none when it does not exist.
fn list(dir: &Path) -> Result<Vec<(String, bool)>, UpdateError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(UpdateError::io(dir, e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| UpdateError::io(dir, e))?;
        let is_dir = entry.file_type().map_err(|e| UpdateError::io(entry.path(), e))?.is_dir();
        if let Ok(name) = entry.file_name().into_string() {
            out.push((name, is_dir));
        }
    }
    Ok(out)
}

/// The generation 1 manifest equivalent to an index as `build` wrote it.
fn generation_one(m: &Manifest, text: &str) -> GenerationManifest {
    let present: crate::asset::AssetSet = m
        .sources
        .iter()
        .flat_map(|s| s.assets.iter().flatten())
        .filter_map(|name| crate::asset::Asset::from_name(name))
        .collect();
    let stored: crate::asset::AssetSet =
        m.stored_assets.iter().filter_map(|name| crate::asset::Asset::from_name(name)).collect();
    // The build keeps `--store ∩ present`. Its manifest names the request; one written
    // before it did (`store_request` absent, as for a build of every asset) tells only
    // what it kept: when that is everything present, the request was, as far as anyone
    // can tell, every asset.
    let store = match &m.store_request {
        Some(request) => Some(request.clone()),
        None => (stored != present).then(|| m.stored_assets.clone()),
    };
    GenerationManifest {
        format: gm::FORMAT_NAME.to_string(),
        format_version: gm::FORMAT_VERSION,
        generation: 1,
        generation_id: m.build_id.clone(),
        content_id: m.build_id.clone(),
        parent_id: String::new(),
        operation: "build".to_string(),
        created: m.created.clone(),
        builder: m.builder.clone(),
        hash_mode: m.hash_mode.clone(),
        salt_fingerprint: m.salt_fingerprint.clone(),
        store,
        passwords: m.counts.password_sha1.is_some(),
        filter_seed: None,
        union_filter: None,
        sources: m.sources.clone(),
        removed_sources: Vec::new(),
        segments: vec![SegmentEntry {
            name: ROOT_SEGMENT.to_string(),
            manifest: ROOT_MANIFEST.to_string(),
            manifest_xxh3: gm::xxh3_hex(text.as_bytes()),
            build_id: m.build_id.clone(),
            rows: m.counts.records,
            filter: false,
            deletes: None,
        }],
        tombstones: None,
        files: Vec::new(),
        changes: Vec::<ChangeEntry>::new(),
        history: Vec::new(),
    }
}

/// XXH3-128 over everything that identifies a generation.
fn generation_id(g: &GenerationManifest) -> String {
    let mut input = format!("{}|{}|", g.parent_id, g.generation);
    for s in &g.segments {
        input.push_str(&format!("seg:{}:{}:{}|", s.name, s.build_id, s.manifest_xxh3));
        if let Some(d) = &s.deletes {
            input.push_str(&format!("del:{}:{}|", d.rows.as_deref().unwrap_or("-"), d.deleted));
            if let Some([a, b]) = &d.passwords {
                input.push_str(&format!("pw:{a}:{b}|"));
            }
        }
    }
    for f in &g.files {
        input.push_str(&format!("file:{}:{}:{}|", f.name, f.size, f.xxh3));
    }
    input.push_str(&serde_json::to_string(&g.sources).unwrap_or_default());
    input.push_str(&serde_json::to_string(&g.removed_sources).unwrap_or_default());
    format!("{:032x}", xxhash_rust::xxh3::xxh3_128(input.as_bytes()))
}

/// Takes the writer lock (`INDEX/.lock`), writing our pid into it.
/// An index of format version 1 takes no update: it must be upgraded first.
fn refuse_format_v1(root: &Path, manifest: &RootManifest) -> Result<(), UpdateError> {
    match manifest {
        RootManifest::Index(m) if m.format_version < 2 => Err(UpdateError::Invalid(format!(
            "{}: this index has format version {}; run `breachdex upgrade` to convert it to version {} before updating it",
            root.display(),
            m.format_version,
            crate::format::FORMAT_VERSION
        ))),
        _ => Ok(()),
    }
}

fn take_lock(root: &Path) -> Result<File, UpdateError> {
    crate::index::check_index_dir(root)?;
    let path = root.join(LOCK_FILE);
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| UpdateError::io(&path, e))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let holder = std::fs::read_to_string(&path).ok().map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
            return Err(UpdateError::Locked { path: root.to_path_buf(), holder: holder.unwrap_or("unknown".into()) });
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(UpdateError::io(&path, e)),
    }
    file.set_len(0).map_err(|e| UpdateError::io(&path, e))?;
    file.write_all(format!("{}\n", std::process::id()).as_bytes()).map_err(|e| UpdateError::io(&path, e))?;
    Ok(file)
}

/// Writes `bytes` to `path` (a new file or one of ours) and fsyncs the file and its
/// directory.
pub(crate) fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), UpdateError> {
    let mut file = File::create(path).map_err(|e| UpdateError::io(path, e))?;
    file.write_all(bytes).map_err(|e| UpdateError::io(path, e))?;
    file.sync_all().map_err(|e| UpdateError::io(path, e))?;
    if let Some(dir) = path.parent() {
        sync_dir(dir)?;
    }
    Ok(())
}

/// fsyncs a directory (its entries: renames and new files).
pub(crate) fn sync_dir(dir: &Path) -> Result<(), UpdateError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| UpdateError::io(dir, e))
}

/// The `--store` request every segment of generation `g` applies (`None`: every asset).
pub(crate) fn store_request(g: &GenerationManifest) -> Result<Option<crate::asset::AssetSet>, UpdateError> {
    let Some(names) = &g.store else { return Ok(None) };
    names
        .iter()
        .map(|n| {
            crate::asset::Asset::from_name(n)
                .ok_or_else(|| UpdateError::Invalid(format!("manifest.json: unknown asset '{n}' in store")))
        })
        .collect::<Result<crate::asset::AssetSet, _>>()
        .map(Some)
}

/// The error for a segment of format version 1 (segments are version 2 or later).
pub(crate) fn not_v2() -> UpdateError {
    UpdateError::Invalid("a segment of format version 1: run `breachdex upgrade` on the index first".into())
}

/// Test hook: with `BREACHDEX_FAILPOINT` set to `NAME` (or `OP:NAME`), the process
/// kills itself at that point, as a crash or `SIGKILL` would: no destructor, no
/// cleanup. The crash-safety tests use it; nothing else sets the variable.
pub(crate) fn failpoint(name: &str) {
    if let Ok(wanted) = std::env::var("BREACHDEX_FAILPOINT")
        && (wanted == name || wanted.rsplit(':').next() == Some(name))
    {
        std::process::abort();
    }
}
