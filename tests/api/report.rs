//! The end-of-year report: a scripted year on the Alessandria 2022 seed, rendered
//! in every format and checked by snapshot, by a real HTML/XML parser, against an
//! earlier record time, and against the command line's bytes.

use std::process::Command;

use chrono::{DateTime, Duration, SubsecRound, TimeZone, Utc};
use traguardo::commands::{ObjectiveCommand, RevisionRequest};
use traguardo::report::{self, Format, Level, Report};
use traguardo_events::domain::RevisionChange;
use traguardo_events::model::{Hundredths, ValidationOutcome, ValidationStage};
use uuid::Uuid;

use crate::support::{d, validator, World};

/// The reference date of the reports: after the Nucleo's final validations.
const AT: &str = "2023-01-31";

fn generated_at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2023, 2, 1, 8, 30, 0).unwrap()
}

fn complete(world: &World, key: &str, phase: u32, on: &str) {
    world
        .complete(key, phase, on)
        .unwrap_or_else(|e| panic!("{key} phase {phase} completes on {on}: {e}"));
}

fn start(world: &World, key: &str, phase: u32, on: &str) {
    world
        .start(key, phase, on)
        .unwrap_or_else(|e| panic!("{key} phase {phase} starts on {on}: {e}"));
}

fn validate(world: &World, key: &str, neutralised: Vec<u32>, note: Option<&str>) {
    world
        .run(
            key,
            ObjectiveCommand::RecordValidation(traguardo::commands::ValidationRequest {
                stage: ValidationStage::Final,
                outcome: ValidationOutcome::Approved,
                unverified_phases: vec![],
                neutralised_phases: neutralised,
                note: note.map(str::to_string),
                reference: Some("Verbale n. 1 del 20/01/2023".into()),
            }),
            &validator(),
        )
        .unwrap_or_else(|e| panic!("{key} is validated: {e}"));
}

/// A year of the Alessandria 2022 plan: completions on time and late, a late
/// registration, a revision that moves deadlines (one retroactively), a revision
/// that withdraws a phase and revises weights, and final validations, one with a
/// neutralised phase.
pub(crate) fn scripted_year() -> World {
    let world = World::with_seed();

    world.on("2022-02-25");
    start(&world, "2022-2250-C", 1, "2022-02-01");
    complete(&world, "2022-2250-C", 1, "2022-02-25");

    world.on("2022-03-30");
    complete(&world, "2022-2250-B", 1, "2022-03-30");

    // The chatbot's first test: six weeks late against 28/02/2022.
    world.on("2022-04-15");
    complete(&world, "2022-2249-C", 1, "2022-04-15");

    world.on("2022-04-29");
    complete(&world, "2022-2250-C", 2, "2022-04-28");

    world.on("2022-05-31");
    complete(&world, "2022-2250-A", 1, "2022-05-28");
    complete(&world, "2022-2252-C", 1, "2022-05-31");
    complete(&world, "2022-2252-D", 1, "2022-05-20");
    complete(&world, "2022-2252-D", 2, "2022-05-31");
    complete(&world, "2022-2252-D", 3, "2022-05-30");

    world.on("2022-06-30");
    complete(&world, "2022-2250-A", 2, "2022-06-30");
    complete(&world, "2022-2252-C", 2, "2022-06-30");
    complete(&world, "2022-2252-D", 4, "2022-06-28");
    complete(&world, "2022-2252-D", 5, "2022-06-30");

    world.on("2022-07-15");
    complete(&world, "2022-2247-B", 1, "2022-07-15");

    // Recorded seven weeks after the fact: a late registration.
    world.on("2022-07-20");
    complete(&world, "2022-2250-B", 2, "2022-05-31");

    world.on("2022-07-29");
    world
        .revise(
            2022,
            RevisionRequest {
                act: "D.G.C. n. 182 del 28/07/2022".into(),
                act_date: Some(d("2022-07-28")),
                reason: "Rimodulazione: ritardi del fornitore del software".into(),
                changes: vec![
                    RevisionChange::Deadline {
                        objective: "2022-2250-A".into(),
                        phase: Some(3),
                        new_deadline: d("2022-09-30"),
                    },
                    RevisionChange::Deadline {
                        objective: "2022-2249-C".into(),
                        phase: Some(1),
                        new_deadline: d("2022-04-30"),
                    },
                ],
            },
        )
        .expect("the revision is recorded");
    complete(&world, "2022-2250-C", 3, "2022-07-29");

    world.on("2022-09-20");
    complete(&world, "2022-2250-A", 3, "2022-09-15");
    start(&world, "2022-2247-B", 2, "2022-09-01");

    world.on("2022-10-10");
    world
        .revise(
            2022,
            RevisionRequest {
                act: "D.G.C. n. 230 del 10/10/2022".into(),
                act_date: Some(d("2022-10-10")),
                reason: "La proposta di deliberazione passa al Servizio Ambiente".into(),
                changes: vec![
                    RevisionChange::WithdrawPhase {
                        objective: "2022-2247-B".into(),
                        phase: 4,
                    },
                    RevisionChange::Weights {
                        objective: "2022-2247-B".into(),
                        weights_hundredths: [(2, Hundredths(7000))].into(),
                    },
                ],
            },
        )
        .expect("the second revision is recorded");
    start(&world, "2022-2252-C", 4, "2022-10-01");

    world.on("2022-12-30");
    complete(&world, "2022-2250-C", 4, "2022-12-30");
    complete(&world, "2022-2252-C", 4, "2022-12-20");
    complete(&world, "2022-2249-C", 2, "2022-09-30");
    complete(&world, "2022-2249-C", 3, "2022-10-14");

    world.on("2023-01-20");
    validate(
        &world,
        "2022-2252-C",
        vec![3],
        Some(
            "Adesione alla rete SBN \"TOO\" ritardata dalla Regione Piemonte: \
             non imputabile al settore",
        ),
    );
    validate(&world, "2022-2252-D", vec![], None);
    world
}

