//! The report's data (*Relazione sul grado di raggiungimento degli obiettivi*):
//! built once from the log, then rendered in any format. This is also the JSON
//! answer, so its field names and shapes are stable: English keys, ISO dates,
//! RFC 3339 UTC timestamps, percentages as numbers rounded to two decimals.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use traguardo_events::domain::ObjectiveEvent;
use traguardo_events::envelope::timestamp;
use traguardo_events::model::{Hundredths, ValidationOutcome};
use traguardo_events::store::Until;
use traguardo_events::{Head, RecordedEvent, Store, StreamRef};
use traguardo_projections::objective::{Pct, PhaseView};
use traguardo_projections::plan::{scores_of, Revision};
use traguardo_projections::{Objective, Outcome, PhaseStatus, Plan, Registry};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::commands::DomainError;
use crate::{App, AppError};

/// The end-of-year achievement report of one plan year.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Report {
    /// *Ente*: the organisation.
    pub organisation: String,
    /// Plan year.
    pub year: i32,
    /// The plan's title.
    pub title: String,
    /// Reference date (valid time): statuses and scores are as of this day.
    pub at: NaiveDate,
    /// Record-time cut: only events recorded at or before it were read; null for
    /// the whole log.
    #[serde(with = "optional_timestamp")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub as_of: Option<DateTime<Utc>>,
    /// When the report was generated (the only field that changes between two
    /// runs on the same log).
    #[serde(with = "timestamp")]
    #[schema(value_type = String, format = DateTime)]
    pub generated_at: DateTime<Utc>,
    /// The last event of the log the report was computed from (with `as_of`, the
    /// last event recorded at or before it): check it with `traguardo verify
    /// --expect SEQ:HASH`.
    pub head: Head,
    /// Units with objectives, in unit-code order.
    pub units: Vec<UnitReport>,
    /// Counts and scores of the whole plan.
    pub summary: Summary,
    /// The revisions of the year (*rimodulazioni*), oldest first.
    pub revisions: Vec<RevisionReport>,
    /// Red flags of the year, in the order the flag rules give them.
    pub flags: Vec<FlagReport>,
}

/// One unit (*Settore* / *Servizio Autonomo*) and its objectives.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct UnitReport {
    /// Unit code from the *Elenco Responsabili*, e.g. `2250`.
    pub code: String,
    /// The unit's name.
    pub name: String,
    /// The accountable manager: the unit's, else its first objective's.
    pub manager: Option<String>,
    /// The manager's title (`Dirigente`, `Responsabile in P.O.`), when known.
    pub manager_title: Option<String>,
    /// Its objectives, by letter.
    pub objectives: Vec<ObjectiveReport>,
    /// Mean `on_time_pct` of its objectives that count; null when none does.
    pub score: Option<Pct>,
}

/// One objective, evaluated at the report's date.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ObjectiveReport {
    /// `{year}-{unit}-{letter}`.
    pub key: String,
    /// The letter, unique within the unit and year.
    pub letter: String,
    /// Title.
    pub title: String,
    /// Accountable manager as the plan names them.
    pub manager: String,
    /// *Scadenza finale* in force at `at`.
    pub final_deadline: NaiveDate,
    /// *Scadenza finale* as planned.
    pub original_final_deadline: NaiveDate,
    /// Every phase that exists at `at`, withdrawn ones included.
    pub phases: Vec<PhaseReport>,
    /// Sum of the weights of completed phases.
    pub completed_pct: Pct,
    /// Sum of the weights of phases completed on time (*grado di
    /// raggiungimento*).
    pub on_time_pct: Pct,
    /// Achieved, not achieved, in progress, or withdrawn (then it does not count).
    pub outcome: Outcome,
    /// `on_time_pct` as verified by the latest final validation; null before one.
    pub validated_pct: Option<Pct>,
    /// The latest final validation recorded on or before `at`.
    pub validation: Option<ValidationReport>,
}

