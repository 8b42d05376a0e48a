//! The one error type of the events crate.

use std::path::PathBuf;

/// Everything that can go wrong in the event store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A stream's version was not the one the caller expected: someone else
    /// appended first (optimistic concurrency). Becomes 409 over HTTP.
    #[error("version conflict on stream {stream}: expected {expected}, actual {actual}")]
    Conflict {
        /// The stream whose version moved.
        stream: String,
        /// What the caller expected.
        expected: String,
        /// The stream's version when the append was tried.
        actual: u64,
    },
    /// The file could not be opened as a Traguardo database.
    #[error("cannot open database {path}: {message}")]
    Open {
        /// The file that was asked for.
        path: PathBuf,
        /// Why it could not be used.
        message: String,
    },
    /// An event could not be encoded or decoded.
    #[error("event encoding: {0}")]
    Encoding(#[from] serde_json::Error),
    /// A stored snapshot row could not be read as one (its data is checked by
    /// whoever decodes it).
    #[error("unreadable snapshot {name} at seq {seq}: {message}")]
    Snapshot {
        /// Its name.
        name: String,
        /// The seq it names.
        seq: u64,
        /// What is wrong with it.
        message: String,
    },
    /// A stored event was not a valid event (bad column, unknown type).
    #[error("corrupt event at seq {seq}: {message}")]
    Corrupt {
        /// The sequence number of the bad row.
        seq: u64,
        /// What is wrong with it.
        message: String,
    },
    /// An empty batch, an empty stream name or another malformed append.
    #[error("invalid append: {0}")]
    InvalidAppend(String),
    /// An idempotency key was committed by another request meanwhile.
    #[error("idempotency key {0} was already used")]
    KeyUsed(String),
    /// The writer thread is gone (the store is shutting down).
    #[error("the event store writer has stopped")]
    WriterGone,
    /// SQLite failed.
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The schema migration failed.
    #[error("schema migration: {0}")]
    Migration(#[from] rusqlite_migration::Error),
    /// The PostgreSQL database named by a URL could not be used: a malformed URL,
    /// a refused connection, a database that is not a Traguardo log. The URL is
    /// shown without its password.
    #[error("cannot open database {url}: {message}")]
    OpenUrl {
        /// The URL that was asked for, password hidden.
        url: String,
        /// Why it could not be used.
        message: String,
    },
    /// PostgreSQL failed; the message carries the server's SQLSTATE code.
    #[error("database: {}", crate::pg::describe(.0))]
    Postgres(#[from] postgres::Error),
    /// Seq 0 names no event (seqs start at 1), so it has no inclusion proof.
    #[error("seq 0 names no event: seqs start at 1")]
    SeqZero,
    /// A root or proof the Merkle tree cannot give: a size beyond the stored
    /// tree, a leaf at or past the size, a consistency proof from a larger tree
    /// or from the empty one; or a node missing from the store (damage).
    #[error("Merkle tree: {0}")]
    Tree(traguardo_tlog::merkle::TreeError<std::convert::Infallible>),
    /// The database cannot be reached (a refused or lost connection, a server
    /// shutting down): nothing was appended, and a retry later may succeed.
    /// Becomes 503 with `Retry-After` over HTTP.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// Events copied from another log do not continue this one (the copy
    /// would fork or break the chain); nothing was written.
    #[error("cannot import: {0}")]
    Import(String),
    /// The database refuses to be written: its disk is full, or its file is
    /// read-only. Nothing was appended; a retry succeeds once space (or the
    /// permission) returns. Becomes 507 (full) or 503 (read-only) over HTTP.
    #[error("the database cannot be written ({0}): {1}")]
    Unwritable(Unwritable, String),
    /// A helper thread (writer, follower) could not be started.
    #[error("cannot start the {0} thread: {1}")]
    Thread(&'static str, #[source] std::io::Error),
}

/// Why a database refuses writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unwritable {
    /// No space left: the disk (or a quota) is full.
    Full,
    /// The file, its folder or the database is read-only.
    ReadOnly,
}

impl std::fmt::Display for Unwritable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Unwritable::Full => "disk full",
            Unwritable::ReadOnly => "read-only",
        })
    }
}

impl Error {
    /// Whether the database refused a write for want of space or of write
    /// permission, and which; told by SQLite's result code (`SQLITE_FULL`,
    /// `SQLITE_READONLY`) or PostgreSQL's SQLSTATE (`53100` disk full, `25006`
    /// read-only transaction), never by message text.
    pub fn unwritable(&self) -> Option<Unwritable> {
        match self {
            Error::Unwritable(kind, _) => Some(*kind),
            Error::Sqlite(rusqlite::Error::SqliteFailure(failure, _)) => match failure.code {
                rusqlite::ErrorCode::DiskFull => Some(Unwritable::Full),
                rusqlite::ErrorCode::ReadOnly => Some(Unwritable::ReadOnly),
                _ => None,
            },
            Error::Postgres(e) => match e.code().map(postgres::error::SqlState::code) {
                Some("53100") => Some(Unwritable::Full),
                Some("25006") => Some(Unwritable::ReadOnly),
                _ => None,
            },
            _ => None,
        }
    }

    /// Whether the database could not be reached, rather than refusing the
    /// request: a connection that failed or dropped, or a server shutting down
    /// or starting (SQLSTATE classes 08 and 57P). Told by error kind and code,
    /// never by message text.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Error::Unavailable(_) => true,
            Error::Postgres(e) => match e.code() {
                // No SQLSTATE: the client failed (connect, I/O, a closed connection).
                None => true,
                Some(code) => {
                    let code = code.code();
                    code.starts_with("08") || code.starts_with("57P")
                }
            },
            _ => false,
        }
    }
}

/// The result type of the events crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
