//! The command line (DESIGN.md §7): one clap-derive struct, one function per
//! command. Problems are printed one per line; the exit code says if it worked.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use traguardo_events::{chain, Clock, Head, RecordedEvent, StoreExt};

use crate::app::{open_existing_store, open_store};
use crate::commands::Principal;
use crate::App;

/// Traguardo: the Piano degli Obiettivi as an append-only, hash-chained log.
#[derive(Debug, Parser)]
#[command(name = "traguardo", version, about)]
pub struct Cli {
    /// The database: a SQLite file (created if missing), or a PostgreSQL URL
    /// `postgres://user[:password]@host[:port]/database`.
    #[arg(
        long,
        env = "TRAGUARDO_DB",
        default_value = "traguardo.db",
        global = true
    )]
    pub db: PathBuf,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the HTTP API.
    Serve(crate::http::ServeArgs),
    /// Load a plan document (JSON, DESIGN.md §6) or a plan workbook (xlsx, from
    /// `plan-template`); prints every problem and loads nothing if there is any.
    Import {
        /// The plan document or workbook.
        file: PathBuf,
        /// The actor written on the events.
        #[arg(long, default_value = "traguardo-cli")]
        actor: String,
    },
    /// Recompute the whole hash chain; exit 1 naming the first bad seq. With
    /// `--checkpoint`, check the log (or an export) against a signed checkpoint.
    Verify {
        /// A head published earlier, `SEQ:HASH`; fails if the log no longer holds
        /// it. Repeatable.
        #[arg(long = "expect", value_parser = parse_head)]
        expect: Vec<Head>,
        /// A signed checkpoint (`GET /api/v1/checkpoint`): its signature must
        /// verify with a `--vkey`, and the log's tree at its size have its root.
        #[arg(long, requires = "vkeys")]
        checkpoint: Option<PathBuf>,
        /// A trusted verifier key: the log's (one must have signed), or a
        /// witness's (it must have cosigned). Repeatable.
        #[arg(long = "vkey", value_parser = crate::transparency::parse_vkey)]
        vkeys: Vec<traguardo_tlog::note::VerifierKey>,
        /// With `--checkpoint`: the log.
        #[command(flatten)]
        log: crate::transparency_cli::LogSource,
    },
    /// Keys that sign checkpoints (the log's) or cosign them (a witness's).
    Key {
        /// What to do with keys.
        #[command(subcommand)]
        command: crate::transparency_cli::KeyCommand,
    },
    /// Inclusion and consistency proofs of the log's Merkle tree, offline.
    Prove {
        /// Which proof.
        #[command(subcommand)]
        command: crate::transparency_cli::ProveCommand,
    },
    /// As a witness: cosign a checkpoint that extends the last one this key
    /// cosigned, refusing forks; prints the cosignature line.
    Cosign(Box<crate::transparency_cli::CosignArgs>),
    /// Write the whole log as NDJSON (one event per line, with hashes) to stdout.
    Export,
    /// Take a snapshot of the read model now (beside the log, in the same
    /// database), so that the next `serve` folds only the events after it.
    Snapshot,
    /// End-of-year achievement report.
    Report(crate::report::ReportArgs),
    /// Red flags of a plan year, one per line.
    Flags(crate::flags::FlagsArgs),
    /// Manage bearer tokens.
    Token {
        /// What to do with tokens.
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Print the JSON Schema of the plan document.
    PlanSchema,
    /// Print the OpenAPI document the server serves at /api/v1/openapi.json.
    Openapi,
    /// Write the template workbook of a plan (xlsx) to stdout.
    PlanTemplate(crate::plan_cli::TemplateArgs),
    /// Write a loaded plan, as it was loaded, to stdout: the plan document (json)
    /// or its workbook (xlsx).
    PlanExport(crate::plan_cli::ExportArgs),
    /// Manage web accounts (DESIGN.md §8).
    User {
        /// What to do with accounts.
        #[command(subcommand)]
        command: crate::web::cli::UserCommand,
    },
    /// Copy the live SQLite database into a new file (SQLite's online backup),
    /// verify the copy's chain and print its head. PostgreSQL: use pg_dump.
    Backup {
        /// The new file.
        #[arg(long)]
        to: PathBuf,
    },
    /// Restore a backup into `--db`, a new file: refused when the copy's chain
    /// fails or lacks an expected head, or when `--db` exists.
    Restore {
        /// The backup.
        #[arg(long)]
        from: PathBuf,
        /// A head published earlier, `SEQ:HASH`, that the copy must hold. Repeatable.
        #[arg(long = "expect", value_parser = parse_head)]
        expect: Vec<Head>,
    },
    /// Copy a whole log into an empty database, hash for hash, from either
    /// engine to either (SQLite file or PostgreSQL URL); both chains are
    /// verified, before and after.
    Copy {
        /// The log to copy: a SQLite file or a `postgres://` URL.
        #[arg(long)]
        from: PathBuf,
        /// Where to copy it: a new SQLite file, or an empty PostgreSQL database.
        #[arg(long)]
        to: PathBuf,
    },
}

