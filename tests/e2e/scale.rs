//! Scale-to-zero: idle unload and cold starts, lazy start, the precompiled
//! cache across restarts, `--idle-exit`, and systemd socket activation.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use crate::support::*;

/// The service's entry in `/admin/services`.
fn admin_entry(host: &Host, name: &str) -> serde_json::Value {
    let services = host.admin(get("/admin/services")).json();
    services["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("no service `{name}` in {services}"))
}

fn cold_starts(host: &Host, name: &str) -> f64 {
    host.metric(&format!("wasmhost_cold_starts_total{{service=\"{name}\"}}"))
}

#[test]
fn an_idle_service_unloads_and_its_next_request_is_a_cold_start_from_the_cache() {
    let host = TestApp::new()
        .admin()
        .service(
            Svc::new("hello", HELLO)
                .route("/")
                .set("idle_unload", "\"1s\""),
        )
        .start();
    assert_eq!(admin_entry(&host, "hello")["state"], "loaded");
    assert_eq!(host.send(get("/")).status, 200);
    // Idle time is the subject here: wait for the event it causes.
    let unloaded = host
        .wait_for_log(Duration::from_secs(10), |e| {
            e["message"] == "service unloaded" && e["service"] == "hello"
        })
        .expect("the service unloads after 1 s without requests");
    assert!(unloaded["idle_ms"].as_u64().unwrap() >= 1000, "{unloaded}");
    assert_eq!(admin_entry(&host, "hello")["state"], "unloaded");
    assert_eq!(
        host.metric("wasmhost_service_loaded{service=\"hello\"}"),
        0.0
    );
    assert_eq!(cold_starts(&host, "hello"), 0.0);
    let compiled_before = host.metric("wasmhost_component_loads_total{source=\"compiled\"}");

    let resp = host.send(get("/"));
    assert_eq!(resp.status, 200);
    assert_eq!(resp.text(), "hello from wasmhost");
    assert_eq!(cold_starts(&host, "hello"), 1.0);
    assert_eq!(admin_entry(&host, "hello")["state"], "loaded");
    assert_eq!(
        host.metric("wasmhost_service_loaded{service=\"hello\"}"),
        1.0
    );
    assert_eq!(
        host.metric("wasmhost_cold_start_duration_seconds_count{service=\"hello\"}"),
        1.0
    );
    assert_eq!(
        host.metric("wasmhost_component_loads_total{source=\"compiled\"}"),
        compiled_before,
        "a cold start loads machine code from the cache, it does not compile"
    );
    let event = host
        .wait_for_log(Duration::from_secs(5), |e| e["message"] == "cold start")
        .expect("a `cold start` event");
    assert_eq!(event["from_cache"], true);
}

#[test]
fn concurrent_first_requests_to_a_lazy_service_share_one_load() {
    let host = TestApp::new()
        .admin()
        .service(
            Svc::new("lazy", HELLO_P3)
                .route("/")
                .set("lazy_start", "true"),
        )
        .service(Svc::new("eager", HELLO).route("/eager"))
        .start();
    let entry = admin_entry(&host, "lazy");
    assert_eq!(entry["state"], "unloaded", "{entry}");
    assert_eq!(entry["world"], serde_json::Value::Null, "never loaded yet");
    assert_eq!(admin_entry(&host, "eager")["state"], "loaded");
    assert_eq!(
        host.admin(get("/readyz")).status,
        200,
        "lazy services do not hold readiness back"
    );

    const CLIENTS: usize = 16;
    let barrier = Arc::new(Barrier::new(CLIENTS));
    let addr = host.addr;
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                get("/").send(addr)
            })
        })
        .collect();
    for client in clients {
        let resp = client.join().unwrap().expect("a response");
        assert_eq!(resp.status, 200, "{}", resp.text());
    }
    assert_eq!(
        cold_starts(&host, "lazy"),
        1.0,
        "one load for all {CLIENTS} requests"
    );
    let loads = host
        .events()
        .iter()
        .filter(|e| e["message"] == "cold start")
        .count();
    assert_eq!(loads, 1);
    let entry = admin_entry(&host, "lazy");
    assert_eq!(entry["state"], "loaded");
    assert_eq!(entry["world"], "service");
}

