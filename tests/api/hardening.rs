//! What an attacker and a careless client found (issue 13), each against the
//! real server: idle and slow sockets, shutdown under a half-sent request,
//! errors that were not problem+json, authorization before validation,
//! `/metrics`, the report cache, a lost `-wal` file, a full disk and a
//! read-only database.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use reqwest::StatusCode;
use serde_json::{json, Value};
use traguardo::App;
use traguardo_events::Clock;

use crate::support::{seed_path, SERVE_ADMIN};

const ADMIN: &str = "hardening-admin-token-of-in-process-servers";

/// The longest a test waits for something that must happen (a process to
/// exit, a socket to answer) before it calls it a hang. Not a performance
/// bound: what is tested happens in well under a second.
const HANG: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------
// Set-up: real `traguardo serve` processes, and in-process servers.

/// A `traguardo serve` process, started through `sh -c` so that a test can set
/// its limits first (`ulimit -n`), or through any other wrapper.
struct Process {
    child: Child,
    addr: String,
}

impl Process {
    /// `traguardo --db DB serve --addr 127.0.0.1:0 ARGS…` run by `prefix`
    /// (e.g. `["sh", "-c", "ulimit -n 1024; exec \"$0\" \"$@\""]`).
    fn start(prefix: &[&str], db: &str, args: &[&str]) -> Process {
        let mut child = Self::spawn(prefix, db, args);
        let mut lines = BufReader::new(child.stdout.take().expect("its stdout")).lines();
        let base = loop {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(addr) = line.strip_prefix("traguardo listening on ") {
                        break addr.trim().to_string();
                    }
                }
                _ => {
                    let status = child.wait();
                    panic!("traguardo serve --db {db} did not start: {status:?}");
                }
            }
        };
        std::thread::spawn(move || for _ in lines {});
        let addr = base.trim_start_matches("http://").to_string();
        Process { child, addr }
    }

    fn spawn(prefix: &[&str], db: &str, args: &[&str]) -> Child {
        let binary = env!("CARGO_BIN_EXE_traguardo");
        let mut command = match prefix.split_first() {
            Some((program, rest)) => {
                let mut c = Command::new(program);
                c.args(rest).arg(binary);
                c
            }
            None => Command::new(binary),
        };
        command
            .arg("--db")
            .arg(db)
            .args(["serve", "--addr", "127.0.0.1:0"])
            .args(args)
            .env("TRAGUARDO_BOOTSTRAP_TOKEN", SERVE_ADMIN)
            .env("RUST_LOG", "warn")
            .env_remove("TRAGUARDO_DB")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("the binary starts");
        let stderr = child.stderr.take().expect("its stderr");
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("[serve] {line}");
            }
        });
        child
    }

    fn signal(&self, name: &str) {
        let sent = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(sent.success());
    }

    /// Waits for the process to exit (a hang is a failure).
    fn wait(&mut self) -> std::process::ExitStatus {
        wait_for_exit(&mut self.child)
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_for_exit(child: &mut Child) -> std::process::ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("the child can be waited for") {
            return status;
        }
        if started.elapsed() > HANG {
            let _ = child.kill();
            panic!("the process did not exit within {HANG:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One request on a fresh connection: the answer's status, head and body.
fn http(
    addr: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> (u16, String, String) {
    let mut stream = TcpStream::connect(addr).expect("a connection");
    stream.set_read_timeout(Some(HANG)).unwrap();
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let body = body.map(Value::to_string).unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    stream
        .read_to_string(&mut answer)
        .expect("an answer before the read timeout");
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {answer:?}"));
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    (status, head.to_ascii_lowercase(), body.to_string())
}

/// `GET path`: the status and body.
fn http_get(addr: &str, path: &str, token: Option<&str>) -> (u16, String) {
    let (status, _, body) = http(addr, "GET", path, token, None);
    (status, body)
}

fn seed() -> Value {
    serde_json::from_str(&std::fs::read_to_string(seed_path()).unwrap()).unwrap()
}

/// An in-process server over a fresh database with the seed loaded.
struct InProcess {
    _dir: tempfile::TempDir,
    server: traguardo::http::Server,
    client: reqwest::Client,
    clock: Clock,
}

impl InProcess {
    async fn start(options: traguardo::http::ServerOptions) -> InProcess {
        let dir = tempfile::tempdir().unwrap();
        let clock = Clock::manual(Utc.with_ymd_and_hms(2022, 6, 10, 9, 0, 0).unwrap());
        let app = App::open(dir.path().join("traguardo.db"), clock.clone()).unwrap();
        app.set_bootstrap_token(ADMIN);
        let server = traguardo::http::start_with_options(
            app,
            "127.0.0.1:0",
            traguardo::transparency::Checkpoints::disabled(),
            options,
        )
        .await
        .unwrap();
        let this = InProcess {
            _dir: dir,
            server,
            client: reqwest::Client::new(),
            clock,
        };
        let response = this
            .client
            .post(this.url("/api/v1/plans"))
            .bearer_auth(ADMIN)
            .json(&seed())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        this
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.server.addr)
    }

    async fn get(&self, path: &str, token: Option<&str>) -> (StatusCode, String, Value) {
        let mut request = self.client.get(self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        answer(request.send().await.unwrap()).await
    }

    async fn post(&self, path: &str, token: &str, body: &str) -> (StatusCode, String, Value) {
        let response = self
            .client
            .post(self.url(path))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        answer(response).await
    }

    async fn token(&self, actor: &str, role: &str, units: &[&str]) -> String {
        let body = json!({"actor": actor, "role": role, "units": units}).to_string();
        let (status, _, body) = self.post("/api/v1/tokens", ADMIN, &body).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["token"].as_str().unwrap().to_string()
    }
}

/// Status, content type and body (JSON when it is JSON).
async fn answer(response: reqwest::Response) -> (StatusCode, String, Value) {
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, content_type, body)
}

fn assert_problem(status: StatusCode, content_type: &str, body: &Value, want: StatusCode) {
    assert_eq!(status, want, "{body}");
    assert_eq!(content_type, "application/problem+json", "{status}: {body}");
    assert_eq!(body["status"], want.as_u16(), "{body}");
    assert!(
        !body["detail"].as_str().unwrap_or_default().is_empty(),
        "{body}"
    );
}

// ---------------------------------------------------------------------------
// 1. Idle connections.

#[test]
fn eleven_hundred_idle_sockets_do_not_keep_healthz_from_answering_under_1024_open_files() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("traguardo.db").display().to_string();
    // The usual soft limit of open files, and a header timeout far longer than
    // the test: only the connection cap can keep the server answering.
    let server = Process::start(
        &["sh", "-c", "ulimit -n 1024 && exec \"$0\" \"$@\""],
        &db,
        &["--header-timeout", "3600"],
    );
    let idle: Vec<TcpStream> = (0..1_100)
        .map(|_| TcpStream::connect(&server.addr).expect("an idle connection"))
        .collect();
    let (status, body) = http_get(&server.addr, "/healthz", None);
    assert_eq!(status, 200, "{body}");
    let (status, body) = http_get(&server.addr, "/status", None);
    assert_eq!(status, 200, "{body}");
    drop(idle);
}

#[test]
fn a_socket_that_sends_nothing_or_half_a_head_is_closed_after_the_header_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("traguardo.db").display().to_string();
    let server = Process::start(
        &[],
        &db,
        &["--header-timeout", "1", "--request-timeout", "1"],
    );
    for sent in ["", "GET /healthz HTTP/1.1\r\nHost: x\r\n"] {
        let mut stream = TcpStream::connect(&server.addr).unwrap();
        stream.set_read_timeout(Some(HANG)).unwrap();
        stream.write_all(sent.as_bytes()).unwrap();
        let mut buffer = [0u8; 256];
        match stream.read(&mut buffer) {
            // Closed by the server (with or without a word).
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
            Err(e) => panic!("the server kept a silent connection open: {e}"),
        }
    }
    // A kept-alive connection that goes quiet is closed too, after its answer.
    let mut stream = TcpStream::connect(&server.addr).unwrap();
    stream.set_read_timeout(Some(HANG)).unwrap();
    write!(stream, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut all = Vec::new();
    match stream.read_to_end(&mut all) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!("the kept-alive connection stayed open: {e}"),
    }
    assert!(String::from_utf8_lossy(&all).starts_with("HTTP/1.1 200"));
    // A body that trickles in is cut off by the request timeout, with a 408.
    let mut stream = TcpStream::connect(&server.addr).unwrap();
    stream.set_read_timeout(Some(HANG)).unwrap();
    write!(
        stream,
        "POST /api/v1/plans HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {SERVE_ADMIN}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"year\""
    )
    .unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer
            .to_ascii_lowercase()
            .contains("content-type: application/problem+json"),
        "{answer}"
    );
}