/// Token commands.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Issue a token and print it (it is shown only once).
    Create {
        /// Whose token it is.
        #[arg(long)]
        actor: String,
        /// admin, manager, validator or auditor.
        #[arg(long)]
        role: traguardo_events::model::Role,
        /// For managers: a unit they act for, listed by a loaded plan. Repeatable.
        #[arg(long = "unit")]
        units: Vec<String>,
        /// Their stable identity (a username, a codice fiscale); default: the
        /// actor's name normalised.
        #[arg(long)]
        actor_id: Option<String>,
        /// Days until it stops working (default 365, at most 730).
        #[arg(long, value_name = "DAYS")]
        expires_in: Option<u32>,
    },
    /// List every token (never its secret): id, role, identity, name, units,
    /// expiry, and whether it is active, expired or revoked.
    List,
    /// Revoke a token: it stops working at once, in every server following the log.
    Revoke {
        /// The token's id (`token list`).
        id: uuid::Uuid,
    },
}

fn parse_head(text: &str) -> Result<Head, String> {
    let (seq, hash) = text
        .split_once(':')
        .ok_or_else(|| format!("{text:?} is not SEQ:HASH"))?;
    let seq = seq
        .parse()
        .map_err(|_| format!("{seq:?} is not a sequence number"))?;
    if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("{hash:?} is not a 64-digit hex SHA-256"));
    }
    Ok(Head {
        seq,
        hash: hash.to_ascii_lowercase(),
    })
}

/// The principal of commands run at the terminal: whoever can write the file is
/// the administrator.
fn cli_admin(actor: &str) -> Principal {
    Principal::new(
        actor.to_string(),
        traguardo_events::model::Role::Admin,
        Vec::new(),
    )
}

/// Runs a parsed command line.
///
/// # Errors
/// Whatever the command failed with, for `main` to print.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve(args) => crate::http::serve_blocking(&cli.db, args),
        Command::Import { file, actor } => import(&cli.db, &file, &actor),
        Command::Verify {
            expect,
            checkpoint: Some(file),
            vkeys,
            log,
        } => {
            if !expect.is_empty() {
                anyhow::bail!(
                    "--expect and --checkpoint are separate checks: run them one at a time"
                );
            }
            crate::transparency_cli::verify_checkpoint(&cli.db, &file, &vkeys, &log)
        }
        Command::Verify { expect, .. } => verify(&cli.db, &expect),
        Command::Key { command } => crate::transparency_cli::key(command),
        Command::Prove { command } => crate::transparency_cli::prove(&cli.db, command),
        Command::Cosign(args) => crate::transparency_cli::cosign(&cli.db, *args),
        Command::Export => export(&cli.db),
        Command::Snapshot => snapshot(&cli.db),
        Command::Report(args) => crate::report::run(&cli.db, args),
        Command::Flags(args) => crate::flags::run(&cli.db, args),
        Command::Token { command } => token(&cli.db, command),
        Command::Copy { from, to } => copy(&from, &to),
        Command::Backup { to } => crate::backup::backup(&cli.db, &to),
        Command::Restore { from, expect } => crate::backup::restore(&cli.db, &from, &expect),
        Command::PlanSchema => {
            print!("{}", crate::plan_document::json_schema());
            Ok(ExitCode::SUCCESS)
        }
        Command::Openapi => {
            println!(
                "{}",
                serde_json::to_string_pretty(&crate::http::openapi_document())?
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::User { command } => crate::web::cli::run(&cli.db, command),
        Command::PlanTemplate(args) => crate::plan_cli::template(args),
        Command::PlanExport(args) => crate::plan_cli::export(&cli.db, args),
    }
}

