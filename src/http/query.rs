//! The query string of the documented routes: only the parameters the OpenAPI
//! document names for the operation (and `min_seq`, which every route takes,
//! see [`super::min_seq`]), each at most once. Anything else is a 400 problem
//! naming every parameter at fault, so a misspelt filter (`?untl=…`) is never
//! silently ignored and an answer never depends on which of two values won.
//!
//! One middleware in front of every route; the document it reads is the one
//! the server serves, so a parameter documented on a route is accepted there
//! and nothing has to be listed twice. Routes outside the document (the web
//! pages, the problem type pages) are left alone.

use std::collections::BTreeMap;

use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::problem::Problem;
use super::AppState;
use crate::error::FieldError;

/// The parameter every route takes besides its own.
const EVERY_ROUTE: [&str; 1] = ["min_seq"];

/// Refuses a request to a documented route whose query string names a
/// parameter the route does not take, or names one twice.
pub async fn check(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let (Some(query), Some(doc)) = (request.uri().query(), state.openapi.get()) else {
        return next.run(request).await;
    };
    let Some(path) = request.extensions().get::<MatchedPath>() else {
        return next.run(request).await;
    };
    let Some(known) = documented(doc, path.as_str(), request.method()) else {
        return next.run(request).await;
    };
    match problems(query, &known) {
        Some(problem) => problem.into_response(),
        None => next.run(request).await,
    }
}

/// The query parameters the document names for this operation, or `None` when
/// the document does not describe it.
fn documented(doc: &Value, path: &str, method: &Method) -> Option<Vec<String>> {
    let method = if method == Method::HEAD {
        "get".to_string()
    } else {
        method.as_str().to_ascii_lowercase()
    };
    let operation = doc.get("paths")?.get(path)?.get(method)?;
    let names = operation
        .get("parameters")
        .and_then(Value::as_array)
        .map(|ps| {
            ps.iter()
                .filter(|p| p["in"] == "query")
                .filter_map(|p| p["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    Some(names)
}

/// The 400 for `query` against the `known` parameters, if anything is wrong.
fn problems(query: &str, known: &[String]) -> Option<Problem> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).unwrap_or_default();
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for (name, _) in &pairs {
        *seen.entry(name.as_str()).or_default() += 1;
    }
    let accepted = |name: &str| known.iter().any(|k| k == name) || EVERY_ROUTE.contains(&name);
    let mut errors = Vec::new();
    for (name, count) in seen {
        if !accepted(name) {
            let mut expected: Vec<&str> = known.iter().map(String::as_str).collect();
            expected.extend(EVERY_ROUTE);
            errors.push(FieldError::new(
                name,
                format!(
                    "parametro sconosciuto: questa risorsa accetta {}",
                    expected.join(", ")
                ),
            ));
        } else if count > 1 {
            errors.push(FieldError::new(
                name,
                format!("parametro ripetuto {count} volte: va indicato una volta sola"),
            ));
        }
    }
    if errors.is_empty() {
        return None;
    }
    let detail = errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ");
    let mut problem =
        Problem::bad_request(format!("parametri della richiesta non validi: {detail}"));
    problem.errors = errors;
    Some(problem)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| (*n).to_string()).collect()
    }

    #[test]
    fn documented_parameters_and_min_seq_pass() {
        assert!(problems("at=2022-06-30&min_seq=3", &known(&["at", "seq"])).is_none());
        assert!(problems("", &known(&[])).is_none());
    }

    #[test]
    fn an_unknown_parameter_is_named_with_what_the_route_takes() {
        let problem = problems("at=2022-06-30&untl=x", &known(&["at"])).expect("refused");
        assert_eq!(problem.status, 400);
        assert_eq!(problem.errors.len(), 1);
        assert_eq!(problem.errors[0].field, "untl");
        assert!(problem.errors[0].message.contains("at, min_seq"));
    }

    #[test]
    fn a_repeated_parameter_is_refused() {
        let problem = problems("seq=1&seq=2", &known(&["seq"])).expect("refused");
        assert_eq!(problem.errors[0].field, "seq");
    }
}
