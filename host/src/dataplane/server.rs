//! The data plane: accept connections, give every request an id, route it,
//! admit it (`max_concurrency`), enforce `max_request_body`, and hand it to
//! [`invoke`]. `Server::serve(listener, shutdown)` runs until `shutdown`
//! completes, then drains in-flight requests for up to `shutdown_grace`.

use std::convert::Infallible;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderValue, Request, Response, header};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use wasmtime_wasi_http::{Error as HttpError, WasiBody};

use crate::config::limits::header_bytes;
use crate::config::manifest::HostConfig;
use crate::dataplane::balance::{Balance, HandedOver};
use crate::dataplane::body::{HostBody, LimitedBody};
use crate::dataplane::error_kind::ErrorKind;
use crate::dataplane::head::{
    absolute_uri, authority, content_length, is_smuggling_vector, request_id, stamp_host_headers,
};
use crate::dataplane::outcome::{InFlight, Report, Strategy};
use crate::dataplane::request::{Call, invoke};
use crate::observe::metrics::Metrics;
use crate::observe::traces::RequestTrace;
use crate::services::registry::Registry;
use crate::services::service::{LoadedService, Overloaded, Unavailable, uptime_ms};
use crate::wasm::outbound::{Answer, Dispatch, MAX_HOPS, full_body};

/// The most request-header bytes (names, values and separators) a request
/// may carry; more is 431 `headers_too_large`.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

/// hyper's read buffer: twice the header limit, so that heads between the
/// two get the host's own 431 (with `wasmhost-error`), and larger ones are
/// cut off by hyper's plain 431 before they are buffered.
const READ_BUFFER_BYTES: usize = 2 * MAX_HEADER_BYTES;

/// The data-plane server.
pub struct Server {
    /// Itself, for the chained calls its guests make.
    me: std::sync::Weak<Server>,
    /// Where guests that compute for long continue (see [`crate::dataplane::lanes`]).
    slow_lane: tokio::runtime::Handle,
    /// The live routes and services.
    registry: Arc<Registry>,
    /// For answers outside any service.
    metrics: Arc<Metrics>,
    /// How long a graceful stop waits for in-flight requests.
    shutdown_grace: Duration,
    /// `[host] header_timeout`: slowloris and idle keep-alive connections.
    header_timeout: Duration,
    /// `[host] max_connections`.
    max_connections: usize,
    /// Data-plane connections open now.
    connections: Arc<AtomicUsize>,
    /// Connections per I/O worker, kept even.
    balance: Arc<Balance>,
    /// Requests being handled, and when the last one came or went.
    active: AtomicUsize,
    last_activity: AtomicU64,
}

/// Counts a request in [`Server::active`] until its response head is out.
struct Active<'a>(&'a Server);

