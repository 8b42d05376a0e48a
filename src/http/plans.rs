//! Plans, their scores and revisions: what the control office
//! (*Programmazione e Controllo*) administers.

use std::collections::{BTreeMap, BTreeSet};

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use traguardo_events::domain::RevisionChange;
use traguardo_events::model::{Hundredths, IndicatorKind, IndicatorSpec, Role, Unit};
use traguardo_events::{ObjectiveKey, StreamRef};
use traguardo_projections::objective::ObjectiveView;
use traguardo_projections::plan::Revision;
use traguardo_projections::{PlanScores, Registry};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::auth::Auth;
use super::objectives::{EventRef, StateQuery, WriteRequest};
use super::problem::{JsonBody, Problem, RawBody};
use super::{support, AppState};
use crate::commands::RevisionRequest;
use crate::error::FieldError;

/// The routes of this area.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_plans, create_plan))
        .routes(routes!(get_plan))
        .routes(routes!(plan_scores))
        .routes(routes!(list_revisions, create_revision))
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
        r.plans()
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

/// Loads a plan document (admin), or a plan workbook sent as xlsx (the
/// template of `traguardo plan-template`): every problem is reported at once,
/// a workbook's with its sheet and cell (`Fasi!D7`), and nothing is loaded
/// unless there are none.
#[utoipa::path(post, path = "/plans", tag = "plans",
    request_body(description = "a plan document (DESIGN.md §6; its JSON Schema is `traguardo plan-schema`, seeds/plan.schema.json), or a plan workbook (`traguardo plan-template`)",
        content((Object = "application/json", example = json!({"organisation": "Città di Alessandria", "year": 2023, "title": "Piano degli obiettivi 2023",
            "units": [{"code": "2250", "name": "RESPONSABILE SETTORE RISORSE FINANZIARIE E TRIBUTI"}],
            "objectives": [{"unit": "2250", "letter": "A", "manager": "Dott. Stefano Specchia",
                "title": "Rimborsi entro 90 giorni",
                "phases": [{"number": 1, "description": "Ricognizione", "weight": 33.33, "deadline": "2023-05-30"},
                           {"number": 2, "description": "Procedura", "weight": 33.33, "deadline": "2023-09-30"},
                           {"number": 3, "description": "Rimborsi", "weight": 33.34, "deadline": "2023-12-31"}],
                "final_deadline": "2023-12-31",
                "indicators": [{"id": "rimborsi-90gg", "description": "Rimborsi entro 90 giorni", "kind": "ratio", "target": 100}]}]})),
                (Vec<u8> = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"))),
    responses((status = 201, body = PlanCreated), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 409, body = Problem, description = "the year is loaded already"),
              (status = 422, body = Problem)))]
async fn create_plan(
    State(state): State<AppState>,
    auth: Auth,
    headers: axum::http::HeaderMap,
    raw: RawBody,
) -> Result<Response, Problem> {
    auth.require(&[Role::Admin])?;
    let xlsx_type = headers
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(super::problem::is_xlsx);
    let plan = if xlsx_type || crate::plan_sheet::is_xlsx(&raw.0) {
        let raw = raw.0;
        support::blocking(move || crate::plan_sheet::read(&raw).map_err(crate::AppError::Invalid))
            .await?
    } else {
        let body = JsonBody::<Value>::parse(raw)?;
        if let Some(problem) = crate::plan_document::duplicate_key(&body.raw) {
            return Err(Problem::invalid(vec![problem]));
        }
        crate::plan_document::validate(&body.value).map_err(Problem::invalid)?
    };
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
    let cut = support::record_cut(query.as_of.as_deref(), query.seq.as_deref())?;
    let at = support::evaluation_date(query.at.as_deref(), cut, &state.app).await?;
    let answer = with_registry(&state, year, &query, move |r| {
        let plan = r.plan(year)?;
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
    let cut = support::record_cut(query.as_of.as_deref(), query.seq.as_deref())?;
    let at = support::evaluation_date(query.at.as_deref(), cut, &state.app).await?;
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
        .read(|r| r.plan(year).map(|p| p.revisions.clone()))
        .ok_or_else(|| Problem::not_found(format!("no plan for {year}")))?;
    let mut answer = serde_json::to_value(revisions).map_err(|_| Problem::internal())?;
    support::with_request_names(&mut answer);
    Ok(Json(answer).into_response())
}

/// `POST /plans/{year}/revisions`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "act": "D.G.C. n. 182 del 28/07/2022", "act_date": "2022-07-28",
    "reason": "Rimodulazione approvata dalla Giunta",
    "changes": [
        {"kind": "deadline", "objective": "2022-2250-A", "phase": 2, "new_deadline": "2022-07-31"},
        {"kind": "weights", "objective": "2022-2249-C", "weights": {"2": 35, "3": 35}}
    ]
}))]
pub struct RevisionBody {
    /// The act, e.g. "D.G.C. n. 182 del 28/07/2022".
    pub act: String,
    /// The act's date (its valid time); without it, today.
    #[schema(format = Date)]
    pub act_date: Option<String>,
    /// Why.
    pub reason: String,
    /// Changes, applied in order: `{kind: "deadline", objective, phase?, new_deadline}`,
    /// `{kind: "weights", objective, weights: {"1": 20, …}}`, `{kind: "add_phase",
    /// objective, phase: {…}}`, `{kind: "withdraw_phase", objective, phase}`,
    /// `{kind: "add_objective", objective: {…}}`, `{kind: "withdraw_objective", objective}`,
    /// and the others of `ChangeSchema`.
    #[schema(value_type = Vec<ChangeSchema>)]
    pub changes: Vec<Value>,
}

