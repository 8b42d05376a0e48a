//! The report as an xlsx workbook, read back with calamine: its six sheets,
//! figures as numbers, dates as dates, every objective; from the command line
//! and over HTTP on the real server.

use calamine::{Data, Range, Reader, Xlsx};
use chrono::NaiveDate;
use traguardo::report::{self, Format, Level};

use crate::report::{build, scripted_year};
use crate::support::{block_on, traguardo, Serve, SERVE_ADMIN};

fn open(bytes: Vec<u8>) -> Xlsx<std::io::Cursor<Vec<u8>>> {
    Xlsx::new(std::io::Cursor::new(bytes)).expect("an xlsx workbook")
}

/// The column under `header` in row 0.
fn column(range: &Range<Data>, header: &str) -> u32 {
    let width = range.end().expect("a table").1;
    (0..=width)
        .find(|c| range.get_value((0, *c)) == Some(&Data::String(header.into())))
        .unwrap_or_else(|| panic!("no column {header}"))
}

fn as_date(data: &Data) -> NaiveDate {
    match data {
        Data::DateTime(d) if d.is_datetime() => {
            let (y, m, day, ..) = d.to_ymd_hms_milli();
            NaiveDate::from_ymd_opt(y.into(), m.into(), day.into()).unwrap()
        }
        other => panic!("not a date cell: {other:?}"),
    }
}

fn as_number(data: &Data) -> f64 {
    match data {
        Data::Float(f) => *f,
        Data::Int(i) => *i as f64,
        other => panic!("not a number cell: {other:?}"),
    }
}

#[test]
fn the_xlsx_report_holds_every_objective_with_figures_as_numbers_and_dates_as_dates() {
    let world = scripted_year();
    let report = build(&world, None);
    let rendered = report::render(&report, Format::Xlsx, Level::Phase).unwrap();
    assert_eq!(
        rendered.content_type,
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    );
    assert_eq!(rendered.file_extension, "xlsx");
    let mut workbook = open(rendered.body);
    assert_eq!(
        workbook.sheet_names(),
        [
            "Riepilogo",
            "Obiettivi",
            "Fasi",
            "Indicatori",
            "Rimodulazioni",
            "Segnalazioni"
        ]
    );

    let objectives = workbook.worksheet_range("Obiettivi").unwrap();
    let (key, declared, deadline) = (
        column(&objectives, "Obiettivo"),
        column(&objectives, "Grado di raggiungimento dichiarato (%)"),
        column(&objectives, "Scadenza finale"),
    );
    let all: Vec<_> = report.units.iter().flat_map(|u| &u.objectives).collect();
    assert_eq!(objectives.end().unwrap().0 as usize, all.len());
    for (r, o) in (1..).zip(&all) {
        assert_eq!(
            objectives.get_value((r, key)),
            Some(&Data::String(o.key.clone()))
        );
        let expected = o.on_time_pct.0 .0 as f64 / 10_000.0;
        let got = as_number(objectives.get_value((r, declared)).unwrap());
        assert!(
            (got - expected).abs() < 1e-9,
            "{}: {got} ≠ {expected}",
            o.key
        );
        assert_eq!(
            as_date(objectives.get_value((r, deadline)).unwrap()),
            o.final_deadline
        );
    }

    let phases = workbook.worksheet_range("Fasi").unwrap();
    let count: usize = all.iter().map(|o| o.phases.len()).sum();
    assert_eq!(phases.end().unwrap().0 as usize, count);
    let (weight, in_force, number) = (
        column(&phases, "Peso (%)"),
        column(&phases, "Scadenza in vigore"),
        column(&phases, "Fase"),
    );
    let first = &all[0].phases[0];
    assert_eq!(
        as_number(phases.get_value((1, weight)).unwrap()),
        first.weight.0 .0 as f64 / 10_000.0
    );
    assert_eq!(
        as_date(phases.get_value((1, in_force)).unwrap()),
        first.deadline
    );
    assert_eq!(as_number(phases.get_value((1, number)).unwrap()), 1.0);

    let indicators = workbook.worksheet_range("Indicatori").unwrap();
    let count: usize = all.iter().map(|o| o.indicators.len()).sum();
    assert_eq!(indicators.end().unwrap().0 as usize, count);

    let revisions = workbook.worksheet_range("Rimodulazioni").unwrap();
    assert!(!report.revisions.is_empty());
    assert_eq!(revisions.end().unwrap().0 as usize, report.revisions.len());
    let in_force_from = column(&revisions, "In vigore dal");
    assert_eq!(
        as_date(revisions.get_value((1, in_force_from)).unwrap()),
        report.revisions[0].in_force_from
    );
    let flags = workbook.worksheet_range("Segnalazioni").unwrap();
    assert_eq!(flags.end().unwrap().0 as usize, report.flags.len());

    // The summary names the head the figures come from, and the plan's grado.
    let summary = workbook.worksheet_range("Riepilogo").unwrap();
    let value_of = |label: &str| {
        let last = summary.end().unwrap().0;
        let row = (0..=last)
            .find(|r| summary.get_value((*r, 0)) == Some(&Data::String(label.into())))
            .unwrap_or_else(|| panic!("no {label} in Riepilogo"));
        summary.get_value((row, 1)).cloned().unwrap()
    };
    assert_eq!(
        value_of("Registro: hash"),
        Data::String(report.head.hash.clone())
    );
    assert_eq!(
        as_number(&value_of("Registro: evento n.")),
        report.head.seq as f64
    );
    assert_eq!(as_date(&value_of("Data di riferimento")), report.at);
    assert!(
        (as_number(&value_of("Grado di raggiungimento dichiarato"))
            - report.summary.score.0 .0 as f64 / 10_000.0)
            .abs()
            < 1e-9
    );
}

#[test]
fn the_xlsx_report_comes_from_the_command_line_and_over_http() {
    let world = scripted_year();
    let db = world.db().display().to_string();
    let out = traguardo(
        &db,
        &[
            "report",
            "--year",
            "2022",
            "--format",
            "xlsx",
            "--at",
            "2023-01-31",
        ],
    );
    assert!(out.status.success(), "{out:?}");
    let mut from_cli = open(out.stdout);
    assert_eq!(from_cli.sheet_names().len(), 6);
    let cli_objectives = from_cli.worksheet_range("Obiettivi").unwrap();

    let server = Serve::start(&db);
    let (status, headers, body) = block_on(async {
        let response = reqwest::Client::new()
            .get(server.url("/api/v1/plans/2022/report?format=xlsx&at=2023-01-31"))
            .bearer_auth(SERVE_ADMIN)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        (status, headers, response.bytes().await.unwrap().to_vec())
    });
    let response = (status, headers);
    assert_eq!(response.0, reqwest::StatusCode::OK);
    assert_eq!(
        response.1["content-type"],
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    );
    assert!(response.1["content-disposition"]
        .to_str()
        .unwrap()
        .contains("relazione-2022.xlsx"));
    let mut over_http = open(body);
    // The same figures either way.
    assert_eq!(
        over_http.worksheet_range("Obiettivi").unwrap(),
        cli_objectives
    );
    server.stop();
}
