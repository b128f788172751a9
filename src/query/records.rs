//! `records`: the matched records themselves, under an [`AssetPolicy`] that limits what
//! leaves the engine (allow-listing, masking, salted output hashing), one page at a time
//! with opaque cursors (SPEC §7).
//!
//! # Policy
//!
//! - `document_id`, `source_id` and `publish_date` are always shown.
//! - An asset the record lacks is omitted. An asset it holds is shown as stored when
//!   allowed, as a hex digest when hashed, and as exactly eight asterisks (`********`)
//!   when it is outside the allow-list, or when the index does not store it (built with
//!   `--store` without it: the record holds it, its value is not in the index).
//! - The default policy ([`AssetPolicy::default`], no `--allow`) allows every asset.
//! - A hashed asset must be allowed (an allow-list that leaves it out is an error, so the
//!   two settings never contradict each other silently), and hashing needs an output
//!   salt of 10 to 24 characters: the policy's, or one given per call.
//! - Digest input: the value (e-mails lower-cased) with the salt appended on the right
//!   (default) or prepended on the left, as UTF-8 bytes; output is lowercase hex.
//!
//! # Order and cursors
//!
//! Records are ordered by `source_id`, then `document_id`: deterministic, so paging over
//! a result returns every record exactly once. A page holds at most [`MAX_PAGE`] records.
//! A cursor is 34 lowercase hex digits: version (1 byte, `01`), the absolute offset of
//! the next page (u64 LE), and a tag (u64 LE) = XXH3-64 of the index `build_id`, the
//! query's kind and *derived* key (never the identifier as given, so a cursor of a hashed
//! index reveals nothing), the policy fingerprint, the output salt and the offset. A
//! cursor used with another query, policy, salt or index build fails the tag check and is
//! an error. The page size is not bound: a client may change `limit` between pages. The
//! tag prevents mistakes, not forgery; a forged cursor can still only page through the
//! query it is used with.

use crate::asset::{ASSET_COUNT, Asset, AssetSet};
use crate::date::Date;
use crate::format::FormatError;
use crate::format::rows::RowId;
use crate::generation::layer::untag;
use crate::index::{IdentifierKind, Index, KnownKeys, LookupError, Query, RecordView};
use crate::keymode::to_hex;
use serde::ser::{Serialize, SerializeMap, Serializer};
use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

/// Most records one page holds (and the default `limit`).
pub const MAX_PAGE: usize = 1000;
/// What a masked asset is replaced by.
pub const MASK: &str = "********";
/// Shortest output salt, in characters.
pub const MIN_SALT_CHARS: usize = 10;
/// Longest output salt, in characters.
pub const MAX_SALT_CHARS: usize = 24;

const CURSOR_VERSION: u8 = 1;
const CURSOR_BYTES: usize = 17;
const CURSOR_DOMAIN: &[u8] = b"breachdex-records-cursor-v1";

/// A digest for hashed output assets.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum HashAlgorithm {
    /// SHA-1 (40 hex digits).
    Sha1,
    /// SHA-224 (56 hex digits).
    Sha224,
    /// SHA-256 (64 hex digits).
    Sha256,
    /// SHA-384 (96 hex digits).
    Sha384,
    /// SHA-512 (128 hex digits).
    Sha512,
}

impl HashAlgorithm {
    /// Every algorithm.
    pub const ALL: [HashAlgorithm; 5] = [
        HashAlgorithm::Sha1,
        HashAlgorithm::Sha224,
        HashAlgorithm::Sha256,
        HashAlgorithm::Sha384,
        HashAlgorithm::Sha512,
    ];

    /// The name (`sha1`, `sha224`, ...).
    pub const fn name(self) -> &'static str {
        match self {
            HashAlgorithm::Sha1 => "sha1",
            HashAlgorithm::Sha224 => "sha224",
            HashAlgorithm::Sha256 => "sha256",
            HashAlgorithm::Sha384 => "sha384",
            HashAlgorithm::Sha512 => "sha512",
        }
    }

    /// Lowercase hex digest of `parts` concatenated.
    pub fn hex_digest(self, parts: &[&[u8]]) -> String {
        fn run<D: sha2::Digest>(parts: &[&[u8]]) -> String {
            let mut h = D::new();
            for p in parts {
                h.update(p);
            }
            to_hex(&h.finalize())
        }
        match self {
            HashAlgorithm::Sha1 => run::<sha1::Sha1>(parts),
            HashAlgorithm::Sha224 => run::<sha2::Sha224>(parts),
            HashAlgorithm::Sha256 => run::<sha2::Sha256>(parts),
            HashAlgorithm::Sha384 => run::<sha2::Sha384>(parts),
            HashAlgorithm::Sha512 => run::<sha2::Sha512>(parts),
        }
    }
}

