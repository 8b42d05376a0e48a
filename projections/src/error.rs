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
