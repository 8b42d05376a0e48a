//! The HTTP API v1 (DESIGN.md §5).

use std::path::Path;
use std::process::ExitCode;

/// `traguardo serve` options.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "TRAGUARDO_ADDR", default_value = "127.0.0.1:8080")]
    pub addr: String,
    /// An admin token accepted for this run.
    #[arg(long, env = "TRAGUARDO_BOOTSTRAP_TOKEN")]
    pub bootstrap_token: Option<String>,
    /// Load the bundled Alessandria 2022 plan into an empty database.
    #[arg(long)]
    pub demo: bool,
}

/// Runs the server until SIGTERM or Ctrl-C.
///
/// # Errors
/// When the database cannot be opened or the address bound.
pub fn serve_blocking(_db: &Path, _args: ServeArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("the HTTP server is being built")
}
