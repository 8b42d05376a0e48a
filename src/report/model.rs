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
use traguardo_events::{Head, RecordedEvent, StreamRef};
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
    /// Whether `at` is before the end of the plan year: then the document is a
    /// *Monitoraggio intermedio*, not the final *Relazione*.
    pub interim: bool,
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
    /// The signed checkpoint (C2SP signed note) of exactly `head`, when the
    /// server that produced the report signs checkpoints; absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<String>,
    /// Units with objectives, in unit-code order.
    pub units: Vec<UnitReport>,
    /// Counts and scores of the whole plan.
    pub summary: Summary,
    /// The revisions of the year (*rimodulazioni*), oldest first.
    pub revisions: Vec<RevisionReport>,
    /// Red flags of the year, in the order the flag rules give them.
    pub flags: Vec<FlagReport>,
    /// The year-end seal (*esercizio chiuso*), once recorded: the signed
    /// checkpoint it names, with its cosignatures. Absent for an open year.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sealed: Option<traguardo_projections::Seal>,
    /// Who signs the document: each unit's manager, and the *Nucleo di
    /// Valutazione* with the minutes of its validations.
    pub signatures: Signatures,
}

/// The signature block.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Signatures {
    /// One line per unit, in unit-code order.
    pub units: Vec<UnitSignature>,
    /// The minutes of the current final validations the *Nucleo di Valutazione*
    /// recorded, each once, in the order of their dates: its *visto di
    /// validazione*. Empty before any.
    pub validations: Vec<ValidationMinutes>,
}

/// Who signs for a unit.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct UnitSignature {
    /// Unit code.
    pub unit: String,
    /// The unit's name.
    pub name: String,
    /// `Il Dirigente` for a *Dirigente*, else `Il Responsabile`.
    pub role: String,
    /// The manager's name, when known.
    pub manager: Option<String>,
}

/// A meeting of the *Nucleo di Valutazione* that validated results.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ValidationMinutes {
    /// The minutes, e.g. "Verbale n. 3 del 15/03/2023"; null when the
    /// validations named none.
    pub reference: Option<String>,
    /// The Italian date the validations were recorded on (the latest, when one
    /// set of minutes was recorded over several days).
    pub date: NaiveDate,
    /// How many objectives it validated.
    pub objectives: usize,
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
    /// How many of its objectives that count have a current final validation.
    pub validated: usize,
    /// Their mean validated result, when every one has a current final
    /// validation; else null.
    pub validated_score: Option<Pct>,
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
    /// *Finalità strategiche*.
    pub strategic_purpose: String,
    /// *Risultato atteso*.
    pub expected_result: String,
    /// The units and bodies its phases involve besides the owner, each once, in
    /// the order the phases name them.
    pub involved: Vec<String>,
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
    /// Its indicators (*indicatori di risultato*) at `at`, withdrawn ones
    /// included.
    pub indicators: Vec<IndicatorReport>,
    /// `achieved` when the validated result is 100, else `not_achieved`; null
    /// before a final validation.
    pub validated_outcome: Option<Outcome>,
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
    /// The units or bodies it involves.
    pub involved: Vec<String>,
    /// Start date (valid time), if started by `at`.
    pub started_on: Option<NaiveDate>,
    /// Completion date as declared (valid time), if completed by `at`.
    pub completed_on: Option<NaiveDate>,
    /// Status at `at`.
    pub status: PhaseStatus,
    /// What the latest final validation said of this phase, if anything.
    pub validation: Option<PhaseValidation>,
    /// The manager's notes, evidence and retractions, with who and when.
    #[schema(value_type = Vec<Object>)]
    pub notes: Vec<traguardo_projections::objective::NoteView>,
}

/// An indicator, target against the latest measurement on or before `at`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct IndicatorReport {
    /// Its id.
    pub id: String,
    /// What it measures.
    pub description: String,
    /// `ratio`, `threshold` or `qualitative`.
    #[schema(value_type = String)]
    pub kind: traguardo_events::model::IndicatorKind,
    /// The target in force at `at`; null for a qualitative indicator.
    pub target: Option<Pct>,
    /// The latest measured value on or before `at`.
    pub actual: Option<Pct>,
    /// n° a of a ratio.
    pub numerator: Option<u64>,
    /// n° b of a ratio.
    pub denominator: Option<u64>,
    /// The date of that measurement.
    pub measured_on: Option<NaiveDate>,
    /// The finding of a qualitative indicator.
    pub text: Option<String>,
    /// Whether the measurement meets the target; null when there is none to
    /// compare (qualitative, or not measured).
    pub met: Option<bool>,
    /// Withdrawn by a revision.
    pub withdrawn: bool,
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
    /// The minutes it was decided in, e.g. "Verbale n. 3 del 15/03/2023".
    pub reference: Option<String>,
    /// Whether something was recorded about the objective after it: it must be
    /// repeated (*validazione da ripetere*) and does not count as validated.
    pub stale: bool,
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
    /// Objectives with a current (not stale) final validation.
    pub validated: usize,
    /// The plan's score: the mean `on_time_pct` over the objectives that count.
    pub score: Pct,
    /// The mean validated result, when every objective that counts has a current
    /// final validation; else null.
    pub validated_score: Option<Pct>,
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
    /// How many of them have a current final validation.
    pub validated: usize,
    /// Their mean validated result, when every one has a current final
    /// validation; else null.
    pub validated_score: Option<Pct>,
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
    /// Any other change (manager, title, a phase's description, indicators),
    /// described as the audit trail describes it.
    Other {
        /// Objective key.
        objective: String,
        /// The audit trail's Italian summary of it.
        summary: String,
    },
}

