//! The real `wasmhost` binary as a child process on port 0. Ports are learnt
//! from the `listening` log event; logs are collected and printed when a
//! test fails.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::client::{Req, Resp};
use super::wait::poll_until;

/// How long a host may take to compile its components and bind.
const START_TIMEOUT: Duration = Duration::from_secs(240);

/// A running `wasmhost serve`.
pub struct Host {
    child: Child,
    /// The data-plane address.
    pub addr: SocketAddr,
    /// The admin-plane address, when one was asked for.
    pub admin: Option<SocketAddr>,
    logs: Arc<(Mutex<Vec<String>>, Condvar)>,
    /// The manifest the host was started with.
    pub manifest: std::path::PathBuf,
    /// Kept alive as long as the host runs (manifest, files).
    pub(crate) _dir: Option<tempfile::TempDir>,
}

/// What `Host::start` needs.
pub struct StartOptions<'a> {
    /// The manifest path.
    pub manifest: &'a Path,
    /// Extra command-line arguments after the manifest.
    pub args: Vec<String>,
    /// Environment variables for the host process. The host inherits no
    /// `WASMHOST_*` variable from the test process (a `WASMHOST_ADMIN_TOKEN`
    /// in the developer's shell must not change what a test sees): a test
    /// that needs one sets it here.
    pub env: Vec<(String, String)>,
}

