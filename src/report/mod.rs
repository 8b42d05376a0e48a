//! End-of-year achievement reports.

use std::path::Path;
use std::process::ExitCode;

/// `traguardo report` options.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// Plan year.
    #[arg(long)]
    pub year: i32,
    /// json, csv, md or html.
    #[arg(long, default_value = "md")]
    pub format: String,
}

/// Prints a report.
///
/// # Errors
/// When the database cannot be read.
pub fn run(_db: &Path, _args: ReportArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("reports are being built")
}