/// A red flag: something an auditor should look at.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct FlagReport {
    /// The flag's stable id.
    pub id: String,
    /// `open`, `resolved` or `acknowledged`.
    pub status: traguardo_projections::flags::FlagStatus,
    /// The Nucleo's note, when it acknowledged the flag.
    pub acknowledgement: Option<String>,
    /// Who acknowledged it.
    pub acknowledged_by: Option<String>,
    /// When.
    #[serde(with = "optional_timestamp")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub acknowledged_at: Option<DateTime<Utc>>,
    /// `retroactive_revision`, `late_registration`, `rescued_by_revision`,
    /// `changed_after_validation`, `retracted_after_validation` or
    /// `weights_revised_after_completion`.
    #[schema(value_type = String)]
    pub kind: traguardo_projections::flags::FlagKind,
    /// Objective key.
    pub objective: String,
    /// Phase number, when the flag is about one phase.
    pub phase: Option<u32>,
    /// The seqs of the events that raised it.
    pub seqs: Vec<u64>,
    /// What it means, in words.
    pub message: String,
}

/// The plan of `year` did not exist yet at record time `cut`.
pub fn no_plan_as_of(year: i32, cut: DateTime<Utc>) -> AppError {
    AppError::NotFound(format!(
        "non esisteva un piano per il {year} alle {}",
        traguardo_projections::italian::timestamp(cut)
    ))
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
    at: Option<NaiveDate>,
    as_of: Option<DateTime<Utc>>,
    generated_at: DateTime<Utc>,
) -> Result<Report, AppError> {
    // Without `at`, a report as of a record time is about that day (DESIGN.md §4).
    let at = at.unwrap_or_else(|| {
        as_of.map_or_else(|| app.today(), |t| traguardo_events::clock::local_date(&t))
    });
    // The head is read first and the events up to it, so that the head printed is
    // exactly the log the numbers come from, even while others append.
    let head = app.head_at(as_of.map_or(Until::End, Until::RecordedAt))?;
    let until = Until::Seq(head.seq);
    let events = app.year_events(year, until)?;
    let registry = Registry::of_selection(&events)?;
    let plan = registry.plan(year).ok_or_else(|| match as_of {
        None => AppError::Domain(DomainError::UnknownPlan { year }),
        Some(cut) => no_plan_as_of(year, cut),
    })?;
    let mut changes = revision_changes(&events)?;
    let mut units = unit_reports(plan, &registry, at);
    let summary = summary(plan, &registry, &units, at);
    for unit in &mut units {
        if let Some(line) = summary.units.iter().find(|l| l.unit == unit.code) {
            unit.validated = line.validated;
            unit.validated_score = line.validated_score;
        }
    }
    Ok(Report {
        organisation: plan.organisation.clone(),
        year,
        title: plan.title.clone(),
        at,
        interim: at < NaiveDate::from_ymd_opt(year, 12, 31).unwrap_or(NaiveDate::MAX),
        as_of,
        generated_at,
        head,
        checkpoint: None,
        signatures: signatures(&units),
        units,
        summary,
        revisions: plan
            .revisions
            .iter()
            .map(|r| revision_report(r, &mut changes, at))
            .collect(),
        flags: super::flags::flags_of(&events)?,
        sealed: plan.sealed.clone(),
    })
}

