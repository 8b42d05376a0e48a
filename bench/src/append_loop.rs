//! `traguardo-bench append-loop`: single-event appends one after the other, each
//! printed as `SEQ HASH` only once the store has acknowledged it as durable.
//!
//! Kill it at any moment (`kill -9`), then `traguardo verify --expect SEQ:HASH`
//! with the last line it printed: every acknowledged event must still be there.
//! The events go to streams of their own (`objective/crash-N`, type
//! `crash_probe`), so use a scratch database.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;
use traguardo_events::{AppendBatch, Clock, NewEvent, Store};

/// `traguardo-bench append-loop` options.
#[derive(Debug, clap::Args)]
pub struct AppendLoopArgs {
    /// The SQLite database file (created if missing).
    #[arg(long)]
    pub db: PathBuf,
    /// Stop after this many appends.
    #[arg(long, default_value_t = u64::MAX)]
    pub count: u64,
}

/// Appends until killed or `--count` is reached.
///
/// # Errors
/// When the database cannot be opened or an append fails.
pub fn run(args: &AppendLoopArgs) -> anyhow::Result<ExitCode> {
    if args.count == 0 {
        bail!("--count must be positive");
    }
    let store = Store::open(&args.db, Clock::system())?;
    let stdout = std::io::stdout();
    for i in 0..args.count {
        let event = NewEvent {
            stream: format!("objective/crash-{}", i % 7),
            event_type: "crash_probe".into(),
            schema: 1,
            data: serde_json::json!({"i": i, "text": "Fase completata — verifica di durabilità"}),
            actor: "traguardo-bench".into(),
            role: "admin".into(),
            correlation: None,
        };
        let events = store.append(AppendBatch::new().push(event))?;
        // Flushed line by line: whoever reads the pipe sees each acknowledgement
        // as soon as it is given.
        let mut out = stdout.lock();
        for e in events {
            writeln!(out, "{} {}", e.seq, e.hash)?;
        }
        out.flush()?;
    }
    store.shutdown();
    Ok(ExitCode::SUCCESS)
}
