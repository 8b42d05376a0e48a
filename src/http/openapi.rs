//! The OpenAPI document as clients and validators read it.
//!
//! utoipa derives the paths, parameters and schemas from the handlers; this
//! module finishes the document with what the derive cannot know, once, for
//! every route:
//!
//! - `info` (a semver version, summary, contact), `servers` and the tags;
//! - one shared set of problem responses (`components/responses`), each
//!   `application/problem+json` with the [`Problem`](super::problem::Problem)
//!   schema, and on every operation every status it can answer: what its
//!   annotation lists, plus what follows from its shape (a body can be too large,
//!   of the wrong media type, malformed or invalid; a path names something that
//!   may not exist; a token may be missing; a write may find the disk full;
//!   every route refuses a query parameter it does not take, refuses
//!   credentials that failed too often, takes `min_seq` and can answer 503
//!   while the read model catches up);
//! - the form of the request headers the server reads (`If-Match`,
//!   `Idempotency-Key`), and `allowEmptyValue` on query parameters, which every
//!   handler reads empty as absent;
//! - (`min_seq` and `X-Min-Seq`, which every route accepts, are described
//!   once in `info.description` rather than on each operation: a fuzzer would
//!   otherwise ask every route to wait for seqs that never come);
//! - a `format` on every integer and number (`int64`, `double`), which the
//!   AgID guidelines ask for (RAC_REST_FORMAT_004), and map keys as strings.
//!
//! The document is served as JSON ([`super::ops`]) and printed by
//! `traguardo openapi`, so `.ci/agid` lints exactly what the server serves.

use serde_json::{json, Map, Value};

/// The API's version, in semver as the AgID guidelines ask; the major is the
/// `v1` of the base path.
pub const API_VERSION: &str = "1.0.0";

/// Every tag the operations use, with what it groups.
const TAGS: [(&str, &str); 8] = [
    (
        "objectives",
        "Objectives: their state at any valid or record time, and the writes of managers (phase starts, completions, retractions, measurements) and of the Nucleo di Valutazione (validations).",
    ),
    (
        "plans",
        "Plans (Piano degli Obiettivi): loading a plan document, reading a plan and its scores.",
    ),
    (
        "revisions",
        "Revisions (rimodulazioni) approved by an act: recording one, listing them, replaying one before and after.",
    ),
    (
        "reports",
        "The end-of-year achievement report (Relazione sul grado di raggiungimento degli obiettivi).",
    ),
    (
        "audit",
        "For auditors: the raw log, its live feed, audit trails, red flags and the integrity of the hash chain.",
    ),
    (
        "administration",
        "For the control office (Programmazione e Controllo): API tokens and web accounts.",
    ),
    (
        "transparency",
        "Signed checkpoints of the log's Merkle tree, inclusion and consistency proofs, cosignatures and the year-end seal.",
    ),
    (
        "operations",
        "Liveness, the AgID status resource, metrics and this document.",
    ),
];

/// A problem status: its shared response's name and what it means here.
struct ProblemStatus {
    status: u16,
    name: &'static str,
    description: &'static str,
}

/// Every status a route of this API can answer with a problem.
const PROBLEMS: [ProblemStatus; 13] = [
    ProblemStatus {
        status: 400,
        name: "BadRequest",
        description: "The request cannot be read: a query parameter the operation does not take, or one given twice (`errors` names each); a body that is not JSON; a malformed header (If-Match, Idempotency-Key).",
    },
    ProblemStatus {
        status: 401,
        name: "Unauthorized",
        description: "No bearer token, or a token that is unknown, revoked or expired.",
    },
    ProblemStatus {
        status: 403,
        name: "Forbidden",
        description: "The token's role, or its units, may not do this.",
    },
    ProblemStatus {
        status: 404,
        name: "NotFound",
        description: "What the path names does not exist.",
    },
    ProblemStatus {
        status: 409,
        name: "Conflict",
        description: "Refused by a rule in the current state (e.g. a phase completed twice, a year already loaded or sealed), or the stream moved meanwhile.",
    },
    ProblemStatus {
        status: 412,
        name: "PreconditionFailed",
        description: "If-Match names a version that is no longer the current one: read again and retry.",
    },
    ProblemStatus {
        status: 413,
        name: "ContentTooLarge",
        description: "The body is larger than 1 MiB.",
    },
    ProblemStatus {
        status: 415,
        name: "UnsupportedMediaType",
        description: "The body's media type is not one this route reads.",
    },
    ProblemStatus {
        status: 422,
        name: "UnprocessableContent",
        description: "Invalid input: `errors` lists every field at fault with its message.",
    },
    ProblemStatus {
        status: 429,
        name: "TooManyRequests",
        description: "Too many requests, or too many failed authentications, from this token or address: wait as Retry-After says.",
    },
    ProblemStatus {
        status: 500,
        name: "InternalServerError",
        description: "The server failed; the cause is in its log, never in the answer.",
    },
    ProblemStatus {
        status: 503,
        name: "ServiceUnavailable",
        description: "Passing: the database is unreachable or read-only, or this instance has not yet read the log up to the `min_seq` asked for. Retry after Retry-After seconds (a write with the same Idempotency-Key).",
    },
    ProblemStatus {
        status: 507,
        name: "InsufficientStorage",
        description: "The disk that holds the log is full: nothing was recorded. Retry with the same Idempotency-Key once space is freed.",
    },
];

