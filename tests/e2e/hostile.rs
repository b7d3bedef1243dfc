//! Hostile guests: every behaviour of the `hostile` guest ends with its
//! documented status, the host never panics, its descriptors come back,
//! and another service keeps answering meanwhile. Also the pooling
//! allocator's slot reuse: a later instance never sees an earlier one's
//! data. (How fast the neighbour answers and how much memory the host
//! keeps are load-sensitive measurements: `stress.rs`.)

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::support::*;

/// A listener that accepts connections and never reads from them: an
/// upstream whose request body is never consumed.
pub(crate) struct BlackHole {
    pub(crate) addr: SocketAddr,
}

impl BlackHole {
    pub(crate) fn start() -> BlackHole {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for stream in listener.incoming() {
                held.push(stream);
            }
        });
        BlackHole { addr }
    }
}

/// `hostile` with tight limits, the same guest with only a wall clock, and
/// a well-behaved neighbour.
pub(crate) fn hostile_host(upstream: SocketAddr) -> Host {
    TestApp::new()
        .service(
            Svc::new("hostile", HOSTILE)
                .route("/h")
                .set("fuel", "100_000_000")
                .set("memory", "\"32MiB\"")
                .set("timeout", "\"2s\"")
                .set("max_request_body", "\"1MiB\"")
                .set(
                    "allowed_outbound_hosts",
                    &format!("[\"http://{upstream}\"]"),
                ),
        )
        .service(
            Svc::new("epoch", HOSTILE)
                .route("/e")
                .set("fuel", "\"unlimited\"")
                .set("timeout", "\"500ms\""),
        )
        .service(Svc::new("hello", HELLO).route("/hello"))
        .admin()
        .start()
}

/// Every behaviour that ends with a host-made answer, and that answer.
pub(crate) fn documented(upstream: SocketAddr) -> Vec<(String, u16, &'static str)> {
    [
        ("/h/spin", 500, "fuel_exhausted"),
        ("/e/spin", 504, "timeout"),
        ("/h/trap", 500, "trap"),
        ("/h/stack-overflow", 500, "trap"),
        ("/h/alloc?mib=64", 500, "memory_exhausted"),
        ("/h/memory-grow", 500, "memory_exhausted"),
        ("/h/handles", 500, "trap"),
        ("/h/fields-flood", 502, "bad_response"),
        ("/h/fields-flood?n=100000", 500, "trap"),
        ("/h/huge-header?kib=256", 500, "trap"),
        ("/h/random?mib=64", 500, "trap"),
        ("/h/hostcall?mib=16", 500, "trap"),
    ]
    .into_iter()
    .map(|(path, status, kind)| (path.to_owned(), status, kind))
    .chain([(
        format!("/h/outbound-unread?url=http://{upstream}/sink"),
        504,
        "timeout",
    )])
    .collect()
}

#[test]
fn every_hostile_behaviour_ends_with_its_documented_status() {
    let upstream = BlackHole::start();
    let host = hostile_host(upstream.addr);
    for (path, status, kind) in documented(upstream.addr) {
        let resp = host.send(get(&path));
        assert_host_error(&resp, status, kind);
        assert_eq!(host.send(get("/hello")).status, 200, "after {path}");
    }
    // The same guest within the limits: the limits are not simply "refuse".
    for (path, body) in [
        ("/h/huge-header?kib=8", None),
        ("/h/random?mib=1", Some("got 1048576 random bytes")),
        ("/h/alloc?mib=8", Some("allocated 8 MiB")),
        ("/h/hostcall?mib=1", None),
    ] {
        let resp = host.send(get(path));
        assert_eq!(resp.status, 200, "{path}: {}", resp.text());
        if let Some(body) = body {
            assert_eq!(resp.text(), body);
        }
    }
    // A response that already started cannot turn into an error: the
    // connection is aborted, never a clean, complete-looking 200.
    // (`timed out` rather than `aborted` would mean the host hung.)
    for path in ["/h/trap-after-head", "/h/stream-forever"] {
        let resp = host.try_send(get(path).timeout(Duration::from_secs(10)));
        let err = resp.expect_err(&format!("{path}: a clean response"));
        assert!(err.starts_with("aborted"), "{path}: {err}");
    }
    assert_eq!(
        host.metric(
            "wasmhost_limit_exceeded_total{service=\"hostile\",limit=\"response_headers\"}"
        ),
        1.0
    );
    host.assert_no_host_panic();
}

