//! `traguardo-bench start`: how long `traguardo serve` takes to answer on a
//! large log, folding the whole log against starting from a snapshot of the
//! read model, and what the read model costs in memory.
//!
//! On a scratch SQLite file in `--dir`:
//! 1. the synthetic log of `traguardo-bench store` (plans of 1,000 objectives,
//!    five phases each started and completed), `--events` long;
//! 2. in this process, the same run: a **bare fold** (rusqlite rows, `serde_json`
//!    into the domain's event enums, folded into small typed structs: the
//!    baseline the replay is held to), twice: with the decode the replay uses
//!    ([`DecodeByTag`], the baseline of the target) and with serde's own
//!    derived decode of the `type`-tagged enums (what a plain program would
//!    write, printed for comparison); the **replay** the server does (its rows
//!    read ahead on a thread of their own, its texts kept in the read model's
//!    texts' file beside the database: the CPU time of the bare fold and of
//!    the replay is printed beside their wall time, and the ratio of the CPU
//!    times beside the target's ratio of wall times), the
//!    snapshot's **encoding** and size, and the **start from the snapshot**
//!    (read, check against the log, decode);
//! 3. the real `traguardo serve` binary started on the log three times, each
//!    timed from spawn until `GET /healthz` answers 200: on an empty log (the
//!    floor), on the log without a snapshot (a full replay), and after
//!    `traguardo snapshot` (from the snapshot); the anonymous resident memory
//!    (`RssAnon`: the heap, not the pages of the database file the server
//!    mapped and read) of each once it answers, over the empty log's, gives the
//!    read model's memory per million events; `VmRSS` is printed beside it,
//!    and the resident pages of the read model's texts' file (its texts kept
//!    out of the heap, in a file mapped into memory).
//!
//! Each target of the performance issue is printed with `met` or `missed`.
//! Nothing here asserts a time.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitCode};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use chrono::NaiveDate;
use traguardo_events::domain::{DecodeByTag, ObjectiveEvent, OrgEvent, PlanEvent};
use traguardo_events::{Clock, SqliteStore};

use crate::store::{batched_append, rate, section};

/// `traguardo-bench start` options.
#[derive(Debug, clap::Args)]
pub struct StartArgs {
    /// Events in the log.
    #[arg(long, default_value_t = 1_000_000)]
    pub events: u64,
    /// Folder for the scratch database (on the disk to measure).
    #[arg(long, default_value = ".")]
    pub dir: PathBuf,
    /// The `traguardo` binary to start; default: the one beside this benchmark
    /// (build both with `cargo build --release -p traguardo -p traguardo-bench`).
    #[arg(long)]
    pub traguardo: Option<PathBuf>,
    /// Keep the scratch database.
    #[arg(long)]
    pub keep: bool,
}

