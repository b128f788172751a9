//! `breachdex-gen`: a deterministic, streaming generator of synthetic breach dumps for
//! the tests and benchmarks of `breachdex`.
//!
//! [`generate`] writes a `catalog.json` (SPEC §3) and dump files in all three input
//! formats (CSV, JSON Lines, combo lists) into a directory. The data imitates real
//! dumps: identities reused across sources with a Zipf-skewed frequency, e-mails spelled
//! differently from source to source (case, Unicode NFD, punycode domains), every asset
//! kind, header aliases, `;`-delimited CSV, CRLF line ends, UTF-8 BOMs, blank lines,
//! exact duplicate lines, and a configurable share of bad lines of every kind.
//!
//! The same [`GenConfig`] always produces byte-identical files. Memory does not grow with
//! the record count: identities are computed on the fly from `(seed, index)` (see
//! [`identity`]), so a benchmark can recompute known hits with [`identity_email`] and
//! known misses with [`miss_email`].
//!
//! Record assignment: the `records` valid records are numbered globally across files in
//! catalog order. Exactly `min(identities, records)` of them, evenly spread, are
//! *coverage* records that introduce identity 0, 1, 2, … in turn and always carry its
//! e-mail; every other record picks its identity from a Zipf distribution over ranks
//! (identity 0 is the most frequent). Hence every identity below
//! [`GenSummary::distinct_identities`] is a guaranteed e-mail hit.

#![warn(missing_docs)]

pub mod gzip;
mod identity;
mod realistic;
pub mod rng;

pub use identity::{Identity, identity, identity_email, identity_username, miss_email, miss_username};

use identity::push_nfd;
use realistic::Vocab;
use rng::{SplitMix64, Zipf, derive};
use std::fmt;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Format of a generated dump file (the `format` of its catalog entry).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// RFC 4180 CSV with a header row.
    Csv,
    /// One JSON object per line.
    Jsonl,
    /// `identifier:password` per line.
    Combo,
}

impl Format {
    /// Every format, in the order sources cycle through them.
    pub const ALL: [Format; 3] = [Format::Csv, Format::Jsonl, Format::Combo];

    /// The catalog name: `csv`, `jsonl` or `combo`.
    pub const fn name(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Jsonl => "jsonl",
            Format::Combo => "combo",
        }
    }

    /// The file extension (`csv`, `jsonl`, `txt`).
    pub const fn extension(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Jsonl => "jsonl",
            Format::Combo => "txt",
        }
    }

    /// Parses a catalog name (`csv`, `jsonl`, `combo`), case-insensitively.
    pub fn parse(name: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.name().eq_ignore_ascii_case(name.trim()))
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How the values of the records are distributed.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum Profile {
    /// The test and benchmark data: every input quirk, but values that no compressor can
    /// shrink and no two records share (random hex hashes, passwords with a random
    /// number, a small fixed vocabulary of names and addresses).
    #[default]
    Synthetic,
    /// Values shaped like real dumps, for size and compression measurements: popular
    /// passwords by a Zipf law, people reusing their own password across sources, unique
    /// passwords, `sha1`/`ntlm` hashes computed from the password (so they repeat with
    /// it), salted `sha256` and `bcrypt` (unique), free-mail and long-tail company
    /// domains, long-tail names, streets and cities, stealer-log URLs of big sites and of
    /// company login pages. Input quirks and bad lines are as in the synthetic profile.
    Realistic,
}

impl Profile {
    /// The command-line name: `synthetic` or `realistic`.
    pub const fn name(self) -> &'static str {
        match self {
            Profile::Synthetic => "synthetic",
            Profile::Realistic => "realistic",
        }
    }

    /// Parses a command-line name, case-insensitively.
    pub fn parse(name: &str) -> Option<Profile> {
        [Profile::Synthetic, Profile::Realistic].into_iter().find(|p| p.name().eq_ignore_ascii_case(name.trim()))
    }
}

/// The identity `index` of `seed` as `profile` generates it. For
/// [`Profile::Synthetic`] this is [`identity`]; in the realistic profile the same index
/// has another e-mail domain, name and address, so benchmarks on realistic data compute
/// their known hits with this function.
pub fn identity_in(profile: Profile, seed: u64, index: u64) -> Identity {
    let mut id = Identity::default();
    match profile {
        Profile::Synthetic => id.fill_with(seed, index, None),
        Profile::Realistic => id.fill_with(seed, index, Some(&Vocab::new())),
    }
    id
}

/// What to generate.
#[derive(Clone, Debug, PartialEq)]
pub struct GenConfig {
    /// Number of valid records to write over all files (exact duplicate lines included,
    /// bad lines and blank lines not included).
    pub records: u64,
    /// Number of sources (breaches) in the catalog (at least 1).
    pub sources: u32,
    /// Seed: the same config gives byte-identical output.
    pub seed: u64,
    /// Share of bad lines among all non-blank lines, in `[0, 0.9]` (default 0.01).
    pub bad_line_ratio: f64,
    /// Number of distinct identities; `None` means `records / 2` (at least 1).
    pub identities: Option<u64>,
    /// Exponent of the Zipf distribution of identity reuse (default 1.0; larger is more
    /// skewed). Must be positive and finite.
    pub zipf_exponent: f64,
    /// Formats to use; the first sources cycle through them so each appears when there
    /// are enough sources. Must not be empty.
    pub formats: Vec<Format>,
    /// Write every dump as `.gz` (gzip with stored, uncompressed blocks: valid for any
    /// reader, but as large as the plain file).
    pub gzip: bool,
    /// Output directory (created if missing; existing files of the same names are
    /// overwritten).
    pub out_dir: PathBuf,
    /// Worker threads; `0` means the available parallelism. Output does not depend on it.
    pub threads: usize,
    /// Value distributions (default [`Profile::Synthetic`]).
    pub profile: Profile,
}

impl GenConfig {
    /// A config with the defaults: 10 sources, seed 42, 1% bad lines, `records / 2`
    /// identities, Zipf exponent 1.0, all formats, no gzip, automatic threads, the
    /// synthetic profile.
    pub fn new(records: u64, out_dir: impl Into<PathBuf>) -> GenConfig {
        GenConfig {
            records,
            sources: 10,
            seed: 42,
            bad_line_ratio: 0.01,
            identities: None,
            zipf_exponent: 1.0,
            formats: Format::ALL.to_vec(),
            gzip: false,
            out_dir: out_dir.into(),
            threads: 0,
            profile: Profile::Synthetic,
        }
    }

