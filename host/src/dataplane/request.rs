//! The one request path: a request runs on a fresh instance, a pooled
//! instance or a shared one (see [`crate::wasm::reuse`]), and ends through
//! [`crate::dataplane::outcome`] whichever it was.
//!
//! Fresh and pooled instances run in the request's own guest task, which
//! owns the store for the whole life of the request, response body
//! streaming included: it starts on the connection's I/O thread and moves
//! to the slow lane if it computes for long ([`crate::dataplane::lanes`]).
//! The caller gets the response head as soon as the guest sets it; the
//! body's end waits for the task's outcome, so a failure after the head
//! aborts the connection. The admission permit is held until the task
//! ends. A shared instance runs in wasmtime's worker task; its request's
//! permit is held by the response body until the body ends, and the body
//! aborts if the instance failed.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Instant;

use http::HeaderValue;
use tokio::sync::{OwnedSemaphorePermit, oneshot};
use wasmtime::component::Accessor;
use wasmtime::{AsContextMut, Store};
use wasmtime_wasi_http::handler::{ExpirationError, Prepared, Proxy, ProxyHandler, ProxyPre};
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::{WasiBody, WasiHttpView};

use crate::dataplane::body::{Ending, HostBody, LimitedBody, Outcome, Settle};
use crate::dataplane::error_kind::ErrorKind;
use crate::dataplane::outcome::{
    Failure, InFlight, Report, Strategy, Usage, classify, classify_error, stamp_request_id,
};
use crate::observe::traces::RequestTrace;
use crate::services::service::{Code, LoadedService};
use crate::wasm::outbound::{Dispatch, Link};
use crate::wasm::reuse::{Admitted, Shared};
use crate::wasm::sandbox::Lease;
use crate::wasm::state::HostState;

/// How long a request that went down with its shared instance waits for
/// the instance's verdict (it is sent right after the request hears).
const VERDICT_WAIT: std::time::Duration = std::time::Duration::from_millis(200);

/// The guest's response head, or the error it answered with.
type Head = Result<http::Response<WasiBody>, String>;

/// What the request path needs to know about one admitted request.
pub struct Call {
    /// The request id (kept from the client or generated).
    pub request_id: Arc<str>,
    /// Its trace: server span, guest span, parent.
    pub trace: RequestTrace,
    /// How deep in a chain of calls between services it is (0: from a
    /// client).
    pub hop: u32,
    /// Where the guest's chained calls go.
    pub dispatch: Option<Arc<dyn Dispatch>>,
    /// When the request arrived; the timeout counts from here.
    pub started: Instant,
    /// The admission permit, held until the request ends.
    pub permit: OwnedSemaphorePermit,
    /// Held until the request ends.
    pub in_flight: InFlight,
    /// Set by the request body when it crossed `max_request_body`.
    pub body_exceeded: Arc<AtomicBool>,
    /// The service's code, held until the request ends.
    pub code: Arc<Code>,
}

/// The request line, for the request's report.
struct Line {
    method: http::Method,
    path: String,
}

/// How a request ended, for [`Call::finish`].
struct End {
    status: u16,
    error: Option<ErrorKind>,
    cause: Option<String>,
    client_gone: bool,
    usage: Option<Usage>,
    strategy: Strategy,
    guest_started: Option<Instant>,
}

impl Call {
    /// What the guest's calls need to know of this request.
    fn link(&self) -> Link {
        Link {
            request_id: self.request_id.clone(),
            hop: self.hop,
            trace: Some(self.trace.guest),
            dispatch: self.dispatch.clone(),
        }
    }

    /// Reports the ended request (its one log event and its metrics), then
    /// lets go of its admission permit and in-flight count.
    fn finish(self, service: &LoadedService, line: &Line, end: End) {
        Report {
            service: Some((&service.name, &service.metrics)),
            request_id: &self.request_id,
            trace: Some(&self.trace),
            guest_started: end.guest_started,
            method: &line.method,
            path: &line.path,
            started: self.started,
            status: end.status,
            error: end.error,
            cause: end.cause,
            client_gone: end.client_gone,
            usage: end.usage,
            strategy: end.strategy,
        }
        .record();
    }
}

