//! Compiled components, and the in-memory cache of them by content hash:
//! unchanged bytes are never compiled twice, whichever service (or version
//! of a service) uses them.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::Path;
use std::sync::{Arc, Weak};

use anyhow::Context as _;
use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;
use wasmtime_wasi_http::handler::ProxyPre;

use crate::observe::metrics::Metrics;
use crate::wasm::cache::{ArtifactCache, Source};
use crate::wasm::engine::{Engines, Flavor, Fuel, Runtime};
use crate::wasm::function_cache::FunctionCache;
use crate::wasm::state::HostState;

/// Which WASI HTTP world a component exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum World {
    /// `wasi:http/incoming-handler@0.2.x` (the `proxy` world).
    Proxy,
    /// `wasi:http/handler@0.3.x` (the `service` world).
    Service,
}

impl World {
    /// The world's name, as logs and the admin API write it.
    pub fn as_str(self) -> &'static str {
        match self {
            World::Proxy => "proxy",
            World::Service => "service",
        }
    }
}

/// A component compiled and pre-instantiated: imports resolved once,
/// instantiated per request.
pub struct Compiled {
    /// Hex sha256 of the component bytes.
    pub sha256: String,
    /// Which world it exports.
    pub world: World,
    /// The pre-instance.
    pub pre: ProxyPre<HostState>,
    /// The engine it was compiled for; its stores are created there.
    pub engine: Engine,
    /// Whether that engine meters fuel.
    pub fuel: Fuel,
}

impl Compiled {
    /// Compiles `bytes` (read from `path`, named in errors), or loads its
    /// machine code from `artifacts`, resolves its imports and checks that
    /// it exports a WASI HTTP handler. WASI 0.2 components go to the 0.2
    /// engine; a component that does not validate there (it uses
    /// component-model-async: WASI 0.3) goes to the 0.3 engine; both of
    /// the `fuel` kind.
    fn compile(
        engines: &Engines,
        artifacts: &ArtifactCache,
        bytes: &[u8],
        sha256: &str,
        path: &Path,
        fuel: Fuel,
    ) -> anyhow::Result<(Compiled, Source)> {
        let p2 = engines.get(Flavor::P2, fuel)?;
        let functions_before = engines.functions().map(FunctionCache::counts);
        let (runtime, (component, source)) = match artifacts.component(&p2.engine, bytes, sha256) {
            Ok(found) => (p2, found),
            Err(p2_error) => {
                let p3 = engines.get(Flavor::P3, fuel)?;
                match artifacts.component(&p3.engine, bytes, sha256) {
                    Ok(found) => (p3, found),
                    Err(_) => {
                        return Err(p2_error)
                            .with_context(|| format!("compiling component `{}`", path.display()));
                    }
                }
            }
        };
        tracing::debug!(path = %path.display(), sha256, ?source, "component ready");
        if source == Source::Compiled {
            // Counted across the host: a compile running at the same time
            // (another service) adds its functions to these.
            let functions = engines
                .functions()
                .zip(functions_before)
                .map(|(cache, before)| cache.counts().since(before))
                .unwrap_or_default();
            tracing::info!(
                path = %path.display(),
                sha256,
                functions_reused = functions.reused,
                functions_compiled = functions.compiled,
                functions_untranslated = functions.untranslated,
                "component compiled"
            );
        }
        Ok((
            Self::prepare(runtime, fuel, &component, sha256, path)?,
            source,
        ))
    }

    /// Resolves the imports of `component` (from `path`) and finds its
    /// handler.
    fn prepare(
        runtime: &Runtime,
        fuel: Fuel,
        component: &Component,
        sha256: &str,
        path: &Path,
    ) -> anyhow::Result<Compiled> {
        let instance_pre = runtime
            .linker
            .instantiate_pre(component)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("resolving the imports of `{}`", path.display()))?;
        let (pre, world) =
            match wasmtime_wasi_http::p3::bindings::ServicePre::new(instance_pre.clone()) {
                Ok(pre) => (ProxyPre::P3(pre), World::Service),
                Err(_) => match wasmtime_wasi_http::p2::bindings::ProxyPre::new(instance_pre) {
                    Ok(pre) => (ProxyPre::P2(pre), World::Proxy),
                    Err(_) => anyhow::bail!(
                        "`{}` exports neither `wasi:http/incoming-handler@0.2.x` nor \
                         `wasi:http/handler@0.3.x`: build it for the `wasi:http/proxy` \
                         or `wasi:http/service` world",
                        path.display()
                    ),
                },
            };
        Ok(Compiled {
            sha256: sha256.to_owned(),
            world,
            pre,
            engine: runtime.engine.clone(),
            fuel,
        })
    }
}