impl fmt::Display for HashAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for HashAlgorithm {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let lower = s.trim().to_ascii_lowercase();
        HashAlgorithm::ALL.into_iter().find(|a| a.name() == lower).ok_or_else(|| s.to_string())
    }
}

/// Where the output salt goes relative to the value.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum SaltPosition {
    /// `salt ‖ value`.
    Left,
    /// `value ‖ salt` (the default).
    #[default]
    Right,
}

/// Why a policy (or a per-call output salt) is invalid. Each names the wrong part.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// An asset name that is not an asset.
    #[error("unknown asset '{name}' in the {list} (known: {known})", known = known_assets())]
    UnknownAsset {
        /// `allow-list` or `hash list`.
        list: &'static str,
        /// The name as given.
        name: String,
    },
    /// An algorithm name that is not supported.
    #[error("unknown hash algorithm '{name}' for asset {asset} (known: sha1, sha224, sha256, sha384, sha512)")]
    UnknownAlgorithm {
        /// The asset it was given for.
        asset: Asset,
        /// The name as given.
        name: String,
    },
    /// A hash list entry without `=`.
    #[error("hash list entry '{0}' is not ASSET=ALGORITHM (e.g. email=sha256)")]
    MalformedHashEntry(String),
    /// One asset given two hash algorithms.
    #[error("asset {0} is listed twice in the hash list")]
    DuplicateHash(Asset),
    /// A hashed asset left out of the allow-list.
    #[error("asset {0} is hashed but not in the allow-list: add it to the allow-list or stop hashing it")]
    HashedNotAllowed(Asset),
    /// An output salt of the wrong length.
    #[error("the output salt is {chars} characters long; it must be 10 to 24 characters")]
    SaltLength {
        /// Its length in characters.
        chars: usize,
    },
    /// Hashing without an output salt.
    #[error("hashing assets ({0}) needs an output salt of 10 to 24 characters (in the policy or given per call)")]
    SaltRequired(String),
}

/// Why a `records` call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecordsError {
    /// The lookup failed: an invalid identifier or key, or damage found while reading.
    #[error(transparent)]
    Lookup(#[from] LookupError),
    /// An invalid asset policy or output salt.
    #[error("invalid asset policy: {0}")]
    Policy(#[from] PolicyError),
    /// A cursor that is malformed or bound to another query, policy or index.
    #[error("invalid cursor: {0}")]
    InvalidCursor(String),
    /// A page size outside 1 to [`MAX_PAGE`].
    #[error("invalid limit {0}: a page holds 1 to 1000 records")]
    InvalidLimit(usize),
}

impl RecordsError {
    /// A short machine-readable code: `validation_error`, `cursor_error` or
    /// `index_damaged`.
    pub fn code(&self) -> &'static str {
        match self {
            RecordsError::Lookup(e) => e.code(),
            RecordsError::InvalidCursor(_) => "cursor_error",
            RecordsError::Policy(_) | RecordsError::InvalidLimit(_) => "validation_error",
        }
    }
}

/// One `records` call: the query, the policy its records are shown under, and which
/// page. Build it with [`RecordsRequest::new`] and the setters:
///
/// ```no_run
/// # use breachdex::{Index, OpenOptions, Query};
/// # use breachdex::{AssetPolicy, RecordsRequest};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let index = Index::open(std::path::Path::new("sample-index"), &OpenOptions::default())?;
/// let policy = AssetPolicy::default();
/// let first = index.records(&RecordsRequest::new(Query::Email("user@example.com"), &policy).limit(100))?;
/// if !first.cursor.is_empty() {
///     let next = RecordsRequest::new(Query::Email("user@example.com"), &policy).limit(100).cursor(&first.cursor);
///     let second = index.records(&next)?;
///     println!("{} more records", second.results.len());
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Copy, Clone, Debug)]
pub struct RecordsRequest<'r> {
    /// What to look up.
    pub query: Query<'r>,
    /// What the records may show.
    pub policy: &'r AssetPolicy,
    /// The page to return: a previous page's `cursor`; `None` or empty: the first.
    pub cursor: Option<&'r str>,
    /// Records per page, 1 to [`MAX_PAGE`]; `None`: [`MAX_PAGE`].
    pub limit: Option<usize>,
    /// An output salt for this call, overriding the policy's.
    pub output_salt: Option<&'r str>,
}

