//! The wasmtime side: engines, compiled code, and what a guest may touch.
//!
//! - [`engine`]: the engines (async, pooling allocator, fuel, epochs), the linkers, the epoch ticker.
//! - [`cache`]: the precompiled-artifact cache on disk (`cache_dir`).
//! - [`function_cache`]: the incremental compilation cache: compiled functions on disk, reused when a component is compiled again.
//! - [`component`]: compiled components and their in-memory cache by content hash.
//! - [`sandbox`]: a service version's sandbox and the one function that builds a `Store` from it.
//! - [`state`]: per-request store data (`HostState`), its WASI views and the memory limiter.
//! - [`outbound`]: the outbound HTTP policy (`allowed_outbound_hosts`).
//! - [`priority`]: background priority for compiler and slow-lane threads.
//! - [`reuse`]: instances that serve more than one request: a pool (one at a time) or shared (WASI 0.3, several at once).
//! - [`keyvalue`]: the key-value and variables interfaces (wasi:keyvalue, wasi:config, Spin's).
//! - [`keyvalue_draft`]: `wasi:keyvalue@0.2.0-draft`, the older draft, on the same stores.
//! - [`guest_log`]: a guest's stdout/stderr turned into log events.

pub mod cache;
pub mod component;
pub mod engine;
pub mod function_cache;
pub mod guest_log;
pub mod keyvalue;
pub mod keyvalue_draft;
pub mod keyvalue_spin3;
pub mod outbound;
pub mod priority;
pub mod reuse;
pub mod sandbox;
pub mod state;
