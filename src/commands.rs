//! Decide: state + command → events, or a typed error. Every rule of the domain
//! lives here, and nothing here does I/O: the caller loads the state, passes the
//! date of today, and appends what comes back.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use traguardo_events::domain::{ObjectiveEvent, PlanEvent, RevisionChange, RevisionRef};
use traguardo_events::model::{
    Hundredths, ObjectiveSpec, PhaseSpec, Role, ValidationOutcome, ValidationStage,
};
use traguardo_projections::{Objective, Registry};
use uuid::Uuid;

use crate::error::{AppError, FieldError};

/// Who is asking: the holder of a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The actor's name, written on every event they cause.
    pub name: String,
    /// Their role.
    pub role: Role,
    /// For managers, the units they act for.
    pub units: Vec<String>,
}

impl Principal {
    /// The envelope's actor for this principal.
    pub fn actor(&self) -> traguardo_events::envelope::Actor {
        traguardo_events::envelope::Actor::new(&self.name, self.role.as_str())
    }

    /// Whether this principal may record progress for `unit`.
    pub fn manages(&self, unit: &str) -> bool {
        self.role == Role::Manager && self.units.iter().any(|u| u == unit)
    }
}

/// A command on one objective.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObjectiveCommand {
    /// Start a phase on a date.
    StartPhase {
        /// Phase number.
        phase: u32,
        /// Valid date.
        on: NaiveDate,
        /// Note.
        note: Option<String>,
    },
    /// Complete a phase on a date.
    CompletePhase {
        /// Phase number.
        phase: u32,
        /// Valid date.
        on: NaiveDate,
        /// Note.
        note: Option<String>,
        /// Evidence links.
        evidence: Vec<String>,
    },
    /// Withdraw a completion recorded in error.
    RetractCompletion {
        /// Phase number.
        phase: u32,
        /// Why (required).
        reason: String,
    },
    /// Record an indicator measurement.
    RecordMeasurement {
        /// Indicator id.
        indicator: String,
        /// Valid date.
        on: NaiveDate,
        /// Value, when given directly.
        value: Option<Hundredths>,
        /// n° a.
        numerator: Option<u64>,
        /// n° b.
        denominator: Option<u64>,
        /// Note.
        note: Option<String>,
    },
    /// Record a validation by the *Nucleo di Valutazione*.
    RecordValidation {
        /// Stage.
        stage: ValidationStage,
        /// Outcome.
        outcome: ValidationOutcome,
        /// Declared complete, not accepted.
        unverified_phases: Vec<u32>,
        /// Neutralised (*sterilizzazione*).
        neutralised_phases: Vec<u32>,
        /// Note (mandatory when anything is unverified, neutralised or rejected).
        note: Option<String>,
    },
}

