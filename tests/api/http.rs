//! The HTTP API against the real server on a loopback port, a fresh database each.

use std::collections::BTreeSet;
use std::time::Duration;

use futures_util::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use traguardo::http::Server;
use traguardo::App;
use traguardo_events::Clock;

use crate::support::seed_path;

const ADMIN: &str = "test-bootstrap-admin-token";

/// A server on 127.0.0.1 with a random port and its own database.
struct TestServer {
    dir: tempfile::TempDir,
    server: Option<Server>,
    base: String,
    client: reqwest::Client,
}

impl TestServer {
    async fn start() -> TestServer {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let mut server = TestServer {
            dir,
            server: None,
            base: String::new(),
            client: reqwest::Client::new(),
        };
        server.boot().await;
        server
    }

    async fn boot(&mut self) {
        let app = App::open(self.dir.path().join("traguardo.db"), Clock::system())
            .expect("the database opens");
        app.set_bootstrap_token(ADMIN);
        let server = traguardo::http::start(app, "127.0.0.1:0")
            .await
            .expect("the server starts");
        self.base = format!("http://{}", server.addr);
        self.server = Some(server);
    }

    async fn restart(&mut self) {
        if let Some(server) = self.server.take() {
            server.stop().await;
        }
        self.boot().await;
    }

