//! `wasmhost check` and `wasmhost compile`: parse, validate and compile
//! every component; print every problem; exit 1 if there is any. Both leave
//! the compiled code in `cache_dir`; `compile` says where.

use crate::cli::CheckArgs;
use crate::observe::metrics::Metrics;
use crate::services::reload::Reloader;
use crate::wasm::cache::ArtifactCache;
use crate::wasm::component::{ComponentCache, Loader};
use crate::wasm::engine::{Engines, PoolSize};
use crate::wasm::function_cache::FunctionCache;

/// Checks the manifest and its components without serving; `compile`
/// reports the filled cache instead of "ok".
pub fn check(args: CheckArgs, compile: bool) -> anyhow::Result<()> {
    let problems = match crate::oci::load(&args.manifest) {
        Err(problems) => problems,
        Ok(manifest) => {
            let artifacts = ArtifactCache::new(manifest.host.cache_dir.clone());
            let metrics = Metrics::new();
            let functions = (manifest.host.incremental_compilation)
                .then(|| FunctionCache::new(&manifest.host.cache_dir));
            let loader = Loader::new(
                Engines::new(PoolSize::for_manifest(&manifest), functions.clone())?,
                artifacts,
                metrics.clone(),
            );
            let started = Reloader::start(&manifest, ComponentCache::new(loader), metrics);
            if let Some(functions) = functions {
                functions.flush();
            }
            match started {
                Ok(_) if compile => {
                    println!(
                        "{}: {} service(s) compiled into `{}`",
                        args.manifest.display(),
                        manifest.services.len(),
                        manifest.host.cache_dir.display()
                    );
                    return Ok(());
                }
                Ok(_) => {
                    println!(
                        "{}: ok, {} service(s)",
                        args.manifest.display(),
                        manifest.services.len()
                    );
                    for service in manifest.services.iter().filter(|s| s.routes.is_empty()) {
                        println!(
                            "service `{0}` is private: it has no route, and other services \
                             reach it as http://{0}.internal",
                            service.name
                        );
                    }
                    return Ok(());
                }
                Err(problems) => problems,
            }
        }
    };
    for problem in &problems.0 {
        println!("{problem}");
    }
    anyhow::bail!("{} problem(s) found", problems.0.len())
}
