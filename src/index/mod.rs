//! The reader: [`Index::open`] maps an index directory and checks it in constant time;
//! lookups are zero-copy reads of the mapped files ([`lookup`]); [`verify`] checks
//! everything. Many lookups at once: [`Index::lookup_batch`] overlaps the memory reads
//! of several lookups ([`batch`]).
//!
//! The reader knows the on-disk format ([`crate::format`]) and nothing of the builder.
//! The query layer on top ([`crate::query`]) turns lookups into `check` and `records`
//! results.
//!
//! An [`Index`] is `Send + Sync` and cheap to clone (an `Arc`): share one across
//! threads. Mapped files must not change while open (see [`crate::mmap`]).

pub mod batch;
mod error;
mod lookup;
mod record;
mod verify;

pub use error::{LookupError, OpenError};
pub use lookup::{IdentifierKind, Matches, Query};
pub(crate) use lookup::{normalized_email, normalized_username};
pub(crate) use record::KnownKeys;
pub use record::{RecordView, RowMeta};
pub(crate) use verify::verify_segment;
pub use verify::{VerifyReport, verify};

use crate::asset::{ASSET_COUNT, Asset, AssetSet};
use crate::date::Date;
use crate::format::column::{self, ColumnReader};
use crate::format::fingerprints;
use crate::format::hot::{self, HotReader};
use crate::format::keymap::{self, KeyMapReader, KeyMapRole};
use crate::format::manifest::{self, Manifest, ManifestError, SourceMeta};
use crate::format::passwords::{self as password_files, PasswordFileReader, PasswordFiles, Passwords};
use crate::format::postings::{self, PostingsReader};
use crate::format::ranges::{self, RangesReader};
use crate::format::rowrefs::{self, RowRefsReader};
use crate::format::rows::{self, RowsReader};
use crate::format::store::{self, KeyRule, StoreReader};
use crate::format::{FileView, Kind, index_files, optional_index_files};
use crate::generation::{self, GenerationManifest, Layer, RootManifest};
use crate::keymode::{HashMode, KeyDeriver, Salt};
use crate::mmap::{Access, Bytes};
use crate::password::PasswordHashKind;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

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
    /// Distinct identities of the source (SPEC §12 `PwnCount`): records sharing an
    /// e-mail count once, records without an e-mail once per distinct username. An index
    /// built before this was counted reports its record count.
    pub pwn_count: u64,
    /// Assets present in the source's records (stored or not); `None` for an index built
    /// before they were recorded.
    pub assets: Option<AssetSet>,
    /// Have I Been Pwned data classes: the catalog's `data_classes` when it gave them,
    /// else [`crate::data_classes_of`] the assets; `None` when neither is known (an
    /// index built before assets were recorded).
    pub data_classes: Option<Vec<String>>,
    /// The breached site's domain, normalized.
    pub domain: Option<String>,
    /// When the breach was added (catalog `added_date`, else the publish date).
    pub added_date: Date,
    /// When the breach was last modified (catalog `modified_date`, else the added date).
    pub modified_date: Date,
    /// Whether the breach is verified (default `true`).
    pub verified: bool,
    /// Whether the breach is sensitive.
    pub sensitive: bool,
    /// Whether the breach is fabricated.
    pub fabricated: bool,
    /// Whether the breach is retired.
    pub retired: bool,
    /// Whether the source is a spam list.
    pub spam_list: bool,
    /// Whether the data came from malware.
    pub malware: bool,
    /// Whether the source is a stealer log.
    pub stealer_log: bool,
    /// URL or path of the breach's logo.
    pub logo_path: Option<String>,
}

/// Reads the manifest of the index directory `dir`; a path that is not an index (nothing
/// there, a file, a folder without `manifest.json`) is [`OpenError::NotAnIndex`].
pub fn read_manifest(dir: &Path) -> Result<Manifest, OpenError> {
    match generation::read_root_at(dir)? {
        RootManifest::Index(manifest) => Ok(*manifest),
        RootManifest::Generation(g) => Err(OpenError::Manifest {
            dir: dir.to_path_buf(),
            source: ManifestError::Unsupported(format!(
                "generation {} of an updated index: open it with Index::open (its segments have their own manifests)",
                g.generation
            )),
        }),
    }
}

