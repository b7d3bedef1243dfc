//! The end-to-end harness: the real binary, real guests, real HTTP.

pub mod app;
pub mod client;
pub mod host_process;
pub mod load;
pub mod tested;
pub mod wait;

pub use app::{SHARED_CACHE, Svc, TestApp, toml_str};
pub use client::{Req, Resp, get, post};
pub use host_process::{Host, StartOptions};
pub use load::SteadyLoad;
pub use wait::{EVENT_TIMEOUT, poll_every, poll_until};
pub use wasmhost_test_guests::*;

/// Asserts that `resp` is a host-made error of `kind` with `status`, whose
/// JSON body names the kind and carries the response's request id.
#[track_caller]
pub fn assert_host_error(resp: &Resp, status: u16, kind: &str) {
    assert_eq!(
        resp.status,
        status,
        "expected {status} {kind}, got {} {:?}: {}",
        resp.status,
        resp.header("wasmhost-error"),
        resp.text()
    );
    assert_eq!(resp.header("wasmhost-error"), Some(kind));
    let body = resp.json();
    assert_eq!(body["error"], kind);
    assert_eq!(
        body["request_id"].as_str(),
        resp.header("x-request-id"),
        "the body's request_id must equal x-request-id"
    );
}
