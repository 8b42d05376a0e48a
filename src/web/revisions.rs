//! Revisions (*rimodulazioni*): the list, the form for a new one (several
//! changes, a preview of each touched objective before and after and of the red
//! flags it would raise, computed without appending anything), and the replay of
//! a recorded one side by side.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Serialize;
use traguardo_events::domain::RevisionChange;
use traguardo_events::model::{objective_stream, plan_stream, Hundredths, PhaseSpec, Role};
use traguardo_events::store::Until;
use traguardo_events::{NewEvent, RecordedEvent};
use traguardo_projections::flags::{Flag, FlagSettings};
use traguardo_projections::italian;
use traguardo_projections::objective::ObjectiveView;
use traguardo_projections::revision::TouchedObjective;
use uuid::Uuid;

use super::pages::{blocking, flag_line, parse_date, AtQuery};
use super::session::{SignedIn, Viewer};
use super::{render, view, Chrome, FormData, PageError};
use crate::commands::{self, Principal, RevisionRequest};
use crate::error::{AppError, FieldError};
use crate::http::AppState;
use crate::App;

/// What a revision would do, computed without appending anything.
#[derive(Debug, Clone, Serialize)]
pub struct RevisionPreview {
    /// Always true: nothing was recorded.
    pub dry_run: bool,
    /// The date the states are evaluated at (today).
    pub at: chrono::NaiveDate,
    /// Every objective it would touch, before and after, with a diff.
    pub touched: Vec<TouchedObjective>,
    /// The red flags it would raise.
    pub flags: Vec<Flag>,
}

impl App {
    /// Decides a revision as [`App::revise`] would, applies its events to a copy
    /// of the year's log in memory, and answers what it would change and which
    /// red flags it would raise. Nothing is appended. Reads SQLite: call it off
    /// the async runtime.
    ///
    /// # Errors
    /// Whatever [`commands::decide_revision`] refuses; store errors.
    pub fn preview_revision(
        &self,
        year: i32,
        request: &RevisionRequest,
        principal: &Principal,
    ) -> Result<RevisionPreview, AppError> {
        let today = self.today();
        let id = Uuid::now_v7();
        let decision =
            self.read(|r| commands::decide_revision(r, year, request, principal, today, id))?;
        let mut events = self.year_events(year, Until::End)?;
        let head = self.store().head()?;
        let now = self.store().clock().now();
        let actor = principal.actor();
        let correlation = Some(id.to_string());
        let mut seq = head.seq;
        let mut fake = |stream: String, version: u64, new: NewEvent| {
            seq += 1;
            RecordedEvent {
                seq,
                id: Uuid::now_v7(),
                stream,
                version,
                event_type: new.event_type,
                schema: new.schema,
                data: new.data,
                actor: new.actor,
                role: new.role,
                recorded_at: now,
                correlation: new.correlation,
                prev_hash: String::new(),
                hash: String::new(),
            }
        };
        let plan = plan_stream(year);
        let new = NewEvent::from_domain(&plan, &decision.plan_event, &actor, correlation.clone())?;
        events.push(fake(plan, decision.plan_version + 1, new));
        for (key, version, objective_events) in &decision.objectives {
            let stream = objective_stream(key);
            for (i, e) in objective_events.iter().enumerate() {
                let new = NewEvent::from_domain(&stream, e, &actor, correlation.clone())?;
                events.push(fake(
                    stream.clone(),
                    version.unwrap_or(0) + 1 + i as u64,
                    new,
                ));
            }
        }
        let replay = traguardo_projections::revision::replay(&events, id, today)?
            .ok_or_else(|| AppError::Internal("the previewed revision is missing".into()))?;
        let flags = traguardo_projections::flags::red_flags(&events, &FlagSettings::default())?
            .into_iter()
            .filter(|f| f.seqs.iter().any(|s| *s > head.seq))
            .collect();
        Ok(RevisionPreview {
            dry_run: true,
            at: today,
            touched: replay.touched,
            flags,
        })
    }
}

// ---------------------------------------------------------------- pages

/// A phase compared before and after.
pub struct ComparedPhase {
    number: u32,
    description: String,
    before_weight: String,
    after_weight: String,
    weight_changed: bool,
    before_deadline: String,
    after_deadline: String,
    deadline_changed: bool,
    before_status: String,
    after_status: String,
    status_changed: bool,
    withdrawn: bool,
}

