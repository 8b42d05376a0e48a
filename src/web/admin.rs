//! The control office's page: load a plan (a JSON document, pasted or sent as a
//! file, or a workbook of `traguardo plan-template`), download the workbook
//! template, manage web accounts and bearer tokens. Every action goes through
//! the same functions as the API and the command line.

use askama::Template;
use axum::extract::{FromRequest, Multipart, Path, Query, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use traguardo_events::model::Role;
use traguardo_projections::italian;
use uuid::Uuid;

use super::accounts::NewUser;
use super::pages::blocking;
use super::session::{SignedIn, Viewer};
use super::{render, Chrome, FormData, FormState, PageError};
use crate::error::{AppError, FieldError};
use crate::http::AppState;
use crate::App;

struct UserLine {
    username: String,
    actor: String,
    role: String,
    units: String,
}

struct TokenLine {
    id: String,
    actor: String,
    role: String,
    units: String,
}

#[derive(Template)]
#[template(path = "admin.html", config = "src/web/templates/askama.toml")]
struct AdminPage {
    chrome: Chrome,
    csrf: String,
    users: Vec<UserLine>,
    tokens: Vec<TokenLine>,
    form: FormState,
    notice: String,
    new_token: String,
    /// The year the template form proposes.
    template_year: i32,
    /// The name of the file sent with a refused plan, if one was.
    file_name: String,
}

impl AdminPage {
    /// Every problem of `field` of `form`, one by one (a workbook's name their
    /// sheet and cell).
    fn list(&self, form: &str, field: &str) -> Vec<String> {
        if !self.form.is(form) {
            return Vec::new();
        }
        self.form
            .errors
            .iter()
            .filter(|e| e.field == field)
            .map(|e| e.message.clone())
            .collect()
    }

    fn v(&self, form: &str, field: &str) -> String {
        self.form.value(form, field)
    }

    fn e(&self, form: &str, field: &str) -> String {
        self.form.error(form, field)
    }

    fn g(&self, form: &str) -> String {
        let fields: &[&str] = match form {
            "account" => &["username", "password", "actor", "role", "units"],
            "token" => &["actor", "role", "units"],
            "piano" => &["plan", "file"],
            _ => &[],
        };
        self.form.general(form, fields)
    }
}

fn admin_only(viewer: &Viewer) -> Result<(), PageError> {
    if viewer.principal.role == Role::Admin {
        Ok(())
    } else {
        Err(PageError::forbidden(
            "l'amministrazione è riservata all'ufficio Programmazione e Controllo",
        ))
    }
}

fn admin_page(
    app: &App,
    viewer: &Viewer,
    form: FormState,
    notice: String,
    new_token: String,
) -> AdminPage {
    let (users, tokens) = app.read(|r| {
        let users = r
            .users()
            .map(|u| UserLine {
                username: u.username.clone(),
                actor: u.actor.clone(),
                role: italian::role(u.role).to_string(),
                units: u.units.join(", "),
            })
            .collect();
        let mut tokens: Vec<TokenLine> = r
            .tokens()
            .map(|t| TokenLine {
                id: t.token_id.to_string(),
                actor: t.actor.clone(),
                role: italian::role(t.role).to_string(),
                units: t.units.join(", "),
            })
            .collect();
        tokens.sort_by(|a, b| a.id.cmp(&b.id));
        (users, tokens)
    });
    AdminPage {
        chrome: Chrome::new("Amministrazione", viewer, app, "/amministrazione"),
        csrf: viewer.csrf.clone(),
        users,
        tokens,
        form,
        notice,
        new_token,
        template_year: chrono::Datelike::year(&app.today()) + 1,
        file_name: String::new(),
    }
}

/// `GET /amministrazione`.
pub async fn page(
    State(state): State<AppState>,
    SignedIn(viewer): SignedIn,
) -> Result<Response, PageError> {
    admin_only(&viewer)?;
    render(
        StatusCode::OK,
        &admin_page(
            &state.app,
            &viewer,
            FormState::default(),
            String::new(),
            String::new(),
        ),
    )
}

fn refused(
    app: &App,
    viewer: &Viewer,
    form: &str,
    data: &FormData,
    e: &AppError,
) -> Result<Response, PageError> {
    let status = PageError::from(e).status;
    render(
        status,
        &admin_page(
            app,
            viewer,
            FormState::refused(form, data, e),
            String::new(),
            String::new(),
        ),
    )
}

/// The plan-load form as sent: its text fields, and the file chosen, if any
/// (name and bytes).
struct PlanForm {
    fields: FormData,
    file: Option<(String, Vec<u8>)>,
}

impl PlanForm {
    /// Reads the form: `multipart/form-data` (a file, and the text fields) as
    /// the page sends it, or a urlencoded form (the text alone). The body is
    /// limited as every request's (1 MiB, as the API's).
    async fn read(request: Request, state: &AppState) -> Result<Self, PageError> {
        let multipart = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim_start().starts_with("multipart/form-data"));
        if !multipart {
            return Ok(PlanForm {
                fields: FormData::from_request(request, state).await?,
                file: None,
            });
        }
        let unreadable = |e: axum::extract::multipart::MultipartError| {
            let status = e.status();
            if status == StatusCode::PAYLOAD_TOO_LARGE {
                PageError {
                    status,
                    message: format!(
                        "il file supera il limite di {} MiB: un piano sta in molto meno",
                        crate::http::BODY_LIMIT / (1024 * 1024)
                    ),
                }
            } else {
                PageError::bad_request("il modulo inviato non si legge")
            }
        };
        let mut parts = Multipart::from_request(request, state)
            .await
            .map_err(|_| PageError::bad_request("il modulo inviato non si legge"))?;
        let mut form = PlanForm {
            fields: FormData::default(),
            file: None,
        };
        while let Some(field) = parts.next_field().await.map_err(unreadable)? {
            let name = field.name().unwrap_or_default().to_string();
            if name == "file" {
                let file_name = field.file_name().unwrap_or_default().to_string();
                let bytes = field.bytes().await.map_err(unreadable)?;
                if !bytes.is_empty() || !file_name.is_empty() {
                    form.file = Some((file_name, bytes.to_vec()));
                }
            } else {
                let text = field.text().await.map_err(unreadable)?;
                form.fields.0.push((name, text));
            }
        }
        Ok(form)
    }
}

