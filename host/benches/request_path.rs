//! The per-request path without the network: admission, a fresh store,
//! instantiation, the guest's handler, reading the response body, and
//! dropping the store, for the `hello` guest, through the host's own
//! `invoke` (the function the server calls for every request).
//!
//! `cargo bench -p wasmhost --bench request_path`. Reports time per request
//! with the default limits on (fuel, epoch deadline, memory limiter); with
//! `WASMHOST_UNMETERED=1` in the environment, the same without fuel and
//! epoch code. No log subscriber is installed: log events cost nothing here.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use http_body_util::BodyExt;
use wasmhost::config::manifest::Manifest;
use wasmhost::dataplane::body::LimitedBody;
use wasmhost::dataplane::outcome::InFlight;
use wasmhost::dataplane::request::{Call, invoke};
use wasmhost::observe::metrics::Metrics;
use wasmhost::services::reload::Reloader;
use wasmhost::services::service::LoadedService;
use wasmhost::wasm::cache::ArtifactCache;
use wasmhost::wasm::component::{ComponentCache, Loader};
use wasmhost::wasm::engine::{Engines, PoolSize};

fn hello_service(dir: &std::path::Path) -> Arc<LoadedService> {
    let manifest_path = dir.join("bench.toml");
    std::fs::write(
        &manifest_path,
        format!(
            "[host]\ncache_dir = {cache:?}\nwatch = false\n\n\
             [[service]]\nname = \"hello\"\ncomponent = {hello:?}\nroute = \"/\"\n",
            cache = dir.join("cache"),
            hello = wasmhost_test_guests::HELLO,
        ),
    )
    .unwrap();
    let manifest = Manifest::load(&manifest_path).expect("the bench manifest is valid");
    let artifacts = ArtifactCache::new(manifest.host.cache_dir.clone());
    let metrics = Metrics::new();
    let loader = Loader::new(
        Engines::new(
            PoolSize {
                instances: 64,
                ..PoolSize::default()
            },
            None,
        )
        .unwrap(),
        artifacts,
        metrics.clone(),
    );
    let (_reloader, registry) = Reloader::start(&manifest, ComponentCache::new(loader), metrics)
        .unwrap_or_else(|problems| panic!("{problems:?}"));
    registry.load().services[0].clone()
}

async fn one_request(slow: &tokio::runtime::Handle, service: &Arc<LoadedService>) -> Bytes {
    let started = Instant::now();
    let permit = service.admit().await.unwrap();
    let exceeded = Arc::new(AtomicBool::new(false));
    let request = http::Request::get("http://localhost/")
        .body(LimitedBody::from_bytes(
            Bytes::new(),
            1 << 20,
            exceeded.clone(),
        ))
        .unwrap();
    let call = Call {
        request_id: "bench".into(),
        trace: wasmhost::observe::traces::RequestTrace::new(None, true),
        hop: 0,
        dispatch: None,
        started,
        permit,
        in_flight: InFlight::new(&service.metrics.in_flight),
        body_exceeded: exceeded,
        code: service.code().await.unwrap(),
    };
    let response = invoke(slow, service, request, call).await;
    assert_eq!(response.status(), 200);
    response.into_body().collect().await.unwrap().to_bytes()
}

fn request_path(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let service = hello_service(dir.path());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let slow = runtime.handle().clone();
    let body = runtime.block_on(one_request(&slow, &service));
    assert_eq!(&body[..], b"hello from wasmhost");

    c.bench_function("hello request via invoke (limits on)", |b| {
        b.iter(|| runtime.block_on(one_request(&slow, &service)))
    });
}

criterion_group!(benches, request_path);
criterion_main!(benches);