/// Starts a host on `manifest` and waits for it to serve; returns it with
/// the number of components it compiled and loaded from the cache.
fn start_counting(manifest: &Path) -> (Host, f64, f64) {
    let host = Host::start(StartOptions {
        manifest,
        args: vec!["--admin".into(), "127.0.0.1:0".into()],
        env: Vec::new(),
    });
    let compiled = host.metric("wasmhost_component_loads_total{source=\"compiled\"}");
    let cached = host.metric("wasmhost_component_loads_total{source=\"cache\"}");
    (host, compiled, cached)
}

fn stop(mut host: Host) {
    host.signal("TERM");
    let status = host
        .wait_exit(Duration::from_secs(30))
        .expect("the host stops");
    assert!(status.success(), "{status:?}");
}

#[test]
fn a_warm_cache_compiles_nothing_and_a_corrupt_artifact_is_recompiled() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let manifest = dir.path().join("manifest.toml");
    std::fs::write(
        &manifest,
        format!(
            "[host]\nwatch = false\ncache_dir = {cache}\n\n\
             [[service]]\nname = \"p2\"\ncomponent = {p2}\nroute = \"/p2\"\n\n\
             [[service]]\nname = \"p3\"\ncomponent = {p3}\nroute = \"/p3\"\n",
            cache = toml_str(cache.to_str().unwrap()),
            p2 = toml_str(HELLO),
            p3 = toml_str(HELLO_P3),
        ),
    )
    .unwrap();
    let serves = |host: &Host| {
        assert_eq!(host.send(get("/p2")).status, 200);
        assert_eq!(host.send(get("/p3")).status, 200);
    };

    // An empty cache: both compiled, and written owner-only.
    let (host, compiled, cached) = start_counting(&manifest);
    assert_eq!((compiled, cached), (2.0, 0.0));
    serves(&host);
    stop(host);
    use std::os::unix::fs::PermissionsExt;
    let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&cache), 0o700);
    let files = |dir: &Path| -> Vec<PathBuf> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file())
            .collect()
    };
    let artifacts = files(&cache);
    assert_eq!(artifacts.len(), 2, "{artifacts:?}");
    // The incremental compilation cache: its own folder, its packs too.
    let packs = files(&cache.join("functions"));
    assert!(!packs.is_empty());
    assert_eq!(mode(&cache.join("functions")), 0o700);
    for file in artifacts.iter().chain(&packs) {
        assert_eq!(mode(file), 0o600, "{}", file.display());
    }

    // Warm: nothing compiled.
    let (host, compiled, cached) = start_counting(&manifest);
    assert_eq!((compiled, cached), (0.0, 2.0));
    serves(&host);
    stop(host);

    // One artifact truncated, the other overwritten with garbage: both
    // recompiled, served, and replaced.
    let first = std::fs::read(&artifacts[0]).unwrap();
    std::fs::write(&artifacts[0], &first[..first.len() / 2]).unwrap();
    std::fs::write(&artifacts[1], b"\x7fELF not really an artifact").unwrap();
    let (host, compiled, cached) = start_counting(&manifest);
    assert_eq!((compiled, cached), (2.0, 0.0));
    serves(&host);
    let warnings = host
        .events()
        .iter()
        .filter(|e| e["message"] == "unusable cache artifact; recompiling")
        .count();
    assert_eq!(warnings, 2);
    stop(host);

    let (host, compiled, cached) = start_counting(&manifest);
    assert_eq!(
        (compiled, cached),
        (0.0, 2.0),
        "the artifacts were replaced"
    );
    stop(host);
}