/// One phase (*Fase*), evaluated at the report's date.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct PhaseReport {
    /// 1..n within the objective.
    pub number: u32,
    /// What it is.
    pub description: String,
    /// *Incidenza %* in force at `at`.
    pub weight: Pct,
    /// *Incidenza %* as planned.
    pub original_weight: Pct,
    /// *Scadenza* as planned.
    pub original_deadline: NaiveDate,
    /// *Scadenza* in force at `at`.
    pub deadline: NaiveDate,
    /// Start date (valid time), if started by `at`.
    pub started_on: Option<NaiveDate>,
    /// Completion date as declared (valid time), if completed by `at`.
    pub completed_on: Option<NaiveDate>,
    /// Status at `at`.
    pub status: PhaseStatus,
    /// What the latest final validation said of this phase, if anything.
    pub validation: Option<PhaseValidation>,
}

/// How the final validation treated a phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PhaseValidation {
    /// *Sterilizzata*: left out, the other weights rescaled to 100.
    Neutralised,
    /// Declared complete but not accepted: counted as not completed.
    Unverified,
}

/// The latest final validation of an objective by the *Nucleo di Valutazione*.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ValidationReport {
    /// Approved or rejected.
    pub outcome: ValidationOutcome,
    /// Phases declared complete but not accepted.
    pub unverified_phases: Vec<u32>,
    /// Phases left out (*sterilizzazione*).
    pub neutralised_phases: Vec<u32>,
    /// The note (mandatory when anything was unverified, neutralised or rejected).
    pub note: Option<String>,
    /// Who recorded it.
    pub actor: String,
    /// When.
    #[serde(with = "timestamp")]
    #[schema(value_type = String, format = DateTime)]
    pub recorded_at: DateTime<Utc>,
}

/// Counts and scores of the whole plan.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Summary {
    /// Objectives that count at `at` (withdrawn ones do not).
    pub objectives: usize,
    /// *Raggiunti*.
    pub achieved: usize,
    /// *Non raggiunti*.
    pub not_achieved: usize,
    /// *In corso*.
    pub in_progress: usize,
    /// Withdrawn by a revision (not counted above).
    pub withdrawn: usize,
    /// Objectives with a final validation.
    pub validated: usize,
    /// The plan's score: the mean `on_time_pct` over the objectives that count.
    pub score: Pct,
    /// Each unit's score, in unit-code order (units whose objectives were all
    /// withdrawn are left out).
    pub units: Vec<UnitScoreReport>,
}

/// A unit's line in the summary.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct UnitScoreReport {
    /// Unit code.
    pub unit: String,
    /// Its name.
    pub name: String,
    /// Objectives that count.
    pub objectives: usize,
    /// Mean `on_time_pct` of those objectives.
    pub score: Pct,
}

/// A revision of the plan (*rimodulazione*), with what it changed.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct RevisionReport {
    /// Its id (the correlation of its events).
    pub id: Uuid,
    /// The act, e.g. `D.G.C. n. 182 del 28/07/2022`.
    pub act: String,
    /// The act's date, when stated.
    pub act_date: Option<NaiveDate>,
    /// The date its changes are in force from (act date, else record date).
    pub in_force_from: NaiveDate,
    /// Whether it is in force at the report's date `at`.
    pub in_force: bool,
    /// Why.
    pub reason: String,
    /// Who recorded it.
    pub actor: String,
    /// When it was recorded.
    #[serde(with = "timestamp")]
    #[schema(value_type = String, format = DateTime)]
    pub recorded_at: DateTime<Utc>,
    /// Seq of its `revision_recorded` event.
    pub seq: u64,
    /// What changed, as applied to each objective, in log order.
    pub changes: Vec<ChangeReport>,
}

