//! The pages everyone uses: home, plan, objective (with the manager's and the
//! Nucleo's forms), the Nucleo's queue, flags, report downloads and integrity.

use std::io::Write as _;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{Duration, NaiveDate};
use serde::Deserialize;
use traguardo_events::model::{Hundredths, Role, ValidationOutcome, ValidationStage};
use traguardo_events::store::Until;
use traguardo_events::StoreExt;
use traguardo_projections::flags::FlagSettings;
use traguardo_projections::objective::{ObjectiveView, PhaseView};
use traguardo_projections::{italian, Objective};

use super::session::{SignedIn, Viewer};
use super::view::{self, Bar};
use super::{render, Chrome, FormData, FormState, PageError};
use crate::commands::ObjectiveCommand;
use crate::error::{AppError, FieldError};
use crate::http::AppState;
use crate::App;

/// `?at=` on pages that evaluate at a valid date.
#[derive(Debug, Deserialize, Default)]
pub struct AtQuery {
    /// Valid date, YYYY-MM-DD (default today).
    pub at: Option<String>,
}

/// A date typed in a form or a query, or an Italian message for the field.
pub fn parse_date(field: &str, text: &str) -> Result<NaiveDate, FieldError> {
    if text.trim().is_empty() {
        return Err(FieldError::new(field, "la data è obbligatoria"));
    }
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d").map_err(|_| {
        FieldError::new(
            field,
            format!("«{text}» non è una data valida (gg/mm/aaaa)"),
        )
    })
}

/// The reference date of a page: `?at=` or today.
fn at_or_today(app: &App, at: Option<&str>) -> Result<NaiveDate, PageError> {
    match at.filter(|t| !t.trim().is_empty()) {
        None => Ok(app.today()),
        Some(text) => parse_date("at", text).map_err(|e| PageError::bad_request(e.message)),
    }
}

/// Runs blocking work (SQLite reads) off the runtime.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, AppError> + Send + 'static,
) -> Result<T, PageError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| PageError::from(AppError::Internal(format!("blocking task: {e}"))))?
        .map_err(PageError::from)
}

// ---------------------------------------------------------------- home

/// A phase in the manager's list.
struct PhaseLine {
    key: String,
    title: String,
    number: u32,
    description: String,
    deadline: String,
    original_deadline: String,
    moved: bool,
    status: String,
    class: &'static str,
    days: String,
}

/// A plan in the list.
struct PlanLine {
    year: i32,
    title: String,
    organisation: String,
    objectives: usize,
    score: String,
}

#[derive(Template)]
#[template(path = "home.html", config = "src/web/templates/askama.toml")]
struct HomePage {
    chrome: Chrome,
    today: String,
    is_manager: bool,
    overdue: Vec<PhaseLine>,
    due_soon: Vec<PhaseLine>,
    all: Vec<PhaseLine>,
    plans: Vec<PlanLine>,
    queue: usize,
    is_validator: bool,
}

/// `GET /`: a manager's phases by deadline; the plans for everyone.
pub async fn home(
    State(state): State<AppState>,
    SignedIn(viewer): SignedIn,
) -> Result<Response, PageError> {
    let app = &state.app;
    let today = app.today();
    let p = viewer.principal.clone();
    let (mut all, plans) = app.read(|r| {
        let mut lines = Vec::new();
        if p.role == Role::Manager {
            for o in r.objectives() {
                if !p.units.iter().any(|u| u == o.unit()) || !o.active_at(today) {
                    continue;
                }
                let v = o.evaluate(today);
                for ph in v.phases.iter().filter(|ph| !ph.withdrawn) {
                    lines.push((ph.deadline, phase_line(&v, ph, today)));
                }
            }
        }
        let plans: Vec<PlanLine> = r
            .plans()
            .rev()
            .map(|plan| PlanLine {
                year: plan.year,
                title: plan.title.clone(),
                organisation: plan.organisation.clone(),
                objectives: plan.objectives.len(),
                score: r
                    .scores(plan.year, today)
                    .map(|s| view::pct(s.plan.score))
                    .unwrap_or_default(),
            })
            .collect();
        (lines, plans)
    });
    all.sort_by(|a, b| (a.0, &a.1.key, a.1.number).cmp(&(b.0, &b.1.key, b.1.number)));
    let soon = today + Duration::days(30);
    let overdue = all
        .iter()
        .filter(|(_, l)| l.class == "tg-overdue")
        .map(|(_, l)| l.clone())
        .collect();
    let due_soon = all
        .iter()
        .filter(|(d, l)| *d >= today && *d <= soon && !l.status.contains("completata"))
        .map(|(_, l)| l.clone())
        .collect();
    let queue = if p.role == Role::Validator {
        app.read(|r| queue_of(r, today).len())
    } else {
        0
    };
    let page = HomePage {
        chrome: Chrome::new("Inizio", &viewer, app, "/"),
        today: view::date(today),
        is_manager: p.role == Role::Manager,
        overdue,
        due_soon,
        all: all.into_iter().map(|(_, l)| l).collect(),
        plans,
        queue,
        is_validator: p.role == Role::Validator,
    };
    render(StatusCode::OK, &page)
}

