//! The on-disk index format: one module per file kind, writer and reader side by side,
//! and the frame every index file shares (this module).
//!
//! Every file except `manifest.json` is framed the same way (docs/FORMAT.md has the
//! tables; the constants below mirror them):
//!
//! ```text
//! header (64 bytes) | body (body_len bytes) | footer (16 bytes)
//! ```
//!
//! The header names the file kind and carries four kind-specific parameters; the
//! footer holds an XXH3-64 checksum of everything before it. Opening checks the frame
//! in constant time ([`FileView::parse`]); [`FileView::verify_checksum`] reads it all.
//! All integers are little-endian.

pub mod changes;
pub mod column;
pub(crate) mod deletes;
pub mod docid;
pub mod elias_fano;
pub mod filter;
pub mod fingerprints;
pub mod fst_safe;
pub mod fstmap;
pub mod hot;
pub mod keymap;
pub mod keys;
pub mod manifest;
pub mod passwords;
pub mod postings;
pub mod ranges;
pub mod recordfiles;
pub mod rowrefs;
pub mod rows;
pub mod store;
pub(crate) mod tombstones;

use crate::asset::AssetSet;
use crate::keymode::HashMode;
use crate::mmap::Bytes;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use xxhash_rust::xxh3::Xxh3;

/// Magic bytes at offset 0 of every index file.
pub const FILE_MAGIC: [u8; 8] = *b"BRCHDEX\0";
/// Magic bytes closing every index file.
pub const FOOTER_MAGIC: [u8; 8] = *b"BDXFOOT\0";
/// Version of the file frame and of every file kind that builds write; bumped on any
/// layout change.
pub const FORMAT_VERSION: u16 = 2;
/// The oldest format version readers still open (in place: version 1 indexes keep their
/// `records.rows` and asset columns).
pub const OLDEST_READABLE_VERSION: u16 = 1;

/// Whether readers open indexes of format `version`.
pub fn is_readable_version(version: u64) -> bool {
    (OLDEST_READABLE_VERSION as u64..=FORMAT_VERSION as u64).contains(&version)
}

/// The readable versions, for messages: `1 to 2`.
pub fn readable_versions() -> String {
    format!("{OLDEST_READABLE_VERSION} to {FORMAT_VERSION}")
}
/// Header length in bytes.
pub const HEADER_LEN: usize = 64;
/// Footer length in bytes.
pub const FOOTER_LEN: usize = 16;

// Header field offsets (docs/FORMAT.md, "Common frame").
const OFF_MAGIC: usize = 0;
const OFF_KIND: usize = 8;
const OFF_VERSION: usize = 12;
const OFF_HEADER_LEN: usize = 14;
const OFF_BODY_LEN: usize = 16;
const OFF_PARAMS: usize = 24;
const OFF_RESERVED: usize = 56;

/// The four-byte tag naming a file kind in its header.
pub type Kind = [u8; 4];

/// Every file of an index directory of format `version` but `manifest.json`, with its
/// kind, in the order the reader opens them: the record files, the e-mail key map and
/// runs, the username key map and postings. The record files are `records.hot` and
/// `records.store` from version 2 on; version 1 has `records.rows` and, after the
/// postings, one column per stored asset. The file names depend on the hash mode (the
/// key maps) and on the stored assets (the version 1 columns).
pub fn index_files(version: u32, mode: HashMode, stored: AssetSet) -> Vec<(String, Kind)> {
    use keymap::KeyMapRole::{Email, Username};
    let mut files = Vec::new();
    if version == 1 {
        files.push((rows::FILE_NAME.to_string(), rows::KIND));
    } else {
        files.push((hot::FILE_NAME.to_string(), hot::KIND));
        files.push((store::FILE_NAME.to_string(), store::KIND));
    }
    files.extend([
        (keymap::file_name(mode, Email).to_string(), keymap::kind(mode, Email)),
        (ranges::FILE_NAME.to_string(), ranges::KIND),
        (keymap::file_name(mode, Username).to_string(), keymap::kind(mode, Username)),
        (postings::FILE_NAME.to_string(), postings::KIND),
    ]);
    if version == 1 {
        for asset in stored.iter() {
            files.push((column::file_name(asset), column::KIND));
        }
    }
    files
}

