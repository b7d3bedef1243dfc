//! The manifest: what to serve, where, and with which limits.
//!
//! `Manifest::load` reads and checks a manifest file and returns either a
//! fully resolved `Manifest` (defaults applied, paths resolved, files
//! checked) or every `Problem` in it at once, each with file, line, column,
//! service and field. The reference for every key is `docs/manifest.md`.
//!
//! - `schema.rs`: the TOML shape, loaded key by key (unknown keys, types);
//!   the limit keys are `LimitKeys`, generated in `config/limits.rs`;
//! - `units.rs`: validated newtypes for names, routes and addresses (the
//!   generic durations, sizes, fuel and counts are in `config/units.rs`);
//! - `outbound_rule.rs`: `OutboundRule` (`allowed_outbound_hosts` entries);
//! - `stores.rs`: `[key_value.<name>]`, the key-value stores;
//! - `variables.rs`: a service's `variables`, their values read;
//! - `validate.rs`: defaults, paths, and checks across values (required
//!   keys, unique names, route clashes, files on disk).
//!
//! `Problem` and `Problems` (re-exported here) live in `config/problem.rs`.
//!
//! A manifest with no `[[service]]` is valid: the host starts and answers
//! every request with `no_route` until a reload adds services.

pub mod outbound_rule;
pub mod schema;
pub mod stores;
pub mod units;
mod validate;
pub mod variables;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Serialize, Serializer};
use toml::de::DeTable;

use crate::config::limits::Limits;
use crate::config::problem::Collector;
use crate::config::router::Route;

pub use crate::config::problem::{Problem, Problems};
pub use outbound_rule::OutboundRule;
pub use stores::{Backend, StoreConfig};
pub use variables::{Variable, VariableSource};

/// A checked manifest, ready to serve.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Manifest {
    /// The manifest path as given (watched for hot reload).
    pub path: PathBuf,
    /// Parent of `path` as given, symlinks not resolved (SPEC: a ConfigMap's
    /// `cfg/manifest.toml -> ..data/manifest.toml` resolves against `cfg/`);
    /// `.` when `path` has no parent. Every relative path in the manifest
    /// was resolved against it.
    pub dir: PathBuf,
    /// `[host]`, defaults applied.
    pub host: HostConfig,
    /// Every `[[service]]`, in file order.
    pub services: Vec<ServiceConfig>,
    /// Every key-value store: those of `[key_value.<name>]`, and `default`.
    pub key_value: Vec<StoreConfig>,
}

/// Process-wide settings from `[host]`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HostConfig {
    /// Data-plane address. Default `127.0.0.1:8080`.
    pub listen: SocketAddr,
    /// Admin-plane address; `None` = no admin listener.
    pub admin: Option<SocketAddr>,
    /// Precompiled-component cache, resolved against the manifest's folder.
    /// Default `.wasmhost-cache`.
    pub cache_dir: PathBuf,
    /// Longest wait for requests in flight at a graceful stop. Default 30s.
    #[serde(serialize_with = "serialize_duration")]
    pub shutdown_grace: Duration,
    /// Hot-reload on manifest or component changes. Default `true`.
    pub watch: bool,
    /// Longest wait for a request head, and for the next request on an
    /// idle keep-alive connection. Default 10s.
    #[serde(serialize_with = "serialize_duration")]
    pub header_timeout: Duration,
    /// Open data-plane connections at most. Default 10,000.
    pub max_connections: u32,
    /// Where embedded key-value stores live, resolved against the
    /// manifest's folder. Default `.wasmhost-data`.
    pub data_dir: PathBuf,
    /// One log line per request; off, only failures and rejections are
    /// logged. Default `true`.
    pub access_log: bool,
    /// Compiled functions kept in `<cache_dir>/functions/` and reused when
    /// a component is compiled again. Default `true`.
    pub incremental_compilation: bool,
    /// Registries (`host:port`) reached over plain HTTP instead of HTTPS.
    pub insecure_registries: Vec<String>,
    /// The largest `oci://` component pulled, in bytes. Default 256 MiB.
    pub max_artifact_size: u64,
    /// The longest one `oci://` component may take to resolve and pull.
    /// Default 2 minutes.
    #[serde(serialize_with = "serialize_duration")]
    pub pull_timeout: Duration,
}