impl Clone for PhaseLine {
    fn clone(&self) -> Self {
        PhaseLine {
            key: self.key.clone(),
            title: self.title.clone(),
            number: self.number,
            description: self.description.clone(),
            deadline: self.deadline.clone(),
            original_deadline: self.original_deadline.clone(),
            moved: self.moved,
            status: self.status.clone(),
            class: self.class,
            days: self.days.clone(),
        }
    }
}

fn phase_line(o: &ObjectiveView, ph: &PhaseView, today: NaiveDate) -> PhaseLine {
    let days = (ph.deadline - today).num_days();
    let days = if ph.status.is_completed() {
        String::new()
    } else if days < 0 {
        format!(
            "scaduta da {}",
            italian::count((-days) as usize, "giorno", "giorni")
        )
    } else if days == 0 {
        "scade oggi".to_string()
    } else {
        format!("tra {}", italian::count(days as usize, "giorno", "giorni"))
    };
    PhaseLine {
        key: o.key.clone(),
        title: o.title.clone(),
        number: ph.number,
        description: ph.description.clone(),
        deadline: view::date(ph.deadline),
        original_deadline: view::date(ph.original_deadline),
        moved: ph.deadline != ph.original_deadline,
        status: view::status(ph.status),
        class: view::status_class(ph.status),
        days,
    }
}

// ---------------------------------------------------------------- plan

struct ObjectiveLine {
    key: String,
    unit: String,
    title: String,
    completed: String,
    on_time: String,
    outcome: String,
    validated: String,
    bar: i64,
}

struct UnitLine {
    code: String,
    name: String,
    score: String,
}

#[derive(Template)]
#[template(path = "plan.html", config = "src/web/templates/askama.toml")]
struct PlanPage {
    chrome: Chrome,
    year: i32,
    title: String,
    organisation: String,
    at: String,
    at_iso: String,
    score: String,
    units_chart: String,
    objectives_chart: String,
    units: Vec<UnitLine>,
    objectives: Vec<ObjectiveLine>,
    revisions: String,
}

/// `GET /piani/{year}`: scores, charts, units and objectives.
pub async fn plan(
    State(state): State<AppState>,
    SignedIn(viewer): SignedIn,
    Path(year): Path<String>,
    Query(q): Query<AtQuery>,
) -> Result<Response, PageError> {
    let app = &state.app;
    let year = plan_year(&year)?;
    let at = at_or_today(app, q.at.as_deref())?;
    let page = app.read(|r| {
        let plan = r.plan(year)?;
        let scores = r.scores(year, at)?;
        let unit_name = |code: &str| plan.unit(code).map(|u| u.name.clone()).unwrap_or_default();
        let units: Vec<UnitLine> = scores
            .units
            .iter()
            .map(|u| UnitLine {
                code: u.unit.clone(),
                name: unit_name(&u.unit),
                score: view::pct(u.score),
            })
            .collect();
        let unit_bars: Vec<Bar> = scores
            .units
            .iter()
            .map(|u| Bar {
                label: format!("Unità {}", u.unit),
                href: String::new(),
                value: u.score.0,
            })
            .collect();
        let objectives: Vec<ObjectiveLine> = r
            .plan_objectives(year)
            .iter()
            .filter(|o| o.active_at(at))
            .map(|o| {
                let v = o.evaluate(at);
                ObjectiveLine {
                    key: v.key.clone(),
                    unit: v.unit.clone(),
                    title: v.title.clone(),
                    completed: view::pct(v.score.completed_pct),
                    on_time: view::pct(v.score.on_time_pct),
                    outcome: italian::outcome(v.score.outcome).to_string(),
                    validated: view::opt_pct(v.score.validated_pct),
                    bar: v.score.on_time_pct.0 .0 / 100,
                }
            })
            .collect();
        let objective_bars: Vec<Bar> = objectives
            .iter()
            .map(|o| Bar {
                label: o.key.clone(),
                // The table below links each objective; links inside an image
                // would be nested controls.
                href: String::new(),
                value: Hundredths(o.bar * 100),
            })
            .collect();
        Some(PlanPage {
            chrome: Chrome::new(
                &format!("Piano {year}"),
                &viewer,
                app,
                &format!("/piani/{year}"),
            ),
            year,
            title: plan.title.clone(),
            organisation: plan.organisation.clone(),
            at: view::date(at),
            at_iso: at.to_string(),
            score: view::pct(scores.plan.score),
            units_chart: view::bar_chart("Grado di raggiungimento per unità", &unit_bars),
            objectives_chart: view::bar_chart(
                "Grado di raggiungimento per obiettivo",
                &objective_bars,
            ),
            units,
            objectives,
            revisions: italian::count(plan.revisions.len(), "rimodulazione", "rimodulazioni"),
        })
    });
    let page =
        page.ok_or_else(|| PageError::not_found(format!("non esiste un piano per il {year}")))?;
    render(StatusCode::OK, &page)
}