/// The kinds of the generation-level files of incremental updates (docs/FORMAT.md §10):
/// row deletions (`DELR`), suppressed keys (`TOMB`), change feed (`CHGS`) and key
/// filters (`KFLT`, a segment's `keys.filter`, and `UFLT`, the union filter, same
/// layout). They live beside a segment's index files, never among them.
#[allow(dead_code)] // wired up by the generation layer
pub(crate) const GENERATION_KINDS: [Kind; 5] =
    [deletes::KIND, tombstones::KIND, changes::KIND, filter::SEGMENT_KIND, filter::UNION_KIND];

/// The byte that stands for an identifier kind in the generation-level files: 0 e-mail,
/// 1 username.
#[inline]
pub(crate) fn identifier_code(kind: crate::index::IdentifierKind) -> u8 {
    match kind {
        crate::index::IdentifierKind::Email => 0,
        crate::index::IdentifierKind::Username => 1,
    }
}

/// The identifier kind of a byte written by [`identifier_code`]; `None` for any other.
#[inline]
pub(crate) fn identifier_of_code(code: u8) -> Option<crate::index::IdentifierKind> {
    match code {
        0 => Some(crate::index::IdentifierKind::Email),
        1 => Some(crate::index::IdentifierKind::Username),
        _ => None,
    }
}

/// Files an index may hold or not, with their kinds: the password index
/// (`passwords.sha1` and `passwords.ntlm`, both or neither), the password row references
/// of an index that counts passwords it does not store (`passwords.rowrefs`) and a
/// plain index's key map accelerators (`email.fpt`, `username.fpt`). An index whose
/// manifest lists none of them opens without them.
pub fn optional_index_files() -> Vec<(String, Kind)> {
    passwords::files()
        .into_iter()
        .chain([(rowrefs::FILE_NAME, rowrefs::KIND)])
        .chain(fingerprints::files())
        .map(|(name, kind)| (name.to_string(), kind))
        .collect()
}

/// Why an index file cannot be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FormatError {
    /// Shorter than a header and a footer.
    #[error("{file}: {len} bytes is too short for an index file (at least {min})")]
    TooShort {
        /// File name.
        file: String,
        /// Actual length.
        len: u64,
        /// Minimum length.
        min: u64,
    },
    /// The first bytes are not the breachdex magic.
    #[error("{file}: not a breachdex index file (bad magic)")]
    BadMagic {
        /// File name.
        file: String,
    },
    /// A different file kind than expected.
    #[error("{file}: holds a '{got}' file where a '{expected}' file belongs")]
    WrongKind {
        /// File name.
        file: String,
        /// Expected kind tag.
        expected: String,
        /// Found kind tag.
        got: String,
    },
    /// A format version this build cannot read.
    #[error(
        "{file}: format version {got} is not supported (this build reads versions {OLDEST_READABLE_VERSION} to {supported})"
    )]
    UnsupportedVersion {
        /// File name.
        file: String,
        /// Version found.
        got: u16,
        /// Newest version supported.
        supported: u16,
    },
    /// A file of another format version than the index (its manifest).
    #[error(
        "{file}: format version {got} in an index of format version {index}: the file does not belong to this index"
    )]
    VersionMismatch {
        /// File name.
        file: String,
        /// Version in the file's header.
        got: u16,
        /// The index's version (`manifest.format_version`).
        index: u16,
    },
    /// Sizes in the header disagree with the file.
    #[error("{file}: damaged: {reason}")]
    Damaged {
        /// File name.
        file: String,
        /// What disagrees.
        reason: String,
    },
    /// The checksum in the footer does not match the contents.
    #[error("{file}: checksum mismatch (stored {stored:016x}, computed {computed:016x}): the file is damaged")]
    Checksum {
        /// File name.
        file: String,
        /// Stored checksum.
        stored: u64,
        /// Computed checksum.
        computed: u64,
    },
}

impl FormatError {
    /// Builds a [`FormatError::Damaged`].
    pub fn damaged(file: &str, reason: impl Into<String>) -> FormatError {
        FormatError::Damaged { file: file.to_string(), reason: reason.into() }
    }
}

fn kind_str(kind: &[u8]) -> String {
    String::from_utf8_lossy(kind).trim_end_matches('\0').to_string()
}

/// Reads a little-endian u64 at `off`; `None` when out of bounds.
pub(crate) fn read_u64(bytes: &[u8], off: usize) -> Option<u64> {
    let b = bytes.get(off..off.checked_add(8)?)?;
    Some(u64::from_le_bytes(b.try_into().ok()?))
}

