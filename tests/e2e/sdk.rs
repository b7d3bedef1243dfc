//! The SDK's example guests, served by wasmhost, answer as their native
//! tests say.

use crate::support::*;

fn items() -> Host {
    TestApp::new()
        .service(Svc::new("items", ROUTER_DEMO).route("/items"))
        .service(
            Svc::new("raw-items", RAW_ROUTER)
                .route("/items")
                .set("host", "\"raw.test\""),
        )
        .start()
}

#[test]
pub(crate) fn the_router_demo_serves_its_json_api_with_path_params() {
    let host = items();
    let resp = host.send(get("/items/7"));
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.json(), serde_json::json!({"id": 7, "name": "item 7"}));
    assert_eq!(host.send(get("/items/1001")).status, 404);
    assert_eq!(host.send(get("/items/seven")).status, 400);
    let list = host.send(get("/items?limit=3&offset=5")).json();
    assert_eq!(list.as_array().unwrap().len(), 3);
    assert_eq!(list[0]["id"], 6);
    let created =
        host.send(post("/items", r#"{"name":"pen"}"#).header("content-type", "application/json"));
    assert_eq!(created.status, 201);
    assert_eq!(created.json()["name"], "pen");
    assert_eq!(host.send(post("/items", "not json")).status, 400);
    let wrong_method = host.send(Req::new("PUT", "/items/7"));
    assert_eq!(wrong_method.status, 405);
    assert!(wrong_method.header("allow").is_some());
    let files = host.send(get("/items/7/files/a/b.txt")).json();
    assert_eq!(files["path"], "a/b.txt");
}

#[test]
pub(crate) fn the_raw_bindings_router_answers_exactly_like_the_sdk_router() {
    let host = items();
    for path in ["/items/7", "/items/1001", "/items?limit=2"] {
        let sdk = host.send(get(path));
        let raw = host.send(get(path).header("host", "raw.test"));
        assert_eq!(sdk.status, raw.status, "{path}");
        assert_eq!(sdk.body, raw.body, "{path}");
    }
}

#[test]
pub(crate) fn the_outbound_guest_calls_its_allowed_upstream_and_reports_a_denied_one() {
    let upstream = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = upstream.local_addr().unwrap();
    std::thread::spawn(move || {
        use std::io::{BufRead, BufReader, Write};
        for stream in upstream.incoming() {
            let Ok(mut stream) = stream else { break };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let _ = stream.write_all(
                b"HTTP/1.1 200 OK\r\ncontent-length: 8\r\nconnection: close\r\n\r\nupstream",
            );
        }
    });
    let host = TestApp::new()
        .service(
            Svc::new("allowed", OUTBOUND)
                .route("/allowed")
                .set("env", &format!("{{ UPSTREAM_URL = \"http://{addr}/x\" }}"))
                .set("allowed_outbound_hosts", &format!("[\"http://{addr}\"]")),
        )
        .service(
            Svc::new("denied", OUTBOUND)
                .route("/denied")
                .set("env", &format!("{{ UPSTREAM_URL = \"http://{addr}/x\" }}")),
        )
        .start();
    let ok = host.send(get("/allowed"));
    assert_eq!(ok.status, 200, "{}", ok.text());
    assert_eq!(ok.json()["status"], 200);
    assert_eq!(ok.json()["body"], "upstream");
    let denied = host.send(get("/denied"));
    assert_eq!(denied.status, 502, "{}", denied.text());
}

#[test]
fn a_handler_error_gives_its_documented_status_not_a_hung_connection() {
    let host = items();
    // `item` past 1000 is an `Error::not_found` returned by the handler.
    let resp = host.send(get("/items/5000"));
    assert_eq!(resp.status, 404);
    assert!(resp.json()["error"].as_str().unwrap().contains("5000"));
}
