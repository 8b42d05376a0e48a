//! Decide: state + command → events, or a typed error. Every rule of the domain
//! lives here, and nothing here does I/O: the caller loads the state, passes the
//! date of today, and appends what comes back.
//!
//! - [`progress`]: one function per progress command (start, completion,
//!   retraction, measurement);
//! - [`validation`]: the *Nucleo di Valutazione*'s validations;
//! - [`flags`]: the Nucleo's acknowledgement of a red flag;
//! - [`revision`]: revisions (*rimodulazioni*), decided by applying their events
//!   to a copy of the folded objective;
//! - [`shape`]: the shape of an objective (weights, numbering, deadlines), checked
//!   by plan import and by revisions alike;
//! - [`limits`]: the bounds of what a write may carry (lengths, characters, list
//!   sizes, numbers, dates);
//! - [`seal`]: the year-end seal, and the one rule that a sealed year takes no
//!   more writes ([`seal::ensure_open`], asked by every decide path);
//! - [`error`]: [`DomainError`], what a decide function refuses.

pub mod error;
pub mod flags;
pub mod limits;
pub mod progress;
pub mod revision;
pub mod seal;
pub mod shape;
pub mod validation;

pub use error::{DomainError, RefusalKind};
pub use progress::{Entry, Measurement};
pub use revision::{decide_revision, RevisionDecision, RevisionRequest};
pub use seal::{decide_in_year, decide_seal, ensure_open, SealedCheckpoint};
pub use validation::{decide_validation, ValidationRequest};

use chrono::NaiveDate;
use traguardo_events::domain::ObjectiveEvent;
use traguardo_events::model::{Backfill, Role};
use traguardo_projections::Objective;

/// Who is asking: the holder of a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The actor's name, written on every event they cause.
    pub name: String,
    /// Their stable identity (DESIGN.md §5): separation of duties and
    /// idempotency compare this, never `name`.
    pub actor_id: String,
    /// Their role.
    pub role: Role,
    /// For managers, the units they act for.
    pub units: Vec<String>,
}

impl Principal {
    /// A principal whose identity is its display name normalised
    /// ([`traguardo_events::identity::actor_id_of`]).
    pub fn new(name: impl Into<String>, role: Role, units: Vec<String>) -> Self {
        let name = name.into();
        Principal {
            actor_id: traguardo_events::identity::actor_id_of(&name),
            name,
            role,
            units,
        }
    }

    /// The envelope's actor for this principal.
    pub fn actor(&self) -> traguardo_events::envelope::Actor {
        traguardo_events::envelope::Actor::new(&self.name, self.role.as_str())
    }

    /// Only an admin (*Programmazione e Controllo*) may do `action` (in Italian:
    /// "caricare un piano").
    ///
    /// # Errors
    /// [`DomainError::NotAdmin`] for any other role.
    pub fn require_admin(&self, action: &'static str) -> Result<(), DomainError> {
        if self.role == Role::Admin {
            Ok(())
        } else {
            Err(DomainError::NotAdmin {
                action,
                actor: self.name.clone(),
                role: self.role,
            })
        }
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
        /// A declared loading of past records (admin only).
        backfill: Option<Backfill>,
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
        /// A declared loading of past records (admin only).
        backfill: Option<Backfill>,
    },
    /// Withdraw a completion recorded in error.
    RetractCompletion {
        /// Phase number.
        phase: u32,
        /// Why (required).
        reason: String,
        /// A declared loading of past records (admin only).
        backfill: Option<Backfill>,
    },
    /// Record an indicator measurement.
    RecordMeasurement(progress::Measurement),
    /// Record a validation by the *Nucleo di Valutazione*.
    RecordValidation(ValidationRequest),
}

/// Decides a command on an objective: who may act, then the rule of the command.
///
/// # Errors
/// The [`DomainError`] of the first rule the command breaks.
pub fn decide(
    objective: &Objective,
    command: &ObjectiveCommand,
    principal: &Principal,
    today: NaiveDate,
) -> Result<Vec<ObjectiveEvent>, DomainError> {
    let event = match command.clone() {
        ObjectiveCommand::StartPhase {
            phase,
            on,
            note,
            backfill,
        } => progress::start(
            objective,
            principal,
            today,
            phase,
            on,
            Entry { note, backfill },
        )?,
        ObjectiveCommand::CompletePhase {
            phase,
            on,
            note,
            evidence,
            backfill,
        } => progress::complete(
            objective,
            principal,
            today,
            phase,
            on,
            evidence,
            Entry { note, backfill },
        )?,
        ObjectiveCommand::RetractCompletion {
            phase,
            reason,
            backfill,
        } => progress::retract(
            objective,
            principal,
            today,
            phase,
            Entry {
                note: Some(reason),
                backfill,
            },
        )?,
        ObjectiveCommand::RecordMeasurement(measurement) => {
            progress::measure(objective, principal, today, measurement)?
        }
        ObjectiveCommand::RecordValidation(request) => {
            decide_validation(objective, principal, request)?
        }
    };
    Ok(vec![event])
}

/// A note as kept: trimmed, and none when empty.
pub(crate) fn clean(note: Option<String>) -> Option<String> {
    note.map(|n| n.trim().to_string()).filter(|n| !n.is_empty())
}

#[cfg(test)]
mod tests;
