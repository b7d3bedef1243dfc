//! Building snapshots from the manifest, at start and on every reload.
//!
//! A reload parses the manifest, compiles only components whose bytes
//! changed, builds the new snapshot off the request path and swaps it in
//! atomically. Requests in flight keep the snapshot (and services) they
//! started with. What fails never replaces what works:
//! - a manifest that does not parse or validate keeps the whole old config;
//! - a component that does not compile keeps its service on the old version
//!   (or leaves a new service out) while the rest of the change applies.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::config::manifest::{Manifest, Problem, Problems, ServiceConfig, VariableSource};
use crate::observe::metrics::Metrics;
use crate::services::registry::{Registry, Snapshot};
use crate::services::service::LoadedService;
use crate::stores::Stores;
use crate::wasm::component::{ComponentBytes, ComponentCache, LoadError};
use crate::wasm::engine::Fuel;

/// What a reload did.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct ReloadReport {
    /// The generation now serving.
    pub generation: u64,
    /// Services that appeared.
    pub added: Vec<String>,
    /// Services that are gone (they drain).
    pub removed: Vec<String>,
    /// Services whose component or settings changed.
    pub changed: Vec<String>,
    /// Everything that went wrong; the old version of whatever it concerns
    /// keeps serving.
    pub errors: Vec<String>,
}

impl ReloadReport {
    /// Whether everything in the manifest applied.
    pub fn ok(&self) -> bool {
        self.errors.is_empty()
    }
}

/// Reloads the manifest into the registry; one reload at a time.
pub struct Reloader {
    manifest_path: PathBuf,
    registry: Arc<Registry>,
    metrics: Arc<Metrics>,
    state: Mutex<State>,
}

struct State {
    /// Compiled components by hash.
    cache: ComponentCache,
    /// The data-plane address the process was started with; changing it
    /// needs a restart.
    listen: SocketAddr,
    /// Bumped by every reload that changed something.
    generation: u64,
    /// The last error of each service's last reload (until it loads again).
    errors: BTreeMap<String, String>,
    /// Files whose changes trigger a reload, and their folders.
    watched: Watched,
    /// The key-value stores open now.
    stores: Stores,
}

impl Reloader {
    /// Loads every service of `manifest`. At start every problem is fatal:
    /// they are all returned, and nothing is served.
    pub fn start(
        manifest: &Manifest,
        mut cache: ComponentCache,
        metrics: Arc<Metrics>,
    ) -> Result<(Arc<Reloader>, Arc<Registry>), Problems> {
        let stores = Stores::open(&manifest.stores_in_use(), &Stores::default(), &metrics)
            .map_err(|err| {
                Problems(vec![Problem::whole_file(
                    &manifest.path,
                    format!("{err:#}"),
                )])
            })?;
        let mut services = Vec::new();
        let mut problems = Vec::new();
        for config in &manifest.services {
            match start_service(&mut cache, config, &metrics, &stores) {
                Ok(service) => services.push(Arc::new(service)),
                Err(err) => problems.push(component_problem(manifest, config, &err)),
            }
        }
        cache.flush();
        if !problems.is_empty() {
            return Err(Problems(problems));
        }
        for source in manifest.services.iter().filter_map(|s| s.oci.as_ref()) {
            crate::oci::remember_served(&manifest.host.cache_dir, source);
        }
        let registry = Arc::new(Registry::new(Snapshot::new(services, 1)));
        let reloader = Arc::new(Reloader {
            manifest_path: manifest.path.clone(),
            registry: registry.clone(),
            metrics,
            state: Mutex::new(State {
                cache,
                listen: manifest.host.listen,
                generation: 1,
                errors: BTreeMap::new(),
                watched: Watched::of(manifest),
                stores,
            }),
        });
        Ok((reloader, registry))
    }

    /// What to watch: the manifest, every component, and their folders.
    pub fn watched(&self) -> Watched {
        self.lock().watched.clone()
    }

