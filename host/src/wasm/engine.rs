//! The wasmtime engines, their linkers, and the epoch ticker.
//!
//! There are up to four engines. WASI 0.2 components run on one built
//! without the component-model-async machinery: with it, every host call
//! also creates and deletes a concurrent task, which cost ~17% of a hello
//! request (`cargo bench --bench request_path`). WASI 0.3 components need it
//! and run on a second engine, created only when the first 0.3 component
//! loads. Both link every WASI interface of their version.
//!
//! Each comes in two kinds: with fuel metering, for services with a `fuel`
//! limit (the default), and without, for `fuel = "unlimited"`. Fuel
//! metering is code compiled into every basic block of the guest; it costs
//! a language runtime's interpreter loop about 15% of its speed (see
//! `docs/benchmarks.md`), so a service that asks for no fuel limit does not
//! pay for it. Both kinds keep epoch interruption: the timeout and the
//! yields at every tick hold for every service. The unmetered engines are
//! built when the first service needs them.
//!
//! The sandbox is closed by policy in [`crate::wasm::state`], not by leaving imports
//! out: real components import far more than the `proxy` world (cli,
//! filesystem, sockets, ...), so all of it is linked.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context as _;
use wasmtime::component::Linker;
use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::config::manifest::Manifest;
use crate::wasm::function_cache::FunctionCache;
use crate::wasm::state::HostState;

/// How often the engine's epoch advances. Every running guest reaches an
/// epoch check within one period, where it yields to the async executor (so a
/// spinning guest cannot starve other requests on its thread) and where its
/// wall-clock deadline is enforced. 1 ms keeps other requests' added latency
/// in the low milliseconds while costing one atomic increment per tick.
pub const EPOCH_TICK: Duration = Duration::from_millis(1);

/// The most instances one engine's pool has room for.
pub const MAX_POOL_INSTANCES: u32 = 1_000;
/// The fewest, and the headroom added to the manifest's needs for services
/// a reload adds and reused WASI 0.3 instances.
const POOL_HEADROOM: u32 = 32;

/// Linear memory kept resident per pool slot at least (and for components
/// whose initial memory is smaller).
pub const MIN_KEEP_RESIDENT: u64 = 1 << 20;
/// The most kept resident per slot, whatever the components need.
pub const MAX_KEEP_RESIDENT: u64 = 64 << 20;

/// How the instance pools are sized, from the manifest at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolSize {
    /// Instances each engine's pool has room for (see [`pool_instances`]).
    pub instances: u32,
    /// Linear memory bytes a slot keeps resident between instances (see
    /// [`keep_resident`]).
    pub keep_resident: u64,
}

impl PoolSize {
    /// The pools for `manifest`: room for its services' concurrency, and a
    /// slot's memory kept resident as large as its largest component's
    /// initial memory (read from the component files; a file that cannot be
    /// read counts as small: the loader reports it).
    pub fn for_manifest(manifest: &Manifest) -> PoolSize {
        let initial = manifest.services.iter().map(|service| {
            let initial = std::fs::read(&service.component)
                .ok()
                .and_then(|bytes| initial_memory(&bytes))
                .unwrap_or(0);
            (initial, service.limits.memory)
        });
        PoolSize {
            instances: pool_instances(manifest.services.iter().map(|s| s.limits.max_concurrency)),
            keep_resident: keep_resident(initial),
        }
    }
}

impl Default for PoolSize {
    fn default() -> Self {
        PoolSize {
            instances: POOL_HEADROOM,
            keep_resident: MIN_KEEP_RESIDENT,
        }
    }
}

/// Bytes of linear memory a pool slot keeps resident: twice the largest
/// initial memory of the components (a heap grows past its initial image
/// during a request), each within its service's `memory` limit,
/// between [`MIN_KEEP_RESIDENT`] and [`MAX_KEEP_RESIDENT`]. What is kept is
/// reset in place for the next instance instead of being returned to the
/// kernel and faulted back in: a language runtime's 15–20 MB heap image
/// would otherwise be faulted in on every request.
pub fn keep_resident(components: impl IntoIterator<Item = (u64, u64)>) -> u64 {
    components
        .into_iter()
        .map(|(initial, limit)| initial.saturating_mul(2).min(limit))
        .fold(MIN_KEEP_RESIDENT, u64::max)
        .min(MAX_KEEP_RESIDENT)
}

