//! `wasmhost serve`: load, compile, bind, serve, reload, drain.

use std::sync::Arc;

use anyhow::Context as _;

use crate::cli::ServeArgs;
use crate::config::manifest::Problems;
use crate::control::admin::{self, AdminState};
use crate::control::readiness::Readiness;
use crate::control::shutdown;
use crate::dataplane::balance::{Balance, HandedOver};
use crate::dataplane::listen::{self, Plane};
use crate::dataplane::server::Server;
use crate::observe::metrics::Metrics;
use crate::services::reload::Reloader;
use crate::services::{registry, watch};
use crate::wasm::cache::ArtifactCache;
use crate::wasm::component::{ComponentCache, Loader};
use crate::wasm::engine::{Engines, EpochTicker, PoolSize};
use crate::wasm::function_cache::FunctionCache;

/// Task polls between two checks for socket readiness (see `serve`).
const EVENT_INTERVAL: u32 = 4;

/// Runs the host until SIGTERM or SIGINT; every configuration problem is
/// reported before any port is bound.
///
/// Threads: one I/O worker per core, each a current-thread runtime with its
/// own `SO_REUSEPORT` listener, so a connection, its requests and their
/// guests stay on one thread; a low-priority slow lane for guests that
/// compute for long (see [`crate::dataplane::lanes`]); and the control runtime on the
/// main thread (admin plane, signals, reloads).
pub fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let manifest = crate::oci::load(&args.manifest).map_err(reported)?;
    // Spans go out from their own thread, configured by OTEL_* variables;
    // dropping the guard at the end exports what is still queued.
    let _traces = crate::observe::otlp::start()?;
    let activated = listen::activated()?;
    listen::raise_descriptor_limit(manifest.host.max_connections);
    let listen = args.listen.unwrap_or(manifest.host.listen);
    let admin_addr = match &activated.admin {
        Some(socket) => Some(socket.local_addr()?),
        None => args.admin.or(manifest.host.admin),
    };
    let admin_token = admin_addr.map(admin::token_for).transpose()?.flatten();
    let workers = worker_count()?;
    let control = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let slow_lane = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .worker_threads(workers)
        .thread_name("wasmhost-slow")
        .on_thread_start(crate::wasm::priority::lower_this_thread)
        .event_interval(EVENT_INTERVAL)
        .build()
        .context("starting the slow lane")?;
    let slow_handle = slow_lane.handle().clone();
    let result = control.block_on(async move {
        let pool = PoolSize::for_manifest(&manifest);
        tracing::info!(
            instances = pool.instances,
            keep_resident = pool.keep_resident,
            "instance pools sized"
        );
        let functions = (manifest.host.incremental_compilation)
            .then(|| FunctionCache::new(&manifest.host.cache_dir));
        let engines = Engines::new(pool, functions)?;
        let metrics = Metrics::new();
        let readiness = Readiness::new();
        let loading = readiness.loading();
        let artifacts = ArtifactCache::new(manifest.host.cache_dir.clone());
        let cache = ComponentCache::new(Loader::new(engines.clone(), artifacts, metrics.clone()));
        // The reloader compares later manifests with this one as written;
        // command-line overrides apply to binding only.
        let (reloader, registry) =
            Reloader::start(&manifest, cache, metrics.clone()).map_err(reported)?;
        // Watch before binding: a change made right after the `listening`
        // event must not be missed.
        let _watcher = if manifest.host.watch {
            Some(watch::start(reloader.clone())?)
        } else {
            None
        };
        let _ticker = EpochTicker::start(engines.clone());
        // Handlers first: a signal sent right after `listening` must not
        // meet the default action.
        let stop = shutdown::stop_signal().context("installing signal handlers")?;
        tokio::spawn(
            shutdown::reload_on_hangup(reloader.clone()).context("installing signal handlers")?,
        );

        let admin_listener = match activated.admin {
            Some(socket) => {
                listen::log_activated(Plane::Admin, &socket)?;
                Some(tokio::net::TcpListener::from_std(socket)?)
            }
            None => match admin_addr {
                Some(addr) => Some(listen::bind(Plane::Admin, addr).await?),
                None => None,
            },
        };
        if let Some(listener) = admin_listener {
            let state = Arc::new(AdminState {
                registry: registry.clone(),
                reloader: reloader.clone(),
                readiness: readiness.clone(),
                metrics: metrics.clone(),
                token: admin_token,
            });
            tokio::spawn(admin::serve(listener, state));
        }
        let listeners = match activated.data {
            // One socket from systemd: every worker accepts on a copy.
            Some(socket) => {
                listen::log_activated(Plane::Data, &socket)?;
                let mut copies = (1..workers)
                    .map(|_| socket.try_clone())
                    .collect::<std::io::Result<Vec<_>>>()?;
                copies.push(socket);
                copies
            }
            None => listen::bind_shared(Plane::Data, listen, workers)?,
        };
        tokio::spawn(registry::unload_idle(registry.clone()));
        // Always: a reload may bring the first `oci://` service.
        tokio::spawn(crate::oci::poll::run(
            registry.clone(),
            reloader.clone(),
            manifest.host.clone(),
        ));

        let (balance, inboxes) = Balance::new(listeners.len());
        let server = Server::new(
            slow_handle,
            registry.clone(),
            metrics,
            &manifest.host,
            balance,
        );
        _ticker.slow_down_when_idle({
            let server = server.clone();
            move || server.busy()
        });
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let io_workers = listeners
            .into_iter()
            .zip(inboxes)
            .enumerate()
            .map(|(i, (listener, inbox))| {
                start_io_worker(i, listener, inbox, server.clone(), stop_rx.clone())
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        // Every service is loaded and every worker accepts: ready.
        drop(loading);

        let idle_exit = async {
            match args.idle_exit {
                Some(idle) => server.idle_for(idle).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = stop => {}
            () = idle_exit => tracing::info!(
                idle_exit = ?args.idle_exit.unwrap_or_default(),
                "no requests for the idle-exit time: stopping"
            ),
        }
        // Readiness turns 503 first, so a load balancer stops sending new
        // work while in-flight requests finish.
        readiness.drain();
        let _ = stop_tx.send(true);
        // Workers drain on their own threads; wait for them here.
        let runtimes = tokio::task::spawn_blocking(move || {
            io_workers
                .into_iter()
                .filter_map(|worker| worker.join().ok())
                .collect::<Vec<_>>()
        })
        .await
        .unwrap_or_default();
        // Compiled functions still queued for `<cache_dir>/functions/` (not
        // waited for at start: readiness does not need them).
        if let Some(functions) = engines.functions() {
            functions.flush();
        }
        tracing::info!("stopped");
        anyhow::Ok(runtimes)
    });
    // Guests moved to the slow lane may hold timers of an I/O worker's
    // runtime: stop the slow lane before the workers' runtimes go.
    slow_lane.shutdown_timeout(std::time::Duration::from_millis(100));
    drop(result?);
    Ok(())
}

/// I/O workers: `WASMHOST_WORKERS` when set, else one per available core.
fn worker_count() -> anyhow::Result<usize> {
    match std::env::var("WASMHOST_WORKERS") {
        Ok(value) => value
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=1024).contains(n))
            .with_context(|| {
                format!("WASMHOST_WORKERS must be a number from 1 to 1024, not `{value}`")
            }),
        Err(_) => Ok(std::thread::available_parallelism().map_or(1, |n| n.get())),
    }
}