    /// The number of distinct identities the pool holds (`identities` or its default).
    pub fn identity_count(&self) -> u64 {
        self.identities.unwrap_or(self.records / 2).max(1)
    }

    fn validate(&self) -> io::Result<()> {
        let invalid = |msg: String| Err(io::Error::new(io::ErrorKind::InvalidInput, msg));
        if self.sources == 0 {
            return invalid("sources must be at least 1".into());
        }
        if !(0.0..=0.9).contains(&self.bad_line_ratio) {
            return invalid(format!("bad_line_ratio {} is outside [0, 0.9]", self.bad_line_ratio));
        }
        if !(self.zipf_exponent.is_finite() && self.zipf_exponent > 0.0) {
            return invalid(format!("zipf_exponent {} must be positive", self.zipf_exponent));
        }
        if self.formats.is_empty() {
            return invalid("formats must not be empty".into());
        }
        if self.identities == Some(0) {
            return invalid("identities must be at least 1".into());
        }
        Ok(())
    }
}

/// What was written to one dump file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileSummary {
    /// Id of the source the file belongs to.
    pub source_id: u32,
    /// Name (slug) of that source.
    pub source_name: String,
    /// Path relative to the catalog.
    pub path: String,
    /// Format.
    pub format: Format,
    /// Valid records written (exact duplicate lines included).
    pub records: u64,
    /// Of `records`, how many repeat the previous record's line byte for byte.
    pub duplicates: u64,
    /// Bad lines written (each one must be rejected by the builder).
    pub bad_lines: u64,
    /// Blank lines written (to be skipped silently).
    pub blank_lines: u64,
    /// Bytes written (compressed size for `.gz`).
    pub bytes: u64,
}

/// What [`generate`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GenSummary {
    /// The catalog file.
    pub catalog: PathBuf,
    /// Every dump file, in catalog order.
    pub files: Vec<FileSummary>,
    /// Number of sources.
    pub sources: u32,
    /// Valid records over all files (exact duplicates included).
    pub records: u64,
    /// Intentional exact duplicate lines over all files. Accidental duplicates (the same
    /// identity drawing the same password twice in one combo file) are possible for the
    /// hottest identities but rarer than 1 in 10,000 records.
    pub duplicates: u64,
    /// Bad lines over all files.
    pub bad_lines: u64,
    /// Blank lines over all files.
    pub blank_lines: u64,
    /// Distinct identities used: identities `0..distinct_identities` each appear by
    /// e-mail in at least one valid record.
    pub distinct_identities: u64,
    /// Bytes written over all dump files (the catalog excluded).
    pub bytes: u64,
}

impl GenSummary {
    /// Valid records per source, as `(source_id, source_name, records)` in catalog order.
    pub fn records_per_source(&self) -> Vec<(u32, String, u64)> {
        let mut out: Vec<(u32, String, u64)> = Vec::new();
        for f in &self.files {
            match out.last_mut() {
                Some(last) if last.0 == f.source_id => last.2 += f.records,
                _ => out.push((f.source_id, f.source_name.clone(), f.records)),
            }
        }
        out
    }
}

impl fmt::Display for GenSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "catalog: {}", self.catalog.display())?;
        for file in &self.files {
            writeln!(
                f,
                "  source {:>3} {:<28} {:<40} {:>5} records {:>10} dup {:>7} bad {:>7} blank {:>5} bytes {:>12}",
                file.source_id,
                file.source_name,
                file.path,
                file.format.name(),
                file.records,
                file.duplicates,
                file.bad_lines,
                file.blank_lines,
                file.bytes
            )?;
        }
        writeln!(
            f,
            "sources {}, files {}, records {} (exact duplicates {}), bad lines {}, blank lines {}, distinct identities {}, bytes {}",
            self.sources,
            self.files.len(),
            self.records,
            self.duplicates,
            self.bad_lines,
            self.blank_lines,
            self.distinct_identities,
            self.bytes
        )
    }
}

// ---------------------------------------------------------------------------------
// Plan: sources, files, schemas. Everything here is small and decided up front.
// ---------------------------------------------------------------------------------

const TAG_PLAN: u64 = 0x51;
const TAG_FILE: u64 = 0xF1;

/// Kind of breach: decides the assets of its records.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Kind {
    /// Company customer table: e-mail, PII, fast salted or unsalted hashes.
    Corp,
    /// Forum users: username, e-mail, bcrypt, IP, birth date.
    Forum,
    /// Infostealer logs: URL, login, plaintext password, IP.
    Stealer,
    /// Combo list: identifier and plaintext password.
    ComboList,
    /// Shop customers: e-mail, name, address, phone, NTLM or MD5.
    Shop,
    /// Old site with plaintext passwords.
    Legacy,
}

impl Kind {
    const ALL: [Kind; 6] = [Kind::Corp, Kind::Stealer, Kind::ComboList, Kind::Forum, Kind::Shop, Kind::Legacy];

    fn preferred_format(self) -> Format {
        match self {
            Kind::Corp | Kind::Forum | Kind::Legacy => Format::Csv,
            Kind::Stealer | Kind::Shop => Format::Jsonl,
            Kind::ComboList => Format::Combo,
        }
    }

    fn description(self) -> &'static str {
        match self {
            Kind::Corp => "Customer database exposed via misconfigured server",
            Kind::Forum => "Forum user table with bcrypt hashes leaked after an SQL injection",
            Kind::Stealer => "Infostealer logs with credentials saved in browsers",
            Kind::ComboList => "Combo list circulated on hacking forums",
            Kind::Shop => "Online shop customer records with weak password hashes",
            Kind::Legacy => "Legacy site dump with plaintext passwords",
        }
    }
}

/// One column (CSV) or key (JSON Lines) of a file.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Col {
    /// A row number; not an asset (reported as an unknown column).
    Id,
    Email,
    Username,
    Password,
    Hash,
    HashType,
    Salt,
    Name,
    Phone,
    Dob,
    Address,
    Ip,
    Url,
}

