//! The HTML report: one self-contained page (no external assets) that prints on A4,
//! with an inline SVG chart of the unit scores. Every value is escaped by the
//! template engine; statuses carry a symbol and words besides their colour.

use askama::Template;

use super::document::Document;

/// `templates/report.html`.
#[derive(Template)]
#[template(path = "report.html", config = "src/report/templates/askama.toml")]
pub struct HtmlReport<'a> {
    /// The document.
    pub doc: &'a Document,
}
