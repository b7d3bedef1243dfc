//! One request through one guest: fresh store, instantiate, call the
//! handler, and classify how it ended into an [`ErrorKind`].
//!
//! The guest runs in its own task, which owns the store for the whole life
//! of the request, response body streaming included. The caller gets the
//! response head as soon as the guest sets it; the body's end waits for the
//! task's outcome, so a failure after the head aborts the connection.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Instant;

use http::HeaderValue;
use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::{OwnedSemaphorePermit, oneshot};
use wasmtime::component::Accessor;
use wasmtime::{AsContextMut, Store, Trap};
use wasmtime_wasi_http::handler::{Prepared, Proxy, ProxyPre};
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::{WasiBody, WasiHttpView};

use crate::body::{HostBody, LimitedBody, Outcome};
use crate::error_kind::ErrorKind;
use crate::metrics::Finished;
use crate::service::{Code, LoadedService};
use crate::state::HostState;

/// The guest's response head, or the error it answered with.
type Head = Result<http::Response<WasiBody>, String>;

/// Counts a request in `wasmhost_requests_in_flight` while alive.
pub struct InFlight(Gauge);

impl InFlight {
    /// Counts one more request in `gauge`.
    pub fn new(gauge: &Gauge) -> Self {
        gauge.inc();
        InFlight(gauge.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// What the caller needs to know about one request.
pub struct Call {
    /// The request id (kept from the client or generated).
    pub request_id: Arc<str>,
    /// The trace id of an incoming `traceparent`, for the logs.
    pub trace_id: Option<String>,
    /// When the request arrived; the timeout counts from here.
    pub started: Instant,
    /// The admission permit, held until the guest's task ends.
    pub permit: OwnedSemaphorePermit,
    /// Held until the guest's task ends.
    pub in_flight: InFlight,
    /// Set by the request body when it crossed `max_request_body`.
    pub body_exceeded: Arc<AtomicBool>,
    /// The service's code, held until the guest's task ends.
    pub code: Arc<Code>,
}

/// Runs `request` on `service` and returns the response to send.
pub async fn invoke(
    slow_lane: &tokio::runtime::Handle,
    service: &Arc<LoadedService>,
    request: http::Request<LimitedBody>,
    call: Call,
) -> http::Response<HostBody> {
    let code = call.code.clone();
    if let Some(handler) = code.reuse_handler(service) {
        return crate::reuse::invoke(handler, service, request, call).await;
    }
    let (head_tx, head_rx) = oneshot::channel::<Head>();
    let (outcome_tx, outcome_rx) = oneshot::channel::<Outcome>();
    let client_gone = Arc::new(AtomicBool::new(false));
    let request_id = call.request_id.clone();
    let body_exceeded = call.body_exceeded.clone();
    let head_request = request.method() == http::Method::HEAD;
    let started = call.started;
    let admitted = Instant::now();

    let ticks = Arc::new(AtomicU32::new(0));
    crate::lanes::spawn_guest(
        slow_lane,
        ticks.clone(),
        run(
            service.clone(),
            request,
            call,
            head_tx,
            outcome_tx,
            client_gone.clone(),
            ticks,
        ),
    );

    let name = Some(&*service.name);
    let mut outcome_rx = outcome_rx;
    let head = tokio::select! {
        biased;
        head = head_rx => head,
        outcome = &mut outcome_rx => {
            // The guest ended before (or while) setting a response.
            return match outcome {
                Ok(Err(kind)) => kind.response(name, &request_id),
                _ => ErrorKind::Trap.response(name, &request_id),
            };
        }
    };
    match head {
        // The body crossed `max_request_body` before the response started:
        // that is the answer, whatever the guest made of the failed read.
        Ok(Ok(_)) if body_exceeded.load(Ordering::Acquire) => {
            ErrorKind::BodyTooLarge.response(name, &request_id)
        }
        Ok(Ok(response)) => {
            let (mut parts, inner) = response.into_parts();
            stamp_request_id(&mut parts.headers, &request_id);
            // Per-request cost in the browser's dev tools: time to the
            // response head in all, and in the guest (from instantiation).
            let timing = format!(
                "total;dur={:.3}, guest;dur={:.3}",
                started.elapsed().as_secs_f64() * 1e3,
                admitted.elapsed().as_secs_f64() * 1e3
            );
            if let Ok(value) = HeaderValue::from_str(&timing) {
                parts.headers.insert("server-timing", value);
            }
            let no_body = head_request
                || parts.status == http::StatusCode::NO_CONTENT
                || parts.status == http::StatusCode::NOT_MODIFIED;
            let remaining = if no_body {
                Some(0)
            } else {
                parts
                    .headers
                    .get(http::header::CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok()?.parse().ok())
            };
            let body = HostBody::Guest {
                inner,
                outcome: outcome_rx,
                client_gone,
                finished: false,
                remaining,
            };
            http::Response::from_parts(parts, body)
        }
        // The guest answered with an error code, or dropped the response
        // outparam: wait for how the task ended to name the failure.
        Ok(Err(_)) | Err(_) => match outcome_rx.await {
            Ok(Err(kind)) => kind.response(name, &request_id),
            _ => ErrorKind::Trap.response(name, &request_id),
        },
    }
}

/// The guest task: owns the store until the guest is done, then logs the
/// request and reports its outcome.
async fn run(
    service: Arc<LoadedService>,
    request: http::Request<LimitedBody>,
    call: Call,
    head_tx: oneshot::Sender<Head>,
    outcome_tx: oneshot::Sender<Outcome>,
    client_gone: Arc<AtomicBool>,
    ticks: Arc<AtomicU32>,
) {
    let deadline = call.started + service.limits().timeout;
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let head_status = Arc::new(std::sync::Mutex::new(None::<u16>));
    let head_refused = Arc::new(AtomicBool::new(false));

    let mut store = match service.new_store(&call.code.compiled, &call.request_id, deadline, ticks)
    {
        Ok(store) => store,
        Err(err) => {
            tracing::error!(service = %service.name, request_id = %call.request_id, error = %format!("{err:#}"), "creating the store failed");
            let _ = outcome_tx.send(Err(ErrorKind::Unavailable));
            return;
        }
    };
    let initial_fuel = store.get_fuel().unwrap_or(0);
    let head_tx = {
        let head_status = head_status.clone();
        let head_refused = head_refused.clone();
        let service = service.clone();
        move |head: Head| {
            let head = match head {
                Ok(response) if service.limits().refuses_head(response.headers()) => {
                    head_refused.store(true, Ordering::Release);
                    Err("response head over `max_http_fields`".to_owned())
                }
                head => head,
            };
            if let Ok(response) = &head {
                *head_status.lock().unwrap_or_else(|e| e.into_inner()) =
                    Some(response.status().as_u16());
            }
            let _ = head_tx.send(head);
        }
    };

    let result = tokio::select! {
        result = call_guest(&mut store, call.code.pre(), request, head_tx) => result.map_err(Failure::Guest),
        _ = tokio::time::sleep_until(deadline.into()) => Err(Failure::Timeout),
    };

    let fuel_used = initial_fuel.saturating_sub(store.get_fuel().unwrap_or(0));
    let limiter = &store.data().limiter;
    // What wasmtime said, for the log: which trap, which limit.
    let cause = match &result {
        Err(Failure::Guest(error)) => Some(format!("{:#}", error.root_cause())),
        _ => None,
    };
    let outcome = if head_refused.load(Ordering::Acquire) {
        Err(ErrorKind::BadResponse)
    } else {
        result.map_err(|failure| {
            classify(
                &failure,
                limiter.refused,
                call.body_exceeded.load(Ordering::Acquire),
            )
        })
    };
    let peak_memory = limiter.peak;
    drop(store);

    let head_status = *head_status.lock().unwrap_or_else(|e| e.into_inner());
    let client_gone = client_gone.load(Ordering::Acquire);
    let status = match (&outcome, head_status) {
        (_, Some(status)) => status,
        (Err(kind), None) => kind.status().as_u16(),
        (Ok(()), None) => ErrorKind::Trap.status().as_u16(),
    };
    let duration = call.started.elapsed();
    match &outcome {
        Err(kind) if !client_gone => tracing::warn!(
            target: "wasmhost::request",
            service = %service.name,
            request_id = %call.request_id,
            method = %method,
            path,
            status,
            error = kind.as_str(),
            cause,
            trace_id = call.trace_id.as_deref(),
            duration_ms = duration.as_secs_f64() * 1e3,
            fuel = fuel_used,
            peak_memory,
            "request failed"
        ),
        _ => tracing::info!(
            target: "wasmhost::request",
            service = %service.name,
            request_id = %call.request_id,
            method = %method,
            path,
            status,
            client_gone,
            trace_id = call.trace_id.as_deref(),
            duration_ms = duration.as_secs_f64() * 1e3,
            fuel = fuel_used,
            peak_memory,
            "request"
        ),
    }
    service.metrics.finished(Finished {
        status,
        seconds: duration.as_secs_f64(),
        fuel: Some(fuel_used),
        peak_memory: Some(peak_memory),
        // A guest that failed because the client hung up is not a service
        // failure.
        error: outcome.err().filter(|_| !client_gone),
    });
    let _ = outcome_tx.send(outcome);
    drop(call.permit);
    drop(call.in_flight);
}

/// Why a guest did not finish cleanly.
pub(crate) enum Failure {
    /// The guest's own error (trap, fuel, interrupt, ...).
    Guest(wasmtime::Error),
    /// The wall-clock deadline passed while the host was waiting.
    Timeout,
}

pub(crate) fn classify(failure: &Failure, memory_refused: bool, body_exceeded: bool) -> ErrorKind {
    let error = match failure {
        Failure::Timeout => return ErrorKind::Timeout,
        Failure::Guest(error) => error,
    };
    let trap = error.downcast_ref::<Trap>().copied().or_else(|| {
        error
            .chain()
            .find_map(|cause| cause.downcast_ref::<Trap>().copied())
    });
    match trap {
        Some(Trap::OutOfFuel) => ErrorKind::FuelExhausted,
        Some(Trap::Interrupt) => ErrorKind::Timeout,
        _ if body_exceeded => ErrorKind::BodyTooLarge,
        _ if memory_refused => ErrorKind::MemoryExhausted,
        _ if error
            .chain()
            .any(|cause| cause.is::<wasmtime::PoolConcurrencyLimitError>()) =>
        {
            ErrorKind::Overloaded
        }
        _ => ErrorKind::Trap,
    }
}

/// Instantiates the guest and runs its handler to completion, body
/// streaming included; `on_head` is called once with the response head.
async fn call_guest(
    store: &mut Store<HostState>,
    pre: &ProxyPre<HostState>,
    request: http::Request<LimitedBody>,
    on_head: impl FnOnce(Head) + Send + Sync + 'static,
) -> wasmtime::Result<()> {
    let proxy = pre.instantiate_async(&mut *store).await?;
    match &proxy {
        Proxy::P2(guest) => {
            let request = store
                .data_mut()
                .http()
                .new_incoming_request(Scheme::Http, request)?;
            let out = store
                .data_mut()
                .http()
                .new_response_outparam_from_callback(move |head| {
                    on_head(head.map_err(|code| format!("{code:?}")))
                })?;
            guest
                .wasi_http_incoming_handler()
                .call_handle(&mut *store, request, out)
                .await
        }
        Proxy::P3(_) => {
            let request = request.map(|body| {
                use http_body_util::BodyExt;
                body.boxed_unsync()
            });
            store
                .as_context_mut()
                .run_concurrent(async |accessor: &Accessor<HostState>| {
                    let (tx, rx) = futures::channel::oneshot::channel();
                    let prepared = accessor.with(|mut access| {
                        Prepared::new(
                            access.as_context_mut(),
                            &proxy,
                            request,
                            HostState::http,
                            tx,
                        )
                    })?;
                    prepared.run(accessor, std::future::pending()).await?;
                    let head = match rx.await {
                        Ok(Ok(response)) => Ok(response),
                        Ok(Err(err)) => return Err(err),
                        Err(_) => Err("the guest produced no response".to_owned()),
                    };
                    on_head(head);
                    // Keep the event loop running while the guest streams
                    // the body from its background tasks.
                    std::future::poll_fn(|cx| accessor.poll_no_interesting_tasks(cx)).await;
                    Ok(())
                })
                .await?
        }
    }
}

/// Sets the response's `x-request-id` to the request's id (whatever the
/// guest put there).
pub(crate) fn stamp_request_id(headers: &mut http::HeaderMap, request_id: &str) {
    if let Ok(value) = HeaderValue::from_str(request_id) {
        headers.insert("x-request-id", value);
    }
}