impl Col {
    fn aliases(self) -> &'static [&'static str] {
        match self {
            Col::Id => &["id"],
            Col::Email => &["email", "mail", "e-mail"],
            Col::Username => &["username", "user", "login", "user_name"],
            Col::Password => &["password", "pass", "pwd", "password_plaintext"],
            Col::Hash => &["password_hash", "hash"],
            Col::HashType => &["password_type"],
            Col::Salt => &["salt"],
            Col::Name => &["full_name", "name"],
            Col::Phone => &["phone"],
            Col::Dob => &["dob"],
            Col::Address => &["address"],
            Col::Ip => &["ip_address", "ip"],
            Col::Url => &["target_url", "url"],
        }
    }
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum HashType {
    None,
    Md5,
    Sha1,
    Sha256,
    Ntlm,
    Bcrypt,
}

impl HashType {
    fn name(self) -> &'static str {
        match self {
            HashType::None => "",
            HashType::Md5 => "md5",
            HashType::Sha1 => "sha1",
            HashType::Sha256 => "sha256",
            HashType::Ntlm => "ntlm",
            HashType::Bcrypt => "bcrypt",
        }
    }
}

struct SourcePlan {
    id: u32,
    name: String,
    title: String,
    date: String,
    description: &'static str,
    severity: Option<&'static str>,
    publish_date: Option<String>,
    files: Vec<FilePlan>,
}

struct FilePlan {
    source_id: u32,
    source_name: String,
    path: String,
    format: Format,
    kind: Kind,
    hash_type: HashType,
    delimiter: u8,
    crlf: bool,
    bom: bool,
    /// Columns with the header name (alias, in some letter case) of each.
    columns: Vec<(Col, String)>,
    /// Valid records to write.
    records: u64,
    /// Global number of this file's first valid record.
    start: u64,
    seed: u64,
}

const COMPANIES: &[&str] = &[
    "examplecorp",
    "acme",
    "globex",
    "initech",
    "umbrella",
    "hooli",
    "vandelay",
    "stark",
    "wayne",
    "cyberdyne",
    "soylent",
    "tyrell",
    "wonka",
    "oscorp",
    "dunder",
    "piedpiper",
    "massive-dynamic",
    "aperture",
    "black-mesa",
    "gringotts",
    "monarch",
    "nakatomi",
    "weyland",
    "virtucon",
];

fn title_case(slug: &str) -> String {
    slug.split('-')
        .map(|w| {
            let mut c = w.chars();
            c.next().map(|f| f.to_ascii_uppercase().to_string() + c.as_str()).unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn header_spelling(alias: &str, rng: &mut SplitMix64) -> String {
    let r = rng.unit();
    if r < 0.6 {
        alias.to_string()
    } else if r < 0.85 {
        let mut c = alias.chars();
        c.next().map(|f| f.to_ascii_uppercase().to_string() + c.as_str()).unwrap_or_default()
    } else {
        alias.to_ascii_uppercase()
    }
}

fn plan(config: &GenConfig) -> Vec<SourcePlan> {
    let realistic = config.profile == Profile::Realistic;
    let mut rng = SplitMix64::new(derive(config.seed, TAG_PLAN, 0));
    let n = config.sources as usize;
    // Skewed source sizes: a few big breaches, many small ones.
    let weights: Vec<f64> = (0..n)
        .map(|_| {
            let u = rng.unit();
            0.02 + u * u * u
        })
        .collect();
    let total: f64 = weights.iter().sum();
    let mut sizes: Vec<u64> = weights.iter().map(|w| (config.records as f64 * w / total).floor() as u64).collect();
    let assigned: u64 = sizes.iter().sum();
    let mut rest = config.records.saturating_sub(assigned);
    let mut i = 0;
    while rest > 0 {
        sizes[i % n] += 1;
        rest -= 1;
        i += 1;
    }

    let mut sources = Vec::with_capacity(n);
    let mut start = 0u64;
    let mut file_no = 0u64;
    for (s, &size) in sizes.iter().enumerate() {
        let kind = if s < Kind::ALL.len() { Kind::ALL[s] } else { rng.pick(&Kind::ALL) };
        let preferred = kind.preferred_format();
        let format = if s < config.formats.len() {
            config.formats[s]
        } else if config.formats.contains(&preferred) && rng.chance(0.85) {
            preferred
        } else {
            rng.pick(&config.formats)
        };
        let kind = if format == Format::Combo { Kind::ComboList } else { kind };
        let company = COMPANIES[s % COMPANIES.len()];
        let year = 2008 + rng.below(18);
        let name = if s < COMPANIES.len() {
            format!("{company}-{year}")
        } else {
            format!("{company}-{year}-{}", s / COMPANIES.len() + 1)
        };
        let title = match kind {
            Kind::Stealer => format!("{} Stealer Logs {year}", title_case(company)),
            Kind::ComboList => format!("{} Combo List {year}", title_case(company)),
            _ => format!("{} Data Breach {year}", title_case(company)),
        };
        let date = format!("{year}-{:02}-{:02}", 1 + rng.below(12), 1 + rng.below(28));
        let severity =
            if s >= 3 && rng.chance(0.12) { Some(rng.pick(&["low", "medium", "high", "critical"])) } else { None };
        let publish_date = if rng.chance(0.3) {
            Some(format!("{}-{:02}-{:02}", (year + 1).min(2026), 1 + rng.below(12), 1 + rng.below(28)))
        } else {
            None
        };
        let hash_type = match kind {
            Kind::Corp => rng.pick(&[HashType::Sha1, HashType::Sha256, HashType::Md5]),
            Kind::Forum => HashType::Bcrypt,
            Kind::Shop => rng.pick(&[HashType::Ntlm, HashType::Md5]),
            _ => HashType::None,
        };
        // The realistic profile computes hashes from the password; it has no MD5, so
        // those sources hash with SHA-1 instead (also fast and unsalted).
        let hash_type = if realistic && hash_type == HashType::Md5 { HashType::Sha1 } else { hash_type };
        let mut cols: Vec<Col> = match (format, kind) {
            (Format::Combo, _) => vec![],
            (_, Kind::Corp) => {
                let mut c = vec![Col::Email, Col::Name, Col::Phone, Col::Address, Col::Dob, Col::Hash, Col::HashType];
                if hash_type == HashType::Sha256 {
                    c.push(Col::Salt);
                }
                c
            }
            (_, Kind::Forum) => {
                let mut c = vec![Col::Username, Col::Email, Col::Hash];
                if rng.chance(0.5) {
                    c.push(Col::HashType);
                }
                c.extend([Col::Ip, Col::Dob]);
                c
            }
            (_, Kind::Stealer) => vec![Col::Url, Col::Email, Col::Username, Col::Password, Col::Ip],
            (_, Kind::ComboList) => vec![Col::Email, Col::Username, Col::Password],
            (_, Kind::Shop) => vec![Col::Email, Col::Name, Col::Address, Col::Phone, Col::Hash, Col::HashType],
            (_, Kind::Legacy) => vec![Col::Email, Col::Username, Col::Password],
        };
        if format != Format::Combo && rng.chance(0.3) {
            cols.insert(0, Col::Id);
        }
        // The first CSV source uses commas, the forum (source 4) semicolons; others vary.
        let delimiter = if format == Format::Csv && s == 3 {
            b';'
        } else if format == Format::Csv && s != 0 {
            let r = rng.unit();
            if r < 0.25 {
                b';'
            } else if r < 0.32 {
                b'|'
            } else {
                b','
            }
        } else {
            b','
        };
        let nfiles = if s % 4 == 3 && size >= 2 { 2 } else { 1 };
        let mut files = Vec::with_capacity(nfiles);
        for part in 0..nfiles {
            let records = if nfiles == 1 {
                size
            } else if part == 0 {
                size / 2
            } else {
                size - size / 2
            };
            let columns = cols
                .iter()
                .map(|&c| {
                    let alias = rng.pick(c.aliases());
                    let spelled =
                        if format == Format::Csv { header_spelling(alias, &mut rng) } else { alias.to_string() };
                    (c, spelled)
                })
                .collect();
            let suffix = if nfiles == 1 { String::new() } else { format!("-part{}", part + 1) };
            let gz = if config.gzip { ".gz" } else { "" };
            let path = format!("s{:04}-{name}{suffix}.{}{gz}", s + 1, format.extension());
            files.push(FilePlan {
                source_id: s as u32 + 1,
                source_name: name.clone(),
                path,
                format,
                kind,
                hash_type,
                delimiter,
                crlf: rng.chance(0.2),
                bom: rng.chance(0.15),
                columns,
                records,
                start,
                seed: derive(config.seed, TAG_FILE, file_no),
            });
            start += records;
            file_no += 1;
        }
        sources.push(SourcePlan {
            id: s as u32 + 1,
            name: name.clone(),
            title,
            date,
            description: kind.description(),
            severity,
            publish_date,
            files,
        });
    }
    sources
}

// ---------------------------------------------------------------------------------
// Catalog
// ---------------------------------------------------------------------------------

/// Appends `s` as a JSON string literal.
fn push_json_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut last = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[last..i]);
        if esc.is_empty() {
            out.extend_from_slice(format!("\\u{b:04x}").as_bytes());
        } else {
            out.extend_from_slice(esc);
        }
        last = i + 1;
    }
    out.extend_from_slice(&bytes[last..]);
    out.push(b'"');
}

