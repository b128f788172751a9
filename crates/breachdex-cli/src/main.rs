//! The `breachdex` command line: parses flags, calls the library, prints.

use anyhow::{Context, Result, bail};
use breachdex::Catalog;
use breachdex::UnixTime;
use breachdex::{AssetPolicy, RecordsError, RecordsRequest, SaltPosition};
use breachdex::{AssetSet, HashMode, Salt};
use breachdex::{BuildOptions, BuildProgress, BuildSummary, build_index};
use breachdex::{IdentifierKind, Index, LookupError, OpenError, OpenOptions, Query};
use breachdex::{PasswordError, PasswordHash, PasswordHashKind};
use clap::{Args, Parser, Subcommand, ValueEnum};
use rayon::prelude::*;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

mod server;

/// `println!` that returns an error instead of panicking when stdout is closed.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)?;
    }};
}

mod update;

#[derive(Parser)]
#[command(
    name = "breachdex",
    version,
    about = "Embedded breach-lookup engine: build compact indexes from breach dumps and query them"
)]
struct Cli {
    /// Machine-readable output: `build`, `info` and `verify` print JSON instead of text
    /// (`check` and `records` always do), and errors are JSON objects ({"error", "code",
    /// "details"}) on stderr.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build an index directory from a catalog of breach dumps.
    Build(BuildArgs),
    /// Check identities against an index: breaches, severity, risk.
    Check(CheckArgs),
    /// The matched records themselves, under an asset policy (allow-list, masking,
    /// output hashing), a page at a time.
    Records(RecordsArgs),
    /// Check a password against an index's password index, locally: the password (or
    /// its hash) never leaves this machine. Prints how many records hold it.
    Password(PasswordArgs),
    /// Show an index's format, options, counts, file sizes and sources.
    Info {
        /// The index directory.
        dir: PathBuf,
    },
    /// Check every byte of an index: checksums and structure. Exits 3 on damage, 1 when
    /// the path is not an index.
    Verify {
        /// The index directory.
        dir: PathBuf,
    },
    /// Convert an index of format version 1 into a new index of the current format,
    /// without the dumps (OLD is only read; NEW appears when complete).
    Upgrade(UpgradeArgs),
    /// Add new dumps to an index as a new segment, without a rebuild; publishes the next
    /// generation.
    Add(update::AddArgs),
    /// Retire a source or remove identities (opt-out) at once; the data leaves the disk at
    /// the next compact.
    Remove(update::RemoveArgs),
    /// Merge an index's segments into one, dropping removed data; answers do not change.
    Compact(update::CompactArgs),
    /// List the keys that gained or lost a breach since a generation, as JSON lines.
    Changes(update::ChangesArgs),
    /// Serve the breach API over HTTP (keys, plans, rate limits, request log).
    Serve(server::ServeArgs),
    /// Create, list and revoke API keys of the server.
    #[command(subcommand)]
    Keys(server::KeysCommand),
    /// Print the server's request log as JSON lines (metadata only).
    Logs(server::LogsArgs),
}

#[derive(Args)]
struct BuildArgs {
    /// The catalog JSON listing sources and their dump files.
    #[arg(long)]
    catalog: PathBuf,
    /// The index directory to create.
    #[arg(long)]
    out: PathBuf,
    /// Key hash mode: plain, sha256, sha256-128, xxh3-128, xxh3-64.
    #[arg(long = "hash", default_value = "plain")]
    hash: HashMode,
    /// File holding the secret salt (hashed modes; at least 16 bytes).
    #[arg(long)]
    salt_file: Option<PathBuf>,
    /// Assets to keep in the index, comma-separated (default: every asset present).
    #[arg(long)]
    store: Option<String>,
    /// Peak memory budget, e.g. 512M, 2G (default 1G).
    #[arg(long, value_parser = parse_bytes)]
    memory: Option<u64>,
    /// Worker threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Where to write rejected lines and fields (default: DIR.rejects.jsonl beside DIR).
    #[arg(long)]
    rejects: Option<PathBuf>,
    /// Replace DIR if it is an existing breachdex index (anything else is refused).
    #[arg(long)]
    force: bool,
    /// In hashed modes, keep the raw bytes of rejected lines in the rejects file (by
    /// default a hashed build's rejects file holds file, line and reason only).
    #[arg(long)]
    rejects_raw: bool,
    /// Make no password index (the SHA-1 and NTLM hashes of the passwords, with the
    /// number of records holding each; made by default).
    #[arg(long)]
    no_password_index: bool,
    /// Plain mode: add a fingerprint table beside each key map so that lookups read it
    /// instead of walking the FST (faster on large indexes; about 13 bytes per key).
    #[arg(long)]
    accelerator: bool,
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
}

