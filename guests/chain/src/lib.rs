//! One link of a chain of services, on the plain `wasi` crate (no SDK), as
//! a user would write a gateway: it sets no `traceparent` or
//! `x-request-id` of its own, so what reaches the next hop is what the
//! host propagates.
//!
//! With the `NEXT` env var (`http://b.internal`, `http://b.spin.internal`,
//! `http://127.0.0.1:9000`), any request is forwarded to `NEXT` + its path
//! and query, with its method, `content-type` and body streamed as it
//! arrives; the answer comes back with the next hop's status and headers,
//! its body streamed, plus `x-seen-<NAME>: <x-request-id> <traceparent>
//! <wasmhost-hop>` (what this hop received). A failed call is `502` with
//! the error.
//!
//! Without `NEXT` it is the end of the chain, acting on the last path
//! segment:
//! - `POST /upload`: reads the body, answers the number of bytes;
//! - `GET /download?bytes=N`: streams N bytes;
//! - `GET /trap`: panics; `GET /spin`: loops until a limit stops it;
//!   `GET /grow`: allocates until the memory limit stops it;
//! - anything else: `200 end of chain <NAME>`.

use std::io::Write as _;

use wasi::http::types::{
    ErrorCode, Fields, IncomingRequest, IncomingResponse, Method, OutgoingBody, OutgoingRequest,
    OutgoingResponse, ResponseOutparam, Scheme,
};
use wasi::io::streams::{InputStream, OutputStream, StreamError};

struct Chain;

const CHUNK: u64 = 64 * 1024;

impl wasi::exports::http::incoming_handler::Guest for Chain {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let name = env("NAME").unwrap_or_else(|| "chain".to_owned());
        let seen = format!(
            "{} {} {}",
            header(&request, "x-request-id"),
            header(&request, "traceparent"),
            header(&request, "wasmhost-hop"),
        );
        match env("NEXT") {
            Some(next) => forward(&next, request, out, &name, &seen),
            None => end_of_chain(request, out, &name, &seen),
        }
    }
}

wasi::http::proxy::export!(Chain);

fn env(name: &str) -> Option<String> {
    wasi::cli::environment::get_environment()
        .into_iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value)
}

fn header(request: &IncomingRequest, name: &str) -> String {
    request
        .headers()
        .get(name)
        .first()
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .unwrap_or_else(|| "-".to_owned())
}

