//! `breachdex remove`: retire a source, or remove identities (opt-out), at once.
//!
//! Nothing is rewritten: a removed source moves to the generation's `removed_sources`
//! (reads skip its rows by source slot); removed identities become row deletions of the
//! segments that hold their records (reads skip those rows) and suppressed keys (a later
//! `add` drops their records). Password counts of the hidden records are subtracted by
//! per-segment subtraction files. The data disappears physically at the next `compact`.

use super::UpdateError;
use super::changes::{ChangeKind, ChangeRecord, write_change_file};
use super::layer::{open_generation_file, open_subtractions, tag, untag};
use super::manifest::{ChangeEntry, GenerationManifest, RemovedSource, SegmentDeletes};
use super::update::{DELETES_DIR, TOMBSTONES_DIR, Update, failpoint, not_v2};
use crate::asset::{Asset, AssetSet};
use crate::format::deletes::{self, DeletesReader};
use crate::format::manifest::FileEntry;
use crate::format::tombstones;
use crate::index::{IdentifierKind, Index, Query};
use crate::keymode::Salt;
use crate::password::PasswordHash;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// What [`remove_from_index`] removes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RemoveTarget {
    /// A whole source (fabricated, retracted), by name.
    Source(String),
    /// Identities that opted out: e-mails (text with `@`) or usernames, as given.
    Identities(Vec<String>),
    /// Derived keys in hex (what a monitoring system that holds no identifiers has), each
    /// with its kind (`None`: e-mail and username).
    Keys(Vec<(String, Option<IdentifierKind>)>),
}

/// Options of [`remove_from_index`].
#[derive(Clone, Debug, Default)]
pub struct RemoveOptions {
    /// The index's salt (hashed modes).
    pub salt: Option<Salt>,
    /// Time as Unix seconds, for reproducible output (`SOURCE_DATE_EPOCH`).
    pub source_date_epoch: Option<i64>,
}

/// What [`remove_from_index`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoveReport {
    /// The generation it published; `None` when there was nothing to remove (no live
    /// record matched and every key was already suppressed).
    pub generation: Option<u64>,
    /// Records that stopped being answered.
    pub records_removed: u64,
    /// Keys added to the suppressed keys (identity removal).
    pub keys_suppressed: u64,
    /// (key, source) pairs that lost a breach.
    pub lost: u64,
}

/// Removes `target` from the index at `index_dir` and publishes the next generation:
/// every answer changes at once, as if the removed records had never been added (and,
/// for identities, later `add`s drop their records).
pub fn remove_from_index(
    index_dir: &Path,
    target: &RemoveTarget,
    options: &RemoveOptions,
) -> Result<RemoveReport, UpdateError> {
    let update = Update::begin(index_dir, options.salt.as_ref())?;
    let created = options.source_date_epoch.unwrap_or_else(crate::date::now_unix_seconds);
    match target {
        RemoveTarget::Source(name) => remove_source(update, name, created),
        RemoveTarget::Identities(ids) => {
            let mut keys = Vec::with_capacity(ids.len());
            for text in ids {
                let (kind, key) = update.index.query_key(&Query::auto(text))?;
                keys.push((kind.unwrap_or(IdentifierKind::Email), key));
            }
            remove_keys(update, keys, created)
        }
        RemoveTarget::Keys(list) => {
            let mut keys = Vec::with_capacity(list.len() * 2);
            for (hex, kind) in list {
                let (_, key) = update.index.query_key(&Query::Key { hex, kind: *kind })?;
                if let Some(width) = update.index.hash_mode().key_width()
                    && key.len() != width
                {
                    return Err(UpdateError::Invalid(format!(
                        "key '{hex}': a {} key is {} hex digits",
                        update.index.hash_mode(),
                        width * 2
                    )));
                }
                match kind {
                    Some(k) => keys.push((*k, key)),
                    None => {
                        keys.push((IdentifierKind::Email, key.clone()));
                        keys.push((IdentifierKind::Username, key));
                    }
                }
            }
            remove_keys(update, keys, created)
        }
    }
}

