//! `serve --demo`: the Alessandria 2022 plan, one account per role, and a
//! realistic year played on it through the application layer (the same decide
//! functions as every request), with record times in 2022–2023 as if each thing
//! had been entered on the day: phases completed on time and late with their
//! justifications, a late registration, the revision of July 2022 (a deadline
//! moved, weights changed), indicator measurements, the Nucleo's validations
//! with a *sterilizzazione*.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{NaiveDate, TimeZone, Utc};
use traguardo_events::domain::RevisionChange;
use traguardo_events::model::{Hundredths, Role, ValidationOutcome, ValidationStage};
use traguardo_events::Clock;

use super::accounts::NewUser;
use crate::commands::{ObjectiveCommand, Principal, RevisionRequest};
use crate::error::AppError;
use crate::App;

/// A demo account: username, password, role, display name, units.
#[derive(Debug, Clone)]
pub struct DemoAccount {
    /// Username.
    pub username: &'static str,
    /// Password (a demo: printed at start).
    pub password: &'static str,
    /// Role.
    pub role: Role,
    /// Display name.
    pub actor: &'static str,
    /// Units.
    pub units: &'static [&'static str],
}

/// One account per role (and a manager per unit that has objectives).
pub const ACCOUNTS: &[DemoAccount] = &[
    DemoAccount {
        username: "controllo",
        password: "controllo-demo-2022",
        role: Role::Admin,
        actor: "Ufficio Programmazione e Controllo",
        units: &[],
    },
    DemoAccount {
        username: "specchia",
        password: "specchia-demo-2022",
        role: Role::Manager,
        actor: "Dott. Stefano Specchia",
        units: &["2250"],
    },
    DemoAccount {
        username: "galandra",
        password: "galandra-demo-2022",
        role: Role::Manager,
        actor: "ing. Luca Galandra",
        units: &["2249"],
    },
    DemoAccount {
        username: "bassani",
        password: "bassani-demo-2022",
        role: Role::Manager,
        actor: "Comandante Vicario Alberto Fabrizio Bassani",
        units: &["2247"],
    },
    DemoAccount {
        username: "bocchio",
        password: "bocchio-demo-2022",
        role: Role::Manager,
        actor: "Dott.ssa Orietta Bocchio",
        units: &["2252"],
    },
    DemoAccount {
        username: "nucleo",
        password: "nucleo-demo-2022",
        role: Role::Validator,
        actor: "Nucleo di Valutazione",
        units: &[],
    },
    DemoAccount {
        username: "revisore",
        password: "revisore-demo-2022",
        role: Role::Auditor,
        actor: "Revisore dei conti",
        units: &[],
    },
];

/// The principal of a demo account.
pub fn principal(username: &str) -> Principal {
    let a = ACCOUNTS
        .iter()
        .find(|a| a.username == username)
        .unwrap_or(&ACCOUNTS[0]);
    Principal::new(
        a.actor.to_string(),
        a.role,
        a.units.iter().map(|u| u.to_string()).collect(),
    )
}

fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).unwrap_or_default()
}

/// Sets a manual clock to 10:00 Italian time (09:00 UTC in winter, 08:00 in
/// summer is close enough: 09:00 UTC is the same Italian day all year).
fn at(clock: &Clock, on: NaiveDate) {
    if let Some(t) = on.and_hms_opt(9, 0, 0) {
        clock.set(Utc.from_utc_datetime(&t));
    }
}

/// Prepares the demo database at `db`: when it is empty, loads the plan, creates
/// the accounts and plays the year with a manual clock, then closes it (the
/// server reopens it with the real clock). Prints the accounts either way.
///
/// # Errors
/// When the database cannot be opened or a step of the year is refused.
pub async fn prepare(db: &Path) -> anyhow::Result<()> {
    let clock = Clock::manual(
        Utc.with_ymd_and_hms(2022, 1, 20, 9, 0, 0)
            .single()
            .unwrap_or_default(),
    );
    let app = App::open(db, clock.clone())?;
    if app.store().head()?.seq == 0 {
        load_plan(&app).await?;
        create_accounts(&app).await?;
        play_year(&app, &clock, d(2023, 3, 31)).await?;
        println!("demo: loaded the Alessandria 2022 plan and played the year 2022");
    } else {
        println!("demo: the database is not empty; nothing loaded");
    }
    let store = app.store().clone();
    drop(app);
    tokio::task::spawn_blocking(move || store.shutdown()).await?;
    println!("demo accounts (username / password — role):");
    for a in ACCOUNTS {
        println!(
            "  {:<10} / {:<20} — {}{}",
            a.username,
            a.password,
            traguardo_projections::italian::role(a.role),
            if a.units.is_empty() {
                String::new()
            } else {
                format!(" {}", a.units.join(", "))
            }
        );
    }
    Ok(())
}

