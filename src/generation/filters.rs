//! Key filters of an updated index (design §4.5, docs/FORMAT.md §10.4): each segment
//! written by `add` gets `keys.filter` over its keys, and every generation with such
//! segments a union filter `filters/gNNNNNNNN.union` over the keys of every segment but
//! the base. A lookup hashes its key once, probes the union (absent: it reads the base
//! only), then the segment filters, and skips the segments whose filter says absent.
//!
//! Writers: `add` writes the new segment's filter and the next union (a copy of the
//! previous one with the new keys inserted, or, when the copy would pass its capacity or
//! there is none, a rebuild at twice the keys from the key maps of every segment but the
//! base); `remove` references both again; a full `compact` leaves a base alone, with no
//! filter and no union. Readers: [`Filters`], opened with the generation.

use super::UpdateError;
use super::manifest::GenerationManifest;
use super::update::{Update, sync_dir};
use crate::format::filter::{self, FilterBuilder, FilterReader};
use crate::format::manifest::FileEntry;
use crate::index::{IdentifierKind, Index, OpenError};
use std::path::Path;

/// Directory of the union filters.
pub(crate) const FILTERS_DIR: &str = "filters";

/// The key filter file of segment `segment` (relative to the index root).
pub(crate) fn segment_filter_name(segment: &str) -> String {
    format!("{segment}/{}", filter::SEGMENT_FILE_NAME)
}

/// The union filter file of generation `g`.
fn union_name(g: u64) -> String {
    format!("{FILTERS_DIR}/g{g:08}.union")
}

/// The keys a section of `2^log2` blocks takes before the union is rebuilt: 12 bits
/// per key, the sizing rule's least.
fn capacity(blocks_log2: u32) -> u64 {
    (8 * filter::BLOCK_BYTES as u64).checked_shl(blocks_log2).unwrap_or(u64::MAX) / filter::MIN_BITS_PER_KEY
}

/// The (e-mail, username) key counts of a segment.
fn key_counts(segment: &Index) -> Result<(u64, u64), UpdateError> {
    let parts = segment.segment_parts().ok_or_else(super::update::not_v2)?;
    Ok((parts.email_map.len(), parts.username_map.len()))
}

/// Inserts every key of `segment` into `builder`.
fn insert_keys(builder: &mut FilterBuilder, segment: &Index) -> Result<(), UpdateError> {
    let parts = segment.segment_parts().ok_or_else(super::update::not_v2)?;
    let seed = builder.seed();
    let mut keys = parts.email_map.ordered_keys();
    for ordinal in 0..parts.email_map.len() {
        builder.insert(IdentifierKind::Email, filter::hash(IdentifierKind::Email, keys.key(ordinal)?, seed));
    }
    let mut keys = parts.username_map.ordered_keys();
    for ordinal in 0..parts.username_map.len() {
        builder.insert(IdentifierKind::Username, filter::hash(IdentifierKind::Username, keys.key(ordinal)?, seed));
    }
    Ok(())
}

/// Writes `builder` to `name` (relative to the index root) as a file of `kind`, synced
/// with its directory; its manifest entry.
fn write(
    root: &Path,
    name: &str,
    builder: &FilterBuilder,
    kind: crate::format::Kind,
) -> Result<FileEntry, UpdateError> {
    let path = root.join(name);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| UpdateError::io(dir, e))?;
    }
    let summary = builder.write(&path, kind).map_err(|e| UpdateError::io(&path, e))?;
    if let Some(dir) = path.parent() {
        sync_dir(dir)?;
    }
    Ok(FileEntry { name: name.to_string(), size: summary.size, xxh3: format!("{:016x}", summary.xxh3) })
}