/// Why `dir` is not an index (for [`read_manifest`] and [`Index::open`]), or `Ok`.
pub(crate) fn check_index_dir(dir: &Path) -> Result<(), OpenError> {
    let not_an_index = |reason| OpenError::NotAnIndex { path: dir.to_path_buf(), reason };
    match std::fs::metadata(dir) {
        Ok(meta) if !meta.is_dir() => Err(not_an_index("not a directory")),
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(not_an_index("nothing at this path")),
        Err(source) => Err(OpenError::Io { path: dir.to_path_buf(), source }),
    }
}

/// The parts of an open version 1 index that a conversion to the current format reads
/// (every file is already checked against the manifest, in constant time).
pub(crate) struct V1Parts<'a> {
    /// `records.rows`.
    pub rows: &'a RowsReader,
    /// The asset columns, by [`Asset::index`] (`None`: not stored).
    pub columns: &'a [Option<ColumnReader>; ASSET_COUNT],
    /// The e-mail key map.
    pub email_map: &'a KeyMapReader,
    /// `email.ranges`.
    pub email_ranges: &'a RangesReader,
    /// `username.postings`.
    pub username_postings: &'a PostingsReader,
    /// The sources, ascending by id (a row's v2 source slot is its source's position).
    pub sources: &'a [SourceInfo],
    /// The salt the index was opened with (hashed modes).
    pub salt: Option<&'a Salt>,
}

/// The parts of an open version 2 index that a merge of indexes streams (every file
/// already checked against the manifest, in constant time).
pub(crate) struct SegmentParts<'a> {
    /// The e-mail key map.
    pub email_map: &'a KeyMapReader,
    /// `email.ranges`.
    pub email_ranges: &'a RangesReader,
    /// The username key map.
    pub username_map: &'a KeyMapReader,
    /// `username.postings`.
    pub username_postings: &'a PostingsReader,
    /// The password files, when the index has them.
    pub passwords: Option<&'a PasswordFiles>,
    /// The rows' password references, when the index has them.
    pub rowrefs: Option<&'a RowRefsReader>,
}

/// The files holding the records themselves, by format version: the rest of an index
/// (key maps, runs, postings, password files, accelerators) has the same layout in
/// both.
enum RecordFiles {
    /// Version 1: 32-byte rows and one column per stored asset.
    V1 { rows: RowsReader, columns: Box<[Option<ColumnReader>; ASSET_COUNT]> },
    /// Version 2: hot rows (`check`) and the compressed record store (`records`).
    V2 {
        hot: HotReader,
        store: Box<StoreReader>,
        /// Which rows' identifiers may be stored as "equals the key".
        keys: KeyRule,
    },
}

impl std::fmt::Debug for RecordFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RecordFiles::V1 { rows, .. } => write!(f, "RecordFiles::V1({} rows)", rows.len()),
            RecordFiles::V2 { hot, .. } => write!(f, "RecordFiles::V2({} rows)", hot.len()),
        }
    }
}

impl RecordFiles {
    /// Number of records.
    fn len(&self) -> u64 {
        match self {
            RecordFiles::V1 { rows, .. } => rows.len(),
            RecordFiles::V2 { hot, .. } => hot.len(),
        }
    }

    /// Hints the CPU to fetch the rows `ids` (at most `max_lines` cache lines).
    #[inline]
    fn prefetch(&self, ids: std::ops::Range<u64>, max_lines: usize) {
        match self {
            RecordFiles::V1 { rows, .. } => rows.prefetch(ids, max_lines),
            RecordFiles::V2 { hot, .. } => hot.prefetch(ids, max_lines),
        }
    }

    /// Whether there are no records.
    fn is_empty(&self) -> bool {
        match self {
            RecordFiles::V1 { rows, .. } => rows.is_empty(),
            RecordFiles::V2 { hot, .. } => hot.is_empty(),
        }
    }

