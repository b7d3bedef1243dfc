//! The HTTP edge against hostile clients: slow and idle connections,
//! oversized heads, request smuggling, connection floods, and headers the
//! host owns.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::support::*;

fn echo_host(host_keys: &[(&str, &str)]) -> Host {
    let mut app = TestApp::new()
        .service(Svc::new("echo", ECHO).route("/echo"))
        .admin();
    for (key, value) in host_keys {
        app = app.host_key(key, value);
    }
    app.start()
}

/// Reads until the peer closes; `None` if it is still open at `within`.
fn closed_within(stream: &mut TcpStream, within: Duration) -> Option<Duration> {
    let started = Instant::now();
    stream.set_read_timeout(Some(within)).unwrap();
    let mut buf = [0; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return Some(started.elapsed()),
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return Some(started.elapsed());
            }
            Err(_) => return None,
        }
    }
}

#[test]
fn a_slow_client_and_an_idle_keep_alive_connection_are_closed_after_header_timeout() {
    let host = echo_host(&[("header_timeout", "\"1s\"")]);
    // Slowloris: half a request head, then nothing.
    let mut slow = TcpStream::connect(host.addr).unwrap();
    slow.write_all(b"GET /echo HTTP/1.1\r\nhost: x\r\n")
        .unwrap();
    let closed = closed_within(&mut slow, Duration::from_secs(5));
    assert!(
        closed.is_some(),
        "a half-sent head kept the connection open"
    );

    // Keep-alive: one full request, then idle.
    let mut idle = TcpStream::connect(host.addr).unwrap();
    idle.write_all(b"GET /echo HTTP/1.1\r\nhost: x\r\n\r\n")
        .unwrap();
    idle.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0; 4096];
    let n = idle.read(&mut buf).unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    let closed = closed_within(&mut idle, Duration::from_secs(5));
    assert!(
        closed.is_some_and(|after| after >= Duration::from_millis(500)),
        "idle keep-alive connection: closed after {closed:?}, want about 1s"
    );
}

#[test]
fn heads_over_the_limits_are_431() {
    let host = echo_host(&[]);
    // More than 32 KiB in all: the host's own 431.
    let resp = host.send(get("/echo").header("x-big", &"a".repeat(40 * 1024)));
    assert_host_error(&resp, 431, "headers_too_large");
    // More than 100 fields: refused by the parser, before the host sees it.
    let mut req = get("/echo");
    for i in 0..101 {
        req = req.header(&format!("x-h{i}"), "v");
    }
    assert_eq!(host.send(req).status, 431);
    // The connection survives neither, and the host is fine.
    assert_eq!(host.send(get("/echo")).status, 200);
}

/// Conflicting lengths are 400. Content-Length with Transfer-Encoding is
/// read as chunked, with the length dropped, and the connection closes after
/// the one response (hyper's parser removes the length before the host
/// sees the request). Either way, a request smuggled behind the first is
/// never answered.
#[test]
fn request_smuggling_vectors_never_reach_a_second_request() {
    let host = echo_host(&[]);
    for (head, status) in [
        (
            "POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\ncontent-length: 6\r\n\r\nhello!",
            "400",
        ),
        (
            "POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n",
            "200",
        ),
        (
            "POST /echo HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\ncontent-length: 5\r\n\r\n0\r\n\r\n",
            "200",
        ),
        (
            "POST /echo HTTP/1.1\r\nhost: x\r\ntransfer-encoding: gzip\r\n\r\n",
            "400",
        ),
    ] {
        let mut stream = TcpStream::connect(host.addr).unwrap();
        stream.write_all(head.as_bytes()).unwrap();
        // A smuggled second request must not be answered.
        let _ = stream.write_all(b"GET /echo/smuggled HTTP/1.1\r\nhost: x\r\n\r\n");
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        let answer = String::from_utf8_lossy(&answer);
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status}")),
            "{head:?}: {answer}"
        );
        assert!(!answer.contains("smuggled"), "{head:?}: {answer}");
        assert_eq!(answer.matches("HTTP/1.1").count(), 1, "{head:?}: {answer}");
    }
}

#[test]
fn connections_over_max_connections_get_503_overloaded_and_the_rest_keep_working() {
    let host = echo_host(&[("max_connections", "2")]);
    // Two kept-alive connections, each answered once: an answer means the
    // accept loop has counted the connection.
    let held: Vec<_> = (0..2)
        .map(|_| {
            let mut stream = TcpStream::connect(host.addr).unwrap();
            stream
                .write_all(b"GET /echo HTTP/1.1\r\nhost: x\r\n\r\n")
                .unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            let mut buf = [0; 4096];
            let n = stream.read(&mut buf).unwrap();
            assert!(buf[..n].starts_with(b"HTTP/1.1 200"), "a held connection");
            stream
        })
        .collect();
    let resp = host.send(get("/echo"));
    assert_eq!(resp.status, 503);
    assert_eq!(resp.header("wasmhost-error"), Some("overloaded"));
    assert_eq!(resp.header("retry-after"), Some("1"));
    assert_eq!(resp.json()["reason"], "max_connections");
    drop(held);
    host.wait_until(
        EVENT_TIMEOUT,
        "a 200 once the held connections closed",
        || host.send(get("/echo")).status == 200,
    );
    assert!(host.metric("wasmhost_errors_total{service=\"\",kind=\"overloaded\"}") >= 1.0);
}

#[test]
fn headers_the_host_sets_replace_any_the_client_sent() {
    let host = echo_host(&[]);
    let resp = host.send(
        get("/echo/x")
            .header("x-request-id", "client-id")
            .header("x-request-id", "second-id")
            .header("wasmhost-route", "/admin")
            .header("wasmhost-service", "other")
            .header("wasmhost-anything", "spoofed"),
    );
    assert_eq!(resp.status, 200);
    let seen = &resp.json()["headers"];
    assert_eq!(seen["x-request-id"], "client-id");
    assert_eq!(seen["wasmhost-route"], "/echo");
    assert!(seen.get("wasmhost-service").is_none(), "{seen}");
    assert!(seen.get("wasmhost-anything").is_none(), "{seen}");
    assert_eq!(resp.header("x-request-id"), Some("client-id"));
}
