//! What auditors and the control office read about a whole year: the end-of-year
//! report, red flags, the replay of a revision, and audit trails.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, OnceLock};

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use headers::{ETag, HeaderMapExt};
use serde::Deserialize;
use traguardo_events::store::Until;
use traguardo_events::Head;
use traguardo_projections::flags::FlagSettings;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::auth::Auth;
use super::objectives::{EventRef, WriteRequest};
use super::problem::{JsonBody, Problem};
use super::support::{self, AuditQuery};
use super::AppState;
use crate::error::FieldError;

/// The routes of this area.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(plan_report))
        .routes(routes!(plan_flags))
        .routes(routes!(acknowledge_flag))
        .routes(routes!(get_revision))
        .routes(routes!(plan_audit))
        .routes(routes!(objective_audit))
}

/// `GET /plans/{year}/report` parameters.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReportQuery {
    /// `json` (default), `csv`, `md`, `html`, `xlsx` or `pdf`.
    #[param(schema_with = support::report_format_schema)]
    pub format: Option<String>,
    /// For csv: `phase` (default, a row per phase) or `objective`.
    #[param(schema_with = support::report_level_schema)]
    pub level: Option<String>,
    /// Reference date of the scores (default today).
    #[param(format = Date, example = "2022-12-31")]
    pub at: Option<String>,
    /// Record-time cut: the report as the log held it then (RFC 3339 or date).
    pub as_of: Option<String>,
}

