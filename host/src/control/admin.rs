//! The admin plane, on its own listener (`[host] admin` / `--admin`):
//!
//! | endpoint | answer |
//! |---|---|
//! | `GET /healthz` | 200 while the process runs |
//! | `GET /readyz` | 200 when every service is loaded and not draining, else 503 |
//! | `GET /metrics` | Prometheus text exposition |
//! | `GET /admin/services` | JSON: every service's routes, component, sha256, generation, state, limits, last reload error, requests |
//! | `POST /admin/reload` | reload now; JSON report of what changed or failed (200 ok, 500 failed) |
//!
//! Bound to loopback by default. When `WASMHOST_ADMIN_TOKEN` is set, every
//! endpoint but `/healthz` and `/readyz` requires `Authorization: Bearer
//! <token>`; bound off loopback, the token is mandatory (checked at start).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::control::readiness::Readiness;
use crate::observe::metrics::Metrics;
use crate::services::registry::Registry;
use crate::services::reload::Reloader;

/// The environment variable holding the admin bearer token.
pub const TOKEN_VAR: &str = "WASMHOST_ADMIN_TOKEN";

/// What the admin endpoints read.
pub struct AdminState {
    /// Live services.
    pub registry: Arc<Registry>,
    /// For `/admin/reload` and last reload errors.
    pub reloader: Arc<Reloader>,
    /// For `/readyz`.
    pub readiness: Arc<Readiness>,
    /// For `/metrics`.
    pub metrics: Arc<Metrics>,
    /// The required bearer token, if any.
    pub token: Option<String>,
}

/// The admin token for `addr`: `WASMHOST_ADMIN_TOKEN` if set; an error when
/// `addr` is off loopback and no token is set.
pub fn token_for(addr: SocketAddr) -> anyhow::Result<Option<String>> {
    require_token(addr, std::env::var(TOKEN_VAR).ok())
}

/// `token` (empty is none), or an error when `addr` is off loopback and
/// there is none.
fn require_token(addr: SocketAddr, token: Option<String>) -> anyhow::Result<Option<String>> {
    let token = token.filter(|t| !t.is_empty());
    if token.is_none() && !addr.ip().is_loopback() {
        anyhow::bail!(
            "the admin listener `{addr}` is not on loopback and `{TOKEN_VAR}` is not set: \
             set a token, or bind the admin plane to 127.0.0.1"
        );
    }
    Ok(token)
}

