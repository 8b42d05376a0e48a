//! The web application of DESIGN.md §8: server-rendered Italian pages (askama),
//! forms that work without JavaScript, htmx and a same-origin event stream to
//! keep pages in step with the log, Bootstrap Italia served by the binary.
//!
//! - [`session`]: login, logout, session cookies, CSRF tokens, the viewer;
//! - [`accounts`]: web accounts (events of `org`), Argon2id, login throttling;
//! - [`pages`]: home, plan, objective and their forms, flags, report, integrity;
//! - [`history`]: audit trails and time travel; [`revisions`]: revisions with
//!   their preview and replay; [`admin`]: plans, accounts and tokens;
//! - [`live`]: the event stream for pages; [`assets`]: embedded assets;
//! - [`api`]: `/api/v1/users`; [`demo`]: the demo year;
//!   [`cli`]: `traguardo user …` (the benchmark is `traguardo-bench web`).
//!
//! Every write goes through [`crate::App`] and the decide functions, as the API's do.

pub mod accounts;
pub mod admin;
pub mod api;
pub mod assets;
pub mod cli;
pub mod demo;
pub mod history;
pub mod live;
pub mod pages;
pub mod revisions;
pub mod session;
mod view;

use std::collections::HashMap;
use std::sync::Arc;

use askama::Template;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};

use crate::error::{AppError, FieldError};
use crate::http::AppState;

pub use view::Chrome;

/// What the pages of one process share besides [`AppState`]: failed logins
/// (sessions are in the database, shared by every process).
#[derive(Default)]
pub struct Web {
    /// Failed logins.
    pub throttle: accounts::Throttle,
}

/// The pages' routes, to merge into the server's router.
pub fn router() -> Router<AppState> {
    let pages = Router::new()
        .route("/", get(pages::home))
        .route("/accesso", get(session::login_page).post(session::login))
        .route("/esci", post(session::logout))
        .route("/piani/{year}", get(pages::plan))
        .route("/piani/{year}/segnalazioni", get(pages::flags))
        .route(
            "/piani/{year}/segnalazioni/{id}/presa-visione",
            post(pages::acknowledge_flag),
        )
        .route("/piani/{year}/relazione", get(pages::report))
        .route("/piani/{year}/relazione/{file}", get(pages::report_file))
        .route("/piani/{year}/storia", get(history::plan_history))
        .route(
            "/piani/{year}/rimodulazioni",
            get(revisions::list).post(revisions::submit),
        )
        .route("/piani/{year}/rimodulazioni/{id}", get(revisions::replay))
        .route("/obiettivi/{key}", get(pages::objective))
        .route("/obiettivi/{key}/storia", get(history::objective_history))
        .route(
            "/obiettivi/{key}/fasi/{n}/{action}",
            post(pages::phase_action),
        )
        .route("/obiettivi/{key}/validazioni", post(pages::validate))
        .route(
            "/obiettivi/{key}/indicatori/{id}/misurazioni",
            post(pages::measure),
        )
        .route("/validazioni", get(pages::queue))
        .route("/integrita", get(pages::integrity).post(pages::verify))
        .route("/integrita/export.ndjson", get(pages::export))
        .route("/amministrazione", get(admin::page))
        .route("/amministrazione/piani", post(admin::load_plan))
        .route(
            "/amministrazione/modello-piano.xlsx",
            get(admin::plan_template),
        )
        .route("/amministrazione/account", post(admin::create_user))
        .route(
            "/amministrazione/account/{username}/elimina",
            post(admin::delete_user),
        )
        .route("/amministrazione/token", post(admin::create_token))
        .route(
            "/amministrazione/token/{id}/revoca",
            post(admin::revoke_token),
        )
        .route("/eventi", get(live::stream))
        .layer(tower_http::compression::CompressionLayer::new().gzip(true))
        .route("/static/{path}", get(assets::serve));
    pages.layer(Extension(Arc::new(Web::default())))
}

/// A page that cannot be shown: its status and an Italian sentence.
#[derive(Debug)]
pub struct PageError {
    /// HTTP status.
    pub status: StatusCode,
    /// What went wrong, in Italian.
    pub message: String,
}

impl PageError {
    /// 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        PageError {
            status: StatusCode::NOT_FOUND,
            message: message.into(),
        }
    }

    /// 403.
    pub fn forbidden(message: impl Into<String>) -> Self {
        PageError {
            status: StatusCode::FORBIDDEN,
            message: message.into(),
        }
    }

    /// 400.
    pub fn bad_request(message: impl Into<String>) -> Self {
        PageError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }
}

impl From<AppError> for PageError {
    fn from(e: AppError) -> Self {
        PageError::from(&e)
    }
}