pub(crate) fn build(world: &World, as_of: Option<DateTime<Utc>>) -> Report {
    report::build(&world.app, 2022, Some(d(AT)), as_of, generated_at()).expect("the report builds")
}

/// The report with what changes from run to run (event ids, hence hashes) fixed.
fn stable(report: &Report) -> Report {
    let mut report = report.clone();
    report.head.hash = "h".repeat(64);
    for (i, revision) in report.revisions.iter_mut().enumerate() {
        revision.id = Uuid::from_u128(i as u128 + 1);
    }
    report
}

fn text(report: &Report, format: Format, level: Level) -> String {
    let rendered = report::render(report, format, level).expect("the report renders");
    String::from_utf8(rendered.body).expect("UTF-8")
}

#[test]
fn the_markdown_report_of_the_scripted_year_matches_its_snapshot() {
    let world = scripted_year();
    let report = stable(&build(&world, None));
    insta::assert_snapshot!("report_md", text(&report, Format::Md, Level::Phase));
    insta::assert_snapshot!(
        "report_md_objective",
        text(&report, Format::Md, Level::Objective)
    );
}

#[test]
fn the_json_report_of_the_scripted_year_matches_its_snapshot() {
    let world = scripted_year();
    let report = stable(&build(&world, None));
    let rendered = report::render(&report, Format::Json, Level::Phase).expect("renders");
    assert_eq!(rendered.content_type, "application/json");
    let value: serde_json::Value = serde_json::from_slice(&rendered.body).expect("valid JSON");
    assert_eq!(value, serde_json::to_value(&report).expect("a value"));
    // The snapshot keeps the fields in the order the answer writes them.
    insta::assert_json_snapshot!("report_json", report);
}

