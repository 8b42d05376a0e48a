//! The conventions every answer keeps, as layers around the whole router
//! (README, "HTTP conventions"):
//!
//! - compression (gzip, br, zstd) as `Accept-Encoding` asks, except for live
//!   feeds and files compressed already;
//! - CORS for the origins given with `--cors-origin` (none by default);
//!   preflight `OPTIONS` requests are answered;
//! - `X-Request-Id`: kept when the client sends a usable one, made otherwise,
//!   sent back, in the request's log span and in every problem it answers;
//! - rate limits on writes (per token and per address) and on failed
//!   authentications (per address and per token), with `429`, `Retry-After`
//!   and the `RateLimit` / `RateLimit-Policy` headers;
//! - `Cache-Control` on API answers, and `Retry-After` on every 503.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::{from_fn, from_fn_with_state, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use tower_http::compression::predicate::{DefaultPredicate, NotForContentType, Predicate};
use tower_http::compression::CompressionLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};

use super::problem::{Problem, RETRY_AFTER_SECONDS};
use crate::app::sha256_hex;

/// The request id header.
pub const X_REQUEST_ID: &str = "x-request-id";

/// The media type of an xlsx workbook (reports, plan uploads).
pub const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

/// `traguardo serve` options for these conventions.
#[derive(Debug, Clone, clap::Args)]
pub struct Conventions {
    /// An origin (`https://host[:port]`) whose pages may call the API from a
    /// browser (CORS). Repeatable; none by default.
    #[arg(long = "cors-origin", env = "TRAGUARDO_CORS_ORIGINS", value_delimiter = ',',
          value_parser = parse_origin)]
    pub cors_origins: Vec<HeaderValue>,
    /// Writes (POST, PUT, PATCH, DELETE) one token may make per minute.
    #[arg(long, env = "TRAGUARDO_WRITES_PER_TOKEN", default_value_t = 600,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub writes_per_token: u32,
    /// Writes one address may make per minute, whatever their credentials.
    #[arg(long, env = "TRAGUARDO_WRITES_PER_ADDRESS", default_value_t = 2400,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub writes_per_address: u32,
    /// Failed authentications (401) allowed per minute from one address, and
    /// with one token, before they are refused with 429 for a while.
    #[arg(long, env = "TRAGUARDO_AUTH_FAILURES", default_value_t = 20,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub auth_failures: u32,
}

impl Default for Conventions {
    fn default() -> Self {
        Conventions {
            cors_origins: Vec::new(),
            writes_per_token: 600,
            writes_per_address: 2400,
            auth_failures: 20,
        }
    }
}

/// An origin as browsers send it: `scheme://host[:port]`, no path.
///
/// # Errors
/// A line saying what is wrong.
pub fn parse_origin(text: &str) -> Result<HeaderValue, String> {
    let text = text.trim();
    let rest = text
        .strip_prefix("https://")
        .or_else(|| text.strip_prefix("http://"))
        .ok_or_else(|| format!("{text:?} is not an origin such as https://comune.example.it"))?;
    if rest.is_empty() || rest.contains(['/', '?', '#', ' ', '*']) {
        return Err(format!(
            "{text:?} is not an origin such as https://comune.example.it (no path, no wildcard)"
        ));
    }
    HeaderValue::from_str(text).map_err(|e| format!("{text:?}: {e}"))
}

/// Wraps `inner` in the layers of this module, once (not around each route:
/// see [`super::router_with`]), and makes the whole a [`Router`] again.
pub fn apply<S>(inner: S, conventions: &Conventions) -> Router
where
    S: tower::Service<Request, Response = Response, Error = std::convert::Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    let limits = Arc::new(Limits::new(conventions));
    let stack = tower::ServiceBuilder::new()
        .layer(compression())
        .layer(cors(conventions))
        .layer(from_fn(drop_unusable_request_id))
        .layer(SetRequestIdLayer::new(
            HeaderName::from_static(X_REQUEST_ID),
            MakeRequestUuid,
        ))
        .layer(PropagateRequestIdLayer::new(HeaderName::from_static(
            X_REQUEST_ID,
        )))
        .layer(from_fn(scope_request_id))
        .layer(from_fn_with_state(limits, rate_limit))
        .layer(from_fn(cache_control))
        .service(inner);
    Router::new().fallback_service(stack)
}

/// Compresses as `Accept-Encoding` asks (gzip, br, zstd), but never a live
/// feed (`text/event-stream`), small bodies, images, or files that are
/// compressed already (PDF, xlsx).
fn compression() -> CompressionLayer<impl Predicate> {
    CompressionLayer::new().compress_when(
        DefaultPredicate::new()
            .and(NotForContentType::const_new("application/pdf"))
            .and(NotForContentType::const_new(XLSX)),
    )
}

