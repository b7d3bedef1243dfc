//! Route lookup with 1,000 routes: `cargo bench -p wasmhost --bench router`.
//! Hits at several depths, a host route, and a miss.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use wasmhost::config::router::{Route, Router};

fn router(c: &mut Criterion) {
    let mut routes = Vec::new();
    for i in 0..900 {
        routes.push((Route::any_host(format!("/svc{i}")), i));
    }
    for i in 0..90 {
        routes.push((
            Route::any_host(format!("/api/v{}/team{i}", i % 3)),
            1000 + i,
        ));
    }
    for i in 0..10 {
        routes.push((
            Route::on_host(format!("tenant{i}.example.com"), "/"),
            2000 + i,
        ));
    }
    let router = Router::new(routes);
    assert_eq!(router.len(), 1000);

    let cases = [
        ("short path", None, "/svc450"),
        ("deep path", None, "/api/v1/team40/users/7/orders?x=1"),
        (
            "host route",
            Some("Tenant3.example.com:8080"),
            "/anything/here",
        ),
        ("miss", None, "/nothing/matches/this/path"),
    ];
    let mut group = c.benchmark_group("router lookup, 1000 routes");
    for (name, host, path) in cases {
        group.bench_function(name, |b| {
            b.iter(|| router.lookup(black_box(host), black_box(path)))
        });
    }
    group.finish();
}

criterion_group!(benches, router);
criterion_main!(benches);
