//! Per-request store data: the WASI context, the resource table, the HTTP
//! context and policy, and the memory limiter. A fresh `HostState` is built
//! for every request (see [`crate::wasm::sandbox`]); only a service that opts
//! into instance reuse keeps one across requests.

use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::wasm::engine::Fuel;
use crate::wasm::guest_log::GuestLog;
use crate::wasm::keyvalue::AppState;
use crate::wasm::outbound::OutboundPolicy;

/// What one request's `Store` holds.
pub struct HostState {
    /// Resources (streams, requests, bodies) handed to the guest.
    pub table: ResourceTable,
    /// The guest's WASI view of the world: env, preopens, stdio, clocks.
    pub wasi: WasiCtx,
    /// wasi:http state.
    pub http: WasiHttpCtx,
    /// Which outbound requests the guest may make.
    pub outbound: OutboundPolicy,
    /// Enforces the service's memory limit and remembers refusals.
    pub limiter: MemoryLimiter,
    /// The guest's stdout and stderr sinks, kept to tag their lines with the
    /// request a reused instance serves now.
    pub output: [GuestLog; 2],
    /// Whether the store's engine meters fuel (see [`Fuel`]).
    pub fuel: Fuel,
    /// The service's key-value stores and variables.
    pub app: AppState,
}

impl HostState {
    /// The fuel to give a request under `limit` when this store meters it.
    pub fn metered_fuel(&self, limit: Option<u64>) -> Option<u64> {
        (self.fuel == Fuel::Metered && crate::wasm::engine::metered())
            .then(|| limit.unwrap_or(u64::MAX))
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            hooks: &mut self.outbound,
            table: &mut self.table,
            ctx: &mut self.http,
        }
    }
}

/// Caps the total linear memory of one instance and records whether it ever
/// refused a grow, so that the trap that usually follows (an allocation
/// failure, `unreachable`) is reported as `memory_exhausted`, not `trap`.
#[derive(Debug)]
pub struct MemoryLimiter {
    /// Bytes of linear memory the instance may hold in all its memories.
    max_memory: usize,
    /// Bytes currently held, summed over all memories.
    current: usize,
    /// The most the instance held during the current request (for metrics
    /// and logs).
    pub peak: usize,
    /// Set when a grow was refused during the current request; read when
    /// classifying a failure.
    pub refused: bool,
}

/// Table elements one table may hold: stops `table.grow` bombs.
const MAX_TABLE_ELEMENTS: usize = 100_000;

impl MemoryLimiter {
    /// A limiter allowing `max_memory` bytes in total.
    pub fn new(max_memory: u64) -> Self {
        MemoryLimiter {
            max_memory: usize::try_from(max_memory).unwrap_or(usize::MAX),
            current: 0,
            peak: 0,
            refused: false,
        }
    }

    /// A request starts on this instance: its peak starts from what the
    /// instance holds now, and no refusal is on its record.
    pub fn start_request(&mut self) {
        self.peak = self.current;
        self.refused = false;
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let total = self.current - current.min(self.current) + desired;
        if total > self.max_memory {
            self.refused = true;
            return Ok(false);
        }
        self.current = total;
        self.peak = self.peak.max(total);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > MAX_TABLE_ELEMENTS {
            self.refused = true;
            return Ok(false);
        }
        Ok(true)
    }
}
