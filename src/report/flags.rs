//! The report's red flags, from the flag rules of the projections
//! ([`traguardo_projections::flags::red_flags`]) with their default settings.

use traguardo_events::RecordedEvent;
use traguardo_projections::flags::{red_flags, FlagSettings};

use super::model::FlagReport;
use crate::AppError;

/// The red flags of a year's events, in the order the rules give them.
///
/// # Errors
/// When an event cannot be decoded or folded.
pub fn flags_of(events: &[RecordedEvent]) -> Result<Vec<FlagReport>, AppError> {
    Ok(red_flags(events, &FlagSettings::default())?
        .into_iter()
        .map(|flag| FlagReport {
            id: flag.id.clone(),
            status: flag.status,
            acknowledgement: flag.acknowledgement().and_then(|s| s.note.clone()),
            acknowledged_by: flag.acknowledgement().map(|s| s.actor.clone()),
            acknowledged_at: flag.acknowledgement().map(|s| s.recorded_at),
            kind: flag.kind,
            objective: flag.objective,
            phase: flag.phase,
            seqs: flag.seqs,
            message: flag.message,
        })
        .collect())
}
