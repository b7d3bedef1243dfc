//! `wasmhost check`: parse, validate and compile every component; print
//! every problem; exit 1 if there is any.

use crate::cli::CheckArgs;
use crate::engine::{new_engine, new_linker};
use crate::manifest::Manifest;

/// Checks the manifest and its components without serving.
pub fn check(args: CheckArgs) -> anyhow::Result<()> {
    let problems = match Manifest::load(&args.manifest) {
        Err(problems) => problems.0,
        Ok(manifest) => {
            let engine = new_engine()?;
            let linker = new_linker(&engine)?;
            match super::load_services(&engine, &linker, &manifest) {
                Ok(services) => {
                    println!(
                        "{}: ok, {} service(s)",
                        args.manifest.display(),
                        services.len()
                    );
                    return Ok(());
                }
                Err(problems) => problems,
            }
        }
    };
    for problem in &problems {
        println!("{problem}");
    }
    anyhow::bail!("{} problem(s) found", problems.len())
}
