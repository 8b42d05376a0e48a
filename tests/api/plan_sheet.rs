//! Plans in a spreadsheet: the template, the round trip of the Alessandria seed
//! through a workbook, a workbook with many errors (each named by its cell,
//! nothing loaded), and import by the command line and by `POST /api/v1/plans`
//! on the real server.

use reqwest::StatusCode;
use rust_xlsxwriter::{ExcelDateTime, Workbook};
use serde_json::Value;
use traguardo::plan_document::{self, PlanDocument};
use traguardo::plan_sheet::{self, XLSX_CONTENT_TYPE};

use crate::support::{seed_path, traguardo, Db, Serve, SERVE_ADMIN};

fn seed_document() -> PlanDocument {
    serde_json::from_str(&std::fs::read_to_string(seed_path()).unwrap()).unwrap()
}

/// The document as serde writes it: equal documents, equal values.
fn value_of(document: &PlanDocument) -> Value {
    serde_json::to_value(document).unwrap()
}

#[test]
fn the_seed_goes_through_a_workbook_and_comes_back_the_same_document() {
    let seed = seed_document();
    let bytes = plan_sheet::write(&seed).unwrap();
    assert!(plan_sheet::is_xlsx(&bytes));
    let (plan, document) = plan_sheet::read_with_document(&bytes).expect("the workbook is valid");
    let back: PlanDocument = serde_json::from_value(document).expect("a plan document");
    assert_eq!(value_of(&back), value_of(&seed));
    // And the plan it loads is the one the JSON seed loads.
    let from_json = plan_document::parse(&std::fs::read_to_string(seed_path()).unwrap()).unwrap();
    assert_eq!(plan, from_json);
    assert_eq!(plan.objectives.len(), 7);
    assert_eq!(plan.units.len(), 18);
}

#[test]
fn the_workbook_holds_dates_as_date_cells_and_weights_as_numbers() {
    use calamine::{Data, Reader, Xlsx};
    let bytes = plan_sheet::write(&seed_document()).unwrap();
    let mut workbook: Xlsx<_> = Xlsx::new(std::io::Cursor::new(bytes)).unwrap();
    let phases = workbook.worksheet_range("Fasi").unwrap();
    // Row 2 is the first phase of 2250 A: deadline 30/05/2022, weight 20.
    assert_eq!(phases.get_value((1, 0)), Some(&Data::String("2250".into())));
    match phases.get_value((1, 3)) {
        Some(Data::DateTime(d)) => {
            assert!(d.is_datetime());
            let (y, m, day, ..) = d.to_ymd_hms_milli();
            assert_eq!((y, m, day), (2022, 5, 30));
        }
        other => panic!("the deadline is not a date cell: {other:?}"),
    }
    assert_eq!(phases.get_value((1, 4)), Some(&Data::Float(20.0)));
    let objectives = workbook.worksheet_range("Obiettivi").unwrap();
    assert!(matches!(
        objectives.get_value((1, 6)),
        Some(Data::DateTime(d)) if d.is_datetime()
    ));
    let units = workbook.worksheet_range("Strutture").unwrap();
    let row = (1..=18)
        .find(|r| units.get_value((*r, 0)) == Some(&Data::String("2247".into())))
        .expect("unit 2247");
    assert_eq!(
        units.get_value((row, 2)),
        Some(&Data::String("Servizio autonomo".into()))
    );
    assert_eq!(
        units.get_value((row, 3)),
        Some(&Data::String("Servizio autonomo Polizia locale".into()))
    );
}

