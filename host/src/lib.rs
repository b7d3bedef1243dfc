//! wasmhost: one process that serves many HTTP microservices, each a
//! sandboxed WebAssembly component (WASI 0.2 `wasi:http/proxy` or WASI 0.3
//! `wasi:http/service`), with fuel, memory and wall-clock limits per request.
//!
//! # Layout
//! Folders are the planes; imports point down this list (a module uses
//! those above it, never those below):
//! - [`config`]: what to serve and with which limits, pure data:
//!   `manifest/`, `limits` (declared once), `router` (the pure route table).
//! - [`observe`]: `metrics` (every `wasmhost_*` name) and `telemetry` (logs).
//! - [`stores`]: key-value stores (`embedded` SQLite), opened from the
//!   manifest and shared by the services that list them.
//! - [`wasm`]: wasmtime: `engine`, `cache`, `component`, `sandbox` (the one
//!   place a `Store` is built), `state`, `outbound`, `guest_log`.
//! - [`services`]: the live set: `service` (code, sandbox, admission),
//!   `registry` (`ArcSwap` snapshot), `reload`, `watch`.
//! - [`dataplane`]: one request, accept to last byte: `listen`, `server`,
//!   `request` (the one request path, fresh or reused instance), `reuse`,
//!   `outcome` (how a request ended: classify, log, metrics), `lanes`,
//!   `body`, `error_kind` (SPEC's table; a leaf the lower planes may name).
//! - [`control`]: `admin`, `readiness`, `shutdown`.
//! - [`cli`] and [`commands`]: clap types, and `serve`, `check`, `compile`,
//!   `new`, orchestration only.
#![deny(missing_docs)]

pub mod cli;
pub mod commands;
pub mod config;
pub mod control;
pub mod dataplane;
pub mod observe;
pub mod oci;
pub mod services;
pub mod stores;
pub mod wasm;
