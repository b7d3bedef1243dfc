//! SPEC "Hot reload": changes go live in place, within a second, without a
//! failed request; what is broken never replaces what works.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use crate::support::*;

/// Two versions of "the same" service, told apart by their answers.
pub(crate) const V1: &str = HELLO; // "hello from wasmhost"
const V2: &str = RAW_PROXY; // "raw proxy ok ..."

pub(crate) fn version_of(resp: &Resp) -> &'static str {
    if resp.text().starts_with("hello") {
        "v1"
    } else if resp.text().starts_with("raw proxy ok") {
        "v2"
    } else {
        "other"
    }
}

/// Replaces `path` the way editors and `cargo build` do: write a temporary
/// file next to it, then rename it over.
pub(crate) fn replace_by_rename(path: &Path, bytes: &[u8]) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// Overwrites `path` in place (truncate, then write).
fn overwrite_in_place(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap();
}

/// Polls until `check` holds; returns how long that took, or panics after
/// `limit` (the host's `Drop` prints its logs).
#[track_caller]
fn within(host: &Host, limit: Duration, what: &str, check: impl Fn() -> bool) -> Duration {
    host.wait_until(limit, &format!("{what} to be visible"), check)
}

pub(crate) fn app_with_component(bytes_of: &str) -> (TestApp, PathBuf) {
    let app = TestApp::new().watch();
    let component = app.dir().join("svc.wasm");
    std::fs::copy(bytes_of, &component).unwrap();
    let app = app.service(Svc::new("svc", "svc.wasm").route("/svc"));
    (app, component)
}

#[test]
fn fifty_swaps_under_load_fail_no_request_and_each_is_live_within_a_second() {
    let (app, component) = app_with_component(V1);
    let host = app.start();
    let (v1, v2) = (std::fs::read(V1).unwrap(), std::fs::read(V2).unwrap());

    let stop = Arc::new(AtomicBool::new(false));
    let served = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let (stop, served, addr) = (stop.clone(), served.clone(), host.addr);
            std::thread::spawn(move || {
                let mut failures = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    match get("/svc").send(addr) {
                        Ok(resp) if resp.status == 200 => {}
                        Ok(resp) => failures.push(format!("{} {}", resp.status, resp.text())),
                        Err(err) => failures.push(err),
                    }
                    served.fetch_add(1, Ordering::Relaxed);
                }
                failures
            })
        })
        .collect();

    let mut slowest = Duration::ZERO;
    for i in 0..50 {
        let (bytes, version) = if i % 2 == 0 { (&v2, "v2") } else { (&v1, "v1") };
        if i < 25 {
            replace_by_rename(&component, bytes);
        } else {
            overwrite_in_place(&component, bytes);
        }
        let took = within(&host, Duration::from_secs(1), &format!("swap {i}"), || {
            version_of(&host.send(get("/svc"))) == version
        });
        slowest = slowest.max(took);
    }
    stop.store(true, Ordering::Relaxed);
    let failures: Vec<String> = clients
        .into_iter()
        .flat_map(|c| c.join().unwrap())
        .collect();
    assert!(
        failures.is_empty(),
        "{} failed requests of {}: {:?}",
        failures.len(),
        served.load(Ordering::Relaxed),
        &failures[..failures.len().min(5)]
    );
    assert!(served.load(Ordering::Relaxed) > 100);
    eprintln!("slowest swap became visible after {slowest:?}");
}

#[test]
fn garbage_over_a_live_component_keeps_the_old_version_and_reports_the_error() {
    let (app, component) = app_with_component(V1);
    let host = app.start();
    overwrite_in_place(&component, b"\0asm\x01\0\0\0 this is not a component");
    host.wait_for_log(Duration::from_secs(5), |e| {
        e["message"] == "reload problem; the previous version keeps serving"
            && e["error"]
                .as_str()
                .is_some_and(|m| m.contains("service `svc`"))
    })
    .expect("the reload error is logged");
    let resp = host.send(get("/svc"));
    assert_eq!(resp.status, 200);
    assert_eq!(version_of(&resp), "v1");
    // Fixing the file brings the service forward again.
    replace_by_rename(&component, &std::fs::read(V2).unwrap());
    within(&host, Duration::from_secs(1), "the fixed component", || {
        version_of(&host.send(get("/svc"))) == "v2"
    });
}

#[test]
fn a_broken_manifest_keeps_the_whole_old_config() {
    let (app, _component) = app_with_component(V1);
    let host = app.start();
    std::fs::write(&host.manifest, "[[service]\nname = ").unwrap();
    host.wait_for_log(Duration::from_secs(5), |e| e["message"] == "reload failed")
        .expect("the failed reload is logged");
    assert_eq!(version_of(&host.send(get("/svc"))), "v1");
}

