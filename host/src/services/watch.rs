//! Watching the manifest and the components for changes.
//!
//! Folders are watched, not files: editors and `cargo build` replace a file
//! by writing a temporary one and renaming it over, and a Kubernetes
//! ConfigMap swaps a `..data` symlink in the manifest's folder; a watch on
//! the old file would miss both. A change that names the manifest, a
//! component or `..data` (other files in those folders are ignored), once
//! the folders have been quiet for [`DEBOUNCE`], triggers one reload; a
//! reload that finds nothing changed swaps nothing.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use anyhow::Context as _;
use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher as _};

use crate::services::reload::{Reloader, Watched, watch_key};

/// How long the folders must be quiet before a reload starts: long enough
/// to coalesce an editor's or a compiler's burst of writes, short enough
/// that a change goes live fast.
pub const DEBOUNCE: Duration = Duration::from_millis(25);

/// The running watcher; dropping it stops watching.
pub struct Watcher {
    _watcher: Arc<Mutex<RecommendedWatcher>>,
}

/// Starts watching the reloader's folders; each debounced change runs a
/// reload on the watcher's own thread (off the request path).
pub fn start(reloader: Arc<Reloader>) -> anyhow::Result<Watcher> {
    let (tx, rx) = mpsc::channel::<()>();
    let files = Arc::new(RwLock::new(HashSet::<PathBuf>::new()));
    let event_files = files.clone();
    let watcher = notify::recommended_watcher(move |event: notify::Result<Event>| {
        match event {
            // Reads (ours included, during a reload) change nothing.
            Ok(event) if matches!(event.kind, EventKind::Access(_)) => {}
            Ok(event) => {
                let files = event_files.read().unwrap_or_else(|e| e.into_inner());
                let named = |path: &PathBuf| watch_key(path).is_some_and(|k| files.contains(&k));
                if event.paths.iter().any(named) {
                    let _ = tx.send(());
                }
            }
            Err(err) => tracing::warn!(error = %err, "file watcher error"),
        }
    })
    .context("starting the file watcher")?;
    let watcher = Arc::new(Mutex::new(watcher));
    let mut watched = HashSet::new();
    update_watches(&watcher, &files, &mut watched, reloader.watched());

    let thread_watcher = watcher.clone();
    std::thread::Builder::new()
        .name("wasmhost-watch".into())
        .spawn(move || {
            while rx.recv().is_ok() {
                // Wait for the burst of events to end.
                loop {
                    match rx.recv_timeout(DEBOUNCE) {
                        Ok(()) => continue,
                        Err(RecvTimeoutError::Timeout) => break,
                        Err(RecvTimeoutError::Disconnected) => return,
                    }
                }
                reloader.reload();
                update_watches(&thread_watcher, &files, &mut watched, reloader.watched());
            }
        })
        .context("starting the watcher thread")?;
    Ok(Watcher { _watcher: watcher })
}

fn update_watches(
    watcher: &Mutex<RecommendedWatcher>,
    files: &RwLock<HashSet<PathBuf>>,
    watched: &mut HashSet<PathBuf>,
    wanted: Watched,
) {
    *files.write().unwrap_or_else(|e| e.into_inner()) = wanted.files;
    let wanted: HashSet<PathBuf> = wanted.dirs.into_iter().collect();
    let mut watcher = watcher.lock().unwrap_or_else(|e| e.into_inner());
    for dir in watched.difference(&wanted) {
        let _ = watcher.unwatch(dir);
    }
    for dir in wanted.difference(watched) {
        if let Err(err) = watcher.watch(dir, RecursiveMode::NonRecursive) {
            tracing::warn!(dir = %dir.display(), error = %err, "cannot watch folder");
        }
    }
    *watched = wanted;
}