/// Runs the benchmark.
///
/// # Errors
/// When the scratch log cannot be written or a server does not start.
pub fn run(args: StartArgs) -> anyhow::Result<ExitCode> {
    let binary = match &args.traguardo {
        Some(path) => path.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("the benchmark's folder")?
            .join("traguardo"),
    };
    if !binary.is_file() {
        bail!(
            "no traguardo binary at {} (build it, or pass --traguardo)",
            binary.display()
        );
    }
    let dir = args
        .dir
        .join(format!("traguardo-bench-start-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let result = run_in(&args, &binary, &dir);
    if args.keep {
        println!("\nscratch database kept in {}", dir.display());
    } else if let Err(e) = std::fs::remove_dir_all(&dir) {
        eprintln!("cannot remove {}: {e}", dir.display());
    }
    result
}

fn run_in(args: &StartArgs, binary: &Path, dir: &Path) -> anyhow::Result<ExitCode> {
    let (cpus, model) = crate::store::cpus();
    println!(
        "traguardo-bench start: {} events, {cpus} CPUs ({model})",
        args.events
    );
    let empty = dir.join("empty.db");
    let db = dir.join("start.db");

    section("writing the log");
    {
        let store = SqliteStore::open(&empty, Clock::system())?;
        store.shutdown();
        let store = SqliteStore::open(&db, Clock::system())?;
        let written = batched_append(&store, args.events, 1_000)?;
        store.shutdown();
        println!(
            "  {} events ({} objectives, {} plans) in {:.1} s",
            args.events,
            written.objectives,
            written.plans,
            written.wall.as_secs_f64()
        );
    }

    section("in this process, the same rows");
    let tagged = bare_fold(&db, BareDecode::SerdeTagged)?;
    println!(
        "  bare fold, serde's tagged decode             {:>9.0} events/s  ({:.2} s, {} objectives)",
        rate(tagged.events, tagged.took),
        tagged.took.as_secs_f64(),
        tagged.objectives
    );
    let cpu = process_cpu();
    let bare = bare_fold(&db, BareDecode::ByTag)?;
    let bare_cpu = process_cpu() - cpu;
    println!(
        "  bare decode + fold (rusqlite, typed structs) {:>9.0} events/s  ({:.2} s, CPU {:.2} s, decoded by tag)",
        rate(bare.events, bare.took),
        bare.took.as_secs_f64(),
        bare_cpu.as_secs_f64(),
    );
    let store = traguardo::app::open_existing_store(&db)?;
    // As the server does: its texts in the texts' file, beside the database.
    traguardo_projections::text::keep_in(dir);
    let cpu = process_cpu();
    let started = Instant::now();
    let (registry, _, _) = traguardo::snapshots::fold_after(
        store.as_ref(),
        traguardo::snapshots::live(),
        traguardo_events::Head::genesis().hash,
    )?;
    let replay = started.elapsed();
    let replay_cpu = process_cpu() - cpu;
    println!(
        "  replay into the read model                   {:>9.0} events/s  ({:.2} s, CPU {:.2} s: rows read ahead on a thread of their own)",
        rate(bare.events, replay),
        replay.as_secs_f64(),
        replay_cpu.as_secs_f64(),
    );
    let head = store.head()?;
    let started = Instant::now();
    let snapshot = traguardo::snapshots::encode(&registry, &head.hash, chrono::Utc::now())?;
    let encode = started.elapsed();
    drop(registry);
    println!(
        "  snapshot encoding                            {:>9.2} s  ({:.0} MB, {:.0} bytes per event)",
        encode.as_secs_f64(),
        snapshot.data.len() as f64 / 1e6,
        snapshot.data.len() as f64 / args.events.max(1) as f64
    );
    let started = Instant::now();
    store.save_snapshot(&snapshot)?;
    let save = started.elapsed();
    println!(
        "  snapshot write (parts of 4 MiB)              {:>9.2} s",
        save.as_secs_f64()
    );
    drop(snapshot);
    let started = Instant::now();
    let loaded = traguardo::snapshots::load(store.as_ref())?;
    let load = started.elapsed();
    println!(
        "  start from the snapshot (read, check, decode) {:>8.2} s  ({:?})",
        load.as_secs_f64(),
        loaded.start
    );
    drop(loaded);
    store.discard_snapshots(traguardo_events::store::REGISTRY_SNAPSHOT)?;
    store.shutdown();
    drop(store);

    section("`traguardo serve` until GET /healthz answers (release binary)");
    let floor = serve_until_answering(binary, &empty)?;
    println!("  empty log                     {floor}");
    let full = serve_until_answering(binary, &db)?;
    println!("  full replay                   {full}");
    let started = Instant::now();
    let taken = std::process::Command::new(binary)
        .arg("--db")
        .arg(&db)
        .arg("snapshot")
        .env_remove("TRAGUARDO_DB")
        .output()?;
    if !taken.status.success() {
        bail!(
            "traguardo snapshot failed: {}",
            String::from_utf8_lossy(&taken.stderr)
        );
    }
    println!(
        "  (traguardo snapshot: {:.2} s, {})",
        started.elapsed().as_secs_f64(),
        String::from_utf8_lossy(&taken.stdout).trim()
    );
    let from_snapshot = serve_until_answering(binary, &db)?;
    println!("  from the snapshot             {from_snapshot}");

    section("targets");
    let per_million = |s: &Started| {
        s.memory.anon.saturating_sub(floor.memory.anon) as f64 / 1e6 * 1e6
            / args.events.max(1) as f64
    };
    let ratio = bare.took.as_secs_f64() / replay.as_secs_f64().max(1e-9);
    target(
        "replay ≥ 0.8× a bare decode + fold into typed structs",
        &format!(
            "{ratio:.2}× (the bare fold with serde's tagged decode: {:.2}×; in CPU time, \
             against the bare fold's on one thread: {:.2}×)",
            tagged.took.as_secs_f64() / replay.as_secs_f64().max(1e-9),
            bare_cpu.as_secs_f64() / replay_cpu.as_secs_f64().max(1e-9)
        ),
        ratio >= 0.8,
    );
    target(
        "read model ≤ 150 MB per million events (serve's RssAnon over an empty log's)",
        &format!(
            "{:.0} MB per million after a full replay, {:.0} MB from the snapshot \
             (besides, the texts' file: {:.0} MB per million resident in the page cache)",
            per_million(&full),
            per_million(&from_snapshot),
            // Bytes per event are MB per million.
            full.memory.texts as f64 / args.events.max(1) as f64
        ),
        per_million(&full) <= 150.0 && per_million(&from_snapshot) <= 150.0,
    );
    target(
        "start of serve until it answers ≤ 1 s, from a snapshot checked against the log",
        &format!(
            "{:.2} s (full replay {:.2} s, {:.1}× faster)",
            from_snapshot.took.as_secs_f64(),
            full.took.as_secs_f64(),
            full.took.as_secs_f64() / from_snapshot.took.as_secs_f64().max(1e-9)
        ),
        from_snapshot.took <= Duration::from_secs(1),
    );
    Ok(ExitCode::SUCCESS)
}

fn target(what: &str, today: &str, met: bool) {
    println!(
        "  {:<6} {what}: {today}",
        if met { "met" } else { "missed" }
    );
}

struct Started {
    took: Duration,
    memory: Memory,
}

impl std::fmt::Display for Started {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:>7.2} s   RssAnon {:>6.0} MB   texts' file {:>5.0} MB   (VmRSS {:>6.0} MB)",
            self.took.as_secs_f64(),
            self.memory.anon as f64 / 1e6,
            self.memory.texts as f64 / 1e6,
            self.memory.rss as f64 / 1e6
        )
    }
}

