//! `traguardo-bench store`: measures the event store on this machine.
//!
//! Each figure on a scratch database in `--dir`:
//! - **batched append**: a synthetic year of plans (objectives defined with five
//!   phases, each phase started and completed, ~300-byte payloads on average)
//!   appended in batches of 1,000 through the store, with the hash chain; and the
//!   same rows written by a bare rusqlite loop, to show what the store adds;
//! - **replay**: the whole log read, decoded and folded into the in-memory
//!   [`Registry`] the server keeps, in a fresh process so that its resident memory
//!   before and after is the registry's alone;
//! - **durable appends**: one event per append, each waited for until it is
//!   durable, from 1, 8 and 64 concurrent appenders through the group-commit
//!   writer, with latency percentiles;
//! - **visibility across processes**: single appends by this process, each
//!   timed from its acknowledgement until another process (a child following
//!   the log with the server's read model) has folded it.
//!
//! With `--db postgres://…` every figure is taken on PostgreSQL instead, in
//! scratch databases created on that server and dropped at the end, and the
//! baseline is the bare `postgres` crate.
//!
//! Nothing here asserts a time: it prints what it measured.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use chrono::{Days, NaiveDate};
use traguardo_events::domain::{ObjectiveEvent, PlanEvent};
use traguardo_events::envelope::Actor;
use traguardo_events::model::{
    objective_key, objective_stream, plan_stream, Hundredths, IndicatorKind, IndicatorSpec,
    ObjectiveSpec, PhaseSpec, Unit,
};
use traguardo_events::{
    AppendBatch, Clock, ExpectedVersion, NewEvent, SqliteStore, Store, StoreExt,
};
use traguardo_projections::Registry;

/// `traguardo-bench store` options.
#[derive(Debug, clap::Args)]
pub struct StoreArgs {
    /// Events written by the batched append, then replayed.
    #[arg(long, default_value_t = 1_000_000)]
    pub events: u64,
    /// Events per batch in the batched append.
    #[arg(long, default_value_t = 1_000)]
    pub batch: usize,
    /// Durable single-event appends measured for each number of appenders.
    #[arg(long, default_value_t = 20_000)]
    pub durable: u64,
    /// Numbers of concurrent appenders to measure, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,8,64")]
    pub appenders: Vec<usize>,
    /// Folder for the scratch database. It must be on the disk you want to
    /// measure: on a tmpfs an fsync costs nothing.
    #[arg(long, default_value = ".")]
    pub dir: PathBuf,
    /// Measure PostgreSQL instead of SQLite: the URL of a database on the server
    /// to use (`postgres://user@host:port/db`). The figures are taken in scratch
    /// databases created on that server and dropped at the end (`--keep` keeps
    /// them); the database named is only connected to, to create them.
    #[arg(long)]
    pub db: Option<String>,
    /// Single appends timed until another process has folded them.
    #[arg(long, default_value_t = 300)]
    pub visibility: u64,
    /// Skip the bare-driver baseline (rusqlite or postgres).
    #[arg(long)]
    pub no_baseline: bool,
    /// Stop after the batched append (and its baselines): no replay, durable
    /// appends or visibility. For profiling the write path.
    #[arg(long)]
    pub batched_only: bool,
    /// Keep the scratch database instead of deleting it.
    #[arg(long)]
    pub keep: bool,
    /// Internal: replay this database in this process and print the figures.
    #[arg(long, hide = true)]
    pub replay_only: Option<PathBuf>,
    /// Internal: follow this database and print when each of the next
    /// `--visibility` seqs was folded.
    #[arg(long, hide = true)]
    pub follow_only: Option<PathBuf>,
}

/// Where the scratch logs go: files in a folder, or databases on a
/// PostgreSQL server.
enum Scratch {
    Sqlite(PathBuf),
    Postgres {
        /// The URL given, to connect to and create databases from.
        url: String,
        /// The databases created, dropped at the end.
        created: std::cell::RefCell<Vec<String>>,
    },
}

