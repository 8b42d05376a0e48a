//! One objective, folded from its stream, and its score at any valid date.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use traguardo_events::domain::{ObjectiveEvent, RevisionRef};
use traguardo_events::model::{
    objective_key, Backfill, Hundredths, IndicatorKind, IndicatorSpec, ObjectiveSpec, PhaseSpec,
    ValidationOutcome, ValidationStage,
};
use traguardo_events::{EventRef, RecordedEvent};

use crate::measurements::Measurements;
use crate::name::{actor_id_of, name, Name, Text};
use crate::notes::{BackfillRef, Evidence, NewNote, Note, Notes};
use crate::timeline::Timeline;
use crate::ProjectionError;

/// Who recorded a fact, and when the system learnt it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recorded {
    /// The actor of the event.
    #[serde(with = "crate::name::packed")]
    pub actor: Name,
    /// Their role.
    #[serde(with = "crate::name::packed")]
    pub role: Name,
    /// Record time.
    #[serde(with = "crate::name::nanos")]
    pub recorded_at: DateTime<Utc>,
    /// The event's seq.
    pub seq: u64,
}

impl Recorded {
    fn of(event: &EventRef<'_>) -> Self {
        Recorded {
            actor: name(event.actor),
            role: name(event.role),
            recorded_at: event.recorded_at,
            seq: event.seq,
        }
    }
}

/// A dated fact about a phase: started or completed on a valid date. It is not
/// kept apart: it is read from the phase's note that records it
/// ([`Phase::started`], [`Phase::completed`]), so a manager's note is held once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark<'a> {
    /// Valid date.
    pub on: NaiveDate,
    /// Note given with it.
    pub note: Option<&'a str>,
    /// Evidence links (completions).
    pub evidence: Evidence<'a>,
    /// Loaded after the fact by the control office (*caricamento storico*).
    pub backfill: Option<BackfillRef<'a>>,
    /// Who and when.
    pub recorded: Recorded,
    /// The stable identity of who recorded it (separation of duties compares it).
    pub actor_id: Name,
}

/// What a note of a phase records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NoteKind {
    /// A start, with the manager's note.
    Start,
    /// A completion, with its note and evidence.
    Completion,
    /// A completion withdrawn, with its reason.
    Retraction,
}

impl<'a> Note<'a> {
    /// The note as a dated fact, when it has a date (a start or a completion).
    fn mark(self) -> Option<Mark<'a>> {
        Some(Mark {
            on: self.on?,
            note: self.text,
            evidence: self.evidence,
            backfill: self.backfill,
            recorded: self.recorded,
            actor_id: self.actor_id,
        })
    }
}

/// A phase as folded: its timelines and its facts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Phase {
    /// 1..n.
    pub number: u32,
    /// What it is, over time.
    pub description: Timeline<Text>,
    /// Involved units or bodies.
    pub involved: Box<[Name]>,
    /// *Incidenza %* over time.
    pub weight: Timeline<Hundredths>,
    /// *Scadenza* over time.
    #[serde(with = "crate::name::days::timeline")]
    pub deadline: Timeline<NaiveDate>,
    /// For a phase added by a revision, the date it is in force from.
    #[serde(with = "crate::name::days::opt")]
    pub added_from: Option<NaiveDate>,
    /// For a withdrawn phase, the date it no longer counts from.
    #[serde(with = "crate::name::days::opt")]
    pub withdrawn_from: Option<NaiveDate>,
    /// The note of its start, if it was started ([`Phase::started`]).
    started: Option<u32>,
    /// The note of its completion (declared), unless retracted since
    /// ([`Phase::completed`]).
    completed: Option<u32>,
    /// The earliest date of a retracted completion: a phase declared done was under
    /// way by then, so after the retraction it is in progress from that date even
    /// with no start recorded. Not a start: a corrected, earlier completion date
    /// stays possible.
    #[serde(with = "crate::name::days::opt")]
    pub reopened_from: Option<NaiveDate>,
    /// Every start, completion and retraction, with its note: the phase's
    /// history, packed ([`Notes`]).
    pub(crate) notes: Notes,
}

impl Phase {
    fn new(spec: PhaseSpec, added_from: Option<NaiveDate>) -> Self {
        Phase {
            number: spec.number,
            description: Timeline::new(spec.description.into()),
            involved: spec.involved.iter().map(|i| name(i)).collect(),
            weight: Timeline::new(spec.weight_hundredths),
            deadline: Timeline::new(spec.deadline),
            added_from,
            withdrawn_from: None,
            started: None,
            completed: None,
            reopened_from: None,
            notes: Notes::default(),
        }
    }

    /// When it was started, as its start note says.
    pub fn started(&self) -> Option<Mark<'_>> {
        self.note_at(self.started)
    }

    /// When it was completed (declared), unless retracted since, as its
    /// completion note says.
    pub fn completed(&self) -> Option<Mark<'_>> {
        self.note_at(self.completed)
    }

    /// Its completion, when it is dated on or before `at`.
    pub fn completed_by(&self, at: NaiveDate) -> Option<Mark<'_>> {
        self.completed().filter(|m| m.on <= at)
    }

    fn note_at(&self, index: Option<u32>) -> Option<Mark<'_>> {
        self.notes.get(index? as usize)?.mark()
    }

    /// Every start, completion and retraction, with its note, oldest first.
    pub fn notes(&self) -> &Notes {
        &self.notes
    }

    /// Adds a note; its index.
    fn push_note(&mut self, note: NewNote<'_>) -> Option<u32> {
        u32::try_from(self.notes.push(note)).ok()
    }

    /// Whether the phase exists at `at` (added by then).
    pub fn exists_at(&self, at: NaiveDate) -> bool {
        self.added_from.is_none_or(|from| from <= at)
    }

    /// Whether the phase counts at `at`: it exists and is not withdrawn.
    pub fn active_at(&self, at: NaiveDate) -> bool {
        self.exists_at(at) && self.withdrawn_from.is_none_or(|from| from > at)
    }

    /// Whether it is withdrawn, whatever the date.
    pub fn is_withdrawn(&self) -> bool {
        self.withdrawn_from.is_some()
    }

    /// The phase's status at `at` against the deadline in force at `at`.
    pub fn status_at(&self, at: NaiveDate) -> PhaseStatus {
        let deadline = *self.deadline.at(at);
        match &self.completed() {
            Some(done) if done.on <= at => {
                if done.on <= deadline {
                    PhaseStatus::CompletedOnTime
                } else {
                    PhaseStatus::CompletedLate
                }
            }
            _ if at > deadline => PhaseStatus::Overdue,
            _ => {
                let under_way = self.started().is_some_and(|s| s.on <= at)
                    || self.reopened_from.is_some_and(|on| on <= at);
                if under_way {
                    PhaseStatus::InProgress
                } else {
                    PhaseStatus::NotStarted
                }
            }
        }
    }
}

