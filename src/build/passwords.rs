//! The password index of a build: while reading, each kept record's password hashes
//! (SHA-1 and NTLM of `password_plaintext`; a `password_hash` typed `sha1` or `ntlm`)
//! go into their own external sort; the `passwords` phase merges them, counts the
//! records holding each hash and writes `passwords.sha1` and `passwords.ntlm`
//! ([`crate::format::passwords`]).
//!
//! The hashes are taken before the `--store` filter drops any column, so a privacy
//! build that stores no password still has its password index: it holds no plaintext.
//!
//! Sort key of a password entry: `kind u8 | hash | document_id [16]`, empty payload.
//! The document id (which covers the source) tells a record apart from an identical
//! duplicate of it, which the writer drops: equal sort keys count once, so a record
//! counts once per distinct hash and duplicates do not count at all.
//!
//! A build that counts passwords it does not store also writes `passwords.rowrefs`
//! ([`crate::format::rowrefs`]): the writer collects each row's (document id, row) pair
//! into a join sort, the `passwords` phase adds each counted entry's (document id, kind,
//! ordinal) to it, and [`write_row_refs`] joins them by document id and sorts the
//! references by row ([`RowRefSort`], which `compact` uses too).

use super::sort::{self, ExternalSorter, SortBlock};
use crate::asset::{ASSET_COUNT, Asset};
use crate::format::FileSummary;
use crate::format::passwords::{PasswordFileWriter, file_name};
use crate::format::rowrefs::{self, RowRef, RowRefsWriter, kind_code, kind_of_code};
use crate::password::{PasswordHash, PasswordHashKind};
use std::io;
use std::path::Path;

/// Document id bytes at the end of a password sort key.
const DOCUMENT_ID_BYTES: usize = 16;

/// Bytes of the longest password sort entry (a SHA-1 one): the entry's two length
/// fields, kind, hash and document id.
pub(super) const ENTRY_BYTES: usize = 2 + 1 + 20 + DOCUMENT_ID_BYTES + 4;

fn push_entry(block: &mut SortBlock, hash: &PasswordHash, document_id: &[u8; 16]) {
    block.push_with(
        |key| {
            key.push(kind_code(hash.kind()));
            key.extend_from_slice(hash.as_bytes());
            key.extend_from_slice(document_id);
        },
        |_| {},
    );
}

/// The password hashes one record counts in, each once: both hashes of its plaintext
/// password, and its `password_hash` when `password_type` is `sha1` or `ntlm` and the
/// value is a hash of that kind in hex (anything else is skipped: it is not a hash the
/// index can answer for), unless it equals one of the plaintext's. `values` are the
/// record's values by asset index: for a build, before the `--store` filter; for the
/// subtraction files of deleted records, as `records.store` holds them (the same when
/// the index stores the three password assets).
pub(crate) fn record_hashes(values: &[Option<&str>; ASSET_COUNT]) -> impl Iterator<Item = PasswordHash> {
    let plain = values[Asset::PasswordPlaintext.index()].map(|p| [PasswordHash::sha1_of(p), PasswordHash::ntlm_of(p)]);
    let typed = values[Asset::PasswordType.index()].and_then(PasswordHashKind::from_password_type);
    let typed = match (typed, values[Asset::PasswordHash.index()]) {
        (Some(kind), Some(hex)) => PasswordHash::from_hex(kind, hex.trim()).ok(),
        _ => None,
    };
    let typed = typed.filter(|t| !plain.is_some_and(|p| p.contains(t)));
    plain.into_iter().flatten().chain(typed)
}

/// Adds the password hashes of one kept record ([`record_hashes`]) to `block`.
pub(super) fn collect(block: &mut SortBlock, values: &[Option<&str>; ASSET_COUNT], document_id: &[u8; 16]) {
    for hash in record_hashes(values) {
        push_entry(block, &hash, document_id);
    }
}

