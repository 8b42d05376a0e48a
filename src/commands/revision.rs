//! Revisions (*rimodulazioni*) approved by the Giunta. A revision is decided by
//! turning each change into the events it would append and applying them, with
//! the read model's own `apply`, to a copy of each touched objective; the copies
//! are then checked as any objective is ([`super::shape`]). Every violation is
//! reported at once, and nothing is decided unless there are none.

use chrono::{NaiveDate, TimeZone, Utc};
use traguardo_events::domain::{ObjectiveEvent, PlanEvent, RevisionChange, RevisionRef};
use traguardo_events::model::{objective_stream, ObjectiveSpec, PhaseSpec};
use traguardo_events::RecordedEvent;
use traguardo_projections::objective::Indicator;
use traguardo_projections::{italian, Objective, Registry};
use uuid::Uuid;

use super::shape::{self, PhaseShape, ShapeProblem};
use super::{limits, DomainError, Principal};
use crate::error::{AppError, FieldError};

/// The most changes one revision may hold: a Giunta's act revises a plan of a
/// few hundred objectives, not tens of thousands of changes at once.
pub const MAX_CHANGES: usize = 500;

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

/// An objective the revision touches: a copy of its folded state with the
/// proposed events applied, and those events.
struct Touched {
    objective: Objective,
    /// The stream version decided on; none for an objective the revision adds.
    base_version: Option<u64>,
    events: Vec<ObjectiveEvent>,
}

impl Touched {
    /// Applies a proposed event to the copy, as the read model will once it is
    /// appended.
    fn propose(&mut self, event: ObjectiveEvent, today: NaiveDate) -> Result<(), AppError> {
        let recorded = proposed(
            self.objective.key(),
            self.objective.version() + 1,
            self.objective.last_seq() + 1,
            today,
        );
        self.objective.apply(&recorded.envelope(), &event)?;
        self.events.push(event);
        Ok(())
    }
}

/// The envelope a proposed event would have: `apply` reads its seq, version and
/// who and when, never its data. The seq only has to follow the objective's last.
fn proposed(key: &str, version: u64, seq: u64, today: NaiveDate) -> RecordedEvent {
    let midnight = today.and_hms_opt(0, 0, 0).unwrap_or_default();
    RecordedEvent {
        seq,
        id: Uuid::nil(),
        stream: objective_stream(key),
        version,
        event_type: String::new(),
        schema: 1,
        data: serde_json::Value::Null,
        actor: String::new(),
        role: String::new(),
        recorded_at: Utc.from_utc_datetime(&midnight),
        correlation: None,
        prev_hash: String::new(),
        hash: String::new(),
    }
}

