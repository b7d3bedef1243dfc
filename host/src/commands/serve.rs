//! `wasmhost serve`: load, compile, bind, serve, drain.

use std::sync::Arc;

use anyhow::Context as _;

use crate::cli::ServeArgs;
use crate::engine::{EpochTicker, new_engine, new_linker};
use crate::listen::{self, Plane};
use crate::manifest::{Manifest, Problems};
use crate::registry::{Registry, Snapshot};
use crate::server::Server;
use crate::shutdown;

/// Runs the host until SIGTERM or SIGINT; every configuration problem is
/// reported before any port is bound.
pub fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let mut manifest = Manifest::load(&args.manifest).map_err(reported)?;
    if let Some(listen) = args.listen {
        manifest.host.listen = listen;
    }
    if let Some(admin) = args.admin {
        manifest.host.admin = Some(admin);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("wasmhost-worker")
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let engine = new_engine()?;
        let linker = new_linker(&engine)?;
        let services = super::load_services(&engine, &linker, &manifest)
            .map_err(|problems| reported(Problems(problems)))?;
        let registry = Arc::new(Registry::new(Snapshot::new(services, 1)));
        let listener = listen::bind(Plane::Data, manifest.host.listen).await?;
        let _ticker = EpochTicker::start(engine.clone());
        let server = Server::new(engine, registry, manifest.host.shutdown_grace);
        server.serve(listener, shutdown::signal()).await?;
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
