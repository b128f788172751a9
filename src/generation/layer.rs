//! Opening a generation and reading over its segments.
//!
//! The base segment's files are the [`Index`]'s own; the other segments are
//! single-segment [`Index`] values held here. Row ids of an index whose reads merge
//! segments carry the segment number in their top [`SEGMENT_BITS`] bits (segment 0 is
//! the base, so an index of one segment without deletions keeps its row ids).
//!
//! Reads stay the single-segment code on each segment: a lookup collects, segment by
//! segment, the live rows (not deleted, not of a removed source) as tagged row ids, and
//! every per-row read dispatches on the tag. Segments are disjoint in live records
//! (`add` drops records already live in an older segment), so counts add up.

use super::filters::Filters;
use super::manifest::{self as gm, GenerationManifest, ROOT_SEGMENT};
use crate::format::deletes::DeletesReader;
use crate::format::manifest::{Manifest, ManifestError};
use crate::format::passwords::{self as password_files, PasswordFileReader, PasswordFiles, PasswordPart};
use crate::format::rows::RowId;
use crate::format::{FileView, Kind};
use crate::index::batch::{BATCH_GROUP, Located};
use crate::index::{IdentifierKind, Index, LookupError, Matches, OpenError, OpenOptions, SourceInfo, source_infos};
use crate::mmap::{Access, Bytes};
use crate::password::PasswordHashKind;
use std::path::{Path, PathBuf};

/// Bits of a row id that hold the segment number.
pub(crate) const SEGMENT_BITS: u32 = 16;
/// Bits left for the row number within a segment.
pub(crate) const ROW_BITS: u32 = 64 - SEGMENT_BITS;
/// Most segments a generation may have.
pub(crate) const MAX_SEGMENTS: usize = 1 << SEGMENT_BITS;

/// The row id of row `row` of segment `segment`.
#[inline(always)]
pub(crate) fn tag(segment: usize, row: RowId) -> RowId {
    ((segment as u64) << ROW_BITS) | row
}

/// The segment and row of a tagged row id.
#[inline(always)]
pub(crate) fn untag(id: RowId) -> (usize, RowId) {
    ((id >> ROW_BITS) as usize, id & ((1u64 << ROW_BITS) - 1))
}

/// What makes a segment's row live.
#[derive(Debug)]
pub(crate) struct SegmentLive {
    /// Deleted rows (opted-out identities), if any.
    pub deleted: Option<DeletesReader>,
    /// By source slot (position in the segment's source table): whether the source was
    /// removed.
    pub removed_slots: Vec<bool>,
}

impl SegmentLive {
    /// Whether nothing of the segment is hidden.
    fn hides_nothing(&self) -> bool {
        self.deleted.as_ref().is_none_or(|d| d.is_empty()) && !self.removed_slots.iter().any(|r| *r)
    }
}

/// The generation layer of an updated index.
#[derive(Debug)]
pub(crate) struct Layer {
    /// The generation manifest.
    pub manifest: GenerationManifest,
    /// The index root.
    pub root: PathBuf,
    /// Segments 1.. (segment 0 is the base: the [`Index`]'s own files).
    pub others: Vec<Index>,
    /// Per segment (0 first).
    pub live: Vec<SegmentLive>,
    /// The live sources, ascending by id, with counts over every live record.
    pub sources: Vec<SourceInfo>,
    /// Whether reads must merge (more than one segment, or rows hidden).
    merges: bool,
    /// The password index over every segment, with each one's subtractions (`None`
    /// when the index has none).
    pub passwords: Option<Vec<PasswordPart>>,
    /// The key filters that let a lookup skip segments (`None`: every segment is
    /// looked up).
    pub filters: Option<Filters>,
}

impl Layer {
    /// Whether reads must go through the merging path.
    #[inline(always)]
    pub fn merges(&self) -> bool {
        self.merges
    }

    /// Live records.
    pub fn records(&self) -> u64 {
        self.manifest.records()
    }

    /// Number of segments.
    pub fn segment_count(&self) -> usize {
        self.others.len() + 1
    }

    /// The live source with id `id`.
    pub fn source(&self, id: u32) -> Option<&SourceInfo> {
        let s = &self.sources;
        s.binary_search_by_key(&id, |s| s.id).ok().and_then(|i| s.get(i))
    }
}

/// Opens generation `manifest` of the index at `root`. A reader that loses a race
/// with a writer's garbage collection (a file of the generation it read is already
/// gone) reads the manifest again and retries, at most 3 times.
pub(crate) fn open_generation(
    root: &Path,
    manifest: GenerationManifest,
    options: &OpenOptions,
) -> Result<Index, OpenError> {
    let mut manifest = manifest;
    let mut attempts = 0;
    loop {
        let id = manifest.generation_id.clone();
        match open_once(root, manifest, options) {
            Ok(index) => return Ok(index),
            Err(e) if attempts < 3 && is_missing(&e) => {
                attempts += 1;
                match super::read_root_at(root)? {
                    gm::RootManifest::Generation(g) if g.generation_id != id => manifest = *g,
                    _ => return Err(e),
                }
            }
            Err(e) => return Err(e),
        }
    }
}

