//! State and configuration: key-value stores and variables, served to a
//! component built with spin-sdk 5.2 exactly as Spin serves it.

use std::time::Duration;

use crate::support::*;

fn req(method: &str, path: &str) -> Req {
    Req::new(method, path)
}

fn spin_app() -> TestApp {
    TestApp::new()
        .env("WASMHOST_TEST_TOKEN", "s3cr3t-t0ken")
        .service(
            Svc::new("spin", SPIN_KV)
                .route("/")
                .set("key_value_stores", r#"["default"]"#)
                .set(
                    "variables",
                    r#"{ greeting = "hi", api_token = { env = "WASMHOST_TEST_TOKEN", secret = true } }"#,
                ),
        )
        .table("key_value.other", &[])
}

#[test]
pub(crate) fn a_spin_sdk_5_component_keeps_state_and_reads_variables_unmodified() {
    let host = spin_app().admin().start();
    let text = |resp: Resp| (resp.status, resp.text());

    assert_eq!(
        text(host.send(get("/kv/cart"))),
        (404, "no such key".into())
    );
    assert_eq!(
        text(host.send(req("PUT", "/kv/cart").body("3 apples"))).0,
        200
    );
    assert_eq!(text(host.send(req("PUT", "/kv/user").body("ana"))).0, 200);
    assert_eq!(text(host.send(get("/kv/cart"))), (200, "3 apples".into()));
    assert_eq!(text(host.send(get("/keys"))), (200, "cart\nuser".into()));
    assert_eq!(text(host.send(req("DELETE", "/kv/cart"))).0, 200);
    assert_eq!(text(host.send(get("/kv/cart"))).0, 404);
    assert_eq!(text(host.send(get("/keys"))), (200, "user".into()));

    assert_eq!(text(host.send(get("/store/default"))).0, 200);
    assert_eq!(
        text(host.send(get("/store/other"))),
        (403, "access denied".into()),
        "a declared store the service does not list"
    );
    assert_eq!(text(host.send(get("/store/nowhere"))).0, 403);

    assert_eq!(text(host.send(get("/var/greeting"))), (200, "hi".into()));
    assert_eq!(
        text(host.send(get("/var/api_token"))),
        (200, "s3cr3t-t0ken".into())
    );
    assert_eq!(text(host.send(get("/var/undefined_one"))).0, 404);
    assert_eq!(text(host.send(get("/var/Bad-Name"))).0, 400);

    let ops = |op: &str| {
        host.metric(&format!(
            r#"wasmhost_kv_operations_total{{store="default",op="{op}",result="ok"}}"#
        ))
    };
    assert_eq!(ops("set"), 2.0);
    assert_eq!(ops("delete"), 1.0);
    assert!(ops("get") >= 3.0);
    assert!(host.metric(r#"wasmhost_kv_operation_duration_seconds_count{store="default"}"#) >= 6.0);

    // The secret reaches the guest and nothing else.
    let services = host.admin(get("/admin/services")).text();
    assert!(services.contains("api_token"), "{services}");
    assert!(!services.contains("s3cr3t-t0ken"), "{services}");
    let logs = host.events();
    let leaks: Vec<_> = logs
        .iter()
        .filter(|e| e.to_string().contains("s3cr3t-t0ken"))
        .collect();
    assert!(leaks.is_empty(), "log lines show the secret: {leaks:#?}");
    host.assert_no_host_panic();
}

#[test]
fn oversized_keys_and_values_and_a_full_store_are_the_guests_error_not_a_trap() {
    let host = TestApp::new()
        .service(
            Svc::new("spin", SPIN_KV)
                .route("/")
                .set("key_value_stores", r#"["default"]"#),
        )
        .table(
            "key_value.default",
            &["max_key = 16", "max_value = \"2KiB\"", "quota = \"8KiB\""],
        )
        .start();
    let long_key = format!("/kv/{}", "k".repeat(17));
    let resp = host.send(get(&long_key));
    assert_eq!(
        resp.status, 500,
        "Spin's error, which the guest turns into 500"
    );
    assert!(
        resp.header("wasmhost-error").is_none(),
        "not a host error: {resp:?}"
    );
    let resp = host.send(req("PUT", "/kv/big").body(vec![b'x'; 3000]));
    assert_eq!(resp.status, 507, "{}", resp.text());
    assert!(resp.text().contains("max_value"), "{}", resp.text());

    // A guest writing in a loop stops at the quota, and keeps working.
    let mut stored = 0;
    for i in 0..20 {
        let resp = host.send(req("PUT", &format!("/kv/fill{i}")).body(vec![b'x'; 2000]));
        match resp.status {
            200 => stored += 1,
            507 => assert!(resp.text().contains("quota"), "{}", resp.text()),
            other => panic!("PUT answered {other}: {}", resp.text()),
        }
    }
    assert!(
        (2..=4).contains(&stored),
        "{stored} values of 2000 B in 8 KiB"
    );
    assert_eq!(host.send(req("DELETE", "/kv/fill0")).status, 200);
    assert_eq!(
        host.send(req("PUT", "/kv/again").body(vec![b'x'; 2000]))
            .status,
        200,
        "deleting makes room again"
    );
    host.assert_no_host_panic();
}

#[test]
fn every_answered_write_survives_a_sigkill_of_the_host() {
    let app = TestApp::new().service(
        Svc::new("spin", SPIN_KV)
            .route("/")
            .set("key_value_stores", r#"["default"]"#),
    );
    let manifest = app.write();
    let mut host = app.start();
    let dir = host._dir.take();

    // A writer on its own thread; the host dies under it.
    let addr = host.addr;
    let writer = std::thread::spawn(move || {
        let mut answered = Vec::new();
        for i in 0..100_000 {
            let put = Req::new("PUT", &format!("/kv/key{i}"))
                .body(format!("value{i}"))
                .timeout(Duration::from_secs(5));
            match put.send(addr) {
                Ok(resp) if resp.status == 200 => answered.push(i),
                _ => break,
            }
        }
        answered
    });
    std::thread::sleep(Duration::from_millis(700));
    host.signal("KILL");
    let answered = writer.join().unwrap();
    assert!(
        answered.len() > 20,
        "only {} writes before the kill",
        answered.len()
    );
    drop(host);

    let host = Host::start(StartOptions {
        manifest: &manifest,
        args: Vec::new(),
        env: Vec::new(),
    });
    for i in &answered {
        let resp = host.send(get(&format!("/kv/key{i}")));
        assert_eq!(
            (resp.status, resp.text()),
            (200, format!("value{i}")),
            "write {i} of {} was answered 200 and lost",
            answered.len()
        );
    }
    drop(dir);
}

#[test]
fn two_services_that_list_a_store_share_its_data() {
    let service = |name: &str| {
        Svc::new(name, SPIN_KV)
            .route("/")
            .set("host", &toml_str(&format!("{name}.test")))
            .set("key_value_stores", r#"["default"]"#)
    };
    let host = TestApp::new()
        .service(service("one"))
        .service(service("two"))
        .start();
    let on = |name: &str, req: Req| host.send(req.header("host", &format!("{name}.test")));
    assert_eq!(
        on("one", req("PUT", "/kv/shared").body("from one")).status,
        200
    );
    let read = on("two", get("/kv/shared"));
    assert_eq!((read.status, read.text()), (200, "from one".into()));
}

/// Replaces `path` the way `kubectl` updates a mounted Secret's file, or an
/// editor saves: a new file renamed over the old one.
fn replace(path: &std::path::Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[test]
fn a_rotated_secret_file_and_a_new_store_reach_new_requests_without_a_restart() {
    let app = TestApp::new().watch();
    let secret = app.dir().join("db_password");
    std::fs::write(&secret, "first\n").unwrap();
    let service = |stores: &str| {
        Svc::new("spin", SPIN_KV)
            .route("/")
            .set("key_value_stores", stores)
            .set(
                "variables",
                r#"{ db_password = { file = "db_password", secret = true } }"#,
            )
    };
    let host = app.service(service(r#"["default"]"#)).start();
    assert_eq!(host.send(get("/var/db_password")).text(), "first");
    assert_eq!(host.send(req("PUT", "/kv/kept").body("yes")).status, 200);
    assert_eq!(host.send(get("/store/sessions")).status, 403);

    replace(&secret, "second\n");
    let rotated = poll_until(Duration::from_secs(5), || {
        host.send(get("/var/db_password")).text() == "second"
    });
    assert!(rotated.is_some(), "the rotated secret was not picked up");

    // Add a store and list it: no restart, and the data stays.
    let text = TestApp::new()
        .watch()
        .service(service(r#"["default", "sessions"]"#))
        .table("key_value.sessions", &["max_value = \"1KiB\""])
        .manifest_text();
    replace(&host.manifest, &text);
    let added = poll_until(Duration::from_secs(5), || {
        host.send(get("/store/sessions")).status == 200
    });
    assert!(added.is_some(), "the new store was not opened");
    let kept = host.send(get("/kv/kept"));
    assert_eq!((kept.status, kept.text()), (200, "yes".into()));

    // A secret file that disappears keeps the version that works.
    std::fs::remove_file(&secret).unwrap();
    host.wait_for_log(EVENT_TIMEOUT, |e| e["message"] == "reload failed")
        .expect("the reload with a missing secret file fails");
    assert_eq!(host.send(get("/var/db_password")).text(), "second");
    host.assert_no_host_panic();
}