/// Decides a revision of plan `year`: every change is checked, and after all are
/// applied every touched objective must have weights summing to exactly 100 and no
/// phase deadline after its final deadline. Every violation is reported at once.
///
/// # Errors
/// [`DomainError::NotAdmin`] for a non-admin, [`DomainError::UnknownPlan`] for an
/// unknown plan, [`DomainError::Invalid`] with every violation otherwise;
/// [`AppError::Projection`] if a proposed event could not be applied (a bug).
pub fn decide_revision(
    registry: &Registry,
    year: i32,
    request: &RevisionRequest,
    principal: &Principal,
    today: NaiveDate,
    id: Uuid,
) -> Result<RevisionDecision, AppError> {
    principal.require_admin("registrare rimodulazioni")?;
    let plan = registry
        .plan(year)
        .ok_or(DomainError::UnknownPlan { year })?;
    super::ensure_open(registry, year)?;
    let mut errors = Vec::new();
    if request.act.trim().is_empty() {
        errors.push(FieldError::new(
            "act",
            "l'atto della rimodulazione è obbligatorio",
        ));
    }
    errors.extend(limits::text("act", &request.act, limits::NAME_CHARS));
    if request.reason.trim().is_empty() {
        errors.push(FieldError::new("reason", "la motivazione è obbligatoria"));
    }
    errors.extend(limits::text("reason", &request.reason, limits::NOTE_CHARS));
    if request.changes.len() > MAX_CHANGES {
        errors.push(FieldError::new(
            "changes",
            format!(
                "una rimodulazione ha al massimo {MAX_CHANGES} modifiche, non {}",
                request.changes.len()
            ),
        ));
        return Err(DomainError::Invalid(errors).into());
    }
    if request.changes.is_empty() {
        errors.push(FieldError::new(
            "changes",
            "una rimodulazione richiede almeno una modifica",
        ));
    }
    if let Some(date) = request.act_date.filter(|d| *d > today) {
        errors.push(FieldError::new(
            "act_date",
            format!(
                "il {} è dopo oggi ({}): un atto si registra dopo la sua adozione",
                italian::date(date),
                italian::date(today)
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
    let mut touched: Vec<Touched> = Vec::new();
    for (i, change) in request.changes.iter().enumerate() {
        let path = format!("changes[{i}]");
        let key = change.objective_key();
        let index = match touched.iter().position(|t| t.objective.key() == key) {
            Some(index) => Some(index),
            None => match (change, registry.objective(&key)) {
                (RevisionChange::AddObjective { .. }, Some(_)) => {
                    errors.push(FieldError::new(
                        &path,
                        format!("l'obiettivo {key} esiste già"),
                    ));
                    None
                }
                (RevisionChange::AddObjective { .. }, None) => None,
                (_, Some(objective)) if objective.year() != year => {
                    errors.push(FieldError::new(
                        format!("{path}.objective"),
                        format!("l'obiettivo {key} appartiene al piano {}", objective.year()),
                    ));
                    None
                }
                (_, Some(objective)) => {
                    if let Some(last) = objective
                        .last_revision_date()
                        .filter(|d| *d > in_force_from)
                    {
                        errors.push(FieldError::new(
                            "act_date",
                            format!(
                                "il {} precede il {}, data di una rimodulazione già applicata a {key}",
                                italian::date(in_force_from),
                                italian::date(last)
                            ),
                        ));
                    }
                    touched.push(Touched {
                        objective: objective.clone(),
                        base_version: Some(objective.version()),
                        events: Vec::new(),
                    });
                    Some(touched.len() - 1)
                }
                (_, None) => {
                    errors.push(FieldError::new(
                        format!("{path}.objective"),
                        format!("non esiste l'obiettivo {key}"),
                    ));
                    None
                }
            },
        };
        if let RevisionChange::AddObjective { objective } = change {
            if index.is_some() {
                errors.push(FieldError::new(
                    &path,
                    format!("l'obiettivo {key} esiste già"),
                ));
                continue;
            }
            check_new_objective(plan, objective, &path, &mut errors);
            let event = ObjectiveEvent::ObjectiveDefined {
                objective: objective.clone(),
                revision: Some(revision.clone()),
            };
            let defined =
                Objective::define(&proposed(&key, 1, 1, today).envelope(), event.clone())?;
            touched.push(Touched {
                objective: defined,
                base_version: None,
                events: vec![event],
            });
            continue;
        }
        let Some(index) = index else { continue };
        let t = &mut touched[index];
        if t.objective.withdrawn().is_some() {
            errors.push(FieldError::new(
                &path,
                format!("l'obiettivo {key} è stato stralciato"),
            ));
            continue;
        }
        let before = errors.len();
        let event = change_event(&t.objective, change, &revision, &path, &mut errors);
        // A change with a problem is not applied: the copy only ever holds events
        // the read model could fold.
        if let (Some(event), true) = (event, errors.len() == before) {
            t.propose(event, today)?;
        }
    }
    for t in touched.iter().filter(|t| t.objective.withdrawn().is_none()) {
        let o = &t.objective;
        let active: Vec<_> = o.phases().iter().filter(|p| !p.is_withdrawn()).collect();
        let shapes: Vec<PhaseShape> = active
            .iter()
            .map(|p| PhaseShape {
                number: p.number,
                weight: *p.weight.latest(),
                deadline: *p.deadline.latest(),
            })
            .collect();
        for problem in shape::check(&shapes, *o.final_deadline().latest()) {
            // Weights out of range and numbers are reported at the change that
            // brought them; what only the whole revision shows is reported here.
            let message = match &problem {
                ShapeProblem::WeightsSum { .. } | ShapeProblem::DeadlineAfterFinal { .. } => {
                    format!("dopo la rimodulazione, per {}: {problem}", o.key())
                }
                ShapeProblem::WeightOutOfRange { .. } | ShapeProblem::Numbering { .. } => continue,
            };
            errors.push(FieldError::new(o.key(), message));
        }
    }
    if !errors.is_empty() {
        return Err(DomainError::Invalid(errors).into());
    }
    let keys: Vec<String> = touched
        .iter()
        .map(|t| t.objective.key().to_string())
        .collect();
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
        objectives: touched
            .into_iter()
            .map(|t| (t.objective.key().to_string(), t.base_version, t.events))
            .collect(),
    })
}

/// An objective added by a revision belongs to the plan's year and one of its
/// units, and has the shape of any objective.
fn check_new_objective(
    plan: &traguardo_projections::Plan,
    objective: &ObjectiveSpec,
    path: &str,
    errors: &mut Vec<FieldError>,
) {
    if objective.year != plan.year {
        errors.push(FieldError::new(
            format!("{path}.objective.year"),
            format!("{} non è l'anno del piano, {}", objective.year, plan.year),
        ));
    }
    if plan.unit(&objective.unit).is_none() {
        errors.push(FieldError::new(
            format!("{path}.objective.unit"),
            format!("l'unità {} non è tra le unità del piano", objective.unit),
        ));
    }
    let shapes: Vec<PhaseShape> = objective.phases.iter().map(phase_shape).collect();
    for problem in shape::check(&shapes, objective.final_deadline) {
        let field = match &problem {
            ShapeProblem::WeightOutOfRange { index, .. } => {
                format!("{path}.objective.phases[{index}].weight")
            }
            ShapeProblem::Numbering { .. } => format!("{path}.objective.phases"),
            // Reported for the whole revision, at the objective's key.
            ShapeProblem::WeightsSum { .. } | ShapeProblem::DeadlineAfterFinal { .. } => continue,
        };
        errors.push(FieldError::new(field, problem.to_string()));
    }
}

fn phase_shape(p: &PhaseSpec) -> PhaseShape {
    PhaseShape {
        number: p.number,
        weight: p.weight_hundredths,
        deadline: p.deadline,
    }
}

/// A text a change requires: not blank, within its limits.
fn required_text(field: &str, value: &str, max: usize) -> Vec<FieldError> {
    if value.trim().is_empty() {
        vec![FieldError::new(field, "non può essere vuoto")]
    } else {
        limits::text(field, value, max).into_iter().collect()
    }
}

/// The indicator `id` of `objective`, if it exists and was not withdrawn.
fn active_indicator<'o>(
    objective: &'o Objective,
    id: &str,
    path: &str,
    errors: &mut Vec<FieldError>,
) -> Option<&'o Indicator> {
    let key = objective.key();
    match objective.indicators().iter().find(|i| i.id == id) {
        None => {
            errors.push(FieldError::new(
                format!("{path}.indicator"),
                format!("l'obiettivo {key} non ha l'indicatore {id}"),
            ));
            None
        }
        Some(i) if i.withdrawn_from.is_some() => {
            errors.push(FieldError::new(
                format!("{path}.indicator"),
                format!("l'indicatore {id} di {key} è stato stralciato"),
            ));
            None
        }
        Some(i) => Some(i),
    }
}

