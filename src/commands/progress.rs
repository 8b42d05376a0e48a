//! Progress recorded by a unit's manager: one function per command. Each checks
//! who may act, then the state of the objective and phase, then the input.

use chrono::NaiveDate;
use traguardo_events::domain::ObjectiveEvent;
use traguardo_events::model::{Backfill, Hundredths, IndicatorKind, Role};
use traguardo_projections::italian;
use traguardo_projections::objective::Phase;
use traguardo_projections::Objective;

use super::{clean, limits, DomainError, Principal};
use crate::error::FieldError;

/// Only a manager of the objective's unit records its progress, or the control
/// office when it declares a loading of past records (*caricamento storico*);
/// and nothing is recorded on a withdrawn objective.
fn may_record(
    objective: &Objective,
    principal: &Principal,
    backfill: Option<&Backfill>,
) -> Result<(), DomainError> {
    let declared_backfill = backfill.is_some() && principal.role == Role::Admin;
    if !declared_backfill && !principal.manages(objective.unit()) {
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

/// What every progress entry carries besides its own facts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Entry {
    /// The manager's note (or a retraction's reason).
    pub note: Option<String>,
    /// A declared loading of past records, by the control office.
    pub backfill: Option<Backfill>,
}

/// The problems with what an entry carries: its valid date (not after today,
/// within the plan's years), its note, its back-fill declaration.
fn entry_problems(
    objective: &Objective,
    principal: &Principal,
    today: NaiveDate,
    on: Option<NaiveDate>,
    note_field: &str,
    entry: &Entry,
) -> Vec<FieldError> {
    let mut problems = Vec::new();
    if let Some(on) = on {
        if on > today {
            problems.push(FieldError::new(
                "on",
                format!(
                    "il {} è dopo oggi ({}): un fatto si registra dopo che è avvenuto",
                    italian::date(on),
                    italian::date(today)
                ),
            ));
        }
        problems.extend(limits::date("on", on, objective.year()));
    }
    problems.extend(limits::optional_text(
        note_field,
        entry.note.as_deref(),
        limits::NOTE_CHARS,
    ));
    if let Some(backfill) = &entry.backfill {
        if principal.role == Role::Admin {
            problems.extend(limits::backfill("backfill", backfill));
        } else {
            problems.push(FieldError::new(
                "backfill",
                "solo Programmazione e Controllo (ruolo admin) dichiara un caricamento storico",
            ));
        }
    }
    problems
}

fn refuse(problems: Vec<FieldError>) -> Result<(), DomainError> {
    if problems.is_empty() {
        Ok(())
    } else {
        Err(DomainError::Invalid(problems))
    }
}

/// Decides the start of a phase.
///
/// # Errors
/// A [`DomainError`] when the principal may not act, the phase does not exist or
/// was withdrawn, `on` or the note is out of bounds, or the phase was started or
/// completed already.
pub fn start(
    objective: &Objective,
    principal: &Principal,
    today: NaiveDate,
    phase: u32,
    on: NaiveDate,
    entry: Entry,
) -> Result<ObjectiveEvent, DomainError> {
    may_record(objective, principal, entry.backfill.as_ref())?;
    let p = active_phase(objective, phase)?;
    refuse(entry_problems(
        objective,
        principal,
        today,
        Some(on),
        "note",
        &entry,
    ))?;
    let key = objective.key().to_string();
    if let Some(started) = p.started() {
        return Err(DomainError::PhaseAlreadyStarted {
            key,
            phase,
            on: started.on,
        });
    }
    if let Some(done) = p.completed() {
        return Err(DomainError::PhaseAlreadyCompleted {
            key,
            phase,
            on: done.on,
        });
    }
    Ok(ObjectiveEvent::PhaseStarted {
        phase,
        on,
        note: clean(entry.note),
        backfill: entry.backfill.map(Box::new),
    })
}

/// Decides the completion of a phase, with its evidence.
///
/// # Errors
/// A [`DomainError`] when the principal may not act, the phase does not exist or
/// was withdrawn, `on`, the note or the evidence is out of bounds, it was
/// completed already, or `on` precedes its start.
pub fn complete(
    objective: &Objective,
    principal: &Principal,
    today: NaiveDate,
    phase: u32,
    on: NaiveDate,
    evidence: Vec<String>,
    entry: Entry,
) -> Result<ObjectiveEvent, DomainError> {
    may_record(objective, principal, entry.backfill.as_ref())?;
    let p = active_phase(objective, phase)?;
    let mut problems = entry_problems(objective, principal, today, Some(on), "note", &entry);
    problems.extend(limits::list("evidence", &evidence));
    for (i, e) in evidence.iter().enumerate() {
        problems.extend(limits::text(
            &format!("evidence[{i}]"),
            e,
            limits::NAME_CHARS,
        ));
    }
    refuse(problems)?;
    let key = objective.key().to_string();
    if let Some(done) = p.completed() {
        return Err(DomainError::PhaseAlreadyCompleted {
            key,
            phase,
            on: done.on,
        });
    }
    if let Some(started) = p.started().filter(|s| on < s.on) {
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
        note: clean(entry.note),
        evidence: evidence
            .into_iter()
            .filter(|e| !e.trim().is_empty())
            .collect(),
        backfill: entry.backfill.map(Box::new),
        actor_id: Some(principal.actor_id.clone()),
    })
}

