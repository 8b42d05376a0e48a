//! `traguardo bench`: measures the event store on this machine.

use std::process::ExitCode;

/// `traguardo bench` options.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {}

/// Runs the benchmarks and prints the figures.
///
/// # Errors
/// When the scratch database cannot be written.
pub fn run(_args: BenchArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("benchmarks are being built")
}
