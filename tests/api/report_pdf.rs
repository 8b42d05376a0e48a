//! The report as PDF, read back with pdf-extract: over HTTP from the real server
//! on the scripted Alessandria year (with a note full of typst's markup
//! characters written through the API), from the command line, and as the
//! library writes it (interim title, same bytes for the same report, PDF/A
//! metadata), with the report cache's ETag.

use reqwest::header::{ETAG, IF_NONE_MATCH};
use reqwest::StatusCode;
use serde_json::{json, Value};
use traguardo::report::{self, Format, Level};
use traguardo_events::model::Hundredths;

use crate::report::{build, scripted_year};
use crate::support::{block_on, traguardo, Serve, SERVE_ADMIN};

/// A note with every character typst's markup gives a meaning to.
const MARKUP_NOTE: &str =
    r"Nota #1: costo $5 *urgente* _vedi_ @ufficio <b>[allegato]</b> C:\dati\ = ~ `x`";

/// The text of a PDF with every blank taken out: a line or a cell may wrap
/// anywhere typst finds a break, so text is compared without blanks.
fn text_of(pdf: &[u8]) -> String {
    let text = pdf_extract::extract_text_from_mem(pdf).expect("the PDF's text");
    squeeze(&text)
}

fn squeeze(text: &str) -> String {
    text.chars().filter(|c| !c.is_whitespace()).collect()
}

fn assert_has(text: &str, needle: &str) {
    assert!(
        text.contains(&squeeze(needle)),
        "the PDF lacks «{needle}»:\n{text}"
    );
}

/// The page count the footers give: the last page's footer, the last text of
/// the file, says «Pagina N di N», and the first one «Pagina 1 di N».
fn pages(text: &str) -> usize {
    let (_, last) = text.rsplit_once("Pagina").expect("a page footer");
    let (page, of) = last.split_once("di").expect("«Pagina N di M»");
    assert_eq!(page, of, "the last footer: «Pagina {last}»");
    let count: usize = of.parse().expect("a page count");
    assert_has(text, &format!("Pagina 1 di {count}"));
    count
}

/// `/api/v1/...` with the admin token; the status, headers and body.
async fn get(
    server: &Serve,
    path: &str,
    etag: Option<&str>,
) -> (StatusCode, reqwest::header::HeaderMap, Vec<u8>) {
    let mut request = reqwest::Client::new()
        .get(server.url(path))
        .bearer_auth(SERVE_ADMIN);
    if let Some(etag) = etag {
        request = request.header(IF_NONE_MATCH, etag);
    }
    let response = request.send().await.expect("the server answers");
    let status = response.status();
    let headers = response.headers().clone();
    (
        status,
        headers,
        response.bytes().await.expect("a body").to_vec(),
    )
}

async fn post(server: &Serve, token: &str, path: &str, body: Value) -> Value {
    let response = reqwest::Client::new()
        .post(server.url(path))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("the server answers");
    assert_eq!(response.status(), StatusCode::CREATED, "{path}");
    response.json().await.expect("JSON")
}

/// A percentage of the JSON report as the documents print it: `33,33%`.
fn italian_pct(value: &Value) -> String {
    let hundredths = (value.as_f64().expect("a number") * 100.0).round() as i64;
    report::italian::pct(traguardo_projections::objective::Pct(Hundredths(
        hundredths,
    )))
}

