//! Plans in a spreadsheet: the template workbook (`traguardo plan-template`), the
//! workbook of a loaded plan (`traguardo plan-export --format xlsx`), and reading
//! one back (`traguardo import piano.xlsx`, `POST /api/v1/plans`).
//!
//! A workbook is read into the plan document of DESIGN.md §6 (a JSON value), which
//! the one validator, [`crate::plan_document::validate`], then checks: the rules
//! have one home. Each problem's path (`objectives[2].phases[1].deadline`) is
//! mapped back to the cell it was read from (`Fasi!D7`). What only a spreadsheet
//! can get wrong (a date cell that holds no date, a weight that is not a number,
//! a phase of an objective the *Obiettivi* sheet does not have) is found while
//! reading, with its cell. Every problem is reported at once.
//!
//! The sheets and their columns are declared once, in `SHEETS`: the writer, the
//! reader and the guide (*Istruzioni*) all follow that table.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Cursor;

use calamine::{Data, Reader, Xlsx};
use chrono::{Datelike, NaiveDate};
use rust_xlsxwriter::{
    utility::row_col_to_cell, DataValidation, ExcelDateTime, Format, FormatAlign, FormatBorder,
    Workbook, Worksheet, XlsxError,
};
use serde_json::{json, Map, Value};
use traguardo_events::model::{Hundredths, UnitKind};

use crate::error::FieldError;
use crate::plan_document::{self, IndicatorKindDocument, PlanDocument, ValidPlan};

/// The media type of an xlsx workbook.
pub const XLSX_CONTENT_TYPE: &str =
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

/// Whether `bytes` look like an xlsx workbook: a zip archive (its local file
/// header's magic bytes), which a JSON document never starts with.
pub fn is_xlsx(bytes: &[u8]) -> bool {
    bytes.starts_with(b"PK\x03\x04")
}

/// How a column's cells are written and read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// A short text, e.g. a code: stored as text even when it looks like a number.
    Code,
    /// A text.
    Text,
    /// A long text, wrapped.
    LongText,
    /// A whole number (the year, a phase's number).
    Integer,
    /// A percentage with at most two decimals, stored as a number (20 is 20%).
    Percent,
    /// A date cell.
    Date,
    /// Unit codes or outside bodies, separated by `;` (or `,`).
    List,
    /// One of the kinds of unit, in Italian.
    UnitKind,
    /// One of the kinds of indicator, in Italian.
    IndicatorKind,
}

/// A column: the document's key, its header, what it means, its width.
#[derive(Debug)]
struct Column {
    key: &'static str,
    header: &'static str,
    kind: Shape,
    required: bool,
    width: f64,
    help: &'static str,
}

const fn col(
    key: &'static str,
    header: &'static str,
    kind: Shape,
    required: bool,
    width: f64,
    help: &'static str,
) -> Column {
    Column {
        key,
        header,
        kind,
        required,
        width,
        help,
    }
}

/// A sheet: its name, its columns (the first row holds their headers), and what
/// one row is.
#[derive(Debug)]
struct Sheet {
    name: &'static str,
    row: &'static str,
    columns: &'static [Column],
}

/// The plan's own fields, one per row: label in column A, value in column B.
const PLAN: Sheet = Sheet {
    name: "Piano",
    row: "un dato del piano: l'etichetta nella colonna A, il valore nella colonna B",
    columns: &[
        col(
            "organisation",
            "Ente",
            Shape::Text,
            true,
            60.0,
            "l'ente, ad esempio «Città di Alessandria»",
        ),
        col(
            "year",
            "Anno",
            Shape::Integer,
            true,
            60.0,
            "l'anno del piano, ad esempio 2023",
        ),
        col(
            "title",
            "Titolo",
            Shape::Text,
            true,
            60.0,
            "il titolo del piano, ad esempio «Piano degli obiettivi 2023»",
        ),
    ],
};

const UNITS: Sheet = Sheet {
    name: "Strutture",
    row: "una struttura dell'Elenco Responsabili",
    columns: &[
        col("code", "Codice", Shape::Code, true, 10.0, "il codice della struttura nell'Elenco Responsabili, ad esempio 2250"),
        col("name", "Nome (Elenco)", Shape::Text, true, 50.0, "il nome come è stampato nell'Elenco Responsabili, ad esempio «RESPONSABILE SETTORE RISORSE FINANZIARIE E TRIBUTI»"),
        col("kind", "Tipo", Shape::UnitKind, false, 18.0, "Settore, Servizio autonomo, Area o Ufficio (facoltativo)"),
        col("label", "Denominazione", Shape::Text, false, 45.0, "il nome come lo scrive il Comune, ad esempio «Settore Risorse finanziarie e tributi» (facoltativo)"),
        col("manager", "Responsabile", Shape::Text, false, 30.0, "chi ne risponde, ad esempio «Dott. Stefano Specchia» (facoltativo)"),
        col("manager_title", "Qualifica", Shape::Text, false, 22.0, "Dirigente, Responsabile in P.O., … (facoltativo)"),
    ],
};