/// A cell of a hand-made workbook.
enum Cell {
    Text(&'static str),
    Number(f64),
    Date(u16, u8, u8),
}
use Cell::{Date, Number, Text};

/// A workbook written by hand, sheet by sheet, row by row (row 1 the headers),
/// as someone filling the template might.
fn workbook(sheets: &[(&str, Vec<Vec<Cell>>)]) -> Vec<u8> {
    let mut workbook = Workbook::new();
    let date = rust_xlsxwriter::Format::new().set_num_format("dd/mm/yyyy");
    for (name, rows) in sheets {
        let sheet = workbook.add_worksheet();
        sheet.set_name(*name).unwrap();
        for (r, row) in rows.iter().enumerate() {
            for (c, cell) in row.iter().enumerate() {
                let (r, c) = (r as u32, c as u16);
                match cell {
                    Text("") => {}
                    Text(t) => {
                        sheet.write_string(r, c, *t).unwrap();
                    }
                    Number(n) => {
                        sheet.write_number(r, c, *n).unwrap();
                    }
                    Date(y, m, d) => {
                        let when = ExcelDateTime::from_ymd(*y, *m, *d).unwrap();
                        sheet
                            .write_datetime_with_format(r, c, &when, &date)
                            .unwrap();
                    }
                }
            }
        }
    }
    workbook.save_to_buffer().unwrap()
}

fn headers(names: &[&'static str]) -> Vec<Cell> {
    names.iter().map(|n| Text(n)).collect()
}

/// A plan with one error of each kind a spreadsheet can hold.
fn workbook_with_errors() -> Vec<u8> {
    workbook(&[
        (
            "Piano",
            vec![
                vec![Text("Dato"), Text("Valore")],
                vec![Text("Ente"), Text("Città di Alessandria")],
                vec![Text("Anno"), Number(2022.0)],
                vec![Text("Titolo"), Text("Piano di prova")],
            ],
        ),
        (
            "Strutture",
            vec![
                headers(&["Codice", "Nome (Elenco)", "Tipo", "Denominazione"]),
                vec![
                    Text("2250"),
                    Text("RESPONSABILE SETTORE RISORSE FINANZIARIE E TRIBUTI"),
                    Text("Settore"),
                    Text("Settore Risorse finanziarie e tributi"),
                ],
                // Row 3: not one of the four kinds.
                vec![
                    Text("2251"),
                    Text("RESPONSABILE SERVIZIO AUTONOMO RISORSE UMANE"),
                    Text("Dipartimento"),
                ],
            ],
        ),
        (
            "Obiettivi",
            vec![
                headers(&[
                    "Struttura",
                    "Lettera",
                    "Responsabile",
                    "Titolo",
                    "Scadenza finale",
                ]),
                vec![
                    Text("2250"),
                    Text("A"),
                    Text("Dott. Stefano Specchia"),
                    Text("Contabilità analitica"),
                    Date(2022, 12, 31),
                ],
                // Row 3: no final deadline.
                vec![
                    Text("2250"),
                    Text("B"),
                    Text("Dott. Stefano Specchia"),
                    Text("Rimborsi"),
                ],
            ],
        ),
        (
            "Fasi",
            vec![
                headers(&[
                    "Struttura",
                    "Lettera",
                    "Fase",
                    "Scadenza",
                    "Incidenza %",
                    "Descrizione",
                    "Coinvolti",
                ]),
                // Rows 2 and 3: two good phases of 2250 A, whose weights sum to 70.
                vec![
                    Text("2250"),
                    Text("A"),
                    Number(1.0),
                    Date(2022, 5, 30),
                    Number(40.0),
                    Text("Confronto"),
                    Text("2251"),
                ],
                vec![
                    Text("2250"),
                    Text("A"),
                    Number(2.0),
                    Date(2022, 6, 30),
                    Number(30.0),
                    Text("Intervento"),
                ],
                // Row 4: a date that does not exist, typed as text, and a unit
                // that is not in Strutture.
                vec![
                    Text("2250"),
                    Text("B"),
                    Number(1.0),
                    Text("30/02/2022"),
                    Number(50.0),
                    Text("Istruttoria"),
                    Text("2251; 9999"),
                ],
                // Row 5: a weight that is not a number.
                vec![
                    Text("2250"),
                    Text("B"),
                    Number(2.0),
                    Date(2022, 6, 30),
                    Text("venti"),
                    Text("Rimborsi"),
                ],
                // Row 6: an objective the Obiettivi sheet does not have.
                vec![
                    Text("2250"),
                    Text("Z"),
                    Number(1.0),
                    Date(2022, 6, 30),
                    Number(100.0),
                    Text("Fase orfana"),
                ],
            ],
        ),
        (
            "Indicatori",
            vec![
                headers(&[
                    "Struttura",
                    "Lettera",
                    "Codice",
                    "Tipo",
                    "Valore atteso %",
                    "Descrizione",
                ]),
                // Row 2: an unknown kind of indicator.
                vec![
                    Text("2250"),
                    Text("A"),
                    Text("tempi"),
                    Text("media"),
                    Number(100.0),
                    Text("rispetto dei tempi"),
                ],
            ],
        ),
    ])
}

/// Every problem of [`workbook_with_errors`], in the order they are reported:
/// first those found while reading cells, then the validator's, each at the
/// cell its path came from.
const EXPECTED_PROBLEMS: [(&str, &str); 8] = [
    (
        "Strutture!C3",
        "«Dipartimento» non è un tipo di struttura: Settore, Servizio autonomo, Area o Ufficio",
    ),
    ("Fasi!D4", "30/02/2022 non è una data"),
    ("Fasi!E5", "venti non è un numero con al più due decimali"),
    (
        "Fasi!B6",
        "l'obiettivo Z della struttura 2250 non è nel foglio Obiettivi",
    ),
    (
        "Indicatori!D2",
        "«media» non è un tipo di indicatore: rapporto, soglia o qualitativo",
    ),
    ("Obiettivi!E3", "è obbligatorio"),
    ("Fasi!G4", "l'unità 9999 non è tra le unità (units)"),
    (
        "Fasi!A2:G3",
        "i pesi delle fasi sommano a 70%, non esattamente a 100",
    ),
];

fn assert_expected_problems(got: &[(String, String)]) {
    assert_eq!(got.len(), EXPECTED_PROBLEMS.len(), "{got:#?}");
    for (field, message) in EXPECTED_PROBLEMS {
        let found = got.iter().any(|(f, m)| f == field && m == message);
        assert!(found, "no problem {field}: {message} in {got:#?}");
    }
}

#[test]
fn a_workbook_with_many_errors_reports_each_with_its_sheet_and_cell() {
    let problems = plan_sheet::read(&workbook_with_errors()).unwrap_err();
    let got: Vec<(String, String)> = problems.into_iter().map(|p| (p.field, p.message)).collect();
    assert_expected_problems(&got);
}

#[test]
fn a_workbook_missing_a_sheet_and_a_column_says_which() {
    let bytes = workbook(&[
        (
            "Piano",
            vec![
                vec![Text("Ente"), Text("Città di Alessandria")],
                vec![Text("Anno"), Text("duemilaventidue")],
                vec![Text("Titolo"), Text("Piano di prova")],
            ],
        ),
        ("Strutture", vec![headers(&["Nome (Elenco)", "Colore"])]),
    ]);
    let problems = plan_sheet::read(&bytes).unwrap_err();
    let got: Vec<String> = problems.iter().map(ToString::to_string).collect();
    for expected in [
        "Piano!B2: duemilaventidue non è un numero intero",
        "Strutture!B1: colonna sconosciuta «Colore»",
        "Strutture: manca la colonna «Codice» nella prima riga",
        "Obiettivi: manca il foglio",
        "Fasi: manca il foglio",
        "Indicatori: manca il foglio",
    ] {
        assert!(
            got.iter().any(|g| g == expected),
            "no {expected:?} in {got:#?}"
        );
    }
}

#[test]
fn a_file_that_is_not_a_workbook_is_one_problem() {
    let problems = plan_sheet::read(b"PK\x03\x04 not really a zip").unwrap_err();
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].field, "$");
    assert!(problems[0]
        .message
        .starts_with("non è una cartella di lavoro xlsx"));
}