#[test]
fn the_csv_reports_start_with_a_bom_parse_back_and_match_their_snapshots() {
    let world = scripted_year();
    let report = stable(&build(&world, None));
    for (level, name, rows) in [
        (Level::Phase, "report_csv", 28),
        (Level::Objective, "report_csv_objective", 7),
    ] {
        let rendered = report::render(&report, Format::Csv, level).expect("renders");
        assert!(rendered.content_type.starts_with("text/csv"));
        assert!(rendered.body.starts_with(b"\xEF\xBB\xBF"), "UTF-8 BOM");
        let body = &rendered.body[3..];
        let mut reader = italian_csv(body);
        let headers = reader.headers().expect("a header row").clone();
        assert!(
            headers.iter().all(|h| !h.contains('_')),
            "Italian headers, no identifiers: {headers:?}"
        );
        let records: Vec<csv::StringRecord> = reader
            .records()
            .collect::<Result<_, _>>()
            .expect("every row parses");
        assert_eq!(records.len(), rows, "{name}: one row per item");
        assert!(records.iter().all(|r| r.len() == headers.len()));
        let text = std::str::from_utf8(body).expect("UTF-8");
        assert!(text.contains("\r\n"), "RFC 4180 line ends");
        insta::assert_snapshot!(name, text.replace("\r\n", "\n"));
    }
}

#[test]
fn the_csv_keeps_quotes_and_accents_of_titles_intact() {
    let world = scripted_year();
    let report = build(&world, None);
    let rendered = report::render(&report, Format::Csv, Level::Objective).expect("renders");
    let mut reader = italian_csv(&rendered.body[3..]);
    let headers = reader.headers().expect("headers").clone();
    let title = headers.iter().position(|h| h == "Titolo").expect("title");
    let key = headers.iter().position(|h| h == "Obiettivo").expect("key");
    let pedibus = reader
        .records()
        .map(|r| r.expect("a row"))
        .find(|r| &r[key] == "2022-2252-D")
        .expect("the Pedibus objective");
    assert!(pedibus[title].starts_with("\"Progetto Pedibus"));
    assert!(report.units[0].objectives[0].title.contains("attività"));
}

#[test]
fn the_html_report_is_well_formed_and_names_every_objective_with_its_outcome() {
    let world = scripted_year();
    let report = build(&world, None);
    for level in [Level::Phase, Level::Objective] {
        let rendered = report::render(&report, Format::Html, level).expect("renders");
        assert_eq!(rendered.content_type, "text/html; charset=utf-8");
        let html = String::from_utf8(rendered.body).expect("UTF-8");
        let page = xml::parse(&html);
        assert!(html.starts_with("<!DOCTYPE html>"));
        // Self-contained: no external scripts, styles, images or fonts.
        assert!(page.attributes("src").is_empty(), "no src attributes");
        assert!(page.attributes("href").is_empty(), "no links");
        assert!(!html.contains("url("), "no CSS urls");
        assert!(html.contains("@page") && html.contains("page-break-before"));
        assert!(page.elements.iter().any(|e| e == "svg"), "a chart");
        assert_eq!(
            page.elements.iter().filter(|e| *e == "rect").count(),
            report.summary.units.len(),
            "one bar per unit"
        );
        // Every objective, its title (escaped and unescaped back) and its outcome.
        let badges = page.badges();
        for objective in report.units.iter().flat_map(|u| &u.objectives) {
            assert!(
                page.text.contains(&objective.title),
                "{} has its title",
                objective.key
            );
            let outcome = badges
                .iter()
                .find(|(key, _)| key == &objective.key)
                .map(|(_, text)| text.as_str())
                .unwrap_or_else(|| panic!("{} has an outcome", objective.key));
            let expected = traguardo::report::italian::outcome(objective.outcome);
            assert_eq!(outcome, expected, "{}", objective.key);
        }
        if level == Level::Phase {
            // Status is readable without colour: a symbol and words.
            assert!(page.text.contains("✔completata nei tempi"));
            assert!(page.text.contains("▲completata in ritardo"));
            assert!(page.text.contains("⊘stralciata"));
        }
    }
}