/// Makes components ready to run, from the precompiled cache when it has
/// their machine code, else by compiling. Shared by the reloader and by
/// services loading again after an idle unload (see
/// [`crate::services::service::LoadedService::code`]).
pub struct Loader {
    engines: Engines,
    artifacts: ArtifactCache,
    metrics: Arc<Metrics>,
}

impl Loader {
    /// A loader compiling with `engines`, keeping machine code in
    /// `artifacts` and counting loads in `metrics`.
    pub fn new(engines: Engines, artifacts: ArtifactCache, metrics: Arc<Metrics>) -> Arc<Loader> {
        Arc::new(Loader {
            engines,
            artifacts,
            metrics,
        })
    }

    /// `bytes` (read from `path`, with hash `sha256`), compiled or loaded
    /// from the cache, for engines of the `fuel` kind.
    pub fn compile(
        &self,
        bytes: &[u8],
        sha256: &str,
        path: &Path,
        fuel: Fuel,
    ) -> anyhow::Result<(Compiled, Source)> {
        let (compiled, source) =
            Compiled::compile(&self.engines, &self.artifacts, bytes, sha256, path, fuel)?;
        self.metrics.component_loaded(source == Source::Cache);
        Ok((compiled, source))
    }

    /// Whether the cache holds machine code of the component with hash
    /// `sha256` for engines of the `fuel` kind, so it can leave memory and
    /// come back without compiling.
    pub fn is_cached(&self, sha256: &str, fuel: Fuel) -> bool {
        let has = |flavor| {
            self.engines
                .get(flavor, fuel)
                .is_ok_and(|runtime| self.artifacts.has(&runtime.engine, sha256))
        };
        has(Flavor::P2) || has(Flavor::P3)
    }

    /// The component with hash `sha256` again, after it left memory: from
    /// the cache; when the cache cannot give it, `path` is read and
    /// compiled, provided it still has that hash (a changed file is a
    /// reload's business, not a cold start's).
    pub fn load_again(
        &self,
        sha256: &str,
        path: &Path,
        fuel: Fuel,
    ) -> anyhow::Result<(Compiled, Source)> {
        for flavor in [Flavor::P2, Flavor::P3] {
            let runtime = self.engines.get(flavor, fuel)?;
            if let Some(component) = self.artifacts.cached(&runtime.engine, sha256) {
                self.metrics.component_loaded(true);
                return Ok((
                    Compiled::prepare(runtime, fuel, &component, sha256, path)?,
                    Source::Cache,
                ));
            }
        }
        let bytes = read_settled(path).map_err(anyhow::Error::from)?;
        let found = sha256_hex(&bytes);
        anyhow::ensure!(
            found == sha256,
            "`{}` changed since it was loaded (sha256 {found}, loaded {sha256}); \
             the next reload picks it up",
            path.display()
        );
        self.compile(&bytes, sha256, path, fuel)
    }

    /// Waits for machine code still being written to the on-disk cache.
    pub fn flush(&self) {
        self.artifacts.flush();
    }
}

/// How many components no longer in use stay compiled, newest first, so a
/// rollback to a recent version (or a flip between two) is instant.
const RETIRED_KEPT: usize = 4;

/// Compiled components by sha256 (and engine kind), so that services with
/// the same bytes share one copy and a reload compiles only what changed.
pub struct ComponentCache {
    loader: Arc<Loader>,
    /// Components some service holds (weak: a service that unloads when
    /// idle takes its code out of memory).
    by_sha: HashMap<(String, Fuel), Weak<Compiled>>,
    /// Recently retired components, newest first, at most [`RETIRED_KEPT`].
    retired: VecDeque<Arc<Compiled>>,
}

/// Why a component could not be had.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file changed while it was read: a write is in progress. Not an
    /// error of the component; the next file event brings it back.
    #[error("`{0}` changed while it was read; waiting for the write to settle")]
    Unsettled(String),
    /// Unreadable, or not a usable component.
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

