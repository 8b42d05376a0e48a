//! `POST/GET /api/v1/users`, `DELETE /api/v1/users/{username}` (admin): web
//! accounts over the API, through the same App methods as the pages.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use traguardo_events::model::Role;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::accounts::NewUser;
use crate::http::auth::Auth;
use crate::http::problem::{JsonBody, Problem, RawBody};
use crate::http::AppState;

/// The routes of this area (under `/api/v1`).
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_users, create_user))
        .routes(routes!(delete_user))
}

/// `POST /users`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"username": "specchia", "password": "una-password-lunga", "actor": "Dott. Stefano Specchia",
                          "role": "manager", "units": ["2250"]}))]
pub struct UserBody {
    /// Username: the account's `actor_id`.
    pub username: String,
    /// Password (at least 10 characters); only its Argon2id hash is kept.
    pub password: String,
    /// Display name written on events.
    pub actor: String,
    /// admin, manager, validator or auditor.
    pub role: Role,
    /// For managers: their units.
    #[serde(default)]
    pub units: Vec<String>,
}

/// An account (never its password or hash).
#[derive(Debug, Serialize, ToSchema)]
pub struct UserAnswer {
    /// Username.
    pub username: String,
    /// The `actor_id` (the username).
    pub actor_id: String,
    /// Display name.
    pub actor: String,
    /// Role.
    pub role: Role,
    /// Units.
    pub units: Vec<String>,
}

impl From<&traguardo_projections::UserAccount> for UserAnswer {
    fn from(u: &traguardo_projections::UserAccount) -> Self {
        UserAnswer {
            username: u.username.clone(),
            actor_id: u.username.clone(),
            actor: u.actor.clone(),
            role: u.role,
            units: u.units.clone(),
        }
    }
}

/// Creates a web account (admin).
#[utoipa::path(post, path = "/users", tag = "administration", request_body = UserBody,
    responses((status = 201, body = UserAnswer), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 422, body = Problem)))]
async fn create_user(
    State(state): State<AppState>,
    auth: Auth,
    raw: RawBody,
) -> Result<Response, Problem> {
    // Authorized before the body is read.
    auth.require(&[Role::Admin])?;
    let body = JsonBody::<UserBody>::parse(raw)?;
    let UserBody {
        username,
        password,
        actor,
        role,
        units,
    } = body.value;
    let user = state
        .app
        .create_user(
            NewUser {
                username,
                password,
                actor,
                role,
                units,
            },
            &auth.0,
        )
        .await?;
    Ok(crate::http::created(
        UserAnswer::from(&user),
        false,
        Some(format!("/api/v1/users/{}", user.username)),
    ))
}

/// The web accounts (admin).
#[utoipa::path(get, path = "/users", tag = "administration",
    responses((status = 200, body = Vec<UserAnswer>), (status = 401, body = Problem), (status = 403, body = Problem)))]
async fn list_users(State(state): State<AppState>, auth: Auth) -> Result<Response, Problem> {
    auth.require(&[Role::Admin])?;
    let users: Vec<UserAnswer> = state
        .app
        .read(|r| r.users().map(UserAnswer::from).collect());
    Ok(Json(users).into_response())
}

/// Deletes a web account (admin); its sessions end.
#[utoipa::path(delete, path = "/users/{username}", tag = "administration", params(("username" = String, Path)),
    responses((status = 204), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn delete_user(
    State(state): State<AppState>,
    auth: Auth,
    Path(username): Path<String>,
) -> Result<Response, Problem> {
    auth.require(&[Role::Admin])?;
    state.app.delete_user(&username, &auth.0).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