#[test]
fn a_title_with_markup_is_escaped_in_html_and_kept_whole_in_markdown() {
    let world = scripted_year();
    let mut report = build(&world, None);
    report.units[0].objectives[0].title =
        "Sicurezza <script>alert('x')</script> & \"co\" | più".into();
    let html = text(&report, Format::Html, Level::Phase);
    assert!(!html.contains("<script>"));
    let page = xml::parse(&html);
    assert!(page
        .text
        .contains("Sicurezza <script>alert('x')</script> & \"co\" | più"));
    let md = text(&report, Format::Md, Level::Phase);
    assert!(!md.contains("<script>"));
    // A Markdown reader shows the title as written, and finds no raw HTML in it.
    let mut html_events = Vec::new();
    let mut shown = String::new();
    for event in pulldown_cmark::Parser::new_ext(&md, pulldown_cmark::Options::ENABLE_TABLES) {
        match event {
            pulldown_cmark::Event::Html(h) | pulldown_cmark::Event::InlineHtml(h) => {
                html_events.push(h.to_string())
            }
            pulldown_cmark::Event::Text(t) => shown.push_str(&t),
            _ => {}
        }
    }
    assert!(
        html_events.is_empty(),
        "raw HTML in the Markdown: {html_events:?}"
    );
    assert!(
        shown.contains("Sicurezza <script>alert('x')</script> & \"co\" | più"),
        "the title reads as typed"
    );
}

#[test]
fn a_validator_note_with_markup_is_printed_as_text_in_markdown() {
    let world = scripted_year();
    let mut report = build(&world, None);
    let validated = report
        .units
        .iter_mut()
        .flat_map(|u| u.objectives.iter_mut())
        .find_map(|o| o.validation.as_mut())
        .expect("a validated objective");
    validated.note = Some("<script>alert(1)</script> *grassetto* [link](http://x)".into());
    let md = text(&report, Format::Md, Level::Phase);
    let raw = pulldown_cmark::Parser::new(&md).any(|e| {
        matches!(
            e,
            pulldown_cmark::Event::Html(_)
                | pulldown_cmark::Event::InlineHtml(_)
                | pulldown_cmark::Event::Start(pulldown_cmark::Tag::Link { .. })
                | pulldown_cmark::Event::Start(pulldown_cmark::Tag::Emphasis)
        )
    });
    assert!(!raw, "the note is text, not markup:\n{md}");
    assert!(md.contains("\\<script\\>alert(1)\\</script\\>"));
}

#[test]
fn the_report_pins_the_head_and_counts_the_year() {
    let world = scripted_year();
    let report = build(&world, None);
    let head = world.app.store().head().expect("a head");
    assert_eq!(report.head, head);
    assert_eq!(report.summary.objectives, 7);
    assert_eq!(report.summary.achieved, 2, "2250-C and 2252-D");
    assert_eq!(report.summary.not_achieved, 5);
    assert_eq!(report.summary.validated, 2);
    let units: Vec<&str> = report.units.iter().map(|u| u.code.as_str()).collect();
    assert_eq!(units, ["2247", "2249", "2250", "2252"]);
    assert_eq!(report.revisions.len(), 2);
    let kinds: Vec<&str> = report.flags.iter().map(|f| f.kind.as_str()).collect();
    for kind in [
        "late_registration",
        "retroactive_revision",
        "rescued_by_revision",
    ] {
        assert!(kinds.contains(&kind), "{kind} in {kinds:?}");
    }
}

#[test]
fn a_report_as_of_before_a_revision_shows_the_old_deadlines() {
    let world = scripted_year();
    let before = Utc.with_ymd_and_hms(2022, 7, 21, 0, 0, 0).unwrap();
    let old = build(&world, Some(before));
    let new = build(&world, None);
    let phase3 = |r: &Report| {
        r.units
            .iter()
            .flat_map(|u| &u.objectives)
            .find(|o| o.key == "2022-2250-A")
            .and_then(|o| o.phases.iter().find(|p| p.number == 3))
            .cloned()
            .expect("2250-A phase 3")
    };
    assert_eq!(phase3(&old).deadline, d("2022-07-31"));
    assert_eq!(phase3(&old).completed_on, None);
    assert_eq!(phase3(&new).deadline, d("2022-09-30"));
    assert_eq!(phase3(&new).original_deadline, d("2022-07-31"));
    assert!(old.revisions.is_empty());
    assert_eq!(old.as_of, Some(before));
    assert!(old.head.seq < new.head.seq);
    let at_cut = world
        .app
        .store()
        .read_all(old.head.seq - 1, 2)
        .expect("events");
    assert!(at_cut[0].recorded_at <= before && at_cut[1].recorded_at > before);
    assert_eq!(at_cut[0].hash, old.head.hash);
    let md = text(&old, Format::Md, Level::Phase);
    assert!(md.contains("Situazione registrata al:** 21/07/2022 02:00:00 CEST"));
    let row = md
        .lines()
        .find(|l| l.starts_with("| 3 | Formazione e redazione delle tabelle sull'applicativo"))
        .expect("phase 3 of 2022-2250-A");
    assert!(
        row.contains("| 20% |") && row.contains("| 31/07/2022 | 31/07/2022 |"),
        "{row}"
    );
}

