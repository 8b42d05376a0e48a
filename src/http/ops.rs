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
use prometheus_client::metrics::info::Info;
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

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
    method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
    rust_version: &'static str,
}

type Histograms = Family<RouteLabels, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.000_25, 2.0, 16))
}

/// The server's metrics.
pub struct Metrics {
    registry: prometheus_client::registry::Registry,
    requests: Family<RequestLabels, Counter>,
    durations: Histograms,
    /// Seconds from decide to durable append, per write request.
    pub append_seconds: Histogram,
    events: Gauge,
    folded: Gauge,
    lag: Gauge,
    snapshot_seq: Gauge,
    snapshots_taken: Gauge,
    text_bytes: Gauge,
    snapshot_refused: Gauge,
    time_travel: [Gauge; 7],
    appended: Counter,
    groups: Counter,
    group_size: Histogram,
    commit_seconds: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric, each with its help.
    pub fn new() -> Self {
        let mut registry = prometheus_client::registry::Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "traguardo_http_requests",
            "HTTP requests by route, method and status",
            requests.clone(),
        );
        let durations: Histograms = Family::new_with_constructor(latency_histogram);
        registry.register(
            "traguardo_http_request_duration_seconds",
            "Seconds from a request's arrival to its answer's head, by route and method",
            durations.clone(),
        );
        let append_seconds = latency_histogram();
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
        let folded = Gauge::default();
        registry.register(
            "traguardo_read_model_seq",
            "The last seq the read model has folded (replay and follow progress)",
            folded.clone(),
        );
        let lag = Gauge::default();
        registry.register(
            "traguardo_read_model_lag_events",
            "Events in the log that the read model has not folded yet",
            lag.clone(),
        );
        let snapshot_seq = Gauge::default();
        registry.register(
            "traguardo_read_model_snapshot_seq",
            "The seq of the latest snapshot of the read model this process started from or took (0: none)",
            snapshot_seq.clone(),
        );
        let snapshots_taken = Gauge::default();
        registry.register(
            "traguardo_read_model_snapshots_taken",
            "Snapshots of the read model this process has taken since it started",
            snapshots_taken.clone(),
        );
        let text_bytes = Gauge::default();
        registry.register(
            "traguardo_read_model_text_bytes",
            "Bytes of the read model's texts (notes, descriptions) written to its texts' file, a file mapped into memory instead of the heap",
            text_bytes.clone(),
        );
        let snapshot_refused = Gauge::default();
        registry.register(
            "traguardo_read_model_snapshot_refused",
            "1 when this process refused a snapshot at start (it did not match the log or the fold) and folded the whole log",
            snapshot_refused.clone(),
        );
        let time_travel: [Gauge; 7] = Default::default();
        for (gauge, (name, help)) in time_travel.iter().zip([
            (
                "traguardo_time_travel_cache_hits",
                "Time-travel reads (?seq, ?as_of) answered from memory",
            ),
            (
                "traguardo_time_travel_cache_misses",
                "Time-travel reads that read the store",
            ),
            (
                "traguardo_time_travel_first_reads",
                "Time-travel reads of a stream not read lately: folded from the nearest stream snapshot and not cached",
            ),
            (
                "traguardo_time_travel_snapshots_used",
                "Time-travel store reads that started from a stream snapshot",
            ),
            (
                "traguardo_time_travel_snapshots_refused",
                "Stream snapshots refused (old schema, or the log no longer holds their event): the stream was folded from version 1",
            ),
            (
                "traguardo_time_travel_dates_read",
                "Time-travel reads by seq whose date was read from the store: the read model had not folded that seq yet",
            ),
            (
                "traguardo_stream_snapshots_written",
                "Stream snapshots this process has written since it started",
            ),
        ]) {
            registry.register(name, help, gauge.clone());
        }
        let appended = Counter::default();
        registry.register(
            "traguardo_store_appended_events",
            "Events this process appended to the log",
            appended.clone(),
        );
        let groups = Counter::default();
        registry.register(
            "traguardo_store_commits",
            "Group commits of this process (one transaction and fsync each)",
            groups.clone(),
        );
        let group_size = Histogram::new(exponential_buckets(1.0, 2.0, 10));
        registry.register(
            "traguardo_store_group_size_events",
            "Events per group commit",
            group_size.clone(),
        );
        let commit_seconds = latency_histogram();
        registry.register(
            "traguardo_store_commit_seconds",
            "Seconds from a group's record time stamp to its commit being durable",
            commit_seconds.clone(),
        );
        registry.register(
            "traguardo_build",
            "The running build: version and minimum Rust version",
            Info::new(BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
                rust_version: env!("CARGO_PKG_RUST_VERSION"),
            }),
        );
        registry.register_collector(Box::new(process::Collector));
        Metrics {
            registry,
            requests,
            durations,
            append_seconds,
            events,
            folded,
            lag,
            snapshot_seq,
            snapshots_taken,
            text_bytes,
            snapshot_refused,
            time_travel,
            appended,
            groups,
            group_size,
            commit_seconds,
        }
    }

    /// Counts what `store` commits from now on: events, groups, their size and
    /// how long each took from its record time stamp to durable.
    pub fn watch_commits(&self, store: &dyn traguardo_events::Store) {
        let (appended, groups, group_size, commit_seconds) = (
            self.appended.clone(),
            self.groups.clone(),
            self.group_size.clone(),
            self.commit_seconds.clone(),
        );
        let clock = store.clock().clone();
        store.on_commit(std::sync::Arc::new(move |events| {
            let Some(last) = events.last() else { return };
            appended.inc_by(events.len() as u64);
            groups.inc();
            group_size.observe(events.len() as f64);
            let took = (clock.now() - last.recorded_at)
                .to_std()
                .unwrap_or_default();
            commit_seconds.observe(took.as_secs_f64());
        }));
    }

    /// The registry as text: OpenMetrics 1.0, or the classic Prometheus text
    /// format 0.0.4.
    ///
    /// # Errors
    /// Only if a metric cannot be written.
    pub fn encode(&self, format: MetricsFormat) -> Result<String, std::fmt::Error> {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        Ok(match format {
            MetricsFormat::OpenMetrics => text,
            MetricsFormat::Classic => classic_text(&text),
        })
    }
}

