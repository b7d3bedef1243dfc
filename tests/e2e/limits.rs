//! Each limit as an obeyed/violated pair, asserting the status, the
//! `wasmhost-error` kind and the JSON body.

use std::time::{Duration, Instant};

use crate::support::*;

fn hostile(extra: &[(&str, &str)]) -> Host {
    let mut svc = Svc::new("bad", HOSTILE).route("/");
    for (key, value) in extra {
        svc = svc.set(key, value);
    }
    TestApp::new().service(svc).start()
}

#[test]
fn fuel_limit_obeyed() {
    let host = hostile(&[("fuel", "50_000_000")]);
    let resp = host.send(get("/ok"));
    assert_eq!(resp.status, 200, "{}", resp.text());
}

#[test]
fn fuel_limit_violated() {
    let host = hostile(&[("fuel", "50_000_000"), ("timeout", "\"20s\"")]);
    let resp = host.send(get("/spin"));
    assert_host_error(&resp, 500, "fuel_exhausted");
    assert_eq!(resp.json()["service"], "bad");
}

#[test]
fn memory_limit_obeyed() {
    let host = hostile(&[("memory", "\"64MiB\"")]);
    let resp = host.send(get("/alloc?mib=16"));
    assert_eq!(resp.status, 200, "{}", resp.text());
}

#[test]
fn memory_limit_violated() {
    let host = hostile(&[("memory", "\"64MiB\"")]);
    let resp = host.send(get("/alloc?mib=200"));
    assert_host_error(&resp, 500, "memory_exhausted");
}

#[test]
fn timeout_obeyed() {
    let host = hostile(&[("timeout", "\"5s\"")]);
    let resp = host.send(get("/sleep?ms=50"));
    assert_eq!(resp.status, 200, "{}", resp.text());
}

#[test]
fn timeout_violated_while_the_guest_computes() {
    let host = hostile(&[("timeout", "\"300ms\""), ("fuel", "\"unlimited\"")]);
    let started = Instant::now();
    let resp = host.send(get("/spin"));
    assert_host_error(&resp, 504, "timeout");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn timeout_violated_while_the_host_awaits_for_the_guest() {
    let host = hostile(&[("timeout", "\"300ms\"")]);
    let resp = host.send(get("/sleep?ms=10000"));
    assert_host_error(&resp, 504, "timeout");
}

fn echo_with_a_1_kib_body_limit() -> Host {
    TestApp::new()
        .service(
            Svc::new("echo", ECHO)
                .route("/")
                .set("max_request_body", "\"1KiB\""),
        )
        .start()
}

#[test]
fn request_body_limit_obeyed() {
    let host = echo_with_a_1_kib_body_limit();
    let resp = host.send(post("/", vec![b'a'; 1024]));
    assert_eq!(resp.status, 200);
    assert_eq!(resp.json()["body_len"], 1024);
}

#[test]
fn request_body_limit_violated_with_content_length() {
    let host = echo_with_a_1_kib_body_limit();
    let resp = host.send(post("/", vec![b'a'; 1025]));
    assert_host_error(&resp, 413, "body_too_large");
}

#[test]
fn request_body_limit_violated_with_a_chunked_body() {
    let host = echo_with_a_1_kib_body_limit();
    let resp = host.send(post("/", vec![b'a'; 200_000]).chunked());
    assert_host_error(&resp, 413, "body_too_large");
    let resp = host.send(post("/", vec![b'a'; 1000]).chunked());
    assert_eq!(resp.status, 200);
}

#[test]
fn concurrency_limit_obeyed_and_violated() {
    let host = TestApp::new()
        .admin()
        .service(
            Svc::new("bad", HOSTILE)
                .route("/")
                .set("max_concurrency", "1")
                .set("timeout", "\"10s\""),
        )
        .start();
    let addr = host.addr;
    let send = |path: &'static str| std::thread::spawn(move || get(path).send(addr).unwrap());
    // One running (its slot taken), then two more at once: one waits in
    // the queue and succeeds, the other finds the queue full. Which is
    // which is up to the race; the host exposes no queue length to wait on.
    let running = send("/sleep?ms=1500");
    host.wait_for_metric(
        r#"wasmhost_requests_in_flight{service="bad"}"#,
        EVENT_TIMEOUT,
        |n| n == 1.0,
    );
    let mut others: Vec<Resp> = [send("/ok"), send("/ok")]
        .into_iter()
        .map(|other| other.join().unwrap())
        .collect();
    others.sort_by_key(|resp| resp.status);
    assert_eq!(others[0].status, 200, "the queued request");
    let rejected = &others[1];
    assert_host_error(rejected, 503, "overloaded");
    assert!(rejected.header("retry-after").is_some());
    assert_eq!(running.join().unwrap().status, 200);
    assert_eq!(host.send(get("/ok")).status, 200);
}

#[test]
fn a_trap_and_a_panic_are_500_trap() {
    let host = hostile(&[]);
    assert_host_error(&host.send(get("/trap")), 500, "trap");
    assert_host_error(&host.send(get("/panic")), 500, "trap");
    assert_host_error(&host.send(get("/stack-overflow")), 500, "trap");
    assert_eq!(host.send(get("/ok")).status, 200);
}

#[test]
fn defaults_apply_to_every_service_unless_it_overrides_them() {
    let host = TestApp::new()
        .default_limit("fuel", "20_000_000")
        .service(Svc::new("tight", HOSTILE).route("/tight"))
        .service(
            Svc::new("roomy", HOSTILE)
                .route("/roomy")
                .set("fuel", "\"unlimited\"")
                .set("timeout", "\"300ms\""),
        )
        .start();
    assert_host_error(&host.send(get("/tight/spin")), 500, "fuel_exhausted");
    assert_host_error(&host.send(get("/roomy/spin")), 504, "timeout");
}

#[test]
fn request_headers_over_32_kib_are_431_headers_too_large() {
    let host = TestApp::new()
        .service(Svc::new("echo", ECHO).route("/"))
        .start();
    let ok = host.send(get("/").header("x-big", &"a".repeat(16 * 1024)));
    assert_eq!(ok.status, 200);
    let resp = host.send(get("/").header("x-big", &"a".repeat(40 * 1024)));
    assert_host_error(&resp, 431, "headers_too_large");
}