/// The event one change appends to `objective` (as revised so far), or the
/// problems that stop it.
fn change_event(
    objective: &Objective,
    change: &RevisionChange,
    revision: &RevisionRef,
    path: &str,
    errors: &mut Vec<FieldError>,
) -> Option<ObjectiveEvent> {
    let key = &objective.key();
    let active_phase = |n: u32, errors: &mut Vec<FieldError>| match objective.phase(n) {
        None => {
            errors.push(FieldError::new(
                format!("{path}.phase"),
                format!("l'obiettivo {key} non ha la fase {n}"),
            ));
            None
        }
        Some(p) if p.is_withdrawn() => {
            errors.push(FieldError::new(
                format!("{path}.phase"),
                format!("la fase {n} di {key} è stata stralciata"),
            ));
            None
        }
        Some(p) => Some(p),
    };
    let revision = revision.clone();
    match change {
        RevisionChange::Deadline {
            phase: Some(n),
            new_deadline,
            ..
        } => active_phase(*n, errors).map(|p| ObjectiveEvent::DeadlineRevised {
            phase: Some(*n),
            from: *p.deadline.latest(),
            to: *new_deadline,
            revision,
        }),
        RevisionChange::Deadline {
            phase: None,
            new_deadline,
            ..
        } => Some(ObjectiveEvent::DeadlineRevised {
            phase: None,
            from: *objective.final_deadline().latest(),
            to: *new_deadline,
            revision,
        }),
        RevisionChange::Weights {
            weights_hundredths, ..
        } => {
            if weights_hundredths.is_empty() {
                errors.push(FieldError::new(
                    format!("{path}.weights"),
                    "nessun peso indicato",
                ));
                return None;
            }
            if let Some(problem) =
                limits::size(&format!("{path}.weights"), weights_hundredths.len())
            {
                errors.push(problem);
                return None;
            }
            let mut from = std::collections::BTreeMap::new();
            for (n, w) in weights_hundredths {
                if let Some(problem) = shape::weight_problem(0, *w) {
                    errors.push(FieldError::new(
                        format!("{path}.weights.{n}"),
                        problem.to_string(),
                    ));
                    continue;
                }
                if let Some(p) = active_phase(*n, errors) {
                    from.insert(*n, *p.weight.latest());
                }
            }
            Some(ObjectiveEvent::WeightsRevised {
                from,
                to: weights_hundredths.clone(),
                revision,
            })
        }
        RevisionChange::AddPhase { phase, .. } => {
            if objective.phase(phase.number).is_some() || phase.number == 0 {
                errors.push(FieldError::new(
                    format!("{path}.phase.number"),
                    format!("l'obiettivo {key} ha già una fase {}", phase.number),
                ));
                return None;
            }
            if phase.description.trim().is_empty() {
                errors.push(FieldError::new(
                    format!("{path}.phase.description"),
                    "non può essere vuota",
                ));
            }
            // A negative weight balanced by a raise elsewhere would still sum to 100.
            if let Some(problem) = shape::weight_problem(0, phase.weight_hundredths) {
                errors.push(FieldError::new(
                    format!("{path}.phase.weight"),
                    problem.to_string(),
                ));
            }
            Some(ObjectiveEvent::PhaseAdded {
                phase: phase.clone(),
                revision,
            })
        }
        RevisionChange::WithdrawPhase { phase: n, .. } => {
            active_phase(*n, errors).map(|_| ObjectiveEvent::PhaseWithdrawn {
                phase: *n,
                revision,
            })
        }
        RevisionChange::WithdrawObjective { .. } => {
            Some(ObjectiveEvent::ObjectiveWithdrawn { revision })
        }
        RevisionChange::AddObjective { .. } => None,
        RevisionChange::Manager { manager, .. } => {
            let problems = required_text(&format!("{path}.manager"), manager, limits::NAME_CHARS);
            let ok = problems.is_empty();
            errors.extend(problems);
            ok.then(|| ObjectiveEvent::ManagerChanged {
                from: objective.manager_at_latest().to_string(),
                to: manager.trim().to_string(),
                revision,
            })
        }
        RevisionChange::Title { title, .. } => {
            let problems = required_text(&format!("{path}.title"), title, limits::NAME_CHARS * 5);
            let ok = problems.is_empty();
            errors.extend(problems);
            ok.then(|| ObjectiveEvent::TitleChanged {
                from: objective.title_at_latest().to_string(),
                to: title.trim().to_string(),
                revision,
            })
        }
        RevisionChange::PhaseDescription {
            phase: n,
            description,
            ..
        } => {
            let p = active_phase(*n, errors)?;
            let problems = required_text(
                &format!("{path}.description"),
                description,
                limits::DESCRIPTION_CHARS,
            );
            let ok = problems.is_empty();
            errors.extend(problems);
            ok.then(|| ObjectiveEvent::PhaseDescriptionChanged {
                phase: *n,
                from: p.description.latest().to_string(),
                to: description.trim().to_string(),
                revision,
            })
        }
        RevisionChange::IndicatorTarget {
            indicator,
            target_hundredths,
            ..
        } => {
            let i = active_indicator(objective, indicator, path, errors)?;
            if let Some(problem) = target_hundredths.and_then(|t| shape::weight_problem(0, t)) {
                errors.push(FieldError::new(
                    format!("{path}.target"),
                    problem.to_string(),
                ));
                return None;
            }
            Some(ObjectiveEvent::IndicatorTargetChanged {
                indicator: indicator.clone(),
                from: *i.target.latest(),
                to: *target_hundredths,
                revision,
            })
        }
        RevisionChange::AddIndicator { indicator, .. } => {
            let before = errors.len();
            if objective.indicators().iter().any(|i| i.id == indicator.id) {
                errors.push(FieldError::new(
                    format!("{path}.indicator.id"),
                    format!("l'obiettivo {key} ha già un indicatore {}", indicator.id),
                ));
            }
            errors.extend(required_text(
                &format!("{path}.indicator.id"),
                &indicator.id,
                limits::NAME_CHARS,
            ));
            errors.extend(required_text(
                &format!("{path}.indicator.description"),
                &indicator.description,
                limits::DESCRIPTION_CHARS,
            ));
            (errors.len() == before).then(|| ObjectiveEvent::IndicatorAdded {
                indicator: indicator.clone(),
                revision,
            })
        }
        RevisionChange::WithdrawIndicator { indicator, .. } => {
            active_indicator(objective, indicator, path, errors).map(|_| {
                ObjectiveEvent::IndicatorWithdrawn {
                    indicator: indicator.clone(),
                    revision,
                }
            })
        }
    }
}
