//! Both engines, and several processes on one log (DESIGN.md §10): real
//! `traguardo serve` processes, real PostgreSQL, a fresh database per test
//! (dropped afterwards, however the test ends).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::{seed_path, traguardo, Db, Serve, SERVE_ADMIN};
use crate::web::{cookie_of, csrf_of};

/// One HTTP call: status, headers, JSON body (or the text as a string).
async fn call(
    method: Method,
    url: &str,
    token: Option<&str>,
    body: Option<&Value>,
    headers: &[(&str, &str)],
) -> (StatusCode, HeaderMap, Value) {
    let mut request = reqwest::Client::new().request(method, url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("the server answers");
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.expect("a body");
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, headers, body)
}

async fn get(server: &Serve, path: &str, token: &str) -> (StatusCode, Value) {
    let (status, _, body) = call(Method::GET, &server.url(path), Some(token), None, &[]).await;
    (status, body)
}

async fn post(server: &Serve, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
    let (status, _, body) = call(
        Method::POST,
        &server.url(path),
        Some(token),
        Some(&body),
        &[],
    )
    .await;
    (status, body)
}

/// Loads the Alessandria 2022 plan through `server`.
async fn load_seed(server: &Serve) {
    let plan: Value = serde_json::from_str(&std::fs::read_to_string(seed_path()).unwrap()).unwrap();
    let (status, body) = post(server, "/api/v1/plans", SERVE_ADMIN, plan).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

/// A manager token for `units`, issued through `server`.
async fn manager(server: &Serve, units: &[&str]) -> String {
    let (status, body) = post(
        server,
        "/api/v1/tokens",
        SERVE_ADMIN,
        json!({"actor": format!("Dirigente {}", units.join("+")), "role": "manager", "units": units}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["token"].as_str().expect("a token").to_string()
}

/// The head seq of the log as `server` reads it.
async fn head_seq(server: &Serve) -> u64 {
    let (status, body) = get(server, "/api/v1/integrity", SERVE_ADMIN).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["ok"], true, "{body}");
    body["head_seq"].as_u64().expect("a head seq")
}

fn assert_verifies(db: &str) {
    let out = traguardo(db, &["verify"]);
    assert!(
        out.status.success(),
        "verify: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs each named test against both engines: `sqlite::name`, `postgres::name`.
macro_rules! on_both_engines {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() { super::$name(super::Db::sqlite()).await } )*
        }
        mod postgres {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() { super::$name(super::Db::postgres()).await } )*
        }
    };
}

on_both_engines!(
    a_session_opened_on_one_server_works_on_another_and_logging_out_ends_it_on_both,
    an_objective_is_written_and_read_back,
    an_idempotent_retry_returns_the_first_answer_after_the_server_restarts,
    twenty_racing_completions_of_one_phase_append_one_event_and_nineteen_409s,
);