/// A phase's status (DESIGN.md §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PhaseStatus {
    /// Completed on or before the deadline in force.
    CompletedOnTime,
    /// Completed after it.
    CompletedLate,
    /// Not completed, and the deadline has passed.
    Overdue,
    /// Started, not completed, deadline not passed.
    InProgress,
    /// Nothing recorded yet.
    NotStarted,
    /// Withdrawn by a revision (*stralciata*): it does not count. The API keeps the
    /// status of the phase as it stood and says `withdrawn: true` beside it; the
    /// reports show this status instead.
    Withdrawn,
}

impl PhaseStatus {
    /// Every status, in the order a legend lists them.
    pub const ALL: [PhaseStatus; 6] = [
        PhaseStatus::CompletedOnTime,
        PhaseStatus::CompletedLate,
        PhaseStatus::Overdue,
        PhaseStatus::InProgress,
        PhaseStatus::NotStarted,
        PhaseStatus::Withdrawn,
    ];

    /// Whether the phase counts as completed.
    pub fn is_completed(self) -> bool {
        matches!(
            self,
            PhaseStatus::CompletedOnTime | PhaseStatus::CompletedLate
        )
    }
}

/// An objective's outcome (*raggiunto / non raggiunto*).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Every active phase completed on time.
    Achieved,
    /// A phase is late or overdue: it can no longer be achieved.
    NotAchieved,
    /// Still possible.
    InProgress,
    /// Withdrawn by a revision: it does not count in any score. The API says
    /// `withdrawn: true` beside the outcome it had; the reports show this one.
    Withdrawn,
}

/// An indicator measurement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Measurement {
    /// Valid date.
    #[serde(with = "crate::name::days")]
    pub on: NaiveDate,
    /// The value in hundredths, given or computed from the ratio.
    pub value: Option<Hundredths>,
    /// n° a.
    pub numerator: Option<u64>,
    /// n° b.
    pub denominator: Option<u64>,
    /// The finding, for a qualitative indicator.
    pub text: Option<Text>,
    /// Note.
    pub note: Option<Text>,
    /// Loaded after the fact (*caricamento storico*); rare, so boxed.
    pub backfill: Option<Box<Backfill>>,
    /// Who and when.
    pub recorded: Recorded,
}

/// An indicator and its measurements, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Indicator {
    /// Its id within the objective.
    pub id: Name,
    /// What it measures.
    pub description: Text,
    /// How it is measured.
    pub kind: IndicatorKind,
    /// The target over time (revisions may change it); as defined, its
    /// original.
    pub target: Timeline<Option<Hundredths>>,
    /// For an indicator added by a revision, the date it counts from.
    #[serde(with = "crate::name::days::opt")]
    pub added_from: Option<NaiveDate>,
    /// For a withdrawn indicator, the date it no longer counts from.
    #[serde(with = "crate::name::days::opt")]
    pub withdrawn_from: Option<NaiveDate>,
    /// Measurements in record order (shared by clones).
    pub measurements: Measurements,
}

impl Indicator {
    fn new(spec: IndicatorSpec, added_from: Option<NaiveDate>) -> Self {
        Indicator {
            id: name(&spec.id),
            description: spec.description.into(),
            kind: spec.kind,
            target: Timeline::new(spec.target_hundredths),
            added_from,
            withdrawn_from: None,
            measurements: Measurements::default(),
        }
    }

    /// The indicator as defined.
    pub fn spec(&self) -> IndicatorSpec {
        IndicatorSpec {
            id: self.id.to_string(),
            description: self.description.to_string(),
            kind: self.kind,
            target_hundredths: self.target.original,
        }
    }

    /// Whether it exists at `at` (added by then).
    pub fn exists_at(&self, at: NaiveDate) -> bool {
        self.added_from.is_none_or(|from| from <= at)
    }

    /// The latest measurement with a valid date on or before `at`.
    pub fn latest_at(&self, at: NaiveDate) -> Option<&Measurement> {
        self.measurements
            .iter()
            .filter(|m| m.on <= at)
            .max_by_key(|m| (m.on, m.recorded.seq))
    }

    /// Whether the target in force at `at` is met by the latest measurement: none
    /// for a qualitative indicator or one without a numeric target.
    pub fn met_at(&self, at: NaiveDate) -> Option<bool> {
        if self.kind == IndicatorKind::Qualitative {
            return None;
        }
        let target = (*self.target.at(at))?;
        Some(
            self.latest_at(at)
                .and_then(|m| m.value)
                .is_some_and(|value| value >= target),
        )
    }
}

/// A validation by the *Nucleo di Valutazione*.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Validation {
    /// `plan` or `final`.
    pub stage: ValidationStage,
    /// `approved` or `rejected`.
    pub outcome: ValidationOutcome,
    /// Declared but not accepted.
    pub unverified_phases: Vec<u32>,
    /// Left out (*sterilizzazione*).
    pub neutralised_phases: Vec<u32>,
    /// Note.
    pub note: Option<String>,
    /// The minutes it was decided in.
    pub reference: Option<String>,
    /// The record date of the first change to the objective after it: from then
    /// on the validation is stale (*validazione da ripetere*).
    #[serde(with = "crate::name::days::opt")]
    pub stale_from: Option<NaiveDate>,
    /// Who and when.
    pub recorded: Recorded,
}

/// The texts of an objective's definition that no score or state read needs
/// (the reports and the revision replay do): kept apart, behind one pointer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Texts {
    /// *Finalità strategiche*.
    pub strategic_purpose: Text,
    /// *Direttive specifiche*.
    pub directives: Text,
    /// *Risultato atteso*.
    pub expected_result: Text,
    /// When it counts as achieved.
    pub achieved_when: Text,
    /// When it counts as not achieved.
    pub not_achieved_when: Text,
    /// *Vincoli*.
    pub constraints: Text,
    /// *Risorse umane*.
    pub human_resources: Text,
    /// *Risorse finanziarie*.
    pub financial_resources: Text,
}

/// One objective, folded from the events of its stream.
///
/// The definition is not kept as recorded: its names are interned, its texts
/// boxed apart ([`Texts`]), its phases and indicators moved into their folded
/// state, and its manager and title live only in their timelines;
/// [`Objective::definition`] rebuilds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Objective {
    /// `{year}-{unit}-{letter}`.
    pub(crate) key: Name,
    /// Plan year.
    pub(crate) year: i32,
    /// Owning unit code.
    pub(crate) unit: Name,
    /// The letter, unique per unit and year.
    pub(crate) letter: Name,
    /// The rest of the definition's texts.
    pub(crate) texts: Box<Texts>,
    /// For an objective added by a revision, that revision.
    pub(crate) added_by: Option<Box<RevisionRef>>,
    /// Stream version (the ETag).
    pub(crate) version: u64,
    /// Seq of the last event folded.
    pub(crate) last_seq: u64,
    /// The phases, in number order, including added and withdrawn ones.
    pub(crate) phases: Vec<Phase>,
    /// *Scadenza finale* over time.
    #[serde(with = "crate::name::days::timeline")]
    pub(crate) final_deadline: Timeline<NaiveDate>,
    /// The responsible manager over time.
    pub(crate) manager: Timeline<Name>,
    /// The title over time.
    pub(crate) title: Timeline<Text>,
    /// The revision that withdrew the objective.
    pub(crate) withdrawn: Option<Box<RevisionRef>>,
    /// Indicators.
    pub(crate) indicators: Vec<Indicator>,
    /// Validations, oldest first.
    pub(crate) validations: Vec<Validation>,
    /// Seq of the last revision that changed the objective.
    pub(crate) last_revision_seq: Option<u64>,
    /// The latest act date of a revision that changed it.
    #[serde(with = "crate::name::days::opt")]
    pub(crate) last_revision_date: Option<NaiveDate>,
}

