//! The report of a large plan in every format: a generated plan of 2,000
//! objectives and 12,000 phases, loaded into a scratch SQLite file, one year of
//! progress on it, then the report built once and rendered in each format.
//! Adding a format is adding it to [`FORMATS`].

use std::process::ExitCode;
use std::time::Instant;

use chrono::{NaiveDate, SubsecRound, Utc};
use serde_json::{json, Value};
use traguardo::commands::{ObjectiveCommand, Principal};
use traguardo::report::{Format, Level};
use traguardo::App;
use traguardo_events::model::Role;
use traguardo_events::Clock;

/// Every format the report is rendered in, with its name.
const FORMATS: [(&str, Format); 6] = [
    ("json", Format::Json),
    ("csv", Format::Csv),
    ("md", Format::Md),
    ("html", Format::Html),
    ("xlsx", Format::Xlsx),
    ("pdf", Format::Pdf),
];

/// `traguardo-bench report` options.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// Where the scratch database goes.
    #[arg(long, default_value = "/tmp")]
    dir: std::path::PathBuf,
    /// Objectives in the plan (six phases each).
    #[arg(long, default_value_t = 2_000)]
    objectives: usize,
    /// Renderings of each format; the median is printed.
    #[arg(long, default_value_t = 5)]
    runs: usize,
}

const PHASES: usize = 6;
const PER_UNIT: usize = 10;

fn letter(i: usize) -> String {
    // A, B, … J within a unit.
    char::from(b'A' + (i % PER_UNIT) as u8).to_string()
}

/// A plan document of `n` objectives, ten per unit, six phases each.
fn plan(n: usize) -> Value {
    let units: Vec<Value> = (0..n.div_ceil(PER_UNIT))
        .map(|u| {
            json!({"code": format!("{}", 3000 + u),
                   "name": format!("RESPONSABILE SETTORE {} SERVIZI AL CITTADINO", 3000 + u),
                   "kind": "settore",
                   "label": format!("Settore {} Servizi al cittadino", 3000 + u),
                   "manager": format!("Dott. Dirigente {u}"), "manager_title": "Dirigente"})
        })
        .collect();
    let objectives: Vec<Value> = (0..n)
        .map(|i| {
            let unit = format!("{}", 3000 + i / PER_UNIT);
            let phases: Vec<Value> = (1..=PHASES)
                .map(|p| {
                    let weight = if p == PHASES { 100 - 16 * (PHASES - 1) } else { 16 };
                    json!({"number": p, "description": format!("Fase {p} dell'obiettivo {i}: attività e verifica"),
                           "weight": weight, "involved": [],
                           "deadline": format!("2022-{:02}-28", 1 + p * 11 / PHASES)})
                })
                .collect();
            json!({"unit": unit, "letter": letter(i), "manager": format!("Dott. Dirigente {}", i / PER_UNIT),
                   "title": format!("Obiettivo {i}: miglioramento dei servizi"),
                   "strategic_purpose": "Migliorare i servizi resi ai cittadini",
                   "expected_result": "Tempi di risposta ridotti",
                   "phases": phases, "final_deadline": "2022-12-31",
                   "indicators": [{"id": "tempi", "description": "rispetto dei tempi", "kind": "qualitative"}]})
        })
        .collect();
    json!({"organisation": "Città di Prova", "year": 2022, "title": "Piano generato",
           "units": units, "objectives": objectives})
}

/// Runs the benchmark and prints what it measured.
///
/// # Errors
/// When the scratch database or the report fails.
pub fn run(args: ReportArgs) -> anyhow::Result<ExitCode> {
    let dir = tempfile_dir(&args.dir)?;
    let db = dir.join("report-bench.db");
    let clock = Clock::manual(
        NaiveDate::from_ymd_opt(2023, 1, 20)
            .and_then(|d| d.and_hms_opt(9, 0, 0))
            .map(|d| d.and_utc())
            .ok_or_else(|| anyhow::anyhow!("a date"))?,
    );
    let app = App::open(&db, clock)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let admin = Principal::new("bench", Role::Admin, vec![]);
    let valid = traguardo::plan_document::validate(&plan(args.objectives))
        .map_err(|e| anyhow::anyhow!("the generated plan is invalid: {e:?}"))?;
    let started = Instant::now();
    runtime.block_on(app.import_plan(&valid, &admin))?;
    println!(
        "plan loaded: {} objectives, {} phases, in {:.2?}",
        args.objectives,
        args.objectives * PHASES,
        started.elapsed()
    );
    // Progress: every objective completes its first phases, some late.
    let started = Instant::now();
    for objective in &valid.objectives {
        let key = objective.key();
        let manager = Principal::new(
            objective.manager.clone(),
            Role::Manager,
            vec![objective.unit.clone()],
        );
        for phase in objective.phases.iter().take(3) {
            let on = phase.deadline - chrono::Duration::days((phase.number % 2) as i64 * 3 - 1);
            let command = ObjectiveCommand::CompletePhase {
                phase: phase.number,
                on,
                note: None,
                evidence: vec![],
                backfill: None,
            };
            runtime.block_on(app.execute(&key, &command, &manager, None, None))?;
        }
    }
    println!("progress recorded in {:.2?}", started.elapsed());

    let at = NaiveDate::from_ymd_opt(2022, 12, 31);
    let now = Utc::now().trunc_subsecs(0);
    let started = Instant::now();
    let report = traguardo::report::build(&app, 2022, at, None, now)?;
    println!("report built in {:.2?}", started.elapsed());
    println!("{:<6} {:>12} {:>12}", "format", "median", "bytes");
    for (name, format) in FORMATS {
        let mut times = Vec::with_capacity(args.runs);
        let mut size = 0;
        for _ in 0..args.runs.max(1) {
            let started = Instant::now();
            let rendered = traguardo::report::render(&report, format, Level::Phase)?;
            times.push(started.elapsed());
            size = rendered.body.len();
        }
        times.sort();
        println!("{name:<6} {:>12.2?} {size:>12}", times[times.len() / 2]);
    }
    std::fs::remove_dir_all(&dir).ok();
    Ok(ExitCode::SUCCESS)
}

fn tempfile_dir(parent: &std::path::Path) -> anyhow::Result<std::path::PathBuf> {
    let dir = parent.join(format!("traguardo-report-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
