//! A service: its compiled component and pre-instance (in memory or not:
//! idle unload and cold starts), its limits and sandbox settings, and
//! admission control (`max_concurrency` plus a short queue). Everything a
//! request needs is prepared here once, at load.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use arc_swap::ArcSwapOption;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime_wasi_http::handler::{ProxyHandler, ProxyPre};

use crate::config::limits::Limits;
use crate::config::manifest::ServiceConfig;
use crate::observe::metrics::{Metrics, ServiceMetrics};
use crate::stores::Stores;
use crate::wasm::cache::Source;
use crate::wasm::component::{Compiled, Loader, World};
use crate::wasm::engine::Fuel;
use crate::wasm::reuse::{Pool, Shared};
use crate::wasm::sandbox::Sandbox;
use crate::wasm::state::HostState;

/// A service ready to take requests. Its compiled code comes and goes:
/// loaded at start (or on the first request, with `lazy_start`), dropped
/// after `idle_unload` without traffic, and loaded back from the disk cache
/// by the next request (a cold start).
pub struct LoadedService {
    /// The service's name from the manifest.
    pub name: Arc<str>,
    /// Its manifest entry, as loaded.
    pub config: ServiceConfig,
    /// Hex sha256 of the component's bytes.
    pub sha256: String,
    /// The reload generation that last changed this service.
    pub generation: u64,
    /// The service's metric handles.
    pub metrics: ServiceMetrics,
    /// What its guests may touch and their limits, shared by every request.
    pub sandbox: Arc<Sandbox>,
    /// Requests running, bounded by `max_concurrency`.
    running: Arc<Semaphore>,
    /// Requests waiting for a running slot; bounded by `max_concurrency` too.
    queued: AtomicUsize,
    /// The compiled code while loaded.
    code: ArcSwapOption<Code>,
    /// Which world the component exports, once known (it was loaded once).
    world: OnceLock<World>,
    /// Held while the code loads: concurrent first requests share one load.
    loading: Arc<tokio::sync::Mutex<()>>,
    /// When the last request arrived ([`uptime_ms`]).
    last_request: AtomicU64,
    /// Set once an idle unload was refused because the disk cache lacks the
    /// code (logged once).
    pinned: AtomicBool,
    /// Loads the code again after an unload.
    loader: Arc<Loader>,
}

/// A service's compiled code, and the instances kept of it.
pub struct Code {
    /// The compiled component (shared with other services using the same
    /// bytes).
    pub compiled: Arc<Compiled>,
    /// How requests get their instance beyond a fresh one each.
    instances: Instances,
}

/// Where a request's instance comes from (see [`crate::wasm::reuse`]).
enum Instances {
    /// A fresh instance per request (the default).
    Fresh,
    /// Reused instances, one request at a time each.
    Pool(Pool),
    /// Shared WASI 0.3 instances, several requests at once each.
    Shared(ProxyHandler<Shared>),
}

impl Code {
    fn new(compiled: Arc<Compiled>, sandbox: &Arc<Sandbox>) -> Arc<Code> {
        let limits = &sandbox.limits;
        let instances = if limits.max_requests_per_instance <= 1 {
            Instances::Fresh
        } else if compiled.world == World::Service && limits.max_concurrent_per_instance > 1 {
            Instances::Shared(Shared::handler(sandbox.clone(), compiled.clone()))
        } else {
            Instances::Pool(Pool::new(limits))
        };
        Arc::new(Code {
            compiled,
            instances,
        })
    }

    /// The pre-instance to instantiate per request.
    pub fn pre(&self) -> &ProxyPre<HostState> {
        &self.compiled.pre
    }

    /// The pool of reused instances, when the service reuses them one
    /// request at a time.
    pub fn pool(&self) -> Option<&Pool> {
        match &self.instances {
            Instances::Pool(pool) => Some(pool),
            _ => None,
        }
    }

    /// The handler of shared instances, when this is a WASI 0.3 service
    /// with `max_concurrent_per_instance` above 1.
    pub fn shared(&self) -> Option<&ProxyHandler<Shared>> {
        match &self.instances {
            Instances::Shared(handler) => Some(handler),
            _ => None,
        }
    }
}

/// The service is at `max_concurrency` and its queue is full (or the wait
/// outlasted its timeout): the data plane answers 503 `overloaded`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overloaded;

/// The service's code could not be loaded: the data plane answers 502
/// `unavailable`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unavailable;

/// Milliseconds since the process started (a monotonic clock cheap enough
/// to stamp every request with).
pub fn uptime_ms() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    let elapsed = START.get_or_init(Instant::now).elapsed();
    u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
}

impl LoadedService {
    /// A service running the component with hash `sha256` with `config`;
    /// `compiled` is its code when loaded now (`None`: on first request).
    pub fn new(
        config: ServiceConfig,
        sha256: String,
        compiled: Option<Arc<Compiled>>,
        generation: u64,
        metrics: &Metrics,
        loader: Arc<Loader>,
        stores: &Stores,
    ) -> Self {
        let sandbox = Arc::new(Sandbox::new(&config, stores));
        let running = Arc::new(Semaphore::new(config.limits.max_concurrency as usize));
        let metrics = metrics.service(&config.name);
        metrics.loaded.set(i64::from(compiled.is_some()));
        let world = OnceLock::new();
        if let Some(compiled) = &compiled {
            let _ = world.set(compiled.world);
        }
        LoadedService {
            name: config.name.as_str().into(),
            config,
            sha256,
            generation,
            metrics,
            running,
            queued: AtomicUsize::new(0),
            code: ArcSwapOption::new(compiled.map(|c| Code::new(c, &sandbox))),
            sandbox,
            world,
            loading: Arc::new(tokio::sync::Mutex::new(())),
            last_request: AtomicU64::new(uptime_ms()),
            pinned: AtomicBool::new(false),
            loader,
        }
    }