/// An objective compared before and after.
pub struct Compared {
    key: String,
    title: String,
    before_score: String,
    after_score: String,
    score_changed: bool,
    before_final: String,
    after_final: String,
    final_changed: bool,
    added: bool,
    phases: Vec<ComparedPhase>,
    diff: Vec<String>,
}

fn compare(t: &TouchedObjective) -> Compared {
    let after: &ObjectiveView = &t.after;
    let before = t.before.as_ref();
    let phases = after
        .phases
        .iter()
        .map(|a| {
            let b = before.and_then(|b| b.phases.iter().find(|p| p.number == a.number));
            let bw = b.map(|b| view::pct(b.weight)).unwrap_or_else(|| "—".into());
            let bd = b
                .map(|b| view::date(b.deadline))
                .unwrap_or_else(|| "—".into());
            let bs = b
                .map(|b| view::status(b.status))
                .unwrap_or_else(|| "—".into());
            let aw = view::pct(a.weight);
            let ad = view::date(a.deadline);
            let st = view::status(a.status);
            ComparedPhase {
                number: a.number,
                description: a.description.clone(),
                weight_changed: bw != aw,
                deadline_changed: bd != ad,
                status_changed: bs != st,
                before_weight: bw,
                after_weight: aw,
                before_deadline: bd,
                after_deadline: ad,
                before_status: bs,
                after_status: st,
                withdrawn: a.withdrawn,
            }
        })
        .collect();
    let bscore = before
        .map(|b| view::pct(b.score.on_time_pct))
        .unwrap_or_else(|| "—".into());
    let ascore = view::pct(after.score.on_time_pct);
    let bfinal = before
        .map(|b| view::date(b.final_deadline))
        .unwrap_or_else(|| "—".into());
    let afinal = view::date(after.final_deadline);
    Compared {
        key: t.key.clone(),
        title: after.title.clone(),
        score_changed: bscore != ascore,
        final_changed: bfinal != afinal,
        before_score: bscore,
        after_score: ascore,
        before_final: bfinal,
        after_final: afinal,
        added: before.is_none(),
        phases,
        diff: t
            .diff
            .iter()
            .map(|c| format!("{}: {} → {}", c.field, c.from, c.to))
            .collect(),
    }
}

struct RevisionLine {
    id: String,
    act: String,
    in_force_from: String,
    reason: String,
    actor: String,
    recorded_at: String,
    objectives: String,
}

struct FlagRow {
    kind: String,
    objective: String,
    phase: String,
    message: String,
}

/// One row of the form: a change.
struct ChangeRow {
    i: usize,
    kind: String,
    objective: String,
    phase: String,
    new_deadline: String,
    weights: String,
    /// The new text: manager, title, a phase's description, or a new phase's.
    text: String,
    /// A new phase's weight.
    weight: String,
    /// An indicator's id.
    indicator: String,
    /// An indicator's new target.
    target: String,
    /// A new objective: its unit, letter, manager, title, final deadline,
    /// *finalità*, *risultato atteso*, and phases (one a line).
    unit: String,
    letter: String,
    manager: String,
    title: String,
    final_deadline: String,
    purpose: String,
    expected: String,
    phases: String,
}

impl ChangeRow {
    /// Row `i` as the form sent it (an empty row when it sent nothing).
    fn of_form(form: &FormData, i: usize) -> Self {
        let field = |name: &str| form.get(&format!("{name}_{i}"));
        ChangeRow {
            i,
            kind: field("kind"),
            objective: field("objective"),
            phase: field("phase"),
            new_deadline: field("new_deadline"),
            weights: form.raw(&format!("weights_{i}")),
            text: form.raw(&format!("text_{i}")),
            weight: field("weight"),
            indicator: field("indicator"),
            target: field("target"),
            unit: field("unit"),
            letter: field("letter"),
            manager: form.raw(&format!("manager_{i}")),
            title: form.raw(&format!("title_{i}")),
            final_deadline: field("final_deadline"),
            purpose: form.raw(&format!("purpose_{i}")),
            expected: form.raw(&format!("expected_{i}")),
            phases: form.raw(&format!("phases_{i}")),
        }
    }
}