fn plan_year(text: &str) -> Result<i32, PageError> {
    text.parse()
        .ok()
        .filter(|y| (1900..=9999).contains(y))
        .ok_or_else(|| PageError::not_found(format!("«{text}» non è un anno")))
}

// ---------------------------------------------------------------- objective

/// A note on a phase, with who and when.
struct NoteLine {
    kind: String,
    on: String,
    text: String,
    evidence: Vec<String>,
    actor: String,
    recorded_at: String,
}

struct PhaseRow {
    number: u32,
    description: String,
    weight: String,
    original_weight: String,
    deadline: String,
    original_deadline: String,
    moved: bool,
    status: String,
    class: &'static str,
    started_on: String,
    completed_on: String,
    withdrawn: bool,
    notes: Vec<NoteLine>,
    can_start: bool,
    can_complete: bool,
    can_retract: bool,
}

struct IndicatorRow {
    id: String,
    description: String,
    kind: String,
    target: String,
    latest: String,
    history: Vec<String>,
}

struct ValidationRow {
    stage: String,
    outcome: String,
    actor: String,
    recorded_at: String,
    unverified: String,
    neutralised: String,
    note: String,
}

#[derive(Template)]
#[template(path = "objective.html", config = "src/web/templates/askama.toml")]
struct ObjectivePage {
    chrome: Chrome,
    key: String,
    year: i32,
    unit: String,
    title: String,
    manager: String,
    at: String,
    final_deadline: String,
    original_final_deadline: String,
    withdrawn: bool,
    completed: String,
    on_time: String,
    outcome: String,
    validated: String,
    stale: bool,
    phases: Vec<PhaseRow>,
    indicators: Vec<IndicatorRow>,
    validations: Vec<ValidationRow>,
    may_record: bool,
    may_validate: bool,
    today: String,
    form: FormState,
    csrf: String,
    phase_numbers: Vec<u32>,
}

impl ObjectivePage {
    fn form_id(&self, n: &u32, action: &str) -> String {
        format!("{n}/{action}")
    }

    fn value(&self, n: &u32, action: &str, field: &str) -> String {
        self.form.value(&self.form_id(n, action), field)
    }

    fn date_value(&self, n: &u32, action: &str) -> String {
        self.form
            .value_or(&self.form_id(n, action), "on", &self.today)
    }

    fn error(&self, n: &u32, action: &str, field: &str) -> String {
        self.form.error(&self.form_id(n, action), field)
    }

    fn general(&self, n: &u32, action: &str) -> String {
        self.form.general(
            &self.form_id(n, action),
            &["on", "note", "evidence", "reason"],
        )
    }

    fn open(&self, n: &u32, action: &str) -> bool {
        self.form.is(&self.form_id(n, action))
    }

    fn v(&self, field: &str) -> String {
        self.form.value("validazione", field)
    }

    fn verr(&self, field: &str) -> String {
        self.form.error("validazione", field)
    }

    fn vgeneral(&self) -> String {
        self.form.general(
            "validazione",
            &[
                "stage",
                "outcome",
                "note",
                "unverified_phases",
                "neutralised_phases",
            ],
        )
    }

    fn checked(&self, field: &str, n: &u32) -> bool {
        self.form.is("validazione")
            && self
                .form
                .values
                .get(&format!("{field}-{n}"))
                .is_some_and(|v| v == "on" || v == &n.to_string())
    }

    fn m(&self, id: &str, field: &str) -> String {
        self.form.value(&format!("misura/{id}"), field)
    }

    fn mdate(&self, id: &str) -> String {
        self.form
            .value_or(&format!("misura/{id}"), "on", &self.today)
    }

    fn merr(&self, id: &str, field: &str) -> String {
        self.form.error(&format!("misura/{id}"), field)
    }

    fn mgeneral(&self, id: &str) -> String {
        self.form.general(
            &format!("misura/{id}"),
            &["on", "value", "numerator", "denominator", "note"],
        )
    }
}