fn cors(conventions: &Conventions) -> CorsLayer {
    let header = HeaderName::from_static;
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(conventions.cors_origins.clone()))
        .allow_methods([Method::GET, Method::POST, Method::DELETE])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::IF_MATCH,
            header::IF_NONE_MATCH,
            header::ACCEPT,
            header("idempotency-key"),
            header(X_REQUEST_ID),
            header("last-event-id"),
            header("x-min-seq"),
        ])
        .expose_headers([
            header::ETAG,
            header::LOCATION,
            header::RETRY_AFTER,
            header(X_REQUEST_ID),
            header("idempotent-replayed"),
            header("ratelimit"),
            header("ratelimit-policy"),
        ])
        .max_age(Duration::from_secs(600))
}

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The `X-Request-Id` of the request being answered, if any.
pub fn current_request_id() -> Option<String> {
    REQUEST_ID
        .try_with(Clone::clone)
        .ok()
        .filter(|id| !id.is_empty())
}

/// A client's request id is kept if it is 1 to 128 visible characters
/// (no quotes, no backslash): it goes into logs and problem bodies.
fn usable_request_id(value: &HeaderValue) -> bool {
    let bytes = value.as_bytes();
    (1..=128).contains(&bytes.len())
        && bytes
            .iter()
            .all(|b| b.is_ascii_graphic() && *b != b'"' && *b != b'\\')
}

async fn drop_unusable_request_id(mut request: Request, next: Next) -> Response {
    let unusable = request
        .headers()
        .get_all(X_REQUEST_ID)
        .iter()
        .enumerate()
        .any(|(i, value)| i > 0 || !usable_request_id(value));
    if unusable {
        request.headers_mut().remove(X_REQUEST_ID);
    }
    next.run(request).await
}

async fn scope_request_id(request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get(X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    REQUEST_ID.scope(id, next.run(request)).await
}

/// The log span of a request: method, path and its request id.
pub fn request_span(request: &axum::http::Request<Body>) -> tracing::Span {
    let id = request
        .headers()
        .get(X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    tracing::info_span!(
        "request",
        method = %request.method(),
        uri = %request.uri(),
        request_id = %id,
    )
}

/// `Cache-Control` on API answers that do not set their own: reads may be kept
/// by the client alone and revalidated each time (`private, no-cache`, with
/// the ETag where there is one); anything else is not kept (`no-store`: a
/// write's answer may hold a token). And `Retry-After` on every 503.
async fn cache_control(request: Request, next: Next) -> Response {
    let api = request.uri().path().starts_with("/api/");
    let read = matches!(*request.method(), Method::GET | Method::HEAD);
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    if api && !headers.contains_key(header::CACHE_CONTROL) {
        let value = if read {
            "private, no-cache"
        } else {
            "no-store"
        };
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(value));
    }
    if response.status() == StatusCode::SERVICE_UNAVAILABLE
        && !response.headers().contains_key(header::RETRY_AFTER)
    {
        response.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from_static(RETRY_AFTER_SECONDS),
        );
    }
    response
}

type Keyed =
    RateLimiter<String, DefaultKeyedStateStore<String>, DefaultClock, StateInformationMiddleware>;

/// One limit: a quota per minute, kept per key (GCRA, by `governor`).
struct Limit {
    name: &'static str,
    per_minute: u32,
    limiter: Keyed,
}

