//! `add`, `remove`, `compact` and `changes`: the incremental update commands (SPEC §13).
//! Each parses its flags, calls the library and renders the report.

use super::{Bar, parse_bytes, read_salt};
use anyhow::{Context, Result, bail};
use breachdex::{
    AddOptions, BuildProgress, Catalog, CompactOptions, IdentifierKind, Index, OpenOptions, RemoveOptions, RemoveTarget,
};
use clap::{Args, ValueEnum};
use std::io::{BufRead, IsTerminal};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Args)]
pub(crate) struct AddArgs {
    /// The index directory to add to.
    #[arg(long)]
    index: PathBuf,
    /// The catalog of the new dumps: new sources, or new files of sources the index has.
    #[arg(long)]
    catalog: PathBuf,
    /// File holding the index's salt (hashed modes).
    #[arg(long)]
    salt_file: Option<PathBuf>,
    /// Peak memory budget of the segment build, e.g. 512M, 2G (default 1G).
    #[arg(long, value_parser = parse_bytes)]
    memory: Option<u64>,
    /// Worker threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Where to write rejected lines (default: INDEX.gNNNNNNNN.rejects.jsonl beside INDEX).
    #[arg(long)]
    rejects: Option<PathBuf>,
    /// In hashed modes, keep the raw bytes of rejected lines in the rejects file.
    #[arg(long)]
    rejects_raw: bool,
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
}

#[derive(Copy, Clone, ValueEnum)]
pub(crate) enum KeyKind {
    Email,
    Username,
}

#[derive(Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["source", "identity", "identities", "key"])))]
pub(crate) struct RemoveArgs {
    /// The index directory.
    #[arg(long)]
    index: PathBuf,
    /// Retire a whole source (fabricated, retracted), by name.
    #[arg(long)]
    source: Option<String>,
    /// Remove an identity that opted out: an e-mail (with '@') or a username. Repeat for
    /// several.
    #[arg(long)]
    identity: Vec<String>,
    /// A file of identities to remove, one per line (`-` for stdin).
    #[arg(long)]
    identities: Option<PathBuf>,
    /// A derived key in hex (as `check --key` takes it). Repeat for several.
    #[arg(long)]
    key: Vec<String>,
    /// What --key is (default: both an e-mail and a username key).
    #[arg(long, value_enum)]
    kind: Option<KeyKind>,
    /// File holding the index's salt (hashed modes).
    #[arg(long)]
    salt_file: Option<PathBuf>,
}

#[derive(Args)]
pub(crate) struct CompactArgs {
    /// The index directory.
    #[arg(long)]
    index: PathBuf,
    /// File holding the index's salt (hashed modes).
    #[arg(long)]
    salt_file: Option<PathBuf>,
    /// Peak memory budget, e.g. 512M, 2G (default 1G).
    #[arg(long, value_parser = parse_bytes)]
    memory: Option<u64>,
    /// Worker threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
}

#[derive(Args)]
pub(crate) struct ChangesArgs {
    /// The index directory.
    #[arg(long)]
    index: PathBuf,
    /// List the changes of the generations after this one (1 = everything since the build).
    #[arg(long)]
    since: u64,
    /// File holding the index's salt (hashed modes).
    #[arg(long)]
    salt_file: Option<PathBuf>,
}

/// `SOURCE_DATE_EPOCH`, when set.
pub(crate) fn source_date_epoch() -> Result<Option<i64>> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) => Ok(Some(v.trim().parse::<i64>().with_context(|| format!("SOURCE_DATE_EPOCH '{v}' is not a number"))?)),
        Err(_) => Ok(None),
    }
}

/// Progress bar template of a command that reads dumps.
pub(crate) const BYTES_BAR: &str = "{spinner} {msg:10} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}";
/// Progress bar template of a command that reads an index's rows.
pub(crate) const ROWS_BAR: &str = "{spinner} {msg:10} [{bar:40}] {pos}/{len} rows {per_sec} eta {eta}";

/// A progress bar on a terminal, unless `quiet`.
pub(crate) fn bar(quiet: bool, template: &str) -> Option<Arc<Bar>> {
    (!quiet && std::io::stderr().is_terminal()).then(|| {
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template(template)
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        Arc::new(Bar(bar))
    })
}