impl Scratch {
    /// A new, empty log named `name`: what `--db` would be given.
    fn target(&self, name: &str) -> anyhow::Result<String> {
        match self {
            Scratch::Sqlite(dir) => Ok(dir.join(format!("{name}.db")).display().to_string()),
            Scratch::Postgres { url, created } => {
                let database = format!("traguardo_bench_{}_{name}", std::process::id());
                let mut client = postgres::Client::connect(url, postgres::NoTls)
                    .with_context(|| format!("cannot connect to {url}"))?;
                client.batch_execute(&format!("DROP DATABASE IF EXISTS {database}"))?;
                client.batch_execute(&format!(
                    "CREATE DATABASE {database} TEMPLATE template0 ENCODING 'UTF8'"
                ))?;
                created.borrow_mut().push(database.clone());
                Ok(with_database(url, &database))
            }
        }
    }

    /// Removes every scratch log, or says where they were kept.
    fn finish(&self, keep: bool) {
        match self {
            Scratch::Sqlite(dir) if keep => {
                println!("\nscratch database kept in {}", dir.display());
            }
            Scratch::Sqlite(dir) => {
                if let Err(e) = std::fs::remove_dir_all(dir) {
                    eprintln!("cannot remove {}: {e}", dir.display());
                }
            }
            Scratch::Postgres { created, .. } if keep => {
                println!("\nscratch databases kept: {}", created.borrow().join(", "));
            }
            Scratch::Postgres { url, created } => {
                let dropped = postgres::Client::connect(url, postgres::NoTls).and_then(|mut c| {
                    for database in created.borrow().iter() {
                        c.batch_execute(&format!(
                            "DROP DATABASE IF EXISTS {database} WITH (FORCE)"
                        ))?;
                    }
                    Ok(())
                });
                if let Err(e) = dropped {
                    eprintln!("cannot drop the scratch databases: {e}");
                }
            }
        }
    }

    fn is_postgres(&self) -> bool {
        matches!(self, Scratch::Postgres { .. })
    }
}

/// `url` with its database replaced by `database` (query parameters kept).
fn with_database(url: &str, database: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("postgres", url));
    let (rest, query) = match rest.split_once('?') {
        Some((rest, query)) => (rest, format!("?{query}")),
        None => (rest, String::new()),
    };
    let authority = rest.split('/').next().unwrap_or(rest);
    format!("{scheme}://{authority}/{database}{query}")
}

fn open(target: &str) -> anyhow::Result<Arc<dyn Store>> {
    Ok(traguardo::app::open_store(
        Path::new(target),
        Clock::system(),
    )?)
}