fn catalog_json(sources: &[SourcePlan]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(b"{\"sources\": [\n");
    for (i, s) in sources.iter().enumerate() {
        out.extend_from_slice(format!("  {{\"id\": {}, \"name\": ", s.id).as_bytes());
        push_json_str(&mut out, &s.name);
        out.extend_from_slice(b", \"title\": ");
        push_json_str(&mut out, &s.title);
        out.extend_from_slice(b",\n   \"date\": ");
        push_json_str(&mut out, &s.date);
        out.extend_from_slice(b", \"description\": ");
        push_json_str(&mut out, s.description);
        if let Some(sev) = s.severity {
            out.extend_from_slice(b", \"severity\": ");
            push_json_str(&mut out, sev);
        }
        if let Some(p) = &s.publish_date {
            out.extend_from_slice(b", \"publish_date\": ");
            push_json_str(&mut out, p);
        }
        out.extend_from_slice(b",\n   \"files\": [");
        for (j, f) in s.files.iter().enumerate() {
            if j > 0 {
                out.extend_from_slice(b", ");
            }
            out.extend_from_slice(b"{\"path\": ");
            push_json_str(&mut out, &f.path);
            out.extend_from_slice(b", \"format\": ");
            push_json_str(&mut out, f.format.name());
            if f.delimiter != b',' {
                out.extend_from_slice(b", \"delimiter\": ");
                push_json_str(&mut out, &(f.delimiter as char).to_string());
            }
            out.push(b'}');
        }
        out.extend_from_slice(b"]}");
        if i + 1 < sources.len() {
            out.push(b',');
        }
        out.push(b'\n');
    }
    out.extend_from_slice(b"]}\n");
    out
}

// ---------------------------------------------------------------------------------
// Records
// ---------------------------------------------------------------------------------

const TAG_RECORD: u64 = 0xEC;
/// Probability that a valid record repeats the previous line exactly.
const DUPLICATE_P: f64 = 0.004;
/// Probability of a blank line before a record.
const BLANK_P: f64 = 0.002;

const PASSWORDS: &[&str] = &[
    "123456",
    "password",
    "qwerty",
    "letmein",
    "dragon",
    "monkey",
    "sunshine",
    "iloveyou",
    "princess",
    "football",
    "baseball",
    "welcome",
    "shadow",
    "master",
    "superman",
    "trustno1",
    "hunter",
    "starwars",
    "passw0rd",
    "abc123",
    "zaq12wsx",
    "Summer",
    "Winter",
    "Berlin",
    "contraseña",
    "пароль",
    "motdepasse",
    "p@ssword",
    "admin",
    "secret",
    "qwertz",
    "azerty",
    "hello world",
    "correct horse",
    "P:ssw0rd",
    "pa,ss",
    "say \"hi\"",
    "x;y",
    "back\\slash",
];
const PASSWORD_SUFFIXES: &[&str] = &["", "!", "?", "#", ":", "."];
const URLS: &[&str] = &[
    "https://accounts.google.com/signin",
    "https://www.facebook.com/login.php",
    "https://login.live.com/login.srf",
    "https://www.netflix.com/login",
    "https://steamcommunity.com/login/home/",
    "https://github.com/session",
    "https://www.paypal.com/signin",
    "https://discord.com/login",
    "https://www.amazon.com/ap/signin",
    "https://online.bank.example/login?lang=en",
    "https://mail.yandex.ru/",
    "android://hash@com.instagram.android/",
];
const INVALID_EMAILS: &[&str] =
    &["no-at-sign", "a@@b.com", "@domain.com", "user@", "john doe@example.com", "x@y@z.com"];
