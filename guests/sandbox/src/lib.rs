//! Probes the sandbox and reports what it could do, as JSON. The sandbox
//! tests call it to prove what a guest can and cannot reach.
//!
//! | path | success | failure |
//! |---|---|---|
//! | `/env` | `200` object of every environment variable (wasi:cli/environment) | |
//! | `/read?path=P` | `200` the file's bytes (std::fs over the preopens) | `403`/`404`/`500` error JSON |
//! | `/write?path=P` | `200 {"written":P}` | `403`/`404`/`500` error JSON |
//! | `/socket?addr=IP:PORT` | `200 {"connected":ADDR}` (wasi:sockets TCP) | `403` if access-denied, else `502`: `{"stage":..,"error":"<error-code name>"}` |
//! | `/outbound?url=U[&host=H][&follow=1]` | `200 {"status":N,"body":".."}` (wasi:http outgoing GET; `host` adds a `host` header, `follow=1` follows one redirect) | `502 {"error":"<ErrorCode debug>"}`, `400` for a bad url |
//!
//! File error JSON is `{"error":"<io error text>","kind":"<io::ErrorKind debug>"}`;
//! `403` is `PermissionDenied`, `404` is `NotFound`.

use std::io::Read as _;
use std::net::SocketAddr;

use serde_json::{Map, Value, json};
use wasi::http::types::{
    ErrorCode as HttpErrorCode, Fields, OutgoingBody, OutgoingRequest, Scheme,
};
use wasi::sockets::network::{
    ErrorCode as SocketErrorCode, IpAddressFamily, IpSocketAddress, Ipv4SocketAddress,
    Ipv6SocketAddress,
};
use wasmhost_sdk::{Request, Response};

fn sandbox(req: Request) -> Response {
    let arg = |name: &str| req.query_param(name).unwrap_or_default();
    // The probe is the last path segment, so any route prefix works.
    let path = req.path();
    match &path[path.rfind('/').unwrap_or(0)..] {
        "/env" => env(),
        "/read" => read(&arg("path")),
        "/write" => write(&arg("path")),
        "/socket" => socket(&arg("addr")),
        "/outbound" => outbound(
            &arg("url"),
            req.query_param("host").as_deref(),
            arg("follow") == "1",
        ),
        other => json_response(
            404,
            json!({"error": format!("unknown probe `{other}`; try /env /read /write /socket /outbound")}),
        ),
    }
}

wasmhost_sdk::export!(sandbox);

fn json_response(status: u16, body: Value) -> Response {
    Response::json(&body).with_status(status)
}

fn env() -> Response {
    let vars: Map<String, Value> = wasi::cli::environment::get_environment()
        .into_iter()
        .map(|(name, value)| (name, Value::String(value)))
        .collect();
    json_response(200, Value::Object(vars))
}

fn read(path: &str) -> Response {
    match std::fs::read(path) {
        Ok(bytes) => Response::bytes(bytes).with_header("content-type", "text/plain"),
        Err(e) => io_error(e),
    }
}

fn write(path: &str) -> Response {
    match std::fs::write(path, b"written by the sandbox guest\n") {
        Ok(()) => json_response(200, json!({"written": path})),
        Err(e) => io_error(e),
    }
}

fn io_error(e: std::io::Error) -> Response {
    let status = match e.kind() {
        std::io::ErrorKind::PermissionDenied => 403,
        std::io::ErrorKind::NotFound => 404,
        _ => 500,
    };
    json_response(
        status,
        json!({"error": e.to_string(), "kind": format!("{:?}", e.kind())}),
    )
}

fn socket(addr: &str) -> Response {
    let addr: SocketAddr = match addr.parse() {
        Ok(addr) => addr,
        Err(e) => return json_response(400, json!({"error": format!("bad addr `{addr}`: {e}")})),
    };
    match connect(addr) {
        Ok(()) => json_response(200, json!({"connected": addr.to_string()})),
        Err((stage, code)) => {
            let status = if code == SocketErrorCode::AccessDenied {
                403
            } else {
                502
            };
            json_response(status, json!({"stage": stage, "error": code.name()}))
        }
    }
}

