//! `TestApp`: a temporary directory with a manifest built from services.
//!
//! ```ignore
//! let host = TestApp::new()
//!     .service(Svc::new("echo", ECHO).route("/echo"))
//!     .service(Svc::new("bad", HOSTILE).route("/bad").set("fuel", "5_000_000"))
//!     .start();
//! ```

use std::path::{Path, PathBuf};

use super::host_process::{Host, StartOptions};

/// The compiled-component cache all test hosts share, so each guest is
/// compiled once per test run rather than once per test.
pub const SHARED_CACHE: &str = concat!(env!("CARGO_TARGET_TMPDIR"), "/component-cache");

/// One `[[service]]` entry.
#[derive(Debug, Clone)]
pub struct Svc {
    lines: Vec<String>,
}

impl Svc {
    /// A service named `name` running the component at `component`.
    pub fn new(name: &str, component: &str) -> Self {
        Svc {
            lines: vec![
                format!("name = {}", toml_str(name)),
                format!("component = {}", toml_str(component)),
            ],
        }
    }

    /// `route = "..."`.
    pub fn route(self, route: &str) -> Self {
        self.set("route", &toml_str(route))
    }

    /// Any key, with its value written as TOML (`"2s"` needs the quotes).
    pub fn set(mut self, key: &str, toml_value: &str) -> Self {
        self.lines.push(format!("{key} = {toml_value}"));
        self
    }
}

/// A manifest under construction in its own temporary directory.
pub struct TestApp {
    dir: tempfile::TempDir,
    host: Vec<(String, String)>,
    defaults: Vec<String>,
    services: Vec<Svc>,
    tables: Vec<String>,
    args: Vec<String>,
    env: Vec<(String, String)>,
}

impl Default for TestApp {
    fn default() -> Self {
        Self::new()
    }
}

impl TestApp {
    /// An empty app.
    pub fn new() -> Self {
        TestApp {
            dir: tempfile::tempdir().expect("creating a temp dir"),
            host: vec![
                ("watch".into(), "false".into()),
                ("cache_dir".into(), toml_str(SHARED_CACHE)),
            ],
            defaults: Vec::new(),
            services: Vec::new(),
            tables: Vec::new(),
            args: Vec::new(),

            env: Vec::new(),
        }
    }

    /// Adds a service.
    pub fn service(mut self, service: Svc) -> Self {
        self.services.push(service);
        self
    }

    /// Sets a `[defaults]` key (value as TOML).
    pub fn default_limit(mut self, key: &str, toml_value: &str) -> Self {
        self.defaults.push(format!("{key} = {toml_value}"));
        self
    }

    /// Sets a `[host]` key (value as TOML), replacing an earlier value.
    pub fn host_key(mut self, key: &str, toml_value: &str) -> Self {
        self.host.retain(|(k, _)| k != key);
        self.host.push((key.into(), toml_value.into()));
        self
    }

    /// Adds a table `[header]` with `lines` (each `key = value` as TOML),
    /// after the services: `.table("key_value.sessions", &["max_value = 10"])`.
    pub fn table(mut self, header: &str, lines: &[&str]) -> Self {
        let mut text = format!("\n[{header}]\n");
        for line in lines {
            text.push_str(line);
            text.push('\n');
        }
        self.tables.push(text);
        self
    }

    /// Turns hot reload on (tests default to `watch = false`).
    pub fn watch(self) -> Self {
        self.host_key("watch", "true")
    }

    /// Also serves the admin plane, on `127.0.0.1:0`.
    pub fn admin(mut self) -> Self {
        self.args.extend(["--admin".into(), "127.0.0.1:0".into()]);
        self
    }

    /// Adds a command-line argument of `wasmhost serve`.
    pub fn arg(mut self, arg: &str) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Sets an environment variable of the host process.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// The app's directory (for files the manifest refers to).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The manifest text.
    pub fn manifest_text(&self) -> String {
        let mut text = String::from("[host]\n");
        for (key, value) in &self.host {
            text.push_str(&format!("{key} = {value}\n"));
        }
        if !self.defaults.is_empty() {
            text.push_str("\n[defaults]\n");
            for line in &self.defaults {
                text.push_str(line);
                text.push('\n');
            }
        }
        for service in &self.services {
            text.push_str("\n[[service]]\n");
            for line in &service.lines {
                text.push_str(line);
                text.push('\n');
            }
        }
        for table in &self.tables {
            text.push_str(table);
        }
        text
    }

    /// Writes `manifest.toml` and returns its path.
    pub fn write(&self) -> PathBuf {
        let path = self.dir.path().join("manifest.toml");
        std::fs::write(&path, self.manifest_text()).expect("writing the manifest");
        path
    }

    /// Writes the manifest and starts the host on it.
    pub fn start(self) -> Host {
        let manifest = self.write();
        let mut host = Host::start(StartOptions {
            manifest: &manifest,
            args: self.args.clone(),
            env: self.env.clone(),
        });
        host.manifest = manifest;
        host._dir = Some(self.dir);
        host
    }
}

/// A TOML basic string.
pub fn toml_str(value: &str) -> String {
    serde_json::to_string(value).unwrap()
}