/// Reads a little-endian unsigned integer of `width` bytes (4 or 8) at index `i` of a
/// packed array; `None` when out of bounds.
#[inline]
pub(crate) fn read_uint(bytes: &[u8], i: u64, width: usize) -> Option<u64> {
    let start = usize::try_from(i).ok()?.checked_mul(width)?;
    let b = bytes.get(start..start.checked_add(width)?)?;
    match width {
        4 => Some(u32::from_le_bytes(b.try_into().ok()?) as u64),
        8 => Some(u64::from_le_bytes(b.try_into().ok()?)),
        _ => None,
    }
}

/// Writes `value` as a little-endian integer of `width` bytes (4 or 8).
pub(crate) fn write_uint<W: Write>(w: &mut W, value: u64, width: usize) -> io::Result<()> {
    match width {
        4 => {
            let v =
                u32::try_from(value).map_err(|_| io::Error::other(format!("{value} does not fit a 4-byte field")))?;
            w.write_all(&v.to_le_bytes())
        }
        _ => w.write_all(&value.to_le_bytes()),
    }
}

/// The narrowest integer width (4 or 8 bytes) that holds every value up to `max`.
pub fn uint_width(max: u64) -> usize {
    if max <= u32::MAX as u64 { 4 } else { 8 }
}

/// Name, size and checksum of a finished file, for the manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileSummary {
    /// File name inside the index directory.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// XXH3-64 of the whole file.
    pub xxh3: u64,
}

/// Writes one framed index file: a header placeholder, the body as it streams in,
/// then the real header and the checksummed footer. Must be finished with
/// [`FileWriter::finish`]; a dropped writer leaves an invalid file behind (the build
/// directory is then discarded as a whole).
pub struct FileWriter {
    out: BufWriter<File>,
    path: PathBuf,
    kind: Kind,
    body_len: u64,
}

impl FileWriter {
    /// Creates `path` for a file of `kind`.
    pub fn create(path: &Path, kind: Kind) -> io::Result<FileWriter> {
        let file = File::create(path)?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        out.write_all(&[0u8; HEADER_LEN])?;
        Ok(FileWriter { out, path: path.to_path_buf(), kind, body_len: 0 })
    }

    /// Body bytes written so far.
    #[cfg(test)]
    pub fn body_len(&self) -> u64 {
        self.body_len
    }

    /// Appends the whole content of `file` (from its start) to the body.
    pub fn append_file(&mut self, file: &mut File) -> io::Result<()> {
        file.seek(SeekFrom::Start(0))?;
        let copied = io::copy(&mut BufReader::with_capacity(1 << 20, file), &mut self.out)?;
        self.body_len += copied;
        Ok(())
    }

    /// Overwrites body bytes `[offset, offset + bytes.len())`, already written, with
    /// `bytes`: for a field at the start of the body that is only known at the end (such
    /// as a maximum over everything written). The body length does not change.
    pub fn patch_body(&mut self, offset: u64, bytes: &[u8]) -> io::Result<()> {
        if offset.checked_add(bytes.len() as u64).is_none_or(|end| end > self.body_len) {
            return Err(io::Error::other(format!("cannot patch body bytes at {offset}: not written yet")));
        }
        self.out.flush()?;
        let file = self.out.get_mut();
        file.seek(SeekFrom::Start(HEADER_LEN as u64 + offset))?;
        file.write_all(bytes)?;
        file.seek(SeekFrom::End(0))?;
        Ok(())
    }

