//! The Markdown report: tables a person can read in a terminal or paste into a
//! document.

use askama::Template;

use super::document::Document;

/// Escapes text for Markdown tables and one-line list items: `|` would end a
/// cell, a line break would end the row, a backslash could swallow either, and
/// every character CommonMark gives a meaning inline (emphasis, code, links,
/// raw HTML, entities) is backslash-escaped so that what a user typed, such as a
/// `<script>` in a note, is printed as text and never interpreted.
#[derive(Debug, Clone, Copy)]
pub struct Markdown;

impl askama::filters::Escaper for Markdown {
    fn write_escaped_str<W: std::fmt::Write>(&self, mut dest: W, string: &str) -> std::fmt::Result {
        for c in string.chars() {
            match c {
                '|' | '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '&' | '#' | '~' => {
                    dest.write_char('\\')?;
                    dest.write_char(c)?;
                }
                '\r' | '\n' => dest.write_char(' ')?,
                c => dest.write_char(c)?,
            }
        }
        Ok(())
    }
}

/// `templates/report.md`.
#[derive(Template)]
#[template(path = "report.md", config = "src/report/templates/askama.toml")]
pub struct MarkdownReport<'a> {
    /// The document.
    pub doc: &'a Document,
}
