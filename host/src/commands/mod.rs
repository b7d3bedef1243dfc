//! The subcommands. Each file orchestrates; the work lives in the modules
//! it calls.

mod check;
mod serve;

use std::sync::Arc;

use wasmtime::Engine;
use wasmtime::component::Linker;

use crate::cli::{Cli, Command};
use crate::manifest::{Manifest, Problem};
use crate::service::LoadedService;
use crate::state::HostState;

/// Runs the command `cli` names.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => serve::serve(args),
        Command::Check(args) => check::check(args),
    }
}

/// Loads every service of `manifest`; a service that fails to load becomes a
/// problem naming the service and its `component` field.
pub(crate) fn load_services(
    engine: &Engine,
    linker: &Linker<HostState>,
    manifest: &Manifest,
) -> Result<Vec<Arc<LoadedService>>, Vec<Problem>> {
    let mut services = Vec::new();
    let mut problems = Vec::new();
    for config in &manifest.services {
        match LoadedService::load(engine, linker, config.clone()) {
            Ok(service) => {
                tracing::info!(
                    service = %service.name,
                    world = ?service.world,
                    sha256 = %service.sha256,
                    "service loaded"
                );
                services.push(Arc::new(service));
            }
            Err(err) => problems.push(Problem {
                file: manifest.path.clone(),
                line: config.component_at.0,
                col: config.component_at.1,
                service: Some(config.name.clone()),
                field: Some("component".into()),
                message: format!("{err:#}"),
            }),
        }
    }
    if problems.is_empty() {
        Ok(services)
    } else {
        Err(problems)
    }
}
