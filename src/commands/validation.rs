//! Validations by the *Nucleo di Valutazione*: of the plan (ex ante) and of the
//! results (ex post, with unverified and neutralised phases).

use traguardo_events::domain::ObjectiveEvent;
use traguardo_events::model::{Role, ValidationOutcome, ValidationStage};
use traguardo_projections::Objective;

use super::{clean, limits, DomainError, Principal};
use crate::error::FieldError;

/// A validation as asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationRequest {
    /// Stage.
    pub stage: ValidationStage,
    /// Outcome.
    pub outcome: ValidationOutcome,
    /// Declared complete, not accepted.
    pub unverified_phases: Vec<u32>,
    /// Neutralised (*sterilizzazione*).
    pub neutralised_phases: Vec<u32>,
    /// Note (mandatory when anything is unverified, neutralised or rejected).
    pub note: Option<String>,
    /// The minutes, e.g. "Verbale n. 3 del 15/03/2023".
    pub reference: Option<String>,
}

/// Decides a validation of `objective`.
///
/// # Errors
/// A [`DomainError`] when the principal is not a validator or recorded a
/// completion of the objective, the objective was withdrawn, its plan was
/// validated already and not revised since, or the lists of phases or the note are
/// wrong (every such problem at once).
pub fn decide_validation(
    objective: &Objective,
    principal: &Principal,
    request: ValidationRequest,
) -> Result<ObjectiveEvent, DomainError> {
    let ValidationRequest {
        stage,
        outcome,
        mut unverified_phases,
        mut neutralised_phases,
        note,
        reference,
    } = request;
    let key = &objective.key();
    if principal.role != Role::Validator {
        return Err(DomainError::NotValidator {
            actor: principal.name.clone(),
            role: principal.role,
        });
    }
    if objective.withdrawn().is_some() {
        return Err(DomainError::ObjectiveWithdrawn {
            key: key.to_string(),
        });
    }
    if let Some(phase) = objective.phases().iter().find(|p| {
        p.completed()
            .is_some_and(|c| c.actor_id == principal.actor_id)
    }) {
        return Err(DomainError::ValidatesOwnCompletion {
            actor: principal.name.clone(),
            key: key.to_string(),
            phase: phase.number,
        });
    }
    let mut errors = Vec::new();
    for (field, list) in [
        ("unverified_phases", &unverified_phases),
        ("neutralised_phases", &neutralised_phases),
    ] {
        errors.extend(limits::list(field, list));
    }
    errors.extend(limits::optional_text(
        "note",
        note.as_deref(),
        limits::NOTE_CHARS,
    ));
    errors.extend(limits::optional_text(
        "reference",
        reference.as_deref(),
        limits::NAME_CHARS,
    ));
    if !errors.is_empty() {
        return Err(DomainError::Invalid(errors));
    }
    let note = clean(note);
    let reference = clean(reference);
    unverified_phases.sort_unstable();
    unverified_phases.dedup();
    neutralised_phases.sort_unstable();
    neutralised_phases.dedup();
    if stage == ValidationStage::Plan {
        if !unverified_phases.is_empty() || !neutralised_phases.is_empty() {
            errors.push(FieldError::new(
                "stage",
                "le fasi non verificate e sterilizzate appartengono alla validazione finale",
            ));
        }
        let last_plan = objective
            .validations()
            .iter()
            .rev()
            .find(|v| v.stage == ValidationStage::Plan);
        if let Some(last) = last_plan {
            if objective
                .last_revision_seq()
                .is_none_or(|r| r < last.recorded.seq)
            {
                return Err(DomainError::PlanAlreadyValidated {
                    key: key.to_string(),
                    on: traguardo_events::clock::local_date(&last.recorded.recorded_at),
                });
            }
        }
    }
    for (field, numbers) in [
        ("unverified_phases", &unverified_phases),
        ("neutralised_phases", &neutralised_phases),
    ] {
        for n in numbers.iter() {
            let problem = match objective.phase(*n) {
                None => Some(format!("l'obiettivo {key} non ha la fase {n}")),
                Some(p) if p.is_withdrawn() => Some(format!("la fase {n} è stata stralciata")),
                Some(p) if field == "unverified_phases" && p.completed().is_none() => {
                    Some(format!("la fase {n} non è stata dichiarata completata"))
                }
                Some(_) => None,
            };
            errors.extend(problem.map(|message| FieldError::new(field, message)));
        }
    }
    if let Some(n) = unverified_phases
        .iter()
        .find(|n| neutralised_phases.contains(n))
    {
        errors.push(FieldError::new(
            "neutralised_phases",
            format!("la fase {n} non può essere insieme non verificata e sterilizzata"),
        ));
    }
    let active = objective
        .phases()
        .iter()
        .filter(|p| !p.is_withdrawn())
        .count();
    if active > 0 && neutralised_phases.len() >= active {
        errors.push(FieldError::new(
            "neutralised_phases",
            "almeno una fase deve restare da valutare",
        ));
    }
    let needs_note = !unverified_phases.is_empty()
        || !neutralised_phases.is_empty()
        || outcome == ValidationOutcome::Rejected;
    if needs_note && note.is_none() {
        errors.push(FieldError::new(
            "note",
            "la nota è obbligatoria quando ci sono fasi non verificate o sterilizzate, o l'esito è respinto",
        ));
    }
    if !errors.is_empty() {
        return Err(DomainError::Invalid(errors));
    }
    Ok(ObjectiveEvent::ValidationRecorded {
        stage,
        outcome,
        unverified_phases,
        neutralised_phases,
        note,
        reference,
    })
}
