//! Consistent copies of a live SQLite log, with SQLite's online backup API.
//!
//! The copy is taken in one step, that is inside one read transaction of the
//! source: in WAL mode that snapshot sees every commit before it and none after,
//! while the server keeps appending (writers never wait for it). The caller
//! verifies the copy's chain before calling it a backup ([`crate::SqliteStore::verify`]).

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use crate::{Error, Result};

/// Copies the SQLite database `from` (which must exist, and may be in use) into
/// the new file `to`, page for page, as one consistent snapshot. `to` must not
/// exist.
///
/// # Errors
/// [`Error::Open`] when `from` is missing or `to` exists; [`Error::Sqlite`]
/// when SQLite fails.
pub fn copy_database(from: &Path, to: &Path) -> Result<()> {
    if !from.is_file() {
        return Err(Error::Open {
            path: from.to_path_buf(),
            message: "no such database file".into(),
        });
    }
    if to.exists() {
        return Err(Error::Open {
            path: to.to_path_buf(),
            message: "the file exists already: a copy is only written to a new file".into(),
        });
    }
    // Read-write without create: a read-only connection to a WAL database
    // needs its -shm file writable anyway, and nothing is written here.
    let source = Connection::open_with_flags(
        from,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    source.busy_timeout(Duration::from_secs(10))?;
    let mut target = Connection::open(to)?;
    {
        use rusqlite::backup::{Backup, StepResult};
        let backup = Backup::new(&source, &mut target)?;
        // -1: every page in one step, one read transaction, hence one snapshot;
        // a copy in several steps would restart whenever the server commits.
        let mut waits = 0;
        loop {
            match backup.step(-1)? {
                StepResult::Done => break,
                StepResult::More => {}
                // A checkpoint or another lock held for a moment: wait, a while.
                StepResult::Busy | StepResult::Locked if waits < 100 => {
                    waits += 1;
                    std::thread::sleep(Duration::from_millis(100));
                }
                _ => {
                    return Err(Error::Open {
                        path: from.to_path_buf(),
                        message: "the database stayed locked for ten seconds".into(),
                    })
                }
            }
        }
    }
    // The copy is a file of its own: out of WAL mode, so that it is one file.
    target.pragma_update(None, "journal_mode", "DELETE")?;
    target.close().map_err(|(_, e)| Error::Sqlite(e))?;
    Ok(())
}
