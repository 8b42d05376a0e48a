//! The Nucleo di Valutazione's acknowledgement of a red flag: it examined the
//! flag and says what it found. The flag stays listed, with its note.

use traguardo_events::domain::PlanEvent;
use traguardo_events::model::Role;
use traguardo_projections::flags::Flag;

use super::{clean, limits, DomainError, Principal};
use crate::error::FieldError;

/// Decides the acknowledgement of flag `id` among the `flags` of plan `year`.
///
/// # Errors
/// [`DomainError::NotValidator`] for anyone but the Nucleo,
/// [`DomainError::UnknownFlag`] for a flag the plan does not raise, and
/// [`DomainError::Invalid`] for a missing or too long note.
pub fn decide_acknowledgement(
    flags: &[Flag],
    year: i32,
    id: &str,
    note: &str,
    principal: &Principal,
) -> Result<PlanEvent, DomainError> {
    if principal.role != Role::Validator {
        return Err(DomainError::NotValidator {
            actor: principal.name.clone(),
            role: principal.role,
        });
    }
    if !flags.iter().any(|f| f.id == id) {
        return Err(DomainError::UnknownFlag {
            year,
            flag: id.to_string(),
        });
    }
    let mut problems: Vec<FieldError> = limits::text("note", note, limits::NOTE_CHARS)
        .into_iter()
        .collect();
    let note = clean(Some(note.to_string()));
    if note.is_none() {
        problems.push(FieldError::new(
            "note",
            "l'esame di una segnalazione richiede una nota",
        ));
    }
    match note {
        Some(note) if problems.is_empty() => Ok(PlanEvent::FlagAcknowledged {
            flag: id.to_string(),
            note,
        }),
        _ => Err(DomainError::Invalid(problems)),
    }
}