const OBJECTIVES: Sheet = Sheet {
    name: "Obiettivi",
    row: "un obiettivo",
    columns: &[
        col(
            "unit",
            "Struttura",
            Shape::Code,
            true,
            10.0,
            "il codice della struttura a cui l'obiettivo è assegnato (foglio Strutture)",
        ),
        col(
            "letter",
            "Lettera",
            Shape::Code,
            true,
            8.0,
            "la lettera dell'obiettivo, unica per struttura e anno: A, B, C, …",
        ),
        col(
            "manager",
            "Responsabile",
            Shape::Text,
            true,
            28.0,
            "il dirigente o responsabile che ne risponde",
        ),
        col(
            "title",
            "Titolo",
            Shape::LongText,
            true,
            45.0,
            "il titolo dell'obiettivo",
        ),
        col(
            "strategic_purpose",
            "Finalità strategiche",
            Shape::LongText,
            false,
            40.0,
            "le finalità strategiche",
        ),
        col(
            "directives",
            "Direttive specifiche",
            Shape::LongText,
            false,
            40.0,
            "le direttive specifiche",
        ),
        col(
            "final_deadline",
            "Scadenza finale",
            Shape::Date,
            true,
            14.0,
            "la scadenza finale, una data (gg/mm/aaaa)",
        ),
        col(
            "expected_result",
            "Risultato atteso",
            Shape::LongText,
            false,
            35.0,
            "il risultato atteso",
        ),
        col(
            "achieved_when",
            "Raggiunto se",
            Shape::LongText,
            false,
            30.0,
            "quando l'obiettivo è raggiunto al 100%",
        ),
        col(
            "not_achieved_when",
            "Non raggiunto se",
            Shape::LongText,
            false,
            30.0,
            "quando l'obiettivo non è raggiunto",
        ),
        col(
            "constraints",
            "Vincoli",
            Shape::LongText,
            false,
            25.0,
            "i vincoli",
        ),
        col(
            "human_resources",
            "Risorse umane",
            Shape::LongText,
            false,
            25.0,
            "le risorse umane",
        ),
        col(
            "financial_resources",
            "Risorse finanziarie",
            Shape::LongText,
            false,
            25.0,
            "le risorse finanziarie",
        ),
    ],
};

const PHASES: Sheet = Sheet {
    name: "Fasi",
    row: "una fase di un obiettivo; le fasi di un obiettivo, nell'ordine delle righe, hanno incidenze che sommano a 100",
    columns: &[
        col("unit", "Struttura", Shape::Code, true, 10.0, "il codice della struttura dell'obiettivo"),
        col("letter", "Lettera", Shape::Code, true, 8.0, "la lettera dell'obiettivo (foglio Obiettivi)"),
        col("number", "Fase", Shape::Integer, true, 6.0, "il numero della fase: 1, 2, … senza salti"),
        col("deadline", "Scadenza", Shape::Date, true, 12.0, "la scadenza prevista della fase, una data (gg/mm/aaaa), non dopo la scadenza finale"),
        col("weight", "Incidenza %", Shape::Percent, true, 11.0, "l'incidenza della fase in percentuale, un numero con al più due decimali (20 vuol dire 20%)"),
        col("description", "Descrizione", Shape::LongText, true, 60.0, "che cosa prevede la fase"),
        col("involved", "Coinvolti", Shape::List, false, 25.0, "i codici delle strutture coinvolte o i nomi di enti esterni, separati da punto e virgola"),
    ],
};

const INDICATORS: Sheet = Sheet {
    name: "Indicatori",
    row: "un indicatore di risultato di un obiettivo",
    columns: &[
        col("unit", "Struttura", Shape::Code, true, 10.0, "il codice della struttura dell'obiettivo"),
        col("letter", "Lettera", Shape::Code, true, 8.0, "la lettera dell'obiettivo (foglio Obiettivi)"),
        col("id", "Codice", Shape::Code, true, 24.0, "un codice breve, unico nell'obiettivo, ad esempio rimborsi-90gg"),
        col("kind", "Tipo", Shape::IndicatorKind, true, 14.0, "rapporto (n° a / n° b), soglia (un valore contro una soglia) o qualitativo (un giudizio a parole)"),
        col("target", "Valore atteso %", Shape::Percent, false, 14.0, "il valore atteso in percentuale, se c'è (100 vuol dire 100%)"),
        col("description", "Descrizione", Shape::LongText, true, 60.0, "che cosa misura"),
    ],
};

/// Every sheet of a plan workbook, in order.
const SHEETS: [&Sheet; 5] = [&PLAN, &UNITS, &OBJECTIVES, &PHASES, &INDICATORS];

/// The guide's sheet.
const GUIDE: &str = "Istruzioni";

/// The Italian words of the kinds of indicator, as a sheet writes them.
fn indicator_kind_word(kind: IndicatorKindDocument) -> &'static str {
    match kind {
        IndicatorKindDocument::Ratio => "rapporto",
        IndicatorKindDocument::Threshold => "soglia",
        IndicatorKindDocument::Qualitative => "qualitativo",
    }
}

/// The code the plan document gives the kind of indicator written `word`.
fn indicator_kind_code(word: &str) -> Option<&'static str> {
    let word = word.trim().to_lowercase();
    [
        ("rapporto", "ratio"),
        ("soglia", "threshold"),
        ("qualitativo", "qualitative"),
    ]
    .into_iter()
    .find(|(italian, code)| word == *italian || word == *code)
    .map(|(_, code)| code)
}

/// The kind of unit written `word` (in Italian, or as the document's code).
fn unit_kind(word: &str) -> Option<UnitKind> {
    let word = word.trim().to_lowercase();
    UnitKind::ALL
        .into_iter()
        .find(|k| word == k.italian().to_lowercase() || word == k.as_str())
}