/// The seq and hash of event `seq` (the genesis head for 0).
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
                (a.letter().len(), a.letter()).cmp(&(b.letter().len(), b.letter()))
            });
            let unit = plan.unit(&code);
            let scores = scores_of(plan.year, at, objectives.clone());
            UnitReport {
                name: unit.map_or_else(|| code.clone(), |u| u.display_name().to_string()),
                manager: unit
                    .and_then(|u| u.manager.clone())
                    .or_else(|| objectives.first().map(|o| o.original_manager().to_string())),
                manager_title: unit.and_then(|u| u.manager_title.clone()),
                score: scores.units.first().map(|u| u.score),
                validated: 0,
                validated_score: None,
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
            involved: p.involved.clone(),
            started_on: p.started_on,
            completed_on: p.completed_on,
            status: if p.withdrawn {
                PhaseStatus::Withdrawn
            } else {
                p.status
            },
            validation: phase_validation(p.number),
            notes: p.notes.clone(),
        })
        .collect();
    let mut involved: Vec<String> = Vec::new();
    for name in view.phases.iter().flat_map(|p| &p.involved) {
        if name != objective.unit() && !involved.contains(name) {
            involved.push(name.clone());
        }
    }
    let indicators = view
        .indicators
        .iter()
        .map(|i| IndicatorReport {
            id: i.id.clone(),
            description: i.description.clone(),
            kind: i.kind,
            target: i.target,
            actual: i.latest.as_ref().and_then(|m| m.value),
            numerator: i.latest.as_ref().and_then(|m| m.numerator),
            denominator: i.latest.as_ref().and_then(|m| m.denominator),
            measured_on: i.latest.as_ref().map(|m| m.on),
            text: i.latest.as_ref().and_then(|m| m.text.clone()),
            met: i.met,
            withdrawn: i.withdrawn,
        })
        .collect();
    ObjectiveReport {
        key: view.key,
        letter: view.letter,
        title: view.title,
        manager: view.manager,
        strategic_purpose: objective.texts().strategic_purpose.to_string(),
        expected_result: objective.texts().expected_result.to_string(),
        involved,
        indicators,
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
            reference: v.reference.clone(),
            stale: view.validation_stale,
            actor: v.recorded.actor.to_string(),
            recorded_at: v.recorded.recorded_at,
        }),
        validated_outcome: view.score.validated_outcome,
    }
}

/// The signature block: a line per unit, and the minutes of the current final
/// validations, each once.
fn signatures(units: &[UnitReport]) -> Signatures {
    let mut validations: Vec<ValidationMinutes> = Vec::new();
    let current = units
        .iter()
        .flat_map(|u| &u.objectives)
        .filter_map(|o| o.validation.as_ref().filter(|v| !v.stale));
    for v in current {
        let date = traguardo_events::clock::local_date(&v.recorded_at);
        match validations.iter_mut().find(|m| m.reference == v.reference) {
            Some(minutes) => {
                minutes.date = minutes.date.max(date);
                minutes.objectives += 1;
            }
            None => validations.push(ValidationMinutes {
                reference: v.reference.clone(),
                date,
                objectives: 1,
            }),
        }
    }
    validations.sort_by(|a, b| (a.date, &a.reference).cmp(&(b.date, &b.reference)));
    Signatures {
        units: units
            .iter()
            .map(|u| UnitSignature {
                unit: u.code.clone(),
                name: u.name.clone(),
                role: match u.manager_title.as_deref() {
                    Some(t) if t.to_lowercase().starts_with("dirigente") => "Il Dirigente",
                    _ => "Il Responsabile",
                }
                .to_string(),
                manager: u.manager.clone(),
            })
            .collect(),
        validations,
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
        validated: scores.plan.validated,
        score: scores.plan.score,
        validated_score: scores.plan.validated_score,
        units: units
            .iter()
            .filter_map(|u| {
                let line = scores.units.iter().find(|s| s.unit == u.code);
                Some(UnitScoreReport {
                    unit: u.code.clone(),
                    name: u.name.clone(),
                    objectives: u
                        .objectives
                        .iter()
                        .filter(|o| o.outcome != Outcome::Withdrawn)
                        .count(),
                    score: u.score?,
                    validated: line.map_or(0, |l| l.validated),
                    validated_score: line.and_then(|l| l.validated_score),
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
        let decoded = traguardo_projections::objective::decode(event)?;
        let summary = || traguardo_projections::audit::summarize_objective_event(event, &decoded);
        let (revision, change) = match decoded.clone() {
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
            ObjectiveEvent::ManagerChanged { revision, .. }
            | ObjectiveEvent::TitleChanged { revision, .. }
            | ObjectiveEvent::PhaseDescriptionChanged { revision, .. }
            | ObjectiveEvent::IndicatorTargetChanged { revision, .. }
            | ObjectiveEvent::IndicatorAdded { revision, .. }
            | ObjectiveEvent::IndicatorWithdrawn { revision, .. } => (
                revision.id,
                ChangeReport::Other {
                    objective,
                    summary: summary(),
                },
            ),
            // Not written by a revision.
            ObjectiveEvent::ObjectiveDefined { revision: None, .. }
            | ObjectiveEvent::PhaseStarted { .. }
            | ObjectiveEvent::PhaseCompleted { .. }
            | ObjectiveEvent::PhaseCompletionRetracted { .. }
            | ObjectiveEvent::IndicatorMeasured { .. }
            | ObjectiveEvent::ValidationRecorded { .. } => continue,
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
