//! Components pulled from a real OCI registry (Debian's `docker-registry`,
//! the CNCF distribution registry), pushed with the real `wkg` CLI; only a
//! broken artifact `wkg` refuses to make is pushed by this test's code.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::support::*;

/// A registry on a free loopback port, storing in `dir`; stopped on drop.
struct Registry {
    child: Child,
    addr: String,
}

impl Registry {
    fn start(dir: &Path) -> Registry {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Registry::start_on(dir, port)
    }

    fn start_on(dir: &Path, port: u16) -> Registry {
        let config = dir.join("registry.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\n\
                 storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
                 http:\n  addr: 127.0.0.1:{port}\n",
                dir.join("storage").display()
            ),
        )
        .unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect(
                "docker-registry (Debian package `docker-registry`; scripts/test.sh installs it)",
            );
        let registry = Registry {
            child,
            addr: format!("127.0.0.1:{port}"),
        };
        let answers = || -> Option<()> {
            let mut stream = std::net::TcpStream::connect(&registry.addr).ok()?;
            use std::io::{Read, Write};
            stream
                .write_all(b"GET /v2/ HTTP/1.1\r\nHost: r\r\nConnection: close\r\n\r\n")
                .ok()?;
            let mut answer = String::new();
            stream.read_to_string(&mut answer).ok()?;
            answer.starts_with("HTTP/1.1 200").then_some(())
        };
        let up = poll_until(Duration::from_secs(20), || answers().is_some());
        assert!(
            up.is_some(),
            "the registry did not come up on {}",
            registry.addr
        );
        registry
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `wkg oci push` of `file` to `reference` (plain HTTP to the test
/// registry); the manifest digest it prints.
fn wkg_push(registry: &str, reference: &str, file: &str) -> String {
    let wkg = std::env::var("WKG").unwrap_or_else(|_| "wkg".into());
    let output = Command::new(&wkg)
        .args(["oci", "push", "--insecure", registry, reference, file])
        .output()
        .unwrap_or_else(|e| panic!("`{wkg}` (cargo install wkg; scripts/test.sh does): {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "wkg oci push: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
        .lines()
        .find_map(|line| line.trim().strip_prefix("digest: "))
        .unwrap_or_else(|| panic!("no digest in wkg's output: {stdout}"))
        .trim()
        .to_owned()
}

/// Pushes `bytes` as a Wasm component artifact with the right media types
/// (what `wkg` would refuse: bytes that are no component).
fn push_raw(reference: &str, bytes: &[u8]) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = oci_client::Client::try_from(oci_client::client::ClientConfig {
        protocol: oci_client::client::ClientProtocol::Http,
        ..Default::default()
    })
    .unwrap();
    let reference: oci_client::Reference = reference.parse().unwrap();
    let layer =
        oci_client::client::ImageLayer::new(bytes.to_vec(), "application/wasm".into(), None);
    let config = oci_client::client::Config::new(
        br#"{"architecture":"wasm","os":"wasip2"}"#.to_vec(),
        "application/vnd.wasm.config.v0+json".into(),
        None,
    );
    runtime
        .block_on(client.push(
            &reference,
            &[layer],
            config,
            &oci_client::secrets::RegistryAuth::Anonymous,
            None,
        ))
        .expect("pushing the broken artifact");
}

/// The body the echo guest says it got.
fn echoed(resp: &Resp) -> String {
    resp.json()["body"].as_str().unwrap_or_default().to_owned()
}

fn service_json(host: &Host, name: &str) -> serde_json::Value {
    let services = host.admin(get("/admin/services")).json();
    services["services"]
        .as_array()
        .or(services.as_array())
        .and_then(|list| list.iter().find(|s| s["name"] == name).cloned())
        .unwrap_or_else(|| panic!("no service {name} in {services}"))
}

#[test]
fn components_are_pulled_by_tag_and_digest_follow_the_tag_and_start_from_the_cache_without_the_registry()
 {
    let storage = tempfile::tempdir().unwrap();
    let registry = Registry::start(storage.path());
    let port = registry
        .addr
        .rsplit(':')
        .next()
        .unwrap()
        .parse::<u16>()
        .unwrap();
    let tag = format!("{}/test/hello:v1", registry.addr);
    let hello = wkg_push(&registry.addr, &tag, HELLO);
    let pinned = format!("{}/test/hello@{hello}", registry.addr);

    let app = TestApp::new()
        .host_key(
            "insecure_registries",
            &format!("[{}]", toml_str(&registry.addr)),
        )
        .service(Svc::new("tag", &format!("oci://{tag}")).route("/tag"))
        .service(Svc::new("pinned", &format!("oci://{pinned}")).route("/pinned"))
        .admin();
    // The cache and a copy of the manifest outlive this first host (whose
    // folder goes with it).
    let cache = storage.path().join("cache");
    let app = app.host_key("cache_dir", &toml_str(cache.to_str().unwrap()));
    let manifest = storage.path().join("manifest.toml");
    std::fs::write(&manifest, app.manifest_text()).unwrap();
    let host = app.start();
    for path in ["/tag", "/pinned"] {
        let resp = host.send(get(path));
        assert_eq!(resp.status, 200, "{path}: {}", resp.text());
        assert!(resp.text().contains("hello"), "{path}: {}", resp.text());
    }
    let tagged = service_json(&host, "tag");
    assert_eq!(tagged["reference"], format!("oci://{tag}"));
    assert_eq!(tagged["digest"], hello.as_str());
    assert_eq!(service_json(&host, "pinned")["digest"], hello.as_str());
    assert_eq!(
        host.metric(r#"wasmhost_component_pulls_total{service="tag",result="ok"}"#),
        1.0
    );
    // Content-addressed: one blob for the two references.
    let blobs = std::fs::read_dir(cache.join("oci/blobs/sha256"))
        .unwrap()
        .count();
    assert_eq!(blobs, 1);

    // The tag moves to another component: a reload serves it.
    let echo = wkg_push(&registry.addr, &tag, ECHO);
    assert_ne!(echo, hello);
    let reload = host.admin(post("/admin/reload", ""));
    assert_eq!(reload.status, 200, "{}", reload.text());
    assert_eq!(service_json(&host, "tag")["digest"], echo.as_str());
    assert_eq!(service_json(&host, "pinned")["digest"], hello.as_str());
    let resp = host.send(post("/tag", "ping"));
    assert_eq!(
        (resp.status, echoed(&resp)),
        (200, "ping".into()),
        "echo now"
    );

    // A broken version on the tag never replaces the running one.
    push_raw(&tag, b"not a component");
    let reload = host.admin(post("/admin/reload", ""));
    assert_ne!(reload.status, 200, "{}", reload.text());
    let resp = host.send(post("/tag", "still"));
    assert_eq!((resp.status, echoed(&resp)), (200, "still".into()));
    let tagged = service_json(&host, "tag");
    assert_eq!(tagged["digest"], echo.as_str(), "{tagged}");
    assert!(
        tagged["last_reload_error"]
            .as_str()
            .is_some_and(|e| e.contains("component")),
        "{tagged}"
    );
    drop(host);

    // The registry is gone: the digest starts from the cache, and the tag
    // from the digest it last served successfully (echo, not the broken one).
    drop(registry);
    let host = Host::start(StartOptions {
        manifest: &manifest,
        args: vec!["--admin".into(), "127.0.0.1:0".into()],
        env: Vec::new(),
    });
    assert!(host.send(get("/pinned")).text().contains("hello"));
    let resp = host.send(post("/tag", "offline"));
    assert_eq!((resp.status, echoed(&resp)), (200, "offline".into()));
    assert_eq!(
        host.metric(r#"wasmhost_component_pulls_total{service="tag",result="cache"}"#),
        1.0
    );
    drop(host);

    // A tag never served, with no registry: a start-up problem that names
    // the file, the line, the service and the field.
    let unseen = TestApp::new()
        .host_key("insecure_registries", &format!("[\"127.0.0.1:{port}\"]"))
        .host_key("cache_dir", &toml_str(cache.to_str().unwrap()))
        .service(Svc::new("never", &format!("oci://127.0.0.1:{port}/test/other:v9")).route("/"));
    let manifest = unseen.write();
    let output = Command::new(env!("CARGO_BIN_EXE_wasmhost"))
        .arg("check")
        .arg(&manifest)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stdout) + String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("manifest.toml:")
            && stderr.contains("service `never`")
            && stderr.contains("field `component`")
            && stderr.contains("oci://127.0.0.1"),
        "{stderr}"
    );
}

#[test]
fn a_polled_tag_that_moves_under_load_is_served_with_no_failed_request_and_a_broken_one_is_refused()
{
    let storage = tempfile::tempdir().unwrap();
    let registry = Registry::start(storage.path());
    let tag = format!("{}/poll/svc:live", registry.addr);
    let first = wkg_push(&registry.addr, &tag, HELLO);
    let host = TestApp::new()
        .host_key(
            "insecure_registries",
            &format!("[{}]", toml_str(&registry.addr)),
        )
        .host_key(
            "cache_dir",
            &toml_str(storage.path().join("cache").to_str().unwrap()),
        )
        .service(
            Svc::new("svc", &format!("oci://{tag}"))
                .route("/svc")
                .set("poll", "\"1s\""),
        )
        .admin()
        .start();
    assert_eq!(service_json(&host, "svc")["digest"], first.as_str());

    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
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

    // The tag moves: within the poll interval plus a compile, the new
    // version answers.
    let moved = wkg_push(&registry.addr, &tag, ECHO);
    let started = std::time::Instant::now();
    let live = poll_until(Duration::from_secs(30), || {
        host.send(get("/svc")).text().starts_with('{')
    });
    assert!(live.is_some(), "the moved tag was never served");
    eprintln!("the moved tag answered after {:?}", started.elapsed());
    assert_eq!(service_json(&host, "svc")["digest"], moved.as_str());

    // A broken version on the tag: refused, the running one keeps serving,
    // and the error is on /admin/services.
    push_raw(&tag, b"\0asm\x0d\0\x01\0 not a component");
    let refused = poll_until(Duration::from_secs(30), || {
        service_json(&host, "svc")["last_reload_error"]
            .as_str()
            .is_some_and(|e| e.contains("field `component`"))
    });
    assert!(refused.is_some(), "{}", service_json(&host, "svc"));
    std::thread::sleep(Duration::from_secs(2));
    assert!(host.send(get("/svc")).text().starts_with('{'), "echo still");
    assert_eq!(service_json(&host, "svc")["digest"], moved.as_str());

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
    // One reload brought the new version; the broken digest was tried once.
    let reloads = host.metric(r#"wasmhost_reloads_total{result="error"}"#);
    assert!(
        reloads <= 2.0,
        "the broken digest is not retried every poll: {reloads}"
    );
}