    /// The file a row-level problem is reported against.
    fn row_file(&self) -> &'static str {
        match self {
            RecordFiles::V1 { .. } => rows::FILE_NAME,
            RecordFiles::V2 { .. } => hot::FILE_NAME,
        }
    }
}

/// The readers of every file of an index, checked against each other and the manifest,
/// with no salt: what lookups read and what [`verify`] walks.
#[derive(Debug)]
struct IndexFiles {
    dir: PathBuf,
    manifest: Manifest,
    mode: HashMode,
    stored: AssetSet,
    records: RecordFiles,
    email_map: KeyMapReader,
    email_ranges: RangesReader,
    username_map: KeyMapReader,
    username_postings: PostingsReader,
    /// The password index, when the manifest lists it.
    passwords: Option<PasswordFiles>,
    /// The rows' password references (`passwords.rowrefs`), when the manifest lists it.
    rowrefs: Option<RowRefsReader>,
    sources: Vec<SourceInfo>,
}

/// The files to map for `manifest`: every file its version, hash mode and stored assets
/// imply, then the optional files it lists.
fn files_to_open(manifest: &Manifest, mode: HashMode, stored: AssetSet) -> Vec<(String, Kind)> {
    let mut files = index_files(manifest.format_version, mode, stored);
    files.extend(optional_index_files().into_iter().filter(|(name, _)| manifest.file(name).is_some()));
    files
}

fn parse_manifest_meta(manifest: &Manifest) -> Result<(HashMode, AssetSet, Vec<SourceInfo>), OpenError> {
    let bad = |what: String| OpenError::Inconsistent(format!("manifest.json: {what}"));
    let mode: HashMode = manifest.hash_mode.parse().map_err(bad)?;
    let mut stored = AssetSet::EMPTY;
    for name in &manifest.stored_assets {
        stored.insert(Asset::from_name(name).ok_or_else(|| bad(format!("unknown stored asset '{name}'")))?);
    }
    let sources = source_infos(&manifest.sources).map_err(bad)?;
    Ok((mode, stored, sources))
}

/// The reader's view of a manifest's sources, ascending by id (ids unique).
pub(crate) fn source_infos(metas: &[SourceMeta]) -> Result<Vec<SourceInfo>, String> {
    let bad = |what: String| what;
    let mut sources = Vec::with_capacity(metas.len());
    for s in metas {
        let date = |d: &str| d.parse::<Date>().map_err(|e| bad(format!("source {}: {e}", s.name)));
        let publish_date = date(&s.publish_date)?;
        let added_date = s.added_date.as_deref().map(date).transpose()?.unwrap_or(publish_date);
        let modified_date = s.modified_date.as_deref().map(date).transpose()?.unwrap_or(added_date);
        let assets = match &s.assets {
            None => None,
            Some(names) => {
                let mut set = AssetSet::EMPTY;
                for name in names {
                    let asset = Asset::from_name(name)
                        .ok_or_else(|| bad(format!("source {}: unknown asset '{name}'", s.name)))?;
                    set.insert(asset);
                }
                Some(set)
            }
        };
        let data_classes = s
            .data_classes
            .clone()
            .or_else(|| assets.map(|set| crate::asset::data_classes_of(set).into_iter().map(str::to_owned).collect()));
        sources.push(SourceInfo {
            id: s.id,
            name: s.name.clone(),
            title: s.title.clone(),
            date: date(&s.date)?,
            description: s.description.clone(),
            severity: s.severity,
            publish_date,
            records: s.records,
            pwn_count: s.pwn_count.unwrap_or(s.records),
            assets,
            data_classes,
            domain: s.domain.clone(),
            added_date,
            modified_date,
            verified: s.verified,
            sensitive: s.sensitive,
            fabricated: s.fabricated,
            retired: s.retired,
            spam_list: s.spam_list,
            malware: s.malware,
            stealer_log: s.stealer_log,
            logo_path: s.logo_path.clone(),
        });
    }
    sources.sort_by_key(|s| s.id);
    if sources.windows(2).any(|w| w[0].id == w[1].id) {
        return Err(bad("duplicate source ids".into()));
    }
    Ok(sources)
}

