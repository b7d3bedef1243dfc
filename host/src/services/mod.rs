//! The live set of services.
//!
//! - [`service`]: a loaded service: its code (loaded or not), sandbox and admission.
//! - [`registry`]: the live routing snapshot behind an `ArcSwap`.
//! - [`reload`]: building snapshots from the manifest, at start and on reload.
//! - [`watch`]: watching the manifest's and components' folders.

pub mod registry;
pub mod reload;
pub mod service;
pub mod watch;
