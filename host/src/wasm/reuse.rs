//! Instances that serve more than one request (`max_requests_per_instance`
//! above 1). Fresh stays the default; see `docs/operations.md` for what a guest
//! can carry from one request to the next (its globals and heap).
//!
//! Two ways, chosen by the service's limits:
//!
//! - [`Pool`]: one request at a time per instance, WASI 0.2 and 0.3 alike.
//!   A request takes an idle instance (or instantiates one), runs through
//!   the same request path as a fresh instance — armed by
//!   [`Sandbox::arm`] with full fuel, its own deadline and its request id —
//!   and gives the instance back only if it ended cleanly. Everything a
//!   fresh request reports (fuel, peak memory, the error kind, guest output
//!   with its request id) is exact.
//! - [`Shared`]: several requests at once in one WASI 0.3 instance
//!   (`max_concurrent_per_instance` > 1), run by wasmtime's `ProxyHandler`.
//!   Each request that starts adds one budget of fuel to the instance's
//!   tank, which holds at most `max_concurrent_per_instance` budgets (so
//!   one runaway request may use the budget of the instance's others); a request past its timeout ends the instance; an instance that
//!   fails takes its in-flight requests with it, and each of them learns
//!   why ([`Verdict`]). Fuel and peak memory are the instance's, shared by
//!   its concurrent requests, and are reported when the instance ends.

use std::pin::Pin;
use std::sync::atomic::AtomicU32;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::sync::{oneshot, watch};
use wasmtime::component::GuestTaskId;
use wasmtime::{Store, StoreContextMut};
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::handler::{
    HandlerState, Instance, Proxy, ProxyHandler, ShouldAccept, WorkerExpiration, WorkerState,
    WorkerStatus,
};

use crate::config::limits::Limits;
use crate::wasm::component::Compiled;
use crate::wasm::sandbox::{Lease, Sandbox};
use crate::wasm::state::HostState;

/// An instance waiting for its next request.
pub struct Idle {
    /// Its store (limits are armed again per request).
    pub store: Store<HostState>,
    /// The instance.
    pub proxy: Proxy,
    /// Requests it has served.
    pub served: u32,
    /// Since when it waits.
    since: Instant,
}

/// Idle instances of one service version, one request at a time each.
pub struct Pool {
    /// Most recently used last: the warmest instance is taken first.
    idle: Mutex<Vec<Idle>>,
    /// `max_requests_per_instance`.
    max_requests: u32,
    /// `instance_idle_timeout`.
    idle_timeout: Duration,
}

impl Pool {
    /// An empty pool for a service with `limits`.
    pub fn new(limits: &Limits) -> Pool {
        Pool {
            idle: Mutex::new(Vec::new()),
            max_requests: limits.max_requests_per_instance,
            idle_timeout: limits.instance_idle_timeout,
        }
    }

    /// The most recently used idle instance that has not waited past
    /// `instance_idle_timeout`, if any.
    pub fn take(&self) -> Option<Idle> {
        let now = Instant::now();
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let mut expired = Vec::new();
        let found = loop {
            match idle.pop() {
                Some(instance) if now - instance.since < self.idle_timeout => break Some(instance),
                Some(instance) => expired.push(instance),
                None => break None,
            }
        };
        drop(idle);
        drop(expired);
        found
    }

    /// Gives back an instance that served a request cleanly; it is dropped
    /// instead once it has served `max_requests_per_instance`.
    pub fn put(&self, store: Store<HostState>, proxy: Proxy, served: u32) {
        if served >= self.max_requests {
            return;
        }
        let instance = Idle {
            store,
            proxy,
            served,
            since: Instant::now(),
        };
        self.idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(instance);
    }

    /// Drops the instances that waited past `instance_idle_timeout` (they
    /// hold a pool slot and their memory).
    pub fn sweep(&self) {
        let now = Instant::now();
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let (expired, kept): (Vec<Idle>, Vec<Idle>) = std::mem::take(&mut *idle)
            .into_iter()
            .partition(|instance| now - instance.since >= self.idle_timeout);
        *idle = kept;
        drop(idle);
        drop(expired);
    }
}

/// How a shared instance ended, for the requests it was serving: `None`
/// while it runs or when it ended cleanly.
pub type Verdict = watch::Receiver<Option<Ended>>;

/// How a shared instance ended badly.
#[derive(Debug, Clone)]
pub struct Ended {
    /// What went wrong, as wasmtime said it.
    pub error: Arc<wasmtime::Error>,
    /// Whether the memory limit refused a grow before it.
    pub memory_refused: bool,
    /// Its peak linear memory.
    pub peak_memory: usize,
}

/// What a request hands a shared instance: its id (guest output is tagged
/// with the most recent request's), and where to send the instance's
/// [`Verdict`] once one takes the request.
pub struct Admitted {
    /// The request: its id, chain depth and trace.
    pub link: crate::wasm::outbound::Link,
    /// Receives the instance's verdict.
    pub verdict: oneshot::Sender<Verdict>,
}

