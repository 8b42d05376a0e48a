//! Small pieces every area of the API uses: query parameters, headers, blocking
//! reads, and the shape of a `201 Created`.

use std::sync::OnceLock;

use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, NaiveDate, Utc};
use headers::{ETag, HeaderMapExt, IfMatch, IfNoneMatch};
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;
use traguardo_events::store::{IdempotencyKey, Until};
use traguardo_projections::audit::AuditFilter;

use super::problem::Problem;
use crate::commands::Principal;
use crate::error::{AppError, FieldError};
use crate::App;

/// How many blocking reads may run at once: two per core, between 2 and 16.
///
/// The reads are CPU-bound (SQLite pages come from the OS cache), so more threads
/// than a few per core only add context switches; and more reads at once than the
/// store keeps reader connections (16) would open and close a connection for each
/// read. Under load, requests beyond this wait their turn in FIFO order instead
/// of all slowing down together. A process-wide limit, like the cores it shares.
fn read_permits() -> &'static Semaphore {
    static PERMITS: OnceLock<Semaphore> = OnceLock::new();
    PERMITS.get_or_init(|| {
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        Semaphore::new((2 * cpus).clamp(2, 16))
    })
}

/// Runs a blocking read (SQLite) off the async runtime, at most
/// [`read_permits`] at once.
///
/// # Errors
/// The read's own error, or a 500 if the task failed.
pub async fn blocking<T, F>(f: F) -> Result<T, Problem>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, AppError> + Send + 'static,
{
    // Held until the read is done (or the request is dropped); never closed.
    let _permit = read_permits()
        .acquire()
        .await
        .map_err(|_| Problem::internal())?;
    run_blocking(f).await
}

/// How many heavy computations (a report, an audit trail, red flags, the
/// replay of a revision, a check of the whole chain) may run at once: half the
/// cores, at least one.
///
/// They take these permits instead of [`read_permits`], so however many clients
/// loop on reports, the light reads (an objective, a plan's scores) keep their
/// own permits and never queue behind them: the heavy ones queue among
/// themselves.
fn heavy_permits() -> &'static Semaphore {
    static PERMITS: OnceLock<Semaphore> = OnceLock::new();
    PERMITS.get_or_init(|| Semaphore::new(heavy_permit_count()))
}

fn heavy_permit_count() -> usize {
    let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
    (cpus / 2).clamp(1, 8)
}

/// Runs a heavy blocking computation off the async runtime, at most
/// [`heavy_permits`] at once, without taking a light read's permit.
///
/// # Errors
/// The computation's own error, or a 500 if the task failed.
pub async fn heavy<T, F>(f: F) -> Result<T, Problem>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, AppError> + Send + 'static,
{
    let _permit = heavy_permits()
        .acquire()
        .await
        .map_err(|_| Problem::internal())?;
    run_blocking(f).await
}

async fn run_blocking<T, F>(f: F) -> Result<T, Problem>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, AppError> + Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(result) => result.map_err(Problem::from),
        Err(e) => {
            tracing::error!(error = %e, "a blocking task failed");
            Err(Problem::internal())
        }
    }
}

/// `?at=DATE`, default today.
///
/// # Errors
/// 422 for a date that is not YYYY-MM-DD.
pub fn reference_date(at: Option<&str>, app: &App) -> Result<NaiveDate, Problem> {
    match at.filter(|a| !a.is_empty()) {
        None => Ok(app.today()),
        Some(text) => crate::plan_document::parse_date(text)
            .map_err(|message| Problem::invalid(vec![FieldError::new("at", message)])),
    }
}

/// `?as_of=TIMESTAMP` or `?seq=N`: a record-time cut, if any.
///
/// # Errors
/// 422 for a bad timestamp or seq, or both given.
pub fn record_cut(as_of: Option<&str>, seq: Option<&str>) -> Result<Option<Until>, Problem> {
    match (
        as_of.filter(|a| !a.is_empty()),
        seq.filter(|s| !s.is_empty()),
    ) {
        (Some(_), Some(_)) => Err(Problem::invalid(vec![FieldError::new(
            "as_of",
            "give as_of or seq, not both",
        )])),
        (Some(text), None) => parse_timestamp("as_of", text).map(|t| Some(Until::RecordedAt(t))),
        (None, Some(text)) => seq_number("seq", text)
            .map(|n| Some(Until::Seq(n)))
            .map_err(|e| Problem::invalid(vec![e])),
        (None, None) => Ok(None),
    }
}

/// The largest seq there can be: the databases keep seqs as signed 64-bit
/// integers.
pub const MAX_SEQ: u64 = i64::MAX as u64;