impl IndexFiles {
    /// Parses every file's frame and header and checks the counts against the manifest.
    fn new(dir: PathBuf, manifest: Manifest, mut files: BTreeMap<String, Bytes>) -> Result<IndexFiles, OpenError> {
        let (mode, stored, sources) = parse_manifest_meta(&manifest)?;
        let version = manifest.format_version;
        let mut expected = index_files(version, mode, stored);
        expected.extend(optional_index_files());
        if let Some(extra) = manifest.files.iter().find(|f| !expected.iter().any(|(n, _)| *n == f.name)) {
            return Err(OpenError::Inconsistent(format!("manifest lists an unexpected file '{}'", extra.name)));
        }
        let header_version = u16::try_from(version).unwrap_or(u16::MAX);
        let mut view = |name: &str, kind: Kind| -> Result<FileView, OpenError> {
            let bytes = files.remove(name).ok_or_else(|| OpenError::MissingFile(name.to_string()))?;
            Ok(FileView::parse_version(name, bytes, kind, header_version)?)
        };
        let email_map_name = keymap::file_name(mode, KeyMapRole::Email);
        let username_map_name = keymap::file_name(mode, KeyMapRole::Username);
        let mut records = match version {
            1 => {
                RecordFiles::V1 { rows: RowsReader::new(view(rows::FILE_NAME, rows::KIND)?)?, columns: Box::default() }
            }
            _ => {
                let hot = HotReader::new(view(hot::FILE_NAME, hot::KIND)?, sources.len() as u64)?;
                let store = Box::new(StoreReader::new(view(store::FILE_NAME, store::KIND)?, hot.len())?);
                let keys = KeyRule { plain: !mode.is_hashed(), email_rows: manifest.counts.email_rows };
                RecordFiles::V2 { hot, store, keys }
            }
        };
        let record_count = records.len();
        let mut key_map = |role: KeyMapRole| -> Result<KeyMapReader, OpenError> {
            let map = KeyMapReader::new(view(keymap::file_name(mode, role), keymap::kind(mode, role))?, mode)?;
            let accelerator = fingerprints::file_name(role);
            Ok(match manifest.file(accelerator) {
                Some(_) => map.with_fingerprints(view(accelerator, fingerprints::kind(role))?)?,
                None => map,
            })
        };
        let email_map = key_map(KeyMapRole::Email)?;
        let username_map = key_map(KeyMapRole::Username)?;
        let email_ranges = RangesReader::new(view(ranges::FILE_NAME, ranges::KIND)?)?;
        let username_postings = PostingsReader::new(view(postings::FILE_NAME, postings::KIND)?)?;
        if let RecordFiles::V1 { columns, .. } = &mut records {
            for asset in stored.iter() {
                let name = column::file_name(asset);
                columns[asset.index()] = Some(ColumnReader::new(view(&name, column::KIND)?, asset, record_count)?);
            }
        }
        let passwords = open_passwords(&manifest, &mut view)?;
        let rowrefs = match (manifest.file(rowrefs::FILE_NAME), &passwords) {
            (None, _) => None,
            (Some(_), None) => {
                return Err(OpenError::Inconsistent(format!(
                    "manifest.json lists {} but no password files",
                    rowrefs::FILE_NAME
                )));
            }
            (Some(_), Some(p)) => Some(RowRefsReader::new(
                view(rowrefs::FILE_NAME, rowrefs::KIND)?,
                record_count,
                [p.sha1.len(), p.ntlm.len()],
            )?),
        };
        let c = &manifest.counts;
        let checks: [(bool, String); 7] = [
            (
                record_count == c.records,
                format!("{}: {record_count} rows, manifest says {}", records.row_file(), c.records),
            ),
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
        Ok(IndexFiles {
            dir,
            manifest,
            mode,
            stored,
            records,
            email_map,
            email_ranges,
            username_map,
            username_postings,
            passwords,
            rowrefs,
            sources,
        })
    }

    /// The source with id `id`.
    #[inline]
    fn source(&self, id: u32) -> Option<&SourceInfo> {
        let s = &self.sources;
        s.binary_search_by_key(&id, |s| s.id).ok().and_then(|i| s.get(i))
    }
}

#[derive(Debug)]
struct Inner {
    files: IndexFiles,
    deriver: KeyDeriver,
    /// The salt of a hashed index: document ids a version 2 index does not store are
    /// recomputed with it (§6).
    salt: Option<Salt>,
    /// The generation layer of an updated index (the other segments, deletions, the
    /// merged source table); `None` for an index as `build` wrote it.
    generation: Option<Box<Layer>>,
}

/// An open index. Cheap to clone; `Send + Sync`.
#[derive(Clone, Debug)]
pub struct Index {
    inner: Arc<Inner>,
}

impl Index {
    /// Opens the index directory `dir`: reads the manifest, checks the salt, maps every
    /// file and checks sizes, frames and headers. Constant time in the index size.
    ///
    /// An index that `breachdex add`, `remove` or `compact` updated opens every segment
    /// of its current generation (constant time in the data, linear in the segments)
    /// and answers over all of them as one index of the same effective data would.
    pub fn open(dir: &Path, options: &OpenOptions) -> Result<Index, OpenError> {
        match generation::read_root_at(dir)? {
            RootManifest::Index(manifest) => Index::open_segment(dir, *manifest, options),
            RootManifest::Generation(generation) => generation::open_generation(dir, *generation, options),
        }
    }