#[derive(Args)]
struct UpgradeArgs {
    /// The index of format version 1 to convert.
    old: PathBuf,
    /// The index directory to create.
    new: PathBuf,
    /// File holding the salt of a hashed index (required for one: the document ids are
    /// checked with it).
    #[arg(long)]
    salt_file: Option<PathBuf>,
    /// Compression threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Replace NEW if it is an existing breachdex index (anything else is refused).
    #[arg(long)]
    force: bool,
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
}

#[derive(Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["sha1", "ntlm", "stdin"])))]
struct PasswordArgs {
    /// The index directory.
    #[arg(long)]
    index: PathBuf,
    /// File holding the salt of a hashed index (the password index itself needs none,
    /// but a hashed index opens only with its salt).
    #[arg(long)]
    salt_file: Option<PathBuf>,
    /// A SHA-1 hash of the password: 40 hex digits.
    #[arg(long)]
    sha1: Option<String>,
    /// An NTLM hash of the password: 32 hex digits.
    #[arg(long)]
    ntlm: Option<String>,
    /// Read the password from stdin (without echo on a terminal; else its first line)
    /// and hash it here; it is checked by its SHA-1 and NTLM hashes.
    #[arg(long)]
    stdin: bool,
}

#[derive(Copy, Clone, ValueEnum)]
enum BatchKind {
    Auto,
    Email,
    Username,
}

/// The index and the identity a `check` or `records` call names.
#[derive(Args)]
struct Target {
    /// The index directory.
    #[arg(long)]
    index: PathBuf,
    /// File holding the salt of a hashed index.
    #[arg(long)]
    salt_file: Option<PathBuf>,
    /// An e-mail address, any spelling.
    #[arg(long)]
    email: Option<String>,
    /// A username, any spelling.
    #[arg(long)]
    username: Option<String>,
    /// A precomputed key in hex.
    #[arg(long)]
    key: Option<String>,
}

impl Target {
    /// The single query named by --email, --username or --key (read as `kind`), if any.
    fn single_query(&self, kind: BatchKind) -> Option<Query<'_>> {
        if let Some(e) = &self.email {
            return Some(Query::Email(e));
        }
        if let Some(u) = &self.username {
            return Some(Query::Username(u));
        }
        let kind = match kind {
            BatchKind::Auto => None,
            BatchKind::Email => Some(IdentifierKind::Email),
            BatchKind::Username => Some(IdentifierKind::Username),
        };
        self.key.as_deref().map(|hex| Query::Key { hex, kind })
    }

    fn open(&self, populate: bool) -> Result<Index> {
        open_index(&self.index, self.salt_file.as_deref(), populate)
    }
}

#[derive(Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["email", "username", "key", "batch"])))]
struct CheckArgs {
    #[command(flatten)]
    target: Target,
    /// A file with one identifier per line (`-` for stdin); prints one JSON line each.
    #[arg(long)]
    batch: Option<PathBuf>,
    /// What --key or each --batch line is: auto searches both maps for a key and reads a
    /// batch line with '@' as an e-mail (not with --email or --username, which say it).
    #[arg(long, value_enum, default_value = "auto", conflicts_with_all = ["email", "username"])]
    kind: BatchKind,
    /// Fault the whole index into memory when opening.
    #[arg(long)]
    populate: bool,
    /// Check as of this date (YYYY-MM-DD, midnight UTC) instead of now: makes risk
    /// scores reproducible.
    #[arg(long)]
    as_of: Option<breachdex::Date>,
}

#[derive(Copy, Clone, ValueEnum)]
enum SaltSide {
    Left,
    Right,
}

