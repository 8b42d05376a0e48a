//! The report as PDF: A4, Italian, fonts embedded, PDF/A-2b.
//!
//! typst lays out `report.typ` (beside this file, compiled into the binary) inside
//! the process; no browser or other program is involved. The template reads the
//! [`Document`] (the same one the HTML and Markdown reports are written from) as
//! JSON from a file named `report.json` that exists only in the `ReportWorld`
//! below, so user-supplied strings reach typst as data and are never parsed as
//! markup. The fonts are typst's own (`typst-assets`): Libertinus Serif for the
//! text, DejaVu Sans Mono for hashes and checkpoints, New Computer Modern as the
//! fallback for symbols.

use std::sync::LazyLock;

use chrono::{DateTime, Datelike, Timelike, Utc};
use typst::diag::{FileError, FileResult, Severity, SourceDiagnostic};
use typst::foundations::{Bytes, Datetime, Smart};
use typst::syntax::{FileId, RootedPath, Source, VirtualPath, VirtualRoot};
use typst::text::{Font, FontBook, FontStyle, FontWeight};
use typst::utils::LazyHash;
use typst::{Library, LibraryExt, World};
use typst_layout::PagedDocument;
use typst_pdf::{PdfOptions, PdfStandard, PdfStandards, Timestamp};

use super::document::Document;
use super::model::Report;

/// The template.
const TEMPLATE: &str = include_str!("report.typ");

/// Where the template finds the document's data.
const DATA_FILE: &str = "report.json";