    /// The service's limits.
    pub fn limits(&self) -> &Limits {
        &self.sandbox.limits
    }

    /// Drops the reused instances that waited past `instance_idle_timeout`.
    pub fn sweep_instances(&self) {
        if let Some(code) = self.code.load().as_ref()
            && let Some(pool) = code.pool()
        {
            pool.sweep();
        }
    }

    /// Whether the code is in memory.
    pub fn is_loaded(&self) -> bool {
        self.code.load().is_some()
    }

    /// Which world the component exports, if it was ever loaded.
    pub fn world(&self) -> Option<World> {
        self.world.get().copied()
    }

    /// The code to run a request with, loading it if it is not in memory
    /// (a cold start: `unavailable` if that fails). Concurrent callers
    /// share one load; the load finishes even if its callers give up.
    pub async fn code(self: &Arc<Self>) -> Result<Arc<Code>, Unavailable> {
        self.last_request.store(uptime_ms(), Ordering::Relaxed);
        if let Some(code) = self.code.load_full() {
            return Ok(code);
        }
        let guard = self.loading.clone().lock_owned().await;
        if let Some(code) = self.code.load_full() {
            return Ok(code);
        }
        let service = self.clone();
        tokio::task::spawn_blocking(move || {
            let _guard = guard;
            service.cold_start()
        })
        .await
        .unwrap_or(Err(Unavailable))
    }

    /// The kind of engine the service's code runs on: with fuel metering
    /// unless its `fuel` is unlimited.
    pub fn fuel(&self) -> Fuel {
        Fuel::for_limit(self.limits().fuel)
    }

    /// Loads the code back (from the disk cache) and counts a cold start.
    fn cold_start(&self) -> Result<Arc<Code>, Unavailable> {
        let started = Instant::now();
        match self
            .loader
            .load_again(&self.sha256, &self.config.component, self.fuel())
        {
            Ok((compiled, source)) => {
                let seconds = started.elapsed().as_secs_f64();
                let _ = self.world.set(compiled.world);
                let code = Code::new(Arc::new(compiled), &self.sandbox);
                self.code.store(Some(code.clone()));
                self.metrics.loaded.set(1);
                self.metrics.cold_starts.inc();
                self.metrics.cold_start_duration.observe(seconds);
                tracing::info!(
                    service = %self.name,
                    from_cache = source == Source::Cache,
                    duration_ms = seconds * 1e3,
                    "cold start"
                );
                Ok(code)
            }
            Err(err) => {
                tracing::error!(
                    service = %self.name,
                    error = %format!("{err:#}"),
                    "cold start failed"
                );
                Err(Unavailable)
            }
        }
    }

    /// Drops the code if the service has had no request for `idle_unload`
    /// and none is running or queued; `true` if it did. Code the disk
    /// cache cannot give back stays (unloading it would mean compiling on
    /// the next request).
    pub fn unload_if_idle(&self, now_ms: u64) -> bool {
        if self.code.load().is_none() || self.pinned.load(Ordering::Relaxed) {
            return false;
        }
        let idle_ms = now_ms.saturating_sub(self.last_request.load(Ordering::Relaxed));
        let idle_unload = u64::try_from(self.limits().idle_unload.as_millis()).unwrap_or(u64::MAX);
        let busy = self.running.available_permits() < self.limits().max_concurrency as usize
            || self.queued.load(Ordering::Acquire) > 0;
        if idle_ms < idle_unload || busy {
            return false;
        }
        if !self.loader.is_cached(&self.sha256, self.fuel()) {
            self.pinned.store(true, Ordering::Relaxed);
            tracing::warn!(
                service = %self.name,
                "not unloading the idle service: its compiled code is not in the cache (is `cache_dir` writable?)"
            );
            return false;
        }
        if self.code.swap(None).is_none() {
            return false;
        }
        self.metrics.loaded.set(0);
        tracing::info!(service = %self.name, idle_ms, "service unloaded");
        true
    }

    /// Takes a running slot, waiting in the short queue if all are busy.
    /// `overloaded` when the queue is full too, or the wait outlasts the
    /// service's timeout.
    pub async fn admit(&self) -> Result<OwnedSemaphorePermit, Overloaded> {
        if let Ok(permit) = self.running.clone().try_acquire_owned() {
            return Ok(permit);
        }
        let max_queued = self.limits().max_concurrency as usize;
        if self.queued.fetch_add(1, Ordering::AcqRel) >= max_queued {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            return Err(Overloaded);
        }
        let wait =
            tokio::time::timeout(self.limits().timeout, self.running.clone().acquire_owned()).await;
        self.queued.fetch_sub(1, Ordering::AcqRel);
        match wait {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(Overloaded),
        }
    }
}