fn objective_page(
    app: &App,
    viewer: &Viewer,
    o: &Objective,
    at: NaiveDate,
    form: FormState,
) -> ObjectivePage {
    let v = o.evaluate(at);
    let p = &viewer.principal;
    let may_record = p.manages(o.unit()) && o.withdrawn().is_none();
    let phases = v
        .phases
        .iter()
        .map(|ph| {
            let mut notes = Vec::new();
            if let Some(phase) = o.phase(ph.number) {
                for (kind, mark) in [
                    ("Avvio", phase.started()),
                    ("Completamento", phase.completed()),
                ] {
                    if let Some(m) = mark {
                        notes.push(NoteLine {
                            kind: kind.to_string(),
                            on: view::date(m.on),
                            text: m.note.unwrap_or_default().to_string(),
                            evidence: m.evidence.iter().map(|e| e.to_string()).collect(),
                            actor: m.recorded.actor.to_string(),
                            recorded_at: italian::timestamp(m.recorded.recorded_at),
                        });
                    }
                }
            }
            let completed = ph.completed_on.is_some();
            PhaseRow {
                number: ph.number,
                description: ph.description.clone(),
                weight: view::pct(ph.weight),
                original_weight: view::pct(ph.original_weight),
                deadline: view::date(ph.deadline),
                original_deadline: view::date(ph.original_deadline),
                moved: ph.deadline != ph.original_deadline,
                status: view::status(ph.status),
                class: view::status_class(ph.status),
                started_on: view::opt_date(ph.started_on),
                completed_on: view::opt_date(ph.completed_on),
                withdrawn: ph.withdrawn,
                notes,
                can_start: may_record && !ph.withdrawn && ph.started_on.is_none() && !completed,
                can_complete: may_record && !ph.withdrawn && !completed,
                can_retract: may_record && !ph.withdrawn && completed,
            }
        })
        .collect();
    let indicators = o
        .indicators()
        .iter()
        .map(|i| IndicatorRow {
            id: i.id.to_string(),
            description: i.description.to_string(),
            kind: match serde_json::to_value(i.kind)
                .ok()
                .and_then(|k| k.as_str().map(str::to_string))
                .as_deref()
            {
                Some("ratio") => "rapporto (n° a / n° b)".to_string(),
                Some("threshold") => "soglia".to_string(),
                Some("qualitative") => "qualitativo".to_string(),
                other => other.unwrap_or_default().to_string(),
            },
            target: i
                .target
                .original
                .map(italian::pct)
                .unwrap_or_else(|| "—".into()),
            latest: v
                .indicators
                .iter()
                .find(|x| x.id == i.id)
                .and_then(|x| x.latest.as_ref())
                .map(|m| {
                    format!(
                        "{} al {}",
                        m.value.map(view::pct).unwrap_or_else(|| "—".into()),
                        view::date(m.on)
                    )
                })
                .unwrap_or_else(|| "nessuna misurazione".into()),
            history: i
                .measurements
                .iter()
                .map(|m| {
                    let ratio = match (m.numerator, m.denominator) {
                        (Some(a), Some(b)) => format!(" ({a}/{b})"),
                        _ => String::new(),
                    };
                    format!(
                        "{}: {}{ratio}{} — {}",
                        view::date(m.on),
                        m.value.map(italian::pct).unwrap_or_else(|| "—".into()),
                        m.note
                            .as_ref()
                            .map(|n| format!(" — {n}"))
                            .unwrap_or_default(),
                        m.recorded.actor
                    )
                })
                .collect(),
        })
        .collect();
    let validations = o
        .validations()
        .iter()
        .map(|val| ValidationRow {
            stage: italian::validation_stage(val.stage).to_string(),
            outcome: italian::validation_outcome(val.outcome).to_string(),
            actor: val.recorded.actor.to_string(),
            recorded_at: italian::timestamp(val.recorded.recorded_at),
            unverified: italian::numbers(&val.unverified_phases),
            neutralised: italian::numbers(&val.neutralised_phases),
            note: val.note.clone().unwrap_or_default(),
        })
        .collect();
    let stale = v.validation_stale;
    ObjectivePage {
        chrome: Chrome::new(&format!("Obiettivo {}", o.key()), viewer, app, ""),
        key: v.key.clone(),
        year: v.year,
        unit: v.unit.clone(),
        title: v.title.clone(),
        manager: v.manager.clone(),
        at: view::date(at),
        final_deadline: view::date(v.final_deadline),
        original_final_deadline: view::date(v.original_final_deadline),
        withdrawn: v.withdrawn,
        completed: view::pct(v.score.completed_pct),
        on_time: view::pct(v.score.on_time_pct),
        outcome: italian::outcome(v.score.outcome).to_string(),
        validated: view::opt_pct(v.score.validated_pct),
        stale,
        phases,
        indicators,
        validations,
        may_record,
        may_validate: p.role == Role::Validator,
        today: app.today().to_string(),
        form,
        csrf: viewer.csrf.clone(),
        phase_numbers: v
            .phases
            .iter()
            .filter(|p| !p.withdrawn)
            .map(|p| p.number)
            .collect(),
    }
}

/// `GET /obiettivi/{key}`.
pub async fn objective(
    State(state): State<AppState>,
    SignedIn(viewer): SignedIn,
    Path(key): Path<String>,
    Query(q): Query<AtQuery>,
) -> Result<Response, PageError> {
    let app = &state.app;
    let at = at_or_today(app, q.at.as_deref())?;
    let page = app
        .read(|r| {
            r.objective(&key)
                .map(|o| objective_page(app, &viewer, o, at, FormState::default()))
        })
        .ok_or_else(|| PageError::not_found(format!("non esiste l'obiettivo {key}")))?;
    render(StatusCode::OK, &page)
}

