//! `/objectives/{key}`: the state of an objective (now, at a valid date, or as the
//! log held it at a past record time), the writes of managers and validators, and
//! the objective's audit trail and raw events.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::NaiveDate;
use headers::{ContentType, HeaderMapExt};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use traguardo_events::model::{Backfill, Hundredths, Role, ValidationOutcome, ValidationStage};
use traguardo_events::store::Until;
use traguardo_events::RecordedEvent;
use traguardo_projections::objective::ObjectiveView;
use traguardo_projections::Objective;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::auth::Auth;
use super::problem::{JsonBody, Problem, RawBody};
use super::{support, AppState};
use crate::app::Written;
use crate::commands::{DomainError, ObjectiveCommand};
use crate::error::FieldError;

/// The routes of this area.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_objective))
        .routes(routes!(start_phase))
        .routes(routes!(complete_phase))
        .routes(routes!(retract_completion))
        .routes(routes!(record_measurement))
        .routes(routes!(record_validation))
        .routes(routes!(objective_events))
}

/// Query of an objective read: a valid date, or a record-time cut.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StateQuery {
    /// Valid time: evaluate deadlines and scores at this date (default today).
    #[param(format = Date, example = "2022-06-30")]
    pub at: Option<String>,
    /// Record time: the state as the log held it at this RFC 3339 timestamp
    /// (a date means the end of that day in Italy).
    #[param(example = "2022-10-01T00:00:00Z")]
    pub as_of: Option<String>,
    /// Record time: the state as the log held it at this seq.
    #[param(value_type = Option<u64>, format = Int64, minimum = 0)]
    pub seq: Option<String>,
}

/// The event a write appended.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EventRef {
    /// Global position.
    pub seq: u64,
    /// Event id (UUID v7).
    pub id: String,
    /// Event type.
    #[serde(rename = "type")]
    pub event_type: String,
    /// Stream version after it.
    pub version: u64,
    /// Record time.
    pub recorded_at: String,
    /// Its hash in the chain.
    pub hash: String,
}

impl From<&RecordedEvent> for EventRef {
    fn from(e: &RecordedEvent) -> Self {
        EventRef {
            seq: e.seq,
            id: e.id.to_string(),
            event_type: e.event_type.clone(),
            version: e.version,
            recorded_at: traguardo_events::envelope::format_timestamp(&e.recorded_at),
            hash: e.hash.clone(),
        }
    }
}

/// The answer to a write on an objective. The server writes it by hand
/// ([`write_answer`]), byte for byte as serde serialises this.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WriteAnswer {
    /// The event appended.
    pub event: EventRef,
    /// The objective after it.
    // Written as JSON straight from the read model (`Objective::answer`).
    #[schema(value_type = ObjectiveView)]
    pub objective: Box<RawValue>,
}

/// The JSON of a [`WriteAnswer`]: `event`, then `objective` written straight
/// from the read model into the same buffer (not into a string of its own,
/// parsed again to be embedded).
///
/// # Errors
/// The serialiser's (none of the answer's types fails).
pub fn write_answer(
    event: &EventRef,
    objective: &Objective,
    at: NaiveDate,
) -> Result<Vec<u8>, serde_json::Error> {
    let answer = objective.answer(at);
    let mut out = Vec::with_capacity(answer.size_hint() + 256);
    out.extend_from_slice(b"{\"event\":");
    serde_json::to_writer(&mut out, event)?;
    out.extend_from_slice(b",\"objective\":");
    answer.write_json(&mut out)?;
    out.push(b'}');
    Ok(out)
}

/// `POST …/start`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"on": "2022-03-01", "note": "Avviata la ricognizione dei rimborsi pendenti"}))]
pub struct StartBody {
    /// Valid date, YYYY-MM-DD, not after today, within the plan year and the
    /// years either side of it.
    #[schema(format = Date)]
    pub on: String,
    /// Optional note (at most 4,000 characters).
    pub note: Option<String>,
    /// A declared loading of past records (*caricamento storico*); admin only.
    pub backfill: Option<Backfill>,
}

/// `POST …/complete`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"on": "2022-05-28", "note": "Ricognizione conclusa",
                          "evidence": ["Prot. n. 12345 del 27/05/2022"]}))]
