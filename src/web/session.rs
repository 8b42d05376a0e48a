//! Sessions: `POST /accesso` checks a username and password and opens a session
//! named by a random cookie (HttpOnly, SameSite=Strict). Sessions are kept in the
//! database beside the log (the store's `web_sessions`, by the SHA-256 of the
//! cookie's secret, never the secret), so that every `serve` process on one
//! database knows them: no sticky sessions behind a load balancer. Each session
//! has its CSRF token, derived from its secret, which every form carries back.
//! `POST /esci` ends it everywhere.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use askama::Template;
use axum::extract::{ConnectInfo, FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Extension;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::pages::blocking;
use super::{render, Chrome, FormData, PageError, Web};
use crate::commands::Principal;
use crate::http::AppState;
use crate::App;

/// The session cookie.
pub const COOKIE: &str = "tg_sessione";
/// The cookie that carries the login form's CSRF token before a session exists.
const PRE_COOKIE: &str = "tg_accesso";
/// A session unused for this long (seconds) ends.
const IDLE: i64 = 8 * 60 * 60;

/// Sessions, kept by the store: these only name them and derive their tokens.
struct Sessions;

impl Sessions {
    /// Opens a session for `username`: the cookie's secret.
    async fn open(app: &App, username: &str) -> Result<String, PageError> {
        let secret = random_hex()?;
        let (store, hash, username) = (
            app.store().clone(),
            sha256_hex(&secret),
            username.to_string(),
        );
        blocking(move || Ok(store.open_session(&hash, &username, now(), IDLE)?)).await?;
        Ok(secret)
    }

    /// The username of the open session named by `secret`.
    async fn find(app: &App, secret: &str) -> Result<Option<String>, PageError> {
        let (store, hash) = (app.store().clone(), sha256_hex(secret));
        blocking(move || Ok(store.session(&hash, now(), IDLE)?)).await
    }

    /// Ends the session named by `secret`, in every process.
    async fn close(app: &App, secret: &str) -> Result<(), PageError> {
        let (store, hash) = (app.store().clone(), sha256_hex(secret));
        blocking(move || Ok(store.close_session(&hash)?)).await
    }

    /// The CSRF token of the session named by `secret`: a hash of it under
    /// another label, so it is the same in every process and the database does
    /// not hold it.
    fn csrf(secret: &str) -> String {
        sha256_hex(&format!("traguardo csrf\n{secret}"))
    }
}

/// Real time in Unix seconds: idle expiry is in wall-clock time, shared by
/// every process (the store's clock may be a demo's or a test's).
fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

fn random_hex() -> Result<String, PageError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| PageError::from(crate::AppError::Randomness(e)))?;
    Ok(hex::encode(bytes))
}

/// A cookie's value from the request headers.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// Compares two secrets in time independent of where they differ.
fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && !a.is_empty()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The person logged in: their account and what it may do.
#[derive(Debug, Clone)]
pub struct Viewer {
    /// Username (`actor_id`).
    pub username: String,
    /// What they may do.
    pub principal: Principal,
    /// The session's CSRF token.
    pub csrf: String,
}

impl Viewer {
    /// Refuses a form that does not carry this session's CSRF token.
    ///
    /// # Errors
    /// A 403 page.
    pub fn check_csrf(&self, form: &FormData) -> Result<(), PageError> {
        if same_secret(&form.raw("csrf"), &self.csrf) {
            Ok(())
        } else {
            Err(PageError::forbidden(
                "il modulo non porta un token di sicurezza valido (CSRF): ricarica la pagina e riprova",
            ))
        }
    }
}

/// Pages for people logged in: without a session, `303` to `/accesso`.
pub struct SignedIn(pub Viewer);

/// The viewer, if someone is logged in.
pub struct MaybeViewer(pub Option<Viewer>);

impl FromRequestParts<AppState> for MaybeViewer {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Some(secret) = cookie(&parts.headers, COOKIE).filter(|s| is_secret(s)) else {
            return Ok(MaybeViewer(None));
        };
        let app = &state.app;
        let Some(username) = Sessions::find(app, &secret)
            .await
            .map_err(IntoResponse::into_response)?
        else {
            return Ok(MaybeViewer(None));
        };
        let Some(principal) = app.account_principal(&username) else {
            // The account was deleted: its sessions end.
            Sessions::close(app, &secret)
                .await
                .map_err(IntoResponse::into_response)?;
            return Ok(MaybeViewer(None));
        };
        Ok(MaybeViewer(Some(Viewer {
            username,
            principal,
            csrf: Sessions::csrf(&secret),
        })))
    }
}

