//! Reused instances behave exactly like fresh ones: a request on a pooled
//! instance (`max_requests_per_instance` > 1, WASI 0.2 and 0.3) holds its
//! permit to the end of its body, aborts the connection when the guest
//! fails after the head, names its limit, reports its own fuel and peak
//! memory, tags guest output with its request id, and a failed instance is
//! never used again. Shared WASI 0.3 instances
//! (`max_concurrent_per_instance` > 1) answer every request under
//! concurrent load with fuel refilled per request.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::support::*;

/// The hostile guest on pooled instances.
fn pooled(extra: &[(&str, &str)]) -> Host {
    let mut svc = Svc::new("bad", HOSTILE)
        .route("/")
        .set("max_requests_per_instance", "100");
    for (key, value) in extra {
        svc = svc.set(key, value);
    }
    TestApp::new().admin().service(svc).start()
}

/// The `request` (or `request failed`) event of `request_id`.
fn request_event(host: &Host, request_id: &str) -> serde_json::Value {
    host.wait_for_log(Duration::from_secs(10), |e| {
        e["event"] == "request" && e["request_id"] == request_id
    })
    .unwrap_or_else(|| {
        host.dump_logs();
        panic!("no request event for `{request_id}`")
    })
}

#[test]
fn a_pooled_instance_serves_requests_one_after_the_other() {
    let host = pooled(&[]);
    for i in 0..3 {
        let id = format!("ok-{i}");
        assert_eq!(
            host.send(get("/ok").header("x-request-id", &id)).status,
            200
        );
        let event = request_event(&host, &id);
        assert_eq!(event["instance"], "pooled");
    }
}

#[test]
fn a_guest_failure_after_the_head_aborts_the_connection_on_a_pooled_instance() {
    let host = pooled(&[]);
    assert_eq!(host.send(get("/ok")).status, 200, "an instance is pooled");
    let err = host
        .try_send(get("/trap-after-head"))
        .expect_err("the client must not see a complete response");
    assert!(err.starts_with("aborted"), "{err}");
}

#[test]
fn fuel_exhaustion_on_a_pooled_instance_is_fuel_exhausted() {
    let host = pooled(&[("fuel", "50_000_000"), ("timeout", "\"20s\"")]);
    assert_eq!(host.send(get("/ok")).status, 200, "an instance is pooled");
    assert_host_error(&host.send(get("/spin")), 500, "fuel_exhausted");
    assert_eq!(
        host.metric("wasmhost_limit_exceeded_total{service=\"bad\",limit=\"fuel\"}"),
        1.0
    );
    assert_host_error(&host.send(get("/alloc?mib=200")), 500, "memory_exhausted");
    assert_eq!(
        host.send(get("/ok")).status,
        200,
        "a new instance serves on"
    );
}

#[test]
fn each_pooled_request_reports_its_own_fuel_and_peak_memory() {
    let host = pooled(&[]);
    let ids = ["first", "second", "third"];
    for id in ids {
        let resp = host.send(get("/alloc?mib=4").header("x-request-id", id));
        assert_eq!(resp.status, 200, "{}", resp.text());
    }
    let fuel: Vec<u64> = ids
        .iter()
        .map(|id| {
            let event = request_event(&host, id);
            assert_eq!(event["instance"], "pooled", "{event}");
            assert!(event["peak_memory"].as_u64().unwrap() >= 4 << 20, "{event}");
            event["fuel"].as_u64().expect("fuel in the event")
        })
        .collect();
    assert!(fuel.iter().all(|f| *f > 0), "{fuel:?}");
    // The first request instantiated the guest; the others reused it and
    // report their own fuel, not a running total.
    assert!(fuel[2] <= fuel[0], "{fuel:?}");
    let consumed = host.metric("wasmhost_fuel_consumed_total{service=\"bad\"}");
    assert_eq!(consumed as u64, fuel.iter().sum::<u64>());
}

#[test]
fn guest_output_of_a_pooled_instance_carries_each_request_id() {
    let host = pooled(&[]);
    for id in ["log-a", "log-b"] {
        assert_eq!(
            host.send(get("/log").header("x-request-id", id)).status,
            200
        );
        let line = host
            .wait_for_log(Duration::from_secs(10), |e| {
                e["message"] == "guest output" && e["request_id"] == id
            })
            .unwrap_or_else(|| panic!("guest output of `{id}`"));
        assert_eq!(line["service"], "bad");
        assert_eq!(request_event(&host, id)["instance"], "pooled");
    }
}