// ---------------------------------------------------------------------------
// Writing

/// A workbook could not be written: a bug, or a text longer than a cell holds.
#[derive(Debug, thiserror::Error)]
#[error("cannot write the workbook: {0}")]
pub struct WriteError(#[from] XlsxError);

/// The template of a plan of `year`: every sheet with its headers, the year
/// filled in, and the guide.
///
/// # Errors
/// Only if the writer fails.
pub fn template(year: i32) -> Result<Vec<u8>, WriteError> {
    write(&PlanDocument {
        organisation: String::new(),
        year,
        title: String::new(),
        units: Vec::new(),
        objectives: Vec::new(),
    })
}

/// The workbook of a plan document, which [`read`] turns back into the same
/// document.
///
/// # Errors
/// If the writer fails, e.g. on a text longer than a cell holds (32,767
/// characters).
pub fn write(plan: &PlanDocument) -> Result<Vec<u8>, WriteError> {
    let styles = Styles::new();
    let mut workbook = Workbook::new();
    workbook.push_worksheet(guide(&styles)?);

    let mut sheet = Worksheet::new();
    sheet.set_name(PLAN.name)?;
    sheet.write_string_with_format(0, 0, "Dato", &styles.header)?;
    sheet.write_string_with_format(0, 1, "Valore", &styles.header)?;
    sheet.set_column_width(0, 12)?;
    sheet.set_column_width(1, 70)?;
    sheet.set_freeze_panes(1, 0)?;
    let values = [
        Value::from(plan.organisation.clone()),
        Value::from(plan.year),
        Value::from(plan.title.clone()),
    ];
    for (i, (column, value)) in PLAN.columns.iter().zip(values).enumerate() {
        let row = i as u32 + 1;
        sheet.write_string_with_format(row, 0, column.header, &styles.bold)?;
        write_cell(&mut sheet, row, 1, column.kind, &value, &styles)?;
    }
    workbook.push_worksheet(sheet);

    let units: Vec<Map<String, Value>> = plan.units.iter().map(as_map).collect();
    workbook.push_worksheet(table(&UNITS, &units, &styles)?);

    let objectives: Vec<Map<String, Value>> = plan.objectives.iter().map(as_map).collect();
    workbook.push_worksheet(table(&OBJECTIVES, &objectives, &styles)?);

    let mut phases = Vec::new();
    let mut indicators = Vec::new();
    for objective in &plan.objectives {
        let owner = |mut row: Map<String, Value>| {
            row.insert("unit".into(), objective.unit.clone().into());
            row.insert("letter".into(), objective.letter.clone().into());
            row
        };
        phases.extend(objective.phases.iter().map(|p| owner(as_map(p))));
        indicators.extend(objective.indicators.iter().map(|i| {
            let mut row = owner(as_map(i));
            row.insert("kind".into(), indicator_kind_word(i.kind).into());
            row
        }));
    }
    workbook.push_worksheet(table(&PHASES, &phases, &styles)?);
    workbook.push_worksheet(table(&INDICATORS, &indicators, &styles)?);
    Ok(workbook.save_to_buffer()?)
}

/// A value of the document as a JSON object, to be written column by column.
fn as_map<T: serde::Serialize>(value: &T) -> Map<String, Value> {
    match serde_json::to_value(value) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    }
}

/// The formats of a plan workbook.
struct Styles {
    header: Format,
    bold: Format,
    text: Format,
    wrap: Format,
    date: Format,
    percent: Format,
    integer: Format,
}

impl Styles {
    fn new() -> Self {
        Styles {
            header: Format::new()
                .set_bold()
                .set_text_wrap()
                .set_align(FormatAlign::Top)
                .set_background_color(0xD9E2F3)
                .set_border_bottom(FormatBorder::Thin),
            bold: Format::new().set_bold(),
            text: Format::new()
                .set_num_format("@")
                .set_align(FormatAlign::Top),
            wrap: Format::new().set_text_wrap().set_align(FormatAlign::Top),
            date: Format::new()
                .set_num_format("dd/mm/yyyy")
                .set_align(FormatAlign::Top),
            percent: Format::new()
                .set_num_format("0.00")
                .set_align(FormatAlign::Top),
            integer: Format::new()
                .set_num_format("0")
                .set_align(FormatAlign::Top),
        }
    }

    /// The format of a column's cells, so that what is typed in later is stored
    /// as it should (a code typed `2250` stays text).
    fn of(&self, kind: Shape) -> &Format {
        match kind {
            Shape::Code => &self.text,
            Shape::Text
            | Shape::LongText
            | Shape::List
            | Shape::UnitKind
            | Shape::IndicatorKind => &self.wrap,
            Shape::Integer => &self.integer,
            Shape::Percent => &self.percent,
            Shape::Date => &self.date,
        }
    }
}

/// Rows of the template that take a drop-down list.
const LIST_ROWS: u32 = 2_000;

