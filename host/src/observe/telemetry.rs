//! Logging setup: the filter comes from `WASMHOST_LOG` (tracing `EnvFilter`
//! syntax, default `info`); the format is one JSON object per line or
//! human-readable text. Logs go to stdout.
//!
//! Events are formatted on the thread that emits them but written by a
//! dedicated thread, so a request never waits for a `write` to stdout (one
//! log line per request is part of the contract; a blocking write per line
//! cost ~40% of throughput). The writer applies backpressure instead of
//! dropping lines when stdout cannot keep up.

use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;

/// Lines buffered for the writer thread before emitters wait.
const BUFFERED_LINES: usize = 8 * 1024;

/// Bytes the writer thread gathers before writing to stdout.
const WRITE_BUFFER_BYTES: usize = 64 * 1024;

/// How log events are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line.
    Json,
    /// Human-readable lines.
    Text,
}

/// Installs the global subscriber. Keep the returned guard alive until the
/// process ends: dropping it flushes what is still buffered.
pub fn init(format: LogFormat) -> WorkerGuard {
    let filter = EnvFilter::try_from_env("WASMHOST_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(false)
        .buffered_lines_limit(BUFFERED_LINES)
        .thread_name("wasmhost-log")
        // The writer thread drains every queued line into this buffer and
        // flushes once the queue is empty: one `write` per batch of lines,
        // not per line, under load.
        .finish(std::io::BufWriter::with_capacity(
            WRITE_BUFFER_BYTES,
            std::io::stdout(),
        ));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
            .try_init(),
    };
    guard
}