pub struct CompleteBody {
    /// Valid date, YYYY-MM-DD, not after today.
    #[schema(format = Date)]
    pub on: String,
    /// Optional note (at most 4,000 characters).
    pub note: Option<String>,
    /// References to evidence, e.g. "Prot. n. 12345 del 01/03/2022" (at most 50,
    /// each at most 200 characters).
    #[serde(default)]
    pub evidence: Vec<String>,
    /// A declared loading of past records (*caricamento storico*); admin only.
    pub backfill: Option<Backfill>,
}

/// `POST …/retract`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"reason": "Completamento registrato sulla fase sbagliata"}))]
pub struct RetractBody {
    /// Why the completion was recorded in error (at most 4,000 characters).
    pub reason: String,
    /// A declared loading of past records (*caricamento storico*); admin only.
    pub backfill: Option<Backfill>,
}

/// `POST …/measurements`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"on": "2022-12-31", "numerator": 187, "denominator": 200,
                          "note": "Rimborsi evasi entro 90 giorni"}))]
pub struct MeasurementBody {
    /// Valid date.
    #[schema(format = Date)]
    pub on: String,
    /// The value (at most two decimals).
    #[schema(value_type = Option<f64>, format = Double)]
    pub value: Option<serde_json::Number>,
    /// n° a (at most 10^12).
    #[schema(maximum = 1_000_000_000_000_u64)]
    pub numerator: Option<u64>,
    /// n° b (> 0, at most 10^12).
    #[schema(minimum = 1, maximum = 1_000_000_000_000_u64)]
    pub denominator: Option<u64>,
    /// The finding, for a qualitative indicator (and only for one).
    pub text: Option<String>,
    /// Optional note.
    pub note: Option<String>,
    /// A declared loading of past records (*caricamento storico*); admin only.
    pub backfill: Option<Backfill>,
}

/// `POST …/validations`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"stage": "final", "outcome": "approved", "neutralised_phases": [3],
                          "note": "Ritardo della fase 3 non imputabile al settore",
                          "reference": "Verbale n. 3 del 15/03/2023"}))]
pub struct ValidationBody {
    /// `plan` (ex ante) or `final` (ex post).
    pub stage: ValidationStage,
    /// `approved` or `rejected`.
    pub outcome: ValidationOutcome,
    /// Declared complete but not accepted.
    #[serde(default)]
    pub unverified_phases: Vec<u32>,
    /// Not attributable to the unit (*sterilizzazione*).
    #[serde(default)]
    pub neutralised_phases: Vec<u32>,
    /// Mandatory when anything is unverified or neutralised, or rejected.
    pub note: Option<String>,
    /// The minutes, e.g. "Verbale n. 3 del 15/03/2023".
    pub reference: Option<String>,
}

/// The state of an objective.
#[utoipa::path(get, path = "/objectives/{key}", tag = "objectives",
    params(("key" = String, Path, description = "e.g. 2022-2250-A"), StateQuery),
    responses(
        (status = 200, description = "the objective", body = ObjectiveView,
         headers(("ETag" = String, description = "\"<version>\" for the current state; \"<version>-<at>\" when `at`, `seq` or `as_of` is given (the version and the date evaluated at)"))),
        (status = 304, description = "If-None-Match names the current ETag"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn get_objective(
    State(state): State<AppState>,
    _auth: Auth,
    Path(key): Path<String>,
    Query(query): Query<StateQuery>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let app = state.app.clone();
    let cut = support::record_cut(query.as_of.as_deref(), query.seq.as_deref())?;
    // The contract's `"<version>"` for the current state; with an explicit
    // evaluation date or record-time cut the body depends on them too, and the
    // tag says so (`"<version>-<at>"`).
    let explicit = query.at.as_deref().is_some_and(|a| !a.is_empty()) || cut.is_some();
    let answer_at = |o: &Objective, at| respond(o, at, explicit, &headers);
    let answered = match cut {
        // Written under the read lock, straight from the read model.
        None => {
            let at = support::evaluation_date(query.at.as_deref(), cut, &app).await?;
            app.read(|r| r.objective(&key).map(|o| answer_at(o, at)))
        }
        Some(until) => {
            let given = query
                .at
                .as_deref()
                .filter(|a| !a.is_empty())
                .map(|a| support::reference_date(Some(a), &app))
                .transpose()?;
            // From memory when the cached stream holds the cut, on this
            // thread; else one trip to the blocking pool for all the rest.
            let (objective, at) = match app.time_travel_cached(&key, until) {
                Some(found) => {
                    let (objective, date) = found?;
                    let at = match given.or(date) {
                        Some(at) => at,
                        None => {
                            let app = app.clone();
                            support::blocking(move || app.cut_date(until)).await?
                        }
                    };
                    (objective, at)
                }
                None => {
                    let key = key.clone();
                    support::blocking(move || app.time_travel(&key, until, given)).await?
                }
            };
            objective.map(|o| answer_at(&o, at))
        }
    };
    answered.ok_or_else(|| Problem::not_found(format!("no objective {key}")))?
}

/// An objective's state at `at` with its ETag, or `304` when the client holds
/// that tag; the JSON is written from the read model without a view built first.
fn respond(
    objective: &Objective,
    at: NaiveDate,
    explicit: bool,
    headers: &HeaderMap,
) -> Result<Response, Problem> {
    let etag = if explicit {
        support::objective_etag(objective.version(), at)?
    } else {
        support::version_etag(objective.version())?
    };
    if support::not_modified(headers, &etag) {
        return Ok(support::not_modified_response(etag));
    }
    // Written into a buffer sized for it: long answers (tens of KB for an
    // objective with a year of measurements) grow it once at most.
    let body = objective.answer(at).to_json().map_err(|e| {
        tracing::error!(error = %e, key = %objective.key(), "cannot serialise an objective");
        Problem::internal()
    })?;
    let mut response = body.into_response();
    response.headers_mut().typed_insert(ContentType::json());
    response.headers_mut().typed_insert(etag);
    Ok(response)
}

/// Records that a phase was started (manager of the unit).
#[utoipa::path(post, path = "/objectives/{key}/phases/{n}/start", tag = "objectives",
    params(("key" = String, Path), ("n" = u32, Path, description = "phase number"),
           ("If-Match" = Option<String>, Header), ("Idempotency-Key" = Option<String>, Header)),
    request_body = StartBody,
    responses((status = 201, body = WriteAnswer), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 404, body = Problem), (status = 409, body = Problem), (status = 412, body = Problem),
              (status = 422, body = Problem)))]
