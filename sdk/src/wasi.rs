//! The platform boundary: everything that differs between a wasm build and a
//! native one, and the only file that looks at `target_arch`.
//!
//! Both halves offer the same four things to the rest of the crate:
//!
//! | item | `wasm32` (under wasmhost, `wasmtime serve`, ...) | native (`cargo test`) |
//! |---|---|---|
//! | `export!` glue | implements `wasi:http/incoming-handler` with the `wasi` crate | only type-checks the handler |
//! | `env_var` | the guest's environment (the manifest's `env`) | the [`TestEnv`](crate::testing::TestEnv)'s config, else the process environment |
//! | `send` | `wasi:http/outgoing-handler` with request-options timeouts | the `TestEnv`'s outbound mock, else `Unsupported` |
//! | `write_log` | one line on stderr | one line on stderr, also captured by the `TestEnv` |
//! | `kv_*` | `wasi:keyvalue` (`0.2.0-draft2`), bound with `wit-bindgen` | the `TestEnv`'s in-memory stores, else access denied |
//! | `variable` | `wasi:config/store` (`0.2.0-rc.1`) | the `TestEnv`'s variables, else none |

#[cfg(target_arch = "wasm32")]
pub use component::*;
#[cfg(not(target_arch = "wasm32"))]
pub(crate) use native::*;

#[cfg(target_arch = "wasm32")]
mod component {
    use std::ffi::OsString;
    use std::io::{Read as _, Write as _}; // on wasi's streams

    use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
    pub use wasi;
    pub use wasi::exports::http::incoming_handler::Guest;
    use wasi::http::outgoing_handler;
    use wasi::http::types::{
        self as wasi_http, ErrorCode, Fields, IncomingBody, OutgoingBody, OutgoingRequest,
        OutgoingResponse, RequestOptions, Scheme,
    };
    pub use wasi::http::types::{IncomingRequest, ResponseOutparam};
    use wasi::io::streams::{OutputStream, StreamError};

    use crate::outbound::{self, OutboundError};
    use crate::{Handler, Request, Response};

    /// Implements `handle` for the type `export!` generates: read the request,
    /// call the user's handler, write its response.
    pub fn serve<M, H: Handler<M>>(request: IncomingRequest, out: ResponseOutparam, handler: &H) {
        let response = match read_request(request) {
            Ok(request) => handler.call(request),
            Err(message) => {
                crate::Error::bad_request(format!("wasmhost-sdk: {message}")).into_response()
            }
        };
        write_response(out, response);
    }

    pub(crate) fn env_var(key: &str) -> Option<OsString> {
        std::env::var_os(key)
    }

    mod state {
        wit_bindgen::generate!({
            path: "wit",
            world: "wasmhost:sdk/state",
            generate_all,
        });
    }

    use crate::kv::KvError;
    use state::wasi::config::store as config;
    use state::wasi::keyvalue::{atomics, store};

    /// An open `wasi:keyvalue` bucket.
    pub(crate) struct KvHandle(store::Bucket);

    fn kv_error(err: store::Error, name: Option<&str>) -> KvError {
        let store = || name.unwrap_or_default().to_owned();
        match err {
            store::Error::AccessDenied => KvError::AccessDenied { store: store() },
            store::Error::NoSuchStore => KvError::NoSuchStore { store: store() },
            store::Error::Other(message) => KvError::Failed(message),
        }
    }

    pub(crate) fn kv_open(name: &str) -> Result<KvHandle, KvError> {
        store::open(name)
            .map(KvHandle)
            .map_err(|e| kv_error(e, Some(name)))
    }

    pub(crate) fn kv_get(h: &KvHandle, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        h.0.get(key).map_err(|e| kv_error(e, None))
    }

    pub(crate) fn kv_set(h: &KvHandle, key: &str, value: &[u8]) -> Result<(), KvError> {
        h.0.set(key, value).map_err(|e| kv_error(e, None))
    }

    pub(crate) fn kv_delete(h: &KvHandle, key: &str) -> Result<(), KvError> {
        h.0.delete(key).map_err(|e| kv_error(e, None))
    }

    pub(crate) fn kv_keys(
        h: &KvHandle,
        cursor: Option<String>,
    ) -> Result<(Vec<String>, Option<String>), KvError> {
        h.0.list_keys(cursor.as_deref())
            .map(|page| (page.keys, page.cursor))
            .map_err(|e| kv_error(e, None))
    }