/// One change a revision applied, with the value before it where there was one.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ChangeReport {
    /// A deadline moved (no `phase`: the final deadline).
    Deadline {
        /// Objective key.
        objective: String,
        /// Phase number; null for the final deadline.
        phase: Option<u32>,
        /// The deadline in force before.
        from: NaiveDate,
        /// The new deadline.
        to: NaiveDate,
    },
    /// Phase weights changed.
    Weights {
        /// Objective key.
        objective: String,
        /// Phase number → weight before.
        from: BTreeMap<u32, Pct>,
        /// Phase number → new weight.
        to: BTreeMap<u32, Pct>,
    },
    /// A phase was added.
    AddPhase {
        /// Objective key.
        objective: String,
        /// Its number.
        phase: u32,
        /// Its description.
        description: String,
        /// Its weight.
        weight: Pct,
        /// Its deadline.
        deadline: NaiveDate,
    },
    /// A phase was withdrawn.
    WithdrawPhase {
        /// Objective key.
        objective: String,
        /// Its number.
        phase: u32,
    },
    /// An objective was added.
    AddObjective {
        /// Objective key.
        objective: String,
        /// Its title.
        title: String,
    },
    /// An objective was withdrawn.
    WithdrawObjective {
        /// Objective key.
        objective: String,
    },
}

/// A red flag: something an auditor should look at.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct FlagReport {
    /// `retroactive_revision`, `late_registration`, `rescued_by_revision`,
    /// `changed_after_validation`, `retracted_after_validation` or
    /// `weights_revised_after_completion`.
    pub kind: String,
    /// Objective key.
    pub objective: String,
    /// Phase number, when the flag is about one phase.
    pub phase: Option<u32>,
    /// The seqs of the events that raised it.
    pub seqs: Vec<u64>,
    /// What it means, in words.
    pub message: String,
}

/// Builds the report of plan `year` at reference date `at`, from the whole log or,
/// with `as_of`, from the events recorded at or before it.
///
/// # Errors
/// [`AppError::NotFound`] when the year has no plan (at `as_of`, if given); a store
/// or projection error when the log cannot be read or folded.
pub fn build(
    app: &App,
    year: i32,
    at: NaiveDate,
    as_of: Option<DateTime<Utc>>,
    generated_at: DateTime<Utc>,
) -> Result<Report, AppError> {
    let store = app.store();
    // The head is read first and the events up to it, so that the head printed is
    // exactly the log the numbers come from, even while others append.
    let (head, until) = match as_of {
        None => {
            let head = store.head()?;
            let until = Until::Seq(head.seq);
            (head, until)
        }
        Some(cut) => (
            head_at(store.as_ref(), store.seq_at(cut)?)?,
            Until::RecordedAt(cut),
        ),
    };
    let events = app.year_events(year, until)?;
    let registry = Registry::of_selection(&events)?;
    let plan = registry.plan(year).ok_or_else(|| match as_of {
        None => AppError::Domain(DomainError::UnknownPlan { year }),
        Some(cut) => AppError::NotFound(format!(
            "non esisteva un piano per il {year} alle {}",
            traguardo_projections::italian::timestamp(cut)
        )),
    })?;
    let mut changes = revision_changes(&events)?;
    let units = unit_reports(plan, &registry, at);
    let summary = summary(plan, &registry, &units, at);
    Ok(Report {
        organisation: plan.organisation.clone(),
        year,
        title: plan.title.clone(),
        at,
        as_of,
        generated_at,
        head,
        units,
        summary,
        revisions: plan
            .revisions
            .iter()
            .map(|r| revision_report(r, &mut changes, at))
            .collect(),
        flags: super::flags::flags_of(&events)?,
    })
}

/// The seq and hash of event `seq` (the genesis head for 0).
fn head_at(store: &dyn Store, seq: u64) -> Result<Head, AppError> {
    if seq == 0 {
        return Ok(Head::genesis());
    }
    let event = store.read_all(seq - 1, 1)?.into_iter().next().ok_or({
        traguardo_events::Error::Corrupt {
            seq,
            message: "the log has no event with this seq".into(),
        }
    })?;
    Ok(Head {
        seq: event.seq,
        hash: event.hash,
    })
}

/// Unit codes in the order people read them: numeric codes by value, then any
/// other code alphabetically.
pub(crate) fn unit_order(code: &str) -> (bool, u64, String) {
    match code.parse::<u64>() {
        Ok(n) => (false, n, String::new()),
        Err(_) => (true, 0, code.to_string()),
    }
}