/// The largest initial linear memory (in bytes) of the core modules inside
/// component (or module) `bytes`; `None` if they do not parse.
pub fn initial_memory(bytes: &[u8]) -> Option<u64> {
    let mut largest = 0u64;
    for payload in wasmparser::Parser::new(0).parse_all(bytes) {
        if let wasmparser::Payload::MemorySection(memories) = payload.ok()? {
            for memory in memories {
                let memory = memory.ok()?;
                let page = 1u64 << memory.page_size_log2.unwrap_or(16);
                largest = largest.max(memory.initial.saturating_mul(page));
            }
        }
    }
    Some(largest)
}

/// Instances the pools make room for, from the manifest at start: every
/// service's `max_concurrency` (a request holds one instance) plus
/// headroom, at most [`MAX_POOL_INSTANCES`]. Setting up a slot costs at start
/// (a guard page per stack is one kernel mapping each), so a small manifest
/// gets a small pool and starts faster. A pool cannot grow: when a reload
/// adds services beyond it, requests that find it full get 503
/// `overloaded`; restart to resize.
pub fn pool_instances(max_concurrency: impl IntoIterator<Item = u32>) -> u32 {
    let needed = max_concurrency
        .into_iter()
        .fold(POOL_HEADROOM, |sum, n| sum.saturating_add(n));
    needed.min(MAX_POOL_INSTANCES)
}

/// Whether guests are compiled with fuel and epoch checks: always, unless
/// `WASMHOST_UNMETERED=1` is set, which exists only so the benchmark can
/// measure what the limits cost (`bench/run.sh`). Unmetered, fuel and the
/// timeout's epoch interrupt are not enforced: never use it for real
/// traffic.
pub fn metered() -> bool {
    static METERED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *METERED.get_or_init(|| std::env::var_os("WASMHOST_UNMETERED").is_none_or(|v| v != "1"))
}

/// Which kind of component an engine runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// WASI 0.2: no component-model-async.
    P2,
    /// WASI 0.3: component-model-async and concurrency support.
    P3,
}

/// Whether an engine's guests count fuel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fuel {
    /// Fuel metering compiled in: for services with a `fuel` limit.
    Metered,
    /// No fuel metering: for `fuel = "unlimited"`.
    Unmetered,
}

impl Fuel {
    /// The kind of engine a service with fuel limit `limit` runs on.
    pub fn for_limit(limit: Option<u64>) -> Fuel {
        match limit {
            Some(_) => Fuel::Metered,
            None => Fuel::Unmetered,
        }
    }
}

/// Builds an engine: async, the component model (with component-model-async
/// for [`Flavor::P3`]), fuel when `fuel` says so, epoch interruption and the
/// pooling allocator with resident-memory reuse; compiled functions are
/// looked up in and added to `functions` when there is one.
pub fn new_engine(
    flavor: Flavor,
    fuel: Fuel,
    size: PoolSize,
    functions: Option<&Arc<FunctionCache>>,
) -> anyhow::Result<Engine> {
    let instances = size.instances;
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.wasm_component_model_async(flavor == Flavor::P3);
    config.concurrency_support(flavor == Flavor::P3);
    if metered() {
        config.consume_fuel(fuel == Fuel::Metered);
        config.epoch_interruption(true);
    } else {
        tracing::warn!("WASMHOST_UNMETERED=1: fuel and epoch checks are off (benchmarking only)");
    }

    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(instances);
    // Components from some toolchains (componentize-py, -js) carry several
    // core instances, memories and tables each.
    pool.total_core_instances(instances * 10);
    pool.total_memories(instances * 2);
    pool.total_tables(instances * 4);
    pool.total_stacks(instances);
    pool.max_component_instance_size(4 << 20);
    pool.max_core_instance_size(4 << 20);
    pool.max_memories_per_component(16);
    pool.max_tables_per_component(64);
    pool.table_elements(100_000);
    // Keep each slot's initial memory resident and reset it in place
    // instead of returning it to the kernel: most of the per-request cost
    // otherwise (see `keep_resident`).
    pool.linear_memory_keep_resident(usize::try_from(size.keep_resident).unwrap_or(usize::MAX));
    pool.table_keep_resident(64 << 10);
    pool.async_stack_keep_resident(64 << 10);
    pool.pagemap_scan(Enabled::Auto);
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    if let Some(functions) = functions {
        config.enable_incremental_compilation(functions.clone())?;
    }

    Engine::new(&config)
        .map_err(anyhow::Error::from)
        .context("configuring the wasmtime engine")
}

