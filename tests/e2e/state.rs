//! State and configuration: key-value stores and variables, served to
//! components built with spin-sdk 5.2 (WASI 0.2) and spin-sdk 7 (WASI 0.3)
//! exactly as Spin serves them.

use std::time::Duration;

use crate::support::*;

fn req(method: &str, path: &str) -> Req {
    Req::new(method, path)
}

fn spin_app(component: &str) -> TestApp {
    TestApp::new()
        .env("WASMHOST_TEST_TOKEN", "s3cr3t-t0ken")
        .service(
            Svc::new("spin", component)
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
    let host = spin_app(SPIN_KV).admin().start();
    keeps_state_and_reads_variables(&host);
}

/// spin-sdk 7: `#[http_service]` on `wasi:http/handler@0.3.0`, with
/// `spin:key-value@3.0.0` and `spin:variables@3.0.0`, whose functions are
/// all async and whose `get-keys` answers with a stream.
#[test]
pub(crate) fn a_spin_sdk_7_wasi_0_3_component_keeps_state_and_reads_variables_unmodified() {
    let host = spin_app(SPIN_KV3).admin().start();
    let services = host.admin(get("/admin/services")).text();
    assert!(services.contains(r#""world":"service""#), "{services}");
    keeps_state_and_reads_variables(&host);

    let text = |resp: Resp| (resp.status, resp.text());
    assert_eq!(text(host.send(get("/exists/user"))), (200, "true".into()));
    assert_eq!(text(host.send(get("/exists/cart"))), (200, "false".into()));
    // Many keys arrive whole through the stream.
    let mut expected = vec!["user".to_owned()];
    for i in 0..300 {
        let key = format!("k{i:03}");
        assert_eq!(
            text(host.send(req("PUT", &format!("/kv/{key}")).body("v"))).0,
            200
        );
        expected.push(key);
    }
    expected.sort();
    assert_eq!(text(host.send(get("/keys"))), (200, expected.join("\n")));
    host.assert_no_host_panic();
}

/// The Spin compatibility checks both spin-kv guests answer alike.
fn keeps_state_and_reads_variables(host: &Host) {
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

    // A writer on its own thread; the host dies under it once it has had
    // some writes answered.
    let addr = host.addr;
    let acked = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let writer = std::thread::spawn({
        let acked = acked.clone();
        move || {
            let mut answered = Vec::new();
            for i in 0..100_000 {
                let put = Req::new("PUT", &format!("/kv/key{i}"))
                    .body(format!("value{i}"))
                    .timeout(Duration::from_secs(5));
                match put.send(addr) {
                    Ok(resp) if resp.status == 200 => {
                        answered.push(i);
                        acked.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    _ => break,
                }
            }
            answered
        }
    });
    let written = poll_until(Duration::from_secs(30), || {
        acked.load(std::sync::atomic::Ordering::Relaxed) >= 200
    });
    assert!(written.is_some(), "the writer got no 200 writes answered");
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

/// A Debian `redis-server` on a free loopback port, for as long as it
/// lives; `stop` and `start` again on the same port.
struct RedisServer {
    port: u16,
    dir: tempfile::TempDir,
    child: Option<std::process::Child>,
}

impl RedisServer {
    fn start() -> RedisServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut server = RedisServer {
            port,
            dir: tempfile::tempdir().unwrap(),
            child: None,
        };
        server.restart();
        server
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    fn restart(&mut self) {
        let child = std::process::Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect(
                "running redis-server (Debian package `redis-server`; scripts/test.sh installs it)",
            );
        self.child = Some(child);
        let up = poll_until(Duration::from_secs(10), || {
            std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok()
        });
        assert!(up.is_some(), "redis-server did not start");
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Three replicas on 127.0.0.2, .3 and .4 with one manifest whose default
/// store is the Redis at `REDIS_URL`.
fn redis_replicas(redis: &RedisServer) -> (TestApp, Vec<Host>) {
    let app = TestApp::new()
        .service(
            Svc::new("spin", SPIN_KV)
                .route("/")
                .set("key_value_stores", r#"["default"]"#),
        )
        .service(Svc::new("hello", HELLO).route("/hello"))
        .table(
            "key_value.default",
            &["backend = \"redis\"", "url = { env = \"REDIS_URL\" }"],
        );
    let manifest = app.write();
    let hosts = ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
        .iter()
        .map(|ip| {
            Host::start(StartOptions {
                manifest: &manifest,
                args: vec!["--listen".into(), format!("{ip}:0")],
                env: vec![("REDIS_URL".into(), redis.url())],
            })
        })
        .collect();
    (app, hosts)
}

#[test]
fn replicas_share_a_redis_store() {
    let redis = RedisServer::start();
    let (_app, hosts) = redis_replicas(&redis);
    for (i, host) in hosts.iter().enumerate() {
        let put = req("PUT", &format!("/kv/from{i}")).body(format!("replica {i}"));
        assert_eq!(host.send(put).status, 200);
    }
    for host in &hosts {
        for i in 0..hosts.len() {
            let read = host.send(get(&format!("/kv/from{i}")));
            assert_eq!((read.status, read.text()), (200, format!("replica {i}")));
        }
        assert_eq!(host.send(get("/keys")).text(), "from0\nfrom1\nfrom2");
    }
    assert_eq!(hosts[2].send(req("DELETE", "/kv/from0")).status, 200);
    assert_eq!(hosts[0].send(get("/kv/from0")).status, 404);
}

#[test]
fn redis_going_down_is_the_guests_error_and_service_resumes_when_it_returns() {
    let mut redis = RedisServer::start();
    let (_app, hosts) = redis_replicas(&redis);
    let host = &hosts[0];
    assert_eq!(host.send(req("PUT", "/kv/a").body("1")).status, 200);

    redis.stop();
    let down = host.send(get("/kv/a"));
    assert_eq!(down.status, 500, "the guest's own error answer");
    assert!(
        down.header("wasmhost-error").is_none(),
        "not a host failure: {down:?}"
    );
    assert_eq!(
        host.send(get("/hello")).status,
        200,
        "other services unaffected"
    );
    host.wait_for_log(EVENT_TIMEOUT, |e| {
        e["message"] == "key-value store unavailable"
    })
    .expect("a log line says the store is unavailable");

    redis.restart();
    let back = poll_until(Duration::from_secs(10), || {
        host.send(req("PUT", "/kv/b").body("2")).status == 200
    });
    assert!(
        back.is_some(),
        "requests did not succeed again after Redis returned"
    );
    assert_eq!(hosts[1].send(get("/kv/b")).text(), "2");
    host.assert_no_host_panic();
}

/// The issue's replica test: three hosts on 127.0.0.2-4 behind HAProxy
/// share one Redis; a `wasi:keyvalue` guest counts and swaps through them.
#[test]
pub(crate) fn replicas_behind_haproxy_count_and_swap_atomically_on_one_redis() {
    let redis = RedisServer::start();
    let app = TestApp::new()
        .service(Svc::new("hello", HELLO).route("/"))
        .service(
            Svc::new("counter", KV_COUNTER)
                .set("routes", r#"["/incr", "/get", "/cas"]"#)
                .set("key_value_stores", r#"["default"]"#),
        )
        .table(
            "key_value.default",
            &["backend = \"redis\"", "url = { env = \"REDIS_URL\" }"],
        );
    let manifest = app.write();
    let hosts: Vec<Host> = ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
        .iter()
        .map(|ip| {
            Host::start(StartOptions {
                manifest: &manifest,
                args: vec![
                    "--listen".into(),
                    format!("{ip}:0"),
                    "--admin".into(),
                    format!("{ip}:0"),
                ],
                env: vec![("REDIS_URL".into(), redis.url())],
            })
        })
        .collect();
    let backends: Vec<_> = hosts.iter().map(|h| (h.addr, h.admin.unwrap())).collect();
    let haproxy = crate::replicas::Haproxy::start_for(&backends);
    let front = haproxy.addr;

    // 1,000 increments from 20 clients at once, spread by HAProxy.
    let clients: Vec<_> = (0..20)
        .map(|_| {
            std::thread::spawn(move || {
                (0..50)
                    .map(|_| post("/incr/hits", "").send(front).map(|r| r.status))
                    .filter(|status| *status == Ok(200))
                    .count()
            })
        })
        .collect();
    let answered: usize = clients.into_iter().map(|c| c.join().unwrap()).sum();
    assert_eq!(answered, 1000, "every increment is answered 200");
    let total = get("/get/hits").send(front).unwrap();
    assert_eq!((total.status, total.text()), (200, "1000".into()));
    for host in &hosts {
        assert_eq!(host.send(get("/get/hits")).text(), "1000");
    }

    // Compare-and-swap races: 8 clients per round, exactly one winner.
    let mut current = "none".to_owned();
    for round in 0..10 {
        let racers: Vec<_> = (0..8)
            .map(|client| {
                let path = format!("/cas/slot/{current}/r{round}c{client}");
                std::thread::spawn(move || post(&path, "").send(front).unwrap())
            })
            .collect();
        let answers: Vec<Resp> = racers.into_iter().map(|r| r.join().unwrap()).collect();
        let winners: Vec<usize> = (0..answers.len())
            .filter(|&i| answers[i].status == 200)
            .collect();
        assert_eq!(winners.len(), 1, "round {round}: {answers:?}");
        assert!(answers.iter().all(|a| a.status == 200 || a.status == 409));
        current = format!("r{round}c{}", winners[0]);
        assert_eq!(get("/get/slot").send(front).unwrap().text(), current);
    }
}

/// A guest built against the older `wasi:keyvalue@0.2.0-draft` shares the
/// same store: an unsigned counter, `set-many`, `get-many` with a missing
/// key, and `list-keys` paged by a numeric cursor.
#[test]
pub(crate) fn a_guest_on_the_older_keyvalue_draft_uses_the_same_stores() {
    let host = TestApp::new()
        .service(
            Svc::new("draft", KV_DRAFT)
                .route("/draft")
                .set("key_value_stores", r#"["default"]"#),
        )
        .service(
            Svc::new("spin", SPIN_KV)
                .route("/kv")
                .set("key_value_stores", r#"["default"]"#),
        )
        .start();
    assert_eq!(host.send(post("/draft/incr/n", "")).text(), "1");
    assert_eq!(host.send(post("/draft/incr/n", "")).text(), "2");
    // The Spin guest sees the draft guest's counter in the shared store.
    assert_eq!(host.send(get("/kv/n")).text(), "2");
    assert_eq!(host.send(post("/draft/fill/1500", "")).status, 200);
    assert_eq!(
        host.send(get("/draft/keys")).text(),
        "1501 keys in 2 pages",
        "1,500 filled keys and the counter, 1,000 a page"
    );
    assert_eq!(host.send(get("/draft/many")).text(), "k00000=v,none");
}