fn is_missing(e: &OpenError) -> bool {
    match e {
        OpenError::MissingFile(_) | OpenError::NotAnIndex { .. } => true,
        OpenError::Io { source, .. } => source.kind() == std::io::ErrorKind::NotFound,
        OpenError::Manifest { source: ManifestError::Io(io), .. } => io.kind() == std::io::ErrorKind::NotFound,
        OpenError::Segment { source, .. } => is_missing(source),
        _ => false,
    }
}

fn inconsistent(what: String) -> OpenError {
    OpenError::Inconsistent(format!("manifest.json: {what}"))
}

fn open_once(root: &Path, manifest: GenerationManifest, options: &OpenOptions) -> Result<Index, OpenError> {
    if manifest.segments.is_empty() || manifest.segments.len() > MAX_SEGMENTS {
        return Err(inconsistent(format!("{} segments (1 to {MAX_SEGMENTS} expected)", manifest.segments.len())));
    }
    let removed: Vec<u32> = {
        let mut ids: Vec<u32> = manifest.removed_sources.iter().map(|r| r.id).collect();
        ids.sort_unstable();
        ids
    };
    let mut segments = Vec::with_capacity(manifest.segments.len());
    let mut live = Vec::with_capacity(manifest.segments.len());
    for entry in &manifest.segments {
        let in_segment =
            |source: OpenError| OpenError::Segment { segment: entry.name.clone(), source: Box::new(source) };
        let index = open_segment_entry(root, &manifest, entry).map_err(in_segment)?;
        let index = index.and_options(options).map_err(in_segment)?;
        if index.len() >= 1u64 << ROW_BITS {
            return Err(in_segment(OpenError::Inconsistent(format!(
                "{} rows is more than a segment holds",
                index.len()
            ))));
        }
        let deleted = match entry.deletes.as_ref().and_then(|d| d.rows.as_ref().map(|rows| (d, rows))) {
            None => None,
            Some((d, rows)) => {
                let view = open_generation_file(root, &manifest, rows, crate::format::deletes::KIND)?;
                let reader = DeletesReader::new(view, index.len())?;
                if reader.len() != d.deleted {
                    return Err(inconsistent(format!(
                        "{rows}: {} deleted rows, manifest says {}",
                        reader.len(),
                        d.deleted
                    )));
                }
                Some(reader)
            }
        };
        let removed_slots =
            index.segment_sources().iter().map(|s| removed.binary_search(&s.id).is_ok()).collect::<Vec<bool>>();
        live.push(SegmentLive { deleted, removed_slots });
        segments.push(index);
    }
    let sources = source_infos(&manifest.sources).map_err(inconsistent)?;
    if let Some(s) = sources.iter().find(|s| removed.binary_search(&s.id).is_ok()) {
        return Err(inconsistent(format!("source {} ({}) is both live and removed", s.id, s.name)));
    }
    let merges = segments.len() > 1 || live.iter().any(|l| !l.hides_nothing());
    let mut passwords = Some(Vec::with_capacity(segments.len()));
    for (index, entry) in segments.iter().zip(&manifest.segments) {
        let files = index.segment_parts().and_then(|p| p.passwords.cloned());
        let subtract = match entry.deletes.as_ref().and_then(|d| d.passwords.as_ref()) {
            Some(names) => Some(open_subtractions(root, &manifest, names)?),
            None => None,
        };
        match (files, passwords.as_mut()) {
            (Some(files), Some(parts)) => parts.push(PasswordPart { files, subtract }),
            _ => passwords = None,
        }
    }
    let filters = Filters::open(root, &manifest, &segments)?;
    let mut segments = segments.into_iter();
    let base = segments.next().ok_or_else(|| inconsistent("no segments".into()))?;
    let layer = Layer {
        manifest,
        root: root.to_path_buf(),
        others: segments.collect(),
        live,
        sources,
        merges,
        passwords,
        filters,
    };
    base.with_generation(layer)
}

