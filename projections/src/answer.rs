//! An objective's state as the API answers it, serialised straight from the
//! read model.
//!
//! [`Objective::answer`] writes the JSON of the [`ObjectiveView`] that
//! [`Objective::evaluate`] builds, byte for byte, without building it: no name
//! or text is copied and no list is collected; each is read from the objective
//! while it is written. The long parts (the indicators' history of
//! measurements, tens of KB in a year's objective) are written by hand, not
//! through serde's calls per field and its escaping loop per string. The view stays what the pages, the reports
//! and the tests read and what the OpenAPI document describes; the answer is
//! what the API sends. A property test compares the two for every objective at
//! every date of random histories (`tests/api/properties.rs`).
//!
//! [`ObjectiveView`]: crate::ObjectiveView

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Serialize, Serializer};
use traguardo_events::model::{ValidationOutcome, ValidationStage};

use crate::name::{Name, Text};
use crate::notes::{BackfillRef, Evidence, Note, Notes};
use crate::objective::{
    Indicator, Measurement, NoteKind, Objective, Pct, Phase, PhaseStatus, ScoreView, Validation,
};

/// [`Objective::evaluate`]'s view as JSON, written as it is read.
#[derive(Debug, Clone, Copy)]
pub struct Answer<'a> {
    objective: &'a Objective,
    at: NaiveDate,
}

impl Objective {
    /// The objective as answered by the API at `at`: serialises as the
    /// [`ObjectiveView`](crate::ObjectiveView) of [`Objective::evaluate`] does,
    /// without building it.
    pub fn answer(&self, at: NaiveDate) -> Answer<'_> {
        Answer {
            objective: self,
            at,
        }
    }
}

impl Answer<'_> {
    /// About how many bytes the answer takes, to size the buffer it is written
    /// into: each phase a few hundred, and each event at most one note,
    /// measurement or validation of a few hundred more. A wrong guess costs
    /// a reallocation, never a wrong answer.
    #[must_use]
    pub fn size_hint(&self) -> usize {
        let o = self.objective;
        let guess = 1024 + 400 * o.phases.len() + 256 * usize::try_from(o.version).unwrap_or(0);
        guess.min(1 << 20)
    }

    /// The answer's JSON, appended to `out`.
    ///
    /// # Errors
    /// The serialiser's, for a part written through serde (none of the
    /// answer's types fails).
    pub fn write_json(&self, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
        let (o, at) = (self.objective, self.at);
        let mut w = Writer(out);
        w.raw(b"{\"key\":");
        w.str(&o.key);
        w.raw(b",\"year\":");
        w.int(o.year);
        w.raw(b",\"unit\":");
        w.str(&o.unit);
        w.raw(b",\"letter\":");
        w.str(&o.letter);
        w.raw(b",\"title\":");
        w.str(o.title.at(at));
        w.raw(b",\"manager\":");
        w.str(o.manager.at(at));
        w.raw(b",\"version\":");
        w.int(o.version);
        w.raw(b",\"last_seq\":");
        w.int(o.last_seq);
        w.raw(b",\"withdrawn\":");
        w.bool(o.withdrawn_at(at));
        w.raw(b",\"final_deadline\":");
        w.date(*o.final_deadline.at(at))?;
        w.raw(b",\"original_final_deadline\":");
        w.date(o.final_deadline.original)?;
        w.raw(b",\"phases\":");
        w.list(o.phases.iter().filter(|p| p.exists_at(at)), |w, p| {
            w.value(&PhaseOut::of(p, at))
        })?;
        w.raw(b",\"indicators\":");
        w.list(o.indicators.iter().filter(|i| i.exists_at(at)), |w, i| {
            w.indicator(i, at)
        })?;
        w.raw(b",\"validations\":");
        w.list(o.validations.iter(), |w, v| w.value(&ValidationOut::of(v)))?;
        w.raw(b",\"validation_stale\":");
        w.bool(o.validation_stale_at(at));
        w.raw(b",\"score\":");
        w.value(&ScoreView::from(o.score(at)))?;
        w.raw(b"}");
        Ok(())
    }

    /// The answer's JSON.
    ///
    /// # Errors
    /// As [`Answer::write_json`].
    pub fn to_json(&self) -> Result<Vec<u8>, serde_json::Error> {
        let mut out = Vec::with_capacity(self.size_hint());
        self.write_json(&mut out)?;
        Ok(out)
    }
}

