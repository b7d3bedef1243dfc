//! The subcommands. Each file orchestrates; the work lives in the modules
//! it calls.

mod check;
mod new;
mod serve;

use crate::cli::{Cli, Command};

/// Runs the command `cli` names.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => serve::serve(args),
        Command::Check(args) => check::check(args, false),
        Command::Compile(args) => check::check(args, true),
        Command::New(args) => new::new(args),
    }
}
