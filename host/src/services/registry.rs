//! The live set of services and routes. Requests load the current
//! [`Snapshot`] once and keep it for their whole life; a reload builds a new
//! snapshot off the request path and swaps it in atomically.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;

use crate::config::router::Router;
use crate::services::service::LoadedService;

/// One consistent view of the services and the routes to them.
pub struct Snapshot {
    /// Route table: host and path prefix to service.
    pub router: Router<Arc<LoadedService>>,
    /// Every loaded service, in manifest order.
    pub services: Vec<Arc<LoadedService>>,
    /// Bumped on every swap.
    pub generation: u64,
}

impl Snapshot {
    /// A snapshot routing to `services`.
    pub fn new(services: Vec<Arc<LoadedService>>, generation: u64) -> Self {
        let router = Router::new(services.iter().flat_map(|service| {
            service
                .config
                .routes
                .iter()
                .map(move |route| (route.clone(), service.clone()))
        }));
        Snapshot {
            router,
            services,
            generation,
        }
    }
}

/// The current snapshot, swapped atomically.
pub struct Registry {
    current: ArcSwap<Snapshot>,
}

impl Registry {
    /// A registry starting with `snapshot`.
    pub fn new(snapshot: Snapshot) -> Self {
        Registry {
            current: ArcSwap::from_pointee(snapshot),
        }
    }

    /// The snapshot in force now.
    pub fn load(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// Makes `snapshot` the one new requests see.
    pub fn swap(&self, snapshot: Snapshot) {
        self.current.store(Arc::new(snapshot));
    }
}

/// Unloads the services of `registry` that have been idle for their
/// `idle_unload` (see [`LoadedService::unload_if_idle`]), checking a few
/// times per shortest `idle_unload`, at most every second. Runs until
/// dropped.
pub async fn unload_idle(registry: Arc<Registry>) {
    loop {
        let snapshot = registry.load();
        let now = crate::services::service::uptime_ms();
        let mut unloaded = 0;
        for service in &snapshot.services {
            service.sweep_instances();
            unloaded += usize::from(service.unload_if_idle(now));
        }
        if unloaded > 0 {
            release_freed_memory();
        }
        let shortest = snapshot
            .services
            .iter()
            .filter(|s| s.is_loaded())
            .map(|s| s.limits().idle_unload)
            .min();
        drop(snapshot);
        let period = shortest.map_or(MAX_SWEEP_PERIOD, |idle| idle / 4);
        tokio::time::sleep(period.clamp(MIN_SWEEP_PERIOD, MAX_SWEEP_PERIOD)).await;
    }
}

/// Bounds of the idle sweep's period.
const MIN_SWEEP_PERIOD: Duration = Duration::from_millis(10);
const MAX_SWEEP_PERIOD: Duration = Duration::from_secs(1);

/// Hands memory freed by unloads back to the kernel: glibc's allocator
/// keeps freed heap pages otherwise, and the RSS would not drop.
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `malloc_trim` only releases free memory; it is thread-safe.
    unsafe {
        libc::malloc_trim(0);
    }
}