/// A seq (or a count of events) given by a client: a whole number from 0 to
/// [`MAX_SEQ`].
///
/// # Errors
/// The problem with `field`, for a 422.
pub fn seq_number(field: &str, text: &str) -> Result<u64, FieldError> {
    match text.trim().parse::<u64>() {
        Ok(n) if n <= MAX_SEQ => Ok(n),
        Ok(_) => Err(FieldError::new(
            field,
            format!("{text} supera il numero più grande ammesso ({MAX_SEQ})"),
        )),
        Err(_) => Err(FieldError::new(
            field,
            format!("{text:?} non è un numero intero non negativo"),
        )),
    }
}

/// A record time: an RFC 3339 timestamp, or a date meaning the end of that day
/// in Italy ([`traguardo_events::clock::parse_record_time`]).
///
/// # Errors
/// 422 naming `field`.
pub fn parse_timestamp(field: &str, text: &str) -> Result<DateTime<Utc>, Problem> {
    traguardo_events::clock::parse_record_time(text)
        .map_err(|message| Problem::invalid(vec![FieldError::new(field, message)]))
}

/// The reference date of a read (DESIGN.md §4): `at` when given; with a
/// record-time cut and no `at`, the Italian date of that record time ("what the
/// system said on that day, about that day"); otherwise today.
///
/// # Errors
/// 422 for a bad date; a store failure reading the record time of a seq.
pub async fn evaluation_date(
    at: Option<&str>,
    cut: Option<Until>,
    app: &App,
) -> Result<NaiveDate, Problem> {
    if at.is_some_and(|a| !a.is_empty()) {
        return reference_date(at, app);
    }
    match cut {
        None | Some(Until::End | Until::Version(_)) => Ok(app.today()),
        Some(Until::RecordedAt(t)) => Ok(traguardo_events::clock::local_date(&t)),
        Some(Until::Seq(seq)) => {
            let today = app.today();
            let app = app.clone();
            let recorded = blocking(move || app.recorded_at(seq)).await?;
            Ok(recorded.map_or(today, |t| traguardo_events::clock::local_date(&t)))
        }
    }
}

/// A phase number from the path; anything else is a phase that does not exist.
///
/// # Errors
/// 404.
pub fn phase_number(key: &str, text: &str) -> Result<u32, Problem> {
    text.parse()
        .map_err(|_| Problem::not_found(format!("objective {key} has no phase {text}")))
}

/// A plan year from the path.
///
/// # Errors
/// 404 for something that is not a year.
pub fn plan_year(text: &str) -> Result<i32, Problem> {
    text.parse()
        .map_err(|_| Problem::not_found(format!("no plan for {text}")))
}

/// The ETag of an objective's state as a read answers it: the body depends on
/// the objective's version (as of the record-time cut, if any) and on the date
/// its deadlines and scores were evaluated at, so both are in the tag:
/// `"7-2022-06-30"`.
///
/// # Errors
/// Never in practice (the tag is digits and dashes); a 500 otherwise.
pub fn objective_etag(version: u64, at: NaiveDate) -> Result<ETag, Problem> {
    format!("\"{version}-{}\"", at.format("%Y-%m-%d"))
        .parse()
        .map_err(|_| Problem::internal())
}

/// The contract's ETag of an objective's current state: `"<version>"`.
///
/// # Errors
/// Never in practice (the tag is digits); a 500 otherwise.
pub fn version_etag(version: u64) -> Result<ETag, Problem> {
    format!("\"{version}\"")
        .parse()
        .map_err(|_| Problem::internal())
}

/// Whether a read may answer `304 Not Modified`: the request's `If-None-Match`
/// (parsed by `headers`, weak comparison as RFC 9110 §13.1.2 asks) names
/// `etag`. A malformed header is ignored, as if absent.
pub fn not_modified(headers: &HeaderMap, etag: &ETag) -> bool {
    headers
        .typed_try_get::<IfNoneMatch>()
        .ok()
        .flatten()
        .is_some_and(|condition| !condition.precondition_passes(etag))
}

/// `304 Not Modified` for `etag`: no body, the tag and the caching rule.
pub fn not_modified_response(etag: ETag) -> Response {
    let mut response = StatusCode::NOT_MODIFIED.into_response();
    response.headers_mut().typed_insert(etag);
    response
}

