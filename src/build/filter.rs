//! The record filter of a segment build ([`super::build_segment`]): `add` builds a new
//! segment with the build pipeline and drops, in the reading phase, every record that is
//! already live in an older segment or that holds a suppressed (opted-out) key
//! (docs/design/incremental-updates.md §3.1, §5.1).
//!
//! A dropped record never reaches the sort: not the rows, nor the counts, the stored
//! assets or the password files, so the segment is byte for byte what a build of the
//! input without those records writes (its manifest apart from the build stats, which
//! count them).

/// What the filter says about one valid record.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum FilterVerdict {
    /// The record goes into the segment.
    Keep,
    /// Its (source id, document id) is already live in an older segment.
    Duplicate,
    /// Its e-mail key or username key is suppressed.
    Suppressed,
}

/// Decides, per record that passed validation, whether a segment build keeps it.
///
/// Called from the reading phase's worker threads in parallel (hence `Sync`), in no
/// particular order: the verdict must depend on its arguments only.
pub(crate) trait RecordFilter: Sync {
    /// Whether records of source `source_id` need [`verdict`](Self::verdict) at all;
    /// asked once per dump file. `false` keeps every record of the file with no call
    /// per record (a new source when nothing is suppressed).
    fn applies_to(&self, source_id: u32) -> bool {
        let _ = source_id;
        true
    }

    /// The verdict on one record: its source id, its derived e-mail key and username
    /// key (as the index stores them: docs/FORMAT.md §6), and its document id.
    fn verdict(
        &self,
        source_id: u32,
        email_key: Option<&[u8]>,
        username_key: Option<&[u8]>,
        document_id: &[u8; 16],
    ) -> FilterVerdict;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::{BuildOptions, BuildSummary, build_index, build_segment};
    use crate::catalog::Catalog;
    use crate::keymode::{HashMode, KeyDeriver, Salt};
    use std::collections::{BTreeMap, HashSet};
    use std::path::Path;
    use std::sync::atomic::{AtomicU64, Ordering};

    const EPOCH: i64 = 1_700_000_000;
    const SOURCES: [u32; 3] = [1, 2, 3];
    const RECORDS: u32 = 90;

    fn salt() -> Salt {
        Salt::new(b"record-filter-test-salt-0123456789".to_vec()).unwrap()
    }

    /// Whether record `i` has an e-mail (not every fifth).
    fn has_email(i: u32) -> bool {
        i % 5 != 4
    }

    /// Whether record `i` has a username (every third, and every one without an e-mail).
    fn has_username(i: u32) -> bool {
        i.is_multiple_of(3) || !has_email(i)
    }

    /// Record `i` of `source`: e-mail and username as above, a plaintext password from a
    /// small pool; one record of source 2 alone has a phone.
    fn line(source: u32, i: u32) -> String {
        let mut fields = Vec::new();
        if has_email(i) {
            fields.push(format!("\"email\": \"u{i}@example.org\""));
        }
        if has_username(i) {
            fields.push(format!("\"username\": \"name{i}\""));
        }
        fields.push(format!("\"password\": \"pw{}\"", i % 11));
        if (source, i) == (2, 13) {
            fields.push("\"phone\": \"+1 555 0100\"".to_string());
        }
        format!("{{{}}}\n", fields.join(", "))
    }

    /// The verdict of the test's rule on record `i` of `source` (as the filter sees it
    /// through the keys). Source 1 is left out by `applies_to`.
    fn rule(source: u32, i: u32) -> FilterVerdict {
        if source == 1 {
            FilterVerdict::Keep
        } else if has_username(i) && i.is_multiple_of(9) {
            FilterVerdict::Suppressed
        } else if source == 2 && has_email(i) && i % 4 == 1 {
            FilterVerdict::Duplicate
        } else {
            FilterVerdict::Keep
        }
    }

    /// Writes a catalog of [`SOURCES`] with the records `keep` accepts (source 2's in two
    /// files, record 7 of each source twice) into `dir`.
    fn write_catalog(dir: &Path, keep: impl Fn(u32, u32) -> bool) -> Catalog {
        std::fs::create_dir_all(dir).unwrap();
        let mut sources = Vec::new();
        for source in SOURCES {
            let mut files = Vec::new();
            let parts: &[(u32, u32)] = if source == 2 { &[(0, 40), (40, RECORDS)] } else { &[(0, RECORDS)] };
            for (n, &(start, end)) in parts.iter().enumerate() {
                let mut text = String::new();
                for i in (start..end).filter(|&i| keep(source, i)) {
                    text.push_str(&line(source, i));
                    if i == 7 {
                        text.push_str(&line(source, i));
                    }
                }
                let name = format!("s{source}-{n}.jsonl");
                std::fs::write(dir.join(&name), text).unwrap();
                files.push(format!("{{\"path\": \"{name}\", \"format\": \"jsonl\"}}"));
            }
            sources.push(format!(
                "{{\"id\": {source}, \"name\": \"source-{source}\", \"date\": \"2020-01-0{source}\", \
                 \"publish_date\": \"2021-01-01\", \"files\": [{}]}}",
                files.join(", ")
            ));
        }
        let path = dir.join("catalog.json");
        std::fs::write(&path, format!("{{\"sources\": [{}]}}", sources.join(", "))).unwrap();
        Catalog::load(&path).unwrap()
    }

    /// Drops by derived keys, as `add` does: (source, e-mail key) pairs as duplicates,
    /// username keys as suppressed.
    struct KeyRule {
        duplicate: HashSet<(u32, Vec<u8>)>,
        suppressed: HashSet<Vec<u8>>,
        calls_for_source_1: AtomicU64,
    }

