//! The CSV reports (RFC 4180, UTF-8 with a byte-order mark so that spreadsheet
//! programs read accented text correctly): one row per phase, or one row per
//! objective. English column names, ISO dates, decimal points; every row also
//! names the reference date and the log head the numbers come from. Free text that
//! a spreadsheet would evaluate as a formula is written with a leading apostrophe.

use std::borrow::Cow;

use chrono::NaiveDate;
use serde::Serialize;
use traguardo_projections::objective::Pct;

use super::model::{ObjectiveReport, PhaseValidation, Report, UnitReport};
use super::Level;
use crate::AppError;
use traguardo_projections::{Outcome, PhaseStatus};

/// The UTF-8 byte-order mark.
pub const BOM: &[u8] = b"\xEF\xBB\xBF";

/// One phase.
#[derive(Serialize)]
struct PhaseRow<'a> {
    year: i32,
    unit: &'a str,
    unit_name: Cow<'a, str>,
    objective: &'a str,
    letter: &'a str,
    objective_title: Cow<'a, str>,
    manager: Cow<'a, str>,
    phase: u32,
    description: Cow<'a, str>,
    weight: Pct,
    original_weight: Pct,
    original_deadline: NaiveDate,
    deadline: NaiveDate,
    started_on: Option<NaiveDate>,
    completed_on: Option<NaiveDate>,
    status: PhaseStatus,
    validation: Option<PhaseValidation>,
    objective_completed_pct: Pct,
    objective_on_time_pct: Pct,
    objective_outcome: Outcome,
    objective_validated_pct: Option<Pct>,
    at: NaiveDate,
    as_of: &'a str,
    head_seq: u64,
    head_hash: &'a str,
}

/// One objective.
#[derive(Serialize)]
struct ObjectiveRow<'a> {
    year: i32,
    unit: &'a str,
    unit_name: Cow<'a, str>,
    objective: &'a str,
    letter: &'a str,
    title: Cow<'a, str>,
    manager: Cow<'a, str>,
    phases: usize,
    final_deadline: NaiveDate,
    original_final_deadline: NaiveDate,
    completed_pct: Pct,
    on_time_pct: Pct,
    outcome: Outcome,
    validated_pct: Option<Pct>,
    validation_outcome: Option<&'static str>,
    validation_note: Option<Cow<'a, str>>,
    validated_by: Option<Cow<'a, str>>,
    validated_at: Option<String>,
    unit_score: Option<Pct>,
    at: NaiveDate,
    as_of: &'a str,
    head_seq: u64,
    head_hash: &'a str,
}

/// Writes the CSV of `report` at `level`.
///
/// # Errors
/// Only if a row cannot be written (which would be a bug).
pub fn render(report: &Report, level: Level) -> Result<Vec<u8>, AppError> {
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(BOM.to_vec());
    let as_of = report
        .as_of
        .map(|t| traguardo_events::envelope::format_timestamp(&t))
        .unwrap_or_default();
    let objectives = report
        .units
        .iter()
        .flat_map(|u| u.objectives.iter().map(move |o| (u, o)));
    for (unit, objective) in objectives {
        match level {
            Level::Phase => {
                for phase in &objective.phases {
                    writer
                        .serialize(phase_row(report, unit, objective, phase, &as_of))
                        .map_err(failed)?;
                }
            }
            Level::Objective => writer
                .serialize(objective_row(report, unit, objective, &as_of))
                .map_err(failed)?,
        }
    }
    writer
        .into_inner()
        .map_err(|e| super::internal("cannot write the CSV report", e))
}

/// Free text as a cell: text that a spreadsheet would take for a formula (it
/// starts with `=`, `+`, `-`, `@`, a tab or a carriage return) gets a leading
/// apostrophe, so that it is shown as written and never evaluated (OWASP's advice
/// against CSV injection).
pub fn text(value: &str) -> Cow<'_, str> {
    match value.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => Cow::Owned(format!("'{value}")),
        _ => Cow::Borrowed(value),
    }
}

fn failed(e: csv::Error) -> AppError {
    super::internal("cannot write the CSV report", e)
}

fn phase_row<'a>(
    report: &'a Report,
    unit: &'a UnitReport,
    o: &'a ObjectiveReport,
    p: &'a super::model::PhaseReport,
    as_of: &'a str,
) -> PhaseRow<'a> {
    PhaseRow {
        year: report.year,
        unit: &unit.code,
        unit_name: text(&unit.name),
        objective: &o.key,
        letter: &o.letter,
        objective_title: text(&o.title),
        manager: text(&o.manager),
        phase: p.number,
        description: text(&p.description),
        weight: p.weight,
        original_weight: p.original_weight,
        original_deadline: p.original_deadline,
        deadline: p.deadline,
        started_on: p.started_on,
        completed_on: p.completed_on,
        status: p.status,
        validation: p.validation,
        objective_completed_pct: o.completed_pct,
        objective_on_time_pct: o.on_time_pct,
        objective_outcome: o.outcome,
        objective_validated_pct: o.validated_pct,
        at: report.at,
        as_of,
        head_seq: report.head.seq,
        head_hash: &report.head.hash,
    }
}

fn objective_row<'a>(
    report: &'a Report,
    unit: &'a UnitReport,
    o: &'a ObjectiveReport,
    as_of: &'a str,
) -> ObjectiveRow<'a> {
    let validation = o.validation.as_ref();
    ObjectiveRow {
        year: report.year,
        unit: &unit.code,
        unit_name: text(&unit.name),
        objective: &o.key,
        letter: &o.letter,
        title: text(&o.title),
        manager: text(&o.manager),
        phases: o.phases.len(),
        final_deadline: o.final_deadline,
        original_final_deadline: o.original_final_deadline,
        completed_pct: o.completed_pct,
        on_time_pct: o.on_time_pct,
        outcome: o.outcome,
        validated_pct: o.validated_pct,
        validation_outcome: validation.map(|v| match v.outcome {
            traguardo_events::model::ValidationOutcome::Approved => "approved",
            traguardo_events::model::ValidationOutcome::Rejected => "rejected",
        }),
        validation_note: validation.and_then(|v| v.note.as_deref()).map(text),
        validated_by: validation.map(|v| text(&v.actor)),
        validated_at: validation
            .map(|v| traguardo_events::envelope::format_timestamp(&v.recorded_at)),
        unit_score: unit.score,
        at: report.at,
        as_of,
        head_seq: report.head.seq,
        head_hash: &report.head.hash,
    }
}