/// Runs `request` on `service` and returns the response to send.
pub async fn invoke(
    slow_lane: &tokio::runtime::Handle,
    service: &Arc<LoadedService>,
    request: http::Request<LimitedBody>,
    call: Call,
) -> http::Response<HostBody> {
    if let Some(shared) = call.code.shared() {
        let shared = shared.clone();
        return invoke_shared(&shared, service, request, call).await;
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
    crate::dataplane::lanes::spawn_guest(
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
            server_timing(&mut parts.headers, started, admitted);
            let length = content_length(&parts, head_request);
            let body = HostBody::guest(inner, Settle::Task(outcome_rx), client_gone, length, None);
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

/// Per-request cost in the browser's dev tools: time to the response head
/// in all, and in the guest (from admission).
fn server_timing(headers: &mut http::HeaderMap, started: Instant, admitted: Instant) {
    let value = timing_value(
        started.elapsed().as_micros(),
        admitted.elapsed().as_micros(),
    );
    if let Ok(value) = HeaderValue::from_str(&value) {
        headers.insert("server-timing", value);
    }
}

/// `total;dur=T, guest;dur=G` in milliseconds with three decimals, from
/// integer microseconds, without the formatting machinery (float or not):
/// it runs on every request.
fn timing_value(total_micros: u128, guest_micros: u128) -> String {
    let mut value = String::with_capacity(48);
    for (name, micros) in [("total;dur=", total_micros), (", guest;dur=", guest_micros)] {
        let fraction = micros % 1000;
        value.push_str(name);
        value.push_str(itoa::Buffer::new().format(micros / 1000));
        value.push('.');
        value.push_str(&"00"[..usize::from(fraction < 100) + usize::from(fraction < 10)]);
        value.push_str(itoa::Buffer::new().format(fraction));
    }
    value
}

/// The body length a response head promises: `Some(0)` for HEAD, 204 and
/// 304, else its `content-length`.
fn content_length(parts: &http::response::Parts, head_request: bool) -> Option<u64> {
    let no_body = head_request
        || parts.status == http::StatusCode::NO_CONTENT
        || parts.status == http::StatusCode::NOT_MODIFIED;
    if no_body {
        return Some(0);
    }
    parts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse().ok())
}

/// The guest task of a fresh or pooled instance: owns the store until the
/// guest is done, reports the request, gives a pooled instance back if it
/// ended cleanly, and sends the outcome.
async fn run(
    service: Arc<LoadedService>,
    request: http::Request<LimitedBody>,
    call: Call,
    head_tx: oneshot::Sender<Head>,
    outcome_tx: oneshot::Sender<Outcome>,
    client_gone: Arc<AtomicBool>,
    ticks: Arc<AtomicU32>,
) {
    let sandbox = &service.sandbox;
    let deadline = call.started + sandbox.limits.timeout;
    let line = Line {
        method: request.method().clone(),
        path: request.uri().path().to_owned(),
    };
    let head_status = Arc::new(std::sync::Mutex::new(None::<u16>));
    let head_refused = Arc::new(AtomicBool::new(false));
    let guest_started = Instant::now();
    let lease = Lease {
        link: call.link(),
        deadline,
        ticks,
    };

    // A pooled instance if one waits, else a fresh store (instantiated in
    // `call_guest`, under the request's deadline).
    let pool = call.code.pool();
    let idle = pool.and_then(|pool| pool.take());
    let strategy = if pool.is_some() {
        Strategy::Pooled
    } else {
        Strategy::Fresh
    };
    let prepared = match idle {
        Some(mut idle) => sandbox
            .arm(&mut idle.store, lease)
            .map(|()| (idle.store, Some(idle.proxy), idle.served)),
        None => sandbox
            .new_store(&call.code.compiled, lease)
            .map(|store| (store, None, 0)),
    };
    let (mut store, mut proxy, served) = match prepared {
        Ok(prepared) => prepared,
        Err(err) => {
            tracing::error!(service = %service.name, request_id = %call.request_id, error = %format!("{err:#}"), "creating the store failed");
            let _ = outcome_tx.send(Err(ErrorKind::Unavailable));
            return;
        }
    };
    let metered = store.data().metered_fuel(None).is_some();
    let fuel_left = |store: &Store<HostState>| {
        if metered { store.get_fuel().ok() } else { None }
    };
    let initial_fuel = fuel_left(&store);
    let head_tx = {
        let head_status = head_status.clone();
        let head_refused = head_refused.clone();
        let service = service.clone();
        move |head: Head| {
            let head = match head {
                Ok(response) if service.sandbox.limits.refuses_head(response.headers()) => {
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

    let guest = call_guest(&mut store, &mut proxy, call.code.pre(), request, head_tx);
    let result = tokio::select! {
        result = crate::observe::traces::within(call.trace.guest, guest) => result.map_err(Failure::Guest),
        _ = tokio::time::sleep_until(deadline.into()) => Err(Failure::Timeout),
    };

    let usage = Usage {
        fuel: initial_fuel.map(|initial| initial.saturating_sub(fuel_left(&store).unwrap_or(0))),
        peak_memory: store.data().limiter.peak,
    };
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
                store.data().limiter.refused,
                call.body_exceeded.load(Ordering::Acquire),
            )
        })
    };
    // A pooled instance that ended cleanly waits for the next request; any
    // other instance is gone before the request is reported.
    match (pool, proxy, &outcome) {
        (Some(pool), Some(proxy), Ok(())) => pool.put(store, proxy, served + 1),
        _ => drop(store),
    }

    let head_status = *head_status.lock().unwrap_or_else(|e| e.into_inner());
    let status = match (&outcome, head_status) {
        (_, Some(status)) => status,
        (Err(kind), None) => kind.status().as_u16(),
        (Ok(()), None) => ErrorKind::Trap.status().as_u16(),
    };
    // The response's last bytes wait for this: report afterwards.
    let _ = outcome_tx.send(outcome);
    let end = End {
        status,
        error: outcome.err(),
        cause,
        client_gone: client_gone.load(Ordering::Acquire),
        usage: Some(usage),
        strategy,
        guest_started: Some(guest_started),
    };
    call.finish(&service, &line, end);
}

/// Runs the guest's handler to completion, body streaming included,
/// instantiating it first unless `proxy` holds a (pooled) instance;
/// `on_head` is called once with the response head.
async fn call_guest(
    store: &mut Store<HostState>,
    proxy: &mut Option<Proxy>,
    pre: &ProxyPre<HostState>,
    request: http::Request<LimitedBody>,
    on_head: impl FnOnce(Head) + Send + Sync + 'static,
) -> wasmtime::Result<()> {
    let proxy = match proxy {
        Some(proxy) => proxy,
        None => proxy.insert(pre.instantiate_async(&mut *store).await?),
    };
    match proxy {
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
            let proxy = &*proxy;
            let request = request.map(|body| {
                use http_body_util::BodyExt;
                body.boxed_unsync()
            });
            store
                .as_context_mut()
                .run_concurrent(async |accessor: &Accessor<HostState>| {
                    let (tx, rx) = futures::channel::oneshot::channel();
                    let prepared = accessor.with(|mut access| {
                        Prepared::new(access.as_context_mut(), proxy, request, HostState::http, tx)
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

/// Runs `request` on one of `service`'s shared WASI 0.3 instances. The
/// response body holds the permit and reports the request when it ends.
async fn invoke_shared(
    handler: &ProxyHandler<Shared>,
    service: &Arc<LoadedService>,
    request: http::Request<LimitedBody>,
    call: Call,
) -> http::Response<HostBody> {
    use http_body_util::BodyExt;
    let line = Line {
        method: request.method().clone(),
        path: request.uri().path().to_owned(),
    };
    let head_request = request.method() == http::Method::HEAD;
    let deadline = call.started + service.sandbox.limits.timeout;
    let request = request.map(|body| body.boxed_unsync());
    let (verdict_tx, mut verdict_rx) = oneshot::channel();
    let guest_started = Instant::now();
    let admitted = Admitted {
        link: call.link(),
        verdict: verdict_tx,
    };
    let answer = tokio::time::timeout_at(deadline.into(), handler.handle(admitted, request)).await;
    // The instance that took the request, and (once it failed) how it ended.
    // Once `handle` returned, a worker took the request or dropped it; past
    // the timeout it may still wait in the queue: don't wait for it then.
    let mut verdict = match &answer {
        Ok(_) => verdict_rx.await.ok(),
        Err(_) => verdict_rx.try_recv().ok(),
    };
    let body_exceeded = call.body_exceeded.load(Ordering::Acquire);
    let (kind, cause) = match answer {
        Ok(Ok(response)) if service.sandbox.limits.refuses_head(response.headers()) => {
            (ErrorKind::BadResponse, None)
        }
        Ok(Ok(_)) if body_exceeded => (ErrorKind::BodyTooLarge, None),
        Ok(Ok(response)) => match verdict {
            Some(verdict) => {
                let (mut parts, inner) = response.into_parts();
                stamp_request_id(&mut parts.headers, &call.request_id);
                let length = content_length(&parts, head_request);
                let status = parts.status.as_u16();
                let service = service.clone();
                let on_end = Box::new(move |ending: Ending| {
                    let end = End {
                        status,
                        error: ending.aborted,
                        cause: None,
                        client_gone: ending.client_gone,
                        usage: None,
                        strategy: Strategy::Shared,
                        guest_started: Some(guest_started),
                    };
                    call.finish(&service, &line, end);
                });
                let body = HostBody::guest(
                    inner,
                    Settle::Instance(verdict),
                    Arc::new(AtomicBool::new(false)),
                    length,
                    Some(on_end),
                );
                return http::Response::from_parts(parts, body);
            }
            None => (ErrorKind::Trap, None),
        },
        Ok(Err(err)) if !err.is::<ExpirationError>() => {
            // A request that went down with its instance hears of it just
            // before the instance's verdict is out: wait for that.
            if let Some(verdict) = verdict.as_mut() {
                let _ =
                    tokio::time::timeout(VERDICT_WAIT, verdict.wait_for(|ended| ended.is_some()))
                        .await;
            }
            let ended = verdict.as_ref().and_then(|v| v.borrow().clone());
            match ended {
                Some(ended) => (
                    classify_error(&ended.error, ended.memory_refused, body_exceeded),
                    Some(format!("{:#}", ended.error.root_cause())),
                ),
                None => (
                    classify_error(&err, false, body_exceeded),
                    Some(format!("{:#}", err.root_cause())),
                ),
            }
        }
        _ => (ErrorKind::Timeout, None),
    };
    let response = kind.response(Some(&service.name), &call.request_id);
    let end = End {
        status: kind.status().as_u16(),
        error: Some(kind),
        cause,
        client_gone: false,
        usage: None,
        strategy: Strategy::Shared,
        guest_started: Some(guest_started),
    };
    call.finish(service, &line, end);
    response
}

#[cfg(test)]
mod tests {
    use super::timing_value;

    #[test]
    fn server_timing_is_milliseconds_with_three_decimals() {
        assert_eq!(timing_value(0, 0), "total;dur=0.000, guest;dur=0.000");
        assert_eq!(timing_value(1_234, 5), "total;dur=1.234, guest;dur=0.005");
        assert_eq!(
            timing_value(20_050, 999),
            "total;dur=20.050, guest;dur=0.999"
        );
        assert_eq!(
            timing_value(7_000_100, 1_010),
            "total;dur=7000.100, guest;dur=1.010"
        );
    }
}
