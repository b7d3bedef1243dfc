//! Replicas behind a load balancer, on one machine: three hosts on
//! 127.0.0.2, .3 and .4 sharing one manifest folder, behind HAProxy (run in
//! the foreground by the test, health-checking `/readyz` on each admin
//! port), under steady load through HAProxy while the test
//!
//! 1. rolls a restart (SIGTERM, exit 0, start again, one replica at a time),
//! 2. SIGKILLs a replica,
//! 3. changes the shared manifest the way a Kubernetes ConfigMap does (a
//!    `..data` symlink swap).

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::support::*;

/// A free port on `ip` (bound and released).
fn free_addr(ip: &str) -> SocketAddr {
    TcpListener::bind((ip, 0)).unwrap().local_addr().unwrap()
}

/// A manifest folder laid out like a mounted ConfigMap: `manifest.toml` →
/// `..data/manifest.toml`, `..data` → the current version's folder.
struct ConfigMapDir {
    dir: tempfile::TempDir,
    version: u32,
}

impl ConfigMapDir {
    fn new(greeting: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("..data/manifest.toml", dir.path().join("manifest.toml"))
            .unwrap();
        let mut this = ConfigMapDir { dir, version: 0 };
        this.publish(greeting);
        this
    }

    fn manifest(&self) -> PathBuf {
        self.dir.path().join("manifest.toml")
    }

    /// Writes a new version and swaps `..data` to it atomically, as the
    /// kubelet does.
    fn publish(&mut self, greeting: &str) {
        self.version += 1;
        let version = format!("..v{}", self.version);
        let folder = self.dir.path().join(&version);
        std::fs::create_dir(&folder).unwrap();
        std::fs::write(
            folder.join("manifest.toml"),
            format!(
                "[host]\nwatch = true\ncache_dir = {cache}\nshutdown_grace = \"5s\"\n\n\
                 [[service]]\nname = \"hello\"\ncomponent = {hello}\nroute = \"/\"\n\
                 env = {{ GREETING = {greeting} }}\n",
                cache = toml_str(SHARED_CACHE),
                hello = toml_str(HELLO),
                greeting = toml_str(greeting),
            ),
        )
        .unwrap();
        let tmp = self.dir.path().join("..data_tmp");
        std::os::unix::fs::symlink(&version, &tmp).unwrap();
        std::fs::rename(&tmp, self.dir.path().join("..data")).unwrap();
    }
}

struct Replica {
    data: SocketAddr,
    admin: SocketAddr,
    host: Option<Host>,
}

impl Replica {
    fn start(&mut self, manifest: &Path) {
        self.host = Some(Host::start(StartOptions {
            manifest,
            args: vec![
                "--listen".into(),
                self.data.to_string(),
                "--admin".into(),
                self.admin.to_string(),
            ],
            env: Vec::new(),
        }));
    }

    fn host(&mut self) -> &mut Host {
        self.host.as_mut().expect("the replica runs")
    }

    /// Waits until the replica has answered a request through HAProxy:
    /// HAProxy sees it ready. (Call it on a freshly started replica.)
    fn wait_until_in_rotation(&mut self) {
        self.host().wait_for_metric(
            r#"wasmhost_requests_total{service="hello",status="2xx"}"#,
            Duration::from_secs(20),
            |served| served >= 1.0,
        );
    }
}

/// HAProxy in the foreground, in front of `replicas`.
pub(crate) struct Haproxy {
    child: Child,
    pub(crate) addr: SocketAddr,
    /// The statistics page, which shows what HAProxy thinks of each server.
    stats: SocketAddr,
    _config: tempfile::NamedTempFile,
}

impl Haproxy {
    fn start(replicas: &[Replica]) -> Haproxy {
        let backends: Vec<(SocketAddr, SocketAddr)> =
            replicas.iter().map(|r| (r.data, r.admin)).collect();
        Haproxy::start_for(&backends)
    }

