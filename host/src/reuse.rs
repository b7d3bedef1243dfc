//! Reusing WASI 0.3 instances (`max_requests_per_instance` > 1).
//!
//! A WASI 0.3 component may serve several requests from one instance, one
//! after the other or at once (`max_concurrent_per_instance`). wasmtime's
//! `ProxyHandler` runs the instances ("workers"); this module supplies what
//! makes it wasmhost's:
//!
//! - stores are built like every other request's (sandbox, memory limit,
//!   outbound policy), so only the instance outlives a request;
//! - **fuel is refilled for every request**: `wasmtime serve` never refills
//!   it on reuse, so a reused instance there fails every Nth request. With
//!   one request at a time the refill makes fuel exact per request; with
//!   several at once, the tank is topped up to one request's budget
//!   whenever a request starts;
//! - a request that has not answered within `timeout` ends its instance
//!   (and the instance's other requests) — the client gets 504;
//! - an instance idle for `instance_idle_timeout` is dropped.
//!
//! What a reused request does not have (yet): a guest failure after the
//! response head does not abort the connection, the admission permit is
//! released with the head, guest output is logged with the request id
//! `reused-instance`, and fuel is not reported per request.

use std::pin::Pin;
use std::sync::atomic::AtomicU32;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use wasmtime::component::GuestTaskId;
use wasmtime::{Store, StoreContextMut};
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::handler::{
    ExpirationError, HandlerState, Instance, ProxyHandler, ShouldAccept, WorkerExpiration,
    WorkerState, WorkerStatus,
};

use crate::service::LoadedService;
use crate::state::HostState;

/// The request id guest output of a reused instance is logged with.
pub const REUSED_REQUEST_ID: &str = "reused-instance";

/// A service's reuse policy, as `ProxyHandler` state.
pub struct Reuse {
    /// The service (weak: the service owns its handler).
    service: Weak<LoadedService>,
}

impl Reuse {
    /// A handler running instances of `service`.
    pub fn handler(service: &Arc<LoadedService>) -> ProxyHandler<Reuse> {
        ProxyHandler::new(Reuse {
            service: Arc::downgrade(service),
        })
    }
}

impl HandlerState for Reuse {
    type StoreData = HostState;
    type WorkerExpiration = Expiry;
    type WorkerState = Worker;

    async fn instantiate(&self) -> wasmtime::Result<Instance<HostState, Expiry, Worker>> {
        let service = self
            .service
            .upgrade()
            .ok_or_else(|| wasmtime::format_err!("the service was unloaded"))?;
        let limits = service.limits().clone();
        // The instance lives across requests: its epoch deadline is far
        // away, and each request's timeout is enforced by `Expiry` and
        // `Worker::on_request_start` instead.
        let far = Instant::now() + Duration::from_secs(365 * 24 * 3600);
        let mut store = service
            .new_store(&REUSED_REQUEST_ID.into(), far, Arc::new(AtomicU32::new(0)))
            .map_err(|e| wasmtime::format_err!("{e:#}"))?;
        let proxy = service.pre().instantiate_async(&mut store).await?;
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
                fuel: limits.fuel,
                timeout: limits.timeout,
                max_requests: limits.max_requests_per_instance as usize,
                max_concurrent: limits.max_concurrent_per_instance as usize,
                service: service.name.clone(),
            },
        })
    }
}

/// One reused instance's policy.
pub struct Worker {
    fuel: Option<u64>,
    timeout: Duration,
    max_requests: usize,
    max_concurrent: usize,
    service: Arc<str>,
}

impl WorkerState for Worker {
    type StoreData = HostState;
    type RequestData = ();

    fn should_accept_request(&self, concurrent: usize, total: usize) -> ShouldAccept {
        if total >= self.max_requests {
            ShouldAccept::Never
        } else if concurrent >= self.max_concurrent {
            ShouldAccept::No
        } else {
            ShouldAccept::Yes
        }
    }

    fn on_request_start(
        &self,
        mut store: StoreContextMut<'_, HostState>,
        _data: (),
        _task: GuestTaskId,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + Sync>> {
        if crate::engine::metered()
            && let Err(err) = store.set_fuel(self.fuel.unwrap_or(u64::MAX))
        {
            tracing::warn!(service = %self.service, error = %err, "cannot refill fuel");
        }
        Box::pin(tokio::time::sleep(self.timeout))
    }

    fn drop(&self, _store: Store<HostState>, result: Result<(), wasmtime::Error>) {
        match result {
            Ok(()) => tracing::debug!(service = %self.service, "reused instance dropped"),
            Err(err) => tracing::info!(
                service = %self.service,
                error = %format!("{err:#}"),
                "reused instance ended"
            ),
        }
    }
}

/// When a reused instance expires: idle too long, or a request (the most
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

/// Whether a reused request's failure was its timeout.
pub fn is_expiration(error: &wasmtime::Error) -> bool {
    error.is::<ExpirationError>()
}
