//! The CSV reports, for a spreadsheet set to Italian: `;` between fields, a
//! decimal comma, dates as dd/mm/yyyy, Italian headers and labels, UTF-8 with a
//! byte-order mark (so that accented text reads right) and CRLF line ends. One
//! row per phase, or one row per objective; every row also names the reference
//! date and the log head the numbers come from. Free text that a spreadsheet
//! would evaluate as a formula is written with a leading apostrophe.

use std::borrow::Cow;

use traguardo_events::model::ValidationOutcome;
use traguardo_projections::objective::Pct;

use super::italian as it;
use super::model::{ObjectiveReport, PhaseReport, Report, UnitReport};
use super::Level;
use crate::AppError;

/// The UTF-8 byte-order mark.
pub const BOM: &[u8] = b"\xEF\xBB\xBF";

/// The columns of the phase-level CSV.
pub const PHASE_HEADERS: [&str; 27] = [
    "Anno",
    "Codice struttura",
    "Struttura",
    "Obiettivo",
    "Lettera",
    "Titolo obiettivo",
    "Responsabile",
    "Fase",
    "Descrizione fase",
    "Coinvolti",
    "Peso (%)",
    "Peso originario (%)",
    "Scadenza originaria",
    "Scadenza in vigore",
    "Avviata il",
    "Completata il",
    "Stato",
    "Esito della validazione della fase",
    "Motivazione",
    "Evidenze",
    "Completamento obiettivo (%)",
    "Grado di raggiungimento dichiarato (%)",
    "Esito obiettivo",
    "Grado di raggiungimento validato (%)",
    "Data di riferimento",
    "Registro: evento n.",
    "Registro: hash",
];

/// The columns of the objective-level CSV.
pub const OBJECTIVE_HEADERS: [&str; 23] = [
    "Anno",
    "Codice struttura",
    "Struttura",
    "Obiettivo",
    "Lettera",
    "Titolo",
    "Responsabile",
    "Fasi",
    "Scadenza finale",
    "Scadenza finale originaria",
    "Completamento (%)",
    "Grado di raggiungimento dichiarato (%)",
    "Esito",
    "Grado di raggiungimento validato (%)",
    "Validazione",
    "Verbale",
    "Nota del Nucleo di Valutazione",
    "Validata da",
    "Validata il",
    "Grado di raggiungimento dichiarato della struttura (%)",
    "Data di riferimento",
    "Registro: evento n.",
    "Registro: hash",
];

/// Writes the CSV of `report` at `level`.
///
/// # Errors
/// Only if a row cannot be written (which would be a bug).
pub fn render(report: &Report, level: Level) -> Result<Vec<u8>, AppError> {
    let mut writer = csv::WriterBuilder::new()
        .delimiter(b';')
        .terminator(csv::Terminator::CRLF)
        .from_writer(BOM.to_vec());
    let at = it::date(report.at);
    let objectives = report
        .units
        .iter()
        .flat_map(|u| u.objectives.iter().map(move |o| (u, o)));
    match level {
        Level::Phase => writer.write_record(PHASE_HEADERS).map_err(failed)?,
        Level::Objective => writer.write_record(OBJECTIVE_HEADERS).map_err(failed)?,
    }
    for (unit, objective) in objectives {
        let common = Common {
            year: report.year,
            unit,
            objective,
            at: &at,
            head_seq: report.head.seq,
            head_hash: &report.head.hash,
        };
        match level {
            Level::Phase => {
                for phase in &objective.phases {
                    writer
                        .write_record(phase_row(&common, phase))
                        .map_err(failed)?;
                }
            }
            Level::Objective => writer
                .write_record(objective_row(&common))
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

/// What every row of an objective repeats.
struct Common<'a> {
    year: i32,
    unit: &'a UnitReport,
    objective: &'a ObjectiveReport,
    at: &'a str,
    head_seq: u64,
    head_hash: &'a str,
}

/// A percentage as a spreadsheet set to Italian reads a number: `33,33`.
fn number(value: Pct) -> String {
    it::number(value)
}

fn optional_number(value: Option<Pct>) -> String {
    value.map(number).unwrap_or_default()
}

fn phase_row(c: &Common<'_>, p: &PhaseReport) -> Vec<String> {
    let o = c.objective;
    let justification = super::document::justification(p);
    let evidence: Vec<&str> = p
        .notes
        .iter()
        .flat_map(|n| n.evidence.iter().map(String::as_str))
        .collect();
    vec![
        c.year.to_string(),
        c.unit.code.clone(),
        text(&c.unit.name).into_owned(),
        o.key.clone(),
        o.letter.clone(),
        text(&o.title).into_owned(),
        text(&o.manager).into_owned(),
        p.number.to_string(),
        text(&p.description).into_owned(),
        text(&p.involved.join(", ")).into_owned(),
        number(p.weight),
        number(p.original_weight),
        it::date(p.original_deadline),
        it::date(p.deadline),
        p.started_on.map(it::date).unwrap_or_default(),
        p.completed_on.map(it::date).unwrap_or_default(),
        it::status(p.status).to_string(),
        p.validation
            .map(it::phase_validation)
            .unwrap_or_default()
            .to_string(),
        justification.map_or_else(String::new, |j| text(&j).into_owned()),
        text(&evidence.join("; ")).into_owned(),
        number(o.completed_pct),
        number(o.on_time_pct),
        it::outcome(o.outcome).to_string(),
        optional_number(o.validated_pct),
        c.at.to_string(),
        c.head_seq.to_string(),
        c.head_hash.to_string(),
    ]
}

fn objective_row(c: &Common<'_>) -> Vec<String> {
    let o = c.objective;
    let validation = o.validation.as_ref();
    vec![
        c.year.to_string(),
        c.unit.code.clone(),
        text(&c.unit.name).into_owned(),
        o.key.clone(),
        o.letter.clone(),
        text(&o.title).into_owned(),
        text(&o.manager).into_owned(),
        o.phases.len().to_string(),
        it::date(o.final_deadline),
        it::date(o.original_final_deadline),
        number(o.completed_pct),
        number(o.on_time_pct),
        it::outcome(o.outcome).to_string(),
        optional_number(o.validated_pct),
        validation
            .map(|v| {
                let outcome = match v.outcome {
                    ValidationOutcome::Approved => "approvata",
                    ValidationOutcome::Rejected => "respinta",
                };
                if v.stale {
                    format!("{outcome}, validazione da ripetere")
                } else {
                    outcome.to_string()
                }
            })
            .unwrap_or_default(),
        validation
            .and_then(|v| v.reference.as_deref())
            .map_or_else(String::new, |r| text(r).into_owned()),
        validation
            .and_then(|v| v.note.as_deref())
            .map_or_else(String::new, |n| text(n).into_owned()),
        validation.map_or_else(String::new, |v| text(&v.actor).into_owned()),
        validation.map_or_else(String::new, |v| it::recorded_on(v.recorded_at)),
        optional_number(c.unit.score),
        c.at.to_string(),
        c.head_seq.to_string(),
        c.head_hash.to_string(),
    ]
}