/// The finished document.
pub fn finish(doc: &utoipa::openapi::OpenApi) -> Value {
    let mut doc = serde_json::to_value(doc).unwrap_or_else(|_| json!({}));
    info(&mut doc);
    problem_responses(&mut doc);
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        for (path, item) in paths.iter_mut() {
            let Some(item) = item.as_object_mut() else {
                continue;
            };
            for (method, operation) in item.iter_mut() {
                if let Some(operation) = operation.as_object_mut() {
                    finish_operation(path, method, operation);
                }
            }
        }
    }
    formats(&mut doc);
    doc
}

fn info(doc: &mut Value) {
    doc["info"] = json!({
        "title": "Traguardo API",
        "summary": "The performance plan of an Italian municipality (Piano degli Obiettivi) as an append-only, hash-chained event log.",
        "x-summary": "The performance plan of an Italian municipality (Piano degli Obiettivi) as an append-only, hash-chained event log.",
        "description": "Managers record when the phases of their objectives start and finish; the control office loads plans and records the revisions approved by the Giunta; the Nucleo di Valutazione validates; auditors replay any past state and verify the log. Errors are `application/problem+json` (RFC 9457). Dates are `YYYY-MM-DD`, timestamps RFC 3339 UTC. Every route accepts `min_seq` (or `X-Min-Seq`) to read at least what another instance wrote.",
        "version": API_VERSION,
        "x-api-id": "traguardo-v1",
        "contact": {
            "name": "Programmazione e Controllo of the Comune that runs this instance"
        }
    });
    doc["servers"] = json!([
        {
            "url": "https://{host}",
            "description": "Production: an instance behind the Comune's HTTPS reverse proxy.",
            "variables": {"host": {"default": "traguardo.comune.example", "description": "the instance's host name"}}
        },
        {
            "url": "http://127.0.0.1:8080",
            "description": "Development: `traguardo serve` on its default address.",
            "x-sandbox": true
        }
    ]);
    doc["tags"] = Value::Array(
        TAGS.iter()
            .map(|(name, description)| json!({"name": name, "description": description}))
            .collect(),
    );
}

fn problem_responses(doc: &mut Value) {
    let components = doc
        .as_object_mut()
        .map(|d| d.entry("components").or_insert_with(|| json!({})));
    let Some(components) = components.and_then(Value::as_object_mut) else {
        return;
    };
    let responses = components
        .entry("responses")
        .or_insert_with(|| json!({}))
        .as_object_mut();
    let Some(responses) = responses else {
        return;
    };
    for p in &PROBLEMS {
        let mut headers = Map::new();
        if matches!(p.status, 429 | 503) {
            headers.insert(
                "Retry-After".into(),
                json!({
                    "description": "Seconds to wait before retrying.",
                    "schema": {"type": "integer", "format": "int32", "minimum": 0}
                }),
            );
        }
        if p.status == 401 {
            headers.insert(
                "WWW-Authenticate".into(),
                json!({"description": "`Bearer`", "schema": {"type": "string"}}),
            );
        }
        let mut response = json!({
            "description": p.description,
            "content": {
                super::problem::PROBLEM_JSON: {
                    "schema": {"$ref": "#/components/schemas/Problem"},
                    "example": example(p.status)
                }
            }
        });
        if !headers.is_empty() {
            response["headers"] = Value::Object(headers);
        }
        responses.insert(p.name.into(), response);
    }
}