/// A write's `If-Match` (RFC 9110 §13.1.1), parsed by `headers`: a list of
/// entity tags or `*`. It holds when one of its tags is, by strong comparison
/// (so a weak `W/"4"` never does), the objective's `"<version>"` (DESIGN.md §5)
/// or the ETag a read of it today answers (`"<version>-<today>"`).
///
/// Returns the version the write must still find when it appends (so that a
/// write racing another gets its 412 too), or `None` when there is no
/// condition, or no such objective (the write then answers 404).
///
/// # Errors
/// 400 for a header that is not a list of entity tags; 412 when it does not hold.
pub fn if_match(
    headers: &HeaderMap,
    version: Option<u64>,
    today: NaiveDate,
) -> Result<Option<u64>, Problem> {
    let values = headers.get_all(axum::http::header::IF_MATCH);
    // An empty If-Match (an empty list, or a client's unset variable) is no
    // condition, as an empty query parameter is no parameter.
    if values
        .iter()
        .all(|v| v.as_bytes().iter().all(|b| matches!(b, b' ' | b'\t')))
    {
        return Ok(None);
    }
    let refused = || {
        Problem::bad_request(
            "If-Match deve essere * o un elenco di ETag tra virgolette, come \"7\"",
        )
    };
    if !values.iter().all(well_formed_if_match) {
        return Err(refused());
    }
    let condition = headers.typed_try_get::<IfMatch>().map_err(|_| refused())?;
    let (Some(condition), Some(version)) = (condition, version) else {
        return Ok(None);
    };
    if condition.is_any() {
        return Ok(None);
    }
    let plain: ETag = format!("\"{version}\"")
        .parse()
        .map_err(|_| Problem::internal())?;
    let read_today = objective_etag(version, today)?;
    if condition.precondition_passes(&plain) || condition.precondition_passes(&read_today) {
        Ok(Some(version))
    } else {
        Err(Problem::new(
            StatusCode::PRECONDITION_FAILED,
            "stale",
            "Precondition failed",
            format!(
                "the objective is at version {version}, which If-Match does not name: \
                 read it again and retry"
            ),
        ))
    }
}

/// Whether an `If-Match` value is `*` or a list of entity tags (RFC 9110
/// §8.8.3, visible ASCII): the `headers` crate reads a list leniently, keeping
/// what it cannot parse as a tag that never matches, which would turn a
/// malformed condition into a 412 instead of a 400.
fn well_formed_if_match(value: &HeaderValue) -> bool {
    let Ok(text) = value.to_str() else {
        return false;
    };
    let entity_tag = |item: &str| {
        let opaque = item.strip_prefix("W/").unwrap_or(item);
        opaque.len() >= 2
            && opaque.starts_with('"')
            && opaque.ends_with('"')
            && opaque[1..opaque.len() - 1]
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b'"' && b != b',')
    };
    text.trim() == "*"
        || text
            .split(',')
            .all(|item| entity_tag(item.trim_matches([' ', '\t'])))
}

/// The idempotency key of a write, tied to the caller's identity and the
/// request's method, path and body ([`crate::app::idempotency_key`]).
///
/// # Errors
/// 400 for a key that is empty, over 255 bytes, or not visible ASCII.
pub fn idempotency_key(
    headers: &HeaderMap,
    principal: &Principal,
    method: &Method,
    uri: &Uri,
    body: &[u8],
) -> Result<Option<IdempotencyKey>, Problem> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    // Visible ASCII only (no spaces), as the document's schema says.
    let key = value.to_str().unwrap_or_default();
    if key.is_empty() || key.len() > 255 || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Problem::bad_request(
            "Idempotency-Key must be 1 to 255 visible ASCII characters, without spaces",
        ));
    }
    let request = format!("{method} {}\n{}", uri.path(), String::from_utf8_lossy(body));
    Ok(Some(crate::app::idempotency_key(
        key,
        &principal.actor_id,
        &request,
    )))
}

/// `201 Created` with a JSON body; a replay says so in `Idempotent-Replayed`.
pub fn created<T: Serialize>(body: T, replayed: bool, location: Option<String>) -> Response {
    let response = (StatusCode::CREATED, Json(body)).into_response();
    created_with(response, replayed, location)
}

/// As [`created`], with a body already written as JSON.
pub fn created_json(body: Vec<u8>, replayed: bool, location: Option<String>) -> Response {
    let mut response = (StatusCode::CREATED, body).into_response();
    response
        .headers_mut()
        .typed_insert(headers::ContentType::json());
    created_with(response, replayed, location)
}