impl From<&AppError> for PageError {
    fn from(e: &AppError) -> Self {
        use crate::commands::RefusalKind;
        let status = match e {
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::Invalid(_) | AppError::IdempotencyMismatch(_) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            AppError::PreconditionFailed { .. } => StatusCode::PRECONDITION_FAILED,
            AppError::Domain(d) => match d.kind() {
                RefusalKind::Forbidden => StatusCode::FORBIDDEN,
                RefusalKind::NotFound => StatusCode::NOT_FOUND,
                RefusalKind::Rule => StatusCode::CONFLICT,
                RefusalKind::Invalid => StatusCode::UNPROCESSABLE_ENTITY,
            },
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let message = match e {
            AppError::Invalid(errors) => errors
                .iter()
                .map(|f| f.message.clone())
                .collect::<Vec<_>>()
                .join("; "),
            AppError::Domain(d) => d.to_string(),
            AppError::NotFound(m) => m.clone(),
            AppError::Conflict(_) | AppError::PreconditionFailed { .. } => {
                "qualcun altro ha registrato qualcosa nel frattempo: ricarica la pagina e riprova"
                    .to_string()
            }
            other => {
                tracing::error!(error = %other, "page failed");
                "si è verificato un errore interno; riprova più tardi".to_string()
            }
        };
        PageError { status, message }
    }
}

impl From<askama::Error> for PageError {
    fn from(e: askama::Error) -> Self {
        tracing::error!(error = %e, "template failed");
        PageError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: "si è verificato un errore interno".into(),
        }
    }
}

#[derive(Template)]
#[template(path = "error.html", config = "src/web/templates/askama.toml")]
struct ErrorPage {
    chrome: Chrome,
    status: u16,
    message: String,
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let page = ErrorPage {
            chrome: Chrome::bare("Errore"),
            status: self.status.as_u16(),
            message: self.message,
        };
        match page.render() {
            Ok(html) => (self.status, Html(html)).into_response(),
            Err(_) => (self.status, "errore").into_response(),
        }
    }
}

/// Renders a template as a page with a status.
pub fn render(status: StatusCode, page: &impl Template) -> Result<Response, PageError> {
    Ok((status, Html(page.render()?)).into_response())
}

/// A submitted form: every `name=value` pair, in order (a name may repeat, as
/// checkboxes do).
#[derive(Debug, Default, Clone)]
pub struct FormData(pub Vec<(String, String)>);

impl FormData {
    /// The first value of `name`, trimmed; empty when absent.
    pub fn get(&self, name: &str) -> String {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_default()
    }

    /// The first value of `name` as typed (not trimmed).
    pub fn raw(&self, name: &str) -> String {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    }

    /// Every value of `name`.
    pub fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// The values as a map (first value of each name).
    pub fn values(&self) -> HashMap<String, String> {
        let mut map = HashMap::new();
        for (k, v) in &self.0 {
            map.entry(k.clone()).or_insert_with(|| v.clone());
        }
        map
    }
}

impl<S: Send + Sync> FromRequest<S> for FormData {
    type Rejection = PageError;

    async fn from_request(req: Request, state: &S) -> Result<Self, PageError> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|_| PageError::bad_request("il modulo inviato non si legge"))?;
        serde_urlencoded::from_bytes::<Vec<(String, String)>>(&bytes)
            .map(FormData)
            .map_err(|_| PageError::bad_request("il modulo inviato non si legge"))
    }
}

/// Errors of a form, by field name ("" for the form as a whole), and the values
/// typed, to show the form again as it was sent.
#[derive(Debug, Default, Clone)]
pub struct FormState {
    /// Which form (e.g. `3/completamento`).
    pub form: String,
    /// The values typed.
    pub values: HashMap<String, String>,
    /// Problems by field.
    pub errors: Vec<FieldError>,
}

impl FormState {
    /// The state of a refused form.
    pub fn refused(form: impl Into<String>, data: &FormData, error: &AppError) -> Self {
        let errors = match error {
            AppError::Invalid(errors) => errors.clone(),
            other => vec![FieldError::new("", PageError::from(other).message)],
        };
        FormState {
            form: form.into(),
            values: data.values(),
            errors,
        }
    }

    /// Whether this is the state of form `form`.
    pub fn is(&self, form: &str) -> bool {
        self.form == form
    }

    /// The value typed in `field` of `form`, or `default`.
    pub fn value_or(&self, form: &str, field: &str, default: &str) -> String {
        if self.form == form {
            self.values.get(field).cloned().unwrap_or_default()
        } else {
            default.to_string()
        }
    }

    /// The value typed in `field` of `form`.
    pub fn value(&self, form: &str, field: &str) -> String {
        self.value_or(form, field, "")
    }

    /// The message for `field` of `form`, or empty.
    pub fn error(&self, form: &str, field: &str) -> String {
        if self.form != form {
            return String::new();
        }
        self.errors
            .iter()
            .filter(|e| e.field == field || e.field.ends_with(&format!(".{field}")))
            .map(|e| e.message.clone())
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// Messages of `form` that belong to no field it shows.
    pub fn general(&self, form: &str, fields: &[&str]) -> String {
        if self.form != form {
            return String::new();
        }
        self.errors
            .iter()
            .filter(|e| {
                !fields
                    .iter()
                    .any(|f| e.field == *f || e.field.ends_with(&format!(".{f}")))
            })
            .map(|e| e.message.clone())
            .collect::<Vec<_>>()
            .join("; ")
    }
}
