//! The control plane.
//!
//! - [`admin`]: the admin listener: health, readiness, metrics, services, reload.
//! - [`readiness`]: the readiness latch and the draining flag.
//! - [`shutdown`]: signals: SIGTERM/SIGINT drain and stop, SIGHUP reloads.

pub mod admin;
pub mod readiness;
pub mod shutdown;