impl Default for HostConfig {
    /// The settings of an empty `[host]` table, with `cache_dir` relative to
    /// the current directory.
    fn default() -> Self {
        HostConfig {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 8080)),
            admin: None,
            cache_dir: PathBuf::from(".wasmhost-cache"),
            shutdown_grace: Duration::from_secs(30),
            watch: true,
            header_timeout: Duration::from_secs(10),
            max_connections: 10_000,
            data_dir: PathBuf::from(".wasmhost-data"),
            access_log: true,
            incremental_compilation: true,
            insecure_registries: Vec::new(),
            max_artifact_size: 256 << 20,
            pull_timeout: Duration::from_secs(120),
        }
    }
}

/// One `[[service]]`, resolved.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceConfig {
    /// Unique name, `[a-z0-9-]+`.
    pub name: String,
    /// The component file, resolved against the manifest's folder; it
    /// existed when the manifest was checked. For an `oci://` component,
    /// its file in the cache once pulled (`crate::oci::resolve`).
    pub component: PathBuf,
    /// Set when the component is pulled from an OCI registry.
    pub oci: Option<OciSource>,
    /// From `route` or `routes`, each with the service's `host` (if any).
    /// Never empty.
    pub routes: Vec<Route>,
    /// `[defaults]` merged with the service's own limits.
    pub limits: Limits,
    /// The guest's whole environment, sorted by key.
    #[serde(serialize_with = "serialize_pairs")]
    pub env: Vec<(String, String)>,
    /// Read-only preopened directories: guest path → host directory
    /// (resolved; it existed and was a directory when checked). Sorted by
    /// guest path.
    #[serde(serialize_with = "serialize_pairs")]
    pub files: Vec<(String, PathBuf)>,
    /// Outbound HTTP the guest may make; empty = none.
    pub allowed_outbound_hosts: Vec<OutboundRule>,
    /// The key-value stores the guest may open (each declared, or
    /// `default`); empty = none.
    pub key_value_stores: Vec<String>,
    /// The values the guest reads by name, sorted by name.
    pub variables: Vec<Variable>,
    /// Line and column of the `component` value, so that problems found
    /// later (a component that fails to compile) can point at it.
    #[serde(skip)]
    pub component_at: (usize, usize),
}

/// A component given as `oci://REGISTRY/REPO:TAG` or `…@sha256:DIGEST`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OciSource {
    /// The reference, without `oci://`.
    pub reference: String,
    /// The manifest digest it resolved to, once pulled.
    pub digest: Option<String>,
}

impl ServiceConfig {
    /// A problem with this service's `component` (found after the manifest
    /// was checked: a pull, a compile), at the value's place in `file`.
    pub fn component_problem(&self, file: &Path, message: String) -> Problem {
        Problem {
            file: file.to_path_buf(),
            line: self.component_at.0,
            col: self.component_at.1,
            service: Some(self.name.clone()),
            field: Some("component".into()),
            message,
        }
    }

    /// Whether an outbound request to `scheme://host:port` is allowed.
    pub fn allows_outbound(&self, scheme: &str, host: &str, port: u16) -> bool {
        self.allowed_outbound_hosts
            .iter()
            .any(|rule| rule.allows(scheme, host, port))
    }
}

