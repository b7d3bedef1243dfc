//! Outbound wasi:http policy: a guest may only reach the origins listed in
//! its service's `allowed_outbound_hosts`. The target is taken from the
//! request the guest built (scheme and authority of its URI), never from a
//! header a client sent.
//!
//! A request to `http://<service>.internal/…` (or Spin's
//! `http://<service>.spin.internal/…`) is a chained call: it never touches
//! a socket, the host runs it on that service in-process ([`Dispatch`]).
//! It must be allowed by a rule naming `.internal` hosts (`*` alone does
//! not). Every request the guest sends carries the request's
//! `x-request-id` and a child `traceparent`, unless the guest set its own;
//! `wasmhost-*` headers are the host's and never leave a guest.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use http::HeaderValue;
use http::uri::Scheme;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use crate::config::limits::Limits;
use crate::config::manifest::OutboundRule;
use crate::observe::traces::{self, Kind, TraceContext};

/// How deep a chain of calls between services may go: a request that would
/// be hop 11 is answered 508 `loop_detected`.
pub const MAX_HOPS: u32 = 10;

/// The host header that tells a chained callee how deep it is (informative:
/// the host keeps its own count, which a guest cannot forge).
pub const HOP_HEADER: &str = "wasmhost-hop";

/// A response head in the making, for [`Dispatch::call`].
pub type Answer = Pin<Box<dyn Future<Output = http::Response<WasiBody>> + Send>>;

/// Runs chained calls: the data plane implements it.
pub trait Dispatch: Send + Sync {
    /// Runs `request` on service `callee` of this host, as hop `hop`, with
    /// the callee's own limits, admission queue and metrics; past
    /// [`MAX_HOPS`] it answers `508 loop_detected` instead.
    fn call(&self, callee: &str, request: http::Request<WasiBody>, hop: u32) -> Answer;

    /// Counts a chained call from `caller` to `callee` that answered
    /// `status` after `seconds`.
    fn record(&self, caller: &str, callee: &str, status: u16, seconds: f64);
}

/// The request a store serves now, as its outbound calls need it.
#[derive(Clone)]
pub struct Link {
    /// The request id: sent along, and on log events about refusals.
    pub request_id: Arc<str>,
    /// How deep in a chain of calls the request is (0: from a client).
    pub hop: u32,
    /// The span the guest's calls are children of (its guest span).
    pub trace: Option<TraceContext>,
    /// Where chained calls go; `None` outside a server (benchmarks, tools).
    pub dispatch: Option<Arc<dyn Dispatch>>,
}

impl Link {
    /// A link for work outside any request (a shared instance before its
    /// first request).
    pub fn detached(request_id: &str) -> Link {
        Link {
            request_id: request_id.into(),
            hop: 0,
            trace: None,
            dispatch: None,
        }
    }
}

/// Outbound-request hooks for one request's store.
pub struct OutboundPolicy {
    /// Origins the service may call; empty means none.
    rules: Arc<[OutboundRule]>,
    /// For log events about refused requests.
    service: Arc<str>,
    /// The request served now.
    link: Link,
    /// `max_http_fields`: more header fields than this are refused.
    max_fields: usize,
    /// `outbound_body_buffer`: the most one body write may carry; one such
    /// chunk is buffered.
    body_buffer: usize,
}

impl OutboundPolicy {
    /// The policy for one request of `service`.
    pub fn new(rules: Arc<[OutboundRule]>, service: Arc<str>, link: Link, limits: &Limits) -> Self {
        OutboundPolicy {
            rules,
            service,
            link,
            max_fields: limits.max_http_fields as usize,
            body_buffer: usize::try_from(limits.outbound_body_buffer).unwrap_or(usize::MAX),
        }
    }

    /// Calls go out for the request `link` names from now on (a reused
    /// instance serves several requests).
    pub fn set_link(&mut self, link: Link) {
        self.link = link;
    }