    impl RecordFilter for KeyRule {
        fn applies_to(&self, source_id: u32) -> bool {
            source_id != 1
        }

        fn verdict(&self, source: u32, email: Option<&[u8]>, user: Option<&[u8]>, _: &[u8; 16]) -> FilterVerdict {
            if source == 1 {
                self.calls_for_source_1.fetch_add(1, Ordering::Relaxed);
            }
            if user.is_some_and(|u| self.suppressed.contains(u)) {
                FilterVerdict::Suppressed
            } else if email.is_some_and(|e| self.duplicate.contains(&(source, e.to_vec()))) {
                FilterVerdict::Duplicate
            } else {
                FilterVerdict::Keep
            }
        }
    }

    fn key_rule(deriver: &KeyDeriver) -> KeyRule {
        let mut rule_set =
            KeyRule { duplicate: HashSet::new(), suppressed: HashSet::new(), calls_for_source_1: 0.into() };
        for source in SOURCES {
            for i in 0..RECORDS {
                match rule(source, i) {
                    FilterVerdict::Keep => {}
                    FilterVerdict::Suppressed => {
                        let key = deriver.derive(format!("name{i}").as_bytes()).as_bytes().to_vec();
                        rule_set.suppressed.insert(key);
                    }
                    FilterVerdict::Duplicate => {
                        let key = deriver.derive(format!("u{i}@example.org").as_bytes()).as_bytes().to_vec();
                        rule_set.duplicate.insert((source, key));
                    }
                }
            }
        }
        rule_set
    }

    /// Every file of an index but the manifest, and the manifest with its build stats cleared.
    fn snapshot(dir: &Path) -> (BTreeMap<String, Vec<u8>>, crate::format::manifest::Manifest) {
        let mut files = BTreeMap::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name != crate::format::manifest::FILE_NAME {
                files.insert(name, std::fs::read(entry.path()).unwrap());
            }
        }
        let mut manifest = crate::read_manifest(dir).unwrap();
        manifest.build_stats = Default::default();
        (files, manifest)
    }

    #[test]
    fn a_filtered_segment_is_the_build_of_the_input_without_the_dropped_records() {
        let tmp = tempfile::tempdir().unwrap();
        let all = write_catalog(&tmp.path().join("all"), |_, _| true);
        let reference = write_catalog(&tmp.path().join("reference"), |s, i| rule(s, i) == FilterVerdict::Keep);
        // What the filter must drop: the dropped records, with record 7's copy.
        let count = |verdict| -> u64 {
            let mut n = 0;
            for s in SOURCES {
                for i in (0..RECORDS).filter(|&i| rule(s, i) == verdict) {
                    n += if i == 7 { 2 } else { 1 };
                }
            }
            n
        };
        let (duplicates, suppressed) = (count(FilterVerdict::Duplicate), count(FilterVerdict::Suppressed));
        assert!(duplicates > 5 && suppressed > 5, "the rule drops records of both kinds");
        for mode in [HashMode::Plain, HashMode::Xxh3_64] {
            let options = BuildOptions {
                hash_mode: mode,
                salt: mode.is_hashed().then(salt),
                threads: Some(2),
                source_date_epoch: Some(EPOCH),
                ..BuildOptions::default()
            };
            let filter = key_rule(&KeyDeriver::new(mode, options.salt.as_ref()).unwrap());
            let segment_dir = tmp.path().join(format!("segment-{mode}"));
            let reference_dir = tmp.path().join(format!("reference-{mode}"));
            let segment: BuildSummary = build_segment(&all, &segment_dir, &options, &filter).unwrap();
            let built: BuildSummary = build_index(&reference, &reference_dir, &options).unwrap();

            assert_eq!(filter.calls_for_source_1.load(Ordering::Relaxed), 0, "{mode}: source 1 is not asked about");
            assert_eq!((segment.duplicates_across_segments, segment.suppressed), (duplicates, suppressed), "{mode}");
            assert_eq!((built.duplicates_across_segments, built.suppressed), (0, 0), "{mode}");
            assert_eq!(segment.records_read, built.records_read + duplicates + suppressed, "{mode}");
            assert_eq!((segment.kept, segment.duplicates), (built.kept, built.duplicates), "{mode}");
            let per_source: u64 = segment.sources.iter().map(|s| s.duplicates_across_segments + s.suppressed).sum();
            assert_eq!(per_source, duplicates + suppressed, "{mode}");
            let stats = crate::read_manifest(&segment_dir).unwrap().build_stats;
            assert_eq!((stats.duplicates_across_segments, stats.suppressed), (duplicates, suppressed), "{mode}");
            assert_eq!(stats.records_read, segment.records_read, "{mode}");

            let (got, want) = (snapshot(&segment_dir), snapshot(&reference_dir));
            assert_eq!(got.0.keys().collect::<Vec<_>>(), want.0.keys().collect::<Vec<_>>(), "{mode}: file sets");
            for (name, bytes) in &want.0 {
                assert!(got.0.get(name) == Some(bytes), "{mode}: {name} differs from the reference build");
            }
            assert_eq!(got.1, want.1, "{mode}: manifests differ beyond the build stats");
            assert!(!got.1.stored_assets.contains(&"phone".to_string()), "{mode}: a dropped record's asset");
            if mode == HashMode::Plain {
                let unfiltered = tmp.path().join("unfiltered");
                build_index(&all, &unfiltered, &options).unwrap();
                let stored = crate::read_manifest(&unfiltered).unwrap().stored_assets;
                assert!(stored.contains(&"phone".to_string()), "only a dropped record has a phone");
            }
        }
    }
}