    /// HAProxy in front of hosts given as (data, admin) addresses; it
    /// serves once `/` answers 200 through it.
    pub(crate) fn start_for(backends: &[(SocketAddr, SocketAddr)]) -> Haproxy {
        let (addr, stats) = (free_addr("127.0.0.1"), free_addr("127.0.0.1"));
        let servers: String = backends
            .iter()
            .enumerate()
            .map(|(i, (data, admin))| {
                format!("    server r{i} {data} check port {}\n", admin.port())
            })
            .collect();
        // Health checks every 100 ms on `/readyz` (503 while draining);
        // failed connections and empty responses are retried on another
        // replica (GETs are idempotent).
        let config = format!(
            "global\n    maxconn 4096\n\n\
             defaults\n    mode http\n    timeout connect 1s\n    timeout client 30s\n\
             \x20   timeout server 30s\n    retries 3\n    option redispatch 1\n\
             \x20   retry-on all-retryable-errors\n\n\
             listen stats\n    bind {stats}\n    stats enable\n    stats uri /stats\n\n\
             frontend web\n    bind {addr}\n    default_backend replicas\n\n\
             backend replicas\n    balance roundrobin\n    option httpchk GET /readyz\n\
             \x20   http-check expect status 200\n\
             \x20   default-server inter 100ms fall 1 rise 1\n{servers}"
        );
        let mut file = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut file, config.as_bytes()).unwrap();
        let child = Command::new("haproxy")
            .args(["-db", "-f"])
            .arg(file.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("running haproxy (Debian package `haproxy`; scripts/test.sh installs it)");
        let haproxy = Haproxy {
            child,
            addr,
            stats,
            _config: file,
        };
        haproxy.wait_until_serving();
        haproxy
    }

    fn wait_until_serving(&self) {
        let serving = poll_until(Duration::from_secs(20), || {
            get("/").send(self.addr).is_ok_and(|r| r.status == 200)
        });
        assert!(serving.is_some(), "haproxy never served a 200");
    }

    /// HAProxy's health-check status of `server` (`UP`, `DOWN`, ...), from
    /// its CSV statistics.
    fn status(&self, server: &str) -> Option<String> {
        let csv = get("/stats;csv").send(self.stats).ok()?.text();
        let mut lines = csv.lines();
        let header: Vec<&str> = lines.next()?.trim_start_matches("# ").split(',').collect();
        let column = header.iter().position(|name| *name == "status")?;
        lines
            .map(|line| line.split(',').collect::<Vec<_>>())
            .find(|fields| fields[..2] == ["replicas", server])
            .map(|fields| fields[column].to_owned())
    }

    /// Waits until HAProxy's health checks mark `server` with `status`.
    fn wait_for_status(&self, server: &str, status: &str) {
        let mut last = None;
        let seen = poll_until(Duration::from_secs(20), || {
            last = self.status(server);
            last.as_deref().is_some_and(|s| s.starts_with(status))
        });
        assert!(
            seen.is_some(),
            "HAProxy shows {server} as {last:?}, not {status}"
        );
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Requests sent through HAProxy by a few client threads until stopped,
/// counting the answers that were not a 200 with a known greeting.
struct Load {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    errors: Arc<std::sync::Mutex<Vec<String>>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start(addr: SocketAddr, clients: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicU64::new(0));
        let errors = Arc::new(std::sync::Mutex::new(Vec::new()));
        let threads = (0..clients)
            .map(|_| {
                let (stop, sent, failed, errors) =
                    (stop.clone(), sent.clone(), failed.clone(), errors.clone());
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let outcome = get("/").timeout(Duration::from_secs(10)).send(addr);
                        sent.fetch_add(1, Ordering::Relaxed);
                        let error = match outcome {
                            Ok(resp) if resp.status == 200 && resp.text().starts_with('v') => None,
                            Ok(resp) => Some(format!("{} {}", resp.status, resp.text())),
                            Err(err) => Some(err),
                        };
                        if let Some(error) = error {
                            failed.fetch_add(1, Ordering::Relaxed);
                            errors.lock().unwrap().push(error);
                        }
                        // A steady load, not a flood: a new connection per
                        // request must not run the machine out of ports.
                        std::thread::sleep(Duration::from_millis(1));
                    }
                })
            })
            .collect();
        Load {
            stop,
            sent,
            failed,
            errors,
            threads,
        }
    }

    /// Requests sent since the last [`Load::take`].
    fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// Waits until `more` requests have been sent from now on.
    fn wait_for_more(&self, more: u64) {
        let target = self.sent() + more;
        let done = poll_until(Duration::from_secs(20), || self.sent() >= target);
        assert!(
            done.is_some(),
            "the load stalled at {} requests",
            self.sent()
        );
    }

    /// Requests sent and failed so far (with the first few errors), and
    /// resets the counts.
    fn take(&self) -> (u64, u64, Vec<String>) {
        let mut errors = std::mem::take(&mut *self.errors.lock().unwrap());
        errors.truncate(5);
        (
            self.sent.swap(0, Ordering::Relaxed),
            self.failed.swap(0, Ordering::Relaxed),
            errors,
        )
    }

    fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads {
            thread.join().unwrap();
        }
    }
}

