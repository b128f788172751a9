//! The build catalog (SPEC §3): which sources (breaches) exist, their metadata, and the
//! dump files of each. Loading validates everything a build needs before any work
//! starts: a bad catalog or a missing file is an error here, never half-way through.
//!
//! Catalog JSON (unknown keys are errors, so typos are caught):
//!
//! ```json
//! {"sources": [
//!   {"id": 1, "name": "examplecorp-2024", "title": "ExampleCorp Data Breach 2024",
//!    "date": "2024-03-15", "description": "Database exposed via misconfigured server",
//!    "severity": "high", "publish_date": "2024-05-01",
//!    "files": [{"path": "examplecorp.csv.gz", "format": "csv", "delimiter": ";",
//!               "columns": ["email", "password"]}]}
//! ]}
//! ```
//!
//! - `id` (u32) and `name` are unique; a name is a slug: lowercase ASCII letters,
//!   digits, `-`, `_` and `.`.
//! - `title` defaults to the name when the key is absent; an empty title is an error.
//! - `description` defaults to empty; `severity` is a label (`high`) or a score (`20`).
//! - `date` and `publish_date` are `YYYY-MM-DD`.
//! - Have I Been Pwned fields (SPEC §12), all optional, stored in the index so the server
//!   needs no catalog: `domain` (a domain name, checked and normalized by the e-mail
//!   domain rule of [`crate::normalize_domain`]), `added_date` and `modified_date`
//!   (`YYYY-MM-DD`; `added_date` defaults to the publish date, `modified_date` to the
//!   added date), `verified` (default `true`), `sensitive`, `fabricated`, `retired`,
//!   `spam_list`, `malware`, `stealer_log` (default `false`), `logo_path` (a non-blank
//!   string: a URL or path of the breach's logo) and `data_classes` (a non-empty list
//!   of non-blank names, replacing the classes derived from the records' assets, see
//!   [`crate::data_classes_of`]).
//! - A file's `path` is relative to the catalog's directory; `format` (`csv`, `jsonl`,
//!   `combo`) may be left out when the extension tells it (`.csv`, `.jsonl`/`.ndjson`,
//!   `.txt` for combo, each optionally followed by `.gz`); `delimiter` (`,` `;` `\t` or
//!   `tab`, `|`) and `columns` (for a CSV file without a header row) are CSV-only.

use crate::date::Date;
use crate::ingest::{Compression, DumpFile, DumpFormat, DumpReader, IngestError};
use crate::severity::Severity;
use serde::Deserialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// One source (breach) of the catalog.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceSpec {
    /// Unique numeric id.
    pub id: u32,
    /// Unique slug.
    pub name: String,
    /// Human title (the name when the catalog gives none).
    pub title: String,
    /// Breach date.
    pub date: Date,
    /// Description (empty when the catalog gives none).
    pub description: String,
    /// Severity override for every record of the source.
    pub severity: Option<Severity>,
    /// When the source was added; the build date when absent.
    pub publish_date: Option<Date>,
    /// The dump files.
    pub files: Vec<DumpFile>,
    /// The breached site's domain, normalized (SPEC §12 `Domain`).
    pub domain: Option<String>,
    /// When the breach was added to the service; the publish date when absent.
    pub added_date: Option<Date>,
    /// When the breach was last modified; the added date when absent.
    pub modified_date: Option<Date>,
    /// Whether the breach is verified (default `true`).
    pub verified: bool,
    /// Whether the breach is sensitive (default `false`).
    pub sensitive: bool,
    /// Whether the breach is fabricated (default `false`).
    pub fabricated: bool,
    /// Whether the breach is retired (default `false`).
    pub retired: bool,
    /// Whether the source is a spam list (default `false`).
    pub spam_list: bool,
    /// Whether the data came from malware (default `false`).
    pub malware: bool,
    /// Whether the source is a stealer log (default `false`).
    pub stealer_log: bool,
    /// URL or path of the breach's logo.
    pub logo_path: Option<String>,
    /// Data class names replacing the ones derived from the assets.
    pub data_classes: Option<Vec<String>>,
}

/// A validated catalog.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Catalog {
    /// The catalog file.
    pub path: PathBuf,
    /// Sources in catalog order.
    pub sources: Vec<SourceSpec>,
}

