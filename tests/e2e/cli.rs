//! `wasmhost check`, `serve` start failures, exit codes.

use std::process::{Command, Output};

use crate::support::*;

fn wasmhost(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wasmhost"))
        .args(args)
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("running wasmhost")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn check_accepts_a_good_manifest_with_exit_zero() {
    let app = TestApp::new()
        .service(Svc::new("hello", HELLO).route("/hello"))
        .service(Svc::new("p3", HELLO_P3).route("/p3"));
    let manifest = app.write();
    let output = wasmhost(&["check", manifest.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
}

#[test]
fn check_reports_every_problem_with_file_line_service_and_field() {
    let app = TestApp::new()
        .service(Svc::new("a", HELLO).route("/a").set("fuel", "\"lots\""))
        .service(Svc::new("b", "missing.wasm").route("/b"))
        .service(Svc::new("c", HELLO).route("/c").set("timeot", "\"1s\""));
    let manifest = app.write();
    let output = wasmhost(&["check", manifest.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let out = text(&output);
    for (service, field) in [("a", "fuel"), ("b", "component"), ("c", "timeot")] {
        let line = out
            .lines()
            .find(|l| l.contains(&format!("service `{service}`")))
            .unwrap_or_else(|| panic!("no problem for service {service}: {out}"));
        assert!(line.contains(&format!("`{field}`")), "{line}");
        assert!(line.contains("manifest.toml:"), "{line}");
    }
}

#[test]
fn check_reports_a_component_that_is_not_a_wasi_http_component() {
    let app = TestApp::new().service(Svc::new("junk", "junk.wasm").route("/"));
    std::fs::write(app.dir().join("junk.wasm"), b"\0asm garbage").unwrap();
    let manifest = app.write();
    let output = wasmhost(&["check", manifest.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    let out = text(&output);
    assert!(out.contains("service `junk`"), "{out}");
    assert!(out.contains("`component`"), "{out}");
}

#[test]
fn serve_exits_one_on_a_bad_manifest_before_binding() {
    let app = TestApp::new().service(Svc::new("Bad Name", HELLO).route("/"));
    let manifest = app.write();
    let output = wasmhost(&[
        "serve",
        manifest.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        !text(&output).contains("\"listening\""),
        "{}",
        text(&output)
    );
}

#[test]
fn usage_errors_exit_two_and_version_exits_zero() {
    assert_eq!(wasmhost(&["serve"]).status.code(), Some(2));
    assert_eq!(wasmhost(&["frobnicate"]).status.code(), Some(2));
    let version = wasmhost(&["--version"]);
    assert_eq!(version.status.code(), Some(0));
    assert!(text(&version).contains(env!("CARGO_PKG_VERSION")));
}