/// `POST /amministrazione/piani`: a file `file` (a workbook or a JSON
/// document) or the text `plan` (a JSON document). Every problem is listed
/// next to its field, a workbook's with its sheet and cell, and nothing is
/// loaded unless there are none.
pub async fn load_plan(
    State(state): State<AppState>,
    SignedIn(viewer): SignedIn,
    request: Request,
) -> Result<Response, PageError> {
    let PlanForm { fields: form, file } = PlanForm::read(request, &state).await?;
    viewer.check_csrf(&form)?;
    admin_only(&viewer)?;
    let text = form.raw("plan");
    let file = file.filter(|(name, bytes)| !bytes.is_empty() || !name.is_empty());
    let file_name = file.as_ref().map(|(n, _)| n.clone()).unwrap_or_default();
    // The problems of a file go next to the file; of the text, next to the text.
    let (field, parsed) = match file {
        Some((_, bytes)) if bytes.is_empty() => (
            "file",
            Err(vec![FieldError::new("$", "il file scelto è vuoto")]),
        ),
        Some((name, bytes)) => (
            "file",
            blocking(move || {
                Ok(crate::plan_cli::parse_plan(
                    std::path::Path::new(&name),
                    &bytes,
                ))
            })
            .await?,
        ),
        None if text.trim().is_empty() => (
            "file",
            Err(vec![FieldError::new(
                "$",
                "scegli un file (xlsx o JSON) oppure incolla il documento del piano",
            )]),
        ),
        None => ("plan", crate::plan_document::parse(&text)),
    };
    let result = match parsed {
        Err(errors) => Err(AppError::Invalid(
            errors
                .into_iter()
                .map(|e| {
                    let message = if e.field == "$" || e.field.is_empty() {
                        e.message
                    } else {
                        e.to_string()
                    };
                    FieldError::new(field, message)
                })
                .collect(),
        )),
        Ok(plan) => match state.app.import_plan(&plan, &viewer.principal).await {
            Err(AppError::Conflict(_)) => Err(AppError::Invalid(vec![FieldError::new(
                field,
                format!(
                    "il piano del {} è già caricato: nulla è stato caricato",
                    plan.year
                ),
            )])),
            other => other.map(|_| plan.year),
        },
    };
    match result {
        Ok(year) => Ok(Redirect::to(&format!("/piani/{year}")).into_response()),
        Err(e) => {
            let status = PageError::from(&e).status;
            let mut page = admin_page(
                &state.app,
                &viewer,
                FormState::refused("piano", &form, &e),
                String::new(),
                String::new(),
            );
            page.file_name = file_name;
            render(status, &page)
        }
    }
}

/// `?anno=` of the template download.
#[derive(Debug, Deserialize)]
pub struct TemplateQuery {
    anno: Option<String>,
}

