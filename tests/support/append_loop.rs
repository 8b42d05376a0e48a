//! `traguardo-append-loop DB [COUNT]`: the child of the crash test in
//! `tests/api/log.rs`. It appends single events to the log at `DB` through the
//! product's store, COUNT of them or without end, and prints `ack SEQ HASH` for each once the store has
//! acknowledged it as durable; the test kills it with SIGKILL at random moments
//! and checks that every acknowledged event is still in the log.

use std::io::Write;
use std::process::ExitCode;

use serde_json::json;
use traguardo_events::{AppendBatch, Clock, NewEvent, SqliteStore};

/// The `i`-th event appended, to one of seven streams of its own.
fn probe(i: u64) -> NewEvent {
    NewEvent {
        stream: format!("objective/crash-{}", i % 7),
        event_type: "crash_probe".into(),
        schema: 1,
        data: json!({"i": i, "text": "Fase completata — verifica di durabilità"}),
        actor: "crash-test".into(),
        role: "admin".into(),
        correlation: None,
    }
}

fn main() -> ExitCode {
    let Some(db) = std::env::args_os().nth(1) else {
        eprintln!("usage: traguardo-append-loop DB [COUNT]");
        return ExitCode::FAILURE;
    };
    let count = match std::env::args().nth(2).map(|n| n.parse::<u64>()) {
        None => u64::MAX,
        Some(Ok(n)) => n,
        Some(Err(_)) => {
            eprintln!("traguardo-append-loop: COUNT must be a number");
            return ExitCode::FAILURE;
        }
    };
    let store = match SqliteStore::open(std::path::Path::new(&db), Clock::system()) {
        Ok(store) => store,
        Err(e) => {
            eprintln!("traguardo-append-loop: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut out = std::io::stdout().lock();
    for i in 0..count {
        let events = match store.append(AppendBatch::new().push(probe(i))) {
            Ok(events) => events,
            Err(e) => {
                eprintln!("traguardo-append-loop: {e}");
                return ExitCode::FAILURE;
            }
        };
        // A line at a time, flushed, so that the parent reads each
        // acknowledgement as soon as it is given.
        for e in events {
            if writeln!(out, "ack {} {}", e.seq, e.hash)
                .and_then(|()| out.flush())
                .is_err()
            {
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}
