//! The `wasmhost` binary: parse the command line, set up logging, run, and
//! map the outcome to an exit code (0 clean stop, 1 configuration or start
//! failure, 2 usage error).

use std::process::ExitCode;

use clap::Parser;

/// Every build allocates with mimalloc: musl's own allocator costs half
/// the throughput, and glibc's ~5% of hello's (arena locks when one thread
/// frees what another allocated; see docs/decisions.md). Its arenas commit
/// on demand (`.cargo/config.toml`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = match wasmhost::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            // clap prints help and version to stdout with exit code 0, and
            // usage errors to stderr; usage errors map to exit code 2.
            let _ = err.print();
            return if err.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let logs = wasmhost::observe::telemetry::init(cli.log_format());
    let code = match wasmhost::commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = %format!("{err:#}"), "wasmhost failed");
            eprintln!("error: {err:#}");
            ExitCode::from(1)
        }
    };
    // Flush the log lines still buffered before exiting.
    drop(logs);
    code
}