/// Opens the segment `entry` of `manifest`: checks its manifest file's checksum and
/// build id against the generation, then opens it like any index.
fn open_segment_entry(
    root: &Path,
    manifest: &GenerationManifest,
    entry: &gm::SegmentEntry,
) -> Result<SegmentOpen, OpenError> {
    let dir = segment_dir(root, &entry.name)?;
    let manifest_path = root.join(relative(&entry.manifest)?);
    let text = crate::format::manifest::read_text(&manifest_path).map_err(|source| match source {
        ManifestError::Io(e) if e.kind() == std::io::ErrorKind::NotFound => {
            OpenError::MissingFile(entry.manifest.clone())
        }
        source => OpenError::Manifest { dir: dir.clone(), source },
    })?;
    if gm::xxh3_hex(text.as_bytes()) != entry.manifest_xxh3 {
        return Err(OpenError::Inconsistent(format!(
            "{}: checksum differs from the generation manifest's: the segment was replaced or damaged",
            entry.manifest
        )));
    }
    let segment = Manifest::from_file_text(&text).map_err(|source| OpenError::Manifest { dir: dir.clone(), source })?;
    if segment.build_id != entry.build_id || segment.counts.records != entry.rows {
        return Err(OpenError::Inconsistent(format!(
            "{}: build {} with {} rows, the generation manifest says build {} with {} rows",
            entry.manifest, segment.build_id, segment.counts.records, entry.build_id, entry.rows
        )));
    }
    if segment.hash_mode != manifest.hash_mode || segment.salt_fingerprint != manifest.salt_fingerprint {
        return Err(OpenError::Inconsistent(format!(
            "{}: hash mode or salt differs from the generation's",
            entry.manifest
        )));
    }
    if segment.format_version < 2 {
        return Err(OpenError::Inconsistent(format!(
            "{}: format version {} cannot be a segment (run `breachdex upgrade`)",
            entry.manifest, segment.format_version
        )));
    }
    Ok(SegmentOpen { dir, manifest: segment })
}

/// Segment `entry` of generation `manifest` as an index of its own (what a merge reads).
pub(crate) fn open_segment_alone(
    root: &Path,
    manifest: &GenerationManifest,
    entry: &gm::SegmentEntry,
    options: &OpenOptions,
) -> Result<Index, OpenError> {
    let in_segment = |source: OpenError| OpenError::Segment { segment: entry.name.clone(), source: Box::new(source) };
    open_segment_entry(root, manifest, entry).and_then(|s| s.and_options(options)).map_err(in_segment)
}

/// A segment whose manifest was read and checked, ready to map.
struct SegmentOpen {
    dir: PathBuf,
    manifest: Manifest,
}

impl SegmentOpen {
    fn and_options(self, options: &OpenOptions) -> Result<Index, OpenError> {
        Index::open_segment(&self.dir, self.manifest, options)
    }
}

/// The directory of segment `name`: the root for [`ROOT_SEGMENT`], else a path under
/// `segments/` (a hostile manifest cannot name anything outside the index).
fn segment_dir(root: &Path, name: &str) -> Result<PathBuf, OpenError> {
    if name == ROOT_SEGMENT {
        return Ok(root.to_path_buf());
    }
    Ok(root.join(relative(name)?))
}

/// `name` as a relative path inside the index: plain components only.
pub(crate) fn relative(name: &str) -> Result<&Path, OpenError> {
    let path = Path::new(name);
    let plain = !name.is_empty()
        && path.components().all(|c| matches!(c, std::path::Component::Normal(_)))
        && !name.contains('\\');
    if plain { Ok(path) } else { Err(inconsistent(format!("'{name}' is not a file name inside the index"))) }
}

/// Opens a segment's password subtraction files `[sha1, ntlm]` (generation-level files,
/// as [`open_generation_file`] maps them).
pub(crate) fn open_subtractions(
    root: &Path,
    manifest: &GenerationManifest,
    [sha1, ntlm]: &[String; 2],
) -> Result<PasswordFiles, OpenError> {
    let open = |name: &str, kind: PasswordHashKind| -> Result<PasswordFileReader, OpenError> {
        let view = open_generation_file(root, manifest, name, password_files::file_kind(kind))?;
        Ok(PasswordFileReader::new(view, kind)?)
    };
    Ok(PasswordFiles { sha1: open(sha1, PasswordHashKind::Sha1)?, ntlm: open(ntlm, PasswordHashKind::Ntlm)? })
}

/// Maps the generation-level file `name`, checking its size against the manifest and its
/// frame against `kind`.
pub(crate) fn open_generation_file(
    root: &Path,
    manifest: &GenerationManifest,
    name: &str,
    kind: Kind,
) -> Result<FileView, OpenError> {
    let entry = manifest.file(name).ok_or_else(|| OpenError::MissingFile(name.to_string()))?;
    let path = root.join(relative(name)?);
    let file = std::fs::File::open(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => OpenError::MissingFile(name.to_string()),
        _ => OpenError::Io { path: path.clone(), source: e },
    })?;
    let actual = file.metadata().map_err(|e| OpenError::Io { path: path.clone(), source: e })?.len();
    if actual != entry.size {
        return Err(OpenError::SizeMismatch { name: name.to_string(), expected: entry.size, actual });
    }
    let bytes = Bytes::map_file(&file, Access::Random, false).map_err(|e| OpenError::Io { path, source: e })?;
    Ok(FileView::parse_version(name, bytes, kind, crate::format::FORMAT_VERSION)?)
}