#[test]
fn idle_exit_lets_the_request_in_flight_finish_then_exits_zero() {
    let mut host = TestApp::new()
        .service(Svc::new("hostile", HOSTILE).route("/"))
        .arg("--idle-exit")
        .arg("500ms")
        .start();
    // Outlasts the idle time twice over.
    let resp = host.send(get("/sleep?ms=1200"));
    assert_eq!(resp.status, 200);
    assert_eq!(resp.text(), "slept 1200 ms");
    let finished = Instant::now();
    let status = host
        .wait_exit(Duration::from_secs(20))
        .expect("the host exits on its own");
    assert!(status.success(), "{status:?}");
    assert!(
        finished.elapsed() >= Duration::from_millis(400),
        "it waited for the idle time after the last request"
    );
    assert!(
        host.events()
            .iter()
            .any(|e| e["message"] == "no requests for the idle-exit time: stopping")
    );
}

fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// Runs `wasmhost serve MANIFEST` under `systemd-socket-activate` with
/// `sockets` (address, name) and returns the activator's child.
fn socket_activated(
    manifest: &Path,
    sockets: &[(SocketAddr, Option<&str>)],
    log: &Path,
) -> std::process::Child {
    let mut command = Command::new("systemd-socket-activate");
    for (addr, _) in sockets {
        command.arg(format!("--listen={addr}"));
    }
    let names: Vec<&str> = sockets.iter().filter_map(|(_, name)| *name).collect();
    if !names.is_empty() {
        command.arg(format!("--fdname={}", names.join(":")));
    }
    command
        .args([
            "--setenv=WASMHOST_LOG=info",
            env!("CARGO_BIN_EXE_wasmhost"),
            "serve",
        ])
        .arg(manifest)
        .args(["--log-format", "json"])
        .env_remove("RUST_BACKTRACE")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(log).unwrap())
        .stderr(std::fs::File::create(log.with_extension("err")).unwrap());
    command.spawn().expect(
        "running systemd-socket-activate (Debian package `systemd`; scripts/test.sh installs it)",
    )
}

fn stop_activated(mut child: std::process::Child, log: &Path) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    let logs = std::fs::read_to_string(log).unwrap_or_default();
    assert!(status.success(), "{status:?}\n{logs}");
    assert!(logs.contains("\"activated\":true"), "{logs}");
}

#[test]
fn systemd_socket_activation_serves_on_the_passed_sockets() {
    let app = TestApp::new().service(Svc::new("hello", HELLO).route("/"));
    let manifest = app.write();
    let log = app.dir().join("host.log");
    // The activator binds right after it starts: retry until it listens.
    let retry = |addr: SocketAddr, path: &str| {
        let mut answer = None;
        let mut last_error = String::new();
        poll_until(Duration::from_secs(60), || {
            match get(path).timeout(Duration::from_secs(60)).send(addr) {
                Ok(resp) => answer = Some(resp),
                Err(err) if err.contains("refused") => last_error = err,
                Err(err) => panic!(
                    "{err}\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                ),
            }
            answer.is_some()
        });
        answer.unwrap_or_else(|| {
            panic!(
                "{last_error}\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            )
        })
    };

    // One unnamed socket: the data plane. The host starts on the first
    // connection, which waits in the backlog meanwhile.
    let data = free_port();
    let child = socket_activated(&manifest, &[(data, None)], &log);
    let resp = retry(data, "/");
    assert_eq!(resp.status, 200);
    assert_eq!(resp.text(), "hello from wasmhost");
    stop_activated(child, &log);

    // Named `data` and `admin` (given admin first, to show names win).
    let (data, admin) = (free_port(), free_port());
    let child = socket_activated(
        &manifest,
        &[(admin, Some("admin")), (data, Some("data"))],
        &log,
    );
    assert_eq!(retry(admin, "/readyz").status, 200);
    assert_eq!(retry(data, "/").status, 200);
    stop_activated(child, &log);
}
