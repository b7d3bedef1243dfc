//! `wasmhost check` and `wasmhost compile`: parse, validate and compile
//! every component; print every problem; exit 1 if there is any. Both leave
//! the compiled code in `cache_dir`; `compile` says where.

use crate::cache::ArtifactCache;
use crate::cli::CheckArgs;
use crate::component::{ComponentCache, Loader};
use crate::engine::{Engines, pool_instances};
use crate::manifest::Manifest;
use crate::metrics::Metrics;
use crate::reload::Reloader;

/// Checks the manifest and its components without serving; `compile`
/// reports the filled cache instead of "ok".
pub fn check(args: CheckArgs, compile: bool) -> anyhow::Result<()> {
    let problems = match Manifest::load(&args.manifest) {
        Err(problems) => problems,
        Ok(manifest) => {
            let artifacts = ArtifactCache::new(manifest.host.cache_dir.clone());
            let instances =
                pool_instances(manifest.services.iter().map(|s| s.limits.max_concurrency));
            let metrics = Metrics::new();
            let loader = Loader::new(Engines::new(instances)?, artifacts, metrics.clone());
            match Reloader::start(&manifest, ComponentCache::new(loader), metrics) {
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