/// Runs a command from a form of the objective page: on success `303` back to
/// the page (at the phase); refused, the page again with the errors next to the
/// fields and what was typed; a refusal of who may act is a 403 page.
async fn run_form(
    state: &AppState,
    viewer: &Viewer,
    key: &str,
    form_id: String,
    data: &FormData,
    command: Result<ObjectiveCommand, Vec<FieldError>>,
    anchor: &str,
) -> Result<Response, PageError> {
    let app = &state.app;
    let result = match command {
        Ok(command) => app
            .execute(key, &command, &viewer.principal, None, None)
            .await
            .map(|_| ()),
        Err(errors) => Err(AppError::Invalid(errors)),
    };
    match result {
        Ok(()) => Ok(Redirect::to(&format!("/obiettivi/{key}#{anchor}")).into_response()),
        Err(e) => {
            let refusal = PageError::from(&e);
            if matches!(
                refusal.status,
                StatusCode::FORBIDDEN | StatusCode::NOT_FOUND
            ) {
                return Err(refusal);
            }
            let at = app.today();
            let state_of_form = FormState::refused(form_id, data, &e);
            let page = app
                .read(|r| {
                    r.objective(key)
                        .map(|o| objective_page(app, viewer, o, at, state_of_form))
                })
                .ok_or_else(|| PageError::not_found(format!("non esiste l'obiettivo {key}")))?;
            render(refusal.status, &page)
        }
    }
}

fn optional(text: String) -> Option<String> {
    Some(text).filter(|t| !t.trim().is_empty())
}

/// `POST /obiettivi/{key}/fasi/{n}/avvio|completamento|annullamento`.
pub async fn phase_action(
    State(state): State<AppState>,
    SignedIn(viewer): SignedIn,
    Path((key, n, action)): Path<(String, String, String)>,
    form: FormData,
) -> Result<Response, PageError> {
    viewer.check_csrf(&form)?;
    let phase: u32 = n
        .parse()
        .map_err(|_| PageError::not_found(format!("l'obiettivo {key} non ha la fase {n}")))?;
    let command = match action.as_str() {
        "avvio" => parse_date("on", &form.get("on")).map(|on| ObjectiveCommand::StartPhase {
            phase,
            on,
            note: optional(form.raw("note")),
            backfill: None,
        }),
        "completamento" => {
            parse_date("on", &form.get("on")).map(|on| ObjectiveCommand::CompletePhase {
                phase,
                on,
                note: optional(form.raw("note")),
                evidence: form
                    .raw("evidence")
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(str::to_string)
                    .collect(),
                backfill: None,
            })
        }
        "annullamento" => Ok(ObjectiveCommand::RetractCompletion {
            phase,
            reason: form.raw("reason"),
            backfill: None,
        }),
        _ => return Err(PageError::not_found("azione sconosciuta")),
    }
    .map_err(|e| vec![e]);
    let form_id = format!("{phase}/{action}");
    run_form(
        &state,
        &viewer,
        &key,
        form_id,
        &form,
        command,
        &format!("fase-{phase}"),
    )
    .await
}

/// `POST /obiettivi/{key}/validazioni`: fields `stage`, `outcome`,
/// `unverified-{n}` and `neutralised-{n}` checkboxes, `note`.
pub async fn validate(
    State(state): State<AppState>,
    SignedIn(viewer): SignedIn,
    Path(key): Path<String>,
    form: FormData,
) -> Result<Response, PageError> {
    viewer.check_csrf(&form)?;
    let mut errors = Vec::new();
    let stage = match form.get("stage").as_str() {
        "plan" => Some(ValidationStage::Plan),
        "final" => Some(ValidationStage::Final),
        _ => {
            errors.push(FieldError::new("stage", "scegli la fase della validazione"));
            None
        }
    };
    let outcome = match form.get("outcome").as_str() {
        "approved" => Some(ValidationOutcome::Approved),
        "rejected" => Some(ValidationOutcome::Rejected),
        _ => {
            errors.push(FieldError::new("outcome", "scegli l'esito"));
            None
        }
    };
    let numbers = |prefix: &str| -> Vec<u32> {
        form.0
            .iter()
            .filter_map(|(k, _)| k.strip_prefix(prefix)?.parse().ok())
            .collect()
    };
    let command = match (stage, outcome) {
        (Some(stage), Some(outcome)) if errors.is_empty() => Ok(
            ObjectiveCommand::RecordValidation(crate::commands::ValidationRequest {
                stage,
                outcome,
                unverified_phases: numbers("unverified-"),
                neutralised_phases: numbers("neutralised-"),
                note: optional(form.raw("note")),
                reference: optional(form.raw("reference")),
            }),
        ),
        _ => Err(errors),
    };
    run_form(
        &state,
        &viewer,
        &key,
        "validazione".into(),
        &form,
        command,
        "validazioni",
    )
    .await
}