async fn start_phase(
    State(state): State<AppState>,
    request: WriteRequest,
    Path((key, n)): Path<(String, String)>,
    raw: RawBody,
) -> Result<Response, Problem> {
    authorize(&state, &request.auth, &key, Write::Progress)?;
    let body = JsonBody::<StartBody>::parse(raw)?;
    let phase = support::phase_number(&key, &n)?;
    let on = date_field("on", &body.value.on)?;
    let command = ObjectiveCommand::StartPhase {
        phase,
        on,
        note: body.value.note.clone(),
        backfill: body.value.backfill.clone(),
    };
    write(&state, &request, &key, command, &body.raw).await
}

/// Records that a phase was completed (manager of the unit).
#[utoipa::path(post, path = "/objectives/{key}/phases/{n}/complete", tag = "objectives",
    params(("key" = String, Path), ("n" = u32, Path, description = "phase number"),
           ("If-Match" = Option<String>, Header), ("Idempotency-Key" = Option<String>, Header)),
    request_body = CompleteBody,
    responses((status = 201, body = WriteAnswer), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 404, body = Problem), (status = 409, body = Problem), (status = 412, body = Problem),
              (status = 422, body = Problem)))]
async fn complete_phase(
    State(state): State<AppState>,
    request: WriteRequest,
    Path((key, n)): Path<(String, String)>,
    raw: RawBody,
) -> Result<Response, Problem> {
    authorize(&state, &request.auth, &key, Write::Progress)?;
    let body = JsonBody::<CompleteBody>::parse(raw)?;
    let phase = support::phase_number(&key, &n)?;
    let on = date_field("on", &body.value.on)?;
    let command = ObjectiveCommand::CompletePhase {
        phase,
        on,
        note: body.value.note.clone(),
        evidence: body.value.evidence.clone(),
        backfill: body.value.backfill.clone(),
    };
    write(&state, &request, &key, command, &body.raw).await
}

/// Withdraws a completion recorded in error (manager of the unit).
#[utoipa::path(post, path = "/objectives/{key}/phases/{n}/retract", tag = "objectives",
    params(("key" = String, Path), ("n" = u32, Path, description = "phase number"),
           ("If-Match" = Option<String>, Header), ("Idempotency-Key" = Option<String>, Header)),
    request_body = RetractBody,
    responses((status = 201, body = WriteAnswer), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 404, body = Problem), (status = 409, body = Problem), (status = 412, body = Problem),
              (status = 422, body = Problem)))]
