//! The PostgreSQL event store, [`PgStore`]: the engine for several processes
//! sharing one log (`--db postgres://…`).
//!
//! The same log as the SQLite engine, column for column and hash for hash: one
//! table, one global gapless `seq`, `UNIQUE(stream, version)`, the chain of
//! [`crate::chain`] (a log copied between engines verifies unchanged), triggers
//! refusing UPDATE, DELETE and TRUNCATE and any insert that does not extend the
//! chain, idempotency keys committed with their
//! events, numbered migrations embedded here and recorded in `schema_migrations`.
//!
//! **Order across processes.** Each store has one writer thread that commits
//! every queued append in one transaction (group commit). That transaction
//! first takes `LOCK TABLE events IN EXCLUSIVE MODE`: writers of every process
//! queue on it (readers do not), and whatever else tries to insert waits too.
//! Only then does it read the head and the stream versions, which in READ
//! COMMITTED are those of the last commit of any process. So seqs never fork
//! or gap, each append links to the true head, and record time is stamped
//! `max(now, the head's recorded_at)`: it never goes backwards along the log.
//! An append is answered only after its COMMIT returned, so with PostgreSQL's
//! default `synchronous_commit` it is durable when acknowledged.
//!
//! **Following other processes.** Each commit sends `NOTIFY traguardo_head`
//! with the new head seq; [`PgStore::follow`] LISTENs on its own connection and
//! re-reads the head on every notification and every [`store::FOLLOW_POLL`],
//! so a lost notification (a dropped connection) only delays it.
//!
//! **Driver.** The synchronous `postgres` crate (the blocking face of
//! `tokio-postgres`, same maintainers, the long-standing choice for PostgreSQL
//! in Rust). The store's interface is synchronous and its writer is a dedicated
//! thread, exactly as with rusqlite: a blocking client fits that shape with no
//! pool crate and no async plumbing, and the `Statement`s it prepares stay with
//! the writer's connection. Its one trap, that a blocking client may not run on
//! an async worker thread (it drives its own small runtime), is handled here
//! once: such a call is moved to a scoped helper thread (`off_runtime`).

use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use chrono::{DateTime, Utc};
use postgres::binary_copy::{BinaryCopyOutIter, BinaryCopyOutRow};
use postgres::error::SqlState;
use postgres::fallible_iterator::FallibleIterator;
use postgres::types::{FromSql, Type};
use postgres::{Client, Config, NoTls, Row, Statement};
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

/// Numbered migrations, applied at open in one transaction, never edited once
/// released. Migration `n` is recorded as version `n` in `schema_migrations`.
const MIGRATIONS: &[&str] = &[
    // 1: the log, append-only by trigger. `stream` compares byte by byte
    // (COLLATE "C"), so a prefix is a range of the (stream, version) index.
    r#"CREATE TABLE events (
        seq          BIGINT      PRIMARY KEY CHECK (seq > 0),
        id           UUID        NOT NULL UNIQUE,
        stream       TEXT        COLLATE "C" NOT NULL,
        version      BIGINT      NOT NULL CHECK (version > 0),
        type         TEXT        NOT NULL,
        schema       BIGINT      NOT NULL,
        data         TEXT        NOT NULL,
        actor        TEXT        NOT NULL,
        role         TEXT        NOT NULL,
        recorded_at  TIMESTAMPTZ NOT NULL,
        correlation  TEXT,
        prev_hash    TEXT        NOT NULL,
        hash         TEXT        NOT NULL,
        CONSTRAINT events_stream_version UNIQUE (stream, version)
    );
    CREATE INDEX events_recorded_at ON events (recorded_at);
    CREATE FUNCTION traguardo_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'the event log is append-only: % refused', TG_OP
            USING ERRCODE = 'integrity_constraint_violation';
    END $$;
    CREATE TRIGGER events_no_update BEFORE UPDATE ON events
        FOR EACH ROW EXECUTE FUNCTION traguardo_refuse_change();
    CREATE TRIGGER events_no_delete BEFORE DELETE ON events
        FOR EACH ROW EXECUTE FUNCTION traguardo_refuse_change();
    CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
        FOR EACH STATEMENT EXECUTE FUNCTION traguardo_refuse_change();
    -- As on SQLite: an insert must extend the chain, whoever makes it.
    CREATE FUNCTION traguardo_check_insert() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF NEW.seq IS DISTINCT FROM (SELECT COALESCE(MAX(seq), 0) + 1 FROM events)
           OR NEW.version IS DISTINCT FROM (SELECT COALESCE(MAX(version), 0) + 1
                                            FROM events WHERE stream = NEW.stream)
           OR NEW.prev_hash IS DISTINCT FROM COALESCE(
                  (SELECT hash FROM events ORDER BY seq DESC LIMIT 1), repeat('0', 64))
        THEN
            RAISE EXCEPTION 'the event log is append-only: an insert must take the next '
                'seq, the next version of its stream and link to the head'
                USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        RETURN NEW;
    END $$;
    CREATE TRIGGER events_append_only BEFORE INSERT ON events
        FOR EACH ROW EXECUTE FUNCTION traguardo_check_insert();"#,
    // 2: idempotency keys of write requests, committed with the events they made.
    "CREATE TABLE idempotency (
        key            TEXT   PRIMARY KEY,
        request_sha256 TEXT   NOT NULL,
        first_seq      BIGINT NOT NULL,
        last_seq       BIGINT NOT NULL
    );",
    // 3: the log as a Merkle tree (DESIGN.md §9): one row per complete subtree,
    // written with the events; an existing log's nodes are built at open.
    "CREATE TABLE tree_nodes (
        level SMALLINT NOT NULL CHECK (level >= 0 AND level < 64),
        idx   BIGINT   NOT NULL CHECK (idx >= 0),
        hash  BYTEA    NOT NULL CHECK (length(hash) = 32),
        PRIMARY KEY (level, idx)
    );
    CREATE TRIGGER tree_nodes_no_update BEFORE UPDATE ON tree_nodes
        FOR EACH ROW EXECUTE FUNCTION traguardo_refuse_change();
    CREATE TRIGGER tree_nodes_no_delete BEFORE DELETE ON tree_nodes
        FOR EACH ROW EXECUTE FUNCTION traguardo_refuse_change();
    CREATE TRIGGER tree_nodes_no_truncate BEFORE TRUNCATE ON tree_nodes
        FOR EACH STATEMENT EXECUTE FUNCTION traguardo_refuse_change();",
    // 4: the same checks on insert, the head's seq and hash read in one lookup
    // instead of two (the trigger runs for every row appended).
    r#"CREATE OR REPLACE FUNCTION traguardo_check_insert() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        head_seq  BIGINT;
        head_hash TEXT;
    BEGIN
        SELECT seq, hash INTO head_seq, head_hash FROM events ORDER BY seq DESC LIMIT 1;
        IF NEW.seq IS DISTINCT FROM COALESCE(head_seq, 0) + 1
           OR NEW.prev_hash IS DISTINCT FROM COALESCE(head_hash, repeat('0', 64))
           OR NEW.version IS DISTINCT FROM (SELECT COALESCE(MAX(version), 0) + 1
                                            FROM events WHERE stream = NEW.stream)
        THEN
            RAISE EXCEPTION 'the event log is append-only: an insert must take the next '
                'seq, the next version of its stream and link to the head'
                USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        RETURN NEW;
    END $$;"#,
    // 5: web sessions, beside the log and not in it (rows are deleted when a
    // session ends): the SHA-256 of the session's secret, never the secret.
    "CREATE TABLE web_sessions (
        secret_sha256 TEXT   PRIMARY KEY,
        username      TEXT   NOT NULL,
        created_at    BIGINT NOT NULL,
        last_seen     BIGINT NOT NULL
    );
    CREATE INDEX web_sessions_last_seen ON web_sessions (last_seen);",
    // 6: the same guarantee, checked once per statement over the whole batch
    // instead of once per row (a PL/pgSQL call and a head lookup each). Every
    // inserted row must link to the row one seq before it (or be seq 1 on the
    // zero hash) and take version 1 or follow its stream's previous version,
    // which must come earlier in the log. With the keys on seq, id and (stream,
    // version), the seqs stay 1..n without a gap, the chain unbroken and each
    // stream's versions 1..k in log order, as the per-row check kept them. The
    // look-ups are scalar subqueries, one index probe per row, whatever plan
    // the batch's size would otherwise suggest.
    r#"DROP TRIGGER events_append_only ON events;
    DROP FUNCTION traguardo_check_insert();
    CREATE FUNCTION traguardo_check_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF EXISTS (
            SELECT 1 FROM new_rows n
            WHERE n.prev_hash IS DISTINCT FROM
                      CASE WHEN n.seq = 1 THEN repeat('0', 64)
                           ELSE (SELECT p.hash FROM events p WHERE p.seq = n.seq - 1) END
               OR NOT (n.version = 1
                       OR COALESCE((SELECT v.seq FROM events v
                                    WHERE v.stream = n.stream AND v.version = n.version - 1)
                                   < n.seq, false)))
        THEN
            RAISE EXCEPTION 'the event log is append-only: an insert must take the next '
                'seq, the next version of its stream and link to the head'
                USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        RETURN NULL;
    END $$;
    CREATE TRIGGER events_append_only AFTER INSERT ON events
        REFERENCING NEW TABLE AS new_rows
        FOR EACH STATEMENT EXECUTE FUNCTION traguardo_check_inserted();"#,
    // 7: snapshots of read models, to start without folding the whole log. Not
    // part of the log: replaced and discarded freely, checked before use. The
    // bytes go in parts, each written in a transaction of its own; the header
    // row, written last, makes a snapshot visible.
    "CREATE TABLE snapshots (
        name     TEXT        NOT NULL,
        seq      BIGINT      NOT NULL CHECK (seq >= 0),
        hash     TEXT        NOT NULL,
        schema   INTEGER     NOT NULL,
        taken_at TIMESTAMPTZ NOT NULL,
        parts    INTEGER     NOT NULL,
        PRIMARY KEY (name, seq)
    );
    CREATE TABLE snapshot_parts (
        name TEXT    NOT NULL,
        seq  BIGINT  NOT NULL,
        part INTEGER NOT NULL,
        data BYTEA   NOT NULL,
        PRIMARY KEY (name, seq, part)
    );",
    // 8: the folded state of a stream at some of its versions, for time travel.
    // Disposable like `snapshots` (no trigger protects it): a row names the seq
    // and chain hash of the event at its version, and is checked before use.
    "CREATE TABLE stream_snapshots (
        stream  TEXT COLLATE \"C\" NOT NULL,
        version BIGINT  NOT NULL,
        seq     BIGINT  NOT NULL,
        hash    TEXT    NOT NULL,
        schema  INTEGER NOT NULL,
        data    BYTEA   NOT NULL,
        PRIMARY KEY (stream, version)
    );
    CREATE INDEX stream_snapshots_seq ON stream_snapshots (stream, seq);",
];

