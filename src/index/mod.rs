//! The reader: [`Index::open`] maps an index directory and checks it in constant time;
//! lookups are zero-copy reads of the mapped files; [`verify`] checks everything.
//! Many queries at once: [`Index::check_batch`], [`Index::check_batch_par`] and
//! [`Index::lookup_batch`] overlap the memory reads of several lookups ([`batch`]).
//!
//! An [`Index`] is `Send + Sync` and cheap to clone (an `Arc`): share one across
//! threads. Mapped files must not change while open (see [`crate::mmap`]).

use crate::asset::{ASSET_COUNT, Asset, AssetSet};
use crate::build::writer::key_map_file;
use crate::date::Date;
use crate::format::column::{self, ColumnReader};
use crate::format::fstmap::{self, FstReader};
use crate::format::keys::{self, SortedKeysReader};
use crate::format::manifest::{self, Manifest, ManifestError};
use crate::format::postings::{self, PostingList, PostingsReader};
use crate::format::ranges::{self, RangesReader};
use crate::format::rows::{self, Row, RowId, RowsReader};
use crate::format::{FileView, FormatError, Kind};
use crate::keymode::{self, HashMode, KeyDeriver, Salt};
use crate::mmap::{Access, Bytes};
use crate::normalize::{self, KeyError};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub mod batch;

/// Options for [`Index::open`].
#[derive(Clone, Debug, Default)]
pub struct OpenOptions {
    /// The salt of a hashed index (must match the fingerprint in the manifest).
    pub salt: Option<Salt>,
    /// Fault every page in at open time: slower open, no first-touch latency later.
    pub populate: bool,
}

impl OpenOptions {
    /// Options with a salt.
    pub fn with_salt(salt: Salt) -> OpenOptions {
        OpenOptions { salt: Some(salt), populate: false }
    }
}

/// Why an index cannot be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The directory or a file cannot be read.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The manifest is missing, damaged or of another version.
    #[error("{dir}: {source}")]
    Manifest {
        /// The index directory.
        dir: PathBuf,
        /// The problem.
        source: ManifestError,
    },
    /// A file the manifest implies is missing from it or from the directory.
    #[error("{0}: the index is incomplete (file missing)")]
    MissingFile(String),
    /// A file's size differs from the manifest.
    #[error("{name}: {actual} bytes, but the manifest says {expected}: the index is damaged")]
    SizeMismatch {
        /// File name.
        name: String,
        /// Size in the manifest.
        expected: u64,
        /// Size on disk.
        actual: u64,
    },
    /// A file's frame or header is wrong.
    #[error(transparent)]
    Format(#[from] FormatError),
    /// The files disagree with each other or with the manifest.
    #[error("the index is inconsistent: {0}")]
    Inconsistent(String),
    /// A hashed index opened without a salt.
    #[error("this index uses hash mode {0}: give its salt (--salt-file)")]
    SaltRequired(HashMode),
    /// The salt does not match the one the index was built with.
    #[error("the salt does not match the one this index was built with (fingerprint differs)")]
    WrongSalt,
    /// A salt given for a `plain` index.
    #[error("this index uses hash mode plain and takes no salt; drop --salt-file")]
    SaltUnused,
}