#[test]
fn the_pdf_report_over_http_prints_the_report_and_what_users_typed_literally() {
    let world = scripted_year();
    let server = Serve::start(&world.db().display().to_string());
    let path = "/api/v1/plans/2022/report?format=pdf&at=2023-01-31";
    let (pdf, json, etag) = block_on(async {
        // A manager of 2250 writes, through the API, a note with markup.
        let token = post(
            &server,
            SERVE_ADMIN,
            "/api/v1/tokens",
            json!({"actor": "Dott. Stefano Specchia", "role": "manager", "units": ["2250"]}),
        )
        .await["token"]
            .as_str()
            .expect("a token")
            .to_string();
        post(
            &server,
            &token,
            "/api/v1/objectives/2022-2250-B/phases/3/start",
            json!({"on": "2022-09-01", "note": MARKUP_NOTE}),
        )
        .await;

        let (status, headers, pdf) = get(&server, path, None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers["content-type"], "application/pdf");
        assert!(headers["content-disposition"]
            .to_str()
            .unwrap()
            .contains("relazione-2022.pdf"));
        let etag = headers[ETAG].to_str().expect("an ETag").to_string();
        let (status, _, json) = get(
            &server,
            "/api/v1/plans/2022/report?format=json&at=2023-01-31",
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let json: Value = serde_json::from_slice(&json).expect("the JSON report");
        (pdf, json, etag)
    });
    assert!(pdf.starts_with(b"%PDF-"), "PDF magic bytes");
    assert!(etag.starts_with("W/\""), "{etag}");
    let text = text_of(&pdf);

    assert_has(
        &text,
        "Relazione sul grado di raggiungimento degli obiettivi 2022",
    );
    assert_has(&text, "Città di Alessandria");
    assert_has(&text, "Settore Risorse finanziarie e tributi");
    let count = pages(&text);
    assert!(count > 3, "{count} pages");
    // Every objective, with its title, and the head the report comes from.
    for unit in json["units"].as_array().expect("units") {
        for objective in unit["objectives"].as_array().expect("objectives") {
            assert_has(&text, objective["key"].as_str().unwrap());
            assert_has(&text, objective["title"].as_str().unwrap());
        }
    }
    assert_has(&text, json["head"]["hash"].as_str().unwrap());
    assert_has(
        &text,
        &format!("evento n. {}", json["head"]["seq"].as_u64().unwrap()),
    );
    // A declared grado di raggiungimento with its decimal comma.
    let declared = json["summary"]["units"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| italian_pct(&u["score"]))
        .find(|pct| pct.contains(','))
        .expect("a unit's grado with decimals in the scripted year");
    assert_has(&text, &declared);
    assert_has(
        &text,
        &format!(
            "Grado di raggiungimento dichiarato per struttura (media {})",
            italian_pct(&json["summary"]["score"])
        ),
    );
    // The signature block: each unit's manager, and the Nucleo's minutes.
    assert_has(&text, "Firme");
    for signature in json["signatures"]["units"].as_array().unwrap() {
        assert_has(&text, signature["role"].as_str().unwrap());
        if let Some(manager) = signature["manager"].as_str() {
            assert_has(&text, manager);
        }
    }
    assert_has(&text, "Visto di validazione — il Nucleo di Valutazione");
    assert_has(&text, "Verbale n. 1 del 20/01/2023");
    // What the manager typed, every markup character printed as it is.
    assert_has(&text, MARKUP_NOTE);

    // The same report again is not sent again; a write makes a new one.
    block_on(async {
        let (status, headers, body) = get(&server, path, Some(&etag)).await;
        assert_eq!(status, StatusCode::NOT_MODIFIED);
        assert_eq!(headers[ETAG], etag.as_str());
        assert!(body.is_empty());
        // Another format of the same head has its own tag.
        let (status, headers, _) = get(
            &server,
            "/api/v1/plans/2022/report?format=html&at=2023-01-31",
            Some(&etag),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_ne!(headers[ETAG], etag.as_str());
        post(
            &server,
            SERVE_ADMIN,
            "/api/v1/tokens",
            json!({"actor": "Revisore", "role": "auditor"}),
        )
        .await;
        let (status, headers, body) = get(&server, path, Some(&etag)).await;
        assert_eq!(status, StatusCode::OK);
        assert_ne!(headers[ETAG], etag.as_str());
        assert!(body.starts_with(b"%PDF-"));
    });
    server.stop();
}

#[test]
fn the_command_line_writes_the_pdf_report() {
    let world = scripted_year();
    let out = traguardo(
        &world.db().display().to_string(),
        &[
            "report",
            "--year",
            "2022",
            "--format",
            "pdf",
            "--at",
            "2023-01-31",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.starts_with(b"%PDF-"));
    let text = text_of(&out.stdout);
    let report = build(&world, None);
    assert_has(
        &text,
        "Relazione sul grado di raggiungimento degli obiettivi 2022",
    );
    assert_has(&text, &report.head.hash);
    for objective in report.units.iter().flat_map(|u| &u.objectives) {
        assert_has(&text, &objective.key);
    }
    pages(&text);
}

#[test]
fn the_pdf_is_pdf_a_2b_in_italian_and_the_same_report_gives_the_same_bytes() {
    let world = scripted_year();
    let report = build(&world, None);
    let rendered = report::render(&report, Format::Pdf, Level::Phase).expect("a PDF");
    assert_eq!(rendered.content_type, "application/pdf");
    assert_eq!(rendered.file_extension, "pdf");
    let again = report::render(&report, Format::Pdf, Level::Phase).expect("a PDF");
    assert!(rendered.body == again.body, "one report, one PDF");
    // The XMP metadata declares PDF/A-2b, the title and the language.
    let raw = String::from_utf8_lossy(&rendered.body);
    assert!(raw.contains("<pdfaid:part>2</pdfaid:part>"), "PDF/A part");
    assert!(
        raw.contains("<pdfaid:conformance>B</pdfaid:conformance>"),
        "PDF/A level"
    );
    assert!(raw.contains("/Lang(it-IT)"), "document language");
    assert!(raw.contains("<rdf:li>it-IT</rdf:li>"), "XMP language");
    assert!(raw.contains("Relazione sul grado di raggiungimento degli obiettivi 2022"));
    // Fonts are embedded: every font descriptor carries its font file.
    let descriptors = raw.matches("/Type/FontDescriptor").count();
    let files = raw.matches("/FontFile").count();
    assert!(
        descriptors > 0 && files >= descriptors,
        "{descriptors} fonts, {files} embedded"
    );
}

#[test]
fn an_interim_pdf_is_titled_as_a_monitoring_and_the_objective_level_lists_objectives() {
    let world = scripted_year();
    let mut report = build(&world, None);
    let interim = traguardo::report::build(
        &world.app,
        2022,
        Some(crate::support::d("2022-06-30")),
        None,
        report.generated_at,
    )
    .expect("an interim report");
    let text = text_of(
        &report::render(&interim, Format::Pdf, Level::Phase)
            .expect("a PDF")
            .body,
    );
    assert_has(&text, "Monitoraggio intermedio al 30/06/2022");
    assert_has(&text, "Data di riferimento 30/06/2022");

    report.title = "Piano #2022: obiettivi *prioritari* [bozza]".into();
    let text = text_of(
        &report::render(&report, Format::Pdf, Level::Objective)
            .expect("a PDF")
            .body,
    );
    assert_has(&text, "Piano #2022: obiettivi *prioritari* [bozza]");
    assert!(!text.contains("Scadenzaoriginaria"), "no phase table");
    for objective in report.units.iter().flat_map(|u| &u.objectives) {
        assert_has(&text, &objective.key);
    }
}