#[derive(Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["email", "username", "key"])))]
struct RecordsArgs {
    #[command(flatten)]
    target: Target,
    /// What --key is: auto searches both the e-mail and the username map (not with
    /// --email or --username, which say it).
    #[arg(long, value_enum, default_value = "auto", conflicts_with_all = ["email", "username"])]
    kind: BatchKind,
    /// Assets shown, comma-separated (default: all); the others a record holds are
    /// replaced by ********.
    #[arg(long)]
    allow: Option<String>,
    /// Assets returned as hex digests: ASSET=ALG,... with ALG sha1, sha224, sha256,
    /// sha384 or sha512 (needs --output-salt).
    #[arg(long)]
    hash_assets: Option<String>,
    /// Salt of the output digests, 10 to 24 characters.
    #[arg(long)]
    output_salt: Option<String>,
    /// Where the output salt goes relative to the value.
    #[arg(long, value_enum, default_value = "right")]
    salt_position: SaltSide,
    /// The cursor of the page to fetch (from a previous page's "cursor").
    #[arg(long)]
    cursor: Option<String>,
    /// Records per page, 1 to 1000 (default 1000).
    #[arg(long)]
    limit: Option<usize>,
    /// Follow cursors to the end and print every record as one JSON line (exports).
    #[arg(long)]
    all: bool,
}

fn parse_bytes(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().map_err(|_| format!("'{text}' is not a size like 512M or 2G"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        _ => return Err(format!("unknown unit in '{text}' (use K, M, G or T)")),
    };
    n.checked_mul(mult).ok_or_else(|| format!("'{text}' is too large"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The key commands print JSON, so their errors are JSON too.
    let json = cli.json || matches!(cli.command, Command::Keys(_) | Command::Logs(_));
    match run(cli) {
        Ok(code) => code,
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            let code = error_code(&err);
            let message = one_sentence(&err);
            if json {
                let obj = serde_json::json!({"error": message, "code": code, "details": {}});
                eprintln!("{obj}");
            } else {
                eprintln!("error: {message}");
            }
            ExitCode::FAILURE
        }
    }
}

/// A reader that closed our stdout early (`| head`) is not an error.
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|c| c.downcast_ref::<std::io::Error>().is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe))
}

/// A build error with the command-line flag that changes the outcome, when there is one
/// (the library's messages name options, not flags).
fn with_flag_hint(err: breachdex::BuildError) -> anyhow::Error {
    use breachdex::{BuildError, MemoryBudgetError, UnsafeOutput};
    let hint = match &err {
        BuildError::Output(UnsafeOutput::Exists(_)) => Some("pass --force to replace an index"),
        BuildError::Output(UnsafeOutput::RejectsPathTaken { .. }) => Some("see --rejects"),
        BuildError::Memory(MemoryBudgetError::TooSmall { .. } | MemoryBudgetError::MoreThanMachine { .. }) => {
            Some("see --memory")
        }
        BuildError::NoThreads => Some("see --threads"),
        BuildError::Key(_) => Some("see --hash and --salt-file"),
        _ => None,
    };
    match hint {
        Some(hint) => {
            let message = format!("{err} ({hint})");
            anyhow::Error::new(err).context(message)
        }
        None => err.into(),
    }
}

/// The error chain as one sentence, skipping causes a message already spells out, with
/// the flag to use when the library says a salt is missing or not wanted.
fn one_sentence(err: &anyhow::Error) -> String {
    let mut message = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if !message.contains(&text) {
            if !message.is_empty() {
                message.push_str(": ");
            }
            message.push_str(&text);
        }
    }
    if let Some(hint) = flag_hint(err) {
        message.push_str(hint);
    }
    message
}

/// The command-line remedy for an open error about the salt (the library names no
/// flags; build errors get theirs from [`with_flag_hint`]).
fn flag_hint(err: &anyhow::Error) -> Option<&'static str> {
    /// The error of a segment's open is the one that says what to do.
    fn innermost(e: &OpenError) -> &OpenError {
        match e {
            OpenError::Segment { source, .. } => innermost(source),
            e => e,
        }
    }
    err.chain().find_map(|cause| match cause.downcast_ref::<OpenError>().map(innermost) {
        Some(OpenError::SaltRequired(_)) => Some(" (give it with --salt-file)"),
        Some(OpenError::SaltUnused) => Some(" (drop --salt-file)"),
        Some(OpenError::WrongSalt) => Some(" (give --salt-file the file of the salt the index was built with)"),
        _ => None,
    })
}