    /// Opens one segment: the index directory `dir` described by `manifest` (its own
    /// `manifest.json`, or the base segment's `root.manifest.json`).
    pub(crate) fn open_segment(dir: &Path, manifest: Manifest, options: &OpenOptions) -> Result<Index, OpenError> {
        let (mode, stored, _) = parse_manifest_meta(&manifest)?;
        let mut files = BTreeMap::new();
        for (name, _) in files_to_open(&manifest, mode, stored) {
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
        Index::from_parts(dir.to_path_buf(), manifest, files, options.salt.as_ref())
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
        for (name, _) in files_to_open(&manifest, mode, stored) {
            let entry = manifest.file(&name).ok_or_else(|| OpenError::MissingFile(name.clone()))?;
            let bytes = files.remove(&name).ok_or_else(|| OpenError::MissingFile(name.clone()))?;
            if bytes.len() as u64 != entry.size {
                return Err(OpenError::SizeMismatch { name, expected: entry.size, actual: bytes.len() as u64 });
            }
            mapped.insert(name, Bytes::from_vec(bytes));
        }
        Index::from_parts(PathBuf::from("<memory>"), manifest, mapped, options.salt.as_ref())
    }

    /// Checks the salt against the manifest, then reads the files.
    fn from_parts(
        dir: PathBuf,
        manifest: Manifest,
        files: BTreeMap<String, Bytes>,
        salt: Option<&Salt>,
    ) -> Result<Index, OpenError> {
        let (mode, _, _) = parse_manifest_meta(&manifest)?;
        match (mode.is_hashed(), salt) {
            (true, None) => return Err(OpenError::SaltRequired(mode)),
            (false, Some(_)) => return Err(OpenError::SaltUnused),
            (true, Some(s)) if manifest.salt_fingerprint.as_deref() != Some(s.fingerprint().as_str()) => {
                return Err(OpenError::WrongSalt);
            }
            _ => {}
        }
        let deriver = KeyDeriver::new(mode, salt).map_err(|e| OpenError::Inconsistent(e.to_string()))?;
        let files = IndexFiles::new(dir, manifest, files)?;
        let salt = salt.filter(|_| mode.is_hashed()).cloned();
        Ok(Index { inner: Arc::new(Inner { files, deriver, salt, generation: None }) })
    }

    /// This index with the generation layer `layer` on top (its files are the base
    /// segment's).
    pub(crate) fn with_generation(self, layer: Layer) -> Result<Index, OpenError> {
        let inner = Arc::try_unwrap(self.inner)
            .map_err(|_| OpenError::Inconsistent("the base segment is shared while it opens".into()))?;
        Ok(Index { inner: Arc::new(Inner { generation: Some(Box::new(layer)), ..inner }) })
    }

    /// The generation layer, when reads must merge several segments (or skip deleted
    /// rows): `None` for an index as `build` wrote it.
    #[inline(always)]
    pub(crate) fn merged(&self) -> Option<&Layer> {
        self.inner.generation.as_deref().filter(|g| g.merges())
    }

    /// The generation layer, if the index was updated.
    #[inline]
    pub(crate) fn layer(&self) -> Option<&Layer> {
        self.inner.generation.as_deref()
    }

    /// Rows of this segment that have an e-mail (they come first).
    pub(crate) fn email_rows_count(&self) -> u64 {
        self.inner.files.manifest.counts.email_rows
    }

    /// The version 1 files, for a conversion; `None` for an index of another version.
    pub(crate) fn v1_parts(&self) -> Option<V1Parts<'_>> {
        let files = &self.inner.files;
        match &files.records {
            RecordFiles::V1 { rows, columns } => Some(V1Parts {
                rows,
                columns,
                email_map: &files.email_map,
                email_ranges: &files.email_ranges,
                username_postings: &files.username_postings,
                sources: &files.sources,
                salt: self.inner.salt.as_ref(),
            }),
            RecordFiles::V2 { .. } => None,
        }
    }