/// Decides the withdrawal of a completion recorded in error; `entry.note` is its
/// reason, which is required.
///
/// # Errors
/// A [`DomainError`] when the principal may not act, the phase does not exist or
/// was withdrawn, the reason is empty or too long, or there is no completion to
/// withdraw.
pub fn retract(
    objective: &Objective,
    principal: &Principal,
    today: NaiveDate,
    phase: u32,
    entry: Entry,
) -> Result<ObjectiveEvent, DomainError> {
    may_record(objective, principal, entry.backfill.as_ref())?;
    let p = active_phase(objective, phase)?;
    let mut problems = entry_problems(objective, principal, today, None, "reason", &entry);
    if entry.note.as_deref().is_none_or(|r| r.trim().is_empty()) {
        problems.push(FieldError::new(
            "reason",
            "l'annullamento di un completamento richiede una motivazione",
        ));
    }
    refuse(problems)?;
    let Some(done) = p.completed() else {
        return Err(DomainError::NothingToRetract {
            key: objective.key().to_string(),
            phase,
        });
    };
    Ok(ObjectiveEvent::PhaseCompletionRetracted {
        phase,
        completed_on: done.on,
        reason: entry.note.unwrap_or_default().trim().to_string(),
        backfill: entry.backfill.map(Box::new),
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
    /// The finding, for a qualitative indicator.
    pub text: Option<String>,
    /// Note and back-fill.
    pub entry: Entry,
}

/// Decides the measurement of an indicator: a number (a value, or a ratio whose
/// value it gives exactly) for a ratio or threshold, a finding in words for a
/// qualitative one.
///
/// # Errors
/// A [`DomainError`] when the principal may not act, the indicator does not
/// exist or was withdrawn, or the measurement is not one its kind takes: every
/// problem with the input at once.
pub fn measure(
    objective: &Objective,
    principal: &Principal,
    today: NaiveDate,
    m: Measurement,
) -> Result<ObjectiveEvent, DomainError> {
    may_record(objective, principal, m.entry.backfill.as_ref())?;
    let Some(indicator) = objective
        .indicators()
        .iter()
        .find(|i| i.id == m.indicator && i.withdrawn_from.is_none())
    else {
        return Err(DomainError::UnknownIndicator {
            key: objective.key().to_string(),
            indicator: m.indicator,
        });
    };
    let mut problems = entry_problems(objective, principal, today, Some(m.on), "note", &m.entry);
    problems.extend(limits::optional_text(
        "text",
        m.text.as_deref(),
        limits::NOTE_CHARS,
    ));
    let text = clean(m.text.clone());
    if indicator.kind == IndicatorKind::Qualitative {
        if text.is_none() {
            problems.push(FieldError::new(
                "text",
                "un indicatore qualitativo si rileva con un testo",
            ));
        }
        for (field, given) in [
            ("value", m.value.is_some()),
            ("numerator", m.numerator.is_some()),
            ("denominator", m.denominator.is_some()),
        ] {
            if given {
                problems.push(FieldError::new(
                    field,
                    "un indicatore qualitativo non ha valori numerici: indicare text",
                ));
            }
        }
    } else {
        problems.extend(number_problems(&m, text.is_some()));
    }
    refuse(problems)?;
    Ok(ObjectiveEvent::IndicatorMeasured {
        indicator: m.indicator,
        on: m.on,
        value_hundredths: m.value,
        numerator: m.numerator,
        denominator: m.denominator,
        text,
        note: clean(m.entry.note),
        backfill: m.entry.backfill.map(Box::new),
    })
}

/// What is wrong with the numbers of a measurement of a ratio or a threshold.
fn number_problems(m: &Measurement, has_text: bool) -> Vec<FieldError> {
    let mut problems = Vec::new();
    if has_text {
        problems.push(FieldError::new(
            "text",
            "un indicatore numerico si rileva con un valore; il commento va in note",
        ));
    }
    for (field, term) in [("numerator", m.numerator), ("denominator", m.denominator)] {
        if term.is_some_and(|t| t > limits::RATIO_TERM_MAX) {
            problems.push(FieldError::new(
                field,
                format!("è più di {}", limits::RATIO_TERM_MAX),
            ));
        }
    }
    if m.value.is_some_and(|v| v.0.abs() > limits::VALUE_MAX.0) {
        problems.push(FieldError::new(
            "value",
            format!("è fuori dall'intervallo ±{}", limits::VALUE_MAX),
        ));
    }
    match (m.value, m.numerator, m.denominator) {
        (None, None, None) => problems.push(FieldError::new(
            "value",
            "indicare un valore, oppure numeratore e denominatore",
        )),
        (_, Some(_), None) | (_, None, Some(_)) => problems.push(FieldError::new(
            "denominator",
            "un rapporto richiede sia il numeratore sia il denominatore",
        )),
        (_, _, Some(0)) => {
            problems.push(FieldError::new("denominator", "deve essere maggiore di 0"))
        }
        (Some(value), Some(n), Some(d)) => {
            if let Some(exact) = Hundredths::percent_of(n, d).filter(|exact| *exact != value) {
                problems.push(FieldError::new(
                    "value",
                    format!(
                        "{} non è {n} su {d}, che fa {}",
                        italian::pct(value),
                        italian::pct(exact)
                    ),
                ));
            }
        }
        _ => {}
    }
    problems
}
