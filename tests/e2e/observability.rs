//! Request ids, traceparent, one log event per request, guest output
//! captured as events.

use std::time::Duration;

use crate::support::*;

fn echo() -> Host {
    TestApp::new()
        .service(Svc::new("echo", ECHO).route("/echo"))
        .service(Svc::new("bad", HOSTILE).route("/bad"))
        .start()
}

#[test]
pub(crate) fn a_client_request_id_is_kept_and_seen_by_the_guest() {
    let host = echo();
    let resp = host.send(get("/echo").header("x-request-id", "client-id-42"));
    assert_eq!(resp.header("x-request-id"), Some("client-id-42"));
    assert_eq!(resp.json()["headers"]["x-request-id"], "client-id-42");
}

#[test]
fn a_missing_request_id_is_generated_and_seen_by_the_guest() {
    let host = echo();
    let resp = host.send(get("/echo"));
    let id = resp
        .header("x-request-id")
        .expect("x-request-id")
        .to_owned();
    assert!(id.len() >= 16);
    assert_eq!(resp.json()["headers"]["x-request-id"], id.as_str());
    let other = host.send(get("/echo"));
    assert_ne!(other.header("x-request-id"), Some(id.as_str()));
}

/// The incoming trace is continued: the guest sees the same trace id with
/// the host's server span as parent, and the log line names both.
#[test]
fn traceparent_is_continued_for_the_guest_and_its_trace_and_span_logged() {
    let host = echo();
    let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let resp = host.send(
        get("/echo")
            .header("traceparent", tp)
            .header("x-request-id", "traced"),
    );
    let seen = resp.json()["headers"]["traceparent"]
        .as_str()
        .unwrap()
        .to_owned();
    let parts: Vec<&str> = seen.split('-').collect();
    assert_eq!(parts.len(), 4, "{seen}");
    assert_eq!(parts[0], "00");
    assert_eq!(parts[1], "4bf92f3577b34da6a3ce929d0e0e4736", "same trace");
    assert_ne!(
        parts[2], "00f067aa0ba902b7",
        "a new span: the host's server span"
    );
    assert_eq!(parts[3], "01", "the caller's sampling decision is kept");
    let event = host
        .wait_for_log(Duration::from_secs(5), |e| {
            e["message"] == "request" && e["request_id"] == "traced"
        })
        .expect("a request event");
    assert_eq!(event["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(event["span_id"], parts[2]);
}

#[test]
fn every_request_logs_one_event_with_service_status_duration_and_fuel() {
    let host = echo();
    let resp = host.send(get("/echo/x").header("x-request-id", "log-me"));
    assert_eq!(resp.status, 200);
    let event = host
        .wait_for_log(Duration::from_secs(5), |e| {
            e["message"] == "request" && e["request_id"] == "log-me"
        })
        .expect("a request event");
    assert_eq!(event["service"], "echo");
    assert_eq!(event["method"], "GET");
    assert_eq!(event["path"], "/echo/x");
    assert_eq!(event["status"], 200);
    assert!(event["duration_ms"].as_f64().is_some());
    assert!(event["fuel"].as_u64().unwrap() > 0);
    let count = host
        .events()
        .iter()
        .filter(|e| e["request_id"] == "log-me" && e["target"] == "wasmhost::request")
        .count();
    assert_eq!(count, 1);
}

#[test]
fn with_the_access_log_off_only_failures_and_rejections_are_logged_and_all_are_counted() {
    let host = TestApp::new()
        .host_key("access_log", "false")
        .service(Svc::new("echo", ECHO).route("/echo"))
        .service(Svc::new("bad", HOSTILE).route("/bad"))
        .admin()
        .start();
    assert_eq!(
        host.send(get("/echo/x").header("x-request-id", "quiet"))
            .status,
        200
    );
    assert_eq!(
        host.send(get("/bad/trap").header("x-request-id", "loud"))
            .status,
        500
    );
    assert_eq!(
        host.send(get("/nowhere").header("x-request-id", "lost"))
            .status,
        404
    );
    host.wait_for_log(Duration::from_secs(5), |e| {
        e["message"] == "request failed" && e["request_id"] == "loud"
    })
    .expect("a failure is still logged");
    host.wait_for_log(Duration::from_secs(5), |e| {
        e["message"] == "request rejected" && e["request_id"] == "lost"
    })
    .expect("a rejection is still logged");
    assert!(
        !host
            .events()
            .iter()
            .any(|e| e["request_id"] == "quiet" && e["target"] == "wasmhost::request"),
        "no line for a request that went well"
    );
    assert_eq!(
        host.metric(r#"wasmhost_requests_total{service="echo",status="2xx"}"#),
        1.0
    );
}

#[test]
fn guest_stdout_and_stderr_are_logged_line_by_line_with_service_and_request_id() {
    let host = echo();
    let resp = host.send(get("/bad/log?lines=3").header("x-request-id", "chatty"));
    assert_eq!(resp.status, 200, "{}", resp.text());
    host.wait_for_log(Duration::from_secs(5), |e| {
        e["message"] == "request" && e["request_id"] == "chatty"
    })
    .unwrap();
    let lines: Vec<(String, String)> = host
        .events()
        .iter()
        .filter(|e| e["message"] == "guest output" && e["request_id"] == "chatty")
        .map(|e| {
            assert_eq!(e["service"], "bad");
            (
                e["stream"].as_str().unwrap().to_owned(),
                e["line"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for i in 0..3 {
        assert!(
            lines.contains(&("stdout".into(), format!("stdout line {i}"))),
            "{lines:?}"
        );
        assert!(
            lines.contains(&("stderr".into(), format!("stderr line {i}"))),
            "{lines:?}"
        );
    }
}
