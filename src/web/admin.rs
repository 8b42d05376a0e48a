//! The control office's page: load a plan (JSON), manage web accounts and
//! bearer tokens. Every action goes through the same App methods as the API.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use traguardo_events::model::Role;
use traguardo_projections::italian;
use uuid::Uuid;

use super::accounts::NewUser;
use super::session::{SignedIn, Viewer};
use super::{render, Chrome, FormData, FormState, PageError};
use crate::error::AppError;
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
}

impl AdminPage {
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
            "piano" => &["plan"],
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

/// `POST /amministrazione/piani`: `plan` holds a plan document (JSON).
pub async fn load_plan(
    State(state): State<AppState>,
    SignedIn(viewer): SignedIn,
    form: FormData,
) -> Result<Response, PageError> {
    viewer.check_csrf(&form)?;
    admin_only(&viewer)?;
    let text = form.raw("plan");
    let result = match crate::plan_document::parse(&text) {
        Err(errors) => Err(AppError::Invalid(
            errors
                .into_iter()
                .map(|e| crate::error::FieldError::new("plan", e.to_string()))
                .collect(),
        )),
        Ok(plan) => state
            .app
            .import_plan(&plan, &viewer.principal)
            .await
            .map(|_| plan.year),
    };
    match result {
        Ok(year) => Ok(Redirect::to(&format!("/piani/{year}")).into_response()),
        Err(e) => refused(&state.app, &viewer, "piano", &form, &e),
    }
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
