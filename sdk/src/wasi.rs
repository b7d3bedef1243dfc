//! The bridge between `wasi:http` and [`Request`]/[`Response`], and the glue
//! behind [`export!`](crate::export).
//!
//! This is the only file that looks at `target_arch`: on `wasm32` the export
//! macro implements `wasi:http/incoming-handler` with the `wasi` crate; on any
//! other target it only type-checks the handler, so services compile (and
//! their handlers unit-test) natively.

#[cfg(target_arch = "wasm32")]
pub use component::*;

#[cfg(target_arch = "wasm32")]
mod component {
    use std::io::{Read as _, Write as _}; // on wasi's streams

    use http::{HeaderName, HeaderValue, Method};
    pub use wasi;
    pub use wasi::exports::http::incoming_handler::Guest;
    use wasi::http::types::{self as wasi_http, Fields, OutgoingBody, OutgoingResponse};
    pub use wasi::http::types::{IncomingRequest, ResponseOutparam};

    use crate::{Request, Response};

    /// Implements `handle` for the type `export!` generates: read the request,
    /// call the user's handler, write its response.
    pub fn serve(
        request: IncomingRequest,
        out: ResponseOutparam,
        handler: fn(Request) -> Response,
    ) {
        let response = match read_request(request) {
            Ok(request) => handler(request),
            Err(message) => Response::text(format!("wasmhost-sdk: {message}\n")).with_status(400),
        };
        write_response(out, response);
    }

    fn read_request(incoming: IncomingRequest) -> Result<Request, String> {
        let method = match incoming.method() {
            wasi_http::Method::Get => Method::GET,
            wasi_http::Method::Head => Method::HEAD,
            wasi_http::Method::Post => Method::POST,
            wasi_http::Method::Put => Method::PUT,
            wasi_http::Method::Delete => Method::DELETE,
            wasi_http::Method::Connect => Method::CONNECT,
            wasi_http::Method::Options => Method::OPTIONS,
            wasi_http::Method::Trace => Method::TRACE,
            wasi_http::Method::Patch => Method::PATCH,
            wasi_http::Method::Other(other) => Method::from_bytes(other.as_bytes())
                .map_err(|_| format!("unsupported method `{other}`"))?,
        };
        let target = incoming.path_with_query().unwrap_or_else(|| "/".to_owned());
        let mut headers = http::HeaderMap::new();
        for (name, value) in incoming.headers().entries() {
            // The host only hands over valid headers; skip anything else.
            if let (Ok(name), Ok(value)) =
                (HeaderName::try_from(name), HeaderValue::try_from(value))
            {
                headers.append(name, value);
            }
        }
        let body = read_body(&incoming).map_err(|e| format!("failed to read request body: {e}"))?;
        Ok(Request::new(method, &target)
            .with_headers(headers)
            .with_body(body))
    }

    fn read_body(incoming: &IncomingRequest) -> Result<Vec<u8>, String> {
        let body = incoming
            .consume()
            .map_err(|()| "body already consumed".to_owned())?;
        let mut bytes = Vec::new();
        {
            let mut stream = body
                .stream()
                .map_err(|()| "body stream already taken".to_owned())?;
            stream.read_to_end(&mut bytes).map_err(|e| e.to_string())?;
        }
        drop(wasi_http::IncomingBody::finish(body));
        Ok(bytes)
    }

    fn write_response(out: ResponseOutparam, response: Response) {
        let (status, headers, body) = response.into_parts();
        let fields = Fields::new();
        for (name, value) in &headers {
            if let Err(e) = fields.append(name.as_str(), value.as_bytes()) {
                // e.g. a hop-by-hop header the host forbids: drop it, say so in the logs.
                eprintln!("wasmhost-sdk: dropped response header `{name}`: {e:?}");
            }
        }
        let outgoing = OutgoingResponse::new(fields);
        // `Response` only holds valid status codes; the host accepts all of them.
        let _ = outgoing.set_status_code(status.as_u16());
        let outgoing_body = outgoing.body().expect("a new response has a body");
        ResponseOutparam::set(out, Ok(outgoing));

        let mut stream = outgoing_body.write().expect("a new body has a stream");
        // A failed write means the client or the host gave up: nothing to tell.
        if stream.write_all(&body).is_err() || stream.blocking_flush().is_err() {
            return;
        }
        drop(stream);
        let _ = OutgoingBody::finish(outgoing_body, None);
    }
}

/// On wasm: implement `wasi:http/incoming-handler` by calling `$handler`.
#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
#[macro_export]
macro_rules! __export_handler {
    ($handler:path) => {
        const _: () = {
            struct WasmhostService;

            impl $crate::__private::Guest for WasmhostService {
                fn handle(
                    request: $crate::__private::IncomingRequest,
                    out: $crate::__private::ResponseOutparam,
                ) {
                    $crate::__private::serve(request, out, $handler)
                }
            }

            $crate::__private::wasi::http::proxy::export!(WasmhostService);
        };
    };
}

/// Natively: only check that `$handler` is a `fn(Request) -> Response`.
#[cfg(not(target_arch = "wasm32"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __export_handler {
    ($handler:path) => {
        const _: fn($crate::Request) -> $crate::Response = $handler;
    };
}