/// JSON written by hand where an answer is long (the objective's own fields,
/// its indicators and their history of measurements), byte for byte as
/// serde_json writes the view: the fields' names as they are, and each string
/// copied whole unless it holds a character JSON escapes, when serde_json
/// writes it. The rest (phases, validations, the score) goes through serde.
struct Writer<'o>(&'o mut Vec<u8>);

impl Writer<'_> {
    fn raw(&mut self, bytes: &[u8]) {
        self.0.extend_from_slice(bytes);
    }

    fn str(&mut self, text: &str) {
        // Without a branch per byte: the compiler checks many at a time.
        let plain = text.bytes().fold(true, |plain, b| {
            plain & (b >= 0x20) & (b != b'"') & (b != b'\\')
        });
        if plain {
            self.0.reserve(text.len() + 2);
            self.0.push(b'"');
            self.0.extend_from_slice(text.as_bytes());
            self.0.push(b'"');
        } else {
            // Writing a string into a Vec cannot fail.
            let _ = serde_json::to_writer(&mut *self.0, text);
        }
    }

    fn int(&mut self, n: impl itoa::Integer) {
        self.raw(itoa::Buffer::new().format(n).as_bytes());
    }

    fn opt_int(&mut self, n: Option<u64>) {
        match n {
            Some(n) => self.int(n),
            None => self.raw(b"null"),
        }
    }

    fn bool(&mut self, b: bool) {
        self.raw(if b { b"true" } else { b"false" });
    }

    fn value(&mut self, value: &impl Serialize) -> Result<(), serde_json::Error> {
        serde_json::to_writer(&mut *self.0, value)
    }

    /// As [`crate::name::days`] writes it.
    fn date(&mut self, date: NaiveDate) -> Result<(), serde_json::Error> {
        let mut buf = [0; traguardo_events::envelope::DATE_LEN];
        match traguardo_events::envelope::write_date(&date, &mut buf) {
            Some(text) => {
                self.str(text);
                Ok(())
            }
            None => self.value(&date),
        }
    }

    /// As [`traguardo_events::envelope::timestamp`] writes it.
    fn timestamp(&mut self, at: &DateTime<Utc>) {
        let mut buf = [0; traguardo_events::envelope::TIMESTAMP_LEN];
        match traguardo_events::envelope::write_timestamp(at, &mut buf) {
            Some(text) => self.str(text),
            None => self.str(&traguardo_events::envelope::format_timestamp(at)),
        }
    }

    fn list<T>(
        &mut self,
        items: impl Iterator<Item = T>,
        mut item: impl FnMut(&mut Self, T) -> Result<(), serde_json::Error>,
    ) -> Result<(), serde_json::Error> {
        self.raw(b"[");
        for (i, it) in items.enumerate() {
            if i > 0 {
                self.raw(b",");
            }
            item(self, it)?;
        }
        self.raw(b"]");
        Ok(())
    }

    /// `IndicatorView`.
    fn indicator(&mut self, i: &Indicator, at: NaiveDate) -> Result<(), serde_json::Error> {
        self.raw(b"{\"id\":");
        self.str(&i.id);
        self.raw(b",\"description\":");
        self.str(&i.description);
        self.raw(b",\"kind\":");
        self.value(&i.kind)?;
        self.raw(b",\"target\":");
        self.value(&i.target.at(at).map(Pct))?;
        self.raw(b",\"latest\":");
        match i.latest_at(at) {
            Some(m) => self.measurement(m)?,
            None => self.raw(b"null"),
        }
        self.raw(b",\"met\":");
        self.value(&i.met_at(at))?;
        self.raw(b",\"history\":");
        self.list(
            i.measurements.iter().filter(|m| m.on <= at),
            Self::measurement,
        )?;
        self.raw(b",\"withdrawn\":");
        self.bool(i.withdrawn_from.is_some_and(|from| from <= at));
        self.raw(b"}");
        Ok(())
    }

    /// `MeasurementView`.
    fn measurement(&mut self, m: &Measurement) -> Result<(), serde_json::Error> {
        self.raw(b"{\"on\":");
        self.date(m.on)?;
        self.raw(b",\"value\":");
        self.value(&m.value.map(Pct))?;
        self.raw(b",\"numerator\":");
        self.opt_int(m.numerator);
        self.raw(b",\"denominator\":");
        self.opt_int(m.denominator);
        if let Some(text) = &m.text {
            self.raw(b",\"text\":");
            self.str(text);
        }
        if let Some(note) = &m.note {
            self.raw(b",\"note\":");
            self.str(note);
        }
        self.raw(b",\"actor\":");
        self.str(&m.recorded.actor);
        self.raw(b",\"recorded_at\":");
        self.timestamp(&m.recorded.recorded_at);
        if let Some(backfill) = &m.backfill {
            self.raw(b",\"backfill\":");
            self.value(backfill)?;
        }
        self.raw(b"}");
        Ok(())
    }
}

