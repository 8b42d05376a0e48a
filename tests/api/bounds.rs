//! What a careless or hostile client sends (issue 13): repeated keys in a plan
//! document, and lists large enough to amplify the work or the answer.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::identity::{Site, ADMIN};

/// An answer's status, body as JSON, and the size of the body in bytes.
async fn sent(
    site: &Site,
    method: Method,
    path: &str,
    token: &str,
    body: String,
) -> (StatusCode, Value, usize) {
    let response = site
        .client
        .request(method, format!("{}{path}", site.base))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("the server answers");
    let status = response.status();
    let bytes = response.bytes().await.expect("a body");
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        bytes.len(),
    )
}

fn fields(problem: &Value) -> Vec<String> {
    problem["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|e| e["field"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_document_with_a_key_given_twice_is_refused_naming_the_key() {
    let site = Site::empty().await;
    let seed = std::fs::read_to_string(crate::support::seed_path()).unwrap();
    let twice = seed.replacen("\"year\": 2022,", "\"year\": 2023, \"year\": 2022,", 1);
    let (status, problem, _) = sent(&site, Method::POST, "/api/v1/plans", ADMIN, twice).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(fields(&problem), ["year"], "{problem}");
    let (status, plans) = site
        .call(Method::GET, "/api/v1/plans", ADMIN, None, &[])
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(plans, json!([]), "nothing was loaded");

    let deep = seed.replacen("\"weight\": ", "\"weight\": 100, \"weight\": ", 1);
    let (status, problem, _) = sent(&site, Method::POST, "/api/v1/plans", ADMIN, deep).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(
        fields(&problem),
        ["objectives[0].phases[0].weight"],
        "{problem}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revision_change_with_a_key_given_twice_is_refused() {
    let site = Site::with_seed().await;
    let body = r#"{"act": "D.G.C. n. 1", "reason": "prova", "changes": [
        {"kind": "deadline", "objective": "2022-2250-A", "phase": 1,
         "new_deadline": "2022-06-30", "new_deadline": "2022-12-31"}]}"#;
    let (status, problem, _) = sent(
        &site,
        Method::POST,
        "/api/v1/plans/2022/revisions",
        ADMIN,
        body.to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(fields(&problem), ["changes[0].new_deadline"], "{problem}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_thousand_neutralised_phases_are_one_short_problem() {
    let site = Site::with_seed().await;
    let validator = site.secret("Nucleo di Valutazione", "validator", &[]).await;
    let before = site.event_count().await;
    let phases: Vec<u32> = (1..=100_000).collect();
    let body = json!({"stage": "final", "outcome": "approved",
                      "neutralised_phases": phases, "note": "sterilizzazione"});
    let (status, problem, size) = sent(
        &site,
        Method::POST,
        "/api/v1/objectives/2022-2250-A/validations",
        &validator,
        body.to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(fields(&problem), ["neutralised_phases"], "{problem}");
    assert!(size < 2_000, "the answer is {size} bytes");
    assert_eq!(site.event_count().await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revision_of_ten_thousand_changes_is_refused_before_any_is_read() {
    let site = Site::with_seed().await;
    let before = site.event_count().await;
    // Each change is malformed: were they read one by one, each would add a problem.
    let changes: Vec<Value> = (0..10_000)
        .map(|i| json!({"kind": "deadline", "objective": "2022-2250-A", "phase": i}))
        .collect();
    let body = json!({"act": "D.G.C. n. 1", "reason": "prova", "changes": changes});
    let (status, problem, size) = sent(
        &site,
        Method::POST,
        "/api/v1/plans/2022/revisions",
        ADMIN,
        body.to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(fields(&problem), ["changes"], "{problem}");
    assert!(size < 2_000, "the answer is {size} bytes");

    let weights: serde_json::Map<String, Value> =
        (1..=10_000).map(|n| (n.to_string(), json!(0))).collect();
    let body = json!({"act": "D.G.C. n. 1", "reason": "prova", "changes": [
        {"kind": "weights", "objective": "2022-2250-A", "weights": weights}]});
    let (status, problem, size) = sent(
        &site,
        Method::POST,
        "/api/v1/plans/2022/revisions",
        ADMIN,
        body.to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(fields(&problem)[0], "changes[0].weights", "{problem}");
    assert!(size < 2_000, "the answer is {size} bytes");
    assert_eq!(site.event_count().await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_document_with_thousands_of_bad_items_answers_a_bounded_list() {
    let site = Site::empty().await;
    let mut plan: Value =
        serde_json::from_str(&std::fs::read_to_string(crate::support::seed_path()).unwrap())
            .unwrap();
    let bad: Vec<Value> = (0..20_000).map(|_| json!("")).collect();
    plan["objectives"][0]["phases"][0]["involved"] = json!(bad);
    for objective in plan["objectives"].as_array_mut().unwrap() {
        for phase in objective["phases"].as_array_mut().unwrap() {
            phase["deadline"] = json!("non una data");
        }
    }
    let (status, problem, size) = sent(
        &site,
        Method::POST,
        "/api/v1/plans",
        ADMIN,
        plan.to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let fields = fields(&problem);
    assert!(
        fields.contains(&"objectives[0].phases[0].involved".to_string()),
        "{fields:?}"
    );
    assert!(fields.len() <= 201, "{} problems listed", fields.len());
    assert!(size < 100_000, "the answer is {size} bytes");
}