/// Why a query failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    /// The e-mail is not valid (SPEC §4).
    #[error("invalid email '{input}': {reason}")]
    InvalidEmail {
        /// The query as given.
        input: String,
        /// Why.
        reason: KeyError,
    },
    /// The username is not valid (SPEC §4).
    #[error("invalid username '{input}': {reason}")]
    InvalidUsername {
        /// The query as given.
        input: String,
        /// Why.
        reason: KeyError,
    },
    /// A precomputed key that cannot be a key of this index.
    #[error("invalid key: {0}")]
    InvalidKey(String),
    /// Damage found while reading.
    #[error(transparent)]
    Damaged(#[from] FormatError),
    /// An invalid asset policy or output salt (`records`).
    #[error("invalid asset policy: {0}")]
    Policy(#[from] crate::query::records::PolicyError),
    /// A `records` cursor that is malformed or bound to another query, policy or index.
    #[error("invalid cursor: {0}")]
    InvalidCursor(String),
    /// A `records` page size outside 1 to 1,000.
    #[error("invalid limit {0}: a page holds 1 to 1000 records")]
    InvalidLimit(usize),
}

impl QueryError {
    /// A short machine-readable code: `validation_error`, `cursor_error` or
    /// `index_damaged`.
    pub fn code(&self) -> &'static str {
        match self {
            QueryError::Damaged(_) => "index_damaged",
            QueryError::InvalidCursor(_) => "cursor_error",
            _ => "validation_error",
        }
    }
}

/// Which identifier a query names.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IdentifierKind {
    /// An e-mail address.
    Email,
    /// A username.
    Username,
}

/// One lookup.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Query<'a> {
    /// Any spelling of an e-mail address.
    Email(&'a str),
    /// Any spelling of a username.
    Username(&'a str),
    /// A precomputed key in hex (the caller derived it; see [`HashMode`]); `kind`
    /// restricts it to one identifier map, `None` searches both.
    Key {
        /// The key, hex.
        hex: &'a str,
        /// Which map.
        kind: Option<IdentifierKind>,
    },
}

impl<'a> Query<'a> {
    /// The query text as given.
    pub fn text(&self) -> &'a str {
        match self {
            Query::Email(s) | Query::Username(s) => s,
            Query::Key { hex, .. } => hex,
        }
    }

    /// `email`, `username` or `key`.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Query::Email(_) => "email",
            Query::Username(_) => "username",
            Query::Key { .. } => "key",
        }
    }

    /// Picks e-mail or username for a batch line: `auto` treats text with `@` as an
    /// e-mail.
    pub fn auto(text: &'a str) -> Query<'a> {
        if text.contains('@') { Query::Email(text) } else { Query::Username(text) }
    }
}

/// A source as the reader sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceInfo {
    /// Id.
    pub id: u32,
    /// Slug.
    pub name: String,
    /// Title.
    pub title: String,
    /// Breach date.
    pub date: Date,
    /// Description.
    pub description: String,
    /// Severity override score.
    pub severity: Option<u8>,
    /// Publish date.
    pub publish_date: Date,
    /// Records in the index.
    pub records: u64,
}

#[derive(Clone, Debug)]
enum KeyMap {
    Fst(FstReader),
    Sorted(SortedKeysReader),
}

impl KeyMap {
    fn lookup(&self, key: &[u8]) -> Result<Option<u64>, FormatError> {
        match self {
            KeyMap::Fst(m) => m.lookup(key),
            KeyMap::Sorted(m) => m.lookup(key),
        }
    }
    fn len(&self) -> u64 {
        match self {
            KeyMap::Fst(m) => m.len(),
            KeyMap::Sorted(m) => m.len(),
        }
    }
    fn verify(&self) -> Result<(), FormatError> {
        match self {
            KeyMap::Fst(m) => m.verify(),
            KeyMap::Sorted(m) => m.verify(),
        }
    }
}

#[derive(Debug)]
struct Inner {
    dir: PathBuf,
    manifest: Manifest,
    mode: HashMode,
    deriver: Option<KeyDeriver>,
    stored: AssetSet,
    rows: RowsReader,
    email_map: KeyMap,
    email_ranges: RangesReader,
    username_map: KeyMap,
    username_postings: PostingsReader,
    columns: [Option<ColumnReader>; ASSET_COUNT],
    sources: Vec<SourceInfo>,
}

/// An open index. Cheap to clone; `Send + Sync`.
#[derive(Clone, Debug)]
pub struct Index {
    inner: Arc<Inner>,
}