#[derive(Template)]
#[template(path = "revisions.html", config = "src/web/templates/askama.toml")]
struct RevisionsPage {
    chrome: Chrome,
    year: i32,
    revisions: Vec<RevisionLine>,
    may_revise: bool,
    csrf: String,
    act: String,
    act_date: String,
    reason: String,
    rows: Vec<ChangeRow>,
    keys: Vec<String>,
    /// The plan's units (code, name), for a new objective.
    units: Vec<(String, String)>,
    errors: HashMap<String, String>,
    general: Vec<String>,
    preview: Option<Vec<Compared>>,
    preview_flags: Vec<FlagRow>,
    at: String,
}

impl RevisionsPage {
    fn err(&self, field: &str) -> String {
        self.errors.get(field).cloned().unwrap_or_default()
    }

    fn row_err(&self, field: &str, i: &usize) -> String {
        self.err(&format!("{field}_{i}"))
    }
}

/// Rows a new form starts with.
const EMPTY_ROWS: usize = 3;
/// Rows a form holds at most.
const MAX_ROWS: usize = 50;

fn revision_lines(app: &App, year: i32) -> Option<Vec<RevisionLine>> {
    app.read(|r| {
        r.plan(year).map(|p| {
            p.revisions
                .iter()
                .rev()
                .map(|rv| RevisionLine {
                    id: rv.id.to_string(),
                    act: rv.act.clone(),
                    in_force_from: view::date(rv.in_force_from),
                    reason: rv.reason.clone(),
                    actor: rv.actor.clone(),
                    recorded_at: italian::timestamp(rv.recorded_at),
                    objectives: rv.objectives.join(", "),
                })
                .collect()
        })
    })
}

fn page(app: &App, viewer: &Viewer, year: i32) -> Result<RevisionsPage, PageError> {
    let revisions = revision_lines(app, year)
        .ok_or_else(|| PageError::not_found(format!("non esiste un piano per il {year}")))?;
    let mut keys: Vec<String> = app.read(|r| {
        r.plan(year)
            .map(|p| p.objectives.clone())
            .unwrap_or_default()
    });
    keys.sort();
    let units = app.read(|r| {
        r.plan(year)
            .map(|p| {
                p.units
                    .iter()
                    .map(|u| (u.code.clone(), u.name.clone()))
                    .collect()
            })
            .unwrap_or_default()
    });
    Ok(RevisionsPage {
        chrome: Chrome::new(
            &format!("Rimodulazioni {year}"),
            viewer,
            app,
            &format!("/piani/{year}/rimodulazioni"),
        ),
        year,
        revisions,
        may_revise: viewer.principal.role == Role::Admin,
        csrf: viewer.csrf.clone(),
        act: String::new(),
        act_date: String::new(),
        reason: String::new(),
        rows: (0..EMPTY_ROWS)
            .map(|i| ChangeRow::of_form(&FormData::default(), i))
            .collect(),
        keys,
        units,
        errors: HashMap::new(),
        general: Vec::new(),
        preview: None,
        preview_flags: Vec::new(),
        at: view::date(app.today()),
    })
}

/// `GET /piani/{year}/rimodulazioni`.
pub async fn list(
    State(state): State<AppState>,
    SignedIn(viewer): SignedIn,
    Path(year): Path<String>,
) -> Result<Response, PageError> {
    let year = year_of(&year)?;
    render(StatusCode::OK, &page(&state.app, &viewer, year)?)
}

fn year_of(text: &str) -> Result<i32, PageError> {
    text.parse()
        .map_err(|_| PageError::not_found(format!("«{text}» non è un anno")))
}

/// Row `i`'s text, required.
fn text_of(form: &FormData, i: usize, missing: &str) -> Result<String, FieldError> {
    let text = form.raw(&format!("text_{i}"));
    if text.trim().is_empty() {
        Err(FieldError::new(format!("text_{i}"), missing))
    } else {
        Ok(text.trim().to_string())
    }
}

