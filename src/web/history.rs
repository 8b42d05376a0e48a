//! Audit trails with filters, and time travel: an objective as the log held it
//! at a record time (`as_of`, or after a given event) evaluated at a valid date
//! (`at`).

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use serde::Deserialize;
use traguardo_events::clock::{local_date, TIME_ZONE};
use traguardo_events::store::Until;
use traguardo_projections::audit::{AuditEntry, AuditFilter};
use traguardo_projections::italian;

use super::pages::{blocking, parse_date};
use super::session::SignedIn;
use super::{render, view, Chrome, PageError};
use crate::error::AppError;
use crate::http::AppState;

/// Filters and time-travel controls, as the form sends them.
#[derive(Debug, Deserialize, Default, Clone)]
pub struct HistoryQuery {
    /// Valid date.
    pub at: Option<String>,
    /// Record time: `YYYY-MM-DDTHH:MM` (Italian time, as `datetime-local`
    /// inputs send it), RFC 3339, or a date (its end).
    pub as_of: Option<String>,
    /// Record time: after this event.
    pub seq: Option<String>,
    /// Only this actor.
    pub actor: Option<String>,
    /// Only this event type.
    #[serde(rename = "type")]
    pub event_type: Option<String>,
    /// Only this unit (plan trail).
    pub unit: Option<String>,
    /// Recorded on or after this date.
    pub from: Option<String>,
    /// Recorded on or before this date.
    pub to: Option<String>,
}

fn some(text: &Option<String>) -> Option<String> {
    text.as_ref()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
}

/// A record time typed by a person.
fn parse_record_time(text: &str) -> Result<DateTime<Utc>, PageError> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(text, format) {
            if let Some(t) = TIME_ZONE.from_local_datetime(&naive).earliest() {
                return Ok(t.with_timezone(&Utc));
            }
        }
    }
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        if let Some(t) = date
            .and_hms_micro_opt(23, 59, 59, 999_999)
            .and_then(|n| TIME_ZONE.from_local_datetime(&n).earliest())
        {
            return Ok(t.with_timezone(&Utc));
        }
    }
    Err(PageError::bad_request(format!(
        "«{text}» non è un momento di registrazione valido (data e ora)"
    )))
}

fn filter_of(q: &HistoryQuery) -> Result<AuditFilter, PageError> {
    let day = |text: &Option<String>, end: bool| -> Result<Option<DateTime<Utc>>, PageError> {
        match some(text) {
            None => Ok(None),
            Some(t) => {
                let date = parse_date("from", &t).map_err(|e| PageError::bad_request(e.message))?;
                let time = if end {
                    date.and_hms_micro_opt(23, 59, 59, 999_999)
                } else {
                    date.and_hms_opt(0, 0, 0)
                };
                Ok(time
                    .and_then(|n| TIME_ZONE.from_local_datetime(&n).earliest())
                    .map(|t| t.with_timezone(&Utc)))
            }
        }
    };
    Ok(AuditFilter {
        unit: some(&q.unit),
        actor: some(&q.actor),
        event_type: some(&q.event_type),
        from: day(&q.from, false)?,
        to: day(&q.to, true)?,
    })
}

/// A line of the trail.
struct TrailLine {
    seq: u64,
    recorded_at: String,
    actor: String,
    role: String,
    event_type: String,
    summary: String,
    changes: Vec<String>,
    reason: String,
    act: String,
    hash: String,
    objective: String,
}

fn trail_lines(entries: Vec<AuditEntry>) -> Vec<TrailLine> {
    entries
        .into_iter()
        .map(|e| TrailLine {
            seq: e.seq,
            recorded_at: italian::timestamp(e.recorded_at),
            actor: e.actor,
            role: e
                .role
                .parse()
                .map(|r| italian::role(r).to_string())
                .unwrap_or(e.role),
            event_type: e.event_type,
            summary: e.summary,
            changes: e
                .changes
                .iter()
                .map(|c| format!("{}: {} → {}", c.field, c.from, c.to))
                .collect(),
            reason: e.reason.unwrap_or_default(),
            act: e.act.unwrap_or_default(),
            hash: e.hash.chars().take(16).collect(),
            objective: e.objective.unwrap_or_default(),
        })
        .collect()
}

/// A phase as it was.
struct PastPhase {
    number: u32,
    description: String,
    weight: String,
    deadline: String,
    original_deadline: String,
    status: String,
    class: &'static str,
    completed_on: String,
}

#[derive(Template)]
#[template(
    path = "objective_history.html",
    config = "src/web/templates/askama.toml"
)]
struct ObjectiveHistoryPage {
    chrome: Chrome,
    key: String,
    q: HistoryQuery,
    at: String,
    cut: String,
    existed: bool,
    phases: Vec<PastPhase>,
    completed: String,
    on_time: String,
    outcome: String,
    validated: String,
    version: u64,
    trail: Vec<TrailLine>,
    types: Vec<String>,
}

impl ObjectiveHistoryPage {
    fn q(&self, field: &str) -> String {
        let v = match field {
            "at" => &self.q.at,
            "as_of" => &self.q.as_of,
            "actor" => &self.q.actor,
            "type" => &self.q.event_type,
            "from" => &self.q.from,
            "to" => &self.q.to,
            _ => &None,
        };
        v.clone().unwrap_or_default()
    }
}

