//! Command-line types. Flags that also exist in the manifest become
//! overrides of the manifest's `[host]` section.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::observe::telemetry::LogFormat;
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
    /// Compile every component into the manifest's `cache_dir` (for
    /// container images and CI), then exit; like `check` otherwise.
    Compile(CheckArgs),
    /// Create a guest project that builds and serves with no edits.
    New(NewArgs),
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

/// Arguments of `wasmhost new`.
#[derive(Debug, clap::Args)]
pub struct NewArgs {
    /// The service's name (`[a-z0-9-]+`); also the folder, unless `--dir`.
    pub name: String,
    /// What to start from.
    #[arg(long, value_enum)]
    pub template: Option<Template>,
    /// The folder to create (default: NAME).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// The wasmhost SDK sources (default: the `sdk/` this binary was built from).
    #[arg(long)]
    pub sdk: Option<PathBuf>,
}

/// Starting points for `wasmhost new`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Template {
    /// One handler function.
    Http,
    /// A `Router` with path parameters.
    Router,
    /// A JSON API with serde.
    JsonApi,
    /// State in a key-value store: a visit counter and notes.
    Kv,
}

impl Template {
    /// The template's name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Template::Http => "http",
            Template::Router => "router",
            Template::JsonApi => "json-api",
            Template::Kv => "kv",
        }
    }
}

impl Cli {
    /// The log format to use: the flag, else json unless stdout is a terminal.
    pub fn log_format(&self) -> LogFormat {
        let flag = match &self.command {
            Command::Serve(args) => args.log_format,
            Command::Check(_) | Command::Compile(_) | Command::New(_) => Some(LogFormat::Text),
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
    crate::config::manifest::units::HumanDuration::try_from(text.to_owned())
        .map(|d| d.0)
        .map_err(|e| e.to_string())
}