/// The text formats `/metrics` answers in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricsFormat {
    /// `application/openmetrics-text; version=1.0.0`.
    OpenMetrics,
    /// `text/plain; version=0.0.4`, what classic Prometheus scrapers read.
    Classic,
}

impl MetricsFormat {
    /// The format an `Accept` header prefers: OpenMetrics when it ranks it at
    /// least as high as `text/plain`; the classic text otherwise (and without
    /// the header).
    pub fn negotiate(accept: Option<&str>) -> MetricsFormat {
        let mut open_metrics = 0.0_f32;
        let mut plain = 0.0_f32;
        for range in accept.unwrap_or_default().split(',') {
            let Ok(media) = range.trim().parse::<mime::Mime>() else {
                continue;
            };
            let q = media
                .get_param("q")
                .and_then(|q| q.as_str().parse::<f32>().ok())
                .unwrap_or(1.0);
            match (media.type_().as_str(), media.subtype().as_str()) {
                ("application", "openmetrics-text") => open_metrics = open_metrics.max(q),
                ("text", "plain") | ("text", "*") | ("*", "*") => plain = plain.max(q),
                _ => {}
            }
        }
        if open_metrics > 0.0 && open_metrics >= plain {
            MetricsFormat::OpenMetrics
        } else {
            MetricsFormat::Classic
        }
    }

    /// The answer's `Content-Type`.
    pub fn content_type(self) -> &'static str {
        match self {
            MetricsFormat::OpenMetrics => {
                "application/openmetrics-text; version=1.0.0; charset=utf-8"
            }
            MetricsFormat::Classic => "text/plain; version=0.0.4; charset=utf-8",
        }
    }
}

