//! Errors as `application/problem+json` (RFC 9457), mapped in one place; and the
//! JSON body extractor whose rejections go through the same mapping.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;
use utoipa::ToSchema;

use crate::commands::{DomainError, RefusalKind};
use crate::error::{AppError, FieldError};

/// The problem+json media type.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// `Retry-After` of every 503, in seconds.
pub const RETRY_AFTER_SECONDS: &str = "1";

/// An RFC 9457 problem.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// A URI reference naming the kind of problem, e.g. `/problems/validation`.
    #[serde(rename = "type")]
    pub kind: String,
    /// A short summary of the kind.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What went wrong this time, in plain words.
    pub detail: String,
    /// For invalid input: every problem, with its field.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<FieldErrorDoc>)]
    pub errors: Vec<FieldError>,
}

/// One invalid field (schema of [`FieldError`]).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FieldErrorDoc {
    /// JSON path of the field.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl Problem {
    /// A problem of a kind (`slug` becomes `/problems/{slug}`).
    pub fn new(status: StatusCode, slug: &str, title: &str, detail: impl Into<String>) -> Self {
        Problem {
            kind: format!("/problems/{slug}"),
            title: title.to_string(),
            status: status.as_u16(),
            detail: detail.into(),
            errors: Vec::new(),
        }
    }

    /// 400: a request that cannot be read.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "bad-request",
            "Bad request",
            detail,
        )
    }

    /// 422 with the fields at fault.
    pub fn invalid(errors: Vec<FieldError>) -> Self {
        let detail = errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ");
        Problem {
            errors,
            ..Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation",
                "Invalid input",
                detail,
            )
        }
    }

    /// 404.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::NOT_FOUND, "not-found", "Not found", detail)
    }

    /// 401.
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Problem::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Unauthorized",
            detail,
        )
    }

    /// 403.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::FORBIDDEN, "forbidden", "Forbidden", detail)
    }

    /// 500, with nothing of the cause (it is logged instead).
    pub fn internal() -> Self {
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal error",
            "the server failed; the cause is in its log",
        )
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            // Every 503 here is passing (a database that reconnects, a read model
            // catching up): say when to try again.
            headers.insert(
                header::RETRY_AFTER,
                HeaderValue::from_static(RETRY_AFTER_SECONDS),
            );
        }
        response
    }
}

impl From<AppError> for Problem {
    fn from(e: AppError) -> Self {
        match e {
            AppError::NotFound(detail) => Problem::not_found(detail),
            AppError::Unauthorized(detail) => Problem::unauthorized(detail),
            AppError::Domain(DomainError::Invalid(errors)) => Problem::invalid(errors),
            AppError::Domain(e) => match e.kind() {
                RefusalKind::Forbidden => Problem::forbidden(e.to_string()),
                RefusalKind::NotFound => Problem::not_found(e.to_string()),
                // Invalid input carries its fields and is answered above.
                RefusalKind::Rule | RefusalKind::Invalid => Problem::new(
                    StatusCode::CONFLICT,
                    "rule",
                    "Not allowed in this state",
                    e.to_string(),
                ),
            },
            AppError::Conflict(detail) => {
                Problem::new(StatusCode::CONFLICT, "conflict", "Conflict", detail)
            }
            AppError::Invalid(errors) => Problem::invalid(errors),
            e @ AppError::PreconditionFailed { .. } => Problem::new(
                StatusCode::PRECONDITION_FAILED,
                "stale",
                "Precondition failed",
                format!("{e}: read it again and retry"),
            ),
            AppError::IdempotencyMismatch(detail) => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency-key-reused",
                "Idempotency-Key reused",
                detail,
            ),
            AppError::Unavailable(cause) => {
                tracing::warn!(%cause, "database unavailable");
                Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "Service unavailable",
                    "Il registro degli eventi non è raggiungibile in questo momento. \
                     La richiesta potrebbe non essere stata registrata: riprovare tra \
                     qualche secondo con la stessa Idempotency-Key.",
                )
            }
            AppError::NotYet { wanted, folded } => Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "not-yet",
                "Not yet up to date",
                format!(
                    "Questa istanza ha letto il registro fino all'evento {folded}, non ancora \
                     fino al {wanted} richiesto: riprovare tra poco."
                ),
            ),
            e @ (AppError::Store(_)
            | AppError::Projection(_)
            | AppError::Internal(_)
            | AppError::Randomness(_)) => {
                tracing::error!(error = %e, "request failed");
                Problem::internal()
            }
        }
    }
}

/// A JSON request body, with the bytes it was read from (for idempotency keys).
/// Malformed JSON is a 400; wrong types and unknown fields are a 422 naming the
/// field; a body over the limit is a 413; all as problem+json.
#[derive(Debug)]
pub struct JsonBody<T> {
    /// The parsed body.
    pub value: T,
    /// The raw bytes.
    pub raw: Bytes,
}

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        // Any content type is read as JSON (curl -d sends form encoding by
        // default); what is not JSON is refused by the parser below.
        let raw = read_body(req, state).await?;
        let value = parse_json(&raw)?;
        Ok(JsonBody { value, raw })
    }
}

/// A request's body as bytes, whatever it holds; over the limit, a 413.
///
/// # Errors
/// 413 for a body over the limit, 400 for one that cannot be read.
pub async fn read_body<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, Problem> {
    Bytes::from_request(req, state).await.map_err(|rejection| {
        let status = rejection.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            Problem::new(
                status,
                "too-large",
                "Payload too large",
                "the body is larger than the 1 MiB limit",
            )
        } else {
            Problem::new(status, "bad-request", "Bad request", rejection.body_text())
        }
    })
}

/// Parses JSON text into `T`, naming the field at fault.
///
/// # Errors
/// 400 for text that is not JSON, 422 for JSON of the wrong shape.
pub fn parse_json<T: DeserializeOwned>(raw: &[u8]) -> Result<T, Problem> {
    let mut de = serde_json::Deserializer::from_slice(raw);
    match serde_path_to_error::deserialize::<_, T>(&mut de) {
        Ok(value) => {
            de.end()
                .map_err(|e| Problem::bad_request(format!("the body is not valid JSON: {e}")))?;
            Ok(value)
        }
        Err(e) => {
            let path = e.path().to_string();
            let inner = e.into_inner();
            if inner.is_syntax() || inner.is_eof() {
                return Err(Problem::bad_request(format!(
                    "the body is not valid JSON: {inner}"
                )));
            }
            let message = inner.to_string();
            // serde names an unknown field in its message; point at it.
            let field = match message.strip_prefix("unknown field `") {
                Some(rest) => {
                    let name = rest.split('`').next().unwrap_or_default();
                    if path == "." || path.is_empty() {
                        name.to_string()
                    } else if path == name || path.ends_with(&format!(".{name}")) {
                        path
                    } else {
                        format!("{path}.{name}")
                    }
                }
                None if path == "." => "$".to_string(),
                None => path,
            };
            let message = message
                .split(" at line ")
                .next()
                .unwrap_or_default()
                .to_string();
            Err(Problem::invalid(vec![FieldError::new(field, message)]))
        }
    }
}
