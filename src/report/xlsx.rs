//! The report as an xlsx workbook, for the control office's spreadsheet: sheets
//! *Riepilogo*, *Obiettivi*, *Fasi*, *Indicatori*, *Rimodulazioni* and
//! *Segnalazioni*. Numbers are number cells (percentages with a percentage
//! format), dates are date cells; each table has a frozen header row, a filter
//! and widths to read it by. The words are those of the other formats: the
//! headers of the CSV ([`super::csv`]), the labels of [`super::italian`] and of
//! the printed [`super::document`].

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use rust_xlsxwriter::{ExcelDateTime, Format, FormatAlign, FormatBorder, Workbook, Worksheet};
use traguardo_projections::objective::Pct;

use super::document::Document;
use super::italian as it;
use super::model::Report;
use super::Level;
use crate::AppError;

/// One cell's value, typed.
enum Cell {
    Text(String),
    Number(f64),
    Percent(Pct),
    Date(NaiveDate),
    Blank,
}

impl From<&str> for Cell {
    fn from(text: &str) -> Self {
        Cell::Text(text.to_string())
    }
}

impl From<String> for Cell {
    fn from(text: String) -> Self {
        Cell::Text(text)
    }
}

fn number(n: impl Into<f64>) -> Cell {
    Cell::Number(n.into())
}

fn percent(value: Option<Pct>) -> Cell {
    value.map_or(Cell::Blank, Cell::Percent)
}

fn date(on: Option<NaiveDate>) -> Cell {
    on.map_or(Cell::Blank, Cell::Date)
}

/// The Italian day of a record time, as a date cell.
fn day_of(at: DateTime<Utc>) -> Cell {
    NaiveDate::parse_from_str(&it::recorded_on(at), "%d/%m/%Y").map_or(Cell::Blank, Cell::Date)
}

fn yes_no(value: bool) -> Cell {
    Cell::from(if value { "sì" } else { "no" })
}

/// The formats of the workbook.
struct Styles {
    title: Format,
    header: Format,
    label: Format,
    text: Format,
    percent: Format,
    date: Format,
    integer: Format,
}

impl Styles {
    fn new() -> Self {
        let top = Format::new().set_align(FormatAlign::Top);
        Styles {
            title: Format::new().set_bold().set_font_size(14),
            header: Format::new()
                .set_bold()
                .set_text_wrap()
                .set_align(FormatAlign::Top)
                .set_background_color(0xD9E2F3)
                .set_border_bottom(FormatBorder::Thin),
            label: Format::new().set_bold().set_align(FormatAlign::Top),
            text: top.clone().set_text_wrap(),
            percent: top.clone().set_num_format("0.00%"),
            date: top.clone().set_num_format("dd/mm/yyyy"),
            integer: top.set_num_format("0"),
        }
    }
}

fn failed(e: rust_xlsxwriter::XlsxError) -> AppError {
    super::internal("cannot write the xlsx report", e)
}

fn put(
    sheet: &mut Worksheet,
    row: u32,
    col: u16,
    cell: &Cell,
    styles: &Styles,
) -> Result<(), AppError> {
    match cell {
        Cell::Text(text) if text.is_empty() => {}
        Cell::Text(text) => {
            sheet
                .write_string_with_format(row, col, text, &styles.text)
                .map_err(failed)?;
        }
        Cell::Number(n) => {
            sheet
                .write_number_with_format(row, col, *n, &styles.integer)
                .map_err(failed)?;
        }
        Cell::Percent(p) => {
            sheet
                .write_number_with_format(row, col, p.0 .0 as f64 / 10_000.0, &styles.percent)
                .map_err(failed)?;
        }
        Cell::Date(on) => {
            let cell = ExcelDateTime::from_ymd(on.year() as u16, on.month() as u8, on.day() as u8)
                .map_err(failed)?;
            sheet
                .write_datetime_with_format(row, col, &cell, &styles.date)
                .map_err(failed)?;
        }
        Cell::Blank => {}
    }
    Ok(())
}