impl Limit {
    fn new(name: &'static str, per_minute: u32) -> Limit {
        let per_minute = NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN);
        Limit {
            name,
            per_minute: per_minute.get(),
            limiter: RateLimiter::keyed(Quota::per_minute(per_minute))
                .with_middleware::<StateInformationMiddleware>(),
        }
    }

    /// Takes one from `key`'s allowance: what is left, or how long to wait.
    fn take(&self, key: &str) -> Result<u32, Duration> {
        if self.limiter.len() > 100_000 {
            self.limiter.retain_recent();
        }
        match self.limiter.check_key(&key.to_string()) {
            Ok(state) => Ok(state.remaining_burst_capacity()),
            Err(not_until) => Err(not_until.wait_time_from(DefaultClock::default().now())),
        }
    }

    /// Seconds until the allowance is whole again, with `remaining` left.
    fn reset_seconds(&self, remaining: u32) -> u64 {
        let spent = u64::from(self.per_minute.saturating_sub(remaining));
        (spent * 60).div_ceil(u64::from(self.per_minute))
    }

    /// `RateLimit-Policy` and `RateLimit` (draft-ietf-httpapi-ratelimit-headers).
    fn headers(&self, remaining: u32, reset: u64) -> [(HeaderName, HeaderValue); 2] {
        let value = |text: String| {
            HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
        };
        [
            (
                HeaderName::from_static("ratelimit-policy"),
                value(format!("\"{}\";q={};w=60", self.name, self.per_minute)),
            ),
            (
                HeaderName::from_static("ratelimit"),
                value(format!("\"{}\";r={remaining};t={reset}", self.name)),
            ),
        ]
    }

    /// 429 problem+json (Italian), with `Retry-After` and the limit's headers.
    fn refuse(&self, wait: Duration, what: &str) -> Response {
        let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        let seconds = seconds.max(1);
        let mut response = Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too-many-requests",
            "Troppe richieste",
            format!(
                "{what}: il limite è di {} al minuto. Riprovare tra {seconds} secondi.",
                self.per_minute
            ),
        )
        .into_response();
        let headers = response.headers_mut();
        headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        for (name, value) in self.headers(0, seconds) {
            headers.insert(name, value);
        }
        response
    }
}

/// The rate limits of one server.
struct Limits {
    writes_per_token: Limit,
    writes_per_address: Limit,
    failures: Limit,
    /// Keys (an address or a token's hash) refused after too many failed
    /// authentications, until when.
    blocked: Mutex<std::collections::HashMap<String, Instant>>,
}

impl Limits {
    fn new(conventions: &Conventions) -> Limits {
        Limits {
            writes_per_token: Limit::new("scritture-token", conventions.writes_per_token),
            writes_per_address: Limit::new("scritture-indirizzo", conventions.writes_per_address),
            failures: Limit::new("autenticazioni-fallite", conventions.auth_failures),
            blocked: Mutex::default(),
        }
    }

    /// How long `keys` are still refused for failed authentications, if any.
    fn blocked_for(&self, keys: &[&str]) -> Option<Duration> {
        let mut blocked = self.blocked.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        blocked.retain(|_, until| *until > now);
        keys.iter()
            .filter_map(|k| blocked.get(*k))
            .max()
            .map(|until| *until - now)
    }

    /// Counts a failed authentication against each of `keys`; a key over its
    /// allowance is refused until the allowance has a place again.
    fn failed(&self, keys: &[&str]) {
        for key in keys {
            if let Err(wait) = self.failures.take(key) {
                let mut blocked = self.blocked.lock().unwrap_or_else(|e| e.into_inner());
                blocked.insert((*key).to_string(), Instant::now() + wait);
            }
        }
    }
}

/// The rate limits: a request with credentials from an address (or with a
/// token) that failed to authenticate too often is refused at once; a write
/// takes one from its token's allowance and one from its address's.
async fn rate_limit(State(limits): State<Arc<Limits>>, request: Request, next: Next) -> Response {
    let address = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(|| "unknown".to_string(), |c| format!("ip:{}", c.0.ip()));
    let token = request.headers().get(header::AUTHORIZATION).map(|v| {
        format!(
            "token:{}",
            sha256_hex(&String::from_utf8_lossy(v.as_bytes()))
        )
    });
    let keys: Vec<&str> = std::iter::once(address.as_str())
        .chain(token.as_deref())
        .collect();
    if token.is_some() {
        if let Some(wait) = limits.blocked_for(&keys) {
            return limits.failures.refuse(
                wait,
                "Troppe autenticazioni fallite da questo indirizzo o con questo token",
            );
        }
    }
    let write = !matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    let mut taken = None;
    if write {
        let per_address = match limits.writes_per_address.take(&address) {
            Ok(left) => left,
            Err(wait) => {
                return limits
                    .writes_per_address
                    .refuse(wait, "Troppe scritture da questo indirizzo")
            }
        };
        taken = Some((&limits.writes_per_address, per_address));
        if let Some(token) = &token {
            match limits.writes_per_token.take(token) {
                Ok(left) if left <= per_address => {
                    taken = Some((&limits.writes_per_token, left));
                }
                Ok(_) => {}
                Err(wait) => {
                    return limits
                        .writes_per_token
                        .refuse(wait, "Troppe scritture con questo token")
                }
            }
        }
    }
    let mut response = next.run(request).await;
    if response.status() == StatusCode::UNAUTHORIZED && token.is_some() {
        limits.failed(&keys);
    }
    if let Some((limit, left)) = taken {
        for (name, value) in limit.headers(left, limit.reset_seconds(left)) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}
