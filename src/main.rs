//! `traguardo`: parse the command line, run it, print the one error if it fails.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = traguardo::cli::Cli::parse();
    match traguardo::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("traguardo: {e:#}");
            ExitCode::FAILURE
        }
    }
}