/// A sheet holding one table: headers frozen and filtered, widths from the
/// headers and the longest values (capped, long text wraps).
fn table(
    name: &str,
    headers: &[&str],
    rows: &[Vec<Cell>],
    styles: &Styles,
) -> Result<Worksheet, AppError> {
    let mut sheet = Worksheet::new();
    sheet.set_name(name).map_err(failed)?;
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count().min(24)).collect();
    for (c, header) in headers.iter().enumerate() {
        sheet
            .write_string_with_format(0, c as u16, *header, &styles.header)
            .map_err(failed)?;
    }
    for (r, row) in rows.iter().enumerate() {
        for (c, cell) in row.iter().enumerate() {
            put(&mut sheet, r as u32 + 1, c as u16, cell, styles)?;
            let width = match cell {
                Cell::Text(t) => t.chars().count(),
                Cell::Date(_) => 10,
                Cell::Percent(_) => 8,
                Cell::Number(n) => format!("{n}").len(),
                Cell::Blank => 0,
            };
            if let Some(w) = widths.get_mut(c) {
                *w = (*w).max(width);
            }
        }
    }
    for (c, width) in widths.iter().enumerate() {
        sheet
            .set_column_width(c as u16, (*width).clamp(6, 60) as f64 + 2.0)
            .map_err(failed)?;
    }
    sheet.set_freeze_panes(1, 0).map_err(failed)?;
    sheet
        .autofilter(
            0,
            0,
            rows.len().max(1) as u32,
            headers.len().saturating_sub(1) as u16,
        )
        .map_err(failed)?;
    Ok(sheet)
}

/// The headers of *Indicatori*.
const INDICATOR_HEADERS: [&str; 13] = [
    "Obiettivo",
    "Struttura",
    "Indicatore",
    "Descrizione",
    "Tipo",
    "Valore atteso (%)",
    "Valore rilevato (%)",
    "Numeratore",
    "Denominatore",
    "Rilevato il",
    "Giudizio",
    "Raggiunto",
    "Stralciato",
];

/// The headers of *Rimodulazioni*.
const REVISION_HEADERS: [&str; 9] = [
    "Atto",
    "Data dell'atto",
    "In vigore dal",
    "In vigore alla data di riferimento",
    "Motivazione",
    "Modifiche",
    "Registrata da",
    "Registrata il",
    "Registro: evento n.",
];

/// The headers of *Segnalazioni*.
const FLAG_HEADERS: [&str; 9] = [
    "Segnalazione",
    "Obiettivo",
    "Fase",
    "Descrizione",
    "Stato",
    "Esaminata da",
    "Esaminata il",
    "Nota del Nucleo di Valutazione",
    "Registro: eventi n.",
];

/// The headers of the units' table in *Riepilogo*.
const UNIT_HEADERS: [&str; 6] = [
    "Codice struttura",
    "Struttura",
    "Obiettivi",
    "Grado di raggiungimento dichiarato (%)",
    "Obiettivi validati",
    "Grado di raggiungimento validato (%)",
];