/// The end-of-year achievement report. A report is computed once per log head
/// and parameters: its weak ETag names both, and `If-None-Match` with it
/// answers 304 until the next write.
#[utoipa::path(get, path = "/plans/{year}/report", tag = "reports", params(("year" = i32, Path), ReportQuery,
        ("If-None-Match" = Option<String>, Header, description = "the ETag of a report already held: 304 while the log has not moved")),
    responses((status = 200, description = "the report in the format asked (JSON: the `Report` document; PDF: PDF/A-2b, A4)",
               headers(("ETag" = String, description = "weak: `W/\"<head seq>-<digest of the head and the parameters>\"`")),
               content((crate::report::Report = "application/json"), (String = "text/csv"), (String = "text/markdown"), (String = "text/html"), (Vec<u8> = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"), (Vec<u8> = "application/pdf"))),
              (status = 304, description = "If-None-Match names the report of the current head"),
              (status = 401, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem),
              (status = 500, description = "the report could not be rendered (`report-rendering`)", body = Problem)))]
async fn plan_report(
    State(state): State<AppState>,
    _auth: Auth,
    Path(year): Path<String>,
    Query(query): Query<ReportQuery>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let year = support::plan_year(&year)?;
    let format: crate::report::Format = query
        .format
        .as_deref()
        .filter(|f| !f.is_empty())
        .unwrap_or("json")
        .parse()?;
    let level: crate::report::Level = match query.level.as_deref().filter(|l| !l.is_empty()) {
        Some(text) => text.parse()?,
        None => Default::default(),
    };
    let at = match query.at.as_deref().filter(|a| !a.is_empty()) {
        Some(_) => Some(support::reference_date(query.at.as_deref(), &state.app)?),
        None => None,
    };
    let as_of = match query.as_of.as_deref().filter(|t| !t.is_empty()) {
        Some(text) => Some(support::parse_timestamp("as_of", text)?),
        None => None,
    };
    let key = ReportKey {
        db: state.app.store().location(),
        year,
        format: query.format.clone().unwrap_or_default(),
        level: query.level.clone().unwrap_or_default(),
        at: at.unwrap_or_else(|| state.app.today()),
        as_of,
    };
    // No plan, no report: a 404 whatever the condition (`If-None-Match: *`
    // matches any current report, and there is none to match).
    if !state.app.read(|r| r.plan(year).is_some()) {
        return Err(
            crate::error::AppError::Domain(crate::commands::DomainError::UnknownPlan { year })
                .into(),
        );
    }
    let app = state.app.clone();
    let head = support::blocking(move || {
        // As of a record time, the plan must have existed then too: its
        // stream's first event was recorded by the cut.
        if let Some(cut) = as_of {
            let first = app.store().read_stream_from(
                &traguardo_events::model::plan_stream(year),
                1,
                Until::Version(1),
            )?;
            if first.first().is_none_or(|e| e.recorded_at > cut) {
                return Err(crate::report::model::no_plan_as_of(year, cut));
            }
        }
        Ok(app.store().head()?)
    })
    .await?;
    let etag = key.etag(format, level, &head)?;
    if support::not_modified(&headers, &etag) {
        return Ok(support::not_modified_response(etag));
    }
    let (rendered, head) = match report_cache().get(&key, &head) {
        Some(rendered) => (rendered, head),
        None => {
            let app = state.app.clone();
            let checkpoints = state.checkpoints.clone();
            let computed = support::heavy(move || {
                // Whole seconds, as the command line writes it.
                let generated_at = chrono::SubsecRound::trunc_subsecs(app.store().clock().now(), 0);
                let mut report = crate::report::build(&app, year, at, as_of, generated_at)?;
                // A server that signs checkpoints names the one of exactly this head.
                checkpoints.refresh(&**app.store())?;
                report.checkpoint = checkpoints.of_size(report.head.seq).map(|n| n.to_string());
                let rendered = crate::report::render(&report, format, level)?;
                Ok((report.head, rendered))
            })
            .await?;
            let (computed_head, rendered) = computed;
            let rendered = Arc::new(rendered);
            // Keyed by the head of the log it was computed on: a write may have
            // landed since the head above was read (with `as_of` the report's
            // own head is an earlier one).
            let head = if computed_head.seq > head.seq {
                computed_head
            } else {
                head
            };
            report_cache().put(key.clone(), head.clone(), rendered.clone());
            (rendered, head)
        }
    };
    let etag = key.etag(format, level, &head)?;
    let rendered = rendered.as_ref();
    let mut response = rendered.body.clone().into_response();
    let headers = response.headers_mut();
    headers.typed_insert(etag);
    if let Ok(value) = HeaderValue::from_str(rendered.content_type) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    let disposition = format!(
        "inline; filename=\"relazione-{year}.{}\"",
        rendered.file_extension
    );
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}

/// What a report depends on besides the log: its parameters, with the
/// reference date resolved (so a report "as of today" is computed again the
/// next day).
#[derive(Debug, Clone, PartialEq, Eq)]
struct ReportKey {
    /// The log (tests run several servers in one process).
    db: String,
    year: i32,
    format: String,
    level: String,
    at: chrono::NaiveDate,
    as_of: Option<chrono::DateTime<chrono::Utc>>,
}

impl ReportKey {
    /// The weak ETag of the report these parameters give at `head`:
    /// `W/"<seq>-<16 hex digits>"`, a digest of the head's hash and the
    /// parameters. Weak, since two computations at one head differ in their
    /// generation time and nothing else.
    fn etag(
        &self,
        format: crate::report::Format,
        level: crate::report::Level,
        head: &Head,
    ) -> Result<ETag, Problem> {
        let parameters = format!(
            "{}\n{}\n{}\n{format:?}\n{level:?}\n{}\n{:?}",
            self.db, head.hash, self.year, self.at, self.as_of
        );
        let digest = crate::app::sha256_hex(&parameters);
        format!("W/\"{}-{}\"", head.seq, &digest[..16])
            .parse()
            .map_err(|_| Problem::internal())
    }
}

/// Reports kept at most.
const REPORT_CACHE_ENTRIES: usize = 16;

/// The reports computed lately, each with the head of the log it was computed
/// at: a report is computed once per (head, parameters), and any write (which
/// moves the head) makes every entry stale. Bounded: the oldest entry goes
/// first.
#[derive(Default)]
struct ReportCache {
    entries: Mutex<VecDeque<(ReportKey, Head, Arc<crate::report::Rendered>)>>,
}

impl ReportCache {
    fn get(&self, key: &ReportKey, head: &Head) -> Option<Arc<crate::report::Rendered>> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .iter()
            .find(|(k, at, _)| at == head && k == key)
            .map(|(_, _, rendered)| rendered.clone())
    }

    fn put(&self, key: ReportKey, head: Head, rendered: Arc<crate::report::Rendered>) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        // An entry of the same report at another head will not be asked for again.
        entries.retain(|(k, _, _)| k != &key);
        if entries.len() >= REPORT_CACHE_ENTRIES {
            entries.pop_front();
        }
        entries.push_back((key, head, rendered));
    }
}

