//! Progress recorded by a unit's manager: one function per command. Each checks
//! who may act, then the state of the objective and phase, then the input.

use chrono::NaiveDate;
use traguardo_events::domain::ObjectiveEvent;
use traguardo_events::model::Hundredths;
use traguardo_projections::italian;
use traguardo_projections::objective::Phase;
use traguardo_projections::Objective;

use super::{clean, DomainError, Principal};
use crate::error::FieldError;

/// Only a manager of the objective's unit records its progress, and nothing is
/// recorded on a withdrawn objective.
fn may_record(objective: &Objective, principal: &Principal) -> Result<(), DomainError> {
    if !principal.manages(objective.unit()) {
        return Err(DomainError::NotManagerOf {
            key: objective.key().to_string(),
            unit: objective.unit().to_string(),
            actor: principal.name.clone(),
            role: principal.role,
            units: principal.units.clone(),
        });
    }
    if objective.withdrawn().is_some() {
        return Err(DomainError::ObjectiveWithdrawn {
            key: objective.key().to_string(),
        });
    }
    Ok(())
}

/// The phase numbered `number`, if it exists and was not withdrawn.
fn active_phase(objective: &Objective, number: u32) -> Result<&Phase, DomainError> {
    let key = || objective.key().to_string();
    let phase = objective
        .phase(number)
        .ok_or_else(|| DomainError::UnknownPhase {
            key: key(),
            phase: number,
        })?;
    if phase.is_withdrawn() {
        return Err(DomainError::PhaseWithdrawn {
            key: key(),
            phase: number,
        });
    }
    Ok(phase)
}

/// What a start or a completion of phase `number` on `on` needs first: a
/// principal who may record, an active phase, a date not after today.
fn phase_fact<'o>(
    objective: &'o Objective,
    principal: &Principal,
    today: NaiveDate,
    number: u32,
    on: NaiveDate,
) -> Result<&'o Phase, DomainError> {
    may_record(objective, principal)?;
    let phase = active_phase(objective, number)?;
    not_future(on, today)?;
    Ok(phase)
}

/// A fact is recorded once it has happened: its date is not after today.
fn not_future(on: NaiveDate, today: NaiveDate) -> Result<(), DomainError> {
    if on > today {
        return Err(DomainError::invalid(
            "on",
            format!(
                "il {} è dopo oggi ({}): un fatto si registra dopo che è avvenuto",
                italian::date(on),
                italian::date(today)
            ),
        ));
    }
    Ok(())
}

/// Decides the start of a phase.
///
/// # Errors
/// A [`DomainError`] when the principal may not act, the phase does not exist or
/// was withdrawn, it was started or completed already, or `on` is after today.
pub fn start(
    objective: &Objective,
    principal: &Principal,
    today: NaiveDate,
    phase: u32,
    on: NaiveDate,
    note: Option<String>,
) -> Result<ObjectiveEvent, DomainError> {
    let p = phase_fact(objective, principal, today, phase, on)?;
    let key = objective.key().to_string();
    if let Some(started) = &p.started {
        return Err(DomainError::PhaseAlreadyStarted {
            key,
            phase,
            on: started.on,
        });
    }
    if let Some(done) = &p.completed {
        return Err(DomainError::PhaseAlreadyCompleted {
            key,
            phase,
            on: done.on,
        });
    }
    Ok(ObjectiveEvent::PhaseStarted {
        phase,
        on,
        note: clean(note),
    })
}

/// Decides the completion of a phase, with its evidence.
///
/// # Errors
/// A [`DomainError`] when the principal may not act, the phase does not exist or
/// was withdrawn, it was completed already, `on` precedes its start or is after
/// today.
pub fn complete(
    objective: &Objective,
    principal: &Principal,
    today: NaiveDate,
    phase: u32,
    on: NaiveDate,
    note: Option<String>,
    evidence: Vec<String>,
) -> Result<ObjectiveEvent, DomainError> {
    let p = phase_fact(objective, principal, today, phase, on)?;
    let key = objective.key().to_string();
    if let Some(done) = &p.completed {
        return Err(DomainError::PhaseAlreadyCompleted {
            key,
            phase,
            on: done.on,
        });
    }
    if let Some(started) = p.started.as_ref().filter(|s| on < s.on) {
        return Err(DomainError::CompletionBeforeStart {
            key,
            phase,
            on,
            started: started.on,
        });
    }
    Ok(ObjectiveEvent::PhaseCompleted {
        phase,
        on,
        note: clean(note),
        evidence: evidence
            .into_iter()
            .filter(|e| !e.trim().is_empty())
            .collect(),
    })
}

/// Decides the withdrawal of a completion recorded in error.
///
/// # Errors
/// A [`DomainError`] when the principal may not act, the phase does not exist or
/// was withdrawn, the reason is empty, or there is no completion to withdraw.
pub fn retract(
    objective: &Objective,
    principal: &Principal,
    phase: u32,
    reason: String,
) -> Result<ObjectiveEvent, DomainError> {
    may_record(objective, principal)?;
    let p = active_phase(objective, phase)?;
    if reason.trim().is_empty() {
        return Err(DomainError::invalid(
            "reason",
            "l'annullamento di un completamento richiede una motivazione",
        ));
    }
    let Some(done) = &p.completed else {
        return Err(DomainError::NothingToRetract {
            key: objective.key().to_string(),
            phase,
        });
    };
    Ok(ObjectiveEvent::PhaseCompletionRetracted {
        phase,
        completed_on: done.on,
        reason: reason.trim().to_string(),
    })
}

/// A measurement of an indicator, as asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Measurement {
    /// Indicator id.
    pub indicator: String,
    /// Valid date.
    pub on: NaiveDate,
    /// Value, when given directly.
    pub value: Option<Hundredths>,
    /// n° a.
    pub numerator: Option<u64>,
    /// n° b.
    pub denominator: Option<u64>,
    /// Note.
    pub note: Option<String>,
}

/// Decides the measurement of an indicator.
///
/// # Errors
/// A [`DomainError`] when the principal may not act, the indicator does not
/// exist, `on` is after today, or the value is neither given nor a ratio.
pub fn measure(
    objective: &Objective,
    principal: &Principal,
    today: NaiveDate,
    m: Measurement,
) -> Result<ObjectiveEvent, DomainError> {
    may_record(objective, principal)?;
    if !objective
        .indicators()
        .iter()
        .any(|i| i.spec.id == m.indicator)
    {
        return Err(DomainError::UnknownIndicator {
            key: objective.key().to_string(),
            indicator: m.indicator,
        });
    }
    not_future(m.on, today)?;
    let problem = match (m.value, m.numerator, m.denominator) {
        (None, None, None) => Some(FieldError::new(
            "value",
            "indicare un valore, oppure numeratore e denominatore",
        )),
        (_, Some(_), None) | (_, None, Some(_)) => Some(FieldError::new(
            "denominator",
            "un rapporto richiede sia il numeratore sia il denominatore",
        )),
        (_, _, Some(0)) => Some(FieldError::new("denominator", "deve essere maggiore di 0")),
        _ => None,
    };
    if let Some(problem) = problem {
        return Err(DomainError::Invalid(vec![problem]));
    }
    Ok(ObjectiveEvent::IndicatorMeasured {
        indicator: m.indicator,
        on: m.on,
        value_hundredths: m.value,
        numerator: m.numerator,
        denominator: m.denominator,
        note: clean(m.note),
    })
}