/// An example problem of a status, as the server writes one.
fn example(status: u16) -> Value {
    let (slug, title, detail) = match status {
        400 => (
            "bad-request",
            "Bad request",
            "the body is not valid JSON: expected value at line 1 column 1",
        ),
        401 => ("unauthorized", "Unauthorized", "missing bearer token"),
        403 => (
            "forbidden",
            "Forbidden",
            "il ruolo auditor non può registrare l'avvio di una fase",
        ),
        404 => ("not-found", "Not found", "no objective 2022-9999-Z"),
        409 => (
            "rule",
            "Not allowed in this state",
            "la fase 1 è già completata",
        ),
        412 => (
            "stale",
            "Precondition failed",
            "the objective is at version 8, not 7: read it again and retry",
        ),
        413 => (
            "too-large",
            "Payload too large",
            "the body is larger than the 1 MiB limit",
        ),
        415 => (
            "unsupported-media-type",
            "Unsupported media type",
            "the body must be application/json",
        ),
        422 => (
            "validation",
            "Invalid input",
            "on: \"2022-02-30\" non è una data che esiste",
        ),
        429 => (
            "too-many-requests",
            "Too many requests",
            "troppe richieste: riprovare tra qualche secondo",
        ),
        507 => (
            "insufficient-storage",
            "Insufficient storage",
            "Il disco che ospita il registro degli eventi è pieno: la richiesta non è stata registrata.",
        ),
        503 => (
            "unavailable",
            "Service unavailable",
            "Il registro degli eventi non è raggiungibile in questo momento.",
        ),
        _ => (
            "internal",
            "Internal error",
            "the server failed; the cause is in its log",
        ),
    };
    let mut problem = json!({
        "type": format!("/problems/{slug}"),
        "title": title,
        "status": status,
        "detail": detail
    });
    if status == 422 {
        problem["errors"] =
            json!([{"field": "on", "message": "\"2022-02-30\" non è una data che esiste"}]);
    }
    problem
}

/// The routes anyone may call, without a token.
fn is_public(operation: &Map<String, Value>) -> bool {
    operation
        .get("security")
        .and_then(Value::as_array)
        .is_some_and(|s| s.iter().any(|r| r.as_object().is_some_and(Map::is_empty)))
}

/// Examples of the path parameters, from the bundled Alessandria 2022 plan.
fn path_example(name: &str) -> Option<Value> {
    match name {
        "key" => Some(json!("2022-2250-A")),
        "year" => Some(json!(2022)),
        "n" => Some(json!(1)),
        _ => None,
    }
}

/// The form the server reads of a request header, where it reads one: a
/// value of another form is a 400.
fn header_schema(name: &Value) -> Option<Value> {
    match name.as_str()? {
        // Visible ASCII, as `support::idempotency_key` takes it.
        "Idempotency-Key" => Some(json!({
            "type": "string",
            "minLength": 1,
            "maxLength": 255,
            "pattern": "^[!-~]+$",
            "example": "3f2b9c1e-rev-2022-07-01"
        })),
        // `*` or a list of entity tags (RFC 9110 §8.8.3) of visible ASCII
        // without commas, as `support::if_match` takes it; empty is no
        // condition.
        "If-Match" => Some(json!({
            "type": "string",
            "pattern": "^[ \t]*(|\\*|(W/)?\"[!#-+.-~-]*\"([ \t]*,[ \t]*(W/)?\"[!#-+.-~-]*\")*)[ \t]*$",
            "example": "\"7\""
        })),
        _ => None,
    }
}

/// What a success answers, when its annotation says nothing.
fn success_description(status: &str) -> &'static str {
    match status {
        "201" => "Created: what was recorded.",
        "204" => "Done; nothing to answer.",
        _ => "OK.",
    }
}

