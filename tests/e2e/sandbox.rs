//! SPEC "Sandbox": declared env only, read-only preopens, no sockets,
//! outbound HTTP only to `allowed_outbound_hosts`.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::support::*;

fn sandbox(app: TestApp, extra: &[(&str, &str)]) -> Host {
    let mut svc = Svc::new("sandbox", SANDBOX).route("/");
    for (key, value) in extra {
        svc = svc.set(key, value);
    }
    app.service(svc).start()
}

#[test]
pub(crate) fn the_guest_sees_its_declared_env_and_nothing_of_the_hosts() {
    let host = sandbox(
        TestApp::new().env("HOST_SECRET", "leaked"),
        &[("env", r#"{ GREETING = "hi", MODE = "test" }"#)],
    );
    let env = host.send(get("/env")).json();
    assert_eq!(env["GREETING"], "hi");
    assert_eq!(env["MODE"], "test");
    let keys: Vec<_> = env.as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys, ["GREETING", "MODE"], "only the declared env: {env}");
}

#[test]
fn files_are_readable_read_only_and_confined_to_the_preopen() {
    let app = TestApp::new();
    let public = app.dir().join("public");
    std::fs::create_dir(&public).unwrap();
    std::fs::write(public.join("x.txt"), "static content").unwrap();
    std::fs::write(app.dir().join("secret.txt"), "outside").unwrap();
    let host = sandbox(app, &[("files", r#"{ "/static" = "./public" }"#)]);

    let read = host.send(get("/read?path=/static/x.txt"));
    assert_eq!(read.status, 200, "{}", read.text());
    assert_eq!(read.text(), "static content");

    let write = host.send(get("/write?path=/static/new.txt"));
    assert_ne!(
        write.status,
        200,
        "writing must be refused: {}",
        write.text()
    );
    assert!(!public.join("new.txt").exists());

    let escape = host.send(get("/read?path=/static/../secret.txt"));
    assert_ne!(escape.status, 200, "{}", escape.text());
    assert!(!escape.text().contains("outside"));
}

#[test]
fn without_files_the_guest_sees_no_filesystem() {
    let host = sandbox(TestApp::new(), &[]);
    let resp = host.send(get("/read?path=/etc/passwd"));
    assert_ne!(resp.status, 200);
    assert!(!resp.text().contains("root:"));
}

#[test]
fn sockets_are_denied() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let host = sandbox(TestApp::new(), &[]);
    let resp = host.send(get(&format!("/socket?addr={addr}")));
    assert_ne!(resp.status, 200, "{}", resp.text());
    listener.set_nonblocking(true).unwrap();
    assert!(
        listener.accept().is_err(),
        "the guest must not have connected"
    );
}

/// A real upstream on loopback that counts the requests it sees.
struct Upstream {
    addr: SocketAddr,
    hits: Arc<AtomicUsize>,
}

impl Upstream {
    fn start() -> Upstream {
        Upstream::answering(
            "HTTP/1.1 200 OK\r\ncontent-length: 11\r\nconnection: close\r\n\r\nupstream ok",
        )
    }

    /// An upstream that answers every request with `answer` (a whole
    /// HTTP/1.1 response).
    fn answering(answer: &str) -> Upstream {
        let answer = answer.to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { break };
                counter.fetch_add(1, Ordering::SeqCst);
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                let _ = stream.write_all(answer.as_bytes());
            }
        });
        Upstream { addr, hits }
    }
}

#[test]
fn outbound_http_to_an_allowed_host_succeeds() {
    let upstream = Upstream::start();
    let host = sandbox(
        TestApp::new(),
        &[(
            "allowed_outbound_hosts",
            &format!("[\"http://{}\"]", upstream.addr),
        )],
    );
    let resp = host.send(get(&format!("/outbound?url=http://{}/x", upstream.addr)));
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.json()["body"], "upstream ok");
    assert_eq!(upstream.hits.load(Ordering::SeqCst), 1);
}