/// Whether the objective exists at `at` (it may be withdrawn).
fn exists_at(objective: &Objective, at: NaiveDate) -> bool {
    objective
        .added_by()
        .as_ref()
        .is_none_or(|r| r.in_force_from <= at)
}

fn unit_reports(plan: &Plan, registry: &Registry, at: NaiveDate) -> Vec<UnitReport> {
    let mut by_unit: BTreeMap<(bool, u64, String), (String, Vec<&Objective>)> = BTreeMap::new();
    for objective in registry
        .plan_objectives(plan.year)
        .into_iter()
        .filter(|o| exists_at(o, at))
    {
        by_unit
            .entry(unit_order(objective.unit()))
            .or_insert_with(|| (objective.unit().to_string(), Vec::new()))
            .1
            .push(objective);
    }
    by_unit
        .into_values()
        .map(|(code, mut objectives)| {
            objectives.sort_by(|a, b| {
                (a.spec().letter.len(), &a.spec().letter)
                    .cmp(&(b.spec().letter.len(), &b.spec().letter))
            });
            let unit = plan.unit(&code);
            let scores = scores_of(plan.year, at, objectives.clone());
            UnitReport {
                name: unit.map_or_else(|| code.clone(), |u| u.name.clone()),
                manager: unit
                    .and_then(|u| u.manager.clone())
                    .or_else(|| objectives.first().map(|o| o.spec().manager.clone())),
                manager_title: unit.and_then(|u| u.manager_title.clone()),
                score: scores.units.first().map(|u| u.score),
                objectives: objectives.iter().map(|o| objective_report(o, at)).collect(),
                code,
            }
        })
        .collect()
}

fn objective_report(objective: &Objective, at: NaiveDate) -> ObjectiveReport {
    let view = objective.evaluate(at);
    let validation = objective.final_validation_at(at);
    let phase_validation = |number: u32| {
        let v = validation.filter(|v| v.outcome == ValidationOutcome::Approved)?;
        if v.neutralised_phases.contains(&number) {
            Some(PhaseValidation::Neutralised)
        } else if v.unverified_phases.contains(&number) {
            Some(PhaseValidation::Unverified)
        } else {
            None
        }
    };
    let phases = view
        .phases
        .iter()
        .map(|p: &PhaseView| PhaseReport {
            number: p.number,
            description: p.description.clone(),
            weight: p.weight,
            original_weight: p.original_weight,
            original_deadline: p.original_deadline,
            deadline: p.deadline,
            started_on: p.started_on,
            completed_on: p.completed_on,
            status: if p.withdrawn {
                PhaseStatus::Withdrawn
            } else {
                p.status
            },
            validation: phase_validation(p.number),
        })
        .collect();
    ObjectiveReport {
        key: view.key,
        letter: view.letter,
        title: view.title,
        manager: view.manager,
        final_deadline: view.final_deadline,
        original_final_deadline: view.original_final_deadline,
        phases,
        completed_pct: view.score.completed_pct,
        on_time_pct: view.score.on_time_pct,
        outcome: if objective.active_at(at) {
            view.score.outcome
        } else {
            Outcome::Withdrawn
        },
        validated_pct: view.score.validated_pct,
        validation: validation.map(|v| ValidationReport {
            outcome: v.outcome,
            unverified_phases: v.unverified_phases.clone(),
            neutralised_phases: v.neutralised_phases.clone(),
            note: v.note.clone(),
            actor: v.recorded.actor.clone(),
            recorded_at: v.recorded.recorded_at,
        }),
    }
}