/// `skip_serializing_if` for a borrowed slice, as `Vec::is_empty` is for the
/// view's lists.
fn is_empty<T>(items: &&[T]) -> bool {
    items.is_empty()
}

/// `PhaseView`, borrowed.
#[derive(Serialize)]
struct PhaseOut<'a> {
    number: u32,
    description: &'a Text,
    weight: Pct,
    original_weight: Pct,
    involved: &'a [Name],
    #[serde(with = "crate::name::days")]
    deadline: NaiveDate,
    #[serde(with = "crate::name::days")]
    original_deadline: NaiveDate,
    status: PhaseStatus,
    #[serde(with = "crate::name::days::opt")]
    started_on: Option<NaiveDate>,
    #[serde(with = "crate::name::days::opt")]
    completed_on: Option<NaiveDate>,
    completed_by: Option<Name>,
    #[serde(skip_serializing_if = "Evidence::is_empty")]
    evidence: Evidence<'a>,
    withdrawn: bool,
    notes: NotesOut<'a>,
}

impl<'a> PhaseOut<'a> {
    fn of(p: &'a Phase, at: NaiveDate) -> Self {
        let completed = p.completed_by(at);
        PhaseOut {
            number: p.number,
            description: p.description.at(at),
            weight: Pct(*p.weight.at(at)),
            original_weight: Pct(p.weight.original),
            involved: &p.involved,
            deadline: *p.deadline.at(at),
            original_deadline: p.deadline.original,
            status: p.status_at(at),
            started_on: p.started().map(|m| m.on).filter(|on| *on <= at),
            completed_on: completed.map(|m| m.on),
            completed_by: completed.map(|m| m.recorded.actor),
            evidence: completed.map_or(Evidence::NONE, |m| m.evidence),
            withdrawn: !p.active_at(at),
            notes: NotesOut {
                notes: p.notes(),
                at,
            },
        }
    }
}

/// A phase's notes shown at a date, written as they are read.
struct NotesOut<'a> {
    notes: &'a Notes,
    at: NaiveDate,
}

impl Serialize for NotesOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(
            self.notes
                .iter()
                .filter(|n| n.shown_at(self.at))
                .map(NoteOut::of),
        )
    }
}

/// `NoteView`, borrowed.
#[derive(Serialize)]
struct NoteOut<'a> {
    kind: NoteKind,
    #[serde(with = "crate::name::days::opt")]
    on: Option<NaiveDate>,
    text: Option<&'a str>,
    #[serde(skip_serializing_if = "Evidence::is_empty")]
    evidence: Evidence<'a>,
    actor: Name,
    #[serde(with = "traguardo_events::envelope::timestamp")]
    recorded_at: DateTime<Utc>,
    backfill: Option<BackfillRef<'a>>,
}

impl<'a> NoteOut<'a> {
    fn of(n: Note<'a>) -> Self {
        NoteOut {
            kind: n.kind,
            on: n.on,
            text: n.text,
            evidence: n.evidence,
            actor: n.recorded.actor,
            recorded_at: n.recorded.recorded_at,
            backfill: n.backfill,
        }
    }
}

/// `ValidationView`, borrowed.
#[derive(Serialize)]
struct ValidationOut<'a> {
    stage: ValidationStage,
    outcome: ValidationOutcome,
    actor: &'a Name,
    #[serde(with = "traguardo_events::envelope::timestamp")]
    recorded_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "is_empty")]
    unverified_phases: &'a [u32],
    #[serde(skip_serializing_if = "is_empty")]
    neutralised_phases: &'a [u32],
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reference: Option<&'a str>,
}

