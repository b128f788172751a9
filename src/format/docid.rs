//! The document id of a record (docs/FORMAT.md §6): computed by the builder for every
//! record, and recomputed by the reader of a version 2 index for the records whose
//! assets are all stored (their id is not stored, §3.10).

use crate::asset::{ASSET_COUNT, Asset};

/// The document id of a record: XXH3-128 over the source id and the record's
/// canonical form (each present asset as `tag u8 | len u32 LE | bytes`, in canonical
/// order, identifiers in their normalized form, other assets trimmed), prefixed by the
/// salt in hashed modes so ids reveal nothing to whoever lacks it. Version and variant
/// bits are set so the id renders as a valid UUIDv8.
pub fn document_id(
    scratch: &mut Vec<u8>,
    salt: Option<&[u8]>,
    source_id: u32,
    values: &[Option<&str>; ASSET_COUNT],
    email_key: Option<&str>,
    username_key: Option<&str>,
) -> [u8; 16] {
    scratch.clear();
    if let Some(salt) = salt {
        scratch.extend_from_slice(&(salt.len() as u32).to_le_bytes());
        scratch.extend_from_slice(salt);
    }
    scratch.extend_from_slice(&source_id.to_le_bytes());
    for asset in Asset::ALL {
        let value = match asset {
            Asset::Email => email_key,
            Asset::Username => username_key,
            _ => values[asset.index()],
        };
        if let Some(v) = value {
            scratch.push(asset as u8);
            scratch.extend_from_slice(&(v.len() as u32).to_le_bytes());
            scratch.extend_from_slice(v.as_bytes());
        }
    }
    let mut id = xxhash_rust::xxh3::xxh3_128(scratch).to_be_bytes();
    id[6] = (id[6] & 0x0f) | 0x80;
    id[8] = (id[8] & 0x3f) | 0x80;
    id
}
