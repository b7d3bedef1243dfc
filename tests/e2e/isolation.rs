//! A failing or spinning guest never affects another service's requests.

use std::thread::JoinHandle;

use crate::support::*;

#[test]
pub(crate) fn a_failing_guest_never_affects_another_services_requests() {
    let host = TestApp::new()
        .service(Svc::new("bad", HOSTILE).route("/bad"))
        .service(Svc::new("hello", HELLO).route("/hello"))
        .start();
    for fault in [
        "/bad/trap",
        "/bad/panic",
        "/bad/stack-overflow",
        "/bad/spin",
    ] {
        let resp = host.send(get(fault));
        assert!(resp.status >= 500, "{fault}: {}", resp.status);
        let ok = host.send(get("/hello"));
        assert_eq!(ok.status, 200, "after {fault}");
    }
}

/// `bad` (unlimited fuel, an 8 s wall clock) beside `hello`, with the
/// admin plane.
pub(crate) fn spinning_host() -> Host {
    TestApp::new()
        .admin()
        .service(
            Svc::new("bad", HOSTILE)
                .route("/bad")
                .set("fuel", "\"unlimited\"")
                .set("timeout", "\"8s\""),
        )
        .service(Svc::new("hello", HELLO).route("/hello"))
        .start()
}

/// Starts `n` requests that spin until their timeout, and returns once all
/// `n` are running.
pub(crate) fn spin(host: &Host, n: usize) -> Vec<JoinHandle<Result<Resp, String>>> {
    let addr = host.addr;
    let spinners = (0..n)
        .map(|_| std::thread::spawn(move || get("/bad/spin").send(addr)))
        .collect();
    host.wait_for_metric(
        r#"wasmhost_requests_in_flight{service="bad"}"#,
        EVENT_TIMEOUT,
        |running| running == n as f64,
    );
    spinners
}

/// Three requests spinning at once on a 2-core machine must not starve other
/// services: guests yield at every epoch tick, so another service's
/// requests are answered while the three still spin (were they starved,
/// they would be answered only once the spinners' 8 s timeout ended them).
#[test]
fn three_spinning_guests_do_not_starve_other_services() {
    let host = spinning_host();
    let spinners = spin(&host, 3);
    for _ in 0..20 {
        assert_eq!(host.send(get("/hello")).status, 200);
    }
    assert_eq!(
        host.metric(r#"wasmhost_requests_in_flight{service="bad"}"#),
        3.0,
        "the other service was answered while the three still spun"
    );
    for spinner in spinners {
        let resp = spinner.join().unwrap().unwrap();
        assert_host_error(&resp, 504, "timeout");
    }
}