/// Decides a command on an objective.
///
/// # Errors
/// [`AppError::Forbidden`] when the principal may not act on it,
/// [`AppError::NotFound`] for an unknown phase or indicator,
/// [`AppError::Rule`] when the objective's state forbids it,
/// [`AppError::Invalid`] for bad input (a date after today, a missing reason, …).
pub fn decide(
    objective: &Objective,
    command: &ObjectiveCommand,
    principal: &Principal,
    today: NaiveDate,
) -> Result<Vec<ObjectiveEvent>, AppError> {
    let key = &objective.key;
    let validating = matches!(command, ObjectiveCommand::RecordValidation { .. });
    if validating {
        if principal.role != Role::Validator {
            return Err(AppError::Forbidden(format!(
                "only the Nucleo di Valutazione (role validator) may validate; {} is {}",
                principal.name, principal.role
            )));
        }
    } else if !principal.manages(objective.unit()) {
        return Err(AppError::Forbidden(format!(
            "only a manager of unit {} may record progress on {key}; {} is {} {}",
            objective.unit(),
            principal.name,
            principal.role,
            if principal.units.is_empty() {
                String::new()
            } else {
                format!("for units {}", principal.units.join(", "))
            }
        )));
    }
    if objective.withdrawn.is_some() {
        return Err(AppError::Rule(format!(
            "objective {key} has been withdrawn"
        )));
    }
    let not_future = |on: NaiveDate| -> Result<(), AppError> {
        if on > today {
            Err(AppError::invalid(
                "on",
                format!(
                    "{on} is after today ({today}): a fact cannot be recorded before it happens"
                ),
            ))
        } else {
            Ok(())
        }
    };
    let phase_of = |number: u32| -> Result<&traguardo_projections::objective::Phase, AppError> {
        let phase = objective
            .phase(number)
            .ok_or_else(|| AppError::NotFound(format!("objective {key} has no phase {number}")))?;
        if phase.is_withdrawn() {
            return Err(AppError::Rule(format!(
                "phase {number} of {key} has been withdrawn"
            )));
        }
        Ok(phase)
    };
    let event = match command.clone() {
        ObjectiveCommand::StartPhase { phase, on, note } => {
            let p = phase_of(phase)?;
            not_future(on)?;
            if let Some(started) = &p.started {
                return Err(AppError::Rule(format!(
                    "phase {phase} of {key} was already started on {}",
                    started.on
                )));
            }
            if let Some(done) = &p.completed {
                return Err(AppError::Rule(format!(
                    "phase {phase} of {key} was already completed on {}",
                    done.on
                )));
            }
            ObjectiveEvent::PhaseStarted {
                phase,
                on,
                note: clean(note),
            }
        }
        ObjectiveCommand::CompletePhase {
            phase,
            on,
            note,
            evidence,
        } => {
            let p = phase_of(phase)?;
            not_future(on)?;
            if let Some(done) = &p.completed {
                return Err(AppError::Rule(format!(
                    "phase {phase} of {key} was already completed on {}",
                    done.on
                )));
            }
            if let Some(started) = p.started.as_ref().filter(|s| on < s.on) {
                return Err(AppError::Rule(format!(
                    "phase {phase} of {key} cannot be completed on {on}, before it was started on {}",
                    started.on
                )));
            }
            ObjectiveEvent::PhaseCompleted {
                phase,
                on,
                note: clean(note),
                evidence: evidence
                    .into_iter()
                    .filter(|e| !e.trim().is_empty())
                    .collect(),
            }
        }
        ObjectiveCommand::RetractCompletion { phase, reason } => {
            let p = phase_of(phase)?;
            if reason.trim().is_empty() {
                return Err(AppError::invalid("reason", "a retraction needs a reason"));
            }
            let Some(done) = &p.completed else {
                return Err(AppError::Rule(format!(
                    "phase {phase} of {key} has no completion to retract"
                )));
            };
            ObjectiveEvent::PhaseCompletionRetracted {
                phase,
                completed_on: done.on,
                reason: reason.trim().to_string(),
            }
        }
        ObjectiveCommand::RecordMeasurement {
            indicator,
            on,
            value,
            numerator,
            denominator,
            note,
        } => {
            if !objective.indicators.iter().any(|i| i.spec.id == indicator) {
                return Err(AppError::NotFound(format!(
                    "objective {key} has no indicator {indicator}"
                )));
            }
            not_future(on)?;
            let mut errors = Vec::new();
            match (value, numerator, denominator) {
                (None, None, None) => errors.push(FieldError::new(
                    "value",
                    "give a value, or a numerator and a denominator",
                )),
                (_, Some(_), None) | (_, None, Some(_)) => errors.push(FieldError::new(
                    "denominator",
                    "a ratio needs both numerator and denominator",
                )),
                (_, _, Some(0)) => {
                    errors.push(FieldError::new("denominator", "must be greater than 0"))
                }
                _ => {}
            }
            if !errors.is_empty() {
                return Err(AppError::Invalid(errors));
            }
            ObjectiveEvent::IndicatorMeasured {
                indicator,
                on,
                value_hundredths: value,
                numerator,
                denominator,
                note: clean(note),
            }
        }
        ObjectiveCommand::RecordValidation {
            stage,
            outcome,
            unverified_phases,
            neutralised_phases,
            note,
        } => decide_validation(
            objective,
            principal,
            stage,
            outcome,
            unverified_phases,
            neutralised_phases,
            clean(note),
        )?,
    };
    Ok(vec![event])
}

