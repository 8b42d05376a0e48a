//! `traguardo`: parse the command line, run it, print the one error if it fails.

use std::process::ExitCode;

use clap::Parser;

/// mimalloc, not the system's allocator. A server's requests allocate and
/// free many small buffers on every thread, and glibc's malloc spent a tenth
/// of a loaded server's time in itself (merging freed chunks before each
/// answer of tens of KB); BENCHMARKS.md has the figures.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
