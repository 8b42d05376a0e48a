//! Plans, their scores and revisions, and tokens: what the control office
//! (*Programmazione e Controllo*) administers.

use std::collections::{BTreeMap, BTreeSet};

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use traguardo_events::domain::RevisionChange;
use traguardo_events::model::{Role, Unit};
use traguardo_projections::objective::ObjectiveView;
use traguardo_projections::plan::Revision;
use traguardo_projections::{PlanScores, Registry};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::auth::Auth;
use super::objectives::{EventRef, StateQuery, WriteRequest};
use super::problem::{JsonBody, Problem};
use super::{support, AppState};
use crate::commands::RevisionRequest;
use crate::error::FieldError;

/// The routes of this area.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_token))
        .routes(routes!(list_plans, create_plan))
        .routes(routes!(get_plan))
        .routes(routes!(plan_scores))
        .routes(routes!(list_revisions, create_revision))
}

/// `POST /tokens`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenBody {
    /// Whose token it is (written on every event they cause).
    pub actor: String,
    /// admin, manager, validator or auditor.
    pub role: Role,
    /// For managers: the units they act for.
    #[serde(default)]
    pub units: Vec<String>,
}

/// A token, shown once.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenAnswer {
    /// The secret: keep it, it is not shown again.
    pub token: String,
    /// Actor.
    pub actor: String,
    /// Role.
    pub role: Role,
    /// Units.
    pub units: Vec<String>,
}

/// Issues a bearer token (admin).
#[utoipa::path(post, path = "/tokens", tag = "administration", request_body = TokenBody,
    responses((status = 201, body = TokenAnswer), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 422, body = Problem)))]
async fn create_token(
    State(state): State<AppState>,
    auth: Auth,
    body: JsonBody<TokenBody>,
) -> Result<Response, Problem> {
    auth.require(&[Role::Admin])?;
    let TokenBody { actor, role, units } = body.value;
    let (token, info) = state.app.issue_token(&actor, role, units, &auth.0).await?;
    Ok(support::created(
        TokenAnswer {
            token,
            actor: info.actor,
            role: info.role,
            units: info.units,
        },
        false,
        None,
    ))
}

/// A plan in a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlanSummary {
    /// Year.
    pub year: i32,
    /// *Ente*.
    pub organisation: String,
    /// Title.
    pub title: String,
    /// Objective keys.
    pub objectives: Vec<String>,
}

/// The plans loaded, by year.
#[utoipa::path(get, path = "/plans", tag = "plans",
    responses((status = 200, body = Vec<PlanSummary>), (status = 401, body = Problem)))]
async fn list_plans(State(state): State<AppState>, _auth: Auth) -> Json<Vec<PlanSummary>> {
    Json(state.app.read(|r| {
        r.plans
            .values()
            .map(|p| PlanSummary {
                year: p.year,
                organisation: p.organisation.clone(),
                title: p.title.clone(),
                objectives: p.objectives.clone(),
            })
            .collect()
    }))
}

/// A plan loaded.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlanCreated {
    /// Year.
    pub year: i32,
    /// The keys of its objectives.
    pub objectives: Vec<String>,
}

/// Loads a plan document (admin): every problem is reported at once and nothing
/// is loaded unless there are none.
#[utoipa::path(post, path = "/plans", tag = "plans",
    request_body(content = Object, description = "a plan document (DESIGN.md §6)"),
    responses((status = 201, body = PlanCreated), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 409, body = Problem, description = "the year is loaded already"),
              (status = 422, body = Problem)))]
async fn create_plan(
    State(state): State<AppState>,
    auth: Auth,
    body: JsonBody<Value>,
) -> Result<Response, Problem> {
    auth.require(&[Role::Admin])?;
    let plan = crate::plan_document::validate(&body.value).map_err(Problem::invalid)?;
    state.app.import_plan(&plan, &auth.0).await?;
    let answer = PlanCreated {
        year: plan.year,
        objectives: plan.objectives.iter().map(|o| o.key()).collect(),
    };
    Ok(support::created(
        answer,
        false,
        Some(format!("/api/v1/plans/{}", plan.year)),
    ))
}

/// A plan with its objectives, each with its score.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlanAnswer {
    /// Year.
    pub year: i32,
    /// *Ente*.
    pub organisation: String,
    /// Title.
    pub title: String,
    /// Reference date of the scores.
    pub at: NaiveDate,
    /// *Elenco Responsabili*.
    pub units: Vec<Unit>,
    /// The objectives, evaluated at `at`.
    pub objectives: Vec<ObjectiveView>,
    /// How many revisions were recorded.
    pub revisions: usize,
}

