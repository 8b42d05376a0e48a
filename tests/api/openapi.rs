//! The OpenAPI document tells the truth (issue 15): problem+json errors from one
//! shared set of responses, every status a route can answer, `info`, `servers`
//! and tags, formats on numbers, dates, enums, the SSE media type, examples; and
//! its schemas can validate what the server really exchanges.

use std::collections::BTreeSet;

use serde_json::{json, Value};
use traguardo::App;
use traguardo_events::Clock;

use crate::support::traguardo;

const ADMIN: &str = "openapi-test-bootstrap-admin-token-0123456789";

/// The document as the running server serves it.
async fn served() -> Value {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let app = App::open(dir.path().join("traguardo.db"), Clock::system()).expect("the db opens");
    app.set_bootstrap_token(ADMIN);
    let server = traguardo::http::start(app, "127.0.0.1:0")
        .await
        .expect("the server starts");
    let url = format!("http://{}/api/v1/openapi.json", server.addr);
    let doc: Value = reqwest::get(&url).await.unwrap().json().await.unwrap();
    server.stop().await;
    doc
}

/// Every operation: (method, path, operation).
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut found = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().unwrap() {
            found.push((method.clone(), path.clone(), operation.clone()));
        }
    }
    found
}

/// A response, following a `$ref` into `components/responses`.
fn resolve<'a>(doc: &'a Value, response: &'a Value) -> &'a Value {
    match response["$ref"].as_str() {
        Some(reference) => doc
            .pointer(reference.trim_start_matches('#'))
            .unwrap_or_else(|| panic!("{reference} does not resolve")),
        None => response,
    }
}

