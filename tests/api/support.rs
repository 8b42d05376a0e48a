//! Shared set-up: a fresh database in a temporary folder, a manual clock, the
//! Alessandria 2022 seed, and the principals of each role.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use chrono::{NaiveDate, TimeZone, Utc};
use traguardo::app::Written;
use traguardo::commands::{ObjectiveCommand, Principal, RevisionRequest};
use traguardo::{App, AppError};
use traguardo_events::model::Role;
use traguardo_events::Clock;

/// The bundled seed.
pub fn seed_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds/alessandria-2022.json")
}

/// A date, for brevity.
pub fn d(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("a test date")
}

/// Runs a future to completion on a small runtime.
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(future)
}

/// A fresh database with a manual clock.
pub struct World {
    /// Keeps the folder alive.
    pub dir: tempfile::TempDir,
    /// The application over the database.
    pub app: App,
    /// The clock that stamps record times.
    pub clock: Clock,
}

impl World {
    /// An empty database; the clock stands at 2022-01-10 09:00 UTC.
    pub fn new() -> World {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let clock = Clock::manual(Utc.with_ymd_and_hms(2022, 1, 10, 9, 0, 0).unwrap());
        let app =
            App::open(dir.path().join("traguardo.db"), clock.clone()).expect("the database opens");
        World { dir, app, clock }
    }

    /// A database with the Alessandria 2022 plan loaded.
    pub fn with_seed() -> World {
        let world = World::new();
        let text = std::fs::read_to_string(seed_path()).expect("the seed is readable");
        let plan = traguardo::plan_document::parse(&text).expect("the seed is valid");
        block_on(world.app.import_plan(&plan, &admin())).expect("the seed loads");
        world
    }

    /// The database file.
    pub fn db(&self) -> PathBuf {
        self.dir.path().join("traguardo.db")
    }

    /// Moves the clock (record time) to 09:00 UTC of `date`.
    pub fn on(&self, date: &str) -> &Self {
        let date = d(date);
        self.clock
            .set(Utc.from_utc_datetime(&date.and_hms_opt(9, 0, 0).unwrap()));
        self
    }

    /// Runs an objective command as `who`.
    pub fn run(
        &self,
        key: &str,
        command: ObjectiveCommand,
        who: &Principal,
    ) -> Result<Written, AppError> {
        block_on(self.app.execute(key, &command, who, None, None))
    }

    /// Starts phase `phase` of `key` on `on` as the unit's manager.
    pub fn start(&self, key: &str, phase: u32, on: &str) -> Result<Written, AppError> {
        self.run(
            key,
            ObjectiveCommand::StartPhase {
                phase,
                on: d(on),
                note: None,
                backfill: None,
            },
            &manager_of(key),
        )
    }

    /// Completes phase `phase` of `key` on `on` as the unit's manager.
    pub fn complete(&self, key: &str, phase: u32, on: &str) -> Result<Written, AppError> {
        self.run(
            key,
            ObjectiveCommand::CompletePhase {
                phase,
                on: d(on),
                note: None,
                evidence: vec![],
                backfill: None,
            },
            &manager_of(key),
        )
    }

    /// Records a revision as the admin.
    pub fn revise(&self, year: i32, request: RevisionRequest) -> Result<Written, AppError> {
        block_on(self.app.revise(year, &request, &admin(), None))
    }
}

/// The control office.
pub fn admin() -> Principal {
    Principal::new("Programmazione e Controllo", Role::Admin, vec![])
}

/// A manager of `unit`.
pub fn manager(unit: &str) -> Principal {
    Principal::new(
        format!("Dirigente {unit}"),
        Role::Manager,
        vec![unit.into()],
    )
}

/// The manager of the unit of objective `key` (`2022-2250-A` → unit 2250).
pub fn manager_of(key: &str) -> Principal {
    manager(key.split('-').nth(1).expect("a key year-unit-letter"))
}

/// The Nucleo di Valutazione.
pub fn validator() -> Principal {
    Principal::new("Nucleo di Valutazione", Role::Validator, vec![])
}

/// An auditor.
pub fn auditor() -> Principal {
    Principal::new("Revisore", Role::Auditor, vec![])
}

/// A PostgreSQL database of one test's own, dropped when the test ends, however
/// it ends (the pattern of `events/src/store_tests.rs`). PostgreSQL is found at
/// `TRAGUARDO_TEST_PG` (a server URL without a database, default
/// `postgres://postgres@127.0.0.1:5432`); a test never skips: with no server to
/// reach it fails and says how to start one.
pub struct PgDb {
    name: String,
    /// The database's URL.
    pub url: String,
}

impl PgDb {
    /// The server's URL, without a database.
    pub fn server() -> String {
        std::env::var("TRAGUARDO_TEST_PG")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
            .trim_end_matches('/')
            .to_string()
    }

    /// Runs `sql` on the server's `postgres` database, on a thread of its own:
    /// the blocking client may not run inside the test's async runtime.
    fn admin(sql: String) -> Result<(), postgres::Error> {
        std::thread::scope(|scope| {
            scope
                .spawn(move || Self::connect_admin().batch_execute(&sql))
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }

    fn connect_admin() -> postgres::Client {
        let url = format!("{}/postgres", Self::server());
        postgres::Client::connect(&url, postgres::NoTls).unwrap_or_else(|e| {
            panic!(
                "PostgreSQL is not answering at {url} ({e}). Start it with \
                 `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`, \
                 or set TRAGUARDO_TEST_PG to a server URL"
            )
        })
    }

    /// A fresh, empty database.
    pub fn create() -> PgDb {
        let name = format!("traguardo_api_{}", uuid::Uuid::now_v7().simple());
        Self::admin(format!(
            "CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8'"
        ))
        .expect("a fresh database");
        let url = format!("{}/{name}", Self::server());
        PgDb { name, url }
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        // FORCE ends the connections of servers a failed test left running.
        let dropped = Self::admin(format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ));
        if let Err(e) = dropped {
            eprintln!("could not drop test database {}: {e}", self.name);
        }
    }
}

/// Where a test's log lives: a SQLite file in a folder of its own, or a
/// PostgreSQL database of its own.
pub enum Db {
    /// A SQLite file.
    Sqlite(tempfile::TempDir),
    /// A PostgreSQL database.
    Postgres(PgDb),
}

impl Db {
    /// A new SQLite file (created by the first process that opens it).
    pub fn sqlite() -> Db {
        Db::Sqlite(tempfile::tempdir().expect("a temporary folder"))
    }