/// A process's resident memory, from `/proc/PID/status`.
#[derive(Debug, Clone, Copy, Default)]
struct Memory {
    /// `VmRSS`: everything resident, the mapped pages of the database file
    /// the server read included.
    rss: u64,
    /// `RssAnon`: anonymous memory, the heap: the read model's.
    anon: u64,
    /// The resident pages of the read model's texts' file (mapped, and
    /// without a name: `smaps` shows it as deleted), in the page cache.
    texts: u64,
}

/// Spawns `traguardo serve` on `db` and a free loopback port, times it until
/// `/healthz` answers 200, reads its resident memory, and stops it (SIGTERM).
fn serve_until_answering(binary: &Path, db: &Path) -> anyhow::Result<Started> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let addr = format!("127.0.0.1:{port}");
    let started = Instant::now();
    let mut child = std::process::Command::new(binary)
        .arg("--db")
        .arg(db)
        .args(["serve", "--addr", &addr])
        .env_remove("TRAGUARDO_DB")
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    let answered = wait_for_health(&mut child, &addr, Duration::from_secs(600));
    let took = started.elapsed();
    let memory = memory_of(child.id()).unwrap_or_default();
    stop(&mut child);
    answered?;
    Ok(Started { took, memory })
}

fn wait_for_health(child: &mut Child, addr: &str, limit: Duration) -> anyhow::Result<()> {
    use std::io::{Read, Write};
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait()? {
            bail!("traguardo serve exited: {status}");
        }
        if let Ok(mut stream) = std::net::TcpStream::connect(addr) {
            stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")?;
            let mut answer = String::new();
            let _ = stream.read_to_string(&mut answer);
            if answer.starts_with("HTTP/1.1 200") {
                return Ok(());
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    bail!("traguardo serve did not answer within {limit:?}")
}

fn stop(child: &mut Child) {
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    if child.wait().is_err() {
        let _ = child.kill();
    }
}

/// The CPU time (user and system) this process spent so far on all its
/// threads, those ended included, from `/proc/self/stat` (in ticks of 1/100 s,
/// Linux's fixed `USER_HZ`); zero where it cannot be read.
fn process_cpu() -> Duration {
    const TICKS_PER_SECOND: u64 = 100;
    let ticks = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|stat| {
            // The fields after the command name, which is in parentheses and may
            // hold spaces: state is field 3, utime 14 and stime 15.
            let after = stat.rsplit_once(')')?.1;
            let fields: Vec<&str> = after.split_whitespace().collect();
            let utime: u64 = fields.get(11)?.parse().ok()?;
            let stime: u64 = fields.get(12)?.parse().ok()?;
            Some(utime + stime)
        })
        .unwrap_or(0);
    Duration::from_millis(ticks * 1000 / TICKS_PER_SECOND)
}

fn memory_of(pid: u32) -> Option<Memory> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kb * 1024)
    };
    Some(Memory {
        rss: field("VmRSS:")?,
        anon: field("RssAnon:")?,
        texts: deleted_files_resident(pid),
    })
}