#[test]
fn a_pooled_request_holds_its_permit_until_its_body_ends() {
    let host = pooled(&[("max_concurrency", "1")]);
    // A body in three chunks, 300 ms apart: the head comes first.
    let mut slow = TcpStream::connect(host.addr).unwrap();
    slow.write_all(b"GET /slow-body?ms=300&chunks=3 HTTP/1.1\r\nhost: x\r\n\r\n")
        .unwrap();
    let mut slow = BufReader::new(slow);
    let mut status = String::new();
    slow.read_line(&mut status).unwrap();
    assert!(status.contains(" 200 "), "{status}");
    // The head is out; a second request must wait for the whole body.
    let addr = host.addr;
    let second = std::thread::spawn(move || {
        let resp = get("/ok").send(addr).unwrap();
        (resp.status, Instant::now())
    });
    let mut rest = Vec::new();
    let mut chunk = [0u8; 1024];
    while !String::from_utf8_lossy(&rest).contains("chunk 2") {
        let n = slow.read(&mut chunk).unwrap();
        assert!(n > 0, "the slow body ended early");
        rest.extend_from_slice(&chunk[..n]);
    }
    let body_done = Instant::now();
    let (status, answered) = second.join().unwrap();
    assert_eq!(status, 200);
    assert!(
        answered >= body_done - Duration::from_millis(50),
        "the second request ran before the first one's body ended"
    );
}

#[test]
fn spinning_pooled_guests_do_not_stop_other_services() {
    let host = TestApp::new()
        .admin()
        .service(
            Svc::new("bad", HOSTILE)
                .route("/bad")
                .set("max_requests_per_instance", "100")
                .set("fuel", "\"unlimited\"")
                .set("timeout", "\"3s\""),
        )
        .service(Svc::new("hello", HELLO).route("/hello"))
        .start();
    let addr = host.addr;
    let spinners: Vec<_> = (0..3)
        .map(|_| std::thread::spawn(move || get("/bad/spin").send(addr).unwrap()))
        .collect();
    host.wait_for_metric(
        "wasmhost_requests_in_flight{service=\"bad\"}",
        EVENT_TIMEOUT,
        |n| n >= 3.0,
    );
    // Every hello request is answered while the three spin (they end at
    // their 3 s timeout).
    for _ in 0..20 {
        assert_eq!(host.send(get("/hello")).status, 200);
    }
    assert!(
        host.metric("wasmhost_requests_in_flight{service=\"bad\"}") >= 1.0,
        "the spinners were still running"
    );
    for spinner in spinners {
        assert_host_error(&spinner.join().unwrap(), 504, "timeout");
    }
}

#[test]
fn a_wasi_p2_service_gets_fresh_instances_by_default_and_pooled_ones_when_configured() {
    let host = TestApp::new()
        .service(Svc::new("fresh", HOSTILE).route("/fresh"))
        .service(
            Svc::new("pooled", HOSTILE)
                .route("/pooled")
                .set("max_requests_per_instance", "2"),
        )
        .start();
    for (route, instance) in [("fresh", "fresh"), ("pooled", "pooled")] {
        for i in 0..3 {
            let id = format!("{route}-{i}");
            let resp = host.send(get(&format!("/{route}/ok")).header("x-request-id", &id));
            assert_eq!(resp.status, 200);
            assert_eq!(request_event(&host, &id)["instance"], instance);
        }
    }
}

#[test]
fn shared_instances_answer_concurrent_requests_with_fuel_refilled_per_request() {
    // The fuel of one fresh request, instantiation included.
    let fresh = TestApp::new()
        .service(Svc::new("p3", HELLO_P3).route("/"))
        .start();
    assert_eq!(fresh.send(get("/").header("x-request-id", "m")).status, 200);
    let one = request_event(&fresh, "m")["fuel"].as_u64().unwrap();
    drop(fresh);

    let host = TestApp::new()
        .admin()
        .service(
            Svc::new("p3", HELLO_P3)
                .route("/")
                // Four budgets: the instance's requests share one tank, and
                // on a loaded machine more of them overlap.
                .set("fuel", &(one * 4).to_string())
                .set("max_requests_per_instance", "1000")
                .set("max_concurrent_per_instance", "4"),
        )
        .start();
    let addr = host.addr;
    let clients: Vec<_> = (0..8)
        .map(|c| {
            std::thread::spawn(move || {
                (0..25)
                    .map(|i| {
                        let resp = get(&format!("/c{c}/{i}")).send(addr).unwrap();
                        assert_eq!(resp.status, 200, "{}", resp.text());
                        assert_eq!(resp.text(), "hello from wasip3");
                        assert_eq!(resp.header("x-path"), Some(format!("/c{c}/{i}").as_str()));
                        resp.header("x-instance-requests")
                            .unwrap()
                            .parse::<u32>()
                            .unwrap()
                    })
                    .max()
                    .unwrap()
            })
        })
        .collect();
    let most = clients
        .into_iter()
        .map(|c| c.join().unwrap())
        .max()
        .unwrap();
    assert!(most > 25, "instances were shared and reused: {most}");
    assert_eq!(
        host.metric("wasmhost_requests_total{service=\"p3\",status=\"2xx\"}"),
        200.0
    );
    // Every permit is given back (when each response body ended).
    host.wait_for_metric(
        "wasmhost_requests_in_flight{service=\"p3\"}",
        EVENT_TIMEOUT,
        |n| n == 0.0,
    );
}
