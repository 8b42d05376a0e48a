//! `traguardo bench-http`: load on the HTTP API over loopback.

use std::process::ExitCode;

/// `traguardo bench-http` options.
#[derive(Debug, clap::Args)]
pub struct BenchHttpArgs {}

/// Runs the HTTP benchmark.
///
/// # Errors
/// When the server cannot start.
pub fn run(_args: BenchHttpArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("the HTTP benchmark is being built")
}
