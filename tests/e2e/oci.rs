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
        Registry::start_on(dir, port, "")
    }

    /// A registry that asks for the credentials in `dir/htpasswd`.
    fn start_with_auth(dir: &Path) -> Registry {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let auth = format!(
            "auth:\n  htpasswd:\n    realm: test\n    path: {}\n",
            dir.join("htpasswd").display()
        );
        Registry::start_on(dir, port, &auth)
    }

    fn start_on(dir: &Path, port: u16, extra: &str) -> Registry {
        let config = dir.join("registry.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\n\
                 storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
                 http:\n  addr: 127.0.0.1:{port}\n{extra}",
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
            (answer.starts_with("HTTP/1.1 200") || answer.starts_with("HTTP/1.1 401")).then_some(())
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

    let load = SteadyLoad::start(host.addr, "/svc", 4, None);

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
    assert!(host.send(get("/svc")).text().starts_with('{'), "echo still");
    assert_eq!(service_json(&host, "svc")["digest"], moved.as_str());

    // The registry goes away: polls fail, the service keeps serving, and
    // /admin/services says why.
    drop(registry);
    let noted = poll_until(Duration::from_secs(15), || {
        service_json(&host, "svc")["last_pull_error"]
            .as_str()
            .is_some_and(|e| e.starts_with("polling:"))
    });
    assert!(noted.is_some(), "{}", service_json(&host, "svc"));

    load.assert_none_failed(100);
    // One reload brought the new version; the broken digest was tried once.
    let reloads = host.metric(r#"wasmhost_reloads_total{result="error"}"#);
    assert!(
        reloads <= 2.0,
        "the broken digest is not retried every poll: {reloads}"
    );
}

/// A test registry client speaking plain HTTP, with its runtime.
fn raw_client() -> (tokio::runtime::Runtime, oci_client::Client) {
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
    (runtime, client)
}

/// `wasmhost check` on a manifest whose one service is `component`: it must
/// fail, naming the service and field, and say `says`.
fn refused(dir: &Path, extra_host: &[(&str, &str)], component: &str, says: &str) {
    let mut app =
        TestApp::new().host_key("cache_dir", &toml_str(dir.join("cache").to_str().unwrap()));
    for (key, value) in extra_host {
        app = app.host_key(key, value);
    }
    let app = app.service(Svc::new("bad", component).route("/"));
    let output = Command::new(env!("CARGO_BIN_EXE_wasmhost"))
        .arg("check")
        .arg(app.write())
        .env_remove("DOCKER_CONFIG")
        .env_remove("REGISTRY_AUTH_FILE")
        .env("HOME", dir)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&output.stdout) + String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{component}: {said}");
    assert!(
        said.contains("service `bad`") && said.contains("field `component`"),
        "{component}: {said}"
    );
    assert!(
        said.contains(says),
        "{component}: expected `{says}` in: {said}"
    );
    assert!(!said.contains("panicked"), "{said}");
}

/// A fake registry for what a real one never does: a 500, and a blob cut
/// short. Answers `/v2/`, `GET /v2/trunc/manifests/v1` (a valid Wasm
/// artifact manifest) and its blob (declared 1000 bytes, 10 sent).
fn fake_registry() -> String {
    use sha2::Digest as _;
    use std::io::{BufRead, BufReader, Write};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let blob = vec![7u8; 1000];
    let layer = format!("sha256:{:x}", sha2::Sha256::digest(&blob));
    let config = b"{}".to_vec();
    let config_digest = format!("sha256:{:x}", sha2::Sha256::digest(&config));
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.wasm.config.v0+json", "digest": config_digest, "size": 2},
        "layers": [{"mediaType": "application/wasm", "digest": layer, "size": 1000}],
    })
    .to_string();
    let manifest_digest = format!("sha256:{:x}", sha2::Sha256::digest(manifest.as_bytes()));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { break };
            let (manifest, manifest_digest) = (manifest.clone(), manifest_digest.clone());
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    return;
                }
                loop {
                    let mut header = String::new();
                    if reader.read_line(&mut header).map_or(true, |n| n <= 2) {
                        break;
                    }
                }
                let path = line
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or_default()
                    .to_owned();
                let head = line.starts_with("HEAD");
                if path.starts_with("/v2/hang/") {
                    // Never answers; reads until the client hangs up.
                    let _ = std::io::copy(&mut reader, &mut std::io::sink());
                    return;
                }
                let answer = if path == "/v2/" {
                    "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}".to_owned()
                } else if path.starts_with("/v2/down/") {
                    "HTTP/1.1 500 Internal Server Error\r\ncontent-length: 4\r\nconnection: close\r\n\r\noops"
                    .to_owned()
                } else if path == "/v2/trunc/manifests/v1" {
                    format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/vnd.oci.image.manifest.v1+json\r\n\
                     docker-content-digest: {manifest_digest}\r\ncontent-length: {}\r\n\
                     connection: close\r\n\r\n{}",
                        manifest.len(),
                        if head { "" } else { manifest.as_str() }
                    )
                } else if path.starts_with("/v2/trunc/blobs/") {
                    // Declares the whole blob, sends a tenth of it, hangs up.
                    "HTTP/1.1 200 OK\r\ncontent-length: 1000\r\nconnection: close\r\n\r\n\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07"
                    .to_owned()
                } else {
                    "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                        .to_owned()
                };
                let _ = stream.write_all(answer.as_bytes());
            });
        }
    });
    addr
}

