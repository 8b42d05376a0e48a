//! `traguardo-bench`: measures Traguardo on the machine it runs on. It sits beside
//! the product, not in it: the `traguardo` binary carries none of this.
//!
//! - [`store`]: the event store (batched and durable appends, replay into the
//!   read model), on a scratch database.
//! - [`web`]: the web pages under 16 logged-in sessions over the demo year.
//! - [`http`]: the HTTP API under load, the real server and a load generator
//!   (`wrk` or reqwest) on loopback.
//! - [`proofs`]: the latency of Merkle proofs on a large log, over HTTP.
//! - [`report`]: the report of a plan of 2,000 objectives in every format.
//! - [`start`]: how long `traguardo serve` takes to answer on a large log, from
//!   a full replay and from a snapshot, and the read model's memory.
//!
//! The append loop that the crash test kills is the test-support binary
//! `traguardo-append-loop` (`tests/support/append_loop.rs`) of the root package.
//!
//! Nothing here asserts a time: each command prints what it measured.

mod http;
mod proofs;
mod report;
mod start;
mod store;
mod web;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// The allocator of the `traguardo` binary, so that the server measured here
/// in-process (and the store's baselines beside it) allocates as it does.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Measure Traguardo's event store and HTTP API on this machine.
#[derive(Debug, Parser)]
#[command(name = "traguardo-bench", version, about)]
struct Cli {
    /// What to measure.
    #[command(subcommand)]
    command: Command,
}

/// The benchmarks.
#[derive(Debug, Subcommand)]
enum Command {
    /// Measure the event store (writes a scratch database).
    Store(store::StoreArgs),
    /// Measure the HTTP API: a server and a load generator on loopback, over a
    /// scratch database.
    Http(http::HttpArgs),
    /// Measure the web pages: 16 logged-in sessions over the demo year.
    Web(web::BenchWebArgs),
    /// Measure Merkle proofs on a large log: over HTTP (the real server with a
    /// checkpoint key) and straight from the store.
    Proofs(proofs::ProofsArgs),
    /// Render the report of a generated plan of 2,000 objectives and 12,000
    /// phases in every format.
    Report(report::ReportArgs),
    /// Time `traguardo serve` until it answers on a large log, folding the whole
    /// log and starting from a snapshot; the read model's memory; the replay
    /// against a bare decode + fold.
    Start(start::StartArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Store(args) => store::run(args),
        Command::Http(args) => http::run(args),
        Command::Web(args) => web::run(args),
        Command::Proofs(args) => proofs::run(args),
        Command::Report(args) => report::run(args),
        Command::Start(args) => start::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("traguardo-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}