fn summary(plan: &Plan, registry: &Registry, units: &[UnitReport], at: NaiveDate) -> Summary {
    let scores = scores_of(plan.year, at, registry.plan_objectives(plan.year));
    let objectives = units.iter().flat_map(|u| &u.objectives);
    let count = |outcome: Outcome| objectives.clone().filter(|o| o.outcome == outcome).count();
    Summary {
        objectives: scores.objectives.len(),
        achieved: count(Outcome::Achieved),
        not_achieved: count(Outcome::NotAchieved),
        in_progress: count(Outcome::InProgress),
        withdrawn: count(Outcome::Withdrawn),
        validated: objectives
            .clone()
            .filter(|o| o.outcome != Outcome::Withdrawn && o.validation.is_some())
            .count(),
        score: scores.plan.score,
        units: units
            .iter()
            .filter_map(|u| {
                Some(UnitScoreReport {
                    unit: u.code.clone(),
                    name: u.name.clone(),
                    objectives: u
                        .objectives
                        .iter()
                        .filter(|o| o.outcome != Outcome::Withdrawn)
                        .count(),
                    score: u.score?,
                })
            })
            .collect(),
    }
}

/// The changes each revision applied, by revision id: the objective events that
/// carry its reference, in log order, with the values before them.
fn revision_changes(
    events: &[RecordedEvent],
) -> Result<HashMap<Uuid, Vec<ChangeReport>>, AppError> {
    let mut changes: HashMap<Uuid, Vec<ChangeReport>> = HashMap::new();
    for event in events {
        let Ok(StreamRef::Objective(objective)) = StreamRef::parse(&event.stream) else {
            continue;
        };
        let objective = objective.to_string();
        let (revision, change) = match traguardo_projections::objective::decode(event)? {
            ObjectiveEvent::DeadlineRevised {
                phase,
                from,
                to,
                revision,
            } => (
                revision.id,
                ChangeReport::Deadline {
                    objective,
                    phase,
                    from,
                    to,
                },
            ),
            ObjectiveEvent::WeightsRevised { from, to, revision } => (
                revision.id,
                ChangeReport::Weights {
                    objective,
                    from: pcts(from),
                    to: pcts(to),
                },
            ),
            ObjectiveEvent::PhaseAdded { phase, revision } => (
                revision.id,
                ChangeReport::AddPhase {
                    objective,
                    phase: phase.number,
                    description: phase.description,
                    weight: Pct(phase.weight_hundredths),
                    deadline: phase.deadline,
                },
            ),
            ObjectiveEvent::PhaseWithdrawn { phase, revision } => (
                revision.id,
                ChangeReport::WithdrawPhase { objective, phase },
            ),
            ObjectiveEvent::ObjectiveDefined {
                objective: spec,
                revision: Some(revision),
            } => (
                revision.id,
                ChangeReport::AddObjective {
                    objective,
                    title: spec.title,
                },
            ),
            ObjectiveEvent::ObjectiveWithdrawn { revision } => {
                (revision.id, ChangeReport::WithdrawObjective { objective })
            }
            // Not written by a revision.
            _ => continue,
        };
        changes.entry(revision).or_default().push(change);
    }
    Ok(changes)
}

fn revision_report(
    revision: &Revision,
    changes: &mut HashMap<Uuid, Vec<ChangeReport>>,
    at: NaiveDate,
) -> RevisionReport {
    RevisionReport {
        id: revision.id,
        act: revision.act.clone(),
        act_date: revision.act_date,
        in_force_from: revision.in_force_from,
        in_force: revision.in_force_from <= at,
        reason: revision.reason.clone(),
        actor: revision.actor.clone(),
        recorded_at: revision.recorded_at,
        seq: revision.seq,
        changes: changes.remove(&revision.id).unwrap_or_default(),
    }
}

fn pcts(weights: BTreeMap<u32, Hundredths>) -> BTreeMap<u32, Pct> {
    weights.into_iter().map(|(n, w)| (n, Pct(w))).collect()
}

/// Serde for an optional timestamp in the log's format (null when absent).
mod optional_timestamp {
    use chrono::{DateTime, Utc};
    use serde::Serializer;

    /// Writes `YYYY-MM-DDTHH:MM:SS.ffffffZ`, or null.
    pub fn serialize<S: Serializer>(at: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        match at {
            Some(at) => s.serialize_str(&traguardo_events::envelope::format_timestamp(at)),
            None => s.serialize_none(),
        }
    }
}