/// Starts I/O worker `index` on its own thread and current-thread runtime;
/// it serves `listener` until `stop` turns true, drains, and hands its
/// runtime back (still alive, see the end of [`serve`]).
fn start_io_worker(
    index: usize,
    listener: std::net::TcpListener,
    inbox: tokio::sync::mpsc::UnboundedReceiver<HandedOver>,
    server: Arc<Server>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<std::thread::JoinHandle<tokio::runtime::Runtime>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        // Guests that compute yield every epoch tick (1 ms) but stay
        // runnable until they move to the slow lane; tokio polls sockets
        // only every `event_interval` task polls (61 by default). Polling
        // every few tasks keeps other requests' latency low meanwhile.
        .event_interval(EVENT_INTERVAL)
        .build()
        .context("starting an I/O worker's runtime")?;
    std::thread::Builder::new()
        .name(format!("wasmhost-io-{index}"))
        .spawn(move || {
            runtime.block_on(async move {
                let listener = match tokio::net::TcpListener::from_std(listener) {
                    Ok(listener) => listener,
                    Err(err) => {
                        tracing::error!(error = %err, "an I/O worker cannot use its listener");
                        return;
                    }
                };
                let stop = async move {
                    let _ = stop.wait_for(|stop| *stop).await;
                };
                if let Err(err) = server.serve(index, listener, inbox, stop).await {
                    tracing::error!(error = format!("{err:#}"), "an I/O worker failed");
                }
            });
            runtime
        })
        .context("starting an I/O worker thread")
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
