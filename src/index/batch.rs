//! Batch lookups and checks: many queries resolved together so that their memory
//! misses overlap instead of following one another.
//!
//! A single lookup in a hashed index is a chain of dependent reads: the radix directory
//! entry of the key's bucket, the keys of the bucket, the key's row run (or postings
//! list), then the rows. Each read waits for the one before, and on an index larger
//! than the CPU caches each can be a memory miss (~100 ns). The batch path takes
//! [`BATCH_GROUP`] queries at a time and walks them through the chain in steps: it
//! normalizes and derives every key of the group and hints the CPU to fetch each
//! key's directory entry ([`crate::mmap::prefetch`]); then reads the directory entries
//! and prefetches the bucket keys; then searches the buckets and prefetches the row
//! runs or postings; then prefetches the rows; then reads them. The misses of one step
//! are in flight together while the group's other work runs.
//!
//! Results are exactly those of calling [`Index::lookup`] / [`Index::check`] on each
//! query in turn (same matches, same errors, same order): each step is a piece of the
//! single-query path, which is built from the same pieces. In `plain` mode the key map
//! is an FST: with an accelerator ([`crate::format::fingerprints`]) its directory
//! entries and buckets are prefetched like a hashed key column's; without one, the
//! group's FST walks run together, one node of each in turn, each walk's next node
//! prefetched while the others advance ([`crate::format::fst_safe::walk_interleaved`]),
//! so that the misses of a group's walks overlap as well.

use super::lookup::MatchesInner;
use super::{IdentifierKind, Index, LookupError, Matches, Query, normalized_email, normalized_username};
use crate::format::FormatError;
use crate::format::fingerprints::FingerprintSpan;
use crate::format::fst_safe::{Walk, walk_interleaved};
use crate::format::fstmap::FstReader;
use crate::format::keymap::KeyMapReader;
use crate::format::keys::BucketSpan;
use crate::keymode::{Key, MAX_HASHED_KEY_BYTES};
use std::borrow::Cow;

/// Queries the batch path resolves together: enough misses in flight to hide memory
/// latency, few enough that the prefetched lines are still cached when read.
pub const BATCH_GROUP: usize = 16;

/// Cache lines of rows prefetched per e-mail run (the hardware prefetcher follows
/// longer runs by itself).
const ROW_LINES: usize = 4;

/// Rows prefetched per username (their rows are scattered: one line each).
const POSTING_ROWS: usize = 8;

/// The FST walks of `jobs` (key map, key), run together so that their node reads
/// overlap ([`walk_interleaved`]): each answer is [`FstReader::lookup`]'s without an
/// accelerator, `None` where there is no job.
fn interleaved_walks(
    jobs: &[Option<(&FstReader, &[u8])>; BATCH_GROUP],
) -> [Option<Result<Option<u64>, FormatError>>; BATCH_GROUP] {
    let mut walks = [Walk::DONE; BATCH_GROUP];
    let mut n = 0;
    for (map, key) in jobs.iter().flatten() {
        if let Some(walk) = walks.get_mut(n) {
            *walk = map.start_walk(key);
            n += 1;
        }
    }
    walk_interleaved(walks.get_mut(..n).unwrap_or_default());
    let mut walks = walks.into_iter();
    jobs.map(|job| {
        let (map, _) = job?;
        Some(map.walk_answer(walks.next()?.finish()))
    })
}

/// A derived key that owns or borrows its bytes.
enum KeyBuf<'q> {
    /// `plain`: the normalized identifier.
    Plain(Cow<'q, str>),
    /// A hash of `len` bytes.
    Hashed([u8; MAX_HASHED_KEY_BYTES], u8),
}

impl KeyBuf<'_> {
    fn as_bytes(&self) -> &[u8] {
        match self {
            KeyBuf::Plain(s) => s.as_bytes(),
            KeyBuf::Hashed(bytes, len) => bytes.get(..*len as usize).unwrap_or_default(),
        }
    }
}

