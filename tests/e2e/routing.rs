//! SPEC "Routing": segment-boundary prefixes, longest match, host routes.

use std::time::Duration;

use crate::support::*;

fn host() -> Host {
    TestApp::new()
        .service(Svc::new("api", ECHO).route("/api"))
        .service(Svc::new("api-v2", ECHO).route("/api/v2"))
        .service(Svc::new("hello", HELLO).route("/"))
        .service(
            Svc::new("tenant", ECHO)
                .route("/api")
                .set("host", "\"Tenant.Example.com\""),
        )
        .start()
}

fn served_by(host: &Host, req: Req) -> String {
    let resp = host.send(req);
    assert_eq!(resp.status, 200, "{}", resp.text());
    if resp.text().starts_with("hello") {
        "hello".into()
    } else {
        // echo reports the path it saw; the service is told apart by route.
        resp.json()["path"].as_str().unwrap().to_owned()
    }
}

#[test]
pub(crate) fn prefixes_match_at_segment_boundaries_and_the_longest_wins() {
    let host = host();
    assert_eq!(served_by(&host, get("/api")), "/api");
    assert_eq!(served_by(&host, get("/api/")), "/api/");
    assert_eq!(served_by(&host, get("/api/x?y=1")), "/api/x");
    // `/apix` is not under `/api`: it falls through to `/`.
    assert_eq!(served_by(&host, get("/apix")), "hello");
    assert_eq!(served_by(&host, get("/elsewhere")), "hello");
}

#[test]
fn the_guest_sees_the_original_uri_and_query() {
    let host = host();
    let resp = host.send(get("/api/v2/items?limit=5&x=%20"));
    let body = resp.json();
    assert_eq!(body["path"], "/api/v2/items");
    assert_eq!(body["query"], "limit=5&x=%20");
}

#[test]
fn a_host_route_beats_a_hostless_one_ignoring_port_and_case() {
    let host = host();
    let served_by = |host_header: &str, id: &str| {
        let resp = host.send(
            get("/api/x")
                .header("host", host_header)
                .header("x-request-id", id),
        );
        assert_eq!(resp.status, 200);
        let event = host
            .wait_for_log(Duration::from_secs(5), |e| {
                e["message"] == "request" && e["request_id"] == id
            })
            .expect("a request event");
        event["service"].as_str().unwrap().to_owned()
    };
    assert_eq!(served_by("TENANT.example.COM:8080", "r1"), "tenant");
    assert_eq!(served_by("other.example.com", "r2"), "api");
}

#[test]
fn no_matching_route_is_a_404_no_route() {
    let host = TestApp::new()
        .service(Svc::new("api", ECHO).route("/api"))
        .start();
    let resp = host.send(get("/nothing/here"));
    assert_host_error(&resp, 404, "no_route");
}