fn error_code(err: &anyhow::Error) -> &'static str {
    for cause in err.chain() {
        if let Some(admin) = cause.downcast_ref::<server::AdminFailure>() {
            return admin.0.code();
        }
        if let Some(e) = cause.downcast_ref::<LookupError>() {
            return e.code();
        }
        if let Some(e) = cause.downcast_ref::<RecordsError>() {
            return e.code();
        }
        if let Some(e) = cause.downcast_ref::<PasswordError>() {
            return e.code();
        }
        if cause.is::<OpenError>() || cause.is::<breachdex::manifest::ManifestError>() {
            return "index_error";
        }
        if cause.is::<breachdex::CatalogError>() {
            return "catalog_error";
        }
        if cause.is::<breachdex::UpgradeError>() {
            return "upgrade_error";
        }
        if cause.is::<breachdex::UpdateError>() {
            return "update_error";
        }
        if cause.is::<breachdex::BuildError>() {
            return "build_error";
        }
        if cause.is::<std::io::Error>() {
            return "io_error";
        }
    }
    "error"
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Build(args) => cmd_build(args, cli.json),
        Command::Check(args) => cmd_check(args),
        Command::Records(args) => cmd_records(args),
        Command::Password(args) => cmd_password(args),
        Command::Info { dir } => cmd_info(&dir, cli.json),
        Command::Verify { dir } => cmd_verify(&dir, cli.json),
        Command::Upgrade(args) => cmd_upgrade(args, cli.json),
        Command::Add(args) => update::cmd_add(args, cli.json),
        Command::Remove(args) => update::cmd_remove(args, cli.json),
        Command::Compact(args) => update::cmd_compact(args, cli.json),
        Command::Changes(args) => update::cmd_changes(args),
        Command::Serve(args) => server::cmd_serve(args),
        Command::Keys(command) => server::cmd_keys(command),
        Command::Logs(args) => server::cmd_logs(args),
    }
}

fn read_salt(path: Option<&Path>) -> Result<Option<Salt>> {
    path.map(|p| Salt::from_file(p).map_err(anyhow::Error::from)).transpose()
}

struct Bar(indicatif::ProgressBar);

impl BuildProgress for Bar {
    fn begin(&self, total_bytes: u64) {
        self.0.set_length(total_bytes);
    }
    fn advance(&self, bytes: u64) {
        self.0.inc(bytes);
    }
    fn phase(&self, name: &'static str) {
        self.0.set_message(name);
    }
}

