//! Matching the change feed against watched keys (SPEC §14's `breach.detected`): which
//! watched identifiers gained a breach in the generations after one. Pure: the
//! watched keys come from the caller (a server's identities, a script's list), the
//! changes from [`Index::changes`](crate::Index::changes).
//!
//! Keys are the index's derived keys ([`crate::KeyDeriver`]), so this works the same in
//! hashed modes without any identifier in the clear. The lookup is one hash-map probe
//! per gained change, spread over the rayon pool: a million changes against 100,000
//! watched keys take well under a second (BENCHMARKS.md).

use super::changes::{Change, ChangeKind};
use crate::index::IdentifierKind;
use rayon::prelude::*;
use std::collections::HashMap;

/// Changes matched per rayon task.
const CHUNK: usize = 16 * 1024;

/// Watched derived keys, each with the watchers (caller-chosen numbers, such as an
/// index into the caller's list of identities) that watch it.
#[derive(Debug, Default, Clone)]
pub struct WatchList {
    emails: HashMap<Box<[u8]>, Vec<u32>>,
    usernames: HashMap<Box<[u8]>, Vec<u32>>,
}

/// A watched key that gained a source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchHit {
    /// The watcher, as given to [`WatchList::insert`].
    pub watcher: u32,
    /// The source gained.
    pub source_id: u32,
    /// E-mail or username.
    pub kind: IdentifierKind,
    /// The derived key that matched.
    pub key: Vec<u8>,
    /// The first generation (of those matched) in which it gained the source.
    pub generation: u64,
}

impl WatchList {
    /// An empty list.
    pub fn new() -> WatchList {
        WatchList::default()
    }

    /// Watches `key` (a derived key of the index's hash mode) of `kind` for `watcher`.
    /// Inserting the same pair twice counts once.
    pub fn insert(&mut self, kind: IdentifierKind, key: &[u8], watcher: u32) {
        let map = match kind {
            IdentifierKind::Email => &mut self.emails,
            IdentifierKind::Username => &mut self.usernames,
        };
        let watchers = map.entry(key.into()).or_default();
        if !watchers.contains(&watcher) {
            watchers.push(watcher);
        }
    }

    /// Distinct keys watched.
    pub fn len(&self) -> usize {
        self.emails.len() + self.usernames.len()
    }

    /// Whether nothing is watched.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn watchers(&self, kind: IdentifierKind, key: &[u8]) -> Option<&[u32]> {
        let map = match kind {
            IdentifierKind::Email => &self.emails,
            IdentifierKind::Username => &self.usernames,
        };
        map.get(key).map(Vec::as_slice)
    }

    /// The hits of `changes` (as [`Index::changes`](crate::Index::changes) lists
    /// them): one per (watcher, source) whose watched key gained that source, the
    /// earliest such change kept, sorted by watcher and source. Lost pairs are not
    /// hits. A watcher watching two keys that both gained a source gets one hit (the
    /// first key in change order).
    pub fn match_changes(&self, changes: &[Change]) -> Vec<WatchHit> {
        if self.is_empty() {
            return Vec::new();
        }
        let mut hits: Vec<(usize, WatchHit)> = changes
            .par_chunks(CHUNK)
            .enumerate()
            .flat_map_iter(|(chunk, part)| {
                let mut found = Vec::new();
                for (i, c) in part.iter().enumerate() {
                    if c.change != ChangeKind::Gained {
                        continue;
                    }
                    let Some(watchers) = self.watchers(c.kind, &c.key) else { continue };
                    for &watcher in watchers {
                        let hit = WatchHit {
                            watcher,
                            source_id: c.source_id,
                            kind: c.kind,
                            key: c.key.clone(),
                            generation: c.generation,
                        };
                        found.push((chunk * CHUNK + i, hit));
                    }
                }
                found
            })
            .collect();
        // Per (watcher, source), the earliest change in feed order first.
        hits.sort_unstable_by_key(|(position, h)| (h.watcher, h.source_id, *position));
        hits.dedup_by_key(|(_, h)| (h.watcher, h.source_id));
        hits.into_iter().map(|(_, h)| h).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn change(generation: u64, gained: bool, kind: IdentifierKind, key: &str, source_id: u32) -> Change {
        Change {
            generation,
            change: if gained { ChangeKind::Gained } else { ChangeKind::Lost },
            kind,
            key: key.as_bytes().to_vec(),
            source_id,
        }
    }

    #[test]
    fn gained_sources_of_watched_keys_are_hits_once_per_watcher_and_source() {
        use IdentifierKind::{Email, Username};
        let mut w = WatchList::new();
        w.insert(Email, b"a@x.org", 1);
        w.insert(Email, b"a@x.org", 1);
        w.insert(Email, b"a@x.org", 2);
        w.insert(Username, b"a@x.org", 3);
        w.insert(Username, b"alice", 1);
        assert_eq!(w.len(), 3);
        let changes = [
            change(2, true, Email, "a@x.org", 7),
            change(2, true, Email, "b@x.org", 7),
            change(2, false, Email, "a@x.org", 8),
            change(3, true, Username, "alice", 7),
            change(3, true, Username, "alice", 9),
            change(4, true, Email, "a@x.org", 7),
        ];
        let hits: Vec<(u32, u32, IdentifierKind, u64)> =
            w.match_changes(&changes).into_iter().map(|h| (h.watcher, h.source_id, h.kind, h.generation)).collect();
        assert_eq!(hits, [(1, 7, Email, 2), (1, 9, Username, 3), (2, 7, Email, 2)]);
        assert!(WatchList::new().match_changes(&changes).is_empty());
    }

    /// A hit as the model keys it: (watcher, source) → (kind, key, generation).
    type ModelHit = ((u32, u32), (IdentifierKind, Vec<u8>, u64));

    proptest! {
        #[test]
        fn hits_equal_a_simple_model(
            watched in prop::collection::vec((0u8..2, 0u8..12, 0u32..5), 0..30),
            feed in prop::collection::vec((1u64..4, any::<bool>(), 0u8..2, 0u8..12, 0u32..4), 0..200),
        ) {
            let kind = |k: u8| if k == 0 { IdentifierKind::Email } else { IdentifierKind::Username };
            let mut w = WatchList::new();
            for (k, key, watcher) in &watched {
                w.insert(kind(*k), &[*key], *watcher);
            }
            let mut changes: Vec<Change> = feed
                .iter()
                .map(|(g, gained, k, key, s)| Change {
                    generation: *g,
                    change: if *gained { ChangeKind::Gained } else { ChangeKind::Lost },
                    kind: kind(*k),
                    key: vec![*key],
                    source_id: *s,
                })
                .collect();
            changes.sort_by_key(|c| c.generation);
            // Model: scan in order, keep the first gained change per (watcher, source).
            let mut model: BTreeMap<(u32, u32), (IdentifierKind, Vec<u8>, u64)> = BTreeMap::new();
            for c in changes.iter().filter(|c| c.change == ChangeKind::Gained) {
                for (k, key, watcher) in &watched {
                    if kind(*k) == c.kind && c.key == [*key] {
                        model.entry((*watcher, c.source_id)).or_insert((c.kind, c.key.clone(), c.generation));
                    }
                }
            }
            let got: Vec<ModelHit> = w
                .match_changes(&changes)
                .into_iter()
                .map(|h| ((h.watcher, h.source_id), (h.kind, h.key, h.generation)))
                .collect();
            prop_assert_eq!(got, model.into_iter().collect::<Vec<_>>());
        }
    }
}
