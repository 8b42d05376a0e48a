//! Read-your-writes across instances (DESIGN.md §10): a request carrying
//! `?min_seq=N` or the header `X-Min-Seq: N` is served only once this
//! instance's read model has folded seq N. It waits for that at most
//! [`MIN_SEQ_WAIT`], then answers 503 with `Retry-After`. One middleware, in
//! front of every route, so no handler has to think about it.

use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::problem::Problem;
use super::AppState;
use crate::error::{AppError, FieldError};

/// How long a request waits for its `min_seq`.
pub const MIN_SEQ_WAIT: Duration = Duration::from_secs(2);

/// The header naming the seq a client needs.
pub const HEADER: &str = "x-min-seq";

/// Waits for the seq a request asks for, if it asks for one.
pub async fn wait(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let wanted = match wanted(&request) {
        Ok(None) => return next.run(request).await,
        Ok(Some(seq)) => seq,
        Err(problem) => return problem.into_response(),
    };
    if !state.app.wait_for_seq(wanted, MIN_SEQ_WAIT).await {
        return Problem::from(AppError::NotYet {
            wanted,
            folded: state.app.folded_seq(),
        })
        .into_response();
    }
    next.run(request).await
}

/// The seq asked for by the query (`min_seq`) or the header; the larger if both.
fn wanted(request: &Request) -> Result<Option<u64>, Problem> {
    let parse = |field: &str, text: &str| {
        text.trim().parse::<u64>().map_err(|_| {
            Problem::invalid(vec![FieldError::new(
                field,
                format!("{text:?} non è un numero di sequenza (un intero da 0 in su)"),
            )])
        })
    };
    let mut wanted = None;
    if let Some(query) = request.uri().query() {
        for pair in query.split('&') {
            if let Some(("min_seq", value)) = pair.split_once('=') {
                wanted = wanted.max(Some(parse("min_seq", value)?));
            }
        }
    }
    if let Some(value) = request.headers().get(HEADER) {
        let text = value.to_str().unwrap_or("?");
        wanted = wanted.max(Some(parse("X-Min-Seq", text)?));
    }
    Ok(wanted)
}
