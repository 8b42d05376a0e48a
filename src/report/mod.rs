//! End-of-year achievement reports (*Relazione sul grado di raggiungimento degli
//! obiettivi*): the report that feeds the *Relazione sulla Performance*.
//!
//! [`build`] computes a [`Report`] from the log once (at a reference date, and
//! optionally as the log stood at a record time), pinned to the log's head;
//! [`render`] writes it as JSON, CSV (per phase or per objective), Markdown, a
//! printable self-contained HTML page, an xlsx workbook or a PDF/A-2b file. The HTTP API and `traguardo report` both
//! call these two functions, so their outputs are the same bytes.
//!
//! - [`model`]: the report's data, which is also the JSON answer.
//! - [`csv`]: the CSV writer; [`markdown`] and [`html`]: the askama templates
//!   (`templates/`), fed by [`document`], which puts every value into Italian words
//!   and formats ([`italian`]).
//! - [`flags`]: the red flags the report lists.

pub mod csv;
pub mod document;
pub mod flags;
pub mod html;
pub mod italian;
pub mod markdown;
pub mod model;
pub mod pdf;
pub mod xlsx;

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::str::FromStr;

use anyhow::Context;
use askama::Template;
use chrono::{DateTime, NaiveDate, SubsecRound, Utc};

pub use model::{build, Report};

use crate::AppError;

/// The format of a rendered report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The complete report as JSON.
    Json,
    /// RFC 4180 CSV, UTF-8 with a byte-order mark.
    Csv,
    /// Markdown tables.
    Md,
    /// One self-contained, printable HTML page.
    Html,
    /// An xlsx workbook: numbers and dates as typed cells.
    Xlsx,
    /// A PDF/A-2b file: A4, fonts embedded, pages numbered.
    Pdf,
}

impl FromStr for Format {
    type Err = AppError;

    fn from_str(text: &str) -> Result<Self, AppError> {
        match text.to_ascii_lowercase().as_str() {
            "json" => Ok(Format::Json),
            "csv" => Ok(Format::Csv),
            "md" => Ok(Format::Md),
            "html" => Ok(Format::Html),
            "xlsx" => Ok(Format::Xlsx),
            "pdf" => Ok(Format::Pdf),
            _ => Err(AppError::invalid(
                "format",
                format!(
                    "unknown report format {text:?}: expected json, csv, md, html, xlsx or pdf"
                ),
            )),
        }
    }
}

/// How detailed a rendered report is: one row per phase, or per objective. JSON
/// is always complete; CSV has one row per phase or per objective; Markdown and
/// HTML list each objective's phases or only the objectives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Level {
    /// Every phase (the default).
    #[default]
    Phase,
    /// One line per objective.
    Objective,
}

impl FromStr for Level {
    type Err = AppError;

    fn from_str(text: &str) -> Result<Self, AppError> {
        match text.to_ascii_lowercase().as_str() {
            "phase" => Ok(Level::Phase),
            "objective" => Ok(Level::Objective),
            _ => Err(AppError::invalid(
                "level",
                format!("unknown report level {text:?}: expected phase or objective"),
            )),
        }
    }
}

/// A rendered report: the bytes and how to serve or save them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// The media type, with its charset where it has one.
    pub content_type: &'static str,
    /// The document.
    pub body: Vec<u8>,
    /// The usual file extension, without the dot.
    pub file_extension: &'static str,
}

/// Renders a report in `format` at `level`.
///
/// # Errors
/// Only if a writer or a template fails, which would be a bug: an internal
/// error, or [`AppError::Pdf`] for the PDF (both 500).
pub fn render(report: &Report, format: Format, level: Level) -> Result<Rendered, AppError> {
    let rendered = match format {
        Format::Json => {
            let mut body = serde_json::to_vec_pretty(report)
                .map_err(|e| internal("cannot write the JSON report", e))?;
            body.push(b'\n');
            Rendered {
                content_type: "application/json",
                body,
                file_extension: "json",
            }
        }
        Format::Csv => Rendered {
            content_type: "text/csv; charset=utf-8; header=present",
            body: self::csv::render(report, level)?,
            file_extension: "csv",
        },
        Format::Md => {
            let doc = document::Document::new(report, level);
            let text = markdown::MarkdownReport { doc: &doc }
                .render()
                .map_err(|e| internal("cannot write the Markdown report", e))?;
            Rendered {
                content_type: "text/markdown; charset=utf-8",
                body: text.into_bytes(),
                file_extension: "md",
            }
        }
        Format::Xlsx => Rendered {
            content_type: crate::plan_sheet::XLSX_CONTENT_TYPE,
            body: xlsx::render(report)?,
            file_extension: "xlsx",
        },
        Format::Pdf => {
            let doc = document::Document::new(report, level);
            Rendered {
                content_type: "application/pdf",
                body: pdf::render(report, &doc).map_err(AppError::Pdf)?,
                file_extension: "pdf",
            }
        }
        Format::Html => {
            let doc = document::Document::new(report, level);
            let text = html::HtmlReport { doc: &doc }
                .render()
                .map_err(|e| internal("cannot write the HTML report", e))?;
            Rendered {
                content_type: "text/html; charset=utf-8",
                body: text.into_bytes(),
                file_extension: "html",
            }
        }
    };
    Ok(rendered)
}

/// A rendering failure: a bug, never the caller's input. [`AppError`] has no
/// variant of its own for that, so it travels as an encoding error of the store's
/// error type, which is answered as 500 with the details only in the log.
pub(crate) fn internal(what: &str, cause: impl std::fmt::Display) -> AppError {
    AppError::Internal(format!("{what}: {cause}"))
}

/// `traguardo report` options.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// Plan year.
    #[arg(long)]
    pub year: i32,
    /// json, csv, md, html, xlsx or pdf (xlsx and pdf: redirect stdout to a
    /// file).
    #[arg(long, default_value = "md")]
    pub format: Format,
    /// phase (one row per phase) or objective (one per objective).
    #[arg(long, default_value = "phase")]
    pub level: Level,
    /// Reference date (valid time, YYYY-MM-DD) the statuses and scores are
    /// computed at. Default: today in Italy, or the date of --as-of.
    #[arg(long, value_parser = crate::plan_document::parse_date)]
    pub at: Option<NaiveDate>,
    /// Only what the log held at this record time (RFC 3339, e.g.
    /// 2022-10-01T00:00:00Z, or a date for the end of that day in Italy). Without
    /// --at, the reference date is then that record time's Italian date. Default:
    /// the whole log.
    #[arg(long = "as-of", value_parser = traguardo_events::clock::parse_record_time)]
    pub as_of: Option<DateTime<Utc>>,
}

/// Prints a report to standard output.
///
/// # Errors
/// When the database cannot be opened or read, or has no plan for the year.
pub fn run(db: &Path, args: ReportArgs) -> anyhow::Result<ExitCode> {
    let app = crate::App::with_store(crate::app::open_existing_store(db)?)?;
    let now = Utc::now().trunc_subsecs(0);
    let report = build(&app, args.year, args.at, args.as_of, now)?;
    let rendered = render(&report, args.format, args.level)?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match out.write_all(&rendered.body).and_then(|()| out.flush()) {
        // `traguardo report | head` closed the pipe: not an error.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
        other => other
            .context("cannot write the report")
            .map(|()| ExitCode::SUCCESS),
    }
}
