//! The conventions every answer of the API keeps (README, "HTTP conventions"):
//! caching, compression, CORS, request ids, rate limits, content types,
//! metrics and problem types, against the real server on a loopback port.

use std::io::Read;

use reqwest::{header, Method, StatusCode};
use serde_json::{json, Value};
use traguardo::http::layers::Conventions;

use crate::support::SeededApi;

const ADMIN: &str = "conventions-admin-token";

fn text<'a>(response: &'a reqwest::Response, name: &str) -> &'a str {
    response
        .headers()
        .get(name)
        .unwrap_or_else(|| panic!("no {name} in {:?}", response.headers()))
        .to_str()
        .unwrap()
}

const OBJECTIVE: &str = "/api/v1/objectives/2022-2250-A";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn if_none_match_any_on_the_report_of_no_plan_is_a_404_not_a_304() {
    let api = SeededApi::start(ADMIN, Conventions::default()).await;
    let report = |year: i32| format!("/api/v1/plans/{year}/report?format=html");
    let missing = api
        .send(
            Method::GET,
            &report(1999),
            Some(ADMIN),
            None,
            &[("if-none-match", "*")],
        )
        .await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    // The plan of the seed has a report: `*` matches it.
    let held = api
        .send(
            Method::GET,
            &report(2022),
            Some(ADMIN),
            None,
            &[("if-none-match", "*")],
        )
        .await;
    assert_eq!(held.status(), StatusCode::NOT_MODIFIED);
    // As of a record time before the plan was loaded there was no report
    // either: a 404 with or without the condition, and a 200 once it existed.
    let as_of = |at: &str| format!("{}&as_of={at}", report(2022));
    for condition in [&[("if-none-match", "*")][..], &[]] {
        let before = api
            .send(
                Method::GET,
                &as_of("2000-01-01T00:00:00Z"),
                Some(ADMIN),
                None,
                condition,
            )
            .await;
        assert_eq!(before.status(), StatusCode::NOT_FOUND, "{condition:?}");
    }
    let after = api
        .send(
            Method::GET,
            &as_of("2999-01-01T00:00:00Z"),
            Some(ADMIN),
            None,
            &[],
        )
        .await;
    assert_eq!(after.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_objective_read_is_revalidated_by_an_etag_that_covers_its_evaluation_date() {
    let api = SeededApi::start(ADMIN, Conventions::default()).await;
    let manager = api.token("Dirigente 2250", "manager", &["2250"]).await;

    let today = api
        .send(Method::GET, OBJECTIVE, Some(&manager), None, &[])
        .await;
    assert_eq!(today.status(), StatusCode::OK);
    assert_eq!(text(&today, "cache-control"), "private, no-cache");
    // The contract's tag for the current state: the version.
    let etag = text(&today, "etag").to_string();
    assert_eq!(etag, "\"1\"");

    // The same tag (or its weak form) in If-None-Match: 304, no body.
    for tag in [etag.clone(), format!("W/{etag}"), format!("\"x\", {etag}")] {
        let again = api
            .send(
                Method::GET,
                OBJECTIVE,
                Some(&manager),
                None,
                &[("if-none-match", &tag)],
            )
            .await;
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED, "{tag}");
        assert_eq!(text(&again, "etag"), etag);
        assert!(again.bytes().await.unwrap().is_empty());
    }

    // Another evaluation date is another body, with another tag.
    let at = format!("{OBJECTIVE}?at=2022-06-30");
    let past = api
        .send(
            Method::GET,
            &at,
            Some(&manager),
            None,
            &[("if-none-match", &etag)],
        )
        .await;
    assert_eq!(past.status(), StatusCode::OK);
    assert_eq!(text(&past, "etag"), "\"1-2022-06-30\"");

    // If-Match: a list where one tag holds goes through.
    let start = format!("{OBJECTIVE}/phases/1/start");
    let written = api
        .send(
            Method::POST,
            &start,
            Some(&manager),
            Some(json!({"on": "2022-02-01"})),
            &[("if-match", "\"0\", \"1\"")],
        )
        .await;
    assert_eq!(written.status(), StatusCode::CREATED);
    assert_eq!(text(&written, "cache-control"), "no-store");
    let seq: Value = written.json().await.unwrap();
    let seq = seq["event"]["seq"].as_u64().unwrap();

    // The write changed the version: the old tag is no longer current.
    let after = api
        .send(
            Method::GET,
            OBJECTIVE,
            Some(&manager),
            None,
            &[("if-none-match", &etag)],
        )
        .await;
    assert_eq!(after.status(), StatusCode::OK);
    let current = text(&after, "etag").to_string();
    assert_eq!(current, "\"2\"");
    // The state as of the write's seq, evaluated at that day, has its own tag.
    let cut = api
        .send(
            Method::GET,
            &format!("{OBJECTIVE}?seq={seq}&at=2022-03-01"),
            Some(&manager),
            None,
            &[],
        )
        .await;
    assert_eq!(text(&cut, "etag"), "\"2-2022-03-01\"");

    let complete = format!("{OBJECTIVE}/phases/1/complete");
    // A weak tag never holds for If-Match, not even the current version's.
    for (tag, status) in [
        ("W/\"2\"", StatusCode::PRECONDITION_FAILED),
        ("\"1\", \"3\"", StatusCode::PRECONDITION_FAILED),
        // Not an entity tag (the quotes forgotten): a 400 that says so, where a
        // 412 would send the client to read again and retry the same mistake.
        ("2", StatusCode::BAD_REQUEST),
    ] {
        let refused = api
            .send(
                Method::POST,
                &complete,
                Some(&manager),
                Some(json!({"on": "2022-02-02"})),
                &[("if-match", tag)],
            )
            .await;
        assert_eq!(refused.status(), status, "{tag}");
        assert_eq!(text(&refused, "content-type"), "application/problem+json");
    }
    // The tag a read of today answered holds, as the contract's "<version>" does.
    let written = api
        .send(
            Method::POST,
            &complete,
            Some(&manager),
            Some(json!({"on": "2022-02-02"})),
            &[("if-match", &current)],
        )
        .await;
    assert_eq!(written.status(), StatusCode::CREATED);
}

async fn report_as(api: &SeededApi, encoding: &str) -> reqwest::Response {
    let response = api
        .send(
            Method::GET,
            "/api/v1/plans/2022/report?format=html",
            Some(ADMIN),
            None,
            &[("accept-encoding", encoding)],
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    response
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_and_answers_are_compressed_as_accept_encoding_asks() {
    let api = SeededApi::start(ADMIN, Conventions::default()).await;
    let plain = report_as(&api, "identity").await;
    assert!(plain.headers().get("content-encoding").is_none());
    let plain = plain.bytes().await.unwrap();
    assert!(plain.len() > 10_000, "{}", plain.len());
    for encoding in ["gzip", "br", "zstd"] {
        let response = report_as(&api, encoding).await;
        assert_eq!(text(&response, "content-encoding"), encoding);
        let body = response.bytes().await.unwrap();
        assert!(
            body.len() * 3 < plain.len(),
            "{encoding}: {} of {}",
            body.len(),
            plain.len()
        );
        if encoding == "gzip" {
            let mut unpacked = Vec::new();
            flate2::read::GzDecoder::new(&body[..])
                .read_to_end(&mut unpacked)
                .unwrap();
            assert_eq!(unpacked, plain);
        }
    }
    // JSON answers too.
    let scores = api
        .send(
            Method::GET,
            "/api/v1/plans/2022/scores",
            Some(ADMIN),
            None,
            &[("accept-encoding", "br")],
        )
        .await;
    assert_eq!(text(&scores, "content-encoding"), "br");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_answers_preflights_and_allows_only_the_configured_origins() {
    let origin = "https://comune.example.it";
    let api = SeededApi::start(
        ADMIN,
        Conventions {
            cors_origins: vec![header::HeaderValue::from_static(origin)],
            ..Conventions::default()
        },
    )
    .await;
    let preflight = |from: &'static str| {
        api.client
            .request(Method::OPTIONS, api.url(OBJECTIVE))
            .header("origin", from)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "authorization, if-match")
            .send()
    };
    let allowed = preflight(origin).await.unwrap();
    assert_eq!(allowed.status(), StatusCode::OK);
    assert_eq!(text(&allowed, "access-control-allow-origin"), origin);
    let methods = text(&allowed, "access-control-allow-methods").to_lowercase();
    assert!(methods.contains("post"), "{methods}");
    let headers = text(&allowed, "access-control-allow-headers").to_lowercase();
    assert!(
        headers.contains("if-match") && headers.contains("authorization"),
        "{headers}"
    );
    let other = preflight("https://elsewhere.example.com").await.unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());
    // A simple request from the origin may read the answer and its headers.
    let read = api
        .send(
            Method::GET,
            OBJECTIVE,
            Some(ADMIN),
            None,
            &[("origin", origin)],
        )
        .await;
    assert_eq!(text(&read, "access-control-allow-origin"), origin);
    let exposed = text(&read, "access-control-expose-headers").to_lowercase();
    assert!(
        exposed.contains("etag") && exposed.contains("x-request-id"),
        "{exposed}"
    );

    // By default no origin is allowed, but a preflight is still answered.
    let closed = SeededApi::start(ADMIN, Conventions::default()).await;
    let response = closed
        .client
        .request(Method::OPTIONS, closed.url(OBJECTIVE))
        .header("origin", origin)
        .header("access-control-request-method", "GET")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response
        .headers()
        .get("access-control-allow-origin")
        .is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_carries_a_request_id_and_every_problem_quotes_it() {
    let api = SeededApi::start(ADMIN, Conventions::default()).await;
    let missing = "/api/v1/objectives/2022-9999-Z";
    let made = api.send(Method::GET, missing, Some(ADMIN), None, &[]).await;
    let id = text(&made, "x-request-id").to_string();
    let uuid = uuid::Uuid::parse_str(&id).expect("a UUID when the client sends none");
    let problem: Value = made.json().await.unwrap();
    assert_eq!(problem["request_id"], id);
    assert_eq!(problem["instance"], uuid.urn().to_string());

    let kept = api
        .send(
            Method::GET,
            missing,
            Some(ADMIN),
            None,
            &[("x-request-id", "sportello-42")],
        )
        .await;
    assert_eq!(text(&kept, "x-request-id"), "sportello-42");
    let problem: Value = kept.json().await.unwrap();
    assert_eq!(problem["request_id"], "sportello-42");
    // Also before any handler runs: a refused token, an unknown route.
    let refused = api
        .send(
            Method::GET,
            OBJECTIVE,
            Some("nope"),
            None,
            &[("x-request-id", "r-401")],
        )
        .await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let problem: Value = refused.json().await.unwrap();
    assert_eq!(problem["request_id"], "r-401");
    // An id that could not go into a log line is replaced.
    let long = "x".repeat(300);
    let replaced = api
        .send(
            Method::GET,
            "/healthz",
            None,
            None,
            &[("x-request-id", &long)],
        )
        .await;
    assert!(uuid::Uuid::parse_str(text(&replaced, "x-request-id")).is_ok());
}

#[test]
fn serve_logs_each_request_with_its_request_id() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_traguardo"))
        .arg("--db")
        .arg(dir.path().join("t.db"))
        .args([
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--log-format",
            "json",
            "--cors-origin",
            "https://comune.example.it",
        ])
        .env("RUST_LOG", "info")
        .env_remove("TRAGUARDO_DB")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The log goes to standard output, after the line saying where it listens.
    let (lines_to, lines) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_to.send(line).is_err() {
                break;
            }
        }
    });
    let timeout = std::time::Duration::from_secs(30);
    let base = loop {
        let line = lines
            .recv_timeout(timeout)
            .expect("serve prints where it listens");
        if let Some(addr) = line.strip_prefix("traguardo listening on ") {
            break addr.trim().to_string();
        }
    };
    let addr = base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    std::io::Write::write_all(
        &mut stream,
        format!(
            "GET /status HTTP/1.1\r\nHost: {addr}\r\nx-request-id: log-me-7\r\nConnection: close\r\n\r\n"
        )
        .as_bytes(),
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        answer.to_lowercase().contains("x-request-id: log-me-7"),
        "{answer}"
    );
    let mut seen = Vec::new();
    let line = loop {
        match lines.recv_timeout(timeout) {
            Ok(line) if line.contains("log-me-7") => break line,
            Ok(line) => seen.push(line),
            Err(_) => panic!("no log line with the request id:\n{}", seen.join("\n")),
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    let entry: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(entry["span"]["request_id"], "log-me-7", "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_and_failed_authentications_are_rate_limited_with_429_and_retry_after() {
    let api = SeededApi::start(
        ADMIN,
        Conventions {
            writes_per_token: 3,
            auth_failures: 3,
            ..Conventions::default()
        },
    )
    .await;
    let manager = api.token("Dirigente 2250", "manager", &["2250"]).await;
    let other = api.token("Dirigente 2252", "manager", &["2252"]).await;
    let start = format!("{OBJECTIVE}/phases/1/start");
    let mut left = Vec::new();
    for _ in 0..3 {
        // Refused writes count too: the limit is on requests, not on events.
        let response = api
            .send(
                Method::POST,
                &start,
                Some(&manager),
                Some(json!({"on": "2999-01-01"})),
                &[],
            )
            .await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert!(text(&response, "ratelimit-policy").contains("q=3;w=60"));
        left.push(text(&response, "ratelimit").to_string());
    }
    assert!(left[0].contains("r=2"), "{left:?}");
    assert!(left[2].contains("r=0"), "{left:?}");
    let refused = api
        .send(
            Method::POST,
            &start,
            Some(&manager),
            Some(json!({"on": "2022-02-01"})),
            &[],
        )
        .await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = text(&refused, "retry-after").parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    assert!(text(&refused, "ratelimit").contains("r=0"));
    assert_eq!(text(&refused, "content-type"), "application/problem+json");
    let problem: Value = refused.json().await.unwrap();
    assert_eq!(problem["status"], 429);
    assert_eq!(problem["type"], "/problemi/too-many-requests");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("Riprovare tra"),
        "{problem}"
    );
    // Reads go on, and so do another token's writes.
    let read = api
        .send(Method::GET, OBJECTIVE, Some(&manager), None, &[])
        .await;
    assert_eq!(read.status(), StatusCode::OK);
    let theirs = api
        .send(
            Method::POST,
            "/api/v1/objectives/2022-2252-A/phases/1/start",
            Some(&other),
            Some(json!({"on": "2999-01-01"})),
            &[],
        )
        .await;
    assert_ne!(theirs.status(), StatusCode::TOO_MANY_REQUESTS);

    // Failed authentications: after three, this address is refused for a while,
    // whatever token it then sends.
    for _ in 0..4 {
        let response = api
            .send(Method::GET, OBJECTIVE, Some("guess"), None, &[])
            .await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    for token in ["guess-again", ADMIN] {
        let response = api
            .send(Method::GET, OBJECTIVE, Some(token), None, &[])
            .await;
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS, "{token}");
        assert!(text(&response, "retry-after").parse::<u64>().unwrap() >= 1);
    }
    // Without credentials there is nothing to guess: still answered.
    let health = api.send(Method::GET, "/healthz", None, None, &[]).await;
    assert_eq!(health.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_503_says_when_to_retry() {
    let api = SeededApi::start(ADMIN, Conventions::default()).await;
    // A seq this instance will not reach within its wait.
    let response = api
        .send(
            Method::GET,
            OBJECTIVE,
            Some(ADMIN),
            None,
            &[("x-min-seq", "1000000")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(text(&response, "retry-after").parse::<u64>().unwrap() >= 1);
}

/// A write's answer is written by hand, not through serde: it must be the
/// very bytes serde writes for `WriteAnswer`, its objective the very bytes a
/// read of the objective answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writes_answer_is_the_serde_form_of_its_schema_byte_for_byte() {
    let api = SeededApi::start(ADMIN, Conventions::default()).await;
    let manager = api.token("Dirigente 2250", "manager", &["2250"]).await;
    let response = api
        .send(
            Method::POST,
            &format!("{OBJECTIVE}/phases/1/start"),
            Some(&manager),
            Some(json!({"on": "2022-02-01", "note": "Avviata: \"prima\" riunione, è così"})),
            &[],
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(text(&response, "content-type"), "application/json");
    let written = response.bytes().await.unwrap();
    let read = api
        .send(Method::GET, OBJECTIVE, Some(&manager), None, &[])
        .await;
    assert_eq!(read.status(), StatusCode::OK);
    let objective = String::from_utf8(read.bytes().await.unwrap().to_vec()).unwrap();
    let parsed: Value = serde_json::from_slice(&written).unwrap();
    let event = &parsed["event"];
    let field = |name: &str| event[name].as_str().unwrap().to_string();
    let expected = traguardo::http::objectives::WriteAnswer {
        event: traguardo::http::objectives::EventRef {
            seq: event["seq"].as_u64().unwrap(),
            id: field("id"),
            event_type: field("type"),
            version: event["version"].as_u64().unwrap(),
            recorded_at: field("recorded_at"),
            hash: field("hash"),
        },
        objective: serde_json::value::RawValue::from_string(objective).unwrap(),
    };
    assert_eq!(
        String::from_utf8(written.to_vec()).unwrap(),
        serde_json::to_string(&expected).unwrap()
    );
    assert_eq!(parsed["objective"]["phases"][0]["started_on"], "2022-02-01");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_must_say_they_are_json_and_every_201_says_where_its_resource_is() {
    let api = SeededApi::start(ADMIN, Conventions::default()).await;
    let manager = api.token("Dirigente 2250", "manager", &["2250"]).await;
    let start = format!("{OBJECTIVE}/phases/1/start");
    let body = r#"{"on": "2022-02-01"}"#;
    for content_type in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        None,
    ] {
        let mut request = api
            .client
            .post(api.url(&start))
            .bearer_auth(&manager)
            .body(body);
        if let Some(value) = content_type {
            request = request.header("content-type", value);
        }
        let response = request.send().await.unwrap();
        assert_eq!(
            response.status(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{content_type:?}"
        );
        assert_eq!(text(&response, "content-type"), "application/problem+json");
        let problem: Value = response.json().await.unwrap();
        assert_eq!(problem["type"], "/problemi/unsupported-media-type");
    }
    // A +json type is JSON; nothing was appended by the refusals above.
    let response = api
        .client
        .post(api.url(&start))
        .bearer_auth(&manager)
        .header(
            "content-type",
            "application/vnd.traguardo+json; charset=utf-8",
        )
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let location = text(&response, "location").to_string();
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["objective"]["version"], 2);
    assert_eq!(
        location,
        format!("{OBJECTIVE}?seq={}", answer["event"]["seq"])
    );
    let there = api
        .send(Method::GET, &location, Some(&manager), None, &[])
        .await;
    assert_eq!(there.status(), StatusCode::OK);

    // The other writes that create something say where.
    let revision = api
        .send(
            Method::POST,
            "/api/v1/plans/2022/revisions",
            Some(ADMIN),
            Some(json!({"act": "D.G.C. n. 1", "act_date": "2022-03-01", "reason": "prova",
                        "changes": [{"kind": "title", "objective": "2022-2250-A", "title": "Nuovo"}]})),
            &[],
        )
        .await;
    assert_eq!(revision.status(), StatusCode::CREATED);
    let location = text(&revision, "location").to_string();
    assert!(
        location.starts_with("/api/v1/plans/2022/revisions/"),
        "{location}"
    );
    let user = api
        .send(
            Method::POST,
            "/api/v1/users",
            Some(ADMIN),
            Some(
                json!({"username": "mrossi", "password": "una-password-lunga-1",
                        "actor": "Mario Rossi", "role": "auditor"}),
            ),
            &[],
        )
        .await;
    assert_eq!(user.status(), StatusCode::CREATED);
    assert_eq!(text(&user, "location"), "/api/v1/users/mrossi");

    // The pages' forms are form-encoded, as they always were.
    let login = api
        .client
        .post(api.url("/accesso"))
        .form(&[("username", "mrossi"), ("password", "sbagliata")])
        .send()
        .await
        .unwrap();
    assert_ne!(login.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(login.status().as_u16() < 500, "{}", login.status());
}

/// The metric families of a classic text, checked line by line: each `# TYPE`
/// follows its `# HELP`, and each sample belongs to a declared family.
fn check_classic_text(text: &str) -> Vec<String> {
    let mut families: Vec<(String, String)> = Vec::new();
    let mut help = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, words) = rest.split_once(' ').unwrap();
            assert!(!words.trim().is_empty(), "{line}");
            help = Some(name.to_string());
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert_eq!(help.take().as_deref(), Some(name), "no help before {line}");
            assert!(
                ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                "{line}"
            );
            families.push((name.to_string(), kind.to_string()));
        } else {
            assert!(!line.starts_with('#'), "{line}");
            let sample = line.split(['{', ' ']).next().unwrap();
            let (family, kind) = families.last().expect("a sample after its TYPE");
            let ok = match kind.as_str() {
                "histogram" => ["_bucket", "_sum", "_count"]
                    .iter()
                    .any(|suffix| sample == format!("{family}{suffix}")),
                _ => sample == family,
            };
            assert!(ok, "{sample} is not of {family} ({kind})");
        }
    }
    families.into_iter().map(|(name, _)| name).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_negotiate_their_format_and_describe_every_family() {
    let api = SeededApi::start(ADMIN, Conventions::default()).await;
    let _ = api
        .send(Method::GET, OBJECTIVE, Some(ADMIN), None, &[])
        .await;

    let classic = api
        .send(Method::GET, "/metrics", Some(ADMIN), None, &[])
        .await;
    assert_eq!(
        text(&classic, "content-type"),
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let body = classic.text().await.unwrap();
    let families = check_classic_text(&body);
    for family in [
        "traguardo_http_requests_total",
        "traguardo_http_request_duration_seconds",
        "traguardo_build_info",
        "traguardo_store_appended_events_total",
        "traguardo_store_commits_total",
        "traguardo_store_group_size_events",
        "traguardo_store_commit_seconds",
        "traguardo_read_model_seq",
        "traguardo_read_model_lag_events",
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_open_fds",
        "process_start_time_seconds",
    ] {
        assert!(
            families.iter().any(|f| f == family),
            "{family} missing:\n{body}"
        );
    }
    // The seed was appended through this server: 8 events in one commit.
    assert!(
        body.contains("\ntraguardo_store_appended_events_total 8\n"),
        "{body}"
    );
    assert!(body.contains("\ntraguardo_read_model_seq 8\n"), "{body}");
    assert!(
        body.contains("\ntraguardo_read_model_lag_events 0\n"),
        "{body}"
    );
    assert!(
        body.contains(&format!(
            "traguardo_build_info{{version=\"{}\"",
            env!("CARGO_PKG_VERSION")
        )),
        "{body}"
    );
    assert!(body.contains("traguardo_http_request_duration_seconds_count{route=\"/api/v1/objectives/{key}\",method=\"GET\"} 1"), "{body}");

    // promtool, the Prometheus project's own checker (Debian's `prometheus`;
    // .ci/test-deps installs it).
    let mut promtool = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool (apt-get install prometheus, or run .ci/test-deps)");
    std::io::Write::write_all(&mut promtool.stdin.take().unwrap(), body.as_bytes()).unwrap();
    let checked = promtool.wait_with_output().unwrap();
    assert!(
        checked.status.success(),
        "promtool check metrics:\n{}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );

    let open = api
        .send(
            Method::GET,
            "/metrics",
            Some(ADMIN),
            None,
            &[("accept", "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.3,*/*;q=0.2")],
        )
        .await;
    assert!(text(&open, "content-type").starts_with("application/openmetrics-text; version=1.0.0"));
    let body = open.text().await.unwrap();
    assert!(body.ends_with("# EOF\n"), "{body}");
    assert!(
        body.contains("# TYPE traguardo_store_appended_events counter\n"),
        "{body}"
    );
    assert!(body.contains("# TYPE traguardo_build info\n"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_problem_type_leads_to_an_italian_page() {
    let api = SeededApi::start(ADMIN, Conventions::default()).await;
    let manager = api.token("Dirigente 2250", "manager", &["2250"]).await;
    let problems = [
        api.send(Method::GET, OBJECTIVE, None, None, &[]).await,
        api.send(
            Method::GET,
            "/api/v1/objectives/2022-9999-Z",
            Some(&manager),
            None,
            &[],
        )
        .await,
        api.send(Method::DELETE, OBJECTIVE, Some(&manager), None, &[])
            .await,
        api.send(
            Method::POST,
            &format!("{OBJECTIVE}/phases/1/start"),
            Some(&manager),
            Some(json!({"on": "2999-01-01"})),
            &[],
        )
        .await,
        api.send(
            Method::POST,
            &format!("{OBJECTIVE}/phases/1/start"),
            Some(&manager),
            Some(json!({"on": "2022-02-01"})),
            &[("if-match", "\"9\"")],
        )
        .await,
        api.client
            .post(api.url(&format!("{OBJECTIVE}/phases/1/start")))
            .bearer_auth(&manager)
            .body("{}")
            .send()
            .await
            .unwrap(),
    ];
    let mut seen = Vec::new();
    for response in problems {
        let status = response.status();
        let problem: Value = response.json().await.unwrap();
        let kind = problem["type"].as_str().unwrap().to_string();
        assert!(kind.starts_with("/problemi/"), "{problem}");
        let page = api.send(Method::GET, &kind, None, None, &[]).await;
        assert_eq!(page.status(), StatusCode::OK, "{kind}");
        assert!(text(&page, "content-type").starts_with("text/html"));
        let html = page.text().await.unwrap();
        assert!(html.contains("<html lang=\"it\">"), "{html}");
        assert!(
            html.contains(&format!("risposta HTTP {}", status.as_u16())),
            "{kind}: {html}"
        );
        seen.push(status.as_u16());
    }
    assert_eq!(seen, [401, 404, 405, 422, 412, 415]);
    let unknown = api
        .send(Method::GET, "/problemi/nessuno", None, None, &[])
        .await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);

    // /status is about:blank, so its title is the status phrase.
    let status: Value = api
        .send(Method::GET, "/status", None, None, &[])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(status["type"], "about:blank");
    assert_eq!(status["title"], "OK");
}