    /// The last reload error of each service that has one.
    pub fn errors(&self) -> BTreeMap<String, String> {
        self.lock().errors.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reads the manifest again and applies what changed. Blocking: it may
    /// compile; call it off the request path.
    pub fn reload(&self) -> ReloadReport {
        let started = Instant::now();
        let mut state = self.lock();
        let report = match Manifest::load(&self.manifest_path) {
            Err(problems) => ReloadReport {
                generation: state.generation,
                errors: problems.0.iter().map(ToString::to_string).collect(),
                ..ReloadReport::default()
            },
            Ok(mut manifest) => {
                // A component that cannot be pulled fails its service only:
                // the version it serves stays, the others move on.
                let unpulled = crate::oci::resolve(&mut manifest);
                self.apply(&mut state, &manifest, &unpulled)
            }
        };
        let duration_ms = started.elapsed().as_secs_f64() * 1e3;
        self.metrics.reload(report.ok());
        {
            use opentelemetry::KeyValue;
            let list = |names: &[String]| names.join(",");
            crate::observe::traces::record_root(
                "reload",
                started,
                vec![
                    KeyValue::new("wasmhost.generation", report.generation as i64),
                    KeyValue::new("wasmhost.added", list(&report.added)),
                    KeyValue::new("wasmhost.removed", list(&report.removed)),
                    KeyValue::new("wasmhost.changed", list(&report.changed)),
                ],
                (!report.ok()).then(|| report.errors.join("; ")),
            );
        }
        if report.ok() {
            tracing::info!(
                generation = report.generation,
                added = ?report.added,
                removed = ?report.removed,
                changed = ?report.changed,
                duration_ms,
                "reload"
            );
        } else {
            for error in &report.errors {
                tracing::error!(error = %error, "reload problem; the previous version keeps serving");
            }
            tracing::warn!(
                generation = report.generation,
                added = ?report.added,
                removed = ?report.removed,
                changed = ?report.changed,
                errors = report.errors.len(),
                duration_ms,
                "reload failed"
            );
        }
        report
    }

    fn apply(&self, state: &mut State, manifest: &Manifest, unpulled: &[Problem]) -> ReloadReport {
        let current = self.registry.load();
        let old: HashMap<&str, &Arc<LoadedService>> =
            current.services.iter().map(|s| (&*s.name, s)).collect();
        let generation = state.generation + 1;
        let mut report = ReloadReport::default();
        if manifest.host.listen != state.listen {
            report.errors.push(format!(
                "{}: field `listen`: changing the data-plane address from `{}` to `{}` needs a restart; the host keeps listening on `{}`",
                manifest.path.display(),
                state.listen,
                manifest.host.listen,
                state.listen
            ));
        }

        let stores = match Stores::open(&manifest.stores_in_use(), &state.stores, &self.metrics) {
            Ok(stores) => stores,
            Err(err) => {
                // Nothing changes: every service keeps its stores.
                report
                    .errors
                    .push(format!("{}: {err:#}", manifest.path.display()));
                report.generation = state.generation;
                return report;
            }
        };
        let mut services = Vec::new();
        for config in &manifest.services {
            let previous = old.get(config.name.as_str()).copied();
            if let Some(problem) = unpulled
                .iter()
                .find(|p| p.service.as_deref() == Some(config.name.as_str()))
            {
                state
                    .errors
                    .insert(config.name.clone(), problem.to_string());
                report.errors.push(problem.to_string());
                if let Some(prev) = previous {
                    services.push(prev.clone());
                }
                continue;
            }
            let loaded = ComponentBytes::read(&config.component).and_then(|read| {
                match previous {
                    // Unchanged: kept as it is, loaded or not.
                    Some(prev)
                        if prev.sha256 == read.sha256
                            && same_settings(&prev.config, config)
                            && prev.sandbox.app.same_stores(&stores) =>
                    {
                        Ok(prev.clone())
                    }
                    _ => {
                        let compiled = state.cache.get(
                            &read,
                            &config.component,
                            Fuel::for_limit(config.limits.fuel),
                        )?;
                        if previous.is_some() {
                            report.changed.push(config.name.clone());
                        } else {
                            report.added.push(config.name.clone());
                        }
                        Ok(Arc::new(LoadedService::new(
                            config.clone(),
                            read.sha256,
                            Some(compiled),
                            generation,
                            &self.metrics,
                            state.cache.loader().clone(),
                            &stores,
                        )))
                    }
                }
            });
            match loaded {
                Ok(service) => {
                    state.errors.remove(&config.name);
                    if let Some(source) = &config.oci {
                        crate::oci::remember_served(&manifest.host.cache_dir, source);
                    }
                    services.push(service);
                }
                Err(err) => {
                    let unsettled = matches!(err, LoadError::Unsettled(_));
                    if !unsettled {
                        let problem = component_problem(manifest, config, &err).to_string();
                        state.errors.insert(config.name.clone(), problem.clone());
                        report.errors.push(problem);
                    }
                    // Keep the version that works, if there is one.
                    if let Some(prev) = previous {
                        services.push(prev.clone());
                    }
                }
            }
        }
        let kept: HashSet<&str> = services.iter().map(|s| &*s.name).collect();
        report.removed = old
            .keys()
            .filter(|name| !kept.contains(*name))
            .map(|name| name.to_string())
            .collect();
        report.removed.sort();
        for name in &report.removed {
            self.metrics.forget(name);
        }
        state
            .errors
            .retain(|name, _| manifest.services.iter().any(|s| &s.name == name));

        let changed =
            !(report.added.is_empty() && report.removed.is_empty() && report.changed.is_empty());
        if changed {
            state.generation = generation;
            let live: HashSet<(String, Fuel)> = services
                .iter()
                .map(|s| (s.sha256.clone(), s.fuel()))
                .collect();
            state.cache.retain(&live);
            self.registry.swap(Snapshot::new(services, generation));
        }
        state.watched = Watched::of(manifest);
        state.stores = stores;
        report.generation = state.generation;
        report
    }
}

/// A service as the host starts: its code loaded now, or only made sure
/// to be in the disk cache (`lazy_start`).
fn start_service(
    cache: &mut ComponentCache,
    config: &ServiceConfig,
    metrics: &Metrics,
    stores: &Stores,
) -> Result<LoadedService, LoadError> {
    let read = ComponentBytes::read(&config.component)?;
    let compiled = if config.limits.lazy_start {
        cache.precompile(
            &read,
            &config.component,
            Fuel::for_limit(config.limits.fuel),
        )?;
        None
    } else {
        Some(cache.get(
            &read,
            &config.component,
            Fuel::for_limit(config.limits.fuel),
        )?)
    };
    tracing::info!(
        service = %config.name,
        world = compiled.as_ref().map(|c| c.world.as_str()),
        sha256 = %read.sha256,
        loaded = compiled.is_some(),
        "service ready"
    );
    Ok(LoadedService::new(
        config.clone(),
        read.sha256,
        compiled,
        1,
        metrics,
        cache.loader().clone(),
        stores,
    ))
}

/// Two configs differ in anything but where in the manifest they were.
fn same_settings(a: &ServiceConfig, b: &ServiceConfig) -> bool {
    let mut b = b.clone();
    b.component_at = a.component_at;
    *a == b
}

fn component_problem(manifest: &Manifest, config: &ServiceConfig, err: &LoadError) -> Problem {
    let message = match err {
        LoadError::Failed(err) => format!("{err:#}"),
        other => other.to_string(),
    };
    config.component_problem(&manifest.path, message)
}

/// The files whose changes matter and the folders to watch for them.
/// Folders are watched (see [`crate::services::watch`]); an event counts only when it
/// names one of `files`, so unrelated files in the same folder (a log file,
/// the cache) never trigger reloads.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Watched {
    /// The manifest's folder (as given: a ConfigMap's `..data` swap happens
    /// there) and every component's folder.
    pub dirs: Vec<PathBuf>,
    /// The manifest, its folder's `..data` link, and every component, as
    /// [`watch_key`]s.
    pub files: HashSet<PathBuf>,
}