/// A weight or target typed with a decimal comma or point: `35`, `33,34`.
fn percent(form: &FormData, field: &str) -> Result<Hundredths, FieldError> {
    let text = form.get(field);
    if text.is_empty() {
        return Err(FieldError::new(
            field,
            "indica un numero (per esempio 35 o 33,34)",
        ));
    }
    Hundredths::parse(&text.replace(',', "."))
        .map_err(|m| FieldError::new(field, format!("«{text}»: {m}")))
}

/// Row `i` as a new phase: number, description (`text`), weight, deadline.
fn add_phase(
    form: &FormData,
    i: usize,
    objective: String,
    phase: Option<u32>,
) -> Result<RevisionChange, FieldError> {
    let number = phase.ok_or_else(|| {
        FieldError::new(format!("phase_{i}"), "indica il numero della nuova fase")
    })?;
    let description = text_of(form, i, "descrivi la nuova fase")?;
    let weight_hundredths = percent(form, &format!("weight_{i}"))?;
    let deadline = parse_date(
        &format!("new_deadline_{i}"),
        &form.get(&format!("new_deadline_{i}")),
    )?;
    Ok(RevisionChange::AddPhase {
        objective,
        phase: PhaseSpec {
            number,
            description,
            weight_hundredths,
            involved: Vec::new(),
            deadline,
        },
    })
}