#[test]
fn an_unknown_year_or_a_cut_before_the_plan_is_not_found() {
    let world = scripted_year();
    let unknown = report::build(&world.app, 2031, Some(d(AT)), None, generated_at());
    assert!(unknown
        .as_ref()
        .is_err_and(traguardo::AppError::is_not_found));
    let before = Utc.with_ymd_and_hms(2021, 12, 31, 0, 0, 0).unwrap();
    let early = report::build(&world.app, 2022, Some(d(AT)), Some(before), generated_at());
    assert!(early.as_ref().is_err_and(traguardo::AppError::is_not_found));
}

#[test]
fn a_report_before_the_end_of_the_year_is_an_interim_monitoring() {
    let world = scripted_year();
    let interim = report::build(
        &world.app,
        2022,
        Some(d("2022-06-30")),
        None,
        generated_at(),
    )
    .expect("a report");
    assert!(interim.interim);
    let md = text(&interim, Format::Md, Level::Phase);
    assert!(
        md.starts_with("# Monitoraggio intermedio al 30/06/2022\n"),
        "{md}"
    );
    let html = text(&interim, Format::Html, Level::Phase);
    assert!(html.contains("<h1>Monitoraggio intermedio al 30/06/2022</h1>"));
    let last_day = report::build(
        &world.app,
        2022,
        Some(d("2022-12-31")),
        None,
        generated_at(),
    )
    .expect("a report");
    assert!(!last_day.interim);
    assert!(text(&last_day, Format::Md, Level::Phase)
        .starts_with("# Relazione sul grado di raggiungimento degli obiettivi 2022\n"));
}

#[test]
fn the_signature_block_names_each_manager_and_the_nucleo_minutes() {
    let world = scripted_year();
    let report = build(&world, None);
    let units: Vec<(&str, &str)> = report
        .signatures
        .units
        .iter()
        .map(|s| (s.unit.as_str(), s.role.as_str()))
        .collect();
    assert_eq!(
        units,
        [
            ("2247", "Il Responsabile"),
            ("2249", "Il Dirigente"),
            ("2250", "Il Dirigente"),
            ("2252", "Il Dirigente")
        ]
    );
    let minutes = &report.signatures.validations;
    assert_eq!(minutes.len(), 1);
    assert_eq!(
        minutes[0].reference.as_deref(),
        Some("Verbale n. 1 del 20/01/2023")
    );
    assert_eq!(minutes[0].objectives, report.summary.validated);
    for format in [Format::Md, Format::Html] {
        let text = text(&report, format, Level::Objective);
        assert!(text.contains("Visto di validazione — il Nucleo di Valutazione"));
        assert!(text.contains("Verbale n. 1 del 20/01/2023, registrato il 20/01/2023"));
        assert!(text.contains("Il Responsabile"));
        assert!(text.contains("Dott. Stefano Specchia"));
    }
}

#[test]
fn a_stale_validation_is_marked_where_its_figure_is() {
    let world = scripted_year();
    let validated = build(&world, None)
        .units
        .iter()
        .flat_map(|u| &u.objectives)
        .find(|o| o.validation.is_some())
        .map(|o| o.key.clone())
        .expect("a validated objective");
    // A completion recorded after the validation makes it stale.
    let retract = world.run(
        &validated,
        ObjectiveCommand::RetractCompletion {
            phase: 1,
            reason: "Verbale di collaudo annullato".into(),
            backfill: None,
        },
        &crate::support::manager_of(&validated),
    );
    retract.expect("the completion is withdrawn");
    let report = build(&world, None);
    let objective = report
        .units
        .iter()
        .flat_map(|u| &u.objectives)
        .find(|o| o.key == validated)
        .expect("the objective");
    assert!(objective.validation.as_ref().is_some_and(|v| v.stale));
    let md = text(&report, Format::Md, Level::Objective);
    let row = md
        .lines()
        .find(|l| l.starts_with(&format!("| {validated} |")))
        .expect("its row");
    assert!(row.contains("validazione da ripetere"), "{row}");
    let md = text(&report, Format::Md, Level::Phase);
    assert!(md.contains("completamento annullato"));
}