    /// The service a chained call to `uri` reaches, if `uri` is one
    /// (`http://<service>.internal` or `http://<service>.spin.internal`).
    pub fn internal_target(uri: &http::Uri) -> Option<String> {
        let host = uri.host()?.trim_end_matches('.').to_ascii_lowercase();
        let name = host
            .strip_suffix(".spin.internal")
            .or_else(|| host.strip_suffix(".internal"))?;
        (!name.is_empty() && !name.contains('.')).then(|| name.to_owned())
    }

    /// Whether this service may call `callee` in-process: a rule names
    /// `http://<callee>.internal`, `http://*.internal` (or the
    /// `.spin.internal` spellings). A rule for any host does not count.
    pub fn allows_chaining(&self, callee: &str) -> bool {
        self.rules.iter().any(|rule| {
            !rule.is_any_host()
                && (rule.allows("http", &format!("{callee}.internal"), 80)
                    || rule.allows("http", &format!("{callee}.spin.internal"), 80))
        })
    }

    /// Why `request` may not be sent, if it may not: its target is not in
    /// the allow-list, a `host` header names another authority than its URI
    /// (wasmtime forbids the guest to set one; this holds even if that
    /// changes), or it has too many header fields.
    pub fn refusal<B>(&self, request: &http::Request<B>) -> Option<&'static str> {
        let uri = request.uri();
        let allowed = match Self::internal_target(uri) {
            Some(callee) => self.allows_chaining(&callee),
            None => self.allows(uri),
        };
        if !allowed {
            return Some("not in `allowed_outbound_hosts`");
        }
        let authority = uri.authority().map(|a| a.as_str());
        let hosts = request.headers().get_all(http::header::HOST);
        if hosts
            .iter()
            .any(|host| Some(host.as_bytes()) != authority.map(str::as_bytes))
        {
            return Some("its `host` header names another authority than its URI");
        }
        if request.headers().len() > self.max_fields {
            return Some("more header fields than `max_http_fields`");
        }
        None
    }

    /// Whether a request to `uri` is allowed.
    pub fn allows(&self, uri: &http::Uri) -> bool {
        let scheme = uri.scheme_str().unwrap_or("http").to_ascii_lowercase();
        let Some(host) = uri.host() else {
            return false;
        };
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        let port = uri.port_u16().unwrap_or(match scheme.as_str() {
            "https" => 443,
            _ => 80,
        });
        self.rules
            .iter()
            .any(|rule| rule.allows(&scheme, &host, port))
    }
}

type SendResult = Result<
    (
        http::Response<WasiBody>,
        Box<dyn Future<Output = Result<(), Error>> + Send>,
    ),
    Error,
>;

impl WasiHttpHooks for OutboundPolicy {
    fn default_scheme(&mut self) -> Option<Scheme> {
        Some(Scheme::HTTP)
    }

    fn p2_outgoing_body_buffer_chunks(&mut self) -> usize {
        1
    }

    fn p2_outgoing_body_chunk_size(&mut self) -> usize {
        self.body_buffer
    }