/// Why a catalog cannot be used. Each message names the catalog and, where it applies,
/// the source and the file (as written in the catalog); I/O, JSON and dump-file causes are
/// the [`std::error::Error::source`], so print the whole chain.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CatalogError {
    /// The catalog file cannot be read.
    #[error("cannot read catalog {path}")]
    Read {
        /// The catalog file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// Not JSON, or not of the catalog's shape (wrong types, unknown or missing keys).
    #[error("catalog {path} is not a valid catalog (check the JSON syntax and the key names)")]
    Syntax {
        /// The catalog file.
        path: PathBuf,
        /// The parser's error, with line and column.
        source: serde_json::Error,
    },
    /// `sources` is empty.
    #[error("catalog {path}: \"sources\" is empty; list at least one source")]
    NoSources {
        /// The catalog file.
        path: PathBuf,
    },
    /// Two sources share an id.
    #[error("catalog {path}: sources '{first}' and '{second}' both have id {id}; give each source its own id")]
    DuplicateId {
        /// The catalog file.
        path: PathBuf,
        /// The shared id.
        id: u32,
        /// The first source with it.
        first: String,
        /// The second source with it.
        second: String,
    },
    /// Two sources share a name.
    #[error("catalog {path}: two sources are named '{name}'; source names must be unique")]
    DuplicateName {
        /// The catalog file.
        path: PathBuf,
        /// The shared name.
        name: String,
    },
    /// A name that is not a slug.
    #[error(
        "catalog {path}: source name '{name}' is not a slug; use only lowercase ASCII letters, digits, '-', '_' and '.'"
    )]
    InvalidName {
        /// The catalog file.
        path: PathBuf,
        /// The name as given.
        name: String,
    },
    /// An empty or blank title.
    #[error(
        "catalog {path}, source '{source_name}': \"title\" is empty; give a title, or leave the key out to use the name"
    )]
    EmptyTitle {
        /// The catalog file.
        path: PathBuf,
        /// The source.
        source_name: String,
    },
    /// A date that is not `YYYY-MM-DD`.
    #[error("catalog {path}, source '{source_name}': \"{field}\" is '{value}', not a date of the form YYYY-MM-DD")]
    InvalidDate {
        /// The catalog file.
        path: PathBuf,
        /// The source.
        source_name: String,
        /// `date`, `publish_date`, `added_date` or `modified_date`.
        field: &'static str,
        /// The value as given.
        value: String,
    },
    /// A Have I Been Pwned field with an unusable value (`domain`, `logo_path`,
    /// `data_classes`).
    #[error("catalog {path}, source '{source_name}': \"{field}\" is {value}: {reason}")]
    InvalidField {
        /// The catalog file.
        path: PathBuf,
        /// The source.
        source_name: String,
        /// The field.
        field: &'static str,
        /// The value as given (JSON).
        value: String,
        /// What is wrong and what to do.
        reason: String,
    },
    /// A severity that is not a known label or score.
    #[error(
        "catalog {path}, source '{source_name}': \"severity\" is {value}; use low, medium, high, critical or 2, 5, 20, 25"
    )]
    InvalidSeverity {
        /// The catalog file.
        path: PathBuf,
        /// The source.
        source_name: String,
        /// The value as given (JSON).
        value: String,
    },
    /// `files` is empty.
    #[error("catalog {path}, source '{source_name}': \"files\" is empty; list at least one dump file")]
    NoFiles {
        /// The catalog file.
        path: PathBuf,
        /// The source.
        source_name: String,
    },
    /// A file entry with an empty path.
    #[error("catalog {path}, source '{source_name}': a file has an empty \"path\"")]
    EmptyFilePath {
        /// The catalog file.
        path: PathBuf,
        /// The source.
        source_name: String,
    },
    /// A `format` that is not csv, jsonl or combo.
    #[error(
        "catalog {path}, source '{source_name}', file '{file}': unknown format '{format}'; use csv, jsonl or combo"
    )]
    UnknownFormat {
        /// The catalog file.
        path: PathBuf,
        /// The source.
        source_name: String,
        /// The file as written.
        file: String,
        /// The format as given.
        format: String,
    },
    /// No `format` and an extension that does not tell it.
    #[error(
        "catalog {path}, source '{source_name}', file '{file}': the extension does not tell the format; add \"format\": \"csv\", \"jsonl\" or \"combo\" (or name the file .csv, .jsonl, .ndjson or .txt)"
    )]
    UnknownExtension {
        /// The catalog file.
        path: PathBuf,
        /// The source.
        source_name: String,
        /// The file as written.
        file: String,
    },
    /// A compression this build cannot read.
    #[error(
        "catalog {path}, source '{source_name}', file '{file}': {compression} compression is not supported (support is not built in); decompress the file or recompress it with gzip"
    )]
    UnsupportedCompression {
        /// The catalog file.
        path: PathBuf,
        /// The source.
        source_name: String,
        /// The file as written.
        file: String,
        /// `zstd`, `bzip2`, `xz`, `zip` or `7z`.
        compression: &'static str,
    },
    /// A delimiter other than `,` `;` tab `|`.
    #[error(
        "catalog {path}, source '{source_name}', file '{file}': delimiter {delimiter:?} is not supported; use \",\", \";\", \"\\t\" (or \"tab\") or \"|\""
    )]
    InvalidDelimiter {
        /// The catalog file.
        path: PathBuf,
        /// The source.
        source_name: String,
        /// The file as written.
        file: String,
        /// The delimiter as given.
        delimiter: String,
    },
    /// `delimiter` or `columns` on a file that is not CSV.
    #[error(
        "catalog {path}, source '{source_name}', file '{file}': \"{option}\" applies only to csv files, and this file is {format}"
    )]
    OptionNotForFormat {
        /// The catalog file.
        path: PathBuf,
        /// The source.
        source_name: String,
        /// The file as written.
        file: String,
        /// `delimiter` or `columns`.
        option: &'static str,
        /// The file's format.
        format: &'static str,
    },
    /// A dump file that cannot be used (missing, not a regular file, bad CSV header, ...).
    #[error("catalog {path}, source '{source_name}'")]
    File {
        /// The catalog file.
        path: PathBuf,
        /// The source.
        source_name: String,
        /// What is wrong with the file (names the file as written).
        #[source]
        error: Box<IngestError>,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCatalog {
    sources: Vec<RawSource>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSource {
    id: u32,
    name: String,
    title: Option<String>,
    date: String,
    #[serde(default)]
    description: String,
    /// A label or a number: checked by `Severity::parse`.
    severity: Option<serde_json::Value>,
    publish_date: Option<String>,
    files: Vec<RawFile>,
    domain: Option<String>,
    added_date: Option<String>,
    modified_date: Option<String>,
    verified: Option<bool>,
    #[serde(default)]
    sensitive: bool,
    #[serde(default)]
    fabricated: bool,
    #[serde(default)]
    retired: bool,
    #[serde(default)]
    spam_list: bool,
    #[serde(default)]
    malware: bool,
    #[serde(default)]
    stealer_log: bool,
    logo_path: Option<String>,
    data_classes: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    path: String,
    format: Option<String>,
    delimiter: Option<String>,
    columns: Option<Vec<String>>,
}

impl Catalog {
    /// Reads and validates a catalog file, and checks that every dump file exists, is a
    /// readable regular file, and (for CSV) has a usable header.
    pub fn load(path: &Path) -> Result<Catalog, CatalogError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| CatalogError::Read { path: path.to_owned(), source })?;
        let raw: RawCatalog =
            serde_json::from_str(&text).map_err(|source| CatalogError::Syntax { path: path.to_owned(), source })?;
        let catalog = Catalog::from_raw(path, raw)?;
        catalog.preflight()?;
        Ok(catalog)
    }

    /// Validates everything that needs no file access.
    fn from_raw(path: &Path, raw: RawCatalog) -> Result<Catalog, CatalogError> {
        if raw.sources.is_empty() {
            return Err(CatalogError::NoSources { path: path.to_owned() });
        }
        let base = path.parent().unwrap_or(Path::new("."));
        let mut ids: HashMap<u32, String> = HashMap::new();
        let mut sources: Vec<SourceSpec> = Vec::with_capacity(raw.sources.len());
        for source in raw.sources {
            let ctx = Ctx { path, source_name: &source.name };
            if !is_slug(&source.name) {
                return Err(CatalogError::InvalidName { path: path.to_owned(), name: source.name });
            }
            if sources.iter().any(|s| s.name == source.name) {
                return Err(CatalogError::DuplicateName { path: path.to_owned(), name: source.name });
            }
            if let Some(first) = ids.insert(source.id, source.name.clone()) {
                return Err(CatalogError::DuplicateId {
                    path: path.to_owned(),
                    id: source.id,
                    first,
                    second: source.name,
                });
            }
            let title = match source.title {
                None => source.name.clone(),
                Some(title) if title.trim().is_empty() => {
                    return Err(CatalogError::EmptyTitle { path: path.to_owned(), source_name: source.name });
                }
                Some(title) => title,
            };
            let date = ctx.date("date", &source.date)?;
            let publish_date = match &source.publish_date {
                Some(text) => Some(ctx.date("publish_date", text)?),
                None => None,
            };
            let severity = match &source.severity {
                None => None,
                Some(value) => Some(ctx.severity(value)?),
            };
            if source.files.is_empty() {
                return Err(CatalogError::NoFiles { path: path.to_owned(), source_name: source.name });
            }
            let files = source.files.iter().map(|file| ctx.file(base, file)).collect::<Result<Vec<_>, _>>()?;
            let optional_date = |field, text: &Option<String>| text.as_deref().map(|t| ctx.date(field, t)).transpose();
            let added_date = optional_date("added_date", &source.added_date)?;
            let modified_date = optional_date("modified_date", &source.modified_date)?;
            let domain = source.domain.as_deref().map(|d| ctx.domain(d)).transpose()?;
            let logo_path = source.logo_path.as_deref().map(|l| ctx.logo_path(l)).transpose()?;
            let data_classes = source.data_classes.as_deref().map(|c| ctx.data_classes(c)).transpose()?;
            sources.push(SourceSpec {
                id: source.id,
                title,
                date,
                description: source.description,
                severity,
                publish_date,
                files,
                domain,
                added_date,
                modified_date,
                verified: source.verified.unwrap_or(true),
                sensitive: source.sensitive,
                fabricated: source.fabricated,
                retired: source.retired,
                spam_list: source.spam_list,
                malware: source.malware,
                stealer_log: source.stealer_log,
                logo_path,
                data_classes,
                name: source.name,
            });
        }
        Ok(Catalog { path: path.to_owned(), sources })
    }

    /// Opens every dump file as the build will, so that a missing file or a bad CSV
    /// header stops the build before any work.
    fn preflight(&self) -> Result<(), CatalogError> {
        for source in &self.sources {
            for file in &source.files {
                DumpReader::open(file).map_err(|error| CatalogError::File {
                    path: self.path.clone(),
                    source_name: source.name.clone(),
                    error: Box::new(error),
                })?;
            }
        }
        Ok(())
    }
}