/// Writes the workbook of `report`.
///
/// # Errors
/// Only if the writer fails (a bug, or a text longer than a cell holds).
pub fn render(report: &Report) -> Result<Vec<u8>, AppError> {
    let styles = Styles::new();
    let doc = Document::new(report, Level::Phase);
    let mut workbook = Workbook::new();
    workbook.push_worksheet(summary(report, &doc, &styles)?);

    let objectives = report
        .units
        .iter()
        .flat_map(|u| u.objectives.iter().map(move |o| (u, o)));
    let mut objective_rows = Vec::new();
    let mut phase_rows = Vec::new();
    let mut indicator_rows = Vec::new();
    let docs = doc.units.iter().flat_map(|u| u.objectives.iter());
    for ((unit, o), odoc) in objectives.zip(docs) {
        let validation = o.validation.as_ref();
        let head = |row: &mut Vec<Cell>| {
            row.push(Cell::Date(report.at));
            row.push(number(report.head.seq as f64));
            row.push(Cell::from(report.head.hash.as_str()));
        };
        let mut row = vec![
            number(report.year),
            Cell::from(unit.code.as_str()),
            Cell::from(unit.name.as_str()),
            Cell::from(o.key.as_str()),
            Cell::from(o.letter.as_str()),
            Cell::from(o.title.as_str()),
            Cell::from(o.manager.as_str()),
            number(o.phases.len() as f64),
            Cell::Date(o.final_deadline),
            Cell::Date(o.original_final_deadline),
            Cell::Percent(o.completed_pct),
            Cell::Percent(o.on_time_pct),
            Cell::from(it::outcome(o.outcome)),
            percent(o.validated_pct),
            validation.map_or(Cell::Blank, |v| {
                let outcome = it::validation_outcome(v.outcome);
                Cell::from(if v.stale {
                    format!("{outcome}, validazione da ripetere")
                } else {
                    outcome.to_string()
                })
            }),
            Cell::from(
                validation
                    .and_then(|v| v.reference.clone())
                    .unwrap_or_default(),
            ),
            Cell::from(validation.and_then(|v| v.note.clone()).unwrap_or_default()),
            Cell::from(validation.map(|v| v.actor.clone()).unwrap_or_default()),
            validation.map_or(Cell::Blank, |v| day_of(v.recorded_at)),
            percent(unit.score),
        ];
        head(&mut row);
        objective_rows.push(row);

        for p in &o.phases {
            let evidence: Vec<&str> = p
                .notes
                .iter()
                .flat_map(|n| n.evidence.iter().map(String::as_str))
                .collect();
            let mut row = vec![
                number(report.year),
                Cell::from(unit.code.as_str()),
                Cell::from(unit.name.as_str()),
                Cell::from(o.key.as_str()),
                Cell::from(o.letter.as_str()),
                Cell::from(o.title.as_str()),
                Cell::from(o.manager.as_str()),
                number(p.number),
                Cell::from(p.description.as_str()),
                Cell::from(p.involved.join(", ")),
                Cell::Percent(p.weight),
                Cell::Percent(p.original_weight),
                Cell::Date(p.original_deadline),
                Cell::Date(p.deadline),
                date(p.started_on),
                date(p.completed_on),
                Cell::from(it::status(p.status)),
                Cell::from(p.validation.map(it::phase_validation).unwrap_or_default()),
                Cell::from(super::document::justification(p).unwrap_or_default()),
                Cell::from(evidence.join("; ")),
                Cell::Percent(o.completed_pct),
                Cell::Percent(o.on_time_pct),
                Cell::from(it::outcome(o.outcome)),
                percent(o.validated_pct),
            ];
            head(&mut row);
            phase_rows.push(row);
        }

        for (i, idoc) in o.indicators.iter().zip(&odoc.indicators) {
            indicator_rows.push(vec![
                Cell::from(o.key.as_str()),
                Cell::from(unit.name.as_str()),
                Cell::from(i.id.as_str()),
                Cell::from(i.description.as_str()),
                Cell::from(idoc.kind),
                percent(i.target),
                percent(i.actual),
                i.numerator.map_or(Cell::Blank, |n| number(n as f64)),
                i.denominator.map_or(Cell::Blank, |n| number(n as f64)),
                date(i.measured_on),
                Cell::from(i.text.clone().unwrap_or_default()),
                i.met.map_or(Cell::Blank, yes_no),
                yes_no(i.withdrawn),
            ]);
        }
    }
    workbook.push_worksheet(table(
        "Obiettivi",
        &super::csv::OBJECTIVE_HEADERS,
        &objective_rows,
        &styles,
    )?);
    workbook.push_worksheet(table(
        "Fasi",
        &super::csv::PHASE_HEADERS,
        &phase_rows,
        &styles,
    )?);
    workbook.push_worksheet(table(
        "Indicatori",
        &INDICATOR_HEADERS,
        &indicator_rows,
        &styles,
    )?);

    let revision_rows: Vec<Vec<Cell>> = report
        .revisions
        .iter()
        .map(|r| {
            vec![
                Cell::from(r.act.as_str()),
                date(r.act_date),
                Cell::Date(r.in_force_from),
                yes_no(r.in_force),
                Cell::from(r.reason.as_str()),
                Cell::from(
                    r.changes
                        .iter()
                        .map(it::change)
                        .collect::<Vec<_>>()
                        .join("\n"),
                ),
                Cell::from(r.actor.as_str()),
                day_of(r.recorded_at),
                number(r.seq as f64),
            ]
        })
        .collect();
    workbook.push_worksheet(table(
        "Rimodulazioni",
        &REVISION_HEADERS,
        &revision_rows,
        &styles,
    )?);

    let flag_rows: Vec<Vec<Cell>> = report
        .flags
        .iter()
        .map(|f| {
            vec![
                Cell::from(traguardo_projections::italian::flag_kind(f.kind)),
                Cell::from(f.objective.as_str()),
                f.phase.map_or(Cell::Blank, number),
                Cell::from(f.message.as_str()),
                Cell::from(traguardo_projections::italian::flag_status(f.status)),
                Cell::from(f.acknowledged_by.clone().unwrap_or_default()),
                f.acknowledged_at.map_or(Cell::Blank, day_of),
                Cell::from(f.acknowledgement.clone().unwrap_or_default()),
                Cell::from(
                    f.seqs
                        .iter()
                        .map(u64::to_string)
                        .collect::<Vec<_>>()
                        .join(", "),
                ),
            ]
        })
        .collect();
    workbook.push_worksheet(table("Segnalazioni", &FLAG_HEADERS, &flag_rows, &styles)?);
    workbook.save_to_buffer().map_err(failed)
}

