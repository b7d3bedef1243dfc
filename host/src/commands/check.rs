//! `wasmhost check`: parse, validate and compile every component; print
//! every problem; exit 1 if there is any.

use crate::cache::ArtifactCache;
use crate::cli::CheckArgs;
use crate::component::ComponentCache;
use crate::engine::{new_engine, new_linker};
use crate::manifest::Manifest;
use crate::metrics::Metrics;
use crate::reload::Reloader;

/// Checks the manifest and its components without serving.
pub fn check(args: CheckArgs) -> anyhow::Result<()> {
    let problems = match Manifest::load(&args.manifest) {
        Err(problems) => problems,
        Ok(manifest) => {
            let engine = new_engine()?;
            let artifacts = ArtifactCache::new(&engine, manifest.host.cache_dir.clone());
            let cache = ComponentCache::new(engine.clone(), new_linker(&engine)?, artifacts);
            match Reloader::start(&manifest, cache, Metrics::new()) {
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
