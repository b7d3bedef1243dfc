//! What the host tells its operators.
//!
//! - [`metrics`]: every `wasmhost_*` metric, defined once.
//! - [`telemetry`]: logging setup (`WASMHOST_LOG`, json or text); lines
//!   reach stdout through `log_sink`, the request's written by hand by
//!   [`json_line`]; ids in fixed-width hex by [`hex`].
//! - [`traces`]: W3C trace context and the spans the host records
//!   (queued for export by `span_queue`).
//! - [`otlp`]: their export over OTLP/HTTP, in the protobuf of
//!   [`otlp_wire`], sent by `otlp_http`.

pub mod hex;
pub mod json_line;
pub mod log_sink;
pub mod metrics;
pub mod otlp;
mod otlp_http;
pub mod otlp_wire;
mod span_queue;
pub mod telemetry;
pub mod traces;