#[test]
fn the_command_line_writes_the_template_imports_a_workbook_and_exports_the_plan() {
    let db = Db::sqlite();
    let db = db.target();
    let dir = tempfile::tempdir().unwrap();

    // The template: a workbook for the year asked.
    let template = traguardo(&db, &["plan-template", "--year", "2023"]);
    assert!(template.status.success(), "{template:?}");
    assert!(plan_sheet::is_xlsx(&template.stdout));
    let empty = plan_sheet::read(&template.stdout).unwrap_err();
    assert!(empty.iter().any(|p| p.field == "Piano!B2"), "{empty:?}");

    // A workbook with errors: one line per problem, exit non-zero, log unchanged.
    let before = traguardo(&db, &["export"]).stdout;
    let bad = dir.path().join("bad.xlsx");
    std::fs::write(&bad, workbook_with_errors()).unwrap();
    let out = traguardo(&db, &["import", bad.to_str().unwrap()]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let prefix = format!("{}: ", bad.display());
    let got: Vec<(String, String)> = stderr
        .lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .map(|l| {
            let (field, message) = l.split_once(": ").unwrap();
            (field.to_string(), message.to_string())
        })
        .collect();
    assert_expected_problems(&got);
    assert!(
        stderr.contains("8 problem(s); nothing was loaded"),
        "{stderr}"
    );
    assert_eq!(
        traguardo(&db, &["export"]).stdout,
        before,
        "the log changed"
    );

    // The seed as a workbook, under a name that does not say xlsx: the bytes do.
    let good = dir.path().join("piano-2022.dat");
    std::fs::write(&good, plan_sheet::write(&seed_document()).unwrap()).unwrap();
    let out = traguardo(&db, &["import", good.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .starts_with("loaded plan 2022 (7 objectives, 8 events)"),
        "{out:?}"
    );

    // Exported as JSON and as a workbook: the document that was loaded.
    let json = traguardo(&db, &["plan-export", "--year", "2022", "--format", "json"]);
    assert!(json.status.success(), "{json:?}");
    let exported: PlanDocument = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(value_of(&exported), value_of(&seed_document()));
    let xlsx = traguardo(&db, &["plan-export", "--year", "2022", "--format", "xlsx"]);
    assert!(xlsx.status.success(), "{xlsx:?}");
    let (_, document) = plan_sheet::read_with_document(&xlsx.stdout).unwrap();
    let back: PlanDocument = serde_json::from_value(document).unwrap();
    assert_eq!(value_of(&back), value_of(&seed_document()));

    let missing = traguardo(&db, &["plan-export", "--year", "2031", "--format", "json"]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no plan for 2031"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_loads_a_workbook_posted_as_xlsx_and_refuses_a_bad_one_whole() {
    let db = Db::sqlite();
    let server = Serve::start(&db.target());
    let client = reqwest::Client::new();
    let post = |body: Vec<u8>| {
        client
            .post(server.url("/api/v1/plans"))
            .bearer_auth(SERVE_ADMIN)
            .header("content-type", XLSX_CONTENT_TYPE)
            .body(body)
            .send()
    };
    let head = || async {
        let integrity: Value = client
            .get(server.url("/api/v1/integrity"))
            .bearer_auth(SERVE_ADMIN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        integrity["head_seq"].clone()
    };
    let before = head().await;

    let response = post(workbook_with_errors()).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["status"], 422);
    let got: Vec<(String, String)> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["field"].as_str().unwrap().to_string(),
                e["message"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_expected_problems(&got);
    assert!(problem["detail"]
        .as_str()
        .unwrap()
        .contains("Fasi!D4: 30/02/2022 non è una data"));
    assert_eq!(head().await, before, "nothing was loaded");

    let response = post(plan_sheet::write(&seed_document()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let created: Value = response.json().await.unwrap();
    assert_eq!(created["year"], 2022);
    assert_eq!(created["objectives"].as_array().unwrap().len(), 7);
    let plan: Value = client
        .get(server.url("/api/v1/plans/2022"))
        .bearer_auth(SERVE_ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let units = plan["units"].as_array().unwrap();
    let polizia = units.iter().find(|u| u["code"] == "2247").unwrap();
    assert_eq!(polizia["kind"], "servizio_autonomo");
    assert_eq!(polizia["label"], "Servizio autonomo Polizia locale");
    server.stop();
}
