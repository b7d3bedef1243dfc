//! A loaded service: its compiled component and pre-instance, its limits and
//! sandbox settings, and admission control (`max_concurrency` plus a short
//! queue). Everything a request needs is prepared here once, at load.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::Context as _;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime::Store;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};
use wasmtime_wasi_http::WasiHttpCtx;
use wasmtime_wasi_http::handler::{ProxyHandler, ProxyPre};

use crate::component::{Compiled, World};
use crate::error_kind::ErrorKind;
use crate::guest_log::{GuestLog, Stream};
use crate::limits::Limits;
use crate::manifest::{OutboundRule, ServiceConfig};
use crate::metrics::{Metrics, ServiceMetrics};
use crate::outbound::OutboundPolicy;
use crate::reuse::Reuse;
use crate::state::{HostState, MemoryLimiter};

/// A service ready to take requests.
pub struct LoadedService {
    /// The service's name from the manifest.
    pub name: Arc<str>,
    /// Its manifest entry, as loaded.
    pub config: ServiceConfig,
    /// The compiled component (shared with other services using the same
    /// bytes).
    pub compiled: Arc<Compiled>,
    /// The reload generation that last changed this service.
    pub generation: u64,
    /// The service's metric handles.
    pub metrics: ServiceMetrics,
    /// Outbound rules, shared by every request's policy.
    outbound: Arc<[OutboundRule]>,
    /// Requests running, bounded by `max_concurrency`.
    running: Arc<Semaphore>,
    /// Requests waiting for a running slot; bounded by `max_concurrency` too.
    queued: AtomicUsize,
    /// Reused WASI 0.3 instances, when the service reuses them.
    reuse: std::sync::OnceLock<ProxyHandler<Reuse>>,
}

impl LoadedService {
    /// A service running `compiled` with `config`.
    pub fn new(
        config: ServiceConfig,
        compiled: Arc<Compiled>,
        generation: u64,
        metrics: &Metrics,
    ) -> Self {
        let outbound = config.allowed_outbound_hosts.clone().into();
        let running = Arc::new(Semaphore::new(config.limits.max_concurrency as usize));
        let metrics = metrics.service(&config.name);
        metrics.loaded.set(1);
        LoadedService {
            name: config.name.as_str().into(),
            config,
            compiled,
            generation,
            metrics,
            outbound,
            running,
            queued: AtomicUsize::new(0),
            reuse: std::sync::OnceLock::new(),
        }
    }

    /// The service's limits.
    pub fn limits(&self) -> &Limits {
        &self.config.limits
    }

    /// The pre-instance to instantiate per request.
    pub fn pre(&self) -> &ProxyPre<HostState> {
        &self.compiled.pre
    }

    /// The handler of reused instances, when this is a WASI 0.3 service
    /// with `max_requests_per_instance` above 1 (see [`crate::reuse`]).
    pub fn reuse_handler(self: &Arc<Self>) -> Option<&ProxyHandler<Reuse>> {
        let reuses = self.compiled.world == World::Service
            && self.config.limits.max_requests_per_instance > 1;
        reuses.then(|| self.reuse.get_or_init(|| Reuse::handler(self)))
    }

    /// Takes a running slot, waiting in the short queue if all are busy.
    /// `overloaded` when the queue is full too, or the wait outlasts the
    /// service's timeout.
    pub async fn admit(&self) -> Result<OwnedSemaphorePermit, ErrorKind> {
        if let Ok(permit) = self.running.clone().try_acquire_owned() {
            return Ok(permit);
        }
        let max_queued = self.config.limits.max_concurrency as usize;
        if self.queued.fetch_add(1, Ordering::AcqRel) >= max_queued {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            return Err(ErrorKind::Overloaded);
        }
        let wait = tokio::time::timeout(
            self.config.limits.timeout,
            self.running.clone().acquire_owned(),
        )
        .await;
        self.queued.fetch_sub(1, Ordering::AcqRel);
        match wait {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(ErrorKind::Overloaded),
        }
    }

    /// A fresh store for one request: the sandbox (env, read-only preopens,
    /// no sockets, guest output to the log), outbound policy, and every limit
    /// applied (see [`Limits::apply`]).
    pub fn new_store(
        &self,
        request_id: &Arc<str>,
        deadline: Instant,
        ticks: Arc<std::sync::atomic::AtomicU32>,
    ) -> anyhow::Result<Store<HostState>> {
        let mut wasi = WasiCtxBuilder::new();
        wasi.envs(&self.config.env)
            .stdout(GuestLog::new(
                Stream::Stdout,
                self.name.clone(),
                request_id.clone(),
            ))
            .stderr(GuestLog::new(
                Stream::Stderr,
                self.name.clone(),
                request_id.clone(),
            ))
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        for (guest, host) in &self.config.files {
            wasi.preopened_dir(host, guest, FsPerms::ReadOnly)
                .map_err(anyhow::Error::from)
                .with_context(|| format!("opening `{}` for the guest", host.display()))?;
        }
        let state = HostState {
            table: ResourceTable::new(),
            wasi: wasi.build(),
            http: WasiHttpCtx::new(),
            outbound: OutboundPolicy::new(
                self.outbound.clone(),
                self.name.clone(),
                request_id.clone(),
            ),
            limiter: MemoryLimiter::new(self.config.limits.memory),
        };
        let mut store = Store::new(&self.compiled.engine, state);
        self.config.limits.apply(&mut store, deadline, ticks)?;
        Ok(store)
    }
}