/// The process's report cache (one log per process).
fn report_cache() -> &'static ReportCache {
    static CACHE: OnceLock<ReportCache> = OnceLock::new();
    CACHE.get_or_init(ReportCache::default)
}

/// `GET /plans/{year}/flags` parameters.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FlagsQuery {
    /// A completion recorded more than this many days after its date is flagged
    /// (default 30).
    #[param(value_type = Option<u32>, format = Int32, minimum = 0)]
    pub late_days: Option<String>,
    /// Only what the log held at this record time (RFC 3339, or a date for the
    /// end of that day in Italy).
    pub as_of: Option<String>,
    /// Only what the log held up to this seq.
    #[param(value_type = Option<u64>, format = Int64, minimum = 0)]
    pub seq: Option<String>,
}

/// Red flags of a year, each with the events that raise it.
#[utoipa::path(get, path = "/plans/{year}/flags", tag = "audit", params(("year" = i32, Path), FlagsQuery),
    responses((status = 200, description = "[{kind, objective, phase?, seqs, message}]", body = Vec<Object>),
              (status = 401, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn plan_flags(
    State(state): State<AppState>,
    _auth: Auth,
    Path(year): Path<String>,
    Query(query): Query<FlagsQuery>,
) -> Result<Response, Problem> {
    let year = support::plan_year(&year)?;
    known_plan(&state, year)?;
    let mut settings = FlagSettings::default();
    if let Some(text) = query.late_days.as_deref().filter(|t| !t.is_empty()) {
        // A whole number of days within the documented int32 range.
        let days = text.parse::<i32>().ok().filter(|d| *d >= 0);
        settings.late_registration_days = days.map(i64::from).ok_or_else(|| {
            Problem::invalid(vec![FieldError::new(
                "late_days",
                format!(
                    "{text:?} non è un numero di giorni (un intero da 0 a {})",
                    i32::MAX
                ),
            )])
        })?;
    }
    let until =
        support::record_cut(query.as_of.as_deref(), query.seq.as_deref())?.unwrap_or(Until::End);
    let app = state.app.clone();
    let flags = support::heavy(move || {
        let events = app.year_events(year, until)?;
        Ok(traguardo_projections::flags::red_flags(&events, &settings)?)
    })
    .await?;
    Ok(Json(flags).into_response())
}

/// `POST /plans/{year}/flags/{id}/acknowledgements`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"note": "Esaminata: il ritardo dipende dall'avvio di PagoPA, non dal settore"}))]
pub struct AcknowledgementBody {
    /// What the Nucleo found (at most 4,000 characters).
    pub note: String,
}

/// An acknowledgement recorded.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct AcknowledgementAnswer {
    /// The event appended.
    pub event: EventRef,
    /// The flag as it stands now.
    #[schema(value_type = Object)]
    pub flag: Option<traguardo_projections::flags::Flag>,
}

/// The Nucleo di Valutazione examined a red flag (validator): it stays listed with
/// `status: "acknowledged"`, who, when and the note.
#[utoipa::path(post, path = "/plans/{year}/flags/{id}/acknowledgements", tag = "audit",
    params(("year" = i32, Path), ("id" = String, Path, description = "the flag's id"),
           ("Idempotency-Key" = Option<String>, Header)),
    request_body = AcknowledgementBody,
    responses((status = 201, body = AcknowledgementAnswer), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn acknowledge_flag(
    State(state): State<AppState>,
    request: WriteRequest,
    Path((year, id)): Path<(String, String)>,
    body: JsonBody<AcknowledgementBody>,
) -> Result<Response, Problem> {
    let year = support::plan_year(&year)?;
    let idempotency = request.idempotency_key(&body.raw)?;
    let written = state
        .app
        .acknowledge_flag(year, &id, &body.value.note, &request.auth.0, idempotency)
        .await?;
    let app = state.app.clone();
    let flag_id = id.clone();
    let flag = support::blocking(move || {
        let events = app.year_events(year, Until::End)?;
        let flags = traguardo_projections::flags::red_flags(&events, &FlagSettings::default())?;
        Ok(flags.into_iter().find(|f| f.id == flag_id))
    })
    .await?;
    let event = written
        .events
        .first()
        .map(EventRef::from)
        .ok_or_else(Problem::internal)?;
    Ok(support::created(
        AcknowledgementAnswer { event, flag },
        written.replayed,
        Some(format!("/api/v1/plans/{year}/flags")),
    ))
}

/// `GET /plans/{year}/revisions/{id}` parameters.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RevisionQuery {
    /// Reference date of the before/after states (default today).
    #[param(format = Date, example = "2022-12-31")]
    pub at: Option<String>,
}

/// A revision replayed: its act, reason, who and when, its changes, and every
/// objective it touched before and after, with a field-by-field diff.
#[utoipa::path(get, path = "/plans/{year}/revisions/{id}", tag = "revisions",
    params(("year" = i32, Path), ("id" = String, Path, description = "the revision's id"), RevisionQuery),
    responses((status = 200, description = "the revision replayed", body = Object), (status = 401, body = Problem),
              (status = 404, body = Problem)))]
