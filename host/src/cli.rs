//! Command-line types. Flags that also exist in the manifest become
//! overrides of the manifest's `[host]` section.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

/// `wasmhost`: serve WebAssembly HTTP components.
#[derive(Debug, Parser)]
#[command(name = "wasmhost", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Load the manifest, compile every component and serve HTTP.
    Serve(ServeArgs),
    /// Parse, validate and compile every component; print every problem.
    Check(CheckArgs),
}

/// Arguments of `wasmhost serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// The manifest (TOML).
    pub manifest: PathBuf,
    /// Data-plane address; overrides `[host] listen`. Port 0 picks a free port.
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Admin-plane address; overrides `[host] admin`.
    #[arg(long)]
    pub admin: Option<SocketAddr>,
    /// Log format; default `json` when stdout is not a terminal, else `text`.
    #[arg(long, value_enum)]
    pub log_format: Option<LogFormat>,
    /// Exit 0 after this long without requests (e.g. `30s`).
    #[arg(long, value_parser = parse_duration)]
    pub idle_exit: Option<Duration>,
}

/// Arguments of `wasmhost check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The manifest (TOML).
    pub manifest: PathBuf,
}

/// How log events are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line.
    Json,
    /// Human-readable lines.
    Text,
}

impl Cli {
    /// The log format to use: the flag, else json unless stdout is a terminal.
    pub fn log_format(&self) -> LogFormat {
        let flag = match &self.command {
            Command::Serve(args) => args.log_format,
            Command::Check(_) => Some(LogFormat::Text),
        };
        flag.unwrap_or_else(|| {
            if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
                LogFormat::Text
            } else {
                LogFormat::Json
            }
        })
    }
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    crate::manifest::units::HumanDuration::try_from(text.to_owned())
        .map(|d| d.0)
        .map_err(|e| e.to_string())
}
