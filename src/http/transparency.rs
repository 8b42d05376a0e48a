//! Signed checkpoints, proofs, cosignatures and the year-end seal (DESIGN.md
//! §9). Any authenticated role reads checkpoints and proofs; the Nucleo
//! (validator) attaches cosignatures and seals a year.

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use traguardo_events::model::Role;
use traguardo_tlog::merkle::TreeError;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::auth::Auth;
use super::problem::Problem;
use super::{support, AppState};
use crate::error::{AppError, FieldError};
use crate::transparency::{self, CosignatureRefused};

/// The routes of this area.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(checkpoint))
        .routes(routes!(vkey))
        .routes(routes!(add_cosignature))
        .routes(routes!(inclusion))
        .routes(routes!(consistency))
        .routes(routes!(seal))
}

/// A text/plain answer.
fn text(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// The answer of the checkpoint routes on a server without a key.
fn no_key() -> Problem {
    Problem::new(
        StatusCode::NOT_FOUND,
        "no-checkpoint-key",
        "No checkpoint key",
        "questo server non firma checkpoint: avviarlo con --checkpoint-key (o \
         TRAGUARDO_CHECKPOINT_KEY) per pubblicarne",
    )
}

/// The latest signed checkpoint (C2SP tlog-checkpoint in a signed note), with
/// the cosignatures attached to it; never more than a few seconds behind the head.
#[utoipa::path(get, path = "/checkpoint", tag = "transparency",
    responses((status = 200, body = String, content_type = "text/plain"), (status = 401, body = Problem),
              (status = 404, body = Problem, description = "no checkpoint key configured")))]
async fn checkpoint(State(state): State<AppState>, _auth: Auth) -> Result<Response, Problem> {
    if !state.checkpoints.enabled() {
        return Err(no_key());
    }
    let (app, checkpoints) = (state.app.clone(), state.checkpoints.clone());
    let note = support::blocking(move || checkpoints.refresh(&**app.store()))
        .await?
        .ok_or_else(no_key)?;
    Ok(text(StatusCode::OK, note.to_string()))
}

/// The log's verifier key (signed-note `vkey` form).
#[utoipa::path(get, path = "/checkpoint/vkey", tag = "transparency",
    responses((status = 200, body = String, content_type = "text/plain"), (status = 401, body = Problem),
              (status = 404, body = Problem, description = "no checkpoint key configured")))]
async fn vkey(State(state): State<AppState>, _auth: Auth) -> Result<Response, Problem> {
    let vkey = state.checkpoints.vkey().ok_or_else(no_key)?;
    Ok(text(StatusCode::OK, format!("{vkey}\n")))
}

/// Attaches a witness's cosignature line (`— <name> <base64>`, as printed by
/// `traguardo cosign`) to the recent checkpoint it signs; answers that
/// checkpoint's note.
#[utoipa::path(post, path = "/checkpoint/cosignatures", tag = "transparency",
    request_body(content = String, content_type = "text/plain", description = "one cosignature line"),
    responses((status = 201, body = String, content_type = "text/plain"), (status = 401, body = Problem),
              (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn add_cosignature(
    State(state): State<AppState>,
    auth: Auth,
    body: String,
) -> Result<Response, Problem> {
    auth.require(&[Role::Validator])?;
    match state.checkpoints.add_cosignature(&body) {
        Ok(note) => {
            let mut response = text(StatusCode::CREATED, note.to_string());
            response.headers_mut().insert(
                axum::http::header::LOCATION,
                axum::http::HeaderValue::from_static("/api/v1/checkpoint"),
            );
            Ok(response)
        }
        Err(CosignatureRefused::NoKey) => Err(no_key()),
        Err(refused) => Err(Problem::invalid(vec![FieldError::new(
            "cosignature",
            refused.to_string(),
        )])),
    }
}

/// `GET /proofs/inclusion` parameters.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InclusionQuery {
    /// The event's seq (from 1).
    #[param(value_type = Option<u64>, format = Int64, minimum = 1)]
    pub seq: Option<String>,
    /// The tree size (default: the head).
    #[param(value_type = Option<u64>, format = Int64, minimum = 1)]
    pub size: Option<String>,
}

/// An inclusion proof (RFC 9162 §2.1.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct InclusionProof {
    /// The leaf: the event's seq minus one.
    pub leaf_index: u64,
    /// The tree size the proof is for.
    pub tree_size: u64,
    /// From the leaf's sibling up, base64.
    pub hashes: Vec<String>,
}

/// `GET /proofs/consistency` parameters.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ConsistencyQuery {
    /// The earlier tree size (from 1).
    #[param(value_type = Option<u64>, format = Int64, minimum = 1)]
    pub from: Option<String>,
    /// The later tree size (default: the head).
    #[param(value_type = Option<u64>, format = Int64, minimum = 1)]
    pub to: Option<String>,
}

/// A consistency proof (RFC 9162 §2.1.4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ConsistencyProof {
    /// The proof's hashes, base64.
    pub hashes: Vec<String>,
}

/// A required or optional count from the query string.
fn count(text: Option<&str>, field: &str, errors: &mut Vec<FieldError>) -> Option<u64> {
    let text = text.filter(|t| !t.is_empty())?;
    match text.parse::<u64>() {
        Ok(n) => Some(n),
        Err(_) => {
            errors.push(FieldError::new(
                field,
                format!("{text:?} non è un numero intero non negativo"),
            ));
            None
        }
    }
}

