//! `traguardo-bench web`: the pages under load. The demo (plan, accounts, the
//! year 2022) in a scratch database; the real router, in this process, with a
//! layer that times every request server-side (from the request reaching the
//! router to the response being ready); 16 sessions logged in through the login
//! form, each loading every page its role may see, round after round, at the
//! same time. Prints p50/p99/max per page, and what the first load of a page
//! costs on the wire: the HTML and every asset it references, gzipped as served.
//!
//! Nothing here asserts a time: it prints what it measured beside the targets
//! (p99 ≤ 30 ms per page, first load ≤ 500 KB compressed).

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use chrono::{TimeZone, Utc};
use http_body_util::BodyExt;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use traguardo_events::model::Role;
use traguardo_events::Clock;

use traguardo::http::AppState;
use traguardo::web::demo::ACCOUNTS;
use traguardo::App;

/// `traguardo bench-web` options.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchWebArgs {
    /// Concurrent logged-in sessions.
    #[arg(long, default_value_t = 16)]
    pub sessions: usize,
    /// Rounds of every page per session.
    #[arg(long, default_value_t = 25)]
    pub rounds: usize,
    /// Where the scratch database goes.
    #[arg(long, default_value = "/tmp")]
    pub dir: std::path::PathBuf,
}

type Timings = Arc<Mutex<BTreeMap<String, Vec<Duration>>>>;

/// Runs the benchmark.
///
/// # Errors
/// When the scratch database or the server cannot be set up, or a page fails.
pub fn run(args: BenchWebArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(bench(args))
}