/// A sheet of rows under a frozen, filtered header row.
fn table(
    sheet: &Sheet,
    rows: &[Map<String, Value>],
    styles: &Styles,
) -> Result<Worksheet, WriteError> {
    let mut out = Worksheet::new();
    out.set_name(sheet.name)?;
    for (c, column) in sheet.columns.iter().enumerate() {
        let c = c as u16;
        out.set_column_width(c, column.width)?;
        out.set_column_format(c, styles.of(column.kind))?;
        out.write_string_with_format(0, c, column.header, &styles.header)?;
        let choices: Option<Vec<&str>> = match column.kind {
            Shape::UnitKind => Some(UnitKind::ALL.iter().map(|k| k.italian()).collect()),
            Shape::IndicatorKind => Some(vec!["rapporto", "soglia", "qualitativo"]),
            _ => None,
        };
        if let Some(choices) = choices {
            let validation = DataValidation::new()
                .allow_list_strings(&choices)?
                .set_input_title(column.header)?
                .set_input_message(column.help)?;
            let last = LIST_ROWS.max(rows.len() as u32 + 1);
            out.add_data_validation(1, c, last, c, &validation)?;
        }
    }
    out.set_freeze_panes(1, 0)?;
    out.autofilter(
        0,
        0,
        rows.len().max(1) as u32,
        sheet.columns.len() as u16 - 1,
    )?;
    for (r, row) in rows.iter().enumerate() {
        for (c, column) in sheet.columns.iter().enumerate() {
            if let Some(value) = row.get(column.key) {
                write_cell(&mut out, r as u32 + 1, c as u16, column.kind, value, styles)?;
            }
        }
    }
    Ok(out)
}

/// Writes one value of the document in the cell of a column of `kind`: dates as
/// date cells, numbers as numbers, lists joined by `; `.
fn write_cell(
    sheet: &mut Worksheet,
    row: u32,
    col: u16,
    kind: Shape,
    value: &Value,
    styles: &Styles,
) -> Result<(), WriteError> {
    let format = styles.of(kind);
    match (kind, value) {
        (_, Value::Null) => {}
        (Shape::Date, Value::String(text)) => match NaiveDate::parse_from_str(text, "%Y-%m-%d") {
            Ok(date) => {
                let cell = ExcelDateTime::from_ymd(
                    u16::try_from(date.year()).unwrap_or_default(),
                    date.month() as u8,
                    date.day() as u8,
                )?;
                sheet.write_datetime_with_format(row, col, &cell, format)?;
            }
            Err(_) => {
                sheet.write_string_with_format(row, col, text, format)?;
            }
        },
        (_, Value::Number(n)) => {
            sheet.write_number_with_format(row, col, n.as_f64().unwrap_or_default(), format)?;
        }
        (Shape::List, Value::Array(items)) => {
            let joined: Vec<&str> = items.iter().filter_map(Value::as_str).collect();
            if !joined.is_empty() {
                sheet.write_string_with_format(row, col, joined.join("; "), format)?;
            }
        }
        (Shape::UnitKind, Value::String(code)) => {
            let word = code
                .parse::<UnitKind>()
                .map(UnitKind::italian)
                .unwrap_or(code);
            sheet.write_string_with_format(row, col, word, format)?;
        }
        (_, Value::String(text)) if text.is_empty() => {}
        (_, Value::String(text)) => {
            sheet.write_string_with_format(row, col, text, format)?;
        }
        (_, other) => {
            sheet.write_string_with_format(row, col, other.to_string(), format)?;
        }
    }
    Ok(())
}

/// The guide: what the workbook is for, and what every column means.
fn guide(styles: &Styles) -> Result<Worksheet, WriteError> {
    let mut out = Worksheet::new();
    out.set_name(GUIDE)?;
    out.set_column_width(0, 16)?;
    out.set_column_width(1, 22)?;
    out.set_column_width(2, 100)?;
    let intro = [
        "Piano degli obiettivi — modello da compilare",
        "Compilare un foglio per ogni parte del piano: Piano (ente, anno, titolo), Strutture, Obiettivi, Fasi e Indicatori. La prima riga di ogni foglio è l'intestazione: non va modificata.",
        "Un obiettivo è individuato da Struttura e Lettera; le sue fasi e i suoi indicatori ripetono le stesse due colonne. Le date sono celle data (gg/mm/aaaa); incidenze e valori attesi sono numeri (20 vuol dire 20%).",
        "Caricamento: traguardo import piano.xlsx, oppure POST /api/v1/plans con questo file. Se c'è anche un solo errore non si carica nulla, e ogni errore è indicato con il foglio e la cella (ad esempio «Fasi!D7: 30/02/2022 non è una data»).",
    ];
    out.write_string_with_format(0, 0, intro[0], &styles.bold)?;
    for (i, line) in intro[1..].iter().enumerate() {
        out.write_string(i as u32 + 1, 0, *line)?;
    }
    let top = intro.len() as u32 + 1;
    for (c, header) in ["Foglio", "Colonna", "Significato"].iter().enumerate() {
        out.write_string_with_format(top, c as u16, *header, &styles.header)?;
    }
    let mut row = top + 1;
    for sheet in SHEETS {
        out.write_string_with_format(row, 0, sheet.name, &styles.bold)?;
        out.write_string_with_format(row, 2, format!("Ogni riga: {}.", sheet.row), &styles.wrap)?;
        row += 1;
        for column in sheet.columns {
            out.write_string(row, 0, sheet.name)?;
            out.write_string(row, 1, column.header)?;
            let required = if column.required {
                "obbligatorio"
            } else {
                "facoltativo"
            };
            let help = column.help.trim_end_matches(" (facoltativo)");
            out.write_string_with_format(row, 2, format!("{help} ({required})"), &styles.wrap)?;
            row += 1;
        }
    }
    out.set_freeze_panes(top + 1, 0)?;
    out.set_active(true);
    Ok(out)
}