/// The triggers that keep the log append-only; `verify` reports any that is
/// gone or disabled.
const TRIGGERS: &[&str] = &[
    "events_no_update",
    "events_no_delete",
    "events_no_truncate",
    "events_append_only",
];

const MIGRATIONS_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER     PRIMARY KEY,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
)";
/// Serialises processes migrating the same database at the same time.
const MIGRATION_LOCK: i64 = 0x7472_6167_7561_7264; // "traguard"
/// Serialises the appends of every process (readers are not blocked).
const LOCK_LOG: &str = "LOCK TABLE events IN EXCLUSIVE MODE";
/// The channel each append notifies with its new head seq.
const CHANNEL: &str = "traguardo_head";

const SELECT_EVENT: &str = "SELECT seq, id, stream, version, type, schema, data, actor, role, \
     recorded_at, correlation, prev_hash, hash FROM events";
/// Events in one statement (an import's): one array per column, inserted in
/// seq order; the insert trigger checks the whole statement's rows at its end.
const INSERT_EVENTS: &str = "INSERT INTO events (seq, id, stream, version, type, schema, data, \
     actor, role, recorded_at, correlation, prev_hash, hash) \
     SELECT * FROM UNNEST($1::bigint[], $2::uuid[], $3::text[], $4::bigint[], $5::text[], \
     $6::bigint[], $7::text[], $8::text[], $9::text[], $10::timestamptz[], $11::text[], \
     $12::text[], $13::text[]) \
     AS u (seq, id, stream, version, type, schema, data, actor, role, recorded_at, \
     correlation, prev_hash, hash) ORDER BY seq";
const STREAM_VERSION: &str = "SELECT COALESCE(MAX(version), 0) FROM events WHERE stream = $1";
const HEAD: &str = "SELECT seq, hash, recorded_at FROM events ORDER BY seq DESC LIMIT 1";
/// Opens a group's transaction in one round trip (simple query protocol):
/// BEGIN, the writers' lock, then, read under it, the head with its record
/// time (in the stored text form, whatever the session's time zone) and the
/// number of complete tiles of the stored tree.
const OPEN_GROUP: &str = concat!(
    "BEGIN; LOCK TABLE events IN EXCLUSIVE MODE; \
     SELECT seq, hash, to_char(recorded_at AT TIME ZONE 'UTC', \
     'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') FROM events ORDER BY seq DESC LIMIT 1; ",
    tree::stored_tiles_sql!()
);
/// What a group must know before it writes, in one query: the current version
/// of each of the streams `$1` names that has events (one backward step in the
/// `(stream, version)` index each, never the stream's other rows), then, with
/// a NULL version, those of the keys `$2` names that are used already.
const LOOK_UP: &str = "SELECT s.stream, v.version FROM UNNEST($1::text[]) AS s (stream) \
     CROSS JOIN LATERAL (SELECT e.version FROM events e WHERE e.stream = s.stream \
     ORDER BY e.version DESC LIMIT 1) AS v \
     UNION ALL SELECT key, NULL FROM idempotency WHERE key = ANY($2)";
/// Everything a group writes, in one statement: its events as
/// [`INSERT_EVENTS`] does, its idempotency keys, the tree's new nodes, and the
/// notification of the new head (delivered at commit).
const WRITE_GROUP: &str = "WITH appended AS (INSERT INTO events (seq, id, stream, version, \
     type, schema, data, actor, role, recorded_at, correlation, prev_hash, hash) \
     SELECT * FROM UNNEST($1::bigint[], $2::uuid[], $3::text[], $4::bigint[], $5::text[], \
     $6::bigint[], $7::text[], $8::text[], $9::text[], $10::timestamptz[], $11::text[], \
     $12::text[], $13::text[]) \
     AS u (seq, id, stream, version, type, schema, data, actor, role, recorded_at, \
     correlation, prev_hash, hash) ORDER BY seq), \
     keys AS (INSERT INTO idempotency (key, request_sha256, first_seq, last_seq) \
     SELECT * FROM UNNEST($14::text[], $15::text[], $16::bigint[], $17::bigint[])), \
     nodes AS (INSERT INTO tree_nodes (level, idx, hash) \
     SELECT * FROM UNNEST($18::smallint[], $19::bigint[], $20::bytea[])) \
     SELECT pg_notify($21, $22)";
const SELECT_IDEMPOTENCY: &str =
    "SELECT request_sha256, first_seq, last_seq FROM idempotency WHERE key = $1";
/// Every key, in the order of the seqs it appended.
const SELECT_KEYS: &str =
    "SELECT key, request_sha256, first_seq, last_seq FROM idempotency ORDER BY first_seq, key";
/// The first of the keys `$1` names that is used already.
const KEY_USED: &str = "SELECT key FROM idempotency WHERE key = ANY($1) LIMIT 1";
/// Keys, in one statement.
const INSERT_KEYS: &str = "INSERT INTO idempotency (key, request_sha256, first_seq, last_seq) \
     SELECT * FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::bigint[])";
const STORED_TILES: &str = tree::stored_tiles_sql!();
const HEAD_SEQ: &str = "SELECT COALESCE(MAX(seq), 0) FROM events";
const SELECT_NODES: &str = "SELECT level, idx, hash FROM tree_nodes \
     WHERE (level, idx) IN (SELECT * FROM UNNEST($1::smallint[], $2::bigint[]))";
const INSERT_NODES: &str = "INSERT INTO tree_nodes (level, idx, hash) \
     SELECT * FROM UNNEST($1::smallint[], $2::bigint[], $3::bytea[])";
const EVENT_HASHES: &str = "SELECT seq, hash FROM events WHERE seq > $1 ORDER BY seq LIMIT $2";
const INSERT_SESSION: &str = "INSERT INTO web_sessions (secret_sha256, username, created_at, \
     last_seen) VALUES ($1, $2, $3, $3)";
const EXPIRE_SESSIONS: &str = "DELETE FROM web_sessions WHERE last_seen <= $1";
const SELECT_SESSION: &str =
    "SELECT username, last_seen FROM web_sessions WHERE secret_sha256 = $1";
const TOUCH_SESSION: &str = "UPDATE web_sessions SET last_seen = $2 WHERE secret_sha256 = $1";
const DELETE_SESSION: &str = "DELETE FROM web_sessions WHERE secret_sha256 = $1";
const DELETE_SNAPSHOTS: &str = "DELETE FROM snapshots WHERE name = $1";
const DELETE_SNAPSHOT_PARTS: &str = "DELETE FROM snapshot_parts WHERE name = $1";
/// Parts of `name` that no complete snapshot other than the one at `seq` owns:
/// what a save interrupted midway left, and an earlier save at the same seq.
const DELETE_STRAY_PARTS: &str = "DELETE FROM snapshot_parts WHERE name = $1 \
     AND (seq = $2 OR seq NOT IN (SELECT seq FROM snapshots WHERE name = $1))";
const DELETE_SNAPSHOT_AT: &str = "DELETE FROM snapshots WHERE name = $1 AND seq = $2";
const INSERT_SNAPSHOT_PART: &str =
    "INSERT INTO snapshot_parts (name, seq, part, data) VALUES ($1, $2, $3, $4)";
const INSERT_SNAPSHOT: &str = "INSERT INTO snapshots (name, seq, hash, schema, taken_at, parts) \
     VALUES ($1, $2, $3, $4, $5, $6)";
const DELETE_OLDER_SNAPSHOTS: &str = "DELETE FROM snapshots WHERE name = $1 AND seq <> $2";
const DELETE_OLDER_PARTS: &str = "DELETE FROM snapshot_parts WHERE name = $1 AND seq <> $2";
const PUT_STREAM_SNAPSHOT: &str = "INSERT INTO stream_snapshots \
     (stream, version, seq, hash, schema, data) VALUES ($1, $2, $3, $4, $5, $6) \
     ON CONFLICT (stream, version) DO UPDATE SET seq = EXCLUDED.seq, hash = EXCLUDED.hash, \
     schema = EXCLUDED.schema, data = EXCLUDED.data";