/// A reader set as an Italian spreadsheet reads a CSV: `;` between fields.
fn italian_csv(body: &[u8]) -> csv::Reader<&[u8]> {
    csv::ReaderBuilder::new().delimiter(b';').from_reader(body)
}

#[test]
fn the_csv_reads_as_an_italian_spreadsheet_reads_it() {
    let world = scripted_year();
    let report = build(&world, None);
    let rendered = report::render(&report, Format::Csv, Level::Phase).expect("renders");
    let mut reader = italian_csv(&rendered.body[3..]);
    let headers = reader.headers().expect("headers").clone();
    let column = |name: &str| {
        headers
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("a column {name:?} in {headers:?}"))
    };
    let (key, phase, weight, deadline, status, declared) = (
        column("Obiettivo"),
        column("Fase"),
        column("Peso (%)"),
        column("Scadenza in vigore"),
        column("Stato"),
        column("Grado di raggiungimento dichiarato (%)"),
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("a row")).collect();
    for (unit, objective) in report
        .units
        .iter()
        .flat_map(|u| u.objectives.iter().map(move |o| (u, o)))
    {
        for p in &objective.phases {
            let row = rows
                .iter()
                .find(|r| r[key] == objective.key && r[phase] == p.number.to_string())
                .unwrap_or_else(|| panic!("a row for {} phase {}", objective.key, p.number));
            // A decimal comma, no point: 33,33 reads as a number in Italian.
            let expected = traguardo::report::italian::number(p.weight);
            assert_eq!(row[weight], expected, "{} {}", unit.code, objective.key);
            assert!(!row[weight].contains('.'));
            assert_eq!(
                row[deadline],
                p.deadline.format("%d/%m/%Y").to_string(),
                "dd/mm/yyyy"
            );
            assert_eq!(&row[status], traguardo::report::italian::status(p.status));
        }
    }
    assert!(rows.iter().all(|r| !r[declared].contains('.')));
    // A third of a phase's weight is written with a decimal comma.
    let mut thirds = report.clone();
    thirds.units[0].objectives[0].phases[0].weight =
        traguardo_projections::objective::Pct(Hundredths(3333));
    let rendered = report::render(&thirds, Format::Csv, Level::Phase).expect("renders");
    let mut reader = italian_csv(&rendered.body[3..]);
    let first = reader.records().next().expect("a row").expect("parses");
    assert_eq!(&first[weight], "33,33");
}

#[test]
fn csv_cells_that_a_spreadsheet_would_evaluate_are_written_as_text() {
    let world = scripted_year();
    let mut report = build(&world, None);
    report.units[0].objectives[0].title = "=HYPERLINK(\"http://x\")".into();
    report.units[0].objectives[0].phases[0].description = "- attivazione".into();
    let rendered = report::render(&report, Format::Csv, Level::Phase).expect("renders");
    let mut reader = italian_csv(&rendered.body[3..]);
    let first = reader.records().next().expect("a row").expect("parses");
    assert_eq!(&first[5], "'=HYPERLINK(\"http://x\")");
    assert_eq!(&first[8], "'- attivazione");
    assert_eq!(traguardo::report::csv::text("Città"), "Città");
}