/// Lowercase ASCII letters, digits, `-`, `_` and `.`; not empty.
fn is_slug(name: &str) -> bool {
    !name.is_empty()
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.'))
}

/// The catalog and source an error is about.
struct Ctx<'a> {
    path: &'a Path,
    source_name: &'a str,
}

impl Ctx<'_> {
    fn date(&self, field: &'static str, text: &str) -> Result<Date, CatalogError> {
        text.parse::<Date>().map_err(|_| CatalogError::InvalidDate {
            path: self.path.to_owned(),
            source_name: self.source_name.to_owned(),
            field,
            value: text.to_owned(),
        })
    }

    fn invalid(&self, field: &'static str, value: impl serde::Serialize, reason: &str) -> CatalogError {
        CatalogError::InvalidField {
            path: self.path.to_owned(),
            source_name: self.source_name.to_owned(),
            field,
            value: serde_json::to_string(&value).unwrap_or_default(),
            reason: reason.to_owned(),
        }
    }

    fn domain(&self, text: &str) -> Result<String, CatalogError> {
        crate::normalize::normalize_domain(text).map_err(|e| {
            self.invalid("domain", text, &format!("not a domain name (the domain of an e-mail address {e})"))
        })
    }

    fn logo_path(&self, text: &str) -> Result<String, CatalogError> {
        if text.trim().is_empty() || text.chars().any(char::is_control) {
            return Err(self.invalid(
                "logo_path",
                text,
                "give the URL or path of the logo without control characters, or leave the key out",
            ));
        }
        Ok(text.to_owned())
    }

    fn data_classes(&self, classes: &[String]) -> Result<Vec<String>, CatalogError> {
        if classes.is_empty() {
            return Err(self.invalid(
                "data_classes",
                classes,
                "list at least one class, or leave the key out to derive them from the records",
            ));
        }
        if classes.iter().any(|c| c.trim().is_empty() || c.chars().any(char::is_control)) {
            return Err(self.invalid(
                "data_classes",
                classes,
                "every class must be a non-blank name without control characters",
            ));
        }
        Ok(classes.iter().map(|c| c.trim().to_owned()).collect())
    }

    fn severity(&self, value: &serde_json::Value) -> Result<Severity, CatalogError> {
        let parsed = match value {
            serde_json::Value::String(text) => Severity::parse(text),
            serde_json::Value::Number(number) => Severity::parse(&number.to_string()),
            _ => None,
        };
        parsed.ok_or_else(|| CatalogError::InvalidSeverity {
            path: self.path.to_owned(),
            source_name: self.source_name.to_owned(),
            value: value.to_string(),
        })
    }

    fn file(&self, base: &Path, raw: &RawFile) -> Result<DumpFile, CatalogError> {
        if raw.path.trim().is_empty() {
            return Err(CatalogError::EmptyFilePath {
                path: self.path.to_owned(),
                source_name: self.source_name.to_owned(),
            });
        }
        let lower = raw.path.to_ascii_lowercase();
        for (extension, compression) in
            [(".zst", "zstd"), (".zstd", "zstd"), (".bz2", "bzip2"), (".xz", "xz"), (".zip", "zip"), (".7z", "7z")]
        {
            if lower.ends_with(extension) {
                return Err(CatalogError::UnsupportedCompression {
                    path: self.path.to_owned(),
                    source_name: self.source_name.to_owned(),
                    file: raw.path.clone(),
                    compression,
                });
            }
        }
        let (inner, compression) = match lower.strip_suffix(".gz") {
            Some(inner) => (inner, Compression::Gzip),
            None => (lower.as_str(), Compression::None),
        };
        let format = match &raw.format {
            Some(format) => DumpFormat::parse(format).ok_or_else(|| CatalogError::UnknownFormat {
                path: self.path.to_owned(),
                source_name: self.source_name.to_owned(),
                file: raw.path.clone(),
                format: format.clone(),
            })?,
            None => format_of_extension(inner).ok_or_else(|| CatalogError::UnknownExtension {
                path: self.path.to_owned(),
                source_name: self.source_name.to_owned(),
                file: raw.path.clone(),
            })?,
        };
        let csv_only = |option: &'static str| CatalogError::OptionNotForFormat {
            path: self.path.to_owned(),
            source_name: self.source_name.to_owned(),
            file: raw.path.clone(),
            option,
            format: format.name(),
        };
        if format != DumpFormat::Csv {
            if raw.delimiter.is_some() {
                return Err(csv_only("delimiter"));
            }
            if raw.columns.is_some() {
                return Err(csv_only("columns"));
            }
        }
        let delimiter = match raw.delimiter.as_deref() {
            None | Some(",") => b',',
            Some(";") => b';',
            Some("\t") => b'\t',
            Some(tab) if tab.eq_ignore_ascii_case("tab") => b'\t',
            Some("|") => b'|',
            Some(other) => {
                return Err(CatalogError::InvalidDelimiter {
                    path: self.path.to_owned(),
                    source_name: self.source_name.to_owned(),
                    file: raw.path.clone(),
                    delimiter: other.to_owned(),
                });
            }
        };
        Ok(DumpFile {
            display: raw.path.clone(),
            path: base.join(&raw.path),
            format,
            compression,
            delimiter,
            columns: raw.columns.clone(),
        })
    }
}