const STREAM_SNAPSHOT_AT: &str = "SELECT version, seq, hash, schema, data FROM stream_snapshots \
     WHERE stream = $1 AND seq <= $2 ORDER BY seq DESC LIMIT 1";
const LATEST_SNAPSHOT: &str = "SELECT seq, hash, schema, taken_at, parts FROM snapshots \
     WHERE name = $1 ORDER BY seq DESC LIMIT 1";
const SNAPSHOT_PARTS: &str =
    "SELECT data FROM snapshot_parts WHERE name = $1 AND seq = $2 ORDER BY part";
const SEQ_AT: &str = "SELECT COALESCE((SELECT seq FROM events WHERE recorded_at <= $1 \
     ORDER BY recorded_at DESC, seq DESC LIMIT 1), 0)";

/// Idle read connections kept per store.
const MAX_IDLE_READERS: usize = 16;
/// Rows handed on at a time when walking the whole log.
const PAGE: usize = 1_000;
/// The types of [`SELECT_EVENT`]'s columns, for a binary COPY of them.
const EVENT_COLUMNS: [Type; 13] = [
    Type::INT8,
    Type::UUID,
    Type::TEXT,
    Type::INT8,
    Type::TEXT,
    Type::INT8,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TIMESTAMPTZ,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
];

struct Inner {
    /// The URL, password hidden.
    url: String,
    config: Config,
    clock: Clock,
    sender: Queue,
    writer: Mutex<Option<JoinHandle<()>>>,
    follower: Mutex<Option<Follower>>,
    // Idle read connections: a std mutex, held only to push or pop, never across I/O.
    readers: Mutex<Vec<Client>>,
    hooks: Arc<Mutex<Vec<CommitHook>>>,
    head: tokio::sync::watch::Sender<Head>,
}

/// The PostgreSQL event store: cheap to clone, shared by every request.
#[derive(Clone)]
pub struct PgStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("url", &self.inner.url)
            .finish()
    }
}

impl PgStore {
    /// Connects to the database at `url` (`postgres://user@host/db`), creates or
    /// migrates the schema and starts the writer.
    ///
    /// # Errors
    /// [`Error::OpenUrl`] for a malformed URL, a refused connection, a database
    /// that is not UTF-8, or a schema newer than this program.
    pub fn open(url: &str, clock: Clock) -> Result<Self> {
        Self::open_with(url, clock, true)
    }

    /// Opens a database that holds a Traguardo log already; an empty database or
    /// another program's is an error and is left untouched.
    ///
    /// # Errors
    /// As [`PgStore::open`], and when there is no event log there.
    pub fn open_existing(url: &str) -> Result<Self> {
        Self::open_with(url, Clock::system(), false)
    }

    fn open_with(url: &str, clock: Clock, create: bool) -> Result<Self> {
        let shown = redact(url);
        let open_error = |message: String| Error::OpenUrl {
            url: shown.clone(),
            message,
        };
        let mut config: Config = url
            .parse()
            .map_err(|e| open_error(format!("not a valid PostgreSQL URL: {e}")))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        if config.get_application_name().is_none() {
            config.application_name("traguardo");
        }
        let (client, head) =
            off_runtime(|| prepare_database(&config, create)).map_err(open_error)?;
        let (head_tx, _) = tokio::sync::watch::channel(head);
        let (sender, receiver) = mpsc::channel();
        let hooks: Arc<Mutex<Vec<CommitHook>>> = Arc::default();
        let inner = Arc::new(Inner {
            url: shown.clone(),
            config: config.clone(),
            clock: clock.clone(),
            sender: Mutex::new(Some(sender)),
            writer: Mutex::new(None),
            follower: Mutex::new(None),
            readers: Mutex::new(Vec::new()),
            hooks: hooks.clone(),
            head: head_tx,
        });
        let head_publisher = inner.head.clone();
        let writer = std::thread::Builder::new()
            .name("traguardo-pg-writer".into())
            .spawn(move || {
                Writer {
                    engine: PgWriter {
                        config,
                        connection: Some(client),
                        statements: None,
                        clock,
                        canonical: String::with_capacity(1024),
                        edge: tree::Edge::default(),
                    },
                    hooks,
                    head: head_publisher,
                }
                .run(receiver)
            })
            .map_err(|e| open_error(format!("cannot start the writer thread: {e}")))?;
        *inner.writer.lock().unwrap_or_else(|e| e.into_inner()) = Some(writer);
        Ok(PgStore { inner })
    }

    /// The URL of the database, password hidden.
    pub fn url(&self) -> &str {
        &self.inner.url
    }

    fn connect(&self) -> Result<Client> {
        Ok(self.inner.config.connect(NoTls)?)
    }

    /// The rows of one stream from version `from` on, up to `until`, in
    /// version order.
    fn stream_rows(&self, stream: &str, from: u64, until: Until) -> Result<Vec<Row>> {
        let (clause, bound) = until_clause(until);
        let from = to_i64(from);
        // Every parameter must appear in the statement (PostgreSQL infers its type).
        let sql = match bound {
            Bound::None => {
                format!("{SELECT_EVENT} WHERE stream = $1 AND version >= $2 ORDER BY version")
            }
            _ => format!(
                "{SELECT_EVENT} WHERE stream = $1 AND version >= $3 {clause} ORDER BY version"
            ),
        };
        self.with_reader(|client| {
            Ok(match bound {
                Bound::None => client.query(&sql, &[&stream, &from])?,
                Bound::Int(n) => client.query(&sql, &[&stream, &n, &from])?,
                Bound::Time(t) => client.query(&sql, &[&stream, &t, &from])?,
            })
        })
    }

    /// Runs `f` on an idle read connection (or a new one), off any async runtime.
    fn with_reader<T: Send>(&self, f: impl FnOnce(&mut Client) -> Result<T> + Send) -> Result<T> {
        off_runtime(|| self.with_pooled(f))
    }

    /// Runs `f` on an idle read connection (or a new one), on this thread.
    fn with_pooled<T>(&self, f: impl FnOnce(&mut Client) -> Result<T>) -> Result<T> {
        let pooled = self
            .inner
            .readers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop();
        let mut client = match pooled {
            Some(client) if !client.is_closed() => client,
            _ => self.connect()?,
        };
        let result = f(&mut client);
        if !client.is_closed() {
            let mut readers = self.inner.readers.lock().unwrap_or_else(|e| e.into_inner());
            if readers.len() < MAX_IDLE_READERS {
                readers.push(client);
            }
        }
        result
    }

    /// Reads the events of `sql` (`$1`, and `$2` bound to `bound` if any).
    fn read_events(
        &self,
        sql: &str,
        first: &(dyn postgres::types::ToSql + Sync),
        bound: Bound,
    ) -> Result<Vec<RecordedEvent>> {
        self.with_reader(|client| {
            let rows = match bound {
                Bound::None => client.query(sql, &[first])?,
                Bound::Int(n) => client.query(sql, &[first, &n])?,
                Bound::Time(t) => client.query(sql, &[first, &t])?,
            };
            rows.iter().map(event_from_row).collect()
        })
    }

    /// Calls `sink` with the rows after `after`, a page at a time, until it
    /// returns false: one `COPY … TO STDOUT (FORMAT binary)`, so one snapshot
    /// of the log, streamed by the server while the pages are used here rather
    /// than fetched page by page in round trips.
    fn read_pages(
        &self,
        after: u64,
        mut sink: impl FnMut(Vec<BinaryCopyOutRow>) -> bool,
    ) -> Result<()> {
        let mut client = self.connect()?;
        // A number, not text: formatted into the statement (COPY takes no parameters).
        let sql = format!(
            "COPY ({SELECT_EVENT} WHERE seq > {} ORDER BY seq) TO STDOUT (FORMAT binary)",
            to_i64(after)
        );
        let reader = client.copy_out(sql.as_str())?;
        let mut rows = BinaryCopyOutIter::new(reader, &EVENT_COLUMNS);
        let mut page = Vec::with_capacity(PAGE);
        while let Some(row) = rows.next()? {
            page.push(row);
            if page.len() == PAGE && !sink(std::mem::replace(&mut page, Vec::with_capacity(PAGE))) {
                // Broken off: the connection is dropped with the rest of the copy.
                return Ok(());
            }
        }
        if !page.is_empty() {
            sink(page);
        }
        Ok(())
    }

    /// Registers a hook called after every commit with the committed events.
    pub fn on_commit(&self, hook: CommitHook) {
        self.inner
            .hooks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(hook);
    }

    /// Starts the follower: a connection that LISTENs for other processes'
    /// appends and moves the head watch; see [`Store::follow`].
    ///
    /// # Errors
    /// When the follower thread cannot be started.
    pub fn follow(&self) -> Result<tokio::sync::watch::Receiver<Head>> {
        let mut follower = self
            .inner
            .follower
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if follower.is_none() {
            let config = self.inner.config.clone();
            let head = self.inner.head.clone();
            *follower = Some(Follower::start("traguardo-pg-follow", move |stopped| {
                follow(&config, &head, &stopped)
            })?);
        }
        Ok(self.inner.head.subscribe())
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
}

/// The follower's loop: re-read the head at every notification and every poll,
/// reconnecting when the connection drops.
fn follow(config: &Config, head: &tokio::sync::watch::Sender<Head>, stopped: &mpsc::Receiver<()>) {
    let mut client: Option<Client> = None;
    while !store::told_to_stop(stopped, Duration::ZERO) {
        if client.as_ref().is_none_or(Client::is_closed) {
            client = config
                .connect(NoTls)
                .and_then(|mut c| c.batch_execute(&format!("LISTEN {CHANNEL}")).map(|()| c))
                .inspect_err(|e| tracing::warn!(error = %describe(e), "cannot follow the log"))
                .ok();
        }
        let Some(c) = client.as_mut() else {
            if store::told_to_stop(stopped, store::FOLLOW_POLL) {
                return;
            }
            continue;
        };
        match read_head(c) {
            Ok(now) => store::publish_head(head, now),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the head");
                client = None;
                continue;
            }
        }
        // Wait for a notification, or the poll: then read the head again.
        let woke = {
            let mut notifications = c.notifications();
            let woke = notifications
                .timeout_iter(store::FOLLOW_POLL)
                .next()
                .map_err(|e| describe(&e));
            // Those that came meanwhile say nothing the next read of the head won't.
            while let Ok(Some(_)) = notifications.iter().next() {}
            woke
        };
        if let Err(e) = woke {
            tracing::warn!(error = %e, "lost the notification connection");
            client = None;
        }
    }
}

