//! The SQLite event store, [`SqliteStore`]: the embedded default engine.
//!
//! One table, one global gapless `seq`, `UNIQUE(stream, version)`, triggers that
//! refuse UPDATE, DELETE and any insert that does not extend the chain. All writes go through one writer thread that takes
//! whatever appends are queued and commits them in one transaction (group commit).
//! Every check that may refuse an append (expected versions, a used idempotency
//! key) runs before the append writes anything, so one refused batch fails alone
//! without a savepoint per batch.
//! `synchronous=FULL` in WAL mode: an append is acknowledged only after the WAL
//! frame holding its commit is fsynced. Record time never decreases along the log
//! (a commit is stamped no earlier than the head). Reads use their own,
//! memory-mapped connections and never wait for the writer.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, Row, TransactionBehavior};
use rusqlite_migration::{Migrations, M};
use serde_json::Value;
use uuid::Uuid;

use crate::chain;
use crate::envelope::{format_timestamp, AppendBatch, EventRef, Head, RecordedEvent};
use crate::store::{
    self, ChainCheck, CommitHook, Follower, GroupCommit, GroupDone, GroupFailure, IdempotencyKey,
    IdempotentResult, KeyVisitor, PendingAppend, Queue, RawVisitor, Request, Snapshot, Staged,
    Store, StoredKey, StreamSnapshot, Until, Verification, Writer,
};
use crate::tree::{self, NodeKey, TreeTx};
use crate::{Clock, Error, Result};

/// Numbered migrations, applied at open, never edited once released.
const MIGRATIONS: &[&str] = &[
    // 1: the log, append-only by trigger.
    "CREATE TABLE events (
        seq          INTEGER PRIMARY KEY,
        id           TEXT    NOT NULL UNIQUE,
        stream       TEXT    NOT NULL,
        version      INTEGER NOT NULL,
        type         TEXT    NOT NULL,
        schema       INTEGER NOT NULL,
        data         TEXT    NOT NULL,
        actor        TEXT    NOT NULL,
        role         TEXT    NOT NULL,
        recorded_at  TEXT    NOT NULL,
        correlation  TEXT,
        prev_hash    TEXT    NOT NULL,
        hash         TEXT    NOT NULL,
        UNIQUE (stream, version)
    );
    CREATE INDEX events_recorded_at ON events (recorded_at);
    CREATE TRIGGER events_no_update BEFORE UPDATE ON events
    BEGIN SELECT RAISE(ABORT, 'the event log is append-only: UPDATE refused'); END;
    CREATE TRIGGER events_no_delete BEFORE DELETE ON events
    BEGIN SELECT RAISE(ABORT, 'the event log is append-only: DELETE refused'); END;",
    // 2: idempotency keys of write requests, committed with the events they made.
    "CREATE TABLE idempotency (
        key            TEXT    PRIMARY KEY,
        request_sha256 TEXT    NOT NULL,
        first_seq      INTEGER NOT NULL,
        last_seq       INTEGER NOT NULL
    );",
    // 3: `INSERT OR REPLACE` deletes the row it collides with without firing the
    // DELETE trigger (SQLite fires delete triggers on REPLACE only with
    // `recursive_triggers`, a per-connection setting the intruder controls). So an
    // insert must take the next seq, its stream's next version and a fresh id, and
    // link to the current head: nothing else can collide with an existing row.
    "CREATE TRIGGER events_append_only BEFORE INSERT ON events
    WHEN NEW.seq IS NOT (SELECT COALESCE(MAX(seq), 0) + 1 FROM events)
      OR NEW.version IS NOT (SELECT COALESCE(MAX(version), 0) + 1 FROM events
                             WHERE stream = NEW.stream)
      OR NEW.prev_hash IS NOT COALESCE((SELECT hash FROM events ORDER BY seq DESC LIMIT 1),
                                       '0000000000000000000000000000000000000000000000000000000000000000')
      OR EXISTS (SELECT 1 FROM events WHERE id = NEW.id)
    BEGIN SELECT RAISE(ABORT, 'the event log is append-only: an insert must take the next seq, \
the next version of its stream and link to the head'); END;",
    // 4: the log as a Merkle tree (DESIGN.md §9): one row per complete subtree,
    // written with the events; an existing log's nodes are built at open.
    "CREATE TABLE tree_nodes (
        level INTEGER NOT NULL,
        idx   INTEGER NOT NULL,
        hash  BLOB    NOT NULL,
        PRIMARY KEY (level, idx)
    ) WITHOUT ROWID;
    CREATE TRIGGER tree_nodes_no_update BEFORE UPDATE ON tree_nodes
    BEGIN SELECT RAISE(ABORT, 'the Merkle tree is append-only: UPDATE refused'); END;
    CREATE TRIGGER tree_nodes_no_delete BEFORE DELETE ON tree_nodes
    BEGIN SELECT RAISE(ABORT, 'the Merkle tree is append-only: DELETE refused'); END;",
    // 5: web sessions, beside the log and not in it (rows are deleted when a
    // session ends): the SHA-256 of the session's secret, never the secret.
    "CREATE TABLE web_sessions (
        secret_sha256 TEXT    PRIMARY KEY,
        username      TEXT    NOT NULL,
        created_at    INTEGER NOT NULL,
        last_seen     INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX web_sessions_last_seen ON web_sessions (last_seen);",
    // 6: snapshots of read models, to start without folding the whole log. Not
    // part of the log: replaced and discarded freely, checked before use. The
    // bytes go in parts, each written in a transaction of its own; the header
    // row, written last, makes a snapshot visible.
    "CREATE TABLE snapshots (
        name     TEXT    NOT NULL,
        seq      INTEGER NOT NULL,
        hash     TEXT    NOT NULL,
        schema   INTEGER NOT NULL,
        taken_at TEXT    NOT NULL,
        parts    INTEGER NOT NULL,
        PRIMARY KEY (name, seq)
    );
    CREATE TABLE snapshot_parts (
        name TEXT    NOT NULL,
        seq  INTEGER NOT NULL,
        part INTEGER NOT NULL,
        data BLOB    NOT NULL,
        PRIMARY KEY (name, seq, part)
    );",
    // 7: the folded state of a stream at some of its versions, for time travel.
    // Disposable like `snapshots` (no trigger protects it): a row names the seq
    // and chain hash of the event at its version, and is checked before use.
    "CREATE TABLE stream_snapshots (
        stream  TEXT    NOT NULL,
        version INTEGER NOT NULL,
        seq     INTEGER NOT NULL,
        hash    TEXT    NOT NULL,
        schema  INTEGER NOT NULL,
        data    BLOB    NOT NULL,
        PRIMARY KEY (stream, version)
    );
    CREATE INDEX stream_snapshots_seq ON stream_snapshots (stream, seq);",
];

/// The triggers that keep the log append-only; `verify` reports any that is gone.
const TRIGGERS: &[&str] = &["events_no_update", "events_no_delete", "events_append_only"];

const SELECT_EVENT: &str = "SELECT seq, id, stream, version, type, schema, data, actor, role, \
     recorded_at, correlation, prev_hash, hash FROM events";
const INSERT_EVENT: &str = "INSERT INTO events (seq, id, stream, version, type, schema, data, \
     actor, role, recorded_at, correlation, prev_hash, hash) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)";
const STREAM_VERSION: &str = "SELECT COALESCE(MAX(version), 0) FROM events WHERE stream = ?1";
const HEAD: &str = "SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1";
const HEAD_AND_TIME: &str = "SELECT seq, hash, recorded_at FROM events ORDER BY seq DESC LIMIT 1";
const INSERT_IDEMPOTENCY: &str =
    "INSERT INTO idempotency (key, request_sha256, first_seq, last_seq) VALUES (?1, ?2, ?3, ?4)";
const KEY_USED: &str = "SELECT 1 FROM idempotency WHERE key = ?1";
const SELECT_IDEMPOTENCY: &str =
    "SELECT request_sha256, first_seq, last_seq FROM idempotency WHERE key = ?1";
/// Every key, in the order of the seqs it appended.
const SELECT_KEYS: &str =
    "SELECT key, request_sha256, first_seq, last_seq FROM idempotency ORDER BY first_seq, key";
const STORED_TILES: &str = tree::stored_tiles_sql!();
const HEAD_SEQ: &str = "SELECT COALESCE(MAX(seq), 0) FROM events";
const SELECT_NODE: &str = "SELECT hash FROM tree_nodes WHERE level = ?1 AND idx = ?2";
const INSERT_NODE: &str = "INSERT INTO tree_nodes (level, idx, hash) VALUES (?1, ?2, ?3)";
const INSERT_SESSION: &str = "INSERT INTO web_sessions (secret_sha256, username, created_at, \
     last_seen) VALUES (?1, ?2, ?3, ?3)";
const EXPIRE_SESSIONS: &str = "DELETE FROM web_sessions WHERE last_seen <= ?1";
const SELECT_SESSION: &str =
    "SELECT username, last_seen FROM web_sessions WHERE secret_sha256 = ?1";