/// A linker with every WASI interface wasmtime implements, `wasi:http`
/// included: 0.2 for [`Flavor::P2`], 0.2 and 0.3 for [`Flavor::P3`].
/// Imports at any 0.2.x patch version resolve against these definitions
/// (wasmtime matches semver-compatible versions).
pub fn new_linker(engine: &Engine, flavor: Flavor) -> anyhow::Result<Linker<HostState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(anyhow::Error::from)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)
        .map_err(anyhow::Error::from)?;
    crate::wasm::keyvalue::add_to_linker(&mut linker)?;
    if flavor == Flavor::P3 {
        wasmtime_wasi::p3::add_to_linker(&mut linker).map_err(anyhow::Error::from)?;
        wasmtime_wasi_http::p3::add_to_linker(&mut linker).map_err(anyhow::Error::from)?;
        crate::wasm::keyvalue_spin3::add_to_linker(&mut linker)?;
    }
    Ok(linker)
}

/// An engine and its linker.
pub struct Runtime {
    /// The engine.
    pub engine: Engine,
    /// Every WASI interface of the engine's flavor.
    pub linker: Linker<HostState>,
}

impl Runtime {
    fn new(
        flavor: Flavor,
        fuel: Fuel,
        size: PoolSize,
        functions: Option<&Arc<FunctionCache>>,
    ) -> anyhow::Result<Runtime> {
        let engine = new_engine(flavor, fuel, size, functions)?;
        let linker = new_linker(&engine, flavor)?;
        Ok(Runtime { engine, linker })
    }
}

/// The engines: the WASI 0.2 one with fuel, built at start, and the
/// others (WASI 0.3, no fuel), built when first needed. Cheap to clone.
#[derive(Clone)]
pub struct Engines(Arc<EnginesInner>);

/// Every (flavor, fuel) pair, in the order of [`EnginesInner::runtimes`].
const KINDS: [(Flavor, Fuel); 4] = [
    (Flavor::P2, Fuel::Metered),
    (Flavor::P3, Fuel::Metered),
    (Flavor::P2, Fuel::Unmetered),
    (Flavor::P3, Fuel::Unmetered),
];

struct EnginesInner {
    /// Pool size of each engine (see [`PoolSize`]).
    size: PoolSize,
    /// The incremental compilation cache all engines share, if any.
    functions: Option<Arc<FunctionCache>>,
    /// One per [`KINDS`] entry, built on first use.
    runtimes: [std::sync::OnceLock<Runtime>; 4],
    /// Serializes building engines.
    building: std::sync::Mutex<()>,
}

impl Engines {
    /// Builds the WASI 0.2 engine with fuel and its linker; each engine's
    /// pool is sized `size`, and each compiles through `functions` (the
    /// incremental compilation cache) when given.
    pub fn new(size: PoolSize, functions: Option<Arc<FunctionCache>>) -> anyhow::Result<Engines> {
        let engines = Engines(Arc::new(EnginesInner {
            size,
            functions,
            runtimes: Default::default(),
            building: std::sync::Mutex::new(()),
        }));
        engines.get(Flavor::P2, Fuel::Metered)?;
        Ok(engines)
    }

    /// The engine and linker for `flavor` and `fuel`, building it on first
    /// use.
    pub fn get(&self, flavor: Flavor, fuel: Fuel) -> anyhow::Result<&Runtime> {
        let index = KINDS
            .iter()
            .position(|kind| *kind == (flavor, fuel))
            .expect("every kind is listed");
        let slot = &self.0.runtimes[index];
        if let Some(runtime) = slot.get() {
            return Ok(runtime);
        }
        let _building = self.0.building.lock().unwrap_or_else(|e| e.into_inner());
        if slot.get().is_none() {
            let _ = slot.set(Runtime::new(
                flavor,
                fuel,
                self.0.size,
                self.0.functions.as_ref(),
            )?);
        }
        Ok(slot.get().expect("set above"))
    }