impl Store for PgStore {
    fn location(&self) -> String {
        self.inner.url.clone()
    }

    fn tree_root(&self, size: u64) -> Result<traguardo_tlog::Hash> {
        self.with_reader(|client| tree::root(&mut PgTree(client), size))
    }

    fn inclusion_proof(&self, seq: u64, size: u64) -> Result<Vec<traguardo_tlog::Hash>> {
        self.with_reader(|client| tree::inclusion_proof(&mut PgTree(client), seq, size))
    }

    fn consistency_proof(&self, from: u64, to: u64) -> Result<Vec<traguardo_tlog::Hash>> {
        self.with_reader(|client| tree::consistency_proof(&mut PgTree(client), from, to))
    }

    fn clock(&self) -> &Clock {
        &self.inner.clock
    }

    fn on_commit(&self, hook: CommitHook) {
        PgStore::on_commit(self, hook)
    }

    fn watch_head(&self) -> tokio::sync::watch::Receiver<Head> {
        self.inner.head.subscribe()
    }

    fn follow(&self) -> Result<tokio::sync::watch::Receiver<Head>> {
        PgStore::follow(self)
    }

    fn append_idempotent(&self, batch: AppendBatch, key: Option<IdempotencyKey>) -> PendingAppend {
        store::submit(&self.inner.sender, batch, key)
    }

    fn head(&self) -> Result<Head> {
        self.with_reader(read_head)
    }

    fn stream_version(&self, stream: &str) -> Result<u64> {
        self.with_reader(|client| {
            let version: i64 = client.query_one(STREAM_VERSION, &[&stream])?.try_get(0)?;
            Ok(version as u64)
        })
    }

    fn read_stream(&self, stream: &str, until: Until) -> Result<Vec<RecordedEvent>> {
        let (clause, bound) = until_clause(until);
        let sql = format!("{SELECT_EVENT} WHERE stream = $1 {clause} ORDER BY version");
        self.read_events(&sql, &stream, bound)
    }

    fn read_stream_from(
        &self,
        stream: &str,
        from: u64,
        until: Until,
    ) -> Result<Vec<RecordedEvent>> {
        self.stream_rows(stream, from, until)?
            .iter()
            .map(event_from_row)
            .collect()
    }

    fn visit_stream_raw(
        &self,
        stream: &str,
        from: u64,
        until: Until,
        visit: &mut RawVisitor<'_>,
    ) -> Result<()> {
        // The rows are read on the reader's thread, and visited on this one.
        for row in &self.stream_rows(stream, from, until)? {
            let event = envelope_of_row(row)?;
            let data: &str = row.column(6)?;
            if visit(&event, data).is_break() {
                break;
            }
        }
        Ok(())
    }

    fn read_streams_with_prefix(&self, prefix: &str, until: Until) -> Result<Vec<RecordedEvent>> {
        let until = match until {
            Until::Version(_) => Until::End,
            other => other,
        };
        let (clause, bound) = until_clause(until);
        // `stream` is COLLATE "C": byte order, which is code point order in UTF-8,
        // so every name with the prefix sorts below the prefix and U+10FFFF.
        let upper = format!("{prefix}\u{10FFFF}");
        let sql = match bound {
            Bound::None => {
                format!("{SELECT_EVENT} WHERE stream >= $1 AND stream < $2 ORDER BY seq")
            }
            _ => format!("{SELECT_EVENT} WHERE stream >= $1 AND stream < $3 {clause} ORDER BY seq"),
        };
        self.with_reader(|client| {
            let rows = match bound {
                Bound::None => client.query(&sql, &[&prefix, &upper])?,
                Bound::Int(n) => client.query(&sql, &[&prefix, &n, &upper])?,
                Bound::Time(t) => client.query(&sql, &[&prefix, &t, &upper])?,
            };
            rows.iter().map(event_from_row).collect()
        })
    }