impl Host {
    /// Starts `wasmhost serve MANIFEST --listen 127.0.0.1:0` (unless the
    /// arguments give `--listen`) and waits for
    /// its `listening` event. Panics (with the logs) if it does not come.
    pub fn start(options: StartOptions<'_>) -> Host {
        let mut command = Command::new(env!("CARGO_BIN_EXE_wasmhost"));
        command
            .arg("serve")
            .arg(options.manifest)
            .args(["--log-format", "json"])
            .args(&options.args)
            .env_remove("RUST_BACKTRACE")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if !options.args.iter().any(|arg| arg == "--listen") {
            command.args(["--listen", "127.0.0.1:0"]);
        }
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("WASMHOST_") {
                command.env_remove(key);
            }
        }
        command.env("WASMHOST_LOG", "info");
        for (key, value) in &options.env {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("spawning wasmhost");
        let logs = Arc::new((Mutex::new(Vec::new()), Condvar::new()));
        for pipe in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let logs = logs.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    logs.0.lock().unwrap().push(line);
                    logs.1.notify_all();
                }
            });
        }
        let mut host = Host {
            child,
            addr: "127.0.0.1:0".parse().unwrap(),
            admin: None,
            logs,
            manifest: options.manifest.to_path_buf(),
            _dir: None,
        };
        let event = host
            .wait_for_log(START_TIMEOUT, |event| {
                event["message"] == "listening" && event["plane"] == "data"
            })
            .unwrap_or_else(|| {
                host.dump_logs();
                panic!("wasmhost did not report a `listening` event");
            });
        host.addr = event["addr"].as_str().unwrap().parse().unwrap();
        // The admin listener is bound before the data listener.
        host.admin = host
            .events()
            .iter()
            .find(|e| e["message"] == "listening" && e["plane"] == "admin")
            .map(|e| e["addr"].as_str().unwrap().parse().unwrap());
        host
    }

    /// Sends `req` to the data plane; panics with the logs on a transport
    /// error.
    pub fn send(&self, req: Req) -> Resp {
        req.send(self.addr).unwrap_or_else(|err| {
            self.dump_logs();
            panic!("request failed: {err}");
        })
    }

    /// Sends `req` to the admin plane.
    pub fn admin(&self, req: Req) -> Resp {
        let addr = self.admin.expect("the host was started without `.admin()`");
        req.send(addr).unwrap_or_else(|err| {
            self.dump_logs();
            panic!("admin request failed: {err}");
        })
    }

    /// The value of one sample of `/metrics` (0 when absent), e.g.
    /// `metric("wasmhost_requests_total{service=\"hello\",status=\"2xx\"}")`.
    pub fn metric(&self, sample: &str) -> f64 {
        let text = self.admin(super::client::get("/metrics")).text();
        text.lines()
            .find_map(|line| line.strip_prefix(sample)?.strip_prefix(' '))
            .map_or(0.0, |v| v.trim().parse().unwrap())
    }

    /// Polls `condition` until it holds and returns how long that took.
    /// Panics after `timeout`, naming `what` (the host's `Drop` then prints
    /// its logs).
    #[track_caller]
    pub fn wait_until(
        &self,
        timeout: Duration,
        what: &str,
        condition: impl FnMut() -> bool,
    ) -> Duration {
        match poll_until(timeout, condition) {
            Some(took) => took,
            None => panic!("waited {timeout:?} for {what}, in vain"),
        }
    }

    /// Polls the `/metrics` sample until `accept` takes its value, and
    /// returns that value, e.g. a request in flight:
    /// `wait_for_metric("wasmhost_requests_in_flight{service=\"x\"}", EVENT_TIMEOUT, |n| n == 1.0)`.
    /// Panics with the last value seen after `timeout`.
    #[track_caller]
    pub fn wait_for_metric(
        &self,
        sample: &str,
        timeout: Duration,
        accept: impl Fn(f64) -> bool,
    ) -> f64 {
        let mut last = f64::NAN;
        let accepted = poll_until(timeout, || {
            last = self.metric(sample);
            accept(last)
        });
        assert!(
            accepted.is_some(),
            "`{sample}` is still {last} after {timeout:?}"
        );
        last
    }

    /// Sends `req`, returning transport errors (aborted responses) as `Err`.
    pub fn try_send(&self, req: Req) -> Result<Resp, String> {
        req.send(self.addr)
    }

    /// Every JSON log event so far.
    pub fn events(&self) -> Vec<serde_json::Value> {
        self.logs
            .0
            .lock()
            .unwrap()
            .iter()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect()
    }

    /// Waits until a log event satisfies `matches`.
    pub fn wait_for_log(
        &self,
        timeout: Duration,
        matches: impl Fn(&serde_json::Value) -> bool,
    ) -> Option<serde_json::Value> {
        let deadline = Instant::now() + timeout;
        let (lock, changed) = &*self.logs;
        let mut lines = lock.lock().unwrap();
        loop {
            if let Some(event) = lines
                .iter()
                .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
                .find(|event| matches(event))
            {
                return Some(event);
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            lines = changed.wait_timeout(lines, deadline - now).unwrap().0;
        }
    }

    /// The host's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A `/proc/PID/status` field in KiB: `VmRSS` (resident now) or
    /// `VmHWM` (the peak).
    pub fn memory_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no {field} in /proc/{}/status", self.pid()))
    }

    /// File descriptors the host has open.
    pub fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .unwrap()
            .count()
    }

    /// Fails if the host's output shows a Rust panic anywhere (a guest's own
    /// panic is logged as a guest event, not printed raw).
    #[track_caller]
    pub fn assert_no_host_panic(&self) {
        let lines = self.logs.0.lock().unwrap();
        let panics: Vec<_> = lines
            .iter()
            .filter(|line| line.contains("panicked at") && !line.contains("\"stream\":"))
            .collect();
        assert!(panics.is_empty(), "host panicked: {panics:#?}");
    }

    /// Sends a signal (`TERM`, `INT`, `HUP`, `KILL`) to the host.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("running kill");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Waits for the host to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let mut status = None;
        poll_until(timeout, || {
            status = self.child.try_wait().unwrap();
            status.is_some()
        });
        status
    }

    /// Prints the host's output (for failing tests).
    pub fn dump_logs(&self) {
        eprintln!("----- wasmhost output -----");
        for line in self.logs.0.lock().unwrap().iter() {
            eprintln!("{line}");
        }
        eprintln!("---------------------------");
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            self.dump_logs();
        }
    }
}
