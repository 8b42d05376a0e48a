//! The HTTP API v1 (DESIGN.md §5), on axum.
//!
//! - [`problem`]: problem+json errors and the JSON body extractor.
//! - [`auth`]: bearer tokens → principals.
//! - [`objectives`], [`plans`], [`log`], [`reports`]: the API's areas, each with
//!   its routes.
//! - [`ops`]: health, status, metrics, the OpenAPI document.
//! - [`openapi`]: what the OpenAPI document says beyond the handlers' annotations.
//! - [`tokens`]: bearer tokens: issue, list, revoke.
//! - [`transparency`]: signed checkpoints, proofs, cosignatures, the seal.
//! - [`min_seq`]: `?min_seq=N` / `X-Min-Seq`, waiting for a seq written
//!   through another instance.
//! - [`query`]: only the query parameters the document names, each once.
//! - `serve`: the connection loop, with its bounds ([`Limits`]).
//! - [`head_file`]: the highest head seen, kept beside a SQLite database.
//! - [`layers`]: compression, CORS, request ids, rate limits, caching headers.
//!
//! [`start`] binds, serves in the background and returns the bound address, so
//! tests bind port 0; [`serve_blocking`] is `traguardo serve`.

pub mod auth;
pub mod head_file;
pub mod layers;
pub mod log;
pub mod min_seq;
pub mod objectives;
pub mod openapi;
pub mod ops;
pub mod plans;
pub mod problem;
pub mod problem_types;
pub mod query;
pub mod reports;
mod serve;
mod support;
pub mod tokens;
pub use support::created;
pub mod transparency;

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::Router;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;
use traguardo_events::Clock;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::App;
use ops::BearerAuth;
use problem::Problem;
pub use serve::Limits;

/// The largest request body accepted.
pub const BODY_LIMIT: usize = 1024 * 1024;

/// `traguardo serve` options.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "TRAGUARDO_ADDR", default_value = "127.0.0.1:8080")]
    pub addr: String,
    /// An admin token accepted for this run (never stored), at least 32
    /// characters, until an admin token is issued. Prefer the environment or
    /// `--bootstrap-token-file`: a flag shows in `ps`.
    #[arg(long, env = "TRAGUARDO_BOOTSTRAP_TOKEN", hide_env_values = true)]
    pub bootstrap_token: Option<String>,
    /// A file whose first line is the bootstrap token (shows in neither `ps`
    /// nor the environment).
    #[arg(
        long,
        env = "TRAGUARDO_BOOTSTRAP_TOKEN_FILE",
        conflicts_with = "bootstrap_token"
    )]
    pub bootstrap_token_file: Option<std::path::PathBuf>,
    /// Load the bundled Alessandria 2022 plan into an empty database and print an
    /// admin token.
    #[arg(long)]
    pub demo: bool,
    /// Log format: `text` for people, `json` for log collectors.
    #[arg(long, env = "TRAGUARDO_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
    /// The secret key file (`traguardo key generate`) that signs checkpoints of
    /// the log; without it the checkpoint routes answer 404.
    #[arg(long, env = "TRAGUARDO_CHECKPOINT_KEY")]
    pub checkpoint_key: Option<std::path::PathBuf>,
    /// A witness's verifier key whose cosignatures are accepted. Repeatable.
    #[arg(long = "witness-vkey", env = "TRAGUARDO_WITNESS_VKEYS", value_delimiter = ',',
          value_parser = crate::transparency::parse_vkey)]
    pub witness_vkeys: Vec<traguardo_tlog::note::VerifierKey>,
    /// Connections open at once at most; at the cap a new connection replaces
    /// the one idle longest.
    #[arg(long, env = "TRAGUARDO_MAX_CONNECTIONS", default_value_t = 512,
          value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub max_connections: u64,
    /// Seconds a client has to send a request's head (and, on a kept-alive
    /// connection, to start its next request).
    #[arg(long, env = "TRAGUARDO_HEADER_TIMEOUT", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub header_timeout: u64,
    /// Seconds a request has to be answered (its body read, its handler run).
    #[arg(long, env = "TRAGUARDO_REQUEST_TIMEOUT", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub request_timeout: u64,
    /// Seconds requests in flight may take to finish on SIGTERM or Ctrl-C;
    /// connections still open then are closed.
    #[arg(long, env = "TRAGUARDO_SHUTDOWN_GRACE", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(0..=3600))]
    pub shutdown_grace: u64,
    /// Also serve `/metrics` without a token on this address (e.g. a private
    /// interface for Prometheus); on the main address it needs an admin or
    /// auditor token.
    #[arg(long, env = "TRAGUARDO_METRICS_ADDR")]
    pub metrics_addr: Option<String>,
    /// Memory for the objective streams kept for reads at a past seq or record
    /// time (`?seq`, `?as_of`), in MiB of estimated bytes; 0 reads the store
    /// every time.
    #[arg(long, env = "TRAGUARDO_TIME_TRAVEL_CACHE_MB", default_value_t = 512,
          value_parser = clap::value_parser!(u64).range(0..=1_048_576))]
    pub time_travel_cache_mb: u64,
    /// Store each objective's folded state every N versions of its stream
    /// (beside the log, in the background), where `?seq` and `?as_of` reads
    /// start instead of version 1; 0 writes none.
    #[arg(long, env = "TRAGUARDO_STREAM_SNAPSHOT_EVERY",
          default_value_t = crate::snapshots::STREAM_SNAPSHOT_EVERY)]
    pub stream_snapshot_every: u64,
    /// CORS origins and rate limits.
    #[command(flatten)]
    pub conventions: layers::Conventions,
    /// Take a snapshot of the read model in the background every N events
    /// folded, so that the next start folds only the events after it; off when
    /// absent. Snapshots are checked against the log at start, never trusted.
    #[arg(long, env = "TRAGUARDO_SNAPSHOT_EVERY",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub snapshot_every: Option<u64>,
}