    fn send_request(
        &mut self,
        mut request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> Box<dyn Future<Output = SendResult> + Send> {
        drop(fut);
        if let Some(reason) = self.refusal(&request) {
            tracing::warn!(
                service = %self.service,
                request_id = %self.link.request_id,
                uri = %request.uri(),
                reason,
                "outbound request denied"
            );
            return Box::new(async { Err(Error::HttpRequestDenied) });
        }
        let span = self.propagate(request.headers_mut());
        let call = OutboundCall {
            span,
            parent: self.link.trace.map_or(0, |guest| guest.span_id),
            started: Instant::now(),
            method: request.method().clone(),
            // Only a recorded span needs the URI as text.
            uri: span.map(|_| request.uri().to_string()).unwrap_or_default(),
            caller: self.service.clone(),
        };
        match Self::internal_target(request.uri()) {
            Some(callee) => {
                let hop = self.link.hop + 1;
                let dispatch = self.link.dispatch.clone();
                Box::new(async move {
                    let response = match dispatch {
                        Some(dispatch) => {
                            let response = dispatch.call(&callee, request, hop).await;
                            dispatch.record(
                                &call.caller,
                                &callee,
                                response.status().as_u16(),
                                call.started.elapsed().as_secs_f64(),
                            );
                            response
                        }
                        None => return Err(Error::ConnectionRefused),
                    };
                    call.end(Some(&callee), Ok(response.status().as_u16()));
                    Ok((response, Box::new(async { Ok(()) }) as IoFuture))
                })
            }
            None => Box::new(async move {
                use http_body_util::BodyExt;
                let result = wasmtime_wasi_http::default_send_request(request, options).await;
                call.end(
                    None,
                    result
                        .as_ref()
                        .map(|(response, _)| response.status().as_u16())
                        .map_err(|err| format!("{err:?}")),
                );
                let (response, io) = result?;
                Ok((
                    response.map(BodyExt::boxed_unsync),
                    Box::new(io) as IoFuture,
                ))
            }),
        }
    }
}

type IoFuture = Box<dyn Future<Output = Result<(), Error>> + Send>;

/// `bytes` as a wasi:http body.
pub fn full_body(bytes: bytes::Bytes) -> WasiBody {
    use http_body_util::BodyExt;
    http_body_util::Full::new(bytes)
        .map_err(|never: std::convert::Infallible| match never {})
        .boxed_unsync()
}

impl OutboundPolicy {
    /// Readies the headers of a request the guest sends: drops any
    /// `wasmhost-*` header, and adds the request's `x-request-id` and a
    /// `traceparent` naming a new client span unless the guest set them.
    /// Returns the client span's context when the trace is sampled.
    fn propagate(&self, headers: &mut http::HeaderMap) -> Option<TraceContext> {
        strip_host_headers(headers);
        if !headers.contains_key("x-request-id")
            && let Ok(value) = HeaderValue::from_str(&self.link.request_id)
        {
            headers.insert("x-request-id", value);
        }
        let span = self.link.trace.map(|guest| guest.child())?;
        if headers.contains_key("traceparent") {
            // The guest continues a trace of its own making.
            return None;
        }
        headers.insert("traceparent", span.traceparent());
        span.sampled.then_some(span)
    }
}

/// Removes every `wasmhost-*` header: the host's namespace, which a guest
/// cannot send on.
pub fn strip_host_headers(headers: &mut http::HeaderMap) {
    if headers
        .keys()
        .any(|name| name.as_str().starts_with("wasmhost-"))
    {
        let reserved: Vec<_> = headers
            .keys()
            .filter(|name| name.as_str().starts_with("wasmhost-"))
            .cloned()
            .collect();
        for name in reserved {
            headers.remove(name);
        }
    }
}

/// An outbound request or chained call in flight, for its client span.
struct OutboundCall {
    /// The client span, when the trace is sampled and exported.
    span: Option<TraceContext>,
    /// Its parent: the guest span.
    parent: u64,
    started: Instant,
    method: http::Method,
    uri: String,
    caller: Arc<str>,
}

impl OutboundCall {
    /// Records the client span, ended now: `callee` for a chained call,
    /// the status or the error.
    fn end(self, callee: Option<&str>, result: Result<u16, String>) {
        let Some(span) = self.span.filter(|_| traces::exporting()) else {
            return;
        };
        use opentelemetry::KeyValue;
        let mut attributes = vec![
            KeyValue::new("http.request.method", self.method.as_str().to_owned()),
            KeyValue::new("url.full", self.uri),
            KeyValue::new("wasmhost.service", self.caller.to_string()),
        ];
        if let Some(callee) = callee {
            attributes.push(KeyValue::new("wasmhost.callee", callee.to_owned()));
        }
        let error = match &result {
            Ok(status) => {
                attributes.push(KeyValue::new(
                    "http.response.status_code",
                    i64::from(*status),
                ));
                (*status >= 400).then(|| status.to_string())
            }
            Err(err) => Some(err.clone()),
        };
        if let Some(error) = &error {
            attributes.push(KeyValue::new("error.type", error.clone()));
        }
        traces::record(traces::Span {
            context: span,
            parent: (self.parent != 0).then_some(self.parent),
            remote_parent: false,
            name: self.method.as_str().to_owned().into(),
            kind: Kind::Client,
            start: traces::wall_clock(self.started),
            end: std::time::SystemTime::now(),
            attributes,
            error,
        });
    }
}
