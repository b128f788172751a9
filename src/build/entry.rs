//! The sort entries of a build: how one validated record travels through the external
//! sort, and how a username posting does.
//!
//! Record sort key (byte order = row order of the index):
//! `group u8 | key bytes | 0x00 | source_id u32 BE | document_id [16] | seq u64 BE`
//! where group 0 holds records with an e-mail (key = derived e-mail key) and group 1
//! the rest (key = derived username key). Normalized identifiers never contain NUL
//! (control characters are refused), so the `0x00` terminator orders a key before its
//! extensions; hashed keys are fixed-width and need no terminator but do no harm with
//! one. `seq` (input position) makes the order total, so the first of several
//! identical records in input order is the one kept, whatever the thread count.
//!
//! Record payload:
//! `publish_date i32 LE | assets u16 LE | severity u8 | ukey_len u16 LE | ukey |`
//! then, for each asset of `assets ∩ stored` in canonical order, `len u32 LE | bytes`.
//!
//! Username posting sort key: `ukey | 0x00 | row u64 BE`, empty payload.

use crate::asset::{ASSET_COUNT, AssetSet};
use crate::date::Date;
use std::io;

/// Record group of rows with an e-mail key.
pub const GROUP_EMAIL: u8 = 0;
/// Record group of rows with only a username key.
pub const GROUP_USERNAME: u8 = 1;
/// Bytes at the end of a record sort key that only break ties between identical
/// records (the input position).
pub const SEQ_BYTES: usize = 8;

/// A record as it comes out of the sort.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedRecord<'a> {
    /// [`GROUP_EMAIL`] or [`GROUP_USERNAME`].
    pub group: u8,
    /// The group's key (e-mail key, or username key for group 1).
    pub key: &'a [u8],
    /// Source id.
    pub source_id: u32,
    /// Document id.
    pub document_id: [u8; 16],
    /// Publish date.
    pub publish_date: Date,
    /// Assets present.
    pub assets: AssetSet,
    /// Severity score.
    pub severity: u8,
    /// Derived username key, if any.
    pub username_key: Option<&'a [u8]>,
    /// Stored values by asset index.
    pub values: [Option<&'a [u8]>; ASSET_COUNT],
}

/// Appends a record's sort key to `out` (written in place into a sort block by the
/// reading phase).
pub fn record_sort_key(out: &mut Vec<u8>, group: u8, key: &[u8], source_id: u32, document_id: &[u8; 16], seq: u64) {
    out.push(group);
    out.extend_from_slice(key);
    out.push(0);
    out.extend_from_slice(&source_id.to_be_bytes());
    out.extend_from_slice(document_id);
    out.extend_from_slice(&seq.to_be_bytes());
}

/// Appends a record's payload to `out`.
pub fn record_payload(
    out: &mut Vec<u8>,
    publish_date: Date,
    assets: AssetSet,
    severity: u8,
    username_key: Option<&[u8]>,
    stored: AssetSet,
    values: &[Option<&str>; ASSET_COUNT],
) {
    out.extend_from_slice(&publish_date.days().to_le_bytes());
    out.extend_from_slice(&assets.bits().to_le_bytes());
    out.push(severity);
    let ukey = username_key.unwrap_or_default();
    out.extend_from_slice(&(ukey.len() as u16).to_le_bytes());
    out.extend_from_slice(ukey);
    for asset in assets.intersection(stored).iter() {
        let v = values[asset.index()].unwrap_or_default().as_bytes();
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
        out.extend_from_slice(v);
    }
}

fn corrupt() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, "corrupt sort entry in a spill file")
}

struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> io::Result<&'a [u8]> {
        let (head, tail) = self.0.split_at_checked(n).ok_or_else(corrupt)?;
        self.0 = tail;
        Ok(head)
    }
    fn array<const N: usize>(&mut self) -> io::Result<[u8; N]> {
        self.take(N)?.try_into().map_err(|_| corrupt())
    }
}

/// Decodes a record from its sort key and payload.
pub fn decode_record<'a>(sort_key: &'a [u8], payload: &'a [u8], stored: AssetSet) -> io::Result<DecodedRecord<'a>> {
    const TAIL: usize = 1 + 4 + 16 + SEQ_BYTES;
    if sort_key.len() < 1 + TAIL {
        return Err(corrupt());
    }
    let group = sort_key[0];
    let key = &sort_key[1..sort_key.len() - TAIL];
    let mut tail = Cursor(&sort_key[sort_key.len() - TAIL + 1..]);
    let source_id = u32::from_be_bytes(tail.array()?);
    let document_id = tail.array::<16>()?;
    let mut p = Cursor(payload);
    let publish_date = Date::from_days(i32::from_le_bytes(p.array()?));
    let assets = AssetSet::from_bits_truncate(u16::from_le_bytes(p.array()?));
    let severity = p.array::<1>()?[0];
    let ulen = u16::from_le_bytes(p.array()?) as usize;
    let ukey = p.take(ulen)?;
    let mut values = [None; ASSET_COUNT];
    for asset in assets.intersection(stored).iter() {
        let len = u32::from_le_bytes(p.array()?) as usize;
        values[asset.index()] = Some(p.take(len)?);
    }
    Ok(DecodedRecord {
        group,
        key,
        source_id,
        document_id,
        publish_date,
        assets,
        severity,
        username_key: (ulen > 0).then_some(ukey),
        values,
    })
}