/// The rows of a key ordinal of a segment's key map (its run, or its postings).
type RowsOf<'a> = dyn Fn(u64) -> Result<Vec<u64>, UpdateError> + 'a;

/// Everything about one record being removed.
struct Removed {
    /// Tagged row id.
    id: u64,
    source_id: u32,
    has_email: bool,
    email_key: Option<Vec<u8>>,
    username_key: Option<Vec<u8>>,
}

fn remove_keys(
    update: Update,
    mut keys: Vec<(IdentifierKind, Vec<u8>)>,
    created: i64,
) -> Result<RemoveReport, UpdateError> {
    keys.sort();
    keys.dedup();
    let index = &update.index;
    let mode = index.hash_mode();
    let old_tombs = update.tombstones()?;
    let mut rows: BTreeSet<u64> = BTreeSet::new();
    let mut new_keys = Vec::new();
    for (kind, key) in &keys {
        rows.extend(index.lookup_key(key, Some(*kind))?);
        let known = match &old_tombs {
            Some(t) => t.contains(*kind, key)?,
            None => false,
        };
        if !known {
            new_keys.push((*kind, key.clone()));
        }
    }
    if rows.is_empty() && new_keys.is_empty() {
        return Ok(RemoveReport { generation: None, records_removed: 0, keys_suppressed: 0, lost: 0 });
    }
    let generation = update.next_generation();
    let removed = describe_rows(index, &rows)?;

    // The (key, source) pairs the removed rows held, and which of them lose a breach.
    let mut changes = Vec::new();
    let mut pwn_lost: BTreeMap<u32, u64> = BTreeMap::new();
    let mut records_lost: BTreeMap<u32, u64> = BTreeMap::new();
    let mut pairs: BTreeSet<(IdentifierKind, Vec<u8>, u32, bool)> = BTreeSet::new();
    for r in &removed {
        *records_lost.entry(r.source_id).or_default() += 1;
        if let Some(k) = &r.email_key {
            pairs.insert((IdentifierKind::Email, k.clone(), r.source_id, false));
        }
        if let Some(k) = &r.username_key {
            pairs.insert((IdentifierKind::Username, k.clone(), r.source_id, !r.has_email));
        }
    }
    let mut done: BTreeSet<(IdentifierKind, Vec<u8>, u32)> = BTreeSet::new();
    for (kind, key, source_id, username_only) in &pairs {
        let mut live_any = false;
        let mut live_username_only = false;
        for row in index.lookup_key(key, Some(*kind))? {
            if rows.contains(&row) || index.row_meta(row)?.source_id != *source_id {
                continue;
            }
            live_any = true;
            if *kind == IdentifierKind::Username && !index.row_has_email(row)? {
                live_username_only = true;
            }
        }
        if !live_any && done.insert((*kind, key.clone(), *source_id)) {
            changes.push(ChangeRecord {
                kind: *kind,
                key: key.clone(),
                source_id: *source_id,
                change: ChangeKind::Lost,
            });
            if *kind == IdentifierKind::Email {
                *pwn_lost.entry(*source_id).or_default() += 1;
            }
        }
        if *username_only && !live_username_only {
            *pwn_lost.entry(*source_id).or_default() += 1;
        }
    }
    changes.sort();

    let mut next = update.next_manifest("remove", created);
    let assets = source_assets(index, &records_lost.keys().copied().collect::<Vec<_>>(), &rows)?;
    for s in &mut next.sources {
        if let Some(lost) = records_lost.get(&s.id) {
            s.records = s.records.saturating_sub(*lost);
            s.pwn_count =
                Some(s.pwn_count.unwrap_or(s.records + lost).saturating_sub(pwn_lost.get(&s.id).copied().unwrap_or(0)));
            if let Some(set) = assets.get(&s.id) {
                s.assets = Some(set.iter().map(|a| a.name().to_string()).collect());
            }
        }
    }
    // Row deletions and password subtractions of every touched segment.
    let by_segment = rows_by_segment(removed.iter().map(|r| r.id));
    let mut hashes = if next.passwords { hashes_by_segment(&update, &by_segment)? } else { BTreeMap::new() };
    for (s, local_rows) in &by_segment {
        write_segment_deletions(&update, &mut next, *s, local_rows, hashes.remove(s), generation)?;
    }
    // Suppressed keys.
    if !new_keys.is_empty() {
        let name = format!("{TOMBSTONES_DIR}/g{generation:08}.keys");
        let dir = update.root.join(TOMBSTONES_DIR);
        std::fs::create_dir_all(&dir).map_err(|e| UpdateError::io(&dir, e))?;
        let path = update.root.join(&name);
        let (summary, _) = tombstones::write_cumulative(&path, mode.key_width(), old_tombs.as_ref(), new_keys.clone())
            .map_err(|e| UpdateError::Invalid(format!("{name}: {e}")))?;
        super::update::sync_dir(&dir)?;
        if let Some(old) = next.tombstones.replace(name.clone()) {
            next.files.retain(|f| f.name != old);
        }
        next.files.push(FileEntry { name, size: summary.size, xxh3: format!("{:016x}", summary.xxh3) });
    }
    publish_removal(update, next, &changes, removed.len() as u64, new_keys.len() as u64)
}