    /// A new PostgreSQL database.
    pub fn postgres() -> Db {
        Db::Postgres(PgDb::create())
    }

    /// What `--db` is given.
    pub fn target(&self) -> String {
        match self {
            Db::Sqlite(dir) => dir.path().join("traguardo.db").display().to_string(),
            Db::Postgres(db) => db.url.clone(),
        }
    }
}

/// The admin token every [`Serve`] process accepts.
pub const SERVE_ADMIN: &str = "test-bootstrap-admin-token-of-serve-processes";

/// Runs `traguardo --db DB ARGS…` to the end.
pub fn traguardo(db: &str, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_traguardo"))
        .arg("--db")
        .arg(db)
        .args(args)
        .env_remove("TRAGUARDO_DB")
        .output()
        .expect("the binary runs")
}

/// A `traguardo serve` process on a loopback port; killed when dropped.
pub struct Serve {
    child: std::process::Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
}

impl Serve {
    /// Starts `traguardo --db DB serve` and waits until it listens.
    pub fn start(db: &str) -> Serve {
        Self::start_with(db, &[], "warn").0
    }

    /// Starts `traguardo --db DB serve ARGS…` with `RUST_LOG=log` and waits
    /// until it listens; also answers what it printed until then (its logs).
    pub fn start_with(db: &str, args: &[&str], log: &str) -> (Serve, Vec<String>) {
        use std::io::{BufRead, BufReader};
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_traguardo"))
            .arg("--db")
            .arg(db)
            .args(["serve", "--addr", "127.0.0.1:0"])
            .args(args)
            .env("TRAGUARDO_BOOTSTRAP_TOKEN", SERVE_ADMIN)
            .env("RUST_LOG", log)
            .env_remove("TRAGUARDO_DB")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .expect("the binary starts");
        let mut lines = BufReader::new(child.stdout.take().expect("its stdout")).lines();
        let mut printed = Vec::new();
        let base = loop {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(addr) = line.strip_prefix("traguardo listening on ") {
                        break addr.trim().to_string();
                    }
                    printed.push(line);
                }
                _ => {
                    let status = child.wait();
                    panic!("traguardo serve --db {db} did not start: {status:?}");
                }
            }
        };
        // Keep reading what it prints, so that it never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        (Serve { child, base }, printed)
    }

    /// The URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, then waits for a clean exit.
    pub fn stop(mut self) {
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(sent.success());
        let status = self.child.wait().expect("the server exits");
        assert!(
            status.success(),
            "serve exits cleanly on SIGTERM: {status:?}"
        );
    }

    /// SIGKILL, at once, and waits for it to be gone.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A server started in this process on a loopback port, on its own database,
/// with `admin` as its bootstrap token and the seed loaded: the harness of the
/// tests of the API's conventions and of what the fuzzer asks.
pub struct SeededApi {
    _dir: tempfile::TempDir,
    server: Option<traguardo::http::Server>,
    base: String,
    pub client: reqwest::Client,
    admin: &'static str,
}

impl SeededApi {
    pub async fn start(
        admin: &'static str,
        conventions: traguardo::http::layers::Conventions,
    ) -> SeededApi {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let app = App::open(dir.path().join("traguardo.db"), Clock::system())
            .expect("the database opens");
        app.set_bootstrap_token(admin);
        let server = traguardo::http::start_configured(
            app,
            "127.0.0.1:0",
            traguardo::transparency::Checkpoints::disabled(),
            conventions,
        )
        .await
        .expect("the server starts");
        let api = SeededApi {
            _dir: dir,
            base: format!("http://{}", server.addr),
            server: Some(server),
            client: reqwest::Client::new(),
            admin,
        };
        let plan: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(seed_path()).unwrap()).unwrap();
        let response = api
            .send(
                reqwest::Method::POST,
                "/api/v1/plans",
                Some(admin),
                Some(plan),
                &[],
            )
            .await;
        assert_eq!(response.status(), reqwest::StatusCode::CREATED);
        assert_eq!(
            response.headers()[reqwest::header::LOCATION],
            "/api/v1/plans/2022"
        );
        api
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<serde_json::Value>,
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut request = self.client.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send().await.expect("the server answers")
    }

    /// A token issued by the admin, its `Location` checked.
    pub async fn token(&self, actor: &str, role: &str, units: &[&str]) -> String {
        let response = self
            .send(
                reqwest::Method::POST,
                "/api/v1/tokens",
                Some(self.admin),
                Some(serde_json::json!({"actor": actor, "role": role, "units": units})),
                &[],
            )
            .await;
        assert_eq!(response.status(), reqwest::StatusCode::CREATED);
        let location = response.headers()[reqwest::header::LOCATION]
            .to_str()
            .unwrap();
        assert!(location.starts_with("/api/v1/tokens/"), "{location}");
        let body: serde_json::Value = response.json().await.unwrap();
        body["token"].as_str().unwrap().to_string()
    }
}

impl Drop for SeededApi {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                handle.spawn(server.stop());
            }
        }
    }
}
