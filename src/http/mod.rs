//! The HTTP API v1 (DESIGN.md §5), on axum.
//!
//! - [`problem`]: problem+json errors and the JSON body extractor.
//! - [`auth`]: bearer tokens → principals.
//! - [`objectives`], [`plans`], [`log`], [`reports`]: the API's areas, each with
//!   its routes.
//! - [`ops`]: health, status, metrics, the OpenAPI document.
//! - [`transparency`]: signed checkpoints, proofs, cosignatures, the seal.
//! - [`min_seq`]: `?min_seq=N` / `X-Min-Seq`, waiting for a seq written
//!   through another instance.
//! - [`layers`]: compression, CORS, request ids, rate limits, caching headers.
//!
//! [`start`] binds, serves in the background and returns the bound address, so
//! tests bind port 0; [`serve_blocking`] is `traguardo serve`.

pub mod auth;
pub mod layers;
pub mod log;
pub mod min_seq;
pub mod objectives;
pub mod ops;
pub mod plans;
pub mod problem;
pub mod problem_types;
pub mod reports;
mod support;
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

/// The largest request body accepted.
pub const BODY_LIMIT: usize = 1024 * 1024;

/// `traguardo serve` options.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "TRAGUARDO_ADDR", default_value = "127.0.0.1:8080")]
    pub addr: String,
    /// An admin token accepted for this run (never stored).
    #[arg(long, env = "TRAGUARDO_BOOTSTRAP_TOKEN", hide_env_values = true)]
    pub bootstrap_token: Option<String>,
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
    /// CORS origins and rate limits.
    #[command(flatten)]
    pub conventions: layers::Conventions,
}

/// What every handler reaches through `State`.
#[derive(Clone)]
pub struct AppState {
    /// The application.
    pub app: App,
    /// Request and append metrics.
    pub metrics: Arc<ops::Metrics>,
    /// Turns true when the server is shutting down (ends live feeds).
    pub shutdown: tokio::sync::watch::Receiver<bool>,
    /// The OpenAPI document, set once the router is built.
    pub openapi: Arc<std::sync::OnceLock<utoipa::openapi::OpenApi>>,
    /// The signing key, the witnesses and the recent signed checkpoints.
    pub checkpoints: Arc<crate::transparency::Checkpoints>,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Traguardo API",
        description = "Event-sourced tracking of a municipality's Piano degli Obiettivi (DESIGN.md §5).",
        version = "1"
    ),
    modifiers(&BearerAuth),
    components(schemas(problem::Problem, problem::FieldErrorDoc))
)]
struct ApiDoc;

/// The router and its OpenAPI document, built from the same route list, with
/// the default [`layers::Conventions`].
pub fn router(state: AppState) -> (Router, utoipa::openapi::OpenApi) {
    router_with(state, &layers::Conventions::default())
}

/// The router and its OpenAPI document, with these CORS origins and rate limits.
pub fn router_with(
    state: AppState,
    conventions: &layers::Conventions,
) -> (Router, utoipa::openapi::OpenApi) {
    let api = OpenApiRouter::<AppState>::new()
        .merge(objectives::router())
        .merge(plans::router())
        .merge(log::router())
        .merge(reports::router())
        .merge(transparency::router())
        .merge(ops::api_router())
        .merge(crate::web::api::router());
    let (router, doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(ops::router())
        .nest("/api/v1", api)
        .split_for_parts();
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
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            min_seq::wait,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            ops::track,
        ))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(layers::request_span)
                .on_response(
                    tower_http::trace::DefaultOnResponse::new().level(tracing::Level::INFO),
                ),
        )
        .layer(CatchPanicLayer::custom(
            |_: Box<dyn std::any::Any + Send>| {
                use axum::response::IntoResponse;
                tracing::error!("a handler panicked");
                Problem::internal().into_response()
            },
        ))
        .with_state(state);
    (layers::apply(router, conventions), doc)
}

/// A running server.
pub struct Server {
    /// The address it listens on.
    pub addr: SocketAddr,
    app: App,
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    follower: tokio::task::JoinHandle<()>,
}

impl Server {
    /// The application it serves.
    pub fn app(&self) -> &App {
        &self.app
    }

    /// Stops taking connections, lets in-flight requests (and their appends)
    /// finish, ends live feeds, then stops the store's writer.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        self.follower.abort();
        match self.task.await {
            Ok(Err(e)) => tracing::error!(error = %e, "server error"),
            Err(e) => tracing::error!(error = %e, "server task failed"),
            Ok(Ok(())) => {}
        }
        let store = self.app.store().clone();
        let _ = tokio::task::spawn_blocking(move || store.shutdown()).await;
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
    start_configured(app, addr, checkpoints, layers::Conventions::default()).await
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
    let checkpoints = Arc::new(checkpoints);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let follower = app.follow()?;
    let addr = listener.local_addr()?;
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
    let state = AppState {
        app: app.clone(),
        metrics: Arc::new(ops::Metrics::new()),
        shutdown: shutdown.clone(),
        openapi: Arc::default(),
        checkpoints,
    };
    state.metrics.watch_commits(app.store().as_ref());
    let (router, _) = router_with(state, &conventions);
    let mut until_stopped = shutdown;
    let task = tokio::spawn(async move {
        let service = router.into_make_service_with_connect_info::<SocketAddr>();
        axum::serve(listener, service)
            .with_graceful_shutdown(async move {
                let _ = until_stopped.wait_for(|stopped| *stopped).await;
            })
            .await
    });
    Ok(Server {
        addr,
        app,
        stop,
        task,
        follower,
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
    runtime.block_on(async move {
        if args.demo {
            crate::web::demo::prepare(db).await?;
        }
        let app = App::open(db, Clock::system())?;
        let mut token = args.bootstrap_token.clone();
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
        let signals = StopSignals::listen()?;
        let server = start_configured(app, &args.addr, checkpoints, args.conventions).await?;
        println!("traguardo listening on http://{}", server.addr);
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
