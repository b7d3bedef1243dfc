//! The wasmtime engine every service shares, the linker with the whole WASI
//! 0.2 and 0.3 import set, and the epoch ticker.
//!
//! The sandbox is closed by policy in [`crate::state`], not by leaving imports
//! out: real components import far more than the `proxy` world (cli,
//! filesystem, sockets, ...), so all of it is linked.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context as _;
use wasmtime::component::Linker;
use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::state::HostState;

/// How often the engine's epoch advances. Every running guest reaches an
/// epoch check within one period, where it yields to the async executor (so a
/// spinning guest cannot starve other requests on its thread) and where its
/// wall-clock deadline is enforced. 1 ms keeps other requests' added latency
/// in the low milliseconds while costing one atomic increment per tick.
pub const EPOCH_TICK: Duration = Duration::from_millis(1);

/// Concurrent instances the pooling allocator has room for. A request needs
/// one instance; the admission limits (`max_concurrency`) sit in front.
const POOL_INSTANCES: u32 = 1_000;

/// Builds the engine: async, component model (0.2 and 0.3), fuel, epoch
/// interruption and the pooling allocator with resident-memory reuse.
pub fn new_engine() -> anyhow::Result<Engine> {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.wasm_component_model_async(true);
    config.consume_fuel(true);
    config.epoch_interruption(true);

    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(POOL_INSTANCES);
    // Components from some toolchains (componentize-py, -js) carry several
    // core instances, memories and tables each.
    pool.total_core_instances(POOL_INSTANCES * 10);
    pool.total_memories(POOL_INSTANCES * 2);
    pool.total_tables(POOL_INSTANCES * 4);
    pool.total_stacks(POOL_INSTANCES);
    pool.max_component_instance_size(4 << 20);
    pool.max_core_instance_size(4 << 20);
    pool.max_memories_per_component(16);
    pool.max_tables_per_component(64);
    pool.table_elements(100_000);
    // Keep a little of each slot resident and reset it in place instead of
    // returning it to the kernel: most of the per-request cost otherwise.
    pool.linear_memory_keep_resident(1 << 20);
    pool.table_keep_resident(64 << 10);
    pool.async_stack_keep_resident(64 << 10);
    pool.pagemap_scan(Enabled::Auto);
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));

    Engine::new(&config)
        .map_err(anyhow::Error::from)
        .context("configuring the wasmtime engine")
}

/// A linker with every WASI 0.2 and 0.3 interface wasmtime implements,
/// including `wasi:http`. Imports at any 0.2.x patch version resolve against
/// these definitions (wasmtime matches semver-compatible versions).
pub fn new_linker(engine: &Engine) -> anyhow::Result<Linker<HostState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(anyhow::Error::from)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)
        .map_err(anyhow::Error::from)?;
    wasmtime_wasi::p3::add_to_linker(&mut linker).map_err(anyhow::Error::from)?;
    wasmtime_wasi_http::p3::add_to_linker(&mut linker).map_err(anyhow::Error::from)?;
    Ok(linker)
}

/// Advances the engine's epoch every [`EPOCH_TICK`] on a dedicated thread.
/// Dropping it stops and joins the thread.
pub struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    /// Starts ticking `engine`.
    pub fn start(engine: Engine) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::Builder::new()
            .name("wasmhost-epoch".into())
            .spawn({
                let stop = stop.clone();
                move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(EPOCH_TICK);
                        engine.increment_epoch();
                    }
                }
            })
            .expect("spawning the epoch thread");
        EpochTicker {
            stop,
            thread: Some(thread),
        }
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