fn remove_source(update: Update, name: &str, created: i64) -> Result<RemoveReport, UpdateError> {
    let current = &update.current;
    if let Some(r) = current.removed_sources.iter().find(|r| r.name == name) {
        return Err(UpdateError::Invalid(format!(
            "source '{name}' was already removed in generation {}",
            r.generation
        )));
    }
    let Some(source) = current.sources.iter().find(|s| s.name == name).cloned() else {
        let names: Vec<&str> = current.sources.iter().map(|s| s.name.as_str()).collect();
        return Err(UpdateError::Invalid(format!(
            "no source named '{name}' in the index (sources: {})",
            names.join(", ")
        )));
    };
    let index = &update.index;
    let generation = update.next_generation();
    // Every live row of the source, and every (key, source) pair it held.
    let mut rows: BTreeSet<u64> = BTreeSet::new();
    let mut changes = Vec::new();
    for s in 0..segment_count(index) {
        let Some(seg) = index.segment(s) else { continue };
        let Some(slot) = seg.segment_sources().iter().position(|x| x.id == source.id) else { continue };
        let live = |row: u64| -> Result<bool, UpdateError> { Ok(seg.slot_of(row)? == slot && is_live(index, s, row)?) };
        for row in 0..seg.len_local() {
            if live(row)? {
                rows.insert(tag(s, row));
            }
        }
        let parts = seg.segment_parts().ok_or_else(not_v2)?;
        // Every key of the segment with a row of the source.
        let email_rows = |o: u64| -> Result<Vec<u64>, UpdateError> { Ok(parts.email_ranges.rows(o)?.collect()) };
        let username_rows =
            |o: u64| -> Result<Vec<u64>, UpdateError> { Ok(parts.username_postings.rows(o)?.collect()) };
        let maps: [(IdentifierKind, _, &RowsOf<'_>); 2] = [
            (IdentifierKind::Email, parts.email_map, &email_rows),
            (IdentifierKind::Username, parts.username_map, &username_rows),
        ];
        for (kind, map, rows_of) in maps {
            let mut keys = map.ordered_keys();
            for ordinal in 0..map.len() {
                let key = keys.key(ordinal)?;
                if rows_of(ordinal)?.iter().any(|row| rows.contains(&tag(s, *row))) {
                    changes.push(ChangeRecord {
                        kind,
                        key: key.to_vec(),
                        source_id: source.id,
                        change: ChangeKind::Lost,
                    });
                }
            }
        }
    }
    changes.sort();
    changes.dedup();
    let mut next = update.next_manifest("remove", created);
    // Password counts of the source's live rows, per segment.
    if next.passwords {
        let by_segment = rows_by_segment(rows.iter().copied());
        for (s, segment_hashes) in hashes_by_segment(&update, &by_segment)? {
            write_password_subtractions(&update, &mut next, s, segment_hashes, generation)?;
        }
    }
    next.sources.retain(|s| s.id != source.id);
    next.removed_sources.push(RemovedSource { id: source.id, name: source.name.clone(), generation });
    publish_removal(update, next, &changes, rows.len() as u64, 0)
}

/// The end of every removal: the generation's change file (the pairs that lost a
/// breach, sorted), its history entry, and the publish.
fn publish_removal(
    update: Update,
    mut next: GenerationManifest,
    changes: &[ChangeRecord],
    records_removed: u64,
    keys_suppressed: u64,
) -> Result<RemoveReport, UpdateError> {
    let generation = next.generation;
    let lost = changes.len() as u64;
    let file = write_change_file(&update, generation, update.index.hash_mode(), changes)?;
    next.changes.push(ChangeEntry { generation, file: file.as_ref().map(|f| f.name.clone()), entries: lost });
    next.files.extend(file);
    if let Some(h) = next.history.last_mut() {
        h.records_removed = records_removed;
    }
    failpoint("remove:before-publish");
    let published = update.publish(next, true)?;
    Ok(RemoveReport { generation: Some(published.generation), records_removed, keys_suppressed, lost })
}

fn segment_count(index: &Index) -> usize {
    index.layer().map_or(1, |l| l.segment_count())
}

/// Whether row `row` of segment `s` is live (not deleted, not of a removed source).
fn is_live(index: &Index, s: usize, row: u64) -> Result<bool, UpdateError> {
    let Some(layer) = index.layer() else { return Ok(true) };
    let Some(live) = layer.live.get(s) else { return Ok(true) };
    if let Some(d) = &live.deleted
        && d.contains(row)?
    {
        return Ok(false);
    }
    let Some(seg) = index.segment(s) else { return Ok(true) };
    Ok(!live.removed_slots.get(seg.slot_of(row)?).copied().unwrap_or(false))
}

/// The source, e-mail key and username key of each row to remove.
fn describe_rows(index: &Index, rows: &BTreeSet<u64>) -> Result<Vec<Removed>, UpdateError> {
    let mut out = Vec::with_capacity(rows.len());
    // Username keys of rows whose username is not stored: one scan of the postings of
    // each segment concerned.
    let mut need_postings: BTreeMap<usize, BTreeSet<u64>> = BTreeMap::new();
    for &id in rows {
        let (seg, row) = index.resolve_row(id)?;
        let meta = seg.row_meta(row)?;
        let has_email = index.row_has_email(id)?;
        let parts = seg.segment_parts().ok_or_else(not_v2)?;
        let email_key =
            if has_email { Some(parts.email_map.key_at(parts.email_ranges.ordinal_of_row(row)?)?) } else { None };
        let mut username_key = None;
        if meta.assets.contains(Asset::Username) {
            if seg.stored_assets().contains(Asset::Username) {
                let record = seg.record(row)?;
                if let Some(u) = record.get(Asset::Username)? {
                    username_key = Some(index.query_key(&Query::Username(u))?.1);
                }
            } else {
                need_postings.entry(untag(id).0).or_default().insert(row);
            }
        }
        out.push(Removed { id, source_id: meta.source_id, has_email, email_key, username_key });
    }
    for (s, wanted) in need_postings {
        let Some(seg) = index.segment(s) else { continue };
        let parts = seg.segment_parts().ok_or_else(not_v2)?;
        let mut found: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
        for ordinal in 0..parts.username_map.len() {
            for row in parts.username_postings.rows(ordinal)? {
                if wanted.contains(&row) {
                    found.insert(row, parts.username_map.key_at(ordinal)?);
                }
            }
        }
        for r in out.iter_mut().filter(|r| untag(r.id).0 == s) {
            if let Some(k) = found.remove(&untag(r.id).1) {
                r.username_key = Some(k);
            }
        }
    }
    Ok(out)
}

/// The assets present in the live records of each of `sources`, once `removed` are
/// gone (one pass over the hot rows of every segment).
fn source_assets(
    index: &Index,
    sources: &[u32],
    removed: &BTreeSet<u64>,
) -> Result<BTreeMap<u32, AssetSet>, UpdateError> {
    let mut out: BTreeMap<u32, AssetSet> = sources.iter().map(|s| (*s, AssetSet::EMPTY)).collect();
    for s in 0..segment_count(index) {
        let Some(seg) = index.segment(s) else { continue };
        if !seg.segment_sources().iter().any(|x| sources.contains(&x.id)) {
            continue;
        }
        for row in 0..seg.len_local() {
            let meta = seg.row_meta_local(row)?;
            if let Some(set) = out.get_mut(&meta.source_id)
                && !removed.contains(&tag(s, row))
                && is_live(index, s, row)?
            {
                *set = set.union(meta.assets);
            }
        }
    }
    Ok(out)
}

/// Writes segment `s`'s new row deletion file (its old deletions plus `rows`) and, when
/// the index counts passwords, its password subtractions (`hashes`, from
/// [`removed_password_hashes`]), and points the manifest at them.
fn write_segment_deletions(
    update: &Update,
    next: &mut GenerationManifest,
    s: usize,
    rows: &[u64],
    hashes: Option<Vec<PasswordHash>>,
    generation: u64,
) -> Result<(), UpdateError> {
    let index = &update.index;
    let Some(seg) = index.segment(s) else { return Ok(()) };
    let entry = next
        .segments
        .get(s)
        .cloned()
        .ok_or_else(|| UpdateError::Invalid(format!("segment {s} is not in the manifest")))?;
    let prefix = file_prefix(&entry.name);
    let old = match entry.deletes.as_ref().and_then(|d| d.rows.as_ref()) {
        Some(rows) => {
            let view = open_generation_file(&update.root, &update.current, rows, deletes::KIND)?;
            Some(DeletesReader::new(view, seg.len_local())?)
        }
        None => None,
    };
    let name = format!("{DELETES_DIR}/{prefix}.g{generation:08}.rows");
    let dir = update.root.join(DELETES_DIR);
    std::fs::create_dir_all(&dir).map_err(|e| UpdateError::io(&dir, e))?;
    let path = update.root.join(&name);
    let mut sorted = rows.to_vec();
    sorted.sort_unstable();
    let (summary, deleted) = deletes::write_union(&path, seg.len_local(), old.as_ref(), sorted)
        .map_err(|e| UpdateError::Invalid(format!("{name}: {e}")))?;
    super::update::sync_dir(&dir)?;
    let passwords = entry.deletes.as_ref().and_then(|d| d.passwords.clone());
    if let Some(old) = entry.deletes.as_ref().and_then(|d| d.rows.as_ref()) {
        next.files.retain(|f| f.name != *old);
    }
    next.files.push(FileEntry { name: name.clone(), size: summary.size, xxh3: format!("{:016x}", summary.xxh3) });
    if let Some(e) = next.segments.get_mut(s) {
        e.deletes = Some(SegmentDeletes { rows: Some(name), deleted, passwords });
    }
    if let Some(hashes) = hashes {
        write_password_subtractions(update, next, s, hashes, generation)?;
    }
    Ok(())
}

/// The file name prefix of segment `name` in `deletes/`: `root` for the base, else the
/// segment's own name (`g00000002`).
fn file_prefix(name: &str) -> String {
    match name.rsplit('/').next() {
        Some(n) if name != super::manifest::ROOT_SEGMENT => n.to_string(),
        _ => "root".to_string(),
    }
}

/// Tagged row ids (generation-wide) grouped by segment: segment → its local rows.
fn rows_by_segment(ids: impl Iterator<Item = u64>) -> BTreeMap<usize, Vec<u64>> {
    let mut by_segment: BTreeMap<usize, Vec<u64>> = BTreeMap::new();
    for id in ids {
        let (s, row) = untag(id);
        by_segment.entry(s).or_default().push(row);
    }
    by_segment
}

/// The password hashes of every segment's removed rows ([`removed_password_hashes`]),
/// all gathered before anything is written: an index that counts passwords it does not
/// store (and has no `passwords.rowrefs`) is refused here, leaving no file behind.
fn hashes_by_segment(
    update: &Update,
    by_segment: &BTreeMap<usize, Vec<u64>>,
) -> Result<BTreeMap<usize, Vec<PasswordHash>>, UpdateError> {
    by_segment.iter().map(|(s, rows)| Ok((*s, removed_password_hashes(update, *s, rows)?))).collect()
}

/// The password hashes of rows `rows` of segment `s`, to subtract from its counts: from
/// its `passwords.rowrefs` when it has one (an index that counts passwords it does not
/// store), else from the stored values; an error when a row holds a password the index
/// counts but neither stores nor refers to (an index built before `passwords.rowrefs`).
fn removed_password_hashes(update: &Update, s: usize, rows: &[u64]) -> Result<Vec<PasswordHash>, UpdateError> {
    let Some(seg) = update.index.segment(s) else { return Ok(Vec::new()) };
    let mut hashes: Vec<PasswordHash> = Vec::new();
    if let Some(parts) = seg.segment_parts()
        && let (Some(refs), Some(files)) = (parts.rowrefs, parts.passwords)
    {
        for &row in rows {
            hashes.extend(refs.hashes(row, files)?);
        }
        return Ok(hashes);
    }
    let needed = [Asset::PasswordPlaintext, Asset::PasswordHash];
    for &row in rows {
        let record = seg.record(row)?;
        let present = record.assets();
        if needed.iter().any(|a| present.contains(*a) && !seg.stored_assets().contains(*a)) {
            return Err(UpdateError::Invalid(format!(
                "{}: this index counts passwords but does not store them (built with --store without {}) and has no {} (it was built before that file existed): the password counts of removed records cannot be subtracted; rebuild it from the dumps with this version (it then takes removals), or build it with --no-password-index",
                update.root.display(),
                needed
                    .iter()
                    .filter(|a| !seg.stored_assets().contains(**a))
                    .map(|a| a.name())
                    .collect::<Vec<_>>()
                    .join(", "),
                crate::format::rowrefs::FILE_NAME
            )));
        }
        let values: [Option<&str>; crate::asset::ASSET_COUNT] =
            std::array::from_fn(|i| crate::asset::Asset::ALL.get(i).and_then(|a| record.get(*a).ok().flatten()));
        hashes.extend(crate::build::passwords::record_hashes(&values));
    }
    Ok(hashes)
}

/// Adds `hashes` (of removed rows of segment `s`) to the segment's subtraction files.
fn write_password_subtractions(
    update: &Update,
    next: &mut GenerationManifest,
    s: usize,
    hashes: Vec<PasswordHash>,
    generation: u64,
) -> Result<(), UpdateError> {
    let entry = next
        .segments
        .get(s)
        .cloned()
        .ok_or_else(|| UpdateError::Invalid(format!("segment {s} is not in the manifest")))?;
    let prefix = file_prefix(&entry.name);
    let old = entry.deletes.as_ref().and_then(|d| d.passwords.clone());
    let names = [
        format!("{DELETES_DIR}/{prefix}.g{generation:08}.pws1"),
        format!("{DELETES_DIR}/{prefix}.g{generation:08}.pwnt"),
    ];
    let dir = update.root.join(DELETES_DIR);
    std::fs::create_dir_all(&dir).map_err(|e| UpdateError::io(&dir, e))?;
    let previous = match &old {
        Some(names) => Some(open_subtractions(&update.root, &update.current, names)?),
        None => None,
    };
    let paths = [update.root.join(&names[0]), update.root.join(&names[1])];
    let summaries = crate::format::passwords::extend_subtraction_files(&paths[0], &paths[1], previous.as_ref(), hashes)
        .map_err(|e| UpdateError::io(&paths[0], e))?;
    super::update::sync_dir(&dir)?;
    if let Some(old) = &old {
        next.files.retain(|f| !old.contains(&f.name));
    }
    for (name, summary) in names.iter().zip(summaries) {
        next.files.push(FileEntry { name: name.clone(), size: summary.size, xxh3: format!("{:016x}", summary.xxh3) });
    }
    if let Some(e) = next.segments.get_mut(s) {
        match &mut e.deletes {
            Some(d) => d.passwords = Some(names),
            None => e.deletes = Some(SegmentDeletes { rows: None, deleted: 0, passwords: Some(names) }),
        }
    }
    Ok(())
}
