//! An objective's state as the API answers it, serialised straight from the
//! read model.
//!
//! [`Objective::answer`] writes the JSON of the [`ObjectiveView`] that
//! [`Objective::evaluate`] builds, byte for byte, without building it: no name
//! or text is copied and no list is collected; each is read from the objective
//! while the serialiser writes it. The view stays what the pages, the reports
//! and the tests read and what the OpenAPI document describes; the answer is
//! what the API sends. A property test compares the two for every objective at
//! every date of random histories (`tests/api/properties.rs`).
//!
//! [`ObjectiveView`]: crate::ObjectiveView

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Serialize, Serializer};
use traguardo_events::model::{Backfill, IndicatorKind, ValidationOutcome, ValidationStage};

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
}

impl Serialize for Answer<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (o, at) = (self.objective, self.at);
        ObjectiveOut {
            key: &o.key,
            year: o.year,
            unit: &o.unit,
            letter: &o.letter,
            title: o.title.at(at),
            manager: o.manager.at(at),
            version: o.version,
            last_seq: o.last_seq,
            withdrawn: o.withdrawn_at(at),
            final_deadline: *o.final_deadline.at(at),
            original_final_deadline: o.final_deadline.original,
            phases: Listed::new(&o.phases, at, |p, at| {
                p.exists_at(at).then(|| PhaseOut::of(p, at))
            }),
            indicators: Listed::new(&o.indicators, at, |i, at| {
                i.exists_at(at).then(|| IndicatorOut::of(i, at))
            }),
            validations: Listed::new(&o.validations, at, |v, _| Some(ValidationOut::of(v))),
            validation_stale: o.validation_stale_at(at),
            score: o.score(at).into(),
        }
        .serialize(s)
    }
}

/// A list written while it is read, never collected: the items of a slice
/// that `item` shows at a date, as what it makes of them.
struct Listed<'a, T, O> {
    items: &'a [T],
    at: NaiveDate,
    item: fn(&'a T, NaiveDate) -> Option<O>,
}

impl<'a, T, O> Listed<'a, T, O> {
    fn new(items: &'a [T], at: NaiveDate, item: fn(&'a T, NaiveDate) -> Option<O>) -> Self {
        Listed { items, at, item }
    }
}

impl<T, O: Serialize> Serialize for Listed<'_, T, O> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.items.iter().filter_map(|i| (self.item)(i, self.at)))
    }
}

/// `skip_serializing_if` for a borrowed slice, as `Vec::is_empty` is for the
/// view's lists.
fn is_empty<T>(items: &&[T]) -> bool {
    items.is_empty()
}

/// `ObjectiveView`, borrowed.
#[derive(Serialize)]
struct ObjectiveOut<'a> {
    key: &'a Name,
    year: i32,
    unit: &'a Name,
    letter: &'a Name,
    title: &'a Text,
    manager: &'a Name,
    version: u64,
    last_seq: u64,
    withdrawn: bool,
    #[serde(with = "crate::name::days")]
    final_deadline: NaiveDate,
    #[serde(with = "crate::name::days")]
    original_final_deadline: NaiveDate,
    phases: Listed<'a, Phase, PhaseOut<'a>>,
    indicators: Listed<'a, Indicator, IndicatorOut<'a>>,
    validations: Listed<'a, Validation, ValidationOut<'a>>,
    validation_stale: bool,
    score: ScoreView,
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

/// `IndicatorView`, borrowed.
#[derive(Serialize)]
struct IndicatorOut<'a> {
    id: &'a str,
    description: &'a str,
    kind: IndicatorKind,
    target: Option<Pct>,
    latest: Option<MeasurementOut<'a>>,
    met: Option<bool>,
    history: Listed<'a, Measurement, MeasurementOut<'a>>,
    withdrawn: bool,
}

impl<'a> IndicatorOut<'a> {
    fn of(i: &'a Indicator, at: NaiveDate) -> Self {
        IndicatorOut {
            id: &i.id,
            description: &i.description,
            kind: i.kind,
            target: i.target.at(at).map(Pct),
            latest: i.latest_at(at).map(MeasurementOut::of),
            met: i.met_at(at),
            history: Listed::new(&i.measurements, at, |m, at| {
                (m.on <= at).then(|| MeasurementOut::of(m))
            }),
            withdrawn: i.withdrawn_from.is_some_and(|from| from <= at),
        }
    }
}

/// `MeasurementView`, borrowed.
#[derive(Serialize)]
struct MeasurementOut<'a> {
    #[serde(with = "crate::name::days")]
    on: NaiveDate,
    value: Option<Pct>,
    numerator: Option<u64>,
    denominator: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<&'a str>,
    actor: &'a Name,
    #[serde(with = "traguardo_events::envelope::timestamp")]
    recorded_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    backfill: Option<&'a Backfill>,
}

impl<'a> MeasurementOut<'a> {
    fn of(m: &'a Measurement) -> Self {
        MeasurementOut {
            on: m.on,
            value: m.value.map(Pct),
            numerator: m.numerator,
            denominator: m.denominator,
            text: m.text.as_deref(),
            note: m.note.as_deref(),
            actor: &m.recorded.actor,
            recorded_at: m.recorded.recorded_at,
            backfill: m.backfill.as_deref(),
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
                backfill: Some(Backfill {
                    act: "Determinazione n. 13".into(),
                    reason: "Correzione".into(),
                    on_behalf_of: None,
                }),
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

    #[test]
    fn the_answer_is_the_view_byte_for_byte_at_every_date() {
        let o = objective();
        let mut at = date(1, 1);
        while at <= date(12, 31) {
            let written = serde_json::to_string(&o.answer(at)).unwrap();
            let built = serde_json::to_string(&o.evaluate(at)).unwrap();
            assert_eq!(written, built, "at {at}");
            at = at.succ_opt().unwrap();
        }
        let full = serde_json::to_string(&o.answer(date(12, 31))).unwrap();
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