/// A TCP connect through wasi:sockets, so a denial shows its exact error code.
fn connect(addr: SocketAddr) -> Result<(), (&'static str, SocketErrorCode)> {
    let (family, remote) = match addr {
        SocketAddr::V4(v4) => {
            let [a, b, c, d] = v4.ip().octets();
            let remote = IpSocketAddress::Ipv4(Ipv4SocketAddress {
                port: v4.port(),
                address: (a, b, c, d),
            });
            (IpAddressFamily::Ipv4, remote)
        }
        SocketAddr::V6(v6) => {
            let s = v6.ip().segments();
            let remote = IpSocketAddress::Ipv6(Ipv6SocketAddress {
                port: v6.port(),
                flow_info: 0,
                address: (s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]),
                scope_id: 0,
            });
            (IpAddressFamily::Ipv6, remote)
        }
    };
    let network = wasi::sockets::instance_network::instance_network();
    let socket = wasi::sockets::tcp_create_socket::create_tcp_socket(family)
        .map_err(|code| ("create", code))?;
    socket
        .start_connect(&network, remote)
        .map_err(|code| ("connect", code))?;
    let ready = socket.subscribe();
    loop {
        ready.block();
        match socket.finish_connect() {
            Ok(_streams) => return Ok(()),
            Err(SocketErrorCode::WouldBlock) => continue,
            Err(code) => return Err(("connect", code)),
        }
    }
}

fn outbound(url: &str, host: Option<&str>, follow: bool) -> Response {
    let Some((scheme, authority, path)) = split_url(url) else {
        let error = format!("bad url `{url}`: want http://host[:port][/path] or https://...");
        return json_response(400, json!({ "error": error }));
    };
    match get(scheme, authority, path, host) {
        // One redirect, followed like a client library would: the new
        // target goes through the host's allow-list again.
        Ok(Fetched {
            location: Some(location),
            ..
        }) if follow => outbound(&location, host, false),
        Ok(Fetched { status, body, .. }) => json_response(
            200,
            json!({"status": status, "body": String::from_utf8_lossy(&body)}),
        ),
        Err(error) => json_response(502, json!({ "error": error })),
    }
}

/// An upstream's answer.
struct Fetched {
    status: u16,
    /// The `location` header of a redirect.
    location: Option<String>,
    body: Vec<u8>,
}

fn split_url(url: &str) -> Option<(Scheme, &str, &str)> {
    let (scheme, rest) = if let Some(rest) = url.strip_prefix("http://") {
        (Scheme::Http, rest)
    } else {
        (Scheme::Https, url.strip_prefix("https://")?)
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, "/"),
    };
    (!authority.is_empty()).then_some((scheme, authority, path))
}

/// A GET through wasi:http/outgoing-handler; errors are the `ErrorCode`'s
/// debug form (e.g. `ErrorCode::HttpRequestDenied`) or a short message.
fn get(scheme: Scheme, authority: &str, path: &str, host: Option<&str>) -> Result<Fetched, String> {
    let headers = Fields::new();
    if let Some(host) = host {
        headers
            .append("host", host.as_bytes())
            .map_err(|e| format!("setting `host: {host}`: {e:?}"))?;
    }
    let request = OutgoingRequest::new(headers);
    request
        .set_scheme(Some(&scheme))
        .map_err(|()| "bad scheme")?;
    request
        .set_authority(Some(authority))
        .map_err(|()| format!("bad authority `{authority}`"))?;
    request
        .set_path_with_query(Some(path))
        .map_err(|()| format!("bad path `{path}`"))?;
    let body = request.body().map_err(|()| "request body already taken")?;
    let pending = wasi::http::outgoing_handler::handle(request, None).map_err(debug)?;
    OutgoingBody::finish(body, None).map_err(debug)?;

    pending.subscribe().block();
    let response = match pending.get() {
        Some(Ok(Ok(response))) => response,
        Some(Ok(Err(code))) => return Err(debug(code)),
        Some(Err(())) => return Err("response already taken".to_owned()),
        None => return Err("response not ready after block".to_owned()),
    };
    let status = response.status();
    let location = response
        .headers()
        .get("location")
        .first()
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .filter(|_| (300..400).contains(&status));
    let incoming = response
        .consume()
        .map_err(|()| "response body already taken")?;
    let mut bytes = Vec::new();
    {
        let mut stream = incoming
            .stream()
            .map_err(|()| "response stream already taken")?;
        stream
            .read_to_end(&mut bytes)
            .map_err(|e| format!("reading the body: {e}"))?;
    }
    Ok(Fetched {
        status,
        location,
        body: bytes,
    })
}

fn debug(code: HttpErrorCode) -> String {
    format!("{code:?}")
}
