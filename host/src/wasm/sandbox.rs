//! A service version's sandbox, and the one function that builds a
//! `Store` from it.
//!
//! A [`Sandbox`] is built once per service version (at load and at each
//! reload that changes the service) and shared by `Arc` with every request:
//! the guest's environment, its read-only preopens, its outbound rules and
//! its limits. [`Sandbox::new_store`] is the only place a request's store is
//! made, and [`Sandbox::arm`] the only place limits are put on one — for a
//! fresh instance once, for a reused instance before each request, so a
//! reused request runs under exactly the limits a fresh one does.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

use anyhow::Context as _;
use wasmtime::component::ResourceTable;
use wasmtime::{Store, UpdateDeadline};
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};
use wasmtime_wasi_http::WasiHttpCtx;

use crate::config::limits::Limits;
use crate::config::manifest::{OutboundRule, ServiceConfig};
use crate::stores::Stores;
use crate::wasm::component::Compiled;
use crate::wasm::guest_log::{GuestLog, Stream};
use crate::wasm::keyvalue::AppState;
use crate::wasm::outbound::{Link, OutboundPolicy};
use crate::wasm::state::{HostState, MemoryLimiter};

/// What a service's guests may touch, and under which limits.
#[derive(Debug)]
pub struct Sandbox {
    /// The service's name: log events and outbound refusals carry it.
    pub name: Arc<str>,
    /// The resolved limits (`[defaults]` merged with the service's keys).
    pub limits: Limits,
    /// The guest's whole environment.
    env: Vec<(String, String)>,
    /// Read-only preopens: guest path → host directory.
    files: Vec<(String, PathBuf)>,
    /// `allowed_outbound_hosts`, shared by every request's policy.
    outbound: Arc<[OutboundRule]>,
    /// The key-value stores it lists and its variables.
    pub app: AppState,
}

/// Which request a store serves now, and until when: what [`Sandbox::arm`]
/// puts on a store besides the service's limits.
pub struct Lease {
    /// The request: its id (guest output and outbound refusals are logged
    /// with it), its depth in a chain of calls and its trace, for the
    /// calls the guest makes.
    pub link: Link,
    /// The request's wall-clock deadline: the epoch callback interrupts the
    /// guest once it has passed.
    pub deadline: Instant,
    /// Epoch ticks the guest has run across in this request, counted for
    /// the slow lane (see [`crate::dataplane::lanes`]).
    pub ticks: Arc<AtomicU32>,
}

impl Sandbox {
    /// The sandbox of `config`'s service.
    pub fn new(config: &ServiceConfig, stores: &Stores) -> Sandbox {
        Sandbox {
            app: AppState::for_service(config, stores),
            name: config.name.as_str().into(),
            limits: config.limits.clone(),
            env: config.env.clone(),
            files: config.files.clone(),
            outbound: config.allowed_outbound_hosts.clone().into(),
        }
    }

    /// A new store on `compiled`'s engine for one request (or the first request of a
    /// reused instance): the WASI context (env, read-only preopens, no
    /// sockets, guest output to the log), the outbound policy, and every
    /// limit applied with [`Sandbox::arm`].
    pub fn new_store(&self, compiled: &Compiled, lease: Lease) -> anyhow::Result<Store<HostState>> {
        let limits = &self.limits;
        let output = [Stream::Stdout, Stream::Stderr].map(|stream| {
            GuestLog::new(
                stream,
                self.name.clone(),
                lease.link.request_id.clone(),
                lease.link.trace,
            )
        });
        let mut wasi = WasiCtxBuilder::new();
        wasi.envs(&self.env)
            .stdout(output[0].clone())
            .stderr(output[1].clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .max_random_size(limits.max_random_bytes);
        for (guest, host) in &self.files {
            wasi.preopened_dir(host, guest, FsPerms::ReadOnly)
                .map_err(anyhow::Error::from)
                .with_context(|| format!("opening `{}` for the guest", host.display()))?;
        }
        let mut http = WasiHttpCtx::new();
        http.set_field_size_limit(
            usize::try_from(limits.max_http_fields_size).unwrap_or(usize::MAX),
        );
        let state = HostState {
            table: ResourceTable::new(),
            wasi: wasi.build(),
            http,
            outbound: OutboundPolicy::new(
                self.outbound.clone(),
                self.name.clone(),
                lease.link.clone(),
                limits,
            ),
            limiter: MemoryLimiter::new(limits.memory),
            output,
            fuel: compiled.fuel,
            app: self.app.clone(),
        };
        let mut store = Store::new(&compiled.engine, state);
        store.limiter(|state| &mut state.limiter);
        let handles = limits.max_resource_handles as usize;
        store.data_mut().table.set_max_capacity(handles);
        store.set_max_component_handles(handles);
        store.set_hostcall_fuel(usize::try_from(limits.hostcall_fuel).unwrap_or(usize::MAX));
        self.arm(&mut store, lease)?;
        Ok(store)
    }

    /// Readies `store` for the request `lease` names: full fuel, the epoch
    /// callback that yields to other tasks every tick (counting the ticks)
    /// and interrupts the guest once the deadline has passed, a fresh
    /// peak-memory record, and the request id on guest output and outbound
    /// refusals. A reused instance is armed again before each request.
    pub fn arm(&self, store: &mut Store<HostState>, lease: Lease) -> anyhow::Result<()> {
        let Lease {
            link,
            deadline,
            ticks,
        } = lease;
        let state = store.data_mut();
        state.limiter.start_request();
        for output in &state.output {
            output.set_request(link.request_id.clone(), link.trace);
        }
        state.outbound.set_link(link);
        if !crate::wasm::engine::metered() {
            return Ok(());
        }
        if let Some(fuel) = store.data().metered_fuel(self.limits.fuel) {
            store.set_fuel(fuel).map_err(anyhow::Error::from)?;
        }
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            ticks.fetch_add(1, Ordering::Relaxed);
            if Instant::now() >= deadline {
                Ok(UpdateDeadline::Interrupt)
            } else {
                Ok(UpdateDeadline::Yield(1))
            }
        });
        Ok(())
    }
}
