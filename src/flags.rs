//! `traguardo flags`: the red flags of a plan year, one per line, with the head of
//! the log they were computed from.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context};
use chrono::{DateTime, Utc};
use serde::Serialize;
use traguardo_events::store::Until;
use traguardo_events::Head;
use traguardo_projections::flags::{red_flags, Flag, FlagSettings};

use crate::App;

/// `traguardo flags` options.
#[derive(Debug, clap::Args)]
pub struct FlagsArgs {
    /// Plan year.
    #[arg(long)]
    pub year: i32,
    /// Only what the log held at this record time (RFC 3339, or a date for the
    /// end of that day in Italy), to see the flags as an auditor would have seen
    /// them then. Default: everything.
    #[arg(long = "as-of", value_parser = traguardo_events::clock::parse_record_time)]
    pub as_of: Option<DateTime<Utc>>,
    /// Only what the log held up to this seq.
    #[arg(long, conflicts_with = "as_of")]
    pub seq: Option<u64>,
    /// A completion recorded more than this many days after its date is flagged.
    #[arg(long, default_value_t = FlagSettings::default().late_registration_days)]
    pub late_days: i64,
    /// `text` (one flag per line) or `json`.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// How the flags are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// `kind objective [fase n] (seq a, b): message`, one per line.
    Text,
    /// One JSON document: year, head, flags.
    Json,
}

/// The JSON answer.
#[derive(Serialize)]
struct Answer<'a> {
    year: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    as_of: Option<DateTime<Utc>>,
    head: &'a Head,
    flags: &'a [Flag],
}

/// Prints the flags.
///
/// # Errors
/// When the database cannot be read, has no plan for the year, or an event cannot
/// be folded.
pub fn run(db: &Path, args: FlagsArgs) -> anyhow::Result<ExitCode> {
    if args.late_days < 0 {
        bail!("--late-days must not be negative");
    }
    let app = App::with_store(crate::app::open_existing_store(db)?)?;
    // One cut of the log, named by its head: every event read is at or before it.
    let cut = match (args.as_of, args.seq) {
        (Some(t), _) => Until::RecordedAt(t),
        (None, Some(seq)) => Until::Seq(seq),
        (None, None) => Until::End,
    };
    let head = app.head_at(cut)?;
    let events = app.year_events(args.year, Until::Seq(head.seq))?;
    if !events.iter().any(|e| e.event_type == "plan_defined") {
        bail!(
            "non esiste un piano per il {}{}",
            args.year,
            if head.seq > 0 && cut != Until::End {
                format!(" fino alla seq {}", head.seq)
            } else {
                String::new()
            }
        );
    }
    let flags = red_flags(
        &events,
        &FlagSettings {
            late_registration_days: args.late_days,
        },
    )
    .context("cannot compute the flags")?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match args.format {
        Format::Json => {
            serde_json::to_writer_pretty(
                &mut out,
                &Answer {
                    year: args.year,
                    as_of: args.as_of,
                    head: &head,
                    flags: &flags,
                },
            )?;
            writeln!(out)?;
        }
        Format::Text => {
            for flag in &flags {
                writeln!(out, "{}", line(flag))?;
            }
            eprintln!(
                "{} red flag(s) for {}; computed from head {}:{}",
                flags.len(),
                args.year,
                head.seq,
                head.hash
            );
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// One flag as a line of text.
fn line(flag: &Flag) -> String {
    let kind = flag.kind.as_str();
    let phase = flag.phase.map(|n| format!(" fase {n}")).unwrap_or_default();
    let seqs: Vec<String> = flag.seqs.iter().map(u64::to_string).collect();
    format!(
        "{kind} {}{phase} (seq {}): {}",
        flag.objective,
        seqs.join(", "),
        flag.message
    )
}