/// Invalid e-mails that a combo line would still treat as e-mails (they contain `@`).
const INVALID_COMBO_EMAILS: &[&str] = &["a@@b.com", "@domain.com", "user@", "john doe@example.com", "x@y@z.com"];
const INVALID_UTF8: &[&[u8]] = &[b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xe2\x82", b"\xc0\xaf", b"\xfe\xfe"];
const NICKNAMES: &[&str] = &["Johnny", "JD", "Bob", "Kiki", "Max", "Lulu"];

/// Field values of one record; an empty string means absent.
#[derive(Default)]
struct Fields {
    id: u64,
    email: String,
    username: String,
    password: String,
    hash: String,
    hash_type: &'static str,
    salt: String,
    name: String,
    phone: String,
    dob: String,
    address: String,
    ip: String,
    url: String,
}

#[derive(Copy, Clone, PartialEq, Eq)]
enum Bad {
    InvalidUtf8,
    InvalidEmail,
    OverlongUsername,
    /// CSV: text after a closing quote. JSONL: syntax error. Combo: no `:`.
    Syntax,
    /// CSV only: one field too few or too many.
    FieldCount,
}

fn push_hex(out: &mut String, rng: &mut SplitMix64, len: usize, upper: bool) {
    let digits: &[u8; 16] = if upper { b"0123456789ABCDEF" } else { b"0123456789abcdef" };
    let mut bits = 0u64;
    for i in 0..len {
        if i % 16 == 0 {
            bits = rng.next_u64();
        }
        out.push(digits[(bits & 15) as usize] as char);
        bits >>= 4;
    }
}

fn push_email_variant(out: &mut String, id: &Identity, rng: &mut SplitMix64, allow_padding: bool) {
    let start = out.len();
    let pad = allow_padding && rng.chance(0.01);
    if pad {
        out.push(' ');
    }
    let local_start = out.len();
    if id.unicode_local && rng.chance(0.3) {
        push_nfd(out, id.local());
    } else {
        out.push_str(id.local());
    }
    out.push('@');
    let domain_start = out.len();
    match id.email_ascii_domain {
        Some(ascii) if rng.chance(0.5) => out.push_str(ascii),
        _ => out.push_str(id.domain()),
    }
    let r = rng.unit();
    if r < 0.06 {
        // John.Doe12@Example.COM: capitalize local segments and the top-level domain.
        let tail = out[local_start..].to_string();
        out.truncate(local_start);
        let mut cap = true;
        for c in tail.chars() {
            out.push(if cap { c.to_ascii_uppercase() } else { c });
            cap = matches!(c, '.' | '_' | '@');
        }
        let tld = out.rfind('.').unwrap_or(domain_start).max(domain_start);
        out[tld..].make_ascii_uppercase();
    } else if r < 0.08 {
        out[start..].make_ascii_uppercase();
    }
    if pad {
        out.push(' ');
    }
}

/// Appends the decimal digits of `n`.
fn push_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

/// The value of `col` in `f`, `None` when absent (and for the non-asset `Id`).
fn field_value(f: &Fields, col: Col) -> Option<&str> {
    let v: &str = match col {
        Col::Id => return None,
        Col::Email => &f.email,
        Col::Username => &f.username,
        Col::Password => &f.password,
        Col::Hash => &f.hash,
        Col::HashType => f.hash_type,
        Col::Salt => &f.salt,
        Col::Name => &f.name,
        Col::Phone => &f.phone,
        Col::Dob => &f.dob,
        Col::Address => &f.address,
        Col::Ip => &f.ip,
        Col::Url => &f.url,
    };
    (!v.is_empty()).then_some(v)
}

struct FileWriter<'a> {
    plan: &'a FilePlan,
    seed: u64,
    rng: SplitMix64,
    zipf: Zipf,
    total_records: u64,
    coverage: u64,
    identity: Identity,
    /// The realistic profile's vocabularies; `None` in the synthetic profile.
    vocab: Option<Vocab>,
    fields: Fields,
    line: Vec<u8>,
    prev: Vec<u8>,
    scratch: String,
    eol: &'static [u8],
    bad_ratio: f64,
}