    /// The incremental compilation cache, if the engines have one.
    pub fn functions(&self) -> Option<&FunctionCache> {
        self.0.functions.as_deref()
    }

    /// Advances the epoch of every engine built so far.
    fn increment_epoch(&self) {
        for runtime in self.0.runtimes.iter().filter_map(std::sync::OnceLock::get) {
            runtime.engine.increment_epoch();
        }
    }
}

/// Ticks of [`EPOCH_TICK`] with no request in the host after which the
/// ticker slows to [`IDLE_TICK`].
const IDLE_AFTER_TICKS: u32 = 1_000;

/// The tick of an idle host: 20 wakeups a second instead of 1,000, and a
/// request arriving at an idle host meets its first tick within 50 ms
/// (its timeout is enforced that much later at worst; it has no other
/// guest to share its thread with yet).
const IDLE_TICK: Duration = Duration::from_millis(50);

/// Tells the ticker whether any request is in the host.
type BusyProbe = Box<dyn Fn() -> bool + Send + Sync>;

/// Advances the engines' epoch every [`EPOCH_TICK`] on a dedicated thread,
/// or every [`IDLE_TICK`] once the host has been idle for a second (see
/// [`EpochTicker::slow_down_when_idle`]). Dropping it stops and joins the
/// thread.
pub struct EpochTicker {
    stop: Arc<AtomicBool>,
    busy: Arc<std::sync::OnceLock<BusyProbe>>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    /// Starts ticking `engines`.
    pub fn start(engines: Engines) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let busy = Arc::new(std::sync::OnceLock::<BusyProbe>::new());
        let thread = std::thread::Builder::new()
            .name("wasmhost-epoch".into())
            .spawn({
                let stop = stop.clone();
                let busy = busy.clone();
                move || {
                    let mut quiet_ticks = 0u32;
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(if quiet_ticks >= IDLE_AFTER_TICKS {
                            IDLE_TICK
                        } else {
                            EPOCH_TICK
                        });
                        engines.increment_epoch();
                        quiet_ticks = match busy.get() {
                            Some(busy) if !busy() => quiet_ticks.saturating_add(1),
                            _ => 0,
                        };
                    }
                }
            })
            .expect("spawning the epoch thread");
        EpochTicker {
            stop,
            busy,
            thread: Some(thread),
        }
    }

    /// Lets the ticker slow down while `busy` says no request is in the
    /// host (none arriving, none running): an idle host then wakes 20
    /// times a second instead of 1,000.
    pub fn slow_down_when_idle(&self, busy: impl Fn() -> bool + Send + Sync + 'static) {
        let _ = self.busy.set(Box::new(busy));
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slot_keeps_the_largest_initial_memory_resident_within_limits_and_bounds() {
        const MIB: u64 = 1 << 20;
        assert_eq!(keep_resident([]), MIN_KEEP_RESIDENT);
        assert_eq!(keep_resident([(64 << 10, 128 * MIB)]), MIN_KEEP_RESIDENT);
        assert_eq!(
            keep_resident([(18 * MIB, 128 * MIB), (2 * MIB, 8 * MIB)]),
            36 * MIB
        );
        assert_eq!(
            keep_resident([(18 * MIB, 8 * MIB)]),
            8 * MIB,
            "within the limit"
        );
        assert_eq!(keep_resident([(1 << 40, 1 << 40)]), MAX_KEEP_RESIDENT);
    }

    #[test]
    fn the_initial_memory_is_read_from_the_module_or_component() {
        let module = wat::parse_str("(module (memory 3))").unwrap();
        assert_eq!(initial_memory(&module), Some(3 << 16));
        let component =
            wat::parse_str("(component (core module (memory 2)) (core module (memory 5)))")
                .unwrap();
        assert_eq!(initial_memory(&component), Some(5 << 16));
        assert_eq!(initial_memory(b"not wasm"), None);
    }

    #[test]
    fn the_pool_fits_the_manifest_with_headroom_and_a_cap() {
        assert_eq!(pool_instances([]), POOL_HEADROOM);
        assert_eq!(pool_instances([256, 8]), 256 + 8 + POOL_HEADROOM);
        assert_eq!(pool_instances([u32::MAX, 1]), MAX_POOL_INSTANCES);
    }
}