impl<'r> RecordsRequest<'r> {
    /// The first page of at most [`MAX_PAGE`] records of `query` under `policy`.
    pub fn new(query: Query<'r>, policy: &'r AssetPolicy) -> RecordsRequest<'r> {
        RecordsRequest { query, policy, cursor: None, limit: None, output_salt: None }
    }

    /// The page at `cursor` (a previous page's `cursor`).
    pub fn cursor(mut self, cursor: &'r str) -> Self {
        self.cursor = Some(cursor);
        self
    }

    /// At most `limit` records per page (1 to [`MAX_PAGE`]).
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = Some(limit);
        self
    }

    /// Hash with `salt` instead of the policy's output salt.
    pub fn output_salt(mut self, salt: &'r str) -> Self {
        self.output_salt = Some(salt);
        self
    }
}

fn known_assets() -> String {
    Asset::ALL.map(Asset::name).join(", ")
}

fn check_salt(salt: &str) -> Result<(), PolicyError> {
    let chars = salt.chars().count();
    if (MIN_SALT_CHARS..=MAX_SALT_CHARS).contains(&chars) { Ok(()) } else { Err(PolicyError::SaltLength { chars }) }
}

/// What `records` may return of each asset: built once, validated when built, reused
/// across queries. See the module docs for the rules.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AssetPolicy {
    allow: AssetSet,
    hash: [Option<HashAlgorithm>; ASSET_COUNT],
    salt: Option<String>,
    position: SaltPosition,
    /// XXH3-64 of everything above but the salt (the cursor tag adds the salt in use).
    fingerprint: u64,
}

impl Default for AssetPolicy {
    /// Every asset allowed, nothing hashed.
    fn default() -> Self {
        AssetPolicy::builder().build().unwrap_or_else(|_| unreachable!("the default policy is valid"))
    }
}

/// Builds an [`AssetPolicy`]; [`AssetPolicyBuilder::build`] validates it.
#[derive(Clone, Debug)]
pub struct AssetPolicyBuilder {
    allow: AssetSet,
    hash: [Option<HashAlgorithm>; ASSET_COUNT],
    duplicate: Option<Asset>,
    salt: Option<String>,
    position: SaltPosition,
}

impl AssetPolicyBuilder {
    /// The allow-list (default: every asset).
    pub fn allow(mut self, assets: AssetSet) -> Self {
        self.allow = assets;
        self
    }

    /// Return `asset` as a digest with `algorithm`.
    pub fn hash(mut self, asset: Asset, algorithm: HashAlgorithm) -> Self {
        if self.hash[asset.index()].replace(algorithm).is_some() {
            self.duplicate.get_or_insert(asset);
        }
        self
    }

    /// The output salt (10 to 24 characters).
    pub fn salt(mut self, salt: impl Into<String>) -> Self {
        self.salt = Some(salt.into());
        self
    }

    /// Where the salt goes (default: right).
    pub fn salt_position(mut self, position: SaltPosition) -> Self {
        self.position = position;
        self
    }

    /// Validates and builds the policy.
    pub fn build(self) -> Result<AssetPolicy, PolicyError> {
        if let Some(asset) = self.duplicate {
            return Err(PolicyError::DuplicateHash(asset));
        }
        if let Some(asset) = Asset::ALL.into_iter().find(|a| self.hash[a.index()].is_some() && !self.allow.contains(*a))
        {
            return Err(PolicyError::HashedNotAllowed(asset));
        }
        if let Some(salt) = &self.salt {
            check_salt(salt)?;
        }
        let mut canonical = Vec::with_capacity(4 + ASSET_COUNT);
        canonical.extend_from_slice(&self.allow.bits().to_le_bytes());
        canonical.extend(self.hash.iter().map(|h| h.map_or(0, |a| a as u8 + 1)));
        canonical.push(self.position as u8);
        Ok(AssetPolicy {
            allow: self.allow,
            hash: self.hash,
            salt: self.salt,
            position: self.position,
            fingerprint: xxhash_rust::xxh3::xxh3_64(&canonical),
        })
    }
}