/// A date typed as the page shows them (`gg/mm/aaaa`) or as a date input sends
/// it (`AAAA-MM-GG`), as `AAAA-MM-GG`.
fn typed_date(text: &str) -> Option<String> {
    let text = text.trim();
    chrono::NaiveDate::parse_from_str(text, "%d/%m/%Y")
        .or_else(|_| chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d"))
        .ok()
        .map(|d| d.format("%Y-%m-%d").to_string())
}

/// Row `i` as a new objective (`add_objective`): its fields become the
/// objective of a plan document, which the plan document's own validation
/// checks, as the API's `add_objective` does. Each problem is named by the
/// form's field (`letter_2`, `phases_2`…). Phases are typed one a line,
/// `descrizione | peso | scadenza`.
fn add_objective(
    form: &FormData,
    i: usize,
    year: i32,
    codes: &BTreeSet<String>,
) -> Result<RevisionChange, Vec<FieldError>> {
    use serde_json::{json, Map, Value};
    let mut errors = Vec::new();
    let field = |name: &str| format!("{name}_{i}");
    let mut phases = Vec::new();
    let lines: Vec<String> = form
        .raw(&field("phases"))
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    for (n, line) in lines.iter().enumerate() {
        let mut parts = line.rsplitn(3, '|').map(str::trim);
        let (deadline, weight, description) = (parts.next(), parts.next(), parts.next());
        let (Some(deadline), Some(weight), Some(description)) = (deadline, weight, description)
        else {
            errors.push(FieldError::new(
                field("phases"),
                format!(
                    "riga {}: «{line}» non è nella forma descrizione | peso | scadenza",
                    n + 1
                ),
            ));
            continue;
        };
        let weight_value = serde_json::from_str::<Value>(&weight.replace(',', "."))
            .ok()
            .filter(Value::is_number);
        let Some(weight_value) = weight_value else {
            errors.push(FieldError::new(
                field("phases"),
                format!(
                    "riga {}: «{weight}» non è un peso (per esempio 35 o 33,34)",
                    n + 1
                ),
            ));
            continue;
        };
        let Some(deadline) = typed_date(deadline) else {
            errors.push(FieldError::new(
                field("phases"),
                format!("riga {}: «{deadline}» non è una data (gg/mm/aaaa)", n + 1),
            ));
            continue;
        };
        phases.push(json!({
            "number": n + 1,
            "description": description,
            "weight": weight_value,
            "deadline": deadline,
        }));
    }
    if lines.is_empty() {
        errors.push(FieldError::new(
            field("phases"),
            "indica almeno una fase: una riga per fase, descrizione | peso | scadenza",
        ));
    }
    let final_deadline = form.get(&field("final_deadline"));
    let final_deadline = match final_deadline.as_str() {
        "" => Value::Null,
        text => match typed_date(text) {
            Some(d) => Value::String(d),
            None => {
                errors.push(FieldError::new(
                    field("final_deadline"),
                    format!("«{text}» non è una data valida (gg/mm/aaaa)"),
                ));
                Value::Null
            }
        },
    };
    let mut objective = Map::new();
    for (key, name) in [
        ("unit", "unit"),
        ("letter", "letter"),
        ("manager", "manager"),
        ("title", "title"),
        ("strategic_purpose", "purpose"),
        ("expected_result", "expected"),
    ] {
        let text = form.get(&field(name));
        if !text.is_empty() {
            objective.insert(key.into(), Value::String(text));
        }
    }
    objective.insert("final_deadline".into(), final_deadline);
    objective.insert("phases".into(), Value::Array(phases));
    let parsed = crate::plan_document::parse_objective(&Value::Object(objective), "", year, codes);
    match parsed {
        Ok(objective) if errors.is_empty() => Ok(RevisionChange::AddObjective {
            objective: Box::new(objective),
        }),
        Ok(_) => Err(errors),
        Err(problems) => {
            // A problem of the phases the lines could not show is already listed.
            let unreadable_lines = errors.iter().any(|e| e.field == field("phases"));
            for p in problems {
                let (name, message) = new_objective_field(&p.field, &p.message);
                if unreadable_lines && p.field.trim_start_matches('.') == "phases" {
                    continue;
                }
                errors.push(FieldError::new(field(name), message));
            }
            Err(errors)
        }
    }
}

/// The form field of a new objective's problem at `path` (relative to the
/// objective: `letter`, `phases[1].weight`), and its message (naming the line
/// of a phase).
fn new_objective_field(path: &str, message: &str) -> (&'static str, String) {
    let path = path.trim_start_matches('.');
    let path = path.strip_prefix("objective.").unwrap_or(path);
    if let Some(rest) = path.strip_prefix("phases[") {
        if let Some((n, _)) = rest.split_once(']') {
            if let Ok(n) = n.parse::<usize>() {
                return ("phases", format!("riga {}: {message}", n + 1));
            }
        }
    }
    let name = match path.split(['.', '[']).next().unwrap_or("") {
        "unit" => "unit",
        "letter" => "letter",
        "manager" => "manager",
        "title" => "title",
        "final_deadline" => "final_deadline",
        "strategic_purpose" => "purpose",
        "expected_result" => "expected",
        "phases" => "phases",
        _ => "letter",
    };
    (name, message.to_string())
}

/// Row `i` as an indicator's new target (empty: no numeric target).
fn indicator_target(
    form: &FormData,
    i: usize,
    objective: String,
) -> Result<RevisionChange, FieldError> {
    let indicator = form.get(&format!("indicator_{i}"));
    if indicator.is_empty() {
        return Err(FieldError::new(
            format!("indicator_{i}"),
            "indica l'indicatore (il suo identificativo)",
        ));
    }
    let target_hundredths = match form.get(&format!("target_{i}")) {
        t if t.is_empty() => None,
        _ => Some(percent(form, &format!("target_{i}"))?),
    };
    Ok(RevisionChange::IndicatorTarget {
        objective,
        indicator,
        target_hundredths,
    })
}

/// Weights typed as `1=20; 2=30,5; 3=49,5`.
fn parse_weights(text: &str, field: &str) -> Result<BTreeMap<u32, Hundredths>, FieldError> {
    let mut weights = BTreeMap::new();
    for part in text
        .split([';', '\n'])
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        let bad = || {
            FieldError::new(
                field,
                format!("«{part}» non è nella forma fase=peso (per esempio 2=35)"),
            )
        };
        let (n, w) = part.split_once('=').ok_or_else(bad)?;
        let n: u32 = n
            .trim()
            .trim_start_matches("fase")
            .trim()
            .parse()
            .map_err(|_| bad())?;
        let w = Hundredths::parse(&w.trim().replace(',', "."))
            .map_err(|m| FieldError::new(field, format!("peso della fase {n}: {m}")))?;
        weights.insert(n, w);
    }
    if weights.is_empty() {
        return Err(FieldError::new(
            field,
            "indica almeno un peso (per esempio 2=35; 3=35)",
        ));
    }
    Ok(weights)
}