/// OpenMetrics text as the classic format writes it: a counter's family is
/// named with its `_total`, an info metric is a gauge named with its `_info`,
/// and there are no `# UNIT` or `# EOF` lines.
fn classic_text(open_metrics: &str) -> String {
    let mut out = String::with_capacity(open_metrics.len());
    let mut help: Option<&str> = None;
    for line in open_metrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            help = Some(rest);
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.rsplit_once(' ').unwrap_or((rest, "untyped"));
            let (name, kind) = match kind {
                "counter" => (format!("{name}_total"), "counter"),
                "info" => (format!("{name}_info"), "gauge"),
                "gaugehistogram" | "stateset" | "unknown" => (name.to_string(), "untyped"),
                other => (name.to_string(), other),
            };
            if let Some(text) = help.take() {
                let text = text.split_once(' ').map_or("", |(_, text)| text);
                out.push_str(&format!("# HELP {name} {text}\n"));
            }
            out.push_str(&format!("# TYPE {name} {kind}\n"));
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// Counts every request by its route template and status, and times it.
pub async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let method = request.method().to_string();
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    state
        .metrics
        .durations
        .get_or_create(&RouteLabels {
            route: route.clone(),
            method: method.clone(),
        })
        .observe(started.elapsed().as_secs_f64());
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
    // RFC 9457 §4.2.1: with `about:blank`, the title is the status phrase.
    let mut problem = Problem::new(
        code,
        "about:blank",
        code.canonical_reason().unwrap_or_default(),
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

/// Prometheus metrics, in the format `Accept` prefers: OpenMetrics 1.0 or the
/// classic text format 0.0.4 (the default): requests by route and status and
/// their durations, append and commit latency, the log's head and the read
/// model's progress, the build, and the process (CPU, memory, file
/// descriptors, threads). It needs an admin or auditor token (Prometheus sends
/// one with `authorization` in its scrape configuration); `serve
/// --metrics-addr` serves it without a token on a separate address instead.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text (OpenMetrics 1.0 or classic 0.0.4, as Accept asks)", body = String,
               content_type = "text/plain; version=0.0.4"),
              (status = 401, body = Problem), (status = 403, body = Problem)))]
async fn metrics(
    State(state): State<AppState>,
    auth: Auth,
    headers: axum::http::HeaderMap,
) -> Result<Response, Problem> {
    auth.require(&[Role::Admin, Role::Auditor])?;
    Ok(metrics_text(&state, &headers).await)
}

