//! Bearer tokens (admin): issue, list, revoke. A token names a display `actor`
//! and a stable `actor_id`, expires (one year by default), and stops working at
//! once when revoked, in every process that follows the log.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use traguardo_events::model::Role;
use traguardo_projections::TokenInfo;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::auth::Auth;
use super::problem::{JsonBody, Problem, RawBody};
use super::{support, AppState};
use crate::app::NewToken;

/// The routes of this area.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_tokens, create_token))
        .routes(routes!(revoke_token))
}

/// `POST /tokens`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"actor": "Dott. Stefano Specchia", "actor_id": "specchia", "role": "manager", "units": ["2250"], "expires": "2023-06-30"}))]
pub struct TokenBody {
    /// Whose token it is (written on every event they cause).
    pub actor: String,
    /// Their stable identity (a username, a codice fiscale); without it, the
    /// display name normalised (NFKC, case-folded, invisible characters
    /// removed, whitespace collapsed).
    pub actor_id: Option<String>,
    /// admin, manager, validator or auditor.
    pub role: Role,
    /// For managers: the units they act for, each listed by a loaded plan.
    #[serde(default)]
    pub units: Vec<String>,
    /// When it stops working: an RFC 3339 time, or a date (the end of that day
    /// in Italy). Default one year from now; at most two years.
    pub expires: Option<String>,
}

/// A token as the registry holds it: never its secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenLine {
    /// Its id (revoke with `DELETE /tokens/{id}`).
    pub id: Uuid,
    /// Display name.
    pub actor: String,
    /// Stable identity.
    pub actor_id: String,
    /// Role.
    pub role: Role,
    /// Units.
    pub units: Vec<String>,
    /// Record time of its issue.
    pub created: DateTime<Utc>,
    /// When it stops working.
    pub expires: DateTime<Utc>,
    /// When it was revoked, or null.
    pub revoked: Option<DateTime<Utc>>,
}

impl From<&TokenInfo> for TokenLine {
    fn from(t: &TokenInfo) -> Self {
        TokenLine {
            id: t.token_id,
            actor: t.actor.clone(),
            actor_id: t.actor_id.clone(),
            role: t.role,
            units: t.units.clone(),
            created: t.issued,
            expires: t.expires,
            revoked: t.revoked,
        }
    }
}

/// A token, shown once.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenAnswer {
    /// Its id.
    pub id: Uuid,
    /// The secret: keep it, it is not shown again.
    pub token: String,
    /// Actor.
    pub actor: String,
    /// Stable identity.
    pub actor_id: String,
    /// Role.
    pub role: Role,
    /// Units.
    pub units: Vec<String>,
    /// When it stops working.
    pub expires: DateTime<Utc>,
}

/// Issues a bearer token (admin).
#[utoipa::path(post, path = "/tokens", tag = "administration", request_body = TokenBody,
    responses((status = 201, body = TokenAnswer), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 422, body = Problem)))]
async fn create_token(
    State(state): State<AppState>,
    auth: Auth,
    raw: RawBody,
) -> Result<Response, Problem> {
    // Authorized before the body is read (issue 13).
    auth.require(&[Role::Admin])?;
    let body = JsonBody::<TokenBody>::parse(raw)?;
    let TokenBody {
        actor,
        actor_id,
        role,
        units,
        expires,
    } = body.value;
    let expires = match expires.as_deref().filter(|e| !e.is_empty()) {
        None => None,
        Some(text) => Some(support::parse_timestamp("expires", text)?),
    };
    let request = NewToken {
        actor,
        actor_id,
        role,
        units,
        expires,
    };
    let (token, info) = state.app.issue(request, &auth.0).await?;
    Ok(support::created(
        TokenAnswer {
            id: info.token_id,
            token,
            actor: info.actor,
            actor_id: info.actor_id,
            role: info.role,
            units: info.units,
            expires: info.expires,
        },
        false,
        Some(format!("/api/v1/tokens/{}", info.token_id)),
    ))
}

/// Every token issued, revoked and expired ones too, oldest first (admin).
#[utoipa::path(get, path = "/tokens", tag = "administration",
    responses((status = 200, body = Vec<TokenLine>), (status = 401, body = Problem), (status = 403, body = Problem)))]
async fn list_tokens(State(state): State<AppState>, auth: Auth) -> Result<Response, Problem> {
    auth.require(&[Role::Admin])?;
    let mut lines: Vec<TokenLine> = state
        .app
        .read(|r| r.all_tokens().map(TokenLine::from).collect());
    // Ids are UUID v7: their order is the order of issue.
    lines.sort_by_key(|t| t.id);
    Ok(Json(lines).into_response())
}

/// Revokes a token (admin): from then on it answers 401, here and in every
/// process following the log.
#[utoipa::path(delete, path = "/tokens/{id}", tag = "administration",
    params(("id" = String, Path, description = "the token's id")),
    responses((status = 204), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 404, body = Problem, description = "no such token, or revoked already")))]
async fn revoke_token(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    auth.require(&[Role::Admin])?;
    let id: Uuid = id
        .parse()
        .map_err(|_| Problem::not_found(format!("non esiste il token {id}")))?;
    state.app.revoke_token(id, &auth.0).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