    fn read_all(&self, after: u64, limit: usize) -> Result<Vec<RecordedEvent>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let sql = format!("{SELECT_EVENT} WHERE seq > $1 ORDER BY seq LIMIT $2");
        self.read_events(&sql, &to_i64(after), Bound::Int(limit))
    }

    fn visit_raw(&self, after: u64, visit: &mut RawVisitor<'_>) -> Result<()> {
        // Each row is decoded and handed over here; whether `visit` broke off.
        let mut feed = |page: Vec<BinaryCopyOutRow>| -> Result<bool> {
            for row in &page {
                let event = envelope_of_row(row)?;
                let data: &str = row.try_get(6)?;
                if visit(&event, data).is_break() {
                    return Ok(false);
                }
            }
            Ok(true)
        };
        if !in_runtime() {
            let mut failed = None;
            self.read_pages(after, |page| match feed(page) {
                Ok(go_on) => go_on,
                Err(e) => {
                    failed = Some(e);
                    false
                }
            })?;
            return failed.map_or(Ok(()), Err);
        }
        // On an async worker the client must run on another thread: it reads the
        // pages there and hands them over, one in flight.
        std::thread::scope(|scope| {
            let (pages, received) = mpsc::sync_channel::<Result<Vec<BinaryCopyOutRow>>>(1);
            scope.spawn(move || {
                if let Err(e) = self.read_pages(after, |page| pages.send(Ok(page)).is_ok()) {
                    let _ = pages.send(Err(e));
                }
            });
            for page in received {
                if !feed(page?)? {
                    break;
                }
            }
            Ok(())
        })
    }

    fn seq_at(&self, at: DateTime<Utc>) -> Result<u64> {
        // Record times never decrease along the log (the writer sees to it), so
        // the last event at or before `at` is one index seek.
        self.with_reader(|client| {
            let seq: i64 = client.query_one(SEQ_AT, &[&at])?.try_get(0)?;
            Ok(seq as u64)
        })
    }

    fn idempotent_result(&self, key: &str) -> Result<Option<IdempotentResult>> {
        self.with_reader(|client| {
            let Some(row) = client.query_opt(SELECT_IDEMPOTENCY, &[&key])? else {
                return Ok(None);
            };
            Ok(Some(IdempotentResult {
                request_sha256: row.try_get(0)?,
                first_seq: row.try_get::<_, i64>(1)? as u64,
                last_seq: row.try_get::<_, i64>(2)? as u64,
            }))
        })
    }

    fn verify(&self, expect: &[Head]) -> Result<Verification> {
        let triggers: i64 = self.with_reader(|client| {
            let names: Vec<&str> = TRIGGERS.to_vec();
            Ok(client
                .query_one(
                    "SELECT COUNT(*) FROM pg_trigger WHERE tgrelid = 'events'::regclass \
                     AND tgname = ANY($1) AND tgenabled <> 'D'",
                    &[&names],
                )?
                .try_get(0)?)
        })?;
        let mut check = ChainCheck::new(expect, triggers == TRIGGERS.len() as i64);
        let mut failed = None;
        let walk = || {
            self.read_pages(0, |page| {
                for row in &page {
                    let seq = match row.column::<i64>(0) {
                        Ok(seq) => seq as u64,
                        Err(e) => {
                            failed = Some(Error::from(e));
                            return false;
                        }
                    };
                    if check.next(seq, event_from_row(row)).is_break() {
                        return false;
                    }
                }
                true
            })
        };
        off_runtime(walk)?;
        match failed {
            Some(e) => Err(e),
            None => Ok(check.finish()),
        }
    }

    fn open_session(&self, secret_sha256: &str, username: &str, now: i64, idle: i64) -> Result<()> {
        self.with_reader(|client| {
            client.execute(EXPIRE_SESSIONS, &[&(now - idle)])?;
            client.execute(INSERT_SESSION, &[&secret_sha256, &username, &now])?;
            Ok(())
        })
    }

    fn session(&self, secret_sha256: &str, now: i64, idle: i64) -> Result<Option<String>> {
        self.with_reader(|client| {
            let Some(row) = client.query_opt(SELECT_SESSION, &[&secret_sha256])? else {
                return Ok(None);
            };
            let username: String = row.try_get(0)?;
            let last_seen: i64 = row.try_get(1)?;
            match store::session_fate(last_seen, now, idle) {
                store::SessionFate::Expired => {
                    client.execute(DELETE_SESSION, &[&secret_sha256])?;
                    Ok(None)
                }
                store::SessionFate::Touch => {
                    client.execute(TOUCH_SESSION, &[&secret_sha256, &now])?;
                    Ok(Some(username))
                }
                store::SessionFate::Alive => Ok(Some(username)),
            }
        })
    }

    fn close_session(&self, secret_sha256: &str) -> Result<()> {
        self.with_reader(|client| {
            client.execute(DELETE_SESSION, &[&secret_sha256])?;
            Ok(())
        })
    }

    fn import_recorded(&self, events: &[RecordedEvent]) -> Result<Head> {
        off_runtime(|| {
            let mut client = self.connect()?;
            let mut tx = client.transaction()?;
            tx.batch_execute(LOCK_LOG)?;
            let mut head = read_head(&mut tx)?;
            store::check_import(&head, events)?;
            let mut rows = Rows::with_capacity(events.len());
            for event in events {
                let data = chain::canonical_value(&event.data);
                rows.seq.push(to_i64(event.seq));
                rows.id.push(event.id);
                rows.stream.push(&event.stream);
                rows.version.push(to_i64(event.version));
                rows.event_type.push(&event.event_type);
                rows.schema.push(i64::from(event.schema));
                rows.data.push(data);
                rows.actor.push(&event.actor);
                rows.role.push(&event.role);
                rows.recorded_at.push(event.recorded_at);
                rows.correlation.push(event.correlation.as_deref());
                rows.prev_hash.push(event.prev_hash.clone());
                rows.hash.push(event.hash.clone());
            }
            rows.insert(&mut tx, INSERT_EVENTS)?;
            if let Some(last) = events.last() {
                head = Head {
                    seq: last.seq,
                    hash: last.hash.clone(),
                };
            }
            if !events.is_empty() {
                tx.execute(
                    "SELECT pg_notify($1, $2)",
                    &[&CHANNEL, &head.seq.to_string()],
                )?;
            }
            tx.commit()?;
            store::publish_head(&self.inner.head, head.clone());
            Ok(head)
        })
    }

    fn visit_keys(&self, visit: &mut KeyVisitor<'_>) -> Result<()> {
        let read = |client: &mut Client, visit: &mut KeyVisitor<'_>| -> Result<()> {
            let mut rows = client.query_raw(SELECT_KEYS, std::iter::empty::<i64>())?;
            while let Some(row) = rows.next()? {
                visit(StoredKey {
                    key: row.try_get(0)?,
                    result: IdempotentResult {
                        request_sha256: row.try_get(1)?,
                        first_seq: row.try_get::<_, i64>(2)? as u64,
                        last_seq: row.try_get::<_, i64>(3)? as u64,
                    },
                })?;
            }
            Ok(())
        };
        if !in_runtime() {
            return read(&mut self.connect()?, visit);
        }
        // On an async worker the client runs on a helper thread, which collects them.
        let mut keys = Vec::new();
        self.with_reader(|client| {
            read(client, &mut |key| {
                keys.push(key);
                Ok(())
            })
        })?;
        keys.into_iter().try_for_each(visit)
    }

    fn import_keys(&self, keys: &[StoredKey]) -> Result<()> {
        off_runtime(|| {
            let mut client = self.connect()?;
            let mut tx = client.transaction()?;
            tx.batch_execute(LOCK_LOG)?;
            store::check_import_keys(&read_head(&mut tx)?, keys)?;
            let names: Vec<&str> = keys.iter().map(|k| k.key.as_str()).collect();
            if let Some(row) = tx.query_opt(KEY_USED, &[&names])? {
                return Err(Error::KeyUsed(row.try_get(0)?));
            }
            let hashes: Vec<&str> = keys
                .iter()
                .map(|k| k.result.request_sha256.as_str())
                .collect();
            let first: Vec<i64> = keys.iter().map(|k| to_i64(k.result.first_seq)).collect();
            let last: Vec<i64> = keys.iter().map(|k| to_i64(k.result.last_seq)).collect();
            tx.execute(INSERT_KEYS, &[&names, &hashes, &first, &last])?;
            tx.commit()?;
            Ok(())
        })
    }

    fn shutdown(&self) {
        PgStore::shutdown(self)
    }

    fn save_snapshot(&self, snapshot: &Snapshot) -> Result<()> {
        self.with_reader(|client| {
            let (name, seq) = (&snapshot.name, to_i64(snapshot.seq));
            let mut tx = client.transaction()?;
            tx.execute(DELETE_SNAPSHOT_AT, &[name, &seq])?;
            tx.execute(DELETE_STRAY_PARTS, &[name, &seq])?;
            tx.commit()?;
            // One transaction per part, as on SQLite.
            let mut parts = 0i32;
            for part in snapshot.data.chunks(store::SNAPSHOT_PART_BYTES) {
                client.execute(INSERT_SNAPSHOT_PART, &[name, &seq, &parts, &part])?;
                parts += 1;
            }
            let schema = i32::try_from(snapshot.schema).unwrap_or(i32::MAX);
            let mut tx = client.transaction()?;
            tx.execute(
                INSERT_SNAPSHOT,
                &[
                    name,
                    &seq,
                    &snapshot.hash,
                    &schema,
                    &snapshot.taken_at,
                    &parts,
                ],
            )?;
            tx.execute(DELETE_OLDER_SNAPSHOTS, &[name, &seq])?;
            tx.execute(DELETE_OLDER_PARTS, &[name, &seq])?;
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
        if !in_runtime() {
            return self.with_pooled(|client| read_snapshot(client, name, wanted, part));
        }
        // On an async runtime the client must not block it: the parts are read
        // whole on a thread of their own, then handed over here.
        let mut parts = Vec::new();
        let head = self.with_reader(|client| {
            read_snapshot(client, name, &mut |_| true, &mut |p| parts.push(p.to_vec()))
        })?;
        if let Some(head) = &head {
            if wanted(head) {
                parts.iter().for_each(|p| part(p));
            }
        }
        Ok(head)
    }

    fn discard_snapshots(&self, name: &str) -> Result<()> {
        self.with_reader(|client| {
            let mut tx = client.transaction()?;
            tx.execute(DELETE_SNAPSHOTS, &[&name])?;
            tx.execute(DELETE_SNAPSHOT_PARTS, &[&name])?;
            tx.commit()?;
            Ok(())
        })
    }

    fn put_stream_snapshots(&self, snapshots: &[StreamSnapshot]) -> Result<()> {
        if snapshots.is_empty() {
            return Ok(());
        }
        self.with_reader(|client| {
            let mut tx = client.transaction()?;
            let insert = tx.prepare(PUT_STREAM_SNAPSHOT)?;
            for s in snapshots {
                let schema = i32::try_from(s.schema).unwrap_or(i32::MAX);
                tx.execute(
                    &insert,
                    &[
                        &s.stream,
                        &to_i64(s.version),
                        &to_i64(s.seq),
                        &s.hash,
                        &schema,
                        &s.data,
                    ],
                )?;
            }
            tx.commit()?;
            Ok(())
        })
    }

    fn stream_snapshot_at(&self, stream: &str, seq: u64) -> Result<Option<StreamSnapshot>> {
        self.with_reader(|client| {
            let Some(row) = client.query_opt(STREAM_SNAPSHOT_AT, &[&stream, &to_i64(seq)])? else {
                return Ok(None);
            };
            let version: i64 = row.try_get(0)?;
            let seq: i64 = row.try_get(1)?;
            let schema: i32 = row.try_get(3)?;
            Ok(Some(StreamSnapshot {
                stream: stream.to_string(),
                version: version as u64,
                seq: seq as u64,
                hash: row.try_get(2)?,
                schema: u32::try_from(schema).unwrap_or(u32::MAX),
                data: row.try_get(4)?,
            }))
        })
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
        // A client owns a small runtime, which may not be dropped on an async worker.
        let readers = std::mem::take(&mut *self.readers.lock().unwrap_or_else(|e| e.into_inner()));
        off_runtime(move || drop(readers));
    }
}

/// Up to where a read goes, as the parameter its clause binds.
#[derive(Clone, Copy)]
enum Bound {
    None,
    Int(i64),
    Time(DateTime<Utc>),
}

fn until_clause(until: Until) -> (&'static str, Bound) {
    match until {
        Until::End => ("", Bound::None),
        Until::Version(v) => ("AND version <= $2", Bound::Int(to_i64(v))),
        Until::Seq(s) => ("AND seq <= $2", Bound::Int(to_i64(s))),
        Until::RecordedAt(t) => ("AND recorded_at <= $2", Bound::Time(t)),
    }
}

/// Seqs and versions are BIGINT: beyond `i64::MAX` a bound means "everything".
fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Connects, checks the database, migrates it (or, for `create == false`, checks
/// that it holds a log already) and reads the head.
fn prepare_database(config: &Config, create: bool) -> std::result::Result<(Client, Head), String> {
    let mut client = config.connect(NoTls).map_err(|e| {
        format!(
            "cannot connect: {} (is PostgreSQL running there?)",
            describe(&e)
        )
    })?;
    let pg = |e: postgres::Error| describe(&e);
    let encoding: String = client
        .query_one("SHOW server_encoding", &[])
        .and_then(|r| r.try_get(0))
        .map_err(pg)?;
    if encoding != "UTF8" {
        return Err(format!(
            "the database's encoding is {encoding}; the event log needs UTF8"
        ));
    }
    if !create {
        let exists: bool = client
            .query_one(
                "SELECT to_regclass('events') IS NOT NULL \
                 AND to_regclass('schema_migrations') IS NOT NULL",
                &[],
            )
            .and_then(|r| r.try_get(0))
            .map_err(pg)?;
        if !exists {
            return Err("not a Traguardo database (it holds no event log)".into());
        }
    }
    migrate(&mut client)?;
    catch_up_tree(&mut client).map_err(|e| format!("cannot build the Merkle tree: {e}"))?;
    let head = read_head(&mut client).map_err(|e| e.to_string())?;
    Ok((client, head))
}

/// Applies the migrations the database has not seen, in one transaction, under
/// an advisory lock so that two processes starting together do not both try.
fn migrate(client: &mut Client) -> std::result::Result<(), String> {
    let failed = |e: postgres::Error| format!("schema migration failed: {}", describe(&e));
    let mut tx = client.transaction().map_err(failed)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .map_err(failed)?;
    tx.batch_execute(MIGRATIONS_TABLE).map_err(failed)?;
    let current: i32 = tx
        .query_one(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
            &[],
        )
        .and_then(|r| r.try_get(0))
        .map_err(failed)?;
    let current = usize::try_from(current).unwrap_or(0);
    if current > MIGRATIONS.len() {
        return Err(format!(
            "the schema is at version {current}, newer than this program's {}",
            MIGRATIONS.len()
        ));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current) {
        let version = i32::try_from(i + 1).unwrap_or(i32::MAX);
        tx.batch_execute(sql).map_err(failed)?;
        tx.execute(
            "INSERT INTO schema_migrations (version) VALUES ($1)",
            &[&version],
        )
        .map_err(failed)?;
    }
    tx.commit().map_err(failed)
}

/// Builds the tree's missing nodes (a log written before the tree existed),
/// under the writers' lock, in one transaction; nothing to do on most opens.
fn catch_up_tree(client: &mut Client) -> Result<()> {
    let mut tx = client.transaction()?;
    let head = read_head(&mut tx)?.seq;
    let tiles: i64 = tx.query_one(STORED_TILES, &[])?.try_get(0)?;
    if tree::caught_up(tiles as u64, head) {
        return Ok(());
    }
    tx.batch_execute(LOCK_LOG)?;
    let head = read_head(&mut tx)?.seq;
    tree::catch_up_at_open(&mut PgTree(&mut tx), head)?;
    tx.commit()?;
    Ok(())
}

/// The Merkle tree's nodes, read and written through one connection or
/// transaction.
struct PgTree<'a, C: postgres::GenericClient>(&'a mut C);

impl<C: postgres::GenericClient> TreeTx for PgTree<'_, C> {
    fn stored_tiles(&mut self) -> Result<u64> {
        let tiles: i64 = self.0.query_one(STORED_TILES, &[])?.try_get(0)?;
        Ok(tiles as u64)
    }

    fn head(&mut self) -> Result<u64> {
        let seq: i64 = self.0.query_one(HEAD_SEQ, &[])?.try_get(0)?;
        Ok(seq as u64)
    }

    fn fetch(
        &mut self,
        keys: &[NodeKey],
    ) -> Result<std::collections::HashMap<NodeKey, traguardo_tlog::Hash>> {
        fetch_nodes(self.0, SELECT_NODES, keys)
    }

    fn event_hashes(&mut self, after: u64, limit: usize) -> Result<Vec<(u64, String)>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.0
            .query(EVENT_HASHES, &[&to_i64(after), &limit])?
            .iter()
            .map(|row| Ok((row.try_get::<_, i64>(0)? as u64, row.try_get(1)?)))
            .collect()
    }

    fn insert_nodes(&mut self, nodes: &[traguardo_tlog::merkle::Node]) -> Result<()> {
        let levels: Vec<i16> = nodes.iter().map(|n| i16::from(n.level)).collect();
        let indexes: Vec<i64> = nodes.iter().map(|n| to_i64(n.index)).collect();
        let hashes: Vec<&[u8]> = nodes.iter().map(|n| &n.hash[..]).collect();
        self.0
            .execute(INSERT_NODES, &[&levels, &indexes, &hashes])?;
        Ok(())
    }
}

