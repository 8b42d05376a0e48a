//! `traguardo bench-web`: todo
use std::process::ExitCode;

/// Options.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchWebArgs {}

/// Runs the benchmark.
///
/// # Errors
/// todo
pub fn run(_args: BenchWebArgs) -> anyhow::Result<ExitCode> {
    Ok(ExitCode::SUCCESS)
}