async fn metrics_text(state: &AppState, headers: &axum::http::HeaderMap) -> Response {
    let store = state.app.store().clone();
    if let Ok(Ok(head)) = tokio::task::spawn_blocking(move || store.head()).await {
        let folded = state.app.folded_seq();
        state.metrics.events.set(head.seq as i64);
        state.metrics.folded.set(folded as i64);
        state
            .metrics
            .lag
            .set(head.seq.saturating_sub(folded) as i64);
    }
    let (taken, latest) = state.app.snapshot_counts();
    state.metrics.snapshot_seq.set(latest as i64);
    state.metrics.snapshots_taken.set(taken as i64);
    state
        .metrics
        .text_bytes
        .set(i64::try_from(traguardo_projections::text::bytes_on_disk()).unwrap_or(i64::MAX));
    state
        .metrics
        .snapshot_refused
        .set(i64::from(state.app.start().refused()));
    let travel = state.app.time_travel_stats();
    let written = state.app.stream_snapshot_stats().written;
    for (gauge, value) in state.metrics.time_travel.iter().zip([
        travel.hits,
        travel.misses,
        travel.first_reads,
        travel.snapshots_used,
        travel.snapshots_refused,
        travel.dates_read,
        written,
    ]) {
        gauge.set(i64::try_from(value).unwrap_or(i64::MAX));
    }
    let format =
        MetricsFormat::negotiate(headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()));
    let Ok(text) = state.metrics.encode(format) else {
        return Problem::internal().into_response();
    };
    (
        [
            (header::CONTENT_TYPE, format.content_type()),
            (header::VARY, "accept"),
        ],
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
            axum::routing::get(
                |State(state): State<AppState>, headers: axum::http::HeaderMap| async move {
                    metrics_text(&state, &headers).await
                },
            ),
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

/// Process metrics, read from `/proc/self` at each scrape (Linux; elsewhere
/// there are none), under the names every Prometheus client library uses.
mod process {
    use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
    use prometheus_client::metrics::counter::ConstCounter;
    use prometheus_client::metrics::gauge::ConstGauge;

    /// Reads the process's figures when scraped.
    #[derive(Debug)]
    pub struct Collector;

    fn gauge(
        encoder: &mut DescriptorEncoder,
        name: &str,
        help: &str,
        value: f64,
    ) -> Result<(), std::fmt::Error> {
        let gauge = ConstGauge::new(value);
        gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)
    }

    impl prometheus_client::collector::Collector for Collector {
        #[cfg(target_os = "linux")]
        fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
            let Ok(me) = procfs::process::Process::myself() else {
                return Ok(());
            };
            if let Ok(stat) = me.stat() {
                let ticks = procfs::ticks_per_second() as f64;
                let cpu = ConstCounter::new((stat.utime + stat.stime) as f64 / ticks);
                cpu.encode(encoder.encode_descriptor(
                    "process_cpu_seconds",
                    "Total user and system CPU time spent in seconds",
                    None,
                    cpu.metric_type(),
                )?)?;
                gauge(
                    &mut encoder,
                    "process_resident_memory_bytes",
                    "Resident memory size in bytes",
                    (stat.rss * procfs::page_size()) as f64,
                )?;
                gauge(
                    &mut encoder,
                    "process_virtual_memory_bytes",
                    "Virtual memory size in bytes",
                    stat.vsize as f64,
                )?;
                gauge(
                    &mut encoder,
                    "process_threads",
                    "Number of OS threads in the process",
                    stat.num_threads as f64,
                )?;
                if let Ok(boot) = procfs::boot_time_secs() {
                    gauge(
                        &mut encoder,
                        "process_start_time_seconds",
                        "Start time of the process since unix epoch in seconds",
                        boot as f64 + stat.starttime as f64 / ticks,
                    )?;
                }
            }
            if let Ok(open) = me.fd_count() {
                gauge(
                    &mut encoder,
                    "process_open_fds",
                    "Number of open file descriptors",
                    open as f64,
                )?;
            }
            if let Ok(limits) = me.limits() {
                if let procfs::process::LimitValue::Value(max) = limits.max_open_files.soft_limit {
                    gauge(
                        &mut encoder,
                        "process_max_fds",
                        "Maximum number of open file descriptors",
                        max as f64,
                    )?;
                }
            }
            Ok(())
        }

        #[cfg(not(target_os = "linux"))]
        fn encode(&self, _encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_chooses_the_metrics_format() {
        use MetricsFormat::{Classic, OpenMetrics};
        assert_eq!(MetricsFormat::negotiate(None), Classic);
        assert_eq!(MetricsFormat::negotiate(Some("*/*")), Classic);
        assert_eq!(
            MetricsFormat::negotiate(Some("text/plain;version=0.0.4")),
            Classic
        );
        assert_eq!(
            MetricsFormat::negotiate(Some("application/openmetrics-text; version=1.0.0")),
            OpenMetrics
        );
        // What Prometheus itself sends.
        assert_eq!(
            MetricsFormat::negotiate(Some(
                "application/openmetrics-text;version=1.0.0;q=0.5,\
                 application/openmetrics-text;version=0.0.1;q=0.4,\
                 text/plain;version=0.0.4;q=0.3,*/*;q=0.2"
            )),
            OpenMetrics
        );
        assert_eq!(
            MetricsFormat::negotiate(Some("application/openmetrics-text;q=0.2,text/plain;q=0.9")),
            Classic
        );
    }

    #[test]
    fn the_classic_text_names_counters_and_infos_as_their_samples() {
        let metrics = Metrics::new();
        metrics.appended.inc();
        let text = metrics.encode(MetricsFormat::Classic).unwrap();
        assert!(
            text.contains("# TYPE traguardo_store_appended_events_total counter\n"),
            "{text}"
        );
        assert!(
            text.contains("# HELP traguardo_store_appended_events_total Events"),
            "{text}"
        );
        assert!(
            text.contains("\ntraguardo_store_appended_events_total 1\n"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE traguardo_build_info gauge\n"),
            "{text}"
        );
        assert!(!text.contains("# EOF"), "{text}");
        let open = metrics.encode(MetricsFormat::OpenMetrics).unwrap();
        assert!(open.ends_with("# EOF\n"), "{open}");
        assert!(
            open.contains("# TYPE traguardo_store_appended_events counter\n"),
            "{open}"
        );
    }
}
