//! What the host tells its operators.
//!
//! - [`metrics`]: every `wasmhost_*` metric, defined once.
//! - [`telemetry`]: logging setup (`WASMHOST_LOG`, json or text).

pub mod metrics;
pub mod telemetry;