impl AssetPolicy {
    /// A builder starting from the default (every asset allowed, nothing hashed, salt on
    /// the right).
    pub fn builder() -> AssetPolicyBuilder {
        AssetPolicyBuilder {
            allow: AssetSet::ALL,
            hash: [None; ASSET_COUNT],
            duplicate: None,
            salt: None,
            position: SaltPosition::Right,
        }
    }

    /// Parses the CLI form: `allow` a comma-separated asset list (`None`: every asset;
    /// `all` allowed), `hash_assets` `ASSET=ALG,...`, `salt` the output salt.
    pub fn parse(
        allow: Option<&str>,
        hash_assets: Option<&str>,
        salt: Option<&str>,
        position: SaltPosition,
    ) -> Result<AssetPolicy, PolicyError> {
        let mut builder = AssetPolicy::builder().salt_position(position);
        if let Some(list) = allow {
            let mut set = AssetSet::EMPTY;
            for name in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                if name.eq_ignore_ascii_case("all") {
                    set = AssetSet::ALL;
                    continue;
                }
                let asset = Asset::from_column(name)
                    .ok_or_else(|| PolicyError::UnknownAsset { list: "allow-list", name: name.to_string() })?;
                set.insert(asset);
            }
            builder = builder.allow(set);
        }
        for entry in hash_assets.unwrap_or("").split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, alg) =
                entry.split_once('=').ok_or_else(|| PolicyError::MalformedHashEntry(entry.to_string()))?;
            let asset = Asset::from_column(name)
                .ok_or_else(|| PolicyError::UnknownAsset { list: "hash list", name: name.trim().to_string() })?;
            let algorithm = alg
                .parse::<HashAlgorithm>()
                .map_err(|name| PolicyError::UnknownAlgorithm { asset, name: name.trim().to_string() })?;
            builder = builder.hash(asset, algorithm);
        }
        if let Some(salt) = salt {
            builder = builder.salt(salt);
        }
        builder.build()
    }

    /// Assets shown (as stored or hashed).
    pub fn allowed(&self) -> AssetSet {
        self.allow
    }

    /// The digest `asset` is returned as, if hashed.
    pub fn hash_of(&self, asset: Asset) -> Option<HashAlgorithm> {
        self.hash[asset.index()]
    }

    /// Assets returned as digests.
    pub fn hashed(&self) -> AssetSet {
        Asset::ALL.into_iter().filter(|a| self.hash[a.index()].is_some()).collect()
    }

    /// The policy's output salt.
    pub fn salt(&self) -> Option<&str> {
        self.salt.as_deref()
    }

    /// Where the salt goes.
    pub fn salt_position(&self) -> SaltPosition {
        self.position
    }

    /// The salt a call uses: `override_salt` (validated) or the policy's; an error when
    /// an asset is hashed and neither is given.
    fn effective_salt<'s>(&'s self, override_salt: Option<&'s str>) -> Result<Option<&'s str>, PolicyError> {
        if let Some(s) = override_salt {
            check_salt(s)?;
        }
        let salt = override_salt.or(self.salt.as_deref());
        let hashed = self.hashed();
        if salt.is_none() && !hashed.is_empty() {
            let names: Vec<&str> = hashed.iter().map(Asset::name).collect();
            return Err(PolicyError::SaltRequired(names.join(", ")));
        }
        Ok(salt)
    }

    /// The output of one asset value under this policy (`None`: the value is not in
    /// the index, so it is masked).
    fn render<'a>(&self, asset: Asset, value: Option<Cow<'a, str>>, salt: &str) -> Cow<'a, str> {
        let Some(value) = value.filter(|_| self.allow.contains(asset)) else {
            return Cow::Borrowed(MASK);
        };
        let Some(algorithm) = self.hash[asset.index()] else {
            return value;
        };
        let value: Cow<'_, str> = if asset == Asset::Email && value.chars().any(char::is_uppercase) {
            value.to_lowercase().into()
        } else {
            value
        };
        let digest = match self.position {
            SaltPosition::Right => algorithm.hex_digest(&[value.as_bytes(), salt.as_bytes()]),
            SaltPosition::Left => algorithm.hex_digest(&[salt.as_bytes(), value.as_bytes()]),
        };
        Cow::Owned(digest)
    }
}

