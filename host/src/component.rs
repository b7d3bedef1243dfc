//! Compiled components, and the in-memory cache of them by content hash:
//! unchanged bytes are never compiled twice, whichever service (or version
//! of a service) uses them.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime_wasi_http::handler::ProxyPre;

use crate::cache::{ArtifactCache, Source};
use crate::engine::{Engines, Flavor};
use crate::state::HostState;

/// Which WASI HTTP world a component exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum World {
    /// `wasi:http/incoming-handler@0.2.x` (the `proxy` world).
    Proxy,
    /// `wasi:http/handler@0.3.x` (the `service` world).
    Service,
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
}

impl Compiled {
    /// Compiles `bytes` (read from `path`, named in errors), or loads its
    /// machine code from `artifacts`, resolves its imports and checks that
    /// it exports a WASI HTTP handler. WASI 0.2 components go to the 0.2
    /// engine; a component that does not validate there (it uses
    /// component-model-async: WASI 0.3) goes to the 0.3 engine.
    pub fn compile(
        engines: &Engines,
        artifacts: &ArtifactCache,
        bytes: &[u8],
        path: &Path,
    ) -> anyhow::Result<Compiled> {
        let sha256 = sha256_hex(bytes);
        let p2 = engines.get(Flavor::P2)?;
        let (runtime, (component, source)) = match artifacts.component(&p2.engine, bytes, &sha256) {
            Ok(found) => (p2, found),
            Err(p2_error) => {
                let p3 = engines.get(Flavor::P3)?;
                match artifacts.component(&p3.engine, bytes, &sha256) {
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
            tracing::info!(path = %path.display(), sha256, "component compiled");
        }
        let instance_pre = runtime
            .linker
            .instantiate_pre(&component)
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
            sha256,
            world,
            pre,
            engine: runtime.engine.clone(),
        })
    }
}

/// How many components no longer in use stay compiled, newest first, so a
/// rollback to a recent version (or a flip between two) is instant.
const RETIRED_KEPT: usize = 4;

/// Compiled components by sha256.
pub struct ComponentCache {
    engines: Engines,
    /// Compiled code on disk, shared with earlier runs.
    artifacts: ArtifactCache,
    /// Components some service uses (or is about to).
    by_sha: HashMap<String, Arc<Compiled>>,
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

impl ComponentCache {
    /// An empty cache compiling with `engines` (machine code kept in
    /// `artifacts`).
    pub fn new(engines: Engines, artifacts: ArtifactCache) -> Self {
        ComponentCache {
            engines,
            artifacts,
            by_sha: HashMap::new(),
            retired: VecDeque::new(),
        }
    }

    /// The compiled component at `path`: from the cache when its bytes were
    /// seen before, else compiled now.
    pub fn load(&mut self, path: &Path) -> Result<Arc<Compiled>, LoadError> {
        let bytes = read_settled(path)?;
        let sha256 = sha256_hex(&bytes);
        if let Some(compiled) = self.by_sha.get(&sha256) {
            return Ok(compiled.clone());
        }
        if let Some(i) = self.retired.iter().position(|c| c.sha256 == sha256) {
            let compiled = self.retired.remove(i).expect("the position exists");
            self.by_sha.insert(sha256, compiled.clone());
            return Ok(compiled);
        }
        let compiled = Arc::new(Compiled::compile(
            &self.engines,
            &self.artifacts,
            &bytes,
            path,
        )?);
        self.by_sha.insert(sha256, compiled.clone());
        Ok(compiled)
    }

    /// Waits for machine code still being written to the on-disk cache.
    pub fn flush(&self) {
        self.artifacts.flush();
    }

    /// Retires every component whose hash is not in `live`: the few most
    /// recent stay compiled, older ones are dropped.
    pub fn retain(&mut self, live: &HashSet<String>) {
        let gone: Vec<String> = self
            .by_sha
            .keys()
            .filter(|sha| !live.contains(*sha))
            .cloned()
            .collect();
        for sha in gone {
            if let Some(compiled) = self.by_sha.remove(&sha) {
                self.retired.push_front(compiled);
            }
        }
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