async fn get_revision(
    State(state): State<AppState>,
    _auth: Auth,
    Path((year, id)): Path<(String, String)>,
    Query(query): Query<RevisionQuery>,
) -> Result<Response, Problem> {
    let year = support::plan_year(&year)?;
    let id: Uuid = id
        .parse()
        .map_err(|_| Problem::not_found(format!("no revision {id} in plan {year}")))?;
    known_plan(&state, year)?;
    let at = support::reference_date(query.at.as_deref(), &state.app)?;
    let app = state.app.clone();
    let replay = support::heavy(move || {
        let events = app.year_events(year, Until::End)?;
        Ok(traguardo_projections::revision::replay(&events, id, at)?)
    })
    .await?
    .ok_or_else(|| Problem::not_found(format!("no revision {id} in plan {year}")))?;
    let mut answer = serde_json::to_value(replay).map_err(|_| Problem::internal())?;
    support::with_request_names(&mut answer);
    Ok(Json(answer).into_response())
}

/// The audit trail of a whole plan year, oldest first; filter by unit, actor,
/// event type and record-time range.
#[utoipa::path(get, path = "/plans/{year}/audit", tag = "audit", params(("year" = i32, Path), AuditQuery),
    responses((status = 200, description = "[{seq, recorded_at, actor, role, type, summary, changes, reason?, act?, hash}]", body = Vec<Object>),
              (status = 401, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn plan_audit(
    State(state): State<AppState>,
    _auth: Auth,
    Path(year): Path<String>,
    Query(query): Query<AuditQuery>,
) -> Result<Response, Problem> {
    let year = support::plan_year(&year)?;
    known_plan(&state, year)?;
    let filter = query.filter()?;
    let app = state.app.clone();
    let trail = support::heavy(move || {
        let events = app.year_events(year, Until::End)?;
        Ok(traguardo_projections::audit::plan_trail(&events, &filter)?)
    })
    .await?;
    Ok(Json(trail).into_response())
}

/// The audit trail of one objective, oldest first, with the same filters.
#[utoipa::path(get, path = "/objectives/{key}/audit", tag = "audit", params(("key" = String, Path), AuditQuery),
    responses((status = 200, description = "[{seq, recorded_at, actor, role, type, summary, changes, reason?, act?, hash}]", body = Vec<Object>),
              (status = 401, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn objective_audit(
    State(state): State<AppState>,
    _auth: Auth,
    Path(key): Path<String>,
    Query(query): Query<AuditQuery>,
) -> Result<Response, Problem> {
    let filter = query.filter()?;
    let app = state.app.clone();
    let trail = support::heavy(move || {
        let events = app.objective_events(&key)?;
        Ok(traguardo_projections::audit::trail(&events, &filter)?)
    })
    .await?;
    Ok(Json(trail).into_response())
}

fn known_plan(state: &AppState, year: i32) -> Result<(), Problem> {
    if state.app.read(|r| r.plan(year).is_some()) {
        Ok(())
    } else {
        Err(Problem::not_found(format!("no plan for {year}")))
    }
}