/// One record as the policy lets it out. Allowed values borrow from the mapped index;
/// digests are the only strings allocated (with the document id).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordOut<'a> {
    /// Document id (UUID string).
    pub document_id: String,
    /// Source id.
    pub source_id: u32,
    /// Publish date.
    pub publish_date: Date,
    /// Output of each asset the record holds (by [`Asset::index`]); `None`: absent.
    pub values: [Option<Cow<'a, str>>; ASSET_COUNT],
}

impl RecordOut<'_> {
    /// The output of `asset`: `None` when the record lacks it.
    pub fn get(&self, asset: Asset) -> Option<&str> {
        self.values[asset.index()].as_deref()
    }
}

impl Serialize for RecordOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let present = self.values.iter().filter(|v| v.is_some()).count();
        let mut map = s.serialize_map(Some(3 + present))?;
        map.serialize_entry("document_id", &self.document_id)?;
        map.serialize_entry("source_id", &self.source_id)?;
        map.serialize_entry("publish_date", &self.publish_date.to_string())?;
        for asset in Asset::ALL {
            if let Some(v) = &self.values[asset.index()] {
                map.serialize_entry(asset.name(), v)?;
            }
        }
        map.end()
    }
}

/// One page of `records` (SPEC §7).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct RecordsPage<'a> {
    /// Records the query matched in all (every page).
    pub hits: u64,
    /// The cursor of the next page; empty on the last page.
    pub cursor: String,
    /// This page's records, by source id, then document id.
    pub results: Vec<RecordOut<'a>>,
}

/// What a cursor is bound to, less the offset.
struct Binding(Vec<u8>);

impl Binding {
    fn tag(&self, offset: u64) -> u64 {
        let mut h = xxhash_rust::xxh3::Xxh3::new();
        h.update(&self.0);
        h.update(&offset.to_le_bytes());
        h.digest()
    }

    fn encode(&self, offset: u64) -> String {
        let mut bytes = [0u8; CURSOR_BYTES];
        bytes[0] = CURSOR_VERSION;
        bytes[1..9].copy_from_slice(&offset.to_le_bytes());
        bytes[9..17].copy_from_slice(&self.tag(offset).to_le_bytes());
        to_hex(&bytes)
    }

    /// The offset a cursor points at, when it is one of this binding's.
    fn decode(&self, cursor: &str) -> Result<u64, RecordsError> {
        let bad = |why: &str| RecordsError::InvalidCursor(format!("'{cursor}' is not a records cursor ({why})"));
        let bytes = crate::keymode::parse_hex_key(cursor).map_err(|_| bad("not hex"))?;
        if bytes.len() != CURSOR_BYTES {
            return Err(bad("wrong length"));
        }
        if bytes[0] != CURSOR_VERSION {
            return Err(bad("unknown version"));
        }
        let u64_at = |o: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&bytes[o..o + 8]);
            u64::from_le_bytes(b)
        };
        let offset = u64_at(1);
        if u64_at(9) != self.tag(offset) {
            return Err(RecordsError::InvalidCursor(
                "this cursor belongs to another query, policy, output salt or index build; start again without a cursor"
                    .into(),
            ));
        }
        Ok(offset)
    }
}

fn damaged(file: &str, row_id: RowId, what: &str) -> RecordsError {
    RecordsError::Lookup(LookupError::Damaged(FormatError::damaged(file, format!("row {row_id} {what}"))))
}