/// The rows a lookup matched, ascending; iterate to read them.
#[derive(Clone, Debug)]
pub struct Matches<'a>(MatchesInner<'a>);

#[derive(Clone, Debug)]
enum MatchesInner<'a> {
    Range(std::ops::Range<u64>),
    Postings(PostingList<'a>),
    List(std::vec::IntoIter<u64>),
}

impl Matches<'_> {
    fn empty() -> Self {
        Matches(MatchesInner::Range(0..0))
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        match &self.0 {
            MatchesInner::Range(r) => (r.end - r.start) as usize,
            MatchesInner::Postings(p) => p.len(),
            MatchesInner::List(l) => l.len(),
        }
    }

    /// Whether nothing matched.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the rows are one contiguous run sorted by source (an e-mail lookup).
    pub fn is_contiguous(&self) -> bool {
        matches!(self.0, MatchesInner::Range(_))
    }
}

impl Iterator for Matches<'_> {
    type Item = RowId;
    #[inline]
    fn next(&mut self) -> Option<RowId> {
        match &mut self.0 {
            MatchesInner::Range(r) => r.next(),
            MatchesInner::Postings(p) => p.next(),
            MatchesInner::List(l) => l.next(),
        }
    }

    #[inline]
    fn nth(&mut self, n: usize) -> Option<RowId> {
        match &mut self.0 {
            MatchesInner::Range(r) => r.nth(n),
            MatchesInner::Postings(p) => p.nth(n),
            MatchesInner::List(l) => l.nth(n),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.len(), Some(self.len()))
    }
}

/// One record, read in place from the mapped files.
#[derive(Clone, Debug)]
pub struct RecordView<'a> {
    index: &'a Index,
    row_id: RowId,
    row: Row,
}

impl<'a> RecordView<'a> {
    /// Row id.
    pub fn row_id(&self) -> RowId {
        self.row_id
    }

    /// The fixed-width part.
    pub fn row(&self) -> &Row {
        &self.row
    }

    /// Document id as a UUID string.
    pub fn document_id(&self) -> String {
        crate::build::entry::uuid_string(&self.row.document_id)
    }

    /// Assets the record holds (stored or not).
    pub fn assets(&self) -> AssetSet {
        self.row.assets
    }

    /// The value of `asset`: `None` when the record lacks it or the index does not
    /// store it (see [`Index::stored_assets`]).
    pub fn get(&self, asset: Asset) -> Result<Option<&'a str>, QueryError> {
        if !self.row.assets.contains(asset) {
            return Ok(None);
        }
        match &self.index.inner.columns[asset.index()] {
            Some(col) => Ok(col.get(self.row_id)?),
            None => Ok(None),
        }
    }
}

fn expected_files(mode: HashMode, stored: AssetSet) -> Vec<(String, Kind)> {
    let (ek, uk) = if mode.is_hashed() {
        (keys::EMAIL_KIND, keys::USERNAME_KIND)
    } else {
        (fstmap::EMAIL_KIND, fstmap::USERNAME_KIND)
    };
    let mut files = vec![
        (rows::FILE_NAME.to_string(), rows::KIND),
        (key_map_file(mode, true).to_string(), ek),
        (ranges::FILE_NAME.to_string(), ranges::KIND),
        (key_map_file(mode, false).to_string(), uk),
        (postings::FILE_NAME.to_string(), postings::KIND),
    ];
    for asset in stored.iter() {
        files.push((column::file_name(asset), column::KIND));
    }
    files
}