fn decide_validation(
    objective: &Objective,
    principal: &Principal,
    stage: ValidationStage,
    outcome: ValidationOutcome,
    mut unverified_phases: Vec<u32>,
    mut neutralised_phases: Vec<u32>,
    note: Option<String>,
) -> Result<ObjectiveEvent, AppError> {
    let key = &objective.key;
    if let Some(phase) = objective.phases.iter().find(|p| {
        p.completed
            .as_ref()
            .is_some_and(|c| c.recorded.actor == principal.name)
    }) {
        return Err(AppError::Forbidden(format!(
            "{} recorded the completion of phase {} of {key} and may not validate it",
            principal.name, phase.number
        )));
    }
    unverified_phases.sort_unstable();
    unverified_phases.dedup();
    neutralised_phases.sort_unstable();
    neutralised_phases.dedup();
    let mut errors = Vec::new();
    if stage == ValidationStage::Plan {
        if !unverified_phases.is_empty() || !neutralised_phases.is_empty() {
            errors.push(FieldError::new(
                "stage",
                "unverified and neutralised phases belong to the final validation",
            ));
        }
        let last_plan = objective
            .validations
            .iter()
            .rev()
            .find(|v| v.stage == ValidationStage::Plan);
        if let Some(last) = last_plan {
            if objective
                .last_revision_seq
                .is_none_or(|r| r < last.recorded.seq)
            {
                return Err(AppError::Rule(format!(
                    "the plan of {key} was already validated on {} and no revision changed it since",
                    traguardo_events::clock::local_date(&last.recorded.recorded_at)
                )));
            }
        }
    }
    for (field, numbers) in [
        ("unverified_phases", &unverified_phases),
        ("neutralised_phases", &neutralised_phases),
    ] {
        for n in numbers.iter() {
            match objective.phase(*n) {
                None => errors.push(FieldError::new(field, format!("{key} has no phase {n}"))),
                Some(p) if p.is_withdrawn() => errors.push(FieldError::new(
                    field,
                    format!("phase {n} has been withdrawn"),
                )),
                Some(p) if field == "unverified_phases" && p.completed.is_none() => errors.push(
                    FieldError::new(field, format!("phase {n} was not declared complete")),
                ),
                Some(_) => {}
            }
        }
    }
    if let Some(n) = unverified_phases
        .iter()
        .find(|n| neutralised_phases.contains(n))
    {
        errors.push(FieldError::new(
            "neutralised_phases",
            format!("phase {n} cannot be both unverified and neutralised"),
        ));
    }
    let active = objective
        .phases
        .iter()
        .filter(|p| !p.is_withdrawn())
        .count();
    if active > 0 && neutralised_phases.len() >= active {
        errors.push(FieldError::new(
            "neutralised_phases",
            "at least one phase must remain to be evaluated",
        ));
    }
    let needs_note = !unverified_phases.is_empty()
        || !neutralised_phases.is_empty()
        || outcome == ValidationOutcome::Rejected;
    if needs_note && note.is_none() {
        errors.push(FieldError::new(
            "note",
            "a note is mandatory when phases are unverified or neutralised, or the outcome is rejected",
        ));
    }
    if !errors.is_empty() {
        return Err(AppError::Invalid(errors));
    }
    Ok(ObjectiveEvent::ValidationRecorded {
        stage,
        outcome,
        unverified_phases,
        neutralised_phases,
        note,
    })
}

/// A revision as requested.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevisionRequest {
    /// The act, e.g. `D.G.C. n. 182 del 28/07/2022`.
    pub act: String,
    /// The act's date.
    pub act_date: Option<NaiveDate>,
    /// Why.
    pub reason: String,
    /// Changes, applied in order.
    pub changes: Vec<RevisionChange>,
}

/// What a revision appends: the plan event, then each touched objective's events.
#[derive(Debug, Clone, PartialEq)]
pub struct RevisionDecision {
    /// The revision's id (the events' correlation).
    pub id: Uuid,
    /// `revision_recorded`, for the plan stream.
    pub plan_event: PlanEvent,
    /// The plan stream's version the decision was made on.
    pub plan_version: u64,
    /// Per objective key: the version decided on (none for a new objective) and
    /// its events.
    pub objectives: Vec<(String, Option<u64>, Vec<ObjectiveEvent>)>,
}

struct DraftPhase {
    weight: Hundredths,
    deadline: NaiveDate,
    withdrawn: bool,
}

struct Draft {
    key: String,
    version: Option<u64>,
    withdrawn: bool,
    final_deadline: NaiveDate,
    phases: BTreeMap<u32, DraftPhase>,
    events: Vec<ObjectiveEvent>,
}