/// The filters of the segment `segment` that `add` wrote as the last segment of `next`
/// (`name` its name): its `keys.filter`, and the union filter of `next` with its keys.
/// Sets `filter_seed` (drawn at the first add that writes filters: XXH3-64 of the
/// parent generation's id, so reproducible builds stay reproducible), the segment's
/// `filter` flag and `union_filter`, and lists both files.
pub(crate) fn write_add_filters(
    update: &Update,
    next: &mut GenerationManifest,
    name: &str,
    segment: &Index,
) -> Result<(), UpdateError> {
    let current = &update.current;
    let seed = match current.filter_seed().map_err(|e| UpdateError::Invalid(format!("manifest.json: {e}")))? {
        Some(seed) => seed,
        None => xxhash_rust::xxh3::xxh3_64(current.generation_id.as_bytes()),
    };
    next.filter_seed = Some(format!("{seed:016x}"));
    let (emails, usernames) = key_counts(segment)?;

    let mut own = FilterBuilder::new(emails, usernames, seed);
    insert_keys(&mut own, segment)?;
    let own_name = segment_filter_name(name);
    let entry = write(&update.root, &own_name, &own, filter::SEGMENT_KIND)?;
    next.files.retain(|f| f.name != own_name);
    next.files.push(entry);
    if let Some(s) = next.segments.iter_mut().find(|s| s.name == name) {
        s.filter = true;
    }

    // Every segment of the current generation but the base, then the new one.
    let older: Vec<&Index> = (1..current.segments.len()).filter_map(|s| update.index.segment(s)).collect();
    let (mut need_emails, mut need_usernames) = (emails, usernames);
    for seg in &older {
        let (e, u) = key_counts(seg)?;
        need_emails += e;
        need_usernames += u;
    }
    let previous = match &current.union_filter {
        Some(file) => Some(open_filter(&update.root, current, file, filter::UNION_KIND, seed)?),
        None => None,
    };
    let fits = |r: &FilterReader| {
        need_emails <= capacity(r.blocks_log2(IdentifierKind::Email))
            && need_usernames <= capacity(r.blocks_log2(IdentifierKind::Username))
    };
    let union = match previous.filter(fits) {
        Some(reader) => {
            let mut union = FilterBuilder::from_reader(&reader);
            insert_keys(&mut union, segment)?;
            union
        }
        None => {
            let mut union = FilterBuilder::new(2 * need_emails, 2 * need_usernames, seed);
            for seg in older.iter().copied().chain([segment]) {
                insert_keys(&mut union, seg)?;
            }
            union
        }
    };
    let union_file = union_name(next.generation);
    let entry = write(&update.root, &union_file, &union, filter::UNION_KIND)?;
    if let Some(old) = next.union_filter.take() {
        next.files.retain(|f| f.name != old);
    }
    next.files.push(entry);
    next.union_filter = Some(union_file);
    Ok(())
}

/// Leaves `next` (a full compaction's: one base segment) without filters: the union and
/// every segment filter leave its files. The seed stays, for the next add.
pub(crate) fn drop_filters(next: &mut GenerationManifest) {
    let own = format!("/{}", filter::SEGMENT_FILE_NAME);
    let union = format!("{FILTERS_DIR}/");
    next.files.retain(|f| !f.name.starts_with(&union) && !f.name.ends_with(&own));
    next.union_filter = None;
    for s in &mut next.segments {
        s.filter = false;
    }
}

/// Maps filter `name` of generation `manifest` and checks it: frame, size, seed and the
/// checksum of the whole file. A filter is small beside its segment, and a damaged one
/// would turn hits into misses, so open pays for its checksum (`verify` also counts its
/// bits and walks the segments' keys).
fn open_filter(
    root: &Path,
    manifest: &GenerationManifest,
    name: &str,
    kind: crate::format::Kind,
    seed: u64,
) -> Result<FilterReader, OpenError> {
    let view = super::layer::open_generation_file(root, manifest, name, kind)?;
    let reader = FilterReader::new(view, seed)?;
    reader.verify_checksum()?;
    Ok(reader)
}

/// The filters a lookup over the segments of a generation probes.
#[derive(Debug)]
pub(crate) struct Filters {
    seed: u64,
    /// Over the keys of every segment but the base.
    union: Option<FilterReader>,
    /// By segment number (0, the base, has none).
    segments: Vec<Option<FilterReader>>,
}

