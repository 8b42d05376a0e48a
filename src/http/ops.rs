//! Operations: liveness, the AgID status resource, Prometheus metrics, and the
//! OpenAPI document.

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::auth::Auth;
use super::problem::{Problem, PROBLEM_JSON};
use super::AppState;
use traguardo_events::model::Role;

/// Adds the bearer security scheme to the document.
pub struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
        openapi.security = Some(vec![utoipa::openapi::security::SecurityRequirement::new(
            "bearer",
            Vec::<String>::new(),
        )]);
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    method: String,
    status: u16,
}

/// The server's metrics.
pub struct Metrics {
    registry: prometheus_client::registry::Registry,
    requests: Family<RequestLabels, Counter>,
    /// Seconds from decide to durable append, per write request.
    pub append_seconds: Histogram,
    events: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut registry = prometheus_client::registry::Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "traguardo_http_requests",
            "HTTP requests by route, method and status",
            requests.clone(),
        );
        let append_seconds = Histogram::new(exponential_buckets(0.000_25, 2.0, 16));
        registry.register(
            "traguardo_append_duration_seconds",
            "Time for a write request to decide and durably append its events",
            append_seconds.clone(),
        );
        let events = Gauge::default();
        registry.register(
            "traguardo_events",
            "Events in the log (head seq)",
            events.clone(),
        );
        Metrics {
            registry,
            requests,
            append_seconds,
            events,
        }
    }
}

/// Counts every request by its route template and status.
pub async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let method = request.method().to_string();
    let response = next.run(request).await;
    state
        .metrics
        .requests
        .get_or_create(&RequestLabels {
            route,
            method,
            status: response.status().as_u16(),
        })
        .inc();
    response
}

/// Routes at the root: `/healthz`, `/status`, `/metrics`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(status))
        .routes(routes!(metrics))
}

/// Routes under `/api/v1`: the OpenAPI document.
pub fn api_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(openapi_json))
}

/// Liveness: 200 while the process answers.
#[utoipa::path(get, path = "/healthz", tag = "operations", security(()),
    responses((status = 200, description = "alive", body = String)))]
async fn healthz() -> &'static str {
    "ok\n"
}

/// Status as the AgID interoperability guidelines ask: problem+json, 200 when
/// healthy, 503 when the log cannot be read.
#[utoipa::path(get, path = "/status", tag = "operations", security(()),
    responses(
        (status = 200, description = "healthy", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "unhealthy", body = Problem, content_type = "application/problem+json")))]
async fn status(State(state): State<AppState>) -> Response {
    let store = state.app.store().clone();
    let seen = state.seen.clone();
    let head = tokio::task::spawn_blocking(move || {
        let head = store.head()?;
        // The log must still hold the highest head this server has seen.
        let kept = if head.seq < seen.highest().seq {
            super::head_file::check(store.as_ref(), &seen.highest())
        } else {
            Ok(())
        };
        Ok::<_, traguardo_events::Error>((head, kept, store.write_failure()))
    })
    .await;
    let (code, detail) = match (head, state.app.health()) {
        (Ok(Ok((_, Err(lost), _))), _) => {
            tracing::error!(problem = %lost, "status: events were lost");
            (StatusCode::SERVICE_UNAVAILABLE, lost)
        }
        (Ok(Ok((_, _, Some(failure)))), _) => {
            tracing::error!(%failure, "status: the database refuses writes");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "il registro degli eventi non accetta scritture (disco pieno o file in sola \
                     lettura): {failure}"
                ),
            )
        }
        (Ok(Ok(_)), Err(problem)) => {
            tracing::error!(%problem, "status: unhealthy");
            (StatusCode::SERVICE_UNAVAILABLE, problem)
        }
        (Ok(Ok((head, _, _))), Ok(())) => {
            (StatusCode::OK, format!("the log holds {} events", head.seq))
        }
        (Ok(Err(e)), _) => {
            tracing::error!(error = %e, "status: the log cannot be read");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "the event log cannot be read".to_string(),
            )
        }
        (Err(_), _) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "the server is failing".to_string(),
        ),
    };
    let mut problem = Problem::new(
        code,
        if code == StatusCode::OK {
            "status-ok"
        } else {
            "status-unavailable"
        },
        if code == StatusCode::OK {
            "Service healthy"
        } else {
            "Service unavailable"
        },
        detail,
    );
    problem.kind = "about:blank".into();
    let mut response = problem.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(PROBLEM_JSON),
    );
    response
}

/// Prometheus (OpenMetrics) text: requests by route and status, append latency,
/// events in the log. It needs an admin or auditor token (Prometheus sends one
/// with `authorization` in its scrape configuration); `serve --metrics-addr`
/// serves it without a token on a separate address instead.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "OpenMetrics text", body = String, content_type = "application/openmetrics-text"),
              (status = 401, body = Problem), (status = 403, body = Problem)))]
async fn metrics(State(state): State<AppState>, auth: Auth) -> Result<Response, Problem> {
    auth.require(&[Role::Admin, Role::Auditor])?;
    Ok(metrics_text(&state).await)
}

async fn metrics_text(state: &AppState) -> Response {
    let store = state.app.store().clone();
    if let Ok(Ok(head)) = tokio::task::spawn_blocking(move || store.head()).await {
        state.metrics.events.set(head.seq as i64);
    }
    let mut text = String::new();
    if prometheus_client::encoding::text::encode(&mut text, &state.metrics.registry).is_err() {
        return Problem::internal().into_response();
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

/// The router of `serve --metrics-addr`: `/metrics` without a token, for a
/// scraper on a private address; everything else is a 404.
pub fn metrics_router(state: AppState) -> axum::Router {
    axum::Router::new()
        .route(
            "/metrics",
            axum::routing::get(|State(state): State<AppState>| async move {
                metrics_text(&state).await
            }),
        )
        .fallback(|| async { Problem::not_found("no such route") })
        .with_state(state)
}

/// This document: OpenAPI 3.1, generated from the handlers.
#[utoipa::path(get, path = "/openapi.json", tag = "operations", security(()),
    responses((status = 200, description = "the OpenAPI document", body = Object)))]
async fn openapi_json(State(state): State<AppState>) -> Response {
    match state.openapi.get() {
        Some(doc) => axum::Json(doc.clone()).into_response(),
        None => Problem::internal().into_response(),
    }
}