// ---------------------------------------------------------------------------
// Reading

/// Reads a plan workbook and validates the plan document it holds.
///
/// # Errors
/// Every problem found, each with its sheet and cell (`Fasi!D7`) as its field;
/// nothing is returned to load unless there are none.
pub fn read(bytes: &[u8]) -> Result<ValidPlan, Vec<FieldError>> {
    read_with_document(bytes).map(|(plan, _)| plan)
}

/// Reads a plan workbook into the plan document it holds (the JSON value that
/// [`crate::plan_document::validate`] accepted), with the plan it validates to.
///
/// # Errors
/// As [`read`].
pub fn read_with_document(bytes: &[u8]) -> Result<(ValidPlan, Value), Vec<FieldError>> {
    let mut workbook: Xlsx<_> = Xlsx::new(Cursor::new(bytes)).map_err(|e| {
        vec![FieldError::new(
            "$",
            format!("non è una cartella di lavoro xlsx leggibile: {e}"),
        )]
    })?;
    let mut reading = Reading::default();
    let document = reading.document(&mut workbook);
    let validated = plan_document::validate(&document);
    let mut problems = reading.problems;
    let placed: BTreeSet<String> = problems.iter().map(|p| p.field.clone()).collect();
    match validated {
        Ok(plan) if problems.is_empty() => Ok((plan, document)),
        Ok(_) => Err(problems),
        Err(errors) => {
            for e in errors {
                let field = reading.cells.locate(&e.field);
                // A cell already reported while reading (a date that is no date)
                // is missing from the document: the validator's "è obbligatorio"
                // would say the same thing twice.
                if !placed.contains(&field) {
                    problems.push(FieldError::new(field, e.message));
                }
            }
            Err(problems)
        }
    }
}

/// Where each path of the document was read from.
#[derive(Default)]
struct Cells(BTreeMap<String, String>);

impl Cells {
    fn set(&mut self, path: impl Into<String>, place: impl Into<String>) {
        self.0.insert(path.into(), place.into());
    }

    /// The sheet and cell of a document path, or of the nearest enclosing path
    /// that has one (`…involved[2]` is the cell of `…involved`); the path itself
    /// when none has.
    fn locate(&self, path: &str) -> String {
        let mut current = path;
        loop {
            if let Some(place) = self.0.get(current) {
                return place.clone();
            }
            match current.rfind(['.', '[']) {
                Some(cut) => current = &current[..cut],
                None => return path.to_string(),
            }
        }
    }
}

/// `Fasi!D7`.
fn cell_name(sheet: &str, row: u32, col: usize) -> String {
    format!("{sheet}!{}", row_col_to_cell(row, col as u16))
}

/// A row of a sheet: its number (from 0) and the document's object it holds.
type Row = (u32, Map<String, Value>);

/// A sheet's header row, read: for each of the sheet's columns, the spreadsheet
/// column it is in (users may move columns about).
#[derive(Debug, Clone, Default)]
struct Header {
    at: Vec<Option<usize>>,
}

impl Header {
    /// The cell of column `key` in row `row`, or the whole row when the column
    /// is missing.
    fn cell(&self, sheet: &Sheet, key: &str, row: u32) -> String {
        let at = sheet
            .columns
            .iter()
            .position(|c| c.key == key)
            .and_then(|i| self.at.get(i).copied().flatten());
        match at {
            Some(c) => cell_name(sheet.name, row, c),
            None => row_place(sheet, row),
        }
    }
}

/// A whole row of a sheet: `Fasi!A7:G7`.
fn row_place(sheet: &Sheet, row: u32) -> String {
    format!(
        "{}!{}:{}",
        sheet.name,
        row_col_to_cell(row, 0),
        row_col_to_cell(row, sheet.columns.len() as u16 - 1)
    )
}

#[derive(Default)]
struct Reading {
    problems: Vec<FieldError>,
    cells: Cells,
}

impl Reading {
    fn problem(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.problems.push(FieldError::new(field, message));
    }