#[test]
fn formats_and_levels_parse_and_name_the_choices_when_wrong() {
    assert_eq!("html".parse::<Format>().ok(), Some(Format::Html));
    assert_eq!("objective".parse::<Level>().ok(), Some(Level::Objective));
    assert_eq!("CSV".parse::<Format>().ok(), Some(Format::Csv));
    assert_eq!("PDF".parse::<Format>().ok(), Some(Format::Pdf));
    let wrong = "docx"
        .parse::<Format>()
        .expect_err("not a format")
        .to_string();
    assert!(
        wrong.contains("json, csv, md, html, xlsx or pdf"),
        "{wrong}"
    );
    let wrong = "unit"
        .parse::<Level>()
        .expect_err("not a level")
        .to_string();
    assert!(wrong.contains("phase or objective"), "{wrong}");
}

/// Runs `traguardo report` on the world's database; returns its output and the
/// seconds its generation time can be.
fn cli(world: &World, args: &[&str]) -> (Vec<u8>, Vec<DateTime<Utc>>) {
    let from = Utc::now().trunc_subsecs(0);
    let output = Command::new(env!("CARGO_BIN_EXE_traguardo"))
        .arg("--db")
        .arg(world.db())
        .args(["report", "--year", "2022", "--at", AT])
        .args(args)
        .output()
        .expect("the binary runs");
    let to = Utc::now().trunc_subsecs(0);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let seconds = (0..=(to - from).num_seconds())
        .map(|s| from + Duration::seconds(s))
        .collect();
    (output.stdout, seconds)
}

/// Replaces a generation time, in the way `format` writes it, with a marker.
fn without_generation_time(text: &str, format: Format, at: DateTime<Utc>) -> String {
    let written = match format {
        Format::Json => traguardo_events::envelope::format_timestamp(&at),
        _ => traguardo::report::italian::timestamp(at),
    };
    text.replace(&written, "<generated>")
}

#[test]
fn the_command_line_writes_the_library_report_byte_for_byte() {
    let world = scripted_year();
    let report = build(&world, None);
    for (format, level, args) in [
        (Format::Json, Level::Phase, vec!["--format", "json"]),
        (Format::Md, Level::Phase, vec!["--format", "md"]),
        (Format::Html, Level::Phase, vec!["--format", "html"]),
        (Format::Csv, Level::Phase, vec!["--format", "csv"]),
        (
            Format::Csv,
            Level::Objective,
            vec!["--format", "csv", "--level", "objective"],
        ),
        (
            Format::Md,
            Level::Objective,
            vec!["--format", "md", "--level", "objective"],
        ),
    ] {
        let library = report::render(&report, format, level)
            .expect("renders")
            .body;
        let (printed, seconds) = cli(&world, &args);
        if format == Format::Csv {
            assert_eq!(printed, library, "{args:?}: no generation time in CSV");
            continue;
        }
        let library = without_generation_time(
            &String::from_utf8(library).expect("UTF-8"),
            format,
            generated_at(),
        );
        let printed = seconds
            .iter()
            .fold(String::from_utf8(printed).expect("UTF-8"), |text, at| {
                without_generation_time(&text, format, *at)
            });
        assert!(printed.contains("<generated>"), "{args:?}");
        assert_eq!(printed, library, "{args:?}");
    }
    // And as of a record time, against the library's report as of the same time.
    let cut = "2022-07-21T00:00:00Z";
    let as_of = build(
        &world,
        Some(Utc.with_ymd_and_hms(2022, 7, 21, 0, 0, 0).unwrap()),
    );
    let (printed, _) = cli(&world, &["--format", "csv", "--as-of", cut]);
    let library = report::render(&as_of, Format::Csv, Level::Phase).expect("renders");
    assert_eq!(printed, library.body);
}

#[test]
fn the_command_line_refuses_a_missing_database_and_an_unknown_format() {
    let dir = tempfile::tempdir().expect("a folder");
    let missing = dir.path().join("none.db");
    let output = Command::new(env!("CARGO_BIN_EXE_traguardo"))
        .arg("--db")
        .arg(&missing)
        .args(["report", "--year", "2022"])
        .output()
        .expect("the binary runs");
    assert!(!output.status.success());
    assert!(!missing.exists(), "no database is created by a report");
    let world = scripted_year();
    let output = Command::new(env!("CARGO_BIN_EXE_traguardo"))
        .arg("--db")
        .arg(world.db())
        .args(["report", "--year", "2022", "--format", "docx"])
        .output()
        .expect("the binary runs");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("json, csv, md, html, xlsx or pdf"));
}