impl Watched {
    fn of(manifest: &Manifest) -> Watched {
        let non_empty = |dir: PathBuf| {
            if dir.as_os_str().is_empty() {
                PathBuf::from(".")
            } else {
                dir
            }
        };
        let variable_files: Vec<PathBuf> = manifest
            .services
            .iter()
            .flat_map(|s| &s.variables)
            .filter_map(|v| match &v.source {
                VariableSource::File(path) => Some(path.clone()),
                _ => None,
            })
            .collect();
        let mut dirs: Vec<PathBuf> = std::iter::once(manifest.dir.clone())
            .chain(
                manifest
                    .services
                    .iter()
                    // A pulled component never changes in place: a new
                    // version is a new file, found by resolving again.
                    .filter(|s| s.oci.is_none())
                    .map(|s| &s.component)
                    .chain(&variable_files)
                    .filter_map(|path| path.parent().map(Path::to_path_buf)),
            )
            .map(non_empty)
            .collect();
        dirs.sort();
        dirs.dedup();
        let manifest_dir = non_empty(manifest.dir.clone());
        let files = manifest
            .services
            .iter()
            .filter(|s| s.oci.is_none())
            .map(|s| s.component.clone())
            .chain(variable_files)
            .chain([manifest.path.clone(), manifest_dir.join("..data")])
            .filter_map(|path| watch_key(&path))
            .collect();
        Watched { dirs, files }
    }
}

/// How a watched file is recognised in a file event: its folder with
/// symlinks resolved (as the watcher reports it) and its own name as is
/// (`manifest.toml` may be a link into `..data`).
pub fn watch_key(path: &Path) -> Option<PathBuf> {
    let name = path.file_name()?;
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let dir = std::fs::canonicalize(dir)
        .or_else(|_| std::path::absolute(dir))
        .ok()?;
    Some(dir.join(name))
}