/// Whether a cookie's value has the shape of a session secret (64 hex digits):
/// anything else is not looked up.
fn is_secret(value: &str) -> bool {
    value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit())
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let MaybeViewer(viewer) = MaybeViewer::from_request_parts(parts, state).await?;
        match viewer {
            Some(v) => Ok(SignedIn(v)),
            None => {
                let back = parts
                    .uri
                    .path_and_query()
                    .map(|p| p.as_str())
                    .unwrap_or("/");
                let target = if back == "/" || parts.method != axum::http::Method::GET {
                    "/accesso".to_string()
                } else {
                    format!("/accesso?dopo={}", urlencode(back))
                };
                Err(Redirect::to(&target).into_response())
            }
        }
    }
}

/// Percent-encodes a path for a query parameter.
pub fn urlencode(text: &str) -> String {
    serde_urlencoded::to_string([("x", text)])
        .map(|s| s[2..].to_string())
        .unwrap_or_default()
}

#[derive(Template)]
#[template(path = "login.html", config = "src/web/templates/askama.toml")]
struct LoginPage {
    chrome: Chrome,
    csrf: String,
    username: String,
    after: String,
    error: String,
}

/// `?dopo=` on the login page: where to go once logged in.
#[derive(Debug, Deserialize, Default)]
pub struct After {
    dopo: Option<String>,
}

fn safe_after(after: Option<&str>) -> String {
    match after {
        Some(a) if a.starts_with('/') && !a.starts_with("//") && !a.contains('\\') => a.to_string(),
        _ => "/".to_string(),
    }
}

/// `GET /accesso`.
pub async fn login_page(
    MaybeViewer(viewer): MaybeViewer,
    Query(after): Query<After>,
) -> Result<Response, PageError> {
    if viewer.is_some() {
        return Ok(Redirect::to("/").into_response());
    }
    let csrf = random_hex()?;
    let page = LoginPage {
        chrome: Chrome::bare("Accesso"),
        csrf: csrf.clone(),
        username: String::new(),
        after: safe_after(after.dopo.as_deref()),
        error: String::new(),
    };
    let mut response = render(StatusCode::OK, &page)?;
    set_cookie(
        &mut response,
        &format!("{PRE_COOKIE}={csrf}; Path=/accesso; HttpOnly; SameSite=Strict"),
    );
    Ok(response)
}

fn set_cookie(response: &mut Response, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
}

/// The client's address, when the server knows it.
pub struct ClientAddr(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip()),
        ))
    }
}

/// `POST /accesso`: fields `username`, `password` (and `csrf`, `dopo`).
pub async fn login(
    State(state): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    form: FormData,
) -> Result<Response, PageError> {
    let username = form.get("username").to_lowercase();
    let after = safe_after(Some(&form.get("dopo")));
    let csrf = cookie(&headers, PRE_COOKIE).unwrap_or_default();
    let again = |status: StatusCode, error: &str| -> Result<Response, PageError> {
        let fresh = random_hex()?;
        let page = LoginPage {
            chrome: Chrome::bare("Accesso"),
            csrf: fresh.clone(),
            username: form.raw("username"),
            after: after.clone(),
            error: error.to_string(),
        };
        let mut response = render(status, &page)?;
        set_cookie(
            &mut response,
            &format!("{PRE_COOKIE}={fresh}; Path=/accesso; HttpOnly; SameSite=Strict"),
        );
        Ok(response)
    };
    if !same_secret(&form.raw("csrf"), &csrf) {
        return again(
            StatusCode::FORBIDDEN,
            "Il modulo è scaduto o non porta il suo token di sicurezza: riprova.",
        );
    }
    let mut keys = vec![format!("u:{username}")];
    if let Some(addr) = addr {
        keys.push(format!("a:{addr}"));
    }
    if let Some(wait) = web.throttle.wait(&keys) {
        return again(
            StatusCode::TOO_MANY_REQUESTS,
            &format!(
                "Troppi tentativi non riusciti: riprova tra {} secondi.",
                wait.as_secs().max(1)
            ),
        );
    }
    let Some(_) = state
        .app
        .check_password(&username, &form.raw("password"))
        .await
    else {
        web.throttle.failed(&keys);
        tracing::warn!(username = %username, "failed login");
        return again(
            StatusCode::UNAUTHORIZED,
            "Nome utente o password non corretti.",
        );
    };
    web.throttle.succeeded(&keys[0]);
    let id = Sessions::open(&state.app, &username).await?;
    let mut response = Redirect::to(&after).into_response();
    set_cookie(
        &mut response,
        &format!("{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict"),
    );
    set_cookie(
        &mut response,
        &format!("{PRE_COOKIE}=; Path=/accesso; Max-Age=0"),
    );
    Ok(response)
}

/// `POST /esci`.
pub async fn logout(
    State(state): State<AppState>,
    SignedIn(viewer): SignedIn,
    headers: HeaderMap,
    form: FormData,
) -> Result<Response, PageError> {
    viewer.check_csrf(&form)?;
    if let Some(id) = cookie(&headers, COOKIE) {
        Sessions::close(&state.app, &id).await?;
    }
    let mut response = Redirect::to("/accesso").into_response();
    set_cookie(
        &mut response,
        &format!("{COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict"),
    );
    Ok(response)
}