    /// The key maps, runs, postings and password files of a version 2 index, for a
    /// merge; `None` for a version 1 index (upgrade it first).
    pub(crate) fn segment_parts(&self) -> Option<SegmentParts<'_>> {
        let files = &self.inner.files;
        match &files.records {
            RecordFiles::V2 { .. } => Some(SegmentParts {
                email_map: &files.email_map,
                email_ranges: &files.email_ranges,
                username_map: &files.username_map,
                username_postings: &files.username_postings,
                passwords: files.passwords.as_ref(),
                rowrefs: files.rowrefs.as_ref(),
            }),
            RecordFiles::V1 { .. } => None,
        }
    }

    /// The index directory.
    pub fn dir(&self) -> &Path {
        &self.inner.files.dir
    }

    /// The manifest (of an updated index: the base segment's; see
    /// [`Index::generation_manifest`]).
    pub fn manifest(&self) -> &Manifest {
        &self.inner.files.manifest
    }

    /// The key hash mode.
    pub fn hash_mode(&self) -> HashMode {
        self.inner.files.mode
    }

    /// Assets whose values the index stores (whose values [`RecordView::get`] can
    /// return).
    pub fn stored_assets(&self) -> AssetSet {
        self.inner.files.stored
    }

    /// The index's format version (`manifest.format_version`): 1 or 2.
    pub fn format_version(&self) -> u32 {
        self.inner.files.manifest.format_version
    }

    /// Number of records.
    pub fn len(&self) -> u64 {
        match self.layer() {
            Some(g) => g.records(),
            None => self.inner.files.records.len(),
        }
    }

    /// The generation of the index: 1 as `build` wrote it, then one more for each
    /// `add`, `remove` and `compact`.
    pub fn generation(&self) -> u64 {
        self.layer().map_or(1, |g| g.manifest.generation)
    }

    /// Identifies this generation of the index: the build id for generation 1, else
    /// the generation manifest's `generation_id`. [`crate::IndexHandle`] swaps when it
    /// changes.
    pub fn generation_id(&self) -> &str {
        self.layer().map_or(&self.inner.files.manifest.build_id, |g| &g.manifest.generation_id)
    }

    /// Identifies the answers of this index: the build id for generation 1, else the
    /// id of the latest generation that changed answers (`add`, `remove`; a `compact`
    /// keeps it). Cursors and caches bind to it.
    pub fn content_id(&self) -> &str {
        self.layer().map_or(&self.inner.files.manifest.build_id, |g| &g.manifest.content_id)
    }

    /// The generation manifest of an updated index (`None` for generation 1).
    pub fn generation_manifest(&self) -> Option<&GenerationManifest> {
        self.layer().map(|g| &g.manifest)
    }

