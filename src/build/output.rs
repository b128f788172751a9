//! Where a build writes, and the rules that keep it from touching anything that is not
//! its own output.
//!
//! A build stages the new index in a fresh hidden folder beside the output and renames
//! it into place when it is complete, so a failed build leaves nothing behind and a
//! reader never sees half an index. Before any work it checks that:
//! - the output's parent folder exists;
//! - an existing output is replaced only when asked to, and only when it is a breachdex
//!   index (a folder whose `manifest.json` names itself one and which holds nothing but
//!   the files that manifest lists), an empty folder, or a symbolic link to either;
//! - neither the output nor the rejects file is, or holds, the catalog or a dump file;
//! - an existing rejects file is overwritten only when it is a rejects file.

use super::{BuildError, io_err};
use crate::catalog::Catalog;
use crate::format::manifest;
use std::path::{Path, PathBuf};

/// Why an existing output or rejects path must not be written over.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UnsafeOutput {
    /// The output's parent folder does not exist.
    #[error("cannot create {out}: its parent folder {parent} does not exist; create it first")]
    MissingParent {
        /// The output asked for.
        out: PathBuf,
        /// Its parent folder, which is missing.
        parent: PathBuf,
    },
    /// The output exists and replacing it was not asked for.
    #[error("{0} already exists; choose another output folder, or replace it if it is a breachdex index")]
    Exists(PathBuf),
    /// The output is not a breachdex index, so it is never replaced.
    #[error("{path} is {what}, not a breachdex index; it is never replaced: choose another output folder")]
    NotAnIndex {
        /// The output.
        path: PathBuf,
        /// What it is (`a regular file`, `a folder without a breachdex manifest`, ...).
        what: String,
    },
    /// The output holds files its manifest does not list.
    #[error(
        "{path} holds {entry}, which is not a file of the index there; it is never replaced: \
         move that file out or choose another output folder"
    )]
    ForeignFile {
        /// The output.
        path: PathBuf,
        /// The first foreign entry found.
        entry: String,
    },
    /// The output is, or holds, the catalog or one of its dump files.
    #[error(
        "{path} holds the build's input {input}; choose an output folder that holds no catalog, dump file or index being upgraded"
    )]
    HoldsInput {
        /// The output (or rejects file).
        path: PathBuf,
        /// The catalog or dump file.
        input: PathBuf,
    },
    /// The rejects path is taken by a file that is not a rejects file.
    #[error(
        "the rejects file {path} already exists and is not a rejects file from an earlier build; \
         it is never overwritten: move it or choose another rejects path"
    )]
    RejectsPathTaken {
        /// The rejects path.
        path: PathBuf,
    },
}

/// The checked output folder of a build or an upgrade.
#[derive(Debug)]
pub(crate) struct OutputPlan {
    /// Where the index goes.
    pub out_dir: PathBuf,
    /// Its parent folder (`.` for a bare name).
    pub parent: PathBuf,
    /// Its file name.
    pub name: String,
}

impl OutputPlan {
    /// Checks `out_dir` and the rejects path of a build from `catalog` against the rules
    /// of this module; returns the plan and the rejects path.
    pub fn check(
        catalog: &Catalog,
        out_dir: &Path,
        rejects_path: Option<&Path>,
        replace: bool,
    ) -> Result<(OutputPlan, PathBuf), BuildError> {
        let inputs = input_files(catalog);
        let plan = OutputPlan::check_index_dir(out_dir, &inputs, replace)?;
        let rejects_path =
            rejects_path.map_or_else(|| plan.parent.join(format!("{}.rejects.jsonl", plan.name)), Path::to_path_buf);
        check_rejects_path(&rejects_path, &inputs)?;
        Ok((plan, rejects_path))
    }