impl Index {
    /// The records a request's query matched, under its policy: the page at its cursor
    /// (`None` or empty: the first) of at most its limit of records (default and maximum
    /// [`MAX_PAGE`]; 0 or more is an error). The request's output salt overrides the
    /// policy's for this call. See the module docs for ordering, masking and the cursor.
    pub fn records<'a>(&'a self, request: &RecordsRequest<'_>) -> Result<RecordsPage<'a>, RecordsError> {
        let RecordsRequest { query, policy, cursor, limit, output_salt } = *request;
        let limit = limit.unwrap_or(MAX_PAGE);
        if !(1..=MAX_PAGE).contains(&limit) {
            return Err(RecordsError::InvalidLimit(limit));
        }
        let salt = policy.effective_salt(output_salt)?;
        let (kind, key) = self.query_key(&query)?;
        let mut binding = Vec::with_capacity(96 + key.len());
        binding.extend_from_slice(CURSOR_DOMAIN);
        let build_id = self.content_id().as_bytes();
        binding.extend_from_slice(&(build_id.len() as u64).to_le_bytes());
        binding.extend_from_slice(build_id);
        binding.push(match kind {
            None => 0,
            Some(IdentifierKind::Email) => 1,
            Some(IdentifierKind::Username) => 2,
        });
        binding.extend_from_slice(&(key.len() as u64).to_le_bytes());
        binding.extend_from_slice(&key);
        binding.extend_from_slice(&policy.fingerprint.to_le_bytes());
        match salt {
            Some(s) => {
                binding.push(1);
                binding.extend_from_slice(&(s.len() as u64).to_le_bytes());
                binding.extend_from_slice(s.as_bytes());
            }
            None => binding.push(0),
        }
        let binding = Binding(binding);
        let offset = match cursor.filter(|c| !c.is_empty()) {
            Some(c) => binding.decode(c)?,
            None => 0,
        };

        let matches = self.lookup_key(&key, kind)?;
        let hits = matches.len() as u64;
        if offset > 0 && offset >= hits {
            return Err(RecordsError::InvalidCursor(format!("the cursor points past the last of {hits} records")));
        }
        let known = match kind {
            Some(IdentifierKind::Email) => KnownKeys { email: Some(&key), username: None },
            Some(IdentifierKind::Username) => KnownKeys { email: None, username: Some(&key) },
            None => KnownKeys::default(),
        };
        let page_rows: Vec<RecordView<'a>> = if matches.is_contiguous() {
            // An e-mail run is already sorted by source, then document id.
            let mut rows = Vec::with_capacity(limit.min(hits as usize));
            for row_id in matches.skip(offset as usize).take(limit) {
                rows.push(self.record_with(row_id, known)?);
            }
            rows
        } else if self.merged().is_some() && kind == Some(IdentifierKind::Email) {
            // Over several segments: each segment's e-mail run is sorted by source, then
            // document id, so the hot rows order the rows by source (a stable sort keeps
            // each segment's order) and document ids are read only for a source that
            // several segments hold; then only the page's records are read.
            let mut keyed = Vec::with_capacity(hits as usize);
            for row_id in matches {
                keyed.push((self.row_meta(row_id)?.source_id, row_id));
            }
            keyed.sort_by_key(|(source, _)| *source);
            let mut order = Vec::with_capacity(keyed.len());
            for group in keyed.chunk_by(|a, b| a.0 == b.0) {
                let segment = group.first().map(|(_, id)| untag(*id).0);
                if group.iter().all(|(_, id)| Some(untag(*id).0) == segment) {
                    order.extend(group.iter().map(|(_, id)| *id));
                    continue;
                }
                let mut by_document = Vec::with_capacity(group.len());
                for (_, id) in group {
                    by_document.push((self.record_with(*id, known)?.row().document_id, *id));
                }
                by_document.sort_unstable();
                order.extend(by_document.into_iter().map(|(_, id)| id));
            }
            let mut rows = Vec::with_capacity(limit.min(order.len()));
            for row_id in order.into_iter().skip(offset as usize).take(limit) {
                rows.push(self.record_with(row_id, known)?);
            }
            rows
        } else {
            let mut rows = Vec::with_capacity(hits as usize);
            for row_id in matches {
                rows.push(self.record_with(row_id, known)?);
            }
            rows.sort_unstable_by(|a, b| {
                let order = |r: &RecordView<'_>| (r.row().source_id, r.row().document_id, r.row_id());
                order(a).cmp(&order(b))
            });
            rows.into_iter().skip(offset as usize).take(limit).collect()
        };