impl ServeArgs {
    /// The bounds of the connection loop these options ask for.
    pub fn limits(&self) -> Limits {
        use std::time::Duration;
        Limits {
            max_connections: usize::try_from(self.max_connections).unwrap_or(usize::MAX),
            header_timeout: Duration::from_secs(self.header_timeout),
            request_timeout: Duration::from_secs(self.request_timeout),
            shutdown_grace: Duration::from_secs(self.shutdown_grace),
        }
    }
}

/// How a server runs besides its application and address.
#[derive(Debug, Default)]
pub struct ServerOptions {
    /// The bounds of the connection loop.
    pub limits: Limits,
    /// Where to serve `/metrics` without a token, if anywhere.
    pub metrics_addr: Option<String>,
    /// CORS origins and rate limits.
    pub conventions: layers::Conventions,
    /// Take a snapshot of the read model every this many events folded.
    pub snapshot_every: Option<u64>,
}

/// What every handler reaches through `State`: one shared [`Shared`] behind an
/// `Arc`. Axum clones a route's service, and with it the state of every layer
/// and handler, for each request: cloning the fields one by one cost seven
/// reference counts, touched by every core on every request (8% of a read's
/// CPU in a profile of 64 connections).
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    /// The state of a server.
    #[must_use]
    pub fn new(shared: Shared) -> Self {
        AppState(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What a server's handlers share.
pub struct Shared {
    /// The application.
    pub app: App,
    /// Request and append metrics.
    pub metrics: Arc<ops::Metrics>,
    /// Turns true when the server is shutting down (ends live feeds).
    pub shutdown: tokio::sync::watch::Receiver<bool>,
    /// The OpenAPI document, set once the router is built.
    pub openapi: Arc<std::sync::OnceLock<serde_json::Value>>,
    /// The signing key, the witnesses and the recent signed checkpoints.
    pub checkpoints: Arc<crate::transparency::Checkpoints>,
    /// The highest head this server has seen (`/status` checks the log still
    /// holds it).
    pub seen: Arc<head_file::Seen>,
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Traguardo API", version = "1.0.0"),
    modifiers(&BearerAuth),
    components(schemas(problem::Problem, problem::FieldErrorDoc))
)]
struct ApiDoc;

/// Every documented route, with the document its annotations make.
fn routes() -> OpenApiRouter<AppState> {
    let api = OpenApiRouter::<AppState>::new()
        .merge(objectives::router())
        .merge(plans::router())
        .merge(tokens::router())
        .merge(log::router())
        .merge(reports::router())
        .merge(transparency::router())
        .merge(ops::api_router())
        .merge(crate::web::api::router());
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(ops::router())
        .nest("/api/v1", api)
}

/// The OpenAPI document the server serves at `/api/v1/openapi.json`
/// (`traguardo openapi` prints it).
pub fn openapi_document() -> serde_json::Value {
    openapi::finish(&routes().split_for_parts().1)
}

/// The router and its OpenAPI document, built from the same route list, with
/// the default [`layers::Conventions`].
pub fn router(state: AppState) -> (Router, serde_json::Value) {
    router_with(state, &layers::Conventions::default())
}

/// The router and its OpenAPI document, with these CORS origins and rate limits.
pub fn router_with(
    state: AppState,
    conventions: &layers::Conventions,
) -> (Router, serde_json::Value) {
    let (router, doc) = routes().split_for_parts();
    let doc = openapi::finish(&doc);
    let _ = state.openapi.set(doc.clone());
    let router = router
        .merge(crate::web::router())
        .merge(problem_types::router())
        .fallback(|| async { Problem::not_found("no such route") })
        .method_not_allowed_fallback(|| async {
            Problem::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "Method not allowed",
                "this route does not answer that method",
            )
        })
        // These three read the route the request matched (its metrics
        // label, the query parameters it knows), so they wrap each route.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            min_seq::wait,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            query::check,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            ops::track,
        ))
        .with_state(state);
    // The rest wrap the router once, outside it: `Router::layer` would box
    // them around every route, and axum clones a route's whole boxed stack
    // for each request, once more inside every `from_fn` of it.
    let stack = tower::ServiceBuilder::new()
        .layer(axum::middleware::from_fn(problem::problems_only))
        .layer(CatchPanicLayer::custom(
            |_: Box<dyn std::any::Any + Send>| {
                use axum::response::IntoResponse;
                tracing::error!("a handler panicked");
                Problem::internal().into_response()
            },
        ))
        .layer(axum::middleware::from_fn(problem::head_limits))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(layers::request_span)
                .on_response(
                    tower_http::trace::DefaultOnResponse::new().level(tracing::Level::INFO),
                ),
        )
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .service(router);
    (layers::apply(stack, conventions), doc)
}

