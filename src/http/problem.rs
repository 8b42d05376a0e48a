//! Errors as `application/problem+json` (RFC 9457), mapped in one place; and the
//! JSON body extractor whose rejections go through the same mapping.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
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
    /// A URI reference naming the kind of problem, e.g. `/problemi/validation`:
    /// following it gives a short Italian page about that kind.
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
    /// Which request this was (boxed: a problem travels in every `Err`).
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub occurrence: Option<Box<Occurrence>>,
}

/// The request a problem answered.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Occurrence {
    /// This occurrence: `urn:uuid:<request id>` when the request's
    /// `X-Request-Id` is a UUID (the server makes one when none is sent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// The request's `X-Request-Id`, to quote when reporting the problem.
    pub request_id: String,
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
    /// A problem of a kind (`slug` becomes `/problemi/{slug}`, see
    /// [`super::problem_types`]).
    pub fn new(status: StatusCode, slug: &str, title: &str, detail: impl Into<String>) -> Self {
        Problem {
            kind: super::problem_types::uri(slug),
            title: title.to_string(),
            status: status.as_u16(),
            detail: detail.into(),
            errors: Vec::new(),
            occurrence: None,
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
    fn into_response(mut self) -> Response {
        if self.occurrence.is_none() {
            self.occurrence = super::layers::current_request_id().map(|request_id| {
                let instance = uuid::Uuid::parse_str(&request_id)
                    .ok()
                    .map(|id| id.urn().to_string());
                Box::new(Occurrence {
                    instance,
                    request_id,
                })
            });
        }
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
            AppError::Unwritable(kind, cause) => {
                tracing::error!(%cause, "the database refuses writes");
                match kind {
                    traguardo_events::Unwritable::Full => Problem::new(
                        StatusCode::INSUFFICIENT_STORAGE,
                        "insufficient-storage",
                        "Insufficient storage",
                        "Il disco che ospita il registro degli eventi è pieno: la richiesta \
                         non è stata registrata. Riprovare con la stessa Idempotency-Key \
                         quando l'amministratore avrà liberato spazio.",
                    ),
                    traguardo_events::Unwritable::ReadOnly => Problem::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "read-only",
                        "Service unavailable",
                        "Il registro degli eventi è in sola lettura: la richiesta non è stata \
                         registrata. Riprovare quando l'amministratore avrà ripristinato i \
                         permessi di scrittura.",
                    ),
                }
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
            AppError::Pdf(e) => {
                tracing::error!(error = %e, "the PDF report failed");
                Problem::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "report-rendering",
                    "Relazione non generata",
                    "Non è stato possibile generare la relazione in formato PDF: la causa è \
                     nel registro del server. Gli altri formati (html, xlsx, csv) restano \
                     disponibili.",
                )
            }
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

/// URIs longer than this are refused with 414.
pub const MAX_URI_BYTES: usize = 8 * 1024;
/// Requests with more header lines than this are refused with 431.
pub const MAX_HEADERS: usize = 100;
/// Requests whose headers add up to more than this are refused with 431.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;

/// Refuses an over-long URI (414) or oversized headers (431) as problem+json
/// (the connection loop lets heads up to 1 MiB through to here, so that hyper's
/// own empty answers are not what a client sees).
pub async fn head_limits(request: Request, next: Next) -> Response {
    let uri = request
        .uri()
        .path_and_query()
        .map_or(0, |p| p.as_str().len());
    if uri > MAX_URI_BYTES {
        return Problem::new(
            StatusCode::URI_TOO_LONG,
            "uri-too-long",
            "URI too long",
            format!("L'indirizzo della richiesta supera il limite di {MAX_URI_BYTES} byte."),
        )
        .into_response();
    }
    let headers = request.headers();
    let bytes: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    if headers.len() > MAX_HEADERS || bytes > MAX_HEADER_BYTES {
        return Problem::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers-too-large",
            "Request header fields too large",
            format!(
                "Le intestazioni della richiesta superano il limite di {MAX_HEADERS} righe \
                 o {MAX_HEADER_BYTES} byte."
            ),
        )
        .into_response();
    }
    next.run(request).await
}

/// Turns every error answer that is not problem+json yet (axum's rejections of a
/// query string or a path, which are `text/plain`; an empty 405 or 408) into
/// problem+json with the same status, keeping its text as the `detail`. Pages
/// for people (`text/html`) and other typed errors pass unchanged.
pub async fn problems_only(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !(content_type.is_empty() || content_type.starts_with("text/plain")) {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 16 * 1024)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let detail = if text.is_empty() {
        plain_detail(status).to_string()
    } else {
        text
    };
    let slug = match status {
        StatusCode::BAD_REQUEST => "bad-request",
        StatusCode::NOT_FOUND => "not-found",
        StatusCode::METHOD_NOT_ALLOWED => "method-not-allowed",
        StatusCode::REQUEST_TIMEOUT => "request-timeout",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported-media-type",
        StatusCode::PAYLOAD_TOO_LARGE => "too-large",
        s if s.is_server_error() => "internal",
        _ => "http-error",
    };
    let title = status.canonical_reason().unwrap_or("Error");
    let mut answer = Problem::new(status, slug, title, detail).into_response();
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            answer
                .headers_mut()
                .entry(name)
                .or_insert_with(|| value.clone());
        }
    }
    answer
}