/// Runs the benchmarks and prints the figures.
///
/// # Errors
/// When the scratch database cannot be written or read back.
pub fn run(args: StoreArgs) -> anyhow::Result<ExitCode> {
    if let Some(db) = &args.replay_only {
        replay(db)?;
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(db) = &args.follow_only {
        follow_only(db, args.visibility)?;
        return Ok(ExitCode::SUCCESS);
    }
    if args.events == 0 || args.batch == 0 || args.appenders.contains(&0) {
        bail!("--events, --batch and --appenders must be positive");
    }
    let scratch = match &args.db {
        Some(url) => {
            if !traguardo_events::store::is_postgres_url(url) {
                bail!("--db takes a postgres:// URL; for SQLite use --dir");
            }
            Scratch::Postgres {
                url: url.clone(),
                created: Default::default(),
            }
        }
        None => {
            let dir = args
                .dir
                .join(format!("traguardo-bench-{}", std::process::id()));
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create the scratch folder {}", dir.display()))?;
            Scratch::Sqlite(dir)
        }
    };
    let result = run_in(&args, &scratch);
    scratch.finish(args.keep);
    result
}

fn run_in(args: &StoreArgs, scratch: &Scratch) -> anyhow::Result<ExitCode> {
    machine(scratch);
    if cfg!(debug_assertions) {
        println!(
            "WARNING: a debug build; run `cargo run --release -p traguardo-bench -- store` for figures"
        );
    }

    let db = scratch.target("bench")?;
    section(&format!(
        "batched append: {} events in batches of {}, hash chain, {}",
        args.events,
        args.batch,
        if scratch.is_postgres() {
            "synchronous_commit=on"
        } else {
            "synchronous=FULL"
        }
    ));
    let store = open(&db)?;
    let written = batched_append(store.as_ref(), args.events, args.batch)?;
    println!(
        "  payload: {:.0} bytes of JSON data on average ({} objectives, {} plans)",
        written.payload_bytes as f64 / args.events as f64,
        written.objectives,
        written.plans
    );
    println!(
        "  traguardo store   {:>9.0} events/s  ({:.2} s inside append; {:.2} s with generating the events)",
        rate(args.events, written.in_append),
        written.in_append.as_secs_f64(),
        written.wall.as_secs_f64()
    );
    let mut with_triggers = None;
    if !args.no_baseline {
        for (triggers, what) in [
            (false, "the same rows, no hash, no checks, no trigger"),
            (true, "the same rows, with the append-only triggers"),
        ] {
            let target = scratch.target(&format!("baseline_{triggers}"))?;
            let (driver, took) = if scratch.is_postgres() {
                let took = bare_postgres(&target, args.events, args.batch, triggers)?;
                ("bare postgres", took)
            } else {
                let took = bare_rusqlite(Path::new(&target), args.events, args.batch, triggers)?;
                let _ = std::fs::remove_file(&target);
                ("bare rusqlite", took)
            };
            println!(
                "  {driver:<17} {:>9.0} events/s  ({:.2} s: {what})",
                rate(args.events, took),
                took.as_secs_f64()
            );
            if triggers {
                with_triggers = Some(rate(args.events, took));
            }
        }
    }
    if let Some(bare) = with_triggers {
        // Issue 18: the store's batched append against the bare loop with the
        // same triggers, same run.
        let ratio = rate(args.events, written.in_append) / bare;
        println!(
            "  target (issue 18): the store at {ratio:.2}× the bare loop with the same triggers vs ≥ 0.85× {}",
            if ratio >= 0.85 { "met" } else { "MISSED" }
        );
    }
    if scratch.is_postgres() {
        let mut client = postgres::Client::connect(&db, postgres::NoTls)?;
        let bytes: i64 = client
            .query_one("SELECT pg_database_size(current_database())", &[])?
            .get(0);
        println!("  database size: {:.0} MB", bytes as f64 / 1e6);
    } else {
        println!(
            "  database file: {:.0} MB",
            std::fs::metadata(&db).map(|m| m.len()).unwrap_or(0) as f64 / 1e6
        );
    }

    // Replay in a fresh process, so that its memory is measured from a clean start.
    store.shutdown();
    drop(store);
    if args.batched_only {
        if let Some(load) = load_average() {
            println!("load average at the end: {load}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    section(&format!(
        "replay: {} events read, decoded and folded into the registry (fresh process)",
        args.events
    ));
    let status = std::process::Command::new(std::env::current_exe()?)
        .arg("store")
        .arg("--replay-only")
        .arg(&db)
        .status()
        .context("cannot start the replay process")?;
    if !status.success() {
        bail!("the replay process failed: {status}");
    }

    let store = open(&db)?;
    section(&format!(
        "durable single-event appends through the group-commit writer ({} per level, on the {}-event log)",
        args.durable, args.events
    ));
    println!(
        "  {:>9}  {:>11}  {:>9}  {:>9}  {:>9}",
        "appenders", "events/s", "p50 ms", "p99 ms", "max ms"
    );
    for &appenders in &args.appenders {
        let d = durable_appends(store.clone(), appenders, args.durable, written.objectives)?;
        println!(
            "  {:>9}  {:>11.0}  {:>9.2}  {:>9.2}  {:>9.2}",
            appenders,
            rate(d.events, d.wall),
            ms(d.percentile(50)),
            ms(d.percentile(99)),
            ms(d.percentile(100)),
        );
    }
    section(&format!(
        "visibility across processes: {} single appends here, each timed from its \
         acknowledgement until a second process following the log has folded it",
        args.visibility
    ));
    let seen = visibility(store.as_ref(), &db, args.visibility)?;
    println!(
        "  p50 {:.1} ms  p99 {:.1} ms  max {:.1} ms  ({} appends)",
        ms(seen.percentile(50)),
        ms(seen.percentile(99)),
        ms(seen.percentile(100)),
        seen.events
    );
    let verification = store.verify(&[])?;
    println!(
        "\nthe log verifies: {} ({} events, head {}:{})",
        verification.ok(),
        verification.events,
        verification.head.seq,
        verification.head.hash
    );
    if let Some(load) = load_average() {
        println!("load average at the end: {load}");
    }
    store.shutdown();
    Ok(ExitCode::SUCCESS)
}

/// Prints a section heading of a benchmark's output.
pub(crate) fn section(title: &str) {
    println!("\n{title}");
}

pub(crate) fn rate(events: u64, took: Duration) -> f64 {
    events as f64 / took.as_secs_f64().max(1e-9)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The number of CPUs and their model, as `/proc/cpuinfo` names it.
pub(crate) fn cpus() -> (usize, String) {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    (cpus, model)
}

/// What the machine is, and how busy it is, so that figures can be compared.
fn machine(scratch: &Scratch) {
    let (cpus, model) = cpus();
    println!("traguardo-bench store");
    println!("  machine: {cpus} CPUs, {model}");
    match scratch {
        Scratch::Sqlite(dir) => println!(
            "  SQLite {}, scratch folder {}",
            rusqlite::version(),
            dir.display()
        ),
        Scratch::Postgres { url, .. } => {
            let version = postgres::Client::connect(url, postgres::NoTls)
                .and_then(|mut c| c.query_one("SHOW server_version", &[]))
                .map(|row| row.get::<_, String>(0))
                .unwrap_or_else(|e| format!("unknown ({e})"));
            println!("  PostgreSQL {version}, scratch databases on {url}");
        }
    }
    if let Some(load) = load_average() {
        println!("  load average: {load} (other work on the machine slows every figure)");
    }
}

/// The load average of the last 1, 5 and 15 minutes.
pub(crate) fn load_average() -> Option<String> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    Some(
        text.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
    )
}

/// Resident memory of this process, in bytes (Linux only).
pub(crate) fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

// ---------------------------------------------------------------------------
// The workload: plans of 1,000 objectives, each defined with five phases, then
// each phase started and completed, with the notes managers write.

const OBJECTIVES_PER_PLAN: u64 = 1_000;
const PHASES: u32 = 5;

/// Yields the events of the synthetic log in order, with each new stream's
/// expectation (it must not exist yet).
struct Workload {
    objective: u64,
    pending: std::collections::VecDeque<(NewEvent, bool)>,
    actor: Actor,
    manager: Actor,
    plans: u64,
}

impl Workload {
    fn new() -> Self {
        Workload {
            objective: 0,
            pending: Default::default(),
            actor: Actor::new("Programmazione e Controllo", "admin"),
            manager: Actor::new("Dirigente", "manager"),
            plans: 0,
        }
    }

    /// The `i`-th objective's place: plan year, unit code, letter.
    fn place(i: u64) -> (i32, String, String) {
        let year = 2000 + (i / OBJECTIVES_PER_PLAN) as i32;
        let within = i % OBJECTIVES_PER_PLAN;
        let unit = format!("{}", 2200 + within / 10);
        let letter = ((b'A' + (within % 10) as u8) as char).to_string();
        (year, unit, letter)
    }

    fn next_event(&mut self) -> anyhow::Result<(NewEvent, bool)> {
        if self.pending.is_empty() {
            self.refill()?;
        }
        Ok(self.pending.pop_front().expect("refilled"))
    }

    fn refill(&mut self) -> anyhow::Result<()> {
        let i = self.objective;
        self.objective += 1;
        let (year, unit, letter) = Self::place(i);
        if i.is_multiple_of(OBJECTIVES_PER_PLAN) {
            self.plans += 1;
            let plan = PlanEvent::PlanDefined {
                year,
                organisation: "Città di Alessandria".into(),
                title: format!("Piano degli obiettivi {year}"),
                units: (0..OBJECTIVES_PER_PLAN / 10)
                    .map(|u| Unit {
                        code: format!("{}", 2200 + u),
                        name: format!("SETTORE {} — SERVIZI AL CITTADINO", 2200 + u),
                        manager: Some(format!("Dott. Dirigente {u}")),
                        manager_title: Some("Dirigente".into()),
                        kind: None,
                        label: None,
                    })
                    .collect(),
                objectives: (i..i + OBJECTIVES_PER_PLAN)
                    .map(|j| {
                        let (y, u, l) = Self::place(j);
                        objective_key(y, &u, &l)
                    })
                    .collect(),
            };
            self.pending.push_back((
                NewEvent::from_domain(plan_stream(year), &plan, &self.actor, None)?,
                true,
            ));
        }
        let key = objective_key(year, &unit, &letter);
        let stream = objective_stream(&key);
        let date = |month: u32, day: u32| {
            NaiveDate::from_ymd_opt(year, month, day).expect("a valid synthetic date")
        };
        let spec = ObjectiveSpec {
            year,
            unit: unit.clone(),
            letter,
            manager: format!("Dott.ssa Responsabile {unit}"),
            title: format!("Digitalizzazione dei procedimenti del settore {unit}"),
            strategic_purpose: "Semplificare l'accesso dei cittadini ai servizi".into(),
            directives: "Ridurre i tempi medi di risposta".into(),
            phases: (1..=PHASES)
                .map(|p| PhaseSpec {
                    number: p,
                    description: format!("Fase {p}: analisi, avvio e rendicontazione"),
                    weight_hundredths: Hundredths(2_000),
                    involved: vec![unit.clone(), "AMAG AMBIENTE SPA".into()],
                    deadline: date(2 * p + 1, 28),
                })
                .collect(),
            final_deadline: date(12, 31),
            expected_result: "Procedimenti gestiti online".into(),
            achieved_when: "Tutte le fasi nei termini".into(),
            not_achieved_when: "Una fase oltre il termine".into(),
            indicators: vec![IndicatorSpec {
                id: "pratiche-online".into(),
                description: "Pratiche online / pratiche totali".into(),
                kind: IndicatorKind::Ratio,
                target_hundredths: Some(Hundredths::HUNDRED),
            }],
            constraints: String::new(),
            human_resources: "Personale del settore".into(),
            financial_resources: String::new(),
        };
        let defined = ObjectiveEvent::ObjectiveDefined {
            objective: Box::new(spec),
            revision: None,
        };
        self.pending.push_back((
            NewEvent::from_domain(&stream, &defined, &self.actor, None)?,
            true,
        ));
        for p in 1..=PHASES {
            let started = ObjectiveEvent::PhaseStarted {
                phase: p,
                on: date(2 * p, 1),
                note: Some(format!(
                    "Avviata la fase {p} dell'obiettivo {key}: costituito il gruppo di lavoro \
                     con i referenti dei servizi coinvolti, definito il cronoprogramma."
                )),
                backfill: None,
            };
            // One objective in seven finishes a phase late.
            let late = (i + u64::from(p)).is_multiple_of(7);
            let completed = ObjectiveEvent::PhaseCompleted {
                phase: p,
                on: date(2 * p + 1, 28)
                    .checked_add_days(Days::new(if late { 12 } else { 0 }))
                    .expect("a valid date"),
                note: Some(format!(
                    "Fase {p} conclusa: relazione trasmessa al Nucleo di Valutazione, \
                     atti pubblicati in Amministrazione Trasparente."
                )),
                evidence: vec![format!("prot. n. {}/{year}", 1000 + i % 9000)],
                backfill: None,
                actor_id: None,
            };
            for event in [started, completed] {
                self.pending.push_back((
                    NewEvent::from_domain(&stream, &event, &self.manager, None)?,
                    false,
                ));
            }
        }
        Ok(())
    }
}

pub(crate) struct Written {
    pub(crate) in_append: Duration,
    pub(crate) wall: Duration,
    payload_bytes: u64,
    pub(crate) objectives: u64,
    pub(crate) plans: u64,
}

pub(crate) fn batched_append(
    store: &dyn Store,
    events: u64,
    batch_size: usize,
) -> anyhow::Result<Written> {
    let mut workload = Workload::new();
    let mut in_append = Duration::ZERO;
    let mut payload_bytes = 0u64;
    let wall = Instant::now();
    let mut left = events;
    while left > 0 {
        let n = left.min(batch_size as u64);
        left -= n;
        let mut batch = AppendBatch::new();
        for _ in 0..n {
            let (event, new_stream) = workload.next_event()?;
            payload_bytes += serde_json::to_vec(&event.data)?.len() as u64;
            if new_stream {
                batch = batch.expect(&event.stream, ExpectedVersion::NoStream);
            }
            batch = batch.push(event);
        }
        let start = Instant::now();
        store.append(batch)?;
        in_append += start.elapsed();
    }
    Ok(Written {
        in_append,
        wall: wall.elapsed(),
        payload_bytes,
        objectives: workload.objective,
        plans: workload.plans,
    })
}

/// The same rows written with nothing but rusqlite: a prepared INSERT in
/// transactions of `batch_size`, WAL and `synchronous=FULL`, into the store's own
/// schema (made by opening a [`SqliteStore`] on the file), with or without its
/// append-only triggers. Ids and hashes are placeholders of the same length, each
/// row linked to the one before, so that the triggers accept them.
fn bare_rusqlite(
    db: &Path,
    events: u64,
    batch_size: usize,
    triggers: bool,
) -> anyhow::Result<Duration> {
    SqliteStore::open(db, Clock::system())?.shutdown();
    let mut conn = rusqlite::Connection::open(db)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    if !triggers {
        let names: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'trigger'")?
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        for name in names {
            conn.execute_batch(&format!("DROP TRIGGER {name}"))?;
        }
    }
    let mut workload = Workload::new();
    let mut versions: std::collections::HashMap<String, u64> = Default::default();
    let mut took = Duration::ZERO;
    let mut seq = 0u64;
    let hash_of = |seq: u64| format!("{seq:064x}");
    while seq < events {
        let n = (events - seq).min(batch_size as u64);
        let mut rows = Vec::with_capacity(n as usize);
        for _ in 0..n {
            let (event, _) = workload.next_event()?;
            seq += 1;
            let version = versions.entry(event.stream.clone()).or_default();
            *version += 1;
            rows.push((seq, *version, serde_json::to_string(&event.data)?, event));
        }
        let start = Instant::now();
        let tx = conn.transaction()?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO events (seq, id, stream, version, type, schema, data, actor, role, \
                 recorded_at, correlation, prev_hash, hash) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            )?;
            for (seq, version, data, event) in &rows {
                insert.execute(rusqlite::params![
                    seq,
                    format!("{seq:036}"),
                    event.stream,
                    version,
                    event.event_type,
                    event.schema,
                    data,
                    event.actor,
                    event.role,
                    "2022-06-10T09:12:03.000000Z",
                    event.correlation,
                    if *seq == 1 {
                        "0".repeat(64)
                    } else {
                        hash_of(seq - 1)
                    },
                    hash_of(*seq),
                ])?;
            }
        }
        tx.commit()?;
        took += start.elapsed();
    }
    Ok(took)
}

