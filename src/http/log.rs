//! The global log, for auditors and admins: raw events (or CloudEvents 1.0), a
//! live feed of server-sent events, and the integrity of the chain.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::stream::Stream;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use traguardo_events::model::Role;
use traguardo_events::RecordedEvent;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::auth::Auth;
use super::problem::Problem;
use super::{support, AppState};
use crate::error::FieldError;

/// Events per page of `GET /events` at most.
const MAX_LIMIT: usize = 1000;

/// The routes of this area.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_events))
        .routes(routes!(event_stream))
        .routes(routes!(integrity))
}

/// `GET /events` parameters.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// Only events with seq greater than this (default 0).
    #[param(value_type = Option<u64>, format = Int64, minimum = 0)]
    pub after: Option<String>,
    /// At most this many (default 100, at most 1000).
    #[param(value_type = Option<u64>, format = Int64, minimum = 1, maximum = 1000)]
    pub limit: Option<String>,
    /// `raw` (default) or `cloudevents`.
    #[param(schema_with = support::events_format_schema)]
    pub format: Option<String>,
}

/// The global log from a position, raw or as CloudEvents 1.0.
#[utoipa::path(get, path = "/events", tag = "audit", params(EventsQuery),
    responses((status = 200, description = "the events, oldest first; with `format=cloudevents` a CloudEvents 1.0 JSON batch",
               content((Vec<RecordedEvent> = "application/json"), (Vec<Object> = "application/cloudevents-batch+json"))),
              (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 422, body = Problem)))]
async fn list_events(
    State(state): State<AppState>,
    auth: Auth,
    Query(query): Query<EventsQuery>,
) -> Result<Response, Problem> {
    auth.require(&[Role::Auditor, Role::Admin])?;
    let mut errors = Vec::new();
    let after = number(query.after.as_deref(), 0, "after", &mut errors);
    let limit = number(query.limit.as_deref(), 100, "limit", &mut errors);
    let cloudevents = match query.format.as_deref() {
        None | Some("") | Some("raw") => false,
        Some("cloudevents") => true,
        Some(other) => {
            errors.push(FieldError::new(
                "format",
                format!("{other:?} is not raw or cloudevents"),
            ));
            false
        }
    };
    if limit == 0 || limit > MAX_LIMIT as u64 {
        errors.push(FieldError::new(
            "limit",
            format!("must be between 1 and {MAX_LIMIT}"),
        ));
    }
    if !errors.is_empty() {
        return Err(Problem::invalid(errors));
    }
    let app = state.app.clone();
    let events =
        support::blocking(move || Ok(app.store().read_all(after, limit as usize)?)).await?;
    if cloudevents {
        let body: Vec<Value> = events.iter().map(cloud_event).collect();
        let mut response = Json(body).into_response();
        response.headers_mut().insert(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static("application/cloudevents-batch+json"),
        );
        return Ok(response);
    }
    Ok(Json(events).into_response())
}

fn number(text: Option<&str>, default: u64, field: &str, errors: &mut Vec<FieldError>) -> u64 {
    match text.filter(|t| !t.is_empty()) {
        None => default,
        Some(t) => support::seq_number(field, t).unwrap_or_else(|e| {
            errors.push(e);
            default
        }),
    }
}

/// An event as a CloudEvents 1.0 JSON object; the chain travels in extension
/// attributes.
pub fn cloud_event(e: &RecordedEvent) -> Value {
    json!({
        "specversion": "1.0",
        "id": e.id.to_string(),
        "source": format!("/traguardo/{}", e.stream),
        "type": format!("it.traguardo.{}", e.event_type),
        "subject": e.stream,
        "time": traguardo_events::envelope::format_timestamp(&e.recorded_at),
        "datacontenttype": "application/json",
        "dataschema": format!("urn:traguardo:{}:{}", e.event_type, e.schema),
        "data": e.data,
        "seq": e.seq,
        "streamversion": e.version,
        "actor": e.actor,
        "role": e.role,
        "correlation": e.correlation,
        "prevhash": e.prev_hash,
        "hash": e.hash,
    })
}

/// `GET /events/stream` parameters.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StreamQuery {
    /// Start after this seq (the `Last-Event-ID` header wins when both are sent).
    #[param(value_type = Option<u64>, format = Int64, minimum = 0)]
    pub after: Option<String>,
}

/// One event of the live feed, as an SSE client reads it (the schema of each
/// event of `text/event-stream`, as OpenAPI 3.2's `itemSchema` would say).
#[derive(Debug, Serialize, ToSchema)]
pub struct FeedEvent {
    /// The event's seq: reconnect with it as `Last-Event-ID` to resume after it.
    #[schema(pattern = "^[0-9]+$", example = "42")]
    pub id: String,
    /// The event's type, e.g. `phase_completed`.
    #[schema(example = "phase_completed")]
    pub event: String,
    /// The event as JSON, as `GET /events` answers each one.
    #[schema(content_media_type = "application/json")]
    pub data: String,
}

