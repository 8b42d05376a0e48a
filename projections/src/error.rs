//! The projections' error: an event that does not fit the state it is folded into.

/// An event that cannot be folded. The log is the truth, so this means a bug or a
/// log written by a newer Traguardo; it is reported, never a panic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProjectionError {
    /// The event could not be decoded.
    #[error("seq {seq}: cannot decode event: {message}")]
    Decode {
        /// Its seq.
        seq: u64,
        /// Why.
        message: String,
    },
    /// The event names something the state does not have, or repeats a definition.
    #[error("seq {seq}: impossible event: {message}")]
    Impossible {
        /// Its seq.
        seq: u64,
        /// Why.
        message: String,
    },
}

/// Decodes a stored event into its domain enum (`ObjectiveEvent`, `PlanEvent`,
/// `OrgEvent`), naming the seq when it does not fit.
///
/// # Errors
/// [`ProjectionError::Decode`].
pub fn decode<E: traguardo_events::domain::DecodeByTag>(
    event: &traguardo_events::RecordedEvent,
) -> Result<E, ProjectionError> {
    event.decode().map_err(|e| ProjectionError::Decode {
        seq: event.seq,
        message: e.to_string(),
    })
}