impl Objective {
    /// Folds a stream's events (from its first) into an objective.
    ///
    /// # Errors
    /// When the first event does not define an objective, or any event cannot be
    /// folded.
    pub fn from_events<'a>(
        events: impl IntoIterator<Item = &'a RecordedEvent>,
    ) -> Result<Option<Self>, ProjectionError> {
        let mut objective: Option<Objective> = None;
        for event in events {
            let decoded = decode(event)?;
            let event = event.envelope();
            match objective.as_mut() {
                None => objective = Some(Objective::define(&event, decoded)?),
                Some(o) => o.apply(&event, &decoded)?,
            }
        }
        Ok(objective)
    }

    /// Starts an objective from its `objective_defined` event.
    ///
    /// # Errors
    /// When the event is not a definition.
    pub fn define(event: &EventRef<'_>, decoded: ObjectiveEvent) -> Result<Self, ProjectionError> {
        let ObjectiveEvent::ObjectiveDefined {
            objective: spec,
            revision,
        } = decoded
        else {
            return Err(impossible(
                event,
                "the stream does not start with objective_defined",
            ));
        };
        let added_from = revision.as_ref().map(|r| r.in_force_from);
        let ObjectiveSpec {
            year,
            unit,
            letter,
            manager,
            title,
            strategic_purpose,
            directives,
            phases,
            final_deadline,
            expected_result,
            achieved_when,
            not_achieved_when,
            indicators,
            constraints,
            human_resources,
            financial_resources,
        } = *spec;
        let unit = name(&unit);
        let letter = name(&letter);
        Ok(Objective {
            key: name(&objective_key(year, &unit, &letter)),
            year,
            unit,
            letter,
            texts: Box::new(Texts {
                strategic_purpose: strategic_purpose.into(),
                directives: directives.into(),
                expected_result: expected_result.into(),
                achieved_when: achieved_when.into(),
                not_achieved_when: not_achieved_when.into(),
                constraints: constraints.into(),
                human_resources: human_resources.into(),
                financial_resources: financial_resources.into(),
            }),
            phases: phases.into_iter().map(|p| Phase::new(p, None)).collect(),
            final_deadline: Timeline::new(final_deadline),
            manager: Timeline::new(name(&manager)),
            title: Timeline::new(title.into()),
            indicators: indicators
                .into_iter()
                .map(|spec| Indicator::new(spec, None))
                .collect(),
            added_by: revision.map(Box::new),
            version: event.version,
            last_seq: event.seq,
            withdrawn: None,
            validations: Vec::new(),
            last_revision_seq: None,
            last_revision_date: added_from,
        })
    }

    /// Folds one more event of this objective's stream.
    ///
    /// # Errors
    /// When the event names a phase or indicator the objective does not have, or
    /// defines it again.
    pub fn apply(
        &mut self,
        event: &EventRef<'_>,
        decoded: &ObjectiveEvent,
    ) -> Result<(), ProjectionError> {
        let seq = event.seq;
        // Anything recorded about the objective but a validation makes the
        // validations before it stale.
        if !matches!(decoded, ObjectiveEvent::ValidationRecorded { .. }) {
            let on = event.recorded_on();
            for v in self
                .validations
                .iter_mut()
                .filter(|v| v.stale_from.is_none())
            {
                v.stale_from = Some(on);
            }
        }
        match decoded {
            ObjectiveEvent::ObjectiveDefined { .. } => {
                return Err(impossible(event, "objective defined twice"));
            }
            ObjectiveEvent::PhaseStarted {
                phase,
                on,
                note,
                backfill,
            } => {
                let recorded = Recorded::of(event);
                let phase = self.phase_mut(event, *phase)?;
                phase.started = phase.push_note(NewNote {
                    kind: NoteKind::Start,
                    on: Some(*on),
                    text: note.as_deref(),
                    evidence: &[],
                    backfill: backfill.as_deref(),
                    actor_id: actor_id_of(recorded.actor),
                    recorded,
                });
            }
            ObjectiveEvent::PhaseCompleted {
                phase,
                on,
                note,
                evidence,
                backfill,
                actor_id,
            } => {
                let recorded = Recorded::of(event);
                let phase = self.phase_mut(event, *phase)?;
                phase.completed = phase.push_note(NewNote {
                    kind: NoteKind::Completion,
                    on: Some(*on),
                    text: note.as_deref(),
                    evidence,
                    backfill: backfill.as_deref(),
                    actor_id: actor_id
                        .as_deref()
                        .map_or_else(|| actor_id_of(recorded.actor), name),
                    recorded,
                });
            }
            ObjectiveEvent::PhaseCompletionRetracted {
                phase,
                completed_on,
                reason,
                backfill,
            } => {
                let recorded = Recorded::of(event);
                let phase = self.phase_mut(event, *phase)?;
                phase.push_note(NewNote {
                    kind: NoteKind::Retraction,
                    on: None,
                    text: Some(reason),
                    evidence: &[],
                    backfill: backfill.as_deref(),
                    actor_id: actor_id_of(recorded.actor),
                    recorded,
                });
                phase.completed = None;
                phase.reopened_from = Some(
                    phase
                        .reopened_from
                        .map_or(*completed_on, |d| d.min(*completed_on)),
                );
            }
            ObjectiveEvent::DeadlineRevised {
                phase,
                to,
                revision,
                ..
            } => {
                let from = revision.in_force_from;
                match phase {
                    Some(n) => self.phase_mut(event, *n)?.deadline.change(from, *to, seq),
                    None => self.final_deadline.change(from, *to, seq),
                }
                self.revised(revision, seq);
            }
            ObjectiveEvent::WeightsRevised { to, revision, .. } => {
                for (n, weight) in to {
                    self.phase_mut(event, *n)?
                        .weight
                        .change(revision.in_force_from, *weight, seq);
                }
                self.revised(revision, seq);
            }
            ObjectiveEvent::PhaseAdded { phase, revision } => {
                if self.phases.iter().any(|p| p.number == phase.number) {
                    return Err(impossible(
                        event,
                        &format!("phase {} added twice", phase.number),
                    ));
                }
                self.phases
                    .push(Phase::new(phase.clone(), Some(revision.in_force_from)));
                self.phases.sort_by_key(|p| p.number);
                self.revised(revision, seq);
            }
            ObjectiveEvent::PhaseWithdrawn { phase, revision } => {
                self.phase_mut(event, *phase)?.withdrawn_from = Some(revision.in_force_from);
                self.revised(revision, seq);
            }
            ObjectiveEvent::ObjectiveWithdrawn { revision } => {
                self.revised(revision, seq);
                self.withdrawn = Some(Box::new(revision.clone()));
            }
            ObjectiveEvent::IndicatorMeasured {
                indicator,
                on,
                value_hundredths,
                numerator,
                denominator,
                text,
                note,
                backfill,
            } => {
                let value = value_hundredths.or(match (*numerator, *denominator) {
                    (Some(n), Some(d)) => Hundredths::percent_of(n, d),
                    _ => None,
                });
                let target = self.indicator_mut(event, indicator)?;
                let measurement = || Measurement {
                    on: *on,
                    value,
                    numerator: *numerator,
                    denominator: *denominator,
                    text: text.as_deref().map(Into::into),
                    note: note.as_deref().map(Into::into),
                    backfill: backfill.clone(),
                    recorded: Recorded::of(event),
                };
                // A clone of a later state's prefix (time travel's checkpoints)
                // takes the measurement this event built there.
                let followed = target.measurements.follow(|m| {
                    debug_assert!(m.recorded.seq != seq || *m == measurement());
                    m.recorded.seq == seq
                });
                if !followed {
                    target.measurements.push(measurement());
                }
            }
            ObjectiveEvent::ValidationRecorded {
                stage,
                outcome,
                unverified_phases,
                neutralised_phases,
                note,
                reference,
            } => push_exact(
                &mut self.validations,
                Validation {
                    stage: *stage,
                    outcome: *outcome,
                    unverified_phases: unverified_phases.clone(),
                    neutralised_phases: neutralised_phases.clone(),
                    note: note.clone(),
                    reference: reference.clone(),
                    stale_from: None,
                    recorded: Recorded::of(event),
                },
            ),
            ObjectiveEvent::ManagerChanged { to, revision, .. } => {
                self.manager.change(revision.in_force_from, name(to), seq);
                self.revised(revision, seq);
            }
            ObjectiveEvent::TitleChanged { to, revision, .. } => {
                self.title
                    .change(revision.in_force_from, to.as_str().into(), seq);
                self.revised(revision, seq);
            }
            ObjectiveEvent::PhaseDescriptionChanged {
                phase,
                to,
                revision,
                ..
            } => {
                self.phase_mut(event, *phase)?.description.change(
                    revision.in_force_from,
                    to.as_str().into(),
                    seq,
                );
                self.revised(revision, seq);
            }
            ObjectiveEvent::IndicatorTargetChanged {
                indicator,
                to,
                revision,
                ..
            } => {
                self.indicator_mut(event, indicator)?.target.change(
                    revision.in_force_from,
                    *to,
                    seq,
                );
                self.revised(revision, seq);
            }
            ObjectiveEvent::IndicatorAdded {
                indicator,
                revision,
            } => {
                if self.indicators.iter().any(|i| i.id == indicator.id) {
                    return Err(impossible(
                        event,
                        &format!("indicator {} added twice", indicator.id),
                    ));
                }
                self.indicators.push(Indicator::new(
                    indicator.clone(),
                    Some(revision.in_force_from),
                ));
                self.revised(revision, seq);
            }
            ObjectiveEvent::IndicatorWithdrawn {
                indicator,
                revision,
            } => {
                self.indicator_mut(event, indicator)?.withdrawn_from = Some(revision.in_force_from);
                self.revised(revision, seq);
            }
        }
        self.version = event.version;
        self.last_seq = seq;
        Ok(())
    }

    /// Makes room in the lists that `events` will grow (each indicator's
    /// measurements, the validations), so that folding them reallocates each
    /// list once. A fold keeps little spare room in its lists
    /// (`push_exact`, `Measurements::push`), nor does a clone: time travel
    /// folds the events a cached stream grew by onto a clone of its last
    /// state, which would otherwise reallocate its lists as they grow. (A list
    /// a clone shares is copied at its first push, with the room it had.)
    pub fn reserve_for<'a>(&mut self, events: impl IntoIterator<Item = &'a ObjectiveEvent>) {
        let mut measurements = vec![0; self.indicators.len()];
        let mut validations = 0;
        for event in events {
            match event {
                ObjectiveEvent::IndicatorMeasured { indicator, .. } => {
                    if let Some(i) = self
                        .indicators
                        .iter()
                        .position(|i| i.id == indicator.as_str())
                    {
                        measurements[i] += 1;
                    }
                }
                ObjectiveEvent::ValidationRecorded { .. } => validations += 1,
                _ => {}
            }
        }
        for (indicator, more) in self.indicators.iter_mut().zip(measurements) {
            indicator.measurements.reserve_exact(more);
        }
        self.validations.reserve_exact(validations);
    }

    fn revised(&mut self, revision: &RevisionRef, seq: u64) {
        self.last_revision_seq = Some(seq);
        self.last_revision_date = Some(
            self.last_revision_date
                .map_or(revision.in_force_from, |d| d.max(revision.in_force_from)),
        );
    }

    fn indicator_mut(
        &mut self,
        event: &EventRef<'_>,
        id: &str,
    ) -> Result<&mut Indicator, ProjectionError> {
        self.indicators
            .iter_mut()
            .find(|i| i.id == id)
            .ok_or_else(|| impossible(event, &format!("unknown indicator {id}")))
    }

    fn phase_mut(
        &mut self,
        event: &EventRef<'_>,
        number: u32,
    ) -> Result<&mut Phase, ProjectionError> {
        self.phases
            .iter_mut()
            .find(|p| p.number == number)
            .ok_or_else(|| impossible(event, &format!("unknown phase {number}")))
    }

    /// The definition as first recorded, phases and indicators included (rebuilt
    /// from the folded state, which keeps their original values).
    pub fn definition(&self) -> ObjectiveSpec {
        ObjectiveSpec {
            phases: self
                .phases
                .iter()
                .filter(|p| p.added_from.is_none())
                .map(|p| PhaseSpec {
                    number: p.number,
                    description: p.description.original.to_string(),
                    weight_hundredths: p.weight.original,
                    involved: p.involved.iter().map(Name::to_string).collect(),
                    deadline: p.deadline.original,
                })
                .collect(),
            indicators: self
                .indicators
                .iter()
                .filter(|i| i.added_from.is_none())
                .map(Indicator::spec)
                .collect(),
            ..self.spec()
        }
    }

    /// `{year}-{unit}-{letter}`.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The definition as first recorded, without its phases and indicators (see
    /// [`Objective::definition`] for the whole of it), rebuilt from the folded
    /// state.
    pub fn spec(&self) -> ObjectiveSpec {
        let t = &self.texts;
        ObjectiveSpec {
            year: self.year,
            unit: self.unit.to_string(),
            letter: self.letter.to_string(),
            manager: self.manager.original.to_string(),
            title: self.title.original.to_string(),
            strategic_purpose: t.strategic_purpose.to_string(),
            directives: t.directives.to_string(),
            phases: Vec::new(),
            final_deadline: self.final_deadline.original,
            expected_result: t.expected_result.to_string(),
            achieved_when: t.achieved_when.to_string(),
            not_achieved_when: t.not_achieved_when.to_string(),
            indicators: Vec::new(),
            constraints: t.constraints.to_string(),
            human_resources: t.human_resources.to_string(),
            financial_resources: t.financial_resources.to_string(),
        }
    }

    /// The texts of the definition that no score needs.
    pub fn texts(&self) -> &Texts {
        &self.texts
    }

    /// The letter, unique per unit and year.
    pub fn letter(&self) -> &str {
        &self.letter
    }

    /// The manager as first defined.
    pub fn original_manager(&self) -> &str {
        &self.manager.original
    }

    /// The title as first defined.
    pub fn original_title(&self) -> &str {
        &self.title.original
    }

    /// The revision that added the objective, if it was not in the plan.
    pub fn added_by(&self) -> Option<&RevisionRef> {
        self.added_by.as_deref()
    }

    /// About the heap bytes a copy of the objective keeps apart from the
    /// original, once both have moved on: the objective itself, and its boxes
    /// and vectors, as [`Clone`] allocates them; its phases' notes, which a
    /// clone shares until the original's next note on the phase; not its
    /// texts and names, which clones share for good, nor its measurements,
    /// which clones share ([`Objective::measurement_bytes`]). What the
    /// time-travel cache counts for each folded state it keeps.
    pub fn clone_bytes(&self) -> usize {
        use std::mem::size_of;
        let revision = |r: &Option<Box<RevisionRef>>| {
            r.as_ref().map_or(0, |r| {
                size_of::<RevisionRef>() + r.act.len() + r.reason.len()
            })
        };
        let phases: usize = self
            .phases
            .iter()
            .map(|p| {
                p.involved.len() * size_of::<Name>()
                    + p.description.clone_bytes()
                    + p.weight.clone_bytes()
                    + p.deadline.clone_bytes()
                    + p.notes.heap_bytes()
            })
            .sum();
        let indicators: usize = self.indicators.iter().map(|i| i.target.clone_bytes()).sum();
        let validations: usize = self
            .validations
            .iter()
            .map(|v| {
                size_of::<Validation>()
                    + (v.unverified_phases.len() + v.neutralised_phases.len()) * size_of::<u32>()
                    + v.note.as_ref().map_or(0, String::len)
                    + v.reference.as_ref().map_or(0, String::len)
            })
            .sum();
        size_of::<Objective>()
            + size_of::<Texts>()
            + revision(&self.added_by)
            + revision(&self.withdrawn)
            + self.final_deadline.clone_bytes()
            + self.manager.clone_bytes()
            + self.title.clone_bytes()
            + self.phases.len() * size_of::<Phase>()
            + phases
            + self.indicators.len() * size_of::<Indicator>()
            + indicators
            + validations
    }

    /// The heap bytes of the lists of measurements that its clones share
    /// ([`Measurements::shared_bytes`]).
    pub fn measurement_bytes(&self) -> usize {
        self.indicators
            .iter()
            .map(|i| i.measurements.shared_bytes())
            .sum()
    }

    /// Makes each indicator's measurements share the list of the same
    /// indicator in `later`, a later state of the same objective
    /// ([`Measurements::share`]).
    pub fn share_measurements(&mut self, later: &Objective) {
        for indicator in &mut self.indicators {
            if let Some(l) = later.indicators.iter().find(|l| l.id == indicator.id) {
                indicator.measurements.share(&l.measurements);
            }
        }
    }

    /// The stream version (the ETag).
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The seq of the last event folded.
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// The responsible manager as the latest revision left it, whatever its date.
    pub fn manager_at_latest(&self) -> &str {
        self.manager.latest()
    }

    /// The title as the latest revision left it, whatever its date.
    pub fn title_at_latest(&self) -> &str {
        self.title.latest()
    }

    /// The phases in number order, added and withdrawn ones included.
    pub fn phases(&self) -> &[Phase] {
        &self.phases
    }

    /// *Scadenza finale* over time.
    pub fn final_deadline(&self) -> &Timeline<NaiveDate> {
        &self.final_deadline
    }

    /// The revision that withdrew the objective, if one did.
    pub fn withdrawn(&self) -> Option<&RevisionRef> {
        self.withdrawn.as_deref()
    }

    /// The indicators and their measurements.
    pub fn indicators(&self) -> &[Indicator] {
        &self.indicators
    }

    /// The validations, oldest first.
    pub fn validations(&self) -> &[Validation] {
        &self.validations
    }

    /// The seq of the last revision that changed the objective.
    pub fn last_revision_seq(&self) -> Option<u64> {
        self.last_revision_seq
    }

    /// The latest act date of a revision that changed it.
    pub fn last_revision_date(&self) -> Option<NaiveDate> {
        self.last_revision_date
    }

    /// The phase numbered `number`.
    pub fn phase(&self, number: u32) -> Option<&Phase> {
        self.phases.iter().find(|p| p.number == number)
    }

    /// The plan year.
    pub fn year(&self) -> i32 {
        self.year
    }

    /// The owning unit.
    pub fn unit(&self) -> &str {
        &self.unit
    }

    /// Whether the objective counts at `at`: it exists by then and is not withdrawn.
    pub fn active_at(&self, at: NaiveDate) -> bool {
        self.added_by.as_ref().is_none_or(|r| r.in_force_from <= at)
            && self.withdrawn.as_ref().is_none_or(|r| r.in_force_from > at)
    }

    /// The latest final validation recorded on or before `at`. A validation has no
    /// date but its record date (Italian calendar): that is its valid time.
    pub fn final_validation_at(&self, at: NaiveDate) -> Option<&Validation> {
        self.validations.iter().rev().find(|v| {
            v.stage == ValidationStage::Final
                && traguardo_events::clock::local_date(&v.recorded.recorded_at) <= at
        })
    }

    /// Whether the final validation in force at `at` went stale by then: something
    /// about the objective was recorded after it (DESIGN.md §4).
    pub fn validation_stale_at(&self, at: NaiveDate) -> bool {
        self.final_validation_at(at)
            .and_then(|v| v.stale_from)
            .is_some_and(|from| from <= at)
    }

    /// Whether the objective has a current final validation at `at`: one exists,
    /// and it is not stale.
    pub fn validated_at(&self, at: NaiveDate) -> bool {
        self.final_validation_at(at).is_some() && !self.validation_stale_at(at)
    }

    /// The score at `at` (DESIGN.md §4).
    pub fn score(&self, at: NaiveDate) -> Score {
        let final_deadline = *self.final_deadline.at(at);
        let mut completed = Hundredths::ZERO;
        let mut on_time = Hundredths::ZERO;
        let mut any_failed = false;
        let mut all_on_time = true;
        let active: Vec<&Phase> = self.phases.iter().filter(|p| p.active_at(at)).collect();
        for phase in &active {
            let weight = *phase.weight.at(at);
            let status = phase.status_at(at);
            if status.is_completed() {
                completed = completed + weight;
            }
            match status {
                PhaseStatus::CompletedOnTime => on_time = on_time + weight,
                PhaseStatus::CompletedLate | PhaseStatus::Overdue => any_failed = true,
                _ => all_on_time = false,
            }
            if let Some(done) = phase.completed().filter(|d| d.on <= at) {
                if done.on > final_deadline {
                    any_failed = true;
                }
            }
        }
        let outcome = if any_failed {
            Outcome::NotAchieved
        } else if all_on_time && !active.is_empty() {
            Outcome::Achieved
        } else {
            Outcome::InProgress
        };
        let validated = self.final_validation_at(at).map(|v| match v.outcome {
            ValidationOutcome::Rejected => Hundredths::ZERO,
            ValidationOutcome::Approved => {
                let mut total = Hundredths::ZERO;
                let mut verified_on_time = Hundredths::ZERO;
                for phase in active
                    .iter()
                    .filter(|p| !v.neutralised_phases.contains(&p.number))
                {
                    let weight = *phase.weight.at(at);
                    total = total + weight;
                    if phase.status_at(at) == PhaseStatus::CompletedOnTime
                        && !v.unverified_phases.contains(&phase.number)
                    {
                        verified_on_time = verified_on_time + weight;
                    }
                }
                verified_on_time.scale(Hundredths::HUNDRED.0, total.0)
            }
        });
        Score {
            at,
            completed_pct: completed,
            on_time_pct: on_time,
            outcome,
            validated_pct: validated,
            validated_outcome: validated.map(|pct| {
                if pct == Hundredths::HUNDRED {
                    Outcome::Achieved
                } else {
                    Outcome::NotAchieved
                }
            }),
            validation_stale: self.validation_stale_at(at),
        }
    }

    /// Whether the objective is shown as withdrawn at `at`: a revision withdrew
    /// it, in force by then.
    pub fn withdrawn_at(&self, at: NaiveDate) -> bool {
        !self.active_at(at) && self.withdrawn.is_some()
    }

    /// The objective as answered by the API, evaluated at `at`. The API writes
    /// the same JSON without building it ([`Objective::answer`]).
    pub fn evaluate(&self, at: NaiveDate) -> ObjectiveView {
        ObjectiveView {
            key: self.key.to_string(),
            year: self.year,
            unit: self.unit.to_string(),
            letter: self.letter.to_string(),
            title: self.title.at(at).to_string(),
            manager: self.manager.at(at).to_string(),
            version: self.version,
            last_seq: self.last_seq,
            withdrawn: self.withdrawn_at(at),
            final_deadline: *self.final_deadline.at(at),
            original_final_deadline: self.final_deadline.original,
            phases: self
                .phases
                .iter()
                .filter(|p| p.exists_at(at))
                .map(|p| {
                    let completed = p.completed_by(at);
                    PhaseView {
                        number: p.number,
                        description: p.description.at(at).to_string(),
                        weight: Pct(*p.weight.at(at)),
                        original_weight: Pct(p.weight.original),
                        involved: p.involved.iter().map(Name::to_string).collect(),
                        deadline: *p.deadline.at(at),
                        original_deadline: p.deadline.original,
                        status: p.status_at(at),
                        started_on: p.started().map(|m| m.on).filter(|on| *on <= at),
                        completed_on: completed.map(|m| m.on),
                        completed_by: completed.map(|m| m.recorded.actor.to_string()),
                        evidence: completed.map(|m| texts(m.evidence)).unwrap_or_default(),
                        withdrawn: !p.active_at(at),
                        notes: p
                            .notes
                            .iter()
                            .filter(|n| n.shown_at(at))
                            .map(NoteView::from)
                            .collect(),
                    }
                })
                .collect(),
            indicators: self
                .indicators
                .iter()
                .filter(|i| i.exists_at(at))
                .map(|i| IndicatorView {
                    id: i.id.to_string(),
                    description: i.description.to_string(),
                    kind: i.kind,
                    target: i.target.at(at).map(Pct),
                    latest: i.latest_at(at).map(MeasurementView::from),
                    met: i.met_at(at),
                    history: i
                        .measurements
                        .iter()
                        .filter(|m| m.on <= at)
                        .map(MeasurementView::from)
                        .collect(),
                    withdrawn: i.withdrawn_from.is_some_and(|from| from <= at),
                })
                .collect(),
            validations: self
                .validations
                .iter()
                .map(|v| ValidationView {
                    stage: v.stage,
                    outcome: v.outcome,
                    actor: v.recorded.actor.to_string(),
                    recorded_at: v.recorded.recorded_at,
                    unverified_phases: v.unverified_phases.clone(),
                    neutralised_phases: v.neutralised_phases.clone(),
                    note: v.note.clone(),
                    reference: v.reference.clone(),
                })
                .collect(),
            validation_stale: self.validation_stale_at(at),
            score: self.score(at).into(),
        }
    }
}