/// The request a form describes, or the problems of its fields (named as the
/// form names them: `kind_0`, `new_deadline_1`…).
fn request_of(
    form: &FormData,
    rows: usize,
    year: i32,
    codes: &BTreeSet<String>,
) -> Result<RevisionRequest, Vec<FieldError>> {
    let mut errors = Vec::new();
    let act_date = match form.get("act_date") {
        t if t.is_empty() => None,
        t => parse_date("act_date", &t).map_err(|e| errors.push(e)).ok(),
    };
    let mut changes = Vec::new();
    for i in 0..rows {
        let kind = form.get(&format!("kind_{i}"));
        if kind.is_empty() {
            continue;
        }
        if kind == "add_objective" {
            match add_objective(form, i, year, codes) {
                Ok(change) => changes.push(change),
                Err(mut problems) => errors.append(&mut problems),
            }
            continue;
        }
        let objective = form.get(&format!("objective_{i}"));
        if objective.is_empty() {
            errors.push(FieldError::new(
                format!("objective_{i}"),
                "scegli l'obiettivo",
            ));
            continue;
        }
        let phase_text = form.get(&format!("phase_{i}"));
        let phase = match phase_text.as_str() {
            "" => None,
            t => match t.parse::<u32>() {
                Ok(n) => Some(n),
                Err(_) => {
                    errors.push(FieldError::new(
                        format!("phase_{i}"),
                        "il numero della fase è un intero",
                    ));
                    continue;
                }
            },
        };
        let change = match kind.as_str() {
            "deadline" => parse_date(
                &format!("new_deadline_{i}"),
                &form.get(&format!("new_deadline_{i}")),
            )
            .map(|new_deadline| RevisionChange::Deadline {
                objective,
                phase,
                new_deadline,
            }),
            "weights" => parse_weights(&form.get(&format!("weights_{i}")), &format!("weights_{i}"))
                .map(|weights_hundredths| RevisionChange::Weights {
                    objective,
                    weights_hundredths,
                }),
            "withdraw_phase" => phase
                .map(|phase| RevisionChange::WithdrawPhase { objective, phase })
                .ok_or_else(|| {
                    FieldError::new(format!("phase_{i}"), "indica la fase da stralciare")
                }),
            "withdraw_objective" => Ok(RevisionChange::WithdrawObjective { objective }),
            "add_phase" => add_phase(form, i, objective, phase),
            "manager" => text_of(form, i, "indica il nuovo responsabile")
                .map(|manager| RevisionChange::Manager { objective, manager }),
            "title" => text_of(form, i, "indica il nuovo titolo")
                .map(|title| RevisionChange::Title { objective, title }),
            "phase_description" => match phase {
                None => Err(FieldError::new(
                    format!("phase_{i}"),
                    "indica la fase da descrivere",
                )),
                Some(phase) => text_of(form, i, "indica la nuova descrizione").map(|description| {
                    RevisionChange::PhaseDescription {
                        objective,
                        phase,
                        description,
                    }
                }),
            },
            "indicator_target" => indicator_target(form, i, objective),
            _ => Err(FieldError::new(
                format!("kind_{i}"),
                "tipo di modifica sconosciuto",
            )),
        };
        match change {
            Ok(c) => changes.push(c),
            Err(e) => errors.push(e),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(RevisionRequest {
        act: form.raw("act"),
        act_date,
        reason: form.raw("reason"),
        changes,
    })
}

/// Where a problem from the decide function goes on the form: `changes[2].x`
/// is row 2's field `x`; indices count only the rows that hold a change.
fn form_field(field: &str, filled: &[usize], form: &FormData) -> (String, Option<String>) {
    if let Some(rest) = field.strip_prefix("changes[") {
        if let Some((n, tail)) = rest.split_once(']') {
            if let Ok(n) = n.parse::<usize>() {
                let row = filled.get(n).copied().unwrap_or(n);
                if form.get(&format!("kind_{row}")) == "add_objective" {
                    let (name, message) = new_objective_field(tail, "");
                    let line = message.trim_end_matches(": ").to_string();
                    return (format!("{name}_{row}"), (!line.is_empty()).then_some(line));
                }
                let name = tail
                    .trim_start_matches('.')
                    .split(['.', '['])
                    .next()
                    .unwrap_or("");
                let name = match name {
                    "" | "objective" => "objective",
                    "phase" => "phase",
                    "new_deadline" => "new_deadline",
                    "weights" | "weights_hundredths" => "weights",
                    "manager" | "title" | "description" => "text",
                    "weight_hundredths" => "weight",
                    "deadline" => "new_deadline",
                    "indicator" => "indicator",
                    "target_hundredths" | "target" => "target",
                    other => other,
                };
                return (format!("{name}_{row}"), None);
            }
        }
    }
    (field.to_string(), None)
}

/// `POST /piani/{year}/rimodulazioni`: `azione` is `anteprima` (preview),
/// `riga` (one more row) or `registra` (record).
pub async fn submit(
    State(state): State<AppState>,
    SignedIn(viewer): SignedIn,
    Path(year): Path<String>,
    form: FormData,
) -> Result<Response, PageError> {
    viewer.check_csrf(&form)?;
    let year = year_of(&year)?;
    if viewer.principal.role != Role::Admin {
        return Err(PageError::forbidden(
            "solo l'ufficio Programmazione e Controllo registra le rimodulazioni",
        ));
    }
    let app = state.app.clone();
    let mut rows: usize = form
        .get("rows")
        .parse()
        .unwrap_or(EMPTY_ROWS)
        .clamp(1, MAX_ROWS);
    let action = form.get("azione");
    if action == "riga" {
        rows = (rows + 1).min(MAX_ROWS);
    }
    let mut p = page(&app, &viewer, year)?;
    p.act = form.raw("act");
    p.act_date = form.get("act_date");
    p.reason = form.raw("reason");
    p.rows = (0..rows).map(|i| ChangeRow::of_form(&form, i)).collect();
    if action == "riga" {
        return render(StatusCode::OK, &p);
    }
    let filled: Vec<usize> = (0..rows)
        .filter(|i| !form.get(&format!("kind_{i}")).is_empty())
        .collect();
    let codes: BTreeSet<String> = p.units.iter().map(|(code, _)| code.clone()).collect();
    let outcome: Result<Option<String>, AppError> = match request_of(&form, rows, year, &codes) {
        Err(errors) => Err(AppError::Invalid(errors)),
        Ok(request) if action == "registra" => app
            .revise(year, &request, &viewer.principal, None)
            .await
            .map(|w| w.events.first().and_then(|e| e.correlation.clone())),
        Ok(request) => {
            let principal = viewer.principal.clone();
            let a = app.clone();
            match tokio::task::spawn_blocking(move || {
                a.preview_revision(year, &request, &principal)
            })
            .await
            {
                Ok(Ok(preview)) => {
                    p.preview = Some(preview.touched.iter().map(compare).collect());
                    p.preview_flags = preview
                        .flags
                        .iter()
                        .map(|f| {
                            let (kind, objective, phase, _, message) = flag_line(f);
                            FlagRow {
                                kind,
                                objective,
                                phase,
                                message,
                            }
                        })
                        .collect();
                    Ok(None)
                }
                Ok(Err(e)) => Err(e),
                Err(e) => Err(AppError::Internal(e.to_string())),
            }
        }
    };
    match outcome {
        Ok(Some(id)) => {
            Ok(Redirect::to(&format!("/piani/{year}/rimodulazioni/{id}")).into_response())
        }
        Ok(None) => render(StatusCode::OK, &p),
        Err(e) => {
            let refusal = PageError::from(&e);
            if refusal.status == StatusCode::FORBIDDEN {
                return Err(refusal);
            }
            match &e {
                AppError::Invalid(errors) => {
                    for err in errors {
                        let (field, line) = form_field(&err.field, &filled, &form);
                        let message = match line {
                            Some(line) => format!("{line}: {}", err.message),
                            None => err.message.clone(),
                        };
                        let known = ["act", "act_date", "reason"].contains(&field.as_str())
                            || field.contains('_')
                                && field
                                    .rsplit_once('_')
                                    .is_some_and(|(_, n)| n.parse::<usize>().is_ok());
                        if known {
                            p.errors
                                .entry(field)
                                .and_modify(|m| {
                                    m.push_str("; ");
                                    m.push_str(&message)
                                })
                                .or_insert(message);
                        } else {
                            p.general.push(message);
                        }
                    }
                }
                _ => p.general.push(refusal.message.clone()),
            }
            render(refusal.status, &p)
        }
    }
}

#[derive(Template)]
#[template(path = "revision.html", config = "src/web/templates/askama.toml")]
struct ReplayPage {
    chrome: Chrome,
    year: i32,
    act: String,
    in_force_from: String,
    reason: String,
    actor: String,
    recorded_at: String,
    at: String,
    at_iso: String,
    id: String,
    changes: Vec<String>,
    compared: Vec<Compared>,
}

fn describe(change: &RevisionChange) -> String {
    match change {
        RevisionChange::Deadline {
            objective,
            phase: Some(p),
            new_deadline,
        } => {
            format!(
                "{objective}, fase {p}: nuova scadenza {}",
                view::date(*new_deadline)
            )
        }
        RevisionChange::Deadline {
            objective,
            phase: None,
            new_deadline,
        } => {
            format!(
                "{objective}: nuova scadenza finale {}",
                view::date(*new_deadline)
            )
        }
        RevisionChange::Weights {
            objective,
            weights_hundredths,
        } => format!(
            "{objective}: nuovi pesi {}",
            weights_hundredths
                .iter()
                .map(|(n, w)| format!("fase {n} {}", italian::pct(*w)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        RevisionChange::AddPhase { objective, phase } => {
            format!("{objective}: aggiunta la fase {}", phase.number)
        }
        RevisionChange::WithdrawPhase { objective, phase } => {
            format!("{objective}: stralciata la fase {phase}")
        }
        RevisionChange::AddObjective { objective } => {
            format!("aggiunto l'obiettivo {}", objective.key())
        }
        RevisionChange::WithdrawObjective { objective } => {
            format!("stralciato l'obiettivo {objective}")
        }
        RevisionChange::Manager { objective, manager } => {
            format!("{objective}: nuovo responsabile {manager}")
        }
        RevisionChange::Title { objective, title } => {
            format!("{objective}: nuovo titolo «{title}»")
        }
        RevisionChange::PhaseDescription {
            objective,
            phase,
            description,
        } => format!("{objective}, fase {phase}: nuova descrizione «{description}»"),
        RevisionChange::IndicatorTarget {
            objective,
            indicator,
            target_hundredths,
        } => format!(
            "{objective}, indicatore «{indicator}»: valore atteso {}",
            target_hundredths.map_or_else(|| "nessuno".to_string(), italian::pct)
        ),
        RevisionChange::AddIndicator {
            objective,
            indicator,
        } => format!("{objective}: aggiunto l'indicatore «{}»", indicator.id),
        RevisionChange::WithdrawIndicator {
            objective,
            indicator,
        } => format!("{objective}: stralciato l'indicatore «{indicator}»"),
    }
}

/// `GET /piani/{year}/rimodulazioni/{id}`: the replay, before and after side by
/// side, at `?at=` (default today).
pub async fn replay(
    State(state): State<AppState>,
    SignedIn(viewer): SignedIn,
    Path((year, id)): Path<(String, String)>,
    Query(q): Query<AtQuery>,
) -> Result<Response, PageError> {
    let year = year_of(&year)?;
    let id: Uuid = id
        .parse()
        .map_err(|_| PageError::not_found(format!("non esiste la rimodulazione {id}")))?;
    let at = match q.at.as_deref().filter(|t| !t.is_empty()) {
        Some(t) => parse_date("at", t).map_err(|e| PageError::bad_request(e.message))?,
        None => state.app.today(),
    };
    let app = state.app.clone();
    let replay = blocking(move || {
        let events = app.year_events(year, Until::End)?;
        Ok(traguardo_projections::revision::replay(&events, id, at)?)
    })
    .await?
    .ok_or_else(|| {
        PageError::not_found(format!("non esiste la rimodulazione {id} nel piano {year}"))
    })?;
    let r = &replay.revision;
    let page = ReplayPage {
        chrome: Chrome::new(&format!("Rimodulazione {}", r.act), &viewer, &state.app, ""),
        year,
        act: r.act.clone(),
        in_force_from: view::date(r.in_force_from),
        reason: r.reason.clone(),
        actor: r.actor.clone(),
        recorded_at: italian::timestamp(r.recorded_at),
        at: view::date(at),
        at_iso: at.to_string(),
        id: id.to_string(),
        changes: r.changes.iter().map(describe).collect(),
        compared: replay.touched.iter().map(compare).collect(),
    };
    render(StatusCode::OK, &page)
}