fn parse_manifest_meta(manifest: &Manifest) -> Result<(HashMode, AssetSet, Vec<SourceInfo>), OpenError> {
    let bad = |what: String| OpenError::Inconsistent(format!("manifest.json: {what}"));
    let mode: HashMode = manifest.hash_mode.parse().map_err(bad)?;
    let mut stored = AssetSet::EMPTY;
    for name in &manifest.stored_assets {
        stored.insert(Asset::from_name(name).ok_or_else(|| bad(format!("unknown stored asset '{name}'")))?);
    }
    let mut sources = Vec::with_capacity(manifest.sources.len());
    for s in &manifest.sources {
        let date = |d: &str| d.parse::<Date>().map_err(|e| bad(format!("source {}: {e}", s.name)));
        sources.push(SourceInfo {
            id: s.id,
            name: s.name.clone(),
            title: s.title.clone(),
            date: date(&s.date)?,
            description: s.description.clone(),
            severity: s.severity,
            publish_date: date(&s.publish_date)?,
            records: s.records,
        });
    }
    sources.sort_by_key(|s| s.id);
    if sources.windows(2).any(|w| w[0].id == w[1].id) {
        return Err(bad("duplicate source ids".into()));
    }
    Ok((mode, stored, sources))
}

impl Index {
    /// Opens the index directory `dir`: reads the manifest, checks the salt, maps every
    /// file and checks sizes, frames and headers. Constant time in the index size.
    pub fn open(dir: &Path, options: &OpenOptions) -> Result<Index, OpenError> {
        let manifest = Manifest::read(dir).map_err(|source| OpenError::Manifest { dir: dir.to_path_buf(), source })?;
        let (mode, stored, _) = parse_manifest_meta(&manifest)?;
        let mut files = BTreeMap::new();
        for (name, _) in expected_files(mode, stored) {
            let entry = manifest.file(&name).ok_or_else(|| OpenError::MissingFile(name.clone()))?;
            let path = dir.join(&name);
            let file = std::fs::File::open(&path).map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => OpenError::MissingFile(name.clone()),
                _ => OpenError::Io { path: path.clone(), source: e },
            })?;
            let actual = file.metadata().map_err(|e| OpenError::Io { path: path.clone(), source: e })?.len();
            if actual != entry.size {
                return Err(OpenError::SizeMismatch { name, expected: entry.size, actual });
            }
            let bytes = Bytes::map_file(&file, Access::Random, options.populate)
                .map_err(|e| OpenError::Io { path: path.clone(), source: e })?;
            files.insert(name, bytes);
        }
        Index::from_parts(dir.to_path_buf(), manifest, files, options.salt.as_ref(), true)
    }

    /// Opens an index held in memory: `manifest.json` and every other file by name.
    /// For tests and fuzzing; behaves exactly like [`Index::open`].
    pub fn from_files(files: BTreeMap<String, Vec<u8>>, options: &OpenOptions) -> Result<Index, OpenError> {
        let mut files = files;
        let text =
            files.remove(manifest::FILE_NAME).ok_or_else(|| OpenError::MissingFile(manifest::FILE_NAME.into()))?;
        let text = String::from_utf8(text).map_err(|_| OpenError::Manifest {
            dir: PathBuf::from("<memory>"),
            source: ManifestError::Syntax("not UTF-8".into()),
        })?;
        let manifest = Manifest::from_file_text(&text)
            .map_err(|source| OpenError::Manifest { dir: PathBuf::from("<memory>"), source })?;
        let (mode, stored, _) = parse_manifest_meta(&manifest)?;
        let mut mapped = BTreeMap::new();
        for (name, _) in expected_files(mode, stored) {
            let entry = manifest.file(&name).ok_or_else(|| OpenError::MissingFile(name.clone()))?;
            let bytes = files.remove(&name).ok_or_else(|| OpenError::MissingFile(name.clone()))?;
            if bytes.len() as u64 != entry.size {
                return Err(OpenError::SizeMismatch { name, expected: entry.size, actual: bytes.len() as u64 });
            }
            mapped.insert(name, Bytes::from_vec(bytes));
        }
        Index::from_parts(PathBuf::from("<memory>"), manifest, mapped, options.salt.as_ref(), true)
    }

    fn from_parts(
        dir: PathBuf,
        manifest: Manifest,
        mut files: BTreeMap<String, Bytes>,
        salt: Option<&Salt>,
        check_salt: bool,
    ) -> Result<Index, OpenError> {
        let (mode, stored, sources) = parse_manifest_meta(&manifest)?;
        let deriver = if check_salt {
            match (mode.is_hashed(), salt) {
                (true, None) => return Err(OpenError::SaltRequired(mode)),
                (false, Some(_)) => return Err(OpenError::SaltUnused),
                (true, Some(s)) if manifest.salt_fingerprint.as_deref() != Some(s.fingerprint().as_str()) => {
                    return Err(OpenError::WrongSalt);
                }
                _ => Some(KeyDeriver::new(mode, salt).map_err(|e| OpenError::Inconsistent(e.to_string()))?),
            }
        } else {
            None
        };
        let expected = expected_files(mode, stored);
        if let Some(extra) = manifest.files.iter().find(|f| !expected.iter().any(|(n, _)| *n == f.name)) {
            return Err(OpenError::Inconsistent(format!("manifest lists an unexpected file '{}'", extra.name)));
        }
        let mut view = |name: &str, kind: Kind| -> Result<FileView, OpenError> {
            let bytes = files.remove(name).ok_or_else(|| OpenError::MissingFile(name.to_string()))?;
            Ok(FileView::parse(name, bytes, kind)?)
        };
        let rows = RowsReader::new(view(rows::FILE_NAME, rows::KIND)?)?;
        let key_map = |view: FileView| -> Result<KeyMap, OpenError> {
            Ok(match mode.key_width() {
                None => KeyMap::Fst(FstReader::new(view)?),
                Some(w) => KeyMap::Sorted(SortedKeysReader::new(view, w)?),
            })
        };
        let (ek, uk) = (expected[1].1, expected[3].1);
        let email_map = key_map(view(key_map_file(mode, true), ek)?)?;
        let email_ranges = RangesReader::new(view(ranges::FILE_NAME, ranges::KIND)?)?;
        let username_map = key_map(view(key_map_file(mode, false), uk)?)?;
        let username_postings = PostingsReader::new(view(postings::FILE_NAME, postings::KIND)?)?;
        let mut columns: [Option<ColumnReader>; ASSET_COUNT] = Default::default();
        for asset in stored.iter() {
            let name = column::file_name(asset);
            columns[asset.index()] = Some(ColumnReader::new(view(&name, column::KIND)?, asset, rows.len())?);
        }
        let c = &manifest.counts;
        let email_map_name = key_map_file(mode, true);
        let username_map_name = key_map_file(mode, false);
        let checks: [(bool, String); 7] = [
            (rows.len() == c.records, format!("{}: {} rows, manifest says {}", rows::FILE_NAME, rows.len(), c.records)),
            (
                email_map.len() == c.email_keys,
                format!("{email_map_name}: {} keys, manifest says {}", email_map.len(), c.email_keys),
            ),
            (
                email_ranges.len() == c.email_keys,
                format!("{}: {} key runs, manifest says {}", ranges::FILE_NAME, email_ranges.len(), c.email_keys),
            ),
            (
                email_ranges.email_rows() == c.email_rows && c.email_rows <= c.records,
                format!(
                    "{}: runs end at row {}, manifest says {} of {} rows",
                    ranges::FILE_NAME,
                    email_ranges.email_rows(),
                    c.email_rows,
                    c.records
                ),
            ),
            (
                username_map.len() == c.username_keys,
                format!("{username_map_name}: {} keys, manifest says {}", username_map.len(), c.username_keys),
            ),
            (
                username_postings.len() == c.username_keys,
                format!(
                    "{}: {} lists, manifest says {}",
                    postings::FILE_NAME,
                    username_postings.len(),
                    c.username_keys
                ),
            ),
            (
                username_postings.posting_count() == c.username_postings,
                format!(
                    "{}: {} postings, manifest says {}",
                    postings::FILE_NAME,
                    username_postings.posting_count(),
                    c.username_postings
                ),
            ),
        ];
        if let Some((_, what)) = checks.into_iter().find(|(ok, _)| !ok) {
            return Err(OpenError::Inconsistent(what));
        }
        Ok(Index {
            inner: Arc::new(Inner {
                dir,
                manifest,
                mode,
                deriver,
                stored,
                rows,
                email_map,
                email_ranges,
                username_map,
                username_postings,
                columns,
                sources,
            }),
        })
    }

    /// The index directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// The manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.inner.manifest
    }

    /// The key hash mode.
    pub fn hash_mode(&self) -> HashMode {
        self.inner.mode
    }

    /// Assets that have a column (whose values [`RecordView::get`] can return).
    pub fn stored_assets(&self) -> AssetSet {
        self.inner.stored
    }

    /// Number of records.
    pub fn len(&self) -> u64 {
        self.inner.rows.len()
    }

    /// Whether the index holds no records.
    pub fn is_empty(&self) -> bool {
        self.inner.rows.is_empty()
    }

    /// Sources, ascending by id.
    pub fn sources(&self) -> &[SourceInfo] {
        &self.inner.sources
    }

    /// The source with id `id`.
    #[inline]
    pub fn source(&self, id: u32) -> Option<&SourceInfo> {
        let s = &self.inner.sources;
        s.binary_search_by_key(&id, |s| s.id).ok().and_then(|i| s.get(i))
    }

    fn deriver(&self) -> Result<&KeyDeriver, QueryError> {
        self.inner.deriver.as_ref().ok_or_else(|| QueryError::InvalidKey("index opened for verification only".into()))
    }

    /// Rows of an e-mail (any spelling).
    pub fn lookup_email(&self, email: &str) -> Result<Matches<'_>, QueryError> {
        let normalized = normalized_email(email)?;
        let key = self.deriver()?.derive(normalized.as_bytes());
        self.email_rows(key.as_bytes())
    }

    /// Rows of a username (any spelling).
    pub fn lookup_username(&self, username: &str) -> Result<Matches<'_>, QueryError> {
        let normalized = normalized_username(username)?;
        let key = self.deriver()?.derive(normalized.as_bytes());
        self.username_rows(key.as_bytes())
    }

    /// Rows of a precomputed key (raw bytes as stored: the derived hash, or the
    /// normalized identifier in `plain` mode); `kind` `None` searches both maps.
    pub fn lookup_key(&self, key: &[u8], kind: Option<IdentifierKind>) -> Result<Matches<'_>, QueryError> {
        if let Some(width) = self.inner.mode.key_width()
            && key.len() != width
        {
            return Err(QueryError::InvalidKey(format!(
                "a {} key is {width} bytes ({} hex digits), this one is {}",
                self.inner.mode,
                width * 2,
                key.len()
            )));
        }
        match kind {
            Some(IdentifierKind::Email) => self.email_rows(key),
            Some(IdentifierKind::Username) => self.username_rows(key),
            None => {
                let email = self.email_rows(key)?;
                let user = self.username_rows(key)?;
                if user.is_empty() {
                    return Ok(email);
                }
                if email.is_empty() {
                    return Ok(user);
                }
                let mut all: Vec<u64> = email.chain(user).collect();
                all.sort_unstable();
                all.dedup();
                Ok(Matches(MatchesInner::List(all.into_iter())))
            }
        }
    }

    /// The stored key a query looks up (derived: hashed in a hashed index, never the
    /// identifier as given) and the map it searches (`None`: both).
    pub fn query_key(&self, query: &Query<'_>) -> Result<(Option<IdentifierKind>, Vec<u8>), QueryError> {
        Ok(match *query {
            Query::Email(email) => {
                let normalized = normalized_email(email)?;
                (Some(IdentifierKind::Email), self.deriver()?.derive(normalized.as_bytes()).as_bytes().to_vec())
            }
            Query::Username(username) => {
                let normalized = normalized_username(username)?;
                (Some(IdentifierKind::Username), self.deriver()?.derive(normalized.as_bytes()).as_bytes().to_vec())
            }
            Query::Key { hex, kind } => (kind, keymode::parse_hex_key(hex).map_err(QueryError::InvalidKey)?),
        })
    }

    /// Rows matching a [`Query`].
    pub fn lookup(&self, query: &Query<'_>) -> Result<Matches<'_>, QueryError> {
        match *query {
            Query::Email(e) => self.lookup_email(e),
            Query::Username(u) => self.lookup_username(u),
            Query::Key { hex, kind } => {
                let key = keymode::parse_hex_key(hex).map_err(QueryError::InvalidKey)?;
                self.lookup_key(&key, kind)
            }
        }
    }

    #[inline]
    fn email_rows(&self, key: &[u8]) -> Result<Matches<'_>, QueryError> {
        match self.inner.email_map.lookup(key)? {
            Some(ordinal) => Ok(Matches(MatchesInner::Range(self.inner.email_ranges.rows(ordinal)?))),
            None => Ok(Matches::empty()),
        }
    }

    #[inline]
    fn username_rows(&self, key: &[u8]) -> Result<Matches<'_>, QueryError> {
        match self.inner.username_map.lookup(key)? {
            Some(ordinal) => Ok(Matches(MatchesInner::Postings(self.inner.username_postings.rows(ordinal)?))),
            None => Ok(Matches::empty()),
        }
    }

    /// The fixed-width row `id`.
    #[inline]
    pub fn row(&self, id: RowId) -> Result<Row, QueryError> {
        self.inner
            .rows
            .get(id)
            .ok_or_else(|| QueryError::Damaged(self.inner.rows.view().damaged(format!("row {id} does not exist"))))
    }

    /// The record `id`, read in place.
    pub fn record(&self, id: RowId) -> Result<RecordView<'_>, QueryError> {
        Ok(RecordView { index: self, row_id: id, row: self.row(id)? })
    }
}