    /// Writes the header with `params`, checksums the file, writes the footer and
    /// syncs the file to disk.
    pub fn finish(self, params: [u64; 4]) -> io::Result<FileSummary> {
        let FileWriter { out, path, kind, body_len } = self;
        let mut file = out.into_inner().map_err(|e| e.into_error())?;
        let header = encode_header(kind, body_len, params);
        file.seek(SeekFrom::Start(0))?;
        file.write_all(&header)?;
        // Checksum by reading back what was written: the header is only known now, and
        // the body is still in the page cache, so this costs a memory-speed pass.
        let mut hasher = Xxh3::new();
        let mut reader = BufReader::with_capacity(1 << 20, File::open(&path)?);
        let mut remaining = HEADER_LEN as u64 + body_len;
        let mut buf = vec![0u8; 1 << 20];
        while remaining > 0 {
            let want = remaining.min(buf.len() as u64) as usize;
            let chunk = buf.get_mut(..want).unwrap_or_default();
            reader.read_exact(chunk)?;
            hasher.update(chunk);
            remaining -= want as u64;
        }
        let checksum = hasher.digest();
        let mut footer = [0u8; FOOTER_LEN];
        footer[..8].copy_from_slice(&checksum.to_le_bytes());
        footer[8..].copy_from_slice(&FOOTER_MAGIC);
        file.seek(SeekFrom::End(0))?;
        file.write_all(&footer)?;
        file.sync_all()?;
        hasher.update(&footer);
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        Ok(FileSummary { name, size: HEADER_LEN as u64 + body_len + FOOTER_LEN as u64, xxh3: hasher.digest() })
    }
}

impl Write for FileWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.out.write(buf)?;
        self.body_len += n as u64;
        Ok(n)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.out.write_all(buf)?;
        self.body_len += buf.len() as u64;
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Copies the framed file in `view`, a file of an older format version whose frame was
/// checked, to `path` as a file of kind `kind` and of [`FORMAT_VERSION`]: the same body
/// and header parameters, the new version in the header and a new footer checksum. For
/// the files whose layout did not change between versions.
pub fn rewrite_version(view: &FileView, kind: Kind, path: &Path) -> io::Result<FileSummary> {
    let mut writer = FileWriter::create(path, kind)?;
    writer.write_all(view.body())?;
    writer.finish(view.params())
}

fn encode_header(kind: Kind, body_len: u64, params: [u64; 4]) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[OFF_MAGIC..OFF_MAGIC + 8].copy_from_slice(&FILE_MAGIC);
    h[OFF_KIND..OFF_KIND + 4].copy_from_slice(&kind);
    h[OFF_VERSION..OFF_VERSION + 2].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    h[OFF_HEADER_LEN..OFF_HEADER_LEN + 2].copy_from_slice(&(HEADER_LEN as u16).to_le_bytes());
    h[OFF_BODY_LEN..OFF_BODY_LEN + 8].copy_from_slice(&body_len.to_le_bytes());
    for (i, p) in params.iter().enumerate() {
        let off = OFF_PARAMS + 8 * i;
        h[off..off + 8].copy_from_slice(&p.to_le_bytes());
    }
    h
}

/// A framed index file whose header and footer were checked; gives the body and the
/// kind-specific parameters.
#[derive(Clone, Debug)]
pub struct FileView {
    name: String,
    file: Bytes,
    body: Bytes,
    params: [u64; 4],
}

impl FileView {
    /// Checks the frame of a file that builds write now ([`FORMAT_VERSION`]); see
    /// [`FileView::parse_version`].
    #[cfg(test)]
    pub fn parse(name: &str, file: Bytes, expected: Kind) -> Result<FileView, FormatError> {
        FileView::parse_version(name, file, expected, FORMAT_VERSION)
    }