/// What the `passwords` phase wrote.
pub(super) struct WrittenPasswords {
    /// `passwords.sha1` and `passwords.ntlm`.
    pub files: Vec<FileSummary>,
    /// Distinct SHA-1 hashes.
    pub sha1: u64,
    /// Distinct NTLM hashes.
    pub ntlm: u64,
    /// Runs the password sort spilled.
    pub spilled_runs: usize,
}

/// Join sort key of a row: `document_id [16] | 0 | row u64 BE` (empty payload).
pub(super) fn document_row_entry(out: &mut Vec<u8>, document_id: &[u8; 16], row: u64) {
    let mut key = [0u8; 25];
    key[..16].copy_from_slice(document_id);
    key[17..].copy_from_slice(&row.to_be_bytes());
    out.clear();
    sort::encode_entry(out, &key, &[]);
}

/// Join sort key of a password reference: `document_id [16] | 1 | kind u8 | ordinal u64
/// BE`, sorting after the record's row entry.
fn document_ref_key(document_id: &[u8], r: RowRef) -> [u8; 26] {
    let mut key = [0u8; 26];
    key[..16].copy_from_slice(document_id.get(..16).unwrap_or(&[0; 16]));
    key[16] = 1;
    key[17] = kind_code(r.kind);
    key[18..].copy_from_slice(&r.ordinal.to_be_bytes());
    key
}

/// Password references sorted by row on their way into `passwords.rowrefs`: an
/// external sort of `row u64 BE | kind u8 | ordinal u64 BE` keys.
pub(crate) struct RowRefSort {
    sorter: ExternalSorter,
    buf: Vec<u8>,
}

impl RowRefSort {
    /// A sort of `budget` bytes spilling into `spill_dir`.
    pub(crate) fn new(budget: usize, spill_dir: &Path) -> RowRefSort {
        RowRefSort { sorter: ExternalSorter::new(budget, spill_dir), buf: Vec::new() }
    }

    /// Adds reference `r` of row `row`.
    pub(crate) fn push(&mut self, row: u64, r: RowRef) -> io::Result<()> {
        let mut key = [0u8; 17];
        key[..8].copy_from_slice(&row.to_be_bytes());
        key[8] = kind_code(r.kind);
        key[9..].copy_from_slice(&r.ordinal.to_be_bytes());
        self.buf.clear();
        sort::encode_entry(&mut self.buf, &key, &[]);
        self.sorter.push(&self.buf)
    }

    /// Writes `dir/passwords.rowrefs` for `row_count` rows and password files of at most
    /// `max_entries` entries each (`read_budget` bytes of read buffers if runs spilled).
    pub(crate) fn write(
        self,
        dir: &Path,
        row_count: u64,
        max_entries: u64,
        read_budget: usize,
    ) -> io::Result<FileSummary> {
        let mut stream = self.sorter.finish(read_budget)?;
        let mut out = RowRefsWriter::create(&dir.join(rowrefs::FILE_NAME), row_count, max_entries)?;
        while let Some(e) = stream.next()? {
            let key = sort::sort_key(e);
            let (Some(row), Some(&code), Some(ordinal)) = (be_u64(key, 0), key.get(8), be_u64(key, 9)) else {
                return Err(corrupt());
            };
            let kind = kind_of_code(code).ok_or_else(corrupt)?;
            out.push(row, RowRef { kind, ordinal })?;
        }
        out.finish()
    }
}