/// `traguardo snapshot`: prints how the read model was built and the snapshot
/// taken.
fn snapshot(db: &std::path::Path) -> anyhow::Result<ExitCode> {
    let app = App::with_store(open_existing_store(db)?)?;
    match app.start() {
        crate::snapshots::Start::Refused { seq, reason, .. } => {
            eprintln!(
                "snapshot at seq {seq} refused ({reason}): the log was folded from the start"
            );
        }
        crate::snapshots::Start::FromSnapshot { .. } | crate::snapshots::Start::Replayed { .. } => {
        }
    }
    let taken = app.take_snapshot()?;
    let streams = crate::snapshots::write_stream_snapshots(
        app.store().as_ref(),
        crate::snapshots::STREAM_SNAPSHOT_EVERY,
    )?;
    println!(
        "{streams} stream snapshots (every {} versions of each objective)",
        crate::snapshots::STREAM_SNAPSHOT_EVERY
    );
    app.store().shutdown();
    match taken {
        Some(seq) => {
            println!("snapshot of the read model at seq {seq}");
            Ok(ExitCode::SUCCESS)
        }
        None => {
            eprintln!("nothing to snapshot: the log is empty, or the read model cannot fold it");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// `traguardo token create|list|revoke`.
fn token(db: &std::path::Path, command: TokenCommand) -> anyhow::Result<ExitCode> {
    let app = App::open(db, Clock::system())?;
    let admin = cli_admin("traguardo-cli");
    match command {
        TokenCommand::Create {
            actor,
            role,
            units,
            actor_id,
            expires_in,
        } => {
            let expires = expires_in
                .map(|days| app.store().clock().now() + chrono::Duration::days(days.into()));
            let request = crate::app::NewToken {
                actor,
                actor_id,
                role,
                units,
                expires,
            };
            let (token, info) = match runtime()?.block_on(app.issue(request, &admin)) {
                Err(crate::AppError::Invalid(errors)) => {
                    for e in &errors {
                        eprintln!("{}: {}", e.field, e.message);
                    }
                    return Ok(ExitCode::FAILURE);
                }
                other => other?,
            };
            println!("{token}");
            eprintln!(
                "token {} for {} [{}] ({}{}), expires {} — shown only once",
                info.token_id,
                info.actor,
                info.actor_id,
                info.role,
                if info.units.is_empty() {
                    String::new()
                } else {
                    format!(", units {}", info.units.join(", "))
                },
                info.expires
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            );
        }
        TokenCommand::List => {
            let now = app.store().clock().now();
            let mut tokens = app.read(|r| r.all_tokens().cloned().collect::<Vec<_>>());
            tokens.sort_by_key(|t| t.token_id);
            println!("id\trole\tactor_id\tactor\tunits\tcreated\texpires\tstatus");
            for t in tokens {
                let status = match t.revoked {
                    Some(_) => "revoked",
                    None if !t.valid_at(now) => "expired",
                    None => "active",
                };
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{status}",
                    t.token_id,
                    t.role,
                    t.actor_id,
                    t.actor,
                    t.units.join(","),
                    t.issued.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    t.expires.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                );
            }
        }
        TokenCommand::Revoke { id } => {
            runtime()?.block_on(app.revoke_token(id, &admin))?;
            println!("revoked token {id}");
        }
    }
    app.store().shutdown();
    Ok(ExitCode::SUCCESS)
}

/// A small runtime for the commands that use the async application.
pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

fn import(db: &std::path::Path, file: &std::path::Path, actor: &str) -> anyhow::Result<ExitCode> {
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let plan = match crate::plan_cli::parse_plan(file, &bytes) {
        Ok(plan) => plan,
        Err(errors) => {
            for e in &errors {
                eprintln!("{}: {e}", file.display());
            }
            eprintln!("{} problem(s); nothing was loaded", errors.len());
            return Ok(ExitCode::FAILURE);
        }
    };
    let app = App::open(db, Clock::system())?;
    let events = runtime()?.block_on(app.import_plan(&plan, &cli_admin(actor)))?;
    let last = events
        .last()
        .map(|e| (e.seq, e.hash.clone()))
        .unwrap_or_default();
    println!(
        "loaded plan {} ({} objectives, {} events); head {}:{}",
        plan.year,
        plan.objectives.len(),
        events.len(),
        last.0,
        last.1
    );
    Ok(ExitCode::SUCCESS)
}

fn verify(db: &std::path::Path, expect: &[Head]) -> anyhow::Result<ExitCode> {
    let store = open_existing_store(db)?;
    // The highest head a server saw on this database must still be there too.
    let mut expect = expect.to_vec();
    if let Some(path) = crate::http::head_file::path_for(store.as_ref()) {
        expect.extend(crate::http::head_file::read(&path)?);
    }
    let v = store.verify(&expect)?;
    if v.ok() {
        println!(
            "ok: {} events, head {}:{}",
            v.events, v.head.seq, v.head.hash
        );
        return Ok(ExitCode::SUCCESS);
    }
    print_problems("", &v);
    Ok(ExitCode::FAILURE)
}

/// One line per problem `verify` found, each after `prefix`.
pub(crate) fn print_problems(prefix: &str, v: &traguardo_events::Verification) {
    if let (Some(seq), Some(problem)) = (v.first_bad_seq, &v.problem) {
        println!("{prefix}BROKEN at seq {seq}: {problem}");
    }
    for (head, why) in &v.missing_heads {
        println!(
            "{prefix}MISSING published head {}:{}: {why}",
            head.seq, head.hash
        );
    }
    if !v.triggers_present {
        println!("{prefix}TAMPERED: the append-only triggers have been removed");
    }
}

/// Events written per transaction by `copy`.
const COPY_PAGE: usize = 1_000;

/// `traguardo copy`: verifies the source, refuses a destination that is not
/// empty, moves every event as it is (seq, id, record time, hashes), checking
/// each hash on the way, then every idempotency key, then verifies the
/// destination against the source's head.
fn copy(from: &std::path::Path, to: &std::path::Path) -> anyhow::Result<ExitCode> {
    let source = open_existing_store(from).context("cannot read the source")?;
    let checked = source.verify(&[])?;
    if !checked.ok() {
        print_problems(&format!("source {}: ", source.location()), &checked);
        println!("nothing was copied");
        return Ok(ExitCode::FAILURE);
    }
    let target = open_store(to, Clock::system()).context("cannot open the destination")?;
    let head = target.head()?;
    if head.seq != 0 {
        anyhow::bail!(
            "the destination {} is not empty (it holds {} events): copy only into an empty database",
            target.location(),
            head.seq
        );
    }
    let mut prev = Head::genesis();
    let mut page: Vec<RecordedEvent> = Vec::with_capacity(COPY_PAGE);
    source.for_each(0, |event| -> anyhow::Result<()> {
        let computed = chain::hash(&prev.hash, &event)?;
        if computed != event.hash || event.prev_hash != prev.hash {
            anyhow::bail!(
                "the source changed while it was copied: seq {} does not verify",
                event.seq
            );
        }
        prev = Head {
            seq: event.seq,
            hash: computed,
        };
        page.push(event);
        if page.len() == COPY_PAGE {
            target.import_recorded(&page)?;
            page.clear();
        }
        Ok(())
    })?;
    if !page.is_empty() {
        target.import_recorded(&page)?;
    }
    // Then the idempotency keys, so that a request retried against the
    // destination gets its first answer back rather than being applied twice.
    let mut keys = Vec::with_capacity(COPY_PAGE);
    let mut moved_keys = 0usize;
    source.visit_keys(&mut |key| {
        keys.push(key);
        if keys.len() == COPY_PAGE {
            target.import_keys(&keys)?;
            moved_keys += keys.len();
            keys.clear();
        }
        Ok(())
    })?;
    if !keys.is_empty() {
        target.import_keys(&keys)?;
        moved_keys += keys.len();
    }
    let copied = target.verify(std::slice::from_ref(&prev))?;
    target.shutdown();
    if !copied.ok() || copied.head != prev {
        print_problems(&format!("destination {}: ", target.location()), &copied);
        if copied.head != prev {
            println!(
                "destination {}: its head is {}:{}, the source's {}:{}",
                target.location(),
                copied.head.seq,
                copied.head.hash,
                prev.seq,
                prev.hash
            );
        }
        return Ok(ExitCode::FAILURE);
    }
    println!(
        "copied {} events and {moved_keys} idempotency keys from {} to {}; head {}:{} verified on both",
        copied.events,
        source.location(),
        target.location(),
        prev.seq,
        prev.hash
    );
    Ok(ExitCode::SUCCESS)
}

fn export(db: &std::path::Path) -> anyhow::Result<ExitCode> {
    let store = open_existing_store(db)?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let written = store
        .for_each(0, |event| -> anyhow::Result<()> {
            serde_json::to_writer(&mut out, &event)?;
            out.write_all(b"\n")?;
            Ok(())
        })
        .and_then(|()| Ok(out.flush()?));
    match written {
        // `traguardo export | head` closed the pipe: not an error.
        Err(e) if is_broken_pipe(&e) => Ok(ExitCode::SUCCESS),
        other => other.map(|()| ExitCode::SUCCESS),
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            || cause
                .downcast_ref::<serde_json::Error>()
                .is_some_and(|j| j.io_error_kind() == Some(std::io::ErrorKind::BrokenPipe))
    })
}