    /// Starts with the Alessandria seed loaded through the API.
    async fn with_seed() -> TestServer {
        let server = TestServer::start().await;
        let plan: Value =
            serde_json::from_str(&std::fs::read_to_string(seed_path()).unwrap()).unwrap();
        let (status, body) = server
            .call(Method::POST, "/api/v1/plans", Some(ADMIN), Some(plan))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        server
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let response = self.request(method, path, token, body, &[]).await;
        let status = response.status();
        let text = response.text().await.expect("a body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
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

    async fn token(&self, actor: &str, role: &str, units: &[&str]) -> String {
        let (status, body) = self
            .call(
                Method::POST,
                "/api/v1/tokens",
                Some(ADMIN),
                Some(json!({"actor": actor, "role": role, "units": units})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["token"].as_str().expect("a token").to_string()
    }

    async fn events(&self) -> Vec<Value> {
        let (status, body) = self
            .call(Method::GET, "/api/v1/events?limit=1000", Some(ADMIN), None)
            .await;
        assert_eq!(status, StatusCode::OK);
        body.as_array().expect("a list").clone()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            // Stop it in the background of the test's runtime if there still is one.
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                handle.spawn(server.stop());
            }
        }
    }
}

fn assert_problem(status: StatusCode, body: &Value, expected: StatusCode) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(body["status"], expected.as_u16(), "{body}");
    for field in ["type", "title", "detail"] {
        assert!(body[field].is_string(), "problem without {field}: {body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_objective_lives_its_whole_year_over_http() {
    let server = TestServer::with_seed().await;
    let manager = server
        .token("Dott. Stefano Specchia", "manager", &["2250"])
        .await;
    let nucleo = server
        .token("Nucleo di Valutazione", "validator", &[])
        .await;
    let auditor = server.token("Revisore dei conti", "auditor", &[]).await;
    let key = "/api/v1/objectives/2022-2250-B";

    let (status, body) = server
        .call(
            Method::POST,
            &format!("{key}/phases/1/start"),
            Some(&manager),
            Some(json!({"on": "2022-02-01"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["event"]["type"], "phase_started");
    assert_eq!(body["objective"]["phases"][0]["started_on"], "2022-02-01");
    let started_seq = body["event"]["seq"].as_u64().expect("a seq");

    let (status, body) = server
        .call(
            Method::POST,
            &format!("{key}/phases/1/complete"),
            Some(&manager),
            Some(json!({"on": "2022-03-30", "note": "riorganizzazione fatta", "evidence": ["prot. 1234/2022"]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(
        body["objective"]["phases"][0]["status"],
        "completed_on_time"
    );
    assert_eq!(body["event"]["version"], 3);

    // Phase 2 was due 2022-05-31: a revision by act of 2022-05-20 moves it to 2022-06-30.
    let (status, body) = server
        .call(
            Method::POST,
            "/api/v1/plans/2022/revisions",
            Some(ADMIN),
            Some(json!({
                "act": "D.G.C. n. 120 del 20/05/2022",
                "act_date": "2022-05-20",
                "reason": "istanze arretrate superiori al previsto",
                "changes": [{"kind": "deadline", "objective": "2022-2250-B", "phase": 2, "new_deadline": "2022-06-30"}]
            })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let revision = body["id"].as_str().expect("a revision id").to_string();

    for (phase, on) in [(2, "2022-06-20"), (3, "2022-12-20")] {
        let (status, body) = server
            .call(
                Method::POST,
                &format!("{key}/phases/{phase}/complete"),
                Some(&manager),
                Some(json!({"on": on})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let (status, body) = server
        .call(
            Method::POST,
            &format!("{key}/indicators/rimborsi-90gg/measurements"),
            Some(&manager),
            Some(json!({"on": "2022-12-31", "numerator": 187, "denominator": 200})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["objective"]["indicators"][1]["latest"]["value"], 93.5);

    let (status, body) = server
        .call(
            Method::POST,
            &format!("{key}/validations"),
            Some(&nucleo),
            Some(json!({"stage": "final", "outcome": "approved"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    let response = server
        .request(Method::GET, key, Some(&auditor), None, &[])
        .await;
    assert_eq!(response.headers()["etag"], "\"8\"");
    let state: Value = response.json().await.unwrap();
    assert_eq!(state["phases"][1]["deadline"], "2022-06-30");
    assert_eq!(state["phases"][1]["original_deadline"], "2022-05-31");
    assert_eq!(state["score"]["outcome"], "achieved");
    assert_eq!(state["score"]["on_time_pct"], 100);
    assert_eq!(state["score"]["validated_pct"], 100);

    // Valid time: before the act, the old deadline is in force.
    let (_, before) = server
        .call(
            Method::GET,
            &format!("{key}?at=2022-05-10"),
            Some(&auditor),
            None,
        )
        .await;
    assert_eq!(before["phases"][1]["deadline"], "2022-05-31");
    assert_eq!(before["score"]["outcome"], "in_progress");
    // Record time: at the seq of the start, only the start was known.
    let (_, then) = server
        .call(
            Method::GET,
            &format!("{key}?seq={started_seq}"),
            Some(&auditor),
            None,
        )
        .await;
    assert_eq!(then["version"], 2);
    assert_eq!(then["phases"][0]["completed_on"], Value::Null);

    let (status, scores) = server
        .call(
            Method::GET,
            "/api/v1/plans/2022/scores",
            Some(&manager),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let line = scores["objectives"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["key"] == "2022-2250-B")
        .unwrap()
        .clone();
    assert_eq!(line["on_time_pct"], 100);
    assert_eq!(line["validated_pct"], 100);

    let (status, revisions) = server
        .call(
            Method::GET,
            "/api/v1/plans/2022/revisions",
            Some(&auditor),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(revisions[0]["id"], revision.as_str());
    assert_eq!(revisions[0]["act"], "D.G.C. n. 120 del 20/05/2022");

    let (status, events) = server
        .call(Method::GET, &format!("{key}/events"), Some(&auditor), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let types: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "objective_defined",
            "phase_started",
            "phase_completed",
            "deadline_revised",
            "phase_completed",
            "phase_completed",
            "indicator_measured",
            "validation_recorded"
        ]
    );
    assert!(events
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["actor"] != "admin"
            || e["type"] == "deadline_revised"
            || e["type"] == "objective_defined"));
    assert_eq!(events[2]["actor"], "Dott. Stefano Specchia");

    let (status, integrity) = server
        .call(Method::GET, "/api/v1/integrity", Some(&auditor), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(integrity["ok"], true);
    assert_eq!(integrity["events"], integrity["head_seq"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_write_endpoint_admits_only_its_roles() {
    let server = TestServer::with_seed().await;
    let tokens = [
        ("admin", ADMIN.to_string()),
        (
            "manager",
            server.token("Dirigente 2250", "manager", &["2250"]).await,
        ),
        (
            "other_manager",
            server.token("Dirigente 2249", "manager", &["2249"]).await,
        ),
        ("validator", server.token("Nucleo", "validator", &[]).await),
        ("auditor", server.token("Revisore", "auditor", &[]).await),
    ];
    let key = "/api/v1/objectives/2022-2250-A";
    let objective_writes: Vec<(String, Value, &str)> = vec![
        (
            format!("{key}/phases/1/start"),
            json!({"on": "2022-02-01"}),
            "manager",
        ),
        (
            format!("{key}/phases/2/complete"),
            json!({"on": "2022-06-01"}),
            "manager",
        ),
        (
            format!("{key}/indicators/completezza-tempistica/measurements"),
            json!({"on": "2022-06-01", "text": "fasi complete e nei tempi"}),
            "manager",
        ),
        (
            format!("{key}/validations"),
            json!({"stage": "plan", "outcome": "approved"}),
            "validator",
        ),
    ];
    // Check the indicator id exists in the seed, so the test exercises the role rule.
    let (_, state) = server.call(Method::GET, key, Some(ADMIN), None).await;
    let indicator = state["indicators"][0]["id"].as_str().unwrap().to_string();
    let objective_writes: Vec<(String, Value, &str)> = objective_writes
        .into_iter()
        .map(|(path, body, role)| {
            (
                path.replace("completezza-tempistica", &indicator),
                body,
                role,
            )
        })
        .collect();
    for (path, body, allowed) in &objective_writes {
        for (role, token) in &tokens {
            if role == allowed {
                continue;
            }
            let (status, problem) = server
                .call(Method::POST, path, Some(token), Some(body.clone()))
                .await;
            assert_problem(status, &problem, StatusCode::FORBIDDEN);
        }
        let token = &tokens.iter().find(|(r, _)| r == allowed).unwrap().1;
        let (status, answer) = server
            .call(Method::POST, path, Some(token), Some(body.clone()))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{allowed} on {path}: {answer}");
    }
    // Retract: only the unit's manager.
    let retract = format!("{key}/phases/2/retract");
    for (role, token) in &tokens {
        if *role != "manager" {
            let (status, problem) = server
                .call(
                    Method::POST,
                    &retract,
                    Some(token),
                    Some(json!({"reason": "errore"})),
                )
                .await;
            assert_problem(status, &problem, StatusCode::FORBIDDEN);
        }
    }
    let (status, _) = server
        .call(
            Method::POST,
            &retract,
            Some(&tokens[1].1),
            Some(json!({"reason": "data errata"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);

    // Admin-only writes.
    let revision = json!({"act": "D.G.C. n. 1", "act_date": "2022-03-01", "reason": "r",
        "changes": [{"kind": "deadline", "objective": "2022-2250-A", "phase": 3, "new_deadline": "2022-08-31"}]});
    let token_body = json!({"actor": "x", "role": "auditor"});
    let mut plan: Value =
        serde_json::from_str(&std::fs::read_to_string(seed_path()).unwrap()).unwrap();
    plan["year"] = json!(2023);
    for obj in plan["objectives"].as_array_mut().unwrap() {
        obj["final_deadline"] = json!("2023-12-31");
        for phase in obj["phases"].as_array_mut().unwrap() {
            let deadline = phase["deadline"]
                .as_str()
                .unwrap()
                .replacen("2022", "2023", 1);
            phase["deadline"] = json!(deadline);
        }
    }
    for (path, body) in [
        ("/api/v1/plans/2022/revisions", revision),
        ("/api/v1/tokens", token_body),
        ("/api/v1/plans", plan),
    ] {
        for (role, token) in &tokens[1..] {
            let (status, problem) = server
                .call(Method::POST, path, Some(token), Some(body.clone()))
                .await;
            assert_problem(status, &problem, StatusCode::FORBIDDEN);
            let _ = role;
        }
        let (status, answer) = server
            .call(Method::POST, path, Some(ADMIN), Some(body.clone()))
            .await;
        assert_eq!(status, StatusCode::CREATED, "admin on {path}: {answer}");
    }
    // The log is for auditors and admins.
    for path in [
        "/api/v1/events",
        "/api/v1/integrity",
        "/api/v1/events/stream",
    ] {
        for (role, token) in &tokens {
            let response = server
                .request(Method::GET, path, Some(token), None, &[])
                .await;
            let expected = if matches!(*role, "admin" | "auditor") {
                StatusCode::OK
            } else {
                StatusCode::FORBIDDEN
            };
            assert_eq!(response.status(), expected, "{role} on {path}");
        }
    }
    // The actor on each event is the token's, never the body's.
    let events = server.events().await;
    let started = events
        .iter()
        .find(|e| e["type"] == "phase_started")
        .unwrap();
    assert_eq!(started["actor"], "Dirigente 2250");
    assert_eq!(started["role"], "manager");
    let validated = events
        .iter()
        .find(|e| e["type"] == "validation_recorded")
        .unwrap();
    assert_eq!(validated["actor"], "Nucleo");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_problem_details_with_the_right_status() {
    let server = TestServer::with_seed().await;
    let manager = server
        .token("Dott. Stefano Specchia", "manager", &["2250"])
        .await;
    let key = "/api/v1/objectives/2022-2250-A";
    let complete = format!("{key}/phases/1/complete");

    // 401: no token, a token that is not valid.
    let (status, body) = server.call(Method::GET, key, None, None).await;
    assert_problem(status, &body, StatusCode::UNAUTHORIZED);
    let (status, body) = server.call(Method::GET, key, Some("tg_nope"), None).await;
    assert_problem(status, &body, StatusCode::UNAUTHORIZED);
    // 404: objective, phase, route.
    let (status, body) = server
        .call(
            Method::GET,
            "/api/v1/objectives/2022-9999-Z",
            Some(&manager),
            None,
        )
        .await;
    assert_problem(status, &body, StatusCode::NOT_FOUND);
    let (status, body) = server
        .call(
            Method::POST,
            &format!("{key}/phases/9/complete"),
            Some(&manager),
            Some(json!({"on": "2022-05-01"})),
        )
        .await;
    assert_problem(status, &body, StatusCode::NOT_FOUND);
    let (status, body) = server
        .call(Method::GET, "/api/v1/nowhere", Some(&manager), None)
        .await;
    assert_problem(status, &body, StatusCode::NOT_FOUND);
    // 405.
    let (status, body) = server.call(Method::DELETE, key, Some(&manager), None).await;
    assert_problem(status, &body, StatusCode::METHOD_NOT_ALLOWED);
    // 422: a date in the future, an unknown field (actor comes from the token), a wrong type.
    let (status, body) = server
        .call(
            Method::POST,
            &complete,
            Some(&manager),
            Some(json!({"on": "2999-01-01"})),
        )
        .await;
    assert_problem(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["errors"][0]["field"], "on");
    let (status, body) = server
        .call(
            Method::POST,
            &complete,
            Some(&manager),
            Some(json!({"on": "2022-05-01", "actor": "someone else"})),
        )
        .await;
    assert_problem(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["errors"][0]["field"], "actor");
    let (status, body) = server
        .call(
            Method::POST,
            &complete,
            Some(&manager),
            Some(json!({"on": 20220501})),
        )
        .await;
    assert_problem(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["errors"][0]["field"], "on");
    // 400: not JSON at all.
    let response = server
        .client
        .post(server.url(&complete))
        .bearer_auth(&manager)
        .header("content-type", "application/json")
        .body("{\"on\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let (status, body) = (response.status(), response.json::<Value>().await.unwrap());
    assert_problem(status, &body, StatusCode::BAD_REQUEST);
    // 413: a body over 1 MiB.
    let huge = json!({"on": "2022-05-01", "note": "x".repeat(1_100_000)});
    let (status, body) = server
        .call(Method::POST, &complete, Some(&manager), Some(huge))
        .await;
    assert_problem(status, &body, StatusCode::PAYLOAD_TOO_LARGE);
    // 201, then 409 for a second completion.
    let (status, _) = server
        .call(
            Method::POST,
            &complete,
            Some(&manager),
            Some(json!({"on": "2022-05-01"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = server
        .call(
            Method::POST,
            &complete,
            Some(&manager),
            Some(json!({"on": "2022-05-02"})),
        )
        .await;
    assert_problem(status, &body, StatusCode::CONFLICT);
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("già stata completata"),
        "{body}"
    );
    // 412: a stale If-Match appends nothing.
    let before = server.events().await.len();
    let response = server
        .request(
            Method::POST,
            &format!("{key}/phases/2/start"),
            Some(&manager),
            Some(json!({"on": "2022-05-03"})),
            &[("if-match", "\"1\"")],
        )
        .await;
    let (status, body) = (response.status(), response.json::<Value>().await.unwrap());
    assert_problem(status, &body, StatusCode::PRECONDITION_FAILED);
    assert_eq!(server.events().await.len(), before);
    // A matching If-Match goes through.
    let response = server
        .request(
            Method::POST,
            &format!("{key}/phases/2/start"),
            Some(&manager),
            Some(json!({"on": "2022-05-03"})),
            &[("if-match", "\"2\"")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    // 409: loading the same year twice.
    let plan: Value = serde_json::from_str(&std::fs::read_to_string(seed_path()).unwrap()).unwrap();
    let (status, body) = server
        .call(Method::POST, "/api/v1/plans", Some(ADMIN), Some(plan))
        .await;
    assert_problem(status, &body, StatusCode::CONFLICT);
    // 422 with every problem of a bad plan document.
    let (status, body) = server
        .call(
            Method::POST,
            "/api/v1/plans",
            Some(ADMIN),
            Some(json!({"year": 2030, "units": [], "objectives": [{"unit": "1"}]})),
        )
        .await;
    assert_problem(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body["errors"].as_array().unwrap().len() >= 4, "{body}");
    // 422: a revision whose weights do not sum to 100 reports it and applies nothing.
    let before = server.events().await.len();
    let (status, body) = server
        .call(
            Method::POST,
            "/api/v1/plans/2022/revisions",
            Some(ADMIN),
            Some(json!({"act": "D.G.C. n. 9", "act_date": "2022-06-01", "reason": "r", "changes": [
                {"kind": "weights", "objective": "2022-2250-A", "weights": {"1": 30}},
                {"kind": "deadline", "objective": "2022-2250-C", "phase": 1, "new_deadline": "2023-06-30"}
            ]})),
        )
        .await;
    assert_problem(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["errors"].as_array().unwrap().len(), 2, "{body}");
    assert_eq!(server.events().await.len(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotent_retry_returns_the_first_answer_even_after_a_restart() {
    let mut server = TestServer::with_seed().await;
    let manager = server
        .token("Dott. Stefano Specchia", "manager", &["2250"])
        .await;
    let path = "/api/v1/objectives/2022-2250-C/phases/1/complete";
    let body = json!({"on": "2022-02-20", "note": "prima"});
    let key = [("idempotency-key", "retry-me-0001")];
    let first = server
        .request(Method::POST, path, Some(&manager), Some(body.clone()), &key)
        .await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.unwrap();
    let events = server.events().await.len();

    server.restart().await;
    let retry = server
        .request(Method::POST, path, Some(&manager), Some(body.clone()), &key)
        .await;
    assert_eq!(retry.status(), StatusCode::CREATED);
    assert_eq!(retry.headers()["idempotent-replayed"], "true");
    let retry: Value = retry.json().await.unwrap();
    assert_eq!(retry["event"], first["event"]);
    assert_eq!(retry["objective"]["phases"], first["objective"]["phases"]);
    assert_eq!(
        server.events().await.len(),
        events,
        "a retry appends nothing"
    );

    let other = json!({"on": "2022-02-21"});
    let (status, problem) = {
        let r = server
            .request(Method::POST, path, Some(&manager), Some(other), &key)
            .await;
        (r.status(), r.json::<Value>().await.unwrap())
    };
    assert_problem(status, &problem, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(server.events().await.len(), events);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_simultaneous_completions_of_one_phase_append_exactly_one_event() {
    let server = TestServer::with_seed().await;
    let manager = server
        .token("Dott. Stefano Specchia", "manager", &["2250"])
        .await;
    let url = server.url("/api/v1/objectives/2022-2250-A/phases/1/complete");
    let mut requests = Vec::new();
    for i in 0..50 {
        let request = server
            .client
            .post(&url)
            .bearer_auth(&manager)
            .json(&json!({"on": "2022-05-28", "note": format!("tentativo {i}")}));
        requests.push(tokio::spawn(async move {
            request.send().await.map(|r| r.status())
        }));
    }
    let mut statuses = Vec::new();
    for request in requests {
        statuses.push(request.await.unwrap().unwrap());
    }
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::CREATED)
            .count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::CONFLICT)
            .count(),
        49,
        "{statuses:?}"
    );
    let (_, events) = server
        .call(
            Method::GET,
            "/api/v1/objectives/2022-2250-A/events",
            Some(ADMIN),
            None,
        )
        .await;
    let completions = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "phase_completed")
        .count();
    assert_eq!(completions, 1);
}

/// Reads server-sent events until `count` have arrived; returns their ids.
async fn read_sse(response: reqwest::Response, count: usize) -> Vec<u64> {
    let mut ids = Vec::new();
    let mut text = String::new();
    let mut body = response.bytes_stream();
    while ids.len() < count {
        let chunk = tokio::time::timeout(Duration::from_secs(10), body.next())
            .await
            .expect("an event within 10 s")
            .expect("the stream goes on")
            .expect("a chunk");
        text.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = text.find("\n\n") {
            let frame: String = text.drain(..end + 2).collect();
            if let Some(id) = frame.lines().find_map(|l| l.strip_prefix("id:")) {
                ids.push(id.trim().parse().unwrap());
            }
        }
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_feed_resumes_from_last_event_id_without_gaps_or_duplicates() {
    let server = TestServer::with_seed().await;
    let manager = server
        .token("Dott. Stefano Specchia", "manager", &["2250"])
        .await;
    // 8 events of the plan + 1 token.
    let first = server
        .request(Method::GET, "/api/v1/events/stream", Some(ADMIN), None, &[])
        .await;
    assert_eq!(first.status(), StatusCode::OK);
    assert!(first.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let ids = read_sse(first, 5).await;
    assert_eq!(ids, [1, 2, 3, 4, 5]);

    // Meanwhile, more events are written.
    for (phase, on) in [(1, "2022-05-01"), (2, "2022-06-01")] {
        let (status, _) = server
            .call(
                Method::POST,
                &format!("/api/v1/objectives/2022-2250-A/phases/{phase}/complete"),
                Some(&manager),
                Some(json!({"on": on})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let resumed = server
        .request(
            Method::GET,
            "/api/v1/events/stream",
            Some(ADMIN),
            None,
            &[("last-event-id", "5")],
        )
        .await;
    let reading = tokio::spawn(read_sse(resumed, 7));
    // And one more while the feed is live.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (status, _) = server
        .call(
            Method::POST,
            "/api/v1/objectives/2022-2250-A/phases/3/complete",
            Some(&manager),
            Some(json!({"on": "2022-07-01"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let ids = reading.await.unwrap();
    assert_eq!(ids, [6, 7, 8, 9, 10, 11, 12]);
}

/// The paths of DESIGN.md §5 (with `{…}` parameters as the router writes them).
const CONTRACT_PATHS: &[(&str, &str)] = &[
    ("get", "/healthz"),
    ("get", "/status"),
    ("post", "/api/v1/tokens"),
    ("post", "/api/v1/plans"),
    ("get", "/api/v1/plans/{year}"),
    ("get", "/api/v1/plans/{year}/scores"),
    ("get", "/api/v1/plans/{year}/report"),
    ("post", "/api/v1/plans/{year}/revisions"),
    ("get", "/api/v1/plans/{year}/revisions"),
    ("get", "/api/v1/plans/{year}/revisions/{id}"),
    ("get", "/api/v1/objectives/{key}"),
    ("post", "/api/v1/objectives/{key}/phases/{n}/start"),
    ("post", "/api/v1/objectives/{key}/phases/{n}/complete"),
    ("post", "/api/v1/objectives/{key}/phases/{n}/retract"),
    (
        "post",
        "/api/v1/objectives/{key}/indicators/{id}/measurements",
    ),
    ("post", "/api/v1/objectives/{key}/validations"),
    ("get", "/api/v1/objectives/{key}/audit"),
    ("get", "/api/v1/objectives/{key}/events"),
    ("get", "/api/v1/events"),
    ("get", "/api/v1/events/stream"),
    ("get", "/api/v1/integrity"),
    ("get", "/api/v1/plans/{year}/flags"),
    ("get", "/metrics"),
    ("get", "/api/v1/openapi.json"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_covers_every_route() {
    let server = TestServer::with_seed().await;
    let (status, doc) = server
        .call(Method::GET, "/api/v1/openapi.json", None, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    let paths = doc["paths"].as_object().expect("paths");
    for (method, path) in CONTRACT_PATHS {
        assert!(
            paths.get(*path).and_then(|p| p.get(*method)).is_some(),
            "{method} {path} is not documented"
        );
    }
    // Every documented operation is routed: it never falls through to "no such route".
    let documented: BTreeSet<(String, String)> = paths
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .filter(|m| ["get", "post", "put", "delete", "patch"].contains(&m.as_str()))
                .map(move |m| (m.clone(), path.clone()))
        })
        .collect();
    assert!(documented.len() >= CONTRACT_PATHS.len());
    for (method, path) in &documented {
        let concrete = path
            .replace("{year}", "2022")
            .replace("{key}", "2022-2250-A")
            .replace("{n}", "1")
            .replace("{id}", "00000000-0000-0000-0000-000000000000");
        let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let response = tokio::time::timeout(
            Duration::from_secs(10),
            server
                .client
                .request(method.clone(), server.url(&concrete))
                .send(),
        )
        .await
        .expect("an answer")
        .unwrap();
        assert_ne!(
            response.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}"
        );
        if response.status() == StatusCode::NOT_FOUND {
            let body: Value = response.json().await.unwrap();
            assert_ne!(
                body["detail"], "no such route",
                "{method} {path} is documented but not routed"
            );
        }
    }
    // Schemas of the answers are there too.
    let schemas = doc["components"]["schemas"].as_object().expect("schemas");
    for name in [
        "Problem",
        "ObjectiveView",
        "PlanScores",
        "WriteAnswer",
        "RevisionBody",
    ] {
        assert!(schemas.contains_key(name), "schema {name} missing");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_status_and_metrics_answer() {
    let server = TestServer::with_seed().await;
    let (status, _) = server.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(status, StatusCode::OK);
    let response = server
        .request(Method::GET, "/status", None, None, &[])
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], 200);
    let _ = server
        .call(Method::GET, "/api/v1/plans/2022/scores", Some(ADMIN), None)
        .await;
    let metrics = server
        .request(Method::GET, "/metrics", Some(ADMIN), None, &[])
        .await
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("traguardo_http_requests_total{route=\"/api/v1/plans/{year}/scores\",method=\"GET\",status=\"200\"} 1"), "{metrics}");
    assert!(metrics.contains("traguardo_events 8"), "{metrics}");
    assert!(
        metrics.contains("traguardo_append_duration_seconds_bucket"),
        "{metrics}"
    );
}

#[test]
fn serve_demo_prints_where_it_listens_and_stops_cleanly_on_sigterm() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_traguardo"))
        .args(["serve", "--demo", "--addr", "127.0.0.1:0", "--db"])
        .arg(dir.path().join("demo.db"))
        .env_remove("TRAGUARDO_BOOTSTRAP_TOKEN")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("the binary starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut addr = None;
    let mut token = None;
    while addr.is_none() || token.is_none() {
        let line = lines
            .next()
            .expect("the server prints its address and token")
            .unwrap();
        if let Some(rest) = line.strip_prefix("traguardo listening on http://") {
            addr = Some(rest.trim().to_string());
        }
        if let Some(rest) = line.strip_prefix("admin token: ") {
            token = Some(rest.trim().to_string());
        }
    }
    let (addr, token) = (addr.unwrap(), token.unwrap());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let scores: Value = runtime.block_on(async {
        reqwest::Client::new()
            .get(format!("http://{addr}/api/v1/plans/2022/scores"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    });
    assert_eq!(scores["objectives"].as_array().unwrap().len(), 7);
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    assert!(
        status.success(),
        "serve exits cleanly on SIGTERM: {status:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_over_http_is_byte_identical_to_the_command_line_but_for_its_generation_time() {
    let server = TestServer::with_seed().await;
    let manager = server
        .token("Dott. Stefano Specchia", "manager", &["2250"])
        .await;
    for (phase, on) in [(1, "2022-05-20"), (2, "2022-07-15")] {
        let (status, _) = server
            .call(
                Method::POST,
                &format!("/api/v1/objectives/2022-2250-A/phases/{phase}/complete"),
                Some(&manager),
                Some(json!({"on": on})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let db = server.dir.path().join("traguardo.db");
    for (format, level) in [
        ("md", "phase"),
        ("html", "phase"),
        ("csv", "phase"),
        ("csv", "objective"),
        ("json", "phase"),
    ] {
        let response = server
            .request(
                Method::GET,
                &format!("/api/v1/plans/2022/report?format={format}&level={level}&at=2022-12-31"),
                Some(&manager),
                None,
                &[],
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK, "{format}");
        let over_http = response.bytes().await.unwrap().to_vec();
        let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_traguardo"))
            .arg("--db")
            .arg(&db)
            .args([
                "report",
                "--year",
                "2022",
                "--format",
                format,
                "--level",
                level,
                "--at",
                "2022-12-31",
            ])
            .output()
            .await
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let from_cli = output.stdout;
        match format {
            "csv" => assert_eq!(
                over_http, from_cli,
                "csv has no generation time: byte for byte"
            ),
            "json" => {
                let mut a: Value = serde_json::from_slice(&over_http).unwrap();
                let mut b: Value = serde_json::from_slice(&from_cli).unwrap();
                assert!(a["generated_at"].is_string());
                a["generated_at"] = Value::Null;
                b["generated_at"] = Value::Null;
                assert_eq!(a, b);
            }
            _ => {
                let (a, b) = (
                    String::from_utf8(over_http).unwrap(),
                    String::from_utf8(from_cli).unwrap(),
                );
                let (a, b): (Vec<&str>, Vec<&str>) = (a.lines().collect(), b.lines().collect());
                assert_eq!(a.len(), b.len(), "{format}");
                let differing: Vec<(&str, &str)> = a
                    .iter()
                    .zip(&b)
                    .filter(|(x, y)| x != y)
                    .map(|(x, y)| (*x, *y))
                    .collect();
                assert!(
                    differing
                        .iter()
                        .all(|(x, y)| x.contains("enerata il") && y.contains("enerata il")),
                    "{format}: only the generation time may differ: {differing:?}"
                );
            }
        }
    }
}

#[tokio::test]
async fn the_nucleo_features_over_http_state_flags_and_revisions() {
    let server = TestServer::with_seed().await;
    let manager = server.token("Dirigente 2250", "manager", &["2250"]).await;
    let nucleo = server.token("Nucleo", "validator", &[]).await;
    let key = "/api/v1/objectives/2022-2250-A";
    // A qualitative measurement, with its text in the state.
    let (status, body) = server
        .call(
            Method::POST,
            &format!("{key}/indicators/completezza-fasi-tempistica/measurements"),
            Some(&manager),
            Some(json!({"on": "2022-06-01", "text": "fasi rispettate"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let indicator = &body["objective"]["indicators"][0];
    assert_eq!(indicator["latest"]["text"], "fasi rispettate");
    assert_eq!(indicator["met"], Value::Null);
    // Out of range: a 422 naming the field, nothing appended.
    let (status, body) = server
        .call(
            Method::POST,
            "/api/v1/objectives/2022-2250-B/indicators/rimborsi-90gg/measurements",
            Some(&manager),
            Some(
                json!({"on": "2022-06-01", "numerator": 18446744073709551615u64, "denominator": 1}),
            ),
        )
        .await;
    assert_problem(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["errors"][0]["field"], "numerator");
    // A completion with its note and evidence, long after its date: flagged.
    let (status, body) = server
        .call(
            Method::POST,
            &format!("{key}/phases/1/complete"),
            Some(&manager),
            Some(json!({"on": "2021-01-02", "note": "in anticipo", "evidence": ["Prot. n. 1"]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let note = &body["objective"]["phases"][0]["notes"][0];
    assert_eq!(note["kind"], "completion");
    assert_eq!(note["text"], "in anticipo");
    assert_eq!(note["evidence"], json!(["Prot. n. 1"]));
    let seq = body["event"]["seq"].as_u64().unwrap();
    let recorded_at: chrono::DateTime<chrono::Utc> = body["event"]["recorded_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let (status, flags) = server
        .call(
            Method::GET,
            "/api/v1/plans/2022/flags",
            Some(&manager),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{flags}");
    let late = flags
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == "late_registration")
        .expect("a late registration");
    assert_eq!(late["status"], "open");
    let id = late["id"].as_str().unwrap();
    // Acknowledged by the Nucleo; nobody else may.
    let path = format!("/api/v1/plans/2022/flags/{id}/acknowledgements");
    let (status, body) = server
        .call(
            Method::POST,
            &path,
            Some(&manager),
            Some(json!({"note": "visto"})),
        )
        .await;
    assert_problem(status, &body, StatusCode::FORBIDDEN);
    let (status, body) = server
        .call(
            Method::POST,
            &path,
            Some(&nucleo),
            Some(json!({"note": "verificato sul protocollo"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["flag"]["status"], "acknowledged");
    let (status, body) = server
        .call(
            Method::POST,
            "/api/v1/plans/2022/flags/nope-1/acknowledgements",
            Some(&nucleo),
            Some(json!({"note": "x"})),
        )
        .await;
    assert_problem(status, &body, StatusCode::NOT_FOUND);
    // The flags as of the seq before the completion: none of them yet.
    let (status, earlier) = server
        .call(
            Method::GET,
            &format!("/api/v1/plans/2022/flags?seq={}", seq - 1),
            Some(&manager),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(earlier, json!([]));
    // A record-time cut alone is read at its own date, not today.
    let (status, cut) = server
        .call(
            Method::GET,
            &format!("{key}?seq={seq}"),
            Some(&manager),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{cut}");
    // The Italian date of its record time (the machine's own date differs from
    // 23:00 or 22:00 UTC on).
    let recorded_on = traguardo_events::clock::local_date(&recorded_at).to_string();
    assert_eq!(
        cut["score"]["at"], recorded_on,
        "the seq is read at the Italian date it was recorded on"
    );
    let (_, past) = server
        .call(
            Method::GET,
            &format!("{key}?as_of=2021-06-30T10:00:00Z"),
            Some(&manager),
            None,
        )
        .await;
    assert_problem(StatusCode::NOT_FOUND, &past, StatusCode::NOT_FOUND);
    // The new revision kinds over HTTP; a bad date in one change does not hide
    // the problems of the others.
    let (status, body) = server
        .call(
            Method::POST,
            "/api/v1/plans/2022/revisions",
            Some(ADMIN),
            Some(json!({"act": "D.G.C. n. 1", "reason": "prova", "changes": [
                {"kind": "deadline", "objective": "2022-2250-A", "phase": 2, "new_deadline": "2022-02-30"},
                {"kind": "indicator_target", "objective": "2022-2250-B", "indicator": "rimborsi-90gg", "target": 120},
                {"kind": "title", "objective": "2022-2250-Z", "title": "x"}
            ]})),
        )
        .await;
    assert_problem(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert!(fields.contains(&"changes[0].new_deadline"), "{body}");
    assert!(fields.contains(&"changes[1].target"), "{body}");
    assert!(fields.contains(&"changes[2].objective"), "{body}");
    let (status, body) = server
        .call(
            Method::POST,
            "/api/v1/plans/2022/revisions",
            Some(ADMIN),
            Some(json!({"act": "D.G.C. n. 2", "reason": "responsabile", "changes": [
                {"kind": "manager", "objective": "2022-2250-A", "manager": "Dott.ssa Maria Rossi"},
                {"kind": "add_indicator", "objective": "2022-2250-A",
                 "indicator": {"id": "atti", "description": "Atti adottati", "kind": "threshold", "target": 80}}
            ]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["objectives"][0]["manager"], "Dott.ssa Maria Rossi");
    assert_eq!(body["objectives"][0]["indicators"][1]["target"], 80);
}
