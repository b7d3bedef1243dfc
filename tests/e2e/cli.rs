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

/// `wasmhost new` for every template: the project builds with
/// `cargo build --release`, its own tests pass natively, and the host serves
/// the generated manifest, all with no edits.
#[test]
fn new_projects_build_test_and_serve_with_no_edits() {
    let root = tempfile::tempdir().unwrap();
    for (template, path, expected) in [
        ("http", "/svc-http?name=ada", "hello, ada, from svc-http"),
        ("router", "/svc-router/hello/ada", "hello, ada"),
        ("json-api", "/svc-json-api/notes/7", "note 7"),
        ("kv", "/svc-kv", "visit 1"),
    ] {
        let name = format!("svc-{template}");
        let output = Command::new(env!("CARGO_BIN_EXE_wasmhost"))
            .args(["new", &name, "--template", template])
            .current_dir(root.path())
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(0), "{}", text(&output));
        let project = root.path().join(&name);
        let cargo = |args: &[&str]| {
            let output = Command::new("cargo")
                .args(args)
                .current_dir(&project)
                .env_remove("CARGO_TARGET_DIR")
                .env_remove("CARGO_BUILD_TARGET")
                .env_remove("RUSTFLAGS")
                .env_remove("CARGO_ENCODED_RUSTFLAGS")
                .output()
                .unwrap();
            assert!(output.status.success(), "cargo {args:?}: {}", text(&output));
        };
        cargo(&["build", "--release"]);
        cargo(&["test", "--target", "x86_64-unknown-linux-gnu"]);
        let host = Host::start(StartOptions {
            manifest: &project.join("wasmhost.toml"),
            args: Vec::new(),
            env: Vec::new(),
        });
        let resp = host.send(get(path));
        assert_eq!(resp.status, 200, "{template}: {}", resp.text());
        assert!(
            resp.text().contains(expected),
            "{template}: {}",
            resp.text()
        );
    }
}

#[test]
fn new_refuses_a_bad_name_and_an_existing_folder() {
    let root = tempfile::tempdir().unwrap();
    let run = |name: &str| {
        Command::new(env!("CARGO_BIN_EXE_wasmhost"))
            .args(["new", name])
            .current_dir(root.path())
            .output()
            .unwrap()
    };
    assert_eq!(run("Bad Name").status.code(), Some(1));
    assert_eq!(run("fine").status.code(), Some(0));
    let again = run("fine");
    assert_eq!(again.status.code(), Some(1));
    assert!(text(&again).contains("already exists"), "{}", text(&again));
}

#[test]
fn serve_refuses_a_port_another_host_already_listens_on() {
    // The data plane binds one SO_REUSEPORT socket per I/O worker; a second
    // host on the same port must still fail like a plain bind, not quietly
    // take half of the first host's connections.
    let first = TestApp::new()
        .service(Svc::new("hello", HELLO).route("/"))
        .start();
    let app = TestApp::new().service(Svc::new("hello", HELLO).route("/"));
    let manifest = app.write();
    let addr = first.addr.to_string();
    let output = wasmhost(&["serve", manifest.to_str().unwrap(), "--listen", &addr]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(
        text(&output).contains("binding the data listener"),
        "{}",
        text(&output)
    );
    assert_eq!(first.send(get("/")).status, 200);
}

/// Starts `wasmhost serve` with open-file limits `soft`/`hard`, and returns
/// its first event about the open-file limit with the soft limit
/// `/proc/PID/limits` showed then; stops the host.
fn open_file_limit_event(manifest: &std::path::Path, soft: u64, hard: u64) -> serde_json::Value {
    use std::io::{BufRead, BufReader};
    use std::os::unix::process::CommandExt;
    let mut command = Command::new(env!("CARGO_BIN_EXE_wasmhost"));
    command
        .args([
            "serve",
            manifest.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ])
        .env_remove("RUST_BACKTRACE")
        .env("WASMHOST_LOG", "info")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    let limit = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: setrlimit is async-signal-safe and only reads `limit`.
    unsafe {
        command.pre_exec(move || {
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
    let mut child = command.spawn().expect("spawning wasmhost");
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut found = None;
    for line in lines.map_while(Result::ok) {
        let event: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
        let message = event["message"].as_str().unwrap_or_default();
        if message.starts_with("open-file limit") {
            let limits = std::fs::read_to_string(format!("/proc/{}/limits", child.id())).unwrap();
            found = Some((event, limits));
            break;
        }
        if message == "listening" {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let (event, limits) = found.expect("an open-file limit event before `listening`");
    let soft_now = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .unwrap()
        .to_string();
    serde_json::json!({ "event": event, "soft_now": soft_now })
}

#[test]
fn serve_raises_its_open_file_limit_and_warns_when_the_hard_limit_is_below_max_connections() {
    let app = TestApp::new()
        .host_key("max_connections", "1000")
        .service(Svc::new("hello", HELLO).route("/hello"));
    let raised = open_file_limit_event(&app.write(), 1024, 4096);
    assert_eq!(raised["event"]["message"], "open-file limit", "{raised}");
    assert_eq!(raised["event"]["level"], "INFO", "{raised}");
    assert_eq!(raised["event"]["was"], 1024, "{raised}");
    assert_eq!(raised["event"]["limit"], 4096, "{raised}");
    assert_eq!(raised["soft_now"], "4096", "{raised}");

    // The default max_connections (10,000) cannot be met with 1,024.
    let app = TestApp::new().service(Svc::new("hello", HELLO).route("/hello"));
    let low = open_file_limit_event(&app.write(), 1024, 1024);
    assert_eq!(low["event"]["level"], "WARN", "{low}");
    assert_eq!(low["event"]["max_connections"], 10_000, "{low}");
    assert_eq!(low["event"]["limit"], 1024, "{low}");
    let message = low["event"]["message"].as_str().unwrap();
    assert!(
        message.contains("max_connections") && message.contains("ulimit"),
        "{low}"
    );
}
