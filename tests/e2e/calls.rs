//! Services calling services in-process (`http://<service>.internal`, and
//! Spin's `http://<service>.spin.internal`), and one trace across every hop,
//! exported over OTLP/HTTP to a receiver that decodes the real protobuf.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;

use crate::support::*;

/// One HTTP/1.1 request read from `stream`: its request line, headers
/// (lowercased) and body (by `content-length`).
fn read_request(
    stream: &mut std::net::TcpStream,
) -> Option<(String, BTreeMap<String, String>, Vec<u8>)> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let request_line = line.trim().to_owned();
    let mut headers = BTreeMap::new();
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).ok()? <= 2 {
            break;
        }
        if let Some((name, value)) = header.trim().split_once(':') {
            headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
        }
    }
    let len: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    reader.read_exact(&mut body).ok()?;
    Some((request_line, headers, body))
}

/// A plain HTTP server outside the host: answers `outside` and keeps the
/// headers of every request it got.
/// Headers of the requests a test server got, shared with the test.
type Seen = Arc<Mutex<Vec<BTreeMap<String, String>>>>;

/// Spans a test receiver got, with their `service.name`.
type Received = Arc<Mutex<Vec<(String, Span)>>>;
/// The headers of each export request.
type Headers = Arc<Mutex<Vec<BTreeMap<String, String>>>>;

fn outside_server() -> (SocketAddr, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { break };
            if let Some((_, headers, _)) = read_request(&mut stream) {
                record.lock().unwrap().push(headers);
            }
            let _ = stream.write_all(
                b"HTTP/1.1 200 OK\r\ncontent-length: 7\r\nconnection: close\r\n\r\noutside",
            );
        }
    });
    (addr, seen)
}

/// An OTLP/HTTP receiver: decodes every `POST /v1/traces` body as the
/// official `ExportTraceServiceRequest` and keeps the spans with their
/// resource's `service.name`.
fn otlp_receiver() -> (SocketAddr, Received) {
    let (addr, spans, _) = otlp_receiver_with_headers();
    (addr, spans)
}

/// An OTLP/HTTP receiver that also keeps the headers of every export.
fn otlp_receiver_with_headers() -> (SocketAddr, Received, Headers) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let spans = Arc::new(Mutex::new(Vec::new()));
    let record = spans.clone();
    let exports = Arc::new(Mutex::new(Vec::new()));
    let seen = exports.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { break };
            let record = record.clone();
            let seen = seen.clone();
            std::thread::spawn(move || {
                while let Some((line, headers, body)) = read_request(&mut stream) {
                    assert!(line.starts_with("POST /v1/traces "), "{line}");
                    assert_eq!(
                        headers.get("content-type").map(String::as_str),
                        Some("application/x-protobuf")
                    );
                    let export = ExportTraceServiceRequest::decode(body.as_slice())
                        .expect("an OTLP protobuf export request");
                    seen.lock().unwrap().push(headers.clone());
                    for resource in export.resource_spans {
                        let service = resource
                            .resource
                            .iter()
                            .flat_map(|r| &r.attributes)
                            .find(|kv| kv.key == "service.name")
                            .and_then(|kv| kv.value.as_ref())
                            .map(|v| format!("{:?}", v.value))
                            .unwrap_or_default();
                        for scope in resource.scope_spans {
                            for span in scope.spans {
                                record.lock().unwrap().push((service.clone(), span));
                            }
                        }
                    }
                    if stream
                        .write_all(
                            b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\n\
                              content-length: 0\r\n\r\n",
                        )
                        .is_err()
                    {
                        break;
                    }
                }
            });
        }
    });
    (addr, spans, exports)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `x-seen-<name>` as (request id, traceparent, hop).
fn seen(resp: &Resp, name: &str) -> (String, String, String) {
    let value = resp
        .header(&format!("x-seen-{name}"))
        .unwrap_or_else(|| panic!("no x-seen-{name}: {:?}", resp.headers));
    let parts: Vec<&str> = value.split(' ').collect();
    (parts[0].into(), parts[1].into(), parts[2].into())
}