const TOUCH_SESSION: &str = "UPDATE web_sessions SET last_seen = ?2 WHERE secret_sha256 = ?1";
const DELETE_SESSION: &str = "DELETE FROM web_sessions WHERE secret_sha256 = ?1";
const EVENT_HASHES: &str = "SELECT seq, hash FROM events WHERE seq > ?1 ORDER BY seq LIMIT ?2";
const DELETE_SNAPSHOTS: &str = "DELETE FROM snapshots WHERE name = ?1";
const DELETE_SNAPSHOT_PARTS: &str = "DELETE FROM snapshot_parts WHERE name = ?1";
/// Parts of `name` that no complete snapshot other than the one at `seq` owns:
/// what a save interrupted midway left, and an earlier save at the same seq.
const DELETE_STRAY_PARTS: &str = "DELETE FROM snapshot_parts WHERE name = ?1 \
     AND (seq = ?2 OR seq NOT IN (SELECT seq FROM snapshots WHERE name = ?1))";
const DELETE_SNAPSHOT_AT: &str = "DELETE FROM snapshots WHERE name = ?1 AND seq = ?2";
const INSERT_SNAPSHOT_PART: &str =
    "INSERT INTO snapshot_parts (name, seq, part, data) VALUES (?1, ?2, ?3, ?4)";
const INSERT_SNAPSHOT: &str = "INSERT INTO snapshots (name, seq, hash, schema, taken_at, parts) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
const DELETE_OLDER_SNAPSHOTS: &str = "DELETE FROM snapshots WHERE name = ?1 AND seq <> ?2";
const DELETE_OLDER_PARTS: &str = "DELETE FROM snapshot_parts WHERE name = ?1 AND seq <> ?2";
const LATEST_SNAPSHOT: &str = "SELECT seq, hash, schema, taken_at, parts FROM snapshots \
     WHERE name = ?1 ORDER BY seq DESC LIMIT 1";
const SNAPSHOT_PARTS: &str =
    "SELECT data FROM snapshot_parts WHERE name = ?1 AND seq = ?2 ORDER BY part";
const PUT_STREAM_SNAPSHOT: &str = "INSERT OR REPLACE INTO stream_snapshots \
     (stream, version, seq, hash, schema, data) VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
const STREAM_SNAPSHOT_AT: &str = "SELECT version, seq, hash, schema, data FROM stream_snapshots \
     WHERE stream = ?1 AND seq <= ?2 ORDER BY seq DESC LIMIT 1";

/// How many prepared statements the writer's connection keeps.
const WRITER_STATEMENTS: usize = 32;

/// The writer's page cache, in KiB (a negative `cache_size` is KiB).
const WRITER_CACHE_KIB: i64 = -32 * 1024;

struct Inner {
    path: PathBuf,
    clock: Clock,
    sender: Queue,
    writer: Mutex<Option<JoinHandle<()>>>,
    follower: Mutex<Option<Follower>>,
    // Idle read connections: a std mutex, held only to push or pop, never across I/O.
    readers: Mutex<Vec<Connection>>,
    hooks: Arc<Mutex<Vec<CommitHook>>>,
    head: tokio::sync::watch::Sender<Head>,
    /// Why the last commit failed, while the database refuses writes.
    failure: Arc<Mutex<Option<String>>>,
}