impl Drop for Active<'_> {
    fn drop(&mut self) {
        self.0.last_activity.store(uptime_ms(), Ordering::Relaxed);
        self.0.active.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Server {
    /// A server for the services in `registry`.
    pub fn new(
        slow_lane: tokio::runtime::Handle,
        registry: Arc<Registry>,
        metrics: Arc<Metrics>,
        host: &HostConfig,
        balance: Arc<Balance>,
    ) -> Arc<Self> {
        crate::dataplane::outcome::set_access_log(host.access_log);
        Arc::new_cyclic(|me| Server {
            me: me.clone(),
            slow_lane,
            registry,
            metrics,
            shutdown_grace: host.shutdown_grace,
            header_timeout: host.header_timeout,
            max_connections: host.max_connections as usize,
            connections: Arc::new(AtomicUsize::new(0)),
            balance,
            active: AtomicUsize::new(0),
            last_activity: AtomicU64::new(uptime_ms()),
        })
    }

    /// Whether a request is in the data plane: arriving, waiting for its
    /// response head, or with its guest still running (a streamed
    /// response keeps its guest running).
    pub fn busy(&self) -> bool {
        self.active.load(Ordering::Acquire) > 0
            || self
                .registry
                .load()
                .services
                .iter()
                .any(|s| s.metrics.in_flight.get() > 0)
    }

    /// Completes once the data plane has had no request for `idle`: none
    /// arriving, none waiting for its response head, no guest running (a
    /// streamed response keeps its guest running).
    pub async fn idle_for(&self, idle: Duration) {
        let idle_ms = u64::try_from(idle.as_millis()).unwrap_or(u64::MAX);
        loop {
            let quiet_ms = uptime_ms().saturating_sub(self.last_activity.load(Ordering::Relaxed));
            let busy = self.busy();
            if busy {
                self.last_activity.store(uptime_ms(), Ordering::Relaxed);
            } else if quiet_ms >= idle_ms {
                return;
            }
            let wait = if busy { idle_ms } else { idle_ms - quiet_ms };
            tokio::time::sleep(Duration::from_millis(wait.clamp(5, 250))).await;
        }
    }

    /// Serves `listener` until `shutdown` completes, then stops accepting and
    /// waits up to `shutdown_grace` for in-flight requests.
    ///
    /// This is I/O worker `worker`: a connection it accepts while another
    /// worker serves fewer goes to that worker (see [`crate::dataplane::balance`]); `inbox`
    /// brings the connections other workers hand to this one.
    pub async fn serve(
        self: Arc<Self>,
        worker: usize,
        listener: TcpListener,
        mut inbox: mpsc::UnboundedReceiver<HandedOver>,
        shutdown: impl Future<Output = ()>,
    ) -> anyhow::Result<()> {
        let graceful = GracefulShutdown::new();
        let mut shutdown = pin!(shutdown);
        loop {
            let (stream, load) = tokio::select! {
                _ = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _peer)) => {
                        let load = self.balance.place(worker);
                        if load.worker() != worker {
                            match stream.into_std() {
                                Ok(stream) => if let Err(stream) = self.balance.hand_over(stream, load) {
                                    // That worker stopped: this one is stopping too.
                                    drop(stream);
                                },
                                Err(err) => tracing::debug!(error = %err, "handing a connection over failed"),
                            }
                            continue;
                        }
                        (stream, load)
                    }
                    Err(err) => {
                        // Out of file descriptors and the like: back off
                        // instead of spinning on the error.
                        tracing::warn!(error = %err, "accept failed");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                },
                Some(handed) = inbox.recv() => match TcpStream::from_std(handed.stream) {
                    Ok(stream) => (stream, handed.load),
                    Err(err) => {
                        tracing::debug!(error = %err, "taking a handed-over connection failed");
                        continue;
                    }
                },
            };
            let Some(open) = Connection::open(&self.connections, self.max_connections) else {
                self.metrics.host_error(ErrorKind::Overloaded.as_str());
                tokio::spawn(refuse(stream));
                continue;
            };
            // Small response chunks (streams, SSE) must not wait 40 ms for
            // Nagle's algorithm: guests buffer when they want batching.
            let _ = stream.set_nodelay(true);
            let server = self.clone();
            // hyper's header read timeout also runs while a kept-alive
            // connection waits for its next request: it is the idle timeout.
            let connection = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(self.header_timeout)
                .max_buf_size(READ_BUFFER_BYTES)
                .keep_alive(true)
                .serve_connection(
                    TokioIo::new(stream),
                    service_fn(move |request| {
                        let server = server.clone();
                        async move { Ok::<_, Infallible>(server.handle(request).await) }
                    }),
                );
            let connection = graceful.watch(connection);
            tokio::spawn(async move {
                if let Err(err) = connection.await {
                    tracing::debug!(error = %err, "connection ended with an error");
                }
                drop(open);
                drop(load);
            });
        }
        drop(listener);
        match tokio::time::timeout(self.shutdown_grace, graceful.shutdown()).await {
            Ok(()) => tracing::info!("all in-flight requests finished"),
            Err(_) => tracing::warn!(
                grace = ?self.shutdown_grace,
                "shutdown grace expired with requests still in flight"
            ),
        }
        Ok(())
    }

    /// One request, from arrival to the response head.
    async fn handle(self: &Arc<Self>, request: Request<Incoming>) -> Response<HostBody> {
        let started = Instant::now();
        self.active.fetch_add(1, Ordering::AcqRel);
        self.last_activity.store(uptime_ms(), Ordering::Relaxed);
        let _active = Active(self);
        let request_id: Arc<str> = request_id(&request).into();
        let reject = |kind: ErrorKind| {
            let mut response = self.reject(
                kind,
                None,
                &request_id,
                request.method(),
                request.uri().path(),
                started,
            );
            if kind != ErrorKind::NoRoute {
                response
                    .headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            response
        };
        if header_bytes(request.headers()) > MAX_HEADER_BYTES {
            return reject(ErrorKind::HeadersTooLarge);
        }
        if is_smuggling_vector(&request) {
            return reject(ErrorKind::BadRequest);
        }

        let snapshot = self.registry.load();
        let host = authority(&request);
        let Some((route, service)) = snapshot.router.route(host.as_deref(), request.uri().path())
        else {
            return reject(ErrorKind::NoRoute);
        };
        let route = HeaderValue::from_str(route).ok();
        let service = service.clone();
        drop(snapshot);
        let (mut parts, body) = request.into_parts();
        parts.uri = absolute_uri(&parts.uri, host.as_deref());
        let arrived = Arrived {
            parts,
            request_id,
            started,
            route,
            hop: 0,
        };
        self.run_on(service, arrived, |max, exceeded| {
            LimitedBody::new(body, max, exceeded)
        })
        .await
    }

    /// Admits a routed request (or a chained call) on `service`, loads its
    /// code if it is unloaded, and runs it.
    async fn run_on(
        self: &Arc<Self>,
        service: Arc<LoadedService>,
        arrived: Arrived,
        body: impl FnOnce(u64, Arc<AtomicBool>) -> LimitedBody,
    ) -> Response<HostBody> {
        let Arrived {
            mut parts,
            request_id,
            started,
            route,
            hop,
        } = arrived;
        let reject = |kind: ErrorKind, parts: &http::request::Parts| {
            self.reject(
                kind,
                Some(&service),
                &request_id,
                &parts.method,
                parts.uri.path(),
                started,
            )
        };
        let permit = match service.admit().await {
            Ok(permit) => permit,
            Err(Overloaded) => return reject(ErrorKind::Overloaded, &parts),
        };
        let trace = RequestTrace::new(parts.headers.get("traceparent"), hop == 0);
        let cold = !service.is_loaded();
        let loading = Instant::now();
        let code = service.code().await;
        if cold && trace.recorded() {
            crate::observe::traces::record_child(
                trace.server,
                "cold start",
                crate::observe::traces::Kind::Internal,
                loading,
                vec![opentelemetry::KeyValue::new(
                    "wasmhost.service",
                    service.name.to_string(),
                )],
                code.is_err().then(|| "unavailable".to_owned()),
            );
        }
        let code = match code {
            Ok(code) => code,
            Err(Unavailable) => return reject(ErrorKind::Unavailable, &parts),
        };
        let max_body = service.limits().max_request_body;
        if content_length(&parts.headers).is_some_and(|len| len > max_body) {
            return reject(ErrorKind::BodyTooLarge, &parts);
        }
        let in_flight = InFlight::new(&service.metrics.in_flight);
        stamp_host_headers(&mut parts.headers, &request_id, route, hop, &trace);
        let body_exceeded = Arc::new(AtomicBool::new(false));
        let request = Request::from_parts(parts, body(max_body, body_exceeded.clone()));
        let dispatch: Arc<dyn Dispatch> = self.clone();
        let call = Call {
            request_id,
            trace,
            hop,
            dispatch: Some(dispatch),
            started,
            permit,
            in_flight,
            body_exceeded,
            code,
        };
        invoke(&self.slow_lane, &service, request, call).await
    }

    /// The host's own answer `kind` to a request, reported like any other.
    fn reject(
        &self,
        kind: ErrorKind,
        service: Option<&LoadedService>,
        request_id: &Arc<str>,
        method: &http::Method,
        path: &str,
        started: Instant,
    ) -> Response<HostBody> {
        if service.is_none() {
            self.metrics.host_error(kind.as_str());
        }
        Report {
            service: service.map(|s| (&s.name, &s.metrics)),
            request_id,
            trace: None,
            guest_started: None,
            method,
            path,
            started,
            status: kind.status().as_u16(),
            error: Some(kind),
            cause: None,
            client_gone: false,
            usage: None,
            strategy: Strategy::Rejected,
        }
        .record();
        kind.response::<HostBody>(service.map(|s| &*s.name), request_id)
    }
}