/// The stored nodes among `keys`, with [`SELECT_NODES`] (prepared or not).
fn fetch_nodes<T: postgres::ToStatement + ?Sized>(
    client: &mut impl postgres::GenericClient,
    statement: &T,
    keys: &[NodeKey],
) -> Result<std::collections::HashMap<NodeKey, traguardo_tlog::Hash>> {
    let levels: Vec<i16> = keys.iter().map(|k| i16::from(k.0)).collect();
    let indexes: Vec<i64> = keys.iter().map(|k| to_i64(k.1)).collect();
    let mut nodes = std::collections::HashMap::with_capacity(keys.len());
    for row in client.query(statement, &[&levels, &indexes])? {
        let level: i16 = row.try_get(0)?;
        let idx: i64 = row.try_get(1)?;
        let hash: &[u8] = row.try_get(2)?;
        if let (Ok(level), Ok(hash)) = (u8::try_from(level), <[u8; 32]>::try_from(hash)) {
            nodes.insert((level, idx as u64), hash);
        }
    }
    Ok(nodes)
}

/// The versions `schema_migrations` records, for tests.
#[cfg(test)]
pub(crate) const MIGRATION_COUNT: usize = MIGRATIONS.len();

fn read_head(client: &mut impl postgres::GenericClient) -> Result<Head> {
    Ok(match client.query_opt(HEAD, &[])? {
        Some(row) => Head {
            seq: row.try_get::<_, i64>(0)? as u64,
            hash: row.try_get(1)?,
        },
        None => Head::genesis(),
    })
}

/// A row of [`SELECT_EVENT`], from a query or from a binary COPY.
trait EventRow {
    fn column<'a, T: FromSql<'a>>(&'a self, idx: usize) -> std::result::Result<T, postgres::Error>;
}

impl EventRow for Row {
    fn column<'a, T: FromSql<'a>>(&'a self, idx: usize) -> std::result::Result<T, postgres::Error> {
        self.try_get(idx)
    }
}

impl EventRow for BinaryCopyOutRow {
    fn column<'a, T: FromSql<'a>>(&'a self, idx: usize) -> std::result::Result<T, postgres::Error> {
        self.try_get(idx)
    }
}

fn event_from_row(row: &impl EventRow) -> Result<RecordedEvent> {
    let data: &str = row.column(6)?;
    let data = serde_json::from_str(data).map_err(|e| Error::Corrupt {
        seq: row.column::<i64>(0).unwrap_or_default() as u64,
        message: format!("data: {e}"),
    })?;
    envelope_from_row(row, data)
}

/// The envelope of a row, with `data` given by the caller.
fn envelope_from_row(row: &impl EventRow, data: Value) -> Result<RecordedEvent> {
    Ok(envelope_of_row(row)?.to_recorded(data))
}

/// The envelope of a row, its texts borrowed from the row.
fn envelope_of_row(row: &impl EventRow) -> Result<EventRef<'_>> {
    let seq = row.column::<i64>(0)? as u64;
    let schema = u32::try_from(row.column::<i64>(5)?).map_err(|e| Error::Corrupt {
        seq,
        message: format!("schema: {e}"),
    })?;
    Ok(EventRef {
        seq,
        id: row.column(1)?,
        stream: row.column(2)?,
        version: row.column::<i64>(3)? as u64,
        event_type: row.column(4)?,
        schema,
        actor: row.column(7)?,
        role: row.column(8)?,
        recorded_at: row.column(9)?,
        correlation: row.column(10)?,
        prev_hash: row.column(11)?,
        hash: row.column(12)?,
    })
}

/// The writer's prepared statements, valid on the connection that prepared them.
struct Statements {
    look_up: Statement,
    nodes: Statement,
    write: Statement,
}

/// The PostgreSQL side of group commit: the writer's connection, opened again
/// when it drops.
struct PgWriter {
    config: Config,
    connection: Option<Client>,
    statements: Option<Statements>,
    clock: Clock,
    /// Reused for each event's canonical form.
    canonical: String,
    /// The tree's right edge as this writer last committed it.
    edge: tree::Edge,
}

impl PgWriter {
    /// The writer's connection and statements, reconnecting if it was lost.
    fn connection(&mut self) -> Result<(&mut Client, &Statements)> {
        if self.connection.as_ref().is_none_or(Client::is_closed) {
            self.statements = None;
            self.connection = Some(self.config.connect(NoTls)?);
        }
        let Some(client) = self.connection.as_mut() else {
            return Err(Error::WriterGone);
        };
        if self.statements.is_none() {
            self.statements = Some(Statements {
                look_up: client.prepare(LOOK_UP)?,
                nodes: client.prepare(SELECT_NODES)?,
                write: client.prepare(WRITE_GROUP)?,
            });
        }
        match &self.statements {
            Some(statements) => Ok((client, statements)),
            None => Err(Error::WriterGone),
        }
    }
}

/// A group's transaction, begun by hand so that its `BEGIN` rides in the same
/// round trip as the lock and the head ([`OPEN_GROUP`]); rolled back when it
/// is dropped uncommitted.
struct GroupTx<'c> {
    client: &'c mut Client,
    open: bool,
}

