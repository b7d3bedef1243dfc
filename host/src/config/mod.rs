//! What to serve and with which limits: pure data, no wasmtime.
//!
//! - [`manifest`]: parse and validate `manifest.toml`, every problem with file, line, service and field.
//! - [`limits`]: the per-service limits, declared once (one table generates
//!   `Limits`, their manifest keys, bounds and overrides).
//! - [`units`]: the generic validated units (durations, sizes, fuel, counts).
//! - [`problem`]: `Problem`, `Problems` and the `Collector` that gathers them.
//! - [`router`]: the pure route table (segment-boundary prefixes, longest match, host routes).
//!
//! Imports point down: `manifest` uses `limits`, which uses `units` and
//! `problem`; `limits` never imports `manifest`.

pub mod limits;
pub mod manifest;
pub mod problem;
pub mod router;
pub mod units;