impl<'a> FileWriter<'a> {
    fn new(plan: &'a FilePlan, config: &GenConfig) -> FileWriter<'a> {
        let identities = config.identity_count();
        FileWriter {
            plan,
            seed: config.seed,
            rng: SplitMix64::new(derive(plan.seed, TAG_RECORD, 0)),
            zipf: Zipf::new(identities, config.zipf_exponent),
            total_records: config.records,
            coverage: identities.min(config.records),
            identity: Identity::default(),
            vocab: (config.profile == Profile::Realistic).then(Vocab::new),
            fields: Fields::default(),
            line: Vec::with_capacity(512),
            prev: Vec::with_capacity(512),
            scratch: String::with_capacity(256),
            eol: if plan.crlf { b"\r\n" } else { b"\n" },
            bad_ratio: config.bad_line_ratio,
        }
    }

    /// Coverage identity of global record `r`, if `r` is a coverage record.
    fn coverage_identity(&self, r: u64) -> Option<u64> {
        let cov = |x: u64| (u128::from(x) * u128::from(self.coverage) / u128::from(self.total_records.max(1))) as u64;
        let (a, b) = (cov(r), cov(r + 1));
        (b > a).then_some(a)
    }

    fn write_all<W: Write>(&mut self, out: &mut W) -> io::Result<FileSummary> {
        let plan = self.plan;
        let mut summary = FileSummary {
            source_id: plan.source_id,
            source_name: plan.source_name.clone(),
            path: plan.path.clone(),
            format: plan.format,
            records: 0,
            duplicates: 0,
            bad_lines: 0,
            blank_lines: 0,
            bytes: 0,
        };
        if plan.bom {
            out.write_all(b"\xEF\xBB\xBF")?;
        }
        if plan.format == Format::Csv {
            self.line.clear();
            for (i, (_, name)) in plan.columns.iter().enumerate() {
                if i > 0 {
                    self.line.push(plan.delimiter);
                }
                self.line.extend_from_slice(name.as_bytes());
            }
            self.line.extend_from_slice(self.eol);
            out.write_all(&self.line)?;
        }
        let bad_ratio = self.bad_ratio;
        let mut r = plan.start;
        let end = plan.start + plan.records;
        while r < end {
            if self.rng.chance(BLANK_P) {
                out.write_all(self.eol)?;
                summary.blank_lines += 1;
            }
            if self.rng.chance(bad_ratio) {
                self.bad_line(r)?;
                out.write_all(&self.line)?;
                summary.bad_lines += 1;
                continue;
            }
            let coverage = self.coverage_identity(r);
            if coverage.is_none() && !self.prev.is_empty() && self.rng.chance(DUPLICATE_P) {
                out.write_all(&self.prev)?;
                summary.duplicates += 1;
            } else {
                let who = match coverage {
                    Some(i) => i,
                    None => self.zipf.sample(&mut self.rng) - 1,
                };
                self.identity.fill_with(self.seed, who, self.vocab.as_ref());
                self.fill_fields(r - plan.start + 1, coverage.is_some());
                self.serialize(None);
                out.write_all(&self.line)?;
                std::mem::swap(&mut self.line, &mut self.prev);
            }
            summary.records += 1;
            r += 1;
        }
        Ok(summary)
    }

    fn fill_fields(&mut self, row: u64, coverage: bool) {
        use std::fmt::Write as _;
        let plan = self.plan;
        let seed = self.seed;
        let rng = &mut self.rng;
        let id = &self.identity;
        let vocab = self.vocab.as_ref();
        let f = &mut self.fields;
        f.id = row;
        f.email.clear();
        f.username.clear();
        f.password.clear();
        f.hash.clear();
        f.salt.clear();
        f.name.clear();
        f.phone.clear();
        f.dob.clear();
        f.address.clear();
        f.ip.clear();
        f.hash_type = "";
        f.url.clear();

        let has_user = id.username.is_some();
        let (want_email, want_user) = match plan.kind {
            Kind::Corp | Kind::Shop => (true, false),
            Kind::Forum => (coverage || !has_user || !rng.chance(0.15), has_user),
            Kind::Stealer | Kind::ComboList => {
                let email = coverage || !has_user || rng.chance(0.7);
                (email, !email)
            }
            Kind::Legacy => (true, has_user && rng.chance(0.8)),
        };
        let allow_padding = plan.format != Format::Combo;
        if want_email {
            push_email_variant(&mut f.email, id, rng, allow_padding);
        }
        if want_user && let Some(u) = &id.username {
            f.username.push_str(u);
            if rng.chance(0.1) {
                // Mixed case, same key: capitalize the first letter.
                let first = f.username.as_bytes()[0].to_ascii_uppercase() as char;
                f.username.replace_range(0..1, first.encode_utf8(&mut [0; 4]));
            }
        }
        match vocab {
            Some(v) => {
                // Most people reuse their own password (sometimes with a tweak).
                let r = rng.unit();
                if r < 0.7 {
                    v.push_personal_password(&mut f.password, seed, id.index);
                    if r >= 0.55 {
                        f.password.push_str(rng.pick(&["1", "!", "123", "2", "#1"]));
                    }
                } else {
                    v.push_password(&mut f.password, rng);
                }
            }
            None => {
                // Plaintext password: common base, mutation, number (rarely colliding).
                let base = rng.pick(PASSWORDS);
                f.password.push_str(base);
                let _ = write!(f.password, "{}", rng.below(1_000_000));
                f.password.push_str(rng.pick(PASSWORD_SUFFIXES));
            }
        }

        f.hash_type = plan.hash_type.name();
        let computed = vocab.is_some();
        match plan.hash_type {
            HashType::None => {}
            HashType::Md5 => push_hex(&mut f.hash, rng, 32, false),
            HashType::Sha1 if computed => realistic::push_sha1(&mut f.hash, &f.password),
            HashType::Sha1 => push_hex(&mut f.hash, rng, 40, false),
            HashType::Sha256 => {
                push_hex(&mut f.salt, rng, 16, false);
                if computed {
                    realistic::push_salted_sha256(&mut f.hash, &f.salt, &f.password);
                } else {
                    push_hex(&mut f.hash, rng, 64, false);
                }
            }
            HashType::Ntlm => {
                let upper = rng.chance(0.5);
                if computed {
                    realistic::push_ntlm(&mut f.hash, &f.password, upper);
                } else {
                    push_hex(&mut f.hash, rng, 32, upper)
                }
            }
            HashType::Bcrypt => {
                const B64: &[u8; 64] = b"./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
                f.hash.push_str(rng.pick(&["$2b$10$", "$2a$12$", "$2y$10$"]));
                let mut bits = 0u64;
                for i in 0..53 {
                    if i % 10 == 0 {
                        bits = rng.next_u64();
                    }
                    f.hash.push(B64[(bits & 63) as usize] as char);
                    bits >>= 6;
                }
            }
        }
        f.name.push_str(&id.full_name);
        if rng.chance(0.03) {
            // Jane "JD" Doe: an embedded quote.
            if let Some(space) = f.name.find(' ') {
                let nick = format!(" \"{}\"", rng.pick(NICKNAMES));
                f.name.insert_str(space, &nick);
            }
        }
        if rng.chance(0.7) {
            f.phone.push_str(&id.phone);
        }
        if rng.chance(0.6) {
            f.dob.push_str(&id.dob);
        }
        if rng.chance(0.8) {
            f.address.push_str(&id.address);
            if rng.chance(0.03) {
                let _ = write!(f.address, "\nApt {}", 1 + rng.below(40));
            }
        }
        if rng.chance(0.95) {
            let _ = write!(f.ip, "{}.{}.{}.{}", 1 + rng.below(223), rng.below(256), rng.below(256), 1 + rng.below(254));
        } else {
            let _ = write!(f.ip, "2001:db8:{:x}::{:x}", rng.below(65536), 1 + rng.below(65535));
        }
        match vocab {
            Some(v) => v.push_url(&mut f.url, rng),
            None => f.url.push_str(rng.pick(URLS)),
        }
    }

    /// Writes the current fields into `self.line` in the file's format, applying a
    /// structural defect when `bad` asks for one.
    fn serialize(&mut self, bad: Option<Bad>) {
        self.line.clear();
        match self.plan.format {
            Format::Csv => self.serialize_csv(bad),
            Format::Jsonl => self.serialize_jsonl(bad),
            Format::Combo => self.serialize_combo(bad),
        }
        self.line.extend_from_slice(self.eol);
    }

    fn serialize_csv(&mut self, bad: Option<Bad>) {
        let delim = self.plan.delimiter;
        let line = &mut self.line;
        let ncols = self.plan.columns.len();
        let field_count = bad == Some(Bad::FieldCount);
        let drop_last = field_count && ncols > 1 && self.rng.chance(0.5);
        for (i, &(col, _)) in self.plan.columns.iter().enumerate() {
            if drop_last && i + 1 == ncols {
                break;
            }
            if i > 0 {
                line.push(delim);
            }
            if i == 0 && bad == Some(Bad::Syntax) {
                // "value"junk: text after the closing quote, whatever the first column is.
                line.push(b'"');
                let id_text;
                let value = if col == Col::Id {
                    id_text = self.fields.id.to_string();
                    id_text.as_str()
                } else {
                    field_value(&self.fields, col).unwrap_or("")
                };
                let v = if value.is_empty() { "broken" } else { value };
                for &b in v.as_bytes() {
                    if b == b'"' {
                        line.push(b'"');
                    }
                    line.push(b);
                }
                line.extend_from_slice(b"\"junk");
                continue;
            }
            if col == Col::Id {
                push_u64(line, self.fields.id);
                continue;
            }
            let value = field_value(&self.fields, col).unwrap_or("");
            let needs_quotes = value.bytes().any(|b| b == delim || b == b'"' || b == b'\n' || b == b'\r');
            if needs_quotes || (!value.is_empty() && self.rng.chance(0.02)) {
                line.push(b'"');
                for &b in value.as_bytes() {
                    if b == b'"' {
                        line.push(b'"');
                    }
                    line.push(b);
                }
                line.push(b'"');
            } else {
                line.extend_from_slice(value.as_bytes());
            }
        }
        if field_count && !drop_last {
            line.push(delim);
            line.extend_from_slice(b"extra");
        }
    }

    fn serialize_jsonl(&mut self, bad: Option<Bad>) {
        let line = &mut self.line;
        line.push(b'{');
        let mut first = true;
        for (col, key) in &self.plan.columns {
            let value = field_value(&self.fields, *col);
            let null = value.is_none() && *col != Col::Id && self.rng.chance(0.3);
            if value.is_none() && *col != Col::Id && !null {
                continue;
            }
            if !first {
                line.extend_from_slice(b", ");
            }
            first = false;
            push_json_str(line, key);
            line.extend_from_slice(b": ");
            match (col, value) {
                (Col::Id, _) => push_u64(line, self.fields.id),
                (Col::Phone, Some(v)) if self.rng.chance(0.1) => {
                    // A phone as a JSON number: its digits only.
                    let digits: String = v.chars().filter(char::is_ascii_digit).collect();
                    line.extend_from_slice(digits.as_bytes());
                }
                (_, Some(v)) => push_json_str(line, v),
                (_, None) => line.extend_from_slice(b"null"),
            }
        }
        line.push(b'}');
        if bad == Some(Bad::Syntax) {
            match self.rng.below(4) {
                0 => line.truncate(line.len() / 2),
                1 => {
                    line.pop();
                    line.extend_from_slice(b", }");
                }
                2 => {
                    line.pop();
                    line.push(b']');
                }
                _ => {
                    if let Some(colon) = line.iter().position(|&b| b == b':') {
                        line.remove(colon);
                    } else {
                        line.insert(0, b'{');
                    }
                }
            }
        }
    }

    fn serialize_combo(&mut self, bad: Option<Bad>) {
        let f = &self.fields;
        let ident = if !f.email.is_empty() { &f.email } else { &f.username };
        self.line.extend_from_slice(ident.as_bytes());
        if bad == Some(Bad::Syntax) {
            // No `:` at all: a separator that is not one, and a password without colons.
            self.line.extend_from_slice(if self.rng.chance(0.5) { b" " } else { b"|" });
            self.line.extend(f.password.bytes().filter(|&b| b != b':'));
        } else {
            self.line.push(b':');
            self.line.extend_from_slice(f.password.as_bytes());
        }
    }

    /// Writes one bad line into `self.line`.
    fn bad_line(&mut self, r: u64) -> io::Result<()> {
        let kinds: &[Bad] = match self.plan.format {
            Format::Csv => &[Bad::InvalidUtf8, Bad::InvalidEmail, Bad::OverlongUsername, Bad::Syntax, Bad::FieldCount],
            Format::Jsonl | Format::Combo => &[Bad::InvalidUtf8, Bad::InvalidEmail, Bad::OverlongUsername, Bad::Syntax],
        };
        let mut kind = self.rng.pick(kinds);
        let has_user_col =
            self.plan.format != Format::Csv || self.plan.columns.iter().any(|(c, _)| *c == Col::Username);
        if kind == Bad::OverlongUsername && !has_user_col {
            kind = Bad::InvalidEmail;
        }
        // Start from a plausible record of a random identity.
        let who = self.rng.below(self.coverage.max(1));
        self.identity.fill_with(self.seed, who, self.vocab.as_ref());
        self.fill_fields(r - self.plan.start + 1, true);
        match kind {
            Bad::InvalidEmail => {
                let list = if self.plan.format == Format::Combo { INVALID_COMBO_EMAILS } else { INVALID_EMAILS };
                self.fields.email.clear();
                self.fields.email.push_str(self.rng.pick(list));
                self.fields.username.clear();
            }
            Bad::OverlongUsername => {
                self.fields.email.clear();
                self.fields.username.clear();
                let len = 129 + self.rng.below(100) as usize;
                for i in 0..len {
                    self.fields.username.push((b'a' + (i % 26) as u8) as char);
                }
            }
            _ => {}
        }
        if self.plan.format == Format::Jsonl && kind == Bad::OverlongUsername {
            // Make sure the key exists even when the file's keys have no username.
            self.scratch.clear();
            self.scratch.push_str(&self.fields.username);
            self.line.clear();
            self.line.extend_from_slice(b"{\"username\": ");
            let name = std::mem::take(&mut self.scratch);
            push_json_str(&mut self.line, &name);
            self.scratch = name;
            self.line.extend_from_slice(b", \"password\": ");
            let pw = std::mem::take(&mut self.fields.password);
            push_json_str(&mut self.line, &pw);
            self.fields.password = pw;
            self.line.push(b'}');
            self.line.extend_from_slice(self.eol);
        } else {
            let structural = matches!(kind, Bad::Syntax | Bad::FieldCount).then_some(kind);
            self.serialize(structural);
        }
        if kind == Bad::InvalidUtf8 {
            let body = self.line.len() - self.eol.len();
            let at = 1 + self.rng.index(body.saturating_sub(1).max(1));
            let at = at.min(body);
            let bytes = self.rng.pick(INVALID_UTF8);
            self.line.splice(at..at, bytes.iter().copied());
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------
// Driver
// ---------------------------------------------------------------------------------

fn write_file(plan: &FilePlan, config: &GenConfig) -> io::Result<FileSummary> {
    let path = config.out_dir.join(&plan.path);
    let file = File::create(&path).map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    let mut writer = FileWriter::new(plan, config);
    let mut summary = if config.gzip {
        let mut gz = gzip::GzipStoredWriter::new(BufWriter::with_capacity(1 << 20, file))?;
        let s = writer.write_all(&mut gz)?;
        gz.finish()?.flush()?;
        s
    } else {
        let mut out = BufWriter::with_capacity(1 << 20, file);
        let s = writer.write_all(&mut out)?;
        out.flush()?;
        s
    };
    summary.bytes = std::fs::metadata(&path)?.len();
    Ok(summary)
}

/// Generates the catalog and every dump file of `config` into `config.out_dir`.
///
/// Errors: an invalid config (`InvalidInput`), or any I/O error creating the directory
/// or writing a file.
pub fn generate(config: &GenConfig) -> io::Result<GenSummary> {
    config.validate()?;
    std::fs::create_dir_all(&config.out_dir)?;
    let sources = plan(config);
    let catalog = config.out_dir.join("catalog.json");
    std::fs::write(&catalog, catalog_json(&sources))?;

    let files: Vec<&FilePlan> = sources.iter().flat_map(|s| s.files.iter()).collect();
    // Biggest files first, so threads finish together.
    let mut order: Vec<usize> = (0..files.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(files[i].records));
    let threads = match config.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
    .min(files.len().max(1));
    let results: Vec<Mutex<Option<io::Result<FileSummary>>>> = files.iter().map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&i) = order.get(k) else { break };
                    let result = write_file(files[i], config);
                    if let Ok(mut slot) = results[i].lock() {
                        *slot = Some(result);
                    }
                }
            });
        }
    });
    let mut summaries = Vec::with_capacity(files.len());
    for slot in results {
        let result = slot
            .into_inner()
            .map_err(|_| io::Error::other("a generator thread panicked"))?
            .ok_or_else(|| io::Error::other("a dump file was not written"))?;
        summaries.push(result?);
    }
    let sum = |f: fn(&FileSummary) -> u64| summaries.iter().map(f).sum::<u64>();
    Ok(GenSummary {
        catalog,
        sources: config.sources,
        records: sum(|f| f.records),
        duplicates: sum(|f| f.duplicates),
        bad_lines: sum(|f| f.bad_lines),
        blank_lines: sum(|f| f.blank_lines),
        bytes: sum(|f| f.bytes),
        distinct_identities: config.identity_count().min(config.records),
        files: summaries,
    })
}

