//! `wasmhost serve`: load, compile, bind, serve, reload, drain.

use std::sync::Arc;

use anyhow::Context as _;

use crate::admin::{self, AdminState};
use crate::cache::ArtifactCache;
use crate::cli::ServeArgs;
use crate::component::ComponentCache;
use crate::engine::{EpochTicker, new_engine, new_linker};
use crate::listen::{self, Plane};
use crate::manifest::{Manifest, Problems};
use crate::metrics::Metrics;
use crate::readiness::Readiness;
use crate::reload::Reloader;
use crate::server::Server;
use crate::{shutdown, watch};

/// Task polls between two checks for socket readiness (see `serve`).
const EVENT_INTERVAL: u32 = 4;

/// Runs the host until SIGTERM or SIGINT; every configuration problem is
/// reported before any port is bound.
pub fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let manifest = Manifest::load(&args.manifest).map_err(reported)?;
    let listen = args.listen.unwrap_or(manifest.host.listen);
    let admin_addr = args.admin.or(manifest.host.admin);
    let admin_token = admin_addr.map(admin::token_for).transpose()?.flatten();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("wasmhost-worker")
        // Guests that compute yield every epoch tick (1 ms) but stay
        // runnable, so a worker's run queue is never empty; tokio then polls
        // sockets only every `event_interval` task polls (61 by default),
        // i.e. every ~60 ms behind CPU-bound guests. Polling every few
        // tasks keeps other requests' latency in milliseconds.
        .event_interval(EVENT_INTERVAL)
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let engine = new_engine()?;
        let metrics = Metrics::new();
        let readiness = Readiness::new();
        let loading = readiness.loading();
        let artifacts = ArtifactCache::new(&engine, manifest.host.cache_dir.clone());
        let cache = ComponentCache::new(engine.clone(), new_linker(&engine)?, artifacts);
        // The reloader compares later manifests with this one as written;
        // command-line overrides apply to binding only.
        let (reloader, registry) =
            Reloader::start(&manifest, cache, metrics.clone()).map_err(reported)?;
        // Every service is loaded: ready once the listeners are up.
        drop(loading);
        // Watch before binding: a change made right after the `listening`
        // event must not be missed.
        let _watcher = if manifest.host.watch {
            Some(watch::start(reloader.clone())?)
        } else {
            None
        };
        let _ticker = EpochTicker::start(engine.clone());

        if let Some(addr) = admin_addr {
            let listener = listen::bind(Plane::Admin, addr).await?;
            let state = Arc::new(AdminState {
                registry: registry.clone(),
                reloader: reloader.clone(),
                readiness: readiness.clone(),
                metrics: metrics.clone(),
                token: admin_token,
            });
            tokio::spawn(admin::serve(listener, state));
        }
        let listener = listen::bind(Plane::Data, listen).await?;

        tokio::spawn(shutdown::reload_on_hangup(reloader));
        let server = Server::new(engine, registry, metrics, manifest.host.shutdown_grace);
        let stop = async {
            shutdown::signal().await;
            // Readiness turns 503 first, so a load balancer stops sending
            // new work while in-flight requests finish.
            readiness.drain();
        };
        server.serve(listener, stop).await?;
        tracing::info!("stopped");
        Ok(())
    })
}

/// Prints every problem to stderr and turns them into the error that makes
/// the process exit 1.
fn reported(problems: Problems) -> anyhow::Error {
    for problem in &problems.0 {
        eprintln!("{problem}");
    }
    anyhow::anyhow!(
        "{} configuration problem(s); nothing was started",
        problems.0.len()
    )
}