/// One change of a revision (DESIGN.md §5), a union tagged by `kind`: the schema
/// of what [`ChangeRequest`] reads (the body is read as JSON first, so that one
/// bad change does not hide the problems of the others).
#[derive(Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
#[allow(dead_code)] // a schema: the server reads changes with `ChangeRequest`
enum ChangeSchema {
    /// A phase's deadline, or the objective's final deadline when `phase` is absent.
    Deadline {
        /// Objective key, e.g. 2022-2250-A.
        objective: String,
        /// Phase number; absent for the final deadline.
        #[schema(minimum = 1)]
        phase: Option<u32>,
        /// The new deadline.
        #[schema(format = Date)]
        new_deadline: String,
    },
    /// New weights for some phases: phase number → *incidenza %* (at most two
    /// decimals); once applied the objective's weights sum to exactly 100.
    Weights {
        /// Objective key.
        objective: String,
        /// Phase number (a JSON key, so a string of digits) → weight.
        #[schema(schema_with = weights_schema)]
        weights: Value,
    },
    /// A new phase, written as in a plan document (`{number, description, weight,
    /// involved?, deadline}`).
    AddPhase {
        /// Objective key.
        objective: String,
        /// The phase.
        #[schema(value_type = Object)]
        phase: Value,
    },
    /// A phase withdrawn.
    WithdrawPhase {
        /// Objective key.
        objective: String,
        /// Phase number.
        #[schema(minimum = 1)]
        phase: u32,
    },
    /// A new objective, written as in a plan document.
    AddObjective {
        /// The objective.
        #[schema(value_type = Object)]
        objective: Value,
    },
    /// An objective withdrawn.
    WithdrawObjective {
        /// Objective key.
        objective: String,
    },
    /// A new responsible manager.
    Manager {
        /// Objective key.
        objective: String,
        /// The manager from the act on.
        manager: String,
    },
    /// A new title.
    Title {
        /// Objective key.
        objective: String,
        /// The title from the act on.
        title: String,
    },
    /// What a phase says.
    PhaseDescription {
        /// Objective key.
        objective: String,
        /// Phase number.
        #[schema(minimum = 1)]
        phase: u32,
        /// The description from the act on.
        description: String,
    },
    /// What an indicator aims at.
    IndicatorTarget {
        /// Objective key.
        objective: String,
        /// Indicator id.
        indicator: String,
        /// The target percentage (at most two decimals); absent or null for none.
        #[schema(minimum = 0, maximum = 100)]
        target: Option<f64>,
    },
    /// A new indicator, written as in a plan document.
    AddIndicator {
        /// Objective key.
        objective: String,
        /// `{id, description, kind, target?}`.
        #[schema(value_type = Object)]
        indicator: Value,
    },
    /// An indicator withdrawn.
    WithdrawIndicator {
        /// Objective key.
        objective: String,
        /// Indicator id.
        indicator: String,
    },
}