async fn bench(args: BenchWebArgs) -> anyhow::Result<ExitCode> {
    let dir = tempfile_dir(&args.dir)?;
    let db = dir.join("bench-web.db");
    {
        let clock = Clock::manual(
            Utc.with_ymd_and_hms(2022, 1, 20, 9, 0, 0)
                .single()
                .unwrap_or_default(),
        );
        let app = App::open(&db, clock.clone())?;
        traguardo::web::demo::load_plan(&app).await?;
        traguardo::web::demo::create_accounts(&app).await?;
        traguardo::web::demo::play_year(
            &app,
            &clock,
            chrono::NaiveDate::from_ymd_opt(2023, 3, 31).unwrap_or_default(),
        )
        .await?;
        let store = app.store().clone();
        drop(app);
        tokio::task::spawn_blocking(move || store.shutdown()).await?;
    }
    let app = App::open(&db, Clock::system())?;
    let revision = app
        .read(|r| r.plan(2022).and_then(|p| p.revisions.first().map(|r| r.id)))
        .context("the demo has a revision")?;
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let state = AppState::new(traguardo::http::Shared {
        app: app.clone(),
        metrics: Arc::new(traguardo::http::ops::Metrics::new()),
        shutdown,
        openapi: Arc::default(),
        checkpoints: Arc::new(traguardo::transparency::Checkpoints::disabled()),
        seen: Arc::new(traguardo::http::head_file::Seen::none()),
    });
    let timings: Timings = Arc::default();
    let recorded = timings.clone();
    let (router, _) = traguardo::http::router(state);
    let router = router.layer(axum::middleware::from_fn(
        move |req: Request, next: Next| {
            let recorded = recorded.clone();
            async move {
                let label = label_of(req.uri().path(), req.uri().query());
                let started = Instant::now();
                let response: Response = next.run(req).await;
                let elapsed = started.elapsed();
                if let Some(label) = label {
                    recorded
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .entry(label)
                        .or_default()
                        .push(elapsed);
                }
                response
            }
        },
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let mut until = stop.subscribe();
    let server = tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            let _ = until.wait_for(|s| *s).await;
        })
        .await
    });
    let base = format!("http://{addr}");
    let client: Client<HttpConnector, Body> = Client::builder(TokioExecutor::new()).build_http();

    // Log in 16 sessions over the demo accounts (several per account).
    let mut sessions = Vec::new();
    for i in 0..args.sessions {
        let account = &ACCOUNTS[i % ACCOUNTS.len()];
        let cookie = login(&client, &base, account.username, account.password).await?;
        sessions.push((account.role, cookie));
    }
    timings.lock().unwrap_or_else(|e| e.into_inner()).clear();
    let pages = |role: Role| -> Vec<String> {
        let mut p = vec![
            "/".to_string(),
            "/piani/2022".into(),
            "/obiettivi/2022-2250-A".into(),
            "/obiettivi/2022-2249-C".into(),
            "/obiettivi/2022-2250-A/storia".into(),
            "/obiettivi/2022-2250-A/storia?at=2022-07-25&as_of=2022-07-25T12:00".into(),
            "/piani/2022/rimodulazioni".into(),
            format!("/piani/2022/rimodulazioni/{revision}"),
            "/piani/2022/segnalazioni".into(),
            "/piani/2022/storia".into(),
            "/piani/2022/relazione".into(),
            "/validazioni".into(),
        ];
        if matches!(role, Role::Auditor | Role::Admin) {
            p.push("/integrita".into());
        }
        if role == Role::Admin {
            p.push("/amministrazione".into());
        }
        p
    };
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (role, cookie) in sessions.clone() {
        let client = client.clone();
        let base = base.clone();
        let pages = pages(role);
        let rounds = args.rounds;
        tasks.push(tokio::spawn(async move {
            for _ in 0..rounds {
                for page in &pages {
                    let (status, _) =
                        get(&client, &format!("{base}{page}"), Some(&cookie), true).await?;
                    anyhow::ensure!(status == 200, "{page} answered {status}");
                }
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let wall = started.elapsed();

    // First load: the HTML of a page and every asset it names, as transferred.
    let (_, html) = get(
        &client,
        &format!("{base}/piani/2022"),
        Some(&sessions[0].1),
        true,
    )
    .await?;
    let (_, plain) = get(
        &client,
        &format!("{base}/piani/2022"),
        Some(&sessions[0].1),
        false,
    )
    .await?;
    let text = String::from_utf8_lossy(&plain).to_string();
    let mut assets: Vec<String> = text
        .split("\"/static/")
        .skip(1)
        .filter_map(|s| s.split('"').next().map(|p| format!("/static/{p}")))
        .collect();
    // The stylesheet's fonts too (the browser fetches those the page uses).
    for a in traguardo::web::assets::ASSETS
        .iter()
        .filter(|a| a.name.ends_with(".woff2"))
    {
        assets.push(format!("/static/{}", a.path));
    }
    assets.sort();
    assets.dedup();
    let mut first_load = html.len();
    let mut lines = vec![format!(
        "  HTML /piani/2022: {} B gzipped ({} B plain)",
        html.len(),
        plain.len()
    )];
    for a in &assets {
        let (status, body) = get(&client, &format!("{base}{a}"), None, true).await?;
        anyhow::ensure!(status == 200, "{a} answered {status}");
        first_load += body.len();
        lines.push(format!("  {a}: {} B", body.len()));
    }

    let timings = timings.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let total: usize = timings.values().map(Vec::len).sum();
    println!("bench-web: {} sessions × {} rounds, {total} page loads in {:.1} s ({:.0} pages/s), server-side times:", args.sessions, args.rounds, wall.as_secs_f64(), total as f64 / wall.as_secs_f64());
    println!(
        "  {:<48} {:>6} {:>9} {:>9} {:>9}",
        "page", "n", "p50 ms", "p99 ms", "max ms"
    );
    let mut all: Vec<Duration> = Vec::new();
    let mut worst = Duration::ZERO;
    for (label, mut times) in timings {
        times.sort();
        let p99 = pct(&times, 99.0);
        worst = worst.max(p99);
        println!(
            "  {:<48} {:>6} {:>9.2} {:>9.2} {:>9.2}",
            label,
            times.len(),
            ms(pct(&times, 50.0)),
            ms(p99),
            ms(*times.last().unwrap_or(&Duration::ZERO))
        );
        all.extend(times);
    }
    all.sort();
    println!(
        "  {:<48} {:>6} {:>9.2} {:>9.2} {:>9.2}",
        "all pages",
        all.len(),
        ms(pct(&all, 50.0)),
        ms(pct(&all, 99.0)),
        ms(*all.last().unwrap_or(&Duration::ZERO))
    );
    println!("  worst page p99: {:.2} ms (target ≤ 30 ms)", ms(worst));
    println!(
        "first load of /piani/2022 with its assets: {:.1} KB compressed (target ≤ 500 KB)",
        first_load as f64 / 1024.0
    );
    for l in lines {
        println!("{l}");
    }
    let _ = stop.send(true);
    let _ = server.await;
    let store = app.store().clone();
    drop(app);
    tokio::task::spawn_blocking(move || store.shutdown()).await?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(ExitCode::SUCCESS)
}

fn tempfile_dir(parent: &std::path::Path) -> anyhow::Result<std::path::PathBuf> {
    let dir = parent.join(format!(
        "traguardo-bench-web-{:016x}",
        rand::random::<u64>()
    ));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// The page a path is, with ids folded so that each page is one line.
fn label_of(path: &str, query: Option<&str>) -> Option<String> {
    if path.starts_with("/static/") || path.starts_with("/accesso") || path.starts_with("/api/") {
        return None;
    }
    let mut label: String = path
        .split('/')
        .map(|s| if s.len() > 30 { "{id}" } else { s })
        .collect::<Vec<_>>()
        .join("/");
    if query.is_some_and(|q| q.contains("as_of")) {
        label.push_str("?as_of=…");
    }
    Some(label)
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[i.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn get(
    client: &Client<HttpConnector, Body>,
    url: &str,
    cookie: Option<&str>,
    gzip: bool,
) -> anyhow::Result<(u16, Vec<u8>)> {
    let mut req = axum::http::Request::get(url).body(Body::empty())?;
    if let Some(c) = cookie {
        req.headers_mut()
            .insert(header::COOKIE, HeaderValue::from_str(c)?);
    }
    if gzip {
        req.headers_mut()
            .insert(header::ACCEPT_ENCODING, HeaderValue::from_static("gzip"));
    }
    let res = client.request(req).await?;
    let status = res.status().as_u16();
    let body = res.into_body().collect().await?.to_bytes().to_vec();
    Ok((status, body))
}

/// Logs in through the form, answering the session cookie (`name=value`).
async fn login(
    client: &Client<HttpConnector, Body>,
    base: &str,
    username: &str,
    password: &str,
) -> anyhow::Result<String> {
    let res = client
        .request(axum::http::Request::get(format!("{base}/accesso")).body(Body::empty())?)
        .await?;
    let pre = set_cookie(&res, "tg_accesso").context("the login form sets its cookie")?;
    let html = String::from_utf8_lossy(&res.into_body().collect().await?.to_bytes()).to_string();
    let csrf = html
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .context("the login form has a CSRF token")?
        .to_string();
    let body = serde_urlencoded::to_string([
        ("csrf", csrf.as_str()),
        ("username", username),
        ("password", password),
        ("dopo", "/"),
    ])?;
    let mut req = axum::http::Request::post(format!("{base}/accesso")).body(Body::from(body))?;
    req.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-www-form-urlencoded"),
    );
    req.headers_mut()
        .insert(header::COOKIE, HeaderValue::from_str(&pre)?);
    let res = client.request(req).await?;
    set_cookie(&res, traguardo::web::session::COOKIE)
        .context("a successful login sets the session cookie")
}

fn set_cookie<B>(res: &axum::http::Response<B>, name: &str) -> Option<String> {
    res.headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .find(|kv| kv.starts_with(&format!("{name}=")) && kv.len() > name.len() + 1)
        .map(str::to_string)
}