    /// Checks the frame of `file`, a file of an index of format `version`, in constant
    /// time: length, magic, kind, version (readable, and the index's), header length,
    /// body length against the file length, reserved bytes, footer magic.
    pub fn parse_version(name: &str, file: Bytes, expected: Kind, version: u16) -> Result<FileView, FormatError> {
        let bytes: &[u8] = &file;
        let min = (HEADER_LEN + FOOTER_LEN) as u64;
        if (bytes.len() as u64) < min {
            return Err(FormatError::TooShort { file: name.to_string(), len: bytes.len() as u64, min });
        }
        let field = |r: std::ops::Range<usize>| bytes.get(r).unwrap_or_default();
        if field(OFF_MAGIC..OFF_MAGIC + 8) != FILE_MAGIC {
            return Err(FormatError::BadMagic { file: name.to_string() });
        }
        let kind = field(OFF_KIND..OFF_KIND + 4);
        if kind != expected {
            return Err(FormatError::WrongKind {
                file: name.to_string(),
                expected: kind_str(&expected),
                got: kind_str(kind),
            });
        }
        let got = u16::from_le_bytes(field(OFF_VERSION..OFF_VERSION + 2).try_into().unwrap_or([0; 2]));
        if !is_readable_version(got as u64) {
            return Err(FormatError::UnsupportedVersion { file: name.to_string(), got, supported: FORMAT_VERSION });
        }
        if got != version {
            return Err(FormatError::VersionMismatch { file: name.to_string(), got, index: version });
        }
        let header_len = u16::from_le_bytes(field(OFF_HEADER_LEN..OFF_HEADER_LEN + 2).try_into().unwrap_or([0; 2]));
        if header_len as usize != HEADER_LEN {
            return Err(FormatError::damaged(name, format!("header length {header_len}, expected {HEADER_LEN}")));
        }
        let body_len = read_u64(bytes, OFF_BODY_LEN).unwrap_or(u64::MAX);
        let expected_len = body_len.checked_add(min);
        if expected_len != Some(bytes.len() as u64) {
            return Err(FormatError::damaged(
                name,
                format!("header says {body_len} body bytes but the file is {} bytes long", bytes.len()),
            ));
        }
        if read_u64(bytes, OFF_RESERVED) != Some(0) {
            return Err(FormatError::damaged(name, "reserved header bytes are not zero"));
        }
        if field(bytes.len() - 8..bytes.len()) != FOOTER_MAGIC {
            return Err(FormatError::damaged(name, "footer magic missing (truncated or overwritten file)"));
        }
        let mut params = [0u64; 4];
        for (i, p) in params.iter_mut().enumerate() {
            *p = read_u64(bytes, OFF_PARAMS + 8 * i).unwrap_or(0);
        }
        let body = file
            .slice(HEADER_LEN..bytes.len() - FOOTER_LEN)
            .ok_or_else(|| FormatError::damaged(name, "body out of bounds"))?;
        Ok(FileView { name: name.to_string(), file, body, params })
    }

    /// The body bytes.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// The kind-specific header parameters.
    pub fn params(&self) -> [u64; 4] {
        self.params
    }

    /// Recomputes the footer checksum over the whole file.
    pub fn verify_checksum(&self) -> Result<(), FormatError> {
        let bytes: &[u8] = &self.file;
        let split = bytes.len() - FOOTER_LEN;
        let computed = xxhash_rust::xxh3::xxh3_64(bytes.get(..split).unwrap_or_default());
        let stored = read_u64(bytes, split).unwrap_or(0);
        if computed != stored {
            return Err(FormatError::Checksum { file: self.name.clone(), stored, computed });
        }
        Ok(())
    }

    /// A damaged-file error for this file.
    pub fn damaged(&self, reason: impl Into<String>) -> FormatError {
        FormatError::damaged(&self.name, reason)
    }
}

/// Checks that a section of `count` entries of `width` bytes starting at `offset` lies
/// inside a body of `body_len` bytes; returns its end offset.
pub(crate) fn section_end(
    view: &FileView,
    offset: u64,
    count: u64,
    width: u64,
    what: &str,
) -> Result<u64, FormatError> {
    count
        .checked_mul(width)
        .and_then(|len| len.checked_add(offset))
        .filter(|end| *end <= view.body().len() as u64)
        .ok_or_else(|| view.damaged(format!("{what} ({count} entries of {width} bytes) runs past the end of the file")))
}