        let salt = salt.unwrap_or("");
        let mut results = Vec::with_capacity(page_rows.len());
        let page_len = page_rows.len() as u64;
        for view in page_rows {
            let row = *view.row();
            if self.source(row.source_id).is_none() {
                return Err(damaged(
                    self.row_file(),
                    view.row_id(),
                    &format!("names unknown source {}", row.source_id),
                ));
            }
            let document_id = view.document_id();
            let mut stored = view.into_values();
            let mut values: [Option<Cow<'a, str>>; ASSET_COUNT] = Default::default();
            for asset in row.assets.iter() {
                values[asset.index()] = Some(policy.render(asset, stored[asset.index()].take(), salt));
            }
            results.push(RecordOut { document_id, source_id: row.source_id, publish_date: row.publish_date, values });
        }
        let next = offset + page_len;
        let cursor = if next < hits { binding.encode(next) } else { String::new() };
        Ok(RecordsPage { hits, cursor, results })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_digest_vectors() {
        let abc: &[&[u8]] = &[b"ab", b"c"];
        assert_eq!(HashAlgorithm::Sha1.hex_digest(abc), "a9993e364706816aba3e25717850c26c9cd0d89d");
        assert_eq!(HashAlgorithm::Sha224.hex_digest(abc), "23097d223405d8228642a477bda255b32aadbce4bda0b3f7e36c9da7");
        assert_eq!(
            HashAlgorithm::Sha256.hex_digest(abc),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(HashAlgorithm::Sha384.hex_digest(abc).len(), 96);
        assert!(HashAlgorithm::Sha512.hex_digest(abc).starts_with("ddaf35a193617aba"));
    }

    #[test]
    fn render_masks_hashes_and_lowercases_emails() {
        let policy =
            AssetPolicy::parse(Some("email,username"), Some("email=sha256"), Some("0123456789"), SaltPosition::Right)
                .unwrap();
        assert_eq!(policy.render(Asset::PasswordPlaintext, Some("hunter2".into()), "0123456789"), MASK);
        assert_eq!(policy.render(Asset::Username, Some("Bob".into()), "0123456789"), "Bob");
        assert_eq!(policy.render(Asset::Username, None, "0123456789"), MASK, "not stored: masked");
        let upper = policy.render(Asset::Email, Some("A@B.C".into()), "0123456789");
        assert_eq!(upper, HashAlgorithm::Sha256.hex_digest(&[b"a@b.c", b"0123456789"]));
    }

    #[test]
    fn invalid_policies_name_the_part() {
        let err = |a, h, s| AssetPolicy::parse(a, h, s, SaltPosition::Right).unwrap_err().to_string();
        assert!(err(Some("email,colour"), None, None).contains("'colour' in the allow-list"));
        assert!(err(None, Some("colour=sha1"), None).contains("'colour' in the hash list"));
        assert!(err(None, Some("email=md5"), None).contains("'md5' for asset email"));
        assert!(err(None, Some("email"), None).contains("not ASSET=ALGORITHM"));
        assert!(err(None, Some("email=sha1,email=sha256"), None).contains("listed twice"));
        assert!(err(Some("username"), Some("email=sha1"), None).contains("email is hashed but not in the allow-list"));
        assert!(err(None, None, Some("short")).contains("5 characters long"));
        assert!(err(None, None, Some(&"x".repeat(25))).contains("25 characters long"));
        let policy = AssetPolicy::parse(None, Some("phone=sha1"), None, SaltPosition::Left).unwrap();
        assert!(policy.effective_salt(None).unwrap_err().to_string().contains("hashing assets (phone) needs"));
        assert_eq!(policy.effective_salt(Some("ünïcödé-10")).unwrap(), Some("ünïcödé-10"), "characters, not bytes");
    }

    #[test]
    fn policies_differ_in_fingerprint() {
        let a = AssetPolicy::default();
        let b = AssetPolicy::parse(Some("email"), None, None, SaltPosition::Right).unwrap();
        let c = AssetPolicy::parse(None, None, None, SaltPosition::Left).unwrap();
        assert_ne!(a.fingerprint, b.fingerprint);
        assert_ne!(a.fingerprint, c.fingerprint);
        assert_eq!(a, AssetPolicy::parse(Some("all"), Some(""), None, SaltPosition::Right).unwrap());
    }

    #[test]
    fn cursors_round_trip_and_reject_other_bindings() {
        let a = Binding(b"one".to_vec());
        let b = Binding(b"two".to_vec());
        let c = a.encode(1000);
        assert_eq!(c.len(), 34);
        assert_eq!(a.decode(&c).unwrap(), 1000);
        assert!(matches!(b.decode(&c), Err(RecordsError::InvalidCursor(_))));
        assert!(a.decode("zz").unwrap_err().to_string().contains("not hex"));
        assert!(a.decode("00").unwrap_err().to_string().contains("wrong length"));
        let mut tampered = c.into_bytes();
        tampered[2] = if tampered[2] == b'0' { b'1' } else { b'0' };
        assert!(a.decode(std::str::from_utf8(&tampered).unwrap()).is_err());
    }
}
