//! Reused WASI 0.3 instances: `max_requests_per_instance`, fuel refilled per
//! request, and the default of a fresh instance per request.

use std::time::Duration;

use crate::support::*;

/// How many requests the `hello-p3` instance that answered had served.
fn served(host: &Host, path: &str) -> u32 {
    let resp = host.send(get(path));
    assert_eq!(resp.status, 200, "{}", resp.text());
    resp.header("x-instance-requests")
        .expect("hello-p3 reports its request count")
        .parse()
        .unwrap()
}

#[test]
fn wasi_p3_instances_are_fresh_by_default_and_reused_when_configured() {
    let fresh = TestApp::new()
        .service(Svc::new("p3", HELLO_P3).route("/"))
        .start();
    let counts: Vec<u32> = (0..4).map(|_| served(&fresh, "/")).collect();
    assert_eq!(
        counts,
        [1, 1, 1, 1],
        "nothing survives a request by default"
    );

    let reused = TestApp::new()
        .service(
            Svc::new("p3", HELLO_P3)
                .route("/")
                .set("max_requests_per_instance", "3"),
        )
        .start();
    let counts: Vec<u32> = (0..6).map(|_| served(&reused, "/")).collect();
    assert_eq!(
        counts,
        [1, 2, 3, 1, 2, 3],
        "each instance serves 3 requests"
    );
}

#[test]
fn fuel_is_refilled_for_every_request_of_a_reused_instance() {
    // The fuel one fresh request uses (instantiation included).
    let fresh = TestApp::new()
        .service(Svc::new("p3", HELLO_P3).route("/"))
        .start();
    let resp = fresh.send(get("/").header("x-request-id", "measure"));
    assert_eq!(resp.status, 200);
    let event = fresh
        .wait_for_log(Duration::from_secs(5), |e| {
            e["message"] == "request" && e["request_id"] == "measure"
        })
        .expect("a request event");
    let one_request = event["fuel"].as_u64().expect("fuel in the request event");
    assert!(one_request > 0);

    // A budget of one and a half requests: ten requests on one instance
    // pass only if the tank is refilled for each.
    let reused = TestApp::new()
        .service(
            Svc::new("p3", HELLO_P3)
                .route("/")
                .set("fuel", &(one_request * 3 / 2).to_string())
                .set("max_requests_per_instance", "100"),
        )
        .start();
    let counts: Vec<u32> = (0..10).map(|_| served(&reused, "/")).collect();
    assert_eq!(
        counts,
        (1..=10).collect::<Vec<_>>(),
        "one instance, every request served"
    );
}

#[test]
fn a_reused_instance_that_runs_out_of_idle_time_is_replaced() {
    let host = TestApp::new()
        .service(
            Svc::new("p3", HELLO_P3)
                .route("/")
                .set("max_requests_per_instance", "100")
                .set("instance_idle_timeout", "\"200ms\""),
        )
        .start();
    assert_eq!(served(&host, "/"), 1);
    assert_eq!(served(&host, "/"), 2);
    // Kept on purpose: time itself is the subject (the instance must have
    // been idle for `instance_idle_timeout`), and the host logs nothing at
    // `info` when it drops an idle instance. Three times the timeout.
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(served(&host, "/"), 1, "the idle instance was dropped");
}