fn forward(next: &str, request: IncomingRequest, out: ResponseOutparam, name: &str, seen: &str) {
    let target = request.path_with_query().unwrap_or_else(|| "/".to_owned());
    let url = format!("{}{target}", next.trim_end_matches('/'));
    let (scheme, rest) = match url.split_once("://") {
        Some(("https", rest)) => (Scheme::Https, rest),
        Some((_, rest)) => (Scheme::Http, rest),
        None => (Scheme::Http, url.as_str()),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let headers = Fields::new();
    for (key, value) in request.headers().entries() {
        if key == "content-type" || key == "content-length" {
            let _ = headers.append(&key, &value);
        }
    }
    let outgoing = OutgoingRequest::new(headers);
    let _ = outgoing.set_method(&request.method());
    let _ = outgoing.set_scheme(Some(&scheme));
    let _ = outgoing.set_authority(Some(authority));
    let _ = outgoing.set_path_with_query(Some(path));
    let body = outgoing.body().expect("a new request has a body");
    let pending = match wasi::http::outgoing_handler::handle(outgoing, None) {
        Ok(pending) => pending,
        Err(err) => return answer(out, 502, &[], format!("call to {url} failed: {err:?}")),
    };
    // The request body, streamed to the next hop as it arrives.
    let sent = (|| {
        let incoming = request.consume().ok()?;
        let from = incoming.stream().ok()?;
        let to = body.write().ok()?;
        pump(&from, &to)?;
        drop(to);
        drop(from);
        Some(())
    })();
    let _ = OutgoingBody::finish(body, None);
    pending.subscribe().block();
    let response: Result<IncomingResponse, ErrorCode> = match pending.get() {
        Some(Ok(result)) => result,
        _ => Err(ErrorCode::InternalError(Some("no response".to_owned()))),
    };
    let response = match response {
        Ok(response) => response,
        Err(err) => return answer(out, 502, &[], format!("call to {url} failed: {err:?}")),
    };
    // The next hop answered: that is the answer, whether or not it read
    // the whole body (`sent`), as a proxy would.
    let _ = sent;
    let headers = Fields::new();
    for (key, value) in response.headers().entries() {
        let _ = headers.append(&key, &value);
    }
    let _ = headers.append(&format!("x-seen-{name}"), seen.as_bytes());
    let own = OutgoingResponse::new(headers);
    let _ = own.set_status_code(response.status());
    let own_body = own.body().expect("a new response has a body");
    ResponseOutparam::set(out, Ok(own));
    if let Ok(incoming) = response.consume()
        && let Ok(from) = incoming.stream()
        && let Ok(to) = own_body.write()
    {
        if pump(&from, &to).is_none() {
            return;
        }
        drop(to);
    }
    let _ = OutgoingBody::finish(own_body, None);
}

/// Copies `from` to `to` until `from` ends; `None` if `to` failed.
fn pump(from: &InputStream, to: &OutputStream) -> Option<()> {
    loop {
        match to.blocking_splice(from, CHUNK) {
            Ok(_) => {}
            Err(StreamError::Closed) => return to.blocking_flush().ok(),
            Err(StreamError::LastOperationFailed(_)) => return None,
        }
    }
}

fn end_of_chain(request: IncomingRequest, out: ResponseOutparam, name: &str, seen: &str) {
    let target = request.path_with_query().unwrap_or_else(|| "/".to_owned());
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    // Whatever prefix the calls added: the last segment names the action.
    let path = &path[path.rfind('/').unwrap_or(0)..];
    let seen_header = [(format!("x-seen-{name}"), seen.to_owned())];
    match (request.method(), path) {
        (Method::Post, "/upload") => {
            let mut total = 0u64;
            if let Ok(body) = request.consume()
                && let Ok(stream) = body.stream()
            {
                while let Ok(chunk) = stream.blocking_read(CHUNK) {
                    total += chunk.len() as u64;
                }
            }
            answer(out, 200, &seen_header, total.to_string());
        }
        (Method::Get, "/download") => {
            let bytes: u64 = query
                .strip_prefix("bytes=")
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            let headers = Fields::new();
            let _ = headers.append("content-length", bytes.to_string().as_bytes());
            let response = OutgoingResponse::new(headers);
            let body = response.body().expect("a new response has a body");
            ResponseOutparam::set(out, Ok(response));
            let mut stream = body.write().expect("a new body has a stream");
            let chunk = vec![b'x'; CHUNK as usize];
            let mut left = bytes;
            while left > 0 {
                let n = left.min(CHUNK) as usize;
                if stream.write_all(&chunk[..n]).is_err() {
                    return;
                }
                left -= n as u64;
            }
            let _ = stream.blocking_flush();
            drop(stream);
            let _ = OutgoingBody::finish(body, None);
        }
        (_, "/trap") => panic!("the end of the chain traps on purpose"),
        (_, "/spin") => {
            let mut x = 0u64;
            loop {
                x = std::hint::black_box(x.wrapping_add(1));
            }
        }
        (_, "/grow") => {
            let mut held = Vec::new();
            loop {
                held.push(vec![1u8; 1 << 20]);
                std::hint::black_box(&held);
            }
        }
        _ => answer(out, 200, &seen_header, format!("end of chain {name}")),
    }
}

fn answer(out: ResponseOutparam, status: u16, extra: &[(String, String)], text: String) {
    let headers = Fields::new();
    let _ = headers.append("content-type", b"text/plain");
    for (key, value) in extra {
        let _ = headers.append(key, value.as_bytes());
    }
    let response = OutgoingResponse::new(headers);
    let _ = response.set_status_code(status);
    let body = response.body().expect("a new response has a body");
    ResponseOutparam::set(out, Ok(response));
    let mut stream = body.write().expect("a new body has a stream");
    if stream.write_all(text.as_bytes()).is_ok() && stream.blocking_flush().is_ok() {
        drop(stream);
        let _ = OutgoingBody::finish(body, None);
    }
}