    /// The plan document in the workbook; what cannot be read is left out and
    /// reported.
    fn document<R: std::io::Read + std::io::Seek>(&mut self, workbook: &mut Xlsx<R>) -> Value {
        let names = workbook.sheet_names();
        let mut range = |sheet: &Sheet, reading: &mut Reading| {
            if !names.iter().any(|n| n == sheet.name) {
                reading.problem(sheet.name, "manca il foglio");
                return None;
            }
            match workbook.worksheet_range(sheet.name) {
                Ok(range) => Some(range),
                Err(e) => {
                    reading.problem(sheet.name, format!("il foglio non si legge: {e}"));
                    None
                }
            }
        };
        let plan = range(&PLAN, self);
        let units = range(&UNITS, self);
        let objectives = range(&OBJECTIVES, self);
        let phases = range(&PHASES, self);
        let indicators = range(&INDICATORS, self);

        let mut document = Map::new();
        if let Some(range) = &plan {
            self.plan_fields(range, &mut document);
        }
        self.cells.set("units", UNITS.name);
        self.cells.set("objectives", OBJECTIVES.name);
        let (_, units) = units
            .map(|range| self.rows(&range, &UNITS, "units"))
            .unwrap_or_default();
        document.insert(
            "units".into(),
            Value::Array(
                units
                    .into_iter()
                    .map(|(_, row)| Value::Object(row))
                    .collect(),
            ),
        );
        let (_, objectives) = objectives
            .map(|range| self.rows(&range, &OBJECTIVES, "objectives"))
            .unwrap_or_default();
        // Objective (unit, letter) → its index in the document.
        let mut index: BTreeMap<(String, String), usize> = BTreeMap::new();
        let mut objectives: Vec<Map<String, Value>> = objectives
            .into_iter()
            .enumerate()
            .map(|(i, (_, mut row))| {
                if let Some(owner) = owner_of(&row) {
                    index.entry(owner).or_insert(i);
                }
                row.insert("phases".into(), Value::Array(Vec::new()));
                row.insert("indicators".into(), Value::Array(Vec::new()));
                row
            })
            .collect();
        for (sheet, range, key) in [
            (&PHASES, phases, "phases"),
            (&INDICATORS, indicators, "indicators"),
        ] {
            let Some(range) = range else { continue };
            let mut rows_of: BTreeMap<usize, Vec<u32>> = BTreeMap::new();
            let (header, rows) = self.rows(&range, sheet, "");
            for (row_number, mut row) in rows {
                let Some(owner) = owner_of(&row) else {
                    // The validator cannot see a row it is not given: say it here.
                    let column = if row.contains_key("unit") {
                        "letter"
                    } else {
                        "unit"
                    };
                    self.problem(
                        header.cell(sheet, column, row_number),
                        "è obbligatorio: la riga deve dire di quale obiettivo è",
                    );
                    continue;
                };
                let Some(&i) = index.get(&owner) else {
                    self.problem(
                        header.cell(sheet, "letter", row_number),
                        format!(
                            "l'obiettivo {} della struttura {} non è nel foglio {}",
                            owner.1, owner.0, OBJECTIVES.name
                        ),
                    );
                    continue;
                };
                row.remove("unit");
                row.remove("letter");
                if key == "phases" && !row.contains_key("involved") {
                    row.insert("involved".into(), Value::Array(Vec::new()));
                }
                let list = objectives[i]
                    .get_mut(key)
                    .and_then(Value::as_array_mut)
                    .expect("every objective has its lists");
                let path = format!("objectives[{i}].{key}[{}]", list.len());
                list.push(Value::Object(row));
                rows_of.entry(i).or_default().push(row_number);
                self.place_row(&path, sheet, &header, row_number);
            }
            for i in 0..objectives.len() {
                let place = match rows_of.get(&i) {
                    // The rows of one objective, e.g. the sum of its weights.
                    Some(rows) => {
                        let first = rows.first().copied().unwrap_or_default();
                        let last = rows.last().copied().unwrap_or_default();
                        format!(
                            "{}!{}:{}",
                            sheet.name,
                            row_col_to_cell(first, 0),
                            row_col_to_cell(last, sheet.columns.len() as u16 - 1)
                        )
                    }
                    None => sheet.name.to_string(),
                };
                self.cells.set(format!("objectives[{i}].{key}"), place);
            }
        }
        document.insert(
            "objectives".into(),
            Value::Array(objectives.into_iter().map(Value::Object).collect()),
        );
        Value::Object(document)
    }

    /// Ente, Anno and Titolo from the *Piano* sheet: the label in column A, the
    /// value beside it.
    fn plan_fields(&mut self, range: &calamine::Range<Data>, document: &mut Map<String, Value>) {
        let end = range.end().map_or(0, |(r, _)| r);
        for column in PLAN.columns {
            let found = (0..=end).find(|&r| {
                matches!(range.get_value((r, 0)), Some(Data::String(s))
                    if s.trim().eq_ignore_ascii_case(column.header))
            });
            let Some(row) = found else {
                self.problem(
                    PLAN.name,
                    format!(
                        "manca la riga «{}» (l'etichetta nella colonna A, il valore nella B)",
                        column.header
                    ),
                );
                continue;
            };
            let place = cell_name(PLAN.name, row, 1);
            self.cells.set(column.key, place.clone());
            let value = range.get_value((row, 1)).unwrap_or(&Data::Empty);
            if let Some(value) = self.value(value, column, &place) {
                document.insert(column.key.into(), value);
            }
        }
    }

    /// The header of a sheet: every column it must have, none it may not.
    fn header(&mut self, range: &calamine::Range<Data>, sheet: &Sheet) -> Header {
        let width = range.end().map_or(0, |(_, c)| c + 1);
        let mut at = vec![None; sheet.columns.len()];
        for c in 0..width {
            let text = match range.get_value((0, c)) {
                Some(Data::String(s)) => s.trim().to_string(),
                Some(Data::Empty) | None => continue,
                Some(other) => other.to_string(),
            };
            match sheet
                .columns
                .iter()
                .position(|column| column.header.eq_ignore_ascii_case(&text))
            {
                Some(i) if at[i].is_none() => at[i] = Some(c as usize),
                Some(_) => self.problem(
                    cell_name(sheet.name, 0, c as usize),
                    format!("la colonna «{text}» è ripetuta"),
                ),
                None => self.problem(
                    cell_name(sheet.name, 0, c as usize),
                    format!("colonna sconosciuta «{text}»"),
                ),
            }
        }
        for (column, at) in sheet.columns.iter().zip(&at) {
            // An optional column may be left out altogether.
            if at.is_none() && column.required {
                self.problem(
                    sheet.name,
                    format!("manca la colonna «{}» nella prima riga", column.header),
                );
            }
        }
        Header { at }
    }