/// A running server.
pub struct Server {
    /// The address it listens on.
    pub addr: SocketAddr,
    /// Where `/metrics` is served without a token, if it is.
    pub metrics_addr: Option<SocketAddr>,
    app: App,
    stop: tokio::sync::watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    follower: tokio::task::JoinHandle<()>,
    snapshots: Option<tokio::task::JoinHandle<()>>,
    /// The head file, written once more when the server stops.
    seen: Arc<head_file::Seen>,
}

impl Server {
    /// The application it serves.
    pub fn app(&self) -> &App {
        &self.app
    }

    /// Stops taking connections, lets in-flight requests (and their appends)
    /// finish within the shutdown grace, closes what is still open then, ends
    /// live feeds, writes the head file with the last head, then stops the
    /// store's writer.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        self.follower.abort();
        if let Some(snapshots) = self.snapshots {
            snapshots.abort();
        }
        for task in self.tasks {
            if let Err(e) = task.await {
                tracing::error!(error = %e, "server task failed");
            }
        }
        let store = self.app.store().clone();
        let seen = self.seen;
        let _ = tokio::task::spawn_blocking(move || {
            let last = store.watch_head().borrow().clone();
            seen.record(&last);
            store.shutdown();
        })
        .await;
    }

    /// Waits for `signals`, then stops gracefully.
    pub async fn stop_on(self, signals: StopSignals) {
        signals.wait().await;
        tracing::info!("shutting down: finishing in-flight requests");
        self.stop().await;
    }
}

/// Binds `addr` and serves `app` in the background, without a checkpoint key, its
/// read model following the log (appends by other processes show up within a
/// second).
///
/// # Errors
/// When the address cannot be bound or the log cannot be followed.
pub async fn start(app: App, addr: &str) -> anyhow::Result<Server> {
    start_with(app, addr, crate::transparency::Checkpoints::disabled()).await
}

/// How often the server re-signs a checkpoint when the head has moved.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// The head file is written at most this often. Each write creates a file,
/// syncs it and renames it over the old one: once per commit, under hundreds
/// of durable writes a second, those syncs competed with the log's own.
const HEAD_FILE_EVERY: std::time::Duration = std::time::Duration::from_millis(50);

/// Binds `addr` and serves `app` in the background, signing checkpoints with
/// `checkpoints`' key (if any) every few seconds while the head moves.
///
/// # Errors
/// When the address cannot be bound.
pub async fn start_with(
    app: App,
    addr: &str,
    checkpoints: crate::transparency::Checkpoints,
) -> anyhow::Result<Server> {
    start_with_options(app, addr, checkpoints, ServerOptions::default()).await
}