#[test]
fn bad_artifacts_and_registry_answers_are_refused_with_their_reason_and_credentials_come_from_the_auth_file()
 {
    use sha2::Digest as _;
    let storage = tempfile::tempdir().unwrap();
    let registry = Registry::start(storage.path());
    let r = registry.addr.clone();
    let insecure = format!("[{}]", toml_str(&r));
    let plain = [("insecure_registries", insecure.as_str())];
    let (runtime, client) = raw_client();
    let auth = oci_client::secrets::RegistryAuth::Anonymous;

    // Not found.
    refused(
        storage.path(),
        &plain,
        &format!("oci://{r}/none/here:v1"),
        "manifest unknown",
    );

    // A container image, not a Wasm artifact.
    let reference: oci_client::Reference = format!("{r}/bad/image:v1").parse().unwrap();
    runtime
        .block_on(client.push(
            &reference,
            &[oci_client::client::ImageLayer::new(
                b"layer".to_vec(),
                "application/vnd.oci.image.layer.v1.tar".into(),
                None,
            )],
            oci_client::client::Config::new(
                b"{}".to_vec(),
                "application/vnd.oci.image.config.v1+json".into(),
                None,
            ),
            &auth,
            None,
        ))
        .unwrap();
    refused(
        storage.path(),
        &plain,
        &format!("oci://{reference}"),
        "is not a Wasm component artifact",
    );

    // Over the size limit.
    let hello_digest = wkg_push(&r, &format!("{r}/bad/big:v1"), HELLO);
    refused(
        storage.path(),
        &[plain[0], ("max_artifact_size", "\"1KiB\"")],
        &format!("oci://{r}/bad/big:v1"),
        "max_artifact_size",
    );

    // A manifest list with no wasm entry.
    let hello_ref: oci_client::Reference = format!("{r}/bad/big@{hello_digest}").parse().unwrap();
    let (raw, _) = runtime
        .block_on(client.pull_manifest_raw(
            &hello_ref,
            &auth,
            &["application/vnd.oci.image.manifest.v1+json"],
        ))
        .unwrap();
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": hello_digest,
            "size": raw.len(),
            "platform": {"architecture": "amd64", "os": "linux"},
        }],
    });
    let list: oci_client::Reference = format!("{r}/bad/big:list").parse().unwrap();
    runtime
        .block_on(client.push_manifest_raw(
            &list,
            index.to_string().into_bytes(),
            http::HeaderValue::from_static("application/vnd.oci.image.index.v1+json"),
        ))
        .unwrap();
    refused(
        storage.path(),
        &plain,
        &format!("oci://{list}"),
        "no wasm entry",
    );

    // Bytes that are not what the manifest names: the registry's stored
    // blob is overwritten (same length, other content).
    let echo_layer = format!("{:x}", sha2::Sha256::digest(std::fs::read(ECHO).unwrap()));
    wkg_push(&r, &format!("{r}/bad/tampered:v1"), ECHO);
    let data = storage
        .path()
        .join("storage/docker/registry/v2/blobs/sha256")
        .join(&echo_layer[..2])
        .join(&echo_layer)
        .join("data");
    let len = std::fs::metadata(&data).unwrap().len() as usize;
    std::fs::write(&data, vec![0u8; len]).unwrap();
    refused(
        storage.path(),
        &plain,
        &format!("oci://{r}/bad/tampered:v1"),
        "digest mismatch",
    );
    assert!(
        !storage
            .path()
            .join("cache/oci/blobs/sha256")
            .join(format!("{echo_layer}.wasm"))
            .exists(),
        "nothing unverified enters the cache"
    );

    // HTTPS is the default: a plain-HTTP registry not listed is not reached.
    refused(
        storage.path(),
        &[],
        &format!("oci://{r}/bad/big:v1"),
        "oci://",
    );

    // A 500, and a blob cut short.
    let fake = fake_registry();
    let fake_plain = format!("[{}]", toml_str(&fake));
    let fake_host = [("insecure_registries", fake_plain.as_str())];
    refused(
        storage.path(),
        &fake_host,
        &format!("oci://{fake}/down/x:v1"),
        "500",
    );
    refused(
        storage.path(),
        &fake_host,
        &format!("oci://{fake}/trunc:v1"),
        "of 1000 bytes",
    );
    // A registry that never answers: the pull gives up at `pull_timeout`.
    let started = std::time::Instant::now();
    refused(
        storage.path(),
        &[fake_host[0], ("pull_timeout", "\"1s\"")],
        &format!("oci://{fake}/hang/x:v1"),
        "pull_timeout",
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    drop(registry);

    // A registry that wants credentials: refused without, pulled with the
    // ones an auth file gives (a mounted imagePullSecret).
    let secured = tempfile::tempdir().unwrap();
    std::fs::write(
        secured.path().join("htpasswd"),
        "testuser:$2y$05$8/q2bfRcX74EuxGf0qOcSuhWDQJXrgWiy6Fi73/JM2tKC66qSrLve\n",
    )
    .unwrap();
    let registry = Registry::start_with_auth(secured.path());
    let r = registry.addr.clone();
    let wkg = std::env::var("WKG").unwrap_or_else(|_| "wkg".into());
    let pushed = Command::new(&wkg)
        .args([
            "oci",
            "push",
            "--insecure",
            &r,
            "-u",
            "testuser",
            "-p",
            "testpassword",
        ])
        .arg(format!("{r}/private/hello:v1"))
        .arg(HELLO)
        .output()
        .unwrap();
    assert!(
        pushed.status.success(),
        "{}",
        String::from_utf8_lossy(&pushed.stderr)
    );
    let insecure = format!("[{}]", toml_str(&r));
    let plain = [("insecure_registries", insecure.as_str())];
    refused(
        secured.path(),
        &plain,
        &format!("oci://{r}/private/hello:v1"),
        "401",
    );

    let auth_dir = secured.path().join("docker");
    std::fs::create_dir_all(&auth_dir).unwrap();
    std::fs::write(
        auth_dir.join("config.json"),
        format!(r#"{{"auths":{{"{r}":{{"auth":"dGVzdHVzZXI6dGVzdHBhc3N3b3Jk"}}}}}}"#),
    )
    .unwrap();
    let host = TestApp::new()
        .host_key("insecure_registries", &insecure)
        .host_key(
            "cache_dir",
            &toml_str(secured.path().join("cache").to_str().unwrap()),
        )
        .service(Svc::new("private", &format!("oci://{r}/private/hello:v1")).route("/"))
        .env("DOCKER_CONFIG", auth_dir.to_str().unwrap())
        .admin()
        .start();
    assert!(host.send(get("/")).text().contains("hello"));
    let services = host.admin(get("/admin/services")).text();
    assert!(
        !services.contains("testpassword") && !services.contains("dGVzdHVzZXI6"),
        "{services}"
    );
}

#[test]
fn three_replicas_behind_haproxy_polling_one_tag_converge_on_its_new_digest_with_no_failed_request()
{
    let storage = tempfile::tempdir().unwrap();
    let registry = Registry::start(storage.path());
    let tag = format!("{}/fleet/svc:stable", registry.addr);
    let first = wkg_push(&registry.addr, &tag, HELLO);

    // Three replicas, each with its own cache (as pods have), one manifest
    // each otherwise identical.
    let replicas: Vec<Host> = ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
        .iter()
        .enumerate()
        .map(|(i, ip)| {
            let manifest = storage.path().join(format!("replica{i}.toml"));
            std::fs::write(
                &manifest,
                format!(
                    "[host]\nwatch = false\ncache_dir = {cache}\ninsecure_registries = [{r}]\n\n\
                     [[service]]\nname = \"svc\"\ncomponent = {c}\nroute = \"/\"\npoll = \"1s\"\n",
                    cache = toml_str(storage.path().join(format!("cache{i}")).to_str().unwrap()),
                    r = toml_str(&registry.addr),
                    c = toml_str(&format!("oci://{tag}")),
                ),
            )
            .unwrap();
            let free = |ip: &str| TcpListener::bind((ip, 0)).unwrap().local_addr().unwrap();
            Host::start(StartOptions {
                manifest: &manifest,
                args: vec![
                    "--listen".into(),
                    free(ip).to_string(),
                    "--admin".into(),
                    free(ip).to_string(),
                ],
                env: Vec::new(),
            })
        })
        .collect();
    let backends: Vec<_> = replicas
        .iter()
        .map(|h| (h.addr, h.admin.unwrap()))
        .collect();
    let haproxy = crate::replicas::Haproxy::start_for(&backends);
    for replica in &replicas {
        assert_eq!(service_json(replica, "svc")["digest"], first.as_str());
    }

    let load = SteadyLoad::start(haproxy.addr, "/", 3, Some(Duration::from_millis(1)));

    let moved = wkg_push(&registry.addr, &tag, ECHO);
    let started = std::time::Instant::now();
    let converged = poll_until(Duration::from_secs(30), || {
        replicas
            .iter()
            .all(|r| service_json(r, "svc")["digest"] == moved.as_str())
    });
    assert!(
        converged.is_some(),
        "the replicas did not all move to {moved}"
    );
    eprintln!("three replicas converged after {:?}", started.elapsed());
    // Every answer through the balancer is the new version now.
    for _ in 0..30 {
        let resp = get("/").send(haproxy.addr).unwrap();
        assert!(resp.text().starts_with('{'), "{}", resp.text());
    }

    load.assert_none_failed(100);
}