/// `POST /obiettivi/{key}/indicatori/{id}/misurazioni`: `on`, `value`,
/// `numerator`, `denominator`, `note`.
pub async fn measure(
    State(state): State<AppState>,
    SignedIn(viewer): SignedIn,
    Path((key, id)): Path<(String, String)>,
    form: FormData,
) -> Result<Response, PageError> {
    viewer.check_csrf(&form)?;
    let mut errors = Vec::new();
    let on = parse_date("on", &form.get("on"))
        .map_err(|e| errors.push(e))
        .ok();
    let value = match form.get("value").replace(',', ".") {
        t if t.is_empty() => None,
        t => match serde_json::from_str::<serde_json::Number>(&t)
            .map_err(|_| "non è un numero".to_string())
            .and_then(|n| Hundredths::from_json(&n))
        {
            Ok(h) => Some(h),
            Err(m) => {
                errors.push(FieldError::new("value", format!("valore non valido: {m}")));
                None
            }
        },
    };
    let whole = |field: &str, errors: &mut Vec<FieldError>| -> Option<u64> {
        let t = form.get(field);
        if t.is_empty() {
            return None;
        }
        t.parse()
            .map_err(|_| errors.push(FieldError::new(field, "deve essere un numero intero")))
            .ok()
    };
    let numerator = whole("numerator", &mut errors);
    let denominator = whole("denominator", &mut errors);
    let command = match on {
        Some(on) if errors.is_empty() => Ok(ObjectiveCommand::RecordMeasurement(
            crate::commands::Measurement {
                indicator: id.clone(),
                on,
                value,
                numerator,
                denominator,
                text: optional(form.raw("text")),
                entry: crate::commands::Entry {
                    note: optional(form.raw("note")),
                    backfill: None,
                },
            },
        )),
        _ => Err(errors),
    };
    run_form(
        &state,
        &viewer,
        &key,
        format!("misura/{id}"),
        &form,
        command,
        "indicatori",
    )
    .await
}

// ---------------------------------------------------------------- the Nucleo's queue

struct QueueLine {
    key: String,
    title: String,
    on_time: String,
    outcome: String,
    reason: String,
}

/// Active objectives without a current final validation: none yet, or one made
/// stale by something recorded after it.
fn queue_of(r: &traguardo_projections::Registry, today: NaiveDate) -> Vec<QueueLine> {
    let mut lines: Vec<QueueLine> = r
        .objectives()
        .filter(|o| o.active_at(today))
        .filter_map(|o| {
            let reason = match o.final_validation_at(today) {
                None => "nessuna validazione finale",
                Some(_) if o.validation_stale_at(today) => {
                    "validazione da ripetere (registrazioni successive)"
                }
                Some(_) => return None,
            };
            let s = o.score(today);
            Some(QueueLine {
                key: o.key().to_string(),
                title: o.original_title().to_string(),
                on_time: italian::pct(s.on_time_pct),
                outcome: italian::outcome(s.outcome).to_string(),
                reason: reason.to_string(),
            })
        })
        .collect();
    lines.sort_by(|a, b| a.key.cmp(&b.key));
    lines
}

#[derive(Template)]
#[template(path = "queue.html", config = "src/web/templates/askama.toml")]
struct QueuePage {
    chrome: Chrome,
    lines: Vec<QueueLine>,
}

/// `GET /validazioni`: what waits for the Nucleo's final validation.
pub async fn queue(
    State(state): State<AppState>,
    SignedIn(viewer): SignedIn,
) -> Result<Response, PageError> {
    let app = &state.app;
    let today = app.today();
    let page = QueuePage {
        chrome: Chrome::new("Da validare", &viewer, app, "/validazioni"),
        lines: app.read(|r| queue_of(r, today)),
    };
    render(StatusCode::OK, &page)
}

// ---------------------------------------------------------------- flags

struct FlagLine {
    id: String,
    kind: String,
    objective: String,
    phase: String,
    seqs: String,
    message: String,
    status: String,
    acknowledgement: String,
}

#[derive(Template)]
#[template(path = "flags.html", config = "src/web/templates/askama.toml")]
struct FlagsPage {
    chrome: Chrome,
    year: i32,
    flags: Vec<FlagLine>,
    /// Whether the viewer is the Nucleo, who may acknowledge a flag.
    may_acknowledge: bool,
    csrf: String,
    /// The flag whose acknowledgement was refused, what was typed and why.
    failed: Option<(String, String, String)>,
}

impl FlagsPage {
    /// The note typed for flag `id`, when its acknowledgement was refused.
    fn typed(&self, id: &str) -> &str {
        match &self.failed {
            Some((failed, note, _)) if failed == id => note,
            _ => "",
        }
    }

    /// Why the acknowledgement of flag `id` was refused.
    fn problem(&self, id: &str) -> &str {
        match &self.failed {
            Some((failed, _, problem)) if failed == id => problem,
            _ => "",
        }
    }
}

/// A flag as a line of a table.
pub fn flag_line(
    f: &traguardo_projections::flags::Flag,
) -> (String, String, String, String, String) {
    (
        traguardo_projections::italian::flag_kind(f.kind).to_string(),
        f.objective.clone(),
        f.phase.map(|p| p.to_string()).unwrap_or_else(|| "—".into()),
        f.seqs
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        f.message.clone(),
    )
}

/// `GET /piani/{year}/segnalazioni`.
pub async fn flags(
    State(state): State<AppState>,
    SignedIn(viewer): SignedIn,
    Path(year): Path<String>,
) -> Result<Response, PageError> {
    let year = plan_year(&year)?;
    flags_page(&state, &viewer, year, None).await
}