impl<'a> ValidationOut<'a> {
    fn of(v: &'a Validation) -> Self {
        ValidationOut {
            stage: v.stage,
            outcome: v.outcome,
            actor: &v.recorded.actor,
            recorded_at: v.recorded.recorded_at,
            unverified_phases: &v.unverified_phases,
            neutralised_phases: &v.neutralised_phases,
            note: v.note.as_deref(),
            reference: v.reference.as_deref(),
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;
    use traguardo_events::domain::ObjectiveEvent;
    use traguardo_events::model::{Backfill, ValidationOutcome, ValidationStage};

    use crate::objective::tests::{envelope, history};
    use crate::Objective;

    fn date(m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2022, m, d).unwrap()
    }

    /// The small history, then a retraction loaded as *caricamento storico*, a
    /// measurement with a note in quotes and a control character, one with no
    /// note, and a final
    /// validation with every optional part: what the view skips when empty.
    fn objective() -> Objective {
        let mut events = history();
        let more = [
            ObjectiveEvent::PhaseCompletionRetracted {
                phase: 1,
                completed_on: date(5, 28),
                reason: "Registrata per errore".into(),
                backfill: Some(Box::new(Backfill {
                    act: "Determinazione n. 13".into(),
                    reason: "Correzione".into(),
                    on_behalf_of: None,
                })),
            },
            ObjectiveEvent::IndicatorMeasured {
                indicator: "rimborsi".into(),
                on: date(6, 30),
                value_hundredths: None,
                numerator: Some(199),
                denominator: Some(200),
                text: None,
                note: Some("Dal \"gestionale\"\tufficio\\tributi".into()),
                backfill: None,
            },
            ObjectiveEvent::IndicatorMeasured {
                indicator: "rimborsi".into(),
                on: date(7, 31),
                value_hundredths: None,
                numerator: Some(200),
                denominator: Some(200),
                text: None,
                note: None,
                backfill: None,
            },
            ObjectiveEvent::ValidationRecorded {
                stage: ValidationStage::Final,
                outcome: ValidationOutcome::Approved,
                unverified_phases: vec![2],
                neutralised_phases: vec![1],
                note: Some("Fase 1 non imputabile".into()),
                reference: Some("Verbale n. 3 del 15/03/2023".into()),
            },
        ];
        for event in &more {
            let n = events.len() as u64 + 1;
            events.push(envelope(n, n, "Nucleo di Valutazione", event));
        }
        Objective::from_events(&events).unwrap().unwrap()
    }

    proptest::proptest! {
        /// A string is written as serde_json writes it, whatever it holds:
        /// copied whole when nothing in it is escaped, else by serde_json.
        #[test]
        fn a_string_is_written_as_serde_json_writes_it(text in "(?s).{0,40}|[\"\\\\\\x00-\\x1f\\x7f é€😀a-z]{0,40}") {
            let mut out = Vec::new();
            super::Writer(&mut out).str(&text);
            proptest::prop_assert_eq!(out, serde_json::to_vec(&text).unwrap());
        }
    }

    #[test]
    fn the_answer_is_the_view_byte_for_byte_at_every_date() {
        let o = objective();
        let mut at = date(1, 1);
        while at <= date(12, 31) {
            let written = String::from_utf8(o.answer(at).to_json().unwrap()).unwrap();
            let built = serde_json::to_string(&o.evaluate(at)).unwrap();
            assert_eq!(written, built, "at {at}");
            at = at.succ_opt().unwrap();
        }
        let full = String::from_utf8(o.answer(date(12, 31)).to_json().unwrap()).unwrap();
        for part in [
            r#""evidence":["Prot. n. 12345 del 28/05/2022"]"#,
            r#""kind":"retraction""#,
            r#""act":"Determinazione n. 13""#,
            r#""note":"Dal \"gestionale\"\tufficio\\tributi""#,
            r#""unverified_phases":[2],"neutralised_phases":[1]"#,
            r#""reference":"Verbale n. 3 del 15/03/2023""#,
        ] {
            assert!(full.contains(part), "{part} missing from {full}");
        }
    }
}