/// Loads the bundled plan as the control office.
///
/// # Errors
/// When it is loaded already.
pub async fn load_plan(app: &App) -> Result<(), AppError> {
    let plan = crate::plan_document::parse(crate::http::DEMO_PLAN).map_err(AppError::Invalid)?;
    app.import_plan(&plan, &principal("controllo")).await?;
    Ok(())
}

/// Creates the demo accounts.
///
/// # Errors
/// When one exists already.
pub async fn create_accounts(app: &App) -> Result<(), AppError> {
    let admin = principal("controllo");
    for a in ACCOUNTS {
        app.create_user(
            NewUser {
                username: a.username.into(),
                password: a.password.into(),
                actor: a.actor.into(),
                role: a.role,
                units: a.units.iter().map(|u| u.to_string()).collect(),
            },
            &admin,
        )
        .await?;
    }
    Ok(())
}

/// One step of the year: the day it was recorded, and what.
enum Step {
    Start(&'static str, u32, NaiveDate, &'static str),
    Complete(
        &'static str,
        u32,
        NaiveDate,
        &'static str,
        &'static [&'static str],
    ),
    Measure(
        &'static str,
        &'static str,
        NaiveDate,
        Option<i64>,
        Option<(u64, u64)>,
        &'static str,
    ),
    Validate(
        &'static str,
        ValidationStage,
        &'static [u32],
        &'static [u32],
        &'static str,
    ),
    Revise,
}