/// Joins the (document id, row) pairs and password references of `joined` (the
/// writer's document rows, to which [`write_password_files`] added the references) by
/// document id, sorts the references by row in `row_budget` bytes, and writes
/// `dir/passwords.rowrefs`.
pub(super) fn write_row_refs(
    joined: ExternalSorter,
    dir: &Path,
    spill_dir: &Path,
    row_count: u64,
    max_entries: u64,
    read_budget: usize,
    row_budget: usize,
) -> io::Result<FileSummary> {
    let mut by_row = RowRefSort::new(row_budget, spill_dir);
    let mut stream = joined.finish(read_budget / 2)?;
    let mut current: Option<([u8; 16], u64)> = None;
    while let Some(e) = stream.next()? {
        let key = sort::sort_key(e);
        let doc: [u8; 16] = key.get(..16).and_then(|b| b.try_into().ok()).ok_or_else(corrupt)?;
        match (key.get(16), key.len()) {
            (Some(0), 25) => {
                let row = be_u64(key, 17).ok_or_else(corrupt)?;
                current = Some((doc, row));
            }
            (Some(1), 26) => {
                let row = match current {
                    Some((d, row)) if d == doc => row,
                    _ => {
                        return Err(io::Error::other(
                            "a counted password names a record the writer did not keep: the row references cannot be written",
                        ));
                    }
                };
                let kind = key.get(17).copied().and_then(kind_of_code).ok_or_else(corrupt)?;
                let ordinal = be_u64(key, 18).ok_or_else(corrupt)?;
                by_row.push(row, RowRef { kind, ordinal })?;
            }
            _ => return Err(corrupt()),
        }
    }
    drop(stream);
    by_row.write(dir, row_count, max_entries, read_budget / 2)
}

/// The big-endian `u64` at byte `at` of a join or row sort key.
fn be_u64(key: &[u8], at: usize) -> Option<u64> {
    key.get(at..at.checked_add(8)?).and_then(|b| b.try_into().ok()).map(u64::from_be_bytes)
}

fn corrupt() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, "corrupt password entry in a spill file")
}

/// Splits a password sort key into kind, hash and the record part.
fn decode(sort_key: &[u8]) -> io::Result<(PasswordHashKind, &[u8])> {
    let (&tag, rest) = sort_key.split_first().ok_or_else(corrupt)?;
    let kind = kind_of_code(tag).ok_or_else(corrupt)?;
    if rest.len() != kind.width() + DOCUMENT_ID_BYTES {
        return Err(corrupt());
    }
    Ok((kind, &rest[..kind.width()]))
}

/// Password references handed to the join sort at a time, per block.
const REF_BLOCK_ENTRIES: usize = 32 << 10;

