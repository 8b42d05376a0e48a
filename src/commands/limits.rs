//! The limits of DESIGN.md §5 on what a write may carry: lengths of free text,
//! sizes of lists, ranges of numbers and dates, and the characters a text may
//! hold. Each check returns the problem with its field, so that a decide
//! function reports every one at once and appends nothing.

use chrono::{Datelike, NaiveDate};
use traguardo_events::model::{Backfill, Hundredths};

use crate::error::FieldError;

/// Notes, reasons, findings: at most this many characters.
pub const NOTE_CHARS: usize = 4_000;
/// Names, acts, references, evidence, titles: at most this many characters.
pub const NAME_CHARS: usize = 200;
/// Descriptions of phases and indicators.
pub const DESCRIPTION_CHARS: usize = 2_000;
/// Evidence references on one completion, phases named by one validation.
pub const LIST_ITEMS: usize = 50;
/// The largest term of a ratio.
pub const RATIO_TERM_MAX: u64 = 1_000_000_000_000;
/// The largest value of a measurement, in absolute terms (hundredths).
pub const VALUE_MAX: Hundredths = Hundredths(100_000_000_000);

/// A text field: at most `max` characters, no control characters but newline
/// and tab, no bidirectional overrides (which make a text read otherwise than it
/// is stored).
pub fn text(field: &str, value: &str, max: usize) -> Option<FieldError> {
    let count = value.chars().count();
    if count > max {
        return Some(FieldError::new(
            field,
            format!("è lungo {count} caratteri, al massimo {max}"),
        ));
    }
    value.chars().find(|c| refused(*c)).map(|c| {
        FieldError::new(
            field,
            format!("contiene un carattere non ammesso (U+{:04X})", u32::from(c)),
        )
    })
}

/// Control characters (C0 but newline and tab, DEL, C1) and the bidirectional
/// embeddings, overrides and isolates.
fn refused(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t')
        || ('\u{202A}'..='\u{202E}').contains(&c)
        || ('\u{2066}'..='\u{2069}').contains(&c)
}

/// An optional text field.
pub fn optional_text(field: &str, value: Option<&str>, max: usize) -> Option<FieldError> {
    value.and_then(|v| text(field, v, max))
}

/// A list of at most [`LIST_ITEMS`] items.
pub fn list<T>(field: &str, items: &[T]) -> Option<FieldError> {
    size(field, items.len())
}

/// A collection (list or map) of `len` items: at most [`LIST_ITEMS`].
pub fn size(field: &str, len: usize) -> Option<FieldError> {
    (len > LIST_ITEMS)
        .then(|| FieldError::new(field, format!("ha {len} elementi, al massimo {LIST_ITEMS}")))
}

/// A valid date within the plan year and the years either side of it.
pub fn date(field: &str, on: NaiveDate, year: i32) -> Option<FieldError> {
    let inside = (year - 1..=year + 1).contains(&on.year());
    (!inside).then(|| {
        FieldError::new(
            field,
            format!(
                "il {} è fuori dal periodo del piano {year} (dal 01/01/{} al 31/12/{})",
                traguardo_projections::italian::date(on),
                year - 1,
                year + 1
            ),
        )
    })
}

/// A declared back-fill: its act and reason are required, each within limits.
pub fn backfill(field: &str, backfill: &Backfill) -> Vec<FieldError> {
    let mut problems = Vec::new();
    for (name, value, max) in [
        ("act", backfill.act.as_str(), NAME_CHARS),
        ("reason", backfill.reason.as_str(), NOTE_CHARS),
    ] {
        let path = format!("{field}.{name}");
        if value.trim().is_empty() {
            problems.push(FieldError::new(path, "è obbligatorio"));
        } else {
            problems.extend(text(&path, value, max));
        }
    }
    problems.extend(optional_text(
        &format!("{field}.on_behalf_of"),
        backfill.on_behalf_of.as_deref(),
        NAME_CHARS,
    ));
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_and_bidi_characters_are_refused_but_newlines_and_tabs_are_kept() {
        assert_eq!(text("note", "riga 1\nriga\t2", NOTE_CHARS), None);
        for bad in [
            "a\u{0}b",
            "\u{202E}gpj.exe",
            "x\u{85}",
            "\u{2066}x",
            "\u{7f}",
        ] {
            assert!(text("note", bad, NOTE_CHARS).is_some(), "{bad:?}");
        }
        let problem = text("note", "ab\u{202E}", NOTE_CHARS).unwrap();
        assert_eq!(problem.field, "note");
        assert_eq!(
            problem.message,
            "contiene un carattere non ammesso (U+202E)"
        );
    }

    #[test]
    fn lengths_are_counted_in_characters() {
        assert_eq!(text("actor", &"è".repeat(200), NAME_CHARS), None);
        assert_eq!(
            text("actor", &"è".repeat(201), NAME_CHARS).unwrap().message,
            "è lungo 201 caratteri, al massimo 200"
        );
    }

    #[test]
    fn dates_lie_within_the_plan_year_and_the_years_around_it() {
        let d = |s: &str| s.parse::<NaiveDate>().unwrap();
        assert_eq!(date("on", d("2021-01-01"), 2022), None);
        assert_eq!(date("on", d("2023-12-31"), 2022), None);
        assert!(date("on", d("0001-01-01"), 2022).is_some());
        assert!(date("on", d("2020-12-31"), 2022).is_some());
    }
}
