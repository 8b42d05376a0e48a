//! Bearer-token authentication: the principal of a request comes from its token,
//! never from its body.

use axum::extract::FromRequestParts;
use axum::http::{header, request::Parts};
use traguardo_events::model::Role;

use super::problem::Problem;
use super::AppState;
use crate::commands::Principal;

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct Auth(pub Principal);

impl Auth {
    /// Refuses (403) a caller whose role is not one of `roles`.
    ///
    /// # Errors
    /// A 403 problem naming the roles allowed.
    pub fn require(&self, roles: &[Role]) -> Result<(), Problem> {
        if roles.contains(&self.0.role) {
            return Ok(());
        }
        let allowed: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
        Err(Problem::forbidden(format!(
            "this needs the role {}; {} is {}",
            allowed.join(" or "),
            self.0.name,
            self.0.role
        )))
    }
}

impl FromRequestParts<AppState> for Auth {
    type Rejection = Problem;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
            return Err(Problem::unauthorized("send Authorization: Bearer <token>"));
        };
        let token = value
            .to_str()
            .ok()
            .and_then(|v| {
                let (scheme, token) = v.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            })
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                Problem::unauthorized("the Authorization header must be Bearer <token>")
            })?;
        state
            .app
            .authenticate(token)
            .map(Auth)
            .ok_or_else(|| Problem::unauthorized("the token is not valid"))
    }
}