async fn an_objective_is_written_and_read_back(db: Db) {
    let server = Serve::start(&db.target());
    load_seed(&server).await;
    let manager = manager(&server, &["2250"]).await;
    let (status, written) = post(
        &server,
        "/api/v1/objectives/2022-2250-A/phases/1/start",
        &manager,
        json!({"on": "2022-03-01", "note": "avvio"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{written}");
    let (status, objective) = get(&server, "/api/v1/objectives/2022-2250-A", &manager).await;
    assert_eq!(status, StatusCode::OK, "{objective}");
    assert_eq!(objective["version"], written["objective"]["version"]);
    assert_eq!(objective["phases"][0]["started_on"], "2022-03-01");
    assert_eq!(
        head_seq(&server).await,
        written["event"]["seq"].as_u64().unwrap()
    );
    server.stop();
    assert_verifies(&db.target());
}

async fn an_idempotent_retry_returns_the_first_answer_after_the_server_restarts(db: Db) {
    let server = Serve::start(&db.target());
    load_seed(&server).await;
    let manager = manager(&server, &["2250"]).await;
    let path = "/api/v1/objectives/2022-2250-C/phases/1/complete";
    let body = json!({"on": "2022-02-20", "note": "prima"});
    let key = [("idempotency-key", "retry-me-0001")];
    let (status, _, first) = call(
        Method::POST,
        &server.url(path),
        Some(&manager),
        Some(&body),
        &key,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let head = head_seq(&server).await;
    server.stop();

    let server = Serve::start(&db.target());
    let (status, headers, retry) = call(
        Method::POST,
        &server.url(path),
        Some(&manager),
        Some(&body),
        &key,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{retry}");
    assert_eq!(headers["idempotent-replayed"], "true");
    assert_eq!(retry["event"], first["event"]);
    assert_eq!(head_seq(&server).await, head, "a retry appends nothing");
    server.stop();
}

async fn twenty_racing_completions_of_one_phase_append_one_event_and_nineteen_409s(db: Db) {
    let server = Serve::start(&db.target());
    load_seed(&server).await;
    let manager = manager(&server, &["2250"]).await;
    let url = server.url("/api/v1/objectives/2022-2250-B/phases/1/complete");
    let racers: Vec<_> = (0..20)
        .map(|i| {
            let (url, manager) = (url.clone(), manager.clone());
            tokio::spawn(async move {
                let body = json!({"on": "2022-03-20", "note": format!("tentativo {i}")});
                call(Method::POST, &url, Some(&manager), Some(&body), &[])
                    .await
                    .0
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for racer in racers {
        statuses.push(racer.await.unwrap());
    }
    let count = |wanted: StatusCode| statuses.iter().filter(|s| **s == wanted).count();
    assert_eq!(count(StatusCode::CREATED), 1, "{statuses:?}");
    assert_eq!(count(StatusCode::CONFLICT), 19, "{statuses:?}");
    let (_, events) = get(&server, "/api/v1/objectives/2022-2250-B/events", &manager).await;
    let completions = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "phase_completed")
        .count();
    assert_eq!(completions, 1);
    server.stop();
    assert_verifies(&db.target());
}

/// The objectives of the seed with a qualitative indicator, and their units.
const OBJECTIVES: &[(&str, &str)] = &[
    ("2022-2250-A", "2250"),
    ("2022-2250-C", "2250"),
    ("2022-2249-C", "2249"),
    ("2022-2247-B", "2247"),
    ("2022-2252-C", "2252"),
    ("2022-2252-D", "2252"),
];

/// A measurement that may be repeated: the first qualitative indicator's text.
async fn qualitative_indicator(server: &Serve, key: &str, token: &str) -> String {
    let (status, objective) = get(server, &format!("/api/v1/objectives/{key}"), token).await;
    assert_eq!(status, StatusCode::OK, "{objective}");
    objective["indicators"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["kind"] == "qualitative")
        .map(|i| i["id"].as_str().unwrap().to_string())
        .unwrap_or_else(|| panic!("{key} has a qualitative indicator"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_on_one_postgres_database_converge_under_writers_through_both() {
    let db = Db::postgres();
    let a = Serve::start(&db.target());
    let b = Serve::start(&db.target());
    load_seed(&a).await;
    // A token issued through one instance works on the other.
    let token = manager(&a, &["2250", "2249", "2247", "2252"]).await;
    let head = head_seq(&a).await;
    let (status, _, _) = call(
        Method::GET,
        &b.url("/api/v1/objectives/2022-2250-A"),
        Some(&token),
        None,
        &[("x-min-seq", &head.to_string())],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let mut indicators = Vec::new();
    for (key, _) in OBJECTIVES {
        indicators.push(qualitative_indicator(&a, key, &token).await);
    }
    // Six writers, one per objective, alternating between the instances,
    // plus racers completing one phase of another objective through both.
    let bases = [a.base.clone(), b.base.clone()];
    let mut writers = Vec::new();
    for (w, ((key, _), indicator)) in OBJECTIVES.iter().zip(&indicators).enumerate() {
        let (bases, token, indicator) = (bases.clone(), token.clone(), indicator.clone());
        writers.push(tokio::spawn(async move {
            let mut acked: Vec<u64> = Vec::new();
            for i in 0..6 {
                let base = &bases[(w + i) % 2];
                let url =
                    format!("{base}/api/v1/objectives/{key}/indicators/{indicator}/measurements");
                let body = json!({"on": "2022-06-01", "text": format!("rilevazione {w}.{i}")});
                // Read-your-writes across instances: the next write goes to the
                // other one, which first folds what this writer wrote last.
                let last = acked.last().copied().unwrap_or(0).to_string();
                let (status, _, body) = call(
                    Method::POST,
                    &url,
                    Some(&token),
                    Some(&body),
                    &[("x-min-seq", &last)],
                )
                .await;
                assert_eq!(status, StatusCode::CREATED, "{body}");
                acked.push(body["event"]["seq"].as_u64().unwrap());
            }
            acked
        }));
    }
    let mut racers = Vec::new();
    for i in 0..10 {
        let url = format!(
            "{}/api/v1/objectives/2022-2250-B/phases/1/complete",
            bases[i % 2]
        );
        let token = token.clone();
        racers.push(tokio::spawn(async move {
            let body = json!({"on": "2022-03-20"});
            call(Method::POST, &url, Some(&token), Some(&body), &[])
                .await
                .0
        }));
    }
    let mut acked = BTreeSet::new();
    for writer in writers {
        acked.extend(writer.await.unwrap());
    }
    let mut created = 0;
    for racer in racers {
        let status = racer.await.unwrap();
        assert!(
            status == StatusCode::CREATED || status == StatusCode::CONFLICT,
            "{status}"
        );
        created += usize::from(status == StatusCode::CREATED);
    }
    assert_eq!(created, 1, "one completion wins across both instances");
    assert_eq!(acked.len(), OBJECTIVES.len() * 6, "every seq is distinct");

    // Both read models converge to the log: same head, same answers.
    let head = head_seq(&a).await;
    assert_eq!(head_seq(&b).await, head);
    let wait = [("x-min-seq", head.to_string())];
    let wait: Vec<(&str, &str)> = wait.iter().map(|(k, v)| (*k, v.as_str())).collect();
    for key in OBJECTIVES
        .iter()
        .map(|(key, _)| *key)
        .chain(["2022-2250-B"])
    {
        let path = format!("/api/v1/objectives/{key}");
        let (sa, _, from_a) = call(Method::GET, &a.url(&path), Some(&token), None, &wait).await;
        let (sb, _, from_b) = call(Method::GET, &b.url(&path), Some(&token), None, &wait).await;
        assert_eq!((sa, sb), (StatusCode::OK, StatusCode::OK));
        assert_eq!(
            from_a, from_b,
            "{key} reads the same through both instances"
        );
    }
    let path = "/api/v1/plans/2022/scores?at=2022-12-31";
    let (_, _, scores_a) = call(Method::GET, &a.url(path), Some(&token), None, &wait).await;
    let (_, _, scores_b) = call(Method::GET, &b.url(path), Some(&token), None, &wait).await;
    assert_eq!(scores_a, scores_b);
    a.stop();
    b.stop();
    assert_verifies(&db.target());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_created_at_the_command_line_works_on_a_running_sqlite_server_within_a_second() {
    let db = Db::sqlite();
    let server = Serve::start(&db.target());
    load_seed(&server).await;
    let out = traguardo(
        &db.target(),
        &[
            "token",
            "create",
            "--actor",
            "Revisore dei conti",
            "--role",
            "auditor",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let created = Instant::now();
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    loop {
        let (status, _) = get(&server, "/api/v1/integrity", &token).await;
        if status == StatusCode::OK {
            break;
        }
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(
            created.elapsed() < Duration::from_millis(1_500),
            "the server still refuses the new token after {:?}",
            created.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn min_seq_waits_for_a_seq_appended_elsewhere_and_answers_503_when_it_does_not_come() {
    let db = Db::sqlite();
    let server = Serve::start(&db.target());
    load_seed(&server).await;
    let head = head_seq(&server).await;

    // Already folded: answered at once, by query or by header.
    let (status, _, _) = call(
        Method::GET,
        &server.url(&format!("/api/v1/plans/2022?min_seq={head}")),
        Some(SERVE_ADMIN),
        None,
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    // Not yet appended: the request waits, and is answered once another
    // process appends it.
    let url = server.url("/api/v1/plans/2022");
    let next = (head + 1).to_string();
    let waiting = tokio::spawn(async move {
        let started = Instant::now();
        let (status, _, _) = call(
            Method::GET,
            &url,
            Some(SERVE_ADMIN),
            None,
            &[("X-Min-Seq", &next)],
        )
        .await;
        (status, started.elapsed())
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let target = db.target();
    let out = tokio::task::spawn_blocking(move || {
        traguardo(
            &target,
            &[
                "token", "create", "--actor", "Revisore", "--role", "auditor",
            ],
        )
    })
    .await
    .unwrap();
    assert!(out.status.success());
    let (status, waited) = waiting.await.unwrap();
    assert_eq!(status, StatusCode::OK);
    assert!(
        waited >= Duration::from_millis(250),
        "it waited: {waited:?}"
    );

    // Never appended: 503 with Retry-After, after a bounded wait.
    let started = Instant::now();
    let (status, headers, problem) = call(
        Method::GET,
        &server.url(&format!("/api/v1/plans/2022?min_seq={}", head + 1_000)),
        Some(SERVE_ADMIN),
        None,
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{problem}");
    assert!(headers.contains_key("retry-after"));
    assert_eq!(headers["content-type"], "application/problem+json");
    assert!(started.elapsed() < Duration::from_secs(4));

    // A min_seq that is not a number is a 422 naming it.
    let (status, _, problem) = call(
        Method::GET,
        &server.url("/api/v1/plans/2022?min_seq=ieri"),
        Some(SERVE_ADMIN),
        None,
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["errors"][0]["field"], "min_seq");
    server.stop();
}

fn stdout_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn copy_moves_a_log_from_sqlite_to_postgres_and_back_hash_for_hash() {
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("first.db").display().to_string();
    let back = dir.path().join("back.db").display().to_string();
    let pg = crate::support::PgDb::create();
    let seed = seed_path().display().to_string();
    assert!(traguardo(&first, &["import", &seed]).status.success());
    for actor in ["Revisore", "Nucleo"] {
        let out = traguardo(
            &first,
            &["token", "create", "--actor", actor, "--role", "auditor"],
        );
        assert!(out.status.success());
    }

    let out = traguardo("unused", &["copy", "--from", &first, "--to", &pg.url]);
    assert!(
        out.status.success(),
        "{}{}",
        stdout_of(&out),
        stderr_of(&out)
    );
    assert!(
        stdout_of(&out).contains("verified on both"),
        "{}",
        stdout_of(&out)
    );
    let out = traguardo("unused", &["copy", "--from", &pg.url, "--to", &back]);
    assert!(
        out.status.success(),
        "{}{}",
        stdout_of(&out),
        stderr_of(&out)
    );

    let exported: Vec<String> = [&first, &pg.url, &back]
        .iter()
        .map(|db| {
            let out = traguardo(db, &["export"]);
            assert!(out.status.success());
            stdout_of(&out)
        })
        .collect();
    assert!(exported[0].lines().count() > 8);
    assert_eq!(exported[0], exported[1], "SQLite → PostgreSQL");
    assert_eq!(exported[1], exported[2], "PostgreSQL → SQLite");
    assert_verifies(&pg.url);
    assert_verifies(&back);

    // A destination that holds a log already is refused, in one line.
    let out = traguardo("unused", &["copy", "--from", &first, "--to", &pg.url]);
    assert!(!out.status.success());
    let message = stderr_of(&out);
    assert_eq!(message.trim().lines().count(), 1, "{message}");
    assert!(message.contains("is not empty"), "{message}");
    assert_eq!(stdout_of(&traguardo(&pg.url, &["export"])), exported[0]);
}

/// What a log holds for each idempotency key it has.
fn keys_of(store: &dyn traguardo_events::Store) -> Vec<traguardo_events::StoredKey> {
    let mut keys = Vec::new();
    store
        .visit_keys(&mut |key| {
            keys.push(key);
            Ok(())
        })
        .expect("the keys read");
    keys
}

#[test]
fn copy_moves_the_idempotency_keys_both_ways() {
    use traguardo_events::store::IdempotencyKey;
    use traguardo_events::{AppendBatch, NewEvent, SqliteStore};

    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("first.db");
    let back = dir.path().join("back.db").display().to_string();
    let pg = crate::support::PgDb::create();
    // Writes made with keys, as the API records them for `Idempotency-Key`.
    let source = SqliteStore::open(&first, traguardo_events::Clock::system()).unwrap();
    for i in 1..=3 {
        let event = NewEvent {
            stream: "objective/2022-2250-A".into(),
            event_type: "phase_started".into(),
            schema: 1,
            data: json!({"phase": 1, "nota": format!("ripresa n. {i}")}),
            actor: "Dott. Stefano Specchia".into(),
            role: "manager".into(),
            correlation: None,
        };
        source
            .append_idempotent(
                AppendBatch::new().push(event),
                Some(IdempotencyKey {
                    key: format!("Dott. Stefano Specchia:richiesta-{i}"),
                    request_sha256: format!("{i:02}").repeat(32),
                }),
            )
            .wait()
            .unwrap();
    }
    let keys = keys_of(&source);
    assert_eq!(keys.len(), 3);
    source.shutdown();
    drop(source);
    let first = first.display().to_string();

    for (from, to) in [(&first, &pg.url), (&pg.url, &back)] {
        let out = traguardo("unused", &["copy", "--from", from, "--to", to]);
        assert!(
            out.status.success(),
            "{}{}",
            stdout_of(&out),
            stderr_of(&out)
        );
        assert!(
            stdout_of(&out).contains("copied 3 events and 3 idempotency keys"),
            "{}",
            stdout_of(&out)
        );
        let copied = traguardo::app::open_existing_store(std::path::Path::new(to)).unwrap();
        assert_eq!(keys_of(copied.as_ref()), keys, "{from} → {to}");
        for key in &keys {
            assert_eq!(
                copied.idempotent_result(&key.key).unwrap().as_ref(),
                Some(&key.result)
            );
        }
        copied.shutdown();
    }
}

#[test]
fn a_wrong_url_or_a_refused_connection_is_one_line_on_stderr_and_a_failure() {
    for (url, expected) in [
        (
            "postgres://postgres@127.0.0.1:1/traguardo",
            "cannot connect",
        ),
        (
            "postgres://127.0.0.1:notaport/x",
            "not a valid PostgreSQL URL",
        ),
    ] {
        for args in [
            &["verify"][..],
            &["export"],
            &["serve", "--addr", "127.0.0.1:0"],
        ] {
            let out = traguardo(url, args);
            assert!(!out.status.success(), "{args:?} on {url}");
            let message = stderr_of(&out);
            assert_eq!(message.trim().lines().count(), 1, "{args:?}: {message}");
            assert!(message.contains(expected), "{args:?}: {message}");
        }
    }
}

/// Every `(seq, hash)` the log holds, read with `traguardo export`.
fn exported_heads(db: &str) -> BTreeSet<(u64, String)> {
    let out = traguardo(db, &["export"]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    stdout_of(&out)
        .lines()
        .map(|line| {
            let event: Value = serde_json::from_str(line).expect("an NDJSON line");
            (
                event["seq"].as_u64().unwrap(),
                event["hash"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Writers, one per objective, each recording measurements through `base`
/// until the server stops answering; what each got acknowledged.
fn start_writers(
    base: &str,
    token: &str,
    indicators: &[String],
) -> Vec<tokio::task::JoinHandle<Vec<(u64, String)>>> {
    OBJECTIVES
        .iter()
        .zip(indicators)
        .enumerate()
        .map(|(w, ((key, _), indicator))| {
            let url = format!("{base}/api/v1/objectives/{key}/indicators/{indicator}/measurements");
            let token = token.to_string();
            tokio::spawn(async move {
                let mut acked = Vec::new();
                for i in 0.. {
                    let body = json!({"on": "2022-06-01", "text": format!("rilevazione {w}.{i}")});
                    let response = reqwest::Client::new()
                        .post(&url)
                        .bearer_auth(&token)
                        .json(&body)
                        .send()
                        .await;
                    let Ok(response) = response else { break };
                    if response.status() != StatusCode::CREATED {
                        break;
                    }
                    let Ok(body) = response.json::<Value>().await else {
                        break;
                    };
                    acked.push((
                        body["event"]["seq"].as_u64().unwrap(),
                        body["event"]["hash"].as_str().unwrap().to_string(),
                    ));
                }
                acked
            })
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_concurrent_http_writers_on_postgres_loses_nothing_acknowledged() {
    let db = Db::postgres();
    let server = Serve::start(&db.target());
    load_seed(&server).await;
    let token = manager(&server, &["2250", "2249", "2247", "2252"]).await;
    let mut indicators = Vec::new();
    for (key, _) in OBJECTIVES {
        indicators.push(qualitative_indicator(&server, key, &token).await);
    }
    let mut server = Some(server);
    let mut acked = BTreeSet::new();
    for pause in [400, 700, 550] {
        let running = server.take().unwrap_or_else(|| Serve::start(&db.target()));
        let writers = start_writers(&running.base, &token, &indicators);
        tokio::time::sleep(Duration::from_millis(pause)).await;
        running.kill();
        let before = acked.len();
        for writer in writers {
            acked.extend(writer.await.unwrap());
        }
        assert!(
            acked.len() > before,
            "the writers were acknowledged before the kill"
        );
    }
    let logged = exported_heads(&db.target());
    let lost: Vec<_> = acked.difference(&logged).collect();
    assert!(lost.is_empty(), "acknowledged but not in the log: {lost:?}");
    assert_verifies(&db.target());
}

/// A TCP proxy in front of PostgreSQL that the test can cut and restore: while
/// cut, it closes every connection it carries and every new one at once.
struct Proxy {
    port: u16,
    up: std::sync::Arc<std::sync::atomic::AtomicBool>,
    carried: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>>,
    accepting: tokio::task::JoinHandle<()>,
}

impl Proxy {
    async fn start(upstream: String) -> Proxy {
        use std::sync::atomic::Ordering;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let carried: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>> =
            std::sync::Arc::default();
        let (is_up, connections) = (up.clone(), carried.clone());
        let accepting = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !is_up.load(Ordering::SeqCst) {
                    continue; // dropped: closed at once
                }
                let upstream = upstream.clone();
                let task = tokio::spawn(async move {
                    if let Ok(mut server) = tokio::net::TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                connections.lock().unwrap().push(task.abort_handle());
            }
        });
        Proxy {
            port,
            up,
            carried,
            accepting,
        }
    }

    fn cut(&self) {
        self.up.store(false, std::sync::atomic::Ordering::SeqCst);
        for connection in self.carried.lock().unwrap().drain(..) {
            connection.abort();
        }
    }

    fn restore(&self) {
        self.up.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
        self.accepting.abort();
    }
}

/// Polls `probe` every 100 ms until it returns true, failing after `limit`.
async fn eventually<F: std::future::Future<Output = bool>>(
    what: &str,
    limit: Duration,
    mut probe: impl FnMut() -> F,
) {
    let started = Instant::now();
    while !probe().await {
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_postgres_is_unreachable_writes_and_status_answer_503_and_the_server_recovers_alone()
{
    let db = crate::support::PgDb::create();
    let server_url = crate::support::PgDb::server();
    let host_port = server_url
        .split_once("://")
        .map(|(_, rest)| rest.rsplit('@').next().unwrap_or(rest))
        .unwrap()
        .to_string();
    let proxy = Proxy::start(host_port.clone()).await;
    let proxied = db
        .url
        .replacen(&host_port, &format!("127.0.0.1:{}", proxy.port), 1);
    let server = Serve::start(&proxied);
    load_seed(&server).await;
    let token = manager(&server, &["2250"]).await;
    let write = |n: u32| {
        let url = server.url(
            "/api/v1/objectives/2022-2250-A/indicators/completezza-fasi-tempistica/measurements",
        );
        let token = token.clone();
        async move {
            let body = json!({"on": "2022-06-01", "text": format!("rilevazione {n}")});
            call(Method::POST, &url, Some(&token), Some(&body), &[]).await
        }
    };
    let status_code = || async { call(Method::GET, &server.url("/status"), None, None, &[]).await };
    let mut acked = BTreeSet::new();
    let (status, _, body) = write(1).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    acked.insert(body["event"]["seq"].as_u64().unwrap());

    proxy.cut();
    let (status, headers, problem) = write(2).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{problem}");
    assert_eq!(headers["content-type"], "application/problem+json");
    assert!(headers.contains_key("retry-after"));
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("non è raggiungibile"),
        "{problem}"
    );
    eventually("/status turns 503", Duration::from_secs(3), || async {
        let (status, headers, _) = status_code().await;
        status == StatusCode::SERVICE_UNAVAILABLE && headers.contains_key("retry-after")
    })
    .await;

    proxy.restore();
    let restored = Instant::now();
    for n in 3.. {
        let (status, _, body) = write(n).await;
        if status == StatusCode::CREATED {
            acked.insert(body["event"]["seq"].as_u64().unwrap());
            break;
        }
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert!(
            restored.elapsed() < Duration::from_secs(10),
            "writes still fail {:?} after PostgreSQL came back",
            restored.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eventually("/status turns 200", Duration::from_secs(5), || async {
        status_code().await.0 == StatusCode::OK
    })
    .await;
    let logged: BTreeSet<u64> = exported_heads(&db.url)
        .into_iter()
        .map(|(seq, _)| seq)
        .collect();
    assert!(acked.is_subset(&logged), "{acked:?} all in the log");
    server.stop();
    assert_verifies(&db.url);
}

/// A browser without JavaScript, by hand: no redirects followed, cookies sent
/// as told.
fn form_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("a client")
}

/// GET `path` on `server` with the session cookie (and the seq it must have
/// read): status, `Location`, page.
async fn page_on(server: &Serve, path: &str, session: &str, min_seq: u64) -> (u16, String, String) {
    let answer = form_client()
        .get(server.url(path))
        .header("cookie", format!("tg_sessione={session}"))
        .header("x-min-seq", min_seq.to_string())
        .send()
        .await
        .expect("an answer");
    let location = answer
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    (
        answer.status().as_u16(),
        location,
        answer.text().await.expect("a page"),
    )
}

/// How many `web_sessions` rows hold `value` as their name, read behind the
/// servers' backs.
fn session_rows(db: &Db, value: &str) -> i64 {
    let sql = "SELECT COUNT(*) FROM web_sessions WHERE secret_sha256 = ";
    match db {
        Db::Sqlite(_) => rusqlite::Connection::open(db.target())
            .expect("the file opens")
            .query_row(&format!("{sql}?1"), [value], |r| r.get(0))
            .expect("the count reads"),
        Db::Postgres(pg) => {
            let (url, value) = (pg.url.clone(), value.to_string());
            std::thread::spawn(move || {
                ::postgres::Client::connect(&url, ::postgres::NoTls)
                    .expect("a connection")
                    .query_one(&format!("{sql}$1"), &[&value])
                    .expect("the count reads")
                    .get(0)
            })
            .join()
            .expect("the count")
        }
    }
}

/// Sessions live in the database: a login on one `serve` process is a session
/// on every process over the same database (no sticky sessions), and logging
/// out on one ends it on all. The database holds the SHA-256 of the cookie's
/// secret, not the secret.
async fn a_session_opened_on_one_server_works_on_another_and_logging_out_ends_it_on_both(db: Db) {
    let target = db.target();
    let a = Serve::start(&target);
    load_seed(&a).await;
    let (status, body) = post(
        &a,
        "/api/v1/users",
        SERVE_ADMIN,
        json!({"username": "specchia", "password": "una-password-lunga",
               "actor": "Dott. Stefano Specchia", "role": "manager", "units": ["2250"]}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let b = Serve::start(&target);

    // Logged in through A.
    let http = form_client();
    let login = http.get(a.url("/accesso")).send().await.unwrap();
    let pre = cookie_of(&login, "tg_accesso").expect("the login form's cookie");
    let csrf = csrf_of(&login.text().await.unwrap());
    let answer = http
        .post(a.url("/accesso"))
        .header("cookie", format!("tg_accesso={pre}"))
        .form(&[
            ("username", "specchia"),
            ("password", "una-password-lunga"),
            ("csrf", csrf.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 303, "logged in on A");
    let session = cookie_of(&answer, "tg_sessione").expect("a session cookie");
    let hashed = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(session.as_bytes()));
    assert_eq!(
        session_rows(&db, &hashed),
        1,
        "the SHA-256 of the secret is kept"
    );
    assert_eq!(session_rows(&db, &session), 0, "the secret is not");

    // The same cookie on B: signed in, with the same CSRF token, and a form posted
    // on B records the event with the account's identity.
    let seq = head_seq(&a).await;
    let (status, _, home_b) = page_on(&b, "/", &session, seq).await;
    assert_eq!(status, 200, "signed in on B with A's cookie: {home_b}");
    assert!(home_b.contains("Dott. Stefano Specchia"), "{home_b}");
    let (_, _, objective_a) = page_on(&a, "/obiettivi/2022-2250-A", &session, seq).await;
    let (_, _, objective_b) = page_on(&b, "/obiettivi/2022-2250-A", &session, seq).await;
    let csrf = csrf_of(&objective_b);
    assert_eq!(csrf, csrf_of(&objective_a), "one session, one CSRF token");
    let started = http
        .post(b.url("/obiettivi/2022-2250-A/fasi/1/avvio"))
        .header("cookie", format!("tg_sessione={session}"))
        .form(&[("csrf", csrf.as_str()), ("on", "2022-03-01"), ("note", "")])
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), 303, "{}", started.text().await.unwrap());
    let (status, events) = get(&b, "/api/v1/objectives/2022-2250-A/events", SERVE_ADMIN).await;
    assert_eq!(status, StatusCode::OK);
    let last = events
        .as_array()
        .and_then(|e| e.last())
        .cloned()
        .expect("an event");
    assert_eq!(last["type"], "phase_started", "{last}");
    assert_eq!(last["actor"], "Dott. Stefano Specchia");

    // Logged out on A: gone on B too, and its row deleted.
    let logout = http
        .post(a.url("/esci"))
        .header("cookie", format!("tg_sessione={session}"))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), 303);
    let (status, location, _) = page_on(&b, "/", &session, 0).await;
    assert_eq!((status, location.as_str()), (303, "/accesso"), "ended on B");
    let (status, location, _) = page_on(&a, "/", &session, 0).await;
    assert_eq!((status, location.as_str()), (303, "/accesso"), "ended on A");
    assert_eq!(session_rows(&db, &hashed), 0);
    a.stop();
    b.stop();
}