    pub(crate) fn kv_increment(h: &KvHandle, key: &str, delta: i64) -> Result<i64, KvError> {
        atomics::increment(&h.0, key, delta).map_err(|e| kv_error(e, None))
    }

    pub(crate) fn kv_compare_and_swap(
        h: &KvHandle,
        key: &str,
        expected: Option<&[u8]>,
        new: &[u8],
    ) -> Result<bool, KvError> {
        let cas = atomics::Cas::new(&h.0, key).map_err(|e| kv_error(e, None))?;
        if cas.current().map_err(|e| kv_error(e, None))?.as_deref() != expected {
            return Ok(false);
        }
        match atomics::swap(cas, new) {
            Ok(()) => Ok(true),
            Err(atomics::CasError::CasFailed(_)) => Ok(false),
            Err(atomics::CasError::StoreError(e)) => Err(kv_error(e, None)),
        }
    }

    pub(crate) fn variable(name: &str) -> Result<Option<String>, String> {
        config::get(name).map_err(|e| match e {
            config::Error::Upstream(message) | config::Error::Io(message) => message,
        })
    }

    pub(crate) fn write_log(line: String) {
        eprintln!("{line}");
    }

    fn read_request(incoming: IncomingRequest) -> Result<Request, String> {
        let method = from_wasi_method(incoming.method())?;
        let target = incoming.path_with_query().unwrap_or_else(|| "/".to_owned());
        let body = incoming
            .consume()
            .map_err(|()| "request body already consumed".to_owned())?;
        let bytes = read_body(&body).map_err(|e| format!("failed to read request body: {e}"))?;
        drop(IncomingBody::finish(body));
        // Fetch the headers only if the handler looks at one: copying them out
        // of the host is most of the SDK's cost per request. The closure owns
        // the request resource until then (its `headers` are its child).
        let headers = Box::new(move || {
            let fields = incoming.headers();
            let entries = fields.entries();
            drop(fields);
            entries
        });
        Ok(Request::from_host(method, &target, headers, bytes))
    }

    fn write_response(out: ResponseOutparam, response: Response) {
        let (status, headers, chunks) = response.into_parts();
        let fields = Fields::new();
        for (name, value) in &headers {
            if let Err(e) = fields.append(name.as_str(), value.as_bytes()) {
                // e.g. a hop-by-hop header the host forbids: drop it, say so in the logs.
                crate::warn!("wasmhost-sdk: dropped response header `{name}`: {e:?}");
            }
        }
        let outgoing = OutgoingResponse::new(fields);
        // `Response` only holds valid status codes; the host accepts all of them.
        let _ = outgoing.set_status_code(status.as_u16());
        let body = outgoing.body().expect("a new response has a body");
        ResponseOutparam::set(out, Ok(outgoing));

        let mut stream = body.write().expect("a new body has a stream");
        let streamed = chunks.is_stream();
        for chunk in chunks {
            // A failed write means the client or the host gave up: stop, and
            // leave the body unfinished so nobody mistakes it for complete.
            if stream.write_all(&chunk).is_err() {
                return;
            }
            // Push each chunk of a stream out now rather than at the end.
            if streamed && stream.flush().is_err() {
                return;
            }
        }
        if stream.flush().is_err() {
            return;
        }
        drop(stream);
        let _ = OutgoingBody::finish(body, None);
    }