/// `GET /obiettivi/{key}/storia`: the trail, and the objective as it was.
pub async fn objective_history(
    State(state): State<AppState>,
    SignedIn(viewer): SignedIn,
    Path(key): Path<String>,
    Query(q): Query<HistoryQuery>,
) -> Result<Response, PageError> {
    let app = state.app.clone();
    let filter = filter_of(&q)?;
    let cut = match (some(&q.as_of), some(&q.seq)) {
        (Some(t), _) => Some(Until::RecordedAt(parse_record_time(&t)?)),
        (None, Some(s)) => {
            Some(Until::Seq(s.parse().map_err(|_| {
                PageError::bad_request("«seq» non è un numero")
            })?))
        }
        _ => None,
    };
    let at = match some(&q.at) {
        Some(t) => parse_date("at", &t).map_err(|e| PageError::bad_request(e.message))?,
        None => match cut {
            Some(Until::RecordedAt(t)) => local_date(&t),
            _ => app.today(),
        },
    };
    let k = key.clone();
    let (events, past) = blocking(move || {
        let events = app.objective_events(&k)?;
        let past = app.objective_as_of(&k, cut.unwrap_or(Until::End))?;
        Ok::<_, AppError>((events, past))
    })
    .await?;
    // `?seq=` with no valid date: the Italian day of that event.
    let at = match (some(&q.at), some(&q.seq), cut) {
        (None, Some(_), Some(Until::Seq(n))) => events
            .iter()
            .rfind(|e| e.seq <= n)
            .map(|e| local_date(&e.recorded_at))
            .unwrap_or(at),
        _ => at,
    };
    let mut types: Vec<String> = events.iter().map(|e| e.event_type.clone()).collect();
    types.sort();
    types.dedup();
    let entries = traguardo_projections::audit::trail(&events, &filter).map_err(AppError::from)?;
    let cut_text = match (some(&q.as_of), some(&q.seq)) {
        (Some(_), _) => match cut {
            Some(Until::RecordedAt(t)) => {
                format!("come registrato fino al {}", italian::timestamp(t))
            }
            _ => String::new(),
        },
        (None, Some(s)) => format!("come registrato fino all'evento {s}"),
        _ => "con tutto ciò che è registrato".to_string(),
    };
    let (existed, phases, completed, on_time, outcome, validated, version) = match &past {
        Some(o) => {
            let v = o.evaluate(at);
            (
                true,
                v.phases
                    .iter()
                    .map(|p| PastPhase {
                        number: p.number,
                        description: p.description.clone(),
                        weight: view::pct(p.weight),
                        deadline: view::date(p.deadline),
                        original_deadline: view::date(p.original_deadline),
                        status: view::status(p.status),
                        class: view::status_class(p.status),
                        completed_on: view::opt_date(p.completed_on),
                    })
                    .collect(),
                view::pct(v.score.completed_pct),
                view::pct(v.score.on_time_pct),
                italian::outcome(v.score.outcome).to_string(),
                view::opt_pct(v.score.validated_pct),
                v.version,
            )
        }
        None => (
            false,
            Vec::new(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            0,
        ),
    };
    let page = ObjectiveHistoryPage {
        chrome: Chrome::new(&format!("Storia di {key}"), &viewer, &state.app, ""),
        key,
        q,
        at: view::date(at),
        cut: cut_text,
        existed,
        phases,
        completed,
        on_time,
        outcome,
        validated,
        version,
        trail: trail_lines(entries),
        types,
    };
    render(StatusCode::OK, &page)
}

#[derive(Template)]
#[template(path = "plan_history.html", config = "src/web/templates/askama.toml")]
struct PlanHistoryPage {
    chrome: Chrome,
    year: i32,
    q: HistoryQuery,
    trail: Vec<TrailLine>,
    total: usize,
    types: Vec<String>,
    units: Vec<String>,
}

impl PlanHistoryPage {
    fn q(&self, field: &str) -> String {
        let v = match field {
            "unit" => &self.q.unit,
            "actor" => &self.q.actor,
            "type" => &self.q.event_type,
            "from" => &self.q.from,
            "to" => &self.q.to,
            _ => &None,
        };
        v.clone().unwrap_or_default()
    }
}

/// Entries shown at most on one page of the plan's trail (the newest).
const PLAN_TRAIL_LIMIT: usize = 500;

/// `GET /piani/{year}/storia`: the trail of a whole year, with filters.
pub async fn plan_history(
    State(state): State<AppState>,
    SignedIn(viewer): SignedIn,
    Path(year): Path<String>,
    Query(q): Query<HistoryQuery>,
) -> Result<Response, PageError> {
    let year: i32 = year
        .parse()
        .map_err(|_| PageError::not_found(format!("«{year}» non è un anno")))?;
    let units: Vec<String> = state
        .app
        .read(|r| {
            r.plan(year)
                .map(|p| p.units.iter().map(|u| u.code.clone()).collect())
        })
        .ok_or_else(|| PageError::not_found(format!("non esiste un piano per il {year}")))?;
    let filter = filter_of(&q)?;
    let app = state.app.clone();
    let (entries, types) = blocking(move || {
        let events = app.year_events(year, Until::End)?;
        let mut types: Vec<String> = events.iter().map(|e| e.event_type.clone()).collect();
        types.sort();
        types.dedup();
        Ok((
            traguardo_projections::audit::trail(&events, &filter)?,
            types,
        ))
    })
    .await?;
    let total = entries.len();
    let skip = total.saturating_sub(PLAN_TRAIL_LIMIT);
    let page = PlanHistoryPage {
        chrome: Chrome::new(
            &format!("Storia del piano {year}"),
            &viewer,
            &state.app,
            &format!("/piani/{year}/storia"),
        ),
        year,
        q,
        trail: trail_lines(entries.into_iter().skip(skip).collect()),
        total,
        types,
        units,
    };
    render(StatusCode::OK, &page)
}
