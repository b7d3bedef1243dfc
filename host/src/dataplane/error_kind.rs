//! What the client gets when the host itself answers: SPEC's table of
//! situations, statuses and `wasmhost-error` kinds, in one place.

use bytes::Bytes;
use http::{HeaderValue, StatusCode};

/// Every reason the host answers instead of the guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum ErrorKind {
    /// No route matches the request.
    #[error("no_route")]
    NoRoute,
    /// The guest trapped or panicked.
    #[error("trap")]
    Trap,
    /// The guest ran out of fuel.
    #[error("fuel_exhausted")]
    FuelExhausted,
    /// The memory limit refused a grow and the guest then failed.
    #[error("memory_exhausted")]
    MemoryExhausted,
    /// The wall-clock timeout expired.
    #[error("timeout")]
    Timeout,
    /// The service is at `max_concurrency` and its queue is full.
    #[error("overloaded")]
    Overloaded,
    /// The request body is larger than `max_request_body`.
    #[error("body_too_large")]
    BodyTooLarge,
    /// The component is missing or failed to load.
    #[error("unavailable")]
    Unavailable,
    /// The guest's response was refused (bad or oversized headers).
    #[error("bad_response")]
    BadResponse,
    /// The request headers are over the limit.
    #[error("headers_too_large")]
    HeadersTooLarge,
    /// The request is malformed (smuggling vectors and the like).
    #[error("bad_request")]
    BadRequest,
    /// A chain of calls between services went deeper than
    /// [`crate::wasm::outbound::MAX_HOPS`] (a loop).
    #[error("loop_detected")]
    LoopDetected,
}

/// Seconds a client is asked to wait after `overloaded`.
const RETRY_AFTER_SECS: &str = "1";

impl ErrorKind {
    /// Every kind.
    pub const ALL: [ErrorKind; 12] = [
        ErrorKind::NoRoute,
        ErrorKind::Trap,
        ErrorKind::FuelExhausted,
        ErrorKind::MemoryExhausted,
        ErrorKind::Timeout,
        ErrorKind::Overloaded,
        ErrorKind::BodyTooLarge,
        ErrorKind::Unavailable,
        ErrorKind::BadResponse,
        ErrorKind::HeadersTooLarge,
        ErrorKind::BadRequest,
        ErrorKind::LoopDetected,
    ];

    /// The `wasmhost-error` header value and JSON `error` field.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::NoRoute => "no_route",
            ErrorKind::Trap => "trap",
            ErrorKind::FuelExhausted => "fuel_exhausted",
            ErrorKind::MemoryExhausted => "memory_exhausted",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Overloaded => "overloaded",
            ErrorKind::BodyTooLarge => "body_too_large",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::BadResponse => "bad_response",
            ErrorKind::HeadersTooLarge => "headers_too_large",
            ErrorKind::BadRequest => "bad_request",
            ErrorKind::LoopDetected => "loop_detected",
        }
    }

    /// The HTTP status for this kind.
    pub fn status(self) -> StatusCode {
        match self {
            ErrorKind::NoRoute => StatusCode::NOT_FOUND,
            ErrorKind::Trap | ErrorKind::FuelExhausted | ErrorKind::MemoryExhausted => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
            ErrorKind::Timeout => StatusCode::GATEWAY_TIMEOUT,
            ErrorKind::Overloaded => StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorKind::Unavailable | ErrorKind::BadResponse => StatusCode::BAD_GATEWAY,
            ErrorKind::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ErrorKind::BadRequest => StatusCode::BAD_REQUEST,
            ErrorKind::LoopDetected => StatusCode::LOOP_DETECTED,
        }
    }

    /// The `limit` label of `wasmhost_limit_exceeded_total`, for kinds that
    /// are a limit being hit.
    pub fn limit(self) -> Option<&'static str> {
        match self {
            ErrorKind::FuelExhausted => Some("fuel"),
            ErrorKind::MemoryExhausted => Some("memory"),
            ErrorKind::Timeout => Some("timeout"),
            ErrorKind::Overloaded => Some("concurrency"),
            ErrorKind::BodyTooLarge => Some("request_body"),
            ErrorKind::BadResponse => Some("response_headers"),
            _ => None,
        }
    }

    /// The response the host sends: status, `wasmhost-error`, `x-request-id`
    /// and the JSON body `{"error","service","request_id"}`.
    pub fn response<B>(self, service: Option<&str>, request_id: &str) -> http::Response<B>
    where
        B: From<Bytes>,
    {
        let body = serde_json::json!({
            "error": self.as_str(),
            "service": service,
            "request_id": request_id,
        })
        .to_string();
        let mut response = http::Response::new(B::from(Bytes::from(body)));
        *response.status_mut() = self.status();
        let headers = response.headers_mut();
        headers.insert("wasmhost-error", HeaderValue::from_static(self.as_str()));
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Ok(value) = HeaderValue::from_str(request_id) {
            headers.insert("x-request-id", value);
        }
        if self == ErrorKind::Overloaded {
            headers.insert(
                http::header::RETRY_AFTER,
                HeaderValue::from_static(RETRY_AFTER_SECS),
            );
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_a_distinct_name_and_an_error_status() {
        let kinds = ErrorKind::ALL;
        let names: std::collections::HashSet<_> = kinds.iter().map(|k| k.as_str()).collect();
        assert_eq!(names.len(), kinds.len());
        for kind in kinds {
            assert!(kind.status().is_client_error() || kind.status().is_server_error());
            assert_eq!(kind.to_string(), kind.as_str());
        }
    }

    #[test]
    fn overloaded_response_asks_the_client_to_retry() {
        let response: http::Response<Bytes> = ErrorKind::Overloaded.response(Some("api"), "req-1");
        assert_eq!(response.status(), 503);
        assert_eq!(response.headers()["retry-after"], "1");
        assert_eq!(response.headers()["wasmhost-error"], "overloaded");
        let body: serde_json::Value = serde_json::from_slice(response.body()).unwrap();
        assert_eq!(body["request_id"], "req-1");
        assert_eq!(body["service"], "api");
    }

    #[test]
    fn every_limit_an_error_names_has_a_series() {
        for kind in ErrorKind::ALL {
            if let Some(limit) = kind.limit() {
                assert!(
                    crate::observe::metrics::LIMITS.contains(&limit),
                    "{kind:?}: `{limit}` is not in LIMITS"
                );
            }
        }
    }
}