/// Serves the admin plane on `listener` until the process ends.
pub async fn serve(listener: TcpListener, state: Arc<AdminState>) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(err) => {
                // Out of file descriptors and the like: back off instead of
                // spinning on the error (as the data plane does).
                tracing::warn!(error = %err, plane = "admin", "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let state = state.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(handle(&state, request).await) }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// One admin request (no endpoint reads a request body, so any body type
/// will do: tests call this in-process).
pub async fn handle<B>(state: &AdminState, request: Request<B>) -> Response<Full<Bytes>> {
    let path = request.uri().path();
    let public = matches!(path, "/healthz" | "/readyz");
    if !public && !authorized(state.token.as_deref(), &request) {
        let mut response = text(StatusCode::UNAUTHORIZED, "missing or wrong bearer token\n");
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return response;
    }
    match (request.method(), path) {
        (&Method::GET, "/healthz") => text(StatusCode::OK, "ok\n"),
        (&Method::GET, "/readyz") => {
            if state.readiness.is_ready() {
                text(StatusCode::OK, "ready\n")
            } else if state.readiness.is_draining() {
                text(StatusCode::SERVICE_UNAVAILABLE, "draining\n")
            } else {
                text(StatusCode::SERVICE_UNAVAILABLE, "loading\n")
            }
        }
        (&Method::GET, "/metrics") => {
            let mut response = text(StatusCode::OK, state.metrics.encode());
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                ),
            );
            response
        }
        (&Method::GET, "/admin/services") => json(StatusCode::OK, services(state)),
        (&Method::POST, "/admin/reload") => {
            let reloader = state.reloader.clone();
            match tokio::task::spawn_blocking(move || reloader.reload()).await {
                Ok(report) => {
                    let status = if report.ok() {
                        StatusCode::OK
                    } else {
                        StatusCode::INTERNAL_SERVER_ERROR
                    };
                    let mut body = serde_json::to_value(&report).unwrap_or_default();
                    body["ok"] = report.ok().into();
                    json(status, body)
                }
                Err(_) => text(StatusCode::INTERNAL_SERVER_ERROR, "reload panicked\n"),
            }
        }
        (_, "/healthz" | "/readyz" | "/metrics" | "/admin/services" | "/admin/reload") => {
            text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n")
        }
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

fn services(state: &AdminState) -> serde_json::Value {
    let snapshot = state.registry.load();
    let errors = state.reloader.errors();
    let mut list: Vec<serde_json::Value> = snapshot
        .services
        .iter()
        .map(|service| {
            serde_json::json!({
                "name": &*service.name,
                "routes": service.config.routes.iter().map(|r| r.prefix.as_str()).collect::<Vec<_>>(),
                "host": service.config.routes.first().and_then(|r| r.host.as_deref()),
                "component": service.config.component,
                // For `oci://` components: the reference and the manifest
                // digest it serves.
                "reference": service.config.oci.as_ref().map(|o| format!("oci://{}", o.reference)),
                "digest": service.config.oci.as_ref().and_then(|o| o.digest.as_deref()),
                "last_pull_error": service.config.oci.as_ref().and_then(|_| crate::oci::last_pull_error(&service.name)),
                "sha256": service.sha256,
                "world": service.world(),
                "generation": service.generation,
                "state": if service.is_loaded() { "loaded" } else { "unloaded" },
                "limits": service.limits(),
                "key_value_stores": service.config.key_value_stores,
                // Names and sources; values only for non-secrets.
                "variables": service.config.variables,
                "last_reload_error": errors.get(&*service.name),
                "requests": service.metrics.total_requests(),
            })
        })
        .collect();
    // Services that never loaded (added with a broken component).
    for (name, error) in &errors {
        if !snapshot.services.iter().any(|s| &*s.name == name) {
            list.push(serde_json::json!({
                "name": name,
                "state": "unloaded",
                "last_reload_error": error,
            }));
        }
    }
    serde_json::json!({ "generation": snapshot.generation, "services": list })
}

fn authorized<B>(token: Option<&str>, request: &Request<B>) -> bool {
    let Some(token) = token else {
        return true;
    };
    let Some(given) = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    // Compared in constant time, so the time taken does not reveal how
    // much of a guessed token was right.
    bool::from(subtle::ConstantTimeEq::ct_eq(
        given.as_bytes(),
        token.as_bytes(),
    ))
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

fn json(status: StatusCode, body: serde_json::Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(auth: Option<&str>) -> Request<()> {
        let mut builder = Request::builder().uri("/metrics");
        if let Some(auth) = auth {
            builder = builder.header("authorization", auth);
        }
        builder.body(()).unwrap()
    }

    #[test]
    fn without_a_token_everything_is_allowed() {
        assert!(authorized(None, &request(None)));
    }

    #[test]
    fn with_a_token_only_the_exact_bearer_is_allowed() {
        assert!(authorized(Some("s3cret"), &request(Some("Bearer s3cret"))));
        assert!(!authorized(Some("s3cret"), &request(Some("Bearer s3cre"))));
        assert!(!authorized(Some("s3cret"), &request(Some("s3cret"))));
        assert!(!authorized(Some("s3cret"), &request(None)));
    }

    #[test]
    fn off_loopback_without_a_token_is_refused() {
        let off: SocketAddr = "0.0.0.0:9090".parse().unwrap();
        let on: SocketAddr = "127.0.0.1:9090".parse().unwrap();
        assert!(require_token(off, None).is_err());
        assert!(require_token(off, Some(String::new())).is_err());
        assert_eq!(
            require_token(off, Some("t".into())).unwrap().as_deref(),
            Some("t")
        );
        assert_eq!(require_token(on, None).unwrap(), None);
    }

    /// The admin state of a host serving an empty manifest.
    fn state(token: Option<&str>) -> (AdminState, tempfile::TempDir) {
        use crate::config::manifest::Manifest;
        use crate::wasm::cache::ArtifactCache;
        use crate::wasm::component::{ComponentCache, Loader};
        use crate::wasm::engine::{Engines, PoolSize};
        let dir = tempfile::tempdir().unwrap();
        let manifest = Manifest::from_str("", &dir.path().join("m.toml")).unwrap();
        let metrics = Metrics::new();
        let engines = Engines::new(PoolSize::default(), None).unwrap();
        let loader = Loader::new(
            engines,
            ArtifactCache::new(dir.path().join("c")),
            metrics.clone(),
        );
        let (reloader, registry) =
            Reloader::start(&manifest, ComponentCache::new(loader), metrics.clone()).unwrap();
        let state = AdminState {
            registry,
            reloader,
            readiness: Readiness::new(),
            metrics,
            token: token.map(str::to_owned),
        };
        (state, dir)
    }

    fn call(state: &AdminState, method: &str, path: &str, auth: Option<&str>) -> (u16, String) {
        let mut builder = Request::builder().method(method).uri(path);
        if let Some(auth) = auth {
            builder = builder.header("authorization", auth);
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let response = runtime.block_on(handle(state, builder.body(()).unwrap()));
        let status = response.status().as_u16();
        let body = runtime
            .block_on(http_body_util::BodyExt::collect(response.into_body()))
            .unwrap()
            .to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[test]
    fn health_readiness_and_drain_answer_without_a_token() {
        let (state, _dir) = state(Some("s3cret"));
        assert_eq!(call(&state, "GET", "/healthz", None), (200, "ok\n".into()));
        let loading = state.readiness.loading();
        assert_eq!(call(&state, "GET", "/readyz", None).0, 503);
        drop(loading);
        assert_eq!(
            call(&state, "GET", "/readyz", None),
            (200, "ready\n".into())
        );
        state.readiness.drain();
        assert_eq!(
            call(&state, "GET", "/readyz", None),
            (503, "draining\n".into())
        );
    }

    #[test]
    fn the_other_endpoints_need_the_bearer_token() {
        let (state, _dir) = state(Some("s3cret"));
        assert_eq!(call(&state, "GET", "/metrics", None).0, 401);
        assert_eq!(
            call(&state, "GET", "/admin/services", Some("Bearer nope")).0,
            401
        );
        let (status, metrics) = call(&state, "GET", "/metrics", Some("Bearer s3cret"));
        assert_eq!(status, 200);
        assert!(metrics.contains("wasmhost_build_info"), "{metrics}");
    }

    #[test]
    fn services_lists_the_snapshot_and_unknown_routes_or_methods_are_refused() {
        let (state, _dir) = state(None);
        let (status, body) = call(&state, "GET", "/admin/services", None);
        assert_eq!(status, 200);
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(json["generation"], 1);
        assert_eq!(json["services"], serde_json::json!([]));
        assert_eq!(call(&state, "DELETE", "/admin/services", None).0, 405);
        assert_eq!(call(&state, "GET", "/nope", None).0, 404);
    }
}
