//! Bodies stream both ways; a guest failure after the response head aborts
//! the connection instead of ending the body cleanly.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::support::*;

fn host(extra: &[(&str, &str)]) -> Host {
    let mut svc = Svc::new("bad", HOSTILE).route("/");
    for (key, value) in extra {
        svc = svc.set(key, value);
    }
    TestApp::new()
        .service(svc)
        .service(
            Svc::new("echo", ECHO)
                .route("/echo")
                .set("max_request_body", "\"64MiB\""),
        )
        .start()
}

#[test]
fn a_trap_after_the_response_head_aborts_the_connection() {
    let host = host(&[]);
    let result = host.try_send(get("/trap-after-head"));
    let err = result.expect_err("the client must not see a complete response");
    assert!(err.starts_with("aborted"), "{err}");
}

#[test]
fn an_endless_stream_is_cut_by_the_timeout_and_the_connection_aborted() {
    let host = host(&[("timeout", "\"1s\"")]);
    let result = host.try_send(get("/stream-forever").timeout(Duration::from_secs(20)));
    let err = result.expect_err("an endless stream must not end cleanly");
    assert!(err.starts_with("aborted"), "{err}");
}

#[test]
fn a_large_response_streams_without_being_buffered() {
    let host = host(&[("timeout", "\"60s\"")]);
    // Read 256 MiB as it comes; the host must not hold it in memory.
    let mut stream = TcpStream::connect(host.addr).unwrap();
    stream
        .write_all(b"GET /big?mib=256 HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .unwrap();
    let mut total = 0usize;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = stream.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        total += n;
    }
    assert!(total > 256 << 20, "read {total} bytes");
    let rss = host_rss_kib(&host);
    assert!(
        rss < 200 * 1024,
        "host RSS {rss} KiB after a 256 MiB response"
    );
}

fn host_rss_kib(host: &Host) -> u64 {
    host.memory_kib("VmHWM")
}

#[test]
fn a_large_request_body_streams_to_the_guest() {
    let host = host(&[]);
    let resp = host.send(post("/echo", vec![b'x'; 8 << 20]).chunked());
    assert_eq!(resp.status, 200);
    assert_eq!(resp.json()["body_len"], 8 << 20);
}