/// The format a (lower-cased, `.gz`-stripped) file name implies.
fn format_of_extension(name: &str) -> Option<DumpFormat> {
    let (_, extension) = name.rsplit_once('.')?;
    match extension {
        "csv" => Some(DumpFormat::Csv),
        "jsonl" | "ndjson" => Some(DumpFormat::Jsonl),
        "txt" => Some(DumpFormat::Combo),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    /// The message with its causes, as the CLI prints it.
    fn chain(error: &CatalogError) -> String {
        let mut text = error.to_string();
        let mut cause = error.source();
        while let Some(inner) = cause {
            text.push_str(": ");
            text.push_str(&inner.to_string());
            cause = inner.source();
        }
        text
    }

    struct Fixture {
        dir: tempfile::TempDir,
    }

    impl Fixture {
        fn new() -> Fixture {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join("a.csv"), "email,password\nx@y.z,pw\n").unwrap();
            std::fs::write(dir.path().join("b.txt"), "x@y.z:pw\n").unwrap();
            Fixture { dir }
        }

        fn write(&self, name: &str, bytes: &[u8]) {
            std::fs::write(self.dir.path().join(name), bytes).unwrap();
        }

        fn load(&self, json: &str) -> Result<Catalog, CatalogError> {
            let path = self.dir.path().join("catalog.json");
            std::fs::write(&path, json).unwrap();
            Catalog::load(&path)
        }

        fn err(&self, json: &str) -> String {
            let message = chain(&self.load(json).unwrap_err());
            let catalog = self.dir.path().join("catalog.json");
            message.replace(catalog.to_str().unwrap(), "CAT")
        }
    }

    /// One source with the given extra keys and files.
    fn one(extra: &str, files: &str) -> String {
        format!(r#"{{"sources": [{{"id": 1, "name": "corp-2024", "date": "2024-03-15"{extra}, "files": {files}}}]}}"#)
    }

    #[test]
    fn loads_a_full_catalog() {
        let fx = Fixture::new();
        let catalog = fx
            .load(
                r#"{"sources": [
                {"id": 1, "name": "examplecorp-2024", "title": "ExampleCorp", "date": "2024-03-15",
                 "description": "d", "severity": "HIGH", "publish_date": "2024-05-01",
                 "files": [{"path": "a.csv"}, {"path": "b.txt"}]},
                {"id": 7, "name": "other_1.x", "date": "2020-01-31", "severity": 25,
                 "files": [{"path": "b.txt", "format": "combo"}]}]}"#,
            )
            .unwrap();
        let [first, second] = &catalog.sources[..] else {
            panic!("two sources expected");
        };
        assert_eq!(first.title, "ExampleCorp");
        assert_eq!(first.date.to_string(), "2024-03-15");
        assert_eq!(first.severity, Some(Severity::High));
        assert_eq!(first.publish_date.map(|d| d.to_string()).as_deref(), Some("2024-05-01"));
        assert_eq!(first.files[0].format, DumpFormat::Csv);
        assert_eq!(first.files[0].path, fx.dir.path().join("a.csv"));
        assert_eq!(first.files[0].display, "a.csv");
        assert_eq!(first.files[0].delimiter, b',');
        assert_eq!(first.files[1].format, DumpFormat::Combo);
        assert_eq!(second.title, "other_1.x", "title defaults to the name");
        assert_eq!(second.description, "");
        assert_eq!(second.severity, Some(Severity::Critical));
        assert_eq!(second.publish_date, None);
    }

    #[test]
    fn have_i_been_pwned_fields_load_with_their_defaults() {
        let fx = Fixture::new();
        let files = r#"[{"path": "a.csv"}]"#;
        let plain = fx.load(&one("", files)).unwrap();
        let s = &plain.sources[0];
        assert!(s.verified, "verified by default");
        assert!(!(s.sensitive || s.fabricated || s.retired || s.spam_list || s.malware || s.stealer_log));
        assert_eq!(
            (&s.domain, s.added_date, s.modified_date, &s.logo_path, &s.data_classes),
            (&None, None, None, &None, &None)
        );
        let full = fx
            .load(&one(
                r#", "domain": " Bücher.DE. ", "added_date": "2024-04-01", "modified_date": "2024-05-02",
                   "verified": false, "sensitive": true, "fabricated": true, "retired": true, "spam_list": true,
                   "malware": true, "stealer_log": true, "logo_path": "https://example.com/logo.png",
                   "data_classes": [" Email addresses ", "Passwords"]"#,
                files,
            ))
            .unwrap();
        let s = &full.sources[0];
        assert_eq!(s.domain.as_deref(), Some("xn--bcher-kva.de"), "normalized like an e-mail domain");
        assert_eq!(s.added_date.map(|d| d.to_string()).as_deref(), Some("2024-04-01"));
        assert_eq!(s.modified_date.map(|d| d.to_string()).as_deref(), Some("2024-05-02"));
        assert!(!s.verified);
        assert!(s.sensitive && s.fabricated && s.retired && s.spam_list && s.malware && s.stealer_log);
        assert_eq!(s.logo_path.as_deref(), Some("https://example.com/logo.png"));
        assert_eq!(s.data_classes.as_deref(), Some(&["Email addresses".to_owned(), "Passwords".to_owned()][..]));
    }

    #[test]
    fn have_i_been_pwned_fields_are_validated() {
        let fx = Fixture::new();
        let files = r#"[{"path": "a.csv"}]"#;
        assert_eq!(
            fx.err(&one(r#", "added_date": "2024-13-01""#, files)),
            "catalog CAT, source 'corp-2024': \"added_date\" is '2024-13-01', not a date of the form YYYY-MM-DD"
        );
        assert!(fx.err(&one(r#", "modified_date": "yesterday""#, files)).contains("\"modified_date\" is 'yesterday'"));
        assert_eq!(
            fx.err(&one(r#", "domain": "-bad-.com""#, files)),
            "catalog CAT, source 'corp-2024': \"domain\" is \"-bad-.com\": not a domain name (the domain of an e-mail address has an invalid domain '-bad-.com')"
        );
        for bad in [r#""""#, r#""a b.com""#, r#""x@y.com""#, r#""a..com""#] {
            let message = fx.err(&one(&format!(r#", "domain": {bad}"#), files));
            assert!(message.contains("\"domain\" is") && message.contains("not a domain name"), "{bad}: {message}");
        }
        assert!(
            fx.err(&one(r#", "logo_path": "  ""#, files))
                .contains("\"logo_path\" is \"  \": give the URL or path of the logo")
        );
        assert!(fx.err(&one(r#", "logo_path": 7"#, files)).contains("expected a string"));
        assert!(
            fx.err(&one(r#", "data_classes": []"#, files))
                .contains("\"data_classes\" is []: list at least one class, or leave the key out")
        );
        assert!(
            fx.err(&one(r#", "data_classes": ["Passwords", " "]"#, files))
                .contains("every class must be a non-blank name")
        );
        assert!(fx.err(&one(r#", "data_classes": "Passwords""#, files)).contains("expected a sequence"));
        assert!(fx.err(&one(r#", "verified": "yes""#, files)).contains("expected a boolean"));
    }

    #[test]
    fn syntax_and_unknown_keys() {
        let fx = Fixture::new();
        assert!(fx.err("{").starts_with("catalog CAT is not a valid catalog"));
        let message = fx.err(&one(r#", "titel": "x""#, r#"[{"path": "a.csv"}]"#));
        assert!(message.contains("unknown field `titel`"), "{message}");
        let message = fx.err(&one("", r#"[{"path": "a.csv", "fromat": "csv"}]"#));
        assert!(message.contains("unknown field `fromat`"), "{message}");
        let message = fx.err(r#"{"sources": [{"id": -1, "name": "a", "date": "2024-01-01", "files": []}]}"#);
        assert!(message.contains("expected u32"), "{message}");
        let message = fx.err(r#"{"sources": [{"id": 1, "date": "2024-01-01", "files": []}]}"#);
        assert!(message.contains("missing field `name`"), "{message}");
        let missing = Catalog::load(&fx.dir.path().join("none.json")).unwrap_err();
        assert!(matches!(missing, CatalogError::Read { .. }));
    }

    #[test]
    fn sources_ids_and_names() {
        let fx = Fixture::new();
        assert_eq!(fx.err(r#"{"sources": []}"#), "catalog CAT: \"sources\" is empty; list at least one source");
        let two = |a: &str, b: &str| format!(r#"{{"sources": [{a}, {b}]}}"#,);
        let src = |id: u32, name: &str| {
            format!(r#"{{"id": {id}, "name": "{name}", "date": "2024-01-01", "files": [{{"path": "a.csv"}}]}}"#)
        };
        assert_eq!(
            fx.err(&two(&src(3, "a"), &src(3, "b"))),
            "catalog CAT: sources 'a' and 'b' both have id 3; give each source its own id"
        );
        assert_eq!(
            fx.err(&two(&src(1, "a"), &src(2, "a"))),
            "catalog CAT: two sources are named 'a'; source names must be unique"
        );
        for bad in ["", "Corp", "corp 2024", "corp/2024", "cörp"] {
            let message = fx.err(&format!(r#"{{"sources": [{}]}}"#, src(1, bad)));
            assert!(message.contains("is not a slug"), "{bad}: {message}");
        }
    }

    #[test]
    fn titles_dates_and_severities() {
        let fx = Fixture::new();
        let files = r#"[{"path": "a.csv"}]"#;
        assert_eq!(
            fx.err(&one(r#", "title": "  ""#, files)),
            "catalog CAT, source 'corp-2024': \"title\" is empty; give a title, or leave the key out to use the name"
        );
        let bad_date = r#"{"sources": [{"id": 1, "name": "c", "date": "2024-02-30", "files": [{"path": "a.csv"}]}]}"#;
        assert_eq!(
            fx.err(bad_date),
            "catalog CAT, source 'c': \"date\" is '2024-02-30', not a date of the form YYYY-MM-DD"
        );
        assert!(fx.err(&one(r#", "publish_date": "01/05/2024""#, files)).contains("\"publish_date\" is '01/05/2024'"));
        assert_eq!(
            fx.err(&one(r#", "severity": 7"#, files)),
            "catalog CAT, source 'corp-2024': \"severity\" is 7; use low, medium, high, critical or 2, 5, 20, 25"
        );
        assert!(fx.err(&one(r#", "severity": "severe""#, files)).contains("\"severity\" is \"severe\""));
        assert!(fx.err(&one(r#", "severity": [20]"#, files)).contains("\"severity\" is [20]"));
    }

    #[test]
    fn file_entries() {
        let fx = Fixture::new();
        assert!(fx.err(&one("", "[]")).ends_with("\"files\" is empty; list at least one dump file"));
        assert!(fx.err(&one("", r#"[{"path": ""}]"#)).contains("a file has an empty \"path\""));
        assert_eq!(
            fx.err(&one("", r#"[{"path": "a.dat"}]"#)),
            "catalog CAT, source 'corp-2024', file 'a.dat': the extension does not tell the format; add \"format\": \"csv\", \"jsonl\" or \"combo\" (or name the file .csv, .jsonl, .ndjson or .txt)"
        );
        assert!(
            fx.err(&one("", r#"[{"path": "a.csv", "format": "xml"}]"#))
                .contains("unknown format 'xml'; use csv, jsonl or combo")
        );
        assert_eq!(
            fx.err(&one("", r#"[{"path": "a.csv.zst"}]"#)),
            "catalog CAT, source 'corp-2024', file 'a.csv.zst': zstd compression is not supported (support is not built in); decompress the file or recompress it with gzip"
        );
        assert!(
            fx.err(&one("", r#"[{"path": "a.csv", "delimiter": ":"}]"#)).contains("delimiter \":\" is not supported")
        );
        assert!(
            fx.err(&one("", r#"[{"path": "b.txt", "delimiter": ";"}]"#))
                .contains("\"delimiter\" applies only to csv files, and this file is combo")
        );
        assert!(
            fx.err(&one("", r#"[{"path": "b.txt", "columns": ["email"]}]"#))
                .contains("\"columns\" applies only to csv files")
        );
    }

    #[test]
    fn formats_compression_and_delimiters_are_inferred_or_given() {
        let fx = Fixture::new();
        for name in ["d.JSONL", "d.ndjson", "d.jsonl.gz"] {
            let bytes = if name.ends_with(".gz") {
                let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                std::io::Write::write_all(&mut enc, b"{}\n").unwrap();
                enc.finish().unwrap()
            } else {
                b"{}\n".to_vec()
            };
            fx.write(name, &bytes);
        }
        fx.write("semi.csv", b"mail;name\n");
        fx.write("tabs.tsv", b"x@y.z\tpw\n");
        let catalog = fx
            .load(&one(
                "",
                r#"[{"path": "d.JSONL"}, {"path": "d.ndjson"}, {"path": "d.jsonl.gz"},
                    {"path": "semi.csv", "delimiter": ";"},
                    {"path": "tabs.tsv", "format": "CSV", "delimiter": "tab", "columns": ["email", "pass"]},
                    {"path": "tabs.tsv", "format": "csv", "delimiter": "\t", "columns": ["login", "x"]}]"#,
            ))
            .unwrap();
        let files = &catalog.sources[0].files;
        assert!(files[..3].iter().all(|f| f.format == DumpFormat::Jsonl));
        assert_eq!(files[2].compression, Compression::Gzip);
        assert_eq!(files[0].compression, Compression::None);
        assert_eq!(files[3].delimiter, b';');
        assert_eq!(files[4].delimiter, b'\t');
        assert_eq!(files[4].columns.as_deref(), Some(&["email".to_owned(), "pass".to_owned()][..]));
        assert_eq!(files[5].delimiter, b'\t');
    }

    #[test]
    fn preflight_checks_every_file() {
        let fx = Fixture::new();
        assert!(
            fx.err(&one("", r#"[{"path": "a.csv"}, {"path": "missing.csv"}]"#))
                .starts_with("catalog CAT, source 'corp-2024': missing.csv: cannot open the file: ")
        );
        std::fs::create_dir(fx.dir.path().join("dir.csv")).unwrap();
        assert_eq!(
            fx.err(&one("", r#"[{"path": "dir.csv"}]"#)),
            "catalog CAT, source 'corp-2024': dir.csv: is a directory, not a regular file"
        );
        if Path::new("/dev/zero").exists() {
            assert!(
                fx.err(&one("", r#"[{"path": "/dev/zero", "format": "csv"}]"#))
                    .ends_with("/dev/zero: is a device, pipe or socket, not a regular file")
            );
        }
        fx.write("dup.csv", b"\xEF\xBB\xBFEmail,pw,mail\n");
        assert_eq!(
            fx.err(&one("", r#"[{"path": "dup.csv"}]"#)),
            "catalog CAT, source 'corp-2024': dup.csv: columns 'Email' and 'mail' both name the asset email; rename or remove one of them"
        );
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut enc, b"password,hash\n").unwrap();
        fx.write("noid.csv.gz", &enc.finish().unwrap());
        assert!(fx.err(&one("", r#"[{"path": "noid.csv.gz"}]"#)).contains(
            "noid.csv.gz: no column names an identifier (email or username); the columns are [password, hash]"
        ));
        assert!(
            fx.err(&one("", r#"[{"path": "a.csv", "columns": ["pw", "hash"]}]"#))
                .contains("no column names an identifier")
        );
        fx.write("u16.txt", b"\xFE\xFF\0a");
        assert!(fx.err(&one("", r#"[{"path": "u16.txt"}]"#)).contains("UTF-16 is not supported"));
        fx.write("notgz.csv.gz", b"email\nx@y.z\n");
        assert!(
            fx.err(&one("", r#"[{"path": "notgz.csv.gz"}]"#))
                .contains("notgz.csv.gz: gzip data is corrupt or truncated at line 1")
        );
    }

    #[test]
    fn relative_paths_resolve_against_the_catalog_directory() {
        let fx = Fixture::new();
        std::fs::create_dir(fx.dir.path().join("sub")).unwrap();
        fx.write("sub/c.csv", b"user\nbob\n");
        let catalog = fx.load(&one("", r#"[{"path": "sub/c.csv"}]"#)).unwrap();
        assert_eq!(catalog.sources[0].files[0].path, fx.dir.path().join("sub/c.csv"));
        assert_eq!(catalog.sources[0].files[0].display, "sub/c.csv");
    }
}
