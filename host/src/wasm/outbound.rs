//! Outbound wasi:http policy: a guest may only reach the origins listed in
//! its service's `allowed_outbound_hosts`. The target is taken from the
//! request the guest built (scheme and authority of its URI), never from a
//! header a client sent.

use std::sync::Arc;

use http::uri::Scheme;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use crate::config::limits::Limits;
use crate::config::manifest::OutboundRule;

/// Outbound-request hooks for one request's store.
pub struct OutboundPolicy {
    /// Origins the service may call; empty means none.
    rules: Arc<[OutboundRule]>,
    /// For log events about refused requests.
    service: Arc<str>,
    /// For log events about refused requests.
    request_id: Arc<str>,
    /// `max_http_fields`: more header fields than this are refused.
    max_fields: usize,
    /// `outbound_body_buffer`: the most one body write may carry; one such
    /// chunk is buffered.
    body_buffer: usize,
}

impl OutboundPolicy {
    /// The policy for one request of `service`.
    pub fn new(
        rules: Arc<[OutboundRule]>,
        service: Arc<str>,
        request_id: Arc<str>,
        limits: &Limits,
    ) -> Self {
        OutboundPolicy {
            rules,
            service,
            request_id,
            max_fields: limits.max_http_fields as usize,
            body_buffer: usize::try_from(limits.outbound_body_buffer).unwrap_or(usize::MAX),
        }
    }

    /// Refusals are logged with `request_id` from now on (a reused
    /// instance serves several requests).
    pub fn set_request_id(&mut self, request_id: Arc<str>) {
        self.request_id = request_id;
    }

    /// Why `request` may not be sent, if it may not: its target is not in
    /// the allow-list, a `host` header names another authority than its URI
    /// (wasmtime forbids the guest to set one; this holds even if that
    /// changes), or it has too many header fields.
    pub fn refusal<B>(&self, request: &http::Request<B>) -> Option<&'static str> {
        let uri = request.uri();
        if !self.allows(uri) {
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
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> Box<dyn Future<Output = SendResult> + Send> {
        drop(fut);
        if let Some(reason) = self.refusal(&request) {
            tracing::warn!(
                service = %self.service,
                request_id = %self.request_id,
                uri = %request.uri(),
                reason,
                "outbound request denied"
            );
            return Box::new(async { Err(Error::HttpRequestDenied) });
        }
        Box::new(async move {
            use http_body_util::BodyExt;
            let (response, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            Ok((
                response.map(BodyExt::boxed_unsync),
                Box::new(io) as Box<dyn Future<Output = Result<(), Error>> + Send>,
            ))
        })
    }
}
