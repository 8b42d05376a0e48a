//! The commands of plans in a spreadsheet: `plan-template`, `plan-export`, and
//! what `import` reads (a JSON document or an xlsx workbook).

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;

use crate::error::FieldError;
use crate::plan_document::{PlanDocument, ValidPlan};
use crate::plan_sheet;

/// `traguardo plan-template` options.
#[derive(Debug, clap::Args)]
pub struct TemplateArgs {
    /// The plan's year, filled in the template.
    #[arg(long)]
    pub year: i32,
}

/// The formats a plan is exported in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PlanFormat {
    /// The plan document (DESIGN.md §6).
    Json,
    /// The workbook that `import` reads back.
    Xlsx,
}

/// `traguardo plan-export` options.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// The plan's year.
    #[arg(long)]
    pub year: i32,
    /// json or xlsx.
    #[arg(long, value_enum, default_value = "json")]
    pub format: PlanFormat,
}

/// Reads a plan from a file's bytes: a workbook when they are a zip (whatever
/// the file's name), or when the name ends in `.xlsx`; a JSON document
/// otherwise.
///
/// # Errors
/// Every problem, each with its path or its sheet and cell.
pub fn parse_plan(file: &Path, bytes: &[u8]) -> Result<ValidPlan, Vec<FieldError>> {
    let named_xlsx = file
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("xlsx"));
    if plan_sheet::is_xlsx(bytes) || named_xlsx {
        return plan_sheet::read(bytes);
    }
    let text = std::str::from_utf8(bytes)
        .map_err(|_| vec![FieldError::new("$", "non è testo UTF-8 né un file xlsx")])?;
    crate::plan_document::parse(text)
}

/// `traguardo plan-template --year Y > piano.xlsx`.
///
/// # Errors
/// When stdout is a terminal, or cannot be written.
pub fn template(args: TemplateArgs) -> anyhow::Result<ExitCode> {
    let bytes = plan_sheet::template(args.year)?;
    write_binary(&bytes)
}

/// `traguardo plan-export --year Y --format json|xlsx`.
///
/// # Errors
/// When there is no such plan, the log cannot be read, or stdout written.
pub fn export(db: &Path, args: ExportArgs) -> anyhow::Result<ExitCode> {
    let store = crate::app::open_existing_store(db)?;
    let plan = crate::plan_document::loaded_plan(store.as_ref(), args.year)?;
    let document = PlanDocument::from(&plan);
    match args.format {
        PlanFormat::Json => {
            let mut text = serde_json::to_string_pretty(&document)?;
            text.push('\n');
            write_out(text.as_bytes())
        }
        PlanFormat::Xlsx => write_binary(&plan_sheet::write(&document)?),
    }
}

/// Writes a workbook to stdout, unless stdout is a terminal.
fn write_binary(bytes: &[u8]) -> anyhow::Result<ExitCode> {
    if std::io::stdout().is_terminal() {
        anyhow::bail!("the workbook is binary: redirect it to a file, e.g. `> piano.xlsx`");
    }
    write_out(bytes)
}

fn write_out(bytes: &[u8]) -> anyhow::Result<ExitCode> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
        other => other
            .context("cannot write to stdout")
            .map(|()| ExitCode::SUCCESS),
    }
}