#[test]
fn manifest_edits_add_remove_reroute_and_relimit_services_within_a_second() {
    let host = TestApp::new()
        .watch()
        .service(Svc::new("hello", HELLO).route("/hello"))
        .service(Svc::new("bad", HOSTILE).route("/bad"))
        .start();
    let rewrite = |services: Vec<Svc>| {
        let mut app = TestApp::new().watch();
        for svc in services {
            app = app.service(svc);
        }
        replace_by_rename(&host.manifest, app.manifest_text().as_bytes());
    };
    let second = Duration::from_secs(1);

    // Add a service.
    rewrite(vec![
        Svc::new("hello", HELLO).route("/hello"),
        Svc::new("bad", HOSTILE).route("/bad"),
        Svc::new("echo", ECHO).route("/echo"),
    ]);
    within(&host, second, "added service", || {
        host.send(get("/echo")).status == 200
    });

    // Change a limit: fuel so low that spinning exhausts it at once.
    rewrite(vec![
        Svc::new("hello", HELLO).route("/hello"),
        Svc::new("bad", HOSTILE)
            .route("/bad")
            .set("fuel", "1_000_000")
            .set("timeout", "\"5s\""),
        Svc::new("echo", ECHO).route("/echo"),
    ]);
    within(&host, second, "new fuel limit", || {
        host.send(get("/bad/spin")).header("wasmhost-error") == Some("fuel_exhausted")
    });

    // Change a route and remove a service.
    rewrite(vec![
        Svc::new("hello", HELLO).route("/greet"),
        Svc::new("echo", ECHO).route("/echo"),
    ]);
    within(&host, second, "new route", || {
        host.send(get("/greet")).status == 200
    });
    within(&host, second, "removed service", || {
        host.send(get("/bad/ok")).status == 404
    });
    assert_host_error(&host.send(get("/hello")), 404, "no_route");
}

/// `fuel = "unlimited"` runs on an engine without fuel metering: a reload
/// that adds or removes the limit moves the service between engines (its
/// code compiled again for the other one) and the limit that applies is
/// always the manifest's.
#[test]
fn a_reload_between_a_fuel_limit_and_unlimited_fuel_applies_the_new_limit() {
    let spin = |fuel: &str| {
        TestApp::new().watch().service(
            Svc::new("bad", HOSTILE)
                .route("/bad")
                .set("fuel", fuel)
                .set("timeout", "\"400ms\""),
        )
    };
    let host = spin("\"unlimited\"").start();
    assert_host_error(&host.send(get("/bad/spin")), 504, "timeout");
    assert_eq!(host.send(get("/bad/ok")).status, 200);
    let within_a_moment = Duration::from_secs(5);
    let unmetered = host
        .wait_for_log(within_a_moment, |e| {
            e["event"] == "request" && e["path"] == "/bad/ok"
        })
        .expect("the request's event");
    assert!(
        unmetered.get("fuel").is_none(),
        "no fuel is counted without a fuel limit: {unmetered}"
    );

    replace_by_rename(&host.manifest, spin("1_000_000").manifest_text().as_bytes());
    within(&host, within_a_moment, "the fuel limit", || {
        host.send(get("/bad/spin")).header("wasmhost-error") == Some("fuel_exhausted")
    });
    assert_eq!(host.send(get("/bad/ok")).status, 200);

    replace_by_rename(
        &host.manifest,
        spin("\"unlimited\"").manifest_text().as_bytes(),
    );
    within(&host, within_a_moment, "unlimited fuel again", || {
        host.send(get("/bad/spin")).header("wasmhost-error") == Some("timeout")
    });
    host.assert_no_host_panic();
}

#[test]
fn a_configmap_style_symlink_swap_is_picked_up() {
    let root = tempfile::tempdir().unwrap();
    let cfg = root.path().join("cfg");
    std::fs::create_dir(&cfg).unwrap();
    let write_version = |name: &str, component: &str| {
        let dir = cfg.join(name);
        std::fs::create_dir(&dir).unwrap();
        let text = TestApp::new()
            .watch()
            .service(Svc::new("svc", component).route("/svc"))
            .manifest_text();
        std::fs::write(dir.join("manifest.toml"), text).unwrap();
    };
    // The kubelet's layout: manifest.toml -> ..data/manifest.toml, and
    // ..data -> ..<timestamp>, swapped by renaming a new link over ..data.
    write_version("..2026_11_27_v1", V1);
    std::os::unix::fs::symlink("..2026_11_27_v1", cfg.join("..data")).unwrap();
    std::os::unix::fs::symlink("..data/manifest.toml", cfg.join("manifest.toml")).unwrap();
    let host = Host::start(StartOptions {
        manifest: &cfg.join("manifest.toml"),
        args: Vec::new(),
        env: Vec::new(),
    });
    assert_eq!(version_of(&host.send(get("/svc"))), "v1");

    write_version("..2026_11_27_v2", V2);
    std::os::unix::fs::symlink("..2026_11_27_v2", cfg.join("..data_tmp")).unwrap();
    std::fs::rename(cfg.join("..data_tmp"), cfg.join("..data")).unwrap();
    within(
        &host,
        Duration::from_secs(1),
        "the swapped ConfigMap",
        || version_of(&host.send(get("/svc"))) == "v2",
    );
}