#[test]
fn replicas_behind_haproxy_survive_restarts_a_kill_and_a_configmap_swap() {
    let mut config = ConfigMapDir::new("v1");
    let mut replicas: Vec<Replica> = ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
        .iter()
        .map(|ip| Replica {
            data: free_addr(ip),
            admin: free_addr(ip),
            host: None,
        })
        .collect();
    for replica in &mut replicas {
        replica.start(&config.manifest());
    }
    let haproxy = Haproxy::start(&replicas);
    let load = Load::start(haproxy.addr, 4);
    load.wait_for_more(50);
    let (warmup, failed, errors) = load.take();
    assert!(warmup > 0 && failed == 0, "{warmup} sent, {errors:?}");

    // 1. Rolling restart: zero failed requests.
    for replica in &mut replicas {
        let host = replica.host();
        host.signal("TERM");
        let status = host
            .wait_exit(Duration::from_secs(20))
            .expect("drains and exits");
        assert!(status.success(), "{status:?}");
        replica.start(&config.manifest());
        // HAProxy sees it ready again, and the load runs on all three for
        // a while, before the next one goes.
        replica.wait_until_in_rotation();
        load.wait_for_more(50);
    }
    let (sent, failed, errors) = load.take();
    eprintln!("rolling restart: {sent} requests, {failed} failed");
    assert!(sent > 100, "the load kept running: {sent}");
    assert_eq!(failed, 0, "rolling restart: {errors:?}");

    // 2. SIGKILL one replica: HAProxy's retries keep failures <= 0.1%,
    // until its health checks take the replica out, and after.
    replicas[1].host().signal("KILL");
    haproxy.wait_for_status("r1", "DOWN");
    load.wait_for_more(200);
    let (sent, failed, errors) = load.take();
    eprintln!("SIGKILL: {sent} requests, {failed} failed");
    assert!(sent > 100, "the load kept running: {sent}");
    assert!(
        failed * 1000 <= sent,
        "SIGKILL: {failed} of {sent} failed: {errors:?}"
    );
    replicas[1].host().wait_exit(Duration::from_secs(5));
    replicas[1].start(&config.manifest());
    replicas[1].wait_until_in_rotation();
    load.take();

    // 3. The shared manifest changes by a `..data` swap: every replica
    // serves the new version within 2 s, with zero failed requests.
    config.publish("v2");
    let swapped = Instant::now();
    for replica in &replicas {
        let on_v2 = poll_until(
            Duration::from_secs(2).saturating_sub(swapped.elapsed()),
            || {
                let resp = get("/").send(replica.data).expect("the replica answers");
                assert!(["v1", "v2"].contains(&&*resp.text()), "{}", resp.text());
                resp.text() == "v2"
            },
        );
        assert!(
            on_v2.is_some(),
            "{} still serves v1 after 2 s",
            replica.data
        );
    }
    eprintln!(
        "manifest swap: every replica on v2 after {:?}",
        swapped.elapsed()
    );
    // The load keeps running on v2 for a while.
    load.wait_for_more(100);
    let (sent, failed, errors) = load.take();
    eprintln!("manifest swap: {sent} requests, {failed} failed");
    assert_eq!(failed, 0, "manifest swap: {errors:?}");
    load.stop();
    drop(haproxy);
    for replica in &mut replicas {
        replica.host().signal("TERM");
        let status = replica.host().wait_exit(Duration::from_secs(20));
        assert!(status.is_some_and(|s| s.success()), "{status:?}");
    }
}