/// Name of the marker file [`generate_cached`] writes last into a finished dataset: its
/// first line is the distinct identity count, then the config and the summary.
pub const GENERATED_MARKER: &str = "GENERATED";

/// What [`generate_cached`] found or made.
#[derive(Clone, Debug)]
pub struct CachedDataset {
    /// Distinct identities of the dataset.
    pub distinct_identities: u64,
    /// The summary when this call generated the dataset, `None` when it reused one.
    pub generated: Option<GenSummary>,
}

/// [`generate`] unless `config.out_dir` already holds a complete dataset (its
/// [`GENERATED_MARKER`] file), which is then reused as it is. A directory without the
/// marker (an interrupted run) is removed and generated again. The benches and the
/// comparison tool share datasets through this, so a dataset one of them made can be
/// given to the other.
pub fn generate_cached(config: &GenConfig) -> io::Result<CachedDataset> {
    let marker = config.out_dir.join(GENERATED_MARKER);
    if let Ok(text) = std::fs::read_to_string(&marker)
        && let Some(n) = text.lines().next().and_then(|l| l.trim().parse().ok())
    {
        return Ok(CachedDataset { distinct_identities: n, generated: None });
    }
    if config.out_dir.exists() {
        std::fs::remove_dir_all(&config.out_dir)?;
    }
    let summary = generate(config)?;
    std::fs::write(&marker, format!("{}\n{config:?}\n{summary}", summary.distinct_identities))?;
    Ok(CachedDataset { distinct_identities: summary.distinct_identities, generated: Some(summary) })
}

/// Fixed settings shared by the benches (`benches/`) and the comparison tool
/// (`tools/compare`), so that their datasets and indexes are the same and can be reused
/// by one another.
pub mod bench {
    /// Generator seed of the bench datasets.
    pub const SEED: u64 = 42;
    /// The salt of the hashed bench indexes (benchmarks only; never a real secret).
    pub const SALT: &[u8] = b"breachdex-bench-salt-2026-11-23";
    /// `SOURCE_DATE_EPOCH` of the bench builds and the time of their checks:
    /// 2026-11-23T12:00:00Z.
    pub const NOW: i64 = 1_795_435_200;
}

/// Convenience for callers holding a path: the catalog file `generate` writes in `dir`.
pub fn catalog_path(dir: &Path) -> PathBuf {
    dir.join("catalog.json")
}

#[cfg(test)]
mod tests;