/// A plan and its objectives (any role); `at`, `as_of` and `seq` as for an
/// objective.
#[utoipa::path(get, path = "/plans/{year}", tag = "plans", params(("year" = i32, Path), StateQuery),
    responses((status = 200, body = PlanAnswer), (status = 401, body = Problem), (status = 404, body = Problem)))]
async fn get_plan(
    State(state): State<AppState>,
    _auth: Auth,
    Path(year): Path<String>,
    Query(query): Query<StateQuery>,
) -> Result<Response, Problem> {
    let year = support::plan_year(&year)?;
    let at = support::reference_date(query.at.as_deref(), &state.app)?;
    let answer = with_registry(&state, year, &query, move |r| {
        let plan = r.plans.get(&year)?;
        Some(PlanAnswer {
            year,
            organisation: plan.organisation.clone(),
            title: plan.title.clone(),
            at,
            units: plan.units.clone(),
            objectives: r
                .plan_objectives(year)
                .iter()
                .map(|o| o.evaluate(at))
                .collect(),
            revisions: plan.revisions.len(),
        })
    })
    .await?;
    Ok(Json(answer).into_response())
}

/// Scores of a plan: per objective, per unit, and the plan's.
#[utoipa::path(get, path = "/plans/{year}/scores", tag = "plans", params(("year" = i32, Path), StateQuery),
    responses((status = 200, body = PlanScores), (status = 401, body = Problem), (status = 404, body = Problem)))]
async fn plan_scores(
    State(state): State<AppState>,
    _auth: Auth,
    Path(year): Path<String>,
    Query(query): Query<StateQuery>,
) -> Result<Response, Problem> {
    let year = support::plan_year(&year)?;
    let at = support::reference_date(query.at.as_deref(), &state.app)?;
    let scores = with_registry(&state, year, &query, move |r| r.scores(year, at)).await?;
    Ok(Json(scores).into_response())
}

/// Runs `f` on the registry now, or as the log held it at the query's record
/// cut; 404 when `f` finds no plan.
async fn with_registry<T: Send + 'static>(
    state: &AppState,
    year: i32,
    query: &StateQuery,
    f: impl FnOnce(&Registry) -> Option<T> + Send + 'static,
) -> Result<T, Problem> {
    let found = match support::record_cut(query.as_of.as_deref(), query.seq.as_deref())? {
        None => state.app.read(f),
        Some(until) => {
            let app = state.app.clone();
            support::blocking(move || Ok(f(&app.registry_as_of(year, until)?))).await?
        }
    };
    found.ok_or_else(|| Problem::not_found(format!("no plan for {year}")))
}

/// The revisions of a plan, oldest first.
#[utoipa::path(get, path = "/plans/{year}/revisions", tag = "revisions", params(("year" = i32, Path)),
    responses((status = 200, body = Vec<Revision>), (status = 401, body = Problem), (status = 404, body = Problem)))]
async fn list_revisions(
    State(state): State<AppState>,
    _auth: Auth,
    Path(year): Path<String>,
) -> Result<Response, Problem> {
    let year = support::plan_year(&year)?;
    let revisions = state
        .app
        .read(|r| r.plans.get(&year).map(|p| p.revisions.clone()))
        .ok_or_else(|| Problem::not_found(format!("no plan for {year}")))?;
    Ok(Json(revisions).into_response())
}

/// `POST /plans/{year}/revisions`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevisionBody {
    /// The act, e.g. "D.G.C. n. 182 del 28/07/2022".
    pub act: String,
    /// The act's date (its valid time); without it, today.
    pub act_date: Option<String>,
    /// Why.
    pub reason: String,
    /// Changes, applied in order: `{kind: "deadline", objective, phase?, new_deadline}`,
    /// `{kind: "weights", objective, weights: {"1": 20, …}}`, `{kind: "add_phase",
    /// objective, phase: {…}}`, `{kind: "withdraw_phase", objective, phase}`,
    /// `{kind: "add_objective", objective: {…}}`, `{kind: "withdraw_objective", objective}`.
    #[schema(value_type = Vec<Object>)]
    pub changes: Vec<Value>,
}

/// `?dry_run=true` on `POST /plans/{year}/revisions`.
#[derive(Debug, Default, Deserialize)]
pub struct DryRunQuery {
    /// `true` (or `1`): preview, append nothing.
    pub dry_run: Option<String>,
}

impl DryRunQuery {
    fn is_dry_run(&self) -> bool {
        matches!(self.dry_run.as_deref(), Some("true" | "1"))
    }
}