impl FeedEvent {
    /// The feed's event for a recorded one.
    fn of(e: &RecordedEvent) -> Option<FeedEvent> {
        Some(FeedEvent {
            id: e.seq.to_string(),
            event: e.event_type.clone(),
            data: serde_json::to_string(e).ok()?,
        })
    }
}

impl From<FeedEvent> for Event {
    fn from(e: FeedEvent) -> Event {
        Event::default().id(e.id).event(e.event).data(e.data)
    }
}

/// The global log as server-sent events, each with `id: <seq>`; reconnect with
/// `Last-Event-ID` to resume without gaps or duplicates.
#[utoipa::path(get, path = "/events/stream", tag = "audit",
    params(StreamQuery, ("Last-Event-ID" = Option<String>, Header)),
    responses((status = 200, description = "text/event-stream of events: the schema is that of each event, with its id, event type and data",
               content_type = "text/event-stream", body = FeedEvent),
              (status = 401, body = Problem), (status = 403, body = Problem)))]
async fn event_stream(
    State(state): State<AppState>,
    auth: Auth,
    headers: HeaderMap,
    Query(query): Query<StreamQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, Problem> {
    auth.require(&[Role::Auditor, Role::Admin])?;
    // An empty Last-Event-ID (a client that has seen nothing yet) leaves `after`.
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
        .or(query.after);
    let after = match resume.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        None => 0,
        Some(text) => {
            support::seq_number("Last-Event-ID", text).map_err(|e| Problem::invalid(vec![e]))?
        }
    };
    let feed = Feed {
        state: state.clone(),
        cursor: after,
        buffer: VecDeque::new(),
        head: state.app.store().watch_head(),
        shutdown: state.shutdown.clone(),
    };
    let stream = futures_util::stream::unfold(feed, |mut feed| async move {
        let event = feed.next().await?;
        Some((Ok(event), feed))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

struct Feed {
    state: AppState,
    cursor: u64,
    buffer: VecDeque<RecordedEvent>,
    head: tokio::sync::watch::Receiver<traguardo_events::Head>,
    shutdown: tokio::sync::watch::Receiver<bool>,
}

impl Feed {
    /// The next event after the cursor, waiting for one if need be; `None` when
    /// the server shuts down (or the log cannot be read).
    async fn next(&mut self) -> Option<Event> {
        loop {
            if *self.shutdown.borrow() {
                return None;
            }
            if let Some(e) = self.buffer.pop_front() {
                self.cursor = e.seq;
                return FeedEvent::of(&e).map(Event::from);
            }
            // Mark the head as seen before reading, so a commit in between wakes us.
            self.head.borrow_and_update();
            let app = self.state.app.clone();
            let after = self.cursor;
            let page = support::blocking(move || Ok(app.store().read_all(after, 256)?)).await;
            match page {
                Ok(events) if !events.is_empty() => self.buffer.extend(events),
                Ok(_) => {
                    tokio::select! {
                        changed = self.head.changed() => if changed.is_err() { return None; },
                        _ = self.shutdown.changed() => return None,
                    }
                }
                Err(_) => return None,
            }
        }
    }
}

/// `GET /integrity`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Integrity {
    /// Events that verified.
    pub events: u64,
    /// The last verified seq.
    pub head_seq: u64,
    /// Its hash.
    pub head_hash: String,
    /// Whether the whole chain holds and the append-only triggers are in place.
    pub ok: bool,
    /// Where the chain breaks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_bad_seq: Option<u64>,
    /// What is wrong there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// Recomputes the hash chain of the whole log.
#[utoipa::path(get, path = "/integrity", tag = "audit",
    responses((status = 200, body = Integrity), (status = 401, body = Problem), (status = 403, body = Problem)))]
async fn integrity(State(state): State<AppState>, auth: Auth) -> Result<Response, Problem> {
    auth.require(&[Role::Auditor, Role::Admin])?;
    let app = state.app.clone();
    let v = support::heavy(move || Ok(app.store().verify(&[])?)).await?;
    let problem = match (&v.problem, v.triggers_present) {
        (Some(p), _) => Some(p.clone()),
        (None, false) => Some("the append-only triggers have been removed".to_string()),
        (None, true) => None,
    };
    Ok(Json(Integrity {
        events: v.events,
        head_seq: v.head.seq,
        head_hash: v.head.hash.clone(),
        ok: v.ok(),
        first_bad_seq: v.first_bad_seq,
        problem,
    })
    .into_response())
}
