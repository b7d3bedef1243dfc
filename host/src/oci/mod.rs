//! Components pulled from OCI registries: `component = "oci://REGISTRY/REPO:TAG"`
//! or `"oci://REGISTRY/REPO@sha256:DIGEST"`.
//!
//! The artifact is the CNCF "Wasm OCI Artifact" layout that `wkg oci push`
//! writes: an OCI image manifest whose config is
//! `application/vnd.wasm.config.v0+json` and whose one layer is
//! `application/wasm`. [`resolve`] turns every such reference of a loaded
//! manifest into a file in the cache, before anything else reads it, so the
//! rest of the host (compilation, the precompiled cache, reload) sees a
//! component file like any other.
//!
//! The cache, under `<cache_dir>/oci/`, is content-addressed:
//! - `blobs/sha256/<hex>.wasm`: a component, written only after its bytes
//!   were counted and hashed against the manifest's layer digest (the
//!   compiled-artifact cache keys on the same sha256, so a pulled component
//!   compiles once per engine, ever);
//! - `manifests/sha256/<hex>`: the layer digest a manifest digest names, so a
//!   digest-pinned reference starts with the registry down;
//! - `tags/<reference>`: the manifest digest a tag last served successfully
//!   (written by [`remember_served`]), which a tag falls back to, with a
//!   warning, when the registry cannot be reached at start.

mod auth;
pub mod poll;
mod pull;
mod reference;
mod store;

use std::path::Path;
use std::time::Instant;

use crate::config::manifest::{Manifest, OciSource};
use crate::config::problem::{Problem, Problems};

pub use pull::{PullError, Pulled, Puller};
pub use reference::parse;
pub use store::remember_served;

/// The config media type of a Wasm OCI artifact.
pub const WASM_CONFIG: &str = "application/vnd.wasm.config.v0+json";
/// The media type of its one layer.
pub const WASM_LAYER: &str = "application/wasm";

/// The last pull error of each service (cleared by its next success), for
/// `/admin/services`: pulls at reload and polls that could not reach the
/// registry.
fn pull_errors() -> &'static std::sync::Mutex<std::collections::HashMap<String, String>> {
    static ERRORS: std::sync::OnceLock<
        std::sync::Mutex<std::collections::HashMap<String, String>>,
    > = std::sync::OnceLock::new();
    ERRORS.get_or_init(Default::default)
}

/// Records the outcome of `service`'s last pull or poll.
pub(crate) fn note_pull(service: &str, error: Option<String>) {
    let mut errors = pull_errors()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    match error {
        Some(error) => {
            errors.insert(service.to_owned(), error);
        }
        None => {
            errors.remove(service);
        }
    }
}

/// `service`'s last pull error, unless a pull succeeded since.
pub fn last_pull_error(service: &str) -> Option<String> {
    pull_errors()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get(service)
        .cloned()
}

/// Pulls every `oci://` component of `manifest` (concurrently, on a
/// runtime of its own, so any thread may call it) and points each
/// service's `component` at its cached file. Each failure is a problem
/// about the service's `component` field, returned; that service's
/// `component` stays empty.
pub fn resolve(manifest: &mut Manifest) -> Vec<Problem> {
    let wanted: Vec<(usize, OciSource)> = manifest
        .services
        .iter()
        .enumerate()
        .filter_map(|(i, s)| Some((i, s.oci.clone()?)))
        .collect();
    if wanted.is_empty() {
        return Vec::new();
    }
    let problem = |manifest: &Manifest, i: usize, message: String| {
        manifest.services[i].component_problem(&manifest.path, message)
    };
    let puller = match Puller::new(&manifest.host) {
        Ok(puller) => puller,
        Err(err) => {
            return wanted
                .iter()
                .map(|(i, _)| problem(manifest, *i, err.to_string()))
                .collect();
        }
    };
    let results = std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|err| PullError(format!("cannot start a runtime to pull: {err}")))?;
                Ok::<_, PullError>(
                    runtime.block_on(futures::future::join_all(wanted.iter().map(
                        |(i, source)| {
                            let puller = &puller;
                            let name = manifest.services[*i].name.clone();
                            async move {
                                let started = Instant::now();
                                let result = puller.pull(source).await;
                                crate::observe::metrics::component_pulled(
                                    &name,
                                    match &result {
                                        Ok(p) if p.offline.is_some() => "cache",
                                        Ok(_) => "ok",
                                        Err(_) => "error",
                                    },
                                    started.elapsed(),
                                );
                                result
                            }
                        },
                    ))),
                )
            })
            .join()
            .unwrap_or_else(|_| Err(PullError("the pull thread panicked".into())))
    });
    let results = match results {
        Ok(results) => results,
        Err(err) => {
            return wanted
                .iter()
                .map(|(i, _)| problem(manifest, *i, err.to_string()))
                .collect();
        }
    };
    let mut problems = Vec::new();
    for ((i, source), result) in wanted.iter().zip(results) {
        match result {
            Ok(pulled) => {
                let service = &mut manifest.services[*i];
                note_pull(&service.name, pulled.offline.clone());
                if let Some(why) = &pulled.offline {
                    tracing::warn!(service = %service.name, reference = %source.reference, "{why}");
                }
                tracing::info!(
                    service = %service.name,
                    reference = %source.reference,
                    digest = %pulled.digest,
                    "component resolved"
                );
                service.component = pulled.path;
                service.oci = Some(OciSource {
                    reference: source.reference.clone(),
                    digest: Some(pulled.digest),
                });
            }
            Err(err) => {
                note_pull(&manifest.services[*i].name, Some(err.to_string()));
                problems.push(problem(
                    manifest,
                    *i,
                    format!("oci://{}: {err}", source.reference),
                ));
            }
        }
    }
    problems
}

/// [`Manifest::load`], then [`resolve`]: what serving and checking read.
/// A component that cannot be pulled is a problem like any other.
pub fn load(path: &Path) -> Result<Manifest, Problems> {
    let mut manifest = Manifest::load(path)?;
    let problems = resolve(&mut manifest);
    if problems.is_empty() {
        Ok(manifest)
    } else {
        Err(Problems(problems))
    }
}