    /// Checks `out_dir`, the folder an index is to be written to, against the rules of
    /// this module: its parent exists, and anything already there is replaced only when
    /// `replace` is asked for and it is an index (or an empty folder) holding none of
    /// `inputs` (canonical paths the writing reads).
    pub fn check_index_dir(out_dir: &Path, inputs: &[PathBuf], replace: bool) -> Result<OutputPlan, BuildError> {
        let name = out_dir
            .file_name()
            .ok_or_else(|| BuildError::InvalidOption(format!("{} is not a usable folder name", out_dir.display())))?
            .to_string_lossy()
            .into_owned();
        let parent = match out_dir.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if !parent.exists() {
            return Err(UnsafeOutput::MissingParent { out: out_dir.to_path_buf(), parent }.into());
        }
        if !parent.is_dir() {
            return Err(BuildError::InvalidOption(format!(
                "cannot create {}: {} is not a folder",
                out_dir.display(),
                parent.display()
            )));
        }
        if std::fs::symlink_metadata(out_dir).is_ok() {
            if !replace {
                return Err(UnsafeOutput::Exists(out_dir.to_path_buf()).into());
            }
            refuse_if_holds_input(out_dir, inputs)?;
            check_replaceable_index(out_dir)?;
        }
        Ok(OutputPlan { out_dir: out_dir.to_path_buf(), parent, name })
    }
}

/// The catalog and every dump file, canonical.
fn input_files(catalog: &Catalog) -> Vec<PathBuf> {
    std::iter::once(&catalog.path)
        .chain(catalog.sources.iter().flat_map(|s| s.files.iter().map(|f| &f.path)))
        .map(|p| p.canonicalize().unwrap_or_else(|_| p.clone()))
        .collect()
}

fn refuse_if_holds_input(path: &Path, inputs: &[PathBuf]) -> Result<(), BuildError> {
    let Ok(canonical) = path.canonicalize() else { return Ok(()) };
    match inputs.iter().find(|input| input.starts_with(&canonical)) {
        Some(input) => Err(UnsafeOutput::HoldsInput { path: path.to_path_buf(), input: input.clone() }.into()),
        None => Ok(()),
    }
}

/// Refuses anything at `out_dir` that is not a breachdex index or an empty folder (or a
/// link to one).
fn check_replaceable_index(out_dir: &Path) -> Result<(), BuildError> {
    let not_index = |what: &str| -> BuildError {
        UnsafeOutput::NotAnIndex { path: out_dir.to_path_buf(), what: what.to_owned() }.into()
    };
    // `metadata` follows a symbolic link: a link to an index may be replaced (the link
    // is moved aside and removed, the index it points to stays).
    let meta = std::fs::metadata(out_dir).map_err(|_| not_index("a symbolic link to nothing"))?;
    if !meta.is_dir() {
        return Err(not_index(if meta.is_file() { "a regular file" } else { "not a folder" }));
    }
    let list = || std::fs::read_dir(out_dir).map_err(io_err(format!("listing {}", out_dir.display())));
    if list()?.next().is_none() {
        return Ok(());
    }
    let claimed = manifest::claimed_files(out_dir).ok_or_else(|| not_index("a folder without a breachdex manifest"))?;
    for entry in list()? {
        let entry = entry.map_err(io_err(format!("listing {}", out_dir.display())))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let is_file = entry.file_type().is_ok_and(|t| t.is_file());
        let is_layer_dir = entry.file_type().is_ok_and(|t| t.is_dir()) && manifest::LAYER_DIRS.contains(&name.as_str());
        if !(is_file || is_layer_dir) || !claimed.contains(&name) {
            return Err(UnsafeOutput::ForeignFile { path: out_dir.to_path_buf(), entry: name }.into());
        }
    }
    Ok(())
}

/// Refuses a rejects path that is an input, or an existing file that is not a rejects file.
fn check_rejects_path(path: &Path, inputs: &[PathBuf]) -> Result<(), BuildError> {
    if let Ok(canonical) = path.canonicalize()
        && let Some(input) = inputs.iter().find(|input| **input == canonical)
    {
        return Err(UnsafeOutput::HoldsInput { path: path.to_path_buf(), input: input.clone() }.into());
    }
    if std::fs::symlink_metadata(path).is_err() {
        return Ok(());
    }
    if is_rejects_file(path) { Ok(()) } else { Err(UnsafeOutput::RejectsPathTaken { path: path.to_path_buf() }.into()) }
}