/// The SQLite event store: cheap to clone, shared by every request.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.inner.path)
            .finish()
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`, migrates it and starts
    /// the writer.
    ///
    /// # Errors
    /// [`Error::Open`] when the file cannot be used as a Traguardo database.
    pub fn open(path: impl AsRef<Path>, clock: Clock) -> Result<Self> {
        Self::open_with(path.as_ref(), clock, true)
    }

    /// Opens an existing database; a missing file is an error, not a new log.
    ///
    /// # Errors
    /// [`Error::Open`] when the file is missing or not a Traguardo database.
    pub fn open_existing(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        if !path.is_file() {
            return Err(Error::Open {
                path: path.to_path_buf(),
                message: "no such database file".into(),
            });
        }
        probe_existing(path).map_err(|message| Error::Open {
            path: path.to_path_buf(),
            message,
        })?;
        Self::open_with(path, Clock::system(), false)
    }

    fn open_with(path: &Path, clock: Clock, create: bool) -> Result<Self> {
        let open_error = |message: String| Error::Open {
            path: path.to_path_buf(),
            message,
        };
        let mut conn = open_connection(path, create).map_err(|e| open_error(describe(&e)))?;
        // SQLite opens a file it may not write read-only, without a word: a
        // server would then start and fail every write. Reading commands
        // (`open_existing`) may read a read-only copy.
        if create
            && conn
                .is_readonly(rusqlite::DatabaseName::Main)
                .map_err(|e| open_error(describe(&e)))?
        {
            return Err(open_error(
                "the database file cannot be written (a read-only file, folder or disk)".into(),
            ));
        }
        // The writer's page cache holds the hot ends of the table and its indexes
        // (SQLite's default of 2 MB makes a large import re-read them from disk).
        conn.pragma_update(None, "cache_size", WRITER_CACHE_KIB)
            .map_err(|e| open_error(describe(&e)))?;
        // The writer's statements (the multi-row INSERTs of each size among
        // them) all stay prepared.
        conn.set_prepared_statement_cache_capacity(WRITER_STATEMENTS);
        Migrations::new(MIGRATIONS.iter().map(|sql| M::up(sql)).collect())
            .to_latest(&mut conn)
            .map_err(|e| open_error(format!("schema migration failed: {e}")))?;
        let head = read_head(&conn).map_err(|e| open_error(describe(&e)))?;
        catch_up_tree(&mut conn, head.seq)
            .map_err(|e| open_error(format!("cannot build the Merkle tree: {e}")))?;
        let (head_tx, _) = tokio::sync::watch::channel(head);
        let (sender, receiver) = mpsc::channel();
        let hooks: Arc<Mutex<Vec<CommitHook>>> = Arc::default();
        let failure: Arc<Mutex<Option<String>>> = Arc::default();
        let inner = Arc::new(Inner {
            failure: failure.clone(),
            path: path.to_path_buf(),
            clock: clock.clone(),
            sender: Mutex::new(Some(sender)),
            writer: Mutex::new(None),
            follower: Mutex::new(None),
            readers: Mutex::new(Vec::new()),
            hooks: hooks.clone(),
            head: head_tx,
        });
        let head_publisher = inner.head.clone();
        let checkpoint_path = path.to_path_buf();
        let writer = std::thread::Builder::new()
            .name("traguardo-writer".into())
            .spawn(move || {
                Writer {
                    engine: SqliteWriter {
                        conn,
                        clock,
                        canonical: String::with_capacity(1024),
                        failure,
                        checkpointer: Checkpointer::start(checkpoint_path),
                        edge: tree::Edge::default(),
                    },
                    hooks,
                    head: head_publisher,
                }
                .run(receiver)
            })
            .map_err(|e| open_error(format!("cannot start the writer thread: {e}")))?;
        *inner.writer.lock().unwrap_or_else(|e| e.into_inner()) = Some(writer);
        Ok(SqliteStore { inner })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The clock that stamps record times.
    pub fn clock(&self) -> &Clock {
        &self.inner.clock
    }

    /// Registers a hook called after every commit with the committed events.
    pub fn on_commit(&self, hook: CommitHook) {
        self.inner
            .hooks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(hook);
    }

    /// A receiver of the head after every commit (for live feeds); see
    /// [`Store::watch_head`].
    pub fn watch_head(&self) -> tokio::sync::watch::Receiver<Head> {
        self.inner.head.subscribe()
    }

    /// Starts polling the head every [`store::FOLLOW_POLL`], so that the head watch
    /// also moves when another process appends to the file; see [`Store::follow`].
    ///
    /// # Errors
    /// When the polling thread cannot be started.
    pub fn follow(&self) -> Result<tokio::sync::watch::Receiver<Head>> {
        let mut follower = self
            .inner
            .follower
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if follower.is_none() {
            let path = self.inner.path.clone();
            let head = self.inner.head.clone();
            *follower = Some(Follower::start("traguardo-follow", move |stopped| {
                let mut conn = None;
                while !store::told_to_stop(&stopped, store::FOLLOW_POLL) {
                    if conn.is_none() {
                        conn = open_connection(&path, false)
                            .inspect_err(|e| tracing::warn!(error = %e, "cannot poll the head"))
                            .ok();
                    }
                    let Some(c) = &conn else { continue };
                    match read_head(c) {
                        Ok(now) => store::publish_head(&head, now),
                        Err(e) => {
                            tracing::warn!(error = %e, "cannot poll the head");
                            conn = None;
                        }
                    }
                }
            })?);
        }
        Ok(self.inner.head.subscribe())
    }

    /// Appends a batch, all or nothing; blocks until it is durable.
    /// Do not call from inside an async task: use [`SqliteStore::append_async`].
    ///
    /// # Errors
    /// [`Error::Conflict`] when a stream is not at its expected version (nothing is
    /// appended); [`Error::InvalidAppend`] for a malformed batch.
    pub fn append(&self, batch: AppendBatch) -> Result<Vec<RecordedEvent>> {
        self.append_idempotent(batch, None).wait()
    }

    /// [`SqliteStore::append`] for async callers.
    ///
    /// # Errors
    /// As [`SqliteStore::append`].
    pub fn append_async(&self, batch: AppendBatch) -> PendingAppend {
        self.append_idempotent(batch, None)
    }

    /// Appends a batch and records `key` in the same transaction, so that a retry
    /// can find what the first request appended.
    ///
    /// # Errors
    /// As [`SqliteStore::append`], and [`Error::KeyUsed`] when the key was
    /// committed by another request meanwhile.
    pub fn append_idempotent(
        &self,
        batch: AppendBatch,
        key: Option<IdempotencyKey>,
    ) -> PendingAppend {
        store::submit(&self.inner.sender, batch, key)
    }

    /// Stops accepting appends, lets the writer finish what is queued, and waits
    /// for it; stops following. Later appends fail with [`Error::WriterGone`].
    pub fn shutdown(&self) {
        self.inner
            .sender
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let writer = self
            .inner
            .writer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(writer) = writer {
            let _ = writer.join();
        }
        let follower = self
            .inner
            .follower
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(follower) = follower {
            follower.stop();
        }
    }

    /// Appends events recorded by another log exactly as they are; see
    /// [`Store::import_recorded`].
    ///
    /// # Errors
    /// [`Error::Import`] when they do not continue this log; a database error.
    pub fn import_recorded(&self, events: &[RecordedEvent]) -> Result<Head> {
        let mut conn = open_connection(&self.inner.path, false)?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut head = read_head(&tx)?;
        store::check_import(&head, events)?;
        {
            let mut insert = tx.prepare_cached(INSERT_EVENT)?;
            for event in events {
                let data = chain::canonical_value(&event.data);
                insert.execute(params![
                    event.seq,
                    event.id.hyphenated().to_string(),
                    event.stream,
                    event.version,
                    event.event_type,
                    event.schema,
                    data,
                    event.actor,
                    event.role,
                    format_timestamp(&event.recorded_at),
                    event.correlation,
                    event.prev_hash,
                    event.hash,
                ])?;
                head = Head {
                    seq: event.seq,
                    hash: event.hash.clone(),
                };
            }
        }
        tx.commit()?;
        store::publish_head(&self.inner.head, head.clone());
        Ok(head)
    }

    fn with_reader<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let pooled = self
            .inner
            .readers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop();
        let conn = match pooled {
            Some(conn) => conn,
            None => open_connection(&self.inner.path, false)?,
        };
        let result = f(&conn);
        let mut readers = self.inner.readers.lock().unwrap_or_else(|e| e.into_inner());
        if readers.len() < 16 {
            readers.push(conn);
        }
        result
    }

    /// The last event's seq and hash (seq 0 and 64 zeros when empty).
    ///
    /// # Errors
    /// When the database cannot be read.
    pub fn head(&self) -> Result<Head> {
        self.with_reader(|conn| Ok(read_head(conn)?))
    }

    /// The current version of a stream (0 when it does not exist).
    ///
    /// # Errors
    /// When the database cannot be read.
    pub fn stream_version(&self, stream: &str) -> Result<u64> {
        self.with_reader(|conn| {
            Ok(conn
                .prepare_cached(STREAM_VERSION)?
                .query_row([stream], |r| r.get(0))?)
        })
    }

    /// The events of one stream, oldest first, up to `until`.
    ///
    /// # Errors
    /// When the database cannot be read or a row is corrupt.
    pub fn read_stream(&self, stream: &str, until: Until) -> Result<Vec<RecordedEvent>> {
        let (clause, bound) = until_clause(until);
        let sql = format!("{SELECT_EVENT} WHERE stream = ?1 {clause} ORDER BY version");
        self.with_reader(|conn| {
            let mut stmt = conn.prepare_cached(&sql)?;
            let mut rows = match bound {
                Some(bound) => stmt.query(params![stream, bound])?,
                None => stmt.query(params![stream])?,
            };
            collect_events(&mut rows)
        })
    }

    /// The events of one stream from version `from` on, oldest first, up to
    /// `until`.
    ///
    /// # Errors
    /// When the database cannot be read or a row is corrupt.
    pub fn read_stream_from(
        &self,
        stream: &str,
        from: u64,
        until: Until,
    ) -> Result<Vec<RecordedEvent>> {
        self.with_stream_rows(stream, from, until, collect_events)
    }

    /// The events of every stream whose name starts with `prefix` (e.g.
    /// `objective/2022-`), in seq order, up to `until` (a version bound is ignored).
    ///
    /// # Errors
    /// When the database cannot be read or a row is corrupt.
    pub fn read_streams_with_prefix(
        &self,
        prefix: &str,
        until: Until,
    ) -> Result<Vec<RecordedEvent>> {
        let until = match until {
            Until::Version(_) => Until::End,
            other => other,
        };
        let (clause, bound) = until_clause(until);
        let upper = format!("{prefix}\u{10FFFF}");
        let sql = format!(
            "{SELECT_EVENT} WHERE stream >= ?1 AND stream < ?2 {} ORDER BY seq",
            clause.replace("?2", "?3")
        );
        self.with_reader(|conn| {
            let mut stmt = conn.prepare_cached(&sql)?;
            let mut rows = match bound {
                Some(bound) => stmt.query(params![prefix, upper, bound])?,
                None => stmt.query(params![prefix, upper])?,
            };
            collect_events(&mut rows)
        })
    }

    /// Up to `limit` events of the global log with seq greater than `after`.
    ///
    /// # Errors
    /// When the database cannot be read or a row is corrupt.
    pub fn read_all(&self, after: u64, limit: usize) -> Result<Vec<RecordedEvent>> {
        let sql = format!("{SELECT_EVENT} WHERE seq > ?1 ORDER BY seq LIMIT ?2");
        self.with_reader(|conn| {
            let mut stmt = conn.prepare_cached(&sql)?;
            let mut rows = stmt.query(params![after, limit as i64])?;
            collect_events(&mut rows)
        })
    }

    /// Calls `f` with every event after `after`, in seq order, one at a time
    /// (constant memory on any size of log), all from one read transaction: one
    /// snapshot of the log. Stops at the first error of `f`.
    ///
    /// (Events are built on this thread, from the pages of
    /// [`SqliteStore::visit_raw`]'s reader: with glibc's allocator, owned events
    /// built on a reader thread and dropped on this one made a replay three
    /// times slower.)
    ///
    /// # Errors
    /// When the database cannot be read, a row is corrupt, or `f` fails.
    pub fn for_each<E>(
        &self,
        after: u64,
        f: impl FnMut(RecordedEvent) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E>
    where
        E: From<Error>,
    {
        store::StoreExt::for_each(self, after, f)
    }

    /// Like [`SqliteStore::for_each`], but hands over each event as its envelope
    /// borrowed from the row and its data as the stored JSON text: for callers
    /// that decode it straight into domain types ([`EventRef::decode_text`]).
    ///
    /// # Errors
    /// When the database cannot be read, a row is corrupt, or `f` fails.
    pub fn for_each_raw<E>(
        &self,
        after: u64,
        f: impl FnMut(&EventRef<'_>, &str) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E>
    where
        E: From<Error>,
    {
        store::StoreExt::for_each_raw(self, after, f)
    }

    /// See [`Store::visit_raw`].
    ///
    /// The rows are read ahead on a thread of their own, which steps SQLite and
    /// copies each row's texts into a page of 512 rows; this thread hands them
    /// to `visit`. Pages go back to the reader to be filled again, so no
    /// event's memory crosses threads, and at most four wait: a replay at start
    /// reads the log and folds it on two cores at once.
    ///
    /// # Errors
    /// When the database cannot be read or a row is corrupt.
    pub fn visit_raw(&self, after: u64, visit: &mut RawVisitor<'_>) -> Result<()> {
        let path = &self.inner.path;
        std::thread::scope(|scope| {
            let (filled, pages) = mpsc::sync_channel::<Result<Page>>(PAGES_AHEAD);
            let (to_refill, spare) = mpsc::channel::<Page>();
            scope.spawn(move || {
                if let Err(e) = read_ahead(path, after, &filled, &spare) {
                    // Nobody hears it when the visitor already broke off.
                    let _ = filled.send(Err(e));
                }
            });
            for page in pages {
                let page = page?;
                if page.visit(visit).is_break() {
                    // Dropping `pages` stops the reader at its next page.
                    return Ok(());
                }
                // The reader may be done and gone: the page is then dropped.
                let _ = to_refill.send(page);
            }
            Ok(())
        })
    }

    /// See [`Store::visit_stream_raw`].
    ///
    /// # Errors
    /// When the database cannot be read or a row is corrupt.
    pub fn visit_stream_raw(
        &self,
        stream: &str,
        from: u64,
        until: Until,
        visit: &mut RawVisitor<'_>,
    ) -> Result<()> {
        self.with_stream_rows(stream, from, until, |rows| visit_rows(rows, visit))
    }

    /// `f` of the rows of one stream from version `from` on, up to `until`, in
    /// version order.
    fn with_stream_rows<T>(
        &self,
        stream: &str,
        from: u64,
        until: Until,
        f: impl FnOnce(&mut rusqlite::Rows<'_>) -> Result<T>,
    ) -> Result<T> {
        let (clause, bound) = until_clause(until);
        let sql =
            format!("{SELECT_EVENT} WHERE stream = ?1 AND version >= ?3 {clause} ORDER BY version");
        let from = i64::try_from(from).unwrap_or(i64::MAX);
        self.with_reader(|conn| {
            let mut stmt = conn.prepare_cached(&sql)?;
            let mut rows = match bound {
                Some(bound) => stmt.query(params![stream, bound, from])?,
                // No bound: ?2 is not in the statement, but numbered after it.
                None => stmt.query(params![stream, rusqlite::types::Null, from])?,
            };
            f(&mut rows)
        })
    }

    /// The last seq recorded at or before `at` (0 when none).
    ///
    /// # Errors
    /// When the database cannot be read.
    pub fn seq_at(&self, at: DateTime<Utc>) -> Result<u64> {
        self.with_reader(|conn| {
            Ok(conn
                // Record times never decrease along the log (the writer sees to
                // it), so the last event at or before `at` is one index seek.
                .prepare_cached(
                    "SELECT COALESCE((SELECT seq FROM events WHERE recorded_at <= ?1 \
                     ORDER BY recorded_at DESC, seq DESC LIMIT 1), 0)",
                )?
                .query_row([format_timestamp(&at)], |r| r.get(0))?)
        })
    }

    /// What an idempotency key was first used for, if it was.
    ///
    /// # Errors
    /// When the database cannot be read.
    pub fn idempotent_result(&self, key: &str) -> Result<Option<IdempotentResult>> {
        self.with_reader(|conn| {
            Ok(conn
                .prepare_cached(SELECT_IDEMPOTENCY)?
                .query_row([key], |r| {
                    Ok(IdempotentResult {
                        request_sha256: r.get(0)?,
                        first_seq: r.get(1)?,
                        last_seq: r.get(2)?,
                    })
                })
                .optional()?)
        })
    }

    /// Calls `visit` with every stored idempotency key; see [`Store::visit_keys`].
    ///
    /// # Errors
    /// When the database cannot be read, or `visit` fails.
    pub fn visit_keys(&self, visit: &mut KeyVisitor<'_>) -> Result<()> {
        self.with_reader(|conn| {
            let mut statement = conn.prepare_cached(SELECT_KEYS)?;
            let mut rows = statement.query([])?;
            while let Some(row) = rows.next()? {
                visit(StoredKey {
                    key: row.get(0)?,
                    result: IdempotentResult {
                        request_sha256: row.get(1)?,
                        first_seq: row.get(2)?,
                        last_seq: row.get(3)?,
                    },
                })?;
            }
            Ok(())
        })
    }

    /// Records keys used on another log; see [`Store::import_keys`].
    ///
    /// # Errors
    /// [`Error::Import`], [`Error::KeyUsed`], or a database error.
    pub fn import_keys(&self, keys: &[StoredKey]) -> Result<()> {
        let mut conn = open_connection(&self.inner.path, false)?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        store::check_import_keys(&read_head(&tx)?, keys)?;
        {
            let mut used = tx.prepare_cached(KEY_USED)?;
            let mut insert = tx.prepare_cached(INSERT_IDEMPOTENCY)?;
            for stored in keys {
                if used.exists([&stored.key])? {
                    return Err(Error::KeyUsed(stored.key.clone()));
                }
                insert.execute(params![
                    stored.key,
                    stored.result.request_sha256,
                    stored.result.first_seq,
                    stored.result.last_seq,
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Recomputes the whole chain from seq 1 and checks each published head in
    /// `expect` against it.
    ///
    /// # Errors
    /// When the database cannot be read at all (a broken chain is not an error: it
    /// is reported in the [`Verification`]).
    pub fn verify(&self, expect: &[Head]) -> Result<Verification> {
        let conn = open_connection(&self.inner.path, false)?;
        let mut triggers = 0;
        for name in TRIGGERS {
            triggers += conn.query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'trigger' AND name = ?1",
                [name],
                |r| r.get::<_, i64>(0),
            )?;
        }
        let mut check = ChainCheck::new(expect, triggers == TRIGGERS.len() as i64);
        let mut stmt = conn.prepare(&format!("{SELECT_EVENT} ORDER BY seq"))?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let seq: u64 = row.get(0)?;
            if check.next(seq, event_from_row(row)).is_break() {
                break;
            }
        }
        Ok(check.finish())
    }
}

impl Store for SqliteStore {
    fn location(&self) -> String {
        self.inner.path.display().to_string()
    }

    fn clock(&self) -> &Clock {
        SqliteStore::clock(self)
    }

    fn on_commit(&self, hook: CommitHook) {
        SqliteStore::on_commit(self, hook)
    }

    fn watch_head(&self) -> tokio::sync::watch::Receiver<Head> {
        SqliteStore::watch_head(self)
    }

    fn follow(&self) -> Result<tokio::sync::watch::Receiver<Head>> {
        SqliteStore::follow(self)
    }

    fn append_idempotent(&self, batch: AppendBatch, key: Option<IdempotencyKey>) -> PendingAppend {
        SqliteStore::append_idempotent(self, batch, key)
    }

    fn head(&self) -> Result<Head> {
        SqliteStore::head(self)
    }

    fn stream_version(&self, stream: &str) -> Result<u64> {
        SqliteStore::stream_version(self, stream)
    }

    fn read_stream(&self, stream: &str, until: Until) -> Result<Vec<RecordedEvent>> {
        SqliteStore::read_stream(self, stream, until)
    }

    fn read_stream_from(
        &self,
        stream: &str,
        from: u64,
        until: Until,
    ) -> Result<Vec<RecordedEvent>> {
        SqliteStore::read_stream_from(self, stream, from, until)
    }

    fn visit_stream_raw(
        &self,
        stream: &str,
        from: u64,
        until: Until,
        visit: &mut RawVisitor<'_>,
    ) -> Result<()> {
        SqliteStore::visit_stream_raw(self, stream, from, until, visit)
    }

    fn read_streams_with_prefix(&self, prefix: &str, until: Until) -> Result<Vec<RecordedEvent>> {
        SqliteStore::read_streams_with_prefix(self, prefix, until)
    }

    fn read_all(&self, after: u64, limit: usize) -> Result<Vec<RecordedEvent>> {
        SqliteStore::read_all(self, after, limit)
    }

    fn visit_raw(&self, after: u64, visit: &mut RawVisitor<'_>) -> Result<()> {
        SqliteStore::visit_raw(self, after, visit)
    }

    fn seq_at(&self, at: DateTime<Utc>) -> Result<u64> {
        SqliteStore::seq_at(self, at)
    }

    fn idempotent_result(&self, key: &str) -> Result<Option<IdempotentResult>> {
        SqliteStore::idempotent_result(self, key)
    }

    fn verify(&self, expect: &[Head]) -> Result<Verification> {
        SqliteStore::verify(self, expect)
    }

    fn tree_root(&self, size: u64) -> Result<traguardo_tlog::Hash> {
        self.with_reader(|conn| tree::root(&mut SqliteTree(conn), size))
    }

    fn inclusion_proof(&self, seq: u64, size: u64) -> Result<Vec<traguardo_tlog::Hash>> {
        self.with_reader(|conn| tree::inclusion_proof(&mut SqliteTree(conn), seq, size))
    }

    fn consistency_proof(&self, from: u64, to: u64) -> Result<Vec<traguardo_tlog::Hash>> {
        self.with_reader(|conn| tree::consistency_proof(&mut SqliteTree(conn), from, to))
    }

    fn import_recorded(&self, events: &[RecordedEvent]) -> Result<Head> {
        SqliteStore::import_recorded(self, events)
    }

    fn open_session(&self, secret_sha256: &str, username: &str, now: i64, idle: i64) -> Result<()> {
        self.with_reader(|conn| {
            conn.prepare_cached(EXPIRE_SESSIONS)?
                .execute([now - idle])?;
            conn.prepare_cached(INSERT_SESSION)?
                .execute(params![secret_sha256, username, now])?;
            Ok(())
        })
    }

    fn session(&self, secret_sha256: &str, now: i64, idle: i64) -> Result<Option<String>> {
        self.with_reader(|conn| {
            let found: Option<(String, i64)> = conn
                .prepare_cached(SELECT_SESSION)?
                .query_row([secret_sha256], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            let Some((username, last_seen)) = found else {
                return Ok(None);
            };
            match store::session_fate(last_seen, now, idle) {
                store::SessionFate::Expired => {
                    conn.prepare_cached(DELETE_SESSION)?
                        .execute([secret_sha256])?;
                    Ok(None)
                }
                store::SessionFate::Touch => {
                    conn.prepare_cached(TOUCH_SESSION)?
                        .execute(params![secret_sha256, now])?;
                    Ok(Some(username))
                }
                store::SessionFate::Alive => Ok(Some(username)),
            }
        })
    }

    fn close_session(&self, secret_sha256: &str) -> Result<()> {
        self.with_reader(|conn| {
            conn.prepare_cached(DELETE_SESSION)?
                .execute([secret_sha256])?;
            Ok(())
        })
    }

    fn visit_keys(&self, visit: &mut KeyVisitor<'_>) -> Result<()> {
        SqliteStore::visit_keys(self, visit)
    }

    fn import_keys(&self, keys: &[StoredKey]) -> Result<()> {
        SqliteStore::import_keys(self, keys)
    }

    fn shutdown(&self) {
        SqliteStore::shutdown(self)
    }

    fn save_snapshot(&self, snapshot: &Snapshot) -> Result<()> {
        self.with_reader(|conn| {
            let (name, seq) = (&snapshot.name, snapshot.seq);
            {
                let tx =
                    rusqlite::Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?;
                tx.execute(DELETE_SNAPSHOT_AT, params![name, seq])?;
                tx.execute(DELETE_STRAY_PARTS, params![name, seq])?;
                tx.commit()?;
            }
            // One short transaction per part: the store's writer waits at most
            // for one of them, never for the whole snapshot.
            let mut parts = 0u32;
            for (i, part) in snapshot.data.chunks(store::SNAPSHOT_PART_BYTES).enumerate() {
                conn.prepare_cached(INSERT_SNAPSHOT_PART)?
                    .execute(params![name, seq, i as i64, part])?;
                parts += 1;
            }
            let tx = rusqlite::Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?;
            tx.execute(
                INSERT_SNAPSHOT,
                params![
                    name,
                    seq,
                    snapshot.hash,
                    snapshot.schema,
                    format_timestamp(&snapshot.taken_at),
                    parts,
                ],
            )?;
            tx.execute(DELETE_OLDER_SNAPSHOTS, params![name, seq])?;
            tx.execute(DELETE_OLDER_PARTS, params![name, seq])?;
            tx.commit()?;
            Ok(())
        })
    }

    fn read_snapshot(
        &self,
        name: &str,
        wanted: &mut dyn FnMut(&Snapshot) -> bool,
        part: &mut dyn FnMut(&[u8]),
    ) -> Result<Option<Snapshot>> {
        self.with_reader(|conn| {
            // One read transaction: the parts are those of the row read first,
            // even while another process saves a newer snapshot.
            let tx = rusqlite::Transaction::new_unchecked(conn, TransactionBehavior::Deferred)?;
            let row = tx
                .prepare_cached(LATEST_SNAPSHOT)?
                .query_row([name], |r| {
                    Ok((
                        r.get::<_, u64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, u32>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, u32>(4)?,
                    ))
                })
                .optional()?;
            let Some((seq, hash, schema, taken_at, parts)) = row else {
                return Ok(None);
            };
            let broken = |message: String| Error::Snapshot {
                name: name.to_string(),
                seq,
                message,
            };
            let head = Snapshot {
                name: name.to_string(),
                seq,
                hash,
                schema,
                taken_at: parse_timestamp(taken_at.as_bytes()).map_err(broken)?,
                data: Vec::new(),
            };
            if !wanted(&head) {
                return Ok(Some(head));
            }
            let mut found = 0u32;
            let mut statement = tx.prepare_cached(SNAPSHOT_PARTS)?;
            let mut rows = statement.query(params![name, seq])?;
            while let Some(row) = rows.next()? {
                part(
                    row.get_ref(0)?
                        .as_blob()
                        .map_err(|e| broken(format!("part {found}: {e}")))?,
                );
                found += 1;
            }
            if found != parts {
                return Err(broken(format!("{found} parts of {parts}")));
            }
            Ok(Some(head))
        })
    }

    fn discard_snapshots(&self, name: &str) -> Result<()> {
        self.with_reader(|conn| {
            let tx = rusqlite::Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?;
            tx.execute(DELETE_SNAPSHOTS, [name])?;
            tx.execute(DELETE_SNAPSHOT_PARTS, [name])?;
            tx.commit()?;
            Ok(())
        })
    }

    fn put_stream_snapshots(&self, snapshots: &[StreamSnapshot]) -> Result<()> {
        if snapshots.is_empty() {
            return Ok(());
        }
        self.with_reader(|conn| {
            let tx = rusqlite::Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?;
            {
                let mut insert = tx.prepare_cached(PUT_STREAM_SNAPSHOT)?;
                for s in snapshots {
                    insert.execute(params![
                        s.stream,
                        i64::try_from(s.version).unwrap_or(i64::MAX),
                        i64::try_from(s.seq).unwrap_or(i64::MAX),
                        s.hash,
                        s.schema,
                        s.data,
                    ])?;
                }
            }
            tx.commit()?;
            Ok(())
        })
    }

    fn stream_snapshot_at(&self, stream: &str, seq: u64) -> Result<Option<StreamSnapshot>> {
        let seq = i64::try_from(seq).unwrap_or(i64::MAX);
        self.with_reader(|conn| {
            Ok(conn
                .prepare_cached(STREAM_SNAPSHOT_AT)?
                .query_row(params![stream, seq], |r| {
                    Ok(StreamSnapshot {
                        stream: stream.to_string(),
                        version: r.get(0)?,
                        seq: r.get(1)?,
                        hash: r.get(2)?,
                        schema: r.get(3)?,
                        data: r.get(4)?,
                    })
                })
                .optional()?)
        })
    }

    fn write_failure(&self) -> Option<String> {
        self.inner
            .failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.sender.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(writer) = self.writer.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = writer.join();
        }
        if let Some(follower) = self
            .follower
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            follower.stop();
        }
    }
}

/// The SQLite side of group commit: the writer's connection.
struct SqliteWriter {
    conn: Connection,
    clock: Clock,
    /// Reused for each event's canonical form.
    canonical: String,
    /// Why the last commit failed, while the database refuses writes.
    failure: Arc<Mutex<Option<String>>>,
    /// Copies the WAL into the database file, beside the writer.
    checkpointer: Checkpointer,
    /// The tree's right edge as this writer last committed it.
    edge: tree::Edge,
}

/// After this many events the writer asks for a checkpoint of the WAL at once;
/// fewer are checkpointed when it has been idle for [`store::WRITER_IDLE`].
const CHECKPOINT_EVERY_EVENTS: u64 = 1_000;

/// A thread with its own connection that copies the WAL's committed pages into
/// the database file (`PASSIVE`: it never waits for readers, nor the writer for
/// it; what a reader still needs is copied next time) when the writer asks.
/// Until then, acknowledged events live only in the `-wal` file, and a lost
/// `-wal` file would lose them. It used to run on the writer's thread, after
/// every 1,000 events: each append that crossed the mark waited for the copy
/// and its fsync of the database file.
struct Checkpointer {
    signal: Option<mpsc::SyncSender<()>>,
    thread: Option<JoinHandle<()>>,
    /// Events committed since the WAL was last wholly copied.
    uncheckpointed: Arc<std::sync::atomic::AtomicU64>,
}

impl Checkpointer {
    fn start(path: PathBuf) -> Self {
        use std::sync::atomic::Ordering;
        let (signal, asked) = mpsc::sync_channel::<()>(1);
        let uncheckpointed = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let pending = uncheckpointed.clone();
        let thread = std::thread::Builder::new()
            .name("traguardo-checkpoint".into())
            .spawn(move || {
                let mut conn: Option<Connection> = None;
                while asked.recv().is_ok() {
                    if conn.is_none() {
                        conn = open_connection(&path, false)
                            .inspect_err(
                                |e| tracing::warn!(error = %e, "cannot checkpoint the WAL"),
                            )
                            .ok();
                    }
                    let Some(c) = &conn else { continue };
                    let seen = pending.load(Ordering::Acquire);
                    let done = c.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                        Ok((
                            r.get::<_, i64>(0)?,
                            r.get::<_, i64>(1)?,
                            r.get::<_, i64>(2)?,
                        ))
                    });
                    match done {
                        // Not busy, and every frame of the WAL is in the file.
                        Ok((0, log, copied)) if copied >= log => {
                            pending.fetch_sub(seen, Ordering::AcqRel);
                        }
                        Ok(_) => {}
                        Err(e) => {
                            tracing::warn!(error = %e, "cannot checkpoint the WAL");
                            conn = None;
                        }
                    }
                }
            })
            .inspect_err(|e| tracing::warn!(error = %e, "cannot start the checkpoint thread"))
            .ok();
        Checkpointer {
            signal: thread.as_ref().map(|_| signal),
            thread,
            uncheckpointed,
        }
    }

    /// Counts `events` committed; asks for a checkpoint past the mark.
    fn committed(&self, events: u64) {
        use std::sync::atomic::Ordering;
        let now = self.uncheckpointed.fetch_add(events, Ordering::AcqRel) + events;
        if now >= CHECKPOINT_EVERY_EVENTS {
            self.ask();
        }
    }

    /// Asks for a checkpoint if anything is left to copy.
    fn idle(&self) {
        if self
            .uncheckpointed
            .load(std::sync::atomic::Ordering::Acquire)
            > 0
        {
            self.ask();
        }
    }

    fn ask(&self) {
        // Full: one is asked for already, and will see these events too.
        if let Some(signal) = &self.signal {
            let _ = signal.try_send(());
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.signal.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl SqliteWriter {
    fn note_outcome(&self, outcome: &std::result::Result<GroupDone, GroupFailure>) {
        let mut failure = self.failure.lock().unwrap_or_else(|e| e.into_inner());
        match outcome {
            Ok(_) => *failure = None,
            Err((e, _)) if e.unwritable().is_some() => *failure = Some(describe(e)),
            Err(_) => {}
        }
    }
}

impl GroupCommit for SqliteWriter {
    fn describe(&self, e: &Error) -> String {
        describe(e)
    }

    fn idle(&mut self) {
        self.checkpointer.idle();
    }

    fn try_commit_group(
        &mut self,
        group: &[Request],
    ) -> std::result::Result<GroupDone, GroupFailure> {
        let outcome = self.commit_group_once(group);
        self.note_outcome(&outcome);
        if let Ok((_, events)) = &outcome {
            self.checkpointer.committed(events.len() as u64);
        }
        outcome
    }
}

impl SqliteWriter {
    /// One group in one transaction: the head and its record time (one
    /// query); for each append its checks, against stream versions read once
    /// per stream and kept for the rest of the group, then its chain (computed
    /// in memory) and its idempotency key; then every event of the group in
    /// multi-row INSERTs, and the tree's new nodes from the right edge kept
    /// since the last commit, also in multi-row INSERTs; COMMIT.
    fn commit_group_once(
        &mut self,
        group: &[Request],
    ) -> std::result::Result<GroupDone, GroupFailure> {
        let whole = |e: rusqlite::Error| (Error::from(e), None);
        // Whatever happens, the edge is kept only if this group commits.
        let edge = std::mem::take(&mut self.edge);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(whole)?;
        // Read the head inside the write lock: another process may have appended.
        let (mut head, last_at) = read_head_and_time(&tx).map_err(whole)?;
        let tree_size = head.seq;
        // Record time never goes backwards along the log, even if the clock does
        // (an NTP step, a second process with a skewed clock): so `as_of` finds
        // its seq with one index lookup, and a later seq is never "earlier".
        let now = match last_at {
            Some(last) => self.clock.now().max(last),
            None => self.clock.now(),
        };
        let now_text = format_timestamp(&now);
        let mut staged = Vec::with_capacity(group.len());
        let mut all = Vec::new();
        let mut rows = Rows::default();
        let mut versions = Versions::default();
        for (i, request) in group.iter().enumerate() {
            let at = |e: Error| (e, Some(i));
            if let Err(refused) = check(&tx, &mut versions, request).map_err(|e| at(e.into()))? {
                staged.push(Staged::Refused(refused));
                continue;
            }
            let start = all.len();
            let mut appending = Appending {
                conn: &tx,
                head: &mut head,
                now,
                now_text: &now_text,
                canonical: &mut self.canonical,
                versions: &mut versions,
            };
            appending
                .append(i, request, &mut all, &mut rows)
                .map_err(at)?;
            staged.push(Staged::Appended(start..all.len()));
        }
        if all.is_empty() {
            // Every append was refused: nothing written, nothing to keep.
            tx.commit().map_err(whole)?;
            self.edge = edge;
            return Ok((staged, all));
        }
        insert_events(&tx, group, &all, &rows, &now_text)?;
        // The tree's nodes go in the same transaction. A failure here is the
        // database's: blame the last append, so the group is retried one by one.
        let last = staged.len().saturating_sub(1);
        let grown = tree::catch_up(&mut SqliteTree(&tx), tree_size)
            .and_then(|_| {
                let leaves = all
                    .iter()
                    .map(|e| tree::leaf(e.seq, &e.hash))
                    .collect::<Result<Vec<_>>>()?;
                let (nodes, grown) = tree::grow(&mut SqliteTree(&tx), &edge, tree_size, &leaves)?;
                insert_nodes(&tx, &nodes)?;
                Ok(grown)
            })
            .map_err(|e| (e, Some(last)))?;
        tx.commit().map_err(whole)?;
        self.edge = grown;
        Ok((staged, all))
    }
}

/// What the events of a group need for their rows beyond what their
/// [`RecordedEvent`] and their request hold: the canonical data, and which
/// request each came from (request index, event index), in group order.
#[derive(Default)]
struct Rows {
    data: Vec<String>,
    from: Vec<(usize, usize)>,
}

/// How many rows one INSERT writes at most, and the smaller statements a rest
/// is written with: a group of 1,000 events is 3 statements of 256 rows, 3 of
/// 64, two of 16 and two of 4, where it was 1,000 statements of one row. Each
/// size is one prepared statement, cached by the connection. Fewer statements
/// copy fewer pages to SQLite's statement journal (each statement copies every
/// page it is the first to touch, and the `RAISE(ABORT)` triggers make every
/// INSERT keep one): 256 rows of 13 values stay far below SQLite's 32,766
/// parameters.
const ROWS_PER_INSERT: [usize; 5] = [256, 64, 16, 4, 1];

/// `INSERT INTO … VALUES (?, …), (?, …)…` for `rows` rows of `columns` values.
fn multi_insert_sql(prefix: &str, columns: usize, rows: usize) -> String {
    let one = format!("({})", vec!["?"; columns].join(", "));
    format!("{prefix} VALUES {}", vec![one; rows].join(", "))
}

/// Writes `count` rows with as few statements as [`ROWS_PER_INSERT`] allows;
/// `bind` binds row `i` of the log's order at the 1-based parameter `at`
/// onwards and returns the next free parameter. `failed` turns an error into
/// the group's failure, given the first row of the statement that failed.
fn insert_in_chunks(
    conn: &Connection,
    prefix: &str,
    columns: usize,
    count: usize,
    mut bind: impl FnMut(&mut rusqlite::Statement<'_>, usize, usize) -> rusqlite::Result<usize>,
    mut failed: impl FnMut(rusqlite::Error, usize) -> GroupFailure,
) -> std::result::Result<(), GroupFailure> {
    let mut row = 0;
    for size in ROWS_PER_INSERT {
        if count - row < size {
            continue;
        }
        let sql = multi_insert_sql(prefix, columns, size);
        let mut statement = conn.prepare_cached(&sql).map_err(|e| failed(e, row))?;
        while count - row >= size {
            let first = row;
            let written = (|| {
                let mut at = 1;
                for i in first..first + size {
                    at = bind(&mut statement, i, at)?;
                }
                statement.raw_execute()
            })();
            written.map_err(|e| failed(e, first))?;
            row += size;
        }
    }
    Ok(())
}

const INSERT_EVENTS_PREFIX: &str = "INSERT INTO events (seq, id, stream, version, type, schema, \
     data, actor, role, recorded_at, correlation, prev_hash, hash)";
const INSERT_NODES_PREFIX: &str = "INSERT INTO tree_nodes (level, idx, hash)";

/// Inserts the group's events, in seq order. A failure is blamed on the
/// request whose event starts the failed statement (the group is then retried
/// one by one); a `UNIQUE(stream, version)` violation is reported as a
/// conflict on that event's stream.
fn insert_events(
    conn: &Connection,
    group: &[Request],
    all: &[RecordedEvent],
    rows: &Rows,
    now_text: &str,
) -> std::result::Result<(), GroupFailure> {
    let mut id_text = Uuid::encode_buffer();
    insert_in_chunks(
        conn,
        INSERT_EVENTS_PREFIX,
        13,
        all.len(),
        |statement, i, at| {
            let event = &all[i];
            let (request, index) = rows.from[i];
            let new = &group[request].batch.events[index];
            let id: &str = event.id.hyphenated().encode_lower(&mut id_text);
            statement.raw_bind_parameter(at, event.seq)?;
            statement.raw_bind_parameter(at + 1, id)?;
            statement.raw_bind_parameter(at + 2, &new.stream)?;
            statement.raw_bind_parameter(at + 3, event.version)?;
            statement.raw_bind_parameter(at + 4, &new.event_type)?;
            statement.raw_bind_parameter(at + 5, new.schema)?;
            statement.raw_bind_parameter(at + 6, &rows.data[i])?;
            statement.raw_bind_parameter(at + 7, &new.actor)?;
            statement.raw_bind_parameter(at + 8, &new.role)?;
            statement.raw_bind_parameter(at + 9, now_text)?;
            statement.raw_bind_parameter(at + 10, &new.correlation)?;
            statement.raw_bind_parameter(at + 11, &event.prev_hash)?;
            statement.raw_bind_parameter(at + 12, &event.hash)?;
            Ok(at + 13)
        },
        |e, first| {
            let (request, index) = rows.from[first];
            let stream = &group[request].batch.events[index].stream;
            (
                unique_violation_as_conflict(e, stream, all[first].version),
                Some(request),
            )
        },
    )
}

/// Inserts the tree's new nodes.
fn insert_nodes(conn: &Connection, nodes: &[traguardo_tlog::merkle::Node]) -> Result<()> {
    insert_in_chunks(
        conn,
        INSERT_NODES_PREFIX,
        3,
        nodes.len(),
        |statement, i, at| {
            let node = &nodes[i];
            statement.raw_bind_parameter(at, node.level)?;
            statement.raw_bind_parameter(at + 1, node.index)?;
            statement.raw_bind_parameter(at + 2, &node.hash[..])?;
            Ok(at + 3)
        },
        |e, _| (Error::from(e), None),
    )
    .map_err(|(e, _)| e)
}

/// The Merkle tree's nodes, read and written through one connection.
struct SqliteTree<'a>(&'a Connection);

impl TreeTx for SqliteTree<'_> {
    fn stored_tiles(&mut self) -> Result<u64> {
        Ok(self
            .0
            .prepare_cached(STORED_TILES)?
            .query_row([], |r| r.get(0))?)
    }

    fn head(&mut self) -> Result<u64> {
        Ok(self
            .0
            .prepare_cached(HEAD_SEQ)?
            .query_row([], |r| r.get(0))?)
    }

    fn fetch(
        &mut self,
        keys: &[NodeKey],
    ) -> Result<std::collections::HashMap<NodeKey, traguardo_tlog::Hash>> {
        let mut select = self.0.prepare_cached(SELECT_NODE)?;
        let mut nodes = std::collections::HashMap::with_capacity(keys.len());
        for &(level, idx) in keys {
            let hash: Option<Vec<u8>> = select
                .query_row(params![level, idx], |r| r.get(0))
                .optional()?;
            if let Some(hash) = hash.and_then(|h| <[u8; 32]>::try_from(h).ok()) {
                nodes.insert((level, idx), hash);
            }
        }
        Ok(nodes)
    }

    fn event_hashes(&mut self, after: u64, limit: usize) -> Result<Vec<(u64, String)>> {
        let mut stmt = self.0.prepare_cached(EVENT_HASHES)?;
        let rows = stmt.query_map(params![after, limit as i64], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn insert_nodes(&mut self, nodes: &[traguardo_tlog::merkle::Node]) -> Result<()> {
        let mut insert = self.0.prepare_cached(INSERT_NODE)?;
        for node in nodes {
            insert.execute(params![node.level, node.index, &node.hash[..]])?;
        }
        Ok(())
    }
}

/// Builds the tree's missing nodes for a log of `head` events (a log written
/// before the tree existed), in one write transaction.
fn catch_up_tree(conn: &mut Connection, head: u64) -> Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    // Another process may have appended since the head was read.
    let head = read_head(&tx)?.seq.max(head);
    tree::catch_up_at_open(&mut SqliteTree(&tx), head)?;
    tx.commit()?;
    Ok(())
}

/// The version of each stream a group has read or appended to, as the group's
/// transaction stands: each stream is read from the table once per group.
#[derive(Default)]
struct Versions(std::collections::HashMap<String, u64>);

impl Versions {
    fn get(&mut self, conn: &Connection, stream: &str) -> rusqlite::Result<u64> {
        if let Some(v) = self.0.get(stream) {
            return Ok(*v);
        }
        let v = stream_version(conn, stream)?;
        self.0.insert(stream.to_string(), v);
        Ok(v)
    }

    /// The next version of `stream`, taken.
    fn next(&mut self, conn: &Connection, stream: &str) -> rusqlite::Result<u64> {
        let next = self.get(conn, stream)? + 1;
        if let Some(v) = self.0.get_mut(stream) {
            *v = next;
        }
        Ok(next)
    }
}

/// The checks that may refuse an append, all made before it writes anything (in
/// the write transaction, against the versions and keys the appends before it
/// in the group left). The outer error is the database failing; the inner one,
/// the append refused.
fn check(
    conn: &Connection,
    versions: &mut Versions,
    request: &Request,
) -> rusqlite::Result<Result<()>> {
    for expectation in &request.batch.expectations {
        let actual = versions.get(conn, &expectation.stream)?;
        if !expectation.expected.matches(actual) {
            return Ok(Err(Error::Conflict {
                stream: expectation.stream.clone(),
                expected: expectation.expected.to_string(),
                actual,
            }));
        }
    }
    if let Some(key) = &request.idempotency {
        if conn.prepare_cached(KEY_USED)?.exists([&key.key])? {
            return Ok(Err(Error::KeyUsed(key.key.clone())));
        }
    }
    Ok(Ok(()))
}

fn stream_version(conn: &Connection, stream: &str) -> rusqlite::Result<u64> {
    conn.prepare_cached(STREAM_VERSION)?
        .query_row([stream], |r| r.get(0))
}

/// One append being staged inside a group's transaction.
struct Appending<'a> {
    conn: &'a Connection,
    head: &'a mut Head,
    now: DateTime<Utc>,
    now_text: &'a str,
    canonical: &'a mut String,
    versions: &'a mut Versions,
}

impl Appending<'_> {
    /// Chains the events of `request` (number `index` of its group) after the
    /// head, moving the head, and inserts its idempotency key (so that a later
    /// append of the group with the same key is refused). The events pushed to
    /// `out`, and their canonical data pushed to `rows`, are inserted by
    /// [`insert_events`] once the whole group is staged; they have empty
    /// strings and data: those move from the request once the transaction has
    /// committed.
    fn append(
        &mut self,
        index: usize,
        request: &Request,
        out: &mut Vec<RecordedEvent>,
        rows: &mut Rows,
    ) -> Result<()> {
        let mut id_text = Uuid::encode_buffer();
        let first = out.len();
        for (n, new) in request.batch.events.iter().enumerate() {
            let version = self.versions.next(self.conn, &new.stream)?;
            let seq = self.head.seq + 1;
            let id = Uuid::now_v7();
            let id_text: &str = id.hyphenated().encode_lower(&mut id_text);
            // The data is kept in its canonical form, rendered once for both.
            let data = chain::canonical_value(&new.data);
            self.canonical.clear();
            chain::write_canonical_event(
                self.canonical,
                &chain::Fields {
                    actor: &new.actor,
                    correlation: new.correlation.as_deref(),
                    data: &data,
                    id: id_text,
                    recorded_at: self.now_text,
                    role: &new.role,
                    schema: new.schema,
                    seq,
                    stream: &new.stream,
                    event_type: &new.event_type,
                    version,
                },
            )?;
            let hash = chain::hash_canonical(&self.head.hash, self.canonical);
            let prev_hash = std::mem::replace(&mut self.head.hash, hash.clone());
            self.head.seq = seq;
            rows.data.push(data);
            rows.from.push((index, n));
            out.push(RecordedEvent {
                seq,
                id,
                stream: String::new(),
                version,
                event_type: String::new(),
                schema: new.schema,
                data: Value::Null,
                actor: String::new(),
                role: String::new(),
                recorded_at: self.now,
                correlation: None,
                prev_hash,
                hash,
            });
        }
        if let (Some(key), Some(first), Some(last)) =
            (&request.idempotency, out.get(first), out.last())
        {
            self.conn
                .prepare_cached(INSERT_IDEMPOTENCY)?
                .execute(params![key.key, key.request_sha256, first.seq, last.seq])?;
        }
        Ok(())
    }
}

/// The extended result code of a constraint violation, if `e` is one.
fn constraint_code(e: &rusqlite::Error) -> Option<i32> {
    match e {
        rusqlite::Error::SqliteFailure(f, _)
            if f.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            Some(f.extended_code)
        }
        _ => None,
    }
}

/// A `UNIQUE(stream, version)` violation means someone else took the version: a
/// conflict, told apart from other failures by SQLite's extended code alone.
fn unique_violation_as_conflict(e: rusqlite::Error, stream: &str, version: u64) -> Error {
    const SQLITE_CONSTRAINT_UNIQUE: i32 = 2067;
    match constraint_code(&e) {
        Some(SQLITE_CONSTRAINT_UNIQUE) => Error::Conflict {
            stream: stream.to_string(),
            expected: (version - 1).to_string(),
            actual: version,
        },
        _ => Error::Sqlite(e),
    }
}

fn until_clause(until: Until) -> (&'static str, Option<String>) {
    match until {
        Until::End => ("", None),
        Until::Version(v) => ("AND version <= ?2", Some(v.to_string())),
        Until::Seq(s) => ("AND seq <= ?2", Some(s.to_string())),
        Until::RecordedAt(t) => ("AND recorded_at <= ?2", Some(format_timestamp(&t))),
    }
}

fn open_connection(path: &Path, create: bool) -> Result<Connection> {
    let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    if create {
        flags |= OpenFlags::SQLITE_OPEN_CREATE;
    }
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    // Touch the file: a file that is not a database fails here, not later.
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if mode != "wal" {
        tracing::warn!(mode, "the database is not in WAL mode");
    }
    conn.pragma_update(None, "synchronous", "FULL")?;
    // Read the database file through a memory map rather than a read() and a copy
    // per page: a time-travel read touches one page per event of its stream.
    conn.pragma_update(None, "mmap_size", MMAP_BYTES)?;
    Ok(conn)
}

/// How much of the database file connections map into memory (1 GiB).
const MMAP_BYTES: i64 = 1 << 30;

/// Checks, before anything is written to it, that an existing file is a Traguardo
/// database: `verify` or `export` given the wrong file must say so, and must not
/// turn an empty file or another program's database into an event log.
fn probe_existing(path: &Path) -> std::result::Result<(), String> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(|e| describe(&e))?;
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(|e| describe(&e))?;
    // Reading the schema reads the header: a file that is not a database fails here.
    let tables: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'events'",
            [],
            |r| r.get(0),
        )
        .map_err(|e| describe(&e))?;
    if tables == 0 {
        return Err("not a Traguardo database (it holds no event log)".into());
    }
    Ok(())
}

/// The head and its record time (none on an empty log), in one query.
fn read_head_and_time(conn: &Connection) -> rusqlite::Result<(Head, Option<DateTime<Utc>>)> {
    let found = conn
        .prepare_cached(HEAD_AND_TIME)?
        .query_row([], |r| {
            let head = Head {
                seq: r.get(0)?,
                hash: r.get(1)?,
            };
            let at = match r.get_ref(2)? {
                rusqlite::types::ValueRef::Text(bytes) => parse_timestamp(bytes).ok(),
                _ => None,
            };
            Ok((head, at))
        })
        .optional()?;
    Ok(found.unwrap_or_else(|| (Head::genesis(), None)))
}

fn read_head(conn: &Connection) -> rusqlite::Result<Head> {
    Ok(conn
        .prepare_cached(HEAD)?
        .query_row([], |r| {
            Ok(Head {
                seq: r.get(0)?,
                hash: r.get(1)?,
            })
        })
        .optional()?
        .unwrap_or_else(Head::genesis))
}

/// Hands each row to `visit` with its data as the stored text, until it breaks off.
fn visit_rows(rows: &mut rusqlite::Rows<'_>, visit: &mut RawVisitor<'_>) -> Result<()> {
    while let Some(row) = rows.next()? {
        let event = envelope_of_row(row)?;
        if visit(&event, data_of_row(row, event.seq)?).is_break() {
            break;
        }
    }
    Ok(())
}

/// The data of the row of event `seq`, as its stored JSON text.
fn data_of_row<'r>(row: &'r Row<'_>, seq: u64) -> Result<&'r str> {
    match row.get_ref(6)? {
        rusqlite::types::ValueRef::Text(bytes) => {
            std::str::from_utf8(bytes).map_err(|e| Error::Corrupt {
                seq,
                message: format!("data: {e}"),
            })
        }
        _ => Err(Error::Corrupt {
            seq,
            message: "data is not text".into(),
        }),
    }
}

/// Pages filled ahead of the visitor by [`SqliteStore::visit_raw`]'s reader, at
/// most.
const PAGES_AHEAD: usize = 4;

/// Rows in a page, at most.
const PAGE_ROWS: usize = 512;

/// Rows read ahead by [`SqliteStore::visit_raw`]'s reader: their texts in one
/// buffer, each row's fields parsed or given as where its texts end in it.
#[derive(Default)]
struct Page {
    text: String,
    rows: Vec<PagedRow>,
}

/// One row of a [`Page`]: its texts follow the previous row's in the page's
/// buffer, in the order of [`PagedRow::ends`].
struct PagedRow {
    seq: u64,
    id: Uuid,
    version: u64,
    schema: u32,
    recorded_at: DateTime<Utc>,
    has_correlation: bool,
    /// Where the stream, type, actor, role, correlation (empty when none),
    /// previous hash, hash and data end in the page's buffer.
    ends: [usize; 8],
}

impl Page {
    /// Copies a row in, parsed and checked as [`visit_rows`] does.
    fn push(&mut self, row: &Row<'_>) -> Result<()> {
        let event = envelope_of_row(row)?;
        let data = data_of_row(row, event.seq)?;
        let texts = [
            event.stream,
            event.event_type,
            event.actor,
            event.role,
            event.correlation.unwrap_or_default(),
            event.prev_hash,
            event.hash,
            data,
        ];
        let mut ends = [0; 8];
        for (end, text) in ends.iter_mut().zip(texts) {
            self.text.push_str(text);
            *end = self.text.len();
        }
        self.rows.push(PagedRow {
            seq: event.seq,
            id: event.id,
            version: event.version,
            schema: event.schema,
            recorded_at: event.recorded_at,
            has_correlation: event.correlation.is_some(),
            ends,
        });
        Ok(())
    }

    /// Hands each row to `visit`, in order, until it breaks off.
    fn visit(&self, visit: &mut RawVisitor<'_>) -> ControlFlow<()> {
        let mut start = 0;
        for row in &self.rows {
            let [stream, event_type, actor, role, correlation, prev_hash, hash, data] =
                row.ends.map(|end| {
                    let text = &self.text[start..end];
                    start = end;
                    text
                });
            let event = EventRef {
                seq: row.seq,
                id: row.id,
                stream,
                version: row.version,
                event_type,
                schema: row.schema,
                actor,
                role,
                recorded_at: row.recorded_at,
                correlation: row.has_correlation.then_some(correlation),
                prev_hash,
                hash,
            };
            visit(&event, data)?;
        }
        ControlFlow::Continue(())
    }
}

/// The reader of [`SqliteStore::visit_raw`]: the events after `after`, in seq
/// order and all from one read transaction, copied into pages (reused from
/// `spare` when one came back) and sent to `filled` until the visitor hangs up.
fn read_ahead(
    path: &Path,
    after: u64,
    filled: &mpsc::SyncSender<Result<Page>>,
    spare: &mpsc::Receiver<Page>,
) -> Result<()> {
    let conn = open_connection(path, false)?;
    let sql = format!("{SELECT_EVENT} WHERE seq > ?1 ORDER BY seq");
    let mut stmt = conn.prepare(&sql)?;
    let mut rows = stmt.query([after])?;
    loop {
        let mut page = spare.try_recv().unwrap_or_default();
        page.text.clear();
        page.rows.clear();
        // The rows before a corrupt one are visited, then the error is told.
        let mut failed = Ok(());
        while page.rows.len() < PAGE_ROWS {
            match rows.next() {
                Ok(Some(row)) => failed = page.push(row),
                Ok(None) => break,
                Err(e) => failed = Err(e.into()),
            }
            if failed.is_err() {
                break;
            }
        }
        let last = page.rows.len() < PAGE_ROWS;
        if !page.rows.is_empty() && filled.send(Ok(page)).is_err() {
            return Ok(());
        }
        failed?;
        if last {
            return Ok(());
        }
    }
}

fn collect_events(rows: &mut rusqlite::Rows<'_>) -> Result<Vec<RecordedEvent>> {
    let mut events = Vec::new();
    while let Some(row) = rows.next()? {
        events.push(event_from_row(row)?);
    }
    Ok(events)
}

fn event_from_row(row: &Row<'_>) -> Result<RecordedEvent> {
    use rusqlite::types::ValueRef;
    let seq: u64 = row.get(0)?;
    let data = match row.get_ref(6)? {
        ValueRef::Text(bytes) => {
            serde_json::from_slice::<Value>(bytes).map_err(|e| Error::Corrupt {
                seq,
                message: format!("data: {e}"),
            })?
        }
        _ => {
            return Err(Error::Corrupt {
                seq,
                message: "data is not text".into(),
            })
        }
    };
    envelope_from_row(row, data)
}

/// The envelope of a row, with `data` given by the caller.
fn envelope_from_row(row: &Row<'_>, data: Value) -> Result<RecordedEvent> {
    Ok(envelope_of_row(row)?.to_recorded(data))
}

/// The envelope of a row, its texts borrowed from SQLite's buffers.
fn envelope_of_row<'r>(row: &'r Row<'_>) -> Result<EventRef<'r>> {
    use rusqlite::types::ValueRef;
    let seq: u64 = row.get(0)?;
    let corrupt = |message: String| Error::Corrupt { seq, message };
    let bytes = |i: usize, name: &str| match row.get_ref(i)? {
        ValueRef::Text(bytes) => Ok(bytes),
        _ => Err(corrupt(format!("{name} is not text"))),
    };
    let text = |i: usize, name: &str| {
        std::str::from_utf8(bytes(i, name)?).map_err(|e| corrupt(format!("{name}: {e}")))
    };
    let id = Uuid::try_parse_ascii(bytes(1, "id")?).map_err(|e| corrupt(format!("id: {e}")))?;
    let recorded_at = parse_timestamp(bytes(9, "recorded_at")?)
        .map_err(|e| corrupt(format!("recorded_at: {e}")))?;
    let correlation = match row.get_ref(10)? {
        ValueRef::Null => None,
        _ => Some(text(10, "correlation")?),
    };
    Ok(EventRef {
        seq,
        id,
        stream: text(2, "stream")?,
        version: row.get(3)?,
        event_type: text(4, "type")?,
        schema: row.get(5)?,
        actor: text(7, "actor")?,
        role: text(8, "role")?,
        recorded_at,
        correlation,
        prev_hash: text(11, "prev_hash")?,
        hash: text(12, "hash")?,
    })
}

/// Parses a record time: the stored form `2022-06-10T09:12:03.000000Z` directly
/// (replay reads a million of them), anything else as RFC 3339.
pub(crate) fn parse_timestamp(bytes: &[u8]) -> std::result::Result<DateTime<Utc>, String> {
    let stored = bytes.len() == 27
        && bytes[4] == b'-'
        && bytes[7] == b'-'
        && bytes[10] == b'T'
        && bytes[13] == b':'
        && bytes[16] == b':'
        && bytes[19] == b'.'
        && bytes[26] == b'Z';
    if stored {
        let number = |from: usize, to: usize| {
            bytes[from..to].iter().try_fold(0u32, |n, &b| {
                b.is_ascii_digit().then(|| n * 10 + u32::from(b - b'0'))
            })
        };
        let parsed = (|| {
            let date = chrono::NaiveDate::from_ymd_opt(
                i32::try_from(number(0, 4)?).ok()?,
                number(5, 7)?,
                number(8, 10)?,
            )?;
            let time = chrono::NaiveTime::from_hms_micro_opt(
                number(11, 13)?,
                number(14, 16)?,
                number(17, 19)?,
                number(20, 26)?,
            )?;
            Some(date.and_time(time).and_utc())
        })();
        if let Some(at) = parsed {
            return Ok(at);
        }
    }
    let text = std::str::from_utf8(bytes).map_err(|e| e.to_string())?;
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| e.to_string())
}

/// SQLite's word for an error, made plain for someone who gave the wrong file.
fn describe(e: &impl std::fmt::Display) -> String {
    let text = e.to_string();
    if text.contains("file is not a database") {
        "the file is not a SQLite database".into()
    } else if text.contains("unable to open") {
        format!("{text} (does the folder exist, and may it be written?)")
    } else {
        text
    }
}