/// A request on its way to a service: its head, and what the host knows
/// of it so far.
struct Arrived {
    parts: http::request::Parts,
    request_id: Arc<str>,
    started: Instant,
    /// The matched route prefix (`None` for a chained call).
    route: Option<HeaderValue>,
    /// Its depth in a chain of calls (0: from a client).
    hop: u32,
}

impl Dispatch for Server {
    fn call(&self, callee: &str, request: Request<WasiBody>, hop: u32) -> Answer {
        let server = self.me.upgrade();
        let callee = callee.to_owned();
        Box::pin(async move {
            let started = Instant::now();
            let request_id: Arc<str> = request_id(&request).into();
            let Some(server) = server else {
                return ErrorKind::Unavailable
                    .response::<Bytes>(Some(&callee), &request_id)
                    .map(full_body);
            };
            let service = server
                .registry
                .load()
                .services
                .iter()
                .find(|service| *service.name == *callee)
                .cloned();
            let Some(service) = service else {
                return server
                    .reject(
                        ErrorKind::NoRoute,
                        None,
                        &request_id,
                        request.method(),
                        request.uri().path(),
                        started,
                    )
                    .map(guest_body);
            };
            if hop > MAX_HOPS {
                return server
                    .reject(
                        ErrorKind::LoopDetected,
                        Some(&service),
                        &request_id,
                        request.method(),
                        request.uri().path(),
                        started,
                    )
                    .map(guest_body);
            }
            let (parts, body) = request.into_parts();
            let arrived = Arrived {
                parts,
                request_id,
                started,
                route: None,
                hop,
            };
            server
                .run_on(service, arrived, |max, exceeded| {
                    LimitedBody::from_guest(body, max, exceeded)
                })
                .await
                .map(guest_body)
        })
    }