impl<'c> GroupTx<'c> {
    /// Begins, takes the writers' lock and reads the head, its record time and
    /// the stored tree's complete tiles, all in one round trip.
    fn open(client: &'c mut Client) -> std::result::Result<(Self, Opened), Error> {
        let tx = GroupTx { client, open: true };
        let mut head = Head::genesis();
        let mut last_at = None;
        let mut tiles = None;
        for message in tx.client.simple_query(OPEN_GROUP)? {
            let postgres::SimpleQueryMessage::Row(row) = message else {
                continue;
            };
            // The head's row has three columns, the tiles' count one.
            if row.len() == 3 {
                let (Some(seq), Some(hash), Some(at)) = (row.get(0), row.get(1), row.get(2)) else {
                    continue;
                };
                head = Head {
                    seq: parse_simple(seq)?,
                    hash: hash.to_string(),
                };
                let at = DateTime::parse_from_rfc3339(at).map_err(|e| Error::Corrupt {
                    seq: head.seq,
                    message: format!("recorded_at: {e}"),
                })?;
                last_at = Some(at.to_utc());
            } else if let Some(count) = row.get(0) {
                tiles = Some(parse_simple(count)?);
            }
        }
        let tiles = tiles.ok_or_else(|| Error::Corrupt {
            seq: head.seq,
            message: "the tree's tiles were not counted".into(),
        })?;
        Ok((
            tx,
            Opened {
                head,
                last_at,
                tiles,
            },
        ))
    }

    fn commit(mut self) -> std::result::Result<(), postgres::Error> {
        self.open = false;
        self.client.batch_execute("COMMIT")
    }
}

impl Drop for GroupTx<'_> {
    fn drop(&mut self) {
        if self.open && !self.client.is_closed() {
            if let Err(e) = self.client.batch_execute("ROLLBACK") {
                tracing::warn!(error = %describe(&e), "cannot roll a failed group back");
            }
        }
    }
}

/// What [`GroupTx::open`] read under the lock.
struct Opened {
    head: Head,
    /// The head's record time (none on an empty log).
    last_at: Option<DateTime<Utc>>,
    /// The number of complete tiles of the stored tree.
    tiles: u64,
}

/// A number in a simple-query (text) answer.
fn parse_simple(text: &str) -> Result<u64> {
    text.parse().map_err(|e| Error::Corrupt {
        seq: 0,
        message: format!("not a number from the database: {text:?} ({e})"),
    })
}

impl GroupCommit for PgWriter {
    /// The whole group in four round trips, whatever its size: [`OPEN_GROUP`]
    /// (begin, the lock, the head, the tree's size); [`LOOK_UP`] (the version
    /// of every stream it names and which of its keys are used); the checks,
    /// the chain and the tree's new nodes in memory (the tree's edge is kept
    /// from the last commit; a node it lacks is fetched, one more round trip
    /// when another process appended meanwhile); then [`WRITE_GROUP`] (every
    /// event, key and node, and the notification, in one statement); and
    /// COMMIT. A failure of the write (a bug, or the database failing) is
    /// blamed on the first append, so that the writer retries each append alone
    /// and finds the one at fault.
    fn try_commit_group(
        &mut self,
        group: &[Request],
    ) -> std::result::Result<GroupDone, GroupFailure> {
        let whole = |e: postgres::Error| (Error::from(e), None);
        let clock = self.clock.clone();
        let mut canonical = std::mem::take(&mut self.canonical);
        // Whatever happens, the edge is kept only if this group commits.
        let edge = std::mem::take(&mut self.edge);
        let (client, statements) = self.connection().map_err(|e| (e, None))?;
        // Every process's writer queues on the lock; then the head is the last commit's.
        let (
            tx,
            Opened {
                mut head,
                last_at,
                tiles,
            },
        ) = GroupTx::open(client).map_err(|e| (e, None))?;
        // Record time never goes backwards along the log, even if the clock does
        // (an NTP step, another process with a skewed clock).
        let now = match last_at {
            Some(last) => clock.now().max(last),
            None => clock.now(),
        };
        let now_text = format_timestamp(&now);
        // A log whose tree is behind (events imported by `copy`): built first.
        // A failure here is the database's: blame the last append, so the group
        // is retried one by one.
        let last = group.len().saturating_sub(1);
        if !tree::caught_up(tiles, head.seq) {
            tree::catch_up(&mut PgTree(&mut *tx.client), head.seq).map_err(|e| (e, Some(last)))?;
        }
        let (mut versions, mut used) = look_up(tx.client, statements, group).map_err(whole)?;
        let mut staged = Vec::with_capacity(group.len());
        let mut all = Vec::new();
        let mut rows = Rows::with_capacity(group.iter().map(|r| r.batch.events.len()).sum());
        let mut keys = KeyRows::default();
        let mut id_text = Uuid::encode_buffer();
        let first_seq = head.seq + 1;
        for request in group {
            // The checks that may refuse an append, against the versions and
            // keys as the appends before it in the group left them.
            let conflict = request.batch.expectations.iter().find_map(|expectation| {
                let actual = versions
                    .get(expectation.stream.as_str())
                    .copied()
                    .unwrap_or(0);
                (!expectation.expected.matches(actual)).then(|| Error::Conflict {
                    stream: expectation.stream.clone(),
                    expected: expectation.expected.to_string(),
                    actual,
                })
            });
            let refused = conflict.or_else(|| {
                let key = request.idempotency.as_ref()?;
                used.contains(key.key.as_str())
                    .then(|| Error::KeyUsed(key.key.clone()))
            });
            if let Some(refused) = refused {
                staged.push(Staged::Refused(refused));
                continue;
            }
            let start = all.len();
            for new in &request.batch.events {
                let version = versions.entry(new.stream.as_str()).or_insert(0);
                *version += 1;
                let version = *version;
                let seq = head.seq + 1;
                let id = Uuid::now_v7();
                let id_text: &str = id.hyphenated().encode_lower(&mut id_text);
                // The data is kept in its canonical form, rendered once for both.
                let data = chain::canonical_value(&new.data);
                canonical.clear();
                chain::write_canonical_event(
                    &mut canonical,
                    &chain::Fields {
                        actor: &new.actor,
                        correlation: new.correlation.as_deref(),
                        data: &data,
                        id: id_text,
                        recorded_at: &now_text,
                        role: &new.role,
                        schema: new.schema,
                        seq,
                        stream: &new.stream,
                        event_type: &new.event_type,
                        version,
                    },
                )
                .map_err(|e| (Error::from(e), Some(staged.len())))?;
                let hash = chain::hash_canonical(&head.hash, &canonical);
                let prev_hash = std::mem::replace(&mut head.hash, hash.clone());
                head.seq = seq;
                rows.seq.push(to_i64(seq));
                rows.id.push(id);
                rows.stream.push(&new.stream);
                rows.version.push(to_i64(version));
                rows.event_type.push(&new.event_type);
                rows.schema.push(i64::from(new.schema));
                rows.data.push(data);
                rows.actor.push(&new.actor);
                rows.role.push(&new.role);
                rows.recorded_at.push(now);
                rows.correlation.push(new.correlation.as_deref());
                rows.prev_hash.push(prev_hash.clone());
                rows.hash.push(hash.clone());
                // Strings and data move in from the request once committed.
                all.push(RecordedEvent {
                    seq,
                    id,
                    stream: String::new(),
                    version,
                    event_type: String::new(),
                    schema: new.schema,
                    data: Value::Null,
                    actor: String::new(),
                    role: String::new(),
                    recorded_at: now,
                    correlation: None,
                    prev_hash,
                    hash,
                });
            }
            if let (Some(key), Some(first), Some(last)) =
                (&request.idempotency, all.get(start), all.last())
            {
                used.insert(key.key.as_str());
                keys.key.push(&key.key);
                keys.request_sha256.push(&key.request_sha256);
                keys.first_seq.push(to_i64(first.seq));
                keys.last_seq.push(to_i64(last.seq));
            }
            staged.push(Staged::Appended(start..all.len()));
        }
        if all.is_empty() {
            // Every append was refused: nothing to write, nothing to keep.
            tx.commit().map_err(whole)?;
            self.canonical = canonical;
            self.edge = edge;
            return Ok((staged, all));
        }
        // The tree's new nodes, from the kept edge (or what it lacks, fetched).
        let leaves = all
            .iter()
            .map(|e| tree::leaf(e.seq, &e.hash))
            .collect::<Result<Vec<_>>>()
            .map_err(|e| (e, Some(last)))?;
        let mut reader = PgNodes {
            client: &mut *tx.client,
            statement: &statements.nodes,
        };
        let (nodes, grown) =
            tree::grow(&mut reader, &edge, first_seq - 1, &leaves).map_err(|e| (e, Some(last)))?;
        // Blamed on the first append: see above.
        let blame = |e: postgres::Error| {
            let e = match (group, all.first()) {
                ([request], Some(first)) => match unique_constraint(&e) {
                    Some("idempotency_pkey") => Error::KeyUsed(
                        request
                            .idempotency
                            .as_ref()
                            .map(|k| k.key.clone())
                            .unwrap_or_default(),
                    ),
                    _ => unique_violation_as_conflict(
                        e,
                        &request.batch.events[0].stream,
                        first.version,
                    ),
                },
                _ => Error::Postgres(e),
            };
            (e, Some(0))
        };
        let levels: Vec<i16> = nodes.iter().map(|n| i16::from(n.level)).collect();
        let indexes: Vec<i64> = nodes.iter().map(|n| to_i64(n.index)).collect();
        let hashes: Vec<&[u8]> = nodes.iter().map(|n| &n.hash[..]).collect();
        // The notification is delivered when the transaction commits, not before.
        let head_text = head.seq.to_string();
        tx.client
            .query(
                &statements.write,
                &[
                    &rows.seq,
                    &rows.id,
                    &rows.stream,
                    &rows.version,
                    &rows.event_type,
                    &rows.schema,
                    &rows.data,
                    &rows.actor,
                    &rows.role,
                    &rows.recorded_at,
                    &rows.correlation,
                    &rows.prev_hash,
                    &rows.hash,
                    &keys.key,
                    &keys.request_sha256,
                    &keys.first_seq,
                    &keys.last_seq,
                    &levels,
                    &indexes,
                    &hashes,
                    &CHANNEL,
                    &head_text,
                ],
            )
            .map_err(blame)?;
        tx.commit().map_err(whole)?;
        self.canonical = canonical;
        self.edge = grown;
        Ok((staged, all))
    }
}

