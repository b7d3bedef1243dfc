//! What the host tells its operators.
//!
//! - [`metrics`]: every `wasmhost_*` metric, defined once.
//! - [`telemetry`]: logging setup (`WASMHOST_LOG`, json or text).
//! - [`traces`]: W3C trace context and the spans the host records.
//! - [`otlp`]: their export over OTLP/HTTP, in the protobuf of
//!   [`otlp_wire`].

pub mod metrics;
pub mod otlp;
pub mod otlp_wire;
pub mod telemetry;
pub mod traces;