impl Draft {
    fn of(objective: &Objective) -> Self {
        Draft {
            key: objective.key.clone(),
            version: Some(objective.version),
            withdrawn: objective.withdrawn.is_some(),
            final_deadline: *objective.final_deadline.latest(),
            phases: objective
                .phases
                .iter()
                .map(|p| {
                    (
                        p.number,
                        DraftPhase {
                            weight: *p.weight.latest(),
                            deadline: *p.deadline.latest(),
                            withdrawn: p.is_withdrawn(),
                        },
                    )
                })
                .collect(),
            events: Vec::new(),
        }
    }

    fn new(spec: &ObjectiveSpec) -> Self {
        Draft {
            key: spec.key(),
            version: None,
            withdrawn: false,
            final_deadline: spec.final_deadline,
            phases: spec
                .phases
                .iter()
                .map(|p| {
                    (
                        p.number,
                        DraftPhase {
                            weight: p.weight_hundredths,
                            deadline: p.deadline,
                            withdrawn: false,
                        },
                    )
                })
                .collect(),
            events: Vec::new(),
        }
    }
}

/// Decides a revision of plan `year`: every change is checked, and after all are
/// applied every touched objective must have weights summing to exactly 100 and no
/// phase deadline after its final deadline. Every violation is reported at once.
///
/// # Errors
/// [`AppError::Forbidden`] for a non-admin, [`AppError::NotFound`] for an unknown
/// plan, [`AppError::Invalid`] with every violation otherwise.
pub fn decide_revision(
    registry: &Registry,
    year: i32,
    request: &RevisionRequest,
    principal: &Principal,
    today: NaiveDate,
    id: Uuid,
) -> Result<RevisionDecision, AppError> {
    if principal.role != Role::Admin {
        return Err(AppError::Forbidden(format!(
            "only an admin (Programmazione e Controllo) may record revisions; {} is {}",
            principal.name, principal.role
        )));
    }
    let plan = registry
        .plans
        .get(&year)
        .ok_or_else(|| AppError::NotFound(format!("no plan for {year}")))?;
    let mut errors = Vec::new();
    if request.act.trim().is_empty() {
        errors.push(FieldError::new(
            "act",
            "the act of the revision is required",
        ));
    }
    if request.reason.trim().is_empty() {
        errors.push(FieldError::new("reason", "a reason is required"));
    }
    if request.changes.is_empty() {
        errors.push(FieldError::new(
            "changes",
            "a revision needs at least one change",
        ));
    }
    if let Some(date) = request.act_date.filter(|d| *d > today) {
        errors.push(FieldError::new(
            "act_date",
            format!(
                "{date} is after today ({today}): an act cannot be recorded before it is adopted"
            ),
        ));
    }
    let in_force_from = request.act_date.unwrap_or(today);
    let revision = RevisionRef {
        id,
        act: request.act.trim().to_string(),
        in_force_from,
        reason: request.reason.trim().to_string(),
    };
    let mut drafts: Vec<Draft> = Vec::new();
    for (i, change) in request.changes.iter().enumerate() {
        let path = format!("changes[{i}]");
        let key = change.objective_key();
        let index = match drafts.iter().position(|d| d.key == key) {
            Some(index) => Some(index),
            None => match (change, registry.objectives.get(&key)) {
                (RevisionChange::AddObjective { .. }, Some(_)) => {
                    errors.push(FieldError::new(
                        &path,
                        format!("objective {key} already exists"),
                    ));
                    None
                }
                (RevisionChange::AddObjective { .. }, None) => None,
                (_, Some(objective)) if objective.year() != year => {
                    errors.push(FieldError::new(
                        format!("{path}.objective"),
                        format!("objective {key} belongs to plan {}", objective.year()),
                    ));
                    None
                }
                (_, Some(objective)) => {
                    if let Some(last) = objective.last_revision_date.filter(|d| *d > in_force_from)
                    {
                        errors.push(FieldError::new(
                            "act_date",
                            format!(
                                "{in_force_from} precedes {last}, the date of a revision already applied to {key}"
                            ),
                        ));
                    }
                    drafts.push(Draft::of(objective));
                    Some(drafts.len() - 1)
                }
                (_, None) => {
                    errors.push(FieldError::new(
                        format!("{path}.objective"),
                        format!("no objective {key}"),
                    ));
                    None
                }
            },
        };
        if let RevisionChange::AddObjective { objective } = change {
            if index.is_some() {
                errors.push(FieldError::new(
                    &path,
                    format!("objective {key} already exists"),
                ));
                continue;
            }
            add_objective(plan, objective, &path, &mut errors);
            let mut draft = Draft::new(objective);
            draft.events.push(ObjectiveEvent::ObjectiveDefined {
                objective: (**objective).clone(),
                revision: Some(revision.clone()),
            });
            drafts.push(draft);
            continue;
        }
        let Some(index) = index else { continue };
        let draft = &mut drafts[index];
        if draft.withdrawn {
            errors.push(FieldError::new(
                &path,
                format!("objective {key} has been withdrawn"),
            ));
            continue;
        }
        apply_change(draft, change, &revision, &path, &mut errors);
    }
    for draft in drafts.iter().filter(|d| !d.withdrawn) {
        let total: Hundredths = draft
            .phases
            .values()
            .filter(|p| !p.withdrawn)
            .map(|p| p.weight)
            .sum();
        if total != Hundredths::HUNDRED {
            errors.push(FieldError::new(
                &draft.key,
                format!(
                    "after the revision the phase weights of {} sum to {total}, not exactly 100",
                    draft.key
                ),
            ));
        }
        for (n, p) in draft.phases.iter().filter(|(_, p)| !p.withdrawn) {
            if p.deadline > draft.final_deadline {
                errors.push(FieldError::new(
                    &draft.key,
                    format!(
                        "after the revision phase {n} of {} is due {}, after the final deadline {}",
                        draft.key, p.deadline, draft.final_deadline
                    ),
                ));
            }
        }
    }
    if !errors.is_empty() {
        return Err(AppError::Invalid(errors));
    }
    let keys: Vec<String> = drafts.iter().map(|d| d.key.clone()).collect();
    Ok(RevisionDecision {
        id,
        plan_event: PlanEvent::RevisionRecorded {
            revision: id,
            act: revision.act.clone(),
            act_date: request.act_date,
            in_force_from,
            reason: revision.reason.clone(),
            changes: request.changes.clone(),
            objectives: keys,
        },
        plan_version: plan.version,
        objectives: drafts
            .into_iter()
            .map(|d| (d.key, d.version, d.events))
            .collect(),
    })
}

