//! The metrics as their real consumers see them: a real Prometheus server
//! scrapes the admin plane, and the Grafana dashboard only asks for metrics
//! the host exports.

use std::io::Read;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::support::*;

/// A Prometheus server (Debian's `prometheus`) on loopback, killed on drop.
struct Prometheus {
    child: Child,
    addr: String,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    fn scraping(target: std::net::SocketAddr) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: wasmhost\n    \
                 scrape_interval: 1s\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .unwrap();
        // Prometheus cannot report a port it picked: take a free one.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect(
                "running `prometheus` (Debian package `prometheus`; scripts/test.sh installs it)",
            );
        Prometheus {
            child,
            addr,
            _dir: dir,
        }
    }

    /// The first value of an instant query, once it has one.
    fn query_until_present(&mut self, query: &str, timeout: Duration) -> Option<f64> {
        let url = format!("/api/v1/query?query={}", urlencode(query));
        let addr = self.addr.parse().unwrap();
        let mut value = None;
        // Every 250 ms: Prometheus scrapes only once a second.
        poll_every(Duration::from_millis(250), timeout, || {
            // Until it is ready, Prometheus answers 503 in plain text.
            if let Ok(resp) = get(&url).send(addr)
                && resp.status == 200
            {
                let body = resp.json();
                if let Some(sample) = body["data"]["result"][0]["value"][1].as_str() {
                    value = Some(sample.parse().ok());
                }
            }
            value.is_some()
        });
        if let Some(value) = value {
            return value;
        }
        let mut stderr = String::new();
        let _ = self.child.kill();
        let _ = self
            .child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr);
        eprintln!("prometheus output:\n{stderr}");
        None
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
fn a_real_prometheus_server_scrapes_the_request_counter() {
    let host = TestApp::new()
        .admin()
        .service(Svc::new("hello", HELLO).route("/hello"))
        .start();
    for _ in 0..5 {
        assert_eq!(host.send(get("/hello")).status, 200);
    }
    let mut prometheus = Prometheus::scraping(host.admin.unwrap());
    let value = prometheus.query_until_present(
        r#"wasmhost_requests_total{service="hello",status="2xx"}"#,
        Duration::from_secs(60),
    );
    assert_eq!(value, Some(5.0));
}

#[test]
fn the_grafana_dashboard_is_valid_json_and_uses_only_exported_metrics() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/grafana/wasmhost.json"
    );
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).expect("valid JSON");
    let host = TestApp::new()
        .admin()
        .service(Svc::new("hello", HELLO).route("/hello"))
        .start();
    let exposition = host.admin(get("/metrics")).text();
    let exported: Vec<&str> = exposition
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    let mut exprs = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            exprs.push(target["expr"].as_str().unwrap().to_owned());
        }
    }
    assert!(
        exprs.len() >= 6,
        "requests, errors, latency, fuel, cold starts, reloads"
    );
    for expr in &exprs {
        for name in metric_names(expr) {
            let base = ["_bucket", "_sum", "_count", "_total"]
                .iter()
                .find_map(|suffix| name.strip_suffix(suffix))
                .unwrap_or(&name);
            assert!(
                exported.iter().any(|e| *e == name || *e == base),
                "the dashboard queries `{name}`, which wasmhost does not export"
            );
        }
    }
}

fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = expr;
    while let Some(i) = rest.find("wasmhost_") {
        let name: String = rest[i..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        rest = &rest[i + name.len()..];
        names.push(name);
    }
    names
}