/// A service version's shared WASI 0.3 instances, as `ProxyHandler` state.
pub struct Shared {
    sandbox: Arc<Sandbox>,
    compiled: Arc<Compiled>,
}

impl Shared {
    /// A handler running instances of `compiled` in `sandbox`.
    pub fn handler(sandbox: Arc<Sandbox>, compiled: Arc<Compiled>) -> ProxyHandler<Shared> {
        ProxyHandler::new(Shared { sandbox, compiled })
    }
}

impl HandlerState for Shared {
    type StoreData = HostState;
    type WorkerExpiration = Expiry;
    type WorkerState = Worker;

    async fn instantiate(&self) -> wasmtime::Result<Instance<HostState, Expiry, Worker>> {
        let limits = &self.sandbox.limits;
        // The instance lives across requests: its epoch deadline is far
        // away, and each request's timeout is enforced by `Expiry` and
        // `Worker::on_request_start` instead.
        let lease = Lease {
            link: crate::wasm::outbound::Link::detached("shared-instance"),
            deadline: Instant::now() + Duration::from_secs(365 * 24 * 3600),
            ticks: Arc::new(AtomicU32::new(0)),
        };
        let mut store = self
            .sandbox
            .new_store(&self.compiled, lease)
            .map_err(|e| wasmtime::format_err!("{e:#}"))?;
        let proxy = self.compiled.pre.instantiate_async(&mut store).await?;
        let (verdict, _) = watch::channel(None);
        Ok(Instance {
            store,
            proxy,
            view: HostState::http,
            expiration: Expiry {
                idle: limits.instance_idle_timeout,
                busy: limits.timeout,
                timer: Box::pin(tokio::time::sleep(limits.timeout)),
            },
            state: Worker {
                sandbox: self.sandbox.clone(),
                verdict,
            },
        })
    }
}

/// One shared instance's policy.
pub struct Worker {
    sandbox: Arc<Sandbox>,
    /// Tells the instance's requests how it ended.
    verdict: watch::Sender<Option<Ended>>,
}

impl WorkerState for Worker {
    type StoreData = HostState;
    type RequestData = Admitted;

    fn should_accept_request(&self, concurrent: usize, total: usize) -> ShouldAccept {
        let limits = &self.sandbox.limits;
        if total >= limits.max_requests_per_instance as usize {
            ShouldAccept::Never
        } else if concurrent >= limits.max_concurrent_per_instance as usize {
            ShouldAccept::No
        } else {
            ShouldAccept::Yes
        }
    }

    fn on_request_start(
        &self,
        mut store: StoreContextMut<'_, HostState>,
        admitted: Admitted,
        _task: GuestTaskId,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + Sync>> {
        let _ = admitted.verdict.send(self.verdict.subscribe());
        let state = store.data_mut();
        for output in &state.output {
            output.set_request(admitted.link.request_id.clone(), admitted.link.trace);
        }
        state.outbound.set_link(admitted.link);
        // Each request brings one budget into the instance's shared tank,
        // which holds at most one budget per request it may run at once.
        let limits = &self.sandbox.limits;
        if let Some(budget) = store.data().metered_fuel(limits.fuel)
            && let cap = budget.saturating_mul(u64::from(limits.max_concurrent_per_instance))
            && let tank = store.get_fuel().unwrap_or(0)
            && let Err(err) = store.set_fuel(tank.saturating_add(budget).min(cap))
        {
            tracing::warn!(service = %self.sandbox.name, error = %err, "cannot refill fuel");
        }
        Box::pin(tokio::time::sleep(self.sandbox.limits.timeout))
    }

    fn drop(&self, store: Store<HostState>, result: Result<(), wasmtime::Error>) {
        match result {
            Ok(()) => tracing::debug!(service = %self.sandbox.name, "shared instance dropped"),
            Err(error) => {
                let limiter = &store.data().limiter;
                let ended = Ended {
                    memory_refused: limiter.refused,
                    peak_memory: limiter.peak,
                    error: Arc::new(error),
                };
                tracing::info!(
                    service = %self.sandbox.name,
                    error = %format!("{:#}", ended.error),
                    "shared instance ended"
                );
                // Before the store goes: dropping it ends the instance's
                // response bodies, whose readers check the verdict then.
                self.verdict.send_replace(Some(ended));
            }
        }
        drop(store);
    }
}

/// When a shared instance expires: idle too long, or a request (the most
/// recent one outstanding) past its timeout.
pub struct Expiry {
    idle: Duration,
    busy: Duration,
    timer: Pin<Box<tokio::time::Sleep>>,
}

impl WorkerExpiration for Expiry {
    fn poll(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        status: WorkerStatus,
        start: Instant,
    ) -> Poll<()> {
        let limit = match status {
            WorkerStatus::Idle => self.idle,
            _ => self.busy,
        };
        let deadline = start + limit;
        if Instant::now() >= deadline {
            return Poll::Ready(());
        }
        self.timer.as_mut().reset(deadline.into());
        self.timer.as_mut().poll(cx)
    }
}