// ---------------------------------------------------------------------------
// 4. Shutdown.

#[test]
fn sigterm_and_ctrl_c_stop_the_server_while_a_client_holds_a_half_sent_request() {
    for (signal, half_sent) in [
        (
            "TERM",
            "POST /api/v1/plans HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
             Authorization: Bearer x\r\nContent-Length: 1000\r\n\r\n{\"year\":",
        ),
        ("INT", "GET /api/v1/plans HTTP/1.1\r\nHost: x\r\nAuthoriz"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("traguardo.db").display().to_string();
        let mut server = Process::start(&[], &db, &["--shutdown-grace", "1"]);
        let mut stream = TcpStream::connect(&server.addr).unwrap();
        stream.write_all(half_sent.as_bytes()).unwrap();
        // The server has taken the connection: it answers another one.
        assert_eq!(http_get(&server.addr, "/healthz", None).0, 200);
        server.signal(signal);
        let status = server.wait();
        assert!(status.success(), "SIG{signal}: {status:?}");
        drop(stream);
    }
}

// ---------------------------------------------------------------------------
// 10, 11. Errors.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_is_problem_json() {
    let server = InProcess::start(Default::default()).await;
    // Repeated query parameters.
    let (s, c, b) = server
        .get("/api/v1/events?after=1&after=2", Some(ADMIN))
        .await;
    assert_problem(s, &c, &b, StatusCode::BAD_REQUEST);
    // A path that does not decode.
    let (s, c, b) = server.get("/api/v1/objectives/%FF%FE", Some(ADMIN)).await;
    assert_problem(s, &c, &b, StatusCode::BAD_REQUEST);
    // An over-long URI.
    let long = format!("/api/v1/plans/2022/scores?at={}", "9".repeat(9_000));
    let (s, c, b) = server.get(&long, Some(ADMIN)).await;
    assert_problem(s, &c, &b, StatusCode::URI_TOO_LONG);
    // Too many headers, and one header too large.
    let mut request = server
        .client
        .get(server.url("/api/v1/plans"))
        .bearer_auth(ADMIN);
    for i in 0..150 {
        request = request.header(format!("x-filler-{i}"), "x");
    }
    let (s, c, b) = answer(request.send().await.unwrap()).await;
    assert_problem(s, &c, &b, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    let request = server
        .client
        .get(server.url("/api/v1/plans"))
        .header("x-filler", "x".repeat(70_000));
    let (s, c, b) = answer(request.send().await.unwrap()).await;
    assert_problem(s, &c, &b, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    // A method a route does not answer, and a route that does not exist.
    let response = server
        .client
        .delete(server.url("/healthz"))
        .send()
        .await
        .unwrap();
    let (s, c, b) = answer(response).await;
    assert_problem(s, &c, &b, StatusCode::METHOD_NOT_ALLOWED);
    let (s, c, b) = server.get("/api/v1/no-such-thing", Some(ADMIN)).await;
    assert_problem(s, &c, &b, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seq_beyond_the_largest_a_database_keeps_is_a_422() {
    let server = InProcess::start(Default::default()).await;
    let (s, c, b) = server
        .get("/api/v1/events?after=9223372036854775808", Some(ADMIN))
        .await;
    assert_problem(s, &c, &b, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(b["errors"][0]["field"], "after", "{b}");
    let response = server
        .client
        .get(server.url("/api/v1/events/stream"))
        .bearer_auth(ADMIN)
        .header("last-event-id", "9223372036854775808")
        .send()
        .await
        .unwrap();
    let (s, c, b) = answer(response).await;
    assert_problem(s, &c, &b, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(b["errors"][0]["field"], "Last-Event-ID", "{b}");
    let (s, c, b) = server
        .get(
            "/api/v1/objectives/2022-2250-A?seq=9223372036854775808",
            Some(ADMIN),
        )
        .await;
    assert_problem(s, &c, &b, StatusCode::UNPROCESSABLE_ENTITY);
    // The largest seq there can be is still a seq.
    let (s, _, b) = server
        .get("/api/v1/events?after=9223372036854775807", Some(ADMIN))
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b, json!([]));
}

// ---------------------------------------------------------------------------
// 12. Authorization first.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn who_may_not_write_is_refused_before_the_body_is_checked() {
    let server = InProcess::start(Default::default()).await;
    let other_manager = server.token("Dirigente 2252", "manager", &["2252"]).await;
    let validator = server.token("Nucleo", "validator", &[]).await;
    for body in [
        r#"{"on": "not-a-date"}"#,
        r#"{"on": 12, "x": 1}"#,
        "{not json",
    ] {
        for path in [
            "/api/v1/objectives/2022-2250-A/phases/1/start",
            "/api/v1/objectives/2022-2250-A/phases/1/complete",
            "/api/v1/objectives/2022-2250-A/phases/1/retract",
            "/api/v1/objectives/2022-2250-A/indicators/x/measurements",
        ] {
            for token in [&other_manager, &validator] {
                let (s, c, b) = server.post(path, token, body).await;
                assert_problem(s, &c, &b, StatusCode::FORBIDDEN);
            }
        }
        let (s, c, b) = server
            .post(
                "/api/v1/objectives/2022-2250-A/validations",
                &other_manager,
                body,
            )
            .await;
        assert_problem(s, &c, &b, StatusCode::FORBIDDEN);
        for path in ["/api/v1/plans/2022/revisions", "/api/v1/plans"] {
            let (s, c, b) = server.post(path, &other_manager, body).await;
            assert_problem(s, &c, &b, StatusCode::FORBIDDEN);
        }
    }
    // Whoever may write still hears about the bad date.
    let manager = server.token("Dirigente 2250", "manager", &["2250"]).await;
    let (s, c, b) = server
        .post(
            "/api/v1/objectives/2022-2250-A/phases/1/start",
            &manager,
            r#"{"on": "not-a-date"}"#,
        )
        .await;
    assert_problem(s, &c, &b, StatusCode::UNPROCESSABLE_ENTITY);
}

// ---------------------------------------------------------------------------
// 16. /metrics.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_need_an_admin_or_auditor_token_unless_served_on_the_metrics_address() {
    let server = InProcess::start(traguardo::http::ServerOptions {
        metrics_addr: Some("127.0.0.1:0".into()),
        ..Default::default()
    })
    .await;
    let (s, c, b) = server.get("/metrics", None).await;
    assert_problem(s, &c, &b, StatusCode::UNAUTHORIZED);
    let manager = server.token("Dirigente 2250", "manager", &["2250"]).await;
    let (s, c, b) = server.get("/metrics", Some(&manager)).await;
    assert_problem(s, &c, &b, StatusCode::FORBIDDEN);
    let auditor = server.token("Revisore", "auditor", &[]).await;
    for token in [ADMIN, auditor.as_str()] {
        let (s, _, b) = server.get("/metrics", Some(token)).await;
        assert_eq!(s, StatusCode::OK);
        assert!(b.as_str().unwrap().contains("traguardo_events"), "{b}");
    }
    let open = server.server.metrics_addr.expect("a metrics address");
    let text = server
        .client
        .get(format!("http://{open}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("traguardo_http_requests_total"), "{text}");
    let response = server
        .client
        .get(format!("http://{open}/api/v1/plans"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::NOT_FOUND,
        "only /metrics there"
    );
}

// ---------------------------------------------------------------------------
// 17. Reports are computed once per head.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_is_computed_once_per_head_and_parameters() {
    let server = InProcess::start(Default::default()).await;
    let report = "/api/v1/plans/2022/report?format=json&at=2022-12-31";
    let (_, _, first) = server.get(report, Some(ADMIN)).await;
    server
        .clock
        .set(Utc.with_ymd_and_hms(2022, 6, 10, 10, 0, 0).unwrap());
    // The same head and parameters: the same report, generated once.
    let (_, _, again) = server.get(report, Some(ADMIN)).await;
    assert_eq!(first["generated_at"], again["generated_at"]);
    assert_eq!(first, again);
    // Other parameters: another report.
    let (_, _, other) = server
        .get(
            "/api/v1/plans/2022/report?format=json&at=2022-12-30",
            Some(ADMIN),
        )
        .await;
    assert_ne!(first["generated_at"], other["generated_at"]);
    // A write moves the head: computed afresh.
    server.token("Revisore", "auditor", &[]).await;
    let (_, _, after) = server.get(report, Some(ADMIN)).await;
    assert_ne!(first["generated_at"], after["generated_at"]);
    assert_ne!(first["head"], after["head"]);
}

// ---------------------------------------------------------------------------
// 18. The WAL is checkpointed; a shorter log is noticed.

/// Events in the database file alone, without its `-wal` file: what survives
/// if the `-wal` file is lost.
fn events_in_main_file(db: &Path) -> u64 {
    let copy = tempfile::tempdir().unwrap();
    let alone = copy.path().join("alone.db");
    std::fs::copy(db, &alone).unwrap();
    let conn = rusqlite::Connection::open(&alone).unwrap();
    conn.query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))
        .unwrap_or(0)
}

fn remove_wal(db: &Path) {
    for suffix in ["-wal", "-shm"] {
        let mut path = db.as_os_str().to_owned();
        path.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(path));
    }
}

fn integrity(server: &Process) -> (u64, String) {
    let (status, _, body) = http(
        &server.addr,
        "GET",
        "/api/v1/integrity",
        Some(SERVE_ADMIN),
        None,
    );
    assert_eq!(status, 200, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    (
        body["head_seq"].as_u64().unwrap(),
        body["head_hash"].as_str().unwrap().to_string(),
    )
}

/// Issues an auditor's token (one event): the answer's status, head and body.
fn issue_token(server: &Process) -> (u16, String, String) {
    let body = json!({"actor": "Revisore", "role": "auditor"});
    http(
        &server.addr,
        "POST",
        "/api/v1/tokens",
        Some(SERVE_ADMIN),
        Some(&body),
    )
}

fn load_seed(server: &Process) {
    let (status, _, body) = http(
        &server.addr,
        "POST",
        "/api/v1/plans",
        Some(SERVE_ADMIN),
        Some(&seed()),
    );
    assert_eq!(status, 201, "{body}");
}

#[test]
fn acknowledged_events_reach_the_database_file_and_a_shorter_log_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("traguardo.db");
    let target = db.display().to_string();
    let mut server = Process::start(&[], &target, &[]);
    load_seed(&server);
    let (seq, _) = integrity(&server);
    // The writer checkpoints the WAL once it is idle: the file alone holds them.
    let started = Instant::now();
    while events_in_main_file(&db) < seq {
        assert!(started.elapsed() < HANG, "the WAL was never checkpointed");
        std::thread::sleep(Duration::from_millis(100));
    }
    // A crash, and the -wal file lost: nothing acknowledged is lost.
    let earlier = dir.path().join("earlier.db");
    std::fs::copy(&db, &earlier).unwrap();
    server.child.kill().unwrap();
    server.wait();
    remove_wal(&db);
    let server = Process::start(&[], &target, &[]);
    assert_eq!(integrity(&server).0, seq);
    // Three more events, then the log is swapped for the earlier copy.
    for _ in 0..3 {
        assert_eq!(issue_token(&server).0, 201);
    }
    let (later, later_hash) = integrity(&server);
    assert_eq!(later, seq + 3);
    let head_file = dir.path().join("traguardo.db.head");
    let started = Instant::now();
    while std::fs::read_to_string(&head_file)
        .unwrap_or_default()
        .trim()
        != format!("{later}:{later_hash}")
    {
        assert!(started.elapsed() < HANG, "the head file never said {later}");
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(server);
    remove_wal(&db);
    std::fs::copy(&earlier, &db).unwrap();
    // `serve` refuses it, in one line, and exits non-zero.
    let mut refused = Process::spawn(&[], &target, &[]);
    let mut stderr = String::new();
    refused
        .stderr
        .take()
        .map(|mut e| e.read_to_string(&mut stderr));
    let status = wait_for_exit(&mut refused);
    assert!(!status.success());
    let _ = stderr;
    // `verify` says the log is shorter than the head it was told about.
    let verify = Command::new(env!("CARGO_BIN_EXE_traguardo"))
        .arg("--db")
        .arg(&db)
        .args(["verify", "--expect", &format!("{later}:{later_hash}")])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&verify.stdout);
    assert!(!verify.status.success(), "{out}");
    assert!(
        out.contains(&format!(
            "the log is shorter than seq {later}: it ends at seq {seq}"
        )),
        "{out}"
    );
}

#[test]
fn serve_names_the_lost_events_when_it_refuses_a_shorter_log() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("traguardo.db");
    let target = db.display().to_string();
    let output = crate::support::traguardo(&target, &["import", seed_path().to_str().unwrap()]);
    assert!(output.status.success());
    // A server once saw seq 20; the log holds 8.
    std::fs::write(
        dir.path().join("traguardo.db.head"),
        format!("20:{}\n", "a".repeat(64)),
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_traguardo"))
        .arg("--db")
        .arg(&db)
        .args(["serve", "--addr", "127.0.0.1:0"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("the log holds 8 events, fewer than the 20 this server had already seen"),
        "{stderr}"
    );
    // `verify` checks that head too.
    let verify = crate::support::traguardo(&target, &["verify"]);
    assert!(!verify.status.success());
    assert!(String::from_utf8_lossy(&verify.stdout).contains("the log is shorter than seq 20"));
}

// ---------------------------------------------------------------------------
// 6. A full disk, a read-only database.

#[test]
fn a_full_disk_answers_507_turns_status_503_and_recovers_when_space_returns() {
    let dir = tempfile::tempdir().unwrap();
    let mount = dir.path().join("disk");
    std::fs::create_dir(&mount).unwrap();
    let db = mount.join("traguardo.db").display().to_string();
    // A small disk of the server's own: a tmpfs in a mount namespace (user
    // namespaces need no root).
    let script = format!(
        "mount -t tmpfs -o size=2m tmpfs '{}' && exec \"$0\" \"$@\"",
        mount.display()
    );
    let server = Process::start(
        &[
            "unshare",
            "--user",
            "--map-root-user",
            "--mount",
            "sh",
            "-c",
            &script,
        ],
        &db,
        &[],
    );
    load_seed(&server);
    // Fill the disk, through the server's view of it.
    let filler = PathBuf::from(format!(
        "/proc/{}/root{}/filler",
        server.child.id(),
        mount.display()
    ));
    let mut file = std::fs::File::create(&filler).expect("the server's disk is reachable");
    let block = vec![0u8; 64 * 1024];
    while file.write_all(&block).is_ok() {}
    drop(file);
    // Writes fail (once the WAL needs room), each with a clear 507.
    let refused = (0..500)
        .map(|_| issue_token(&server))
        .find(|(status, _, _)| *status != 201)
        .expect("a write fails on a full disk");
    let (status, head, body) = refused;
    assert_eq!(status, 507, "{body}");
    assert!(
        head.contains("content-type: application/problem+json"),
        "{head}"
    );
    let body: Value = serde_json::from_str(&body).unwrap();
    assert!(body["detail"].as_str().unwrap().contains("disco"), "{body}");
    assert_eq!(http_get(&server.addr, "/status", None).0, 503);
    // Space returns: writes succeed, and /status is healthy again.
    std::fs::remove_file(&filler).unwrap();
    assert_eq!(issue_token(&server).0, 201);
    assert_eq!(http_get(&server.addr, "/status", None).0, 200);
}

/// Whether the tests run as root, to whom file permissions do not apply.
fn running_as_root() -> bool {
    let id = Command::new("id").arg("-u").output().expect("id runs");
    String::from_utf8_lossy(&id.stdout).trim() == "0"
}

#[test]
fn serve_refuses_to_start_on_a_database_file_it_cannot_write() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("traguardo.db");
    let output = crate::support::traguardo(
        db.to_str().unwrap(),
        &["import", seed_path().to_str().unwrap()],
    );
    assert!(output.status.success());
    // The folder stays writable (SQLite may make its -shm there); the file not.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o444)).unwrap();
    // Permissions do not bind root: the server then runs as nobody, from a copy
    // of the binary in the open folder (the checkout it was built in may be
    // closed to others, as a `mktemp -d` is).
    let root = running_as_root();
    let binary = if root {
        let copy = dir.path().join("traguardo");
        std::fs::copy(env!("CARGO_BIN_EXE_traguardo"), &copy).unwrap();
        std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
        copy
    } else {
        PathBuf::from(env!("CARGO_BIN_EXE_traguardo"))
    };
    let mut command = Command::new(binary);
    command
        .arg("--db")
        .arg(&db)
        .args(["serve", "--addr", "127.0.0.1:0"])
        .env_remove("TRAGUARDO_DB")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if root {
        command.uid(65534).gid(65534);
    }
    let mut child = command.spawn().unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = wait_for_exit(&mut child);
    assert!(!status.success(), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("cannot be written"), "{stderr}");
}