    /// The file holding the rows (`records.rows` or `records.hot`), for messages.
    pub(crate) fn row_file(&self) -> &'static str {
        self.inner.files.records.row_file()
    }

    /// Whether the index holds no records.
    pub fn is_empty(&self) -> bool {
        self.inner.files.records.is_empty()
    }

    /// Sources, ascending by id.
    pub fn sources(&self) -> &[SourceInfo] {
        match self.layer() {
            Some(g) => &g.sources,
            None => &self.inner.files.sources,
        }
    }

    /// The source with id `id`.
    #[inline]
    pub fn source(&self, id: u32) -> Option<&SourceInfo> {
        match self.layer() {
            Some(g) => g.source(id),
            None => self.inner.files.source(id),
        }
    }

    /// The password index of this index, or `None` when it was built without one
    /// (older indexes, or a build that turned it off). It needs no salt to answer and
    /// holds no plaintext.
    ///
    /// ```no_run
    /// use breachdex::{Index, OpenOptions, PasswordHash, PasswordHashKind, PasswordPrefix};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let index = Index::open(std::path::Path::new("sample-index"), &OpenOptions::default())?;
    /// if let Some(passwords) = index.passwords() {
    ///     let seen = passwords.count(&PasswordHash::sha1_of("hunter2"))?;
    ///     println!("in {seen} records");
    ///     for entry in passwords.range(PasswordHashKind::Ntlm, PasswordPrefix::from_hex("8846F")?)? {
    ///         let entry = entry?;
    ///         println!("{}:{}", entry.suffix_hex(), entry.count());
    ///     }
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn passwords(&self) -> Option<Passwords<'_>> {
        match self.layer() {
            Some(layer) => layer.passwords.as_deref().map(Passwords::over_parts),
            None => self.inner.files.passwords.as_ref().map(Passwords::new),
        }
    }
}

/// Opens the password files when the manifest lists them: both or neither, each with
/// the hash count the manifest gives.
fn open_passwords(
    manifest: &Manifest,
    view: &mut impl FnMut(&str, Kind) -> Result<FileView, OpenError>,
) -> Result<Option<PasswordFiles>, OpenError> {
    let listed = PasswordHashKind::ALL.map(|k| manifest.file(password_files::file_name(k)).is_some());
    let counts = [manifest.counts.password_sha1, manifest.counts.password_ntlm];
    match (listed, counts) {
        ([false, false], [None, None]) => return Ok(None),
        ([true, true], [Some(_), Some(_)]) => {}
        _ => {
            return Err(OpenError::Inconsistent(
                "manifest.json: the password index needs both password files and both hash counts".to_string(),
            ));
        }
    }
    let mut open = |kind: PasswordHashKind, expected: Option<u64>| -> Result<PasswordFileReader, OpenError> {
        let name = password_files::file_name(kind);
        let reader = PasswordFileReader::new(view(name, password_files::file_kind(kind))?, kind)?;
        if Some(reader.len()) != expected {
            return Err(OpenError::Inconsistent(format!(
                "{name}: {} hashes, manifest says {}",
                reader.len(),
                expected.unwrap_or(0)
            )));
        }
        Ok(reader)
    };
    let sha1 = open(PasswordHashKind::Sha1, counts[0])?;
    let ntlm = open(PasswordHashKind::Ntlm, counts[1])?;
    Ok(Some(PasswordFiles { sha1, ntlm }))
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
    fn a_path_that_is_not_an_index_says_so() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("file");
        std::fs::write(&file, b"x").unwrap();
        let missing = tmp.path().join("missing");
        for (path, reason) in [
            (&missing, "nothing at this path"),
            (&file, "not a directory"),
            (&tmp.path().to_path_buf(), "no manifest.json in it"),
        ] {
            let err = Index::open(path, &OpenOptions::default()).unwrap_err();
            assert!(matches!(&err, OpenError::NotAnIndex { path: p, .. } if p == path), "{err:?}");
            assert_eq!(err.to_string(), format!("{}: not a breachdex index ({reason})", path.display()));
        }
    }
}
