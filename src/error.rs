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
    /// The database cannot be reached right now: nothing may have been written,
    /// and a retry later may succeed. 503 with `Retry-After`.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The database refuses writes (a full disk, a read-only file): nothing was
    /// written, and a retry succeeds once space or permission returns. 507 for
    /// a full disk, 503 for a read-only database.
    #[error("the database cannot be written ({0}): {1}")]
    Unwritable(traguardo_events::Unwritable, String),
    /// The read model has not yet folded the seq a request asked for
    /// (`min_seq`, `X-Min-Seq`). 503 with `Retry-After`.
    #[error("the read model has folded seq {folded}, not yet {wanted}")]
    NotYet {
        /// The seq the request waited for.
        wanted: u64,
        /// The last seq folded when it gave up.
        folded: u64,
    },
    /// The event store failed. 500 (details logged, not sent).
    #[error("event store: {0}")]
    Store(#[source] traguardo_events::Error),
    /// A rule of the domain refused the command; its kind gives the status
    /// (403, 404 or 409). Invalid input becomes [`AppError::Invalid`].
    #[error(transparent)]
    Domain(crate::commands::DomainError),
    /// The system's source of randomness failed (a token could not be made). 500.
    #[error("no source of randomness: {0}")]
    Randomness(#[source] getrandom::Error),
    /// A bug: something that cannot fail did. 500 (details logged, not sent).
    #[error("internal: {0}")]
    Internal(String),
    /// The report could not be written as PDF (typst failed to lay it out or
    /// to write it). 500 `report-rendering`, with an Italian detail; the cause
    /// is logged, not sent.
    #[error(transparent)]
    Pdf(#[from] crate::report::pdf::PdfError),
    /// The log could not be folded. 500.
    #[error("projection: {0}")]
    Projection(#[from] traguardo_projections::ProjectionError),
}

impl From<crate::commands::DomainError> for AppError {
    fn from(e: crate::commands::DomainError) -> Self {
        match e {
            crate::commands::DomainError::Invalid(errors) => AppError::Invalid(errors),
            refused => AppError::Domain(refused),
        }
    }
}

impl AppError {
    /// Whether it names something that does not exist (404).
    pub fn is_not_found(&self) -> bool {
        match self {
            AppError::NotFound(_) => true,
            AppError::Domain(e) => e.kind() == crate::commands::RefusalKind::NotFound,
            _ => false,
        }
    }

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
            other if other.is_unavailable() => AppError::Unavailable(other.to_string()),
            other => match other.unwritable() {
                Some(kind) => AppError::Unwritable(kind, other.to_string()),
                None => AppError::Store(other),
            },
        }
    }
}