async fn retract_completion(
    State(state): State<AppState>,
    request: WriteRequest,
    Path((key, n)): Path<(String, String)>,
    raw: RawBody,
) -> Result<Response, Problem> {
    authorize(&state, &request.auth, &key, Write::Progress)?;
    let body = JsonBody::<RetractBody>::parse(raw)?;
    let phase = support::phase_number(&key, &n)?;
    let command = ObjectiveCommand::RetractCompletion {
        phase,
        reason: body.value.reason.clone(),
        backfill: body.value.backfill.clone(),
    };
    write(&state, &request, &key, command, &body.raw).await
}

/// Records an indicator measurement (manager of the unit).
#[utoipa::path(post, path = "/objectives/{key}/indicators/{id}/measurements", tag = "objectives",
    params(("key" = String, Path), ("id" = String, Path, description = "indicator id"),
           ("If-Match" = Option<String>, Header), ("Idempotency-Key" = Option<String>, Header)),
    request_body = MeasurementBody,
    responses((status = 201, body = WriteAnswer), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 404, body = Problem), (status = 409, body = Problem), (status = 412, body = Problem),
              (status = 422, body = Problem)))]
async fn record_measurement(
    State(state): State<AppState>,
    request: WriteRequest,
    Path((key, indicator)): Path<(String, String)>,
    raw: RawBody,
) -> Result<Response, Problem> {
    authorize(&state, &request.auth, &key, Write::Progress)?;
    let body = JsonBody::<MeasurementBody>::parse(raw)?;
    let on = date_field("on", &body.value.on)?;
    let value = match &body.value.value {
        None => None,
        Some(number) => Some(
            Hundredths::from_json(number)
                .map_err(|message| Problem::invalid(vec![FieldError::new("value", message)]))?,
        ),
    };
    let command = ObjectiveCommand::RecordMeasurement(crate::commands::Measurement {
        indicator,
        on,
        value,
        numerator: body.value.numerator,
        denominator: body.value.denominator,
        text: body.value.text.clone(),
        entry: crate::commands::Entry {
            note: body.value.note.clone(),
            backfill: body.value.backfill.clone(),
        },
    });
    write(&state, &request, &key, command, &body.raw).await
}

/// Records a validation of the *Nucleo di Valutazione* (validator).
#[utoipa::path(post, path = "/objectives/{key}/validations", tag = "objectives",
    params(("key" = String, Path),
           ("If-Match" = Option<String>, Header), ("Idempotency-Key" = Option<String>, Header)),
    request_body = ValidationBody,
    responses((status = 201, body = WriteAnswer), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 404, body = Problem), (status = 409, body = Problem), (status = 412, body = Problem),
              (status = 422, body = Problem)))]
async fn record_validation(
    State(state): State<AppState>,
    request: WriteRequest,
    Path(key): Path<String>,
    raw: RawBody,
) -> Result<Response, Problem> {
    authorize(&state, &request.auth, &key, Write::Validation)?;
    let body = JsonBody::<ValidationBody>::parse(raw)?;
    let v = &body.value;
    let command = ObjectiveCommand::RecordValidation(crate::commands::ValidationRequest {
        stage: v.stage,
        outcome: v.outcome,
        unverified_phases: v.unverified_phases.clone(),
        neutralised_phases: v.neutralised_phases.clone(),
        note: v.note.clone(),
        reference: v.reference.clone(),
    });
    write(&state, &request, &key, command, &body.raw).await
}

/// The raw events of an objective's stream.
#[utoipa::path(get, path = "/objectives/{key}/events", tag = "audit",
    params(("key" = String, Path)),
    responses((status = 200, body = Vec<RecordedEvent>), (status = 401, body = Problem), (status = 404, body = Problem)))]
async fn objective_events(
    State(state): State<AppState>,
    _auth: Auth,
    Path(key): Path<String>,
) -> Result<Response, Problem> {
    let app = state.app.clone();
    let events = support::blocking(move || app.objective_events(&key)).await?;
    Ok(Json(events).into_response())
}

/// What a write does, for [`authorize`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Write {
    /// A start, completion, retraction or measurement.
    Progress,
    /// A validation of the Nucleo.
    Validation,
}