/// Where a key map lookup stands between steps.
#[derive(Copy, Clone)]
pub(crate) enum Located {
    /// Not started.
    Start,
    /// The bucket of a sorted key column (`None`: a key of the wrong width).
    Bucket(Option<BucketSpan>),
    /// The bucket of a plain key map's accelerator (`None`: no accelerator).
    Fingerprint(Option<FingerprintSpan>),
    /// Found at this ordinal.
    Found(u64),
    /// Not in the map.
    Absent,
}

/// One query of a group on its way through the steps.
enum Slot<'i, 'q> {
    Pending { kind: IdentifierKind, key: KeyBuf<'q>, at: Located },
    Done(Result<Matches<'i>, LookupError>),
}

impl KeyMapReader {
    /// Step 1: prefetch the directory entry of `key`.
    #[inline]
    fn prefetch_start(&self, key: &[u8]) {
        match self {
            KeyMapReader::Sorted(m) => m.prefetch_bucket(key),
            KeyMapReader::Fst(m) => m.prefetch_start(key),
        }
    }

    /// Step 2: read the directory entry, prefetch the bucket's keys.
    #[inline]
    fn locate(&self, key: &[u8]) -> Result<Located, FormatError> {
        match self {
            KeyMapReader::Sorted(m) => {
                let span = m.bucket_span(key)?;
                if let Some(span) = span {
                    m.prefetch_span(span);
                }
                Ok(Located::Bucket(span))
            }
            KeyMapReader::Fst(m) => Ok(Located::Fingerprint(m.locate(key)?)),
        }
    }

    /// Step 3: the ordinal of `key`; the same answer as [`KeyMapReader::lookup`].
    #[inline]
    fn finish(&self, key: &[u8], at: Located) -> Result<Option<u64>, FormatError> {
        match (self, at) {
            (_, Located::Found(ordinal)) => Ok(Some(ordinal)),
            (_, Located::Absent) => Ok(None),
            (KeyMapReader::Sorted(m), Located::Bucket(Some(span))) => Ok(m.search_span(key, span)),
            (KeyMapReader::Sorted(_), Located::Bucket(None)) => Ok(None),
            (KeyMapReader::Fst(m), Located::Fingerprint(span)) => m.finish_span(key, span),
            (map, _) => map.lookup(key),
        }
    }
}

impl Index {
    fn key_map(&self, kind: IdentifierKind) -> &KeyMapReader {
        match kind {
            IdentifierKind::Email => &self.inner.files.email_map,
            IdentifierKind::Username => &self.inner.files.username_map,
        }
    }

    /// Step 1 for one query: normalize and derive its key (the same steps and errors as
    /// [`Index::lookup_email`] / [`Index::lookup_username`]), prefetch its directory
    /// entry. Precomputed-key queries are resolved here by [`Index::lookup`].
    fn start<'q>(&self, query: &Query<'q>) -> Slot<'_, 'q> {
        let normalized = match *query {
            Query::Email(email) => normalized_email(email).map(|n| (IdentifierKind::Email, n)),
            Query::Username(username) => normalized_username(username).map(|n| (IdentifierKind::Username, n)),
            Query::Key { .. } => return Slot::Done(self.lookup(query)),
        };
        let (kind, normalized) = match normalized {
            Ok(found) => found,
            Err(e) => return Slot::Done(Err(e)),
        };
        let hashed = match self.inner.deriver.derive(normalized.as_bytes()) {
            Key::Hashed { bytes, len } => Some((bytes, len)),
            Key::Plain(_) => None,
        };
        let key = match hashed {
            Some((bytes, len)) => KeyBuf::Hashed(bytes, len),
            None => KeyBuf::Plain(normalized),
        };
        self.key_map(kind).prefetch_start(key.as_bytes());
        Slot::Pending { kind, key, at: Located::Start }
    }

    /// Resolves one group of at most [`BATCH_GROUP`] queries, appending one result
    /// per query to `out`.
    fn lookup_group<'i, 'q>(
        &'i self,
        group: &[Query<'q>],
        slots: &mut Vec<Slot<'i, 'q>>,
        out: &mut Vec<Result<Matches<'i>, LookupError>>,
    ) {
        let inner = &self.inner.files;
        slots.clear();
        // Step 1: keys, directory entries.
        for query in group {
            slots.push(self.start(query));
        }
        // Several segments: each key's filter hash, the union filter's block prefetched.
        let layer = self.merged();
        let mut hashes = [None; BATCH_GROUP];
        if let Some(layer) = layer {
            for (slot, hash) in slots.iter().zip(hashes.iter_mut()) {
                if let Slot::Pending { kind, key, .. } = slot {
                    *hash = layer.key_hash(*kind, key.as_bytes());
                }
            }
        }
        // Step 2: bucket spans, bucket keys.
        for slot in slots.iter_mut() {
            if let Slot::Pending { kind, key, at } = slot {
                match self.key_map(*kind).locate(key.as_bytes()) {
                    Ok(located) => *at = located,
                    Err(e) => *slot = Slot::Done(Err(e.into())),
                }
            }
        }
        // Step 2b: FSTs without an accelerator: the walks, interleaved.
        self.walk_group(slots);
        // Several segments: the base's lookups of the group have run together above;
        // each query's other segments are looked up together, query by query.
        if let Some(layer) = layer {
            for (slot, hash) in slots.iter_mut().zip(hashes) {
                if let Slot::Pending { kind, key, at } = slot {
                    *slot = Slot::Done(self.merged_rows_from(layer, *kind, key.as_bytes(), hash, *at));
                }
            }
        }
        // Step 3: ordinals, row runs / postings bounds.
        for slot in slots.iter_mut() {
            if let Slot::Pending { kind, key, at } = slot {
                match self.key_map(*kind).finish(key.as_bytes(), *at) {
                    Ok(Some(ordinal)) => {
                        match kind {
                            IdentifierKind::Email => inner.email_ranges.prefetch(ordinal),
                            IdentifierKind::Username => inner.username_postings.prefetch(ordinal),
                        }
                        *at = Located::Found(ordinal);
                    }
                    Ok(None) => *slot = Slot::Done(Ok(Matches::empty())),
                    Err(e) => *slot = Slot::Done(Err(e.into())),
                }
            }
        }
        // Step 3b: the high bits of Elias-Fano row runs (their place is in the sample
        // fetched by step 3).
        for slot in slots.iter() {
            if let Slot::Pending { kind: IdentifierKind::Email, at: Located::Found(ordinal), .. } = slot {
                inner.email_ranges.prefetch_more(*ordinal);
            }
        }
        // Step 4: matches (the same as `email_rows` / `username_rows`); prefetch the
        // rows of e-mail runs and the row ids of username postings.
        for slot in slots.iter_mut() {
            if let Slot::Pending { kind, at: Located::Found(ordinal), .. } = slot {
                let ordinal = *ordinal;
                let matches = match kind {
                    IdentifierKind::Email => inner.email_ranges.rows(ordinal).map(|rows| {
                        inner.records.prefetch(rows.clone(), ROW_LINES);
                        Matches(MatchesInner::Range(rows))
                    }),
                    IdentifierKind::Username => inner.username_postings.rows(ordinal).map(|list| {
                        list.prefetch(1);
                        Matches(MatchesInner::Postings(list))
                    }),
                };
                *slot = Slot::Done(matches.map_err(LookupError::from));
            }
        }
        // Step 5: the (scattered) rows of username postings.
        for slot in slots.iter() {
            if let Slot::Done(Ok(Matches(MatchesInner::Postings(list)))) = slot {
                for id in list.clone().take(POSTING_ROWS) {
                    inner.records.prefetch(id..id.saturating_add(1), 1);
                }
            }
        }
        for slot in slots.drain(..) {
            out.push(match slot {
                Slot::Done(result) => result,
                // Every pending slot was resolved by step 4; kept total for the compiler.
                Slot::Pending { kind, key, .. } => match kind {
                    IdentifierKind::Email => self.email_rows(key.as_bytes()),
                    IdentifierKind::Username => self.username_rows(key.as_bytes()),
                },
            });
        }
    }

    /// Step 2b of [`Index::lookup_group`]: the FST walks of the pending queries whose
    /// key map is an FST without an accelerator ([`Located::Fingerprint`]`(None)` after
    /// step 2), run together (see [`interleaved_walks`]); each such slot then holds its
    /// ordinal ([`Located::Found`]), [`Located::Absent`] or the error, as
    /// [`KeyMapReader::lookup`] would give.
    fn walk_group(&self, slots: &mut [Slot<'_, '_>]) {
        let mut jobs = [None; BATCH_GROUP];
        for (slot, job) in slots.iter().zip(jobs.iter_mut()) {
            if let Slot::Pending { kind, key, at: Located::Fingerprint(None) } = slot
                && let KeyMapReader::Fst(map) = self.key_map(*kind)
            {
                *job = Some((map, key.as_bytes()));
            }
        }
        let answers = interleaved_walks(&jobs);
        for (slot, answer) in slots.iter_mut().zip(answers) {
            if let (Slot::Pending { at, .. }, Some(answer)) = (&mut *slot, answer) {
                match answer {
                    Ok(found) => *at = found.map_or(Located::Absent, Located::Found),
                    Err(e) => *slot = Slot::Done(Err(e.into())),
                }
            }
        }
    }

    /// The first steps of a lookup of `key` of `kind`, to be finished by
    /// [`Index::rows_in_segments`]: the directory entry read and the bucket prefetched
    /// (a sorted key column, or a plain key map's accelerator), or, for an FST walked
    /// without an accelerator, the whole lookup.
    #[inline]
    pub(crate) fn start_lookup(&self, kind: IdentifierKind, key: &[u8]) -> Result<Located, FormatError> {
        let map = self.key_map(kind);
        map.prefetch_start(key);
        match map.locate(key)? {
            Located::Fingerprint(None) => Ok(map.lookup(key)?.map_or(Located::Absent, Located::Found)),
            located => Ok(located),
        }
    }

    /// The rows of `key` of `kind` in each of `segments` (segment number, segment, the
    /// step its lookup has reached: [`Located::Start`] if none; at most [`BATCH_GROUP`]
    /// are read), walked through the steps of the batch path
    /// together, so that the segments' memory misses overlap. Calls `each` with the same
    /// rows as each segment's own lookup, in the order of `segments`, for the segments
    /// that have the key.
    pub(crate) fn rows_in_segments<'i>(
        segments: &[(usize, &'i Index, Located)],
        kind: IdentifierKind,
        key: &[u8],
        mut each: impl FnMut(usize, &'i Index, Matches<'i>) -> Result<(), LookupError>,
    ) -> Result<(), LookupError> {
        let group = segments.get(..BATCH_GROUP).unwrap_or(segments);
        let mut at = [Located::Start; BATCH_GROUP];
        for ((_, seg, started), at) in group.iter().zip(at.iter_mut()) {
            *at = *started;
            if matches!(started, Located::Start) {
                seg.key_map(kind).prefetch_start(key);
            }
        }
        for ((_, seg, _), at) in group.iter().zip(at.iter_mut()) {
            if matches!(at, Located::Start) {
                *at = seg.key_map(kind).locate(key)?;
            }
        }
        // FSTs without an accelerator: the segments' walks of the key, interleaved.
        let mut jobs = [None; BATCH_GROUP];
        for (((_, seg, _), at), job) in group.iter().zip(&at).zip(jobs.iter_mut()) {
            if let (Located::Fingerprint(None), KeyMapReader::Fst(map)) = (at, seg.key_map(kind)) {
                *job = Some((map, key));
            }
        }
        for (at, answer) in at.iter_mut().zip(interleaved_walks(&jobs)) {
            if let Some(answer) = answer {
                *at = answer?.map_or(Located::Absent, Located::Found);
            }
        }
        let mut found = [None; BATCH_GROUP];
        for (((_, seg, _), at), found) in group.iter().zip(at).zip(found.iter_mut()) {
            *found = seg.key_map(kind).finish(key, at)?;
            if let Some(ordinal) = *found {
                let files = &seg.inner.files;
                match kind {
                    IdentifierKind::Email => files.email_ranges.prefetch(ordinal),
                    IdentifierKind::Username => files.username_postings.prefetch(ordinal),
                }
            }
        }
        for (&(s, seg, _), found) in group.iter().zip(found) {
            if let Some(ordinal) = found {
                each(s, seg, seg.matches_at(kind, ordinal)?)?;
            }
        }
        Ok(())
    }

    /// The rows of the key at `ordinal` of the `kind` key map, their first lines
    /// prefetched (the last step of a lookup).
    #[inline]
    pub(crate) fn matches_at(&self, kind: IdentifierKind, ordinal: u64) -> Result<Matches<'_>, LookupError> {
        let files = &self.inner.files;
        Ok(match kind {
            IdentifierKind::Email => {
                let rows = files.email_ranges.rows(ordinal)?;
                files.records.prefetch(rows.clone(), ROW_LINES);
                Matches(MatchesInner::Range(rows))
            }
            IdentifierKind::Username => {
                let list = files.username_postings.rows(ordinal)?;
                list.prefetch(1);
                Matches(MatchesInner::Postings(list))
            }
        })
    }

    /// The ordinal of `key` of `kind` whose lookup reached `at` (see
    /// [`Index::start_lookup`]).
    #[inline]
    pub(crate) fn finish_lookup(
        &self,
        kind: IdentifierKind,
        key: &[u8],
        at: Located,
    ) -> Result<Option<u64>, FormatError> {
        self.key_map(kind).finish(key, at)
    }

    /// The rows of every query, in order: the same results as [`Index::lookup`] on each
    /// query in turn, but faster on many queries because the memory reads of
    /// 16 queries at a time overlap.
    ///
    /// Runs on the calling thread. To use several threads, split the queries into
    /// chunks of a few hundred and call this on each, e.g. with rayon's
    /// `queries.par_chunks(256).map(|c| index.lookup_batch(c))`, as
    /// [`Index::check_batch_par`] does.
    pub fn lookup_batch(&self, queries: &[Query<'_>]) -> Vec<Result<Matches<'_>, LookupError>> {
        let mut out = Vec::with_capacity(queries.len());
        let mut slots = Vec::with_capacity(BATCH_GROUP);
        for group in queries.chunks(BATCH_GROUP) {
            self.lookup_group(group, &mut slots, &mut out);
        }
        out
    }

    /// Resolves `queries` [`BATCH_GROUP`] at a time and hands each query and its result
    /// to `each` as soon as its group is resolved, while the rows the group prefetched
    /// are still in cache: the batch path of the query layer (`check_batch`).
    pub(crate) fn lookup_groups<'i, 'q>(
        &'i self,
        queries: &[Query<'q>],
        mut each: impl FnMut(&Query<'q>, Result<Matches<'i>, LookupError>),
    ) {
        let mut slots = Vec::with_capacity(BATCH_GROUP);
        let mut matches = Vec::with_capacity(BATCH_GROUP);
        for group in queries.chunks(BATCH_GROUP) {
            matches.clear();
            self.lookup_group(group, &mut slots, &mut matches);
            for (query, found) in group.iter().zip(matches.drain(..)) {
                each(query, found);
            }
        }
    }
}