/// Plays the year 2022 up to (and including) record date `until`.
///
/// # Errors
/// When a step is refused.
pub async fn play_year(app: &App, clock: &Clock, until: NaiveDate) -> Result<(), AppError> {
    use Step::*;
    use ValidationStage::{Final, Plan};
    let keys = [
        "2022-2250-A",
        "2022-2250-B",
        "2022-2250-C",
        "2022-2249-C",
        "2022-2247-B",
        "2022-2252-C",
        "2022-2252-D",
    ];
    let mut steps: Vec<(NaiveDate, Step)> = Vec::new();
    for key in keys {
        steps.push((
            d(2022, 2, 10),
            Validate(
                key,
                Plan,
                &[],
                &[],
                "Visto di validazione del piano — Verbale n. 1 del 10/02/2022",
            ),
        ));
    }
    steps.extend([
        (d(2022, 2, 21), Complete("2022-2249-C", 1, d(2022, 2, 18), "Ricognizione dei procedimenti conclusa", &["Prot. n. 8812 del 18/02/2022"])),
        (d(2022, 2, 25), Complete("2022-2250-C", 1, d(2022, 2, 24), "Anagrafica dei contribuenti allineata", &["Prot. n. 9340 del 24/02/2022"])),
        (d(2022, 3, 1), Start("2022-2250-A", 1, d(2022, 3, 1), "Primo incontro con la software house")),
        (d(2022, 3, 31), Complete("2022-2250-B", 1, d(2022, 3, 30), "Sportello riorganizzato su appuntamento", &["Determinazione n. 512 del 30/03/2022"])),
        (d(2022, 4, 29), Complete("2022-2250-C", 2, d(2022, 4, 28), "", &[])),
        (d(2022, 5, 24), Complete("2022-2252-D", 1, d(2022, 5, 23), "Iscrizioni raccolte", &[])),
        (d(2022, 5, 27), Complete("2022-2250-A", 1, d(2022, 5, 27), "Modalità di caricamento acquisite", &["Verbale incontro del 27/05/2022"])),
        (d(2022, 5, 31), Complete("2022-2252-D", 2, d(2022, 5, 31), "", &[])),
        (d(2022, 5, 31), Complete("2022-2252-D", 3, d(2022, 5, 31), "", &[])),
        (d(2022, 5, 31), Complete("2022-2252-C", 1, d(2022, 5, 30), "Catalogazione avviata", &[])),
        (d(2022, 6, 15), Complete("2022-2250-B", 2, d(2022, 6, 14),
            "Ritardo di due settimane: picco di istanze dopo la scadenza IMU di giugno e un'unità di personale in meno", &["Prot. n. 30211 del 14/06/2022"])),
        (d(2022, 6, 25), Complete("2022-2247-B", 1, d(2022, 6, 24), "", &[])),
        (d(2022, 6, 30), Complete("2022-2252-D", 4, d(2022, 6, 30), "", &[])),
        (d(2022, 6, 30), Complete("2022-2252-D", 5, d(2022, 6, 30), "", &[])),
        (d(2022, 6, 30), Complete("2022-2252-C", 2, d(2022, 6, 29), "", &[])),
        (d(2022, 7, 1), Measure("2022-2252-D", "adesione-50", d(2022, 6, 30), Some(6200), Some((31, 50)), "Adesione del 62% delle famiglie")),
        (d(2022, 7, 21), Complete("2022-2250-A", 2, d(2022, 7, 20),
            "Tabelle dei centri di costo concordate con tutti i settori: i tempi dei settori coinvolti hanno fatto slittare la fase", &["Prot. n. 35110 del 20/07/2022"])),
        (d(2022, 7, 29), Revise),
        (d(2022, 7, 29), Complete("2022-2252-C", 3, d(2022, 7, 28), "Adesione alla rete SBN deliberata", &[])),
        (d(2022, 7, 29), Complete("2022-2250-A", 3, d(2022, 7, 29), "", &[])),
        (d(2022, 8, 30), Complete("2022-2247-B", 2, d(2022, 8, 30), "", &[])),
        (d(2022, 9, 16), Complete("2022-2250-C", 3, d(2022, 9, 15), "TARI emessa con avvisi PagoPA", &["Determinazione n. 2210 del 15/09/2022"])),
        (d(2022, 9, 28), Complete("2022-2249-C", 2, d(2022, 9, 28), "", &[])),
        (d(2022, 10, 11), Complete("2022-2247-B", 3, d(2022, 10, 10),
            "Completata in ritardo per l'emergenza del mese di settembre", &[])),
        (d(2022, 12, 20), Complete("2022-2250-A", 4, d(2022, 12, 20), "Capitoli attribuiti ai centri di costo", &["Report applicativo del 20/12/2022"])),
        (d(2022, 12, 22), Complete("2022-2252-C", 4, d(2022, 12, 21), "", &[])),
        (d(2022, 12, 29), Complete("2022-2250-B", 3, d(2022, 12, 28), "", &[])),
        (d(2023, 1, 10), Measure("2022-2250-B", "rimborsi-90gg", d(2022, 12, 31), None, Some((187, 200)), "Dati del gestionale tributi")),
        (d(2023, 1, 10), Measure("2022-2250-B", "note-rimborsi-180gg", d(2022, 12, 31), None, Some((45, 50)), "")),
        // Every qualitative indicator of the seed, with its finding in words.
        (d(2023, 1, 12), Measure("2022-2250-A", "completezza-fasi-tempistica", d(2022, 12, 31), None, None,
            "Tutte le fasi completate; la fase 2 con un mese di ritardo, sanato dalla D.G.C. n. 182")),
        (d(2023, 1, 12), Measure("2022-2250-C", "tempistica-inserimenti-pagopa", d(2022, 12, 31), None, None,
            "Inserimenti PagoPA nei tempi per tutte le entrate, tranne la chiusura di dicembre")),
        (d(2023, 1, 12), Measure("2022-2249-C", "tempistiche-fasi", d(2022, 12, 31), None, None,
            "Fasi 1 e 2 nei tempi; la fase 3 attende il parere regionale")),
        (d(2023, 1, 12), Measure("2022-2247-B", "completezza-fasi-scadenza", d(2022, 12, 31), None, None,
            "Tre fasi su quattro, la terza in ritardo per l'emergenza di settembre")),
        (d(2023, 1, 12), Measure("2022-2252-C", "congruita-catalogazione", d(2022, 12, 31), None, None,
            "Catalogazione congrua con gli standard SBN su un campione di 200 schede")),
        (d(2023, 1, 12), Measure("2022-2252-D", "soddisfazione-famiglie", d(2022, 6, 30), None, None,
            "Questionario alle famiglie: giudizio positivo nel 90% delle risposte")),
        // Entered six weeks late: a late registration.
        (d(2023, 2, 15), Complete("2022-2250-C", 4, d(2022, 12, 30), "Registrazione tardiva: la chiusura era stata comunicata solo via PEC", &["PEC del 30/12/2022"])),
    ]);
    for key in [
        "2022-2250-A",
        "2022-2250-B",
        "2022-2250-C",
        "2022-2247-B",
        "2022-2252-C",
        "2022-2252-D",
    ] {
        steps.push((
            d(2023, 3, 15),
            Validate(
                key,
                Final,
                &[],
                &[],
                "Relazione sulla performance 2022 — Verbale n. 3 del 15/03/2023",
            ),
        ));
    }
    steps.push((d(2023, 3, 15), Validate("2022-2249-C", Final, &[], &[3],
        "Sterilizzazione della fase 3: il ritardo dipende dal parere della Regione Piemonte, non imputabile all'unità — Verbale n. 3 del 15/03/2023")));
    // A measurement after the validation: it goes stale, and is flagged.
    steps.push((
        d(2023, 4, 3),
        Measure(
            "2022-2250-B",
            "rimborsi-90gg",
            d(2023, 3, 31),
            None,
            Some((196, 200)),
            "Aggiornamento dopo la chiusura dei rimborsi arretrati",
        ),
    ));
    for (day, step) in steps {
        if day > until {
            break;
        }
        at(clock, day);
        run(app, day, step).await?;
    }
    Ok(())
}