pub(crate) fn cmd_add(args: AddArgs, json: bool) -> Result<ExitCode> {
    let catalog = Catalog::load(&args.catalog)?;
    let bar = bar(args.quiet, BYTES_BAR);
    let options = AddOptions {
        salt: read_salt(args.salt_file.as_deref())?,
        memory_budget: args.memory.unwrap_or(breachdex::DEFAULT_MEMORY_BUDGET),
        threads: args.threads,
        rejects_path: args.rejects,
        rejects_raw: args.rejects_raw,
        source_date_epoch: source_date_epoch()?,
        progress: bar.clone().map(|b| b as Arc<dyn BuildProgress>),
    };
    let report = breachdex::add_to_index(&args.index, &catalog, &options);
    if let Some(bar) = &bar {
        bar.0.finish_and_clear();
    }
    let report = report.map_err(|e| update_error(&args.index, e))?;
    let s = &report.summary;
    if json {
        let obj = serde_json::json!({
            "index": args.index, "generation": report.generation, "segment": report.segment,
            "records_read": s.records_read, "added": s.kept, "rejected_records": s.rejected_records,
            "duplicates": s.duplicates, "duplicates_across_segments": s.duplicates_across_segments,
            "suppressed": s.suppressed, "gained": report.gained, "rejects": s.rejects_path,
            "seconds": s.elapsed.as_secs_f64()});
        outln!("{}", serde_json::to_string_pretty(&obj)?);
    } else {
        outln!(
            "added generation {} to {} in {:.2} s ({})",
            report.generation,
            args.index.display(),
            s.elapsed.as_secs_f64(),
            report.segment.as_deref().unwrap_or("no new segment: every record was in the index already")
        );
        outln!("  records read   {}", s.records_read);
        outln!("  added          {}", s.kept);
        outln!("  rejected       {} records", s.rejected_records);
        outln!(
            "  dropped        {} duplicates within a source, {} already in the index, {} of removed identities",
            s.duplicates,
            s.duplicates_across_segments,
            s.suppressed
        );
        outln!("  changes        {} (key, source) pairs gained a breach", report.gained);
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn cmd_remove(args: RemoveArgs, json: bool) -> Result<ExitCode> {
    let target = if let Some(source) = args.source {
        RemoveTarget::Source(source)
    } else if !args.key.is_empty() {
        let kind = args.kind.map(|k| match k {
            KeyKind::Email => IdentifierKind::Email,
            KeyKind::Username => IdentifierKind::Username,
        });
        RemoveTarget::Keys(args.key.into_iter().map(|k| (k, kind)).collect())
    } else {
        let mut ids = args.identity;
        if let Some(file) = &args.identities {
            ids.extend(read_identities(file)?);
        }
        if ids.is_empty() {
            bail!("no identity to remove");
        }
        RemoveTarget::Identities(ids)
    };
    let options =
        RemoveOptions { salt: read_salt(args.salt_file.as_deref())?, source_date_epoch: source_date_epoch()? };
    let report =
        breachdex::remove_from_index(&args.index, &target, &options).map_err(|e| update_error(&args.index, e))?;
    if json {
        let obj = serde_json::json!({
            "index": args.index, "generation": report.generation, "records_removed": report.records_removed,
            "keys_suppressed": report.keys_suppressed, "lost": report.lost});
        outln!("{}", serde_json::to_string_pretty(&obj)?);
    } else {
        match report.generation {
            None => outln!("nothing to remove: no record matched and every key is already suppressed"),
            Some(g) => {
                outln!("removed in generation {g}: {} records no longer answered", report.records_removed);
                outln!("  keys suppressed {} (later adds drop their records)", report.keys_suppressed);
                outln!("  changes         {} (key, source) pairs lost a breach", report.lost);
                outln!("  the data stays on disk until `breachdex compact`");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// An update error; one that comes from opening the index names the index and keeps the
/// open error in the chain, so that a salt problem gets its `--salt-file` hint.
fn update_error(index: &Path, err: breachdex::UpdateError) -> anyhow::Error {
    match err {
        breachdex::UpdateError::Open(e) => super::open_error(index, e),
        e => e.into(),
    }
}

/// The identities of a file, one per line (blank lines skipped); a line that is not
/// UTF-8 is an error naming it.
fn read_identities(path: &Path) -> Result<Vec<String>> {
    let input: Box<dyn BufRead> = if path.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(std::io::BufReader::new(
            std::fs::File::open(path).with_context(|| format!("cannot open identities file {}", path.display()))?,
        ))
    };
    let mut out = Vec::new();
    for (i, line) in input.split(b'\n').enumerate() {
        let line = line.with_context(|| format!("cannot read {}", path.display()))?;
        let text =
            String::from_utf8(line).map_err(|_| anyhow::anyhow!("{}:{}: not UTF-8 text", path.display(), i + 1))?;
        let text = text.trim_end_matches('\r').trim();
        if !text.is_empty() {
            out.push(text.to_string());
        }
    }
    Ok(out)
}

pub(crate) fn cmd_compact(args: CompactArgs, json: bool) -> Result<ExitCode> {
    let bar = bar(args.quiet, ROWS_BAR);
    let options = CompactOptions {
        salt: read_salt(args.salt_file.as_deref())?,
        memory_budget: args.memory.unwrap_or(breachdex::DEFAULT_MEMORY_BUDGET),
        threads: args.threads,
        source_date_epoch: source_date_epoch()?,
        progress: bar.clone().map(|b| b as Arc<dyn BuildProgress>),
    };
    let report = breachdex::compact_index(&args.index, &options);
    if let Some(bar) = &bar {
        bar.0.finish_and_clear();
    }
    let report = report.map_err(|e| update_error(&args.index, e))?;
    let seconds = report.summary.as_ref().map(|s| s.elapsed.as_secs_f64());
    let records = report.summary.as_ref().map(|s| s.kept);
    if json {
        let obj = serde_json::json!({
            "index": args.index, "generation": report.generation, "segments_merged": report.segments_merged,
            "records": records, "records_dropped": report.records_dropped, "seconds": seconds});
        outln!("{}", serde_json::to_string_pretty(&obj)?);
    } else {
        match report.generation {
            None => outln!("{}: already compact (one segment, nothing removed)", args.index.display()),
            Some(g) => outln!(
                "compacted {} segments into one in generation {g}: {} records, {} removed records dropped ({:.2} s)",
                report.segments_merged,
                records.unwrap_or(0),
                report.records_dropped,
                seconds.unwrap_or(0.0)
            ),
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn cmd_changes(args: ChangesArgs) -> Result<ExitCode> {
    let options = OpenOptions { salt: read_salt(args.salt_file.as_deref())?, populate: false };
    let index = Index::open(&args.index, &options).map_err(|e| super::open_error(&args.index, e))?;
    let mode = index.hash_mode();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for change in index.changes(args.since)? {
        let obj = serde_json::json!({
            "generation": change.generation, "change": change.change.name(), "kind": change.kind,
            "key": change.key_text(mode), "source": index.source_name(change.source_id),
            "source_id": change.source_id});
        use std::io::Write as _;
        writeln!(out, "{obj}")?;
    }
    use std::io::Write as _;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// `info` of an updated index: its generation, segments, sources and history.
pub(crate) fn print_generation(dir: &Path, g: &breachdex::GenerationManifest, json: bool) -> Result<ExitCode> {
    if json {
        outln!("{}", serde_json::to_string_pretty(g)?);
        return Ok(ExitCode::SUCCESS);
    }
    let size = |rel: &str| std::fs::metadata(dir.join(rel)).map(|m| m.len()).unwrap_or(0);
    let segment_bytes = |name: &str| -> u64 {
        let base = if name == "." { dir.to_path_buf() } else { dir.join(name) };
        let manifest = if name == "." { base.join("root.manifest.json") } else { base.join("manifest.json") };
        let listed: u64 = breachdex::read_manifest(&base)
            .map(|m| m.files.iter().map(|f| f.size).sum())
            .or_else(|_| {
                std::fs::read_to_string(&manifest)
                    .ok()
                    .and_then(|t| breachdex::Manifest::from_file_text(&t).ok())
                    .map(|m| m.files.iter().map(|f| f.size).sum())
                    .ok_or(())
            })
            .unwrap_or(0);
        listed + std::fs::metadata(&manifest).map(|m| m.len()).unwrap_or(0)
    };
    outln!("index          {}", dir.display());
    outln!("format         {} version {} (an updated index)", g.format, g.format_version);
    outln!("generation     {} ({}, {})", g.generation, g.operation, g.created);
    outln!("generation id  {}", g.generation_id);
    outln!("content id     {}", g.content_id);
    outln!("hash mode      {}", g.hash_mode);
    outln!(
        "salt           {}",
        g.salt_fingerprint.as_deref().map_or("none".to_string(), |f| format!("fingerprint {f}"))
    );
    let live: u64 = g.sources.iter().map(|s| s.records).sum();
    outln!("records        {live} live");
    let mut total = size("manifest.json");
    outln!("segments       {}", g.segments.len());
    for s in &g.segments {
        let bytes = segment_bytes(&s.name);
        total += bytes;
        let deleted = s.deletes.as_ref().map_or(0, |d| d.deleted);
        outln!(
            "  {:22} {:>10} rows  {:>8} deleted  {:>10}  build {}",
            s.name,
            s.rows,
            deleted,
            super::human_bytes(bytes),
            s.build_id
        );
    }
    let layer: u64 = g.files.iter().map(|f| f.size).sum();
    total += layer;
    outln!(
        "layer files    {} ({}: deletions, subtractions, suppressed keys, change feed, key filters)",
        g.files.len(),
        super::human_bytes(layer)
    );
    outln!("index size     {} ({total} bytes)", super::human_bytes(total));
    outln!("sources        {}", g.sources.len());
    for s in &g.sources {
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
    for r in &g.removed_sources {
        outln!("  {:>4}  {:30} removed in generation {}", r.id, r.name, r.generation);
    }
    outln!("history");
    for h in &g.history {
        outln!(
            "  {:>4}  {:8} {}  +{} records (read {}, already in the index {}, suppressed {}), -{} records",
            h.generation,
            h.operation,
            h.created,
            h.records_added,
            h.records_read,
            h.duplicates_across_segments,
            h.suppressed,
            h.records_removed
        );
    }
    Ok(ExitCode::SUCCESS)
}