/// (trace id, span id) of a `traceparent`.
fn ids(traceparent: &str) -> (String, String) {
    let parts: Vec<&str> = traceparent.split('-').collect();
    (parts[1].into(), parts[2].into())
}

fn link(name: &str, next: &str, allowed: &str) -> Svc {
    Svc::new(name, CHAIN)
        .set(
            "env",
            &format!("{{ NAME = \"{name}\", NEXT = {} }}", toml_str(next)),
        )
        .set("allowed_outbound_hosts", allowed)
}

#[test]
pub(crate) fn one_request_through_three_services_and_an_outside_server_is_one_trace() {
    let (outside, outside_seen) = outside_server();
    let (collector, spans, exports) = otlp_receiver_with_headers();
    let host = TestApp::new()
        .env(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            &format!("http://{collector}"),
        )
        // OpenTelemetry's header list, values URL-encoded.
        .env(
            "OTEL_EXPORTER_OTLP_HEADERS",
            "authorization=Bearer%20t0ken, x-tenant=shop",
        )
        .env("OTEL_SERVICE_NAME", "shop")
        .env("OTEL_BSP_SCHEDULE_DELAY", "100")
        .service(link("a", "http://b.internal", r#"["http://b.internal"]"#).route("/"))
        // b is private, and reached by Spin's spelling.
        .service(link(
            "b",
            "http://c.spin.internal",
            r#"["http://*.spin.internal"]"#,
        ))
        .service(link(
            "c",
            &format!("http://{outside}"),
            &format!("[\"http://{outside}\"]"),
        ))
        .admin()
        .start();

    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let incoming_span = "00f067aa0ba902b7";
    let resp = host.send(
        get("/hello")
            .header("x-request-id", "req-chain-1")
            .header("traceparent", &format!("00-{trace}-{incoming_span}-01")),
    );
    assert_eq!(resp.status, 200, "{:?} {}", resp.headers, resp.text());
    assert_eq!(resp.text(), "outside");
    assert_eq!(resp.header("x-request-id"), Some("req-chain-1"));

    // Every hop saw the same request id and trace, at its depth.
    let mut server_spans = Vec::new();
    for (name, hop) in [("a", "-"), ("b", "1"), ("c", "2")] {
        let (request_id, traceparent, seen_hop) = seen(&resp, name);
        assert_eq!(request_id, "req-chain-1", "{name}");
        let (trace_id, span_id) = ids(&traceparent);
        assert_eq!(trace_id, trace, "{name}: the incoming trace is continued");
        assert_ne!(
            span_id, incoming_span,
            "{name}: a new span, not the caller's"
        );
        assert_eq!(seen_hop, hop, "{name}");
        server_spans.push(span_id);
    }
    let outside_headers = outside_seen.lock().unwrap()[0].clone();
    assert_eq!(outside_headers["x-request-id"], "req-chain-1");
    let (outside_trace, outside_parent) = ids(&outside_headers["traceparent"]);
    assert_eq!(outside_trace, trace);
    assert!(
        !outside_headers.keys().any(|k| k.starts_with("wasmhost-")),
        "host headers never leave: {outside_headers:?}"
    );

    // The exported spans form one trace: server → guest → client → server …
    let complete = poll_until(Duration::from_secs(10), || spans.lock().unwrap().len() >= 9);
    let spans = spans.lock().unwrap().clone();
    assert!(complete.is_some(), "9 spans expected: {spans:#?}");
    assert!(
        spans.iter().all(|(service, _)| service.contains("shop")),
        "{spans:#?}"
    );
    let exports = exports.lock().unwrap().clone();
    assert!(
        exports.iter().all(|headers| {
            headers.get("authorization").map(String::as_str) == Some("Bearer t0ken")
                && headers.get("x-tenant").map(String::as_str) == Some("shop")
        }),
        "OTEL_EXPORTER_OTLP_HEADERS on every export: {exports:?}"
    );
    let by_id: BTreeMap<String, &Span> = spans.iter().map(|(_, s)| (hex(&s.span_id), s)).collect();
    assert!(spans.iter().all(|(_, s)| hex(&s.trace_id) == trace));
    let parent = |id: &str| hex(&by_id[id].parent_span_id);
    let kind = |id: &str| by_id[id].kind;
    const SERVER: i32 = 2;
    const CLIENT: i32 = 3;
    const INTERNAL: i32 = 1;
    assert_eq!(parent(&server_spans[0]), incoming_span);
    let mut caller_client = None;
    for (i, server) in server_spans.iter().enumerate() {
        assert_eq!(kind(server), SERVER);
        if let Some(client) = &caller_client {
            assert_eq!(
                &parent(server),
                client,
                "hop {i}'s server span is its caller's client span's child"
            );
        }
        let guest = by_id
            .values()
            .find(|s| hex(&s.parent_span_id) == *server)
            .unwrap_or_else(|| panic!("no guest span under {server}"));
        assert_eq!(guest.kind, INTERNAL);
        assert_eq!(guest.name, "guest");
        let guest_id = hex(&guest.span_id);
        let client = by_id
            .values()
            .find(|s| hex(&s.parent_span_id) == guest_id)
            .unwrap_or_else(|| panic!("no client span under guest {guest_id}"));
        assert_eq!(client.kind, CLIENT);
        caller_client = Some(hex(&client.span_id));
    }
    assert_eq!(
        caller_client.as_deref(),
        Some(outside_parent.as_str()),
        "the outside server's parent is c's client span"
    );
    let server_a = by_id[&server_spans[0]];
    let attr = |span: &Span, key: &str| {
        span.attributes
            .iter()
            .find(|kv| kv.key == key)
            .and_then(|kv| kv.value.as_ref())
            .map(|v| format!("{:?}", v.value))
    };
    assert!(
        attr(server_a, "http.response.status_code")
            .unwrap()
            .contains("200")
    );
    assert!(
        attr(server_a, "http.request.method")
            .unwrap()
            .contains("GET")
    );

    // Log lines carry the trace and span ids.
    let line = host
        .wait_for_log(Duration::from_secs(5), |e| {
            e["event"] == "request" && e["service"] == "a"
        })
        .expect("a's request line");
    assert_eq!(line["trace_id"], trace);
    assert_eq!(line["span_id"], server_spans[0]);
    assert_eq!(
        host.metric(r#"wasmhost_chained_calls_total{caller="a",callee="b",status="2xx"}"#),
        1.0
    );
    assert_eq!(
        host.metric(r#"wasmhost_chained_calls_total{caller="b",callee="c",status="2xx"}"#),
        1.0
    );
    host.assert_no_host_panic();
}

#[test]
fn private_services_denied_calls_and_loops() {
    let host = TestApp::new()
        .service(
            link(
                "front",
                "http://back.internal",
                r#"["http://back.internal"]"#,
            )
            .route("/front"),
        )
        .service(Svc::new("back", CHAIN).set("env", r#"{ NAME = "back" }"#))
        .service(link("sneaky", "http://back.internal", "[]").route("/sneaky"))
        .service(link("wild", "http://back.internal", r#"["http://*:*"]"#).route("/wild"))
        .service(link("ping", "http://pong.internal", r#"["http://*.internal"]"#).route("/loop"))
        .service(link(
            "pong",
            "http://ping.internal",
            r#"["http://*.internal"]"#,
        ))
        .service(
            link(
                "lost",
                "http://nowhere.internal",
                r#"["http://*.internal"]"#,
            )
            .route("/lost"),
        )
        .admin()
        .start();

    let resp = host.send(get("/front/x"));
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.text(), "end of chain back");
    assert_eq!(seen(&resp, "back").2, "1");

    // Not reachable from outside, whatever the Host header says.
    for host_header in ["back.internal", "back.spin.internal", "back"] {
        let resp = host.send(get("/").header("host", host_header));
        assert_host_error(&resp, 404, "no_route");
    }
    let back_requests = || host.metric(r#"wasmhost_requests_total{service="back",status="2xx"}"#);
    assert_eq!(back_requests(), 1.0);

    // Not allowed: denied before the callee does any work.
    for path in ["/sneaky", "/wild"] {
        let resp = host.send(get(path));
        assert_eq!(resp.status, 502, "{path}: {}", resp.text());
        assert!(resp.text().contains("HttpRequestDenied"), "{}", resp.text());
    }
    assert_eq!(back_requests(), 1.0, "a denied call never reached back");

    // A loop ends at hop 11 with 508, passed back up through every hop.
    let resp = host.send(get("/loop"));
    assert_host_error(&resp, 508, "loop_detected");
    assert_eq!(
        host.metric(r#"wasmhost_requests_total{service="ping",status="5xx"}"#),
        6.0
    );
    // pong answered hop 11 itself, without running: 5 runs plus that.
    assert_eq!(
        host.metric(r#"wasmhost_requests_total{service="pong",status="5xx"}"#),
        6.0
    );
    assert_eq!(
        host.metric(r#"wasmhost_errors_total{service="pong",kind="loop_detected"}"#),
        1.0
    );

    // A service this host does not run.
    let resp = host.send(get("/lost"));
    assert_host_error(&resp, 404, "no_route");
    host.assert_no_host_panic();

    // `check` says which services are private; it is not a problem.
    let check = std::process::Command::new(env!("CARGO_BIN_EXE_wasmhost"))
        .arg("check")
        .arg(&host.manifest)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success(), "{stdout}");
    assert!(stdout.contains("service `back` is private"), "{stdout}");
    assert!(stdout.contains("service `pong` is private"), "{stdout}");
    assert!(!stdout.contains("service `front` is private"), "{stdout}");
}

#[test]
fn a_callees_limits_are_its_own_and_reach_the_caller_with_their_kinds() {
    let host = TestApp::new()
        .service(link("front", "http://back.internal", r#"["http://*.internal"]"#).route("/front"))
        .service(
            Svc::new("back", CHAIN)
                .set("env", r#"{ NAME = "back" }"#)
                .set("fuel", "20_000_000")
                .set("memory", r#""16MiB""#),
        )
        .service(
            link(
                "slowfront",
                "http://slow.internal",
                r#"["http://*.internal"]"#,
            )
            .route("/slow"),
        )
        .service(
            Svc::new("slow", CHAIN)
                .set("env", r#"{ NAME = "slow" }"#)
                .set("fuel", r#""unlimited""#)
                .set("timeout", r#""500ms""#)
                .set("max_concurrency", "1"),
        )
        .admin()
        .start();

    for (path, status, kind) in [
        ("/front/spin", 500, "fuel_exhausted"),
        ("/front/grow", 500, "memory_exhausted"),
        ("/front/trap", 500, "trap"),
        ("/slow/spin", 504, "timeout"),
    ] {
        let resp = host.send(get(path));
        assert_host_error(&resp, status, kind);
        let body = resp.json();
        assert_ne!(body["service"], "front", "{path}: the callee's own error");
        assert_ne!(
            body["service"], "slowfront",
            "{path}: the callee's own error"
        );
    }
    // The callee's admission queue: one runs, one waits, the rest are
    // turned away.
    let kinds: Vec<String> = std::thread::scope(|scope| {
        let calls: Vec<_> = (0..4)
            .map(|_| scope.spawn(|| host.send(get("/slow/spin"))))
            .collect();
        calls
            .into_iter()
            .map(|c| {
                c.join()
                    .unwrap()
                    .header("wasmhost-error")
                    .unwrap_or("")
                    .to_owned()
            })
            .collect()
    });
    assert!(kinds.iter().any(|k| k == "overloaded"), "{kinds:?}");
    // Each failure is the callee's, not the caller's.
    assert!(host.metric(r#"wasmhost_limit_exceeded_total{service="back",limit="fuel"}"#) >= 1.0);
    assert!(host.metric(r#"wasmhost_limit_exceeded_total{service="back",limit="memory"}"#) >= 1.0);
    assert!(host.metric(r#"wasmhost_limit_exceeded_total{service="slow",limit="timeout"}"#) >= 1.0);
    assert_eq!(
        host.metric(r#"wasmhost_errors_total{service="front",kind="trap"}"#),
        0.0
    );
    host.assert_no_host_panic();
}

#[test]
fn a_64_mib_body_streams_through_a_two_hop_chain_with_flat_memory() {
    let big = r#""128MiB""#;
    let host = TestApp::new()
        .service(
            link("a", "http://b.internal", r#"["http://*.internal"]"#)
                .route("/")
                .set("max_request_body", big),
        )
        .service(
            link("b", "http://c.internal", r#"["http://*.internal"]"#).set("max_request_body", big),
        )
        .service(
            Svc::new("c", CHAIN)
                .set("env", r#"{ NAME = "c" }"#)
                .set("max_request_body", big),
        )
        .start();
    // Warm up, then take the baseline.
    assert_eq!(
        host.send(post("/upload", vec![7u8; 1 << 20])).text(),
        "1048576"
    );
    let baseline = host.memory_kib("VmRSS");
    let size = 64usize << 20;
    let resp = host.send(post("/upload", vec![7u8; size]).timeout(Duration::from_secs(120)));
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.text(), size.to_string());
    let resp = host.send(get(&format!("/download?bytes={size}")).timeout(Duration::from_secs(120)));
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body.len(), size);
    let peak = host.memory_kib("VmHWM");
    let grew_mib = peak.saturating_sub(baseline) / 1024;
    eprintln!("RSS baseline {baseline} KiB, peak {peak} KiB");
    assert!(
        grew_mib < 32,
        "64 MiB each way through two hops raised the peak RSS by {grew_mib} MiB (baseline {baseline} KiB, peak {peak} KiB)"
    );
    host.assert_no_host_panic();
}

#[test]
fn a_dead_or_black_holed_collector_drops_spans_and_requests_keep_answering() {
    // A black hole: accepts connections, never reads or answers.
    let hole = TcpListener::bind("127.0.0.1:0").unwrap();
    let hole_addr = hole.local_addr().unwrap();
    let held = Arc::new(Mutex::new(Vec::new()));
    let keep = held.clone();
    std::thread::spawn(move || {
        for stream in hole.incoming().flatten() {
            keep.lock().unwrap().push(stream);
        }
    });
    let host = TestApp::new()
        .env(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            &format!("http://{hole_addr}"),
        )
        .env("OTEL_EXPORTER_OTLP_TIMEOUT", "1000")
        .env("OTEL_BSP_MAX_QUEUE_SIZE", "256")
        .env("OTEL_BSP_SCHEDULE_DELAY", "50")
        .service(Svc::new("hello", HELLO).route("/"))
        .admin()
        .start();
    let started = std::time::Instant::now();
    for i in 0..1500 {
        let resp = host.send(get("/"));
        assert_eq!(resp.status, 200, "request {i}");
    }
    let rss_mid = host.memory_kib("VmRSS");
    for _ in 0..1500 {
        assert_eq!(host.send(get("/")).status, 200);
    }
    let rss_end = host.memory_kib("VmRSS");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "requests slowed down: {:?}",
        started.elapsed()
    );
    let dropped = host.metric("wasmhost_spans_dropped_total");
    eprintln!(
        "dropped {dropped}, RSS {rss_mid} → {rss_end} KiB in {:?}",
        started.elapsed()
    );
    assert!(dropped > 1000.0, "drops are counted: {dropped}");
    assert!(
        rss_end < rss_mid + 8 * 1024,
        "memory stays bounded: {rss_mid} KiB → {rss_end} KiB"
    );
    host.assert_no_host_panic();
}

#[test]
fn key_value_operations_cold_starts_and_reloads_are_spans_too() {
    let (collector, spans) = otlp_receiver();
    let host = TestApp::new()
        .env(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            &format!("http://{collector}"),
        )
        .env("OTEL_BSP_SCHEDULE_DELAY", "50")
        .service(
            Svc::new("counter", KV_COUNTER)
                .route("/")
                .set("key_value_stores", r#"["default"]"#)
                .set("idle_unload", r#""300ms""#),
        )
        .admin()
        .start();
    let named = |name: &str| {
        spans
            .lock()
            .unwrap()
            .iter()
            .map(|(_, s)| s.clone())
            .find(|s| s.name == name)
    };
    assert_eq!(host.send(post("/incr/visits", "")).text(), "1");
    assert!(
        poll_until(Duration::from_secs(10), || named("increment default")
            .is_some())
        .is_some()
    );
    let kv = named("increment default").unwrap();
    let guest = named("guest").unwrap();
    assert_eq!(
        kv.parent_span_id, guest.span_id,
        "a key-value operation is a child of the guest span"
    );
    assert_eq!(kv.trace_id, guest.trace_id);

    host.wait_until(Duration::from_secs(10), "the service unloads", || {
        host.metric(r#"wasmhost_service_loaded{service="counter"}"#) == 0.0
    });
    assert_eq!(host.send(post("/incr/visits", "")).text(), "2");
    assert!(poll_until(Duration::from_secs(10), || named("cold start").is_some()).is_some());
    assert_eq!(host.admin(Req::new("POST", "/admin/reload")).status, 200);
    assert!(
        poll_until(Duration::from_secs(10), || named("reload").is_some()).is_some(),
        "a reload span"
    );
}

#[test]
fn an_export_setting_the_host_cannot_honour_stops_it_at_start_with_the_variable_named() {
    let app = TestApp::new().service(Svc::new("hello", HELLO).route("/"));
    let manifest = app.write();
    for (name, value, says) in [
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc", "http/protobuf"),
        (
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "collector:4318",
            "`http://` or `https://`",
        ),
    ] {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_wasmhost"));
        command.arg("serve").arg(&manifest);
        if name != "OTEL_EXPORTER_OTLP_ENDPOINT" {
            command.env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318");
        }
        let output = command.env(name, value).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{name}={value}: {stderr}");
        assert!(stderr.contains(name) && stderr.contains(says), "{stderr}");
    }
}

#[test]
fn an_https_collector_is_spoken_to_over_tls() {
    // Not a collector: it records the first byte it gets. A TLS client
    // starts with a handshake record (0x16); plain HTTP would send `P`.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let first = Arc::new(Mutex::new(None::<u8>));
    let seen = first.clone();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut byte = [0u8; 1];
            if stream.read_exact(&mut byte).is_ok() {
                *seen.lock().unwrap() = Some(byte[0]);
            }
        }
    });
    let host = TestApp::new()
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &format!("https://{addr}"))
        .env("OTEL_EXPORTER_OTLP_TIMEOUT", "500")
        .env("OTEL_BSP_SCHEDULE_DELAY", "50")
        .service(Svc::new("hello", HELLO).route("/"))
        .admin()
        .start();
    assert_eq!(host.send(get("/")).status, 200);
    assert!(
        poll_until(Duration::from_secs(10), || first.lock().unwrap().is_some()).is_some(),
        "the exporter never connected"
    );
    assert_eq!(*first.lock().unwrap(), Some(0x16), "a TLS handshake");
    host.wait_until(
        Duration::from_secs(10),
        "the failed export is counted",
        || host.metric("wasmhost_spans_dropped_total") >= 1.0,
    );
}