/// `POST /piani/{year}/segnalazioni/{id}/presa-visione`: `note`. The Nucleo has
/// examined the flag; it stays listed as acknowledged, with the note.
pub async fn acknowledge_flag(
    State(state): State<AppState>,
    SignedIn(viewer): SignedIn,
    Path((year, id)): Path<(String, String)>,
    form: FormData,
) -> Result<Response, PageError> {
    viewer.check_csrf(&form)?;
    let year = plan_year(&year)?;
    let note = form.raw("note");
    match state
        .app
        .acknowledge_flag(year, &id, &note, &viewer.principal, None)
        .await
    {
        Ok(_) => Ok(Redirect::to(&format!("/piani/{year}/segnalazioni#{id}")).into_response()),
        Err(AppError::Invalid(errors)) => {
            let problem = errors
                .iter()
                .map(|e| e.message.clone())
                .collect::<Vec<_>>()
                .join("; ");
            flags_page(&state, &viewer, year, Some((id, note, problem))).await
        }
        Err(e) => Err(e.into()),
    }
}

async fn flags_page(
    state: &AppState,
    viewer: &Viewer,
    year: i32,
    failed: Option<(String, String, String)>,
) -> Result<Response, PageError> {
    let app = state.app.clone();
    if !app.read(|r| r.plan(year).is_some()) {
        return Err(PageError::not_found(format!(
            "non esiste un piano per il {year}"
        )));
    }
    let flags = blocking(move || {
        let events = app.year_events(year, Until::End)?;
        Ok(traguardo_projections::flags::red_flags(
            &events,
            &FlagSettings::default(),
        )?)
    })
    .await?;
    let status = failed
        .as_ref()
        .map_or(StatusCode::OK, |_| StatusCode::UNPROCESSABLE_ENTITY);
    let page = FlagsPage {
        chrome: Chrome::new(
            &format!("Segnalazioni {year}"),
            viewer,
            &state.app,
            &format!("/piani/{year}/segnalazioni"),
        ),
        year,
        flags: flags
            .iter()
            .map(|f| {
                let (kind, objective, phase, seqs, message) = flag_line(f);
                FlagLine {
                    id: f.id.clone(),
                    kind,
                    objective,
                    phase,
                    seqs,
                    message,
                    status: match f.status {
                        traguardo_projections::flags::FlagStatus::Open => "aperta",
                        traguardo_projections::flags::FlagStatus::Resolved => {
                            "superata da una nuova validazione"
                        }
                        traguardo_projections::flags::FlagStatus::Acknowledged => {
                            "esaminata dal Nucleo"
                        }
                    }
                    .to_string(),
                    acknowledgement: f
                        .acknowledgement()
                        .map(|a| {
                            format!(
                                "{} ({}, {})",
                                a.note.as_deref().unwrap_or_default(),
                                a.actor,
                                italian::recorded_on(a.recorded_at)
                            )
                        })
                        .unwrap_or_default(),
                }
            })
            .collect(),
        may_acknowledge: viewer.principal.role == Role::Validator,
        csrf: viewer.csrf.clone(),
        failed,
    };
    render(status, &page)
}

// ---------------------------------------------------------------- report

struct Download {
    href: String,
    label: String,
}

#[derive(Template)]
#[template(path = "report.html", config = "src/web/templates/askama.toml")]
struct ReportPage {
    chrome: Chrome,
    year: i32,
    at_iso: String,
    downloads: Vec<Download>,
}

/// `GET /piani/{year}/relazione`: downloads in every format.
pub async fn report(
    State(state): State<AppState>,
    SignedIn(viewer): SignedIn,
    Path(year): Path<String>,
    Query(q): Query<AtQuery>,
) -> Result<Response, PageError> {
    let year = plan_year(&year)?;
    let app = &state.app;
    if !app.read(|r| r.plan(year).is_some()) {
        return Err(PageError::not_found(format!(
            "non esiste un piano per il {year}"
        )));
    }
    let at = at_or_today(app, q.at.as_deref())?;
    let suffix = format!("?at={at}");
    let downloads = [
        (
            format!("relazione-{year}.pdf"),
            "Relazione (PDF/A, A4, da allegare e archiviare)",
        ),
        (
            format!("relazione-{year}.html"),
            "Relazione (HTML, stampabile)",
        ),
        (
            format!("relazione-{year}.xlsx"),
            "Relazione (foglio di calcolo xlsx)",
        ),
        (
            format!("relazione-{year}.csv"),
            "Fasi (CSV per fogli di calcolo)",
        ),
        (
            format!("obiettivi-{year}.csv"),
            "Obiettivi (CSV per fogli di calcolo)",
        ),
        (format!("relazione-{year}.md"), "Relazione (Markdown)"),
        (
            format!("relazione-{year}.json"),
            "Relazione completa (JSON)",
        ),
    ]
    .into_iter()
    .map(|(file, label)| Download {
        href: format!("/piani/{year}/relazione/{file}{suffix}"),
        label: label.to_string(),
    })
    .collect();
    let page = ReportPage {
        chrome: Chrome::new(
            &format!("Relazione {year}"),
            &viewer,
            app,
            &format!("/piani/{year}/relazione"),
        ),
        year,
        at_iso: at.to_string(),
        downloads,
    };
    render(StatusCode::OK, &page)
}