fn cmd_build(args: BuildArgs, json: bool) -> Result<ExitCode> {
    let catalog = Catalog::load(&args.catalog)?;
    let store =
        args.store.as_deref().map(AssetSet::parse_list).transpose().map_err(|e| anyhow::anyhow!("--store: {e}"))?;
    let bar = update::bar(args.quiet, update::BYTES_BAR);
    let source_date_epoch = update::source_date_epoch()?;
    let options = BuildOptions {
        hash_mode: args.hash,
        salt: read_salt(args.salt_file.as_deref())?,
        store,
        memory_budget: args.memory.unwrap_or(breachdex::DEFAULT_MEMORY_BUDGET),
        threads: args.threads,
        rejects_path: args.rejects,
        force: args.force,
        rejects_raw: args.rejects_raw,
        source_date_epoch,
        password_index: !args.no_password_index,
        accelerator: args.accelerator,
        progress: bar.clone().map(|b| b as Arc<dyn BuildProgress>),
    };
    let summary = build_index(&catalog, &args.out, &options);
    if let Some(bar) = &bar {
        bar.0.finish_and_clear();
    }
    let summary = summary.map_err(with_flag_hint)?;
    if json {
        outln!("{}", serde_json::to_string_pretty(&summary_json(&summary))?);
    } else {
        print_summary(&summary)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn cmd_upgrade(args: UpgradeArgs, json: bool) -> Result<ExitCode> {
    let bar = update::bar(args.quiet, update::ROWS_BAR);
    let options = breachdex::UpgradeOptions {
        salt: read_salt(args.salt_file.as_deref())?,
        threads: args.threads,
        force: args.force,
        progress: bar.clone().map(|b| b as Arc<dyn BuildProgress>),
    };
    let report = breachdex::upgrade_index(&args.old, &args.new, &options);
    if let Some(bar) = &bar {
        bar.0.finish_and_clear();
    }
    let report = report.map_err(|e| match e {
        breachdex::UpgradeError::Output(e) => with_flag_hint(e),
        e => e.into(),
    })?;
    if json {
        let obj = serde_json::json!({
            "index": report.out_dir, "from": args.old, "rows": report.rows, "checked_ids": report.checked_ids,
            "bytes_before": report.bytes_before, "bytes_after": report.bytes_after,
            "seconds": report.elapsed.as_secs_f64(), "records_per_second": report.records_per_second()});
        outln!("{}", serde_json::to_string_pretty(&obj)?);
    } else {
        outln!(
            "upgraded {} to {} in {:.2} s ({:.0} records/s)",
            args.old.display(),
            report.out_dir.display(),
            report.elapsed.as_secs_f64(),
            report.records_per_second()
        );
        outln!("  records        {} ({} document ids checked)", report.rows, report.checked_ids);
        outln!(
            "  size           {} -> {} ({} -> {} bytes)",
            human_bytes(report.bytes_before),
            human_bytes(report.bytes_after),
            report.bytes_before,
            report.bytes_after
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn summary_json(s: &BuildSummary) -> serde_json::Value {
    serde_json::json!({
        "index": s.out_dir,
        "hash_mode": s.hash_mode.name(),
        "records_read": s.records_read,
        "kept": s.kept,
        "rejected_records": s.rejected_records,
        "rejected_fields": s.rejected_fields,
        "file_errors": s.file_errors,
        "duplicates": s.duplicates,
        "email_keys": s.email_keys,
        "username_keys": s.username_keys,
        "password_hashes": s.password_hashes.map(|p| serde_json::json!({"sha1": p.sha1, "ntlm": p.ntlm})),
        "index_bytes": s.index_bytes,
        "input_bytes": s.input_bytes,
        "spilled_runs": s.spilled_runs,
        "seconds": s.elapsed.as_secs_f64(),
        "phase_seconds": s.phases.iter().map(|(n, d)| (n.to_string(), serde_json::json!(d.as_secs_f64()))).collect::<serde_json::Map<_, _>>(),
        "records_per_second": s.records_per_second(),
        "rejects": s.rejects_path,
        "rejects_raw": s.rejects_raw,
        "unknown_columns": s.unknown_columns.iter().map(|(f, c)| serde_json::json!({"file": f, "columns": c})).collect::<Vec<_>>(),
        "sources": s.sources.iter().map(|x| serde_json::json!({
            "id": x.id, "name": x.name, "records_read": x.records_read, "kept": x.kept,
            "rejected": x.rejected, "duplicates": x.duplicates})).collect::<Vec<_>>(),
    })
}

pub(crate) fn human_bytes(n: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 { format!("{n} B") } else { format!("{v:.1} {}", units[u]) }
}

fn print_summary(s: &BuildSummary) -> std::io::Result<()> {
    outln!(
        "built {} in {:.2} s ({:.0} records/s, hash mode {})",
        s.out_dir.display(),
        s.elapsed.as_secs_f64(),
        s.records_per_second(),
        s.hash_mode
    );
    outln!("  records read   {}", s.records_read);
    outln!("  kept           {}", s.kept);
    let rejects = match &s.rejects_path {
        Some(p) if s.rejects_raw => format!(" (see {})", p.display()),
        Some(p) => {
            format!(" (see {}; raw bytes left out of a hashed build's rejects, --rejects-raw keeps them)", p.display())
        }
        None => String::new(),
    };
    outln!("  rejected       {} records, {} fields{rejects}", s.rejected_records, s.rejected_fields);
    if s.file_errors > 0 {
        outln!("  file errors    {} (files whose reading stopped early, in the rejects file)", s.file_errors);
    }
    outln!("  duplicates     {}", s.duplicates);
    outln!("  keys           {} email, {} username", s.email_keys, s.username_keys);
    match s.password_hashes {
        Some(p) => outln!("  passwords      {} SHA-1, {} NTLM hashes", p.sha1, p.ntlm),
        None => outln!("  passwords      no password index (--no-password-index)"),
    }
    outln!(
        "  index size     {} ({} bytes with the manifest; input {})",
        human_bytes(s.index_bytes),
        s.index_bytes,
        human_bytes(s.input_bytes)
    );
    if s.spilled_runs > 0 {
        outln!("  sorted runs    {} spilled to disk", s.spilled_runs);
    }
    let phases: Vec<String> = s.phases.iter().map(|(n, d)| format!("{n} {:.2} s", d.as_secs_f64())).collect();
    outln!("  phases         {}", phases.join(", "));
    for (file, cols) in &s.unknown_columns {
        outln!("  ignored columns in {file}: {}", cols.join(", "));
    }
    outln!("  sources");
    let width = s.sources.iter().map(|x| x.name.len()).max().unwrap_or(0);
    for x in &s.sources {
        outln!(
            "    {:width$}  read {:>9}  kept {:>9}  rejected {:>7}  duplicates {:>7}",
            x.name,
            x.records_read,
            x.kept,
            x.rejected,
            x.duplicates
        );
    }
    Ok(())
}

fn open_index(dir: &Path, salt_file: Option<&Path>, populate: bool) -> Result<Index> {
    let options = OpenOptions { salt: read_salt(salt_file)?, populate };
    Index::open(dir, &options).map_err(|e| open_error(dir, e))
}

/// An open error for the user: named once by its path when it names one, else prefixed
/// with the index path.
fn open_error(dir: &Path, e: OpenError) -> anyhow::Error {
    match e {
        OpenError::NotAnIndex { .. } | OpenError::Io { .. } | OpenError::Manifest { .. } => e.into(),
        e => anyhow::Error::from(e).context(format!("cannot open index {}", dir.display())),
    }
}

fn cmd_check(args: CheckArgs) -> Result<ExitCode> {
    let index = args.target.open(args.populate)?;
    let now = args.as_of.map_or_else(UnixTime::now, UnixTime::midnight);
    let single = |query: Query<'_>| -> Result<ExitCode> {
        let result = index.check(&query, now)?;
        outln!("{}", serde_json::to_string_pretty(&result)?);
        Ok(ExitCode::SUCCESS)
    };
    if let Some(query) = args.target.single_query(args.kind) {
        return single(query);
    }
    let Some(batch) = &args.batch else {
        bail!("give one of --email, --username, --key or --batch");
    };
    let input: Box<dyn BufRead> = if batch.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(std::io::BufReader::new(
            std::fs::File::open(batch).with_context(|| format!("cannot open batch file {}", batch.display()))?,
        ))
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut lines = BatchLines { input, number: 0 };
    loop {
        // Chunks keep memory bounded on huge batches while checks run in parallel;
        // results are written in input order. A line that is not UTF-8 gets its own error
        // object like any other invalid line; only a failing read stops the batch, after
        // the lines read before it are answered.
        let mut chunk: Vec<(u64, Result<String, String>)> = Vec::with_capacity(8192);
        let mut read_error = None;
        while chunk.len() < 8192 {
            match lines.next_line() {
                Ok(Some(line)) => chunk.push(line),
                Ok(None) => break,
                Err(e) => {
                    read_error = Some(e);
                    break;
                }
            }
        }
        if chunk.is_empty() && read_error.is_none() {
            break;
        }
        let queries: Vec<Option<Query<'_>>> = chunk
            .iter()
            .map(|(_, line)| {
                let text = line.as_deref().ok()?;
                Some(match args.kind {
                    BatchKind::Auto => Query::auto(text),
                    BatchKind::Email => Query::Email(text),
                    BatchKind::Username => Query::Username(text),
                })
            })
            .collect();
        let valid: Vec<Query<'_>> = queries.iter().flatten().cloned().collect();
        let mut results = index.check_batch_par(&valid, now).into_iter();
        let answers: Vec<_> = queries.iter().map(|q| q.as_ref().and_then(|q| Some((q, results.next()?)))).collect();
        let rendered: Vec<String> = chunk
            .par_iter()
            .zip(answers.par_iter())
            .map(|((number, line), answer)| match (line, answer) {
                (_, Some((_, Ok(r)))) => serde_json::to_string(r).unwrap_or_default(),
                (_, Some((query, Err(e)))) => serde_json::json!({"checked": query.text(), "error": e.to_string(),
                    "code": e.code(), "details": {"line": number}})
                .to_string(),
                (Err(lossy), _) => serde_json::json!({"checked": lossy,
                    "error": format!("line {number} is not valid UTF-8"), "code": "validation_error",
                    "details": {"line": number}})
                .to_string(),
                (Ok(_), None) => serde_json::json!({"checked": "", "error": format!("line {number} was not checked"),
                    "code": "error", "details": {"line": number}})
                .to_string(),
            })
            .collect();
        for line in rendered {
            writeln!(out, "{line}")?;
        }
        if let Some(e) = read_error {
            out.flush()?;
            return Err(e)
                .with_context(|| format!("reading batch file {} after line {}", batch.display(), lines.number));
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// The lines of a batch file, numbered from 1, without their line end (`\n`, `\r\n`).
/// A line that is not valid UTF-8 is `Err` with its text, invalid bytes replaced by U+FFFD.
struct BatchLines {
    input: Box<dyn BufRead>,
    number: u64,
}

impl BatchLines {
    fn next_line(&mut self) -> std::io::Result<Option<(u64, Result<String, String>)>> {
        let mut bytes = Vec::new();
        if self.input.read_until(b'\n', &mut bytes)? == 0 {
            return Ok(None);
        }
        self.number += 1;
        if bytes.last() == Some(&b'\n') {
            bytes.pop();
        }
        while bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
        let line = String::from_utf8(bytes).map_err(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
        Ok(Some((self.number, line)))
    }
}

fn cmd_records(args: RecordsArgs) -> Result<ExitCode> {
    let position = match args.salt_position {
        SaltSide::Left => SaltPosition::Left,
        SaltSide::Right => SaltPosition::Right,
    };
    let policy =
        AssetPolicy::parse(args.allow.as_deref(), args.hash_assets.as_deref(), args.output_salt.as_deref(), position)
            .map_err(RecordsError::from)?;
    let index = args.target.open(false)?;
    let Some(query) = args.target.single_query(args.kind) else {
        bail!("give one of --email, --username or --key");
    };
    let first =
        RecordsRequest { cursor: args.cursor.as_deref(), limit: args.limit, ..RecordsRequest::new(query, &policy) };
    if !args.all {
        let page = index.records(&first)?;
        outln!("{}", serde_json::to_string_pretty(&page)?);
        return Ok(ExitCode::SUCCESS);
    }
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut cursor = args.cursor.clone();
    loop {
        let page = index.records(&RecordsRequest { cursor: cursor.as_deref(), ..first })?;
        for record in &page.results {
            serde_json::to_writer(&mut out, record)?;
            out.write_all(b"\n")?;
        }
        if page.cursor.is_empty() {
            break;
        }
        cursor = Some(page.cursor);
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// Reads the password for `password --stdin`: without echo from a terminal, else the
/// first line of stdin (its line end removed).
fn read_password_from_stdin() -> Result<String> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        return rpassword::prompt_password("Password: ").context("cannot read the password from the terminal");
    }
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line).context("cannot read the password from stdin")?;
    if read == 0 {
        bail!("no password on stdin (give one line)");
    }
    let end = line.trim_end_matches(['\n', '\r']).len();
    line.truncate(end);
    Ok(line)
}

fn cmd_password(args: PasswordArgs) -> Result<ExitCode> {
    let hashes: Vec<PasswordHash> = if let Some(hex) = &args.sha1 {
        vec![PasswordHash::from_hex(PasswordHashKind::Sha1, hex.trim())?]
    } else if let Some(hex) = &args.ntlm {
        vec![PasswordHash::from_hex(PasswordHashKind::Ntlm, hex.trim())?]
    } else {
        let password = read_password_from_stdin()?;
        vec![PasswordHash::sha1_of(&password), PasswordHash::ntlm_of(&password)]
    };
    let index = open_index(&args.index, args.salt_file.as_deref(), false)?;
    let Some(passwords) = index.passwords() else {
        bail!(
            "index {} has no password index (built before it existed, or with --no-password-index)",
            args.index.display()
        );
    };
    let mut out = serde_json::Map::new();
    let mut pwned = false;
    for hash in &hashes {
        let count = passwords.count(hash)?;
        pwned |= count > 0;
        out.insert(hash.kind().name().to_string(), serde_json::json!({"hash": hash.to_hex(), "count": count}));
    }
    out.insert("pwned".to_string(), serde_json::json!(pwned));
    outln!("{}", serde_json::to_string_pretty(&out)?);
    Ok(ExitCode::SUCCESS)
}

fn cmd_info(dir: &Path, json: bool) -> Result<ExitCode> {
    let m = match breachdex::read_root_manifest(dir)? {
        breachdex::RootManifest::Index(m) => *m,
        breachdex::RootManifest::Generation(g) => return update::print_generation(dir, &g, json),
    };
    if json {
        outln!("{}", serde_json::to_string_pretty(&m)?);
        return Ok(ExitCode::SUCCESS);
    }
    // The same total as the build summary's index size: every file and the manifest.
    let manifest_bytes = std::fs::metadata(dir.join(breachdex::manifest::FILE_NAME))
        .with_context(|| format!("cannot read index {}", dir.display()))?
        .len();
    let total: u64 = m.files.iter().map(|f| f.size).sum::<u64>() + manifest_bytes;
    outln!("index          {}", dir.display());
    outln!("format         {} version {}", m.format, m.format_version);
    outln!("build id       {}", m.build_id);
    outln!("created        {} by {}", m.created, m.builder);
    outln!("hash mode      {}", m.hash_mode);
    outln!(
        "salt           {}",
        m.salt_fingerprint.as_deref().map_or("none".to_string(), |f| format!("fingerprint {f}"))
    );
    outln!("stored assets  {}", m.stored_assets.join(", "));
    let c = &m.counts;
    outln!(
        "records        {} ({} with an email; {} email keys, {} username keys, {} username postings)",
        c.records,
        c.email_rows,
        c.email_keys,
        c.username_keys,
        c.username_postings
    );
    match (c.password_sha1, c.password_ntlm) {
        (Some(sha1), Some(ntlm)) => outln!("passwords      {sha1} SHA-1 hashes, {ntlm} NTLM hashes"),
        _ => outln!("passwords      none (no password index)"),
    }
    let b = &m.build_stats;
    outln!(
        "build input    {} records read, {} rejected, {} fields rejected, {} duplicates",
        b.records_read,
        b.rejected_records,
        b.rejected_fields,
        b.duplicates
    );
    if m.hash_mode == "xxh3-64" {
        let n = (c.email_keys + c.username_keys) as f64;
        outln!("false matches  ~{:.2e} per lookup of an absent key (n / 2^64)", n / 2f64.powi(64));
    }
    outln!("index size     {} ({} bytes with the {}-byte manifest)", human_bytes(total), total, manifest_bytes);
    outln!("files          {}", m.files.len());
    for f in &m.files {
        let per_record = if c.records > 0 { f.size as f64 / c.records as f64 } else { 0.0 };
        outln!("  {:28} {:>12}  {:>7.2} B/record  xxh3 {}", f.name, human_bytes(f.size), per_record, f.xxh3);
    }
    outln!("sources        {}", m.sources.len());
    for s in &m.sources {
        // Distinct identities (HIBP's PwnCount); "-" for an index built before they were counted.
        let identities = s.pwn_count.map_or_else(|| "-".to_string(), |n| n.to_string());
        outln!(
            "  {:>4}  {:30} {}  {:>10} records  {:>10} identities  {}",
            s.id,
            s.name,
            s.date,
            s.records,
            identities,
            s.title
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn cmd_verify(dir: &Path, json: bool) -> Result<ExitCode> {
    let report = breachdex::verify(dir)?;
    let bytes: u64 = report.files_checked.iter().map(|(_, s)| s).sum();
    if json {
        let obj = serde_json::json!({
            "index": dir, "ok": report.is_ok(), "files_checked": report.files_checked.len(),
            "bytes_checked": bytes, "problems": report.problems});
        outln!("{}", serde_json::to_string_pretty(&obj)?);
    } else if report.is_ok() {
        outln!("{}: ok ({} files, {} checked)", dir.display(), report.files_checked.len(), human_bytes(bytes));
    } else {
        for p in &report.problems {
            eprintln!("damaged: {p}");
        }
        eprintln!("{}: {} problem(s) found", dir.display(), report.problems.len());
    }
    Ok(if report.is_ok() { ExitCode::SUCCESS } else { ExitCode::from(3) })
}