/// `{"1": 20, "2": 33.33}`: keys are phase numbers written as JSON keys.
fn weights_schema() -> utoipa::openapi::Object {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .property_names(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some("^[1-9][0-9]*$")),
        ))
        .additional_properties(Some(ObjectBuilder::new().schema_type(Type::Number).format(
            Some(utoipa::openapi::SchemaFormat::KnownFormat(
                utoipa::openapi::KnownFormat::Double,
            )),
        )))
        .build()
}

/// `?dry_run=true` on `POST /plans/{year}/revisions`.
#[derive(Debug, Default, Deserialize)]
pub struct DryRunQuery {
    /// `true`: preview, append nothing; `false` (or nothing): record.
    pub dry_run: Option<String>,
}

impl DryRunQuery {
    /// Whether to preview only. Anything but `true` or `false` is refused:
    /// a client that meant a preview (`dry_run=yes`) must never record.
    ///
    /// # Errors
    /// 422 naming `dry_run`.
    fn is_dry_run(&self) -> Result<bool, Problem> {
        match self.dry_run.as_deref() {
            None | Some("" | "false") => Ok(false),
            Some("true") => Ok(true),
            Some(other) => Err(Problem::invalid(vec![FieldError::new(
                "dry_run",
                format!("{other:?} non è true o false"),
            )])),
        }
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
    raw: RawBody,
) -> Result<Response, Problem> {
    let auth = &request.auth;
    let year = support::plan_year(&year)?;
    auth.require(&[Role::Admin])?;
    let dry_run = dry.is_dry_run()?;
    let body = JsonBody::<RevisionBody>::parse(raw)?;
    // Bounded before any change is read, so that a huge list costs nothing and
    // answers one line, not one problem per change.
    let changes = body.value.changes.len();
    if changes > crate::commands::revision::MAX_CHANGES {
        return Err(Problem::invalid(vec![FieldError::new(
            "changes",
            format!(
                "una rimodulazione ha al massimo {} modifiche, non {changes}",
                crate::commands::revision::MAX_CHANGES
            ),
        )]));
    }
    if let Some(problem) = crate::plan_document::duplicate_key(&body.raw) {
        return Err(Problem::invalid(vec![problem]));
    }
    let codes: BTreeSet<String> = state
        .app
        .read(|r| {
            r.plan(year)
                .map(|p| p.units.iter().map(|u| u.code.clone()).collect())
        })
        .ok_or_else(|| Problem::not_found(format!("no plan for {year}")))?;
    let revision = match revision_request(&body.value, year, &codes) {
        Ok(revision) => revision,
        Err(parsed) => {
            // The changes that could be read are still checked, so that one bad
            // change does not hide the problems of the others.
            let ParsedRevision {
                request,
                positions,
                mut errors,
            } = *parsed;
            let today = state.app.today();
            let checked = state.app.read(|r| {
                crate::commands::decide_revision(
                    r,
                    year,
                    &request,
                    &auth.0,
                    today,
                    uuid::Uuid::nil(),
                )
            });
            if let Err(crate::AppError::Invalid(more)) = checked {
                errors.extend(more.into_iter().map(|e| FieldError {
                    field: renumber(&e.field, &positions),
                    ..e
                }));
            }
            return Err(Problem::invalid(errors));
        }
    };
    // Read (and so checked) on a dry run too, though only a recording uses it.
    let idempotency = request.idempotency_key(&body.raw)?;
    if dry_run {
        let app = state.app.clone();
        let principal = auth.0.clone();
        let preview =
            support::blocking(move || app.preview_revision(year, &revision, &principal)).await?;
        let mut answer = serde_json::to_value(preview).map_err(|_| Problem::internal())?;
        support::with_request_names(&mut answer);
        return Ok(Json(answer).into_response());
    }
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
        .filter_map(|e| match StreamRef::parse(&e.stream) {
            Ok(StreamRef::Objective(key)) => Some(key.to_string()),
            _ => None,
        })
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let objectives = state.app.read(|r| {
        keys.iter()
            .filter_map(|k| r.objective(k))
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
/// A revision body read in part: the changes that could be read, where each
/// stood in the body, and the problems of the others.
struct ParsedRevision {
    request: RevisionRequest,
    positions: Vec<usize>,
    errors: Vec<FieldError>,
}

/// `changes[j]…` of the readable changes as `changes[i]…` of the body.
fn renumber(field: &str, positions: &[usize]) -> String {
    let Some(rest) = field.strip_prefix("changes[") else {
        return field.to_string();
    };
    match rest.split_once(']') {
        Some((j, tail)) => match j.parse::<usize>().ok().and_then(|j| positions.get(j)) {
            Some(i) => format!("changes[{i}]{tail}"),
            None => field.to_string(),
        },
        None => field.to_string(),
    }
}

fn revision_request(
    body: &RevisionBody,
    year: i32,
    codes: &BTreeSet<String>,
) -> Result<RevisionRequest, Box<ParsedRevision>> {
    let mut errors = Vec::new();
    // `""` is not a date: an act without a date leaves the field out.
    let act_date = match body.act_date.as_deref() {
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
    let mut positions = Vec::new();
    for (i, change) in body.changes.iter().enumerate() {
        let path = format!("changes[{i}]");
        match parse_change(change, &path, year, codes) {
            Ok(change) => {
                changes.push(change);
                positions.push(i);
            }
            Err(mut problems) => errors.append(&mut problems),
        }
    }
    let request = RevisionRequest {
        act: body.act.clone(),
        act_date,
        reason: body.reason.clone(),
        changes,
    };
    if errors.is_empty() {
        Ok(request)
    } else {
        Err(Box::new(ParsedRevision {
            request,
            positions,
            errors,
        }))
    }
}

/// One change of a revision as a client writes it (DESIGN.md §5). Serde reads
/// the kind and the fields; the phase and objective a change adds are plan-document
/// fragments, read by the plan document's own rules.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum ChangeRequest {
    Deadline {
        objective: ObjectiveKey,
        #[serde(default)]
        phase: Option<u32>,
        #[serde(deserialize_with = "date")]
        new_deadline: NaiveDate,
    },
    Weights {
        objective: ObjectiveKey,
        weights: BTreeMap<PhaseNumber, serde_json::Number>,
    },
    AddPhase {
        objective: ObjectiveKey,
        phase: Value,
    },
    WithdrawPhase {
        objective: ObjectiveKey,
        phase: u32,
    },
    AddObjective {
        objective: Value,
    },
    WithdrawObjective {
        objective: ObjectiveKey,
    },
    Manager {
        objective: ObjectiveKey,
        manager: String,
    },
    Title {
        objective: ObjectiveKey,
        title: String,
    },
    PhaseDescription {
        objective: ObjectiveKey,
        phase: u32,
        description: String,
    },
    IndicatorTarget {
        objective: ObjectiveKey,
        indicator: String,
        target: Option<serde_json::Number>,
    },
    AddIndicator {
        objective: ObjectiveKey,
        indicator: IndicatorRequest,
    },
    WithdrawIndicator {
        objective: ObjectiveKey,
        indicator: String,
    },
}

/// An indicator a revision adds, as in a plan document.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IndicatorRequest {
    id: String,
    description: String,
    kind: IndicatorKind,
    #[serde(default)]
    target: Option<serde_json::Number>,
}

/// A percentage of a request, in exact hundredths.
fn percentage(
    field: &str,
    number: Option<&serde_json::Number>,
) -> Result<Option<Hundredths>, Vec<FieldError>> {
    number
        .map(Hundredths::from_json)
        .transpose()
        .map_err(|message| vec![FieldError::new(field, message)])
}

/// A date written `YYYY-MM-DD`, with the plan document's Italian messages.
fn date<'de, D: serde::Deserializer<'de>>(d: D) -> Result<NaiveDate, D::Error> {
    let text = String::deserialize(d)?;
    crate::plan_document::parse_date(&text).map_err(serde::de::Error::custom)
}

/// A phase number written as a JSON object's key (`"4"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct PhaseNumber(u32);

impl<'de> Deserialize<'de> for PhaseNumber {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse()
            .map(PhaseNumber)
            .map_err(|_| serde::de::Error::custom(format!("{text:?} non è il numero di una fase")))
    }
}

/// Reads one change, naming the field at fault.
fn parse_change(
    value: &Value,
    path: &str,
    year: i32,
    codes: &BTreeSet<String>,
) -> Result<RevisionChange, Vec<FieldError>> {
    // `{kind: "deadline", …}` is read as `{"deadline": {…}}`: serde then walks
    // the variant's fields itself, and names the one at fault.
    let Some(map) = value.as_object() else {
        return Err(vec![FieldError::new(path, "deve essere un oggetto")]);
    };
    let Some(kind) = map.get("kind").and_then(Value::as_str) else {
        return Err(vec![FieldError::new(
            format!("{path}.kind"),
            "è obbligatorio: il tipo di modifica (deadline, weights, add_phase, …)",
        )]);
    };
    let mut fields = map.clone();
    fields.remove("kind");
    let tagged = Value::Object(serde_json::Map::from_iter([(
        kind.to_string(),
        Value::Object(fields),
    )]));
    let change: ChangeRequest = serde_path_to_error::deserialize(&tagged).map_err(|e| {
        let inner = e.path().to_string();
        // The first segment is the kind itself.
        let field = match inner.split_once('.') {
            Some((_, rest)) => format!("{path}.{rest}"),
            // An unknown kind fails at the top.
            None if inner == "." => format!("{path}.kind"),
            None => path.to_string(),
        };
        let message = e.into_inner().to_string();
        let message = message.split(" at line ").next().unwrap_or_default();
        vec![FieldError::new(field, message.to_string())]
    })?;
    let field = |name: &str| format!("{path}.{name}");
    Ok(match change {
        ChangeRequest::Deadline {
            objective,
            phase,
            new_deadline,
        } => RevisionChange::Deadline {
            objective: objective.to_string(),
            phase,
            new_deadline,
        },
        ChangeRequest::Weights { objective, weights } => {
            if let Some(problem) = crate::commands::limits::size(&field("weights"), weights.len()) {
                return Err(vec![problem]);
            }
            let mut errors = Vec::new();
            let mut weights_hundredths = BTreeMap::new();
            for (PhaseNumber(n), weight) in weights {
                match Hundredths::from_json(&weight) {
                    Ok(h) => {
                        weights_hundredths.insert(n, h);
                    }
                    Err(message) => {
                        errors.push(FieldError::new(field(&format!("weights.{n}")), message))
                    }
                }
            }
            if !errors.is_empty() {
                return Err(errors);
            }
            RevisionChange::Weights {
                objective: objective.to_string(),
                weights_hundredths,
            }
        }
        ChangeRequest::AddPhase { objective, phase } => RevisionChange::AddPhase {
            objective: objective.to_string(),
            phase: crate::plan_document::parse_phase(&phase, &field("phase"), codes)?,
        },
        ChangeRequest::WithdrawPhase { objective, phase } => RevisionChange::WithdrawPhase {
            objective: objective.to_string(),
            phase,
        },
        ChangeRequest::AddObjective { objective } => RevisionChange::AddObjective {
            objective: Box::new(crate::plan_document::parse_objective(
                &objective,
                &field("objective"),
                year,
                codes,
            )?),
        },
        ChangeRequest::WithdrawObjective { objective } => RevisionChange::WithdrawObjective {
            objective: objective.to_string(),
        },
        ChangeRequest::Manager { objective, manager } => RevisionChange::Manager {
            objective: objective.to_string(),
            manager,
        },
        ChangeRequest::Title { objective, title } => RevisionChange::Title {
            objective: objective.to_string(),
            title,
        },
        ChangeRequest::PhaseDescription {
            objective,
            phase,
            description,
        } => RevisionChange::PhaseDescription {
            objective: objective.to_string(),
            phase,
            description,
        },
        ChangeRequest::IndicatorTarget {
            objective,
            indicator,
            target,
        } => RevisionChange::IndicatorTarget {
            objective: objective.to_string(),
            indicator,
            target_hundredths: percentage(&field("target"), target.as_ref())?,
        },
        ChangeRequest::AddIndicator {
            objective,
            indicator,
        } => RevisionChange::AddIndicator {
            objective: objective.to_string(),
            indicator: IndicatorSpec {
                target_hundredths: percentage(
                    &field("indicator.target"),
                    indicator.target.as_ref(),
                )?,
                id: indicator.id,
                description: indicator.description,
                kind: indicator.kind,
            },
        },
        ChangeRequest::WithdrawIndicator {
            objective,
            indicator,
        } => RevisionChange::WithdrawIndicator {
            objective: objective.to_string(),
            indicator,
        },
    })
}