/// The part of a record sort key that identifies the record (all but `seq`): two
/// entries with equal identities are duplicates.
pub fn record_identity(sort_key: &[u8]) -> &[u8] {
    sort_key.get(..sort_key.len().saturating_sub(SEQ_BYTES)).unwrap_or_default()
}

/// The part of a record sort key naming one identity of one source (group, key and
/// source id: all but the document id and `seq`). Entries arrive sorted, so the records of
/// one identity in one source are consecutive and each change of this prefix is one more
/// identity of that source (its `PwnCount`, SPEC §12).
pub fn source_identity(sort_key: &[u8]) -> &[u8] {
    sort_key.get(..sort_key.len().saturating_sub(16 + SEQ_BYTES)).unwrap_or_default()
}

/// Encodes a username posting sort key into `out` (cleared first).
pub fn posting_sort_key(out: &mut Vec<u8>, username_key: &[u8], row: u64) {
    out.clear();
    out.extend_from_slice(username_key);
    out.push(0);
    out.extend_from_slice(&row.to_be_bytes());
}

/// Splits a posting sort key into username key and row.
pub fn decode_posting(sort_key: &[u8]) -> io::Result<(&[u8], u64)> {
    let split = sort_key.len().checked_sub(9).ok_or_else(corrupt)?;
    let row = u64::from_be_bytes(sort_key[split + 1..].try_into().map_err(|_| corrupt())?);
    Ok((&sort_key[..split], row))
}

pub use crate::format::docid::document_id;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::asset::Asset;

    #[test]
    fn record_round_trips() {
        let stored = AssetSet::parse_list("email,password,name").unwrap();
        let assets = AssetSet::parse_list("email,username,password,phone").unwrap();
        let mut values: [Option<&str>; ASSET_COUNT] = [None; ASSET_COUNT];
        values[Asset::Email.index()] = Some("A@x.org");
        values[Asset::PasswordPlaintext.index()] = Some("hunter2");
        values[Asset::Phone.index()] = Some("+1 555");
        let (mut sk, mut pl) = (Vec::new(), Vec::new());
        record_sort_key(&mut sk, GROUP_EMAIL, b"a@x.org", 7, &[9; 16], 42);
        record_payload(&mut pl, Date::from_days(100), assets, 20, Some(b"alice"), stored, &values);
        let r = decode_record(&sk, &pl, stored).unwrap();
        assert_eq!((r.group, r.key, r.source_id, r.document_id), (GROUP_EMAIL, &b"a@x.org"[..], 7, [9; 16]));
        assert_eq!((r.publish_date, r.assets, r.severity), (Date::from_days(100), assets, 20));
        assert_eq!(r.username_key, Some(&b"alice"[..]));
        assert_eq!(r.values[Asset::Email.index()], Some(&b"A@x.org"[..]));
        assert_eq!(r.values[Asset::PasswordPlaintext.index()], Some(&b"hunter2"[..]));
        assert_eq!(r.values[Asset::Phone.index()], None, "not stored");
        assert_eq!(record_identity(&sk), &sk[..sk.len() - 8]);
        assert!(decode_record(&sk[..5], &pl, stored).is_err());
        assert!(decode_record(&sk, &pl[..pl.len() - 1], stored).is_err());
    }

    #[test]
    fn key_terminator_orders_prefixes_first() {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        record_sort_key(&mut a, GROUP_EMAIL, b"ab", u32::MAX, &[0xff; 16], u64::MAX);
        record_sort_key(&mut b, GROUP_EMAIL, b"ab\x01", 0, &[0; 16], 0);
        assert!(a < b);
        posting_sort_key(&mut a, b"bob", 5);
        assert_eq!(decode_posting(&a).unwrap(), (&b"bob"[..], 5));
    }

    #[test]
    fn document_ids_are_stable_uuids() {
        let mut scratch = Vec::new();
        let values = [None; ASSET_COUNT];
        let a = document_id(&mut scratch, None, 1, &values, Some("a@x.org"), None);
        assert_eq!(a, document_id(&mut scratch, None, 1, &values, Some("a@x.org"), None));
        assert_ne!(a, document_id(&mut scratch, None, 2, &values, Some("a@x.org"), None));
        assert_ne!(a, document_id(&mut scratch, Some(b"0123456789abcdef"), 1, &values, Some("a@x.org"), None));
        let s = crate::format::rows::document_id_string(&a);
        assert_eq!(s.len(), 36);
        assert_eq!(&s[14..15], "8");
    }
}