/// The versions of a group's streams, and which of its keys are used.
type LookedUp<'g> = (
    std::collections::HashMap<&'g str, u64>,
    std::collections::HashSet<&'g str>,
);

/// The version of every stream a group names, expected or appended to (those
/// without events are left out), and which of its idempotency keys are used
/// already: one query.
fn look_up<'g>(
    client: &mut Client,
    statements: &Statements,
    group: &'g [Request],
) -> std::result::Result<LookedUp<'g>, postgres::Error> {
    let mut names: Vec<&str> = group
        .iter()
        .flat_map(|r| {
            r.batch
                .expectations
                .iter()
                .map(|e| e.stream.as_str())
                .chain(r.batch.events.iter().map(|e| e.stream.as_str()))
        })
        .collect();
    names.sort_unstable();
    names.dedup();
    let keys: Vec<&str> = group
        .iter()
        .filter_map(|r| r.idempotency.as_ref().map(|k| k.key.as_str()))
        .collect();
    let mut versions = std::collections::HashMap::with_capacity(names.len());
    let mut used = std::collections::HashSet::new();
    for row in client.query(&statements.look_up, &[&names, &keys])? {
        let name: &str = row.try_get(0)?;
        let version: Option<i64> = row.try_get(1)?;
        // Keyed by the request's own string, which outlives the row.
        match version {
            Some(version) => {
                if let Ok(i) = names.binary_search(&name) {
                    versions.insert(names[i], version as u64);
                }
            }
            None => {
                if let Some(ours) = keys.iter().find(|k| **k == name) {
                    used.insert(*ours);
                }
            }
        }
    }
    Ok((versions, used))
}

/// The tree's nodes fetched by the writer, with its prepared statement.
struct PgNodes<'a> {
    client: &'a mut Client,
    statement: &'a Statement,
}

impl TreeTx for PgNodes<'_> {
    fn stored_tiles(&mut self) -> Result<u64> {
        PgTree(&mut *self.client).stored_tiles()
    }

    fn head(&mut self) -> Result<u64> {
        PgTree(&mut *self.client).head()
    }

    fn fetch(
        &mut self,
        keys: &[NodeKey],
    ) -> Result<std::collections::HashMap<NodeKey, traguardo_tlog::Hash>> {
        fetch_nodes(&mut *self.client, self.statement, keys)
    }

    fn event_hashes(&mut self, after: u64, limit: usize) -> Result<Vec<(u64, String)>> {
        PgTree(&mut *self.client).event_hashes(after, limit)
    }

    fn insert_nodes(&mut self, nodes: &[traguardo_tlog::merkle::Node]) -> Result<()> {
        PgTree(&mut *self.client).insert_nodes(nodes)
    }
}

/// The idempotency keys of a group, column by column, for [`INSERT_KEYS`].
#[derive(Default)]
struct KeyRows<'r> {
    key: Vec<&'r str>,
    request_sha256: Vec<&'r str>,
    first_seq: Vec<i64>,
    last_seq: Vec<i64>,
}

/// The rows of a group (or of an import), column by column, for [`INSERT_EVENTS`].
struct Rows<'r> {
    seq: Vec<i64>,
    id: Vec<Uuid>,
    stream: Vec<&'r str>,
    version: Vec<i64>,
    event_type: Vec<&'r str>,
    schema: Vec<i64>,
    data: Vec<String>,
    actor: Vec<&'r str>,
    role: Vec<&'r str>,
    recorded_at: Vec<DateTime<Utc>>,
    correlation: Vec<Option<&'r str>>,
    prev_hash: Vec<String>,
    hash: Vec<String>,
}

impl Rows<'_> {
    /// Inserts the rows with `statement` ([`INSERT_EVENTS`], prepared or not).
    fn insert<T: postgres::ToStatement + ?Sized>(
        &self,
        tx: &mut impl postgres::GenericClient,
        statement: &T,
    ) -> std::result::Result<u64, postgres::Error> {
        tx.execute(
            statement,
            &[
                &self.seq,
                &self.id,
                &self.stream,
                &self.version,
                &self.event_type,
                &self.schema,
                &self.data,
                &self.actor,
                &self.role,
                &self.recorded_at,
                &self.correlation,
                &self.prev_hash,
                &self.hash,
            ],
        )
    }

    fn with_capacity(n: usize) -> Self {
        Rows {
            seq: Vec::with_capacity(n),
            id: Vec::with_capacity(n),
            stream: Vec::with_capacity(n),
            version: Vec::with_capacity(n),
            event_type: Vec::with_capacity(n),
            schema: Vec::with_capacity(n),
            data: Vec::with_capacity(n),
            actor: Vec::with_capacity(n),
            role: Vec::with_capacity(n),
            recorded_at: Vec::with_capacity(n),
            correlation: Vec::with_capacity(n),
            prev_hash: Vec::with_capacity(n),
            hash: Vec::with_capacity(n),
        }
    }
}

/// The constraint a unique violation broke, told by SQLSTATE 23505 alone.
fn unique_constraint(e: &postgres::Error) -> Option<&str> {
    if e.code() != Some(&SqlState::UNIQUE_VIOLATION) {
        return None;
    }
    e.as_db_error().and_then(|db| db.constraint())
}

/// A `UNIQUE(stream, version)` violation means someone else took the version: a
/// conflict, told apart from other failures by its SQLSTATE and constraint.
fn unique_violation_as_conflict(e: postgres::Error, stream: &str, version: u64) -> Error {
    match unique_constraint(&e) {
        Some("events_stream_version") => Error::Conflict {
            stream: stream.to_string(),
            expected: (version - 1).to_string(),
            actual: version,
        },
        _ => Error::Postgres(e),
    }
}

/// A PostgreSQL error made plain: the server's message and SQLSTATE, or the
/// client's error and its cause (a refused connection, a timeout).
pub(crate) fn describe(e: &postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{} (SQLSTATE {})", db.message(), db.code().code());
    }
    match std::error::Error::source(e) {
        Some(cause) => format!("{e}: {cause}"),
        None => e.to_string(),
    }
}

/// The URL with its password, if any, replaced by `***`.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:***@{host}"),
            None => authority.to_string(),
        },
        None => authority.to_string(),
    };
    // A password may also come as a query parameter.
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some(("password", _)) => "password=***".to_string(),
                    _ => pair.to_string(),
                })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
        None => tail.to_string(),
    };
    format!("{scheme}://{authority}{tail}")
}

/// Whether this thread runs inside an async runtime, where the blocking client
/// may not start its own.
fn in_runtime() -> bool {
    tokio::runtime::Handle::try_current().is_ok()
}

/// [`Store::read_snapshot`] on `client`, on this thread: the parts are handed
/// to `part` row by row as the server sends them.
fn read_snapshot(
    client: &mut Client,
    name: &str,
    wanted: &mut dyn FnMut(&Snapshot) -> bool,
    part: &mut dyn FnMut(&[u8]),
) -> Result<Option<Snapshot>> {
    // One snapshot of the database: the parts are those of the row read first,
    // even while another process saves a newer snapshot.
    let mut tx = client
        .build_transaction()
        .isolation_level(postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()?;
    let Some(row) = tx.query_opt(LATEST_SNAPSHOT, &[&name])? else {
        return Ok(None);
    };
    let seq: i64 = row.try_get(0)?;
    let schema: i32 = row.try_get(2)?;
    let parts: i32 = row.try_get(4)?;
    let head = Snapshot {
        name: name.to_string(),
        seq: seq as u64,
        hash: row.try_get(1)?,
        schema: u32::try_from(schema).unwrap_or(u32::MAX),
        taken_at: row.try_get(3)?,
        data: Vec::new(),
    };
    if !wanted(&head) {
        return Ok(Some(head));
    }
    let mut rows = tx.query_raw(
        SNAPSHOT_PARTS,
        [&name as &(dyn postgres::types::ToSql + Sync), &seq],
    )?;
    let mut found = 0i32;
    while let Some(row) = rows.next()? {
        part(row.try_get::<_, &[u8]>(0)?);
        found += 1;
    }
    drop(rows);
    tx.commit()?;
    if found != parts {
        return Err(Error::Snapshot {
            name: name.to_string(),
            seq: seq as u64,
            message: format!("{found} parts of {parts}"),
        });
    }
    Ok(Some(head))
}

/// Runs `f` here, or, inside an async runtime, on a scoped helper thread: the
/// blocking client drives a runtime of its own, which tokio refuses to start
/// (or drop) on a thread that is already in one. The caller still waits.
fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    if !in_runtime() {
        return f();
    }
    std::thread::scope(|scope| match scope.spawn(f).join() {
        Ok(value) => value,
        Err(panic) => std::panic::resume_unwind(panic),
    })
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn a_password_is_hidden_wherever_the_url_puts_it() {
        assert_eq!(
            redact("postgres://app:s3cret@db.comune.it:5432/traguardo"),
            "postgres://app:***@db.comune.it:5432/traguardo"
        );
        assert_eq!(
            redact("postgresql://app@db/traguardo?sslmode=disable&password=s3cret"),
            "postgresql://app@db/traguardo?sslmode=disable&password=***"
        );
        assert_eq!(redact("postgres://localhost/x"), "postgres://localhost/x");
    }
}