/// The `passwords` phase: merges the sorted password entries (`read_budget` bytes of
/// read buffers when runs were spilled) and writes both password files into `dir`.
/// With `document_rows` (the writer's join sort), adds each counted entry's reference
/// to it, for [`write_row_refs`].
///
/// The sort key starts with the kind, so the sort is finished into one key range per
/// kind ([`ExternalSorter::finish_partitioned`]) and, when the pool has more than one
/// thread, the two files are merged and written on two threads at once. Ordinals count
/// per kind, so each range's references are what one merge of everything gives; the
/// join sort orders them by their whole key, whichever thread hands them over first.
pub(super) fn write_password_files(
    sorter: ExternalSorter,
    dir: &Path,
    read_budget: usize,
    pool: &super::WorkerPool,
    document_rows: Option<&mut ExternalSorter>,
) -> io::Result<WrittenPasswords> {
    let max_count = sorter.len();
    let spilled_runs = match sorter.spilled_runs() {
        0 => 0,
        n => n + usize::from(sorter.buffered_bytes() > 0),
    };
    const KINDS: [PasswordHashKind; 2] = [PasswordHashKind::Sha1, PasswordHashKind::Ntlm];
    let split = [kind_code(PasswordHashKind::Ntlm)];
    let streams = pool.install(move || sorter.finish_partitioned(read_budget, &[&split]))?;
    let jobs = KINDS.into_iter().zip(streams);
    let mut done = Vec::with_capacity(KINDS.len());
    if pool.threads() < 2 {
        let mut document_rows = document_rows;
        for (kind, stream) in jobs {
            let mut push =
                document_rows.as_deref_mut().map(|sorter| move |block| pool.install(|| sorter.push_block(block)));
            done.push(write_kind(kind, stream, dir, max_count, push.as_mut().map(|f| f as RefSink<'_>))?);
        }
    } else {
        std::thread::scope(|scope| -> io::Result<()> {
            let (tx, rx) = std::sync::mpsc::sync_channel::<SortBlock>(4);
            let collect = document_rows.is_some();
            let handles: Vec<_> = jobs
                .map(|(kind, stream)| {
                    let tx = collect.then(|| tx.clone());
                    std::thread::Builder::new().name("breachdex-passwords".into()).spawn_scoped(scope, move || {
                        let mut send = tx.map(|tx| {
                            move |block| {
                                tx.send(block).map_err(|_| io::Error::other("the password reference join stopped"))
                            }
                        });
                        write_kind(kind, stream, dir, max_count, send.as_mut().map(|f| f as RefSink<'_>))
                    })
                })
                .collect::<io::Result<_>>()?;
            drop(tx);
            if let Some(sorter) = document_rows {
                for block in rx {
                    pool.install(|| sorter.push_block(block))?;
                }
            }
            for handle in handles {
                done.push(handle.join().map_err(|_| io::Error::other("password writer thread panicked"))??);
            }
            Ok(())
        })?;
    }
    let count = |kind| done.iter().find(|d| d.0 == kind).map_or(0, |d| d.2);
    let (sha1, ntlm) = (count(PasswordHashKind::Sha1), count(PasswordHashKind::Ntlm));
    Ok(WrittenPasswords { files: done.into_iter().map(|d| d.1).collect(), sha1, ntlm, spilled_runs })
}

/// Where [`write_kind`] hands blocks of join references.
type RefSink<'a> = &'a mut dyn FnMut(SortBlock) -> io::Result<()>;

/// Merges the entries of one kind (`stream`, that kind's key range of the password
/// sort) into its password file in `dir` (of at most `max_count` hashes), counting each
/// hash's records; with `emit`, hands each counted entry's join reference to it, in
/// blocks.
/// Returns the kind, the file written and its distinct hashes.
fn write_kind(
    kind: PasswordHashKind,
    mut stream: sort::SortedStream,
    dir: &Path,
    max_count: u64,
    mut emit: Option<RefSink<'_>>,
) -> io::Result<(PasswordHashKind, FileSummary, u64)> {
    let mut out = PasswordFileWriter::create(&dir.join(file_name(kind)), kind, max_count)?;
    // The hash being counted and its count (0: none yet), and the last full sort key.
    let (mut hash_now, mut count) = (Vec::new(), 0u64);
    let mut last_key: Vec<u8> = Vec::new();
    // Hashes started so far: the current hash's ordinal is one less.
    let mut started = 0u64;
    let new_block = || SortBlock::with_capacity_for(REF_BLOCK_ENTRIES * 32, REF_BLOCK_ENTRIES);
    let mut block = if emit.is_some() { new_block() } else { SortBlock::default() };
    let mut in_block = 0;
    while let Some(entry) = stream.next()? {
        let key = sort::sort_key(entry);
        if key == last_key.as_slice() {
            // The same record again (a duplicate, or one hash given twice by a record).
            continue;
        }
        last_key.clear();
        last_key.extend_from_slice(key);
        let (k, hash) = decode(key)?;
        if k != kind {
            return Err(corrupt());
        }
        if count > 0 && hash_now.as_slice() == hash {
            count += 1;
        } else {
            if count > 0 {
                out.push(&hash_now, count)?;
            }
            hash_now.clear();
            hash_now.extend_from_slice(hash);
            count = 1;
            started += 1;
        }
        if let Some(emit) = emit.as_deref_mut() {
            let document_id = key.get(1 + kind.width()..).unwrap_or_default();
            block.push(&document_ref_key(document_id, RowRef { kind, ordinal: started - 1 }), &[]);
            in_block += 1;
            if in_block == REF_BLOCK_ENTRIES {
                emit(std::mem::replace(&mut block, new_block()))?;
                in_block = 0;
            }
        }
    }
    if count > 0 {
        out.push(&hash_now, count)?;
    }
    if let Some(emit) = emit.filter(|_| in_block > 0) {
        emit(block)?;
    }
    let hashes = out.count();
    Ok((kind, out.finish()?, hashes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn values(
        plain: Option<&'static str>,
        hash: Option<&'static str>,
        ty: Option<&'static str>,
    ) -> [Option<&'static str>; ASSET_COUNT] {
        let mut v = [None; ASSET_COUNT];
        v[Asset::PasswordPlaintext.index()] = plain;
        v[Asset::PasswordHash.index()] = hash;
        v[Asset::PasswordType.index()] = ty;
        v
    }

    fn keys(block: &SortBlock) -> Vec<Vec<u8>> {
        sort::entries(block.data()).map(|e| sort::sort_key(e).to_vec()).collect()
    }

    #[test]
    fn plaintext_gives_both_kinds_and_typed_hashes_their_own() {
        let mut block = SortBlock::default();
        collect(&mut block, &values(Some("password"), None, None), &[7; 16]);
        let got = keys(&block);
        assert_eq!(got.len(), 2);
        assert_eq!(decode(&got[0]).unwrap(), (PasswordHashKind::Sha1, PasswordHash::sha1_of("password").as_bytes()));
        assert_eq!(decode(&got[1]).unwrap(), (PasswordHashKind::Ntlm, PasswordHash::ntlm_of("password").as_bytes()));

        let ntlm = "8846F7EAEE8FB117AD06BDD830B7586C";
        let mut block = SortBlock::default();
        collect(&mut block, &values(None, Some(ntlm), Some("NTLM")), &[7; 16]);
        assert_eq!(
            decode(&keys(&block)[0]).unwrap(),
            (PasswordHashKind::Ntlm, PasswordHash::ntlm_of("password").as_bytes())
        );

        // Untyped, other types and malformed values give nothing.
        for v in [
            values(None, Some(ntlm), None),
            values(None, Some(ntlm), Some("md5")),
            values(None, Some(ntlm), Some("sha1")),
            values(None, Some("$2b$10$abc"), Some("ntlm")),
        ] {
            let mut block = SortBlock::default();
            collect(&mut block, &v, &[7; 16]);
            assert!(keys(&block).is_empty(), "{v:?}");
        }
    }

    #[test]
    fn a_record_gives_each_hash_once() {
        let sha1_hex = PasswordHash::sha1_of("a").to_hex();
        let ntlm_hex = PasswordHash::ntlm_of("b").to_hex();
        let hashes = |v: &[Option<&str>; ASSET_COUNT]| record_hashes(v).collect::<Vec<_>>();
        let mut v = [None; ASSET_COUNT];
        v[Asset::PasswordPlaintext.index()] = Some("a");
        v[Asset::PasswordHash.index()] = Some(&sha1_hex);
        v[Asset::PasswordType.index()] = Some("sha1");
        assert_eq!(hashes(&v), [PasswordHash::sha1_of("a"), PasswordHash::ntlm_of("a")]);
        v[Asset::PasswordHash.index()] = Some(&ntlm_hex);
        v[Asset::PasswordType.index()] = Some("ntlm");
        assert_eq!(hashes(&v), [PasswordHash::sha1_of("a"), PasswordHash::ntlm_of("a"), PasswordHash::ntlm_of("b")]);
        v[Asset::PasswordPlaintext.index()] = None;
        assert_eq!(hashes(&v), [PasswordHash::ntlm_of("b")]);
    }

    /// Two threads (one per kind) write the same files and hand the join the same
    /// references as one thread merging everything, with spilled runs and without.
    #[test]
    fn threads_change_no_byte_and_no_reference() {
        // Records 2900.. repeat the ids of records 0..100 with other passwords; every
        // third record also has a typed NTLM hash.
        let records: Vec<([u8; 16], [Option<&'static str>; ASSET_COUNT])> = (0..3000)
            .map(|i| {
                let mut id = [0u8; 16];
                id[..8].copy_from_slice(&((i % 2900) as u64).to_be_bytes());
                let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
                let typed = (i % 3 == 0).then(|| leak(PasswordHash::ntlm_of(&format!("t{i}")).to_hex()));
                (id, values(Some(leak(format!("pw{}", i % 1700))), typed, Some("ntlm")))
            })
            .collect();
        let mut distinct = (HashSet::new(), HashSet::new(), HashSet::new());
        for (id, v) in &records {
            for h in record_hashes(v) {
                match h.kind() {
                    PasswordHashKind::Sha1 => distinct.0.insert(h.as_bytes().to_vec()),
                    PasswordHashKind::Ntlm => distinct.1.insert(h.as_bytes().to_vec()),
                };
                distinct.2.insert((*id, h.kind(), h.as_bytes().to_vec()));
            }
        }
        let run = |threads: usize, budget: usize| {
            let dir = tempfile::tempdir().unwrap();
            let mut sorter = ExternalSorter::new(budget, dir.path());
            let mut block = SortBlock::default();
            for (i, (id, v)) in records.iter().enumerate() {
                collect(&mut block, v, id);
                if i % 100 == 99 {
                    sorter.push_block(std::mem::take(&mut block)).unwrap();
                }
            }
            sorter.push_block(block).unwrap();
            let spilled = sorter.spilled_runs() > 0;
            let mut joined = ExternalSorter::new(1 << 20, dir.path());
            let pool = super::super::WorkerPool::new(threads).unwrap();
            let written = write_password_files(sorter, dir.path(), 1 << 20, &pool, Some(&mut joined)).unwrap();
            let files: Vec<Vec<u8>> = [PasswordHashKind::Sha1, PasswordHashKind::Ntlm]
                .iter()
                .map(|k| std::fs::read(dir.path().join(file_name(*k))).unwrap())
                .collect();
            let mut refs = Vec::new();
            let mut stream = joined.finish(1 << 20).unwrap();
            while let Some(e) = stream.next().unwrap() {
                refs.push(sort::sort_key(e).to_vec());
            }
            ((written.sha1, written.ntlm), files, refs, spilled)
        };
        for budget in [1 << 20, 64 << 20] {
            let one = run(1, budget);
            let two = run(2, budget);
            assert_eq!(one.3, budget == 1 << 20, "spilled");
            assert_eq!(one.0, (distinct.0.len() as u64, distinct.1.len() as u64));
            assert_eq!(one.2.len(), distinct.2.len());
            assert!(one == two);
        }
    }

    #[test]
    fn counts_records_once_per_hash() {
        let dir = tempfile::tempdir().unwrap();
        let mut sorter = ExternalSorter::new(1 << 20, dir.path());
        let sha1_hex = PasswordHash::sha1_of("a").to_hex();
        let sha1_hex: &'static str = Box::leak(sha1_hex.into_boxed_str());
        let records: [(_, [u8; 16]); 4] = [
            (values(Some("a"), None, None), [1; 16]),
            // The same record again (a duplicate the writer drops).
            (values(Some("a"), None, None), [1; 16]),
            // Plaintext and its own SHA-1 typed: counts once for SHA-1.
            (values(Some("a"), Some(sha1_hex), Some("sha1")), [2; 16]),
            (values(Some("b"), None, None), [3; 16]),
        ];
        let mut block = SortBlock::default();
        for (v, id) in &records {
            collect(&mut block, v, id);
        }
        sorter.push_block(block).unwrap();
        let written =
            write_password_files(sorter, dir.path(), 1 << 20, &super::super::WorkerPool::new(1).unwrap(), None)
                .unwrap();
        assert_eq!((written.sha1, written.ntlm), (2, 2));
        let read = |kind: PasswordHashKind| {
            let name = file_name(kind);
            let bytes = crate::mmap::Bytes::from_vec(std::fs::read(dir.path().join(name)).unwrap());
            let view = crate::format::FileView::parse(name, bytes, crate::format::passwords::file_kind(kind)).unwrap();
            crate::format::passwords::PasswordFileReader::new(view, kind).unwrap()
        };
        let (s, n) = (read(PasswordHashKind::Sha1), read(PasswordHashKind::Ntlm));
        assert_eq!(s.count(PasswordHash::sha1_of("a").as_bytes()).unwrap(), 2);
        assert_eq!(s.count(PasswordHash::sha1_of("b").as_bytes()).unwrap(), 1);
        assert_eq!(n.count(PasswordHash::ntlm_of("a").as_bytes()).unwrap(), 2);
        assert_eq!(n.count(PasswordHash::ntlm_of("c").as_bytes()).unwrap(), 0);
    }
}
