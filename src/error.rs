//! The one error type of the application; the HTTP layer maps it to problem+json
//! in one place, the command line prints it in one line per problem.

use serde::Serialize;

/// One problem with an input: where, and what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// JSON path, e.g. `objectives[2].phases[1].deadline`.
    pub field: String,
    /// A plain message.
    pub message: String,
}

impl FieldError {
    /// A problem at `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Everything a request or command can fail with.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// No such plan, objective, phase, indicator or revision. 404.
    #[error("{0}")]
    NotFound(String),
    /// No token, or a token that is not valid. 401.
    #[error("{0}")]
    Unauthorized(String),
    /// A role or unit that may not act. 403.
    #[error("{0}")]
    Forbidden(String),
    /// The state forbids it: completing twice, a withdrawn phase, … 409.
    #[error("{0}")]
    Rule(String),
    /// Someone else wrote first, or the thing exists already. 409.
    #[error("{0}")]
    Conflict(String),
    /// The input is wrong; every problem is listed. 422.
    #[error("invalid input: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<FieldError>),
    /// `If-Match` named a version the objective is no longer at. 412.
    #[error("the objective is at version {actual}, not {expected}")]
    PreconditionFailed {
        /// The version the client had.
        expected: u64,
        /// The current version.
        actual: u64,
    },
    /// An `Idempotency-Key` reused with a different request. 422.
    #[error("{0}")]
    IdempotencyMismatch(String),
    /// The event store failed. 500 (details logged, not sent).
    #[error("event store: {0}")]
    Store(#[source] traguardo_events::Error),
    /// A bug: something that cannot fail did. 500 (details logged, not sent).
    #[error("internal: {0}")]
    Internal(String),
    /// The log could not be folded. 500.
    #[error("projection: {0}")]
    Projection(#[from] traguardo_projections::ProjectionError),
}

impl AppError {
    /// A single invalid field.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        AppError::Invalid(vec![FieldError::new(field, message)])
    }
}

impl From<traguardo_events::Error> for AppError {
    fn from(e: traguardo_events::Error) -> Self {
        match e {
            traguardo_events::Error::Conflict { .. } => AppError::Conflict(format!(
                "{e}; someone else wrote first: read the current state and try again"
            )),
            other => AppError::Store(other),
        }
    }
}