/// What an error answer with no words of its own means, in Italian.
fn plain_detail(status: StatusCode) -> &'static str {
    match status {
        StatusCode::METHOD_NOT_ALLOWED => "Questo indirizzo non risponde a questo metodo.",
        StatusCode::REQUEST_TIMEOUT => {
            "La richiesta non è arrivata per intero, o non ha avuto risposta, entro il tempo \
             concesso."
        }
        StatusCode::NOT_FOUND => "Non esiste nulla a questo indirizzo.",
        s if s.is_server_error() => {
            "Il server non è riuscito a rispondere; la causa è nel suo log."
        }
        _ => "La richiesta non può essere letta.",
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

impl<T: DeserializeOwned> JsonBody<T> {
    /// Parses a body read already (a handler that authorizes its caller before
    /// it looks at the body takes a [`RawBody`] and parses it afterwards).
    ///
    /// # Errors
    /// 400 for text that is not JSON, 422 for JSON of the wrong shape.
    pub fn parse(raw: RawBody) -> Result<Self, Problem> {
        let value = parse_json(&raw.0)?;
        Ok(JsonBody { value, raw: raw.0 })
    }
}

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        require_json(req.headers())?;
        JsonBody::parse(RawBody::from_request(req, state).await?)
    }
}

/// A request body, read whole but not yet parsed; over the limit it is a 413.
#[derive(Debug)]
pub struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        // JSON, or the spreadsheet a plan may come as: anything else is a 415
        // before the body is read.
        let content_type = req.headers().get(header::CONTENT_TYPE);
        if !content_type.is_some_and(|v| is_json(v) || is_xlsx(v)) {
            return Err(unsupported_media_type(
                content_type,
                "application/json (o un tipo application/…+json)",
            ));
        }
        Bytes::from_request(req, state)
            .await
            .map(RawBody)
            .map_err(|rejection| {
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
}

/// Whether a `Content-Type` is JSON: `application/json` or an
/// `application/…+json` type, with any parameters.
pub fn is_json(content_type: &HeaderValue) -> bool {
    content_type
        .to_str()
        .ok()
        .and_then(|text| text.parse::<mime::Mime>().ok())
        .is_some_and(|m| {
            m.type_() == mime::APPLICATION
                && (m.subtype() == mime::JSON || m.suffix() == Some(mime::JSON))
        })
}

/// 415 unless the request says its body is JSON.
///
/// # Errors
/// 415 problem+json for another content type, or none.
pub fn require_json(headers: &axum::http::HeaderMap) -> Result<(), Problem> {
    match headers.get(header::CONTENT_TYPE) {
        Some(value) if is_json(value) => Ok(()),
        other => Err(unsupported_media_type(
            other,
            "application/json (o un tipo application/…+json)",
        )),
    }
}

/// Whether a content type is the xlsx workbook's.
pub fn is_xlsx(value: &HeaderValue) -> bool {
    value.to_str().is_ok_and(|v| {
        v.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .eq_ignore_ascii_case(super::layers::XLSX)
    })
}

/// 415: the body's content type is not one this route reads.
pub fn unsupported_media_type(sent: Option<&HeaderValue>, wanted: &str) -> Problem {
    let sent = match sent.and_then(|v| v.to_str().ok()) {
        Some(text) => format!("è {text}"),
        None => "non è indicato (manca Content-Type)".to_string(),
    };
    Problem::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported-media-type",
        "Unsupported media type",
        format!("Il tipo del corpo della richiesta {sent}: questa risorsa accetta {wanted}."),
    )
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::pdf::PdfError;

    #[test]
    fn a_pdf_that_cannot_be_rendered_is_a_500_with_an_italian_detail_and_no_cause() {
        let problem = Problem::from(AppError::Pdf(PdfError::Layout(
            "unknown variable: secret".into(),
        )));
        assert_eq!(problem.status, 500);
        assert_eq!(
            problem.kind,
            super::super::problem_types::uri("report-rendering")
        );
        assert!(problem
            .detail
            .starts_with("Non è stato possibile generare la relazione"));
        assert!(
            !problem.detail.contains("secret"),
            "the cause stays in the log"
        );
    }
}