fn statuses(operation: &Value) -> BTreeSet<u16> {
    operation["responses"]
        .as_object()
        .unwrap()
        .keys()
        .filter_map(|k| k.parse().ok())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_served_document_is_the_one_the_command_line_prints() {
    let doc = served().await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("unused.db");
    let out = traguardo(db.to_str().unwrap(), &["openapi"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(printed, doc);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_answer_is_a_shared_problem_json_response() {
    let doc = served().await;
    let problem_ref = json!({"$ref": "#/components/schemas/Problem"});
    for (method, path, operation) in operations(&doc) {
        for (code, response) in operation["responses"].as_object().unwrap() {
            let status: u16 = code.parse().expect("numeric statuses");
            if status < 400 {
                continue;
            }
            let reference = response["$ref"].as_str().unwrap_or_else(|| {
                panic!("{method} {path} {code} is not one of the shared problem responses")
            });
            assert!(reference.starts_with("#/components/responses/"));
            let content = resolve(&doc, response)["content"].as_object().unwrap();
            assert_eq!(
                content.keys().collect::<Vec<_>>(),
                ["application/problem+json"],
                "{method} {path} {code}"
            );
            assert_eq!(content["application/problem+json"]["schema"], problem_ref);
        }
    }
    // 503 and 429 say when to come back.
    for name in ["ServiceUnavailable", "TooManyRequests"] {
        assert!(
            doc["components"]["responses"][name]["headers"]["Retry-After"].is_object(),
            "{name}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_declares_the_statuses_its_shape_can_answer() {
    let doc = served().await;
    for (method, path, operation) in operations(&doc) {
        let declared = statuses(&operation);
        let public = operation["security"]
            .as_array()
            .is_some_and(|s| s.contains(&json!({})));
        // Every route: an unknown query parameter, a bad min_seq, a failure,
        // a read model behind, credentials that failed too often.
        let mut expected = BTreeSet::from([400, 422, 429, 500, 503]);
        if !public {
            expected.insert(401);
        }
        if method == "post" || method == "delete" {
            expected.insert(507);
        }
        if path.contains('{') {
            expected.insert(404);
        }
        if operation.get("requestBody").is_some() {
            expected.extend([400, 413, 415, 422]);
        }
        let headers: Vec<&str> = operation["parameters"]
            .as_array()
            .map(|ps| ps.iter().filter_map(|p| p["name"].as_str()).collect())
            .unwrap_or_default();
        if headers.contains(&"If-Match") {
            expected.extend([400, 412]);
        }
        let missing: Vec<_> = expected.difference(&declared).collect();
        assert!(missing.is_empty(), "{method} {path} lacks {missing:?}");
        assert!(
            operation["description"]
                .as_str()
                .is_some_and(|d| !d.is_empty()),
            "{method} {path} has no description"
        );
        for (code, response) in operation["responses"].as_object().unwrap() {
            let response = resolve(&doc, response);
            assert!(
                response["description"]
                    .as_str()
                    .is_some_and(|d| !d.is_empty()),
                "{method} {path} {code} has no description"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn info_servers_and_tags_are_what_a_catalogue_asks_for() {
    let doc = served().await;
    let version = doc["info"]["version"].as_str().unwrap();
    let parts: Vec<&str> = version.split('.').collect();
    assert!(
        parts.len() == 3 && parts.iter().all(|p| p.parse::<u32>().is_ok()),
        "{version} is not semver"
    );
    assert!(doc["info"]["contact"].is_object());
    assert!(doc["info"]["x-summary"].is_string());
    let servers = doc["servers"].as_array().expect("servers");
    assert!(!servers.is_empty());
    for server in servers {
        assert!(server["description"].is_string(), "{server}");
        let url = server["url"].as_str().unwrap();
        assert!(
            url.starts_with("https://") || server["x-sandbox"] == json!(true),
            "{url}"
        );
    }
    let defined: BTreeSet<&str> = doc["tags"]
        .as_array()
        .expect("tags")
        .iter()
        .map(|t| {
            assert!(t["description"].is_string(), "{t}");
            t["name"].as_str().unwrap()
        })
        .collect();
    for (method, path, operation) in operations(&doc) {
        for tag in operation["tags"].as_array().expect("tagged") {
            assert!(
                defined.contains(tag.as_str().unwrap()),
                "{method} {path}: tag {tag} is not defined"
            );
        }
    }
}

/// Every schema object in the document, with its JSON pointer.
fn schemas_within(value: &Value, at: String, found: &mut Vec<(String, Value)>) {
    match value {
        Value::Object(map) => {
            if map.contains_key("type") && !map.contains_key("$ref") {
                found.push((at.clone(), value.clone()));
            }
            for (k, v) in map {
                // Examples are data, not schemas.
                if k != "example" && k != "examples" {
                    schemas_within(v, format!("{at}/{k}"), found);
                }
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                schemas_within(v, format!("{at}/{i}"), found);
            }
        }
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numbers_have_formats_dates_are_dates_and_choices_are_enums() {
    let doc = served().await;
    let mut found = Vec::new();
    schemas_within(&doc, String::new(), &mut found);
    for (at, schema) in &found {
        let kinds: Vec<&str> = match &schema["type"] {
            Value::String(t) => vec![t.as_str()],
            Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        if kinds.contains(&"integer") || kinds.contains(&"number") {
            assert!(schema["format"].is_string(), "{at} has no format: {schema}");
        }
    }
    let param = |path: &str, method: &str, name: &str| -> Value {
        doc["paths"][path][method]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("{method} {path} has no {name}"))["schema"]
            .clone()
    };
    // Seqs are int64; dates are dates; choices are enums.
    assert_eq!(
        param("/api/v1/objectives/{key}", "get", "seq")["format"],
        "int64"
    );
    assert_eq!(
        param("/api/v1/objectives/{key}", "get", "at")["format"],
        "date"
    );
    assert_eq!(
        doc["components"]["schemas"]["StartBody"]["properties"]["on"]["format"],
        "date"
    );
    assert_eq!(
        param("/api/v1/events", "get", "format")["enum"],
        json!(["raw", "cloudevents"])
    );
    assert_eq!(
        param("/api/v1/plans/{year}/report", "get", "format")["enum"],
        json!(["json", "csv", "md", "html", "xlsx", "pdf"])
    );
    assert!(
        doc["paths"]["/api/v1/plans/{year}/report"]["get"]["responses"]["200"]["content"]
            ["application/pdf"]
            .is_object(),
        "the report documents its PDF"
    );
    // The live feed is an event stream.
    let feed = &doc["paths"]["/api/v1/events/stream"]["get"]["responses"]["200"]["content"];
    assert_eq!(
        feed.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["text/event-stream"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_json_request_body_has_an_example_that_its_schema_accepts() {
    let doc = served().await;
    for (method, path, operation) in operations(&doc) {
        let Some(content) = operation["requestBody"]["content"].as_object() else {
            continue;
        };
        for (media, body) in content {
            if !media.ends_with("json") {
                continue;
            }
            let schema = match body["schema"]["$ref"].as_str() {
                Some(r) => doc.pointer(r.trim_start_matches('#')).unwrap().clone(),
                None => body["schema"].clone(),
            };
            let example = body
                .get("example")
                .or_else(|| schema.get("example"))
                .unwrap_or_else(|| panic!("{method} {path} {media} has no example"));
            // The schema as a standalone JSON Schema, its references into the
            // document's components.
            let mut standalone = schema.clone();
            standalone["components"] = doc["components"].clone();
            let validator = jsonschema::options()
                .should_validate_formats(true)
                .build(&standalone)
                .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
            let errors: Vec<String> = validator
                .iter_errors(example)
                .map(|e| e.to_string())
                .collect();
            assert!(errors.is_empty(), "{method} {path}: {errors:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_weights_change_reads_back_under_the_names_the_request_used() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let app = App::open(dir.path().join("traguardo.db"), Clock::system()).expect("the db opens");
    app.set_bootstrap_token(ADMIN);
    let server = traguardo::http::start(app, "127.0.0.1:0")
        .await
        .expect("the server starts");
    let base = format!("http://{}/api/v1", server.addr);
    let client = reqwest::Client::new();
    let plan: Value =
        serde_json::from_str(&std::fs::read_to_string(crate::support::seed_path()).unwrap())
            .unwrap();
    let loaded = client
        .post(format!("{base}/plans"))
        .bearer_auth(ADMIN)
        .json(&plan)
        .send()
        .await
        .unwrap();
    assert_eq!(loaded.status(), 201);
    // The request as the document's own example writes it.
    let doc: Value = client
        .get(format!("{base}/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let example = doc["components"]["schemas"]["RevisionBody"]["example"].clone();
    let weights = example["changes"][1].clone();
    assert_eq!(weights["kind"], "weights");
    let recorded = client
        .post(format!("{base}/plans/2022/revisions"))
        .bearer_auth(ADMIN)
        .json(&example)
        .send()
        .await
        .unwrap();
    assert_eq!(recorded.status(), 201, "{}", recorded.text().await.unwrap());
    let revisions: Value = client
        .get(format!("{base}/plans/2022/revisions"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let change = &revisions[0]["changes"][1];
    assert_eq!(change["weights"], weights["weights"], "{change}");
    assert_eq!(change["weights_hundredths"], json!({"2": 3500, "3": 3500}));
    // The answer's schema can validate it: map keys are strings.
    let names = &doc["components"]["schemas"]["RevisionChange"];
    assert!(
        !names
            .to_string()
            .contains(r#""propertyNames":{"type":"integer""#),
        "{names}"
    );
    server.stop().await;
}