fn add_objective(
    plan: &traguardo_projections::Plan,
    objective: &ObjectiveSpec,
    path: &str,
    errors: &mut Vec<FieldError>,
) {
    if objective.year != plan.year {
        errors.push(FieldError::new(
            format!("{path}.objective.year"),
            format!("{} is not the plan year {}", objective.year, plan.year),
        ));
    }
    if plan.unit(&objective.unit).is_none() {
        errors.push(FieldError::new(
            format!("{path}.objective.unit"),
            format!("unit {} is not in the plan's units", objective.unit),
        ));
    }
    for (i, phase) in objective.phases.iter().enumerate() {
        if let Some(message) = weight_out_of_range(phase.weight_hundredths) {
            errors.push(FieldError::new(
                format!("{path}.objective.phases[{i}].weight"),
                message,
            ));
        }
    }
    let numbers: Vec<u32> = objective.phases.iter().map(|p| p.number).collect();
    let mut sorted = numbers.clone();
    sorted.sort_unstable();
    if sorted.iter().copied().ne(1..=numbers.len() as u32) {
        errors.push(FieldError::new(
            format!("{path}.objective.phases"),
            "phase numbers must be 1..n, each once",
        ));
    }
}

fn apply_change(
    draft: &mut Draft,
    change: &RevisionChange,
    revision: &RevisionRef,
    path: &str,
    errors: &mut Vec<FieldError>,
) {
    let key = draft.key.clone();
    let active_phase = |draft: &mut Draft, n: u32, errors: &mut Vec<FieldError>| -> bool {
        match draft.phases.get(&n) {
            None => {
                errors.push(FieldError::new(
                    format!("{path}.phase"),
                    format!("{key} has no phase {n}"),
                ));
                false
            }
            Some(p) if p.withdrawn => {
                errors.push(FieldError::new(
                    format!("{path}.phase"),
                    format!("phase {n} of {key} has been withdrawn"),
                ));
                false
            }
            Some(_) => true,
        }
    };
    match change {
        RevisionChange::Deadline {
            phase: Some(n),
            new_deadline,
            ..
        } => {
            if active_phase(draft, *n, errors) {
                if let Some(p) = draft.phases.get_mut(n) {
                    let from = std::mem::replace(&mut p.deadline, *new_deadline);
                    draft.events.push(ObjectiveEvent::DeadlineRevised {
                        phase: Some(*n),
                        from,
                        to: *new_deadline,
                        revision: revision.clone(),
                    });
                }
            }
        }
        RevisionChange::Deadline {
            phase: None,
            new_deadline,
            ..
        } => {
            let from = std::mem::replace(&mut draft.final_deadline, *new_deadline);
            draft.events.push(ObjectiveEvent::DeadlineRevised {
                phase: None,
                from,
                to: *new_deadline,
                revision: revision.clone(),
            });
        }
        RevisionChange::Weights {
            weights_hundredths, ..
        } => {
            if weights_hundredths.is_empty() {
                errors.push(FieldError::new(
                    format!("{path}.weights"),
                    "no weights given",
                ));
                return;
            }
            let mut from = BTreeMap::new();
            for (n, w) in weights_hundredths {
                if let Some(message) = weight_out_of_range(*w) {
                    errors.push(FieldError::new(format!("{path}.weights.{n}"), message));
                    continue;
                }
                if active_phase(draft, *n, errors) {
                    if let Some(p) = draft.phases.get_mut(n) {
                        from.insert(*n, std::mem::replace(&mut p.weight, *w));
                    }
                }
            }
            draft.events.push(ObjectiveEvent::WeightsRevised {
                from,
                to: weights_hundredths.clone(),
                revision: revision.clone(),
            });
        }
        RevisionChange::AddPhase { phase, .. } => {
            add_phase(draft, phase, revision, path, errors);
        }
        RevisionChange::WithdrawPhase { phase: n, .. } => {
            if active_phase(draft, *n, errors) {
                if let Some(p) = draft.phases.get_mut(n) {
                    p.withdrawn = true;
                    draft.events.push(ObjectiveEvent::PhaseWithdrawn {
                        phase: *n,
                        revision: revision.clone(),
                    });
                }
            }
        }
        RevisionChange::WithdrawObjective { .. } => {
            draft.withdrawn = true;
            draft.events.push(ObjectiveEvent::ObjectiveWithdrawn {
                revision: revision.clone(),
            });
        }
        RevisionChange::AddObjective { .. } => {}
    }
}