#[test]
fn a_request_in_flight_during_a_swap_completes_on_the_old_version() {
    let (app, component) = app_with_component(HOSTILE);
    let host = app.admin().start();
    let addr = host.addr;
    let in_flight = std::thread::spawn(move || get("/svc/sleep?ms=1500").send(addr));
    host.wait_for_metric(
        r#"wasmhost_requests_in_flight{service="svc"}"#,
        EVENT_TIMEOUT,
        |n| n == 1.0,
    );
    replace_by_rename(&component, &std::fs::read(V1).unwrap());
    within(&host, Duration::from_secs(1), "the new version", || {
        version_of(&host.send(get("/svc"))) == "v1"
    });
    let resp = in_flight
        .join()
        .unwrap()
        .expect("the in-flight request completes");
    assert_eq!(resp.status, 200);
    assert!(resp.text().contains("slept"), "{}", resp.text());
}

#[test]
fn sighup_reloads_even_without_watching() {
    let app = TestApp::new();
    let component = app.dir().join("svc.wasm");
    std::fs::copy(V1, &component).unwrap();
    let host = app
        .service(Svc::new("svc", "svc.wasm").route("/svc"))
        .start();
    replace_by_rename(&component, &std::fs::read(V2).unwrap());
    // Kept on purpose: time itself is the subject, since nothing may reload
    // on its own. A watching host reloads 25 ms (its debounce) after a
    // change; this is a dozen debounce periods.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(version_of(&host.send(get("/svc"))), "v1", "watch = false");
    assert!(
        !host.events().iter().any(|e| e["message"] == "reload"),
        "watch = false, yet the host reloaded"
    );
    host.signal("HUP");
    let reload = host
        .wait_for_log(EVENT_TIMEOUT, |e| e["message"] == "reload")
        .expect("the SIGHUP reload");
    assert_eq!(reload["changed"], r#"["svc"]"#, "{reload}");
    // The new version is live once the reload is logged.
    assert_eq!(version_of(&host.send(get("/svc"))), "v2");
}

#[test]
fn changing_the_listen_address_at_runtime_is_refused_and_the_rest_applies() {
    let (app, _component) = app_with_component(V1);
    let host = app.start();
    let text = TestApp::new()
        .watch()
        .host_key("listen", "\"127.0.0.1:1\"")
        .service(Svc::new("svc", "svc.wasm").route("/svc"))
        .service(Svc::new("echo", ECHO).route("/echo"))
        .manifest_text();
    replace_by_rename(&host.manifest, text.as_bytes());
    host.wait_for_log(Duration::from_secs(5), |e| {
        e["message"] == "reload problem; the previous version keeps serving"
            && e["error"]
                .as_str()
                .is_some_and(|m| m.contains("needs a restart"))
    })
    .expect("the refusal is logged");
    within(
        &host,
        Duration::from_secs(1),
        "the rest of the change",
        || host.send(get("/echo")).status == 200,
    );
}

#[test]
fn unrelated_files_in_a_watched_folder_trigger_no_reload() {
    let (app, component) = app_with_component(V1);
    let host = app.start();
    let folder = component.parent().unwrap();
    for i in 0..10 {
        std::fs::write(folder.join("app.log"), format!("line {i}\n")).unwrap();
        std::fs::write(folder.join("notes.tmp"), "x").unwrap();
    }
    replace_by_rename(&component, &std::fs::read(V2).unwrap());
    within(&host, Duration::from_secs(1), "the real change", || {
        version_of(&host.send(get("/svc"))) == "v2"
    });
    // Log lines are written by their own thread: wait for the event.
    host.wait_for_log(Duration::from_secs(5), |e| e["message"] == "reload")
        .expect("the reload event");
    let reloads = host
        .events()
        .iter()
        .filter(|e| e["message"] == "reload")
        .count();
    assert_eq!(reloads, 1, "only the component change reloads");
}
