//! What to serve and with which limits: pure data, no wasmtime.
//!
//! - [`manifest`]: parse and validate `manifest.toml`, every problem with file, line, service and field.
//! - [`limits`]: the per-service limits, declared once.
//! - [`router`]: the pure route table (segment-boundary prefixes, longest match, host routes).

pub mod limits;
pub mod manifest;
pub mod router;