/// What the filters say of one key: its hash, and whether the union may hold it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Probe {
    kind: IdentifierKind,
    hash: u64,
    in_union: bool,
}

impl Filters {
    /// Opens the filters of `manifest` (`segments`: its segments, open, base first), or
    /// `None` when it has none. Each filter is checked (see [`open_filter`]) and its key
    /// count against its segments': damage is an error naming the file.
    pub(crate) fn open(
        root: &Path,
        manifest: &GenerationManifest,
        segments: &[Index],
    ) -> Result<Option<Filters>, OpenError> {
        let inconsistent = |what: String| OpenError::Inconsistent(format!("manifest.json: {what}"));
        let any = manifest.union_filter.is_some() || manifest.segments.iter().any(|s| s.filter);
        let seed = manifest.filter_seed().map_err(inconsistent)?;
        let Some(seed) = seed.filter(|_| any) else {
            return match any {
                true => Err(inconsistent("key filters but no filter_seed".into())),
                false => Ok(None),
            };
        };
        let keys = |index: &Index| index.segment_parts().map_or(0, |p| p.email_map.len() + p.username_map.len());
        let mut filters = Vec::with_capacity(segments.len());
        let mut union_keys = 0u64;
        for (s, (entry, index)) in manifest.segments.iter().zip(segments).enumerate() {
            if s > 0 {
                union_keys += keys(index);
            }
            if !entry.filter {
                filters.push(None);
                continue;
            }
            if s == 0 {
                return Err(inconsistent(format!("the base segment '{}' cannot have a key filter", entry.name)));
            }
            let name = segment_filter_name(&entry.name);
            let reader = open_filter(root, manifest, &name, filter::SEGMENT_KIND, seed)?;
            if reader.keys() != keys(index) {
                return Err(inconsistent(format!(
                    "{name}: {} keys, but the segment has {}: the filter belongs to another segment",
                    reader.keys(),
                    keys(index)
                )));
            }
            filters.push(Some(reader));
        }
        let union = match &manifest.union_filter {
            Some(name) => {
                let reader = open_filter(root, manifest, name, filter::UNION_KIND, seed)?;
                if reader.keys() != union_keys {
                    return Err(inconsistent(format!(
                        "{name}: {} keys inserted, but the segments after the base have {union_keys}: the filter belongs to another generation",
                        reader.keys()
                    )));
                }
                Some(reader)
            }
            None => None,
        };
        Ok(Some(Filters { seed, union, segments: filters }))
    }

    /// Hashes `key` of `kind` once for every filter, and hints the CPU to fetch its
    /// union block: the caller looks the base up meanwhile, then calls
    /// [`Filters::probe`], so that the union's memory latency overlaps the base's lookup.
    #[inline]
    pub(crate) fn hash(&self, kind: IdentifierKind, key: &[u8]) -> u64 {
        let hash = filter::hash(kind, key, self.seed);
        if let Some(u) = &self.union {
            u.prefetch(kind, hash);
        }
        hash
    }

    /// Probes the union for the key of [`Filters::hash`] `hash`; with its answer
    /// "maybe", prefetches the block of each segment filter, to be probed by
    /// [`Filters::may_hold`].
    #[inline]
    pub(crate) fn probe(&self, kind: IdentifierKind, hash: u64) -> Probe {
        let in_union = self.union.as_ref().is_none_or(|u| u.may_contain(kind, hash));
        if in_union {
            for f in self.segments.iter().flatten() {
                f.prefetch(kind, hash);
            }
        }
        Probe { kind, hash, in_union }
    }

    /// Whether segment `s` may hold the key of `probe`: the base always may; another
    /// segment not when the union says absent, nor when its own filter does.
    #[inline]
    pub(crate) fn may_hold(&self, s: usize, probe: &Probe) -> bool {
        if s == 0 {
            return true;
        }
        probe.in_union
            && self.segments.get(s).and_then(Option::as_ref).is_none_or(|f| f.may_contain(probe.kind, probe.hash))
    }
}