/// Why a report could not be written as PDF. Never the caller's input: the
/// data reaches typst as JSON, so this is a bug of the template or of the
/// writer, answered as 500.
#[derive(Debug, thiserror::Error)]
pub enum PdfError {
    /// The document's data could not be serialised for the template.
    #[error("cannot serialise the report for typst: {0}")]
    Data(#[source] serde_json::Error),
    /// typst could not lay the document out; the messages of its diagnostics.
    #[error("typst layout failed: {0}")]
    Layout(String),
    /// The PDF writer refused the laid-out document (a PDF/A rule, say).
    #[error("PDF export failed: {0}")]
    Export(String),
}

/// Writes `doc` (laid out from `report`) as a PDF/A-2b file. The document's
/// creation date is the report's generation time, which the document prints
/// too, and its identifier is derived from the plan and the log head, so that
/// the same report gives the same bytes.
///
/// # Errors
/// [`PdfError`] when typst fails to lay the document out or to write it.
pub fn render(report: &Report, doc: &Document) -> Result<Vec<u8>, PdfError> {
    let mut data = serde_json::to_value(doc).map_err(PdfError::Data)?;
    printable(&mut data, &mut Glyphs::default());
    let data = serde_json::to_vec(&data).map_err(PdfError::Data)?;
    let ident = format!(
        "traguardo/relazione/{}/{}/{}",
        report.year, report.head.seq, report.head.hash
    );
    typeset(TEMPLATE, data, ident, report.generated_at)
}

/// The font families the template sets text in, in the order typst falls back
/// through them (as `report.typ` names them).
const FAMILIES: [&str; 2] = ["Libertinus Serif", "DejaVu Sans Mono"];

/// Which characters the bundled fonts can draw, learnt as they are met.
#[derive(Default)]
struct Glyphs(std::collections::HashMap<char, bool>);

impl Glyphs {
    /// Whether text with `c`, plain or bold, finds a glyph in one of
    /// [`FAMILIES`]. PDF/A forbids text drawn without a glyph.
    fn drawable(&mut self, c: char) -> bool {
        if c.is_ascii() || c.is_whitespace() {
            return true;
        }
        *self.0.entry(c).or_insert_with(|| {
            [FontWeight::REGULAR, FontWeight::BOLD]
                .iter()
                .all(|weight| {
                    FONTS.1.iter().any(|font| {
                        let info = font.info();
                        FAMILIES.iter().any(|f| info.family.eq_ignore_ascii_case(f))
                            && info.variant.weight == *weight
                            && info.variant.style == FontStyle::Normal
                            && info.coverage.contains(u32::from(c))
                    })
                })
        })
    }
}

/// Replaces, in every string of `value`, each character that no bundled font
/// can draw (an emoji, a script the fonts do not cover) with U+FFFD, which
/// they can: the PDF then prints a visible mark where the character was, and
/// stays PDF/A, instead of failing.
fn printable(value: &mut serde_json::Value, glyphs: &mut Glyphs) {
    use serde_json::Value;
    match value {
        Value::String(text) => {
            if !text.chars().all(|c| glyphs.drawable(c)) {
                *text = text
                    .chars()
                    .map(|c| if glyphs.drawable(c) { c } else { '\u{FFFD}' })
                    .collect();
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| printable(v, glyphs)),
        Value::Object(fields) => fields.values_mut().for_each(|v| printable(v, glyphs)),
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// Lays out `template` with `data` as `report.json` and writes the PDF.
fn typeset(
    template: &str,
    data: Vec<u8>,
    ident: String,
    created: DateTime<Utc>,
) -> Result<Vec<u8>, PdfError> {
    let world = ReportWorld::new(template, data)?;
    let compiled = typst::compile::<PagedDocument>(&world);
    // Each report is a new document: keep typst's memo caches from growing with
    // every one a long-running server writes.
    typst::comemo::evict(1);
    for warning in &compiled.warnings {
        tracing::warn!(warning = %warning.message, "typst warning while writing the PDF report");
    }
    let document = compiled
        .output
        .map_err(|e| PdfError::Layout(messages(&e)))?;
    let standards = PdfStandards::new(&[PdfStandard::A_2b])
        .map_err(|e| PdfError::Export(e.message().to_string()))?;
    let options = PdfOptions {
        ident: Smart::Custom(ident),
        creator: Smart::Custom(Some("Traguardo".to_string())),
        timestamp: datetime(created).map(Timestamp::new_utc),
        standards,
        ..PdfOptions::default()
    };
    typst_pdf::pdf(&document, &options).map_err(|e| PdfError::Export(messages(&e)))
}

/// The errors among typst's diagnostics, in one line.
fn messages(diagnostics: &[SourceDiagnostic]) -> String {
    diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .map(|d| d.message.as_str())
        .collect::<Vec<_>>()
        .join("; ")
}

/// A UTC time as typst's date and time.
fn datetime(at: DateTime<Utc>) -> Option<Datetime> {
    let small = |n: u32| u8::try_from(n).ok();
    Datetime::from_ymd_hms(
        at.year(),
        small(at.month())?,
        small(at.day())?,
        small(at.hour())?,
        small(at.minute())?,
        small(at.second())?,
    )
}

/// The standard library, built once.
static LIBRARY: LazyLock<LazyHash<Library>> =
    LazyLock::new(|| LazyHash::new(Library::builder().build()));

/// The bundled fonts and their book, loaded once.
static FONTS: LazyLock<(LazyHash<FontBook>, Vec<Font>)> = LazyLock::new(|| {
    let fonts: Vec<Font> = typst_assets::fonts()
        .flat_map(|data| Font::iter(Bytes::new(data)))
        .collect();
    (LazyHash::new(FontBook::from_fonts(&fonts)), fonts)
});

/// Everything typst may read while laying out one report: the template, the
/// report's data, and the bundled fonts. Nothing on disk, no packages, no clock.
struct ReportWorld {
    main: Source,
    data_id: FileId,
    data: Bytes,
}

impl ReportWorld {
    fn new(template: &str, data: Vec<u8>) -> Result<Self, PdfError> {
        let id = |name: &str| {
            VirtualPath::new(name)
                .map(|path| RootedPath::new(VirtualRoot::Project, path).intern())
                .map_err(|e| PdfError::Layout(format!("{name}: {e:?}")))
        };
        let main = Source::new(id("report.typ")?, template.to_string());
        Ok(ReportWorld {
            main,
            data_id: id(DATA_FILE)?,
            data: Bytes::new(data),
        })
    }
}

impl World for ReportWorld {
    fn library(&self) -> &LazyHash<Library> {
        &LIBRARY
    }

    fn book(&self) -> &LazyHash<FontBook> {
        &FONTS.0
    }

    fn main(&self) -> FileId {
        self.main.id()
    }

    fn source(&self, id: FileId) -> FileResult<Source> {
        if id == self.main.id() {
            Ok(self.main.clone())
        } else {
            Err(not_found(id))
        }
    }

    fn file(&self, id: FileId) -> FileResult<Bytes> {
        if id == self.data_id {
            Ok(self.data.clone())
        } else if id == self.main.id() {
            Ok(Bytes::from_string(self.main.clone()))
        } else {
            Err(not_found(id))
        }
    }

    fn font(&self, index: usize) -> Option<Font> {
        FONTS.1.get(index).cloned()
    }

    fn today(&self, _offset: Option<typst::foundations::Duration>) -> Option<Datetime> {
        // The template prints the report's own dates, never the clock's.
        None
    }
}

fn not_found(id: FileId) -> FileError {
    FileError::NotFound(id.get().vpath().get_without_slash().into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn created() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2023-02-01T08:30:00Z")
            .expect("a timestamp")
            .with_timezone(&Utc)
    }

    #[test]
    fn a_template_that_fails_is_a_typed_layout_error() {
        let result = typeset(
            "#let doc = json(\"report.json\")\n#doc.missing",
            b"{}".to_vec(),
            "test".into(),
            created(),
        );
        match result {
            Err(PdfError::Layout(message)) => assert!(message.contains("missing"), "{message}"),
            other => panic!("expected a layout error, got {other:?}"),
        }
    }

    #[test]
    fn the_template_reads_no_file_but_its_data() {
        let result = typeset(
            "#read(\"/etc/passwd\")",
            b"{}".to_vec(),
            "test".into(),
            created(),
        );
        assert!(matches!(result, Err(PdfError::Layout(_))), "{result:?}");
    }

    #[test]
    fn characters_no_font_draws_are_marked_and_the_rest_is_kept() {
        let mut value = serde_json::json!({"note": ["Caffè «ok» ✖ 😀 中"]});
        printable(&mut value, &mut Glyphs::default());
        assert_eq!(value["note"][0], "Caffè «ok» ✖ \u{FFFD} \u{FFFD}");
        assert!(Glyphs::default().drawable('\u{FFFD}'));
    }

    #[test]
    fn markup_characters_in_the_data_are_printed_as_text() {
        let pdf = typeset(
            "#let doc = json(\"report.json\")\n#doc.note",
            br##"{"note": "#emph[x] $y$ *z* _w_ @ref <l> [a] \\ b"}"##.to_vec(),
            "test".into(),
            created(),
        )
        .expect("a PDF");
        assert!(pdf.starts_with(b"%PDF-"));
    }
}