/// A component file's bytes and their hash.
pub struct ComponentBytes {
    /// The file's bytes.
    pub bytes: Vec<u8>,
    /// Their hex sha256.
    pub sha256: String,
}

impl ComponentBytes {
    /// Reads the component at `path` (refusing a file being written).
    pub fn read(path: &Path) -> Result<ComponentBytes, LoadError> {
        let bytes = read_settled(path)?;
        let sha256 = sha256_hex(&bytes);
        Ok(ComponentBytes { bytes, sha256 })
    }
}

impl ComponentCache {
    /// An empty cache loading with `loader`.
    pub fn new(loader: Arc<Loader>) -> Self {
        ComponentCache {
            loader,
            by_sha: HashMap::new(),
            retired: VecDeque::new(),
        }
    }

    /// The loader, for services to load themselves again.
    pub fn loader(&self) -> &Arc<Loader> {
        &self.loader
    }

    /// The compiled component at `path`, for engines of the `fuel` kind:
    /// shared when its bytes are in memory already, else loaded from the
    /// disk cache or compiled.
    pub fn load(&mut self, path: &Path, fuel: Fuel) -> Result<Arc<Compiled>, LoadError> {
        let read = ComponentBytes::read(path)?;
        self.get(&read, path, fuel)
    }

    /// `read` (from `path`) compiled for engines of the `fuel` kind: shared
    /// when its bytes are in memory already, else loaded from the disk
    /// cache or compiled.
    pub fn get(
        &mut self,
        read: &ComponentBytes,
        path: &Path,
        fuel: Fuel,
    ) -> Result<Arc<Compiled>, LoadError> {
        let key = (read.sha256.clone(), fuel);
        if let Some(compiled) = self.by_sha.get(&key).and_then(Weak::upgrade) {
            return Ok(compiled);
        }
        if let Some(i) = self
            .retired
            .iter()
            .position(|c| c.sha256 == read.sha256 && c.fuel == fuel)
        {
            let compiled = self.retired.remove(i).expect("the position exists");
            self.by_sha.insert(key, Arc::downgrade(&compiled));
            return Ok(compiled);
        }
        let (compiled, _) = self.loader.compile(&read.bytes, &read.sha256, path, fuel)?;
        let compiled = Arc::new(compiled);
        self.by_sha.insert(key, Arc::downgrade(&compiled));
        Ok(compiled)
    }

    /// Makes sure the disk cache has `read`'s machine code (for a service
    /// that loads on its first request), compiling it if needed; nothing
    /// stays in memory.
    pub fn precompile(
        &mut self,
        read: &ComponentBytes,
        path: &Path,
        fuel: Fuel,
    ) -> Result<(), LoadError> {
        if self.loader.is_cached(&read.sha256, fuel) {
            return Ok(());
        }
        self.loader.compile(&read.bytes, &read.sha256, path, fuel)?;
        Ok(())
    }

    /// Waits for machine code still being written to the on-disk cache.
    pub fn flush(&self) {
        self.loader.flush();
    }

    /// Retires every component whose hash and engine kind are not in
    /// `live`: the few most recent stay compiled, older ones are dropped.
    pub fn retain(&mut self, live: &HashSet<(String, Fuel)>) {
        let gone: Vec<(String, Fuel)> = self
            .by_sha
            .keys()
            .filter(|key| !live.contains(*key))
            .cloned()
            .collect();
        for key in gone {
            if let Some(compiled) = self.by_sha.remove(&key).and_then(|w| w.upgrade()) {
                self.retired.push_front(compiled);
            }
        }
        self.by_sha
            .retain(|_, compiled| compiled.strong_count() > 0);
        self.retired.truncate(RETIRED_KEPT);
    }
}

/// Reads `path`, refusing bytes from a file that changed (length or
/// modification time) while it was being read.
fn read_settled(path: &Path) -> Result<Vec<u8>, LoadError> {
    let stamp = |path: &Path| {
        std::fs::metadata(path)
            .map(|m| (m.len(), m.modified().ok()))
            .with_context(|| format!("reading component `{}`", path.display()))
    };
    let before = stamp(path)?;
    let bytes =
        std::fs::read(path).with_context(|| format!("reading component `{}`", path.display()))?;
    let after = stamp(path)?;
    if before != after || after.0 != bytes.len() as u64 {
        return Err(LoadError::Unsettled(path.display().to_string()));
    }
    Ok(bytes)
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