/// Whether `path` is a regular file that is empty or whose first line is a rejects line.
fn is_rejects_file(path: &Path) -> bool {
    use std::io::{BufRead, Read};
    let Ok(meta) = std::fs::symlink_metadata(path) else { return false };
    if !meta.is_file() {
        return false;
    }
    let Ok(file) = std::fs::File::open(path) else { return false };
    let mut first = String::new();
    // A rejects line holds at most 4 KiB of raw bytes, escaped: 64 KiB is ample.
    if std::io::BufReader::new(file.take(64 << 10)).read_line(&mut first).is_err() {
        return false;
    }
    if first.is_empty() {
        return true;
    }
    let Ok(serde_json::Value::Object(line)) = serde_json::from_str::<serde_json::Value>(&first) else { return false };
    ["file", "line", "reason", "raw_len"].iter().all(|key| line.contains_key(*key))
}

/// The staging folder and spill folder of a build, beside the output. Dropping it
/// removes both; [`Staging::publish`] renames the staged index into place instead.
pub(crate) struct Staging {
    index: StagedDir,
    spill: tempfile::TempDir,
}

/// A folder this build created; removed on drop unless kept.
struct StagedDir(Option<PathBuf>);

impl StagedDir {
    fn path(&self) -> &Path {
        self.0.as_deref().unwrap_or(Path::new("."))
    }

    fn keep(mut self) {
        self.0 = None;
    }
}

impl Drop for StagedDir {
    fn drop(&mut self) {
        if let Some(dir) = self.0.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

impl Staging {
    /// Creates a fresh staging folder and spill folder in the output's parent. The
    /// staging folder gets the permissions of an ordinary new folder (it becomes the
    /// index), under a name nothing else holds: nothing there is ever removed.
    pub fn create(plan: &OutputPlan) -> Result<Staging, BuildError> {
        let base = format!(".{}.tmp-{}", plan.name, std::process::id());
        let index = loop {
            let candidate = unused_name(&plan.parent, &base);
            match std::fs::create_dir(&candidate) {
                Ok(()) => break StagedDir(Some(candidate)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(io_err(format!("creating {}", candidate.display()))(e)),
            }
        };
        let spill = tempfile::Builder::new()
            .prefix(".breachdex-spill-")
            .tempdir_in(&plan.parent)
            .map_err(io_err(format!("creating a spill folder in {}", plan.parent.display())))?;
        Ok(Staging { index, spill })
    }

    /// Where the index files are written.
    pub fn index_dir(&self) -> &Path {
        self.index.path()
    }

    /// Where sorted runs and column spills go.
    pub fn spill_dir(&self) -> &Path {
        self.spill.path()
    }

    /// Renames the staged index to the output. An existing output is checked once more
    /// (it may have changed during the build), moved aside, and removed once the new
    /// index is in place.
    pub fn publish(self, plan: &OutputPlan) -> Result<(), BuildError> {
        let Staging { index, spill } = self;
        drop(spill);
        let out = &plan.out_dir;
        let old = if std::fs::symlink_metadata(out).is_ok() {
            check_replaceable_index(out)?;
            let aside = unused_name(&plan.parent, &format!(".{}.old-{}", plan.name, std::process::id()));
            std::fs::rename(out, &aside).map_err(io_err(format!("moving the old {} aside", out.display())))?;
            Some(aside)
        } else {
            None
        };
        if let Err(e) = std::fs::rename(index.path(), out) {
            if let Some(aside) = &old {
                let _ = std::fs::rename(aside, out);
            }
            return Err(io_err(format!("renaming the new index to {}", out.display()))(e));
        }
        // The staged folder is the output now: it must not be removed.
        index.keep();
        if let Some(aside) = old {
            // A symbolic link is removed itself, never what it points to.
            let _ = std::fs::remove_dir_all(&aside).or_else(|_| std::fs::remove_file(&aside));
        }
        let _ = sync_dir(&plan.parent);
        Ok(())
    }
}

/// `base`, or `base-N` for the first N that names nothing in `dir`.
fn unused_name(dir: &Path, base: &str) -> PathBuf {
    let mut candidate = dir.join(base);
    let mut n = 0u32;
    while std::fs::symlink_metadata(&candidate).is_ok() {
        n += 1;
        candidate = dir.join(format!("{base}-{n}"));
    }
    candidate
}

/// Flushes a folder's entries to disk.
pub(crate) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}
