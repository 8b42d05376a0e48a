//! Shared set-up: a fresh database in a temporary folder, a manual clock, the
//! Alessandria 2022 seed, and the principals of each role.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use chrono::{NaiveDate, TimeZone, Utc};
use traguardo::app::Written;
use traguardo::commands::{ObjectiveCommand, Principal, RevisionRequest};
use traguardo::{App, AppError};
use traguardo_events::model::Role;
use traguardo_events::Clock;

/// The bundled seed.
pub fn seed_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds/alessandria-2022.json")
}

/// A date, for brevity.
pub fn d(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("a test date")
}

/// Runs a future to completion on a small runtime.
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(future)
}

/// A fresh database with a manual clock.
pub struct World {
    /// Keeps the folder alive.
    pub dir: tempfile::TempDir,
    /// The application over the database.
    pub app: App,
    /// The clock that stamps record times.
    pub clock: Clock,
}

impl World {
    /// An empty database; the clock stands at 2022-01-10 09:00 UTC.
    pub fn new() -> World {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let clock = Clock::manual(Utc.with_ymd_and_hms(2022, 1, 10, 9, 0, 0).unwrap());
        let app =
            App::open(dir.path().join("traguardo.db"), clock.clone()).expect("the database opens");
        World { dir, app, clock }
    }

    /// A database with the Alessandria 2022 plan loaded.
    pub fn with_seed() -> World {
        let world = World::new();
        let text = std::fs::read_to_string(seed_path()).expect("the seed is readable");
        let plan = traguardo::plan_document::parse(&text).expect("the seed is valid");
        block_on(world.app.import_plan(&plan, &admin())).expect("the seed loads");
        world
    }

    /// The database file.
    pub fn db(&self) -> PathBuf {
        self.dir.path().join("traguardo.db")
    }

    /// Moves the clock (record time) to 09:00 UTC of `date`.
    pub fn on(&self, date: &str) -> &Self {
        let date = d(date);
        self.clock
            .set(Utc.from_utc_datetime(&date.and_hms_opt(9, 0, 0).unwrap()));
        self
    }

    /// Runs an objective command as `who`.
    pub fn run(
        &self,
        key: &str,
        command: ObjectiveCommand,
        who: &Principal,
    ) -> Result<Written, AppError> {
        block_on(self.app.execute(key, &command, who, None, None))
    }

    /// Starts phase `phase` of `key` on `on` as the unit's manager.
    pub fn start(&self, key: &str, phase: u32, on: &str) -> Result<Written, AppError> {
        self.run(
            key,
            ObjectiveCommand::StartPhase {
                phase,
                on: d(on),
                note: None,
                backfill: None,
            },
            &manager_of(key),
        )
    }

    /// Completes phase `phase` of `key` on `on` as the unit's manager.
    pub fn complete(&self, key: &str, phase: u32, on: &str) -> Result<Written, AppError> {
        self.run(
            key,
            ObjectiveCommand::CompletePhase {
                phase,
                on: d(on),
                note: None,
                evidence: vec![],
                backfill: None,
            },
            &manager_of(key),
        )
    }

    /// Records a revision as the admin.
    pub fn revise(&self, year: i32, request: RevisionRequest) -> Result<Written, AppError> {
        block_on(self.app.revise(year, &request, &admin(), None))
    }
}

/// The control office.
pub fn admin() -> Principal {
    Principal {
        name: "Programmazione e Controllo".into(),
        role: Role::Admin,
        units: vec![],
    }
}

/// A manager of `unit`.
pub fn manager(unit: &str) -> Principal {
    Principal {
        name: format!("Dirigente {unit}"),
        role: Role::Manager,
        units: vec![unit.into()],
    }
}

/// The manager of the unit of objective `key` (`2022-2250-A` → unit 2250).
pub fn manager_of(key: &str) -> Principal {
    manager(key.split('-').nth(1).expect("a key year-unit-letter"))
}

/// The Nucleo di Valutazione.
pub fn validator() -> Principal {
    Principal {
        name: "Nucleo di Valutazione".into(),
        role: Role::Validator,
        units: vec![],
    }
}

/// An auditor.
pub fn auditor() -> Principal {
    Principal {
        name: "Revisore".into(),
        role: Role::Auditor,
        units: vec![],
    }
}