/// The resident bytes of a process's mappings of files without a name (the
/// texts' file is the server's only one), from `/proc/PID/smaps`.
fn deleted_files_resident(pid: u32) -> u64 {
    let Ok(smaps) = std::fs::read_to_string(format!("/proc/{pid}/smaps")) else {
        return 0;
    };
    let mut in_deleted = false;
    let mut bytes = 0;
    for line in smaps.lines() {
        let mut fields = line.split_whitespace();
        let first = fields.next().unwrap_or_default();
        if first.contains('-') && first.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
            // A mapping's header: range, perms, offset, dev, inode, path.
            in_deleted = line.ends_with("(deleted)");
        } else if in_deleted && first == "Rss:" {
            let kb: u64 = fields.next().and_then(|k| k.parse().ok()).unwrap_or(0);
            bytes += kb * 1024;
        }
    }
    bytes
}

// ---------------------------------------------------------------------------
// The baseline: the same rows read with bare rusqlite, decoded by serde_json
// into the domain's event enums, folded into small typed structs.

/// How the baseline decodes an event's data into its enum.
#[derive(Clone, Copy)]
enum BareDecode {
    /// By the `type` column as the variant, the data as its fields, read in
    /// place: the decode the replay uses, so the ratio measures everything else.
    ByTag,
    /// serde's derived decode of the `#[serde(tag = "type")]` enums, on the data
    /// with its type put back in front (it buffers every event first).
    SerdeTagged,
}

impl BareDecode {
    fn decode<E: DecodeByTag + serde::de::DeserializeOwned>(
        self,
        event_type: &str,
        stored: &str,
        text: &mut String,
    ) -> anyhow::Result<E> {
        match self {
            BareDecode::ByTag => Ok(E::decode_by_tag(event_type, stored)?),
            BareDecode::SerdeTagged => {
                let rest = stored.trim_start().strip_prefix('{').context("an object")?;
                text.clear();
                text.push_str("{\"type\":\"");
                text.push_str(event_type);
                text.push('"');
                if !rest.trim_start().starts_with('}') {
                    text.push(',');
                }
                text.push_str(rest);
                Ok(serde_json::from_str(text)?)
            }
        }
    }
}