/// The score of an objective at a date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Score {
    /// Reference date.
    pub at: NaiveDate,
    /// Sum of weights of completed phases.
    pub completed_pct: Hundredths,
    /// Sum of weights of phases completed on time (*grado di raggiungimento*).
    pub on_time_pct: Hundredths,
    /// Achieved, not achieved, in progress.
    pub outcome: Outcome,
    /// `on_time_pct` as verified by the final validation, if there is one.
    pub validated_pct: Option<Hundredths>,
    /// Achieved when `validated_pct` is 100, else not achieved; none before a
    /// final validation.
    pub validated_outcome: Option<Outcome>,
    /// Whether that final validation went stale (*validazione da ripetere*).
    pub validation_stale: bool,
}

/// A percentage in an answer: a JSON number rounded to two decimals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pct(pub Hundredths);

impl Serialize for Pct {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0 .0 % 100 == 0 {
            s.serialize_i64(self.0 .0 / 100)
        } else {
            s.serialize_f64(self.0.as_f64())
        }
    }
}

impl utoipa::PartialSchema for Pct {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::Number)
            .description(Some("A percentage, rounded to two decimals"))
            .into()
    }
}

impl utoipa::ToSchema for Pct {}

/// [`Score`] as answered.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ScoreView {
    /// Reference date.
    #[serde(with = "crate::name::days")]
    pub at: NaiveDate,
    /// Completed weight.
    pub completed_pct: Pct,
    /// On-time weight.
    pub on_time_pct: Pct,
    /// Outcome.
    pub outcome: Outcome,
    /// Verified by the final validation; null before it.
    pub validated_pct: Option<Pct>,
    /// `achieved` when the validated result is 100, else `not_achieved`; null
    /// before a final validation.
    pub validated_outcome: Option<Outcome>,
}

