//! SPEC "Admin plane": health, readiness, metrics, services, reload, token.

use std::process::Command;
use std::time::Duration;

use crate::support::*;

fn host() -> Host {
    TestApp::new()
        .admin()
        .service(Svc::new("hello", HELLO).route("/hello"))
        .service(
            Svc::new("bad", HOSTILE)
                .route("/bad")
                .set("fuel", "5_000_000"),
        )
        .start()
}

const SPEC_METRICS: [&str; 9] = [
    "wasmhost_requests_total",
    "wasmhost_request_duration_seconds",
    "wasmhost_fuel_consumed_total",
    "wasmhost_limit_exceeded_total",
    "wasmhost_requests_in_flight",
    "wasmhost_cold_starts_total",
    "wasmhost_reloads_total",
    "wasmhost_service_loaded",
    "wasmhost_build_info",
];

#[test]
fn healthz_and_readyz_answer_200_on_a_running_host() {
    let host = host();
    assert_eq!(host.admin(get("/healthz")).status, 200);
    assert_eq!(host.admin(get("/readyz")).status, 200);
    assert_eq!(host.admin(get("/nope")).status, 404);
}

#[test]
fn metrics_expose_every_spec_name_with_service_labels() {
    let host = host();
    assert_eq!(host.send(get("/hello")).status, 200);
    let text = host.admin(get("/metrics")).text();
    for name in SPEC_METRICS {
        assert!(
            text.lines().any(|l| l.starts_with(name)),
            "missing {name} in:\n{text}"
        );
    }
    assert!(text.contains(r#"wasmhost_service_loaded{service="hello"} 1"#));
    assert!(!text.contains("request_id"), "no unbounded labels");
}

#[test]
fn metric_values_move_by_the_right_amounts() {
    let host = host();
    let requests = r#"wasmhost_requests_total{service="hello",status="2xx"}"#;
    let fuel_limit = r#"wasmhost_limit_exceeded_total{service="bad",limit="fuel"}"#;
    let errors = r#"wasmhost_requests_total{service="bad",status="5xx"}"#;
    let fuel = r#"wasmhost_fuel_consumed_total{service="hello"}"#;
    let (before, fuel_before) = (host.metric(requests), host.metric(fuel));
    for _ in 0..25 {
        assert_eq!(host.send(get("/hello")).status, 200);
    }
    assert_host_error(&host.send(get("/bad/spin")), 500, "fuel_exhausted");
    // The guest task records after the response: wait until each count has
    // at least the expected value, then require exactly that value.
    host.wait_for_metric(requests, EVENT_TIMEOUT, |n| n - before >= 25.0);
    host.wait_for_metric(fuel_limit, EVENT_TIMEOUT, |n| n >= 1.0);
    host.wait_for_metric(errors, EVENT_TIMEOUT, |n| n >= 1.0);
    assert_eq!(host.metric(requests) - before, 25.0);
    assert_eq!(host.metric(fuel_limit), 1.0);
    assert_eq!(host.metric(errors), 1.0);
    assert!(host.metric(fuel) - fuel_before > 0.0);
    host.wait_for_metric(
        r#"wasmhost_requests_in_flight{service="hello"}"#,
        EVENT_TIMEOUT,
        |n| n == 0.0,
    );
}

#[test]
fn admin_services_lists_every_service_with_its_state_and_limits() {
    let host = host();
    let body = host.admin(get("/admin/services")).json();
    let services = body["services"].as_array().unwrap();
    assert_eq!(services.len(), 2);
    let hello = services.iter().find(|s| s["name"] == "hello").unwrap();
    assert_eq!(hello["routes"][0], "/hello");
    assert_eq!(hello["state"], "loaded");
    assert_eq!(hello["generation"], 1);
    assert_eq!(hello["sha256"].as_str().unwrap().len(), 64);
    assert!(hello["component"].as_str().unwrap().ends_with("hello.wasm"));
    assert_eq!(hello["limits"]["timeout"], "10s");
    assert!(hello["last_reload_error"].is_null());
    let bad = services.iter().find(|s| s["name"] == "bad").unwrap();
    assert_eq!(bad["limits"]["fuel"], 5_000_000);
}

#[test]
fn post_admin_reload_reports_what_changed_and_what_failed() {
    let app = TestApp::new().admin();
    let component = app.dir().join("svc.wasm");
    std::fs::copy(HELLO, &component).unwrap();
    let host = app
        .service(Svc::new("svc", "svc.wasm").route("/svc"))
        .start();
    let ok = host.admin(Req::new("POST", "/admin/reload"));
    assert_eq!(ok.status, 200, "{}", ok.text());
    assert_eq!(ok.json()["ok"], true);

    std::fs::copy(ECHO, &component).unwrap();
    let changed = host.admin(Req::new("POST", "/admin/reload")).json();
    assert_eq!(changed["changed"][0], "svc");
    assert_eq!(changed["generation"], 2);

    std::fs::write(&component, b"not wasm").unwrap();
    let failed = host.admin(Req::new("POST", "/admin/reload"));
    assert_eq!(failed.status, 500);
    assert_eq!(failed.json()["ok"], false);
    let services = host.admin(get("/admin/services")).json();
    let error = services["services"][0]["last_reload_error"]
        .as_str()
        .unwrap();
    assert!(error.contains("service `svc`"), "{error}");
    assert_eq!(
        host.metric(r#"wasmhost_reloads_total{result="error"}"#),
        1.0
    );
    assert_eq!(host.metric(r#"wasmhost_reloads_total{result="ok"}"#), 2.0);
    // The old version still serves.
    assert_eq!(host.send(get("/svc")).status, 200);
}

#[test]
fn with_a_token_admin_endpoints_but_health_require_the_bearer() {
    let host = TestApp::new()
        .admin()
        .env("WASMHOST_ADMIN_TOKEN", "s3cret")
        .service(Svc::new("hello", HELLO).route("/"))
        .start();
    assert_eq!(host.admin(get("/metrics")).status, 401);
    assert_eq!(
        host.admin(get("/metrics").header("authorization", "Bearer wrong"))
            .status,
        401
    );
    assert_eq!(
        host.admin(get("/metrics").header("authorization", "Bearer s3cret"))
            .status,
        200
    );
    assert_eq!(host.admin(Req::new("POST", "/admin/reload")).status, 401);
    assert_eq!(host.admin(get("/healthz")).status, 200);
    assert_eq!(host.admin(get("/readyz")).status, 200);
}

/// The host inherits no `WASMHOST_ADMIN_TOKEN` from the test's environment
/// (the harness clears every `WASMHOST_*` variable), so this holds whatever
/// the developer's shell exports.
#[test]
fn without_a_token_a_loopback_admin_plane_needs_no_bearer() {
    let host = host();
    assert_eq!(host.admin(get("/metrics")).status, 200);
    assert_eq!(host.admin(get("/admin/services")).status, 200);
    assert_eq!(host.admin(Req::new("POST", "/admin/reload")).status, 200);
}

#[test]
fn an_admin_plane_off_loopback_without_a_token_refuses_to_start() {
    let app = TestApp::new().service(Svc::new("hello", HELLO).route("/"));
    let manifest = app.write();
    let output = Command::new(env!("CARGO_BIN_EXE_wasmhost"))
        .args(["serve", manifest.to_str().unwrap()])
        .args(["--listen", "127.0.0.1:0", "--admin", "0.0.0.0:0"])
        .env_remove("WASMHOST_ADMIN_TOKEN")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("WASMHOST_ADMIN_TOKEN"), "{stderr}");
}

#[test]
fn readiness_turns_503_while_draining_with_a_request_in_flight() {
    let mut host = TestApp::new()
        .admin()
        .service(Svc::new("bad", HOSTILE).route("/"))
        .start();
    let addr = host.addr;
    let in_flight = std::thread::spawn(move || get("/sleep?ms=2000").send(addr));
    host.wait_for_metric(
        r#"wasmhost_requests_in_flight{service="bad"}"#,
        EVENT_TIMEOUT,
        |n| n == 1.0,
    );
    host.signal("TERM");
    let mut readyz = host.admin(get("/readyz"));
    host.wait_until(EVENT_TIMEOUT, "/readyz to leave 200", || {
        readyz = host.admin(get("/readyz"));
        readyz.status != 200
    });
    assert_eq!(readyz.status, 503);
    assert_eq!(readyz.text().trim(), "draining");
    assert!(
        !in_flight.is_finished(),
        "checked while the request is in flight"
    );
    assert_eq!(in_flight.join().unwrap().unwrap().status, 200);
    assert_eq!(
        host.wait_exit(Duration::from_secs(10)).unwrap().code(),
        Some(0)
    );
}

#[test]
fn responses_carry_server_timing() {
    let host = host();
    let resp = host.send(get("/hello"));
    let timing = resp.header("server-timing").expect("server-timing");
    assert!(timing.contains("total;dur="), "{timing}");
    assert!(timing.contains("guest;dur="), "{timing}");
}
