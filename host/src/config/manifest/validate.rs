//! From the loaded `ManifestSpec` to a `Manifest`: defaults applied, paths
//! resolved, and every check that needs more than one value or the disk
//! (required keys, unique names, route clashes, `route` vs `routes`, files
//! that must exist). Each problem is collected with the span of the value
//! it is about; nothing stops at the first one.

use std::collections::HashMap;
use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::Spanned;

use super::schema::{ManifestSpec, ServiceSection};
use super::stores::{self, StoreConfig};
use super::units::{OutboundRule, RoutePrefix};
use super::variables;
use super::{HostConfig, Manifest, ServiceConfig};
use crate::config::limits::Limits;
use crate::config::problem::Collector;
use crate::config::router::Route;

/// Builds the manifest, recording every semantic problem in `cx`. The
/// result is only meaningful when `cx` has no problems afterwards.
pub(crate) fn build(spec: &ManifestSpec, path: &Path, cx: &mut Collector<'_>) -> Manifest {
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let host = host_config(spec, &dir, cx);
    for (field, value) in [
        ("host.header_timeout", &spec.host.header_timeout),
        ("host.pull_timeout", &spec.host.pull_timeout),
    ] {
        if let Some(t) = value.as_ref().filter(|t| t.get_ref().0 == Duration::ZERO) {
            cx.field(t.span(), field, "must be longer than `0s`");
        }
    }
    spec.defaults.limits.check(cx, "defaults.");
    let defaults = spec.defaults.limits.apply_to(&Limits::default());

    let key_value = stores::build_stores(&spec.key_value, &host.data_dir, cx);

    let mut names: HashMap<String, usize> = HashMap::new();
    // (host, prefix) → (service name, line) of the first service to claim it.
    let mut claimed: HashMap<Route, (String, usize)> = HashMap::new();
    let mut services = Vec::new();
    for (index, service) in spec.services.iter().enumerate() {
        cx.service = spec.service_labels.get(index).cloned().flatten();
        services.push(service_config(
            service,
            &dir,
            &defaults,
            &key_value,
            &mut names,
            &mut claimed,
            cx,
        ));
    }
    cx.service = None;

    Manifest {
        path: path.to_path_buf(),
        dir,
        host,
        services,
        key_value,
    }
}

fn host_config(spec: &ManifestSpec, dir: &Path, cx: &mut Collector<'_>) -> HostConfig {
    let host = &spec.host;
    let defaults = HostConfig::default();
    HostConfig {
        listen: host
            .listen
            .as_ref()
            .map_or(defaults.listen, |l| l.get_ref().0),
        admin: host.admin.as_ref().map(|a| a.get_ref().0),
        cache_dir: resolve(
            dir,
            host.cache_dir
                .as_ref()
                .map_or(".wasmhost-cache", |c| c.get_ref()),
        ),
        shutdown_grace: host
            .shutdown_grace
            .as_ref()
            .map_or(defaults.shutdown_grace, |g| g.get_ref().0),
        watch: host.watch.as_ref().map_or(defaults.watch, |w| *w.get_ref()),
        header_timeout: host
            .header_timeout
            .as_ref()
            .map_or(defaults.header_timeout, |t| t.get_ref().0),
        max_connections: host
            .max_connections
            .as_ref()
            .map_or(defaults.max_connections, |m| m.get_ref().0),
        data_dir: resolve(
            dir,
            host.data_dir
                .as_ref()
                .map_or(".wasmhost-data", |d| d.get_ref()),
        ),
        access_log: host
            .access_log
            .as_ref()
            .map_or(defaults.access_log, |a| *a.get_ref()),
        incremental_compilation: host
            .incremental_compilation
            .as_ref()
            .map_or(defaults.incremental_compilation, |a| *a.get_ref()),
        max_artifact_size: host
            .max_artifact_size
            .as_ref()
            .map_or(defaults.max_artifact_size, |m| m.get_ref().0),
        pull_timeout: host
            .pull_timeout
            .as_ref()
            .map_or(defaults.pull_timeout, |t| t.get_ref().0),
        insecure_registries: host
            .insecure_registries
            .iter()
            .flat_map(|list| list.get_ref())
            .filter_map(|registry| match registry.get_ref().as_str() {
                Ok(name) if !name.is_empty() && !name.contains('/') => Some(name.to_owned()),
                Ok(name) => {
                    cx.field(
                        registry.span(),
                        "host.insecure_registries",
                        format!("`{name}`: give a registry as `host:port`, like `127.0.0.1:5000`"),
                    );
                    None
                }
                Err(message) => {
                    cx.field(registry.span(), "host.insecure_registries", message);
                    None
                }
            })
            .collect(),
    }
}

