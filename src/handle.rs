//! [`IndexHandle`]: a long-running service's view of a *published* index path, which
//! picks up new builds without a restart and without a moment of failed lookups.
//!
//! # Publishing protocol
//!
//! Indexes are immutable and memory-mapped, so a new build is never written over an old
//! one. Instead:
//!
//! 1. build each version into a new directory (`builds/2026-11-23`, `builds/2026-11-24`);
//! 2. publish it by atomically repointing a symlink (`current` → `builds/2026-11-24`):
//!    create the new link under a temporary name and `rename(2)` it over the old one
//!    ([`publish_symlink`] does exactly that; in a shell, `ln -s builds/X current.tmp &&
//!    mv -T current.tmp current`; plain `ln -sfn` removes the old link first, leaving a
//!    short gap in which the path does not exist);
//! 3. readers hold an [`IndexHandle`] on `current` and call [`IndexHandle::refresh`] (or
//!    run [`IndexHandle::watch`]); in-flight lookups finish on the snapshot they started
//!    with, and the next [`IndexHandle::current`] returns the new build;
//! 4. delete an old build directory whenever convenient: a process that still has it
//!    open keeps its mapped files alive (Linux keeps unlinked files that are mapped), so
//!    deletion never disturbs a reader. Never truncate or rewrite files in place: a file
//!    truncated under a mapping raises `SIGBUS` in every reader.
//!
//! The handle resolves the symlink once per refresh and opens the resolved directory,
//! so a swap that happens while it opens cannot mix the files of two builds.

use crate::generation::read_generation_id;
use crate::index::{Index, OpenError, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

/// The current build behind a published path, swapped atomically on [`refresh`].
///
/// `Send + Sync`: share it (in an `Arc`) across threads. Each lookup should take a
/// snapshot with [`current`] (a reference-count increment) and use it to the end, so
/// one request never mixes two builds.
///
/// [`refresh`]: IndexHandle::refresh
/// [`current`]: IndexHandle::current
#[derive(Debug)]
pub struct IndexHandle {
    path: PathBuf,
    options: OpenOptions,
    current: RwLock<Index>,
    /// Serializes refreshes, so two callers never open the same build twice.
    refreshing: Mutex<()>,
}

impl IndexHandle {
    /// Opens the index published at `path` (a directory or a symlink to one).
    pub fn open(path: impl Into<PathBuf>, options: OpenOptions) -> Result<IndexHandle, OpenError> {
        let path = path.into();
        let index = open_resolved(&path, &options)?;
        Ok(IndexHandle { path, options, current: RwLock::new(index), refreshing: Mutex::new(()) })
    }

    /// The published path this handle follows.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A snapshot of the current build. Cheap (an `Arc` clone under a read lock held only
    /// for the clone); stays valid and unchanged however many swaps follow.
    pub fn current(&self) -> Index {
        self.current.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The build id of the current build (from its manifest; of an updated index, its
    /// base segment's).
    pub fn build_id(&self) -> String {
        self.current().manifest().build_id.clone()
    }

    /// The generation id of the current index ([`Index::generation_id`]): changes with
    /// every published build and every generation `add`, `remove` or `compact`
    /// publishes.
    pub fn generation_id(&self) -> String {
        self.current().generation_id().to_string()
    }

    /// Looks at the published path again: when it now holds another build or another
    /// generation (a different [`Index::generation_id`]: a new build published, or an
    /// `add`, `remove` or `compact` of the index), opens it and, only once it opened,
    /// makes it current.
    ///
    /// `Ok(true)`: swapped; `Ok(false)`: the same build is still published. On an error
    /// (the path is missing for a moment, the new build is damaged or incomplete, the
    /// salt does not fit) the current build stays in service and the error is returned.
    pub fn refresh(&self) -> Result<bool, OpenError> {
        let _serial = self.refreshing.lock().unwrap_or_else(|e| e.into_inner());
        let resolved = resolve(&self.path)?;
        if read_generation_id(&resolved)? == self.generation_id() {
            return Ok(false);
        }
        let index = Index::open(&resolved, &self.options)?;
        if index.generation_id() == self.generation_id() {
            return Ok(false);
        }
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = index;
        Ok(true)
    }

    /// Starts a thread that calls [`refresh`](IndexHandle::refresh) every `interval`
    /// until the returned [`Watcher`] is dropped.
    pub fn watch(self: &Arc<Self>, interval: Duration) -> Watcher {
        let (stop, stopped) = mpsc::channel::<()>();
        let handle = Arc::clone(self);
        let state = Arc::new(WatchState::default());
        let thread_state = Arc::clone(&state);
        let thread = std::thread::Builder::new()
            .name("breachdex-index-watch".into())
            .spawn(move || {
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(interval) {
                    let outcome = handle.refresh();
                    let mut last = thread_state.last_error.lock().unwrap_or_else(|e| e.into_inner());
                    match outcome {
                        Ok(swapped) => {
                            *last = None;
                            if swapped {
                                thread_state.swapped.store(true, Ordering::Relaxed);
                            }
                        }
                        Err(e) => *last = Some(e.to_string()),
                    }
                }
            })
            .expect("spawn the index watch thread");
        Watcher { stop: Some(stop), thread: Some(thread), state }
    }
}

#[derive(Debug, Default)]
struct WatchState {
    last_error: Mutex<Option<String>>,
    swapped: AtomicBool,
}

/// The polling thread of [`IndexHandle::watch`]; stops (and joins) when dropped.
#[derive(Debug)]
pub struct Watcher {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    state: Arc<WatchState>,
}

impl Watcher {
    /// The error of the latest refresh, if it failed (the old build is still served).
    pub fn last_error(&self) -> Option<String> {
        self.state.last_error.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Whether any refresh swapped builds since the last call.
    pub fn take_swapped(&self) -> bool {
        self.state.swapped.swap(false, Ordering::Relaxed)
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Publishes `target` (an index directory) at `link` atomically: a new symlink is
/// created beside `link` and renamed over it, so `link` always names a complete index
/// (the old or the new one). `target` is stored as given (relative targets resolve
/// against `link`'s directory).
#[cfg(unix)]
pub fn publish_symlink(target: &Path, link: &Path) -> std::io::Result<()> {
    let name = link.file_name().ok_or_else(|| std::io::Error::other("the link path has no file name"))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".publish-{}", std::process::id()));
    let tmp = link.with_file_name(tmp_name);
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target, &tmp)?;
    std::fs::rename(&tmp, link).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// `path` with its symlinks resolved, so that one open reads one build's files.
fn resolve(path: &Path) -> Result<PathBuf, OpenError> {
    std::fs::canonicalize(path).map_err(|source| OpenError::Io { path: path.to_path_buf(), source })
}

fn open_resolved(path: &Path, options: &OpenOptions) -> Result<Index, OpenError> {
    Index::open(&resolve(path)?, options)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handle_is_send_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<IndexHandle>();
        assert_send_sync::<Watcher>();
    }
}