/// A revision recorded.
#[derive(Debug, Serialize, ToSchema)]
pub struct RevisionCreated {
    /// The revision's id.
    pub id: String,
    /// The events appended, the plan's first.
    pub events: Vec<EventRef>,
    /// Every touched objective after the revision.
    pub objectives: Vec<ObjectiveView>,
}

/// Records a revision approved by an act (admin), all changes at once or none.
#[utoipa::path(post, path = "/plans/{year}/revisions", tag = "revisions",
    params(("year" = i32, Path), ("Idempotency-Key" = Option<String>, Header),
           ("dry_run" = Option<bool>, Query, description = "true: answer 200 with the preview (each touched objective before and after, the red flags it would raise) and append nothing")),
    request_body = RevisionBody,
    responses((status = 201, body = RevisionCreated), (status = 200, description = "the preview of a dry run", body = Object), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn create_revision(
    State(state): State<AppState>,
    request: WriteRequest,
    Path(year): Path<String>,
    Query(dry): Query<DryRunQuery>,
    body: JsonBody<RevisionBody>,
) -> Result<Response, Problem> {
    let auth = &request.auth;
    let year = support::plan_year(&year)?;
    auth.require(&[Role::Admin])?;
    let codes: BTreeSet<String> = state
        .app
        .read(|r| {
            r.plans
                .get(&year)
                .map(|p| p.units.iter().map(|u| u.code.clone()).collect())
        })
        .ok_or_else(|| Problem::not_found(format!("no plan for {year}")))?;
    let revision = revision_request(&body.value, year, &codes)?;
    if dry.is_dry_run() {
        let app = state.app.clone();
        let principal = auth.0.clone();
        let preview =
            support::blocking(move || app.preview_revision(year, &revision, &principal)).await?;
        return Ok(Json(preview).into_response());
    }
    let idempotency = request.idempotency_key(&body.raw)?;
    let started = std::time::Instant::now();
    let written = state
        .app
        .revise(year, &revision, &auth.0, idempotency)
        .await?;
    state
        .metrics
        .append_seconds
        .observe(started.elapsed().as_secs_f64());
    let id = written
        .events
        .first()
        .and_then(|e| e.correlation.clone())
        .unwrap_or_default();
    let at = state.app.today();
    let keys: Vec<String> = written
        .events
        .iter()
        .filter_map(|e| e.stream.strip_prefix("objective/").map(str::to_string))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let objectives = state.app.read(|r| {
        keys.iter()
            .filter_map(|k| r.objectives.get(k))
            .map(|o| o.evaluate(at))
            .collect()
    });
    let answer = RevisionCreated {
        events: written.events.iter().map(EventRef::from).collect(),
        objectives,
        id: id.clone(),
    };
    Ok(support::created(
        answer,
        written.replayed,
        Some(format!("/api/v1/plans/{year}/revisions/{id}")),
    ))
}

/// Reads a revision body into typed changes, reporting every problem at once.
fn revision_request(
    body: &RevisionBody,
    year: i32,
    codes: &BTreeSet<String>,
) -> Result<RevisionRequest, Problem> {
    let mut errors = Vec::new();
    let act_date = match body.act_date.as_deref().filter(|d| !d.is_empty()) {
        None => None,
        Some(text) => match crate::plan_document::parse_date(text) {
            Ok(date) => Some(date),
            Err(message) => {
                errors.push(FieldError::new("act_date", message));
                None
            }
        },
    };
    let mut changes = Vec::new();
    for (i, change) in body.changes.iter().enumerate() {
        let path = format!("changes[{i}]");
        match parse_change(change, &path, year, codes) {
            Ok(change) => changes.push(change),
            Err(mut problems) => errors.append(&mut problems),
        }
    }
    if !errors.is_empty() {
        return Err(Problem::invalid(errors));
    }
    Ok(RevisionRequest {
        act: body.act.clone(),
        act_date,
        reason: body.reason.clone(),
        changes,
    })
}

fn parse_change(
    value: &Value,
    path: &str,
    year: i32,
    codes: &BTreeSet<String>,
) -> Result<RevisionChange, Vec<FieldError>> {
    let field = |name: &str| format!("{path}.{name}");
    let Some(map) = value.as_object() else {
        return Err(vec![FieldError::new(path, "must be an object")]);
    };
    let kind = map.get("kind").and_then(Value::as_str).unwrap_or_default();
    let allowed: &[&str] = match kind {
        "deadline" => &["kind", "objective", "phase", "new_deadline"],
        "weights" => &["kind", "objective", "weights"],
        "add_phase" => &["kind", "objective", "phase"],
        "withdraw_phase" => &["kind", "objective", "phase"],
        "add_objective" => &["kind", "objective"],
        "withdraw_objective" => &["kind", "objective"],
        _ => {
            return Err(vec![FieldError::new(
                field("kind"),
                "must be deadline, weights, add_phase, withdraw_phase, add_objective or withdraw_objective",
            )])
        }
    };
    let mut errors: Vec<FieldError> = map
        .keys()
        .filter(|k| !allowed.contains(&k.as_str()))
        .map(|k| FieldError::new(field(k), "unknown field"))
        .collect();
    let objective_key = || -> Result<String, FieldError> {
        map.get("objective")
            .and_then(Value::as_str)
            .filter(|k| !k.trim().is_empty())
            .map(|k| k.trim().to_string())
            .ok_or_else(|| {
                FieldError::new(
                    field("objective"),
                    "the key of an objective is required (e.g. 2022-2250-A)",
                )
            })
    };
    let phase_number = |required: bool| -> Result<Option<u32>, FieldError> {
        match map.get("phase") {
            None | Some(Value::Null) if !required => Ok(None),
            Some(Value::Number(n)) => n
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .map(Some)
                .ok_or_else(|| FieldError::new(field("phase"), "must be a phase number")),
            _ => Err(FieldError::new(
                field("phase"),
                "a phase number is required",
            )),
        }
    };
    let change = match kind {
        "deadline" => {
            let objective = objective_key().map_err(|e| errors.push(e)).ok();
            let phase = phase_number(false).map_err(|e| errors.push(e)).ok();
            let new_deadline = map
                .get("new_deadline")
                .and_then(Value::as_str)
                .ok_or_else(|| "is required".to_string())
                .and_then(crate::plan_document::parse_date)
                .map_err(|m| errors.push(FieldError::new(field("new_deadline"), m)))
                .ok();
            match (objective, phase, new_deadline) {
                (Some(objective), Some(phase), Some(new_deadline)) => {
                    Some(RevisionChange::Deadline {
                        objective,
                        phase,
                        new_deadline,
                    })
                }
                _ => None,
            }
        }
        "weights" => {
            let objective = objective_key().map_err(|e| errors.push(e)).ok();
            let mut weights = BTreeMap::new();
            match map.get("weights").and_then(Value::as_object) {
                Some(entries) if !entries.is_empty() => {
                    for (n, w) in entries {
                        let at = format!("{path}.weights.{n}");
                        match n.parse::<u32>() {
                            Ok(number) => match crate::plan_document::parse_weight(w, &at) {
                                Ok(h) => {
                                    weights.insert(number, h);
                                }
                                Err(e) => errors.push(e),
                            },
                            Err(_) => errors.push(FieldError::new(at, "keys are phase numbers")),
                        }
                    }
                }
                _ => errors.push(FieldError::new(
                    field("weights"),
                    "an object of phase number → weight is required",
                )),
            }
            objective.map(|objective| RevisionChange::Weights {
                objective,
                weights_hundredths: weights,
            })
        }
        "add_phase" => {
            let objective = objective_key().map_err(|e| errors.push(e)).ok();
            let phase = match map.get("phase") {
                Some(v) => crate::plan_document::parse_phase(v, &field("phase"), codes)
                    .map_err(|mut e| errors.append(&mut e))
                    .ok(),
                None => {
                    errors.push(FieldError::new(field("phase"), "the new phase is required"));
                    None
                }
            };
            match (objective, phase) {
                (Some(objective), Some(phase)) => {
                    Some(RevisionChange::AddPhase { objective, phase })
                }
                _ => None,
            }
        }
        "withdraw_phase" => {
            let objective = objective_key().map_err(|e| errors.push(e)).ok();
            let phase = phase_number(true)
                .map_err(|e| errors.push(e))
                .ok()
                .flatten();
            match (objective, phase) {
                (Some(objective), Some(phase)) => {
                    Some(RevisionChange::WithdrawPhase { objective, phase })
                }
                _ => None,
            }
        }
        "add_objective" => match map.get("objective") {
            Some(v) => crate::plan_document::parse_objective(v, &field("objective"), year, codes)
                .map_err(|mut e| errors.append(&mut e))
                .ok()
                .map(|o| RevisionChange::AddObjective {
                    objective: Box::new(o),
                }),
            None => {
                errors.push(FieldError::new(
                    field("objective"),
                    "the new objective is required",
                ));
                None
            }
        },
        _ => objective_key()
            .map_err(|e| errors.push(e))
            .ok()
            .map(|objective| RevisionChange::WithdrawObjective { objective }),
    };
    match change {
        Some(change) if errors.is_empty() => Ok(change),
        _ => Err(errors),
    }
}