/// A client that sends its body forever: the timeout ends it, and the
/// host buffers none of it beyond a chunk.
#[test]
fn a_guest_reading_an_endless_request_body_is_ended_by_the_timeout() {
    let host = TestApp::new()
        .service(
            Svc::new("hostile", HOSTILE)
                .route("/")
                .set("timeout", "\"1s\"")
                .set("max_request_body", "\"1GiB\""),
        )
        .start();
    let mut stream = TcpStream::connect(host.addr).unwrap();
    stream
        .write_all(b"POST /read-body HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n")
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let mut stream = stream.try_clone().unwrap();
        let stop = stop.clone();
        std::thread::spawn(move || {
            let chunk = format!("1000\r\n{}\r\n", "b".repeat(0x1000));
            while !stop.load(Ordering::Relaxed) && stream.write_all(chunk.as_bytes()).is_ok() {
                // Kept on purpose: an endless, steady client (800 KiB/s),
                // not a flood; outlasting the 1 s timeout is the subject.
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut answer = vec![0; 4096];
    let n = stream.read(&mut answer).unwrap();
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    let head = String::from_utf8_lossy(&answer[..n]);
    assert!(head.starts_with("HTTP/1.1 504"), "{head}");
    assert!(head.contains("wasmhost-error: timeout"), "{head}");
    host.assert_no_host_panic();
}

/// Hostile requests sent by a few client threads, one after the other,
/// cycling through the documented behaviours until stopped. Each must end
/// with its documented status.
pub(crate) struct Attack {
    stop: Arc<AtomicBool>,
    answered: Arc<AtomicUsize>,
    threads: Vec<JoinHandle<()>>,
}

impl Attack {
    pub(crate) fn start(host: &Host, behaviours: &[(String, u16, &'static str)]) -> Attack {
        let stop = Arc::new(AtomicBool::new(false));
        let answered = Arc::new(AtomicUsize::new(0));
        let threads = (0..2)
            .map(|worker| {
                let (addr, stop, answered) = (host.addr, stop.clone(), answered.clone());
                let behaviours = behaviours.to_vec();
                std::thread::spawn(move || {
                    for (path, status, _) in behaviours.iter().cycle().skip(worker * 5) {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        let resp = get(path).send(addr).expect("a host-made answer");
                        assert_eq!(resp.status, *status, "{path}");
                        answered.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        Attack {
            stop,
            answered,
            threads,
        }
    }

    /// Whether every client still runs (one that got a wrong status has
    /// panicked; [`Attack::stop`] passes its panic on).
    pub(crate) fn running(&self) -> bool {
        self.threads.iter().all(|thread| !thread.is_finished())
    }

    /// Hostile requests answered so far.
    pub(crate) fn answered(&self) -> usize {
        self.answered.load(Ordering::Relaxed)
    }

    /// Stops the clients (each finishes its request) and returns how many
    /// hostile requests were answered.
    pub(crate) fn stop(self) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads {
            thread.join().unwrap();
        }
        self.answered.load(Ordering::Relaxed)
    }
}

/// Waits until no request of `hostile_host`'s services is in flight: the
/// work each does after its response (metrics, dropping the store) is done.
pub(crate) fn wait_until_idle(host: &Host) {
    for service in ["hostile", "epoch", "hello"] {
        host.wait_for_metric(
            &format!("wasmhost_requests_in_flight{{service=\"{service}\"}}"),
            EVENT_TIMEOUT,
            |n| n == 0.0,
        );
    }
}

/// Hostile guests running all the time: every one of their requests ends
/// with its documented status, a neighbour keeps answering meanwhile, and
/// the host's open descriptors come back to where they were.
#[test]
fn hostile_guests_under_load_keep_their_statuses_the_neighbour_and_the_descriptors() {
    let upstream = BlackHole::start();
    let host = hostile_host(upstream.addr);
    let behaviours = documented(upstream.addr);
    // Warm up: every behaviour once, so that lazily built pools and
    // caches exist before the baseline.
    for (path, _, _) in &behaviours {
        let _ = host.try_send(get(path));
    }
    wait_until_idle(&host);
    let fds_before = host.open_fds();

    let attack = Attack::start(&host, &behaviours);
    // The neighbour answers while the hostile requests run: two full
    // rounds of every behaviour.
    let rounds = 2 * behaviours.len();
    let mut neighbour = 0;
    while attack.running() && attack.answered() < rounds {
        assert_eq!(host.send(get("/hello")).status, 200);
        neighbour += 1;
    }
    let sent = attack.stop();
    assert!(sent >= rounds, "only {sent} hostile requests ran");
    assert!(neighbour > 0, "the neighbour answered during the attack");
    eprintln!("{sent} hostile requests, {neighbour} neighbour requests meanwhile");

    wait_until_idle(&host);
    let mut fds_after = host.open_fds();
    // Connections close asynchronously after their last answer.
    host.wait_until(EVENT_TIMEOUT, "the descriptors to come back", || {
        fds_after = host.open_fds();
        fds_after <= fds_before + 4
    });
    eprintln!("descriptors {fds_before} -> {fds_after}");
    host.assert_no_host_panic();
}

/// The pooling allocator reuses instance slots with memory kept resident:
/// a secret one instance leaves in its memory (heap and freshly grown
/// pages) is never visible to the instances that reuse the slot.
#[test]
fn a_secret_left_in_memory_never_reaches_a_later_instance() {
    let host = TestApp::new()
        .service(
            Svc::new("hostile", HOSTILE)
                .route("/")
                .set("max_concurrency", "1"),
        )
        .start();
    for seed in 1..=5 {
        let written = host.send(get(&format!("/secret-write?seed={seed}")));
        assert_eq!(written.status, 200);
        // The probe works: the writer sees both of its copies.
        assert_eq!(written.text(), "secret written, visible 2");
        for _ in 0..20 {
            let scan = host.send(get(&format!("/secret-scan?seed={seed}")));
            assert_eq!(scan.text(), "found 0", "seed {seed}");
        }
    }
}
