//! Outbound wasi:http policy: a guest may only reach the origins listed in
//! its service's `allowed_outbound_hosts`. The target is taken from the
//! request the guest built (scheme and authority of its URI), never from a
//! header a client sent.

use std::sync::Arc;

use http::uri::Scheme;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use crate::manifest::OutboundRule;

/// Outbound-request hooks for one request's store.
pub struct OutboundPolicy {
    /// Origins the service may call; empty means none.
    rules: Arc<[OutboundRule]>,
    /// For log events about refused requests.
    service: Arc<str>,
    /// For log events about refused requests.
    request_id: Arc<str>,
}

impl OutboundPolicy {
    /// The policy for one request of `service`.
    pub fn new(rules: Arc<[OutboundRule]>, service: Arc<str>, request_id: Arc<str>) -> Self {
        OutboundPolicy {
            rules,
            service,
            request_id,
        }
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

    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> Box<dyn Future<Output = SendResult> + Send> {
        drop(fut);
        if !self.allows(request.uri()) {
            tracing::warn!(
                service = %self.service,
                request_id = %self.request_id,
                uri = %request.uri(),
                "outbound request denied: not in `allowed_outbound_hosts`"
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