/// What [`verify`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Files whose checksums were read, with their sizes.
    pub files_checked: Vec<(String, u64)>,
    /// Every problem found, one sentence each, naming the file. Empty: the index is
    /// intact.
    pub problems: Vec<String>,
}

impl VerifyReport {
    /// Whether no problem was found.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// The normalized e-mail of a query, or the query error naming the input: the one place
/// the single and batch lookup paths turn a normalization failure into an error.
pub(crate) fn normalized_email(email: &str) -> Result<std::borrow::Cow<'_, str>, QueryError> {
    normalize::normalize_email(email).map_err(|reason| QueryError::InvalidEmail { input: email.to_string(), reason })
}

/// [`normalized_email`] for usernames.
pub(crate) fn normalized_username(username: &str) -> Result<std::borrow::Cow<'_, str>, QueryError> {
    normalize::normalize_username(username)
        .map_err(|reason| QueryError::InvalidUsername { input: username.to_string(), reason })
}

/// Checks an index directory completely: the manifest, every file's size, frame and
/// checksum, files that do not belong, and the structure of every file (sorted keys,
/// consistent directories, runs and postings in range, readable columns, rows that
/// name known sources). Needs no salt. Reads every byte.
pub fn verify(dir: &Path) -> VerifyReport {
    let mut report = VerifyReport::default();
    let manifest = match Manifest::read(dir) {
        Ok(m) => m,
        Err(e) => {
            report.problems.push(format!("{}: {e}", dir.display()));
            return report;
        }
    };
    match std::fs::read_dir(dir) {
        Ok(entries) => {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if name != manifest::FILE_NAME && manifest.file(&name).is_none() {
                    report.problems.push(format!("{name}: not part of this index (not in the manifest)"));
                }
            }
        }
        Err(e) => report.problems.push(format!("{}: {e}", dir.display())),
    }
    let mut files = BTreeMap::new();
    for entry in &manifest.files {
        let path = dir.join(&entry.name);
        let bytes = match Bytes::map_path(&path, Access::Sequential, false) {
            Ok(b) => b,
            Err(e) => {
                report.problems.push(format!("{}: cannot read: {e}", entry.name));
                continue;
            }
        };
        report.files_checked.push((entry.name.clone(), bytes.len() as u64));
        if bytes.len() as u64 != entry.size {
            report.problems.push(format!(
                "{}: {} bytes, but the manifest says {}",
                entry.name,
                bytes.len(),
                entry.size
            ));
            continue;
        }
        let sum = format!("{:016x}", xxhash_rust::xxh3::xxh3_64(&bytes));
        if sum != entry.xxh3 {
            report.problems.push(format!(
                "{}: checksum {sum} differs from the manifest's {}: the file is damaged",
                entry.name, entry.xxh3
            ));
            continue;
        }
        let split = bytes.len().saturating_sub(crate::format::FOOTER_LEN);
        let footer = crate::format::read_u64(&bytes, split);
        if footer != Some(xxhash_rust::xxh3::xxh3_64(bytes.get(..split).unwrap_or_default())) {
            report.problems.push(format!("{}: footer checksum does not match the contents", entry.name));
            continue;
        }
        files.insert(entry.name.clone(), bytes);
    }
    if !report.problems.is_empty() {
        return report;
    }
    let index = match Index::from_parts(dir.to_path_buf(), manifest, files, None, false) {
        Ok(i) => i,
        Err(e) => {
            report.problems.push(e.to_string());
            return report;
        }
    };
    if let Err(e) = verify_structure(&index) {
        report.problems.push(e.to_string());
    }
    report
}