/// Refuses (403) a caller who may not make this kind of write on objective
/// `key`, before the body is read: a caller without the right is told so,
/// whatever the body holds. Progress needs a manager of the objective's unit,
/// or an admin (whose back-fill declaration the command checks); a validation
/// needs a validator. The command checks everything again, with the body.
fn authorize(state: &AppState, auth: &Auth, key: &str, write: Write) -> Result<(), Problem> {
    let principal = &auth.0;
    let refused = match write {
        Write::Validation if principal.role != Role::Validator => Some(DomainError::NotValidator {
            actor: principal.name.clone(),
            role: principal.role,
        }),
        Write::Validation => None,
        Write::Progress if principal.role == Role::Admin => None,
        Write::Progress => state
            .app
            .read(|r| r.objective(key).map(|o| o.unit().to_string()))
            .filter(|unit| !principal.manages(unit))
            .map(|unit| DomainError::NotManagerOf {
                key: key.to_string(),
                unit,
                actor: principal.name.clone(),
                role: principal.role,
                units: principal.units.clone(),
            }),
    };
    match refused {
        Some(e) => Err(crate::error::AppError::from(e).into()),
        None => Ok(()),
    }
}

fn date_field(field: &str, text: &str) -> Result<NaiveDate, Problem> {
    crate::plan_document::parse_date(text)
        .map_err(|message| Problem::invalid(vec![FieldError::new(field, message)]))
}

/// What every write takes from its request besides the body: the caller, and the
/// method, path and headers its idempotency key and `If-Match` are read from.
pub struct WriteRequest {
    /// The caller.
    pub auth: Auth,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
}

impl WriteRequest {
    /// The request's idempotency key for a body, if it sent one.
    ///
    /// # Errors
    /// 400 for a malformed key.
    pub fn idempotency_key(
        &self,
        raw: &[u8],
    ) -> Result<Option<traguardo_events::store::IdempotencyKey>, Problem> {
        support::idempotency_key(&self.headers, &self.auth.0, &self.method, &self.uri, raw)
    }
}

impl axum::extract::FromRequestParts<AppState> for WriteRequest {
    type Rejection = Problem;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<Self, Problem> {
        let auth = Auth::from_request_parts(parts, state).await?;
        Ok(WriteRequest {
            auth,
            method: parts.method.clone(),
            uri: parts.uri.clone(),
            headers: parts.headers.clone(),
        })
    }
}

async fn write(
    state: &AppState,
    request: &WriteRequest,
    key: &str,
    command: ObjectiveCommand,
    raw: &[u8],
) -> Result<Response, Problem> {
    let today = state.app.today();
    let version = state.app.read(|r| r.objective(key).map(|o| o.version()));
    let idempotency = request.idempotency_key(raw)?;
    let auth = &request.auth;
    let started = std::time::Instant::now();
    let written = match support::if_match(&request.headers, version, today) {
        Ok(if_match) => {
            state
                .app
                .execute(key, &command, &auth.0, if_match, idempotency)
                .await?
        }
        // The key wins over the version: a retry whose first attempt committed
        // (and so moved the version) gets that first answer, not a 412.
        Err(stale) => match state.app.idempotent_answer(idempotency.as_ref()).await? {
            Some(first) => first,
            None => return Err(stale),
        },
    };
    state
        .metrics
        .append_seconds
        .observe(started.elapsed().as_secs_f64());
    let (seq, body) = answer(state, key, &written).await?;
    // What the write created: the objective's state as of its event.
    let location = format!("/api/v1/objectives/{key}?seq={seq}");
    Ok(support::created_json(
        body,
        written.replayed,
        Some(location),
    ))
}

/// The seq of the write's event and the answer's JSON ([`WriteAnswer`]).
async fn answer(state: &AppState, key: &str, written: &Written) -> Result<(u64, Vec<u8>), Problem> {
    let event = written.events.last().ok_or_else(Problem::internal)?;
    let event = EventRef::from(event);
    let at = state.app.today();
    let seq = event.seq;
    let failed = |e: &dyn std::fmt::Display| {
        tracing::error!(error = %e, "an objective's state did not serialise");
        Problem::internal()
    };
    let current = state.app.read(|r| {
        r.objective(key)
            .filter(|o| o.last_seq() == seq)
            .map(|o| write_answer(&event, o, at))
    });
    let body = match current {
        Some(body) => body.map_err(|e| failed(&e))?,
        None => {
            // Someone wrote since: answer with the state right after this event.
            let app = state.app.clone();
            let key = key.to_string();
            let objective = support::blocking(move || app.objective_as_of(&key, Until::Seq(seq)))
                .await?
                .ok_or_else(Problem::internal)?;
            write_answer(&event, &objective, at).map_err(|e| failed(&e))?
        }
    };
    Ok((seq, body))
}