fn created_with(mut response: Response, replayed: bool, location: Option<String>) -> Response {
    let headers = response.headers_mut();
    if replayed {
        headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    if let Some(value) = location.and_then(|l| HeaderValue::from_str(&l).ok()) {
        headers.insert(axum::http::header::LOCATION, value);
    }
    response
}
/// Filters of an audit trail.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Only events about this unit.
    pub unit: Option<String>,
    /// Only events by this actor.
    pub actor: Option<String>,
    /// Only events of this type.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub event_type: Option<String>,
    /// Only events recorded at or after this time (RFC 3339 or date).
    #[param(example = "2022-07-01")]
    pub from: Option<String>,
    /// Only events recorded at or before this time (RFC 3339 or date).
    pub to: Option<String>,
}

impl AuditQuery {
    /// The filter these parameters describe.
    ///
    /// # Errors
    /// 422 for a bad timestamp.
    pub fn filter(&self) -> Result<AuditFilter, Problem> {
        let from = match self.from.as_deref().filter(|t| !t.is_empty()) {
            None => None,
            Some(text) => Some(match crate::plan_document::parse_date(text) {
                Ok(date) => date
                    .and_hms_opt(0, 0, 0)
                    .map(|t| t.and_utc())
                    .ok_or_else(Problem::internal)?,
                Err(_) => parse_timestamp("from", text)?,
            }),
        };
        let to = match self.to.as_deref().filter(|t| !t.is_empty()) {
            None => None,
            Some(text) => Some(parse_timestamp("to", text)?),
        };
        Ok(AuditFilter {
            unit: self.unit.clone().filter(|u| !u.is_empty()),
            actor: self.actor.clone().filter(|a| !a.is_empty()),
            event_type: self.event_type.clone().filter(|t| !t.is_empty()),
            from,
            to,
        })
    }
}

/// The schema of a text parameter that takes one of `values`.
fn text_choice(values: &[&str]) -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(values.iter().copied()))
        .build()
}

/// `format` of `GET /events`.
pub fn events_format_schema() -> utoipa::openapi::Object {
    text_choice(&["raw", "cloudevents"])
}

/// `format` of `GET /plans/{year}/report`.
pub fn report_format_schema() -> utoipa::openapi::Object {
    text_choice(&["json", "csv", "md", "html", "xlsx", "pdf"])
}

/// `level` of `GET /plans/{year}/report`.
pub fn report_level_schema() -> utoipa::openapi::Object {
    text_choice(&["phase", "objective"])
}

/// Beside every `…_hundredths` figure of event data, the same figure under the
/// name and in the unit a request writes it: `weights` beside
/// `weights_hundredths` (`{"1": 33.33}` beside `{"1": 3333}`), `target` beside
/// `target_hundredths`, `weight` beside `weight_hundredths`. Answers keep the
/// event's names and gain the request's, so that one shape reads both ways.
pub fn with_request_names(value: &mut serde_json::Value) {
    use serde_json::Value;
    // Whole percentages as integers (20, as a request writes them), others with
    // their decimals (33.33).
    let percent = |v: &Value| {
        v.as_i64().map(|h| match h % 100 {
            0 => Value::from(h / 100),
            _ => Value::from(h as f64 / 100.0),
        })
    };
    match value {
        Value::Object(map) => {
            let twins: Vec<(String, Value)> = map
                .iter()
                .filter_map(|(k, v)| {
                    let name = k.strip_suffix("_hundredths")?;
                    let twin = match v {
                        Value::Object(m) => Value::Object(
                            m.iter()
                                .filter_map(|(n, h)| Some((n.clone(), percent(h)?)))
                                .collect(),
                        ),
                        other => percent(other)?,
                    };
                    Some((name.to_string(), twin))
                })
                .collect();
            for (name, twin) in twins {
                map.entry(name).or_insert(twin);
            }
            map.values_mut().for_each(with_request_names);
        }
        Value::Array(items) => items.iter_mut().for_each(with_request_names),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};

    use super::*;

    fn poll_once<F: Future>(future: F) -> Poll<F::Output> {
        pin!(future)
            .as_mut()
            .poll(&mut Context::from_waker(Waker::noop()))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn light_reads_go_on_while_every_heavy_permit_is_taken() {
        // Every heavy permit held, as by clients looping on reports.
        let held = heavy_permits()
            .acquire_many(heavy_permit_count() as u32)
            .await
            .unwrap();
        // A heavy computation waits its turn …
        assert!(poll_once(heavy(|| Ok(1))).is_pending());
        // … and a light read does not.
        assert_eq!(blocking(|| Ok(2)).await.unwrap(), 2);
        drop(held);
        assert_eq!(heavy(|| Ok(3)).await.unwrap(), 3);
    }
}
