//! What the fuzzer (`.ci/schemathesis`) asks of the server, pinned as tests:
//! the query string holds only the parameters the document names, each once;
//! the live feed's events match their documented schema; values outside their
//! documented form are refused rather than read as something else; and the
//! statuses the document adds are really answered.

use futures_util::StreamExt;
use reqwest::{header, Method, StatusCode};
use serde_json::{json, Value};
use traguardo::http::layers::Conventions;

use crate::support::SeededApi;

const ADMIN: &str = "fuzzed-admin-token-0123456789abcdef";

/// A problem+json answer with its status.
async fn problem(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "application/problem+json",
        "{status}"
    );
    (status, response.json().await.unwrap())
}

/// The served OpenAPI document.
async fn document(api: &SeededApi) -> Value {
    api.send(Method::GET, "/api/v1/openapi.json", None, None, &[])
        .await
        .json()
        .await
        .unwrap()
}

/// The log's head seq.
async fn head_seq(api: &SeededApi) -> Value {
    let response = api
        .send(Method::GET, "/api/v1/integrity", Some(ADMIN), None, &[])
        .await;
    response.json::<Value>().await.unwrap()["head_seq"].clone()
}

/// A path of the document with its parameters filled from the seed.
fn concrete(path: &str) -> String {
    path.replace("{key}", "2022-2250-A")
        .replace("{year}", "2022")
        .replace("{n}", "1")
        .replace("{id}", "x")
        .replace("{username}", "nessuno")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_operation_refuses_a_query_parameter_it_does_not_take_with_a_400() {
    let api = SeededApi::start(ADMIN, Conventions::default()).await;
    let doc = document(&api).await;
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            assert!(
                operation["responses"]["400"].is_object(),
                "{method} {path} does not document its 400"
            );
            let method: Method = method.to_uppercase().parse().unwrap();
            let url = format!("{}?untl=2022-06-30", concrete(path));
            let response = api.send(method.clone(), &url, Some(ADMIN), None, &[]).await;
            let (status, body) = problem(response).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{method} {url}: {body}");
            assert_eq!(body["errors"][0]["field"], "untl", "{method} {url}");
            checked += 1;
        }
    }
    assert!(checked > 30, "{checked} operations");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_query_string_takes_documented_parameters_and_min_seq_each_once() {
    let api = SeededApi::start(ADMIN, Conventions::default()).await;
    // What the contract names, and min_seq, pass.
    for url in [
        "/api/v1/objectives/2022-2250-A?at=2022-06-30&min_seq=1",
        "/api/v1/objectives/2022-2250-A?seq=3",
        "/api/v1/plans/2022/report?format=csv&level=objective&at=2022-12-31",
        "/api/v1/events?after=2&limit=3&format=cloudevents",
        "/api/v1/plans/2022/flags?late_days=10",
        // An empty value is no value, as an empty form field sends it.
        "/api/v1/plans/2022/scores?at=",
    ] {
        let response = api.send(Method::GET, url, Some(ADMIN), None, &[]).await;
        assert_eq!(response.status(), StatusCode::OK, "{url}");
    }
    // A misspelt filter names itself and what the route takes.
    let response = api
        .send(
            Method::GET,
            "/api/v1/objectives/2022-2250-A?at=2022-06-30&as_off=2022-07-01",
            Some(ADMIN),
            None,
            &[],
        )
        .await;
    let (status, body) = problem(response).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["errors"].as_array().unwrap().len(), 1);
    assert_eq!(body["errors"][0]["field"], "as_off");
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("as_of") && message.contains("min_seq"),
        "{message}"
    );
    // The same parameter twice: which one would win is not for the client to guess.
    let response = api
        .send(
            Method::GET,
            "/api/v1/objectives/2022-2250-A?seq=1&seq=2",
            Some(ADMIN),
            None,
            &[],
        )
        .await;
    let (status, body) = problem(response).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["errors"][0]["field"], "seq");
    // A write too: nothing is recorded.
    let manager = api
        .token("Dott. Stefano Specchia", "manager", &["2250"])
        .await;
    let response = api
        .send(
            Method::POST,
            "/api/v1/objectives/2022-2250-A/phases/1/start?on=2022-03-01",
            Some(&manager),
            Some(json!({"on": "2022-03-01"})),
            &[],
        )
        .await;
    assert_eq!(problem(response).await.0, StatusCode::BAD_REQUEST);
    let state: Value = api
        .send(
            Method::GET,
            "/api/v1/objectives/2022-2250-A",
            Some(ADMIN),
            None,
            &[],
        )
        .await
        .json()
        .await
        .unwrap();
    assert!(state["phases"][0]["started_on"].is_null(), "{state}");
    // Pages outside the document are left alone.
    let page = api
        .send(Method::GET, "/problemi/validation?da=api", None, None, &[])
        .await;
    assert_eq!(page.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_feeds_events_match_the_schema_the_document_gives_each_event() {
    let api = SeededApi::start(ADMIN, Conventions::default()).await;
    let doc = document(&api).await;
    let media = &doc["paths"]["/api/v1/events/stream"]["get"]["responses"]["200"]["content"]
        ["text/event-stream"];
    let mut schema = match media["schema"]["$ref"].as_str() {
        Some(r) => doc.pointer(r.trim_start_matches('#')).unwrap().clone(),
        None => media["schema"].clone(),
    };
    schema["components"] = doc["components"].clone();
    let validator = jsonschema::validator_for(&schema).expect("a JSON Schema");
    // An empty Last-Event-ID (nothing seen yet) leaves `after` in charge.
    let response = api
        .send(
            Method::GET,
            "/api/v1/events/stream?after=2",
            Some(ADMIN),
            None,
            &[("last-event-id", "")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    // Each event as an SSE client reads it: its id, event type and data.
    let mut text = String::new();
    let mut body = response.bytes_stream();
    let mut events = Vec::new();
    while events.len() < 3 {
        let chunk = body.next().await.expect("the feed goes on").unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = text.find("\n\n") {
            let frame: String = text.drain(..end + 2).collect();
            let mut event = serde_json::Map::new();
            for line in frame.lines() {
                if let Some((field, value)) = line.split_once(':') {
                    if !field.is_empty() {
                        event.insert(
                            field.into(),
                            json!(value.strip_prefix(' ').unwrap_or(value)),
                        );
                    }
                }
            }
            if !event.is_empty() {
                events.push(Value::Object(event));
            }
        }
    }
    assert_eq!(events[0]["id"], "3");
    for event in &events {
        let errors: Vec<String> = validator
            .iter_errors(event)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{event}: {errors:?}");
        let data: Value = serde_json::from_str(event["data"].as_str().unwrap()).unwrap();
        assert_eq!(data["type"], event["event"]);
        assert_eq!(data["seq"].to_string(), event["id"].as_str().unwrap());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_outside_their_documented_form_are_refused_not_read_as_something_else() {
    let api = SeededApi::start(ADMIN, Conventions::default()).await;
    let revision = json!({
        "act": "D.G.C. n. 182 del 28/07/2022", "act_date": "2022-07-28",
        "reason": "Rimodulazione approvata dalla Giunta",
        "changes": [{"kind": "deadline", "objective": "2022-2250-A", "phase": 2, "new_deadline": "2022-07-31"}]
    });
    let revisions = "/api/v1/plans/2022/revisions";
    let before = head_seq(&api).await;
    // A dry run asked for in another word never records.
    let response = api
        .send(
            Method::POST,
            &format!("{revisions}?dry_run=yes"),
            Some(ADMIN),
            Some(revision.clone()),
            &[],
        )
        .await;
    let (status, body) = problem(response).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["errors"][0]["field"], "dry_run");
    // An Idempotency-Key outside its form is refused, on a dry run too.
    let response = api
        .send(
            Method::POST,
            &format!("{revisions}?dry_run=true"),
            Some(ADMIN),
            Some(revision.clone()),
            &[("idempotency-key", "una chiave")],
        )
        .await;
    assert_eq!(problem(response).await.0, StatusCode::BAD_REQUEST);
    // `""` is not a date.
    let mut undated = revision.clone();
    undated["act_date"] = json!("");
    let response = api
        .send(Method::POST, revisions, Some(ADMIN), Some(undated), &[])
        .await;
    let (status, body) = problem(response).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["errors"][0]["field"], "act_date");
    assert_eq!(head_seq(&api).await, before);
    // `dry_run=true` previews, `dry_run=false` records.
    let response = api
        .send(
            Method::POST,
            &format!("{revisions}?dry_run=true"),
            Some(ADMIN),
            Some(revision.clone()),
            &[],
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(head_seq(&api).await, before);
    let response = api
        .send(
            Method::POST,
            &format!("{revisions}?dry_run=false"),
            Some(ADMIN),
            Some(revision),
            &[],
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);

    // late_days is an int32, as documented.
    let response = api
        .send(
            Method::GET,
            "/api/v1/plans/2022/flags?late_days=2147483648",
            Some(ADMIN),
            None,
            &[],
        )
        .await;
    let (status, body) = problem(response).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["errors"][0]["field"], "late_days");

    // If-Match: what is not a list of entity tags is a 400, not a 412; an
    // empty one is no condition.
    let manager = api
        .token("Dott. Stefano Specchia", "manager", &["2250"])
        .await;
    let start = "/api/v1/objectives/2022-2250-A/phases/1/start";
    for malformed in ["{}", "7", "\"7\" \"8\"", "\"a b\""] {
        let response = api
            .send(
                Method::POST,
                start,
                Some(&manager),
                Some(json!({"on": "2022-03-01"})),
                &[("if-match", malformed)],
            )
            .await;
        assert_eq!(
            problem(response).await.0,
            StatusCode::BAD_REQUEST,
            "{malformed}"
        );
    }
    let response = api
        .send(
            Method::POST,
            start,
            Some(&manager),
            Some(json!({"on": "2022-03-01"})),
            &[("if-match", "")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_public_route_answers_the_429_it_documents_to_credentials_that_failed_too_often() {
    let conventions = Conventions {
        auth_failures: 1,
        ..Conventions::default()
    };
    let api = SeededApi::start(ADMIN, conventions).await;
    let doc = document(&api).await;
    assert!(doc["paths"]["/healthz"]["get"]["responses"]["429"].is_object());
    for _ in 0..3 {
        api.send(
            Method::GET,
            "/api/v1/plans/2022",
            Some("not-a-token"),
            None,
            &[],
        )
        .await;
    }
    let response = api
        .send(Method::GET, "/healthz", Some("not-a-token"), None, &[])
        .await;
    assert!(response.headers().contains_key(header::RETRY_AFTER));
    assert_eq!(problem(response).await.0, StatusCode::TOO_MANY_REQUESTS);
    // Without credentials, liveness is still answered.
    let response = api.send(Method::GET, "/healthz", None, None, &[]).await;
    assert_eq!(response.status(), StatusCode::OK);
}