fn verify_structure(index: &Index) -> Result<(), FormatError> {
    let inner = &index.inner;
    let total = inner.rows.len();
    inner.email_map.verify()?;
    inner.username_map.verify()?;
    inner.email_ranges.verify(total)?;
    inner.username_postings.verify(total)?;
    for col in inner.columns.iter().flatten() {
        col.verify()?;
    }
    let mut per_source: BTreeMap<u32, u64> = BTreeMap::new();
    for id in 0..total {
        let row = inner.rows.get(id).ok_or_else(|| inner.rows.view().damaged("row missing"))?;
        if index.source(row.source_id).is_none() {
            return Err(inner.rows.view().damaged(format!("row {id} names unknown source {}", row.source_id)));
        }
        if crate::severity::Severity::from_score(row.severity).is_none() {
            return Err(inner.rows.view().damaged(format!("row {id} has invalid severity {}", row.severity)));
        }
        for asset in row.assets.intersection(inner.stored).iter() {
            let col = inner.columns[asset.index()].as_ref();
            if col.map(|c| c.get(id)).transpose()?.flatten().is_none() {
                return Err(inner.rows.view().damaged(format!("row {id} holds {asset} but its column is empty")));
            }
        }
        *per_source.entry(row.source_id).or_default() += 1;
    }
    for s in &inner.sources {
        if per_source.get(&s.id).copied().unwrap_or(0) != s.records {
            return Err(FormatError::damaged(
                manifest::FILE_NAME,
                format!("source {} should have {} records", s.name, s.records),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_is_send_sync_and_cheap_to_clone() {
        fn assert_send_sync<T: Send + Sync + Clone>() {}
        assert_send_sync::<Index>();
    }

    #[test]
    fn queries_name_their_kind() {
        assert_eq!(Query::auto("a@b.c"), Query::Email("a@b.c"));
        assert_eq!(Query::auto("bob"), Query::Username("bob"));
        assert_eq!(Query::Key { hex: "00", kind: None }.kind_name(), "key");
    }
}