impl Manifest {
    /// Reads and checks the manifest at `path`. An unreadable file is one
    /// problem without a line.
    pub fn load(path: &Path) -> Result<Manifest, Problems> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            let message = match e.kind() {
                std::io::ErrorKind::NotFound => "manifest file not found".to_owned(),
                std::io::ErrorKind::InvalidData => {
                    "cannot read the manifest: it is not UTF-8 text".to_owned()
                }
                _ => format!("cannot read the manifest: {e}"),
            };
            Problems(vec![Problem::whole_file(path, message)])
        })?;
        Manifest::from_str(&text, path)
    }

    /// Checks manifest `text` as if read from `path`: relative paths in it
    /// (components, `files`, `cache_dir`) resolve against `path`'s folder,
    /// and components and `files` directories must exist there.
    pub fn from_str(text: &str, path: &Path) -> Result<Manifest, Problems> {
        let mut cx = Collector::new(path, text);
        let doc = match DeTable::parse(text) {
            Ok(doc) => doc,
            Err(e) => {
                let span = e.span().unwrap_or(0..0);
                // toml does not name the duplicate key; its span does.
                let duplicate = text
                    .get(span.clone())
                    .filter(|key| e.message() == "duplicate key" && !key.is_empty());
                let message = match duplicate {
                    Some(key) => format!("invalid TOML: duplicate key `{key}`: give each key once"),
                    None => format!("invalid TOML: {}", e.message()),
                };
                cx.push(span, None, message);
                return Err(Problems(cx.finish()));
            }
        };
        let spec = schema::ManifestSpec::from_document(doc.get_ref(), &mut cx);
        let manifest = validate::build(&spec, path, &mut cx);
        if cx.has_problems() {
            Err(Problems(cx.finish()))
        } else {
            Ok(manifest)
        }
    }

    /// Every route with the index of its service in `services`, ready for
    /// `Router::new`.
    pub fn routes(&self) -> impl Iterator<Item = (Route, usize)> + '_ {
        self.services
            .iter()
            .enumerate()
            .flat_map(|(i, s)| s.routes.iter().map(move |r| (r.clone(), i)))
    }

    /// The key-value stores some service lists: the only ones the host
    /// opens (a manifest whose services use no store creates no data
    /// file, and `wasmhost check` on it touches no disk).
    pub fn stores_in_use(&self) -> Vec<StoreConfig> {
        self.key_value
            .iter()
            .filter(|store| {
                self.services
                    .iter()
                    .any(|s| s.key_value_stores.contains(&store.name))
            })
            .cloned()
            .collect()
    }

    /// The service called `name`.
    pub fn service(&self, name: &str) -> Option<&ServiceConfig> {
        self.services.iter().find(|s| s.name == name)
    }
}

fn serialize_duration<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&units::HumanDuration(*d))
}