#[test]
fn outbound_http_to_a_host_not_allowed_is_refused_and_never_sent() {
    let upstream = Upstream::start();
    let allowed = Upstream::start();
    let host = sandbox(
        TestApp::new(),
        &[(
            "allowed_outbound_hosts",
            &format!("[\"http://{}\"]", allowed.addr),
        )],
    );
    let denied = [
        format!("http://{}/x", upstream.addr),
        format!("http://localhost:{}/x", upstream.addr.port()),
    ];
    for url in denied {
        let resp = host.send(
            get(&format!("/outbound?url={url}"))
                // A client header must not widen the policy.
                .header("x-forwarded-host", &allowed.addr.to_string()),
        );
        assert_ne!(resp.status, 200, "{url}: {}", resp.text());
        assert!(resp.text().contains("Denied"), "{url}: {}", resp.text());
    }
    assert_eq!(upstream.hits.load(Ordering::SeqCst), 0);
    assert_eq!(allowed.hits.load(Ordering::SeqCst), 0);
}

/// Every other spelling of an allowed origin's address is another origin:
/// the allow-list compares names, it never resolves them. A `host` header
/// cannot redirect a request (wasmtime refuses it, and the host checks it
/// against the URI again), and a redirect from an allowed upstream to a
/// denied one is checked like any request.
#[test]
fn outbound_http_to_a_denied_host_is_refused_in_every_spelling() {
    let denied = Upstream::start();
    let port = denied.addr.port();
    let redirecting = Upstream::answering(&format!(
        "HTTP/1.1 302 Found\r\nlocation: http://127.0.0.1:{port}/secret\r\n\
         content-length: 0\r\nconnection: close\r\n\r\n"
    ));
    let allowed = Upstream::start();
    let host = sandbox(
        TestApp::new(),
        &[(
            "allowed_outbound_hosts",
            &format!(
                "[\"http://{}\", \"http://{}\", \"http://localhost:1\"]",
                allowed.addr, redirecting.addr
            ),
        )],
    );
    let spellings = [
        format!("http://localhost:{port}/"),
        format!("http://LOCALHOST:{port}/"),
        format!("http://[::1]:{port}/"),
        format!("http://[::ffff:127.0.0.1]:{port}/"),
        format!("http://127.1:{port}/"),
        format!("http://2130706433:{port}/"),
        format!("http://0x7f000001:{port}/"),
        format!("http://127.0.0.1.:{port}/"),
        format!("http://0.0.0.0:{port}/"),
        format!("http://{}@127.0.0.1:{port}/", allowed.addr),
        format!("https://127.0.0.1:{port}/"),
    ];
    for url in &spellings {
        let resp = host.send(get(&format!("/outbound?url={url}")));
        assert_ne!(resp.status, 200, "{url}: {}", resp.text());
    }
    // The allowed origin with a `host` header naming the denied one.
    let resp = host.send(get(&format!(
        "/outbound?url=http://{}/&host=127.0.0.1:{port}",
        allowed.addr
    )));
    assert_eq!(resp.status, 502, "{}", resp.text());
    assert!(resp.text().contains("Forbidden"), "{}", resp.text());
    // The denied origin with a `host` header naming the allowed one.
    let resp = host.send(get(&format!(
        "/outbound?url=http://127.0.0.1:{port}/&host={}",
        allowed.addr
    )));
    assert_eq!(resp.status, 502, "{}", resp.text());
    // An allowed upstream redirecting to the denied one.
    let resp = host.send(get(&format!(
        "/outbound?url=http://{}/&follow=1",
        redirecting.addr
    )));
    assert_eq!(resp.status, 502, "{}", resp.text());
    assert!(resp.text().contains("Denied"), "{}", resp.text());
    assert_eq!(redirecting.hits.load(Ordering::SeqCst), 1);

    assert_eq!(
        denied.hits.load(Ordering::SeqCst),
        0,
        "a denied request was sent"
    );
    assert_eq!(allowed.hits.load(Ordering::SeqCst), 0);
}

#[test]
fn no_outbound_http_by_default() {
    let upstream = Upstream::start();
    let host = sandbox(TestApp::new(), &[]);
    let resp = host.send(get(&format!("/outbound?url=http://{}/x", upstream.addr)));
    assert_ne!(resp.status, 200);
    assert_eq!(upstream.hits.load(Ordering::SeqCst), 0);
}