impl From<Score> for ScoreView {
    fn from(s: Score) -> Self {
        ScoreView {
            at: s.at,
            completed_pct: Pct(s.completed_pct),
            on_time_pct: Pct(s.on_time_pct),
            outcome: s.outcome,
            validated_pct: s.validated_pct.map(Pct),
            validated_outcome: s.validated_outcome,
        }
    }
}

/// The objective state of DESIGN.md §5.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ObjectiveView {
    /// Key.
    pub key: String,
    /// Year.
    pub year: i32,
    /// Unit code.
    pub unit: String,
    /// Letter.
    pub letter: String,
    /// Title.
    pub title: String,
    /// Manager.
    pub manager: String,
    /// Stream version.
    pub version: u64,
    /// Seq of the last event folded.
    pub last_seq: u64,
    /// Withdrawn at the reference date.
    pub withdrawn: bool,
    /// Final deadline in force.
    #[serde(with = "crate::name::days")]
    pub final_deadline: NaiveDate,
    /// Final deadline as planned.
    #[serde(with = "crate::name::days")]
    pub original_final_deadline: NaiveDate,
    /// Phases that exist at the reference date.
    pub phases: Vec<PhaseView>,
    /// Indicators with their latest measurement.
    pub indicators: Vec<IndicatorView>,
    /// Validations.
    pub validations: Vec<ValidationView>,
    /// Whether the latest final validation went stale: something was recorded
    /// after it, and it must be repeated (*validazione da ripetere*).
    pub validation_stale: bool,
    /// Score.
    pub score: ScoreView,
}