/// As [`start_with`], with these CORS origins and rate limits.
///
/// # Errors
/// When the address cannot be bound.
pub async fn start_configured(
    app: App,
    addr: &str,
    checkpoints: crate::transparency::Checkpoints,
    conventions: layers::Conventions,
) -> anyhow::Result<Server> {
    let options = ServerOptions {
        conventions,
        ..ServerOptions::default()
    };
    start_with_options(app, addr, checkpoints, options).await
}

/// Binds `addr` (and `options.metrics_addr`) and serves `app` in the
/// background within `options.limits`, signing checkpoints with
/// `checkpoints`' key (if any), and writing down every head it sees in the
/// database's head file ([`head_file`]).
///
/// # Errors
/// When an address cannot be bound, the log cannot be followed, or the head
/// file cannot be read.
pub async fn start_with_options(
    app: App,
    addr: &str,
    checkpoints: crate::transparency::Checkpoints,
    options: ServerOptions,
) -> anyhow::Result<Server> {
    let checkpoints = Arc::new(checkpoints);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let metrics_listener = match &options.metrics_addr {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr} for metrics"))?,
        ),
        None => None,
    };
    let follower = app.follow()?;
    let snapshots = options
        .snapshot_every
        .map(|every| app.snapshot_every(every));
    let addr = listener.local_addr()?;
    let metrics_addr = match &metrics_listener {
        Some(listener) => Some(listener.local_addr()?),
        None => None,
    };
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    if checkpoints.enabled() {
        let (app, checkpoints) = (app.clone(), checkpoints.clone());
        let mut stopped = shutdown.clone();
        tokio::spawn(async move {
            loop {
                let (a, c) = (app.clone(), checkpoints.clone());
                match tokio::task::spawn_blocking(move || c.refresh(&**a.store())).await {
                    Ok(Err(e)) => tracing::error!(error = %e, "cannot sign a checkpoint"),
                    Err(e) => tracing::error!(error = %e, "the checkpoint task failed"),
                    Ok(Ok(_)) => {}
                }
                tokio::select! {
                    () = tokio::time::sleep(CHECKPOINT_EVERY) => {}
                    _ = stopped.wait_for(|s| *s) => break,
                }
            }
        });
    }
    let seen = Arc::new(head_file::Seen::open(head_file::path_for(
        app.store().as_ref(),
    ))?);
    {
        // Every head the log reaches, by this process or another, is written
        // down as it is seen, at most once per HEAD_FILE_EVERY (the heads in
        // between are covered by the next); `Server::stop` writes the last one.
        let mut head = app.store().watch_head();
        let seen = seen.clone();
        let mut stopped = shutdown.clone();
        seen.record(&head.borrow_and_update().clone());
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    changed = head.changed() => if changed.is_err() { break },
                    _ = stopped.wait_for(|s| *s) => break,
                }
                let now = head.borrow_and_update().clone();
                let recorder = seen.clone();
                let _ = tokio::task::spawn_blocking(move || recorder.record(&now)).await;
                tokio::select! {
                    () = tokio::time::sleep(HEAD_FILE_EVERY) => {}
                    _ = stopped.wait_for(|s| *s) => break,
                }
            }
        });
    }
    let state = AppState::new(Shared {
        app: app.clone(),
        metrics: Arc::new(ops::Metrics::new()),
        shutdown: shutdown.clone(),
        openapi: Arc::default(),
        checkpoints,
        seen: seen.clone(),
    });
    let mut tasks = Vec::new();
    if let Some(listener) = metrics_listener {
        let router = ops::metrics_router(state.clone());
        tasks.push(tokio::spawn(serve::run(
            listener,
            router,
            options.limits,
            shutdown.clone(),
        )));
    }
    state.metrics.watch_commits(app.store().as_ref());
    let (router, _) = router_with(state, &options.conventions);
    tasks.push(tokio::spawn(serve::run(
        listener,
        router,
        options.limits,
        shutdown,
    )));
    Ok(Server {
        addr,
        metrics_addr,
        app,
        stop,
        tasks,
        follower,
        snapshots,
        seen,
    })
}

/// SIGTERM and Ctrl-C, listened for from the moment this is made (before the
/// server says where it listens, so a supervisor's early SIGTERM is not lost).
pub struct StopSignals {
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
}