/// A path from the manifest, relative to the manifest's folder (as given,
/// symlinks not resolved). Absolute paths stay as they are.
pub(crate) fn resolve(dir: &Path, path: &str) -> PathBuf {
    let joined = if dir == Path::new(".") {
        PathBuf::from(path)
    } else {
        dir.join(path)
    };
    // Drops `.` segments (`dir/./x` → `dir/x`); `..` stays, as symlinks
    // are not resolved.
    joined.components().collect()
}

fn service_config(
    service: &Spanned<ServiceSection>,
    dir: &Path,
    defaults: &Limits,
    stores: &[StoreConfig],
    names: &mut HashMap<String, usize>,
    claimed: &mut HashMap<Route, (String, usize)>,
    cx: &mut Collector<'_>,
) -> ServiceConfig {
    let span = service.span();
    let s = service.get_ref();

    let name = match &s.name {
        Some(name) => {
            let line = cx.line_col(name.span().start).0;
            let text = name.get_ref().as_str().to_owned();
            if let Some(first) = names.get(&text) {
                cx.field(
                    name.span(),
                    "name",
                    format!("service name `{text}` is already used at line {first}: names must be unique"),
                );
            } else {
                names.insert(text.clone(), line);
            }
            text
        }
        None => {
            if !s.present.contains(&"name") {
                missing(cx, span.clone(), "name", "add `name = \"my-service\"`");
            }
            String::new()
        }
    };

    let component_at = s
        .component
        .as_ref()
        .map_or((0, 0), |c| cx.line_col(c.span().start));
    let mut oci = None;
    let component = match &s.component {
        Some(component) => match crate::oci::parse(component.get_ref()) {
            // Pulled into the cache after the manifest is checked.
            Some(Ok(source)) => {
                oci = Some(source);
                PathBuf::new()
            }
            Some(Err(message)) => {
                cx.field(component.span(), "component", message);
                PathBuf::new()
            }
            None => {
                let resolved = resolve(dir, component.get_ref());
                check_exists(cx, component.span(), "component", &resolved, Kind::File);
                resolved
            }
        },
        None => {
            if !s.present.contains(&"component") {
                missing(
                    cx,
                    span.clone(),
                    "component",
                    "add the path of the service's `.wasm` file, like `component = \"hello.wasm\"`",
                );
            }
            PathBuf::new()
        }
    };

    let routes = routes(s, span.clone(), &name, claimed, cx);

    s.limits.check(cx, "");
    let limits = s.limits.apply_to(defaults);

    let mut env = Vec::new();
    if let Some(vars) = &s.env {
        for (key, value) in vars.get_ref() {
            let k = key.get_ref();
            if k.is_empty() {
                cx.field(
                    key.span(),
                    "env",
                    "environment variable names must not be empty",
                );
            } else if k.contains('=') || k.contains('\0') {
                cx.field(
                    key.span(),
                    "env",
                    format!(
                        "environment variable name `{}` must not contain `=` or NUL",
                        k.escape_default()
                    ),
                );
            }
            match value.get_ref().as_str() {
                Ok(v) if v.contains('\0') => cx.field(
                    value.span(),
                    "env",
                    format!("the value of `{k}` must not contain NUL"),
                ),
                Ok(v) => env.push((k.clone(), v.to_owned())),
                Err(e) => cx.field(value.span(), "env", e),
            }
        }
    }

    let mut files = Vec::new();
    if let Some(dirs) = &s.files {
        for (guest, host) in dirs.get_ref() {
            let g = guest.get_ref();
            if !g.starts_with('/') {
                cx.field(
                    guest.span(),
                    "files",
                    format!("guest path `{g}` must be absolute: write `/{g}`"),
                );
            } else if g.split('/').any(|segment| segment == "..") {
                cx.field(
                    guest.span(),
                    "files",
                    format!("guest path `{g}` must not contain `..`"),
                );
            }
            match host.get_ref().as_str() {
                Ok(h) => {
                    let resolved = resolve(dir, h);
                    check_exists(cx, host.span(), "files", &resolved, Kind::Dir);
                    files.push((g.clone(), resolved));
                }
                Err(e) => cx.field(host.span(), "files", e),
            }
        }
    }

    let mut allowed_outbound_hosts = Vec::new();
    if let Some(rules) = &s.allowed_outbound_hosts {
        for rule in rules.get_ref() {
            let parsed = rule
                .get_ref()
                .as_str()
                .and_then(|r| OutboundRule::try_from(r.to_owned()).map_err(|e| e.0));
            match parsed {
                Ok(parsed) => allowed_outbound_hosts.push(parsed),
                Err(e) => cx.field(rule.span(), "allowed_outbound_hosts", e),
            }
        }
    }

    let mut key_value_stores = Vec::new();
    if let Some(listed) = &s.key_value_stores {
        for store in listed.get_ref() {
            match store.get_ref().as_str() {
                Ok(name) if stores.iter().any(|s| s.name == name) => {
                    if key_value_stores.iter().any(|n| n == name) {
                        cx.field(store.span(), "key_value_stores", format!("`{name}` is listed twice"));
                    } else {
                        key_value_stores.push(name.to_owned());
                    }
                }
                Ok(name) => cx.field(
                    store.span(),
                    "key_value_stores",
                    format!(
                        "no store is called `{name}`: declare it with `[key_value.{name}]`, or use one of {}",
                        stores
                            .iter()
                            .map(|s| format!("`{}`", s.name))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ),
                Err(e) => cx.field(store.span(), "key_value_stores", e),
            }
        }
    }
    let variables = s
        .variables
        .as_ref()
        .map(|written| variables::build_variables(written.get_ref(), dir, cx))
        .unwrap_or_default();

    ServiceConfig {
        name,
        component,
        oci,
        routes,
        limits,
        env,
        files,
        allowed_outbound_hosts,
        key_value_stores,
        variables,
        component_at,
    }
}

/// The service's routes from `route` or `routes`, each with its `host`;
/// clashes with earlier services (and within the service) are problems.
fn routes(
    s: &ServiceSection,
    span: Range<usize>,
    name: &str,
    claimed: &mut HashMap<Route, (String, usize)>,
    cx: &mut Collector<'_>,
) -> Vec<Route> {
    let mut prefixes: Vec<(Spanned<RoutePrefix>, &str)> = Vec::new();
    let written = |key| s.present.contains(&key);
    if written("route") && written("routes") {
        let span = s.routes.as_ref().map_or(span.clone(), |r| r.span());
        cx.field(
            span,
            "routes",
            "set either `route` or `routes`, not both: move the `route` into `routes`",
        );
    } else if !written("route") && !written("routes") {
        // No route: a private service, reachable only by chained calls
        // (`http://<name>.internal`). A `host` then routes nothing.
        if let Some(host) = &s.host {
            cx.field(
                host.span(),
                "host",
                "`host` needs a route: add `route = \"/\"`, or remove `host` to keep the \
                 service private (reachable only as `http://<name>.internal`)",
            );
        }
    }
    if let Some(route) = &s.route {
        prefixes.push((route.clone(), "route"));
    }
    if let Some(routes) = s.routes.as_ref().filter(|_| !written("route")) {
        if routes.get_ref().is_empty() {
            cx.field(
                routes.span(),
                "routes",
                "`routes` is empty: add at least one route, like `\"/\"`",
            );
        }
        for route in routes.get_ref() {
            let parsed = route
                .get_ref()
                .as_str()
                .and_then(|r| RoutePrefix::try_from(r.to_owned()).map_err(|e| e.0));
            match parsed {
                Ok(prefix) => prefixes.push((Spanned::new(route.span(), prefix), "routes")),
                Err(e) => cx.field(route.span(), "routes", e),
            }
        }
    }

    let host = s.host.as_ref().map(|h| h.get_ref().as_str().to_owned());
    let on_host = host
        .as_ref()
        .map_or(String::new(), |h| format!(" on host `{h}`"));
    let mut routes: Vec<Route> = Vec::new();
    for (prefix, field) in prefixes {
        let route = Route {
            host: host.clone(),
            prefix: prefix.get_ref().as_str().to_owned(),
        };
        let line = cx.line_col(prefix.span().start).0;
        if routes.contains(&route) {
            cx.field(
                prefix.span(),
                field,
                format!("route `{}`{on_host} is listed twice", route.prefix),
            );
            continue;
        }
        if let Some((owner, first_line)) = claimed.get(&route) {
            cx.field(
                prefix.span(),
                field,
                format!(
                    "route `{}`{on_host} is already used by service `{owner}` (line {first_line}): each route must belong to one service",
                    route.prefix
                ),
            );
        } else {
            claimed.insert(route.clone(), (name.to_owned(), line));
        }
        routes.push(route);
    }
    routes
}

fn missing(cx: &mut Collector<'_>, service_span: Range<usize>, field: &str, fix: &str) {
    cx.field(service_span, field, format!("missing `{field}`: {fix}"));
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    File,
    Dir,
}

/// Checks that a path from the manifest exists and is a file or directory.
fn check_exists(cx: &mut Collector<'_>, span: Range<usize>, field: &str, path: &Path, kind: Kind) {
    let what = match kind {
        Kind::File => "component file",
        Kind::Dir => "directory",
    };
    let shown = path.display();
    match std::fs::metadata(path) {
        Ok(meta) if kind == Kind::File && meta.is_dir() => cx.field(
            span,
            field,
            format!("`{shown}` is a directory: give the path of a `.wasm` component file"),
        ),
        Ok(meta) if kind == Kind::Dir && !meta.is_dir() => cx.field(
            span,
            field,
            format!("`{shown}` is not a directory: `files` maps guest paths to host directories"),
        ),
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => cx.field(
            span,
            field,
            format!("{what} `{shown}` not found (paths are relative to the manifest's folder)"),
        ),
        Err(e) => cx.field(span, field, format!("cannot read {what} `{shown}`: {e}")),
    }
}