/// A phase as answered.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct PhaseView {
    /// Number.
    pub number: u32,
    /// Description.
    pub description: String,
    /// Weight in force.
    pub weight: Pct,
    /// Weight as planned.
    pub original_weight: Pct,
    /// Involved units or bodies.
    pub involved: Vec<String>,
    /// Deadline in force.
    #[serde(with = "crate::name::days")]
    pub deadline: NaiveDate,
    /// Deadline as planned.
    #[serde(with = "crate::name::days")]
    pub original_deadline: NaiveDate,
    /// Status.
    pub status: PhaseStatus,
    /// Start date.
    #[serde(with = "crate::name::days::opt")]
    pub started_on: Option<NaiveDate>,
    /// Completion date.
    #[serde(with = "crate::name::days::opt")]
    pub completed_on: Option<NaiveDate>,
    /// Who recorded the completion.
    pub completed_by: Option<String>,
    /// Evidence of the completion.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<String>,
    /// Withdrawn (does not count).
    pub withdrawn: bool,
    /// Every start, completion and retraction with its note, evidence, who and
    /// when, oldest first.
    pub notes: Vec<NoteView>,
}

/// A note of a phase as answered.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct NoteView {
    /// `start`, `completion` or `retraction`.
    pub kind: NoteKind,
    /// The valid date of the fact (none for a retraction).
    #[serde(with = "crate::name::days::opt")]
    pub on: Option<NaiveDate>,
    /// The note, or the reason of a retraction.
    pub text: Option<String>,
    /// Evidence references.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<String>,
    /// Who recorded it.
    pub actor: String,
    /// When.
    #[serde(with = "traguardo_events::envelope::timestamp")]
    pub recorded_at: DateTime<Utc>,
    /// Loaded after the fact (*caricamento storico*), with its act and reason.
    pub backfill: Option<Backfill>,
}