    pub(crate) fn send(request: outbound::Request) -> Result<outbound::Response, OutboundError> {
        let url = request.url();
        let (scheme, authority, path) = request.parts()?;
        let invalid = |reason: &str| OutboundError::InvalidUrl {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        let failed = |reason: String| OutboundError::Failed {
            url: url.to_owned(),
            reason,
        };

        let fields = Fields::new();
        for (name, value) in request.headers() {
            fields
                .append(name.as_str(), value.as_bytes())
                .map_err(|e| failed(format!("request header `{name}` refused: {e:?}")))?;
        }
        let outgoing = OutgoingRequest::new(fields);
        outgoing
            .set_method(&to_wasi_method(request.method()))
            .map_err(|()| failed(format!("method `{}` refused", request.method())))?;
        let scheme = match scheme.as_str() {
            "http" => Scheme::Http,
            "https" => Scheme::Https,
            other => Scheme::Other(other.to_owned()),
        };
        outgoing
            .set_scheme(Some(&scheme))
            .map_err(|()| invalid("unsupported scheme"))?;
        outgoing
            .set_authority(Some(&authority))
            .map_err(|()| invalid("invalid host or port"))?;
        outgoing
            .set_path_with_query(Some(&path))
            .map_err(|()| invalid("invalid path or query"))?;

        let options = RequestOptions::new();
        let nanos = u64::try_from(request.timeout().as_nanos()).unwrap_or(u64::MAX);
        // A host that cannot enforce a timeout refuses to set it; the service's
        // own `timeout` in the manifest still bounds the whole request.
        let _ = options.set_connect_timeout(Some(nanos));
        let _ = options.set_first_byte_timeout(Some(nanos));
        let _ = options.set_between_bytes_timeout(Some(nanos));

        let body = outgoing.body().expect("a new request has a body");
        let future = outgoing_handler::handle(outgoing, Some(options))
            .map_err(|code| from_error_code(url, code))?;
        // If the host refuses the request (e.g. denied), writing fails and
        // the future below says why.
        if let Ok(mut stream) = body.write() {
            let written = write_all(&mut stream, request.body());
            drop(stream);
            if written {
                let _ = OutgoingBody::finish(body, None);
            }
        }

        let result = loop {
            match future.get() {
                Some(result) => break result,
                None => future.subscribe().block(),
            }
        };
        let incoming = match result {
            Ok(Ok(incoming)) => incoming,
            Ok(Err(code)) => return Err(from_error_code(url, code)),
            Err(()) => return Err(failed("response already taken".to_owned())),
        };
        let status = StatusCode::from_u16(incoming.status())
            .map_err(|_| failed(format!("invalid status `{}`", incoming.status())))?;
        let headers = to_header_map(incoming.headers().entries());
        let body = incoming
            .consume()
            .map_err(|()| failed("response body already consumed".to_owned()))?;
        let bytes = read_body_with_codes(&body).map_err(|e| match e {
            Some(code) => from_error_code(url, code),
            None => failed("the response body broke off".to_owned()),
        })?;
        drop(IncomingBody::finish(body));
        drop(incoming);
        Ok(outbound::Response::from_parts(status, headers, bytes))
    }

    fn write_all(stream: &mut OutputStream, bytes: &[u8]) -> bool {
        stream.write_all(bytes).is_ok() && stream.flush().is_ok()
    }

    fn read_body(body: &IncomingBody) -> Result<Vec<u8>, String> {
        let mut stream = body
            .stream()
            .map_err(|()| "body stream already taken".to_owned())?;
        let mut bytes = Vec::new();
        stream.read_to_end(&mut bytes).map_err(|e| e.to_string())?;
        Ok(bytes)
    }

    /// Read a body to its end; on failure, the `wasi:http` error code if the
    /// host gave one.
    fn read_body_with_codes(body: &IncomingBody) -> Result<Vec<u8>, Option<ErrorCode>> {
        let stream = body.stream().map_err(|()| None)?;
        let mut bytes = Vec::new();
        loop {
            match stream.blocking_read(64 * 1024) {
                Ok(chunk) => bytes.extend_from_slice(&chunk),
                Err(StreamError::Closed) => return Ok(bytes),
                Err(StreamError::LastOperationFailed(e)) => {
                    return Err(wasi_http::http_error_code(&e));
                }
            }
        }
    }

    fn from_error_code(url: &str, code: ErrorCode) -> OutboundError {
        let url = url.to_owned();
        match code {
            ErrorCode::HttpRequestDenied => OutboundError::Denied { url },
            ErrorCode::ConnectionTimeout
            | ErrorCode::ConnectionReadTimeout
            | ErrorCode::ConnectionWriteTimeout
            | ErrorCode::HttpResponseTimeout
            | ErrorCode::DnsTimeout => OutboundError::Timeout { url },
            ErrorCode::HttpRequestUriInvalid => OutboundError::InvalidUrl {
                url,
                reason: "the host refused the URL".to_owned(),
            },
            other => OutboundError::Failed {
                url,
                reason: format!("{other:?}"),
            },
        }
    }

    fn to_header_map(entries: Vec<(String, Vec<u8>)>) -> HeaderMap {
        let mut headers = HeaderMap::with_capacity(entries.len());
        for (name, value) in entries {
            // The host only hands over valid headers; skip anything else.
            if let (Ok(name), Ok(value)) =
                (HeaderName::try_from(name), HeaderValue::try_from(value))
            {
                headers.append(name, value);
            }
        }
        headers
    }

    fn from_wasi_method(method: wasi_http::Method) -> Result<Method, String> {
        Ok(match method {
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
        })
    }

    fn to_wasi_method(method: &Method) -> wasi_http::Method {
        match method.as_str() {
            "GET" => wasi_http::Method::Get,
            "HEAD" => wasi_http::Method::Head,
            "POST" => wasi_http::Method::Post,
            "PUT" => wasi_http::Method::Put,
            "DELETE" => wasi_http::Method::Delete,
            "CONNECT" => wasi_http::Method::Connect,
            "OPTIONS" => wasi_http::Method::Options,
            "TRACE" => wasi_http::Method::Trace,
            "PATCH" => wasi_http::Method::Patch,
            other => wasi_http::Method::Other(other.to_owned()),
        }
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use std::ffi::OsString;

    use crate::outbound::{self, OutboundError};
    use crate::testing;

    pub(crate) fn env_var(key: &str) -> Option<OsString> {
        match testing::scoped_env_var(key) {
            Some(value) => value,
            None => std::env::var_os(key),
        }
    }

    pub(crate) fn send(request: outbound::Request) -> Result<outbound::Response, OutboundError> {
        testing::scoped_send(&request)
    }

    pub(crate) fn write_log(line: String) {
        testing::scoped_log(&line);
        eprintln!("{line}");
    }

    pub(crate) use testing::KvHandle;

    use crate::kv::KvError;

    pub(crate) fn kv_open(name: &str) -> Result<KvHandle, KvError> {
        testing::scoped_store(name).ok_or_else(|| KvError::AccessDenied {
            store: name.to_owned(),
        })
    }

    pub(crate) fn kv_get(h: &KvHandle, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        Ok(h.borrow().get(key).cloned())
    }

    pub(crate) fn kv_set(h: &KvHandle, key: &str, value: &[u8]) -> Result<(), KvError> {
        h.borrow_mut().insert(key.to_owned(), value.to_vec());
        Ok(())
    }

    pub(crate) fn kv_delete(h: &KvHandle, key: &str) -> Result<(), KvError> {
        h.borrow_mut().remove(key);
        Ok(())
    }

    pub(crate) fn kv_keys(
        h: &KvHandle,
        _cursor: Option<String>,
    ) -> Result<(Vec<String>, Option<String>), KvError> {
        Ok((h.borrow().keys().cloned().collect(), None))
    }

    pub(crate) fn kv_increment(h: &KvHandle, key: &str, delta: i64) -> Result<i64, KvError> {
        let mut store = h.borrow_mut();
        let current = match store.get(key) {
            None => 0,
            Some(bytes) => std::str::from_utf8(bytes)
                .ok()
                .and_then(|text| text.parse::<i64>().ok())
                .ok_or_else(|| KvError::Failed("the value is not an integer counter".into()))?,
        };
        let next = current
            .checked_add(delta)
            .ok_or_else(|| KvError::Failed("the counter would overflow".into()))?;
        store.insert(key.to_owned(), next.to_string().into_bytes());
        Ok(next)
    }

    pub(crate) fn kv_compare_and_swap(
        h: &KvHandle,
        key: &str,
        expected: Option<&[u8]>,
        new: &[u8],
    ) -> Result<bool, KvError> {
        let mut store = h.borrow_mut();
        if store.get(key).map(Vec::as_slice) != expected {
            return Ok(false);
        }
        store.insert(key.to_owned(), new.to_vec());
        Ok(true)
    }

    pub(crate) fn variable(name: &str) -> Result<Option<String>, String> {
        Ok(testing::scoped_variable(name))
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
                    $crate::__private::serve(request, out, &$handler)
                }
            }

            $crate::__private::wasi::http::proxy::export!(WasmhostService);
        };
    };
}

/// Natively: only check that `$handler` is a [`Handler`](crate::Handler).
#[cfg(not(target_arch = "wasm32"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __export_handler {
    ($handler:path) => {
        const _: () = {
            #[allow(dead_code)]
            fn wasmhost_check_handler() {
                $crate::__private::assert_handler(&$handler);
            }
        };
    };
}
