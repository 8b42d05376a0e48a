//! Decide: state + command → events, or a typed error. Every rule of the domain
//! lives here, and nothing here does I/O: the caller loads the state, passes the
//! date of today, and appends what comes back.
//!
//! - [`progress`]: one function per progress command (start, completion,
//!   retraction, measurement);
//! - [`validation`]: the *Nucleo di Valutazione*'s validations;
//! - [`revision`]: revisions (*rimodulazioni*), decided by applying their events
//!   to a copy of the folded objective;
//! - [`shape`]: the shape of an objective (weights, numbering, deadlines), checked
//!   by plan import and by revisions alike;
//! - [`seal`]: the year-end seal, and the one rule that a sealed year takes no
//!   more writes ([`seal::ensure_open`], asked by every decide path);
//! - [`error`]: [`DomainError`], what a decide function refuses.

pub mod error;
pub mod progress;
pub mod revision;
pub mod seal;
pub mod shape;
pub mod validation;

pub use error::{DomainError, RefusalKind};
pub use progress::Measurement;
pub use revision::{decide_revision, RevisionDecision, RevisionRequest};
pub use seal::{decide_in_year, decide_seal, ensure_open, SealedCheckpoint};
pub use validation::decide_validation;

use chrono::NaiveDate;
use traguardo_events::domain::ObjectiveEvent;
use traguardo_events::model::{Role, ValidationOutcome, ValidationStage};
use traguardo_projections::Objective;

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
    RecordMeasurement(progress::Measurement),
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
        ObjectiveCommand::StartPhase { phase, on, note } => {
            progress::start(objective, principal, today, phase, on, note)?
        }
        ObjectiveCommand::CompletePhase {
            phase,
            on,
            note,
            evidence,
        } => progress::complete(objective, principal, today, phase, on, note, evidence)?,
        ObjectiveCommand::RetractCompletion { phase, reason } => {
            progress::retract(objective, principal, phase, reason)?
        }
        ObjectiveCommand::RecordMeasurement(measurement) => {
            progress::measure(objective, principal, today, measurement)?
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
            note,
        )?,
    };
    Ok(vec![event])
}

/// A note as kept: trimmed, and none when empty.
pub(crate) fn clean(note: Option<String>) -> Option<String> {
    note.map(|n| n.trim().to_string()).filter(|n| !n.is_empty())
}

#[cfg(test)]
mod tests;