    /// The rows under a sheet's header that are not empty, each as the
    /// document's object (with the row's number, from 0); with `path`, the cells
    /// of row `i` are placed at `{path}[i].{key}`.
    fn rows(
        &mut self,
        range: &calamine::Range<Data>,
        sheet: &Sheet,
        path: &str,
    ) -> (Header, Vec<Row>) {
        let header = self.header(range, sheet);
        let last = range.end().map_or(0, |(r, _)| r);
        let mut rows = Vec::new();
        for r in 1..=last {
            let cells: Vec<(&Column, usize, &Data)> = sheet
                .columns
                .iter()
                .zip(&header.at)
                .filter_map(|(column, at)| {
                    at.map(|c| {
                        let value = range.get_value((r, c as u32)).unwrap_or(&Data::Empty);
                        (column, c, value)
                    })
                })
                .collect();
            if cells.iter().all(|(_, _, v)| is_blank(v)) {
                continue;
            }
            if !path.is_empty() {
                self.place_row(&format!("{path}[{}]", rows.len()), sheet, &header, r);
            }
            let mut row = Map::new();
            for (column, c, value) in cells {
                let place = cell_name(sheet.name, r, c);
                if let Some(value) = self.value(value, column, &place) {
                    row.insert(column.key.into(), value);
                }
            }
            rows.push((r, row));
        }
        (header, rows)
    }

    /// Places every column of one row of `sheet` under `path`.
    fn place_row(&mut self, path: &str, sheet: &Sheet, header: &Header, row: u32) {
        self.cells.set(path, row_place(sheet, row));
        for column in sheet.columns {
            self.cells.set(
                format!("{path}.{}", column.key),
                header.cell(sheet, column.key, row),
            );
        }
    }

    /// One cell as the document's value: none when blank or unreadable (then a
    /// problem at `place`). Blank optional texts are the empty text, as in a
    /// document written by hand.
    fn value(&mut self, data: &Data, column: &Column, place: &str) -> Option<Value> {
        if let Data::Error(e) = data {
            self.problem(place, format!("la cella contiene un errore ({e})"));
            return None;
        }
        if is_blank(data) {
            return match column.kind {
                Shape::Text | Shape::LongText if !column.required => {
                    // Optional texts of an objective are empty texts; those of a
                    // unit (manager, label) are absent.
                    matches!(
                        column.key,
                        "strategic_purpose"
                            | "directives"
                            | "expected_result"
                            | "achieved_when"
                            | "not_achieved_when"
                            | "constraints"
                            | "human_resources"
                            | "financial_resources"
                    )
                    .then(|| Value::String(String::new()))
                }
                _ => None,
            };
        }
        match column.kind {
            Shape::Code | Shape::Text | Shape::LongText => Some(Value::String(text(data))),
            Shape::Integer => match data {
                Data::Int(i) => Some(json!(i)),
                Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => Some(json!(*f as i64)),
                Data::String(s) if s.trim().parse::<i64>().is_ok() => {
                    s.trim().parse::<i64>().ok().map(|i| json!(i))
                }
                other => {
                    self.problem(place, format!("{} non è un numero intero", text(other)));
                    None
                }
            },
            Shape::Percent => match data {
                Data::Int(i) => Some(json!(i)),
                Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => Some(json!(*f as i64)),
                Data::Float(f) => serde_json::Number::from_f64(*f).map(Value::Number),
                Data::String(s) => {
                    let written = s.trim().trim_end_matches('%').trim().replace(',', ".");
                    match Hundredths::parse(&written) {
                        Ok(h) if h.0 % 100 == 0 => Some(json!(h.0 / 100)),
                        Ok(h) => serde_json::Number::from_f64(h.as_f64()).map(Value::Number),
                        Err(_) => {
                            self.problem(
                                place,
                                format!("{} non è un numero con al più due decimali", s.trim()),
                            );
                            None
                        }
                    }
                }
                other => {
                    self.problem(place, format!("{} non è un numero", text(other)));
                    None
                }
            },
            Shape::Date => match date(data) {
                Some(date) => Some(Value::String(date.format("%Y-%m-%d").to_string())),
                None => {
                    self.problem(place, format!("{} non è una data", text(data)));
                    None
                }
            },
            Shape::List => {
                let items: Vec<Value> = text(data)
                    .split([';', ',', '\n'])
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| Value::String(s.to_string()))
                    .collect();
                Some(Value::Array(items))
            }
            Shape::UnitKind => match unit_kind(&text(data)) {
                Some(kind) => Some(Value::String(kind.as_str().into())),
                None => {
                    self.problem(
                        place,
                        format!(
                            "«{}» non è un tipo di struttura: Settore, Servizio autonomo, Area o Ufficio",
                            text(data).trim()
                        ),
                    );
                    None
                }
            },
            Shape::IndicatorKind => match indicator_kind_code(&text(data)) {
                Some(code) => Some(Value::String(code.into())),
                None => {
                    self.problem(
                        place,
                        format!(
                            "«{}» non è un tipo di indicatore: rapporto, soglia o qualitativo",
                            text(data).trim()
                        ),
                    );
                    None
                }
            },
        }
    }
}

