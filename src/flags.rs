//! `traguardo flags`: the red flags of a plan year.

use std::path::Path;
use std::process::ExitCode;

/// `traguardo flags` options.
#[derive(Debug, clap::Args)]
pub struct FlagsArgs {
    /// Plan year.
    #[arg(long)]
    pub year: i32,
}

/// Prints the flags.
///
/// # Errors
/// When the database cannot be read.
pub fn run(_db: &Path, _args: FlagsArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("flags are being built")
}
