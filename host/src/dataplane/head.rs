//! What the data plane reads from a request head and writes into it: the
//! request id, the host's own headers, smuggling vectors, the authority and
//! the absolute URI the guest sees.

use http::{HeaderValue, Request, header};

use crate::observe::traces::RequestTrace;
use crate::wasm::outbound::{HOP_HEADER, strip_host_headers};

/// Longest client-supplied `x-request-id` that is kept as is.
const MAX_REQUEST_ID_LEN: usize = 128;

/// Headers the host sets on the request the guest sees, replacing any
/// copies the client sent: `x-request-id`, `traceparent` (naming the
/// request's server span), `wasmhost-route` (the matched route prefix) and,
/// on a chained call, `wasmhost-hop` (its depth). Every other `wasmhost-*` header is the host's
/// namespace and is removed, so a guest can trust what it finds there.
pub(crate) fn stamp_host_headers(
    headers: &mut http::HeaderMap,
    request_id: &str,
    route: Option<HeaderValue>,
    hop: u32,
    trace: &RequestTrace,
) {
    strip_host_headers(headers);
    if let Ok(value) = HeaderValue::from_str(request_id) {
        headers.insert("x-request-id", value);
    }
    headers.insert("traceparent", trace.server.traceparent());
    if let Some(route) = route {
        headers.insert("wasmhost-route", route);
    }
    if hop > 0 {
        headers.insert(HOP_HEADER, HeaderValue::from(hop));
    }
}

/// The client's `x-request-id` when it is reasonable, else a new one.
pub(crate) fn request_id<B>(request: &Request<B>) -> String {
    request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= MAX_REQUEST_ID_LEN)
        .map(str::to_owned)
        .unwrap_or_else(new_request_id)
}

/// A new random 128-bit request id, as 32 hex digits (fast, not a secret).
fn new_request_id() -> String {
    crate::observe::hex::HexDigits::new(fastrand::u128(..), 32).to_string()
}

/// Both `Content-Length` and `Transfer-Encoding`, or several differing
/// `Content-Length` values: request smuggling vectors, refused with 400.
pub(crate) fn is_smuggling_vector<B>(request: &Request<B>) -> bool {
    let headers = request.headers();
    let mut lengths = headers.get_all(header::CONTENT_LENGTH).iter();
    let first = lengths.next();
    if first.is_some() && headers.contains_key(header::TRANSFER_ENCODING) {
        return true;
    }
    lengths.any(|other| Some(other) != first)
}

pub(crate) fn content_length(headers: &http::HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// The request's authority: the `Host` header, else the URI's.
pub(crate) fn authority<B>(request: &Request<B>) -> Option<String> {
    request
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| request.uri().authority().map(|a| a.to_string()))
}

/// The URI the guest sees: scheme and authority added to the path and query
/// the client sent.
pub(crate) fn absolute_uri(uri: &http::Uri, authority: Option<&str>) -> http::Uri {
    let path_and_query = uri.path_and_query().map_or("/", |pq| pq.as_str());
    let authority = authority
        .filter(|a| a.parse::<http::uri::Authority>().is_ok())
        .unwrap_or("localhost");
    http::Uri::builder()
        .scheme("http")
        .authority(authority)
        .path_and_query(path_and_query)
        .build()
        .unwrap_or_else(|_| uri.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(headers: &[(&str, &str)]) -> Request<()> {
        let mut builder = Request::builder().uri("/x");
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).unwrap()
    }

    #[test]
    fn content_length_with_transfer_encoding_is_a_smuggling_vector() {
        let r = request(&[("content-length", "3"), ("transfer-encoding", "chunked")]);
        assert!(is_smuggling_vector(&r));
    }

    #[test]
    fn conflicting_content_lengths_are_a_smuggling_vector() {
        assert!(is_smuggling_vector(&request(&[
            ("content-length", "3"),
            ("content-length", "4")
        ])));
        assert!(!is_smuggling_vector(&request(&[("content-length", "3")])));
    }

    #[test]
    fn a_client_request_id_is_kept_and_a_missing_one_is_generated() {
        assert_eq!(request_id(&request(&[("x-request-id", "abc")])), "abc");
        let a = request_id(&request(&[]));
        let b = request_id(&request(&[]));
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
    }

    #[test]
    fn the_guest_sees_an_absolute_uri_with_the_original_path_and_query() {
        let uri: http::Uri = "/api/x?y=1".parse().unwrap();
        assert_eq!(
            absolute_uri(&uri, Some("example.com:8080")).to_string(),
            "http://example.com:8080/api/x?y=1"
        );
        assert_eq!(
            absolute_uri(&uri, None).to_string(),
            "http://localhost/api/x?y=1"
        );
    }
}