fn finish_operation(path: &str, method: &str, operation: &mut Map<String, Value>) {
    let public = is_public(operation);
    if !operation.contains_key("description") {
        if let Some(summary) = operation.get("summary").cloned() {
            operation.insert("description".into(), summary);
        }
    }
    if let Some(ps) = operation
        .get_mut("parameters")
        .and_then(Value::as_array_mut)
    {
        for p in ps.iter_mut() {
            // An absent parameter is left out, never sent as null.
            if let Some(Value::Array(kinds)) = p.pointer_mut("/schema/type") {
                kinds.retain(|k| k != "null");
                if kinds.len() == 1 {
                    let kind = kinds[0].clone();
                    p["schema"]["type"] = kind;
                }
            }
            let example = p["name"].as_str().and_then(path_example);
            if let (Some(example), true) = (example, p["in"] == "path") {
                p["example"] = example;
            }
            if let (Some(schema), true) = (header_schema(&p["name"]), p["in"] == "header") {
                p["schema"] = schema;
            }
            // Every handler reads `?at=` as no `at` at all (what an empty form
            // field sends).
            if p["in"] == "query" {
                p["allowEmptyValue"] = json!(true);
            }
        }
    }
    let parameters = operation.entry("parameters").or_insert_with(|| json!([]));
    let headers: Vec<String> = parameters
        .as_array()
        .map(|ps| {
            ps.iter()
                .filter(|p| p["in"] == "header")
                .filter_map(|p| p["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let has_path = path.contains('{');
    let has_body = operation.contains_key("requestBody");
    // Every route: a query parameter it does not take (400), a bad `min_seq`
    // (422), a failure (500), a read model behind `min_seq` (503), and, for a
    // request with credentials, too many failed authentications (429).
    let mut statuses: Vec<u16> = vec![400, 422, 429, 500, 503];
    if !public {
        statuses.push(401);
    }
    if method == "post" || method == "delete" {
        statuses.push(507);
    }
    if has_path {
        statuses.push(404);
    }
    if has_body {
        statuses.extend([400, 413, 415, 422]);
    }
    if headers.iter().any(|h| h == "If-Match") {
        statuses.extend([400, 412]);
    }
    if headers.iter().any(|h| h == "Idempotency-Key") {
        statuses.push(400);
    }
    let responses = operation
        .entry("responses")
        .or_insert_with(|| json!({}))
        .as_object_mut();
    let Some(responses) = responses else {
        return;
    };
    for (code, response) in responses.iter_mut() {
        let success = code.parse::<u16>().is_ok_and(|c| c < 400);
        if success
            && response
                .get("description")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
        {
            response["description"] = json!(success_description(code));
        }
    }
    // What the annotation lists stays, with its own description if it has one.
    for (code, _) in responses.iter() {
        if let Ok(status) = code.parse::<u16>() {
            if status >= 400 {
                statuses.push(status);
            }
        }
    }
    statuses.sort_unstable();
    statuses.dedup();
    for status in statuses {
        let Some(problem) = PROBLEMS.iter().find(|p| p.status == status) else {
            continue;
        };
        let code = status.to_string();
        let own = responses
            .get(&code)
            .and_then(|r| r.get("description"))
            .and_then(Value::as_str)
            .filter(|d| !d.is_empty())
            .map(str::to_string);
        let mut reference = json!({"$ref": format!("#/components/responses/{}", problem.name)});
        if let Some(description) = own {
            reference["description"] = Value::String(description);
        }
        responses.insert(code, reference);
    }
}

/// A `format` on every integer and number schema that has none; and map keys,
/// which JSON writes as strings, described as strings (utoipa describes the
/// keys of a `BTreeMap<u32, _>` as integers, which no JSON document matches).
fn formats(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if let Some(names) = map.get_mut("propertyNames") {
                if names["type"] == "integer" {
                    *names = json!({"type": "string", "pattern": "^[0-9]+$"});
                }
            }
            if !map.contains_key("format") {
                let kinds: Vec<&str> = match map.get("type") {
                    Some(Value::String(t)) => vec![t.as_str()],
                    Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
                    _ => Vec::new(),
                };
                let format = if kinds.contains(&"integer") {
                    Some("int64")
                } else if kinds.contains(&"number") {
                    Some("double")
                } else {
                    None
                };
                if let Some(format) = format {
                    map.insert("format".into(), Value::String(format.into()));
                }
            }
            for child in map.values_mut() {
                formats(child);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(formats),
        _ => {}
    }
}