    fn record(&self, caller: &str, callee: &str, status: u16, seconds: f64) {
        self.metrics.chained_call(caller, callee, status, seconds);
    }
}

/// A response body from a chained call, as the calling guest reads it: a
/// failure of the callee after its head ends the stream with an error.
fn guest_body(body: HostBody) -> WasiBody {
    use http_body_util::BodyExt;
    body.map_err(|aborted| HttpError::InternalError(Some(aborted.0)))
        .boxed_unsync()
}

/// Counts an open connection in [`Server::connections`] while alive.
struct Connection(Arc<AtomicUsize>);

impl Connection {
    /// Counts one more connection, unless `max` are open already.
    fn open(count: &Arc<AtomicUsize>, max: usize) -> Option<Connection> {
        count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| {
                (open < max).then_some(open + 1)
            })
            .ok()
            .map(|_| Connection(count.clone()))
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The answer to a connection over `max_connections`: `503 overloaded`,
/// then close. Written without parsing the request, so it costs the host
/// next to nothing; what the client sent is drained (for at most a second)
/// so that closing does not reset the connection before it reads the answer.
async fn refuse(mut stream: tokio::net::TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    const BODY: &str =
        r#"{"error":"overloaded","service":null,"request_id":null,"reason":"max_connections"}"#;
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\nwasmhost-error: overloaded\r\n\
         retry-after: 1\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n{BODY}",
        BODY.len()
    );
    let answer_and_drain = async {
        stream.write_all(answer.as_bytes()).await?;
        stream.shutdown().await?;
        let mut sink = [0u8; 1024];
        while stream.read(&mut sink).await? > 0 {}
        std::io::Result::Ok(())
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), answer_and_drain).await;
}