/// The (unit, letter) a row of *Fasi* or *Indicatori* belongs to.
fn owner_of(row: &Map<String, Value>) -> Option<(String, String)> {
    let field = |key: &str| {
        row.get(key)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    Some((field("unit")?, field("letter")?))
}

fn is_blank(data: &Data) -> bool {
    match data {
        Data::Empty => true,
        Data::String(s) => s.trim().is_empty(),
        _ => false,
    }
}

/// A cell as text: numbers as they read (a code typed as the number 2250 is
/// "2250"), dates as dd/mm/yyyy.
fn text(data: &Data) -> String {
    match data {
        Data::String(s) | Data::DateTimeIso(s) | Data::DurationIso(s) => s.clone(),
        Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", *f as i64),
        Data::DateTime(_) => date(data)
            .map(|d| d.format("%d/%m/%Y").to_string())
            .unwrap_or_else(|| data.to_string()),
        other => other.to_string(),
    }
}

/// A date cell, or a text written gg/mm/aaaa or AAAA-MM-GG, as a date that
/// exists.
fn date(data: &Data) -> Option<NaiveDate> {
    match data {
        Data::DateTime(cell) if cell.is_datetime() => {
            let (y, m, d, ..) = cell.to_ymd_hms_milli();
            NaiveDate::from_ymd_opt(i32::from(y), u32::from(m), u32::from(d))
        }
        Data::DateTimeIso(s) => NaiveDate::parse_from_str(s.get(..10)?, "%Y-%m-%d").ok(),
        Data::String(s) => {
            let s = s.trim();
            NaiveDate::parse_from_str(s, "%d/%m/%Y")
                .ok()
                .filter(|_| s.len() >= 8 && s.split('/').nth(2).is_some_and(|y| y.len() == 4))
                .or_else(|| plan_document::parse_date(s).ok())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zip_is_recognised_by_its_magic_bytes_and_json_is_not() {
        assert!(is_xlsx(b"PK\x03\x04rest"));
        assert!(!is_xlsx(b"{\"year\": 2022}"));
        assert!(!is_xlsx(b""));
    }

    #[test]
    fn a_path_is_placed_at_its_cell_or_at_the_nearest_enclosing_one() {
        let mut cells = Cells::default();
        cells.set("objectives[0].phases[1].involved", "Fasi!G3");
        cells.set("objectives[0].phases", "Fasi!A2:G3");
        assert_eq!(
            cells.locate("objectives[0].phases[1].involved[2]"),
            "Fasi!G3"
        );
        assert_eq!(cells.locate("objectives[0].phases"), "Fasi!A2:G3");
        assert_eq!(cells.locate("title"), "title");
    }

    #[test]
    fn dates_are_date_cells_or_texts_of_dates_that_exist() {
        assert_eq!(
            date(&Data::String("28/05/2022".into())),
            NaiveDate::from_ymd_opt(2022, 5, 28)
        );
        assert_eq!(
            date(&Data::String("2022-05-28".into())),
            NaiveDate::from_ymd_opt(2022, 5, 28)
        );
        assert_eq!(date(&Data::String("30/02/2022".into())), None);
        assert_eq!(date(&Data::String("28/05/22".into())), None);
        assert_eq!(date(&Data::Float(44709.0)), None);
    }

    #[test]
    fn kinds_are_read_in_italian_or_as_the_documents_codes() {
        assert_eq!(
            unit_kind("Servizio autonomo"),
            Some(UnitKind::ServizioAutonomo)
        );
        assert_eq!(unit_kind(" settore "), Some(UnitKind::Settore));
        assert_eq!(
            unit_kind("servizio_autonomo"),
            Some(UnitKind::ServizioAutonomo)
        );
        assert_eq!(unit_kind("Dipartimento"), None);
        assert_eq!(indicator_kind_code("Rapporto"), Some("ratio"));
        assert_eq!(indicator_kind_code("qualitative"), Some("qualitative"));
        assert_eq!(indicator_kind_code("media"), None);
    }

    #[test]
    fn the_template_has_every_sheet_with_its_headers_and_the_year() {
        let bytes = template(2023).unwrap();
        let mut workbook: Xlsx<_> = Xlsx::new(Cursor::new(bytes)).unwrap();
        let names = workbook.sheet_names();
        for sheet in SHEETS {
            assert!(names.iter().any(|n| n == sheet.name), "{names:?}");
            if sheet.name == PLAN.name {
                continue;
            }
            let range = workbook.worksheet_range(sheet.name).unwrap();
            let headers: Vec<String> = (0..sheet.columns.len() as u32)
                .map(|c| {
                    range
                        .get_value((0, c))
                        .map(|v| v.to_string())
                        .unwrap_or_default()
                })
                .collect();
            let expected: Vec<&str> = sheet.columns.iter().map(|c| c.header).collect();
            assert_eq!(headers, expected);
        }
        assert!(names.iter().any(|n| n == GUIDE));
        let plan = workbook.worksheet_range(PLAN.name).unwrap();
        assert_eq!(plan.get_value((2, 0)), Some(&Data::String("Anno".into())));
        assert!(matches!(plan.get_value((2, 1)), Some(Data::Float(y)) if *y == 2023.0));
        // Filled in with nothing else, it is a plan with no units nor objectives.
        let problems = read(&template(2023).unwrap()).unwrap_err();
        let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(fields, ["Piano!B2", "Piano!B4", "Strutture", "Obiettivi"]);
    }
}