#[test]
fn the_markup_checker_rejects_what_is_not_well_formed() {
    for broken in [
        "<html><body><p>text</body></html>",
        "<html><body>a < b</body></html>",
        "<html><body>&nbsp;</body></html>",
        "<html><body><p>never closed</p>",
        "<html></html><html></html>",
    ] {
        let parsed = std::panic::catch_unwind(|| xml::parse(broken));
        assert!(parsed.is_err(), "{broken} was accepted");
    }
}

/// A strict XML reading of the HTML page (it is written as polyglot markup, so a
/// missing end tag, a stray `<` or a bad entity fails here).
mod xml {
    use quick_xml::events::Event;
    use quick_xml::{Reader, XmlVersion};

    /// What the page holds.
    pub struct Page {
        /// Element names, in document order.
        pub elements: Vec<String>,
        /// (element, attribute, value), unescaped.
        pub attributes: Vec<(String, String, String)>,
        /// All text, unescaped.
        pub text: String,
        /// (data-objective, text of the element) of every outcome badge.
        badges: Vec<(String, String)>,
    }

    impl Page {
        /// The values of attribute `name` anywhere in the page.
        pub fn attributes(&self, name: &str) -> Vec<&str> {
            self.attributes
                .iter()
                .filter(|(_, a, _)| a == name)
                .map(|(_, _, v)| v.as_str())
                .collect()
        }

        /// The outcome badges, by objective key.
        pub fn badges(&self) -> Vec<(String, String)> {
            self.badges.clone()
        }
    }

    /// Parses the page, failing the test on any well-formedness error.
    pub fn parse(html: &str) -> Page {
        let mut reader = Reader::from_str(html);
        reader.config_mut().check_end_names = true;
        let mut stack: Vec<String> = Vec::new();
        let mut page = Page {
            elements: Vec::new(),
            attributes: Vec::new(),
            text: String::new(),
            badges: Vec::new(),
        };
        let mut badge: Option<(String, String)> = None;
        let mut roots = 0;
        loop {
            let event = reader
                .read_event()
                .unwrap_or_else(|e| panic!("not well-formed at {}: {e}", reader.buffer_position()));
            match event {
                Event::Start(ref e) | Event::Empty(ref e) => {
                    let name = e.name().as_ref().to_string();
                    if stack.is_empty() {
                        roots += 1;
                    }
                    for attribute in e.attributes() {
                        let attribute = attribute.expect("a well-formed attribute");
                        let key = attribute.key.as_ref().to_string();
                        let value = attribute
                            .normalized_value(XmlVersion::Implicit1_0)
                            .expect("a well-formed attribute value")
                            .to_string();
                        if key == "data-objective" {
                            badge = Some((value.clone(), String::new()));
                        }
                        page.attributes.push((name.clone(), key, value));
                    }
                    page.elements.push(name.clone());
                    if matches!(event, Event::Start(_)) {
                        stack.push(name);
                    }
                }
                Event::End(_) => {
                    stack.pop().expect("an end tag closes an open element");
                    if let Some(done) = badge.take() {
                        page.badges.push(done);
                    }
                }
                Event::Text(ref t) => {
                    let text = t.xml10_content();
                    if let Some((_, inner)) = badge.as_mut() {
                        inner.push_str(&text);
                    }
                    page.text.push_str(&text);
                }
                Event::GeneralRef(ref r) => {
                    let resolved = r
                        .resolve_char_ref()
                        .expect("a character reference")
                        .unwrap_or_else(|| match AsRef::<str>::as_ref(r) {
                            "amp" => '&',
                            "lt" => '<',
                            "gt" => '>',
                            "quot" => '"',
                            "apos" => '\'',
                            other => panic!("unknown entity {other}"),
                        });
                    if let Some((_, inner)) = badge.as_mut() {
                        inner.push(resolved);
                    }
                    page.text.push(resolved);
                }
                Event::Eof => break,
                _ => {}
            }
        }
        assert!(stack.is_empty(), "unclosed elements: {stack:?}");
        assert_eq!(roots, 1, "one root element");
        page
    }
}