async fn run(app: &App, day: NaiveDate, step: Step) -> Result<(), AppError> {
    let note = |n: &str| Some(n.to_string()).filter(|n| !n.is_empty());
    let manager_of = |key: &str| -> Principal {
        let unit = key.split('-').nth(1).unwrap_or_default();
        let a = ACCOUNTS
            .iter()
            .find(|a| a.units.contains(&unit))
            .unwrap_or(&ACCOUNTS[0]);
        principal(a.username)
    };
    let (key, command, who) = match step {
        Step::Start(key, phase, on, text) => (
            key,
            ObjectiveCommand::StartPhase {
                phase,
                on,
                note: note(text),
                backfill: None,
            },
            manager_of(key),
        ),
        Step::Complete(key, phase, on, text, evidence) => (
            key,
            ObjectiveCommand::CompletePhase {
                phase,
                on,
                note: note(text),
                evidence: evidence.iter().map(|e| e.to_string()).collect(),
                backfill: None,
            },
            manager_of(key),
        ),
        Step::Measure(key, indicator, on, value, ratio, text) => (
            key,
            ObjectiveCommand::RecordMeasurement(crate::commands::Measurement {
                indicator: indicator.into(),
                on,
                value: value.map(Hundredths),
                numerator: ratio.map(|r| r.0),
                denominator: ratio.map(|r| r.1),
                // Without a number, the text is a qualitative indicator's finding.
                text: (value.is_none() && ratio.is_none()).then(|| text.to_string()),
                entry: crate::commands::Entry {
                    note: (value.is_some() || ratio.is_some())
                        .then(|| note(text))
                        .flatten(),
                    backfill: None,
                },
            }),
            manager_of(key),
        ),
        Step::Validate(key, stage, unverified, neutralised, text) => (
            key,
            ObjectiveCommand::RecordValidation(crate::commands::ValidationRequest {
                stage,
                outcome: ValidationOutcome::Approved,
                unverified_phases: unverified.to_vec(),
                neutralised_phases: neutralised.to_vec(),
                note: note(text),
                reference: Some("Verbale n. 3 del 15/03/2023".into()),
            }),
            principal("nucleo"),
        ),
        Step::Revise => {
            app.revise(2022, &july_revision(), &principal("controllo"), None)
                .await?;
            let _ = day;
            return Ok(());
        }
    };
    app.execute(key, &command, &who, None, None).await?;
    Ok(())
}

/// The revision of July 2022 (D.G.C. n. 182 del 28/07/2022): phase 2 of 2250-A
/// moved from 30/06 to 31/07 (after it had passed: a retroactive move), the
/// PagoPA phase of 2250-C moved to 30/09, and the weights of 2249-C's phases 2
/// and 3 evened out.
pub fn july_revision() -> RevisionRequest {
    RevisionRequest {
        act: "D.G.C. n. 182 del 28/07/2022".into(),
        act_date: Some(d(2022, 7, 28)),
        reason: "Rimodulazione degli obiettivi 2022: tempi dei settori coinvolti e avvio di PagoPA per la TARI".into(),
        changes: vec![
            RevisionChange::Deadline { objective: "2022-2250-A".into(), phase: Some(2), new_deadline: d(2022, 7, 31) },
            RevisionChange::Deadline { objective: "2022-2250-C".into(), phase: Some(3), new_deadline: d(2022, 9, 30) },
            RevisionChange::Weights {
                objective: "2022-2249-C".into(),
                weights_hundredths: BTreeMap::from([(2, Hundredths(3500)), (3, Hundredths(3500))]),
            },
        ],
    }
}
