//! The highest head a server has seen, kept beside a SQLite database in a small
//! file (`traguardo.db.head`, one line `SEQ:HASH`).
//!
//! SQLite keeps the latest commits in the `-wal` file until they are
//! checkpointed into the database file. Lose that file after a crash (an
//! operator tidying up, a copy that left it behind) and the log silently ends
//! earlier: a hash chain cut at its end still verifies. So the server writes
//! down every head it sees, and refuses to start on a log that is shorter than
//! that head, or that holds another event at its seq; `/status` turns 503 if
//! it happens while it runs, and `traguardo verify` checks the head too.
//!
//! A file rather than a table: a table would live in the very database (and
//! `-wal` file) whose loss it must notice. PostgreSQL has no such file to lose,
//! and has no head file.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use traguardo_events::{Head, Store};

/// The head file of a database (`None` for PostgreSQL).
pub fn path_for(store: &dyn Store) -> Option<PathBuf> {
    let location = store.location();
    if traguardo_events::store::is_postgres_url(&location) {
        return None;
    }
    Some(PathBuf::from(format!("{location}.head")))
}

/// The head written in the file at `path`, if there is one.
///
/// # Errors
/// When the file exists but cannot be read or does not hold `SEQ:HASH`.
pub fn read(path: &Path) -> anyhow::Result<Option<Head>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => anyhow::bail!("cannot read {}: {e}", path.display()),
    };
    let parsed = text.trim().split_once(':').and_then(|(seq, hash)| {
        let seq = seq.parse().ok()?;
        (hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit())).then(|| Head {
            seq,
            hash: hash.to_ascii_lowercase(),
        })
    });
    match parsed {
        Some(head) => Ok(Some(head)),
        None => anyhow::bail!("{} does not hold SEQ:HASH", path.display()),
    }
}

/// Whether the log still holds `seen`: `Err` says, in one line, what is wrong.
///
/// # Errors
/// When the log is shorter than `seen`, holds another event at its seq, or
/// cannot be read.
pub fn check(store: &dyn Store, seen: &Head) -> Result<(), String> {
    let head = store.head().map_err(|e| e.to_string())?;
    if head.seq < seen.seq {
        return Err(format!(
            "the log holds {} events, fewer than the {} this server had already seen \
             (head {}:{}): the latest events were lost (a deleted or missing -wal file?)",
            head.seq, seen.seq, seen.seq, seen.hash
        ));
    }
    if seen.seq == 0 {
        return Ok(());
    }
    let at = store
        .read_all(seen.seq - 1, 1)
        .map_err(|e| e.to_string())?
        .into_iter()
        .next();
    match at {
        Some(event) if event.hash == seen.hash => Ok(()),
        Some(event) => Err(format!(
            "the log has hash {} at seq {}, where this server had seen {}: the log was replaced",
            event.hash, seen.seq, seen.hash
        )),
        None => Err(format!("the log has no event at seq {}", seen.seq)),
    }
}

/// The highest head seen, and the file it is written to.
#[derive(Debug)]
pub struct Seen {
    path: Option<PathBuf>,
    highest: Mutex<Head>,
}

impl Seen {
    /// Nothing seen, nothing written (PostgreSQL, or tests without a file).
    pub fn none() -> Self {
        Seen {
            path: None,
            highest: Mutex::new(Head::genesis()),
        }
    }

    /// Starts from the file at `path` (if any), and writes there from now on.
    ///
    /// # Errors
    /// When the file exists but cannot be read.
    pub fn open(path: Option<PathBuf>) -> anyhow::Result<Self> {
        let highest = match &path {
            Some(path) => read(path)?.unwrap_or_else(Head::genesis),
            None => Head::genesis(),
        };
        Ok(Seen {
            path,
            highest: Mutex::new(highest),
        })
    }

    /// The highest head seen.
    pub fn highest(&self) -> Head {
        self.highest
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Records `head` if it is beyond the highest seen, and writes it down
    /// (to a temporary file renamed over the old one: never half a line).
    pub fn record(&self, head: &Head) {
        let mut highest = self.highest.lock().unwrap_or_else(|e| e.into_inner());
        if head.seq <= highest.seq {
            return;
        }
        *highest = head.clone();
        if let Some(path) = &self.path {
            if let Err(e) = write(path, head) {
                tracing::warn!(error = %e, path = %path.display(), "cannot write the head file");
            }
        }
    }
}

fn write(path: &Path, head: &Head) -> std::io::Result<()> {
    let mut temporary = path.as_os_str().to_owned();
    // Several servers may share one file: each writes its own temporary file.
    temporary.push(format!(".{}.tmp", std::process::id()));
    let temporary = PathBuf::from(temporary);
    let mut file = std::fs::File::create(&temporary)?;
    writeln!(file, "{}:{}", head.seq, head.hash)?;
    file.sync_all()?;
    std::fs::rename(&temporary, path)
}