fn add_phase(
    draft: &mut Draft,
    phase: &PhaseSpec,
    revision: &RevisionRef,
    path: &str,
    errors: &mut Vec<FieldError>,
) {
    if draft.phases.contains_key(&phase.number) || phase.number == 0 {
        errors.push(FieldError::new(
            format!("{path}.phase.number"),
            format!("{} already has a phase {}", draft.key, phase.number),
        ));
        return;
    }
    if phase.description.trim().is_empty() {
        errors.push(FieldError::new(
            format!("{path}.phase.description"),
            "must not be empty",
        ));
    }
    // A negative weight balanced by a raise elsewhere would still sum to 100.
    if let Some(message) = weight_out_of_range(phase.weight_hundredths) {
        errors.push(FieldError::new(format!("{path}.phase.weight"), message));
    }
    draft.phases.insert(
        phase.number,
        DraftPhase {
            weight: phase.weight_hundredths,
            deadline: phase.deadline,
            withdrawn: false,
        },
    );
    draft.events.push(ObjectiveEvent::PhaseAdded {
        phase: phase.clone(),
        revision: revision.clone(),
    });
}

/// Why `weight` cannot be a phase's weight, if it cannot.
fn weight_out_of_range(weight: Hundredths) -> Option<String> {
    (weight < Hundredths::ZERO || weight > Hundredths::HUNDRED)
        .then(|| format!("{weight} is not a weight between 0 and 100"))
}

fn clean(note: Option<String>) -> Option<String> {
    note.map(|n| n.trim().to_string()).filter(|n| !n.is_empty())
}

#[cfg(test)]
#[path = "commands_tests.rs"]
mod tests;