/// `GET /piani/{year}/relazione/{file}`: the report, rendered as the API does.
pub async fn report_file(
    State(state): State<AppState>,
    SignedIn(_viewer): SignedIn,
    Path((year, file)): Path<(String, String)>,
    Query(q): Query<AtQuery>,
) -> Result<Response, PageError> {
    let year = plan_year(&year)?;
    let (stem, ext) = file
        .rsplit_once('.')
        .ok_or_else(|| PageError::not_found("formato sconosciuto"))?;
    let level = if stem == format!("obiettivi-{year}") {
        crate::report::Level::Objective
    } else if stem == format!("relazione-{year}") {
        crate::report::Level::Phase
    } else {
        return Err(PageError::not_found("file sconosciuto"));
    };
    let format: crate::report::Format = ext
        .parse()
        .map_err(|_| PageError::not_found("formato sconosciuto"))?;
    let at = at_or_today(&state.app, q.at.as_deref())?;
    let app = state.app.clone();
    let rendered = blocking(move || {
        let generated_at = chrono::SubsecRound::trunc_subsecs(app.store().clock().now(), 0);
        let report = crate::report::build(&app, year, Some(at), None, generated_at)?;
        crate::report::render(&report, format, level)
    })
    .await?;
    let mut response = rendered.body.into_response();
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(rendered.content_type) {
        h.insert(header::CONTENT_TYPE, v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{file}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(response)
}

// ---------------------------------------------------------------- integrity

#[derive(Template)]
#[template(path = "integrity.html", config = "src/web/templates/askama.toml")]
struct IntegrityPage {
    chrome: Chrome,
    head_seq: u64,
    head_hash: String,
    verified: Option<(bool, u64, String)>,
    csrf: String,
    /// The latest signed checkpoint and the key that verifies it, when this
    /// server signs checkpoints.
    checkpoint: Option<(String, String)>,
}

fn auditor_or_admin(viewer: &Viewer) -> Result<(), PageError> {
    if matches!(viewer.principal.role, Role::Auditor | Role::Admin) {
        Ok(())
    } else {
        Err(PageError::forbidden(
            "l'integrità del registro è per i revisori e l'amministrazione",
        ))
    }
}

async fn integrity_page(
    state: &AppState,
    viewer: &Viewer,
    verified: Option<(bool, u64, String)>,
) -> Result<Response, PageError> {
    auditor_or_admin(viewer)?;
    let (app, checkpoints) = (state.app.clone(), state.checkpoints.clone());
    let (head, note) = blocking(move || {
        let note = checkpoints.refresh(&**app.store())?;
        Ok((app.store().head()?, note))
    })
    .await?;
    let page = IntegrityPage {
        chrome: Chrome::new("Integrità", viewer, &state.app, "/integrita"),
        head_seq: head.seq,
        head_hash: head.hash,
        verified,
        csrf: viewer.csrf.clone(),
        checkpoint: note
            .zip(state.checkpoints.vkey())
            .map(|(note, vkey)| (note.to_string().trim_end().to_string(), vkey.to_string())),
    };
    render(StatusCode::OK, &page)
}

/// `GET /integrita`: the head of the log.
pub async fn integrity(
    State(state): State<AppState>,
    SignedIn(viewer): SignedIn,
) -> Result<Response, PageError> {
    integrity_page(&state, &viewer, None).await
}

/// `POST /integrita`: recomputes the whole chain.
pub async fn verify(
    State(state): State<AppState>,
    SignedIn(viewer): SignedIn,
    form: FormData,
) -> Result<Response, PageError> {
    viewer.check_csrf(&form)?;
    auditor_or_admin(&viewer)?;
    let app = state.app.clone();
    let v = blocking(move || Ok(app.store().verify(&[])?)).await?;
    let message = match (&v.problem, v.triggers_present) {
        (Some(p), _) => p.clone(),
        (None, false) => {
            "i trigger che impediscono modifiche e cancellazioni sono stati rimossi".into()
        }
        (None, true) => String::new(),
    };
    let ok = v.ok();
    integrity_page(&state, &viewer, Some((ok, v.events, message))).await
}

/// `GET /integrita/export.ndjson`: the whole log, one event per line, with hashes.
pub async fn export(
    State(state): State<AppState>,
    SignedIn(viewer): SignedIn,
) -> Result<Response, PageError> {
    auditor_or_admin(&viewer)?;
    let app = state.app.clone();
    let body = blocking(move || {
        let mut out = Vec::new();
        app.store().for_each(0, |event| -> Result<(), AppError> {
            serde_json::to_writer(&mut out, &event)
                .map_err(|e| AppError::Internal(e.to_string()))?;
            out.write_all(b"\n")
                .map_err(|e| AppError::Internal(e.to_string()))?;
            Ok(())
        })?;
        Ok(out)
    })
    .await?;
    let mut response = body.into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"registro.ndjson\""),
    );
    Ok(response)
}
