//! The year-end seal (*chiusura dell'esercizio*, DESIGN.md §9): the Nucleo di
//! Valutazione seals a plan year at a signed checkpoint of the log, and from then
//! on the year takes no more writes.
//!
//! [`ensure_open`] is the one home of that rule: every decide path that writes to
//! a year — objective commands through [`decide_in_year`] (progress,
//! measurements, validations), revisions ([`super::decide_revision`]) and the
//! seal itself — asks it first.

use chrono::NaiveDate;
use traguardo_events::domain::{ObjectiveEvent, PlanEvent};
use traguardo_events::model::Role;
use traguardo_projections::{Objective, Registry};

use super::{decide, DomainError, ObjectiveCommand, Principal};

/// The signed checkpoint a seal names: what the log's key signed, as served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedCheckpoint {
    /// The checkpoint's origin: the name of the log's key.
    pub origin: String,
    /// The tree size: the head seq it was signed at.
    pub size: u64,
    /// The root at that size, base64.
    pub root: String,
    /// The signed note, with its cosignatures.
    pub note: String,
}

/// Refuses any write to a sealed year (*esercizio chiuso*).
///
/// # Errors
/// [`DomainError::YearSealed`] once the year's `plan_sealed` is in the log.
pub fn ensure_open(registry: &Registry, year: i32) -> Result<(), DomainError> {
    match registry.plan(year).and_then(|p| p.sealed.as_ref()) {
        Some(seal) => Err(DomainError::YearSealed {
            year,
            on: traguardo_events::clock::local_date(&seal.recorded_at),
            size: seal.size,
        }),
        None => Ok(()),
    }
}

/// Decides a command on an objective within its plan year: the year must not be
/// sealed, then [`decide`]. What the application calls for every objective write.
///
/// # Errors
/// [`DomainError::YearSealed`], or what [`decide`] refuses.
pub fn decide_in_year(
    registry: &Registry,
    objective: &Objective,
    command: &ObjectiveCommand,
    principal: &Principal,
    today: NaiveDate,
) -> Result<Vec<ObjectiveEvent>, DomainError> {
    ensure_open(registry, objective.year())?;
    decide(objective, command, principal, today)
}

/// Decides the seal of `year` at `checkpoint`: only the Nucleo seals, a plan
/// that exists, once. Returns the plan stream's version it was decided on and
/// the event.
///
/// # Errors
/// [`DomainError::NotValidator`], [`DomainError::UnknownPlan`],
/// [`DomainError::YearSealed`].
pub fn decide_seal(
    registry: &Registry,
    year: i32,
    principal: &Principal,
    checkpoint: SealedCheckpoint,
) -> Result<(u64, PlanEvent), DomainError> {
    if principal.role != Role::Validator {
        return Err(DomainError::NotValidator {
            actor: principal.name.clone(),
            role: principal.role,
        });
    }
    let plan = registry
        .plan(year)
        .ok_or(DomainError::UnknownPlan { year })?;
    ensure_open(registry, year)?;
    Ok((
        plan.version,
        PlanEvent::PlanSealed {
            origin: checkpoint.origin,
            size: checkpoint.size,
            root: checkpoint.root,
            checkpoint: checkpoint.note,
        },
    ))
}