impl Layer {
    /// The key filters' hash of `key` of `kind`, the union filter's block for it
    /// prefetched (to be probed by [`Index::merged_rows_from`]); `None` without key
    /// filters.
    #[inline]
    pub(crate) fn key_hash(&self, kind: IdentifierKind, key: &[u8]) -> Option<u64> {
        self.filters.as_ref().map(|f| f.hash(kind, key))
    }
}

impl Index {
    /// Segment `s` of this index (0: the base, which is `self`).
    #[inline]
    pub(crate) fn segment(&self, s: usize) -> Option<&Index> {
        match s {
            0 => Some(self),
            _ => self.layer()?.others.get(s - 1),
        }
    }

    /// The live rows of `key` of `kind` in every segment, as tagged row ids, segment
    /// after segment (each segment's rows in its own order). The segments whose key
    /// filter says the key is absent are skipped; the others are looked up together,
    /// step by step, so that their memory misses overlap (see
    /// [`Index::rows_in_segments`]).
    pub(crate) fn merged_rows<'a>(
        &'a self,
        layer: &'a Layer,
        kind: IdentifierKind,
        key: &[u8],
    ) -> Result<Matches<'a>, LookupError> {
        // The union block is fetched while the base's lookup starts (or, an FST walked
        // without an accelerator, runs whole), then probed.
        let hash = layer.key_hash(kind, key);
        let base = self.start_lookup(kind, key)?;
        self.merged_rows_from(layer, kind, key, hash, base)
    }

    /// [`Index::merged_rows`] of a key whose filter hash is `hash` ([`Layer::key_hash`])
    /// and whose lookup in the base has reached `base` ([`Index::start_lookup`], or the
    /// first steps of the batch path, which run the base's lookups of a group together).
    pub(crate) fn merged_rows_from<'a>(
        &'a self,
        layer: &'a Layer,
        kind: IdentifierKind,
        key: &[u8],
        hash: Option<u64>,
        base: Located,
    ) -> Result<Matches<'a>, LookupError> {
        let probe = layer.filters.as_ref().zip(hash).map(|(filters, hash)| (filters, filters.probe(kind, hash)));
        let mut ids = Vec::new();
        let mut keep = |s: usize, seg: &Index, matches: Matches<'_>| -> Result<(), LookupError> {
            let Some(live) = layer.live.get(s) else { return Ok(()) };
            if live.hides_nothing() {
                ids.extend(matches.map(|row| tag(s, row)));
                return Ok(());
            }
            for row in matches {
                if let Some(d) = &live.deleted
                    && d.contains(row)?
                {
                    continue;
                }
                let slot = seg.slot_of(row)?;
                if live.removed_slots.get(slot).copied().unwrap_or(false) {
                    continue;
                }
                ids.push(tag(s, row));
            }
            Ok(())
        };
        // Only the base may hold the key (a miss, or a key of the base alone): no group.
        let only_base = match &probe {
            Some((filters, probe)) => (1..layer.live.len()).all(|s| !filters.may_hold(s, probe)),
            None => layer.live.len() == 1,
        };
        if only_base {
            if let Some(ordinal) = self.finish_lookup(kind, key, base)? {
                keep(0, self, self.matches_at(kind, ordinal)?)?;
            }
            return Ok(Matches::list(ids));
        }
        // The segments that may hold the key, looked up a group at a time.
        let mut group = [(0, self, Located::Start); BATCH_GROUP];
        let mut len = 0;
        for s in 0..layer.live.len() {
            if let Some((filters, probe)) = &probe
                && !filters.may_hold(s, probe)
            {
                continue;
            }
            let (Some(seg), Some(slot)) = (self.segment(s), group.get_mut(len)) else { continue };
            *slot = (s, seg, if s == 0 { base } else { Located::Start });
            len += 1;
            if len == BATCH_GROUP {
                Index::rows_in_segments(&group, kind, key, &mut keep)?;
                len = 0;
            }
        }
        Index::rows_in_segments(group.get(..len).unwrap_or_default(), kind, key, &mut keep)?;
        Ok(Matches::list(ids))
    }

    /// The segment and local row of a tagged row id, or the damage error naming it.
    #[inline]
    pub(crate) fn resolve_row(&self, id: RowId) -> Result<(&Index, RowId), LookupError> {
        let (s, row) = untag(id);
        match self.segment(s) {
            Some(seg) => Ok((seg, row)),
            None => Err(LookupError::Damaged(crate::format::FormatError::damaged(
                "manifest.json",
                format!("row id {id} names segment {s}, which this generation does not have"),
            ))),
        }
    }
}