/// A whole framed file (header, `body`, footer with a valid checksum), for the tests and
/// fuzz targets that build damaged files which the frame check lets through.
pub(crate) fn framed_bytes(kind: Kind, params: [u64; 4], body: &[u8]) -> Vec<u8> {
    let mut file = encode_header(kind, body.len() as u64, params).to_vec();
    file.extend_from_slice(body);
    let checksum = xxhash_rust::xxh3::xxh3_64(&file);
    file.extend_from_slice(&checksum.to_le_bytes());
    file.extend_from_slice(&FOOTER_MAGIC);
    file
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_sample(dir: &Path, body: &[u8]) -> (PathBuf, FileSummary) {
        let path = dir.join("sample.bin");
        let mut w = FileWriter::create(&path, *b"TEST").unwrap();
        w.write_all(body).unwrap();
        let summary = w.finish([1, 2, 3, 4]).unwrap();
        (path, summary)
    }

    #[test]
    fn frame_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let (path, summary) = write_sample(dir.path(), b"payload");
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(summary.size, bytes.len() as u64);
        assert_eq!(summary.xxh3, xxhash_rust::xxh3::xxh3_64(&bytes));
        let view = FileView::parse("sample.bin", Bytes::from_vec(bytes), *b"TEST").unwrap();
        assert_eq!(&**view.body(), b"payload");
        assert_eq!(view.params(), [1, 2, 3, 4]);
        view.verify_checksum().unwrap();
    }

    #[test]
    fn frame_damage_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let (path, _) = write_sample(dir.path(), b"payload");
        let good = std::fs::read(&path).unwrap();
        let parse = |b: Vec<u8>| FileView::parse("sample.bin", Bytes::from_vec(b), *b"TEST");

        assert!(matches!(parse(good[..10].to_vec()), Err(FormatError::TooShort { .. })));
        let mut bad = good.clone();
        bad[0] ^= 1;
        assert!(matches!(parse(bad), Err(FormatError::BadMagic { .. })));
        assert!(matches!(
            FileView::parse("x", Bytes::from_vec(good.clone()), *b"ROWS"),
            Err(FormatError::WrongKind { .. })
        ));
        let mut bad = good.clone();
        bad[OFF_VERSION] = 9;
        assert!(matches!(parse(bad), Err(FormatError::UnsupportedVersion { got: 9, .. })));
        assert!(matches!(parse(good[..good.len() - 1].to_vec()), Err(FormatError::Damaged { .. })));
        let mut bad = good.clone();
        bad[HEADER_LEN + 2] ^= 0x40;
        let view = parse(bad).unwrap();
        let err = view.verify_checksum().unwrap_err();
        assert!(err.to_string().contains("sample.bin: checksum mismatch"), "{err}");
    }

    #[test]
    fn rewrite_version_keeps_body_and_params() {
        let dir = tempfile::tempdir().unwrap();
        let (path, _) = write_sample(dir.path(), b"payload");
        let mut old = std::fs::read(&path).unwrap();
        old[OFF_VERSION..OFF_VERSION + 2].copy_from_slice(&1u16.to_le_bytes());
        let split = old.len() - FOOTER_LEN;
        let sum = xxhash_rust::xxh3::xxh3_64(&old[..split]);
        old[split..split + 8].copy_from_slice(&sum.to_le_bytes());
        let view = FileView::parse_version("sample.bin", Bytes::from_vec(old), *b"TEST", 1).unwrap();
        let new_path = dir.path().join("new.bin");
        let summary = rewrite_version(&view, *b"TEST", &new_path).unwrap();
        let new = std::fs::read(&new_path).unwrap();
        assert_eq!(summary.size, new.len() as u64);
        assert_eq!(summary.xxh3, xxhash_rust::xxh3::xxh3_64(&new));
        let view = FileView::parse("new.bin", Bytes::from_vec(new), *b"TEST").unwrap();
        view.verify_checksum().unwrap();
        assert_eq!(&**view.body(), b"payload");
        assert_eq!(view.params(), [1, 2, 3, 4]);
    }

    #[test]
    fn every_kind_tag_is_distinct() {
        let mut index_kinds: Vec<Kind> = Vec::new();
        for mode in HashMode::ALL {
            for version in [1, 2] {
                index_kinds.extend(index_files(version, mode, AssetSet::EMPTY).into_iter().map(|(_, kind)| kind));
            }
        }
        index_kinds.extend(optional_index_files().into_iter().map(|(_, kind)| kind));
        index_kinds.push(column::KIND);
        let mut generation = GENERATION_KINDS.to_vec();
        generation.sort();
        generation.dedup();
        assert_eq!(generation.len(), GENERATION_KINDS.len(), "two generation-level kinds share a tag");
        for kind in GENERATION_KINDS {
            assert!(!index_kinds.contains(&kind), "{} is also an index file kind", kind_str(&kind));
        }
    }

    #[test]
    fn uint_helpers() {
        assert_eq!(uint_width(u32::MAX as u64), 4);
        assert_eq!(uint_width(u32::MAX as u64 + 1), 8);
        let mut buf = Vec::new();
        write_uint(&mut buf, 7, 4).unwrap();
        write_uint(&mut buf, 1 << 40, 8).unwrap();
        assert_eq!(read_uint(&buf, 0, 4), Some(7));
        assert_eq!(read_uint(&buf[4..], 0, 8), Some(1 << 40));
        assert_eq!(read_uint(&buf, 3, 4), None);
        assert!(write_uint(&mut buf, 1 << 40, 4).is_err());
    }
}