struct Bare {
    events: u64,
    objectives: usize,
    took: Duration,
}

/// A phase as the baseline keeps it.
struct BarePhase {
    weight: i64,
    deadline: NaiveDate,
    started: Option<NaiveDate>,
    completed: Option<NaiveDate>,
    note: Option<String>,
}

/// An objective as the baseline keeps it.
struct BareObjective {
    version: u64,
    title: String,
    phases: Vec<BarePhase>,
}

fn bare_fold(db: &Path, decode: BareDecode) -> anyhow::Result<Bare> {
    let started = Instant::now();
    let conn = rusqlite::Connection::open(db)?;
    let mut statement =
        conn.prepare("SELECT seq, stream, version, type, data FROM events ORDER BY seq")?;
    let mut rows = statement.query([])?;
    let mut objectives: HashMap<String, BareObjective> = HashMap::new();
    let mut plans: HashMap<String, Vec<String>> = HashMap::new();
    let mut events = 0u64;
    let mut text = String::new();
    while let Some(row) = rows.next()? {
        events += 1;
        let stream: String = row.get(1)?;
        let version: u64 = row.get(2)?;
        // The type is a column of its own; the enums are tagged by it.
        let event_type = row.get_ref(3)?.as_str()?;
        let stored = row.get_ref(4)?.as_str()?;
        if let Some(key) = stream.strip_prefix("objective/") {
            match decode.decode::<ObjectiveEvent>(event_type, stored, &mut text)? {
                ObjectiveEvent::ObjectiveDefined { objective, .. } => {
                    let phases = objective
                        .phases
                        .into_iter()
                        .map(|p| BarePhase {
                            weight: p.weight_hundredths.0,
                            deadline: p.deadline,
                            started: None,
                            completed: None,
                            note: None,
                        })
                        .collect();
                    objectives.insert(
                        key.to_string(),
                        BareObjective {
                            version,
                            title: objective.title,
                            phases,
                        },
                    );
                }
                ObjectiveEvent::PhaseStarted {
                    phase, on, note, ..
                } => {
                    let o = objectives.get_mut(key).context("an unknown objective")?;
                    o.version = version;
                    let p = phase_of(o, phase)?;
                    p.started = Some(on);
                    p.note = note;
                }
                ObjectiveEvent::PhaseCompleted {
                    phase, on, note, ..
                } => {
                    let o = objectives.get_mut(key).context("an unknown objective")?;
                    o.version = version;
                    let p = phase_of(o, phase)?;
                    p.completed = Some(on);
                    p.note = note;
                }
                _ => bail!("the baseline folds only the synthetic workload's events"),
            }
        } else if let Some(year) = stream.strip_prefix("plan/") {
            if let PlanEvent::PlanDefined { objectives, .. } =
                decode.decode(event_type, stored, &mut text)?
            {
                plans.insert(year.to_string(), objectives);
            }
        } else {
            let _: OrgEvent = decode.decode(event_type, stored, &mut text)?;
        }
    }
    let took = started.elapsed();
    // What was folded is read, so that none of it is optimised away.
    let checksum: i64 = objectives
        .values()
        .flat_map(|o| o.phases.iter())
        .map(|p| {
            p.weight
                + i64::from(p.completed.is_some_and(|c| c <= p.deadline))
                + i64::from(p.started.is_some())
                + p.note.as_ref().map_or(0, |n| n.len() as i64)
        })
        .sum::<i64>()
        + objectives
            .values()
            .map(|o| o.title.len() as i64 + o.version as i64)
            .sum::<i64>();
    std::hint::black_box((checksum, plans.len()));
    Ok(Bare {
        events,
        objectives: objectives.len(),
        took,
    })
}

fn phase_of(objective: &mut BareObjective, number: u32) -> anyhow::Result<&mut BarePhase> {
    objective
        .phases
        .get_mut(number as usize - 1)
        .context("an unknown phase")
}
