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
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
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

use crate::body::{HostBody, LimitedBody};
use crate::component::Compiled;
use crate::error_kind::ErrorKind;
use crate::invoke::{Call, Failure, classify, stamp_request_id};
use crate::metrics::Finished;
use crate::service::LoadedService;
use crate::state::HostState;

/// The request id guest output of a reused instance is logged with.
pub const REUSED_REQUEST_ID: &str = "reused-instance";

/// A service's reuse policy, as `ProxyHandler` state.
pub struct Reuse {
    /// The service (weak: the service owns its code, which owns the
    /// handler).
    service: Weak<LoadedService>,
    /// The code the instances run.
    compiled: Arc<Compiled>,
}

impl Reuse {
    /// A handler running instances of `compiled` for `service`.
    pub fn handler(service: &Arc<LoadedService>, compiled: Arc<Compiled>) -> ProxyHandler<Reuse> {
        ProxyHandler::new(Reuse {
            service: Arc::downgrade(service),
            compiled,
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
            .new_store(
                &self.compiled,
                &REUSED_REQUEST_ID.into(),
                far,
                Arc::new(AtomicU32::new(0)),
            )
            .map_err(|e| wasmtime::format_err!("{e:#}"))?;
        let proxy = self.compiled.pre.instantiate_async(&mut store).await?;
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

/// Runs `request` on one of `service`'s reused instances, and logs and
/// counts it like [`crate::invoke::invoke`] does.
pub async fn invoke(
    handler: &ProxyHandler<Reuse>,
    service: &Arc<LoadedService>,
    request: http::Request<LimitedBody>,
    call: Call,
) -> http::Response<HostBody> {
    use http_body_util::BodyExt;
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let deadline = call.started + service.limits().timeout;
    let request = request.map(|body| body.boxed_unsync());
    let answer = tokio::time::timeout_at(deadline.into(), handler.handle((), request)).await;
    let (response, error) = match answer {
        Ok(Ok(response)) if service.limits().refuses_head(response.headers()) => (
            ErrorKind::BadResponse.response(Some(&service.name), &call.request_id),
            Some(ErrorKind::BadResponse),
        ),
        Ok(Ok(response)) => {
            let (mut parts, inner) = response.into_parts();
            stamp_request_id(&mut parts.headers, &call.request_id);
            // The outcome is known: the instance's later failures are its
            // own, not this response's.
            let (outcome_tx, outcome) = tokio::sync::oneshot::channel();
            let _ = outcome_tx.send(Ok(()));
            let body = HostBody::Guest {
                inner,
                outcome,
                client_gone: Arc::new(AtomicBool::new(false)),
                finished: false,
                remaining: None,
            };
            (http::Response::from_parts(parts, body), None)
        }
        failed => {
            let kind = match failed {
                Ok(Err(err)) if !err.is::<ExpirationError>() => {
                    tracing::debug!(service = %service.name, error = %format!("{err:#}"), "reused instance failed");
                    classify(
                        &Failure::Guest(err),
                        false,
                        call.body_exceeded.load(Ordering::Acquire),
                    )
                }
                _ => ErrorKind::Timeout,
            };
            (
                kind.response(Some(&service.name), &call.request_id),
                Some(kind),
            )
        }
    };
    let status = response.status().as_u16();
    let duration = call.started.elapsed();
    tracing::info!(
        target: "wasmhost::request",
        service = %service.name,
        request_id = %call.request_id,
        method = %method,
        path,
        status,
        error = error.map(ErrorKind::as_str),
        trace_id = call.trace_id.as_deref(),
        duration_ms = duration.as_secs_f64() * 1e3,
        reused_instance = true,
        "request"
    );
    service.metrics.finished(Finished {
        status,
        seconds: duration.as_secs_f64(),
        fuel: None,
        peak_memory: None,
        error,
    });
    response
}