/// `GET /amministrazione/modello-piano.xlsx?anno=YYYY`: the workbook template of
/// `traguardo plan-template` (admin), for next year unless `anno` says which.
pub async fn plan_template(
    State(state): State<AppState>,
    SignedIn(viewer): SignedIn,
    Query(q): Query<TemplateQuery>,
) -> Result<Response, PageError> {
    admin_only(&viewer)?;
    let year = match q.anno.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        None => chrono::Datelike::year(&state.app.today()) + 1,
        Some(text) => text
            .parse::<i32>()
            .ok()
            .filter(|y| (2000..=2100).contains(y))
            .ok_or_else(|| {
                PageError::bad_request(format!("«{text}» non è un anno tra il 2000 e il 2100"))
            })?,
    };
    let bytes = blocking(move || {
        crate::plan_sheet::template(year).map_err(|e| AppError::Internal(e.to_string()))
    })
    .await?;
    let mut response = bytes.into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(crate::http::layers::XLSX),
    );
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename=\"modello-piano-{year}.xlsx\""
    )) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(response)
}

/// `POST /amministrazione/account`: `username`, `password`, `actor`, `role`,
/// `units` (comma-separated).
pub async fn create_user(
    State(state): State<AppState>,
    SignedIn(viewer): SignedIn,
    form: FormData,
) -> Result<Response, PageError> {
    viewer.check_csrf(&form)?;
    admin_only(&viewer)?;
    let role = form.get("role").parse::<Role>();
    let result = match role {
        Err(_) => Err(AppError::invalid("role", "scegli il ruolo")),
        Ok(role) => {
            state
                .app
                .create_user(
                    NewUser {
                        username: form.get("username"),
                        password: form.raw("password"),
                        actor: form.get("actor"),
                        role,
                        units: form.get("units").split(',').map(str::to_string).collect(),
                    },
                    &viewer.principal,
                )
                .await
        }
    };
    match result {
        Ok(user) => render(
            StatusCode::CREATED,
            &admin_page(
                &state.app,
                &viewer,
                FormState::default(),
                format!("Account {} creato.", user.username),
                String::new(),
            ),
        ),
        Err(e) => {
            // Never send the password back.
            let mut data = form.clone();
            data.0.retain(|(k, _)| k != "password");
            refused(&state.app, &viewer, "account", &data, &e)
        }
    }
}

/// `POST /amministrazione/account/{username}/elimina`.
pub async fn delete_user(
    State(state): State<AppState>,
    SignedIn(viewer): SignedIn,
    Path(username): Path<String>,
    form: FormData,
) -> Result<Response, PageError> {
    viewer.check_csrf(&form)?;
    admin_only(&viewer)?;
    if username == viewer.username {
        return Err(PageError::bad_request(
            "non puoi eliminare il tuo stesso account",
        ));
    }
    state.app.delete_user(&username, &viewer.principal).await?;
    Ok(Redirect::to("/amministrazione").into_response())
}

/// `POST /amministrazione/token`: `actor`, `role`, `units`.
pub async fn create_token(
    State(state): State<AppState>,
    SignedIn(viewer): SignedIn,
    form: FormData,
) -> Result<Response, PageError> {
    viewer.check_csrf(&form)?;
    admin_only(&viewer)?;
    let result = match form.get("role").parse::<Role>() {
        Err(_) => Err(AppError::invalid("role", "scegli il ruolo")),
        Ok(role) => {
            state
                .app
                .issue_token(
                    &form.get("actor"),
                    role,
                    form.get("units").split(',').map(str::to_string).collect(),
                    &viewer.principal,
                )
                .await
        }
    };
    match result {
        Ok((token, info)) => render(
            StatusCode::CREATED,
            &admin_page(
                &state.app,
                &viewer,
                FormState::default(),
                format!(
                    "Token creato per {}: copialo ora, non sarà più mostrato.",
                    info.actor
                ),
                token,
            ),
        ),
        Err(e) => refused(&state.app, &viewer, "token", &form, &e),
    }
}

/// `POST /amministrazione/token/{id}/revoca`.
pub async fn revoke_token(
    State(state): State<AppState>,
    SignedIn(viewer): SignedIn,
    Path(id): Path<String>,
    form: FormData,
) -> Result<Response, PageError> {
    viewer.check_csrf(&form)?;
    admin_only(&viewer)?;
    let id: Uuid = id
        .parse()
        .map_err(|_| PageError::not_found("token inesistente"))?;
    state.app.revoke_token(id, &viewer.principal).await?;
    Ok(Redirect::to("/amministrazione").into_response())
}
