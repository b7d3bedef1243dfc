//! wasmhost: one process that serves many HTTP microservices, each a
//! sandboxed WebAssembly component (WASI 0.2 `wasi:http/proxy` or WASI 0.3
//! `wasi:http/service`), with fuel, memory and wall-clock limits per request.
//!
//! # Layout
//! - [`cli`]: clap types; flags become overrides on the manifest's `[host]`.
//! - [`commands`]: `serve` and `check`, orchestration only.
//! - [`manifest`]: parse and validate `manifest.toml`, every problem with file, line, service and field.
//! - [`limits`]: the one `Limits` struct per service and how it is applied to a `Store`.
//! - [`router`]: pure route table (segment-boundary prefixes, longest match, host routes).
//! - [`engine`]: the wasmtime `Engine` (async, pooling allocator, fuel, epochs), the linker, the epoch ticker.
//! - [`state`]: per-request store data (`HostState`) and its WASI views.
//! - [`outbound`]: the outbound HTTP policy (`allowed_outbound_hosts`).
//! - [`guest_log`]: a guest's stdout/stderr turned into log events.
//! - [`cache`]: the precompiled-artifact cache on disk (`cache_dir`).
//! - [`component`]: compiled components and their in-memory cache by content hash.
//! - [`service`]: a loaded service: its compiled component, limits, sandbox and admission.
//! - [`invoke`]: one request: fresh store, instantiate, call, classify the failure.
//! - [`reuse`]: WASI 0.3 instances serving several requests, fuel refilled per request.
//! - [`lanes`]: guests start on their connection's I/O thread; long computations move to a low-priority slow lane.
//! - [`error_kind`]: what the client gets when the host answers (SPEC's table, in one place).
//! - [`body`]: request-body limit and the response body that aborts on a late guest failure.
//! - [`metrics`]: every `wasmhost_*` metric, defined once.
//! - [`admin`]: the admin plane: health, readiness, metrics, services, reload.
//! - [`readiness`]: readiness latch and the draining flag.
//! - [`registry`]: the live routing snapshot behind an `ArcSwap`.
//! - [`reload`]: building snapshots from the manifest, at start and on reload.
//! - [`watch`]: watching the manifest's and components' folders.
//! - [`server`]: the data plane: `Server::serve(listener, shutdown)`.
//! - [`listen`]: binding listeners (one `SO_REUSEPORT` socket per I/O worker) and the `listening` startup event.
//! - [`shutdown`]: signals: SIGTERM/SIGINT drain and stop, SIGHUP reloads.
//! - [`telemetry`]: logging setup (`WASMHOST_LOG`, json or text).
#![deny(missing_docs)]

pub mod admin;
pub mod body;
pub mod cache;
pub mod cli;
pub mod commands;
pub mod component;
pub mod engine;
pub mod error_kind;
pub mod guest_log;
pub mod invoke;
pub mod lanes;
pub mod limits;
pub mod listen;
pub mod manifest;
pub mod metrics;
pub mod outbound;
pub mod readiness;
pub mod registry;
pub mod reload;
pub mod reuse;
pub mod router;
pub mod server;
pub mod service;
pub mod shutdown;
pub mod state;
pub mod telemetry;
pub mod watch;