/// The same rows written with nothing but the `postgres` crate: a prepared
/// INSERT in transactions of `batch_size`, committed with the server's default
/// `synchronous_commit`, into the store's own schema (made by opening a
/// [`traguardo_events::PgStore`] on the database), with or without its
/// append-only triggers. Placeholder ids and hashes, linked so that the
/// triggers accept them.
fn bare_postgres(
    url: &str,
    events: u64,
    batch_size: usize,
    triggers: bool,
) -> anyhow::Result<Duration> {
    traguardo_events::PgStore::open(url, Clock::system())?.shutdown();
    let mut client = postgres::Client::connect(url, postgres::NoTls)?;
    if !triggers {
        let names: Vec<String> = client
            .query(
                "SELECT tgname::text FROM pg_trigger WHERE tgrelid = 'events'::regclass AND NOT tgisinternal",
                &[],
            )?
            .iter()
            .map(|row| row.get(0))
            .collect();
        for name in names {
            client.batch_execute(&format!("DROP TRIGGER {name} ON events"))?;
        }
    }
    let insert = client.prepare(
        "INSERT INTO events (seq, id, stream, version, type, schema, data, actor, role, \
         recorded_at, correlation, prev_hash, hash) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )?;
    let at = chrono::DateTime::parse_from_rfc3339("2022-06-10T09:12:03Z")?.to_utc();
    let mut workload = Workload::new();
    let mut versions: std::collections::HashMap<String, i64> = Default::default();
    let mut took = Duration::ZERO;
    let mut seq = 0i64;
    let hash_of = |seq: i64| format!("{seq:064x}");
    while (seq as u64) < events {
        let n = (events - seq as u64).min(batch_size as u64);
        let mut rows = Vec::with_capacity(n as usize);
        for _ in 0..n {
            let (event, _) = workload.next_event()?;
            seq += 1;
            let version = versions.entry(event.stream.clone()).or_default();
            *version += 1;
            rows.push((seq, *version, serde_json::to_string(&event.data)?, event));
        }
        let start = Instant::now();
        let mut tx = client.transaction()?;
        for (seq, version, data, event) in &rows {
            tx.execute(
                &insert,
                &[
                    seq,
                    &uuid::Uuid::from_u128(*seq as u128),
                    &event.stream,
                    version,
                    &event.event_type,
                    &i64::from(event.schema),
                    data,
                    &event.actor,
                    &event.role,
                    &at,
                    &event.correlation,
                    &if *seq == 1 {
                        "0".repeat(64)
                    } else {
                        hash_of(seq - 1)
                    },
                    &hash_of(*seq),
                ],
            )?;
        }
        tx.commit()?;
        took += start.elapsed();
    }
    Ok(took)
}

/// Microseconds since the Unix epoch: the clock two processes share.
fn unix_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

/// Appends `count` single events through `store`, 20 ms apart, while a child
/// process follows the log at `target` with the server's read model; each
/// delay runs from the append's acknowledgement here to the child having
/// folded it.
fn visibility(store: &dyn Store, target: &str, count: u64) -> anyhow::Result<Durable> {
    let mut child = std::process::Command::new(std::env::current_exe()?)
        .args([
            "store",
            "--visibility",
            &count.to_string(),
            "--follow-only",
            target,
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .context("cannot start the following process")?;
    let mut lines = BufReader::new(child.stdout.take().context("its stdout")?).lines();
    match lines.next() {
        Some(Ok(line)) if line.starts_with("ready") => {}
        other => bail!("the following process did not start: {other:?}"),
    }
    let (year, unit, letter) = Workload::place(0);
    let stream = objective_stream(&objective_key(year, &unit, &letter));
    let manager = Actor::new("Dirigente", "manager");
    let first_version = store.stream_version(&stream)?;
    let mut acked = std::collections::HashMap::new();
    for (n, version) in (0..count).zip(first_version..) {
        let event = ObjectiveEvent::PhaseStarted {
            phase: 1,
            on: NaiveDate::from_ymd_opt(year, 3, 1).expect("a date"),
            note: Some(format!("Verifica di visibilità n. {n}")),
            backfill: None,
        };
        let batch = AppendBatch::new()
            .expect(&stream, ExpectedVersion::Exact(version))
            .push(NewEvent::from_domain(&stream, &event, &manager, None)?);
        let appended = store.append(batch)?;
        let at = unix_micros();
        for e in appended {
            acked.insert(e.seq, at);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut latencies = Vec::new();
    for line in lines {
        let line = line?;
        let Some((seq, at)) = line.split_once(' ') else {
            continue;
        };
        let (seq, seen): (u64, i64) = (seq.parse()?, at.parse()?);
        if let Some(acked) = acked.get(&seq) {
            // The child may fold a commit before this process hears its answer.
            latencies.push(Duration::from_micros(
                seen.saturating_sub(*acked).max(0) as u64
            ));
        }
    }
    let status = child.wait()?;
    if !status.success() || latencies.len() as u64 != count {
        bail!(
            "the following process saw {} of {count} appends ({status})",
            latencies.len()
        );
    }
    latencies.sort();
    Ok(Durable {
        events: count,
        wall: Duration::ZERO,
        latencies,
    })
}

/// The child of [`visibility`]: the server's read model over the log at `db`,
/// following it; prints `ready`, then `SEQ MICROS` as each of the next `count`
/// seqs is folded.
fn follow_only(db: &Path, count: u64) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let app = traguardo::App::with_store(traguardo::app::open_existing_store(db)?)?;
        let follower = app.follow()?;
        let start = app.folded_seq();
        let mut out = std::io::stdout().lock();
        writeln!(out, "ready {start}")?;
        out.flush()?;
        for seq in start + 1..=start + count {
            if !app.wait_for_seq(seq, Duration::from_secs(30)).await {
                bail!("seq {seq} was not folded within 30 s");
            }
            writeln!(out, "{seq} {}", unix_micros())?;
            out.flush()?;
        }
        follower.abort();
        Ok(())
    })
}

/// Runs in its own process: opens the log, reads and decodes every event and
/// folds it into a [`Registry`], and prints the rate and the registry's memory.
fn replay(db: &Path) -> anyhow::Result<()> {
    let store = traguardo::app::open_existing_store(db)?;
    // Reading and decoding alone (rows → envelopes with their JSON data).
    let start = Instant::now();
    let mut read = 0u64;
    store.for_each(0, |_event| -> anyhow::Result<()> {
        read += 1;
        Ok(())
    })?;
    let read_took = start.elapsed();
    println!(
        "  read + decode rows           {:>9.0} events/s  ({read} events, {:.2} s)",
        rate(read, read_took),
        read_took.as_secs_f64()
    );

    let before = resident_bytes();
    let start = Instant::now();
    // The replay the server does at start.
    let registry: Registry = traguardo::app::replay(store.as_ref())?;
    let took = start.elapsed();
    let after = resident_bytes();
    println!(
        "  read + decode + fold         {:>9.0} events/s  ({} objectives, {} plans, {:.2} s)",
        rate(read, took),
        registry.objectives().count(),
        registry.plans().count(),
        took.as_secs_f64()
    );
    if let (Some(before), Some(after)) = (before, after) {
        let grown = after.saturating_sub(before) as f64;
        println!(
            "  registry resident memory     {:>9.0} MB  ({:.0} MB per million events; RSS {:.0} → {:.0} MB)",
            grown / 1e6,
            grown / 1e6 * 1e6 / read.max(1) as f64,
            before as f64 / 1e6,
            after as f64 / 1e6
        );
    }
    // Keep the registry alive until it was measured.
    std::hint::black_box(&registry);
    Ok(())
}

pub(crate) struct Durable {
    events: u64,
    wall: Duration,
    latencies: Vec<Duration>,
}

impl Durable {
    /// Events per second over the whole run.
    pub(crate) fn rate(&self) -> f64 {
        rate(self.events, self.wall)
    }

    pub(crate) fn percentile(&self, p: usize) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let i = (self.latencies.len() * p / 100).min(self.latencies.len() - 1);
        self.latencies[i]
    }
}

/// `appenders` tasks on a multi-threaded runtime (as in the server), each
/// appending one event at a time to its own objective, with the expected
/// version, and waiting until it is durable.
pub(crate) fn durable_appends(
    store: Arc<dyn Store>,
    appenders: usize,
    total: u64,
    objectives: u64,
) -> anyhow::Result<Durable> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let per_appender = total / appenders as u64;
    let manager = Actor::new("Dirigente", "manager");
    // Appenders sharing an objective would conflict: give each its own.
    if appenders as u64 > objectives {
        bail!("more appenders ({appenders}) than objectives in the log ({objectives})");
    }
    let mut targets = Vec::new();
    for a in 0..appenders as u64 {
        let (year, unit, letter) = Workload::place(a);
        let stream = objective_stream(&objective_key(year, &unit, &letter));
        let version = store.stream_version(&stream)?;
        targets.push((stream, version, year));
    }
    let start = Instant::now();
    let latencies = runtime.block_on(async {
        let tasks: Vec<_> = targets
            .into_iter()
            .map(|(stream, mut version, year)| {
                let store = store.clone();
                let manager = manager.clone();
                tokio::spawn(async move {
                    let mut latencies = Vec::with_capacity(per_appender as usize);
                    for n in 0..per_appender {
                        let event = ObjectiveEvent::PhaseStarted {
                            phase: 1 + (n % u64::from(PHASES)) as u32,
                            on: NaiveDate::from_ymd_opt(year, 3, 1).expect("a date"),
                            note: Some(format!(
                                "Ripresa delle attività della fase, aggiornamento n. {n}: \
                                 verbale della riunione del gruppo di lavoro allegato."
                            )),
                            backfill: None,
                        };
                        let batch = AppendBatch::new()
                            .expect(&stream, ExpectedVersion::Exact(version))
                            .push(NewEvent::from_domain(&stream, &event, &manager, None)?);
                        let sent = Instant::now();
                        store.append_async(batch).await?;
                        latencies.push(sent.elapsed());
                        version += 1;
                    }
                    anyhow::Ok(latencies)
                })
            })
            .collect();
        let mut all = Vec::new();
        for task in tasks {
            all.extend(task.await??);
        }
        anyhow::Ok(all)
    })?;
    let wall = start.elapsed();
    let mut latencies = latencies;
    latencies.sort();
    Ok(Durable {
        events: latencies.len() as u64,
        wall,
        latencies,
    })
}
