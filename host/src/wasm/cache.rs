//! The precompiled-artifact cache (`[host] cache_dir`): compiled components
//! on disk, keyed by the component's sha256 and a fingerprint of the engine
//! (wasmtime version and every setting that affects compiled code), so a
//! restart or a cold start loads machine code instead of compiling.
//!
//! Loading precompiled code is unsafe by nature: only files this host wrote
//! into its own owner-only directory are loaded, they are written
//! atomically (temporary file, then rename), and a corrupt, truncated or
//! mismatched artifact is a cache miss (recompiled and replaced), never a
//! crash.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use wasmtime::Engine;
use wasmtime::component::Component;

/// Where a component's machine code came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Loaded from the cache.
    Cache,
    /// Compiled now (and stored, when the cache is writable).
    Compiled,
}

/// The on-disk cache of compiled components.
pub struct ArtifactCache {
    /// The cache directory (created on first store).
    dir: PathBuf,
    /// Artifact writes still running (joined by [`ArtifactCache::flush`]).
    pending: std::sync::Mutex<Vec<std::thread::JoinHandle<()>>>,
}

impl ArtifactCache {
    /// A cache in `dir`; artifacts of different engines (configurations,
    /// wasmtime versions) sit side by side under different names.
    pub fn new(dir: PathBuf) -> Self {
        ArtifactCache {
            dir,
            pending: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// The component with content hash `sha256` and bytes `bytes`: loaded
    /// from the cache if a usable artifact is there, else compiled (and
    /// stored).
    pub fn component(
        &self,
        engine: &Engine,
        bytes: &[u8],
        sha256: &str,
    ) -> anyhow::Result<(Component, Source)> {
        if let Some(component) = self.cached(engine, sha256) {
            return Ok((component, Source::Cache));
        }
        let path = self.path(engine, sha256);
        let component = crate::wasm::priority::compiling(|| Component::from_binary(engine, bytes))
            .map_err(anyhow::Error::from)?;
        // Storing is off the critical path: the caller serves the component
        // while its machine code is written for the next start.
        match component.serialize() {
            Ok(artifact) => {
                let (dir, path) = (self.dir.clone(), path.clone());
                let write = std::thread::spawn(move || {
                    if let Err(err) = store(&dir, &path, &artifact) {
                        tracing::warn!(
                            dir = %dir.display(),
                            error = %format!("{err:#}"),
                            "cannot write the component cache; compiling without it"
                        );
                    }
                });
                let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
                pending.retain(|w| !w.is_finished());
                pending.push(write);
            }
            Err(err) => tracing::warn!(error = %err, "cannot serialize a compiled component"),
        }
        Ok((component, Source::Compiled))
    }

    /// Whether an artifact for `sha256` and `engine` is on disk (usable or
    /// not: that is found out when it is loaded).
    pub fn has(&self, engine: &Engine, sha256: &str) -> bool {
        self.path(engine, sha256).is_file()
    }

    /// The component with content hash `sha256`, if the cache has a usable
    /// artifact of it for `engine`. An unusable one is logged and ignored.
    pub fn cached(&self, engine: &Engine, sha256: &str) -> Option<Component> {
        let path = self.path(engine, sha256);
        if !path.is_file() {
            return None;
        }
        // SAFETY: the file is in the host's own owner-only cache directory
        // and was written (atomically) by this host from
        // `Component::serialize`; wasmtime checks its header and engine
        // compatibility and refuses anything else.
        match unsafe { Component::deserialize_file(engine, &path) } {
            Ok(component) => Some(component),
            Err(err) => {
                tracing::warn!(
                    path = %path.display(),
                    error = %err,
                    "unusable cache artifact; recompiling"
                );
                None
            }
        }
    }

    /// Waits for artifact writes still running (before a process exits).
    pub fn flush(&self) {
        let pending = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()));
        for write in pending {
            let _ = write.join();
        }
    }

    /// `<sha256>-<fingerprint of the engine's compiled-code compatibility>.cwasm`
    fn path(&self, engine: &Engine, sha256: &str) -> PathBuf {
        let mut hasher = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        self.dir
            .join(format!("{sha256}-{:016x}.cwasm", hasher.finish()))
    }
}

/// Writes `artifact` to `path` in `dir` atomically (temporary file, then
/// rename). No fsync: after a crash, a torn file fails wasmtime's checks
/// and is recompiled.
fn store(dir: &Path, path: &Path, artifact: &[u8]) -> anyhow::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("creating `{}`", dir.display()))?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("creating `{}`", tmp.display()))?;
    file.write_all(artifact)
        .with_context(|| format!("writing `{}`", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming to `{}`", path.display()))
}