/// *Riepilogo*: what the report is, the plan's figures, each unit's, and who
/// signs.
fn summary(report: &Report, doc: &Document, styles: &Styles) -> Result<Worksheet, AppError> {
    let mut sheet = Worksheet::new();
    sheet.set_name("Riepilogo").map_err(failed)?;
    sheet.set_column_width(0, 40).map_err(failed)?;
    sheet.set_column_width(1, 60).map_err(failed)?;
    for c in 2..6 {
        sheet.set_column_width(c, 18).map_err(failed)?;
    }
    sheet
        .write_string_with_format(0, 0, &doc.heading, &styles.title)
        .map_err(failed)?;
    sheet.set_freeze_panes(1, 0).map_err(failed)?;
    let s = &report.summary;
    let mut lines: Vec<(&str, Cell)> = vec![
        ("Ente", Cell::from(report.organisation.as_str())),
        ("Piano", Cell::from(report.title.as_str())),
        ("Anno", number(report.year)),
        ("Data di riferimento", Cell::Date(report.at)),
        ("Generata il", Cell::from(doc.generated_at.as_str())),
        ("Registro: evento n.", number(report.head.seq as f64)),
        ("Registro: hash", Cell::from(report.head.hash.as_str())),
    ];
    if let Some(as_of) = &doc.as_of {
        lines.push(("Registro letto fino al", Cell::from(as_of.as_str())));
    }
    if let Some(checkpoint) = &report.checkpoint {
        lines.push(("Checkpoint firmato", Cell::from(checkpoint.as_str())));
    }
    lines.extend([
        ("Obiettivi", number(s.objectives as f64)),
        ("Raggiunti", number(s.achieved as f64)),
        ("Non raggiunti", number(s.not_achieved as f64)),
        ("In corso", number(s.in_progress as f64)),
        ("Stralciati", number(s.withdrawn as f64)),
        ("Obiettivi validati", number(s.validated as f64)),
        ("Grado di raggiungimento dichiarato", Cell::Percent(s.score)),
        (
            "Grado di raggiungimento validato",
            match s.validated_score {
                Some(score) => Cell::Percent(score),
                None => Cell::from(doc.summary.validated_score.as_str()),
            },
        ),
    ]);
    let mut row = 2;
    for (label, cell) in &lines {
        sheet
            .write_string_with_format(row, 0, *label, &styles.label)
            .map_err(failed)?;
        put(&mut sheet, row, 1, cell, styles)?;
        row += 1;
    }
    row += 1;
    for (c, header) in UNIT_HEADERS.iter().enumerate() {
        sheet
            .write_string_with_format(row, c as u16, *header, &styles.header)
            .map_err(failed)?;
    }
    for unit in &s.units {
        row += 1;
        let cells = [
            Cell::from(unit.unit.as_str()),
            Cell::from(unit.name.as_str()),
            number(unit.objectives as f64),
            Cell::Percent(unit.score),
            number(unit.validated as f64),
            percent(unit.validated_score),
        ];
        for (c, cell) in cells.iter().enumerate() {
            put(&mut sheet, row, c as u16, cell, styles)?;
        }
    }
    row += 2;
    sheet
        .write_string_with_format(row, 0, "Firme", &styles.label)
        .map_err(failed)?;
    for signature in &doc.signatures.units {
        row += 1;
        put(
            &mut sheet,
            row,
            0,
            &Cell::from(signature.role.as_str()),
            styles,
        )?;
        put(
            &mut sheet,
            row,
            1,
            &Cell::from(format!("{} — {}", signature.unit, signature.name)),
            styles,
        )?;
    }
    row += 1;
    put(
        &mut sheet,
        row,
        0,
        &Cell::from("Visto di validazione — il Nucleo di Valutazione"),
        styles,
    )?;
    for line in &doc.signatures.validations {
        put(&mut sheet, row, 1, &Cell::from(line.as_str()), styles)?;
        row += 1;
    }
    Ok(sheet)
}