impl StopSignals {
    /// Starts listening.
    ///
    /// # Errors
    /// When the signal handlers cannot be installed.
    pub fn listen() -> std::io::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Ok(StopSignals {
                terminate: signal(SignalKind::terminate())?,
                interrupt: signal(SignalKind::interrupt())?,
            })
        }
        #[cfg(not(unix))]
        Ok(StopSignals {})
    }

    async fn wait(mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.terminate.recv() => {},
            _ = self.interrupt.recv() => {},
        }
        #[cfg(not(unix))]
        {
            let _ = &mut self;
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// The bundled Alessandria 2022 plan (`seeds/alessandria-2022.json`).
pub const DEMO_PLAN: &str = include_str!("../../seeds/alessandria-2022.json");

/// `traguardo serve`: runs until SIGTERM or Ctrl-C.
///
/// # Errors
/// When the database cannot be opened, the demo cannot be loaded or the address
/// cannot be bound.
pub fn serve_blocking(db: &Path, args: ServeArgs) -> anyhow::Result<ExitCode> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,tower_http=info".into());
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    // A second server in one process (tests) keeps the first subscriber.
    let _ = if args.log_format == "json" {
        logs.json().try_init()
    } else {
        logs.try_init()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let mut token = args.bootstrap_token.clone();
    if let Some(path) = &args.bootstrap_token_file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the bootstrap token file {}", path.display()))?;
        token = Some(text.lines().next().unwrap_or_default().trim().to_string());
    }
    if let Some(problem) = token.as_deref().and_then(crate::app::bootstrap_problem) {
        anyhow::bail!("{problem}");
    }
    runtime.block_on(async move {
        if args.demo {
            crate::web::demo::prepare(db).await?;
        }
        let app = App::open(db, Clock::system())?;
        app.set_time_travel_budget(
            usize::try_from(args.time_travel_cache_mb << 20).unwrap_or(usize::MAX),
        );
        app.set_stream_snapshot_every(args.stream_snapshot_every);
        if args.demo && token.is_none() {
            let mut secret = [0u8; 24];
            getrandom::fill(&mut secret).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
            token = Some(format!("tg_demo_{}", hex::encode(secret)));
        }
        match &token {
            Some(token) => app.set_bootstrap_token(token),
            None => tracing::warn!(
                "no bootstrap token: set TRAGUARDO_BOOTSTRAP_TOKEN or --bootstrap-token to administer"
            ),
        }
        let signer = match &args.checkpoint_key {
            Some(path) => Some(crate::transparency::read_signer_key(path)?),
            None => None,
        };
        let checkpoints =
            crate::transparency::Checkpoints::new(signer, args.witness_vkeys.clone())
                .map_err(|e| anyhow::anyhow!(e))?;
        if let Some(vkey) = checkpoints.vkey() {
            println!("signing checkpoints as {vkey}");
        }
        if let Some(path) = head_file::path_for(app.store().as_ref()) {
            if let Some(seen) = head_file::read(&path)? {
                let store = app.store().clone();
                let kept = tokio::task::spawn_blocking(move || head_file::check(store.as_ref(), &seen))
                    .await?;
                if let Err(lost) = kept {
                    anyhow::bail!(
                        "refusing to serve {}: {lost}. Restore a backup, or check the log with \
                         `traguardo verify`; to serve it as it is, delete {}",
                        app.store().location(),
                        path.display()
                    );
                }
            }
        }
        let signals = StopSignals::listen()?;
        let options = ServerOptions {
            limits: args.limits(),
            metrics_addr: args.metrics_addr.clone(),
            conventions: args.conventions.clone(),
            snapshot_every: args.snapshot_every,
        };
        let server = start_with_options(app, &args.addr, checkpoints, options).await?;
        println!("traguardo listening on http://{}", server.addr);
        if let Some(addr) = server.metrics_addr {
            println!("metrics (no token): http://{addr}/metrics");
        }
        println!("API base: http://{}/api/v1  (OpenAPI: /api/v1/openapi.json)", server.addr);
        if args.demo {
            if let Some(token) = &token {
                println!("admin token: {token}");
                println!(
                    "try: curl -H 'Authorization: Bearer {token}' http://{}/api/v1/plans/2022/scores",
                    server.addr
                );
            }
        }
        server.stop_on(signals).await;
        Ok(ExitCode::SUCCESS)
    })
}