impl From<Note<'_>> for NoteView {
    fn from(n: Note<'_>) -> Self {
        NoteView {
            kind: n.kind,
            on: n.on,
            text: n.text.map(str::to_string),
            evidence: texts(n.evidence),
            actor: n.recorded.actor.to_string(),
            recorded_at: n.recorded.recorded_at,
            backfill: n.backfill.as_ref().map(BackfillRef::to_backfill),
        }
    }
}

/// An indicator as answered.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct IndicatorView {
    /// Id.
    pub id: String,
    /// Description.
    pub description: String,
    /// Kind.
    pub kind: IndicatorKind,
    /// Target in force at the reference date.
    pub target: Option<Pct>,
    /// Latest measurement on or before the reference date.
    pub latest: Option<MeasurementView>,
    /// Whether the latest measurement meets the target; null for a qualitative
    /// indicator or one without a numeric target.
    pub met: Option<bool>,
    /// Every measurement with a date on or before the reference date, in record
    /// order.
    pub history: Vec<MeasurementView>,
    /// Withdrawn by a revision: no longer measured.
    pub withdrawn: bool,
}

/// A measurement as answered.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct MeasurementView {
    /// Date.
    #[serde(with = "crate::name::days")]
    pub on: NaiveDate,
    /// Value.
    pub value: Option<Pct>,
    /// n° a.
    pub numerator: Option<u64>,
    /// n° b.
    pub denominator: Option<u64>,
    /// The finding, for a qualitative indicator.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Note.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Who recorded it.
    pub actor: String,
    /// When.
    #[serde(with = "traguardo_events::envelope::timestamp")]
    pub recorded_at: DateTime<Utc>,
    /// Loaded after the fact (*caricamento storico*).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backfill: Option<Backfill>,
}

impl From<&Measurement> for MeasurementView {
    fn from(m: &Measurement) -> Self {
        MeasurementView {
            on: m.on,
            value: m.value.map(Pct),
            numerator: m.numerator,
            denominator: m.denominator,
            text: m.text.as_deref().map(str::to_string),
            note: m.note.as_deref().map(str::to_string),
            actor: m.recorded.actor.to_string(),
            recorded_at: m.recorded.recorded_at,
            backfill: m.backfill.as_deref().cloned(),
        }
    }
}

/// A validation as answered.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ValidationView {
    /// Stage.
    pub stage: ValidationStage,
    /// Outcome.
    pub outcome: ValidationOutcome,
    /// Who.
    pub actor: String,
    /// When.
    #[serde(with = "traguardo_events::envelope::timestamp")]
    pub recorded_at: DateTime<Utc>,
    /// Unverified phases.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unverified_phases: Vec<u32>,
    /// Neutralised phases.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub neutralised_phases: Vec<u32>,
    /// Note.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The minutes, e.g. "Verbale n. 3 del 15/03/2023".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
}

/// Pushes without the spare room a `Vec` keeps for growth (four items at its
/// first push) while the list is short, as [`Measurements::push`] does
/// ([`crate::measurements::room_after`]).
fn push_exact<T>(items: &mut Vec<T>, item: T) {
    if items.len() == items.capacity() {
        items.reserve_exact(crate::measurements::room_after(items.len()));
    }
    items.push(item);
}

/// Evidence as answered.
fn texts(evidence: Evidence<'_>) -> Vec<String> {
    evidence.iter().map(str::to_string).collect()
}

/// Decodes an objective stream event.
///
/// # Errors
/// [`ProjectionError::Decode`] when it is not an objective event.
pub fn decode(event: &RecordedEvent) -> Result<ObjectiveEvent, ProjectionError> {
    crate::error::decode(event)
}

/// Decodes an objective event's data from its stored JSON text (the envelope's
/// `data` is not read): no `serde_json::Value` in between.
///
/// # Errors
/// When the type is not an objective event's or the data does not fit it.
pub fn decode_text(event: &EventRef<'_>, data: &str) -> Result<ObjectiveEvent, ProjectionError> {
    event
        .decode_text(data)
        .map_err(|e| ProjectionError::Decode {
            seq: event.seq,
            message: e.to_string(),
        })
}

