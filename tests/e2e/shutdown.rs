//! SIGTERM/SIGINT: stop accepting, finish in-flight requests, exit 0.

use std::time::Duration;

use crate::support::*;

/// Waits until the one request sent to `bad` is running.
fn wait_until_in_flight(host: &Host) {
    host.wait_for_metric(
        r#"wasmhost_requests_in_flight{service="bad"}"#,
        EVENT_TIMEOUT,
        |n| n == 1.0,
    );
}

#[test]
fn sigterm_finishes_in_flight_requests_then_exits_zero() {
    let mut host = TestApp::new()
        .admin()
        .service(Svc::new("bad", HOSTILE).route("/"))
        .start();
    let addr = host.addr;
    let in_flight = std::thread::spawn(move || get("/sleep?ms=1500").send(addr));
    wait_until_in_flight(&host);
    host.signal("TERM");
    let resp = in_flight
        .join()
        .unwrap()
        .expect("the in-flight request completes");
    assert_eq!(resp.status, 200);
    let status = host
        .wait_exit(Duration::from_secs(10))
        .expect("the host exits after draining");
    assert_eq!(status.code(), Some(0));
    assert!(get("/ok").send(addr).is_err(), "no longer accepting");
}

#[test]
fn sigint_stops_an_idle_host_with_exit_zero() {
    let mut host = TestApp::new()
        .service(Svc::new("hello", HELLO).route("/"))
        .start();
    host.signal("INT");
    let status = host.wait_exit(Duration::from_secs(10)).expect("exit");
    assert_eq!(status.code(), Some(0));
}

#[test]
fn the_drain_is_capped_by_shutdown_grace() {
    let mut host = TestApp::new()
        .admin()
        .host_key("shutdown_grace", "\"500ms\"")
        .service(
            Svc::new("bad", HOSTILE)
                .route("/")
                .set("timeout", "\"30s\""),
        )
        .start();
    let addr = host.addr;
    let _stuck = std::thread::spawn(move || get("/sleep?ms=20000").send(addr));
    wait_until_in_flight(&host);
    host.signal("TERM");
    let status = host
        .wait_exit(Duration::from_secs(5))
        .expect("exits once the grace is over");
    assert_eq!(status.code(), Some(0));
}
