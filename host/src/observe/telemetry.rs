//! Logging setup: the filter comes from `WASMHOST_LOG` (tracing `EnvFilter`
//! syntax, default `info`); the format is one JSON object per line or
//! human-readable text. Logs go to stdout.
//!
//! Events are formatted on the thread that emits them and appended to that
//! thread's log buffer; one writer thread moves them to stdout in batches
//! ([`super::log_sink`]), so a request never waits for a `write` (one log
//! line per request is part of the contract; a blocking write per line cost
//! ~40% of throughput). The request line itself is written by hand in JSON
//! format ([`super::json_line`]); everything else goes through
//! `tracing-subscriber`.

use std::sync::atomic::{AtomicBool, Ordering};

use tracing_subscriber::EnvFilter;

use super::log_sink::{SinkGuard, SinkWriter};

/// Whether lines are JSON (so the request line may be written by hand).
static JSON: AtomicBool = AtomicBool::new(false);

/// How log events are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line.
    Json,
    /// Human-readable lines.
    Text,
}

/// Installs the global subscriber. Keep the returned guard alive until the
/// process ends: dropping it writes what is still buffered.
pub fn init(format: LogFormat) -> SinkGuard {
    let filter = EnvFilter::try_from_env("WASMHOST_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let guard = super::log_sink::start();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(SinkWriter);
    let installed = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
            .try_init(),
    };
    JSON.store(
        installed.is_ok() && format == LogFormat::Json,
        Ordering::Relaxed,
    );
    guard
}

/// Whether log lines are JSON written through the log sink, so a line may
/// be written by hand ([`super::json_line`]) instead of as a `tracing`
/// event.
pub fn json_lines() -> bool {
    JSON.load(Ordering::Relaxed)
}
