//! `traguardo backup` and `traguardo restore`: consistent copies of a live
//! SQLite log, verified before they are called a backup, and restored only
//! into a new file after their chain (and any published head) checks out.
//! PostgreSQL logs are backed up with `pg_dump` (README, *Backups*).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use traguardo_events::{store, Head, SqliteStore, Verification};

/// `traguardo backup --to FILE`: copies the live database `db` into `to` (a
/// new file) with SQLite's online backup, verifies the copy's chain and prints
/// its head.
///
/// # Errors
/// When `db` is not a SQLite log, `to` exists, or the copy cannot be made.
pub fn backup(db: &Path, to: &Path) -> anyhow::Result<ExitCode> {
    refuse_postgres(db, "pg_dump -Fc -d \"$TRAGUARDO_DB\" -f traguardo.dump")?;
    refuse_existing(to, "a backup is written to a new file")?;
    let partial = partial_of(to);
    refuse_existing(&partial, "a backup left half-done? remove it first")?;
    traguardo_events::backup::copy_database(db, &partial)
        .with_context(|| format!("cannot copy {}", db.display()))?;
    let checked = verify_file(&partial, &[]);
    let verification = match checked {
        Ok(v) if v.ok() => v,
        other => {
            let _ = std::fs::remove_file(&partial);
            return match other {
                Ok(v) => {
                    crate::cli::print_problems(&format!("copy of {}: ", db.display()), &v);
                    println!("no backup was written");
                    Ok(ExitCode::FAILURE)
                }
                Err(e) => Err(e),
            };
        }
    };
    std::fs::rename(&partial, to)
        .with_context(|| format!("cannot move the copy to {}", to.display()))?;
    println!(
        "backup {}: {} events, chain verified, head {}:{}",
        to.display(),
        verification.events,
        verification.head.seq,
        verification.head.hash
    );
    Ok(ExitCode::SUCCESS)
}

/// `traguardo restore --from FILE [--expect SEQ:HASH]…`: verifies the copy
/// `from` (its chain, and every published head given), then writes it to `db`,
/// which must not exist yet, and verifies the result against the same head.
///
/// # Errors
/// When `db` is not a SQLite path or exists already, or the copy fails.
pub fn restore(db: &Path, from: &Path, expect: &[Head]) -> anyhow::Result<ExitCode> {
    refuse_postgres(db, "pg_restore -d postgres://…/new_empty_db traguardo.dump")?;
    refuse_existing(
        db,
        "restore writes a new file and never replaces a database (a server may be \
         using it): stop the server, move the file and its -wal and -shm aside, \
         restore, start the server again",
    )?;
    let source = verify_file(from, expect)
        .with_context(|| format!("cannot read the copy {}", from.display()))?;
    if !source.ok() {
        crate::cli::print_problems(&format!("{}: ", from.display()), &source);
        println!("nothing was restored");
        return Ok(ExitCode::FAILURE);
    }
    let partial = partial_of(db);
    refuse_existing(&partial, "a restore left half-done? remove it first")?;
    traguardo_events::backup::copy_database(from, &partial)
        .with_context(|| format!("cannot copy {}", from.display()))?;
    let mut heads = expect.to_vec();
    heads.push(source.head.clone());
    let restored = verify_file(&partial, &heads);
    match restored {
        Ok(v) if v.ok() && v.head == source.head => {
            std::fs::rename(&partial, db)
                .with_context(|| format!("cannot move the copy to {}", db.display()))?;
            println!(
                "restored {} events into {}, chain verified, head {}:{}",
                v.events,
                db.display(),
                v.head.seq,
                v.head.hash
            );
            Ok(ExitCode::SUCCESS)
        }
        other => {
            let _ = std::fs::remove_file(&partial);
            match other {
                Ok(v) => {
                    crate::cli::print_problems(&format!("{}: ", db.display()), &v);
                    println!("the copy changed while it was restored; nothing was restored");
                    Ok(ExitCode::FAILURE)
                }
                Err(e) => Err(e),
            }
        }
    }
}

/// Verifies the chain of the SQLite log in `file` against `expect`.
fn verify_file(file: &Path, expect: &[Head]) -> anyhow::Result<Verification> {
    let store = SqliteStore::open_existing(file)?;
    let verification = store.verify(expect);
    store.shutdown();
    Ok(verification?)
}

fn refuse_postgres(db: &Path, instead: &str) -> anyhow::Result<()> {
    if db.to_str().is_some_and(store::is_postgres_url) {
        anyhow::bail!(
            "backup and restore copy SQLite files; a PostgreSQL log is copied with \
             pg_dump and pg_restore (e.g. {instead}), then checked with \
             `traguardo verify --expect SEQ:HASH`"
        );
    }
    Ok(())
}

/// Refuses `path` when it, or a WAL file of it, exists.
fn refuse_existing(path: &Path, why: &str) -> anyhow::Result<()> {
    for candidate in [path.to_path_buf(), sibling(path, "-wal")] {
        if candidate.exists() {
            anyhow::bail!("{} exists: {why}", candidate.display());
        }
    }
    Ok(())
}

fn partial_of(path: &Path) -> PathBuf {
    sibling(path, ".partial")
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}