/// A tree error of the store as the field it blames.
fn tree_problem(e: AppError, size_field: &str, index_field: &str) -> AppError {
    let field_error = |field: &str, message: String| transparency::invalid(field, message);
    match e {
        AppError::Store(traguardo_events::Error::SeqZero) => field_error(
            index_field,
            "i seq partono da 1: il seq 0 non è un evento".into(),
        ),
        AppError::Store(traguardo_events::Error::Tree(tree)) => match tree {
            TreeError::BeyondStored { size, stored } => field_error(
                size_field,
                format!("{size} è oltre la testa del registro ({stored} eventi)"),
            ),
            TreeError::IndexOutOfRange { index, size } => field_error(
                index_field,
                format!("il seq {} non è nell'albero di {size} eventi", index + 1),
            ),
            TreeError::FromAfterTo { from, to } => {
                field_error("from", format!("from ({from}) non può superare to ({to})"))
            }
            TreeError::FromEmpty => field_error(
                "from",
                "non esiste prova di consistenza dall'albero vuoto: from parte da 1".into(),
            ),
            other => AppError::Store(traguardo_events::Error::Tree(other)),
        },
        other => other,
    }
}

/// The inclusion proof of the event `seq` in the tree of `size` events.
#[utoipa::path(get, path = "/proofs/inclusion", tag = "transparency", params(InclusionQuery),
    responses((status = 200, body = InclusionProof), (status = 401, body = Problem), (status = 422, body = Problem)))]
async fn inclusion(
    State(state): State<AppState>,
    _auth: Auth,
    Query(query): Query<InclusionQuery>,
) -> Result<Json<InclusionProof>, Problem> {
    let mut errors = Vec::new();
    let seq = count(query.seq.as_deref(), "seq", &mut errors);
    let size = count(query.size.as_deref(), "size", &mut errors);
    if query.seq.as_deref().is_none_or(str::is_empty) {
        errors.push(FieldError::new("seq", "obbligatorio: il seq dell'evento"));
    }
    if !errors.is_empty() {
        return Err(Problem::invalid(errors));
    }
    let seq = seq.unwrap_or_default();
    let app = state.app.clone();
    support::blocking(move || {
        let store = app.store();
        let size = match size {
            Some(size) => size,
            None => store.head()?.seq,
        };
        let hashes = store
            .inclusion_proof(seq, size)
            .map_err(|e| tree_problem(e.into(), "size", "seq"))?;
        Ok(Json(InclusionProof {
            leaf_index: seq - 1,
            tree_size: size,
            hashes: hashes.iter().map(|h| transparency::base64(h)).collect(),
        }))
    })
    .await
}

/// The consistency proof from the tree of `from` events to that of `to`.
#[utoipa::path(get, path = "/proofs/consistency", tag = "transparency", params(ConsistencyQuery),
    responses((status = 200, body = ConsistencyProof), (status = 401, body = Problem), (status = 422, body = Problem)))]
async fn consistency(
    State(state): State<AppState>,
    _auth: Auth,
    Query(query): Query<ConsistencyQuery>,
) -> Result<Json<ConsistencyProof>, Problem> {
    let mut errors = Vec::new();
    let from = count(query.from.as_deref(), "from", &mut errors);
    let to = count(query.to.as_deref(), "to", &mut errors);
    if query.from.as_deref().is_none_or(str::is_empty) {
        errors.push(FieldError::new(
            "from",
            "obbligatorio: la dimensione dell'albero precedente",
        ));
    }
    if let (Some(from), Some(to)) = (from, to) {
        if from > to {
            errors.push(FieldError::new(
                "from",
                format!("from ({from}) non può superare to ({to})"),
            ));
        }
    }
    if !errors.is_empty() {
        return Err(Problem::invalid(errors));
    }
    let from = from.unwrap_or_default();
    let app = state.app.clone();
    support::blocking(move || {
        let store = app.store();
        let to = match to {
            Some(to) => to,
            None => store.head()?.seq,
        };
        let hashes = store
            .consistency_proof(from, to)
            .map_err(|e| tree_problem(e.into(), "to", "from"))?;
        Ok(Json(ConsistencyProof {
            hashes: hashes.iter().map(|h| transparency::base64(h)).collect(),
        }))
    })
    .await
}

/// The answer to a seal.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Sealed {
    /// The plan year.
    pub year: i32,
    /// The `plan_sealed` event's seq.
    pub seq: u64,
    /// Its hash.
    pub hash: String,
    /// The checkpoint sealed.
    pub seal: traguardo_projections::Seal,
}

/// Seals a plan year at a signed checkpoint of the current head (*chiusura
/// dell'esercizio*): from then on its plan and objectives take no writes (409).
#[utoipa::path(post, path = "/plans/{year}/seal", tag = "transparency", params(("year" = i32, Path)),
    responses((status = 201, body = Sealed), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 404, body = Problem), (status = 409, body = Problem, description = "sealed already, or no checkpoint key")))]
async fn seal(
    State(state): State<AppState>,
    auth: Auth,
    Path(year): Path<String>,
) -> Result<Response, Problem> {
    let year = support::plan_year(&year)?;
    let event = transparency::seal_year(&state.app, &state.checkpoints, year, &auth.0).await?;
    let seal = state
        .app
        .read(|r| r.plan(year).and_then(|p| p.sealed.clone()))
        .ok_or_else(Problem::internal)?;
    Ok(support::created(
        Sealed {
            year,
            seq: event.seq,
            hash: event.hash,
            seal,
        },
        false,
        Some(format!("/api/v1/plans/{year}")),
    ))
}
