//! What the host tells its operators.
//!
//! - [`metrics`]: every `wasmhost_*` metric, defined once.
//! - [`telemetry`]: logging setup (`WASMHOST_LOG`, json or text).
//! - [`traces`]: W3C trace context and OTLP span export.

pub mod metrics;
pub mod telemetry;
pub mod traces;