/// Key-value pairs as a JSON object (in their order).
fn serialize_pairs<S: Serializer, V: Serialize>(
    pairs: &[(String, V)],
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_map(pairs.iter().map(|(k, v)| (k, v)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::router::Router;

    /// A file that exists wherever the tests run, to stand in for a component.
    const COMPONENT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");

    fn manifest(text: &str) -> Manifest {
        let text = text.replace("COMPONENT", COMPONENT);
        Manifest::from_str(&text, Path::new("cfg/manifest.toml")).unwrap_or_else(|p| panic!("{p}"))
    }

    fn problems(text: &str) -> Vec<String> {
        let text = text.replace("COMPONENT", COMPONENT);
        let problems = Manifest::from_str(&text, Path::new("m.toml")).unwrap_err();
        problems.iter().map(|p| p.to_string()).collect()
    }

    #[test]
    fn defaults_apply_to_services_that_do_not_override_them() {
        let m = manifest(
            r#"
            [defaults]
            fuel = 5
            timeout = "2s"
            [[service]]
            name = "a"
            component = "COMPONENT"
            route = "/a"
            timeout = "1s"
            [[service]]
            name = "b"
            component = "COMPONENT"
            route = "/b"
            "#,
        );
        let a = m.service("a").unwrap();
        let b = m.service("b").unwrap();
        assert_eq!(a.limits.fuel, Some(5));
        assert_eq!(a.limits.timeout, Duration::from_secs(1));
        assert_eq!(b.limits.timeout, Duration::from_secs(2));
        assert_eq!(b.limits.memory, Limits::default().memory);
    }

    #[test]
    fn paths_resolve_against_the_manifest_folder_as_given() {
        let m = manifest("[host]\ncache_dir = \"cache\"\n");
        assert_eq!(m.dir, Path::new("cfg"));
        assert_eq!(m.host.cache_dir, Path::new("cfg/cache"));
        let m = Manifest::from_str("", Path::new("manifest.toml")).unwrap();
        assert_eq!(m.dir, Path::new("."));
        assert_eq!(m.host.cache_dir, Path::new(".wasmhost-cache"));
    }

    #[test]
    fn an_empty_manifest_is_valid_and_uses_every_default() {
        let m = Manifest::from_str("", Path::new("m.toml")).unwrap();
        assert!(m.services.is_empty());
        assert_eq!(m.host.listen, HostConfig::default().listen);
        assert_eq!(m.host.admin, None);
        assert_eq!(m.host.shutdown_grace, Duration::from_secs(30));
        assert!(m.host.watch);
    }

    #[test]
    fn routes_carry_the_service_host_and_feed_the_router() {
        let m = manifest(
            r#"
            [[service]]
            name = "site"
            component = "COMPONENT"
            routes = ["/", "/docs/"]
            host = "Example.com"
            [[service]]
            name = "api"
            component = "COMPONENT"
            route = "/api"
            "#,
        );
        assert_eq!(
            m.services[0].routes,
            vec![
                Route::on_host("example.com", "/"),
                Route::on_host("example.com", "/docs")
            ]
        );
        let router = Router::new(m.routes());
        assert_eq!(router.lookup(Some("example.com:8080"), "/docs/x"), Some(&0));
        assert_eq!(router.lookup(Some("other"), "/api/x"), Some(&1));
    }

    #[test]
    fn every_problem_is_reported_not_just_the_first() {
        let found = problems(
            r#"
            [defaults]
            fuel = -1
            memory = "lots"
            [[service]]
            name = "A"
            component = "missing.wasm"
            route = "a"
            "#,
        );
        assert_eq!(found.len(), 5, "{found:#?}");
        assert!(
            found[0].starts_with("m.toml:3:20: field `defaults.fuel`"),
            "{found:#?}"
        );
    }

    #[test]
    fn loading_a_missing_file_is_one_problem_without_a_line() {
        let problems = Manifest::load(Path::new("/nonexistent/manifest.toml")).unwrap_err();
        assert_eq!(
            problems.to_string(),
            "/nonexistent/manifest.toml: manifest file not found"
        );
    }

    #[test]
    fn only_the_stores_a_service_lists_are_opened() {
        let m = manifest(
            r#"
            [key_value.sessions]
            [[service]]
            name = "a"
            component = "COMPONENT"
            route = "/"
            key_value_stores = ["sessions"]
            "#,
        );
        let names =
            |stores: Vec<StoreConfig>| stores.into_iter().map(|s| s.name).collect::<Vec<_>>();
        assert_eq!(names(m.key_value.clone()), ["sessions", "default"]);
        assert_eq!(names(m.stores_in_use()), ["sessions"]);
        let m = Manifest::from_str("", Path::new("m.toml")).unwrap();
        assert!(m.stores_in_use().is_empty());
    }

    #[test]
    fn outbound_rules_are_checked_per_service() {
        let m = manifest(
            r#"
            [[service]]
            name = "a"
            component = "COMPONENT"
            route = "/"
            allowed_outbound_hosts = ["https://api.example.com"]
            "#,
        );
        assert!(m.services[0].allows_outbound("https", "api.example.com", 443));
        assert!(!m.services[0].allows_outbound("http", "api.example.com", 80));
    }
}
