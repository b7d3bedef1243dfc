//! Components that run under `wasmtime serve` run here unmodified: plain
//! `wasi` bindings without our SDK, WASI 0.3, and non-Rust toolchains
//! (componentize-py, componentize-js).

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use crate::support::*;

/// `raw-proxy` uses the oldest WASI 0.2 bindings: it exports
/// `incoming-handler@0.2.0` and imports a mix of `@0.2.0`, `@0.2.4` and
/// `@0.2.6` interfaces, where the host defines `@0.2.12`.
#[test]
pub(crate) fn a_raw_wasi_bindings_component_runs_unmodified() {
    let host = TestApp::new()
        .service(Svc::new("raw", RAW_PROXY).route("/raw"))
        .start();
    let resp = host.send(get("/raw/x"));
    assert_eq!(resp.status, 200);
    assert!(resp.text().contains("raw proxy ok"), "{}", resp.text());
}

#[test]
pub(crate) fn a_wasi_p3_service_component_runs() {
    let host = TestApp::new()
        .service(Svc::new("p3", HELLO_P3).route("/p3"))
        .start();
    let resp = host.send(get("/p3/hi"));
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert!(resp.text().contains("hello from wasip3"), "{}", resp.text());
    // A second request gets a fresh run; a fully delivered response is
    // not mistaken for a client that hung up.
    let resp = host.send(get("/p3/again").header("x-request-id", "p3-again"));
    assert_eq!(resp.status, 200);
    let event = host
        .wait_for_log(Duration::from_secs(5), |e| {
            e["message"] == "request" && e["request_id"] == "p3-again"
        })
        .expect("a request event");
    assert_eq!(event["client_gone"], false);
    assert_eq!(event["status"], 200);
}

/// Runs `script OUT.wasm` (a guest build script under the repository root)
/// once per test run and returns OUT.
fn built_component(cell: &'static OnceLock<PathBuf>, script: &str, out: &str) -> &'static str {
    cell.get_or_init(|| {
        let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(out);
        let script = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/..")).join(script);
        let status = Command::new("bash")
            .arg(&script)
            .arg(&out)
            .status()
            .unwrap_or_else(|e| panic!("running {}: {e}", script.display()));
        assert!(status.success(), "{} failed", script.display());
        out
    })
    .to_str()
    .unwrap()
}

/// The Python component, built once per test run with componentize-py
/// (installed from PyPI by `guests-py/build.sh` when missing).
fn python_component() -> &'static str {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    built_component(&PATH, "guests-py/build.sh", "python-hello.wasm")
}

/// The JavaScript component, built once per test run with componentize-js
/// (installed from npm by `guests-js/build.sh` when missing).
fn js_component() -> &'static str {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    built_component(&PATH, "guests-js/build.sh", "js-hello.wasm")
}

#[test]
fn a_python_component_built_with_componentize_py_runs_unmodified() {
    let host = TestApp::new()
        .service(Svc::new("py", python_component()).route("/py"))
        .start();
    let resp = host.send(get("/py/path"));
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert!(resp.text().contains("hello from python"), "{}", resp.text());
}

/// StarlingMonkey's `fetch` event behind `incoming-handler@0.2.10`.
#[test]
fn a_javascript_component_built_with_componentize_js_runs_unmodified() {
    let host = TestApp::new()
        .service(Svc::new("js", js_component()).route("/js"))
        .start();
    for path in ["/js", "/js/any/path?x=1"] {
        let resp = host.send(get(path));
        assert_eq!(resp.status, 200, "{path}: {}", resp.text());
        assert_eq!(resp.text(), "hello from javascript", "{path}");
        assert_eq!(resp.header("content-type"), Some("text/plain"), "{path}");
    }
}
