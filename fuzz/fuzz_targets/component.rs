//! Fuzzes loading a component from arbitrary bytes, through the host's own
//! path: `Loader::compile`, which `ComponentCache::get` and `precompile`
//! call on a component file's bytes at start and reload. It validates and
//! compiles the bytes on the WASI 0.2 engine, retries on the WASI 0.3 engine,
//! resolves the imports against the WASI linker and looks for a `wasi:http`
//! handler export.
//!
//! Checks that any bytes give either a `Compiled` (with the hash it was
//! given) or a clean error, never a panic or a crash; and that the error
//! displays without panicking.
//!
//! The engines are built once, with a pool of a few instances (nothing is
//! instantiated; the pool only reserves address space). The artifact cache
//! points below `/dev/null`, so it never has an artifact and cannot store
//! one: every input is compiled, and nothing is written to disk.

#![no_main]

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha256};
use wasmhost::observe::metrics::Metrics;
use wasmhost::wasm::cache::ArtifactCache;
use wasmhost::wasm::component::Loader;
use wasmhost::wasm::engine::{Engines, Fuel, PoolSize};

/// Instances in each engine's pool; compiling needs none.
const POOL_INSTANCES: u32 = 4;

fn loader() -> &'static Loader {
    static LOADER: OnceLock<Arc<Loader>> = OnceLock::new();
    LOADER.get_or_init(|| {
        let engines = Engines::new(
            PoolSize {
                instances: POOL_INSTANCES,
                ..PoolSize::default()
            },
            None,
        )
        .expect("the WASI 0.2 engine builds");
        // A directory below a character device can never be created.
        let artifacts = ArtifactCache::new(PathBuf::from("/dev/null/wasmhost-fuzz-cache"));
        Loader::new(engines, artifacts, Metrics::new())
    })
}

fuzz_target!(|bytes: &[u8]| {
    let sha256: String = Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    match loader().compile(bytes, &sha256, Path::new("fuzz.wasm"), Fuel::Metered) {
        Ok((compiled, _source)) => assert_eq!(compiled.sha256, sha256),
        // The error is shown to the user: displaying it must not panic.
        Err(error) => assert!(!format!("{error:#}").is_empty()),
    }
});