fn impossible(event: &EventRef<'_>, message: &str) -> ProjectionError {
    ProjectionError::Impossible {
        seq: event.seq,
        message: message.to_string(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use traguardo_events::model::IndicatorKind;

    fn date(m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2022, m, d).unwrap()
    }

    /// An envelope for `event` on the stream of objective 2022-2250-A, its data
    /// as the log would hold it (the `type` beside, not inside).
    pub(crate) fn envelope(
        seq: u64,
        version: u64,
        actor: &str,
        event: &ObjectiveEvent,
    ) -> RecordedEvent {
        let mut data = serde_json::to_value(event).unwrap();
        let event_type = data
            .as_object_mut()
            .unwrap()
            .remove("type")
            .unwrap()
            .as_str()
            .unwrap()
            .to_string();
        RecordedEvent {
            seq,
            id: uuid::Uuid::nil(),
            stream: "objective/2022-2250-A".into(),
            version,
            event_type,
            schema: 1,
            data,
            actor: actor.into(),
            role: "manager".into(),
            recorded_at: date(6, 1).and_hms_opt(9, 0, 0).unwrap().and_utc()
                + chrono::Duration::seconds(seq as i64),
            correlation: None,
            prev_hash: "0".repeat(64),
            hash: "0".repeat(64),
        }
    }

    /// The events of a small history: a definition, a start with a note, a
    /// completion with note and evidence loaded as *caricamento storico*, a
    /// measurement, a revised deadline.
    pub(crate) fn history() -> Vec<RecordedEvent> {
        let spec = ObjectiveSpec {
            year: 2022,
            unit: "2250".into(),
            letter: "A".into(),
            manager: "Dott. Stefano Specchia".into(),
            title: "Rimborsi entro 90 giorni".into(),
            strategic_purpose: "Finalità".into(),
            directives: "Direttive".into(),
            phases: (1..=2)
                .map(|n| PhaseSpec {
                    number: n,
                    description: format!("Fase {n}"),
                    weight_hundredths: Hundredths(5_000),
                    involved: vec!["2269".into(), "AMAG AMBIENTE SPA".into()],
                    deadline: date(5, 30),
                })
                .collect(),
            final_deadline: date(12, 31),
            expected_result: "Risultato".into(),
            achieved_when: "Sempre".into(),
            not_achieved_when: "Mai".into(),
            indicators: vec![IndicatorSpec {
                id: "rimborsi".into(),
                description: "Rimborsi nei termini".into(),
                kind: IndicatorKind::Ratio,
                target_hundredths: Some(Hundredths::HUNDRED),
            }],
            constraints: String::new(),
            human_resources: "Ufficio tributi".into(),
            financial_resources: String::new(),
        };
        let events = [
            ObjectiveEvent::ObjectiveDefined {
                objective: Box::new(spec),
                revision: None,
            },
            ObjectiveEvent::PhaseStarted {
                phase: 1,
                on: date(3, 1),
                note: Some("Costituito il gruppo di lavoro".into()),
                backfill: None,
            },
            ObjectiveEvent::PhaseCompleted {
                phase: 1,
                on: date(5, 28),
                note: Some("Relazione trasmessa".into()),
                evidence: vec!["Prot. n. 12345 del 28/05/2022".into()],
                backfill: Some(Box::new(Backfill {
                    act: "Determinazione n. 12".into(),
                    reason: "Adozione a metà anno".into(),
                    on_behalf_of: None,
                })),
                actor_id: Some("specchia".into()),
            },
            ObjectiveEvent::IndicatorMeasured {
                indicator: "rimborsi".into(),
                on: date(5, 31),
                value_hundredths: None,
                numerator: Some(187),
                denominator: Some(200),
                text: None,
                note: Some("Dati del gestionale".into()),
                backfill: None,
            },
            ObjectiveEvent::DeadlineRevised {
                phase: Some(2),
                from: date(5, 30),
                to: date(9, 30),
                revision: RevisionRef {
                    id: uuid::Uuid::nil(),
                    act: "D.G.C. n. 182 del 28/07/2022".into(),
                    in_force_from: date(7, 28),
                    reason: "Rimodulazione".into(),
                },
            },
        ];
        events
            .iter()
            .enumerate()
            .map(|(i, e)| envelope(i as u64 + 1, i as u64 + 1, "Dott. Stefano Specchia", e))
            .collect()
    }

    fn folded() -> Objective {
        Objective::from_events(&history()).unwrap().unwrap()
    }

    #[test]
    fn a_note_is_kept_once_and_shown_as_the_fact_and_in_the_history() {
        let o = folded();
        let phase = o.phase(1).unwrap();
        assert_eq!(phase.notes.len(), 2);
        let started = phase.started().unwrap();
        let completed = phase.completed().unwrap();
        assert_eq!(started.on, date(3, 1));
        assert_eq!(started.note, Some("Costituito il gruppo di lavoro"));
        assert_eq!(completed.note, Some("Relazione trasmessa"));
        assert_eq!(completed.actor_id, "specchia");
        assert_eq!(started.actor_id, "dott. stefano specchia");
        assert_eq!(completed.backfill.unwrap().act, "Determinazione n. 12");
        // The fact reads the very text of its note: one copy.
        assert!(std::ptr::eq(
            completed.note.unwrap(),
            phase.notes().get(1).unwrap().text.unwrap()
        ));
        let view = o.evaluate(date(12, 31));
        let p = &view.phases[0];
        assert_eq!(p.completed_by.as_deref(), Some("Dott. Stefano Specchia"));
        assert_eq!(p.evidence, ["Prot. n. 12345 del 28/05/2022"]);
        assert_eq!(p.notes.len(), 2);
        assert_eq!(p.notes[1].text.as_deref(), Some("Relazione trasmessa"));
        assert_eq!(p.notes[1].evidence, p.evidence);
        assert!(p.notes[1].backfill.is_some());
        assert_eq!(p.involved, ["2269", "AMAG AMBIENTE SPA"]);
        assert_eq!(view.phases[1].deadline, date(9, 30));
        assert_eq!(view.phases[1].original_deadline, date(5, 30));
    }

    #[test]
    fn a_retracted_completion_is_no_fact_but_stays_in_the_history() {
        let mut events = history();
        let retraction = ObjectiveEvent::PhaseCompletionRetracted {
            phase: 1,
            completed_on: date(5, 28),
            reason: "Registrata per errore".into(),
            backfill: None,
        };
        events.push(envelope(6, 6, "Dott. Stefano Specchia", &retraction));
        let o = Objective::from_events(&events).unwrap().unwrap();
        let phase = o.phase(1).unwrap();
        assert!(phase.completed().is_none());
        assert!(phase.started().is_some());
        assert_eq!(phase.notes.len(), 3);
        assert_eq!(phase.notes().get(2).unwrap().kind, NoteKind::Retraction);
        assert_eq!(phase.status_at(date(5, 29)), PhaseStatus::InProgress);
    }

    #[test]
    fn the_definition_is_rebuilt_as_recorded() {
        let ObjectiveEvent::ObjectiveDefined { objective, .. } =
            crate::error::decode::<ObjectiveEvent>(&history()[0]).unwrap()
        else {
            unreachable!()
        };
        let o = folded();
        assert_eq!(o.definition(), *objective);
        assert_eq!(o.key(), "2022-2250-A");
        assert_eq!(o.spec().title, "Rimborsi entro 90 giorni");
    }
}
